-- Drover schema 7: access control (docs/ACCESS.md).  Roles, bindings of a
-- user or directory group to a role over scopes, quotas and their usage,
-- named API tokens, the audit log; users can be disabled and VMs have an
-- owner.  The four role strings users.role held are mapped onto built-in
-- roles by one global binding each, so an upgraded installation keeps its
-- meaning; users.role stays, read by nothing that decides.

ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN owner_id TEXT;
CREATE INDEX vms_owner_idx ON vms(owner_id);

CREATE TABLE roles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    builtin INTEGER NOT NULL DEFAULT 0,
    privileges TEXT NOT NULL,          -- JSON array of "kind.verb"; built-in rows: []
    description TEXT,
    created_at BIGINT NOT NULL
);

INSERT INTO roles (id, name, builtin, privileges, description, created_at) VALUES
    ('role-administrator', 'administrator', 1, '[]', 'everything', 0),
    ('role-delegated-administrator', 'delegated-administrator', 1, '[]',
     'everything inside its host groups, no global settings, no storage data', 0),
    ('role-read-only-administrator', 'read-only-administrator', 1, '[]',
     'reads everything in its scope, jobs included', 0),
    ('role-tenant-administrator', 'tenant-administrator', 1, '[]',
     'its self-service members and their VMs within its scope', 0),
    ('role-self-service-user', 'self-service-user', 1, '[]',
     'its own VMs and catalog machines, within quota', 0);

CREATE TABLE bindings (
    id TEXT PRIMARY KEY,
    principal_kind TEXT NOT NULL,      -- 'user' (users.id) or 'group' (directory group DN)
    principal TEXT NOT NULL,
    role_id TEXT NOT NULL REFERENCES roles(id),
    scope_kind TEXT NOT NULL,          -- global, host_group, catalog, library_share, run_as
    scope_id TEXT,                     -- NULL for global
    effect TEXT NOT NULL DEFAULT 'allow',
    quota_vms BIGINT,                  -- totals for the binding; NULL: no limit
    quota_vcpus BIGINT,
    quota_memory_mib BIGINT,
    quota_storage_gib BIGINT,
    member_vms BIGINT,                 -- cap per member; NULL: no limit
    member_vcpus BIGINT,
    member_memory_mib BIGINT,
    member_storage_gib BIGINT,
    created_by TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX bindings_principal_idx ON bindings(principal_kind, principal);
CREATE INDEX bindings_role_idx ON bindings(role_id);

-- What is reserved under a binding: one row per member, and one row with
-- user_id '*' holding the binding's total.
CREATE TABLE quota_usage (
    binding_id TEXT NOT NULL REFERENCES bindings(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    vms BIGINT NOT NULL DEFAULT 0,
    vcpus BIGINT NOT NULL DEFAULT 0,
    memory_mib BIGINT NOT NULL DEFAULT 0,
    storage_gib BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (binding_id, user_id)
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    privileges TEXT NOT NULL,          -- JSON array, a subset of the user's
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (user_id, name)
);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor_id TEXT,
    actor_name TEXT,
    address TEXT,
    operation TEXT NOT NULL,
    object_kind TEXT,
    object_id TEXT,
    outcome TEXT NOT NULL,
    job_id TEXT,
    detail TEXT
);
CREATE INDEX audit_log_at_idx ON audit_log(at, id);

INSERT INTO bindings (id, principal_kind, principal, role_id, scope_kind, scope_id, effect,
                      created_by, created_at)
SELECT 'migrated-' || id, 'user', id,
       CASE role WHEN 'administrator' THEN 'role-administrator'
                 WHEN 'delegated-administrator' THEN 'role-delegated-administrator'
                 WHEN 'read-only' THEN 'role-read-only-administrator'
                 WHEN 'tenant' THEN 'role-tenant-administrator'
                 ELSE 'role-self-service-user' END,
       'global', NULL, 'allow', 'migration 0007', created_at
FROM users;
