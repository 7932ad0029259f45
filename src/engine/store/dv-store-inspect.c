#define G_LOG_DOMAIN "DvStoreInspect"

/* What a database holds, found without changing it: drover-setup install
 * must tell an empty database from a Drover one (switch to upgrade) and
 * from someone else's (refuse) before it writes anything. */

#include "dv-store.h"

#include "dv-db.h"
#include "dv-error.h"

#include <errno.h>
#include <stdio.h>
#include <sqlite3.h>
#include <string.h>

#define DV_STORE_INSPECT_SERVER_SQL                                                                \
    "SELECT hostname, pid, heartbeat_at FROM servers ORDER BY heartbeat_at DESC LIMIT 1"

typedef sqlite3 DvInspectSqlite;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvInspectSqlite, sqlite3_close_v2)
typedef sqlite3_stmt DvInspectStmt;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvInspectStmt, sqlite3_finalize)

static void
dv_store_inspection_set(DvStoreInspection *ret, GPtrArray *tables)
{
    if (tables->len == 0) {
        ret->content = DV_STORE_CONTENT_EMPTY;
        return;
    }
    for (guint i = 0; i < tables->len; i++) {
        if (g_strcmp0(g_ptr_array_index(tables, i), "schema_history") == 0) {
            ret->content = DV_STORE_CONTENT_DROVER;
            return;
        }
    }
    ret->content = DV_STORE_CONTENT_OTHER;
    g_ptr_array_add(tables, NULL);
    {
        g_autofree char *all = g_strjoinv(", ", (char **)tables->pdata);
        ret->detail =
            g_strdup_printf("it holds %u tables, none of them Drover's (%s)", tables->len - 1, all);
    }
    g_ptr_array_remove_index(tables, tables->len - 1);
}

static gboolean
dv_store_inspect_sqlite_has(GPtrArray *tables, const char *name)
{
    for (guint i = 0; i < tables->len; i++)
        if (g_strcmp0(g_ptr_array_index(tables, i), name) == 0)
            return TRUE;
    return FALSE;
}

static gint64
dv_store_inspect_sqlite_int(sqlite3 *db, const char *sql)
{
    g_autoptr(DvInspectStmt) st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
        return 0;
    return sqlite3_column_int64(st, 0);
}

static gboolean
dv_store_inspect_sqlite(const char *path, DvStoreInspection *ret, GError **error)
{
    g_autoptr(DvInspectSqlite) db = NULL;
    g_autoptr(DvInspectStmt) st = NULL;
    g_autoptr(GPtrArray) tables = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *wal = g_strconcat(path, "-wal", NULL);
    g_autofree char *uri = NULL;
    char magic[16] = { 0 };
    FILE *f;
    gsize n;
    int rc;

    if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        ret->content = DV_STORE_CONTENT_EMPTY;
        return TRUE;
    }
    if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
        ret->content = DV_STORE_CONTENT_OTHER;
        ret->detail = g_strdup("it is not a regular file");
        return TRUE;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot read %s: %s", path,
                    g_strerror(errno));
        return FALSE;
    }
    n = fread(magic, 1, sizeof(magic), f);
    fclose(f);
    if (n == 0) {
        ret->content = DV_STORE_CONTENT_EMPTY;
        return TRUE;
    }
    if (n < sizeof(magic) || memcmp(magic, "SQLite format 3", 16) != 0) {
        ret->content = DV_STORE_CONTENT_OTHER;
        ret->detail = g_strdup("it is not a SQLite database");
        return TRUE;
    }
    /* Without a WAL to read, "immutable" opens with no lock, -shm or write
     * at all; with one, a plain read-only connection reads it. */
    {
        g_autofree char *abs = g_canonicalize_filename(path, NULL);
        g_autofree char *escaped = g_uri_escape_string(abs, "/", FALSE);
        uri = g_strdup_printf("file:%s?%s", escaped,
                              g_file_test(wal, G_FILE_TEST_EXISTS) ? "mode=ro" : "immutable=1");
    }
    rc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                         NULL);
    if (rc != SQLITE_OK) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot open %s: %s", path,
                    db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        return FALSE;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT name FROM sqlite_master WHERE type = 'table' "
                           "AND name NOT LIKE 'sqlite_%' ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK) {
        ret->content = DV_STORE_CONTENT_OTHER;
        ret->detail = g_strdup_printf("it cannot be read as a database: %s", sqlite3_errmsg(db));
        return TRUE;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        g_ptr_array_add(tables, g_strdup((const char *)sqlite3_column_text(st, 0)));
    if (rc != SQLITE_DONE) {
        ret->content = DV_STORE_CONTENT_OTHER;
        ret->detail = g_strdup_printf("it cannot be read as a database: %s", sqlite3_errmsg(db));
        return TRUE;
    }
    dv_store_inspection_set(ret, tables);
    if (ret->content != DV_STORE_CONTENT_DROVER)
        return TRUE;
    ret->schema_version = (guint)dv_store_inspect_sqlite_int(
        db, "SELECT MAX(version) FROM schema_history WHERE success = 1");
    if (dv_store_inspect_sqlite_has(tables, "secrets"))
        ret->sealed_count = dv_store_inspect_sqlite_int(db, "SELECT COUNT(*) FROM secrets");
    if (dv_store_inspect_sqlite_has(tables, "key_versions"))
        ret->key_versions = dv_store_inspect_sqlite_int(db, "SELECT COUNT(*) FROM key_versions");
    if (dv_store_inspect_sqlite_has(tables, "servers")) {
        g_autoptr(DvInspectStmt) sv = NULL;
        if (sqlite3_prepare_v2(db, DV_STORE_INSPECT_SERVER_SQL, -1, &sv, NULL) == SQLITE_OK &&
            sqlite3_step(sv) == SQLITE_ROW) {
            ret->server_host = g_strdup((const char *)sqlite3_column_text(sv, 0));
            ret->server_pid = sqlite3_column_int64(sv, 1);
            ret->server_heartbeat = sqlite3_column_int64(sv, 2);
        }
    }
    return TRUE;
}

static gint64
dv_store_inspect_pg_int(DvDb *db, const char *sql)
{
    g_autoptr(DvSqlRows) rows = dv_db_query(db, sql, DV_SQL_NO_ARGS, NULL);
    if (rows == NULL || dv_sql_rows_get_n_rows(rows) == 0)
        return 0;
    return dv_sql_rows_get_int(rows, 0, 0);
}

static gboolean
dv_store_inspect_pg(const char *uri, DvStoreInspection *ret, GError **error)
{
    g_autoptr(DvDb) db = dv_db_open(uri, error);
    g_autoptr(DvSqlRows) rows = NULL;
    g_autoptr(GPtrArray) tables = g_ptr_array_new_with_free_func(g_free);

    if (db == NULL)
        return FALSE;
    rows = dv_db_query(db,
                       "SELECT table_name FROM information_schema.tables "
                       "WHERE table_schema = current_schema() ORDER BY table_name",
                       DV_SQL_NO_ARGS, error);
    if (rows == NULL)
        return FALSE;
    for (guint i = 0; i < dv_sql_rows_get_n_rows(rows); i++)
        g_ptr_array_add(tables, g_strdup(dv_sql_rows_get_text(rows, i, 0)));
    dv_store_inspection_set(ret, tables);
    if (ret->content != DV_STORE_CONTENT_DROVER)
        return TRUE;
    ret->schema_version = (guint)dv_store_inspect_pg_int(
        db, "SELECT MAX(version) FROM schema_history WHERE success = 1");
    if (dv_store_inspect_sqlite_has(tables, "secrets"))
        ret->sealed_count = dv_store_inspect_pg_int(db, "SELECT COUNT(*) FROM secrets");
    if (dv_store_inspect_sqlite_has(tables, "key_versions"))
        ret->key_versions = dv_store_inspect_pg_int(db, "SELECT COUNT(*) FROM key_versions");
    if (dv_store_inspect_sqlite_has(tables, "servers")) {
        g_autoptr(DvSqlRows) sv =
            dv_db_query(db, DV_STORE_INSPECT_SERVER_SQL, DV_SQL_NO_ARGS, NULL);
        if (sv != NULL && dv_sql_rows_get_n_rows(sv) > 0) {
            ret->server_host = g_strdup(dv_sql_rows_get_text(sv, 0, 0));
            ret->server_pid = dv_sql_rows_get_int(sv, 0, 1);
            ret->server_heartbeat = dv_sql_rows_get_int(sv, 0, 2);
        }
    }
    return TRUE;
}

gboolean
dv_store_inspect(const char *location, DvStoreInspection *ret, GError **error)
{
    DvStoreInspection r = { 0 };

    g_return_val_if_fail(location != NULL && ret != NULL, FALSE);
    if (g_str_has_prefix(location, "postgresql://") || g_str_has_prefix(location, "postgres://")) {
        if (!dv_store_inspect_pg(location, &r, error)) {
            dv_store_inspection_clear(&r);
            return FALSE;
        }
    } else if (!dv_store_inspect_sqlite(location, &r, error)) {
        dv_store_inspection_clear(&r);
        return FALSE;
    }
    *ret = r;
    return TRUE;
}

void
dv_store_inspection_clear(DvStoreInspection *inspection)
{
    g_clear_pointer(&inspection->detail, g_free);
    g_clear_pointer(&inspection->server_host, g_free);
}

gboolean
dv_store_drop_new_pg(const char *uri, GError **error)
{
    g_autoptr(DvDb) db = dv_db_open(uri, error);
    g_autoptr(DvSqlRows) rows = NULL;
    gboolean ours = FALSE;

    if (db == NULL)
        return FALSE;
    rows = dv_db_query(db,
                       "SELECT table_name FROM information_schema.tables "
                       "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
                       DV_SQL_NO_ARGS, error);
    if (rows == NULL)
        return FALSE;
    for (guint i = 0; i < dv_sql_rows_get_n_rows(rows); i++)
        ours |= g_strcmp0(dv_sql_rows_get_text(rows, i, 0), "schema_history") == 0;
    if (!ours) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_CONFLICT,
                            "the database holds no Drover schema; nothing was dropped");
        return FALSE;
    }
    for (guint i = 0; i < dv_sql_rows_get_n_rows(rows); i++) {
        const char *name = dv_sql_rows_get_text(rows, i, 0);
        g_autofree char *sql = NULL;
        /* Names come from the catalog; quote them anyway. */
        if (strchr(name, '"') != NULL)
            continue;
        sql = g_strdup_printf("DROP TABLE IF EXISTS \"%s\" CASCADE", name);
        if (!dv_db_exec(db, sql, DV_SQL_NO_ARGS, NULL, error))
            return FALSE;
    }
    return TRUE;
}
