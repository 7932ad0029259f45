#define G_LOG_DOMAIN "DvCoreHosts"

/* Host handles, Run As credentials and the inventory sync every feature
 * touching a host shares (dv-core.h). */

#include "dv-core.h"

const char *
dv_core_host_domain_type(JsonObject *host)
{
    const char *type = dv_json_get_string(host, "domain_type", "auto");
    const char *uri = dv_json_get_string(host, "uri", "");

    if (g_str_has_prefix(uri, "test:") || g_str_has_prefix(uri, "test+"))
        return "test";
    if (g_strcmp0(type, "kvm") == 0 || g_strcmp0(type, "qemu") == 0)
        return type;
    /* "auto": TCG until a probe guest has been seen to boot under KVM;
     * see docs/VIRT.md for why /dev/kvm alone is not enough. */
    return DV_VIRT_DEFAULT_DOMAIN_TYPE;
}

DvVirtHost *
dv_core_virt_host(DvEngine *engine, JsonObject *host, GError **error)
{
    const char *id = dv_json_get_string(host, "id", "");
    const char *run_as = dv_json_get_string(host, "run_as_id", NULL);
    g_autoptr(DvVirtHost) vh =
        dv_virt_host_get(dv_core(engine)->virt, id, dv_json_get_string(host, "uri", ""));

    dv_virt_host_set_name(vh, dv_json_get_string(host, "name", NULL));

    /* The Run As account's secret is opened only in memory, for the
     * libvirt authentication callback of connections opened from now on. */
    if (run_as != NULL) {
        g_autofree char *username = NULL;
        g_autoptr(DvSecret) secret = dv_core_run_as_credentials(engine, run_as, &username, error);
        if (secret == NULL)
            return NULL;
        dv_virt_host_set_credentials(vh, username, dv_secret_get_string(secret));
    } else {
        dv_virt_host_set_credentials(vh, NULL, NULL);
    }
    g_mutex_lock(&dv_core(engine)->hosts_lock);
    if (g_hash_table_lookup(dv_core(engine)->hosts, id) != vh)
        g_hash_table_replace(dv_core(engine)->hosts, g_strdup(id), dv_virt_host_ref(vh));
    g_mutex_unlock(&dv_core(engine)->hosts_lock);
    dv_virt_host_set_limits(vh, (guint)dv_json_get_int(host, "max_connections", 0),
                            (guint)dv_json_get_int(host, "max_concurrent_operations", 0));
    return g_steal_pointer(&vh);
}

void
dv_core_virt_host_forget(DvEngine *engine, const char *host_id)
{
    g_mutex_lock(&dv_core(engine)->hosts_lock);
    g_hash_table_remove(dv_core(engine)->hosts, host_id);
    g_mutex_unlock(&dv_core(engine)->hosts_lock);
}

DvVirtHost *
dv_core_virt_host_by_id(DvEngine *engine, const char *host_id, GError **error)
{
    g_autoptr(JsonObject) host =
        dv_store_get(dv_core(engine)->store, &dv_table_hosts, host_id, error);
    if (host == NULL)
        return NULL;
    return dv_core_virt_host(engine, host, error);
}

/* The credentials a host's Run As account gives libvirt, opened only in
 * memory; NULL with @ret_username NULL when the host has no account. */
DvSecret *
dv_core_run_as_credentials(DvEngine *engine, const char *run_as_id, char **ret_username,
                           GError **error)
{
    g_autoptr(JsonObject) acct =
        dv_store_get(dv_core(engine)->store, &dv_table_run_as_accounts, run_as_id, error);
    g_autoptr(DvSecret) secret = NULL;
    const char *field;

    if (acct == NULL)
        return NULL;
    field = g_strcmp0(dv_json_get_string(acct, "credential_kind", ""), "password") == 0
                ? "password"
                : "ssh_private_key";
    secret = dv_keyring_load_secret(dv_core(engine)->keyring, dv_core(engine)->store, "run-as",
                                    run_as_id, field, error);
    if (secret == NULL) {
        g_prefix_error(error, "Run As account '%s': ", dv_json_get_string(acct, "name", ""));
        return NULL;
    }
    *ret_username = g_strdup(dv_json_get_string(acct, "username", ""));
    return g_steal_pointer(&secret);
}

/* --- sync ------------------------------------------------------------------ */

static char *
dv_sync_key(JsonObject *rec, const char *const *cols)
{
    GString *key = g_string_new(NULL);
    for (guint i = 0; cols[i] != NULL; i++) {
        const char *v = dv_json_get_string(rec, cols[i], NULL);
        if (v == NULL) {
            g_string_free(key, TRUE);
            return NULL;
        }
        if (i > 0)
            g_string_append_c(key, '\x1f');
        g_string_append(key, v);
    }
    return g_string_free(key, FALSE);
}

/* Writes @desired (records without ids) over @existing rows of one host:
 * unchanged rows are not written, new ones inserted, vanished ones deleted
 * (or marked).  @ret_ids maps each desired key to its row id. */
gboolean
dv_core_sync_rows(DvStore *store, const DvSyncSpec *spec, JsonArray *existing, GPtrArray *desired,
                  GHashTable *ret_ids, GError **error)
{
    g_autoptr(GHashTable) by_key = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    /* Rows kept when they vanish (VMs: "missing") hold their name, which
     * is unique on the host: a domain undefined and defined again under
     * that name (a new UUID) takes the vanished row over instead of
     * failing every sync on the name. */
    g_autoptr(GHashTable) vanished_by_name = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) wanted = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

    for (guint i = 0; i < json_array_get_length(existing); i++) {
        JsonObject *row = json_array_get_object_element(existing, i);
        char *key = dv_sync_key(row, spec->key_cols);
        if (key != NULL)
            g_hash_table_replace(by_key, key, row);
    }
    if (spec->missing_state != NULL) {
        for (guint i = 0; i < desired->len; i++) {
            char *key = dv_sync_key(g_ptr_array_index(desired, i), spec->key_cols);
            if (key != NULL)
                g_hash_table_add(wanted, key);
        }
        for (guint i = 0; i < json_array_get_length(existing); i++) {
            JsonObject *row = json_array_get_object_element(existing, i);
            g_autofree char *key = dv_sync_key(row, spec->key_cols);
            const char *name = dv_json_get_string(row, "name", NULL);
            if (key != NULL && name != NULL && !g_hash_table_contains(wanted, key) &&
                g_strcmp0(dv_json_get_string(row, "state", ""), "creating") != 0)
                g_hash_table_replace(vanished_by_name, (gpointer)name, row);
        }
    }
    for (guint i = 0; i < desired->len; i++) {
        JsonObject *want = g_ptr_array_index(desired, i);
        g_autofree char *key = dv_sync_key(want, spec->key_cols);
        JsonObject *row;

        if (key == NULL)
            continue;
        row = g_hash_table_lookup(by_key, key);
        if (row != NULL) {
            g_autoptr(JsonObject) changes = json_object_new();
            const char *id = dv_json_get_string(row, "id", "");
            for (guint c = 0; spec->compare[c] != NULL; c++) {
                JsonNode *a = json_object_get_member(want, spec->compare[c]);
                JsonNode *b = json_object_get_member(row, spec->compare[c]);
                if (a == NULL)
                    continue;
                if (b == NULL || !json_node_equal(a, b))
                    json_object_set_member(changes, spec->compare[c], json_node_copy(a));
            }
            if (json_object_get_size(changes) > 0) {
                if (json_object_has_member(row, "updated_at"))
                    json_object_set_int_member(changes, "updated_at", dv_store_now());
                if (!dv_store_update(store, spec->def, id, changes, error))
                    return FALSE;
            }
            g_hash_table_add(seen, (gpointer)id);
            if (ret_ids != NULL)
                g_hash_table_replace(ret_ids, g_strdup(key), g_strdup(id));
        } else if ((row = g_hash_table_lookup(vanished_by_name,
                                              dv_json_get_string(want, "name", ""))) != NULL) {
            g_autoptr(JsonObject) changes = json_object_new();
            const char *id = dv_json_get_string(row, "id", "");
            GList *members = json_object_get_members(want);
            for (GList *m = members; m != NULL; m = m->next)
                json_object_set_member(changes, m->data,
                                       json_node_copy(json_object_get_member(want, m->data)));
            g_list_free(members);
            if (json_object_has_member(row, "updated_at"))
                json_object_set_int_member(changes, "updated_at", dv_store_now());
            if (!dv_store_update(store, spec->def, id, changes, error))
                return FALSE;
            g_hash_table_remove(vanished_by_name, dv_json_get_string(want, "name", ""));
            g_hash_table_add(seen, (gpointer)id);
            if (ret_ids != NULL)
                g_hash_table_replace(ret_ids, g_strdup(key), g_strdup(id));
        } else {
            g_autofree char *id = g_uuid_string_random();
            json_object_set_string_member(want, "id", id);
            if (!dv_store_insert(store, spec->def, want, error))
                return FALSE;
            if (ret_ids != NULL)
                g_hash_table_replace(ret_ids, g_strdup(key), g_strdup(id));
        }
    }
    for (guint i = 0; i < json_array_get_length(existing); i++) {
        JsonObject *row = json_array_get_object_element(existing, i);
        const char *id = dv_json_get_string(row, "id", "");
        if (g_hash_table_contains(seen, id))
            continue;
        if (spec->delete_missing) {
            if (!dv_store_delete(store, spec->def, id, error))
                return FALSE;
        } else if (spec->missing_state != NULL) {
            const char *state = dv_json_get_string(row, "state", "");
            /* A VM a job is still creating has no domain yet. */
            if (g_strcmp0(state, "creating") == 0 || g_strcmp0(state, spec->missing_state) == 0)
                continue;
            {
                g_autoptr(JsonObject) changes = json_object_new();
                json_object_set_string_member(changes, "state", spec->missing_state);
                json_object_set_int_member(changes, "updated_at", dv_store_now());
                if (!dv_store_update(store, spec->def, id, changes, error))
                    return FALSE;
            }
        }
    }
    return TRUE;
}

void
dv_core_copy_member(JsonObject *dst, const char *dst_name, JsonObject *src, const char *src_name)
{
    JsonNode *n = json_object_get_member(src, src_name);
    if (n != NULL)
        json_object_set_member(dst, dst_name, json_node_copy(n));
    else
        json_object_set_null_member(dst, dst_name);
}

static const char *const dv_key_vm_name[] = { "vm_id", "name", NULL };
static const char *const dv_cmp_snapshot[] = {
    "description", "vm_state", "parent_name", "is_current", "kind", "memory", NULL,
};

/* --- one VM --------------------------------------------------------------------------- */

typedef struct {
    DvEngine *engine;
    JsonObject *vm;
    JsonObject *domain;
} DvVmSyncCtx;

static gboolean
dv_core_vm_sync_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvVmSyncCtx *ctx = user_data;
    const char *vm_id = dv_json_get_string(ctx->vm, "id", "");
    const char *host_id = dv_json_get_string(ctx->vm, "host_id", "");
    g_autoptr(JsonObject) changes = json_object_new();
    g_autoptr(JsonObject) spec = json_object_new();
    g_autoptr(JsonArray) old_snaps = NULL;
    g_autoptr(GPtrArray) want = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    JsonArray *snaps = dv_json_get_array(ctx->domain, "snapshots");
    DvSyncSpec snap_spec = { &dv_table_snapshots, dv_key_vm_name, dv_cmp_snapshot, TRUE, NULL };

    g_autoptr(JsonObject) cur = NULL;
    JsonObject *cur_spec;

    /* The row as it is now, under its write lock (SQLite's write
     * transaction is exclusive; the no-op UPDATE takes PostgreSQL's row
     * lock): a job may have written Drover's own members (autostart, the
     * quota) since this sync read the host, and a stale copy would undo it. */
    if (!dv_db_exec(dv_store_get_db(store), "UPDATE vms SET updated_at = updated_at WHERE id = ?",
                    DV_SQL_ARGS(DV_SQL_TEXT_P(vm_id)), NULL, error))
        return FALSE;
    cur = dv_store_get(store, &dv_table_vms, vm_id, NULL);
    cur_spec = dv_json_get_object(cur != NULL ? cur : ctx->vm, "spec");
    dv_core_copy_member(changes, "uuid", ctx->domain, "uuid");
    dv_core_copy_member(changes, "state", ctx->domain, "state");
    dv_core_copy_member(changes, "vcpus", ctx->domain, "vcpus");
    dv_core_copy_member(changes, "memory_mib", ctx->domain, "memory_mib");
    dv_core_copy_member(changes, "generation", ctx->domain, "generation");
    json_object_set_boolean_member(changes, "secure_boot",
                                   dv_json_get_bool(ctx->domain, "secure_boot", FALSE));
    dv_core_copy_member(spec, "disks", ctx->domain, "disks");
    dv_core_copy_member(spec, "networks", ctx->domain, "networks");
    /* Autostart is read for one domain (dv_virt_domain_get()), never in a
     * host's probe: a probe's sync keeps what the last one said. */
    if (json_object_has_member(ctx->domain, "autostart"))
        dv_core_copy_member(spec, "autostart", ctx->domain, "autostart");
    else if (cur_spec != NULL && json_object_has_member(cur_spec, "autostart"))
        dv_core_copy_member(spec, "autostart", cur_spec, "autostart");
    /* The quota a VM holds is Drover's, not the domain's: it stays. */
    if (dv_json_get_object(cur_spec, "quota") != NULL)
        dv_core_copy_member(spec, "quota", cur_spec, "quota");
    /* So are the frozen bases under a linked clone's overlays, which the
     * domain's XML does not name: deleting the clone's volumes removes them. */
    if (dv_json_get_array(cur_spec, "clone_bases") != NULL)
        dv_core_copy_member(spec, "clone_bases", cur_spec, "clone_bases");
    json_object_set_object_member(changes, "spec", g_steal_pointer(&spec));
    json_object_set_int_member(changes, "updated_at", dv_store_now());
    if (!dv_store_update(store, &dv_table_vms, vm_id, changes, error))
        return FALSE;
    old_snaps = dv_core_list_all(ctx->engine, &dv_table_snapshots, "vm_id", vm_id, error);
    if (old_snaps == NULL)
        return FALSE;
    for (guint k = 0; snaps != NULL && k < json_array_get_length(snaps); k++) {
        JsonObject *s = json_array_get_object_element(snaps, k);
        JsonObject *w = json_object_new();
        json_object_set_string_member(w, "vm_id", vm_id);
        json_object_set_string_member(w, "host_id", host_id);
        dv_core_copy_member(w, "name", s, "name");
        dv_core_copy_member(w, "description", s, "description");
        dv_core_copy_member(w, "vm_state", s, "state");
        dv_core_copy_member(w, "parent_name", s, "parent");
        json_object_set_boolean_member(w, "is_current", dv_json_get_bool(s, "is_current", FALSE));
        json_object_set_string_member(w, "kind", dv_json_get_string(s, "kind", "internal"));
        json_object_set_boolean_member(w, "memory", dv_json_get_bool(s, "memory", FALSE));
        json_object_set_int_member(w, "created_at",
                                   dv_json_get_int(s, "created_at", 0) * G_USEC_PER_SEC);
        g_ptr_array_add(want, w);
    }
    return dv_core_sync_rows(store, &snap_spec, old_snaps, want, NULL, error);
}

gboolean
dv_core_vm_sync(DvEngine *engine, JsonObject *vm, JsonObject *domain, GError **error)
{
    DvVmSyncCtx ctx = { engine, vm, domain };
    return dv_store_transaction(dv_core(engine)->store, dv_core_vm_sync_txn, &ctx, error);
}

/* --- live migrations' claims ---------------------------------------------- */

gboolean
dv_core_migration_claim(DvEngine *engine, const char *uuid, GError **error)
{
    DvCore *core = dv_core(engine);
    g_autofree char *key = g_ascii_strdown(uuid, -1);
    gboolean added;

    g_mutex_lock(&core->hosts_lock);
    added = !g_hash_table_contains(core->migrating, key);
    if (added)
        g_hash_table_add(core->migrating, g_steal_pointer(&key));
    g_mutex_unlock(&core->hosts_lock);
    if (!added)
        dv_set_field_error(error, DV_ERROR_CONFLICT, "ref",
                           "ref: domain %s is being migrated already", uuid);
    return added;
}

void
dv_core_migration_release(DvEngine *engine, const char *uuid)
{
    DvCore *core = dv_core(engine);
    g_autofree char *key = g_ascii_strdown(uuid, -1);

    g_mutex_lock(&core->hosts_lock);
    g_hash_table_remove(core->migrating, key);
    g_mutex_unlock(&core->hosts_lock);
}

gboolean
dv_core_migration_is_claimed(DvEngine *engine, const char *uuid)
{
    DvCore *core = dv_core(engine);
    g_autofree char *key = NULL;
    gboolean found;

    if (uuid == NULL)
        return FALSE;
    key = g_ascii_strdown(uuid, -1);
    g_mutex_lock(&core->hosts_lock);
    found = g_hash_table_contains(core->migrating, key);
    g_mutex_unlock(&core->hosts_lock);
    return found;
}
