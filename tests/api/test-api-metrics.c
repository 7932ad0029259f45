/* Metrics and logs (issue 17, docs/METRICS.md) through a real droverd.
 *
 * /drover/api/metrics/{sqlite,postgresql}/prometheus: a private Prometheus
 * server from Debian (/usr/bin/prometheus; a temp config and storage dir,
 * scrape interval 1 s) scrapes droverd's --metrics-listen address while a
 * simulated host is added, a VM created and a job fails; the test asks
 * Prometheus's HTTP API (/api/v1/query) and asserts the job, VM, host,
 * request and libvirt series moved as they should.
 *
 * /drover/api/metrics/api-route: GET /metrics on the API's listener: the
 * administrator's session, an API token holding only metrics.read, no
 * token (401), a read-only administrator bound to a host group (403), a
 * query parameter (400); the root path and /api/v1/metrics serve the same.
 *
 * /drover/api/metrics/logs/cancelled-and-listener: a cancelled job's line
 * and its counter; the unauthenticated listener serves only /metrics.
 *
 * /drover/api/metrics/logs/{text,json}: a failed job's line in droverd's
 * stderr with its fields (job id, op, target, actor, reason), the start
 * and stop lines, and no password in it; a bad --log-level or
 * --log-format is a usage error naming it. */
#define G_LOG_DOMAIN "DvTestApiMetrics"

#include "dv-json.h"
#include "dv-test-pg.h"
#include "dv-test-util.h"

#include <gio/gio.h>
#include <string.h>

#define PROMETHEUS "/usr/bin/prometheus"

static guint
free_port(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GSocket) s =
        g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) a = g_inet_socket_address_new(lo, 0);
    g_autoptr(GSocketAddress) bound = NULL;
    guint port;

    g_assert_no_error(error);
    g_assert_true(g_socket_bind(s, a, TRUE, &error));
    bound = g_socket_get_local_address(s, &error);
    g_assert_no_error(error);
    port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
    g_socket_close(s, NULL);
    return port;
}

/* GET @url (with a bearer @token when not NULL): the body as text. */
static char *
http_get(SoupSession *session, const char *url, const char *token, guint *ret_status,
         char **ret_type)
{
    g_autoptr(SoupMessage) msg = soup_message_new("GET", url);
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) body = NULL;
    gsize len = 0;
    const char *data;

    g_assert_nonnull(msg);
    if (token != NULL) {
        g_autofree char *h = g_strdup_printf("Bearer %s", token);
        soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization", h);
    }
    body = soup_session_send_and_read(session, msg, NULL, &error);
    if (body == NULL) {
        *ret_status = 0;
        return g_strdup("");
    }
    *ret_status = soup_message_get_status(msg);
    if (ret_type != NULL)
        *ret_type = g_strdup(
            soup_message_headers_get_content_type(soup_message_get_response_headers(msg), NULL));
    data = g_bytes_get_data(body, &len);
    return g_strndup(data != NULL ? data : "", len);
}

typedef struct {
    GSubprocess *proc;
    char *dir;
    char *url;
    SoupSession *session;
} Prometheus;

static void
prometheus_free(Prometheus *p)
{
    if (p->proc != NULL) {
        g_subprocess_send_signal(p->proc, SIGTERM);
        g_subprocess_wait(p->proc, NULL, NULL);
    }
    g_clear_object(&p->proc);
    g_clear_object(&p->session);
    if (p->dir != NULL)
        dv_test_rm_rf(p->dir);
    g_free(p->dir);
    g_free(p->url);
    g_free(p);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Prometheus, prometheus_free)

/* A private Prometheus scraping @target ("127.0.0.1:PORT") every second. */
static Prometheus *
prometheus_start(const char *target)
{
    g_autoptr(Prometheus) p = g_new0(Prometheus, 1);
    g_autoptr(GError) error = NULL;
    g_autofree char *config = NULL;
    g_autofree char *config_path = NULL;
    g_autofree char *data = NULL;
    g_autofree char *listen = NULL;
    g_autofree char *log = NULL;
    g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

    /* A real component that is missing fails the test (docs/TESTING.md). */
    if (!g_file_test(PROMETHEUS, G_FILE_TEST_IS_EXECUTABLE))
        g_error("%s is missing: apt-get install prometheus (scripts/install-deps)", PROMETHEUS);
    p->dir = g_dir_make_tmp("drover-prom-XXXXXX", &error);
    g_assert_no_error(error);
    config = g_strdup_printf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                             "scrape_configs:\n  - job_name: drover\n    static_configs:\n"
                             "      - targets: ['%s']\n",
                             target);
    config_path = g_build_filename(p->dir, "prometheus.yml", NULL);
    g_assert_true(g_file_set_contents(config_path, config, -1, NULL));
    data = g_build_filename(p->dir, "data", NULL);
    listen = g_strdup_printf("127.0.0.1:%u", free_port());
    p->url = g_strdup_printf("http://%s", listen);
    log = g_build_filename(p->dir, "prometheus.log", NULL);
    g_subprocess_launcher_set_flags(launcher, G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
    g_subprocess_launcher_set_stderr_file_path(launcher, log);
    {
        g_autofree char *a1 = g_strdup_printf("--config.file=%s", config_path);
        g_autofree char *a2 = g_strdup_printf("--storage.tsdb.path=%s", data);
        g_autofree char *a3 = g_strdup_printf("--web.listen-address=%s", listen);
        const char *argv[] = { PROMETHEUS, a1, a2, a3, "--log.level=warn", NULL };
        p->proc = g_subprocess_launcher_spawnv(launcher, argv, &error);
        g_assert_no_error(error);
    }
    p->session = soup_session_new();
    for (;;) {
        guint status = 0;
        g_autofree char *url = g_strdup_printf("%s/-/ready", p->url);
        g_autofree char *body = http_get(p->session, url, NULL, &status, NULL);
        if (status == 200)
            break;
        if (g_get_monotonic_time() > deadline) {
            g_autofree char *text = NULL;
            g_file_get_contents(log, &text, NULL, NULL);
            g_error("prometheus did not get ready: %s", text != NULL ? text : "");
        }
        g_usleep(200 * 1000);
    }
    return g_steal_pointer(&p);
}

/* The value of the instant vector @query as a number: the sum of its
 * samples; -1 when it has none. */
static double
prometheus_query(Prometheus *p, const char *query)
{
    g_autofree char *esc = g_uri_escape_string(query, NULL, FALSE);
    g_autofree char *url = g_strdup_printf("%s/api/v1/query?query=%s", p->url, esc);
    guint status = 0;
    g_autofree char *body = http_get(p->session, url, NULL, &status, NULL);
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *root;
    JsonArray *result;
    double sum = 0;

    g_assert_cmpuint(status, ==, 200);
    g_assert_true(json_parser_load_from_data(parser, body, -1, NULL));
    root = json_node_get_object(json_parser_get_root(parser));
    g_assert_cmpstr(json_object_get_string_member(root, "status"), ==, "success");
    result = json_object_get_array_member(json_object_get_object_member(root, "data"), "result");
    if (json_array_get_length(result) == 0)
        return -1;
    for (guint i = 0; i < json_array_get_length(result); i++) {
        JsonArray *value =
            json_object_get_array_member(json_array_get_object_element(result, i), "value");
        sum += g_ascii_strtod(json_array_get_string_element(value, 1), NULL);
    }
    return sum;
}

/* Waits (up to 30 s: scrapes every second) until @query reads @want. */
static void
prometheus_wait(Prometheus *p, const char *query, double want)
{
    gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    double got = -1;
    while (g_get_monotonic_time() < deadline) {
        got = prometheus_query(p, query);
        if (got == want)
            return;
        g_usleep(250 * 1000);
    }
    g_error("prometheus: %s is %g, expected %g", query, got, want);
}

static void
prometheus_wait_above(Prometheus *p, const char *query, double floor)
{
    gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    double got = -1;
    while (g_get_monotonic_time() < deadline) {
        got = prometheus_query(p, query);
        if (got > floor)
            return;
        g_usleep(250 * 1000);
    }
    g_error("prometheus: %s is %g, expected more than %g", query, got, floor);
}

static char *
add_host(DvTestDaemon *d, const char *dir, const char *name, guint ndomains)
{
    g_autofree char *file = g_strdup_printf("%s.xml", name);
    g_autofree char *xml = dv_test_write_host_xml(dir, file, name, ndomains);
    g_autofree char *body = g_strdup_printf("{\"name\":\"%s\",\"uri\":\"test://%s\"}", name, xml);
    g_autoptr(JsonObject) job = dv_test_run_job(d, "POST", "/api/v1/hosts", body);
    dv_test_assert_job_state(job, "succeeded");
    return g_strdup(dv_json_get_string(dv_json_get_object(job, "result"), "id", NULL));
}

static void
test_prometheus(gconstpointer data)
{
    const char *backend = data;
    g_autofree char *pg_db = NULL;
    g_autofree char *pg_uri = NULL;
    g_autofree char *metrics_addr = g_strdup_printf("127.0.0.1:%u", free_port());
    g_autoptr(GError) error = NULL;
    g_autofree char *hostdir = g_dir_make_tmp("drover-hosts-XXXXXX", &error);
    g_autoptr(GPtrArray) args = g_ptr_array_new();
    g_autoptr(DvTestDaemon) d = NULL;
    g_autoptr(Prometheus) prom = NULL;
    g_autofree char *host_id = NULL;
    double requests_before;

    g_assert_no_error(error);
    g_ptr_array_add(args, "--metrics-listen");
    g_ptr_array_add(args, metrics_addr);
    if (g_strcmp0(backend, "postgresql") == 0) {
        pg_uri = dv_test_pg_new_database("dv_metrics", &pg_db);
        g_ptr_array_add(args, "--database");
        g_ptr_array_add(args, pg_uri);
    }
    g_ptr_array_add(args, NULL);
    d = dv_test_daemon_start(NULL, (const char *const *)args->pdata);
    g_assert_nonnull(d);
    prom = prometheus_start(metrics_addr);

    /* Prometheus sees droverd, and an empty inventory. */
    prometheus_wait(prom, "up{job=\"drover\"}", 1);
    prometheus_wait(prom, "sum(drover_vms)", 0);
    prometheus_wait(prom, "sum(drover_hosts)", 0);

    /* A host of 3 running domains: its job, its VMs, its libvirt calls. */
    host_id = add_host(d, hostdir, "msim", 3);
    prometheus_wait(prom, "drover_hosts{state=\"ok\"}", 1);
    prometheus_wait(prom, "drover_vms{state=\"running\"}", 3);
    prometheus_wait(prom, "drover_jobs_finished_total{kind=\"host.add\",state=\"succeeded\"}", 1);
    prometheus_wait(prom, "drover_jobs{kind=\"host.add\",state=\"succeeded\"}", 1);
    prometheus_wait(prom, "drover_job_duration_seconds_count{kind=\"host.add\"}", 1);
    prometheus_wait(prom, "drover_job_queue_wait_seconds_count{kind=\"host.add\"}", 1);
    prometheus_wait_above(prom, "drover_libvirt_call_duration_seconds_count{host=\"msim\"}", 0);
    prometheus_wait(
        prom, "drover_http_requests_total{op=\"host.create\",method=\"POST\",status=\"202\"}", 1);
    /* Labels are op names, never paths with ids. */
    g_assert_cmpfloat(prometheus_query(prom, "count({__name__=~\"drover_http.*\",op=~\".*/.*\"})"),
                      ==, -1);
    requests_before = prometheus_query(prom, "sum(drover_http_requests_total{op=\"job.get\"})");
    g_assert_cmpfloat(requests_before, >, 0);

    /* A VM created: one more, shut off; its job succeeded. */
    {
        g_autoptr(JsonObject) job =
            dv_test_run_job(d, "POST", "/api/v1/vms",
                            "{\"name\":\"mweb\",\"host\":\"msim\",\"vcpus\":1,\"memory_mib\":64,"
                            "\"disks\":[{\"size_mib\":16,\"pool\":\"pool1\"}]}");
        dv_test_assert_job_state(job, "succeeded");
    }
    prometheus_wait(prom, "drover_vms{state=\"shutoff\"}", 1);
    prometheus_wait(prom, "sum(drover_vms)", 4);
    prometheus_wait(prom, "drover_jobs_finished_total{kind=\"vm.create\",state=\"succeeded\"}", 1);
    prometheus_wait(prom, "drover_jobs{kind=\"vm.create\",state=\"succeeded\"}", 1);
    prometheus_wait_above(prom, "sum(drover_http_requests_total{op=\"job.get\"})", requests_before);

    /* A job that fails: counted as failed, by kind. */
    {
        g_autoptr(JsonObject) job =
            dv_test_run_job(d, "POST", "/api/v1/hosts",
                            "{\"name\":\"mbad\",\"uri\":\"test:///nonexistent/m.xml\"}");
        dv_test_assert_job_state(job, "failed");
    }
    prometheus_wait(prom, "drover_jobs_finished_total{kind=\"host.add\",state=\"failed\"}", 1);
    prometheus_wait(prom, "drover_jobs{kind=\"host.add\",state=\"failed\"}", 1);

    /* A failed login is counted. */
    {
        guint status = 0;
        g_autoptr(JsonNode) r =
            dv_test_request_anon(d, "POST", "/api/v1/session",
                                 "{\"user\":\"admin\",\"password\":\"wrong-one\"}", &status);
        g_assert_cmpuint(status, ==, 401);
    }
    prometheus_wait(prom, "drover_login_failures_total", 1);
    prometheus_wait(prom, "drover_db_pool_connections{state=\"open\"}", 1);

    /* Every query of the example Grafana dashboard is PromQL Prometheus
     * accepts (packaging/grafana/drover.json). */
    {
        g_autofree char *path =
            g_test_build_filename(G_TEST_DIST, "..", "packaging", "grafana", "drover.json", NULL);
        g_autoptr(JsonParser) parser = json_parser_new();
        JsonArray *panels;
        guint n = 0;
        g_assert_true(json_parser_load_from_file(parser, path, NULL));
        panels = json_object_get_array_member(json_node_get_object(json_parser_get_root(parser)),
                                              "panels");
        for (guint i = 0; i < json_array_get_length(panels); i++) {
            JsonArray *targets =
                json_object_get_array_member(json_array_get_object_element(panels, i), "targets");
            for (guint j = 0; j < json_array_get_length(targets); j++, n++)
                (void)prometheus_query(
                    prom,
                    dv_json_get_string(json_array_get_object_element(targets, j), "expr", ""));
        }
        g_assert_cmpuint(n, >=, 15);
    }

    g_clear_pointer(&prom, prometheus_free);
    g_clear_pointer(&d, dv_test_daemon_free);
    dv_test_pg_drop_database(pg_db);
    dv_test_rm_rf(hostdir);
}

static void
test_api_route(void)
{
    g_autoptr(DvTestDaemon) d = dv_test_daemon_start(NULL, NULL);
    g_autoptr(SoupSession) session = soup_session_new();
    g_autofree char *url = g_strdup_printf("%s/metrics", d->url);
    g_autofree char *url_v1 = g_strdup_printf("%s/api/v1/metrics", d->url);
    g_autofree char *url_q = g_strdup_printf("%s/api/v1/metrics?x=1", d->url);
    g_autofree char *type = NULL;
    g_autofree char *text = NULL;
    g_autofree char *text_v1 = NULL;
    g_autofree char *anon = NULL;
    g_autofree char *with_token = NULL;
    g_autofree char *query = NULL;
    g_autoptr(JsonObject) tok = NULL;
    guint status = 0;

    g_assert_nonnull(d);
    text = http_get(session, url, d->token, &status, &type);
    g_assert_cmpuint(status, ==, 200);
    g_assert_cmpstr(type, ==, "text/plain");
    g_assert_nonnull(strstr(text, "# TYPE drover_hosts gauge\n"));
    g_assert_nonnull(strstr(
        text,
        "drover_http_requests_total{op=\"session.login\",method=\"POST\",status=\"201\"} 1\n"));
    text_v1 = http_get(session, url_v1, d->token, &status, NULL);
    g_assert_cmpuint(status, ==, 200);
    g_assert_nonnull(strstr(text_v1, "# TYPE drover_vms gauge\n"));
    /* The first request of the two above is counted by the second. */
    g_assert_nonnull(strstr(
        text_v1,
        "drover_http_requests_total{op=\"metrics.read\",method=\"GET\",status=\"200\"} 1\n"));

    anon = http_get(session, url, NULL, &status, NULL);
    g_assert_cmpuint(status, ==, 401);
    query = http_get(session, url_q, d->token, &status, NULL);
    g_assert_cmpuint(status, ==, 400);

    /* A dedicated token holding metrics.read alone. */
    tok = dv_test_request_as_ok(d, d->token, "POST", "/api/v1/tokens",
                                "{\"name\":\"scraper\",\"privileges\":[\"metrics.read\"]}", 201);
    with_token = http_get(session, url, dv_json_get_string(tok, "token", ""), &status, NULL);
    g_assert_cmpuint(status, ==, 200);
    g_assert_nonnull(strstr(with_token, "drover_http_requests_total"));
    {
        /* metrics.read is not a VM read: the same token reads no VMs. */
        g_autoptr(JsonNode) r = dv_test_request_as(d, dv_json_get_string(tok, "token", ""), "GET",
                                                   "/api/v1/vms", NULL, &status);
        g_assert_cmpuint(status, ==, 403);
    }
}

/* Runs a failing job on a droverd started with @extra; returns its stderr. */
static char *
failed_job_log(const char *const *extra, char **ret_job_id)
{
    g_autoptr(DvTestDaemon) d = dv_test_daemon_start(NULL, extra);
    g_autofree char *err_path = NULL;
    g_autofree char *text = NULL;
    g_autoptr(JsonObject) job = NULL;

    g_assert_nonnull(d);
    job = dv_test_run_job(d, "POST", "/api/v1/hosts",
                          "{\"name\":\"lbad\",\"uri\":\"test:///nonexistent/l.xml\"}");
    dv_test_assert_job_state(job, "failed");
    *ret_job_id = g_strdup(dv_json_get_string(job, "id", NULL));
    dv_test_daemon_stop(d, FALSE);
    err_path = g_build_filename(d->state_dir, "droverd.err", NULL);
    g_assert_true(g_file_get_contents(err_path, &text, NULL, NULL));
    /* Never a secret: the first password is in a file, not the log. */
    {
        g_autofree char *pw_path = g_build_filename(d->state_dir, "initial-admin-password", NULL);
        g_autofree char *pw = NULL;
        if (g_file_get_contents(pw_path, &pw, NULL, NULL)) {
            g_strstrip(pw);
            g_assert_null(strstr(text, pw));
        }
        g_assert_null(strstr(text, d->token));
    }
    return g_steal_pointer(&text);
}

static const char *
find_line(const char *text, const char *needle, char **ret_line)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
        if (strstr(lines[i], needle) != NULL) {
            *ret_line = g_strdup(lines[i]);
            return *ret_line;
        }
    }
    g_error("no line with «%s» in:\n%s", needle, text);
    return NULL;
}

static void
test_logs_text(void)
{
    const char *extra[] = { "--log-format", "text", NULL };
    g_autofree char *job_id = NULL;
    g_autofree char *text = failed_job_log(extra, &job_id);
    g_autofree char *line = NULL;
    g_autofree char *want_id = g_strdup_printf("DROVER_JOB_ID=%s", job_id);

    find_line(text, want_id, &line);
    g_assert_nonnull(strstr(line, " notice DvJobs: job "));
    g_assert_nonnull(strstr(line, "DROVER_OP=host.add"));
    g_assert_nonnull(strstr(line, "DROVER_TARGET=host lbad"));
    g_assert_nonnull(strstr(line, "DROVER_ACTOR=admin"));
    g_assert_nonnull(strstr(line, "DROVER_JOB_STATE=failed"));
    g_assert_nonnull(strstr(line, "cannot add host lbad")); /* the reason */
    g_clear_pointer(&line, g_free);
    find_line(text, "droverd 0.", &line);
    g_assert_nonnull(strstr(line, "started: serving"));
    g_clear_pointer(&line, g_free);
    find_line(text, "droverd stopped", &line);
}

static void
test_logs_json(void)
{
    const char *extra[] = { "--log-format", "json", "--log-level", "info", NULL };
    g_autofree char *job_id = NULL;
    g_autofree char *text = failed_job_log(extra, &job_id);
    g_autofree char *line = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *o;

    find_line(text, job_id, &line);
    g_assert_true(json_parser_load_from_data(parser, line, -1, NULL));
    o = json_node_get_object(json_parser_get_root(parser));
    g_assert_cmpstr(dv_json_get_string(o, "DROVER_JOB_ID", ""), ==, job_id);
    g_assert_cmpstr(dv_json_get_string(o, "DROVER_OP", ""), ==, "host.add");
    g_assert_cmpstr(dv_json_get_string(o, "DROVER_TARGET", ""), ==, "host lbad");
    g_assert_cmpstr(dv_json_get_string(o, "DROVER_ACTOR", ""), ==, "admin");
    g_assert_cmpstr(dv_json_get_string(o, "level", ""), ==, "notice");
    g_assert_nonnull(strstr(dv_json_get_string(o, "message", ""), "cannot add host lbad"));
    g_assert_nonnull(dv_json_get_string(o, "time", NULL));
}

/* A cancelled job is logged too, and counted by its end state; the
 * unauthenticated listener serves /metrics and nothing else. */
static void
test_cancelled_and_listener(void)
{
    g_autofree char *metrics_addr = g_strdup_printf("127.0.0.1:%u", free_port());
    const char *extra[] = { "--metrics-listen", metrics_addr, NULL };
    g_autoptr(DvTestDaemon) d = dv_test_daemon_start(NULL, extra);
    g_autoptr(SoupSession) session = soup_session_new();
    g_autofree char *url = g_strdup_printf("http://%s/metrics", metrics_addr);
    g_autofree char *other = g_strdup_printf("http://%s/api/v1/vms", metrics_addr);
    g_autofree char *job_id = NULL;
    g_autofree char *text = NULL;
    g_autofree char *type = NULL;
    g_autofree char *nothing = NULL;
    g_autofree char *err_path = NULL;
    g_autofree char *log = NULL;
    g_autofree char *want = NULL;
    guint status = 0;

    g_assert_nonnull(d);
    {
        g_autoptr(JsonNode) r =
            dv_test_request(d, "POST", "/api/v1/debug/sleep", "{\"seconds\":30}", &status);
        g_assert_cmpuint(status, ==, 202);
        job_id = g_strdup(
            dv_json_get_string(dv_json_get_object(json_node_get_object(r), "job"), "id", NULL));
    }
    {
        g_autofree char *path = g_strdup_printf("/api/v1/jobs/%s/cancel", job_id);
        g_autoptr(JsonNode) r = dv_test_request(d, "POST", path, NULL, &status);
        g_autoptr(JsonObject) done = NULL;
        g_assert_cmpuint(status, ==, 200);
        done = dv_test_wait_job(d, job_id, 60);
        dv_test_assert_job_state(done, "cancelled");
    }
    text = http_get(session, url, NULL, &status, &type);
    g_assert_cmpuint(status, ==, 200);
    g_assert_cmpstr(type, ==, "text/plain");
    if (strstr(text,
               "drover_jobs_finished_total{kind=\"debug.sleep-once\",state=\"cancelled\"} 1\n") ==
        NULL)
        g_error("no cancelled debug.sleep in:\n%s", text);
    nothing = http_get(session, other, NULL, &status, NULL);
    g_assert_cmpuint(status, ==, 404);

    dv_test_daemon_stop(d, FALSE);
    err_path = g_build_filename(d->state_dir, "droverd.err", NULL);
    g_assert_true(g_file_get_contents(err_path, &log, NULL, NULL));
    want = g_strdup_printf("DROVER_JOB_ID=%s", job_id);
    {
        g_autofree char *line = NULL;
        find_line(log, want, &line);
        g_assert_nonnull(strstr(line, "DROVER_JOB_STATE=cancelled"));
        g_assert_nonnull(strstr(line, "DROVER_OP=debug.sleep-once"));
    }
}

static void
test_logs_bad_options(void)
{
    static const struct {
        const char *opt;
        const char *value;
        const char *field;
    } cases[] = {
        { "--log-level", "loud", "log_level" },
        { "--log-format", "xml", "log_format" },
        { "--metrics-listen", "nowhere", "metrics_listen" },
    };
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *dir = g_dir_make_tmp("drover-log-XXXXXX", NULL);
        const char *argv[] = {
            dv_test_droverd_path(), "--state-dir",  dir, "--listen", "127.0.0.1:0",
            cases[i].opt,           cases[i].value, NULL
        };
        g_autofree char *out = NULL;
        g_autofree char *err = NULL;
        int status = dv_test_spawn(argv, NULL, &out, &err);
        g_assert_cmpint(status, ==, 2);
        g_assert_nonnull(strstr(err, cases[i].field));
        dv_test_rm_rf(dir);
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_data_func("/drover/api/metrics/sqlite/prometheus", "sqlite", test_prometheus);
    g_test_add_data_func("/drover/api/metrics/postgresql/prometheus", "postgresql",
                         test_prometheus);
    g_test_add_func("/drover/api/metrics/api-route", test_api_route);
    g_test_add_func("/drover/api/metrics/logs/text", test_logs_text);
    g_test_add_func("/drover/api/metrics/logs/json", test_logs_json);
    g_test_add_func("/drover/api/metrics/logs/bad-options", test_logs_bad_options);
    g_test_add_func("/drover/api/metrics/logs/cancelled-and-listener", test_cancelled_and_listener);
    return g_test_run();
}
