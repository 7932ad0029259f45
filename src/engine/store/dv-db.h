/* Low-level database access: one interface, two backends.
 *
 * SQLite (embedded default, WAL) and PostgreSQL (selected by a
 * "postgresql://" or "postgres://" URI) behind the same calls.  SQL is
 * written once in the common dialect with '?' placeholders; the PostgreSQL
 * backend rewrites them to $1, $2, ...  Only this folder includes sqlite3.h
 * or libpq-fe.h.
 *
 * A DvDb is safe to use from several threads: calls are serialised on one
 * connection per DvDb.  A transaction holds the connection for the calling
 * thread until it ends, so other threads wait (never across a libvirt or
 * LDAP call: callers do remote work outside transactions).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
    DV_DB_SQLITE,
    DV_DB_POSTGRESQL,
} DvDbBackend;

typedef enum {
    DV_SQL_NULL,
    DV_SQL_INT,
    DV_SQL_TEXT,
    DV_SQL_DOUBLE,
} DvSqlType;

typedef struct {
    DvSqlType type;
    gint64 i;
    double d;
    const char *s; /* borrowed for the duration of the call */
} DvSqlParam;

#define DV_SQL_TEXT_P(x) ((DvSqlParam){ .type = ((x) != NULL ? DV_SQL_TEXT : DV_SQL_NULL), .s = (x) })
#define DV_SQL_INT_P(x) ((DvSqlParam){ .type = DV_SQL_INT, .i = (gint64)(x) })
#define DV_SQL_DOUBLE_P(x) ((DvSqlParam){ .type = DV_SQL_DOUBLE, .d = (x) })
#define DV_SQL_NULL_P ((DvSqlParam){ .type = DV_SQL_NULL })
/* dv_db_exec(db, sql, DV_SQL_ARGS(DV_SQL_TEXT_P(a), DV_SQL_INT_P(b)), NULL, &error) */
#define DV_SQL_ARGS(...) ((const DvSqlParam[]){ __VA_ARGS__ }), \
    (guint)(sizeof((const DvSqlParam[]){ __VA_ARGS__ }) / sizeof(DvSqlParam))
#define DV_SQL_NO_ARGS NULL, 0

/* A fully read result set.  Values are kept as text (NULL for SQL NULL);
 * integers are parsed on access. */
typedef struct _DvSqlRows DvSqlRows;

guint dv_sql_rows_get_n_rows(const DvSqlRows *rows);
guint dv_sql_rows_get_n_columns(const DvSqlRows *rows);
const char *dv_sql_rows_get_column_name(const DvSqlRows *rows, guint col);
int dv_sql_rows_find_column(const DvSqlRows *rows, const char *name); /* -1 if absent */
const char *dv_sql_rows_get_text(const DvSqlRows *rows, guint row, guint col);
gint64 dv_sql_rows_get_int(const DvSqlRows *rows, guint row, guint col); /* 0 for NULL */
gboolean dv_sql_rows_is_null(const DvSqlRows *rows, guint row, guint col);
void dv_sql_rows_free(DvSqlRows *rows);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvSqlRows, dv_sql_rows_free)

typedef struct _DvDb DvDb;

/* @location: a file path (SQLite, created if missing, WAL mode, foreign
 * keys on, busy timeout 5 s) or a postgresql:// URI.  Errors:
 * DV_ERROR_UNAVAILABLE when the server cannot be reached or the file
 * cannot be opened. */
DvDb *dv_db_open(const char *location, GError **error);
/* Like dv_db_open(), but a SQLite file is opened read-only, not created,
 * and its journal mode is left as it is (drover-setup upgrade --plan on a
 * database not in WAL mode).  PostgreSQL: as dv_db_open(); the caller only
 * reads. */
DvDb *dv_db_open_read_only(const char *location, GError **error);
void dv_db_free(DvDb *db);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvDb, dv_db_free)

DvDbBackend dv_db_get_backend(DvDb *db);
/* The location without any password, for logs and messages. */
const char *dv_db_get_display_location(DvDb *db);

/* Runs one statement.  Before a SQLite write outside a transaction (and
 * before a transaction begins and commits) the file is checked to still be
 * the one opened; see DvDbState.  @ret_changes (may be NULL) gets the number of rows
 * changed.  A unique-constraint violation is DV_ERROR_CONFLICT whose field
 * (dv_error_get_field()) is the violated column when the backend names it;
 * a foreign-key violation is DV_ERROR_CONFLICT too. */
gboolean dv_db_exec(DvDb *db, const char *sql, const DvSqlParam *params, guint n_params,
                    gint64 *ret_changes, GError **error);

/* Runs one query and reads every row. */
DvSqlRows *dv_db_query(DvDb *db, const char *sql, const DvSqlParam *params, guint n_params,
                       GError **error);

/* Runs several ';'-separated statements without parameters (migrations). */
gboolean dv_db_exec_script(DvDb *db, const char *sql, GError **error);

/* What dv_db_check_state() finds.  MISSING and REPLACED are final for
 * the DvDb: once seen, every write is refused (DV_ERROR_UNAVAILABLE saying
 * why) and nothing more reaches the file; the others describe the last
 * write's failure or the file's condition now. */
typedef enum {
    DV_DB_STATE_OK,
    DV_DB_STATE_MISSING,   /* the SQLite file was removed under the open connection */
    DV_DB_STATE_REPLACED,  /* the path now names another file */
    DV_DB_STATE_READ_ONLY, /* opened read-only, or the last write was refused as such */
    DV_DB_STATE_FULL,      /* the last write found no space (SQLITE_FULL), or none is left */
    DV_DB_STATE_MALFORMED, /* SQLITE_CORRUPT or SQLITE_NOTADB seen */
} DvDbState;

/* "ok", "missing", "replaced", "read-only", "full", "malformed" (static). */
const char *dv_db_state_to_string(DvDbState state);

/* Looks at the database now: a SQLite file's identity (device and inode
 * against those opened), whether the connection is read-only, the space
 * left beside it, and the last failure of a statement.  @ret_detail (may
 * be NULL) gets a sentence saying what is wrong (owned; NULL when OK).
 * PostgreSQL: always OK here (reachability is the query's business). */
DvDbState dv_db_check_state(DvDb *db, char **ret_detail);

/* TRUE when another thread holds the connection right now (a query or a
 * transaction in progress): the metrics' database gauge.  Never blocks. */
gboolean dv_db_is_busy(DvDb *db);

typedef gboolean (*DvDbTxnFunc)(DvDb *db, gpointer user_data, GError **error);

/* Runs @func inside one transaction: commit when it returns TRUE, roll back
 * when it returns FALSE (its error is passed on).  Nested calls from the
 * same thread join the outer transaction (savepoints). */
gboolean dv_db_transaction(DvDb *db, DvDbTxnFunc func, gpointer user_data, GError **error);

G_END_DECLS
