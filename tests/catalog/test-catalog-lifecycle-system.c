/* The lifecycle of a machine catalog end to end, system tier: the engine
 * in process against the local libvirtd (qemu:///system, TCG) and the
 * tiny guest (docs/TINY-GUEST.md).
 *
 * A pooled catalog of 2 machines with personal disks is booted through
 * the catalog power action; the machines have no overlay volume: their
 * system disk is the base, transient (QEMU's overlay beside it exists
 * only while they run).  Each console must show the machine's own
 * hostname and instance-id and "image-version v1"; the guest writes a
 * file to its personal disk (written once: a later boot reports
 * "personal-kept") and one to its system disk, which the next boot no
 * longer has.  The identity disk read back through the host shows the
 * meta-data and no secret.  The master then carries image-version v2
 * under a new snapshot; update-image repoints the shut-off machines, a
 * restart through Drover boots them on v2 with the personal file still
 * there; rollback brings v1 back the same way.  Last, the catalog is
 * deleted while its machines run: no file of it is left in the pool.
 *
 * The case runs in a child process; everything it makes is named
 * dvl<pid>-... and the parent removes it afterwards, pass or fail. */
#define G_LOG_DOMAIN "DvTestCatalogLifecycleSystem"

#include "dv-virt-private.h"
#include "dv-test-catalog.h"
#include "dv-test-system.h"
#include "dv-test-util.h"

#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define SYSTEM_URI "qemu:///system"
#define JOB_WAIT_MS (240 * 1000)
/* Per boot round (2 machines at once): about 20 s here, over a minute when
 * the machine is shared with other TCG guests and builds. */
#define BOOT_TIMEOUT_S 300
#define MACHINES 2

static DvVirt *the_virt;

static const char *
guest_dir(void)
{
    return dv_test_tiny_guest_dir(DV_TINY_GUEST_CACHE_DIR);
}

/* The second image's guest files: the same build with marker v2. */
static char *
guest_dir_v2(void)
{
    return g_strdup_printf("%s-v2", guest_dir());
}

static char *
prefix_new(pid_t pid)
{
    return g_strdup_printf("dvl%05d-", (int)(pid % 100000));
}

typedef struct {
    char *name;
    char *id;
    char *uuid;
    char *log_path;
    char *console;    /* this boot's output */
} Machine;

static void
machine_clear(Machine *m)
{
    g_free(m->name);
    g_free(m->id);
    g_free(m->uuid);
    g_free(m->log_path);
    g_free(m->console);
}

/* Boots every machine with the catalog power action (@action, all at
 * once) and waits until each console says "done" and each domain
 * is shut off again; the new console output lands in m->console. */
static void
boot_all(DvEngine *engine, DvVirtHost *vh, const char *catalog, const char *action, Machine *ms)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *json = g_strdup_printf("{\"action\":\"%s\",\"max_share\":100}", action);
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) row = NULL;
    gint64 t0 = g_get_monotonic_time();
    gint64 deadline = t0 + BOOT_TIMEOUT_S * G_USEC_PER_SEC;

    /* QEMU truncates the serial file when it starts the domain; the old
     * one goes first, so nothing of an earlier boot can count. */
    for (guint i = 0; i < MACHINES; i++) {
        g_unlink(ms[i].log_path);
        g_clear_pointer(&ms[i].console, g_free);
    }
    job = dv_engine_catalog_power(engine, catalog, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    row = dv_test_engine_run(engine, job, JOB_WAIT_MS);
    g_assert_cmpint(dv_json_get_int(dv_json_get_object(row, "result"), "parallel", 0), ==,
                    MACHINES);
    for (guint i = 0; i < MACHINES; i++) {
        for (;;) {
            g_autofree char *log = NULL;
            gsize len = 0;
            g_autoptr(JsonObject) dom = NULL;
            if (g_file_get_contents(ms[i].log_path, &log, &len, NULL)) {
                const char *fresh = log;
                if (strstr(fresh, "DROVER-GUEST: done") != NULL) {
                    dom = dv_virt_domain_get(vh, ms[i].uuid, NULL, &error);
                    g_assert_no_error(error);
                    if (g_strcmp0(dv_json_get_string(dom, "state", ""), "shutoff") == 0) {
                        ms[i].console = g_strdup(fresh);
                        break;
                    }
                }
            }
            if (g_get_monotonic_time() > deadline)
                g_error("%s did not finish booting within %d s:\n%s", ms[i].name, BOOT_TIMEOUT_S,
                        log != NULL ? log : "(no log)");
            g_usleep(250 * 1000);
        }
    }
    g_printerr("# %s of %d machines at once: all powered off again after %.1f s\n", action,
               MACHINES, (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC);
}

/* Each console: the machine's own identity, the image version, and the
 * personal file (@personal_line: "personal-written" on the first boot,
 * "personal-kept" later, when the disk must not have been formatted
 * again). */
static void
assert_consoles(Machine *ms, const char *version, const char *personal_line, const char *personal_text)
{
    for (guint i = 0; i < MACHINES; i++) {
        g_autofree char *want_host = g_strdup_printf("DROVER-GUEST: hostname %s", ms[i].name);
        g_autofree char *want_id = g_strdup_printf("DROVER-GUEST: instance-id %s", ms[i].id);
        g_autofree char *want_ver = g_strdup_printf("DROVER-GUEST: image-version %s", version);
        g_autofree char *want_pers = g_strdup_printf("DROVER-GUEST: %s vd", personal_line);
        g_autofree char *want_text = g_strdup_printf("DROVER-GUEST: personal %s", personal_text);
        const char *c = ms[i].console;
        gboolean first = g_strcmp0(personal_line, "personal-written") == 0;
        if (strstr(c, want_host) == NULL || strstr(c, want_id) == NULL || strstr(c, want_ver) == NULL ||
            strstr(c, want_pers) == NULL || strstr(c, want_text) == NULL ||
            (!first && strstr(c, "personal-formatted") != NULL))
            g_error("console of %s lacks its identity, \"%s\", \"%s\" or \"%s\" (or was formatted again):\n%s",
                    ms[i].name, want_ver, want_pers, want_text, c);
        /* The file the previous boot wrote to the system disk is gone
         * (a fresh transient overlay), and this boot wrote one. */
        if (strstr(c, "DROVER-GUEST: scratch ") != NULL ||
            strstr(c, "DROVER-GUEST: system-written vda") == NULL)
            g_error("console of %s: the system disk kept the last boot's file, or none was "
                    "written:\n%s",
                    ms[i].name, c);
    }
}

static gint
name_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Files of the catalog in the pool directory @dir, sorted, joined by ' ':
 * the machines' overlays would be "<c>-<m>-disk.qcow2", QEMU's transient
 * ones "<base>.TRANSIENT-<m>". */
static char *
catalog_files(const char *dir, const char *cat_name, const char *infix)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *n;
    g_assert_nonnull(d);
    while ((n = g_dir_read_name(d)) != NULL)
        if (g_str_has_prefix(n, cat_name) && strstr(n, infix) != NULL)
            g_ptr_array_add(names, g_strdup(n));
    g_ptr_array_sort(names, name_cmp);
    g_ptr_array_add(names, NULL);
    return g_strjoinv(" ", (char **)names->pdata);
}

static void
test_lifecycle(void)
{
    g_autofree char *prefix = prefix_new(getppid());
    g_autofree char *dir = dv_test_system_dir_new(prefix);
    g_autofree char *pool = g_strdup_printf("%spool", prefix);
    g_autofree char *state_dir = NULL;
    g_autofree char *kernel = g_build_filename(dir, "vmlinuz", NULL);
    g_autofree char *initrd = g_build_filename(dir, "initrd.img", NULL);
    g_autofree char *master_path = g_strdup_printf("%s/%smaster.qcow2", dir, prefix);
    g_autofree char *master = g_strdup_printf("%smaster", prefix);
    g_autofree char *v2dir = guest_dir_v2();
    g_autofree char *src = NULL;
    g_autofree char *json = NULL;
    g_autofree char *cat_name = g_strdup_printf("%scat", prefix);
    g_autofree char *kept = g_strdup_printf("kept-%d", (int)getpid());
    g_autoptr(GError) error = NULL;
    g_autoptr(DvEngine) engine = NULL;
    g_autoptr(DvVirtHost) vh = dv_virt_host_get(the_virt, "local-lifecycle", SYSTEM_URI);
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) list = NULL;
    Machine ms[MACHINES] = { { 0 } };
    gint64 t_start = g_get_monotonic_time();

    dv_test_copy_file(src = g_build_filename(guest_dir(), "vmlinuz", NULL), kernel);
    g_clear_pointer(&src, g_free);
    dv_test_copy_file(src = g_build_filename(guest_dir(), "initrd.img", NULL), initrd);
    g_clear_pointer(&src, g_free);
    dv_test_copy_file(src = g_build_filename(guest_dir(), "master.qcow2", NULL), master_path);
    g_clear_pointer(&src, g_free);
    dv_test_system_pool_create(vh, pool, dir);
    state_dir = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), prefix);
    engine = dv_test_engine_new(state_dir, FALSE);
    done = dv_test_engine_create(engine, DV_KIND_HOST, "{\"name\":\"local\",\"uri\":\"" SYSTEM_URI "\"}", 120000);
    json = g_strdup_printf("{\"name\":\"%s\",\"host\":\"local\",\"memory_mib\":128,\"generation\":1,"
                           "\"disks\":[{\"volume\":\"%s\"}]}", master, master_path);
    g_clear_pointer(&done, json_object_unref);
    done = dv_test_engine_create(engine, DV_KIND_VM, json, 120000);
    dv_test_engine_snapshot(engine, master, "v1", 120000);
    g_clear_pointer(&done, json_object_unref);
    done = dv_test_engine_create(engine, DV_KIND_GUEST_OS_PROFILE,
                  "{\"name\":\"desks\",\"admin_username\":\"admin\",\"admin_password\":\"s3cret-pw-91\","
                  "\"domain\":\"corp.example.com\",\"domain_join_user\":\"joiner\","
                  "\"domain_join_password\":\"J0in-pw-17\",\"product_key\":\"AAAAA-BBBBB-CCCCC\"}", 60000);

    /* The catalog: 5 pooled machines with personal disks.  no_timer_check:
     * under TCG on a loaded host the kernel's IO-APIC timer check can
     * fail and panic ("IO-APIC + timer doesn't work"), seen here. */
    g_free(json);
    json = g_strdup_printf(
        "{\"name\":\"%s\",\"master_vm\":\"%s\",\"master_snapshot\":\"v1\","
        "\"hosts\":[\"local\"],\"pool\":\"%s\",\"naming_scheme\":\"%s#\",\"count\":%d,"
        "\"guest_os_profile\":\"desks\",\"personal_disk_mib\":16,"
        "\"machine\":{\"memory_mib\":128,\"kernel\":\"%s\",\"initrd\":\"%s\","
        "\"cmdline\":\"console=ttyS0 quiet no_timer_check drover.write_personal_once=%s "
        "drover.write_system=%s\"}}",
        cat_name, master, pool, prefix, MACHINES, kernel, initrd, kept, kept);
    {
        gint64 t0 = g_get_monotonic_time();
        g_clear_pointer(&done, json_object_unref);
        done = dv_test_engine_create(engine, DV_KIND_CATALOG, json, JOB_WAIT_MS);
        g_printerr("# catalog of %d provisioned in %.1f s\n", MACHINES,
                   (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC);
    }
    list = dv_engine_catalog_machines(engine, cat_name, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(json_array_get_length(dv_json_get_array(list, "items")), ==, MACHINES);
    for (guint i = 0; i < MACHINES; i++) {
        JsonObject *m = json_array_get_object_element(dv_json_get_array(list, "items"), i);
        g_assert_cmpstr(dv_json_get_string(m, "state", ""), ==, "ready");
        ms[i].name = g_strdup(dv_json_get_string(m, "name", ""));
        ms[i].id = g_strdup(dv_json_get_string(m, "id", ""));
        ms[i].uuid = g_strdup(dv_json_get_string(m, "domain_uuid", ""));
        ms[i].log_path = g_strdup_printf("%s/%s-%s-console.log", dir, cat_name, ms[i].name);
    }

    /* No overlay volume, no transient overlay before a start. */
    {
        g_autofree char *overlays = catalog_files(dir, cat_name, "-disk.qcow2");
        g_autofree char *transient = catalog_files(dir, cat_name, ".TRANSIENT-");
        g_assert_cmpstr(overlays, ==, "");
        g_assert_cmpstr(transient, ==, "");
    }

    /* v1: boot all, each reports itself; the personal file is written. */
    boot_all(engine, vh, cat_name, "start", ms);
    g_printerr("# console of %s (v1):\n%s\n", ms[0].name, ms[0].console);
    assert_consoles(ms, "v1", "personal-written", kept);
    /* Again on v1: the system disk's file is gone, the personal one kept;
     * QEMU's overlays went when the machines powered off. */
    boot_all(engine, vh, cat_name, "start", ms);
    assert_consoles(ms, "v1", "personal-kept", kept);
    {
        g_autofree char *transient = catalog_files(dir, cat_name, ".TRANSIENT-");
        g_assert_cmpstr(transient, ==, "");
    }

    /* The identity disk as the host holds it, without secrets. */
    {
        g_autoptr(JsonObject) id = dv_engine_catalog_machine_identity(engine, ms[1].id, &error);
        g_autofree char *text = NULL;
        g_assert_no_error(error);
        text = dv_json_object_to_string(id, FALSE);
        g_printerr("# identity of %s: %s\n", ms[1].name, text);
        g_assert_cmpstr(dv_json_get_string(dv_json_get_object(id, "meta_data"), "instance-id", ""),
                        ==, ms[1].id);
        g_assert_cmpstr(
            dv_json_get_string(dv_json_get_object(id, "meta_data"), "local-hostname", ""), ==,
            ms[1].name);
        g_assert_nonnull(strstr(dv_json_get_string(id, "user_data", ""), "passwd: \"(secret, 106 bytes)\""));
        g_assert_nonnull(strstr(dv_json_get_string(id, "user_data", ""), "\"domain_join_password\":\"(secret, 10 bytes)\""));
        g_assert_null(strstr(text, "s3cret-pw-91"));
        g_assert_null(strstr(text, "J0in-pw-17"));
        g_assert_null(strstr(text, "AAAAA-BBBBB-CCCCC"));
        g_assert_null(strstr(text, "$6$"));
    }

    /* v2: the administrator changes the master and takes a snapshot. */
    dv_test_copy_file(src = g_build_filename(v2dir, "master.qcow2", NULL), master_path);
    g_clear_pointer(&src, g_free);
    dv_test_engine_snapshot(engine, master, "v2", 120000);
    {
        g_autoptr(JsonObject) body = NULL;
        g_autoptr(JsonObject) job = NULL;
        g_autoptr(JsonObject) row = NULL;
        g_free(json);
        json = g_strdup_printf("{\"master_vm\":\"%s\",\"master_snapshot\":\"v2\"}", master);
        body = dv_test_json_object(json);
        job = dv_engine_catalog_update_image(engine, cat_name, body, DV_ACTOR_NAMED("tester"),
                                             &error);
        g_assert_no_error(error);
        row = dv_test_engine_run(engine, job, JOB_WAIT_MS);
        g_assert_cmpint(dv_json_get_int(dv_json_get_object(row, "result"), "image_version", 0), ==, 2);
        g_assert_cmpint(dv_json_get_int(dv_json_get_object(row, "result"), "machines_moved", 0), ==, MACHINES);
    }
    boot_all(engine, vh, cat_name, "restart", ms);
    g_printerr("# console of %s (v2):\n%s\n", ms[0].name, ms[0].console);
    assert_consoles(ms, "v2", "personal-kept", kept);

    /* Rollback: v1 again, the personal file still there. */
    {
        g_autoptr(JsonObject) job =
            dv_engine_catalog_rollback(engine, cat_name, DV_ACTOR_NAMED("tester"), &error);
        g_autoptr(JsonObject) row = NULL;
        g_assert_no_error(error);
        row = dv_test_engine_run(engine, job, JOB_WAIT_MS);
        g_assert_cmpint(dv_json_get_int(dv_json_get_object(row, "result"), "image_version", 0), ==, 1);
        g_assert_cmpint(dv_json_get_int(dv_json_get_object(row, "result"), "machines_moved", 0), ==, MACHINES);
    }
    boot_all(engine, vh, cat_name, "restart", ms);
    assert_consoles(ms, "v1", "personal-kept", kept);
    {
        g_autoptr(JsonObject) images = dv_engine_catalog_images(engine, cat_name, &error);
        JsonArray *items;
        g_assert_no_error(error);
        items = dv_json_get_array(images, "items");
        g_assert_cmpuint(json_array_get_length(items), ==, 2);
        g_assert_true(dv_json_get_bool(json_array_get_object_element(items, 0), "current", FALSE));
        g_assert_cmpint(dv_json_get_int(json_array_get_object_element(items, 0), "machines", 0), ==, MACHINES);
        g_assert_cmpint(dv_json_get_int(json_array_get_object_element(items, 1), "machines", -1), ==, 0);
    }

    /* Delete while they run: QEMU's overlays go with the machines, no
     * file of the catalog is left in the pool. */
    {
        g_autoptr(JsonObject) body =
            dv_test_json_object("{\"action\":\"start\",\"max_share\":100}");
        g_autoptr(JsonObject) job =
            dv_engine_catalog_power(engine, cat_name, body, DV_ACTOR_NAMED("tester"), &error);
        g_autoptr(JsonObject) row = NULL;
        g_autofree char *transient = NULL;
        g_autofree char *left = NULL;
        g_assert_no_error(error);
        g_clear_pointer(&row, json_object_unref);
        row = dv_test_engine_run(engine, job, JOB_WAIT_MS);
        transient = catalog_files(dir, cat_name, ".TRANSIENT-");
        g_printerr("# running: %s\n", transient);
        g_assert_nonnull(strstr(transient, ".TRANSIENT-"));
        g_clear_pointer(&job, json_object_unref);
        job = dv_engine_delete(engine, DV_KIND_CATALOG, cat_name, NULL, DV_ACTOR_NAMED("tester"),
                               &error);
        g_assert_no_error(error);
        g_clear_pointer(&row, json_object_unref);
        row = dv_test_engine_run(engine, job, JOB_WAIT_MS);
        g_assert_true(dv_json_get_bool(dv_json_get_object(row, "result"), "deleted", FALSE));
        left = catalog_files(dir, cat_name, "");
        g_assert_cmpstr(left, ==, "");
    }
    g_printerr("# whole lifecycle in %.1f s\n", (g_get_monotonic_time() - t_start) / (double)G_USEC_PER_SEC);
    for (guint i = 0; i < MACHINES; i++)
        machine_clear(&ms[i]);
    g_clear_pointer(&engine, dv_engine_free);
    dv_test_system_remove_tree(state_dir);
}

static void
run_isolated(void)
{
    g_autofree char *prefix = NULL;
    g_autofree char *v2dir = NULL;

    if (g_test_subprocess()) {
        /* As droverd does: a libvirt connection dropped while the machine
         * is loaded must not kill the process with SIGPIPE. */
        signal(SIGPIPE, SIG_IGN);
        test_lifecycle();
        return;
    }
    if (!dv_test_system_check_daemon(the_virt))
        return;
    v2dir = guest_dir_v2();
    dv_test_tiny_guest_build(DV_BUILD_TINY_GUEST, guest_dir(), "v1");
    dv_test_tiny_guest_build(DV_BUILD_TINY_GUEST, v2dir, "v2");
    prefix = prefix_new(getpid());
    dv_test_system_run_isolated(the_virt, prefix, 1000);
}

int
main(int argc, char **argv)
{
    int rc;
    g_test_init(&argc, &argv, NULL);
    the_virt = dv_virt_new();
    g_test_add_func("/drover/catalog/system/lifecycle", run_isolated);
    rc = g_test_run();
    dv_virt_free(the_virt);
    return rc;
}
