#define G_LOG_DOMAIN "DvTestCatalog"

#include "dv-test-catalog.h"
#include "dv-json.h"
#include "dv-test-pg.h"
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
    g_autoptr(JsonObject) job =
        dv_engine_create(engine, kind, body, DV_ACTOR_NAMED("tester"), &error);
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

DvEngine *
dv_test_engine_new(const char *state_dir, gboolean no_recover)
{
    return dv_test_engine_new_with_uri_parameters(state_dir, no_recover, NULL);
}

DvEngine *
dv_test_engine_new_with_uri_parameters(const char *state_dir, gboolean no_recover,
                                       const char *const *allow_uri_parameters)
{
    g_autoptr(GError) error = NULL;
    DvEngineOptions o = { .state_dir = state_dir, .job_workers = 4, .no_recover = no_recover,
                          .allow_simulated_hosts = TRUE,
                          .allow_uri_parameters = allow_uri_parameters };
    DvEngine *e = dv_engine_new(&o, &error);
    g_assert_no_error(error);
    g_assert_nonnull(e);
    return e;
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

    job = dv_engine_vm_action(engine, "m0", "stop", DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    stopped = dv_test_engine_run(engine, job, timeout_ms);
    return host_id;
}

void
dv_test_engine_snapshot(DvEngine *engine, const char *vm, const char *name, guint timeout_ms)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *json = g_strdup_printf("{\"name\":\"%s\"}", name);
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    g_autoptr(JsonObject) job =
        dv_engine_vm_snapshot_create(engine, vm, body, DV_ACTOR_NAMED("tester"), &error);
    g_autoptr(JsonObject) done = NULL;
    g_assert_no_error(error);
    done = dv_test_engine_run(engine, job, timeout_ms);
}

void
dv_test_engine_set_vm(DvEngine *engine, const char *name, const char *json)
{
    g_autoptr(GError) error = NULL;
    DvStore *store = dv_engine_get_store(engine);
    g_autoptr(JsonObject) vm = dv_store_find(store, &dv_table_vms, "name", name, &error);
    g_autoptr(JsonObject) changes = dv_test_json_object(json);
    g_assert_no_error(error);
    g_assert_true(dv_store_update(store, &dv_table_vms, dv_json_get_string(vm, "id", ""), changes,
                                  &error));
    g_assert_no_error(error);
}

DvVirtHost *
dv_test_engine_virt_host(DvEngine *engine, const char *host_id)
{
    g_autoptr(GError) error = NULL;
    DvVirtHost *vh = dv_core_virt_host_by_id(engine, host_id, &error);
    g_assert_no_error(error);
    return vh;
}

char *
dv_test_engine_pool_names(DvEngine *engine, const char *host_id, const char *prefix)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvVirtHost) vh = dv_test_engine_virt_host(engine, host_id);
    g_autoptr(JsonArray) vols = dv_virt_pool_list_volumes(vh, "pool1", prefix, NULL, &error);
    g_autoptr(GString) out = g_string_new(NULL);
    g_assert_no_error(error);
    for (guint i = 0; i < json_array_get_length(vols); i++)
        g_string_append_printf(out, "%s%s", i > 0 ? " " : "",
                               dv_json_get_string(json_array_get_object_element(vols, i), "name", ""));
    return g_string_free(g_steal_pointer(&out), FALSE);
}

void
dv_test_catalog_env_setup(DvTestCatalogEnv *env, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    env->keep = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    env->tmpdir = g_dir_make_tmp("drover-catalog-XXXXXX", &error);
    g_assert_no_error(error);
    env->state_dir = g_build_filename(env->tmpdir, "state", NULL);
    env->engine = dv_test_engine_new(env->state_dir, FALSE);
    /* Host "h1" with VMs m0, m1, m2; m0 becomes the master. */
    env->host_id = dv_test_catalog_add_host(env->engine, env->tmpdir, DV_TEST_CATALOG_WAIT_MS);
}

void
dv_test_catalog_env_teardown(DvTestCatalogEnv *env, gconstpointer data)
{
    g_clear_pointer(&env->engine, dv_engine_free);
    dv_test_rm_rf(env->tmpdir);
    g_clear_pointer(&env->state_dir, g_free);
    g_clear_pointer(&env->tmpdir, g_free);
    g_clear_pointer(&env->host_id, g_free);
    g_clear_pointer(&env->keep, g_ptr_array_unref);
}

DvStore *
dv_test_env_store(DvTestCatalogEnv *env)
{
    return dv_engine_get_store(env->engine);
}

JsonObject *
dv_test_env_job_wait(DvTestCatalogEnv *env, JsonObject *job)
{
    return dv_test_engine_job_row(env->engine, job, DV_TEST_CATALOG_WAIT_MS);
}

gint64
dv_test_env_count(DvTestCatalogEnv *env, const DvTableDef *def)
{
    return dv_test_engine_count(env->engine, def);
}

char *
dv_test_catalog_fake_running_job(DvTestCatalogEnv *env, const char *catalog)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) fake = json_object_new();
    g_autoptr(JsonObject) ch = json_object_new();
    g_autoptr(JsonObject) cat =
        dv_store_find(dv_test_env_store(env), &dv_table_catalogs, "name", catalog, &error);
    char *jid = g_uuid_string_random();
    gint64 now = dv_store_now();

    g_assert_no_error(error);
    json_object_set_string_member(fake, "id", jid);
    json_object_set_string_member(fake, "kind", "catalog.provision");
    json_object_set_string_member(fake, "state", "running");
    json_object_set_string_member(fake, "created_by", "tester");
    json_object_set_int_member(fake, "created_at", now);
    json_object_set_int_member(fake, "updated_at", now);
    json_object_set_int_member(fake, "attempts", 1);
    json_object_set_int_member(fake, "progress", 0);
    json_object_set_boolean_member(fake, "cancel_requested", FALSE);
    g_assert_true(dv_store_insert(dv_test_env_store(env), &dv_table_jobs, fake, &error));
    g_assert_no_error(error);
    json_object_set_string_member(ch, "job_id", jid);
    g_assert_true(dv_store_update(dv_test_env_store(env), &dv_table_catalogs,
                                  dv_json_get_string(cat, "id", ""), ch, &error));
    g_assert_no_error(error);
    return jid;
}

DvEngine *
dv_test_engine_on_backend(const char *tag, DvTestBackend backend, guint job_workers,
                          char **ret_tmpdir, char **ret_pg_dbname)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *pattern = g_strdup_printf("%s-XXXXXX", tag);
    g_autofree char *state = NULL;
    g_autofree char *database = NULL;
    DvEngineOptions o = { .job_workers = job_workers, .allow_simulated_hosts = TRUE };
    DvEngine *engine;

    *ret_tmpdir = g_dir_make_tmp(pattern, &error);
    *ret_pg_dbname = NULL;
    g_assert_no_error(error);
    state = g_build_filename(*ret_tmpdir, "state", NULL);
    if (backend == DV_TEST_BACKEND_PG) {
        g_autofree char *prefix = g_strdelimit(g_strdup(tag), "-", '_');
        if (!dv_test_have_service("DV_TEST_PG_URI", "PostgreSQL"))
            return NULL;
        database = dv_test_pg_new_database(prefix, ret_pg_dbname);
    }
    o.state_dir = state;
    o.database = database;
    engine = dv_engine_new(&o, &error);
    g_assert_no_error(error);
    g_assert_nonnull(engine);
    return engine;
}

void
dv_test_engine_on_backend_free(DvEngine *engine, char *tmpdir, char *pg_dbname)
{
    g_clear_pointer(&engine, dv_engine_free);
    dv_test_pg_drop_database(pg_dbname);
    if (tmpdir != NULL)
        dv_test_rm_rf(tmpdir);
    g_free(pg_dbname);
    g_free(tmpdir);
}
