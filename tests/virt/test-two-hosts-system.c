/* Live migration between two libvirt daemons on this machine (issue 14's
 * groundwork): the system libvirtd (qemu:///system) and a second, private
 * one that tests/services/with-second-libvirtd starts around this program
 * (its URIs in DV_TEST_LIBVIRTD2_URI and, as the second daemon reaches the
 * system one, DV_TEST_LIBVIRTD2_SYSTEM_URI).  QEMU runs under TCG.
 *
 * The guest is the tiny guest's kernel and initramfs with a script on the
 * kernel command line that prints "DROVER-TICK N" every second on its
 * serial console, a file opened in append mode on a directory both daemons
 * see (/tmp): the log shows whether the guest kept running through a
 * migration (the counter goes on by one) or restarted (it starts again at
 * 0).
 *
 *  - shared:        the disk in the shared dir; there and back with
 *                   dv_virt_domain_migrate(), progress reported, persistent
 *                   on the target, gone from the source;
 *  - copy-storage:  an overlay on a base both see, copied top only
 *                   (COPY_TOP) into another dir, then back whole (COPY_ALL)
 *                   into a third, each target pre-created, the new paths
 *                   given as the destination XML;
 *  - cancel:        a migration capped at 1 MiB/s cancelled after its first
 *                   progress report: DV_ERROR_CANCELLED within 5 s, the guest
 *                   runs on where it was, nothing on the target; then one
 *                   that outlives its 3 s timeout: DV_ERROR_TIMEOUT, the same;
 *  - target-lost:   the target's libvirtd stopped before, and SIGKILLed
 *                   during a migration: UNAVAILABLE naming the target, the
 *                   guest runs on at the source, the orphaned incoming QEMU
 *                   goes with the daemon's stop;
 *  - refusals:      bad arguments named, on a test:/// host.
 *
 * Each case runs in a child process; the parent removes the domains named
 * after the case from both daemons and its dir afterwards, pass or fail.
 * Timings are printed as TAP comments (docs/VIRT.md "Migration"). */
#define G_LOG_DOMAIN "DvTestTwoHosts"

#include "dv-virt-private.h"
#include "dv-test-system.h"
#include "dv-test-util.h"

#include "dv-json.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIB (G_GUINT64_CONSTANT(1) << 20)
#define TICK_WAIT_S 90

/* No double quotes: the kernel command line quotes the script. */
#define GUEST_TICKER                                                                               \
    "i=0; while true; do echo DROVER-TICK $i; i=$((i+1)); /bin/busybox sleep 1; done"

static DvVirt *the_virt;
/* The child's findings file: g_test_message() in a child process goes
 * nowhere, so the parent prints these lines after the case. */
static char *the_findings;

static void G_GNUC_PRINTF(1, 2) finding(const char *format, ...)
{
    va_list ap;
    g_autofree char *line = NULL;
    FILE *f;

    va_start(ap, format);
    line = g_strdup_vprintf(format, ap);
    va_end(ap);
    g_test_message("%s", line);
    if (the_findings == NULL)
        return;
    f = fopen(the_findings, "a");
    g_assert_nonnull(f);
    fprintf(f, "%s\n", line);
    fclose(f);
}

typedef struct {
    const char *prefix;
    const char *dir;
    DvVirtHost *a;     /* the system daemon */
    DvVirtHost *b;     /* the second daemon */
    const char *b_uri; /* B as A (and this process) reach it */
    const char *a_uri; /* A as B reaches it */
} Hosts;

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

static void
hosts_init(Hosts *h, const char *prefix, const char *dir)
{
    h->prefix = prefix;
    h->dir = dir;
    h->b_uri = env_required("DV_TEST_LIBVIRTD2_URI");
    h->a_uri = env_required("DV_TEST_LIBVIRTD2_SYSTEM_URI");
    h->a = dv_virt_host_get(the_virt, "host-a", DV_TEST_SYSTEM_URI);
    h->b = dv_virt_host_get(the_virt, "host-b", h->b_uri);
}

static void
hosts_clear(Hosts *h)
{
    g_clear_pointer(&h->a, dv_virt_host_unref);
    g_clear_pointer(&h->b, dv_virt_host_unref);
}

static char *
guest_copy(const char *dir, const char *name)
{
    g_autofree char *src =
        g_build_filename(dv_test_tiny_guest_dir(DV_TINY_GUEST_CACHE_DIR), name, NULL);
    char *dst = g_build_filename(dir, name, NULL);
    dv_test_copy_file(src, dst);
    return dst;
}

static void
run_cmd(const char *const *argv)
{
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    gint status = -1;
    g_autoptr(GError) error = NULL;

    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out,
                               &err, &status, &error));
    g_assert_no_error(error);
    if (!g_spawn_check_wait_status(status, NULL))
        g_error("%s failed: %s", argv[0], err);
}

/* A qcow2 file (compat 1.1) of @size bytes, or an overlay on @backing. */
static void
qcow2_create(const char *path, guint64 size, const char *backing)
{
    g_autofree char *sz = g_strdup_printf("%" G_GUINT64_FORMAT, size);
    if (backing != NULL) {
        const char *argv[] = { "qemu-img", "create", "-q", "-f",    "qcow2", "-o", "compat=1.1",
                               "-F",       "qcow2",  "-b", backing, path,    NULL };
        run_cmd(argv);
    } else {
        const char *argv[] = { "qemu-img", "create",     "-q", "-f", "qcow2",
                               "-o",       "compat=1.1", path, sz,   NULL };
        run_cmd(argv);
    }
    g_chmod(path, 0666);
}

/* Defines and starts the ticking guest on @h->a with its disk @disk;
 * returns its UUID. */
static char *
guest_start(Hosts *h, const char *disk, const char *log)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *name = g_strconcat(h->prefix, "vm", NULL);
    g_autofree char *kernel = guest_copy(h->dir, "vmlinuz");
    g_autofree char *initrd = guest_copy(h->dir, "initrd.img");
    g_autofree char *cmdline =
        g_strdup_printf("console=ttyS0 quiet rdinit=/bin/busybox -- sh -c \"%s\"", GUEST_TICKER);
    g_autoptr(JsonObject) spec = json_object_new();
    g_autofree char *xml = NULL;
    char *uuid;
    JsonArray *disks = json_array_new();
    JsonObject *d = json_object_new();

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
    g_assert_nonnull(strstr(xml, "append=\"on\""));
    uuid = dv_virt_domain_define(h->a, xml, NULL, &error);
    g_assert_no_error(error);
    g_assert_true(dv_virt_domain_start(h->a, uuid, NULL, &error));
    g_assert_no_error(error);
    return uuid;
}

/* The ticks in @log, checked to count up by one from 0 without a restart
 * or a gap; returns the last one (-1: none yet). */
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
        gint64 n;
        char *end = NULL;

        if (at == NULL)
            continue;
        n = g_ascii_strtoll(at + strlen("DROVER-TICK "), &end, 10);
        if (end == NULL || (*end != '\0' && *end != '\r'))
            continue; /* the line being written */
        if (n != last + 1)
            g_error("the guest's counter went from %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT
                    " in %s: it restarted or lost time",
                    last, n, log);
        last = n;
    }
    return last;
}

/* Waits until the guest has ticked @more times past @after. */
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
    g_error("the guest did not tick past %" G_GINT64_FORMAT " within %d s (last %" G_GINT64_FORMAT
            ")",
            after + more, TICK_WAIT_S, last);
}

static void
assert_runs_on(DvVirtHost *host, const char *uuid)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) dom = dv_virt_domain_get(host, uuid, NULL, &error);
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) d = NULL;

    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(dom, "state", ""), ==, "running");
    /* Persistent there: a definition that survives the QEMU process. */
    g_assert_true(dv_virt_op_begin(&op, host, NULL, &error));
    d = dv_virt_domain_lookup(&op, uuid, &error);
    g_assert_no_error(error);
    g_assert_cmpint(virDomainIsPersistent(d), ==, 1);
}

static void
assert_absent(DvVirtHost *host, const char *uuid)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) dom = dv_virt_domain_get(host, uuid, NULL, &error);

    g_assert_null(dom);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
}

typedef struct {
    guint calls;
    gint64 last_percent;
    gint64 max_processed;
    GCancellable *cancel_at_first; /* cancels once data moved */
    gint64 cancelled_at;
} Progress;

static void
on_progress(JsonObject *stats, gpointer user_data)
{
    Progress *p = user_data;
    gint64 percent = dv_json_get_int(stats, "percent", -1);
    gint64 processed = dv_json_get_int(stats, "data_processed", 0);

    g_assert_cmpint(percent, >=, 0);
    g_assert_cmpint(percent, <=, 99);
    p->calls++;
    p->last_percent = percent;
    p->max_processed = MAX(p->max_processed, processed);
    if (p->cancel_at_first != NULL && processed > 0 && p->cancelled_at == 0) {
        p->cancelled_at = g_get_monotonic_time();
        g_cancellable_cancel(p->cancel_at_first);
    }
}

static JsonObject *
migrate_ok(DvVirtHost *from, const char *uuid, const char *to_uri, DvVirtMigrateParams *mp,
           const char *what)
{
    g_autoptr(GError) error = NULL;
    Progress p = { 0 };
    JsonObject *done;

    mp->progress_interval_ms = 200;
    mp->timeout_ms = 120000;
    done = dv_virt_domain_migrate(from, uuid, to_uri, mp, on_progress, &p, NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(done);
    g_assert_cmpint(dv_json_get_int(done, "percent", 0), ==, 100);
    g_assert_cmpint(dv_json_get_int(done, "samples", -1), ==, p.calls);
    {
        JsonObject *c = dv_json_get_object(done, "completed");
        finding(
            "%s: %" G_GINT64_FORMAT " ms, %u progress reports, memory %" G_GINT64_FORMAT
            " KiB and disks %" G_GINT64_FORMAT " KiB moved (last report: disks %" G_GINT64_FORMAT
            " of %" G_GINT64_FORMAT " KiB), downtime %" G_GINT64_FORMAT " ms",
            what, dv_json_get_int(done, "elapsed_ms", -1), p.calls,
            dv_json_get_int(c, "memory_processed", 0) / 1024,
            dv_json_get_int(c, "disk_processed", 0) / 1024,
            dv_json_get_int(done, "disk_processed", 0) / 1024,
            dv_json_get_int(done, "disk_total", 0) / 1024, dv_json_get_int(done, "downtime", -1));
    }
    return done;
}

/* ---- shared storage ---------------------------------------------------- */

static void
test_shared(const char *prefix, const char *dir)
{
    Hosts h = { 0 };
    g_autofree char *disk = NULL;
    g_autofree char *log = g_build_filename(dir, "serial.log", NULL);
    g_autofree char *uuid = NULL;
    g_autoptr(JsonObject) there = NULL;
    g_autoptr(JsonObject) back = NULL;
    gint64 tick;
    gint64 t0;

    hosts_init(&h, prefix, dir);
    disk = guest_copy(dir, "master.qcow2");
    g_chmod(disk, 0666);
    t0 = g_get_monotonic_time();
    uuid = guest_start(&h, disk, log);
    tick = ticks_wait(log, -1, 3);
    finding("boot to the 4th tick: %.1f s", (g_get_monotonic_time() - t0) / 1e6);

    {
        DvVirtMigrateParams mp = { .allow_unsafe = TRUE, .dest_host = h.b };
        there = migrate_ok(h.a, uuid, h.b_uri, &mp, "shared A->B");
    }
    assert_runs_on(h.b, uuid);
    assert_absent(h.a, uuid);
    g_assert_true(json_object_has_member(there, "downtime"));
    tick = ticks_wait(log, ticks_last(log), 3);

    {
        DvVirtMigrateParams mp = { .allow_unsafe = TRUE, .dest_host = h.a };
        back = migrate_ok(h.b, uuid, h.a_uri, &mp, "shared B->A");
    }
    assert_runs_on(h.a, uuid);
    assert_absent(h.b, uuid);
    tick = ticks_wait(log, ticks_last(log), 3);
    finding("the guest ticked %" G_GINT64_FORMAT " times without a restart", tick);

    {
        g_autoptr(GError) error = NULL;
        g_assert_true(dv_virt_domain_delete(h.a, uuid, FALSE, NULL, &error));
        g_assert_no_error(error);
    }
    hosts_clear(&h);
}

/* ---- storage copied ---------------------------------------------------- */

/* The running domain's definition for a migration with one disk moved. */
static char *
dest_xml_new(DvVirtHost *host, const char *uuid, const char *from, const char *to)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) paths = json_object_new();
    char *xml;

    json_object_set_string_member(paths, from, to);
    xml = dv_virt_domain_get_migratable_xml(host, uuid, paths, NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(strstr(xml, to));
    g_assert_null(strstr(xml, from));
    g_assert_null(strstr(xml, "<backingStore"));
    return xml;
}

static void
test_copy_storage(const char *prefix, const char *dir)
{
    Hosts h = { 0 };
    g_autofree char *base = NULL;
    g_autofree char *log = g_build_filename(dir, "serial.log", NULL);
    g_autofree char *src_dir = g_build_filename(dir, "a", NULL);
    g_autofree char *dst_dir = g_build_filename(dir, "b", NULL);
    g_autofree char *back_dir = g_build_filename(dir, "a2", NULL);
    g_autofree char *top = g_build_filename(src_dir, "top.qcow2", NULL);
    g_autofree char *top_b = g_build_filename(dst_dir, "top.qcow2", NULL);
    g_autofree char *full_a = g_build_filename(back_dir, "full.qcow2", NULL);
    g_autofree char *uuid = NULL;
    g_autoptr(JsonObject) there = NULL;
    g_autoptr(JsonObject) back = NULL;

    hosts_init(&h, prefix, dir);
    base = guest_copy(dir, "master.qcow2");
    g_chmod(base, 0644);
    g_assert_cmpint(g_mkdir(src_dir, 0755), ==, 0);
    g_assert_cmpint(g_mkdir(dst_dir, 0755), ==, 0);
    g_assert_cmpint(g_mkdir(back_dir, 0755), ==, 0);
    /* The base is on storage both hosts have (a catalog's base in each
     * host's pool); the overlay only in A's directory. */
    qcow2_create(top, 0, base);
    /* 1 MiB of its own in the overlay (the guest never reads it). */
    {
        const char *argv[] = { "qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 8M 1M", top, NULL };
        run_cmd(argv);
    }
    uuid = guest_start(&h, top, log);
    (void)ticks_wait(log, -1, 3);
    /* Paths that are no disk of the domain, and relative new paths. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) paths = json_object_new();
        g_autofree char *xml = NULL;

        json_object_set_string_member(paths, "/nowhere.qcow2", top_b);
        xml = dv_virt_domain_get_migratable_xml(h.a, uuid, paths, NULL, &error);
        g_assert_null(xml);
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_assert_true(g_str_has_prefix(error->message, "disk_paths:"));
        g_clear_error(&error);
        json_object_remove_member(paths, "/nowhere.qcow2");
        json_object_set_string_member(paths, top, "relative.qcow2");
        xml = dv_virt_domain_get_migratable_xml(h.a, uuid, paths, NULL, &error);
        g_assert_null(xml);
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_assert_true(g_str_has_prefix(error->message, "disk_paths:"));
    }

    /* Top only: B has its own overlay on the same base, empty. */
    qcow2_create(top_b, 0, base);
    {
        g_autofree char *xml = dest_xml_new(h.a, uuid, top, top_b);
        DvVirtMigrateParams mp = {
            .storage = DV_VIRT_MIGRATE_COPY_TOP,
            .dest_xml = xml,
            .dest_host = h.b,
        };
        there = migrate_ok(h.a, uuid, h.b_uri, &mp, "copy-top A->B");
    }
    /* Only the overlay moved, never the 16 MiB base (when the last report
     * came late enough to show the copy). */
    g_assert_cmpint(dv_json_get_int(there, "disk_total", 0), <, 2 * MIB);
    {
        /* B's overlay now holds A's data (A's QEMU is gone; B's runs). */
        const char *argv[] = { "qemu-img", "compare", "-q", "-U",  "-f", "qcow2",
                               "-F",       "qcow2",   top,  top_b, NULL };
        run_cmd(argv);
    }
    assert_runs_on(h.b, uuid);
    assert_absent(h.a, uuid);
    {
        g_autoptr(GError) error = NULL;
        g_autofree char *live = dv_virt_domain_get_xml(h.b, uuid, FALSE, NULL, &error);
        g_autofree char *persistent = dv_virt_domain_get_xml(h.b, uuid, TRUE, NULL, &error);
        g_assert_no_error(error);
        g_assert_nonnull(strstr(live, top_b));
        g_assert_nonnull(strstr(persistent, top_b));
        g_assert_null(strstr(persistent, top));
    }
    (void)ticks_wait(log, ticks_last(log), 3);

    /* Whole disk back into a fresh file on A: no backing file there. */
    qcow2_create(full_a, 16 * MIB, NULL);
    {
        g_autofree char *xml = dest_xml_new(h.b, uuid, top_b, full_a);
        const char *const disks[] = { "vda", NULL };
        DvVirtMigrateParams mp = {
            .storage = DV_VIRT_MIGRATE_COPY_ALL,
            .disks = disks,
            .dest_xml = xml,
            .dest_host = h.a,
        };

        back = migrate_ok(h.b, uuid, h.a_uri, &mp, "copy-all B->A");
    }
    assert_runs_on(h.a, uuid);
    assert_absent(h.b, uuid);
    (void)ticks_wait(log, ticks_last(log), 3);
    {
        g_autoptr(GError) error = NULL;
        g_autofree char *live = dv_virt_domain_get_xml(h.a, uuid, FALSE, NULL, &error);
        g_assert_no_error(error);
        g_assert_nonnull(strstr(live, full_a));
        g_assert_true(dv_virt_domain_delete(h.a, uuid, FALSE, NULL, &error));
        g_assert_no_error(error);
    }
    /* The copy holds the master's data (image-version and all): the same
     * content as base + overlay. */
    {
        const char *argv[] = { "qemu-img", "compare", "-q", "-f",   "qcow2",
                               "-F",       "qcow2",   top,  full_a, NULL };
        run_cmd(argv);
    }
    hosts_clear(&h);
}

/* ---- cancel ------------------------------------------------------------- */

static void
test_cancel(const char *prefix, const char *dir)
{
    Hosts h = { 0 };
    g_autoptr(GError) error = NULL;
    g_autofree char *disk = NULL;
    g_autofree char *log = g_build_filename(dir, "serial.log", NULL);
    g_autofree char *uuid = NULL;
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    g_autoptr(JsonObject) done = NULL;
    DvVirtMigrateParams mp = {
        .allow_unsafe = TRUE,
        .bandwidth_mib_s = 1,
        .progress_interval_ms = 200,
        .timeout_ms = 120000,
    };
    Progress p = { 0 };
    gint64 took_ms;

    hosts_init(&h, prefix, dir);
    disk = guest_copy(dir, "master.qcow2");
    g_chmod(disk, 0666);
    uuid = guest_start(&h, disk, log);
    (void)ticks_wait(log, -1, 2);

    p.cancel_at_first = cancel;
    done = dv_virt_domain_migrate(h.a, uuid, h.b_uri, &mp, on_progress, &p, cancel, &error);
    g_assert_null(done);
    g_assert_error(error, DV_ERROR, DV_ERROR_CANCELLED);
    g_assert_cmpint(p.cancelled_at, >, 0);
    took_ms = (g_get_monotonic_time() - p.cancelled_at) / 1000;
    finding("cancel: %" G_GINT64_FORMAT " ms from cancel to return, %" G_GINT64_FORMAT
            " KiB moved first; %s",
            took_ms, p.max_processed / 1024, error->message);
    g_assert_cmpint(took_ms, <, 5000);
    g_clear_error(&error);

    assert_runs_on(h.a, uuid);
    assert_absent(h.b, uuid);
    (void)ticks_wait(log, ticks_last(log), 3);

    /* A migration that cannot finish in time (68 MiB at 1 MiB/s, 3 s
     * allowed) is aborted the same way. */
    {
        gint64 t0 = g_get_monotonic_time();
        gint64 took;

        mp.timeout_ms = 3000;
        done = dv_virt_domain_migrate(h.a, uuid, h.b_uri, &mp, NULL, NULL, NULL, &error);
        took = (g_get_monotonic_time() - t0) / 1000;
        g_assert_null(done);
        g_assert_error(error, DV_ERROR, DV_ERROR_TIMEOUT);
        g_assert_nonnull(strstr(error->message, "within 3000 ms"));
        finding("timeout: returned after %" G_GINT64_FORMAT " ms (3000 allowed); %s", took,
                error->message);
        g_assert_cmpint(took, >=, 3000);
        g_assert_cmpint(took, <, 3000 + 5000);
        g_clear_error(&error);
    }
    assert_runs_on(h.a, uuid);
    assert_absent(h.b, uuid);
    (void)ticks_wait(log, ticks_last(log), 3);
    g_assert_true(dv_virt_domain_delete(h.a, uuid, FALSE, NULL, &error));
    g_assert_no_error(error);
    hosts_clear(&h);
}

/* ---- the target lost ---------------------------------------------------- */

/* One variable of second-libvirtd's env file in @d. */
static char *
daemon_env_get(const char *d, const char *var)
{
    g_autofree char *env = g_build_filename(d, "env", NULL);
    g_autofree char *text = NULL;
    g_autofree char *key = g_strdup_printf("export %s='", var);
    const char *at;
    const char *end;

    g_assert_true(g_file_get_contents(env, &text, NULL, NULL));
    at = strstr(text, key);
    g_assert_nonnull(at);
    at += strlen(key);
    end = strchr(at, '\'');
    g_assert_nonnull(end);
    return g_strndup(at, end - at);
}

/* A daemon of the case's own (the shared second one must live on) in @d;
 * returns its URI. */
static char *
own_daemon_start(const char *d)
{
    const char *start[] = { DV_SECOND_LIBVIRTD, "start", d, NULL };

    run_cmd(start);
    return daemon_env_get(d, "DV_TEST_LIBVIRTD2_URI");
}

static void
own_daemon_stop(const char *d)
{
    const char *stop[] = { DV_SECOND_LIBVIRTD, "stop", d, NULL };
    run_cmd(stop);
}

typedef struct {
    Progress p;
    pid_t kill_pid;
} KillAtFirst;

static void
on_progress_kill(JsonObject *stats, gpointer user_data)
{
    KillAtFirst *k = user_data;

    on_progress(stats, &k->p);
    if (k->kill_pid > 0 && dv_json_get_int(stats, "data_processed", 0) > 0) {
        k->p.cancelled_at = g_get_monotonic_time();
        g_assert_cmpint(kill(k->kill_pid, SIGKILL), ==, 0);
        k->kill_pid = 0;
    }
}

/* The target's libvirtd stopped before the migration, then killed during
 * one (SIGKILL: its incoming QEMU is left without a daemon): the call fails
 * in seconds, and the guest runs on, still counting, on the source. */
static void
test_target_lost(const char *prefix, const char *dir)
{
    Hosts h = { 0 };
    g_autoptr(GError) error = NULL;
    g_autofree char *disk = NULL;
    g_autofree char *log = g_build_filename(dir, "serial.log", NULL);
    g_autofree char *d3 = g_build_filename(dir, "d3", NULL);
    g_autofree char *uuid = NULL;
    g_autofree char *c_uri = NULL;
    g_autofree char *c_pid = NULL;
    g_autoptr(JsonObject) done = NULL;
    DvVirtMigrateParams mp = {
        .allow_unsafe = TRUE,
        .bandwidth_mib_s = 1,
        .progress_interval_ms = 200,
        .timeout_ms = 120000,
    };
    KillAtFirst k = { { 0 }, 0 };
    gint64 t0;

    hosts_init(&h, prefix, dir);
    disk = guest_copy(dir, "master.qcow2");
    g_chmod(disk, 0666);
    uuid = guest_start(&h, disk, log);
    (void)ticks_wait(log, -1, 2);

    /* Stopped before: refused at once. */
    c_uri = own_daemon_start(d3);
    own_daemon_stop(d3);
    t0 = g_get_monotonic_time();
    done = dv_virt_domain_migrate(h.a, uuid, c_uri, &mp, NULL, NULL, NULL, &error);
    g_assert_null(done);
    g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
    g_assert_nonnull(strstr(error->message, c_uri));
    finding("target stopped before: %s (code %d) after %" G_GINT64_FORMAT " ms", error->message,
            error->code, (g_get_monotonic_time() - t0) / 1000);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 10 * G_USEC_PER_SEC);
    g_clear_error(&error);
    assert_runs_on(h.a, uuid);

    /* Killed during, once memory is moving. */
    dv_test_system_remove_tree(d3);
    g_free(c_uri);
    c_uri = own_daemon_start(d3);
    {
        g_autofree char *pid = daemon_env_get(d3, "DV_TEST_LIBVIRTD2_PID");
        k.kill_pid = (pid_t)g_ascii_strtoll(pid, NULL, 10);
        g_assert_cmpint(k.kill_pid, >, 1);
    }
    done = dv_virt_domain_migrate(h.a, uuid, c_uri, &mp, on_progress_kill, &k, NULL, &error);
    g_assert_null(done);
    g_assert_nonnull(error);
    g_assert_nonnull(strstr(error->message, c_uri));
    g_assert_cmpint(k.p.cancelled_at, >, 0);
    finding("target killed during: %s (code %d) %" G_GINT64_FORMAT " ms after the kill",
            error->message, error->code, (g_get_monotonic_time() - k.p.cancelled_at) / 1000);
    g_assert_cmpint(g_get_monotonic_time() - k.p.cancelled_at, <, 30 * G_USEC_PER_SEC);
    g_clear_error(&error);
    /* Its incoming QEMU, left behind by the killed daemon, goes with the
     * stop: the guest then runs on exactly one host. */
    {
        g_autofree char *name = g_strconcat(prefix, "vm.pid", NULL);
        g_autofree char *qpid_file = g_build_filename(d3, "run", "qemu", name, NULL);
        g_autofree char *qpid = NULL;
        pid_t q = 0;

        if (g_file_get_contents(qpid_file, &qpid, NULL, NULL))
            q = (pid_t)g_ascii_strtoll(qpid, NULL, 10);
        finding("target killed during: its incoming QEMU %s",
                q > 0 ? "was left running" : "had not started");
        own_daemon_stop(d3);
        if (q > 0) {
            g_usleep(200 * 1000);
            g_assert_cmpint(kill(q, 0), !=, 0);
        }
    }
    assert_runs_on(h.a, uuid);
    (void)ticks_wait(log, ticks_last(log), 3);
    g_assert_true(dv_virt_domain_delete(h.a, uuid, FALSE, NULL, &error));
    g_assert_no_error(error);
    hosts_clear(&h);
}

/* ---- refusals (test:/// host, no daemon) -------------------------------- */

static void
test_refusals(void)
{
    g_autoptr(DvVirt) virt = dv_virt_new();
    g_autoptr(DvVirtHost) host = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) done = NULL;
    const char *const socket_param[] = { "socket", NULL };
    const char *const disks[] = { "vda", NULL };
    const char *const bad_disks[] = { "vda; rm", NULL };
    /* test:///default has one domain "test", running. */
    const char *uuid = "6695eb01-f6a4-8304-79aa-97f2502e193f";
    DvVirtMigrateParams mp = { 0 };

    dv_virt_set_uri_policy(virt, TRUE, socket_param);
    host = dv_virt_host_get(virt, "refusals", "test:///default");

    done = dv_virt_domain_migrate(host, "not-a-uuid", "qemu+ssh://b/system", NULL, NULL, NULL, NULL,
                                  &error);
    g_assert_null(done);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(error->message, "uuid"));
    g_clear_error(&error);

    done = dv_virt_domain_migrate(host, uuid, "qemu+ssh://b/system?no_verify=1&x=y", NULL, NULL,
                                  NULL, NULL, &error);
    g_assert_null(done);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(error->message, "uri"));
    g_clear_error(&error);

    done = dv_virt_domain_migrate(host, uuid, "test:///default", NULL, NULL, NULL, NULL, &error);
    g_assert_null(done);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(error->message, "own host"));
    g_clear_error(&error);

    mp.disks = disks;
    done = dv_virt_domain_migrate(host, uuid, "qemu+ssh://b/system", &mp, NULL, NULL, NULL, &error);
    g_assert_null(done);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_true(g_str_has_prefix(error->message, "disks:"));
    g_clear_error(&error);

    mp.storage = DV_VIRT_MIGRATE_COPY_ALL;
    mp.disks = bad_disks;
    done = dv_virt_domain_migrate(host, uuid, "qemu+ssh://b/system", &mp, NULL, NULL, NULL, &error);
    g_assert_null(done);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(error->message, "disks"));
    g_clear_error(&error);

    mp.disks = NULL;
    mp.migrate_uri = "rdma://x";
    done = dv_virt_domain_migrate(host, uuid, "qemu+ssh://b/system", &mp, NULL, NULL, NULL, &error);
    g_assert_null(done);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_true(g_str_has_prefix(error->message, "migrate_uri:"));
    g_clear_error(&error);

    /* A domain that does not run does not migrate live. */
    {
        g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
        g_autoptr(virDomain) d = NULL;
        g_assert_true(dv_virt_op_begin(&op, host, NULL, &error));
        d = dv_virt_domain_lookup(&op, uuid, &error);
        g_assert_no_error(error);
        g_assert_cmpint(virDomainDestroy(d), ==, 0);
    }
    done =
        dv_virt_domain_migrate(host, uuid, "qemu+ssh://b/system", NULL, NULL, NULL, NULL, &error);
    g_assert_null(done);
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_true(g_str_has_prefix(error->message, "state:"));
}

/* ---- the system daemon left alone --------------------------------------- */

static char *the_system_pid; /* /run/libvirtd.pid when the program started */

/* Runs first and last: the second daemon has its own host UUID, its mounts
 * never show in this (the host's) mount namespace, and the system daemon is
 * the same process at the end as at the start. */
static void
test_system_untouched(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *pid = NULL;
    g_autofree char *mounts = NULL;
    g_autofree char *caps = NULL;
    g_autoptr(DvVirtHost) a = dv_virt_host_get(the_virt, "host-a", DV_TEST_SYSTEM_URI);
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    const char *b_uuid = env_required("DV_TEST_LIBVIRTD2_HOST_UUID");
    const char *b_uri = env_required("DV_TEST_LIBVIRTD2_URI");

    g_assert_true(g_file_get_contents("/run/libvirtd.pid", &pid, NULL, &error));
    g_assert_no_error(error);
    g_strstrip(pid);
    if (the_system_pid == NULL)
        the_system_pid = g_strdup(pid);
    g_assert_cmpstr(pid, ==, the_system_pid);

    g_assert_true(dv_virt_op_begin(&op, a, NULL, &error));
    caps = virConnectGetCapabilities(op.conn);
    g_assert_nonnull(caps);
    g_assert_nonnull(strstr(caps, "<uuid>"));
    g_assert_null(strstr(caps, b_uuid));

    g_assert_true(g_file_get_contents("/proc/self/mountinfo", &mounts, NULL, &error));
    g_assert_no_error(error);
    g_assert_null(strstr(mounts, "/var/lib/libvirt "));
    g_assert_null(strstr(mounts, "/etc/libvirt "));
    g_assert_null(strstr(mounts, "system-run"));
    g_assert_nonnull(strstr(b_uri, "socket=/"));
}

/* ---- isolation ---------------------------------------------------------- */

typedef void (*CaseFunc)(const char *prefix, const char *dir);

static void
cleanup_both(const char *prefix, const char *dir)
{
    const char *b_uri = g_getenv("DV_TEST_LIBVIRTD2_URI");

    g_autofree char *d3 = g_build_filename(dir, "d3", NULL);
    g_autofree char *d3_pid = g_build_filename(d3, "libvirtd.pid", NULL);

    if (b_uri != NULL && b_uri[0] != '\0')
        dv_test_system_cleanup_uri(the_virt, b_uri, prefix, NULL);
    /* test_target_lost's own daemon, when the case died before stopping it
     * (stop also kills the QEMUs it left). */
    if (g_file_test(d3_pid, G_FILE_TEST_EXISTS))
        own_daemon_stop(d3);
    dv_test_system_cleanup(the_virt, prefix, dir);
}

static void
run_isolated(gconstpointer data)
{
    CaseFunc fn = (CaseFunc)data;
    g_autofree char *prefix =
        dv_test_system_prefix_new("dv2h", g_test_subprocess() ? getppid() : getpid());
    g_autofree char *dir = dv_test_system_dir_new(prefix);
    static gboolean built;

    g_autofree char *findings = g_strdup_printf("%s/%sfindings", g_get_tmp_dir(), prefix);

    if (g_test_subprocess()) {
        the_findings = g_steal_pointer(&findings);
        fn(prefix, dir);
        return;
    }
    /* The second daemon is required: never a skip. */
    (void)env_required("DV_TEST_LIBVIRTD2_URI");
    if (!dv_test_system_check_daemon(the_virt))
        return;
    if (!built) {
        dv_test_tiny_guest_build(DV_BUILD_TINY_GUEST,
                                 dv_test_tiny_guest_dir(DV_TINY_GUEST_CACHE_DIR), NULL);
        built = TRUE;
        g_test_message("second libvirtd started in %s ms", g_getenv("DV_TEST_LIBVIRTD2_START_MS"));
    }
    cleanup_both(prefix, dir);
    g_unlink(findings);
    g_assert_cmpint(g_mkdir(dir, 0755), ==, 0);
    g_chmod(dir, 0755);
    g_test_trap_subprocess(NULL, 280 * G_USEC_PER_SEC,
                           G_TEST_SUBPROCESS_INHERIT_STDOUT | G_TEST_SUBPROCESS_INHERIT_STDERR);
    cleanup_both(prefix, dir);
    {
        g_autofree char *text = NULL;
        if (g_file_get_contents(findings, &text, NULL, NULL)) {
            g_auto(GStrv) lines = g_strsplit(g_strchomp(text), "\n", -1);
            for (guint i = 0; lines[i] != NULL; i++)
                g_test_message("%s", lines[i]);
        }
        g_unlink(findings);
    }
    g_test_trap_assert_passed();
}

int
main(int argc, char **argv)
{
    const char *const socket_param[] = { "socket", NULL };
    int rc;

    g_test_init(&argc, &argv, NULL);
    the_virt = dv_virt_new();
    /* The second daemon is reached through its socket path (droverd's
     * [hosts] allow_uri_parameters = socket, test set-ups only). */
    dv_virt_set_uri_policy(the_virt, FALSE, socket_param);

    g_test_add_func("/drover/virt/two-hosts/system-daemon-before", test_system_untouched);
    g_test_add_func("/drover/virt/two-hosts/refusals", test_refusals);
    g_test_add_data_func("/drover/virt/two-hosts/shared", (gconstpointer)test_shared, run_isolated);
    g_test_add_data_func("/drover/virt/two-hosts/copy-storage", (gconstpointer)test_copy_storage,
                         run_isolated);
    g_test_add_data_func("/drover/virt/two-hosts/cancel", (gconstpointer)test_cancel, run_isolated);
    g_test_add_data_func("/drover/virt/two-hosts/target-lost", (gconstpointer)test_target_lost,
                         run_isolated);
    g_test_add_func("/drover/virt/two-hosts/system-daemon-after", test_system_untouched);

    rc = g_test_run();
    g_free(the_system_pid);
    dv_virt_free(the_virt);
    return rc;
}
