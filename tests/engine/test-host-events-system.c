#define _GNU_SOURCE
#define G_LOG_DOMAIN "DvTestHostEvents"

/* Host events against the real daemon (qemu:///system, QEMU under TCG):
 * - a VM started through Drover and destroyed with virsh shows shut off in
 *   the VM's object (what GET /vms/{id} returns) within 2 s, without a
 *   refresh; prints the delay from virsh's return to the database;
 * - a file copied into a pool shows as a volume within 2 s, and is gone
 *   within 2 s of its removal;
 * - a host whose libvirtd stops answering (a proxy in front of its socket
 *   that stops passing bytes, as a stopped daemon does) turns unreachable
 *   within libvirt's keepalive window, and back to ok once it answers;
 *   both changes are logged with the host's DROVER_ fields. */

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "dv-engine.h"
#include "dv-hosts.h"
#include "dv-test-catalog.h"
#include "dv-test-system.h"
#include "dv-test-util.h"

#define WAIT_MS 120000

static DvVirt *the_virt;

static void
test_destroy_with_virsh(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *prefix = dv_test_system_prefix_new("dvevt", getppid());
    g_autofree char *state = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), prefix);
    g_autofree char *name = g_strconcat(prefix, "vm", NULL);
    g_autofree char *xml = NULL;
    g_autofree char *uuid = NULL;
    g_autoptr(DvEngine) engine = NULL;
    g_autoptr(JsonObject) spec = json_object_new();
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(DvVirtHost) vh = dv_virt_host_get(the_virt, "events-local", DV_TEST_SYSTEM_URI);
    const char *virsh_destroy[] = { "destroy", NULL, NULL };
    gint64 start, took = -1;

    /* A diskless 32 MiB TCG domain: QEMU runs, no guest is needed to see
     * its power state change. */
    json_object_set_string_member(spec, "name", name);
    json_object_set_int_member(spec, "memory_mib", 32);
    xml = dv_virt_domain_xml_new(spec, &error);
    g_assert_no_error(error);
    uuid = dv_virt_domain_define(vh, xml, NULL, &error);
    g_assert_no_error(error);

    engine = dv_test_engine_new(state, TRUE);
    g_assert_nonnull(engine);
    {
        g_autoptr(JsonObject) h = dv_test_engine_create(
            engine, DV_KIND_HOST, "{\"name\":\"local\",\"uri\":\"qemu:///system\"}", WAIT_MS);
    }
    g_assert_true(dv_engine_hosts_watch_start(engine, 600000, 0, &error));
    g_assert_no_error(error);

    job = dv_engine_vm_action(engine, name, "start", DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    done = dv_test_engine_run(engine, job, WAIT_MS);
    {
        g_autoptr(JsonObject) vm = dv_engine_get(engine, DV_KIND_VM, name, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(dv_json_get_string(vm, "state", ""), ==, "running");
    }
    /* Let the watch connection settle (it opened in the background). */
    for (guint i = 0; i < 500; i++) {
        g_autoptr(JsonObject) st = dv_engine_hosts_watch_get_stats(engine);
        if (dv_json_get_int(st, "connected", 0) == 1)
            break;
        g_usleep(10000);
    }

    virsh_destroy[1] = name;
    g_free(dv_test_virsh(virsh_destroy));
    start = g_get_monotonic_time();
    while (g_get_monotonic_time() - start < 5 * G_USEC_PER_SEC) {
        g_autoptr(JsonObject) vm = dv_engine_get(engine, DV_KIND_VM, name, &error);
        g_assert_no_error(error);
        if (g_strcmp0(dv_json_get_string(vm, "state", ""), "shutoff") == 0) {
            took = g_get_monotonic_time() - start;
            break;
        }
        g_usleep(2000);
    }
    {
        g_autoptr(JsonObject) st = dv_engine_hosts_watch_get_stats(engine);
        g_printerr("# qemu:///system: virsh destroy -> VM shut off in the database: %.1f ms "
                   "after virsh returned; event received -> row committed %.1f ms\n",
                   took / 1000.0, dv_json_get_int(st, "last_delay_us", 0) / 1000.0);
    }
    g_assert_cmpint(took, >=, 0);
    g_assert_cmpint(took, <, 2 * G_USEC_PER_SEC);
    g_clear_pointer(&engine, dv_engine_free);
    g_assert_true(dv_virt_domain_undefine(vh, uuid, NULL, &error));
}

/* Waits until the watch of @engine has its one host connected. */
static void
wait_watch_connected(DvEngine *engine)
{
    for (guint i = 0; i < 3000; i++) {
        g_autoptr(JsonObject) st = dv_engine_hosts_watch_get_stats(engine);
        if (dv_json_get_int(st, "connected", 0) == 1)
            return;
        g_usleep(10000);
    }
    g_assert_not_reached();
}

/* Whether volume @name is in the inventory. */
static gboolean
volume_known(DvEngine *engine, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) row =
        dv_store_find(dv_engine_get_store(engine), &dv_table_volumes, "name", name, &error);

    if (row == NULL)
        g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    return row != NULL;
}

/* Microseconds until volume_known(@name) is @want, or -1 after 5 s. */
static gint64
wait_volume(DvEngine *engine, const char *name, gboolean want)
{
    gint64 start = g_get_monotonic_time();

    while (g_get_monotonic_time() - start < 5 * G_USEC_PER_SEC) {
        if (volume_known(engine, name) == want)
            return g_get_monotonic_time() - start;
        g_usleep(5000);
    }
    return -1;
}

static void
test_volume_copied(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *prefix = dv_test_system_prefix_new("dvevt", getppid());
    g_autofree char *dir = dv_test_system_dir_new(prefix);
    g_autofree char *state = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), prefix);
    g_autofree char *pool = g_strconcat(prefix, "pool", NULL);
    g_autofree char *pool_dir = g_build_filename(dir, "pool", NULL);
    g_autofree char *vol = g_strconcat(prefix, "copied.img", NULL);
    g_autofree char *outside = g_build_filename(dir, vol, NULL);
    g_autofree char *inside = g_build_filename(pool_dir, vol, NULL);
    g_autofree char *zeros = g_malloc0(1 << 20);
    g_autoptr(DvEngine) engine = NULL;
    g_autoptr(DvVirtHost) vh = dv_virt_host_get(the_virt, "events-local", DV_TEST_SYSTEM_URI);
    gint64 took_add, took_remove;

    g_assert_cmpint(g_mkdir(pool_dir, 0755), ==, 0);
    dv_test_system_pool_create(vh, pool, pool_dir);
    engine = dv_test_engine_new(state, TRUE);
    {
        g_autoptr(JsonObject) h = dv_test_engine_create(
            engine, DV_KIND_HOST, "{\"name\":\"local\",\"uri\":\"qemu:///system\"}", WAIT_MS);
    }
    g_assert_true(dv_engine_hosts_watch_start(engine, 600000, 0, &error));
    g_assert_no_error(error);
    wait_watch_connected(engine);
    g_assert_false(volume_known(engine, vol));

    /* Written beside the pool, then moved in whole, as a copy tool does. */
    g_assert_true(g_file_set_contents(outside, zeros, 1 << 20, &error));
    g_assert_no_error(error);
    g_assert_cmpint(g_rename(outside, inside), ==, 0);
    took_add = wait_volume(engine, vol, TRUE);
    g_assert_cmpint(g_unlink(inside), ==, 0);
    took_remove = wait_volume(engine, vol, FALSE);
    {
        g_autoptr(JsonObject) st = dv_engine_hosts_watch_get_stats(engine);
        g_printerr("# qemu:///system: a file moved into a pool -> a volume in the database: "
                   "%.1f ms; removed -> gone: %.1f ms; one scan of the host's pools: %.1f ms\n",
                   took_add / 1000.0, took_remove / 1000.0,
                   dv_json_get_int(st, "last_volume_scan_us", 0) / 1000.0);
        g_assert_cmpint(dv_json_get_int(st, "volume_scan_changes", 0), >=, 2);
    }
    g_assert_cmpint(took_add, >=, 0);
    g_assert_cmpint(took_add, <, 2 * G_USEC_PER_SEC);
    g_assert_cmpint(took_remove, >=, 0);
    g_assert_cmpint(took_remove, <, 2 * G_USEC_PER_SEC);
}

/* ---- a libvirtd that stops answering -----------------------------------
 *
 * A proxy on a socket of its own in front of the daemon's: while frozen it
 * accepts and connects but passes no byte either way, as a daemon stopped
 * with SIGSTOP would (the kernel keeps what is written). */

typedef struct {
    int client;
    int daemon;
} ProxyPair;

typedef struct {
    int listen_fd;
    char *target;
    GArray *pairs;
    gint frozen;
    gint stop;
    GThread *thread;
} Proxy;

static int
proxy_connect(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(fd, >=, 0);
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Passes what @from has to @to; FALSE when the pair is done. */
static gboolean
proxy_pass(int from, int to)
{
    char buf[65536];
    ssize_t n = read(from, buf, sizeof(buf));

    if (n <= 0)
        return n < 0 && (errno == EINTR || errno == EAGAIN);
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(to, buf + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return FALSE;
        off += w;
    }
    return TRUE;
}

static gpointer
proxy_run(gpointer data)
{
    Proxy *p = data;

    while (!g_atomic_int_get(&p->stop)) {
        gboolean frozen = g_atomic_int_get(&p->frozen);
        guint n = p->pairs->len;
        g_autofree struct pollfd *fds = g_new0(struct pollfd, 1 + 2 * n);
        guint nfds = 1;

        fds[0] = (struct pollfd){ .fd = p->listen_fd, .events = POLLIN };
        if (!frozen) {
            for (guint i = 0; i < n; i++) {
                ProxyPair *pp = &g_array_index(p->pairs, ProxyPair, i);
                fds[nfds++] = (struct pollfd){ .fd = pp->client, .events = POLLIN };
                fds[nfds++] = (struct pollfd){ .fd = pp->daemon, .events = POLLIN };
            }
        }
        if (poll(fds, nfds, 50) <= 0)
            continue;
        if (!frozen) {
            for (guint i = n; i-- > 0;) {
                ProxyPair *pp = &g_array_index(p->pairs, ProxyPair, i);
                short up = fds[1 + 2 * i].revents, down = fds[2 + 2 * i].revents;
                gboolean ok = TRUE;

                if (up != 0)
                    ok = proxy_pass(pp->client, pp->daemon);
                if (ok && down != 0)
                    ok = proxy_pass(pp->daemon, pp->client);
                if (!ok) {
                    close(pp->client);
                    close(pp->daemon);
                    g_array_remove_index(p->pairs, i);
                }
            }
        }
        if (fds[0].revents & POLLIN) {
            ProxyPair pp = { accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC), -1 };
            if (pp.client >= 0) {
                pp.daemon = proxy_connect(p->target);
                if (pp.daemon < 0)
                    close(pp.client);
                else
                    g_array_append_val(p->pairs, pp);
            }
        }
    }
    return NULL;
}

static Proxy *
proxy_start(const char *path, const char *target)
{
    Proxy *p = g_new0(Proxy, 1);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };

    g_assert_cmpuint(strlen(path), <, sizeof(addr.sun_path));
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    p->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(p->listen_fd, >=, 0);
    g_assert_cmpint(bind(p->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(p->listen_fd, 16), ==, 0);
    p->target = g_strdup(target);
    p->pairs = g_array_new(FALSE, FALSE, sizeof(ProxyPair));
    p->thread = g_thread_new("test-proxy", proxy_run, p);
    return p;
}

static void
proxy_stop(Proxy *p)
{
    g_atomic_int_set(&p->stop, 1);
    g_thread_join(p->thread);
    for (guint i = 0; i < p->pairs->len; i++) {
        close(g_array_index(p->pairs, ProxyPair, i).client);
        close(g_array_index(p->pairs, ProxyPair, i).daemon);
    }
    g_array_unref(p->pairs);
    close(p->listen_fd);
    g_free(p->target);
    g_free(p);
}

/* Microseconds until host @id's state is @want, or -1 after @limit_s. */
static gint64
wait_host_state(DvEngine *engine, const char *id, const char *want, guint limit_s,
                char **ret_reason)
{
    gint64 start = g_get_monotonic_time();

    while (g_get_monotonic_time() - start < (gint64)limit_s * G_USEC_PER_SEC) {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) h =
            dv_store_get(dv_engine_get_store(engine), &dv_table_hosts, id, &error);
        g_assert_no_error(error);
        if (g_strcmp0(dv_json_get_string(h, "state", ""), want) == 0) {
            if (ret_reason != NULL)
                *ret_reason = g_strdup(dv_json_get_string(h, "state_reason", ""));
            return g_get_monotonic_time() - start;
        }
        g_usleep(20000);
    }
    return -1;
}

#define DAEMON_SOCKET "/run/libvirt/libvirt-sock"

static void
test_keepalive(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *prefix = dv_test_system_prefix_new("dvevt", getppid());
    g_autofree char *dir = dv_test_system_dir_new(prefix);
    g_autofree char *state = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), prefix);
    g_autofree char *sock = g_build_filename(dir, "libvirt.sock", NULL);
    g_autofree char *body = NULL;
    g_autofree char *reason = NULL;
    g_autofree char *host_id = NULL;
    const char *const allow[] = { "socket", NULL };
    g_autoptr(DvEngine) engine = NULL;
    /* libvirt closes a connection after its count of unanswered pings,
     * one every interval, once the connection is idle an interval. */
    guint window_s = DV_VIRT_KEEPALIVE_INTERVAL * (DV_VIRT_KEEPALIVE_COUNT + 2);
    gint64 took_down, took_up;
    Proxy *proxy = proxy_start(sock, DAEMON_SOCKET);
    g_autoptr(GHashTable) lost = NULL;
    g_autoptr(GHashTable) regained = NULL;

    dv_test_log_capture_start();
    engine = dv_test_engine_new_with_uri_parameters(state, TRUE, allow);
    body =
        g_strdup_printf("{\"name\":\"proxied\",\"uri\":\"qemu+unix:///system?socket=%s\"}", sock);
    {
        g_autoptr(JsonObject) done = dv_test_engine_create(engine, DV_KIND_HOST, body, WAIT_MS);
        host_id = g_strdup(dv_json_get_string(dv_json_get_object(done, "result"), "id", ""));
    }
    g_assert_true(dv_engine_hosts_watch_start(engine, 600000, 500, &error));
    g_assert_no_error(error);
    wait_watch_connected(engine);
    g_assert_cmpint(wait_host_state(engine, host_id, "ok", 5, NULL), >=, 0);

    g_atomic_int_set(&proxy->frozen, 1);
    took_down = wait_host_state(engine, host_id, "unreachable", window_s + 10, &reason);
    g_assert_cmpint(took_down, >=, 0);
    g_assert_nonnull(strstr(reason, "keepalive"));
    g_atomic_int_set(&proxy->frozen, 0);
    took_up = wait_host_state(engine, host_id, "ok", 30, NULL);
    g_printerr("# a libvirtd that stops answering: unreachable after %.1f s (keepalive %d s x %d, "
               "window %u s: \"%s\"); ok again %.2f s after it answers\n",
               took_down / 1e6, DV_VIRT_KEEPALIVE_INTERVAL, DV_VIRT_KEEPALIVE_COUNT, window_s,
               reason, took_up / 1e6);
    g_assert_cmpint(took_down, <=, (gint64)window_s * G_USEC_PER_SEC);
    g_assert_cmpint(took_up, >=, 0);
    g_assert_cmpint(took_up, <, 10 * G_USEC_PER_SEC);

    /* Each change is logged once for the administrator, with the host's
     * fields (docs/METRICS.md, "Logs"). */
    lost = dv_test_log_capture_find("DvHostsWatch", G_LOG_LEVEL_MESSAGE, "connection lost", 2000);
    g_assert_nonnull(lost);
    g_assert_cmpstr(g_hash_table_lookup(lost, "DROVER_HOST"), ==, "proxied");
    g_assert_cmpstr(g_hash_table_lookup(lost, "DROVER_HOST_ID"), ==, host_id);
    g_assert_nonnull(strstr(g_hash_table_lookup(lost, "MESSAGE"), "proxied"));
    /* Once per loss, whatever reasons follow while it lasts. */
    g_assert_cmpuint(
        dv_test_log_capture_count("DvHostsWatch", G_LOG_LEVEL_MESSAGE, "connection lost"), ==, 1);
    regained =
        dv_test_log_capture_find("DvHostsWatch", G_LOG_LEVEL_MESSAGE, "connection regained", 2000);
    g_assert_nonnull(regained);
    g_assert_cmpstr(g_hash_table_lookup(regained, "DROVER_HOST"), ==, "proxied");
    g_assert_cmpstr(g_hash_table_lookup(regained, "DROVER_HOST_ID"), ==, host_id);
    g_assert_cmpuint(
        dv_test_log_capture_count("DvHostsWatch", G_LOG_LEVEL_MESSAGE, "connection regained"), ==,
        1);
    g_clear_pointer(&engine, dv_engine_free);
    proxy_stop(proxy);
}

static void
run_isolated(gconstpointer data)
{
    GTestFunc func = (GTestFunc)data;
    g_autofree char *prefix = NULL;

    if (g_test_subprocess()) {
        func();
        return;
    }
    if (!dv_test_system_check_daemon(the_virt))
        return;
    prefix = dv_test_system_prefix_new("dvevt", getpid());
    dv_test_system_run_isolated(the_virt, prefix, 240);
}

int
main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    the_virt = dv_virt_new();
    g_test_add_data_func("/drover/host-events/system/destroy-with-virsh",
                         (gconstpointer)test_destroy_with_virsh, run_isolated);
    g_test_add_data_func("/drover/host-events/system/volume-copied",
                         (gconstpointer)test_volume_copied, run_isolated);
    g_test_add_data_func("/drover/host-events/system/keepalive", (gconstpointer)test_keepalive,
                         run_isolated);
    rc = g_test_run();
    dv_virt_free(the_virt);
    return rc;
}
