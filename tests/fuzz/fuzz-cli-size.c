#define G_LOG_DOMAIN "DvFuzzCliSize"

/* What a user types after --memory, --disk or --size: the text goes
 * through dv_cli_parse_size_in().  Input: byte 0 bit 0 the unit (bytes or
 * MiB), the rest the text.  Properties checked: it returns TRUE if and
 * only if it set no error; a value is within the bounds and, parsed again
 * as written in the option's own unit, is the same value; an error is a
 * DV_ERROR naming the option, with a valid UTF-8 message when the input
 * was valid UTF-8. */

#include "dv-cli.h"
#include "dv-error.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;
    DvCliSizeUnit unit;
    const gint64 max = G_GINT64_CONSTANT(64) << 40;
    gint64 value = -1;
    gboolean ok;

    if (size < 1 || size > 256)
        return 0;
    unit = (data[0] & 1) ? DV_CLI_SIZE_MIB : DV_CLI_SIZE_BYTES;
    text = dv_fuzz_strndup(data + 1, size - 1);
    ok = dv_cli_parse_size_in("--size", text, unit, 1, max, &value, &error);
    DV_FUZZ_CHECK(ok == (error == NULL));
    if (ok) {
        g_autofree char *again = g_strdup_printf("%" G_GINT64_FORMAT, value);
        gint64 round = -1;
        DV_FUZZ_CHECK(value >= 1 && value <= max);
        DV_FUZZ_CHECK(dv_cli_parse_size_in("--size", again, unit, 1, max, &round, NULL));
        DV_FUZZ_CHECK(round == value);
        /* A plain number has no fraction: nothing is silently cut. */
        DV_FUZZ_CHECK(strchr(text, '.') == NULL || strpbrk(text, "KMGTkmgt") != NULL);
    } else {
        DV_FUZZ_CHECK(error->domain == DV_ERROR && error->code == DV_ERROR_INVALID_ARGUMENT);
        DV_FUZZ_CHECK(g_strcmp0(dv_error_get_field(error), "--size") == 0);
        DV_FUZZ_CHECK(value == -1);
        if (g_utf8_validate(text, -1, NULL))
            DV_FUZZ_CHECK(g_utf8_validate(error->message, -1, NULL));
    }
    return 0;
}
