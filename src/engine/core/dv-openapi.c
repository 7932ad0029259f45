#define G_LOG_DOMAIN "DvOpenApi"

#include "dv-openapi.h"
#include "dv-core.h"
#include "dv-op.h"

#include <string.h>

/* The job states a job record can hold (dv-jobs.c). */
static const char *const dv_openapi_job_states[] = {
    "queued", "running", "succeeded", "failed", "cancelled", NULL,
};

static JsonObject *
dv_openapi_ref(const char *name)
{
    JsonObject *o = json_object_new();
    g_autofree char *ref = g_strdup_printf("#/components/schemas/%s", name);
    json_object_set_string_member(o, "$ref", ref);
    return o;
}

static JsonArray *
dv_openapi_strings(const char *const *values)
{
    JsonArray *a = json_array_new();
    for (guint i = 0; values[i] != NULL; i++)
        json_array_add_string_element(a, values[i]);
    return a;
}

/* {type} or {type: [type, "null"]}. */
static JsonObject *
dv_openapi_typed(const char *type, gboolean nullable)
{
    JsonObject *o = json_object_new();
    if (nullable) {
        JsonArray *t = json_array_new();
        json_array_add_string_element(t, type);
        json_array_add_string_element(t, "null");
        json_object_set_array_member(o, "type", t);
    } else {
        json_object_set_string_member(o, "type", type);
    }
    return o;
}

/* One field of a dv_json_field_specs_to_json() array as a JSON Schema. */
static JsonObject *
dv_openapi_field_schema(JsonObject *field)
{
    const char *type = dv_json_get_string(field, "type", "string");
    JsonObject *s = dv_openapi_typed(type, dv_json_get_bool(field, "nullable", FALSE));
    JsonArray *values = dv_json_get_array(field, "enum");

    if (json_object_has_member(field, "description"))
        json_object_set_string_member(s, "description",
                                      dv_json_get_string(field, "description", ""));
    if (json_object_has_member(field, "max_length"))
        json_object_set_int_member(s, "maxLength", dv_json_get_int(field, "max_length", 0));
    if (json_object_has_member(field, "minimum")) {
        json_object_set_int_member(s, "minimum", dv_json_get_int(field, "minimum", 0));
        json_object_set_int_member(s, "maximum", dv_json_get_int(field, "maximum", 0));
    }
    if (values != NULL) {
        JsonArray *e = json_array_new();
        for (guint i = 0; i < json_array_get_length(values); i++)
            json_array_add_string_element(e, json_array_get_string_element(values, i));
        if (dv_json_get_bool(field, "nullable", FALSE))
            json_array_add_null_element(e);
        json_object_set_array_member(s, "enum", e);
    }
    return s;
}

/* A request body: an object of exactly the spec's fields (the daemon
 * refuses unknown ones). */
static JsonObject *
dv_openapi_body_schema(JsonArray *fields)
{
    JsonObject *s = json_object_new();
    JsonObject *props = json_object_new();
    JsonArray *required = json_array_new();

    json_object_set_string_member(s, "type", "object");
    for (guint i = 0; i < json_array_get_length(fields); i++) {
        JsonObject *f = json_array_get_object_element(fields, i);
        const char *name = dv_json_get_string(f, "name", "");
        json_object_set_object_member(props, name, dv_openapi_field_schema(f));
        if (dv_json_get_bool(f, "required", FALSE))
            json_array_add_string_element(required, name);
    }
    json_object_set_object_member(s, "properties", props);
    if (json_array_get_length(required) > 0)
        json_object_set_array_member(s, "required", required);
    else
        json_array_unref(required);
    json_object_set_boolean_member(s, "additionalProperties", FALSE);
    return s;
}

static JsonObject *
dv_openapi_json_content(JsonObject *schema)
{
    JsonObject *content = json_object_new();
    JsonObject *media = json_object_new();
    json_object_set_object_member(media, "schema", schema);
    json_object_set_object_member(content, "application/json", media);
    return content;
}

static JsonObject *
dv_openapi_response(const char *description, const char *schema_name)
{
    JsonObject *r = json_object_new();
    json_object_set_string_member(r, "description", description);
    if (schema_name != NULL)
        json_object_set_object_member(r, "content",
                                      dv_openapi_json_content(dv_openapi_ref(schema_name)));
    return r;
}

/* The schema name of @kind's records: its type in CamelCase
 * ("host-group": "HostGroup"); "Job" for jobs. */
static char *
dv_openapi_kind_schema_name(DvKind kind)
{
    g_auto(GStrv) words = g_strsplit(dv_core_kind_info(kind)->type, "-", -1);
    GString *name = g_string_new(NULL);

    for (guint i = 0; words[i] != NULL; i++) {
        if (words[i][0] == '\0')
            continue;
        g_string_append_c(name, g_ascii_toupper(words[i][0]));
        g_string_append(name, words[i] + 1);
    }
    return g_string_free(name, FALSE);
}

/* A column as the API renders it (dv_core's records): times (an integer
 * column named *_at) as ISO 8601 text, JSON columns as what they hold.
 * No column is declared NOT NULL in the table definitions, so each may be
 * null; what the schema holds firm is its name and type. */
static JsonObject *
dv_openapi_column_schema(const DvColumn *col)
{
    JsonObject *s = json_object_new();
    JsonArray *t = json_array_new();

    switch (col->type) {
    case DV_COL_TEXT:
        json_array_add_string_element(t, "string");
        break;
    case DV_COL_INT:
        json_array_add_string_element(t, g_str_has_suffix(col->name, "_at") ? "string" : "integer");
        break;
    case DV_COL_BOOL:
        json_array_add_string_element(t, "boolean");
        break;
    case DV_COL_JSON:
        json_array_add_string_element(t, "object");
        json_array_add_string_element(t, "array");
        break;
    }
    json_array_add_string_element(t, "null");
    json_object_set_array_member(s, "type", t);
    if (col->values != NULL && col->type == DV_COL_TEXT) {
        JsonArray *e = dv_openapi_strings(col->values);
        json_array_add_null_element(e);
        json_object_set_array_member(s, "enum", e);
    }
    return s;
}

/* What a kind's shaper (dv_core_set_shaper) changes in its records: a
 * column it takes out (@type NULL), or a member it adds, always present.
 * The contract test fails when a shaper and this table disagree. */
static const struct {
    DvKind kind;
    const char *member;
    const char *type; /* NULL: the column is not shown */
    gboolean nullable;
} dv_openapi_shaped[] = {
    /* dv_hosts_shape: one "limits" member, ours beside libvirtd's. */
    { DV_KIND_HOST, "max_connections", NULL, FALSE },
    { DV_KIND_HOST, "max_concurrent_operations", NULL, FALSE },
    { DV_KIND_HOST, "daemon_limits", NULL, FALSE },
    { DV_KIND_HOST, "limits", "object", FALSE },
    /* dv_secret_objects_shape_join_run_as: the account as {id, name}. */
    { DV_KIND_GUEST_OS_PROFILE, "domain_join_run_as_id", NULL, FALSE },
    { DV_KIND_GUEST_OS_PROFILE, "domain_join_run_as", "object", TRUE },
};

static gboolean
dv_openapi_column_hidden(DvKind kind, const char *column)
{
    for (gsize i = 0; i < G_N_ELEMENTS(dv_openapi_shaped); i++)
        if (dv_openapi_shaped[i].kind == kind && dv_openapi_shaped[i].type == NULL &&
            g_strcmp0(dv_openapi_shaped[i].member, column) == 0)
            return TRUE;
    return FALSE;
}

/* @kind's record: a Record with every column of its table as a required
 * member of its type, so that a renamed or dropped member fails the
 * contract (tests/api/openapi-contract.py), changed as its shaper
 * changes it (dv_openapi_shaped).  Other members are allowed. */
static JsonObject *
dv_openapi_kind_schema(DvKind kind)
{
    const DvKindInfo *info = dv_core_kind_info(kind);
    JsonObject *s = json_object_new();
    JsonArray *all = json_array_new();
    JsonObject *own = dv_openapi_typed("object", FALSE);
    JsonObject *props = json_object_new();
    JsonArray *req = json_array_new();
    g_autofree char *desc =
        g_strdup_printf("A %s: the columns of table %s (docs/API.md).", info->singular,
                        info->def->table);

    for (const DvColumn *c = info->def->columns; c->name != NULL; c++) {
        if (dv_openapi_column_hidden(kind, c->name))
            continue;
        json_object_set_object_member(props, c->name, dv_openapi_column_schema(c));
        json_array_add_string_element(req, c->name);
    }
    for (gsize i = 0; i < G_N_ELEMENTS(dv_openapi_shaped); i++) {
        if (dv_openapi_shaped[i].kind != kind || dv_openapi_shaped[i].type == NULL)
            continue;
        json_object_set_object_member(
            props, dv_openapi_shaped[i].member,
            dv_openapi_typed(dv_openapi_shaped[i].type, dv_openapi_shaped[i].nullable));
        json_array_add_string_element(req, dv_openapi_shaped[i].member);
    }
    json_object_set_object_member(own, "properties", props);
    json_object_set_array_member(own, "required", req);
    json_array_add_object_element(all, dv_openapi_ref("Record"));
    json_array_add_object_element(all, own);
    json_object_set_string_member(s, "description", desc);
    json_object_set_array_member(s, "allOf", all);
    return s;
}

/* Whether @op answers with its kind's own records, which carry an id:
 * GET /things (a page of them), GET /things/{ref} and a 201 create.  Other
 * objects (reports, a VM's snapshots, the session) are only objects.  No
 * row says so; the path does (docs/DECISIONS.md, "The OpenAPI document"). */
static char *
dv_openapi_record_schema(const DvOp *op)
{
    g_auto(GStrv) segs = g_strsplit(op->path + 1, "/", -1);
    guint n = g_strv_length(segs);
    gboolean record = FALSE;

    if (op->object == DV_KIND_LAST)
        return NULL;
    if (op->object == DV_KIND_JOB)
        return g_strdup("Job");
    if (op->shape == DV_OP_SHAPE_CREATED)
        record = n == 1;
    else if (g_strcmp0(op->method, "GET") != 0)
        record = FALSE;
    else if (op->shape == DV_OP_SHAPE_LIST && n == 1)
        record = TRUE;
    else if (op->shape == DV_OP_SHAPE_OBJECT && n == 2 && segs[1][0] == '{')
        record = TRUE;
    return record ? dv_openapi_kind_schema_name(op->object) : NULL;
}

static JsonObject *
dv_openapi_responses(const DvOp *op)
{
    JsonObject *rs = json_object_new();
    g_autofree char *record = dv_openapi_record_schema(op);
    g_autofree char *list = record != NULL ? g_strconcat(record, "List", NULL) : NULL;
    JsonObject *r;

    switch (op->shape) {
    case DV_OP_SHAPE_OBJECT:
        json_object_set_object_member(
            rs, "200", dv_openapi_response("The object.", record != NULL ? record : "Object"));
        break;
    case DV_OP_SHAPE_LIST:
        json_object_set_object_member(
            rs, "200", dv_openapi_response("A page of the list.", list != NULL ? list : "List"));
        break;
    case DV_OP_SHAPE_JOB:
        r = dv_openapi_response("Accepted: the job doing it.", "JobAccepted");
        {
            JsonObject *headers = json_object_new();
            JsonObject *location = json_object_new();
            json_object_set_string_member(location, "description", "/api/v1/jobs/{id} of the job");
            json_object_set_object_member(location, "schema", dv_openapi_typed("string", FALSE));
            json_object_set_object_member(headers, "Location", location);
            json_object_set_object_member(r, "headers", headers);
        }
        json_object_set_object_member(rs, "202", r);
        break;
    case DV_OP_SHAPE_CREATED:
        json_object_set_object_member(
            rs, "201", dv_openapi_response("The new object.", record != NULL ? record : "Object"));
        break;
    case DV_OP_SHAPE_EMPTY:
        json_object_set_object_member(rs, "200", dv_openapi_response("Done.", "Empty"));
        break;
    case DV_OP_SHAPE_STREAM: {
        JsonObject *content = json_object_new();
        JsonObject *media = json_object_new();
        JsonObject *schema = json_object_new();
        r = dv_openapi_response("The job's events (progress, then end) until it ends.", NULL);
        json_object_set_string_member(schema, "type", "string");
        json_object_set_object_member(media, "schema", schema);
        json_object_set_object_member(content, "text/event-stream", media);
        json_object_set_object_member(r, "content", content);
        json_object_set_object_member(rs, "200", r);
        break;
    }
    case DV_OP_SHAPE_WEBSOCKET:
        json_object_set_object_member(
            rs, "101",
            dv_openapi_response("Switching Protocols: the WebSocket (send the upgrade headers).",
                                NULL));
        break;
    case DV_OP_SHAPE_TEXT: {
        JsonObject *content = json_object_new();
        JsonObject *media = json_object_new();
        JsonObject *schema = json_object_new();
        r = dv_openapi_response("The text (GET /metrics: the Prometheus text format 0.0.4).",
                                NULL);
        json_object_set_string_member(schema, "type", "string");
        json_object_set_object_member(media, "schema", schema);
        json_object_set_object_member(content, "text/plain", media);
        json_object_set_object_member(r, "content", content);
        json_object_set_object_member(rs, "200", r);
        break;
    }
    }
    json_object_set_object_member(
        rs, "default", dv_openapi_response("An error (docs/API.md, \"Errors\").", "Error"));
    return rs;
}

static JsonObject *
dv_openapi_parameter(const char *name, const char *in, gboolean required, JsonObject *schema)
{
    JsonObject *p = json_object_new();
    json_object_set_string_member(p, "name", name);
    json_object_set_string_member(p, "in", in);
    json_object_set_boolean_member(p, "required", required);
    if (json_object_has_member(schema, "description")) {
        json_object_set_string_member(p, "description",
                                      dv_json_get_string(schema, "description", ""));
        json_object_remove_member(schema, "description");
    }
    json_object_set_object_member(p, "schema", schema);
    return p;
}

/* The operation object of @op; @row is its --dump-ops row (query specs
 * resolved from the kind tables there). */
static JsonObject *
dv_openapi_operation(const DvOp *op, JsonObject *row)
{
    JsonObject *o = json_object_new();
    JsonArray *params = json_array_new();
    JsonArray *tags = json_array_new();
    JsonArray *query = dv_json_get_array(row, "query");
    JsonArray *fields = dv_json_get_array(row, "fields");
    g_auto(GStrv) segs = g_strsplit(op->path + 1, "/", -1);
    const char *dot = strchr(op->name, '.');
    g_autofree char *tag = dot != NULL ? g_strndup(op->name, dot - op->name) : g_strdup(op->name);

    json_object_set_string_member(o, "operationId", op->name);
    json_array_add_string_element(tags, tag);
    json_object_set_array_member(o, "tags", tags);

    for (guint i = 0; segs[i] != NULL; i++) {
        gsize len = strlen(segs[i]);
        if (len > 2 && segs[i][0] == '{' && segs[i][len - 1] == '}') {
            g_autofree char *name = g_strndup(segs[i] + 1, len - 2);
            JsonObject *schema = dv_openapi_typed("string", FALSE);
            json_object_set_string_member(schema, "description",
                                          "An id, a unique id prefix or a name.");
            json_array_add_object_element(params, dv_openapi_parameter(name, "path", TRUE, schema));
        }
    }
    for (guint i = 0; query != NULL && i < json_array_get_length(query); i++) {
        JsonObject *f = json_array_get_object_element(query, i);
        json_array_add_object_element(
            params, dv_openapi_parameter(dv_json_get_string(f, "name", ""), "query",
                                         dv_json_get_bool(f, "required", FALSE),
                                         dv_openapi_field_schema(f)));
    }
    if (json_array_get_length(params) > 0)
        json_object_set_array_member(o, "parameters", params);
    else
        json_array_unref(params);

    if (op->flags & DV_OP_FLAG_UPLOAD) {
        JsonObject *rb = json_object_new();
        JsonObject *content = json_object_new();
        JsonObject *media = json_object_new();
        JsonObject *schema = json_object_new();
        json_object_set_string_member(schema, "type", "string");
        json_object_set_string_member(schema, "contentMediaType", "application/octet-stream");
        json_object_set_object_member(media, "schema", schema);
        json_object_set_object_member(content, "application/octet-stream", media);
        json_object_set_boolean_member(rb, "required", TRUE);
        json_object_set_object_member(rb, "content", content);
        json_object_set_object_member(o, "requestBody", rb);
    } else if ((op->body == DV_OP_BODY_REQUIRED || op->body == DV_OP_BODY_OPTIONAL) &&
               fields != NULL) {
        JsonObject *rb = json_object_new();
        json_object_set_boolean_member(rb, "required", op->body == DV_OP_BODY_REQUIRED);
        json_object_set_object_member(rb, "content",
                                      dv_openapi_json_content(dv_openapi_body_schema(fields)));
        json_object_set_object_member(o, "requestBody", rb);
    }

    json_object_set_object_member(o, "responses", dv_openapi_responses(op));
    if (op->flags & DV_OP_FLAG_PUBLIC) {
        json_object_set_array_member(o, "security", json_array_new());
    } else if (op->shape == DV_OP_SHAPE_WEBSOCKET) {
        /* A browser cannot set headers on a WebSocket: a ticket in the
         * query stands for the token that asked for it. */
        JsonArray *sec = json_array_new();
        JsonObject *bearer = json_object_new();
        JsonObject *ticket = json_object_new();
        json_object_set_array_member(bearer, "bearer", json_array_new());
        json_object_set_array_member(ticket, "ticket", json_array_new());
        json_array_add_object_element(sec, bearer);
        json_array_add_object_element(sec, ticket);
        json_object_set_array_member(o, "security", sec);
    }
    if (op->privilege != NULL)
        json_object_set_string_member(o, "x-drover-privilege", op->privilege);
    else
        json_object_set_string_member(o, "x-drover-privilege",
                                      (op->flags & DV_OP_FLAG_PUBLIC) ? "public" : "session");
    if (op->kind != NULL)
        json_object_set_string_member(o, "x-drover-kind", op->kind);
    json_object_set_string_member(o, "x-drover-lock", dv_op_lock_to_string(op->lock));
    if (op->job_kinds != NULL)
        json_object_set_array_member(o, "x-drover-job-kinds", dv_openapi_strings(op->job_kinds));
    return o;
}

static JsonObject *
dv_openapi_list_schema(const char *item)
{
    JsonObject *s = dv_openapi_typed("object", FALSE);
    JsonObject *props = json_object_new();
    JsonObject *p = dv_openapi_typed("array", FALSE);
    JsonArray *req = json_array_new();

    json_object_set_object_member(
        p, "items", item != NULL ? dv_openapi_ref(item) : dv_openapi_typed("object", FALSE));
    json_object_set_object_member(props, "items", p);
    p = dv_openapi_typed("string", TRUE);
    json_object_set_string_member(p, "description",
                                  "Pass as ?cursor= for the next page; null on the last.");
    json_object_set_object_member(props, "next_cursor", p);
    json_object_set_object_member(s, "properties", props);
    json_array_add_string_element(req, "items");
    json_object_set_array_member(s, "required", req);
    return s;
}

static JsonObject *
dv_openapi_schemas(void)
{
    JsonObject *schemas = json_object_new();
    JsonObject *s, *props, *p;
    JsonArray *req;

    /* Error: the daemon's dv_api_error_body(). */
    s = json_object_new();
    props = json_object_new();
    json_object_set_string_member(s, "type", "object");
    json_object_set_string_member(
        s, "description", "Every error: the code gives the HTTP status (docs/API.md, \"Errors\").");
    {
        JsonObject *inner = json_object_new();
        JsonObject *ip = json_object_new();
        JsonObject *code = dv_openapi_typed("string", FALSE);
        JsonArray *codes = json_array_new();
        for (int c = 0; c < DV_ERROR_LAST; c++)
            json_array_add_string_element(codes, dv_error_code_to_string(c));
        json_object_set_array_member(code, "enum", codes);
        json_object_set_string_member(inner, "type", "object");
        json_object_set_object_member(ip, "code", code);
        json_object_set_object_member(ip, "message", dv_openapi_typed("string", FALSE));
        json_object_set_object_member(ip, "field", dv_openapi_typed("string", TRUE));
        json_object_set_object_member(inner, "properties", ip);
        req = json_array_new();
        json_array_add_string_element(req, "code");
        json_array_add_string_element(req, "message");
        json_array_add_string_element(req, "field");
        json_object_set_array_member(inner, "required", req);
        json_object_set_object_member(props, "error", inner);
    }
    json_object_set_object_member(s, "properties", props);
    req = json_array_new();
    json_array_add_string_element(req, "error");
    json_object_set_array_member(s, "required", req);
    json_object_set_boolean_member(s, "additionalProperties", FALSE);
    json_object_set_object_member(schemas, "Error", s);

    /* Object: an API object; its members are the kind's (docs/API.md). */
    s = dv_openapi_typed("object", FALSE);
    json_object_set_object_member(schemas, "Object", s);

    /* Empty: 200 {}. */
    s = dv_openapi_typed("object", FALSE);
    json_object_set_int_member(s, "maxProperties", 0);
    json_object_set_object_member(schemas, "Empty", s);

    /* Record: an object of a kind, as GET /things/{ref} answers it: an
     * id, and times rendered as ISO 8601 text (the store keeps integers). */
    s = dv_openapi_typed("object", FALSE);
    props = json_object_new();
    json_object_set_object_member(props, "id", dv_openapi_typed("string", FALSE));
    json_object_set_object_member(s, "properties", props);
    props = json_object_new();
    p = dv_openapi_typed("string", TRUE);
    json_object_set_string_member(p, "format", "date-time");
    /* format is only an annotation in 2020-12: the pattern asserts it */
    json_object_set_string_member(
        p, "pattern", "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z$");
    json_object_set_object_member(props, "_at$", p);
    json_object_set_object_member(s, "patternProperties", props);
    req = json_array_new();
    json_array_add_string_element(req, "id");
    json_object_set_array_member(s, "required", req);
    json_object_set_object_member(schemas, "Record", s);

    /* Lists: a page and the cursor of the next one (docs/API.md, "Lists"). */
    json_object_set_object_member(schemas, "List", dv_openapi_list_schema(NULL));
    json_object_set_object_member(schemas, "JobList", dv_openapi_list_schema("Job"));
    for (int k = 0; k < DV_KIND_LAST; k++) {
        g_autofree char *name = NULL;
        g_autofree char *list = NULL;
        if (k == DV_KIND_JOB)
            continue;
        name = dv_openapi_kind_schema_name(k);
        list = g_strconcat(name, "List", NULL);
        json_object_set_object_member(schemas, name, dv_openapi_kind_schema(k));
        json_object_set_object_member(schemas, list, dv_openapi_list_schema(name));
    }

    /* Job: a job record (docs/API.md, "Jobs"). */
    s = dv_openapi_typed("object", FALSE);
    props = json_object_new();
    json_object_set_object_member(props, "id", dv_openapi_typed("string", FALSE));
    json_object_set_object_member(props, "kind", dv_openapi_typed("string", FALSE));
    p = dv_openapi_typed("string", FALSE);
    json_object_set_array_member(p, "enum", dv_openapi_strings(dv_openapi_job_states));
    json_object_set_object_member(props, "state", p);
    p = dv_openapi_typed("integer", FALSE);
    json_object_set_int_member(p, "minimum", 0);
    json_object_set_int_member(p, "maximum", 100);
    json_object_set_object_member(props, "progress", p);
    json_object_set_object_member(props, "steps", dv_openapi_typed("array", FALSE));
    json_object_set_object_member(props, "current_step", dv_openapi_typed("string", TRUE));
    json_object_set_object_member(props, "error", dv_openapi_typed("object", TRUE));
    json_object_set_object_member(s, "properties", props);
    req = json_array_new();
    json_array_add_string_element(req, "id");
    json_array_add_string_element(req, "kind");
    json_array_add_string_element(req, "state");
    json_object_set_array_member(s, "required", req);
    json_object_set_object_member(schemas, "Job", s);

    /* JobAccepted: 202 {job}. */
    s = dv_openapi_typed("object", FALSE);
    props = json_object_new();
    json_object_set_object_member(props, "job", dv_openapi_ref("Job"));
    json_object_set_object_member(s, "properties", props);
    req = json_array_new();
    json_array_add_string_element(req, "job");
    json_object_set_array_member(s, "required", req);
    json_object_set_boolean_member(s, "additionalProperties", FALSE);
    json_object_set_object_member(schemas, "JobAccepted", s);
    return schemas;
}

JsonObject *
dv_core_openapi_to_json(DvEngine *engine)
{
    JsonObject *doc = json_object_new();
    JsonObject *info = json_object_new();
    JsonObject *paths = json_object_new();
    JsonObject *components = json_object_new();
    JsonObject *schemes = json_object_new();
    JsonObject *bearer = json_object_new();
    JsonArray *servers = json_array_new();
    JsonObject *server = json_object_new();
    JsonArray *security = json_array_new();
    JsonObject *sec = json_object_new();
    g_autoptr(JsonArray) rows = dv_core_ops_to_json(engine);
    guint n = 0;
    const DvOp *const *ops = dv_core_get_ops(engine, &n);

    json_object_set_string_member(doc, "openapi", "3.1.0");
    json_object_set_string_member(info, "title", "Drover REST API");
    json_object_set_string_member(info, "version", DV_OPENAPI_API_VERSION);
    json_object_set_string_member(info, "description",
                                  "Generated from droverd's operation table (droverd "
                                  "--dump-openapi); the prose is docs/API.md.");
    json_object_set_object_member(doc, "info", info);
    json_object_set_string_member(server, "url", "/api/v1");
    json_array_add_object_element(servers, server);
    json_object_set_array_member(doc, "servers", servers);
    json_object_set_array_member(sec, "bearer", json_array_new());
    json_array_add_object_element(security, sec);
    json_object_set_array_member(doc, "security", security);

    for (guint i = 0; i < n; i++) {
        const DvOp *op = ops[i];
        JsonObject *item;
        g_autofree char *method = g_ascii_strdown(op->method, -1);
        if ((op->flags & DV_OP_FLAG_DEBUG) || i >= json_array_get_length(rows))
            continue;
        item = json_object_has_member(paths, op->path)
                   ? json_object_get_object_member(paths, op->path)
                   : NULL;
        if (item == NULL) {
            item = json_object_new();
            json_object_set_object_member(paths, op->path, item);
        }
        json_object_set_object_member(
            item, method, dv_openapi_operation(op, json_array_get_object_element(rows, i)));
    }
    json_object_set_object_member(doc, "paths", paths);

    json_object_set_string_member(bearer, "type", "http");
    json_object_set_string_member(bearer, "scheme", "bearer");
    json_object_set_string_member(bearer, "description",
                                  "A session token (POST /session) or an API token.");
    json_object_set_object_member(schemes, "bearer", bearer);
    {
        JsonObject *ticket = json_object_new();
        json_object_set_string_member(ticket, "type", "apiKey");
        json_object_set_string_member(ticket, "in", "query");
        json_object_set_string_member(ticket, "name", "ticket");
        json_object_set_string_member(ticket, "description",
                                      "A console ticket (POST /vms/{ref}/console-tickets), once.");
        json_object_set_object_member(schemes, "ticket", ticket);
    }
    json_object_set_object_member(components, "securitySchemes", schemes);
    json_object_set_object_member(components, "schemas", dv_openapi_schemas());
    json_object_set_object_member(doc, "components", components);
    return doc;
}
