-- Drover upgrades: the report each `drover-setup upgrade` leaves
-- (docs/UPGRADE.md).  Numbered 0007 on main (0005/0006 are the catalog
-- engineers'); the integrator renumbers at merge.
CREATE TABLE upgrade_reports (
    id TEXT PRIMARY KEY,
    from_version TEXT NOT NULL,     -- product version the database was at
    to_version TEXT NOT NULL,
    from_schema INTEGER NOT NULL,
    to_schema INTEGER NOT NULL,
    backup TEXT,                    -- the archive taken before migrating
    report TEXT NOT NULL,           -- JSON: secrets to re-enter, hosts, limits, issues
    created_at BIGINT NOT NULL
);
CREATE INDEX upgrade_reports_created_idx ON upgrade_reports(created_at, id);
