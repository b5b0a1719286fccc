-- What the stuck-escrow monitor needs beyond the status: since when the oldest effect that may run has waited in the
-- escrow's outbox, and whether a failed transfer has used all its retries. outbox_seq orders two syncs of one
-- version (an effect completed without a history entry), so a stale sync never overwrites a newer one.
ALTER TABLE escrow_projection ADD COLUMN IF NOT EXISTS effect_waiting_since timestamptz NULL;
ALTER TABLE escrow_projection ADD COLUMN IF NOT EXISTS outbox_seq integer NOT NULL DEFAULT 0;
ALTER TABLE escrow_projection ADD COLUMN IF NOT EXISTS transfer_retries_exhausted boolean NOT NULL DEFAULT false;
