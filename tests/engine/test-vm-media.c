#define G_LOG_DOMAIN "DvTestVmMedia"

/* Installation media in the engine (issue 12, item 2) on SQLite and on
 * PostgreSQL against a test:/// host whose pool "media" (64 MiB available)
 * holds an ISO (format iso) and a qcow2 image:
 *  - a VM made with a CD-ROM (pool + volume) and boot_order [cdrom, disk],
 *    and one made with the ISO given as a disk volume (the bug),
 *    both defined with a read-only CD-ROM on IDE, nothing else made;
 *  - a spec refused before any job, naming the field: an absent ISO, a
 *    qcow2 image as an ISO, a share not on the host, five drives, a bad
 *    boot order; nothing written;
 *  - POST /vms/{ref}/cdrom refusals naming the field;
 *  - an upload refused at the request (name missing or taken, larger than
 *    the pool's available space) and one accepted whose job fails cleanly
 *    on a test:// host (no streams there) with no job left running.
 * Booting from the CD-ROM, eject and insert live, and uploads that run are
 * in media-system (qemu:///system). */

#include "dv-core.h"
#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-test-catalog.h"
#include "dv-test-pg.h"
#include "dv-test-util.h"
#include "dv-upload.h"
#include "dv-virt.h"
#include "dv-vms.h"

#include <string.h>

#define WAIT_MS 30000

typedef struct {
    char *tmpdir;
    char *pg_dbname;
    DvEngine *engine;
    char *host_id;
} Fixture;

static char *
write_host(const char *dir)
{
    g_autofree char *path = g_build_filename(dir, "media-host.xml", NULL);
    g_autofree char *pool_uuid = g_uuid_string_random();
    g_autofree char *net_uuid = g_uuid_string_random();
    g_autofree char *xml = g_strdup_printf(
        "<node><cpu><mhz>2000</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets>"
        "<cores>8</cores><threads>1</threads><active>8</active></cpu><memory>16777216</memory>"
        "<network><name>net1</name><uuid>%s</uuid><bridge name='virbr9'/></network>"
        "<pool type='dir'><name>media</name><uuid>%s</uuid><capacity>1073741824</capacity>"
        "<allocation>1006632960</allocation><available>67108864</available>"
        "<target><path>/media</path></target>"
        "<volume type='file'><name>install.iso</name><capacity>4194304</capacity>"
        "<allocation>4194304</allocation><target><path>/media/install.iso</path>"
        "<format type='iso'/></target></volume>"
        "<volume type='file'><name>plain.qcow2</name><capacity>8388608</capacity>"
        "<allocation>0</allocation><target><path>/media/plain.qcow2</path>"
        "<format type='qcow2'/></target></volume></pool></node>",
        net_uuid, pool_uuid);
    g_autoptr(GError) error = NULL;
    g_file_set_contents(path, xml, -1, &error);
    g_assert_no_error(error);
    return g_steal_pointer(&path);
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autofree char *xml = NULL;
    g_autofree char *body = NULL;
    g_autoptr(JsonObject) job = NULL;

    f->engine = dv_test_engine_on_backend("dv-test-media", GPOINTER_TO_INT(data), 2, &f->tmpdir,
                                          &f->pg_dbname);
    xml = write_host(f->tmpdir);
    body = g_strdup_printf("{\"name\":\"h1\",\"uri\":\"test://%s\"}", xml);
    job = dv_test_engine_create(f->engine, DV_KIND_HOST, body, WAIT_MS);
    f->host_id = g_strdup(dv_json_get_string(dv_json_get_object(job, "result"), "id", ""));
    g_clear_pointer(&job, json_object_unref);
    job = dv_test_engine_create(f->engine, DV_KIND_LIBRARY_SHARE,
                                "{\"name\":\"isos\",\"host\":\"h1\",\"pool\":\"media\"}", WAIT_MS);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    dv_test_engine_on_backend_free(g_steal_pointer(&f->engine), g_steal_pointer(&f->tmpdir),
                                   g_steal_pointer(&f->pg_dbname));
    g_free(f->host_id);
}

static char *
domain_xml(Fixture *f, const char *vm_name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) vm = dv_engine_get(f->engine, DV_KIND_VM, vm_name, &error);
    g_autoptr(DvVirtHost) vh = NULL;
    char *xml;
    g_assert_no_error(error);
    vh = dv_core_virt_host_by_id(f->engine, f->host_id, &error);
    g_assert_no_error(error);
    xml = dv_virt_domain_get_xml(vh, dv_json_get_string(vm, "uuid", ""), TRUE, NULL, &error);
    g_assert_no_error(error);
    return xml;
}

static void
test_create(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonObject) job = NULL;
    g_autofree char *xml = NULL;

    job = dv_test_engine_create(f->engine, DV_KIND_VM,
                                "{\"name\":\"inst\",\"host\":\"h1\",\"memory_mib\":128,"
                                "\"disks\":[{\"size_mib\":8,\"pool\":\"media\"}],"
                                "\"cdroms\":[{\"pool\":\"media\",\"volume\":\"install.iso\"},{}],"
                                "\"boot_order\":[\"cdrom\",\"disk\"]}",
                                WAIT_MS);
    xml = domain_xml(f, "inst");
    g_assert_nonnull(strstr(xml, "/media/install.iso"));
    g_assert_nonnull(strstr(xml, "device='cdrom'"));
    g_assert_nonnull(strstr(xml, "<readonly/>"));
    g_assert_nonnull(strstr(xml, "dev='hda' bus='ide'"));
    g_assert_nonnull(strstr(xml, "dev='hdb' bus='ide'")); /* the empty drive */
    g_assert_nonnull(strstr(xml, "<boot dev='cdrom'/>"));
    g_assert_true(strstr(xml, "<boot dev='cdrom'/>") < strstr(xml, "<boot dev='hd'/>"));

    /* The bug: the ISO as a disk volume. */
    g_clear_pointer(&job, json_object_unref);
    job = dv_test_engine_create(f->engine, DV_KIND_VM,
                                "{\"name\":\"isodisk\",\"host\":\"h1\",\"memory_mib\":128,"
                                "\"disks\":[{\"size_mib\":8,\"pool\":\"media\"},"
                                "{\"volume\":\"/media/install.iso\"}]}",
                                WAIT_MS);
    g_free(xml);
    xml = domain_xml(f, "isodisk");
    g_assert_nonnull(strstr(xml, "device='cdrom'"));
    g_assert_nonnull(strstr(xml, "/media/install.iso"));

    /* A template's drives (its share kept by id), given to its VMs; a
     * spec's own cdroms win. */
    g_clear_pointer(&job, json_object_unref);
    job = dv_test_engine_create(
        f->engine, DV_KIND_TEMPLATE,
        "{\"name\":\"installer\",\"vcpus\":1,\"memory_mib\":128,"
        "\"cdroms\":[{\"library_share\":\"isos\",\"file\":\"install.iso\"},{}]}",
        WAIT_MS);
    g_clear_pointer(&job, json_object_unref);
    job = dv_test_engine_create(
        f->engine, DV_KIND_VM, "{\"name\":\"fromtmpl\",\"host\":\"h1\",\"template\":\"installer\"}",
        WAIT_MS);
    g_free(xml);
    xml = domain_xml(f, "fromtmpl");
    g_assert_nonnull(strstr(xml, "/media/install.iso"));
    g_assert_nonnull(strstr(xml, "dev='hdb' bus='ide'"));
    g_clear_pointer(&job, json_object_unref);
    job =
        dv_test_engine_create(f->engine, DV_KIND_VM,
                              "{\"name\":\"fromtmpl2\",\"host\":\"h1\",\"template\":\"installer\","
                              "\"cdroms\":[]}",
                              WAIT_MS);
    g_free(xml);
    xml = domain_xml(f, "fromtmpl2");
    g_assert_null(strstr(xml, "device='cdrom'"));
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) body = dv_test_json_object(
            "{\"name\":\"bad\",\"vcpus\":1,\"memory_mib\":128,\"cdroms\":[{\"pool\":\"media\"}]}");
        g_autoptr(JsonObject) refused =
            dv_engine_create(f->engine, DV_KIND_TEMPLATE, body, DV_ACTOR_NAMED("tester"), &error);
        g_assert_null(refused);
        g_assert_cmpstr(dv_error_get_field(error), ==, "cdroms[0]");
    }

    /* Generation 2 (q35): SATA, no IDE. */
    g_clear_pointer(&job, json_object_unref);
    job = dv_test_engine_create(f->engine, DV_KIND_VM,
                                "{\"name\":\"uefi\",\"host\":\"h1\",\"memory_mib\":128,"
                                "\"generation\":2,\"secure_boot\":false,"
                                "\"cdroms\":[{\"pool\":\"media\",\"volume\":\"install.iso\"}]}",
                                WAIT_MS);
    g_free(xml);
    xml = domain_xml(f, "uefi");
    g_assert_nonnull(strstr(xml, "dev='sda' bus='sata'"));

    /* A library share's file. */
    g_clear_pointer(&job, json_object_unref);
    job =
        dv_test_engine_create(f->engine, DV_KIND_VM,
                              "{\"name\":\"fromshare\",\"host\":\"h1\",\"memory_mib\":128,"
                              "\"cdroms\":[{\"library_share\":\"isos\",\"file\":\"install.iso\"}]}",
                              WAIT_MS);
    g_free(xml);
    xml = domain_xml(f, "fromshare");
    g_assert_nonnull(strstr(xml, "/media/install.iso"));
}

static void
create_refused(Fixture *f, const char *json, DvErrorCode code, const char *field)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    gint64 vms = dv_test_engine_count(f->engine, &dv_table_vms);
    gint64 vols = dv_test_engine_count(f->engine, &dv_table_volumes);
    gint64 jobs = dv_test_engine_count(f->engine, &dv_table_jobs);
    g_autoptr(JsonObject) job =
        dv_engine_create(f->engine, DV_KIND_VM, body, DV_ACTOR_NAMED("tester"), &error);

    g_assert_null(job);
    g_assert_error(error, DV_ERROR, (gint)code);
    g_test_message("refused: %s", error->message);
    g_assert_cmpstr(dv_error_get_field(error), ==, field);
    g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_vms), ==, vms);
    g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_volumes), ==, vols);
    g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_jobs), ==, jobs);
}

static void
test_refused(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonObject) job = NULL;

    create_refused(f,
                   "{\"name\":\"r\",\"host\":\"h1\",\"memory_mib\":128,"
                   "\"cdroms\":[{\"pool\":\"media\",\"volume\":\"absent.iso\"}]}",
                   DV_ERROR_NOT_FOUND, "cdroms[0].volume");
    create_refused(f,
                   "{\"name\":\"r\",\"host\":\"h1\",\"memory_mib\":128,"
                   "\"cdroms\":[{\"pool\":\"media\",\"volume\":\"plain.qcow2\"}]}",
                   DV_ERROR_INVALID_ARGUMENT, "cdroms[0].volume");
    create_refused(f,
                   "{\"name\":\"r\",\"host\":\"h1\",\"memory_mib\":128,"
                   "\"cdroms\":[{\"library_share\":\"default\",\"file\":\"install.iso\"}]}",
                   DV_ERROR_NOT_SUPPORTED, "cdroms[0].library_share");
    create_refused(f,
                   "{\"name\":\"r\",\"host\":\"h1\",\"memory_mib\":128,"
                   "\"cdroms\":[{\"library_share\":\"isos\"}]}",
                   DV_ERROR_INVALID_ARGUMENT, "cdroms[0].file");
    create_refused(f,
                   "{\"name\":\"r\",\"host\":\"h1\",\"memory_mib\":128,"
                   "\"cdroms\":[{},{},{},{},{}]}",
                   DV_ERROR_INVALID_ARGUMENT, "cdroms");
    create_refused(f,
                   "{\"name\":\"r\",\"host\":\"h1\",\"memory_mib\":128,"
                   "\"disks\":[{\"size_mib\":8,\"pool\":\"media\"}],"
                   "\"boot_order\":[\"cdrom\",\"floppy\"]}",
                   DV_ERROR_INVALID_ARGUMENT, "boot_order");
    create_refused(f,
                   "{\"name\":\"r\",\"host\":\"h1\",\"memory_mib\":128,"
                   "\"boot_order\":[\"disk\",\"disk\"]}",
                   DV_ERROR_INVALID_ARGUMENT, "boot_order");

    /* POST /vms/{ref}/cdrom. */
    job = dv_test_engine_create(f->engine, DV_KIND_VM,
                                "{\"name\":\"v\",\"host\":\"h1\",\"memory_mib\":128}", WAIT_MS);
    {
        static const struct {
            const char *body;
            DvErrorCode code;
            const char *field;
        } cases[] = {
            { "{\"pool\":\"media\",\"volume\":\"absent.iso\"}", DV_ERROR_NOT_FOUND, "volume" },
            { "{\"pool\":\"nopool\",\"volume\":\"install.iso\"}", DV_ERROR_NOT_FOUND, "pool" },
            { "{\"library_share\":\"isos\",\"file\":\"absent.iso\"}", DV_ERROR_NOT_FOUND, "file" },
            { "{\"library_share\":\"default\",\"file\":\"x.iso\"}", DV_ERROR_NOT_SUPPORTED,
              "library_share" },
            { "{\"eject\":true,\"pool\":\"media\",\"volume\":\"install.iso\"}",
              DV_ERROR_INVALID_ARGUMENT, "eject" },
            { "{\"eject\":false}", DV_ERROR_INVALID_ARGUMENT, "eject" },
            { "{\"iso\":\"x\"}", DV_ERROR_INVALID_ARGUMENT, "iso" },
        };
        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
            g_autoptr(GError) error = NULL;
            g_autoptr(JsonObject) body = dv_test_json_object(cases[i].body);
            gint64 jobs = dv_test_engine_count(f->engine, &dv_table_jobs);
            g_autoptr(JsonObject) refused =
                dv_engine_vm_cdrom(f->engine, "v", body, DV_ACTOR_NAMED("tester"), &error);
            g_assert_null(refused);
            g_assert_error(error, DV_ERROR, (gint)cases[i].code);
            g_test_message("%s: %s", cases[i].body, error->message);
            g_assert_cmpstr(dv_error_get_field(error), ==, cases[i].field);
            g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_jobs), ==, jobs);
        }
    }
}

static void
test_upload(Fixture *f, gconstpointer data)
{
    g_autoptr(GHashTable) query = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(DvUpload) small = dv_upload_new(1024);
    g_autoptr(DvUpload) big = dv_upload_new(G_GUINT64_CONSTANT(128) << 20);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) row = NULL;
    gint64 jobs = dv_test_engine_count(f->engine, &dv_table_jobs);

    /* No name. */
    job = dv_engine_pool_upload(f->engine, "media", query, small, DV_ACTOR_NAMED("tester"), &error);
    g_assert_null(job);
    g_assert_cmpstr(dv_error_get_field(error), ==, "name");
    g_clear_error(&error);
    /* A name the pool holds. */
    g_hash_table_insert(query, "name", "install.iso");
    job = dv_engine_library_share_upload(f->engine, "isos", query, small, DV_ACTOR_NAMED("tester"),
                                         &error);
    g_assert_null(job);
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "name");
    g_clear_error(&error);
    /* More than the pool has: the test driver makes every pool 100 GiB,
     * so the inventory is told 64 MiB (as a refresh of a full pool would). */
    {
        g_autoptr(JsonArray) pools =
            dv_core_list_all(f->engine, &dv_table_pools, "name", "media", &error);
        g_autoptr(JsonObject) patch = json_object_new();
        g_assert_no_error(error);
        json_object_set_int_member(patch, "available", 64 << 20);
        g_assert_true(dv_store_update(
            dv_engine_get_store(f->engine), &dv_table_pools,
            dv_json_get_string(json_array_get_object_element(pools, 0), "id", ""), patch, &error));
        g_assert_no_error(error);
    }
    g_hash_table_insert(query, "name", "big.img");
    job = dv_engine_pool_upload(f->engine, "media", query, big, DV_ACTOR_NAMED("tester"), &error);
    g_assert_null(job);
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "Content-Length");
    g_test_message("too large: %s", error->message);
    g_clear_error(&error);
    /* The library root has no host pool. */
    job = dv_engine_library_share_upload(f->engine, "default", query, small,
                                         DV_ACTOR_NAMED("tester"), &error);
    g_assert_null(job);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED);
    g_clear_error(&error);
    g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_jobs), ==, jobs);

    /* Accepted; the test driver has no streams: the job fails, says so,
     * and nothing is left (no volume, no job running). */
    g_hash_table_insert(query, "name", "small.img");
    job = dv_engine_library_share_upload(f->engine, "isos", query, small, DV_ACTOR_NAMED("tester"),
                                         &error);
    g_assert_no_error(error);
    g_assert_false(dv_upload_push(small, "0123456789", 10));
    row = dv_test_engine_job_row(f->engine, job, WAIT_MS);
    g_assert_cmpstr(dv_json_get_string(row, "state", ""), ==, "failed");
    g_test_message("test driver: %s",
                   dv_json_get_string(dv_json_get_object(row, "error"), "message", ""));
    {
        g_autoptr(JsonArray) vols =
            dv_core_list_all(f->engine, &dv_table_volumes, "path", "/media/small.img", &error);
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(vols), ==, 0);
    }
}

/* The stream between a request and its job, alone: order, pause and
 * resume, a cut body, too many bytes. */
static gboolean
resumed(gpointer data)
{
    (*(guint *)data)++;
    return G_SOURCE_REMOVE;
}

static void
test_stream(void)
{
    g_autoptr(DvUpload) u = dv_upload_new(6u << 20);
    g_autoptr(DvUpload) cut = dv_upload_new(100);
    g_autoptr(DvUpload) over = dv_upload_new(4);
    g_autoptr(GError) error = NULL;
    g_autofree guint8 *chunk = g_malloc(1 << 20);
    g_autofree guint8 *buf = g_malloc(1 << 20);
    guint resumes = 0;
    gboolean paused = FALSE;
    gsize total = 0;
    gssize n;

    dv_upload_set_resume(u, g_main_context_default(), resumed, &resumes, NULL);
    for (guint i = 0; i < 6; i++) {
        memset(chunk, 'a' + i, 1 << 20);
        paused = dv_upload_push(u, chunk, 1 << 20) || paused;
    }
    g_assert_true(paused); /* above 4 MiB buffered */
    dv_upload_finish(u);
    while ((n = dv_upload_read(u, buf, 1 << 20, 1000, &error)) > 0) {
        g_assert_cmpint(buf[0], ==, 'a' + (gint)(total >> 20));
        total += (gsize)n;
    }
    g_assert_no_error(error);
    g_assert_cmpint(n, ==, 0);
    g_assert_cmpuint(total, ==, 6u << 20);
    while (g_main_context_iteration(NULL, FALSE))
        ;
    g_assert_cmpuint(resumes, ==, 1);

    g_assert_false(dv_upload_push(cut, "abc", 3));
    dv_upload_abort(cut, "the client's connection closed");
    n = dv_upload_read(cut, buf, 100, 1000, &error);
    g_assert_cmpint(n, ==, -1);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(error->message, "upload cut after 3 of 100 bytes"));
    g_clear_error(&error);

    dv_upload_push(over, "abcdef", 6);
    n = dv_upload_read(over, buf, 100, 1000, &error);
    g_assert_cmpint(n, ==, -1);
    g_assert_cmpstr(dv_error_get_field(error), ==, "Content-Length");
    g_clear_error(&error);

    /* The registry: taken once, a missing one times out. */
    dv_upload_register("job-1", u);
    {
        g_autoptr(DvUpload) t = dv_upload_take("job-1", 10);
        g_autoptr(DvUpload) again = dv_upload_take("job-1", 10);
        g_assert_true(t == u);
        g_assert_null(again);
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
    g_test_add_func("/drover/engine/vm-media/stream", test_stream);
    add_both("/drover/engine/vm-media/create", test_create);
    add_both("/drover/engine/vm-media/refused", test_refused);
    add_both("/drover/engine/vm-media/upload", test_upload);
    return g_test_run();
}
