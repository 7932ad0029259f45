-- Drover schema 4: machine catalogs (docs/CATALOGS.md).  A catalog stamps
-- out machines from one master VM snapshot; every step of provisioning is
-- recorded here so an interrupted job resumes where it stopped.

CREATE TABLE catalogs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,      -- also the prefix of every volume it makes
    catalog_type TEXT NOT NULL,     -- pooled | persistent
    state TEXT NOT NULL,            -- provisioning | ready | degraded (some machines failed)
    master_vm_id TEXT REFERENCES vms(id) ON DELETE SET NULL,
    master_vm_name TEXT NOT NULL,   -- kept when the master VM goes away
    master_snapshot TEXT NOT NULL,
    target_kind TEXT NOT NULL,      -- hosts | host-group | cluster
    target_id TEXT,                 -- host group or cluster id (NULL for hosts)
    host_ids TEXT NOT NULL,         -- JSON array: the target hosts as resolved at create
    pool_name TEXT NOT NULL,        -- storage pool of that name on every target host
    machine_spec TEXT NOT NULL,     -- JSON {vcpus, memory_mib, networks, kernel, initrd, cmdline}
    naming_scheme TEXT NOT NULL,    -- e.g. "desk-###"
    next_index INTEGER NOT NULL,    -- first index not yet given out
    guest_os_profile_id TEXT REFERENCES guest_os_profiles(id) ON DELETE SET NULL,
    personal_disk_mib BIGINT NOT NULL, -- 0: no personal disk
    current_image_id TEXT,          -- catalog_images row machines get
    job_id TEXT,                    -- the provisioning job running now, or NULL
    description TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Image history: one row per master snapshot the catalog was given.
CREATE TABLE catalog_images (
    id TEXT PRIMARY KEY,
    catalog_id TEXT NOT NULL REFERENCES catalogs(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,       -- 1, 2, ... per catalog
    master_vm_id TEXT,
    master_snapshot TEXT NOT NULL,
    is_current INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (catalog_id, version)
);

-- One flattened base image per image and target pool, shared by the
-- machines of that pool.  refcount counts the machines whose overlay
-- uses it; a base is deleted only at zero and when no image history
-- entry still needs it.
CREATE TABLE catalog_bases (
    id TEXT PRIMARY KEY,
    catalog_id TEXT NOT NULL REFERENCES catalogs(id) ON DELETE CASCADE,
    image_id TEXT NOT NULL REFERENCES catalog_images(id) ON DELETE CASCADE,
    host_id TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    pool_name TEXT NOT NULL,
    volume_name TEXT NOT NULL,
    path TEXT,                      -- set once the base exists
    format TEXT NOT NULL,
    capacity BIGINT NOT NULL,
    state TEXT NOT NULL,            -- pending | ready | failed
    error TEXT,
    refcount INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (image_id, host_id, pool_name)
);
CREATE INDEX catalog_bases_catalog_idx ON catalog_bases(catalog_id);

-- One row per machine, made at create time (state pending) so the names
-- are reserved before any volume exists.
CREATE TABLE catalog_machines (
    id TEXT PRIMARY KEY,            -- also the machine's NoCloud instance-id
    catalog_id TEXT NOT NULL REFERENCES catalogs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    name_index INTEGER NOT NULL,
    host_id TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    vm_id TEXT REFERENCES vms(id) ON DELETE SET NULL,
    domain_uuid TEXT NOT NULL,      -- chosen at create, so a resumed define reuses it
    image_id TEXT REFERENCES catalog_images(id) ON DELETE SET NULL,
    base_id TEXT REFERENCES catalog_bases(id) ON DELETE SET NULL,
    overlay_path TEXT,
    identity_path TEXT,
    personal_path TEXT,
    state TEXT NOT NULL,            -- pending | ready | failed
    step TEXT,                      -- last step done: overlay | identity | personal | define
    error TEXT,                     -- why it failed
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (catalog_id, name),
    UNIQUE (catalog_id, name_index)
);
CREATE INDEX catalog_machines_host_idx ON catalog_machines(host_id, name);
CREATE INDEX catalog_machines_state_idx ON catalog_machines(catalog_id, state);
