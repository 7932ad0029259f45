/* Directory (LDAP) logins (src/engine/auth/dv-auth-directory.c) against the
 * private slapd of tests/services/with-services, on SQLite and on the
 * private PostgreSQL.  Each test makes its own ou=dl-<random> subtree with
 * users and a group, and removes it afterwards.  DvAuth in process: the
 * context's privileges are checked directly. */
#define G_LOG_DOMAIN "DvTestDirlogin"

#include "dv-auth-directory.h"
#include "dv-auth-users.h"
#include "dv-auth.h"
#include "dv-authz.h"
#include "dv-engine-directory.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-store.h"
#include "dv-test-pg.h"

#include <glib/gstdio.h>
#include <ldap.h>
#include <signal.h>
#include <string.h>

#define ALICE_PW "alice-Pw-7731x"
#define BOB_PW "bob-Pw-9913yz"
#define ADDR "192.0.2.10"

typedef struct {
    gboolean pg;
    char *dir;
    char *location;
    char *pg_dbname;
    char *ou;     /* ou=dl-N,<base> */
    char *group;  /* cn=operators,ou=groups,<ou> */
    DvStore *store;
    DvAuth *auth;
    DvSecret *admin_pw;
} Fixture;

static const char *
env(const char *name)
{
    const char *value = g_getenv(name);
    if (value == NULL)
        g_error("%s is not set: run under tests/services/with-services", name);
    return value;
}

/* The directory's administrator (rootDN) over ldaps. */
static LDAP *
ldap_admin(void)
{
    LDAP *ld = NULL;
    g_autofree char *pw = NULL;
    const int v3 = LDAP_VERSION3;
    const int zero = 0;
    struct berval cred;

    g_assert_true(g_file_get_contents(env("DV_TEST_LDAP_ADMIN_PW_FILE"), &pw, NULL, NULL));
    g_assert_cmpint(ldap_initialize(&ld, env("DV_TEST_LDAPS_URI")), ==, LDAP_SUCCESS);
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
    ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, env("DV_TEST_LDAP_CA"));
    ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
    cred.bv_val = g_strchomp(pw);
    cred.bv_len = strlen(pw);
    g_assert_cmpint(ldap_sasl_bind_s(ld, env("DV_TEST_LDAP_ADMIN_DN"), LDAP_SASL_SIMPLE, &cred, NULL,
                                     NULL, NULL),
                    ==, LDAP_SUCCESS);
    return ld;
}

/* Adds @dn with attribute/value pairs (NULL-terminated). */
static void
ldap_add_entry(LDAP *ld, const char *dn, ...)
{
    g_autoptr(GPtrArray) mods = g_ptr_array_new();
    g_autoptr(GPtrArray) owned = g_ptr_array_new_with_free_func(g_free);
    const char *attr;
    va_list ap;

    va_start(ap, dn);
    while ((attr = va_arg(ap, const char *)) != NULL) {
        LDAPMod *mod = g_new0(LDAPMod, 1);
        char **values = g_new0(char *, 2);
        values[0] = g_strdup(va_arg(ap, const char *));
        mod->mod_op = LDAP_MOD_ADD;
        mod->mod_type = (char *)attr;
        mod->mod_values = values;
        g_ptr_array_add(mods, mod);
        g_ptr_array_add(owned, mod);
        g_ptr_array_add(owned, values);
        g_ptr_array_add(owned, values[0]);
    }
    va_end(ap);
    g_ptr_array_add(mods, NULL);
    g_assert_cmpint(ldap_add_ext_s(ld, dn, (LDAPMod **)mods->pdata, NULL, NULL), ==, LDAP_SUCCESS);
}

static void
ldap_remove_tree(const char *base)
{
    LDAP *ld = ldap_admin();
    LDAPMessage *res = NULL;
    g_autoptr(GPtrArray) dns = g_ptr_array_new_with_free_func(g_free);

    if (ldap_search_ext_s(ld, base, LDAP_SCOPE_SUBTREE, "(objectClass=*)", (char *[]){ "1.1", NULL }, 0,
                          NULL, NULL, NULL, 0, &res) == LDAP_SUCCESS) {
        for (LDAPMessage *e = ldap_first_entry(ld, res); e != NULL; e = ldap_next_entry(ld, e)) {
            char *dn = ldap_get_dn(ld, e);
            g_ptr_array_add(dns, g_strdup(dn));
            ldap_memfree(dn);
        }
    }
    ldap_msgfree(res);
    for (guint i = dns->len; i > 0; i--)
        g_assert_cmpint(ldap_delete_ext_s(ld, g_ptr_array_index(dns, i - 1), NULL, NULL), ==, LDAP_SUCCESS);
    ldap_unbind_ext_s(ld, NULL, NULL);
}

/* @groups: "search" or "memberof" (docs/DIRECTORY.md, "Directory logins"). */
static void
write_conf_groups(Fixture *f, const char *uri, const char *groups)
{
    g_autofree char *path = g_build_filename(f->dir, "directory.conf", NULL);
    g_autofree char *text = g_strdup_printf(
        "[directory]\nuri=%s\ncontainer=ou=drover-keys,%s\nbind_dn=%s\npassword_file=%s\nca_file=%"
        "s\n"
        "[login]\nenabled=true\nuser_base=ou=people,%s\n"
        "user_filter=(&(objectClass=inetOrgPerson)(uid=%%s))\ngroups=%s\n"
        "group_base=ou=groups,%s\ngroup_filter=(&(objectClass=groupOfNames)(member=%%s))\n"
        "network_timeout_s=1\nop_timeout_s=2\n",
        uri, env("DV_TEST_LDAP_BASE"), env("DV_TEST_LDAP_SERVICE_DN"),
        env("DV_TEST_LDAP_SERVICE_PW_FILE"), env("DV_TEST_LDAP_CA"), f->ou, groups, f->ou);
    g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void
write_conf(Fixture *f, const char *uri)
{
    write_conf_groups(f, uri, "search");
}

/* Adds (LDAP_MOD_ADD) or removes (LDAP_MOD_DELETE) @member of @group. */
static void
ldap_group_member(int op, const char *group, const char *member)
{
    LDAP *ld = ldap_admin();
    char *values[] = { (char *)member, NULL };
    LDAPMod mod = { .mod_op = op, .mod_type = (char *)"member", .mod_values = values };
    LDAPMod *mods[] = { &mod, NULL };

    g_assert_cmpint(ldap_modify_ext_s(ld, group, mods, NULL, NULL), ==, LDAP_SUCCESS);
    ldap_unbind_ext_s(ld, NULL, NULL);
}

/* A binding row as the API writes it; @scope_id NULL: global. */
static void
bind_full(Fixture *f, const char *principal_kind, const char *principal, const char *role_id,
          const char *scope_id, const char *effect)
{
    g_autoptr(JsonObject) b = json_object_new();
    g_autofree char *id = g_uuid_string_random();
    g_autoptr(GError) error = NULL;

    json_object_set_string_member(b, "id", id);
    json_object_set_string_member(b, "principal_kind", principal_kind);
    json_object_set_string_member(b, "principal", principal);
    json_object_set_string_member(b, "role_id", role_id);
    json_object_set_string_member(b, "scope_kind", scope_id != NULL ? "host_group" : "global");
    if (scope_id != NULL)
        json_object_set_string_member(b, "scope_id", scope_id);
    json_object_set_string_member(b, "effect", effect);
    json_object_set_string_member(b, "created_by", "test");
    json_object_set_int_member(b, "created_at", dv_store_now());
    g_assert_true(dv_store_insert(f->store, &dv_table_bindings, b, &error));
    g_assert_no_error(error);
}

static void
bind_group(Fixture *f, const char *group, const char *role_id)
{
    bind_full(f, "group", group, role_id, NULL, "allow");
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *pw_path = NULL;
    g_autofree char *text = NULL;
    g_autofree char *people = NULL;
    g_autofree char *groups = NULL;
    g_autofree char *alice = NULL;
    g_autofree char *bob = NULL;
    g_autofree char *ou_value = NULL;
    gboolean created = FALSE;
    LDAP *ld;

    f->pg = GPOINTER_TO_INT(data);
    f->dir = g_dir_make_tmp("drover-dirlogin-XXXXXX", &error);
    g_assert_no_error(error);
    if (f->pg)
        f->location = dv_test_pg_new_database("dv_dirlogin", &f->pg_dbname);
    else
        f->location = g_build_filename(f->dir, "drover.db", NULL);
    f->store = dv_store_open(f->location, DV_STORE_OPEN_MIGRATE, &error);
    g_assert_no_error(error);
    f->auth = dv_auth_new(f->store);
    g_assert_true(dv_auth_ensure_admin(f->auth, f->dir, &created, &error));
    g_assert_no_error(error);
    pw_path = g_build_filename(f->dir, "initial-admin-password", NULL);
    g_assert_true(g_file_get_contents(pw_path, &text, NULL, NULL));
    f->admin_pw = dv_secret_new_from_string(g_strstrip(text));

    ou_value = g_strdup_printf("dl-%08x", g_random_int());
    f->ou = g_strdup_printf("ou=%s,%s", ou_value, env("DV_TEST_LDAP_BASE"));
    people = g_strdup_printf("ou=people,%s", f->ou);
    groups = g_strdup_printf("ou=groups,%s", f->ou);
    alice = g_strdup_printf("uid=alice,%s", people);
    bob = g_strdup_printf("uid=bob,%s", people);
    f->group = g_strdup_printf("cn=operators,%s", groups);
    ld = ldap_admin();
    ldap_add_entry(ld, f->ou, "objectClass", "organizationalUnit", "ou", ou_value, NULL);
    ldap_add_entry(ld, people, "objectClass", "organizationalUnit", "ou", "people", NULL);
    ldap_add_entry(ld, groups, "objectClass", "organizationalUnit", "ou", "groups", NULL);
    ldap_add_entry(ld, alice, "objectClass", "inetOrgPerson", "uid", "alice", "cn", "Alice", "sn", "A",
                   "userPassword", ALICE_PW, NULL);
    ldap_add_entry(ld, bob, "objectClass", "inetOrgPerson", "uid", "bob", "cn", "Bob", "sn", "B",
                   "userPassword", BOB_PW, NULL);
    ldap_add_entry(ld, f->group, "objectClass", "groupOfNames", "cn", "operators", "member", alice, NULL);
    ldap_unbind_ext_s(ld, NULL, NULL);
    write_conf(f, env("DV_TEST_LDAP_URI"));
    bind_group(f, f->group, "role-read-only-administrator");
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    const char *const argv[] = { "rm", "-rf", "--", f->dir, NULL };

    ldap_remove_tree(f->ou);
    g_clear_pointer(&f->auth, dv_auth_free);
    g_clear_pointer(&f->store, dv_store_free);
    g_clear_pointer(&f->admin_pw, dv_secret_free);
    if (f->pg_dbname != NULL)
        dv_test_pg_drop_database(f->pg_dbname);
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                               NULL, NULL));
    g_free(f->pg_dbname);
    g_free(f->location);
    g_free(f->ou);
    g_free(f->group);
    g_free(f->dir);
}

/* NULL on success (token in @ret_token), else the error, owned. */
static GError *
login(Fixture *f, const char *user, const char *pw, char **ret_token)
{
    GError *error = NULL;
    g_autoptr(DvSecret) secret = dv_secret_new_from_string(pw);
    char *token = dv_auth_login(f->auth, user, ADDR, secret, NULL, &error);

    if (token == NULL) {
        g_assert_nonnull(error);
        return error;
    }
    if (ret_token != NULL)
        *ret_token = token;
    else
        g_free(token);
    return NULL;
}

static gint64
count_users(Fixture *f, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) row = dv_store_find(f->store, &dv_table_users, "name", name, &error);
    return row != NULL ? 1 : 0;
}

static void
test_group_role(Fixture *f, gconstpointer data)
{
    g_autofree char *token = NULL;
    g_autofree char *bob_token = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(DvAuthzContext) ctx = NULL;
    g_autoptr(DvAuthzContext) bob_ctx = NULL;
    g_autoptr(JsonObject) row = NULL;

    g_assert_no_error(login(f, "alice", ALICE_PW, &token));
    ctx = dv_auth_check_token_context(f->auth, token, &error);
    g_assert_no_error(error);
    /* The group's read-only administrator binding applies. */
    g_assert_true(dv_authz_context_holds(ctx, "host_group.read"));
    g_assert_false(dv_authz_context_holds(ctx, "host_group.create"));
    {
        /* GET /session (and so `drover login`) names it, with the group. */
        g_autoptr(JsonObject) me = dv_authz_context_to_json(ctx);
        JsonArray *bindings = dv_json_get_array(me, "bindings");
        JsonObject *b;
        g_assert_nonnull(bindings);
        g_assert_cmpuint(json_array_get_length(bindings), ==, 1);
        b = json_array_get_object_element(bindings, 0);
        g_assert_cmpstr(dv_json_get_string(b, "principal_kind", NULL), ==, "group");
        g_assert_cmpstr(dv_json_get_string(b, "principal", NULL), ==, f->group);
        g_assert_cmpstr(dv_json_get_string(b, "role", NULL), ==, "read-only-administrator");
        g_assert_cmpstr(dv_json_get_string(b, "scope_kind", NULL), ==, "global");
        g_assert_cmpstr(dv_json_get_string(b, "effect", NULL), ==, "allow");
    }
    /* Bob is in no group: no binding, no privilege. */
    g_assert_no_error(login(f, "bob", BOB_PW, &bob_token));
    bob_ctx = dv_auth_check_token_context(f->auth, bob_token, &error);
    g_assert_no_error(error);
    g_assert_false(dv_authz_context_holds(bob_ctx, "host_group.read"));
    /* A row marked as a directory user, with no usable local password. */
    row = dv_store_find(f->store, &dv_table_users, "name", "alice", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(row, "password_hash", NULL), ==, DV_AUTH_DIRECTORY_HASH);
    g_assert_cmpstr(dv_authz_context_get_user_id(ctx), ==, dv_json_get_string(row, "id", ""));
    {
        /* A second DvAuth (another server) reads the groups again. */
        g_autoptr(DvAuth) other = dv_auth_new(f->store);
        g_autoptr(DvAuthzContext) ctx2 = NULL;
        g_assert_true(dv_auth_ensure_admin(other, f->dir, NULL, &error));
        ctx2 = dv_auth_check_token_context(other, token, &error);
        g_assert_no_error(error);
        g_assert_true(dv_authz_context_holds(ctx2, "host_group.read"));
    }
}

/* A token made by a directory user keeps the user's groups: their
 * bindings apply at each use, read from the directory (kept
 * DV_AUTH_TOKEN_GROUPS_TTL_US), never dropped when it cannot answer. */
static void
test_token_groups(Fixture *f, gconstpointer data)
{
    const char *const privs[] = { "host_group.read", NULL };
    g_autofree char *session = NULL;
    g_autofree char *token = NULL;
    g_autofree char *alice = NULL;
    g_autofree char *placeholder = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(DvAuthzContext) ctx = NULL;
    g_autoptr(DvAuthzContext) tctx = NULL;

    g_assert_no_error(login(f, "alice", ALICE_PW, &session));
    ctx = dv_auth_check_token_context(f->auth, session, &error);
    g_assert_no_error(error);
    token = dv_auth_token_create(f->auth, ctx, "script", privs, dv_store_now() + G_TIME_SPAN_HOUR,
                                 NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(token);
    /* The group's binding applies to the token: here and on a server that
     * never saw the login. */
    tctx = dv_auth_token_context(f->auth, token, &error);
    g_assert_no_error(error);
    g_assert_true(dv_authz_context_holds(tctx, "host_group.read"));
    g_assert_false(dv_authz_context_holds(tctx, "host_group.create"));
    g_clear_pointer(&tctx, dv_authz_context_unref);
    {
        g_autoptr(DvAuth) other = dv_auth_new(f->store);
        g_assert_true(dv_auth_ensure_admin(other, f->dir, NULL, &error));
        tctx = dv_auth_token_context(other, token, &error);
        g_assert_no_error(error);
        g_assert_true(dv_authz_context_holds(tctx, "host_group.read"));
        g_clear_pointer(&tctx, dv_authz_context_unref);

        /* That server's directory cannot answer: 503, not a token with
         * fewer groups (a group may hold a deny) once those read
         * have aged out. */
        write_conf(f, "ldap://127.0.0.1:1");
        tctx = dv_auth_token_context(other, token, &error);
        g_assert_no_error(error);
        g_clear_pointer(&tctx, dv_authz_context_unref);
        dv_auth_advance_clock_for_test(other, DV_AUTH_TOKEN_GROUPS_TTL_US + 1);
        g_assert_null(dv_auth_token_context(other, token, &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
        g_clear_error(&error);
        write_conf(f, env("DV_TEST_LDAP_URI"));
    }
    /* Removed from the group in the directory: the groups read a moment
     * ago hold until they age out, then the token holds nothing. */
    alice = g_strdup_printf("uid=alice,ou=people,%s", f->ou);
    placeholder = g_strdup_printf("cn=placeholder,%s", f->ou); /* groupOfNames needs a member */
    ldap_group_member(LDAP_MOD_ADD, f->group, placeholder);
    ldap_group_member(LDAP_MOD_DELETE, f->group, alice);
    tctx = dv_auth_token_context(f->auth, token, &error);
    g_assert_no_error(error);
    g_clear_pointer(&tctx, dv_authz_context_unref);
    dv_auth_advance_clock_for_test(f->auth, DV_AUTH_TOKEN_GROUPS_TTL_US + 1);
    g_assert_null(dv_auth_token_context(f->auth, token, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED);
    g_assert_nonnull(strstr(error->message, "host_group.read"));
    g_clear_error(&error);

    /* Back in the group: works again once read; then the group's binding
     * is removed and the token stops at once (bindings are read at each
     * use, groups or not). */
    ldap_group_member(LDAP_MOD_ADD, f->group, alice);
    dv_auth_advance_clock_for_test(f->auth, DV_AUTH_TOKEN_GROUPS_TTL_US + 1);
    tctx = dv_auth_token_context(f->auth, token, &error);
    g_assert_no_error(error);
    g_assert_true(dv_authz_context_holds(tctx, "host_group.read"));
    g_clear_pointer(&tctx, dv_authz_context_unref);
    {
        const DvFilter by_group[] = { { "principal", DV_FILTER_EQ, f->group } };
        g_autoptr(JsonArray) rows =
            dv_store_list(f->store, &dv_table_bindings, by_group, 1, 10, NULL, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(rows), ==, 1);
        g_assert_true(dv_store_delete(
            f->store, &dv_table_bindings,
            dv_json_get_string(json_array_get_object_element(rows, 0), "id", ""), &error));
        g_assert_no_error(error);
    }
    g_assert_null(dv_auth_token_context(f->auth, token, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED);
}

/* groups = memberof: the user entry's memberOf values (kept by the test
 * slapd's memberof overlay) are its groups, wherever the group lives; the
 * search mode finds only those under group_base. */
static void
test_memberof(Fixture *f, gconstpointer data)
{
    g_autofree char *elsewhere = g_strdup_printf("ou=elsewhere,%s", f->ou);
    g_autofree char *admins = g_strdup_printf("cn=admins,%s", elsewhere);
    g_autofree char *alice = g_strdup_printf("uid=alice,ou=people,%s", f->ou);
    g_autofree char *token = NULL;
    g_autofree char *bob_token = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(DvAuthzContext) ctx = NULL;
    g_autoptr(DvAuthzContext) bob_ctx = NULL;
    LDAP *ld = ldap_admin();

    ldap_add_entry(ld, elsewhere, "objectClass", "organizationalUnit", "ou", "elsewhere", NULL);
    ldap_add_entry(ld, admins, "objectClass", "groupOfNames", "cn", "admins", "member", alice,
                   NULL);
    ldap_unbind_ext_s(ld, NULL, NULL);
    bind_group(f, admins, "role-administrator");

    /* search: only ou=groups is searched, so admins does not count. */
    g_assert_no_error(login(f, "alice", ALICE_PW, &token));
    ctx = dv_auth_check_token_context(f->auth, token, &error);
    g_assert_no_error(error);
    g_assert_true(dv_authz_context_holds(ctx, "host_group.read"));
    g_assert_false(dv_authz_context_holds(ctx, "host_group.create"));
    g_clear_pointer(&ctx, dv_authz_context_unref);
    g_clear_pointer(&token, g_free);

    write_conf_groups(f, env("DV_TEST_LDAP_URI"), "memberof");
    g_assert_no_error(login(f, "alice", ALICE_PW, &token));
    ctx = dv_auth_check_token_context(f->auth, token, &error);
    g_assert_no_error(error);
    g_assert_true(dv_authz_context_holds(ctx, "host_group.read"));
    g_assert_true(dv_authz_context_holds(ctx, "host_group.create"));
    /* Another server reads memberOf again for the same session. */
    {
        g_autoptr(DvAuth) other = dv_auth_new(f->store);
        g_autoptr(DvAuthzContext) ctx2 = NULL;
        g_assert_true(dv_auth_ensure_admin(other, f->dir, NULL, &error));
        ctx2 = dv_auth_check_token_context(other, token, &error);
        g_assert_no_error(error);
        g_assert_true(dv_authz_context_holds(ctx2, "host_group.create"));
    }
    /* Bob has no memberOf value: nothing. */
    g_assert_no_error(login(f, "bob", BOB_PW, &bob_token));
    bob_ctx = dv_auth_check_token_context(f->auth, bob_token, &error);
    g_assert_no_error(error);
    g_assert_false(dv_authz_context_holds(bob_ctx, "host_group.read"));
}

/* A group's deny applies to a directory user's token: the user's own
 * global allow is beaten by its group's deny on a host group below. */
static void
test_token_group_deny(Fixture *f, gconstpointer data)
{
    const char *const privs[] = { "host_group.read", NULL };
    const char *const prod_path[] = { "hg-prod", NULL };
    const char *const dev_path[] = { "hg-dev", NULL };
    const DvAuthzObject prod = { .kind = "host_group",
                                 .id = "hg-prod",
                                 .host_group_path = prod_path };
    const DvAuthzObject dev = { .kind = "host_group", .id = "hg-dev", .host_group_path = dev_path };
    g_autofree char *session = NULL;
    g_autofree char *token = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(DvAuthzContext) ctx = NULL;
    g_autoptr(DvAuthzContext) tctx = NULL;
    g_autoptr(JsonObject) row = NULL;

    g_assert_no_error(login(f, "alice", ALICE_PW, &session));
    row = dv_store_find(f->store, &dv_table_users, "name", "alice", &error);
    g_assert_no_error(error);
    bind_full(f, "user", dv_json_get_string(row, "id", ""), "role-read-only-administrator", NULL,
              "allow");
    bind_full(f, "group", f->group, "role-read-only-administrator", "hg-prod", "deny");
    ctx = dv_auth_check_token_context(f->auth, session, &error);
    g_assert_no_error(error);
    token = dv_auth_token_create(f->auth, ctx, "script", privs, dv_store_now() + G_TIME_SPAN_HOUR,
                                 NULL, &error);
    g_assert_no_error(error);
    tctx = dv_auth_token_context(f->auth, token, &error);
    g_assert_no_error(error);
    g_assert_cmpint(dv_authz_decide(tctx, "host_group.read", &dev), ==, DV_AUTHZ_ALLOW);
    g_assert_cmpint(dv_authz_decide(tctx, "host_group.read", &prod), !=, DV_AUTHZ_ALLOW);
    /* As for the session itself. */
    g_assert_cmpint(dv_authz_decide(ctx, "host_group.read", &prod), !=, DV_AUTHZ_ALLOW);
}

static void
test_wrong_password(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = login(f, "alice", "not-alice-pw", NULL);
    g_assert_error(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED);
    g_assert_cmpstr(error->message, ==, "wrong user name or password");
    g_clear_error(&error);
    error = login(f, "nobody", ALICE_PW, NULL);
    g_assert_error(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED);
    /* Neither made a user row. */
    g_assert_cmpint(count_users(f, "alice"), ==, 0);
    g_assert_cmpint(count_users(f, "nobody"), ==, 0);
}

static void
test_empty_password(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    /* With the directory pointed at a closed port, a bind would fail as
     * unavailable: the empty password is refused before any connection. */
    write_conf(f, "ldap://127.0.0.1:1");
    error = login(f, "alice", "", NULL);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(error->message, "password"));
    g_clear_error(&error);
    write_conf(f, env("DV_TEST_LDAP_URI"));
    error = login(f, "alice", "", NULL);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_cmpint(count_users(f, "alice"), ==, 0);
}

static void
test_filter_injection(Fixture *f, gconstpointer data)
{
    const char *names[] = { "*)(uid=*", "*", "ali*", "alice)(|(uid=*", "(uid=alice)" };
    g_autofree char *escaped = dv_auth_directory_filter_escape("*)(uid=*\\");

    g_assert_cmpstr(escaped, ==, "\\2a\\29\\28uid=\\2a\\5c");
    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        /* "ali*" unescaped would find alice alone and bind with her
         * password: escaped, it matches nobody. */
        g_autoptr(GError) error = login(f, names[i], ALICE_PW, NULL);
        g_assert_error(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED);
        g_assert_cmpint(count_users(f, names[i]), ==, 0);
    }
}

static void
test_directory_down(Fixture *f, gconstpointer data)
{
    g_autofree char *pid_text = NULL;
    g_autofree char *token = NULL;
    g_autoptr(GError) error = NULL;
    gint64 start;
    gint64 took;
    pid_t pid;

    g_assert_true(g_file_get_contents(env("DV_TEST_LDAP_PID_FILE"), &pid_text, NULL, NULL));
    pid = (pid_t)g_ascii_strtoll(g_strstrip(pid_text), NULL, 10);
    g_assert_cmpint(pid, >, 1);
    /* slapd stopped: the kernel still accepts connections, nothing answers. */
    g_assert_cmpint(kill(pid, SIGSTOP), ==, 0);
    start = g_get_monotonic_time();
    error = login(f, "alice", ALICE_PW, NULL);
    took = g_get_monotonic_time() - start;
    g_assert_cmpint(kill(pid, SIGCONT), ==, 0);
    g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
    g_test_message("after %.1f s: %s", took / 1e6, error->message);
    g_assert_true(g_str_has_prefix(error->message, "directory logins are unavailable: directory ldap://"));
    /* network 1 s + operation 2 s, and some slack. */
    g_assert_cmpint(took, <, 5 * G_USEC_PER_SEC);
    g_clear_error(&error);

    /* Nothing listening at all: refused at once, with the reason. */
    write_conf(f, "ldap://127.0.0.1:1");
    error = login(f, "alice", ALICE_PW, NULL);
    g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
    g_assert_nonnull(strstr(error->message, "cannot be reached"));
    g_clear_error(&error);
    /* Not counted as failures: the caller guessed nothing. */
    g_assert_cmpuint(dv_auth_login_retry_after(f->auth, "alice", ADDR), ==, 0);
    /* The local administrator still logs in. */
    token = dv_auth_login(f->auth, "admin", ADDR, f->admin_pw, NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(token);
    g_assert_cmpint(count_users(f, "alice"), ==, 0);
}

static void
test_first_login_once(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) first = NULL;
    g_autoptr(JsonObject) again = NULL;
    g_autoptr(DvSecret) local_pw = dv_secret_new_from_string(DV_AUTH_DIRECTORY_HASH);

    g_assert_cmpint(count_users(f, "alice"), ==, 0);
    g_assert_no_error(login(f, "alice", ALICE_PW, NULL));
    first = dv_store_find(f->store, &dv_table_users, "name", "alice", &error);
    g_assert_no_error(error);
    for (guint i = 0; i < 3; i++)
        g_assert_no_error(login(f, "alice", ALICE_PW, NULL));
    again = dv_store_find(f->store, &dv_table_users, "name", "alice", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(first, "id", "a"), ==, dv_json_get_string(again, "id", "b"));
    {
        const DvFilter by_name[] = { { "name", DV_FILTER_EQ, "alice" } };
        g_assert_cmpint(dv_store_count(f->store, &dv_table_users, by_name, 1, &error), ==, 1);
        g_assert_no_error(error);
    }
    /* With directory logins off, the row opens with no password. */
    write_conf(f, env("DV_TEST_LDAP_URI"));
    {
        g_autofree char *path = g_build_filename(f->dir, "directory.conf", NULL);
        g_assert_cmpint(g_unlink(path), ==, 0);
    }
    g_clear_error(&error);
    g_assert_null(dv_auth_login(f->auth, "alice", ADDR, local_pw, NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED);
}

static void
test_failures_throttled(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    for (guint i = 0; i < DV_AUTH_ADDRESS_FREE_FAILURES; i++) {
        g_autoptr(GError) e = login(f, "alice", "wrong-password", NULL);
        g_assert_error(e, DV_ERROR, DV_ERROR_AUTH_REQUIRED);
    }
    /* The next attempt is refused without asking the directory. */
    error = login(f, "alice", ALICE_PW, NULL);
    g_assert_error(error, DV_ERROR, DV_ERROR_BUSY);
    g_assert_cmpuint(dv_auth_login_retry_after(f->auth, "alice", ADDR), >, 0);
}

static void
test_bad_settings(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("drover-dirlogin-XXXXXX", &error);
    g_autofree char *path = g_build_filename(dir, "directory.conf", NULL);
    DvAuthDirectory *loaded = NULL;
    const struct {
        const char *login;
        const char *field;
    } cases[] = {
        { "user_base=ou=p,dc=x\nuser_filter=(uid=alice)", "user_filter" },
        { "user_base=ou=p,dc=x\nuser_filter=(uid=%s)(cn=%s)", "user_filter" },
        { "user_base=ou=p,dc=x\ngroup_filter=member=%s", "group_filter" },
        { "user_base=not a dn", "user_base" },
        { "user_base=ou=p,dc=x\ngroups=both", "groups" },
        { "user_base=ou=p,dc=x\nop_timeout_s=0", "op_timeout_s" },
    };

    g_assert_no_error(error);
    g_assert_true(dv_auth_directory_load(path, &loaded, &error));
    g_assert_null(loaded); /* no file: logins off */
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *text =
            g_strdup_printf("[directory]\nuri=ldap://127.0.0.1\n[login]\nenabled=true\n%s\n", cases[i].login);
        g_autoptr(GError) e = NULL;
        g_assert_true(g_file_set_contents(path, text, -1, NULL));
        g_assert_false(dv_auth_directory_load(path, &loaded, &e));
        g_assert_error(e, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_assert_nonnull(strstr(e->message, cases[i].field));
        g_assert_null(loaded);
    }
    g_assert_cmpint(g_unlink(path), ==, 0);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

/* `drover-setup keys directory init` rewrites [directory]: [login] stays. */
static void
test_settings_kept(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("drover-dirlogin-XXXXXX", &error);
    g_autofree char *path = g_build_filename(dir, "directory.conf", NULL);
    g_autoptr(DvDirectorySettings) settings =
        dv_directory_settings_new("ldaps://127.0.0.2", "ou=keys,dc=x", NULL, NULL, FALSE, NULL, NULL, NULL);
    g_autoptr(DvAuthDirectory) loaded = NULL;

    g_assert_true(g_file_set_contents(
        path, "[directory]\nuri=ldap://127.0.0.1\ncontainer=ou=old,dc=x\n"
              "[login]\nenabled=true\nuser_base=ou=people,dc=x\n", -1, NULL));
    g_assert_true(dv_directory_settings_save(settings, path, &error));
    g_assert_no_error(error);
    g_assert_true(dv_auth_directory_load(path, &loaded, &error));
    g_assert_no_error(error);
    g_assert_nonnull(loaded);
    g_assert_cmpstr(dv_auth_directory_get_uri(loaded), ==, "ldaps://127.0.0.2");
    g_assert_cmpint(g_unlink(path), ==, 0);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

static void
test_services_missing(gconstpointer data)
{
    g_test_fail_printf("%s is not set; run under tests/services/with-services", (const char *)data);
}

int
main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*func)(Fixture *, gconstpointer);
    } tests[] = {
        { "group-role", test_group_role },
        { "token-groups", test_token_groups },
        { "token-group-deny", test_token_group_deny },
        { "memberof", test_memberof },
        { "wrong-password", test_wrong_password },
        { "empty-password", test_empty_password },
        { "filter-injection", test_filter_injection },
        { "directory-down", test_directory_down },
        { "first-login-once", test_first_login_once },
        { "throttled", test_failures_throttled },
    };
    const char *pg = g_getenv("DV_TEST_PG_URI");

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/drover/auth/dirlogin/bad-settings", test_bad_settings);
    g_test_add_func("/drover/auth/dirlogin/settings-kept", test_settings_kept);
    if (g_getenv("DV_TEST_LDAP_URI") == NULL) {
        g_test_add_data_func("/drover/auth/dirlogin/slapd", "DV_TEST_LDAP_URI", test_services_missing);
        return g_test_run();
    }
    if (pg == NULL || pg[0] == '\0')
        g_test_add_data_func("/drover/auth/dirlogin/pg", "DV_TEST_PG_URI", test_services_missing);
    for (guint backend = 0; backend < 2; backend++) {
        if (backend == 1 && (pg == NULL || pg[0] == '\0'))
            break;
        for (guint i = 0; i < G_N_ELEMENTS(tests); i++) {
            g_autofree char *path = g_strdup_printf("/drover/auth/dirlogin/%s/%s",
                                                    backend == 0 ? "sqlite" : "pg", tests[i].name);
            g_test_add(path, Fixture, GINT_TO_POINTER(backend), fixture_setup, tests[i].func,
                       fixture_teardown);
        }
    }
    return g_test_run();
}
