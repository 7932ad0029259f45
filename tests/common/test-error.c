#define G_LOG_DOMAIN "TestError"

#include "dv-error.h"

#include <gio/gio.h>

static void
test_field(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GError) copy = NULL;

    dv_set_field_error(&error, DV_ERROR_INVALID_ARGUMENT, "vcpus", "vcpus: must be positive");
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "vcpus");
    g_assert_cmpuint(dv_error_to_http_status(error), ==, 400);
    g_assert_cmpint(dv_error_to_exit_code(error), ==, DV_EXIT_INVALID);
    /* The field survives copies and prefixes. */
    copy = g_error_copy(error);
    g_prefix_error(&copy, "spec: ");
    g_assert_cmpstr(dv_error_get_field(copy), ==, "vcpus");
    g_assert_cmpstr(copy->message, ==, "spec: vcpus: must be positive");
}

static void
test_table(void)
{
    for (int code = 0; code < DV_ERROR_LAST; code++) {
        const char *name = dv_error_code_to_string(code);
        g_autoptr(GError) e = g_error_new_literal(DV_ERROR, code, "x");
        g_assert_nonnull(name);
        g_assert_cmpint(dv_error_code_from_string(name), ==, code);
        g_assert_cmpuint(dv_error_to_http_status(e), >=, 400);
        g_assert_null(dv_error_get_field(e));
    }
    g_assert_cmpint(dv_error_code_from_string("no-such-code"), ==, DV_ERROR_INTERNAL);
}

static void
test_convert(void)
{
    g_autoptr(GError) e = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "gone");
    g_autoptr(GError) other = g_error_new_literal(G_MARKUP_ERROR, G_MARKUP_ERROR_PARSE, "bad");

    dv_error_convert(&e);
    g_assert_error(e, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_assert_cmpstr(e->message, ==, "gone");
    /* Converted errors carry DV_ERROR's private data safely. */
    g_assert_null(dv_error_get_field(e));
    dv_error_convert(&other);
    g_assert_error(other, DV_ERROR, DV_ERROR_INTERNAL);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/drover/common/error/field", test_field);
    g_test_add_func("/drover/common/error/table", test_table);
    g_test_add_func("/drover/common/error/convert", test_convert);
    return g_test_run();
}
