#define G_LOG_DOMAIN "DvTestCatalog"

#include "dv-test-catalog.h"
#include "dv-json.h"
#include "dv-test-util.h"

JsonObject *
dv_test_json_object(const char *json)
{
    g_autoptr(GError) error = NULL;
    JsonObject *o = dv_json_object_from_text(json, &error);
    g_assert_no_error(error);
    return o;
}

JsonObject *
dv_test_engine_job_row(DvEngine *engine, JsonObject *job, guint timeout_ms)
{
    g_autoptr(GError) error = NULL;
    JsonObject *row;
    g_assert_nonnull(job);
    g_assert_true(dv_job_manager_wait_idle(dv_engine_get_jobs(engine), timeout_ms));
    row = dv_store_get(dv_engine_get_store(engine), &dv_table_jobs,
                       dv_json_get_string(job, "id", ""), &error);
    g_assert_no_error(error);
    return row;
}

void
dv_test_assert_job_succeeded(JsonObject *row)
{
    if (g_strcmp0(dv_json_get_string(row, "state", ""), "succeeded") != 0) {
        g_autofree char *t = dv_json_object_to_string(row, FALSE);
        g_error("job did not succeed: %s", t);
    }
}

JsonObject *
dv_test_engine_run(DvEngine *engine, JsonObject *job, guint timeout_ms)
{
    JsonObject *row = dv_test_engine_job_row(engine, job, timeout_ms);
    dv_test_assert_job_succeeded(row);
    return row;
}

JsonObject *
dv_test_engine_create(DvEngine *engine, DvKind kind, const char *json, guint timeout_ms)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    g_autoptr(JsonObject) job = dv_engine_create(engine, kind, body, "tester", &error);
    g_assert_no_error(error);
    return dv_test_engine_run(engine, job, timeout_ms);
}

gint64
dv_test_engine_count(DvEngine *engine, const DvTableDef *def)
{
    g_autoptr(GError) error = NULL;
    gint64 n = dv_store_count(dv_engine_get_store(engine), def, NULL, 0, &error);
    g_assert_no_error(error);
    return n;
}

char *
dv_test_catalog_add_host(DvEngine *engine, const char *dir, guint timeout_ms)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = dv_test_write_host_xml(dir, "h1.xml", "m", 3);
    g_autofree char *body = g_strdup_printf("{\"name\":\"h1\",\"uri\":\"test://%s\"}", xml);
    g_autoptr(JsonObject) done = dv_test_engine_create(engine, DV_KIND_HOST, body, timeout_ms);
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) stopped = NULL;
    char *host_id = g_strdup(dv_json_get_string(dv_json_get_object(done, "result"), "id", ""));

    job = dv_engine_vm_action(engine, "m0", "stop", "tester", &error);
    g_assert_no_error(error);
    stopped = dv_test_engine_run(engine, job, timeout_ms);
    return host_id;
}
