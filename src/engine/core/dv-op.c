#define G_LOG_DOMAIN "DvOp"

#include "dv-op.h"
#include "dv-core.h"

#include <string.h>

void
dv_core_add_ops(DvEngine *engine, const DvOp *ops, gsize n)
{
    GPtrArray *table = dv_core(engine)->ops;
    for (gsize i = 0; i < n; i++) {
        g_return_if_fail(ops[i].name != NULL && ops[i].method != NULL && ops[i].path != NULL &&
                         ops[i].handler != NULL);
        g_ptr_array_add(table, (gpointer)&ops[i]);
    }
}

const DvOp *const *
dv_core_get_ops(DvEngine *engine, guint *ret_n)
{
    GPtrArray *table = dv_core(engine)->ops;
    *ret_n = table->len;
    return (const DvOp *const *)table->pdata;
}

/* Matches @path against @seg: the number of literal segments matched
 * (its specificity), or -1.  @ret_params gets the parameters. */
static int
dv_op_path_match(const char *path, char **seg, guint n, const char **ret_params)
{
    g_auto(GStrv) parts = g_strsplit(path + 1, "/", -1);
    int literal = 0;
    guint np = 0;

    if (g_strv_length(parts) != n)
        return -1;
    for (guint i = 0; i < n; i++) {
        if (parts[i][0] == '{') {
            if (np < DV_OP_PARAMS_MAX)
                ret_params[np++] = seg[i];
            continue;
        }
        if (strcmp(parts[i], seg[i]) != 0)
            return -1;
        literal++;
    }
    return literal;
}

const DvOp *
dv_core_find_op(DvEngine *engine, const char *method, char **seg, guint n, const char **ret_params,
                char **ret_allow, GError **error)
{
    GPtrArray *table = dv_core(engine)->ops;
    const DvOp *best = NULL;
    int best_score = -1;
    int path_score = -1;
    g_autoptr(GString) allow = NULL;
    const char *params[DV_OP_PARAMS_MAX] = { NULL };

    /* The most specific path first; among rows of that path, the method. */
    for (guint i = 0; i < table->len; i++) {
        const DvOp *op = table->pdata[i];
        const char *p[DV_OP_PARAMS_MAX] = { NULL };
        int score;
        if ((op->flags & DV_OP_FLAG_DEBUG) && !dv_core_debug_enabled())
            continue;
        score = dv_op_path_match(op->path, seg, n, p);
        if (score < 0 || score < path_score)
            continue;
        if (score > path_score) {
            path_score = score;
            best = NULL;
            best_score = -1;
            if (allow != NULL)
                g_string_truncate(allow, 0);
        }
        if (allow == NULL)
            allow = g_string_new(NULL);
        if (strstr(allow->str, op->method) == NULL)
            g_string_append_printf(allow, "%s%s", allow->len > 0 ? ", " : "", op->method);
        if (g_strcmp0(op->method, method) == 0 && score > best_score) {
            best = op;
            best_score = score;
            memcpy(params, p, sizeof(params));
        }
    }
    if (best != NULL) {
        memcpy(ret_params, params, sizeof(params));
        return best;
    }
    if (allow != NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "%s is not allowed here (allowed: %s)",
                    method, allow->str);
        if (ret_allow != NULL)
            *ret_allow = g_strdup(allow->str);
        return NULL;
    }
    {
        g_autofree char *safe = dv_text_excerpt(seg[0], 64);
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "no such API resource '%s'", safe);
    }
    return NULL;
}

gboolean
dv_op_check_body(const DvOp *op, JsonObject *body, GError **error)
{
    if (op->fields == NULL || body == NULL)
        return TRUE;
    return dv_json_check_fields(body, op->fields, NULL, error);
}

const char *
dv_op_call_param(const DvOpCall *call, const char *name)
{
    g_auto(GStrv) parts = g_strsplit(call->op->path + 1, "/", -1);
    guint np = 0;
    for (guint i = 0; parts[i] != NULL && np < DV_OP_PARAMS_MAX; i++) {
        gsize len = strlen(parts[i]);
        if (parts[i][0] != '{')
            continue;
        if (len == strlen(name) + 2 && strncmp(parts[i] + 1, name, len - 2) == 0)
            return call->params[np];
        np++;
    }
    return NULL;
}

const char *
dv_op_target_to_string(DvOpTarget target)
{
    static const char *const names[] = { "none", "global", "kind", "path", "parent" };
    return target < G_N_ELEMENTS(names) ? names[target] : "?";
}

const char *
dv_op_lock_to_string(DvOpLock lock)
{
    static const char *const names[] = { "none", "object", "parent", "catalog", "global" };
    return lock < G_N_ELEMENTS(names) ? names[lock] : "?";
}

const char *
dv_op_body_to_string(DvOpBody body)
{
    static const char *const names[] = { "ignored", "none", "required", "optional" };
    return body < G_N_ELEMENTS(names) ? names[body] : "?";
}

const char *
dv_op_shape_to_string(DvOpShape shape)
{
    static const char *const names[] = { "object", "list", "job", "created", "empty", "stream",
                                         "websocket", "text" };
    return shape < G_N_ELEMENTS(names) ? names[shape] : "?";
}

/* The kind a list row pages through: its object for a list of a kind, its
 * answer's kind for a list under another object (/catalogs/{ref}/machines,
 * which the handler filters on that object); DV_KIND_LAST when neither. */
static DvKind
dv_op_list_kind(const DvOp *op)
{
    if (op->target == DV_OP_TARGET_KIND)
        return op->object;
    for (DvKind k = 0; op->answer_kind != NULL && k < DV_KIND_LAST; k++)
        if (g_strcmp0(dv_core_authz_kind(k), op->answer_kind) == 0)
            return k;
    return DV_KIND_LAST;
}

JsonArray *
dv_core_ops_to_json(DvEngine *engine)
{
    GPtrArray *table = dv_core(engine)->ops;
    JsonArray *out = json_array_new();
    for (guint i = 0; i < table->len; i++) {
        const DvOp *op = table->pdata[i];
        JsonObject *o = json_object_new();
        JsonArray *kinds = json_array_new();
        json_object_set_string_member(o, "name", op->name);
        json_object_set_string_member(o, "method", op->method);
        json_object_set_string_member(o, "path", op->path);
        if (op->privilege != NULL)
            json_object_set_string_member(o, "privilege", op->privilege);
        else
            json_object_set_null_member(o, "privilege");
        if (op->kind != NULL)
            json_object_set_string_member(o, "kind", op->kind);
        else
            json_object_set_null_member(o, "kind");
        json_object_set_string_member(o, "target", dv_op_target_to_string(op->target));
        if (op->target_field != NULL)
            json_object_set_string_member(o, "target_field", op->target_field);
        json_object_set_string_member(o, "lock", dv_op_lock_to_string(op->lock));
        if (op->run_as_field != NULL)
            json_object_set_string_member(o, "run_as_field", op->run_as_field);
        for (guint k = 0; op->job_kinds != NULL && op->job_kinds[k] != NULL; k++)
            json_array_add_string_element(kinds, op->job_kinds[k]);
        json_object_set_array_member(o, "job_kinds", kinds);
        json_object_set_string_member(o, "shape", dv_op_shape_to_string(op->shape));
        json_object_set_string_member(o, "body", dv_op_body_to_string(op->body));
        if (op->fields != NULL)
            json_object_set_array_member(o, "fields", dv_json_field_specs_to_json(op->fields));
        else
            json_object_set_null_member(o, "fields");
        if (op->query != NULL)
            json_object_set_array_member(o, "query", dv_json_field_specs_to_json(op->query));
        else if (op->shape == DV_OP_SHAPE_LIST && dv_op_list_kind(op) < DV_KIND_LAST)
            json_object_set_array_member(o, "query", dv_core_list_query_to_json(dv_op_list_kind(op)));
        else
            json_object_set_array_member(o, "query", json_array_new());
        json_object_set_boolean_member(o, "public", (op->flags & DV_OP_FLAG_PUBLIC) != 0);
        json_object_set_boolean_member(o, "session", (op->flags & DV_OP_FLAG_SESSION) != 0);
        json_object_set_boolean_member(o, "debug", (op->flags & DV_OP_FLAG_DEBUG) != 0);
        json_array_add_object_element(out, o);
    }
    return out;
}
