#define G_LOG_DOMAIN "DvCatalogReconcile"

/* The catalog reconciler (docs/CATALOGS.md): the database against what
 * every target host holds now, read live from libvirt.
 *
 * Orphans are things on a host named like the catalog's but unknown to
 * its rows: volumes "<catalog>-..." in the catalog's pool (not those of
 * another catalog whose name extends this one, "<catalog>-x-..."), and
 * domains whose name fits the naming scheme and whose description says
 * "machine of catalog <catalog>".  A machine row knows every volume named
 * after it, recorded or not, and its domain by the UUID chosen at create:
 * what a running or interrupted provisioning makes is never an orphan.
 * Missing things are what a row records as made but the host lacks.
 *
 * GET reports; the job catalog.reconcile reports and, when asked with
 * delete_orphans, deletes the orphans it finds (never anything else). */

#include "dv-catalogs-private.h"

#include <string.h>

/* Entries per list in one report; a reconcile after deleting shows more. */
#define DV_CATALOG_RECONCILE_MAX 10000

const DvFieldSpec dv_catalog_reconcile_fields[] = {
    { "delete_orphans", DV_FIELD_BOOL, FALSE },
    { NULL },
};

static gint
dv_catalog_strcmp_indirect(gconstpointer a, gconstpointer b)
{
    return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

GPtrArray *
dv_catalog_host_ids(JsonObject *catalog, JsonArray *machines, JsonArray *bases)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
    JsonArray *targets = dv_json_get_array(catalog, "host_ids");
    JsonArray *lists[] = { machines, bases };

    for (guint i = 0; targets != NULL && i < json_array_get_length(targets); i++) {
        const char *id = json_array_get_string_element(targets, i);
        if (id != NULL && g_hash_table_add(seen, (gpointer)id))
            g_ptr_array_add(ids, g_strdup(id));
    }
    for (gsize l = 0; l < G_N_ELEMENTS(lists); l++)
        for (guint i = 0; lists[l] != NULL && i < json_array_get_length(lists[l]); i++) {
            const char *id =
                dv_json_get_string(json_array_get_object_element(lists[l], i), "host_id", NULL);
            if (id != NULL && g_hash_table_add(seen, (gpointer)id))
                g_ptr_array_add(ids, g_strdup(id));
        }
    g_ptr_array_sort(ids, dv_catalog_strcmp_indirect);
    return g_steal_pointer(&ids);
}

/* Does @name fit @scheme (the '#' run at @offset, @width digits)? */
static gboolean
dv_catalog_name_fits(const char *name, const char *scheme, guint offset, guint width)
{
    gsize len = strlen(scheme);
    if (strlen(name) != len || strncmp(name, scheme, offset) != 0 ||
        strcmp(name + offset + width, scheme + offset + width) != 0)
        return FALSE;
    for (guint i = offset; i < offset + width; i++)
        if (!g_ascii_isdigit(name[i]))
            return FALSE;
    return TRUE;
}

static char *
dv_catalog_basename(const char *path)
{
    return path != NULL ? g_path_get_basename(path) : NULL;
}

/* Names of other catalogs that extend this one's prefix ("<name>-..."). */
static GPtrArray *
dv_catalog_nested_prefixes(DvEngine *engine, JsonObject *catalog, GError **error)
{
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *prefix = g_strdup_printf("%s-", dv_json_get_string(catalog, "name", ""));
    g_autofree char *cursor = NULL;
    DvFilter f = { "name", DV_FILTER_PREFIX, prefix };

    do {
        g_autofree char *next = NULL;
        g_autoptr(JsonArray) page = dv_store_list(dv_core(engine)->store, &dv_table_catalogs, &f, 1,
                                                  DV_PAGE_MAX, cursor, &next, error);
        if (page == NULL)
            return NULL;
        for (guint i = 0; i < json_array_get_length(page); i++)
            g_ptr_array_add(out, g_strdup_printf("%s-", dv_json_get_string(
                                                            json_array_get_object_element(page, i),
                                                            "name", "")));
        g_free(cursor);
        cursor = g_steal_pointer(&next);
    } while (cursor != NULL);
    return g_steal_pointer(&out);
}

typedef struct _DvReconcileOut DvReconcileOut;
static void dv_reconcile_add(DvReconcileOut *out, JsonArray *list, JsonObject *entry);

struct _DvReconcileOut {
    JsonArray *orphans;
    JsonArray *missing;
    JsonArray *unreachable;
    JsonArray *pool_problems;
    gboolean truncated;
};

/* A pool that cannot be read (its directory removed on the host, stopped,
 * not defined) is that pool's problem, reported under it: its volumes are
 * then missing machine by machine.  Only a host that does not answer (or
 * a cancel) stops the host's comparison.  TRUE when @local was taken. */
static gboolean
dv_reconcile_pool_problem(DvReconcileOut *out, JsonObject *host, const char *pool, GError **local)
{
    JsonObject *e;

    if (*local == NULL || !((*local)->domain == DV_ERROR && ((*local)->code == DV_ERROR_NOT_FOUND ||
                                                          (*local)->code == DV_ERROR_CONFLICT ||
                                                          (*local)->code == DV_ERROR_HOST_FAILED)))
        return FALSE;
    e = json_object_new();
    json_object_set_string_member(e, "host", dv_json_get_string(host, "name", ""));
    json_object_set_string_member(e, "host_id", dv_json_get_string(host, "id", ""));
    json_object_set_string_member(e, "pool", pool);
    json_object_set_string_member(e, "error", (*local)->message);
    dv_reconcile_add(out, out->pool_problems, e);
    g_clear_error(local);
    return TRUE;
}

static void
dv_reconcile_add(DvReconcileOut *out, JsonArray *list, JsonObject *entry)
{
    if (json_array_get_length(list) >= DV_CATALOG_RECONCILE_MAX) {
        out->truncated = TRUE;
        json_object_unref(entry);
        return;
    }
    json_array_add_object_element(list, entry);
}

static void
dv_reconcile_missing(DvReconcileOut *out, JsonObject *host, const char *machine, const char *kind,
                     const char *name)
{
    JsonObject *e = json_object_new();
    json_object_set_string_member(e, "host", dv_json_get_string(host, "name", ""));
    json_object_set_string_member(e, "host_id", dv_json_get_string(host, "id", ""));
    json_object_set_string_member(e, "machine", machine);
    json_object_set_string_member(e, "kind", kind);
    json_object_set_string_member(e, "name", name);
    dv_reconcile_add(out, out->missing, e);
}

/* Compares one host; FALSE only for errors of the database (a host that
 * cannot be read goes into out->unreachable). */
static gboolean
dv_reconcile_host(DvEngine *engine, JsonObject *catalog, const char *host_id, JsonArray *machines,
                  JsonArray *bases, GHashTable *domain_uuids, GPtrArray *nested, GCancellable *c,
                  DvReconcileOut *out, GError **error)
{
    const char *cname = dv_json_get_string(catalog, "name", "");
    const char *pool = dv_json_get_string(catalog, "pool_name", "");
    const char *ppool = dv_json_get_string(catalog, "personal_disk_pool", NULL);
    const char *scheme = dv_json_get_string(catalog, "naming_scheme", "");
    g_autofree char *vprefix = g_strdup_printf("%s-", cname);
    g_autofree char *marker = g_strdup_printf(DV_CATALOG_DOMAIN_DESCRIPTION, cname);
    g_autofree char *dprefix = NULL;
    g_autoptr(JsonObject) host = NULL;
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(JsonArray) vols = NULL;
    g_autoptr(JsonArray) doms = NULL;
    g_autoptr(GError) local = NULL;
    g_autoptr(GHashTable) known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(GHashTable) listed = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) machine_names = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) live_uuids = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) id_pools = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    gboolean pool_missing = FALSE;
    guint offset = 0, width = 0;

    if (!dv_catalog_scheme_parse(scheme, &offset, &width, error))
        return FALSE;
    dprefix = g_strndup(scheme, offset);
    host = dv_store_get(dv_core(engine)->store, &dv_table_hosts, host_id, &local);
    if (host == NULL) {
        if (!g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        return TRUE; /* a removed host: its rows went with it */
    }
    vh = dv_core_virt_host(engine, host, &local);
    /* Best effort: libvirt then sees files it did not make. */
    if (vh != NULL && !dv_virt_pool_refresh(vh, pool, c, &local)) {
        if (g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            pool_missing = TRUE;
            g_clear_error(&local);
        }
    }
    if (vh != NULL && local == NULL && !pool_missing)
        vols = dv_virt_pool_list_volumes(vh, pool, vprefix, c, &local);
    if (dv_reconcile_pool_problem(out, host, pool, &local))
        pool_missing = TRUE;
    /* The identity pools' volumes too, each entry naming its pool. */
    if (vh != NULL && local == NULL) {
        g_autofree char *pprefix = g_strdup_printf("%s-" DV_CATALOG_IDENTITY_POOL_INFIX, cname);
        g_autoptr(JsonArray) pools = dv_virt_pool_list_by_prefix(vh, pprefix, c, &local);
        if (vols == NULL && pools != NULL)
            vols = json_array_new();
        for (guint i = 0; pools != NULL && local == NULL && i < json_array_get_length(pools); i++) {
            const char *pname = json_array_get_string_element(pools, i);
            g_autoptr(JsonArray) ivols = NULL;
            if (!dv_catalog_is_identity_pool(cname, pname))
                continue;
            g_hash_table_add(id_pools, g_strdup(pname));
            if (dv_virt_pool_refresh(vh, pname, c, &local))
                ivols = dv_virt_pool_list_volumes(vh, pname, vprefix, c, &local);
            if (dv_reconcile_pool_problem(out, host, pname, &local))
                continue;
            for (guint k = 0; ivols != NULL && k < json_array_get_length(ivols); k++) {
                JsonObject *v = json_array_get_object_element(ivols, k);
                json_object_set_string_member(v, "pool", pname);
                json_array_add_object_element(vols, json_object_ref(v));
            }
        }
    }
    /* The personal disks' pool when it is another (seed 004): its
     * volumes of this catalog too, each entry naming the pool. */
    if (vh != NULL && local == NULL && ppool != NULL && ppool[0] != '\0' &&
        g_strcmp0(ppool, pool) != 0) {
        g_autoptr(JsonArray) pvols = NULL;
        if (dv_virt_pool_refresh(vh, ppool, c, &local))
            pvols = dv_virt_pool_list_volumes(vh, ppool, vprefix, c, &local);
        if (!dv_reconcile_pool_problem(out, host, ppool, &local)) {
            if (vols == NULL)
                vols = json_array_new();
            for (guint k = 0; pvols != NULL && k < json_array_get_length(pvols); k++) {
                JsonObject *v = json_array_get_object_element(pvols, k);
                json_object_set_string_member(v, "pool", ppool);
                json_array_add_object_element(vols, json_object_ref(v));
            }
        }
    }
    if (vh != NULL && local == NULL)
        doms = dv_virt_domain_list_by_prefix(vh, dprefix, c, &local);
    if (local != NULL) {
        JsonObject *e;
        if (g_error_matches(local, DV_ERROR, DV_ERROR_CANCELLED)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        e = json_object_new();
        json_object_set_string_member(e, "host", dv_json_get_string(host, "name", ""));
        json_object_set_string_member(e, "host_id", host_id);
        json_object_set_string_member(e, "error", local->message);
        json_array_add_object_element(out->unreachable, e);
        return TRUE;
    }

    /* What the rows know on this host. */
    for (guint i = 0; i < json_array_get_length(machines); i++) {
        JsonObject *m = json_array_get_object_element(machines, i);
        static const char *const cols[] = { "overlay_path", "identity_path", "personal_path" };
        if (g_strcmp0(dv_json_get_string(m, "host_id", ""), host_id) != 0)
            continue;
        g_hash_table_add(machine_names, (gpointer)dv_json_get_string(m, "name", ""));
        for (gsize k = 0; dv_catalog_machine_volumes[k] != NULL; k++)
            g_hash_table_add(known, dv_catalog_volume_name(cname, dv_json_get_string(m, "name", ""),
                                                           dv_catalog_machine_volumes[k]));
        for (gsize k = 0; k < G_N_ELEMENTS(cols); k++)
            if (dv_json_get_string(m, cols[k], NULL) != NULL)
                g_hash_table_add(known, dv_catalog_basename(dv_json_get_string(m, cols[k], NULL)));
    }
    for (guint i = 0; i < json_array_get_length(bases); i++) {
        JsonObject *b = json_array_get_object_element(bases, i);
        if (g_strcmp0(dv_json_get_string(b, "host_id", ""), host_id) == 0)
            g_hash_table_add(known, g_strdup(dv_json_get_string(b, "volume_name", "")));
    }

    /* Orphan volumes. */
    for (guint i = 0; vols != NULL && i < json_array_get_length(vols); i++) {
        JsonObject *v = json_array_get_object_element(vols, i);
        const char *name = dv_json_get_string(v, "name", "");
        gboolean other = FALSE;
        JsonObject *e;
        g_hash_table_add(listed, (gpointer)name);
        /* The directory of an identity pool, listed in the catalog's pool. */
        if (g_hash_table_contains(known, name) || dv_catalog_is_identity_pool(cname, name))
            continue;
        /* QEMU's overlay of a pooled machine's transient disk,
         * "<base>.TRANSIENT-<machine>": libvirt deletes it when the
         * machine stops. */
        {
            const char *tr = strstr(name, DV_CATALOG_TRANSIENT_INFIX);
            if (tr != NULL &&
                g_hash_table_contains(machine_names, tr + strlen(DV_CATALOG_TRANSIENT_INFIX))) {
                g_autofree char *base = g_strndup(name, (gsize)(tr - name));
                if (g_hash_table_contains(known, base))
                    continue;
            }
        }
        for (guint k = 0; k < nested->len && !other; k++)
            other = g_str_has_prefix(name, g_ptr_array_index(nested, k));
        if (other)
            continue;
        e = json_object_new();
        json_object_set_string_member(e, "host", dv_json_get_string(host, "name", ""));
        json_object_set_string_member(e, "host_id", host_id);
        json_object_set_string_member(e, "kind", "volume");
        json_object_set_string_member(e, "name", name);
        json_object_set_string_member(e, "path", dv_json_get_string(v, "path", NULL));
        json_object_set_string_member(e, "pool", dv_json_get_string(v, "pool", pool));
        dv_reconcile_add(out, out->orphans, e);
    }
    /* Orphan domains: the catalog's by name and description, unknown by
     * UUID. */
    for (guint i = 0; i < json_array_get_length(doms); i++) {
        JsonObject *d = json_array_get_object_element(doms, i);
        const char *name = dv_json_get_string(d, "name", "");
        const char *uuid = dv_json_get_string(d, "uuid", "");
        JsonObject *e;
        g_hash_table_add(live_uuids, (gpointer)uuid);
        if (g_hash_table_contains(domain_uuids, uuid) ||
            g_strcmp0(dv_json_get_string(d, "description", NULL), marker) != 0 ||
            !dv_catalog_name_fits(name, scheme, offset, width))
            continue;
        e = json_object_new();
        json_object_set_string_member(e, "host", dv_json_get_string(host, "name", ""));
        json_object_set_string_member(e, "host_id", host_id);
        json_object_set_string_member(e, "kind", "domain");
        json_object_set_string_member(e, "name", name);
        json_object_set_null_member(e, "path");
        json_object_set_string_member(e, "uuid", uuid);
        json_object_set_boolean_member(e, "running", dv_json_get_bool(d, "active", FALSE));
        dv_reconcile_add(out, out->orphans, e);
    }

    /* Missing: recorded as made, absent from the host. */
    for (guint i = 0; i < json_array_get_length(machines); i++) {
        JsonObject *m = json_array_get_object_element(machines, i);
        static const char *const cols[] = { "overlay_path", "identity_path", "personal_path" };
        const char *mname = dv_json_get_string(m, "name", "");
        if (g_strcmp0(dv_json_get_string(m, "host_id", ""), host_id) != 0)
            continue;
        for (gsize k = 0; k < G_N_ELEMENTS(cols); k++) {
            g_autofree char *name = dv_catalog_basename(dv_json_get_string(m, cols[k], NULL));
            if (name != NULL && !g_hash_table_contains(listed, name))
                dv_reconcile_missing(out, host, mname, "volume", name);
        }
        /* The identity pool of a recorded identity disk, undefined on the
         * host: named once. */
        if (dv_json_get_string(m, "identity_path", NULL) != NULL) {
            char *ipool = dv_catalog_identity_pool_name(cname, dv_json_get_int(m, "name_index", 0));
            if (g_hash_table_add(id_pools, ipool)) {
                g_autoptr(GError) gone = g_error_new(DV_ERROR, DV_ERROR_NOT_FOUND,
                                                     "storage pool %s is not defined on the host", ipool);
                dv_reconcile_pool_problem(out, host, ipool, &gone);
            }
        }
        if (g_strcmp0(dv_json_get_string(m, "step", NULL), "define") == 0 &&
            !g_hash_table_contains(live_uuids, dv_json_get_string(m, "domain_uuid", "")))
            dv_reconcile_missing(out, host, mname, "domain", mname);
    }
    for (guint i = 0; i < json_array_get_length(bases); i++) {
        JsonObject *b = json_array_get_object_element(bases, i);
        const char *name = dv_json_get_string(b, "volume_name", "");
        if (g_strcmp0(dv_json_get_string(b, "host_id", ""), host_id) == 0 &&
            g_strcmp0(dv_json_get_string(b, "state", ""), "ready") == 0 &&
            !g_hash_table_contains(listed, name))
            dv_reconcile_missing(out, host, NULL, "volume", name);
    }
    return TRUE;
}

JsonObject *
dv_catalog_reconcile_report(DvEngine *engine, JsonObject *catalog, GCancellable *c, GError **error)
{
    const char *catalog_id = dv_json_get_string(catalog, "id", "");
    g_autoptr(JsonArray) machines = NULL;
    g_autoptr(JsonArray) bases = NULL;
    g_autoptr(GPtrArray) hosts = NULL;
    g_autoptr(GPtrArray) nested = NULL;
    g_autoptr(GHashTable) uuids = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(JsonObject) report = json_object_new();
    DvReconcileOut out = { json_array_new(), json_array_new(), json_array_new(), json_array_new(), FALSE };

    json_object_set_array_member(report, "orphans_on_hosts", out.orphans);
    json_object_set_array_member(report, "missing_on_hosts", out.missing);
    json_object_set_array_member(report, "unreachable_hosts", out.unreachable);
    json_object_set_array_member(report, "pool_problems", out.pool_problems);
    machines =
        dv_core_list_all(engine, &dv_table_catalog_machines, "catalog_id", catalog_id, error);
    if (machines == NULL)
        return NULL;
    bases = dv_core_list_all(engine, &dv_table_catalog_bases, "catalog_id", catalog_id, error);
    if (bases == NULL)
        return NULL;
    nested = dv_catalog_nested_prefixes(engine, catalog, error);
    if (nested == NULL)
        return NULL;
    for (guint i = 0; i < json_array_get_length(machines); i++)
        g_hash_table_add(uuids, (gpointer)dv_json_get_string(
                                    json_array_get_object_element(machines, i), "domain_uuid", ""));
    hosts = dv_catalog_host_ids(catalog, machines, bases);
    for (guint h = 0; h < hosts->len; h++)
        if (!dv_reconcile_host(engine, catalog, g_ptr_array_index(hosts, h), machines, bases, uuids,
                               nested, c, &out, error))
            return NULL;
    json_object_set_string_member(report, "catalog_id", catalog_id);
    json_object_set_string_member(report, "catalog", dv_json_get_string(catalog, "name", ""));
    json_object_set_int_member(report, "hosts_checked",
                               hosts->len - json_array_get_length(out.unreachable));
    json_object_set_boolean_member(report, "truncated", out.truncated);
    json_object_set_boolean_member(report, "ok",
                                   json_array_get_length(out.orphans) == 0 &&
                                       json_array_get_length(out.missing) == 0 &&
                                       json_array_get_length(out.unreachable) == 0 &&
                                       json_array_get_length(out.pool_problems) == 0);
    return g_steal_pointer(&report);
}

JsonObject *
dv_engine_catalog_reconcile(DvEngine *engine, const char *ref, GError **error)
{
    g_autoptr(JsonObject) catalog = dv_core_resolve(engine, DV_KIND_CATALOG, ref, NULL, error);
    if (catalog == NULL)
        return NULL;
    return dv_catalog_reconcile_report(engine, catalog, NULL, error);
}

JsonObject *
dv_engine_catalog_reconcile_submit(DvEngine *engine, const char *ref, JsonObject *body,
                                   const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) catalog = dv_core_resolve(engine, DV_KIND_CATALOG, ref, NULL, error);
    g_autoptr(JsonObject) params = json_object_new();

    if (catalog == NULL)
        return NULL;
    if (body != NULL && !dv_json_check_fields(body, dv_catalog_reconcile_fields, NULL, error))
        return NULL;
    json_object_set_boolean_member(params, "delete_orphans",
                                   dv_json_get_bool(body, "delete_orphans", FALSE));
    /* Jobs of one catalog run one at a time: this one waits for a
     * provisioning or delete job of the catalog to end. */
    return dv_core_submit(engine, "catalog.reconcile", "catalog",
                          dv_json_get_string(catalog, "id", ""),
                          dv_json_get_string(catalog, "name", ""), NULL, params, actor, error);
}

/* Deletes one orphan of a report; what is already gone is fine. */
static gboolean
dv_reconcile_delete(DvEngine *engine, JsonObject *orphan, GCancellable *c, GError **error)
{
    const char *host_id = dv_json_get_string(orphan, "host_id", "");
    g_autoptr(DvVirtHost) vh = dv_core_virt_host_by_id(engine, host_id, error);
    g_autoptr(GError) local = NULL;

    if (vh == NULL)
        return FALSE;
    if (g_strcmp0(dv_json_get_string(orphan, "kind", ""), "volume") == 0) {
        DvFilter f[] = { { "host_id", DV_FILTER_EQ, host_id },
                         { "path", DV_FILTER_EQ, dv_json_get_string(orphan, "path", "") } };
        if (!dv_virt_volume_delete(vh, dv_json_get_string(orphan, "pool", ""),
                                   dv_json_get_string(orphan, "name", ""), c, &local) &&
            !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        /* The inventory's row of it, if a refresh made one. */
        return dv_store_delete_matching(dv_core(engine)->store, &dv_table_volumes, f,
                                        G_N_ELEMENTS(f), error) >= 0;
    }
    if (!dv_virt_domain_delete(vh, dv_json_get_string(orphan, "uuid", ""), FALSE, c, &local) &&
        !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    /* A host refresh may have listed it as a VM. */
    {
        g_autoptr(JsonArray) vms =
            dv_core_list_all(engine, &dv_table_vms, "host_id", host_id, error);
        if (vms == NULL)
            return FALSE;
        for (guint i = 0; i < json_array_get_length(vms); i++) {
            JsonObject *vm = json_array_get_object_element(vms, i);
            if (g_strcmp0(dv_json_get_string(vm, "uuid", ""),
                          dv_json_get_string(orphan, "uuid", "")) == 0 &&
                !dv_store_delete(dv_core(engine)->store, &dv_table_vms,
                                 dv_json_get_string(vm, "id", ""), error))
                return FALSE;
        }
    }
    return TRUE;
}

static gboolean
dv_catalog_reconcile_job(DvJob *job, gpointer user_data, GError **error)
{
    static const DvJobStep steps[] = { { "compare", 30 }, { "delete orphans", 70 } };
    DvEngine *engine = user_data;
    GCancellable *c = dv_job_get_cancellable(job);
    gboolean delete = dv_json_get_bool(dv_job_get_params(job), "delete_orphans", FALSE);
    g_autoptr(JsonObject) catalog = NULL;
    g_autoptr(JsonObject) report = NULL;
    g_autoptr(JsonArray) deleted = json_array_new();
    g_autoptr(JsonArray) failed = json_array_new();
    g_autofree char *first_error = NULL;
    JsonArray *orphans;
    JsonArray *unreachable;

    dv_job_set_steps(job, steps, G_N_ELEMENTS(steps));
    catalog =
        dv_store_get(dv_core(engine)->store, &dv_table_catalogs, dv_job_get_target_id(job), error);
    if (catalog == NULL)
        return FALSE;
    if (!dv_job_step(job, "compare", error))
        return FALSE;
    report = dv_catalog_reconcile_report(engine, catalog, c, error);
    if (report == NULL)
        return FALSE;
    orphans = dv_json_get_array(report, "orphans_on_hosts");
    unreachable = dv_json_get_array(report, "unreachable_hosts");
    if (!dv_job_step(job, "delete orphans", error))
        return FALSE;
    /* Only what this report found, which the rows do not know. */
    for (guint i = 0; delete &&i < json_array_get_length(orphans); i++) {
        JsonObject *o = json_array_get_object_element(orphans, i);
        g_autoptr(GError) local = NULL;
        if (!dv_reconcile_delete(engine, o, c, &local)) {
            JsonObject *e;
            if (g_error_matches(local, DV_ERROR, DV_ERROR_CANCELLED)) {
                g_propagate_error(error, g_steal_pointer(&local));
                return FALSE;
            }
            e = json_object_new();
            json_object_set_string_member(e, "host", dv_json_get_string(o, "host", ""));
            json_object_set_string_member(e, "kind", dv_json_get_string(o, "kind", ""));
            json_object_set_string_member(e, "name", dv_json_get_string(o, "name", ""));
            json_object_set_string_member(e, "error", local->message);
            json_array_add_object_element(failed, e);
            if (first_error == NULL)
                first_error = g_strdup_printf("%s %s on %s: %s", dv_json_get_string(o, "kind", ""),
                                              dv_json_get_string(o, "name", ""),
                                              dv_json_get_string(o, "host", ""), local->message);
        } else {
            json_array_add_object_element(deleted, json_object_ref(o));
        }
        dv_job_step_progress(job, (double)(i + 1) / json_array_get_length(orphans));
    }
    /* Pooled machines still on an overlay (made before they were
     * transient) move onto their base now when shut off; running ones at
     * their next start through Drover. */
    if (dv_catalog_is_pooled(catalog)) {
        g_autoptr(JsonArray) machines =
            dv_core_list_all(engine, &dv_table_catalog_machines, "catalog_id",
                             dv_json_get_string(catalog, "id", ""), error);
        guint moved = 0, waiting = 0;
        if (machines == NULL)
            return FALSE;
        for (guint i = 0; i < json_array_get_length(machines); i++) {
            JsonObject *m = json_array_get_object_element(machines, i);
            g_autoptr(GError) local = NULL;
            g_autoptr(DvVirtHost) vh = NULL;
            gboolean did = FALSE;
            if (dv_json_get_string(m, "overlay_path", NULL) == NULL ||
                g_strcmp0(dv_json_get_string(m, "state", ""), "ready") != 0)
                continue;
            vh = dv_core_virt_host_by_id(engine, dv_json_get_string(m, "host_id", ""), &local);
            if (vh != NULL &&
                dv_catalog_machine_reset_if_pooled(engine, vh, catalog, m, c, &did, &local)) {
                if (did)
                    moved++;
                else
                    waiting++;
                continue;
            }
            if (g_error_matches(local, DV_ERROR, DV_ERROR_CANCELLED)) {
                g_propagate_error(error, g_steal_pointer(&local));
                return FALSE;
            }
            {
                JsonObject *e = json_object_new();
                json_object_set_string_member(e, "kind", "machine");
                json_object_set_string_member(e, "name", dv_json_get_string(m, "name", ""));
                json_object_set_string_member(e, "error", local->message);
                json_array_add_object_element(failed, e);
                if (first_error == NULL)
                    first_error = g_strdup_printf(
                        "machine %s: %s", dv_json_get_string(m, "name", ""), local->message);
            }
        }
        if (moved > 0 && !dv_catalog_bases_collect(engine, dv_json_get_string(catalog, "id", ""), c,
                                                   NULL, error))
            return FALSE;
        json_object_set_int_member(report, "machines_made_transient", moved);
        json_object_set_int_member(report, "machines_transient_at_start", waiting);
    }
    json_object_set_array_member(report, "deleted", json_array_ref(deleted));
    json_object_set_array_member(report, "delete_failed", json_array_ref(failed));
    dv_job_set_result(job, report);
    if (json_array_get_length(failed) > 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED,
                    "%u orphans or machines could not be handled (first: %s)",
                    json_array_get_length(failed), first_error);
        return FALSE;
    }
    if (json_array_get_length(unreachable) > 0) {
        JsonObject *u = json_array_get_object_element(unreachable, 0);
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE,
                    "%u hosts could not be checked (first: %s: %s)",
                    json_array_get_length(unreachable), dv_json_get_string(u, "host", ""),
                    dv_json_get_string(u, "error", ""));
        return FALSE;
    }
    return TRUE;
}

void
dv_catalog_reconcile_register(DvEngine *engine)
{
    DvJobKind kind = { "catalog.reconcile", dv_catalog_reconcile_job, engine, TRUE };
    dv_job_manager_register_kind(dv_core(engine)->jobs, &kind);
}
