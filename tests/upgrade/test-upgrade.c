#define G_LOG_DOMAIN "DvTestUpgrade"
/* drover-setup upgrade: every row of the seeds' service-account table
 * (../shared/seeds/002_*) as a scenario, plus failures and bad input.
 *
 * Each scenario makes an old installation with the current code at the
 * oldest released schema (dv-upgrade-fixture.c) for a real Unix account
 * (useradd, removed afterwards) on a private machine-id file and state
 * directory, optionally with the directory protector on the private slapd
 * and a recovery key; runs `drover-setup upgrade --plan -o json` for the new
 * machine, account and protectors, checks that nothing changed, runs
 * `drover-setup upgrade`, and checks secret by secret that what the new
 * service opens is exactly what the plan predicted.
 *
 * Runs as root (useradd, files for other uids).  The directory scenarios
 * need DV_TEST_LDAP_URI and the PostgreSQL one DV_TEST_PG_URI
 * (tests/services/with-services); without them they fail under CI=true or
 * DV_REQUIRE_SERVICES=1 and skip otherwise. */

#include "dv-config.h"
#include "dv-engine-directory.h"
#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-keys-directory.h"
#include "dv-keys.h"
#include "dv-upgrade-fixture.h"
#include "dv-upgrade.h"
#include "dv-test-pg.h"
#include "dv-test-util.h"
#include "dv-version.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <ldap.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MACHINE_A "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"
#define MACHINE_B "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"

/* --- scaffolding: temp dirs, users, the binary ----------------------------- */

typedef struct {
    char *tmpdir;
    char *state;
    char *db;
    char *machine_a;
    char *machine_b;
    char *user_a;
    char *user_b;
    char *container;
    char *pg_uri;
    char *pg_name;
} Fixture;

static char *
make_user(const char *suffix)
{
    char *name = g_strdup_printf("dvup%d%s", (int)getpid(), suffix);
    const char *argv[] = { "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                           name, NULL };
    g_autofree char *err = NULL;
    int rc = dv_test_spawn(argv, NULL, NULL, &err);
    g_assert_cmpint(rc, ==, 0);
    return name;
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    if (geteuid() != 0)
        g_error("the upgrade tests run as root (useradd, key files of other accounts)");
    dv_test_remove_stale_accounts("dvup"); /* dvup<pid>a, dvup<pid>b */
    f->tmpdir = g_dir_make_tmp("drover-upgrade-XXXXXX", &error);
    g_assert_no_error(error);
    f->state = g_build_filename(f->tmpdir, "state", NULL);
    f->db = g_build_filename(f->state, "drover.db", NULL);
    f->machine_a = g_build_filename(f->tmpdir, "machine-id-a", NULL);
    f->machine_b = g_build_filename(f->tmpdir, "machine-id-b", NULL);
    g_assert_true(g_file_set_contents(f->machine_a, MACHINE_A "\n", -1, NULL));
    g_assert_true(g_file_set_contents(f->machine_b, MACHINE_B "\n", -1, NULL));
    f->user_a = make_user("a");
    f->user_b = make_user("b");
}

static void
remove_container(const char *container);

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    if (f->container != NULL)
        remove_container(f->container);
    dv_test_pg_drop_database(f->pg_name);
    dv_test_remove_account(f->user_a);
    dv_test_remove_account(f->user_b);
    dv_test_rm_rf(f->tmpdir);
    g_free(f->tmpdir);
    g_free(f->state);
    g_free(f->db);
    g_free(f->machine_a);
    g_free(f->machine_b);
    g_free(f->user_a);
    g_free(f->user_b);
    g_free(f->container);
    g_free(f->pg_uri);
    g_free(f->pg_name);
}

/* @args (drover-setup's arguments, borrowed, without a NULL at the end)
 * as a NULL-terminated copy for the dv_test_*setup*() helpers. */
static GPtrArray *
args_terminated(GPtrArray *args)
{
    GPtrArray *v = g_ptr_array_copy(args, NULL, NULL);
    g_ptr_array_add(v, NULL);
    return v;
}

static int
run_setup(GPtrArray *args, char **ret_out, char **ret_err)
{
    g_autoptr(GPtrArray) v = args_terminated(args);
    return dv_test_run_setup((const char *const *)v->pdata, ret_out, ret_err);
}

static JsonObject *
parse_object(const char *text)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) node = json_from_string(text, &error);
    g_assert_no_error(error);
    g_assert_true(JSON_NODE_HOLDS_OBJECT(node));
    return json_object_ref(json_node_get_object(node));
}

/* --- the directory on the private slapd --------------------------------- */

static LDAP *
admin_ldapi(void)
{
    LDAP *ld = NULL;
    const int v3 = LDAP_VERSION3;
    struct berval no_authzid = { 0, "" };

    g_assert_cmpint(ldap_initialize(&ld, dv_test_env("DV_TEST_LDAPI_URI")), ==, LDAP_SUCCESS);
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
    g_assert_cmpint(ldap_sasl_bind_s(ld, NULL, "EXTERNAL", &no_authzid, NULL, NULL, NULL), ==, LDAP_SUCCESS);
    return ld;
}

/* Removes the container's ACL rule and entries (as the test's admin). */
static void
remove_container(const char *container)
{
    LDAP *ld = admin_ldapi();
    LDAPMessage *res = NULL;
    char *attrs[] = { "olcAccess", NULL };
    g_autoptr(GPtrArray) rules = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) dns = g_ptr_array_new_with_free_func(g_free);

    if (ldap_search_ext_s(ld, "olcDatabase={1}mdb,cn=config", LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0,
                          NULL, NULL, NULL, 0, &res) == LDAP_SUCCESS) {
        struct berval **vals = ldap_get_values_len(ld, ldap_first_entry(ld, res), "olcAccess");
        for (guint i = 0; vals != NULL && vals[i] != NULL; i++) {
            g_autofree char *v = g_strndup(vals[i]->bv_val, vals[i]->bv_len);
            if (strstr(v, container) != NULL)
                g_ptr_array_add(rules, g_steal_pointer(&v));
        }
        ldap_value_free_len(vals);
    }
    ldap_msgfree(res);
    res = NULL;
    if (rules->len > 0) {
        g_ptr_array_add(rules, NULL);
        LDAPMod del = { .mod_op = LDAP_MOD_DELETE, .mod_type = "olcAccess", .mod_values = (char **)rules->pdata };
        LDAPMod *mods[] = { &del, NULL };
        ldap_modify_ext_s(ld, "olcDatabase={1}mdb,cn=config", mods, NULL, NULL);
    }
    /* The rootDN of the data tree over ldapi as root: the mdb database
     * maps root's EXTERNAL identity to its rootDN in the test slapd? Use
     * the admin DN with its password instead. */
    ldap_unbind_ext_s(ld, NULL, NULL);
    {
        LDAP *admin = NULL;
        g_autofree char *pw = NULL;
        struct berval cred;
        const int v3 = LDAP_VERSION3;
        const int zero = 0;
        g_assert_true(
            g_file_get_contents(dv_test_env("DV_TEST_LDAP_ADMIN_PW_FILE"), &pw, NULL, NULL));
        g_assert_cmpint(ldap_initialize(&admin, dv_test_env("DV_TEST_LDAPS_URI")), ==,
                        LDAP_SUCCESS);
        ldap_set_option(admin, LDAP_OPT_PROTOCOL_VERSION, &v3);
        ldap_set_option(admin, LDAP_OPT_X_TLS_CACERTFILE, dv_test_env("DV_TEST_LDAP_CA"));
        ldap_set_option(admin, LDAP_OPT_X_TLS_NEWCTX, &zero);
        cred.bv_val = g_strchomp(pw);
        cred.bv_len = strlen(pw);
        g_assert_cmpint(ldap_sasl_bind_s(admin, dv_test_env("DV_TEST_LDAP_ADMIN_DN"),
                                         LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL),
                        ==, LDAP_SUCCESS);
        if (ldap_search_ext_s(admin, container, LDAP_SCOPE_SUBTREE, "(objectClass=*)", (char *[]){ "1.1", NULL },
                              0, NULL, NULL, NULL, 0, &res) == LDAP_SUCCESS) {
            for (LDAPMessage *e = ldap_first_entry(admin, res); e != NULL; e = ldap_next_entry(admin, e)) {
                char *dn = ldap_get_dn(admin, e);
                g_ptr_array_add(dns, g_strdup(dn));
                ldap_memfree(dn);
            }
        }
        ldap_msgfree(res);
        for (guint i = dns->len; i > 0; i--)
            ldap_delete_ext_s(admin, g_ptr_array_index(dns, i - 1), NULL, NULL);
        ldap_unbind_ext_s(admin, NULL, NULL);
    }
}

/* Makes the container (ACL: droverd writes, group drover-servers reads,
 * proved against the intruder) and writes <state>/directory.conf binding
 * as droverd.  Returns the protector (free with dv_key_protector_free). */
static DvKeyProtector *
make_directory(Fixture *f, const char *installation_hint, JsonObject **ret_config)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvDirectory) dir = NULL;
    g_autoptr(DvDirectorySettings) s = NULL;
    g_autofree char *conf = NULL;
    DvDirectoryConn intruder = { .bind_dn = dv_test_env("DV_TEST_LDAP_INTRUDER_DN"),
                                 .password_file = dv_test_env("DV_TEST_LDAP_INTRUDER_PW_FILE") };
    DvDirectoryConn config_admin = { .uri = dv_test_env("DV_TEST_LDAPI_URI"),
                                     .sasl_external = TRUE };
    DvDirectoryOptions o = { 0 };
    DvDirectoryInitOptions io = { 0 };
    DvKeyProtector *p;

    f->container = g_strdup_printf("ou=upgrade-%d-%08x,%s", (int)getpid(), g_random_int(),
                                   dv_test_env("DV_TEST_LDAP_BASE"));
    o.conn.uri = dv_test_env("DV_TEST_LDAP_URI");
    o.conn.bind_dn = dv_test_env("DV_TEST_LDAP_SERVICE_DN");
    o.conn.password_file = dv_test_env("DV_TEST_LDAP_SERVICE_PW_FILE");
    o.conn.ca_file = dv_test_env("DV_TEST_LDAP_CA");
    o.container_dn = f->container;
    dir = dv_directory_new(&o, &error);
    g_assert_no_error(error);
    io.admin.uri = dv_test_env("DV_TEST_LDAP_URI");
    io.admin.bind_dn = dv_test_env("DV_TEST_LDAP_ADMIN_DN");
    io.admin.password_file = dv_test_env("DV_TEST_LDAP_ADMIN_PW_FILE");
    io.admin.ca_file = dv_test_env("DV_TEST_LDAP_CA");
    io.config_admin = &config_admin;
    io.acl_mode = DV_DIRECTORY_ACL_OPENLDAP;
    io.service_dn = dv_test_env("DV_TEST_LDAP_SERVICE_DN");
    io.group_dn = dv_test_env("DV_TEST_LDAP_GROUP_DN");
    io.non_members = &intruder;
    io.n_non_members = 1;
    g_assert_true(dv_directory_init(dir, &io, &error));
    g_assert_no_error(error);

    g_assert_cmpint(g_mkdir_with_parents(f->state, 0700), ==, 0);
    s = dv_directory_settings_new(dv_test_env("DV_TEST_LDAP_URI"), f->container,
                                  dv_test_env("DV_TEST_LDAP_SERVICE_DN"),
                                  dv_test_env("DV_TEST_LDAP_SERVICE_PW_FILE"), FALSE,
                                  dv_test_env("DV_TEST_LDAP_CA"), NULL, NULL);
    conf = dv_directory_settings_path(f->state);
    g_assert_true(dv_directory_settings_save(s, conf, &error));
    g_assert_no_error(error);
    p = dv_directory_settings_protector(s, installation_hint, &error);
    g_assert_no_error(error);
    *ret_config = dv_directory_settings_to_config(s);
    return p;
}

/* --- the scenarios ------------------------------------------------------ */

typedef enum { ACCT_A, ACCT_B } Acct;

typedef struct {
    const char *name;
    /* the old installation */
    gboolean old_directory;     /* directory protector, service identity droverd */
    gboolean recovery;          /* a recovery key exists (and is given to the upgrade) */
    /* the new one */
    Acct new_account;
    gboolean new_machine;       /* machine B (the old one is A) */
    const char *new_dn_var;     /* NULL: no --service-dn; else the DV_TEST_LDAP_*_DN variable */
    gboolean drop_old_directory_conf; /* the administrator no longer holds the old identity */
    gboolean postgresql;
    /* what the plan must say for every key version */
    const char *verdict;
    const char *via;
    gboolean directory_admin;   /* --admin-dn: the directory administrator reads the keys */
} Scenario;

/* The seeds' table (service account before -> after, with/without
 * distributed key management = the directory protector), per machine. */
static const Scenario scenarios[] = {
    /* Local system -> local system: preserved either way. */
    { "local-local/no-directory", FALSE, FALSE, ACCT_A, FALSE, NULL, FALSE, FALSE, "preserved", "host" },
    { "local-local/directory", TRUE, FALSE, ACCT_A, FALSE, NULL, FALSE, FALSE, "preserved", "host" },
    /* Local system -> domain account: VMM loses it without DKM; the
     * administrator re-wraps it here. With the directory: preserved. */
    { "local-domain/no-directory", FALSE, FALSE, ACCT_B, FALSE, "DV_TEST_LDAP_SERVICE2_DN", FALSE, FALSE, "rewrap", "previous-host" },
    { "local-domain/directory", TRUE, FALSE, ACCT_B, FALSE, "DV_TEST_LDAP_SERVICE2_DN", FALSE, FALSE, "preserved", "directory" },
    /* Domain -> local system (N/A in VMM): re-wrapped from the old file. */
    { "domain-local/no-directory", FALSE, FALSE, ACCT_B, FALSE, NULL, FALSE, FALSE, "rewrap", "previous-host" },
    /* Same domain account: preserved (directory also on another machine). */
    { "same-domain/no-directory", FALSE, FALSE, ACCT_A, FALSE, "DV_TEST_LDAP_SERVICE_DN", FALSE, FALSE, "preserved", "host" },
    { "same-domain/directory/other-machine", TRUE, FALSE, ACCT_A, TRUE, "DV_TEST_LDAP_SERVICE_DN", FALSE, FALSE, "preserved", "directory" },
    /* Different domain account: VMM loses it; here the administrator
     * re-wraps from the old file (same machine) or from the directory as
     * the previous identity; lost when neither is held. */
    { "other-domain/no-directory", FALSE, FALSE, ACCT_B, FALSE, "DV_TEST_LDAP_SERVICE2_DN", FALSE, FALSE, "rewrap", "previous-host" },
    { "other-domain/directory/not-granted", TRUE, FALSE, ACCT_B, TRUE, "DV_TEST_LDAP_INTRUDER_DN", FALSE, FALSE, "rewrap", "previous-directory-identity" },
    { "other-domain/directory/not-granted/old-identity-gone", TRUE, FALSE, ACCT_B, TRUE, "DV_TEST_LDAP_INTRUDER_DN", TRUE, FALSE, "lost", NULL },
    { "other-domain/directory/not-granted/directory-admin", TRUE, FALSE, ACCT_B, TRUE, "DV_TEST_LDAP_INTRUDER_DN", TRUE, FALSE, "rewrap", "directory-admin", TRUE },
    { "other-domain/directory/granted", TRUE, FALSE, ACCT_B, TRUE, "DV_TEST_LDAP_SERVICE2_DN", FALSE, FALSE, "preserved", "directory" },
    /* Another machine without the directory: lost (the seeds' remote
     * upgrade), unless the recovery key is given. */
    { "other-machine/no-directory", FALSE, FALSE, ACCT_A, TRUE, NULL, FALSE, FALSE, "lost", NULL },
    { "other-machine/recovery-key", FALSE, TRUE, ACCT_A, TRUE, NULL, FALSE, FALSE, "rewrap", "recovery" },
    { "other-machine/other-account/recovery-key", FALSE, TRUE, ACCT_B, TRUE, NULL, FALSE, FALSE, "rewrap", "recovery" },
    /* PostgreSQL. */
    { "postgresql/local-domain", FALSE, FALSE, ACCT_B, FALSE, NULL, FALSE, TRUE, "rewrap", "previous-host" },
    { "postgresql/same", FALSE, FALSE, ACCT_A, FALSE, NULL, FALSE, TRUE, "preserved", "host" },
};

/* Is this secret (type, object id, field) listed for re-entry? */
static gboolean
in_reentry(JsonArray *reentry, const char *type, const char *id, const char *field)
{
    for (guint i = 0; i < json_array_get_length(reentry); i++) {
        JsonObject *e = json_array_get_object_element(reentry, i);
        if (g_strcmp0(dv_json_get_string(e, "object_type", ""), type) == 0 &&
            g_strcmp0(dv_json_get_string(e, "object_id", ""), id) == 0 &&
            g_strcmp0(dv_json_get_string(e, "field", ""), field) == 0)
            return TRUE;
    }
    return FALSE;
}

static void
add_common_args(GPtrArray *a, Fixture *f, const Scenario *sc, const char *machine, const char *user)
{
    g_ptr_array_add(a, "--state-dir");
    g_ptr_array_add(a, f->state);
    if (f->pg_uri != NULL) {
        g_ptr_array_add(a, "--database");
        g_ptr_array_add(a, f->pg_uri);
    }
    g_ptr_array_add(a, "--machine-id-file");
    g_ptr_array_add(a, (char *)machine);
    g_ptr_array_add(a, "--service-account");
    g_ptr_array_add(a, (char *)user);
    g_ptr_array_add(a, "--library-share");
    g_ptr_array_add(a, "use-default");
    if (sc != NULL && sc->new_dn_var != NULL && (sc->old_directory || sc->new_dn_var != NULL)) {
        g_autofree char *pw_var = g_strdup_printf("%.*s_PW_FILE", (int)(strlen(sc->new_dn_var) - 3),
                                                  sc->new_dn_var);
        g_ptr_array_add(a, "--service-dn");
        g_ptr_array_add(a, (char *)dv_test_env(sc->new_dn_var));
        g_ptr_array_add(a, "--service-password-file");
        g_ptr_array_add(a, (char *)dv_test_env(pw_var));
    }
}

static char *pg_shape(const char *uri);

static void
test_scenario(Fixture *f, gconstpointer data)
{
    const Scenario *sc = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) config = NULL;
    g_autoptr(JsonObject) plan = NULL;
    g_autoptr(JsonObject) report = NULL;
    g_autoptr(GPtrArray) args = g_ptr_array_new();
    g_autofree char *recovery = g_build_filename(f->tmpdir, "recovery.key", NULL);
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autofree char *before_db = NULL;
    g_autofree char *before_state = NULL;
    DvKeyProtector *dir_protector = NULL;
    const char *new_user = sc->new_account == ACCT_A ? f->user_a : f->user_b;
    const char *new_machine = sc->new_machine ? f->machine_b : f->machine_a;
    JsonArray *keys;
    JsonArray *reentry;
    guint n_expected_open = 0;

    if ((sc->old_directory || sc->new_dn_var != NULL) &&
        !dv_test_have_service("DV_TEST_LDAP_URI", "private slapd"))
        return;
    if (sc->postgresql) {
        if (!dv_test_have_service("DV_TEST_PG_URI", "PostgreSQL"))
            return;
        f->pg_uri = dv_test_pg_new_database("dv_upgrade", &f->pg_name);
    }

    /* The old installation: account A on machine A. */
    {
        DvFixtureOptions fo = {
            .state_dir = f->state,
            .database = f->pg_uri,
            .machine_id_path = f->machine_a,
            .account = f->user_a,
            .rotate = TRUE,
            .recovery_key_out = sc->recovery ? recovery : NULL,
        };
        if (sc->old_directory) {
            /* The installation id is only known once the database exists:
             * the fixture writes it; make the protector for it after. */
            g_autofree char *inst = NULL;
            {
                g_autoptr(DvStore) s = NULL;
                g_autoptr(JsonObject) row = NULL;
                g_autofree char *loc = f->pg_uri != NULL ? g_strdup(f->pg_uri) : g_strdup(f->db);
                g_assert_cmpint(g_mkdir_with_parents(f->state, 0700), ==, 0);
                s = dv_store_open(loc, 0, &error);
                g_assert_no_error(error);
                g_assert_true(dv_store_migrate_to(s, dv_fixture_oldest_schema(), &error));
                inst = g_uuid_string_random();
                row = json_object_new();
                json_object_set_string_member(row, "id", "fixture-installation");
                json_object_set_string_member(row, "name", "installation_id");
                json_object_set_string_member(row, "value", inst);
                json_object_set_int_member(row, "updated_at", dv_store_now());
                g_assert_true(dv_store_insert(s, &dv_table_settings, row, &error));
            }
            dir_protector = make_directory(f, inst, &config);
            fo.directory = dir_protector;
            fo.directory_config = config;
        }
        g_assert_true(dv_fixture_make(&fo, &error));
        g_assert_no_error(error);
    }
    /* The state directory belongs to the old account, as install made it. */
    if (sc->drop_old_directory_conf) {
        g_autofree char *conf = dv_directory_settings_path(f->state);
        g_assert_cmpint(g_unlink(conf), ==, 0);
        g_ptr_array_add(args, "--ldap-uri");
        g_ptr_array_add(args, (char *)dv_test_env("DV_TEST_LDAP_URI"));
        g_ptr_array_add(args, "--container");
        g_ptr_array_add(args, f->container);
        g_ptr_array_add(args, "--ca-file");
        g_ptr_array_add(args, (char *)dv_test_env("DV_TEST_LDAP_CA"));
    }
    if (sc->recovery) {
        g_ptr_array_add(args, "--recovery-key");
        g_ptr_array_add(args, recovery);
    }
    if (sc->directory_admin) {
        g_ptr_array_add(args, "--admin-dn");
        g_ptr_array_add(args, (char *)dv_test_env("DV_TEST_LDAP_ADMIN_DN"));
        g_ptr_array_add(args, "--admin-password-file");
        g_ptr_array_add(args, (char *)dv_test_env("DV_TEST_LDAP_ADMIN_PW_FILE"));
    }
    add_common_args(args, f, sc, new_machine, new_user);

    /* The plan changes nothing. */
    if (f->pg_uri == NULL)
        before_db = dv_test_file_sha256(f->db);
    else
        before_db = pg_shape(f->pg_uri);
    before_state = dv_test_tree_snapshot(f->state, DV_TEST_TREE_TIMES);
    g_ptr_array_insert(args, 0, "upgrade");
    g_ptr_array_insert(args, 1, "--plan");
    g_ptr_array_insert(args, 2, "-o");
    g_ptr_array_insert(args, 3, "json");
    {
        int rc = run_setup(args, &out, &err);
        gboolean lost = g_str_equal(sc->verdict, "lost");
        g_assert_cmpint(rc, ==, lost ? 10 : 0);
    }
    dv_test_assert_tree_unchanged(f->state, DV_TEST_TREE_TIMES, before_state);
    {
        g_autofree char *after_db =
            f->pg_uri == NULL ? dv_test_file_sha256(f->db) : pg_shape(f->pg_uri);
        g_assert_cmpstr(before_db, ==, after_db);
    }
    plan = parse_object(out);
    keys = json_object_get_array_member(plan, "keys");
    g_assert_cmpuint(json_array_get_length(keys), ==, 2);
    for (guint i = 0; i < json_array_get_length(keys); i++) {
        JsonObject *k = json_array_get_object_element(keys, i);
        g_test_message("%s: %s via %s (%s)", dv_json_get_string(k, "key_id", ""),
                       dv_json_get_string(k, "verdict", ""), dv_json_get_string(k, "via", "-"),
                       dv_json_get_string(k, "reason", ""));
        g_assert_cmpstr(dv_json_get_string(k, "verdict", ""), ==, sc->verdict);
        g_assert_cmpstr(dv_json_get_string(k, "via", NULL), ==, sc->via);
    }
    reentry = json_object_get_array_member(plan, "reentry");
    g_assert_cmpint(dv_json_get_int(json_object_get_object_member(plan, "secrets"), "total", 0), ==,
                    dv_fixture_n_secrets());
    g_assert_cmpuint(json_array_get_length(reentry), ==,
                     g_str_equal(sc->verdict, "lost") ? dv_fixture_n_secrets() : 0);

    /* The upgrade. */
    g_ptr_array_remove_index(args, 1); /* --plan */
    if (g_str_equal(sc->verdict, "lost")) {
        g_autofree char *out2 = NULL;
        g_assert_cmpint(run_setup(args, &out2, NULL), ==, 10); /* refused without the flag */
        g_ptr_array_add(args, "--accept-unreadable-secrets");
    }
    g_clear_pointer(&out, g_free);
    g_assert_cmpint(run_setup(args, &out, &err), ==, 0);
    report = parse_object(out);
    g_assert_cmpint(dv_json_get_int(report, "to_schema", 0), ==, dv_store_get_known_version());
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(report, "secrets_to_reenter")), ==,
                     json_array_get_length(reentry));

    /* Secret by secret: the new service (its account's host key file on
     * its machine, the directory as its identity) opens exactly what the
     * plan said. */
    {
        g_autofree char *loc = f->pg_uri != NULL ? g_strdup(f->pg_uri) : g_strdup(f->db);
        g_autoptr(DvStore) store = dv_store_open(loc, DV_STORE_OPEN_CHECK_ONLY, &error);
        struct passwd *pw = getpwnam(new_user);
        DvKeyProtector *svc_dir = NULL;
        g_autoptr(DvKeyring) ring = NULL;
        g_autoptr(DvDirectorySettings) ds = NULL;
        g_autoptr(JsonObject) inst = NULL;
        DvKeyringOptions ko = {
            .state_dir = f->state,
            .machine_id_path = new_machine,
            .host_account_set = TRUE,
            .host_uid = pw->pw_uid,
            .host_user = new_user,
        };
        g_assert_no_error(error);
        inst = dv_store_find(store, &dv_table_settings, "name", "installation_id", &error);
        g_assert_no_error(error);
        if (g_file_test(dv_directory_settings_path(f->state), G_FILE_TEST_EXISTS)) {
            g_autofree char *conf = dv_directory_settings_path(f->state);
            ds = dv_directory_settings_load(conf, &error);
            g_assert_no_error(error);
            svc_dir = dv_directory_settings_protector(ds, dv_json_get_string(inst, "value", ""), &error);
            g_assert_no_error(error);
            ko.protectors = &svc_dir;
            ko.n_protectors = 1;
        }
        ring = dv_keyring_open(store, &ko, &error);
        g_assert_no_error(error);
        for (guint i = 0; i < dv_fixture_n_secrets(); i++) {
            g_auto(GStrv) parts = g_strsplit(dv_fixture_secrets[i][0], "/", 0);
            guint n = g_strv_length(parts);
            const char *table = g_str_equal(parts[0], "run-as")             ? "run_as_accounts"
                                : g_str_equal(parts[0], "guest-os-profile") ? "guest_os_profiles"
                                                                            : "app_settings";
            const DvTableDef *def = g_str_equal(table, "run_as_accounts")     ? &dv_table_run_as_accounts
                                    : g_str_equal(table, "guest_os_profiles") ? &dv_table_guest_os_profiles
                                                                              : &dv_table_app_settings;
            g_autoptr(JsonObject) obj = dv_store_find(store, def, "name", parts[n - 2], &error);
            g_autoptr(DvSecret) s = NULL;
            g_autoptr(GError) open_error = NULL;
            const char *id;
            gboolean predicted_open;
            g_assert_no_error(error);
            id = dv_json_get_string(obj, "id", "");
            predicted_open = !in_reentry(reentry, parts[0], id, parts[n - 1]);
            s = dv_keyring_load_secret(ring, store, parts[0], id, parts[n - 1], &open_error);
            g_test_message("%s: plan %s, after the upgrade %s", dv_fixture_secrets[i][0],
                           predicted_open ? "readable" : "re-entry", s != NULL ? "opens" : open_error->message);
            g_assert_cmpint(s != NULL, ==, predicted_open);
            if (s != NULL) {
                g_assert_cmpstr(dv_secret_get_string(s), ==, dv_fixture_secrets[i][1]);
                n_expected_open++;
            } else {
                /* Never blanked: the ciphertext is still there. */
                g_assert_error(open_error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE);
            }
        }
        dv_keyring_free(g_steal_pointer(&ring));
        dv_key_protector_free(svc_dir);
    }
    g_assert_cmpuint(n_expected_open, ==, g_str_equal(sc->verdict, "lost") ? 0 : dv_fixture_n_secrets());

    /* The report is kept. */
    {
        g_autoptr(GPtrArray) ra = g_ptr_array_new();
        g_autofree char *rout = NULL;
        g_autoptr(JsonObject) stored = NULL;
        g_ptr_array_add(ra, "upgrade");
        g_ptr_array_add(ra, "--report");
        g_ptr_array_add(ra, "-o");
        g_ptr_array_add(ra, "json");
        g_ptr_array_add(ra, "--state-dir");
        g_ptr_array_add(ra, f->state);
        if (f->pg_uri != NULL) {
            g_ptr_array_add(ra, "--database");
            g_ptr_array_add(ra, f->pg_uri);
        }
        g_assert_cmpint(run_setup(ra, &rout, NULL), ==, 0);
        stored = parse_object(rout);
        g_assert_cmpstr(dv_json_get_string(stored, "to_version", ""), ==, DV_VERSION);
    }
    dv_key_protector_free(dir_protector);
}

/* --- failures ------------------------------------------------------------ */

static void
make_old(Fixture *f, gboolean queued_job)
{
    g_autoptr(GError) error = NULL;
    DvFixtureOptions fo = {
        .state_dir = f->state,
        .machine_id_path = f->machine_a,
        .account = f->user_a,
        .rotate = TRUE,
        .queued_job = queued_job,
    };
    g_assert_true(dv_fixture_make(&fo, &error));
    g_assert_no_error(error);
}

static GPtrArray *
upgrade_args(Fixture *f, gboolean plan)
{
    GPtrArray *a = g_ptr_array_new();
    g_ptr_array_add(a, "upgrade");
    if (plan)
        g_ptr_array_add(a, "--plan");
    add_common_args(a, f, NULL, f->machine_a, f->user_a);
    return a;
}

/* The old version can still start: schema as it was, no dirty row, every
 * key opens for the old account. */
static void
assert_old_installation_starts(Fixture *f)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvStore) store = dv_store_open(f->db, 0, &error);
    struct passwd *pw = getpwnam(f->user_a);
    DvKeyringOptions ko = {
        .state_dir = f->state,
        .machine_id_path = f->machine_a,
        .host_account_set = TRUE,
        .host_uid = pw->pw_uid,
        .host_user = f->user_a,
    };
    g_autoptr(DvKeyring) ring = NULL;
    g_autoptr(JsonArray) check = NULL;

    g_assert_no_error(error);
    g_assert_cmpuint(dv_store_get_schema_version(store, NULL), ==, dv_fixture_oldest_schema());
    ring = dv_keyring_open(store, &ko, &error);
    g_assert_no_error(error);
    check = dv_keyring_check(ring, &error);
    g_assert_no_error(error);
    for (guint i = 0; i < json_array_get_length(check); i++)
        g_assert_true(dv_json_get_bool(json_array_get_object_element(check, i), "open", FALSE));
}

static void
test_fail_half_way(Fixture *f, gconstpointer data)
{
    g_autoptr(GPtrArray) args = NULL;
    g_autofree char *before = NULL;
    g_autofree char *err = NULL;
    g_autofree char *last = g_strdup_printf("%u", dv_store_get_known_version());

    make_old(f, FALSE);
    before = dv_test_file_sha256(f->db);
    args = upgrade_args(f, FALSE);
    /* The last migration fails: every earlier one was applied in the same
     * transaction and must be gone too. */
    g_setenv("DV_TEST_FAIL_MIGRATION", last, TRUE);
    g_assert_cmpint(run_setup(args, NULL, &err), !=, 0);
    g_unsetenv("DV_TEST_FAIL_MIGRATION");
    g_assert_nonnull(strstr(err, "rolled back"));
    dv_test_assert_file_unchanged(f->db, before);
    assert_old_installation_starts(f);
    /* A backup was taken before migrating. */
    {
        g_autofree char *backups = g_build_filename(f->state, "backups", NULL);
        g_autoptr(GDir) d = g_dir_open(backups, 0, NULL);
        g_assert_nonnull(d);
        g_assert_nonnull(g_dir_read_name(d));
    }
}

/* PostgreSQL: the tables and schema history as text. */
static char *
pg_shape(const char *uri)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvDb) db = dv_db_open(uri, &error);
    g_autoptr(DvSqlRows) tables = NULL;
    g_autoptr(DvSqlRows) hist = NULL;
    GString *s = g_string_new(NULL);

    g_assert_no_error(error);
    tables = dv_db_query(db, "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
                             "ORDER BY table_name", DV_SQL_NO_ARGS, &error);
    g_assert_no_error(error);
    for (guint r = 0; r < dv_sql_rows_get_n_rows(tables); r++) {
        g_autofree char *sql = g_strdup_printf("SELECT COUNT(*) FROM %s", dv_sql_rows_get_text(tables, r, 0));
        g_autoptr(DvSqlRows) n = dv_db_query(db, sql, DV_SQL_NO_ARGS, &error);
        g_assert_no_error(error);
        g_string_append_printf(s, "%s %s\n", dv_sql_rows_get_text(tables, r, 0), dv_sql_rows_get_text(n, 0, 0));
    }
    hist = dv_db_query(db, "SELECT version, checksum, success FROM schema_history ORDER BY version", DV_SQL_NO_ARGS,
                       &error);
    g_assert_no_error(error);
    for (guint r = 0; r < dv_sql_rows_get_n_rows(hist); r++)
        g_string_append_printf(s, "history %s %s %s\n", dv_sql_rows_get_text(hist, r, 0),
                               dv_sql_rows_get_text(hist, r, 1), dv_sql_rows_get_text(hist, r, 2));
    return g_string_free(s, FALSE);
}

/* PostgreSQL: a migration that fails half-way leaves every table, row and
 * history entry as it was. */
static void
test_fail_half_way_pg(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) args = g_ptr_array_new();
    g_autofree char *before = NULL;
    g_autofree char *after = NULL;
    g_autofree char *err = NULL;
    g_autofree char *last = g_strdup_printf("%u", dv_store_get_known_version());
    DvFixtureOptions fo = { .state_dir = f->state, .machine_id_path = f->machine_a, .account = f->user_a, .rotate = TRUE };

    if (!dv_test_have_service("DV_TEST_PG_URI", "PostgreSQL"))
        return;
    f->pg_uri = dv_test_pg_new_database("dv_upgrade", &f->pg_name);
    fo.database = f->pg_uri;
    g_assert_true(dv_fixture_make(&fo, &error));
    g_assert_no_error(error);
    before = pg_shape(f->pg_uri);
    g_ptr_array_add(args, "upgrade");
    add_common_args(args, f, NULL, f->machine_a, f->user_a);
    g_setenv("DV_TEST_FAIL_MIGRATION", last, TRUE);
    g_assert_cmpint(run_setup(args, NULL, &err), !=, 0);
    g_unsetenv("DV_TEST_FAIL_MIGRATION");
    g_assert_nonnull(strstr(err, "rolled back"));
    after = pg_shape(f->pg_uri);
    g_assert_cmpstr(before, ==, after);
    /* Then to the end. */
    g_assert_cmpint(run_setup(args, NULL, NULL), ==, 0);
}

/* A failure after the migration committed and the keys were re-wrapped for
 * another account: the backup is restored, the old installation starts. */
static void
test_fail_after_migration(Fixture *f, gconstpointer data)
{
    g_autoptr(GPtrArray) args = g_ptr_array_new();
    g_autofree char *err = NULL;
    g_autofree char *key = g_build_filename(f->state, "keys", "host.key", NULL);
    g_autofree char *key_before = NULL;
    struct stat st;

    make_old(f, FALSE);
    key_before = dv_test_file_sha256(key);
    g_ptr_array_add(args, "upgrade");
    add_common_args(args, f, NULL, f->machine_a, f->user_b); /* re-wraps for user b */
    g_setenv("DV_TEST_FAIL_AFTER_MIGRATION", "1", TRUE);
    g_assert_cmpint(run_setup(args, NULL, &err), !=, 0);
    g_unsetenv("DV_TEST_FAIL_AFTER_MIGRATION");
    g_assert_nonnull(strstr(err, "was restored"));
    assert_old_installation_starts(f);
    dv_test_assert_file_unchanged(key, key_before);
    g_assert_cmpint(stat(key, &st), ==, 0);
    g_assert_cmpuint(st.st_uid, ==, getpwnam(f->user_a)->pw_uid);
}

static void
test_killed_during_migration(Fixture *f, gconstpointer data)
{
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(GPtrArray) v = NULL;
    g_autoptr(GPtrArray) argv = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_PIPE |
                                                                 G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
    g_autoptr(GSubprocess) p = NULL;
    g_autoptr(GDataInputStream) in = NULL;
    g_autofree char *before = NULL;
    g_autofree char *first = g_strdup_printf("%u", dv_fixture_oldest_schema() + 1);
    gboolean paused = FALSE;

    make_old(f, FALSE);
    before = dv_test_file_sha256(f->db);
    args = upgrade_args(f, FALSE);
    v = args_terminated(args);
    argv = dv_test_setup_argv_new((const char *const *)v->pdata);
    g_subprocess_launcher_setenv(l, "DV_TEST_PAUSE_MIGRATION", first, TRUE);
    p = g_subprocess_launcher_spawnv(l, (const char *const *)argv->pdata, &error);
    g_assert_no_error(error);
    in = g_data_input_stream_new(g_subprocess_get_stderr_pipe(p));
    for (;;) {
        g_autofree char *line = g_data_input_stream_read_line_utf8(in, NULL, NULL, &error);
        if (line == NULL)
            break;
        g_test_message("child: %s", line);
        if (g_str_has_prefix(line, "DV_TEST_PAUSE_MIGRATION")) {
            paused = TRUE;
            break;
        }
    }
    g_assert_true(paused);
    g_subprocess_send_signal(p, SIGKILL);
    g_subprocess_wait(p, NULL, NULL);
    g_assert_true(g_subprocess_get_if_signaled(p));
    dv_test_assert_file_unchanged(f->db, before);
    assert_old_installation_starts(f);
    /* Opening it (WAL replay) changed nothing either. */
    dv_test_assert_file_unchanged(f->db, before);
    /* And the upgrade can be run again to the end. */
    g_assert_cmpint(run_setup(args, NULL, NULL), ==, 0);
}

static void
test_disk_full(Fixture *f, gconstpointer data)
{
    g_autofree char *small = g_build_filename(f->tmpdir, "small", NULL);
    g_autoptr(GPtrArray) args = NULL;
    g_autofree char *err = NULL;
    g_autofree char *before = NULL;

    make_old(f, FALSE);
    before = dv_test_file_sha256(f->db);
    g_assert_cmpint(g_mkdir(small, 0700), ==, 0);
    g_assert_cmpint(mount("tmpfs", small, "tmpfs", 0, "size=64k"), ==, 0);
    args = upgrade_args(f, FALSE);
    g_ptr_array_add(args, "--backup-dir");
    g_ptr_array_add(args, small);
    g_assert_cmpint(run_setup(args, NULL, &err), ==, 7);
    umount(small);
    g_assert_nonnull(strstr(err, "not enough space"));
    g_assert_nonnull(strstr(err, "nothing was migrated"));
    dv_test_assert_file_unchanged(f->db, before);
    assert_old_installation_starts(f);
}

/* --- known issues --------------------------------------------------------- */

static JsonObject *
issue(JsonObject *plan, const char *code)
{
    JsonArray *issues = json_object_get_array_member(plan, "issues");
    for (guint i = 0; i < json_array_get_length(issues); i++) {
        JsonObject *is = json_array_get_object_element(issues, i);
        if (g_strcmp0(dv_json_get_string(is, "code", ""), code) == 0)
            return is;
    }
    return NULL;
}

static JsonObject *
plan_json(Fixture *f, GPtrArray *extra, int want_rc)
{
    g_autoptr(GPtrArray) a = upgrade_args(f, TRUE);
    g_autofree char *out = NULL;
    g_ptr_array_add(a, "-o");
    g_ptr_array_add(a, "json");
    for (guint i = 0; extra != NULL && i < extra->len; i++)
        g_ptr_array_add(a, g_ptr_array_index(extra, i));
    g_assert_cmpint(run_setup(a, &out, NULL), ==, want_rc);
    return parse_object(out);
}

static void
test_known_issues(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonObject) plan = NULL;
    g_autoptr(GPtrArray) a = NULL;
    g_autofree char *err = NULL;
    JsonObject *is;

    make_old(f, TRUE);
    plan = plan_json(f, NULL, 10);
    /* A queued job blocks. */
    is = issue(plan, "jobs-active");
    g_assert_nonnull(is);
    g_assert_true(dv_json_get_bool(is, "blocking", FALSE));
    /* Host limits below the defaults: a note, kept. */
    is = issue(plan, "host-limits-below-defaults");
    g_assert_nonnull(is);
    g_assert_false(dv_json_get_bool(is, "blocking", TRUE));
    g_assert_nonnull(strstr(dv_json_get_string(is, "message", ""), "not reset"));
    /* kvm1 (2 connections, 4 operations) and kvm2 (4 connections: the
     * default of 0.1.0, below today's 16). */
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(is, "objects")), ==, 2);
    /* Mixed hypervisor majors in cluster prod. */
    g_assert_nonnull(issue(plan, "cluster-mixed-hypervisor"));
    /* use-default was given by upgrade_args: the share clash is a note. */
    is = issue(plan, "library-share-clash");
    g_assert_nonnull(is);
    g_assert_false(dv_json_get_bool(is, "blocking", TRUE));

    /* The upgrade refuses while the job is queued and changes nothing. */
    a = upgrade_args(f, FALSE);
    {
        g_autofree char *before = dv_test_file_sha256(f->db);
        g_assert_cmpint(run_setup(a, NULL, &err), ==, 10);
        dv_test_assert_file_unchanged(f->db, before);
    }
    /* Cancel it (as droverd would mark it), then with --reset-host-limits. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(DvStore) s = dv_store_open(f->db, 0, &error);
        g_assert_true(dv_db_exec(dv_store_get_db(s), "UPDATE jobs SET state = 'cancelled'", DV_SQL_NO_ARGS, NULL,
                                 &error));
    }
    g_ptr_array_add(a, "--reset-host-limits");
    g_assert_cmpint(run_setup(a, NULL, NULL), ==, 0);
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(DvStore) s = dv_store_open(f->db, DV_STORE_OPEN_CHECK_ONLY, &error);
        g_autoptr(DvSqlRows) rows = dv_db_query(dv_store_get_db(s),
                                                "SELECT COUNT(*) FROM hosts WHERE max_connections < 16 OR max_concurrent_operations < 16",
                                                DV_SQL_NO_ARGS, &error);
        g_autoptr(DvSqlRows) share = dv_db_query(dv_store_get_db(s), "SELECT is_default FROM library_shares WHERE name = 'default'",
                                                 DV_SQL_NO_ARGS, &error);
        g_assert_no_error(error);
        g_assert_cmpint(dv_sql_rows_get_int(rows, 0, 0), ==, 0);
        g_assert_cmpint(dv_sql_rows_get_int(share, 0, 0), ==, 1);
    }
}

static void
test_library_share_choice(Fixture *f, gconstpointer data)
{
    g_autoptr(GPtrArray) base = g_ptr_array_new();
    g_autoptr(GPtrArray) a = g_ptr_array_new();
    g_autofree char *out = NULL;
    g_autoptr(JsonObject) plan = NULL;
    g_autofree char *newshare = g_build_filename(f->tmpdir, "lib2", NULL);
    g_autofree char *choice = g_strdup_printf("library2=%s", newshare);
    JsonObject *is;

    make_old(f, FALSE);
    /* Without a choice the clash blocks, and names both offers. */
    g_ptr_array_add(a, "upgrade");
    g_ptr_array_add(a, "--plan");
    g_ptr_array_add(a, "-o");
    g_ptr_array_add(a, "json");
    g_ptr_array_add(a, "--state-dir");
    g_ptr_array_add(a, f->state);
    g_ptr_array_add(a, "--machine-id-file");
    g_ptr_array_add(a, f->machine_a);
    g_ptr_array_add(a, "--service-account");
    g_ptr_array_add(a, f->user_a);
    g_assert_cmpint(run_setup(a, &out, NULL), ==, 10);
    plan = parse_object(out);
    is = issue(plan, "library-share-clash");
    g_assert_nonnull(is);
    g_assert_true(dv_json_get_bool(is, "blocking", FALSE));
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(is, "options")), ==, 3);
    /* Register a new one. */
    g_ptr_array_remove_index(a, 1);
    g_ptr_array_add(a, "--library-share");
    g_ptr_array_add(a, choice);
    g_assert_cmpint(run_setup(a, NULL, NULL), ==, 0);
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(DvStore) s = dv_store_open(f->db, DV_STORE_OPEN_CHECK_ONLY, &error);
        g_autoptr(JsonObject) share = dv_store_find(s, &dv_table_library_shares, "name", "library2", &error);
        g_assert_no_error(error);
        g_assert_true(dv_json_get_bool(share, "is_default", FALSE));
        g_assert_cmpstr(dv_json_get_string(share, "path", ""), ==, newshare);
    }
}

static void
insert_server(Fixture *f, const char *version)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvStore) s = dv_store_open(f->db, 0, &error);
    g_autofree char *id = g_uuid_string_random();
    g_assert_true(dv_db_exec(dv_store_get_db(s),
                             "INSERT INTO servers (id, hostname, pid, version, started_at, heartbeat_at) VALUES (?, 'other-node', 4242, ?, ?, ?)",
                             DV_SQL_ARGS(DV_SQL_TEXT_P(id), DV_SQL_TEXT_P(version), DV_SQL_INT_P(dv_store_now()),
                                         DV_SQL_INT_P(dv_store_now())),
                             NULL, &error));
    g_assert_no_error(error);
}

static void
test_version_skew(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonObject) plan = NULL;
    guint n = 0;
    const DvRelease *r = dv_version_get_releases(&n);
    JsonObject *is;

    make_old(f, FALSE);
    /* A live server one step behind: a rolling upgrade, allowed. */
    insert_server(f, r[n - 2].version);
    plan = plan_json(f, NULL, 0);
    is = issue(plan, "rolling-upgrade");
    g_assert_nonnull(is);
    g_assert_nonnull(strstr(dv_json_get_string(is, "message", ""), r[n - 2].version));
    g_clear_pointer(&plan, json_object_unref);
    /* One older than any release this build knows: refused, both named. */
    insert_server(f, "0.0.1");
    plan = plan_json(f, NULL, 10);
    is = issue(plan, "version-skew");
    g_assert_nonnull(is);
    g_assert_true(dv_json_get_bool(is, "blocking", FALSE));
    g_assert_nonnull(strstr(dv_json_get_string(is, "message", ""), "0.0.1"));
    g_assert_nonnull(strstr(dv_json_get_string(is, "message", ""), DV_VERSION));
}

static void
test_version_rules(void)
{
    g_autoptr(GError) error = NULL;
    guint n = 0;
    const DvRelease *r = dv_version_get_releases(&n);
    int steps = 0;

    g_assert_cmpstr(r[n - 1].version, ==, DV_VERSION);
    g_assert_cmpuint(r[n - 1].schema, ==, dv_store_get_known_version());
    for (guint i = 1; i < n; i++) {
        g_assert_cmpint(dv_version_compare(r[i - 1].version, r[i].version), <, 0);
        g_assert_cmpuint(r[i - 1].schema, <=, r[i].schema);
    }
    g_assert_cmpint(dv_version_compare("0.10.0", "0.9.1"), >, 0);
    g_assert_true(dv_version_steps(r[0].version, DV_VERSION, &steps));
    g_assert_cmpint(steps, ==, (int)n - 1);
    g_assert_true(dv_version_check_skew(DV_VERSION, r[n - 2].version, "x", &error));
    g_assert_true(dv_version_check_skew(DV_VERSION, "99.0.0", "x", &error)); /* the newer judges */
    g_assert_false(dv_version_check_skew(DV_VERSION, "0.0.1", "server y", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_nonnull(strstr(error->message, "0.0.1"));
    g_assert_cmpstr(dv_version_for_schema(r[0].schema), ==, r[0].version);

    /* With three releases: one step is fine, a skipped step names the order. */
    {
        static const DvRelease three[] = { { "1.0.0", 3 }, { "1.1.0", 5 }, { "1.2.0", 7 } };
        g_autoptr(GError) skip = NULL;
        dv_version_set_releases_for_test(three, G_N_ELEMENTS(three));
        g_assert_true(dv_version_check_skew("1.2.0", "1.1.0", "server a", NULL));
        g_assert_false(dv_version_check_skew("1.2.0", "1.0.0", "server b", &skip));
        g_assert_error(skip, DV_ERROR, DV_ERROR_CONFLICT);
        g_assert_nonnull(strstr(skip->message, "server b runs Drover 1.0.0 and this is Drover 1.2.0"));
        g_assert_nonnull(strstr(skip->message, "1.0.0 -> 1.1.0 -> 1.2.0"));
        g_assert_cmpstr(dv_version_for_schema(6), ==, "1.1.0");
        dv_version_set_releases_for_test(NULL, 0);
    }
}

/* droverd refuses an older schema and says to run drover-setup upgrade. */
static void
test_server_refuses_old_schema(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvEngine) engine = NULL;
    g_autofree char *before = NULL;
    DvEngineOptions o = { .state_dir = f->state, .machine_id_path = f->machine_a, .no_recover = TRUE };

    make_old(f, FALSE);
    before = dv_test_file_sha256(f->db);
    engine = dv_engine_new(&o, &error);
    g_assert_null(engine);
    g_assert_error(error, DV_ERROR, DV_ERROR_SCHEMA);
    g_assert_nonnull(strstr(error->message, "drover-setup upgrade"));
    {
        /* Names the state directory, so the command can be copied. */
        g_autofree char *canonical = g_canonicalize_filename(f->state, NULL);
        g_autofree char *want = g_strdup_printf("--state-dir %s", canonical);
        g_assert_nonnull(strstr(error->message, want));
    }
    dv_test_assert_file_unchanged(f->db, before);
}

/* The report over the API and the CLI, and the version header. */
static void
test_report_api_cli(Fixture *f, gconstpointer data)
{
    g_autoptr(GPtrArray) a = NULL;
    g_autoptr(DvTestDaemon) d = NULL;
    g_autoptr(JsonNode) resp = NULL;
    g_autoptr(SoupMessage) msg = NULL;
    g_autoptr(GBytes) body = NULL;
    g_autofree char *url = NULL;
    g_autofree char *cli = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    guint status = 0;
    JsonObject *r;

    make_old(f, FALSE);
    a = upgrade_args(f, FALSE);
    g_assert_cmpint(run_setup(a, NULL, NULL), ==, 0);

    d = dv_test_daemon_start(f->state, NULL);
    resp = dv_test_request(d, "GET", "/api/v1/upgrade-report", NULL, &status);
    g_assert_cmpuint(status, ==, 200);
    r = json_node_get_object(resp);
    g_assert_cmpstr(dv_json_get_string(r, "to_version", ""), ==, DV_VERSION);
    g_assert_cmpint(dv_json_get_int(json_object_get_object_member(r, "secrets"), "total", 0), ==,
                    dv_fixture_n_secrets());
    /* Both hosts kept limits below the defaults: listed for review. */
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(r, "limits_to_review")), ==, 2);

    url = g_strdup_printf("%s/api/v1/version", d->url);
    msg = soup_message_new("GET", url);
    body = soup_session_send_and_read(d->session, msg, NULL, NULL);
    g_assert_cmpstr(soup_message_headers_get_one(soup_message_get_response_headers(msg), "Drover-Version"), ==,
                    DV_VERSION);

    cli = dv_test_build_path("src", "cli", "drover", NULL);
    {
        const char *argv[] = { cli, "--server", d->url, "--token", d->token, "-o", "json", "upgrade-report", NULL };
        g_autoptr(JsonObject) o = NULL;
        g_assert_cmpint(dv_test_spawn(argv, NULL, &out, &err), ==, 0);
        o = parse_object(out);
        g_assert_cmpstr(dv_json_get_string(o, "from_version", ""), ==, dv_version_get_releases(NULL)[0].version);
        g_assert_null(strstr(err, "newer than the server"));
    }
}

/* --- the committed fixtures ------------------------------------------------- */

static JsonObject *
db_shape(const char *path)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvStore) s = dv_store_open(path, 0, &error);
    g_autoptr(DvSqlRows) master = NULL;
    g_autoptr(DvSqlRows) hist = NULL;
    g_autoptr(JsonObject) o = json_object_new();
    g_autoptr(GString) schema = g_string_new(NULL);
    g_autoptr(GString) history = g_string_new(NULL);

    g_assert_no_error(error);
    master = dv_db_query(dv_store_get_db(s), "SELECT type, name, sql FROM sqlite_master ORDER BY type, name",
                         DV_SQL_NO_ARGS, &error);
    g_assert_no_error(error);
    for (guint r = 0; r < dv_sql_rows_get_n_rows(master); r++) {
        const char *name = dv_sql_rows_get_text(master, r, 1);
        g_string_append_printf(schema, "%s %s %s\n", dv_sql_rows_get_text(master, r, 0), name,
                               dv_sql_rows_get_text(master, r, 2) != NULL ? dv_sql_rows_get_text(master, r, 2) : "");
        if (g_str_equal(dv_sql_rows_get_text(master, r, 0), "table") && !g_str_has_prefix(name, "sqlite_")) {
            g_autofree char *sql = g_strdup_printf("SELECT COUNT(*) FROM %s", name);
            g_autoptr(DvSqlRows) n = dv_db_query(dv_store_get_db(s), sql, DV_SQL_NO_ARGS, &error);
            g_assert_no_error(error);
            g_string_append_printf(schema, "  rows %" G_GINT64_FORMAT "\n", dv_sql_rows_get_int(n, 0, 0));
        }
    }
    hist = dv_db_query(dv_store_get_db(s), "SELECT version, name, checksum, success FROM schema_history ORDER BY version",
                       DV_SQL_NO_ARGS, &error);
    g_assert_no_error(error);
    for (guint r = 0; r < dv_sql_rows_get_n_rows(hist); r++)
        g_string_append_printf(history, "%s %s %s %s\n", dv_sql_rows_get_text(hist, r, 0),
                               dv_sql_rows_get_text(hist, r, 1), dv_sql_rows_get_text(hist, r, 2),
                               dv_sql_rows_get_text(hist, r, 3));
    json_object_set_string_member(o, "schema", schema->str);
    json_object_set_string_member(o, "history", history->str);
    return g_steal_pointer(&o);
}

static void
copy_file(const char *from, const char *to, mode_t mode)
{
    g_autofree char *bytes = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(from, &bytes, &len, NULL));
    g_assert_true(g_file_set_contents_full(to, bytes, (gssize)len, G_FILE_SET_CONTENTS_NONE, (int)mode, NULL));
    g_assert_cmpint(chmod(to, mode), ==, 0);
}

static void
test_fixtures(Fixture *f, gconstpointer data)
{
    guint n = 0;
    const DvRelease *r = dv_version_get_releases(&n);
    const char *src = g_getenv("G_TEST_SRCDIR");

    g_assert_cmpuint(n, >=, 2);
    for (guint i = 0; i + 1 < n; i++) {
        g_autofree char *name = g_strdup_printf("schema-%04u", r[i].schema);
        g_autofree char *dir = g_build_filename(src != NULL ? src : DV_SOURCE_DIR "/tests", "upgrade", "fixtures", name, NULL);
        g_autofree char *committed = g_build_filename(dir, "drover.db", NULL);
        g_autofree char *fresh_dir = g_build_filename(f->tmpdir, name, NULL);
        g_autofree char *fresh = g_build_filename(fresh_dir, "drover.db", NULL);
        g_autofree char *mk = dv_test_build_path("tests", "upgrade", "make-fixture", NULL);
        g_autofree char *schema_arg = g_strdup_printf("%u", r[i].schema);
        const char *argv[] = { mk, fresh_dir, schema_arg, NULL };
        g_autoptr(JsonObject) a = NULL;
        g_autoptr(JsonObject) b = NULL;

        g_test_message("release %s: %s", r[i].version, dir);
        g_assert_true(g_file_test(committed, G_FILE_TEST_IS_REGULAR));
        g_assert_cmpint(dv_test_spawn(argv, NULL, NULL, NULL), ==, 0);
        a = db_shape(committed);
        b = db_shape(fresh);
        g_assert_cmpstr(dv_json_get_string(a, "schema", ""), ==, dv_json_get_string(b, "schema", ""));
        g_assert_cmpstr(dv_json_get_string(a, "history", ""), ==, dv_json_get_string(b, "history", ""));

        /* Upgrade a copy, on its machine and account (root): every secret stays. */
        {
            g_autofree char *keys = g_build_filename(f->state, "keys", NULL);
            g_autofree char *hk_from = g_build_filename(dir, "keys", "host.key", NULL);
            g_autofree char *hk_to = g_build_filename(keys, "host.key", NULL);
            g_autofree char *mid = g_build_filename(dir, "machine-id", NULL);
            g_autoptr(GPtrArray) args = g_ptr_array_new();
            g_autofree char *out = NULL;
            g_autoptr(JsonObject) plan = NULL;
            JsonObject *totals;
            g_assert_cmpint(g_mkdir_with_parents(keys, 0700), ==, 0);
            copy_file(committed, f->db, 0600);
            copy_file(hk_from, hk_to, 0600);
            g_ptr_array_add(args, "upgrade");
            g_ptr_array_add(args, "--plan");
            g_ptr_array_add(args, "-o");
            g_ptr_array_add(args, "json");
            g_ptr_array_add(args, "--state-dir");
            g_ptr_array_add(args, f->state);
            g_ptr_array_add(args, "--machine-id-file");
            g_ptr_array_add(args, mid);
            g_ptr_array_add(args, "--service-account");
            g_ptr_array_add(args, "root");
            g_ptr_array_add(args, "--library-share");
            g_ptr_array_add(args, "use-default");
            g_assert_cmpint(run_setup(args, &out, NULL), ==, 0);
            plan = parse_object(out);
            totals = json_object_get_object_member(plan, "secrets");
            g_assert_cmpint(dv_json_get_int(totals, "total", 0), ==, dv_fixture_n_secrets());
            g_assert_cmpint(dv_json_get_int(totals, "preserved", 0), ==, dv_fixture_n_secrets());
            /* 0.2.0's pooled catalog: its machines on overlays are named,
             * not blocking (droverd moves them; the upgrade touches no
             * host). */
            {
                JsonArray *issues = json_object_get_array_member(plan, "issues");
                JsonObject *pooled = NULL;
                for (guint k = 0; k < json_array_get_length(issues); k++)
                    if (g_strcmp0(dv_json_get_string(json_array_get_object_element(issues, k),
                                                     "code", ""),
                                  "pooled-overlays") == 0)
                        pooled = json_array_get_object_element(issues, k);
                if (r[i].schema < 4) {
                    g_assert_null(pooled);
                } else {
                    JsonArray *objs;
                    g_assert_nonnull(pooled);
                    g_assert_false(dv_json_get_bool(pooled, "blocking", TRUE));
                    g_assert_nonnull(strstr(dv_json_get_string(pooled, "message", ""),
                                            "2 machine(s) of 1 pooled"));
                    objs = dv_json_get_array(pooled, "objects");
                    g_assert_cmpuint(json_array_get_length(objs), ==, 1);
                    g_assert_cmpstr(
                        dv_json_get_string(json_array_get_object_element(objs, 0), "catalog", ""),
                        ==, "desks");
                    g_assert_cmpint(
                        dv_json_get_int(json_array_get_object_element(objs, 0), "machines", 0), ==,
                        2);
                }
            }
            g_ptr_array_remove_index(args, 1);
            g_assert_cmpint(run_setup(args, NULL, NULL), ==, 0);
            if (r[i].schema >= 4) {
                g_autoptr(GError) error = NULL;
                g_autoptr(DvStore) s = dv_store_open(f->db, 0, &error);
                g_autoptr(DvSqlRows) rows = NULL;
                g_assert_no_error(error);
                rows = dv_db_query(
                    dv_store_get_db(s),
                    "SELECT COUNT(*) FROM catalog_machines WHERE overlay_path IS NOT NULL AND "
                    "base_id IS NOT NULL AND state = 'ready'",
                    DV_SQL_NO_ARGS, &error);
                g_assert_no_error(error);
                g_assert_cmpint(dv_sql_rows_get_int(rows, 0, 0), ==, 2);
            }
            dv_test_rm_rf(f->state);
        }
    }
}

/* Access control (migration 0007): from the 0.1.0 fixture (schema 3) and a
 * database of the schema 0.2.0 shipped before it (6, made by make-fixture),
 * holding users with each of the four old role strings, the plan lists
 * 0007_access and the upgrade maps each user onto its built-in role. */
static void
test_access_roles(Fixture *f, gconstpointer data)
{
    static const char *const roles[] = { "administrator", "delegated-administrator", "read-only", "tenant" };
    static const char *const expect[] = { "role-administrator", "role-delegated-administrator",
                                          "role-read-only-administrator", "role-tenant-administrator" };
    const guint schemas[] = { 3, 6 };
    const char *src = g_getenv("G_TEST_SRCDIR");

    for (guint s = 0; s < G_N_ELEMENTS(schemas); s++) {
        g_autofree char *name = g_strdup_printf("schema-%04u", schemas[s]);
        g_autofree char *dir = NULL;
        g_autofree char *keys = g_build_filename(f->state, "keys", NULL);
        g_autoptr(GPtrArray) args = g_ptr_array_new();
        g_autofree char *out = NULL;
        g_autofree char *db = NULL;
        g_autofree char *hk_from = NULL;
        g_autofree char *hk_to = g_build_filename(keys, "host.key", NULL);
        g_autofree char *mid = NULL;
        g_autoptr(JsonObject) plan = NULL;
        g_autoptr(GError) error = NULL;
        JsonArray *pending;
        JsonObject *last;

        if (schemas[s] == 3) {
            dir = g_build_filename(src != NULL ? src : DV_SOURCE_DIR "/tests", "upgrade", "fixtures", name, NULL);
        } else {
            g_autofree char *mk = dv_test_build_path("tests", "upgrade", "make-fixture", NULL);
            g_autofree char *schema_arg = g_strdup_printf("%u", schemas[s]);
            const char *argv[] = { mk, NULL, schema_arg, NULL };
            dir = g_build_filename(f->tmpdir, name, NULL);
            argv[1] = dir;
            g_assert_cmpint(dv_test_spawn(argv, NULL, NULL, NULL), ==, 0);
        }
        db = g_build_filename(dir, "drover.db", NULL);
        hk_from = g_build_filename(dir, "keys", "host.key", NULL);
        mid = g_build_filename(dir, "machine-id", NULL);
        g_test_message("from schema %u: %s", schemas[s], dir);
        g_assert_cmpint(g_mkdir_with_parents(keys, 0700), ==, 0);
        copy_file(db, f->db, 0600);
        copy_file(hk_from, hk_to, 0600);
        {
            g_autoptr(DvStore) old = dv_store_open(f->db, 0, &error);
            g_assert_no_error(error);
            for (guint i = 0; i < G_N_ELEMENTS(roles); i++) {
                g_autofree char *uname = g_strdup_printf("old%u", i);
                g_assert_true(dv_db_exec(dv_store_get_db(old),
                                         "INSERT INTO users (id, name, password_hash, role, created_at) VALUES (?, ?, 'x', ?, 1)",
                                         DV_SQL_ARGS(DV_SQL_TEXT_P(uname), DV_SQL_TEXT_P(uname), DV_SQL_TEXT_P(roles[i])),
                                         NULL, &error));
                g_assert_no_error(error);
            }
            /* One host's VMs in a host group, for 0009's backfill. */
            g_assert_true(dv_db_exec(dv_store_get_db(old),
                                     "INSERT INTO host_groups (id, name, created_at) VALUES ('hg-old', 'hg-old', 1)",
                                     DV_SQL_NO_ARGS, NULL, &error));
            g_assert_no_error(error);
            g_assert_true(dv_db_exec(dv_store_get_db(old),
                                     "UPDATE hosts SET host_group_id = 'hg-old' WHERE id = "
                                     "(SELECT host_id FROM vms ORDER BY host_id LIMIT 1)",
                                     DV_SQL_NO_ARGS, NULL, &error));
            g_assert_no_error(error);
        }
        g_ptr_array_add(args, "upgrade");
        g_ptr_array_add(args, "--plan");
        g_ptr_array_add(args, "-o");
        g_ptr_array_add(args, "json");
        g_ptr_array_add(args, "--state-dir");
        g_ptr_array_add(args, f->state);
        g_ptr_array_add(args, "--machine-id-file");
        g_ptr_array_add(args, mid);
        g_ptr_array_add(args, "--service-account");
        g_ptr_array_add(args, "root");
        g_ptr_array_add(args, "--library-share");
        g_ptr_array_add(args, "use-default");
        g_assert_cmpint(run_setup(args, &out, NULL), ==, 0);
        plan = parse_object(out);
        pending = json_object_get_array_member(plan, "pending_migrations");
        g_assert_cmpuint(json_array_get_length(pending), ==, dv_store_get_known_version() - schemas[s]);
        last = json_array_get_object_element(pending, json_array_get_length(pending) - 1);
        g_assert_cmpint(dv_json_get_int(last, "version", 0), ==, dv_store_get_known_version());
        {
            /* 0007_access is pending from both fixtures, whatever follows it. */
            gboolean access = FALSE;
            for (guint i = 0; i < json_array_get_length(pending); i++)
                access = access ||
                         g_strcmp0(dv_json_get_string(json_array_get_object_element(pending, i),
                                                      "name", ""),
                                   "0007_access") == 0;
            g_assert_true(access);
        }
        g_ptr_array_remove_index(args, 1);
        g_assert_cmpint(run_setup(args, NULL, NULL), ==, 0);
        {
            g_autoptr(DvStore) store = dv_store_open(f->db, DV_STORE_OPEN_CHECK_ONLY, &error);
            g_assert_no_error(error);
            g_assert_cmpuint(dv_store_get_schema_version(store, NULL), ==, dv_store_get_known_version());
            for (guint i = 0; i < G_N_ELEMENTS(roles); i++) {
                g_autofree char *uname = g_strdup_printf("old%u", i);
                g_autoptr(DvSqlRows) rows = dv_db_query(dv_store_get_db(store),
                                                        "SELECT role_id, scope_kind, effect FROM bindings WHERE principal = ?",
                                                        DV_SQL_ARGS(DV_SQL_TEXT_P(uname)), &error);
                g_assert_no_error(error);
                g_assert_cmpuint(dv_sql_rows_get_n_rows(rows), ==, 1);
                g_assert_cmpstr(dv_sql_rows_get_text(rows, 0, 0), ==, expect[i]);
                g_assert_cmpstr(dv_sql_rows_get_text(rows, 0, 1), ==, "global");
                g_assert_cmpstr(dv_sql_rows_get_text(rows, 0, 2), ==, "allow");
            }
            /* 0009 filled vms.host_group_id from each VM's host. */
            {
                g_autoptr(DvSqlRows) vr = dv_db_query(
                    dv_store_get_db(store),
                    "SELECT COUNT(*), SUM(CASE WHEN host_group_id = 'hg-old' THEN 1 ELSE 0 END), "
                    "SUM(CASE WHEN host_group_id IS NULL THEN 1 ELSE 0 END), "
                    "(SELECT COUNT(*) FROM vms v JOIN hosts h ON h.id = v.host_id "
                    " WHERE h.host_group_id = 'hg-old') FROM vms",
                    DV_SQL_NO_ARGS, &error);
                g_assert_no_error(error);
                g_assert_cmpint(dv_sql_rows_get_int(vr, 0, 3), >, 0);
                g_assert_cmpint(dv_sql_rows_get_int(vr, 0, 1), ==, dv_sql_rows_get_int(vr, 0, 3));
                g_assert_cmpint(dv_sql_rows_get_int(vr, 0, 1) + dv_sql_rows_get_int(vr, 0, 2), ==,
                                dv_sql_rows_get_int(vr, 0, 0));
                g_assert_cmpint(dv_sql_rows_get_int(vr, 0, 2), >, 0);
            }
        }
        dv_test_rm_rf(f->state);
    }
}

/* droverd refuses to serve next to a server more than one step away. */
static void
test_server_refuses_skew(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvEngine) engine = NULL;
    g_autoptr(GPtrArray) a = NULL;
    DvEngineOptions o = { .state_dir = f->state, .machine_id_path = f->machine_a, .no_recover = TRUE,
                          .serve = TRUE };

    make_old(f, FALSE);
    a = upgrade_args(f, FALSE);
    g_assert_cmpint(run_setup(a, NULL, NULL), ==, 0);
    insert_server(f, "0.0.1");
    /* The keys are the service account's, not root's: droverd says so and serves on. */
    g_test_expect_message("DvEngine", G_LOG_LEVEL_WARNING, "*cannot be opened here*");
    engine = dv_engine_new(&o, &error);
    g_test_assert_expected_messages();
    g_assert_null(engine);
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_nonnull(strstr(error->message, "0.0.1"));
    g_assert_nonnull(strstr(error->message, DV_VERSION));
}

/* A database put back by drover-setup restore, then in rollback-journal
 * mode: the plan still changes nothing, and the upgrade works. */
static void
test_plan_after_restore(Fixture *f, gconstpointer data)
{
    g_autofree char *archive = g_build_filename(f->tmpdir, "b.tar.zst", NULL);
    g_autofree char *before = NULL;
    g_autofree char *listing_before = NULL;
    g_autoptr(GPtrArray) b = g_ptr_array_new();
    g_autoptr(GPtrArray) r = g_ptr_array_new();
    g_autoptr(GPtrArray) a = NULL;
    g_autoptr(JsonObject) plan = NULL;

    make_old(f, FALSE);
    g_ptr_array_add(b, "backup");
    g_ptr_array_add(b, "--state-dir");
    g_ptr_array_add(b, f->state);
    g_ptr_array_add(b, "--out");
    g_ptr_array_add(b, archive);
    g_assert_cmpint(run_setup(b, NULL, NULL), ==, 0);
    g_ptr_array_add(r, "restore");
    g_ptr_array_add(r, "--state-dir");
    g_ptr_array_add(r, f->state);
    g_ptr_array_add(r, "--in");
    g_ptr_array_add(r, archive);
    g_ptr_array_add(r, "--force");
    g_assert_cmpint(run_setup(r, NULL, NULL), ==, 0);
    /* restore writes as root: give the key file back to the service account. */
    {
        g_autofree char *keys = g_build_filename(f->state, "keys", NULL);
        g_autofree char *key = g_build_filename(keys, "host.key", NULL);
        struct passwd *pw = getpwnam(f->user_a);
        g_assert_cmpint(chown(keys, pw->pw_uid, (gid_t)-1), ==, 0);
        g_assert_cmpint(chown(key, pw->pw_uid, (gid_t)-1), ==, 0);
    }
    /* In rollback-journal mode (what PRAGMA journal_mode=DELETE writes on a
     * checkpointed file: header bytes 18 and 19 = 1), as a database copied
     * by other tools may be: a normal open would switch it to WAL. */
    {
        g_autofree char *bytes = NULL;
        gsize len = 0;
        g_assert_true(g_file_get_contents(f->db, &bytes, &len, NULL));
        g_assert_cmpuint(len, >, 100);
        bytes[18] = 1;
        bytes[19] = 1;
        g_assert_true(g_file_set_contents_full(f->db, bytes, (gssize)len, G_FILE_SET_CONTENTS_NONE, 0600, NULL));
    }
    before = dv_test_file_sha256(f->db);
    listing_before = dv_test_tree_snapshot(f->state, DV_TEST_TREE_TIMES);
    plan = plan_json(f, NULL, 0);
    dv_test_assert_file_unchanged(f->db, before);
    dv_test_assert_tree_unchanged(f->state, DV_TEST_TREE_TIMES, listing_before);
    g_assert_cmpint(dv_json_get_int(json_object_get_object_member(plan, "from"), "schema", 0), ==,
                    dv_fixture_oldest_schema());
    a = upgrade_args(f, FALSE);
    g_assert_cmpint(run_setup(a, NULL, NULL), ==, 0);
}

/* --- bad input --------------------------------------------------------------- */

static void
test_bad_input(Fixture *f, gconstpointer data)
{
    g_autofree char *pw_file = g_build_filename(f->tmpdir, "service.pw", NULL);
    g_autoptr(GPtrArray) a = NULL;
    g_autofree char *err = NULL;
    g_autofree char *out = NULL;

    make_old(f, FALSE);
    g_assert_true(g_file_set_contents_full(pw_file, "not-used\n", -1, G_FILE_SET_CONTENTS_NONE, 0600, NULL));

    /* Unknown flag. */
    a = upgrade_args(f, TRUE);
    g_ptr_array_add(a, "--no-such-flag");
    g_assert_cmpint(run_setup(a, NULL, &err), ==, 2);
    g_assert_nonnull(strstr(err, "no-such-flag"));
    g_clear_pointer(&a, g_ptr_array_unref);
    g_clear_pointer(&err, g_free);

    /* Bad --library-share. */
    a = upgrade_args(f, TRUE);
    g_ptr_array_add(a, "--library-share");
    g_ptr_array_add(a, "nonsense");
    g_assert_cmpint(run_setup(a, NULL, &err), ==, 2);
    g_assert_nonnull(strstr(err, "library-share"));
    g_clear_pointer(&a, g_ptr_array_unref);
    g_clear_pointer(&err, g_free);

    /* A service account that does not exist. */
    a = g_ptr_array_new();
    g_ptr_array_add(a, "upgrade");
    g_ptr_array_add(a, "--plan");
    g_ptr_array_add(a, "--state-dir");
    g_ptr_array_add(a, f->state);
    g_ptr_array_add(a, "--service-account");
    g_ptr_array_add(a, "dv-no-such-user-xyz");
    g_assert_cmpint(run_setup(a, NULL, &err), ==, 3);
    g_assert_nonnull(strstr(err, "service-account"));
    g_assert_nonnull(strstr(err, "dv-no-such-user-xyz"));
    g_clear_pointer(&a, g_ptr_array_unref);
    g_clear_pointer(&err, g_free);

    /* A directory that cannot be reached, on another machine (the host key
     * file does not open there): every key is lost, and the plan says the
     * directory could not be reached. */
    a = g_ptr_array_new();
    g_ptr_array_add(a, "upgrade");
    g_ptr_array_add(a, "--plan");
    add_common_args(a, f, NULL, f->machine_b, f->user_a);
    g_ptr_array_add(a, "-o");
    g_ptr_array_add(a, "json");
    g_ptr_array_add(a, "--ldap-uri");
    g_ptr_array_add(a, "ldap://127.0.0.1:9");
    g_ptr_array_add(a, "--container");
    g_ptr_array_add(a, "ou=none,dc=drover,dc=test");
    g_ptr_array_add(a, "--service-dn");
    g_ptr_array_add(a, "cn=x,dc=drover,dc=test");
    g_ptr_array_add(a, "--service-password-file");
    g_ptr_array_add(a, pw_file);
    g_assert_cmpint(run_setup(a, &out, &err), ==, 10);
    {
        g_autoptr(JsonObject) plan = parse_object(out);
        JsonArray *keys = json_object_get_array_member(plan, "keys");
        g_assert_cmpuint(json_array_get_length(keys), ==, 2);
        for (guint i = 0; i < json_array_get_length(keys); i++) {
            JsonObject *k = json_array_get_object_element(keys, i);
            g_assert_cmpstr(dv_json_get_string(k, "verdict", ""), ==, "lost");
            g_assert_nonnull(strstr(dv_json_get_string(k, "reason", ""), "cannot be reached"));
        }
    }
    g_clear_pointer(&a, g_ptr_array_unref);
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);

    /* A missing key file: every key is lost, and the plan says why. */
    {
        g_autofree char *key = g_build_filename(f->state, "keys", "host.key", NULL);
        g_autofree char *aside = g_build_filename(f->tmpdir, "host.key.aside", NULL);
        g_autoptr(JsonObject) plan = NULL;
        JsonArray *keys;
        g_assert_cmpint(g_rename(key, aside), ==, 0);
        plan = plan_json(f, NULL, 10);
        keys = json_object_get_array_member(plan, "keys");
        for (guint i = 0; i < json_array_get_length(keys); i++) {
            JsonObject *k = json_array_get_object_element(keys, i);
            g_assert_cmpstr(dv_json_get_string(k, "verdict", ""), ==, "lost");
            g_assert_nonnull(strstr(dv_json_get_string(k, "reason", ""), "does not exist"));
        }
        g_assert_cmpint(g_rename(aside, key), ==, 0);
    }

    /* A database from a newer version: refused, both versions named. */
    {
        g_autoptr(GError) error = NULL;
        g_autofree char *copy = g_build_filename(f->tmpdir, "newer.db", NULL);
        g_autofree char *bytes = NULL;
        gsize len = 0;
        g_autoptr(DvStore) s = NULL;
        g_autofree char *newer = g_strdup_printf("%u", dv_store_get_known_version() + 1);
        g_assert_true(g_file_get_contents(f->db, &bytes, &len, NULL));
        g_assert_true(g_file_set_contents(copy, bytes, (gssize)len, NULL));
        s = dv_store_open(copy, 0, &error);
        g_assert_no_error(error);
        g_assert_true(dv_db_exec(dv_store_get_db(s),
                                 "INSERT INTO schema_history (version, name, checksum, applied_at, success) VALUES (?, 'future', 'x', 0, 1)",
                                 DV_SQL_ARGS(DV_SQL_INT_P(dv_store_get_known_version() + 1)), NULL, &error));
        g_clear_pointer(&s, dv_store_free);
        a = upgrade_args(f, TRUE);
        g_ptr_array_add(a, "--database");
        g_ptr_array_add(a, copy);
        g_assert_cmpint(run_setup(a, NULL, &err), !=, 0);
        g_assert_nonnull(strstr(err, "newer"));
        g_assert_nonnull(strstr(err, newer));
        g_assert_nonnull(strstr(err, DV_VERSION));
        g_clear_pointer(&a, g_ptr_array_unref);
        g_clear_pointer(&err, g_free);
    }

    /* A corrupt database. */
    {
        g_autofree char *bad = g_build_filename(f->tmpdir, "corrupt.db", NULL);
        g_assert_true(g_file_set_contents(bad, "this is not a database, only text of some length......", -1, NULL));
        a = upgrade_args(f, TRUE);
        g_ptr_array_add(a, "--database");
        g_ptr_array_add(a, bad);
        g_assert_cmpint(run_setup(a, NULL, &err), ==, 7);
        g_assert_nonnull(strstr(err, "cannot upgrade"));
        g_clear_pointer(&a, g_ptr_array_unref);
        g_clear_pointer(&err, g_free);
    }

    /* No database at all. */
    {
        g_autofree char *none = g_build_filename(f->tmpdir, "none.db", NULL);
        a = upgrade_args(f, TRUE);
        g_ptr_array_add(a, "--database");
        g_ptr_array_add(a, none);
        g_assert_cmpint(run_setup(a, NULL, &err), ==, 3);
        g_assert_false(g_file_test(none, G_FILE_TEST_EXISTS));
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/drover/upgrade/version-rules", test_version_rules);
    for (guint i = 0; i < G_N_ELEMENTS(scenarios); i++) {
        g_autofree char *path = g_strdup_printf("/drover/upgrade/scenario/%s", scenarios[i].name);
        g_test_add(path, Fixture, &scenarios[i], fixture_setup, test_scenario, fixture_teardown);
    }
    g_test_add("/drover/upgrade/fail-half-way", Fixture, NULL, fixture_setup, test_fail_half_way, fixture_teardown);
    g_test_add("/drover/upgrade/fail-half-way-postgresql", Fixture, NULL, fixture_setup, test_fail_half_way_pg,
               fixture_teardown);
    g_test_add("/drover/upgrade/fail-after-migration", Fixture, NULL, fixture_setup, test_fail_after_migration,
               fixture_teardown);
    g_test_add("/drover/upgrade/killed-during-migration", Fixture, NULL, fixture_setup, test_killed_during_migration,
               fixture_teardown);
    g_test_add("/drover/upgrade/disk-full", Fixture, NULL, fixture_setup, test_disk_full, fixture_teardown);
    g_test_add("/drover/upgrade/known-issues", Fixture, NULL, fixture_setup, test_known_issues, fixture_teardown);
    g_test_add("/drover/upgrade/library-share-choice", Fixture, NULL, fixture_setup, test_library_share_choice,
               fixture_teardown);
    g_test_add("/drover/upgrade/version-skew", Fixture, NULL, fixture_setup, test_version_skew, fixture_teardown);
    g_test_add("/drover/upgrade/server-refuses-old-schema", Fixture, NULL, fixture_setup,
               test_server_refuses_old_schema, fixture_teardown);
    g_test_add("/drover/upgrade/report-api-cli", Fixture, NULL, fixture_setup, test_report_api_cli, fixture_teardown);
    g_test_add("/drover/upgrade/fixtures", Fixture, NULL, fixture_setup, test_fixtures, fixture_teardown);
    g_test_add("/drover/upgrade/access-roles", Fixture, NULL, fixture_setup, test_access_roles, fixture_teardown);
    g_test_add("/drover/upgrade/server-refuses-skew", Fixture, NULL, fixture_setup, test_server_refuses_skew,
               fixture_teardown);
    g_test_add("/drover/upgrade/plan-after-restore", Fixture, NULL, fixture_setup, test_plan_after_restore,
               fixture_teardown);
    g_test_add("/drover/upgrade/bad-input", Fixture, NULL, fixture_setup, test_bad_input, fixture_teardown);
    return g_test_run();
}
