-- Drover schema 16: leased jobs (several droverd on one PostgreSQL
-- database, docs/DECISIONS.md "Leased jobs").  A queued or running job is
-- held by one server until its lease expires; every write of the job is
-- conditional on the epoch its holder read, and a takeover raises it.
-- Instants are the database's clock (microseconds since 1970).
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN lease_expires BIGINT;
CREATE INDEX jobs_lease_idx ON jobs (state, lease_expires);

-- The exclusive scopes of queued and running jobs: one job per scope
-- (a catalog, ...), taken in the transaction that accepts the job and
-- released with its end.
CREATE TABLE job_scopes (
    scope_kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (scope_kind, object_id)
);
CREATE INDEX job_scopes_job_idx ON job_scopes (job_id);
