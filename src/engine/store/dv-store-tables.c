#define G_LOG_DOMAIN "DvStoreTables"

/* One description per table: the columns the generic record calls read and
 * write.  Keep in step with migrations/. */

#include "dv-store.h"

static const DvColumn users_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "name", DV_COL_TEXT, TRUE },
    { "password_hash", DV_COL_TEXT, FALSE },
    { "role", DV_COL_TEXT, TRUE }, /* before 0007; bindings decide since */
    { "created_at", DV_COL_INT, FALSE },
    { "disabled", DV_COL_BOOL, TRUE },
    { NULL },
};
const DvTableDef dv_table_users = { "users", users_cols, "name", FALSE };

static const DvColumn sessions_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "token_hash", DV_COL_TEXT, TRUE },
    { "user_id", DV_COL_TEXT, TRUE },
    { "created_at", DV_COL_INT, FALSE },
    { "expires_at", DV_COL_INT, TRUE },
    { NULL },
};
const DvTableDef dv_table_sessions = { "sessions", sessions_cols, "created_at", FALSE };

static const DvColumn host_groups_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "name", DV_COL_TEXT, TRUE },
    { "parent_id", DV_COL_TEXT, TRUE },
    { "description", DV_COL_TEXT, FALSE },
    { "created_at", DV_COL_INT, FALSE },
    { NULL },
};
const DvTableDef dv_table_host_groups = { "host_groups", host_groups_cols, "name", FALSE };

static const DvColumn clusters_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "name", DV_COL_TEXT, TRUE },
    { "host_group_id", DV_COL_TEXT, TRUE },
    { "hypervisor_type", DV_COL_TEXT, FALSE },
    { "hypervisor_major", DV_COL_INT, FALSE },
    { "description", DV_COL_TEXT, FALSE },
    { "created_at", DV_COL_INT, FALSE },
    { NULL },
};
const DvTableDef dv_table_clusters = { "clusters", clusters_cols, "name", FALSE };

/* What the host probe and watch write (features/hosts), and "adding". */
static const char *const dv_host_states[] = { "ok", "needs-attention", "unreachable", "adding", NULL };

static const DvColumn hosts_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "name", DV_COL_TEXT, TRUE },
    { "uri", DV_COL_TEXT, TRUE },
    { "host_group_id", DV_COL_TEXT, TRUE },
    { "cluster_id", DV_COL_TEXT, TRUE },
    { "state", DV_COL_TEXT, TRUE, dv_host_states },
    { "state_reason", DV_COL_TEXT, FALSE },
    { "hostname", DV_COL_TEXT, TRUE },
    { "cpus", DV_COL_INT, FALSE },
    { "memory_mib", DV_COL_INT, FALSE },
    { "free_memory_mib", DV_COL_INT, FALSE },
    { "hypervisor_type", DV_COL_TEXT, TRUE },
    { "hypervisor_version", DV_COL_TEXT, FALSE },
    { "hypervisor_major", DV_COL_INT, TRUE },
    { "libvirt_version", DV_COL_TEXT, FALSE },
    { "domain_type", DV_COL_TEXT, FALSE },
    { "max_connections", DV_COL_INT, FALSE },
    { "max_concurrent_operations", DV_COL_INT, FALSE },
    { "rights", DV_COL_JSON, FALSE },
    { "daemon_limits", DV_COL_JSON, FALSE },
    { "run_as_id", DV_COL_TEXT, TRUE },
    { "refreshed_at", DV_COL_INT, FALSE },
    { "created_at", DV_COL_INT, FALSE },
    { "migration_uri", DV_COL_TEXT, FALSE },            /* 0017: as peers reach it */
    { "migration_bandwidth_mib_s", DV_COL_INT, FALSE }, /* 0017: cap, NULL: none */
    { NULL },
};
const DvTableDef dv_table_hosts = { "hosts", hosts_cols, "name", FALSE };

static const DvColumn pools_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "host_id", DV_COL_TEXT, TRUE },
    { "name", DV_COL_TEXT, TRUE },
    { "uuid", DV_COL_TEXT, TRUE },
    { "type", DV_COL_TEXT, TRUE },
    { "path", DV_COL_TEXT, FALSE },
    { "state", DV_COL_TEXT, TRUE },
    { "capacity", DV_COL_INT, FALSE },
    { "allocation", DV_COL_INT, FALSE },
    { "available", DV_COL_INT, FALSE },
    { "refreshed_at", DV_COL_INT, FALSE },
    { NULL },
};
const DvTableDef dv_table_pools = { "pools", pools_cols, "name", FALSE };

static const DvColumn volumes_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "pool_id", DV_COL_TEXT, TRUE },
    { "host_id", DV_COL_TEXT, TRUE },
    { "name", DV_COL_TEXT, TRUE },
    { "vkey", DV_COL_TEXT, FALSE },
    { "path", DV_COL_TEXT, TRUE },
    { "format", DV_COL_TEXT, TRUE },
    { "capacity", DV_COL_INT, FALSE },
    { "allocation", DV_COL_INT, FALSE },
    { NULL },
};
const DvTableDef dv_table_volumes = { "volumes", volumes_cols, "name", FALSE };

static const DvColumn networks_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "host_id", DV_COL_TEXT, TRUE },
    { "name", DV_COL_TEXT, TRUE },
    { "uuid", DV_COL_TEXT, FALSE },
    { "active", DV_COL_BOOL, TRUE },
    { "bridge", DV_COL_TEXT, FALSE },
    { NULL },
};
const DvTableDef dv_table_networks = { "networks", networks_cols, "name", FALSE };

static const DvColumn library_shares_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "name", DV_COL_TEXT, TRUE },
    { "path", DV_COL_TEXT, TRUE },
    { "host_id", DV_COL_TEXT, TRUE },
    { "pool_name", DV_COL_TEXT, FALSE },
    { "is_default", DV_COL_BOOL, TRUE },
    { "description", DV_COL_TEXT, FALSE },
    { "created_at", DV_COL_INT, FALSE },
    { NULL },
};
const DvTableDef dv_table_library_shares = { "library_shares", library_shares_cols, "name", FALSE };

static const DvColumn templates_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "name", DV_COL_TEXT, TRUE },
    { "vcpus", DV_COL_INT, FALSE },
    { "memory_mib", DV_COL_INT, FALSE },
    { "generation", DV_COL_INT, TRUE },
    { "secure_boot", DV_COL_BOOL, FALSE },
    { "networks", DV_COL_JSON, FALSE },
    { "library_share_id", DV_COL_TEXT, TRUE },
    { "disk_volume", DV_COL_TEXT, FALSE },
    { "cdroms", DV_COL_JSON, FALSE },
    { "description", DV_COL_TEXT, FALSE },
    { "created_at", DV_COL_INT, FALSE },
    { NULL },
};
const DvTableDef dv_table_templates = { "templates", templates_cols, "name", FALSE };

/* libvirt's domain states as the virt layer names them
 * (dv_virt_domain_state_to_string()), "creating" while a job makes the
 * VM, "missing" when its host no longer has it. */
static const char *const dv_vm_states[] = { "running", "paused",      "shutdown", "shutoff", "crashed",
                                            "pmsuspended", "unknown", "creating", "missing", NULL };

static const DvColumn vms_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "name", DV_COL_TEXT, TRUE },
    { "host_id", DV_COL_TEXT, TRUE },
    { "uuid", DV_COL_TEXT, TRUE },
    { "state", DV_COL_TEXT, TRUE, dv_vm_states },
    { "vcpus", DV_COL_INT, FALSE },
    { "memory_mib", DV_COL_INT, FALSE },
    { "generation", DV_COL_INT, TRUE },
    { "secure_boot", DV_COL_BOOL, FALSE },
    { "template_id", DV_COL_TEXT, TRUE },
    { "origin", DV_COL_TEXT, TRUE },
    { "spec", DV_COL_JSON, FALSE },
    { "description", DV_COL_TEXT, FALSE },
    { "created_at", DV_COL_INT, FALSE },
    { "updated_at", DV_COL_INT, FALSE },
    { "owner_id", DV_COL_TEXT, TRUE }, /* 0007: the creating user (users.id) */
    { NULL },
};
const DvTableDef dv_table_vms = { "vms", vms_cols, "name", FALSE };

static const DvColumn snapshots_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "vm_id", DV_COL_TEXT, TRUE },
    { "host_id", DV_COL_TEXT, TRUE },
    { "name", DV_COL_TEXT, TRUE },
    { "description", DV_COL_TEXT, FALSE },
    { "vm_state", DV_COL_TEXT, FALSE },
    { "parent_name", DV_COL_TEXT, FALSE },
    { "is_current", DV_COL_BOOL, FALSE },
    { "created_at", DV_COL_INT, FALSE },
    { "kind", DV_COL_TEXT, FALSE },   /* 0014: "internal" | "external" */
    { "memory", DV_COL_BOOL, FALSE }, /* 0014: holds the running VM's memory */
    { NULL },
};
const DvTableDef dv_table_snapshots = { "snapshots", snapshots_cols, "created_at", FALSE };

static const DvColumn jobs_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "kind", DV_COL_TEXT, TRUE },
    { "state", DV_COL_TEXT, TRUE },
    { "target_type", DV_COL_TEXT, TRUE },
    { "target_id", DV_COL_TEXT, TRUE },
    { "target_name", DV_COL_TEXT, TRUE },
    { "host_id", DV_COL_TEXT, TRUE },
    { "params", DV_COL_JSON, FALSE },
    { "steps", DV_COL_JSON, FALSE },
    { "current_step", DV_COL_TEXT, FALSE },
    { "progress", DV_COL_INT, FALSE },
    { "error", DV_COL_JSON, FALSE },
    { "result", DV_COL_JSON, FALSE },
    { "created_by", DV_COL_TEXT, TRUE },
    { "server_id", DV_COL_TEXT, TRUE },
    { "cancel_requested", DV_COL_BOOL, FALSE },
    { "attempts", DV_COL_INT, FALSE },
    { "created_at", DV_COL_INT, FALSE },
    { "started_at", DV_COL_INT, FALSE },
    { "updated_at", DV_COL_INT, FALSE },
    { "finished_at", DV_COL_INT, TRUE },
    { NULL },
};
const DvTableDef dv_table_jobs = { "jobs", jobs_cols, "created_at", TRUE };

static const DvColumn settings_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "name", DV_COL_TEXT, TRUE },
    { "value", DV_COL_TEXT, FALSE },
    { "updated_at", DV_COL_INT, FALSE },
    { NULL },
};
const DvTableDef dv_table_settings = { "settings", settings_cols, "name", FALSE };

static const DvColumn key_versions_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "version", DV_COL_INT, TRUE },
    { "state", DV_COL_TEXT, TRUE },
    { "canary", DV_COL_TEXT, FALSE },
    { "recovery_wrapped", DV_COL_TEXT, FALSE },
    { "created_at", DV_COL_INT, FALSE },
    { "retired_at", DV_COL_INT, FALSE },
    { NULL },
};
const DvTableDef dv_table_key_versions = { "key_versions", key_versions_cols, "version", FALSE };

static const DvColumn key_protectors_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "kind", DV_COL_TEXT, TRUE },
    { "config", DV_COL_JSON, FALSE },
    { "created_at", DV_COL_INT, FALSE },
    { NULL },
};
const DvTableDef dv_table_key_protectors = { "key_protectors", key_protectors_cols, "kind", FALSE };

static const DvColumn secrets_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "object_type", DV_COL_TEXT, TRUE },
    { "object_id", DV_COL_TEXT, TRUE },
    { "field", DV_COL_TEXT, TRUE },
    { "key_id", DV_COL_TEXT, TRUE },
    { "value", DV_COL_TEXT, FALSE },
    { "updated_at", DV_COL_INT, FALSE },
    { NULL },
};
const DvTableDef dv_table_secrets = { "secrets", secrets_cols, "object_id", FALSE };

static const DvColumn run_as_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "name", DV_COL_TEXT, TRUE },
    { "username", DV_COL_TEXT, TRUE },
    { "credential_kind", DV_COL_TEXT, TRUE },
    { "description", DV_COL_TEXT, FALSE },
    { "created_at", DV_COL_INT, FALSE },
    { "updated_at", DV_COL_INT, FALSE },
    { NULL },
};
const DvTableDef dv_table_run_as_accounts = { "run_as_accounts", run_as_cols, "name", FALSE };

static const DvColumn guest_os_profiles_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "name", DV_COL_TEXT, TRUE },
    { "computer_name_pattern", DV_COL_TEXT, FALSE },
    { "admin_username", DV_COL_TEXT, FALSE },
    { "domain", DV_COL_TEXT, TRUE },
    { "domain_join_user", DV_COL_TEXT, FALSE },
    { "domain_join_run_as_id", DV_COL_TEXT, TRUE }, /* 0012: run_as_accounts.id or NULL */
    { "time_zone", DV_COL_TEXT, FALSE },
    { "ssh_authorized_keys", DV_COL_JSON, FALSE },
    { "user_data", DV_COL_TEXT, FALSE },
    { "description", DV_COL_TEXT, FALSE },
    { "created_at", DV_COL_INT, FALSE },
    { "updated_at", DV_COL_INT, FALSE },
    { NULL },
};
const DvTableDef dv_table_guest_os_profiles = { "guest_os_profiles", guest_os_profiles_cols, "name", FALSE };

static const DvColumn app_settings_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "scope", DV_COL_TEXT, TRUE },
    { "name", DV_COL_TEXT, TRUE },
    { "encrypted", DV_COL_BOOL, TRUE },
    { "value", DV_COL_TEXT, FALSE },
    { "description", DV_COL_TEXT, FALSE },
    { "created_at", DV_COL_INT, FALSE },
    { "updated_at", DV_COL_INT, FALSE },
    { NULL },
};
const DvTableDef dv_table_app_settings = { "app_settings", app_settings_cols, "name", FALSE };

static const DvColumn servers_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "hostname", DV_COL_TEXT, TRUE },
    { "pid", DV_COL_INT, TRUE },
    { "version", DV_COL_TEXT, TRUE },
    { "started_at", DV_COL_INT, FALSE },
    { "heartbeat_at", DV_COL_INT, TRUE },
    { NULL },
};
const DvTableDef dv_table_servers = { "servers", servers_cols, "started_at", FALSE };

static const DvColumn catalogs_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "name", DV_COL_TEXT, TRUE },
    { "catalog_type", DV_COL_TEXT, TRUE },
    { "state", DV_COL_TEXT, TRUE },
    { "master_vm_id", DV_COL_TEXT, TRUE },
    { "master_vm_name", DV_COL_TEXT, FALSE },
    { "master_snapshot", DV_COL_TEXT, FALSE },
    { "target_kind", DV_COL_TEXT, TRUE },
    { "target_id", DV_COL_TEXT, TRUE },
    { "host_ids", DV_COL_JSON, FALSE },
    { "pool_name", DV_COL_TEXT, TRUE },
    { "machine_spec", DV_COL_JSON, FALSE },
    { "naming_scheme", DV_COL_TEXT, FALSE },
    { "next_index", DV_COL_INT, FALSE },
    { "guest_os_profile_id", DV_COL_TEXT, TRUE },
    { "personal_disk_mib", DV_COL_INT, FALSE },
    { "personal_disk_pool", DV_COL_TEXT, TRUE }, /* 0013: NULL = pool_name */
    { "current_image_id", DV_COL_TEXT, FALSE },
    { "job_id", DV_COL_TEXT, TRUE },
    { "description", DV_COL_TEXT, FALSE },
    { "created_at", DV_COL_INT, FALSE },
    { "updated_at", DV_COL_INT, FALSE },
    { "last_reconcile", DV_COL_JSON, FALSE },
    { NULL },
};
const DvTableDef dv_table_catalogs = { "catalogs", catalogs_cols, "name", FALSE };

static const DvColumn catalog_images_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "catalog_id", DV_COL_TEXT, TRUE },
    { "version", DV_COL_INT, TRUE },
    { "master_vm_id", DV_COL_TEXT, TRUE },
    { "master_snapshot", DV_COL_TEXT, FALSE },
    { "is_current", DV_COL_BOOL, TRUE },
    { "created_at", DV_COL_INT, FALSE },
    { "state", DV_COL_TEXT, TRUE },
    { "error", DV_COL_TEXT, FALSE },
    { "previous_image_id", DV_COL_TEXT, TRUE },
    { NULL },
};
const DvTableDef dv_table_catalog_images = { "catalog_images", catalog_images_cols, "version", FALSE };

static const DvColumn catalog_bases_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "catalog_id", DV_COL_TEXT, TRUE },
    { "image_id", DV_COL_TEXT, TRUE },
    { "host_id", DV_COL_TEXT, TRUE },
    { "pool_name", DV_COL_TEXT, TRUE },
    { "volume_name", DV_COL_TEXT, TRUE },
    { "path", DV_COL_TEXT, TRUE },
    { "format", DV_COL_TEXT, FALSE },
    { "capacity", DV_COL_INT, FALSE },
    { "state", DV_COL_TEXT, TRUE },
    { "error", DV_COL_TEXT, FALSE },
    { "refcount", DV_COL_INT, FALSE },
    { "created_at", DV_COL_INT, FALSE },
    { "updated_at", DV_COL_INT, FALSE },
    { NULL },
};
const DvTableDef dv_table_catalog_bases = { "catalog_bases", catalog_bases_cols, "created_at", FALSE };

static const DvColumn catalog_machines_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "catalog_id", DV_COL_TEXT, TRUE },
    { "name", DV_COL_TEXT, TRUE },
    { "name_index", DV_COL_INT, FALSE },
    { "host_id", DV_COL_TEXT, TRUE },
    { "vm_id", DV_COL_TEXT, TRUE },
    { "domain_uuid", DV_COL_TEXT, FALSE },
    { "image_id", DV_COL_TEXT, TRUE },
    { "base_id", DV_COL_TEXT, TRUE },
    { "overlay_path", DV_COL_TEXT, FALSE },
    { "identity_path", DV_COL_TEXT, FALSE },
    { "personal_path", DV_COL_TEXT, FALSE },
    { "state", DV_COL_TEXT, TRUE },
    { "step", DV_COL_TEXT, FALSE },
    { "error", DV_COL_TEXT, FALSE },
    { "owner_id", DV_COL_TEXT, TRUE }, /* 0010: the user who added it (users.id) */
    { "quota", DV_COL_JSON, FALSE },   /* 0010: what its binding's quota was charged */
    { "created_at", DV_COL_INT, FALSE },
    { "updated_at", DV_COL_INT, FALSE },
    { NULL },
};
const DvTableDef dv_table_catalog_machines = { "catalog_machines", catalog_machines_cols, "name", FALSE };

/* --- access control (0007, docs/ACCESS.md) ------------------------------ */

static const DvColumn roles_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "name", DV_COL_TEXT, TRUE },
    { "builtin", DV_COL_BOOL, TRUE },
    { "privileges", DV_COL_JSON, FALSE },
    { "description", DV_COL_TEXT, FALSE },
    { "created_at", DV_COL_INT, FALSE },
    { NULL },
};
const DvTableDef dv_table_roles = { "roles", roles_cols, "name", FALSE };

static const DvColumn bindings_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "principal_kind", DV_COL_TEXT, TRUE },
    { "principal", DV_COL_TEXT, TRUE },
    { "role_id", DV_COL_TEXT, TRUE },
    { "scope_kind", DV_COL_TEXT, TRUE },
    { "scope_id", DV_COL_TEXT, TRUE },
    { "effect", DV_COL_TEXT, TRUE },
    { "quota_vms", DV_COL_INT, FALSE },
    { "quota_vcpus", DV_COL_INT, FALSE },
    { "quota_memory_mib", DV_COL_INT, FALSE },
    { "quota_storage_gib", DV_COL_INT, FALSE },
    { "member_vms", DV_COL_INT, FALSE },
    { "member_vcpus", DV_COL_INT, FALSE },
    { "member_memory_mib", DV_COL_INT, FALSE },
    { "member_storage_gib", DV_COL_INT, FALSE },
    { "created_by", DV_COL_TEXT, FALSE },
    { "created_at", DV_COL_INT, FALSE },
    { NULL },
};
const DvTableDef dv_table_bindings = { "bindings", bindings_cols, "created_at", FALSE };

static const DvColumn api_tokens_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "user_id", DV_COL_TEXT, TRUE },
    { "name", DV_COL_TEXT, TRUE },
    { "token_hash", DV_COL_TEXT, TRUE },
    { "privileges", DV_COL_JSON, FALSE },
    { "expires_at", DV_COL_INT, FALSE },
    { "revoked_at", DV_COL_INT, TRUE },
    { "created_at", DV_COL_INT, FALSE },
    { NULL },
};
const DvTableDef dv_table_api_tokens = { "api_tokens", api_tokens_cols, "name", FALSE };

static const DvColumn audit_log_cols[] = {
    { "id", DV_COL_TEXT, TRUE },
    { "at", DV_COL_INT, FALSE },
    { "actor_id", DV_COL_TEXT, TRUE },
    { "actor_name", DV_COL_TEXT, TRUE },
    { "address", DV_COL_TEXT, TRUE },
    { "operation", DV_COL_TEXT, TRUE },
    { "object_kind", DV_COL_TEXT, TRUE },
    { "object_id", DV_COL_TEXT, TRUE },
    { "outcome", DV_COL_TEXT, TRUE },
    { "job_id", DV_COL_TEXT, TRUE },
    { "detail", DV_COL_TEXT, FALSE },
    { "host_group_id", DV_COL_TEXT, TRUE }, /* 0008: the scope that reads it; NULL: global */
    { "scope_kind", DV_COL_TEXT, TRUE },    /* 0011: catalog, library_share, run_as or NULL */
    { "scope_id", DV_COL_TEXT, TRUE },      /* 0011: that object's id */
    { NULL },
};
const DvTableDef dv_table_audit_log = { "audit_log", audit_log_cols, "at", TRUE };
