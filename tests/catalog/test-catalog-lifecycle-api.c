/* The catalog lifecycle routes through the REST API: a real droverd,
 * libvirt's test driver for the host, SQLite in a temp dir.  Routes,
 * input checks (status, code, field) and the jobs they start; the
 * behaviour is tested in the engine tier (test-catalog-lifecycle.c) and
 * against qemu:///system (test-catalog-lifecycle-system.c). */
#define G_LOG_DOMAIN "DvTestCatalogLifecycleApi"

#include "dv-test-util.h"

#include <string.h>
#include <sys/wait.h>

typedef struct {
    DvTestDaemon *d;
    char *hostdir;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    const char *const args[] = { "--catalog-reconcile-interval", "0", NULL };
    f->d = dv_test_daemon_start(NULL, args);
    f->hostdir = g_dir_make_tmp("drover-lifecycle-api-XXXXXX", &error);
    g_assert_no_error(error);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    g_clear_pointer(&f->d, dv_test_daemon_free);
    dv_test_rm_rf(f->hostdir);
    g_free(f->hostdir);
}

/* @method @path with @body must answer @want_status with @code naming
 * @field (may be NULL), and the catalog's lists must not change. */
static void
refused(Fixture *f, const char *method, const char *path, const char *body, guint want_status, const char *code,
        const char *field)
{
    guint status = 0;
    gint64 jobs = dv_test_count(f->d, "/api/v1/jobs");
    gint64 machines = dv_test_count(f->d, "/api/v1/catalogs/cat1/machines");
    g_autoptr(JsonNode) resp = dv_test_request(f->d, method, path, body, &status);
    dv_test_assert_error(resp, status, want_status, code, field);
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/jobs"), ==, jobs);
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/catalogs/cat1/machines"), ==, machines);
}

static void
test_routes(Fixture *f, gconstpointer data)
{
    guint status = 0;

    dv_test_api_make_cat1(f->d, f->hostdir);

    /* Image history: one image, current. */
    {
        g_autoptr(JsonNode) resp = dv_test_request(f->d, "GET", "/api/v1/catalogs/cat1/images", NULL, &status);
        JsonArray *items;
        g_assert_cmpuint(status, ==, 200);
        items = json_object_get_array_member(json_node_get_object(resp), "items");
        g_assert_cmpuint(json_array_get_length(items), ==, 1);
        g_assert_true(json_object_get_boolean_member(json_array_get_object_element(items, 0), "current"));
        g_assert_cmpint(json_object_get_int_member(json_array_get_object_element(items, 0), "machines"), ==, 2);
    }
    refused(f, "POST", "/api/v1/catalogs/cat1/images", "{\"master_vm\":\"m0\",\"master_snapshot\":\"nope\"}", 404,
            "not-found", "master_snapshot");
    refused(f, "POST", "/api/v1/catalogs/cat1/images", "{\"master_vm\":\"m0\",\"master_snapshot\":\"s1\"}", 409,
            "conflict", "master_snapshot");
    refused(f, "POST", "/api/v1/catalogs/cat1/images", "{\"master_vm\":\"m0\"}", 400, "invalid-argument",
            "master_snapshot");
    refused(f, "POST", "/api/v1/catalogs/cat1/rollback", NULL, 409, "conflict", NULL);
    refused(f, "POST", "/api/v1/catalogs/cat1/rollback", "{\"to\":1}", 400, "invalid-argument", NULL);
    refused(f, "POST", "/api/v1/catalogs/cat1/machines", "{\"count\":0}", 400, "invalid-argument", "count");
    refused(f, "POST", "/api/v1/catalogs/cat1/machines", "{\"count\":98}", 400, "invalid-argument", "count");
    refused(f, "POST", "/api/v1/catalogs/cat1/remove-machines", "{\"machines\":[\"desk-33\"]}", 404, "not-found",
            "machines[0]");
    refused(f, "POST", "/api/v1/catalogs/cat1/power", "{\"action\":\"hibernate\"}", 400, "invalid-argument",
            "action");
    refused(f, "POST", "/api/v1/catalogs/cat1/power", "{\"action\":\"start\",\"max_share\":200}", 400,
            "invalid-argument", "max_share");
    refused(f, "POST", "/api/v1/catalogs/cat1/rebuild", "{}", 400, "invalid-argument", "machines");
    refused(f, "GET", "/api/v1/catalogs/cat1/power", NULL, 404, "not-found", NULL);
    /* The identity of a machine whose identity step never ran. */
    refused(f, "GET", "/api/v1/catalog-machines/desk-01/identity", NULL, 409, "conflict", "machine");
    refused(f, "GET", "/api/v1/catalog-machines/nope/identity", NULL, 404, "not-found", "machine");

    /* Jobs start: add two machines, remove one, update the image. */
    {
        g_autoptr(JsonObject) job = dv_test_run_job(f->d, "POST", "/api/v1/catalogs/cat1/machines", "{\"count\":2}");
        g_assert_cmpstr(json_object_get_string_member(job, "kind"), ==, "catalog.provision");
        g_assert_cmpint(dv_test_count(f->d, "/api/v1/catalogs/cat1/machines"), ==, 4);
    }
    {
        g_autoptr(JsonObject) job =
            dv_test_run_job(f->d, "POST", "/api/v1/catalogs/cat1/remove-machines", "{\"machines\":[\"desk-04\"]}");
        dv_test_assert_job_state(job, "succeeded");
        g_assert_cmpstr(json_object_get_string_member(job, "kind"), ==, "catalog.remove-machines");
        g_assert_cmpint(dv_test_count(f->d, "/api/v1/catalogs/cat1/machines"), ==, 3);
    }
    dv_test_run_job_ok(f->d, "POST", "/api/v1/vms/m0/snapshots", "{\"name\":\"s2\"}");
    {
        g_autoptr(JsonObject) job = dv_test_run_job(f->d, "POST", "/api/v1/catalogs/cat1/images",
                                                    "{\"master_vm\":\"m0\",\"master_snapshot\":\"s2\"}");
        dv_test_assert_job_state(job, "succeeded");
        g_assert_cmpstr(json_object_get_string_member(job, "kind"), ==, "catalog.update-image");
        g_assert_cmpint(json_object_get_int_member(json_object_get_object_member(job, "result"), "image_version"), ==,
                        2);
    }
    {
        g_autoptr(JsonObject) job = dv_test_run_job(f->d, "POST", "/api/v1/catalogs/cat1/rollback", NULL);
        dv_test_assert_job_state(job, "succeeded");
        g_assert_cmpstr(json_object_get_string_member(job, "kind"), ==, "catalog.rollback");
    }
    {
        g_autoptr(JsonNode) resp = dv_test_request(f->d, "GET", "/api/v1/catalogs/cat1", NULL, &status);
        g_assert_cmpuint(status, ==, 200);
        g_assert_cmpstr(json_object_get_string_member(json_node_get_object(resp), "master_snapshot"), ==, "s1");
    }
}

/* droverd's periodic reconcile: with the interval in seconds (a debug
 * setting of the tests), GET /catalogs/{id} soon shows last_reconcile; a
 * bad interval is a usage error. */
static void
test_periodic_reconcile(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *hostdir = g_dir_make_tmp("drover-reconcile-XXXXXX", &error);
    const char *const args[] = { "--catalog-reconcile-interval", "1", NULL };
    DvTestDaemon *d;
    guint status = 0;
    gint64 deadline;

    g_assert_no_error(error);
    g_setenv("DV_DEBUG_RECONCILE_SECONDS", "1", TRUE);
    d = dv_test_daemon_start(NULL, args);
    g_unsetenv("DV_DEBUG_RECONCILE_SECONDS");
    dv_test_api_make_cat1(d, hostdir);
    deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    for (;;) {
        g_autoptr(JsonNode) resp = dv_test_request(d, "GET", "/api/v1/catalogs/cat1", NULL, &status);
        JsonObject *cat;
        g_assert_cmpuint(status, ==, 200);
        cat = json_node_get_object(resp);
        if (json_object_has_member(cat, "last_reconcile") &&
            JSON_NODE_HOLDS_OBJECT(json_object_get_member(cat, "last_reconcile"))) {
            JsonObject *last = json_object_get_object_member(cat, "last_reconcile");
            g_assert_cmpint(json_object_get_int_member(last, "at"), >, 0);
            g_assert_true(json_object_get_boolean_member(last, "ok"));
            g_assert_cmpint(json_object_get_int_member(last, "orphans"), ==, 0);
            g_assert_cmpint(json_object_get_int_member(last, "missing"), ==, 0);
            break;
        }
        if (g_get_monotonic_time() > deadline)
            g_error("no last_reconcile within 30 s");
        g_usleep(200 * 1000);
    }
    dv_test_daemon_free(d);
    dv_test_rm_rf(hostdir);
    /* A bad interval: droverd refuses to start (usage, exit 2). */
    {
        g_autofree char *state = g_dir_make_tmp("drover-reconcile-state-XXXXXX", &error);
        g_autofree char *err = NULL;
        g_autofree char *droverd = g_build_filename(g_getenv("DV_TOP_BUILDDIR") != NULL ? g_getenv("DV_TOP_BUILDDIR")
                                                                                         : ".",
                                                    "src", "daemon", "droverd", NULL);
        const char *argv[] = { droverd, "--state-dir", state, "--catalog-reconcile-interval", "99999",
                               NULL };
        int wait_status = 0;
        g_assert_no_error(error);
        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &err,
                                   &wait_status, &error));
        g_assert_no_error(error);
        g_assert_true(WIFEXITED(wait_status));
        g_assert_cmpint(WEXITSTATUS(wait_status), ==, 2);
        g_assert_nonnull(strstr(err, "--catalog-reconcile-interval must be 0 (off) to 10080 minutes"));
        {
            const char *const rm[] = { "rm", "-rf", "--", state, NULL };
            g_spawn_sync(NULL, (char **)rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
        }
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/drover/catalog/lifecycle-api/routes", Fixture, NULL, fixture_setup, test_routes, fixture_teardown);
    g_test_add_func("/drover/catalog/lifecycle-api/periodic-reconcile", test_periodic_reconcile);
    return g_test_run();
}
