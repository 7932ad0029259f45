#define G_LOG_DOMAIN "DvCatalogMachines"

/* A catalog's machines after create (docs/CATALOGS.md): adding machines
 * (pending rows, then the provisioning job makes them), removing them
 * (catalog.remove-machines, machine by machine as delete does), power
 * actions throttled to a share of the catalog (catalog.power), the
 * identity disk read back through the host without its secrets, and the
 * periodic reconcile report. */

#include "dv-catalogs-private.h"
#include "dv-identity.h"

#include <math.h>
#include <string.h>

#define DV_CATALOG_MAX_MACHINES 10000
#define DV_CATALOG_OVERLAY_INITIAL G_GINT64_CONSTANT(1048576)
#define DV_CATALOG_POWER_TIMEOUT_MS (120 * 1000)
#define DV_CATALOG_POWER_MAX_PARALLEL 64

const DvFieldSpec dv_catalog_add_fields[] = {
    { "count", DV_FIELD_INT, TRUE },
    { "reuse_gaps", DV_FIELD_BOOL, FALSE },
    { NULL },
};

const DvFieldSpec dv_catalog_remove_fields[] = {
    { "machines", DV_FIELD_ARRAY, FALSE },
    { "count", DV_FIELD_INT, FALSE },
    { "force", DV_FIELD_BOOL, FALSE },
    { NULL },
};

static const char *const dv_catalog_power_actions[] = { "start", "shutdown", "restart", NULL };

const DvFieldSpec dv_catalog_power_fields[] = {
    { "action", DV_FIELD_STRING, TRUE, .values = dv_catalog_power_actions },
    { "machines", DV_FIELD_ARRAY, FALSE },
    { "max_share", DV_FIELD_INT, FALSE, "percent of machines at once (default 10)", .min = 1,
      .max = 100 },
    { NULL },
};

static JsonObject *
dv_catalog_resolve_idle(DvEngine *engine, const char *ref, GError **error)
{
    g_autoptr(JsonObject) catalog = dv_core_resolve(engine, DV_KIND_CATALOG, ref, NULL, error);
    if (catalog == NULL || !dv_catalog_check_idle(engine, catalog, error))
        return NULL;
    if (g_strcmp0(dv_json_get_string(catalog, "state", ""), "deleting") == 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, NULL, "catalog %s is being deleted; delete it again to finish",
                           dv_json_get_string(catalog, "name", ""));
        return NULL;
    }
    return g_steal_pointer(&catalog);
}

/* --- add machines ------------------------------------------------------------------ */

typedef struct {
    GPtrArray *rows;  /* the new machine rows */
    JsonObject *each; /* what one machine costs the actor's quota, or NULL */
} DvCatalogAdd;

/* With the job row: the quota of every new machine at once (all or none),
 * then the rows. */
static gboolean
dv_catalog_insert_machines_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvCatalogAdd *add = user_data;
    return dv_catalog_quota_reserve(store, add->each, add->rows->len, error) &&
           dv_store_insert_all(store, &dv_table_catalog_machines, add->rows, error);
}

JsonObject *
dv_engine_catalog_add_machines(DvEngine *engine, const char *ref, JsonObject *body,
                               const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) catalog = NULL;
    g_autoptr(JsonArray) existing = NULL;
    g_autoptr(GHashTable) used = g_hash_table_new(g_int64_hash, g_int64_equal);
    g_autoptr(GArray) indexes = g_array_new(FALSE, FALSE, sizeof(gint64));
    g_autoptr(GHashTable) taken = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(GPtrArray) hosts = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    g_autoptr(GArray) per_host = g_array_new(FALSE, TRUE, sizeof(gint64));
    g_autoptr(GArray) new_per_host = NULL;
    g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) each = NULL;
    gint64 *keys;
    gint64 count = dv_json_get_int(body, "count", 0);
    gint64 base_capacity = 0;
    const char *owner_id = NULL;
    gboolean reuse = dv_json_get_bool(body, "reuse_gaps", FALSE);
    gint64 cap = 1, next, max_index = 0, n_existing;
    const char *scheme;
    const char *pool;
    const char *image_id;
    JsonArray *host_ids;
    guint offset = 0, width = 0;
    gint64 now = dv_store_now();

    if (!dv_json_check_fields(body, dv_catalog_add_fields, NULL, error))
        return NULL;
    catalog = dv_catalog_resolve_idle(engine, ref, error);
    if (catalog == NULL ||
        !dv_catalog_check_run_as(engine, actor,
                                 dv_json_get_string(catalog, "guest_os_profile_id", NULL), error))
        return NULL;
    scheme = dv_json_get_string(catalog, "naming_scheme", "");
    pool = dv_json_get_string(catalog, "pool_name", "");
    image_id = dv_json_get_string(catalog, "current_image_id", "");
    if (!dv_catalog_scheme_parse(scheme, &offset, &width, error))
        return NULL;
    existing = dv_core_list_all(engine, &dv_table_catalog_machines, "catalog_id",
                                dv_json_get_string(catalog, "id", ""), error);
    if (existing == NULL)
        return NULL;
    n_existing = json_array_get_length(existing);
    if (!dv_validate_range("count", count, 1, DV_CATALOG_MAX_MACHINES - n_existing > 0
                                                  ? DV_CATALOG_MAX_MACHINES - n_existing
                                                  : 1,
                           error))
        return NULL;
    if (n_existing + count > DV_CATALOG_MAX_MACHINES) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "count",
                           "count: a catalog holds at most %d machines; %s has %" G_GINT64_FORMAT,
                           DV_CATALOG_MAX_MACHINES, dv_json_get_string(catalog, "name", ""), n_existing);
        return NULL;
    }
    for (guint i = 0; i < width && cap <= DV_CATALOG_MAX_MACHINES; i++)
        cap *= 10;
    cap -= 1; /* highest index the '#' run can write */

    keys = g_new(gint64, n_existing > 0 ? n_existing : 1);
    for (guint i = 0; i < n_existing; i++) {
        keys[i] = dv_json_get_int(json_array_get_object_element(existing, i), "name_index", 0);
        g_hash_table_add(used, &keys[i]);
    }
    /* Names: the next free index, or the gaps first when asked. */
    next = reuse ? 1 : MAX(dv_json_get_int(catalog, "next_index", 1), 1);
    while ((gint64)indexes->len < count && next <= cap) {
        if (!g_hash_table_contains(used, &next))
            g_array_append_val(indexes, next);
        next++;
    }
    g_free(keys);
    if ((gint64)indexes->len < count) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "count",
                           "count: naming_scheme '%s' numbers at most %" G_GINT64_FORMAT
                           " machines; only %u more names are free%s",
                           scheme, cap, indexes->len, reuse ? "" : " after the last one (reuse_gaps fills gaps)");
        return NULL;
    }

    /* The catalog's hosts that can take machines, with their load. */
    host_ids = dv_json_get_array(catalog, "host_ids");
    for (guint h = 0; host_ids != NULL && h < json_array_get_length(host_ids); h++) {
        const char *host_id = json_array_get_string_element(host_ids, h);
        g_autoptr(GError) local = NULL;
        g_autoptr(JsonObject) host =
            dv_store_get(dv_core(engine)->store, &dv_table_hosts, host_id, &local);
        g_autoptr(JsonObject) base = NULL;
        gint64 n = 0;
        if (host == NULL) {
            if (g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
                continue;
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        if (g_strcmp0(dv_json_get_string(host, "state", ""), "ok") != 0)
            continue;
        base = dv_catalog_base_for(engine, catalog, image_id, host_id, error);
        if (base == NULL) {
            if (error != NULL && *error != NULL)
                return NULL;
            continue; /* the current image was never made there */
        }
        base_capacity = MAX(base_capacity, dv_json_get_int(base, "capacity", 0));
        for (guint i = 0; i < n_existing; i++)
            if (g_strcmp0(dv_json_get_string(json_array_get_object_element(existing, i), "host_id", ""), host_id) ==
                0)
                n++;
        g_ptr_array_add(hosts, g_steal_pointer(&host));
        g_array_append_val(per_host, n);
    }
    if (hosts->len == 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, NULL,
                           "catalog %s has no usable host (state ok, with the current image's base)",
                           dv_json_get_string(catalog, "name", ""));
        return NULL;
    }
    /* Spread: each new machine goes to the host with the fewest. */
    new_per_host = g_array_sized_new(FALSE, TRUE, sizeof(gint64), hosts->len);
    g_array_set_size(new_per_host, hosts->len);
    {
        g_autofree guint *placed = g_new(guint, indexes->len);
        for (guint i = 0; i < indexes->len; i++) {
            guint best = 0;
            for (guint h = 1; h < hosts->len; h++)
                if (g_array_index(per_host, gint64, h) < g_array_index(per_host, gint64, best))
                    best = h;
            g_array_index(per_host, gint64, best)++;
            g_array_index(new_per_host, gint64, best)++;
            placed[i] = best;
        }
        /* Pool space and names on every host. */
        for (guint h = 0; h < hosts->len; h++) {
            JsonObject *host = g_ptr_array_index(hosts, h);
            gint64 need = g_array_index(new_per_host, gint64, h) * DV_CATALOG_OVERLAY_INITIAL;
            g_autoptr(JsonObject) p = dv_catalog_host_pool(engine, host, pool, error);
            if (p == NULL)
                return NULL;
            if (need > 0 && dv_json_get_int(p, "available", 0) < need) {
                dv_set_field_error(error, DV_ERROR_CONFLICT, "pool",
                                   "pool: '%s' on host %s has %" G_GINT64_FORMAT " MiB free; %" G_GINT64_FORMAT
                                   " overlays need %" G_GINT64_FORMAT " MiB",
                                   pool, dv_json_get_string(host, "name", ""),
                                   dv_json_get_int(p, "available", 0) >> 20, g_array_index(new_per_host, gint64, h),
                                   need >> 20);
                return NULL;
            }
        }
        /* Names free on every host of the catalog (VMs and reserved
         * machines), not only where each lands. */
        for (guint h = 0; host_ids != NULL && h < json_array_get_length(host_ids); h++) {
            const char *host_id = json_array_get_string_element(host_ids, h);
            g_autoptr(JsonObject) host =
                dv_store_get(dv_core(engine)->store, &dv_table_hosts, host_id, NULL);
            const char *hname = host != NULL ? dv_json_get_string(host, "name", host_id) : host_id;
            if (!dv_catalog_names_taken(engine, host_id, hname, taken, error))
                return NULL;
        }
        for (guint i = 0; i < indexes->len; i++) {
            gint64 idx = g_array_index(indexes, gint64, i);
            g_autofree char *mname = dv_catalog_machine_name(scheme, offset, width, idx);
            const char *where = g_hash_table_lookup(taken, mname);
            JsonObject *host = g_ptr_array_index(hosts, placed[i]);
            if (where != NULL) {
                /* Another server may just have accepted a job adding these
                 * very machines to the catalog: then it is busy, and the
                 * conflict names that job. */
                g_autoptr(JsonObject) fresh =
                    dv_catalog_resolve_idle(engine, dv_json_get_string(catalog, "id", ""), error);
                if (fresh == NULL)
                    return NULL;
                dv_set_field_error(error, DV_ERROR_CONFLICT, "count",
                                   "count: host %s already has a machine named '%s'", where, mname);
                return NULL;
            }
            g_ptr_array_add(rows, dv_catalog_machine_row_new(dv_json_get_string(catalog, "id", ""), mname, idx,
                                                             dv_json_get_string(host, "id", ""), image_id, now));
            max_index = MAX(max_index, idx);
        }
    }

    /* The machines are the actor's, charged to the binding that lets it
     * provision here (docs/ACCESS.md, "Catalog machines"). */
    if (!dv_catalog_quota_plan(engine, actor, catalog, base_capacity, &each, error))
        return NULL;
    /* As a VM create does: the actor's user id, whoever it is. */
    if (actor != NULL && actor->id != NULL)
        owner_id = actor->id;
    else if (dv_core_actor_authz(actor) != NULL)
        owner_id = dv_authz_context_get_user_id(dv_core_actor_authz(actor));
    for (guint i = 0; i < rows->len; i++) {
        JsonObject *row = g_ptr_array_index(rows, i);
        if (owner_id != NULL)
            json_object_set_string_member(row, "owner_id", owner_id);
        else
            json_object_set_null_member(row, "owner_id");
        if (each != NULL)
            json_object_set_object_member(row, "quota", json_object_ref(each));
        else
            json_object_set_null_member(row, "quota");
    }

    /* Nothing was written so far: rows, quota and job in one transaction.
     * The job makes the new machines only (machine_ids): a machine that
     * failed before waits for a retry (POST .../provision), and the
     * catalog stays degraded while it is not ready.  The ready machines
     * are listed too: the job only checks them (an identity disk gone is
     * made again, docs/CATALOGS.md "Identity pools that vanish"). */
    {
        DvCatalogAdd add = { rows, each };
        g_autoptr(JsonObject) params = json_object_new();
        JsonArray *ids = json_array_new();
        for (guint i = 0; i < (guint)n_existing; i++) {
            JsonObject *m = json_array_get_object_element(existing, i);
            if (g_strcmp0(dv_json_get_string(m, "state", ""), "ready") == 0)
                json_array_add_string_element(ids, dv_json_get_string(m, "id", ""));
        }
        for (guint i = 0; i < rows->len; i++)
            json_array_add_string_element(ids, dv_json_get_string(g_ptr_array_index(rows, i),
                                                                  "id", ""));
        json_object_set_array_member(params, "machine_ids", ids);
        job = dv_catalog_submit_with(engine, catalog, "catalog.provision", params, "provisioning",
                                     actor, dv_catalog_insert_machines_txn, &add, error);
    }
    if (job == NULL)
        return NULL;
    if (max_index + 1 > dv_json_get_int(catalog, "next_index", 1)) {
        g_autoptr(JsonObject) ch = json_object_new();
        json_object_set_int_member(ch, "next_index", max_index + 1);
        if (!dv_store_update(dv_core(engine)->store, &dv_table_catalogs,
                             dv_json_get_string(catalog, "id", ""), ch, error))
            return NULL;
    }
    return g_steal_pointer(&job);
}

/* --- remove machines ------------------------------------------------------------------- */

/* Domain UUID -> 2 (active) or 1 (inactive) as libvirt reports them now
 * on the catalog's hosts, one listing per host; a host that does not
 * answer is left out. */
static GHashTable *
dv_catalog_live_states(DvEngine *engine, JsonObject *catalog)
{
    GHashTable *states = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    JsonArray *host_ids = dv_json_get_array(catalog, "host_ids");
    const char *scheme = dv_json_get_string(catalog, "naming_scheme", "");
    g_autofree char *prefix = NULL;
    guint offset = 0, width = 0;

    if (!dv_catalog_scheme_parse(scheme, &offset, &width, NULL))
        return states;
    prefix = g_strndup(scheme, offset);
    for (guint h = 0; host_ids != NULL && h < json_array_get_length(host_ids); h++) {
        g_autoptr(DvVirtHost) vh =
            dv_core_virt_host_by_id(engine, json_array_get_string_element(host_ids, h), NULL);
        g_autoptr(JsonArray) doms = vh != NULL ? dv_virt_domain_list_by_prefix(vh, prefix, NULL, NULL) : NULL;
        for (guint i = 0; doms != NULL && i < json_array_get_length(doms); i++) {
            JsonObject *d = json_array_get_object_element(doms, i);
            g_hash_table_insert(states, g_strdup(dv_json_get_string(d, "uuid", "")),
                                GINT_TO_POINTER(dv_json_get_bool(d, "active", FALSE) ? 2 : 1));
        }
    }
    return states;
}

/* Machine @m's power state: live when its host answered, else what the
 * inventory (its VM row) says. */
static const char *
dv_catalog_known_state(DvEngine *engine, GHashTable *live, JsonObject *m)
{
    gint st = GPOINTER_TO_INT(g_hash_table_lookup(live, dv_json_get_string(m, "domain_uuid", "")));
    g_autoptr(JsonObject) vm = NULL;

    if (st != 0)
        return st == 2 ? "running" : "shutoff";
    vm = dv_store_get(dv_core(engine)->store, &dv_table_vms, dv_json_get_string(m, "id", ""), NULL);
    if (vm == NULL)
        return "shutoff";
    return g_strcmp0(dv_json_get_string(vm, "state", "shutoff"), "shutoff") == 0 ? "shutoff" : "running";
}

static gint
dv_catalog_by_index_desc(gconstpointer a, gconstpointer b)
{
    JsonObject *x = *(JsonObject *const *)a, *y = *(JsonObject *const *)b;
    gint64 i = dv_json_get_int(x, "name_index", 0), j = dv_json_get_int(y, "name_index", 0);
    return i < j ? 1 : i > j ? -1 : 0;
}

JsonObject *
dv_engine_catalog_remove_machines(DvEngine *engine, const char *ref, JsonObject *body,
                                  const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) catalog = NULL;
    g_autoptr(JsonObject) params = json_object_new();
    gboolean force = dv_json_get_bool(body, "force", FALSE);
    gboolean by_count = json_object_has_member(body, "count");
    g_autoptr(GHashTable) live = NULL;

    if (!dv_json_check_fields(body, dv_catalog_remove_fields, NULL, error))
        return NULL;
    if (by_count == json_object_has_member(body, "machines")) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "machines",
                           "machines: give the machines by name, or a count");
        return NULL;
    }
    catalog = dv_catalog_resolve_idle(engine, ref, error);
    if (catalog == NULL)
        return NULL;
    live = dv_catalog_live_states(engine, catalog);
    if (!by_count) {
        JsonArray *ids;
        if (!dv_catalog_pick_machines(engine, catalog, body, params, error) ||
            !dv_catalog_machines_allowed(engine, actor, "vm.delete", catalog, params, TRUE, error))
            return NULL;
        ids = dv_json_get_array(params, "machine_ids");
        for (guint i = 0; !force && i < json_array_get_length(ids); i++) {
            g_autoptr(JsonObject) m =
                dv_store_get(dv_core(engine)->store, &dv_table_catalog_machines,
                             json_array_get_string_element(ids, i), error);
            g_autofree char *f = g_strdup_printf("machines[%u]", i);
            if (m == NULL)
                return NULL;
            if (g_strcmp0(dv_catalog_known_state(engine, live, m), "shutoff") != 0) {
                dv_set_field_error(error, DV_ERROR_CONFLICT, f, "%s: %s is running; shut it down or use force", f,
                                   dv_json_get_string(m, "name", ""));
                return NULL;
            }
        }
    } else {
        gint64 count = dv_json_get_int(body, "count", 0);
        g_autoptr(JsonArray) rows =
            dv_core_list_all(engine, &dv_table_catalog_machines, "catalog_id",
                             dv_json_get_string(catalog, "id", ""), error);
        g_autoptr(GPtrArray) off = g_ptr_array_new();
        g_autoptr(GPtrArray) on = g_ptr_array_new();
        g_autoptr(JsonArray) ids = json_array_new();
        g_autoptr(JsonObject) mine = json_object_new();
        g_autoptr(GHashTable) allowed = g_hash_table_new(g_str_hash, g_str_equal);
        JsonArray *allowed_ids;
        if (rows == NULL)
            return NULL;
        if (!dv_validate_range("count", count, 1, MAX(json_array_get_length(rows), 1), error))
            return NULL;
        /* An actor may remove only the machines it may delete (a
         * self-service user: its own); the count is taken among those. */
        json_object_set_array_member(mine, "machine_ids", json_array_new());
        for (guint i = 0; i < json_array_get_length(rows); i++)
            json_array_add_string_element(
                dv_json_get_array(mine, "machine_ids"),
                dv_json_get_string(json_array_get_object_element(rows, i), "id", ""));
        if (!dv_catalog_machines_allowed(engine, actor, "vm.delete", catalog, mine, FALSE, error))
            return NULL;
        allowed_ids = dv_json_get_array(mine, "machine_ids");
        for (guint i = 0; i < json_array_get_length(allowed_ids); i++)
            g_hash_table_add(allowed, (gpointer)json_array_get_string_element(allowed_ids, i));
        for (guint i = 0; i < json_array_get_length(rows); i++) {
            JsonObject *m = json_array_get_object_element(rows, i);
            const char *st = dv_catalog_known_state(engine, live, m);
            if (!g_hash_table_contains(allowed, dv_json_get_string(m, "id", "")))
                continue;
            g_ptr_array_add(g_strcmp0(st, "shutoff") == 0 ? off : on, m);
        }
        /* Powered-off machines first, the highest numbers first. */
        g_ptr_array_sort(off, dv_catalog_by_index_desc);
        g_ptr_array_sort(on, dv_catalog_by_index_desc);
        if ((gint64)(off->len + on->len) < count) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "count",
                               "count: you may remove %u machines of %s", off->len + on->len,
                               dv_json_get_string(catalog, "name", ""));
            return NULL;
        }
        if ((gint64)off->len < count && !force) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "count",
                               "count: only %u of the %u machines of %s are powered off; force removes running "
                               "ones too",
                               off->len, json_array_get_length(rows), dv_json_get_string(catalog, "name", ""));
            return NULL;
        }
        for (guint i = 0; (gint64)i < count; i++) {
            JsonObject *m = i < off->len ? g_ptr_array_index(off, i) : g_ptr_array_index(on, i - off->len);
            json_array_add_string_element(ids, dv_json_get_string(m, "id", ""));
        }
        json_object_set_array_member(params, "machine_ids", g_steal_pointer(&ids));
    }
    json_object_set_boolean_member(params, "force", force);
    return dv_catalog_submit(engine, catalog, "catalog.remove-machines", params, NULL, actor,
                             error);
}

/* A worker of remove-machines: one machine, refused while it runs unless
 * forced. */
static gboolean
dv_catalog_remove_one(DvCatalogEach *each, JsonObject *m, gboolean *ret_skipped, GError **error)
{
    GCancellable *c = dv_job_get_cancellable(each->job);
    gboolean force = GPOINTER_TO_INT(each->data);
    const char *host_id = dv_json_get_string(m, "host_id", "");
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(JsonObject) prow = NULL;
    g_autoptr(GError) local = NULL;

    vh = dv_core_virt_host_by_id(each->engine, host_id, error);
    if (vh == NULL)
        return FALSE;
    prow = dv_catalog_on_host(each->engine, &dv_table_pools, host_id, "name",
                              dv_json_get_string(each->catalog, "pool_name", ""), &local);
    if (local != NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (!force) {
        g_autoptr(JsonObject) dom = dv_virt_domain_get(vh, dv_json_get_string(m, "domain_uuid", ""), c, &local);
        if (dom != NULL && g_strcmp0(dv_json_get_string(dom, "state", ""), "shutoff") != 0) {
            g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT, "is %s; shut it down or use force",
                        dv_json_get_string(dom, "state", ""));
            return FALSE;
        }
        if (dom == NULL && !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
    }
    return dv_catalog_machine_remove(each->engine, each->job, each->catalog, m, vh,
                                     prow != NULL ? dv_json_get_string(prow, "path", "/") : "/", error);
}

static gboolean
dv_catalog_remove_job(DvJob *job, gpointer user_data, GError **error)
{
    static const DvJobStep steps[] = { { "remove", 95 }, { "save", 5 } };
    DvEngine *engine = user_data;
    GCancellable *c = dv_job_get_cancellable(job);
    JsonObject *params = dv_job_get_params(job);
    JsonArray *ids = dv_json_get_array(params, "machine_ids");
    gboolean force = dv_json_get_bool(params, "force", FALSE);
    g_autoptr(JsonObject) catalog = NULL;
    g_autoptr(JsonObject) result = json_object_new();
    g_autoptr(JsonArray) rows = NULL;
    g_autoptr(GHashTable) wanted = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) refreshed = g_hash_table_new(g_str_hash, g_str_equal);
    DvCatalogEach each = { engine, job, NULL, dv_catalog_remove_one, GINT_TO_POINTER(force) };
    DvCatalogEachResult r;
    g_autofree char *first_error = NULL;
    guint removed, failed, n = ids != NULL ? json_array_get_length(ids) : 0;

    dv_job_set_steps(job, steps, G_N_ELEMENTS(steps));
    catalog =
        dv_store_get(dv_core(engine)->store, &dv_table_catalogs, dv_job_get_target_id(job), error);
    if (catalog == NULL || !dv_job_step(job, "remove", error))
        return FALSE;
    each.catalog = catalog;
    /* libvirt sees the console logs QEMU wrote only after a refresh: once
     * per host of the machines to remove, before the workers start. */
    rows = dv_core_list_all(engine, &dv_table_catalog_machines, "catalog_id",
                            dv_json_get_string(catalog, "id", ""), error);
    if (rows == NULL)
        return FALSE;
    for (guint i = 0; i < n; i++)
        g_hash_table_add(wanted, (gpointer)json_array_get_string_element(ids, i));
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *m = json_array_get_object_element(rows, i);
        const char *host_id = dv_json_get_string(m, "host_id", "");
        g_autoptr(DvVirtHost) vh = NULL;
        g_autoptr(GError) ignored = NULL;

        if (!g_hash_table_contains(wanted, dv_json_get_string(m, "id", "")) ||
            g_hash_table_contains(refreshed, host_id))
            continue;
        g_hash_table_add(refreshed, (gpointer)host_id);
        vh = dv_core_virt_host_by_id(engine, host_id, &ignored);
        if (vh != NULL)
            dv_virt_pool_refresh(vh, dv_json_get_string(catalog, "pool_name", ""), c, &ignored);
    }
    dv_catalog_each_machine(&each, ids, DV_CATALOG_EACH_PARALLEL, " ", &r);
    if (r.cancelled) {
        dv_catalog_each_result_clear(&r);
        g_set_error(error, DV_ERROR, DV_ERROR_CANCELLED, "cancelled; remove the machines again to finish");
        return FALSE;
    }
    removed = r.ok + r.gone;
    failed = r.failed;
    first_error = g_steal_pointer(&r.first_error);
    json_object_set_int_member(result, "parallel", r.parallel);
    json_object_set_int_member(result, "max_parallel_seen", r.max_running);
    if (!dv_job_step(job, "save", error) ||
        !dv_catalog_bases_recount(engine, dv_json_get_string(catalog, "id", ""), error))
        return FALSE;
    json_object_set_string_member(result, "id", dv_json_get_string(catalog, "id", ""));
    json_object_set_string_member(result, "name", dv_json_get_string(catalog, "name", ""));
    json_object_set_int_member(result, "machines_removed", removed);
    json_object_set_int_member(result, "machines_failed", failed);
    dv_job_set_result(job, result);
    if (failed > 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED, "%u of %u machines were not removed (first: %s)", failed,
                    n, first_error);
        return FALSE;
    }
    return TRUE;
}

/* --- power actions ------------------------------------------------------------------------ */

JsonObject *
dv_engine_catalog_power(DvEngine *engine, const char *ref, JsonObject *body, const DvActor *actor,
                        GError **error)
{
    g_autoptr(JsonObject) catalog = NULL;
    g_autoptr(JsonObject) params = json_object_new();
    g_autoptr(JsonObject) pick = json_object_new();
    const char *action = dv_json_get_string(body, "action", NULL);
    gint64 share = dv_json_get_int(body, "max_share", 10);
    DvFilter f;
    gint64 total;

    if (!dv_json_check_fields(body, dv_catalog_power_fields, NULL, error))
        return NULL;
    if (g_strcmp0(action, "start") != 0 && g_strcmp0(action, "shutdown") != 0 &&
        g_strcmp0(action, "restart") != 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "action",
                           "action: must be start, shutdown or restart");
        return NULL;
    }
    if (!dv_validate_range("max_share", share, 1, 100, error))
        return NULL;
    catalog = dv_catalog_resolve_idle(engine, ref, error);
    if (catalog == NULL)
        return NULL;
    if (json_object_has_member(body, "machines"))
        json_object_set_member(pick, "machines", json_node_copy(json_object_get_member(body, "machines")));
    else
        json_object_set_boolean_member(pick, "all", TRUE);
    /* Only the machines the actor may power (a self-service user: its own). */
    if (!dv_catalog_pick_machines(engine, catalog, pick, params, error) ||
        !dv_catalog_machines_allowed(engine, actor, "vm.power", catalog, params,
                                     json_object_has_member(body, "machines"), error))
        return NULL;
    f = (DvFilter){ "catalog_id", DV_FILTER_EQ, dv_json_get_string(catalog, "id", "") };
    total = dv_store_count(dv_core(engine)->store, &dv_table_catalog_machines, &f, 1, error);
    if (total < 0)
        return NULL;
    json_object_set_string_member(params, "action", action);
    json_object_set_int_member(params, "max_share", share);
    /* A share of the whole catalog at a time, at least one. */
    json_object_set_int_member(params, "parallel",
                               CLAMP((total * share + 99) / 100, 1, DV_CATALOG_POWER_MAX_PARALLEL));
    return dv_catalog_submit(engine, catalog, "catalog.power", params, NULL, actor, error);
}


static gboolean
dv_catalog_power_one(DvCatalogEach *each, JsonObject *m, gboolean *ret_skipped, GError **error)
{
    GCancellable *c = dv_job_get_cancellable(each->job);
    const char *action = each->data;
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(JsonObject) dom = NULL;
    const char *uuid = dv_json_get_string(m, "domain_uuid", "");
    gboolean running;

    *ret_skipped = FALSE;
    if (g_strcmp0(dv_json_get_string(m, "state", ""), "ready") != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT, "is %s, not ready", dv_json_get_string(m, "state", ""));
        return FALSE;
    }
    vh = dv_core_virt_host_by_id(each->engine, dv_json_get_string(m, "host_id", ""), error);
    if (vh == NULL)
        return FALSE;
    dom = dv_virt_domain_get(vh, uuid, c, error);
    if (dom == NULL)
        return FALSE;
    running = g_strcmp0(dv_json_get_string(dom, "state", ""), "shutoff") != 0;
    if (g_strcmp0(action, "start") == 0 && running) {
        *ret_skipped = TRUE;
        return TRUE;
    }
    if (g_strcmp0(action, "shutdown") == 0 && !running) {
        *ret_skipped = TRUE;
        return TRUE;
    }
    if (running && (g_strcmp0(action, "shutdown") == 0 || g_strcmp0(action, "restart") == 0)) {
        g_autoptr(GError) local = NULL;
        if ((!dv_virt_domain_shutdown(vh, uuid, c, &local) &&
             !g_error_matches(local, DV_ERROR, DV_ERROR_CONFLICT)) ||
            !dv_virt_domain_wait_shutoff(vh, uuid, DV_CATALOG_POWER_TIMEOUT_MS, c, &local)) {
            g_propagate_prefixed_error(error, g_steal_pointer(&local), "shutdown: ");
            return FALSE;
        }
    }
    if (g_strcmp0(action, "shutdown") == 0) {
        g_autoptr(JsonObject) vm = dv_store_get(dv_core(each->engine)->store, &dv_table_vms,
                                                dv_json_get_string(m, "id", ""), NULL);
        g_autoptr(JsonObject) now = dv_virt_domain_get(vh, uuid, c, error);
        return now != NULL && (vm == NULL || dv_core_vm_sync(each->engine, vm, now, error));
    }
    /* start, and the second half of restart: a pooled machine moves to
     * the current image here. */
    return dv_catalog_machine_start(each->engine, each->catalog, m, c, error);
}

static gboolean
dv_catalog_power_job(DvJob *job, gpointer user_data, GError **error)
{
    static const DvJobStep steps[] = { { "power", 100 } };
    DvEngine *engine = user_data;
    JsonObject *params = dv_job_get_params(job);
    g_autoptr(JsonObject) catalog = NULL;
    g_autoptr(JsonObject) result = json_object_new();
    DvCatalogEachResult r;
    DvCatalogEach each = { engine, job, NULL, dv_catalog_power_one, NULL };
    JsonArray *ids = dv_json_get_array(params, "machine_ids");
    const char *action = dv_json_get_string(params, "action", "start");
    guint n = ids != NULL ? json_array_get_length(ids) : 0;
    gboolean ok = TRUE;

    dv_job_set_steps(job, steps, G_N_ELEMENTS(steps));
    catalog =
        dv_store_get(dv_core(engine)->store, &dv_table_catalogs, dv_job_get_target_id(job), error);
    if (catalog == NULL || !dv_job_step(job, "power", error))
        return FALSE;
    each.catalog = catalog;
    each.data = (gpointer)action;
    dv_catalog_each_machine(&each, ids,
                            (guint)CLAMP(dv_json_get_int(params, "parallel", 1), 1, DV_CATALOG_POWER_MAX_PARALLEL),
                            " ", &r);

    json_object_set_string_member(result, "id", dv_json_get_string(catalog, "id", ""));
    json_object_set_string_member(result, "name", dv_json_get_string(catalog, "name", ""));
    json_object_set_string_member(result, "action", action);
    json_object_set_int_member(result, "machines", n);
    json_object_set_int_member(result, "done", r.ok);
    json_object_set_int_member(result, "skipped", r.skipped + r.gone);
    json_object_set_int_member(result, "failed", r.failed);
    json_object_set_int_member(result, "parallel", r.parallel);
    json_object_set_int_member(result, "max_parallel_seen", r.max_running);
    dv_job_set_result(job, result);
    if (r.cancelled) {
        g_set_error(error, DV_ERROR, DV_ERROR_CANCELLED, "cancelled after %u of %u machines", r.done, n);
        ok = FALSE;
    } else if (r.failed > 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED, "%s failed on %u of %u machines (first: %s)", action,
                    r.failed, n, r.first_error);
        ok = FALSE;
    }
    dv_catalog_each_result_clear(&r);
    return ok;
}

/* --- identity ------------------------------------------------------------------------------ */

JsonObject *
dv_engine_catalog_machine_identity(DvEngine *engine, const char *ref, GError **error)
{
    return dv_engine_catalog_machine_identity_for(engine, NULL, ref, error);
}

JsonObject *
dv_engine_catalog_machine_identity_for(DvEngine *engine, const DvActor *actor, const char *ref,
                                       GError **error)
{
    const DvAuthzContext *ctx = dv_core_actor_authz(actor);
    g_autoptr(JsonObject) m = NULL;
    g_autoptr(JsonObject) catalog = NULL;
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(DvSecret) iso = NULL;
    g_autoptr(JsonObject) content = NULL;
    g_autoptr(JsonObject) out = json_object_new();
    g_autoptr(GError) local = NULL;
    g_autofree char *vname = NULL;
    g_autoptr(JsonObject) host = NULL;

    if (ref == NULL || *ref == '\0' || strlen(ref) > 256) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "machine", "machine: give a machine name or id");
        return NULL;
    }
    m = dv_store_get(dv_core(engine)->store, &dv_table_catalog_machines, ref, &local);
    if (m == NULL) {
        g_autoptr(JsonArray) rows = NULL;
        if (!g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        rows = dv_core_list_all(engine, &dv_table_catalog_machines, "name", ref, error);
        if (rows == NULL)
            return NULL;
        if (json_array_get_length(rows) == 0) {
            g_autofree char *safe = dv_text_excerpt(ref, 64);
            dv_set_field_error(error, DV_ERROR_NOT_FOUND, "machine", "no catalog machine '%s'", safe);
            return NULL;
        }
        if (json_array_get_length(rows) > 1) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "machine",
                               "machine: %u catalog machines are named '%s'; give its id",
                               json_array_get_length(rows), ref);
            return NULL;
        }
        m = json_object_ref(json_array_get_object_element(rows, 0));
    }
    if (ctx != NULL) {
        /* Against its catalog and its host's group, as any object. */
        g_auto(DvCatalogAuthz) a = { 0 };
        if (!dv_catalog_authz_machine(engine, m, "catalog", &a, error))
            return NULL;
        switch (dv_authz_decide(ctx, "catalog.change", &a.o)) {
        case DV_AUTHZ_ALLOW:
            break;
        case DV_AUTHZ_FORBIDDEN:
            dv_set_field_error(error, DV_ERROR_PERMISSION_DENIED, "machine",
                               "permission denied: the identity of machine %s needs catalog.change",
                               dv_json_get_string(m, "name", ""));
            return NULL;
        case DV_AUTHZ_NOT_FOUND: {
            g_autofree char *safe = dv_text_excerpt(ref, 64);
            dv_set_field_error(error, DV_ERROR_NOT_FOUND, "machine", "no catalog machine '%s'",
                               safe);
            return NULL;
        }
        }
    }
    if (dv_json_get_string(m, "identity_path", NULL) == NULL) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "machine",
                           "machine %s has no identity disk yet (last step done: %s)",
                           dv_json_get_string(m, "name", ""), dv_json_get_string(m, "step", "none"));
        return NULL;
    }
    catalog = dv_store_get(dv_core(engine)->store, &dv_table_catalogs,
                           dv_json_get_string(m, "catalog_id", ""), error);
    if (catalog == NULL)
        return NULL;
    host = dv_store_get(dv_core(engine)->store, &dv_table_hosts,
                        dv_json_get_string(m, "host_id", ""), error);
    if (host == NULL)
        return NULL;
    vh = dv_core_virt_host(engine, host, error);
    if (vh == NULL)
        return NULL;
    /* By its recorded path: identity volumes may live in another pool than
     * the catalog's (small dedicated pools). */
    {
        g_autoptr(JsonObject) vol = dv_virt_volume_lookup_by_path(vh, dv_json_get_string(m, "identity_path", ""),
                                                                  NULL, error);
        if (vol == NULL) {
            g_prefix_error(error, "identity disk of %s: ", dv_json_get_string(m, "name", ""));
            return NULL;
        }
        vname = g_strdup(dv_json_get_string(vol, "name", ""));
        iso = dv_virt_volume_download(vh, dv_json_get_string(vol, "pool", ""), vname, DV_IDENTITY_ISO_MAX, NULL,
                                      error);
    }
    if (iso == NULL) {
        g_prefix_error(error, "identity disk of %s: ", dv_json_get_string(m, "name", ""));
        return NULL;
    }
    content = dv_identity_read_iso(dv_secret_get_data(iso), dv_secret_get_len(iso), error);
    if (content == NULL) {
        g_prefix_error(error, "identity disk of %s: ", dv_json_get_string(m, "name", ""));
        return NULL;
    }
    json_object_set_string_member(out, "machine", dv_json_get_string(m, "name", ""));
    json_object_set_string_member(out, "machine_id", dv_json_get_string(m, "id", ""));
    json_object_set_string_member(out, "catalog", dv_json_get_string(catalog, "name", ""));
    json_object_set_string_member(out, "host", dv_json_get_string(host, "name", ""));
    json_object_set_string_member(out, "volume", vname);
    json_object_set_int_member(out, "size", (gint64)dv_secret_get_len(iso));
    json_object_set_member(out, "volume_id", json_node_copy(json_object_get_member(content, "volume_id")));
    json_object_set_member(out, "files", json_node_copy(json_object_get_member(content, "files")));
    json_object_set_member(out, "meta_data", json_node_copy(json_object_get_member(content, "meta_data")));
    json_object_set_member(out, "network_config", json_node_copy(json_object_get_member(content, "network_config")));
    json_object_set_member(out, "user_data", json_node_copy(json_object_get_member(content, "user_data")));
    json_object_set_member(out, "user_data_summary",
                           json_node_copy(json_object_get_member(content, "user_data_summary")));
    return g_steal_pointer(&out);
}

/* --- periodic reconcile ---------------------------------------------------------------------- */

gboolean
dv_engine_catalog_reconcile_all(DvEngine *engine, guint *ret_checked, guint *ret_not_ok, GError **error)
{
    g_autoptr(JsonArray) catalogs = dv_store_list(dv_core(engine)->store, &dv_table_catalogs, NULL,
                                                  0, DV_CATALOG_MAX_MACHINES, NULL, NULL, error);
    guint checked = 0, not_ok = 0;

    if (catalogs == NULL)
        return FALSE;
    for (guint i = 0; i < json_array_get_length(catalogs); i++) {
        JsonObject *cat = json_array_get_object_element(catalogs, i);
        g_autoptr(GError) local = NULL;
        g_autoptr(JsonObject) report = dv_catalog_reconcile_report(engine, cat, NULL, &local);
        g_autoptr(JsonObject) last = json_object_new();
        g_autoptr(JsonObject) ch = json_object_new();
        g_autoptr(GError) uerr = NULL;

        json_object_set_int_member(last, "at", dv_store_now());
        if (report != NULL) {
            json_object_set_boolean_member(last, "ok", dv_json_get_bool(report, "ok", FALSE));
            json_object_set_int_member(last, "orphans",
                                       json_array_get_length(dv_json_get_array(report, "orphans_on_hosts")));
            json_object_set_int_member(last, "missing",
                                       json_array_get_length(dv_json_get_array(report, "missing_on_hosts")));
            json_object_set_int_member(last, "unreachable",
                                       json_array_get_length(dv_json_get_array(report, "unreachable_hosts")));
            json_object_set_int_member(last, "pool_problems",
                                       json_array_get_length(dv_json_get_array(report, "pool_problems")));
        } else {
            json_object_set_boolean_member(last, "ok", FALSE);
            json_object_set_string_member(last, "error", local->message);
        }
        if (!dv_json_get_bool(last, "ok", FALSE))
            not_ok++;
        checked++;
        json_object_set_object_member(ch, "last_reconcile", g_steal_pointer(&last));
        /* A catalog deleted meanwhile is fine. */
        if (!dv_store_update(dv_core(engine)->store, &dv_table_catalogs,
                             dv_json_get_string(cat, "id", ""), ch, &uerr) &&
            !g_error_matches(uerr, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&uerr));
            return FALSE;
        }
    }
    if (ret_checked != NULL)
        *ret_checked = checked;
    if (ret_not_ok != NULL)
        *ret_not_ok = not_ok;
    return TRUE;
}

/* A machine for the API: its provisioning state (state, step) and, beside
 * it, the power state of its VM row, which the host's events keep current
 * (docs/VIRT.md, "Events"); null before the machine has a domain. */
static JsonObject *
dv_catalog_machine_shape(DvEngine *engine, DvKind kind, JsonObject *record)
{
    JsonObject *out = json_object_new();
    JsonObjectIter it;
    const char *name;
    JsonNode *node;
    const char *vm_id = dv_json_get_string(record, "vm_id", NULL);
    g_autoptr(JsonObject) vm =
        vm_id != NULL ? dv_store_get(dv_core(engine)->store, &dv_table_vms, vm_id, NULL) : NULL;

    json_object_iter_init(&it, record);
    while (json_object_iter_next(&it, &name, &node))
        json_object_set_member(out, name, json_node_copy(node));
    if (vm != NULL && dv_json_get_string(vm, "state", NULL) != NULL)
        json_object_set_string_member(out, "power_state", dv_json_get_string(vm, "state", ""));
    else
        json_object_set_null_member(out, "power_state");
    return out;
}

void
dv_catalog_machines_register(DvEngine *engine)
{
    DvJobKind remove = { "catalog.remove-machines", dv_catalog_remove_job, engine, TRUE };
    /* Not resumed after a crash: a restart run again would restart the
     * machines it already did; start and shutdown are simply asked again. */
    DvJobKind power = { "catalog.power", dv_catalog_power_job, engine, FALSE };
    dv_job_manager_register_kind(dv_core(engine)->jobs, &remove);
    dv_job_manager_register_kind(dv_core(engine)->jobs, &power);
    dv_core_set_shaper(engine, DV_KIND_CATALOG_MACHINE, dv_catalog_machine_shape);
}
