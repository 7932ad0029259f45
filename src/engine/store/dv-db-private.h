/* Internals shared by dv-db.c and its two backends.  Not for use outside
 * src/engine/store/. */
#pragma once

#include "dv-db.h"

G_BEGIN_DECLS

/* What a backend provides.  Every call is made with db->lock held; the
 * backends never lock themselves.  @conn is the backend's own state. */
typedef struct {
    const char *name;
    void (*close)(gpointer conn);
    gboolean (*exec)(DvDb *db, const char *sql, const DvSqlParam *params, guint n_params,
                     gint64 *ret_changes, GError **error);
    DvSqlRows *(*query)(DvDb *db, const char *sql, const DvSqlParam *params, guint n_params,
                        GError **error);
    gboolean (*exec_script)(DvDb *db, const char *sql, GError **error);
    /* Statement that opens the outermost transaction. */
    const char *begin_sql;
    /* Ends the outermost transaction; a commit the server turned into a
     * rollback must fail. */
    gboolean (*commit)(DvDb *db, GError **error);
    /* May be NULL (always OK).  @identity_only: only whether the file is
     * still the one opened (cheap: one stat), for the check before each
     * write. */
    DvDbState (*check)(DvDb *db, gboolean identity_only, char **ret_detail);
} DvDbOps;

struct _DvDb {
    DvDbBackend backend;
    const DvDbOps *ops;
    gpointer conn;
    char *location;
    char *display_location;
    /* Serialises every use of @conn; held by a transaction for its whole
     * length, re-entered by nested calls from the same thread. */
    GRecMutex lock;
    /* Guarded by @lock: 0 outside a transaction, 1 in the outermost one,
     * more inside savepoints. */
    guint txn_depth;
};

/* TRUE when the calling thread runs inside dv_db_transaction(). */
gboolean dv_db_in_transaction(DvDb *db);

/* Backend constructors: fill in db->ops and db->conn. */
gboolean dv_db_sqlite_open(DvDb *db, const char *path, gboolean read_only, GError **error);
gboolean dv_db_pg_open(DvDb *db, const char *uri, GError **error);

/* Result set builder used by the backends. */
DvSqlRows *dv_sql_rows_new(guint n_columns);
void dv_sql_rows_set_column_name(DvSqlRows *rows, guint col, const char *name);
/* Appends the next cell (row-major); @text NULL for SQL NULL. */
void dv_sql_rows_append(DvSqlRows *rows, const char *text, gssize len);

/* Rewrites '?' placeholders to $1, $2, ... outside quoted literals,
 * quoted identifiers and comments. */
char *dv_db_rewrite_placeholders(const char *sql);

/* postgresql://user:secret@host/db?password=x -> postgresql://user@host/db */
char *dv_db_strip_password(const char *location);

/* Splits "UNIQUE constraint failed: t.a, t.b" style column lists and
 * "Key (a, b)=(..)" details: returns the last column, NULL if none. */
char *dv_db_last_column_of(const char *list);

G_END_DECLS
