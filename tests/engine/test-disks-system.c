#define G_LOG_DOMAIN "DvTestDisksSystem"

/* Volumes and a VM's disks on the real daemon (qemu:///system, QEMU under
 * TCG) with the tiny guest's kernel and initramfs (issue 12, item 5):
 *
 *  - a running VM's disk grown through Drover and the guest sees the new
 *    size (its /sys/block/vda/size on the serial console), with the delay
 *    printed;
 *  - shrinking refused naming size, deleting the volume refused naming
 *    the VM, nothing changed;
 *  - a new disk added to the running VM appears in the guest, and is
 *    removed again from the definition;
 *  - the volume, no longer a disk, grown offline and deleted.
 *
 * The guest runs a watcher given on its kernel command line (init's
 * arguments after "--"): it loads the initramfs's modules, then prints
 * "DROVER-SIZES,vda=N,vdb=M" (512-byte sectors) whenever a virtio disk
 * appears or changes size, for up to 5 minutes. */

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

/* No double quotes inside: the kernel's command line quotes the script. */
#define GUEST_WATCHER                                                                              \
    "mkdir -p /proc /sys /dev; /bin/busybox --install -s /bin; export PATH=/bin; "                 \
    "mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev; "       \
    "exec </dev/console >/dev/console 2>&1; echo 1 >/proc/sys/kernel/printk; "                     \
    "while read -r m; do insmod /lib/modules/$m.ko; done </lib/modules/order; "                    \
    "last=; n=0; while [ $n -lt 1500 ]; do s=; for d in /sys/block/vd*; do "                       \
    "[ -e $d/size ] && s=$s,${d##*/}=$(cat $d/size); done; "                                       \
    "[ x$s != x$last ] && echo DROVER-SIZES$s; last=$s; n=$((n+1)); sleep 0.2; done; "             \
    "poweroff -f"

static DvVirt *the_virt;

static JsonObject *
volume_by_path(DvEngine *engine, const char *path)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonArray) rows = dv_core_list_all(engine, &dv_table_volumes, "path", path, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(json_array_get_length(rows), ==, 1);
    return json_object_ref(json_array_get_object_element(rows, 0));
}

static JsonObject *
resize(DvEngine *engine, const char *vol_id, gint64 size, GError **error)
{
    g_autofree char *json = g_strdup_printf("{\"size\":%" G_GINT64_FORMAT "}", size);
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    return dv_engine_volume_resize(engine, vol_id, body, DV_ACTOR_NAMED("tester"), error);
}

static void
test_disks_live(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *prefix = dv_test_system_prefix_new("dvdisk", getppid());
    g_autofree char *dir = dv_test_system_dir_new(prefix);
    g_autofree char *state = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), prefix);
    g_autofree char *name = g_strconcat(prefix, "vm", NULL);
    g_autofree char *pool = g_strconcat(prefix, "pool", NULL);
    g_autofree char *log = g_build_filename(dir, "serial.log", NULL);
    g_autofree char *kernel = dv_test_tiny_guest_copy(DV_TINY_GUEST_CACHE_DIR, dir, "vmlinuz");
    g_autofree char *initrd = dv_test_tiny_guest_copy(DV_TINY_GUEST_CACHE_DIR, dir, "initrd.img");
    g_autofree char *cmdline =
        g_strdup_printf("console=ttyS0 quiet rdinit=/bin/busybox -- sh -c \"%s\"", GUEST_WATCHER);
    g_autoptr(DvVirtHost) vh = dv_virt_host_get(the_virt, "disks-local", DV_TEST_SYSTEM_URI);
    g_autoptr(JsonObject) spec = json_object_new();
    g_autoptr(JsonObject) vol = NULL;
    g_autoptr(JsonObject) row = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(DvEngine) engine = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *uuid = NULL;
    g_autofree char *added_path = NULL;
    JsonArray *disks = json_array_new();
    JsonObject *disk = json_object_new();
    const char *vol_id;
    gint64 t0;
    double seen;

    /* A blank raw 16 MiB volume as the VM's only disk. */
    dv_test_system_pool_create(vh, pool, dir);
    vol = dv_virt_volume_create(vh, pool, "data.img", 16 * MIB, "raw", NULL, &error);
    g_assert_no_error(error);
    json_object_set_string_member(spec, "name", name);
    json_object_set_int_member(spec, "memory_mib", 128);
    json_object_set_string_member(spec, "serial_log", log);
    json_object_set_string_member(spec, "kernel", kernel);
    json_object_set_string_member(spec, "initrd", initrd);
    json_object_set_string_member(spec, "cmdline", cmdline);
    json_object_set_string_member(disk, "path", dv_json_get_string(vol, "path", ""));
    json_object_set_string_member(disk, "format", "raw");
    json_array_add_object_element(disks, disk);
    json_object_set_array_member(spec, "disks", disks);
    xml = dv_virt_domain_xml_new(spec, &error);
    g_assert_no_error(error);
    uuid = dv_virt_domain_define(vh, xml, NULL, &error);
    g_assert_no_error(error);

    engine = dv_test_engine_new(state, TRUE);
    g_assert_nonnull(engine);
    g_clear_pointer(&job, json_object_unref);
    job = dv_test_engine_create(engine, DV_KIND_HOST,
                                "{\"name\":\"local\",\"uri\":\"qemu:///system\"}", WAIT_MS);
    row = volume_by_path(engine, dv_json_get_string(vol, "path", ""));
    vol_id = dv_json_get_string(row, "id", "");

    g_clear_pointer(&job, json_object_unref);
    job = dv_engine_vm_action(engine, name, "start", DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    g_clear_pointer(&done, json_object_unref);
    done = dv_test_engine_run(engine, job, WAIT_MS);
    seen = dv_test_wait_log(log, "DROVER-SIZES,vda=32768", 120);
    g_printerr("# guest up, vda 16 MiB, %.1f s after the start job\n", seen);

    /* Shrinking and deleting are refused, nothing submitted. */
    g_assert_null(resize(engine, vol_id, 8 * MIB, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "size");
    g_test_message("shrink: %s", error->message);
    g_clear_error(&error);
    g_assert_null(dv_engine_volume_delete(engine, vol_id, DV_ACTOR_NAMED("tester"), &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_nonnull(strstr(error->message, name));
    g_test_message("delete: %s", error->message);
    g_clear_error(&error);

    /* Grown live: QEMU resizes the block device, the guest sees it. */
    t0 = g_get_monotonic_time();
    g_clear_pointer(&job, json_object_unref);
    job = resize(engine, vol_id, 32 * MIB, &error);
    g_assert_no_error(error);
    g_clear_pointer(&done, json_object_unref);
    done = dv_test_engine_run(engine, job, WAIT_MS);
    g_assert_true(dv_json_get_bool(dv_json_get_object(done, "result"), "live", FALSE));
    g_assert_cmpstr(dv_json_get_string(dv_json_get_object(done, "result"), "target", ""), ==,
                    "vda");
    dv_test_wait_log(log, "DROVER-SIZES,vda=65536", 60);
    g_printerr("# qemu:///system: volume grown 16 -> 32 MiB on a running VM; the guest's "
               "/sys/block/vda/size changed %.2f s after the request\n",
               (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC);
    g_clear_pointer(&row, json_object_unref);
    row = volume_by_path(engine, dv_json_get_string(vol, "path", ""));
    g_assert_cmpint(dv_json_get_int(row, "capacity", 0), ==, 32 * MIB);
    {
        g_autoptr(JsonObject) now =
            dv_virt_volume_lookup_by_path(vh, dv_json_get_string(vol, "path", ""), NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpint(dv_json_get_int(now, "capacity", 0), ==, 32 * MIB);
    }

    /* A new 8 MiB disk added live: the guest sees vdb. */
    {
        g_autofree char *json =
            g_strdup_printf("{\"size\":%" G_GINT64_FORMAT ",\"pool\":\"%s\"}", 8 * MIB, pool);
        g_autoptr(JsonObject) body = dv_test_json_object(json);
        t0 = g_get_monotonic_time();
        g_clear_pointer(&job, json_object_unref);
        job = dv_engine_vm_disk_add(engine, name, body, DV_ACTOR_NAMED("tester"), &error);
        g_assert_no_error(error);
        g_clear_pointer(&done, json_object_unref);
        done = dv_test_engine_run(engine, job, WAIT_MS);
    }
    g_assert_cmpstr(dv_json_get_string(dv_json_get_object(done, "result"), "applied", ""), ==,
                    "live");
    g_assert_cmpstr(dv_json_get_string(dv_json_get_object(done, "result"), "target", ""), ==,
                    "vdb");
    added_path = g_strdup(dv_json_get_string(dv_json_get_object(done, "result"), "path", ""));
    dv_test_wait_log(log, "vdb=16384", 60);
    g_printerr("# qemu:///system: disk added to a running VM, in the guest %.2f s after the "
               "request\n",
               (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC);
    {
        g_autoptr(JsonObject) vm = dv_engine_get(engine, DV_KIND_VM, name, &error);
        JsonArray *d;
        g_assert_no_error(error);
        d = dv_json_get_array(dv_json_get_object(vm, "spec"), "disks");
        g_assert_cmpuint(json_array_get_length(d), ==, 2);
    }

    /* Removed: gone from the definition (the next boot has no vdb). */
    g_clear_pointer(&job, json_object_unref);
    job = dv_engine_vm_disk_remove(engine, name, "vdb", DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    g_clear_pointer(&done, json_object_unref);
    done = dv_test_engine_run(engine, job, WAIT_MS);
    {
        g_autofree char *inactive = dv_virt_domain_get_xml(vh, uuid, TRUE, NULL, &error);
        g_assert_no_error(error);
        g_assert_null(strstr(inactive, "vdb"));
        g_assert_null(strstr(inactive, added_path));
    }

    /* Off: the added volume, a disk of nobody now, grown offline and
     * deleted. */
    g_clear_pointer(&job, json_object_unref);
    job = dv_engine_vm_action(engine, name, "stop", DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    g_clear_pointer(&done, json_object_unref);
    done = dv_test_engine_run(engine, job, WAIT_MS);
    {
        g_autoptr(JsonObject) added = volume_by_path(engine, added_path);
        const char *added_id = dv_json_get_string(added, "id", "");
        g_autoptr(JsonObject) now = NULL;
        g_clear_pointer(&job, json_object_unref);
        job = resize(engine, added_id, 12 * MIB, &error);
        g_assert_no_error(error);
        g_clear_pointer(&done, json_object_unref);
        done = dv_test_engine_run(engine, job, WAIT_MS);
        g_assert_false(dv_json_get_bool(dv_json_get_object(done, "result"), "live", TRUE));
        now = dv_virt_volume_lookup_by_path(vh, added_path, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpint(dv_json_get_int(now, "capacity", 0), ==, 12 * MIB);
        g_clear_pointer(&job, json_object_unref);
        job = dv_engine_volume_delete(engine, added_id, DV_ACTOR_NAMED("tester"), &error);
        g_assert_no_error(error);
        g_clear_pointer(&done, json_object_unref);
        done = dv_test_engine_run(engine, job, WAIT_MS);
        g_assert_false(g_file_test(added_path, G_FILE_TEST_EXISTS));
    }
    g_clear_pointer(&engine, dv_engine_free);
    g_assert_true(dv_virt_domain_delete(vh, uuid, TRUE, NULL, &error));
    g_assert_no_error(error);
}

static void
run_isolated(void)
{
    g_autofree char *prefix = NULL;
    static gboolean built;

    if (g_test_subprocess()) {
        test_disks_live();
        return;
    }
    if (!dv_test_system_check_daemon(the_virt))
        return;
    if (!built) {
        dv_test_tiny_guest_build(DV_BUILD_TINY_GUEST,
                                 dv_test_tiny_guest_dir(DV_TINY_GUEST_CACHE_DIR), NULL);
        built = TRUE;
    }
    prefix = dv_test_system_prefix_new("dvdisk", getpid());
    dv_test_system_run_isolated(the_virt, prefix, 280);
}

int
main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    the_virt = dv_virt_new();
    g_test_add_func("/drover/engine/disks/system/grow-add-remove-live", run_isolated);
    rc = g_test_run();
    dv_virt_free(the_virt);
    return rc;
}
