#define G_LOG_DOMAIN "DvTestDirectory"
/* The directory key protector against the private slapd that
 * tests/services/with-services starts (tests/services/slapd/start-slapd
 * lists the DV_TEST_LDAP_* variables).  Every test uses its own container
 * and removes it, and the ACL rule it made, afterwards.
 *
 * Without DV_TEST_LDAP_URI the suite skips, or fails when services are
 * required (CI=true or DV_REQUIRE_SERVICES=1). */

#include "dv-error.h"
#include "dv-keys-directory.h"
#include "dv-keys.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <ldap.h>
#include <string.h>

#define INSTALLATION_ID "0f5a3c2e-8d1b-4f7a-9c6e-2b4d8e1f3a5c"

typedef struct {
    char *container;
    char *base;
} Fixture;

static const char *
env(const char *name)
{
    const char *value = g_getenv(name);
    g_assert_nonnull(value);
    return value;
}

/* --- what the test itself does as administrator (ldapi, root) ------------ */

static LDAP *
admin_ldapi(void)
{
    LDAP *ld = NULL;
    const int v3 = LDAP_VERSION3;

    g_assert_cmpint(ldap_initialize(&ld, env("DV_TEST_LDAPI_URI")), ==, LDAP_SUCCESS);
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
    struct berval no_authzid = { 0, "" };
    g_assert_cmpint(ldap_sasl_bind_s(ld, NULL, "EXTERNAL", &no_authzid, NULL, NULL, NULL), ==, LDAP_SUCCESS);
    return ld;
}

/* The olcAccess values of the mdb database that mention @container. */
static GPtrArray *
olc_rules_for(LDAP *ld, const char *container)
{
    GPtrArray *found = g_ptr_array_new_with_free_func(g_free);
    LDAPMessage *res = NULL;
    char *attrs[] = { "olcAccess", NULL };

    g_assert_cmpint(ldap_search_ext_s(ld, "olcDatabase={1}mdb,cn=config", LDAP_SCOPE_BASE, "(objectClass=*)",
                                      attrs, 0, NULL, NULL, NULL, 0, &res),
                    ==, LDAP_SUCCESS);
    struct berval **vals = ldap_get_values_len(ld, ldap_first_entry(ld, res), "olcAccess");
    for (guint i = 0; vals != NULL && vals[i] != NULL; i++) {
        g_autofree char *v = g_strndup(vals[i]->bv_val, vals[i]->bv_len);
        if (strstr(v, container) != NULL)
            g_ptr_array_add(found, g_steal_pointer(&v));
    }
    ldap_value_free_len(vals);
    ldap_msgfree(res);
    return found;
}

static void
olc_add_rule(const char *rule)
{
    LDAP *ld = admin_ldapi();
    char *vals[] = { (char *)rule, NULL };
    LDAPMod add = { .mod_op = LDAP_MOD_ADD, .mod_type = "olcAccess", .mod_values = vals };
    LDAPMod *mods[] = { &add, NULL };

    g_assert_cmpint(ldap_modify_ext_s(ld, "olcDatabase={1}mdb,cn=config", mods, NULL, NULL), ==, LDAP_SUCCESS);
    ldap_unbind_ext_s(ld, NULL, NULL);
}

static guint
olc_count_rules(const char *container)
{
    LDAP *ld = admin_ldapi();
    g_autoptr(GPtrArray) rules = olc_rules_for(ld, container);
    ldap_unbind_ext_s(ld, NULL, NULL);
    return rules->len;
}

/* Removes the container (as rootDN over StartTLS) and its ACL rules. */
static void
remove_container(const char *container)
{
    LDAP *ld = admin_ldapi();
    g_autoptr(GPtrArray) rules = olc_rules_for(ld, container);
    LDAPMessage *res = NULL;
    g_autoptr(GPtrArray) dns = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *pw = NULL;
    struct berval cred;
    const int v3 = LDAP_VERSION3;
    LDAP *admin = NULL;

    if (rules->len > 0) {
        g_ptr_array_add(rules, NULL);
        LDAPMod del = { .mod_op = LDAP_MOD_DELETE, .mod_type = "olcAccess", .mod_values = (char **)rules->pdata };
        LDAPMod *mods[] = { &del, NULL };
        g_assert_cmpint(ldap_modify_ext_s(ld, "olcDatabase={1}mdb,cn=config", mods, NULL, NULL), ==,
                        LDAP_SUCCESS);
    }
    ldap_unbind_ext_s(ld, NULL, NULL);

    g_assert_true(g_file_get_contents(env("DV_TEST_LDAP_ADMIN_PW_FILE"), &pw, NULL, NULL));
    g_assert_cmpint(ldap_initialize(&admin, env("DV_TEST_LDAPS_URI")), ==, LDAP_SUCCESS);
    ldap_set_option(admin, LDAP_OPT_PROTOCOL_VERSION, &v3);
    ldap_set_option(admin, LDAP_OPT_X_TLS_CACERTFILE, env("DV_TEST_LDAP_CA"));
    {
        const int zero = 0;
        ldap_set_option(admin, LDAP_OPT_X_TLS_NEWCTX, &zero);
    }
    cred.bv_val = g_strchomp(pw);
    cred.bv_len = strlen(pw);
    g_assert_cmpint(ldap_sasl_bind_s(admin, env("DV_TEST_LDAP_ADMIN_DN"), LDAP_SASL_SIMPLE, &cred, NULL, NULL,
                                     NULL),
                    ==, LDAP_SUCCESS);
    if (ldap_search_ext_s(admin, container, LDAP_SCOPE_SUBTREE, "(objectClass=*)", (char *[]){ "1.1", NULL }, 0,
                          NULL, NULL, NULL, 0, &res) == LDAP_SUCCESS) {
        for (LDAPMessage *e = ldap_first_entry(admin, res); e != NULL; e = ldap_next_entry(admin, e)) {
            char *dn = ldap_get_dn(admin, e);
            g_ptr_array_add(dns, g_strdup(dn));
            ldap_memfree(dn);
        }
    }
    ldap_msgfree(res);
    /* Children first: the container is the first entry a subtree search
     * returns, so delete in reverse. */
    for (guint i = dns->len; i > 0; i--)
        g_assert_cmpint(ldap_delete_ext_s(admin, g_ptr_array_index(dns, i - 1), NULL, NULL), ==, LDAP_SUCCESS);
    ldap_unbind_ext_s(admin, NULL, NULL);
}

/* --- option sets ------------------------------------------------------------- */

static DvDirectoryOptions
service_options(Fixture *fx)
{
    return (DvDirectoryOptions){
        .conn = { .uri = env("DV_TEST_LDAP_URI"),
                  .bind_dn = env("DV_TEST_LDAP_SERVICE_DN"),
                  .password_file = env("DV_TEST_LDAP_SERVICE_PW_FILE"),
                  .ca_file = env("DV_TEST_LDAP_CA") },
        .container_dn = fx->container,
    };
}

static DvDirectory *
open_as(Fixture *fx, const char *uri, const char *dn_var, const char *pw_var)
{
    DvDirectoryOptions o = {
        .conn = { .uri = uri,
                  .bind_dn = dn_var != NULL ? env(dn_var) : NULL,
                  .password_file = pw_var != NULL ? env(pw_var) : NULL,
                  .ca_file = env("DV_TEST_LDAP_CA") },
        .container_dn = fx->container,
    };
    g_autoptr(GError) error = NULL;
    DvDirectory *dir = dv_directory_new(&o, &error);

    g_assert_no_error(error);
    return dir;
}

static DvDirectory *
open_service(Fixture *fx)
{
    return open_as(fx, env("DV_TEST_LDAP_URI"), "DV_TEST_LDAP_SERVICE_DN", "DV_TEST_LDAP_SERVICE_PW_FILE");
}

static DvDirectoryConn
intruder_conn(void)
{
    return (DvDirectoryConn){ .bind_dn = env("DV_TEST_LDAP_INTRUDER_DN"),
                              .password_file = env("DV_TEST_LDAP_INTRUDER_PW_FILE") };
}

static DvDirectoryInitOptions
init_options(const DvDirectoryConn *non_members, const DvDirectoryConn *config_admin)
{
    return (DvDirectoryInitOptions){
        .admin = { .uri = env("DV_TEST_LDAP_URI"),
                   .bind_dn = env("DV_TEST_LDAP_ADMIN_DN"),
                   .password_file = env("DV_TEST_LDAP_ADMIN_PW_FILE"),
                   .ca_file = env("DV_TEST_LDAP_CA") },
        .config_admin = config_admin,
        .acl_mode = DV_DIRECTORY_ACL_OPENLDAP,
        .group_dn = env("DV_TEST_LDAP_GROUP_DN"),
        .non_members = non_members,
        .n_non_members = 1,
    };
}

static const DvDirectoryConn *
config_admin(void)
{
    static DvDirectoryConn conn;
    conn = (DvDirectoryConn){ .uri = env("DV_TEST_LDAPI_URI"), .sasl_external = TRUE };
    return &conn;
}

static void
init_container(Fixture *fx)
{
    g_autoptr(DvDirectory) dir = open_service(fx);
    g_autoptr(GError) error = NULL;
    DvDirectoryConn intruder = intruder_conn();
    DvDirectoryInitOptions init = init_options(&intruder, config_admin());

    dv_directory_init(dir, &init, &error);
    g_assert_no_error(error);
}

/* --- fixtures ---------------------------------------------------------------- */

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
    g_autofree char *name = g_strdelimit(g_path_get_basename(g_test_get_path()), "/", '-');

    fx->base = g_strdup(env("DV_TEST_LDAP_BASE"));
    fx->container = g_strdup_printf("ou=keys-%s-%08x,%s", name, g_random_int(), fx->base);
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
    remove_container(fx->container);
    g_assert_cmpuint(olc_count_rules(fx->container), ==, 0);
    g_free(fx->container);
    g_free(fx->base);
}

/* --- tests ------------------------------------------------------------------ */

static void
test_roundtrip(Fixture *fx, gconstpointer data)
{
    g_autoptr(DvDirectory) dir = NULL;
    g_autoptr(DvDirectory) ldaps = NULL;
    g_autoptr(DvSecret) k1 = dv_secret_new_random(32);
    g_autoptr(DvSecret) other = dv_secret_new_random(32);
    g_autoptr(DvSecret) loaded = NULL;
    g_autoptr(DvSecret) loaded_s = NULL;
    g_autoptr(GError) error = NULL;
    g_auto(GStrv) ids = NULL;
    g_autofree char *current = NULL;

    init_container(fx);
    g_assert_cmpuint(olc_count_rules(fx->container), ==, 1);
    /* Idempotent: the same rule, not a second one. */
    init_container(fx);
    g_assert_cmpuint(olc_count_rules(fx->container), ==, 1);

    dir = open_service(fx);
    ids = dv_directory_list_keys(dir, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(g_strv_length(ids), ==, 0);
    g_clear_pointer(&ids, g_strfreev);

    current = dv_directory_dup_current(dir, &error);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_assert_null(current);
    g_clear_error(&error);

    /* StartTLS, simple bind. */
    g_assert_true(dv_directory_store_key(dir, INSTALLATION_ID, "k1", k1, DV_DIRECTORY_STORE_DEFAULT, &error));
    g_assert_no_error(error);
    loaded = dv_directory_load_key(dir, INSTALLATION_ID, "k1", &error);
    g_assert_no_error(error);
    g_assert_true(dv_secret_equal(loaded, k1));

    /* The same key again is a no-op; another key under k1 is refused. */
    g_assert_true(dv_directory_store_key(dir, INSTALLATION_ID, "k1", k1, DV_DIRECTORY_STORE_DEFAULT, &error));
    g_assert_no_error(error);
    g_assert_false(dv_directory_store_key(dir, INSTALLATION_ID, "k1", other, DV_DIRECTORY_STORE_DEFAULT, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_clear_error(&error);
    g_clear_pointer(&loaded, dv_secret_free);
    loaded = dv_directory_load_key(dir, INSTALLATION_ID, "k1", &error);
    g_assert_no_error(error);
    g_assert_true(dv_secret_equal(loaded, k1));

    /* ldaps. */
    ldaps = open_as(fx, env("DV_TEST_LDAPS_URI"), "DV_TEST_LDAP_SERVICE_DN", "DV_TEST_LDAP_SERVICE_PW_FILE");
    loaded_s = dv_directory_load_key(ldaps, INSTALLATION_ID, "k1", &error);
    g_assert_no_error(error);
    g_assert_true(dv_secret_equal(loaded_s, k1));

    /* Missing key, current pointer, list. */
    g_assert_null(dv_directory_load_key(dir, INSTALLATION_ID, "k2", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_false(dv_directory_set_current(dir, "k2", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_true(dv_directory_store_key(dir, INSTALLATION_ID, "k2", other, DV_DIRECTORY_STORE_DEFAULT, &error));
    g_assert_no_error(error);
    g_assert_true(dv_directory_set_current(dir, "k1", &error));
    g_assert_no_error(error);
    g_assert_true(dv_directory_set_current(dir, "k2", &error));
    g_assert_no_error(error);
    current = dv_directory_dup_current(dir, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(current, ==, "k2");
    ids = dv_directory_list_keys(dir, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(g_strv_length(ids), ==, 2);
    g_assert_cmpstr(ids[0], ==, "k1");
    g_assert_cmpstr(ids[1], ==, "k2");

    /* The proof still holds with keys in the container. */
    {
        DvDirectoryConn intruder = intruder_conn();
        g_assert_true(dv_directory_check_acl(dir, &intruder, 1, &error));
        g_assert_no_error(error);
    }
}

static void
test_sasl_external_cert(Fixture *fx, gconstpointer data)
{
    g_autoptr(DvDirectory) writer = NULL;
    g_autoptr(DvDirectory) dir = NULL;
    g_autoptr(DvSecret) k1 = dv_secret_new_random(32);
    g_autoptr(DvSecret) loaded = NULL;
    g_autoptr(GError) error = NULL;
    DvDirectoryOptions o = {
        .conn = { .uri = env("DV_TEST_LDAPS_URI"),
                  .sasl_external = TRUE,
                  .ca_file = env("DV_TEST_LDAP_CA"),
                  .cert_file = env("DV_TEST_LDAP_SERVICE_CERT"),
                  .key_file = env("DV_TEST_LDAP_SERVICE_KEY") },
        .container_dn = fx->container,
    };

    /* Init with the service bound by certificate: its DN comes from Who am I. */
    dir = dv_directory_new(&o, &error);
    g_assert_no_error(error);
    {
        DvDirectoryConn intruder = intruder_conn();
        DvDirectoryInitOptions init = init_options(&intruder, config_admin());
        g_assert_true(dv_directory_init(dir, &init, &error));
        g_assert_no_error(error);
    }
    g_assert_true(dv_directory_store_key(dir, INSTALLATION_ID, "k1", k1, DV_DIRECTORY_STORE_DEFAULT, &error));
    g_assert_no_error(error);
    /* Written by certificate, read by password: the same identity. */
    writer = open_service(fx);
    loaded = dv_directory_load_key(writer, INSTALLATION_ID, "k1", &error);
    g_assert_no_error(error);
    g_assert_true(dv_secret_equal(loaded, k1));
}

static void
test_group_member_reads(Fixture *fx, gconstpointer data)
{
    g_autoptr(DvDirectory) dir = open_service(fx);
    g_autoptr(DvDirectory) second = NULL;
    g_autoptr(DvSecret) k1 = dv_secret_new_random(32);
    g_autoptr(DvSecret) loaded = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *current = NULL;

    init_container(fx);
    g_assert_true(dv_directory_store_key(dir, INSTALLATION_ID, "k1", k1, DV_DIRECTORY_STORE_DEFAULT, &error));
    g_assert_no_error(error);
    g_assert_true(dv_directory_set_current(dir, "k1", &error));
    g_assert_no_error(error);

    /* Another server, same installation: reads through its group. */
    second = open_as(fx, env("DV_TEST_LDAPS_URI"), "DV_TEST_LDAP_SERVICE2_DN", "DV_TEST_LDAP_SERVICE2_PW_FILE");
    loaded = dv_directory_load_key(second, INSTALLATION_ID, "k1", &error);
    g_assert_no_error(error);
    g_assert_true(dv_secret_equal(loaded, k1));
    current = dv_directory_dup_current(second, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(current, ==, "k1");

    /* Members read; only the service identity writes. */
    g_assert_false(dv_directory_store_key(second, INSTALLATION_ID, "k9", k1, DV_DIRECTORY_STORE_DEFAULT, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED);
}

static void
assert_not_readable(DvDirectory *dir)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSecret) loaded = dv_directory_load_key(dir, INSTALLATION_ID, "k1", &error);
    g_auto(GStrv) ids = NULL;
    g_autofree char *current = NULL;

    g_assert_null(loaded);
    g_assert_nonnull(error);
    g_assert_true(error->domain == DV_ERROR);
    g_assert_true(error->code == DV_ERROR_PERMISSION_DENIED || error->code == DV_ERROR_NOT_FOUND);
    g_clear_error(&error);

    current = dv_directory_dup_current(dir, &error);
    g_assert_null(current);
    g_assert_true(error->code == DV_ERROR_PERMISSION_DENIED || error->code == DV_ERROR_NOT_FOUND);
    g_clear_error(&error);

    ids = dv_directory_list_keys(dir, &error);
    if (ids != NULL)
        g_assert_cmpuint(g_strv_length(ids), ==, 0);
    else
        g_assert_true(error->code == DV_ERROR_PERMISSION_DENIED || error->code == DV_ERROR_NOT_FOUND);
}

static void
test_others_cannot_read(Fixture *fx, gconstpointer data)
{
    g_autoptr(DvDirectory) dir = open_service(fx);
    g_autoptr(DvDirectory) intruder = NULL;
    g_autoptr(DvDirectory) anonymous = NULL;
    g_autoptr(DvDirectory) anonymous_s = NULL;
    g_autoptr(DvSecret) k1 = dv_secret_new_random(32);
    g_autoptr(GError) error = NULL;

    init_container(fx);
    g_assert_true(dv_directory_store_key(dir, INSTALLATION_ID, "k1", k1, DV_DIRECTORY_STORE_DEFAULT, &error));
    g_assert_no_error(error);
    g_assert_true(dv_directory_set_current(dir, "k1", &error));
    g_assert_no_error(error);

    intruder = open_as(fx, env("DV_TEST_LDAP_URI"), "DV_TEST_LDAP_INTRUDER_DN", "DV_TEST_LDAP_INTRUDER_PW_FILE");
    assert_not_readable(intruder);
    anonymous = open_as(fx, env("DV_TEST_LDAP_URI"), NULL, NULL);
    assert_not_readable(anonymous);
    anonymous_s = open_as(fx, env("DV_TEST_LDAPS_URI"), NULL, NULL);
    assert_not_readable(anonymous_s);

    /* Neither may overwrite the key. */
    g_assert_false(dv_directory_store_key(intruder, INSTALLATION_ID, "k1", k1, DV_DIRECTORY_STORE_REPLACE, &error));
    g_test_message("%s", error->message);
    g_assert_true(error->code == DV_ERROR_PERMISSION_DENIED || error->code == DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    /* slapd answers an anonymous write with "modifications require
     * authentication". */
    g_assert_false(dv_directory_store_key(anonymous, INSTALLATION_ID, "k7", k1, DV_DIRECTORY_STORE_DEFAULT, &error));
    g_test_message("%s", error->message);
    g_assert_true(error->code == DV_ERROR_PERMISSION_DENIED || error->code == DV_ERROR_AUTH_REQUIRED);
}

static void
test_permissive_acl_refused(Fixture *fx, gconstpointer data)
{
    g_autoptr(DvDirectory) dir = open_service(fx);
    g_autoptr(GError) error = NULL;
    g_autofree char *rule = NULL;
    DvDirectoryConn intruder = intruder_conn();
    DvDirectoryInitOptions init = init_options(&intruder, config_admin());

    /* The administrator wrote an ACL that lets everybody read, and asks
     * init only to prove it: init refuses and names who could read. */
    rule = g_strdup_printf("{0}to dn.subtree=\"%s\" by dn.exact=\"%s\" write by * read", fx->container,
                           env("DV_TEST_LDAP_SERVICE_DN"));
    olc_add_rule(rule);
    init.acl_mode = DV_DIRECTORY_ACL_PRESET;
    g_assert_false(dv_directory_init(dir, &init, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED);
    g_test_message("%s", error->message);
    g_assert_nonnull(strstr(error->message, "anonymous"));
    g_assert_nonnull(strstr(error->message, env("DV_TEST_LDAP_INTRUDER_DN")));
    g_assert_nonnull(strstr(error->message, fx->container));
    g_clear_error(&error);

    /* In OpenLDAP mode init replaces that rule with its own, and the proof
     * passes. */
    init.acl_mode = DV_DIRECTORY_ACL_OPENLDAP;
    dv_directory_init(dir, &init, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(olc_count_rules(fx->container), ==, 1);
    g_assert_true(dv_directory_check_acl(dir, &intruder, 1, &error));
    g_assert_no_error(error);

    /* A later rule placed before it that opens the container to
     * authenticated users: the check catches the intruder (not anonymous). */
    g_free(rule);
    rule = g_strdup_printf("{0}to dn.subtree=\"%s\" by dn.exact=\"%s\" write by users read by * none",
                           fx->container, env("DV_TEST_LDAP_SERVICE_DN"));
    olc_add_rule(rule);
    g_assert_false(dv_directory_check_acl(dir, &intruder, 1, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED);
    g_test_message("%s", error->message);
    g_assert_nonnull(strstr(error->message, env("DV_TEST_LDAP_INTRUDER_DN")));
    g_assert_null(strstr(error->message, "anonymous"));
}

static void
test_proof_needs_working_identities(Fixture *fx, gconstpointer data)
{
    g_autoptr(DvDirectory) dir = open_service(fx);
    g_autoptr(GError) error = NULL;
    /* The intruder with a wrong password proves nothing: refused. */
    DvDirectoryConn wrong = { .bind_dn = env("DV_TEST_LDAP_INTRUDER_DN"),
                              .password_file = env("DV_TEST_LDAP_SERVICE_PW_FILE") };
    DvDirectoryInitOptions init = init_options(&wrong, config_admin());

    g_assert_false(dv_directory_init(dir, &init, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED);
    g_assert_nonnull(strstr(error->message, env("DV_TEST_LDAP_INTRUDER_DN")));
}

static void
test_wrong_installation(Fixture *fx, gconstpointer data)
{
    g_autoptr(DvDirectory) dir = open_service(fx);
    g_autoptr(DvSecret) k1 = dv_secret_new_random(32);
    g_autoptr(DvSecret) k1b = dv_secret_new_random(32);
    g_autoptr(DvSecret) loaded = NULL;
    g_autoptr(GError) error = NULL;

    init_container(fx);
    g_assert_true(dv_directory_store_key(dir, INSTALLATION_ID, "k1", k1, DV_DIRECTORY_STORE_DEFAULT, &error));
    g_assert_no_error(error);

    loaded = dv_directory_load_key(dir, "another-installation", "k1", &error);
    g_assert_null(loaded);
    g_assert_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE);
    g_test_message("%s", error->message);
    g_assert_nonnull(strstr(error->message, "another installation id"));
    g_clear_error(&error);

    /* Another installation may not silently overwrite the entry... */
    g_assert_false(dv_directory_store_key(dir, "another-installation", "k1", k1b, DV_DIRECTORY_STORE_DEFAULT,
                                          &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_clear_error(&error);
    /* ...and the failed read rewrote nothing. */
    loaded = dv_directory_load_key(dir, INSTALLATION_ID, "k1", &error);
    g_assert_no_error(error);
    g_assert_true(dv_secret_equal(loaded, k1));
}

static void
test_bad_credentials(Fixture *fx, gconstpointer data)
{
    g_autoptr(DvDirectory) dir = NULL;
    g_autoptr(GError) error = NULL;

    init_container(fx);
    dir = open_as(fx, env("DV_TEST_LDAP_URI"), "DV_TEST_LDAP_SERVICE_DN", "DV_TEST_LDAP_INTRUDER_PW_FILE");
    g_assert_null(dv_directory_load_key(dir, INSTALLATION_ID, "k1", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED);
    g_test_message("%s", error->message);
    g_assert_nonnull(strstr(error->message, env("DV_TEST_LDAP_SERVICE_DN")));
}

static guint16
closed_port(void)
{
    g_autoptr(GSocket) sock = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) any = g_inet_socket_address_new(lo, 0);
    g_autoptr(GSocketAddress) bound = NULL;

    g_assert_true(g_socket_bind(sock, any, FALSE, NULL));
    bound = g_socket_get_local_address(sock, NULL);
    /* Closed when sock is freed, before anyone connects. */
    return g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
}

static void
test_server_down(Fixture *fx, gconstpointer data)
{
    g_autofree char *uri = g_strdup_printf("ldap://127.0.0.1:%u", closed_port());
    g_autoptr(DvDirectory) dir = open_as(fx, uri, "DV_TEST_LDAP_SERVICE_DN", "DV_TEST_LDAP_SERVICE_PW_FILE");
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSecret) k1 = dv_secret_new_random(32);
    gint64 start = g_get_monotonic_time();

    g_assert_null(dv_directory_load_key(dir, INSTALLATION_ID, "k1", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
    g_test_message("%s", error->message);
    g_assert_true(g_str_has_prefix(error->message, "directory ldap://127.0.0.1:"));
    g_assert_nonnull(strstr(error->message, "cannot be reached"));
    g_clear_error(&error);
    g_assert_false(dv_directory_store_key(dir, INSTALLATION_ID, "k1", k1, DV_DIRECTORY_STORE_DEFAULT, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
    g_assert_cmpint(g_get_monotonic_time() - start, <, (DV_DIRECTORY_NETWORK_TIMEOUT_S + 1) * G_USEC_PER_SEC);
}

/* A server that accepts TCP connections and never answers. */
static void
test_server_hangs(Fixture *fx, gconstpointer data)
{
    g_autoptr(GSocket) sock = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) any = g_inet_socket_address_new(lo, 0);
    g_autoptr(GSocketAddress) bound = NULL;
    const char *schemes[] = { "ldap", "ldaps" };

    g_assert_true(g_socket_bind(sock, any, FALSE, NULL));
    g_socket_set_listen_backlog(sock, 16);
    g_assert_true(g_socket_listen(sock, NULL));
    bound = g_socket_get_local_address(sock, NULL);

    for (guint i = 0; i < G_N_ELEMENTS(schemes); i++) {
        g_autofree char *uri = g_strdup_printf("%s://127.0.0.1:%u", schemes[i],
                                               g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound)));
        DvDirectoryOptions o = {
            .conn = { .uri = uri,
                      .bind_dn = env("DV_TEST_LDAP_SERVICE_DN"),
                      .password_file = env("DV_TEST_LDAP_SERVICE_PW_FILE"),
                      .ca_file = env("DV_TEST_LDAP_CA"),
                      .network_timeout_s = 1,
                      .op_timeout_s = 2 },
            .container_dn = fx->container,
        };
        g_autoptr(GError) error = NULL;
        g_autoptr(DvDirectory) dir = dv_directory_new(&o, &error);
        gint64 start = g_get_monotonic_time();
        gint64 took;

        g_assert_no_error(error);
        g_assert_null(dv_directory_load_key(dir, INSTALLATION_ID, "k1", &error));
        took = g_get_monotonic_time() - start;
        g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
        g_test_message("%s after %.1f s: %s", schemes[i], took / 1e6, error->message);
        g_assert_cmpint(took, <, 5 * G_USEC_PER_SEC);
    }
}

static void
test_ca_mismatch(Fixture *fx, gconstpointer data)
{
    const char *uris[] = { env("DV_TEST_LDAP_URI"), env("DV_TEST_LDAPS_URI") };

    init_container(fx);
    for (guint i = 0; i < G_N_ELEMENTS(uris); i++) {
        /* No ca_file: the system CAs, which never signed the throwaway CA. */
        DvDirectoryOptions o = service_options(fx);
        g_autoptr(GError) error = NULL;
        g_autoptr(DvDirectory) dir = NULL;

        o.conn.uri = uris[i];
        o.conn.ca_file = NULL;
        dir = dv_directory_new(&o, &error);
        g_assert_no_error(error);
        g_assert_null(dv_directory_load_key(dir, INSTALLATION_ID, "k1", &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
        g_test_message("%s", error->message);
        g_assert_nonnull(strstr(error->message, "TLS"));
        g_assert_nonnull(strstr(error->message, "CA"));
    }
}

static void
test_protector(Fixture *fx, gconstpointer data)
{
    DvDirectoryOptions o = service_options(fx);
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSecret) k1 = dv_secret_new_random(DV_KEYS_DATA_KEY_LEN);
    g_autoptr(DvSecret) k1b = dv_secret_new_random(DV_KEYS_DATA_KEY_LEN);
    g_autoptr(DvSecret) loaded = NULL;
    g_autofree char *current = NULL;
    DvKeyProtector *p;

    init_container(fx);
    p = dv_directory_protector_new(&o, INSTALLATION_ID, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(p->kind, ==, "directory");
    g_assert_nonnull(dv_directory_protector_get_directory(p));

    g_assert_null(p->unwrap(p, "k1", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_true(p->wrap(p, "k1", k1, &error));
    g_assert_no_error(error);
    /* wrap() replaces, as the protector contract says. */
    g_assert_true(p->wrap(p, "k1", k1b, &error));
    g_assert_no_error(error);
    loaded = p->unwrap(p, "k1", &error);
    g_assert_no_error(error);
    g_assert_true(dv_secret_equal(loaded, k1b));
    g_assert_true(p->set_current(p, "k1", &error));
    g_assert_no_error(error);
    current = dv_directory_dup_current(dv_directory_protector_get_directory(p), &error);
    g_assert_no_error(error);
    g_assert_cmpstr(current, ==, "k1");
    dv_key_protector_free(p);
}

/* No server needed: options and files are checked before connecting. */
static void
test_bad_options(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("dv-directory-XXXXXX", NULL);
    g_autofree char *loose = g_build_filename(dir, "loose.pw", NULL);
    g_autofree char *empty = g_build_filename(dir, "empty.pw", NULL);
    DvDirectoryOptions o = { .conn = { .uri = "http://127.0.0.1/" }, .container_dn = "ou=keys,dc=x" };
    g_autoptr(DvDirectory) d = NULL;

    g_assert_null(dv_directory_new(&o, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "uri");
    g_clear_error(&error);

    o.conn.uri = "ldap://127.0.0.1:1";
    o.container_dn = "not a dn";
    g_assert_null(dv_directory_new(&o, &error));
    g_assert_cmpstr(dv_error_get_field(error), ==, "container_dn");
    g_clear_error(&error);

    o.container_dn = "ou=keys,dc=x";
    o.conn.bind_dn = "cn=svc,dc=x";
    g_assert_null(dv_directory_new(&o, &error));
    g_assert_cmpstr(dv_error_get_field(error), ==, "password");
    g_clear_error(&error);

    o.conn.bind_dn = NULL;
    o.conn.sasl_external = TRUE;
    g_assert_null(dv_directory_new(&o, &error));
    g_assert_cmpstr(dv_error_get_field(error), ==, "cert_file");
    g_clear_error(&error);

    /* A password file others may read is refused before any connection. */
    o.conn.sasl_external = FALSE;
    o.conn.bind_dn = "cn=svc,dc=x";
    o.conn.password_file = loose;
    g_assert_true(g_file_set_contents(loose, "pw\n", -1, NULL));
    g_assert_cmpint(g_chmod(loose, 0644), ==, 0);
    d = dv_directory_new(&o, &error);
    g_assert_no_error(error);
    g_assert_null(dv_directory_load_key(d, INSTALLATION_ID, "k1", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED);
    g_assert_nonnull(strstr(error->message, "other users"));
    g_clear_error(&error);
    g_clear_pointer(&d, dv_directory_free);

    o.conn.password_file = empty;
    g_assert_true(g_file_set_contents(empty, "\n", -1, NULL));
    g_assert_cmpint(g_chmod(empty, 0600), ==, 0);
    d = dv_directory_new(&o, &error);
    g_assert_no_error(error);
    g_assert_null(dv_directory_load_key(d, INSTALLATION_ID, "k1", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);

    /* Reserved and malformed key ids. */
    g_assert_null(dv_directory_load_key(d, INSTALLATION_ID, "current", &error));
    g_assert_cmpstr(dv_error_get_field(error), ==, "key_id");
    g_clear_error(&error);
    g_assert_null(dv_directory_load_key(d, INSTALLATION_ID, "k1,ou=x", &error));
    g_assert_cmpstr(dv_error_get_field(error), ==, "key_id");
    g_clear_error(&error);
    g_assert_null(dv_directory_load_key(d, "", "k1", &error));
    g_assert_cmpstr(dv_error_get_field(error), ==, "installation_id");

    g_unlink(loose);
    g_unlink(empty);
    g_rmdir(dir);
}

static void
test_ldap_missing(gconstpointer data)
{
    if (GPOINTER_TO_INT(data))
        g_test_fail_printf("DV_TEST_LDAP_URI is not set but services are required (CI=true or "
                           "DV_REQUIRE_SERVICES=1): run under tests/services/with-services");
    else
        g_test_skip("DV_TEST_LDAP_URI is not set; run under tests/services/with-services");
}

int
main(int argc, char **argv)
{
    const char *uri = g_getenv("DV_TEST_LDAP_URI");
    gboolean required = g_strcmp0(g_getenv("CI"), "true") == 0 ||
                        g_strcmp0(g_getenv("DV_REQUIRE_SERVICES"), "1") == 0;
    const struct {
        const char *name;
        void (*func)(Fixture *, gconstpointer);
    } tests[] = {
        { "roundtrip", test_roundtrip },
        { "sasl-external-cert", test_sasl_external_cert },
        { "group-member-reads", test_group_member_reads },
        { "others-cannot-read", test_others_cannot_read },
        { "permissive-acl-refused", test_permissive_acl_refused },
        { "proof-needs-working-identities", test_proof_needs_working_identities },
        { "wrong-installation", test_wrong_installation },
        { "bad-credentials", test_bad_credentials },
        { "server-down", test_server_down },
        { "server-hangs", test_server_hangs },
        { "ca-mismatch", test_ca_mismatch },
        { "protector", test_protector },
    };

    g_test_init(&argc, &argv, NULL);
    dv_secret_init_library();
    g_test_add_func("/drover/keys/directory/bad-options", test_bad_options);
    if (uri == NULL || uri[0] == '\0') {
        g_test_add_data_func("/drover/keys/directory/ldap-available", GINT_TO_POINTER(required),
                             test_ldap_missing);
        return g_test_run();
    }
    for (guint i = 0; i < G_N_ELEMENTS(tests); i++) {
        g_autofree char *path = g_strdup_printf("/drover/keys/directory/%s", tests[i].name);
        g_test_add(path, Fixture, NULL, fixture_setup, tests[i].func, fixture_teardown);
    }
    return g_test_run();
}
