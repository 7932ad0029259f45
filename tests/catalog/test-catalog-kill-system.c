/* kill -9 of a real droverd while it provisions a catalog of 200 machines
 * on the local libvirtd (qemu:///system), at three points in turn: while
 * the base is made (copied, not recorded), amid the machines (a batch
 * recorded, the others made but not recorded) and in the save step.  Each
 * time droverd starts again on the same state directory and the job
 * resumes; in the end it succeeds with every machine ready and the
 * reconciler reports nothing (ok true).
 *
 * The points are reached with droverd's test hook (DV_DEBUG_JOBS=1 and
 * DV_DEBUG_CATALOG_PAUSE=<point>: the job says so on stderr and waits).
 * A second case cancels the job while it is paused and provisions again.
 * Everything is named dvk<pid>-... (dvx<pid>-... in the second case); the
 * parent removes it afterwards. */
#define G_LOG_DOMAIN "DvTestCatalogKill"

#include "dv-test-system.h"
#include "dv-test-util.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define COUNT 200

static DvVirt *the_virt;

/* Each case has its own names ("dvk" / "dvx"), so nothing a killed
 * droverd left in libvirtd (a stream it never finished) meets the next
 * case under the same name. */
static char *
prefix_new(pid_t pid)
{
    const char *tag = strstr(g_test_get_path(), "cancel") != NULL  ? "dvx"
                      : strstr(g_test_get_path(), "stalled") != NULL ? "dvw"
                                                                      : "dvk";
    return g_strdup_printf("%s%05d-", tag, (int)(pid % 100000));
}

static void
run_argv(const char *const *argv)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *err = NULL;
    int status = 0;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                      &err, &status, &error) ||
        !g_spawn_check_wait_status(status, &error))
        g_error("%s: %s\n%s", argv[0], error->message, err != NULL ? err : "");
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

/* Waits for a job; on a timeout shows the job and droverd's stderr. */
static JsonObject *
wait_job(DvTestDaemon *d, const char *job_id, guint timeout_s)
{
    g_autofree char *path = g_strdup_printf("/api/v1/jobs/%s", job_id);
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
    for (;;) {
        guint status = 0;
        g_autoptr(JsonNode) resp = dv_test_request(d, "GET", path, NULL, &status);
        const char *state = resp != NULL ? json_object_get_string_member(json_node_get_object(resp), "state") : "";
        if (g_strcmp0(state, "queued") != 0 && g_strcmp0(state, "running") != 0)
            return json_object_ref(json_node_get_object(resp));
        if (g_get_monotonic_time() > deadline) {
            g_autofree char *t = resp != NULL ? json_to_string(resp, FALSE) : g_strdup("(none)");
            g_autofree char *file = g_build_filename(d->state_dir, "droverd.err", NULL);
            g_autofree char *err = NULL;
            g_file_get_contents(file, &err, NULL, NULL);
            g_error("job did not finish within %u s: %s\n--- droverd.err ---\n%s", timeout_s, t,
                    err != NULL ? err : "");
        }
        g_usleep(100 * 1000);
    }
}

static void
ok(DvTestDaemon *d, const char *method, const char *path, const char *body)
{
    g_autoptr(JsonObject) job = submit(d, method, path, body);
    g_autoptr(JsonObject) j = wait_job(d, json_object_get_string_member(job, "id"), 400);
    if (g_strcmp0(json_object_get_string_member(j, "state"), "succeeded") != 0) {
        g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), j);
        g_autofree char *t = json_to_string(n, FALSE);
        g_error("%s %s: %s", method, path, t);
    }
}

/* Waits until droverd's stderr says the job paused at @point. */
static void
wait_paused(DvTestDaemon *d, const char *point)
{
    g_autofree char *file = g_build_filename(d->state_dir, "droverd.err", NULL);
    g_autofree char *want = g_strdup_printf("catalog.provision: paused at %s", point);
    for (guint i = 0; i < 2400; i++) {
        g_autofree char *text = NULL;
        if (g_file_get_contents(file, &text, NULL, NULL) && strstr(text, want) != NULL)
            return;
        g_usleep(50 * 1000);
    }
    g_error("droverd did not pause at %s", point);
}

/* The names and files of one case: <prefix>pool, a transient dir pool
 * over a temp dir holding the master's disk (an empty 64 MiB qcow2),
 * droverd's empty state dir, and the catalog <prefix>cat. */
typedef struct {
    char *prefix;
    char *dir;
    char *pool;
    char *state_dir;
    char *master;
    char *cat;
} KillCase;

static void
kill_case_setup(KillCase *kc)
{
    g_autofree char *target = NULL;

    kc->prefix = prefix_new(getppid());
    kc->dir = dv_test_system_dir_new(kc->prefix);
    kc->pool = g_strdup_printf("%spool", kc->prefix);
    kc->state_dir = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), kc->prefix);
    kc->master = g_strdup_printf("%s/%smaster.qcow2", kc->dir, kc->prefix);
    kc->cat = g_strdup_printf("%scat", kc->prefix);
    target = g_strdup_printf("--target=%s", kc->dir);
    {
        const char *const mk[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=1.1", kc->master, "64M",
                                   NULL };
        const char *const pc[] = { "virsh", "-q", "-c", DV_TEST_SYSTEM_URI, "pool-create-as", kc->pool, "dir", target,
                                   NULL };
        run_argv(mk);
        run_argv(pc);
    }
    g_assert_cmpint(g_mkdir(kc->state_dir, 0700), ==, 0);
}

static void
kill_case_clear(KillCase *kc)
{
    g_free(kc->prefix);
    g_free(kc->dir);
    g_free(kc->pool);
    g_free(kc->state_dir);
    g_free(kc->master);
    g_free(kc->cat);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(KillCase, kill_case_clear)

/* The body creating the case's catalog of @count machines from its
 * master's snapshot "golden"; @extra ("" or members ending in ',') is
 * added. */
static char *
kill_case_catalog_body(const KillCase *kc, guint count, const char *extra)
{
    return g_strdup_printf("{\"name\":\"%s\",\"master_vm\":\"%smaster\",\"master_snapshot\":\"golden\","
                           "\"hosts\":[\"local\"],\"pool\":\"%s\",\"naming_scheme\":\"%s###\",\"count\":%u,"
                           "%s\"machine\":{\"memory_mib\":64}}",
                           kc->cat, kc->prefix, kc->pool, kc->prefix, count, extra);
}

/* Starts droverd on @state_dir with host "local" (the system daemon) and
 * VM <prefix>master on @master with its snapshot "golden". */
static DvTestDaemon *
start_with_master(const char *state_dir, const char *prefix, const char *master)
{
    DvTestDaemon *d = dv_test_daemon_start(state_dir, NULL);
    g_autofree char *body = NULL;
    g_autofree char *path = NULL;
    g_assert_nonnull(d);
    ok(d, "POST", "/api/v1/hosts", "{\"name\":\"local\",\"uri\":\"" DV_TEST_SYSTEM_URI "\"}");
    body = g_strdup_printf("{\"name\":\"%smaster\",\"host\":\"local\",\"memory_mib\":64,\"generation\":1,"
                           "\"disks\":[{\"volume\":\"%s\"}]}", prefix, master);
    ok(d, "POST", "/api/v1/vms", body);
    path = g_strdup_printf("/api/v1/vms/%smaster/snapshots", prefix);
    ok(d, "POST", path, "{\"name\":\"golden\"}");
    return d;
}

/* Provisions catalog @cat again; the job must succeed within @timeout_s
 * with @ready machines ready. */
static void
provision_again(DvTestDaemon *d, const char *cat, guint timeout_s, gint64 ready)
{
    g_autofree char *path = g_strdup_printf("/api/v1/catalogs/%s/provision", cat);
    g_autoptr(JsonObject) j = submit(d, "POST", path, NULL);
    g_autoptr(JsonObject) done = wait_job(d, json_object_get_string_member(j, "id"), timeout_s);
    g_assert_cmpstr(json_object_get_string_member(done, "state"), ==, "succeeded");
    g_assert_cmpint(json_object_get_int_member(json_object_get_object_member(done, "result"), "machines_ready"),
                    ==, ready);
}

/* Asserts catalog @cat reconciles clean, then deletes it and its master. */
static void
reconcile_and_delete(DvTestDaemon *d, const char *prefix, const char *cat)
{
    guint status = 0;
    g_autofree char *rp = g_strdup_printf("/api/v1/catalogs/%s/reconcile", cat);
    g_autoptr(JsonNode) r = dv_test_request(d, "GET", rp, NULL, &status);
    g_autofree char *t = json_to_string(r, FALSE);
    g_autofree char *cp = g_strdup_printf("/api/v1/catalogs/%s", cat);
    g_autofree char *mp = g_strdup_printf("/api/v1/vms/%smaster", prefix);
    g_printerr("# reconcile: %s\n", t);
    g_assert_cmpuint(status, ==, 200);
    g_assert_true(json_object_get_boolean_member(json_node_get_object(r), "ok"));
    ok(d, "DELETE", cp, NULL);
    ok(d, "DELETE", mp, NULL);
}

static void
test_kill_during_provisioning(void)
{
    g_auto(KillCase) kc = { 0 };
    g_autofree char *body = NULL;
    g_autofree char *job_id = NULL;
    g_autoptr(DvTestDaemon) d = NULL;
    g_autoptr(JsonObject) job = NULL;
    static const char *const points[] = { "consolidate", "machines", "save" };

    kill_case_setup(&kc);
    g_setenv("DV_DEBUG_CATALOG_PAUSE", points[0], TRUE);
    d = start_with_master(kc.state_dir, kc.prefix, kc.master);
    body = kill_case_catalog_body(&kc, COUNT, "\"personal_disk_mib\":16,");
    job = submit(d, "POST", "/api/v1/catalogs", body);
    job_id = g_strdup(json_object_get_string_member(job, "id"));
    for (gsize i = 0; i < G_N_ELEMENTS(points); i++) {
        wait_paused(d, points[i]);
        g_printerr("# kill -9 at %s\n", points[i]);
        dv_test_daemon_stop(d, TRUE);
        if (i + 1 < G_N_ELEMENTS(points))
            g_setenv("DV_DEBUG_CATALOG_PAUSE", points[i + 1], TRUE);
        else
            g_unsetenv("DV_DEBUG_CATALOG_PAUSE");
        g_assert_true(dv_test_daemon_restart(d));
    }
    {
        g_autoptr(JsonObject) done = wait_job(d, job_id, 400);
        JsonObject *result = json_object_get_object_member(done, "result");
        if (g_strcmp0(json_object_get_string_member(done, "state"), "succeeded") != 0) {
            g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), done);
            g_autofree char *t = json_to_string(n, FALSE);
            g_error("the resumed job did not succeed: %s", t);
        }
        g_assert_cmpint(json_object_get_int_member(done, "attempts"), >=, 4);
        g_assert_cmpint(json_object_get_int_member(result, "machines_ready"), ==, COUNT);
        g_assert_cmpint(json_object_get_int_member(result, "machines_failed"), ==, 0);
    }
    reconcile_and_delete(d, kc.prefix, kc.cat);
}

/* Cancelling mid-way: the machines not made stay pending (none failed),
 * the job ends cancelled, and provisioning again finishes the catalog. */
static void
test_cancel_and_retry(void)
{
    g_auto(KillCase) kc = { 0 };
    g_autofree char *body = NULL;
    g_autofree char *job_id = NULL;
    g_autoptr(DvTestDaemon) d = NULL;
    g_autoptr(JsonObject) job = NULL;

    kill_case_setup(&kc);
    /* Paused before anything is made, so most machines are not. */
    g_setenv("DV_DEBUG_CATALOG_PAUSE", "consolidate", TRUE);
    d = start_with_master(kc.state_dir, kc.prefix, kc.master);
    body = kill_case_catalog_body(&kc, COUNT, "");
    job = submit(d, "POST", "/api/v1/catalogs", body);
    job_id = g_strdup(json_object_get_string_member(job, "id"));
    wait_paused(d, "consolidate");
    {
        guint status = 0;
        g_autofree char *cp = g_strdup_printf("/api/v1/jobs/%s/cancel", job_id);
        g_autoptr(JsonNode) r = dv_test_request(d, "POST", cp, NULL, &status);
        g_assert_cmpuint(status, ==, 200);
    }
    {
        g_autoptr(JsonObject) done = wait_job(d, job_id, 400);
        guint status = 0;
        g_autofree char *mp = g_strdup_printf("/api/v1/catalogs/%s/machines?state=failed", kc.cat);
        g_autoptr(JsonNode) r = NULL;
        g_assert_cmpstr(json_object_get_string_member(done, "state"), ==, "cancelled");
        /* Cancelled is not failed: no machine carries an error. */
        r = dv_test_request(d, "GET", mp, NULL, &status);
        g_assert_cmpuint(status, ==, 200);
        g_assert_cmpuint(json_array_get_length(json_object_get_array_member(json_node_get_object(r), "items")), ==,
                         0);
    }
    g_unsetenv("DV_DEBUG_CATALOG_PAUSE");
    dv_test_daemon_stop(d, FALSE);
    g_assert_true(dv_test_daemon_restart(d));
    provision_again(d, kc.cat, 400, COUNT);
    reconcile_and_delete(d, kc.prefix, kc.cat);
}

/* A worker that never comes back (droverd's test hook makes one sleep as
 * a libvirt call that never returns would): after the stall timeout the
 * job fails that machine with the reason, the others are ready, and
 * provisioning again finishes it. */
static void
test_stalled_worker(void)
{
    g_auto(KillCase) kc = { 0 };
    g_autofree char *body = NULL;
    g_autoptr(DvTestDaemon) d = NULL;
    g_autoptr(JsonObject) job = NULL;

    kill_case_setup(&kc);
    g_setenv("DV_DEBUG_CATALOG_PAUSE", "worker", TRUE);
    g_setenv("DV_DEBUG_CATALOG_STALL_S", "5", TRUE);
    d = start_with_master(kc.state_dir, kc.prefix, kc.master);
    body = kill_case_catalog_body(&kc, 20, "");
    job = submit(d, "POST", "/api/v1/catalogs", body);
    {
        g_autoptr(JsonObject) done = wait_job(d, json_object_get_string_member(job, "id"), 120);
        JsonObject *err = json_object_get_object_member(done, "error");
        JsonObject *result = json_object_get_object_member(done, "result");
        g_printerr("# stalled: %s\n", json_object_get_string_member(err, "message"));
        g_assert_cmpstr(json_object_get_string_member(done, "state"), ==, "failed");
        g_assert_nonnull(strstr(json_object_get_string_member(err, "message"), "no answer from its host within 5 s"));
        g_assert_cmpint(json_object_get_int_member(result, "machines_ready"), ==, 19);
        g_assert_cmpint(json_object_get_int_member(result, "machines_failed"), ==, 1);
    }
    provision_again(d, kc.cat, 120, 20);
    reconcile_and_delete(d, kc.prefix, kc.cat);
    /* The sleeping worker is still in droverd: stop it hard. */
    dv_test_daemon_stop(d, TRUE);
    g_unsetenv("DV_DEBUG_CATALOG_PAUSE");
    g_unsetenv("DV_DEBUG_CATALOG_STALL_S");
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
    g_test_add_data_func("/drover/catalog/kill-system/kill-9-at-three-points",
                         (gconstpointer)test_kill_during_provisioning, run_isolated);
    g_test_add_data_func("/drover/catalog/kill-system/cancel-and-retry", (gconstpointer)test_cancel_and_retry,
                         run_isolated);
    g_test_add_data_func("/drover/catalog/kill-system/stalled-worker", (gconstpointer)test_stalled_worker,
                         run_isolated);
    rc = g_test_run();
    dv_virt_free(the_virt);
    return rc;
}
