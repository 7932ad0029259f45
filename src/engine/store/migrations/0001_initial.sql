-- Drover schema 1: inventory, users, jobs.
-- Written in the SQL both SQLite and PostgreSQL accept: TEXT UUID keys,
-- BIGINT microsecond timestamps, INTEGER 0/1 booleans, JSON kept as TEXT.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE host_groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    parent_id TEXT REFERENCES host_groups(id),
    description TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE clusters (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    host_group_id TEXT REFERENCES host_groups(id),
    hypervisor_type TEXT,
    hypervisor_major INTEGER,
    description TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE hosts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    uri TEXT NOT NULL UNIQUE,
    host_group_id TEXT REFERENCES host_groups(id),
    cluster_id TEXT REFERENCES clusters(id),
    state TEXT NOT NULL,
    state_reason TEXT,
    hostname TEXT,
    cpus INTEGER,
    memory_mib BIGINT,
    free_memory_mib BIGINT,
    hypervisor_type TEXT,
    hypervisor_version TEXT,
    hypervisor_major INTEGER,
    libvirt_version TEXT,
    domain_type TEXT NOT NULL,
    max_connections INTEGER NOT NULL,
    max_concurrent_operations INTEGER NOT NULL,
    rights TEXT,
    daemon_limits TEXT,
    refreshed_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX hosts_group_idx ON hosts(host_group_id);
CREATE INDEX hosts_cluster_idx ON hosts(cluster_id);

CREATE TABLE pools (
    id TEXT PRIMARY KEY,
    host_id TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    uuid TEXT,
    type TEXT,
    path TEXT,
    state TEXT,
    capacity BIGINT,
    allocation BIGINT,
    available BIGINT,
    refreshed_at BIGINT,
    UNIQUE (host_id, name)
);
CREATE INDEX pools_name_idx ON pools(name, id);

CREATE TABLE volumes (
    id TEXT PRIMARY KEY,
    pool_id TEXT NOT NULL REFERENCES pools(id) ON DELETE CASCADE,
    host_id TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    vkey TEXT,
    path TEXT,
    format TEXT,
    capacity BIGINT,
    allocation BIGINT,
    UNIQUE (pool_id, name)
);
CREATE INDEX volumes_name_idx ON volumes(name, id);
CREATE INDEX volumes_host_idx ON volumes(host_id);

CREATE TABLE networks (
    id TEXT PRIMARY KEY,
    host_id TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    uuid TEXT,
    active INTEGER NOT NULL,
    bridge TEXT,
    UNIQUE (host_id, name)
);

CREATE TABLE library_shares (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL UNIQUE,
    host_id TEXT REFERENCES hosts(id) ON DELETE SET NULL,
    pool_name TEXT,
    is_default INTEGER NOT NULL,
    description TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE templates (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    vcpus INTEGER NOT NULL,
    memory_mib BIGINT NOT NULL,
    generation INTEGER NOT NULL,
    secure_boot INTEGER NOT NULL,
    networks TEXT,
    library_share_id TEXT REFERENCES library_shares(id),
    disk_volume TEXT,
    description TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE vms (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    host_id TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    uuid TEXT,
    state TEXT NOT NULL,
    vcpus INTEGER,
    memory_mib BIGINT,
    generation INTEGER,
    secure_boot INTEGER,
    template_id TEXT REFERENCES templates(id) ON DELETE SET NULL,
    origin TEXT NOT NULL,
    spec TEXT,
    description TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (host_id, name)
);
CREATE INDEX vms_name_idx ON vms(name, id);
CREATE INDEX vms_state_idx ON vms(state, name, id);
CREATE INDEX vms_uuid_idx ON vms(uuid);

CREATE TABLE snapshots (
    id TEXT PRIMARY KEY,
    vm_id TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    host_id TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    vm_state TEXT,
    parent_name TEXT,
    is_current INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (vm_id, name)
);
CREATE INDEX snapshots_host_idx ON snapshots(host_id);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    target_type TEXT,
    target_id TEXT,
    target_name TEXT,
    host_id TEXT,
    params TEXT,
    steps TEXT,
    current_step TEXT,
    progress INTEGER NOT NULL,
    error TEXT,
    result TEXT,
    created_by TEXT,
    server_id TEXT,
    cancel_requested INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX jobs_state_idx ON jobs(state, created_at);
CREATE INDEX jobs_created_idx ON jobs(created_at, id);
CREATE INDEX jobs_target_idx ON jobs(target_id);

CREATE TABLE settings (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    value TEXT,
    updated_at BIGINT NOT NULL
);
