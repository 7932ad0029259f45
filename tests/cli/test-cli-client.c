#define G_LOG_DOMAIN "DvCli"

/* The CLI against a FAKE in-process server (a SoupServer on its own thread,
 * allowed for the CLI's unit tier only): login, a 202 job followed over
 * server-sent events, the polling fallback, a failed job, a 404, a 400
 * with a field, paging, and exit codes with the text printed. */

#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <string.h>
#include <sys/stat.h>

#include "dv-cli.h"
#include "dv-error.h"
#include "dv-json.h"

#define FAKE_TOKEN "tok-1"

typedef struct {
    GThread *thread;
    GMainContext *context;
    GMainLoop *loop;
    SoupServer *server;
    char *url;
    GMutex lock;
    GCond cond;
    gboolean ready;
    char *last_body;   /* of the last POST /vms */
    char *last_query;  /* of the last GET /hosts */
    guint job3_polls;
    char *last_access; /* "METHOD /path?query BODY" of the last access-control request */
} FakeServer;

static FakeServer fake;

static const char *
job_json(const char *id, const char *state, int progress, const char *step, const char *extra)
{
    /* Static buffer: handlers run on one thread, one at a time. */
    static char buf[1024];
    g_snprintf(buf, sizeof buf,
               "{\"id\": \"%s\", \"kind\": \"vm.create\", \"state\": \"%s\", \"progress\": %d,"
               " \"current_step\": %s%s%s, \"target_type\": \"vm\", \"target_name\": \"web1\"%s}",
               id, state, progress, step != NULL ? "\"" : "", step != NULL ? step : "null",
               step != NULL ? "\"" : "", extra != NULL ? extra : "");
    return buf;
}

static void
reply(SoupServerMessage *msg, guint status, const char *content_type, const char *body)
{
    soup_server_message_set_status(msg, status, NULL);
    soup_server_message_set_response(msg, content_type, SOUP_MEMORY_COPY, body, strlen(body));
}

static void
reply_error(SoupServerMessage *msg, guint status, const char *code, const char *message, const char *field)
{
    g_autofree char *body = NULL;
    if (field != NULL)
        body = g_strdup_printf("{\"error\": {\"code\": \"%s\", \"message\": \"%s\", \"field\": \"%s\"}}", code,
                               message, field);
    else
        body = g_strdup_printf("{\"error\": {\"code\": \"%s\", \"message\": \"%s\", \"field\": null}}", code,
                               message);
    reply(msg, status, "application/json", body);
}

static void
reply_events(SoupServerMessage *msg, const char *const *jobs)
{
    g_autoptr(GString) body = g_string_new(": hello\n\n");
    for (guint i = 0; jobs[i] != NULL; i++)
        g_string_append_printf(body, "event: progress\ndata: %s\n\n", jobs[i]);
    /* As droverd sends it: an end event whose data is not a job. */
    g_string_append(body, "event: end\ndata: {}\n\n");
    reply(msg, 200, "text/event-stream", body->str);
}

/* The access-control routes (docs/API.md, "Access control"): canned
 * answers, the request recorded as "METHOD /path?query BODY". */
static const struct {
    const char *method;
    const char *path;
    guint status;
    const char *body;
} fake_access_routes[] = {
    { "GET", "/api/v1/users", 200,
      "{\"items\": [{\"id\": \"u1\", \"name\": \"alice\", \"disabled\": false,"
      " \"created_at\": \"2026-12-01T10:00:00Z\"}, {\"id\": \"u2\", \"name\": \"bob\", \"disabled\": true,"
      " \"created_at\": \"2026-12-02T10:00:00Z\"}], \"next_cursor\": null}" },
    { "GET", "/api/v1/users/alice", 200,
      "{\"id\": \"u1\", \"name\": \"alice\", \"disabled\": false, \"created_at\": \"2026-12-01T10:00:00Z\","
      " \"bindings\": [{\"id\": \"b1\", \"principal_kind\": \"user\", \"principal\": \"u1\","
      " \"user\": {\"id\": \"u1\", \"name\": \"alice\"}, \"group\": null,"
      " \"role\": {\"id\": \"role-delegated-administrator\", \"name\": \"delegated-administrator\"},"
      " \"scope\": {\"kind\": \"host_group\", \"id\": \"g1\", \"name\": \"prod\"}, \"effect\": \"allow\","
      " \"quota\": {\"vms\": 10, \"vcpus\": 20, \"memory_mib\": 8192, \"storage_gib\": null,"
      " \"per_member\": {\"vms\": 2, \"vcpus\": null, \"memory_mib\": null, \"storage_gib\": 50}}}]}" },
    { "POST", "/api/v1/users", 201,
      "{\"id\": \"u3\", \"name\": \"carol\", \"disabled\": false, \"created_at\": \"2026-12-07T10:00:00Z\"}" },
    { "PATCH", "/api/v1/users/bob", 200,
      "{\"id\": \"u2\", \"name\": \"bob\", \"disabled\": true, \"created_at\": \"2026-12-02T10:00:00Z\"}" },
    { "DELETE", "/api/v1/users/bob", 200, "{}" },
    { "GET", "/api/v1/roles", 200,
      "{\"items\": [{\"id\": \"r1\", \"name\": \"administrator\", \"builtin\": true, \"privileges\": [\"*\"]},"
      " {\"id\": \"r9\", \"name\": \"ops\", \"builtin\": false, \"privileges\": [\"vm.power\", \"vm.read\"]}],"
      " \"next_cursor\": null}" },
    { "GET", "/api/v1/roles/ops", 200,
      "{\"id\": \"r9\", \"name\": \"ops\", \"builtin\": false, \"privileges\": [\"vm.power\", \"vm.read\"]}" },
    { "GET", "/api/v1/privileges", 200, "{\"items\": [{\"name\": \"vm.power\"}, {\"name\": \"vm.read\"}]}" },
    { "POST", "/api/v1/roles", 201,
      "{\"id\": \"r9\", \"name\": \"ops\", \"builtin\": false, \"privileges\": [\"vm.power\", \"vm.read\"]}" },
    { "DELETE", "/api/v1/roles/ops", 200, "{}" },
    { "GET", "/api/v1/bindings", 200,
      "{\"items\": [{\"id\": \"b1\", \"user\": \"alice\", \"group\": null, \"role\": \"delegated-administrator\","
      " \"scope\": {\"kind\": \"host_group\", \"id\": \"g1\", \"name\": \"prod\"}, \"effect\": \"allow\","
      " \"quota\": {\"vms\": 10}}, {\"id\": \"b2\", \"user\": null, \"group\": \"tenants\","
      " \"role\": {\"id\": \"role-read-only-administrator\", \"name\": \"read-only\"}, \"scope_kind\": \"global\","
      " \"scope\": null, \"effect\": \"deny\", \"quota\": null}], \"next_cursor\": null}" },
    { "POST", "/api/v1/bindings", 201, "{\"id\": \"b3\", \"user\": \"alice\", \"role\": \"read-only\"}" },
    { "DELETE", "/api/v1/bindings/b1", 200, "{}" },
    { "GET", "/api/v1/tokens", 200,
      "{\"items\": [{\"id\": \"t1\", \"name\": \"ci\", \"user\": \"alice\", \"expires_at\": \"2027-03-07T10:00:00Z\","
      " \"privileges\": [\"vm.read\"]}], \"next_cursor\": null}" },
    { "POST", "/api/v1/tokens", 201,
      "{\"id\": \"t2\", \"name\": \"ci\", \"token\": \"drv-Tok-0123456789\", \"expires_at\": \"2027-01-06T10:00:00Z\","
      " \"privileges\": [\"vm.read\"]}" },
    { "DELETE", "/api/v1/tokens/t1", 200, "{}" },
    { "GET", "/api/v1/sessions", 200,
      "{\"items\": [{\"id\": \"s1\", \"user\": \"alice\", \"created_at\": \"2026-12-07T09:00:00Z\","
      " \"expires_at\": \"2026-12-07T21:00:00Z\", \"last_seen_at\": \"2026-12-07T09:30:00Z\", \"current\": true},"
      " {\"id\": \"s2\", \"user\": \"alice\", \"created_at\": \"2026-12-06T09:00:00Z\","
      " \"expires_at\": \"2026-12-06T21:00:00Z\", \"current\": false}], \"next_cursor\": null}" },
    { "DELETE", "/api/v1/sessions/s2", 200, "{}" },
    { "GET", "/api/v1/audit", 200,
      "{\"items\": [{\"id\": \"a1\", \"at\": \"2026-12-07T09:31:00Z\", \"user\": \"alice\", \"source\": \"10.0.0.5\","
      " \"operation\": \"vm.start\", \"object_kind\": \"vm\", \"object_id\": \"v1\", \"outcome\": \"refused\","
      " \"job_id\": null, \"detail\": \"needs vm.power\"}], \"next_cursor\": \"a-next\"}" },
};

/* TRUE when @path is an access-control route this fake answers. */
static gboolean
fake_access(SoupServerMessage *msg, const char *method, const char *path, const char *req_text)
{
    static const char *const prefixes[] = { "/api/v1/users", "/api/v1/roles", "/api/v1/privileges",
                                            "/api/v1/bindings", "/api/v1/tokens", "/api/v1/sessions",
                                            "/api/v1/audit" };
    const char *query = g_uri_get_query(soup_server_message_get_uri(msg));
    gboolean ours = FALSE;

    for (gsize i = 0; i < G_N_ELEMENTS(prefixes); i++)
        ours = ours || g_str_has_prefix(path, prefixes[i]);
    if (!ours)
        return FALSE;
    g_free(fake.last_access);
    fake.last_access = g_strdup_printf("%s %s%s%s %s", method, path, query != NULL ? "?" : "",
                                       query != NULL ? query : "", req_text != NULL && req_text[0] ? req_text : "-");
    if (g_strcmp0(path, "/api/v1/roles/administrator") == 0 && g_strcmp0(method, "DELETE") == 0) {
        reply_error(msg, 409, "conflict", "a built-in role cannot be deleted", "role");
        return TRUE;
    }
    for (gsize i = 0; i < G_N_ELEMENTS(fake_access_routes); i++) {
        if (g_strcmp0(fake_access_routes[i].method, method) == 0 && g_strcmp0(fake_access_routes[i].path, path) == 0) {
            reply(msg, fake_access_routes[i].status, "application/json", fake_access_routes[i].body);
            return TRUE;
        }
    }
    reply_error(msg, 404, "not-found", "no such object", NULL);
    return TRUE;
}

static void
fake_handler(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
    const char *method = soup_server_message_get_method(msg);
    const char *auth = soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Authorization");
    gboolean authed = g_strcmp0(auth, "Bearer " FAKE_TOKEN) == 0;
    SoupMessageBody *req = soup_server_message_get_request_body(msg);
    g_autoptr(GBytes) req_bytes = soup_message_body_flatten(req);
    const char *req_text = g_bytes_get_data(req_bytes, NULL);

    if (g_strcmp0(path, "/api/v1/version") == 0) {
        /* An older server, as droverd 0.1.0 would say it. */
        soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Drover-Version", "0.1.0");
        reply(msg, 200, "application/json", "{\"version\": \"0.1.0\", \"api\": \"v1\", \"schema_version\": 3}");
        return;
    }
    if (g_strcmp0(path, "/api/v1/session") == 0 && g_strcmp0(method, "POST") == 0) {
        g_autoptr(JsonObject) body = dv_json_parse_object(req_text, g_bytes_get_size(req_bytes), 4096, 4, NULL);
        if (body != NULL && g_strcmp0(dv_json_get_string(body, "password", NULL), "s3cret") == 0)
            reply(msg, 201, "application/json",
                  "{\"token\": \"" FAKE_TOKEN "\", \"user\": \"admin\", \"role\": \"administrator\","
                  " \"expires_at\": \"2026-11-22T16:00:00.000000Z\"}");
        else
            reply_error(msg, 401, "auth-required", "wrong user name or password", NULL);
        return;
    }
    /* Credentials the server refuses, each with its reason (or none). */
    if (g_strcmp0(auth, "Bearer stale-session") == 0) {
        reply_error(msg, 401, "auth-required", "the session token is unknown or expired; log in again",
                    NULL);
        return;
    }
    if (g_strcmp0(auth, "Bearer dvt_revoked") == 0) {
        reply_error(msg, 401, "auth-required", "this API token was revoked", NULL);
        return;
    }
    if (g_strcmp0(auth, "Bearer dvt_disabled") == 0) {
        reply_error(msg, 401, "auth-required", "this user is disabled", NULL);
        return;
    }
    if (g_strcmp0(auth, "Bearer dvt_silent") == 0 || g_strcmp0(auth, "Bearer silent-session") == 0) {
        reply(msg, 401, "text/plain", "");
        return;
    }
    if (!authed) {
        reply_error(msg, 401, "auth-required", "a bearer token is required", NULL);
        return;
    }
    if (g_strcmp0(path, "/api/v1/session") == 0 && g_strcmp0(method, "GET") == 0) {
        reply(
            msg, 200, "application/json",
            "{\"user_id\": \"u1\", \"name\": \"admin\", \"user\": \"admin\", \"roles\": "
            "[\"role-administrator\"],"
            " \"bindings\": [{\"id\": \"b0\", \"principal_kind\": \"user\", \"principal\": \"u1\","
            " \"role_id\": \"role-administrator\", \"role\": {\"id\": \"role-administrator\","
            " \"name\": \"administrator\"}, \"scope_kind\": \"global\", \"scope\": null,"
            " \"user\": {\"id\": \"u1\", \"name\": \"admin\"}, \"group\": null,"
            " \"scope_id\": null, \"effect\": \"allow\"}, {\"id\": \"b5\", \"principal_kind\": \"group\","
            " \"principal\": \"cn=web,dc=x\", \"group\": \"cn=web,dc=x\", \"user\": null,"
            " \"role\": {\"id\": \"r9\", \"name\": \"ops\"}, \"scope\": {\"kind\": \"host_group\","
            " \"id\": \"g1\", \"name\": \"prod\"}, \"effect\": \"allow\"},"
            " {\"id\": \"b4\", \"principal_kind\": "
            "\"group\","
            " \"principal\": \"cn=ops,dc=x\", \"role_id\": \"r9\", \"role\": \"ops\", "
            "\"scope_kind\": \"host_group\","
            " \"scope_id\": \"g1\", \"effect\": \"deny\"}], \"privileges\": [\"vm.read\"],"
            " \"storage_redacted\": false}");
        return;
    }
    if (g_strcmp0(path, "/api/v1/session") == 0 && g_strcmp0(method, "DELETE") == 0) {
        soup_server_message_set_status(msg, 204, NULL);
        return;
    }
    if (fake_access(msg, method, path, req_text))
        return;
    if (g_strcmp0(path, "/api/v1/vms") == 0 && g_strcmp0(method, "POST") == 0) {
        g_autoptr(JsonObject) body = dv_json_parse_object(req_text, g_bytes_get_size(req_bytes), 65536, 8, NULL);
        const char *name = dv_json_get_string(body, "name", "");
        g_free(fake.last_body);
        fake.last_body = g_strdup(req_text);
        if (g_strcmp0(name, "Bad_Name!") == 0) {
            reply_error(msg, 400, "invalid-argument", "must be 1-63 lowercase letters, digits or '-'", "name");
            return;
        }
        if (g_strcmp0(name, "dup") == 0) {
            reply_error(msg, 409, "conflict", "a vm named 'dup' exists on kvm1", "name");
            return;
        }
        {
            g_autofree char *job = g_strdup_printf("{\"job\": %s}", job_json(g_strcmp0(name, "poll") == 0 ? "job-3"
                                                                                                          : "job-1",
                                                                             "queued", 0, NULL, NULL));
            soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Location",
                                         "/api/v1/jobs/job-1");
            reply(msg, 202, "application/json", job);
        }
        return;
    }
    if (g_strcmp0(path, "/api/v1/vms/web1/start") == 0) {
        g_autofree char *job = g_strdup_printf("{\"job\": %s}", job_json("job-2", "queued", 0, NULL, NULL));
        reply(msg, 202, "application/json", job);
        return;
    }
    if (g_strcmp0(path, "/api/v1/jobs/job-1/events") == 0) {
        g_autofree char *a = g_strdup(job_json("job-1", "running", 40, "create volumes", NULL));
        g_autofree char *b = g_strdup(job_json("job-1", "running", 80, "define domain", NULL));
        g_autofree char *c = g_strdup(job_json("job-1", "succeeded", 100, NULL, ", \"result\": {\"id\": \"vm-123\"}"));
        const char *const jobs[] = { a, b, c, NULL };
        reply_events(msg, jobs);
        return;
    }
    if (g_strcmp0(path, "/api/v1/jobs/job-2/events") == 0) {
        g_autofree char *a = g_strdup(job_json("job-2", "running", 10, "start domain", NULL));
        g_autofree char *b = g_strdup(job_json(
            "job-2", "failed", 10, "start domain",
            ", \"error\": {\"code\": \"host-failed\", \"message\": \"libvirt refused: not enough memory\","
            " \"field\": null}"));
        const char *const jobs[] = { a, b, NULL };
        reply_events(msg, jobs);
        return;
    }
    if (g_strcmp0(path, "/api/v1/jobs/job-3/events") == 0) {
        /* A broken stream: the client must fall back to polling. */
        reply(msg, 200, "text/event-stream", "event: progress\ndata: {\"id\": ");
        return;
    }
    if (g_strcmp0(path, "/api/v1/jobs/job-3") == 0) {
        fake.job3_polls++;
        if (fake.job3_polls < 2)
            reply(msg, 200, "application/json", job_json("job-3", "running", 50, "define domain", NULL));
        else
            reply(msg, 200, "application/json",
                  job_json("job-3", "succeeded", 100, NULL, ", \"result\": \"vm-456\""));
        return;
    }
    if (g_strcmp0(path, "/api/v1/hosts") == 0) {
        const char *cursor = query != NULL ? g_hash_table_lookup(query, "cursor") : NULL;
        g_free(fake.last_query);
        fake.last_query = g_strdup(g_uri_get_query(soup_server_message_get_uri(msg)));
        if (cursor == NULL)
            reply(msg, 200, "application/json",
                  "{\"items\": [{\"id\": \"h1\", \"name\": \"kvm1\", \"state\": \"ok\", \"uri\": \"qemu:///system\","
                  " \"host_group\": null, \"cluster\": null}], \"next_cursor\": \"c2\"}");
        else
            reply(msg, 200, "application/json",
                  "{\"items\": [{\"id\": \"h2\", \"name\": \"kvm-two\", \"state\": \"unreachable\","
                  " \"uri\": \"qemu+ssh://root@kvm2/system\", \"host_group\": {\"id\": \"g1\", \"name\": \"prod\"},"
                  " \"cluster\": null}], \"next_cursor\": null}");
        return;
    }
    if (g_strcmp0(path, "/api/v1/host-groups/prod") == 0) {
        reply(msg, 200, "application/json", "{\"id\": \"g1\", \"name\": \"prod\"}");
        return;
    }
    reply_error(msg, 404, "not-found", "no such object", NULL);
}

static gpointer
fake_thread(gpointer data)
{
    g_autoptr(GError) error = NULL;
    GSList *uris;

    g_main_context_push_thread_default(fake.context);
    fake.server = soup_server_new(NULL, NULL);
    soup_server_add_handler(fake.server, "/api/v1", fake_handler, NULL, NULL);
    if (!soup_server_listen_local(fake.server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error))
        g_error("fake server: %s", error->message);
    uris = soup_server_get_uris(fake.server);
    {
        g_autofree char *s = g_uri_to_string(uris->data);
        g_mutex_lock(&fake.lock);
        fake.url = g_strdup(s);
        /* "http://127.0.0.1:PORT/" -> without the slash */
        fake.url[strlen(fake.url) - 1] = '\0';
        fake.ready = TRUE;
        g_cond_signal(&fake.cond);
        g_mutex_unlock(&fake.lock);
    }
    g_slist_free_full(uris, (GDestroyNotify)g_uri_unref);
    g_main_loop_run(fake.loop);
    soup_server_disconnect(fake.server);
    while (g_main_context_iteration(fake.context, FALSE))
        ;
    g_clear_object(&fake.server);
    g_main_context_pop_thread_default(fake.context);
    return NULL;
}

static void
fake_start(void)
{
    fake.context = g_main_context_new();
    fake.loop = g_main_loop_new(fake.context, FALSE);
    fake.thread = g_thread_new("fake-server", fake_thread, NULL);
    g_mutex_lock(&fake.lock);
    while (!fake.ready)
        g_cond_wait(&fake.cond, &fake.lock);
    g_mutex_unlock(&fake.lock);
}

static gboolean
fake_quit(gpointer data)
{
    g_main_loop_quit(fake.loop);
    return G_SOURCE_REMOVE;
}

static void
fake_stop(void)
{
    g_main_context_invoke(fake.context, fake_quit, NULL);
    g_thread_join(fake.thread);
    g_main_loop_unref(fake.loop);
    g_main_context_unref(fake.context);
    g_free(fake.url);
    g_free(fake.last_body);
    g_free(fake.last_query);
    g_free(fake.last_access);
}

static DvCliClient *
client_new(gboolean with_token)
{
    g_autoptr(GError) error = NULL;
    DvCliClient *client = dv_cli_client_new(fake.url, FALSE, &error);
    g_assert_no_error(error);
    if (with_token)
        dv_cli_client_set_token(client, FAKE_TOKEN);
    return client;
}

static GString *captured_stderr;

static void
capture_printerr(const char *text)
{
    g_string_append(captured_stderr, text);
}

static void
test_client_version(void)
{
    g_autoptr(DvCliClient) client = client_new(FALSE);
    g_autoptr(GError) error = NULL;
    guint status = 0;
    g_autoptr(JsonNode) node = NULL;
    g_autoptr(JsonNode) again = NULL;
    GPrintFunc old;

    captured_stderr = g_string_new(NULL);
    old = g_set_printerr_handler(capture_printerr);
    node = dv_cli_client_request(client, "GET", "/version", NULL, &status, &error);
    again = dv_cli_client_request(client, "GET", "/version", NULL, NULL, NULL);
    g_set_printerr_handler(old);
    g_assert_no_error(error);
    g_assert_cmpuint(status, ==, 200);
    g_assert_cmpstr(dv_json_get_string(json_node_get_object(node), "api", NULL), ==, "v1");
    /* This drover is newer than the server (Drover-Version 0.1.0): said once. */
    g_assert_nonnull(strstr(captured_stderr->str, "newer than the server (droverd 0.1.0"));
    g_assert_null(strstr(strstr(captured_stderr->str, "newer") + 1, "newer than the server"));
    g_string_free(captured_stderr, TRUE);
}

static void
test_client_errors(void)
{
    g_autoptr(DvCliClient) client = client_new(TRUE);
    g_autoptr(DvCliClient) anonymous = client_new(FALSE);
    g_autoptr(JsonObject) body = json_object_new();
    g_autoptr(GError) e404 = NULL;
    g_autoptr(GError) e400 = NULL;
    g_autoptr(GError) e409 = NULL;
    g_autoptr(GError) e401 = NULL;
    g_autoptr(JsonNode) n404 = dv_cli_client_request(client, "GET", "/vms/nope", NULL, NULL, &e404);
    g_autoptr(JsonNode) n400 = NULL;
    g_autoptr(JsonNode) n409 = NULL;
    g_autoptr(JsonNode) n401 = dv_cli_client_request(anonymous, "GET", "/hosts", NULL, NULL, &e401);

    g_assert_null(n404);
    g_assert_error(e404, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_assert_cmpstr(e404->message, ==, "no such object");
    g_assert_cmpint(dv_error_to_exit_code(e404), ==, DV_EXIT_NOT_FOUND);

    json_object_set_string_member(body, "name", "Bad_Name!");
    n400 = dv_cli_client_request(client, "POST", "/vms", body, NULL, &e400);
    g_assert_null(n400);
    g_assert_error(e400, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(dv_error_get_field(e400), ==, "name");
    g_assert_cmpint(dv_error_to_exit_code(e400), ==, DV_EXIT_INVALID);

    json_object_set_string_member(body, "name", "dup");
    n409 = dv_cli_client_request(client, "POST", "/vms", body, NULL, &e409);
    g_assert_null(n409);
    g_assert_cmpint(dv_error_to_exit_code(e409), ==, DV_EXIT_CONFLICT);

    g_assert_null(n401);
    g_assert_error(e401, DV_ERROR, DV_ERROR_AUTH_REQUIRED);
    g_assert_cmpstr(e401->message, ==, "not logged in or session expired; run 'drover login'");
    g_assert_cmpint(dv_error_to_exit_code(e401), ==, DV_EXIT_AUTH);
}

/* A refused credential: the server's reason is shown; 'drover login' is
 * suggested for a session (and for none), not for an API token. */
static void
test_client_auth_reasons(void)
{
    static const struct {
        const char *token; /* NULL: none sent */
        const char *message;
    } cases[] = {
        { NULL, "not logged in or session expired; run 'drover login'" },
        { "stale-session",
          "not logged in or session expired (the server says: the session token is unknown or "
          "expired; log in again); run 'drover login'" },
        { "silent-session", "not logged in or session expired; run 'drover login'" },
        { "dvt_revoked", "the API token was refused: this API token was revoked" },
        { "dvt_disabled", "the API token was refused: this user is disabled" },
        { "dvt_silent", "the API token was refused: the server gave no reason (HTTP 401)" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(DvCliClient) client = client_new(FALSE);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = NULL;
        if (cases[i].token != NULL)
            dv_cli_client_set_token(client, cases[i].token);
        node = dv_cli_client_request(client, "GET", "/hosts", NULL, NULL, &error);
        g_assert_null(node);
        g_assert_error(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED);
        g_assert_cmpstr(error->message, ==, cases[i].message);
        g_assert_cmpint(dv_error_to_exit_code(error), ==, DV_EXIT_AUTH);
    }
}

static void
test_client_unreachable(void)
{
    g_autoptr(GError) error = NULL;
    /* Port 1 on loopback: nothing listens there. */
    g_autoptr(DvCliClient) client = dv_cli_client_new("http://127.0.0.1:1/api/v1/", FALSE, &error);
    g_autoptr(JsonNode) node = NULL;

    g_assert_no_error(error);
    g_assert_cmpstr(dv_cli_client_get_server(client), ==, "http://127.0.0.1:1");
    node = dv_cli_client_request(client, "GET", "/version", NULL, NULL, &error);
    g_assert_null(node);
    g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
    g_assert_true(g_str_has_prefix(error->message, "cannot reach the Drover server at http://127.0.0.1:1: "));
    g_assert_cmpint(dv_error_to_exit_code(error), ==, DV_EXIT_UNAVAILABLE);
}

static void
count_update(JsonObject *job, gpointer user_data)
{
    GPtrArray *steps = user_data;
    g_ptr_array_add(steps, g_strdup_printf("%s/%" G_GINT64_FORMAT, dv_json_get_string(job, "state", "?"),
                                           dv_json_get_int(job, "progress", -1)));
}

static void
test_client_follow_events(void)
{
    g_autoptr(DvCliClient) client = client_new(TRUE);
    g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = dv_cli_client_follow_job(client, "job-1", count_update, seen, &error);

    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(job, "state", NULL), ==, "succeeded");
    g_assert_cmpuint(seen->len, ==, 3);
    g_assert_cmpstr(g_ptr_array_index(seen, 0), ==, "running/40");
    g_assert_cmpstr(g_ptr_array_index(seen, 2), ==, "succeeded/100");
}

static void
test_client_follow_polling(void)
{
    g_autoptr(DvCliClient) client = client_new(TRUE);
    g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = NULL;

    fake.job3_polls = 0;
    job = dv_cli_client_follow_job(client, "job-3", count_update, seen, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(job, "state", NULL), ==, "succeeded");
    g_assert_cmpuint(fake.job3_polls, ==, 2);
    g_assert_cmpstr(g_ptr_array_index(seen, seen->len - 1), ==, "succeeded/100");
}

static void
test_sse_parser(void)
{
    g_auto(DvCliSseParser) parser = { 0 };
    g_autoptr(GError) error = NULL;
    static const char *const lines[] = { ": keep-alive", "", "event: progress", "data: {\"a\":", "data:1}",
                                         "id: 7", "", "data: x", "" };
    g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func(g_free);

    dv_cli_sse_parser_init(&parser);
    for (gsize i = 0; i < G_N_ELEMENTS(lines); i++) {
        g_autofree char *event = NULL;
        g_autofree char *data = NULL;
        if (dv_cli_sse_parser_feed(&parser, lines[i], &event, &data, &error))
            g_ptr_array_add(events, g_strdup_printf("%s=%s", event, data));
        g_assert_no_error(error);
    }
    g_assert_cmpuint(events->len, ==, 2);
    g_assert_cmpstr(g_ptr_array_index(events, 0), ==, "progress={\"a\":\n1}");
    g_assert_cmpstr(g_ptr_array_index(events, 1), ==, "message=x");
}

/* The whole command line, in-process, against the fake server. */
static int
run(char **ret_out, char **ret_err, ...)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    char *out = NULL;
    char *err = NULL;
    size_t out_len = 0;
    size_t err_len = 0;
    FILE *o = open_memstream(&out, &out_len);
    FILE *e = open_memstream(&err, &err_len);
    va_list ap;
    const char *word;
    int rc;

    g_ptr_array_add(argv, (gpointer) "drover");
    g_ptr_array_add(argv, (gpointer) "--server");
    g_ptr_array_add(argv, fake.url);
    va_start(ap, ret_err);
    while ((word = va_arg(ap, const char *)) != NULL)
        g_ptr_array_add(argv, (gpointer)word);
    va_end(ap);
    g_ptr_array_add(argv, NULL);
    rc = dv_cli_main((int)argv->len - 1, (char **)argv->pdata, o, e);
    fclose(o);
    fclose(e);
    *ret_out = g_strdup(out);
    *ret_err = g_strdup(err);
    free(out);
    free(err);
    return rc;
}

#define assert_contains(haystack, needle)                                                                    \
    G_STMT_START {                                                                                           \
        if (strstr((haystack), (needle)) == NULL)                                                            \
            g_error("'%s' does not contain '%s'", (haystack), (needle));                                    \
    }                                                                                                        \
    G_STMT_END

static void
test_main_session(void)
{
    g_autofree char *dir = g_dir_make_tmp("drover-cli-XXXXXX", NULL);
    g_autofree char *pwfile = g_build_filename(dir, "pw", NULL);
    g_autofree char *badfile = g_build_filename(dir, "bad", NULL);
    g_autofree char *config_path = NULL;
    g_autofree char *config = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    GStatBuf st;
    int rc;

    g_setenv("XDG_CONFIG_HOME", dir, TRUE);
    g_assert_true(g_file_set_contents(pwfile, "s3cret\n", -1, NULL));
    g_assert_true(g_file_set_contents(badfile, "wrong\n", -1, NULL));

    /* Not logged in yet. */
    rc = run(&out, &err, "host", "list", NULL);
    g_assert_cmpint(rc, ==, DV_EXIT_AUTH);
    g_assert_cmpstr(err, ==, "error: not logged in or session expired; run 'drover login'\n");
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);

    rc = run(&out, &err, "login", "--user", "admin", "--password-file", badfile, NULL);
    g_assert_cmpint(rc, ==, DV_EXIT_AUTH);
    g_assert_cmpstr(err, ==, "error: wrong user name or password\n");
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);

    rc = run(&out, &err, "login", "--user", "admin", "--password-file", pwfile, NULL);
    g_assert_cmpint(rc, ==, 0);
    assert_contains(out, "Logged in to ");
    /* The roles come from GET /session's bindings, a group's included. */
    assert_contains(out, " as admin; the session expires at 2026-11-22T16:00:00.000000Z\nRoles:\n"
                         "  administrator on global\n"
                         "  ops on host_group prod, through group cn=web,dc=x\n"
                         "  ops (denied) on host_group g1, through group cn=ops,dc=x\n");
    g_assert_cmpstr(err, ==, "");
    config_path = dv_cli_config_path();
    g_assert_cmpint(g_stat(config_path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);
    g_assert_true(g_file_get_contents(config_path, &config, NULL, NULL));
    assert_contains(config, "token=" FAKE_TOKEN);
    assert_contains(config, fake.url);
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);
    g_clear_pointer(&config, g_free);

    /* A mutation followed over the event stream; not a terminal, so one
     * line per step on stderr. */
    rc = run(&out, &err, "vm", "create", "web1", "--host", "kvm1", "--disk", "1024:default:qcow2", NULL);
    g_assert_cmpint(rc, ==, 0);
    g_assert_cmpstr(out, ==, "Created vm web1 (id vm-123)\n");
    g_assert_cmpstr(err, ==, " 40%  create volumes\n 80%  define domain\n100%  succeeded\n");
    assert_contains(fake.last_body, "\"disks\":[{\"size_mib\":1024,\"pool\":\"default\",\"format\":\"qcow2\"}]");
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);

    rc = run(&out, &err, "-o", "json", "vm", "create", "web1", "--host", "kvm1", NULL);
    g_assert_cmpint(rc, ==, 0);
    assert_contains(out, "\"state\" : \"succeeded\"");
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);

    /* Event stream broken: polling. */
    fake.job3_polls = 0;
    rc = run(&out, &err, "vm", "create", "poll", "--host", "kvm1", NULL);
    g_assert_cmpint(rc, ==, 0);
    g_assert_cmpstr(out, ==, "Created vm poll (id vm-456)\n");
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);

    rc = run(&out, &err, "vm", "create", "web1", "--host", "kvm1", "--no-wait", NULL);
    g_assert_cmpint(rc, ==, 0);
    g_assert_cmpstr(out, ==, "job-1\n");
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);

    /* A job that fails with host-failed: exit 8. */
    rc = run(&out, &err, "vm", "start", "web1", NULL);
    g_assert_cmpint(rc, ==, DV_EXIT_JOB_FAILED);
    g_assert_cmpstr(out, ==, "");
    assert_contains(err, "error: libvirt refused: not enough memory\n");
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);

    rc = run(&out, &err, "vm", "show", "nope", NULL);
    g_assert_cmpint(rc, ==, DV_EXIT_NOT_FOUND);
    g_assert_cmpstr(err, ==, "error: no such object\n");
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);

    rc = run(&out, &err, "vm", "create", "Bad_Name!", "--host", "kvm1", NULL);
    g_assert_cmpint(rc, ==, DV_EXIT_INVALID);
    g_assert_cmpstr(err, ==, "error: must be 1-63 lowercase letters, digits or '-' (field: name)\n");
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);

    rc = run(&out, &err, "vm", "create", "dup", "--host", "kvm1", NULL);
    g_assert_cmpint(rc, ==, DV_EXIT_CONFLICT);
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);

    /* One page, then all pages; a group name resolved to its id. */
    rc = run(&out, &err, "host", "list", "--group", "prod", "--limit", "1", NULL);
    g_assert_cmpint(rc, ==, 0);
    g_assert_cmpstr(fake.last_query, ==, "host_group_id=g1&limit=1");
    g_assert_cmpstr(out, ==,
                    "NAME  STATE  URI             GROUP  CLUSTER  ID\n"
                    "kvm1  ok     qemu:///system  -      -        h1\n");
    g_assert_cmpstr(err, ==, "(more: use --all or --limit)\n");
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);

    rc = run(&out, &err, "host", "list", "--all", NULL);
    g_assert_cmpint(rc, ==, 0);
    g_assert_cmpstr(out, ==,
                    "NAME     STATE        URI                          GROUP  CLUSTER  ID\n"
                    "kvm1     ok           qemu:///system               -      -        h1\n"
                    "kvm-two  unreachable  qemu+ssh://root@kvm2/system  prod   -        h2\n");
    g_assert_cmpstr(err, ==, "");
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);

    rc = run(&out, &err, "host", "list", "--all", "-o", "json", NULL);
    g_assert_cmpint(rc, ==, 0);
    assert_contains(out, "\"kvm-two\"");
    assert_contains(out, "\"next_cursor\" : null");
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);

    rc = run(&out, &err, "version", NULL);
    g_assert_cmpint(rc, ==, 0);
    assert_contains(out, "client: drover ");
    assert_contains(out, "server: droverd 0.1.0 (api v1, schema 3)");
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);

    rc = run(&out, &err, "logout", NULL);
    g_assert_cmpint(rc, ==, 0);
    assert_contains(out, "Logged out of ");
    g_assert_true(g_file_get_contents(config_path, &config, NULL, NULL));
    g_assert_null(strstr(config, "token"));
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);

    g_unlink(pwfile);
    g_unlink(badfile);
    g_unlink(config_path);
    {
        g_autofree char *sub = g_path_get_dirname(config_path);
        g_rmdir(sub);
    }
    g_rmdir(dir);
}

/* Runs one access-control command with the session token; checks its exit
 * code and the request the fake server saw (NULL: none expected). */
#define ACCESS_RUN(rc_expected, request_expected, ...)                                                       \
    G_STMT_START {                                                                                           \
        g_clear_pointer(&out, g_free);                                                                       \
        g_clear_pointer(&err, g_free);                                                                       \
        g_clear_pointer(&fake.last_access, g_free);                                                          \
        rc = run(&out, &err, "--token", FAKE_TOKEN, __VA_ARGS__, NULL);                                      \
        if (rc != (rc_expected))                                                                             \
            g_error("exit %d, expected %d; out '%s' err '%s'", rc, (rc_expected), out, err);                \
        g_assert_cmpstr(fake.last_access, ==, (request_expected));                                           \
    }                                                                                                        \
    G_STMT_END

/* drover user/role/binding/token/session/audit against the fake server:
 * the request each command sends (method, path, query, body) and what it
 * prints, as a table and as JSON. */
static void
test_main_access(void)
{
    g_autofree char *dir = g_dir_make_tmp("drover-cli-access-XXXXXX", NULL);
    g_autofree char *pwfile = g_build_filename(dir, "pw", NULL);
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    int rc;

    g_setenv("XDG_CONFIG_HOME", dir, TRUE);
    g_assert_true(g_file_set_contents(pwfile, "Carol-pw-1234\n", -1, NULL));
    g_assert_cmpint(g_chmod(pwfile, 0600), ==, 0);

    /* user */
    ACCESS_RUN(0, "GET /api/v1/users -", "user", "list");
    g_assert_cmpstr(out, ==,
                    "NAME   DISABLED  CREATED               ID\n"
                    "alice  no        2026-12-01T10:00:00Z  u1\n"
                    "bob    yes       2026-12-02T10:00:00Z  u2\n");
    g_assert_cmpstr(err, ==, "");
    ACCESS_RUN(0, "GET /api/v1/users -", "user", "list", "-o", "json");
    assert_contains(out, "\"name\" : \"bob\"");
    assert_contains(out, "\"disabled\" : true");
    ACCESS_RUN(0, "GET /api/v1/users/alice -", "user", "show", "alice");
    g_assert_cmpstr(out, ==,
                    "id:          u1\n"
                    "name:        alice\n"
                    "created_at:  2026-12-01T10:00:00Z\n"
                    "disabled:    no\n"
                    "\n"
                    "Bindings:\n"
                    "ID  USER   GROUP  ROLE                     SCOPE       SCOPE-REF  EFFECT  QUOTA-VMS  QUOTA-VCPUS  QUOTA-MEMORY  QUOTA-GIB  MEMBER-VMS  MEMBER-VCPUS  MEMBER-MEMORY  MEMBER-GIB\n"
                    "b1  alice  -      delegated-administrator  host_group  prod       allow   10         20           8 GiB         -          2           -             -              50\n");
    ACCESS_RUN(0, "GET /api/v1/users/alice -", "user", "show", "alice", "--output=json");
    assert_contains(out, "\"bindings\" : [");
    ACCESS_RUN(0, "POST /api/v1/users {\"role\":\"read-only\",\"name\":\"carol\",\"password\":\"Carol-pw-1234\"}", "user",
               "add", "carol", "--password-file", pwfile, "--role", "read-only");
    g_assert_cmpstr(out, ==, "Added user carol (id u3)\n");
    g_assert_cmpstr(err, ==, "");
    /* The password is never printed, not even in JSON. */
    ACCESS_RUN(0, "POST /api/v1/users {\"name\":\"carol\",\"password\":\"Carol-pw-1234\"}", "-o", "json", "user",
               "add", "carol", "--password-file", pwfile);
    assert_contains(out, "\"id\" : \"u3\"");
    g_assert_null(strstr(out, "Carol-pw"));
    ACCESS_RUN(0, "PATCH /api/v1/users/bob {\"disabled\":true}", "user", "disable", "bob");
    g_assert_cmpstr(out, ==, "Disabled user bob\n");
    ACCESS_RUN(0, "PATCH /api/v1/users/bob {\"disabled\":false}", "user", "enable", "bob");
    g_assert_cmpstr(out, ==, "Enabled user bob\n");
    ACCESS_RUN(0, "DELETE /api/v1/users/bob -", "user", "delete", "bob");
    g_assert_cmpstr(out, ==, "Deleted user bob\n");
    /* Usage errors send nothing. */
    ACCESS_RUN(DV_EXIT_USAGE, NULL, "user", "add", "carol", "--password", "Carol-pw-1234");
    g_assert_null(strstr(err, "Carol-pw"));
    assert_contains(err, "\nTry 'drover user add --help'.\n");

    /* role */
    ACCESS_RUN(0, "GET /api/v1/roles -", "role", "list");
    g_assert_cmpstr(out, ==,
                    "NAME           BUILTIN  PRIVILEGES  ID\n"
                    "administrator  yes      1           r1\n"
                    "ops            no       2           r9\n");
    ACCESS_RUN(0, "GET /api/v1/roles/ops -", "role", "show", "ops");
    g_assert_cmpstr(out, ==,
                    "id:          r9\n"
                    "name:        ops\n"
                    "builtin:     no\n"
                    "privileges:  vm.power, vm.read\n");
    ACCESS_RUN(0, "GET /api/v1/privileges -", "role", "privileges");
    g_assert_cmpstr(out, ==, "NAME\nvm.power\nvm.read\n");
    g_assert_cmpstr(err, ==, "");
    ACCESS_RUN(0, "POST /api/v1/roles {\"privileges\":[\"vm.power\",\"vm.read\"],\"name\":\"ops\"}", "role", "add",
               "ops", "--privilege", "vm.power", "--privilege", "vm.read");
    g_assert_cmpstr(out, ==, "Added role ops (id r9)\n");
    ACCESS_RUN(0, "DELETE /api/v1/roles/ops -", "role", "delete", "ops");
    g_assert_cmpstr(out, ==, "Deleted role ops\n");
    ACCESS_RUN(DV_EXIT_CONFLICT, "DELETE /api/v1/roles/administrator -", "role", "delete", "administrator");
    g_assert_cmpstr(err, ==, "error: a built-in role cannot be deleted (field: role)\n");

    /* binding */
    ACCESS_RUN(0, "GET /api/v1/bindings?group=tenants -", "binding", "list", "--group", "tenants");
    g_assert_cmpstr(out, ==,
                    "ID  USER   GROUP    ROLE                     SCOPE       SCOPE-REF  EFFECT  QUOTA-VMS  QUOTA-VCPUS  QUOTA-MEMORY  QUOTA-GIB  MEMBER-VMS  MEMBER-VCPUS  MEMBER-MEMORY  MEMBER-GIB\n"
                    "b1  alice  -        delegated-administrator  host_group  prod       allow   10         -            -             -          -           -             -              -\n"
                    "b2  -      tenants  read-only                global      -          deny    -          -            -             -          -           -             -              -\n");
    ACCESS_RUN(0, "GET /api/v1/bindings?user=alice&limit=5 -", "binding", "list", "--user", "alice", "--limit", "5");
    ACCESS_RUN(0,
               "POST /api/v1/bindings {\"group\":\"tenants\",\"role\":\"self-service\",\"scope\":{\"kind\":\"host_group\","
               "\"ref\":\"prod\"},\"effect\":\"deny\",\"quota\":{\"vms\":10,\"memory_mib\":4096,\"per_member\":{\"vms\":2,"
               "\"storage_gib\":50}}}",
               "binding", "add", "--group", "tenants", "--role", "self-service", "--host-group", "prod", "--deny",
               "--quota-vms", "10", "--quota-memory", "4096", "--member-vms", "2", "--member-storage", "50");
    g_assert_cmpstr(out, ==, "Added binding (id b3)\n");
    ACCESS_RUN(0, "POST /api/v1/bindings {\"user\":\"alice\",\"role\":\"read-only\"}", "-o", "json", "binding", "add",
               "--user", "alice", "--role", "read-only");
    assert_contains(out, "\"id\" : \"b3\"");
    ACCESS_RUN(0, "DELETE /api/v1/bindings/b1 -", "binding", "delete", "b1");
    g_assert_cmpstr(out, ==, "Deleted binding b1\n");
    ACCESS_RUN(DV_EXIT_USAGE, NULL, "binding", "add", "--user", "alice", "--group", "tenants", "--role", "r");
    assert_contains(err, "error: --user and --group exclude each other");

    /* token: the secret once on stdout, a warning on stderr */
    ACCESS_RUN(0, "GET /api/v1/tokens?user=alice -", "token", "list", "--user", "alice");
    g_assert_cmpstr(out, ==,
                    "NAME  USER   EXPIRES               PRIVILEGES  ID\n"
                    "ci    alice  2027-03-07T10:00:00Z  vm.read     t1\n");
    ACCESS_RUN(0, "POST /api/v1/tokens {\"expires_in_days\":30,\"privileges\":[\"vm.read\"],\"name\":\"ci\"}", "token",
               "add", "ci", "--expires-in", "30", "--privilege", "vm.read");
    g_assert_cmpstr(out, ==, "Created token ci (id t2), expires 2027-01-06T10:00:00Z:\ndrv-Tok-0123456789\n");
    assert_contains(err, "warning: the token is shown only now and cannot be shown again");
    ACCESS_RUN(0, "POST /api/v1/tokens {\"name\":\"ci\"}", "token", "add", "ci", "-o", "json");
    assert_contains(out, "\"token\" : \"drv-Tok-0123456789\"");
    assert_contains(err, "warning: the token is shown only now");
    ACCESS_RUN(0, "DELETE /api/v1/tokens/t1 -", "token", "revoke", "t1");
    g_assert_cmpstr(out, ==, "Revoked token t1\n");

    /* session */
    ACCESS_RUN(0, "GET /api/v1/sessions -", "session", "list");
    g_assert_cmpstr(out, ==,
                    "ID  USER   CREATED               EXPIRES               LAST-SEEN             CURRENT\n"
                    "s1  alice  2026-12-07T09:00:00Z  2026-12-07T21:00:00Z  2026-12-07T09:30:00Z  yes\n"
                    "s2  alice  2026-12-06T09:00:00Z  2026-12-06T21:00:00Z  -                     no\n");
    ACCESS_RUN(0, "GET /api/v1/sessions?user=bob -", "session", "list", "--user", "bob", "-o", "json");
    assert_contains(out, "\"current\" : true");
    ACCESS_RUN(0, "DELETE /api/v1/sessions/s2 -", "session", "revoke", "s2");
    g_assert_cmpstr(out, ==, "Revoked session s2\n");

    /* audit: filters as query parameters, paged like every list */
    ACCESS_RUN(0, "GET /api/v1/audit?user=alice&operation=vm.start&outcome=refused&object=v1&limit=1 -", "audit",
               "--user", "alice", "--operation", "vm.start", "--outcome", "refused", "--object", "v1", "--limit",
               "1");
    g_assert_cmpstr(out, ==,
                    "AT                    USER   SOURCE    OPERATION  KIND  OBJECT  OUTCOME  JOB  ID\n"
                    "2026-12-07T09:31:00Z  alice  10.0.0.5  vm.start   vm    v1      refused  -    a1\n");
    g_assert_cmpstr(err, ==, "(more: use --all or --limit)\n");
    ACCESS_RUN(0, "GET /api/v1/audit -", "audit", "-o", "json");
    assert_contains(out, "\"next_cursor\" : \"a-next\"");
    ACCESS_RUN(DV_EXIT_USAGE, NULL, "audit", "--outcome", "maybe");
    assert_contains(err, "--outcome: must be one of allowed|refused|failed, got 'maybe'");

    g_unlink(pwfile);
    g_rmdir(dir);
}
#undef ACCESS_RUN

static void
test_main_unreachable(void)
{
    char *argv[] = { "drover", "--server", "http://127.0.0.1:1", "vm", "list", NULL };
    char *out = NULL;
    char *err = NULL;
    size_t out_len = 0;
    size_t err_len = 0;
    FILE *o = open_memstream(&out, &out_len);
    FILE *e = open_memstream(&err, &err_len);
    int rc = dv_cli_main(5, argv, o, e);

    fclose(o);
    fclose(e);
    g_assert_cmpint(rc, ==, DV_EXIT_UNAVAILABLE);
    g_assert_true(g_str_has_prefix(err, "error: cannot reach the Drover server at http://127.0.0.1:1: "));
    free(out);
    free(err);
}

int
main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    g_unsetenv("DROVER_SERVER");
    g_unsetenv("DROVER_TOKEN");
    fake_start();
    g_test_add_func("/drover/cli/client/version", test_client_version);
    g_test_add_func("/drover/cli/client/errors", test_client_errors);
    g_test_add_func("/drover/cli/client/auth-reasons", test_client_auth_reasons);
    g_test_add_func("/drover/cli/client/unreachable", test_client_unreachable);
    g_test_add_func("/drover/cli/client/follow-events", test_client_follow_events);
    g_test_add_func("/drover/cli/client/follow-polling", test_client_follow_polling);
    g_test_add_func("/drover/cli/client/sse-parser", test_sse_parser);
    g_test_add_func("/drover/cli/main/session", test_main_session);
    g_test_add_func("/drover/cli/main/unreachable", test_main_unreachable);
    g_test_add_func("/drover/cli/main/access", test_main_access);
    rc = g_test_run();
    fake_stop();
    return rc;
}
