/* The HTTP front door under abuse: a droverd started under a low
 * descriptor limit with thousands of short connections, hundreds of idle
 * ones and slowloris clients; a burst of simultaneous connects; request
 * lines, headers and bodies that libsoup or json-glib would mishandle.
 * Loopback only; every loop is bounded in count and time. */
#define G_LOG_DOMAIN "DvTestApiLimits"

#include "dv-config.h"
#include "dv-test-util.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEALTH "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"

/* --- a droverd of our own, under a descriptor limit ----------------------------- */

typedef struct {
    char *dir;
    GSubprocess *proc;
    guint16 port;
    pid_t pid;
} LowDaemon;

static void
low_child_setup(gpointer data)
{
    rlim_t n = GPOINTER_TO_UINT(data);
    struct rlimit rl = { n, n };
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setrlimit(RLIMIT_NOFILE, &rl);
}

static char *
read_log(LowDaemon *ld, const char *name)
{
    g_autofree char *path = g_build_filename(ld->dir, name, NULL);
    char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return g_strdup("");
    return text;
}

static void
low_daemon_start(LowDaemon *ld, guint nofile, const char *config)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
    g_autofree char *cfg = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autofree char *state = NULL;
    g_autofree char *droverd = NULL;
    const char *top = g_getenv("DV_TOP_BUILDDIR");
    gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;

    ld->dir = g_dir_make_tmp("drover-limits-XXXXXX", &error);
    g_assert_no_error(error);
    cfg = g_build_filename(ld->dir, "droverd.conf", NULL);
    out = g_build_filename(ld->dir, "droverd.out", NULL);
    err = g_build_filename(ld->dir, "droverd.err", NULL);
    state = g_build_filename(ld->dir, "state", NULL);
    droverd = g_build_filename(top != NULL ? top : DV_BUILD_DIR, "src", "daemon", "droverd", NULL);
    g_assert_true(g_file_set_contents(cfg, config, -1, &error));
    g_subprocess_launcher_setenv(launcher, "DV_DEBUG_JOBS", "1", TRUE);
    g_subprocess_launcher_set_child_setup(launcher, low_child_setup, GUINT_TO_POINTER(nofile), NULL);
    g_subprocess_launcher_set_stdout_file_path(launcher, out);
    g_subprocess_launcher_set_stderr_file_path(launcher, err);
    ld->proc = g_subprocess_launcher_spawn(launcher, &error, droverd, "--config", cfg, "--state-dir",
                                           state, "--listen", "127.0.0.1:0", NULL);
    g_assert_no_error(error);
    ld->pid = (pid_t)g_ascii_strtoll(g_subprocess_get_identifier(ld->proc), NULL, 10);
    while (ld->port == 0 && g_get_monotonic_time() < deadline) {
        g_autofree char *text = read_log(ld, "droverd.out");
        const char *p = strstr(text, "serving http://127.0.0.1:");
        if (p != NULL && strstr(p, "/api/v1") != NULL)
            ld->port = (guint16)g_ascii_strtoull(p + strlen("serving http://127.0.0.1:"), NULL, 10);
        else
            g_usleep(50 * 1000);
    }
    if (ld->port == 0) {
        g_autofree char *text = read_log(ld, "droverd.err");
        g_error("droverd did not start: %s", text);
    }
}

static void
low_daemon_stop(LowDaemon *ld)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", ld->dir);
    if (g_test_failed()) {
        g_autofree char *text = read_log(ld, "droverd.err");
        g_printerr("--- droverd stderr ---\n%s--- end ---\n", text);
    }
    g_subprocess_send_signal(ld->proc, SIGTERM);
    g_subprocess_wait(ld->proc, NULL, NULL);
    g_assert_true(g_subprocess_get_if_exited(ld->proc));
    g_assert_cmpint(g_subprocess_get_exit_status(ld->proc), ==, 0);
    g_clear_object(&ld->proc);
    g_assert_cmpint(system(cmd), ==, 0);
    g_free(ld->dir);
}

/* --- raw clients ----------------------------------------------------------------- */

static int
raw_connect(guint16 port, gboolean nonblock)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    g_assert_cmpint(fd, >=, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS)
        g_error("connect: %s", g_strerror(errno));
    return fd;
}

/* Reads one response: up to the end of its body by Content-Length (as a
 * keep-alive client does), or to EOF.  Returns the status, 0 on a close
 * without an answer or after @timeout_ms; -1 on a reset. */
static int
raw_read_response(int fd, guint timeout_ms, GString *ret_text)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    g_autoptr(GString) buf = g_string_new(NULL);
    gboolean reset = FALSE;

    for (;;) {
        const char *end = strstr(buf->str, "\r\n\r\n");
        const char *cl = end != NULL ? g_strstr_len(buf->str, end - buf->str, "Content-Length: ") : NULL;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        gint64 left = (deadline - g_get_monotonic_time()) / 1000;
        char chunk[8192];
        ssize_t n;

        if (cl != NULL && buf->len >= (gsize)(end + 4 - buf->str) + g_ascii_strtoull(cl + 16, NULL, 10))
            break;
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == ECONNRESET)
            reset = TRUE;
        if (n <= 0)
            break;
        g_string_append_len(buf, chunk, n);
    }
    if (ret_text != NULL)
        g_string_assign(ret_text, buf->str);
    if (g_str_has_prefix(buf->str, "HTTP/1.") && buf->len > 12)
        return (int)g_ascii_strtoll(buf->str + 9, NULL, 10);
    return reset ? -1 : 0;
}

/* One request on a new connection; the client closes it after the answer. */
static int
raw_request(guint16 port, const char *request, gsize len, GString *ret_text)
{
    int fd = raw_connect(port, FALSE);
    int status;
    gsize done = 0;

    while (done < len) {
        ssize_t n = send(fd, request + done, len - done, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        done += (gsize)n;
    }
    status = raw_read_response(fd, 15000, ret_text);
    close(fd);
    return status;
}

/* Sockets of droverd's port in CLOSE-WAIT (state 08 in /proc/net/tcp). */
static guint
count_close_wait(guint16 port)
{
    g_autofree char *text = NULL;
    g_autofree char *local = g_strdup_printf("0100007F:%04X", port);
    g_auto(GStrv) lines = NULL;
    guint n = 0;

    g_assert_true(g_file_get_contents("/proc/net/tcp", &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    for (guint i = 1; lines[i] != NULL; i++) {
        g_auto(GStrv) f = g_strsplit_set(g_strstrip(lines[i]), " ", -1);
        g_autoptr(GPtrArray) cols = g_ptr_array_new();
        for (guint k = 0; f[k] != NULL; k++)
            if (f[k][0] != '\0')
                g_ptr_array_add(cols, f[k]);
        if (cols->len > 3 && g_strcmp0(cols->pdata[1], local) == 0 && g_strcmp0(cols->pdata[3], "08") == 0)
            n++;
    }
    return n;
}

static guint
count_fds(pid_t pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/fd", (int)pid);
    g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
    guint n = 0;
    g_assert_nonnull(dir);
    while (g_dir_read_name(dir) != NULL)
        n++;
    return n;
}

/* Waits up to @ms for droverd to let go of closed connections. */
static guint
settle_close_wait(guint16 port, guint ms)
{
    guint n = count_close_wait(port);
    for (guint i = 0; i < ms / 50 && n > 0; i++) {
        g_usleep(50 * 1000);
        n = count_close_wait(port);
    }
    return n;
}

/* Waits up to @ms for droverd to hold at most @max descriptors. */
static guint
settle_fds(pid_t pid, guint max, guint ms)
{
    guint n = count_fds(pid);
    for (guint i = 0; i < ms / 50 && n > max; i++) {
        g_usleep(50 * 1000);
        n = count_fds(pid);
    }
    return n;
}

static void
assert_health(guint16 port, const char *when)
{
    g_autoptr(GString) text = g_string_new(NULL);
    int status = raw_request(port, HEALTH, strlen(HEALTH), text);
    if (status != 200)
        g_error("%s: /health answered %d: %s", when, status, text->str);
}

/* A socket the server has closed: EOF, or an answer then EOF, or a reset. */
static gboolean
raw_closed_by_server(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    char buf[4096];
    ssize_t n;

    while (poll(&p, 1, 0) == 1) {
        n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0)
            return n == 0 || errno == ECONNRESET;
    }
    return FALSE;
}

static guint
count_substr(const char *text, const char *needle)
{
    guint n = 0;
    for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* --- tests -------------------------------------------------------------------------- */

/* At 256 descriptors the cap is 256 - 128 = 128 clients. */
#define LOW_NOFILE 256
#define LOW_CAP 128
#define N_SHORT 1500
#define N_IDLE 300
#define N_SLOW 20

static void
test_flood(void)
{
    LowDaemon ld = { 0 };
    int idle[N_IDLE];
    int slow[N_SLOW];
    guint closed = 0;
    g_autofree char *err = NULL;
    gint64 start;

    low_daemon_start(&ld, LOW_NOFILE,
                     "[server]\nheader_timeout=2\nidle_timeout=3\n");

    /* Thousands of keep-alive clients that close after their answer:
     * each must be released at once (libsoup 3.2 kept them all). */
    for (guint i = 0; i < N_SHORT; i++) {
        g_autoptr(GString) text = g_string_new(NULL);
        int status = raw_request(ld.port, HEALTH, strlen(HEALTH), text);
        if (status != 200)
            g_error("short connection %u: /health answered %d: %s", i, status, text->str);
    }
    g_assert_cmpuint(settle_close_wait(ld.port, 2000), ==, 0);
    g_assert_cmpuint(count_fds(ld.pid), <, 64);

    /* Hundreds of idle clients and some slowloris ones, more than the cap:
     * /health is still answered, by making the oldest of them go. */
    for (guint i = 0; i < N_IDLE; i++)
        idle[i] = raw_connect(ld.port, TRUE);
    for (guint i = 0; i < N_SLOW; i++) {
        slow[i] = raw_connect(ld.port, FALSE);
        g_assert_cmpint(send(slow[i], "GET /api/v1/health HTTP/1.1\r\n", 29, MSG_NOSIGNAL), ==, 29);
    }
    start = g_get_monotonic_time();
    for (guint round = 0; round < 6; round++) {
        for (guint i = 0; i < N_SLOW; i++)
            (void)send(slow[i], "X-Slow: 1\r\n", 11, MSG_NOSIGNAL); /* fails once closed */
        for (guint k = 0; k < 5; k++)
            assert_health(ld.port, "with idle and slow clients held");
        g_usleep(300 * 1000);
    }
    /* No descriptor exhaustion: the cap holds below the limit. */
    g_assert_cmpuint(count_fds(ld.pid), <, LOW_NOFILE - 32);

    /* The header timeout (2 s) closes the idle ones and the slowloris
     * ones, however they trickle. */
    while (g_get_monotonic_time() - start < 8 * G_USEC_PER_SEC && closed < N_IDLE + N_SLOW) {
        closed = 0;
        for (guint i = 0; i < N_SLOW; i++)
            (void)send(slow[i], "X-Slow: 1\r\n", 11, MSG_NOSIGNAL);
        for (guint i = 0; i < N_IDLE; i++)
            closed += raw_closed_by_server(idle[i]) ? 1 : 0;
        for (guint i = 0; i < N_SLOW; i++)
            closed += raw_closed_by_server(slow[i]) ? 1 : 0;
        if (closed < N_IDLE + N_SLOW)
            g_usleep(250 * 1000);
    }
    g_assert_cmpuint(closed, ==, N_IDLE + N_SLOW);
    for (guint i = 0; i < N_IDLE; i++)
        close(idle[i]);
    for (guint i = 0; i < N_SLOW; i++)
        close(slow[i]);
    g_assert_cmpuint(settle_close_wait(ld.port, 2000), ==, 0);
    assert_health(ld.port, "after the flood");
    g_assert_cmpuint(count_fds(ld.pid), <, 64);

    /* Reaching the cap was logged once, with the figure. */
    err = read_log(&ld, "droverd.err");
    g_assert_cmpuint(count_substr(err, "client connection limit of 128 reached"), ==, 1);
    /* Not a line per client: the warning and, at most, "back under". */
    g_assert_cmpuint(count_substr(err, "client connection"), <=, 2);
    low_daemon_stop(&ld);
}

/* 300 clients connect at once, then all send: every one is answered
 * (a listen backlog of GLib's default 10 overflowed into drops and
 * resets). */
static void
test_burst(void)
{
    g_autoptr(DvTestDaemon) d = dv_test_daemon_start(NULL, NULL);
    guint16 port = (guint16)g_ascii_strtoull(strrchr(d->url, ':') + 1, NULL, 10);
    enum { N = 300 };
    int fds[N];
    guint ok = 0;

    for (guint i = 0; i < N; i++)
        fds[i] = raw_connect(port, TRUE);
    for (guint i = 0; i < N; i++) {
        struct pollfd p = { .fd = fds[i], .events = POLLOUT };
        g_assert_cmpint(poll(&p, 1, 10000), ==, 1);
        g_assert_cmpint(send(fds[i], HEALTH, strlen(HEALTH), MSG_NOSIGNAL), ==, (int)strlen(HEALTH));
    }
    for (guint i = 0; i < N; i++) {
        int status = raw_read_response(fds[i], 20000, NULL);
        if (status != 200)
            g_printerr("client %u: %d\n", i, status);
        ok += status == 200 ? 1 : 0;
        close(fds[i]);
    }
    g_assert_cmpuint(ok, ==, N);
    g_assert_cmpuint(settle_close_wait(port, 2000), ==, 0);
}

/* libsoup's own refusals carry Drover's JSON body; headers over the limit
 * get 431, also past libsoup's 64 KiB where it would just close. */
static void
test_http_refusals(void)
{
    g_autoptr(DvTestDaemon) d = dv_test_daemon_start(NULL, NULL);
    guint16 port = (guint16)g_ascii_strtoull(strrchr(d->url, ':') + 1, NULL, 10);
    static const char *const malformed[] = {
        "GARBAGE\r\n\r\n",
        "GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET http://[::1 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /api/v1/%zz HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /api/v1/health?a=%zz HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /api/v1/health HTTP/1.1\r\nHost: x/y\r\n\r\n",
    };

    for (gsize i = 0; i < G_N_ELEMENTS(malformed); i++) {
        g_autoptr(GString) text = g_string_new(NULL);
        int status = raw_request(port, malformed[i], strlen(malformed[i]), text);
        if (status != 400 || strstr(text->str, "\"code\":\"invalid-argument\"") == NULL)
            g_error("'%s' got %d: %s", malformed[i], status, text->str);
    }
    for (gsize size = 40000; size <= 100000; size += 60000) {
        g_autoptr(GString) req = g_string_new("GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ");
        g_autoptr(GString) text = g_string_new(NULL);
        int status;
        for (gsize k = 0; k < size; k++)
            g_string_append_c(req, 'a');
        g_string_append(req, "\r\n\r\n");
        status = raw_request(port, req->str, req->len, text);
        if (status != 431 || strstr(text->str, "\"code\":\"too-large\"") == NULL)
            g_error("%zu bytes of headers got %d: %s", size, status, text->str);
    }
    assert_health(port, "after the refusals");
}

/* json-glib cut "\u0000" strings and names and kept the last of two
 * members: the API refuses each with the member named. */
static void
test_json_bodies(void)
{
    g_autoptr(DvTestDaemon) d = dv_test_daemon_start(NULL, NULL);
    static const struct {
        const char *body;
        const char *field;
    } cases[] = {
        { "{\"name\":\"abc\\u0000SECRET-TAIL\",\"uri\":\"test:///default\"}", "name" },
        { "{\"na\\u0000me\":\"h1\",\"uri\":\"test:///default\"}", "na\\u0000me" },
        { "{\"name\":\"h1\",\"name\":\"h2\",\"uri\":\"test:///default\"}", "name" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        guint status = 0;
        g_autoptr(JsonNode) resp = dv_test_request(d, "POST", "/api/v1/hosts", cases[i].body, &status);
        dv_test_assert_error(resp, status, 400, "invalid-argument", cases[i].field);
    }
    /* Nothing was made. */
    g_assert_cmpint(dv_test_count(d, "/api/v1/hosts"), ==, 0);
    g_assert_cmpint(dv_test_count(d, "/api/v1/jobs"), ==, 0);
}

/* Event stream clients that close are let go at once, not at the next
 * keep-alive line 20 s later. */
static void
test_event_stream_close(void)
{
    g_autoptr(DvTestDaemon) d = dv_test_daemon_start(NULL, NULL);
    guint16 port = (guint16)g_ascii_strtoull(strrchr(d->url, ':') + 1, NULL, 10);
    pid_t pid = (pid_t)g_ascii_strtoll(g_subprocess_get_identifier(d->proc), NULL, 10);
    enum { N = 20 };
    int fds[N];
    guint status = 0;
    guint before;
    g_autoptr(JsonNode) resp = dv_test_request(d, "POST", "/api/v1/debug/sleep", "{\"seconds\":30}",
                                               &status);
    g_autofree char *job_id = NULL;
    g_autofree char *request = NULL;
    g_autofree char *cancel = NULL;

    g_assert_cmpuint(status, ==, 202);
    job_id = g_strdup(json_object_get_string_member(
        json_object_get_object_member(json_node_get_object(resp), "job"), "id"));
    request = g_strdup_printf("GET /api/v1/jobs/%s/events HTTP/1.1\r\nHost: x\r\n"
                              "Authorization: Bearer %s\r\n\r\n", job_id, d->token);
    before = count_fds(pid);
    for (guint i = 0; i < N; i++) {
        g_autoptr(GString) seen = g_string_new(NULL);
        gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
        fds[i] = raw_connect(port, FALSE);
        g_assert_cmpint(send(fds[i], request, strlen(request), MSG_NOSIGNAL), ==, (int)strlen(request));
        while (strstr(seen->str, "event: progress") == NULL && g_get_monotonic_time() < deadline) {
            struct pollfd p = { .fd = fds[i], .events = POLLIN };
            char buf[4096];
            ssize_t n;
            if (poll(&p, 1, 1000) != 1 || (n = recv(fds[i], buf, sizeof buf, 0)) <= 0)
                break;
            g_string_append_len(seen, buf, n);
        }
        if (strstr(seen->str, "event: progress") == NULL)
            g_error("stream %u: %s", i, seen->str);
    }
    g_assert_cmpuint(count_fds(pid), >=, before + N);
    for (guint i = 0; i < N; i++)
        close(fds[i]);
    /* A client closing with unread events resets rather than closes:
     * no CLOSE-WAIT then, so the descriptors tell. */
    g_assert_cmpuint(settle_close_wait(port, 2000), ==, 0);
    g_assert_cmpuint(settle_fds(pid, before, 3000), <=, before);
    /* The job goes on, and new streams still work. */
    cancel = g_strdup_printf("/api/v1/jobs/%s/cancel", job_id);
    g_clear_pointer(&resp, json_node_unref);
    resp = dv_test_request(d, "POST", cancel, NULL, &status);
    g_assert_cmpuint(status, ==, 200);
    assert_health(port, "after the streams");
}

int
main(int argc, char **argv)
{
    struct rlimit rl;

    g_test_init(&argc, &argv, NULL);
    /* The test holds hundreds of sockets itself. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &rl), ==, 0);
    }
    g_test_add_func("/drover/api/limits/flood", test_flood);
    g_test_add_func("/drover/api/limits/burst", test_burst);
    g_test_add_func("/drover/api/limits/http-refusals", test_http_refusals);
    g_test_add_func("/drover/api/limits/json-bodies", test_json_bodies);
    g_test_add_func("/drover/api/limits/event-stream-close", test_event_stream_close);
    return g_test_run();
}
