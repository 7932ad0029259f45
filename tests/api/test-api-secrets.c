/* Secrets through the API, end to end: write-only fields, another machine,
 * the recovery key, tampering, and no plaintext anywhere.  A real droverd
 * on SQLite; "another machine" is another state directory with another
 * machine-id file. */
#define G_LOG_DOMAIN "DvTestApiSecrets"
#define _GNU_SOURCE

#include "dv-config.h"
#include "dv-test-util.h"

#include <glib/gstdio.h>
#include <string.h>

/* Distinctive plaintexts: the test searches for them everywhere. */
#define PW_RUNAS "PLAINTEXT-runas-7Qf2"
#define PW_ADMIN "PLAINTEXT-admin-9Kd1"
#define PW_JOIN "PLAINTEXT-join-3Zx8"
#define PRODUCT_KEY "PLAINTEXT-pkey-5Wm4"
#define SETTING_VALUE "PLAINTEXT-setting-1Lp6"
#define PW_REENTERED "PLAINTEXT-reentered-8Rt0"

static const char *const plaintexts[] = { PW_RUNAS, PW_ADMIN, PW_JOIN, PRODUCT_KEY, SETTING_VALUE,
                                          PW_REENTERED, NULL };

typedef struct {
    GString *seen; /* every response body, for the plaintext search */
} Ctx;

static void
run(Ctx *c, const char *cmd)
{
    int status = system(cmd);
    if (status != 0)
        g_error("command failed (%d): %s", status, cmd);
}

static JsonNode *
get(Ctx *c, DvTestDaemon *d, const char *path)
{
    guint status = 0;
    JsonNode *n = dv_test_request(d, "GET", path, NULL, &status);
    g_autofree char *text = n != NULL ? json_to_string(n, FALSE) : g_strdup("");
    g_string_append(c->seen, text);
    if (status != 200)
        g_error("GET %s: %u %s", path, status, text);
    return n;
}

static JsonObject *
job(Ctx *c, DvTestDaemon *d, const char *method, const char *path, const char *body)
{
    JsonObject *j = dv_test_run_job(d, method, path, body);
    g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), j);
    g_autofree char *text = json_to_string(n, FALSE);
    g_string_append(c->seen, text);
    if (g_strcmp0(json_object_get_string_member(j, "state"), "succeeded") != 0)
        g_error("%s %s: job did not succeed: %s", method, path, text);
    return j;
}

static JsonObject *
field(JsonNode *obj, const char *name)
{
    return json_object_get_object_member(json_node_get_object(obj), name);
}

static void
assert_no_plaintext(const char *where, const char *text)
{
    for (guint i = 0; plaintexts[i] != NULL; i++)
        if (text != NULL && strstr(text, plaintexts[i]) != NULL)
            g_error("plaintext secret %s found in %s", plaintexts[i], where);
}

static void
assert_no_plaintext_in_file(const char *path)
{
    g_autofree char *text = NULL;
    gsize len = 0;
    if (!g_file_get_contents(path, &text, &len, NULL))
        return;
    for (guint i = 0; plaintexts[i] != NULL; i++)
        if (memmem(text, len, plaintexts[i], strlen(plaintexts[i])) != NULL)
            g_error("plaintext secret %s found in %s", plaintexts[i], path);
}

static char *
sql(const char *db, const char *query)
{
    g_autofree char *cmd = g_strdup_printf("sqlite3 '%s' \"%s\"", db, query);
    g_autofree char *out = NULL;
    int status = 0;
    g_assert_true(g_spawn_command_line_sync(cmd, &out, NULL, &status, NULL));
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    return g_strdup(g_strstrip(out));
}

static void
test_secrets(void)
{
    Ctx c = { g_string_new(NULL) };
    g_autoptr(GError) error = NULL;
    g_autofree char *machine2 = NULL;
    g_autofree char *state2 = NULL;
    g_autofree char *recovery = NULL;
    g_autofree char *setup = g_build_filename(g_getenv("DV_TOP_BUILDDIR") ? g_getenv("DV_TOP_BUILDDIR") : DV_BUILD_DIR,
                                              "src", "setup", "drover-setup", NULL);
    g_autofree char *rows_before = NULL;
    g_autofree char *db1 = NULL;
    g_autofree char *db2 = NULL;
    g_autoptr(DvTestDaemon) d = dv_test_daemon_start(NULL, NULL);
    g_autoptr(JsonObject) j1 = NULL;
    g_autoptr(JsonObject) j2 = NULL;
    g_autoptr(JsonObject) j3 = NULL;

    /* 1. Create; read back: never a value, always a description. */
    j1 = job(&c, d, "POST", "/api/v1/run-as-accounts",
             "{\"name\":\"kvm-admin\",\"username\":\"virtadmin\",\"password\":\"" PW_RUNAS "\"}");
    j2 = job(&c, d, "POST", "/api/v1/guest-os-profiles",
             "{\"name\":\"desktops\",\"computer_name_pattern\":\"desk-###\",\"admin_username\":\"Administrator\","
             "\"admin_password\":\"" PW_ADMIN "\",\"domain\":\"corp.example\",\"domain_join_user\":\"joiner\","
             "\"domain_join_password\":\"" PW_JOIN "\",\"product_key\":\"" PRODUCT_KEY "\","
             "\"time_zone\":\"Europe/Paris\",\"ssh_authorized_keys\":[\"ssh-ed25519 AAAAC3Nza test@example\"]}");
    j3 = job(&c, d, "POST", "/api/v1/settings",
             "{\"scope\":\"deployment\",\"name\":\"sql-product-key\",\"value\":\"" SETTING_VALUE "\",\"encrypted\":true}");
    {
        g_autoptr(JsonNode) ra = get(&c, d, "/api/v1/run-as-accounts/kvm-admin");
        g_autoptr(JsonNode) pr = get(&c, d, "/api/v1/guest-os-profiles/desktops");
        g_autoptr(JsonNode) st = get(&c, d, "/api/v1/settings/sql-product-key");
        JsonObject *pw = field(ra, "password");
        g_assert_true(json_object_get_boolean_member(pw, "set"));
        g_assert_true(json_object_get_boolean_member(pw, "readable"));
        g_assert_cmpstr(json_object_get_string_member(pw, "key_id"), ==, "k1");
        g_assert_false(json_object_get_boolean_member(field(ra, "ssh_private_key"), "set"));
        g_assert_true(json_object_get_boolean_member(field(pr, "admin_password"), "readable"));
        g_assert_true(json_object_get_boolean_member(field(pr, "domain_join_password"), "readable"));
        g_assert_true(json_object_get_boolean_member(field(pr, "product_key"), "readable"));
        g_assert_cmpstr(json_object_get_string_member(json_node_get_object(pr), "domain"), ==, "corp.example");
        g_assert_true(json_object_get_boolean_member(field(st, "value"), "readable"));
    }

    /* Bad input: empty, oversized, null secret; both kinds at once. */
    {
        static const struct {
            const char *body;
            const char *field;
        } bad[] = {
            { "{\"name\":\"x1\",\"username\":\"u\",\"password\":\"\"}", "password" },
            { "{\"name\":\"x2\",\"username\":\"u\",\"password\":null}", "password" },
            { "{\"name\":\"x3\",\"username\":\"u\",\"password\":\"a\",\"ssh_private_key\":\"b\"}", "password" },
            { "{\"name\":\"x4\",\"username\":\"u\"}", "password" },
            { "{\"name\":\"x5\",\"username\":\"has space\",\"password\":\"p\"}", "username" },
        };
        for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
            guint status = 0;
            g_autoptr(JsonNode) r = dv_test_request(d, "POST", "/api/v1/run-as-accounts", bad[i].body, &status);
            dv_test_assert_error(r, status, 400, "invalid-argument", bad[i].field);
        }
        {
            g_autoptr(GString) big = g_string_new("{\"name\":\"x6\",\"username\":\"u\",\"password\":\"");
            guint status = 0;
            g_autoptr(JsonNode) r = NULL;
            for (int i = 0; i < 70000; i++)
                g_string_append_c(big, 'a');
            g_string_append(big, "\"}");
            r = dv_test_request(d, "POST", "/api/v1/run-as-accounts", big->str, &status);
            dv_test_assert_error(r, status, 400, "invalid-argument", "password");
        }
    }

    /* 1b. A job that fails using the Run As account: droverd logs the
     * failure (docs/METRICS.md, "Logs"); step 6 finds no plaintext in
     * that line either. */
    {
        g_autoptr(JsonObject) failed =
            dv_test_run_job(d, "POST", "/api/v1/hosts",
                            "{\"name\":\"secret-host\",\"uri\":\"test:///nonexistent/"
                            "s.xml\",\"run_as\":\"kvm-admin\"}");
        g_autofree char *err = g_build_filename(d->state_dir, "droverd.err", NULL);
        g_autofree char *text = NULL;
        g_autofree char *want =
            g_strdup_printf("DROVER_JOB_ID=%s", json_object_get_string_member(failed, "id"));
        dv_test_assert_job_state(failed, "failed");
        g_assert_true(g_file_get_contents(err, &text, NULL, NULL));
        g_assert_nonnull(strstr(text, want));
    }

    /* 2. Tamper one ciphertext in SQLite: that field alone is unreadable. */
    db1 = g_build_filename(d->state_dir, "drover.db", NULL);
    {
        g_autofree char *q = NULL;
        g_autoptr(JsonNode) pr = NULL;
        JsonObject *admin;
        g_autofree char *u = sql(db1, "UPDATE secrets SET value = substr(value, 1, length(value) - 3) || "
                                      "CASE WHEN substr(value, -3, 1) = 'A' THEN 'B' ELSE 'A' END || substr(value, -2) "
                                      "WHERE object_type = 'guest-os-profile' AND field = 'admin_password'; SELECT changes();");
        g_assert_cmpstr(u, ==, "1");
        pr = get(&c, d, "/api/v1/guest-os-profiles/desktops");
        admin = field(pr, "admin_password");
        g_assert_true(json_object_get_boolean_member(admin, "set"));
        g_assert_false(json_object_get_boolean_member(admin, "readable"));
        g_assert_nonnull(strstr(json_object_get_string_member(admin, "reason"), "altered"));
        g_assert_true(json_object_get_boolean_member(field(pr, "domain_join_password"), "readable"));
        g_assert_true(json_object_get_boolean_member(field(pr, "product_key"), "readable"));
        /* An unrelated update leaves the unreadable value exactly as it was. */
        q = sql(db1, "SELECT value FROM secrets WHERE field = 'admin_password'");
        {
            g_autoptr(JsonObject) j = job(&c, d, "PATCH", "/api/v1/guest-os-profiles/desktops",
                                          "{\"time_zone\":\"UTC\"}");
            g_autofree char *after = sql(db1, "SELECT value FROM secrets WHERE field = 'admin_password'");
            g_assert_cmpstr(after, ==, q);
        }
        /* Re-entering it is an explicit action, and fixes it. */
        {
            g_autoptr(JsonObject) j = job(&c, d, "PATCH", "/api/v1/guest-os-profiles/desktops",
                                          "{\"admin_password\":\"" PW_REENTERED "\"}");
            g_autoptr(JsonNode) pr2 = get(&c, d, "/api/v1/guest-os-profiles/desktops");
            g_assert_true(json_object_get_boolean_member(field(pr2, "admin_password"), "readable"));
        }
        /* A ciphertext moved to another field fails too. */
        {
            g_autofree char *m = sql(db1, "UPDATE secrets SET value = (SELECT value FROM secrets WHERE field = 'product_key') "
                                          "WHERE field = 'domain_join_password'; SELECT changes();");
            g_autoptr(JsonNode) pr3 = get(&c, d, "/api/v1/guest-os-profiles/desktops");
            JsonObject *jp = field(pr3, "domain_join_password");
            g_assert_cmpstr(m, ==, "1");
            g_assert_false(json_object_get_boolean_member(jp, "readable"));
            g_assert_true(json_object_get_boolean_member(field(pr3, "product_key"), "readable"));
            g_autoptr(JsonObject) fix = job(&c, d, "PATCH", "/api/v1/guest-os-profiles/desktops",
                                            "{\"domain_join_password\":\"" PW_JOIN "\"}");
        }
    }

    /* 3. The recovery key, made once while the first installation runs. */
    recovery = g_build_filename(d->state_dir, "..", "drover-recovery-test.key", NULL);
    g_unlink(recovery);
    {
        g_autofree char *cmd = g_strdup_printf("'%s' --state-dir '%s' keys recovery create --out '%s' >/dev/null",
                                               setup, d->state_dir, recovery);
        g_autofree char *again = g_strdup_printf("'%s' --state-dir '%s' keys recovery create --out '%s' 2>/dev/null",
                                                 setup, d->state_dir, recovery);
        run(&c, cmd);
        g_assert_cmpint(system(again), !=, 0); /* never overwritten */
    }
    /* 3b. Rotation while the server runs: a new key version, then every
     * secret re-encrypted under it in batches; the server opens both. */
    {
        g_autofree char *rot = g_strdup_printf("'%s' --state-dir '%s' keys rotate >/dev/null", setup, d->state_dir);
        g_autofree char *rek = g_strdup_printf("'%s' --state-dir '%s' --batch 2 keys rekey >/dev/null", setup, d->state_dir);
        g_autofree char *chk = g_strdup_printf("'%s' --state-dir '%s' keys check -o json", setup, d->state_dir);
        g_autofree char *out = NULL;
        int status = 0;
        run(&c, rot);
        run(&c, rek);
        /* A running server re-reads key versions on an unknown key id, at
         * most every 5 s (so bogus ids cannot make it hammer the
         * database); this one started less than 5 s ago. */
        g_usleep(5200 * 1000);
        g_assert_true(g_spawn_command_line_sync(chk, &out, NULL, &status, NULL));
        g_assert_true(g_spawn_check_wait_status(status, NULL));
        g_assert_nonnull(strstr(out, "\"k2\""));
        {
            g_autoptr(JsonNode) pr = get(&c, d, "/api/v1/guest-os-profiles/desktops");
            JsonObject *pk = field(pr, "product_key");
            g_assert_cmpstr(json_object_get_string_member(pk, "key_id"), ==, "k2");
            if (!json_object_get_boolean_member(pk, "readable"))
                g_error("k2 unreadable in the running server: %s",
                        json_object_get_string_member_with_default(pk, "reason", "?"));
        }
        {
            g_autofree char *left = sql(db1, "SELECT count(*) FROM secrets WHERE key_id = 'k1'");
            g_assert_cmpstr(left, ==, "0");
        }
    }
    dv_test_daemon_stop(d, FALSE);

    /* 4. The database and key file on "another machine": a second state
     * directory with another machine-id. */
    state2 = g_dir_make_tmp("drover-machine2-XXXXXX", &error);
    g_assert_no_error(error);
    machine2 = g_build_filename(state2, "machine-id", NULL);
    g_assert_true(g_file_set_contents(machine2, "0123456789abcdef0123456789abcdef\n", -1, NULL));
    {
        g_autofree char *cmd = g_strdup_printf("cp -a '%s/.' '%s/state/'", d->state_dir, state2);
        g_autofree char *mk = g_strdup_printf("mkdir -p '%s/state'", state2);
        run(&c, mk);
        run(&c, cmd);
    }
    db2 = g_build_filename(state2, "state", "drover.db", NULL);
    rows_before = sql(db2, "SELECT group_concat(value, '|') FROM secrets ORDER BY id");
    {
        g_autofree char *sdir = g_build_filename(state2, "state", NULL);
        g_autofree char *mid = g_strdup_printf("--machine-id-file=%s", machine2);
        const char *extra[] = { mid, NULL };
        DvTestDaemon *d2 = g_new0(DvTestDaemon, 1);
        g_autoptr(JsonNode) ra = NULL;
        g_autoptr(JsonNode) pr = NULL;
        JsonObject *pw;

        d2->state_dir = g_strdup(sdir);
        d2->token = g_strdup(d->token);
        d2->session = soup_session_new();
        d2->extra_args = g_strdupv((char **)extra);
        g_assert_true(dv_test_daemon_restart(d2));
        ra = get(&c, d2, "/api/v1/run-as-accounts/kvm-admin");
        pw = field(ra, "password");
        g_assert_true(json_object_get_boolean_member(pw, "set"));
        g_assert_false(json_object_get_boolean_member(pw, "readable"));
        g_assert_nonnull(strstr(json_object_get_string_member(pw, "reason"), "machine"));
        pr = get(&c, d2, "/api/v1/guest-os-profiles/desktops");
        g_assert_false(json_object_get_boolean_member(field(pr, "product_key"), "readable"));
        /* Unrelated updates keep working and rewrite nothing. */
        {
            g_autoptr(JsonObject) j = job(&c, d2, "PATCH", "/api/v1/run-as-accounts/kvm-admin",
                                          "{\"description\":\"moved\"}");
        }
        dv_test_daemon_stop(d2, FALSE);
        {
            g_autofree char *after = sql(db2, "SELECT group_concat(value, '|') FROM secrets ORDER BY id");
            g_assert_cmpstr(after, ==, rows_before);
        }

        /* 5. The recovery key opens everything there. */
        {
            g_autofree char *rk = g_strdup_printf("--recovery-key=%s", recovery);
            const char *extra2[] = { mid, rk, NULL };
            g_autoptr(JsonNode) ra2 = NULL;
            g_autoptr(JsonNode) pr2 = NULL;
            g_strfreev(d2->extra_args);
            d2->extra_args = g_strdupv((char **)extra2);
            g_assert_true(dv_test_daemon_restart(d2));
            ra2 = get(&c, d2, "/api/v1/run-as-accounts/kvm-admin");
            g_assert_true(json_object_get_boolean_member(field(ra2, "password"), "readable"));
            pr2 = get(&c, d2, "/api/v1/guest-os-profiles/desktops");
            g_assert_true(json_object_get_boolean_member(field(pr2, "admin_password"), "readable"));
            g_assert_true(json_object_get_boolean_member(field(pr2, "product_key"), "readable"));
            dv_test_daemon_stop(d2, FALSE);
        }
        {
            g_autofree char *out = g_build_filename(sdir, "droverd.out", NULL);
            g_autofree char *err = g_build_filename(sdir, "droverd.err", NULL);
            assert_no_plaintext_in_file(out);
            assert_no_plaintext_in_file(err);
            assert_no_plaintext_in_file(db2);
        }
        dv_test_daemon_free(d2);
    }

    /* 6. No plaintext in any response, log or database file. */
    assert_no_plaintext("API responses", c.seen->str);
    {
        g_autofree char *out = g_build_filename(d->state_dir, "droverd.out", NULL);
        g_autofree char *err = g_build_filename(d->state_dir, "droverd.err", NULL);
        g_autofree char *wal = g_build_filename(d->state_dir, "drover.db-wal", NULL);
        assert_no_plaintext_in_file(out);
        assert_no_plaintext_in_file(err);
        assert_no_plaintext_in_file(db1);
        assert_no_plaintext_in_file(wal);
    }
    {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s' '%s'", state2, recovery);
        run(&c, cmd);
    }
    g_string_free(c.seen, TRUE);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/drover/api/secrets", test_secrets);
    return g_test_run();
}
