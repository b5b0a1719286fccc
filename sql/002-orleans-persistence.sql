-- Orleans grain state (AddAdoNetGrainStorage, invariant "Npgsql"); contract: ORLEANS-ADONET.md §1.3.
-- A state is identified by all seven key columns together. The hashes are stored only to make the key
-- index selective: they collide, so every query compares the full key as well. The extension column is
-- NULL for integer and GUID keys, hence NULLS NOT DISTINCT (PostgreSQL 15+): without it two first
-- inserts of the same integer-keyed grain would both succeed.

CREATE TABLE IF NOT EXISTS orleans_grain_state
(
    service_id      text        NOT NULL,
    grain_type_hash integer     NOT NULL,
    grain_type      text        NOT NULL,
    grain_id_hash   integer     NOT NULL,
    grain_id_n0     bigint      NOT NULL,
    grain_id_n1     bigint      NOT NULL,
    grain_id_ext    text        NULL,
    payload         bytea       NULL,
    version         integer     NOT NULL,
    modified_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orleans_grain_state_key UNIQUE NULLS NOT DISTINCT
        (grain_id_hash, grain_type_hash, service_id, grain_type, grain_id_n0, grain_id_n1, grain_id_ext)
);

-- Read: zero or one row. A NULL payload means the state was cleared; its version is still the ETag.
INSERT INTO orleansquery (querykey, querytext) VALUES ('ReadFromStorageKey', $sql$
SELECT s.payload AS "PayloadBinary",
       s.version AS "Version"
FROM orleans_grain_state AS s
WHERE s.grain_id_hash = @GrainIdHash
  AND s.grain_type_hash = @GrainTypeHash
  AND s.service_id = @ServiceId
  AND s.grain_type = @GrainTypeString
  AND s.grain_id_n0 = @GrainIdN0
  AND s.grain_id_n1 = @GrainIdN1
  AND s.grain_id_ext IS NOT DISTINCT FROM @GrainIdExtensionString
$sql$)
ON CONFLICT (querykey) DO UPDATE SET querytext = excluded.querytext;

-- Write: one statement, always exactly one row. With a version: update where the stored version matches
-- and return version + 1. Without one: insert version 1 unless the key exists; the unique key makes a
-- concurrent second insert wait, then do nothing. A NULL result is Orleans' conflict signal, so the old
-- version is never returned.
INSERT INTO orleansquery (querykey, querytext) VALUES ('WriteToStorageKey', $sql$
WITH updated AS (
    UPDATE orleans_grain_state AS s
    SET payload = @PayloadBinary,
        version = s.version + 1,
        modified_at = now()
    WHERE @GrainStateVersion IS NOT NULL
      AND s.grain_id_hash = @GrainIdHash
      AND s.grain_type_hash = @GrainTypeHash
      AND s.service_id = @ServiceId
      AND s.grain_type = @GrainTypeString
      AND s.grain_id_n0 = @GrainIdN0
      AND s.grain_id_n1 = @GrainIdN1
      AND s.grain_id_ext IS NOT DISTINCT FROM @GrainIdExtensionString
      AND s.version = @GrainStateVersion
    RETURNING s.version
), inserted AS (
    INSERT INTO orleans_grain_state
        (service_id, grain_type_hash, grain_type, grain_id_hash, grain_id_n0, grain_id_n1, grain_id_ext, payload, version, modified_at)
    SELECT @ServiceId, @GrainTypeHash, @GrainTypeString, @GrainIdHash, @GrainIdN0, @GrainIdN1, @GrainIdExtensionString,
           @PayloadBinary, 1, now()
    WHERE @GrainStateVersion IS NULL
    ON CONFLICT ON CONSTRAINT orleans_grain_state_key DO NOTHING
    RETURNING version
)
SELECT COALESCE((SELECT version FROM updated), (SELECT version FROM inserted)) AS "NewGrainStateVersion"
$sql$)
ON CONFLICT (querykey) DO UPDATE SET querytext = excluded.querytext;

-- Clear: keep the row (so the version keeps counting) with a NULL payload; return the new version,
-- or NULL on a version mismatch.
INSERT INTO orleansquery (querykey, querytext) VALUES ('ClearStorageKey', $sql$
WITH cleared AS (
    UPDATE orleans_grain_state AS s
    SET payload = NULL,
        version = s.version + 1,
        modified_at = now()
    WHERE s.grain_id_hash = @GrainIdHash
      AND s.grain_type_hash = @GrainTypeHash
      AND s.service_id = @ServiceId
      AND s.grain_type = @GrainTypeString
      AND s.grain_id_n0 = @GrainIdN0
      AND s.grain_id_n1 = @GrainIdN1
      AND s.grain_id_ext IS NOT DISTINCT FROM @GrainIdExtensionString
      AND s.version = @GrainStateVersion
    RETURNING s.version
)
SELECT (SELECT version FROM cleared) AS "NewGrainStateVersion"
$sql$)
ON CONFLICT (querykey) DO UPDATE SET querytext = excluded.querytext;

-- Delete (only with DeleteStateOnClear = true): remove the row where the version matches and return a
-- value different from the old ETag (old version + 1), or NULL on a mismatch.
INSERT INTO orleansquery (querykey, querytext) VALUES ('DeleteStorageKey', $sql$
WITH deleted AS (
    DELETE FROM orleans_grain_state AS s
    WHERE s.grain_id_hash = @GrainIdHash
      AND s.grain_type_hash = @GrainTypeHash
      AND s.service_id = @ServiceId
      AND s.grain_type = @GrainTypeString
      AND s.grain_id_n0 = @GrainIdN0
      AND s.grain_id_n1 = @GrainIdN1
      AND s.grain_id_ext IS NOT DISTINCT FROM @GrainIdExtensionString
      AND s.version = @GrainStateVersion
    RETURNING s.version
)
SELECT (SELECT version + 1 FROM deleted) AS "NewGrainStateVersion"
$sql$)
ON CONFLICT (querykey) DO UPDATE SET querytext = excluded.querytext;
