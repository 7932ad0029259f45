-- Drover schema 3: the servers that serve this database, with their
-- versions (several droverd on one PostgreSQL database, rolling upgrades).
CREATE TABLE servers (
    id TEXT PRIMARY KEY,            -- one per running droverd process
    hostname TEXT NOT NULL,
    pid INTEGER NOT NULL,
    version TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
