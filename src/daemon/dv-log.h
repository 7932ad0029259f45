/* droverd's log writer (docs/METRICS.md, "Logs"): a level threshold and
 * one of three outputs, chosen once at start-up before any thread runs:
 * - the systemd journal with every structured field (DROVER_JOB_ID=,
 *   DROVER_OP=, DROVER_TARGET=, DROVER_ACTOR=, DROVER_HOST=) when stderr is
 *   the journal's stream (JOURNAL_STREAM) and the format is not given;
 * - text on stderr: time, level, domain, message, then the DROVER_ fields
 *   as KEY=value;
 * - JSON on stderr: one object per line, the same fields.
 * No secret reaches a log line: the messages are those the API shows
 * (job errors) or name objects only (tools/check-no-plaintext). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
    DV_LOG_FORMAT_AUTO, /* journal when stderr is it, else text */
    DV_LOG_FORMAT_TEXT,
    DV_LOG_FORMAT_JSON,
} DvLogFormat;

/* @level: "error", "warning", "info" or "debug" (NULL: "info"); @format:
 * "text" or "json" (NULL: auto).  Anything else is DV_ERROR_INVALID_ARGUMENT
 * naming @level_field or @format_field. */
gboolean dv_log_setup(const char *level, const char *format, const char *level_field,
                      const char *format_field, GError **error);

G_END_DECLS
