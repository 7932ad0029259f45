#define G_LOG_DOMAIN "DvCli"

#include "dv-cli-client.h"
#include "dv-validate.h"

#include <libsoup/soup.h>
#include <string.h>

#include "dv-config.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-secret.h"

#define DV_CLI_HTTP_TIMEOUT_S 60

struct _DvCliClient {
    SoupSession *session;
    char *server; /* "http://host:port", no trailing slash */
    char *base;   /* server + DV_CLI_API_PREFIX */
    DvSecret *token;
    gboolean insecure;
    gboolean version_checked;
};

/* 1 when dotted version @a is newer than @b. */
static int
dv_cli_version_compare(const char *a, const char *b)
{
    g_auto(GStrv) pa = g_strsplit(a, ".", 4);
    g_auto(GStrv) pb = g_strsplit(b, ".", 4);
    for (guint i = 0; i < 3; i++) {
        guint64 va = 0, vb = 0;
        if (i < g_strv_length(pa))
            g_ascii_string_to_unsigned(pa[i], 10, 0, G_MAXUINT32, &va, NULL);
        if (i < g_strv_length(pb))
            g_ascii_string_to_unsigned(pb[i], 10, 0, G_MAXUINT32, &vb, NULL);
        if (va != vb)
            return va < vb ? -1 : 1;
    }
    return 0;
}

/* The skew rule for the CLI (docs/UPGRADE.md): a drover newer than its
 * server says so once, on stderr. */
static void
dv_cli_client_check_version(DvCliClient *client, SoupMessage *msg)
{
    const char *server_version;

    if (client->version_checked)
        return;
    server_version = soup_message_headers_get_one(soup_message_get_response_headers(msg), "Drover-Version");
    if (server_version == NULL)
        return;
    client->version_checked = TRUE;
    if (dv_cli_version_compare(DV_VERSION, server_version) > 0)
        g_printerr("drover: this drover %s is newer than the server (droverd %s at %s); commands "
                   "the server does not know yet will fail: upgrade the server "
                   "(drover-setup upgrade) or use drover %s\n",
                   DV_VERSION, server_version, client->server, server_version);
}

DvCliClient *
dv_cli_client_new(const char *server, gboolean insecure, GError **error)
{
    g_autoptr(DvCliClient) client = g_new0(DvCliClient, 1);
    g_autoptr(GUri) uri = NULL;
    g_autoptr(GError) local = NULL;
    g_autofree char *s = g_strdup(server);
    const char *scheme;
    const char *path;
    gsize len;

    /* Accept "http://h:8420", "http://h:8420/" and ".../api/v1[/]". */
    len = strlen(s);
    while (len > 0 && s[len - 1] == '/')
        s[--len] = '\0';
    if (g_str_has_suffix(s, DV_CLI_API_PREFIX))
        s[len - strlen(DV_CLI_API_PREFIX)] = '\0';

    uri = g_uri_parse(s, G_URI_FLAGS_NONE, &local);
    if (uri == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "server",
                           "'%s' is not a server URL (for example http://127.0.0.1:8420): %s",
                           server, local->message);
        return NULL;
    }
    scheme = g_uri_get_scheme(uri);
    path = g_uri_get_path(uri);
    if ((g_ascii_strcasecmp(scheme, "http") != 0 && g_ascii_strcasecmp(scheme, "https") != 0) ||
        g_uri_get_host(uri) == NULL || g_uri_get_host(uri)[0] == '\0' ||
        (path != NULL && path[0] != '\0') || g_uri_get_query(uri) != NULL ||
        g_uri_get_fragment(uri) != NULL || g_uri_get_userinfo(uri) != NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "server",
                           "'%s' is not a server URL: use http://HOST:PORT or https://HOST:PORT", server);
        return NULL;
    }

    client->server = g_steal_pointer(&s);
    client->base = g_strconcat(client->server, DV_CLI_API_PREFIX, NULL);
    client->insecure = insecure;
    client->session = soup_session_new_with_options("timeout", DV_CLI_HTTP_TIMEOUT_S,
                                                    "user-agent", "drover/" DV_VERSION,
                                                    NULL);
    return g_steal_pointer(&client);
}

void
dv_cli_client_set_timeout(DvCliClient *client, guint seconds)
{
    g_object_set(client->session, "timeout", seconds, NULL);
}

void
dv_cli_client_free(DvCliClient *client)
{
    if (client == NULL)
        return;
    g_clear_object(&client->session);
    g_free(client->server);
    g_free(client->base);
    dv_secret_free(client->token);
    g_free(client);
}

const char *
dv_cli_client_get_server(DvCliClient *client)
{
    return client->server;
}

void
dv_cli_client_set_token(DvCliClient *client, const char *token)
{
    g_clear_pointer(&client->token, dv_secret_free);
    if (token != NULL && token[0] != '\0')
        client->token = dv_secret_new_from_string(token);
}

gboolean
dv_cli_client_has_token(DvCliClient *client)
{
    return client->token != NULL;
}

static gboolean
dv_cli_accept_any_certificate(SoupMessage *msg, GTlsCertificate *cert, GTlsCertificateFlags errors,
                              gpointer user_data)
{
    return TRUE;
}

static SoupMessage *
dv_cli_client_message_new(DvCliClient *client, const char *method, const char *path, const char *accept,
                          GError **error)
{
    g_autofree char *url = g_strconcat(client->base, path, NULL);
    g_autoptr(SoupMessage) msg = soup_message_new(method, url);
    SoupMessageHeaders *headers;

    if (msg == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL, "cannot build a request for '%s'", url);
        return NULL;
    }
    headers = soup_message_get_request_headers(msg);
    soup_message_headers_replace(headers, "Accept", accept);
    if (client->token != NULL) {
        g_autofree char *auth = g_strconcat("Bearer ", dv_secret_get_string(client->token), NULL);
        soup_message_headers_replace(headers, "Authorization", auth);
        dv_secret_str_free(g_steal_pointer(&auth));
    }
    if (client->insecure)
        g_signal_connect(msg, "accept-certificate", G_CALLBACK(dv_cli_accept_any_certificate), NULL);
    return g_steal_pointer(&msg);
}

/* A GIO/TLS/libsoup failure to talk to the server at all. */
static void
dv_cli_client_set_transport_error(DvCliClient *client, GError **error, const GError *cause)
{
    if (g_error_matches(cause, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
        dv_set_field_error(error, DV_ERROR_TIMEOUT, NULL,
                           "the Drover server at %s did not answer within %d seconds",
                           client->server, DV_CLI_HTTP_TIMEOUT_S);
        return;
    }
    dv_set_field_error(error, DV_ERROR_UNAVAILABLE, NULL, "cannot reach the Drover server at %s: %s%s",
                       client->server, cause->message,
                       cause->domain == G_TLS_ERROR
                           ? " (use --insecure to accept a self-signed certificate)"
                           : "");
}

static GBytes *
dv_cli_read_all(GInputStream *stream, gsize max, GError **error)
{
    g_autoptr(GByteArray) buf = g_byte_array_new();
    guint8 chunk[16384];

    for (;;) {
        gssize n = g_input_stream_read(stream, chunk, sizeof chunk, NULL, error);
        if (n < 0)
            return NULL;
        if (n == 0)
            break;
        if (buf->len + (gsize)n > max) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                        "the response is larger than %" G_GSIZE_FORMAT " bytes", max);
            return NULL;
        }
        g_byte_array_append(buf, chunk, (guint)n);
    }
    return g_byte_array_free_to_bytes(g_steal_pointer(&buf));
}

/* API tokens are the server's "dvt_" ones (docs/ACCESS.md, "API tokens"). */
static DvCliCredential
dv_cli_client_credential(DvCliClient *client)
{
    if (client->token == NULL)
        return DV_CLI_CREDENTIAL_NONE;
    if (g_str_has_prefix(dv_secret_get_string(client->token), "dvt_"))
        return DV_CLI_CREDENTIAL_TOKEN;
    return DV_CLI_CREDENTIAL_SESSION;
}

static DvErrorCode
dv_cli_code_from_status(guint status)
{
    static const struct {
        guint status;
        DvErrorCode code;
    } map[] = {
        { 400, DV_ERROR_INVALID_ARGUMENT }, { 401, DV_ERROR_AUTH_REQUIRED }, { 403, DV_ERROR_PERMISSION_DENIED },
        { 404, DV_ERROR_NOT_FOUND },        { 409, DV_ERROR_CONFLICT },      { 413, DV_ERROR_TOO_LARGE },
        { 422, DV_ERROR_NOT_SUPPORTED },    { 429, DV_ERROR_BUSY },          { 502, DV_ERROR_HOST_FAILED },
        { 503, DV_ERROR_UNAVAILABLE },      { 504, DV_ERROR_TIMEOUT },
    };
    for (gsize i = 0; i < G_N_ELEMENTS(map); i++)
        if (map[i].status == status)
            return map[i].code;
    return DV_ERROR_INTERNAL;
}

/* A 401 outside POST /session: the request's credential was refused.  The
 * server's reason is shown when it gives one: 'drover login' is the cure
 * for a session, not for an API token given with --token. */
static void
dv_cli_client_set_auth_error(GError **error, DvCliCredential credential, const char *message)
{
    g_autofree char *safe = message != NULL ? dv_text_excerpt(message, 1024) : NULL;

    switch (credential) {
    case DV_CLI_CREDENTIAL_TOKEN:
        dv_set_field_error(error, DV_ERROR_AUTH_REQUIRED, NULL, "the API token was refused: %s",
                           safe != NULL ? safe : "the server gave no reason (HTTP 401)");
        return;
    case DV_CLI_CREDENTIAL_SESSION:
        if (safe != NULL) {
            dv_set_field_error(error, DV_ERROR_AUTH_REQUIRED, NULL,
                               "not logged in or session expired (the server says: %s); run "
                               "'drover login'",
                               safe);
            return;
        }
        break;
    case DV_CLI_CREDENTIAL_NONE:
        break;
    }
    dv_set_field_error(error, DV_ERROR_AUTH_REQUIRED, NULL,
                       "not logged in or session expired; run 'drover login'");
}

void
dv_cli_client_set_response_error(GError **error, guint status, const char *reason, GBytes *body,
                                 const char *path)
{
    dv_cli_client_set_response_error_for(error, DV_CLI_CREDENTIAL_NONE, status, reason, body, path);
}

void
dv_cli_client_set_response_error_for(GError **error, DvCliCredential credential, guint status,
                                     const char *reason, GBytes *body, const char *path)
{
    g_autoptr(JsonNode) root = NULL;
    JsonObject *err = NULL;
    const char *code_str = NULL;
    const char *message = NULL;
    const char *field = NULL;
    DvErrorCode code;

    if (body != NULL && g_bytes_get_size(body) > 0) {
        gsize len;
        const char *data = g_bytes_get_data(body, &len);
        root = dv_json_parse(data, len, DV_CLI_MAX_RESPONSE, DV_CLI_MAX_DEPTH, NULL);
    }
    if (root != NULL && JSON_NODE_HOLDS_OBJECT(root))
        err = dv_json_get_object(json_node_get_object(root), "error");
    if (err != NULL) {
        code_str = dv_json_get_string(err, "code", NULL);
        message = dv_json_get_string(err, "message", NULL);
        field = dv_json_get_string(err, "field", NULL);
    }

    if (status == 401 && !g_str_has_prefix(path, "/session")) {
        dv_cli_client_set_auth_error(error, credential, message);
        return;
    }
    code = dv_error_code_from_string(code_str);
    /* A code this client does not know yet: trust the status instead. */
    if (code == DV_ERROR_INTERNAL && g_strcmp0(code_str, "internal") != 0)
        code = dv_cli_code_from_status(status);
    /* The server's words reach a terminal: no escape sequences. */
    if (message != NULL) {
        g_autofree char *safe_message = dv_text_excerpt(message, 1024);
        g_autofree char *safe_field = field != NULL ? dv_text_excerpt(field, 128) : NULL;
        dv_set_field_error(error, code, safe_field, "%s", safe_message);
    } else
        dv_set_field_error(error, code, field, "the server answered HTTP %u %s", status,
                           reason != NULL ? reason : "");
}

static JsonNode *
dv_cli_client_send(DvCliClient *client, SoupMessage *msg, const char *path, guint *status, GError **error)
{
    g_autoptr(GInputStream) stream = NULL;
    g_autoptr(GBytes) bytes = NULL;
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonNode) root = NULL;
    const char *data;
    gsize len;
    guint code;

    stream = soup_session_send(client->session, msg, NULL, &local);
    if (stream != NULL)
        bytes = dv_cli_read_all(stream, DV_CLI_MAX_RESPONSE, &local);
    if (bytes == NULL) {
        dv_cli_client_set_transport_error(client, error, local);
        return NULL;
    }
    code = soup_message_get_status(msg);
    if (status != NULL)
        *status = code;
    dv_cli_client_check_version(client, msg);
    if (code < 200 || code >= 300) {
        dv_cli_client_set_response_error_for(error, dv_cli_client_credential(client), code,
                                             soup_message_get_reason_phrase(msg), bytes, path);
        return NULL;
    }
    data = g_bytes_get_data(bytes, &len);
    if (len == 0)
        return dv_json_node_new_object(json_object_new());
    root = dv_json_parse(data, len, DV_CLI_MAX_RESPONSE, DV_CLI_MAX_DEPTH, &local);
    if (root == NULL) {
        dv_set_field_error(error, DV_ERROR_INTERNAL, NULL, "the server sent a malformed response: %s",
                           local->message);
        return NULL;
    }
    return g_steal_pointer(&root);
}

GBytes *
dv_cli_client_get_text(DvCliClient *client, const char *path, GError **error)
{
    g_autoptr(SoupMessage) msg =
        dv_cli_client_message_new(client, "GET", path, "text/plain", error);
    g_autoptr(GInputStream) stream = NULL;
    g_autoptr(GBytes) bytes = NULL;
    g_autoptr(GError) local = NULL;
    guint code;

    if (msg == NULL)
        return NULL;
    stream = soup_session_send(client->session, msg, NULL, &local);
    if (stream != NULL)
        bytes = dv_cli_read_all(stream, DV_CLI_MAX_RESPONSE, &local);
    if (bytes == NULL) {
        dv_cli_client_set_transport_error(client, error, local);
        return NULL;
    }
    code = soup_message_get_status(msg);
    dv_cli_client_check_version(client, msg);
    if (code < 200 || code >= 300) {
        dv_cli_client_set_response_error_for(error, dv_cli_client_credential(client), code,
                                             soup_message_get_reason_phrase(msg), bytes, path);
        return NULL;
    }
    return g_steal_pointer(&bytes);
}

JsonNode *
dv_cli_client_request_raw(DvCliClient *client, const char *method, const char *path, const char *body,
                          gsize body_len, guint *status, GError **error)
{
    g_autoptr(SoupMessage) msg = dv_cli_client_message_new(client, method, path, "application/json", error);

    if (msg == NULL)
        return NULL;
    if (body != NULL) {
        /* Static: the bytes stay in the caller's (possibly guarded) memory. */
        g_autoptr(GBytes) bytes = g_bytes_new_static(body, body_len);
        soup_message_set_request_body_from_bytes(msg, "application/json", bytes);
    }
    return dv_cli_client_send(client, msg, path, status, error);
}

JsonNode *
dv_cli_client_request(DvCliClient *client, const char *method, const char *path, JsonObject *body,
                      guint *status, GError **error)
{
    g_autofree char *text = body != NULL ? dv_json_object_to_string(body, FALSE) : NULL;

    return dv_cli_client_request_raw(client, method, path, text, text != NULL ? strlen(text) : 0, status,
                                     error);
}

gboolean
dv_cli_job_state_is_final(const char *state)
{
    return g_strcmp0(state, "succeeded") == 0 || g_strcmp0(state, "failed") == 0 ||
           g_strcmp0(state, "cancelled") == 0;
}

void
dv_cli_sse_parser_init(DvCliSseParser *parser)
{
    parser->event = g_string_new(NULL);
    parser->data = g_string_new(NULL);
    parser->has_data = FALSE;
}

void
dv_cli_sse_parser_clear(DvCliSseParser *parser)
{
    if (parser->event != NULL)
        g_string_free(g_steal_pointer(&parser->event), TRUE);
    if (parser->data != NULL)
        g_string_free(g_steal_pointer(&parser->data), TRUE);
}

gboolean
dv_cli_sse_parser_feed(DvCliSseParser *parser, const char *line, char **ret_event, char **ret_data,
                       GError **error)
{
    const char *colon;
    g_autofree char *name = NULL;
    const char *value;

    if (line[0] == '\0') {
        if (parser->event->len == 0 && !parser->has_data)
            return FALSE;
        *ret_event = g_strdup(parser->event->len > 0 ? parser->event->str : "message");
        *ret_data = g_strdup(parser->data->str);
        g_string_truncate(parser->event, 0);
        g_string_truncate(parser->data, 0);
        parser->has_data = FALSE;
        return TRUE;
    }
    if (line[0] == ':') /* a comment, e.g. a keep-alive */
        return FALSE;
    colon = strchr(line, ':');
    if (colon == NULL) {
        name = g_strdup(line);
        value = "";
    } else {
        name = g_strndup(line, colon - line);
        value = colon[1] == ' ' ? colon + 2 : colon + 1;
    }
    if (g_strcmp0(name, "event") == 0) {
        g_string_assign(parser->event, value);
    } else if (g_strcmp0(name, "data") == 0) {
        if (parser->data->len + strlen(value) + 1 > DV_CLI_MAX_RESPONSE) {
            dv_set_field_error(error, DV_ERROR_TOO_LARGE, NULL, "an event of the job stream is too large");
            return FALSE;
        }
        if (parser->has_data)
            g_string_append_c(parser->data, '\n');
        g_string_append(parser->data, value);
        parser->has_data = TRUE;
    }
    /* "id" and "retry" do not matter to a client that never reconnects. */
    return FALSE;
}

/* The job in an event or GET /jobs/{id} body, wrapped in {"job": ...} or not. */
static JsonObject *
dv_cli_job_from_node(JsonNode *node, GError **error)
{
    JsonObject *obj;
    JsonObject *inner;

    if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node)) {
        dv_set_field_error(error, DV_ERROR_INTERNAL, NULL, "the server sent a job that is not a JSON object");
        return NULL;
    }
    obj = json_node_get_object(node);
    inner = dv_json_get_object(obj, "job");
    if (inner != NULL)
        obj = inner;
    if (dv_json_get_string(obj, "state", NULL) == NULL) {
        dv_set_field_error(error, DV_ERROR_INTERNAL, NULL, "the server sent a job without a state");
        return NULL;
    }
    return json_object_ref(obj);
}

/* Returns TRUE when the stream reached its "end" event. */
static gboolean
dv_cli_client_follow_events(DvCliClient *client, const char *job_id, DvCliJobFunc func, gpointer user_data,
                            JsonObject **last, GError **error)
{
    g_autofree char *escaped = g_uri_escape_string(job_id, NULL, TRUE);
    g_autofree char *path = g_strdup_printf("/jobs/%s/events", escaped);
    g_autoptr(SoupMessage) msg = dv_cli_client_message_new(client, "GET", path, "text/event-stream", error);
    g_autoptr(GInputStream) stream = NULL;
    g_autoptr(GDataInputStream) lines = NULL;
    g_auto(DvCliSseParser) parser = { 0 };
    guint status;

    if (msg == NULL)
        return FALSE;
    stream = soup_session_send(client->session, msg, NULL, error);
    if (stream == NULL)
        return FALSE;
    status = soup_message_get_status(msg);
    if (status != 200) {
        g_autoptr(GBytes) body = dv_cli_read_all(stream, DV_CLI_MAX_RESPONSE, NULL);
        dv_cli_client_set_response_error_for(error, dv_cli_client_credential(client), status,
                                             soup_message_get_reason_phrase(msg), body, path);
        return FALSE;
    }
    lines = g_data_input_stream_new(stream);
    g_data_input_stream_set_newline_type(lines, G_DATA_STREAM_NEWLINE_TYPE_ANY);
    dv_cli_sse_parser_init(&parser);
    for (;;) {
        g_autoptr(GError) local = NULL;
        g_autofree char *line = g_data_input_stream_read_line_utf8(lines, NULL, NULL, &local);
        g_autofree char *event = NULL;
        g_autofree char *data = NULL;

        if (line == NULL && local != NULL) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        /* At the end of the stream, a last event without its blank line
         * still counts. */
        if (!dv_cli_sse_parser_feed(&parser, line != NULL ? line : "", &event, &data, &local)) {
            if (local != NULL) {
                g_propagate_error(error, g_steal_pointer(&local));
                return FALSE;
            }
            if (line == NULL) {
                dv_set_field_error(error, DV_ERROR_UNAVAILABLE, NULL, "the job event stream ended early");
                return FALSE;
            }
            continue;
        }
        /* "progress" (or an unnamed event) carries the job; "end" may
         * carry nothing, "{}" or a last job. */
        if (data[0] != '\0' && g_strcmp0(event, "end") == 0) {
            g_autoptr(JsonNode) node = dv_json_parse(data, strlen(data), DV_CLI_MAX_RESPONSE, DV_CLI_MAX_DEPTH,
                                                     NULL);
            g_autoptr(JsonObject) job = node != NULL ? dv_cli_job_from_node(node, NULL) : NULL;
            if (job != NULL) {
                if (func != NULL)
                    func(job, user_data);
                g_clear_pointer(last, json_object_unref);
                *last = g_steal_pointer(&job);
            }
        } else if (data[0] != '\0' && (g_strcmp0(event, "progress") == 0 || g_strcmp0(event, "message") == 0)) {
            g_autoptr(JsonNode) node = dv_json_parse(data, strlen(data), DV_CLI_MAX_RESPONSE, DV_CLI_MAX_DEPTH,
                                                     error);
            g_autoptr(JsonObject) job = node != NULL ? dv_cli_job_from_node(node, error) : NULL;
            if (job == NULL)
                return FALSE;
            if (func != NULL)
                func(job, user_data);
            g_clear_pointer(last, json_object_unref);
            *last = g_steal_pointer(&job);
        }
        if (g_strcmp0(event, "end") == 0)
            return TRUE;
        if (line == NULL) {
            dv_set_field_error(error, DV_ERROR_UNAVAILABLE, NULL, "the job event stream ended early");
            return FALSE;
        }
    }
}

static JsonObject *
dv_cli_client_poll_job(DvCliClient *client, const char *job_id, DvCliJobFunc func, gpointer user_data,
                       GError **error)
{
    g_autofree char *escaped = g_uri_escape_string(job_id, NULL, TRUE);
    g_autofree char *path = g_strdup_printf("/jobs/%s", escaped);

    for (;;) {
        g_autoptr(JsonNode) node = dv_cli_client_request(client, "GET", path, NULL, NULL, error);
        g_autoptr(JsonObject) job = node != NULL ? dv_cli_job_from_node(node, error) : NULL;

        if (job == NULL)
            return NULL;
        if (func != NULL)
            func(job, user_data);
        if (dv_cli_job_state_is_final(dv_json_get_string(job, "state", NULL)))
            return g_steal_pointer(&job);
        g_usleep(DV_CLI_POLL_INTERVAL_MS * 1000);
    }
}

JsonObject *
dv_cli_client_follow_job(DvCliClient *client, const char *job_id, DvCliJobFunc func, gpointer user_data,
                         GError **error)
{
    g_autoptr(JsonObject) last = NULL;
    g_autoptr(GError) local = NULL;

    if (dv_cli_client_follow_events(client, job_id, func, user_data, &last, &local) && last != NULL &&
        dv_cli_job_state_is_final(dv_json_get_string(last, "state", NULL)))
        return g_steal_pointer(&last);
    g_debug("job event stream unusable (%s); polling", local != NULL ? local->message : "no final state");
    return dv_cli_client_poll_job(client, job_id, func, user_data, error);
}

void
dv_cli_query_add(GString *path, const char *key, const char *value)
{
    g_autofree char *k = g_uri_escape_string(key, NULL, TRUE);
    g_autofree char *v = g_uri_escape_string(value, NULL, TRUE);

    g_string_append_printf(path, "%c%s=%s", strchr(path->str, '?') != NULL ? '&' : '?', k, v);
}

char *
dv_cli_path_expand(const char *tmpl, const char *const *args, gboolean escape)
{
    GString *out = g_string_new(NULL);

    for (const char *p = tmpl; *p != '\0'; p++) {
        if (p[0] == '{' && g_ascii_isdigit(p[1]) && p[2] == '}') {
            const char *arg = args[p[1] - '0'];
            if (escape) {
                g_autofree char *e = g_uri_escape_string(arg, NULL, TRUE);
                g_string_append(out, e);
            } else {
                g_string_append(out, arg);
            }
            p += 2;
            continue;
        }
        g_string_append_c(out, *p);
    }
    return g_string_free(out, FALSE);
}

typedef struct {
    DvCliUploadProgress func;
    gpointer data;
    goffset sent;
    goffset total;
} DvCliUploadCtx;

static void
dv_cli_upload_wrote(SoupMessage *msg, guint chunk, gpointer user_data)
{
    DvCliUploadCtx *ctx = user_data;
    ctx->sent += chunk;
    if (ctx->func != NULL)
        ctx->func(ctx->data, ctx->sent, ctx->total);
}

JsonNode *
dv_cli_client_upload(DvCliClient *client, const char *path, GInputStream *body, goffset size,
                     DvCliUploadProgress progress, gpointer data, GError **error)
{
    g_autoptr(SoupMessage) msg =
        dv_cli_client_message_new(client, "POST", path, "application/json", error);
    DvCliUploadCtx ctx = { progress, data, 0, size };

    if (msg == NULL)
        return NULL;
    /* Streamed from the file: never read whole into memory. */
    soup_message_set_request_body(msg, "application/octet-stream", body, size);
    /* A refusal (no space, no right) comes before the first byte. */
    soup_message_headers_set_expectations(soup_message_get_request_headers(msg),
                                          SOUP_EXPECTATION_CONTINUE);
    g_signal_connect(msg, "wrote-body-data", G_CALLBACK(dv_cli_upload_wrote), &ctx);
    return dv_cli_client_send(client, msg, path, NULL, error);
}

typedef struct {
    gboolean done;
    SoupWebsocketConnection *ws;
    GError *error;
} DvCliWsConnect;

static void
dv_cli_client_ws_connected(GObject *source, GAsyncResult *res, gpointer user_data)
{
    DvCliWsConnect *c = user_data;
    c->ws = soup_session_websocket_connect_finish(SOUP_SESSION(source), res, &c->error);
    c->done = TRUE;
}

SoupWebsocketConnection *
dv_cli_client_websocket(DvCliClient *client, const char *path, GError **error)
{
    /* A session of its own: the request session's I/O timeout would end an
     * idle console. */
    g_autoptr(SoupSession) session = soup_session_new();
    g_autoptr(SoupMessage) msg = dv_cli_client_message_new(client, "GET", path, "*/*", error);
    g_autoptr(SoupMessage) again = NULL;
    g_autoptr(GInputStream) stream = NULL;
    g_autoptr(GBytes) bytes = NULL;
    g_autoptr(GError) local = NULL;
    DvCliWsConnect c = { 0 };

    if (msg == NULL)
        return NULL;
    soup_session_websocket_connect_async(session, msg, NULL, NULL, G_PRIORITY_DEFAULT, NULL,
                                         dv_cli_client_ws_connected, &c);
    while (!c.done)
        g_main_context_iteration(NULL, TRUE);
    if (c.ws != NULL) {
        dv_cli_client_check_version(client, msg);
        return c.ws;
    }
    if (soup_message_get_status(msg) == SOUP_STATUS_NONE ||
        !g_error_matches(c.error, SOUP_WEBSOCKET_ERROR, SOUP_WEBSOCKET_ERROR_NOT_WEBSOCKET)) {
        dv_cli_client_set_transport_error(client, error, c.error);
        g_error_free(c.error);
        return NULL;
    }
    g_clear_error(&c.error);
    /* Refused: libsoup drops the answer's body, so the handshake goes
     * once more as a plain request to read the server's reason. */
    again = dv_cli_client_message_new(client, "GET", path, "application/json", error);
    if (again == NULL)
        return NULL;
    soup_websocket_client_prepare_handshake(again, NULL, NULL, NULL);
    stream = soup_session_send(client->session, again, NULL, &local);
    if (stream != NULL)
        bytes = dv_cli_read_all(stream, DV_CLI_MAX_RESPONSE, &local);
    if (bytes == NULL || soup_message_get_status(again) < 400) {
        dv_cli_client_set_response_error_for(error, dv_cli_client_credential(client),
                                             soup_message_get_status(msg),
                                             soup_message_get_reason_phrase(msg), NULL, path);
        return NULL;
    }
    dv_cli_client_set_response_error_for(error, dv_cli_client_credential(client),
                                         soup_message_get_status(again),
                                         soup_message_get_reason_phrase(again), bytes, path);
    return NULL;
}
