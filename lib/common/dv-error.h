/* Drover's single error domain.
 *
 * Every fallible function in Drover reports a DV_ERROR.  Errors from
 * libvirt, SQLite, libpq, LDAP and GIO are converted where those libraries
 * are called and never travel upward in their own domains.  An error can
 * name the input field it is about (dv_error_get_field()), which the API
 * returns as "field" in its JSON error body.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define DV_ERROR (dv_error_quark())
GQuark dv_error_quark(void);

typedef enum {
    DV_ERROR_INTERNAL,          /* a bug or an unexpected failure: 500 */
    DV_ERROR_INVALID_ARGUMENT,  /* bad input: 400 */
    DV_ERROR_NOT_FOUND,         /* 404 */
    DV_ERROR_CONFLICT,          /* duplicate name, wrong state: 409 */
    DV_ERROR_AUTH_REQUIRED,     /* no or bad credentials: 401 */
    DV_ERROR_PERMISSION_DENIED, /* authenticated, not allowed: 403 */
    DV_ERROR_TOO_LARGE,         /* body or list over its cap: 413 */
    DV_ERROR_UNAVAILABLE,       /* a host, database or directory down: 503 */
    DV_ERROR_HOST_FAILED,       /* a hypervisor refused an operation: 502 */
    DV_ERROR_TIMEOUT,           /* 504 */
    DV_ERROR_CANCELLED,         /* job cancelled: 409 */
    DV_ERROR_NOT_SUPPORTED,     /* valid request this setup cannot do: 422 */
    DV_ERROR_SCHEMA,            /* database schema mismatch: 500 */
    DV_ERROR_SECRET_UNREADABLE, /* a stored secret cannot be opened: 500 */
    DV_ERROR_BUSY,              /* too many operations in flight: 429 */
    DV_ERROR_LAST
} DvErrorCode;

/* Sets @error like g_set_error() and records the input field it names.
 * The message should state the rule that was broken ("must be 1-64
 * characters"); the field is kept apart so callers can show both. */
void dv_set_field_error(GError **error, DvErrorCode code, const char *field,
                        const char *format, ...) G_GNUC_PRINTF(4, 5);

/* Borrowed; NULL when the error names no field or is not a DV_ERROR. */
const char *dv_error_get_field(const GError *error);

/* HTTP status for an error (any domain; foreign domains map to 500). */
guint dv_error_to_http_status(const GError *error);

/* Stable machine-readable name, e.g. "not-found". */
const char *dv_error_code_to_string(DvErrorCode code);
DvErrorCode dv_error_code_from_string(const char *str);

/* CLI exit codes (see docs/CLI.md). */
typedef enum {
    DV_EXIT_OK = 0,
    DV_EXIT_FAILURE = 1,      /* server or unexpected error */
    DV_EXIT_USAGE = 2,        /* bad command line */
    DV_EXIT_NOT_FOUND = 3,
    DV_EXIT_CONFLICT = 4,
    DV_EXIT_AUTH = 5,
    DV_EXIT_INVALID = 6,      /* the server rejected the input */
    DV_EXIT_UNAVAILABLE = 7,  /* server or host unreachable */
    DV_EXIT_JOB_FAILED = 8,   /* the job ran and failed or was cancelled */
} DvExitCode;

DvExitCode dv_error_to_exit_code(const GError *error);

/* Converts an error of a foreign domain (GIO, GLib, ...) into DV_ERROR,
 * keeping the message.  DV_ERROR errors pass through unchanged. */
void dv_error_convert(GError **perror);

G_END_DECLS
