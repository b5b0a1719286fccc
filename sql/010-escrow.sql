-- This project's own tables, behind IEscrowStore (Escrow.Grains/Storage/IEscrowStore.cs).
-- Money is bigint minor units plus an upper-case ISO 4217 code; statuses are the ten wire names.

-- The append-only history of each escrow. A correction is a new row: the trigger below rejects UPDATE,
-- DELETE and TRUNCATE, so history cannot be rewritten even by a buggy caller.
CREATE TABLE IF NOT EXISTS escrow_ledger
(
    escrow_id    uuid        NOT NULL,
    seq          integer     NOT NULL,
    kind         text        NOT NULL,
    status       text        NOT NULL,
    amount_minor bigint      NULL,
    currency     text        NULL,
    at           timestamptz NOT NULL,
    data         jsonb       NULL,
    CONSTRAINT escrow_ledger_pk PRIMARY KEY (escrow_id, seq),
    CONSTRAINT escrow_ledger_seq_ck CHECK (seq >= 0),
    CONSTRAINT escrow_ledger_kind_ck CHECK (length(kind) BETWEEN 1 AND 64),
    CONSTRAINT escrow_ledger_status_ck CHECK (status IN ('awaiting_payment', 'held', 'processing', 'pending_user_setup',
        'transfer_failed', 'refund_pending', 'released', 'refunded', 'payment_failed', 'cancelled')),
    CONSTRAINT escrow_ledger_currency_ck CHECK (currency IS NULL OR currency ~ '^[A-Z]{3}$'),
    CONSTRAINT escrow_ledger_money_ck CHECK ((amount_minor IS NULL) = (currency IS NULL))
);

-- Every insert-only table (escrow_ledger, audit_log) is made so by make_insert_only: two triggers,
-- <table>_insert_only and <table>_no_truncate, refuse UPDATE, DELETE and TRUNCATE with a message that names the
-- table and ends with the table's hint (how to correct a row instead).
CREATE OR REPLACE FUNCTION reject_insert_only_change() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION '% is insert-only: % is not allowed%', TG_TABLE_NAME, TG_OP, coalesce(TG_ARGV[0], '')
        USING ERRCODE = 'integrity_constraint_violation';
END;
$fn$;

CREATE OR REPLACE FUNCTION make_insert_only(target regclass, hint text DEFAULT '') RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    table_name text := (SELECT relname FROM pg_class WHERE oid = target);
BEGIN
    EXECUTE format('CREATE OR REPLACE TRIGGER %I BEFORE UPDATE OR DELETE ON %s FOR EACH ROW '
        'EXECUTE FUNCTION reject_insert_only_change(%L)', table_name || '_insert_only', target, hint);
    EXECUTE format('CREATE OR REPLACE TRIGGER %I BEFORE TRUNCATE ON %s FOR EACH STATEMENT '
        'EXECUTE FUNCTION reject_insert_only_change(%L)', table_name || '_no_truncate', target, hint);
END;
$fn$;

SELECT make_insert_only('escrow_ledger', '; record a correction as a new row');
-- The trigger function the ledger had before make_insert_only: no trigger uses it any more.
DROP FUNCTION IF EXISTS escrow_ledger_reject_change();

-- One queryable row per escrow. version is the grain's history sequence: a sync only overwrites an older one.
CREATE TABLE IF NOT EXISTS escrow_projection
(
    escrow_id             uuid        NOT NULL,
    recipient_id          text        NOT NULL,
    status                text        NOT NULL,
    amount_minor          bigint      NOT NULL,
    currency              text        NOT NULL,
    recipient_share_minor bigint      NOT NULL,
    platform_fee_minor    bigint      NOT NULL,
    payment_intent_id     text        NULL,
    charge_id             text        NULL,
    transfer_id           text        NULL,
    created_at            timestamptz NOT NULL,
    deadline              timestamptz NULL,
    reply_deadline        timestamptz NULL,
    status_changed_at     timestamptz NOT NULL,
    transfer_attempts     integer     NOT NULL DEFAULT 0,
    dispute_open          boolean     NOT NULL DEFAULT false,
    version               integer     NOT NULL,
    synced_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT escrow_projection_pk PRIMARY KEY (escrow_id),
    CONSTRAINT escrow_projection_status_ck CHECK (status IN ('awaiting_payment', 'held', 'processing', 'pending_user_setup',
        'transfer_failed', 'refund_pending', 'released', 'refunded', 'payment_failed', 'cancelled')),
    CONSTRAINT escrow_projection_currency_ck CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT escrow_projection_amount_ck CHECK (amount_minor > 0),
    CONSTRAINT escrow_projection_split_ck CHECK (recipient_share_minor >= 0 AND platform_fee_minor >= 0
        AND recipient_share_minor + platform_fee_minor = amount_minor),
    CONSTRAINT escrow_projection_attempts_ck CHECK (transfer_attempts >= 0),
    CONSTRAINT escrow_projection_version_ck CHECK (version >= 0)
);

CREATE INDEX IF NOT EXISTS escrow_projection_status_changed_ix ON escrow_projection (status, status_changed_at);
CREATE INDEX IF NOT EXISTS escrow_projection_recipient_ix ON escrow_projection (recipient_id);
CREATE INDEX IF NOT EXISTS escrow_projection_created_ix ON escrow_projection (created_at, escrow_id);

-- Operator alerts, raised at most once per dedupe key.
CREATE TABLE IF NOT EXISTS alerts
(
    id              bigserial   NOT NULL,
    kind            text        NOT NULL,
    severity        text        NOT NULL,
    escrow_id       uuid        NULL,
    dedupe_key      text        NOT NULL,
    details         text        NOT NULL,
    created_at      timestamptz NOT NULL,
    acknowledged_at timestamptz NULL,
    acknowledged_by text        NULL,
    CONSTRAINT alerts_pk PRIMARY KEY (id),
    CONSTRAINT alerts_dedupe_key_uq UNIQUE (dedupe_key),
    CONSTRAINT alerts_ack_ck CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL))
);

CREATE INDEX IF NOT EXISTS alerts_open_ix ON alerts (id) WHERE acknowledged_at IS NULL;

-- Webhook de-duplication: one row per provider event, marked processed only after the work succeeded.
CREATE TABLE IF NOT EXISTS webhook_inbox
(
    provider     text        NOT NULL,
    event_id     text        NOT NULL,
    event_type   text        NOT NULL,
    received_at  timestamptz NOT NULL,
    attempts     integer     NOT NULL DEFAULT 1,
    processed_at timestamptz NULL,
    outcome      text        NULL,
    CONSTRAINT webhook_inbox_pk PRIMARY KEY (provider, event_id),
    CONSTRAINT webhook_inbox_attempts_ck CHECK (attempts >= 1)
);

-- One row per email send attempt.
CREATE TABLE IF NOT EXISTS email_log
(
    id                  bigserial   NOT NULL,
    escrow_id           uuid        NULL,
    kind                text        NOT NULL,
    to_address          text        NOT NULL,
    subject             text        NOT NULL,
    outcome             text        NOT NULL,
    provider_message_id text        NULL,
    error               text        NULL,
    at                  timestamptz NOT NULL,
    CONSTRAINT email_log_pk PRIMARY KEY (id)
);

CREATE INDEX IF NOT EXISTS email_log_escrow_ix ON email_log (escrow_id, at);
-- A bounce names the sent e-mail by Postmark's MessageID, or only by the address.
CREATE INDEX IF NOT EXISTS email_log_provider_message_ix ON email_log (provider_message_id) WHERE provider_message_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS email_log_to_address_ix ON email_log (lower(to_address), at);

-- Inbound email (replies), idempotent by the provider's message id. Only a short preview is kept.
CREATE TABLE IF NOT EXISTS inbound_messages
(
    provider_message_id text        NOT NULL,
    escrow_id           uuid        NULL,
    from_address        text        NOT NULL,
    subject             text        NOT NULL,
    received_at         timestamptz NOT NULL,
    within_deadline     boolean     NOT NULL,
    grace_used          boolean     NOT NULL,
    ignored_reason      text        NULL,
    preview             text        NOT NULL,
    CONSTRAINT inbound_messages_pk PRIMARY KEY (provider_message_id)
);

CREATE INDEX IF NOT EXISTS inbound_messages_escrow_ix ON inbound_messages (escrow_id, received_at);

-- What operators did, by API key id.
CREATE TABLE IF NOT EXISTS audit_log
(
    id        bigserial   NOT NULL,
    key_id    text        NOT NULL,
    action    text        NOT NULL,
    escrow_id uuid        NULL,
    reason    text        NULL,
    at        timestamptz NOT NULL,
    details   text        NULL,
    CONSTRAINT audit_log_pk PRIMARY KEY (id)
);

CREATE INDEX IF NOT EXISTS audit_log_escrow_ix ON audit_log (escrow_id, id);

CREATE TABLE IF NOT EXISTS reconciliation_reports
(
    report_date date        NOT NULL,
    report      jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reconciliation_reports_pk PRIMARY KEY (report_date)
);
