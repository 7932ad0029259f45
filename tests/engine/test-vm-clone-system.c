#define G_LOG_DOMAIN "DvTestVmCloneSystem"

/* Clone, system tier (issue 12, item 6): the engine in process against
 * the real local libvirtd (qemu:///system) and the tiny guest
 * (docs/TINY-GUEST.md).
 *
 * A source VM booting the tiny guest from a copy of its master, with a
 * NIC on a transient isolated network, is imported with its host, cloned
 * full and linked; the source and both clones boot, and each reports on
 * its serial console its SMBIOS UUID and MAC address: the clones' are
 * their own, and they read the source's image.  A clone named like an
 * existing VM is refused.  A running VM is cloned: its disk frozen while
 * copied and merged back, it keeps running on its own file.  The full clone's time is printed
 * beside `virsh vol-clone` of the same disk in the same run (virt-clone is not installed here).
 *
 * The case runs in a child process; everything it makes is named
 * dvcln<pid>-... and the parent removes it afterwards (domains, the pool
 * with its volumes, the network, the temp dirs), pass or fail. */

#include "dv-test-catalog.h"
#include "dv-test-system.h"
#include "dv-test-util.h"

#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-vms.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define SYSTEM_URI "qemu:///system"
#define JOB_WAIT_MS (240 * 1000)
#define BOOT_TIMEOUT_S 120
#define DATA_MIB 512
#define ROUNDS 3

static DvVirt *the_virt;

static const char *
guest_dir(void)
{
    return dv_test_tiny_guest_dir(DV_TINY_GUEST_CACHE_DIR);
}

static char *
prefix_new(pid_t pid)
{
    return g_strdup_printf("dvcln%05d-", (int)(pid % 100000));
}

/* The value of the console line "DROVER-GUEST: <key> <value>" (owned),
 * or NULL. */
static char *
console_value(const char *log, const char *key)
{
    g_autofree char *want = g_strdup_printf("DROVER-GUEST: %s ", key);
    const char *p = strstr(log, want);
    const char *end;

    if (p == NULL)
        return NULL;
    p += strlen(want);
    end = strpbrk(p, "\r\n");
    return g_ascii_strdown(p, end != NULL ? end - p : (gssize)strlen(p));
}

/* Waits for "DROVER-GUEST: done" in @path; returns the log (owned). */
static char *
wait_console(const char *path, const char *vm)
{
    gint64 deadline = g_get_monotonic_time() + BOOT_TIMEOUT_S * G_USEC_PER_SEC;
    char *log = NULL;

    for (;;) {
        g_clear_pointer(&log, g_free);
        g_file_get_contents(path, &log, NULL, NULL);
        if (log != NULL && strstr(log, "DROVER-GUEST: done") != NULL)
            return log;
        if (g_get_monotonic_time() > deadline)
            g_error("no \"done\" on %s's console within %d s:\n%s", vm, BOOT_TIMEOUT_S,
                    log != NULL ? log : "(no log)");
        g_usleep(200 * 1000);
    }
}

static double
median3(const double *v)
{
    double a = v[0], b = v[1], c = v[2];
    if ((a <= b && b <= c) || (c <= b && b <= a))
        return b;
    if ((b <= a && a <= c) || (c <= a && a <= b))
        return a;
    return c;
}

static JsonObject *
clone_vm(DvEngine *engine, const char *src, const char *json, double *ret_s)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    gint64 t0 = g_get_monotonic_time();
    g_autoptr(JsonObject) job =
        dv_engine_vm_clone(engine, src, body, DV_ACTOR_NAMED("tester"), &error);
    JsonObject *done;

    g_assert_no_error(error);
    done = dv_test_engine_run(engine, job, JOB_WAIT_MS);
    *ret_s = (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC;
    return done;
}

static void
start_vm(DvEngine *engine, const char *vm)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job =
        dv_engine_vm_action(engine, vm, "start", DV_ACTOR_NAMED("tester"), &error);
    g_autoptr(JsonObject) done = NULL;
    g_assert_no_error(error);
    done = dv_test_engine_run(engine, job, 120000);
}

static char *
vm_uuid(DvEngine *engine, const char *vm)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) row = dv_engine_get(engine, DV_KIND_VM, vm, &error);
    g_assert_no_error(error);
    return g_ascii_strdown(dv_json_get_string(row, "uuid", ""), -1);
}

static void
test_clone_and_boot(void)
{
    g_autofree char *prefix = prefix_new(getppid());
    g_autofree char *dir = dv_test_system_dir_new(prefix);
    g_autofree char *pool = g_strdup_printf("%spool", prefix);
    g_autofree char *net = g_strdup_printf("%snet", prefix);
    g_autofree char *src = g_strdup_printf("%ssrc", prefix);
    g_autofree char *full = g_strdup_printf("%sfull", prefix);
    g_autofree char *linked = g_strdup_printf("%slinked", prefix);
    g_autofree char *kernel = g_build_filename(dir, "vmlinuz", NULL);
    g_autofree char *initrd = g_build_filename(dir, "initrd.img", NULL);
    g_autofree char *src_disk = g_strdup_printf("%s/%ssrc.qcow2", dir, prefix);
    g_autofree char *src_log = g_strdup_printf("%s/%ssrc-console.log", dir, prefix);
    g_autofree char *data_disk = g_strdup_printf("%s/%sdata.img", dir, prefix);
    g_autofree char *net_xml = g_strdup_printf("%s/net.xml", dir);
    g_autofree char *state_dir = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), prefix);
    g_autofree char *from = NULL;
    g_autofree char *body = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(DvVirtHost) vh = dv_virt_host_get(the_virt, "local-test", SYSTEM_URI);
    g_autoptr(DvEngine) engine = NULL;
    g_autoptr(JsonObject) done = NULL;
    const char *vms[3];
    g_autofree char *logs[3] = { NULL };
    double full_s = 0, linked_s = 0, virsh_s;

    dv_test_copy_file(from = g_build_filename(guest_dir(), "vmlinuz", NULL), kernel);
    g_free(from);
    dv_test_copy_file(from = g_build_filename(guest_dir(), "initrd.img", NULL), initrd);
    g_free(from);
    dv_test_copy_file(from = g_build_filename(guest_dir(), "master.qcow2", NULL), src_disk);
    /* A second disk of DATA_MIB random (incompressible) bytes makes the
     * copy time measurable. */
    {
        g_autofree char *of = g_strdup_printf("of=%s", data_disk);
        g_autofree char *count = g_strdup_printf("count=%d", DATA_MIB);
        const char *const argv[] = { "dd",  "if=/dev/urandom", of,  "bs=1M",
                                     count, "status=none",     NULL };
        gint status = 0;
        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                                   NULL, &status, &error));
        g_assert_true(g_spawn_check_wait_status(status, NULL));
        g_assert_cmpint(g_chmod(data_disk, 0644), ==, 0);
    }
    dv_test_system_pool_create(vh, pool, dir);
    {
        g_autofree char *xml = g_strdup_printf("<network><name>%s</name></network>", net);
        const char *const args[] = { "net-create", net_xml, NULL };
        g_autofree char *out = NULL;
        g_assert_true(g_file_set_contents(net_xml, xml, -1, NULL));
        out = dv_test_virsh(args);
    }
    /* The source: defined on the host before Drover knows it. */
    {
        g_autoptr(JsonObject) spec = NULL;
        g_autofree char *xml = NULL;
        g_autofree char *uuid = NULL;
        g_autofree char *json = g_strdup_printf(
            "{\"name\":\"%s\",\"domain_type\":\"qemu\",\"memory_mib\":128,\"kernel\":\"%s\","
            "\"initrd\":\"%s\",\"cmdline\":\"console=ttyS0 quiet\",\"serial_log\":\"%s\","
            "\"disks\":[{\"path\":\"%s\",\"format\":\"qcow2\"},{\"path\":\"%s\",\"format\":\"raw\"}"
            "],"
            "\"networks\":[{\"network\":\"%s\"}]}",
            src, kernel, initrd, src_log, src_disk, data_disk, net);
        spec = dv_test_json_object(json);
        xml = dv_virt_domain_xml_new(spec, &error);
        g_assert_no_error(error);
        uuid = dv_virt_domain_define(vh, xml, NULL, &error);
        g_assert_no_error(error);
    }
    engine = dv_test_engine_new(state_dir, FALSE);
    done = dv_test_engine_create(engine, DV_KIND_HOST,
                                 "{\"name\":\"local\",\"uri\":\"" SYSTEM_URI "\"}", 120000);

    /* A clone named like a VM of the host: 409 naming name. */
    {
        g_autofree char *json = g_strdup_printf("{\"name\":\"%s\"}", src);
        g_autoptr(JsonObject) b = dv_test_json_object(json);
        g_autoptr(JsonObject) job =
            dv_engine_vm_clone(engine, src, b, DV_ACTOR_NAMED("tester"), &error);
        g_assert_null(job);
        g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
        g_assert_cmpstr(dv_error_get_field(error), ==, "name");
        g_clear_error(&error);
    }

    g_free(body);
    body = g_strdup_printf("{\"name\":\"%s\"}", full);
    g_clear_pointer(&done, json_object_unref);
    done = clone_vm(engine, src, body, &full_s);
    g_free(body);
    body = g_strdup_printf("{\"name\":\"%s\",\"linked\":true,\"pool\":\"%s\"}", linked, pool);
    g_clear_pointer(&done, json_object_unref);
    done = clone_vm(engine, src, body, &linked_s);
    /* The same copies by hand, in the same run: virsh vol-clone of each
     * disk (virt-clone is not installed here), alternating with more
     * Drover clones so neither side always meets a warm cache; medians
     * of ROUNDS. */
    {
        static const char *const names[] = { "src.qcow2", "data.img" };
        double drover[ROUNDS];
        double by_hand[ROUNDS];
        drover[0] = full_s;
        for (guint k = 0; k < ROUNDS; k++) {
            gint64 t0 = g_get_monotonic_time();
            for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
                g_autofree char *from_vol = g_strdup_printf("%s%s", prefix, names[i]);
                g_autofree char *to_vol = g_strdup_printf("%svc%u-%s", prefix, k, names[i]);
                const char *const args[] = { "vol-clone", "--pool", pool, from_vol, to_vol, NULL };
                g_autofree char *out = dv_test_virsh(args);
            }
            by_hand[k] = (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC;
            if (k + 1 < ROUNDS) {
                g_autofree char *json = g_strdup_printf("{\"name\":\"%sfull%u\"}", prefix, k + 1);
                g_autoptr(JsonObject) again = clone_vm(engine, src, json, &drover[k + 1]);
            }
        }
        full_s = median3(drover);
        virsh_s = median3(by_hand);
        g_printerr("# drover full: %.2f %.2f %.2f s; virsh vol-clone: %.2f %.2f %.2f s\n",
                   drover[0], drover[1], drover[2], by_hand[0], by_hand[1], by_hand[2]);
    }
    g_printerr("# clone of a VM with a 16 MiB qcow2 and a %d MiB raw disk (medians of %d): "
               "drover full %.2f s, virsh vol-clone of the same disks %.2f s (full/virsh %.2f); "
               "drover linked %.2f s (once)\n",
               DATA_MIB, ROUNDS, full_s, virsh_s, full_s / virsh_s, linked_s);

    /* A running source: a VM of Drover's with a blank disk runs SeaBIOS
     * with no OS and keeps running.  Its disk is frozen while copied and
     * merged back: it runs on its own file again, no layer is left. */
    {
        g_autofree char *run = g_strdup_printf("%srun", prefix);
        g_autofree char *runc = g_strdup_printf("%sruncl", prefix);
        g_autofree char *json =
            g_strdup_printf("{\"name\":\"%s\",\"host\":\"local\",\"memory_mib\":64,\"start\":true,"
                            "\"disks\":[{\"size_mib\":16,\"pool\":\"%s\"}]}",
                            run, pool);
        g_autofree char *run_disk = g_strdup_printf("%s/%s-disk0.qcow2", dir, run);
        g_autofree char *layer = g_strdup_printf("%s-drover-clone.qcow2", run_disk);
        g_autoptr(JsonObject) made = dv_test_engine_create(engine, DV_KIND_VM, json, 120000);
        g_autoptr(JsonObject) cl = NULL;
        g_autoptr(JsonObject) dom = NULL;
        g_autofree char *run_uuid = vm_uuid(engine, run);
        g_autofree char *xml = NULL;
        g_autofree char *inactive = NULL;
        double run_s = 0;

        g_free(json);
        json = g_strdup_printf("{\"name\":\"%s\"}", runc);
        cl = clone_vm(engine, run, json, &run_s);
        g_printerr("# clone of a running VM (16 MiB disk): %.2f s\n", run_s);
        dom = dv_virt_domain_get(vh, run_uuid, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(dv_json_get_string(dom, "state", ""), ==, "running");
        xml = dv_virt_domain_get_xml(vh, run_uuid, FALSE, NULL, &error);
        g_assert_no_error(error);
        inactive = dv_virt_domain_get_xml(vh, run_uuid, TRUE, NULL, &error);
        g_assert_no_error(error);
        g_assert_null(strstr(xml, "drover-clone"));
        g_assert_null(strstr(inactive, "drover-clone"));
        g_assert_nonnull(strstr(xml, run_disk));
        g_assert_false(g_file_test(layer, G_FILE_TEST_EXISTS));
        {
            g_autofree char *cl_disk = g_strdup_printf("%s/%s-vda.qcow2", dir, runc);
            g_assert_true(g_file_test(cl_disk, G_FILE_TEST_IS_REGULAR));
        }
    }

    /* Boot all three; each reports its identity. */
    vms[0] = src;
    vms[1] = full;
    vms[2] = linked;
    for (guint i = 0; i < 3; i++)
        start_vm(engine, vms[i]);
    for (guint i = 0; i < 3; i++) {
        g_autofree char *path = g_strdup_printf("%s/%s-console.log", dir, vms[i]);
        logs[i] = wait_console(i == 0 ? src_log : path, vms[i]);
        g_printerr("# console of %s:\n%s\n", vms[i], logs[i]);
        g_assert_nonnull(strstr(logs[i], "DROVER-GUEST: image-version v1"));
    }
    {
        g_autofree char *u0 = console_value(logs[0], "uuid");
        g_autofree char *m0 = console_value(logs[0], "mac eth0");
        g_assert_nonnull(u0);
        g_assert_nonnull(m0);
        for (guint i = 0; i < 3; i++) {
            g_autofree char *u = console_value(logs[i], "uuid");
            g_autofree char *m = console_value(logs[i], "mac eth0");
            g_autofree char *row_uuid = vm_uuid(engine, vms[i]);
            g_assert_cmpstr(u, ==, row_uuid);
            g_assert_nonnull(m);
            if (i > 0) {
                g_assert_cmpstr(u, !=, u0);
                g_assert_cmpstr(m, !=, m0);
            }
        }
        /* The two clones differ from each other too. */
        {
            g_autofree char *m1 = console_value(logs[1], "mac eth0");
            g_autofree char *m2 = console_value(logs[2], "mac eth0");
            g_assert_cmpstr(m1, !=, m2);
        }
    }
    g_clear_pointer(&engine, dv_engine_free);
    dv_test_system_remove_tree(state_dir);
}

static void
run_isolated(void)
{
    g_autofree char *prefix = NULL;

    if (g_test_subprocess()) {
        test_clone_and_boot();
        return;
    }
    if (!dv_test_system_check_daemon(the_virt))
        return;
    dv_test_tiny_guest_build(DV_BUILD_TINY_GUEST, guest_dir(), NULL);
    prefix = prefix_new(getpid());
    dv_test_system_run_isolated(the_virt, prefix, 480);
    /* The transient network goes after its domains. */
    {
        g_autofree char *net = g_strdup_printf("%snet", prefix);
        const char *const argv[] = { "virsh", "-q", "-c", SYSTEM_URI, "net-destroy", net, NULL };
        /* Already gone when the child finished: fine. */
        (void)g_spawn_sync(NULL, (char **)argv, NULL,
                           G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL |
                               G_SPAWN_STDERR_TO_DEV_NULL,
                           NULL, NULL, NULL, NULL, NULL, NULL);
    }
}

int
main(int argc, char **argv)
{
    int rc;
    g_test_init(&argc, &argv, NULL);
    the_virt = dv_virt_new();
    g_test_add_func("/drover/engine/vm-clone/system/clone-and-boot", run_isolated);
    rc = g_test_run();
    dv_virt_free(the_virt);
    return rc;
}
