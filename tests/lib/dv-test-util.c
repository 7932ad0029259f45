#define G_LOG_DOMAIN "DvTestUtil"

#include "dv-config.h"
#include "dv-test-util.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
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

static const char *
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
    {
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
        g_printerr("droverd did not exit cleanly on SIGTERM\n");
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
dv_test_send(DvTestDaemon *d, const char *method, const char *path, GBytes *body, gboolean auth,
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
    if (auth && d->token != NULL) {
        g_autofree char *h = g_strdup_printf("Bearer %s", d->token);
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
    return dv_test_send(d, method, path, b, TRUE, ret_status);
}

JsonNode *
dv_test_request_anon(DvTestDaemon *d, const char *method, const char *path, const char *body,
                     guint *ret_status)
{
    g_autoptr(GBytes) b = body != NULL ? g_bytes_new(body, strlen(body)) : NULL;
    return dv_test_send(d, method, path, b, FALSE, ret_status);
}

JsonNode *
dv_test_request_bytes(DvTestDaemon *d, const char *method, const char *path, GBytes *body,
                      guint *ret_status)
{
    return dv_test_send(d, method, path, body, TRUE, ret_status);
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
dv_test_remove_tree(const char *dir)
{
    const char *const argv[] = { "rm", "-rf", "--", dir, NULL };
    if (dir != NULL)
        g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
                     NULL);
}
