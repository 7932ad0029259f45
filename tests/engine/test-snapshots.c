#define G_LOG_DOMAIN "DvTestSnapshots"

/* A VM's snapshots in the engine on SQLite and on PostgreSQL against a
 * test:/// host (issue 12, item 5): the rows carry kind and memory
 * (migration 0014) through jobs and syncs; a running VM's snapshot holds
 * its memory by default; bad input names its field and changes nothing.  Snapshots on QEMU (memory
 * restored, external ones reverted and deleted) are in test-snapshots-system.c. */

#include "dv-core.h"
#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-test-catalog.h"
#include "dv-test-pg.h"
#include "dv-test-util.h"
#include "dv-vms.h"

#include <string.h>

#define WAIT_MS 30000

typedef struct {
    char *tmpdir;
    char *pg_dbname;
    DvEngine *engine;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autofree char *xml = NULL;
    g_autofree char *body = NULL;
    g_autoptr(JsonObject) job = NULL;

    f->engine = dv_test_engine_on_backend("dv-test-snaps", GPOINTER_TO_INT(data), 2, &f->tmpdir,
                                          &f->pg_dbname);
    xml = dv_test_write_host_xml(f->tmpdir, "h1.xml", "h1", 0);
    body = g_strdup_printf("{\"name\":\"h1\",\"uri\":\"test://%s\"}", xml);
    job = dv_test_engine_create(f->engine, DV_KIND_HOST, body, WAIT_MS);
    g_clear_pointer(&job, json_object_unref);
    job = dv_test_engine_create(f->engine, DV_KIND_VM,
                                "{\"name\":\"v1\",\"host\":\"h1\",\"vcpus\":1,\"memory_mib\":128}",
                                WAIT_MS);
    g_clear_pointer(&job, json_object_unref);
    job = dv_test_engine_create(f->engine, DV_KIND_VM,
                                "{\"name\":\"v2\",\"host\":\"h1\",\"vcpus\":1,\"memory_mib\":128}",
                                WAIT_MS);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    dv_test_engine_on_backend_free(g_steal_pointer(&f->engine), g_steal_pointer(&f->tmpdir),
                                   g_steal_pointer(&f->pg_dbname));
}

static gint64
count(Fixture *f, const DvTableDef *def)
{
    return dv_test_engine_count(f->engine, def);
}

static JsonObject *
create(Fixture *f, const char *vm, const char *json)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    g_autoptr(JsonObject) job =
        dv_engine_vm_snapshot_create(f->engine, vm, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    return dv_test_engine_job_row(f->engine, job, WAIT_MS);
}

static void
refused(Fixture *f, const char *vm, const char *json, DvErrorCode code, const char *field)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    gint64 jobs = count(f, &dv_table_jobs);
    gint64 snaps = count(f, &dv_table_snapshots);

    g_assert_null(
        dv_engine_vm_snapshot_create(f->engine, vm, body, DV_ACTOR_NAMED("tester"), &error));
    g_assert_error(error, DV_ERROR, (gint)code);
    g_assert_cmpstr(dv_error_get_field(error), ==, field);
    g_test_message("%s: %s", json, error->message);
    g_assert_cmpint(count(f, &dv_table_jobs), ==, jobs);
    g_assert_cmpint(count(f, &dv_table_snapshots), ==, snaps);
}

static JsonObject *
row(Fixture *f, const char *vm, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) list = dv_engine_vm_snapshot_list(f->engine, vm, &error);
    JsonArray *items;

    g_assert_no_error(error);
    items = dv_json_get_array(list, "items");
    for (guint i = 0; i < json_array_get_length(items); i++) {
        JsonObject *s = json_array_get_object_element(items, i);
        if (g_strcmp0(dv_json_get_string(s, "name", ""), name) == 0)
            return json_object_ref(s);
    }
    return NULL;
}

static void
test_kinds(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) s = NULL;
    g_autoptr(JsonObject) job = NULL;

    /* Shut off: internal, no memory. */
    done = create(f, "v1", "{\"name\":\"off\",\"description\":\"cold\"}");
    dv_test_assert_job_succeeded(done);
    s = row(f, "v1", "off");
    g_assert_nonnull(s);
    g_assert_cmpstr(dv_json_get_string(s, "kind", ""), ==, "internal");
    g_assert_false(dv_json_get_bool(s, "memory", TRUE));
    g_assert_cmpstr(dv_json_get_string(s, "vm_state", ""), ==, "shutoff");

    refused(f, "v1", "{\"name\":\"m\",\"memory\":true}", DV_ERROR_INVALID_ARGUMENT, "memory");
    refused(f, "v1", "{\"name\":\"off\"}", DV_ERROR_CONFLICT, "name");
    refused(f, "v1", "{\"name\":\"k\",\"kind\":\"both\"}", DV_ERROR_INVALID_ARGUMENT, "kind");
    refused(f, "v1", "{\"name\":\"k\",\"kind\":\"external\"}", DV_ERROR_CONFLICT, "kind");
    refused(f, "v1", "{\"name\":\"k\",\"memory\":\"yes\"}", DV_ERROR_INVALID_ARGUMENT, "memory");

    /* Another VM's snapshot is not this VM's. */
    g_assert_null(
        dv_engine_vm_snapshot_revert(f->engine, "v2", "off", DV_ACTOR_NAMED("tester"), &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_null(
        dv_engine_vm_snapshot_delete(f->engine, "v2", "off", DV_ACTOR_NAMED("tester"), &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);

    /* Running: with its memory by default; internal without it refused. */
    job = dv_engine_vm_action(f->engine, "v1", "start", DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    g_clear_pointer(&done, json_object_unref);
    done = dv_test_engine_run(f->engine, job, WAIT_MS);
    refused(f, "v1", "{\"name\":\"r\",\"kind\":\"internal\",\"memory\":false}",
            DV_ERROR_NOT_SUPPORTED, "memory");
    g_clear_pointer(&done, json_object_unref);
    done = create(f, "v1", "{\"name\":\"hot\"}");
    dv_test_assert_job_succeeded(done);
    g_assert_cmpstr(dv_json_get_string(dv_json_get_object(done, "result"), "kind", ""), ==,
                    "internal");
    g_assert_true(dv_json_get_bool(dv_json_get_object(done, "result"), "memory", FALSE));
    g_clear_pointer(&s, json_object_unref);
    s = row(f, "v1", "hot");
    g_assert_nonnull(s);
    g_assert_cmpstr(dv_json_get_string(s, "kind", ""), ==, "internal");
    g_assert_true(dv_json_get_bool(s, "memory", FALSE));
    g_assert_cmpstr(dv_json_get_string(s, "vm_state", ""), ==, "running");
    g_assert_cmpstr(dv_json_get_string(s, "parent_name", ""), ==, "off");

    /* Reverted to the cold one and back; deleted. */
    g_clear_pointer(&job, json_object_unref);
    job = dv_engine_vm_snapshot_revert(f->engine, "v1", "hot", DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    g_clear_pointer(&done, json_object_unref);
    done = dv_test_engine_run(f->engine, job, WAIT_MS);
    g_clear_pointer(&job, json_object_unref);
    job = dv_engine_vm_snapshot_delete(f->engine, "v1", "hot", DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    g_clear_pointer(&done, json_object_unref);
    done = dv_test_engine_run(f->engine, job, WAIT_MS);
    g_clear_pointer(&s, json_object_unref);
    s = row(f, "v1", "hot");
    g_assert_null(s);

    /* External of a VM without a disk of its own (the test driver's
     * VMs have none): nothing to put a layer on, refused up front. */
    refused(f, "v2", "{\"name\":\"ext\",\"kind\":\"external\"}", DV_ERROR_NOT_SUPPORTED, "kind");
    g_clear_pointer(&s, json_object_unref);
    s = row(f, "v2", "ext");
    g_assert_null(s);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/drover/engine/snapshots/kinds/sqlite", Fixture,
               GINT_TO_POINTER(DV_TEST_BACKEND_SQLITE), fixture_setup, test_kinds,
               fixture_teardown);
    g_test_add("/drover/engine/snapshots/kinds/pg", Fixture, GINT_TO_POINTER(DV_TEST_BACKEND_PG),
               fixture_setup, test_kinds, fixture_teardown);
    return g_test_run();
}
