-- The audit trail: who (an API key's id, never the key) changed what. Rows written on behalf of a grain carry a
-- dedupe key (the grain and its pending audit's number), so a retried write after a crash adds no second row. Like
-- the ledger, the trail is insert-only: the trigger rejects UPDATE, DELETE and TRUNCATE.
ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS recipient_id text NULL;
ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS dedupe_key text NULL;

CREATE UNIQUE INDEX IF NOT EXISTS audit_log_dedupe_ux ON audit_log (dedupe_key);
CREATE INDEX IF NOT EXISTS audit_log_recipient_ix ON audit_log (recipient_id, id);
CREATE INDEX IF NOT EXISTS audit_log_at_ix ON audit_log (at, id);

CREATE OR REPLACE FUNCTION audit_log_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'audit_log is insert-only: % is not allowed', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$fn$;

CREATE OR REPLACE TRIGGER audit_log_insert_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_reject_change();

CREATE OR REPLACE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_reject_change();
