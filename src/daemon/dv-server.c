#define G_LOG_DOMAIN "DvServer"

#include "dv-server.h"
#include "dv-authz.h"
#include "dv-auth-users.h"
#include "dv-core.h"
#include "dv-config.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-metrics.h"
#include "dv-rfb.h"
#include "dv-secret.h"
#include "dv-upload.h"
#include "dv-validate.h"
#include "dv-vms.h"
#include "dv-web.h"

#include <errno.h>
#include <libsoup/soup.h>
#include <string.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define DV_API_PREFIX "/api/v1"
#define DV_MAX_QUERY 4096
#define DV_MAX_PATH 2048
#define DV_REQUEST_WORKERS 8
#define DV_HTTP_HEADERS_TOO_LARGE 431 /* RFC 6585; libsoup 3.2 has no name for it */

typedef struct _DvConn DvConn;
typedef struct _DvConsoleBridge DvConsoleBridge;

/* The request hook's series (docs/METRICS.md): labelled by the operation's
 * name, never its path, so the label values are bounded by the table. */
static DvMetric dv_metric_requests = DV_METRIC_COUNTER(
    "drover_http_requests_total", "API requests answered, by operation, method and status.", "op",
    "method", "status");
static DvMetric dv_metric_request_duration = DV_METRIC_HISTOGRAM(
    "drover_http_request_duration_seconds",
    "Time from a request's headers to its answer, by operation.", dv_metrics_buckets_fast, "op");

struct _DvServer {
    DvEngine *engine;
    SoupServer *soup;
    char *url;
    GThreadPool *pool;
    GMainContext *context;
    GHashTable *streams; /* job id -> GPtrArray<SoupServerMessage*>; main thread only */
    guint keepalive_id;
    /* The front door (main thread only): droverd accepts connections
     * itself and hands each to libsoup; see "Connections" below. */
    GSocket *listener;
    GSource *accept_source;
    GSource *accept_retry;
    GTlsCertificate *cert;
    GHashTable *conns;    /* DvConn set */
    DvConn *accepting;    /* while soup_server_accept_iostream() runs */
    guint max_connections;
    guint header_timeout;
    guint idle_timeout;
    guint n_connections;
    guint n_leaving;      /* shut by a timeout or evicted, not yet let go */
    GQueue waiting;       /* DvConn without complete headers, oldest first */
    gboolean at_limit;    /* logged "limit reached", not yet "back under" */
    guint64 n_refused;
    gboolean fd_exhausted;
    DvWeb *web; /* NULL: the web console is not installed */
};

typedef struct {
    DvServer *server;
    SoupServerMessage *msg;
    char *method;
    char *path;
    GHashTable *query;   /* may be NULL */
    GBytes *body;
    char *token;
    char *peer;          /* the client's IP address, for the login throttle */
    gint64 started;
    /* response */
    guint status;
    char *response;
    char *location;
    guint retry_after;   /* seconds; 0: no Retry-After */
    char *allow;         /* 405: the methods the path takes */
    char *stream_job_id; /* an authorized job.events: the job to stream */
    gboolean stream_redact;
    DvUpload *upload; /* an upload op's body, streamed (borrowed) */
    DvConsoleBridge *console; /* an authorized console: the main thread upgrades */
    const char *op_name; /* the matched row's name (static), NULL: none */
    const char *op_method;
    char *content_type; /* DV_OP_SHAPE_TEXT: the answer's type; NULL: JSON */
} DvRequest;

static void dv_console_bridge_unref(DvConsoleBridge *b);

static void
dv_request_free(DvRequest *req)
{
    g_clear_object(&req->msg);
    g_free(req->method);
    g_free(req->path);
    g_clear_pointer(&req->query, g_hash_table_unref);
    g_clear_pointer(&req->body, g_bytes_unref);
    dv_secret_str_free(req->token);
    g_free(req->peer);
    g_free(req->response);
    g_free(req->location);
    g_free(req->allow);
    g_free(req->stream_job_id);
    g_clear_pointer(&req->console, dv_console_bridge_unref);
    g_free(req->content_type);
    g_free(req);
}

/* --- rendering ---------------------------------------------------------------- */

static void dv_api_render_node(JsonNode *node);


/* Timestamps are kept as microseconds; the API shows ISO 8601 (UTC). */
static void
dv_api_render_object(JsonObject *obj)
{
    g_autoptr(GList) members = json_object_get_members(obj);
    for (GList *l = members; l != NULL; l = l->next) {
        const char *name = l->data;
        JsonNode *n = json_object_get_member(obj, name);
        if (g_str_has_suffix(name, "_at") && JSON_NODE_HOLDS_VALUE(n) &&
            json_node_get_value_type(n) == G_TYPE_INT64) {
            g_autofree char *s = dv_json_format_time(json_node_get_int(n));
            json_object_set_string_member(obj, name, s);
        } else {
            dv_api_render_node(n);
        }
    }
}

static void
dv_api_render_node(JsonNode *node)
{
    if (JSON_NODE_HOLDS_OBJECT(node)) {
        dv_api_render_object(json_node_get_object(node));
    } else if (JSON_NODE_HOLDS_ARRAY(node)) {
        JsonArray *arr = json_node_get_array(node);
        for (guint i = 0; i < json_array_get_length(arr); i++)
            dv_api_render_node(json_array_get_element(arr, i));
    }
}

/* Serialises @obj, which the caller owns alone, rendering timestamps in
 * place. */
static char *
dv_api_render_owned(JsonObject *obj)
{
    g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), obj);
    dv_api_render_node(node);
    return dv_json_node_to_string(node, FALSE);
}

/* Serialises a copy of @obj with timestamps rendered. */
static char *
dv_api_render(JsonObject *obj)
{
    g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), obj);
    /* Deep: the object may be a live job record shared with its thread. */
    g_autoptr(JsonNode) copy = dv_json_node_deep_copy(node);
    dv_api_render_node(copy);
    return dv_json_node_to_string(copy, FALSE);
}

static char *
dv_api_error_body(const GError *error)
{
    g_autoptr(JsonObject) outer = json_object_new();
    JsonObject *inner = json_object_new();
    const char *field = dv_error_get_field(error);
    DvErrorCode code = error->domain == DV_ERROR ? (DvErrorCode)error->code : DV_ERROR_INTERNAL;

    json_object_set_string_member(inner, "code", dv_error_code_to_string(code));
    json_object_set_string_member(inner, "message", error->message);
    if (field != NULL)
        json_object_set_string_member(inner, "field", field);
    else
        json_object_set_null_member(inner, "field");
    json_object_set_object_member(outer, "error", inner);
    return dv_json_object_to_string(outer, FALSE);
}

/* --- routing and the authorizer (worker threads) ----------------------------------
 *
 * Every request is matched against the operation table (dv-op.h), then,
 * in this one place and before any handler: the caller's session or API
 * token becomes a DvActor holding its DvAuthzContext; the op's privilege
 * is checked against its object and that object's ancestry (404 when
 * the object is outside the caller's scope, 403 naming the privilege
 * when it is visible); the handler runs; a redacting actor's answer
 * loses its storage fields; every change, accepted or refused, is
 * audited (docs/ARCHITECTURE.md, "One request"). */

static JsonObject *
dv_route_body(DvRequest *req, GError **error)
{
    gsize len = 0;
    const char *data = req->body != NULL ? g_bytes_get_data(req->body, &len) : NULL;
    return dv_json_parse_object(data, len, DV_JSON_MAX_BODY, DV_JSON_MAX_DEPTH, error);
}

static gboolean
dv_route_no_body(DvRequest *req, GError **error)
{
    if (req->body != NULL && g_bytes_get_size(req->body) > 0) {
        /* An empty JSON object is tolerated for POST actions. */
        g_autoptr(JsonObject) obj = dv_route_body(req, error);
        if (obj == NULL)
            return FALSE;
        if (json_object_get_size(obj) > 0) {
            g_autoptr(GList) m = json_object_get_members(obj);
            g_autofree char *f = dv_text_excerpt(m->data, 64);
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f,
                               "unknown field '%s': this call takes no body", f);
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean
dv_route_no_query(DvRequest *req, GError **error)
{
    if (req->query != NULL && g_hash_table_size(req->query) > 0) {
        GHashTableIter it;
        gpointer k;
        g_hash_table_iter_init(&it, req->query);
        g_hash_table_iter_next(&it, &k, NULL);
        {
            g_autofree char *f = dv_text_excerpt(k, 64);
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f,
                               "%s: this call takes no query parameters", f);
        }
        return FALSE;
    }
    return TRUE;
}

/* What a DvAuthzObject borrows from, alive for the request: rows, host
 * group ids and paths. */
typedef struct {
    GPtrArray *rows;  /* JsonObject */
    GPtrArray *strs;  /* char * */
    GPtrArray *paths; /* GStrv */
    /* A create: the body field naming the parent, its value, its kind. */
    const char *parent_field;
    const char *parent_ref;
    DvKind parent_kind;
} DvAuthzKeep;

static void
dv_authorizer_keep_clear(DvAuthzKeep *keep)
{
    g_clear_pointer(&keep->rows, g_ptr_array_unref);
    g_clear_pointer(&keep->strs, g_ptr_array_unref);
    g_clear_pointer(&keep->paths, g_ptr_array_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(DvAuthzKeep, dv_authorizer_keep_clear)

/* The actor behind a bearer token: an API token ("dvt_...") or a session.
 * Every HTTP request that is not public has one, with its context. */
static DvActor *
dv_authorizer_actor(DvRequest *req, GError **error)
{
    DvAuth *auth = dv_engine_get_auth(req->server->engine);
    g_autoptr(DvAuthzContext) ctx = NULL;
    DvActor *actor;

    if (req->token != NULL && g_str_has_prefix(req->token, "dvt_")) {
        ctx = dv_auth_token_context(auth, req->token, error);
        if (ctx == NULL)
            return NULL;
        actor =
            dv_actor_new(dv_authz_context_get_user_id(ctx), dv_authz_context_get_name(ctx), NULL);
    } else {
        g_autoptr(JsonObject) user = dv_auth_check_token(auth, req->token, error);
        if (user == NULL)
            return NULL;
        ctx = dv_auth_check_token_context(auth, req->token, error);
        if (ctx == NULL)
            return NULL;
        actor = dv_actor_new_from_user(user);
    }
    dv_actor_set_authz(actor, g_steal_pointer(&ctx), (GDestroyNotify)dv_authz_context_unref);
    return actor;
}

/* Fills @obj (kind, id and ancestry) from the row @record of @kind.
 * Strings are kept alive by @keep. */
static gboolean
dv_authorizer_describe(DvEngine *engine, DvKind kind, JsonObject *record, DvAuthzObject *obj,
                       DvAuthzKeep *keep, GError **error)
{
    DvStore *store = dv_engine_get_store(engine);
    const char *group = NULL;
    const char *host_id = NULL;
    char **path = NULL;

    obj->id = dv_json_get_string(record, "id", NULL);
    switch (kind) {
    case DV_KIND_HOST_GROUP:
        group = obj->id;
        break;
    case DV_KIND_CLUSTER:
    case DV_KIND_HOST:
        group = dv_json_get_string(record, "host_group_id", NULL);
        break;
    case DV_KIND_VM:
    case DV_KIND_POOL:
    case DV_KIND_VOLUME:
    case DV_KIND_NETWORK:
    case DV_KIND_JOB:
        host_id = dv_json_get_string(record, "host_id", NULL);
        obj->owner_id =
            dv_json_get_string(record, kind == DV_KIND_JOB ? "created_by" : "owner_id", NULL);
        break;
    case DV_KIND_LIBRARY_SHARE:
        /* Its own scope, and under its host's group (either covers; a
         * deny on the share itself is deeper). */
        obj->library_share_id = obj->id;
        host_id = dv_json_get_string(record, "host_id", NULL);
        break;
    case DV_KIND_TEMPLATE:
        /* As its share. */
        obj->library_share_id = dv_json_get_string(record, "library_share_id", NULL);
        if (obj->library_share_id != NULL) {
            g_autoptr(JsonObject) share =
                dv_store_get(store, &dv_table_library_shares, obj->library_share_id, NULL);
            if (share != NULL) {
                char *h = g_strdup(dv_json_get_string(share, "host_id", NULL));
                g_ptr_array_add(keep->strs, h);
                host_id = h;
            }
        }
        break;
    case DV_KIND_CATALOG:
        /* Under the host group it targets (a cluster's group); a catalog
         * of a list of hosts is under none (docs/ACCESS.md). */
        obj->catalog_id = obj->id;
        if (g_strcmp0(dv_json_get_string(record, "target_kind", ""), "host-group") == 0) {
            group = dv_json_get_string(record, "target_id", NULL);
        } else if (g_strcmp0(dv_json_get_string(record, "target_kind", ""), "cluster") == 0) {
            g_autoptr(JsonObject) cluster = dv_store_get(
                store, &dv_table_clusters, dv_json_get_string(record, "target_id", ""), NULL);
            if (cluster != NULL) {
                char *g = g_strdup(dv_json_get_string(cluster, "host_group_id", NULL));
                g_ptr_array_add(keep->strs, g);
                group = g;
            }
        }
        break;
    case DV_KIND_CATALOG_MACHINE:
        /* In its catalog, under its host's group, its adder's own. */
        obj->catalog_id = dv_json_get_string(record, "catalog_id", NULL);
        host_id = dv_json_get_string(record, "host_id", NULL);
        obj->owner_id = dv_json_get_string(record, "owner_id", NULL);
        break;
    case DV_KIND_RUN_AS:
        obj->run_as_id = obj->id;
        break;
    default:
        break;
    }
    if (host_id != NULL) {
        g_autoptr(JsonObject) host = dv_store_get(store, &dv_table_hosts, host_id, NULL);
        if (host != NULL) {
            char *g = g_strdup(dv_json_get_string(host, "host_group_id", NULL));
            g_ptr_array_add(keep->strs, g);
            group = g;
        }
    }
    if (group != NULL) {
        path = dv_authz_host_group_path(store, group, error);
        if (path == NULL)
            return FALSE;
        g_ptr_array_add(keep->paths, path);
        obj->host_group_path = (const char *const *)path;
    }
    return TRUE;
}

/* The object @op's privilege is checked against; FALSE with @error when
 * it does not exist (404). */
static gboolean
dv_authorizer_object(DvRequest *req, const DvOp *op, DvOpCall *call, DvAuthzObject *obj,
                     DvAuthzKeep *keep, GError **error)
{
    DvEngine *engine = req->server->engine;
    obj->kind = op->kind;
    if (op->target == DV_OP_TARGET_PATH && op->object != DV_KIND_LAST) {
        /* An object that does not resolve is checked as a global one: a
         * caller without the global privilege gets 404 (as if absent),
         * one with it the handler's own answer (a malformed id is 400). */
        g_autoptr(JsonObject) row =
            dv_core_resolve(engine, op->object, call->params[0], NULL, NULL);
        if (row == NULL) {
            obj->id = call->params[0];
            return TRUE;
        }
        g_ptr_array_add(keep->rows, json_object_ref(row));
        if (!dv_authorizer_describe(engine, op->object, row, obj, keep, error))
            return FALSE;
        /* A job's owner is recorded by name (created_by); the model
         * compares user ids. */
        if (op->object == DV_KIND_JOB && call->actor != NULL &&
            g_strcmp0(obj->owner_id, call->actor->name) == 0)
            obj->owner_id = call->actor->id;
        return TRUE;
    }
    if (op->target == DV_OP_TARGET_PARENT && call->body != NULL) {
        const char *fields[] = { op->target_field, op->alt_field };
        DvKind kinds[] = { op->parent_kind, op->alt_kind };
        for (guint i = 0; i < G_N_ELEMENTS(fields); i++) {
            const char *ref =
                fields[i] != NULL ? dv_json_get_string(call->body, fields[i], NULL) : NULL;
            g_autoptr(JsonObject) parent = NULL;
            DvAuthzObject p = { 0 };
            if (ref == NULL)
                continue;
            /* A parent that does not resolve: checked as global, and the
             * feature's own validation names the field (400 or 404). */
            parent = dv_core_resolve(engine, kinds[i], ref, fields[i], NULL);
            if (parent == NULL)
                return TRUE;
            g_ptr_array_add(keep->rows, json_object_ref(parent));
            if (!dv_authorizer_describe(engine, kinds[i], parent, &p, keep, error))
                return FALSE;
            keep->parent_field = fields[i];
            keep->parent_ref = ref;
            keep->parent_kind = kinds[i];
            /* The new object lands under the parent: its ancestry. */
            obj->host_group_path = p.host_group_path;
            obj->library_share_id = p.library_share_id;
            obj->owner_id = call->actor->id;
            return TRUE;
        }
    }
    return TRUE;
}

/* The privilege check of one call: TRUE when the handler may run. */
static gboolean
dv_authorizer_check(DvRequest *req, const DvOp *op, DvOpCall *call, DvAuthzObject *obj,
                    DvAuthzKeep *keep, GError **error)
{
    if (op->privilege == NULL || op->target == DV_OP_TARGET_NONE)
        return TRUE;
    if (!dv_authorizer_object(req, op, call, obj, keep, error))
        return FALSE;
    if (op->target == DV_OP_TARGET_KIND) {
        /* A list: refused only when the privilege is held nowhere; the
         * rows are limited to the caller's scope by the list query. */
        if (dv_authz_context_holds(call->authz, op->privilege))
            return TRUE;
        dv_set_field_error(error, DV_ERROR_PERMISSION_DENIED, NULL,
                           "permission denied: %s needs %s", op->name, op->privilege);
        return FALSE;
    }
    /* One's own job (submitted by the caller) is readable wherever the
     * caller holds job.read: a job on no host (a host group made) is in no
     * scope, and its creator still follows it. */
    if (op->object == DV_KIND_JOB && g_strcmp0(op->privilege, "job.read") == 0 &&
        call->actor != NULL && obj->owner_id != NULL &&
        g_strcmp0(obj->owner_id, call->actor->id) == 0 &&
        dv_authz_context_holds(call->authz, "job.read"))
        return TRUE;
    if (!dv_authz_check(call->authz, op->privilege, obj, error)) {
        /* Installation-wide objects (settings, users, roles, audit) are
         * known to exist: refused, never hidden (docs/ACCESS.md). */
        if (op->target == DV_OP_TARGET_GLOBAL &&
            g_error_matches(*error, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_clear_error(error);
            dv_set_field_error(error, DV_ERROR_PERMISSION_DENIED, NULL,
                               "permission denied: %s needs the privilege %s over the whole "
                               "installation (a global binding)",
                               op->name, op->privilege);
        } else if (op->target == DV_OP_TARGET_PARENT && keep->parent_field != NULL &&
                   g_error_matches(*error, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            /* A parent out of scope reads as an unknown one, on its field. */
            g_autofree char *safe = dv_text_excerpt(keep->parent_ref, 80);
            g_clear_error(error);
            dv_set_field_error(error, DV_ERROR_NOT_FOUND, keep->parent_field, "%s '%s' not found",
                               dv_core_kind_info(keep->parent_kind)->singular, safe);
        } else if (op->target == DV_OP_TARGET_PATH && op->object != DV_KIND_LAST &&
                   g_error_matches(*error, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            /* Out of scope reads exactly as absent: the words of
             * dv_core_resolve() for the reference the caller gave, not the
             * object's id or the kind the privilege is on. */
            g_autofree char *safe = dv_text_excerpt(call->params[0], 80);
            g_clear_error(error);
            g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "%s '%s' not found",
                        dv_core_kind_info(op->object)->singular, safe);
        }
        return FALSE;
    }
    return TRUE;
}

/* Using a Run As account through an operation (a host's credentials)
 * needs run_as.use on it: SCVMM's credential-extraction path.  An
 * account that does not resolve is left to the operation's own check. */
static gboolean
dv_authorizer_check_run_as(DvRequest *req, const DvOp *op, DvOpCall *call, GError **error)
{
    const char *ref;
    g_autoptr(JsonObject) account = NULL;

    if (op->run_as_field == NULL || call->body == NULL ||
        (ref = dv_json_get_string(call->body, op->run_as_field, NULL)) == NULL)
        return TRUE;
    account = dv_core_resolve(req->server->engine, DV_KIND_RUN_AS, ref, op->run_as_field, NULL);
    if (account == NULL)
        return TRUE;
    if (!dv_authz_check_run_as_use(call->authz, dv_json_get_string(account, "id", NULL), error)) {
        /* The refusal names the body's field; out of scope reads as
         * absent: the words of dv_core_resolve() for the reference
         * given, not the account's id. */
        g_autoptr(GError) local = g_steal_pointer(error);
        g_autofree char *safe = dv_text_excerpt(ref, 80);
        if (g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
            dv_set_field_error(error, DV_ERROR_NOT_FOUND, op->run_as_field,
                               "Run As account '%s' not found", safe);
        else
            dv_set_field_error(error, (DvErrorCode)local->code, op->run_as_field, "%s: %s",
                               op->run_as_field, local->message);
        return FALSE;
    }
    return TRUE;
}

/* A delegated administrator's answer without storage data (absent, not
 * emptied).  A job-accepted answer is a job record whatever the op's kind:
 * its params and result may name pools, volumes and paths. */
static void
dv_authorizer_redact(const DvOp *op, JsonObject *result)
{
    const char *kind = op->answer_kind != NULL ? op->answer_kind : op->kind;
    if (op->shape == DV_OP_SHAPE_JOB)
        kind = "job";
    if (kind == NULL || result == NULL)
        return;
    if (op->shape == DV_OP_SHAPE_LIST && json_object_has_member(result, "items")) {
        JsonArray *items = json_object_get_array_member(result, "items");
        for (guint i = 0; items != NULL && i < json_array_get_length(items); i++) {
            JsonNode *n = json_array_get_element(items, i);
            if (JSON_NODE_HOLDS_OBJECT(n))
                dv_authz_redact(kind, json_node_get_object(n));
        }
    } else if (op->shape == DV_OP_SHAPE_OBJECT || op->shape == DV_OP_SHAPE_CREATED ||
               op->shape == DV_OP_SHAPE_JOB) {
        dv_authz_redact(kind, result);
    }
}

/* The catalog, library share or Run As account an audit entry is about
 * (docs/ACCESS.md, "Audit log"): from the authorizer's object, or for a
 * create of one of them, the new object's id from the answer (the job's
 * target, or the created row).  A library share (and a template through
 * it) is also in its host's host group, which the authorizer's object
 * does not carry: read here, into @ret_keep. */
static void
dv_authorizer_audit_scope(DvRequest *req, const DvOp *op, const DvAuthzObject *obj,
                          JsonObject *result, DvAuditScope *scope, char **ret_keep)
{
    static const struct {
        DvKind kind;
        const char *scope;
    } creates[] = {
        { DV_KIND_CATALOG, "catalog" },
        { DV_KIND_LIBRARY_SHARE, "library_share" },
        { DV_KIND_RUN_AS, "run_as" },
    };
    DvStore *store = dv_engine_get_store(req->server->engine);

    if (obj->catalog_id != NULL) {
        scope->scope_kind = "catalog";
        scope->scope_id = obj->catalog_id;
    } else if (obj->library_share_id != NULL) {
        scope->scope_kind = "library_share";
        scope->scope_id = obj->library_share_id;
    } else if (obj->run_as_id != NULL) {
        scope->scope_kind = "run_as";
        scope->scope_id = obj->run_as_id;
    } else if (obj->id == NULL && result != NULL) {
        for (gsize i = 0; i < G_N_ELEMENTS(creates); i++) {
            if (op->object != creates[i].kind)
                continue;
            scope->scope_kind = creates[i].scope;
            scope->scope_id =
                dv_json_get_string(result, op->shape == DV_OP_SHAPE_JOB ? "target_id" : "id", NULL);
            if (scope->scope_id == NULL)
                scope->scope_kind = NULL;
        }
    }
    if (g_strcmp0(scope->scope_kind, "library_share") == 0 && obj->host_group_path == NULL) {
        g_autoptr(JsonObject) share =
            dv_store_get(store, &dv_table_library_shares, scope->scope_id, NULL);
        g_autoptr(JsonObject) host =
            share != NULL ? dv_store_get(store, &dv_table_hosts,
                                         dv_json_get_string(share, "host_id", ""), NULL)
                          : NULL;
        /* No share or host (a refused or failed create): no group. */
        if (host != NULL && dv_json_get_string(host, "host_group_id", NULL) != NULL) {
            *ret_keep = g_strdup(dv_json_get_string(host, "host_group_id", NULL));
            scope->host_group_id = *ret_keep;
        }
    }
}

/* Records a change, accepted or refused: never a body, only names.  A
 * refusal of the authorizer (403, or 404 out of scope) is "forbidden",
 * anything the operation itself refused or failed is "failed"; the detail
 * gives the error code (docs/API.md, "Access control": the API's
 * allowed/refused/failed). */
static void
dv_authorizer_audit(DvRequest *req, const DvOp *op, const DvOpCall *call, const DvAuthzObject *obj,
                    JsonObject *result, const GError *error, gboolean refused)
{
    g_autoptr(GError) local = NULL;
    const char *job_id = NULL;
    const char *object_id = obj->id != NULL ? obj->id : call->params[0];
    /* The object's own group (the one a create lands in): audit readers
     * bound there read this entry (docs/ACCESS.md, "Audit log"). */
    const char *group = NULL;
    /* A 403 of the operation itself (the grant rule) is a refusal too. */
    gboolean forbidden =
        refused || (error != NULL && g_error_matches(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED));
    const char *outcome = error == NULL ? "ok" : forbidden ? "forbidden" : "failed";
    const char *detail = NULL;
    DvAuditScope scope = { 0 };
    g_autofree char *keep = NULL;

    if (error != NULL)
        detail = dv_error_code_to_string(error->domain == DV_ERROR ? (DvErrorCode)error->code
                                                                   : DV_ERROR_INTERNAL);

    if (g_strcmp0(op->method, "GET") == 0 || (op->flags & DV_OP_FLAG_PUBLIC))
        return;
    if (result != NULL && op->shape == DV_OP_SHAPE_JOB)
        job_id = dv_json_get_string(result, "id", NULL);
    for (guint i = 0; obj->host_group_path != NULL && obj->host_group_path[i] != NULL; i++)
        group = obj->host_group_path[i];
    dv_authorizer_audit_scope(req, op, obj, result, &scope, &keep);
    if (scope.host_group_id == NULL)
        scope.host_group_id = group;
    if (!dv_audit_record_scoped(dv_engine_get_store(req->server->engine), &scope, call->authz,
                                dv_actor_get_name(call->actor), req->peer, op->name, op->kind,
                                object_id, outcome, job_id, detail, &local))
        g_warning("audit of %s not recorded: %s", op->name, local->message);
}

static JsonObject *
dv_route_job_accepted(DvRequest *req, JsonObject *job, guint *status)
{
    JsonObject *out;
    if (job == NULL)
        return NULL;
    out = json_object_new();
    json_object_set_object_member(out, "job", json_object_ref(job));
    req->location = g_strdup_printf(DV_API_PREFIX "/jobs/%s", dv_json_get_string(job, "id", ""));
    *status = SOUP_STATUS_ACCEPTED;
    return out;
}

/* Reads the body @op takes (before the authorizer, which may need the
 * parent a create names). */
static gboolean
dv_route_read_body(DvRequest *req, const DvOp *op, JsonObject **ret_body, GError **error)
{
    switch (op->body) {
    case DV_OP_BODY_REQUIRED:
        *ret_body = dv_route_body(req, error);
        return *ret_body != NULL;
    case DV_OP_BODY_OPTIONAL:
        if (req->body != NULL && g_bytes_get_size(req->body) > 0) {
            *ret_body = dv_route_body(req, error);
            return *ret_body != NULL;
        }
        return TRUE;
    default:
        return TRUE;
    }
}

/* The op's other input rules, after the authorizer: a caller learns
 * nothing about an object it may not touch from a 400.  The body is
 * checked against the row's field spec here, once, before the handler
 * (docs/ARCHITECTURE.md, "Operations"). */
static gboolean
dv_route_check_inputs(DvRequest *req, const DvOp *op, JsonObject *body, GError **error)
{
    if ((op->flags & DV_OP_FLAG_NO_QUERY) && !dv_route_no_query(req, error))
        return FALSE;
    if (op->body == DV_OP_BODY_NONE)
        return dv_route_no_body(req, error);
    return dv_op_check_body(op, body, error);
}

/* Ids by unique prefix, in one place for every operation: the object in
 * the path ({ref}) and the parent a body names (a VM's host) are turned
 * into full ids before the authorizer and the handler see them, so both
 * work on ids as before.  Only objects the caller sees are candidates
 * (dv_core_resolve_prefix()).  @keep owns the strings put in @call. */
static gboolean
dv_route_resolve_prefixes(DvRequest *req, const DvOp *op, DvOpCall *call, DvAuthzKeep *keep,
                          GError **error)
{
    DvEngine *engine = req->server->engine;
    char *full = NULL;

    if (call->actor == NULL)
        return TRUE;
    if (op->target == DV_OP_TARGET_PATH && op->object != DV_KIND_LAST && call->params[0] != NULL) {
        if (!dv_core_resolve_prefix(engine, call->actor, op->object, call->params[0], "id", &full,
                                    error))
            return FALSE;
        if (full != NULL) {
            g_ptr_array_add(keep->strs, full);
            call->params[0] = full;
        }
    }
    if (op->target == DV_OP_TARGET_PARENT && call->body != NULL) {
        const char *fields[] = { op->target_field, op->alt_field };
        DvKind kinds[] = { op->parent_kind, op->alt_kind };
        for (guint i = 0; i < G_N_ELEMENTS(fields); i++) {
            const char *ref =
                fields[i] != NULL ? dv_json_get_string(call->body, fields[i], NULL) : NULL;
            if (ref == NULL)
                continue;
            full = NULL;
            if (!dv_core_resolve_prefix(engine, call->actor, kinds[i], ref, fields[i], &full,
                                        error))
                return FALSE;
            if (full != NULL) {
                json_object_set_string_member(call->body, fields[i], full);
                g_free(full);
            }
        }
    }
    return TRUE;
}

/* --- consoles: a WebSocket bridged to a VM's serial console ----------------------
 *
 * The worker thread joins the VM's shared console stream (the engine's
 * viewer); the main thread answers 101, takes the connection from
 * libsoup and relays: the guest's output as binary messages, the one
 * writer's messages (text or binary) to the guest.  The viewer's
 * output comes in libvirt's event thread and is invoked on the main
 * context; what arrives before the upgrade waits in @pending. */

struct _DvConsoleBridge {
    gint refcount; /* the request or the socket's life, plus the viewer */
    GMainContext *context;
    DvVmConsoleViewer *viewer;
    SoupWebsocketConnection *ws;
    GIOStream *conn; /* the connection, closed when the WebSocket ends */
    GByteArray *pending;
    char *ended;
    gboolean closed;
    /* type=vnc: the display's socket instead of a viewer (relayed both ways) */
    GSocketConnection *display;
    GCancellable *cancel;
    guint8 *rbuf;
    GByteArray *to_display; /* the client's input while a write is in flight */
    GBytes *writing;        /* the write in flight */
    /* a remote display droverd authenticated to: the client's handshake
     * (security None) is answered here, then relayed as above */
    DvRfbFront *front;
};

/* What a VNC client may have waiting to go to the display: its input is
 * small (keys, pointer, requests), so more means a stuck display. */
#define DV_CONSOLE_DISPLAY_MAX_PENDING (1024 * 1024)
#define DV_CONSOLE_DISPLAY_CHUNK (64 * 1024)

/* noVNC asks for the subprotocol "binary"; a browser drops a WebSocket
 * whose answer does not name the protocol it asked for. */
static char *dv_console_vnc_protocols[] = { "binary", NULL };

static DvConsoleBridge *
dv_console_bridge_ref(DvConsoleBridge *b)
{
    g_atomic_int_inc(&b->refcount);
    return b;
}

static void
dv_console_bridge_unref(DvConsoleBridge *b)
{
    if (!g_atomic_int_dec_and_test(&b->refcount))
        return;
    g_clear_pointer(&b->viewer, dv_vm_console_viewer_free);
    g_clear_object(&b->ws);
    if (b->conn != NULL)
        (void)g_io_stream_close(b->conn, NULL, NULL); /* the client may be gone */
    g_clear_object(&b->conn);
    g_byte_array_unref(b->pending);
    g_free(b->ended);
    if (b->display != NULL)
        (void)g_io_stream_close(G_IO_STREAM(b->display), NULL, NULL); /* nothing to tell */
    g_clear_object(&b->display);
    g_clear_object(&b->cancel);
    g_free(b->rbuf);
    if (b->to_display != NULL)
        g_byte_array_unref(b->to_display);
    g_clear_pointer(&b->writing, g_bytes_unref);
    g_free(b->front);
    g_main_context_unref(b->context);
    g_free(b);
}

typedef struct {
    DvConsoleBridge *bridge;
    GBytes *data;
    char *ended;
} DvConsoleOut;

static void
dv_console_out_free(gpointer data)
{
    DvConsoleOut *o = data;
    dv_console_bridge_unref(o->bridge);
    g_clear_pointer(&o->data, g_bytes_unref);
    g_free(o->ended);
    g_free(o);
}

/* Main thread.  Only an open WebSocket takes a message: once the client's
 * close frame is read (the state is CLOSING) libsoup refuses with a
 * critical, and "closed" comes only later.  A viewer that leaves right
 * after connecting makes exactly that (docs/DECISIONS.md, "Console
 * viewers that leave at once"). */
static void
dv_console_bridge_send(DvConsoleBridge *b, const guint8 *data, gsize len)
{
    if (b->ws != NULL && len > 0 &&
        soup_websocket_connection_get_state(b->ws) == SOUP_WEBSOCKET_STATE_OPEN)
        soup_websocket_connection_send_binary(b->ws, data, len);
}

static void
dv_console_bridge_end(DvConsoleBridge *b, const char *why)
{
    if (b->ws != NULL &&
        soup_websocket_connection_get_state(b->ws) == SOUP_WEBSOCKET_STATE_OPEN) {
        g_autofree char *reason = dv_text_excerpt(why, 100); /* a close frame holds 123 bytes */
        soup_websocket_connection_close(b->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, reason);
    }
}

/* Main thread. */
static gboolean
dv_console_out_deliver(gpointer data)
{
    DvConsoleOut *o = data;
    DvConsoleBridge *b = o->bridge;

    if (b->closed)
        return G_SOURCE_REMOVE;
    if (o->data != NULL) {
        gsize len;
        const guint8 *p = g_bytes_get_data(o->data, &len);
        if (b->ws == NULL)
            g_byte_array_append(b->pending, p, (guint)len);
        else
            dv_console_bridge_send(b, p, len);
    }
    if (o->ended != NULL) {
        g_free(b->ended);
        b->ended = g_strdup(o->ended);
        dv_console_bridge_end(b, o->ended);
    }
    return G_SOURCE_REMOVE;
}

/* Any thread (libvirt's event loop): queue for the main thread. */
static void
dv_console_bridge_output(GBytes *data, const char *ended, gpointer user_data)
{
    DvConsoleBridge *b = user_data;
    DvConsoleOut *o = g_new0(DvConsoleOut, 1);

    o->bridge = dv_console_bridge_ref(b);
    o->data = data != NULL ? g_bytes_ref(data) : NULL;
    o->ended = g_strdup(ended);
    g_main_context_invoke_full(b->context, G_PRIORITY_DEFAULT, dv_console_out_deliver, o,
                               dv_console_out_free);
}

/* --- type=vnc: the display's socket relayed both ways (main thread) --- */

static void dv_console_display_write_next(DvConsoleBridge *b);

static void
dv_console_display_written(GObject *source, GAsyncResult *res, gpointer user_data)
{
    DvConsoleBridge *b = user_data;
    g_autoptr(GError) error = NULL;

    g_clear_pointer(&b->writing, g_bytes_unref);
    if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), res, NULL, &error)) {
        if (!b->closed)
            dv_console_bridge_end(b, "the display's connection failed");
    } else {
        dv_console_display_write_next(b);
    }
    dv_console_bridge_unref(b);
}

static void
dv_console_display_write_next(DvConsoleBridge *b)
{
    GOutputStream *out;

    if (b->writing != NULL || b->closed || b->to_display->len == 0)
        return;
    out = g_io_stream_get_output_stream(G_IO_STREAM(b->display));
    /* The write owns what it sends; input arriving meanwhile waits. */
    b->writing = g_byte_array_free_to_bytes(b->to_display);
    b->to_display = g_byte_array_new();
    g_output_stream_write_all_async(out, g_bytes_get_data(b->writing, NULL),
                                    g_bytes_get_size(b->writing), G_PRIORITY_DEFAULT, b->cancel,
                                    dv_console_display_written, dv_console_bridge_ref(b));
}

/* The browser's RFB messages go to the display in order. */
static void
dv_console_display_input(DvConsoleBridge *b, const guint8 *data, gsize len)
{
    if (b->to_display->len + len > DV_CONSOLE_DISPLAY_MAX_PENDING) {
        dv_console_bridge_end(b, "the display does not read its input");
        return;
    }
    g_byte_array_append(b->to_display, data, (guint)len);
    dv_console_display_write_next(b);
}

static void dv_console_display_read_next(DvConsoleBridge *b);

static void
dv_console_display_read_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
    DvConsoleBridge *b = user_data;
    g_autoptr(GError) error = NULL;
    gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), res, &error);

    if (n > 0) {
        dv_console_bridge_send(b, b->rbuf, (gsize)n);
        dv_console_display_read_next(b);
    } else if (!b->closed) {
        dv_console_bridge_end(b, n == 0 ? "the display closed (the VM stopped?)"
                                        : "the display's connection failed");
    }
    dv_console_bridge_unref(b);
}

static void
dv_console_display_read_next(DvConsoleBridge *b)
{
    GInputStream *in;

    if (b->closed || b->ws == NULL ||
        soup_websocket_connection_get_state(b->ws) != SOUP_WEBSOCKET_STATE_OPEN)
        return;
    in = g_io_stream_get_input_stream(G_IO_STREAM(b->display));
    g_input_stream_read_async(in, b->rbuf, DV_CONSOLE_DISPLAY_CHUNK, G_PRIORITY_DEFAULT, b->cancel,
                              dv_console_display_read_done, dv_console_bridge_ref(b));
}

static void
dv_console_bridge_message(SoupWebsocketConnection *ws, gint type, GBytes *message,
                          gpointer user_data)
{
    DvConsoleBridge *b = user_data;
    g_autoptr(GError) error = NULL;
    gsize len;
    const guint8 *p = g_bytes_get_data(message, &len);

    if (b->display != NULL && b->front != NULL && !dv_rfb_front_done(b->front)) {
        g_autoptr(GByteArray) answer = g_byte_array_new();
        gsize used = 0;
        if (!dv_rfb_front_feed(b->front, p, len, answer, &used, &error)) {
            g_debug("console handshake refused: %s", error->message);
            dv_console_bridge_end(b, error->message);
            return;
        }
        dv_console_bridge_send(b, answer->data, answer->len);
        p += used;
        len -= used;
    }
    if (b->display != NULL) {
        if (len > 0)
            dv_console_display_input(b, p, len);
        return;
    }
    /* A watcher's keys go nowhere (mode=read). */
    if (b->viewer == NULL || !dv_vm_console_viewer_is_writer(b->viewer) || len == 0)
        return;
    if (!dv_vm_console_viewer_write(b->viewer, p, len, &error)) {
        g_debug("console input refused: %s", error->message);
        dv_console_bridge_end(b, error->message);
    }
}

static void
dv_console_bridge_closed(SoupWebsocketConnection *ws, gpointer user_data)
{
    DvConsoleBridge *b = user_data;

    b->closed = TRUE;
    /* Leaving the stream: the last viewer closes it; a display's reads
     * and writes stop. */
    g_clear_pointer(&b->viewer, dv_vm_console_viewer_free);
    if (b->cancel != NULL)
        g_cancellable_cancel(b->cancel);
    if (b->conn != NULL)
        (void)g_io_stream_close(b->conn, NULL, NULL); /* the client may be gone */
    dv_console_bridge_unref(b); /* the socket's reference */
}

/* Worker thread: the handshake is checked and the viewer joins, so a
 * refusal (no WebSocket, a second writer, a console virsh holds) is an
 * ordinary error answer. */
static gboolean
dv_console_bridge_attach(DvRequest *req, DvActor *actor, JsonObject *accepted, GError **error)
{
    g_autoptr(GError) local = NULL;
    gboolean vnc = g_strcmp0(dv_json_get_string(accepted, "type", "serial"), "vnc") == 0;
    DvConsoleBridge *b;

    if (!soup_websocket_server_check_handshake(
            req->msg, NULL, vnc ? dv_console_vnc_protocols : NULL, NULL, &local)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL,
                           "%s is a WebSocket: send a WebSocket upgrade (%s)", req->path,
                           local->message);
        return FALSE;
    }
    b = g_new0(DvConsoleBridge, 1);
    b->refcount = 1;
    b->context = g_main_context_ref(req->server->context);
    b->pending = g_byte_array_new();
    if (vnc) {
        /* A connection of its own to the display, opened here (a libvirt
         * round trip); relayed once the WebSocket is up. */
        g_autoptr(GSocket) sock = NULL;
        gboolean authenticated = FALSE;
        int fd = dv_engine_vm_console_open_display(req->server->engine,
                                                   dv_json_get_string(accepted, "id", ""), "vnc",
                                                   &authenticated, error);
        if (fd < 0) {
            dv_console_bridge_unref(b);
            return FALSE;
        }
        sock = g_socket_new_from_fd(fd, &local);
        if (sock == NULL) {
            (void)close(fd);
            g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot use the display's socket: %s",
                        local->message);
            dv_console_bridge_unref(b);
            return FALSE;
        }
        b->display = g_socket_connection_factory_create_connection(sock);
        b->cancel = g_cancellable_new();
        b->rbuf = g_malloc(DV_CONSOLE_DISPLAY_CHUNK);
        b->to_display = g_byte_array_new();
        /* droverd answered the display's password: the client gets the
         * handshake up to the security result from here (its banner
         * first, with what came before the upgrade). */
        if (authenticated) {
            b->front = g_new0(DvRfbFront, 1);
            dv_rfb_front_init(b->front, b->pending);
        }
        req->console = b;
        return TRUE;
    }
    b->viewer = dv_engine_vm_console_attach(
        req->server->engine, dv_json_get_string(accepted, "id", ""),
        g_strcmp0(dv_json_get_string(accepted, "mode", "write"), "write") == 0, actor,
        dv_console_bridge_output, dv_console_bridge_ref(b),
        (GDestroyNotify)dv_console_bridge_unref, error);
    if (b->viewer == NULL) {
        /* Not joined: the viewer's reference is ours to drop. */
        dv_console_bridge_unref(b);
        dv_console_bridge_unref(b);
        return FALSE;
    }
    req->console = b;
    return TRUE;
}

/* Main thread: sends what arrived before the upgrade, or ends; a
 * display's relay starts. */
static gboolean
dv_console_bridge_flush(gpointer data)
{
    DvConsoleBridge *b = data;

    if (b->closed || b->ws == NULL)
        return G_SOURCE_REMOVE;
    dv_console_bridge_send(b, b->pending->data, b->pending->len);
    g_byte_array_set_size(b->pending, 0);
    if (b->display != NULL)
        dv_console_display_read_next(b);
    if (b->ended != NULL)
        dv_console_bridge_end(b, b->ended);
    return G_SOURCE_REMOVE;
}

/* Main thread, once the 101 is written: libsoup lets go of the
 * connection (dv_conn_release() leaves it open for us). */
static void dv_conn_mark_upgraded(SoupServerMessage *msg);

static void
dv_console_bridge_upgraded(SoupServerMessage *msg, gpointer user_data)
{
    DvConsoleBridge *b = user_data;
    SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
    g_autoptr(GIOStream) stream = NULL;

    g_signal_handlers_disconnect_by_data(msg, b);
    dv_conn_mark_upgraded(msg);
    stream = soup_server_message_steal_connection(msg);
    b->conn = g_object_ref(stream);
    b->ws = soup_websocket_connection_new(stream, soup_server_message_get_uri(msg),
                                          SOUP_WEBSOCKET_CONNECTION_SERVER,
                                          soup_message_headers_get_one(h, "Origin"), NULL, NULL);
    /* An open console is not idle when nobody types. */
    soup_websocket_connection_set_keepalive_interval(b->ws, 20);
    g_signal_connect(b->ws, "message", G_CALLBACK(dv_console_bridge_message), b);
    g_signal_connect(b->ws, "closed", G_CALLBACK(dv_console_bridge_closed), b);
    /* What came before the upgrade goes once libsoup has let go of the
     * connection: not from inside its own signal. */
    {
        g_autoptr(GSource) idle = g_idle_source_new();
        g_source_set_callback(idle, dv_console_bridge_flush, dv_console_bridge_ref(b),
                              (GDestroyNotify)dv_console_bridge_unref);
        g_source_attach(idle, b->context);
    }
}

/* Main thread: the client went away before the 101 was written.  Its
 * viewer leaves now (a writer would otherwise hold the console for good). */
static void
dv_console_bridge_gone(SoupServerMessage *msg, gpointer user_data)
{
    DvConsoleBridge *b = user_data;

    g_signal_handlers_disconnect_by_data(msg, b);
    b->closed = TRUE;
    g_clear_pointer(&b->viewer, dv_vm_console_viewer_free);
    dv_console_bridge_unref(b); /* the socket's reference */
}

/* Main thread: answers 101 and arms the takeover; the bridge's request
 * reference becomes the socket's. */
static void
dv_console_bridge_start(DvRequest *req)
{
    DvConsoleBridge *b = g_steal_pointer(&req->console);
    SoupMessageHeaders *rh = soup_server_message_get_response_headers(req->msg);

    soup_message_headers_remove(rh, "Connection");
    if (!soup_websocket_server_process_handshake(
            req->msg, NULL, b->display != NULL ? dv_console_vnc_protocols : NULL, NULL, NULL)) {
        dv_console_bridge_unref(b);
        return;
    }
    g_signal_connect(req->msg, "wrote-informational", G_CALLBACK(dv_console_bridge_upgraded), b);
    g_signal_connect(req->msg, "disconnected", G_CALLBACK(dv_console_bridge_gone), b);
}

static JsonObject *
dv_route_op(DvRequest *req, const DvOp *op, const char **params, guint *status, GError **error)
{
    g_autoptr(DvActor) actor = NULL;
    g_autoptr(JsonObject) body = NULL;
    g_autoptr(JsonObject) result = NULL;
    g_auto(DvAuthzKeep) keep = {
        .rows = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref),
        .strs = g_ptr_array_new_with_free_func(g_free),
        .paths = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev),
    };
    DvAuthzObject obj = { 0 };
    DvOpCall call = {
        .engine = req->server->engine,
        .op = op,
        .query = req->query,
        .token = req->token,
        .peer = req->peer,
    };
    GError *local = NULL;

    memcpy(call.params, params, sizeof(call.params));
    call.upload = req->upload;
    /* A console's WebSocket from a browser carries a ticket instead of a
     * bearer token: the ticket stands for the token that asked for it
     * (docs/API.md, "Consoles"); the authorizer then checks it as usual. */
    if (op->shape == DV_OP_SHAPE_WEBSOCKET && req->token == NULL && req->query != NULL &&
        g_hash_table_lookup(req->query, "ticket") != NULL) {
        req->token = dv_engine_vm_console_redeem(req->server->engine,
                                                 g_hash_table_lookup(req->query, "ticket"),
                                                 params[0], error);
        if (req->token == NULL)
            return NULL;
        call.token = req->token;
    }
    if (!(op->flags & DV_OP_FLAG_PUBLIC)) {
        actor = dv_authorizer_actor(req, error);
        if (actor == NULL)
            return NULL;
        call.actor = actor;
        call.authz = actor->authz;
    }
    if (!dv_route_read_body(req, op, &body, error))
        return NULL;
    call.body = body;
    if (!dv_route_resolve_prefixes(req, op, &call, &keep, error))
        return NULL;
    if (!dv_authorizer_check(req, op, &call, &obj, &keep, &local) ||
        !dv_authorizer_check_run_as(req, op, &call, &local)) {
        dv_authorizer_audit(req, op, &call, &obj, NULL, local, TRUE);
        g_propagate_error(error, local);
        return NULL;
    }
    if (!dv_route_check_inputs(req, op, body, &local)) {
        dv_authorizer_audit(req, op, &call, &obj, NULL, local, FALSE);
        g_propagate_error(error, local);
        return NULL;
    }
    result = op->handler(&call, &local);
    req->retry_after = call.retry_after;
    if (actor != NULL)
        dv_authorizer_audit(req, op, &call, &obj, result, local, FALSE);
    if (result == NULL) {
        g_propagate_error(error, local);
        return NULL;
    }
    if (actor != NULL && dv_authz_context_redacts_storage(call.authz)) {
        if (op->shape == DV_OP_SHAPE_JOB) {
            /* The handler's record may be shared with the job it made:
             * redact a copy. */
            g_autoptr(JsonNode) src = json_node_init_object(json_node_alloc(), result);
            g_autoptr(JsonNode) copy = dv_json_node_deep_copy(src);
            g_clear_pointer(&result, json_object_unref);
            result = json_object_ref(json_node_get_object(copy));
        }
        dv_authorizer_redact(op, result);
    }
    switch (op->shape) {
    case DV_OP_SHAPE_WEBSOCKET:
        /* Authorized and accepted: join the VM's console stream here (a
         * libvirt round trip, off the main thread), upgrade there. */
        if (!dv_console_bridge_attach(req, actor, result, error))
            return NULL;
        break;
    case DV_OP_SHAPE_STREAM:
        /* Authorized: the main thread streams the job (dv_server_finish_request()). */
        req->stream_job_id = g_strdup(dv_json_get_string(result, "id", NULL));
        req->stream_redact = actor != NULL && dv_authz_context_redacts_storage(call.authz);
        break;
    case DV_OP_SHAPE_JOB:
        return dv_route_job_accepted(req, result, status);
    case DV_OP_SHAPE_CREATED:
        *status = SOUP_STATUS_CREATED;
        break;
    case DV_OP_SHAPE_TEXT:
        req->content_type = g_strdup(dv_json_get_string(result, "content_type", "text/plain"));
        break;
    default:
        break;
    }
    return g_steal_pointer(&result);
}

static JsonObject *
dv_server_dispatch(DvRequest *req, guint *status, GError **error)
{
    DvEngine *engine = req->server->engine;
    g_auto(GStrv) parts = NULL;
    g_autoptr(GPtrArray) seg = g_ptr_array_new_with_free_func(g_free);
    const char *params[DV_OP_PARAMS_MAX] = { NULL };
    g_autofree char *allow = NULL;
    const DvOp *op;
    const char *rest;

    /* /metrics is also served at the root, where scrapers look for it. */
    if (g_strcmp0(req->path, "/metrics") == 0) {
        g_free(req->path);
        req->path = g_strdup(DV_API_PREFIX "/metrics");
    }
    if (!g_str_has_prefix(req->path, DV_API_PREFIX "/") && g_strcmp0(req->path, DV_API_PREFIX) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "not found; the API is under " DV_API_PREFIX);
        return NULL;
    }
    rest = req->path + strlen(DV_API_PREFIX);
    parts = g_strsplit(rest, "/", 16);
    for (guint i = 0; parts[i] != NULL; i++) {
        char *s;
        if (parts[i][0] == '\0')
            continue;
        s = g_uri_unescape_string(parts[i], NULL);
        if (s == NULL || !g_utf8_validate(s, -1, NULL)) {
            g_free(s);
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL, "the path is not valid UTF-8");
            return NULL;
        }
        g_ptr_array_add(seg, s);
    }
    g_ptr_array_add(seg, NULL);
    if (seg->len == 1) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "no such API route");
        return NULL;
    }
    op = dv_core_find_op(engine, req->method, (char **)seg->pdata, seg->len - 1, params, &allow,
                         error);
    if (op == NULL) {
        /* The path exists with other methods: Allow lists them. */
        req->allow = g_steal_pointer(&allow);
        return NULL;
    }
    req->op_name = op->name;
    req->op_method = op->method;
    return dv_route_op(req, op, params, status, error);
}

static void dv_server_stream_job(DvServer *server, SoupServerMessage *msg, const char *job_id,
                                 gboolean redact);

static gboolean
dv_server_finish_request(gpointer data)
{
    DvRequest *req = data;
    SoupMessageHeaders *headers = soup_server_message_get_response_headers(req->msg);

    if (req->console != NULL && req->status == SOUP_STATUS_OK) {
        dv_console_bridge_start(req);
        soup_server_message_unpause(req->msg);
        dv_request_free(req);
        return G_SOURCE_REMOVE;
    }
    if (req->stream_job_id != NULL && req->status == SOUP_STATUS_OK) {
        soup_message_headers_replace(headers, "Drover-Version", DV_VERSION);
        dv_server_stream_job(req->server, req->msg, req->stream_job_id, req->stream_redact);
        soup_server_message_unpause(req->msg);
        dv_request_free(req);
        return G_SOURCE_REMOVE;
    }

    soup_server_message_set_status(req->msg, req->status, NULL);
    if (req->location != NULL)
        soup_message_headers_replace(headers, "Location", req->location);
    if (req->allow != NULL)
        soup_message_headers_replace(headers, "Allow", req->allow);
    if (req->retry_after > 0) {
        g_autofree char *secs = g_strdup_printf("%u", req->retry_after);
        soup_message_headers_replace(headers, "Retry-After", secs);
    }
    soup_message_headers_replace(headers, "Cache-Control", "no-store");
    /* Clients compare it with their own (docs/UPGRADE.md, version skew). */
    soup_message_headers_replace(headers, "Drover-Version", DV_VERSION);
    {
        gsize len = strlen(req->response);
        soup_server_message_set_response(
            req->msg, req->content_type != NULL ? req->content_type : "application/json",
            SOUP_MEMORY_TAKE, g_steal_pointer(&req->response), len);
    }
    soup_server_message_unpause(req->msg);
    dv_request_free(req);
    return G_SOURCE_REMOVE;
}

static void
dv_server_worker(gpointer data, gpointer user_data)
{
    DvRequest *req = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) result = NULL;
    guint status = SOUP_STATUS_OK;
    gint64 took;

    result = dv_server_dispatch(req, &status, &error);
    if (result == NULL) {
        if (error == NULL)
            g_set_error(&error, DV_ERROR, DV_ERROR_INTERNAL, "request failed without a reason");
        /* A known path with another method keeps the 404 of the v1
         * contract (tests/api/test-api.c) and gains an Allow header. */
        req->status = dv_error_to_http_status(error);
        req->response = dv_api_error_body(error);
        g_clear_pointer(&req->location, g_free);
        if (req->status >= 500)
            g_warning("%s %s: %s", req->method, req->path, error->message);
    } else {
        req->status = status;
        if (req->content_type != NULL)
            req->response = g_strdup(dv_json_get_string(result, "text", ""));
        else
            /* Results are built for this request alone. */
            req->response = dv_api_render_owned(result);
    }
    took = g_get_monotonic_time() - req->started;
    g_debug("%s %s -> %u (%" G_GINT64_FORMAT " us)", req->method, req->path, req->status, took);
    if (dv_metrics_get_enabled()) {
        char code[8];
        const char *op = req->op_name != NULL ? req->op_name : "unmatched";
        g_snprintf(code, sizeof(code), "%u", req->status);
        /* A method no row has is a client's word: not a label value. */
        dv_metric_add(&dv_metric_requests, 1, op, req->op_method != NULL ? req->op_method : "other",
                      code);
        dv_metric_observe(&dv_metric_request_duration, (double)took / G_USEC_PER_SEC, op);
    }
    /* The response must be written from the server's own thread. */
    g_main_context_invoke(req->server->context, dv_server_finish_request, req);
}

/* --- connections (main thread) ----------------------------------------------------
 *
 * droverd accepts client connections itself and hands each to libsoup
 * with soup_server_accept_iostream(), because libsoup 3.2 leaves it no
 * say where it matters:
 * - its listener stops accepting for good on the first EMFILE;
 * - it has no idle or header timeout, and no cap on connections;
 * - it frees no keep-alive connection its client closed (fixed in 3.3),
 *   so every response says "Connection: close";
 * - at its own header limit (64 KiB) it closes without an answer.
 * libsoup gets a stream over the connection's socket streams: closing it
 * leaves the descriptor to us, so a 431 can still be written, and the
 * descriptor is closed when libsoup lets go of the connection
 * ("disconnected"), counted, and the next client let in. */

struct _DvConn {
    DvServer *server;
    GSocketConnection *sc; /* owns the descriptor */
    GIOStream *stream;     /* what libsoup reads and closes */
    SoupServerMessage *msg;
    GSource *timer;        /* header, then body timeout; then the forced close */
    GList waiting_link;    /* in server->waiting until its headers are in */
    gboolean tls;
    gboolean timed_out;    /* shut by us: leaving */
    gboolean released;
    gboolean upgraded;     /* a WebSocket took the connection: not ours to close */
};

static void
dv_conn_unwait(DvConn *c)
{
    if (c->waiting_link.data != NULL) {
        g_queue_unlink(&c->server->waiting, &c->waiting_link);
        c->waiting_link.data = NULL;
    }
}

static gboolean
dv_conn_unref_later(gpointer data)
{
    g_object_unref(data);
    return G_SOURCE_REMOVE;
}

static void
dv_conn_clear_source(GSource **src)
{
    if (*src != NULL) {
        g_source_destroy(*src);
        g_clear_pointer(src, g_source_unref);
    }
}

/* Best effort, on a plain connection only: a short answer that fits the
 * socket buffer, written before the descriptor is shut or closed. */
static void
dv_conn_send_canned(GSocket *sock, guint status, const char *reason, const GError *error)
{
    g_autofree char *body = dv_api_error_body(error);
    g_autofree char *text = g_strdup_printf("HTTP/1.1 %u %s\r\nContent-Type: application/json\r\n"
                                            "Content-Length: %zu\r\nConnection: close\r\n"
                                            "Cache-Control: no-store\r\n\r\n%s",
                                            status, reason, strlen(body), body);
    /* A client that went away makes this fail; nothing to tell anyone. */
    (void)g_socket_send_with_blocking(sock, text, strlen(text), FALSE, NULL, NULL);
}

static void
dv_conn_count_down(DvServer *server)
{
    server->n_connections--;
    /* Logged once per episode, with what it cost. */
    if (server->at_limit && server->n_connections < server->max_connections * 3 / 4) {
        g_message("client connections back under the limit (%u of %u open); %" G_GUINT64_FORMAT
                  " refused meanwhile", server->n_connections, server->max_connections,
                  server->n_refused);
        server->at_limit = FALSE;
        server->n_refused = 0;
    }
}

/* libsoup let go of the connection (or it was forced): close the
 * descriptor at once. */
static void
dv_conn_release(DvConn *c)
{
    DvServer *server = c->server;
    GSocket *sock = g_socket_connection_get_socket(c->sc);

    if (c->released)
        return;
    c->released = TRUE;
    dv_conn_clear_source(&c->timer);
    dv_conn_unwait(c);
    if (c->timed_out)
        server->n_leaving--;
    if (c->msg != NULL && !c->tls && soup_server_message_get_method(c->msg) == NULL &&
        soup_server_message_get_status(c->msg) == SOUP_STATUS_INTERNAL_SERVER_ERROR &&
        g_strcmp0(soup_server_message_get_reason_phrase(c->msg),
                  g_dgettext("libsoup-3.0", "Header too big")) == 0) {
        g_autoptr(GError) error = NULL;
        dv_set_field_error(&error, DV_ERROR_TOO_LARGE, NULL,
                           "request headers over the limit of %d bytes", DV_SERVER_MAX_HEADERS);
        dv_conn_send_canned(sock, DV_HTTP_HEADERS_TOO_LARGE,
                            "Request Header Fields Too Large", error);
    }
    if (!c->upgraded)
        (void)g_io_stream_close(G_IO_STREAM(c->sc), NULL, NULL); /* a close error frees it too */
    dv_conn_count_down(server);
    g_hash_table_remove(server->conns, c);
}

static void
dv_conn_free(DvConn *c)
{
    dv_conn_clear_source(&c->timer);
    if (c->msg != NULL) {
        g_signal_handlers_disconnect_by_data(c->msg, c);
        g_object_set_data(G_OBJECT(c->msg), "dv-conn", NULL);
        /* Not now: this may run inside one of the message's signals. */
        if (c->server->context != NULL) {
            g_autoptr(GSource) src = g_idle_source_new();
            g_source_set_callback(src, dv_conn_unref_later, g_steal_pointer(&c->msg), NULL);
            g_source_attach(src, c->server->context);
        }
    }
    g_clear_object(&c->stream);
    g_clear_object(&c->sc);
    g_free(c);
}

static gboolean
dv_conn_forced(gpointer data)
{
    DvConn *c = data;
    g_clear_pointer(&c->timer, g_source_unref);
    g_debug("client connection not let go 5 s after its timeout; closing it");
    dv_conn_release(c);
    return G_SOURCE_REMOVE;
}

static void dv_conn_arm(DvConn *c, guint seconds, GSourceFunc func);

/* A client too slow with its headers or body: answer 408 (plain HTTP)
 * and shut the socket, which libsoup reads as the end of the request. */
static gboolean
dv_conn_timeout(gpointer data)
{
    DvConn *c = data;
    GSocket *sock = g_socket_connection_get_socket(c->sc);

    g_clear_pointer(&c->timer, g_source_unref);
    if (c->timed_out)
        return G_SOURCE_REMOVE;
    c->timed_out = TRUE;
    c->server->n_leaving++;
    dv_conn_unwait(c);
    if (!c->tls) {
        g_autoptr(GError) error = NULL;
        g_set_error(&error, DV_ERROR, DV_ERROR_TIMEOUT,
                    "the request was not complete within its time limit");
        dv_conn_send_canned(sock, SOUP_STATUS_REQUEST_TIMEOUT, "Request Timeout", error);
    }
    (void)g_socket_shutdown(sock, TRUE, TRUE, NULL); /* fails only when already shut */
    dv_conn_arm(c, 5, dv_conn_forced);
    return G_SOURCE_REMOVE;
}

static void
dv_conn_arm(DvConn *c, guint seconds, GSourceFunc func)
{
    dv_conn_clear_source(&c->timer);
    if (seconds == 0)
        return;
    c->timer = g_timeout_source_new_seconds(seconds);
    g_source_set_callback(c->timer, func, c, NULL);
    g_source_attach(c->timer, c->server->context);
}

static void
dv_conn_got_headers(SoupServerMessage *msg, gpointer user_data)
{
    DvConn *c = user_data;
    dv_conn_unwait(c);
    if (!c->timed_out)
        dv_conn_arm(c, c->server->idle_timeout, dv_conn_timeout);
}

static void
dv_conn_got_body(SoupServerMessage *msg, gpointer user_data)
{
    DvConn *c = user_data;
    if (!c->timed_out)
        dv_conn_clear_source(&c->timer);
}

static void
dv_conn_mark_upgraded(SoupServerMessage *msg)
{
    DvConn *c = g_object_get_data(G_OBJECT(msg), "dv-conn");
    if (c != NULL) {
        c->upgraded = TRUE;
        dv_conn_clear_source(&c->timer);
    }
}

static void
dv_conn_disconnected(SoupServerMessage *msg, gpointer user_data)
{
    dv_conn_release(user_data);
}

/* libsoup's first message of a connection starts as it is accepted.  Its
 * response is filled in now with Drover's error body, so that the answers
 * libsoup gives on its own (400 for a malformed request line, header or
 * URI, 501 for an unknown Transfer-Encoding) carry it too; dv_server_early()
 * clears it for every request that parsed. */
static void
dv_server_request_started(SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
{
    DvServer *server = user_data;
    DvConn *c = server->accepting;
    g_autoptr(GError) error = NULL;
    g_autofree char *body = NULL;

    if (c == NULL || c->msg != NULL)
        return;
    c->msg = g_object_ref(msg);
    g_object_set_data(G_OBJECT(msg), "dv-conn", c);
    g_signal_connect(msg, "got-headers", G_CALLBACK(dv_conn_got_headers), c);
    g_signal_connect(msg, "got-body", G_CALLBACK(dv_conn_got_body), c);
    g_signal_connect(msg, "disconnected", G_CALLBACK(dv_conn_disconnected), c);
    dv_set_field_error(&error, DV_ERROR_INVALID_ARGUMENT, NULL,
                       "malformed HTTP request (request line, URI or headers)");
    body = dv_api_error_body(error);
    soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_TAKE,
                                     g_steal_pointer(&body), strlen(body));
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection",
                                 "close");
}

static void
dv_server_limit_reached(DvServer *server)
{
    if (!server->at_limit) {
        g_warning("client connection limit of %u reached; clients that have not sent their "
                  "request are closed first, then new ones refused (max_connections in the "
                  "config)", server->max_connections);
        server->at_limit = TRUE;
    }
}

typedef enum {
    DV_ROOM_YES,
    DV_ROOM_EVICT, /* after the accept, the oldest waiting client goes */
    DV_ROOM_LATER, /* leave the client in the listen queue a moment */
    DV_ROOM_NO,
} DvRoom;

/* At the cap, the oldest client still sending its headers (idle, slow or
 * a slowloris) makes way for a new one: those that sent a request are
 * served.  At most DV_SERVER_MAX_LEAVING such are shut and not yet let go
 * by libsoup (it reads their end at its next turn), which bounds the
 * descriptors over the cap; beyond that new clients wait in the listen
 * queue.  When every client sent its request, new ones get a 503. */
#define DV_SERVER_MAX_LEAVING 64

static DvRoom
dv_server_room(DvServer *server)
{
    if (server->n_connections - server->n_leaving < server->max_connections)
        return DV_ROOM_YES;
    dv_server_limit_reached(server);
    if (server->n_leaving >= DV_SERVER_MAX_LEAVING)
        return DV_ROOM_LATER;
    if (g_queue_peek_head(&server->waiting) != NULL)
        return DV_ROOM_EVICT;
    return server->n_leaving > 0 ? DV_ROOM_LATER : DV_ROOM_NO;
}

static void
dv_server_evict_oldest(DvServer *server)
{
    DvConn *oldest = g_queue_peek_head(&server->waiting);
    if (oldest != NULL) {
        dv_conn_arm(oldest, 0, NULL);
        dv_conn_timeout(oldest);
    }
}

static void
dv_server_refuse(DvServer *server, GSocket *sock)
{
    g_autoptr(GError) error = NULL;

    server->n_refused++;
    if (server->cert == NULL) {
        g_set_error(&error, DV_ERROR, DV_ERROR_UNAVAILABLE,
                    "the server has too many client connections (limit %u); try again",
                    server->max_connections);
        dv_conn_send_canned(sock, SOUP_STATUS_SERVICE_UNAVAILABLE, "Service Unavailable", error);
    }
    (void)g_socket_close(sock, NULL); /* nothing to do about a close error */
}

static void
dv_server_take(DvServer *server, GSocket *sock)
{
    DvConn *c = g_new0(DvConn, 1);
    g_autoptr(GSocketAddress) local = g_socket_get_local_address(sock, NULL);
    g_autoptr(GSocketAddress) remote = g_socket_get_remote_address(sock, NULL);
    g_autoptr(GIOStream) plain = NULL;
    g_autoptr(GError) error = NULL;

    c->server = server;
    c->sc = g_socket_connection_factory_create_connection(sock);
    plain = g_simple_io_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(c->sc)),
                                   g_io_stream_get_output_stream(G_IO_STREAM(c->sc)));
    (void)g_socket_set_option(sock, IPPROTO_TCP, TCP_NODELAY, TRUE, NULL); /* latency only */
    if (server->cert != NULL) {
        c->tls = TRUE;
        c->stream = G_IO_STREAM(g_tls_server_connection_new(plain, server->cert, &error));
        if (c->stream != NULL)
            g_object_set(c->stream, "require-close-notify", FALSE, NULL);
    } else {
        c->stream = g_object_ref(plain);
    }
    server->n_connections++;
    g_hash_table_add(server->conns, c);
    if (c->stream == NULL || local == NULL || remote == NULL) {
        g_debug("cannot set up a client connection: %s", error != NULL ? error->message : "no address");
        dv_conn_release(c);
        return;
    }
    dv_conn_arm(c, server->header_timeout, dv_conn_timeout);
    c->waiting_link.data = c;
    g_queue_push_tail_link(&server->waiting, &c->waiting_link);
    server->accepting = c;
    soup_server_accept_iostream(server->soup, c->stream, local, remote, NULL);
    server->accepting = NULL;
}

static void dv_server_accept_start(DvServer *server);

static gboolean
dv_server_accept_resume(gpointer data)
{
    DvServer *server = data;
    g_clear_pointer(&server->accept_retry, g_source_unref);
    dv_server_accept_start(server);
    return G_SOURCE_REMOVE;
}

/* The caller returns G_SOURCE_REMOVE. */
static void
dv_server_accept_pause(DvServer *server, guint ms)
{
    g_clear_pointer(&server->accept_source, g_source_unref);
    server->accept_retry = g_timeout_source_new(ms);
    g_source_set_callback(server->accept_retry, dv_server_accept_resume, server, NULL);
    g_source_attach(server->accept_retry, server->context);
}

static gboolean
dv_server_accept_ready(GSocket *listener, GIOCondition cond, gpointer data)
{
    DvServer *server = data;

    /* A bounded batch per turn: other sources get their turn too. */
    for (guint i = 0; i < 64; i++) {
        g_autoptr(GError) error = NULL;
        GSocket *sock;
        DvRoom room = dv_server_room(server);

        if (room == DV_ROOM_LATER) {
            dv_server_accept_pause(server, 10);
            return G_SOURCE_REMOVE;
        }
        sock = g_socket_accept(listener, NULL, &error);
        if (sock == NULL) {
            if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
                return G_SOURCE_CONTINUE;
            if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES) ||
                g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE)) {
                /* Out of descriptors anyway (libvirt, the database):
                 * pause, never stop, accepting. */
                if (!server->fd_exhausted)
                    g_warning("cannot accept clients: %s (%u client connections open); "
                              "retrying every 200 ms", error->message, server->n_connections);
                server->fd_exhausted = TRUE;
                dv_server_accept_pause(server, 200);
                return G_SOURCE_REMOVE;
            }
            g_debug("accept: %s", error->message);
            return G_SOURCE_CONTINUE;
        }
        if (server->fd_exhausted) {
            g_message("accepting clients again");
            server->fd_exhausted = FALSE;
        }
        if (room == DV_ROOM_NO) {
            dv_server_refuse(server, sock);
        } else {
            if (room == DV_ROOM_EVICT)
                dv_server_evict_oldest(server);
            dv_server_take(server, sock);
        }
        g_object_unref(sock);
    }
    return G_SOURCE_CONTINUE;
}

static void
dv_server_accept_start(DvServer *server)
{
    server->accept_source = g_socket_create_source(server->listener, G_IO_IN, NULL);
    g_source_set_callback(server->accept_source, G_SOURCE_FUNC(dv_server_accept_ready), server, NULL);
    g_source_attach(server->accept_source, server->context);
}

/* --- job event streams (main thread) -------------------------------------------- */

static void
dv_sse_send(SoupServerMessage *msg, const char *event, const char *data)
{
    g_autofree char *chunk = g_strdup_printf("event: %s\ndata: %s\n\n", event, data);
    SoupMessageBody *body = soup_server_message_get_response_body(msg);
    soup_message_body_append(body, SOUP_MEMORY_TAKE, g_steal_pointer(&chunk), strlen(chunk));
    soup_server_message_unpause(msg);
}

static void
dv_sse_end(SoupServerMessage *msg)
{
    dv_sse_send(msg, "end", "{}");
    soup_message_body_complete(soup_server_message_get_response_body(msg));
    soup_server_message_unpause(msg);
}

/* A comment line every 20 s keeps proxies and clients from timing out
 * on a long step. */
static gboolean
dv_sse_keepalive(gpointer data)
{
    DvServer *server = data;
    GHashTableIter it;
    gpointer value;

    g_hash_table_iter_init(&it, server->streams);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        GPtrArray *clients = value;
        for (guint i = 0; i < clients->len; i++) {
            SoupServerMessage *msg = g_ptr_array_index(clients, i);
            soup_message_body_append(soup_server_message_get_response_body(msg), SOUP_MEMORY_STATIC,
                                     ": keepalive\n\n", 13);
            soup_server_message_unpause(msg);
        }
    }
    return G_SOURCE_CONTINUE;
}

typedef struct {
    DvServer *server;
    char *job_id;
    char *data;
    char *data_redacted; /* for a delegated administrator's stream */
    gboolean finished;
} DvSseEvent;

static void
dv_sse_event_free(DvSseEvent *ev)
{
    g_free(ev->job_id);
    g_free(ev->data);
    g_free(ev->data_redacted);
    g_free(ev);
}

/* Set on a stream's message whose client sees no storage data. */
#define DV_SSE_REDACT "dv-sse-redact"

/* The job as an event's data, without storage data when @redact. */
static char *
dv_sse_render_job(JsonObject *job, gboolean redact)
{
    g_autoptr(JsonNode) src = NULL;
    g_autoptr(JsonNode) copy = NULL;

    if (!redact)
        return dv_api_render(job);
    src = json_node_init_object(json_node_alloc(), job);
    copy = dv_json_node_deep_copy(src);
    dv_authz_redact("job", json_node_get_object(copy));
    return dv_api_render(json_node_get_object(copy));
}

static gboolean
dv_sse_deliver(gpointer data)
{
    DvSseEvent *ev = data;
    GPtrArray *clients = g_hash_table_lookup(ev->server->streams, ev->job_id);

    if (clients != NULL) {
        /* Copy: ending a stream removes it from the array. */
        g_autoptr(GPtrArray) copy = g_ptr_array_new_with_free_func(g_object_unref);
        for (guint i = 0; i < clients->len; i++)
            g_ptr_array_add(copy, g_object_ref(g_ptr_array_index(clients, i)));
        for (guint i = 0; i < copy->len; i++) {
            SoupServerMessage *msg = g_ptr_array_index(copy, i);
            gboolean redact = g_object_get_data(G_OBJECT(msg), DV_SSE_REDACT) != NULL;
            dv_sse_send(msg, "progress", redact ? ev->data_redacted : ev->data);
            if (ev->finished)
                dv_sse_end(msg);
        }
        if (ev->finished)
            g_hash_table_remove(ev->server->streams, ev->job_id);
    }
    dv_sse_event_free(ev);
    return G_SOURCE_REMOVE;
}

/* Called by the job manager from worker threads. */
static void
dv_server_job_listener(const char *job_id, JsonObject *job, gboolean finished, gpointer user_data)
{
    DvServer *server = user_data;
    DvSseEvent *ev = g_new0(DvSseEvent, 1);

    ev->server = server;
    ev->job_id = g_strdup(job_id);
    ev->data = dv_sse_render_job(job, FALSE);
    ev->data_redacted = dv_sse_render_job(job, TRUE);
    ev->finished = finished;
    g_main_context_invoke(server->context, dv_sse_deliver, ev);
}

typedef struct {
    DvServer *server;
    char *job_id;
} DvSseClient;

static void
dv_sse_client_finished(SoupServerMessage *msg, gpointer user_data)
{
    DvSseClient *c = user_data;
    GPtrArray *clients = g_hash_table_lookup(c->server->streams, c->job_id);
    if (clients != NULL) {
        g_ptr_array_remove(clients, msg);
        if (clients->len == 0)
            g_hash_table_remove(c->server->streams, c->job_id);
    }
}

static void
dv_sse_client_free(gpointer data, GClosure *closure)
{
    DvSseClient *c = data;
    g_free(c->job_id);
    g_free(c);
}

static void
dv_server_send_error_now(SoupServerMessage *msg, const GError *error)
{
    g_autofree char *body = dv_api_error_body(error);
    soup_server_message_set_status(msg, dv_error_to_http_status(error), NULL);
    soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_TAKE,
                                     g_steal_pointer(&body), strlen(body));
}

/* Streams job @job_id, a job.events request the authorizer let through
 * (dv_route_op()).  The job is read again here, on the thread that
 * delivers its events, so no event falls between this read and the
 * stream's registration. */
static void
dv_server_stream_job(DvServer *server, SoupServerMessage *msg, const char *job_id,
                     gboolean redact)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autofree char *data = NULL;
    SoupMessageHeaders *headers = soup_server_message_get_response_headers(msg);
    const char *state;
    GPtrArray *clients;
    DvSseClient *client;

    job = dv_store_get(dv_engine_get_store(server->engine), &dv_table_jobs, job_id, &error);
    if (job == NULL) {
        dv_server_send_error_now(msg, error);
        return;
    }
    /* Ended but not saved yet (a full disk): its true state, and the end. */
    {
        JsonObject *mem = dv_job_manager_dup_unsaved(dv_engine_get_jobs(server->engine), job_id);
        if (mem != NULL) {
            json_object_unref(job);
            job = mem;
        }
    }
    soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
    soup_message_headers_set_encoding(headers, SOUP_ENCODING_CHUNKED);
    soup_message_headers_set_content_type(headers, "text/event-stream", NULL);
    soup_message_headers_replace(headers, "Cache-Control", "no-store");
    data = dv_sse_render_job(job, redact);
    dv_sse_send(msg, "progress", data);
    state = dv_json_get_string(job, "state", "");
    if (g_strcmp0(state, "queued") != 0 && g_strcmp0(state, "running") != 0) {
        dv_sse_end(msg);
        return;
    }
    clients = g_hash_table_lookup(server->streams, job_id);
    if (clients == NULL) {
        clients = g_ptr_array_new_with_free_func(g_object_unref);
        g_hash_table_insert(server->streams, g_strdup(job_id), clients);
    }
    g_ptr_array_add(clients, g_object_ref(msg));
    if (redact)
        g_object_set_data(G_OBJECT(msg), DV_SSE_REDACT, GINT_TO_POINTER(1));
    client = g_new0(DvSseClient, 1);
    client->server = server;
    client->job_id = g_strdup(job_id);
    g_signal_connect_data(msg, "finished", G_CALLBACK(dv_sse_client_finished), client,
                          dv_sse_client_free, 0);
}

/* --- entry (main thread) ----------------------------------------------------------- */

static char *
dv_server_bearer(SoupServerMessage *msg)
{
    const char *h = soup_message_headers_get_one(soup_server_message_get_request_headers(msg),
                                                 "Authorization");
    if (h == NULL || g_ascii_strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    return g_strdup(h + 7);
}

static void
dv_server_count_header(const char *name, const char *value, gpointer data)
{
    gsize *total = data;
    *total += strlen(name) + strlen(value) + 4; /* ": " and CRLF */
}

/* --- uploads (main thread) ------------------------------------------------------
 *
 * An operation flagged DV_OP_FLAG_UPLOAD takes its body as bytes streamed
 * to its job (DvUpload), up to DV_OP_UPLOAD_MAX, never accumulated.  It is
 * routed, authorized and accepted (or refused) as its headers arrive, on
 * the main thread: libsoup decides right after "got-headers" whether it
 * reads a body, so a refusal must be set then for no byte to be read.
 * That costs the main loop the handler's few database reads and the job's
 * insert, once per upload.  Accepted, the body's chunks go to the job as
 * they come ("got-chunk"); above DV_UPLOAD_HIGH_MARK buffered bytes the
 * message is paused until the job drains it.  A connection that closes
 * before the whole body aborts the upload (the job deletes its partial
 * volume).  The answer (202 and the job) is sent once the body is in. */

typedef struct {
    DvUpload *upload;
    GWeakRef msg;
    char *response;
    char *location;
    guint status;
    gboolean got_body;
} DvUploadState;

static void
dv_upload_state_free(DvUploadState *st)
{
    if (st->upload != NULL && !st->got_body)
        dv_upload_abort(st->upload, "the client's connection closed before the whole body");
    g_clear_pointer(&st->upload, dv_upload_unref);
    g_weak_ref_clear(&st->msg);
    g_free(st->response);
    g_free(st->location);
    g_free(st);
}

static void
dv_upload_weak_free(gpointer data)
{
    g_weak_ref_clear(data);
    g_free(data);
}

static gboolean
dv_upload_resume(gpointer data)
{
    g_autoptr(SoupServerMessage) msg = g_weak_ref_get(data);
    if (msg != NULL)
        soup_server_message_unpause(msg);
    return G_SOURCE_REMOVE;
}

static void
dv_upload_got_chunk(SoupServerMessage *msg, GBytes *chunk, gpointer user_data)
{
    DvUploadState *st = user_data;
    DvConn *c = g_object_get_data(G_OBJECT(msg), "dv-conn");
    gsize len;
    const void *data = g_bytes_get_data(chunk, &len);

    /* The body deadline counts from the last chunk: an upload may take
     * longer than the idle timeout, a stalled one may not. */
    if (c != NULL && !c->timed_out)
        dv_conn_arm(c, c->server->idle_timeout, dv_conn_timeout);
    if (dv_upload_push(st->upload, data, len))
        soup_server_message_pause(msg);
}

static void
dv_upload_got_body(SoupServerMessage *msg, gpointer user_data)
{
    DvUploadState *st = user_data;
    st->got_body = TRUE;
    dv_upload_finish(st->upload);
}

static void
dv_upload_cut(SoupServerMessage *msg, gpointer user_data)
{
    DvUploadState *st = user_data;
    if (!st->got_body)
        dv_upload_abort(st->upload, "the client's connection closed before the whole body");
}

/* The upload operation @msg's method and path name, or NULL. */
static const DvOp *
dv_server_upload_op(DvServer *server, SoupServerMessage *msg)
{
    const char *raw_path = g_uri_get_path(soup_server_message_get_uri(msg));
    g_auto(GStrv) parts = NULL;
    g_autoptr(GPtrArray) seg = g_ptr_array_new_with_free_func(g_free);
    const char *params[DV_OP_PARAMS_MAX] = { NULL };
    g_autofree char *allow = NULL;
    const DvOp *op;

    if (g_strcmp0(soup_server_message_get_method(msg), "POST") != 0 ||
        !g_str_has_prefix(raw_path, DV_API_PREFIX "/") || strlen(raw_path) > DV_MAX_PATH)
        return NULL;
    parts = g_strsplit(raw_path + strlen(DV_API_PREFIX), "/", 16);
    for (guint i = 0; parts[i] != NULL; i++) {
        char *u;
        if (parts[i][0] == '\0')
            continue;
        u = g_uri_unescape_string(parts[i], NULL);
        if (u == NULL || !g_utf8_validate(u, -1, NULL)) {
            g_free(u);
            return NULL;
        }
        g_ptr_array_add(seg, u);
    }
    g_ptr_array_add(seg, NULL);
    if (seg->len == 1)
        return NULL;
    op = dv_core_find_op(server->engine, "POST", (char **)seg->pdata, seg->len - 1, params, &allow,
                         NULL);
    return op != NULL && (op->flags & DV_OP_FLAG_UPLOAD) ? op : NULL;
}

/* Accepts or refuses the upload @msg at its headers; TRUE when it was an
 * upload (answered or streaming). */
static gboolean
dv_server_upload_begin(DvServer *server, SoupServerMessage *msg)
{
    SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
    GUri *uri = soup_server_message_get_uri(msg);
    const char *raw_query = g_uri_get_query(uri);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) result = NULL;
    g_autoptr(DvUpload) upload = NULL;
    DvUploadState *st;
    DvRequest *req;
    guint status = SOUP_STATUS_OK;
    goffset len;

    if (dv_server_upload_op(server, msg) == NULL)
        return FALSE;
    if (soup_message_headers_get_encoding(h) != SOUP_ENCODING_CONTENT_LENGTH) {
        dv_set_field_error(&error, DV_ERROR_INVALID_ARGUMENT, "Content-Length",
                           "Content-Length: an upload declares its size");
        dv_server_send_error_now(msg, error);
        return TRUE;
    }
    len = soup_message_headers_get_content_length(h);
    if (len <= 0 || (guint64)len > DV_OP_UPLOAD_MAX) {
        dv_set_field_error(&error, DV_ERROR_TOO_LARGE, "Content-Length",
                           "Content-Length: an upload is 1 byte to %" G_GUINT64_FORMAT
                           " bytes, got %" G_GINT64_FORMAT,
                           DV_OP_UPLOAD_MAX, (gint64)len);
        dv_server_send_error_now(msg, error);
        return TRUE;
    }
    upload = dv_upload_new((guint64)len);
    req = g_new0(DvRequest, 1);
    req->server = server;
    req->msg = g_object_ref(msg);
    req->method = g_strdup("POST");
    req->path = g_strdup(g_uri_get_path(uri));
    req->started = g_get_monotonic_time();
    req->token = dv_server_bearer(msg);
    req->peer = g_strdup(soup_server_message_get_remote_host(msg));
    req->upload = upload;
    if (raw_query != NULL && raw_query[0] != '\0' && strlen(raw_query) <= DV_MAX_QUERY)
        req->query = g_uri_parse_params(raw_query, -1, "&", G_URI_PARAMS_NONE, NULL);
    result = dv_server_dispatch(req, &status, &error);
    if (result == NULL) {
        if (error == NULL)
            g_set_error(&error, DV_ERROR, DV_ERROR_INTERNAL, "upload refused without a reason");
        dv_server_send_error_now(msg, error);
        dv_request_free(req);
        return TRUE;
    }
    st = g_new0(DvUploadState, 1);
    st->upload = dv_upload_ref(upload);
    g_weak_ref_init(&st->msg, msg);
    st->status = status;
    st->response = dv_api_render_owned(result);
    st->location = g_steal_pointer(&req->location);
    dv_request_free(req);
    {
        GWeakRef *weak = g_new0(GWeakRef, 1);
        g_weak_ref_init(weak, msg);
        dv_upload_set_resume(upload, server->context, dv_upload_resume, weak, dv_upload_weak_free);
    }
    g_object_set_data_full(G_OBJECT(msg), "dv-upload", st, (GDestroyNotify)dv_upload_state_free);
    soup_message_body_set_accumulate(soup_server_message_get_request_body(msg), FALSE);
    g_signal_connect(msg, "got-chunk", G_CALLBACK(dv_upload_got_chunk), st);
    g_signal_connect(msg, "got-body", G_CALLBACK(dv_upload_got_body), st);
    g_signal_connect(msg, "finished", G_CALLBACK(dv_upload_cut), st);
    g_signal_connect(msg, "disconnected", G_CALLBACK(dv_upload_cut), st);
    return TRUE;
}

/* The answer of an upload whose body is in (dv_server_handler()). */
static gboolean
dv_server_upload_answer(SoupServerMessage *msg)
{
    DvUploadState *st = g_object_get_data(G_OBJECT(msg), "dv-upload");
    SoupMessageHeaders *headers = soup_server_message_get_response_headers(msg);
    gsize len;

    if (st == NULL)
        return FALSE;
    soup_server_message_set_status(msg, st->status, NULL);
    if (st->location != NULL)
        soup_message_headers_replace(headers, "Location", st->location);
    soup_message_headers_replace(headers, "Cache-Control", "no-store");
    soup_message_headers_replace(headers, "Drover-Version", DV_VERSION);
    len = strlen(st->response);
    soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_TAKE,
                                     g_steal_pointer(&st->response), len);
    return TRUE;
}

static void
dv_server_early(SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query,
                gpointer user_data)
{
    SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
    SoupEncoding enc = soup_message_headers_get_encoding(h);
    g_autoptr(GError) error = NULL;
    gsize header_bytes = 0;

    /* The request parsed: drop the error body dv_server_request_started()
     * put in place for libsoup's own answers. */
    soup_server_message_set_response(msg, NULL, SOUP_MEMORY_STATIC, NULL, 0);
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection",
                                 "close");
    soup_message_headers_foreach(h, dv_server_count_header, &header_bytes);
    if (header_bytes > DV_SERVER_MAX_HEADERS) {
        dv_set_field_error(&error, DV_ERROR_TOO_LARGE, NULL,
                           "request headers are %" G_GSIZE_FORMAT " bytes, over the limit of %d",
                           header_bytes, DV_SERVER_MAX_HEADERS);
        dv_server_send_error_now(msg, error);
        soup_server_message_set_status(msg, DV_HTTP_HEADERS_TOO_LARGE,
                                       "Request Header Fields Too Large");
        return;
    }
    if (dv_server_upload_begin(user_data, msg))
        return;
    /* Refuse oversized bodies before libsoup reads them. */
    if (enc == SOUP_ENCODING_CONTENT_LENGTH &&
        soup_message_headers_get_content_length(h) > DV_JSON_MAX_BODY) {
        dv_set_field_error(&error, DV_ERROR_TOO_LARGE, NULL,
                           "request body is %" G_GINT64_FORMAT " bytes, over the limit of %d",
                           soup_message_headers_get_content_length(h), DV_JSON_MAX_BODY);
    } else if (enc == SOUP_ENCODING_CHUNKED || enc == SOUP_ENCODING_EOF) {
        dv_set_field_error(&error, DV_ERROR_INVALID_ARGUMENT, NULL,
                           "request bodies must carry a Content-Length");
    }
    if (error != NULL) {
        dv_server_send_error_now(msg, error);
        soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection",
                                     "close");
    }
}

static void
dv_server_handler(SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query,
                  gpointer user_data)
{
    DvServer *server = user_data;
    GUri *uri = soup_server_message_get_uri(msg);
    const char *method = soup_server_message_get_method(msg);
    const char *raw_query = g_uri_get_query(uri);
    const char *raw_path = g_uri_get_path(uri);
    DvRequest *req;

    if (dv_server_upload_answer(msg))
        return;
    /* Everything outside the API is the web console's (dv-web.h). */
    if (!g_str_has_prefix(raw_path, DV_API_PREFIX "/") && g_strcmp0(raw_path, DV_API_PREFIX) != 0 &&
        g_strcmp0(raw_path, "/metrics") != 0) {
        dv_web_serve(server->web, msg, method, raw_path);
        return;
    }
    if (strlen(raw_path) > DV_MAX_PATH || (raw_query != NULL && strlen(raw_query) > DV_MAX_QUERY)) {
        g_autoptr(GError) error = NULL;
        dv_set_field_error(&error, DV_ERROR_TOO_LARGE, NULL, "the request URI is too long");
        dv_server_send_error_now(msg, error);
        return;
    }
    req = g_new0(DvRequest, 1);
    req->server = server;
    req->msg = g_object_ref(msg);
    req->method = g_strdup(method);
    req->path = g_strdup(raw_path);
    req->started = g_get_monotonic_time();
    req->token = dv_server_bearer(msg);
    req->peer = g_strdup(soup_server_message_get_remote_host(msg));
    if (raw_query != NULL && raw_query[0] != '\0') {
        g_autoptr(GError) error = NULL;
        req->query = g_uri_parse_params(raw_query, -1, "&", G_URI_PARAMS_NONE, &error);
        if (req->query == NULL) {
            g_autoptr(GError) e2 = NULL;
            dv_set_field_error(&e2, DV_ERROR_INVALID_ARGUMENT, NULL, "malformed query string: %s",
                               error->message);
            dv_server_send_error_now(msg, e2);
            dv_request_free(req);
            return;
        }
    }
    {
        SoupMessageBody *body = soup_server_message_get_request_body(msg);
        if (body != NULL && body->length > 0)
            req->body = soup_message_body_flatten(body);
    }
    soup_server_message_pause(msg);
    g_thread_pool_push(server->pool, req, NULL);
}

GInetSocketAddress *
dv_server_parse_listen(const char *listen, GError **error)
{
    g_autofree char *host = NULL;
    const char *colon;
    gint64 port;
    g_autoptr(GInetAddress) addr = NULL;

    if (listen == NULL || (colon = strrchr(listen, ':')) == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "listen",
                           "listen: must be ADDRESS:PORT, e.g. 127.0.0.1:8420");
        return NULL;
    }
    host = g_strndup(listen, colon - listen);
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        char *inner = g_strndup(host + 1, strlen(host) - 2);
        g_free(host);
        host = inner;
    }
    if (!g_ascii_string_to_signed(colon + 1, 10, 0, 65535, &port, NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "listen",
                           "listen: port must be a number between 0 and 65535");
        return NULL;
    }
    if (g_strcmp0(host, "localhost") == 0) {
        g_free(host);
        host = g_strdup("127.0.0.1");
    }
    addr = g_inet_address_new_from_string(host);
    if (addr == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "listen",
                           "listen: '%s' is not an IP address", host);
        return NULL;
    }
    return G_INET_SOCKET_ADDRESS(g_inet_socket_address_new(addr, (guint16)port));
}

/* The descriptors a process may open, after droverd raised its soft
 * limit to the hard one. */
static guint
dv_server_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > G_MAXINT)
        return G_MAXINT;
    return (guint)rl.rlim_cur;
}

static gboolean
dv_server_set_limits(DvServer *server, const DvServerOptions *opts, GError **error)
{
    guint fds = dv_server_fd_limit();
    guint derived = fds > DV_SERVER_FD_RESERVE + 16 ? fds - DV_SERVER_FD_RESERVE : 16;

    if (opts->max_connections > 0 && (fds < 64 || opts->max_connections > fds - 32)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "max_connections",
                           "max_connections: %u leaves fewer than 32 of the %u descriptors "
                           "droverd may open (LimitNOFILE) for libvirt, the database and files",
                           opts->max_connections, fds);
        return FALSE;
    }
    if (opts->header_timeout > 86400 || opts->idle_timeout > 86400) {
        const char *f = opts->header_timeout > 86400 ? "header_timeout" : "idle_timeout";
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f, "%s: must be 1 to 86400 seconds", f);
        return FALSE;
    }
    server->max_connections = opts->max_connections > 0 ? opts->max_connections : MIN(derived, 65536);
    server->header_timeout = opts->header_timeout > 0 ? opts->header_timeout : DV_SERVER_HEADER_TIMEOUT;
    server->idle_timeout = opts->idle_timeout > 0 ? opts->idle_timeout : DV_SERVER_IDLE_TIMEOUT;
    return TRUE;
}

/* A socket of our own: libsoup's listens with GLib's backlog of 10,
 * which a burst of a few hundred connects overflows into resets. */
static gboolean
dv_server_listen(DvServer *server, GInetSocketAddress *addr, GError **error)
{
    GSocketFamily family = g_socket_address_get_family(G_SOCKET_ADDRESS(addr));
    g_autoptr(GSocket) sock = g_socket_new(family, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);
    g_autoptr(GSocketAddress) bound = NULL;
    g_autofree char *host = NULL;

    if (sock == NULL || !g_socket_bind(sock, G_SOCKET_ADDRESS(addr), TRUE, error))
        return FALSE;
    g_socket_set_listen_backlog(sock, DV_SERVER_LISTEN_BACKLOG);
    g_socket_set_blocking(sock, FALSE); /* accepted in batches until EAGAIN */
    if (!g_socket_listen(sock, error) || (bound = g_socket_get_local_address(sock, error)) == NULL)
        return FALSE;
    host = g_inet_address_to_string(g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(bound)));
    server->url = g_strdup_printf(family == G_SOCKET_FAMILY_IPV6 ? "%s://[%s]:%u" : "%s://%s:%u",
                                  server->cert != NULL ? "https" : "http", host,
                                  g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound)));
    server->listener = g_steal_pointer(&sock);
    return TRUE;
}

DvServer *
dv_server_new(DvEngine *engine, const DvServerOptions *opts, GError **error)
{
    g_autoptr(GInetSocketAddress) addr = dv_server_parse_listen(opts->listen, error);
    g_autoptr(GTlsCertificate) cert = NULL;
    DvServer *server;
    gboolean loopback;

    if (addr == NULL)
        return NULL;
    loopback = g_inet_address_get_is_loopback(g_inet_socket_address_get_address(addr));
    if (!loopback && opts->tls_cert_file == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "listen",
                           "listen: %s is not a loopback address, so it is served only over TLS; "
                           "give tls_cert and tls_key (or --self-signed-tls)", opts->listen);
        return NULL;
    }
    if (opts->tls_cert_file != NULL) {
        cert = g_tls_certificate_new_from_files(opts->tls_cert_file, opts->tls_key_file, error);
        if (cert == NULL) {
            dv_error_convert(error);
            g_prefix_error(error, "cannot load TLS certificate: ");
            return NULL;
        }
    }

    server = g_new0(DvServer, 1);
    server->engine = engine;
    if (!dv_server_set_limits(server, opts, error)) {
        g_free(server);
        return NULL;
    }
    if (opts->web_root != NULL && (server->web = dv_web_new(opts->web_root, error)) == NULL) {
        g_free(server);
        return NULL;
    }
    server->context = g_main_context_ref_thread_default();
    server->streams = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                            (GDestroyNotify)g_ptr_array_unref);
    server->conns = g_hash_table_new_full(g_direct_hash, g_direct_equal, (GDestroyNotify)dv_conn_free, NULL);
    server->cert = g_steal_pointer(&cert);
    server->soup = soup_server_new("server-header", "droverd/" DV_VERSION " ", NULL);
    server->pool = g_thread_pool_new(dv_server_worker, server, DV_REQUEST_WORKERS, FALSE, NULL);
    g_signal_connect(server->soup, "request-started", G_CALLBACK(dv_server_request_started), server);
    soup_server_add_early_handler(server->soup, NULL, dv_server_early, server, NULL);
    soup_server_add_handler(server->soup, NULL, dv_server_handler, server, NULL);
    dv_job_manager_set_listener(dv_engine_get_jobs(engine), dv_server_job_listener, server);
    {
        g_autoptr(GSource) src = g_timeout_source_new_seconds(20);
        g_source_set_callback(src, dv_sse_keepalive, server, NULL);
        server->keepalive_id = g_source_attach(src, server->context);
    }

    if (!dv_server_listen(server, addr, error)) {
        dv_error_convert(error);
        g_prefix_error(error, "cannot listen on %s: ", opts->listen);
        dv_server_free(server);
        return NULL;
    }
    dv_server_accept_start(server);
    g_debug("serving up to %u client connections (of %u descriptors), header timeout %u s, "
            "idle timeout %u s", server->max_connections, dv_server_fd_limit(),
            server->header_timeout, server->idle_timeout);
    return server;
}

guint
dv_server_get_max_connections(DvServer *server)
{
    return server->max_connections;
}

guint
dv_server_get_n_connections(DvServer *server)
{
    return server->n_connections;
}

const char *
dv_server_get_url(DvServer *server)
{
    return server->url;
}

void
dv_server_free(DvServer *server)
{
    if (server == NULL)
        return;
    dv_job_manager_set_listener(dv_engine_get_jobs(server->engine), NULL, NULL);
    if (server->keepalive_id != 0) {
        GSource *src = g_main_context_find_source_by_id(server->context, server->keepalive_id);
        if (src != NULL)
            g_source_destroy(src);
    }
    dv_conn_clear_source(&server->accept_source);
    dv_conn_clear_source(&server->accept_retry);
    if (server->listener != NULL)
        (void)g_socket_close(server->listener, NULL); /* going away either way */
    g_clear_object(&server->listener);
    /* Disconnects every client: each is released through "disconnected". */
    if (server->soup != NULL)
        soup_server_disconnect(server->soup);
    if (server->pool != NULL)
        g_thread_pool_free(server->pool, FALSE, TRUE);
    /* Requests answered after the disconnect still hold their connection. */
    {
        GHashTableIter it;
        gpointer key;
        g_hash_table_iter_init(&it, server->conns);
        while (g_hash_table_iter_next(&it, &key, NULL)) {
            DvConn *c = key;
            c->released = TRUE;
            (void)g_io_stream_close(G_IO_STREAM(c->sc), NULL, NULL); /* shutting down */
        }
    }
    g_hash_table_unref(server->conns);
    g_clear_object(&server->soup);
    g_clear_object(&server->cert);
    g_hash_table_unref(server->streams);
    g_main_context_unref(server->context);
    g_clear_pointer(&server->web, dv_web_free);
    g_free(server->url);
    g_free(server);
}
