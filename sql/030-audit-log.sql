-- The audit trail: who (an API key's id, never the key) changed what. Rows written on behalf of a grain carry a
-- dedupe key (the grain and its pending audit's number), so a retried write after a crash adds no second row. Like
-- the ledger, the trail is insert-only: the trigger rejects UPDATE, DELETE and TRUNCATE.
ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS recipient_id text NULL;
ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS dedupe_key text NULL;

CREATE UNIQUE INDEX IF NOT EXISTS audit_log_dedupe_ux ON audit_log (dedupe_key);
CREATE INDEX IF NOT EXISTS audit_log_recipient_ix ON audit_log (recipient_id, id);
CREATE INDEX IF NOT EXISTS audit_log_at_ix ON audit_log (at, id);

SELECT make_insert_only('audit_log');
-- The trigger function the trail had before make_insert_only (sql/010-escrow.sql): no trigger uses it any more.
DROP FUNCTION IF EXISTS audit_log_reject_change();
