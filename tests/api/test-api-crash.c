/* droverd killed with SIGKILL at many points of VM creation, against a
 * test:/// host: after each restart no VM row is left in a transitional
 * state without a live job, and the name can be used again. */
#define G_LOG_DOMAIN "DvTestApiCrash"

#include "dv-test-util.h"

#include <signal.h>
#include <string.h>

#define CRASH_ROUNDS 14
#define CRASH_VM "crashvm"

typedef DvTestApiFixture Fixture;



static JsonObject *
get_object(DvTestDaemon *d, const char *path)
{
    guint status = 0;
    g_autoptr(JsonNode) r = dv_test_request(d, "GET", path, NULL, &status);
    g_assert_cmpuint(status, ==, 200);
    return json_object_ref(json_node_get_object(r));
}

/* Jobs queued or running, after a restart: they may still be the resumed
 * creates; waits until none is left (every one ended). */
static void
wait_jobs_settled(DvTestDaemon *d)
{
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
    while (dv_test_count(d, "/api/v1/jobs?state=running") + dv_test_count(d, "/api/v1/jobs?state=queued") > 0) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(50 * 1000);
    }
}

/* Every VM row is settled: none is "creating" with no live job. */
static void
assert_no_vm_between(DvTestDaemon *d, guint round)
{
    g_autoptr(JsonObject) vms = get_object(d, "/api/v1/vms?limit=500");
    JsonArray *items = json_object_get_array_member(vms, "items");

    for (guint i = 0; i < json_array_get_length(items); i++) {
        JsonObject *vm = json_array_get_object_element(items, i);
        const char *state = json_object_get_string_member(vm, "state");
        if (g_strcmp0(state, "creating") == 0) {
            g_autofree char *t = json_to_string(json_node_init_object(json_node_alloc(), vm), FALSE);
            g_error("round %u: VM left in 'creating' after recovery, no job runs: %s", round, t);
        }
    }
}

/* Right after a restart: every VM in "creating" is owned by a queued or
 * running job (or its job has just finished it). */
static void
assert_creating_owned(DvTestDaemon *d, guint round)
{
    g_autoptr(JsonObject) vms = get_object(d, "/api/v1/vms?state=creating&limit=500");
    JsonArray *items = json_object_get_array_member(vms, "items");

    for (guint i = 0; i < json_array_get_length(items); i++) {
        JsonObject *vm = json_array_get_object_element(items, i);
        const char *id = json_object_get_string_member(vm, "id");
        g_autofree char *jobs_path = g_strdup_printf("/api/v1/jobs?target_id=%s", id);
        g_autofree char *vm_path = g_strdup_printf("/api/v1/vms/%s", id);
        g_autoptr(JsonObject) jobs = get_object(d, jobs_path);
        JsonArray *js = json_object_get_array_member(jobs, "items");
        gboolean live = FALSE;

        for (guint k = 0; k < json_array_get_length(js); k++) {
            const char *st = json_object_get_string_member(json_array_get_object_element(js, k), "state");
            live = live || g_strcmp0(st, "queued") == 0 || g_strcmp0(st, "running") == 0;
        }
        if (!live) {
            guint status = 0;
            g_autoptr(JsonNode) now = dv_test_request(d, "GET", vm_path, NULL, &status);
            if (status == 200 &&
                g_strcmp0(json_object_get_string_member(json_node_get_object(now), "state"), "creating") == 0)
                g_error("round %u: VM %s is 'creating' and no queued or running job owns it", round, id);
        }
    }
}

/* The name is free, or held by a finished VM that can be deleted.  The
 * test driver forgets its domains when droverd restarts: a refresh first
 * marks such a VM missing. */
static void
free_the_name(DvTestDaemon *d)
{
    guint status = 0;
    g_autoptr(JsonNode) r = NULL;

    dv_test_run_job_ok(d, "POST", "/api/v1/hosts/k1/refresh", NULL);
    r = dv_test_request(d, "GET", "/api/v1/vms/" CRASH_VM, NULL, &status);
    if (status == 404)
        return;
    g_assert_cmpuint(status, ==, 200);
    if (g_strcmp0(json_object_get_string_member(json_node_get_object(r), "state"), "running") == 0)
        dv_test_run_job_ok(d, "POST", "/api/v1/vms/" CRASH_VM "/stop", NULL);
    dv_test_run_job_ok(d, "DELETE", "/api/v1/vms/" CRASH_VM "?delete_volumes=true", NULL);
}

static void
test_kill_during_create(Fixture *f, gconstpointer data)
{
    g_autofree char *xml = dv_test_write_host_xml(f->hostdir, "k1.xml", "k", 1);
    g_autofree char *host = g_strdup_printf("{\"name\":\"k1\",\"uri\":\"test://%s\"}", xml);
    /* Several disks make the job long enough to be killed inside it. */
    const char *body = "{\"name\":\"" CRASH_VM "\",\"host\":\"k1\",\"memory_mib\":64,\"start\":true,"
                       "\"disks\":[{\"size_mib\":1,\"pool\":\"pool1\"},{\"size_mib\":1,\"pool\":\"pool1\"},"
                       "{\"size_mib\":1,\"pool\":\"pool1\"},{\"size_mib\":1,\"pool\":\"pool1\"},"
                       "{\"size_mib\":1,\"pool\":\"pool1\"},{\"size_mib\":1,\"pool\":\"pool1\"}]}";
    guint killed_with_row = 0;

    dv_test_run_job_ok(f->d, "POST", "/api/v1/hosts", host);
    for (guint round = 0; round < CRASH_ROUNDS; round++) {
        g_autofree char *url = g_strconcat(f->d->url, "/api/v1/vms", NULL);
        g_autofree char *hdr = g_strdup_printf("Authorization: Bearer %s", f->d->token);
        const char *argv[] = { "curl", "-sk", "-o", "/dev/null", "-X", "POST", "-H", hdr, "-H",
                               "Content-Type: application/json", "--data", body, url, NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GSubprocess) curl = NULL;
        /* 0..26 ms after the request left: before, while and after the
         * row and its job are written, and inside the job's steps. */
        gulong delay_us = (gulong)round * 2000;

        free_the_name(f->d);
        curl = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error);
        g_assert_no_error(error);
        g_usleep(delay_us);
        dv_test_daemon_stop(f->d, TRUE);
        g_subprocess_wait(curl, NULL, NULL);
        g_assert_true(dv_test_daemon_restart(f->d));
        {
            guint status = 0;
            g_autoptr(JsonNode) r = dv_test_request(f->d, "GET", "/api/v1/vms/" CRASH_VM, NULL, &status);
            if (status == 200)
                killed_with_row++;
        }
        assert_creating_owned(f->d, round);
        wait_jobs_settled(f->d);
        assert_no_vm_between(f->d, round);
    }
    g_test_message("%u of %u kills left a VM row to recover", killed_with_row, CRASH_ROUNDS);
    /* The name is usable: a last create runs to the end. */
    free_the_name(f->d);
    {
        g_autoptr(JsonObject) job = dv_test_run_job(f->d, "POST", "/api/v1/vms", body);
        dv_test_assert_job_state(job, "succeeded");
    }
    {
        g_autoptr(JsonObject) vm = get_object(f->d, "/api/v1/vms/" CRASH_VM);
        g_assert_cmpstr(json_object_get_string_member(vm, "state"), ==, "running");
    }
}

static guint
count_in_stderr(DvTestDaemon *d, const char *what)
{
    g_autofree char *path = g_build_filename(d->state_dir, "droverd.err", NULL);
    g_autofree char *text = NULL;
    guint n = 0;

    if (!g_file_get_contents(path, &text, NULL, NULL))
        return 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

/* Killed at the one point where the VM row is written and its job is not
 * yet (DV_DEBUG_VM_CREATE_PAUSE=row holds droverd there): both are in
 * one transaction, so neither is left, and the name is free at once. */
static void
test_kill_between_row_and_job(Fixture *f, gconstpointer data)
{
    g_autofree char *xml = dv_test_write_host_xml(f->hostdir, "k1.xml", "k", 1);
    g_autofree char *host = g_strdup_printf("{\"name\":\"k1\",\"uri\":\"test://%s\"}", xml);
    const char *body = "{\"name\":\"" CRASH_VM "\",\"host\":\"k1\",\"memory_mib\":64}";
    g_autofree char *url = NULL;
    g_autofree char *hdr = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GSubprocess) curl = NULL;
    gint64 deadline;

    dv_test_run_job_ok(f->d, "POST", "/api/v1/hosts", host);
    /* Restarted with the pause point set; the restart after the kill
     * runs without it. */
    dv_test_daemon_stop(f->d, FALSE);
    g_setenv("DV_DEBUG_VM_CREATE_PAUSE", "row", TRUE);
    g_assert_true(dv_test_daemon_restart(f->d));
    g_unsetenv("DV_DEBUG_VM_CREATE_PAUSE");

    url = g_strconcat(f->d->url, "/api/v1/vms", NULL);
    hdr = g_strdup_printf("Authorization: Bearer %s", f->d->token);
    {
        const char *argv[] = { "curl", "-sk", "-o", "/dev/null", "-X", "POST", "-H", hdr, "-H",
                               "Content-Type: application/json", "--data", body, url, NULL };
        curl = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error);
        g_assert_no_error(error);
    }
    deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    while (count_in_stderr(f->d, "vm.create: paused at row") == 0) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(20 * 1000);
    }
    dv_test_daemon_stop(f->d, TRUE);
    g_subprocess_wait(curl, NULL, NULL);
    g_assert_true(dv_test_daemon_restart(f->d));

    {
        guint status = 0;
        g_autoptr(JsonNode) r = dv_test_request(f->d, "GET", "/api/v1/vms/" CRASH_VM, NULL, &status);
        dv_test_assert_error(r, status, 404, "not-found", NULL);
    }
    assert_no_vm_between(f->d, 0);
    /* Nothing was left for start-up recovery to roll back either: no job
     * (not even the failed one a rollback writes) names the VM. */
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/jobs?target_name=" CRASH_VM), ==, 0);
    {
        g_autoptr(JsonObject) job = dv_test_run_job(f->d, "POST", "/api/v1/vms", body);
        dv_test_assert_job_state(job, "succeeded");
    }
}

/* TRUE once process @pid catches @sig (/proc/PID/status, SigCgt). */
static gboolean
catches_signal(const char *pid, int sig)
{
    g_autofree char *path = g_build_filename("/proc", pid, "status", NULL);
    g_autofree char *text = NULL;
    const char *line;

    if (!g_file_get_contents(path, &text, NULL, NULL))
        return FALSE;
    line = strstr(text, "SigCgt:");
    if (line == NULL)
        return FALSE;
    return (g_ascii_strtoull(line + strlen("SigCgt:"), NULL, 16) >> (sig - 1)) & 1;
}

/* A stop asked for while droverd starts (its engine, recovery, host
 * watches) is a clean stop once it can act on it: exit 0, never SIGTERM's
 * default action, and more SIGTERMs during the stop do not kill it
 * half-way.  droverd catches SIGTERM from its first steps on; each round
 * lands the first signal at a later point of the start-up. */
static void
test_term_while_starting(void)
{
    for (guint i = 0; i < 8; i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *dir = g_dir_make_tmp("drover-term-XXXXXX", &error);
        g_autoptr(GSubprocess) proc = NULL;
        const char *argv[] = { dv_test_droverd_path(), "--state-dir", dir, "--listen",
                               "127.0.0.1:0", NULL };
        gint64 deadline;

        g_assert_no_error(error);
        proc = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &error);
        g_assert_no_error(error);
        deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
        while (!catches_signal(g_subprocess_get_identifier(proc), SIGTERM) &&
               g_get_monotonic_time() < deadline)
            g_usleep(1000);
        g_assert_true(catches_signal(g_subprocess_get_identifier(proc), SIGTERM));
        g_usleep(i * 15 * 1000);
        /* Again and again until it is gone, as an impatient init or
         * operator would: every one of them is caught. */
        {
            g_autofree char *status = g_build_filename(
                "/proc", g_subprocess_get_identifier(proc), "status", NULL);
            for (guint k = 0; k < 5000; k++) {
                g_autofree char *text = NULL;
                g_subprocess_send_signal(proc, SIGTERM);
                g_usleep(1000);
                if (!g_file_get_contents(status, &text, NULL, NULL) ||
                    strstr(text, "State:\tZ") != NULL)
                    break;
            }
        }
        g_assert_true(g_subprocess_wait(proc, NULL, &error));
        g_assert_no_error(error);
        g_test_message("SIGTERM %u ms after it was caught: %s %d", i * 15,
                       g_subprocess_get_if_signaled(proc) ? "killed by signal" : "exit",
                       g_subprocess_get_if_signaled(proc) ? g_subprocess_get_term_sig(proc)
                                                          : g_subprocess_get_exit_status(proc));
        g_assert_false(g_subprocess_get_if_signaled(proc));
        g_assert_cmpint(g_subprocess_get_exit_status(proc), ==, 0);
        dv_test_rm_rf(dir);
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/drover/api/crash/term-while-starting", test_term_while_starting);
    g_test_add("/drover/api/crash/kill-during-vm-create", Fixture, NULL, dv_test_api_fixture_setup,
               test_kill_during_create, dv_test_api_fixture_teardown);
    g_test_add("/drover/api/crash/kill-between-row-and-job", Fixture, NULL, dv_test_api_fixture_setup,
               test_kill_between_row_and_job, dv_test_api_fixture_teardown);
    return g_test_run();
}
