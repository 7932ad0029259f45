#define G_LOG_DOMAIN "DvFuzzOpBodies"

/* Every operation's request body against its declared fields
 * (dv_op_check_body(), what droverd runs before any handler), over the op
 * table of a real engine on a SQLite store in a temp dir.
 *
 * Input: the first line names the operation ("vm.nic.add"; an unknown
 * name picks the operation by the line's length among those that declare
 * fields), the rest is the body as a client sends it.  Properties checked:
 * a body accepted has every required field and no member the operation
 * does not declare, each of the declared type; a refusal is a
 * DV_ERROR_INVALID_ARGUMENT with a valid UTF-8 message naming a field. */

#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-op.h"
#include "fuzz.h"

static DvEngine *dv_fuzz_engine;
static char *dv_fuzz_dir;
static GPtrArray *dv_fuzz_ops; /* const DvOp * that declare fields */

static void
dv_fuzz_cleanup(void)
{
    g_clear_pointer(&dv_fuzz_engine, dv_engine_free);
    g_clear_pointer(&dv_fuzz_ops, g_ptr_array_unref);
    if (dv_fuzz_dir != NULL) {
        const char *argv[] = { "rm", "-rf", "--", dv_fuzz_dir, NULL };
        g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
                     NULL);
        g_clear_pointer(&dv_fuzz_dir, g_free);
    }
}

static void
dv_fuzz_setup(void)
{
    g_autoptr(GError) error = NULL;
    const DvOp *const *ops;
    guint n = 0;
    DvEngineOptions o = { 0 };

    dv_fuzz_dir = g_dir_make_tmp("dv-fuzz-ops-XXXXXX", &error);
    if (dv_fuzz_dir == NULL)
        g_error("%s", error->message);
    o.state_dir = dv_fuzz_dir;
    o.job_workers = 1;
    o.no_recover = TRUE;
    dv_fuzz_engine = dv_engine_new(&o, &error);
    if (dv_fuzz_engine == NULL)
        g_error("cannot start an engine: %s", error->message);
    atexit(dv_fuzz_cleanup);
    dv_fuzz_ops = g_ptr_array_new();
    ops = dv_core_get_ops(dv_fuzz_engine, &n);
    for (guint i = 0; i < n; i++)
        if (ops[i]->fields != NULL)
            g_ptr_array_add(dv_fuzz_ops, (gpointer)ops[i]);
    if (dv_fuzz_ops->len == 0)
        g_error("no operation declares fields");
}

static const DvOp *
dv_fuzz_pick(const char *name, gsize len)
{
    for (guint i = 0; i < dv_fuzz_ops->len; i++) {
        const DvOp *op = g_ptr_array_index(dv_fuzz_ops, i);
        if (strlen(op->name) == len && strncmp(op->name, name, len) == 0)
            return op;
    }
    return g_ptr_array_index(dv_fuzz_ops, len % dv_fuzz_ops->len);
}

static gboolean
dv_fuzz_type_ok(const DvFieldSpec *spec, JsonNode *node)
{
    gboolean null = JSON_NODE_HOLDS_NULL(node);
    GType vt = JSON_NODE_HOLDS_VALUE(node) ? json_node_get_value_type(node) : G_TYPE_INVALID;

    switch (spec->type) {
    case DV_FIELD_STRING:
        return vt == G_TYPE_STRING;
    case DV_FIELD_STRING_OR_NULL:
        return null || vt == G_TYPE_STRING;
    case DV_FIELD_INT:
        return vt == G_TYPE_INT64;
    case DV_FIELD_INT_OR_NULL:
        return null || vt == G_TYPE_INT64;
    case DV_FIELD_BOOL:
        return vt == G_TYPE_BOOLEAN;
    case DV_FIELD_OBJECT:
        return JSON_NODE_HOLDS_OBJECT(node);
    case DV_FIELD_ARRAY:
        return JSON_NODE_HOLDS_ARRAY(node);
    }
    return FALSE;
}

static void
dv_fuzz_check_accepted(const DvOp *op, JsonObject *body)
{
    g_autoptr(GList) members = json_object_get_members(body);

    for (const DvFieldSpec *s = op->fields; s->name != NULL; s++) {
        if (s->required)
            DV_FUZZ_CHECK(json_object_has_member(body, s->name));
    }
    for (GList *l = members; l != NULL; l = l->next) {
        const DvFieldSpec *spec = NULL;
        for (const DvFieldSpec *s = op->fields; s->name != NULL; s++)
            if (strcmp(s->name, l->data) == 0)
                spec = s;
        DV_FUZZ_CHECK(spec != NULL);
        DV_FUZZ_CHECK(dv_fuzz_type_ok(spec, json_object_get_member(body, l->data)));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) root = NULL;
    const uint8_t *nl;
    const DvOp *op;
    gsize name_len;

    if (size > DV_FUZZ_MAX_INPUT)
        return 0;
    if (dv_fuzz_engine == NULL)
        dv_fuzz_setup();
    nl = memchr(data, '\n', size);
    name_len = nl != NULL ? (gsize)(nl - data) : size;
    op = dv_fuzz_pick((const char *)data, name_len);
    if (nl == NULL)
        return 0;
    root = dv_json_parse((const char *)nl + 1, size - name_len - 1, DV_FUZZ_MAX_INPUT, 32, NULL);
    if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root))
        return 0;
    if (dv_op_check_body(op, json_node_get_object(root), &error)) {
        DV_FUZZ_CHECK(error == NULL);
        dv_fuzz_check_accepted(op, json_node_get_object(root));
        return 0;
    }
    DV_FUZZ_CHECK(error != NULL && g_error_matches(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT));
    DV_FUZZ_CHECK(g_utf8_validate(error->message, -1, NULL));
    DV_FUZZ_CHECK(dv_error_get_field(error) != NULL && *dv_error_get_field(error) != '\0');
    return 0;
}
