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

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/drover/common/json/parse", test_parse);
    g_test_add_func("/drover/common/json/fields", test_fields);
    return g_test_run();
}
