#define G_LOG_DOMAIN "DvCatalogImage"

/* The image lifecycle of a machine catalog (docs/CATALOGS.md):
 *
 * - update-image records image n+1 (pending) with a pending base per
 *   target host, and the job catalog.update-image consolidates the bases,
 *   makes the image current, and moves every pooled machine whose domain
 *   is shut off onto it (a new overlay; identity and personal disks are
 *   untouched).  Pooled machines that run move at their next start
 *   through Drover (dv_catalog_before_start()).
 * - rollback makes the previous image (the one current before) current
 *   again the same way; its bases must still exist.
 * - rebuild gives chosen machines (persistent ones keep their disk
 *   otherwise) a fresh overlay on the current image.
 * - Bases are reference-counted by the machine rows that name them; a
 *   base goes only when no machine uses it and neither the current image
 *   nor the one a rollback returns to needs it. */

#include "dv-catalogs-private.h"

#include <string.h>

#define DV_CATALOG_MAX_REBUILD 10000

const DvFieldSpec dv_catalog_update_image_fields[] = {
    { "master_vm", DV_FIELD_STRING, TRUE },
    { "master_snapshot", DV_FIELD_STRING, TRUE },
    { NULL },
};

const DvFieldSpec dv_catalog_rebuild_fields[] = {
    { "machines", DV_FIELD_ARRAY, FALSE },
    { "all", DV_FIELD_BOOL, FALSE },
    { NULL },
};

/* --- shared helpers ------------------------------------------------------------- */

JsonObject *
dv_catalog_submit(DvEngine *engine, JsonObject *catalog, const char *kind, JsonObject *params,
                  const char *state, const DvActor *actor, GError **error)
{
    return dv_catalog_submit_with(engine, catalog, kind, params, state, actor, NULL, NULL, error);
}

typedef struct {
    const char *catalog_id;
    JsonObject *changes; /* job_id, state, updated_at */
    DvStoreTxnFunc func;
    gpointer user_data;
} DvCatalogSubmitTxn;

/* Runs in the transaction that writes the job row: the catalog names its
 * job (and takes its state) before the job can run, so the job's own end
 * (ready, degraded) is always the later write. */
static gboolean
dv_catalog_submit_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvCatalogSubmitTxn *t = user_data;

    if (t->func != NULL && !t->func(store, t->user_data, error))
        return FALSE;
    return dv_store_update(store, &dv_table_catalogs, t->catalog_id, t->changes, error);
}

/* Tests (DV_DEBUG_JOBS=1, DV_DEBUG_CATALOG_PAUSE=submitted): waits up to
 * 30 s for job @job_id to end before dv_catalog_submit_with() returns, as
 * if the job were quicker than the request; a write made after the submit
 * would then overwrite the job's end (catalog-scope/submit-race). */
static void
dv_catalog_debug_wait_job(DvEngine *engine, const char *job_id)
{
    if (!dv_core_debug_enabled() ||
        g_strcmp0(g_getenv("DV_DEBUG_CATALOG_PAUSE"), "submitted") != 0)
        return;
    for (guint i = 0; i < 300; i++) {
        g_autoptr(GError) local = NULL;
        g_autoptr(JsonObject) row =
            dv_store_get(dv_core(engine)->store, &dv_table_jobs, job_id, &local);
        const char *state = row != NULL ? dv_json_get_string(row, "state", "") : "";
        if (g_strcmp0(state, "queued") != 0 && g_strcmp0(state, "running") != 0)
            return;
        g_usleep(100 * 1000);
    }
}

JsonObject *
dv_catalog_submit_with(DvEngine *engine, JsonObject *catalog, const char *kind, JsonObject *params,
                       const char *state, const DvActor *actor, DvStoreTxnFunc func,
                       gpointer user_data, GError **error)
{
    const char *id = dv_json_get_string(catalog, "id", "");
    g_autofree char *job_id = g_uuid_string_random();
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) changes = json_object_new();

    if (!dv_catalog_check_idle(engine, catalog, error))
        return NULL;
    /* Only a delete goes on with a catalog being deleted. */
    if (g_strcmp0(state, "deleting") != 0 &&
        g_strcmp0(dv_json_get_string(catalog, "state", ""), "deleting") == 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, NULL,
                           "catalog %s is being deleted; delete it again to finish",
                           dv_json_get_string(catalog, "name", ""));
        return NULL;
    }
    json_object_set_string_member(changes, "job_id", job_id);
    if (state != NULL)
        json_object_set_string_member(changes, "state", state);
    json_object_set_int_member(changes, "updated_at", dv_store_now());
    {
        /* One task at a time per catalog, on every server: the check
         * above names the running job early, this scope makes it hold
         * when two requests race. */
        DvJobScope scope = { "catalog", id, dv_json_get_string(catalog, "name", "") };
        DvJobRequest req = {
            .kind = kind,
            .target_type = "catalog",
            .target_id = id,
            .target_name = dv_json_get_string(catalog, "name", ""),
            .params = params,
            .created_by = dv_actor_get_name(actor),
            .id = job_id,
            .scopes = &scope,
            .n_scopes = 1,
        };
        DvCatalogSubmitTxn t = { id, changes, func, user_data };
        job = dv_job_manager_submit_with(dv_core(engine)->jobs, &req, dv_catalog_submit_txn, &t,
                                         error);
    }
    if (job == NULL)
        return NULL;
    dv_catalog_debug_wait_job(engine, job_id);
    return g_steal_pointer(&job);
}

JsonObject *
dv_catalog_base_for(DvEngine *engine, JsonObject *catalog, const char *image_id, const char *host_id,
                    GError **error)
{
    DvFilter f[] = { { "image_id", DV_FILTER_EQ, image_id },
                     { "host_id", DV_FILTER_EQ, host_id },
                     { "pool_name", DV_FILTER_EQ, dv_json_get_string(catalog, "pool_name", "") } };
    g_autoptr(JsonArray) rows = dv_store_list(dv_core(engine)->store, &dv_table_catalog_bases, f,
                                              G_N_ELEMENTS(f), 1, NULL, NULL, error);
    if (rows == NULL || json_array_get_length(rows) == 0)
        return NULL;
    return json_object_ref(json_array_get_object_element(rows, 0));
}

static gboolean
dv_catalog_base_recount_txn(DvStore *store, gpointer user_data, GError **error)
{
    const char *base_id = user_data;
    DvFilter f = { "base_id", DV_FILTER_EQ, base_id };
    g_autoptr(JsonObject) ch = json_object_new();
    g_autoptr(GError) local = NULL;
    gint64 refs = dv_store_count(store, &dv_table_catalog_machines, &f, 1, error);

    if (refs < 0)
        return FALSE;
    json_object_set_int_member(ch, "refcount", refs);
    json_object_set_int_member(ch, "updated_at", dv_store_now());
    if (!dv_store_update(store, &dv_table_catalog_bases, base_id, ch, &local) &&
        !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    return TRUE;
}

/* In one transaction: machines move in parallel, and a count read before
 * another worker's update must not be written after it. */
static gboolean
dv_catalog_base_recount_one(DvEngine *engine, const char *base_id, GError **error)
{
    return dv_store_transaction(dv_core(engine)->store, dv_catalog_base_recount_txn,
                                (gpointer)base_id, error);
}

gboolean
dv_catalog_bases_recount(DvEngine *engine, const char *catalog_id, GError **error)
{
    g_autoptr(JsonArray) bases =
        dv_core_list_all(engine, &dv_table_catalog_bases, "catalog_id", catalog_id, error);
    if (bases == NULL)
        return FALSE;
    for (guint i = 0; i < json_array_get_length(bases); i++)
        if (!dv_catalog_base_recount_one(engine,
                                         dv_json_get_string(json_array_get_object_element(bases, i), "id", ""),
                                         error))
            return FALSE;
    return TRUE;
}

gboolean
dv_catalog_machine_move(DvEngine *engine, DvVirtHost *vh, JsonObject *catalog, JsonObject *m, GCancellable *c,
                        GError **error)
{
    const char *host_id = dv_json_get_string(m, "host_id", "");
    const char *pool = dv_json_get_string(catalog, "pool_name", "");
    const char *image_id = dv_json_get_string(catalog, "current_image_id", "");
    g_autofree char *old_base = g_strdup(dv_json_get_string(m, "base_id", NULL));
    g_autofree char *disk_name = dv_catalog_volume_name(dv_json_get_string(catalog, "name", ""),
                                                        dv_json_get_string(m, "name", ""), DV_CATALOG_VOLUME_DISK);
    g_autoptr(JsonObject) base = NULL;
    g_autoptr(JsonObject) vol = NULL;
    g_autoptr(JsonObject) ch = json_object_new();
    g_autoptr(GError) local = NULL;

    base = dv_catalog_base_for(engine, catalog, image_id, host_id, &local);
    if (base == NULL || g_strcmp0(dv_json_get_string(base, "state", ""), "ready") != 0) {
        if (local != NULL) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT, "the current image has no ready base on this host%s%s",
                    base != NULL ? ": " : "", base != NULL ? dv_json_get_string(base, "error", "not made") : "");
        return FALSE;
    }
    if (dv_catalog_is_pooled(catalog)) {
        /* The definition names the base, transient; an overlay of a
         * machine made before goes once nothing names it any more. */
        if (!dv_virt_domain_set_disk_source(vh, dv_json_get_string(m, "domain_uuid", ""), "vda",
                                            dv_json_get_string(base, "path", ""), "qcow2", TRUE, c,
                                            error)) {
            g_prefix_error(error, "system disk: ");
            return FALSE;
        }
        if (dv_json_get_string(m, "overlay_path", NULL) != NULL &&
            !dv_virt_volume_delete(vh, pool, disk_name, c, &local) &&
            !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_propagate_prefixed_error(error, g_steal_pointer(&local), "overlay %s: ", disk_name);
            return FALSE;
        }
        json_object_set_null_member(ch, "overlay_path");
    } else {
        /* The difference disk of the old image goes: it is only valid on top
         * of the base it was made on. */
        if (!dv_virt_volume_delete(vh, pool, disk_name, c, &local) &&
            !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_propagate_prefixed_error(error, g_steal_pointer(&local), "overlay %s: ", disk_name);
            return FALSE;
        }
        vol = dv_virt_volume_create_overlay(
            vh, pool, disk_name, dv_json_get_string(base, "path", ""), "qcow2", 0, c, error);
        if (vol == NULL) {
            g_prefix_error(error, "overlay %s: ", disk_name);
            return FALSE;
        }
        json_object_set_string_member(ch, "overlay_path", dv_json_get_string(vol, "path", ""));
    }
    json_object_set_string_member(ch, "image_id", image_id);
    json_object_set_string_member(ch, "base_id", dv_json_get_string(base, "id", ""));
    json_object_set_null_member(ch, "error");
    if (!dv_catalog_update(engine, &dv_table_catalog_machines, m, ch, error))
        return FALSE;
    if (old_base != NULL && !dv_catalog_base_recount_one(engine, old_base, error))
        return FALSE;
    return dv_catalog_base_recount_one(engine, dv_json_get_string(base, "id", ""), error);
}

char *
dv_catalog_base_in_use(DvEngine *engine, JsonObject *catalog, JsonObject *base, GError **error)
{
    const char *image_id = dv_json_get_string(base, "image_id", "");
    const char *current_id = dv_json_get_string(catalog, "current_image_id", "");
    DvFilter f = { "base_id", DV_FILTER_EQ, dv_json_get_string(base, "id", "") };
    g_autoptr(JsonObject) image = NULL;
    g_autoptr(JsonObject) current = NULL;
    g_autoptr(GError) local = NULL;
    gint64 refs = dv_store_count(dv_core(engine)->store, &dv_table_catalog_machines, &f, 1, error);

    if (refs < 0)
        return NULL;
    if (refs > 0) {
        g_autoptr(JsonArray) one = dv_store_list(dv_core(engine)->store, &dv_table_catalog_machines,
                                                 &f, 1, 1, NULL, NULL, error);
        if (one == NULL)
            return NULL;
        return g_strdup_printf("%" G_GINT64_FORMAT " machines use it (first: %s)", refs,
                               json_array_get_length(one) > 0
                                   ? dv_json_get_string(json_array_get_object_element(one, 0), "name", "")
                                   : "?");
    }
    image = dv_store_get(dv_core(engine)->store, &dv_table_catalog_images, image_id, &local);
    if (image == NULL) {
        if (!g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        return g_strdup(""); /* unreachable in practice: bases go with their image */
    }
    if (g_strcmp0(image_id, current_id) == 0)
        return g_strdup_printf("image v%" G_GINT64_FORMAT " is the catalog's current image",
                               dv_json_get_int(image, "version", 0));
    if (g_strcmp0(dv_json_get_string(image, "state", "ready"), "pending") == 0 ||
        g_strcmp0(dv_json_get_string(base, "state", ""), "pending") == 0)
        return g_strdup_printf("image v%" G_GINT64_FORMAT " is being made", dv_json_get_int(image, "version", 0));
    g_clear_error(&local);
    current = dv_store_get(dv_core(engine)->store, &dv_table_catalog_images, current_id, &local);
    if (current != NULL && g_strcmp0(dv_json_get_string(current, "previous_image_id", NULL), image_id) == 0)
        return g_strdup_printf("image v%" G_GINT64_FORMAT " is what a rollback returns to",
                               dv_json_get_int(image, "version", 0));
    return NULL;
}

gboolean
dv_catalog_base_delete(DvEngine *engine, JsonObject *catalog, JsonObject *base, GCancellable *c, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autofree char *why = dv_catalog_base_in_use(engine, catalog, base, &local);
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(JsonObject) pool = NULL;
    const char *host_id = dv_json_get_string(base, "host_id", "");

    if (local != NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (why != NULL) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, NULL, "base image %s is still needed: %s",
                           dv_json_get_string(base, "volume_name", ""), why);
        return FALSE;
    }
    vh = dv_core_virt_host_by_id(engine, host_id, error);
    if (vh == NULL)
        return FALSE;
    if (!dv_virt_volume_delete(vh, dv_json_get_string(base, "pool_name", ""),
                               dv_json_get_string(base, "volume_name", ""), c, &local) &&
        !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_prefixed_error(error, g_steal_pointer(&local), "base %s: ",
                                   dv_json_get_string(base, "volume_name", ""));
        return FALSE;
    }
    if (dv_json_get_string(base, "path", NULL) != NULL) {
        DvFilter f[] = { { "host_id", DV_FILTER_EQ, host_id },
                         { "path", DV_FILTER_EQ, dv_json_get_string(base, "path", "") } };
        if (dv_store_delete_matching(dv_core(engine)->store, &dv_table_volumes, f, G_N_ELEMENTS(f),
                                     error) < 0)
            return FALSE;
    }
    g_clear_error(&local);
    if (!dv_store_delete(dv_core(engine)->store, &dv_table_catalog_bases,
                         dv_json_get_string(base, "id", ""), &local) &&
        !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    return TRUE;
}

gboolean
dv_catalog_bases_collect(DvEngine *engine, const char *catalog_id, GCancellable *c, guint *ret_removed,
                         GError **error)
{
    g_autoptr(JsonObject) catalog =
        dv_store_get(dv_core(engine)->store, &dv_table_catalogs, catalog_id, error);
    g_autoptr(JsonArray) bases = NULL;
    guint removed = 0;

    if (catalog == NULL || !dv_catalog_bases_recount(engine, catalog_id, error))
        return FALSE;
    bases = dv_core_list_all(engine, &dv_table_catalog_bases, "catalog_id", catalog_id, error);
    if (bases == NULL)
        return FALSE;
    for (guint i = 0; i < json_array_get_length(bases); i++) {
        JsonObject *b = json_array_get_object_element(bases, i);
        g_autoptr(GError) local = NULL;
        g_autofree char *why = dv_catalog_base_in_use(engine, catalog, b, error);
        if (why != NULL)
            continue;
        if (error != NULL && *error != NULL)
            return FALSE;
        if (dv_catalog_base_delete(engine, catalog, b, c, &local)) {
            removed++;
            continue;
        }
        if (g_error_matches(local, DV_ERROR, DV_ERROR_CANCELLED)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        /* Kept for the next collection; the row says why. */
        {
            g_autoptr(JsonObject) ch = json_object_new();
            json_object_set_string_member(ch, "error", local->message);
            if (!dv_catalog_update(engine, &dv_table_catalog_bases, b, ch, error))
                return FALSE;
        }
    }
    if (ret_removed != NULL)
        *ret_removed = removed;
    return TRUE;
}

/* The domain state of machine @m as libvirt reports it now. */
static char *
dv_catalog_machine_state(DvVirtHost *vh, JsonObject *m, GCancellable *c, GError **error)
{
    g_autoptr(JsonObject) dom = dv_virt_domain_get(vh, dv_json_get_string(m, "domain_uuid", ""), c, error);
    if (dom == NULL)
        return NULL;
    return g_strdup(dv_json_get_string(dom, "state", ""));
}

static gboolean
dv_catalog_vm_sync(DvEngine *engine, DvVirtHost *vh, JsonObject *m, GCancellable *c, GError **error)
{
    g_autoptr(JsonObject) vm = NULL;
    g_autoptr(JsonObject) dom = NULL;
    g_autoptr(GError) local = NULL;

    vm = dv_store_get(dv_core(engine)->store, &dv_table_vms, dv_json_get_string(m, "id", ""),
                      &local);
    if (vm == NULL)
        return TRUE; /* not defined yet */
    dom = dv_virt_domain_get(vh, dv_json_get_string(m, "domain_uuid", ""), c, error);
    return dom != NULL && dv_core_vm_sync(engine, vm, dom, error);
}

/* A pooled, ready machine whose domain is shut off moves to the current
 * image's base when it is on another one, or still has an overlay (made
 * before pooled machines were transient).  Otherwise there is nothing to
 * do: QEMU gives its transient disk a fresh overlay at every start. */
gboolean
dv_catalog_machine_reset_if_pooled(DvEngine *engine, DvVirtHost *vh, JsonObject *catalog,
                                   JsonObject *m, GCancellable *c, gboolean *ret_moved,
                                   GError **error)
{
    g_autofree char *state = NULL;

    *ret_moved = FALSE;
    if (g_strcmp0(dv_json_get_string(catalog, "catalog_type", ""), "pooled") != 0 ||
        g_strcmp0(dv_json_get_string(m, "state", ""), "ready") != 0)
        return TRUE;
    if (dv_json_get_string(m, "overlay_path", NULL) == NULL) {
        g_autoptr(GError) local = NULL;
        g_autoptr(JsonObject) base = dv_catalog_base_for(
            engine, catalog, dv_json_get_string(catalog, "current_image_id", ""),
            dv_json_get_string(m, "host_id", ""), &local);
        if (local != NULL) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        if (base != NULL && g_strcmp0(dv_json_get_string(base, "id", ""),
                                      dv_json_get_string(m, "base_id", "")) == 0)
            return TRUE;
    }
    state = dv_catalog_machine_state(vh, m, c, error);
    if (state == NULL)
        return FALSE;
    if (g_strcmp0(state, "shutoff") != 0)
        return TRUE;
    if (!dv_catalog_machine_move(engine, vh, catalog, m, c, error))
        return FALSE;
    *ret_moved = TRUE;
    return TRUE;
}

gboolean
dv_catalog_machine_start(DvEngine *engine, JsonObject *catalog, JsonObject *m, GCancellable *c, GError **error)
{
    g_autoptr(DvVirtHost) vh =
        dv_core_virt_host_by_id(engine, dv_json_get_string(m, "host_id", ""), error);
    g_autoptr(GError) local = NULL;
    gboolean moved = FALSE;

    if (vh == NULL)
        return FALSE;
    if (g_strcmp0(dv_json_get_string(m, "state", ""), "ready") != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT, "machine %s is %s, not ready",
                    dv_json_get_string(m, "name", ""), dv_json_get_string(m, "state", ""));
        return FALSE;
    }
    if (!dv_catalog_machine_reset_if_pooled(engine, vh, catalog, m, c, &moved, error))
        return FALSE;
    if (!dv_virt_domain_start(vh, dv_json_get_string(m, "domain_uuid", ""), c, &local)) {
        g_autofree char *state = NULL;
        /* Already running (started meanwhile, or a resumed job): done. */
        if (!g_error_matches(local, DV_ERROR, DV_ERROR_CONFLICT) ||
            (state = dv_catalog_machine_state(vh, m, c, NULL)) == NULL || g_strcmp0(state, "running") != 0) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
    }
    if (moved) {
        g_autoptr(GError) gc = NULL;
        /* The base it left may be unused now. */
        if (!dv_catalog_bases_collect(engine, dv_json_get_string(catalog, "id", ""), c, NULL, &gc))
            g_warning("catalog %s: collecting unused bases: %s", dv_json_get_string(catalog, "name", ""),
                      gc->message);
    }
    return dv_catalog_vm_sync(engine, vh, m, c, error);
}

gboolean
dv_catalog_before_start(DvEngine *engine, JsonObject *vm, GCancellable *c, GError **error)
{
    g_autoptr(JsonObject) m = NULL;
    g_autoptr(JsonObject) catalog = NULL;
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(GError) local = NULL;
    gboolean moved = FALSE;

    if (g_strcmp0(dv_json_get_string(vm, "origin", ""), "catalog") != 0)
        return TRUE;
    /* A catalog machine's VM row has the machine's id. */
    m = dv_store_get(dv_core(engine)->store, &dv_table_catalog_machines,
                     dv_json_get_string(vm, "id", ""), &local);
    if (m == NULL) {
        if (g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
            return TRUE;
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    catalog = dv_store_get(dv_core(engine)->store, &dv_table_catalogs,
                           dv_json_get_string(m, "catalog_id", ""), error);
    if (catalog == NULL)
        return FALSE;
    vh = dv_core_virt_host_by_id(engine, dv_json_get_string(m, "host_id", ""), error);
    if (vh == NULL)
        return FALSE;
    if (!dv_catalog_machine_reset_if_pooled(engine, vh, catalog, m, c, &moved, error)) {
        g_prefix_error(error, "resetting catalog machine %s to the current image: ", dv_json_get_string(m, "name", ""));
        return FALSE;
    }
    if (moved && !dv_catalog_bases_collect(engine, dv_json_get_string(catalog, "id", ""), c, NULL, &local))
        g_warning("catalog %s: collecting unused bases: %s", dv_json_get_string(catalog, "name", ""),
                  local->message);
    return TRUE;
}

/* --- update-image and rollback -------------------------------------------------------- */

typedef struct {
    JsonObject *image;
    GPtrArray *bases;
} DvImageRows;

static gboolean
dv_image_insert_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvImageRows *r = user_data;
    return dv_store_insert(store, &dv_table_catalog_images, r->image, error) &&
           dv_store_insert_all(store, &dv_table_catalog_bases, r->bases, error);
}

JsonObject *
dv_engine_catalog_update_image(DvEngine *engine, const char *ref, JsonObject *body,
                               const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) catalog = dv_core_resolve(engine, DV_KIND_CATALOG, ref, NULL, error);
    g_autoptr(JsonObject) master = NULL;
    g_autoptr(JsonObject) master_vol = NULL;
    g_autoptr(JsonObject) current = NULL;
    g_autoptr(JsonArray) images = NULL;
    g_autoptr(JsonObject) image = json_object_new();
    g_autoptr(GPtrArray) bases = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    g_autoptr(JsonObject) params = json_object_new();
    g_autoptr(JsonObject) job = NULL;
    g_autofree char *image_id = g_uuid_string_random();
    const char *cname;
    const char *pool;
    JsonArray *host_ids;
    gint64 version = 0;
    gint64 base_bytes;
    gint64 now = dv_store_now();

    if (catalog == NULL)
        return NULL;
    if (!dv_json_check_fields(body, dv_catalog_update_image_fields, NULL, error))
        return NULL;
    cname = dv_json_get_string(catalog, "name", "");
    pool = dv_json_get_string(catalog, "pool_name", "");
    /* Before anything else, so a busy catalog is refused naming its job. */
    if (!dv_catalog_check_idle(engine, catalog, error))
        return NULL;
    if (g_strcmp0(dv_json_get_string(catalog, "state", ""), "deleting") == 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, NULL, "catalog %s is being deleted", cname);
        return NULL;
    }
    master = dv_catalog_check_master(engine, body, &master_vol, error);
    if (master == NULL)
        return NULL;
    current = dv_store_get(dv_core(engine)->store, &dv_table_catalog_images,
                           dv_json_get_string(catalog, "current_image_id", ""), NULL);
    if (current != NULL &&
        g_strcmp0(dv_json_get_string(current, "master_vm_id", ""), dv_json_get_string(master, "id", "")) == 0 &&
        g_strcmp0(dv_json_get_string(current, "master_snapshot", ""),
                  dv_json_get_string(body, "master_snapshot", "")) == 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "master_snapshot",
                           "master_snapshot: '%s' of %s is already the current image (v%" G_GINT64_FORMAT
                           ") of catalog %s; take a new snapshot of the master first",
                           dv_json_get_string(body, "master_snapshot", ""), dv_json_get_string(master, "name", ""),
                           dv_json_get_int(current, "version", 0), cname);
        return NULL;
    }
    images = dv_core_list_all(engine, &dv_table_catalog_images, "catalog_id",
                              dv_json_get_string(catalog, "id", ""), error);
    if (images == NULL)
        return NULL;
    for (guint i = 0; i < json_array_get_length(images); i++)
        version = MAX(version, dv_json_get_int(json_array_get_object_element(images, i), "version", 0));
    version++;

    /* A new base per target host, in the catalog's pool, with room. */
    base_bytes = dv_json_get_int(master_vol, "capacity", 0);
    host_ids = dv_json_get_array(catalog, "host_ids");
    for (guint h = 0; host_ids != NULL && h < json_array_get_length(host_ids); h++) {
        const char *host_id = json_array_get_string_element(host_ids, h);
        g_autoptr(JsonObject) p = dv_catalog_on_host(engine, &dv_table_pools, host_id, "name", pool, error);
        g_autoptr(JsonObject) host = NULL;
        g_autofree char *vname = g_strdup_printf("%s-base-v%" G_GINT64_FORMAT ".qcow2", cname, version);

        if (p == NULL && error != NULL && *error != NULL)
            return NULL;
        host = dv_store_get(dv_core(engine)->store, &dv_table_hosts, host_id, error);
        if (host == NULL)
            return NULL;
        if (p == NULL || g_strcmp0(dv_json_get_string(p, "state", ""), "running") != 0) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "pool", "pool: storage pool '%s' on host %s is %s", pool,
                               dv_json_get_string(host, "name", ""), p == NULL ? "gone" : "not running");
            return NULL;
        }
        if (dv_json_get_int(p, "available", 0) < base_bytes) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "pool",
                               "pool: '%s' on host %s has %" G_GINT64_FORMAT " MiB free; the new base needs %"
                               G_GINT64_FORMAT " MiB",
                               pool, dv_json_get_string(host, "name", ""), dv_json_get_int(p, "available", 0) >> 20,
                               (base_bytes + (1 << 20) - 1) >> 20);
            return NULL;
        }
        g_ptr_array_add(bases, dv_catalog_base_row_new(dv_json_get_string(catalog, "id", ""), image_id, host_id, pool,
                                                       vname, base_bytes, now));
    }
    json_object_set_string_member(image, "id", image_id);
    json_object_set_string_member(image, "catalog_id", dv_json_get_string(catalog, "id", ""));
    json_object_set_int_member(image, "version", version);
    json_object_set_string_member(image, "master_vm_id", dv_json_get_string(master, "id", ""));
    json_object_set_string_member(image, "master_snapshot", dv_json_get_string(body, "master_snapshot", ""));
    json_object_set_boolean_member(image, "is_current", FALSE);
    json_object_set_int_member(image, "created_at", now);
    json_object_set_string_member(image, "state", "pending");
    json_object_set_null_member(image, "error");
    json_object_set_null_member(image, "previous_image_id");
    {
        DvImageRows rows = { image, bases };
        if (!dv_store_transaction(dv_core(engine)->store, dv_image_insert_txn, &rows, error))
            return NULL;
    }
    json_object_set_string_member(params, "image_id", image_id);
    job = dv_catalog_submit(engine, catalog, "catalog.update-image", params, NULL, actor, error);
    if (job == NULL) {
        /* Nothing is left of a refused update (bases go with the image). */
        dv_store_delete(dv_core(engine)->store, &dv_table_catalog_images, image_id, NULL);
        return NULL;
    }
    return g_steal_pointer(&job);
}

JsonObject *
dv_engine_catalog_rollback(DvEngine *engine, const char *ref, const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) catalog = dv_core_resolve(engine, DV_KIND_CATALOG, ref, NULL, error);
    g_autoptr(JsonObject) current = NULL;
    g_autoptr(JsonObject) previous = NULL;
    g_autoptr(JsonObject) params = json_object_new();
    const char *prev_id;
    JsonArray *host_ids;

    if (catalog == NULL || !dv_catalog_check_idle(engine, catalog, error))
        return NULL;
    current = dv_store_get(dv_core(engine)->store, &dv_table_catalog_images,
                           dv_json_get_string(catalog, "current_image_id", ""), error);
    if (current == NULL)
        return NULL;
    prev_id = dv_json_get_string(current, "previous_image_id", NULL);
    if (prev_id == NULL) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, NULL,
                           "catalog %s has no previous image to roll back to: image v%" G_GINT64_FORMAT
                           " was not made current by an update",
                           dv_json_get_string(catalog, "name", ""), dv_json_get_int(current, "version", 0));
        return NULL;
    }
    previous = dv_store_get(dv_core(engine)->store, &dv_table_catalog_images, prev_id, error);
    if (previous == NULL)
        return NULL;
    /* Its bases must still be there on every host. */
    host_ids = dv_json_get_array(catalog, "host_ids");
    for (guint h = 0; host_ids != NULL && h < json_array_get_length(host_ids); h++) {
        const char *host_id = json_array_get_string_element(host_ids, h);
        g_autoptr(GError) local = NULL;
        g_autoptr(JsonObject) b = dv_catalog_base_for(engine, catalog, prev_id, host_id, &local);
        if (local != NULL) {
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        if (b == NULL || g_strcmp0(dv_json_get_string(b, "state", ""), "ready") != 0) {
            g_autoptr(JsonObject) host =
                dv_store_get(dv_core(engine)->store, &dv_table_hosts, host_id, NULL);
            dv_set_field_error(error, DV_ERROR_CONFLICT, NULL,
                               "cannot roll catalog %s back to image v%" G_GINT64_FORMAT
                               ": its base on host %s %s",
                               dv_json_get_string(catalog, "name", ""), dv_json_get_int(previous, "version", 0),
                               host != NULL ? dv_json_get_string(host, "name", "") : host_id,
                               b == NULL ? "was removed" : "is not ready");
            return NULL;
        }
    }
    json_object_set_string_member(params, "image_id", prev_id);
    json_object_set_boolean_member(params, "rollback", TRUE);
    return dv_catalog_submit(engine, catalog, "catalog.rollback", params, NULL, actor, error);
}

/* Writes @changes (its "id" names the row) to @def. */
static gboolean
dv_image_update_row(DvStore *store, const DvTableDef *def, JsonObject *changes, GError **error)
{
    g_autoptr(JsonObject) only = json_object_new();
    JsonObjectIter it;
    const char *k;
    JsonNode *n;

    json_object_iter_init(&it, changes);
    while (json_object_iter_next(&it, &k, &n))
        if (g_strcmp0(k, "id") != 0)
            json_object_set_member(only, k, json_node_copy(n));
    return dv_store_update(store, def, dv_json_get_string(changes, "id", ""), only, error);
}

/* The old image stops being current, the new one is, and the catalog
 * names it: one transaction. */
static gboolean
dv_image_activate_txn(DvStore *store, gpointer user_data, GError **error)
{
    JsonObject **rows = user_data; /* old image, new image, catalog: changes with "id" */

    if (dv_json_get_string(rows[0], "id", NULL) != NULL && !dv_image_update_row(store, &dv_table_catalog_images,
                                                                                 rows[0], error))
        return FALSE;
    return dv_image_update_row(store, &dv_table_catalog_images, rows[1], error) &&
           dv_image_update_row(store, &dv_table_catalogs, rows[2], error);
}

static const DvJobStep dv_image_steps[] = {
    { "consolidate", 40 },
    { "activate", 5 },
    { "move machines", 45 },
    { "remove unused bases", 10 },
};

static gboolean
dv_image_fail(DvEngine *engine, JsonObject *image, const char *why, GError **error)
{
    g_autoptr(JsonObject) ch = json_object_new();
    json_object_set_string_member(ch, "state", "failed");
    json_object_set_string_member(ch, "error", why);
    return dv_store_update(dv_core(engine)->store, &dv_table_catalog_images,
                           dv_json_get_string(image, "id", ""), ch, error);
}

/* catalog.update-image and catalog.rollback. */
/* A worker of "move machines": a powered-off pooled machine gets a fresh
 * overlay on the current image now (TRUE); a running one moves at its next
 * start (skipped). */
static gboolean
dv_catalog_image_move_one(DvCatalogEach *each, JsonObject *m, gboolean *ret_skipped, GError **error)
{
    g_autoptr(DvVirtHost) vh =
        dv_core_virt_host_by_id(each->engine, dv_json_get_string(m, "host_id", ""), error);
    gboolean did = FALSE;

    if (vh == NULL ||
        !dv_catalog_machine_reset_if_pooled(each->engine, vh, each->catalog, m, dv_job_get_cancellable(each->job),
                                            &did, error))
        return FALSE;
    *ret_skipped = !did;
    return TRUE;
}

/* Base @b of @image could not be made or is gone (@local, borrowed): a
 * cancellation ends the job; otherwise an update marks the base and the
 * image failed.  Always FALSE with @error set. */
static gboolean
dv_image_base_failed(DvEngine *engine, JsonObject *image, JsonObject *b, gboolean rollback, GError *local,
                     GError **error)
{
    g_autoptr(JsonObject) ch = json_object_new();
    g_autofree char *why = NULL;

    if (g_error_matches(local, DV_ERROR, DV_ERROR_CANCELLED)) {
        g_propagate_error(error, g_error_copy(local));
        return FALSE;
    }
    why = g_strdup_printf("image v%" G_GINT64_FORMAT ": %s", dv_json_get_int(image, "version", 0), local->message);
    if (!rollback) {
        json_object_set_string_member(ch, "state", "failed");
        json_object_set_string_member(ch, "error", local->message);
        if (!dv_catalog_update(engine, &dv_table_catalog_bases, b, ch, error) ||
            !dv_image_fail(engine, image, why, error))
            return FALSE;
    }
    g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED, "%s; the catalog stays on its current image", why);
    return FALSE;
}

static gboolean
dv_catalog_image_job(DvJob *job, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    GCancellable *c = dv_job_get_cancellable(job);
    JsonObject *params = dv_job_get_params(job);
    const char *image_id = dv_json_get_string(params, "image_id", "");
    gboolean rollback = dv_json_get_bool(params, "rollback", FALSE);
    g_autoptr(JsonObject) catalog = NULL;
    g_autoptr(JsonObject) image = NULL;
    g_autoptr(JsonArray) bases = NULL;
    g_autoptr(GPtrArray) ordered = NULL;
    guint n_first = 0;
    g_autoptr(JsonArray) machines = NULL;
    g_autoptr(JsonObject) result = json_object_new();
    g_autofree char *first_error = NULL;
    guint moved = 0, waiting = 0, kept = 0, failed = 0, removed = 0, n;

    dv_job_set_steps(job, dv_image_steps, G_N_ELEMENTS(dv_image_steps));
    catalog =
        dv_store_get(dv_core(engine)->store, &dv_table_catalogs, dv_job_get_target_id(job), error);
    if (catalog == NULL)
        return FALSE;
    image = dv_store_get(dv_core(engine)->store, &dv_table_catalog_images, image_id, error);
    if (image == NULL)
        return FALSE;

    if (!dv_job_step(job, "consolidate", error))
        return FALSE;
    bases = dv_core_list_all(engine, &dv_table_catalog_bases, "image_id", image_id, error);
    if (bases == NULL)
        return FALSE;
    ordered = dv_catalog_bases_in_order(engine, bases, &n_first);
    {
        /* Bases made long ago (a rollback's, or ready ones) must still be
         * there; the others are made, the master's host first. */
        g_autoptr(GPtrArray) to_make = g_ptr_array_new();
        g_autoptr(GPtrArray) errors = NULL;
        guint to_make_first = 0;

        for (guint i = 0; i < ordered->len; i++) {
            JsonObject *b = g_ptr_array_index(ordered, i);
            g_autoptr(GError) local = NULL;
            g_autoptr(DvVirtHost) vh = NULL;
            g_autoptr(JsonObject) vol = NULL;

            if (!rollback && g_strcmp0(dv_json_get_string(b, "state", ""), "ready") != 0) {
                if (i < n_first)
                    to_make_first++;
                g_ptr_array_add(to_make, b);
                continue;
            }
            vh = dv_core_virt_host_by_id(engine, dv_json_get_string(b, "host_id", ""), &local);
            if (vh != NULL)
                vol = dv_virt_volume_lookup_by_path(vh, dv_json_get_string(b, "path", ""), c, &local);
            if (vol == NULL) {
                g_prefix_error(&local, "base %s: ", dv_json_get_string(b, "volume_name", ""));
                return dv_image_base_failed(engine, image, b, rollback, local, error);
            }
        }
        errors = dv_catalog_consolidate_all(engine, job, catalog, to_make, to_make_first, NULL);
        for (guint i = 0; i < to_make->len; i++) {
            GError *local = g_ptr_array_index(errors, i);
            if (local != NULL)
                return dv_image_base_failed(engine, image, g_ptr_array_index(to_make, i), rollback, local, error);
        }
    }

    if (!dv_job_step(job, "activate", error))
        return FALSE;
    if (g_strcmp0(dv_json_get_string(catalog, "current_image_id", ""), image_id) != 0) {
        g_autoptr(JsonObject) old_ch = json_object_new();
        g_autoptr(JsonObject) new_ch = json_object_new();
        g_autoptr(JsonObject) cat_ch = json_object_new();
        g_autoptr(JsonObject) master =
            dv_store_get(dv_core(engine)->store, &dv_table_vms,
                         dv_json_get_string(image, "master_vm_id", ""), NULL);
        JsonObject *rows[3] = { old_ch, new_ch, cat_ch };
        const char *old_id = dv_json_get_string(catalog, "current_image_id", NULL);

        json_object_set_string_member(old_ch, "id", old_id);
        json_object_set_boolean_member(old_ch, "is_current", FALSE);
        json_object_set_string_member(new_ch, "id", image_id);
        json_object_set_boolean_member(new_ch, "is_current", TRUE);
        json_object_set_string_member(new_ch, "state", "ready");
        json_object_set_null_member(new_ch, "error");
        /* A rollback keeps the image's own previous: rolling back again
         * goes further back. */
        if (!rollback)
            json_object_set_string_member(new_ch, "previous_image_id", old_id);
        json_object_set_string_member(cat_ch, "id", dv_json_get_string(catalog, "id", ""));
        json_object_set_string_member(cat_ch, "current_image_id", image_id);
        json_object_set_string_member(cat_ch, "master_vm_id", dv_json_get_string(image, "master_vm_id", NULL));
        if (master != NULL)
            json_object_set_string_member(cat_ch, "master_vm_name", dv_json_get_string(master, "name", ""));
        json_object_set_string_member(cat_ch, "master_snapshot", dv_json_get_string(image, "master_snapshot", ""));
        json_object_set_int_member(cat_ch, "updated_at", dv_store_now());
        if (!dv_store_transaction(dv_core(engine)->store, dv_image_activate_txn, rows, error))
            return FALSE;
        g_clear_pointer(&catalog, json_object_unref);
        catalog = dv_store_get(dv_core(engine)->store, &dv_table_catalogs,
                               dv_job_get_target_id(job), error);
        if (catalog == NULL)
            return FALSE;
    }

    if (!dv_job_step(job, "move machines", error))
        return FALSE;
    machines = dv_core_list_all(engine, &dv_table_catalog_machines, "catalog_id",
                                dv_json_get_string(catalog, "id", ""), error);
    if (machines == NULL)
        return FALSE;
    n = json_array_get_length(machines);
    {
        /* What needs no host is settled here; the pooled machines made on
         * an older image move in parallel. */
        g_autoptr(JsonArray) ids = json_array_new();
        DvCatalogEach each = { engine, job, catalog, dv_catalog_image_move_one, NULL };
        DvCatalogEachResult r;

        for (guint i = 0; i < n; i++) {
            JsonObject *m = json_array_get_object_element(machines, i);

            if (g_strcmp0(dv_json_get_string(m, "image_id", ""), image_id) == 0)
                continue;
            /* Not made yet: it is made on the current image. */
            if (g_strcmp0(dv_json_get_string(m, "state", ""), "ready") != 0 &&
                dv_json_get_string(m, "overlay_path", NULL) == NULL) {
                g_autoptr(JsonObject) ch = json_object_new();
                json_object_set_string_member(ch, "image_id", image_id);
                if (!dv_catalog_update(engine, &dv_table_catalog_machines, m, ch, error))
                    return FALSE;
                continue;
            }
            if (g_strcmp0(dv_json_get_string(catalog, "catalog_type", ""), "pooled") != 0) {
                kept++;
                continue;
            }
            json_array_add_string_element(ids, dv_json_get_string(m, "id", ""));
        }
        dv_catalog_each_machine(&each, ids, DV_CATALOG_EACH_PARALLEL, ": ", &r);
        if (r.cancelled) {
            dv_catalog_each_result_clear(&r);
            g_set_error_literal(error, DV_ERROR, DV_ERROR_CANCELLED,
                                "cancelled; the machines not moved yet move at their next start");
            return FALSE;
        }
        moved = r.ok;
        waiting = r.skipped;
        failed = r.failed;
        first_error = g_steal_pointer(&r.first_error);
        json_object_set_int_member(result, "parallel", r.parallel);
        json_object_set_int_member(result, "max_parallel_seen", r.max_running);
    }

    if (!dv_job_step(job, "remove unused bases", error))
        return FALSE;
    if (!dv_catalog_bases_collect(engine, dv_json_get_string(catalog, "id", ""), c, &removed, error))
        return FALSE;

    json_object_set_string_member(result, "id", dv_json_get_string(catalog, "id", ""));
    json_object_set_string_member(result, "name", dv_json_get_string(catalog, "name", ""));
    json_object_set_int_member(result, "image_version", dv_json_get_int(image, "version", 0));
    json_object_set_int_member(result, "machines_moved", moved);
    json_object_set_int_member(result, "machines_move_at_restart", waiting);
    json_object_set_int_member(result, "machines_kept", kept);
    json_object_set_int_member(result, "machines_failed", failed);
    json_object_set_int_member(result, "bases_removed", removed);
    dv_job_set_result(job, result);
    if (failed > 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED,
                    "image v%" G_GINT64_FORMAT " is current, but %u machines could not be moved (first: %s); "
                    "they move at their next start",
                    dv_json_get_int(image, "version", 0), failed, first_error);
        return FALSE;
    }
    return TRUE;
}

/* --- rebuild ------------------------------------------------------------------------- */

/* The machines @body names ("machines": names or ids, or "all": true), as
 * ids in @params. */
gboolean
dv_catalog_pick_machines(DvEngine *engine, JsonObject *catalog, JsonObject *body, JsonObject *params,
                         GError **error)
{
    JsonArray *names = dv_json_get_array(body, "machines");
    gboolean all = dv_json_get_bool(body, "all", FALSE);
    g_autoptr(JsonArray) rows = NULL;
    g_autoptr(JsonArray) ids = json_array_new();
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

    if ((names != NULL) == all) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "machines",
                           "machines: give the machines by name, or all");
        return FALSE;
    }
    rows = dv_core_list_all(engine, &dv_table_catalog_machines, "catalog_id",
                            dv_json_get_string(catalog, "id", ""), error);
    if (rows == NULL)
        return FALSE;
    if (all) {
        for (guint i = 0; i < json_array_get_length(rows); i++)
            json_array_add_string_element(ids,
                                          dv_json_get_string(json_array_get_object_element(rows, i), "id", ""));
    } else {
        guint n = json_array_get_length(names);
        if (n < 1 || n > DV_CATALOG_MAX_REBUILD) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "machines", "machines: give 1 to %d machines",
                               DV_CATALOG_MAX_REBUILD);
            return FALSE;
        }
        for (guint i = 0; i < n; i++) {
            JsonNode *node = json_array_get_element(names, i);
            g_autofree char *f = g_strdup_printf("machines[%u]", i);
            const char *want;
            const char *found = NULL;
            if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f, "%s: must be a machine name", f);
                return FALSE;
            }
            want = json_node_get_string(node);
            for (guint k = 0; k < json_array_get_length(rows) && found == NULL; k++) {
                JsonObject *m = json_array_get_object_element(rows, k);
                if (g_strcmp0(dv_json_get_string(m, "name", ""), want) == 0 ||
                    g_strcmp0(dv_json_get_string(m, "id", ""), want) == 0)
                    found = dv_json_get_string(m, "id", "");
            }
            if (found == NULL) {
                g_autofree char *safe = dv_text_excerpt(want, 64);
                dv_set_field_error(error, DV_ERROR_NOT_FOUND, f, "%s: catalog %s has no machine '%s'", f,
                                   dv_json_get_string(catalog, "name", ""), safe);
                return FALSE;
            }
            if (!g_hash_table_add(seen, (gpointer)found)) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f, "%s: '%s' is listed twice", f, want);
                return FALSE;
            }
            json_array_add_string_element(ids, found);
        }
    }
    json_object_set_array_member(params, "machine_ids", g_steal_pointer(&ids));
    return TRUE;
}

JsonObject *
dv_engine_catalog_rebuild(DvEngine *engine, const char *ref, JsonObject *body, const DvActor *actor,
                          GError **error)
{
    g_autoptr(JsonObject) catalog = dv_core_resolve(engine, DV_KIND_CATALOG, ref, NULL, error);
    g_autoptr(JsonObject) params = json_object_new();

    if (catalog == NULL || !dv_json_check_fields(body, dv_catalog_rebuild_fields, NULL, error) ||
        !dv_catalog_pick_machines(engine, catalog, body, params, error))
        return NULL;
    return dv_catalog_submit(engine, catalog, "catalog.rebuild", params, NULL, actor, error);
}

/* A worker of rebuild: a ready, powered-off machine gets a fresh overlay on
 * the current image. */
static gboolean
dv_catalog_rebuild_one(DvCatalogEach *each, JsonObject *m, gboolean *ret_skipped, GError **error)
{
    GCancellable *c = dv_job_get_cancellable(each->job);
    g_autoptr(DvVirtHost) vh = NULL;
    g_autofree char *state = NULL;

    if (g_strcmp0(dv_json_get_string(m, "state", ""), "ready") != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT, "is %s, not ready (provision it)",
                    dv_json_get_string(m, "state", ""));
        return FALSE;
    }
    vh = dv_core_virt_host_by_id(each->engine, dv_json_get_string(m, "host_id", ""), error);
    if (vh == NULL)
        return FALSE;
    state = dv_catalog_machine_state(vh, m, c, error);
    if (state == NULL)
        return FALSE;
    if (g_strcmp0(state, "shutoff") != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT, "is %s; shut it down first", state);
        return FALSE;
    }
    return dv_catalog_machine_move(each->engine, vh, each->catalog, m, c, error);
}

static gboolean
dv_catalog_rebuild_job(DvJob *job, gpointer user_data, GError **error)
{
    static const DvJobStep steps[] = { { "rebuild", 90 }, { "remove unused bases", 10 } };
    DvEngine *engine = user_data;
    GCancellable *c = dv_job_get_cancellable(job);
    JsonArray *ids = dv_json_get_array(dv_job_get_params(job), "machine_ids");
    g_autoptr(JsonObject) catalog = NULL;
    g_autoptr(JsonObject) result = json_object_new();
    g_autofree char *first_error = NULL;
    DvCatalogEach each = { engine, job, NULL, dv_catalog_rebuild_one, NULL };
    DvCatalogEachResult r;
    guint done, failed, removed = 0, n = ids != NULL ? json_array_get_length(ids) : 0;

    dv_job_set_steps(job, steps, G_N_ELEMENTS(steps));
    catalog =
        dv_store_get(dv_core(engine)->store, &dv_table_catalogs, dv_job_get_target_id(job), error);
    if (catalog == NULL || !dv_job_step(job, "rebuild", error))
        return FALSE;
    each.catalog = catalog;
    dv_catalog_each_machine(&each, ids, DV_CATALOG_EACH_PARALLEL, " ", &r);
    if (r.cancelled) {
        dv_catalog_each_result_clear(&r);
        g_set_error_literal(error, DV_ERROR, DV_ERROR_CANCELLED, "cancelled; rebuild the machines left again");
        return FALSE;
    }
    done = r.ok;
    failed = r.failed;
    first_error = g_steal_pointer(&r.first_error);
    json_object_set_int_member(result, "parallel", r.parallel);
    json_object_set_int_member(result, "max_parallel_seen", r.max_running);
    if (!dv_job_step(job, "remove unused bases", error) ||
        !dv_catalog_bases_collect(engine, dv_json_get_string(catalog, "id", ""), c, &removed, error))
        return FALSE;
    json_object_set_string_member(result, "id", dv_json_get_string(catalog, "id", ""));
    json_object_set_string_member(result, "name", dv_json_get_string(catalog, "name", ""));
    json_object_set_int_member(result, "machines_rebuilt", done);
    json_object_set_int_member(result, "machines_failed", failed);
    json_object_set_int_member(result, "bases_removed", removed);
    dv_job_set_result(job, result);
    if (failed > 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED, "%u of %u machines were not rebuilt (first: %s)", failed,
                    n, first_error);
        return FALSE;
    }
    return TRUE;
}

/* --- image history ------------------------------------------------------------------------ */

JsonObject *
dv_engine_catalog_images(DvEngine *engine, const char *ref, GError **error)
{
    g_autoptr(JsonObject) catalog = dv_core_resolve(engine, DV_KIND_CATALOG, ref, NULL, error);
    g_autoptr(JsonArray) images = NULL;
    g_autoptr(JsonArray) items = json_array_new();
    g_autoptr(JsonObject) out = json_object_new();
    const char *catalog_id;

    if (catalog == NULL)
        return NULL;
    catalog_id = dv_json_get_string(catalog, "id", "");
    images = dv_core_list_all(engine, &dv_table_catalog_images, "catalog_id", catalog_id, error);
    if (images == NULL)
        return NULL;
    for (guint i = 0; i < json_array_get_length(images); i++) {
        JsonObject *img = json_array_get_object_element(images, i);
        const char *image_id = dv_json_get_string(img, "id", "");
        DvFilter f = { "image_id", DV_FILTER_EQ, image_id };
        gint64 machines =
            dv_store_count(dv_core(engine)->store, &dv_table_catalog_machines, &f, 1, error);
        g_autoptr(JsonArray) bases = NULL;
        g_autoptr(JsonObject) master = NULL;
        g_autoptr(JsonArray) bout = json_array_new();
        JsonObject *o = json_object_new();
        const char *base_state = "removed";
        guint ready = 0;

        json_array_add_object_element(items, o);
        if (machines < 0)
            return NULL;
        bases = dv_core_list_all(engine, &dv_table_catalog_bases, "image_id", image_id, error);
        if (bases == NULL)
            return NULL;
        master = dv_store_get(dv_core(engine)->store, &dv_table_vms,
                              dv_json_get_string(img, "master_vm_id", ""), NULL);
        for (guint b = 0; b < json_array_get_length(bases); b++) {
            JsonObject *row = json_array_get_object_element(bases, b);
            JsonObject *bo = json_object_new();
            const char *st = dv_json_get_string(row, "state", "");
            json_object_set_string_member(bo, "id", dv_json_get_string(row, "id", ""));
            json_object_set_string_member(bo, "host_id", dv_json_get_string(row, "host_id", ""));
            json_object_set_string_member(bo, "volume_name", dv_json_get_string(row, "volume_name", ""));
            json_object_set_string_member(bo, "state", st);
            json_object_set_int_member(bo, "refcount", dv_json_get_int(row, "refcount", 0));
            if (dv_json_get_string(row, "error", NULL) != NULL)
                json_object_set_string_member(bo, "error", dv_json_get_string(row, "error", NULL));
            json_array_add_object_element(bout, bo);
            if (g_strcmp0(st, "ready") == 0)
                ready++;
            else if (g_strcmp0(st, "failed") == 0)
                base_state = "failed";
            else if (g_strcmp0(base_state, "failed") != 0)
                base_state = "pending";
        }
        if (json_array_get_length(bases) > 0 && ready == json_array_get_length(bases))
            base_state = "ready";
        json_object_set_string_member(o, "id", image_id);
        json_object_set_int_member(o, "version", dv_json_get_int(img, "version", 0));
        json_object_set_string_member(o, "master_vm_id", dv_json_get_string(img, "master_vm_id", NULL));
        json_object_set_string_member(o, "master_vm_name",
                                      master != NULL ? dv_json_get_string(master, "name", NULL) : NULL);
        json_object_set_string_member(o, "master_snapshot", dv_json_get_string(img, "master_snapshot", ""));
        json_object_set_boolean_member(o, "current", g_strcmp0(image_id, dv_json_get_string(catalog, "current_image_id",
                                                                                            "")) == 0);
        json_object_set_string_member(o, "state", dv_json_get_string(img, "state", "ready"));
        json_object_set_string_member(o, "error", dv_json_get_string(img, "error", NULL));
        json_object_set_string_member(o, "previous_image_id", dv_json_get_string(img, "previous_image_id", NULL));
        json_object_set_int_member(o, "machines", machines);
        json_object_set_string_member(o, "base_state", base_state);
        json_object_set_array_member(o, "bases", g_steal_pointer(&bout));
        json_object_set_int_member(o, "created_at", dv_json_get_int(img, "created_at", 0));
    }
    json_object_set_array_member(out, "items", g_steal_pointer(&items));
    json_object_set_null_member(out, "next_cursor");
    return g_steal_pointer(&out);
}

void
dv_catalog_image_register(DvEngine *engine)
{
    DvJobKind update = { "catalog.update-image", dv_catalog_image_job, engine, TRUE };
    DvJobKind rollback = { "catalog.rollback", dv_catalog_image_job, engine, TRUE };
    DvJobKind rebuild = { "catalog.rebuild", dv_catalog_rebuild_job, engine, TRUE };
    dv_job_manager_register_kind(dv_core(engine)->jobs, &update);
    dv_job_manager_register_kind(dv_core(engine)->jobs, &rollback);
    dv_job_manager_register_kind(dv_core(engine)->jobs, &rebuild);
}
