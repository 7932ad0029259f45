/* Leased jobs across two real droverd (docs/DECISIONS.md, "Leased jobs"):
 * servers A and B on one private PostgreSQL database, their keys shared
 * through the directory protector on the private slapd, catalogs on the
 * local libvirtd (qemu:///system), every request through their HTTP API.
 *
 * - kill -9: a catalog provisioning accepted by A, A killed while its job
 *   is amid the machines (droverd's test hook DV_DEBUG_CATALOG_PAUSE=
 *   machines holds it there, in A only): B takes the job over within the
 *   lease and a heartbeat and finishes it; every machine once, the
 *   reconciler reports nothing.
 * - SIGSTOP: A paused the same way until B took its job over and finished
 *   it, then SIGCONT: A finds its epoch gone and writes nothing more (the
 *   job's row stays B's, byte for byte).
 * - A cancel through B of the job A runs: A's next renewal sees it.
 * - Two jobs adding machines to one catalog sent at once, one to each
 *   server, and a delete racing one: one 202, one 409 naming the
 *   accepted job.
 *
 * The lease is 4 s (--job-lease; DV_TEST_JOB_LEASE overrides, to measure
 * the default's takeover).  Everything is named dvj<pid>-...; the parent
 * removes it afterwards, the database is dropped by the child. */
#define G_LOG_DOMAIN "DvTestCatalogLease"

#include "dv-config.h"
#include "dv-test-pg.h"
#include "dv-test-system.h"
#include "dv-test-util.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define COUNT 200 /* the 200; 40 pooled machines were all made before the first batch was recorded, so the pause at "machines" never came */

static DvVirt *the_virt;

static char *
prefix_new(pid_t pid)
{
    return g_strdup_printf("dvj%05d-", (int)(pid % 100000));
}

static void
run_argv(const char *const *argv)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *err = NULL;
    int status = 0;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                      NULL, NULL, NULL, &err, &status, &error) ||
        !g_spawn_check_wait_status(status, &error))
        g_error("%s: %s\n%s", argv[0], error->message, err != NULL ? err : "");
}

/* One value of @sql on database @uri (psql -tA), stripped (owned). */
static char *
pg_value(const char *uri, const char *sql)
{
    const char *const argv[] = { "psql", "-q", "-tA", "-d", uri, "-c", sql, NULL };
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    int status = 0;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
                      &status, &error) ||
        !g_spawn_check_wait_status(status, &error))
        g_error("psql %s: %s\n%s", sql, error->message, err != NULL ? err : "");
    return g_strdup(g_strstrip(out));
}

/* The job's lease and end as the database has them: "owner|epoch|state|
 * result|updated_at" (owned). */
static char *
job_lease_row(const char *uri, const char *job_id)
{
    g_autofree char *sql = g_strdup_printf(
        "SELECT coalesce(lease_owner,'') || '|' || lease_epoch || '|' || state || '|' || "
        "coalesce(result,'') || '|' || updated_at FROM jobs WHERE id = '%s'",
        job_id);
    return pg_value(uri, sql);
}

static char *
job_owner(const char *uri, const char *job_id)
{
    g_autofree char *sql =
        g_strdup_printf("SELECT coalesce(lease_owner,'') FROM jobs WHERE id = '%s'", job_id);
    return pg_value(uri, sql);
}

static JsonObject *
submit(DvTestDaemon *d, const char *method, const char *path, const char *body)
{
    guint status = 0;
    g_autoptr(JsonNode) resp = dv_test_request(d, method, path, body, &status);
    if (status != 202) {
        g_autofree char *t = resp != NULL ? json_to_string(resp, FALSE) : g_strdup("(none)");
        g_error("%s %s: HTTP %u %s", method, path, status, t);
    }
    return json_object_ref(json_object_get_object_member(json_node_get_object(resp), "job"));
}

static JsonObject *
wait_job(DvTestDaemon *d, const char *job_id, guint timeout_s)
{
    g_autofree char *path = g_strdup_printf("/api/v1/jobs/%s", job_id);
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
    for (;;) {
        guint status = 0;
        g_autoptr(JsonNode) resp = dv_test_request(d, "GET", path, NULL, &status);
        const char *state =
            resp != NULL ? json_object_get_string_member(json_node_get_object(resp), "state") : "";
        if (g_strcmp0(state, "queued") != 0 && g_strcmp0(state, "running") != 0)
            return json_object_ref(json_node_get_object(resp));
        if (g_get_monotonic_time() > deadline) {
            g_autofree char *t = resp != NULL ? json_to_string(resp, FALSE) : g_strdup("(none)");
            g_error("job did not finish within %u s: %s", timeout_s, t);
        }
        g_usleep(100 * 1000);
    }
}

static void
assert_succeeded(JsonObject *j)
{
    if (g_strcmp0(json_object_get_string_member(j, "state"), "succeeded") != 0) {
        g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), j);
        g_autofree char *t = json_to_string(n, FALSE);
        g_error("job did not succeed: %s", t);
    }
}

static void
ok(DvTestDaemon *d, const char *method, const char *path, const char *body)
{
    g_autoptr(JsonObject) job = submit(d, method, path, body);
    g_autoptr(JsonObject) j = wait_job(d, json_object_get_string_member(job, "id"), 300);
    assert_succeeded(j);
}

/* Lines of droverd's stderr (all its runs) containing @want. */
static guint
log_count(DvTestDaemon *d, const char *want)
{
    g_autofree char *file = g_build_filename(d->state_dir, "droverd.err", NULL);
    g_autofree char *text = NULL;
    guint n = 0;
    if (!g_file_get_contents(file, &text, NULL, NULL))
        return 0;
    for (const char *p = strstr(text, want); p != NULL; p = strstr(p + 1, want))
        n++;
    return n;
}

/* Waits until droverd logged @want more than @before times. */
static void
wait_log_after(DvTestDaemon *d, const char *want, guint before, guint timeout_s)
{
    for (guint i = 0; i < timeout_s * 20; i++) {
        if (log_count(d, want) > before)
            return;
        g_usleep(50 * 1000);
    }
    {
        g_autofree char *file = g_build_filename(d->state_dir, "droverd.err", NULL);
        g_autofree char *text = NULL;
        if (g_file_get_contents(file, &text, NULL, NULL))
            g_printerr("--- %s (last 4000 bytes) ---\n%s\n--- end ---\n", file,
                       text + (strlen(text) > 4000 ? strlen(text) - 4000 : 0));
    }
    g_error("droverd (%s) did not log \"%s\" within %u s", d->state_dir, want, timeout_s);
}

static void
wait_log(DvTestDaemon *d, const char *want, guint timeout_s)
{
    wait_log_after(d, want, 0, timeout_s);
}

/* Polls until another server than @owner holds the job's lease; returns
 * the seconds since @since (monotonic). */
static double
wait_takeover(const char *uri, const char *job_id, const char *owner, gint64 since, guint timeout_s)
{
    for (;;) {
        g_autofree char *now = job_owner(uri, job_id);
        double s = (double)(g_get_monotonic_time() - since) / G_USEC_PER_SEC;
        if (now[0] != '\0' && g_strcmp0(now, owner) != 0)
            return s;
        if (s > timeout_s)
            g_error("job %s still held by %s after %u s", job_id, owner, timeout_s);
        g_usleep(50 * 1000);
    }
}

static pid_t
daemon_pid(DvTestDaemon *d)
{
    const char *id = g_subprocess_get_identifier(d->proc);
    g_assert_nonnull(id);
    return (pid_t)g_ascii_strtoll(id, NULL, 10);
}

/* B: a second server on A's database, its own state dir holding A's
 * directory.conf; A's token works (same database). */
static DvTestDaemon *
second_server(DvTestDaemon *a, const char *state_dir, const char *const *extra)
{
    DvTestDaemon *d = g_new0(DvTestDaemon, 1);
    g_autofree char *src = g_build_filename(a->state_dir, "directory.conf", NULL);
    g_autofree char *dst = g_build_filename(state_dir, "directory.conf", NULL);
    g_autofree char *text = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(src, &text, &len, NULL));
    g_assert_true(g_file_set_contents_full(dst, text, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT,
                                           0600, NULL));
    d->state_dir = g_strdup(state_dir);
    d->token = g_strdup(a->token);
    d->session = soup_session_new_with_options("timeout", 60, NULL);
    d->extra_args = g_strdupv((char **)extra);
    g_assert_true(dv_test_daemon_restart(d));
    return d;
}

static void
directory_init(DvTestDaemon *a, const char *db_uri)
{
    g_autofree char *setup = dv_test_build_path("src", "setup", "drover-setup", NULL);
    g_autofree char *container =
        g_strdup_printf("ou=drover-lease-%u,%s", g_random_int(), dv_test_env("DV_TEST_LDAP_BASE"));
    const char *const argv[] = { setup,
                                 "--state-dir",
                                 a->state_dir,
                                 "--database",
                                 db_uri,
                                 "keys",
                                 "directory",
                                 "init",
                                 "--ldap-uri",
                                 dv_test_env("DV_TEST_LDAP_URI"),
                                 "--container",
                                 container,
                                 "--admin-dn",
                                 dv_test_env("DV_TEST_LDAP_ADMIN_DN"),
                                 "--admin-password-file",
                                 dv_test_env("DV_TEST_LDAP_ADMIN_PW_FILE"),
                                 "--config-admin-uri",
                                 dv_test_env("DV_TEST_LDAPI_URI"),
                                 "--service-dn",
                                 dv_test_env("DV_TEST_LDAP_SERVICE_DN"),
                                 "--service-password-file",
                                 dv_test_env("DV_TEST_LDAP_SERVICE_PW_FILE"),
                                 "--group-dn",
                                 dv_test_env("DV_TEST_LDAP_GROUP_DN"),
                                 "--ca-file",
                                 dv_test_env("DV_TEST_LDAP_CA"),
                                 NULL };
    run_argv(argv);
}

/* Catalog @name of COUNT machines (with personal disks) from the master's
 * snapshot "golden" on the case's pool. */
static char *
catalog_body(const char *prefix, const char *name)
{
    return g_strdup_printf(
        "{\"name\":\"%s%s\",\"master_vm\":\"%smaster\",\"master_snapshot\":\"golden\","
        "\"hosts\":[\"local\"],\"pool\":\"%spool\",\"naming_scheme\":\"%s%s###\",\"count\":%u,"
        "\"personal_disk_mib\":16,\"machine\":{\"memory_mib\":64}}",
        prefix, name, prefix, prefix, prefix, name, COUNT);
}

/* The catalog is complete and made once: COUNT machines ready with
 * distinct names, COUNT domains of its naming scheme on the host, and a
 * clean reconcile (no orphan, nothing missing). */
static void
assert_catalog_complete(DvTestDaemon *d, const char *prefix, const char *name, guint count)
{
    g_autofree char *mp = g_strdup_printf("/api/v1/catalogs/%s%s/machines?limit=500", prefix, name);
    g_autofree char *rp = g_strdup_printf("/api/v1/catalogs/%s%s/reconcile", prefix, name);
    g_autofree char *scheme = g_strdup_printf("%s%s", prefix, name);
    g_autoptr(GHashTable) names = g_hash_table_new(g_str_hash, g_str_equal);
    guint status = 0;
    g_autoptr(JsonNode) m = dv_test_request(d, "GET", mp, NULL, &status);
    JsonArray *items;
    guint domains = 0;

    g_assert_cmpuint(status, ==, 200);
    items = json_object_get_array_member(json_node_get_object(m), "items");
    g_assert_cmpuint(json_array_get_length(items), ==, count);
    for (guint i = 0; i < json_array_get_length(items); i++) {
        JsonObject *o = json_array_get_object_element(items, i);
        g_assert_cmpstr(json_object_get_string_member(o, "state"), ==, "ready");
        g_assert_true(g_hash_table_add(names, (gpointer)json_object_get_string_member(o, "name")));
    }
    {
        const char *const args[] = { "list", "--all", "--name", NULL };
        g_autofree char *out = dv_test_virsh(args);
        g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
        for (guint i = 0; lines[i] != NULL; i++)
            if (g_str_has_prefix(lines[i], scheme))
                domains++;
    }
    g_assert_cmpuint(domains, ==, count);
    {
        g_autoptr(JsonNode) r = dv_test_request(d, "GET", rp, NULL, &status);
        g_autofree char *t = json_to_string(r, FALSE);
        g_assert_cmpuint(status, ==, 200);
        if (!json_object_get_boolean_member(json_node_get_object(r), "ok"))
            g_error("reconcile of %s: %s", scheme, t);
    }
}

typedef struct {
    DvTestDaemon *d;
    const char *method;
    const char *path;
    const char *body;
    GMutex *lock;
    GCond *cond;
    gboolean *go;
    guint status;
    JsonNode *resp;
} Racer;

static gpointer
racer_run(gpointer data)
{
    Racer *r = data;
    /* Each racer its own session: a SoupSession is used from one thread. */
    g_autoptr(SoupSession) own = soup_session_new_with_options("timeout", 60, NULL);
    DvTestDaemon copy = *r->d;
    copy.session = own;
    g_mutex_lock(r->lock);
    while (!*r->go)
        g_cond_wait(r->cond, r->lock);
    g_mutex_unlock(r->lock);
    r->resp = dv_test_request(&copy, r->method, r->path, r->body, &r->status);
    return NULL;
}

/* Sends the two requests at once, one to each server: exactly one is
 * accepted (202) and the other is 409 naming the accepted job; returns
 * that job's id (owned). */
static char *
race(DvTestDaemon *a, const char *method_a, const char *path_a, const char *body_a, DvTestDaemon *b,
     const char *method_b, const char *path_b, const char *body_b)
{
    GMutex lock;
    GCond cond;
    gboolean go = FALSE;
    Racer r[2] = { { a, method_a, path_a, body_a, &lock, &cond, &go, 0, NULL },
                   { b, method_b, path_b, body_b, &lock, &cond, &go, 0, NULL } };
    GThread *t[2];
    guint winner;
    const char *job_id;
    const char *message;

    g_mutex_init(&lock);
    g_cond_init(&cond);
    for (guint i = 0; i < 2; i++)
        t[i] = g_thread_new("racer", racer_run, &r[i]);
    g_usleep(50 * 1000);
    g_mutex_lock(&lock);
    go = TRUE;
    g_cond_broadcast(&cond);
    g_mutex_unlock(&lock);
    for (guint i = 0; i < 2; i++)
        g_thread_join(t[i]);
    g_mutex_clear(&lock);
    g_cond_clear(&cond);
    g_printerr("# race: %s %s -> %u, %s %s -> %u\n", method_a, path_a, r[0].status, method_b,
               path_b, r[1].status);
    g_assert_true((r[0].status == 202) != (r[1].status == 202));
    winner = r[0].status == 202 ? 0 : 1;
    g_assert_cmpuint(r[1 - winner].status, ==, 409);
    job_id = json_object_get_string_member(
        json_object_get_object_member(json_node_get_object(r[winner].resp), "job"), "id");
    message = json_object_get_string_member(
        json_object_get_object_member(json_node_get_object(r[1 - winner].resp), "error"),
        "message");
    g_printerr("# 409: %s\n", message);
    g_assert_nonnull(strstr(message, job_id));
    {
        char *id = g_strdup(job_id);
        json_node_unref(r[0].resp);
        json_node_unref(r[1].resp);
        return id;
    }
}

static void
test_two_servers(void)
{
    g_autofree char *prefix = prefix_new(getppid());
    g_autofree char *dir = dv_test_system_dir_new(prefix);
    g_autofree char *master = g_strdup_printf("%s/%smaster.qcow2", dir, prefix);
    g_autofree char *states = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), prefix);
    g_autofree char *state_a = g_build_filename(states, "a", NULL);
    g_autofree char *state_b = g_build_filename(states, "b", NULL);
    g_autofree char *db_name = NULL;
    g_autofree char *db_uri = NULL;
    g_autofree char *lease =
        g_strdup(g_getenv("DV_TEST_JOB_LEASE") != NULL ? g_getenv("DV_TEST_JOB_LEASE") : "4");
    guint lease_s = (guint)g_ascii_strtoull(lease, NULL, 10);
    g_autoptr(DvTestDaemon) a = NULL;
    g_autoptr(DvTestDaemon) b = NULL;
    const char *extra[] = { "--database", NULL, "--job-lease", lease, NULL };
    guint paused = 0;

    if (!dv_test_have_service("DV_TEST_PG_URI", "PostgreSQL") ||
        !dv_test_have_service("DV_TEST_LDAP_URI", "slapd"))
        return;
    {
        g_autofree char *target = g_strdup_printf("--target=%s", dir);
        g_autofree char *pool = g_strdup_printf("%spool", prefix);
        const char *const mk[] = { "qemu-img", "create",     "-q",   "-f",  "qcow2",
                                   "-o",       "compat=1.1", master, "64M", NULL };
        const char *const pc[] = {
            "virsh", "-q", "-c", DV_TEST_SYSTEM_URI, "pool-create-as", pool, "dir", target, NULL
        };
        run_argv(mk);
        run_argv(pc);
    }
    g_assert_cmpint(g_mkdir_with_parents(state_a, 0700), ==, 0);
    g_assert_cmpint(g_mkdir_with_parents(state_b, 0700), ==, 0);
    db_uri = dv_test_pg_new_database("dv_lease", &db_name);
    extra[1] = db_uri;

    /* A bad lease is refused before anything starts, from the command
     * line and from the config file. */
    {
        g_autofree char *conf = g_build_filename(state_b, "bad.conf", NULL);
        const char *const argv1[] = { dv_test_droverd_path(), "--state-dir", state_b,
                                      "--job-lease",          "1",           NULL };
        const char *const argv2[] = {
            dv_test_droverd_path(), "--state-dir", state_b, "--config", conf, NULL
        };
        const char *const *argvs[] = { argv1, argv2 };
        g_assert_true(g_file_set_contents(conf, "[server]\njob_lease = 601\n", -1, NULL));
        for (guint i = 0; i < G_N_ELEMENTS(argvs); i++) {
            g_autofree char *err = NULL;
            int status = 0;
            g_assert_true(g_spawn_sync(NULL, (char **)argvs[i], NULL, G_SPAWN_STDOUT_TO_DEV_NULL,
                                       NULL, NULL, NULL, &err, &status, NULL));
            g_assert_true(WIFEXITED(status));
            g_assert_cmpint(WEXITSTATUS(status), ==, 2);
            g_assert_true(strstr(err, "job_lease") != NULL || strstr(err, "job-lease") != NULL);
        }
        g_unlink(conf);
    }

    /* A pauses its provisioning amid the machines (its own environment
     * only); B does not. */
    g_setenv("DV_DEBUG_CATALOG_PAUSE", "machines", TRUE);
    a = dv_test_daemon_start(state_a, extra);
    g_unsetenv("DV_DEBUG_CATALOG_PAUSE");
    directory_init(a, db_uri);
    b = second_server(a, state_b, extra);
    ok(a, "POST", "/api/v1/hosts", "{\"name\":\"local\",\"uri\":\"" DV_TEST_SYSTEM_URI "\"}");
    {
        g_autofree char *body =
            g_strdup_printf("{\"name\":\"%smaster\",\"host\":\"local\",\"memory_mib\":64,"
                            "\"generation\":1,\"disks\":[{\"volume\":\"%s\"}]}",
                            prefix, master);
        g_autofree char *path = g_strdup_printf("/api/v1/vms/%smaster/snapshots", prefix);
        ok(a, "POST", "/api/v1/vms", body);
        ok(a, "POST", path, "{\"name\":\"golden\"}");
    }

    /* (a) kill -9 of A amid the machines: B takes over and finishes. */
    {
        g_autofree char *body = catalog_body(prefix, "k");
        g_autoptr(JsonObject) job = submit(a, "POST", "/api/v1/catalogs", body);
        const char *job_id = json_object_get_string_member(job, "id");
        g_autofree char *owner = NULL;
        g_autoptr(JsonObject) done = NULL;
        JsonObject *result;
        gint64 t0;
        double took;

        /* Accepted with its catalog scope and the catalog's job id, in
         * the transaction that wrote the catalog. */
        {
            g_autofree char *sql = g_strdup_printf(
                "SELECT s.job_id || '|' || c.job_id FROM catalogs c JOIN job_scopes s "
                "ON s.scope_kind = 'catalog' AND s.object_id = c.id WHERE c.name = '%sk'",
                prefix);
            g_autofree char *both = pg_value(db_uri, sql);
            g_autofree char *want = g_strdup_printf("%s|%s", job_id, job_id);
            g_assert_cmpstr(both, ==, want);
        }
        wait_log(a, "catalog.provision: paused at machines", 120);
        owner = job_owner(db_uri, job_id);
        g_assert_cmpstr(owner, !=, "");
        t0 = g_get_monotonic_time();
        dv_test_daemon_stop(a, TRUE);
        took = wait_takeover(db_uri, job_id, owner, t0, lease_s + lease_s / 4 + 10);
        g_printerr("# kill -9: taken over %.2f s after the kill (lease %u s, heartbeat %.2f s)\n",
                   took, lease_s, lease_s / 4.0);
        g_assert_cmpfloat(took, <=, lease_s + lease_s / 4.0 + 1.0);
        done = wait_job(b, job_id, 300);
        assert_succeeded(done);
        result = json_object_get_object_member(done, "result");
        g_assert_cmpint(json_object_get_int_member(result, "machines_ready"), ==, COUNT);
        g_assert_cmpint(json_object_get_int_member(result, "machines_failed"), ==, 0);
        g_assert_cmpint(json_object_get_int_member(done, "attempts"), >=, 2);
        assert_catalog_complete(b, prefix, "k", COUNT);
    }

    /* (b) SIGSTOP of A until B took its job over and finished it; A,
     * continued, writes nothing more for it. */
    g_setenv("DV_DEBUG_CATALOG_PAUSE", "machines", TRUE);
    g_assert_true(dv_test_daemon_restart(a));
    g_unsetenv("DV_DEBUG_CATALOG_PAUSE");
    paused = log_count(a, "catalog.provision: paused at machines");
    {
        g_autofree char *body = catalog_body(prefix, "s");
        g_autoptr(JsonObject) job = submit(a, "POST", "/api/v1/catalogs", body);
        const char *job_id = json_object_get_string_member(job, "id");
        g_autofree char *owner = NULL;
        g_autofree char *fenced = g_strdup_printf("job %s: its lease is lost", job_id);
        g_autofree char *row_b = NULL;
        g_autofree char *row_after = NULL;
        g_autoptr(JsonObject) done = NULL;
        gint64 t0;
        double took;

        wait_log_after(a, "catalog.provision: paused at machines", paused, 120);
        owner = job_owner(db_uri, job_id);
        t0 = g_get_monotonic_time();
        g_assert_cmpint(kill(daemon_pid(a), SIGSTOP), ==, 0);
        took = wait_takeover(db_uri, job_id, owner, t0, lease_s + lease_s / 4 + 10);
        g_printerr("# SIGSTOP: taken over %.2f s after the stop\n", took);
        done = wait_job(b, job_id, 300);
        assert_succeeded(done);
        row_b = job_lease_row(db_uri, job_id);
        g_assert_false(g_str_has_prefix(row_b, owner));
        g_assert_cmpint(kill(daemon_pid(a), SIGCONT), ==, 0);
        /* A's next renewal finds the epoch raised and fences the job. */
        wait_log(a, fenced, lease_s + 10);
        /* Its paused step wakes on the fence and its writes are refused. */
        g_usleep((gulong)lease_s * G_USEC_PER_SEC / 2 + G_USEC_PER_SEC);
        row_after = job_lease_row(db_uri, job_id);
        g_assert_cmpstr(row_after, ==, row_b);
        assert_catalog_complete(b, prefix, "s", COUNT);
        /* A still serves, and reads B's end of the job. */
        {
            g_autoptr(JsonObject) seen = wait_job(a, job_id, 10);
            assert_succeeded(seen);
        }
    }

    /* (d) a cancel through B of the job A runs: A's next renewal reads
     * the row's cancel_requested and cancels the job's cancellable (which
     * also ends its pause); it ends cancelled on A, not taken over. */
    {
        g_autofree char *body = catalog_body(prefix, "c");
        g_autoptr(JsonObject) job = NULL;
        const char *job_id;
        g_autofree char *owner = NULL;
        g_autofree char *cp = NULL;
        g_autoptr(JsonObject) done = NULL;
        g_autofree char *after = NULL;
        gint64 t0;
        double took;

        paused = log_count(a, "catalog.provision: paused at machines");
        job = submit(a, "POST", "/api/v1/catalogs", body);
        job_id = json_object_get_string_member(job, "id");
        wait_log_after(a, "catalog.provision: paused at machines", paused, 120);
        owner = job_owner(db_uri, job_id);
        cp = g_strdup_printf("/api/v1/jobs/%s/cancel", job_id);
        t0 = g_get_monotonic_time();
        {
            g_autoptr(JsonObject) r = dv_test_request_as_ok(b, b->token, "POST", cp, NULL, 200);
        }
        done = wait_job(b, job_id, lease_s + 30);
        took = (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
        g_printerr("# cancel through B: the job ended on A %.2f s later\n", took);
        g_assert_cmpstr(json_object_get_string_member(done, "state"), ==, "cancelled");
        after = job_owner(db_uri, job_id);
        g_assert_cmpstr(after, ==, owner);
        g_assert_cmpuint(log_count(a, "cancel requested (through another server)"), ==, 1);
        g_assert_cmpfloat(took, <=, lease_s / 4.0 + 5.0);
    }

    /* (c) two jobs on one catalog sent at once, one to each server: each
     * adds 5 machines, so the first lasts while the second is checked. */
    for (guint round = 0; round < 2; round++) {
        g_autofree char *path = g_strdup_printf("/api/v1/catalogs/%sk/machines", prefix);
        const char *add = "{\"count\":5}";
        g_autofree char *job_id = race(a, "POST", path, add, b, "POST", path, add);
        g_autoptr(JsonObject) done = wait_job(b, job_id, 120);
        assert_succeeded(done);
    }
    assert_catalog_complete(a, prefix, "k", COUNT + 10);

    /* Clean up through the servers, then the database. */
    {
        g_autofree char *k = g_strdup_printf("/api/v1/catalogs/%sk", prefix);
        g_autofree char *s = g_strdup_printf("/api/v1/catalogs/%ss", prefix);
        g_autofree char *m = g_strdup_printf("/api/v1/vms/%smaster", prefix);
        g_autofree char *c = g_strdup_printf("/api/v1/catalogs/%sc", prefix);
        g_autofree char *cm = g_strdup_printf("/api/v1/catalogs/%sc/machines", prefix);
        guint status = 0;
        /* A delete racing a job on its catalog: one of them. */
        {
            g_autofree char *job_id = race(a, "POST", cm, "{\"count\":2}", b, "DELETE", c, NULL);
            g_autoptr(JsonObject) done = wait_job(b, job_id, 120);
            g_autoptr(JsonNode) r = NULL;
            assert_succeeded(done);
            r = dv_test_request(a, "GET", c, NULL, &status);
            if (status == 200)
                ok(b, "DELETE", c, NULL);
            else
                g_assert_cmpuint(status, ==, 404);
        }
        ok(b, "DELETE", k, NULL);
        ok(a, "DELETE", s, NULL);
        ok(b, "DELETE", m, NULL);
    }
    dv_test_daemon_stop(a, FALSE);
    dv_test_daemon_stop(b, FALSE);
    dv_test_pg_drop_database(db_name);
}

static void
run_isolated(gconstpointer data)
{
    GTestFunc fn = (GTestFunc)data;
    g_autofree char *prefix = NULL;

    if (g_test_subprocess()) {
        fn();
        return;
    }
    if (!dv_test_system_check_daemon(the_virt))
        return;
    prefix = prefix_new(getpid());
    dv_test_system_run_isolated(the_virt, prefix, 540);
}

int
main(int argc, char **argv)
{
    int rc;
    g_test_init(&argc, &argv, NULL);
    the_virt = dv_virt_new();
    g_test_add_data_func("/drover/catalog/lease-system/two-servers",
                         (gconstpointer)test_two_servers, run_isolated);
    rc = g_test_run();
    dv_virt_free(the_virt);
    return rc;
}
