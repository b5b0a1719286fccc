-- Erasing personal data. An escrow's sender is found by a key of the address (hex SHA-256 of it, trimmed and in lower
-- case), not by the address: the projection holds no personal data. Both columns are cleared or set when the escrow's
-- state is erased, and the projection is written again.
ALTER TABLE escrow_projection ADD COLUMN IF NOT EXISTS sender_key text NULL;
ALTER TABLE escrow_projection ADD COLUMN IF NOT EXISTS bodies_erased boolean NOT NULL DEFAULT false;

CREATE INDEX IF NOT EXISTS escrow_projection_sender_ix ON escrow_projection (sender_key) WHERE sender_key IS NOT NULL;

-- The daily retention of message bodies: terminal escrows, oldest first, whose bodies are still kept.
CREATE INDEX IF NOT EXISTS escrow_projection_retention_ix ON escrow_projection (status_changed_at)
    WHERE NOT bodies_erased AND status IN ('released', 'refunded', 'payment_failed', 'cancelled');
CREATE INDEX IF NOT EXISTS inbound_messages_from_ix ON inbound_messages (lower(from_address));
