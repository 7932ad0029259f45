#define G_LOG_DOMAIN "DvTestHostEvents"

/* Host events against the real daemon (qemu:///system, QEMU under TCG):
 * a VM started through Drover and destroyed with virsh shows shut off in
 * the VM's object (what GET /vms/{id} returns) within 2 s, without a
 * refresh.  Prints the delay from virsh's return to the database. */

#include <unistd.h>

#include "dv-engine.h"
#include "dv-hosts.h"
#include "dv-test-catalog.h"
#include "dv-test-system.h"
#include "dv-test-util.h"

#define WAIT_MS 120000

static DvVirt *the_virt;

static void
test_destroy_with_virsh(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *prefix = dv_test_system_prefix_new("dvevt", getppid());
    g_autofree char *state = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), prefix);
    g_autofree char *name = g_strconcat(prefix, "vm", NULL);
    g_autofree char *xml = NULL;
    g_autofree char *uuid = NULL;
    g_autoptr(DvEngine) engine = NULL;
    g_autoptr(JsonObject) spec = json_object_new();
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(DvVirtHost) vh = dv_virt_host_get(the_virt, "events-local", DV_TEST_SYSTEM_URI);
    const char *virsh_destroy[] = { "destroy", NULL, NULL };
    gint64 start, took = -1;

    /* A diskless 32 MiB TCG domain: QEMU runs, no guest is needed to see
     * its power state change. */
    json_object_set_string_member(spec, "name", name);
    json_object_set_int_member(spec, "memory_mib", 32);
    xml = dv_virt_domain_xml_new(spec, &error);
    g_assert_no_error(error);
    uuid = dv_virt_domain_define(vh, xml, NULL, &error);
    g_assert_no_error(error);

    engine = dv_test_engine_new(state, TRUE);
    g_assert_nonnull(engine);
    {
        g_autoptr(JsonObject) h = dv_test_engine_create(
            engine, DV_KIND_HOST, "{\"name\":\"local\",\"uri\":\"qemu:///system\"}", WAIT_MS);
    }
    g_assert_true(dv_engine_hosts_watch_start(engine, 600000, 0, &error));
    g_assert_no_error(error);

    job = dv_engine_vm_action(engine, name, "start", DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    done = dv_test_engine_run(engine, job, WAIT_MS);
    {
        g_autoptr(JsonObject) vm = dv_engine_get(engine, DV_KIND_VM, name, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(dv_json_get_string(vm, "state", ""), ==, "running");
    }
    /* Let the watch connection settle (it opened in the background). */
    for (guint i = 0; i < 500; i++) {
        g_autoptr(JsonObject) st = dv_engine_hosts_watch_get_stats(engine);
        if (dv_json_get_int(st, "connected", 0) == 1)
            break;
        g_usleep(10000);
    }

    virsh_destroy[1] = name;
    g_free(dv_test_virsh(virsh_destroy));
    start = g_get_monotonic_time();
    while (g_get_monotonic_time() - start < 5 * G_USEC_PER_SEC) {
        g_autoptr(JsonObject) vm = dv_engine_get(engine, DV_KIND_VM, name, &error);
        g_assert_no_error(error);
        if (g_strcmp0(dv_json_get_string(vm, "state", ""), "shutoff") == 0) {
            took = g_get_monotonic_time() - start;
            break;
        }
        g_usleep(2000);
    }
    {
        g_autoptr(JsonObject) st = dv_engine_hosts_watch_get_stats(engine);
        g_printerr("# qemu:///system: virsh destroy -> VM shut off in the database: %.1f ms "
                   "after virsh returned; event received -> row committed %.1f ms\n",
                   took / 1000.0, dv_json_get_int(st, "last_delay_us", 0) / 1000.0);
    }
    g_assert_cmpint(took, >=, 0);
    g_assert_cmpint(took, <, 2 * G_USEC_PER_SEC);
    g_clear_pointer(&engine, dv_engine_free);
    g_assert_true(dv_virt_domain_undefine(vh, uuid, NULL, &error));
}

static void
run_isolated(void)
{
    g_autofree char *prefix = NULL;

    if (g_test_subprocess()) {
        test_destroy_with_virsh();
        return;
    }
    if (!dv_test_system_check_daemon(the_virt))
        return;
    prefix = dv_test_system_prefix_new("dvevt", getpid());
    dv_test_system_run_isolated(the_virt, prefix, 240);
}

int
main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    the_virt = dv_virt_new();
    g_test_add_func("/drover/host-events/system/destroy-with-virsh", run_isolated);
    rc = g_test_run();
    dv_virt_free(the_virt);
    return rc;
}
