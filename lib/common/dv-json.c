#define G_LOG_DOMAIN "DvJson"

#include "dv-json.h"
#include "dv-error.h"
#include "dv-validate.h"

/* Scans nesting depth before json-glib sees the text: its parser recurses
 * per level, so a body of a million '[' must be refused up front. */
static gboolean
dv_json_check_depth(const char *data, gsize len, guint max_depth, GError **error)
{
    guint depth = 0;
    gboolean in_string = FALSE;

    for (gsize i = 0; i < len; i++) {
        char c = data[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = FALSE;
            continue;
        }
        if (c == '"') {
            in_string = TRUE;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL,
                                   "request body nests deeper than %u levels", max_depth);
                return FALSE;
            }
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return TRUE;
}

JsonNode *
dv_json_parse(const char *data, gsize len, gsize max_len, guint max_depth, GError **error)
{
    g_autoptr(JsonParser) parser = NULL;
    g_autoptr(GError) local = NULL;
    JsonNode *root;

    if (len > max_len) {
        dv_set_field_error(error, DV_ERROR_TOO_LARGE, NULL,
                           "request body is %" G_GSIZE_FORMAT " bytes, over the limit of %" G_GSIZE_FORMAT,
                           len, max_len);
        return NULL;
    }
    if (data == NULL || len == 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL, "request body is empty; a JSON object is required");
        return NULL;
    }
    if (!g_utf8_validate(data, len, NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL, "request body is not valid UTF-8");
        return NULL;
    }
    if (!dv_json_check_depth(data, len, max_depth, error))
        return NULL;
    parser = json_parser_new_immutable();
    if (!json_parser_load_from_data(parser, data, (gssize)len, &local)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL, "malformed JSON: %s", local->message);
        return NULL;
    }
    root = json_parser_get_root(parser);
    if (root == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL, "request body holds no JSON value");
        return NULL;
    }
    return json_node_copy(root);
}

JsonObject *
dv_json_parse_object(const char *data, gsize len, gsize max_len, guint max_depth, GError **error)
{
    g_autoptr(JsonNode) root = dv_json_parse(data, len, max_len, max_depth, error);

    if (root == NULL)
        return NULL;
    if (!JSON_NODE_HOLDS_OBJECT(root)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL, "request body must be a JSON object");
        return NULL;
    }
    return json_object_ref(json_node_get_object(root));
}

static const char *
dv_field_type_to_string(DvFieldType type)
{
    switch (type) {
    case DV_FIELD_STRING: return "a string";
    case DV_FIELD_STRING_OR_NULL: return "a string or null";
    case DV_FIELD_INT: return "an integer";
    case DV_FIELD_INT_OR_NULL: return "an integer or null";
    case DV_FIELD_BOOL: return "a boolean";
    case DV_FIELD_OBJECT: return "an object";
    case DV_FIELD_ARRAY: return "an array";
    }
    return "?";
}

static gboolean
dv_json_node_is_int(JsonNode *node)
{
    return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_INT64;
}

static gboolean
dv_json_node_matches(JsonNode *node, DvFieldType type)
{
    switch (type) {
    case DV_FIELD_STRING:
        return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING;
    case DV_FIELD_STRING_OR_NULL:
        return JSON_NODE_HOLDS_NULL(node) ||
               (JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING);
    case DV_FIELD_INT:
        return dv_json_node_is_int(node);
    case DV_FIELD_INT_OR_NULL:
        return JSON_NODE_HOLDS_NULL(node) || dv_json_node_is_int(node);
    case DV_FIELD_BOOL:
        return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_BOOLEAN;
    case DV_FIELD_OBJECT:
        return JSON_NODE_HOLDS_OBJECT(node);
    case DV_FIELD_ARRAY:
        return JSON_NODE_HOLDS_ARRAY(node);
    }
    return FALSE;
}

gboolean
dv_json_check_fields(JsonObject *obj, const DvFieldSpec *specs, const char *path, GError **error)
{
    JsonObjectIter iter;
    const char *name;
    JsonNode *node;
    const char *p = path != NULL ? path : "";

    json_object_iter_init(&iter, obj);
    while (json_object_iter_next(&iter, &name, &node)) {
        const DvFieldSpec *spec = NULL;
        for (const DvFieldSpec *s = specs; s->name != NULL; s++) {
            if (g_strcmp0(s->name, name) == 0) {
                spec = s;
                break;
            }
        }
        if (spec == NULL) {
            g_autofree char *field = g_strdup_printf("%s%s", p, name);
            g_autofree char *safe = dv_text_excerpt(field, 80);
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, safe, "unknown field '%s'", safe);
            return FALSE;
        }
        if (!dv_json_node_matches(node, spec->type)) {
            g_autofree char *field = g_strdup_printf("%s%s", p, name);
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "%s: must be %s",
                               field, dv_field_type_to_string(spec->type));
            return FALSE;
        }
    }
    for (const DvFieldSpec *s = specs; s->name != NULL; s++) {
        if (s->required && !json_object_has_member(obj, s->name)) {
            g_autofree char *field = g_strdup_printf("%s%s", p, s->name);
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "%s: is required", field);
            return FALSE;
        }
    }
    return TRUE;
}

const char *
dv_json_get_string(JsonObject *obj, const char *name, const char *def)
{
    JsonNode *node = obj != NULL ? json_object_get_member(obj, name) : NULL;
    if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING)
        return def;
    return json_node_get_string(node);
}

gint64
dv_json_get_int(JsonObject *obj, const char *name, gint64 def)
{
    JsonNode *node = obj != NULL ? json_object_get_member(obj, name) : NULL;
    if (node == NULL || !dv_json_node_is_int(node))
        return def;
    return json_node_get_int(node);
}

gboolean
dv_json_get_bool(JsonObject *obj, const char *name, gboolean def)
{
    JsonNode *node = obj != NULL ? json_object_get_member(obj, name) : NULL;
    if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_BOOLEAN)
        return def;
    return json_node_get_boolean(node);
}

JsonObject *
dv_json_get_object(JsonObject *obj, const char *name)
{
    JsonNode *node = obj != NULL ? json_object_get_member(obj, name) : NULL;
    if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node))
        return NULL;
    return json_node_get_object(node);
}

JsonArray *
dv_json_get_array(JsonObject *obj, const char *name)
{
    JsonNode *node = obj != NULL ? json_object_get_member(obj, name) : NULL;
    if (node == NULL || !JSON_NODE_HOLDS_ARRAY(node))
        return NULL;
    return json_node_get_array(node);
}

char *
dv_json_node_to_string(JsonNode *node, gboolean pretty)
{
    g_autoptr(JsonGenerator) gen = json_generator_new();
    json_generator_set_root(gen, node);
    json_generator_set_pretty(gen, pretty);
    return json_generator_to_data(gen, NULL);
}

char *
dv_json_object_to_string(JsonObject *obj, gboolean pretty)
{
    g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), obj);
    return dv_json_node_to_string(node, pretty);
}

JsonNode *
dv_json_node_new_object(JsonObject *obj)
{
    return json_node_init_object(json_node_alloc(), obj);
}

JsonObject *
dv_json_object_from_text(const char *text, GError **error)
{
    g_autoptr(JsonParser) parser = NULL;
    JsonNode *root;

    if (text == NULL || text[0] == '\0')
        return json_object_new();
    parser = json_parser_new_immutable();
    if (!json_parser_load_from_data(parser, text, -1, error)) {
        dv_error_convert(error);
        return NULL;
    }
    root = json_parser_get_root(parser);
    if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "stored JSON is not an object");
        return NULL;
    }
    return json_object_ref(json_node_get_object(root));
}

JsonNode *
dv_json_node_deep_copy(JsonNode *node)
{
    if (node == NULL)
        return NULL;
    if (JSON_NODE_HOLDS_OBJECT(node)) {
        JsonObject *src = json_node_get_object(node);
        JsonObject *dst = json_object_new();
        JsonObjectIter it;
        const char *name;
        JsonNode *member;
        json_object_iter_init(&it, src);
        while (json_object_iter_next(&it, &name, &member))
            json_object_set_member(dst, name, dv_json_node_deep_copy(member));
        {
            JsonNode *n = json_node_init_object(json_node_alloc(), dst);
            json_object_unref(dst); /* the node holds its own reference */
            return n;
        }
    }
    if (JSON_NODE_HOLDS_ARRAY(node)) {
        JsonArray *src = json_node_get_array(node);
        JsonArray *dst = json_array_sized_new(json_array_get_length(src));
        for (guint i = 0; i < json_array_get_length(src); i++)
            json_array_add_element(dst, dv_json_node_deep_copy(json_array_get_element(src, i)));
        {
            JsonNode *n = json_node_init_array(json_node_alloc(), dst);
            json_array_unref(dst);
            return n;
        }
    }
    return json_node_copy(node);
}
