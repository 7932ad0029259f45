/* The operation table: one DvOp row per operation of the REST API
 * (docs/ARCHITECTURE.md, "Operations"; docs/API.md).
 *
 * A row declares, once: its name ("vm.start"), method and path template
 * ("/vms/{ref}/start", relative to /api/v1), the privilege it needs and
 * the object that privilege is checked against, what it accepts (query,
 * body), what it locks, the job kinds it submits, the shape of its answer
 * and its handler.  Features register their rows with dv_core_add_ops()
 * while the engine is built; the daemon matches a request against the
 * table (dv_core_find_op()), authorizes it from the row and calls the
 * handler; tools/check-ops reads the table (droverd --dump-ops).
 *
 * Threads: the table is filled before any request runs and only read
 * afterwards (as the other registries of dv-core.h), so it takes no
 * lock.  Rows are static data owned by the feature that registered them.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "dv-actor.h"
#include "dv-core-types.h"
#include "dv-json.h"
#include "dv-validate.h"

G_BEGIN_DECLS

#define DV_OP_PARAMS_MAX 4

/* What the privilege is checked against. */
typedef enum {
    DV_OP_TARGET_NONE,   /* no object: public, or the caller's own session */
    DV_OP_TARGET_GLOBAL, /* the installation (settings, users, roles, audit) */
    DV_OP_TARGET_KIND,   /* a list: the kind; rows are filtered by scope */
    DV_OP_TARGET_PATH,   /* the object the path parameter names */
    DV_OP_TARGET_PARENT, /* a create: the parent the body names (or global) */
} DvOpTarget;

/* What the operation locks while it is accepted (lock rows land with
 * several servers; today the job manager's per-object order). */
typedef enum {
    DV_OP_LOCK_NONE,    /* reads, and changes of the caller's own records */
    DV_OP_LOCK_OBJECT,  /* the target object */
    DV_OP_LOCK_PARENT,  /* the parent a create lands in */
    DV_OP_LOCK_CATALOG, /* the catalog and its machines (one task at a time) */
    DV_OP_LOCK_GLOBAL,  /* installation-wide records (users, roles, bindings) */
} DvOpLock;

typedef enum {
    DV_OP_SHAPE_OBJECT,  /* 200 with an object */
    DV_OP_SHAPE_LIST,    /* 200 with {items, next_cursor} */
    DV_OP_SHAPE_JOB,     /* 202 {job} with Location: the handler returns the job */
    DV_OP_SHAPE_CREATED, /* 201 with the new object */
    DV_OP_SHAPE_EMPTY,   /* 200 {} */
    DV_OP_SHAPE_STREAM,  /* 200 text/event-stream of the job the handler
                          * returns (GET /jobs/{id}/events): the daemon
                          * streams it once the row is authorized */
    DV_OP_SHAPE_WEBSOCKET, /* 101 Switching Protocols: the daemon bridges the
                            * WebSocket once the row is authorized and the
                            * handler accepted the inputs (GET /vms/{ref}/console) */
    DV_OP_SHAPE_TEXT,    /* 200 with the handler's {content_type, text}
                          * as the body (GET /metrics) */
} DvOpShape;

/* What the request may carry. */
typedef enum {
    DV_OP_BODY_IGNORED,  /* not read (GET) */
    DV_OP_BODY_NONE,     /* none, or {} */
    DV_OP_BODY_REQUIRED, /* a JSON object */
    DV_OP_BODY_OPTIONAL, /* a JSON object when not empty */
} DvOpBody;

typedef enum {
    DV_OP_FLAG_NONE = 0,
    DV_OP_FLAG_NO_QUERY = 1 << 0, /* query parameters are refused (400) */
    DV_OP_FLAG_PUBLIC = 1 << 1,   /* no session needed (version, health, login) */
    DV_OP_FLAG_DEBUG = 1 << 2,    /* only when dv_core_debug_enabled() */
    DV_OP_FLAG_SESSION = 1 << 3,  /* a session, no privilege: the caller's own records */
    DV_OP_FLAG_UPLOAD = 1 << 4,   /* the body is bytes streamed to the handler (call->upload),
                                   * never JSON: a Content-Length up to DV_OP_UPLOAD_MAX */
} DvOpFlags;

/* The largest body of an upload operation (64 GiB). */
#define DV_OP_UPLOAD_MAX (G_GUINT64_CONSTANT(64) << 30)

typedef struct _DvOp DvOp;

/* One call of an operation, built by the daemon for one request.  Inputs
 * are borrowed for the call; the handler may set the outputs. */
typedef struct {
    DvEngine *engine;
    const DvOp *op;
    const DvActor *actor; /* NULL for a public op */
    gpointer authz;       /* the actor's DvAuthzContext (borrowed), NULL when public */
    const char *params[DV_OP_PARAMS_MAX]; /* path parameters in template order */
    GHashTable *query;                    /* may be NULL */
    JsonObject *body;                     /* NULL unless the op takes a body */
    const char *token;                    /* the bearer token (session ops), may be NULL */
    const char *peer;                     /* the client's address */
    gpointer upload;                      /* DV_OP_FLAG_UPLOAD: the body (DvUpload), borrowed */
    /* outputs */
    guint retry_after; /* seconds, 0: none */
} DvOpCall;

/* The answer (owned) or NULL with @error set.  For DV_OP_SHAPE_JOB the
 * job record; for the other shapes the response object. */
typedef JsonObject *(*DvOpHandler)(DvOpCall *call, GError **error);

struct _DvOp {
    const char *name;        /* "vm.start": unique */
    const char *method;      /* GET, POST, PATCH, DELETE */
    const char *path;        /* "/vms/{ref}/start": literal segments and {param}s */
    const char *privilege;   /* a dv_authz_privileges() name; NULL only for PUBLIC/SESSION */
    const char *kind;        /* the object kind the privilege is on: "vm" */
    const char *answer_kind; /* the kind of the answer's objects when not @kind
                              * ("catalog_machine"): storage redaction */
    DvOpTarget target;
    DvKind object;            /* the engine kind operated on; DV_KIND_LAST: none */
    const char *target_field; /* TARGET_PATH: the parameter; TARGET_PARENT: the body field */
    DvKind parent_kind;       /* TARGET_PARENT: the kind @target_field names */
    const char *alt_field;    /* TARGET_PARENT: a second body field tried after the first */
    DvKind alt_kind;
    /* The body's fields (DV_OP_BODY_REQUIRED/OPTIONAL): the feature's own
     * spec array, the one its engine function checks; the daemon checks
     * the body against it before the handler (dv_op_check_body()).
     * tools/check-ops refuses a body-taking row without one. */
    const DvFieldSpec *fields;
    /* The query parameters a list takes, declared for the contract (their
     * values are the handler's to check).  NULL on a list of a kind: they
     * come from the kind's table (dv_core_list_query_to_json()). */
    const DvFieldSpec *query;
    /* A body field naming a Run As account the operation makes use of: the
     * caller needs run_as.use on it too (dv_authz_check_run_as_use()). */
    const char *run_as_field;
    DvOpLock lock;
    const char *const *job_kinds; /* NULL-terminated, or NULL: submits none */
    DvOpShape shape;
    DvOpBody body;
    DvOpFlags flags;
    DvOpHandler handler;
};

/* Registers @n rows (static, borrowed for the engine's life). */
void dv_core_add_ops(DvEngine *engine, const DvOp *ops, gsize n);

/* Every registered row, in registration order (borrowed). */
const DvOp *const *dv_core_get_ops(DvEngine *engine, guint *ret_n);

/* The row matching @method on the path segments @seg (@n of them,
 * unescaped, without the /api/v1 prefix), or NULL:
 * - a path no row has: DV_ERROR_NOT_FOUND;
 * - a path some row has with another method: DV_ERROR_NOT_FOUND with
 *   *@ret_allow set to the allowed methods ("GET, POST", owned); the
 *   daemon keeps the v1 contract's 404 and adds an Allow header
 *   (docs/DECISIONS.md, "Wrong method").
 * Literal segments beat parameters (/catalogs/x/images before
 * /catalogs/{ref}/{sub}); debug rows count only when debug is enabled.
 * @ret_params receives the parameters (borrowed from @seg). */
const DvOp *dv_core_find_op(DvEngine *engine, const char *method, char **seg, guint n,
                            const char **ret_params, char **ret_allow, GError **error);

/* Checks @body (may be NULL: no body) against @op's field spec: unknown
 * fields, wrong types and missing required fields are
 * DV_ERROR_INVALID_ARGUMENT naming the field, as dv_json_check_fields()
 * words them.  TRUE when @op declares no spec. */
gboolean dv_op_check_body(const DvOp *op, JsonObject *body, GError **error);

/* The value of path parameter @name in @call (borrowed), or NULL. */
const char *dv_op_call_param(const DvOpCall *call, const char *name);

/* The table as JSON for tools/check-ops and the docs: [{name, method,
 * path, privilege, kind, target, target_field, lock, job_kinds[], shape,
 * body, fields[], query[], public, debug}] (owned); body is "ignored",
 * "none", "required" or "optional", fields and query are
 * dv_json_field_specs_to_json() arrays (fields null when the row takes no
 * body or declares no spec). */
JsonArray *dv_core_ops_to_json(DvEngine *engine);

const char *dv_op_target_to_string(DvOpTarget target);
const char *dv_op_lock_to_string(DvOpLock lock);
const char *dv_op_shape_to_string(DvOpShape shape);
const char *dv_op_body_to_string(DvOpBody body);

G_END_DECLS
