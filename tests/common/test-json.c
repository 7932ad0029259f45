#define G_LOG_DOMAIN "TestJson"

#include "dv-error.h"
#include "dv-json.h"

#include <string.h>

static const DvFieldSpec spec[] = {
    { "name", DV_FIELD_STRING, TRUE },
    { "vcpus", DV_FIELD_INT, FALSE },
    { "start", DV_FIELD_BOOL, FALSE },
    { "disks", DV_FIELD_ARRAY, FALSE },
    { "note", DV_FIELD_STRING_OR_NULL, FALSE },
    { NULL },
};

static JsonObject *
parse(const char *text, GError **error)
{
    return dv_json_parse_object(text, strlen(text), DV_JSON_MAX_BODY, DV_JSON_MAX_DEPTH, error);
}

static void
test_parse(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) ok = parse("{\"name\":\"a\"}", &error);
    g_autoptr(JsonObject) bad = NULL;
    g_autoptr(JsonObject) arr = NULL;
    g_autoptr(JsonObject) big = NULL;
    g_autofree char *deep = NULL;
    g_autoptr(GString) s = g_string_new(NULL);

    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(ok, "name", NULL), ==, "a");

    bad = parse("{\"name\":", &error);
    g_assert_null(bad);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);

    arr = parse("[1,2]", &error);
    g_assert_null(arr);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);

    big = dv_json_parse_object("{}", 2, 1, 4, &error);
    g_assert_null(big);
    g_assert_error(error, DV_ERROR, DV_ERROR_TOO_LARGE);
    g_clear_error(&error);

    /* A million brackets is refused before the recursive parser sees it. */
    for (int i = 0; i < 100000; i++)
        g_string_append_c(s, '[');
    g_assert_null(dv_json_parse(s->str, s->len, DV_JSON_MAX_BODY, DV_JSON_MAX_DEPTH, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(error->message, "nests deeper"));
    g_clear_error(&error);

    /* Brackets inside strings do not count. */
    deep = g_strdup("{\"name\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}");
    {
        g_autoptr(JsonNode) n = dv_json_parse(deep, strlen(deep), DV_JSON_MAX_BODY, 4, &error);
        g_assert_nonnull(n);
        g_assert_no_error(error);
    }

    g_assert_null(dv_json_parse("{\"a\":\"\xff\"}", 9, DV_JSON_MAX_BODY, 4, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
}

static void
test_fields(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) a = parse("{\"name\":\"x\",\"vcpus\":2,\"start\":true,\"note\":null}", &error);
    g_autoptr(JsonObject) b = parse("{\"name\":\"x\",\"bogus\":1}", &error);
    g_autoptr(JsonObject) c = parse("{\"name\":\"x\",\"vcpus\":\"2\"}", &error);
    g_autoptr(JsonObject) d = parse("{\"vcpus\":2}", &error);
    g_autoptr(JsonObject) e = parse("{\"name\":\"x\",\"vcpus\":2.5}", &error);

    g_assert_true(dv_json_check_fields(a, spec, NULL, &error));
    g_assert_no_error(error);

    g_assert_false(dv_json_check_fields(b, spec, NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "bogus");
    g_clear_error(&error);

    g_assert_false(dv_json_check_fields(c, spec, "disks[0].", &error));
    g_assert_cmpstr(dv_error_get_field(error), ==, "disks[0].vcpus");
    g_assert_nonnull(strstr(error->message, "integer"));
    g_clear_error(&error);

    g_assert_false(dv_json_check_fields(d, spec, NULL, &error));
    g_assert_cmpstr(dv_error_get_field(error), ==, "name");
    g_assert_nonnull(strstr(error->message, "required"));
    g_clear_error(&error);

    g_assert_false(dv_json_check_fields(e, spec, NULL, &error));
    g_assert_cmpstr(dv_error_get_field(error), ==, "vcpus");
}

/* Parses @text (which must be valid) and returns it with its deep copy. */
static JsonNode *
parse_with_copy(const char *text, JsonNode **ret_copy)
{
    g_autoptr(GError) error = NULL;
    JsonNode *orig = dv_json_parse(text, strlen(text), DV_JSON_MAX_BODY, DV_JSON_MAX_DEPTH, &error);

    g_assert_no_error(error);
    *ret_copy = dv_json_node_deep_copy(orig);
    return orig;
}

/* A deep copy shares nothing with its original, down to the strings and
 * numbers: the job manager hands such copies to other threads, and
 * json-glib's reference counts are not atomic. */
static void
test_deep_copy(void)
{
    g_autoptr(JsonNode) copy = NULL;
    g_autoptr(JsonNode) orig = parse_with_copy("{\"s\":\"text\",\"i\":7,\"d\":1.5,\"b\":true,\"n\":null,"
                                               "\"o\":{\"t\":\"inner\"},\"a\":[\"x\",2]}",
                                               &copy);
    g_autofree char *a = NULL;
    g_autofree char *b = NULL;
    JsonObject *oo;
    JsonObject *co;

    a = dv_json_node_to_string(orig, FALSE);
    b = dv_json_node_to_string(copy, FALSE);
    g_assert_cmpstr(a, ==, b);

    oo = json_node_get_object(orig);
    co = json_node_get_object(copy);
    g_assert_true(oo != co);
    g_assert_true(json_object_get_object_member(oo, "o") != json_object_get_object_member(co, "o"));
    g_assert_true(json_object_get_array_member(oo, "a") != json_object_get_array_member(co, "a"));
    /* json_node_copy() would return the same string: one shared value. */
    g_assert_true(json_object_get_string_member(oo, "s") != json_object_get_string_member(co, "s"));
    g_assert_true(json_object_get_string_member(json_object_get_object_member(oo, "o"), "t") !=
                  json_object_get_string_member(json_object_get_object_member(co, "o"), "t"));
    g_assert_true(json_array_get_string_element(json_object_get_array_member(oo, "a"), 0) !=
                  json_array_get_string_element(json_object_get_array_member(co, "a"), 0));
    g_assert_true(json_object_get_member(oo, "n") != json_object_get_member(co, "n"));
    g_assert_true(JSON_NODE_HOLDS_NULL(json_object_get_member(co, "n")));
    g_assert_cmpint(json_object_get_int_member(co, "i"), ==, 7);
    g_assert_cmpfloat(json_object_get_double_member(co, "d"), ==, 1.5);
    g_assert_true(json_object_get_boolean_member(co, "b"));

    /* Changing one never shows in the other. */
    json_object_set_string_member(co, "s", "changed");
    g_assert_cmpstr(json_object_get_string_member(oo, "s"), ==, "text");
}

/* Each thread keeps copying and dropping the leaves of its own object,
 * as rendering a job record does.  With values shared between the two
 * objects, the counts race and a value is freed while still in use. */
static gpointer
churn_leaves(gpointer data)
{
    JsonObject *obj = data;

    for (guint round = 0; round < 20000; round++) {
        JsonObjectIter it;
        const char *name;
        JsonNode *member;

        json_object_iter_init(&it, obj);
        while (json_object_iter_next(&it, &name, &member)) {
            JsonNode *c = json_node_copy(member);
            json_node_unref(c);
        }
    }
    return NULL;
}

static void
test_deep_copy_threads(void)
{
    g_autoptr(JsonNode) copy = NULL;
    g_autoptr(JsonNode) orig = parse_with_copy("{\"id\":\"a-job\",\"state\":\"queued\",\"created_at\":1,"
                                               "\"progress\":0,\"cancel_requested\":false}",
                                               &copy);
    GThread *other;

    other = g_thread_new("churn", churn_leaves, json_node_get_object(copy));
    churn_leaves(json_node_get_object(orig));
    g_thread_join(other);
    g_assert_cmpstr(json_object_get_string_member(json_node_get_object(copy), "state"), ==, "queued");
    g_assert_cmpstr(json_object_get_string_member(json_node_get_object(orig), "state"), ==, "queued");
}

/* json-glib cuts strings and names at a NUL and keeps the last of two
 * members of one name: each is refused, naming the member. */
static void
assert_refused(const char *text, const char *field, const char *in_message)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) obj = parse(text, &error);
    if (obj != NULL)
        g_error("accepted: %s", text);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(dv_error_get_field(error), ==, field);
    if (strstr(error->message, in_message) == NULL)
        g_error("'%s' gave '%s', not '%s'", text, error->message, in_message);
}

static void
assert_accepted(const char *text)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) obj = parse(text, &error);
    g_assert_no_error(error);
    g_assert_nonnull(obj);
}

static void
test_nul(void)
{
    assert_refused("{\"password\":\"abc\\u0000SECRET-TAIL\"}", "password", "NUL");
    assert_refused("{\"a\":{\"b\":[\"x\",\"y\\u0000\"]}}", "a.b[1]", "NUL");
    assert_refused("{\"disks\":[{\"name\":\"ok\"},{\"name\":\"\\u0000\"}]}", "disks[1].name", "NUL");
    assert_refused("{\"na\\u0000me\":\"x\"}", "na\\u0000me", "member name");
    assert_refused("{\"a\":{\"\\u0000\":1}}", "a.\\u0000", "member name");
    /* Only the NUL escape: other control escapes and a literal "\\u0000"
     * (an escaped backslash) stay accepted. */
    assert_accepted("{\"a\":\"x\\u0001\\n\\\\u0000\"}");
    assert_accepted("{\"a\":\"\\ud83d\\ude00\"}");
}

static void
test_duplicate(void)
{
    assert_refused("{\"name\":\"a\",\"name\":\"b\"}", "name", "more than once");
    /* The same name spelled two ways. */
    assert_refused("{\"name\":\"a\",\"n\\u0061me\":\"b\"}", "n\\u0061me", "more than once");
    assert_refused("{\"a\":[{\"x\":1},{\"x\":1,\"y\":2,\"x\":3}]}", "a[1].x", "more than once");
    assert_refused("{\"\\ud83d\\ude00\":1,\"\\ud83d\\ude00\":2}", "\\ud83d\\ude00", "more than once");
    /* The same name in two objects, or a name equal to a value, is fine. */
    assert_accepted("{\"a\":{\"x\":1},\"b\":{\"x\":1},\"x\":\"x\"}");
    assert_accepted("{\"a\":[{\"x\":1},{\"x\":2}],\"b\":[\"a\",\"a\"]}");
}

/* The contract form of a spec: types without "or null", nullability,
 * and only the limits a spec declares. */
static void
test_field_specs_to_json(void)
{
    static const char *const actions[] = { "start", "stop", NULL };
    static const DvFieldSpec declared[] = {
        { "name", DV_FIELD_STRING, TRUE, "its name", .max_len = 64 },
        { "count", DV_FIELD_INT_OR_NULL, FALSE, .min = 1, .max = 10 },
        { "action", DV_FIELD_STRING, FALSE, .values = actions },
        { "flag", DV_FIELD_BOOL, FALSE },
        { "list", DV_FIELD_ARRAY, FALSE },
        { "obj", DV_FIELD_OBJECT, FALSE },
        { NULL },
    };
    g_autoptr(JsonArray) out = dv_json_field_specs_to_json(declared);
    g_autoptr(JsonArray) empty = dv_json_field_specs_to_json(NULL);
    JsonObject *name, *count, *action, *flag;
    JsonArray *values;

    g_assert_cmpuint(json_array_get_length(out), ==, 6);
    g_assert_cmpuint(json_array_get_length(empty), ==, 0);
    name = json_array_get_object_element(out, 0);
    g_assert_cmpstr(json_object_get_string_member(name, "type"), ==, "string");
    g_assert_true(json_object_get_boolean_member(name, "required"));
    g_assert_false(json_object_get_boolean_member(name, "nullable"));
    g_assert_cmpint(json_object_get_int_member(name, "max_length"), ==, 64);
    g_assert_cmpstr(json_object_get_string_member(name, "description"), ==, "its name");
    g_assert_false(json_object_has_member(name, "minimum"));
    count = json_array_get_object_element(out, 1);
    g_assert_cmpstr(json_object_get_string_member(count, "type"), ==, "integer");
    g_assert_true(json_object_get_boolean_member(count, "nullable"));
    g_assert_false(json_object_get_boolean_member(count, "required"));
    g_assert_cmpint(json_object_get_int_member(count, "minimum"), ==, 1);
    g_assert_cmpint(json_object_get_int_member(count, "maximum"), ==, 10);
    g_assert_false(json_object_has_member(count, "max_length"));
    g_assert_false(json_object_has_member(count, "description"));
    action = json_array_get_object_element(out, 2);
    values = json_object_get_array_member(action, "enum");
    g_assert_cmpuint(json_array_get_length(values), ==, 2);
    g_assert_cmpstr(json_array_get_string_element(values, 1), ==, "stop");
    flag = json_array_get_object_element(out, 3);
    g_assert_cmpstr(json_object_get_string_member(flag, "type"), ==, "boolean");
    g_assert_false(json_object_has_member(flag, "enum"));
    g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(out, 4), "type"),
                    ==, "array");
    g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(out, 5), "type"),
                    ==, "object");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/drover/common/json/parse", test_parse);
    g_test_add_func("/drover/common/json/fields", test_fields);
    g_test_add_func("/drover/common/json/field-specs-to-json", test_field_specs_to_json);
    g_test_add_func("/drover/common/json/deep-copy", test_deep_copy);
    g_test_add_func("/drover/common/json/deep-copy-threads", test_deep_copy_threads);
    g_test_add_func("/drover/common/json/nul", test_nul);
    g_test_add_func("/drover/common/json/duplicate-member", test_duplicate);
    return g_test_run();
}
