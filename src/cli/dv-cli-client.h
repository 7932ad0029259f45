/* The CLI's HTTP client for the Drover REST API (docs/API.md).
 *
 * Synchronous libsoup-3: one request at a time, JSON in and out.  Every
 * failure comes back as a DV_ERROR: the server's {"error": ...} body is
 * turned back into its code, message and field; a server that cannot be
 * reached is DV_ERROR_UNAVAILABLE.
 */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

#define DV_CLI_DEFAULT_SERVER "http://127.0.0.1:8420"
#define DV_CLI_API_PREFIX "/api/v1"
/* A response larger than this is refused (a page of 500 objects is far
 * smaller). */
#define DV_CLI_MAX_RESPONSE (16 * 1024 * 1024)
#define DV_CLI_MAX_DEPTH 64
#define DV_CLI_POLL_INTERVAL_MS 250

typedef struct _DvCliClient DvCliClient;

/* @server is "http[s]://host[:port]" with an optional trailing "/api/v1".
 * Fails with DV_ERROR_INVALID_ARGUMENT for anything else. */
DvCliClient *dv_cli_client_new(const char *server, gboolean insecure, GError **error);
void dv_cli_client_free(DvCliClient *client);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvCliClient, dv_cli_client_free)

/* Seconds a connection or a read may take (60 unless set): shell
 * completion, which must never hang a prompt, sets 2. */
void dv_cli_client_set_timeout(DvCliClient *client, guint seconds);
/* The normalised server URL, without "/api/v1" (borrowed). */
const char *dv_cli_client_get_server(DvCliClient *client);
/* Sets the bearer token (copied into guarded memory); NULL clears it. */
void dv_cli_client_set_token(DvCliClient *client, const char *token);
gboolean dv_cli_client_has_token(DvCliClient *client);

/* Sends @method to DV_CLI_API_PREFIX + @path (which may carry a query
 * string) with @body as JSON (may be NULL).  Returns the parsed response
 * body; an empty body gives an empty object.  Sets *@status when not NULL. */
JsonNode *dv_cli_client_request(DvCliClient *client, const char *method, const char *path,
                                JsonObject *body, guint *status, GError **error);

/* The same with a body already serialised, for bodies holding a secret:
 * @body is sent from the caller's memory and never copied by us. */
JsonNode *dv_cli_client_request_raw(DvCliClient *client, const char *method, const char *path,
                                    const char *body, gsize body_len, guint *status, GError **error);

/* GETs DV_CLI_API_PREFIX + @path, whose answer is text (GET /metrics):
 * its bytes (owned), or NULL with the server's error. */
GBytes *dv_cli_client_get_text(DvCliClient *client, const char *path, GError **error);

/* POSTs @size bytes read from @body (streamed, not held in memory) as
 * application/octet-stream to DV_CLI_API_PREFIX + @path, calling
 * @progress (may be NULL) as they go out. */
typedef void (*DvCliUploadProgress)(gpointer data, goffset sent, goffset total);
JsonNode *dv_cli_client_upload(DvCliClient *client, const char *path, GInputStream *body,
                               goffset size, DvCliUploadProgress progress, gpointer data,
                               GError **error);

/* What a request carried to authenticate, for the words of a 401. */
typedef enum {
    DV_CLI_CREDENTIAL_NONE,    /* nothing: not logged in */
    DV_CLI_CREDENTIAL_SESSION, /* a session token from 'drover login' */
    DV_CLI_CREDENTIAL_TOKEN,   /* an API token (dvt_...), --token or DROVER_TOKEN */
} DvCliCredential;

/* Turns an HTTP error response into a DV_ERROR.  @path tells a failed
 * login (401 = wrong password) from an expired session.  A 401 elsewhere
 * gives the server's reason when it sends one (a disabled user, a revoked
 * or expired token), with the hint to run 'drover login' for a missing or
 * refused session; @credential says which it was. */
void dv_cli_client_set_response_error_for(GError **error, DvCliCredential credential, guint status,
                                          const char *reason, GBytes *body, const char *path);
/* The same for a request that carried no credential. */
void dv_cli_client_set_response_error(GError **error, guint status, const char *reason,
                                      GBytes *body, const char *path);

/* Called with each new state of a followed job (borrowed). */
typedef void (*DvCliJobFunc)(JsonObject *job, gpointer user_data);

/* Follows job @job_id until it is succeeded, failed or cancelled, via the
 * event stream, falling back to polling GET /jobs/{id} every 250 ms when
 * the stream cannot be opened or breaks.  Returns the final job (whatever
 * its state); fails only when the job cannot be read at all. */
JsonObject *dv_cli_client_follow_job(DvCliClient *client, const char *job_id, DvCliJobFunc func,
                                     gpointer user_data, GError **error);

/* TRUE for succeeded, failed and cancelled. */
gboolean dv_cli_job_state_is_final(const char *state);

/* Server-sent events, one line at a time (without the line end). */
typedef struct {
    GString *event;
    GString *data;
    gboolean has_data;
} DvCliSseParser;

void dv_cli_sse_parser_init(DvCliSseParser *parser);
void dv_cli_sse_parser_clear(DvCliSseParser *parser);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(DvCliSseParser, dv_cli_sse_parser_clear)
/* Returns TRUE when @line completes an event; then *@ret_event (owned,
 * "message" when the event named none) and *@ret_data (owned) are set and
 * the parser is ready for the next event.  Fails when an event's data
 * grows over DV_CLI_MAX_RESPONSE. */
gboolean dv_cli_sse_parser_feed(DvCliSseParser *parser, const char *line, char **ret_event,
                                char **ret_data, GError **error);

/* Opens the WebSocket at DV_CLI_API_PREFIX + @path with the bearer token
 * (runs the thread-default main context until the handshake ends).  A
 * refusal is the server's error (its code, message and field). */
SoupWebsocketConnection *dv_cli_client_websocket(DvCliClient *client, const char *path,
                                                 GError **error);

/* Appends "key=value" with '?' or '&' to a path, both URL-escaped. */
void dv_cli_query_add(GString *path, const char *key, const char *value);

/* Replaces "{0}", "{1}" ... in @tmpl by @args[n], URL-escaped when
 * @escape (for paths) or as given (for messages). */
char *dv_cli_path_expand(const char *tmpl, const char *const *args, gboolean escape);

G_END_DECLS
