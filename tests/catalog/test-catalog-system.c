/* Machine catalogs, system tier: the engine in process against the real
 * local libvirtd (qemu:///system) and the tiny guest (docs/TINY-GUEST.md).
 *
 * A gen-1 master VM (the tiny guest's master.qcow2, shut off) with a
 * snapshot; a persistent catalog (overlays; the pooled kind boots in
 * test-catalog-lifecycle-system) of 3 machines with a guest OS profile whose personal
 * disks go to a second dir pool, defined with its directory missing (seed
 * 004: the job builds and starts it before the first personal disk); the
 * job must make 3 ready machines with their volumes and domains; one machine boots
 * and reports on its serial console its own hostname and instance-id (from
 * its identity disk) and the image version (from the base).
 *
 * Then the reconciler and delete: a volume named like the catalog's,
 * made by hand with virsh, is reported as the one orphan and removed by
 * delete_orphans; deleting the catalog (one machine still running) leaves
 * none of its volumes, files or domains on the host and none of its rows.
 *
 * The case runs in a child process; everything it makes is named
 * dvc<pid>-... and the parent removes it afterwards (domains, the
 * transient pool with its volumes, the temp dirs), pass or fail. */
#define G_LOG_DOMAIN "DvTestCatalogSystem"

#include "dv-virt-private.h"
#include "dv-test-catalog.h"
#include "dv-test-system.h"
#include "dv-test-util.h"

#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define SYSTEM_URI "qemu:///system"
#define JOB_WAIT_MS (240 * 1000)
#define BOOT_TIMEOUT_S 90

static DvVirt *the_virt;

static const char *
guest_dir(void)
{
    return dv_test_tiny_guest_dir(DV_TINY_GUEST_CACHE_DIR);
}

static char *
prefix_new(pid_t pid)
{
    return g_strdup_printf("dvc%05d-", (int)(pid % 100000));
}


/* Lines of @text starting with @prefix (after blanks), first word each,
 * joined by ' '. */
static char *
words_with_prefix(const char *text, const char *prefix)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    g_autoptr(GString) out = g_string_new(NULL);
    for (guint i = 0; lines[i] != NULL; i++) {
        g_auto(GStrv) w = g_strsplit_set(g_strstrip(lines[i]), " \t", 2);
        if (w[0] != NULL && g_str_has_prefix(w[0], prefix))
            g_string_append_printf(out, "%s%s", out->len > 0 ? " " : "", w[0]);
    }
    return g_string_free(g_steal_pointer(&out), FALSE);
}

static JsonObject *
reconcile(DvEngine *engine, const char *catalog)
{
    g_autoptr(GError) error = NULL;
    JsonObject *r = dv_engine_catalog_reconcile(engine, catalog, &error);
    g_autofree char *t = NULL;
    g_assert_no_error(error);
    t = dv_json_object_to_string(r, FALSE);
    g_printerr("# reconcile: %s\n", t);
    return r;
}

static gint64
rows(DvEngine *engine, const DvTableDef *def)
{
    g_autoptr(GError) error = NULL;
    gint64 n = dv_store_count(dv_engine_get_store(engine), def, NULL, 0, &error);
    g_assert_no_error(error);
    return n;
}

/* The reconciler finds a hand-made orphan and removes it when asked;
 * deleting the catalog leaves nothing of it on the host or in the
 * database. */
static void
reconcile_and_delete(DvEngine *engine, const char *cat_name, const char *pool, const char *dir,
                     JsonArray *items)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *orphan = g_strdup_printf("%s-stray-disk.qcow2", cat_name);
    g_autofree char *vprefix = g_strdup_printf("%s-", cat_name);
    g_autoptr(JsonObject) r1 = NULL;
    g_autoptr(JsonObject) r2 = NULL;
    g_autoptr(JsonObject) row = NULL;
    g_autofree char *vols = NULL;
    g_autofree char *names = NULL;
    g_autofree char *doms = NULL;
    JsonArray *orphans;
    gint64 vms_before;

    {
        const char *const args[] = { "vol-create-as", pool, orphan, "1M", "--format", "qcow2", NULL };
        g_autofree char *out = dv_test_virsh(args);
    }
    r1 = reconcile(engine, cat_name);
    orphans = dv_json_get_array(r1, "orphans_on_hosts");
    g_assert_cmpuint(json_array_get_length(orphans), ==, 1);
    g_assert_cmpstr(dv_json_get_string(json_array_get_object_element(orphans, 0), "kind", ""), ==, "volume");
    g_assert_cmpstr(dv_json_get_string(json_array_get_object_element(orphans, 0), "name", ""), ==, orphan);
    g_assert_cmpstr(dv_json_get_string(json_array_get_object_element(orphans, 0), "host", ""), ==, "local");
    g_assert_cmpuint(json_array_get_length(dv_json_get_array(r1, "missing_on_hosts")), ==, 0);
    g_assert_cmpuint(json_array_get_length(dv_json_get_array(r1, "unreachable_hosts")), ==, 0);
    g_assert_false(dv_json_get_bool(r1, "ok", TRUE));

    {
        g_autoptr(JsonObject) body = dv_test_json_object("{\"delete_orphans\":true}");
        g_autoptr(JsonObject) job = dv_engine_catalog_reconcile_submit(
            engine, cat_name, body, DV_ACTOR_NAMED("tester"), &error);
        g_assert_no_error(error);
        row = dv_test_engine_run(engine, job, 120000);
        g_assert_cmpuint(json_array_get_length(dv_json_get_array(dv_json_get_object(row, "result"), "deleted")), ==,
                         1);
    }
    {
        const char *const args[] = { "vol-list", pool, NULL };
        g_autofree char *out = dv_test_virsh(args);
        vols = words_with_prefix(out, orphan);
        g_assert_cmpstr(vols, ==, "");
    }
    r2 = reconcile(engine, cat_name);
    g_assert_true(dv_json_get_bool(r2, "ok", FALSE));

    /* Delete, with the second machine still running.  The host's other
     * domains (other tests' too) are VM rows as well. */
    vms_before = rows(engine, &dv_table_vms);
    {
        g_autoptr(JsonObject) job = dv_engine_delete(engine, DV_KIND_CATALOG, cat_name, NULL,
                                                     DV_ACTOR_NAMED("tester"), &error);
        g_autoptr(JsonObject) done = NULL;
        gint64 t0 = g_get_monotonic_time();
        g_assert_no_error(error);
        done = dv_test_engine_run(engine, job, JOB_WAIT_MS);
        g_printerr("# catalog deleted in %.1f s\n", (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC);
        g_assert_true(dv_json_get_bool(dv_json_get_object(done, "result"), "deleted", FALSE));
    }
    {
        const char *const args[] = { "pool-refresh", pool, NULL };
        const char *const list[] = { "vol-list", pool, NULL };
        g_autofree char *o1 = dv_test_virsh(args);
        g_autofree char *out = dv_test_virsh(list);
        g_free(vols);
        vols = words_with_prefix(out, vprefix);
        g_assert_cmpstr(vols, ==, "");
    }
    {
        const char *const args[] = { "list", "--all", "--name", NULL };
        g_autofree char *out = dv_test_virsh(args);
        g_autoptr(GString) left = g_string_new(NULL);
        for (guint i = 0; i < json_array_get_length(items); i++) {
            const char *m = dv_json_get_string(json_array_get_object_element(items, i), "name", "");
            g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
            for (guint k = 0; lines[k] != NULL; k++)
                if (g_strcmp0(g_strstrip(lines[k]), m) == 0)
                    g_string_append_printf(left, " %s", m);
        }
        doms = g_string_free(g_steal_pointer(&left), FALSE);
        g_assert_cmpstr(doms, ==, "");
        /* The master is not the catalog's. */
        g_assert_nonnull(strstr(out, "master"));
    }
    /* No identity pool of it left. */
    {
        const char *const args[] = { "pool-list", "--all", "--name", NULL };
        g_autofree char *out = dv_test_virsh(args);
        g_autofree char *left = words_with_prefix(out, vprefix);
        g_assert_cmpstr(left, ==, "");
    }
    /* No file of it in the pool's directory either (console logs). */
    {
        g_autoptr(GDir) d = g_dir_open(dir, 0, &error);
        const char *name;
        g_assert_no_error(error);
        while ((name = g_dir_read_name(d)) != NULL)
            if (g_str_has_prefix(name, vprefix))
                g_error("%s/%s is left behind", dir, name);
    }
    g_assert_cmpint(rows(engine, &dv_table_catalogs), ==, 0);
    g_assert_cmpint(rows(engine, &dv_table_catalog_images), ==, 0);
    g_assert_cmpint(rows(engine, &dv_table_catalog_bases), ==, 0);
    g_assert_cmpint(rows(engine, &dv_table_catalog_machines), ==, 0);
    g_assert_cmpint(rows(engine, &dv_table_vms), ==, vms_before - (gint64)json_array_get_length(items));
    for (guint i = 0; i < json_array_get_length(items); i++) {
        g_autoptr(JsonObject) vm = dv_store_get(dv_engine_get_store(engine), &dv_table_vms,
                                                dv_json_get_string(json_array_get_object_element(items, i), "id", ""),
                                                &error);
        g_assert_null(vm);
        g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
        g_clear_error(&error);
    }
}

static void
test_provision_and_boot(void)
{
    g_autofree char *prefix = prefix_new(getppid());
    g_autofree char *dir = dv_test_system_dir_new(prefix);
    g_autofree char *pool = g_strdup_printf("%spool", prefix);
    g_autofree char *pers_pool = g_strdup_printf("%spers", prefix);
    g_autofree char *pers_dir = g_build_filename(dir, "personal", NULL);
    g_autofree char *state_dir = NULL;
    g_autofree char *kernel = g_build_filename(dir, "vmlinuz", NULL);
    g_autofree char *initrd = g_build_filename(dir, "initrd.img", NULL);
    g_autofree char *master_path = g_strdup_printf("%s/%smaster.qcow2", dir, prefix);
    g_autofree char *src = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(DvEngine) engine = NULL;
    g_autoptr(DvVirtHost) vh = dv_virt_host_get(the_virt, "local-test", SYSTEM_URI);
    g_autofree char *json = NULL;
    g_autofree char *cat_name = g_strdup_printf("%scat", prefix);
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) machines = NULL;
    JsonArray *items;

    /* The pool: a transient dir pool over the test's dir. */
    dv_test_copy_file(src = g_build_filename(guest_dir(), "vmlinuz", NULL), kernel);
    g_free(src);
    dv_test_copy_file(src = g_build_filename(guest_dir(), "initrd.img", NULL), initrd);
    g_free(src);
    dv_test_copy_file(src = g_build_filename(guest_dir(), "master.qcow2", NULL), master_path);
    dv_test_system_pool_create(vh, pool, dir);
    /* The personal disks' pool: persistent, stopped, no directory yet. */
    {
        g_autofree char *pxml = g_markup_printf_escaped(
            "<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>", pers_pool,
            pers_dir);
        g_assert_true(dv_virt_pool_define(vh, pers_pool, pxml, FALSE, NULL, &error));
        g_assert_no_error(error);
        g_assert_false(g_file_test(pers_dir, G_FILE_TEST_EXISTS));
    }

    state_dir = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), prefix);
    engine = dv_test_engine_new(state_dir, FALSE);
    g_clear_pointer(&done, json_object_unref);
    done = dv_test_engine_create(engine, DV_KIND_HOST, "{\"name\":\"local\",\"uri\":\"" SYSTEM_URI "\"}", 120000);

    /* The master: gen 1, shut off, the tiny master as its disk, with a
     * snapshot. */
    json = g_strdup_printf("{\"name\":\"%smaster\",\"host\":\"local\",\"memory_mib\":128,\"generation\":1,"
                           "\"disks\":[{\"volume\":\"%s\"}]}", prefix, master_path);
    g_clear_pointer(&done, json_object_unref);
    done = dv_test_engine_create(engine, DV_KIND_VM, json, 120000);
    {
        g_autofree char *vm = g_strdup_printf("%smaster", prefix);
        dv_test_engine_snapshot(engine, vm, "golden", 120000);
    }
    g_clear_pointer(&done, json_object_unref);
    done = dv_test_engine_create(engine, DV_KIND_GUEST_OS_PROFILE,
                  "{\"name\":\"desks\",\"admin_username\":\"admin\",\"admin_password\":\"s3cret-pw\","
                  "\"time_zone\":\"Europe/Berlin\"}", 60000);

    /* The catalog. */
    g_free(json);
    json = g_strdup_printf(
        "{\"name\":\"%s\",\"master_vm\":\"%smaster\",\"master_snapshot\":\"golden\","
        "\"hosts\":[\"local\"],\"pool\":\"%s\",\"naming_scheme\":\"%s#\",\"count\":3,\"type\":"
        "\"persistent\","
        "\"guest_os_profile\":\"desks\",\"personal_disk_mib\":16,\"personal_disk_pool\":\"%s\","
        "\"machine\":{\"memory_mib\":128,\"kernel\":\"%s\",\"initrd\":\"%s\","
        "\"cmdline\":\"console=ttyS0 quiet\"}}",
        cat_name, prefix, pool, prefix, pers_pool, kernel, initrd);
    {
        gint64 t0 = g_get_monotonic_time();
        g_clear_pointer(&done, json_object_unref);
        done = dv_test_engine_create(engine, DV_KIND_CATALOG, json, JOB_WAIT_MS);
        /* The child's test messages are lost: report on stderr. */
        g_printerr("# catalog of 3 provisioned in %.1f s\n",
                       (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC);
    }
    machines = dv_engine_catalog_machines(engine, cat_name, NULL, &error);
    g_assert_no_error(error);
    items = dv_json_get_array(machines, "items");
    g_assert_cmpuint(json_array_get_length(items), ==, 3);
    for (guint i = 0; i < 3; i++) {
        JsonObject *m = json_array_get_object_element(items, i);
        static const char *const paths[] = { "overlay_path", "identity_path", "personal_path" };
        g_autoptr(JsonObject) dom = NULL;
        g_assert_cmpstr(dv_json_get_string(m, "state", ""), ==, "ready");
        /* Beside the provisioning state, the power state of its domain. */
        {
            g_autoptr(JsonObject) vm =
                dv_engine_get(engine, DV_KIND_VM, dv_json_get_string(m, "vm_id", ""), &error);
            g_assert_no_error(error);
            g_assert_nonnull(dv_json_get_string(m, "power_state", NULL));
            g_assert_cmpstr(dv_json_get_string(m, "power_state", ""), ==,
                            dv_json_get_string(vm, "state", "?"));
        }
        for (gsize k = 0; k < G_N_ELEMENTS(paths); k++) {
            const char *p = dv_json_get_string(m, paths[k], NULL);
            g_autoptr(JsonObject) vol = NULL;
            /* Identity disks in the catalog's first identity pool, a
             * directory of the pool's directory, mode 0600. */
            g_autofree char *want_prefix =
                k == 1   ? g_strdup_printf("%s/%s-id-0/%s-%s-", dir, cat_name, cat_name,
                                           dv_json_get_string(m, "name", ""))
                : k == 2 ? g_strdup_printf("%s/%s-%s-", pers_dir, cat_name,
                                           dv_json_get_string(m, "name", ""))
                         : g_strdup_printf("%s/%s-%s-", dir, cat_name,
                                           dv_json_get_string(m, "name", ""));
            g_assert_nonnull(p);
            g_assert_true(g_str_has_prefix(p, want_prefix));
            if (k == 1) {
                GStatBuf st;
                g_assert_cmpint(g_stat(p, &st), ==, 0);
                g_assert_cmpint(st.st_mode & 0777, ==, 0600);
            }
            vol = dv_virt_volume_lookup_by_path(vh, p, NULL, &error);
            g_assert_no_error(error);
        }
        dom = dv_virt_domain_get(vh, dv_json_get_string(m, "domain_uuid", ""), NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(dv_json_get_string(dom, "name", ""), ==, dv_json_get_string(m, "name", ""));
        g_assert_cmpstr(dv_json_get_string(dom, "state", ""), ==, "shutoff");
    }

    /* Boot the second machine and read its console. */
    {
        JsonObject *m = json_array_get_object_element(items, 1);
        const char *mname = dv_json_get_string(m, "name", "");
        g_autofree char *log_path = g_strdup_printf("%s/%s-%s-console.log", dir, cat_name, mname);
        g_autofree char *log = NULL;
        g_autofree char *want_host = g_strdup_printf("DROVER-GUEST: hostname %s", mname);
        g_autofree char *want_id = g_strdup_printf("DROVER-GUEST: instance-id %s", dv_json_get_string(m, "id", ""));
        g_autoptr(JsonObject) job =
            dv_engine_vm_action(engine, mname, "start", DV_ACTOR_NAMED("tester"), &error);
        g_autoptr(JsonObject) row = NULL;
        gint64 deadline = g_get_monotonic_time() + BOOT_TIMEOUT_S * G_USEC_PER_SEC;
        g_assert_no_error(error);
        row = dv_test_engine_run(engine, job, 120000);
        for (;;) {
            g_clear_pointer(&log, g_free);
            g_file_get_contents(log_path, &log, NULL, NULL);
            if (log != NULL && strstr(log, "DROVER-GUEST: done") != NULL)
                break;
            if (g_get_monotonic_time() > deadline)
                g_error("no \"done\" on %s's console within %d s:\n%s", mname, BOOT_TIMEOUT_S,
                        log != NULL ? log : "(no log)");
            g_usleep(200 * 1000);
        }
        g_printerr("# console of %s:\n%s\n", mname, log);
        g_assert_nonnull(strstr(log, want_host));
        g_assert_nonnull(strstr(log, want_id));
        g_assert_nonnull(strstr(log, "DROVER-GUEST: image-version v1"));
        g_assert_nonnull(strstr(log, "DROVER-GUEST: disk vdb iso9660 cidata"));
    }
    reconcile_and_delete(engine, cat_name, pool, dir, items);
    /* The personal disks went with the catalog. */
    {
        g_autoptr(GDir) d = g_dir_open(pers_dir, 0, &error);
        const char *name;
        g_assert_no_error(error);
        while ((name = g_dir_read_name(d)) != NULL)
            g_error("%s/%s is left behind", pers_dir, name);
    }
    g_assert_true(dv_virt_pool_undefine(vh, pers_pool, NULL, &error));
    g_assert_no_error(error);
    g_clear_pointer(&engine, dv_engine_free);
    dv_test_system_remove_tree(state_dir);
}

static void
run_isolated(void)
{
    g_autofree char *prefix = NULL;

    if (g_test_subprocess()) {
        test_provision_and_boot();
        return;
    }
    if (!dv_test_system_check_daemon(the_virt))
        return;
    dv_test_tiny_guest_build(DV_BUILD_TINY_GUEST, guest_dir(), NULL);
    prefix = prefix_new(getpid());
    dv_test_system_run_isolated(the_virt, prefix, 480);
    {
        /* The personal disks' pool is persistent: gone even when the
         * case stopped early (nothing when it ended well). */
        g_autofree char *pers = g_strdup_printf("%spers", prefix);
        g_autoptr(GError) ignored = NULL;
        g_autoptr(DvVirtHost) vh = dv_virt_host_get(the_virt, "local-test", SYSTEM_URI);
        if (!dv_virt_pool_undefine(vh, pers, NULL, &ignored))
            g_debug("no pool %s left: %s", pers, ignored->message);
    }
}

int
main(int argc, char **argv)
{
    int rc;
    g_test_init(&argc, &argv, NULL);
    the_virt = dv_virt_new();
    g_test_add_func("/drover/catalog/system/provision-and-boot", run_isolated);
    rc = g_test_run();
    dv_virt_free(the_virt);
    return rc;
}
