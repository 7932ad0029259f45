/* The directory key protector end to end: two servers on one PostgreSQL
 * database on two "machines", sharing their keys through the private slapd
 * that tests/services/with-services starts. */
#define G_LOG_DOMAIN "DvTestApiDirectory"

#include "dv-config.h"
#include "dv-test-util.h"

#include <glib/gstdio.h>
#include <string.h>

#define PW "PLAINTEXT-directory-4Hq9"

static const char *
env(const char *name)
{
    const char *v = g_getenv(name);
    if (v == NULL)
        g_error("%s is not set: run under tests/services/with-services", name);
    return v;
}

static char *
setup_path(void)
{
    return g_build_filename(g_getenv("DV_TOP_BUILDDIR") != NULL ? g_getenv("DV_TOP_BUILDDIR") : DV_BUILD_DIR,
                            "src", "setup", "drover-setup", NULL);
}

static JsonObject *
secret_of(DvTestDaemon *d, const char *path, const char *field)
{
    guint status = 0;
    g_autoptr(JsonNode) n = dv_test_request(d, "GET", path, NULL, &status);
    g_assert_cmpuint(status, ==, 200);
    return json_object_ref(json_object_get_object_member(json_node_get_object(n), field));
}

static DvTestDaemon *
second_server(const char *state_dir, const char *token, const char *const *extra)
{
    DvTestDaemon *d = g_new0(DvTestDaemon, 1);
    d->state_dir = g_strdup(state_dir);
    d->token = g_strdup(token);
    d->session = soup_session_new();
    d->extra_args = g_strdupv((char **)extra);
    g_assert_true(dv_test_daemon_restart(d));
    return d;
}

static void
test_directory(void)
{
    const char *pg = g_getenv("DV_TEST_PG_URI");
    g_autofree char *db = NULL;
    g_autofree char *db_uri = NULL;
    g_autofree char *container = NULL;
    g_autofree char *setup = setup_path();
    g_autofree char *state2 = NULL;
    g_autofree char *machine2 = NULL;
    g_autofree char *cmd = NULL;
    g_autofree char *nonmember = NULL;
    const char *extra1[3] = { "--database", NULL, NULL };

    /* Missing services fail the test in CI (dv_test_require_services). */
    if (!dv_test_have_service("DV_TEST_PG_URI", "PostgreSQL") ||
        !dv_test_have_service("DV_TEST_LDAP_URI", "slapd"))
        return;
    db = g_strdup_printf("dv_dir_%u", g_random_int());
    cmd = g_strdup_printf("psql -q -d '%s' -c 'CREATE DATABASE %s'", pg, db);
    g_assert_cmpint(system(cmd), ==, 0);
    {
        const char *slash = strrchr(pg, '/');
        db_uri = g_strdup_printf("%.*s/%s", (int)(slash - pg), pg, db);
    }
    extra1[1] = db_uri;
    container = g_strdup_printf("ou=drover-keys-%u,%s", g_random_int(), env("DV_TEST_LDAP_BASE"));

    {
        g_autoptr(DvTestDaemon) a = dv_test_daemon_start(NULL, extra1);
        g_autoptr(JsonObject) job = dv_test_run_job(a, "POST", "/api/v1/run-as-accounts",
                                                    "{\"name\":\"kvm\",\"username\":\"virt\",\"password\":\"" PW "\"}");
        g_assert_cmpstr(json_object_get_string_member(job, "state"), ==, "succeeded");

        /* 1. The directory protector: container, ACL, proof, keys wrapped. */
        nonmember = g_strdup_printf("%s=%s", env("DV_TEST_LDAP_INTRUDER_DN"), env("DV_TEST_LDAP_INTRUDER_PW_FILE"));
        g_free(cmd);
        cmd = g_strdup_printf("'%s' --state-dir '%s' --database '%s' keys directory init --ldap-uri '%s' "
                              "--container '%s' --admin-dn '%s' --admin-password-file '%s' "
                              "--config-admin-uri '%s' --service-dn '%s' --service-password-file '%s' "
                              "--group-dn '%s' --non-member '%s' --ca-file '%s'",
                              setup, a->state_dir, db_uri, env("DV_TEST_LDAP_URI"), container,
                              env("DV_TEST_LDAP_ADMIN_DN"), env("DV_TEST_LDAP_ADMIN_PW_FILE"),
                              env("DV_TEST_LDAPI_URI"), env("DV_TEST_LDAP_SERVICE_DN"),
                              env("DV_TEST_LDAP_SERVICE_PW_FILE"), env("DV_TEST_LDAP_GROUP_DN"), nonmember,
                              env("DV_TEST_LDAP_CA"));
        g_assert_cmpint(system(cmd), ==, 0);

        /* 2. A second server on another machine (another machine-id and
         * state directory, no usable host key) on the same database, at the
         * same time: allowed with the directory protector, and it opens
         * the secrets through the directory. */
        state2 = g_dir_make_tmp("drover-dir2-XXXXXX", NULL);
        machine2 = g_build_filename(state2, "machine-id", NULL);
        g_assert_true(g_file_set_contents(machine2, "fedcba9876543210fedcba9876543210\n", -1, NULL));
        {
            g_autofree char *src = g_build_filename(a->state_dir, "directory.conf", NULL);
            g_autofree char *dst = g_build_filename(state2, "directory.conf", NULL);
            g_autofree char *text = NULL;
            gsize len = 0;
            g_assert_true(g_file_get_contents(src, &text, &len, NULL));
            g_assert_true(g_file_set_contents_full(dst, text, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT, 0600, NULL));
        }
        {
            g_autofree char *mid = g_strdup_printf("--machine-id-file=%s", machine2);
            const char *extra2[] = { "--database", db_uri, mid, NULL };
            DvTestDaemon *b = second_server(state2, a->token, extra2);
            g_autoptr(JsonObject) pw_a = secret_of(a, "/api/v1/run-as-accounts/kvm", "password");
            g_autoptr(JsonObject) pw_b = secret_of(b, "/api/v1/run-as-accounts/kvm", "password");
            g_assert_true(json_object_get_boolean_member(pw_a, "readable"));
            g_assert_true(json_object_get_boolean_member(pw_b, "readable"));
            /* A secret written through B opens on A. */
            {
                g_autoptr(JsonObject) j = dv_test_run_job(b, "POST", "/api/v1/settings",
                                                          "{\"scope\":\"service\",\"name\":\"token\",\"value\":\"" PW "\",\"encrypted\":true}");
                g_autoptr(JsonObject) v = secret_of(a, "/api/v1/settings/token", "value");
                g_assert_cmpstr(json_object_get_string_member(j, "state"), ==, "succeeded");
                g_assert_true(json_object_get_boolean_member(v, "readable"));
            }
            dv_test_daemon_free(b);
        }

        /* 3. The directory down: the other machine reports the secrets
         * unreadable with the reason, and rewrites nothing. */
        {
            g_autofree char *conf = g_build_filename(state2, "directory.conf", NULL);
            g_autofree char *text = NULL;
            g_autoptr(GRegex) re = g_regex_new("uri=.*", 0, 0, NULL);
            g_autofree char *down = NULL;
            g_assert_true(g_file_get_contents(conf, &text, NULL, NULL));
            down = g_regex_replace(re, text, -1, 0, "uri=ldap://127.0.0.1:1", 0, NULL);
            g_assert_true(g_file_set_contents_full(conf, down, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, NULL));
        }
        {
            g_autofree char *mid = g_strdup_printf("--machine-id-file=%s", machine2);
            const char *extra2[] = { "--database", db_uri, mid, NULL };
            DvTestDaemon *b = second_server(state2, a->token, extra2);
            g_autoptr(JsonObject) pw_b = secret_of(b, "/api/v1/run-as-accounts/kvm", "password");
            g_assert_false(json_object_get_boolean_member(pw_b, "readable"));
            g_assert_nonnull(strstr(json_object_get_string_member(pw_b, "reason"), "directory"));
            dv_test_daemon_free(b);
        }
        {
            g_autoptr(JsonObject) pw_a = secret_of(a, "/api/v1/run-as-accounts/kvm", "password");
            g_assert_true(json_object_get_boolean_member(pw_a, "readable"));
        }
    }
    g_free(cmd);
    cmd = g_strdup_printf("rm -rf '%s'; psql -q -d '%s' -c 'DROP DATABASE %s'", state2, pg, db);
    g_assert_cmpint(system(cmd), ==, 0);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/drover/api/directory", test_directory);
    return g_test_run();
}
