/* bench/vm-clone: cloning a shut-off VM through a running droverd against
 * virt-clone of the same VM, in the same run (issue 12's figure).
 *
 * One source VM on qemu:///system with one qcow2 disk holding --mib MiB of
 * random data, in a transient dir pool dvc<pid>-pool over a temp dir.
 * Rounds alternate: Drover's full clone (POST /vms/{ref}/clone, timed from
 * the POST to its job's end), then `virt-clone --auto-clone` of the same
 * source (timed around the command); each clone is deleted with its disk
 * before the next round.  Drover's linked clone is timed once per round
 * beside them.  Prints each side's median and the ratio.  See
 * docs/BENCHMARKS.md. */
#define G_LOG_DOMAIN "DvBenchClone"

#include "dv-bench.h"
#include "dv-test-util.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define JOB_WAIT_TIMEOUT_S 1800

typedef struct {
    gint mib;
    gint rounds;
    gboolean strict;
} Options;

static const char *the_prefix, *the_pool, *the_dir;

/* Runs one job through the API and ends the benchmark unless it succeeded. */
static void
job_ok(DvTestDaemon *d, const char *method, const char *path, const char *body)
{
    guint status = 0;
    g_autoptr(JsonNode) resp = dv_test_request(d, method, path, body, &status);
    g_autoptr(JsonObject) job = NULL;

    if (status != 202 || resp == NULL) {
        g_autofree char *t = resp != NULL ? json_to_string(resp, FALSE) : g_strdup("(none)");
        dv_bench_cleanup_host(the_prefix, the_pool, the_dir);
        g_error("%s %s: HTTP %u: %s", method, path, status, t);
    }
    job = dv_test_wait_job(
        d,
        json_object_get_string_member(
            json_object_get_object_member(json_node_get_object(resp), "job"), "id"),
        JOB_WAIT_TIMEOUT_S);
    if (g_strcmp0(json_object_get_string_member(job, "state"), "succeeded") != 0) {
        g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), job);
        g_autofree char *t = json_to_string(n, FALSE);
        dv_bench_cleanup_host(the_prefix, the_pool, the_dir);
        g_error("%s %s failed: %s", method, path, t);
    }
}

static gint
cmp_double(gconstpointer a, gconstpointer b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
median(GArray *a)
{
    g_array_sort(a, cmp_double);
    return a->len == 0 ? 0 : g_array_index(a, double, a->len / 2);
}

static void
print_row(const char *what, GArray *a)
{
    g_autoptr(GString) s = g_string_new(NULL);
    for (guint i = 0; i < a->len; i++)
        g_string_append_printf(s, " %.2f", g_array_index(a, double, i));
    g_print("%-34s%s s\n", what, s->str);
}

int
main(int argc, char **argv)
{
    Options o = { .mib = 512, .rounds = 3 };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- VM clone benchmark");
    g_autoptr(GError) error = NULL;
    GOptionEntry entries[] = {
        { "mib", 0, 0, G_OPTION_ARG_INT, &o.mib,
          "MiB of random data in the source's disk (default 512)", "N" },
        { "rounds", 0, 0, G_OPTION_ARG_INT, &o.rounds, "Rounds of each side (default 3)", "N" },
        { "strict", 0, 0, G_OPTION_ARG_NONE, &o.strict,
          "Exit 1 when Drover's full clone takes longer than virt-clone's", NULL },
        { NULL },
    };
    g_autofree char *prefix = g_strdup_printf("dvc%05d-", (int)(getpid() % 100000));
    g_autofree char *pool = g_strdup_printf("%spool", prefix);
    g_autofree char *src = g_strdup_printf("%ssrc", prefix);
    g_autofree char *dir = NULL;
    g_autofree char *raw = NULL;
    g_autofree char *disk = NULL;
    g_autoptr(DvTestDaemon) d = NULL;
    g_autoptr(GArray) full = g_array_new(FALSE, FALSE, sizeof(double));
    g_autoptr(GArray) linked = g_array_new(FALSE, FALSE, sizeof(double));
    g_autoptr(GArray) vc = g_array_new(FALSE, FALSE, sizeof(double));
    double ratio;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        g_printerr("%s\n", error->message);
        return 2;
    }
    if (o.mib < 1 || o.mib > 65536 || o.rounds < 1 || o.rounds > 50) {
        g_printerr("--mib: 1..65536, --rounds: 1..50\n");
        return 2;
    }
    if (g_find_program_in_path("virt-clone") == NULL) {
        g_printerr(
            "virt-clone is not installed (package virtinst; scripts/install-deps installs it)\n");
        return 2;
    }
    dir = g_build_filename(g_get_tmp_dir(), prefix, NULL);
    dir[strlen(dir) - 1] = '\0';
    the_prefix = prefix;
    the_pool = pool;
    the_dir = dir;
    dv_bench_cleanup_host(prefix, pool, dir);
    if (g_mkdir(dir, 0755) != 0)
        g_error("cannot make %s", dir);
    g_chmod(dir, 0755);
    raw = g_strdup_printf("%s/%ssrc.raw", dir, prefix);
    disk = g_strdup_printf("%s/%ssrc.qcow2", dir, prefix);
    {
        g_autofree char *of = g_strdup_printf("of=%s", raw);
        g_autofree char *count = g_strdup_printf("count=%d", o.mib);
        g_autofree char *target = g_strdup_printf("--target=%s", dir);
        const char *const dd[] = {
            "dd", "if=/dev/urandom", of, "bs=1M", count, "status=none", NULL
        };
        const char *const cv[] = { "qemu-img", "convert", "-q", "-O", "qcow2", raw, disk, NULL };
        const char *const pc[] = {
            "virsh", "-q", "-c", DV_BENCH_SYSTEM_URI, "pool-create-as", pool, "dir", target, NULL
        };
        dv_bench_run_argv(dd, FALSE);
        dv_bench_run_argv(cv, FALSE);
        g_unlink(raw);
        dv_bench_run_argv(pc, FALSE);
    }
    d = dv_test_daemon_start(NULL, NULL);
    if (d == NULL)
        g_error("cannot start droverd");
    job_ok(d, "POST", "/api/v1/hosts", "{\"name\":\"local\",\"uri\":\"" DV_BENCH_SYSTEM_URI "\"}");
    {
        g_autofree char *body = g_strdup_printf(
            "{\"name\":\"%s\",\"host\":\"local\",\"memory_mib\":64,\"generation\":1,"
            "\"disks\":[{\"volume\":\"%s\"}]}",
            src, disk);
        job_ok(d, "POST", "/api/v1/vms", body);
    }
    g_print("vm-clone: a shut-off VM with one qcow2 disk of %d MiB of random data, %d rounds, "
            "pool %s (%s), %ld cores\n",
            o.mib, o.rounds, pool, dir, sysconf(_SC_NPROCESSORS_ONLN));

    for (gint r = 0; r < o.rounds; r++) {
        g_autofree char *path = g_strdup_printf("/api/v1/vms/%s/clone", src);
        g_autofree char *dname = g_strdup_printf("%sd%d", prefix, r);
        g_autofree char *lname = g_strdup_printf("%sl%d", prefix, r);
        g_autofree char *vname = g_strdup_printf("%sv%d", prefix, r);
        g_autofree char *body = g_strdup_printf("{\"name\":\"%s\"}", dname);
        g_autofree char *lbody = g_strdup_printf("{\"name\":\"%s\",\"linked\":true}", lname);
        g_autofree char *ddel = g_strdup_printf("/api/v1/vms/%s?delete_volumes=true", dname);
        g_autofree char *ldel = g_strdup_printf("/api/v1/vms/%s?delete_volumes=true", lname);
        const char *const clone[] = { "virt-clone",   "-q", "--connect", DV_BENCH_SYSTEM_URI,
                                      "--original",   src,  "--name",    vname,
                                      "--auto-clone", NULL };
        const char *const undef[] = {
            "virsh", "-q", "-c", DV_BENCH_SYSTEM_URI, "undefine", vname, "--remove-all-storage",
            NULL
        };
        double t0, t;

        /* Alternate which side goes first, so the page cache favours neither. */
        for (gint side = 0; side < 2; side++) {
            if ((side == 0) == (r % 2 == 0)) {
                t0 = dv_bench_now_s();
                job_ok(d, "POST", path, body);
                t = dv_bench_now_s() - t0;
                g_array_append_val(full, t);
                job_ok(d, "DELETE", ddel, NULL);
            } else {
                t0 = dv_bench_now_s();
                dv_bench_run_argv(clone, FALSE);
                t = dv_bench_now_s() - t0;
                g_array_append_val(vc, t);
                dv_bench_run_argv(undef, FALSE);
            }
        }
        t0 = dv_bench_now_s();
        job_ok(d, "POST", path, lbody);
        t = dv_bench_now_s() - t0;
        g_array_append_val(linked, t);
        job_ok(d, "DELETE", ldel, NULL);
    }
    print_row("drover full clone:", full);
    print_row("virt-clone --auto-clone:", vc);
    print_row("drover linked clone:", linked);
    ratio = median(full) / median(vc);
    {
        g_autofree char *la = NULL;
        g_file_get_contents("/proc/loadavg", &la, NULL, NULL);
        g_print("load average at the end: %s", la != NULL ? la : "?\n");
    }
    g_print("medians: drover full %.2f s, virt-clone %.2f s, drover linked %.2f s\n", median(full),
            median(vc), median(linked));
    g_print("ratio: drover full / virt-clone %.2fx (<= 1.00x: Drover is not slower); "
            "linked / virt-clone %.2fx\n",
            ratio, median(linked) / median(vc));
    {
        g_autofree char *path = g_strdup_printf("/api/v1/vms/%s", src);
        job_ok(d, "DELETE", path, NULL);
    }
    g_clear_pointer(&d, dv_test_daemon_free);
    dv_bench_cleanup_host(prefix, pool, dir);
    if (ratio > 1.0)
        g_print("MISSED: Drover's full clone is slower than virt-clone's\n");
    return o.strict && ratio > 1.0 ? 1 : 0;
}
