#define G_LOG_DOMAIN "DvTestSnapshotsSystem"

/* Snapshots of running VMs on the real daemon (qemu:///system, QEMU under
 * TCG) with the tiny guest's kernel (issue 12, item 5), through the
 * engine (SQLite store):
 *
 *  - internal-memory: a running VM on a qcow2 disk, snapshot with its
 *    memory (the default when running); the guest counts on after it;
 *    reverted, the VM runs and counts on from where it was at the
 *    snapshot.  Refused with nothing changed: a name in use, an external
 *    snapshot beside internal ones, memory of a shut-off VM, another VM's
 *    snapshot.
 *  - external-memory: a running VM on a raw disk gets an external
 *    snapshot with its memory (listed with kind "external"), reverted as
 *    above by Drover; a second, disk-only one on top; the first cannot be
 *    reverted or deleted while the second builds on it; reverted to the
 *    second, the VM is shut off and its next boot reads the disk as it was
 *    at that snapshot; both deleted (merged while running); one more while
 *    shut off; the VM deleted with its volumes leaves no file.
 *  - external-uefi: a generation 2 (UEFI) VM, shut off, gets an external
 *    snapshot by default (internal refused naming kind), reverted and
 *    deleted, no file left.
 *
 * The guest is a shell loop given on the kernel command line: it prints
 * "DROVER-TICK N" every 0.3 s, so its memory state is the counter, and
 * writes "tick-N:" at the start of its disk before each, so its disk
 * state is one too. */

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

#define WAIT_MS 180000
#define MIB (G_GINT64_CONSTANT(1) << 20)

/* No double quotes inside: the kernel's command line quotes the script.
 * At boot it prints what the first bytes of vda say ("DROVER-DISK
 * tick-N"), then each tick writes "tick-N:" there (synced) before printing
 * "DROVER-TICK N". */
#define GUEST_TICKER                                                                               \
    "mkdir -p /proc /sys /dev; /bin/busybox --install -s /bin; export PATH=/bin; "                 \
    "mount -t proc proc /proc; mount -t devtmpfs devtmpfs /dev; "                                  \
    "exec </dev/console >/dev/console 2>&1; echo 1 >/proc/sys/kernel/printk; "                     \
    "while read -r m; do insmod /lib/modules/$m.ko; done </lib/modules/order; "                    \
    "i=0; while [ ! -e /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; "              \
    "echo DROVER-TICKER start; echo DROVER-DISK $(head -c 16 /dev/vda | cut -d : -f 1); "          \
    "n=0; while [ $n -lt 3000 ]; do n=$((n+1)); "                                                  \
    "echo tick-$n: | dd of=/dev/vda conv=fsync 2>/dev/null; "                                      \
    "echo DROVER-TICK $n; sleep 0.3; done; poweroff -f"

static DvVirt *the_virt;

/* The highest tick in @text from byte @from on (0: none); *@ret_starts
 * counts "DROVER-TICKER start" lines there. */
static gint64
last_tick(const char *text, gsize from, guint *ret_starts)
{
    gint64 last = 0;
    guint starts = 0;
    const char *p = text + from;

    while ((p = strstr(p, "DROVER-TICK")) != NULL) {
        if (g_str_has_prefix(p, "DROVER-TICKER start"))
            starts++;
        else if (g_str_has_prefix(p, "DROVER-TICK "))
            last = g_ascii_strtoll(p + strlen("DROVER-TICK "), NULL, 10);
        p++;
    }
    if (ret_starts != NULL)
        *ret_starts = starts;
    return last;
}

/* Reads the log; waits until its highest tick after byte @from is at least
 * @want (a log made shorter, by a new QEMU opening it, is read from 0). */
static gint64
wait_tick(const char *log, gsize from, gint64 want, guint timeout_s, gsize *ret_from)
{
    gint64 t0 = g_get_monotonic_time();

    for (;;) {
        g_autofree char *text = NULL;
        gsize len = 0;
        if (g_file_get_contents(log, &text, &len, NULL)) {
            gsize start = len < from ? 0 : from;
            gint64 t = last_tick(text, start, NULL);
            if (t >= want) {
                if (ret_from != NULL)
                    *ret_from = start;
                return t;
            }
        }
        if (g_get_monotonic_time() - t0 > (gint64)timeout_s * G_USEC_PER_SEC)
            g_error("no tick %" G_GINT64_FORMAT " in the guest's log after %u s:\n%s", want,
                    timeout_s, text != NULL ? text : "(no log)");
        g_usleep(50000);
    }
}

static gsize
log_size(const char *log)
{
    g_autofree char *text = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(log, &text, &len, NULL));
    return len;
}

static JsonObject *
run_ok(DvEngine *engine, JsonObject *job, GError *error)
{
    JsonObject *done;
    g_assert_no_error(error);
    g_assert_nonnull(job);
    done = dv_test_engine_run(engine, job, WAIT_MS);
    if (g_strcmp0(dv_json_get_string(done, "state", ""), "succeeded") != 0) {
        g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
        g_autofree char *s = NULL;
        json_node_set_object(node, done);
        s = json_to_string(node, FALSE);
        g_error("job did not succeed: %s", s);
    }
    return done;
}

static JsonObject *
snap_create(DvEngine *engine, const char *vm, const char *json, GError **error)
{
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    return dv_engine_vm_snapshot_create(engine, vm, body, DV_ACTOR_NAMED("tester"), error);
}

/* The snapshot row @name of @vm (must exist). */
static JsonObject *
snap_row(DvEngine *engine, const char *vm, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) list = dv_engine_vm_snapshot_list(engine, vm, &error);
    JsonArray *items;

    g_assert_no_error(error);
    items = dv_json_get_array(list, "items");
    for (guint i = 0; i < json_array_get_length(items); i++) {
        JsonObject *s = json_array_get_object_element(items, i);
        if (g_strcmp0(dv_json_get_string(s, "name", ""), name) == 0)
            return json_object_ref(s);
    }
    g_error("VM %s has no snapshot row %s", vm, name);
    return NULL;
}

static guint
snap_count(DvEngine *engine, const char *vm)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) list = dv_engine_vm_snapshot_list(engine, vm, &error);
    g_assert_no_error(error);
    return json_array_get_length(dv_json_get_array(list, "items"));
}

static const char *
vm_state(DvEngine *engine, const char *vm, char **ret_owned)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) row = dv_engine_get(engine, DV_KIND_VM, vm, &error);
    g_assert_no_error(error);
    *ret_owned = g_strdup(dv_json_get_string(row, "state", ""));
    return *ret_owned;
}

/* A domain @name on @vh booting the ticker from @disk_path (@format). */
static char *
define_vm(DvVirtHost *vh, const char *dir, const char *name, const char *disk_path,
          const char *format, gint generation, const char *log)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) spec = json_object_new();
    g_autofree char *kernel = dv_test_tiny_guest_copy(DV_TINY_GUEST_CACHE_DIR, dir, "vmlinuz");
    g_autofree char *initrd = dv_test_tiny_guest_copy(DV_TINY_GUEST_CACHE_DIR, dir, "initrd.img");
    g_autofree char *cmdline =
        g_strdup_printf("console=ttyS0 quiet rdinit=/bin/busybox -- sh -c \"%s\"", GUEST_TICKER);
    g_autofree char *xml = NULL;
    JsonArray *disks = json_array_new();
    JsonObject *disk = json_object_new();
    char *uuid;

    json_object_set_string_member(spec, "name", name);
    json_object_set_int_member(spec, "memory_mib", 128);
    json_object_set_int_member(spec, "generation", generation);
    if (generation == 2)
        json_object_set_boolean_member(spec, "secure_boot", FALSE);
    json_object_set_string_member(spec, "serial_log", log);
    json_object_set_string_member(spec, "kernel", kernel);
    json_object_set_string_member(spec, "initrd", initrd);
    json_object_set_string_member(spec, "cmdline", cmdline);
    json_object_set_string_member(disk, "path", disk_path);
    json_object_set_string_member(disk, "format", format);
    json_array_add_object_element(disks, disk);
    json_object_set_array_member(spec, "disks", disks);
    xml = dv_virt_domain_xml_new(spec, &error);
    g_assert_no_error(error);
    uuid = dv_virt_domain_define(vh, xml, NULL, &error);
    g_assert_no_error(error);
    return uuid;
}

typedef struct {
    char *prefix;
    char *dir;
    char *state;
    char *pool;
    char *log;
    DvVirtHost *vh;
} Env;

static void
env_init(Env *env, const char *tag)
{
    env->prefix = dv_test_system_prefix_new(tag, getppid());
    env->dir = dv_test_system_dir_new(env->prefix);
    env->state = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), env->prefix);
    env->pool = g_strconcat(env->prefix, "pool", NULL);
    env->log = g_build_filename(env->dir, "serial.log", NULL);
    env->vh = dv_virt_host_get(the_virt, env->prefix, DV_TEST_SYSTEM_URI);
    dv_test_system_pool_create(env->vh, env->pool, env->dir);
}

static void
env_clear(Env *env)
{
    g_free(env->prefix);
    g_free(env->dir);
    g_free(env->state);
    g_free(env->pool);
    g_free(env->log);
    dv_virt_host_unref(env->vh);
}

/* Snapshot now, returns the tick seen just before and after. */
static void
snapshot_running(DvEngine *engine, const char *vm, const char *json, const char *log,
                 gint64 *ret_before, gint64 *ret_after)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autofree char *text = NULL;
    gint64 t0;

    g_assert_true(g_file_get_contents(log, &text, NULL, NULL));
    *ret_before = last_tick(text, 0, NULL);
    t0 = g_get_monotonic_time();
    job = snap_create(engine, vm, json, &error);
    done = run_ok(engine, job, error);
    g_printerr("# snapshot %s of a running 128 MiB guest: %.2f s\n", json,
               (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC);
    g_clear_pointer(&text, g_free);
    g_assert_true(g_file_get_contents(log, &text, NULL, NULL));
    *ret_after = last_tick(text, 0, NULL);
}

/* Reverts @vm to @snap while the guest has counted 4 past @after, then
 * checks the guest runs on from the snapshot: its next tick is at most
 * @after + 1, and it did not boot again. */
static void
revert_running(DvEngine *engine, const char *vm, const char *snap, const char *log, gint64 before,
               gint64 after)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autofree char *st = NULL;
    g_autofree char *text = NULL;
    gint64 t0, later, resumed;
    gsize from, start = 0;
    guint starts = 0;

    later = wait_tick(log, 0, after + 4, 60, NULL);
    from = log_size(log);
    t0 = g_get_monotonic_time();
    job = dv_engine_vm_snapshot_revert(engine, vm, snap, DV_ACTOR_NAMED("tester"), &error);
    done = run_ok(engine, job, error);
    g_printerr("# revert to %s of a running guest: %.2f s\n", snap,
               (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC);
    g_assert_cmpstr(vm_state(engine, vm, &st), ==, "running");
    /* The first tick the guest prints after the revert. */
    for (gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;;) {
        gsize len = 0;
        g_clear_pointer(&text, g_free);
        g_assert_true(g_file_get_contents(log, &text, &len, NULL));
        start = len < from ? 0 : from;
        resumed = last_tick(text, start, &starts);
        if (resumed > 0)
            break;
        if (g_get_monotonic_time() > deadline)
            g_error("the guest printed nothing after the revert:\n%s", text);
        g_usleep(50000);
    }
    /* Take the first tick after the revert, not the last. */
    {
        const char *p = strstr(text + start, "DROVER-TICK ");
        g_assert_nonnull(p);
        resumed = g_ascii_strtoll(p + strlen("DROVER-TICK "), NULL, 10);
    }
    g_printerr("# ticks: %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT
               " at the snapshot, %" G_GINT64_FORMAT " before the revert, %" G_GINT64_FORMAT
               " first after it\n",
               before, after, later, resumed);
    g_assert_cmpint(starts, ==, 0);
    g_assert_cmpint(resumed, >=, before);
    g_assert_cmpint(resumed, <=, after + 1);
    g_assert_cmpint(resumed, <, later);
}

static void
test_internal_memory(void)
{
    g_autoptr(GError) error = NULL;
    Env env = { 0 };
    g_autoptr(JsonObject) vol = NULL;
    g_autoptr(JsonObject) vol2 = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) row = NULL;
    g_autoptr(DvEngine) engine = NULL;
    g_autofree char *name = NULL;
    g_autofree char *other = NULL;
    g_autofree char *uuid = NULL;
    g_autofree char *uuid2 = NULL;
    g_autofree char *log2 = NULL;
    gint64 before, after;

    env_init(&env, "dvsnapi");
    name = g_strconcat(env.prefix, "vm", NULL);
    other = g_strconcat(env.prefix, "other", NULL);
    log2 = g_build_filename(env.dir, "other.log", NULL);
    vol = dv_virt_volume_create(env.vh, env.pool, "disk.qcow2", 16 * MIB, "qcow2", NULL, &error);
    g_assert_no_error(error);
    vol2 = dv_virt_volume_create(env.vh, env.pool, "other.qcow2", 16 * MIB, "qcow2", NULL, &error);
    g_assert_no_error(error);
    uuid =
        define_vm(env.vh, env.dir, name, dv_json_get_string(vol, "path", ""), "qcow2", 1, env.log);
    uuid2 =
        define_vm(env.vh, env.dir, other, dv_json_get_string(vol2, "path", ""), "qcow2", 1, log2);

    engine = dv_test_engine_new(env.state, TRUE);
    g_assert_nonnull(engine);
    job = dv_test_engine_create(engine, DV_KIND_HOST,
                                "{\"name\":\"local\",\"uri\":\"qemu:///system\"}", WAIT_MS);
    g_clear_pointer(&job, json_object_unref);

    /* Memory of a shut-off VM: refused naming memory, no job. */
    g_assert_null(snap_create(engine, name, "{\"name\":\"s0\",\"memory\":true}", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "memory");
    g_clear_error(&error);

    job = dv_engine_vm_action(engine, name, "start", DV_ACTOR_NAMED("tester"), &error);
    done = run_ok(engine, job, error);
    wait_tick(env.log, 0, 3, 120, NULL);

    snapshot_running(engine, name, "{\"name\":\"s1\",\"description\":\"ticking\"}", env.log,
                     &before, &after);
    row = snap_row(engine, name, "s1");
    g_assert_cmpstr(dv_json_get_string(row, "kind", ""), ==, "internal");
    g_assert_true(dv_json_get_bool(row, "memory", FALSE));
    g_assert_cmpstr(dv_json_get_string(row, "vm_state", ""), ==, "running");

    /* Refusals, nothing changed. */
    g_assert_null(snap_create(engine, name, "{\"name\":\"s1\"}", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "name");
    g_clear_error(&error);
    g_assert_null(snap_create(engine, name, "{\"name\":\"s2\",\"kind\":\"external\"}", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "kind");
    g_clear_error(&error);
    g_assert_null(snap_create(engine, name,
                              "{\"name\":\"s2\",\"kind\":\"internal\",\"memory\":false}", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED);
    g_assert_cmpstr(dv_error_get_field(error), ==, "memory");
    g_clear_error(&error);
    g_assert_null(snap_create(engine, name, "{\"name\":\"s2\",\"kind\":\"sideways\"}", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "kind");
    g_clear_error(&error);
    g_assert_null(
        dv_engine_vm_snapshot_revert(engine, other, "s1", DV_ACTOR_NAMED("tester"), &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_cmpuint(snap_count(engine, name), ==, 1);
    g_assert_cmpuint(snap_count(engine, other), ==, 0);

    revert_running(engine, name, "s1", env.log, before, after);
    g_clear_pointer(&row, json_object_unref);
    row = snap_row(engine, name, "s1");
    g_assert_true(dv_json_get_bool(row, "is_current", FALSE));

    g_clear_pointer(&job, json_object_unref);
    job = dv_engine_vm_snapshot_delete(engine, name, "s1", DV_ACTOR_NAMED("tester"), &error);
    g_clear_pointer(&done, json_object_unref);
    done = run_ok(engine, job, error);
    g_assert_cmpuint(snap_count(engine, name), ==, 0);

    g_clear_pointer(&engine, dv_engine_free);
    g_assert_true(dv_virt_domain_delete(env.vh, uuid, TRUE, NULL, &error));
    g_assert_no_error(error);
    g_assert_true(dv_virt_domain_delete(env.vh, uuid2, TRUE, NULL, &error));
    g_assert_no_error(error);
    env_clear(&env);
}

/* Files in @dir besides the guest's kernel, initrd and logs. */
static guint
count_disk_files(const char *dir, GString *names)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *f;
    guint n = 0;

    g_assert_nonnull(d);
    while ((f = g_dir_read_name(d)) != NULL) {
        if (g_str_equal(f, "vmlinuz") || g_str_equal(f, "initrd.img") ||
            g_str_has_suffix(f, ".log"))
            continue;
        g_string_append_printf(names, " %s", f);
        n++;
    }
    return n;
}

static void
test_external_memory(void)
{
    g_autoptr(GError) error = NULL;
    Env env = { 0 };
    g_autoptr(JsonObject) vol = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) row = NULL;
    g_autoptr(DvEngine) engine = NULL;
    g_autoptr(GString) names = g_string_new(NULL);
    g_autofree char *name = NULL;
    g_autofree char *uuid = NULL;
    g_autofree char *layer1 = NULL;
    g_autofree char *layer2 = NULL;
    g_autofree char *mem = NULL;
    g_autofree char *st = NULL;
    const char *data_path;
    gint64 before, after, t0;

    env_init(&env, "dvsnapx");
    name = g_strconcat(env.prefix, "vm", NULL);
    vol = dv_virt_volume_create(env.vh, env.pool, "data.img", 16 * MIB, "raw", NULL, &error);
    g_assert_no_error(error);
    data_path = dv_json_get_string(vol, "path", "");
    layer1 = g_build_filename(env.dir, "data-s1.qcow2", NULL);
    /* s2 is taken on s1's layer: its layer is named after that file. */
    layer2 = g_build_filename(env.dir, "data-s1-s2.qcow2", NULL);
    mem = g_strdup_printf("%s/%s-s1.mem", env.dir, name);
    uuid = define_vm(env.vh, env.dir, name, data_path, "raw", 1, env.log);

    engine = dv_test_engine_new(env.state, TRUE);
    g_assert_nonnull(engine);
    job = dv_test_engine_create(engine, DV_KIND_HOST,
                                "{\"name\":\"local\",\"uri\":\"qemu:///system\"}", WAIT_MS);
    g_clear_pointer(&job, json_object_unref);
    job = dv_engine_vm_action(engine, name, "start", DV_ACTOR_NAMED("tester"), &error);
    done = run_ok(engine, job, error);
    wait_tick(env.log, 0, 3, 120, NULL);

    /* A raw disk: internal refused naming kind; the default is external. */
    g_assert_null(snap_create(engine, name, "{\"name\":\"s1\",\"kind\":\"internal\"}", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED);
    g_assert_cmpstr(dv_error_get_field(error), ==, "kind");
    g_test_message("internal on raw: %s", error->message);
    g_clear_error(&error);
    g_assert_cmpuint(snap_count(engine, name), ==, 0);

    snapshot_running(engine, name, "{\"name\":\"s1\"}", env.log, &before, &after);
    row = snap_row(engine, name, "s1");
    g_assert_cmpstr(dv_json_get_string(row, "kind", ""), ==, "external");
    g_assert_true(dv_json_get_bool(row, "memory", FALSE));
    g_assert_true(g_file_test(layer1, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(mem, G_FILE_TEST_EXISTS));

    revert_running(engine, name, "s1", env.log, before, after);
    /* Twice: the layer is made anew each time. */
    snapshot_running(engine, name, "{\"name\":\"s2\",\"memory\":false}", env.log, &before, &after);
    g_clear_pointer(&row, json_object_unref);
    row = snap_row(engine, name, "s2");
    g_assert_cmpstr(dv_json_get_string(row, "kind", ""), ==, "external");
    g_assert_false(dv_json_get_bool(row, "memory", TRUE));
    g_assert_cmpstr(dv_json_get_string(row, "parent_name", ""), ==, "s1");

    /* s1 has a later snapshot on it: neither reverted nor deleted, no job. */
    g_assert_null(
        dv_engine_vm_snapshot_revert(engine, name, "s1", DV_ACTOR_NAMED("tester"), &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "snapshot");
    g_test_message("revert s1 under s2: %s", error->message);
    g_clear_error(&error);
    g_assert_null(
        dv_engine_vm_snapshot_delete(engine, name, "s1", DV_ACTOR_NAMED("tester"), &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "snapshot");
    g_clear_error(&error);
    /* Reverted to the disk-only s2: shut off, and the next boot reads
     * the disk as it was at s2 (the layer made anew over s1's layer). */
    {
        gint64 later = wait_tick(env.log, 0, after + 4, 60, NULL);
        gint64 on_disk;
        const char *p;
        g_clear_pointer(&job, json_object_unref);
        job = dv_engine_vm_snapshot_revert(engine, name, "s2", DV_ACTOR_NAMED("tester"), &error);
        g_clear_pointer(&done, json_object_unref);
        done = run_ok(engine, job, error);
        g_assert_cmpstr(vm_state(engine, name, &st), ==, "shutoff");
        g_clear_pointer(&st, g_free);
        g_assert_true(g_file_test(layer2, G_FILE_TEST_EXISTS));
        /* The next boot's lines alone (QEMU makes the file again). */
        if (g_unlink(env.log) != 0)
            g_error("cannot remove %s", env.log);
        g_clear_pointer(&job, json_object_unref);
        job = dv_engine_vm_action(engine, name, "start", DV_ACTOR_NAMED("tester"), &error);
        g_clear_pointer(&done, json_object_unref);
        done = run_ok(engine, job, error);
        wait_tick(env.log, 0, 1, 120, NULL);
        {
            g_autofree char *text = NULL;
            g_assert_true(g_file_get_contents(env.log, &text, NULL, NULL));
            p = strstr(text, "DROVER-DISK tick-");
            if (p == NULL)
                g_error("the guest read no tick from its disk:\n%s", text);
            on_disk = g_ascii_strtoll(p + strlen("DROVER-DISK tick-"), NULL, 10);
        }
        g_printerr("# disk-only snapshot s2 at ticks %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT
                   ", %" G_GINT64_FORMAT
                   " written before the revert, the disk says %" G_GINT64_FORMAT
                   " at the next boot\n",
                   before, after, later, on_disk);
        g_assert_cmpint(on_disk, >=, before);
        g_assert_cmpint(on_disk, <=, after + 1);
        g_assert_cmpint(on_disk, <, later);
    }
    g_assert_cmpstr(vm_state(engine, name, &st), ==, "running");
    g_clear_pointer(&st, g_free);

    /* Both deleted newest first, merged while the guest runs. */
    t0 = g_get_monotonic_time();
    g_clear_pointer(&job, json_object_unref);
    job = dv_engine_vm_snapshot_delete(engine, name, "s2", DV_ACTOR_NAMED("tester"), &error);
    g_clear_pointer(&done, json_object_unref);
    done = run_ok(engine, job, error);
    g_clear_pointer(&job, json_object_unref);
    job = dv_engine_vm_snapshot_delete(engine, name, "s1", DV_ACTOR_NAMED("tester"), &error);
    g_clear_pointer(&done, json_object_unref);
    done = run_ok(engine, job, error);
    g_printerr("# two external snapshots of a running guest deleted (merged): %.2f s\n",
               (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC);
    g_assert_cmpuint(snap_count(engine, name), ==, 0);
    g_assert_false(g_file_test(layer1, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(layer2, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(mem, G_FILE_TEST_EXISTS));
    {
        g_autofree char *inactive = dv_virt_domain_get_xml(env.vh, uuid, TRUE, NULL, &error);
        g_assert_no_error(error);
        g_assert_nonnull(strstr(inactive, data_path));
    }
    wait_tick(env.log, 0, 1, 30, NULL);
    g_assert_cmpstr(vm_state(engine, name, &st), ==, "running");
    g_clear_pointer(&st, g_free);

    /* Shut off: one more (disk only), then the VM deleted with its
     * volumes leaves no file. */
    g_clear_pointer(&job, json_object_unref);
    job = dv_engine_vm_action(engine, name, "stop", DV_ACTOR_NAMED("tester"), &error);
    g_clear_pointer(&done, json_object_unref);
    done = run_ok(engine, job, error);
    g_clear_pointer(&job, json_object_unref);
    job = snap_create(engine, name, "{\"name\":\"s3\"}", &error);
    g_clear_pointer(&done, json_object_unref);
    done = run_ok(engine, job, error);
    g_clear_pointer(&row, json_object_unref);
    row = snap_row(engine, name, "s3");
    g_assert_cmpstr(dv_json_get_string(row, "kind", ""), ==, "external");
    g_assert_false(dv_json_get_bool(row, "memory", TRUE));
    {
        g_autoptr(JsonObject) vm = dv_engine_get(engine, DV_KIND_VM, name, &error);
        g_assert_no_error(error);
        g_clear_pointer(&job, json_object_unref);
        {
            g_autoptr(GHashTable) q = g_hash_table_new(g_str_hash, g_str_equal);
            g_hash_table_insert(q, (gpointer) "delete_volumes", (gpointer) "true");
            job = dv_engine_vm_delete(engine, vm, q, DV_ACTOR_NAMED("tester"), &error);
        }
        g_clear_pointer(&done, json_object_unref);
        done = run_ok(engine, job, error);
    }
    g_assert_cmpuint(count_disk_files(env.dir, names), ==, 0);

    g_clear_pointer(&engine, dv_engine_free);
    env_clear(&env);
}

static void
test_external_uefi(void)
{
    g_autoptr(GError) error = NULL;
    Env env = { 0 };
    g_autoptr(JsonObject) vol = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) row = NULL;
    g_autoptr(DvEngine) engine = NULL;
    g_autoptr(GString) names = g_string_new(NULL);
    g_autofree char *name = NULL;
    g_autofree char *uuid = NULL;
    g_autofree char *layer = NULL;
    g_autofree char *st = NULL;
    const char *path;

    env_init(&env, "dvsnapu");
    name = g_strconcat(env.prefix, "vm", NULL);
    vol = dv_virt_volume_create(env.vh, env.pool, "sys.qcow2", 16 * MIB, "qcow2", NULL, &error);
    g_assert_no_error(error);
    path = dv_json_get_string(vol, "path", "");
    layer = g_build_filename(env.dir, "sys-s1.qcow2", NULL);
    uuid = define_vm(env.vh, env.dir, name, path, "qcow2", 2, env.log);

    engine = dv_test_engine_new(env.state, TRUE);
    g_assert_nonnull(engine);
    job = dv_test_engine_create(engine, DV_KIND_HOST,
                                "{\"name\":\"local\",\"uri\":\"qemu:///system\"}", WAIT_MS);

    g_assert_null(snap_create(engine, name, "{\"name\":\"s1\",\"kind\":\"internal\"}", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED);
    g_assert_cmpstr(dv_error_get_field(error), ==, "kind");
    g_clear_error(&error);

    g_clear_pointer(&job, json_object_unref);
    job = snap_create(engine, name, "{\"name\":\"s1\"}", &error);
    done = run_ok(engine, job, error);
    row = snap_row(engine, name, "s1");
    g_assert_cmpstr(dv_json_get_string(row, "kind", ""), ==, "external");
    g_assert_false(dv_json_get_bool(row, "memory", TRUE));
    g_assert_true(g_file_test(layer, G_FILE_TEST_EXISTS));

    g_clear_pointer(&job, json_object_unref);
    job = dv_engine_vm_snapshot_revert(engine, name, "s1", DV_ACTOR_NAMED("tester"), &error);
    g_clear_pointer(&done, json_object_unref);
    done = run_ok(engine, job, error);
    g_assert_cmpstr(vm_state(engine, name, &st), ==, "shutoff");
    g_assert_true(g_file_test(layer, G_FILE_TEST_EXISTS));

    g_clear_pointer(&job, json_object_unref);
    job = dv_engine_vm_snapshot_delete(engine, name, "s1", DV_ACTOR_NAMED("tester"), &error);
    g_clear_pointer(&done, json_object_unref);
    done = run_ok(engine, job, error);
    g_assert_cmpuint(snap_count(engine, name), ==, 0);
    g_assert_false(g_file_test(layer, G_FILE_TEST_EXISTS));
    g_clear_pointer(&st, g_free);
    g_assert_cmpstr(vm_state(engine, name, &st), ==, "shutoff");
    {
        g_autofree char *inactive = dv_virt_domain_get_xml(env.vh, uuid, TRUE, NULL, &error);
        g_assert_no_error(error);
        g_assert_nonnull(strstr(inactive, path));
    }

    g_clear_pointer(&engine, dv_engine_free);
    g_assert_true(dv_virt_domain_delete(env.vh, uuid, TRUE, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(count_disk_files(env.dir, names), ==, 0);
    env_clear(&env);
}

typedef struct {
    const char *tag;
    void (*func)(void);
} Case;

static void
run_isolated(gconstpointer data)
{
    const Case *c = data;
    g_autofree char *prefix = NULL;
    static gboolean built;

    if (g_test_subprocess()) {
        c->func();
        return;
    }
    if (!dv_test_system_check_daemon(the_virt))
        return;
    if (!built) {
        dv_test_tiny_guest_build(DV_BUILD_TINY_GUEST,
                                 dv_test_tiny_guest_dir(DV_TINY_GUEST_CACHE_DIR), NULL);
        built = TRUE;
    }
    prefix = dv_test_system_prefix_new(c->tag, getpid());
    /* A case takes 15-60 s alone; the machine is shared. */
    dv_test_system_run_isolated(the_virt, prefix, 500);
}

int
main(int argc, char **argv)
{
    static const Case internal = { "dvsnapi", test_internal_memory };
    static const Case external = { "dvsnapx", test_external_memory };
    static const Case uefi = { "dvsnapu", test_external_uefi };
    int rc;

    g_test_init(&argc, &argv, NULL);
    the_virt = dv_virt_new();
    g_test_add_data_func("/drover/engine/snapshots/system/internal-memory", &internal,
                         run_isolated);
    g_test_add_data_func("/drover/engine/snapshots/system/external-memory", &external,
                         run_isolated);
    g_test_add_data_func("/drover/engine/snapshots/system/external-uefi", &uefi, run_isolated);
    rc = g_test_run();
    dv_virt_free(the_virt);
    return rc;
}
