#define G_LOG_DOMAIN "DvTestMigrateSystem"

/* Live migration through the engine (issue 14, items 1-3): vm.migrate and
 * its preflight between the system libvirtd (qemu:///system, host A) and
 * a second, private one (host B) that tests/services/with-second-libvirtd
 * starts around this program, on SQLite and on PostgreSQL.
 *
 * The guest is the tiny guest's kernel and initramfs printing
 * "DROVER-TICK N" every second on a serial console appended to a file in
 * /tmp (both daemons see it), with a qcow2 disk in pool "<prefix>pool",
 * which is another directory on each host: the disk is copied (copy-all).
 * One case per backend, in order:
 *  - preflight without a target: B is picked and rated; a fake host of
 *    the cluster whose libvirtd is gone is rated out ("reachable");
 *  - refusals before anything moves, each naming its check: the source
 *    itself, a host in another cluster, the unreachable host
 *    (UNAVAILABLE), a target without the VM's pool;
 *  - A -> B by placement: the counter goes on, the row's host is B, the
 *    domain is persistent on B and gone from A, the disk file moved;
 *  - B -> A capped at 1 MiB/s and cancelled: within 5 s the job is
 *    cancelled and the guest runs on at B, nothing of it on A;
 *  - B -> A: back, counting on;
 *  - a VM defined with 1 TiB: its preflight fails memory and running;
 *  - a catalog machine (rows written here) whose base is in B's pool:
 *    copy-top, about its top's 1 MiB moved, its machine row follows;
 *  - a second guest on a pool both hosts see: shared, nothing copied.
 * The parent removes the case's domains and pool from both daemons
 * afterwards, pass or fail.  Figures are printed as TAP comments. */

#include "dv-test-catalog.h"
#include "dv-test-pg.h"
#include "dv-test-system.h"
#include "dv-test-util.h"

#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-vms.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define JOB_WAIT_MS (180 * 1000)
#define TICK_WAIT_S 90
#define GUEST_TICKER                                                                               \
    "i=0; while true; do echo DROVER-TICK $i; i=$((i+1)); /bin/busybox sleep 1; done"

static DvVirt *the_virt;

static const char *
env_required(const char *name)
{
    const char *v = g_getenv(name);
    if (v == NULL || v[0] == '\0')
        g_error("%s is not set: run this test under tests/services/with-second-libvirtd "
                "(meson test does)",
                name);
    return v;
}

/* The ticks in @log, checked to count up by one from 0; the last one. */
static gint64
ticks_last(const char *log)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    gint64 last = -1;

    if (!g_file_get_contents(log, &text, NULL, NULL))
        return -1;
    lines = g_strsplit(text, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
        const char *at = strstr(lines[i], "DROVER-TICK ");
        char *end = NULL;
        gint64 n;
        if (at == NULL)
            continue;
        n = g_ascii_strtoll(at + strlen("DROVER-TICK "), &end, 10);
        if (end == NULL || (*end != '\0' && *end != '\r'))
            continue;
        if (n != last + 1)
            g_error("the guest's counter went from %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT
                    " in %s: it restarted",
                    last, n, log);
        last = n;
    }
    return last;
}

static gint64
ticks_wait(const char *log, gint64 after, gint64 more)
{
    gint64 deadline = g_get_monotonic_time() + TICK_WAIT_S * G_USEC_PER_SEC;
    gint64 last = -1;

    while (g_get_monotonic_time() < deadline) {
        last = ticks_last(log);
        if (last >= after + more)
            return last;
        g_usleep(200 * 1000);
    }
    g_error("the guest did not tick past %" G_GINT64_FORMAT " (last %" G_GINT64_FORMAT ")",
            after + more, last);
}

static void
assert_runs_on(DvVirtHost *host, const char *uuid)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) dom = dv_virt_domain_get(host, uuid, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(dom, "state", ""), ==, "running");
}

static void
assert_absent(DvVirtHost *host, const char *uuid)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) dom = dv_virt_domain_get(host, uuid, NULL, &error);
    g_assert_null(dom);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
}

static void
run_cmd(const char *const *argv)
{
    g_autofree char *err = NULL;
    gint status = -1;
    g_autoptr(GError) error = NULL;

    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                               &err, &status, &error));
    g_assert_no_error(error);
    if (!g_spawn_check_wait_status(status, NULL))
        g_error("%s failed: %s", argv[0], err);
}

/* The refusal of migrating @vm with @json: its code and field, and its
 * message naming @check. */
static void
assert_refused(DvEngine *engine, const char *vm, const char *json, DvErrorCode code,
               const char *field, const char *check)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    g_autoptr(JsonObject) job =
        dv_engine_vm_migrate(engine, vm, body, DV_ACTOR_NAMED("tester"), &error);

    g_assert_null(job);
    g_assert_error(error, DV_ERROR, (gint)code);
    g_assert_cmpstr(dv_error_get_field(error), ==, field);
    if (strstr(error->message, check) == NULL)
        g_error("the refusal does not name %s: %s", check, error->message);
    g_printerr("# refused as expected: %s\n", error->message);
}

static JsonObject *
migrate(DvEngine *engine, const char *vm, const char *json, double *ret_s)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    gint64 t0 = g_get_monotonic_time();
    g_autoptr(JsonObject) job =
        dv_engine_vm_migrate(engine, vm, body, DV_ACTOR_NAMED("tester"), &error);
    JsonObject *done;

    g_assert_no_error(error);
    done = dv_test_engine_run(engine, job, JOB_WAIT_MS);
    *ret_s = (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC;
    return done;
}

static void
refresh(DvEngine *engine, const char *host)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job =
        dv_engine_host_refresh(engine, host, DV_ACTOR_NAMED("tester"), &error);
    g_autoptr(JsonObject) done = NULL;
    g_assert_no_error(error);
    done = dv_test_engine_run(engine, job, JOB_WAIT_MS);
}

static void
set_cluster(DvEngine *engine, const char *host, const char *cluster)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *json = g_strdup_printf("{\"cluster\":\"%s\"}", cluster);
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    g_autoptr(JsonObject) job =
        dv_engine_update(engine, DV_KIND_HOST, host, body, DV_ACTOR_NAMED("tester"), &error);
    g_autoptr(JsonObject) done = NULL;
    g_assert_no_error(error);
    done = dv_test_engine_run(engine, job, JOB_WAIT_MS);
}

static JsonObject *
row(DvEngine *engine, DvKind kind, const char *name)
{
    g_autoptr(GError) error = NULL;
    JsonObject *r = dv_engine_get(engine, kind, name, &error);
    g_assert_no_error(error);
    return r;
}

/* Defines and starts a ticking guest @name on @vh with its disk @disk and
 * console @log; returns its UUID (owned). */
static char *
guest_start(DvVirtHost *vh, const char *dir, const char *name, const char *disk, const char *log)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *kernel = dv_test_tiny_guest_copy(DV_TINY_GUEST_CACHE_DIR, dir, "vmlinuz");
    g_autofree char *initrd = dv_test_tiny_guest_copy(DV_TINY_GUEST_CACHE_DIR, dir, "initrd.img");
    g_autofree char *cmdline =
        g_strdup_printf("console=ttyS0 quiet rdinit=/bin/busybox -- sh -c \"%s\"", GUEST_TICKER);
    g_autoptr(JsonObject) spec = json_object_new();
    JsonArray *disks = json_array_new();
    JsonObject *d = json_object_new();
    g_autofree char *xml = NULL;
    char *uuid;

    json_object_set_string_member(spec, "name", name);
    json_object_set_int_member(spec, "memory_mib", 96);
    json_object_set_string_member(spec, "serial_log", log);
    json_object_set_boolean_member(spec, "serial_append", TRUE);
    json_object_set_string_member(spec, "kernel", kernel);
    json_object_set_string_member(spec, "initrd", initrd);
    json_object_set_string_member(spec, "cmdline", cmdline);
    json_object_set_string_member(d, "path", disk);
    json_object_set_string_member(d, "format", "qcow2");
    json_array_add_object_element(disks, d);
    json_object_set_array_member(spec, "disks", disks);
    xml = dv_virt_domain_xml_new(spec, &error);
    g_assert_no_error(error);
    uuid = dv_virt_domain_define(vh, xml, NULL, &error);
    g_assert_no_error(error);
    g_assert_true(dv_virt_domain_start(vh, uuid, NULL, &error));
    g_assert_no_error(error);
    return uuid;
}

static void
insert_json(DvStore *store, const DvTableDef *def, const char *json)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) rec = dv_test_json_object(json);
    if (!dv_store_insert(store, def, rec, &error))
        g_error("cannot insert into %s: %s", def->table, error->message);
}

static void
qcow2_new(const char *path)
{
    const char *argv[] = { "qemu-img", "create",     "-q", "-f",  "qcow2",
                           "-o",       "compat=1.1", path, "16M", NULL };
    run_cmd(argv);
    g_chmod(path, 0666);
}

static void
case_migrate(const char *prefix, const char *dir, DvTestBackend backend)
{
    const char *b_uri = env_required("DV_TEST_LIBVIRTD2_URI");
    const char *a_uri_from_b = env_required("DV_TEST_LIBVIRTD2_SYSTEM_URI");
    const char *const socket_param[] = { "socket", NULL };
    g_autofree char *tmpdir = NULL;
    g_autofree char *pgname = NULL;
    g_autofree char *name = g_strconcat(prefix, "vm", NULL);
    g_autofree char *pool = g_strconcat(prefix, "pool", NULL);
    g_autofree char *ha = g_strconcat(prefix, "a", NULL);
    g_autofree char *hb = g_strconcat(prefix, "b", NULL);
    g_autofree char *hdead = g_strconcat(prefix, "dead", NULL);
    g_autofree char *c1 = g_strconcat(prefix, "c1", NULL);
    g_autofree char *c2 = g_strconcat(prefix, "c2", NULL);
    g_autofree char *dir_a = g_build_filename(dir, "a", NULL);
    g_autofree char *dir_b = g_build_filename(dir, "b", NULL);
    g_autofree char *disk_name = g_strconcat(prefix, "disk.qcow2", NULL);
    g_autofree char *disk_a = g_build_filename(dir_a, disk_name, NULL);
    g_autofree char *disk_b = g_build_filename(dir_b, disk_name, NULL);
    g_autofree char *log = g_build_filename(dir, "console.log", NULL);
    g_autofree char *uuid = NULL;
    g_autofree char *name2 = g_strconcat(prefix, "vm2", NULL);
    g_autofree char *spool = g_strconcat(prefix, "shared", NULL);
    g_autofree char *dir_s = g_build_filename(dir, "shared", NULL);
    g_autofree char *disk_s = g_build_filename(dir_s, "disk2.qcow2", NULL);
    g_autofree char *log2 = g_build_filename(dir, "console2.log", NULL);
    g_autofree char *uuid2 = NULL;
    g_autofree char *name3 = g_strconcat(prefix, "big", NULL);
    g_autofree char *name4 = g_strconcat(prefix, "cat", NULL);
    g_autofree char *base_name = g_strconcat(prefix, "base.qcow2", NULL);
    g_autofree char *base_a = g_build_filename(dir_a, base_name, NULL);
    g_autofree char *base_b = g_build_filename(dir_b, base_name, NULL);
    g_autofree char *ov_name = g_strconcat(prefix, "cat-overlay.qcow2", NULL);
    g_autofree char *ov_a = g_build_filename(dir_a, ov_name, NULL);
    g_autofree char *ov_b = g_build_filename(dir_b, ov_name, NULL);
    g_autofree char *log4 = g_build_filename(dir, "console4.log", NULL);
    g_autofree char *uuid4 = NULL;
    g_autoptr(DvVirtHost) va = dv_virt_host_get(the_virt, "mig-a", DV_TEST_SYSTEM_URI);
    g_autoptr(DvVirtHost) vb = dv_virt_host_get(the_virt, "mig-b", b_uri);
    g_autoptr(DvEngine) engine = NULL;
    g_autoptr(GError) error = NULL;
    gint64 t;
    double s_there = 0, s_back = 0;

    g_assert_cmpint(g_mkdir(dir_a, 0755), ==, 0);
    g_assert_cmpint(g_mkdir(dir_b, 0755), ==, 0);
    dv_test_system_pool_create(va, pool, dir_a);
    dv_test_system_pool_create(vb, pool, dir_b);
    {
        const char *argv[] = { "qemu-img", "create",     "-q",   "-f",  "qcow2",
                               "-o",       "compat=1.1", disk_a, "16M", NULL };
        run_cmd(argv);
        g_chmod(disk_a, 0666);
    }
    /* The ticking guest, on A before Drover knows it. */
    {
        g_autofree char *kernel = dv_test_tiny_guest_copy(DV_TINY_GUEST_CACHE_DIR, dir, "vmlinuz");
        g_autofree char *initrd =
            dv_test_tiny_guest_copy(DV_TINY_GUEST_CACHE_DIR, dir, "initrd.img");
        g_autofree char *cmdline = g_strdup_printf(
            "console=ttyS0 quiet rdinit=/bin/busybox -- sh -c \"%s\"", GUEST_TICKER);
        g_autoptr(JsonObject) spec = json_object_new();
        JsonArray *disks = json_array_new();
        JsonObject *d = json_object_new();
        g_autofree char *xml = NULL;

        json_object_set_string_member(spec, "name", name);
        json_object_set_int_member(spec, "memory_mib", 96);
        json_object_set_string_member(spec, "serial_log", log);
        json_object_set_boolean_member(spec, "serial_append", TRUE);
        json_object_set_string_member(spec, "kernel", kernel);
        json_object_set_string_member(spec, "initrd", initrd);
        json_object_set_string_member(spec, "cmdline", cmdline);
        json_object_set_string_member(d, "path", disk_a);
        json_object_set_string_member(d, "format", "qcow2");
        json_array_add_object_element(disks, d);
        json_object_set_array_member(spec, "disks", disks);
        xml = dv_virt_domain_xml_new(spec, &error);
        g_assert_no_error(error);
        uuid = dv_virt_domain_define(va, xml, NULL, &error);
        g_assert_no_error(error);
        g_assert_true(dv_virt_domain_start(va, uuid, NULL, &error));
        g_assert_no_error(error);
    }
    /* A second guest on storage both hosts see as one pool. */
    g_assert_cmpint(g_mkdir(dir_s, 0755), ==, 0);
    dv_test_system_pool_create(va, spool, dir_s);
    dv_test_system_pool_create(vb, spool, dir_s);
    qcow2_new(disk_s);
    uuid2 = guest_start(va, dir, name2, disk_s, log2);
    /* A catalog machine's chain: a base of 8 MiB of random data on both
     * hosts (the same name in the pool of each), the overlay on A only. */
    {
        g_autofree char *raw = g_build_filename(dir, "base.raw", NULL);
        g_autofree char *of = g_strdup_printf("of=%s", raw);
        const char *dd[] = { "dd", "if=/dev/urandom", of, "bs=1M", "count=8", "status=none", NULL };
        const char *conv[] = { "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2",
                               "-o", "compat=1.1", raw, base_a, NULL };
        const char *ov[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=1.1",
                             "-F", "qcow2", "-b", base_a, ov_a, NULL };
        run_cmd(dd);
        run_cmd(conv);
        g_chmod(base_a, 0644);
        dv_test_copy_file(base_a, base_b);
        const char *wr[] = { "qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1M 1M", ov_a, NULL };
        run_cmd(ov);
        run_cmd(wr); /* 1 MiB of the machine's own data in its top layer */
        g_chmod(ov_a, 0666);
        g_unlink(raw);
        uuid4 = guest_start(va, dir, name4, ov_a, log4);
    }
    /* A third, defined only, with far more memory than any host here has. */
    {
        g_autofree char *json =
            g_strdup_printf("{\"name\":\"%s\",\"memory_mib\":1048576,\"disks\":[{\"path\":\"%s\","
                            "\"format\":\"qcow2\"}]}",
                            name3, disk_s);
        g_autoptr(JsonObject) spec = dv_test_json_object(json);
        g_autofree char *xml = dv_virt_domain_xml_new(spec, &error);
        g_autofree char *u3 = NULL;
        g_assert_no_error(error);
        u3 = dv_virt_domain_define(va, xml, NULL, &error);
        g_assert_no_error(error);
    }
    t = ticks_wait(log, -1, 2);
    g_printerr("# the guest ticks\n");

    engine = dv_test_engine_on_backend("dvmig", backend, 4, &tmpdir, &pgname);
    if (engine == NULL)
        return;
    dv_virt_set_uri_policy(dv_core(engine)->virt, TRUE, socket_param);
    {
        g_autofree char *j1 = g_strdup_printf("{\"name\":\"%s\"}", c1);
        g_autofree char *j2 = g_strdup_printf("{\"name\":\"%s\"}", c2);
        g_autofree char *ja = g_strdup_printf(
            "{\"name\":\"%s\",\"uri\":\"%s\",\"cluster\":\"%s\",\"migration_uri\":\"%s\"}", ha,
            DV_TEST_SYSTEM_URI, c1, a_uri_from_b);
        g_autofree char *jb =
            g_strdup_printf("{\"name\":\"%s\",\"uri\":\"%s\",\"cluster\":\"%s\"}", hb, b_uri, c1);
        g_autoptr(JsonObject) d1 = dv_test_engine_create(engine, DV_KIND_CLUSTER, j1, JOB_WAIT_MS);
        g_autoptr(JsonObject) d2 = dv_test_engine_create(engine, DV_KIND_CLUSTER, j2, JOB_WAIT_MS);
        g_autoptr(JsonObject) da = dv_test_engine_create(engine, DV_KIND_HOST, ja, JOB_WAIT_MS);
        g_autoptr(JsonObject) db = dv_test_engine_create(engine, DV_KIND_HOST, jb, JOB_WAIT_MS);
    }
    g_printerr("# hosts added\n");
    /* A third host of the cluster whose libvirtd is gone: a row as a host
     * add left it, its socket path removed since. */
    {
        g_autoptr(JsonObject) b = row(engine, DV_KIND_HOST, hb);
        g_autoptr(JsonObject) dead = dv_store_get(dv_core(engine)->store, &dv_table_hosts,
                                                  dv_json_get_string(b, "id", ""), NULL);
        g_autofree char *id = g_uuid_string_random();
        g_autofree char *uri =
            g_strdup_printf("qemu+unix:///system?socket=%s/gone/libvirt-sock", dir);
        g_autoptr(JsonObject) rec = json_object_new();
        static const char *const copy[] = {
            "cluster_id",       "host_group_id",      "hypervisor_type",
            "hypervisor_major", "hypervisor_version", "libvirt_version",
            "domain_type",      "max_connections",    "max_concurrent_operations"
        };
        json_object_set_string_member(rec, "id", id);
        json_object_set_string_member(rec, "name", hdead);
        json_object_set_string_member(rec, "uri", uri);
        json_object_set_string_member(rec, "state", "ok");
        json_object_set_int_member(rec, "created_at", dv_store_now());
        for (guint i = 0; i < G_N_ELEMENTS(copy); i++)
            dv_core_copy_member(rec, copy[i], dead, copy[i]);
        if (!dv_store_insert(dv_core(engine)->store, &dv_table_hosts, rec, &error))
            g_error("cannot insert host %s: %s", hdead, error->message);
    }

    /* Preflight without a target: B, rated; the dead host rated out. */
    {
        g_autoptr(JsonObject) plan = dv_engine_vm_migrate_preflight(engine, name, NULL, &error);
        JsonArray *cands;
        guint seen = 0;
        g_assert_no_error(error);
        if (g_strcmp0(dv_json_get_string(plan, "target", ""), hb) != 0)
            g_error("placement did not pick %s: %s", hb, dv_json_object_to_string(plan, TRUE));
        g_assert_cmpstr(dv_json_get_string(plan, "storage", ""), ==, "copy-all");
        cands = dv_json_get_array(plan, "candidates");
        g_assert_cmpuint(json_array_get_length(cands), ==, 2);
        for (guint i = 0; i < json_array_get_length(cands); i++) {
            JsonObject *c = json_array_get_object_element(cands, i);
            JsonArray *checks = dv_json_get_array(c, "checks");
            if (g_strcmp0(dv_json_get_string(c, "host", ""), hb) == 0) {
                g_assert_true(dv_json_get_bool(c, "ok", FALSE));
                g_assert_true(json_object_has_member(c, "rating"));
                g_assert_cmpfloat(json_object_get_double_member(c, "rating"), >, 0);
                g_assert_cmpint(dv_json_get_int(c, "free_memory_mib", 0), >, 96);
                g_assert_cmpuint(json_array_get_length(checks), >=, 10);
                g_printerr("# placement: %s rated %.0f (free %" G_GINT64_FORMAT " MiB, CPU "
                           "%.2f busy)\n",
                           hb, json_object_get_double_member(c, "rating"),
                           dv_json_get_int(c, "free_memory_mib", 0),
                           json_object_get_double_member(c, "cpu_busy"));
                seen |= 1;
            } else {
                g_assert_cmpstr(dv_json_get_string(c, "host", ""), ==, hdead);
                g_assert_false(dv_json_get_bool(c, "ok", TRUE));
                g_assert_false(json_object_has_member(c, "rating"));
                for (guint k = 0; k < json_array_get_length(checks); k++) {
                    JsonObject *x = json_array_get_object_element(checks, k);
                    if (g_strcmp0(dv_json_get_string(x, "check", ""), "reachable") == 0) {
                        g_assert_false(dv_json_get_bool(x, "ok", TRUE));
                        seen |= 2;
                    }
                }
            }
        }
        g_assert_cmpuint(seen, ==, 3);
    }

    /* The huge VM: its preflight names memory (and that it is not
     * running); a move is refused for its state before any check. */
    {
        g_autofree char *q = g_strdup(hb);
        g_autoptr(GHashTable) query = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(JsonObject) plan = NULL;
        JsonObject *c;
        JsonArray *checks;
        guint failed = 0;
        g_hash_table_insert(query, (gpointer) "to", q);
        plan = dv_engine_vm_migrate_preflight(engine, name3, query, &error);
        g_assert_no_error(error);
        g_assert_null(dv_json_get_string(plan, "target", NULL));
        c = json_array_get_object_element(dv_json_get_array(plan, "candidates"), 0);
        checks = dv_json_get_array(c, "checks");
        for (guint k = 0; k < json_array_get_length(checks); k++) {
            JsonObject *x = json_array_get_object_element(checks, k);
            const char *what = dv_json_get_string(x, "check", "");
            if (dv_json_get_bool(x, "ok", TRUE))
                continue;
            g_printerr("# %s fails %s: %s\n", name3, what, dv_json_get_string(x, "detail", ""));
            if (g_strcmp0(what, "memory") == 0 || g_strcmp0(what, "running") == 0)
                failed++;
        }
        g_assert_cmpuint(failed, ==, 2);
        assert_refused(engine, name3, "{}", DV_ERROR_CONFLICT, "ref", "running VM");
    }

    /* Refusals, nothing moved. */
    {
        g_autofree char *j = g_strdup_printf("{\"to\":\"%s\"}", ha);
        assert_refused(engine, name, j, DV_ERROR_CONFLICT, "to", "not_source");
        g_free(j);
        j = g_strdup_printf("{\"to\":\"%s\"}", hdead);
        assert_refused(engine, name, j, DV_ERROR_UNAVAILABLE, "to", "reachable");
        g_free(j);
        j = g_strdup_printf("{\"to\":\"%s\",\"storage\":\"shared\"}", hb);
        assert_refused(engine, name, j, DV_ERROR_CONFLICT, "storage", "storage");
        set_cluster(engine, hb, c2);
        g_free(j);
        j = g_strdup_printf("{\"to\":\"%s\"}", hb);
        assert_refused(engine, name, j, DV_ERROR_CONFLICT, "to", "cluster");
        set_cluster(engine, hb, c1);
        /* Stopping a transient pool removes it; its directory stays. */
        if (!dv_virt_pool_set_active(vb, pool, FALSE, NULL, &error))
            g_error("cannot stop pool %s on B: %s", pool, error->message);
        refresh(engine, hb);
        assert_refused(engine, name, j, DV_ERROR_CONFLICT, "to", "pools");
        dv_test_system_pool_create(vb, pool, dir_b);
        refresh(engine, hb);
        assert_runs_on(va, uuid);
        assert_absent(vb, uuid);
    }

    /* A -> B by placement. */
    {
        g_autoptr(JsonObject) done = migrate(engine, name, "{}", &s_there);
        JsonObject *result = dv_json_get_object(done, "result");
        g_autoptr(JsonObject) vm = row(engine, DV_KIND_VM, name);
        g_autoptr(JsonObject) b = row(engine, DV_KIND_HOST, hb);
        g_assert_cmpstr(dv_json_get_string(result, "to", ""), ==, hb);
        g_assert_cmpstr(dv_json_get_string(result, "storage", ""), ==, "copy-all");
        g_assert_nonnull(dv_json_get_object(result, "placement"));
        g_assert_cmpstr(dv_json_get_string(vm, "host_id", ""), ==, dv_json_get_string(b, "id", ""));
        g_assert_cmpstr(dv_json_get_string(vm, "state", ""), ==, "running");
        assert_runs_on(vb, uuid);
        assert_absent(va, uuid);
        g_assert_false(g_file_test(disk_a, G_FILE_TEST_EXISTS));
        g_assert_true(g_file_test(disk_b, G_FILE_TEST_EXISTS));
        t = ticks_wait(log, t, 2);
        g_printerr(
            "# A -> B (copy-all, 16 MiB qcow2): %.2f s, of which the migration %.2f s\n", s_there,
            dv_json_get_int(dv_json_get_object(result, "migration"), "elapsed_ms", 0) / 1000.0);
    }

    /* B -> A capped at 1 MiB/s, cancelled once it moves data. */
    {
        g_autofree char *j = g_strdup_printf("{\"to\":\"%s\",\"bandwidth_mib_s\":1}", ha);
        g_autoptr(JsonObject) body = dv_test_json_object(j);
        g_autoptr(JsonObject) job =
            dv_engine_vm_migrate(engine, name, body, DV_ACTOR_NAMED("tester"), &error);
        g_autoptr(JsonObject) done = NULL;
        const char *job_id = dv_json_get_string(job, "id", "");
        gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
        gint64 t_cancel;
        double latency;

        g_assert_no_error(error);
        for (;;) {
            g_autoptr(JsonObject) jr =
                dv_store_get(dv_core(engine)->store, &dv_table_jobs, job_id, NULL);
            if (jr != NULL && dv_json_get_int(jr, "progress", 0) > 6)
                break;
            g_assert_cmpint(g_get_monotonic_time(), <, deadline);
            g_usleep(100 * 1000);
        }
        t_cancel = g_get_monotonic_time();
        {
            g_autoptr(JsonObject) c = dv_engine_job_cancel(engine, job_id, &error);
            g_assert_no_error(error);
        }
        done = dv_test_engine_job_row(engine, job, JOB_WAIT_MS);
        latency = (g_get_monotonic_time() - t_cancel) / (double)G_USEC_PER_SEC;
        g_assert_cmpstr(dv_json_get_string(done, "state", ""), ==, "cancelled");
        g_assert_cmpfloat(latency, <, 5.0);
        assert_runs_on(vb, uuid);
        assert_absent(va, uuid);
        g_assert_false(g_file_test(disk_a, G_FILE_TEST_EXISTS));
        g_assert_true(g_file_test(disk_b, G_FILE_TEST_EXISTS));
        {
            g_autoptr(JsonObject) vm = row(engine, DV_KIND_VM, name);
            g_autoptr(JsonObject) b = row(engine, DV_KIND_HOST, hb);
            g_assert_cmpstr(dv_json_get_string(vm, "host_id", ""), ==,
                            dv_json_get_string(b, "id", ""));
        }
        t = ticks_wait(log, t, 2);
        g_printerr("# cancel at 1 MiB/s: the job ended %.2f s after the cancel\n", latency);
    }

    /* B -> A. */
    {
        g_autofree char *j = g_strdup_printf("{\"to\":\"%s\"}", ha);
        g_autoptr(JsonObject) done = migrate(engine, name, j, &s_back);
        g_autoptr(JsonObject) vm = row(engine, DV_KIND_VM, name);
        g_autoptr(JsonObject) a = row(engine, DV_KIND_HOST, ha);
        g_assert_cmpstr(dv_json_get_string(vm, "host_id", ""), ==, dv_json_get_string(a, "id", ""));
        assert_runs_on(va, uuid);
        assert_absent(vb, uuid);
        g_assert_true(g_file_test(disk_a, G_FILE_TEST_EXISTS));
        g_assert_false(g_file_test(disk_b, G_FILE_TEST_EXISTS));
        t = ticks_wait(log, t, 2);
        g_printerr("# B -> A (copy-all): %.2f s; the counter went on to %" G_GINT64_FORMAT "\n",
                   s_back, t);
    }
    /* The catalog machine A -> B: its base is in B's pool, so only the
     * overlay moves, made on B's base; its machine row follows. */
    {
        g_autoptr(JsonObject) a = row(engine, DV_KIND_HOST, ha);
        g_autoptr(JsonObject) b = row(engine, DV_KIND_HOST, hb);
        g_autoptr(JsonObject) vm = row(engine, DV_KIND_VM, name4);
        g_autoptr(JsonObject) done = NULL;
        g_autoptr(JsonObject) m = NULL;
        DvStore *store = dv_core(engine)->store;
        const char *aid = dv_json_get_string(a, "id", "");
        const char *bid = dv_json_get_string(b, "id", "");
        g_autofree char *jc = g_strdup_printf(
            "{\"id\":\"%scatid\",\"name\":\"%scatalog\",\"catalog_type\":\"persistent\","
            "\"state\":\"ready\",\"master_vm_id\":null,\"master_vm_name\":\"m\","
            "\"master_snapshot\":\"s\",\"target_kind\":\"hosts\",\"target_id\":null,"
            "\"host_ids\":[\"%s\",\"%s\"],\"pool_name\":\"%s\",\"machine_spec\":{},"
            "\"naming_scheme\":\"%scat#\",\"next_index\":2,\"guest_os_profile_id\":null,"
            "\"personal_disk_mib\":0,\"current_image_id\":\"%simg\",\"job_id\":null,"
            "\"created_at\":1,\"updated_at\":1}",
            prefix, prefix, aid, bid, pool, prefix, prefix);
        g_autofree char *ji = g_strdup_printf(
            "{\"id\":\"%simg\",\"catalog_id\":\"%scatid\",\"version\":1,"
            "\"master_vm_id\":null,\"master_snapshot\":\"s\",\"is_current\":true,"
            "\"created_at\":1,\"state\":\"ready\",\"previous_image_id\":null}",
            prefix, prefix);
        const char *hosts[] = { aid, bid };
        g_autofree char *mach_id = g_strdup_printf("%smach", prefix);
        g_autofree char *cat_id = g_strdup_printf("%scatid", prefix);
        const char *paths[] = { base_a, base_b };
        gint64 moved, overlay;
        JsonObject *result;

        insert_json(store, &dv_table_catalogs, jc);
        insert_json(store, &dv_table_catalog_images, ji);
        for (guint i = 0; i < 2; i++) {
            g_autofree char *jb = g_strdup_printf(
                "{\"id\":\"%sbase%u\",\"catalog_id\":\"%scatid\",\"image_id\":\"%simg\","
                "\"host_id\":\"%s\",\"pool_name\":\"%s\",\"volume_name\":\"%s\","
                "\"path\":\"%s\",\"format\":\"qcow2\",\"capacity\":8388608,"
                "\"state\":\"ready\",\"refcount\":1,\"created_at\":1,\"updated_at\":1}",
                prefix, i, prefix, prefix, hosts[i], pool, base_name, paths[i]);
            insert_json(store, &dv_table_catalog_bases, jb);
        }
        {
            g_autofree char *jm = g_strdup_printf(
                "{\"id\":\"%smach\",\"catalog_id\":\"%scatid\",\"name\":\"%s\","
                "\"name_index\":1,\"host_id\":\"%s\",\"vm_id\":\"%s\","
                "\"domain_uuid\":\"%s\",\"image_id\":\"%simg\",\"base_id\":\"%sbase0\","
                "\"overlay_path\":\"%s\",\"state\":\"ready\",\"created_at\":1,"
                "\"updated_at\":1}",
                prefix, prefix, name4, aid, dv_json_get_string(vm, "id", ""), uuid4, prefix,
                prefix, ov_a);
            insert_json(store, &dv_table_catalog_machines, jm);
        }
        refresh(engine, hb);
        {
            g_autofree char *j = g_strdup_printf("{\"to\":\"%s\"}", hb);
            double s_cat = 0;
            done = migrate(engine, name4, j, &s_cat);
            result = dv_json_get_object(done, "result");
            g_assert_cmpstr(dv_json_get_string(result, "storage", ""), ==, "copy-top");
            /* The destination's completed job counts no disk bytes (the
             * mirror is the source's): the source's last report does. */
            moved = MAX(dv_json_get_int(dv_json_get_object(result, "migration"), "disk_processed",
                                        -1),
                        dv_json_get_int(dv_json_get_object(dv_json_get_object(result, "migration"),
                                                           "completed"),
                                        "disk_processed", -1));
            {
                GStatBuf sb;
                g_assert_cmpint(g_stat(ov_b, &sb), ==, 0);
                overlay = (gint64)sb.st_blocks * 512;
            }
            g_printerr("# catalog machine A -> B (copy-top): %.2f s, disk bytes moved %" G_GINT64_FORMAT
                       " KiB, its overlay on B %" G_GINT64_FORMAT " KiB, base 8 MiB not moved\n",
                       s_cat, moved / 1024, overlay / 1024);
            /* The top's 1 MiB of data, within 10 %, never the 8 MiB base. */
            g_assert_cmpint(moved, >=, 1 << 20);
            g_assert_cmpint(moved, <=, (1 << 20) + (1 << 20) / 10);
        }
        assert_runs_on(vb, uuid4);
        assert_absent(va, uuid4);
        g_assert_false(g_file_test(ov_a, G_FILE_TEST_EXISTS));
        g_assert_true(g_file_test(base_a, G_FILE_TEST_EXISTS));
        m = dv_store_get(store, &dv_table_catalog_machines, mach_id, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(dv_json_get_string(m, "host_id", ""), ==, bid);
        g_assert_cmpstr(dv_json_get_string(m, "overlay_path", ""), ==, ov_b);
        g_assert_cmpstr(dv_json_get_string(m, "catalog_id", ""), ==, cat_id);
        g_assert_true(g_str_has_suffix(dv_json_get_string(m, "base_id", ""), "base1"));
        /* Its console is not read: in the one run that waited for it, this
         * third guest printed nothing within 90 s (not investigated). */
    }

    /* The second guest A -> B on shared storage: nothing copied, its file
     * stays where both see it (VIR_MIGRATE_UNSAFE: one machine's dir). */
    {
        g_autofree char *j = g_strdup_printf("{\"to\":\"%s\"}", hb);
        double s_shared = 0;
        g_autoptr(JsonObject) done = NULL;
        g_autoptr(JsonObject) vm = NULL;
        g_autoptr(JsonObject) b = row(engine, DV_KIND_HOST, hb);
        gint64 t2 = ticks_wait(log2, -1, 1);
        dv_core(engine)->migration_allow_unsafe = TRUE;
        done = migrate(engine, name2, j, &s_shared);
        g_assert_cmpstr(dv_json_get_string(dv_json_get_object(done, "result"), "storage", ""), ==,
                        "shared");
        vm = row(engine, DV_KIND_VM, name2);
        g_assert_cmpstr(dv_json_get_string(vm, "host_id", ""), ==, dv_json_get_string(b, "id", ""));
        assert_runs_on(vb, uuid2);
        assert_absent(va, uuid2);
        g_assert_true(g_file_test(disk_s, G_FILE_TEST_EXISTS));
        t2 = ticks_wait(log2, t2, 2);
        g_printerr("# A -> B (shared): %.2f s\n", s_shared);
    }
    dv_test_engine_on_backend_free(g_steal_pointer(&engine), g_steal_pointer(&tmpdir),
                                   g_steal_pointer(&pgname));
}

/* The case's "<prefix>shared" pool on both daemons (transient: stopping
 * removes it), whatever the case left. */
static void
shared_pool_remove(const char *prefix, const char *b_uri)
{
    g_autofree char *spool = g_strconcat(prefix, "shared", NULL);
    const char *uris[] = { DV_TEST_SYSTEM_URI, b_uri };
    for (guint i = 0; i < G_N_ELEMENTS(uris); i++) {
        g_autoptr(DvVirtHost) vh = dv_virt_host_get(the_virt, "cleanup", uris[i]);
        (void)dv_virt_pool_set_active(vh, spool, FALSE, NULL, NULL); /* gone already: fine */
    }
}

static void
run_isolated(gconstpointer data)
{
    DvTestBackend backend = GPOINTER_TO_INT(data);
    g_autofree char *prefix =
        dv_test_system_prefix_new("dvmig", g_test_subprocess() ? getppid() : getpid());
    g_autofree char *dir = dv_test_system_dir_new(prefix);
    const char *b_uri = env_required("DV_TEST_LIBVIRTD2_URI");
    static gboolean built;

    if (g_test_subprocess()) {
        case_migrate(prefix, dir, backend);
        return;
    }
    if (!dv_test_system_check_daemon(the_virt))
        return;
    if (!built) {
        dv_test_tiny_guest_build(DV_BUILD_TINY_GUEST,
                                 dv_test_tiny_guest_dir(DV_TINY_GUEST_CACHE_DIR), NULL);
        built = TRUE;
    }
    dv_test_system_cleanup_uri(the_virt, b_uri, prefix, NULL);
    shared_pool_remove(prefix, b_uri);
    dv_test_system_cleanup(the_virt, prefix, dir);
    g_assert_cmpint(g_mkdir(dir, 0755), ==, 0);
    g_chmod(dir, 0755);
    g_test_trap_subprocess(NULL, 280 * G_USEC_PER_SEC,
                           G_TEST_SUBPROCESS_INHERIT_STDOUT | G_TEST_SUBPROCESS_INHERIT_STDERR);
    dv_test_system_cleanup_uri(the_virt, b_uri, prefix, NULL);
    shared_pool_remove(prefix, b_uri);
    dv_test_system_cleanup(the_virt, prefix, dir);
    g_test_trap_assert_passed();
}

int
main(int argc, char **argv)
{
    const char *const socket_param[] = { "socket", NULL };
    int rc;

    g_test_init(&argc, &argv, NULL);
    the_virt = dv_virt_new();
    dv_virt_set_uri_policy(the_virt, FALSE, socket_param);
    g_test_add_data_func("/drover/engine/migrate-system/sqlite",
                         GINT_TO_POINTER(DV_TEST_BACKEND_SQLITE), run_isolated);
    g_test_add_data_func("/drover/engine/migrate-system/postgresql",
                         GINT_TO_POINTER(DV_TEST_BACKEND_PG), run_isolated);
    rc = g_test_run();
    dv_virt_free(the_virt);
    return rc;
}
