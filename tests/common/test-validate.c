#define G_LOG_DOMAIN "TestValidate"

#include "dv-error.h"
#include "dv-validate.h"

static void
test_names(void)
{
    const char *good[] = { "a", "web-01", "db_2.prod", "A1", NULL };
    const char *bad[] = { "", "-lead", ".hidden", "has space", "slash/y", "quote'", "é", NULL };
    g_autofree char *long_name = g_strnfill(DV_NAME_MAX + 1, 'a');
    g_autofree char *max_name = g_strnfill(DV_NAME_MAX, 'a');
    g_autoptr(GError) error = NULL;

    for (int i = 0; good[i] != NULL; i++) {
        g_assert_true(dv_validate_name("name", good[i], &error));
        g_assert_no_error(error);
    }
    for (int i = 0; bad[i] != NULL; i++) {
        g_assert_false(dv_validate_name("name", bad[i], &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_assert_cmpstr(dv_error_get_field(error), ==, "name");
        g_clear_error(&error);
    }
    g_assert_true(dv_validate_name("name", max_name, NULL));
    g_assert_false(dv_validate_name("name", long_name, &error));
    g_assert_nonnull(g_strstr_len(error->message, -1, "at most 64"));
}

static void
test_ranges_and_uris(void)
{
    g_autoptr(GError) error = NULL;

    g_assert_true(dv_validate_range("vcpus", 1, 1, 8, NULL));
    g_assert_false(dv_validate_range("vcpus", -1, 1, 8, &error));
    g_assert_cmpstr(dv_error_get_field(error), ==, "vcpus");
    g_clear_error(&error);

    g_assert_true(dv_validate_libvirt_uri("uri", "qemu:///system", NULL));
    g_assert_true(dv_validate_libvirt_uri("uri", "qemu+tls://kvm1.example/system", NULL));
    g_assert_true(dv_validate_libvirt_uri("uri", "test:///default", NULL));
    g_assert_false(dv_validate_libvirt_uri("uri", "xen:///system", &error));
    g_assert_cmpstr(dv_error_get_field(error), ==, "uri");
    g_clear_error(&error);
    g_assert_false(dv_validate_libvirt_uri("uri", "not a uri", &error));
    g_clear_error(&error);
    g_assert_false(dv_validate_libvirt_uri("uri", "", &error));
    g_clear_error(&error);

    g_assert_true(dv_validate_text("description", "line\nline", 100, NULL));
    g_assert_false(dv_validate_text("description", "bell\a", 100, &error));
    g_clear_error(&error);
    g_assert_false(dv_validate_text("description", "\xc3\x28", 100, &error));
    g_clear_error(&error);
    g_assert_false(dv_validate_id("id", "nope", &error));
    g_assert_true(dv_validate_id("id", "123e4567-e89b-12d3-a456-426614174000", NULL));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/drover/common/validate/names", test_names);
    g_test_add_func("/drover/common/validate/ranges-uris", test_ranges_and_uris);
    return g_test_run();
}
