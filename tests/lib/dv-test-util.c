#define G_LOG_DOMAIN "DvTestUtil"

#include "dv-config.h"
#include "dv-test-util.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *
dv_test_write_host_xml(const char *dir, const char *name, const char *prefix, guint ndomains)
{
    g_autoptr(GString) xml = g_string_new("<node>\n");
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_autoptr(GError) error = NULL;
    g_autofree char *pool_uuid = g_uuid_string_random();
    g_autofree char *net_uuid = g_uuid_string_random();

    g_string_append(xml, "  <cpu><mhz>2000</mhz><model>x86_64</model><nodes>1</nodes>"
                         "<sockets>1</sockets><cores>8</cores><threads>1</threads>"
                         "<active>8</active></cpu>\n  <memory>16777216</memory>\n");
    for (guint i = 0; i < ndomains; i++) {
        g_autofree char *uuid = g_uuid_string_random();
        g_string_append_printf(
            xml,
            "  <domain type='test'><name>%s%u</name><uuid>%s</uuid>"
            "<memory unit='MiB'>%u</memory><vcpu>%u</vcpu>"
            "<os><type arch='i686'>hvm</type></os><devices>"
            "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            "<source file='/pool1/%s%u.qcow2'/><target dev='vda' bus='virtio'/></disk>"
            "<interface type='network'><source network='net1'/></interface>"
            "</devices></domain>\n",
            prefix, i, uuid, 256 + 64 * (i % 4), 1 + i % 4, prefix, i);
    }
    g_string_append_printf(xml, "  <network><name>net1</name><uuid>%s</uuid>"
                                "<bridge name='virbr9'/></network>\n", net_uuid);
    g_string_append_printf(xml, "  <pool type='dir'><name>pool1</name><uuid>%s</uuid>"
                                "<capacity>107374182400</capacity><allocation>0</allocation>"
                                "<available>107374182400</available>"
                                "<target><path>/pool1</path></target>\n", pool_uuid);
    for (guint i = 0; i < ndomains; i++)
        g_string_append_printf(xml,
                               "    <volume type='file'><name>%s%u.qcow2</name>"
                               "<capacity>1073741824</capacity><allocation>0</allocation>"
                               "<target><path>/pool1/%s%u.qcow2</path>"
                               "<format type='qcow2'/></target></volume>\n",
                               prefix, i, prefix, i);
    g_string_append(xml, "  </pool>\n</node>\n");
    g_file_set_contents(path, xml->str, (gssize)xml->len, &error);
    g_assert_no_error(error);
    return g_steal_pointer(&path);
}

gboolean
dv_test_require_services(void)
{
    return g_strcmp0(g_getenv("CI"), "true") == 0 || g_strcmp0(g_getenv("DV_REQUIRE_SERVICES"), "1") == 0;
}

const char *
dv_test_droverd_path(void)
{
    static char *path;
    if (path == NULL) {
        const char *top = g_getenv("DV_TOP_BUILDDIR");
        if (top == NULL)
            top = DV_BUILD_DIR;
        path = g_build_filename(top, "src", "daemon", "droverd", NULL);
    }
    return path;
}

/* droverd dies with the test: a crashed test must not leave a server
 * holding meson's output pipe open. */
static void
dv_test_child_setup(gpointer data)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static gboolean
dv_test_daemon_launch(DvTestDaemon *d, const char *const *extra_args)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) error = NULL;
    g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
    g_autofree char *log = g_build_filename(d->state_dir, "droverd.out", NULL);
    gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;

    g_ptr_array_add(argv, (char *)dv_test_droverd_path());
    g_ptr_array_add(argv, "--state-dir");
    g_ptr_array_add(argv, d->state_dir);
    g_ptr_array_add(argv, "--listen");
    g_ptr_array_add(argv, "127.0.0.1:0");
    /* The tests' hosts are libvirt's simulated ones (test:///FILE). */
    g_ptr_array_add(argv, "--allow-simulated-hosts");
    for (guint i = 0; extra_args != NULL && extra_args[i] != NULL; i++)
        g_ptr_array_add(argv, (char *)extra_args[i]);
    g_ptr_array_add(argv, NULL);
    g_subprocess_launcher_setenv(launcher, "DV_DEBUG_JOBS", "1", TRUE);
    g_subprocess_launcher_set_child_setup(launcher, dv_test_child_setup, NULL, NULL);
    /* stdout goes to a file: a pipe nobody drains would block droverd. */
    g_unlink(log);
    g_subprocess_launcher_set_stdout_file_path(launcher, log);
    /* stderr too, so tests can search everything droverd logged (the
     * secrets tests look for plaintext there); appended across restarts. */
    if (d->stderr_fd > 0) {
        int fd = fcntl(d->stderr_fd, F_DUPFD_CLOEXEC, 3);
        if (fd >= 0)
            g_subprocess_launcher_take_stderr_fd(launcher, fd);
    } else {
        g_autofree char *err = g_build_filename(d->state_dir, "droverd.err", NULL);
        int fd = open(err, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0)
            g_subprocess_launcher_take_stderr_fd(launcher, fd);
    }
    g_clear_object(&d->proc);
    d->proc = g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, &error);
    if (d->proc == NULL) {
        g_printerr("cannot start droverd: %s\n", error->message);
        return FALSE;
    }
    /* droverd prints "droverd X serving http://127.0.0.1:PORT/api/v1 ...". */
    while (d->url == NULL && g_get_monotonic_time() < deadline) {
        g_autofree char *text = NULL;
        const char *p;
        if (g_file_get_contents(log, &text, NULL, NULL) && (p = strstr(text, "serving ")) != NULL) {
            const char *end = strstr(p, "/api/v1");
            if (end != NULL)
                d->url = g_strndup(p + 8, end - (p + 8));
        }
        if (d->url == NULL)
            g_usleep(20 * 1000);
    }
    if (d->url == NULL) {
        g_autofree char *err = g_build_filename(d->state_dir, "droverd.err", NULL);
        g_autofree char *text = NULL;
        g_file_get_contents(err, &text, NULL, NULL);
        g_printerr("droverd did not start:\n%s\n", text != NULL ? text : "(no output)");
        return FALSE;
    }
    return TRUE;
}

gboolean
dv_test_daemon_restart(DvTestDaemon *d)
{
    return dv_test_daemon_launch(d, (const char *const *)d->extra_args);
}

DvTestDaemon *
dv_test_daemon_start(const char *state_dir, const char *const *extra_args)
{
    return dv_test_daemon_start_with_stderr(state_dir, extra_args, -1);
}

DvTestDaemon *
dv_test_daemon_start_with_stderr(const char *state_dir, const char *const *extra_args,
                                 int stderr_fd)
{
    DvTestDaemon *d = g_new0(DvTestDaemon, 1);
    g_autoptr(GError) error = NULL;
    g_autofree char *pw_path = NULL;
    g_autofree char *pw = NULL;
    g_autofree char *body = NULL;
    g_autoptr(JsonNode) resp = NULL;
    guint status = 0;

    if (state_dir == NULL) {
        d->state_dir = g_dir_make_tmp("drover-test-XXXXXX", &error);
        g_assert_no_error(error);
        d->owns_state_dir = TRUE;
    } else {
        d->state_dir = g_strdup(state_dir);
    }
    d->session = soup_session_new_with_options("timeout", 60, NULL);
    d->stderr_fd = stderr_fd;
    d->extra_args = g_strdupv((char **)extra_args);
    g_assert_true(dv_test_daemon_launch(d, extra_args));

    pw_path = g_build_filename(d->state_dir, "initial-admin-password", NULL);
    g_assert_true(g_file_get_contents(pw_path, &pw, NULL, &error));
    g_strstrip(pw);
    d->password = g_strdup(pw);
    body = g_strdup_printf("{\"user\":\"admin\",\"password\":\"%s\"}", pw);
    resp = dv_test_request_anon(d, "POST", "/api/v1/session", body, &status);
    g_assert_cmpuint(status, ==, 201);
    d->token = g_strdup(json_object_get_string_member(json_node_get_object(resp), "token"));
    return d;
}

/* Restarting on the same state directory keeps the token valid. */
void
dv_test_daemon_stop(DvTestDaemon *d, gboolean kill9)
{
    if (d->proc == NULL)
        return;
    if (kill9)
        g_subprocess_force_exit(d->proc);
    else
        g_subprocess_send_signal(d->proc, SIGTERM);
    g_subprocess_wait(d->proc, NULL, NULL);
    /* A graceful stop must end cleanly: a crash or a sanitizer report at
     * shutdown fails the test. */
    if (!kill9 && !(g_subprocess_get_if_exited(d->proc) && g_subprocess_get_exit_status(d->proc) == 0)) {
        if (g_subprocess_get_if_signaled(d->proc))
            g_printerr("droverd did not exit cleanly on SIGTERM: killed by signal %d\n",
                       g_subprocess_get_term_sig(d->proc));
        else
            g_printerr("droverd did not exit cleanly on SIGTERM: exit status %d\n",
                       g_subprocess_get_exit_status(d->proc));
        g_test_fail();
    }
    g_clear_object(&d->proc);
    g_clear_pointer(&d->url, g_free);
}

void
dv_test_daemon_free(DvTestDaemon *d)
{
    if (d == NULL)
        return;
    dv_test_daemon_stop(d, FALSE);
    if (g_test_failed()) {
        g_autofree char *err = g_build_filename(d->state_dir, "droverd.err", NULL);
        g_autofree char *text = NULL;
        if (g_file_get_contents(err, &text, NULL, NULL))
            g_printerr("--- droverd stderr ---\n%s--- end ---\n", text);
    }
    if (d->owns_state_dir) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", d->state_dir);
        if (system(cmd) != 0)
            g_printerr("cannot remove %s\n", d->state_dir);
    }
    g_clear_object(&d->session);
    g_strfreev(d->extra_args);
    g_free(d->state_dir);
    g_free(d->url);
    g_free(d->token);
    g_free(d->password);
    g_free(d);
}

/* Accepts exactly the certificate droverd made in its state directory. */
static gboolean
dv_test_accept_cert(SoupMessage *msg, GTlsCertificate *peer, GTlsCertificateFlags errors,
                    gpointer user_data)
{
    DvTestDaemon *d = user_data;
    g_autofree char *path = g_build_filename(d->state_dir, "tls", "server.crt", NULL);
    g_autoptr(GTlsCertificate) ours = g_tls_certificate_new_from_file(path, NULL);
    return ours != NULL && g_tls_certificate_is_same(ours, peer);
}

static JsonNode *
dv_test_send(DvTestDaemon *d, const char *method, const char *path, GBytes *body, const char *token,
             guint *ret_status)
{
    g_autofree char *url = g_strconcat(d->url, path, NULL);
    g_autoptr(SoupMessage) msg = soup_message_new(method, url);
    g_autoptr(GBytes) out = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();
    gsize len = 0;
    const char *data;

    g_assert_nonnull(msg);
    g_signal_connect(msg, "accept-certificate", G_CALLBACK(dv_test_accept_cert), d);
    if (token != NULL) {
        g_autofree char *h = g_strdup_printf("Bearer %s", token);
        soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization", h);
    }
    if (body != NULL)
        soup_message_set_request_body_from_bytes(msg, "application/json", body);
    out = soup_session_send_and_read(d->session, msg, NULL, &error);
    g_assert_no_error(error);
    *ret_status = soup_message_get_status(msg);
    data = g_bytes_get_data(out, &len);
    if (len == 0 || !json_parser_load_from_data(parser, data, (gssize)len, NULL))
        return NULL;
    return json_node_copy(json_parser_get_root(parser));
}

JsonNode *
dv_test_request(DvTestDaemon *d, const char *method, const char *path, const char *body,
                guint *ret_status)
{
    g_autoptr(GBytes) b = body != NULL ? g_bytes_new(body, strlen(body)) : NULL;
    return dv_test_send(d, method, path, b, d->token, ret_status);
}

JsonNode *
dv_test_request_anon(DvTestDaemon *d, const char *method, const char *path, const char *body,
                     guint *ret_status)
{
    g_autoptr(GBytes) b = body != NULL ? g_bytes_new(body, strlen(body)) : NULL;
    return dv_test_send(d, method, path, b, NULL, ret_status);
}

JsonNode *
dv_test_request_bytes(DvTestDaemon *d, const char *method, const char *path, GBytes *body,
                      guint *ret_status)
{
    return dv_test_send(d, method, path, body, d->token, ret_status);
}

JsonNode *
dv_test_request_as(DvTestDaemon *d, const char *token, const char *method, const char *path,
                   const char *body, guint *ret_status)
{
    g_autoptr(GBytes) b = body != NULL ? g_bytes_new(body, strlen(body)) : NULL;
    return dv_test_send(d, method, path, b, token, ret_status);
}

GPtrArray *
dv_test_job_events(DvTestDaemon *d, const char *token, const char *job_id, guint *ret_status)
{
    g_autofree char *url = g_strdup_printf("%s/api/v1/jobs/%s/events", d->url, job_id);
    g_autoptr(SoupMessage) msg = soup_message_new("GET", url);
    g_autoptr(GError) error = NULL;
    g_autoptr(GInputStream) in = NULL;
    g_autoptr(GDataInputStream) data = NULL;
    g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *event = NULL;
    gboolean ended = FALSE;

    if (token != NULL) {
        g_autofree char *auth = g_strdup_printf("Bearer %s", token);
        soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization", auth);
    }
    in = soup_session_send(d->session, msg, NULL, &error);
    g_assert_no_error(error);
    *ret_status = soup_message_get_status(msg);
    if (*ret_status != 200)
        return NULL;
    g_assert_cmpstr(
        soup_message_headers_get_content_type(soup_message_get_response_headers(msg), NULL), ==,
        "text/event-stream");
    data = g_data_input_stream_new(in);
    while (!ended) {
        g_autofree char *line = g_data_input_stream_read_line_utf8(data, NULL, NULL, &error);
        g_assert_no_error(error);
        if (line == NULL)
            break;
        if (g_str_has_prefix(line, "event: ")) {
            g_free(event);
            event = g_strdup(line + 7);
        } else if (g_str_has_prefix(line, "data: ")) {
            if (g_strcmp0(event, "progress") == 0)
                g_ptr_array_add(events, g_strdup(line + 6));
            else if (g_strcmp0(event, "end") == 0)
                ended = TRUE;
        }
    }
    g_assert_true(ended);
    return g_steal_pointer(&events);
}

JsonObject *
dv_test_request_as_ok(DvTestDaemon *d, const char *token, const char *method, const char *path,
                      const char *body, guint want_status)
{
    guint status = 0;
    g_autoptr(JsonNode) n = dv_test_request_as(d, token, method, path, body, &status);
    if (status != want_status) {
        g_autofree char *t = n != NULL ? json_to_string(n, FALSE) : g_strdup("(no body)");
        g_error("%s %s: expected %u, got %u: %s", method, path, want_status, status, t);
    }
    g_assert_nonnull(n);
    return json_object_ref(json_node_get_object(n));
}

JsonObject *
dv_test_wait_job(DvTestDaemon *d, const char *job_id, guint timeout_s)
{
    g_autofree char *path = g_strdup_printf("/api/v1/jobs/%s", job_id);
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;

    while (g_get_monotonic_time() < deadline) {
        guint status = 0;
        g_autoptr(JsonNode) resp = dv_test_request(d, "GET", path, NULL, &status);
        JsonObject *job;
        const char *state;
        g_assert_cmpuint(status, ==, 200);
        job = json_node_get_object(resp);
        state = json_object_get_string_member(job, "state");
        if (g_strcmp0(state, "queued") != 0 && g_strcmp0(state, "running") != 0)
            return json_object_ref(job);
        g_usleep(50 * 1000);
    }
    g_error("job %s did not finish within %u s", job_id, timeout_s);
    return NULL;
}

JsonObject *
dv_test_run_job(DvTestDaemon *d, const char *method, const char *path, const char *body)
{
    guint status = 0;
    g_autoptr(JsonNode) resp = dv_test_request(d, method, path, body, &status);
    JsonObject *job;

    if (status != 202) {
        g_autofree char *text = resp != NULL ? json_to_string(resp, FALSE) : g_strdup("(none)");
        g_error("%s %s: expected 202, got %u: %s", method, path, status, text);
    }
    job = json_object_get_object_member(json_node_get_object(resp), "job");
    return dv_test_wait_job(d, json_object_get_string_member(job, "id"), 300);
}

void
dv_test_assert_error(JsonNode *resp, guint status, guint want_status, const char *code,
                     const char *field)
{
    JsonObject *err;
    if (status != want_status || resp == NULL) {
        g_autofree char *text = resp != NULL ? json_to_string(resp, FALSE) : g_strdup("(no body)");
        g_error("expected HTTP %u (%s), got %u: %s", want_status, code, status, text);
    }
    err = json_object_get_object_member(json_node_get_object(resp), "error");
    g_assert_nonnull(err);
    g_assert_cmpstr(json_object_get_string_member(err, "code"), ==, code);
    g_assert_true(strlen(json_object_get_string_member(err, "message")) > 0);
    if (field != NULL)
        g_assert_cmpstr(json_object_get_string_member_with_default(err, "field", "(null)"), ==,
                        field);
}

gint64
dv_test_count(DvTestDaemon *d, const char *list_path)
{
    gint64 n = 0;
    g_autofree char *cursor = NULL;
    do {
        guint status = 0;
        g_autofree char *path = cursor == NULL
                                    ? g_strdup_printf("%s%slimit=500", list_path,
                                                      strchr(list_path, '?') ? "&" : "?")
                                    : g_strdup_printf("%s%slimit=500&cursor=%s", list_path,
                                                      strchr(list_path, '?') ? "&" : "?", cursor);
        g_autoptr(JsonNode) resp = dv_test_request(d, "GET", path, NULL, &status);
        JsonObject *o;
        g_assert_cmpuint(status, ==, 200);
        o = json_node_get_object(resp);
        n += json_array_get_length(json_object_get_array_member(o, "items"));
        g_free(cursor);
        cursor = json_object_get_null_member(o, "next_cursor")
                     ? NULL
                     : g_uri_escape_string(json_object_get_string_member(o, "next_cursor"), NULL, TRUE);
    } while (cursor != NULL);
    return n;
}

/* --- files and processes (setup, upgrade and their benchmark) ------------ */

void
dv_test_rm_rf(const char *path)
{
    if (path == NULL)
        return;
    if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
        g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
        const char *name;
        while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
            g_autofree char *child = g_build_filename(path, name, NULL);
            dv_test_rm_rf(child);
        }
        g_rmdir(path);
    } else {
        g_unlink(path);
    }
}

char *
dv_test_file_sha256(const char *path)
{
    g_autofree char *data = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, len);
}

char *
dv_test_build_path(const char *first, ...)
{
    const char *top = g_getenv("DV_TOP_BUILDDIR");
    g_autofree char *rel = NULL;
    va_list ap;

    va_start(ap, first);
    rel = g_build_filename_valist(first, &ap);
    va_end(ap);
    return g_build_filename(top != NULL ? top : DV_BUILD_DIR, rel, NULL);
}

int
dv_test_spawn(const char *const *argv, const char *const *envp, char **ret_out, char **ret_err)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    int status = 0;

    g_spawn_sync(NULL, (char **)argv, (char **)envp, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
                 &status, &error);
    g_assert_no_error(error);
    if (ret_out != NULL)
        *ret_out = g_steal_pointer(&out);
    if (ret_err != NULL)
        *ret_err = g_steal_pointer(&err);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 255;
}

GPtrArray *
dv_test_setup_argv_new(const char *const *args)
{
    GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);

    g_ptr_array_add(argv, dv_test_build_path("src", "setup", "drover-setup", NULL));
    for (guint i = 0; args[i] != NULL; i++)
        g_ptr_array_add(argv, g_strdup(args[i]));
    g_ptr_array_add(argv, NULL);
    return argv;
}

int
dv_test_run_setup(const char *const *args, char **ret_out, char **ret_err)
{
    g_autoptr(GPtrArray) argv = dv_test_setup_argv_new(args);
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    int rc;

    rc = dv_test_spawn((const char *const *)argv->pdata, NULL, &out, &err);
    g_test_message("drover-setup %s %s -> %d\n%s%s", args[0],
                   args[0] != NULL && args[1] != NULL ? args[1] : "", rc, out, err);
    if (ret_out != NULL)
        *ret_out = g_steal_pointer(&out);
    if (ret_err != NULL)
        *ret_err = g_steal_pointer(&err);
    return rc;
}

const char *
dv_test_env(const char *name)
{
    const char *v = g_getenv(name);
    if (v == NULL)
        g_error("%s is not set: run under tests/services/with-services", name);
    return v;
}

static int
dv_test_compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
dv_test_tree_snapshot_into(GString *s, const char *dir, const char *rel, DvTestTreeFlags flags)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *name;

    while (d != NULL && (name = g_dir_read_name(d)) != NULL)
        g_ptr_array_add(names, g_strdup(name));
    g_ptr_array_sort(names, dv_test_compare_names);
    for (guint i = 0; i < names->len; i++) {
        const char *n = g_ptr_array_index(names, i);
        g_autofree char *p = g_build_filename(dir, n, NULL);
        g_autofree char *r = g_build_filename(rel, n, NULL);
        struct stat st;

        g_assert_cmpint(lstat(p, &st), ==, 0);
        g_string_append_printf(s, "%s %o %u", r, st.st_mode, (guint)st.st_uid);
        if (flags & DV_TEST_TREE_TIMES)
            g_string_append_printf(s, " %lld %lld.%09ld", (long long)st.st_size,
                                   (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        if (S_ISREG(st.st_mode)) {
            g_autofree char *sum = dv_test_file_sha256(p);
            g_string_append_printf(s, " %s", sum);
        }
        g_string_append_c(s, '\n');
        if (S_ISDIR(st.st_mode))
            dv_test_tree_snapshot_into(s, p, r, flags);
    }
}

char *
dv_test_tree_snapshot(const char *dir, DvTestTreeFlags flags)
{
    GString *s = g_string_new(NULL);
    dv_test_tree_snapshot_into(s, dir, "", flags);
    return g_string_free(s, FALSE);
}

void
dv_test_assert_tree_unchanged(const char *dir, DvTestTreeFlags flags, const char *before)
{
    g_autofree char *after = dv_test_tree_snapshot(dir, flags);
    g_assert_cmpstr(after, ==, before);
}

void
dv_test_assert_file_unchanged(const char *path, const char *before)
{
    g_autofree char *after = dv_test_file_sha256(path);
    g_assert_cmpstr(after, ==, before);
}

gboolean
dv_test_have_service(const char *var, const char *what)
{
    if (g_getenv(var) != NULL)
        return TRUE;
    if (dv_test_require_services())
        g_error("%s is not set: run under tests/services/with-services", var);
    g_test_skip_printf("no %s (%s); run under tests/services/with-services", what, var);
    return FALSE;
}

void
dv_test_remove_account(const char *name)
{
    const char *argv[] = { "userdel", name, NULL };
    if (name != NULL)
        dv_test_spawn(argv, NULL, NULL, NULL);
}

void
dv_test_remove_stale_accounts(const char *prefix)
{
    struct passwd *pw;
    g_autoptr(GPtrArray) stale = g_ptr_array_new_with_free_func(g_free);
    gsize plen = strlen(prefix);

    setpwent();
    while ((pw = getpwent()) != NULL) {
        const char *digits = pw->pw_name + plen;
        const char *end = digits;
        guint64 pid = 0;
        g_autofree char *pid_text = NULL;

        if (!g_str_has_prefix(pw->pw_name, prefix))
            continue;
        while (g_ascii_isdigit(*end))
            end++;
        if (end == digits || *end == '\0')
            continue;
        pid_text = g_strndup(digits, end - digits);
        if (!g_ascii_string_to_unsigned(pid_text, 10, 1, G_MAXINT32, &pid, NULL))
            continue;
        if ((pid_t)pid != getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            g_ptr_array_add(stale, g_strdup(pw->pw_name));
    }
    endpwent();
    for (guint i = 0; i < stale->len; i++)
        dv_test_remove_account(g_ptr_array_index(stale, i));
}

void
dv_test_assert_job_state(JsonObject *job, const char *state)
{
    if (g_strcmp0(json_object_get_string_member(job, "state"), state) != 0) {
        g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), job);
        g_autofree char *t = json_to_string(n, FALSE);
        g_error("job is not %s: %s", state, t);
    }
}

void
dv_test_run_job_ok(DvTestDaemon *d, const char *method, const char *path, const char *body)
{
    g_autoptr(JsonObject) job = dv_test_run_job(d, method, path, body);
    dv_test_assert_job_state(job, "succeeded");
}

void
dv_test_api_make_cat1(DvTestDaemon *d, const char *dir)
{
    g_autofree char *xml = dv_test_write_host_xml(dir, "h1.xml", "m", 3);
    g_autofree char *host = g_strdup_printf("{\"name\":\"h1\",\"uri\":\"test://%s\"}", xml);
    g_autoptr(JsonObject) job = NULL;

    dv_test_run_job_ok(d, "POST", "/api/v1/hosts", host);
    dv_test_run_job_ok(d, "POST", "/api/v1/vms/m0/stop", NULL);
    dv_test_run_job_ok(d, "POST", "/api/v1/vms/m0/snapshots", "{\"name\":\"s1\"}");
    job = dv_test_run_job(d, "POST", "/api/v1/catalogs",
                          "{\"name\":\"cat1\",\"master_vm\":\"m0\",\"master_snapshot\":\"s1\","
                          "\"hosts\":[\"h1\"],\"pool\":\"pool1\",\"naming_scheme\":\"desk-##\","
                          "\"count\":2,\"machine\":{\"memory_mib\":64}}");
    dv_test_assert_job_state(job, "failed");
}

void
dv_test_api_fixture_setup(DvTestApiFixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    f->d = dv_test_daemon_start(NULL, NULL);
    f->hostdir = g_dir_make_tmp("drover-hosts-XXXXXX", &error);
    g_assert_no_error(error);
}

void
dv_test_api_fixture_teardown(DvTestApiFixture *f, gconstpointer data)
{
    g_clear_pointer(&f->d, dv_test_daemon_free);
    dv_test_rm_rf(f->hostdir);
    g_clear_pointer(&f->hostdir, g_free);
}

static GMutex dv_test_log_lock;
static GPtrArray *dv_test_log_entries; /* of GHashTable, under the lock */

static GLogWriterOutput
dv_test_log_capture_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                           gpointer user_data)
{
    GHashTable *entry = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

    for (gsize i = 0; i < n_fields; i++) {
        char *v = fields[i].length < 0 ? g_strdup(fields[i].value)
                                       : g_strndup(fields[i].value, (gsize)fields[i].length);
        g_hash_table_replace(entry, g_strdup(fields[i].key), v);
    }
    g_hash_table_replace(entry, g_strdup("DV_TEST_LEVEL"),
                         g_strdup_printf("%d", (int)(level & G_LOG_LEVEL_MASK)));
    g_mutex_lock(&dv_test_log_lock);
    g_ptr_array_add(dv_test_log_entries, entry);
    g_mutex_unlock(&dv_test_log_lock);
    return g_log_writer_default(level, fields, n_fields, user_data);
}

void
dv_test_log_capture_start(void)
{
    g_mutex_lock(&dv_test_log_lock);
    if (dv_test_log_entries == NULL)
        dv_test_log_entries = g_ptr_array_new_with_free_func((GDestroyNotify)g_hash_table_unref);
    g_mutex_unlock(&dv_test_log_lock);
    g_log_set_writer_func(dv_test_log_capture_writer, NULL, NULL);
}

static gboolean
dv_test_log_entry_matches(GHashTable *e, const char *domain, GLogLevelFlags level,
                          const char *needle)
{
    g_autofree char *want_level = g_strdup_printf("%d", (int)(level & G_LOG_LEVEL_MASK));
    const char *msg = g_hash_table_lookup(e, "MESSAGE");

    return g_strcmp0(g_hash_table_lookup(e, "GLIB_DOMAIN"), domain) == 0 &&
           g_strcmp0(g_hash_table_lookup(e, "DV_TEST_LEVEL"), want_level) == 0 && msg != NULL &&
           strstr(msg, needle) != NULL;
}

guint
dv_test_log_capture_count(const char *domain, GLogLevelFlags level, const char *needle)
{
    guint n = 0;

    g_assert_nonnull(dv_test_log_entries);
    g_mutex_lock(&dv_test_log_lock);
    for (guint i = 0; i < dv_test_log_entries->len; i++)
        n += dv_test_log_entry_matches(g_ptr_array_index(dv_test_log_entries, i), domain, level,
                                       needle);
    g_mutex_unlock(&dv_test_log_lock);
    return n;
}

GHashTable *
dv_test_log_capture_find(const char *domain, GLogLevelFlags level, const char *needle,
                         guint timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    g_assert_nonnull(dv_test_log_entries);
    for (;;) {
        GHashTable *found = NULL;

        g_mutex_lock(&dv_test_log_lock);
        for (guint i = 0; i < dv_test_log_entries->len && found == NULL; i++) {
            GHashTable *e = g_ptr_array_index(dv_test_log_entries, i);
            if (dv_test_log_entry_matches(e, domain, level, needle))
                found = g_hash_table_ref(e);
        }
        g_mutex_unlock(&dv_test_log_lock);
        if (found != NULL || g_get_monotonic_time() >= deadline)
            return found;
        g_usleep(20 * 1000);
    }
}
