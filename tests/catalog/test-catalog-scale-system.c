/* Machine catalogs across two real libvirt daemons: the local system
 * daemon (qemu:///system) holds the master; a second, private libvirtd
 * that the test starts as user nobody (session mode, its own sockets
 * under the test's dir, reached as qemu+unix:///session?socket=...) is a
 * second host with its own pool of the same name.  (Root's
 * qemu:///session is the system daemon here, so it cannot be the second
 * host.)
 *
 * The master runs while the catalog is made: its disk is frozen with an
 * external disk-only snapshot, flattened into the base, and merged back
 * (it still runs on its own disk afterwards, no freeze layer left).  The
 * session host's base is streamed from the system host's base
 * (virStorageVolDownload into virStorageVolUpload); a machine placed
 * there boots from it and reports the image version and its identity on
 * its serial console.  Deleting the catalog leaves nothing on either host.
 *
 * Second case, a host going away mid-job: the private daemon is killed
 * while its machines are being made.  Its machines fail naming the
 * unreachable host, the system host's all finish; with the daemon back,
 * provisioning again finishes the rest, and the reconciler finds nothing.
 *
 * Each case runs in a child process; everything it makes is named
 * dvs<pid>-... and the parent removes it on both daemons afterwards and
 * stops the private daemon. */
#define G_LOG_DOMAIN "DvTestCatalogScaleSystem"

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
    return g_strdup_printf("dvs%05d-", (int)(pid % 100000));
}

static char *
pool_dir_new(const char *prefix, const char *suffix)
{
    g_autofree char *base = g_strndup(prefix, strlen(prefix) - 1);
    g_autofree char *name = g_strconcat(base, suffix, NULL);
    return g_build_filename(g_get_tmp_dir(), name, NULL);
}

/* --- the private daemon (user nobody, session mode) --------------------------- */

static char *
udaemon_root(const char *prefix)
{
    return pool_dir_new(prefix, "-u");
}

/* The private daemon is reached through its own socket. */
static const char *const dv_scale_uri_parameters[] = { "socket", NULL };

static char *
udaemon_uri(const char *prefix)
{
    g_autofree char *root = udaemon_root(prefix);
    return g_strdup_printf("qemu+unix:///session?socket=%s/run/libvirt/libvirt-sock", root);
}

static GPid
udaemon_pid(const char *prefix)
{
    g_autofree char *root = udaemon_root(prefix);
    g_autofree char *file = g_build_filename(root, "run", "libvirt", "libvirtd.pid", NULL);
    g_autofree char *text = NULL;
    gint64 pid;
    if (!g_file_get_contents(file, &text, NULL, NULL))
        return 0;
    pid = g_ascii_strtoll(text, NULL, 10);
    return pid > 1 && kill((pid_t)pid, 0) == 0 ? (GPid)pid : 0;
}

static void
udaemon_stop(const char *prefix, gboolean hard)
{
    GPid pid = udaemon_pid(prefix);
    if (pid == 0)
        return;
    kill(pid, hard ? SIGKILL : SIGTERM);
    for (guint i = 0; i < 100 && kill(pid, 0) == 0; i++)
        g_usleep(50 * 1000);
    if (kill(pid, 0) == 0)
        kill(pid, SIGKILL);
    for (guint i = 0; i < 100 && kill(pid, 0) == 0; i++)
        g_usleep(50 * 1000);
}

/* Starts it (again) and waits until it answers. */
static void
udaemon_start(const char *prefix)
{
    g_autofree char *root = udaemon_root(prefix);
    g_autofree char *home = g_strdup_printf("HOME=%s", root);
    g_autofree char *run = g_strdup_printf("XDG_RUNTIME_DIR=%s/run", root);
    g_autofree char *cfg = g_strdup_printf("XDG_CONFIG_HOME=%s/config", root);
    g_autofree char *cache = g_strdup_printf("XDG_CACHE_HOME=%s/cache", root);
    g_autofree char *data = g_strdup_printf("XDG_DATA_HOME=%s/data", root);
    g_autofree char *log = g_build_filename(root, "libvirtd.log", NULL);
    g_autofree char *uri = udaemon_uri(prefix);
    const char *argv[] = { "runuser", "-u", "nobody", "--", "env", home, run, cfg, cache, data,
                           "libvirtd", "--daemon", NULL };
    g_autoptr(GError) error = NULL;
    int status = 0;

    g_mkdir_with_parents(root, 0755);
    g_assert_cmpint(chown(root, 65534, 65534), ==, 0);
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL |
                                                     G_SPAWN_STDERR_TO_DEV_NULL,
                      NULL, NULL, NULL, NULL, &status, &error))
        g_error("cannot start a private libvirtd: %s", error->message);
    for (guint i = 0; i < 200; i++) {
        g_autoptr(DvVirtHost) vh = dv_virt_host_get(the_virt, "udaemon-probe", uri);
        g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
        g_autoptr(GError) e = NULL;
        if (dv_virt_op_begin(&op, vh, NULL, &e))
            return;
        g_usleep(50 * 1000);
    }
    g_error("the private libvirtd did not answer at %s (log %s)", uri, log);
}

/* A transient dir pool @name over @dir on the daemon at @uri. */
static void
pool_create(const char *uri, const char *name, const char *dir)
{
    g_autoptr(DvVirtHost) vh = dv_virt_host_get(the_virt, uri, uri);
    dv_test_system_pool_create(vh, name, dir);
}

/* A persistent dir pool (it must survive a restart of the daemon). */
static void
pool_define(const char *uri, const char *name, const char *dir)
{
    g_autoptr(DvVirtHost) vh = dv_virt_host_get(the_virt, uri, uri);
    g_autoptr(GError) error = NULL;
    g_assert_true(dv_virt_pool_ensure_dir(vh, name, dir, NULL, &error));
    g_assert_no_error(error);
}

/* Names of the daemon's pools and domains starting with @prefix. */
static char *
leftovers(const char *uri, const char *prefix)
{
    g_autoptr(DvVirtHost) vh = dv_virt_host_get(the_virt, uri, uri);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonArray) pools = dv_virt_pool_list_by_prefix(vh, prefix, NULL, &error);
    g_autoptr(JsonArray) doms = NULL;
    g_autoptr(GString) out = g_string_new(NULL);
    g_assert_no_error(error);
    doms = dv_virt_domain_list_by_prefix(vh, prefix, NULL, &error);
    g_assert_no_error(error);
    for (guint i = 0; i < json_array_get_length(pools); i++)
        g_string_append_printf(out, " pool:%s", json_array_get_string_element(pools, i));
    for (guint i = 0; i < json_array_get_length(doms); i++)
        g_string_append_printf(out, " domain:%s",
                               dv_json_get_string(json_array_get_object_element(doms, i), "name", ""));
    return g_string_free(g_steal_pointer(&out), FALSE);
}

static void
wait_console(const char *log_path, const char *what)
{
    gint64 deadline = g_get_monotonic_time() + BOOT_TIMEOUT_S * G_USEC_PER_SEC;
    for (;;) {
        g_autofree char *log = NULL;
        g_file_get_contents(log_path, &log, NULL, NULL);
        if (log != NULL && strstr(log, "DROVER-GUEST: done") != NULL) {
            g_printerr("# console of %s:\n%s\n", what, log);
            return;
        }
        if (g_get_monotonic_time() > deadline)
            g_error("no \"done\" on %s's console within %d s:\n%s", what, BOOT_TIMEOUT_S,
                    log != NULL ? log : "(no log)");
        g_usleep(200 * 1000);
    }
}

/* Adds host "local" (the system daemon) and "session" (the private
 * daemon at @session_uri, with @session_ops operations at most, 0 for the
 * default) to @engine, then VM @master_name on @master_path with its
 * snapshot "golden" taken shut off.  Returns the session host's id
 * (owned). */
static char *
add_hosts_and_master(DvEngine *engine, const char *session_uri, guint session_ops, const char *master_name,
                     const char *master_path)
{
    g_autoptr(JsonObject) done = NULL;
    g_autofree char *json = NULL;
    char *session_id;

    done = dv_test_engine_create(engine, DV_KIND_HOST, "{\"name\":\"local\",\"uri\":\"" DV_TEST_SYSTEM_URI "\"}", 120000);
    g_clear_pointer(&done, json_object_unref);
    if (session_ops > 0)
        json = g_strdup_printf("{\"name\":\"session\",\"uri\":\"%s\",\"max_concurrent_operations\":%u}", session_uri,
                               session_ops);
    else
        json = g_strdup_printf("{\"name\":\"session\",\"uri\":\"%s\"}", session_uri);
    done = dv_test_engine_create(engine, DV_KIND_HOST, json, 120000);
    session_id = g_strdup(dv_json_get_string(dv_json_get_object(done, "result"), "id", ""));
    g_clear_pointer(&done, json_object_unref);
    g_free(json);
    json = g_strdup_printf("{\"name\":\"%s\",\"host\":\"local\",\"memory_mib\":64,\"generation\":1,"
                           "\"disks\":[{\"volume\":\"%s\"}]}", master_name, master_path);
    done = dv_test_engine_create(engine, DV_KIND_VM, json, 120000);
    dv_test_engine_snapshot(engine, master_name, "golden", 120000);
    return session_id;
}

static void
test_two_hosts_running_master(void)
{
    g_autofree char *prefix = prefix_new(getppid());
    g_autofree char *dir = pool_dir_new(prefix, "");
    g_autofree char *sdir = pool_dir_new(prefix, "-s");
    g_autofree char *session_uri = udaemon_uri(prefix);
    g_autofree char *pool = g_strdup_printf("%spool", prefix);
    g_autofree char *state_dir = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), prefix);
    g_autofree char *kernel = g_build_filename(dir, "vmlinuz", NULL);
    g_autofree char *initrd = g_build_filename(dir, "initrd.img", NULL);
    g_autofree char *master_path = g_strdup_printf("%s/%smaster.qcow2", dir, prefix);
    g_autofree char *freeze_path = g_strconcat(master_path, "-drover-freeze.qcow2", NULL);
    g_autofree char *master_name = g_strdup_printf("%smaster", prefix);
    g_autofree char *cat_name = g_strdup_printf("%scat", prefix);
    g_autofree char *cat_prefix = g_strdup_printf("%s-", cat_name);
    g_autofree char *src = NULL;
    g_autofree char *json = NULL;
    g_autofree char *session_id = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(DvEngine) engine = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) machines = NULL;
    g_autoptr(JsonObject) master = NULL;
    g_autoptr(DvVirtHost) lvh = dv_virt_host_get(the_virt, DV_TEST_SYSTEM_URI, DV_TEST_SYSTEM_URI);
    JsonArray *items;
    JsonObject *on_session = NULL;
    guint n_session = 0;

    g_assert_cmpint(g_mkdir(sdir, 0755), ==, 0);
    g_assert_cmpint(chown(sdir, 65534, 65534), ==, 0);
    dv_test_copy_file(src = g_build_filename(guest_dir(), "vmlinuz", NULL), kernel);
    g_free(src);
    dv_test_copy_file(src = g_build_filename(guest_dir(), "initrd.img", NULL), initrd);
    g_free(src);
    dv_test_copy_file(src = g_build_filename(guest_dir(), "master.qcow2", NULL), master_path);
    pool_create(DV_TEST_SYSTEM_URI, pool, dir);
    pool_create(session_uri, pool, sdir);

    engine = dv_test_engine_new_with_uri_parameters(state_dir, FALSE, dv_scale_uri_parameters);
    /* The master: a snapshot taken shut off, then started (it has no
     * kernel of its own: it sits in its firmware, QEMU runs). */
    session_id = add_hosts_and_master(engine, session_uri, 0, master_name, master_path);
    {
        g_autoptr(JsonObject) job =
            dv_engine_vm_action(engine, master_name, "start", DV_ACTOR_NAMED("tester"), &error);
        g_autoptr(JsonObject) row = NULL;
        g_assert_no_error(error);
        row = dv_test_engine_run(engine, job, 120000);
    }

    g_free(json);
    json = g_strdup_printf("{\"name\":\"%s\",\"master_vm\":\"%s\",\"master_snapshot\":\"golden\","
                           "\"hosts\":[\"local\",\"session\"],\"pool\":\"%s\",\"naming_scheme\":\"%s#\","
                           "\"count\":4,\"personal_disk_mib\":16,"
                           "\"machine\":{\"memory_mib\":128,\"kernel\":\"%s\",\"initrd\":\"%s\","
                           "\"cmdline\":\"console=ttyS0 quiet\"}}",
                           cat_name, master_name, pool, prefix, kernel, initrd);
    {
        gint64 t0 = g_get_monotonic_time();
        g_clear_pointer(&done, json_object_unref);
        done = dv_test_engine_create(engine, DV_KIND_CATALOG, json, JOB_WAIT_MS);
        g_printerr("# catalog of 4 on 2 hosts, master running: %.1f s\n",
                   (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC);
    }

    /* The master runs on its own disk again; no freeze layer is left.
     * (Without the freeze the copy would have failed: qemu-img cannot
     * take its lock on a disk a running QEMU writes.) */
    master = dv_engine_get(engine, DV_KIND_VM, master_name, &error);
    g_assert_no_error(error);
    {
        g_autofree char *xml = dv_virt_domain_get_xml(lvh, dv_json_get_string(master, "uuid", ""), FALSE, NULL,
                                                      &error);
        g_autofree char *want = g_strdup_printf("<source file='%s'", master_path);
        g_autoptr(JsonObject) dom = dv_virt_domain_get(lvh, dv_json_get_string(master, "uuid", ""), NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(dv_json_get_string(dom, "state", ""), ==, "running");
        g_assert_nonnull(strstr(xml, want));
        g_assert_null(strstr(xml, "drover-freeze"));
        g_assert_false(g_file_test(freeze_path, G_FILE_TEST_EXISTS));
    }

    /* Both bases ready, the session one streamed into the session pool. */
    {
        g_autoptr(JsonObject) cat = dv_engine_get(engine, DV_KIND_CATALOG, cat_name, &error);
        DvFilter f = { "catalog_id", DV_FILTER_EQ, dv_json_get_string(cat, "id", "") };
        g_autoptr(JsonArray) bases = dv_store_list(dv_engine_get_store(engine), &dv_table_catalog_bases, &f, 1, 10,
                                                   NULL, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(bases), ==, 2);
        for (guint i = 0; i < 2; i++) {
            JsonObject *b = json_array_get_object_element(bases, i);
            g_assert_cmpstr(dv_json_get_string(b, "state", ""), ==, "ready");
            if (g_strcmp0(dv_json_get_string(b, "host_id", ""), session_id) == 0)
                g_assert_true(g_str_has_prefix(dv_json_get_string(b, "path", ""), sdir));
        }
    }
    machines = dv_engine_catalog_machines(engine, cat_name, NULL, &error);
    g_assert_no_error(error);
    items = dv_json_get_array(machines, "items");
    g_assert_cmpuint(json_array_get_length(items), ==, 4);
    for (guint i = 0; i < 4; i++) {
        JsonObject *m = json_array_get_object_element(items, i);
        g_assert_cmpstr(dv_json_get_string(m, "state", ""), ==, "ready");
        if (g_strcmp0(dv_json_get_string(m, "host_id", ""), session_id) == 0) {
            n_session++;
            on_session = m;
        }
    }
    /* Spread over both hosts. */
    g_assert_cmpuint(n_session, >=, 1);
    g_assert_cmpuint(n_session, <=, 3);

    /* A machine on the session host boots from the streamed base. */
    {
        const char *mname = dv_json_get_string(on_session, "name", "");
        g_autofree char *log_path = g_strdup_printf("%s/%s-%s-console.log", sdir, cat_name, mname);
        g_autofree char *log = NULL;
        g_autofree char *want_host = g_strdup_printf("DROVER-GUEST: hostname %s", mname);
        g_autoptr(JsonObject) job =
            dv_engine_vm_action(engine, mname, "start", DV_ACTOR_NAMED("tester"), &error);
        g_autoptr(JsonObject) row = NULL;
        g_assert_no_error(error);
        row = dv_test_engine_run(engine, job, 120000);
        wait_console(log_path, mname);
        g_assert_true(g_file_get_contents(log_path, &log, NULL, NULL));
        g_assert_nonnull(strstr(log, want_host));
        g_assert_nonnull(strstr(log, "DROVER-GUEST: image-version v1"));
    }
    {
        g_autoptr(JsonObject) r = dv_engine_catalog_reconcile(engine, cat_name, &error);
        g_autofree char *t = NULL;
        g_assert_no_error(error);
        t = dv_json_object_to_string(r, FALSE);
        g_printerr("# reconcile: %s\n", t);
        g_assert_true(dv_json_get_bool(r, "ok", FALSE));
    }

    /* Delete: nothing of the catalog stays on either host. */
    {
        g_autoptr(JsonObject) job = dv_engine_delete(engine, DV_KIND_CATALOG, cat_name, NULL,
                                                     DV_ACTOR_NAMED("tester"), &error);
        g_autoptr(JsonObject) row = NULL;
        g_autofree char *left_l = NULL;
        g_autofree char *left_s = NULL;
        g_autofree char *want = NULL;
        g_assert_no_error(error);
        row = dv_test_engine_run(engine, job, JOB_WAIT_MS);
        left_l = leftovers(DV_TEST_SYSTEM_URI, cat_prefix);
        left_s = leftovers(session_uri, cat_prefix);
        g_assert_cmpstr(left_l, ==, "");
        g_assert_cmpstr(left_s, ==, "");
        g_free(left_s);
        left_s = leftovers(session_uri, prefix);
        /* Only the test's own pool. */
        want = g_strdup_printf(" pool:%s", pool);
        g_assert_cmpstr(left_s, ==, want);
    }
    g_clear_pointer(&engine, dv_engine_free);
    dv_test_system_remove_tree(state_dir);
}


/* The private daemon is killed (SIGKILL) while its machines are being
 * made; a retry with it back finishes them. */
static void
test_host_goes_away(void)
{
    g_autofree char *prefix = prefix_new(getppid());
    g_autofree char *dir = pool_dir_new(prefix, "");
    g_autofree char *sdir = pool_dir_new(prefix, "-s");
    g_autofree char *session_uri = udaemon_uri(prefix);
    g_autofree char *pool = g_strdup_printf("%spool", prefix);
    g_autofree char *state_dir = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), prefix);
    g_autofree char *master_path = g_strdup_printf("%s/%smaster.qcow2", dir, prefix);
    g_autofree char *master_name = g_strdup_printf("%smaster", prefix);
    g_autofree char *cat_name = g_strdup_printf("%scat", prefix);
    g_autofree char *src = NULL;
    g_autofree char *json = NULL;
    g_autofree char *session_id = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(DvEngine) engine = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) row = NULL;
    guint local_ready = 0, s_ready = 0, s_failed = 0;
    const guint count = 90; /* pooled machines are quick: enough that the kill lands mid-way */

    g_assert_cmpint(g_mkdir(sdir, 0755), ==, 0);
    g_assert_cmpint(chown(sdir, 65534, 65534), ==, 0);
    dv_test_copy_file(src = g_build_filename(guest_dir(), "master.qcow2", NULL), master_path);
    pool_create(DV_TEST_SYSTEM_URI, pool, dir);
    pool_define(session_uri, pool, sdir);
    engine = dv_test_engine_new_with_uri_parameters(state_dir, FALSE, dv_scale_uri_parameters);
    /* One machine step at a time there, so the kill lands mid-way. */
    session_id = add_hosts_and_master(engine, session_uri, 1, master_name, master_path);

    json = g_strdup_printf("{\"name\":\"%s\",\"master_vm\":\"%s\",\"master_snapshot\":\"golden\","
                           "\"hosts\":[\"local\",\"session\"],\"pool\":\"%s\",\"naming_scheme\":\"%s##\","
                           "\"count\":%u,\"personal_disk_mib\":16,\"machine\":{\"memory_mib\":64}}",
                           cat_name, master_name, pool, prefix, count);
    {
        g_autoptr(JsonObject) body = dv_test_json_object(json);
        job = dv_engine_create(engine, DV_KIND_CATALOG, body, DV_ACTOR_NAMED("tester"), &error);
        g_assert_no_error(error);
    }
    /* The host goes away once some of its machines are recorded. */
    for (guint i = 0;; i++) {
        DvFilter f[] = { { "host_id", DV_FILTER_EQ, session_id }, { "state", DV_FILTER_EQ, "ready" } };
        gint64 n = dv_store_count(dv_engine_get_store(engine), &dv_table_catalog_machines, f, 2, &error);
        g_assert_no_error(error);
        if (n > 0)
            break;
        if (i > 3000)
            g_error("no machine of the second host became ready");
        g_usleep(5 * 1000);
    }
    udaemon_stop(prefix, TRUE);
    g_assert_true(dv_job_manager_wait_idle(dv_engine_get_jobs(engine), JOB_WAIT_MS));
    row = dv_store_get(dv_engine_get_store(engine), &dv_table_jobs, dv_json_get_string(job, "id", ""), &error);
    g_assert_no_error(error);
    g_printerr("# job: %s\n", dv_json_get_string(dv_json_get_object(row, "error"), "message", ""));
    g_assert_cmpstr(dv_json_get_string(row, "state", ""), ==, "failed");
    {
        g_autoptr(JsonObject) ms = dv_engine_catalog_machines(engine, cat_name, NULL, &error);
        JsonArray *items = dv_json_get_array(ms, "items");
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(items), ==, count);
        for (guint i = 0; i < count; i++) {
            JsonObject *m = json_array_get_object_element(items, i);
            gboolean ready = g_strcmp0(dv_json_get_string(m, "state", ""), "ready") == 0;
            if (g_strcmp0(dv_json_get_string(m, "host_id", ""), session_id) != 0) {
                g_assert_true(ready);
                local_ready++;
            } else if (ready) {
                s_ready++;
            } else {
                g_assert_cmpstr(dv_json_get_string(m, "state", ""), ==, "failed");
                if (strstr(dv_json_get_string(m, "error", ""), "cannot reach host") == NULL)
                    g_error("%s failed for another reason: %s", dv_json_get_string(m, "name", ""),
                            dv_json_get_string(m, "error", ""));
                s_failed++;
            }
        }
    }
    g_printerr("# after the host went away: %u ready on the first host, %u ready and %u failed on the second\n",
               local_ready, s_ready, s_failed);
    g_assert_cmpuint(s_ready, >=, 1);
    g_assert_cmpuint(s_failed, >=, 1);

    /* The host is back: provisioning again finishes the rest. */
    udaemon_start(prefix);
    g_clear_pointer(&job, json_object_unref);
    g_clear_pointer(&row, json_object_unref);
    job = dv_engine_catalog_provision(engine, cat_name, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    row = dv_test_engine_run(engine, job, JOB_WAIT_MS);
    g_assert_cmpint(dv_json_get_int(dv_json_get_object(row, "result"), "machines_ready", 0), ==, count);
    {
        g_autoptr(JsonObject) r = dv_engine_catalog_reconcile(engine, cat_name, &error);
        g_autofree char *t = NULL;
        g_assert_no_error(error);
        t = dv_json_object_to_string(r, FALSE);
        g_printerr("# reconcile: %s\n", t);
        g_assert_true(dv_json_get_bool(r, "ok", FALSE));
    }
    {
        g_autoptr(JsonObject) dj = dv_engine_delete(engine, DV_KIND_CATALOG, cat_name, NULL,
                                                    DV_ACTOR_NAMED("tester"), &error);
        g_autoptr(JsonObject) r = NULL;
        g_assert_no_error(error);
        r = dv_test_engine_run(engine, dj, JOB_WAIT_MS);
    }
    g_clear_pointer(&engine, dv_engine_free);
    dv_test_system_remove_tree(state_dir);
}

static void
cleanup_all(const char *prefix)
{
    g_autofree char *dir = pool_dir_new(prefix, "");
    g_autofree char *sdir = pool_dir_new(prefix, "-s");
    g_autofree char *state_dir = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), prefix);
    dv_test_system_cleanup(the_virt, prefix, dir);
    g_autofree char *uri = udaemon_uri(prefix);
    g_autofree char *root = udaemon_root(prefix);
    /* The private daemon's domains first (its QEMUs outlive it). */
    if (udaemon_pid(prefix) != 0)
        dv_test_system_cleanup_uri(the_virt, uri, prefix, sdir);
    udaemon_stop(prefix, FALSE);
    dv_test_system_remove_tree(sdir);
    dv_test_system_remove_tree(root);
    dv_test_system_remove_tree(state_dir);
}

static void
run_isolated(gconstpointer data)
{
    GTestFunc fn = (GTestFunc)data;
    g_autofree char *prefix = NULL;
    g_autofree char *dir = NULL;

    if (g_test_subprocess()) {
        fn();
        return;
    }
    if (!dv_test_system_check_daemon(the_virt))
        return;
    dv_test_tiny_guest_build(DV_BUILD_TINY_GUEST, guest_dir(), NULL);
    prefix = prefix_new(getpid());
    dir = pool_dir_new(prefix, "");
    cleanup_all(prefix);
    g_assert_cmpint(g_mkdir(dir, 0755), ==, 0);
    g_chmod(dir, 0755);
    udaemon_start(prefix);
    g_test_trap_subprocess(NULL, 480 * G_USEC_PER_SEC,
                           G_TEST_SUBPROCESS_INHERIT_STDOUT | G_TEST_SUBPROCESS_INHERIT_STDERR);
    cleanup_all(prefix);
    g_test_trap_assert_passed();
}

int
main(int argc, char **argv)
{
    int rc;
    g_test_init(&argc, &argv, NULL);
    the_virt = dv_virt_new();
    dv_virt_set_uri_policy(the_virt, FALSE, dv_scale_uri_parameters);
    g_test_add_data_func("/drover/catalog/scale-system/two-hosts-running-master",
                         (gconstpointer)test_two_hosts_running_master, run_isolated);
    g_test_add_data_func("/drover/catalog/scale-system/host-goes-away", (gconstpointer)test_host_goes_away,
                         run_isolated);
    rc = g_test_run();
    dv_virt_free(the_virt);
    return rc;
}
