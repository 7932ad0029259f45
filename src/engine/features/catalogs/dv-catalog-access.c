#define G_LOG_DOMAIN "DvCatalogAccess"

/* Catalogs and their machines under the access model (docs/ACCESS.md,
 * "Catalog machines"): the object a catalog or a machine is checked as,
 * the machines an actor may act on, the owner and the quota charge of
 * machines an actor adds. */

#include "dv-catalogs-private.h"

#include <string.h>

void
dv_catalog_authz_clear(DvCatalogAuthz *a)
{
    g_clear_pointer(&a->path, g_strfreev);
    memset(&a->o, 0, sizeof(a->o));
}

/* The host group the catalog targets (borrowed from @keep or @catalog),
 * or NULL: a catalog of a list of hosts is under no group. */
static gboolean
dv_catalog_target_group(DvEngine *engine, JsonObject *catalog, char **ret_group, GError **error)
{
    const char *kind = dv_json_get_string(catalog, "target_kind", "");
    const char *target = dv_json_get_string(catalog, "target_id", NULL);
    g_autoptr(JsonObject) cluster = NULL;
    g_autoptr(GError) local = NULL;

    *ret_group = NULL;
    if (target == NULL)
        return TRUE;
    if (g_strcmp0(kind, "host-group") == 0) {
        *ret_group = g_strdup(target);
        return TRUE;
    }
    if (g_strcmp0(kind, "cluster") != 0)
        return TRUE;
    cluster = dv_store_get(dv_core(engine)->store, &dv_table_clusters, target, &local);
    if (cluster == NULL) {
        /* A cluster deleted since: the catalog is under no group. */
        if (g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
            return TRUE;
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    *ret_group = g_strdup(dv_json_get_string(cluster, "host_group_id", NULL));
    return TRUE;
}

static gboolean
dv_catalog_authz_path(DvEngine *engine, const char *group, DvCatalogAuthz *ret, GError **error)
{
    g_autoptr(GError) local = NULL;
    if (group == NULL)
        return TRUE;
    ret->path = dv_authz_host_group_path(dv_core(engine)->store, group, &local);
    if (ret->path == NULL && !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    ret->o.host_group_path = (const char *const *)ret->path;
    return TRUE;
}

gboolean
dv_catalog_authz_catalog(DvEngine *engine, JsonObject *catalog, DvCatalogAuthz *ret, GError **error)
{
    g_autofree char *group = NULL;

    dv_catalog_authz_clear(ret);
    ret->o.kind = "catalog";
    ret->o.id = dv_json_get_string(catalog, "id", NULL);
    ret->o.catalog_id = ret->o.id;
    return dv_catalog_target_group(engine, catalog, &group, error) &&
           dv_catalog_authz_path(engine, group, ret, error);
}

gboolean
dv_catalog_authz_machine(DvEngine *engine, JsonObject *m, const char *kind, DvCatalogAuthz *ret,
                         GError **error)
{
    g_autoptr(JsonObject) host = NULL;
    g_autoptr(GError) local = NULL;

    dv_catalog_authz_clear(ret);
    ret->o.kind = kind;
    ret->o.id = dv_json_get_string(m, "id", NULL);
    ret->o.catalog_id = dv_json_get_string(m, "catalog_id", NULL);
    ret->o.owner_id = dv_json_get_string(m, "owner_id", NULL);
    host = dv_store_get(dv_core(engine)->store, &dv_table_hosts,
                        dv_json_get_string(m, "host_id", ""), &local);
    if (host == NULL) {
        if (g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
            return TRUE;
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    return dv_catalog_authz_path(engine, dv_json_get_string(host, "host_group_id", NULL), ret,
                                 error);
}

gboolean
dv_catalog_check_run_as(DvEngine *engine, const DvActor *actor, const char *profile_id,
                        GError **error)
{
    const DvAuthzContext *ctx = dv_core_actor_authz(actor);
    g_autoptr(JsonObject) profile = NULL;
    g_autoptr(GError) local = NULL;
    const char *run_as;

    if (ctx == NULL || profile_id == NULL)
        return TRUE;
    profile = dv_store_get(dv_core(engine)->store, &dv_table_guest_os_profiles, profile_id, &local);
    if (profile == NULL) {
        /* A profile deleted since is no profile (ON DELETE SET NULL). */
        if (g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
            return TRUE;
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    run_as = dv_json_get_string(profile, "domain_join_run_as_id", NULL);
    if (dv_authz_check_run_as_use(ctx, run_as, &local))
        return TRUE;
    dv_set_field_error(error, local->code, "guest_os_profile",
                       "guest_os_profile: profile '%s' joins its domain with a Run As account: %s",
                       dv_json_get_string(profile, "name", ""), local->message);
    return FALSE;
}

gboolean
dv_catalog_machines_allowed(DvEngine *engine, const DvActor *actor, const char *privilege,
                            JsonObject *catalog, JsonObject *params, gboolean named, GError **error)
{
    const DvAuthzContext *ctx = dv_core_actor_authz(actor);
    JsonArray *ids = dv_json_get_array(params, "machine_ids");
    g_autoptr(JsonArray) kept = json_array_new();

    if (ctx == NULL || ids == NULL)
        return TRUE;
    for (guint i = 0; i < json_array_get_length(ids); i++) {
        const char *id = json_array_get_string_element(ids, i);
        g_autoptr(JsonObject) m =
            dv_store_get(dv_core(engine)->store, &dv_table_catalog_machines, id, error);
        g_auto(DvCatalogAuthz) a = { 0 };
        g_autofree char *f = g_strdup_printf("machines[%u]", i);
        if (m == NULL || !dv_catalog_authz_machine(engine, m, "catalog_machine", &a, error))
            return FALSE;
        switch (dv_authz_decide(ctx, privilege, &a.o)) {
        case DV_AUTHZ_ALLOW:
            json_array_add_string_element(kept, id);
            break;
        case DV_AUTHZ_FORBIDDEN:
            if (named) {
                dv_set_field_error(error, DV_ERROR_PERMISSION_DENIED, f,
                                   "%s: permission denied: machine %s needs %s", f,
                                   dv_json_get_string(m, "name", ""), privilege);
                return FALSE;
            }
            break;
        case DV_AUTHZ_NOT_FOUND:
            /* As pick_machines says of a machine the catalog does not have. */
            if (named) {
                dv_set_field_error(
                    error, DV_ERROR_NOT_FOUND, f, "%s: catalog %s has no machine '%s'", f,
                    dv_json_get_string(catalog, "name", ""), dv_json_get_string(m, "name", ""));
                return FALSE;
            }
            break;
        }
    }
    if (json_array_get_length(kept) == 0 && json_array_get_length(ids) > 0) {
        dv_set_field_error(error, DV_ERROR_PERMISSION_DENIED, "machines",
                           "machines: permission denied: %s on none of the machines of catalog %s",
                           privilege, dv_json_get_string(catalog, "name", ""));
        return FALSE;
    }
    json_object_set_array_member(params, "machine_ids", g_steal_pointer(&kept));
    return TRUE;
}

/* --- quota ----------------------------------------------------------------------------- */

gboolean
dv_catalog_quota_plan(DvEngine *engine, const DvActor *actor, JsonObject *catalog,
                      gint64 base_capacity, JsonObject **ret_each, GError **error)
{
    const DvAuthzContext *ctx = dv_core_actor_authz(actor);
    JsonObject *spec = dv_json_get_object(catalog, "machine_spec");
    g_auto(DvCatalogAuthz) a = { 0 };
    const char *binding;
    guint64 bytes;
    JsonObject *q;

    *ret_each = NULL;
    if (ctx == NULL)
        return TRUE;
    if (!dv_catalog_authz_catalog(engine, catalog, &a, error))
        return FALSE;
    a.o.owner_id = dv_authz_context_get_user_id(ctx);
    if (!dv_authz_check(ctx, "catalog.provision", &a.o, error))
        return FALSE;
    binding = dv_authz_decide_binding(ctx, "catalog.provision", &a.o);
    if (binding == NULL) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_INTERNAL,
                            "catalog.provision: allowed by no binding");
        return FALSE;
    }
    /* Storage: the overlay grows to the base's size, plus the personal disk. */
    bytes = (guint64)MAX(base_capacity, 0) +
            (guint64)MAX(dv_json_get_int(catalog, "personal_disk_mib", 0), 0) * 1048576u;
    q = json_object_new();
    json_object_set_string_member(q, "binding_id", binding);
    json_object_set_string_member(q, "user_id", dv_authz_context_get_user_id(ctx));
    json_object_set_int_member(q, "vms", 1);
    json_object_set_int_member(q, "vcpus", MAX(dv_json_get_int(spec, "vcpus", 1), 1));
    json_object_set_int_member(q, "memory_mib", MAX(dv_json_get_int(spec, "memory_mib", 0), 0));
    json_object_set_int_member(q, "storage_gib", (gint64)((bytes + (1u << 30) - 1) >> 30));
    *ret_each = q;
    return TRUE;
}

static void
dv_catalog_quota_amount(JsonObject *q, gint64 times, DvAuthzAmount *ret)
{
    ret->vms = dv_json_get_int(q, "vms", 0) * times;
    ret->vcpus = dv_json_get_int(q, "vcpus", 0) * times;
    ret->memory_mib = dv_json_get_int(q, "memory_mib", 0) * times;
    ret->storage_gib = dv_json_get_int(q, "storage_gib", 0) * times;
}

gboolean
dv_catalog_quota_reserve(DvStore *store, JsonObject *each, gint64 count, GError **error)
{
    DvAuthzAmount amount;

    if (each == NULL)
        return TRUE;
    dv_catalog_quota_amount(each, count, &amount);
    return dv_authz_quota_reserve(store, dv_json_get_string(each, "binding_id", ""),
                                  dv_json_get_string(each, "user_id", ""), &amount, error);
}

gboolean
dv_catalog_machine_quota_release(DvStore *store, JsonObject *m, GError **error)
{
    return dv_core_quota_release(store, dv_json_get_object(m, "quota"), error);
}
