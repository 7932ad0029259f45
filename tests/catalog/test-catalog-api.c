/* Catalog delete and reconcile through the REST API: a real droverd,
 * libvirt's test driver for the host, SQLite in a temp dir.  The routes,
 * their input checks and their jobs; the behaviour itself is tested in
 * the engine tier (test-catalog.c) and against qemu:///system
 * (test-catalog-system.c). */
#define G_LOG_DOMAIN "DvTestCatalogApi"

#include "dv-test-util.h"

#include <string.h>

typedef DvTestApiFixture Fixture;



static void
test_routes(Fixture *f, gconstpointer data)
{
    guint status = 0;

    /* The machines failed at their identity disks; the base and overlays
     * exist. */
    dv_test_api_make_cat1(f->d, f->hostdir);

    /* The report. */
    {
        g_autoptr(JsonNode) resp =
            dv_test_request(f->d, "GET", "/api/v1/catalogs/cat1/reconcile", NULL, &status);
        JsonObject *r;
        g_assert_cmpuint(status, ==, 200);
        r = json_node_get_object(resp);
        g_assert_true(json_object_get_boolean_member(r, "ok"));
        g_assert_cmpuint(json_array_get_length(json_object_get_array_member(r, "orphans_on_hosts")),
                         ==, 0);
        g_assert_cmpuint(json_array_get_length(json_object_get_array_member(r, "missing_on_hosts")),
                         ==, 0);
    }
    {
        g_autoptr(JsonNode) resp =
            dv_test_request(f->d, "GET", "/api/v1/catalogs/cat1/reconcile?all=1", NULL, &status);
        dv_test_assert_error(resp, status, 400, "invalid-argument", "all");
    }
    {
        g_autoptr(JsonNode) resp =
            dv_test_request(f->d, "GET", "/api/v1/catalogs/nope/reconcile", NULL, &status);
        g_assert_cmpuint(status, ==, 404);
    }
    /* The job: no body reports only; a bad body is refused. */
    {
        g_autoptr(JsonObject) job =
            dv_test_run_job(f->d, "POST", "/api/v1/catalogs/cat1/reconcile", NULL);
        JsonObject *result;
        dv_test_assert_job_state(job, "succeeded");
        g_assert_cmpstr(json_object_get_string_member(job, "kind"), ==, "catalog.reconcile");
        result = json_object_get_object_member(job, "result");
        g_assert_true(json_object_get_boolean_member(result, "ok"));
        g_assert_cmpuint(json_array_get_length(json_object_get_array_member(result, "deleted")), ==,
                         0);
    }
    dv_test_run_job_ok(f->d, "POST", "/api/v1/catalogs/cat1/reconcile", "{\"delete_orphans\":true}");
    {
        g_autoptr(JsonNode) resp = dv_test_request(f->d, "POST", "/api/v1/catalogs/cat1/reconcile",
                                                   "{\"delete_orphans\":\"yes\"}", &status);
        dv_test_assert_error(resp, status, 400, "invalid-argument", "delete_orphans");
    }

    /* Delete: unknown parameters refused, then the job, then 404. */
    {
        g_autoptr(JsonNode) resp =
            dv_test_request(f->d, "DELETE", "/api/v1/catalogs/cat1?force=1", NULL, &status);
        dv_test_assert_error(resp, status, 400, "invalid-argument", "force");
    }
    {
        g_autoptr(JsonObject) job = dv_test_run_job(f->d, "DELETE", "/api/v1/catalogs/cat1", NULL);
        dv_test_assert_job_state(job, "succeeded");
        g_assert_cmpstr(json_object_get_string_member(job, "kind"), ==, "catalog.delete");
    }
    {
        g_autoptr(JsonNode) resp =
            dv_test_request(f->d, "GET", "/api/v1/catalogs/cat1", NULL, &status);
        g_assert_cmpuint(status, ==, 404);
    }
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/catalogs"), ==, 0);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/drover/catalog/api/routes", Fixture, NULL, dv_test_api_fixture_setup, test_routes,
               dv_test_api_fixture_teardown);
    return g_test_run();
}
