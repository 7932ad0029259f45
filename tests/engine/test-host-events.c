#define G_LOG_DOMAIN "DvTestHostEvents"

/* Host events (docs/VIRT.md, "Events"): a change made on a host outside
 * Drover reaches the database without a refresh.  Engine tier: libvirt's
 * test:/// driver (it emits lifecycle events like a real daemon), each
 * case on SQLite and on PostgreSQL.  The real daemon's case is in
 * tests/virt/test-host-events-system.c. */

#include "dv-engine.h"
#include "dv-hosts.h"
#include "dv-test-catalog.h"
#include "dv-test-util.h"

#define WAIT_MS 60000
#define EVENT_TARGET_US (2 * G_USEC_PER_SEC)

/* Polls VM @name's row until its state is @state; returns how long it took
 * (µs) or fails the test after 5 s. */
static gint64
wait_vm_state(DvEngine *engine, const char *name, const char *state)
{
    gint64 start = g_get_monotonic_time();

    for (;;) {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) vm = dv_store_find(dv_engine_get_store(engine), &dv_table_vms,
                                                 "name", name, &error);
        gint64 took = g_get_monotonic_time() - start;
        if (vm != NULL && g_strcmp0(dv_json_get_string(vm, "state", ""), state) == 0)
            return took;
        if (took > 5 * G_USEC_PER_SEC)
            g_error("VM %s is '%s' after 5 s, expected '%s'", name,
                    vm != NULL ? dv_json_get_string(vm, "state", "") : "(no row)", state);
        g_usleep(5000);
    }
}

static const char *
vm_uuid(DvEngine *engine, const char *name)
{
    g_autoptr(GError) error = NULL;
    JsonObject *vm = dv_store_find(dv_engine_get_store(engine), &dv_table_vms, "name", name, &error);
    const char *uuid;
    g_assert_no_error(error);
    uuid = g_intern_string(dv_json_get_string(vm, "uuid", ""));
    json_object_unref(vm);
    return uuid;
}

static void
test_domain_events(gconstpointer data)
{
    DvTestBackend backend = GPOINTER_TO_INT(data);
    g_autofree char *tmpdir = NULL;
    g_autofree char *pgdb = NULL;
    g_autoptr(GError) error = NULL;
    DvEngine *engine = dv_test_engine_on_backend("dv-host-events", backend, 4, &tmpdir, &pgdb);
    g_autofree char *host_id = NULL;
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(JsonObject) spec = NULL;
    g_autoptr(JsonObject) stats = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *outside = NULL;
    const char *m0;
    gint64 took_start, took_stop, took_define;

    if (engine == NULL)
        return;
    host_id = dv_test_catalog_add_host(engine, tmpdir, WAIT_MS);
    /* A long resync: what follows must come from events alone. */
    g_assert_true(dv_engine_hosts_watch_start(engine, 600000, 0, &error));
    g_assert_no_error(error);
    vh = dv_test_engine_virt_host(engine, host_id);
    m0 = vm_uuid(engine, "m0");
    wait_vm_state(engine, "m0", "shutoff");

    /* Started and destroyed behind Drover's back. */
    g_assert_true(dv_virt_domain_start(vh, m0, NULL, &error));
    g_assert_no_error(error);
    took_start = wait_vm_state(engine, "m0", "running");
    g_assert_true(dv_virt_domain_destroy(vh, m0, NULL, &error));
    g_assert_no_error(error);
    took_stop = wait_vm_state(engine, "m0", "shutoff");
    g_assert_cmpint(took_start, <, EVENT_TARGET_US);
    g_assert_cmpint(took_stop, <, EVENT_TARGET_US);

    /* Defined outside Drover: imported as a refresh would; undefined:
     * marked missing. */
    spec = dv_test_json_object("{\"name\":\"outside1\",\"domain_type\":\"test\","
                               "\"memory_mib\":16}");
    xml = dv_virt_domain_xml_new(spec, &error);
    g_assert_no_error(error);
    outside = dv_virt_domain_define(vh, xml, NULL, &error);
    g_assert_no_error(error);
    took_define = wait_vm_state(engine, "outside1", "shutoff");
    g_assert_cmpint(took_define, <, EVENT_TARGET_US);
    {
        g_autoptr(JsonObject) vm = dv_store_find(dv_engine_get_store(engine), &dv_table_vms,
                                                 "name", "outside1", &error);
        g_assert_no_error(error);
        g_assert_cmpstr(dv_json_get_string(vm, "origin", ""), ==, "imported");
        g_assert_cmpstr(dv_json_get_string(vm, "uuid", ""), ==, outside);
    }
    g_assert_true(dv_virt_domain_undefine(vh, outside, NULL, &error));
    g_assert_no_error(error);
    wait_vm_state(engine, "outside1", "missing");
    /* Defined again under the name (a new UUID): the vanished row takes
     * it over, the name being the host's; no sync fails on the name. */
    {
        g_autofree char *again = NULL;
        g_autoptr(JsonObject) before = dv_store_find(dv_engine_get_store(engine), &dv_table_vms,
                                                     "name", "outside1", &error);
        g_autoptr(JsonObject) after = NULL;
        g_assert_no_error(error);
        again = dv_virt_domain_define(vh, xml, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(again, !=, outside);
        wait_vm_state(engine, "outside1", "shutoff");
        after = dv_store_find(dv_engine_get_store(engine), &dv_table_vms, "name", "outside1",
                              &error);
        g_assert_no_error(error);
        g_assert_cmpstr(dv_json_get_string(after, "uuid", ""), ==, again);
        g_assert_cmpstr(dv_json_get_string(after, "id", ""), ==,
                        dv_json_get_string(before, "id", ""));
        g_assert_true(dv_virt_domain_undefine(vh, again, NULL, &error));
        g_assert_no_error(error);
        wait_vm_state(engine, "outside1", "missing");
    }

    stats = dv_engine_hosts_watch_get_stats(engine);
    g_assert_cmpint(dv_json_get_int(stats, "connected", 0), ==, 1);
    g_assert_cmpint(dv_json_get_int(stats, "events", 0), >=, 3);
    g_test_message("test:/// events to database: started %.1f ms, stopped %.1f ms, defined "
                   "%.1f ms; watcher's own max %.1f ms",
                   took_start / 1000.0, took_stop / 1000.0, took_define / 1000.0,
                   dv_json_get_int(stats, "max_delay_us", 0) / 1000.0);
    g_printerr("# test:/// event to database: started %.1f ms, stopped %.1f ms, defined %.1f ms\n",
               took_start / 1000.0, took_stop / 1000.0, took_define / 1000.0);
    dv_test_engine_on_backend_free(engine, g_steal_pointer(&tmpdir), g_steal_pointer(&pgdb));
}

/* A host whose daemon does not answer turns unreachable; the watcher
 * keeps trying and the row keeps its other facts. */
static void
test_unreachable(gconstpointer data)
{
    DvTestBackend backend = GPOINTER_TO_INT(data);
    g_autofree char *tmpdir = NULL;
    g_autofree char *pgdb = NULL;
    g_autoptr(GError) error = NULL;
    DvEngine *engine = dv_test_engine_on_backend("dv-host-unreach", backend, 4, &tmpdir, &pgdb);
    g_autoptr(JsonObject) row = NULL;
    g_autofree char *id = g_uuid_string_random();
    gint64 start;

    if (engine == NULL)
        return;
    row = dv_test_json_object("{\"name\":\"gone\",\"uri\":\"qemu+tcp://127.0.0.1:1/system\","
                              "\"state\":\"ok\",\"domain_type\":\"auto\","
                              "\"max_connections\":16,\"max_concurrent_operations\":16,"
                              "\"host_group_id\":null,\"cluster_id\":null,\"run_as_id\":null,"
                              "\"created_at\":1}");
    json_object_set_string_member(row, "id", id);
    dv_store_insert(dv_engine_get_store(engine), &dv_table_hosts, row, &error);
    g_assert_no_error(error);
    g_assert_true(dv_engine_hosts_watch_start(engine, 0, 200, &error));
    start = g_get_monotonic_time();
    for (;;) {
        g_autoptr(JsonObject) h = dv_store_get(dv_engine_get_store(engine), &dv_table_hosts, id,
                                               &error);
        g_assert_no_error(error);
        if (g_strcmp0(dv_json_get_string(h, "state", ""), "unreachable") == 0) {
            g_assert_nonnull(strstr(dv_json_get_string(h, "state_reason", ""), "127.0.0.1:1"));
            break;
        }
        g_assert_cmpint(g_get_monotonic_time() - start, <, 5 * G_USEC_PER_SEC);
        g_usleep(10000);
    }
    dv_test_engine_on_backend_free(engine, g_steal_pointer(&tmpdir), g_steal_pointer(&pgdb));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_data_func("/drover/host-events/domains/sqlite",
                         GINT_TO_POINTER(DV_TEST_BACKEND_SQLITE), test_domain_events);
    g_test_add_data_func("/drover/host-events/domains/postgresql",
                         GINT_TO_POINTER(DV_TEST_BACKEND_PG), test_domain_events);
    g_test_add_data_func("/drover/host-events/unreachable/sqlite",
                         GINT_TO_POINTER(DV_TEST_BACKEND_SQLITE), test_unreachable);
    g_test_add_data_func("/drover/host-events/unreachable/postgresql",
                         GINT_TO_POINTER(DV_TEST_BACKEND_PG), test_unreachable);
    return g_test_run();
}
