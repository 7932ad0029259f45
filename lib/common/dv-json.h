/* JSON helpers: bounded parsing and strict field checking.
 *
 * Every request body goes through dv_json_parse_object() (size and nesting
 * caps) and dv_json_check_fields() (unknown fields, wrong types, missing
 * required fields are errors that name the field).
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define DV_JSON_MAX_BODY (1024 * 1024)
#define DV_JSON_MAX_DEPTH 32

/* Parses @data as a JSON object.  Fails with DV_ERROR_TOO_LARGE when @len
 * exceeds @max_len and DV_ERROR_INVALID_ARGUMENT for malformed JSON, a
 * nesting deeper than @max_depth, or a top level that is not an object. */
JsonObject *dv_json_parse_object(const char *data, gsize len, gsize max_len,
                                 guint max_depth, GError **error);
JsonNode *dv_json_parse(const char *data, gsize len, gsize max_len,
                        guint max_depth, GError **error);

typedef enum {
    DV_FIELD_STRING,
    DV_FIELD_INT,
    DV_FIELD_BOOL,
    DV_FIELD_OBJECT,
    DV_FIELD_ARRAY,
    DV_FIELD_STRING_OR_NULL,
    DV_FIELD_INT_OR_NULL,
} DvFieldType;

/* One input field of a request body or one query parameter: the contract
 * of an operation (DvOp.fields, DvOp.query; droverd --dump-ops).
 *
 * dv_json_check_fields() enforces the name, the type and @required.  The
 * members after @required only declare, for the contract, limits that the
 * operation's own validation already enforces with its own message
 * (dv_validate_*()); they are optional, so a spec written as
 * { "name", DV_FIELD_STRING, TRUE } stays valid.  A limit is declared only
 * where the code enforces it: /api/v1 is a contract (docs/API.md). */
typedef struct {
    const char *name;
    DvFieldType type;
    gboolean required;
    const char *description;   /* one line, or NULL */
    gsize max_len;             /* strings: at most this many bytes; 0: no limit declared */
    gint64 min;                /* integers: the range [min, max] when min < max */
    gint64 max;
    const char *const *values; /* strings: the allowed values (NULL-terminated), or NULL */
} DvFieldSpec;

/* Checks @obj against @specs (terminated by a spec with name NULL).
 * @path prefixes field names in errors ("disks[0]."), may be NULL. */
gboolean dv_json_check_fields(JsonObject *obj, const DvFieldSpec *specs,
                              const char *path, GError **error);

/* @specs as the contract shows it (owned): [{name, type, nullable,
 * required, description?, max_length?, minimum?, maximum?, enum?}], the
 * type one of "string", "integer", "boolean", "object", "array". */
JsonArray *dv_json_field_specs_to_json(const DvFieldSpec *specs);

/* Getters that return @def when the member is absent or null. */
const char *dv_json_get_string(JsonObject *obj, const char *name, const char *def);
gint64 dv_json_get_int(JsonObject *obj, const char *name, gint64 def);
gboolean dv_json_get_bool(JsonObject *obj, const char *name, gboolean def);
JsonObject *dv_json_get_object(JsonObject *obj, const char *name);
JsonArray *dv_json_get_array(JsonObject *obj, const char *name);

char *dv_json_object_to_string(JsonObject *obj, gboolean pretty);
char *dv_json_node_to_string(JsonNode *node, gboolean pretty);
/* Wraps @obj, taking over the caller's reference to it. */
JsonNode *dv_json_node_new_object(JsonObject *obj);

/* json_node_copy() shares objects, arrays and even string and number
 * values (with reference counts that are not atomic); this copies all of
 * them, so the copy may go to another thread. */
JsonNode *dv_json_node_deep_copy(JsonNode *node);

/* Parses a JSON object stored as text (a database column); NULL text or
 * an empty string gives an empty object. */
JsonObject *dv_json_object_from_text(const char *text, GError **error);

/* Microseconds since the epoch as the API shows times: ISO 8601, UTC,
 * with microseconds ("2026-12-07T06:09:10.103648Z"); owned. */
char *dv_json_format_time(gint64 usec);

G_END_DECLS
