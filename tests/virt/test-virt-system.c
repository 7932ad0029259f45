/* System tier of src/engine/virt: the real local libvirtd (qemu:///system)
 * with QEMU under TCG.  Start the daemon with scripts/ensure-libvirtd.
 *
 * Everything created is named dvtest-<random>-... and removed in the
 * fixture teardown, also when a test fails half-way. */
#define G_LOG_DOMAIN "DvVirtSystemTest"

#include "dv-virt-private.h"
#include "dv-test-system.h"
#include "dv-test-util.h"

#include "dv-json.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define SYSTEM_URI "qemu:///system"
#define OVMF_CODE "/usr/share/OVMF/OVMF_CODE_4M.ms.fd"

static DvVirt *the_virt;

typedef struct {
    DvVirtHost *host;
    char *prefix;
    char *tmpdir;
    char *pool;
} Fixture;

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *pool_xml = NULL;
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStoragePool) pool = NULL;

    if (!dv_test_system_check_daemon(the_virt))
        return;
    fx->host = dv_virt_host_get(the_virt, "local", SYSTEM_URI);
    fx->prefix = dv_test_system_prefix_new("dvtest", getppid());
    fx->tmpdir = dv_test_system_dir_new(fx->prefix);
    fx->pool = g_strdup_printf("%spool", fx->prefix);

    /* A transient dir pool: gone from libvirt when destroyed. */
    pool_xml = g_markup_printf_escaped("<pool type='dir'><name>%s</name>"
                                       "<target><path>%s</path></target></pool>",
                                       fx->pool, fx->tmpdir);
    g_assert_true(dv_virt_op_begin(&op, fx->host, NULL, &error));
    g_assert_no_error(error);
    pool = virStoragePoolCreateXML(op.conn, pool_xml, 0);
    if (pool == NULL) {
        dv_virt_op_fail(&op, &error, "cannot create test pool");
        g_assert_no_error(error);
    }
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
    dv_virt_host_unref(fx->host);
    g_free(fx->prefix);
    g_free(fx->pool);
    g_free(fx->tmpdir);
}

typedef void (*SystemTestFunc)(Fixture *fx, gconstpointer data);

/* Each test runs in a child process; the parent owns the names and the
 * temp dir and cleans up whatever the child left, pass or fail. */
static void
run_isolated(gconstpointer data)
{
    SystemTestFunc fn = (SystemTestFunc)data;
    g_autofree char *prefix = NULL;
    g_autofree char *tmpdir = NULL;

    if (g_test_subprocess()) {
        Fixture fx = { 0 };

        fixture_setup(&fx, NULL);
        if (fx.host != NULL)
            fn(&fx, NULL);
        fixture_teardown(&fx, NULL);
        return;
    }
    if (!dv_test_system_check_daemon(the_virt))
        return;
    prefix = dv_test_system_prefix_new("dvtest", getpid());
    tmpdir = dv_test_system_dir_new(prefix);
    /* QEMU runs as libvirt-qemu and must reach the files. */
    g_assert_cmpint(g_mkdir(tmpdir, 0755), ==, 0);
    g_chmod(tmpdir, 0755);
    g_test_trap_subprocess(NULL, 240 * G_USEC_PER_SEC,
                           G_TEST_SUBPROCESS_INHERIT_STDOUT | G_TEST_SUBPROCESS_INHERIT_STDERR);
    dv_test_system_cleanup(the_virt, prefix, tmpdir);
    {
        /* pool-prepare's persistent pool, when the test stopped early. */
        g_autofree char *pers = g_strconcat(prefix, "pers", NULL);
        g_autoptr(GError) ignored = NULL;
        g_autoptr(DvVirtHost) vh = dv_virt_host_get(the_virt, "local", SYSTEM_URI);
        if (!dv_virt_pool_undefine(vh, pers, NULL, &ignored))
            g_debug("no pool %s left: %s", pers, ignored->message);
    }
    g_test_trap_assert_passed();
}

static char *
define_domain(Fixture *fx, const char *name, guint generation, const char *disk)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) spec = json_object_new();
    g_autofree char *full = g_strconcat(fx->prefix, name, NULL);
    g_autofree char *log = g_strdup_printf("%s/%s.log", fx->tmpdir, name);
    g_autofree char *xml = NULL;
    char *uuid;

    json_object_set_string_member(spec, "name", full);
    json_object_set_string_member(spec, "domain_type", "qemu");
    json_object_set_int_member(spec, "memory_mib", 64);
    json_object_set_int_member(spec, "generation", generation);
    json_object_set_string_member(spec, "serial_log", log);
    json_object_set_string_member(spec, "description", "drover system test");
    if (disk != NULL) {
        JsonArray *disks = json_array_new();
        JsonObject *d = json_object_new();

        json_object_set_string_member(d, "path", disk);
        json_object_set_string_member(d, "format", "qcow2");
        json_array_add_object_element(disks, d);
        json_object_set_array_member(spec, "disks", disks);
    }
    xml = dv_virt_domain_xml_new(spec, &error);
    g_assert_no_error(error);
    uuid = dv_virt_domain_define(fx->host, xml, NULL, &error);
    g_assert_no_error(error);
    return uuid;
}

static const char *
state_of(Fixture *fx, const char *uuid)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) dom = dv_virt_domain_get(fx->host, uuid, NULL, &error);

    g_assert_no_error(error);
    return g_intern_string(dv_json_get_string(dom, "state", NULL));
}

static void
test_gen1_lifecycle(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) vol = NULL;
    g_autoptr(JsonObject) snap = NULL;
    g_autoptr(JsonArray) snaps = NULL;
    g_autoptr(JsonObject) gone = NULL;
    g_autoptr(JsonObject) dom = NULL;
    g_autofree char *vol_name = NULL;
    g_autofree char *uuid = NULL;
    const char *path;
    gint64 t0;

    if (fx->host == NULL)
        return;
    vol_name = g_strconcat(fx->prefix, "disk.qcow2", NULL);
    vol = dv_virt_volume_create(fx->host, fx->pool, vol_name, 16 << 20, "qcow2", NULL, &error);
    g_assert_no_error(error);
    path = dv_json_get_string(vol, "path", NULL);
    g_assert_cmpstr(dv_json_get_string(vol, "format", NULL), ==, "qcow2");
    g_assert_cmpint(dv_json_get_int(vol, "capacity", 0), ==, 16 << 20);
    /* Sparse: a fresh qcow2 holds only its metadata. */
    g_assert_cmpint(dv_json_get_int(vol, "allocation", G_MAXINT64), <, 1 << 20);

    uuid = define_domain(fx, "gen1", 1, path);
    g_assert_cmpstr(state_of(fx, uuid), ==, "shutoff");
    t0 = g_get_monotonic_time();
    g_assert_true(dv_virt_domain_start(fx->host, uuid, NULL, &error));
    g_assert_no_error(error);
    g_test_message("start took %.0f ms", (g_get_monotonic_time() - t0) / 1000.0);
    g_assert_cmpstr(state_of(fx, uuid), ==, "running");

    dom = dv_virt_domain_get(fx->host, uuid, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpint(dv_json_get_int(dom, "generation", 0), ==, 1);
    g_assert_cmpint(dv_json_get_int(dom, "memory_mib", 0), ==, 64);
    g_assert_cmpstr(dv_json_get_string(json_array_get_object_element(
                                           dv_json_get_array(dom, "disks"), 0),
                                       "source", NULL),
                    ==, path);

    t0 = g_get_monotonic_time();
    snap = dv_virt_snapshot_create(fx->host, uuid, "s1", "running snapshot", NULL, &error);
    g_assert_no_error(error);
    g_test_message("internal snapshot of a running 64 MiB guest took %.0f ms",
                   (g_get_monotonic_time() - t0) / 1000.0);
    g_assert_cmpstr(dv_json_get_string(snap, "state", NULL), ==, "running");
    g_assert_true(dv_json_get_bool(snap, "is_current", FALSE));

    snaps = dv_virt_snapshot_list(fx->host, uuid, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpint(json_array_get_length(snaps), ==, 1);
    g_assert_cmpstr(dv_json_get_string(json_array_get_object_element(snaps, 0), "description",
                                       NULL),
                    ==, "running snapshot");

    g_assert_true(dv_virt_snapshot_revert(fx->host, uuid, "s1", NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(state_of(fx, uuid), ==, "running");
    g_assert_true(dv_virt_snapshot_delete(fx->host, uuid, "s1", NULL, &error));
    g_assert_no_error(error);

    g_assert_true(dv_virt_domain_destroy(fx->host, uuid, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(state_of(fx, uuid), ==, "shutoff");

    /* A shut-off snapshot too, then delete everything with the volume. */
    g_clear_pointer(&snap, json_object_unref);
    snap = dv_virt_snapshot_create(fx->host, uuid, "s2", NULL, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(snap, "state", NULL), ==, "shutoff");

    g_assert_true(dv_virt_domain_delete(fx->host, uuid, TRUE, NULL, &error));
    g_assert_no_error(error);
    gone = dv_virt_volume_lookup_by_path(fx->host, path, NULL, &error);
    g_assert_null(gone);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    g_assert_null(dv_virt_domain_get(fx->host, uuid, NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
}

static void
test_gen2_secure_boot(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) dom = NULL;
    g_autoptr(JsonObject) snap = NULL;
    g_autofree char *uuid = NULL;
    g_autofree char *xml = NULL;

    if (fx->host == NULL)
        return;
    if (!g_file_test(OVMF_CODE, G_FILE_TEST_EXISTS)) {
        g_test_skip("no " OVMF_CODE " (package ovmf)");
        return;
    }
    uuid = define_domain(fx, "gen2", 2, NULL);
    g_assert_true(dv_virt_domain_start(fx->host, uuid, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(state_of(fx, uuid), ==, "running");
    dom = dv_virt_domain_get(fx->host, uuid, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpint(dv_json_get_int(dom, "generation", 0), ==, 2);
    g_assert_true(dv_json_get_bool(dom, "secure_boot", FALSE));
    xml = dv_virt_domain_get_xml(fx->host, uuid, FALSE, NULL, &error);
    g_assert_no_error(error);
    g_test_message("gen2 loader: %s", strstr(xml, "<loader") != NULL ? strstr(xml, "<loader") : "?");
    g_assert_nonnull(strstr(xml, "OVMF_CODE_4M.ms.fd"));

    snap = dv_virt_snapshot_create(fx->host, uuid, "s1", NULL, NULL, &error);
    g_assert_null(snap);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED);
    g_clear_error(&error);

    g_assert_true(dv_virt_domain_delete(fx->host, uuid, TRUE, NULL, &error));
    g_assert_no_error(error);
}

static void
test_probe_and_rights(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) probe = NULL;
    g_autoptr(JsonObject) rights = NULL;
    gboolean found = FALSE;
    JsonArray *pools;
    gint64 t0;

    if (fx->host == NULL)
        return;
    t0 = g_get_monotonic_time();
    probe = dv_virt_host_probe(fx->host, NULL, &error);
    g_assert_no_error(error);
    g_test_message("probe of qemu:///system took %.1f ms", (g_get_monotonic_time() - t0) / 1000.0);
    g_assert_cmpstr(dv_json_get_string(probe, "hypervisor_type", NULL), ==, "QEMU");
    g_assert_cmpint(dv_json_get_int(probe, "hypervisor_major", 0), >=, 5);
    g_assert_cmpint(dv_json_get_int(probe, "cpus", 0), >=, 1);
    g_assert_cmpint(dv_json_get_int(probe, "free_memory_mib", 0), >, 0);
    pools = dv_json_get_array(probe, "pools");
    for (guint i = 0; i < json_array_get_length(pools); i++) {
        JsonObject *p = json_array_get_object_element(pools, i);
        if (g_strcmp0(dv_json_get_string(p, "name", NULL), fx->pool) == 0) {
            g_assert_cmpstr(dv_json_get_string(p, "path", NULL), ==, fx->tmpdir);
            g_assert_cmpstr(dv_json_get_string(p, "state", NULL), ==, "running");
            found = TRUE;
        }
    }
    g_assert_true(found);

    rights = dv_virt_host_check_rights(fx->host, NULL, &error);
    g_assert_no_error(error);
    g_test_message("rights: %s", dv_json_object_to_string(rights, FALSE));
    g_assert_true(dv_json_get_bool(rights, "read_write", FALSE));
    g_assert_true(dv_json_get_bool(rights, "list_storage", FALSE));
    g_assert_true(dv_json_get_bool(rights, "create_volumes", FALSE));
    g_assert_true(dv_json_get_bool(rights, "define_domains", FALSE));
}

static void
test_daemon_limits(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) limits = NULL;

    if (fx->host == NULL)
        return;
    limits = dv_virt_host_get_daemon_limits(fx->host, &error);
    g_assert_no_error(error);
    g_test_message("daemon limits: %s", dv_json_object_to_string(limits, FALSE));
    g_assert_cmpint(dv_json_get_int(limits, "max_clients", 0), >, 0);
    g_assert_cmpint(dv_json_get_int(limits, "nclients", 0), >=, 1);
    g_assert_cmpint(dv_json_get_int(limits, "max_workers", 0), >, 0);
    g_assert_true(json_object_has_member(limits, "min_workers"));
    g_assert_cmpint(dv_json_get_int(limits, "max_client_requests", 0), >, 0);
    g_assert_nonnull(dv_json_get_string(limits, "max_client_requests_source", NULL));
}

typedef struct {
    Fixture *fx;
    guint index;
    gint failures;
} OneCallData;

static gpointer
one_call_worker(gpointer user_data)
{
    OneCallData *d = user_data;
    guint8 data[4096];

    memset(data, 0x5a, sizeof data);
    for (guint i = 0; i < 6; i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *name = g_strdup_printf("%sc%u-%u.img", d->fx->prefix, d->index, i);
        gboolean ok;

        /* Streams and plain calls mixed, as a catalog's workers do. */
        if ((i + d->index) % 2 == 0) {
            ok = dv_virt_volume_upload(d->fx->host, d->fx->pool, name, data, sizeof data, NULL, &error);
        } else {
            g_autoptr(JsonObject) vol = dv_virt_volume_create(d->fx->host, d->fx->pool, name, 1 << 20, "raw",
                                                              NULL, &error);
            ok = vol != NULL;
        }
        if (ok)
            ok = dv_virt_volume_delete(d->fx->host, d->fx->pool, name, NULL, &error);
        if (!ok) {
            g_test_message("worker %u: %s", d->index, error->message);
            g_atomic_int_inc(&d->failures);
        }
    }
    return NULL;
}

/* A connection through libvirt's RPC client carries one operation at a
 * time (docs/VIRT.md): 8 threads on a host allowed 6 operations and 2
 * connections never put two calls on one connection, and all finish. */
static void
test_one_call_per_connection(Fixture *fx, gconstpointer data)
{
    OneCallData d[8];
    GThread *threads[8];
    g_autoptr(JsonObject) stats = NULL;
    gint failures = 0;

    if (fx->host == NULL)
        return;
    dv_virt_host_set_limits(fx->host, 2, 6);
    for (guint i = 0; i < G_N_ELEMENTS(threads); i++) {
        d[i] = (OneCallData){ fx, i, 0 };
        threads[i] = g_thread_new("one-call", one_call_worker, &d[i]);
    }
    for (guint i = 0; i < G_N_ELEMENTS(threads); i++) {
        g_thread_join(threads[i]);
        failures += d[i].failures;
    }
    stats = dv_virt_host_get_stats(fx->host);
    g_test_message("stats: %s", dv_json_object_to_string(stats, FALSE));
    g_assert_cmpint(failures, ==, 0);
    g_assert_cmpint(dv_json_get_int(stats, "peak_operations_per_connection", 0), ==, 1);
    g_assert_cmpint(dv_json_get_int(stats, "open_connections", 99), <=, 2);
    g_assert_cmpint(dv_json_get_int(stats, "open_connections", 0), >=, 1);
    g_assert_cmpint(dv_json_get_int(stats, "peak_operations_in_flight", 99), <=, 6);
    g_assert_cmpint(dv_json_get_int(stats, "peak_operations_in_flight", 0), >=, 3);
    g_assert_cmpint(dv_json_get_int(stats, "operations_in_flight", 99), ==, 0);

    /* Room for 8 connections: opened at most 4 at a time, all used. */
    dv_virt_host_set_limits(fx->host, 8, 8);
    for (guint i = 0; i < G_N_ELEMENTS(threads); i++) {
        d[i] = (OneCallData){ fx, i + 100, 0 };
        threads[i] = g_thread_new("one-call", one_call_worker, &d[i]);
    }
    for (guint i = 0; i < G_N_ELEMENTS(threads); i++) {
        g_thread_join(threads[i]);
        failures += d[i].failures;
    }
    g_clear_pointer(&stats, json_object_unref);
    stats = dv_virt_host_get_stats(fx->host);
    g_test_message("stats: %s", dv_json_object_to_string(stats, FALSE));
    g_assert_cmpint(failures, ==, 0);
    g_assert_cmpint(dv_json_get_int(stats, "peak_operations_per_connection", 0), ==, 1);
    g_assert_cmpint(dv_json_get_int(stats, "open_connections", 99), <=, 8);
    g_assert_cmpint(dv_json_get_int(stats, "open_connections", 0), >, 2);
}

/* A catalog's personal disk pool made ready before its first disk (issue
 * 12, item 8): a defined dir pool whose directory does not exist is built
 * and started; a running one whose directory was removed is stopped by
 * its refresh, built and started again; too little room and an unknown
 * pool are refused. */
static void
test_pool_prepare(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *name = g_strconcat(fx->prefix, "pers", NULL);
    g_autofree char *dir = g_build_filename(fx->tmpdir, "pers", NULL);
    g_autofree char *xml = g_markup_printf_escaped(
        "<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>", name, dir);
    g_autoptr(JsonObject) info = NULL;
    g_autoptr(JsonObject) vol = NULL;
    g_autofree char *vol_path = NULL;

    g_assert_true(dv_virt_pool_define(fx->host, name, xml, FALSE, NULL, &error));
    g_assert_no_error(error);
    g_assert_false(g_file_test(dir, G_FILE_TEST_EXISTS));
    info = dv_virt_pool_prepare(fx->host, name, 8 << 20, NULL, &error);
    g_assert_no_error(error);
    g_assert_true(dv_json_get_bool(info, "built", FALSE));
    g_assert_true(dv_json_get_bool(info, "started", FALSE));
    g_assert_cmpstr(dv_json_get_string(info, "path", ""), ==, dir);
    g_assert_true(g_file_test(dir, G_FILE_TEST_IS_DIR));
    vol =
        dv_virt_volume_create(fx->host, name, "desk-01-personal.img", 8 << 20, "raw", NULL, &error);
    g_assert_no_error(error);
    vol_path = g_build_filename(dir, "desk-01-personal.img", NULL);
    g_assert_cmpstr(dv_json_get_string(vol, "path", ""), ==, vol_path);

    /* A lean create names the path in a dir pool; its pool handle, kept by
     * the connection, outlives the pool defined again under the name (a
     * new UUID): the next create looks the pool up again. */
    for (guint round = 0; round < 2; round++) {
        g_autofree char *lean_name = g_strdup_printf("desk-0%u-lean.img", round + 2);
        g_autofree char *lean_path = g_build_filename(dir, lean_name, NULL);
        g_autoptr(JsonObject) lean = NULL;

        if (round == 1) {
            g_autoptr(JsonObject) again = NULL;
            g_assert_true(dv_virt_pool_undefine(fx->host, name, NULL, &error));
            g_assert_no_error(error);
            g_assert_true(dv_virt_pool_define(fx->host, name, xml, FALSE, NULL, &error));
            g_assert_no_error(error);
            again = dv_virt_pool_prepare(fx->host, name, 8 << 20, NULL, &error);
            g_assert_no_error(error);
        }
        lean = dv_virt_volume_create_lean(fx->host, name, lean_name, 1 << 20, "raw", NULL, NULL,
                                          dir, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(dv_json_get_string(lean, "path", ""), ==, lean_path);
        g_assert_true(g_file_test(lean_path, G_FILE_TEST_IS_REGULAR));
    }

    /* Ready already: nothing to do. */
    g_clear_pointer(&info, json_object_unref);
    info = dv_virt_pool_prepare(fx->host, name, 8 << 20, NULL, &error);
    g_assert_no_error(error);
    g_assert_false(dv_json_get_bool(info, "built", TRUE));
    g_assert_false(dv_json_get_bool(info, "started", TRUE));

    /* The directory removed under the running pool. */
    dv_test_system_remove_tree(dir);
    g_clear_pointer(&info, json_object_unref);
    info = dv_virt_pool_prepare(fx->host, name, 8 << 20, NULL, &error);
    g_assert_no_error(error);
    g_assert_true(dv_json_get_bool(info, "built", FALSE));
    g_assert_true(g_file_test(dir, G_FILE_TEST_IS_DIR));

    g_clear_pointer(&info, json_object_unref);
    info = dv_virt_pool_prepare(fx->host, name, G_GUINT64_CONSTANT(1) << 60, NULL, &error);
    g_assert_null(info);
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "pool");
    g_clear_error(&error);
    info = dv_virt_pool_prepare(fx->host, "dvtest-no-such-pool", 1, NULL, &error);
    g_assert_null(info);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);

    g_assert_true(dv_virt_pool_undefine(fx->host, name, NULL, &error));
    g_assert_no_error(error);
}

int
main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    the_virt = dv_virt_new();

#define ADD(path, fn) g_test_add_data_func(path, (gconstpointer)fn, run_isolated)
    ADD("/drover/virt/system/probe-and-rights", test_probe_and_rights);
    ADD("/drover/virt/system/gen1-lifecycle", test_gen1_lifecycle);
    ADD("/drover/virt/system/gen2-secure-boot", test_gen2_secure_boot);
    ADD("/drover/virt/system/daemon-limits", test_daemon_limits);
    ADD("/drover/virt/system/one-call-per-connection", test_one_call_per_connection);
    ADD("/drover/virt/system/pool-prepare", test_pool_prepare);
#undef ADD

    rc = g_test_run();
    dv_virt_free(the_virt);
    return rc;
}
