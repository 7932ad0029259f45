/* bench/catalog-provision: a machine catalog of N machines (default 1000,
 * no boot) on the local host through a running droverd, against the shell
 * loop an administrator runs for the same N today (qemu-img overlay,
 * genisoimage NoCloud ISO, qemu-img personal disk, virsh define).
 *
 * Both sides work on the same transient dir pool on qemu:///system, named
 * dvb<pid>-pool over a temp dir; the master is a tiny empty qcow2 disk.
 * The server side is timed from the POST of the catalog to its job's end;
 * the loop from its first command to its last (it flattens the master into
 * its base first, as the server does).  Both clean up after themselves.
 * See docs/BENCHMARKS.md. */
#define G_LOG_DOMAIN "DvBenchCatalog"

#include "dv-bench.h"
#include "dv-test-util.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Issue 16's targets on 2 cores: pooled (no overlay volume) 1000
 * machines within 5 s and 12x the loop; persistent 5x the loop. */
#define TARGET_SERVER_POOLED_S 5.0
#define TARGET_SERVER_PERSISTENT_S 15.0
#define TARGET_RATIO_POOLED 12.0
#define TARGET_RATIO_PERSISTENT 5.0
#define JOB_WAIT_TIMEOUT_S 1800
#define PERSONAL_MIB 64

typedef struct {
    gint count;
    gint loop_count;
    gboolean keep;
    gboolean strict;
    gboolean skip_loop;
    gboolean skip_server;
    gint width;
    gint connections;
    char *type;
} Options;

/* CPU seconds of @pid (user + system), with its waited-for children
 * (for libvirtd: the qemu-img runs) when @children. */
static double
proc_cpu_s(GPid pid, gboolean children)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);
    g_autofree char *text = NULL;
    g_auto(GStrv) f = NULL;
    const char *p;
    guint64 t;

    if (pid <= 0 || !g_file_get_contents(path, &text, NULL, NULL))
        return 0;
    /* After the command name: utime, stime, cutime, cstime are fields
     * 14-17 (1-based), 11-14 here. */
    p = strrchr(text, ')');
    if (p == NULL)
        return 0;
    f = g_strsplit(p + 2, " ", -1);
    if (g_strv_length(f) < 15)
        return 0;
    t = g_ascii_strtoull(f[11], NULL, 10) + g_ascii_strtoull(f[12], NULL, 10);
    if (children)
        t += g_ascii_strtoull(f[13], NULL, 10) + g_ascii_strtoull(f[14], NULL, 10);
    return (double)t / (double)sysconf(_SC_CLK_TCK);
}

static GPid
libvirtd_pid(void)
{
    g_autofree char *text = NULL;
    if (!g_file_get_contents("/run/libvirtd.pid", &text, NULL, NULL))
        return 0;
    return (GPid)g_ascii_strtoll(text, NULL, 10);
}

static GPid
daemon_pid(DvTestDaemon *d)
{
    const char *id = d->proc != NULL ? g_subprocess_get_identifier(d->proc) : NULL;
    return id != NULL ? (GPid)g_ascii_strtoll(id, NULL, 10) : 0;
}

static JsonObject *
run_job(DvTestDaemon *d, const char *method, const char *path, const char *body)
{
    guint status = 0;
    g_autoptr(JsonNode) resp = dv_test_request(d, method, path, body, &status);
    JsonObject *job;

    if (status != 202 || resp == NULL) {
        g_autofree char *t = resp != NULL ? json_to_string(resp, FALSE) : g_strdup("(none)");
        g_error("%s %s: HTTP %u: %s", method, path, status, t);
    }
    job = json_object_get_object_member(json_node_get_object(resp), "job");
    return dv_test_wait_job(d, json_object_get_string_member(job, "id"), JOB_WAIT_TIMEOUT_S);
}

/* What a failed run removes before it stops. */
static const char *the_prefix, *the_pool, *the_dir;

static void
must_succeed(JsonObject *job, const char *what)
{
    if (g_strcmp0(json_object_get_string_member(job, "state"), "succeeded") != 0) {
        g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), job);
        g_autofree char *t = json_to_string(n, FALSE);
        g_printerr("%s failed: %s\n", what, t);
        dv_bench_cleanup_host(the_prefix, the_pool, the_dir);
        g_error("%s failed", what);
    }
}

/* Files directly in @dir (not counting subdirectories). */
static guint
count_files(const char *dir, const char *prefix)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;
    guint n = 0;
    while (d != NULL && (name = g_dir_read_name(d)) != NULL)
        if (g_str_has_prefix(name, prefix))
            n++;
    return n;
}

static double
bench_server(const Options *o, const char *prefix, const char *pool, const char *dir, const char *master)
{
    g_autoptr(DvTestDaemon) d = dv_test_daemon_start(NULL, NULL);
    g_autofree char *body = NULL;
    g_autofree char *path = NULL;
    g_autofree char *cat = g_strdup_printf("%scat", prefix);
    g_autoptr(JsonObject) job = NULL;
    double t0, t1, server_s, l0, l1, d0, d1;

    if (d == NULL)
        g_error("cannot start droverd");
    {
        g_autoptr(GString) hb =
            g_string_new("{\"name\":\"local\",\"uri\":\"" DV_BENCH_SYSTEM_URI "\"");

        if (o->width > 0)
            g_string_append_printf(hb, ",\"max_concurrent_operations\":%d", o->width);
        if (o->connections > 0)
            g_string_append_printf(hb, ",\"max_connections\":%d", o->connections);
        g_string_append_c(hb, '}');
        job = run_job(d, "POST", "/api/v1/hosts", hb->str);
    }
    must_succeed(job, "adding the local host");
    g_clear_pointer(&job, json_object_unref);
    body = g_strdup_printf("{\"name\":\"%smaster\",\"host\":\"local\",\"memory_mib\":64,\"generation\":1,"
                           "\"disks\":[{\"volume\":\"%s\"}]}", prefix, master);
    job = run_job(d, "POST", "/api/v1/vms", body);
    must_succeed(job, "defining the master");
    g_clear_pointer(&job, json_object_unref);
    path = g_strdup_printf("/api/v1/vms/%smaster/snapshots", prefix);
    job = run_job(d, "POST", path, "{\"name\":\"golden\"}");
    must_succeed(job, "the master's snapshot");
    g_clear_pointer(&job, json_object_unref);

    g_free(body);
    body = g_strdup_printf(
        "{\"name\":\"%s\",\"master_vm\":\"%smaster\",\"master_snapshot\":\"golden\","
        "\"hosts\":[\"local\"],\"pool\":\"%s\",\"naming_scheme\":\"%s####\",\"count\":%d,"
        "\"type\":\"%s\",\"personal_disk_mib\":%d,\"machine\":{\"memory_mib\":64}}",
        cat, prefix, pool, prefix, o->count, o->type, PERSONAL_MIB);
    l0 = proc_cpu_s(libvirtd_pid(), TRUE);
    d0 = proc_cpu_s(daemon_pid(d), FALSE);
    t0 = dv_bench_now_s();
    job = run_job(d, "POST", "/api/v1/catalogs", body);
    t1 = dv_bench_now_s();
    l1 = proc_cpu_s(libvirtd_pid(), TRUE);
    d1 = proc_cpu_s(daemon_pid(d), FALSE);
    must_succeed(job, "provisioning the catalog");
    server_s = t1 - t0;
    g_print("server: %d machines provisioned in %.2f s (%.0f machines/s)\n", o->count, server_s,
            o->count / server_s);
    {
        g_autofree char *la = dv_bench_load_average();
        g_print("server: CPU used meanwhile: droverd %.2f s, libvirtd with its qemu-img runs %.2f s "
                "(the machine's load average: %s)\n", d1 - d0, l1 - l0, la);
    }
    {
        JsonObject *result = json_object_get_object_member(job, "result");
        JsonObject *timing = result != NULL && json_object_has_member(result, "timing")
                                 ? json_object_get_object_member(result, "timing")
                                 : NULL;
        if (timing != NULL) {
            JsonObject *st = json_object_get_object_member(timing, "machine_steps_s");
            g_print("server: consolidate %.2f s, machines %.2f s; summed over the workers: overlay %.1f s, "
                    "identity %.1f s, personal %.1f s, define %.1f s; recording %.2f s\n",
                    json_object_get_double_member(timing, "consolidate_s"),
                    json_object_get_double_member(timing, "machines_s"),
                    json_object_get_double_member(st, "overlay"), json_object_get_double_member(st, "identity"),
                    json_object_get_double_member(st, "personal"), json_object_get_double_member(st, "define"),
                    json_object_get_double_member(st, "record"));
        }
    }
    {
        g_autoptr(GDir) dd = g_dir_open(dir, 0, NULL);
        const char *name;
        guint overlays = 0;
        while (dd != NULL && (name = g_dir_read_name(dd)) != NULL)
            if (g_str_has_prefix(name, cat) && g_str_has_suffix(name, "-disk.qcow2"))
                overlays++;
        g_print("server: %u files of the catalog in the pool directory, %u of them overlays\n",
                count_files(dir, cat), overlays);
    }
    g_clear_pointer(&job, json_object_unref);
    if (o->keep) {
        g_print("server: --keep: catalog %s and droverd state %s left in place\n", cat, d->state_dir);
        d->owns_state_dir = FALSE;
        return server_s;
    }
    g_free(path);
    path = g_strdup_printf("/api/v1/catalogs/%s", cat);
    t0 = dv_bench_now_s();
    job = run_job(d, "DELETE", path, NULL);
    t1 = dv_bench_now_s();
    must_succeed(job, "deleting the catalog");
    g_print("server: catalog deleted in %.2f s\n", t1 - t0);
    g_clear_pointer(&job, json_object_unref);
    g_free(path);
    path = g_strdup_printf("/api/v1/vms/%smaster", prefix);
    job = run_job(d, "DELETE", path, NULL);
    must_succeed(job, "deleting the master");
    return server_s;
}

/* The administrator's loop: one shell script, run by sh, timed whole. */
static double
bench_loop(const Options *o, const char *prefix, const char *pool, const char *dir, const char *master)
{
    g_autofree char *script = g_build_filename(dir, "admin-loop.sh", NULL);
    g_autofree char *clean = g_build_filename(dir, "admin-clean.sh", NULL);
    g_autoptr(GString) s = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    double t0, t1;

    g_string_append_printf(
        s,
        "set -eu\n"
        "D=%s\nP=%s\nU=%s\n"
        "qemu-img convert -O qcow2 -o compat=1.1 %s \"$D/${P}loop-base.qcow2\"\n"
        "i=1\n"
        "while [ $i -le %d ]; do\n"
        "  n=$(printf '%sl%%04d' $i)\n"
        "  qemu-img create -q -f qcow2 -o compat=1.1 -b \"$D/${P}loop-base.qcow2\" -F qcow2 "
        "\"$D/$n-disk.qcow2\"\n"
        "  mkdir -p \"$D/$n-seed\"\n"
        "  printf 'instance-id: %%s\\nlocal-hostname: %%s\\n' \"$(cat "
        "/proc/sys/kernel/random/uuid)\" \"$n\" "
        "> \"$D/$n-seed/meta-data\"\n"
        "  printf '#cloud-config\\nhostname: %%s\\n' \"$n\" > \"$D/$n-seed/user-data\"\n"
        "  genisoimage -quiet -output \"$D/$n-identity.iso\" -volid cidata -joliet -rock "
        "\"$D/$n-seed/user-data\" \"$D/$n-seed/meta-data\"\n"
        "  rm -rf \"$D/$n-seed\"\n"
        "  chmod 600 \"$D/$n-identity.iso\"\n"
        "  qemu-img create -q -f qcow2 -o compat=1.1 \"$D/$n-personal.qcow2\" %dM\n"
        "  cat > \"$D/$n.xml\" <<EOF\n"
        "<domain type='qemu'><name>$n</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\n"
        "<os><type arch='x86_64' machine='pc'>hvm</type></os>\n"
        "<devices>\n"
        "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source "
        "file='$D/$n-disk.qcow2'/>"
        "<target dev='vda' bus='virtio'/></disk>\n"
        "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source "
        "file='$D/$n-identity.iso'/>"
        "<target dev='sda' bus='sata'/><readonly/></disk>\n"
        "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source "
        "file='$D/$n-personal.qcow2'/>"
        "<target dev='vdb' bus='virtio'/></disk>\n"
        "</devices></domain>\n"
        "EOF\n"
        "  virsh -q -c \"$U\" define \"$D/$n.xml\" >/dev/null\n"
        "  rm -f \"$D/$n.xml\"\n"
        "  i=$((i + 1))\n"
        "done\n",
        dir, prefix, DV_BENCH_SYSTEM_URI, master, o->loop_count, prefix, PERSONAL_MIB);
    if (!g_file_set_contents(script, s->str, -1, &error))
        g_error("%s", error->message);
    {
        const char *const argv[] = { "sh", script, NULL };
        struct rusage r0, r1;
        double l0, l1, c;
        g_autofree char *la = NULL;
        getrusage(RUSAGE_CHILDREN, &r0);
        l0 = proc_cpu_s(libvirtd_pid(), TRUE);
        t0 = dv_bench_now_s();
        dv_bench_run_argv(argv, FALSE);
        t1 = dv_bench_now_s();
        l1 = proc_cpu_s(libvirtd_pid(), TRUE);
        getrusage(RUSAGE_CHILDREN, &r1);
        c = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) + (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
            ((r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) + (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec)) / 1e6;
        la = dv_bench_load_average();
        g_print("loop: %d machines in %.2f s (%.1f machines/s)\n", o->loop_count, t1 - t0,
                o->loop_count / (t1 - t0));
        g_print("loop: CPU used: the script's commands %.2f s, libvirtd %.2f s (load average: %s)\n", c, l1 - l0,
                la);
    }
    g_string_printf(s,
                    "set -u\n"
                    "i=1\n"
                    "while [ $i -le %d ]; do\n"
                    "  n=$(printf '%sl%%04d' $i)\n"
                    "  virsh -q -c %s undefine \"$n\" >/dev/null 2>&1\n"
                    "  rm -f \"%s/$n\"-*\n"
                    "  i=$((i + 1))\n"
                    "done\n"
                    "rm -f \"%s/%sloop-base.qcow2\"\n",
                    o->loop_count, prefix, DV_BENCH_SYSTEM_URI, dir, dir, prefix);
    if (!g_file_set_contents(clean, s->str, -1, &error))
        g_error("%s", error->message);
    {
        const char *const argv[] = { "sh", clean, NULL };
        dv_bench_run_argv(argv, FALSE);
    }
    return t1 - t0;
}

int
main(int argc, char **argv)
{
    Options o = { .count = 1000, .loop_count = 0 };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- machine catalog provisioning benchmark");
    g_autoptr(GError) error = NULL;
    GOptionEntry entries[] = {
        { "count", 0, 0, G_OPTION_ARG_INT, &o.count, "Machines in the catalog (default 1000)", "N" },
        { "loop-count", 0, 0, G_OPTION_ARG_INT, &o.loop_count, "Machines of the shell loop (default: --count)",
          "N" },
        { "skip-loop", 0, 0, G_OPTION_ARG_NONE, &o.skip_loop, "Time the server only", NULL },
        { "skip-server", 0, 0, G_OPTION_ARG_NONE, &o.skip_server, "Time the shell loop only", NULL },
        { "width", 0, 0, G_OPTION_ARG_INT, &o.width,
          "The host's max_concurrent_operations (default: the host default, 16)", "N" },
        { "connections", 0, 0, G_OPTION_ARG_INT, &o.connections,
          "The host's max_connections (default: the host default)", "N" },
        { "keep", 0, 0, G_OPTION_ARG_NONE, &o.keep, "Leave the server's catalog in place", NULL },
        { "type", 0, 0, G_OPTION_ARG_STRING, &o.type,
          "pooled (default: machines on their base, transient) or persistent (overlays)",
          "TYPE" },
        { "strict", 0, 0, G_OPTION_ARG_NONE, &o.strict, "Exit 1 when a target is missed", NULL },
        { NULL },
    };
    g_autofree char *prefix = g_strdup_printf("dvb%05d-", (int)(getpid() % 100000));
    g_autofree char *pool = g_strdup_printf("%spool", prefix);
    g_autofree char *dir = NULL;
    g_autofree char *master = NULL;
    double server_s = 0, loop_s = 0;
    gboolean missed = FALSE;
    gboolean pooled;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        g_printerr("%s\n", error->message);
        return 2;
    }
    if (o.count < 1 || o.count > 9999) {
        g_printerr("--count: 1..9999\n");
        return 2;
    }
    if (o.loop_count <= 0)
        o.loop_count = o.count;
    if (o.type == NULL)
        o.type = g_strdup("pooled");
    if (g_strcmp0(o.type, "pooled") != 0 && g_strcmp0(o.type, "persistent") != 0) {
        g_printerr("--type: pooled or persistent\n");
        return 2;
    }
    pooled = g_strcmp0(o.type, "pooled") == 0;
    dir = g_build_filename(g_get_tmp_dir(), prefix, NULL);
    dir[strlen(dir) - 1] = '\0';
    the_prefix = prefix;
    the_pool = pool;
    the_dir = dir;
    dv_bench_cleanup_host(prefix, pool, dir);
    if (g_mkdir(dir, 0755) != 0)
        g_error("cannot make %s", dir);
    g_chmod(dir, 0755);
    master = g_strdup_printf("%s/%smaster.qcow2", dir, prefix);
    {
        const char *const mk[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=1.1", master, "64M",
                                   NULL };
        g_autofree char *target = g_strdup_printf("--target=%s", dir);
        const char *const pc[] = {
            "virsh", "-q", "-c", DV_BENCH_SYSTEM_URI, "pool-create-as", pool, "dir", target, NULL
        };
        dv_bench_run_argv(mk, FALSE);
        dv_bench_run_argv(pc, FALSE);
    }
    g_print("catalog-provision: %d %s machines, personal disks %d MiB, identity disks, no boot; "
            "pool %s (%s), %ld cores\n",
            o.count, o.type, PERSONAL_MIB, pool, dir, sysconf(_SC_NPROCESSORS_ONLN));
    if (!o.skip_server)
        server_s = bench_server(&o, prefix, pool, dir, master);
    if (!o.skip_loop)
        loop_s = bench_loop(&o, prefix, pool, dir, master);
    if (!o.keep)
        dv_bench_cleanup_host(prefix, pool, dir);
    if (!o.skip_server && !o.skip_loop) {
        double ratio = (loop_s / o.loop_count) / (server_s / o.count);
        double want = pooled ? TARGET_RATIO_POOLED : TARGET_RATIO_PERSISTENT;
        g_print("ratio: the loop takes %.1fx as long per machine as the server (target >= %.0fx)\n",
                ratio, want);
        if (ratio < want)
            missed = TRUE;
    }
    if (!o.skip_server) {
        double scaled = server_s * 1000.0 / o.count;
        double want = pooled ? TARGET_SERVER_POOLED_S : TARGET_SERVER_PERSISTENT_S;
        g_print("server: %.2f s for 1000 machines at this rate (target <= %.0f s)\n", scaled, want);
        if (o.count >= 1000 && server_s > want)
            missed = TRUE;
    }
    if (missed)
        g_print("MISSED a target\n");
    return o.strict && missed ? 1 : 0;
}
