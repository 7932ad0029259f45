#define G_LOG_DOMAIN "DvJson"

#include "dv-json.h"
#include "dv-error.h"
#include "dv-validate.h"

#include <string.h>

static gint
dv_json_hex4(const char *data, gsize len, gsize pos)
{
    gint value = 0;

    if (pos + 4 > len)
        return -1;
    for (gsize k = pos; k < pos + 4; k++) {
        gint digit = g_ascii_xdigit_value(data[k]);
        if (digit < 0)
            return -1;
        value = value * 16 + digit;
    }
    return value;
}

/* At the '\\' of an escape in a string at *@pos; moves *@pos to its last
 * byte.  json-glib takes "\uzz" as a character, turns a lone surrogate
 * ("\ud800x") into bytes that are not UTF-8, and leaks the string when a
 * pair is malformed: a \u escape needs four hex digits, and a surrogate
 * comes as a high and a low one. */
static gboolean
dv_json_check_escape(const char *data, gsize len, gsize *pos, gboolean *nul)
{
    gsize i = *pos;
    gint unit;

    if (i + 1 >= len || data[i + 1] != 'u') {
        *pos = i + 1;
        return TRUE;
    }
    unit = dv_json_hex4(data, len, i + 2);
    if (unit < 0)
        return FALSE;
    if (unit == 0)
        *nul = TRUE;
    if (unit < 0xd800 || unit > 0xdfff) {
        *pos = i + 5;
        return TRUE;
    }
    if (unit >= 0xdc00 || i + 7 >= len || data[i + 6] != '\\' || data[i + 7] != 'u')
        return FALSE;
    unit = dv_json_hex4(data, len, i + 8);
    if (unit < 0xdc00 || unit > 0xdfff)
        return FALSE;
    *pos = i + 11;
    return TRUE;
}

/* Where the prescan is: one frame per open object or array, so that
 * errors name the member ("disks[0].name") as dv_json_check_fields()
 * does. */
typedef struct {
    gboolean is_array;
    guint index;          /* arrays: the element */
    gboolean expect_name; /* objects: the next string is a member name */
    const char *name;     /* objects: the current member's raw text */
    gsize name_len;
    GHashTable *names;    /* objects: decoded names seen so far */
} DvJsonFrame;

static void
dv_json_frame_clear(DvJsonFrame *f)
{
    g_clear_pointer(&f->names, g_hash_table_unref);
}

/* The member path down to frame @depth; raw (still escaped) names. */
static char *
dv_json_frames_path(const DvJsonFrame *frames, guint depth)
{
    g_autoptr(GString) path = g_string_new(NULL);
    for (guint d = 1; d <= depth; d++) {
        if (frames[d].is_array)
            g_string_append_printf(path, "[%u]", frames[d].index);
        else if (frames[d].name != NULL) {
            if (path->len > 0)
                g_string_append_c(path, '.');
            g_string_append_len(path, frames[d].name, (gssize)frames[d].name_len);
        }
    }
    return dv_text_excerpt(path->str, 120);
}

/* Decodes a member name that dv_json_check_escape() passed. */
static char *
dv_json_decode_name(const char *s, gsize len)
{
    GString *out = g_string_sized_new(len);
    for (gsize i = 0; i < len; i++) {
        gint unit;
        if (s[i] != '\\' || i + 1 >= len) {
            g_string_append_c(out, s[i]);
            continue;
        }
        i++;
        switch (s[i]) {
        case 'b': g_string_append_c(out, '\b'); break;
        case 'f': g_string_append_c(out, '\f'); break;
        case 'n': g_string_append_c(out, '\n'); break;
        case 'r': g_string_append_c(out, '\r'); break;
        case 't': g_string_append_c(out, '\t'); break;
        case 'u':
            unit = dv_json_hex4(s, len, i + 1);
            i += 4;
            if (unit >= 0xd800 && unit < 0xdc00 && i + 6 < len + 0 && s[i + 1] == '\\') {
                gint low = dv_json_hex4(s, len, i + 3);
                unit = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
                i += 6;
            }
            g_string_append_unichar(out, (gunichar)unit);
            break;
        default: g_string_append_c(out, s[i]); break; /* " \\ / */
        }
    }
    return g_string_free(out, FALSE);
}

/* A string just ended at @data[@start, @end): a member name when an
 * object waits for one.  json-glib would cut a name or value at a NUL and
 * keep the last of two members of one name: both are refused here. */
static gboolean
dv_json_prescan_string(const char *data, gsize start, gsize end, gboolean nul,
                       DvJsonFrame *frames, guint depth, GError **error)
{
    DvJsonFrame *top = depth > 0 ? &frames[depth] : NULL;

    if (top != NULL && !top->is_array && top->expect_name) {
        g_autofree char *name = NULL;
        top->expect_name = FALSE;
        top->name = data + start;
        top->name_len = end - start;
        if (nul) {
            g_autofree char *field = dv_json_frames_path(frames, depth);
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                               "%s: a member name must not contain a NUL character (\\u0000)",
                               field);
            return FALSE;
        }
        name = dv_json_decode_name(data + start, end - start);
        if (top->names == NULL)
            top->names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        if (!g_hash_table_add(top->names, g_steal_pointer(&name))) {
            g_autofree char *field = dv_json_frames_path(frames, depth);
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                               "%s: given more than once in one object", field);
            return FALSE;
        }
        return TRUE;
    }
    if (nul) {
        g_autofree char *field = dv_json_frames_path(frames, depth);
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field[0] != '\0' ? field : NULL,
                           "%s%sa string must not contain a NUL character (\\u0000)", field,
                           field[0] != '\0' ? ": " : "");
        return FALSE;
    }
    return TRUE;
}

/* Checks the text before json-glib sees it, which is more lenient than
 * JSON and has costs of its own:
 * - its parser recurses per level, so a body of a million '[' must be
 *   refused up front;
 * - it takes comments and single-quoted strings, in which a '"' would
 *   hide brackets from the depth count here, and 0x1F hex numbers: only
 *   JSON's own characters are allowed outside strings;
 * - it takes "[1] [2]", keeping the first value and leaking the rest;
 * - it wraps integers outside gint64 (99999999999999999999 reads as -1);
 * - it mishandles lone surrogates (see dv_json_check_escape());
 * - it cuts strings and member names at a "\u0000" and keeps the last of
 *   duplicate members (see dv_json_prescan_string()). */
static gboolean
dv_json_prescan_frames(const char *data, gsize len, guint max_depth, DvJsonFrame *frames,
                       guint *ret_depth, GError **error)
{
    guint depth = 0;
    guint n_values = 0; /* values begun at the top level */

    for (gsize i = 0; i < len; *ret_depth = depth, i++) {
        char c = data[i];

        if (c == ',' && depth > 0) {
            if (frames[depth].is_array)
                frames[depth].index++;
            else
                frames[depth].expect_name = TRUE;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ':' || c == ',')
            continue;
        if (depth == 0 && c != '}' && c != ']' && ++n_values > 1) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL,
                               "malformed JSON: data after the end of the value");
            return FALSE;
        }
        if (c == '"') {
            gsize start = i + 1;
            gboolean nul = FALSE;
            for (i++; i < len && data[i] != '"'; i++) {
                if (data[i] != '\\')
                    continue;
                if (!dv_json_check_escape(data, len, &i, &nul)) {
                    dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL,
                                       "malformed JSON: bad \\u escape at byte %" G_GSIZE_FORMAT,
                                       i);
                    return FALSE;
                }
            }
            if (!dv_json_prescan_string(data, start, MIN(i, len), nul, frames, depth, error))
                return FALSE;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL,
                                   "request body nests deeper than %u levels", max_depth);
                return FALSE;
            }
            frames[depth] = (DvJsonFrame){ .is_array = c == '[', .expect_name = c == '{' };
        } else if (c == '}' || c == ']') {
            if (depth > 0)
                dv_json_frame_clear(&frames[depth--]);
        } else if (c == '-' || g_ascii_isdigit(c)) {
            gsize end = i + 1;
            gboolean is_int = TRUE;
            while (end < len && (g_ascii_isdigit(data[end]) || strchr(".eE+-", data[end]) != NULL)) {
                if (data[end] == '.' || data[end] == 'e' || data[end] == 'E')
                    is_int = FALSE;
                end++;
            }
            if (is_int && end - i > 18) {
                g_autofree char *number = g_strndup(data + i, end - i);
                if (!g_ascii_string_to_signed(number, 10, G_MININT64, G_MAXINT64, NULL, NULL)) {
                    dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL,
                                       "request body holds an integer out of range");
                    return FALSE;
                }
            }
            i = end - 1;
        } else if (c >= 'a' && c <= 'z') {
            gsize end = i;
            while (end < len && data[end] >= 'a' && data[end] <= 'z')
                end++;
            if (!((end - i == 4 && (memcmp(data + i, "true", 4) == 0 || memcmp(data + i, "null", 4) == 0)) ||
                  (end - i == 5 && memcmp(data + i, "false", 5) == 0))) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL,
                                   "malformed JSON: unexpected '%.*s'", (int)MIN(end - i, 16), data + i);
                return FALSE;
            }
            i = end - 1;
        } else {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL,
                               "malformed JSON: unexpected character at byte %" G_GSIZE_FORMAT, i);
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean
dv_json_prescan(const char *data, gsize len, guint max_depth, GError **error)
{
    g_autofree DvJsonFrame *frames = g_new0(DvJsonFrame, max_depth + 1);
    guint depth = 0;
    gboolean ok = dv_json_prescan_frames(data, len, max_depth, frames, &depth, error);

    for (guint d = 0; d <= MIN(depth, max_depth); d++)
        dv_json_frame_clear(&frames[d]);
    return ok;
}

/* Strings and member names must be UTF-8 (see dv_json_check_escape()),
 * checked again on the tree in case json-glib finds another way.
 * Recursion is bounded by the depth check above. */
static gboolean
dv_json_node_check(JsonNode *node)
{
    switch (json_node_get_node_type(node)) {
    case JSON_NODE_OBJECT: {
        JsonObjectIter iter;
        const char *name;
        JsonNode *member;
        json_object_iter_init(&iter, json_node_get_object(node));
        while (json_object_iter_next(&iter, &name, &member)) {
            if (!g_utf8_validate(name, -1, NULL) || !dv_json_node_check(member))
                return FALSE;
        }
        return TRUE;
    }
    case JSON_NODE_ARRAY: {
        JsonArray *arr = json_node_get_array(node);
        for (guint i = 0; i < json_array_get_length(arr); i++) {
            if (!dv_json_node_check(json_array_get_element(arr, i)))
                return FALSE;
        }
        return TRUE;
    }
    case JSON_NODE_VALUE:
        if (json_node_get_value_type(node) == G_TYPE_STRING)
            return g_utf8_validate(json_node_get_string(node), -1, NULL);
        return TRUE;
    case JSON_NODE_NULL:
        return TRUE;
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
    if (!dv_json_prescan(data, len, max_depth, error))
        return NULL;
    parser = json_parser_new_immutable();
    if (!json_parser_load_from_data(parser, data, (gssize)len, &local)) {
        /* json-glib quotes the offending text, which need not be UTF-8. */
        g_autofree char *safe = dv_text_excerpt(local->message, 200);
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL, "malformed JSON: %s", safe);
        return NULL;
    }
    root = json_parser_get_root(parser);
    if (root == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL, "request body holds no JSON value");
        return NULL;
    }
    if (!dv_json_node_check(root)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL,
                           "request body holds a string that is not UTF-8");
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

JsonArray *
dv_json_field_specs_to_json(const DvFieldSpec *specs)
{
    JsonArray *out = json_array_new();
    for (const DvFieldSpec *s = specs; s != NULL && s->name != NULL; s++) {
        JsonObject *o = json_object_new();
        const char *type = "string";
        switch (s->type) {
        case DV_FIELD_STRING:
        case DV_FIELD_STRING_OR_NULL: type = "string"; break;
        case DV_FIELD_INT:
        case DV_FIELD_INT_OR_NULL: type = "integer"; break;
        case DV_FIELD_BOOL: type = "boolean"; break;
        case DV_FIELD_OBJECT: type = "object"; break;
        case DV_FIELD_ARRAY: type = "array"; break;
        }
        json_object_set_string_member(o, "name", s->name);
        json_object_set_string_member(o, "type", type);
        json_object_set_boolean_member(o, "nullable", s->type == DV_FIELD_STRING_OR_NULL ||
                                                          s->type == DV_FIELD_INT_OR_NULL);
        json_object_set_boolean_member(o, "required", s->required);
        if (s->description != NULL)
            json_object_set_string_member(o, "description", s->description);
        if (s->max_len > 0)
            json_object_set_int_member(o, "max_length", (gint64)s->max_len);
        if (s->min < s->max) {
            json_object_set_int_member(o, "minimum", s->min);
            json_object_set_int_member(o, "maximum", s->max);
        }
        if (s->values != NULL) {
            JsonArray *values = json_array_new();
            for (guint i = 0; s->values[i] != NULL; i++)
                json_array_add_string_element(values, s->values[i]);
            json_object_set_array_member(o, "enum", values);
        }
        json_array_add_object_element(out, o);
    }
    return out;
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
    /* json_node_init_object() would add a reference of its own and leak
     * the caller's, which the header says this takes. */
    JsonNode *node = json_node_new(JSON_NODE_OBJECT);
    json_node_take_object(node, obj);
    return node;
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
        /* In the original's order: API output and stored rows keep it. */
        json_object_iter_init_ordered(&it, src);
        while (json_object_iter_next_ordered(&it, &name, &member))
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
    /* Not json_node_copy(): it shares the value (a string, a number)
     * under a reference count that is not atomic, so a "copy" handed to
     * another thread would still race with the original on every
     * replace and free (docs/DECISIONS.md, "Deep copies at thread
     * boundaries"). */
    if (JSON_NODE_HOLDS_NULL(node))
        return json_node_init_null(json_node_alloc());
    switch (json_node_get_value_type(node)) {
    case G_TYPE_INT64:
        return json_node_init_int(json_node_alloc(), json_node_get_int(node));
    case G_TYPE_DOUBLE:
        return json_node_init_double(json_node_alloc(), json_node_get_double(node));
    case G_TYPE_BOOLEAN:
        return json_node_init_boolean(json_node_alloc(), json_node_get_boolean(node));
    case G_TYPE_STRING:
        return json_node_init_string(json_node_alloc(), json_node_get_string(node));
    default:
        g_return_val_if_reached(json_node_init_null(json_node_alloc()));
    }
}

char *
dv_json_format_time(gint64 usec)
{
    g_autoptr(GDateTime) base = g_date_time_new_from_unix_utc(usec / G_USEC_PER_SEC);
    g_autoptr(GDateTime) dt = NULL;
    if (base == NULL)
        return g_strdup("invalid");
    dt = g_date_time_add(base, usec % G_USEC_PER_SEC);
    return g_date_time_format(dt, "%Y-%m-%dT%H:%M:%S.%fZ");
}
