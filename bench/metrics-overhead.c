/* bench/metrics-overhead: requests per second through a real droverd with
 * its metrics hooks off and on, in one run (issue 17's target: on costs at
 * most 1.05x of off).
 *
 * One droverd (127.0.0.1:0, its own temp state dir, SQLite) with a test:///
 * host of --domains VMs.  One client asks each --path in turn as fast as
 * droverd answers (a connection per request: droverd answers every request
 * with Connection: close), for --seconds per pass.
 * droverd (DV_DEBUG_JOBS=1) turns its metrics hooks off and on at each
 * SIGUSR2; while they are on a scraper reads /metrics every second, as a
 * Prometheus server would, so "on" pays for the rendering too.  Passes run
 * off, on, on, off per round (ABBA), --rounds times, so that a drift of a
 * shared machine falls on both states alike.  Prints every pass, the load
 * average before and after, and the ratio of requests per second off / on
 * (above 1: metrics cost throughput).  --no-scrape leaves the scraper out
 * (the hooks' cost alone); --strict exits 1 above the target.
 * See docs/BENCHMARKS.md. */
#define G_LOG_DOMAIN "DvBenchMetrics"

#include "dv-bench.h"
#include "dv-test-util.h"

#include <signal.h>
#include <string.h>

#define TARGET_RATIO 1.05

typedef struct {
    gint seconds;
    gint rounds;
    gint domains;
    gboolean strict;
    gboolean no_scrape;
    char **paths;
} Options;

typedef struct {
    char *url;
    const char *token;
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

/* Requests per second over @seconds, asking @paths in turn. */
static double
pass_rps(SoupSession *session, const char *base, const char *token, char **paths, gint seconds)
{
    g_autofree char *auth = g_strdup_printf("Bearer %s", token);
    double start = dv_bench_now_s(), now = start;
    guint64 n = 0;

    while ((now = dv_bench_now_s()) - start < seconds) {
        for (guint i = 0; paths[i] != NULL; i++) {
            g_autofree char *url = g_strconcat(base, paths[i], NULL);
            g_autoptr(SoupMessage) msg = soup_message_new("GET", url);
            g_autoptr(GBytes) body = NULL;
            soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization",
                                         auth);
            body = soup_session_send_and_read(session, msg, NULL, NULL);
            if (body == NULL || soup_message_get_status(msg) != 200)
                g_error("GET %s: HTTP %u", paths[i], soup_message_get_status(msg));
            n++;
        }
    }
    return n / (now - start);
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double
median(GArray *v)
{
    g_array_sort(v, cmp_double);
    if (v->len == 0)
        return 0;
    if (v->len % 2 == 1)
        return g_array_index(v, double, v->len / 2);
    return (g_array_index(v, double, v->len / 2 - 1) + g_array_index(v, double, v->len / 2)) / 2;
}

int
main(int argc, char **argv)
{
    static const gboolean order[] = { FALSE, TRUE, TRUE, FALSE };
    const char *default_paths[] = { "/api/v1/vms?limit=20", "/api/v1/hosts", "/api/v1/health", NULL };
    Options o = { .seconds = 3, .rounds = 3, .domains = 200 };
    GOptionEntry entries[] = {
        { "seconds", 0, 0, G_OPTION_ARG_INT, &o.seconds, "Seconds per pass (3)", "N" },
        { "rounds", 0, 0, G_OPTION_ARG_INT, &o.rounds, "Rounds of off, on, on, off (3)", "N" },
        { "domains", 0, 0, G_OPTION_ARG_INT, &o.domains, "VMs on the test host (200)", "N" },
        { "path", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.paths,
          "A GET path asked in turn (repeatable; default /api/v1/vms?limit=20, /api/v1/hosts, "
          "/api/v1/health)",
          "PATH" },
        { "strict", 0, 0, G_OPTION_ARG_NONE, &o.strict, "Exit 1 when the ratio misses 1.05", NULL },
        { "no-scrape", 0, 0, G_OPTION_ARG_NONE, &o.no_scrape,
          "No scraper while on: the hooks' cost alone", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- metrics overhead in requests/s");
    g_autoptr(GError) error = NULL;
    g_autoptr(DvTestDaemon) d = NULL;
    g_autoptr(SoupSession) session = soup_session_new();
    g_autoptr(GArray) rps_off = g_array_new(FALSE, FALSE, sizeof(double));
    g_autoptr(GArray) rps_on = g_array_new(FALSE, FALSE, sizeof(double));
    GArray *rps[2] = { rps_off, rps_on };
    g_autofree char *tmp = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *body = NULL;
    g_autofree char *load0 = NULL;
    g_autofree char *load1 = NULL;
    g_autoptr(JsonObject) job = NULL;
    char **paths;
    gboolean on = TRUE; /* droverd starts with its metrics on */
    GPid pid;
    double ratio, sum[2] = { 0, 0 };

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        g_printerr("%s\n", error->message);
        return 2;
    }
    if (o.seconds < 1 || o.rounds < 1 || o.domains < 1) {
        g_printerr("--seconds, --rounds and --domains must be at least 1\n");
        return 2;
    }
    paths = o.paths != NULL ? o.paths : (char **)default_paths;

    tmp = g_dir_make_tmp("drover-bench-metrics-XXXXXX", &error);
    g_assert_no_error(error);
    xml = dv_test_write_host_xml(tmp, "host.xml", "bm", (guint)o.domains);
    d = dv_test_daemon_start(NULL, NULL);
    pid = (GPid)g_ascii_strtoll(g_subprocess_get_identifier(d->proc), NULL, 10);
    body = g_strdup_printf("{\"name\":\"bench\",\"uri\":\"test://%s\"}", xml);
    job = dv_test_run_job(d, "POST", "/api/v1/hosts", body);
    dv_test_assert_job_state(job, "succeeded");

    /* Warm up: the connection, SQLite's cache, droverd's first pages. */
    pass_rps(session, d->url, d->token, paths, 1);
    load0 = dv_bench_load_average();
    g_print("metrics overhead: %d round(s) of off, on, on, off, %d s each, %d VMs; paths:", o.rounds,
            o.seconds, o.domains);
    for (guint i = 0; paths[i] != NULL; i++)
        g_print(" %s", paths[i]);
    g_print("\n  load average before: %s\n", load0);
    for (gint r = 0; r < o.rounds; r++) {
        for (guint i = 0; i < G_N_ELEMENTS(order); i++) {
            Scraper sc = { .url = g_strdup_printf("%s/metrics", d->url), .token = d->token };
            GThread *t = NULL;
            g_autofree char *scrapes = NULL;
            double v;
            if (on != order[i]) {
                kill(pid, SIGUSR2);
                on = order[i];
                g_usleep(200 * 1000);
            }
            if (on && !o.no_scrape)
                t = g_thread_new("scraper", scraper_thread, &sc);
            v = pass_rps(session, d->url, d->token, paths, o.seconds);
            if (t != NULL) {
                g_atomic_int_set(&sc.stop, 1);
                g_thread_join(t);
            }
            g_free(sc.url);
            g_array_append_val(rps[on], v);
            sum[on] += v;
            scrapes = on ? g_strdup_printf(" (%u scrapes)", sc.scrapes) : g_strdup("");
            g_print("  round %d pass %u, metrics %-3s: %8.1f requests/s%s\n", r + 1, i + 1,
                    on ? "on" : "off", v, scrapes);
        }
    }
    if (!on)
        kill(pid, SIGUSR2);
    load1 = dv_bench_load_average();
    g_print("  load average after: %s\n", load1);
    g_print("  requests/s metrics off: mean %.1f, median %.1f\n", sum[0] / rps[0]->len,
            median(rps[0]));
    g_print("  requests/s metrics on:  mean %.1f, median %.1f\n", sum[1] / rps[1]->len,
            median(rps[1]));
    ratio = (sum[0] / rps[0]->len) / MAX(sum[1] / rps[1]->len, 1e-9);
    g_print("  ratio off / on (means): %.3f (median %.3f); target <= %.2f: %s\n", ratio,
            median(rps[0]) / MAX(median(rps[1]), 1e-9), TARGET_RATIO,
            ratio <= TARGET_RATIO ? "met" : "MISSED");
    dv_test_rm_rf(tmp);
    return o.strict && ratio > TARGET_RATIO ? 1 : 0;
}
