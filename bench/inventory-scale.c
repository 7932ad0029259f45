/* bench/inventory-scale: SCVMM's tested ceiling (1000 hosts, 25,000 VMs per
 * management server) against a running droverd.
 *
 * Each simulated host is one XML file for libvirt's test driver; every open
 * of test:///ABS/PATH.xml is a private instance.  The hosts are added through
 * the REST API of a real droverd process (127.0.0.1:0, its own temp state
 * dir, SQLite), refreshed once, and the VM list is paged with the cursor.  The hosts
 * are spread over BENCH_GROUPS host groups; two users made through the API,
 * an administrator and a delegated administrator scoped to one group (a
 * tenth of the hosts), then page GET /vms with their own sessions,
 * interleaved page by page.
 * See docs/BENCHMARKS.md for what each figure means. */
#define G_LOG_DOMAIN "DvBenchInventory"

#include "dv-test-catalog.h"
#include "dv-test-util.h"

/* The benchmark measures the test driver's own memory apart from Drover's. */
#include <libvirt/libvirt.h> /* check-source: allow layer-libvirt (measures the simulation) */
#include <libvirt/virterror.h> /* check-source: allow layer-libvirt (measures the simulation) */

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* Targets: SCVMM-class inventory on one management server. */
#define TARGET_REFRESH_S 10.0
#define TARGET_PAGE_P99_MS 20.0
#define TARGET_RSS_MIB 300.0
/* The delegated administrator's pages: as fast in absolute terms, and at
 * most 10 % slower than the administrator's in the same run. */
#define TARGET_SCOPE_RATIO 1.1

/* Host groups the hosts are spread over; the delegated administrator
 * holds one of them. */
#define BENCH_GROUPS 10

#define JOB_WAIT_TIMEOUT_S 1800
#define POLL_INTERVAL_MS 50

typedef struct {
    gint hosts;
    gint domains;
    gint repeats;
    gboolean keep;
    gboolean strict;
    char *perf_out;
    char *perf_phase;
    gboolean in_libvirtd;
    gboolean metrics;
} Options;

typedef struct {
    DvTestDaemon *d;
    GPid pid;
    char *hostdir;
    char *statedir;
    GPtrArray *host_ids;   /* owned strings */
    GPtrArray *host_names; /* owned strings */
} Bench;

/* --- measurements -------------------------------------------------------- */

static double
now_s(void)
{
    return (double)g_get_monotonic_time() / G_USEC_PER_SEC;
}

/* VmHWM/VmRSS of droverd in KiB (0 if unreadable). */
static guint64
proc_status_kib(GPid pid, const char *field)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status", (int)pid);
    g_autofree char *text = NULL;
    g_autofree char *key = g_strdup_printf("\n%s:", field);
    const char *p;

    if (!g_file_get_contents(path, &text, NULL, NULL))
        return 0;
    p = strstr(text, key);
    if (p == NULL)
        return 0;
    return g_ascii_strtoull(p + strlen(key), NULL, 10);
}

/* User + system CPU seconds droverd has used so far. */
static double
proc_cpu_s(GPid pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);
    g_autofree char *text = NULL;
    g_auto(GStrv) f = NULL;
    const char *p;

    if (!g_file_get_contents(path, &text, NULL, NULL))
        return 0;
    /* Fields after the command name, which may hold spaces: state is 3,
     * utime 14 and stime 15 (1-based), so 11 and 12 here. */
    p = strrchr(text, ')');
    if (p == NULL)
        return 0;
    f = g_strsplit(p + 2, " ", -1);
    if (g_strv_length(f) < 13)
        return 0;
    return (double)(g_ascii_strtoull(f[11], NULL, 10) + g_ascii_strtoull(f[12], NULL, 10)) /
           (double)sysconf(_SC_CLK_TCK);
}

static double
self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of @v (sorted in place). */
static double
percentile(GArray *v, double pct)
{
    gsize rank;
    if (v->len == 0)
        return 0;
    qsort(v->data, v->len, sizeof(double), cmp_double);
    rank = (gsize)((pct / 100.0) * v->len + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > v->len)
        rank = v->len;
    return g_array_index(v, double, rank - 1);
}

static double
array_max(GArray *v)
{
    double m = 0;
    for (guint i = 0; i < v->len; i++)
        m = MAX(m, g_array_index(v, double, i));
    return m;
}

/* --- HTTP ---------------------------------------------------------------- */

/* A GET timed from send to the last body byte; parsing the body is not part
 * of the latency.  Returns the parsed body. */
static JsonNode *
timed_get_as(Bench *b, const char *token, const char *path, double *ret_ms)
{
    g_autofree char *url = g_strconcat(b->d->url, path, NULL);
    g_autofree char *auth = g_strdup_printf("Bearer %s", token);
    g_autoptr(SoupMessage) msg = soup_message_new("GET", url);
    g_autoptr(GBytes) out = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();
    gint64 t0;
    gsize len = 0;
    const char *data;

    soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization", auth);
    t0 = g_get_monotonic_time();
    out = soup_session_send_and_read(b->d->session, msg, NULL, &error);
    *ret_ms = (double)(g_get_monotonic_time() - t0) / 1000.0;
    g_assert_no_error(error);
    if (soup_message_get_status(msg) != 200)
        g_error("GET %s: HTTP %u", path, soup_message_get_status(msg));
    data = g_bytes_get_data(out, &len);
    if (!json_parser_load_from_data(parser, data, (gssize)len, &error))
        g_error("GET %s: bad JSON: %s", path, error->message);
    return json_node_copy(json_parser_get_root(parser));
}

static JsonNode *
timed_get(Bench *b, const char *path, double *ret_ms)
{
    return timed_get_as(b, b->d->token, path, ret_ms);
}

static JsonObject *
get_object(Bench *b, const char *path)
{
    guint status = 0;
    g_autoptr(JsonNode) resp = dv_test_request(b->d, "GET", path, NULL, &status);
    if (status != 200 || resp == NULL || !JSON_NODE_HOLDS_OBJECT(resp))
        g_error("GET %s: HTTP %u", path, status);
    return json_object_ref(json_node_get_object(resp));
}

static char *
next_cursor_escaped(JsonObject *page)
{
    if (json_object_get_null_member(page, "next_cursor"))
        return NULL;
    return g_uri_escape_string(json_object_get_string_member(page, "next_cursor"), NULL, TRUE);
}

/* Submits a change and returns its job id; waits and retries on 429. */
static char *
submit_job(Bench *b, const char *path, const char *body)
{
    for (;;) {
        guint status = 0;
        g_autoptr(JsonNode) resp = dv_test_request(b->d, "POST", path, body, &status);
        if (status == 202) {
            JsonObject *job = json_object_get_object_member(json_node_get_object(resp), "job");
            return g_strdup(json_object_get_string_member(job, "id"));
        }
        if (status == 429) {
            g_usleep(POLL_INTERVAL_MS * 1000);
            continue;
        }
        {
            g_autofree char *t = resp != NULL ? json_to_string(resp, FALSE) : g_strdup("(none)");
            g_error("POST %s: HTTP %u: %s", path, status, t);
        }
    }
}

/* TRUE if any job is in @state (one item is enough to know). */
static gboolean
any_job_in_state(Bench *b, const char *state)
{
    g_autofree char *path = g_strdup_printf("/api/v1/jobs?state=%s&limit=1", state);
    g_autoptr(JsonObject) page = get_object(b, path);
    return json_array_get_length(json_object_get_array_member(page, "items")) > 0;
}

/* Waits until no job is queued or running.  Queued is asked first: a job
 * that leaves "queued" between the two questions is then seen "running". */
static void
wait_jobs_idle(Bench *b)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)JOB_WAIT_TIMEOUT_S * G_USEC_PER_SEC;
    while (any_job_in_state(b, "queued") || any_job_in_state(b, "running")) {
        if (g_get_monotonic_time() > deadline)
            g_error("jobs still running after %d s", JOB_WAIT_TIMEOUT_S);
        g_usleep(POLL_INTERVAL_MS * 1000);
    }
}

static gint64
iso_to_usec(const char *s)
{
    g_autoptr(GDateTime) dt = s != NULL ? g_date_time_new_from_iso8601(s, NULL) : NULL;
    if (dt == NULL)
        return 0;
    return g_date_time_to_unix(dt) * G_USEC_PER_SEC + g_date_time_get_microsecond(dt);
}

/* Reads back every job of @kind and prints how long they queued and ran:
 * this tells the job system's parallelism from the cost of one job. */
static void
report_jobs(Bench *b, const char *kind, gint expect, double wall_s)
{
    g_autoptr(GArray) run = g_array_new(FALSE, FALSE, sizeof(double));
    g_autoptr(GArray) wait = g_array_new(FALSE, FALSE, sizeof(double));
    g_autofree char *cursor = NULL;
    g_autoptr(GHashTable) steps = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    double run_sum = 0;
    gint failed = 0, n = 0;

    do {
        g_autofree char *path = cursor == NULL
                                    ? g_strdup_printf("/api/v1/jobs?kind=%s&limit=500", kind)
                                    : g_strdup_printf("/api/v1/jobs?kind=%s&limit=500&cursor=%s",
                                                      kind, cursor);
        g_autoptr(JsonObject) page = get_object(b, path);
        JsonArray *items = json_object_get_array_member(page, "items");
        for (guint i = 0; i < json_array_get_length(items); i++) {
            JsonObject *job = json_array_get_object_element(items, i);
            const char *state = json_object_get_string_member(job, "state");
            gint64 c = iso_to_usec(json_object_get_string_member_with_default(job, "created_at", NULL));
            gint64 s = iso_to_usec(json_object_get_string_member_with_default(job, "started_at", NULL));
            gint64 f = iso_to_usec(json_object_get_string_member_with_default(job, "finished_at", NULL));
            double r = (double)(f - s) / 1000.0, w = (double)(s - c) / 1000.0;
            n++;
            if (g_strcmp0(state, "succeeded") != 0) {
                if (failed++ < 3) {
                    g_autoptr(JsonNode) jn = json_node_init_object(json_node_alloc(), job);
                    g_autofree char *t = json_to_string(jn, FALSE);
                    g_printerr("  %s job not succeeded: %s\n", kind, t);
                }
                continue;
            }
            g_array_append_val(run, r);
            g_array_append_val(wait, w);
            run_sum += r;
        }
        g_free(cursor);
        cursor = next_cursor_escaped(page);
    } while (cursor != NULL);

    g_print("  %-12s jobs %d (expected %d), failed %d\n", kind, n, expect, failed);
    g_print("  %-12s job run time  p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms\n", kind,
            percentile(run, 50), percentile(run, 99), array_max(run));
    g_print("  %-12s queue wait    p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms\n", kind,
            percentile(wait, 50), percentile(wait, 99), array_max(wait));
    g_print("  %-12s sum of run times %.2f s over %.2f s wall: %.1f jobs running on average\n",
            kind, run_sum / 1000.0, wall_s, wall_s > 0 ? run_sum / 1000.0 / wall_s : 0);
    if (failed > 0 || n != expect)
        g_error("%s: %d of %d jobs did not succeed", kind, failed + (expect - n), expect);
}

/* --- phases -------------------------------------------------------------- */

static void
phase_report(const char *name, double wall_s, double cpu0, double cpu1, double self0,
             double self1)
{
    g_print("  %-12s wall %.2f s, droverd CPU %.2f s (%.0f%% of one core), bench CPU %.2f s\n",
            name, wall_s, cpu1 - cpu0, wall_s > 0 ? 100.0 * (cpu1 - cpu0) / wall_s : 0,
            self1 - self0);
}

static GPid perf_start(Bench *b, const Options *o, const char *phase);
static void perf_stop(GPid child);

static double
phase_add(Bench *b, const Options *o)
{
    double t0, t1, t2, c0, s0;
    GPid perf = perf_start(b, o, "add");

    for (gint g = 0; g < BENCH_GROUPS; g++) {
        g_autofree char *body = g_strdup_printf("{\"name\":\"bench-g%d\"}", g);
        g_autofree char *id = submit_job(b, "/api/v1/host-groups", body);
    }
    wait_jobs_idle(b);
    t0 = now_s();
    c0 = proc_cpu_s(b->pid);
    s0 = self_cpu_s();
    for (gint h = 0; h < o->hosts; h++) {
        g_autofree char *name = g_strdup_printf("h%04d", h);
        g_autofree char *file = g_strdup_printf("%s/%s.xml", b->hostdir, name);
        g_autofree char *body =
            g_strdup_printf("{\"name\":\"%s\",\"uri\":\"%s://%s\",\"host_group\":\"bench-g%d\"}",
                            name, o->in_libvirtd ? "test+unix" : "test", file, h % BENCH_GROUPS);
        g_autofree char *id = submit_job(b, "/api/v1/hosts", body);
    }
    t1 = now_s();
    wait_jobs_idle(b);
    t2 = now_s();
    perf_stop(perf);
    g_print("add %d hosts: submitted in %.2f s (%.0f POST/s), all done after %.2f s\n", o->hosts,
            t1 - t0, o->hosts / MAX(t1 - t0, 1e-9), t2 - t0);
    phase_report("add", t2 - t0, c0, proc_cpu_s(b->pid), s0, self_cpu_s());
    report_jobs(b, "host.add", o->hosts, t2 - t0);
    return t2 - t0;
}

static void
load_hosts(Bench *b)
{
    g_autofree char *cursor = NULL;
    do {
        g_autofree char *path = cursor == NULL
                                    ? g_strdup("/api/v1/hosts?limit=500")
                                    : g_strdup_printf("/api/v1/hosts?limit=500&cursor=%s", cursor);
        g_autoptr(JsonObject) page = get_object(b, path);
        JsonArray *items = json_object_get_array_member(page, "items");
        for (guint i = 0; i < json_array_get_length(items); i++) {
            JsonObject *h = json_array_get_object_element(items, i);
            if (g_strcmp0(json_object_get_string_member(h, "state"), "ok") != 0)
                g_error("host %s is %s", json_object_get_string_member(h, "name"),
                        json_object_get_string_member(h, "state"));
            g_ptr_array_add(b->host_ids, g_strdup(json_object_get_string_member(h, "id")));
            g_ptr_array_add(b->host_names, g_strdup(json_object_get_string_member(h, "name")));
        }
        g_free(cursor);
        cursor = next_cursor_escaped(page);
    } while (cursor != NULL);
}

/* perf record on droverd during one phase (--perf FILE --perf-phase P). */
static GPid
perf_start(Bench *b, const Options *o, const char *phase)
{
    g_autofree char *pid = g_strdup_printf("%d", (int)b->pid);
    const char *argv[] = { "perf", "record", "-g", "-F", "999", "-o", o->perf_out, "-p", pid, NULL };
    g_autoptr(GError) error = NULL;
    GPid child = 0;

    if (o->perf_out == NULL || g_strcmp0(o->perf_phase != NULL ? o->perf_phase : "refresh", phase) != 0)
        return 0;

    if (!g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                                                      G_SPAWN_STDOUT_TO_DEV_NULL,
                       NULL, NULL, &child, &error)) {
        g_printerr("perf: %s\n", error->message);
        return 0;
    }
    g_usleep(500 * 1000); /* let perf attach */
    return child;
}

static void
perf_stop(GPid child)
{
    int status;
    if (child == 0)
        return;
    kill(child, SIGINT);
    waitpid(child, &status, 0);
    g_spawn_close_pid(child);
}

static double
phase_refresh(Bench *b, const Options *o)
{
    double t0, t1, t2, c0, s0;
    GPid perf = perf_start(b, o, "refresh");

    t0 = now_s();
    c0 = proc_cpu_s(b->pid);
    s0 = self_cpu_s();
    for (guint i = 0; i < b->host_ids->len; i++) {
        g_autofree char *path =
            g_strdup_printf("/api/v1/hosts/%s/refresh", (char *)b->host_ids->pdata[i]);
        g_autofree char *id = submit_job(b, path, NULL);
    }
    t1 = now_s();
    wait_jobs_idle(b);
    t2 = now_s();
    perf_stop(perf);
    g_print("refresh %u hosts: submitted in %.2f s (%.0f POST/s), all done after %.2f s\n",
            b->host_ids->len, t1 - t0, b->host_ids->len / MAX(t1 - t0, 1e-9), t2 - t0);
    phase_report("refresh", t2 - t0, c0, proc_cpu_s(b->pid), s0, self_cpu_s());
    report_jobs(b, "host.refresh", (gint)b->host_ids->len, t2 - t0);
    return t2 - t0;
}

/* Walks a list with the cursor, timing every page; returns the item count. */
static gint64
walk_pages(Bench *b, const char *base, GArray *lat)
{
    g_autofree char *cursor = NULL;
    gint64 n = 0;
    do {
        g_autofree char *path =
            cursor == NULL ? g_strdup(base) : g_strdup_printf("%s&cursor=%s", base, cursor);
        double ms = 0;
        g_autoptr(JsonNode) resp = timed_get(b, path, &ms);
        JsonObject *page = json_node_get_object(resp);
        g_array_append_val(lat, ms);
        n += json_array_get_length(json_object_get_array_member(page, "items"));
        g_free(cursor);
        cursor = next_cursor_escaped(page);
    } while (cursor != NULL);
    return n;
}

static void
print_latency(const char *what, GArray *lat)
{
    guint n = lat->len;
    double p50 = percentile(lat, 50), p99 = percentile(lat, 99), mx = array_max(lat);
    g_print("  %-38s %5u requests  p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms\n", what, n, p50, p99,
            mx);
}

/* Returns the p99 of the unfiltered pages, their p50 in *@ret_p50. */
static double
phase_pages_p(Bench *b, const Options *o, double *ret_p50)
{
    g_autoptr(GArray) all = g_array_new(FALSE, FALSE, sizeof(double));
    g_autoptr(GArray) running = g_array_new(FALSE, FALSE, sizeof(double));
    g_autoptr(GArray) byhost = g_array_new(FALSE, FALSE, sizeof(double));
    g_autoptr(GArray) prefix = g_array_new(FALSE, FALSE, sizeof(double));
    g_autoptr(GArray) one = g_array_new(FALSE, FALSE, sizeof(double));
    gint64 want = (gint64)o->hosts * o->domains;
    double c0 = proc_cpu_s(b->pid), t0 = now_s(), p99;
    GRand *rand = g_rand_new_with_seed(42);
    GPid perf = perf_start(b, o, "lists");

    for (gint r = 0; r < o->repeats; r++) {
        gint64 n = walk_pages(b, "/api/v1/vms?limit=100", all);
        if (n != want)
            g_error("VM list walked %" G_GINT64_FORMAT " VMs, expected %" G_GINT64_FORMAT, n, want);
    }
    for (gint r = 0; r < o->repeats; r++) {
        gint64 n = walk_pages(b, "/api/v1/vms?limit=100&state=running", running);
        if (r == 0)
            g_print("  state=running matched %" G_GINT64_FORMAT " VMs\n", n);
    }
    /* 100 hosts (or all of them) by name, each one page of --domains VMs. */
    for (guint i = 0; i < MIN(100u, b->host_names->len) * (guint)o->repeats; i++) {
        const char *h = b->host_names->pdata[g_rand_int_range(rand, 0, (gint32)b->host_names->len)];
        g_autofree char *base = g_strdup_printf("/api/v1/vms?limit=100&host=%s", h);
        gint64 n = walk_pages(b, base, byhost);
        if (n != o->domains)
            g_error("host=%s listed %" G_GINT64_FORMAT " VMs, expected %d", h, n, o->domains);
    }
    for (guint i = 0; i < MIN(100u, b->host_names->len) * (guint)o->repeats; i++) {
        const char *h = b->host_names->pdata[g_rand_int_range(rand, 0, (gint32)b->host_names->len)];
        g_autofree char *base = g_strdup_printf("/api/v1/vms?limit=100&name_prefix=%s-vm1", h);
        walk_pages(b, base, prefix);
    }
    for (guint i = 0; i < 100u * (guint)o->repeats; i++) {
        const char *h = b->host_names->pdata[g_rand_int_range(rand, 0, (gint32)b->host_names->len)];
        g_autofree char *path = g_strdup_printf("/api/v1/hosts/%s", h);
        double ms = 0;
        g_autoptr(JsonNode) resp = timed_get(b, path, &ms);
        g_array_append_val(one, ms);
    }
    g_rand_free(rand);
    perf_stop(perf);

    g_print("list latency (%d passes, client side, send to last byte):\n", o->repeats);
    p99 = percentile(all, 99);
    print_latency("GET /vms?limit=100 (all pages)", all);
    print_latency("GET /vms?limit=100&state=running", running);
    print_latency("GET /vms?limit=100&host=NAME", byhost);
    print_latency("GET /vms?limit=100&name_prefix=NAME-vm1", prefix);
    print_latency("GET /hosts/NAME", one);
    phase_report("lists", now_s() - t0, c0, proc_cpu_s(b->pid), 0, 0);
    if (ret_p50 != NULL)
        *ret_p50 = percentile(all, 50);
    return p99;
}

static double
phase_pages(Bench *b, const Options *o)
{
    return phase_pages_p(b, o, NULL);
}

/* --- metrics on and off ------------------------------------------------------ */

/* droverd (DV_DEBUG_JOBS=1) turns its metrics hooks off and on at each
 * SIGUSR2; a scrape of /metrics runs during every pass as a Prometheus
 * server's would, so "on" pays for the rendering too.  Passes alternate
 * off, on, off, on so a drift of the shared machine falls on both. */
#define TARGET_METRICS_RATIO 1.05

typedef struct {
    char *url;
    char *token;
    gint stop;
    guint scrapes;
} Scraper;

static gpointer
scraper_thread(gpointer data)
{
    Scraper *sc = data;
    g_autoptr(SoupSession) session = soup_session_new();
    g_autofree char *auth = g_strdup_printf("Bearer %s", sc->token);
    while (!g_atomic_int_get(&sc->stop)) {
        g_autoptr(SoupMessage) msg = soup_message_new("GET", sc->url);
        g_autoptr(GBytes) body = NULL;
        soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization", auth);
        body = soup_session_send_and_read(session, msg, NULL, NULL);
        if (body == NULL || soup_message_get_status(msg) != 200)
            g_error("GET /metrics: HTTP %u", soup_message_get_status(msg));
        sc->scrapes++;
        for (guint i = 0; i < 10 && !g_atomic_int_get(&sc->stop); i++)
            g_usleep(100 * 1000);
    }
    return NULL;
}

static double
phase_metrics(Bench *b, const Options *o)
{
    /* off, on, on, off: a linear drift of the shared machine falls on
     * both states alike (ABBA). */
    static const gboolean order[] = { FALSE, TRUE, TRUE, FALSE };
    double p99_sum[2] = { 0, 0 }, p50_sum[2] = { 0, 0 };
    gboolean on = TRUE; /* droverd starts with metrics on */

    g_print("metrics overhead (pages with droverd's metrics off, on, on, off):\n");
    for (guint i = 0; i < G_N_ELEMENTS(order); i++) {
        Scraper sc = { .url = g_strdup_printf("%s/metrics", b->d->url), .token = b->d->token };
        GThread *t = NULL;
        double p99, p50;
        if (on != order[i]) {
            kill(b->pid, SIGUSR2);
            on = order[i];
            g_usleep(200 * 1000);
        }
        /* A scraper every second, as Prometheus would, while they are on. */
        if (on && g_getenv("DV_BENCH_NO_SCRAPE") == NULL)
            t = g_thread_new("scraper", scraper_thread, &sc);
        p99 = phase_pages_p(b, o, &p50);
        if (t != NULL) {
            g_atomic_int_set(&sc.stop, 1);
            g_thread_join(t);
            g_print("  (%u scrapes of /metrics during the pass)\n", sc.scrapes);
        }
        g_free(sc.url);
        p99_sum[on] += p99;
        p50_sum[on] += p50;
        g_print("  pass %u, metrics %s: page p50 %.2f ms, p99 %.2f ms\n\n", i + 1,
                on ? "on" : "off", p50, p99);
    }
    if (!on)
        kill(b->pid, SIGUSR2);
    g_print("  page p50 metrics off %.2f ms, on %.2f ms: ratio %.3f\n", p50_sum[0] / 2,
            p50_sum[1] / 2, p50_sum[1] / MAX(p50_sum[0], 1e-9));
    g_print("  page p99 metrics off %.2f ms, on %.2f ms: ratio on / off %.3f\n\n", p99_sum[0] / 2,
            p99_sum[1] / 2, p99_sum[1] / MAX(p99_sum[0], 1e-9));
    return p99_sum[1] / MAX(p99_sum[0], 1e-9);
}

/* --- the delegated administrator ------------------------------------------ */

typedef struct {
    double admin_p99;
    double scoped_p99;
} ScopeFigures;

#define BENCH_USER_PASSWORD "bench password 1234"

static void
post_expect(Bench *b, const char *path, const char *body, guint want)
{
    guint status = 0;
    g_autoptr(JsonNode) resp = dv_test_request(b->d, "POST", path, body, &status);
    if (status != want) {
        g_autofree char *t = resp != NULL ? json_to_string(resp, FALSE) : g_strdup("(none)");
        g_error("POST %s: HTTP %u: %s", path, status, t);
    }
}

/* A user made through the API, bound to @role (globally, or over host
 * group @group), logged in: returns its session token (owned). */
static char *
bench_user(Bench *b, const char *name, const char *role, const char *group)
{
    g_autofree char *user = g_strdup_printf("{\"name\":\"%s\",\"password\":\"%s\"}", name,
                                            BENCH_USER_PASSWORD);
    g_autofree char *binding =
        group != NULL ? g_strdup_printf("{\"user\":\"%s\",\"role\":\"%s\",\"scope\":"
                                        "{\"kind\":\"host_group\",\"ref\":\"%s\"}}",
                                        name, role, group)
                      : g_strdup_printf("{\"user\":\"%s\",\"role\":\"%s\"}", name, role);
    g_autofree char *login = g_strdup_printf("{\"user\":\"%s\",\"password\":\"%s\"}", name,
                                             BENCH_USER_PASSWORD);
    g_autoptr(JsonNode) resp = NULL;
    guint status = 0;

    post_expect(b, "/api/v1/users", user, 201);
    post_expect(b, "/api/v1/bindings", binding, 201);
    resp = dv_test_request_anon(b->d, "POST", "/api/v1/session", login, &status);
    if (status != 201 || resp == NULL || !JSON_NODE_HOLDS_OBJECT(resp))
        g_error("POST /api/v1/session as %s: HTTP %u", name, status);
    return g_strdup(json_object_get_string_member(json_node_get_object(resp), "token"));
}

/* One reader of the VM list: its session, where it is in its walk. */
typedef struct {
    const char *who;
    char *token;
    char *cursor; /* NULL: the next page is the first */
    gint64 seen;  /* VMs in the walk so far */
    gint64 want;  /* VMs a whole walk holds */
    guint walks;  /* whole walks done */
    GArray *lat;
} Reader;

/* Reads @r's next page, timed; a walk's end checks its count. */
static void
reader_step(Bench *b, Reader *r)
{
    g_autofree char *path = r->cursor == NULL
                                ? g_strdup("/api/v1/vms?limit=100")
                                : g_strdup_printf("/api/v1/vms?limit=100&cursor=%s", r->cursor);
    double ms = 0;
    g_autoptr(JsonNode) resp = timed_get_as(b, r->token, path, &ms);
    JsonObject *page = json_node_get_object(resp);

    g_array_append_val(r->lat, ms);
    r->seen += json_array_get_length(json_object_get_array_member(page, "items"));
    g_free(r->cursor);
    r->cursor = next_cursor_escaped(page);
    if (r->cursor != NULL)
        return;
    if (r->seen != r->want)
        g_error("%s listed %" G_GINT64_FORMAT " VMs, expected %" G_GINT64_FORMAT, r->who, r->seen,
                r->want);
    r->seen = 0;
    r->walks++;
}

/* droverd running: an administrator and a delegated administrator of
 * bench-g0 page GET /vms?limit=100 with their own sessions, one page each
 * in turn, so both see the same caches and machine load; the delegated
 * one walks its (shorter) list again and again to read as many pages. */
static ScopeFigures
phase_scope(Bench *b, const Options *o)
{
    g_autoptr(GArray) admin_lat = g_array_new(FALSE, FALSE, sizeof(double));
    g_autoptr(GArray) scoped_lat = g_array_new(FALSE, FALSE, sizeof(double));
    Reader admin = { "administrator", NULL, NULL, 0, (gint64)o->hosts * o->domains, 0, admin_lat };
    Reader scoped = { "delegated administrator", NULL, NULL, 0, 0, 0, scoped_lat };
    double c0 = proc_cpu_s(b->pid), t0 = now_s();
    ScopeFigures out;

    for (gint h = 0; h < o->hosts; h += BENCH_GROUPS)
        scoped.want += o->domains;
    admin.token = bench_user(b, "bench-admin", "administrator", NULL);
    scoped.token = bench_user(b, "bench-delegate", "delegated-administrator", "bench-g0");
    while (admin.walks < (guint)o->repeats) {
        reader_step(b, &admin);
        reader_step(b, &scoped);
    }
    g_print("scoped lists (HTTP, own sessions, interleaved page by page, %d passes of the "
            "administrator's list; the delegated administrator holds bench-g0: %" G_GINT64_FORMAT
            " of %" G_GINT64_FORMAT " VMs, %u whole walks):\n",
            o->repeats, scoped.want, admin.want, scoped.walks);
    print_latency("administrator GET /vms?limit=100", admin_lat);
    print_latency("delegated admin GET /vms?limit=100", scoped_lat);
    phase_report("scope", now_s() - t0, c0, proc_cpu_s(b->pid), 0, 0);
    out.admin_p99 = percentile(admin_lat, 99);
    out.scoped_p99 = percentile(scoped_lat, 99);
    g_print("  p50 ratio delegated / administrator: %.2f\n",
            percentile(scoped_lat, 50) / MAX(percentile(admin_lat, 50), 1e-9));
    g_print("  p99 ratio delegated / administrator: %.2f\n\n",
            out.scoped_p99 / MAX(out.admin_p99, 1e-9));
    g_free(admin.token);
    g_free(admin.cursor);
    g_free(scoped.token);
    g_free(scoped.cursor);
    return out;
}

/* What the simulation itself costs droverd: every test:///FILE connection
 * is a private driver instance holding its whole parsed XML (a real host's
 * connection is a socket).  Opening the same files here, in a process of our
 * own, measures that memory so it can be told apart from Drover's. */
static void
conn_close(gpointer c)
{
    virConnectClose(c);
}

static double
test_driver_rss_mib(Bench *b, gint hosts)
{
    g_autoptr(GPtrArray) conns = g_ptr_array_new_with_free_func(conn_close);
    guint64 before = proc_status_kib(getpid(), "VmRSS");
    guint64 after;

    virSetErrorFunc(NULL, NULL);
    for (gint h = 0; h < hosts; h++) {
        g_autofree char *uri = g_strdup_printf("test://%s/h%04d.xml", b->hostdir, h);
        virConnectPtr c = virConnectOpen(uri);
        if (c == NULL)
            return -1;
        g_ptr_array_add(conns, c);
    }
    after = proc_status_kib(getpid(), "VmRSS");
    return (double)(after - before) / 1024.0;
}

/* --- main ---------------------------------------------------------------- */

static gboolean
target_line(const char *what, double value, const char *unit, double target, int decimals)
{
    double ratio = value / target;
    gboolean ok = ratio <= 1.0;
    g_autofree char *v = g_strdup_printf("%.*f", decimals, value);
    g_autofree char *t = g_strdup_printf("%g", target);
    g_print("%-14s %8s %-3s  target %4s %-3s  ratio %.2f  %s\n", what, v, unit, t, unit, ratio,
            ok ? "OK" : "MISSED");
    return ok;
}

static void
rm_rf(const char *dir)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
    if (system(cmd) != 0)
        g_printerr("cannot remove %s\n", dir);
}

int
main(int argc, char **argv)
{
    Options o = { .hosts = 1000, .domains = 25, .repeats = 3 };
    GOptionEntry entries[] = {
        { "hosts", 0, 0, G_OPTION_ARG_INT, &o.hosts, "Simulated hosts (default 1000)", "N" },
        { "domains", 0, 0, G_OPTION_ARG_INT, &o.domains, "Domains per host (default 25)", "N" },
        { "repeats", 0, 0, G_OPTION_ARG_INT, &o.repeats, "Passes over the lists (default 3)", "N" },
        { "keep", 0, 0, G_OPTION_ARG_NONE, &o.keep, "Keep the temp dirs", NULL },
        { "strict", 0, 0, G_OPTION_ARG_NONE, &o.strict, "Exit 1 if a target is missed", NULL },
        { "hosts-in-libvirtd", 0, 0, G_OPTION_ARG_NONE, &o.in_libvirtd,
          "Serve the simulated hosts from the local libvirtd (test+unix://) instead of "
          "inside droverd, as real hosts are: droverd's memory is then its own",
          NULL },
        { "metrics", 0, 0, G_OPTION_ARG_NONE, &o.metrics,
          "Also time the pages with droverd's metrics off and on again, alternating, and print the "
          "p99 ratio on / off (target 1.05)",
          NULL },
        { "perf", 0, 0, G_OPTION_ARG_FILENAME, &o.perf_out,
          "Record droverd with perf record -g into FILE", "FILE" },
        { "perf-phase", 0, 0, G_OPTION_ARG_STRING, &o.perf_phase,
          "Phase to record: add, refresh (default) or lists", "PHASE" },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- inventory at SCVMM scale");
    g_autoptr(GError) error = NULL;
    Bench b = { 0 };
    double t0, t_add, t_refresh, page_p99, rss_mib, sim_mib, metrics_ratio = 0;
    ScopeFigures scope;
    guint64 hwm_start, rss_after_add, rss_end;
    gboolean ok = TRUE;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        g_printerr("inventory-scale: %s\n", error->message);
        return 2;
    }
    if (o.hosts < 1 || o.hosts > 100000 || o.domains < 0 || o.domains > 10000 || o.repeats < 1) {
        g_printerr("inventory-scale: --hosts 1..100000, --domains 0..10000, --repeats >= 1\n");
        return 2;
    }
    /* A tool, not a GTest: say so to the GLib assertions' output. */
    g_set_prgname("inventory-scale");
    b.host_ids = g_ptr_array_new_with_free_func(g_free);
    b.host_names = g_ptr_array_new_with_free_func(g_free);
    b.hostdir = g_dir_make_tmp("drover-bench-hosts-XXXXXX", &error);
    g_assert_no_error(error);
    b.statedir = g_dir_make_tmp("drover-bench-state-XXXXXX", &error);
    g_assert_no_error(error);

    g_print("inventory-scale: %d hosts x %d domains = %d VMs\n", o.hosts, o.domains,
            o.hosts * o.domains);
    t0 = now_s();
    for (gint h = 0; h < o.hosts; h++) {
        g_autofree char *name = g_strdup_printf("h%04d", h);
        g_autofree char *file = g_strdup_printf("%s.xml", name);
        g_autofree char *prefix = g_strdup_printf("%s-vm", name);
        g_autofree char *p = dv_test_write_host_xml(b.hostdir, file, prefix, (guint)o.domains);
    }
    g_print("wrote %d host files in %.2f s (%s)\n", o.hosts, now_s() - t0, b.hostdir);

    b.d = dv_test_daemon_start(b.statedir, NULL);
    b.pid = (GPid)g_ascii_strtoll(g_subprocess_get_identifier(b.d->proc), NULL, 10);
    hwm_start = proc_status_kib(b.pid, "VmRSS");
    g_print("droverd pid %d, %s, state %s, RSS at start %.1f MiB\n\n", (int)b.pid, b.d->url,
            b.statedir, hwm_start / 1024.0);

    t_add = phase_add(&b, &o);
    rss_after_add = proc_status_kib(b.pid, "VmRSS");
    load_hosts(&b);
    if ((gint)b.host_ids->len != o.hosts)
        g_error("listed %u hosts, expected %d", b.host_ids->len, o.hosts);
    g_print("  RSS after add %.1f MiB\n\n", rss_after_add / 1024.0);

    t_refresh = phase_refresh(&b, &o);
    g_print("  RSS after refresh %.1f MiB\n\n", proc_status_kib(b.pid, "VmRSS") / 1024.0);

    page_p99 = phase_pages(&b, &o);
    rss_end = proc_status_kib(b.pid, "VmRSS");
    rss_mib = proc_status_kib(b.pid, "VmHWM") / 1024.0;
    g_print("  RSS at end %.1f MiB, peak (VmHWM) %.1f MiB\n", rss_end / 1024.0, rss_mib);
    sim_mib = o.in_libvirtd ? 0 : test_driver_rss_mib(&b, o.hosts);
    g_print("  of which the %d test-driver instances (simulation, measured apart) %.1f MiB:\n"
            "  droverd's own peak is about %.1f MiB\n\n", o.hosts, sim_mib, rss_mib - sim_mib);
    /* After the peak is read: logging the two users in hashes their
     * passwords (Argon2id), which is no part of the inventory's memory. */
    scope = phase_scope(&b, &o);
    if (o.metrics)
        metrics_ratio = phase_metrics(&b, &o);

    g_print("%d hosts x %d domains (%d VMs), SQLite, droverd on 127.0.0.1\n", o.hosts, o.domains,
            o.hosts * o.domains);
    g_print("add hosts      %8.2f s\n", t_add);
    ok &= target_line("full refresh", t_refresh, "s", TARGET_REFRESH_S, 2);
    ok &= target_line("page p99", page_p99, "ms", TARGET_PAGE_P99_MS, 2);
    ok &= target_line("peak RSS", rss_mib, "MiB", TARGET_RSS_MIB, 1);
    g_print("  (peak RSS less the simulated hosts' driver instances: %.1f MiB)\n", rss_mib - sim_mib);

    ok &= target_line("admin p99", scope.admin_p99, "ms", TARGET_PAGE_P99_MS, 2);
    ok &= target_line("scoped p99", scope.scoped_p99, "ms", TARGET_PAGE_P99_MS, 2);
    ok &= target_line("scoped/admin", scope.scoped_p99 / MAX(scope.admin_p99, 1e-9), "x",
                      TARGET_SCOPE_RATIO, 2);
    if (o.metrics)
        ok &= target_line("metrics on/off", metrics_ratio, "x", TARGET_METRICS_RATIO, 2);
    dv_test_daemon_stop(b.d, FALSE);
    g_clear_pointer(&b.d, dv_test_daemon_free);
    if (o.keep) {
        g_print("kept %s and %s\n", b.hostdir, b.statedir);
    } else {
        rm_rf(b.hostdir);
        rm_rf(b.statedir);
    }
    g_ptr_array_unref(b.host_ids);
    g_ptr_array_unref(b.host_names);
    g_free(b.hostdir);
    g_free(b.statedir);
    g_free(o.perf_out);
    g_free(o.perf_phase);
    return (o.strict && !ok) ? 1 : 0;
}
