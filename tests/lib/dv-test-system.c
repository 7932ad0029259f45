#define G_LOG_DOMAIN "DvTestSystem"

#include "dv-test-system.h"
#include "dv-test-util.h"
#include "dv-virt-private.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

/* libvirtd 9.0 can die when a client is killed mid-upload (docs/VIRT.md,
 * "libvirtd crashing when a client dies mid-upload"), which the kill -9
 * tests do on purpose.  In the field systemd restarts it
 * (Restart=on-failure); here the next system test does the same, once per
 * test program, through scripts/ensure-libvirtd, and says so in its log. */
static gboolean
dv_test_system_restart_daemon(void)
{
    const char *srcdir = g_getenv("G_TEST_SRCDIR");
    g_autofree char *script = NULL;
    g_autofree char *out = NULL;
    g_autoptr(GError) error = NULL;
    int status = -1;

    if (srcdir == NULL || getuid() != 0)
        return FALSE;
    script = g_build_filename(srcdir, "..", "scripts", "ensure-libvirtd", NULL);
    if (!g_file_test(script, G_FILE_TEST_IS_EXECUTABLE))
        return FALSE;
    const char *argv[] = { script, NULL };
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out,
                      NULL, &status, &error) ||
        !g_spawn_check_wait_status(status, NULL)) {
        g_test_message("libvirtd did not answer and %s could not start it", script);
        return FALSE;
    }
    g_test_message("libvirtd did not answer (it was down): started again by %s", script);
    return TRUE;
}

gboolean
dv_test_system_check_daemon(DvVirt *virt)
{
    static char *skip_reason;

    if (skip_reason == NULL) {
        g_autoptr(DvVirtHost) host = dv_virt_host_get(virt, "local-check", DV_TEST_SYSTEM_URI);
        g_autoptr(GError) error = NULL;
        g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;

        if (!dv_virt_op_begin(&op, host, NULL, &error) && dv_test_system_restart_daemon()) {
            g_clear_error(&error);
            dv_virt_op_end(&op);
            dv_virt_op_begin(&op, host, NULL, &error);
        }
        if (error == NULL)
            skip_reason = g_strdup("");
        else
            skip_reason = g_strdup_printf("libvirtd is not reachable at %s (%s); run "
                                          "scripts/ensure-libvirtd as root",
                                          DV_TEST_SYSTEM_URI, error->message);
    }
    if (skip_reason[0] == '\0')
        return TRUE;
    if (dv_test_require_services())
        g_error("%s", skip_reason);
    g_test_skip(skip_reason);
    return FALSE;
}

char *
dv_test_system_prefix_new(const char *tag, pid_t parent)
{
    return g_strdup_printf("%s-%d-%08x-", tag, (int)parent, g_str_hash(g_test_get_path()));
}

char *
dv_test_system_dir_new(const char *prefix)
{
    g_autofree char *base = g_strndup(prefix, strlen(prefix) - 1);
    return g_build_filename(g_get_tmp_dir(), base, NULL);
}

void
dv_test_system_remove_tree(const char *dir)
{
    dv_test_rm_rf(dir);
}

void
dv_test_system_cleanup(DvVirt *virt, const char *prefix, const char *dir)
{
    dv_test_system_cleanup_uri(virt, DV_TEST_SYSTEM_URI, prefix, dir);
}

void
dv_test_system_cleanup_uri(DvVirt *virt, const char *uri, const char *prefix, const char *dir)
{
    g_autofree char *cache_id = g_strdup_printf("cleanup-%s", uri);
    g_autoptr(DvVirtHost) host = dv_virt_host_get(virt, cache_id, uri);
    g_autofree char *pool_name = g_strdup_printf("%spool", prefix);
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(DvVirtDomainList) doms = NULL;
    g_autoptr(virStoragePool) pool = NULL;
    g_autoptr(GError) error = NULL;

    if (dv_virt_op_begin(&op, host, NULL, &error)) {
        int n = virConnectListAllDomains(op.conn, &doms, 0);
        for (int i = 0; i < n; i++) {
            if (!g_str_has_prefix(virDomainGetName(doms[i]), prefix))
                continue;
            g_printerr("cleanup: removing leftover domain %s\n", virDomainGetName(doms[i]));
            if (virDomainIsActive(doms[i]) == 1)
                virDomainDestroy(doms[i]);
            virDomainUndefineFlags(doms[i], VIR_DOMAIN_UNDEFINE_NVRAM |
                                                VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                                                VIR_DOMAIN_UNDEFINE_MANAGED_SAVE);
        }
        pool = virStoragePoolLookupByName(op.conn, pool_name);
        if (pool != NULL) {
            g_autoptr(DvVirtVolList) vols = NULL;
            int nv = virStoragePoolListAllVolumes(pool, &vols, 0);
            for (int i = 0; i < nv; i++)
                virStorageVolDelete(vols[i], 0);
            virStoragePoolDestroy(pool);
        }
        /* Other pools of the test (catalog identity pools are persistent). */
        {
            g_autoptr(DvVirtPoolList) pools = NULL;
            int np = virConnectListAllStoragePools(op.conn, &pools, 0);
            for (int i = 0; i < np; i++) {
                if (!g_str_has_prefix(virStoragePoolGetName(pools[i]), prefix))
                    continue;
                g_printerr("cleanup: removing leftover pool %s\n", virStoragePoolGetName(pools[i]));
                if (virStoragePoolIsActive(pools[i]) == 1)
                    virStoragePoolDestroy(pools[i]);
                virStoragePoolUndefine(pools[i]);
            }
        }
        virResetLastError();
    }
    dv_test_system_remove_tree(dir);
}

void
dv_test_system_run_isolated(DvVirt *virt, const char *prefix, guint timeout_s)
{
    g_autofree char *dir = dv_test_system_dir_new(prefix);
    g_autofree char *state_dir = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), prefix);

    dv_test_system_cleanup(virt, prefix, dir);
    dv_test_system_remove_tree(state_dir);
    g_assert_cmpint(g_mkdir(dir, 0755), ==, 0);
    g_chmod(dir, 0755);
    g_test_trap_subprocess(NULL, (guint64)timeout_s * G_USEC_PER_SEC,
                           G_TEST_SUBPROCESS_INHERIT_STDOUT | G_TEST_SUBPROCESS_INHERIT_STDERR);
    dv_test_system_cleanup(virt, prefix, dir);
    dv_test_system_remove_tree(state_dir);
    g_test_trap_assert_passed();
}

void
dv_test_system_pool_create(DvVirtHost *vh, const char *name, const char *dir)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStoragePool) p = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = g_markup_printf_escaped("<pool type='dir'><name>%s</name>"
                                                   "<target><path>%s</path></target></pool>",
                                                   name, dir);
    g_assert_true(dv_virt_op_begin(&op, vh, NULL, &error));
    p = virStoragePoolCreateXML(op.conn, xml, 0);
    if (p == NULL)
        dv_virt_op_fail(&op, &error, "cannot create test pool %s", name);
    g_assert_no_error(error);
}

void
dv_test_copy_file(const char *from, const char *to)
{
    g_autoptr(GFile) src = g_file_new_for_path(from);
    g_autoptr(GFile) dst = g_file_new_for_path(to);
    g_autoptr(GError) error = NULL;
    g_file_copy(src, dst, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, &error);
    g_assert_no_error(error);
    g_chmod(to, 0644);
}

const char *
dv_test_tiny_guest_dir(const char *cache_dir)
{
    const char *dir = g_getenv("DV_TINY_GUEST_DIR");
    return dir != NULL && dir[0] != '\0' ? dir : cache_dir;
}

void
dv_test_tiny_guest_build(const char *script, const char *dir, const char *marker)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    int status = 0;
    const char *argv[] = { script, dir, marker != NULL ? "--marker" : NULL, marker, NULL };
    gint64 t0 = g_get_monotonic_time();

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status,
                      &error))
        g_error("cannot run %s: %s", script, error->message);
    if (!g_spawn_check_wait_status(status, &error))
        g_error("%s %s failed: %s\n%s%s", script, dir, error->message, out, err);
    g_test_message("guest ready in %s (%.1f s)", dir,
                   (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC);
}

char *
dv_test_virsh(const char *const *args)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) error = NULL;
    g_autofree char *err = NULL;
    char *out = NULL;
    int status = 0;

    g_ptr_array_add(argv, (gpointer) "virsh");
    g_ptr_array_add(argv, (gpointer) "-q");
    g_ptr_array_add(argv, (gpointer) "-c");
    g_ptr_array_add(argv, (gpointer)DV_TEST_SYSTEM_URI);
    for (guint i = 0; args[i] != NULL; i++)
        g_ptr_array_add(argv, (gpointer)args[i]);
    g_ptr_array_add(argv, NULL);
    if (!g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status,
                      &error))
        g_error("cannot run virsh: %s", error->message);
    if (!g_spawn_check_wait_status(status, &error))
        g_error("virsh %s failed: %s\n%s", args[0], error->message, err);
    return out;
}

char *
dv_test_tiny_guest_copy(const char *cache_dir, const char *dir, const char *name)
{
    g_autofree char *src = g_build_filename(dv_test_tiny_guest_dir(cache_dir), name, NULL);
    char *dst = g_build_filename(dir, name, NULL);
    dv_test_copy_file(src, dst);
    return dst;
}

double
dv_test_wait_log(const char *log, const char *want, guint timeout_s)
{
    gint64 t0 = g_get_monotonic_time();

    for (;;) {
        g_autofree char *text = NULL;
        if (g_file_get_contents(log, &text, NULL, NULL) && strstr(text, want) != NULL)
            return (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC;
        if (g_get_monotonic_time() - t0 > (gint64)timeout_s * G_USEC_PER_SEC)
            g_error("no '%s' in the guest's log after %u s:\n%s", want, timeout_s,
                    text != NULL ? text : "(no log)");
        g_usleep(50000);
    }
}
