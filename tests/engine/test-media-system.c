#define G_LOG_DOMAIN "DvTestMediaSystem"

/* Installation media on the real daemon (qemu:///system, QEMU under TCG;
 * issue 12, item 2):
 *
 *  - a bootable ISO made by the test (genisoimage, El Torito "no
 *    emulation": a 63-byte boot program that prints DROVER-ISO-BOOT on
 *    COM1 once a second), put in a pool registered as a library share;
 *  - the bug of the issue: that ISO given as a disk volume beside a new
 *    disk used to fail the job on format "iso" after making the volume; now
 *    it goes in as a read-only raw CD-ROM;
 *  - a VM made by Drover with the ISO in a CD-ROM drive (cdroms, library
 *    share + file) and boot_order [cdrom, disk] boots from it: SeaBIOS
 *    runs the ISO's boot program, whose line is read from the VM's serial
 *    pty (the boot time printed);
 *  - eject and insert (pool + volume) on the running VM, live;
 *  - a drive added to a shut-off VM that had none;
 *  - refusals naming the field, each writing nothing: a file the share
 *    does not hold, a share not on the VM's host, a qcow2 volume as an
 *    ISO, eject with an ISO, a drive for a running VM without one. */

#include <fcntl.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "dv-core.h"
#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-test-catalog.h"
#include "dv-test-system.h"
#include "dv-test-util.h"
#include "dv-vms.h"

#define WAIT_MS 120000
#define MIB (G_GINT64_CONSTANT(1) << 20)
#define BOOT_LINE "DROVER-ISO-BOOT"

static DvVirt *the_virt;

/* The boot program, position independent real-mode code (El Torito loads
 * it at 0x7C00): mov dx,0x3f8; for each byte: mov al,B; out dx,al; then
 * mov cx,18; (sti; hlt) x cx (about a second of timer ticks); jmp 0. */
static void
write_boot_program(const char *path)
{
    static const char msg[] = BOOT_LINE "\r\n";
    g_autoptr(GByteArray) code = g_byte_array_new();
    guint8 head[] = { 0xBA, 0xF8, 0x03 };
    guint8 wait[] = { 0xB9, 0x12, 0x00, 0xFB, 0xF4, 0xE2, 0xFC };
    guint8 jmp[2] = { 0xEB, 0 };
    guint8 sector[2048] = { 0 };
    g_autoptr(GError) error = NULL;

    g_byte_array_append(code, head, sizeof head);
    for (gsize i = 0; i < strlen(msg); i++) {
        guint8 out[] = { 0xB0, (guint8)msg[i], 0xEE };
        g_byte_array_append(code, out, sizeof out);
    }
    g_byte_array_append(code, wait, sizeof wait);
    jmp[1] = (guint8)(-(gint)(code->len + 2));
    g_byte_array_append(code, jmp, sizeof jmp);
    g_assert_cmpuint(code->len, <, 128);
    memcpy(sector, code->data, code->len);
    g_file_set_contents(path, (const char *)sector, sizeof sector, &error);
    g_assert_no_error(error);
}

/* A bootable ISO9660 image at @iso (mode 0644) with a marker file. */
static void
make_iso(const char *dir, const char *iso)
{
    g_autofree char *tree = g_build_filename(dir, "isotree", NULL);
    g_autofree char *boot = g_build_filename(tree, "boot.bin", NULL);
    g_autofree char *marker = g_build_filename(tree, "marker.txt", NULL);
    g_autoptr(GError) error = NULL;
    const char *argv[] = { "genisoimage", "-quiet", "-V", "DROVERISO", "-b", "boot.bin",
                           "-no-emul-boot", "-boot-load-size", "4", "-c", "boot.cat",
                           "-o", iso, tree, NULL };
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;

    g_assert_cmpint(g_mkdir_with_parents(tree, 0755), ==, 0);
    write_boot_program(boot);
    g_file_set_contents(marker, "drover media test\n", -1, &error);
    g_assert_no_error(error);
    /* A missing genisoimage fails the test (scripts/install-deps has it). */
    if (dv_test_spawn(argv, NULL, &out, &err) != 0)
        g_error("genisoimage failed: %s", err);
    g_chmod(iso, 0644);
    dv_test_system_remove_tree(tree);
}

static JsonObject *
submit_ok(DvEngine *engine, JsonObject *job)
{
    return dv_test_engine_run(engine, job, WAIT_MS);
}

static JsonObject *
cdrom(DvEngine *engine, const char *vm, const char *json, GError **error)
{
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    return dv_engine_vm_cdrom(engine, vm, body, DV_ACTOR_NAMED("tester"), error);
}

static void
assert_refused(JsonObject *job, GError *error, DvErrorCode code, const char *field)
{
    g_assert_null(job);
    g_assert_error(error, DV_ERROR, (gint)code);
    g_test_message("refused: %s", error->message);
    g_assert_cmpstr(dv_error_get_field(error), ==, field);
}

static char *
domain_xml(DvVirtHost *vh, const char *uuid, gboolean inactive)
{
    g_autoptr(GError) error = NULL;
    char *xml = dv_virt_domain_get_xml(vh, uuid, inactive, NULL, &error);
    g_assert_no_error(error);
    return xml;
}

static JsonObject *
vm_get(DvEngine *engine, const char *name)
{
    g_autoptr(GError) error = NULL;
    JsonObject *vm = dv_engine_get(engine, DV_KIND_VM, name, &error);
    g_assert_no_error(error);
    return vm;
}

/* Reads the serial pty named in @xml until @want or @timeout_s; returns
 * the seconds waited. */
static double
wait_pty(const char *xml, const char *want, guint timeout_s)
{
    const char *p = strstr(xml, "<serial type='pty'>");
    const char *src = p != NULL ? strstr(p, "<source path='") : NULL;
    g_autofree char *path = NULL;
    g_autoptr(GString) seen = g_string_new(NULL);
    gint64 t0 = g_get_monotonic_time();
    int fd;

    g_assert_nonnull(src);
    src += strlen("<source path='");
    path = g_strndup(src, strcspn(src, "'"));
    fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
    g_assert_cmpint(fd, >=, 0);
    while (strstr(seen->str, want) == NULL) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        char buf[256];
        ssize_t n;
        if (g_get_monotonic_time() - t0 > (gint64)timeout_s * G_USEC_PER_SEC) {
            close(fd);
            g_error("no '%s' on %s after %u s; read: %s", want, path, timeout_s, seen->str);
        }
        if (poll(&pfd, 1, 500) <= 0)
            continue;
        n = read(fd, buf, sizeof buf);
        if (n > 0)
            g_string_append_len(seen, buf, n);
    }
    close(fd);
    return (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC;
}

static void
test_media(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *prefix = dv_test_system_prefix_new("dvmedia", getppid());
    g_autofree char *dir = dv_test_system_dir_new(prefix);
    g_autofree char *state = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), prefix);
    g_autofree char *pool = g_strconcat(prefix, "pool", NULL);
    g_autofree char *share = g_strconcat(prefix, "share", NULL);
    g_autofree char *iso_name = g_strconcat(prefix, "install.iso", NULL);
    g_autofree char *iso = g_build_filename(dir, iso_name, NULL);
    g_autofree char *vm_a = g_strconcat(prefix, "a", NULL);
    g_autofree char *vm_b = g_strconcat(prefix, "b", NULL);
    g_autofree char *vm_c = g_strconcat(prefix, "c", NULL);
    g_autoptr(DvVirtHost) vh = dv_virt_host_get(the_virt, "media-local", DV_TEST_SYSTEM_URI);
    g_autoptr(DvEngine) engine = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) vm = NULL;
    g_autoptr(JsonObject) qvol = NULL;
    g_autofree char *body = NULL;
    g_autofree char *xml = NULL;
    gint64 t0;
    gint64 vms_before;
    gint64 vols_before;
    gint64 jobs_before;

    g_assert_cmpint(g_chmod(dir, 0755), ==, 0);
    make_iso(dir, iso);
    dv_test_system_pool_create(vh, pool, dir);
    qvol = dv_virt_volume_create(vh, pool, "plain.qcow2", 8 * MIB, "qcow2", NULL, &error);
    g_assert_no_error(error);

    engine = dv_test_engine_new(state, TRUE);
    g_assert_nonnull(engine);
    job = dv_test_engine_create(engine, DV_KIND_HOST,
                                "{\"name\":\"local\",\"uri\":\"qemu:///system\"}", WAIT_MS);
    body = g_strdup_printf("{\"name\":\"%s\",\"host\":\"local\",\"pool\":\"%s\"}", share, pool);
    g_clear_pointer(&job, json_object_unref);
    job = dv_test_engine_create(engine, DV_KIND_LIBRARY_SHARE, body, WAIT_MS);

    /* The bug: an ISO given as a disk volume beside a new disk. */
    g_free(body);
    body = g_strdup_printf("{\"name\":\"%s\",\"host\":\"local\",\"memory_mib\":64,"
                           "\"disks\":[{\"size_mib\":8,\"pool\":\"%s\"},{\"volume\":\"%s\"}]}",
                           vm_a, pool, iso);
    g_clear_pointer(&job, json_object_unref);
    job = dv_test_engine_create(engine, DV_KIND_VM, body, WAIT_MS);
    vm = vm_get(engine, vm_a);
    xml = domain_xml(vh, dv_json_get_string(vm, "uuid", ""), TRUE);
    g_assert_nonnull(strstr(xml, "device='cdrom'"));
    g_assert_nonnull(strstr(xml, iso));
    g_assert_nonnull(strstr(xml, "<readonly/>"));
    g_assert_nonnull(strstr(xml, "bus='ide'"));

    /* Booted from the CD-ROM: a library share's file, cdrom first. */
    g_free(body);
    body = g_strdup_printf("{\"name\":\"%s\",\"host\":\"local\",\"memory_mib\":64,"
                           "\"disks\":[{\"size_mib\":8,\"pool\":\"%s\"}],"
                           "\"cdroms\":[{\"library_share\":\"%s\",\"file\":\"%s\"}],"
                           "\"boot_order\":[\"cdrom\",\"disk\"],\"start\":true}",
                           vm_b, pool, share, iso_name);
    t0 = g_get_monotonic_time();
    g_clear_pointer(&job, json_object_unref);
    job = dv_test_engine_create(engine, DV_KIND_VM, body, WAIT_MS);
    g_clear_pointer(&vm, json_object_unref);
    vm = vm_get(engine, vm_b);
    g_assert_cmpstr(dv_json_get_string(vm, "state", ""), ==, "running");
    g_free(xml);
    xml = domain_xml(vh, dv_json_get_string(vm, "uuid", ""), FALSE);
    g_assert_nonnull(strstr(xml, "<boot dev='cdrom'/>"));
    {
        double waited = wait_pty(xml, BOOT_LINE, 120);
        g_printerr("# qemu:///system (TCG): a VM made by Drover booted from its CD-ROM; the ISO's "
                   "boot program printed on COM1 %.2f s after the create request (%.2f s of it "
                   "reading the console)\n",
                   (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC, waited);
    }

    /* Eject and insert on the running VM, live. */
    g_clear_pointer(&job, json_object_unref);
    job = cdrom(engine, vm_b, "{\"eject\":true}", &error);
    g_assert_no_error(error);
    g_clear_pointer(&done, json_object_unref);
    done = submit_ok(engine, job);
    g_assert_cmpstr(dv_json_get_string(dv_json_get_object(done, "result"), "applied", ""), ==,
                    "live");
    g_free(xml);
    xml = domain_xml(vh, dv_json_get_string(vm, "uuid", ""), FALSE);
    g_assert_null(strstr(xml, iso));
    g_assert_nonnull(strstr(xml, "device='cdrom'"));
    g_free(xml);
    xml = domain_xml(vh, dv_json_get_string(vm, "uuid", ""), TRUE);
    g_assert_null(strstr(xml, iso));
    g_free(body);
    body = g_strdup_printf("{\"pool\":\"%s\",\"volume\":\"%s\"}", pool, iso_name);
    t0 = g_get_monotonic_time();
    g_clear_pointer(&job, json_object_unref);
    job = cdrom(engine, vm_b, body, &error);
    g_assert_no_error(error);
    g_clear_pointer(&done, json_object_unref);
    done = submit_ok(engine, job);
    g_printerr("# qemu:///system: an ISO inserted into a running VM's drive in %.2f s (job)\n",
               (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC);
    g_assert_true(dv_json_get_bool(dv_json_get_object(done, "result"), "live", FALSE));
    g_free(xml);
    xml = domain_xml(vh, dv_json_get_string(vm, "uuid", ""), FALSE);
    g_assert_nonnull(strstr(xml, iso));

    /* Refusals: each names its field and writes nothing. */
    vms_before = dv_test_engine_count(engine, &dv_table_vms);
    vols_before = dv_test_engine_count(engine, &dv_table_volumes);
    jobs_before = dv_test_engine_count(engine, &dv_table_jobs);
    g_free(body);
    body = g_strdup_printf("{\"library_share\":\"%s\",\"file\":\"absent.iso\"}", share);
    g_clear_pointer(&job, json_object_unref);
    job = cdrom(engine, vm_b, body, &error);
    assert_refused(job, error, DV_ERROR_NOT_FOUND, "file");
    g_clear_error(&error);
    /* The default share is droverd's library root, on no host. */
    g_clear_pointer(&job, json_object_unref);
    job = cdrom(engine, vm_b, "{\"library_share\":\"default\",\"file\":\"x.iso\"}", &error);
    assert_refused(job, error, DV_ERROR_NOT_SUPPORTED, "library_share");
    g_clear_error(&error);
    g_free(body);
    body = g_strdup_printf("{\"pool\":\"%s\",\"volume\":\"plain.qcow2\"}", pool);
    g_clear_pointer(&job, json_object_unref);
    job = cdrom(engine, vm_b, body, &error);
    assert_refused(job, error, DV_ERROR_INVALID_ARGUMENT, "volume");
    g_clear_error(&error);
    g_free(body);
    body = g_strdup_printf("{\"eject\":true,\"pool\":\"%s\",\"volume\":\"%s\"}", pool, iso_name);
    g_clear_pointer(&job, json_object_unref);
    job = cdrom(engine, vm_b, body, &error);
    assert_refused(job, error, DV_ERROR_INVALID_ARGUMENT, "eject");
    g_clear_error(&error);
    g_free(body);
    body = g_strdup_printf("{\"name\":\"%s\",\"host\":\"local\",\"memory_mib\":64,"
                           "\"disks\":[{\"size_mib\":8,\"pool\":\"%s\"}],"
                           "\"cdroms\":[{\"library_share\":\"%s\",\"file\":\"absent.iso\"}]}",
                           vm_c, pool, share);
    {
        g_autoptr(JsonObject) b = dv_test_json_object(body);
        g_clear_pointer(&job, json_object_unref);
        job = dv_engine_create(engine, DV_KIND_VM, b, DV_ACTOR_NAMED("tester"), &error);
        assert_refused(job, error, DV_ERROR_NOT_FOUND, "cdroms[0].file");
        g_clear_error(&error);
    }
    g_assert_cmpint(dv_test_engine_count(engine, &dv_table_vms), ==, vms_before);
    g_assert_cmpint(dv_test_engine_count(engine, &dv_table_volumes), ==, vols_before);
    g_assert_cmpint(dv_test_engine_count(engine, &dv_table_jobs), ==, jobs_before);
    {
        g_autofree char *vpath = g_strdup_printf("%s/%s-disk0.qcow2", dir, vm_c);
        g_assert_false(g_file_test(vpath, G_FILE_TEST_EXISTS));
    }

    /* A shut-off VM without a drive gets one; a running one is refused. */
    g_free(body);
    body = g_strdup_printf("{\"name\":\"%s\",\"host\":\"local\",\"memory_mib\":64}", vm_c);
    g_clear_pointer(&job, json_object_unref);
    job = dv_test_engine_create(engine, DV_KIND_VM, body, WAIT_MS);
    g_free(body);
    body = g_strdup_printf("{\"library_share\":\"%s\",\"file\":\"%s\"}", share, iso_name);
    g_clear_pointer(&job, json_object_unref);
    job = cdrom(engine, vm_c, body, &error);
    g_assert_no_error(error);
    g_clear_pointer(&done, json_object_unref);
    done = submit_ok(engine, job);
    g_assert_true(dv_json_get_bool(dv_json_get_object(done, "result"), "drive_added", FALSE));
    g_assert_cmpstr(dv_json_get_string(dv_json_get_object(done, "result"), "applied", ""), ==,
                    "next-boot");
    {
        g_autoptr(JsonObject) c = vm_get(engine, vm_c);
        g_autofree char *cx = domain_xml(vh, dv_json_get_string(c, "uuid", ""), TRUE);
        g_assert_nonnull(strstr(cx, iso));
        g_assert_nonnull(strstr(cx, "<readonly/>"));
    }

    g_clear_pointer(&engine, dv_engine_free);
}

static void
run_isolated(void)
{
    g_autofree char *prefix = NULL;

    if (g_test_subprocess()) {
        test_media();
        return;
    }
    if (!dv_test_system_check_daemon(the_virt))
        return;
    prefix = dv_test_system_prefix_new("dvmedia", getpid());
    dv_test_system_run_isolated(the_virt, prefix, 280);
}

int
main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    the_virt = dv_virt_new();
    g_test_add_func("/drover/engine/media/system/iso-boot-insert-eject", run_isolated);
    rc = g_test_run();
    dv_virt_free(the_virt);
    return rc;
}
