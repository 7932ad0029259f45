#define G_LOG_DOMAIN "DvFuzzCliSse"

/* What a server sends the CLI: the job event stream, split into lines as
 * dv-cli-client.c does (any of \n, \r\n, \r ends a line) and fed to
 * dv_cli_sse_parser_feed(), each event's data then parsed as the client
 * parses it.  Properties checked: an event comes out only on a blank line
 * (or at the end of the stream), with a non-empty name; failures are
 * DV_ERRORs. */

#include "dv-cli-client.h"
#include "dv-error.h"
#include "dv-json.h"
#include "fuzz.h"

static void
dv_fuzz_feed(DvCliSseParser *parser, const char *line)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *event = NULL;
    g_autofree char *data = NULL;

    if (!dv_cli_sse_parser_feed(parser, line, &event, &data, &error)) {
        DV_FUZZ_CHECK(event == NULL && data == NULL);
        DV_FUZZ_CHECK(error == NULL || error->domain == DV_ERROR);
        return;
    }
    DV_FUZZ_CHECK(line[0] == '\0');
    DV_FUZZ_CHECK(event != NULL && event[0] != '\0' && data != NULL);
    if (data[0] != '\0') {
        g_autoptr(JsonNode) node =
            dv_json_parse(data, strlen(data), DV_CLI_MAX_RESPONSE, DV_CLI_MAX_DEPTH, &error);
        DV_FUZZ_CHECK(node != NULL || (error != NULL && error->domain == DV_ERROR));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_auto(DvCliSseParser) parser = { 0 };
    g_autofree char *text = NULL;
    const char *p;

    if (size > DV_FUZZ_MAX_INPUT)
        return 0;
    text = dv_fuzz_strndup(data, size);
    dv_cli_sse_parser_init(&parser);
    p = text;
    while (*p != '\0') {
        gsize n = strcspn(p, "\r\n");
        g_autofree char *line = g_strndup(p, n);
        dv_fuzz_feed(&parser, line);
        p += n;
        if (p[0] == '\r' && p[1] == '\n')
            p += 2;
        else if (*p != '\0')
            p++;
    }
    /* The client feeds "" at the end of the stream. */
    dv_fuzz_feed(&parser, "");
    return 0;
}
