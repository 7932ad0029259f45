#define G_LOG_DOMAIN "DvHosts"

/* Hosts: add (connect, check rights, read, save), refresh, change, remove,
 * and the sync that writes what a host reported into the inventory. */

#include "dv-hosts.h"

#include <string.h>

#define DV_HOST_MAX_CONNECTIONS 64
#define DV_HOST_MAX_OPERATIONS 1024
#define DV_HOST_MAX_MIGRATION_MIB_S (1024 * 1024)

const DvFieldSpec dv_host_add_fields[] = {
    { "name", DV_FIELD_STRING, TRUE, .max_len = DV_NAME_MAX },
    { "uri", DV_FIELD_STRING, TRUE },
    { "host_group", DV_FIELD_STRING_OR_NULL, FALSE },
    { "cluster", DV_FIELD_STRING_OR_NULL, FALSE },
    { "max_connections", DV_FIELD_INT, FALSE, .min = 1, .max = DV_HOST_MAX_CONNECTIONS },
    { "max_concurrent_operations", DV_FIELD_INT, FALSE, .min = 1,
      .max = DV_HOST_MAX_OPERATIONS },
    { "domain_type", DV_FIELD_STRING, FALSE },
    { "run_as", DV_FIELD_STRING_OR_NULL, FALSE },
    { "migration_uri", DV_FIELD_STRING_OR_NULL, FALSE,
      .description = "how the other hosts' libvirtd reach this one for a live migration "
                     "(null: uri)" },
    { "migration_bandwidth_mib_s", DV_FIELD_INT, FALSE, .min = 0,
      .max = DV_HOST_MAX_MIGRATION_MIB_S,
      .description = "the cap of every migration to or from this host (0: none)" },
    { NULL },
};

const DvFieldSpec dv_host_update_fields[] = {
    { "name", DV_FIELD_STRING, FALSE, .max_len = DV_NAME_MAX },
    { "host_group", DV_FIELD_STRING_OR_NULL, FALSE },
    { "cluster", DV_FIELD_STRING_OR_NULL, FALSE },
    { "max_connections", DV_FIELD_INT, FALSE, .min = 1, .max = DV_HOST_MAX_CONNECTIONS },
    { "max_concurrent_operations", DV_FIELD_INT, FALSE, .min = 1,
      .max = DV_HOST_MAX_OPERATIONS },
    { "domain_type", DV_FIELD_STRING, FALSE },
    { "run_as", DV_FIELD_STRING_OR_NULL, FALSE },
    { "migration_uri", DV_FIELD_STRING_OR_NULL, FALSE,
      .description = "how the other hosts' libvirtd reach this one for a live migration "
                     "(null: uri)" },
    { "migration_bandwidth_mib_s", DV_FIELD_INT, FALSE, .min = 0,
      .max = DV_HOST_MAX_MIGRATION_MIB_S,
      .description = "the cap of every migration to or from this host (0: none)" },
    { NULL },
};


static gboolean
dv_engine_is_local_uri(const char *uri)
{
    return g_strcmp0(uri, "qemu:///system") == 0 || g_strcmp0(uri, "qemu:///session") == 0;
}

/* --- sync ------------------------------------------------------------------ */



typedef struct {
    DvEngine *engine;
    const char *host_id;
    JsonObject *probe;
} DvSyncCtx;

static const char *const dv_key_name[] = { "name", NULL };
static const char *const dv_key_pool_name[] = { "pool_id", "name", NULL };
static const char *const dv_key_uuid[] = { "uuid", NULL };
static const char *const dv_key_vm_name[] = { "vm_id", "name", NULL };

static const char *const dv_cmp_pool[] = { "uuid", "type", "path", "state", "capacity",
                                           "allocation", "available", NULL };
static const char *const dv_cmp_volume[] = { "vkey", "path", "format", "capacity", "allocation", NULL };
static const char *const dv_cmp_network[] = { "uuid", "active", "bridge", NULL };
static const char *const dv_cmp_vm[] = { "name", "state", "vcpus", "memory_mib", "generation",
                                         "secure_boot", "spec", NULL };
static const char *const dv_cmp_snapshot[] = {
    "description", "vm_state", "parent_name", "is_current", "kind", "memory", NULL,
};

/* Names of domains Drover's own jobs are making on @host_id (see the
 * sync below): VM rows without a UUID yet, and catalog machines. */
static GHashTable *
dv_engine_host_claimed_names(DvEngine *engine, const char *host_id, JsonArray *vms,
                             GError **error)
{
    g_autoptr(GHashTable) names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(JsonArray) machines =
        dv_core_list_all(engine, &dv_table_catalog_machines, "host_id", host_id, error);

    if (machines == NULL)
        return NULL;
    for (guint i = 0; i < json_array_get_length(machines); i++)
        g_hash_table_add(names, g_strdup(dv_json_get_string(
                                    json_array_get_object_element(machines, i), "name", "")));
    for (guint i = 0; i < json_array_get_length(vms); i++) {
        JsonObject *vm = json_array_get_object_element(vms, i);
        if (dv_json_get_string(vm, "uuid", NULL) == NULL)
            g_hash_table_add(names, g_strdup(dv_json_get_string(vm, "name", "")));
    }
    return g_steal_pointer(&names);
}

static gboolean
dv_engine_host_rows_know_uuid(JsonArray *vms, const char *uuid)
{
    for (guint i = 0; i < json_array_get_length(vms); i++)
        if (g_strcmp0(dv_json_get_string(json_array_get_object_element(vms, i), "uuid", NULL),
                      uuid) == 0)
            return TRUE;
    return FALSE;
}

static gboolean
dv_engine_host_sync_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvSyncCtx *ctx = user_data;
    DvEngine *engine = ctx->engine;
    JsonObject *probe = ctx->probe;
    g_autoptr(JsonObject) facts = json_object_new();
    g_autoptr(GPtrArray) want_pools = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    g_autoptr(GPtrArray) want_vols = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    g_autoptr(GPtrArray) want_nets = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    g_autoptr(GPtrArray) want_vms = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    g_autoptr(GPtrArray) want_snaps = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    g_autoptr(GHashTable) pool_ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(GHashTable) vm_ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(JsonArray) old_pools = NULL;
    g_autoptr(JsonArray) old_vols = NULL;
    g_autoptr(JsonArray) old_nets = NULL;
    g_autoptr(JsonArray) old_vms = NULL;
    g_autoptr(JsonArray) old_snaps = NULL;
    g_autoptr(GHashTable) quotas = g_hash_table_new(g_str_hash, g_str_equal); /* uuid -> old spec */
    g_autoptr(GHashTable) claimed = NULL;
    JsonArray *pools = dv_json_get_array(probe, "pools");
    JsonArray *nets = dv_json_get_array(probe, "networks");
    JsonArray *doms = dv_json_get_array(probe, "domains");
    gint64 now = dv_store_now();
    DvSyncSpec pool_spec = { &dv_table_pools, dv_key_name, dv_cmp_pool, TRUE, NULL };
    DvSyncSpec vol_spec = { &dv_table_volumes, dv_key_pool_name, dv_cmp_volume, TRUE, NULL };
    DvSyncSpec net_spec = { &dv_table_networks, dv_key_name, dv_cmp_network, TRUE, NULL };
    DvSyncSpec vm_spec = { &dv_table_vms, dv_key_uuid, dv_cmp_vm, FALSE, "missing" };
    DvSyncSpec snap_spec = { &dv_table_snapshots, dv_key_vm_name, dv_cmp_snapshot, TRUE, NULL };

    /* Host facts. */
    dv_core_copy_member(facts, "hostname", probe, "hostname");
    dv_core_copy_member(facts, "cpus", probe, "cpus");
    dv_core_copy_member(facts, "memory_mib", probe, "memory_mib");
    dv_core_copy_member(facts, "free_memory_mib", probe, "free_memory_mib");
    dv_core_copy_member(facts, "hypervisor_type", probe, "hypervisor_type");
    dv_core_copy_member(facts, "hypervisor_version", probe, "hypervisor_version");
    dv_core_copy_member(facts, "hypervisor_major", probe, "hypervisor_major");
    dv_core_copy_member(facts, "libvirt_version", probe, "libvirt_version");
    json_object_set_int_member(facts, "refreshed_at", now);
    if (!dv_store_update(store, &dv_table_hosts, ctx->host_id, facts, error))
        return FALSE;

    /* Pools, then their volumes. */
    old_pools = dv_core_list_all(engine, &dv_table_pools, "host_id", ctx->host_id, error);
    if (old_pools == NULL)
        return FALSE;
    for (guint i = 0; pools != NULL && i < json_array_get_length(pools); i++) {
        JsonObject *p = json_array_get_object_element(pools, i);
        JsonObject *w = json_object_new();
        json_object_set_string_member(w, "host_id", ctx->host_id);
        dv_core_copy_member(w, "name", p, "name");
        dv_core_copy_member(w, "uuid", p, "uuid");
        dv_core_copy_member(w, "type", p, "type");
        dv_core_copy_member(w, "path", p, "path");
        dv_core_copy_member(w, "state", p, "state");
        dv_core_copy_member(w, "capacity", p, "capacity");
        dv_core_copy_member(w, "allocation", p, "allocation");
        dv_core_copy_member(w, "available", p, "available");
        json_object_set_int_member(w, "refreshed_at", now);
        g_ptr_array_add(want_pools, w);
    }
    if (!dv_core_sync_rows(store, &pool_spec, old_pools, want_pools, pool_ids, error))
        return FALSE;
    old_vols = dv_core_list_all(engine, &dv_table_volumes, "host_id", ctx->host_id, error);
    if (old_vols == NULL)
        return FALSE;
    for (guint i = 0; pools != NULL && i < json_array_get_length(pools); i++) {
        JsonObject *p = json_array_get_object_element(pools, i);
        JsonArray *vols = dv_json_get_array(p, "volumes");
        const char *pool_id = g_hash_table_lookup(pool_ids, dv_json_get_string(p, "name", ""));
        if (pool_id == NULL)
            continue;
        for (guint k = 0; vols != NULL && k < json_array_get_length(vols); k++) {
            JsonObject *v = json_array_get_object_element(vols, k);
            JsonObject *w = json_object_new();
            json_object_set_string_member(w, "pool_id", pool_id);
            json_object_set_string_member(w, "host_id", ctx->host_id);
            dv_core_copy_member(w, "name", v, "name");
            dv_core_copy_member(w, "vkey", v, "key");
            dv_core_copy_member(w, "path", v, "path");
            dv_core_copy_member(w, "format", v, "format");
            dv_core_copy_member(w, "capacity", v, "capacity");
            dv_core_copy_member(w, "allocation", v, "allocation");
            g_ptr_array_add(want_vols, w);
        }
    }
    /* Volumes of deleted pools went with them (cascade); only rows whose
     * pool still exists are compared. */
    {
        g_autoptr(JsonArray) live = json_array_new();
        for (guint i = 0; i < json_array_get_length(old_vols); i++) {
            JsonObject *v = json_array_get_object_element(old_vols, i);
            gboolean pool_alive = FALSE;
            GHashTableIter it;
            gpointer val;
            g_hash_table_iter_init(&it, pool_ids);
            while (g_hash_table_iter_next(&it, NULL, &val))
                if (g_strcmp0(val, dv_json_get_string(v, "pool_id", "")) == 0)
                    pool_alive = TRUE;
            if (pool_alive)
                json_array_add_object_element(live, json_object_ref(v));
        }
        if (!dv_core_sync_rows(store, &vol_spec, live, want_vols, NULL, error))
            return FALSE;
    }

    /* Networks. */
    old_nets = dv_core_list_all(engine, &dv_table_networks, "host_id", ctx->host_id, error);
    if (old_nets == NULL)
        return FALSE;
    for (guint i = 0; nets != NULL && i < json_array_get_length(nets); i++) {
        JsonObject *n = json_array_get_object_element(nets, i);
        JsonObject *w = json_object_new();
        json_object_set_string_member(w, "host_id", ctx->host_id);
        dv_core_copy_member(w, "name", n, "name");
        dv_core_copy_member(w, "uuid", n, "uuid");
        json_object_set_boolean_member(w, "active", dv_json_get_bool(n, "active", FALSE));
        dv_core_copy_member(w, "bridge", n, "bridge");
        g_ptr_array_add(want_nets, w);
    }
    if (!dv_core_sync_rows(store, &net_spec, old_nets, want_nets, NULL, error))
        return FALSE;

    /* Domains: new ones are imported, vanished ones marked missing. */
    old_vms = dv_core_list_all(engine, &dv_table_vms, "host_id", ctx->host_id, error);
    if (old_vms == NULL)
        return FALSE;
    /* A VM being live-migrated is its job's to write (it leaves one host
     * and arrives on another): its row is not marked missing here, nor its
     * domain imported there (dv_core_migration_claim()). */
    for (guint i = json_array_get_length(old_vms); i > 0; i--)
        if (dv_core_migration_is_claimed(
                engine, dv_json_get_string(json_array_get_object_element(old_vms, i - 1), "uuid",
                                           NULL)))
            json_array_remove_element(old_vms, i - 1);
    /* What a row's spec holds that the probe does not read stays through
     * the refresh: the quota a VM holds (Drover's, not the domain's, so
     * the VM's removal gives it back) and autostart (read for one domain
     * at a time, dv_virt_domain_get()). */
    for (guint i = 0; i < json_array_get_length(old_vms); i++) {
        JsonObject *vm = json_array_get_object_element(old_vms, i);
        JsonObject *old_spec = dv_json_get_object(vm, "spec");
        if (old_spec != NULL && dv_json_get_string(vm, "uuid", NULL) != NULL)
            g_hash_table_insert(quotas, (gpointer)dv_json_get_string(vm, "uuid", NULL), old_spec);
    }
    /* A domain a job of Drover's is making is not imported: a VM being
     * created has its row (by name, no UUID yet) and a catalog machine its
     * machine row before the domain is defined, and their jobs write the
     * row's UUID afterwards.  With host events a sync lands between the
     * two often (docs/VIRT.md, "Events"); importing would make a second
     * row for one domain. */
    claimed = dv_engine_host_claimed_names(engine, ctx->host_id, old_vms, error);
    if (claimed == NULL)
        return FALSE;
    for (guint i = 0; doms != NULL && i < json_array_get_length(doms); i++) {
        JsonObject *d = json_array_get_object_element(doms, i);
        JsonObject *w;
        JsonObject *spec;
        if ((g_hash_table_contains(claimed, dv_json_get_string(d, "name", "")) &&
             !dv_engine_host_rows_know_uuid(old_vms, dv_json_get_string(d, "uuid", ""))) ||
            dv_core_migration_is_claimed(engine, dv_json_get_string(d, "uuid", NULL)))
            continue;
        w = json_object_new();
        spec = json_object_new();
        if (g_str_has_prefix(dv_json_get_string(d, "name", ""), "drover-rights-probe-")) {
            json_object_unref(w);
            json_object_unref(spec);
            continue;
        }
        json_object_set_string_member(w, "host_id", ctx->host_id);
        dv_core_copy_member(w, "uuid", d, "uuid");
        dv_core_copy_member(w, "name", d, "name");
        dv_core_copy_member(w, "state", d, "state");
        dv_core_copy_member(w, "vcpus", d, "vcpus");
        dv_core_copy_member(w, "memory_mib", d, "memory_mib");
        dv_core_copy_member(w, "generation", d, "generation");
        json_object_set_boolean_member(w, "secure_boot", dv_json_get_bool(d, "secure_boot", FALSE));
        dv_core_copy_member(spec, "disks", d, "disks");
        dv_core_copy_member(spec, "networks", d, "networks");
        {
            JsonObject *old_spec = g_hash_table_lookup(quotas, dv_json_get_string(d, "uuid", ""));
            if (dv_json_get_object(old_spec, "quota") != NULL)
                dv_core_copy_member(spec, "quota", old_spec, "quota");
            if (old_spec != NULL && json_object_has_member(old_spec, "autostart"))
                dv_core_copy_member(spec, "autostart", old_spec, "autostart");
            /* A linked clone's frozen bases (vm.clone): deleted with it. */
            if (dv_json_get_array(old_spec, "clone_bases") != NULL)
                dv_core_copy_member(spec, "clone_bases", old_spec, "clone_bases");
        }
        json_object_set_object_member(w, "spec", spec);
        /* Only used when the row is new. */
        json_object_set_null_member(w, "template_id");
        json_object_set_string_member(w, "origin", "imported");
        json_object_set_null_member(w, "description");
        json_object_set_int_member(w, "created_at", now);
        json_object_set_int_member(w, "updated_at", now);
        g_ptr_array_add(want_vms, w);
    }
    if (!dv_core_sync_rows(store, &vm_spec, old_vms, want_vms, vm_ids, error))
        return FALSE;

    /* Snapshots of every domain. */
    old_snaps = dv_core_list_all(engine, &dv_table_snapshots, "host_id", ctx->host_id, error);
    if (old_snaps == NULL)
        return FALSE;
    for (guint i = 0; doms != NULL && i < json_array_get_length(doms); i++) {
        JsonObject *d = json_array_get_object_element(doms, i);
        JsonArray *snaps = dv_json_get_array(d, "snapshots");
        const char *vm_id = g_hash_table_lookup(vm_ids, dv_json_get_string(d, "uuid", ""));
        if (vm_id == NULL)
            continue;
        for (guint k = 0; snaps != NULL && k < json_array_get_length(snaps); k++) {
            JsonObject *s = json_array_get_object_element(snaps, k);
            JsonObject *w = json_object_new();
            json_object_set_string_member(w, "vm_id", vm_id);
            json_object_set_string_member(w, "host_id", ctx->host_id);
            dv_core_copy_member(w, "name", s, "name");
            dv_core_copy_member(w, "description", s, "description");
            dv_core_copy_member(w, "vm_state", s, "state");
            dv_core_copy_member(w, "parent_name", s, "parent");
            json_object_set_boolean_member(w, "is_current", dv_json_get_bool(s, "is_current", FALSE));
            json_object_set_string_member(w, "kind", dv_json_get_string(s, "kind", "internal"));
            json_object_set_boolean_member(w, "memory", dv_json_get_bool(s, "memory", FALSE));
            json_object_set_int_member(w, "created_at",
                                       dv_json_get_int(s, "created_at", 0) * G_USEC_PER_SEC);
            g_ptr_array_add(want_snaps, w);
        }
    }
    return dv_core_sync_rows(store, &snap_spec, old_snaps, want_snaps, NULL, error);
}

gboolean
dv_engine_host_sync(DvEngine *engine, const char *host_id, JsonObject *probe, GError **error)
{
    DvSyncCtx ctx = { engine, host_id, probe };
    return dv_store_transaction(dv_core(engine)->store, dv_engine_host_sync_txn, &ctx, error);
}

/* --- add ---------------------------------------------------------------------- */

/* The host's live migration settings (issue 14): a URI its peers use and
 * a bandwidth cap (0 clears it). */
static gboolean
dv_engine_validate_migration(DvEngine *engine, JsonObject *body, JsonObject *record,
                             GError **error)
{
    if (json_object_has_member(body, "migration_uri")) {
        const char *uri = dv_json_get_string(body, "migration_uri", NULL);
        if (uri == NULL) {
            json_object_set_null_member(record, "migration_uri");
        } else {
            g_autoptr(GError) local = NULL;
            if (!dv_virt_check_uri(dv_core(engine)->virt, uri, &local)) {
                dv_set_field_error(error, local->code, "migration_uri", "migration_uri: %s",
                                   local->message);
                return FALSE;
            }
            json_object_set_string_member(record, "migration_uri", uri);
        }
    }
    if (json_object_has_member(body, "migration_bandwidth_mib_s")) {
        gint64 v = dv_json_get_int(body, "migration_bandwidth_mib_s", 0);
        if (!dv_validate_range("migration_bandwidth_mib_s", v, 0, DV_HOST_MAX_MIGRATION_MIB_S,
                               error))
            return FALSE;
        if (v == 0)
            json_object_set_null_member(record, "migration_bandwidth_mib_s");
        else
            json_object_set_int_member(record, "migration_bandwidth_mib_s", v);
    }
    return TRUE;
}

static gboolean
dv_engine_validate_limits(JsonObject *body, JsonObject *record, GError **error)
{
    if (json_object_has_member(body, "max_connections")) {
        gint64 v = dv_json_get_int(body, "max_connections", 0);
        if (!dv_validate_range("max_connections", v, 1, DV_HOST_MAX_CONNECTIONS, error))
            return FALSE;
        json_object_set_int_member(record, "max_connections", v);
    }
    if (json_object_has_member(body, "max_concurrent_operations")) {
        gint64 v = dv_json_get_int(body, "max_concurrent_operations", 0);
        if (!dv_validate_range("max_concurrent_operations", v, 1, DV_HOST_MAX_OPERATIONS, error))
            return FALSE;
        json_object_set_int_member(record, "max_concurrent_operations", v);
    }
    if (json_object_has_member(body, "domain_type")) {
        const char *t = dv_json_get_string(body, "domain_type", "");
        if (g_strcmp0(t, "auto") != 0 && g_strcmp0(t, "kvm") != 0 && g_strcmp0(t, "qemu") != 0) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "domain_type",
                               "domain_type: must be auto, kvm or qemu");
            return FALSE;
        }
        json_object_set_string_member(record, "domain_type", t);
    }
    return TRUE;
}

static gboolean
dv_engine_resolve_placement_refs(DvEngine *engine, JsonObject *body, JsonObject *record,
                                 GError **error)
{
    const char *group = dv_json_get_string(body, "host_group", NULL);
    const char *cluster = dv_json_get_string(body, "cluster", NULL);
    const char *run_as = dv_json_get_string(body, "run_as", NULL);

    if (run_as != NULL) {
        g_autoptr(JsonObject) r = dv_core_resolve(engine, DV_KIND_RUN_AS, run_as, "run_as", error);
        if (r == NULL)
            return FALSE;
        json_object_set_string_member(record, "run_as_id", dv_json_get_string(r, "id", ""));
    } else if (json_object_has_member(body, "run_as")) {
        json_object_set_null_member(record, "run_as_id");
    }

    if (group != NULL) {
        g_autoptr(JsonObject) g =
            dv_core_resolve(engine, DV_KIND_HOST_GROUP, group, "host_group", error);
        if (g == NULL)
            return FALSE;
        json_object_set_string_member(record, "host_group_id", dv_json_get_string(g, "id", ""));
    } else if (json_object_has_member(body, "host_group")) {
        json_object_set_null_member(record, "host_group_id");
    }
    if (cluster != NULL) {
        g_autoptr(JsonObject) c =
            dv_core_resolve(engine, DV_KIND_CLUSTER, cluster, "cluster", error);
        if (c == NULL)
            return FALSE;
        json_object_set_string_member(record, "cluster_id", dv_json_get_string(c, "id", ""));
        /* A host in a cluster sits in the cluster's group. */
        if (dv_json_get_string(c, "host_group_id", NULL) != NULL && group == NULL)
            json_object_set_string_member(record, "host_group_id",
                                          dv_json_get_string(c, "host_group_id", ""));
    } else if (json_object_has_member(body, "cluster")) {
        json_object_set_null_member(record, "cluster_id");
    }
    return TRUE;
}

JsonObject *
dv_engine_host_add(DvEngine *engine, JsonObject *body, const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) rec = json_object_new();
    g_autoptr(JsonObject) params = json_object_new();
    g_autofree char *id = g_uuid_string_random();
    const char *name = dv_json_get_string(body, "name", NULL);
    const char *uri = dv_json_get_string(body, "uri", NULL);

    if (!dv_json_check_fields(body, dv_host_add_fields, NULL, error) ||
        !dv_validate_name("name", name, error) ||
        !dv_virt_check_uri(dv_core(engine)->virt, uri, error))
        return NULL;
    json_object_set_string_member(rec, "id", id);
    json_object_set_string_member(rec, "name", name);
    json_object_set_string_member(rec, "uri", uri);
    json_object_set_null_member(rec, "host_group_id");
    json_object_set_null_member(rec, "cluster_id");
    json_object_set_string_member(rec, "domain_type", "auto");
    json_object_set_int_member(rec, "max_connections", DV_VIRT_DEFAULT_MAX_CONNECTIONS);
    json_object_set_int_member(rec, "max_concurrent_operations", DV_VIRT_DEFAULT_MAX_OPERATIONS);
    if (!dv_engine_validate_limits(body, rec, error) ||
        !dv_engine_validate_migration(engine, body, rec, error) ||
        !dv_engine_resolve_placement_refs(engine, body, rec, error) ||
        !dv_core_check_unique(engine, &dv_table_hosts, "name", name, NULL, "name", "host", error) ||
        !dv_core_check_unique(engine, &dv_table_hosts, "uri", uri, NULL, "uri", "host", error))
        return NULL;
    json_object_set_object_member(params, "record", g_steal_pointer(&rec));
    return dv_core_submit(engine, "host.add", "host", id, name, id, params, actor, error);
}

static gboolean
dv_engine_check_cluster(DvEngine *engine, const char *cluster_id, const char *host_id,
                        JsonObject *probe, GError **error)
{
    g_autoptr(JsonObject) cluster = NULL;
    g_autoptr(JsonArray) members = NULL;
    const char *type = dv_json_get_string(probe, "hypervisor_type", "");
    gint64 major = dv_json_get_int(probe, "hypervisor_major", -1);

    if (cluster_id == NULL)
        return TRUE;
    cluster = dv_store_get(dv_core(engine)->store, &dv_table_clusters, cluster_id, error);
    if (cluster == NULL)
        return FALSE;
    members = dv_core_list_all(engine, &dv_table_hosts, "cluster_id", cluster_id, error);
    if (members == NULL)
        return FALSE;
    for (guint i = 0; i < json_array_get_length(members); i++) {
        JsonObject *m = json_array_get_object_element(members, i);
        if (g_strcmp0(dv_json_get_string(m, "id", ""), host_id) == 0)
            continue;
        if (dv_json_get_string(m, "hypervisor_type", NULL) == NULL)
            continue;
        if (g_strcmp0(dv_json_get_string(m, "hypervisor_type", ""), type) != 0 ||
            dv_json_get_int(m, "hypervisor_major", -1) != major) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "cluster",
                               "cluster: mixed clusters are not supported: host %s in cluster '%s' "
                               "runs %s %" G_GINT64_FORMAT ".x, this host runs %s %" G_GINT64_FORMAT ".x",
                               dv_json_get_string(m, "name", "?"),
                               dv_json_get_string(cluster, "name", "?"),
                               dv_json_get_string(m, "hypervisor_type", "?"),
                               dv_json_get_int(m, "hypervisor_major", -1), type, major);
            return FALSE;
        }
    }
    return TRUE;
}

typedef struct {
    JsonObject *record;
    gboolean exists;
    const char *cluster_id;
    JsonObject *probe;
    DvEngine *engine;
} DvHostSaveCtx;

static gboolean
dv_engine_host_save_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvHostSaveCtx *ctx = user_data;
    const char *id = dv_json_get_string(ctx->record, "id", "");

    /* Checked again inside the transaction: two hosts added to one cluster
     * at once must not both pass. */
    if (!dv_engine_check_cluster(ctx->engine, ctx->cluster_id, id, ctx->probe, error))
        return FALSE;
    if (ctx->exists) {
        g_autoptr(JsonObject) changes = json_object_new();
        JsonObjectIter it;
        const char *name;
        JsonNode *node;
        json_object_iter_init(&it, ctx->record);
        while (json_object_iter_next(&it, &name, &node))
            if (g_strcmp0(name, "id") != 0)
                json_object_set_member(changes, name, json_node_copy(node));
        if (!dv_store_update(store, &dv_table_hosts, id, changes, error))
            return FALSE;
    } else if (!dv_store_insert(store, &dv_table_hosts, ctx->record, error)) {
        return FALSE;
    }
    if (ctx->cluster_id != NULL) {
        g_autoptr(JsonObject) changes = json_object_new();
        dv_core_copy_member(changes, "hypervisor_type", ctx->probe, "hypervisor_type");
        dv_core_copy_member(changes, "hypervisor_major", ctx->probe, "hypervisor_major");
        if (!dv_store_update(store, &dv_table_clusters, ctx->cluster_id, changes, error))
            return FALSE;
    }
    return dv_engine_host_sync_txn(store, &(DvSyncCtx){ ctx->engine, id, ctx->probe }, error);
}

/* Reads the host and decides its state; shared by add and refresh. */
static JsonObject *
dv_engine_host_inspect(DvEngine *engine, DvJob *job, DvVirtHost *vh, JsonObject *record,
                       gboolean check_rights, GError **error)
{
    GCancellable *c = dv_job_get_cancellable(job);
    g_autoptr(JsonObject) probe = NULL;
    g_autoptr(JsonObject) rights = NULL;
    g_autoptr(GError) local = NULL;
    JsonArray *missing;

    if (!dv_job_step(job, "connect", error))
        return NULL;
    probe = dv_virt_host_probe(vh, c, error);
    if (probe == NULL)
        return NULL;
    if (!dv_job_step(job, "check rights", error))
        return NULL;
    if (check_rights) {
        rights = dv_virt_host_check_rights(vh, c, error);
        if (rights == NULL)
            return NULL;
        missing = dv_json_get_array(rights, "missing");
        if (missing != NULL && json_array_get_length(missing) > 0) {
            g_autoptr(GString) why = g_string_new("missing rights: ");
            for (guint i = 0; i < json_array_get_length(missing); i++) {
                if (i > 0)
                    g_string_append(why, ", ");
                g_string_append(why, json_array_get_string_element(missing, i));
            }
            json_object_set_string_member(record, "state", "needs-attention");
            json_object_set_string_member(record, "state_reason", why->str);
        } else {
            json_object_set_string_member(record, "state", "ok");
            json_object_set_null_member(record, "state_reason");
        }
        json_object_set_object_member(record, "rights", g_steal_pointer(&rights));
    } else {
        /* The rights check defines a probe domain and creates a probe
         * volume: it runs when a host is added or needs attention, not on
         * every refresh of a healthy host. */
        json_object_set_string_member(record, "state", "ok");
        json_object_set_null_member(record, "state_reason");
    }
    if (!dv_job_step(job, "read inventory", error))
        return NULL;
    if (dv_engine_is_local_uri(dv_json_get_string(record, "uri", ""))) {
        JsonObject *limits = dv_virt_host_get_daemon_limits(vh, &local);
        if (limits != NULL)
            json_object_set_object_member(record, "daemon_limits", limits);
        else {
            g_debug("daemon limits of %s: %s", dv_json_get_string(record, "name", ""), local->message);
            json_object_set_null_member(record, "daemon_limits");
        }
    } else {
        json_object_set_null_member(record, "daemon_limits");
    }
    return g_steal_pointer(&probe);
}

static const DvJobStep dv_host_steps[] = {
    { "connect", 20 },
    { "check rights", 20 },
    { "read inventory", 20 },
    { "save", 40 },
};

static gboolean
dv_engine_host_add_job(DvJob *job, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    JsonObject *params = dv_job_get_params(job);
    g_autoptr(JsonObject) record = json_object_ref(dv_json_get_object(params, "record"));
    g_autoptr(JsonObject) result = json_object_new();
    g_autoptr(JsonObject) probe = NULL;
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(JsonObject) existing = NULL;
    const char *id = dv_json_get_string(record, "id", "");
    DvHostSaveCtx ctx = { 0 };

    dv_job_set_steps(job, dv_host_steps, G_N_ELEMENTS(dv_host_steps));
    /* A resumed job may find its row already saved. */
    existing = dv_store_get(dv_core(engine)->store, &dv_table_hosts, id, NULL);
    vh = dv_core_virt_host(engine, record, error);
    if (vh == NULL) {
        if (existing == NULL)
            dv_core_virt_host_forget(engine, id);
        return FALSE;
    }
    probe = dv_engine_host_inspect(engine, job, vh, record, TRUE, error);
    if (probe == NULL) {
        if (existing == NULL)
            dv_core_virt_host_forget(engine, id);
        if (error != NULL && *error != NULL)
            g_prefix_error(error, "cannot add host %s: ", dv_json_get_string(record, "name", ""));
        return FALSE;
    }
    if (!dv_job_step(job, "save", error))
        return FALSE;
    if (existing == NULL)
        json_object_set_int_member(record, "created_at", dv_store_now());
    ctx.record = record;
    ctx.exists = existing != NULL;
    ctx.cluster_id = dv_json_get_string(record, "cluster_id", NULL);
    ctx.probe = probe;
    ctx.engine = engine;
    if (!dv_store_transaction(dv_core(engine)->store, dv_engine_host_save_txn, &ctx, error)) {
        if (existing == NULL)
            dv_core_virt_host_forget(engine, id);
        return FALSE;
    }
    dv_engine_hosts_watch_host(engine, id);
    json_object_set_string_member(result, "id", id);
    json_object_set_string_member(result, "name", dv_json_get_string(record, "name", ""));
    json_object_set_string_member(result, "state", dv_json_get_string(record, "state", ""));
    json_object_set_int_member(result, "domains",
                               json_array_get_length(dv_json_get_array(probe, "domains")));
    dv_job_set_result(job, result);
    return TRUE;
}

/* --- refresh ---------------------------------------------------------------------- */

static gboolean
dv_engine_host_refresh_job(DvJob *job, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    const char *id = dv_job_get_target_id(job);
    g_autoptr(JsonObject) host = NULL;
    g_autoptr(JsonObject) record = json_object_new();
    g_autoptr(JsonObject) probe = NULL;
    g_autoptr(JsonObject) result = json_object_new();
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(GError) local = NULL;
    DvHostSaveCtx ctx = { 0 };

    dv_job_set_steps(job, dv_host_steps, G_N_ELEMENTS(dv_host_steps));
    host = dv_store_get(dv_core(engine)->store, &dv_table_hosts, id, error);
    if (host == NULL)
        return FALSE;
    json_object_set_string_member(record, "id", id);
    json_object_set_string_member(record, "uri", dv_json_get_string(host, "uri", ""));
    json_object_set_string_member(record, "name", dv_json_get_string(host, "name", ""));
    vh = dv_core_virt_host(engine, host, error);
    if (vh == NULL)
        return FALSE;
    /* A refresh asked for by a person rereads the pools' directories too
     * (libvirt lists a file copied into a pool only after a pool refresh,
     * and no event tells of it); a host last seen unreachable is only
     * probed, so its refresh costs one connection timeout, not one per pool. */
    if (g_strcmp0(dv_json_get_string(host, "state", ""), "ok") == 0) {
        g_autoptr(JsonArray) pools =
            dv_core_list_all(engine, &dv_table_pools, "host_id", id, NULL);
        for (guint i = 0; pools != NULL && i < json_array_get_length(pools); i++) {
            g_autoptr(GError) ignored = NULL;
            dv_virt_pool_refresh(vh,
                                 dv_json_get_string(json_array_get_object_element(pools, i),
                                                    "name", ""),
                                 NULL, &ignored);
        }
    }
    probe = dv_engine_host_inspect(engine, job, vh, record,
                                   g_strcmp0(dv_json_get_string(host, "state", ""), "ok") != 0 ||
                                       dv_json_get_object(host, "rights") == NULL,
                                   &local);
    if (probe == NULL) {
        /* Unreachable hosts stay in the inventory, marked. */
        g_autoptr(JsonObject) changes = json_object_new();
        if (g_error_matches(local, DV_ERROR, DV_ERROR_CANCELLED)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        json_object_set_string_member(changes, "state", "unreachable");
        json_object_set_string_member(changes, "state_reason", local->message);
        dv_store_update(dv_core(engine)->store, &dv_table_hosts, id, changes, NULL);
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (!dv_job_step(job, "save", error))
        return FALSE;
    ctx.record = record;
    ctx.exists = TRUE;
    ctx.cluster_id = NULL; /* membership was checked when it joined */
    ctx.probe = probe;
    ctx.engine = engine;
    if (!dv_store_transaction(dv_core(engine)->store, dv_engine_host_save_txn, &ctx, error))
        return FALSE;
    json_object_set_string_member(result, "id", id);
    json_object_set_string_member(result, "state", dv_json_get_string(record, "state", ""));
    json_object_set_int_member(result, "domains",
                               json_array_get_length(dv_json_get_array(probe, "domains")));
    dv_job_set_result(job, result);
    return TRUE;
}

JsonObject *
dv_engine_host_refresh(DvEngine *engine, const char *host_ref, const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) host = dv_core_resolve(engine, DV_KIND_HOST, host_ref, NULL, error);
    const char *id;
    if (host == NULL)
        return NULL;
    id = dv_json_get_string(host, "id", "");
    return dv_core_submit(engine, "host.refresh", "host", id, dv_json_get_string(host, "name", ""),
                          id, NULL, actor, error);
}

/* --- update ------------------------------------------------------------------------ */

static gboolean
dv_engine_host_update_job(DvJob *job, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    JsonObject *changes = dv_json_get_object(dv_job_get_params(job), "changes");
    const char *id = dv_job_get_target_id(job);
    const char *cluster_id = dv_json_get_string(changes, "cluster_id", NULL);
    static const DvJobStep steps[] = { { "check", 50 }, { "save", 50 } };
    g_autoptr(JsonObject) host = NULL;
    g_autoptr(JsonObject) updated = NULL;

    dv_job_set_steps(job, steps, G_N_ELEMENTS(steps));
    if (!dv_job_step(job, "check", error))
        return FALSE;
    host = dv_store_get(dv_core(engine)->store, &dv_table_hosts, id, error);
    if (host == NULL)
        return FALSE;
    if (cluster_id != NULL &&
        g_strcmp0(cluster_id, dv_json_get_string(host, "cluster_id", NULL)) != 0) {
        g_autoptr(JsonObject) probe = json_object_new();
        if (dv_json_get_string(host, "hypervisor_type", NULL) == NULL) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "cluster",
                               "cluster: host %s has never been read; refresh it first",
                               dv_json_get_string(host, "name", ""));
            return FALSE;
        }
        dv_core_copy_member(probe, "hypervisor_type", host, "hypervisor_type");
        dv_core_copy_member(probe, "hypervisor_major", host, "hypervisor_major");
        if (!dv_engine_check_cluster(engine, cluster_id, id, probe, error))
            return FALSE;
    }
    if (!dv_job_step(job, "save", error))
        return FALSE;
    if (!dv_store_update(dv_core(engine)->store, &dv_table_hosts, id, changes, error))
        return FALSE;
    updated = dv_store_get(dv_core(engine)->store, &dv_table_hosts, id, error);
    if (updated == NULL)
        return FALSE;
    /* New limits apply to the next operations on this host. */
    {
        g_autoptr(DvVirtHost) vh = dv_core_virt_host(engine, updated, error);
        if (vh == NULL)
            return FALSE;
    }
    return TRUE;
}

JsonObject *
dv_engine_host_update(DvEngine *engine, JsonObject *host, JsonObject *body, const DvActor *actor,
                      GError **error)
{
    g_autoptr(JsonObject) changes = json_object_new();
    g_autoptr(JsonObject) params = json_object_new();
    const char *id = dv_json_get_string(host, "id", "");
    const char *name = dv_json_get_string(body, "name", NULL);

    if (!dv_json_check_fields(body, dv_host_update_fields, NULL, error))
        return NULL;
    if (name != NULL) {
        if (!dv_validate_name("name", name, error) ||
            !dv_core_check_unique(engine, &dv_table_hosts, "name", name, id, "name", "host", error))
            return NULL;
        json_object_set_string_member(changes, "name", name);
    }
    if (!dv_engine_validate_limits(body, changes, error) ||
        !dv_engine_validate_migration(engine, body, changes, error) ||
        !dv_engine_resolve_placement_refs(engine, body, changes, error))
        return NULL;
    if (json_object_get_size(changes) == 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL, "nothing to change");
        return NULL;
    }
    json_object_set_object_member(params, "changes", g_steal_pointer(&changes));
    return dv_core_submit(engine, "host.update", "host", id, dv_json_get_string(host, "name", ""),
                          id, params, actor, error);
}

/* --- remove ------------------------------------------------------------------------- */

static gboolean
dv_engine_host_remove_job(DvJob *job, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    const char *id = dv_job_get_target_id(job);
    static const DvJobStep steps[] = { { "remove from inventory", 1 } };
    g_autoptr(GError) local = NULL;

    dv_job_set_steps(job, steps, G_N_ELEMENTS(steps));
    if (!dv_job_step(job, "remove from inventory", error))
        return FALSE;
    /* Pools, volumes, networks, VM records and snapshots go with it
     * (cascade); nothing on the host itself is touched. */
    if (!dv_store_delete(dv_core(engine)->store, &dv_table_hosts, id, &local) &&
        !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    dv_engine_hosts_watch_forget(engine, id);
    dv_core_virt_host_forget(engine, id);
    return TRUE;
}

JsonObject *
dv_engine_host_remove(DvEngine *engine, JsonObject *host, const DvActor *actor, GError **error)
{
    const char *id = dv_json_get_string(host, "id", "");
    DvFilter f = { "host_id", DV_FILTER_EQ, id };

    if (dv_store_count(dv_core(engine)->store, &dv_table_library_shares, &f, 1, NULL) != 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, NULL,
                           "host %s holds a library share; remove the share first",
                           dv_json_get_string(host, "name", ""));
        return NULL;
    }
    return dv_core_submit(engine, "host.remove", "host", id, dv_json_get_string(host, "name", ""),
                          id, NULL, actor, error);
}

/* Hosts shown with one "limits" member: ours beside libvirtd's. */
static JsonObject *
dv_hosts_shape(DvEngine *engine, DvKind kind, JsonObject *record)
{
    JsonObject *out;
    JsonObject *limits = json_object_new();
    JsonObject *daemon = dv_json_get_object(record, "daemon_limits");
    json_object_set_int_member(limits, "max_connections",
                               dv_json_get_int(record, "max_connections", 0));
    json_object_set_int_member(limits, "max_concurrent_operations",
                               dv_json_get_int(record, "max_concurrent_operations", 0));
    if (daemon != NULL)
        json_object_set_object_member(limits, "daemon", json_object_ref(daemon));
    else
        json_object_set_null_member(limits, "daemon");
    /* One place for limits: ours beside libvirtd's. */
    out = json_object_new();
    {
        JsonObjectIter it;
        const char *name;
        JsonNode *node;
        json_object_iter_init(&it, record);
        while (json_object_iter_next(&it, &name, &node)) {
            if (g_strcmp0(name, "max_connections") == 0 ||
                g_strcmp0(name, "max_concurrent_operations") == 0 ||
                g_strcmp0(name, "daemon_limits") == 0)
                continue;
            json_object_set_member(out, name, json_node_copy(node));
        }
    }
    json_object_set_object_member(out, "limits", limits);
    return out;
}

void
dv_engine_hosts_register(DvEngine *engine)
{
    static const struct {
        const char *name;
        DvJobFunc func;
    } kinds[] = {
        { "host.add", dv_engine_host_add_job },
        { "host.refresh", dv_engine_host_refresh_job },
        { "host.update", dv_engine_host_update_job },
        { "host.remove", dv_engine_host_remove_job },
    };
    for (gsize i = 0; i < G_N_ELEMENTS(kinds); i++) {
        DvJobKind kind = { kinds[i].name, kinds[i].func, engine, TRUE };
        dv_job_manager_register_kind(dv_core(engine)->jobs, &kind);
    }
    dv_core_set_shaper(engine, DV_KIND_HOST, dv_hosts_shape);
    dv_engine_netpool_register(engine);
}

