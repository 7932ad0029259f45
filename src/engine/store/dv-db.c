#define G_LOG_DOMAIN "DvDb"

/* The backend-neutral half of DvDb: result sets, placeholder rewriting,
 * locking and transactions.  The backends (dv-db-sqlite.c, dv-db-pg.c) only
 * run statements. */

#include "dv-db-private.h"
#include "dv-error.h"

#include <string.h>

/* --- result sets ---------------------------------------------------- */

struct _DvSqlRows {
    guint n_columns;
    char **column_names;
    /* Row-major cells, pointing into @chunk; NULL for SQL NULL. */
    GPtrArray *cells;
    GStringChunk *chunk;
};

DvSqlRows *
dv_sql_rows_new(guint n_columns)
{
    DvSqlRows *rows = g_new0(DvSqlRows, 1);

    rows->n_columns = n_columns;
    rows->column_names = g_new0(char *, n_columns + 1);
    rows->cells = g_ptr_array_new();
    rows->chunk = g_string_chunk_new(1024);
    return rows;
}

void
dv_sql_rows_set_column_name(DvSqlRows *rows, guint col, const char *name)
{
    g_return_if_fail(col < rows->n_columns);
    g_free(rows->column_names[col]);
    rows->column_names[col] = g_strdup(name != NULL ? name : "");
}

void
dv_sql_rows_append(DvSqlRows *rows, const char *text, gssize len)
{
    if (text == NULL) {
        g_ptr_array_add(rows->cells, NULL);
        return;
    }
    if (len < 0)
        len = (gssize)strlen(text);
    g_ptr_array_add(rows->cells, g_string_chunk_insert_len(rows->chunk, text, len));
}

void
dv_sql_rows_free(DvSqlRows *rows)
{
    if (rows == NULL)
        return;
    g_strfreev(rows->column_names);
    g_ptr_array_unref(rows->cells);
    g_string_chunk_free(rows->chunk);
    g_free(rows);
}

guint
dv_sql_rows_get_n_rows(const DvSqlRows *rows)
{
    g_return_val_if_fail(rows != NULL, 0);
    if (rows->n_columns == 0)
        return 0;
    return rows->cells->len / rows->n_columns;
}

guint
dv_sql_rows_get_n_columns(const DvSqlRows *rows)
{
    g_return_val_if_fail(rows != NULL, 0);
    return rows->n_columns;
}

const char *
dv_sql_rows_get_column_name(const DvSqlRows *rows, guint col)
{
    g_return_val_if_fail(rows != NULL && col < rows->n_columns, NULL);
    return rows->column_names[col];
}

int
dv_sql_rows_find_column(const DvSqlRows *rows, const char *name)
{
    g_return_val_if_fail(rows != NULL && name != NULL, -1);
    for (guint i = 0; i < rows->n_columns; i++)
        if (g_ascii_strcasecmp(rows->column_names[i], name) == 0)
            return (int)i;
    return -1;
}

const char *
dv_sql_rows_get_text(const DvSqlRows *rows, guint row, guint col)
{
    g_return_val_if_fail(rows != NULL, NULL);
    g_return_val_if_fail(col < rows->n_columns, NULL);
    g_return_val_if_fail(row < dv_sql_rows_get_n_rows(rows), NULL);
    return g_ptr_array_index(rows->cells, row * rows->n_columns + col);
}

gint64
dv_sql_rows_get_int(const DvSqlRows *rows, guint row, guint col)
{
    const char *text = dv_sql_rows_get_text(rows, row, col);

    if (text == NULL)
        return 0;
    return g_ascii_strtoll(text, NULL, 10);
}

gboolean
dv_sql_rows_is_null(const DvSqlRows *rows, guint row, guint col)
{
    return dv_sql_rows_get_text(rows, row, col) == NULL;
}

/* --- helpers for the backends --------------------------------------- */

char *
dv_db_rewrite_placeholders(const char *sql)
{
    GString *out = g_string_sized_new(strlen(sql) + 16);
    guint n = 0;

    for (const char *p = sql; *p != '\0'; p++) {
        if (*p == '\'' || *p == '"') {
            /* A doubled quote inside a literal closes and reopens it, which
             * this loop handles by falling through to the next literal. */
            char quote = *p;
            const char *end = strchr(p + 1, quote);
            if (end == NULL)
                end = p + strlen(p) - 1;
            g_string_append_len(out, p, end - p + 1);
            p = end;
        } else if (p[0] == '-' && p[1] == '-') {
            const char *end = strchr(p, '\n');
            if (end == NULL)
                end = p + strlen(p) - 1;
            g_string_append_len(out, p, end - p + 1);
            p = end;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            end = end != NULL ? end + 1 : p + strlen(p) - 1;
            g_string_append_len(out, p, end - p + 1);
            p = end;
        } else if (*p == '?') {
            g_string_append_printf(out, "$%u", ++n);
        } else {
            g_string_append_c(out, *p);
        }
    }
    return g_string_free(out, FALSE);
}

char *
dv_db_strip_password(const char *location)
{
    const char *scheme_end;
    const char *authority;
    const char *at = NULL;
    GString *out;

    if (location == NULL)
        return NULL;
    scheme_end = strstr(location, "://");
    if (scheme_end == NULL) {
        /* A key=value conninfo string: drop any password=... word. */
        g_auto(GStrv) words = g_strsplit(location, " ", -1);
        out = g_string_new(NULL);
        for (guint i = 0; words[i] != NULL; i++) {
            if (g_str_has_prefix(words[i], "password="))
                continue;
            if (out->len > 0)
                g_string_append_c(out, ' ');
            g_string_append(out, words[i]);
        }
        return g_string_free(out, FALSE);
    }
    authority = scheme_end + 3;
    for (const char *p = authority; *p != '\0' && *p != '/' && *p != '?'; p++)
        if (*p == '@')
            at = p;

    out = g_string_new_len(location, authority - location);
    if (at != NULL) {
        const char *colon = memchr(authority, ':', at - authority);
        const char *user_end = colon != NULL ? colon : at;
        g_string_append_len(out, authority, user_end - authority);
        authority = at;
    }
    {
        const char *query = strchr(authority, '?');
        if (query == NULL) {
            g_string_append(out, authority);
        } else {
            g_auto(GStrv) params = g_strsplit(query + 1, "&", -1);
            gboolean first = TRUE;
            g_string_append_len(out, authority, query - authority);
            for (guint i = 0; params[i] != NULL; i++) {
                if (g_str_has_prefix(params[i], "password="))
                    continue;
                g_string_append_c(out, first ? '?' : '&');
                g_string_append(out, params[i]);
                first = FALSE;
            }
        }
    }
    return g_string_free(out, FALSE);
}

char *
dv_db_last_column_of(const char *list)
{
    g_auto(GStrv) parts = NULL;
    const char *last;
    const char *dot;
    guint n;

    if (list == NULL || list[0] == '\0')
        return NULL;
    parts = g_strsplit(list, ",", -1);
    n = g_strv_length(parts);
    if (n == 0)
        return NULL;
    last = g_strstrip(parts[n - 1]);
    dot = strrchr(last, '.');
    if (dot != NULL)
        last = dot + 1;
    if (last[0] == '\0')
        return NULL;
    return g_strdup(last);
}

/* --- the connection ------------------------------------------------- */

static gboolean
dv_db_is_pg_uri(const char *location)
{
    return g_str_has_prefix(location, "postgresql://") || g_str_has_prefix(location, "postgres://");
}

static DvDb *
dv_db_open_full(const char *location, gboolean read_only, GError **error)
{
    g_autoptr(DvDb) db = NULL;

    g_return_val_if_fail(location != NULL, NULL);

    db = g_new0(DvDb, 1);
    g_rec_mutex_init(&db->lock);
    db->location = g_strdup(location);
    if (dv_db_is_pg_uri(location)) {
        db->backend = DV_DB_POSTGRESQL;
        db->display_location = dv_db_strip_password(location);
        if (!dv_db_pg_open(db, location, error))
            return NULL;
    } else {
        db->backend = DV_DB_SQLITE;
        db->display_location = g_strdup(location);
        if (!dv_db_sqlite_open(db, location, read_only, error))
            return NULL;
    }
    return g_steal_pointer(&db);
}

DvDb *
dv_db_open(const char *location, GError **error)
{
    return dv_db_open_full(location, FALSE, error);
}

DvDb *
dv_db_open_read_only(const char *location, GError **error)
{
    return dv_db_open_full(location, TRUE, error);
}

void
dv_db_free(DvDb *db)
{
    if (db == NULL)
        return;
    if (db->ops != NULL && db->conn != NULL)
        db->ops->close(db->conn);
    g_rec_mutex_clear(&db->lock);
    g_free(db->location);
    g_free(db->display_location);
    g_free(db);
}

DvDbBackend
dv_db_get_backend(DvDb *db)
{
    return db->backend;
}

const char *
dv_db_get_display_location(DvDb *db)
{
    return db->display_location;
}

const char *
dv_db_state_to_string(DvDbState state)
{
    switch (state) {
    case DV_DB_STATE_OK:
        return "ok";
    case DV_DB_STATE_MISSING:
        return "missing";
    case DV_DB_STATE_REPLACED:
        return "replaced";
    case DV_DB_STATE_READ_ONLY:
        return "read-only";
    case DV_DB_STATE_FULL:
        return "full";
    case DV_DB_STATE_MALFORMED:
        return "malformed";
    default:
        return "unknown";
    }
}

gboolean
dv_db_is_busy(DvDb *db)
{
    /* A recursive mutex: trylock from this thread succeeds unless another
     * thread holds it (the caller never holds it itself). */
    if (!g_rec_mutex_trylock(&db->lock))
        return TRUE;
    g_rec_mutex_unlock(&db->lock);
    return FALSE;
}

DvDbState
dv_db_check_state(DvDb *db, char **ret_detail)
{
    g_autoptr(GRecMutexLocker) locker = NULL;
    g_autofree char *detail = NULL;
    DvDbState state;

    g_return_val_if_fail(db != NULL, DV_DB_STATE_OK);
    locker = g_rec_mutex_locker_new(&db->lock);
    if (db->ops->check == NULL)
        return DV_DB_STATE_OK;
    state = db->ops->check(db, FALSE, &detail);
    if (ret_detail != NULL)
        *ret_detail = g_steal_pointer(&detail);
    return state;
}

/* Called with db->lock held before anything is written: a file removed or
 * replaced under the connection would take the write and lose it (SQLite
 * in WAL mode acknowledges writes into an unlinked file). */
static gboolean
dv_db_check_writable(DvDb *db, GError **error)
{
    g_autofree char *detail = NULL;
    DvDbState state;

    if (db->ops->check == NULL)
        return TRUE;
    state = db->ops->check(db, TRUE, &detail);
    if (state != DV_DB_STATE_MISSING && state != DV_DB_STATE_REPLACED)
        return TRUE;
    dv_set_field_error(error, DV_ERROR_UNAVAILABLE, "database",
                       "%s; nothing was written, and no write will be accepted until the "
                       "server is restarted on a database put back in place (see drover-setup "
                       "restore)",
                       detail);
    return FALSE;
}

gboolean
dv_db_exec(DvDb *db, const char *sql, const DvSqlParam *params, guint n_params,
           gint64 *ret_changes, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = NULL;

    g_return_val_if_fail(db != NULL && sql != NULL, FALSE);
    locker = g_rec_mutex_locker_new(&db->lock);
    if (db->txn_depth == 0 && !dv_db_check_writable(db, error))
        return FALSE;
    return db->ops->exec(db, sql, params, n_params, ret_changes, error);
}

DvSqlRows *
dv_db_query(DvDb *db, const char *sql, const DvSqlParam *params, guint n_params, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = NULL;

    g_return_val_if_fail(db != NULL && sql != NULL, NULL);
    locker = g_rec_mutex_locker_new(&db->lock);
    return db->ops->query(db, sql, params, n_params, error);
}

gboolean
dv_db_exec_script(DvDb *db, const char *sql, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = NULL;

    g_return_val_if_fail(db != NULL && sql != NULL, FALSE);
    locker = g_rec_mutex_locker_new(&db->lock);
    if (db->txn_depth == 0 && !dv_db_check_writable(db, error))
        return FALSE;
    return db->ops->exec_script(db, sql, error);
}

static void
dv_db_exec_quiet(DvDb *db, const char *sql)
{
    /* Clean-up after a failure: the first error is the one reported. */
    g_autoptr(GError) ignored = NULL;
    if (!db->ops->exec(db, sql, DV_SQL_NO_ARGS, NULL, &ignored))
        g_debug("%s failed during clean-up: %s", sql, ignored->message);
}

static gboolean
dv_db_transaction_outer(DvDb *db, DvDbTxnFunc func, gpointer user_data, GError **error)
{
    if (!dv_db_check_writable(db, error))
        return FALSE;
    if (!db->ops->exec(db, db->ops->begin_sql, DV_SQL_NO_ARGS, NULL, error)) {
        g_prefix_error(error, "cannot start a transaction: ");
        return FALSE;
    }
    db->txn_depth = 1;
    if (!func(db, user_data, error)) {
        dv_db_exec_quiet(db, "ROLLBACK");
        db->txn_depth = 0;
        return FALSE;
    }
    /* Checked again: the file may have gone while @func ran. */
    if (!dv_db_check_writable(db, error) || !db->ops->commit(db, error)) {
        /* SQLite keeps the transaction open when COMMIT fails. */
        if (db->backend == DV_DB_SQLITE)
            dv_db_exec_quiet(db, "ROLLBACK");
        db->txn_depth = 0;
        return FALSE;
    }
    db->txn_depth = 0;
    return TRUE;
}

static gboolean
dv_db_transaction_nested(DvDb *db, DvDbTxnFunc func, gpointer user_data, GError **error)
{
    guint depth = db->txn_depth;
    g_autofree char *savepoint = g_strdup_printf("SAVEPOINT dv_sp_%u", depth);
    g_autofree char *release = g_strdup_printf("RELEASE SAVEPOINT dv_sp_%u", depth);
    g_autofree char *rollback = g_strdup_printf("ROLLBACK TO SAVEPOINT dv_sp_%u", depth);
    gboolean ok;

    if (!db->ops->exec(db, savepoint, DV_SQL_NO_ARGS, NULL, error))
        return FALSE;
    db->txn_depth = depth + 1;
    ok = func(db, user_data, error);
    if (ok)
        ok = db->ops->exec(db, release, DV_SQL_NO_ARGS, NULL, error);
    if (!ok) {
        /* Also undoes a PostgreSQL "transaction aborted" state, so the
         * outer transaction can go on. */
        dv_db_exec_quiet(db, rollback);
        dv_db_exec_quiet(db, release);
    }
    db->txn_depth = depth;
    return ok;
}

gboolean
dv_db_transaction(DvDb *db, DvDbTxnFunc func, gpointer user_data, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = NULL;

    g_return_val_if_fail(db != NULL && func != NULL, FALSE);
    locker = g_rec_mutex_locker_new(&db->lock);
    if (db->txn_depth == 0)
        return dv_db_transaction_outer(db, func, user_data, error);
    return dv_db_transaction_nested(db, func, user_data, error);
}

gboolean
dv_db_in_transaction(DvDb *db)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&db->lock);
    return db->txn_depth > 0;
}
