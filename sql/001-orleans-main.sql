-- The query table every Orleans ADO.NET provider reads at start-up with the fixed statement
-- "SELECT QueryKey, QueryText FROM OrleansQuery". The identifiers are unquoted there, so PostgreSQL folds
-- them to lower case: this table and its columns must be lower case too. One table serves persistence,
-- reminders and clustering; each later script upserts its own rows, so re-running a script updates them.
-- Query texts are read once when a provider initialises: restart the silos after changing them.

CREATE TABLE IF NOT EXISTS orleansquery
(
    querykey  varchar(64) NOT NULL,
    querytext text        NOT NULL,
    CONSTRAINT orleansquery_pk PRIMARY KEY (querykey)
);
