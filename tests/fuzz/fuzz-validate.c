#define G_LOG_DOMAIN "DvFuzzValidate"

/* The input rules of lib/common/dv-validate.h and dv_text_excerpt().
 *
 * Input: byte 0 chooses the function, byte 1 a size limit, the rest is the
 * text (cut at its first NUL, as a C string would be).  Properties
 * checked: what dv_validate_name() accepts is 1..DV_NAME_MAX characters of
 * [A-Za-z0-9._-]; what dv_validate_text() accepts is valid UTF-8 within
 * the limit; dv_text_excerpt() always returns valid UTF-8 of at most
 * max + 3 bytes ("…") with no control character; every error is a
 * DV_ERROR with a valid UTF-8 message naming the field. */

#include "dv-error.h"
#include "dv-validate.h"
#include "fuzz.h"

static void
dv_fuzz_check_result(gboolean ok, GError *error)
{
    if (ok) {
        DV_FUZZ_CHECK(error == NULL);
        return;
    }
    DV_FUZZ_CHECK(error != NULL && error->domain == DV_ERROR);
    DV_FUZZ_CHECK(g_utf8_validate(error->message, -1, NULL));
    DV_FUZZ_CHECK(g_strcmp0(dv_error_get_field(error), "f") == 0);
}

static void
dv_fuzz_excerpt(const char *text, gsize max)
{
    g_autofree char *out = dv_text_excerpt(text, max);

    DV_FUZZ_CHECK(out != NULL);
    DV_FUZZ_CHECK(g_utf8_validate(out, -1, NULL));
    DV_FUZZ_CHECK(strlen(out) <= max + 3);
    for (const char *p = out; *p != '\0'; p++)
        DV_FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;
    gsize max;
    gboolean ok;

    if (size < 2 || size > DV_FUZZ_MAX_INPUT)
        return 0;
    max = data[1];
    text = dv_fuzz_strndup(data + 2, size - 2);

    switch (data[0] % 6) {
    case 0:
        ok = dv_validate_name("f", text, &error);
        dv_fuzz_check_result(ok, error);
        if (ok) {
            gsize len = strlen(text);
            DV_FUZZ_CHECK(len >= 1 && len <= DV_NAME_MAX);
            DV_FUZZ_CHECK(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                       "0123456789._-") == len);
            DV_FUZZ_CHECK(text[0] != '.' && text[0] != '_' && text[0] != '-');
        }
        break;
    case 1:
        ok = dv_validate_text("f", text, max * 16, &error);
        dv_fuzz_check_result(ok, error);
        if (ok)
            DV_FUZZ_CHECK(strlen(text) <= max * 16 && g_utf8_validate(text, -1, NULL));
        break;
    case 2:
        ok = dv_validate_libvirt_uri("f", text, &error);
        dv_fuzz_check_result(ok, error);
        if (ok)
            DV_FUZZ_CHECK(strlen(text) <= DV_URI_MAX);
        break;
    case 3:
        ok = dv_validate_id("f", text, &error);
        dv_fuzz_check_result(ok, error);
        if (ok)
            DV_FUZZ_CHECK(strlen(text) == 36);
        break;
    case 4: {
        /* A value and a range from the text, as a query parser would. */
        gint64 value = g_ascii_strtoll(text, NULL, 10);
        gint64 lo = -(gint64)max * 1000;
        gint64 hi = (gint64)max * 1000;
        ok = dv_validate_range("f", value, lo, hi, &error);
        dv_fuzz_check_result(ok, error);
        DV_FUZZ_CHECK(ok == (value >= lo && value <= hi));
        break;
    }
    default:
        dv_fuzz_excerpt(text, max);
        break;
    }
    return 0;
}
