-- Drover schema 2: encrypted secrets, key versions and protectors, and the
-- objects that hold secrets (Run As accounts, guest OS profiles, settings).

-- One row per data key version.  The data key itself is never here: it is
-- wrapped by the protectors (host key file, directory, recovery).
CREATE TABLE key_versions (
    id TEXT PRIMARY KEY,            -- key id carried by every ciphertext, e.g. "k1"
    version INTEGER NOT NULL UNIQUE,
    state TEXT NOT NULL,            -- active | retired
    canary TEXT NOT NULL,           -- a known value sealed under this key
    recovery_wrapped TEXT,          -- crypto_box_seal of the key to the recovery public key
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

-- Protectors configured for this installation (what wraps the keys).
CREATE TABLE key_protectors (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,             -- host | directory | recovery
    config TEXT NOT NULL,           -- JSON: directory URI and container, recovery public key...
    created_at BIGINT NOT NULL,
    UNIQUE (kind)
);

-- Every secret field of every object, sealed.
CREATE TABLE secrets (
    id TEXT PRIMARY KEY,
    object_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    field TEXT NOT NULL,
    key_id TEXT NOT NULL,
    value TEXT NOT NULL,            -- "dv1.<key id>.<base64url(nonce || ciphertext)>"
    updated_at BIGINT NOT NULL,
    UNIQUE (object_type, object_id, field)
);
CREATE INDEX secrets_key_idx ON secrets(key_id);
CREATE INDEX secrets_object_idx ON secrets(object_type, object_id);

CREATE TABLE run_as_accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    username TEXT NOT NULL,
    credential_kind TEXT NOT NULL,  -- password | ssh-key
    description TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

ALTER TABLE hosts ADD COLUMN run_as_id TEXT REFERENCES run_as_accounts(id);

CREATE TABLE guest_os_profiles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    computer_name_pattern TEXT,
    admin_username TEXT,
    domain TEXT,
    domain_join_user TEXT,
    time_zone TEXT,
    ssh_authorized_keys TEXT,       -- JSON array of public keys (not secret)
    user_data TEXT,                 -- extra cloud-init user-data (not secret)
    description TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Named settings whose value may be encrypted (then value is NULL here and
-- the value lives in secrets): application and service settings,
-- deployment product keys, deploy-package passwords.
CREATE TABLE app_settings (
    id TEXT PRIMARY KEY,
    scope TEXT NOT NULL,            -- application | service | deployment | deploy-package
    name TEXT NOT NULL,
    encrypted INTEGER NOT NULL,
    value TEXT,
    description TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (scope, name)
);
