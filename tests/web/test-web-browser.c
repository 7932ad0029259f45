/* The web console in headless Chromium (issue 15): a real droverd with
 * the system libvirtd (the tiny guest, for the serial console and a
 * change made with virsh) and a test:/// host (the lists), driven over
 * the DevTools protocol by tests/web/walk.mjs (puppeteer-core and
 * axe-core from web/package-lock.json, Debian's chromium).  Node or
 * chromium missing is a failure, not a skip.  Screenshots go to the
 * meson log dir (web-screenshots/). */
#define G_LOG_DOMAIN "DvTestWebBrowser"

#include "dv-config.h"
#include "dv-test-system.h"
#include "dv-test-util.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define CHROMIUM "/usr/bin/chromium"
#define NVMS 30

static DvVirt *the_virt;

static void
define_domain(const char *name, const char *dir)
{
    g_autofree char *xml = g_markup_printf_escaped(
        "<domain type='qemu'><name>%s</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s/vmlinuz</kernel>"
        "<initrd>%s/initrd.img</initrd><cmdline>console=ttyS0 quiet drover.echo</cmdline></os>"
        "<features><acpi/></features><on_poweroff>destroy</on_poweroff>"
        "<devices><serial type='pty'><target port='0'/></serial>"
        "<console type='pty'><target type='serial' port='0'/></console>"
        "<graphics type='vnc' autoport='yes' listen='127.0.0.1'/><video><model type='vga'/></video>"
        "</devices></domain>",
        name, dir, dir);
    g_autofree char *file = g_strdup_printf("%s/%s.xml", dir, name);
    g_autofree char *out = NULL;
    const char *const args[] = { "define", file, NULL };

    g_assert_true(g_file_set_contents(file, xml, -1, NULL));
    out = dv_test_virsh(args);
}

static void
test_walk(void)
{
    g_autofree char *prefix = dv_test_system_prefix_new("dvweb", getppid());
    g_autofree char *dir = dv_test_system_dir_new(prefix);
    g_autofree char *state = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), prefix);
    g_autofree char *vm = g_strdup_printf("%sguest", prefix);
    g_autofree char *sim = NULL;
    g_autofree char *body = NULL;
    g_autofree char *shots = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autofree char *master = NULL;
    /* Catalog machines are named by the catalog's scheme (at most 15
     * characters), not by the test's prefix: unique by pid, removed below. */
    g_autofree char *machine_prefix = g_strdup_printf("w%d-", (int)(getpid() % 100000));
    g_autofree char *script = g_build_filename(DV_SOURCE_DIR, "tests", "web", "walk.mjs", NULL);
    g_autofree char *modules = g_build_filename(DV_BUILD_DIR, "web", "npm", "node_modules", NULL);
    const char *args[] = { "--allow-simulated-hosts", NULL };
    g_autoptr(DvTestDaemon) d = NULL;
    g_autoptr(GPtrArray) env = g_ptr_array_new_with_free_func(g_free);
    int rc;

    /* What the walk needs is part of the test: missing is a failure. */
    g_assert_true(g_file_test(CHROMIUM, G_FILE_TEST_IS_EXECUTABLE));
    g_assert_nonnull(g_find_program_in_path("node"));
    g_assert_true(g_file_test(modules, G_FILE_TEST_IS_DIR));

    for (guint i = 0; i < 2; i++) {
        const char *file = i == 0 ? "vmlinuz" : "initrd.img";
        g_autofree char *from =
            g_build_filename(dv_test_tiny_guest_dir(DV_TINY_GUEST_CACHE_DIR), file, NULL);
        g_autofree char *to = g_build_filename(dir, file, NULL);
        dv_test_copy_file(from, to);
    }
    define_domain(vm, dir);
    /* The catalog tour's pool: a transient dir pool holding the master's
     * disk (an empty qcow2, as the catalog system tests use). */
    {
        g_autofree char *pooldir = g_build_filename(dir, "pool", NULL);
        g_autofree char *target = g_strdup_printf("--target=%s", pooldir);
        g_autofree char *pool = g_strdup_printf("%spool", prefix);
        g_autofree char *o1 = NULL;
        const char *const pc[] = { "pool-create-as", pool, "dir", target, NULL };

        master = g_strdup_printf("%s/%smaster.qcow2", pooldir, prefix);
        g_assert_cmpint(g_mkdir(pooldir, 0755), ==, 0);
        {
            const char *const mk[] = { "qemu-img", "create", "-q",  "-f",
                                       "qcow2",    master,   "64M", NULL };
            g_autofree char *mo = NULL;
            g_autofree char *me = NULL;
            g_assert_cmpint(dv_test_spawn(mk, NULL, &mo, &me), ==, 0);
        }
        o1 = dv_test_virsh(pc);
    }
    sim = dv_test_write_host_xml(dir, "sim", "webvm", NVMS);

    g_assert_cmpint(g_mkdir(state, 0700), ==, 0);
    d = dv_test_daemon_start(state, args);
    body = g_strdup_printf("{\"name\":\"%slocal\",\"uri\":\"%s\"}", prefix, DV_TEST_SYSTEM_URI);
    dv_test_run_job_ok(d, "POST", "/api/v1/hosts", body);
    g_clear_pointer(&body, g_free);
    body = g_strdup_printf("{\"name\":\"sim\",\"uri\":\"test://%s\"}", sim);
    dv_test_run_job_ok(d, "POST", "/api/v1/hosts", body);
    g_clear_pointer(&body, g_free);
    /* A delegated administrator: sees the VMs, never a storage field. */
    {
        g_autoptr(JsonObject) u =
            dv_test_request_as_ok(d, d->token, "POST", "/api/v1/users",
                                  "{\"name\":\"deleg\",\"password\":\"deleg-pass-1\","
                                  "\"role\":\"delegated-administrator\"}",
                                  201);
    }

    shots = g_build_filename(g_getenv("MESON_BUILD_ROOT") != NULL ? g_getenv("MESON_BUILD_ROOT")
                                                                  : DV_BUILD_DIR,
                             "meson-logs", "web-screenshots", NULL);
    g_assert_cmpint(g_mkdir_with_parents(shots, 0755), ==, 0);
    {
        char **e = g_get_environ();
        for (guint i = 0; e[i] != NULL; i++)
            g_ptr_array_add(env, g_strdup(e[i]));
        g_strfreev(e);
    }
    g_ptr_array_add(env, g_strdup_printf("DV_URL=%s", d->url));
    g_ptr_array_add(env, g_strdup_printf("DV_ADMIN_PASSWORD=%s", d->password));
    g_ptr_array_add(env, g_strdup_printf("DV_TOKEN=%s", d->token));
    g_ptr_array_add(env, g_strdup("DV_DELEG_USER=deleg"));
    g_ptr_array_add(env, g_strdup("DV_DELEG_PASSWORD=deleg-pass-1"));
    g_ptr_array_add(env, g_strdup_printf("DV_GUEST_VM=%s", vm));
    g_ptr_array_add(env, g_strdup_printf("DV_LOCAL_HOST=%slocal", prefix));
    g_ptr_array_add(env, g_strdup_printf("DV_PREFIX=%s", prefix));
    g_ptr_array_add(env, g_strdup_printf("DV_MASTER=%s", master));
    g_ptr_array_add(env, g_strdup_printf("DV_MACHINE_PREFIX=%s", machine_prefix));
    g_ptr_array_add(env, g_strdup_printf("DV_SIM_VMS=%d", NVMS));
    g_ptr_array_add(env, g_strdup_printf("DV_SHOTS=%s", shots));
    g_ptr_array_add(env, g_strdup_printf("DV_WEB_NODE_MODULES=%s", modules));
    g_ptr_array_add(env, g_strdup("DV_CHROMIUM=" CHROMIUM));
    g_ptr_array_add(env, NULL);
    {
        const char *argv[] = { "node", script, NULL };
        rc = dv_test_spawn(argv, (const char *const *)env->pdata, &out, &err);
    }
    /* The catalog's machines, if the walk ended before deleting it. */
    for (guint i = 1; i <= 2; i++) {
        g_autofree char *m = g_strdup_printf("%s0%u", machine_prefix, i);
        const char *const un[] = { "virsh",    "-q", "-c",      DV_TEST_SYSTEM_URI,
                                   "undefine", m,    "--nvram", NULL };
        const char *const ds[] = { "virsh", "-q", "-c", DV_TEST_SYSTEM_URI, "destroy", m, NULL };
        g_autofree char *o1 = NULL;
        g_autofree char *e1 = NULL;
        g_autofree char *o2 = NULL;
        g_autofree char *e2 = NULL;
        (void)dv_test_spawn(ds, NULL, &o1, &e1);
        (void)dv_test_spawn(un, NULL, &o2, &e2);
    }
    g_printerr("walk stdout:\n%s\n", out);
    g_printerr("walk stderr:\n%s\n", err);
    g_assert_cmpint(rc, ==, 0);
    g_assert_nonnull(strstr(out, "walk: ok"));
    dv_test_daemon_free(g_steal_pointer(&d));
    dv_test_system_remove_tree(state);
}

static void
run_isolated(void)
{
    g_autofree char *prefix = NULL;

    if (g_test_subprocess()) {
        test_walk();
        return;
    }
    if (!dv_test_system_check_daemon(the_virt))
        return;
    dv_test_tiny_guest_build(DV_BUILD_TINY_GUEST, dv_test_tiny_guest_dir(DV_TINY_GUEST_CACHE_DIR),
                             NULL);
    prefix = dv_test_system_prefix_new("dvweb", getpid());
    dv_test_system_run_isolated(the_virt, prefix, 400);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    the_virt = dv_virt_new();
    g_test_add_func("/drover/web/browser/walk", run_isolated);
    return g_test_run();
}
