/* Access control (src/engine/auth/dv-authz.c, dv-auth-users.c): the
 * resolution rules, each built-in role on a small tree, redaction, list
 * filters, quotas under 50 parallel reservations, user rules, the grant
 * rule, tokens, the audit log and the mapping of old role strings.  On
 * SQLite always and on PostgreSQL (DV_TEST_PG_URI, tests/services/
 * with-services) wherever the store is involved. */
#define G_LOG_DOMAIN "DvTestAuthz"

#include "dv-auth-users.h"
#include "dv-auth.h"
#include "dv-authz.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-store.h"
#include "dv-test-pg.h"
#include "dv-test-scope.h"

#include <glib/gstdio.h>
#include <string.h>

/* The tree:   root ─ prod ─ web         hosts: h-prod, h-web, h-dev
 *                  └ dev                VMs: vm-prod, vm-web, vm-dev,
 *                                        vm-own (on h-prod, owned by "sam") */
static const char *const PATH_PROD[] = { "hg-root", "hg-prod", NULL };
static const char *const PATH_WEB[] = { "hg-root", "hg-prod", "hg-web", NULL };
static const char *const PATH_DEV[] = { "hg-root", "hg-dev", NULL };

typedef struct {
    DvDbBackend backend;
    char *dir;
    char *location;
    char *pg_dbname;
    DvStore *store;
    DvAuth *auth;
    DvSecret *admin_pw;
    char *admin_id;
} Fixture;

static void
exec_sql(Fixture *f, const char *sql, const DvSqlParam *p, guint n)
{
    dv_test_scope_exec(f->store, sql, p, n);
}

static void
add_vm(Fixture *f, const char *id, const char *host, const char *owner)
{
    dv_test_scope_add_vm(f->store, id, id, host, owner, "created", NULL);
}

static char *
add_user(Fixture *f, const char *name)
{
    return dv_test_scope_add_user(f->auth, name);
}

/* A binding made by the engine itself (no granter). */
static char *
bind(Fixture *f, const char *pkind, const char *principal, const char *role, const char *scope_kind,
     const char *scope_id, const char *effect)
{
    return dv_test_scope_bind(f->store, pkind, principal, role, scope_kind, scope_id, effect, -1);
}

static DvAuthzContext *
ctx_for(Fixture *f, const char *user_id, const char *const *groups)
{
    return dv_test_scope_context(f->store, user_id, groups);
}

static gint64
count_rows(Fixture *f, const char *table)
{
    g_autofree char *sql = g_strdup_printf("SELECT COUNT(*) FROM %s", table);
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSqlRows) rows = dv_db_query(dv_store_get_db(f->store), sql, DV_SQL_NO_ARGS, &error);
    g_assert_no_error(error);
    return dv_sql_rows_get_int(rows, 0, 0);
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *pw_path = NULL;
    g_autofree char *text = NULL;
    g_autoptr(JsonObject) admin = NULL;
    gboolean created = FALSE;

    f->backend = (DvDbBackend)GPOINTER_TO_INT(data);
    f->dir = g_dir_make_tmp("drover-authz-XXXXXX", &error);
    g_assert_no_error(error);
    if (f->backend == DV_DB_POSTGRESQL)
        f->location = dv_test_pg_new_database("dv_authz", &f->pg_dbname);
    else
        f->location = g_build_filename(f->dir, "drover.db", NULL);
    f->store = dv_store_open(f->location, DV_STORE_OPEN_MIGRATE, &error);
    g_assert_no_error(error);
    f->auth = dv_auth_new(f->store);
    dv_auth_ensure_admin(f->auth, f->dir, &created, &error);
    g_assert_no_error(error);
    g_assert_true(created);
    pw_path = g_build_filename(f->dir, "initial-admin-password", NULL);
    g_assert_true(g_file_get_contents(pw_path, &text, NULL, NULL));
    g_strstrip(text);
    f->admin_pw = dv_secret_new_from_string(text);
    admin = dv_store_find(f->store, &dv_table_users, "name", "admin", &error);
    g_assert_no_error(error);
    f->admin_id = g_strdup(dv_json_get_string(admin, "id", ""));

    dv_test_scope_add_group(f->store, "hg-root", NULL);
    dv_test_scope_add_group(f->store, "hg-prod", "hg-root");
    dv_test_scope_add_group(f->store, "hg-web", "hg-prod");
    dv_test_scope_add_group(f->store, "hg-dev", "hg-root");
    dv_test_scope_add_host(f->store, "h-prod", "hg-prod");
    dv_test_scope_add_host(f->store, "h-web", "hg-web");
    dv_test_scope_add_host(f->store, "h-dev", "hg-dev");
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    const char *const argv[] = { "rm", "-rf", "--", f->dir, NULL };
    g_clear_pointer(&f->auth, dv_auth_free);
    g_clear_pointer(&f->store, dv_store_free);
    g_clear_pointer(&f->admin_pw, dv_secret_free);
    if (f->pg_dbname != NULL)
        dv_test_pg_drop_database(f->pg_dbname);
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                               NULL, NULL, NULL));
    g_free(f->pg_dbname);
    g_free(f->location);
    g_free(f->admin_id);
    g_free(f->dir);
}

static DvAuthzObject
vm_obj(const char *id, const char *const *path, const char *owner)
{
    DvAuthzObject o = { .kind = "vm", .id = id, .host_group_path = path, .owner_id = owner };
    return o;
}

/* --- privileges and roles --------------------------------------------------- */

static void
test_privileges(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvAuthzContext) admin = ctx_for(f, f->admin_id, NULL);
    g_autoptr(JsonObject) role = NULL;
    const char *bad[] = { "vm.read", "vm.fly", NULL };
    const char *good[] = { "vm.read", "vm.power", NULL };
    DvAuthzObject o = vm_obj("vm-x", PATH_PROD, NULL);
    gint64 roles = count_rows(f, "roles");

    g_assert_true(dv_authz_privilege_check("privilege", "vm.power", NULL));
    g_assert_false(dv_authz_privilege_check("privilege", "vm.fly", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "privilege");
    g_clear_error(&error);
    g_assert_false(dv_authz_check(admin, "host.fly", &o, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);

    /* Custom roles: an unknown privilege changes nothing. */
    role = dv_authz_role_create(f->store, admin, "operators", bad, NULL, &error);
    g_assert_null(role);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "privileges");
    g_assert_nonnull(strstr(error->message, "vm.fly"));
    g_clear_error(&error);
    g_assert_cmpint(count_rows(f, "roles"), ==, roles);
    g_assert_null(dv_authz_role_create(f->store, admin, "administrator", good, NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_clear_error(&error);
    role = dv_authz_role_create(f->store, admin, "operators", good, "start and stop", &error);
    g_assert_no_error(error);
    g_assert_cmpint(json_array_get_length(dv_json_get_array(role, "privileges")), ==, 2);

    /* Still bound: refused; unbound: gone; built in: immutable. */
    {
        g_autofree char *u = add_user(f, "olga");
        g_autofree char *b = bind(f, "user", u, "operators", "host_group", "hg-prod", "allow");
        g_autoptr(DvAuthzContext) olga = ctx_for(f, u, NULL);
        DvAuthzObject web = vm_obj("vm-web", PATH_WEB, NULL);
        g_assert_cmpint(dv_authz_decide(olga, "vm.power", &web), ==, DV_AUTHZ_ALLOW);
        g_assert_cmpint(dv_authz_decide(olga, "vm.delete", &web), ==, DV_AUTHZ_FORBIDDEN);
        g_assert_false(dv_authz_role_delete(f->store, admin, "operators", &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
        g_assert_nonnull(strstr(error->message, "still bound"));
        g_clear_error(&error);
        g_assert_true(dv_authz_binding_delete(f->store, admin, b, &error));
        g_assert_no_error(error);
        g_assert_true(dv_authz_role_delete(f->store, admin, "operators", &error));
        g_assert_no_error(error);
    }
    g_assert_false(dv_authz_role_delete(f->store, admin, "read-only-administrator", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_clear_error(&error);
    g_assert_cmpint(count_rows(f, "roles"), ==, roles);
    {
        g_autoptr(JsonArray) all = dv_authz_role_list(f->store, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(all), ==, 5);
    }
}

/* --- resolution ------------------------------------------------------------- */

static void
test_resolution(Fixture *f, gconstpointer data)
{
    g_autofree char *u = add_user(f, "rita");
    const char *groups[] = { "cn=ops", NULL };
    DvAuthzObject prod = vm_obj("vm-prod", PATH_PROD, NULL);
    DvAuthzObject web = vm_obj("vm-web", PATH_WEB, NULL);
    DvAuthzObject dev = vm_obj("vm-dev", PATH_DEV, NULL);

    g_free(bind(f, "user", u, "read-only-administrator", "host_group", "hg-root", "allow"));
    g_free(bind(f, "group", "cn=ops", "read-only-administrator", "host_group", "hg-prod", "deny"));
    {
        /* Deeper beats inherited: the group's deny at prod beats the user's allow at root. */
        g_autoptr(DvAuthzContext) c = ctx_for(f, u, groups);
        g_autoptr(DvAuthzContext) alone = ctx_for(f, u, NULL);
        g_assert_cmpint(dv_authz_decide(c, "vm.read", &dev), ==, DV_AUTHZ_ALLOW);
        g_assert_cmpint(dv_authz_decide(c, "vm.read", &prod), ==, DV_AUTHZ_NOT_FOUND);
        g_assert_cmpint(dv_authz_decide(c, "vm.read", &web), ==, DV_AUTHZ_NOT_FOUND);
        g_assert_cmpint(dv_authz_decide(alone, "vm.read", &prod), ==, DV_AUTHZ_ALLOW);
    }
    g_free(bind(f, "user", u, "read-only-administrator", "host_group", "hg-prod", "allow"));
    {
        /* User beats group at the same depth. */
        g_autoptr(DvAuthzContext) c = ctx_for(f, u, groups);
        g_assert_cmpint(dv_authz_decide(c, "vm.read", &prod), ==, DV_AUTHZ_ALLOW);
        g_assert_cmpint(dv_authz_decide(c, "vm.read", &web), ==, DV_AUTHZ_ALLOW);
    }
    g_free(bind(f, "user", u, "read-only-administrator", "host_group", "hg-prod", "deny"));
    {
        /* Explicit deny wins at the same depth and principal kind... */
        g_autoptr(DvAuthzContext) c = ctx_for(f, u, groups);
        g_assert_cmpint(dv_authz_decide(c, "vm.read", &prod), ==, DV_AUTHZ_NOT_FOUND);
        g_assert_cmpint(dv_authz_decide(c, "host.read", &prod), ==, DV_AUTHZ_NOT_FOUND);
        g_assert_cmpint(dv_authz_decide(c, "vm.read", &dev), ==, DV_AUTHZ_ALLOW);
    }
    g_free(bind(f, "group", "cn=ops", "read-only-administrator", "host_group", "hg-web", "allow"));
    {
        /* ...and a deeper allow, even a group's, beats it below. */
        g_autoptr(DvAuthzContext) c = ctx_for(f, u, groups);
        g_assert_cmpint(dv_authz_decide(c, "vm.read", &web), ==, DV_AUTHZ_ALLOW);
        g_assert_cmpint(dv_authz_decide(c, "vm.read", &prod), ==, DV_AUTHZ_NOT_FOUND);
    }
}

/* --- built-in roles on the tree --------------------------------------------- */

typedef struct {
    const char *role;
    /* vm.read / vm.power / setting.change: in scope (vm-web, inherited from
     * prod), out of scope (vm-dev), own VM in scope, another's in scope */
    DvAuthzDecision read_in, power_in, read_out, power_own, power_other, settings;
    gboolean redacts;
} RoleCase;

static const RoleCase role_cases[] = {
    { "administrator", DV_AUTHZ_ALLOW, DV_AUTHZ_ALLOW, DV_AUTHZ_NOT_FOUND, DV_AUTHZ_ALLOW,
      DV_AUTHZ_ALLOW, DV_AUTHZ_NOT_FOUND, FALSE },
    { "delegated-administrator", DV_AUTHZ_ALLOW, DV_AUTHZ_ALLOW, DV_AUTHZ_NOT_FOUND, DV_AUTHZ_ALLOW,
      DV_AUTHZ_ALLOW, DV_AUTHZ_NOT_FOUND, TRUE },
    { "read-only-administrator", DV_AUTHZ_ALLOW, DV_AUTHZ_FORBIDDEN, DV_AUTHZ_NOT_FOUND,
      DV_AUTHZ_FORBIDDEN, DV_AUTHZ_FORBIDDEN, DV_AUTHZ_NOT_FOUND, FALSE },
    { "tenant-administrator", DV_AUTHZ_ALLOW, DV_AUTHZ_ALLOW, DV_AUTHZ_NOT_FOUND, DV_AUTHZ_ALLOW,
      DV_AUTHZ_ALLOW, DV_AUTHZ_NOT_FOUND, FALSE },
    { "self-service-user", DV_AUTHZ_NOT_FOUND, DV_AUTHZ_NOT_FOUND, DV_AUTHZ_NOT_FOUND,
      DV_AUTHZ_ALLOW, DV_AUTHZ_NOT_FOUND, DV_AUTHZ_NOT_FOUND, FALSE },
};

static void
test_builtin_roles(Fixture *f, gconstpointer data)
{
    for (guint i = 0; i < G_N_ELEMENTS(role_cases); i++) {
        const RoleCase *c = &role_cases[i];
        g_autofree char *name = g_strdup_printf("user%u", i);
        g_autofree char *u = add_user(f, name);
        g_autoptr(DvAuthzContext) ctx = NULL;
        DvAuthzObject in = vm_obj("vm-web", PATH_WEB, "someone-else");
        DvAuthzObject out = vm_obj("vm-dev", PATH_DEV, NULL);
        DvAuthzObject own = vm_obj("vm-own", PATH_WEB, u);
        DvAuthzObject setting = { .kind = "setting", .id = "s1" };
        DvAuthzObject create = vm_obj(NULL, PATH_WEB, u);

        g_test_message("role %s", c->role);
        g_free(bind(f, "user", u, c->role, "host_group", "hg-prod", "allow"));
        ctx = ctx_for(f, u, NULL);
        g_assert_cmpint(dv_authz_decide(ctx, "vm.read", &in), ==, c->read_in);
        g_assert_cmpint(dv_authz_decide(ctx, "vm.power", &in), ==, c->power_in);
        g_assert_cmpint(dv_authz_decide(ctx, "vm.read", &out), ==, c->read_out);
        g_assert_cmpint(dv_authz_decide(ctx, "vm.power", &out), ==, DV_AUTHZ_NOT_FOUND);
        g_assert_cmpint(dv_authz_decide(ctx, "vm.power", &own), ==, c->power_own);
        g_assert_cmpint(dv_authz_decide(ctx, "vm.power", &in), ==, c->power_other);
        /* Settings are global: a host group binding never reaches them. */
        g_assert_cmpint(dv_authz_decide(ctx, "setting.change", &setting), ==, c->settings);
        g_assert_cmpint(dv_authz_context_redacts_storage(ctx), ==, c->redacts);
        /* Everyone but read-only may create a VM of its own in scope. */
        g_assert_cmpint(dv_authz_decide(ctx, "vm.create", &create), ==,
                        strcmp(c->role, "read-only-administrator") == 0 ? DV_AUTHZ_FORBIDDEN
                                                                        : DV_AUTHZ_ALLOW);
    }
    {
        /* Globally: the administrator has settings, the delegated one never. */
        g_autofree char *a = add_user(f, "globaladmin");
        g_autofree char *d = add_user(f, "globaldelegated");
        g_autoptr(DvAuthzContext) ca = NULL;
        g_autoptr(DvAuthzContext) cd = NULL;
        g_autoptr(GError) error = NULL;
        DvAuthzObject setting = { .kind = "setting", .id = "s1" };
        g_free(bind(f, "user", a, "administrator", "global", NULL, "allow"));
        g_free(bind(f, "user", d, "delegated-administrator", "global", NULL, "allow"));
        ca = ctx_for(f, a, NULL);
        cd = ctx_for(f, d, NULL);
        g_assert_true(dv_authz_check(ca, "setting.change", &setting, &error));
        g_assert_false(dv_authz_check(cd, "setting.change", &setting, &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
        g_clear_error(&error);
        g_assert_false(dv_authz_context_redacts_storage(ca));
        g_assert_true(dv_authz_context_redacts_storage(cd));
    }
    {
        /* 403 names the privilege. */
        g_autofree char *r = add_user(f, "reader");
        g_autoptr(DvAuthzContext) c = NULL;
        g_autoptr(GError) error = NULL;
        DvAuthzObject web = vm_obj("vm-web", PATH_WEB, NULL);
        g_free(bind(f, "user", r, "read-only-administrator", "host_group", "hg-prod", "allow"));
        c = ctx_for(f, r, NULL);
        g_assert_false(dv_authz_check(c, "vm.power", &web, &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED);
        g_assert_nonnull(strstr(error->message, "vm.power"));
    }
}

/* --- redaction -------------------------------------------------------------- */

static JsonObject *
parse_text(const char *text)
{
    g_autoptr(GError) error = NULL;
    JsonObject *o = dv_json_parse_object(text, strlen(text), DV_JSON_MAX_BODY, DV_JSON_MAX_DEPTH,
                                         &error);
    g_assert_no_error(error);
    return o;
}

static void
test_redact(void)
{
    g_autoptr(JsonParser) p = json_parser_new();
    g_autoptr(GError) error = NULL;
    JsonObject *vm, *catalog, *share, *host;

    g_assert_true(json_parser_load_from_data(
        p,
        "{\"vm\": {\"id\": \"v\", \"name\": \"n\", \"pool\": \"default\", \"disks\": [1],"
        " \"spec\": {\"vcpus\": 1, \"pool_name\": \"p\"}},"
        " \"catalog\": {\"id\": \"c\", \"pool_name\": \"p\", \"machine_spec\": {\"vcpus\": 2, "
        "\"pool\": \"x\"}},"
        " \"share\": {\"id\": \"s\", \"name\": \"lib\", \"path\": \"/srv/lib\"},"
        " \"host\": {\"id\": \"h\", \"name\": \"kvm1\", \"pools\": []}}",
        -1, &error));
    vm = json_object_get_object_member(json_node_get_object(json_parser_get_root(p)), "vm");
    catalog =
        json_object_get_object_member(json_node_get_object(json_parser_get_root(p)), "catalog");
    share = json_object_get_object_member(json_node_get_object(json_parser_get_root(p)), "share");
    host = json_object_get_object_member(json_node_get_object(json_parser_get_root(p)), "host");
    dv_authz_redact("vm", vm);
    dv_authz_redact("catalog", catalog);
    dv_authz_redact("library_share", share);
    dv_authz_redact("host", host);
    g_assert_false(json_object_has_member(vm, "pool"));
    g_assert_false(json_object_has_member(vm, "disks"));
    g_assert_false(json_object_has_member(dv_json_get_object(vm, "spec"), "pool_name"));
    g_assert_true(json_object_has_member(dv_json_get_object(vm, "spec"), "vcpus"));
    g_assert_cmpstr(dv_json_get_string(vm, "name", ""), ==, "n");
    g_assert_false(json_object_has_member(catalog, "pool_name"));
    g_assert_false(json_object_has_member(dv_json_get_object(catalog, "machine_spec"), "pool"));
    g_assert_false(json_object_has_member(share, "path"));
    g_assert_cmpstr(dv_json_get_string(share, "name", ""), ==, "lib");
    g_assert_false(json_object_has_member(host, "pools"));
    g_assert_true(g_strv_contains(dv_authz_storage_fields("job"), "disks"));
    g_assert_null(dv_authz_storage_fields("setting")[0]);
    /* A job: storage members at any depth of params and result go, the
     * record's own members and the rest of its params stay. */
    {
        g_autoptr(JsonObject) job = parse_text("{\"id\":\"j\",\"kind\":\"catalog.reconcile\",\"state\":\"succeeded\","
            "\"params\":{\"uuid\":\"u\",\"disks\":[{\"pool\":\"p\"}],"
            "\"spec\":{\"machine\":{\"pool_name\":\"p\",\"vcpus\":2}}},"
            "\"result\":{\"deleted\":[{\"path\":\"/p/x\"}],\"orphans_on_hosts\":[],"
            "\"items\":[{\"name\":\"m\",\"overlay_path\":\"/p/o\"}]}}");
        g_autoptr(JsonObject) del = parse_text("{\"result\":{\"deleted\":true}}");
        g_autoptr(JsonNode) n = NULL;
        g_autofree char *t = NULL;
        dv_authz_redact("job", job);
        dv_authz_redact("job", del);
        n = json_node_init_object(json_node_alloc(), job);
        t = json_to_string(n, FALSE);
        g_assert_cmpstr(t, ==,
                        "{\"id\":\"j\",\"kind\":\"catalog.reconcile\",\"state\":\"succeeded\","
                        "\"params\":{\"uuid\":\"u\",\"spec\":{\"machine\":{\"vcpus\":2}}},"
                        "\"result\":{\"items\":[{\"name\":\"m\"}]}}");
        g_assert_true(json_object_get_boolean_member(dv_json_get_object(del, "result"), "deleted"));
    }
}

/* --- list filters, in SQL on the backend ------------------------------------ */

static GPtrArray *
visible_vms(Fixture *f, DvAuthzContext *ctx)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvAuthzFilter) filter = dv_authz_list_filter(f->store, ctx, "vm", &error);
    g_autofree DvSqlParam *params = NULL;
    g_autofree char *sql = NULL;
    g_autoptr(DvSqlRows) rows = NULL;
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    guint n = 0;

    g_assert_no_error(error);
    params = dv_authz_filter_params(filter, &n);
    sql = g_strdup_printf("SELECT id FROM vms WHERE %s ORDER BY id", filter->where);
    rows = dv_db_query(dv_store_get_db(f->store), sql, params, n, &error);
    g_assert_no_error(error);
    for (guint r = 0; r < dv_sql_rows_get_n_rows(rows); r++)
        g_ptr_array_add(ids, g_strdup(dv_sql_rows_get_text(rows, r, 0)));
    return ids;
}

static char *
joined(GPtrArray *ids)
{
    g_ptr_array_add(ids, NULL);
    return g_strjoinv(",", (char **)ids->pdata);
}

static char *visible_ids(Fixture *f, DvAuthzContext *ctx, const char *kind, const char *table);

static void
test_list_filter(Fixture *f, gconstpointer data)
{
    g_autofree char *deleg = add_user(f, "dora");
    g_autofree char *sam = add_user(f, "sam");
    g_autofree char *nobody = add_user(f, "nobody");
    g_autoptr(GError) error = NULL;

    add_vm(f, "vm-prod", "h-prod", NULL);
    add_vm(f, "vm-web", "h-web", NULL);
    add_vm(f, "vm-dev", "h-dev", NULL);
    add_vm(f, "vm-own", "h-prod", sam);
    g_free(bind(f, "user", deleg, "delegated-administrator", "host_group", "hg-prod", "allow"));
    g_free(bind(f, "user", sam, "self-service-user", "host_group", "hg-prod", "allow"));
    {
        g_autoptr(DvAuthzContext) c = ctx_for(f, f->admin_id, NULL);
        g_autoptr(DvAuthzFilter) flt = dv_authz_list_filter(f->store, c, "vm", &error);
        g_autoptr(GPtrArray) ids = visible_vms(f, c);
        g_autofree char *s = joined(ids);
        g_assert_cmpstr(flt->where, ==, "1=1");
        g_assert_cmpstr(s, ==, "vm-dev,vm-own,vm-prod,vm-web");
    }
    {
        g_autoptr(DvAuthzContext) c = ctx_for(f, deleg, NULL);
        g_autoptr(GPtrArray) ids = visible_vms(f, c);
        g_autofree char *s = joined(ids);
        g_assert_cmpstr(s, ==, "vm-own,vm-prod,vm-web");
    }
    {
        g_autoptr(DvAuthzContext) c = ctx_for(f, sam, NULL);
        g_autoptr(GPtrArray) ids = visible_vms(f, c);
        g_autofree char *s = joined(ids);
        g_assert_cmpstr(s, ==, "vm-own");
    }
    {
        g_autoptr(DvAuthzContext) c = ctx_for(f, nobody, NULL);
        g_autoptr(DvAuthzFilter) flt = dv_authz_list_filter(f->store, c, "vm", &error);
        g_autoptr(GPtrArray) ids = visible_vms(f, c);
        g_assert_cmpstr(flt->where, ==, "1=0");
        g_assert_cmpuint(ids->len, ==, 0);
    }
    /* A deny below a global allow hides that subtree. */
    g_free(bind(f, "user", nobody, "read-only-administrator", "global", NULL, "allow"));
    g_free(bind(f, "user", nobody, "read-only-administrator", "host_group", "hg-web", "deny"));
    {
        g_autoptr(DvAuthzContext) c = ctx_for(f, nobody, NULL);
        g_autoptr(GPtrArray) ids = visible_vms(f, c);
        g_autofree char *s = joined(ids);
        g_assert_cmpstr(s, ==, "vm-dev,vm-own,vm-prod");
    }
    /* A host in no group, and its VM: the global allow covers them one by
     * one (dv_authz_check), so the list keeps them beside the deny. */
    dv_test_scope_add_host(f->store, "h-loose", NULL);
    add_vm(f, "vm-loose", "h-loose", NULL);
    {
        g_autoptr(DvAuthzContext) c = ctx_for(f, nobody, NULL);
        g_autoptr(DvAuthzContext) d = ctx_for(f, deleg, NULL);
        g_autoptr(GPtrArray) ids = visible_vms(f, c);
        g_autoptr(GPtrArray) dids = visible_vms(f, d);
        g_autofree char *s = joined(ids);
        g_autofree char *ds = joined(dids);
        g_autofree char *hosts = visible_ids(f, c, "host", "hosts");
        g_assert_cmpstr(s, ==, "vm-dev,vm-loose,vm-own,vm-prod");
        g_assert_cmpstr(hosts, ==, "h-dev,h-loose,h-prod");
        /* Not to a group's delegate. */
        g_assert_cmpstr(ds, ==, "vm-own,vm-prod,vm-web");
    }
    /* Hosts and an unknown kind. */
    {
        g_autoptr(DvAuthzContext) c = ctx_for(f, deleg, NULL);
        g_autoptr(DvAuthzFilter) flt = dv_authz_list_filter(f->store, c, "host", &error);
        g_autofree DvSqlParam *params = NULL;
        g_autofree char *sql = NULL;
        g_autoptr(DvSqlRows) rows = NULL;
        guint n = 0;
        g_assert_no_error(error);
        params = dv_authz_filter_params(flt, &n);
        sql = g_strdup_printf("SELECT COUNT(*) FROM hosts WHERE %s", flt->where);
        rows = dv_db_query(dv_store_get_db(f->store), sql, params, n, &error);
        g_assert_no_error(error);
        g_assert_cmpint(dv_sql_rows_get_int(rows, 0, 0), ==, 2);
        g_assert_null(dv_authz_list_filter(f->store, c, "spaceship", &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_assert_cmpstr(dv_error_get_field(error), ==, "kind");
    }
}

/* --- quotas: 50 parallel reservations against 10 ----------------------------- */

#define QUOTA_THREADS 50
#define QUOTA_STORES 5

typedef struct {
    DvStore *store;
    const char *binding;
    const char *user;
    gint *accepted;
    gint *refused;
    gint *other;
} QuotaJob;

static gboolean
quota_txn(DvStore *store, gpointer user_data, GError **error)
{
    QuotaJob *j = user_data;
    DvAuthzAmount one = { .vms = 1, .vcpus = 2, .memory_mib = 512 };
    return dv_authz_quota_reserve(store, j->binding, j->user, &one, error);
}

static gpointer
quota_thread(gpointer data)
{
    QuotaJob *j = data;
    g_autoptr(GError) error = NULL;

    if (dv_store_transaction(j->store, quota_txn, j, &error))
        g_atomic_int_inc(j->accepted);
    else if (g_error_matches(error, DV_ERROR, DV_ERROR_CONFLICT) &&
             g_strcmp0(dv_error_get_field(error), "quota.vms") == 0)
        g_atomic_int_inc(j->refused);
    else {
        g_test_message("unexpected: %s", error->message);
        g_atomic_int_inc(j->other);
    }
    return NULL;
}

static void
test_quota_parallel(Fixture *f, gconstpointer data)
{
    g_autofree char *u = add_user(f, "quinn");
    g_autoptr(JsonObject) spec = json_object_new();
    g_autoptr(JsonObject) quota = json_object_new();
    g_autoptr(JsonObject) b = NULL;
    g_autoptr(JsonObject) used = NULL;
    g_autoptr(GError) error = NULL;
    DvStore *stores[QUOTA_STORES];
    GThread *threads[QUOTA_THREADS];
    QuotaJob jobs[QUOTA_THREADS];
    gint accepted = 0, refused = 0, other = 0;

    json_object_set_string_member(spec, "principal", u);
    json_object_set_string_member(spec, "role", "self-service-user");
    json_object_set_string_member(spec, "scope_kind", "host_group");
    json_object_set_string_member(spec, "scope_id", "hg-prod");
    json_object_set_int_member(quota, "vms", 10);
    json_object_set_object_member(spec, "quota", json_object_ref(quota));
    b = dv_authz_binding_add(f->store, NULL, spec, &error);
    g_assert_no_error(error);

    /* Several connections, so PostgreSQL sees real concurrent transactions. */
    for (guint i = 0; i < QUOTA_STORES; i++) {
        stores[i] = dv_store_open(f->location, 0, &error);
        g_assert_no_error(error);
    }
    for (guint i = 0; i < QUOTA_THREADS; i++) {
        jobs[i] = (QuotaJob){ stores[i % QUOTA_STORES],
                              dv_json_get_string(b, "id", ""),
                              u,
                              &accepted,
                              &refused,
                              &other };
        threads[i] = g_thread_new("quota", quota_thread, &jobs[i]);
    }
    for (guint i = 0; i < QUOTA_THREADS; i++)
        g_thread_join(threads[i]);
    for (guint i = 0; i < QUOTA_STORES; i++)
        dv_store_free(stores[i]);
    g_assert_cmpint(other, ==, 0);
    g_assert_cmpint(accepted, ==, 10);
    g_assert_cmpint(refused, ==, 40);
    used = dv_authz_quota_usage(f->store, dv_json_get_string(b, "id", ""), NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpint(dv_json_get_int(used, "vms", -1), ==, 10);
    g_assert_cmpint(dv_json_get_int(used, "vcpus", -1), ==, 20);
    {
        /* Released, one fits again; the error names the quota and the numbers. */
        DvAuthzAmount one = { .vms = 1 };
        QuotaJob j = { f->store, dv_json_get_string(b, "id", ""), u, &accepted, &refused, &other };
        g_assert_false(dv_store_transaction(f->store, quota_txn, &j, &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
        g_assert_nonnull(strstr(error->message, "10 of 10"));
        g_clear_error(&error);
        g_assert_true(
            dv_authz_quota_release(f->store, dv_json_get_string(b, "id", ""), u, &one, &error));
        g_assert_no_error(error);
        g_assert_true(dv_store_transaction(f->store, quota_txn, &j, &error));
        g_assert_no_error(error);
    }
}

static void
test_quota_member(Fixture *f, gconstpointer data)
{
    g_autofree char *a = add_user(f, "amy");
    g_autofree char *bo = add_user(f, "bob");
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonParser) p = json_parser_new();
    g_autoptr(JsonObject) b = NULL;
    DvAuthzAmount two = { .vms = 2, .memory_mib = 1024 };
    const char *id;

    g_assert_true(json_parser_load_from_data(
        p,
        "{\"principal_kind\": \"group\", \"principal\": \"cn=tenants\", \"role\": "
        "\"self-service-user\","
        " \"scope_kind\": \"host_group\", \"scope_id\": \"hg-dev\","
        " \"quota\": {\"vms\": 5}, \"member_quota\": {\"vms\": 3, \"memory_mib\": 4096}}",
        -1, &error));
    b = dv_authz_binding_add(f->store, NULL, json_node_get_object(json_parser_get_root(p)), &error);
    g_assert_no_error(error);
    id = dv_json_get_string(b, "id", "");
    g_assert_true(dv_authz_quota_reserve(f->store, id, a, &two, &error));
    g_assert_false(dv_authz_quota_reserve(f->store, id, a, &two, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "member_quota.vms");
    g_clear_error(&error);
    g_assert_true(dv_authz_quota_reserve(f->store, id, bo, &two, &error));
    g_assert_false(dv_authz_quota_reserve(f->store, id, bo, &two, &error));
    g_assert_cmpstr(dv_error_get_field(error), ==, "quota.vms");
    g_clear_error(&error);
    {
        /* A refused reservation inside a transaction left nothing behind. */
        g_autoptr(JsonObject) used = dv_authz_quota_usage(f->store, id, bo, &error);
        g_assert_cmpint(dv_json_get_int(used, "vms", -1), ==, 2);
    }
    /* Bad quota input names the field. */
    g_assert_true(json_parser_load_from_data(
        p, "{\"principal\": \"amy\", \"role\": \"self-service-user\", \"quota\": {\"vms\": -1}}",
        -1, &error));
    g_assert_null(dv_authz_binding_add(f->store, NULL,
                                       json_node_get_object(json_parser_get_root(p)), &error));
    g_assert_cmpstr(dv_error_get_field(error), ==, "quota.vms");
}

/* --- users ------------------------------------------------------------------ */

static void
test_users(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvAuthzContext) admin = ctx_for(f, f->admin_id, NULL);
    g_autoptr(DvSecret) short_pw = dv_secret_new_from_string("short");
    g_autoptr(DvSecret) name_pw = dv_secret_new_from_string("Victoria");
    g_autoptr(DvSecret) pw = dv_secret_new_from_string("correct horse battery");
    g_autoptr(JsonObject) v = NULL;
    g_autofree char *token = NULL;
    g_autofree char *admin_token = NULL;
    gint64 users = count_rows(f, "users");

    g_assert_null(dv_auth_users_add(f->auth, admin, "victoria", short_pw, &error));
    g_assert_cmpstr(dv_error_get_field(error), ==, "password");
    g_clear_error(&error);
    g_assert_null(dv_auth_users_add(f->auth, admin, "victoria", name_pw, &error));
    g_assert_cmpstr(dv_error_get_field(error), ==, "password");
    g_assert_nonnull(strstr(error->message, "user name"));
    g_clear_error(&error);
    g_assert_cmpint(count_rows(f, "users"), ==, users);
    v = dv_auth_users_add(f->auth, admin, "victoria", pw, &error);
    g_assert_no_error(error);

    /* The last administrator stays. */
    g_assert_false(dv_auth_users_set_disabled(f->auth, admin, "admin", TRUE, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_nonnull(strstr(error->message, "last enabled administrator"));
    g_clear_error(&error);
    g_assert_false(dv_auth_users_delete(f->auth, admin, "admin", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_clear_error(&error);
    {
        g_autoptr(JsonArray) none = json_array_new();
        g_assert_false(dv_auth_users_set_bindings(f->auth, admin, "admin", none, &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
        g_clear_error(&error);
    }
    g_assert_cmpint(dv_authz_count_administrators(f->store, NULL), ==, 1);
    admin_token = dv_auth_login(f->auth, "admin", "192.0.2.1", f->admin_pw, NULL, &error);
    g_assert_no_error(error);

    /* A second administrator: now the first may be disabled, and its live
     * session ends at once (not after the recheck second). */
    {
        g_autoptr(JsonParser) p = json_parser_new();
        g_assert_true(json_parser_load_from_data(p, "[{\"role\": \"administrator\"}]", -1, &error));
        g_assert_true(dv_auth_users_set_bindings(
            f->auth, admin, "victoria", json_node_get_array(json_parser_get_root(p)), &error));
        g_assert_no_error(error);
    }
    token = dv_auth_login(f->auth, "victoria", "192.0.2.1", pw, NULL, &error);
    g_assert_no_error(error);
    {
        g_autoptr(JsonObject) who = dv_auth_check_token(f->auth, token, &error);
        g_autoptr(DvAuthzContext) c = dv_auth_check_token_context(f->auth, token, &error);
        g_assert_no_error(error);
        g_assert_true(dv_authz_context_holds(c, "setting.change"));
    }
    {
        /* The session's actor is resolved once and cached with the session;
         * a change of bindings drops it. */
        g_autoptr(DvAuthzContext) c1 = dv_auth_check_token_context(f->auth, token, &error);
        g_autoptr(DvAuthzContext) c2 = dv_auth_check_token_context(f->auth, token, &error);
        g_autoptr(DvAuthzContext) c3 = NULL;
        g_autoptr(JsonParser) p = json_parser_new();
        g_assert_no_error(error);
        g_assert_true(c1 == c2);
        g_assert_true(json_parser_load_from_data(
            p,
            "[{\"role\": \"administrator\"}, {\"role\": \"read-only-administrator\","
            " \"scope_kind\": \"host_group\", \"scope_id\": \"hg-dev\", \"effect\": \"deny\"}]",
            -1, &error));
        g_assert_true(dv_auth_users_set_bindings(
            f->auth, admin, "victoria", json_node_get_array(json_parser_get_root(p)), &error));
        g_assert_no_error(error);
        c3 = dv_auth_check_token_context(f->auth, token, &error);
        g_assert_no_error(error);
        g_assert_true(c3 != c1);
        {
            DvAuthzObject dev = vm_obj("vm-dev", PATH_DEV, NULL);
            g_assert_cmpint(dv_authz_decide(c1, "vm.read", &dev), ==, DV_AUTHZ_ALLOW);
            g_assert_cmpint(dv_authz_decide(c3, "vm.read", &dev), ==, DV_AUTHZ_NOT_FOUND);
        }
    }
    g_assert_true(dv_auth_users_set_disabled(f->auth, admin, "victoria", TRUE, &error));
    g_assert_no_error(error);
    {
        g_autoptr(JsonObject) who = dv_auth_check_token(f->auth, token, &error);
        g_assert_null(who);
        g_assert_error(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED);
        g_clear_error(&error);
        g_assert_null(dv_auth_check_token_context(f->auth, token, &error));
        g_clear_error(&error);
        g_assert_null(dv_auth_login(f->auth, "victoria", "192.0.2.1", pw, NULL, &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED);
        g_assert_nonnull(strstr(error->message, "disabled"));
        g_clear_error(&error);
    }
    /* Victoria disabled: admin is the last one again. */
    g_assert_false(dv_auth_users_set_disabled(f->auth, admin, "admin", TRUE, &error));
    g_clear_error(&error);
    g_assert_true(dv_auth_users_set_disabled(f->auth, admin, "victoria", FALSE, &error));
    g_free(g_steal_pointer(&token));
    token = dv_auth_login(f->auth, "victoria", "192.0.2.1", pw, NULL, &error);
    g_assert_no_error(error);
    g_assert_true(dv_auth_users_delete(f->auth, admin, "admin", &error));
    g_assert_no_error(error);
    {
        g_autoptr(JsonObject) who = dv_auth_check_token(f->auth, admin_token, &error);
        g_assert_null(who);
        g_clear_error(&error);
    }
    {
        g_autoptr(JsonArray) list = dv_auth_users_list(f->auth, NULL, 100, NULL, NULL, &error);
        g_autoptr(JsonObject) shown = dv_auth_users_show(f->auth, NULL, "victoria", &error);
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(list), ==, 1);
        g_assert_false(json_object_has_member(shown, "password_hash"));
        g_assert_cmpuint(json_array_get_length(dv_json_get_array(shown, "bindings")), ==, 2);
    }
    /* Not allowed to manage users without the privilege. */
    {
        g_autofree char *r = add_user(f, "reader");
        g_autoptr(DvAuthzContext) c = NULL;
        g_free(bind(f, "user", r, "read-only-administrator", "global", NULL, "allow"));
        c = ctx_for(f, r, NULL);
        g_assert_false(dv_auth_users_set_disabled(f->auth, c, "victoria", TRUE, &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED);
        g_assert_nonnull(strstr(error->message, "user.change"));
    }
}

/* --- the grant rule --------------------------------------------------------- */

static JsonObject *
spec_new(const char *principal, const char *role, const char *scope_kind, const char *scope_id)
{
    JsonObject *s = json_object_new();
    json_object_set_string_member(s, "principal", principal);
    json_object_set_string_member(s, "role", role);
    json_object_set_string_member(s, "scope_kind", scope_kind);
    if (scope_id != NULL)
        json_object_set_string_member(s, "scope_id", scope_id);
    return s;
}

static void
test_grant_subset(Fixture *f, gconstpointer data)
{
    g_autofree char *d = add_user(f, "dora");
    g_autofree char *s = add_user(f, "sam");
    g_autofree char *r = add_user(f, "reader");
    g_autoptr(DvAuthzContext) dora = NULL;
    g_autoptr(DvAuthzContext) reader = NULL;
    g_autoptr(GError) error = NULL;
    gint64 before;

    g_free(bind(f, "user", d, "delegated-administrator", "host_group", "hg-prod", "allow"));
    g_free(bind(f, "user", r, "read-only-administrator", "global", NULL, "allow"));
    dora = ctx_for(f, d, NULL);
    reader = ctx_for(f, r, NULL);
    before = count_rows(f, "bindings");
    {
        /* Within its own scope and rights: accepted. */
        g_autoptr(JsonObject) sp = spec_new(s, "self-service-user", "host_group", "hg-web");
        g_autoptr(JsonObject) b = dv_authz_binding_add(f->store, dora, sp, &error);
        g_assert_no_error(error);
        g_assert_nonnull(b);
    }
    {
        /* Outside its scope; itself more; administrator anywhere; settings. */
        const char *cases[][4] = {
            { "self-service-user", "host_group", "hg-dev", "role" },
            { "delegated-administrator", "host_group", "hg-root", "role" },
            { "administrator", "host_group", "hg-web", "role" },
            { "read-only-administrator", "global", NULL, "role" },
        };
        for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
            g_autoptr(JsonObject) sp =
                spec_new(i == 1 ? d : s, cases[i][0], cases[i][1], cases[i][2]);
            g_assert_null(dv_authz_binding_add(f->store, dora, sp, &error));
            g_assert_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED);
            g_assert_cmpstr(dv_error_get_field(error), ==, cases[i][3]);
            g_assert_nonnull(strstr(error->message, "subset"));
            g_clear_error(&error);
        }
    }
    {
        /* No role.manage at all. */
        g_autoptr(JsonObject) sp = spec_new(s, "read-only-administrator", "host_group", "hg-web");
        g_assert_null(dv_authz_binding_add(f->store, reader, sp, &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED);
        g_assert_nonnull(strstr(error->message, "role.manage"));
        g_clear_error(&error);
    }
    {
        /* Bad input, each naming its field. */
        g_autoptr(JsonObject) a = spec_new(s, "no-such-role", "host_group", "hg-web");
        g_autoptr(JsonObject) b = spec_new(s, "self-service-user", "host_group", "hg-nowhere");
        g_autoptr(JsonObject) c = spec_new(s, "self-service-user", "planet", "x");
        g_autoptr(JsonObject) e = spec_new("ghost", "self-service-user", "global", NULL);
        g_assert_null(dv_authz_binding_add(f->store, NULL, a, &error));
        g_assert_cmpstr(dv_error_get_field(error), ==, "role");
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_clear_error(&error);
        g_assert_null(dv_authz_binding_add(f->store, NULL, b, &error));
        g_assert_cmpstr(dv_error_get_field(error), ==, "scope_id");
        g_clear_error(&error);
        g_assert_null(dv_authz_binding_add(f->store, NULL, c, &error));
        g_assert_cmpstr(dv_error_get_field(error), ==, "scope_kind");
        g_clear_error(&error);
        g_assert_null(dv_authz_binding_add(f->store, NULL, e, &error));
        g_assert_cmpstr(dv_error_get_field(error), ==, "principal");
        g_clear_error(&error);
        json_object_set_string_member(a, "role", "self-service-user");
        json_object_set_string_member(a, "effect", "maybe");
        g_assert_null(dv_authz_binding_add(f->store, NULL, a, &error));
        g_assert_cmpstr(dv_error_get_field(error), ==, "effect");
        g_clear_error(&error);
    }
    {
        /* A tenant administrator makes self-service members in its scope;
         * a self-service user cannot touch its own binding or quota. */
        g_autofree char *t = add_user(f, "tess");
        g_autoptr(DvAuthzContext) tess = NULL;
        g_autoptr(DvAuthzContext) sam = ctx_for(f, s, NULL);
        g_autoptr(JsonObject) ok = spec_new(r, "self-service-user", "host_group", "hg-dev");
        g_autoptr(JsonObject) mine = spec_new(s, "self-service-user", "host_group", "hg-web");
        g_autoptr(JsonObject) quota = json_object_new();
        g_autoptr(JsonObject) b = NULL;
        g_free(bind(f, "user", t, "tenant-administrator", "host_group", "hg-dev", "allow"));
        tess = ctx_for(f, t, NULL);
        b = dv_authz_binding_add(f->store, tess, ok, &error);
        g_assert_no_error(error);
        g_assert_null(dv_authz_binding_add(f->store, tess, mine, &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED);
        g_clear_error(&error);
        json_object_set_int_member(quota, "vms", 1000);
        json_object_set_object_member(mine, "quota", g_steal_pointer(&quota));
        g_assert_null(dv_authz_binding_add(f->store, sam, mine, &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED);
        g_assert_nonnull(strstr(error->message, "role.manage"));
        g_clear_error(&error);
        before += 2; /* tess's own binding and the one she made */
    }
    g_assert_cmpint(count_rows(f, "bindings"), ==, before + 1);
    {
        /* set_bindings as a whole: one bad binding keeps the old ones. */
        g_autoptr(JsonParser) p = json_parser_new();
        g_assert_true(
            json_parser_load_from_data(p,
                                       "[{\"role\": \"self-service-user\", \"scope_kind\": "
                                       "\"host_group\", \"scope_id\": \"hg-web\"},"
                                       " {\"role\": \"administrator\"}]",
                                       -1, &error));
        g_assert_false(dv_auth_users_set_bindings(
            f->auth, dora, s, json_node_get_array(json_parser_get_root(p)), &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED);
        g_assert_nonnull(strstr(error->message, "bindings[1]"));
        g_clear_error(&error);
        g_assert_cmpint(count_rows(f, "bindings"), ==, before + 1);
    }
}

/* --- Run As accounts ------------------------------------------------------- */

static void
test_run_as_use(Fixture *f, gconstpointer data)
{
    g_autofree char *t = add_user(f, "tess");
    g_autoptr(DvAuthzContext) c = NULL;
    g_autoptr(GError) error = NULL;

    exec_sql(
        f,
        "INSERT INTO run_as_accounts (id, name, username, credential_kind, created_at, updated_at) "
        "VALUES ('ra-1', 'ra-1', 'root', 'password', 1, 1), ('ra-2', 'ra-2', 'root', 'password', "
        "1, 1)",
        DV_SQL_NO_ARGS);
    /* The tenant administrator may use Run As accounts, but only those in its scope. */
    g_free(bind(f, "user", t, "tenant-administrator", "run_as", "ra-1", "allow"));
    g_free(bind(f, "user", t, "read-only-administrator", "run_as", "ra-2", "allow"));
    c = ctx_for(f, t, NULL);
    g_assert_true(dv_authz_check_run_as_use(c, NULL, &error));
    g_assert_true(dv_authz_check_run_as_use(c, "ra-1", &error));
    g_assert_no_error(error);
    g_assert_false(dv_authz_check_run_as_use(c, "ra-2", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED);
    g_assert_nonnull(strstr(error->message, "run_as.use"));
    g_clear_error(&error);
    g_assert_false(dv_authz_check_run_as_use(c, "ra-3", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    {
        /* A binding to an account that does not exist: the field, nothing added. */
        g_autoptr(JsonObject) sp = spec_new(t, "self-service-user", "run_as", "ra-9");
        gint64 before = count_rows(f, "bindings");
        g_assert_null(dv_authz_binding_add(f->store, NULL, sp, &error));
        g_assert_cmpstr(dv_error_get_field(error), ==, "scope_id");
        g_assert_cmpint(count_rows(f, "bindings"), ==, before);
    }
}

/* --- library shares and templates under their host's group ----------------- */

static void
add_share(Fixture *f, const char *id, const char *host)
{
    g_autofree char *path = g_strdup_printf("/srv/library/%s", id);
    exec_sql(f,
             "INSERT INTO library_shares (id, name, path, host_id, is_default, created_at) "
             "VALUES (?, ?, ?, ?, 0, 1)",
             DV_SQL_ARGS(DV_SQL_TEXT_P(id), DV_SQL_TEXT_P(id), DV_SQL_TEXT_P(path),
                         DV_SQL_TEXT_P(host)));
}

static void
add_template(Fixture *f, const char *id, const char *share)
{
    exec_sql(f,
             "INSERT INTO templates (id, name, vcpus, memory_mib, generation, secure_boot, "
             "library_share_id, created_at) VALUES (?, ?, 1, 512, 1, 0, ?, 1)",
             DV_SQL_ARGS(DV_SQL_TEXT_P(id), DV_SQL_TEXT_P(id), DV_SQL_TEXT_P(share)));
}

/* The ids of @table's rows the list filter of @kind shows to @ctx, joined. */
static char *
visible_ids(Fixture *f, DvAuthzContext *ctx, const char *kind, const char *table)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvAuthzFilter) filter = dv_authz_list_filter(f->store, ctx, kind, &error);
    g_autofree DvSqlParam *params = NULL;
    g_autofree char *sql = NULL;
    g_autoptr(DvSqlRows) rows = NULL;
    g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
    guint n = 0;

    g_assert_no_error(error);
    params = dv_authz_filter_params(filter, &n);
    sql = g_strdup_printf("SELECT id FROM %s WHERE %s ORDER BY id", table, filter->where);
    rows = dv_db_query(dv_store_get_db(f->store), sql, params, n, &error);
    g_assert_no_error(error);
    for (guint r = 0; r < dv_sql_rows_get_n_rows(rows); r++)
        g_ptr_array_add(ids, g_strdup(dv_sql_rows_get_text(rows, r, 0)));
    return joined(ids);
}

/* The objects as the daemon describes them: a share under its host's
 * group, a template under its share's. */
static DvAuthzObject
share_obj(const char *kind, const char *id, const char *share, const char *const *path)
{
    DvAuthzObject o = {
        .kind = kind, .id = id, .library_share_id = share, .host_group_path = path
    };
    return o;
}

/* Shares:   ls-prod on h-prod, ls-web on h-web, ls-dev on h-dev, ls-root
 *           on no host (the library root);
 * templates: t-prod, t-web, t-dev, t-root in the share of that name. */
static void
test_library_scope(Fixture *f, gconstpointer data)
{
    g_autofree char *dora = add_user(f, "dora");
    g_autofree char *sam = add_user(f, "sam");
    g_autofree char *rita = add_user(f, "rita");
    g_autoptr(GError) error = NULL;
    DvAuthzObject web = share_obj("library_share", "ls-web", "ls-web", PATH_WEB);
    DvAuthzObject t_prod = share_obj("template", "t-prod", "ls-prod", PATH_PROD);
    DvAuthzObject t_dev = share_obj("template", "t-dev", "ls-dev", PATH_DEV);
    DvAuthzObject t_root = share_obj("template", "t-root", "ls-root", NULL);

    add_share(f, "ls-prod", "h-prod");
    add_share(f, "ls-web", "h-web");
    add_share(f, "ls-dev", "h-dev");
    add_share(f, "ls-root", NULL);
    add_template(f, "t-prod", "ls-prod");
    add_template(f, "t-web", "ls-web");
    add_template(f, "t-dev", "ls-dev");
    add_template(f, "t-root", "ls-root");

    /* An administrator of Prod sees the shares on its hosts, and may
     * change them: no library_share binding needed. */
    g_free(bind(f, "user", dora, "delegated-administrator", "host_group", "hg-prod", "allow"));
    {
        g_autoptr(DvAuthzContext) c = ctx_for(f, dora, NULL);
        g_autofree char *shares = visible_ids(f, c, "library_share", "library_shares");
        g_autofree char *tmpls = visible_ids(f, c, "template", "templates");
        g_assert_cmpstr(shares, ==, "ls-prod,ls-web");
        g_assert_cmpstr(tmpls, ==, "t-prod,t-web");
        g_assert_cmpint(dv_authz_decide(c, "library_share.delete", &web), ==, DV_AUTHZ_ALLOW);
        g_assert_cmpint(dv_authz_decide(c, "template.read", &t_dev), ==, DV_AUTHZ_NOT_FOUND);
    }

    /* A self-service user bound to Prod reads the templates of Prod's
     * shares (to make a VM from one), not the shares, not Dev's. */
    g_free(bind(f, "user", sam, "self-service-user", "host_group", "hg-prod", "allow"));
    {
        g_autoptr(DvAuthzContext) c = ctx_for(f, sam, NULL);
        g_autofree char *shares = visible_ids(f, c, "library_share", "library_shares");
        g_autofree char *tmpls = visible_ids(f, c, "template", "templates");
        g_assert_cmpstr(shares, ==, "");
        g_assert_cmpstr(tmpls, ==, "t-prod,t-web");
        g_assert_cmpint(dv_authz_decide(c, "template.read", &t_prod), ==, DV_AUTHZ_ALLOW);
        g_assert_cmpint(dv_authz_decide(c, "template.delete", &t_prod), ==, DV_AUTHZ_FORBIDDEN);
        g_assert_false(dv_authz_check(c, "template.read", &t_dev, &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
        g_clear_error(&error);
        g_assert_cmpint(dv_authz_decide(c, "template.read", &t_root), ==, DV_AUTHZ_NOT_FOUND);
    }

    /* The direct scope still works, beside the inherited one. */
    g_free(bind(f, "user", sam, "self-service-user", "library_share", "ls-root", "allow"));
    {
        g_autoptr(DvAuthzContext) c = ctx_for(f, sam, NULL);
        g_autofree char *tmpls = visible_ids(f, c, "template", "templates");
        g_assert_cmpstr(tmpls, ==, "t-prod,t-root,t-web");
        g_assert_cmpint(dv_authz_decide(c, "template.read", &t_root), ==, DV_AUTHZ_ALLOW);
    }

    /* A deny on the share itself is deeper than the group's allow: the
     * share and its templates are gone from lists and checks. */
    g_free(bind(f, "user", dora, "delegated-administrator", "library_share", "ls-web", "deny"));
    g_free(bind(f, "user", sam, "self-service-user", "library_share", "ls-web", "deny"));
    {
        g_autoptr(DvAuthzContext) d = ctx_for(f, dora, NULL);
        g_autoptr(DvAuthzContext) c = ctx_for(f, sam, NULL);
        g_autofree char *shares = visible_ids(f, d, "library_share", "library_shares");
        g_autofree char *dtmpls = visible_ids(f, d, "template", "templates");
        g_autofree char *tmpls = visible_ids(f, c, "template", "templates");
        DvAuthzObject t_web = share_obj("template", "t-web", "ls-web", PATH_WEB);
        g_assert_cmpstr(shares, ==, "ls-prod");
        g_assert_cmpstr(dtmpls, ==, "t-prod");
        g_assert_cmpstr(tmpls, ==, "t-prod,t-root");
        g_assert_cmpint(dv_authz_decide(d, "library_share.read", &web), ==, DV_AUTHZ_NOT_FOUND);
        g_assert_cmpint(dv_authz_decide(c, "template.read", &t_web), ==, DV_AUTHZ_NOT_FOUND);
    }

    /* A global reader with a deny on one share: everything else, the
     * library root's share included. */
    g_free(bind(f, "user", rita, "read-only-administrator", "global", NULL, "allow"));
    g_free(bind(f, "user", rita, "read-only-administrator", "library_share", "ls-dev", "deny"));
    {
        g_autoptr(DvAuthzContext) c = ctx_for(f, rita, NULL);
        g_autofree char *shares = visible_ids(f, c, "library_share", "library_shares");
        g_autofree char *tmpls = visible_ids(f, c, "template", "templates");
        g_assert_cmpstr(shares, ==, "ls-prod,ls-root,ls-web");
        g_assert_cmpstr(tmpls, ==, "t-prod,t-root,t-web");
    }
}

/* --- guest OS profiles: installation-wide, read from any scope -------------- */

static void
test_guest_os_profile(Fixture *f, gconstpointer data)
{
    g_autofree char *dora = add_user(f, "dora");
    g_autofree char *sam = add_user(f, "sam");
    g_autofree char *nobody = add_user(f, "nobody");
    g_autofree char *tess = add_user(f, "tess");
    g_autoptr(GError) error = NULL;
    DvAuthzObject gp = { .kind = "guest_os_profile", .id = "gp-1" };
    DvAuthzObject made = { .kind = "guest_os_profile" };

    exec_sql(f,
             "INSERT INTO guest_os_profiles (id, name, created_at, updated_at) "
             "VALUES ('gp-1', 'gp-1', 1, 1)",
             DV_SQL_NO_ARGS);
    g_free(bind(f, "user", dora, "delegated-administrator", "host_group", "hg-prod", "allow"));
    g_free(bind(f, "user", sam, "self-service-user", "host_group", "hg-web", "allow"));
    {
        g_autoptr(DvAuthzContext) a = ctx_for(f, f->admin_id, NULL);
        g_autoptr(DvAuthzContext) d = ctx_for(f, dora, NULL);
        g_autoptr(DvAuthzContext) s = ctx_for(f, sam, NULL);
        g_autoptr(DvAuthzContext) n = ctx_for(f, nobody, NULL);
        g_autofree char *as = visible_ids(f, a, "guest_os_profile", "guest_os_profiles");
        g_autofree char *ss = visible_ids(f, s, "guest_os_profile", "guest_os_profiles");
        g_autofree char *ns = visible_ids(f, n, "guest_os_profile", "guest_os_profiles");

        /* Read by whoever reads them somewhere; a scoped user reads them. */
        g_assert_cmpstr(as, ==, "gp-1");
        g_assert_cmpstr(ss, ==, "gp-1");
        g_assert_cmpstr(ns, ==, "");
        g_assert_cmpint(dv_authz_decide(s, "guest_os_profile.read", &gp), ==, DV_AUTHZ_ALLOW);
        g_assert_cmpint(dv_authz_decide(d, "guest_os_profile.read", &gp), ==, DV_AUTHZ_ALLOW);
        g_assert_cmpint(dv_authz_decide(n, "guest_os_profile.read", &gp), ==, DV_AUTHZ_NOT_FOUND);
        /* Made, changed and deleted under a global binding only: 403
         * naming the privilege below it, though the role holds it. */
        g_assert_cmpint(dv_authz_decide(a, "guest_os_profile.change", &gp), ==, DV_AUTHZ_ALLOW);
        g_assert_false(dv_authz_check(d, "guest_os_profile.change", &gp, &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED);
        g_assert_nonnull(strstr(error->message, "guest_os_profile.change"));
        g_clear_error(&error);
        g_assert_cmpint(dv_authz_decide(d, "guest_os_profile.delete", &gp), ==, DV_AUTHZ_FORBIDDEN);
        g_assert_cmpint(dv_authz_decide(d, "guest_os_profile.create", &made), ==,
                        DV_AUTHZ_FORBIDDEN);
        g_assert_cmpint(dv_authz_decide(s, "guest_os_profile.change", &gp), ==, DV_AUTHZ_FORBIDDEN);
    }

    /* Denies keep their rules: a deny where the only allow is (same depth,
     * the user's own) leaves nothing; an inherited deny loses to a deeper
     * allow. */
    g_free(bind(f, "user", tess, "self-service-user", "host_group", "hg-prod", "allow"));
    g_free(bind(f, "user", tess, "read-only-administrator", "host_group", "hg-prod", "deny"));
    {
        g_autoptr(DvAuthzContext) t = ctx_for(f, tess, NULL);
        g_autofree char *ts = visible_ids(f, t, "guest_os_profile", "guest_os_profiles");
        g_assert_cmpstr(ts, ==, "");
        g_assert_cmpint(dv_authz_decide(t, "guest_os_profile.read", &gp), ==, DV_AUTHZ_NOT_FOUND);
    }
    g_free(bind(f, "user", tess, "self-service-user", "host_group", "hg-web", "allow"));
    {
        g_autoptr(DvAuthzContext) t = ctx_for(f, tess, NULL);
        g_autofree char *ts = visible_ids(f, t, "guest_os_profile", "guest_os_profiles");
        g_assert_cmpstr(ts, ==, "gp-1");
        g_assert_cmpint(dv_authz_decide(t, "guest_os_profile.read", &gp), ==, DV_AUTHZ_ALLOW);
    }
}

/* --- cost ------------------------------------------------------------------- */

/* Figures for docs/DECISIONS.md: a context of 20 bindings, a decision, a
 * list filter over 200 host groups.  Bounds generous (a shared 2-core
 * machine); the figures go to the log. */
static void
test_cost(Fixture *f, gconstpointer data)
{
    g_autofree char *u = add_user(f, "carl");
    g_autoptr(DvAuthzContext) c = NULL;
    g_autoptr(GError) error = NULL;
    const char *path[] = { "hg-root", "hg-prod", "g-199", NULL };
    DvAuthzObject o = vm_obj("vm-x", path, NULL);
    gint64 t0, t_ctx, t_decide, t_filter;
    guint allowed = 0;

    for (guint i = 0; i < 200; i++) {
        g_autofree char *id = g_strdup_printf("g-%03u", i);
        dv_test_scope_add_group(f->store, id, i % 2 == 0 ? "hg-prod" : "hg-dev");
    }
    for (guint i = 0; i < 20; i++) {
        g_autofree char *id = g_strdup_printf("g-%03u", i * 10);
        g_free(bind(f, "user", u,
                    i % 3 == 0 ? "read-only-administrator" : "delegated-administrator",
                    "host_group", id, i % 7 == 6 ? "deny" : "allow"));
    }
    g_free(bind(f, "user", u, "read-only-administrator", "host_group", "hg-prod", "allow"));
    t0 = g_get_monotonic_time();
    for (guint i = 0; i < 100; i++) {
        g_autoptr(DvAuthzContext) tmp = ctx_for(f, u, NULL);
    }
    t_ctx = (g_get_monotonic_time() - t0) / 100;
    c = ctx_for(f, u, NULL);
    t0 = g_get_monotonic_time();
    for (guint i = 0; i < 100000; i++)
        allowed += dv_authz_decide(c, "vm.read", &o) == DV_AUTHZ_ALLOW;
    t_decide = (g_get_monotonic_time() - t0) / 100; /* µs per 1000 = ns per decision */
    g_assert_cmpuint(allowed, ==, 100000);
    t0 = g_get_monotonic_time();
    for (guint i = 0; i < 10; i++) {
        g_autoptr(DvAuthzFilter) flt = dv_authz_list_filter(f->store, c, "vm", &error);
        g_assert_no_error(error);
        /* prod, web and prod's 100 children, less the two denied */
        g_assert_cmpuint(flt->values->len, ==, 100);
    }
    t_filter = (g_get_monotonic_time() - t0) / 10;
    g_test_message("context of 21 bindings: %" G_GINT64_FORMAT " us; decision: %" G_GINT64_FORMAT
                   " ns; vm list filter over 204 host groups: %" G_GINT64_FORMAT " us",
                   t_ctx, t_decide, t_filter);
    g_assert_cmpint(t_decide, <, 100 * 1000); /* under 100 us a decision */
}

/* --- tokens ----------------------------------------------------------------- */

static void
test_token_subset(Fixture *f, gconstpointer data)
{
    g_autofree char *r = add_user(f, "reader");
    g_autofree char *bid = NULL;
    g_autoptr(DvAuthzContext) reader = NULL;
    g_autoptr(JsonObject) rec = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *token = NULL;
    const char *too_much[] = { "vm.read", "vm.power", NULL };
    const char *fine[] = { "vm.read", NULL };
    const char *unknown[] = { "vm.teleport", NULL };
    gint64 later = dv_store_now() + G_TIME_SPAN_DAY;
    DvAuthzObject web = vm_obj("vm-web", PATH_WEB, NULL);
    DvAuthzObject dev = vm_obj("vm-dev", PATH_DEV, NULL);

    bid = bind(f, "user", r, "read-only-administrator", "host_group", "hg-prod", "allow");
    reader = ctx_for(f, r, NULL);
    g_assert_null(dv_auth_token_create(f->auth, reader, "ci", too_much, later, NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED);
    g_assert_nonnull(strstr(error->message, "vm.power"));
    g_clear_error(&error);
    g_assert_null(dv_auth_token_create(f->auth, reader, "ci", unknown, later, NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
    g_assert_null(
        dv_auth_token_create(f->auth, reader, "ci", fine, dv_store_now() - 1, NULL, &error));
    g_assert_cmpstr(dv_error_get_field(error), ==, "expires_at");
    g_clear_error(&error);
    g_assert_cmpint(count_rows(f, "api_tokens"), ==, 0);

    token = dv_auth_token_create(f->auth, reader, "ci", fine, later, &rec, &error);
    g_assert_no_error(error);
    g_assert_false(json_object_has_member(rec, "token_hash"));
    {
        g_autoptr(DvAuthzContext) t = dv_auth_token_context(f->auth, token, &error);
        g_assert_no_error(error);
        g_assert_cmpint(dv_authz_decide(t, "vm.read", &web), ==, DV_AUTHZ_ALLOW);
        g_assert_cmpint(dv_authz_decide(t, "vm.read", &dev), ==, DV_AUTHZ_NOT_FOUND);
        /* host.read is the user's, not the token's. */
        g_assert_true(dv_authz_context_holds(reader, "host.read"));
        g_assert_false(dv_authz_context_holds(t, "host.read"));
    }
    /* The user loses the privilege: so does the token, at its next use. */
    g_assert_true(dv_authz_binding_delete(f->store, NULL, bid, &error));
    g_assert_null(dv_auth_token_context(f->auth, token, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED);
    g_clear_error(&error);
    g_free(bind(f, "user", r, "read-only-administrator", "host_group", "hg-prod", "allow"));
    {
        g_autoptr(DvAuthzContext) t = dv_auth_token_context(f->auth, token, &error);
        g_assert_no_error(error);
    }
    /* Revoked: refused. */
    g_assert_true(dv_auth_token_revoke(f->auth, reader, dv_json_get_string(rec, "id", ""), &error));
    g_assert_no_error(error);
    g_assert_null(dv_auth_token_context(f->auth, token, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED);
    g_assert_nonnull(strstr(error->message, "revoked"));
}

/* --- audit ------------------------------------------------------------------ */

static void
test_audit(Fixture *f, gconstpointer data)
{
    g_autoptr(DvAuthzContext) admin = ctx_for(f, f->admin_id, NULL);
    g_autoptr(GError) error = NULL;
    g_autofree char *cursor = NULL;
    guint total = 0, pages = 0;
    DvFilter refused = { "outcome", DV_FILTER_EQ, "forbidden" };

    for (guint i = 0; i < 25; i++) {
        g_autofree char *id = g_strdup_printf("vm-%02u", i);
        g_assert_true(dv_audit_record(f->store, i % 5 == 0 ? NULL : admin, "mallory", "192.0.2.7",
                                      "vm.power", "vm", id, i % 5 == 0 ? "forbidden" : "ok", NULL,
                                      "start", &error));
        g_assert_no_error(error);
    }
    g_assert_false(dv_audit_record(f->store, admin, NULL, NULL, "vm.power", "vm", "x", "maybe",
                                   NULL, NULL, &error));
    g_assert_cmpstr(dv_error_get_field(error), ==, "outcome");
    g_clear_error(&error);
    do {
        g_autofree char *next = NULL;
        g_autoptr(JsonArray) page = dv_audit_list(f->store, NULL, 0, 10, cursor, &next, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(page), ==, pages < 2 ? 10 : 5);
        total += json_array_get_length(page);
        pages++;
        g_free(cursor);
        cursor = g_steal_pointer(&next);
    } while (cursor != NULL);
    g_assert_cmpuint(total, ==, 25);
    g_assert_cmpuint(pages, ==, 3);
    {
        g_autoptr(JsonArray) page = dv_audit_list(f->store, &refused, 1, 100, NULL, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(page), ==, 5);
        g_assert_cmpstr(
            dv_json_get_string(json_array_get_object_element(page, 0), "actor_name", ""), ==,
            "mallory");
        g_assert_true(
            json_object_get_null_member(json_array_get_object_element(page, 0), "actor_id"));
    }
}

/* --- old role strings --------------------------------------------------------- */

static void
test_legacy_roles(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvStore) old = NULL;
    g_autofree char *location = NULL;
    g_autofree char *dbname = NULL;
    g_autofree char *dir = g_dir_make_tmp("drover-authz-old-XXXXXX", &error);
    const char *roles[] = { "administrator", "delegated-administrator", "read-only", "tenant" };
    const char *expect[] = { "role-administrator", "role-delegated-administrator",
                             "role-read-only-administrator", "role-tenant-administrator" };

    location = f->backend == DV_DB_POSTGRESQL ? dv_test_pg_new_database("dv_authz_old", &dbname)
                                              : g_build_filename(dir, "old.db", NULL);
    old = dv_store_open(location, 0, &error);
    g_assert_no_error(error);
    g_assert_true(dv_store_migrate_to(old, 6, &error));
    g_assert_no_error(error);
    for (guint i = 0; i < G_N_ELEMENTS(roles); i++) {
        g_autofree char *name = g_strdup_printf("u%u", i);
        g_assert_true(dv_db_exec(
            dv_store_get_db(old),
            "INSERT INTO users (id, name, password_hash, role, created_at) VALUES (?, ?, 'x', ?, "
            "1)",
            DV_SQL_ARGS(DV_SQL_TEXT_P(name), DV_SQL_TEXT_P(name), DV_SQL_TEXT_P(roles[i])), NULL,
            &error));
    }
    g_assert_true(dv_store_migrate_to(old, 7, &error));
    g_assert_no_error(error);
    for (guint i = 0; i < G_N_ELEMENTS(roles); i++) {
        g_autofree char *name = g_strdup_printf("u%u", i);
        g_autoptr(JsonArray) b = dv_authz_binding_list(old, "user", name, &error);
        g_autoptr(DvAuthzContext) c = dv_authz_context_new(old, name, NULL, &error);
        DvAuthzObject setting = { .kind = "setting" };
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(b), ==, 1);
        g_assert_cmpstr(dv_json_get_string(json_array_get_object_element(b, 0), "role_id", ""), ==,
                        expect[i]);
        g_assert_cmpstr(dv_json_get_string(json_array_get_object_element(b, 0), "scope_kind", ""),
                        ==, "global");
        g_assert_cmpstr(dv_authz_role_for_legacy(roles[i]), ==, expect[i]);
        /* Only the administrator keeps the settings. */
        g_assert_cmpint(dv_authz_decide(c, "setting.change", &setting) == DV_AUTHZ_ALLOW, ==,
                        i == 0);
    }
    g_assert_cmpint(dv_authz_count_administrators(old, &error), ==, 1);
    g_clear_pointer(&old, dv_store_free);
    if (dbname != NULL)
        dv_test_pg_drop_database(dbname);
    {
        g_autofree char *file = g_build_filename(dir, "old.db", NULL);
        g_autofree char *wal = g_strconcat(file, "-wal", NULL);
        g_autofree char *shm = g_strconcat(file, "-shm", NULL);
        g_remove(file);
        g_remove(wal);
        g_remove(shm);
        g_rmdir(dir);
    }
}

static void
test_pg_missing(gconstpointer data)
{
    if (GPOINTER_TO_INT(data))
        g_test_fail_printf(
            "DV_TEST_PG_URI is not set but services are required (DV_REQUIRE_SERVICES); "
            "run under tests/services/with-services");
    else
        g_test_skip("DV_TEST_PG_URI is not set; run under tests/services/with-services");
}

static void
add_suite(const char *backend_name, DvDbBackend backend)
{
    static const struct {
        const char *name;
        void (*func)(Fixture *, gconstpointer);
    } tests[] = {
        { "privileges", test_privileges },
        { "resolution", test_resolution },
        { "builtin-roles", test_builtin_roles },
        { "list-filter", test_list_filter },
        { "quota-parallel", test_quota_parallel },
        { "quota-member", test_quota_member },
        { "users", test_users },
        { "grant-subset", test_grant_subset },
        { "token-subset", test_token_subset },
        { "run-as-use", test_run_as_use },
        { "library-scope", test_library_scope },
        { "guest-os-profile", test_guest_os_profile },
        { "cost", test_cost },
        { "audit", test_audit },
        { "legacy-roles", test_legacy_roles },
    };
    for (guint i = 0; i < G_N_ELEMENTS(tests); i++) {
        g_autofree char *path =
            g_strdup_printf("/drover/auth/authz/%s/%s", backend_name, tests[i].name);
        g_test_add(path, Fixture, GINT_TO_POINTER(backend), fixture_setup, tests[i].func,
                   fixture_teardown);
    }
}

int
main(int argc, char **argv)
{
    const char *pg = g_getenv("DV_TEST_PG_URI");
    gboolean required = g_strcmp0(g_getenv("DV_REQUIRE_SERVICES"), "1") == 0 ||
                        g_strcmp0(g_getenv("CI"), "true") == 0;

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/drover/auth/authz/redact", test_redact);
    add_suite("sqlite", DV_DB_SQLITE);
    if (pg != NULL && pg[0] != '\0')
        add_suite("pg", DV_DB_POSTGRESQL);
    else
        g_test_add_data_func("/drover/auth/authz/pg/available", GINT_TO_POINTER(required),
                             test_pg_missing);
    return g_test_run();
}
