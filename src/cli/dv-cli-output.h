/* Output for people and for scripts: aligned tables, key/value views,
 * human-readable sizes and the job progress bar.
 *
 * Renderers return owned strings so the tests can check them without a
 * terminal; the caller decides where they go.
 */
#pragma once

#include <stdio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef enum {
    DV_CLI_FORMAT_TABLE,
    DV_CLI_FORMAT_JSON,
} DvCliFormat;

typedef enum {
    DV_CLI_COL_TEXT,
    DV_CLI_COL_MIB,     /* an integer count of MiB */
    DV_CLI_COL_BYTES,   /* an integer count of bytes */
    DV_CLI_COL_PERCENT,
    DV_CLI_COL_COUNT, /* an array shown as its number of elements */
} DvCliColumnKind;

/* @path is a member name, a dotted path ("daemon.max_workers"), or
 * alternatives separated by '|' ("host_name|host"): the first present,
 * non-null one is shown. */
typedef struct {
    const char *header;
    const char *path;
    DvCliColumnKind kind;
} DvCliColumn;

typedef struct _DvCliTable DvCliTable;

DvCliTable *dv_cli_table_new(guint n_columns, const char *const *headers);
/* Copies @cells, which holds n_columns strings (NULL shows "-"). */
void dv_cli_table_add_row(DvCliTable *table, const char *const *cells);
guint dv_cli_table_get_n_rows(DvCliTable *table);
/* Columns padded to their widest cell (in characters, not bytes), two
 * spaces apart, no trailing blanks; the header is bold when @color. */
char *dv_cli_table_render(DvCliTable *table, gboolean color);
void dv_cli_table_free(DvCliTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvCliTable, dv_cli_table_free)

/* "512 MiB", "2 GiB", "1.5 GiB", "3.2 TiB"; negative gives "-". */
char *dv_cli_format_size_mib(gint64 mib);
/* "512 B", "4 KiB", "1.5 GiB" ... */
char *dv_cli_format_size_bytes(gint64 bytes);

/* A secret field as the server describes it (docs/API.md, "Secrets"):
 * {"set", "key_id", "readable", "reason"} and nothing else. */
gboolean dv_cli_secret_descriptor_is(JsonNode *node);
/* "set (k1)", "set, UNREADABLE: <reason>" or "-" when not set.  Tables
 * and key/value views show every descriptor this way, on one line. */
char *dv_cli_secret_descriptor_to_string(JsonObject *descriptor);

/* The cell text of one value of @obj at @path; "-" when absent or null. */
char *dv_cli_value_to_string(JsonObject *obj, const char *path, DvCliColumnKind kind);

/* A table of @items (objects) with @columns, terminated by a NULL header. */
char *dv_cli_items_render(JsonArray *items, const DvCliColumn *columns, gboolean color);

/* "key:  value" lines, nested objects flattened to dotted keys, arrays of
 * scalars joined with ", ", keys aligned.  Members named in @skip (NULL
 * terminated, may be NULL) are left out. */
char *dv_cli_object_render(JsonObject *obj, const char *const *skip);

/* "[#########.........]  45%  create volumes": @width is the number of
 * cells between the brackets; @percent is clamped to 0-100. */
char *dv_cli_progress_bar_render(gint64 percent, const char *step, guint width);

/* Draws job progress on @stream: a bar redrawn in place on a terminal, or
 * one line per new step otherwise.  It never goes backwards: the
 * percentage shown is the highest seen, a step is shown once (an event
 * replayed or late does not show an old step again), and after a line for
 * a failed or cancelled job nothing more. */
typedef struct _DvCliProgress DvCliProgress;

DvCliProgress *dv_cli_progress_new(FILE *stream, gboolean tty);
void dv_cli_progress_update(DvCliProgress *progress, JsonObject *job);
/* Ends the bar's line; safe to call twice. */
void dv_cli_progress_finish(DvCliProgress *progress);
void dv_cli_progress_free(DvCliProgress *progress);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvCliProgress, dv_cli_progress_free)

G_END_DECLS
