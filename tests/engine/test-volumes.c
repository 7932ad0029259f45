#define G_LOG_DOMAIN "DvTestVolumes"

/* Volumes made and deleted from Drover, and the refusals of volumes and
 * of a VM's disks (issue 12, item 5), in the engine on SQLite and on
 * PostgreSQL against a test:/// host.  libvirt's test driver makes and
 * deletes volumes (metadata only) but has no virStorageVolResize and no
 * device attach (docs/VIRT.md): growing a volume and adding a disk are
 * shown on QEMU in tests/virt/test-disks-system.c; here their job fails
 * with the driver's "not supported" and writes nothing.  Every refusal
 * names its field and leaves no job and no row behind. */

#include "dv-core.h"
#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-test-catalog.h"
#include "dv-test-pg.h"
#include "dv-test-util.h"
#include "dv-virt.h"
#include "dv-vms.h"

#include <string.h>

#define WAIT_MS 30000
#define MIB (G_GINT64_CONSTANT(1) << 20)

typedef struct {
    char *tmpdir;
    char *pg_dbname;
    DvEngine *engine;
    char *host_id;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autofree char *xml = NULL;
    g_autofree char *body = NULL;
    g_autoptr(JsonObject) job = NULL;

    f->engine = dv_test_engine_on_backend("dv-test-vols", GPOINTER_TO_INT(data), 2, &f->tmpdir,
                                          &f->pg_dbname);
    /* One domain "h10" whose disk is volume h10.qcow2 of pool1. */
    xml = dv_test_write_host_xml(f->tmpdir, "h1.xml", "h1", 1);
    body = g_strdup_printf("{\"name\":\"h1\",\"uri\":\"test://%s\"}", xml);
    job = dv_test_engine_create(f->engine, DV_KIND_HOST, body, WAIT_MS);
    f->host_id = g_strdup(dv_json_get_string(dv_json_get_object(job, "result"), "id", ""));
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    dv_test_engine_on_backend_free(g_steal_pointer(&f->engine), g_steal_pointer(&f->tmpdir),
                                   g_steal_pointer(&f->pg_dbname));
    g_free(f->host_id);
}

static gint64
count(Fixture *f, const DvTableDef *def)
{
    return dv_test_engine_count(f->engine, def);
}

static JsonObject *
volume_row(Fixture *f, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonArray) rows =
        dv_core_list_all(f->engine, &dv_table_volumes, "name", name, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(json_array_get_length(rows), ==, 1);
    return json_object_ref(json_array_get_object_element(rows, 0));
}

/* The volumes of pool1 as the host sees them, names joined by ",". */
static char *
host_volumes(Fixture *f)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvVirtHost) vh = dv_core_virt_host_by_id(f->engine, f->host_id, &error);
    g_autoptr(JsonArray) vols = NULL;
    g_autoptr(GString) out = g_string_new("");

    g_assert_no_error(error);
    vols = dv_virt_pool_list_volumes(vh, "pool1", "", NULL, &error);
    g_assert_no_error(error);
    for (guint i = 0; i < json_array_get_length(vols); i++)
        g_string_append_printf(
            out, "%s%s", i > 0 ? "," : "",
            dv_json_get_string(json_array_get_object_element(vols, i), "name", ""));
    return g_string_free(g_steal_pointer(&out), FALSE);
}

typedef JsonObject *(*Submit)(Fixture *f, const char *ref, JsonObject *body, GError **error);

static JsonObject *
submit_create(Fixture *f, const char *ref, JsonObject *body, GError **error)
{
    return dv_engine_volume_create(f->engine, body, DV_ACTOR_NAMED("tester"), error);
}

static JsonObject *
submit_resize(Fixture *f, const char *ref, JsonObject *body, GError **error)
{
    return dv_engine_volume_resize(f->engine, ref, body, DV_ACTOR_NAMED("tester"), error);
}

static JsonObject *
submit_delete(Fixture *f, const char *ref, JsonObject *body, GError **error)
{
    return dv_engine_volume_delete(f->engine, ref, DV_ACTOR_NAMED("tester"), error);
}

static JsonObject *
submit_disk_add(Fixture *f, const char *ref, JsonObject *body, GError **error)
{
    return dv_engine_vm_disk_add(f->engine, ref, body, DV_ACTOR_NAMED("tester"), error);
}

static JsonObject *
submit_disk_remove(Fixture *f, const char *ref, JsonObject *body, GError **error)
{
    return dv_engine_vm_disk_remove(f->engine, ref, dv_json_get_string(body, "target", ""),
                                    DV_ACTOR_NAMED("tester"), error);
}

/* Refused before any job: @code naming @field, @in_message in the
 * message, no job, no volume row, the host's volumes as they were. */
static void
refused(Fixture *f, Submit submit, const char *ref, const char *json, DvErrorCode code,
        const char *field, const char *in_message)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    g_autoptr(JsonObject) job = NULL;
    gint64 jobs = count(f, &dv_table_jobs);
    gint64 vols = count(f, &dv_table_volumes);
    g_autofree char *on_host = host_volumes(f);
    g_autofree char *on_host_after = NULL;

    job = submit(f, ref, body, &error);
    g_assert_null(job);
    g_assert_error(error, DV_ERROR, (gint)code);
    g_test_message("refused: %s", error->message);
    g_assert_cmpstr(dv_error_get_field(error), ==, field);
    g_assert_nonnull(strstr(error->message, in_message));
    g_assert_cmpint(count(f, &dv_table_jobs), ==, jobs);
    g_assert_cmpint(count(f, &dv_table_volumes), ==, vols);
    on_host_after = host_volumes(f);
    g_assert_cmpstr(on_host_after, ==, on_host);
}

static void
test_create_delete(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body =
        dv_test_json_object("{\"pool\":\"pool1\",\"name\":\"data1.qcow2\",\"size\":20971520}");
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) row = NULL;
    g_autofree char *on_host = NULL;
    gint64 before = count(f, &dv_table_volumes);

    job = dv_engine_volume_create(f->engine, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    done = dv_test_engine_run(f->engine, job, WAIT_MS);
    g_assert_cmpint(count(f, &dv_table_volumes), ==, before + 1);
    row = volume_row(f, "data1.qcow2");
    g_assert_cmpint(dv_json_get_int(row, "capacity", 0), ==, 20 * MIB);
    g_assert_cmpstr(dv_json_get_string(row, "format", ""), ==, "qcow2");
    g_assert_cmpstr(dv_json_get_string(row, "path", ""), ==, "/pool1/data1.qcow2");
    g_assert_cmpstr(dv_json_get_string(dv_json_get_object(done, "result"), "id", ""), ==,
                    dv_json_get_string(row, "id", ""));
    on_host = host_volumes(f);
    g_assert_nonnull(strstr(on_host, "data1.qcow2"));

    /* A second of that name: the inventory refuses it. */
    refused(f, submit_create, NULL,
            "{\"pool\":\"pool1\",\"name\":\"data1.qcow2\",\"size\":1048576}", DV_ERROR_CONFLICT,
            "name", "already holds a volume named data1.qcow2");

    /* Deleted: gone from the host and the inventory. */
    g_clear_pointer(&job, json_object_unref);
    g_clear_pointer(&done, json_object_unref);
    job = dv_engine_volume_delete(f->engine, dv_json_get_string(row, "id", ""),
                                  DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    done = dv_test_engine_run(f->engine, job, WAIT_MS);
    g_assert_cmpint(count(f, &dv_table_volumes), ==, before);
    g_free(on_host);
    on_host = host_volumes(f);
    g_assert_null(strstr(on_host, "data1.qcow2"));
}

static void
test_refused(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonObject) used = volume_row(f, "h10.qcow2");
    const char *used_id = dv_json_get_string(used, "id", "");
    g_autofree char *resize = g_strdup_printf("{\"size\":%" G_GINT64_FORMAT "}",
                                              dv_json_get_int(used, "capacity", 0) - 1);

    /* create */
    refused(f, submit_create, NULL, "{\"pool\":\"nopool\",\"name\":\"x\",\"size\":1048576}",
            DV_ERROR_NOT_FOUND, "pool", "nopool");
    refused(
        f, submit_create, NULL,
        "{\"pool\":\"pool1\",\"host\":\"h1\",\"name\":\"x\",\"size\":1048576,\"format\":\"vmdk\"}",
        DV_ERROR_INVALID_ARGUMENT, "format", "qcow2 or raw");
    refused(f, submit_create, NULL, "{\"pool\":\"pool1\",\"name\":\"x\",\"size\":0}",
            DV_ERROR_INVALID_ARGUMENT, "size", "size");
    refused(f, submit_create, NULL, "{\"pool\":\"pool1\",\"name\":\"../x\",\"size\":1048576}",
            DV_ERROR_INVALID_ARGUMENT, "name", "name");
    refused(f, submit_create, NULL, "{\"pool\":\"pool1\",\"name\":\"x\"}",
            DV_ERROR_INVALID_ARGUMENT, "size", "size");
    /* resize: shrinking, nothing, an unknown volume */
    refused(f, submit_resize, used_id, resize, DV_ERROR_INVALID_ARGUMENT, "size",
            "a volume only grows");
    refused(f, submit_resize, used_id, "{}", DV_ERROR_INVALID_ARGUMENT, "size", "required");
    refused(f, submit_resize, "novol", "{\"size\":1048576}", DV_ERROR_NOT_FOUND, "ref", "novol");
    /* delete: the disk of VM h10 */
    refused(f, submit_delete, used_id, NULL, DV_ERROR_CONFLICT, "ref", "disk of VM h10");
    /* a VM's disks */
    refused(f, submit_disk_add, "h10", "{\"volume\":\"/pool1/h10.qcow2\",\"size\":1048576}",
            DV_ERROR_INVALID_ARGUMENT, "volume", "either volume");
    refused(f, submit_disk_add, "h10", "{}", DV_ERROR_INVALID_ARGUMENT, "volume", "either volume");
    refused(f, submit_disk_add, "h10", "{\"volume\":\"/pool1/h10.qcow2\"}", DV_ERROR_CONFLICT,
            "volume", "already a disk of VM h10");
    refused(f, submit_disk_add, "h10", "{\"volume\":\"/pool1/none.qcow2\"}", DV_ERROR_NOT_FOUND,
            "volume", "no volume");
    refused(f, submit_disk_add, "h10", "{\"size\":1048576,\"pool\":\"nopool\"}", DV_ERROR_NOT_FOUND,
            "pool", "nopool");
    refused(f, submit_disk_add, "h10", "{\"size\":1048576,\"pool\":\"pool1\",\"format\":\"vhd\"}",
            DV_ERROR_INVALID_ARGUMENT, "format", "qcow2 or raw");
    refused(f, submit_disk_remove, "h10", "{\"target\":\"vdq\"}", DV_ERROR_NOT_FOUND, "target",
            "has no disk vdq");
}

/* What the test driver cannot do fails in the job, saying so, and
 * leaves nothing behind: the volume's size as it was; a disk add's new
 * volume removed again. */
static void
test_driver_gaps(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) used = volume_row(f, "h10.qcow2");
    g_autoptr(JsonObject) body = dv_test_json_object("{\"size\":2147483648}");
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) after = NULL;
    g_autofree char *on_host = host_volumes(f);
    g_autofree char *on_host_after = NULL;
    gint64 vols = count(f, &dv_table_volumes);

    job = dv_engine_volume_resize(f->engine, dv_json_get_string(used, "id", ""), body,
                                  DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    done = dv_test_engine_job_row(f->engine, job, WAIT_MS);
    g_assert_cmpstr(dv_json_get_string(done, "state", ""), ==, "failed");
    g_test_message("resize on test:///: %s",
                   dv_json_get_string(dv_json_get_object(done, "error"), "message", ""));
    g_assert_nonnull(strstr(dv_json_get_string(dv_json_get_object(done, "error"), "message", ""),
                            "not supported"));
    after = volume_row(f, "h10.qcow2");
    g_assert_cmpint(dv_json_get_int(after, "capacity", 0), ==,
                    dv_json_get_int(used, "capacity", 0));

    g_clear_pointer(&body, json_object_unref);
    g_clear_pointer(&job, json_object_unref);
    g_clear_pointer(&done, json_object_unref);
    body = dv_test_json_object("{\"size\":1048576,\"pool\":\"pool1\"}");
    job = dv_engine_vm_disk_add(f->engine, "h10", body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    done = dv_test_engine_job_row(f->engine, job, WAIT_MS);
    g_assert_cmpstr(dv_json_get_string(done, "state", ""), ==, "failed");
    g_assert_cmpint(count(f, &dv_table_volumes), ==, vols);
    on_host_after = host_volumes(f);
    g_assert_cmpstr(on_host_after, ==, on_host);
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
    add_both("/drover/engine/volumes/create-delete", test_create_delete);
    add_both("/drover/engine/volumes/refused", test_refused);
    add_both("/drover/engine/volumes/driver-gaps", test_driver_gaps);
    return g_test_run();
}
