/* Jobs and rows after a crash or a failed write: start-up recovery rolls
 * back rows no job owns, and a job whose end the store refused keeps
 * trying to save it while the API shows its true state. */
#define G_LOG_DOMAIN "DvTestEngineCrash"

#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-test-catalog.h"
#include "dv-test-util.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#define WAIT_MS 30000

typedef struct {
    char *tmpdir;
    char *state_dir;
    DvEngine *engine;
    char *host_id;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    f->tmpdir = g_dir_make_tmp("drover-crash-XXXXXX", &error);
    g_assert_no_error(error);
    f->state_dir = g_build_filename(f->tmpdir, "state", NULL);
    f->engine = dv_test_engine_new(f->state_dir, FALSE);
    f->host_id = dv_test_catalog_add_host(f->engine, f->tmpdir, WAIT_MS);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    g_clear_pointer(&f->engine, dv_engine_free);
    dv_test_rm_rf(f->tmpdir);
    g_free(f->state_dir);
    g_free(f->tmpdir);
    g_free(f->host_id);
}

/* The state dir on a small tmpfs of its own, so that the test can fill
 * it (as root, like the CI; a failed mount fails the test). */
static void
fixture_setup_tmpfs(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    const char *argv[] = { "mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", NULL, NULL };

    f->tmpdir = g_dir_make_tmp("drover-full-XXXXXX", &error);
    g_assert_no_error(error);
    f->state_dir = g_build_filename(f->tmpdir, "state", NULL);
    g_assert_cmpint(g_mkdir(f->state_dir, 0700), ==, 0);
    argv[6] = f->state_dir;
    g_assert_cmpint(dv_test_spawn(argv, NULL, NULL, NULL), ==, 0);
    f->engine = dv_test_engine_new(f->state_dir, FALSE);
    f->host_id = dv_test_catalog_add_host(f->engine, f->tmpdir, WAIT_MS);
}

static void
fixture_teardown_tmpfs(Fixture *f, gconstpointer data)
{
    const char *argv[] = { "umount", f->state_dir, NULL };
    g_clear_pointer(&f->engine, dv_engine_free);
    g_assert_cmpint(dv_test_spawn(argv, NULL, NULL, NULL), ==, 0);
    fixture_teardown(f, data);
}

static DvStore *
store(Fixture *f)
{
    return dv_engine_get_store(f->engine);
}

/* A VM row as VM creation writes it, and nothing else. */
/* Written an hour ago: housekeeping settles only rows older than
 * DV_ENGINE_SETTLE_MIN_AGE_US. */
static char *
plant_creating_vm(Fixture *f, const char *name)
{
    g_autoptr(JsonObject) rec = json_object_new();
    g_autoptr(GError) error = NULL;
    char *id = g_uuid_string_random();

    json_object_set_string_member(rec, "id", id);
    json_object_set_string_member(rec, "name", name);
    json_object_set_string_member(rec, "host_id", f->host_id);
    json_object_set_null_member(rec, "uuid");
    json_object_set_string_member(rec, "state", "creating");
    json_object_set_int_member(rec, "vcpus", 1);
    json_object_set_int_member(rec, "memory_mib", 64);
    json_object_set_int_member(rec, "generation", 1);
    json_object_set_boolean_member(rec, "secure_boot", FALSE);
    json_object_set_string_member(rec, "origin", "drover");
    json_object_set_int_member(rec, "created_at", dv_store_now() - G_GINT64_CONSTANT(3600) * G_USEC_PER_SEC);
    json_object_set_int_member(rec, "updated_at", dv_store_now());
    dv_store_insert(store(f), &dv_table_vms, rec, &error);
    g_assert_no_error(error);
    return id;
}

/* A job row of another (live) server that owns @target_id. */
static char *
plant_running_job(Fixture *f, const char *target_id)
{
    g_autoptr(JsonObject) rec = json_object_new();
    g_autoptr(GError) error = NULL;
    char *id = g_uuid_string_random();

    json_object_set_string_member(rec, "id", id);
    json_object_set_string_member(rec, "kind", "vm.create");
    json_object_set_string_member(rec, "state", "running");
    json_object_set_string_member(rec, "target_type", "vm");
    json_object_set_string_member(rec, "target_id", target_id);
    json_object_set_string_member(rec, "created_by", "tester");
    json_object_set_string_member(rec, "server_id", "elsewhere/1");
    json_object_set_object_member(rec, "params", json_object_new());
    json_object_set_array_member(rec, "steps", json_array_new());
    json_object_set_int_member(rec, "progress", 0);
    json_object_set_boolean_member(rec, "cancel_requested", FALSE);
    json_object_set_int_member(rec, "attempts", 1);
    json_object_set_int_member(rec, "created_at", dv_store_now());
    json_object_set_int_member(rec, "updated_at", dv_store_now());
    dv_store_insert(store(f), &dv_table_jobs, rec, &error);
    g_assert_no_error(error);
    return id;
}

static const char *
row_state(Fixture *f, const DvTableDef *def, const char *id)
{
    static char buf[64];
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) row = dv_store_get(store(f), def, id, &error);
    if (row == NULL) {
        g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
        return NULL;
    }
    g_strlcpy(buf, dv_json_get_string(row, "state", "?"), sizeof(buf));
    return buf;
}

/* The failed job recovery wrote for the row, found through the API's list. */
static void
assert_rollback_job(Fixture *f, const char *vm_id, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GHashTable) q = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(JsonObject) list = NULL;
    JsonArray *items;
    JsonObject *job;
    JsonObject *err;

    g_hash_table_insert(q, "target_id", (gpointer)vm_id);
    list = dv_engine_list(f->engine, DV_KIND_JOB, q, &error);
    g_assert_no_error(error);
    items = dv_json_get_array(list, "items");
    g_assert_cmpuint(json_array_get_length(items), ==, 1);
    job = json_array_get_object_element(items, 0);
    g_assert_cmpstr(dv_json_get_string(job, "state", ""), ==, "failed");
    g_assert_cmpstr(dv_json_get_string(job, "kind", ""), ==, "vm.create");
    err = dv_json_get_object(job, "error");
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(dv_json_get_string(err, "message", ""), "rolled back"));
    g_assert_nonnull(strstr(dv_json_get_string(err, "message", ""), name));
    g_assert_false(json_object_get_null_member(job, "finished_at"));
}

/* A "creating" row with no job (what kill -9 between the row and its
 * job left before they shared a transaction): the next start rolls it
 * back, says so in the jobs list, and the name can be used again. */
static void
test_orphan_row_recovered(Fixture *f, gconstpointer data)
{
    g_autofree char *ghost = plant_creating_vm(f, "ghost");
    g_autoptr(JsonObject) done = NULL;

    g_clear_pointer(&f->engine, dv_engine_free);
    f->engine = dv_test_engine_new(f->state_dir, FALSE);

    g_assert_null(row_state(f, &dv_table_vms, ghost));
    assert_rollback_job(f, ghost, "ghost");
    done = dv_test_engine_create(f->engine, DV_KIND_VM,
                                 "{\"name\":\"ghost\",\"host\":\"h1\",\"memory_mib\":64}", WAIT_MS);
    g_assert_cmpstr(dv_json_get_string(done, "state", ""), ==, "succeeded");
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) vm = dv_engine_get(f->engine, DV_KIND_VM, "ghost", &error);
        g_assert_no_error(error);
        g_assert_cmpstr(dv_json_get_string(vm, "state", ""), ==, "shutoff");
    }
}

/* A row a queued or running job owns is that job's; once the job has
 * ended without settling it, the sweep (housekeeping) rolls it back. */
static void
test_owned_row_left_alone(Fixture *f, gconstpointer data)
{
    g_autofree char *owned = plant_creating_vm(f, "owned");
    g_autofree char *job_id = plant_running_job(f, owned);
    g_autoptr(GError) error = NULL;
    guint settled = 99;

    g_assert_true(dv_engine_recover_rows(f->engine, 0, &settled, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(settled, ==, 0);
    g_assert_cmpstr(row_state(f, &dv_table_vms, owned), ==, "creating");

    {
        g_autoptr(JsonObject) ch = json_object_new();
        json_object_set_string_member(ch, "state", "failed");
        json_object_set_int_member(ch, "finished_at", dv_store_now());
        g_assert_true(dv_store_update(store(f), &dv_table_jobs, job_id, ch, &error));
    }
    g_assert_true(dv_engine_housekeeping(f->engine, G_MAXINT64 / 2, NULL, NULL, &error));
    g_assert_no_error(error);
    g_assert_null(row_state(f, &dv_table_vms, owned));
}

/* An update-image's image written, its job never (killed between the
 * two): "pending" for ever, so never removable.  While a job of the
 * catalog runs it is left alone; at the next start it is marked failed. */
static void
test_pending_image_recovered(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object(
        "{\"name\":\"cat1\",\"master_vm\":\"m0\",\"master_snapshot\":\"s1\",\"hosts\":[\"h1\"],"
        "\"pool\":\"pool1\",\"naming_scheme\":\"desk-##\",\"count\":2,\"machine\":{\"memory_mib\":64}}");
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) catalog = NULL;
    g_autoptr(JsonObject) m0 = NULL;
    g_autoptr(JsonObject) image = json_object_new();
    g_autofree char *image_id = g_uuid_string_random();
    g_autofree char *job_id = NULL;
    const char *catalog_id;
    guint settled = 99;

    dv_test_engine_snapshot(f->engine, "m0", "s1", WAIT_MS);
    /* test:// cannot upload identity disks: the job fails, the rows stay. */
    job = dv_engine_create(f->engine, DV_KIND_CATALOG, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    done = dv_test_engine_job_row(f->engine, job, WAIT_MS);
    catalog = dv_engine_get(f->engine, DV_KIND_CATALOG, "cat1", &error);
    g_assert_no_error(error);
    catalog_id = dv_json_get_string(catalog, "id", "");
    m0 = dv_engine_get(f->engine, DV_KIND_VM, "m0", &error);
    g_assert_no_error(error);

    json_object_set_string_member(image, "id", image_id);
    json_object_set_string_member(image, "catalog_id", catalog_id);
    json_object_set_int_member(image, "version", 2);
    json_object_set_string_member(image, "master_vm_id", dv_json_get_string(m0, "id", ""));
    json_object_set_string_member(image, "master_snapshot", "s1");
    json_object_set_boolean_member(image, "is_current", FALSE);
    json_object_set_int_member(image, "created_at", dv_store_now());
    json_object_set_string_member(image, "state", "pending");
    dv_store_insert(store(f), &dv_table_catalog_images, image, &error);
    g_assert_no_error(error);

    /* A job of the catalog is running: it is its image. */
    job_id = plant_running_job(f, catalog_id);
    g_assert_true(dv_engine_recover_rows(f->engine, 0, &settled, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(settled, ==, 0);
    g_assert_cmpstr(row_state(f, &dv_table_catalog_images, image_id), ==, "pending");
    {
        g_autoptr(JsonObject) ch = json_object_new();
        json_object_set_string_member(ch, "state", "failed");
        json_object_set_int_member(ch, "finished_at", dv_store_now());
        g_assert_true(dv_store_update(store(f), &dv_table_jobs, job_id, ch, &error));
    }

    g_clear_pointer(&f->engine, dv_engine_free);
    f->engine = dv_test_engine_new(f->state_dir, FALSE);
    g_assert_cmpstr(row_state(f, &dv_table_catalog_images, image_id), ==, "failed");
    {
        g_autoptr(JsonObject) row = dv_store_get(store(f), &dv_table_catalog_images, image_id, &error);
        g_assert_no_error(error);
        g_assert_nonnull(strstr(dv_json_get_string(row, "error", ""), "no job"));
    }
}

static void
count_warning(const char *domain, GLogLevelFlags level, const char *message, gpointer data)
{
    guint *n = data;
    g_test_message("logged: %s", message);
    if (level & G_LOG_LEVEL_WARNING)
        g_atomic_int_inc(n);
}

/* The store refuses a job's end (injected, as a full disk would): the job
 * stays "running" in its row, the API shows it succeeded, cancel is 409,
 * and the end is saved by a retry. */
static void
test_unsaved_end(Fixture *f, gconstpointer data)
{
    DvJobManager *jobs = dv_engine_get_jobs(f->engine);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object("{\"seconds\":0}");
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) shown = NULL;
    g_autoptr(JsonObject) cancelled = NULL;
    const char *id;
    gint64 deadline;
    guint warnings = 0;
    GLogLevelFlags fatal;
    guint handler;

    /* The refused saves are logged, a bounded number of times. */
    fatal = g_log_set_always_fatal(G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL);
    handler = g_log_set_handler("DvJobs", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE, count_warning,
                                &warnings);

    /* 1 + 3 tries fail: the first retries come after 0.2, 0.6 and 1.4 s. */
    dv_job_manager_set_save_faults_for_test(jobs, 4);
    job = dv_engine_debug_sleep(f->engine, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    id = dv_json_get_string(job, "id", "");
    g_assert_true(dv_job_manager_wait_idle(jobs, WAIT_MS));

    g_assert_cmpstr(row_state(f, &dv_table_jobs, id), ==, "running");
    g_assert_cmpuint(dv_job_manager_get_n_unsaved(jobs), ==, 1);
    shown = dv_engine_get(f->engine, DV_KIND_JOB, id, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(shown, "state", ""), ==, "succeeded");
    g_assert_cmpint(dv_json_get_int(shown, "progress", 0), ==, 100);
    g_assert_false(json_object_get_null_member(shown, "finished_at"));

    cancelled = dv_engine_job_cancel(f->engine, id, &error);
    g_assert_null(cancelled);
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_nonnull(strstr(error->message, "already succeeded"));
    g_clear_error(&error);

    deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    while (dv_job_manager_get_n_unsaved(jobs) > 0) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(50 * 1000);
    }
    g_assert_cmpstr(row_state(f, &dv_table_jobs, id), ==, "succeeded");
    {
        g_autoptr(JsonObject) row = dv_store_get(store(f), &dv_table_jobs, id, &error);
        g_assert_no_error(error);
        g_assert_false(json_object_get_null_member(row, "finished_at"));
        g_assert_cmpint(dv_json_get_int(row, "progress", 0), ==, 100);
    }
    /* Failures 1, 2 and 4 are logged, not 3. */
    g_assert_cmpuint(g_atomic_int_get(&warnings), ==, 3);
    g_log_remove_handler("DvJobs", handler);
    g_log_set_always_fatal(fatal);
}

/* Writes zeros to @path until the file system is full. */
static void
fill_disk(const char *path)
{
    static const char zeros[65536];
    FILE *fp = fopen(path, "w");
    g_assert_nonnull(fp);
    while (fwrite(zeros, 1, sizeof(zeros), fp) == sizeof(zeros))
        ;
    fclose(fp);
}

/* A real full disk (SQLITE_FULL): a job that ends while the state dir's
 * file system is full keeps its end in memory; once space returns, the
 * end is saved without a restart. */
static void
test_full_disk(Fixture *f, gconstpointer data)
{
    DvJobManager *jobs = dv_engine_get_jobs(f->engine);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object("{\"seconds\":1}");
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) shown = NULL;
    g_autoptr(JsonObject) cancelled = NULL;
    g_autofree char *filler = g_build_filename(f->state_dir, "filler", NULL);
    const char *id;
    gint64 deadline;
    guint warnings = 0;
    GLogLevelFlags fatal;
    guint handler;

    fatal = g_log_set_always_fatal(G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL);
    handler = g_log_set_handler("DvJobs", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE, count_warning,
                                &warnings);

    job = dv_engine_debug_sleep(f->engine, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    id = dv_json_get_string(job, "id", "");
    fill_disk(filler);
    g_assert_true(dv_job_manager_wait_idle(jobs, WAIT_MS));

    /* The row could not be told; the API is. */
    g_assert_cmpuint(dv_job_manager_get_n_unsaved(jobs), ==, 1);
    g_assert_cmpstr(row_state(f, &dv_table_jobs, id), !=, "succeeded");
    shown = dv_engine_get(f->engine, DV_KIND_JOB, id, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(shown, "state", ""), ==, "succeeded");
    cancelled = dv_engine_job_cancel(f->engine, id, &error);
    g_assert_null(cancelled);
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_clear_error(&error);
    /* Still full a while: retries fail, and are not all logged. */
    g_usleep(1500 * 1000);
    g_assert_cmpuint(dv_job_manager_get_n_unsaved(jobs), ==, 1);

    g_assert_cmpint(g_unlink(filler), ==, 0);
    deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    while (dv_job_manager_get_n_unsaved(jobs) > 0) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(50 * 1000);
    }
    g_assert_cmpstr(row_state(f, &dv_table_jobs, id), ==, "succeeded");
    g_test_message("%u warnings logged while the disk was full", warnings);
    g_assert_cmpuint(g_atomic_int_get(&warnings), >=, 1);
    g_assert_cmpuint(g_atomic_int_get(&warnings), <=, 6);
    g_log_remove_handler("DvJobs", handler);
    g_log_set_always_fatal(fatal);
}

/* A job still running is cancelled as before (200 and it ends cancelled). */
static void
test_cancel_running(Fixture *f, gconstpointer data)
{
    DvJobManager *jobs = dv_engine_get_jobs(f->engine);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object("{\"seconds\":20}");
    g_autoptr(JsonObject) job =
        dv_engine_debug_sleep(f->engine, body, DV_ACTOR_NAMED("tester"), &error);
    g_autoptr(JsonObject) cancelled = NULL;
    const char *id;

    g_assert_no_error(error);
    id = dv_json_get_string(job, "id", "");
    g_usleep(200 * 1000);
    cancelled = dv_engine_job_cancel(f->engine, id, &error);
    g_assert_no_error(error);
    g_assert_nonnull(cancelled);
    g_assert_true(dv_job_manager_wait_idle(jobs, WAIT_MS));
    g_assert_cmpstr(row_state(f, &dv_table_jobs, id), ==, "cancelled");
}

int
main(int argc, char **argv)
{
    /* The debug sleep job kind. */
    g_setenv("DV_DEBUG_JOBS", "1", TRUE);
    g_test_init(&argc, &argv, NULL);
    g_test_add("/drover/engine/crash/orphan-row-recovered", Fixture, NULL, fixture_setup,
               test_orphan_row_recovered, fixture_teardown);
    g_test_add("/drover/engine/crash/owned-row-left-alone", Fixture, NULL, fixture_setup,
               test_owned_row_left_alone, fixture_teardown);
    g_test_add("/drover/engine/crash/pending-image-recovered", Fixture, NULL, fixture_setup,
               test_pending_image_recovered, fixture_teardown);
    g_test_add("/drover/engine/crash/unsaved-end", Fixture, NULL, fixture_setup, test_unsaved_end,
               fixture_teardown);
    g_test_add("/drover/engine/crash/full-disk", Fixture, NULL, fixture_setup_tmpfs, test_full_disk,
               fixture_teardown_tmpfs);
    g_test_add("/drover/engine/crash/cancel-running", Fixture, NULL, fixture_setup,
               test_cancel_running, fixture_teardown);
    return g_test_run();
}
