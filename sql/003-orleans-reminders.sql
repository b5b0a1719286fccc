-- Orleans reminders (UseAdoNetReminderService); contract: ORLEANS-ADONET.md §1.4.
-- grain_id is the GrainId string ("<grain type>/<key>"); grain_hash is the grain's ring hash, which each
-- silo range-reads on every refresh, hence the (service_id, grain_hash) index. Period is read with
-- GetInt64, so it is a bigint of milliseconds.

CREATE TABLE IF NOT EXISTS orleans_reminders
(
    service_id    text        NOT NULL,
    grain_id      text        NOT NULL,
    reminder_name text        NOT NULL,
    start_time    timestamptz NOT NULL,
    period_ms     bigint      NOT NULL,
    grain_hash    integer     NOT NULL,
    version       integer     NOT NULL,
    CONSTRAINT orleans_reminders_pk PRIMARY KEY (service_id, grain_id, reminder_name),
    CONSTRAINT orleans_reminders_period_ck CHECK (period_ms >= 0)
);

CREATE INDEX IF NOT EXISTS orleans_reminders_service_hash_ix ON orleans_reminders (service_id, grain_hash);

-- Upsert: always returns one row; the version is the reminder's ETag and goes up on every update.
INSERT INTO orleansquery (querykey, querytext) VALUES ('UpsertReminderRowKey', $sql$
INSERT INTO orleans_reminders AS r (service_id, grain_id, reminder_name, start_time, period_ms, grain_hash, version)
VALUES (@ServiceId, @GrainId, @ReminderName, @StartTime, @Period, @GrainHash, 0)
ON CONFLICT ON CONSTRAINT orleans_reminders_pk DO UPDATE
SET start_time = excluded.start_time,
    period_ms = excluded.period_ms,
    grain_hash = excluded.grain_hash,
    version = r.version + 1
RETURNING r.version AS "Version"
$sql$)
ON CONFLICT (querykey) DO UPDATE SET querytext = excluded.querytext;

INSERT INTO orleansquery (querykey, querytext) VALUES ('ReadReminderRowsKey', $sql$
SELECT r.grain_id AS "GrainId", r.reminder_name AS "ReminderName", r.start_time AS "StartTime",
       r.period_ms AS "Period", r.version AS "Version"
FROM orleans_reminders AS r
WHERE r.service_id = @ServiceId
  AND r.grain_id = @GrainId
$sql$)
ON CONFLICT (querykey) DO UPDATE SET querytext = excluded.querytext;

INSERT INTO orleansquery (querykey, querytext) VALUES ('ReadReminderRowKey', $sql$
SELECT r.grain_id AS "GrainId", r.reminder_name AS "ReminderName", r.start_time AS "StartTime",
       r.period_ms AS "Period", r.version AS "Version"
FROM orleans_reminders AS r
WHERE r.service_id = @ServiceId
  AND r.grain_id = @GrainId
  AND r.reminder_name = @ReminderName
$sql$)
ON CONFLICT (querykey) DO UPDATE SET querytext = excluded.querytext;

-- The ring range (Begin, End] when it does not wrap.
INSERT INTO orleansquery (querykey, querytext) VALUES ('ReadRangeRows1Key', $sql$
SELECT r.grain_id AS "GrainId", r.reminder_name AS "ReminderName", r.start_time AS "StartTime",
       r.period_ms AS "Period", r.version AS "Version"
FROM orleans_reminders AS r
WHERE r.service_id = @ServiceId
  AND r.grain_hash > @BeginHash
  AND r.grain_hash <= @EndHash
$sql$)
ON CONFLICT (querykey) DO UPDATE SET querytext = excluded.querytext;

-- The ring range when it wraps around (also Begin = End: the full ring).
INSERT INTO orleansquery (querykey, querytext) VALUES ('ReadRangeRows2Key', $sql$
SELECT r.grain_id AS "GrainId", r.reminder_name AS "ReminderName", r.start_time AS "StartTime",
       r.period_ms AS "Period", r.version AS "Version"
FROM orleans_reminders AS r
WHERE r.service_id = @ServiceId
  AND (r.grain_hash > @BeginHash OR r.grain_hash <= @EndHash)
$sql$)
ON CONFLICT (querykey) DO UPDATE SET querytext = excluded.querytext;

-- Delete only when the ETag matches; exactly one boolean row.
INSERT INTO orleansquery (querykey, querytext) VALUES ('DeleteReminderRowKey', $sql$
WITH deleted AS (
    DELETE FROM orleans_reminders AS r
    WHERE r.service_id = @ServiceId
      AND r.grain_id = @GrainId
      AND r.reminder_name = @ReminderName
      AND r.version = @Version
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM deleted) AS "Deleted"
$sql$)
ON CONFLICT (querykey) DO UPDATE SET querytext = excluded.querytext;

INSERT INTO orleansquery (querykey, querytext) VALUES ('DeleteReminderRowsKey', $sql$
DELETE FROM orleans_reminders WHERE service_id = @ServiceId
$sql$)
ON CONFLICT (querykey) DO UPDATE SET querytext = excluded.querytext;
