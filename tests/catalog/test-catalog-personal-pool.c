#define G_LOG_DOMAIN "DvTestCatalogPersonalPool"

/* Personal disks on other storage (issue 12, item 8; seed 004): a catalog
 * whose personal disks go to a second dir pool of its host, on a test:///
 * host (SQLite and PostgreSQL: the column is migration 0013's).
 *
 *  - refused before anything is written, naming personal_disk_pool: a pool
 *    the host does not have, no personal disks asked for, a running pool
 *    without room for the personal disks placed on the host;
 *  - a stopped dir pool is accepted and the provision job builds and
 *    starts it before the first personal disk (the test driver cannot
 *    upload identity disks, so the machines then stop at that step; the
 *    personal disks themselves need QEMU);
 *  - the catalog records the pool; the catalog's own pool given is
 *    recorded as none. */

#include "dv-core.h"
#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-test-catalog.h"
#include "dv-test-pg.h"
#include "dv-test-util.h"
#include "dv-virt.h"

#include <string.h>

#define WAIT_MS 60000

typedef struct {
    char *tmpdir;
    char *pg_dbname;
    DvEngine *engine;
    char *host_id;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    f->engine = dv_test_engine_on_backend("dv-test-ppool", GPOINTER_TO_INT(data), 2, &f->tmpdir,
                                          &f->pg_dbname);
    if (f->engine == NULL)
        return;
    f->host_id = dv_test_catalog_add_host(f->engine, f->tmpdir, WAIT_MS);
    dv_test_engine_snapshot(f->engine, "m0", "s1", WAIT_MS);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    dv_test_engine_on_backend_free(g_steal_pointer(&f->engine), g_steal_pointer(&f->tmpdir),
                                   g_steal_pointer(&f->pg_dbname));
    g_free(f->host_id);
}

static DvVirtHost *
host_vh(Fixture *f)
{
    g_autoptr(GError) error = NULL;
    DvVirtHost *vh = dv_core_virt_host_by_id(f->engine, f->host_id, &error);
    g_assert_no_error(error);
    return vh;
}

/* Defines dir pool "pool2" on the host, stopped, and refreshes the host
 * so the inventory has it. */
static void
define_pool2(Fixture *f)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvVirtHost) vh = host_vh(f);
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;

    g_assert_true(dv_virt_pool_define(
        vh, "pool2",
        "<pool type='dir'><name>pool2</name><target><path>/pool2</path></target></pool>", FALSE,
        NULL, &error));
    g_assert_no_error(error);
    job = dv_engine_host_refresh(f->engine, "h1", DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    done = dv_test_engine_run(f->engine, job, WAIT_MS);
}

static gboolean
pool2_active(Fixture *f)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvVirtHost) vh = host_vh(f);
    g_autoptr(JsonObject) info = dv_virt_pool_get_info(vh, "pool2", NULL, &error);
    g_assert_no_error(error);
    return dv_json_get_bool(info, "active", FALSE);
}

static char *
body_with(const char *extra)
{
    return g_strdup_printf(
        "{\"name\":\"cat1\",\"master_vm\":\"m0\",\"master_snapshot\":\"s1\","
        "\"hosts\":[\"h1\"],\"pool\":\"pool1\",\"naming_scheme\":\"desk-##\","
        "\"count\":3,\"machine\":{\"memory_mib\":128,\"networks\":[\"net1\"]}%s}",
        extra);
}

static void
refused(Fixture *f, const char *extra, DvErrorCode code, const char *in_message)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *b = body_with(extra);
    g_autoptr(JsonObject) body = dv_test_json_object(b);
    gint64 catalogs = dv_test_engine_count(f->engine, &dv_table_catalogs);
    gint64 jobs = dv_test_engine_count(f->engine, &dv_table_jobs);
    gint64 vols = dv_test_engine_count(f->engine, &dv_table_volumes);
    g_autoptr(JsonObject) job =
        dv_engine_create(f->engine, DV_KIND_CATALOG, body, DV_ACTOR_NAMED("tester"), &error);

    g_assert_null(job);
    g_assert_error(error, DV_ERROR, (gint)code);
    g_test_message("refused %s: %s", extra, error->message);
    g_assert_cmpstr(dv_error_get_field(error), ==, "personal_disk_pool");
    g_assert_nonnull(strstr(error->message, in_message));
    g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_catalogs), ==, catalogs);
    g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_jobs), ==, jobs);
    g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_volumes), ==, vols);
}

static void
test_refused(Fixture *f, gconstpointer data)
{
    if (f->engine == NULL)
        return;
    define_pool2(f);
    refused(f, ",\"personal_disk_mib\":64,\"personal_disk_pool\":\"nopool\"", DV_ERROR_NOT_FOUND,
            "host h1 has no storage pool 'nopool'");
    refused(f, ",\"personal_disk_pool\":\"pool2\"", DV_ERROR_INVALID_ARGUMENT,
            "needs personal_disk_mib");
    refused(f, ",\"personal_disk_mib\":64,\"personal_disk_pool\":\"bad/name\"",
            DV_ERROR_INVALID_ARGUMENT, "personal_disk_pool");
    /* Running, too small: the test driver's pools hold 100 GiB; three
     * personal disks of 1 TiB do not fit. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(DvVirtHost) vh = host_vh(f);
        g_autoptr(JsonObject) job = NULL;
        g_autoptr(JsonObject) done = NULL;
        g_assert_true(dv_virt_pool_set_active(vh, "pool2", TRUE, NULL, &error));
        g_assert_no_error(error);
        job = dv_engine_host_refresh(f->engine, "h1", DV_ACTOR_NAMED("tester"), &error);
        g_assert_no_error(error);
        done = dv_test_engine_run(f->engine, job, WAIT_MS);
    }
    refused(f, ",\"personal_disk_mib\":1048576,\"personal_disk_pool\":\"pool2\"", DV_ERROR_CONFLICT,
            "3 personal disks of 1048576 MiB need");
}

static void
test_stopped_pool_built(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *b = NULL;
    g_autoptr(JsonObject) body = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) cat = NULL;

    if (f->engine == NULL)
        return;
    define_pool2(f);
    g_assert_false(pool2_active(f));
    b = body_with(",\"personal_disk_mib\":64,\"personal_disk_pool\":\"pool2\"");
    body = dv_test_json_object(b);
    job = dv_engine_create(f->engine, DV_KIND_CATALOG, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    done = dv_test_engine_job_row(f->engine, job, WAIT_MS);
    g_test_message("job: %s", dv_json_get_string(dv_json_get_object(done, "error"), "message", ""));
    /* Built and started before the first personal disk was due. */
    g_assert_true(pool2_active(f));
    cat = dv_engine_get(f->engine, DV_KIND_CATALOG, "cat1", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(cat, "personal_disk_pool", ""), ==, "pool2");
    g_assert_cmpstr(dv_json_get_string(cat, "pool_name", ""), ==, "pool1");

    /* The same pool as the catalog's: recorded as none (the default). */
    {
        g_autofree char *b2 = g_strdup_printf(
            "{\"name\":\"cat2\",\"master_vm\":\"m0\",\"master_snapshot\":\"s1\",\"hosts\":[\"h1\"],"
            "\"pool\":\"pool1\",\"naming_scheme\":\"pers-##\",\"count\":1,\"personal_disk_mib\":8,"
            "\"personal_disk_pool\":\"pool1\",\"machine\":{\"memory_mib\":128,\"networks\":["
            "\"net1\"]}}");
        g_autoptr(JsonObject) body2 = dv_test_json_object(b2);
        g_autoptr(JsonObject) job2 =
            dv_engine_create(f->engine, DV_KIND_CATALOG, body2, DV_ACTOR_NAMED("tester"), &error);
        g_autoptr(JsonObject) done2 = NULL;
        g_autoptr(JsonObject) cat2 = NULL;
        g_assert_no_error(error);
        done2 = dv_test_engine_job_row(f->engine, job2, WAIT_MS);
        cat2 = dv_engine_get(f->engine, DV_KIND_CATALOG, "cat2", &error);
        g_assert_no_error(error);
        g_assert_null(dv_json_get_string(cat2, "personal_disk_pool", NULL));
    }
}

static void
add_both(const char *path, void (*func)(Fixture *, gconstpointer))
{
    g_autofree char *lite = g_strdup_printf("%s/sqlite", path);
    g_autofree char *pg = g_strdup_printf("%s/pg", path);
    g_test_add(lite, Fixture, GINT_TO_POINTER(DV_TEST_BACKEND_SQLITE), fixture_setup, func,
               fixture_teardown);
    g_test_add(pg, Fixture, GINT_TO_POINTER(DV_TEST_BACKEND_PG), fixture_setup, func,
               fixture_teardown);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    add_both("/drover/catalog/personal-pool/refused", test_refused);
    add_both("/drover/catalog/personal-pool/stopped-pool-built", test_stopped_pool_built);
    return g_test_run();
}
