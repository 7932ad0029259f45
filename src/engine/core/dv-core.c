#define G_LOG_DOMAIN "DvCore"

/* The kind registry, hooks, lookups, lists and job submission shared by
 * every feature (dv-core.h). */

#include "dv-core.h"

#include <string.h>

static const DvKindInfo dv_kind_infos[DV_KIND_LAST] = {
    [DV_KIND_HOST_GROUP] = { DV_KIND_HOST_GROUP, &dv_table_host_groups, "host group", "host-group",
                             TRUE },
    [DV_KIND_CLUSTER] = { DV_KIND_CLUSTER, &dv_table_clusters, "cluster", "cluster", TRUE },
    [DV_KIND_HOST] = { DV_KIND_HOST, &dv_table_hosts, "host", "host", TRUE },
    [DV_KIND_POOL] = { DV_KIND_POOL, &dv_table_pools, "storage pool", "storage-pool", TRUE },
    [DV_KIND_VOLUME] = { DV_KIND_VOLUME, &dv_table_volumes, "volume", "volume", FALSE },
    [DV_KIND_NETWORK] = { DV_KIND_NETWORK, &dv_table_networks, "network", "network", TRUE },
    [DV_KIND_LIBRARY_SHARE] = { DV_KIND_LIBRARY_SHARE, &dv_table_library_shares, "library share",
                                "library-share", TRUE },
    [DV_KIND_TEMPLATE] = { DV_KIND_TEMPLATE, &dv_table_templates, "template", "template", TRUE },
    [DV_KIND_VM] = { DV_KIND_VM, &dv_table_vms, "VM", "vm", TRUE },
    [DV_KIND_JOB] = { DV_KIND_JOB, &dv_table_jobs, "job", "job", FALSE },
    [DV_KIND_RUN_AS] = { DV_KIND_RUN_AS, &dv_table_run_as_accounts, "Run As account", "run-as",
                         TRUE },
    [DV_KIND_GUEST_OS_PROFILE] = { DV_KIND_GUEST_OS_PROFILE, &dv_table_guest_os_profiles,
                                   "guest OS profile", "guest-os-profile", TRUE },
    [DV_KIND_SETTING] = { DV_KIND_SETTING, &dv_table_app_settings, "setting", "setting", TRUE },
    [DV_KIND_CATALOG] = { DV_KIND_CATALOG, &dv_table_catalogs, "catalog", "catalog", TRUE },
    [DV_KIND_CATALOG_MACHINE] = { DV_KIND_CATALOG_MACHINE, &dv_table_catalog_machines,
                                  "catalog machine", "catalog-machine", TRUE },
};

const DvKindInfo *
dv_core_kind_info(DvKind kind)
{
    g_return_val_if_fail(kind < DV_KIND_LAST, NULL);
    return &dv_kind_infos[kind];
}

void
dv_core_init(DvCore *core)
{
    g_mutex_init(&core->hosts_lock);
    core->hosts =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)dv_virt_host_unref);
    core->vm_before_start = g_array_new(FALSE, FALSE, sizeof(DvCoreVmHook));
    core->ops = g_ptr_array_new();
    core->migrating = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

void
dv_core_clear(DvCore *core)
{
    g_clear_pointer(&core->hosts, g_hash_table_unref);
    g_clear_pointer(&core->vm_before_start, g_array_unref);
    g_clear_pointer(&core->ops, g_ptr_array_unref);
    g_clear_pointer(&core->migrating, g_hash_table_unref);
    g_mutex_clear(&core->hosts_lock);
}

void
dv_core_set_shaper(DvEngine *engine, DvKind kind, DvCoreShapeFunc func)
{
    g_return_if_fail(kind < DV_KIND_LAST);
    g_return_if_fail(dv_core(engine)->shapers[kind] == NULL);
    dv_core(engine)->shapers[kind] = func;
}

/* --- hooks ---------------------------------------------------------------- */

void
dv_core_add_vm_before_start(DvEngine *engine, DvCoreVmHook hook)
{
    g_array_append_val(dv_core(engine)->vm_before_start, hook);
}

gboolean
dv_core_run_vm_before_start(DvEngine *engine, JsonObject *vm, GCancellable *c, GError **error)
{
    GArray *hooks = dv_core(engine)->vm_before_start;

    for (guint i = 0; i < hooks->len; i++)
        if (!g_array_index(hooks, DvCoreVmHook, i)(engine, vm, c, error))
            return FALSE;
    return TRUE;
}

/* --- jobs ----------------------------------------------------------------- */

JsonObject *
dv_core_submit(DvEngine *engine, const char *kind, const char *target_type, const char *target_id,
               const char *target_name, const char *host_id, JsonObject *params,
               const DvActor *actor, GError **error)
{
    DvJobRequest req = {
        .kind = kind,
        .target_type = target_type,
        .target_id = target_id,
        .target_name = target_name,
        .host_id = host_id,
        .params = params,
        .created_by = dv_actor_get_name(actor),
    };
    return dv_job_manager_submit(dv_core(engine)->jobs, &req, error);
}

JsonObject *
dv_core_object_submit(DvEngine *engine, DvKind kind, const char *op, const char *id,
                      const char *name, JsonObject *record, JsonObject *changes, JsonObject *sealed,
                      const DvActor *actor, GError **error)
{
    const DvKindInfo *info = dv_core_kind_info(kind);
    g_autoptr(JsonObject) params = json_object_new();
    g_autofree char *job_kind = g_strdup_printf("%s.%s", info->type, op);

    json_object_set_string_member(params, "op", op);
    json_object_set_int_member(params, "kind", kind);
    json_object_set_string_member(params, "id", id);
    if (record != NULL)
        json_object_set_object_member(params, "record", json_object_ref(record));
    if (changes != NULL)
        json_object_set_object_member(params, "changes", json_object_ref(changes));
    /* Ciphertext only: each value opens only for its object and field. */
    if (sealed != NULL && json_object_get_size(sealed) > 0)
        json_object_set_object_member(params, "sealed", json_object_ref(sealed));
    return dv_core_submit(engine, job_kind, info->type, id, name, NULL, params, actor, error);
}

/* With DV_DEBUG_JOBS=1 in droverd's environment, POST /api/v1/debug/sleep
 * makes a job that sleeps in steps.  Tests use it to kill the server or
 * cancel mid-job deterministically; it touches nothing. */
gboolean
dv_core_debug_enabled(void)
{
    return g_strcmp0(g_getenv("DV_DEBUG_JOBS"), "1") == 0;
}

/* --- lookups ------------------------------------------------------------ */

JsonObject *
dv_core_resolve(DvEngine *engine, DvKind kind, const char *id_or_name, const char *field,
                GError **error)
{
    const DvKindInfo *info = dv_core_kind_info(kind);
    g_autoptr(GError) local = NULL;
    JsonObject *obj;

    if (id_or_name == NULL || id_or_name[0] == '\0') {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "%s: must name a %s",
                           field != NULL ? field : "id", info->singular);
        return NULL;
    }
    if (strlen(id_or_name) > 256 || !g_utf8_validate(id_or_name, -1, NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "%s: is not a valid id or name",
                           field != NULL ? field : "id");
        return NULL;
    }
    if (g_uuid_string_is_valid(id_or_name)) {
        obj = dv_store_get(dv_core(engine)->store, info->def, id_or_name, &local);
        if (obj != NULL)
            return obj;
        if (!g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND) || !info->named) {
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        g_clear_error(&local);
    }
    if (info->named) {
        DvFilter f = { "name", DV_FILTER_EQ, id_or_name };
        g_autoptr(JsonArray) rows =
            dv_store_list(dv_core(engine)->store, info->def, &f, 1, 2, NULL, NULL, error);
        if (rows == NULL)
            return NULL;
        if (json_array_get_length(rows) > 1) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, field,
                               "more than one %s is named '%s'; use its id", info->singular,
                               id_or_name);
            return NULL;
        }
        if (json_array_get_length(rows) == 1)
            return json_object_ref(json_array_get_object_element(rows, 0));
    }
    {
        g_autofree char *safe = dv_text_excerpt(id_or_name, 80);
        dv_set_field_error(error, DV_ERROR_NOT_FOUND, field, "%s '%s' not found", info->singular,
                           safe);
    }
    return NULL;
}

JsonArray *
dv_core_list_all(DvEngine *engine, const DvTableDef *def, const char *column, const char *value,
                 GError **error)
{
    g_autoptr(JsonArray) all = json_array_new();
    g_autofree char *cursor = NULL;
    DvFilter f = { column, DV_FILTER_EQ, value };

    do {
        g_autofree char *next = NULL;
        g_autoptr(JsonArray) page =
            dv_store_list(dv_core(engine)->store, def, column != NULL ? &f : NULL,
                          column != NULL ? 1 : 0, DV_PAGE_MAX, cursor, &next, error);
        if (page == NULL)
            return NULL;
        for (guint i = 0; i < json_array_get_length(page); i++)
            json_array_add_element(all, json_array_dup_element(page, i));
        g_free(cursor);
        cursor = g_steal_pointer(&next);
    } while (cursor != NULL);
    return g_steal_pointer(&all);
}

gboolean
dv_core_check_unique(DvEngine *engine, const DvTableDef *def, const char *column, const char *value,
                     const char *except_id, const char *field, const char *what, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonObject) other = dv_store_find(dv_core(engine)->store, def, column, value, &local);

    if (other == NULL) {
        if (g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
            return TRUE;
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (except_id != NULL && g_strcmp0(dv_json_get_string(other, "id", ""), except_id) == 0)
        return TRUE;
    dv_set_field_error(error, DV_ERROR_CONFLICT, field, "%s: a %s with %s '%s' already exists",
                       field, what, column, value);
    return FALSE;
}

/* Host groups below @group_id, itself included. */
GPtrArray *
dv_core_group_subtree(DvEngine *engine, const char *group_id, GError **error)
{
    g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(ids, g_strdup(group_id));
    for (guint i = 0; i < ids->len && i < 1000; i++) {
        g_autoptr(JsonArray) kids = dv_core_list_all(engine, &dv_table_host_groups, "parent_id",
                                                     g_ptr_array_index(ids, i), error);
        if (kids == NULL)
            return NULL;
        for (guint k = 0; k < json_array_get_length(kids); k++)
            g_ptr_array_add(ids, g_strdup(dv_json_get_string(json_array_get_object_element(kids, k),
                                                             "id", "")));
    }
    return g_steal_pointer(&ids);
}

/* Query parameters that name another object map onto its id column. */
static const struct {
    const char *param;
    const char *column;
    DvKind kind;
} dv_core_ref_params[] = {
    { "host", "host_id", DV_KIND_HOST },
    { "host_id", "host_id", DV_KIND_HOST },
    { "host_group", "host_group_id", DV_KIND_HOST_GROUP },
    { "host_group_id", "host_group_id", DV_KIND_HOST_GROUP },
    { "cluster", "cluster_id", DV_KIND_CLUSTER },
    { "cluster_id", "cluster_id", DV_KIND_CLUSTER },
    { "parent", "parent_id", DV_KIND_HOST_GROUP },
    { "parent_id", "parent_id", DV_KIND_HOST_GROUP },
    { "library_share", "library_share_id", DV_KIND_LIBRARY_SHARE },
    { "template", "template_id", DV_KIND_TEMPLATE },
    { "run_as", "run_as_id", DV_KIND_RUN_AS },
    { "catalog", "catalog_id", DV_KIND_CATALOG },
};

static gboolean
dv_core_table_has_filter(const DvTableDef *def, const char *column)
{
    for (const DvColumn *c = def->columns; c->name != NULL; c++)
        if (g_strcmp0(c->name, column) == 0)
            return c->filterable;
    return FALSE;
}

/* A filter value the column can never hold (docs/API.md, "Lists"): an
 * error naming the parameter and the values, not an empty page. */
static gboolean
dv_core_check_filter_value(const DvKindInfo *info, const char *column, const char *value,
                           GError **error)
{
    g_autofree char *allowed = NULL;
    g_autofree char *safe = NULL;

    for (const DvColumn *c = info->def->columns; c->name != NULL; c++) {
        if (g_strcmp0(c->name, column) != 0 || c->values == NULL)
            continue;
        if (g_strv_contains((const char *const *)c->values, value))
            return TRUE;
        allowed = g_strjoinv(", ", (char **)c->values);
        safe = dv_text_excerpt(value, 64);
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, column,
                           "%s: '%s' is not a %s %s; one of %s", column, safe, info->singular,
                           column, allowed);
        return FALSE;
    }
    return TRUE;
}

JsonArray *
dv_core_list_query_to_json(DvKind kind)
{
    const DvKindInfo *info = dv_core_kind_info(kind);
    g_autoptr(GArray) specs = g_array_new(TRUE, TRUE, sizeof(DvFieldSpec));
    DvFieldSpec limit = { "limit", DV_FIELD_INT, FALSE, "page size (default 100)", .min = 1,
                          .max = DV_PAGE_MAX };
    DvFieldSpec cursor = { "cursor", DV_FIELD_STRING, FALSE, "the previous page's next_cursor" };

    g_array_append_val(specs, limit);
    g_array_append_val(specs, cursor);
    if (dv_core_table_has_filter(info->def, "name")) {
        DvFieldSpec s = { "name_prefix", DV_FIELD_STRING, FALSE, "names starting with this" };
        g_array_append_val(specs, s);
    }
    for (gsize i = 0; i < G_N_ELEMENTS(dv_core_ref_params); i++) {
        if (dv_core_table_has_filter(info->def, dv_core_ref_params[i].column) &&
            strcmp(dv_core_ref_params[i].param, dv_core_ref_params[i].column) != 0) {
            DvFieldSpec s = { dv_core_ref_params[i].param, DV_FIELD_STRING, FALSE,
                              "an id or name; rows that belong to it" };
            g_array_append_val(specs, s);
        }
    }
    for (const DvColumn *c = info->def->columns; c->name != NULL; c++) {
        DvFieldSpec s = { c->name, DV_FIELD_STRING, FALSE, "rows with this value",
                          .values = c->values };
        if (!c->filterable || strcmp(c->name, "password_hash") == 0)
            continue;
        if (c->type == DV_COL_INT)
            s.type = DV_FIELD_INT;
        else if (c->type == DV_COL_BOOL)
            s.type = DV_FIELD_BOOL;
        g_array_append_val(specs, s);
    }
    return dv_json_field_specs_to_json((const DvFieldSpec *)(gpointer)specs->data);
}

/* One page of @kind, limited by @scope (NULL: every row) and redacted
 * when @redact. */
static JsonObject *
dv_core_list_scoped(DvEngine *engine, const DvActor *actor, DvKind kind, GHashTable *query,
                    const DvAuthzFilter *scope, gboolean redact, GError **error)
{
    const DvKindInfo *info = dv_core_kind_info(kind);
    g_autoptr(GArray) filters = g_array_new(FALSE, TRUE, sizeof(DvFilter));
    g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(JsonArray) rows = NULL;
    g_autoptr(JsonObject) out = json_object_new();
    g_autofree char *next = NULL;
    JsonArray *items;
    const char *cursor = NULL;
    gint64 limit = DV_PAGE_DEFAULT;
    GHashTableIter iter;
    gpointer k, v;

    if (query != NULL) {
        g_hash_table_iter_init(&iter, query);
        while (g_hash_table_iter_next(&iter, &k, &v)) {
            const char *param = k;
            const char *value = v;
            DvFilter f = { 0 };

            if (g_strcmp0(param, "limit") == 0) {
                if (!g_ascii_string_to_signed(value, 10, 1, DV_PAGE_MAX, &limit, NULL)) {
                    dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "limit",
                                       "limit: must be an integer between 1 and %d", DV_PAGE_MAX);
                    return NULL;
                }
                continue;
            }
            if (g_strcmp0(param, "cursor") == 0) {
                cursor = value;
                continue;
            }
            if (g_strcmp0(param, "name_prefix") == 0 &&
                dv_core_table_has_filter(info->def, "name")) {
                f.column = "name";
                f.op = DV_FILTER_PREFIX;
                f.value = value;
                g_array_append_val(filters, f);
                continue;
            }
            for (gsize i = 0; i < G_N_ELEMENTS(dv_core_ref_params); i++) {
                if (g_strcmp0(param, dv_core_ref_params[i].param) == 0 &&
                    dv_core_table_has_filter(info->def, dv_core_ref_params[i].column)) {
                    /* In scope: an invisible host named here is as unknown
                     * as one that does not exist.  An id's prefix too. */
                    g_autofree char *full = NULL;
                    g_autoptr(JsonObject) ref = NULL;
                    char *id;
                    if (!dv_core_resolve_prefix(engine, actor, dv_core_ref_params[i].kind, value,
                                                param, &full, error))
                        return NULL;
                    ref = dv_core_resolve_for(engine, actor, dv_core_ref_params[i].kind,
                                              full != NULL ? full : value, param, error);
                    if (ref == NULL)
                        return NULL;
                    id = g_strdup(dv_json_get_string(ref, "id", ""));
                    g_ptr_array_add(keep, id);
                    f.column = dv_core_ref_params[i].column;
                    f.op = DV_FILTER_EQ;
                    f.value = id;
                    break;
                }
            }
            if (f.column == NULL) {
                if (!dv_core_table_has_filter(info->def, param) ||
                    g_strcmp0(param, "password_hash") == 0) {
                    g_autofree char *safe = dv_text_excerpt(param, 64);
                    dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, safe,
                                       "%s: is not a filter of %s lists", safe, info->singular);
                    return NULL;
                }
                if (!dv_core_check_filter_value(info, param, value, error))
                    return NULL;
                f.column = param;
                f.op = DV_FILTER_EQ;
                f.value = value;
            }
            g_array_append_val(filters, f);
        }
    }
    {
        guint n_params = 0;
        g_autofree DvSqlParam *params =
            scope != NULL ? dv_authz_filter_params(scope, &n_params) : NULL;
        rows = dv_store_list_where(dv_core(engine)->store, info->def, (DvFilter *)filters->data,
                                   filters->len, scope != NULL ? scope->where : NULL, params,
                                   n_params, (guint)limit, cursor, &next, error);
    }
    if (rows == NULL)
        return NULL;
    items = json_array_sized_new(json_array_get_length(rows));
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *shaped = dv_core_shape(engine, kind, json_array_get_object_element(rows, i));
        if (redact)
            dv_authz_redact(dv_core_authz_kind(kind), shaped);
        json_array_add_object_element(items, shaped);
    }
    json_object_set_array_member(out, "items", items);
    if (next != NULL)
        json_object_set_string_member(out, "next_cursor", next);
    else
        json_object_set_null_member(out, "next_cursor");
    return g_steal_pointer(&out);
}

JsonObject *
dv_core_list(DvEngine *engine, DvKind kind, GHashTable *query, GError **error)
{
    return dv_core_list_scoped(engine, NULL, kind, query, NULL, FALSE, error);
}

/* --- reads in the actor's scope ------------------------------------------- */

/* The object kinds of docs/ACCESS.md, per DvKind. */
static const char *const dv_core_authz_kinds[DV_KIND_LAST] = {
    [DV_KIND_HOST_GROUP] = "host_group",
    [DV_KIND_CLUSTER] = "cluster",
    [DV_KIND_HOST] = "host",
    [DV_KIND_POOL] = "pool",
    [DV_KIND_VOLUME] = "volume",
    [DV_KIND_NETWORK] = "network",
    [DV_KIND_LIBRARY_SHARE] = "library_share",
    [DV_KIND_TEMPLATE] = "template",
    [DV_KIND_VM] = "vm",
    [DV_KIND_JOB] = "job",
    [DV_KIND_RUN_AS] = "run_as",
    [DV_KIND_GUEST_OS_PROFILE] = "guest_os_profile",
    [DV_KIND_SETTING] = "setting",
    [DV_KIND_CATALOG] = "catalog",
    [DV_KIND_CATALOG_MACHINE] = "catalog_machine",
};

const char *
dv_core_authz_kind(DvKind kind)
{
    g_return_val_if_fail(kind < DV_KIND_LAST, NULL);
    return dv_core_authz_kinds[kind];
}

const DvAuthzContext *
dv_core_actor_authz(const DvActor *actor)
{
    return actor != NULL ? actor->authz : NULL;
}

/* The list filter of @ctx for @kind (owned). */
static DvAuthzFilter *
dv_core_scope_filter(DvEngine *engine, const DvAuthzContext *ctx, DvKind kind, GError **error)
{
    /* Catalog machines are listed through their catalog (the feature adds
     * the catalog_id filter); this filter is the machines' own. */
    return dv_authz_list_filter(dv_core(engine)->store, ctx, dv_core_authz_kind(kind), error);
}

JsonObject *
dv_core_list_for(DvEngine *engine, const DvActor *actor, DvKind kind, GHashTable *query,
                 GError **error)
{
    const DvAuthzContext *ctx = dv_core_actor_authz(actor);
    g_autoptr(DvAuthzFilter) scope = NULL;

    if (ctx == NULL)
        return dv_core_list(engine, kind, query, error);
    scope = dv_core_scope_filter(engine, ctx, kind, error);
    if (scope == NULL)
        return NULL;
    return dv_core_list_scoped(engine, actor, kind, query, scope,
                               dv_authz_context_redacts_storage(ctx), error);
}

JsonObject *
dv_core_resolve_for(DvEngine *engine, const DvActor *actor, DvKind kind, const char *id_or_name,
                    const char *field, GError **error)
{
    const DvAuthzContext *ctx = dv_core_actor_authz(actor);
    const DvKindInfo *info = dv_core_kind_info(kind);
    g_autoptr(JsonObject) rec = NULL;
    g_autoptr(DvAuthzFilter) scope = NULL;
    g_autoptr(JsonArray) rows = NULL;
    g_autofree DvSqlParam *params = NULL;
    guint n_params = 0;
    DvFilter f = { "id", DV_FILTER_EQ, NULL };

    rec = dv_core_resolve(engine, kind, id_or_name, field, error);
    if (rec == NULL || ctx == NULL)
        return g_steal_pointer(&rec);
    scope = dv_core_scope_filter(engine, ctx, kind, error);
    if (scope == NULL)
        return NULL;
    /* The same filter as the list, on this one row: what a list would not
     * show does not exist for this actor. */
    f.value = dv_json_get_string(rec, "id", "");
    params = dv_authz_filter_params(scope, &n_params);
    rows = dv_store_list_where(dv_core(engine)->store, info->def, &f, 1, scope->where, params,
                               n_params, 1, NULL, NULL, error);
    if (rows == NULL)
        return NULL;
    if (json_array_get_length(rows) == 0) {
        g_autofree char *safe = dv_text_excerpt(id_or_name, 80);
        dv_set_field_error(error, DV_ERROR_NOT_FOUND, field, "%s '%s' not found", info->singular,
                           safe);
        return NULL;
    }
    return g_steal_pointer(&rec);
}

/* Candidates listed in an ambiguous prefix's error. */
#define DV_CORE_PREFIX_CANDIDATES 10

static gboolean
dv_core_looks_like_id_prefix(const char *ref)
{
    gsize len = ref != NULL ? strlen(ref) : 0;

    if (len < DV_CORE_ID_PREFIX_MIN || len >= 36)
        return FALSE;
    for (gsize i = 0; i < len; i++)
        if (!g_ascii_isxdigit(ref[i]) && ref[i] != '-')
            return FALSE;
    return TRUE;
}

gboolean
dv_core_resolve_prefix(DvEngine *engine, const DvActor *actor, DvKind kind, const char *ref,
                       const char *field, char **ret_id, GError **error)
{
    const DvAuthzContext *ctx = dv_core_actor_authz(actor);
    const DvKindInfo *info = dv_core_kind_info(kind);
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonObject) exact = NULL;
    g_autoptr(DvAuthzFilter) scope = NULL;
    g_autoptr(JsonArray) rows = NULL;
    g_autofree DvSqlParam *params = NULL;
    g_autofree char *lower = NULL;
    guint n_params = 0;
    guint n;
    DvFilter f = { "id", DV_FILTER_PREFIX, NULL };

    *ret_id = NULL;
    if (!dv_core_looks_like_id_prefix(ref))
        return TRUE;
    exact = dv_core_resolve_for(engine, actor, kind, ref, field, &local);
    /* Found, or an error of its own (a name on two hosts): the caller's
     * lookup answers as before. */
    if (exact != NULL || !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
        return TRUE;
    lower = g_ascii_strdown(ref, -1);
    f.value = lower;
    if (ctx != NULL) {
        g_clear_error(&local);
        scope = dv_core_scope_filter(engine, ctx, kind, &local);
        /* A kind without a list filter has no scope to search in: its
         * references stay whole ids (deliberately not an error). */
        if (scope == NULL)
            return TRUE;
        params = dv_authz_filter_params(scope, &n_params);
    }
    rows = dv_store_list_where(dv_core(engine)->store, info->def, &f, 1,
                               scope != NULL ? scope->where : NULL, params, n_params,
                               DV_CORE_PREFIX_CANDIDATES + 1, NULL, NULL, error);
    if (rows == NULL)
        return FALSE;
    n = json_array_get_length(rows);
    if (n == 1) {
        *ret_id = g_strdup(dv_json_get_string(json_array_get_object_element(rows, 0), "id", NULL));
        return TRUE;
    }
    if (n > 1) {
        g_autoptr(GString) list = g_string_new(NULL);
        g_autofree char *safe = dv_text_excerpt(ref, 80);
        for (guint i = 0; i < MIN(n, DV_CORE_PREFIX_CANDIDATES); i++) {
            JsonObject *row = json_array_get_object_element(rows, i);
            const char *name = dv_json_get_string(row, "name", NULL);
            g_string_append_printf(list, "%s%s", i > 0 ? ", " : "",
                                   dv_json_get_string(row, "id", ""));
            if (name != NULL)
                g_string_append_printf(list, " (%s)", name);
        }
        if (n > DV_CORE_PREFIX_CANDIDATES)
            g_string_append(list, ", and more");
        dv_set_field_error(error, DV_ERROR_CONFLICT, field != NULL ? field : "id",
                           "%s: '%s' is the start of more than one %s id: %s; give more of the id",
                           field != NULL ? field : "id", safe, info->singular, list->str);
        return FALSE;
    }
    return TRUE;
}

JsonObject *
dv_core_get_for(DvEngine *engine, const DvActor *actor, DvKind kind, const char *id_or_name,
                GError **error)
{
    const DvAuthzContext *ctx = dv_core_actor_authz(actor);
    g_autoptr(JsonObject) rec = dv_core_resolve_for(engine, actor, kind, id_or_name, NULL, error);
    JsonObject *out;

    if (rec == NULL)
        return NULL;
    out = dv_core_shape(engine, kind, rec);
    if (ctx != NULL && dv_authz_context_redacts_storage(ctx))
        dv_authz_redact(dv_core_authz_kind(kind), out);
    return out;
}

gboolean
dv_core_quota_release(DvStore *store, JsonObject *charge, GError **error)
{
    g_autoptr(GError) local = NULL;
    DvAuthzAmount amount;

    if (charge == NULL)
        return TRUE;
    amount.vms = dv_json_get_int(charge, "vms", 0);
    amount.vcpus = dv_json_get_int(charge, "vcpus", 0);
    amount.memory_mib = dv_json_get_int(charge, "memory_mib", 0);
    amount.storage_gib = dv_json_get_int(charge, "storage_gib", 0);
    if (dv_authz_quota_release(store, dv_json_get_string(charge, "binding_id", ""),
                               dv_json_get_string(charge, "user_id", ""), &amount, &local))
        return TRUE;
    /* The binding is gone and its usage rows with it: nothing to give back. */
    if (g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
        return TRUE;
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
}

gboolean
dv_core_vm_quota_release(DvStore *store, JsonObject *vm, GError **error)
{
    return dv_core_quota_release(store, dv_json_get_object(dv_json_get_object(vm, "spec"), "quota"),
                                 error);
}

/* Shapes a record for the API: hides internals, adds derived members. */
JsonObject *
dv_core_shape(DvEngine *engine, DvKind kind, JsonObject *record)
{
    JsonObject *out = NULL;

    /* A job whose end the store refused: its true state is in memory. */
    if (kind == DV_KIND_JOB) {
        out = dv_job_manager_dup_unsaved(dv_core(engine)->jobs,
                                         dv_json_get_string(record, "id", NULL));
        if (out != NULL)
            return out;
    }
    if (dv_core(engine)->shapers[kind] != NULL)
        return dv_core(engine)->shapers[kind](engine, kind, record);
    return json_object_ref(record);
}
