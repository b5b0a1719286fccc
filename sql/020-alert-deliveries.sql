-- Alerts sent to the operators' webhooks and e-mail address. A target (one configured webhook or address) is sent
-- the alerts raised after it was first configured (ids above after_alert_id), each once.
CREATE TABLE IF NOT EXISTS alert_delivery_targets
(
    target         text   NOT NULL,
    after_alert_id bigint NOT NULL,
    CONSTRAINT alert_delivery_targets_pk PRIMARY KEY (target)
);

-- Alerts waiting to be queued are found by age (within the retry horizon), not by a moving id cursor: ids are taken
-- before their inserts commit, so a cursor could pass over an alert committed late.
CREATE INDEX IF NOT EXISTS alerts_created_ix ON alerts (created_at);

-- One row per alert and target. A pending row is due at next_attempt_at; claiming it moves next_attempt_at past
-- the send's lease, so a process that dies mid-send leaves it to be tried again, and two processes never send it at once.
CREATE TABLE IF NOT EXISTS alert_deliveries
(
    alert_id        bigint      NOT NULL,
    target          text        NOT NULL,
    destination     text        NOT NULL,
    state           text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    give_up_at      timestamptz NOT NULL,
    last_error      text        NULL,
    delivered_at    timestamptz NULL,
    CONSTRAINT alert_deliveries_pk PRIMARY KEY (alert_id, target),
    CONSTRAINT alert_deliveries_alert_fk FOREIGN KEY (alert_id) REFERENCES alerts (id),
    CONSTRAINT alert_deliveries_state_ck CHECK (state IN ('pending', 'delivered', 'failed'))
);

CREATE INDEX IF NOT EXISTS alert_deliveries_due_ix ON alert_deliveries (next_attempt_at) WHERE state = 'pending';
