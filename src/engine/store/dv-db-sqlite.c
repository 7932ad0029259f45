#define G_LOG_DOMAIN "DvDbSqlite"

/* The SQLite backend: one connection, WAL, every statement prepared once
 * and kept (keyed by its SQL text) for the life of the connection. */

#include "dv-db-private.h"
#include "dv-error.h"

#include <errno.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

/* Past this many distinct statements the cache is emptied and refilled;
 * the store generates a bounded set, so this only guards against a bug. */
#define DV_SQLITE_STMT_CACHE_MAX 512

typedef struct {
    sqlite3 *handle;
    GHashTable *stmts; /* SQL text -> sqlite3_stmt*, owned */
    /* The file as opened: its path and identity, to notice it removed or
     * replaced under the connection (SQLite in WAL mode does not). */
    char *path;
    gboolean have_identity;
    dev_t dev;
    ino_t ino;
    /* MISSING or REPLACED once seen; final. */
    DvDbState lost;
    char *lost_detail;
    /* The last statement's failure, when it says something about the file
     * (READ_ONLY, FULL, MALFORMED); READ_ONLY and FULL end with the next
     * write that succeeds. */
    DvDbState failed;
    char *failed_detail;
} DvSqlite;

G_DEFINE_AUTOPTR_CLEANUP_FUNC(sqlite3, sqlite3_close_v2)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sqlite3_stmt, sqlite3_finalize)

/* A cached statement lent to one call: reset and unbound on the way out,
 * never finalized (the cache owns it). */
typedef sqlite3_stmt DvSqliteLease;
static void
dv_sqlite_lease_return(DvSqliteLease *stmt)
{
    if (stmt == NULL)
        return;
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvSqliteLease, dv_sqlite_lease_return)

static void
dv_sqlite_stmt_free(gpointer stmt)
{
    sqlite3_finalize(stmt);
}

static void
dv_sqlite_close(gpointer conn)
{
    DvSqlite *self = conn;

    if (self == NULL)
        return;
    /* Statements first: sqlite3_close_v2 would otherwise linger. */
    g_clear_pointer(&self->stmts, g_hash_table_unref);
    sqlite3_close_v2(self->handle);
    g_free(self->path);
    g_free(self->lost_detail);
    g_free(self->failed_detail);
    g_free(self);
}

static void
dv_sqlite_set_constraint_error(const char *msg, int ext, GError **error)
{
    const char *list = strstr(msg, "failed: ");
    g_autofree char *column = NULL;
    g_autofree char *table = NULL;

    if (list != NULL) {
        const char *dot;
        list += strlen("failed: ");
        column = dv_db_last_column_of(list);
        dot = strchr(list, '.');
        if (dot != NULL)
            table = g_strndup(list, dot - list);
    }
    switch (ext) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        if (column == NULL) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, NULL, "a unique value is already taken");
        } else if (strchr(list, ',') != NULL) {
            /* Composite key, e.g. "vms.host_id, vms.name". */
            dv_set_field_error(error, DV_ERROR_CONFLICT, column,
                               "%s.%s must be unique (together with the other columns of %s)",
                               table != NULL ? table : "", column, list);
        } else {
            dv_set_field_error(error, DV_ERROR_CONFLICT, column, "%s.%s must be unique",
                               table != NULL ? table : "", column);
        }
        return;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        dv_set_field_error(error, DV_ERROR_CONFLICT, NULL,
                           "a referenced object does not exist, or the object is still referenced by others");
        return;
    case SQLITE_CONSTRAINT_NOTNULL:
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, column, "%s.%s must not be null",
                           table != NULL ? table : "", column != NULL ? column : "?");
        return;
    default:
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL, "constraint failed: %s", msg);
        return;
    }
}

/* What a failure says about the file, for dv_db_check_state(). */
static void
dv_sqlite_note_failure(DvSqlite *self, int rc, const char *msg)
{
    int sys = sqlite3_system_errno(self->handle);
    DvDbState state = DV_DB_STATE_OK;

    switch (rc & 0xff) {
    case SQLITE_FULL:
        state = DV_DB_STATE_FULL;
        break;
    case SQLITE_READONLY:
        state = DV_DB_STATE_READ_ONLY;
        break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        state = DV_DB_STATE_MALFORMED;
        break;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
        if (sys == ENOSPC || sys == EDQUOT)
            state = DV_DB_STATE_FULL;
        else if (sys == EROFS || sys == EACCES || sys == EPERM)
            state = DV_DB_STATE_READ_ONLY;
        break;
    default:
        break;
    }
    /* Malformed stays: a corrupt page does not heal. */
    if (state == DV_DB_STATE_OK || self->failed == DV_DB_STATE_MALFORMED)
        return;
    self->failed = state;
    g_free(self->failed_detail);
    self->failed_detail = g_strdup_printf("the last write to %s failed: %s%s%s", self->path, msg,
                                          sys != 0 ? ": " : "", sys != 0 ? g_strerror(sys) : "");
}

static void
dv_sqlite_set_error(DvSqlite *self, int rc, GError **error)
{
    int ext = sqlite3_extended_errcode(self->handle);
    const char *msg = sqlite3_errmsg(self->handle);

    if ((ext & 0xff) != (rc & 0xff))
        ext = rc;
    dv_sqlite_note_failure(self, rc, msg);
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        dv_sqlite_set_constraint_error(msg, ext, error);
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        dv_set_field_error(error, DV_ERROR_TIMEOUT, NULL,
                           "the database stayed locked by another writer: %s", msg);
        break;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_PERM:
        dv_set_field_error(error, DV_ERROR_UNAVAILABLE, NULL, "database unusable: %s", msg);
        break;
    default:
        dv_set_field_error(error, DV_ERROR_INTERNAL, NULL, "database error: %s", msg);
        break;
    }
}

/* Returns the cached statement for @sql, prepared on first use, with
 * @params bound. */
static DvSqliteLease *
dv_sqlite_lease(DvSqlite *self, const char *sql, const DvSqlParam *params, guint n_params,
                GError **error)
{
    sqlite3_stmt *stmt = g_hash_table_lookup(self->stmts, sql);
    g_autoptr(DvSqliteLease) lease = NULL;
    int n_expected;

    if (stmt == NULL) {
        g_autoptr(sqlite3_stmt) fresh = NULL;
        const char *tail = NULL;
        int rc = sqlite3_prepare_v3(self->handle, sql, -1, SQLITE_PREPARE_PERSISTENT, &fresh, &tail);
        if (rc != SQLITE_OK) {
            dv_sqlite_set_error(self, rc, error);
            g_prefix_error(error, "cannot prepare statement: ");
            return NULL;
        }
        if (fresh == NULL) {
            g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "empty SQL statement");
            return NULL;
        }
        if (tail != NULL && *tail != '\0' && strspn(tail, " \t\r\n;") != strlen(tail)) {
            g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL,
                        "more than one SQL statement given where one was expected");
            return NULL;
        }
        if (g_hash_table_size(self->stmts) >= DV_SQLITE_STMT_CACHE_MAX)
            g_hash_table_remove_all(self->stmts);
        stmt = fresh;
        g_hash_table_insert(self->stmts, g_strdup(sql), g_steal_pointer(&fresh));
    }
    lease = stmt;

    n_expected = sqlite3_bind_parameter_count(stmt);
    if (n_expected != (int)n_params) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL,
                    "SQL statement takes %d parameters, %u given", n_expected, n_params);
        return NULL;
    }
    for (guint i = 0; i < n_params; i++) {
        int rc;
        switch (params[i].type) {
        case DV_SQL_INT:
            rc = sqlite3_bind_int64(stmt, (int)i + 1, params[i].i);
            break;
        case DV_SQL_DOUBLE:
            rc = sqlite3_bind_double(stmt, (int)i + 1, params[i].d);
            break;
        case DV_SQL_TEXT:
            rc = params[i].s != NULL
                     ? sqlite3_bind_text(stmt, (int)i + 1, params[i].s, -1, SQLITE_STATIC)
                     : sqlite3_bind_null(stmt, (int)i + 1);
            break;
        case DV_SQL_NULL:
        default:
            rc = sqlite3_bind_null(stmt, (int)i + 1);
            break;
        }
        if (rc != SQLITE_OK) {
            dv_sqlite_set_error(self, rc, error);
            return NULL;
        }
    }
    return g_steal_pointer(&lease);
}

static gboolean
dv_sqlite_exec(DvDb *db, const char *sql, const DvSqlParam *params, guint n_params,
               gint64 *ret_changes, GError **error)
{
    DvSqlite *self = db->conn;
    g_autoptr(DvSqliteLease) stmt = dv_sqlite_lease(self, sql, params, n_params, error);
    int rc;

    if (stmt == NULL)
        return FALSE;
    do {
        rc = sqlite3_step(stmt);
    } while (rc == SQLITE_ROW);
    if (rc != SQLITE_DONE) {
        dv_sqlite_set_error(self, rc, error);
        return FALSE;
    }
    if (!sqlite3_stmt_readonly(stmt) && self->failed != DV_DB_STATE_MALFORMED) {
        self->failed = DV_DB_STATE_OK;
        g_clear_pointer(&self->failed_detail, g_free);
    }
    if (ret_changes != NULL)
        *ret_changes = sqlite3_changes64(self->handle);
    return TRUE;
}

static DvSqlRows *
dv_sqlite_query(DvDb *db, const char *sql, const DvSqlParam *params, guint n_params,
                GError **error)
{
    DvSqlite *self = db->conn;
    g_autoptr(DvSqliteLease) stmt = dv_sqlite_lease(self, sql, params, n_params, error);
    g_autoptr(DvSqlRows) rows = NULL;
    int n_cols;
    int rc;

    if (stmt == NULL)
        return NULL;
    n_cols = sqlite3_column_count(stmt);
    rows = dv_sql_rows_new((guint)n_cols);
    for (int c = 0; c < n_cols; c++)
        dv_sql_rows_set_column_name(rows, (guint)c, sqlite3_column_name(stmt, c));
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        for (int c = 0; c < n_cols; c++) {
            if (sqlite3_column_type(stmt, c) == SQLITE_NULL) {
                dv_sql_rows_append(rows, NULL, 0);
            } else {
                const unsigned char *text = sqlite3_column_text(stmt, c);
                dv_sql_rows_append(rows, (const char *)text, sqlite3_column_bytes(stmt, c));
            }
        }
    }
    if (rc != SQLITE_DONE) {
        dv_sqlite_set_error(self, rc, error);
        return NULL;
    }
    return g_steal_pointer(&rows);
}

static gboolean
dv_sqlite_exec_script(DvDb *db, const char *sql, GError **error)
{
    DvSqlite *self = db->conn;
    int rc = sqlite3_exec(self->handle, sql, NULL, NULL, NULL);

    if (rc != SQLITE_OK) {
        dv_sqlite_set_error(self, rc, error);
        return FALSE;
    }
    return TRUE;
}

static gboolean
dv_sqlite_commit(DvDb *db, GError **error)
{
    return dv_sqlite_exec(db, "COMMIT", DV_SQL_NO_ARGS, NULL, error);
}

static DvDbState
dv_sqlite_check(DvDb *db, gboolean identity_only, char **ret_detail)
{
    DvSqlite *self = db->conn;
    struct stat st;

    if (self->lost == DV_DB_STATE_OK && self->have_identity) {
        if (stat(self->path, &st) != 0) {
            /* Another error (a directory made unreadable) says nothing
             * about the file; the write itself will tell. */
            if (errno == ENOENT || errno == ENOTDIR) {
                self->lost = DV_DB_STATE_MISSING;
                self->lost_detail = g_strdup_printf(
                    "the database file %s was removed while this server had it open", self->path);
            }
        } else if (st.st_dev != self->dev || st.st_ino != self->ino) {
            self->lost = DV_DB_STATE_REPLACED;
            self->lost_detail = g_strdup_printf(
                "the database file %s was replaced by another file while this server had it open",
                self->path);
        }
    }
    if (self->lost != DV_DB_STATE_OK) {
        if (ret_detail != NULL)
            *ret_detail = g_strdup(self->lost_detail);
        return self->lost;
    }
    if (identity_only)
        return DV_DB_STATE_OK;
    if (self->failed != DV_DB_STATE_OK) {
        if (ret_detail != NULL)
            *ret_detail = g_strdup(self->failed_detail);
        return self->failed;
    }
    if (sqlite3_db_readonly(self->handle, "main") == 1) {
        if (ret_detail != NULL)
            *ret_detail =
                g_strdup_printf("%s is open read-only: this account may not write it", self->path);
        return DV_DB_STATE_READ_ONLY;
    }
    {
        g_autofree char *dir = g_path_get_dirname(self->path);
        struct statvfs vfs;
        if (statvfs(dir, &vfs) == 0 && vfs.f_blocks > 0 && vfs.f_bavail == 0) {
            if (ret_detail != NULL)
                *ret_detail =
                    g_strdup_printf("no space is left on the file system of %s", self->path);
            return DV_DB_STATE_FULL;
        }
    }
    return DV_DB_STATE_OK;
}

static const DvDbOps dv_sqlite_ops = {
    .name = "sqlite",
    .close = dv_sqlite_close,
    .exec = dv_sqlite_exec,
    .query = dv_sqlite_query,
    .exec_script = dv_sqlite_exec_script,
    /* Take the write lock up front: a deferred transaction that reads and
     * then writes can fail with SQLITE_BUSY that no timeout cures. */
    .begin_sql = "BEGIN IMMEDIATE",
    .commit = dv_sqlite_commit,
    .check = dv_sqlite_check,
};

gboolean
dv_db_sqlite_open(DvDb *db, const char *path, gboolean read_only, GError **error)
{
    g_autoptr(sqlite3) handle = NULL;
    DvSqlite *self;
    int rc;

    rc = sqlite3_open_v2(path, &handle,
                         (read_only ? SQLITE_OPEN_READONLY
                                    : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                             SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                         NULL);
    if (rc != SQLITE_OK) {
        dv_set_field_error(error, DV_ERROR_UNAVAILABLE, NULL, "cannot open database %s: %s",
                           path, handle != NULL ? sqlite3_errmsg(handle) : sqlite3_errstr(rc));
        return FALSE;
    }
    sqlite3_extended_result_codes(handle, 1);
    sqlite3_busy_timeout(handle, 5000);
    /* Read-only: the journal mode is left as the file has it.  A file
     * this account may not write opens read-only too (SQLite falls back):
     * it is opened, and dv_db_check_state() says read-only, so the caller
     * can say so rather than "attempt to write a readonly database". */
    if (sqlite3_db_readonly(handle, "main") == 1)
        read_only = TRUE;
    rc = sqlite3_exec(handle,
                      read_only ? "PRAGMA foreign_keys=ON;"
                                : "PRAGMA journal_mode=WAL;"
                                  "PRAGMA foreign_keys=ON;"
                                  "PRAGMA synchronous=NORMAL;",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        dv_set_field_error(error, DV_ERROR_UNAVAILABLE, NULL, "cannot use database %s: %s",
                           path, sqlite3_errmsg(handle));
        return FALSE;
    }

    self = g_new0(DvSqlite, 1);
    self->path = g_strdup(path);
    {
        struct stat st;
        /* The file exists now (opened, and in WAL mode written to). */
        if (stat(path, &st) == 0) {
            self->have_identity = TRUE;
            self->dev = st.st_dev;
            self->ino = st.st_ino;
        }
    }
    self->handle = g_steal_pointer(&handle);
    self->stmts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                        dv_sqlite_stmt_free);
    db->conn = self;
    db->ops = &dv_sqlite_ops;
    return TRUE;
}
