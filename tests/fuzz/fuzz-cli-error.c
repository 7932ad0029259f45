#define G_LOG_DOMAIN "DvFuzzCliError"

/* What a server sends the CLI in an error response: the body goes through
 * dv_cli_client_set_response_error().  Input: bytes 0-1 the HTTP status
 * (big-endian, kept in 100..599), byte 2 bit 0 whether the request path
 * was /session, the rest the body.  Property checked: the result is
 * always a DV_ERROR with a valid UTF-8 message. */

#include "dv-cli-client.h"
#include "dv-error.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) body = NULL;
    guint status;

    if (size < 3 || size > DV_FUZZ_MAX_INPUT)
        return 0;
    status = 100 + ((guint)data[0] << 8 | data[1]) % 500;
    body = g_bytes_new(data + 3, size - 3);
    dv_cli_client_set_response_error(&error, status, "Reason", body,
                                     (data[2] & 1) ? "/session" : "/vms");
    DV_FUZZ_CHECK(error != NULL && error->domain == DV_ERROR);
    DV_FUZZ_CHECK(g_utf8_validate(error->message, -1, NULL));
    return 0;
}
