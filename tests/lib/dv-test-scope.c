#define G_LOG_DOMAIN "DvTestScope"

/* Shared access-control fixtures of the engine-tier tests: see
 * dv-test-scope.h.  Rows are written with SQL so that a test controls
 * every column the access model reads (groups, hosts, owners). */

#include "dv-test-scope.h"

#include "dv-auth-users.h"
#include "dv-json.h"
#include "dv-test-catalog.h"

void
dv_test_scope_exec(DvStore *store, const char *sql, const DvSqlParam *p, guint n)
{
    g_autoptr(GError) error = NULL;
    g_assert_true(dv_db_exec(dv_store_get_db(store), sql, p, n, NULL, &error));
    g_assert_no_error(error);
}

void
dv_test_scope_add_group(DvStore *store, const char *id, const char *parent)
{
    dv_test_scope_exec(
        store, "INSERT INTO host_groups (id, name, parent_id, created_at) VALUES (?, ?, ?, 1)",
        DV_SQL_ARGS(DV_SQL_TEXT_P(id), DV_SQL_TEXT_P(id), DV_SQL_TEXT_P(parent)));
}

void
dv_test_scope_add_host(DvStore *store, const char *id, const char *group)
{
    g_autofree char *uri = g_strdup_printf("test:///%s", id);
    dv_test_scope_exec(
        store,
        "INSERT INTO hosts (id, name, uri, host_group_id, state, domain_type, max_connections, "
        "max_concurrent_operations, created_at) VALUES (?, ?, ?, ?, 'ok', 'kvm', 16, 16, 1)",
        DV_SQL_ARGS(DV_SQL_TEXT_P(id), DV_SQL_TEXT_P(id), DV_SQL_TEXT_P(uri),
                    DV_SQL_TEXT_P(group)));
}

void
dv_test_scope_add_vm(DvStore *store, const char *id, const char *name, const char *host,
                     const char *owner, const char *origin, const char *spec)
{
    dv_test_scope_exec(store,
                       "INSERT INTO vms (id, name, host_id, state, vcpus, memory_mib, generation, "
                       "secure_boot, origin, owner_id, spec, created_at, updated_at) VALUES (?, "
                       "?, ?, 'shutoff', 1, 512, 1, 0, ?, ?, ?, 1, 1)",
                       DV_SQL_ARGS(DV_SQL_TEXT_P(id), DV_SQL_TEXT_P(name), DV_SQL_TEXT_P(host),
                                   DV_SQL_TEXT_P(origin), DV_SQL_TEXT_P(owner),
                                   DV_SQL_TEXT_P(spec)));
}

char *
dv_test_scope_add_user(DvAuth *auth, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSecret) pw = dv_secret_new_from_string("correct horse battery");
    g_autoptr(JsonObject) u = dv_auth_users_add(auth, NULL, name, pw, &error);
    g_assert_no_error(error);
    return g_strdup(dv_json_get_string(u, "id", ""));
}

char *
dv_test_scope_bind(DvStore *store, const char *pkind, const char *principal, const char *role,
                   const char *scope_kind, const char *scope_id, const char *effect,
                   gint64 quota_vms)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) spec = json_object_new();
    g_autoptr(JsonObject) b = NULL;
    json_object_set_string_member(spec, "principal_kind", pkind);
    json_object_set_string_member(spec, "principal", principal);
    json_object_set_string_member(spec, "role", role);
    json_object_set_string_member(spec, "scope_kind", scope_kind);
    if (scope_id != NULL)
        json_object_set_string_member(spec, "scope_id", scope_id);
    json_object_set_string_member(spec, "effect", effect);
    if (quota_vms >= 0) {
        JsonObject *q = json_object_new();
        json_object_set_int_member(q, "vms", quota_vms);
        json_object_set_object_member(spec, "quota", q);
    }
    b = dv_authz_binding_add(store, NULL, spec, &error);
    g_assert_no_error(error);
    return g_strdup(dv_json_get_string(b, "id", ""));
}

DvAuthzContext *
dv_test_scope_context(DvStore *store, const char *user_id, const char *const *groups)
{
    g_autoptr(GError) error = NULL;
    DvAuthzContext *ctx = dv_authz_context_new(store, user_id, groups, &error);
    g_assert_no_error(error);
    g_assert_nonnull(ctx);
    return ctx;
}

DvActor *
dv_test_scope_actor(DvStore *store, const char *user_id, const char *name)
{
    DvAuthzContext *ctx = dv_test_scope_context(store, user_id, NULL);
    DvActor *actor = dv_actor_new(user_id, name, NULL);
    dv_actor_set_authz(actor, ctx, (GDestroyNotify)dv_authz_context_unref);
    return actor;
}

void
dv_test_add_both(const char *path, gsize fixture_size, GTestFixtureFunc setup,
                 GTestFixtureFunc func, GTestFixtureFunc teardown)
{
    g_autofree char *lite = g_strdup_printf("%s/sqlite", path);
    g_autofree char *pg = g_strdup_printf("%s/pg", path);
    g_test_add_vtable(lite, fixture_size, GINT_TO_POINTER(DV_TEST_BACKEND_SQLITE), setup, func,
                      teardown);
    g_test_add_vtable(pg, fixture_size, GINT_TO_POINTER(DV_TEST_BACKEND_PG), setup, func, teardown);
}
