#define G_LOG_DOMAIN "DvCatalogDelete"

/* Deleting a machine catalog (docs/CATALOGS.md): the job catalog.delete
 * removes every machine (domain with its NVRAM, overlay, identity,
 * personal disk and console log, then its rows), then the bases, then the
 * catalog's own rows.  Everything is removed by the names the catalog
 * gives it, so what a crashed provisioning made but did not record goes
 * too, and what is already gone is fine: the job runs again from the start
 * after a crash.  Rows are removed only after what they describe is gone
 * from its host; a host that cannot be reached keeps its machines' rows
 * (and so its bases and the catalog) and fails the job with the reason. */

#include "dv-catalogs-private.h"

#include <string.h>

static const DvJobStep dv_catalog_delete_steps[] = {
    { "machines", 80 },
    { "bases", 15 },
    { "catalog", 5 },
};

/* Volumes a host removal made stale in the inventory. */
static gboolean
dv_catalog_forget_volume(DvEngine *engine, const char *host_id, const char *path, GError **error)
{
    DvFilter f[] = { { "host_id", DV_FILTER_EQ, host_id }, { "path", DV_FILTER_EQ, path } };
    return dv_store_delete_matching(dv_core(engine)->store, &dv_table_volumes, f, G_N_ELEMENTS(f),
                                    error) >= 0;
}

/* Deletes @name in @pool; a volume or pool that does not exist is fine. */
static gboolean
dv_catalog_delete_volume(DvEngine *engine, DvVirtHost *vh, const char *host_id, const char *pool,
                         const char *pool_path, const char *name, GCancellable *c, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autofree char *path = g_build_filename(pool_path, name, NULL);

    if (!dv_virt_volume_delete(vh, pool, name, c, &local) &&
        !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_prefixed_error(error, g_steal_pointer(&local), "volume %s: ", name);
        return FALSE;
    }
    return dv_catalog_forget_volume(engine, host_id, path, error);
}

typedef struct {
    const char *machine_id;
} DvCatalogMachineGone;

static gboolean
dv_catalog_machine_forget_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvCatalogMachineGone *g = user_data;
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonObject) m =
        dv_store_get(store, &dv_table_catalog_machines, g->machine_id, &local);

    if (m == NULL && !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    g_clear_error(&local);
    /* The row and its quota charge go together. */
    if (m != NULL && !dv_catalog_machine_quota_release(store, m, error))
        return FALSE;
    if (!dv_store_delete(store, &dv_table_catalog_machines, g->machine_id, &local) &&
        !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    g_clear_error(&local);
    /* The machine's VM row has the machine's id. */
    if (!dv_store_delete(store, &dv_table_vms, g->machine_id, &local) &&
        !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    return TRUE;
}

/* Removes one machine from its host, then its rows.  Its identity disk
 * is not looked for in the pools of @gone_pools (may be NULL): pools that
 * could not be started, whose volumes count as deleted. */
static gboolean
dv_catalog_machine_remove_in(DvEngine *engine, DvJob *job, JsonObject *catalog, JsonObject *m, DvVirtHost *vh,
                             const char *pool_path, GHashTable *gone_pools, GError **error)
{
    GCancellable *c = dv_job_get_cancellable(job);
    const char *cname = dv_json_get_string(catalog, "name", "");
    const char *mname = dv_json_get_string(m, "name", "");
    const char *host_id = dv_json_get_string(m, "host_id", "");
    const char *pool = dv_json_get_string(catalog, "pool_name", "");
    g_autoptr(GError) local = NULL;
    g_autofree char *id_pool = dv_catalog_identity_pool_name(cname, dv_json_get_int(m, "name_index", 0));
    g_autofree char *id_dir = g_build_filename(pool_path, id_pool, NULL);
    g_autofree char *id_name = dv_catalog_volume_name(cname, mname, DV_CATALOG_VOLUME_IDENTITY);

    /* The domain first (forced off when running), so no disk is in use;
     * undefine takes its NVRAM, snapshot metadata and managed save. */
    if (!dv_virt_domain_delete(vh, dv_json_get_string(m, "domain_uuid", ""), FALSE, c, &local) &&
        !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_prefixed_error(error, g_steal_pointer(&local), "domain: ");
        return FALSE;
    }
    for (gsize i = 0; dv_catalog_machine_volumes[i] != NULL; i++) {
        g_autofree char *name = dv_catalog_volume_name(cname, mname, dv_catalog_machine_volumes[i]);
        if (!dv_catalog_delete_volume(engine, vh, host_id, pool, pool_path, name, c, error))
            return FALSE;
    }
    /* Its identity disk in its identity pool, recorded or not. */
    if ((gone_pools == NULL || !g_hash_table_contains(gone_pools, id_pool)) &&
        !dv_catalog_delete_volume(engine, vh, host_id, id_pool, id_dir, id_name, c, error))
        return FALSE;
    /* Recorded paths outside the pool's directory (never made so, but a
     * row is what the database knows). */
    {
        static const char *const cols[] = { "overlay_path", "identity_path", "personal_path" };
        for (gsize i = 0; i < G_N_ELEMENTS(cols); i++) {
            const char *p = dv_json_get_string(m, cols[i], NULL);
            g_autofree char *dir = p != NULL ? g_path_get_dirname(p) : NULL;
            if (p == NULL || g_strcmp0(dir, pool_path) == 0)
                continue;
            g_clear_error(&local);
            if (!dv_virt_volume_delete_by_path(vh, p, c, &local) &&
                !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
                g_propagate_prefixed_error(error, g_steal_pointer(&local), "volume %s: ", p);
                return FALSE;
            }
            if (!dv_catalog_forget_volume(engine, host_id, p, error))
                return FALSE;
        }
    }
    {
        DvCatalogMachineGone g = { dv_json_get_string(m, "id", "") };
        return dv_store_transaction(dv_core(engine)->store, dv_catalog_machine_forget_txn, &g,
                                    error);
    }
}

/* Exported in dv-catalogs-private.h for remove-machines. */
gboolean
dv_catalog_machine_remove(DvEngine *engine, DvJob *job, JsonObject *catalog, JsonObject *m,
                          DvVirtHost *vh, const char *pool_path, GError **error)
{
    return dv_catalog_machine_remove_in(engine, job, catalog, m, vh, pool_path, NULL, error);
}

typedef struct {
    DvVirtHost *vh; /* NULL when the host failed */
    char *pool_path;
    GError *error; /* why the host failed */
    GHashTable *gone_pools; /* identity pools that could not be started */
} DvCatalogHostState;

static void
dv_catalog_host_state_free(DvCatalogHostState *s)
{
    if (s == NULL)
        return;
    g_clear_pointer(&s->vh, dv_virt_host_unref);
    g_free(s->pool_path);
    g_clear_error(&s->error);
    g_clear_pointer(&s->gone_pools, g_hash_table_unref);
    g_free(s);
}

/* A host's handle and pool directory, looked up once per job.  A host
 * that cannot be reached is not tried again for each of its machines.  A
 * pool that no longer exists leaves nothing to remove in it. */
/* The catalog's identity pools on the host (those it lists and those
 * the machine rows name) made usable before anything is deleted in them:
 * one whose directory was removed on the host is rebuilt, a stopped one
 * started, an undefined one defined again over its directory, so its
 * volumes are deleted by name and the pool removed afterwards.  One that
 * cannot be started goes into s->gone_pools with a note in @notes: its
 * volumes count as deleted. */
static void
dv_catalog_host_id_pools(DvCatalogHostState *s, JsonObject *catalog, const char *host_id, JsonArray *machines,
                         JsonArray *notes, GCancellable *c)
{
    const char *cname = dv_json_get_string(catalog, "name", "");
    g_autofree char *prefix = g_strdup_printf("%s-" DV_CATALOG_IDENTITY_POOL_INFIX, cname);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(JsonArray) listed = NULL;
    g_autoptr(GError) local = NULL;

    s->gone_pools = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    listed = dv_virt_pool_list_by_prefix(s->vh, prefix, c, &local);
    for (guint i = 0; listed != NULL && i < json_array_get_length(listed); i++)
        g_ptr_array_add(names, g_strdup(json_array_get_string_element(listed, i)));
    for (guint i = 0; machines != NULL && i < json_array_get_length(machines); i++) {
        JsonObject *m = json_array_get_object_element(machines, i);
        if (g_strcmp0(dv_json_get_string(m, "host_id", ""), host_id) == 0)
            g_ptr_array_add(names, dv_catalog_identity_pool_name(cname, dv_json_get_int(m, "name_index", 0)));
    }
    for (guint i = 0; i < names->len; i++) {
        const char *name = g_ptr_array_index(names, i);
        g_autofree char *dir = NULL;
        g_autofree char *note = NULL;
        g_autoptr(GError) perr = NULL;

        if (!dv_catalog_is_identity_pool(cname, name) || !g_hash_table_add(seen, (gpointer)name))
            continue;
        dir = g_build_filename(s->pool_path, name, NULL);
        if (dv_virt_pool_ensure_dir(s->vh, name, dir, c, &perr))
            continue;
        /* A host that stopped answering fails its machines as before. */
        if (g_error_matches(perr, DV_ERROR, DV_ERROR_UNAVAILABLE) || g_error_matches(perr, DV_ERROR, DV_ERROR_CANCELLED))
            return;
        g_hash_table_add(s->gone_pools, g_strdup(name));
        note = g_strdup_printf("identity pool %s on host %s could not be started (%s); its identity disks "
                               "count as deleted", name, host_id, perr->message);
        json_array_add_string_element(notes, note);
    }
}

static DvCatalogHostState *
dv_catalog_host_state(DvEngine *engine, GHashTable *hosts, JsonObject *catalog, const char *host_id,
                      JsonArray *machines, JsonArray *notes, GCancellable *c)
{
    DvCatalogHostState *s = g_hash_table_lookup(hosts, host_id);
    const char *pool = dv_json_get_string(catalog, "pool_name", "");
    g_autoptr(JsonObject) prow = NULL;
    g_autoptr(GError) local = NULL;

    if (s != NULL)
        return s;
    s = g_new0(DvCatalogHostState, 1);
    g_hash_table_insert(hosts, g_strdup(host_id), s);
    s->vh = dv_core_virt_host_by_id(engine, host_id, &s->error);
    if (s->vh == NULL)
        return s;
    prow = dv_catalog_on_host(engine, &dv_table_pools, host_id, "name", pool, &s->error);
    if (s->error != NULL) {
        g_clear_pointer(&s->vh, dv_virt_host_unref);
        return s;
    }
    /* The pool's directory as the inventory knows it; volumes are found by
     * name, the directory only names inventory rows. */
    s->pool_path = g_strdup(prow != NULL ? dv_json_get_string(prow, "path", "/") : "/");
    /* A refresh lets libvirt see files it did not make (console logs), so
     * deleting them by name works; it also proves the host answers. */
    if (!dv_virt_pool_refresh(s->vh, pool, c, &local) &&
        !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_error(&s->error, g_steal_pointer(&local));
        g_clear_pointer(&s->vh, dv_virt_host_unref);
        return s;
    }
    if (prow != NULL)
        dv_catalog_host_id_pools(s, catalog, host_id, machines, notes, c);
    return s;
}

/* A worker of the machines step: one machine off its host, then its rows.
 * A failure keeps the rows (what they describe may still exist) and marks
 * the machine failed with the reason. */
static gboolean
dv_catalog_delete_one(DvCatalogEach *each, JsonObject *m, gboolean *ret_skipped, GError **error)
{
    GHashTable *hosts = each->data; /* filled before the workers start, read only */
    DvCatalogHostState *hs = g_hash_table_lookup(hosts, dv_json_get_string(m, "host_id", ""));
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonObject) ch = NULL;
    g_autofree char *why = NULL;

    if (hs == NULL)
        g_set_error(&local, DV_ERROR, DV_ERROR_NOT_FOUND, "host %s is not known", dv_json_get_string(m, "host_id", ""));
    else if (hs->vh == NULL)
        local = g_error_copy(hs->error);
    else if (dv_catalog_machine_remove_in(each->engine, each->job, each->catalog, m, hs->vh, hs->pool_path,
                                          hs->gone_pools, &local))
        return TRUE;
    if (g_error_matches(local, DV_ERROR, DV_ERROR_CANCELLED)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    ch = json_object_new();
    why = g_strdup_printf("delete: %s", local->message);
    json_object_set_string_member(ch, "state", "failed");
    json_object_set_string_member(ch, "error", why);
    if (!dv_catalog_update(each->engine, &dv_table_catalog_machines, m, ch, error))
        return FALSE;
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
}

static gboolean
dv_catalog_forget_txn(DvStore *store, gpointer user_data, GError **error)
{
    const char *catalog_id = user_data;
    DvFilter f = { "catalog_id", DV_FILTER_EQ, catalog_id };
    g_autoptr(GError) local = NULL;
    g_autofree char *cursor = NULL;

    /* Machines still recorded go with the catalog (cascade): their quota too. */
    do {
        g_autofree char *next = NULL;
        g_autoptr(JsonArray) left = dv_store_list(store, &dv_table_catalog_machines, &f, 1,
                                                  DV_PAGE_MAX, cursor, &next, error);
        if (left == NULL)
            return FALSE;
        for (guint i = 0; i < json_array_get_length(left); i++)
            if (!dv_catalog_machine_quota_release(store, json_array_get_object_element(left, i),
                                                  error))
                return FALSE;
        g_free(cursor);
        cursor = g_steal_pointer(&next);
    } while (cursor != NULL);
    if (dv_store_delete_matching(store, &dv_table_catalog_images, &f, 1, error) < 0)
        return FALSE;
    if (!dv_store_delete(store, &dv_table_catalogs, catalog_id, &local) &&
        !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    return TRUE;
}

static gboolean
dv_catalog_delete_job(DvJob *job, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    const char *catalog_id = dv_job_get_target_id(job);
    GCancellable *c = dv_job_get_cancellable(job);
    g_autoptr(JsonObject) catalog = NULL;
    g_autoptr(JsonArray) machines = NULL;
    g_autoptr(JsonArray) bases = NULL;
    g_autoptr(JsonObject) result = json_object_new();
    g_autoptr(GHashTable) hosts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                        (GDestroyNotify)dv_catalog_host_state_free);
    /* host id -> machines of it that remain */
    g_autoptr(GHashTable) kept = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autofree char *first_error = NULL;
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonArray) notes = json_array_new();
    guint removed = 0, failed = 0, bases_removed = 0, bases_kept = 0, n;
    guint id_pools_removed = 0, id_pools_kept = 0;

    dv_job_set_steps(job, dv_catalog_delete_steps, G_N_ELEMENTS(dv_catalog_delete_steps));
    catalog = dv_store_get(dv_core(engine)->store, &dv_table_catalogs, catalog_id, &local);
    if (catalog == NULL) {
        /* Resumed after the last step was done. */
        if (g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND) && dv_job_get_attempt(job) > 1)
            return TRUE;
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    json_object_set_string_member(result, "id", catalog_id);
    json_object_set_string_member(result, "name", dv_json_get_string(catalog, "name", ""));

    if (!dv_job_step(job, "machines", error))
        return FALSE;
    machines =
        dv_core_list_all(engine, &dv_table_catalog_machines, "catalog_id", catalog_id, error);
    if (machines == NULL)
        return FALSE;
    n = json_array_get_length(machines);
    {
        /* Each host is looked up (and its pool refreshed) once, here;
         * the workers only read the table. */
        g_autoptr(JsonArray) ids = json_array_new();
        g_autoptr(JsonArray) left = NULL;
        DvCatalogEach each = { engine, job, catalog, dv_catalog_delete_one, hosts };
        DvCatalogEachResult r;

        for (guint i = 0; i < n; i++) {
            JsonObject *m = json_array_get_object_element(machines, i);
            dv_catalog_host_state(engine, hosts, catalog, dv_json_get_string(m, "host_id", ""), machines, notes, c);
            json_array_add_string_element(ids, dv_json_get_string(m, "id", ""));
        }
        dv_catalog_each_machine(&each, ids, DV_CATALOG_EACH_PARALLEL, ": ", &r);
        removed = r.ok + r.gone;
        failed = r.failed;
        first_error = g_steal_pointer(&r.first_error);
        json_object_set_int_member(result, "parallel", r.parallel);
        json_object_set_int_member(result, "max_parallel_seen", r.max_running);
        if (r.cancelled) {
            g_set_error_literal(error, DV_ERROR, DV_ERROR_CANCELLED,
                                "cancelled; delete the catalog again to finish");
            return FALSE;
        }
        /* The machines that could not be removed keep their rows: their
         * hosts keep the base and the identity pools. */
        left =
            dv_core_list_all(engine, &dv_table_catalog_machines, "catalog_id", catalog_id, error);
        if (left == NULL)
            return FALSE;
        for (guint i = 0; i < json_array_get_length(left); i++) {
            JsonObject *m = json_array_get_object_element(left, i);
            g_hash_table_insert(kept, g_strdup(dv_json_get_string(m, "host_id", "")), GUINT_TO_POINTER(1));
        }
    }

    /* Bases last, and only where no machine of the catalog is left: a
     * machine that could not be removed may have an overlay on its host's
     * base (recorded or not).  Every image of a catalog being deleted
     * goes, so no image history entry keeps a base here. */
    if (!dv_job_step(job, "bases", error))
        return FALSE;
    bases = dv_core_list_all(engine, &dv_table_catalog_bases, "catalog_id", catalog_id, error);
    if (bases == NULL)
        return FALSE;
    for (guint i = 0; i < json_array_get_length(bases); i++) {
        JsonObject *b = json_array_get_object_element(bases, i);
        const char *host_id = dv_json_get_string(b, "host_id", "");
        DvCatalogHostState *hs;
        g_autoptr(GError) berr = NULL;

        if (g_hash_table_contains(kept, host_id)) {
            bases_kept++;
            continue;
        }
        hs = dv_catalog_host_state(engine, hosts, catalog, host_id, machines, notes, c);
        if (hs->vh == NULL) {
            berr = g_error_copy(hs->error);
        } else if (dv_catalog_delete_volume(engine, hs->vh, host_id,
                                            dv_json_get_string(b, "pool_name", ""), hs->pool_path,
                                            dv_json_get_string(b, "volume_name", ""), c, &berr) &&
                   dv_store_delete(dv_core(engine)->store, &dv_table_catalog_bases,
                                   dv_json_get_string(b, "id", ""), &berr)) {
            bases_removed++;
        }
        if (berr != NULL) {
            g_autoptr(JsonObject) ch = json_object_new();
            if (g_error_matches(berr, DV_ERROR, DV_ERROR_CANCELLED)) {
                g_propagate_error(error, g_steal_pointer(&berr));
                return FALSE;
            }
            json_object_set_string_member(ch, "error", berr->message);
            if (!dv_catalog_update(engine, &dv_table_catalog_bases, b, ch, error))
                return FALSE;
            if (first_error == NULL)
                first_error = g_strdup_printf(
                    "base %s: %s", dv_json_get_string(b, "volume_name", ""), berr->message);
            bases_kept++;
        }
        dv_job_step_progress(job, (double)(i + 1) / json_array_get_length(bases));
    }

    /* The identity pools, on every host where no machine is left. */
    {
        g_autoptr(GPtrArray) ids = dv_catalog_host_ids(catalog, machines, bases);
        g_autofree char *prefix = g_strdup_printf("%s-" DV_CATALOG_IDENTITY_POOL_INFIX,
                                                  dv_json_get_string(catalog, "name", ""));
        for (guint h = 0; h < ids->len; h++) {
            const char *host_id = g_ptr_array_index(ids, h);
            DvCatalogHostState *hs;
            g_autoptr(JsonArray) pools = NULL;
            g_autoptr(GError) perr = NULL;

            if (g_hash_table_contains(kept, host_id))
                continue;
            hs = dv_catalog_host_state(engine, hosts, catalog, host_id, machines, notes, c);
            if (hs->vh == NULL)
                perr = g_error_copy(hs->error);
            else
                pools = dv_virt_pool_list_by_prefix(hs->vh, prefix, c, &perr);
            for (guint i = 0; pools != NULL && i < json_array_get_length(pools) && perr == NULL; i++) {
                const char *name = json_array_get_string_element(pools, i);
                if (!dv_catalog_is_identity_pool(dv_json_get_string(catalog, "name", ""), name))
                    continue;
                if (dv_virt_pool_remove(hs->vh, name, c, &perr))
                    id_pools_removed++;
                else if (g_error_matches(perr, DV_ERROR, DV_ERROR_NOT_FOUND))
                    g_clear_error(&perr);
                else if (hs->gone_pools != NULL && g_hash_table_contains(hs->gone_pools, name) &&
                         !g_error_matches(perr, DV_ERROR, DV_ERROR_CANCELLED) &&
                         !g_error_matches(perr, DV_ERROR, DV_ERROR_UNAVAILABLE)) {
                    /* Already counted as gone: noted, not kept. */
                    g_autofree char *note = g_strdup_printf("identity pool %s on host %s could not be removed: %s",
                                                            name, host_id, perr->message);
                    json_array_add_string_element(notes, note);
                    g_clear_error(&perr);
                } else
                    g_prefix_error(&perr, "identity pool %s: ", name);
            }
            if (perr != NULL) {
                if (g_error_matches(perr, DV_ERROR, DV_ERROR_CANCELLED)) {
                    g_propagate_error(error, g_steal_pointer(&perr));
                    return FALSE;
                }
                if (first_error == NULL)
                    first_error = g_strdup(perr->message);
                id_pools_kept++;
            }
        }
    }

    if (!dv_job_step(job, "catalog", error))
        return FALSE;
    json_object_set_int_member(result, "identity_pools_removed", id_pools_removed);
    json_object_set_array_member(result, "notes", json_array_ref(notes));
    json_object_set_int_member(result, "machines_removed", removed);
    json_object_set_int_member(result, "machines_kept", failed);
    json_object_set_int_member(result, "bases_removed", bases_removed);
    json_object_set_int_member(result, "bases_kept", bases_kept);
    json_object_set_boolean_member(result, "deleted", failed == 0 && bases_kept == 0 && id_pools_kept == 0);
    dv_job_set_result(job, result);
    if (failed > 0 || bases_kept > 0 || id_pools_kept > 0) {
        g_set_error(
            error, DV_ERROR, DV_ERROR_HOST_FAILED,
            "could not remove %u of %u machines, %u of %u base images and the identity pools "
            "of %u hosts (first: %s); their records are kept. Fix the cause and delete the "
            "catalog again",
            failed, n, bases_kept, json_array_get_length(bases), id_pools_kept,
            first_error != NULL ? first_error : "unknown");
        return FALSE;
    }
    return dv_store_transaction(dv_core(engine)->store, dv_catalog_forget_txn, (gpointer)catalog_id,
                                error);
}

JsonObject *
dv_engine_catalog_delete(DvEngine *engine, JsonObject *catalog, GHashTable *query,
                         const DvActor *actor, GError **error)
{
    if (query != NULL && g_hash_table_size(query) > 0) {
        GHashTableIter it;
        gpointer k;
        g_autofree char *safe = NULL;
        g_hash_table_iter_init(&it, query);
        g_hash_table_iter_next(&it, &k, NULL);
        safe = dv_text_excerpt(k, 64);
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, safe, "%s: unknown parameter", safe);
        return NULL;
    }
    /* While provisioning runs, its machines are being made: refused, as the
     * issue asks ("removing a catalog while it provisions").  The job,
     * the catalog's "deleting" state and job id and its catalog scope are
     * written in one transaction (dv_catalog_submit_with()), so a job
     * accepted at once by another server is refused, and a provision is
     * refused (409 naming this job) until it is done. */
    return dv_catalog_submit_with(engine, catalog, "catalog.delete", NULL, "deleting", actor, NULL,
                                  NULL, error);
}

void
dv_catalog_delete_register(DvEngine *engine)
{
    DvJobKind kind = { "catalog.delete", dv_catalog_delete_job, engine, TRUE };
    dv_job_manager_register_kind(dv_core(engine)->jobs, &kind);
}
