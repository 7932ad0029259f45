#define G_LOG_DOMAIN "DvStoreBackup"

/* The database halves of drover-setup backup and restore: a consistent
 * SQLite copy made in memory with the online backup API, and pg_dump /
 * pg_restore run as children for PostgreSQL.  Here because only store/
 * includes sqlite3.h and libpq-fe.h. */

#include "dv-db-private.h"
#include "dv-error.h"
#include "dv-secret.h"
#include "dv-store.h"

#include <gio/gio.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

/* What a child's standard error may add to a message. */
#define DV_STORE_CHILD_STDERR_MAX 4096

G_DEFINE_AUTOPTR_CLEANUP_FUNC(sqlite3, sqlite3_close_v2)

static void
dv_store_free_conninfo(PQconninfoOption *opts)
{
    if (opts != NULL)
        PQconninfoFree(opts);
}
typedef PQconninfoOption DvConninfo;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvConninfo, dv_store_free_conninfo)

/* memdb names without a leading '/' are private to their connection. */
#define DV_STORE_MEMDB_URI "file:drover-backup?vfs=memdb"

GBytes *
dv_store_backup_sqlite(const char *path, GError **error)
{
    g_autoptr(sqlite3) src = NULL;
    g_autoptr(sqlite3) dst = NULL;
    sqlite3_backup *backup;
    sqlite3_int64 size = 0;
    unsigned char *image;
    int rc;

    g_return_val_if_fail(path != NULL, NULL);

    rc = sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot open database %s: %s", path,
                    src != NULL ? sqlite3_errmsg(src) : sqlite3_errstr(rc));
        return NULL;
    }
    sqlite3_busy_timeout(src, 5000);
    rc = sqlite3_open_v2(DV_STORE_MEMDB_URI, &dst,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI |
                             SQLITE_OPEN_NOMUTEX,
                         NULL);
    if (rc != SQLITE_OK) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot make an in-memory database: %s",
                    dst != NULL ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
        return NULL;
    }
    /* One step over every page: the copy is made inside one read
     * transaction of @src, so it is a consistent snapshot even while
     * droverd writes (WAL readers do not block writers). */
    backup = sqlite3_backup_init(dst, "main", src, "main");
    if (backup == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot start the backup of %s: %s", path,
                    sqlite3_errmsg(dst));
        return NULL;
    }
    do {
        rc = sqlite3_backup_step(backup, -1);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
            sqlite3_sleep(50);
    } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    sqlite3_backup_finish(backup);
    if (rc != SQLITE_DONE) {
        g_set_error(error, DV_ERROR, rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT ? DV_ERROR_UNAVAILABLE
                                                                                 : DV_ERROR_INTERNAL,
                    "cannot copy database %s: %s", path, sqlite3_errstr(rc));
        return NULL;
    }
    image = sqlite3_serialize(dst, "main", &size, 0);
    if (image == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot serialize the copy of %s", path);
        return NULL;
    }
    return g_bytes_new_with_free_func(image, (gsize)size, sqlite3_free, image);
}

gboolean
dv_store_check_sqlite_image(GBytes *image, GError **error)
{
    g_autoptr(sqlite3) db = NULL;
    sqlite3_stmt *stmt = NULL;
    unsigned char *copy;
    gsize len = 0;
    const void *data = g_bytes_get_data(image, &len);
    g_autofree char *result = NULL;
    int rc;

    if (len < 100 || memcmp(data, "SQLite format 3", 16) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT, "not a SQLite database");
        return FALSE;
    }
    rc = sqlite3_open_v2(DV_STORE_MEMDB_URI, &db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI |
                             SQLITE_OPEN_NOMUTEX,
                         NULL);
    if (rc != SQLITE_OK) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot make an in-memory database: %s",
                    sqlite3_errstr(rc));
        return FALSE;
    }
    copy = sqlite3_malloc64(len);
    if (copy == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "out of memory for a %" G_GSIZE_FORMAT
                    "-byte database", len);
        return FALSE;
    }
    memcpy(copy, data, len);
    /* A WAL-mode header would make SQLite look for a WAL beside a file
     * that does not exist: read the copy as a rollback-journal database. */
    copy[18] = 1;
    copy[19] = 1;
    rc = sqlite3_deserialize(db, "main", copy, len, len,
                             SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_READONLY);
    if (rc != SQLITE_OK) {
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT, "not a usable SQLite database: %s",
                    sqlite3_errstr(rc));
        return FALSE;
    }
    rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &stmt, NULL);
    if (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
        result = g_strdup((const char *)sqlite3_column_text(stmt, 0));
    else
        result = g_strdup(sqlite3_errmsg(db));
    sqlite3_finalize(stmt);
    if (g_strcmp0(result, "ok") != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT, "the database fails its check: %s",
                    result != NULL ? result : "no answer");
        return FALSE;
    }
    return TRUE;
}

gint64
dv_store_get_size(DvStore *store, GError **error)
{
    DvDb *db = dv_store_get_db(store);
    g_autoptr(DvSqlRows) rows = NULL;

    if (dv_db_get_backend(db) == DV_DB_POSTGRESQL) {
        rows = dv_db_query(db, "SELECT pg_database_size(current_database())", DV_SQL_NO_ARGS, error);
        if (rows == NULL)
            return -1;
        return dv_sql_rows_get_int(rows, 0, 0);
    }
    rows = dv_db_query(db, "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                       DV_SQL_NO_ARGS, error);
    if (rows == NULL)
        return -1;
    return dv_sql_rows_get_int(rows, 0, 0);
}

/* The URI without its password for the command line, and the password
 * (NULL if none) for PGPASSWORD: never on a command line, where ps shows it. */
static gboolean
dv_store_pg_split(const char *uri, char **ret_uri, DvSecret **ret_password, GError **error)
{
    char *errmsg = NULL;
    g_autoptr(DvConninfo) opts = PQconninfoParse(uri, &errmsg);
    g_autoptr(DvSecret) password = NULL;

    if (opts == NULL) {
        g_autofree char *shown = dv_db_strip_password(uri);
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT, "not a usable PostgreSQL URI %s: %s",
                    shown, errmsg != NULL ? g_strchomp(errmsg) : "out of memory");
        PQfreemem(errmsg);
        return FALSE;
    }
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (g_strcmp0(o->keyword, "password") == 0 && o->val != NULL && o->val[0] != '\0')
            password = dv_secret_new_from_string(o->val);
    *ret_uri = dv_db_strip_password(uri);
    *ret_password = g_steal_pointer(&password);
    return TRUE;
}

static char *
dv_store_pg_tool(const char *name)
{
    const char *bin = g_getenv("DV_PG_BIN");
    if (bin != NULL && bin[0] != '\0')
        return g_build_filename(bin, name, NULL);
    return g_strdup(name);
}

/* Runs @argv with @stdin_fd / @stdout_fd (-1: none; taken over), the
 * password in PGPASSWORD, and turns a failure into an error quoting the
 * start of its standard error. */
static gboolean
dv_store_pg_run(const char *const *argv, const DvSecret *password, int stdin_fd, int stdout_fd,
                GError **error)
{
    g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_PIPE);
    g_autoptr(GSubprocess) child = NULL;
    g_autoptr(GBytes) err = NULL;
    g_autoptr(GError) local = NULL;

    if (stdin_fd >= 0)
        g_subprocess_launcher_take_stdin_fd(launcher, stdin_fd);
    if (stdout_fd >= 0)
        g_subprocess_launcher_take_stdout_fd(launcher, stdout_fd);
    g_subprocess_launcher_unsetenv(launcher, "PGPASSWORD");
    if (password != NULL)
        g_subprocess_launcher_setenv(launcher, "PGPASSWORD", dv_secret_get_string(password), TRUE);
    child = g_subprocess_launcher_spawnv(launcher, argv, &local);
    if (child == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot run %s: %s", argv[0], local->message);
        return FALSE;
    }
    if (!g_subprocess_communicate(child, NULL, NULL, NULL, &err, &local)) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "%s: %s", argv[0], local->message);
        return FALSE;
    }
    if (!g_subprocess_get_if_exited(child) || g_subprocess_get_exit_status(child) != 0) {
        gsize len = 0;
        const char *text = err != NULL ? g_bytes_get_data(err, &len) : NULL;
        g_autofree char *msg = g_strndup(text != NULL ? text : "", MIN(len, DV_STORE_CHILD_STDERR_MAX));
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "%s failed: %s", argv[0],
                    msg[0] != '\0' ? g_strstrip(msg) : "no message");
        return FALSE;
    }
    return TRUE;
}

/* Runs PostgreSQL's @tool_name on the database of @uri with @options (then
 * --no-password and the database), @fd (duplicated) as its standard input
 * when @fd_is_input, else as its standard output; a failure says "cannot
 * @what <database>: ...". */
static gboolean
dv_store_pg_tool_run(const char *uri, const char *tool_name, const char *const *options, int fd,
                     gboolean fd_is_input, const char *what, GError **error)
{
    g_autofree char *shown = NULL;
    g_autoptr(DvSecret) password = NULL;
    g_autofree char *tool = dv_store_pg_tool(tool_name);
    g_autofree char *dbname = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    int dup_fd;

    if (!dv_store_pg_split(uri, &shown, &password, error))
        return FALSE;
    dbname = g_strconcat("--dbname=", shown, NULL);
    dup_fd = dup(fd);
    if (dup_fd < 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "dup: %s", g_strerror(errno));
        return FALSE;
    }
    g_ptr_array_add(argv, tool);
    for (guint i = 0; options[i] != NULL; i++)
        g_ptr_array_add(argv, (gpointer)options[i]);
    g_ptr_array_add(argv, "--no-password");
    g_ptr_array_add(argv, dbname);
    g_ptr_array_add(argv, NULL);
    if (!dv_store_pg_run((const char *const *)argv->pdata, password, fd_is_input ? dup_fd : -1,
                         fd_is_input ? -1 : dup_fd, error)) {
        g_prefix_error(error, "cannot %s %s: ", what, shown);
        return FALSE;
    }
    return TRUE;
}

gboolean
dv_store_pg_dump(const char *uri, int out_fd, GError **error)
{
    static const char *const options[] = { "--format=custom", NULL };
    return dv_store_pg_tool_run(uri, "pg_dump", options, out_fd, FALSE, "dump", error);
}

gboolean
dv_store_pg_restore(const char *uri, int in_fd, GError **error)
{
    /* One transaction: a failure leaves the database as it was.  The
     * restoring role owns what it makes (--no-owner): the URI's user is the
     * one droverd connects as. */
    static const char *const options[] = { "--clean", "--if-exists", "--single-transaction",
                                           "--exit-on-error", "--no-owner", "--no-acl", NULL };
    return dv_store_pg_tool_run(uri, "pg_restore", options, in_fd, TRUE, "restore into", error);
}
