#define G_LOG_DOMAIN "DvCatalogs"

/* Machine catalogs: many machines stamped out from one master VM snapshot
 * (docs/CATALOGS.md).  Create validates everything before it writes
 * anything, then records the catalog, its first image, one pending base
 * per target pool and one pending row per machine (reserving the names),
 * and submits the resumable job catalog.provision
 * (dv-catalog-provision.c). */

#include "dv-catalogs-private.h"
#include "dv-identity.h"

#include <string.h>

#define DV_CATALOG_NAME_MAX 32          /* "<catalog>-<machine>-identity.iso" fits DV_NAME_MAX */
#define DV_CATALOG_MACHINE_NAME_MAX 15  /* NetBIOS computer names */
#define DV_CATALOG_MAX_MACHINES 10000
#define DV_CATALOG_PERSONAL_MAX_MIB G_GINT64_CONSTANT(1048576) /* 1 TiB */
#define DV_CATALOG_OVERLAY_INITIAL G_GINT64_CONSTANT(1048576)  /* bytes an empty overlay takes */
#define DV_CATALOG_LOAD_SAMPLE_MS 50  /* CPU load: two samples this far apart */
#define DV_CATALOG_MAX_NETWORKS 8
#define DV_CATALOG_MAX_HOSTS 64

const DvFieldSpec dv_catalog_fields[] = {
    { "name", DV_FIELD_STRING, TRUE, .max_len = DV_NAME_MAX },
    { "master_vm", DV_FIELD_STRING, TRUE },
    { "master_snapshot", DV_FIELD_STRING, TRUE, .max_len = DV_NAME_MAX },
    { "hosts", DV_FIELD_ARRAY, FALSE },
    { "host_group", DV_FIELD_STRING, FALSE },
    { "cluster", DV_FIELD_STRING, FALSE },
    { "pool", DV_FIELD_STRING, TRUE, .max_len = DV_NAME_MAX },
    { "naming_scheme", DV_FIELD_STRING, TRUE },
    { "count", DV_FIELD_INT, TRUE, .min = 1, .max = DV_CATALOG_MAX_MACHINES },
    { "type", DV_FIELD_STRING, FALSE },
    { "guest_os_profile", DV_FIELD_STRING_OR_NULL, FALSE },
    { "personal_disk_mib", DV_FIELD_INT, FALSE, "0: none", .min = 0,
      .max = DV_CATALOG_PERSONAL_MAX_MIB },
    { "personal_disk_pool", DV_FIELD_STRING_OR_NULL, FALSE,
      "a storage pool of every target host for the personal disks (default: pool)",
      .max_len = DV_NAME_MAX },
    { "machine", DV_FIELD_OBJECT, FALSE },
    { "description", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = DV_DESCRIPTION_MAX },
    { NULL },
};

static const DvFieldSpec dv_catalog_machine_fields[] = {
    { "vcpus", DV_FIELD_INT, FALSE },
    { "memory_mib", DV_FIELD_INT, FALSE },
    { "networks", DV_FIELD_ARRAY, FALSE },
    { "kernel", DV_FIELD_STRING_OR_NULL, FALSE },
    { "initrd", DV_FIELD_STRING_OR_NULL, FALSE },
    { "cmdline", DV_FIELD_STRING_OR_NULL, FALSE },
    { NULL },
};

/* --- naming ------------------------------------------------------------------ */

/* A scheme is 1-15 characters of [A-Za-z0-9-] with exactly one run of '#'
 * (the index, zero-padded to the run's width), not starting or ending with
 * '-'.  Returns the run's offset and width. */
gboolean
dv_catalog_scheme_parse(const char *scheme, guint *ret_offset, guint *ret_width, GError **error)
{
    gsize len = scheme != NULL ? strlen(scheme) : 0;
    gint start = -1;
    guint width = 0;
    guint runs = 0;

    if (len < 1 || len > DV_CATALOG_MACHINE_NAME_MAX) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "naming_scheme",
                           "naming_scheme: must be 1-%d characters (machine names are computer names)",
                           DV_CATALOG_MACHINE_NAME_MAX);
        return FALSE;
    }
    for (gsize i = 0; i < len; i++) {
        char c = scheme[i];
        if (c == '#') {
            if (i == 0 || scheme[i - 1] != '#') {
                runs++;
                start = (gint)i;
            }
            if (runs == 1)
                width++;
            continue;
        }
        if (!g_ascii_isalnum(c) && c != '-') {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "naming_scheme",
                               "naming_scheme: may hold only letters, digits, '-' and one run of '#'");
            return FALSE;
        }
    }
    if (runs != 1) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "naming_scheme",
                           "naming_scheme: needs exactly one run of '#' for the machine number "
                           "(e.g. \"desk-###\"), found %u", runs);
        return FALSE;
    }
    if (scheme[0] == '-' || scheme[len - 1] == '-') {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "naming_scheme",
                           "naming_scheme: must not start or end with '-'");
        return FALSE;
    }
    *ret_offset = (guint)start;
    *ret_width = width;
    return TRUE;
}

char *
dv_catalog_machine_name(const char *scheme, guint offset, guint width, gint64 index)
{
    g_autofree char *num = g_strdup_printf("%0*" G_GINT64_FORMAT, (int)width, index);
    return g_strdup_printf("%.*s%s%s", (int)offset, scheme, num, scheme + offset + width);
}

JsonObject *
dv_catalog_host_pool(DvEngine *engine, JsonObject *host, const char *pool, GError **error)
{
    g_autoptr(GError) local = NULL;
    JsonObject *p = dv_catalog_on_host(engine, &dv_table_pools, dv_json_get_string(host, "id", ""), "name", pool,
                                       &local);
    if (p == NULL && local != NULL)
        g_propagate_error(error, g_steal_pointer(&local));
    else if (p == NULL)
        dv_set_field_error(error, DV_ERROR_NOT_FOUND, "pool", "pool: host %s has no storage pool '%s'",
                           dv_json_get_string(host, "name", ""), pool);
    return p;
}

gboolean
dv_catalog_names_taken(DvEngine *engine, const char *host_id, const char *host_name, GHashTable *taken,
                       GError **error)
{
    g_autoptr(JsonArray) vms = dv_core_list_all(engine, &dv_table_vms, "host_id", host_id, error);
    g_autoptr(JsonArray) ms = NULL;
    if (vms == NULL)
        return FALSE;
    ms = dv_core_list_all(engine, &dv_table_catalog_machines, "host_id", host_id, error);
    if (ms == NULL)
        return FALSE;
    for (guint i = 0; i < json_array_get_length(vms); i++)
        g_hash_table_insert(taken, g_strdup(dv_json_get_string(json_array_get_object_element(vms, i), "name", "")),
                            g_strdup(host_name));
    for (guint i = 0; i < json_array_get_length(ms); i++)
        g_hash_table_insert(taken, g_strdup(dv_json_get_string(json_array_get_object_element(ms, i), "name", "")),
                            g_strdup(host_name));
    return TRUE;
}

const char *const dv_catalog_machine_volumes[] = {
    DV_CATALOG_VOLUME_DISK,
    DV_CATALOG_VOLUME_IDENTITY,
    DV_CATALOG_VOLUME_PERSONAL,
    DV_CATALOG_VOLUME_PERSONAL_OLD,
    DV_CATALOG_VOLUME_CONSOLE,
    NULL,
};

gboolean
dv_catalog_is_pooled(JsonObject *catalog)
{
    return g_strcmp0(dv_json_get_string(catalog, "catalog_type", ""), "pooled") == 0;
}

char *
dv_catalog_volume_name(const char *catalog, const char *machine, const char *what)
{
    return g_strdup_printf("%s-%s-%s", catalog, machine, what);
}

JsonObject *
dv_catalog_machine_row_new(const char *catalog_id, const char *name, gint64 name_index, const char *host_id,
                           const char *image_id, gint64 now)
{
    JsonObject *m = json_object_new();
    g_autofree char *mid = g_uuid_string_random();
    g_autofree char *uuid = g_uuid_string_random();
    json_object_set_string_member(m, "id", mid);
    json_object_set_string_member(m, "catalog_id", catalog_id);
    json_object_set_string_member(m, "name", name);
    json_object_set_int_member(m, "name_index", name_index);
    json_object_set_string_member(m, "host_id", host_id);
    json_object_set_null_member(m, "vm_id");
    json_object_set_string_member(m, "domain_uuid", uuid);
    json_object_set_string_member(m, "image_id", image_id);
    json_object_set_null_member(m, "base_id");
    json_object_set_null_member(m, "overlay_path");
    json_object_set_null_member(m, "identity_path");
    json_object_set_null_member(m, "personal_path");
    json_object_set_string_member(m, "state", "pending");
    json_object_set_null_member(m, "step");
    json_object_set_null_member(m, "error");
    json_object_set_int_member(m, "created_at", now);
    json_object_set_int_member(m, "updated_at", now);
    return m;
}

JsonObject *
dv_catalog_base_row_new(const char *catalog_id, const char *image_id, const char *host_id, const char *pool,
                        const char *volume_name, gint64 capacity, gint64 now)
{
    JsonObject *b = json_object_new();
    g_autofree char *bid = g_uuid_string_random();
    json_object_set_string_member(b, "id", bid);
    json_object_set_string_member(b, "catalog_id", catalog_id);
    json_object_set_string_member(b, "image_id", image_id);
    json_object_set_string_member(b, "host_id", host_id);
    json_object_set_string_member(b, "pool_name", pool);
    json_object_set_string_member(b, "volume_name", volume_name);
    json_object_set_null_member(b, "path");
    json_object_set_string_member(b, "format", "qcow2");
    json_object_set_int_member(b, "capacity", capacity);
    json_object_set_string_member(b, "state", "pending");
    json_object_set_null_member(b, "error");
    json_object_set_int_member(b, "refcount", 0);
    json_object_set_int_member(b, "created_at", now);
    json_object_set_int_member(b, "updated_at", now);
    return b;
}

/* --- targets ------------------------------------------------------------------ */

static gboolean
dv_catalog_host_usable(JsonObject *host, const char *field, GError **error)
{
    const char *state = dv_json_get_string(host, "state", "");
    if (g_strcmp0(state, "ok") != 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, field, "%s: host %s is %s%s%s", field,
                           dv_json_get_string(host, "name", ""), state,
                           dv_json_get_string(host, "state_reason", NULL) != NULL ? ": " : "",
                           dv_json_get_string(host, "state_reason", ""));
        return FALSE;
    }
    return TRUE;
}

/* The target hosts (rows), sorted by name; sets @ret_kind and @ret_ref_id. */
static GPtrArray *
dv_catalog_targets(DvEngine *engine, JsonObject *body, const char **ret_kind, char **ret_ref_id,
                   GError **error)
{
    g_autoptr(GPtrArray) hosts = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    JsonArray *refs = dv_json_get_array(body, "hosts");
    const char *group = dv_json_get_string(body, "host_group", NULL);
    const char *cluster = dv_json_get_string(body, "cluster", NULL);
    guint given = (refs != NULL) + (group != NULL) + (cluster != NULL);

    if (given != 1) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "hosts",
                           "hosts: give exactly one of hosts, host_group or cluster");
        return NULL;
    }
    if (refs != NULL) {
        guint n = json_array_get_length(refs);
        if (n < 1 || n > DV_CATALOG_MAX_HOSTS) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "hosts",
                               "hosts: give 1 to %d hosts", DV_CATALOG_MAX_HOSTS);
            return NULL;
        }
        for (guint i = 0; i < n; i++) {
            JsonNode *node = json_array_get_element(refs, i);
            g_autofree char *f = g_strdup_printf("hosts[%u]", i);
            JsonObject *h;
            if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f, "%s: must be a host name or id", f);
                return NULL;
            }
            h = dv_core_resolve(engine, DV_KIND_HOST, json_node_get_string(node), f, error);
            if (h == NULL)
                return NULL;
            g_ptr_array_add(hosts, h);
            if (!dv_catalog_host_usable(h, f, error))
                return NULL;
            for (guint k = 0; k + 1 < hosts->len; k++)
                if (g_strcmp0(dv_json_get_string(g_ptr_array_index(hosts, k), "id", ""),
                              dv_json_get_string(h, "id", "")) == 0) {
                    dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f, "%s: host %s is listed twice",
                                       f, dv_json_get_string(h, "name", ""));
                    return NULL;
                }
        }
        *ret_kind = "hosts";
        *ret_ref_id = NULL;
    } else {
        const char *field = group != NULL ? "host_group" : "cluster";
        g_autoptr(JsonObject) ref =
            dv_core_resolve(engine, group != NULL ? DV_KIND_HOST_GROUP : DV_KIND_CLUSTER,
                            group != NULL ? group : cluster, field, error);
        g_autoptr(GPtrArray) groups = NULL;
        guint seen = 0;
        if (ref == NULL)
            return NULL;
        if (group != NULL) {
            groups = dv_core_group_subtree(engine, dv_json_get_string(ref, "id", ""), error);
            if (groups == NULL)
                return NULL;
        }
        for (guint g = 0; g < (groups != NULL ? groups->len : 1); g++) {
            g_autoptr(JsonArray) rows = dv_core_list_all(
                engine, &dv_table_hosts, group != NULL ? "host_group_id" : "cluster_id",
                group != NULL ? g_ptr_array_index(groups, g) : dv_json_get_string(ref, "id", ""),
                error);
            if (rows == NULL)
                return NULL;
            for (guint i = 0; i < json_array_get_length(rows); i++) {
                JsonObject *h = json_array_get_object_element(rows, i);
                seen++;
                if (g_strcmp0(dv_json_get_string(h, "state", ""), "ok") == 0)
                    g_ptr_array_add(hosts, json_object_ref(h));
            }
        }
        if (hosts->len == 0) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, field, "%s: none of the %u hosts of '%s' is usable (state ok)",
                               field, seen, dv_json_get_string(ref, "name", ""));
            return NULL;
        }
        if (hosts->len > DV_CATALOG_MAX_HOSTS) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "%s: at most %d target hosts",
                               field, DV_CATALOG_MAX_HOSTS);
            return NULL;
        }
        /* Machines of one catalog must run anywhere in a cluster. */
        if (cluster != NULL) {
            JsonObject *first = g_ptr_array_index(hosts, 0);
            for (guint i = 1; i < hosts->len; i++) {
                JsonObject *h = g_ptr_array_index(hosts, i);
                if (g_strcmp0(dv_json_get_string(h, "hypervisor_type", ""),
                              dv_json_get_string(first, "hypervisor_type", "")) != 0 ||
                    dv_json_get_int(h, "hypervisor_major", 0) != dv_json_get_int(first, "hypervisor_major", 0)) {
                    dv_set_field_error(error, DV_ERROR_CONFLICT, "cluster",
                                       "cluster: hosts %s and %s run different hypervisor versions",
                                       dv_json_get_string(first, "name", ""), dv_json_get_string(h, "name", ""));
                    return NULL;
                }
            }
        }
        *ret_kind = group != NULL ? "host-group" : "cluster";
        *ret_ref_id = g_strdup(dv_json_get_string(ref, "id", ""));
    }
    return g_steal_pointer(&hosts);
}

/* A row of @def on @host_id whose @column is @value, or NULL (no error). */
JsonObject *
dv_catalog_on_host(DvEngine *engine, const DvTableDef *def, const char *host_id,
                   const char *column, const char *value, GError **error)
{
    DvFilter f[] = { { "host_id", DV_FILTER_EQ, host_id }, { column, DV_FILTER_EQ, value } };
    g_autoptr(JsonArray) rows =
        dv_store_list(dv_core(engine)->store, def, f, 2, 1, NULL, NULL, error);
    if (rows == NULL)
        return NULL;
    if (json_array_get_length(rows) == 0)
        return NULL;
    return json_object_ref(json_array_get_object_element(rows, 0));
}

/* --- create ------------------------------------------------------------------- */

typedef struct {
    JsonObject *catalog;
    JsonObject *image;
    GPtrArray *bases;    /* JsonObject */
    GPtrArray *machines; /* JsonObject */
} DvCatalogRows;

static gboolean
dv_catalog_insert_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvCatalogRows *r = user_data;
    return dv_store_insert(store, &dv_table_catalogs, r->catalog, error) &&
           dv_store_insert(store, &dv_table_catalog_images, r->image, error) &&
           dv_store_insert_all(store, &dv_table_catalog_bases, r->bases, error) &&
           dv_store_insert_all(store, &dv_table_catalog_machines, r->machines, error);
}

/* The master's boot disk (first writable disk) as its VM row records it. */
JsonObject *
dv_catalog_master_disk(JsonObject *vm)
{
    JsonArray *disks = dv_json_get_array(dv_json_get_object(vm, "spec"), "disks");
    for (guint i = 0; disks != NULL && i < json_array_get_length(disks); i++) {
        JsonObject *d = json_array_get_object_element(disks, i);
        if (g_strcmp0(dv_json_get_string(d, "device", "disk"), "disk") == 0 &&
            !dv_json_get_bool(d, "readonly", FALSE) && dv_json_get_string(d, "source", NULL) != NULL)
            return d;
    }
    return NULL;
}

JsonObject *
dv_catalog_check_master(DvEngine *engine, JsonObject *body, JsonObject **ret_disk_vol, GError **error)
{
    g_autoptr(JsonObject) vm = dv_core_resolve(
        engine, DV_KIND_VM, dv_json_get_string(body, "master_vm", NULL), "master_vm", error);
    const char *snap = dv_json_get_string(body, "master_snapshot", NULL);
    const char *state;
    JsonObject *disk;
    g_autoptr(JsonObject) s = NULL;
    g_autoptr(JsonObject) vol = NULL;

    if (vm == NULL || !dv_validate_name("master_snapshot", snap, error))
        return NULL;
    if (dv_json_get_int(vm, "generation", 1) == 2 && dv_json_get_bool(vm, "secure_boot", FALSE)) {
        dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "master_vm",
                           "master_vm: %s is generation 2 with Secure Boot on; catalogs refuse it, as "
                           "Machine Creation Services does, because the Virtual Delivery Agent does not "
                           "work with Secure Boot. Use a generation 1 master or turn Secure Boot off",
                           dv_json_get_string(vm, "name", ""));
        return NULL;
    }
    {
        DvFilter f[] = { { "vm_id", DV_FILTER_EQ, dv_json_get_string(vm, "id", "") },
                         { "name", DV_FILTER_EQ, snap } };
        g_autoptr(JsonArray) rows =
            dv_store_list(dv_core(engine)->store, &dv_table_snapshots, f, 2, 1, NULL, NULL, error);
        if (rows == NULL)
            return NULL;
        if (json_array_get_length(rows) == 0) {
            dv_set_field_error(error, DV_ERROR_NOT_FOUND, "master_snapshot",
                               "master_snapshot: VM %s has no snapshot '%s'",
                               dv_json_get_string(vm, "name", ""), snap);
            return NULL;
        }
        s = json_object_ref(json_array_get_object_element(rows, 0));
    }
    /* The base is the master's disk as it is now; only the current
     * snapshot describes that state (see docs/CATALOGS.md). */
    if (!dv_json_get_bool(s, "is_current", FALSE)) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "master_snapshot",
                           "master_snapshot: '%s' is not the current snapshot of %s; revert the master "
                           "to it first", snap, dv_json_get_string(vm, "name", ""));
        return NULL;
    }
    /* A running master's disk is frozen with an external disk-only
     * snapshot while the base is copied (dv-catalog-freeze.c). */
    state = dv_json_get_string(vm, "state", "");
    if (g_strcmp0(state, "shutoff") != 0 && g_strcmp0(state, "running") != 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "master_vm",
                           "master_vm: %s is %s; it must be shut off or running (a running master's disk "
                           "is frozen with an external snapshot while the base is copied)",
                           dv_json_get_string(vm, "name", ""), state);
        return NULL;
    }
    disk = dv_catalog_master_disk(vm);
    if (disk == NULL) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "master_vm", "master_vm: %s has no writable disk",
                           dv_json_get_string(vm, "name", ""));
        return NULL;
    }
    vol = dv_catalog_on_host(engine, &dv_table_volumes, dv_json_get_string(vm, "host_id", ""), "path",
                             dv_json_get_string(disk, "source", ""), error);
    if (vol == NULL) {
        if (error != NULL && *error != NULL)
            return NULL;
        dv_set_field_error(error, DV_ERROR_CONFLICT, "master_vm",
                           "master_vm: the disk %s of %s is no known storage volume (refresh the host)",
                           dv_json_get_string(disk, "source", ""), dv_json_get_string(vm, "name", ""));
        return NULL;
    }
    *ret_disk_vol = g_steal_pointer(&vol);
    return g_steal_pointer(&vm);
}

static JsonArray *
dv_catalog_check_machine_spec(DvEngine *engine, JsonObject *spec_in, JsonObject *master,
                              GPtrArray *hosts, JsonObject **ret_spec, GError **error)
{
    g_autoptr(JsonObject) spec = json_object_new();
    g_autoptr(JsonArray) nets = json_array_new();
    JsonArray *net_in = dv_json_get_array(spec_in, "networks");
    gint64 vcpus = dv_json_get_int(spec_in, "vcpus", dv_json_get_int(master, "vcpus", 1));
    gint64 mem = dv_json_get_int(spec_in, "memory_mib", dv_json_get_int(master, "memory_mib", 512));
    static const char *const paths[] = { "kernel", "initrd" };

    if (spec_in != NULL && !dv_json_check_fields(spec_in, dv_catalog_machine_fields, "machine.", error))
        return NULL;
    if (!dv_validate_range("machine.vcpus", vcpus, 1, 512, error) ||
        !dv_validate_range("machine.memory_mib", mem, 16, 4194304, error))
        return NULL;
    json_object_set_int_member(spec, "vcpus", vcpus);
    json_object_set_int_member(spec, "memory_mib", mem);
    for (gsize i = 0; i < G_N_ELEMENTS(paths); i++) {
        const char *p = dv_json_get_string(spec_in, paths[i], NULL);
        g_autofree char *f = g_strdup_printf("machine.%s", paths[i]);
        if (p == NULL)
            continue;
        if (p[0] != '/' || strlen(p) > 4096 || !g_utf8_validate(p, -1, NULL)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f, "%s: must be an absolute path on the hosts", f);
            return NULL;
        }
        json_object_set_string_member(spec, paths[i], p);
    }
    if (dv_json_get_string(spec_in, "cmdline", NULL) != NULL) {
        if (!dv_validate_text("machine.cmdline", dv_json_get_string(spec_in, "cmdline", NULL), 1024, error))
            return NULL;
        json_object_set_string_member(spec, "cmdline", dv_json_get_string(spec_in, "cmdline", NULL));
    }
    if (net_in != NULL && json_array_get_length(net_in) > DV_CATALOG_MAX_NETWORKS) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "machine.networks", "machine.networks: at most %d",
                           DV_CATALOG_MAX_NETWORKS);
        return NULL;
    }
    for (guint i = 0; net_in != NULL && i < json_array_get_length(net_in); i++) {
        JsonNode *node = json_array_get_element(net_in, i);
        g_autofree char *f = g_strdup_printf("machine.networks[%u]", i);
        const char *name;
        if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f, "%s: must be a network name", f);
            return NULL;
        }
        name = json_node_get_string(node);
        if (!dv_validate_name(f, name, error))
            return NULL;
        for (guint h = 0; h < hosts->len; h++) {
            JsonObject *host = g_ptr_array_index(hosts, h);
            g_autoptr(JsonObject) row = dv_catalog_on_host(engine, &dv_table_networks,
                                                           dv_json_get_string(host, "id", ""), "name", name, error);
            if (row == NULL) {
                if (error != NULL && *error != NULL)
                    return NULL;
                dv_set_field_error(error, DV_ERROR_NOT_FOUND, f, "%s: host %s has no network '%s'", f,
                                   dv_json_get_string(host, "name", ""), name);
                return NULL;
            }
        }
        {
            JsonObject *n = json_object_new();
            json_object_set_string_member(n, "network", name);
            json_array_add_object_element(nets, n);
        }
    }
    json_object_set_array_member(spec, "networks", json_array_ref(nets));
    *ret_spec = g_steal_pointer(&spec);
    return g_steal_pointer(&nets);
}

/* The personal disk pool @ppool on every host of @hosts (seed 004): in the
 * inventory, and when running, with room for the personal disks placed
 * on the host (@per_host[h] of @personal MiB; sparse files may fill).  A
 * stopped pool is accepted: the job builds (a dir pool whose directory is
 * missing) and starts it before the first disk, and checks the room
 * then. */
static gboolean
dv_catalog_check_personal_pool(DvEngine *engine, GPtrArray *hosts, const gint64 *per_host,
                               const char *ppool, gint64 personal, GError **error)
{
    for (guint h = 0; h < hosts->len; h++) {
        JsonObject *host = g_ptr_array_index(hosts, h);
        const char *hname = dv_json_get_string(host, "name", "");
        g_autoptr(GError) local = NULL;
        g_autoptr(JsonObject) p = dv_catalog_on_host(
            engine, &dv_table_pools, dv_json_get_string(host, "id", ""), "name", ppool, &local);
        g_autoptr(DvVirtHost) vh = NULL;
        g_autoptr(JsonObject) pinfo = NULL;
        gint64 needed = per_host[h] * (personal << 20);

        if (local != NULL) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        if (p == NULL) {
            dv_set_field_error(error, DV_ERROR_NOT_FOUND, "personal_disk_pool",
                               "personal_disk_pool: host %s has no storage pool '%s'", hname,
                               ppool);
            return FALSE;
        }
        if (per_host[h] == 0 || g_strcmp0(dv_json_get_string(p, "state", ""), "running") != 0)
            continue;
        vh = dv_core_virt_host(engine, host, error);
        if (vh == NULL)
            return FALSE;
        pinfo = dv_virt_pool_get_info(vh, ppool, NULL, &local);
        if (pinfo == NULL) {
            dv_set_field_error(error, DV_ERROR_UNAVAILABLE, "personal_disk_pool",
                               "personal_disk_pool: host %s: %s", hname, local->message);
            return FALSE;
        }
        if (dv_json_get_int(pinfo, "available", 0) < needed) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "personal_disk_pool",
                               "personal_disk_pool: '%s' on host %s has %" G_GINT64_FORMAT
                               " MiB free; %" G_GINT64_FORMAT " personal disks of %" G_GINT64_FORMAT
                               " MiB need %" G_GINT64_FORMAT " MiB",
                               ppool, hname, dv_json_get_int(pinfo, "available", 0) >> 20,
                               per_host[h], personal, needed >> 20);
            return FALSE;
        }
    }
    return TRUE;
}

JsonObject *
dv_engine_catalog_create(DvEngine *engine, JsonObject *body, const DvActor *actor, GError **error)
{
    const char *name = dv_json_get_string(body, "name", NULL);
    const char *pool = dv_json_get_string(body, "pool", NULL);
    const char *scheme = dv_json_get_string(body, "naming_scheme", NULL);
    const char *type = dv_json_get_string(body, "type", "pooled");
    const char *profile_ref = dv_json_get_string(body, "guest_os_profile", NULL);
    gint64 count = dv_json_get_int(body, "count", 0);
    gint64 personal = dv_json_get_int(body, "personal_disk_mib", 0);
    const char *ppool = dv_json_get_string(body, "personal_disk_pool", NULL);
    g_autoptr(JsonObject) master = NULL;
    g_autoptr(JsonObject) master_vol = NULL;
    g_autoptr(JsonObject) profile = NULL;
    g_autoptr(JsonObject) spec = NULL;
    g_autoptr(JsonArray) nets = NULL;
    g_autoptr(GPtrArray) hosts = NULL;
    g_autoptr(GPtrArray) pools = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    g_autoptr(GHashTable) taken = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(JsonObject) job = NULL;
    g_autofree char *ref_id = NULL;
    g_autofree char *id = g_uuid_string_random();
    g_autofree char *image_id = g_uuid_string_random();
    g_autofree char *job_id = g_uuid_string_random();
    g_autoptr(JsonObject) catalog = json_object_new();
    g_autoptr(JsonObject) image = json_object_new();
    g_autoptr(GPtrArray) bases = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    g_autoptr(GPtrArray) machines = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    const char *target_kind = NULL;
    guint offset = 0, width = 0;
    gint64 base_bytes;
    gint64 now = dv_store_now();
    g_autofree DvCatalogPlaceHost *place = NULL;
    g_autofree guint *order = NULL;
    g_autofree gint64 *per_host = NULL;

    if (!dv_json_check_fields(body, dv_catalog_fields, NULL, error) ||
        !dv_validate_name("name", name, error))
        return NULL;
    if (strlen(name) > DV_CATALOG_NAME_MAX) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "name",
                           "name: at most %d characters (it prefixes every volume of the catalog)",
                           DV_CATALOG_NAME_MAX);
        return NULL;
    }
    if (!dv_core_check_unique(engine, &dv_table_catalogs, "name", name, NULL, "name", "catalog",
                              error))
        return NULL;
    if (g_strcmp0(type, "pooled") != 0 && g_strcmp0(type, "persistent") != 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "type", "type: must be pooled or persistent");
        return NULL;
    }
    if (!dv_catalog_scheme_parse(scheme, &offset, &width, error) ||
        !dv_validate_range("count", count, 1, DV_CATALOG_MAX_MACHINES, error))
        return NULL;
    {
        gint64 cap = 1;
        for (guint i = 0; i < width && cap <= DV_CATALOG_MAX_MACHINES; i++)
            cap *= 10;
        if (count > cap - 1) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "count",
                               "count: naming_scheme '%s' numbers at most %" G_GINT64_FORMAT " machines",
                               scheme, cap - 1);
            return NULL;
        }
    }
    if (personal != 0 && !dv_validate_range("personal_disk_mib", personal, 1, DV_CATALOG_PERSONAL_MAX_MIB, error))
        return NULL;
    if (personal < 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "personal_disk_mib",
                           "personal_disk_mib: must be 0 (none) or 1..%" G_GINT64_FORMAT,
                           DV_CATALOG_PERSONAL_MAX_MIB);
        return NULL;
    }
    if (json_object_has_member(body, "description") &&
        !dv_validate_text("description", dv_json_get_string(body, "description", NULL), DV_DESCRIPTION_MAX, error))
        return NULL;
    master = dv_catalog_check_master(engine, body, &master_vol, error);
    if (master == NULL)
        return NULL;
    hosts = dv_catalog_targets(engine, body, &target_kind, &ref_id, error);
    if (hosts == NULL)
        return NULL;
    if (profile_ref != NULL) {
        profile = dv_core_resolve(engine, DV_KIND_GUEST_OS_PROFILE, profile_ref, "guest_os_profile",
                                  error);
        if (profile == NULL ||
            !dv_catalog_check_run_as(engine, actor, dv_json_get_string(profile, "id", NULL), error))
            return NULL;
    }
    nets = dv_catalog_check_machine_spec(engine, dv_json_get_object(body, "machine"), master, hosts, &spec, error);
    if (nets == NULL)
        return NULL;
    if (!dv_validate_name("pool", pool, error))
        return NULL;
    if (ppool != NULL) {
        if (!dv_validate_name("personal_disk_pool", ppool, error))
            return NULL;
        if (personal == 0) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "personal_disk_pool",
                               "personal_disk_pool: needs personal_disk_mib (the catalog makes no "
                               "personal disks)");
            return NULL;
        }
        if (g_strcmp0(ppool, pool) == 0)
            ppool = NULL; /* the catalog's pool: as without */
    }

    /* Pools: on every target host, running, with room for the base and
     * the initial size of the overlays placed there.  A host other than
     * the master's gets its base streamed from the master's host. */
    base_bytes = dv_json_get_int(master_vol, "capacity", 0);
    place = g_new0(DvCatalogPlaceHost, hosts->len);
    for (guint h = 0; h < hosts->len; h++) {
        JsonObject *host = g_ptr_array_index(hosts, h);
        g_autoptr(JsonObject) p = dv_catalog_host_pool(engine, host, pool, error);
        g_autoptr(DvVirtHost) vh = NULL;
        g_autoptr(JsonObject) load = NULL;
        g_autoptr(JsonObject) pinfo = NULL;
        g_autoptr(GError) local = NULL;
        if (p == NULL)
            return NULL;
        if (g_strcmp0(dv_json_get_string(p, "state", ""), "running") != 0) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "pool", "pool: storage pool '%s' on host %s is not running",
                               pool, dv_json_get_string(host, "name", ""));
            return NULL;
        }
        /* Placement reads each host live: free memory, CPU load, the
         * pool's free space (dv-catalog-place.c). */
        vh = dv_core_virt_host(engine, host, error);
        if (vh == NULL)
            return NULL;
        load = dv_virt_host_get_load(vh, DV_CATALOG_LOAD_SAMPLE_MS, NULL, &local);
        if (load != NULL)
            pinfo = dv_virt_pool_get_info(vh, pool, NULL, &local);
        if (local != NULL) {
            dv_set_field_error(error, g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND) ? DV_ERROR_NOT_FOUND
                                                                                            : DV_ERROR_UNAVAILABLE,
                               load == NULL ? "hosts" : "pool", "%s: host %s: %s", load == NULL ? "hosts" : "pool",
                               dv_json_get_string(host, "name", ""), local->message);
            return NULL;
        }
        place[h].free_memory_mib = dv_json_get_int(load, "free_memory_mib", 0);
        place[h].cpu_busy = json_object_has_member(load, "cpu_busy") && !json_object_get_null_member(load, "cpu_busy")
                                ? json_object_get_double_member(load, "cpu_busy")
                                : -1.0;
        place[h].pool_available = dv_json_get_int(pinfo, "available", 0) - base_bytes;
        if (place[h].pool_available < DV_CATALOG_OVERLAY_INITIAL && hosts->len == 1) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "pool",
                               "pool: '%s' on host %s has %" G_GINT64_FORMAT " MiB free; the base (%"
                               G_GINT64_FORMAT " MiB) and %" G_GINT64_FORMAT " overlays need %" G_GINT64_FORMAT " MiB",
                               pool, dv_json_get_string(host, "name", ""),
                               dv_json_get_int(pinfo, "available", 0) >> 20, base_bytes >> 20, count,
                               (base_bytes + count * DV_CATALOG_OVERLAY_INITIAL + (1 << 20) - 1) >> 20);
            return NULL;
        }
        /* Orphans of an earlier catalog of this name would collide. */
        {
            g_autofree char *prefix = g_strdup_printf("%s-", name);
            DvFilter f[] = { { "pool_id", DV_FILTER_EQ, dv_json_get_string(p, "id", "") },
                             { "name", DV_FILTER_PREFIX, prefix } };
            g_autoptr(JsonArray) clash = dv_store_list(dv_core(engine)->store, &dv_table_volumes, f,
                                                       2, 1, NULL, NULL, error);
            if (clash == NULL)
                return NULL;
            if (json_array_get_length(clash) > 0) {
                dv_set_field_error(error, DV_ERROR_CONFLICT, "name",
                                   "name: pool '%s' on host %s already holds volume %s, named like this "
                                   "catalog's volumes", pool, dv_json_get_string(host, "name", ""),
                                   dv_json_get_string(json_array_get_object_element(clash, 0), "name", ""));
                return NULL;
            }
        }
        g_ptr_array_add(pools, g_steal_pointer(&p));
    }
    order = g_new0(guint, count);
    per_host = dv_catalog_place(place, hosts->len, count, DV_CATALOG_OVERLAY_INITIAL, order, error);
    if (per_host == NULL)
        return NULL;
    if (ppool != NULL &&
        !dv_catalog_check_personal_pool(engine, hosts, per_host, ppool, personal, error))
        return NULL;

    /* Names: free on every target host, as VMs and as other catalogs'
     * reserved machines. */
    for (guint h = 0; h < hosts->len; h++) {
        JsonObject *host = g_ptr_array_index(hosts, h);
        if (!dv_catalog_names_taken(engine, dv_json_get_string(host, "id", ""), dv_json_get_string(host, "name", ""),
                                    taken, error))
            return NULL;
    }
    for (gint64 i = 1; i <= count; i++) {
        g_autofree char *mname = dv_catalog_machine_name(scheme, offset, width, i);
        const char *where = g_hash_table_lookup(taken, mname);
        if (where != NULL) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "naming_scheme",
                               "naming_scheme: host %s already has a machine named '%s'", where, mname);
            return NULL;
        }
    }

    /* Nothing was written so far.  Now the rows, in one transaction. */
    json_object_set_string_member(catalog, "id", id);
    json_object_set_string_member(catalog, "name", name);
    json_object_set_string_member(catalog, "catalog_type", type);
    json_object_set_string_member(catalog, "state", "provisioning");
    json_object_set_string_member(catalog, "master_vm_id", dv_json_get_string(master, "id", ""));
    json_object_set_string_member(catalog, "master_vm_name", dv_json_get_string(master, "name", ""));
    json_object_set_string_member(catalog, "master_snapshot", dv_json_get_string(body, "master_snapshot", ""));
    json_object_set_string_member(catalog, "target_kind", target_kind);
    json_object_set_string_member(catalog, "target_id", ref_id);
    {
        JsonArray *ids = json_array_new();
        for (guint h = 0; h < hosts->len; h++)
            json_array_add_string_element(ids, dv_json_get_string(g_ptr_array_index(hosts, h), "id", ""));
        json_object_set_array_member(catalog, "host_ids", ids);
    }
    json_object_set_string_member(catalog, "pool_name", pool);
    json_object_set_object_member(catalog, "machine_spec", json_object_ref(spec));
    json_object_set_string_member(catalog, "naming_scheme", scheme);
    json_object_set_int_member(catalog, "next_index", count + 1);
    json_object_set_string_member(catalog, "guest_os_profile_id",
                                  profile != NULL ? dv_json_get_string(profile, "id", "") : NULL);
    json_object_set_int_member(catalog, "personal_disk_mib", personal);
    json_object_set_string_member(catalog, "personal_disk_pool", ppool);
    json_object_set_string_member(catalog, "current_image_id", image_id);
    json_object_set_string_member(catalog, "job_id", job_id);
    json_object_set_string_member(catalog, "description", dv_json_get_string(body, "description", NULL));
    json_object_set_int_member(catalog, "created_at", now);
    json_object_set_int_member(catalog, "updated_at", now);

    json_object_set_string_member(image, "id", image_id);
    json_object_set_string_member(image, "catalog_id", id);
    json_object_set_int_member(image, "version", 1);
    json_object_set_string_member(image, "master_vm_id", dv_json_get_string(master, "id", ""));
    json_object_set_string_member(image, "master_snapshot", dv_json_get_string(body, "master_snapshot", ""));
    json_object_set_boolean_member(image, "is_current", TRUE);
    json_object_set_int_member(image, "created_at", now);

    for (guint h = 0; h < hosts->len; h++) {
        g_autofree char *vname = g_strdup_printf("%s-base-v1.qcow2", name);
        g_ptr_array_add(bases, dv_catalog_base_row_new(id, image_id,
                                                       dv_json_get_string(g_ptr_array_index(hosts, h), "id", ""),
                                                       pool, vname, base_bytes, now));
    }
    /* Spread as placed: machine i goes to the host dealt to it. */
    for (gint64 i = 1; i <= count; i++) {
        g_autofree char *mname = dv_catalog_machine_name(scheme, offset, width, i);
        JsonObject *host = g_ptr_array_index(hosts, order[i - 1]);
        g_ptr_array_add(machines,
                        dv_catalog_machine_row_new(id, mname, i, dv_json_get_string(host, "id", ""), image_id, now));
    }
    {
        /* The rows, the job and its catalog scope in one transaction: no
         * server can start another job on the catalog before this one. */
        DvCatalogRows rows = { catalog, image, bases, machines };
        DvJobScope scope = { "catalog", id, name };
        DvJobRequest req = {
            .kind = "catalog.provision",
            .target_type = "catalog",
            .target_id = id,
            .target_name = name,
            .created_by = dv_actor_get_name(actor),
            .id = job_id,
            .scopes = &scope,
            .n_scopes = 1,
        };
        job = dv_job_manager_submit_with(dv_core(engine)->jobs, &req, dv_catalog_insert_txn, &rows,
                                         error);
    }
    return g_steal_pointer(&job);
}

/* Refuses a second provisioning job while one is queued or running. */
gboolean
dv_catalog_check_idle(DvEngine *engine, JsonObject *catalog, GError **error)
{
    const char *job_id = dv_json_get_string(catalog, "job_id", NULL);
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(GError) local = NULL;
    const char *state;

    if (job_id == NULL)
        return TRUE;
    job = dv_store_get(dv_core(engine)->store, &dv_table_jobs, job_id, &local);
    if (job == NULL)
        return TRUE; /* expired from the jobs table: long finished */
    state = dv_json_get_string(job, "state", "");
    if (g_strcmp0(state, "queued") == 0 || g_strcmp0(state, "running") == 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, NULL,
                           "catalog %s is busy: job %s (%s) is %s; wait for it or cancel it",
                           dv_json_get_string(catalog, "name", ""), job_id,
                           dv_json_get_string(job, "kind", ""), state);
        return FALSE;
    }
    return TRUE;
}

JsonObject *
dv_engine_catalog_provision(DvEngine *engine, const char *ref, const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) catalog = dv_core_resolve(engine, DV_KIND_CATALOG, ref, NULL, error);
    g_autoptr(JsonObject) params = NULL;

    /* A retry takes only the machines the actor may retry (its own for a
     * self-service user). */
    if (catalog == NULL ||
        !dv_catalog_check_run_as(engine, actor,
                                 dv_json_get_string(catalog, "guest_os_profile_id", NULL), error) ||
        !dv_catalog_provision_scope(engine, actor, catalog, &params, error))
        return NULL;
    return dv_catalog_submit(engine, catalog, "catalog.provision", params, "provisioning", actor,
                             error);
}

JsonObject *
dv_engine_catalog_machines(DvEngine *engine, const char *ref, GHashTable *query, GError **error)
{
    return dv_engine_catalog_machines_for(engine, NULL, ref, query, error);
}

JsonObject *
dv_engine_catalog_machines_for(DvEngine *engine, const DvActor *actor, const char *ref,
                               GHashTable *query, GError **error)
{
    g_autoptr(JsonObject) catalog =
        dv_core_resolve_for(engine, actor, DV_KIND_CATALOG, ref, NULL, error);
    g_autoptr(GHashTable) q = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

    if (catalog == NULL)
        return NULL;
    if (query != NULL) {
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, query);
        while (g_hash_table_iter_next(&it, &k, &v))
            g_hash_table_replace(q, g_strdup(k), g_strdup(v));
    }
    g_hash_table_replace(q, g_strdup("catalog_id"), g_strdup(dv_json_get_string(catalog, "id", "")));
    /* Only the machines the actor may see, filtered in the query: a
     * self-service user's own (docs/ACCESS.md, "Catalog machines"). */
    return dv_core_list_for(engine, actor, DV_KIND_CATALOG_MACHINE, q, error);
}

void
dv_engine_catalogs_register(DvEngine *engine)
{
    dv_catalog_provision_register(engine);
    dv_catalog_delete_register(engine);
    dv_catalog_reconcile_register(engine);
    dv_catalog_image_register(engine);
    dv_catalog_machines_register(engine);
    dv_core_add_vm_before_start(engine, dv_catalog_before_start);
}
