#define G_LOG_DOMAIN "DvTestNicsSystem"

/* A VM's network interfaces and its guest's addresses on the real daemon
 * (qemu:///system, QEMU under TCG) with the tiny guest's kernel and
 * initramfs (issue 12, items 4 and 9):
 *
 *  - a NAT network made by the test (a transient libvirt network with a
 *    DHCP range, on a free 10.252.N.0/24);
 *  - the guest's busybox udhcpc takes a lease from libvirt's dnsmasq and
 *    GET /vms/{ref} (dv_engine_vm_get) shows it as the NIC's address,
 *    source "lease", with the delay printed;
 *  - a second NIC hot-plugged into the running VM with a given MAC: the
 *    guest sees eth1; the same MAC again and an unknown network refused
 *    naming their field; the NIC removed, gone from the definition.
 *
 * The guest runs a script given on its kernel command line (init's
 * arguments after "--"): it loads the initramfs's modules, asks for a
 * lease on eth0 and prints "DROVER-DHCP rc=N", then prints
 * "DROVER-NETS,eth0,..." whenever its interfaces change. */

#include <glib/gstdio.h>
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
#define GUEST_DHCP                                                                                 \
    "mkdir -p /proc /sys /dev; /bin/busybox --install -s /bin; export PATH=/bin; "                 \
    "mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev; "       \
    "exec </dev/console >/dev/console 2>&1; echo 1 >/proc/sys/kernel/printk; "                     \
    "while read -r m; do insmod /lib/modules/$m.ko; done </lib/modules/order; "                    \
    "ip link set eth0 up; udhcpc -i eth0 -q -n -t 30 -T 2 -s /bin/true; echo DROVER-DHCP rc=$?; "  \
    "last=; n=0; while [ $n -lt 1500 ]; do s=; for d in /sys/class/net/eth*; do "                  \
    "[ -e $d ] && s=$s,${d##*/}; done; "                                                           \
    "[ x$s != x$last ] && echo DROVER-NETS$s; last=$s; n=$((n+1)); sleep 0.2; done; "              \
    "poweroff -f"

static DvVirt *the_virt;

static char *
net_name(const char *prefix)
{
    return g_strconcat(prefix, "net", NULL);
}

/* Makes the transient NAT network @name on the first free 10.252.N.0/24
 * (other engineers' networks share this daemon); returns N. */
static guint
network_create(const char *dir, const char *name)
{
    g_autofree char *file = g_build_filename(dir, "net.xml", NULL);
    guint start = (guint)getpid() % 200;

    for (guint k = 0; k < 40; k++) {
        guint n = 10 + (start + k * 7) % 240;
        g_autofree char *xml = g_strdup_printf(
            "<network><name>%s</name><forward mode='nat'/>"
            "<ip address='10.252.%u.1' netmask='255.255.255.0'><dhcp>"
            "<range start='10.252.%u.10' end='10.252.%u.100'/></dhcp></ip></network>",
            name, n, n, n);
        g_autofree char *cmd =
            g_strdup_printf("virsh -q -c %s net-create %s", DV_TEST_SYSTEM_URI, file);
        g_autofree char *err = NULL;
        gint status = -1;
        g_autoptr(GError) error = NULL;
        g_assert_true(g_file_set_contents(file, xml, -1, &error));
        g_assert_true(g_spawn_command_line_sync(cmd, NULL, &err, &status, &error));
        if (g_spawn_check_wait_status(status, NULL))
            return n;
        g_test_message("10.252.%u.0/24 not free: %s", n, err);
    }
    g_error("no free 10.252.N.0/24 for the test network");
}

static void
network_destroy(const char *name)
{
    g_autofree char *cmd =
        g_strdup_printf("virsh -q -c %s net-destroy %s", DV_TEST_SYSTEM_URI, name);
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    /* Absent (a run that never made it) is fine: nothing to remove. */
    (void)g_spawn_command_line_sync(cmd, &out, &err, NULL, NULL);
}

static JsonObject *
run_ok(DvEngine *engine, JsonObject *job)
{
    return dv_test_engine_run(engine, job, WAIT_MS);
}

static JsonArray *
vm_nics(JsonObject *vm)
{
    return dv_json_get_array(dv_json_get_object(vm, "spec"), "networks");
}

static void
test_nics_live(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *prefix = dv_test_system_prefix_new("dvnic", getppid());
    g_autofree char *dir = dv_test_system_dir_new(prefix);
    g_autofree char *state = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), prefix);
    g_autofree char *name = g_strconcat(prefix, "vm", NULL);
    g_autofree char *pool = g_strconcat(prefix, "pool", NULL);
    g_autofree char *net = net_name(prefix);
    g_autofree char *log = g_build_filename(dir, "serial.log", NULL);
    g_autofree char *kernel = dv_test_tiny_guest_copy(DV_TINY_GUEST_CACHE_DIR, dir, "vmlinuz");
    g_autofree char *initrd = dv_test_tiny_guest_copy(DV_TINY_GUEST_CACHE_DIR, dir, "initrd.img");
    g_autofree char *cmdline =
        g_strdup_printf("console=ttyS0 quiet rdinit=/bin/busybox -- sh -c \"%s\"", GUEST_DHCP);
    g_autofree char *subnet = NULL;
    g_autofree char *mac2 = NULL;
    g_autoptr(DvVirtHost) vh = dv_virt_host_get(the_virt, "nics-local", DV_TEST_SYSTEM_URI);
    g_autoptr(JsonObject) spec = json_object_new();
    g_autoptr(JsonObject) vol = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(DvEngine) engine = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *uuid = NULL;
    JsonArray *disks = json_array_new();
    JsonObject *disk = json_object_new();
    JsonArray *nets = json_array_new();
    JsonObject *nic = json_object_new();
    const char *ip = NULL;
    guint n;
    gint64 t0;
    double dhcp;

    n = network_create(dir, net);
    subnet = g_strdup_printf("10.252.%u.", n);
    dv_test_system_pool_create(vh, pool, dir);
    vol = dv_virt_volume_create(vh, pool, "data.img", 8 * MIB, "raw", NULL, &error);
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
    json_object_set_string_member(nic, "network", net);
    json_array_add_object_element(nets, nic);
    json_object_set_array_member(spec, "networks", nets);
    xml = dv_virt_domain_xml_new(spec, &error);
    g_assert_no_error(error);
    uuid = dv_virt_domain_define(vh, xml, NULL, &error);
    g_assert_no_error(error);

    engine = dv_test_engine_new(state, TRUE);
    g_assert_nonnull(engine);
    job = dv_test_engine_create(engine, DV_KIND_HOST,
                                "{\"name\":\"local\",\"uri\":\"qemu:///system\"}", WAIT_MS);

    /* Off: the NIC listed, no addresses. */
    {
        g_autoptr(JsonObject) vm = dv_engine_vm_get(engine, name, DV_ACTOR_NAMED("tester"), &error);
        JsonObject *first;
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(vm_nics(vm)), ==, 1);
        first = json_array_get_object_element(vm_nics(vm), 0);
        g_assert_cmpstr(dv_json_get_string(first, "network", ""), ==, net);
        g_assert_cmpstr(dv_json_get_string(first, "model", ""), ==, "virtio");
        g_assert_cmpuint(json_array_get_length(dv_json_get_array(first, "addresses")), ==, 0);
    }

    g_clear_pointer(&job, json_object_unref);
    job = dv_engine_vm_action(engine, name, "start", DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    done = run_ok(engine, job);
    t0 = g_get_monotonic_time();
    dv_test_wait_log(log, "DROVER-DHCP rc=", 180);
    dhcp = (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC;
    dv_test_wait_log(log, "DROVER-DHCP rc=0", 1);

    /* The lease, through GET: poll (the lease file is written as the ACK
     * goes out). */
    for (guint tries = 0; ip == NULL; tries++) {
        g_autoptr(JsonObject) vm = NULL;
        JsonArray *addrs;
        gint64 g0 = g_get_monotonic_time();
        vm = dv_engine_vm_get(engine, name, DV_ACTOR_NAMED("tester"), &error);
        g_assert_no_error(error);
        g_assert_cmpint(g_get_monotonic_time() - g0, <, 3 * G_USEC_PER_SEC);
        addrs = dv_json_get_array(json_array_get_object_element(vm_nics(vm), 0), "addresses");
        if (addrs != NULL && json_array_get_length(addrs) > 0) {
            JsonObject *a = json_array_get_object_element(addrs, 0);
            g_assert_cmpstr(dv_json_get_string(a, "source", ""), ==, "lease");
            g_assert_cmpstr(dv_json_get_string(a, "family", ""), ==, "ipv4");
            g_assert_cmpint(dv_json_get_int(a, "prefix", 0), ==, 24);
            g_assert_true(g_str_has_prefix(dv_json_get_string(a, "ip", ""), subnet));
            ip = g_intern_string(dv_json_get_string(a, "ip", ""));
            g_printerr("# qemu:///system: the guest's lease %s/24 shown by GET /vms/{ref} %.2f s "
                       "after the start job (udhcpc done after %.2f s), GET took %.3f s\n",
                       ip, (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC, dhcp,
                       (g_get_monotonic_time() - g0) / (double)G_USEC_PER_SEC);
        } else {
            g_assert_cmpuint(tries, <, 100);
            g_usleep(100000);
        }
    }

    /* Refused: an unknown network, the VM's own MAC again. */
    {
        g_autoptr(JsonObject) body = dv_test_json_object("{\"network\":\"nonet-dvnic\"}");
        g_autoptr(JsonObject) vm = dv_engine_get(engine, DV_KIND_VM, name, &error);
        g_autofree char *json = NULL;
        g_autoptr(JsonObject) again = NULL;
        g_assert_no_error(error);
        g_assert_null(dv_engine_vm_nic_add(engine, name, body, DV_ACTOR_NAMED("tester"), &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
        g_assert_cmpstr(dv_error_get_field(error), ==, "network");
        g_clear_error(&error);
        json = g_strdup_printf(
            "{\"network\":\"%s\",\"mac\":\"%s\"}", net,
            dv_json_get_string(json_array_get_object_element(vm_nics(vm), 0), "mac", ""));
        again = dv_test_json_object(json);
        g_assert_null(dv_engine_vm_nic_add(engine, name, again, DV_ACTOR_NAMED("tester"), &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
        g_assert_cmpstr(dv_error_get_field(error), ==, "mac");
        g_clear_error(&error);
    }

    /* Hot-plugged: a second NIC with a given MAC (virtio: the guest has
     * no other driver); the guest sees eth1. */
    mac2 = g_strdup_printf("52:54:00:%02x:%02x:%02x", g_random_int_range(0, 256),
                           g_random_int_range(0, 256), g_random_int_range(0, 256));
    {
        g_autofree char *json =
            g_strdup_printf("{\"network\":\"%s\",\"mac\":\"%s\",\"model\":\"virtio\"}", net, mac2);
        g_autoptr(JsonObject) body = dv_test_json_object(json);
        t0 = g_get_monotonic_time();
        g_clear_pointer(&job, json_object_unref);
        job = dv_engine_vm_nic_add(engine, name, body, DV_ACTOR_NAMED("tester"), &error);
        g_assert_no_error(error);
        g_clear_pointer(&done, json_object_unref);
        done = run_ok(engine, job);
    }
    g_assert_cmpstr(dv_json_get_string(dv_json_get_object(done, "result"), "applied", ""), ==,
                    "live");
    g_assert_cmpstr(dv_json_get_string(dv_json_get_object(done, "result"), "mac", ""), ==, mac2);
    dv_test_wait_log(log, "DROVER-NETS,eth0,eth1", 60);
    g_printerr("# qemu:///system: NIC hot-plugged into a running VM, eth1 in the guest %.2f s "
               "after the request\n",
               (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC);
    {
        g_autoptr(JsonObject) vm = dv_engine_vm_get(engine, name, DV_ACTOR_NAMED("tester"), &error);
        JsonObject *second;
        g_autofree char *inactive = dv_virt_domain_get_xml(vh, uuid, TRUE, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(vm_nics(vm)), ==, 2);
        second = json_array_get_object_element(vm_nics(vm), 1);
        g_assert_cmpstr(dv_json_get_string(second, "mac", ""), ==, mac2);
        g_assert_cmpstr(dv_json_get_string(second, "model", ""), ==, "virtio");
        g_assert_nonnull(strstr(inactive, mac2)); /* persistent too */
    }

    /* Removed: gone from both definitions (the guest completes the live
     * unplug by itself). */
    g_clear_pointer(&job, json_object_unref);
    job = dv_engine_vm_nic_remove(engine, name, mac2, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    g_clear_pointer(&done, json_object_unref);
    done = run_ok(engine, job);
    {
        g_autofree char *inactive = dv_virt_domain_get_xml(vh, uuid, TRUE, NULL, &error);
        g_assert_no_error(error);
        g_assert_null(strstr(inactive, mac2));
    }

    g_clear_pointer(&engine, dv_engine_free);
    g_assert_true(dv_virt_domain_delete(vh, uuid, TRUE, NULL, &error));
    g_assert_no_error(error);
}

static void
run_isolated(void)
{
    g_autofree char *prefix = NULL;
    g_autofree char *net = NULL;
    static gboolean built;

    if (g_test_subprocess()) {
        test_nics_live();
        return;
    }
    if (!dv_test_system_check_daemon(the_virt))
        return;
    if (!built) {
        dv_test_tiny_guest_build(DV_BUILD_TINY_GUEST,
                                 dv_test_tiny_guest_dir(DV_TINY_GUEST_CACHE_DIR), NULL);
        built = TRUE;
    }
    prefix = dv_test_system_prefix_new("dvnic", getpid());
    net = net_name(prefix);
    /* dv_test_system_run_isolated() with the network removed too, before
     * the verdict. */
    {
        g_autofree char *dir = dv_test_system_dir_new(prefix);
        g_autofree char *state_dir = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), prefix);
        network_destroy(net);
        dv_test_system_cleanup(the_virt, prefix, dir);
        dv_test_system_remove_tree(state_dir);
        g_assert_cmpint(g_mkdir(dir, 0755), ==, 0);
        g_chmod(dir, 0755);
        g_test_trap_subprocess(NULL, 280 * G_USEC_PER_SEC,
                               G_TEST_SUBPROCESS_INHERIT_STDOUT | G_TEST_SUBPROCESS_INHERIT_STDERR);
        dv_test_system_cleanup(the_virt, prefix, dir);
        dv_test_system_remove_tree(state_dir);
        network_destroy(net);
        g_test_trap_assert_passed();
    }
}

int
main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    the_virt = dv_virt_new();
    g_test_add_func("/drover/engine/nics/system/lease-hotplug-remove", run_isolated);
    rc = g_test_run();
    dv_virt_free(the_virt);
    return rc;
}
