#define G_LOG_DOMAIN "DvDbPg"

/* The PostgreSQL backend: one libpq connection, text parameters, '?'
 * rewritten to $n once per distinct statement. */

#include "dv-db-private.h"
#include "dv-error.h"

#include <libpq-fe.h>
#include <string.h>

#define DV_PG_SQL_CACHE_MAX 512
#define DV_PG_CONNECT_TIMEOUT "10"

typedef struct {
    PGconn *conn;
    GHashTable *rewritten; /* '?' SQL -> '$n' SQL */
} DvPg;

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PGresult, PQclear)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PGconn, PQfinish)

static void
dv_pg_close(gpointer conn)
{
    DvPg *self = conn;

    if (self == NULL)
        return;
    g_clear_pointer(&self->rewritten, g_hash_table_unref);
    g_clear_pointer(&self->conn, PQfinish);
    g_free(self);
}

static void
dv_pg_ignore_notice(void *arg, const char *message)
{
    /* "relation already exists, skipping" and friends: not worth a word. */
}

static char *
dv_pg_clean_message(const char *message)
{
    return g_strstrip(g_strdup(message != NULL && message[0] != '\0' ? message : "unknown error"));
}

/* "Key (host_id, name)=(a, b) already exists." -> "host_id, name" */
static char *
dv_pg_key_columns(const char *detail)
{
    const char *start;
    const char *end;

    if (detail == NULL)
        return NULL;
    start = strstr(detail, "Key (");
    if (start == NULL)
        return NULL;
    start += strlen("Key (");
    end = strstr(start, ")=");
    if (end == NULL)
        return NULL;
    return g_strndup(start, end - start);
}

static void
dv_pg_set_result_error(DvDb *db, const PGresult *res, GError **error)
{
    DvPg *self = db->conn;
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *table = res != NULL ? PQresultErrorField(res, PG_DIAG_TABLE_NAME) : NULL;
    const char *column = res != NULL ? PQresultErrorField(res, PG_DIAG_COLUMN_NAME) : NULL;
    const char *detail = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *primary = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    g_autofree char *message = dv_pg_clean_message(
        primary != NULL ? primary : (res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(self->conn)));
    g_autofree char *key_columns = dv_pg_key_columns(detail);
    g_autofree char *detail_column = dv_db_last_column_of(key_columns);
    const char *field = column != NULL ? column : detail_column;

    if (state == NULL || PQstatus(self->conn) != CONNECTION_OK || g_str_has_prefix(state, "08") ||
        g_str_has_prefix(state, "57P") || g_str_has_prefix(state, "53")) {
        g_autofree char *conn_msg = dv_pg_clean_message(PQerrorMessage(self->conn));
        dv_set_field_error(error, DV_ERROR_UNAVAILABLE, NULL, "PostgreSQL at %s failed: %s",
                           db->display_location, state != NULL ? message : conn_msg);
    } else if (g_str_equal(state, "23505")) {
        if (field == NULL) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, NULL, "a unique value is already taken: %s",
                               message);
        } else if (key_columns != NULL && strchr(key_columns, ',') != NULL) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, field,
                               "%s.%s must be unique (together with the other columns of %s)",
                               table != NULL ? table : "", field, key_columns);
        } else {
            dv_set_field_error(error, DV_ERROR_CONFLICT, field, "%s.%s must be unique",
                               table != NULL ? table : "", field);
        }
    } else if (g_str_equal(state, "23503")) {
        if (detail != NULL && strstr(detail, "is still referenced") != NULL)
            dv_set_field_error(error, DV_ERROR_CONFLICT, NULL,
                               "the object is still referenced by others: %s", detail);
        else
            dv_set_field_error(error, DV_ERROR_CONFLICT, field,
                               "a referenced object does not exist%s%s", field != NULL ? ": " : "",
                               field != NULL ? field : "");
    } else if (g_str_equal(state, "23502")) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, column, "%s.%s must not be null",
                           table != NULL ? table : "", column != NULL ? column : "?");
    } else if (g_str_has_prefix(state, "23")) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "constraint failed: %s", message);
    } else if (g_str_equal(state, "40001") || g_str_equal(state, "40P01")) {
        dv_set_field_error(error, DV_ERROR_BUSY, NULL, "concurrent update, try again: %s", message);
    } else if (g_str_equal(state, "57014") || g_str_equal(state, "55P03")) {
        dv_set_field_error(error, DV_ERROR_TIMEOUT, NULL, "database timeout: %s", message);
    } else {
        dv_set_field_error(error, DV_ERROR_INTERNAL, NULL, "database error (%s): %s", state, message);
    }
}

/* Makes sure the connection is up; outside a transaction a dropped
 * connection is re-established once. */
static gboolean
dv_pg_ensure_connected(DvDb *db, GError **error)
{
    DvPg *self = db->conn;

    if (PQstatus(self->conn) == CONNECTION_OK)
        return TRUE;
    if (db->txn_depth > 0) {
        dv_set_field_error(error, DV_ERROR_UNAVAILABLE, NULL,
                           "lost the connection to PostgreSQL at %s during a transaction",
                           db->display_location);
        return FALSE;
    }
    PQreset(self->conn);
    if (PQstatus(self->conn) != CONNECTION_OK) {
        g_autofree char *msg = dv_pg_clean_message(PQerrorMessage(self->conn));
        dv_set_field_error(error, DV_ERROR_UNAVAILABLE, NULL, "cannot reach PostgreSQL at %s: %s",
                           db->display_location, msg);
        return FALSE;
    }
    return TRUE;
}

static const char *
dv_pg_rewrite(DvPg *self, const char *sql)
{
    const char *pgsql = g_hash_table_lookup(self->rewritten, sql);

    if (pgsql == NULL) {
        char *fresh = dv_db_rewrite_placeholders(sql);
        if (g_hash_table_size(self->rewritten) >= DV_PG_SQL_CACHE_MAX)
            g_hash_table_remove_all(self->rewritten);
        g_hash_table_insert(self->rewritten, g_strdup(sql), fresh);
        pgsql = fresh;
    }
    return pgsql;
}

static gboolean
dv_pg_result_ok(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* Runs one statement.  @may_retry: the statement only reads (or opens a
 * transaction), so running it again after a reconnect is harmless. */
static PGresult *
dv_pg_run(DvDb *db, const char *sql, const DvSqlParam *params, guint n_params,
          gboolean may_retry, GError **error)
{
    DvPg *self = db->conn;
    const char *pgsql;
    g_autoptr(GPtrArray) owned = g_ptr_array_new_with_free_func(g_free);
    g_autofree const char **values = g_new0(const char *, n_params + 1);
    g_autoptr(PGresult) res = NULL;

    if (!dv_pg_ensure_connected(db, error))
        return NULL;
    pgsql = dv_pg_rewrite(self, sql);
    for (guint i = 0; i < n_params; i++) {
        switch (params[i].type) {
        case DV_SQL_INT: {
            char *s = g_strdup_printf("%" G_GINT64_FORMAT, params[i].i);
            g_ptr_array_add(owned, s);
            values[i] = s;
            break;
        }
        case DV_SQL_DOUBLE: {
            char *s = g_malloc(G_ASCII_DTOSTR_BUF_SIZE);
            g_ascii_dtostr(s, G_ASCII_DTOSTR_BUF_SIZE, params[i].d);
            g_ptr_array_add(owned, s);
            values[i] = s;
            break;
        }
        case DV_SQL_TEXT:
            values[i] = params[i].s;
            break;
        case DV_SQL_NULL:
        default:
            values[i] = NULL;
            break;
        }
    }

    res = PQexecParams(self->conn, pgsql, (int)n_params, NULL, values, NULL, NULL, 0);
    if ((res == NULL || !dv_pg_result_ok(res)) && PQstatus(self->conn) == CONNECTION_BAD &&
        db->txn_depth == 0) {
        /* The server went away (restart, failover).  Reconnect so the next
         * call works; re-run only what is safe to run twice. */
        PQreset(self->conn);
        if (may_retry && PQstatus(self->conn) == CONNECTION_OK) {
            g_clear_pointer(&res, PQclear);
            res = PQexecParams(self->conn, pgsql, (int)n_params, NULL, values, NULL, NULL, 0);
        }
    }
    if (res == NULL || !dv_pg_result_ok(res)) {
        dv_pg_set_result_error(db, res, error);
        return NULL;
    }
    return g_steal_pointer(&res);
}

static gboolean
dv_pg_exec(DvDb *db, const char *sql, const DvSqlParam *params, guint n_params,
           gint64 *ret_changes, GError **error)
{
    gboolean may_retry = g_ascii_strncasecmp(sql, "BEGIN", 5) == 0;
    g_autoptr(PGresult) res = dv_pg_run(db, sql, params, n_params, may_retry, error);

    if (res == NULL)
        return FALSE;
    if (ret_changes != NULL) {
        const char *tuples = PQcmdTuples(res);
        *ret_changes = tuples != NULL && tuples[0] != '\0' ? g_ascii_strtoll(tuples, NULL, 10) : 0;
    }
    return TRUE;
}

static DvSqlRows *
dv_pg_query(DvDb *db, const char *sql, const DvSqlParam *params, guint n_params, GError **error)
{
    g_autoptr(PGresult) res = dv_pg_run(db, sql, params, n_params, TRUE, error);
    g_autoptr(DvSqlRows) rows = NULL;
    int n_cols;
    int n_rows;

    if (res == NULL)
        return NULL;
    n_cols = PQnfields(res);
    n_rows = PQntuples(res);
    rows = dv_sql_rows_new((guint)n_cols);
    for (int c = 0; c < n_cols; c++)
        dv_sql_rows_set_column_name(rows, (guint)c, PQfname(res, c));
    for (int r = 0; r < n_rows; r++) {
        for (int c = 0; c < n_cols; c++) {
            if (PQgetisnull(res, r, c))
                dv_sql_rows_append(rows, NULL, 0);
            else
                dv_sql_rows_append(rows, PQgetvalue(res, r, c), PQgetlength(res, r, c));
        }
    }
    return g_steal_pointer(&rows);
}

static gboolean
dv_pg_exec_script(DvDb *db, const char *sql, GError **error)
{
    DvPg *self = db->conn;
    g_autoptr(PGresult) res = NULL;

    if (!dv_pg_ensure_connected(db, error))
        return FALSE;
    /* The simple protocol runs all statements, in one implicit transaction
     * when no explicit one is open. */
    res = PQexec(self->conn, sql);
    if (res == NULL || !dv_pg_result_ok(res)) {
        dv_pg_set_result_error(db, res, error);
        return FALSE;
    }
    return TRUE;
}

static gboolean
dv_pg_commit(DvDb *db, GError **error)
{
    g_autoptr(PGresult) res = dv_pg_run(db, "COMMIT", DV_SQL_NO_ARGS, FALSE, error);

    if (res == NULL)
        return FALSE;
    /* PostgreSQL answers COMMIT of a transaction that an earlier failed
     * statement aborted with a silent ROLLBACK. */
    if (g_strcmp0(PQcmdStatus(res), "ROLLBACK") == 0) {
        dv_set_field_error(error, DV_ERROR_INTERNAL, NULL,
                           "the transaction was rolled back because a statement in it failed");
        return FALSE;
    }
    return TRUE;
}

static const DvDbOps dv_pg_ops = {
    .name = "postgresql",
    .close = dv_pg_close,
    .exec = dv_pg_exec,
    .query = dv_pg_query,
    .exec_script = dv_pg_exec_script,
    .begin_sql = "BEGIN",
    .commit = dv_pg_commit,
};

gboolean
dv_db_pg_open(DvDb *db, const char *uri, GError **error)
{
    /* connect_timeout first: a value in the URI overrides it. */
    const char *const keywords[] = { "connect_timeout", "dbname", NULL };
    const char *const values[] = { DV_PG_CONNECT_TIMEOUT, uri, NULL };
    g_autoptr(PGconn) conn = PQconnectdbParams(keywords, values, 1);
    DvPg *self;

    if (conn == NULL) {
        dv_set_field_error(error, DV_ERROR_UNAVAILABLE, NULL,
                           "cannot connect to PostgreSQL at %s: out of memory", db->display_location);
        return FALSE;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        g_autofree char *msg = dv_pg_clean_message(PQerrorMessage(conn));
        dv_set_field_error(error, DV_ERROR_UNAVAILABLE, NULL, "cannot connect to PostgreSQL at %s: %s",
                           db->display_location, msg);
        return FALSE;
    }
    PQsetNoticeProcessor(conn, dv_pg_ignore_notice, NULL);

    self = g_new0(DvPg, 1);
    self->conn = g_steal_pointer(&conn);
    self->rewritten = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    db->conn = self;
    db->ops = &dv_pg_ops;
    return TRUE;
}
