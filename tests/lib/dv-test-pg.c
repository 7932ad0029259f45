#define G_LOG_DOMAIN "DvTestPg"

#include "dv-test-pg.h"
#include "dv-db.h"

#include <string.h>

void
dv_test_pg_admin_exec(const char *sql)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvDb) admin = dv_db_open(g_getenv("DV_TEST_PG_URI"), &error);

    g_assert_no_error(error);
    dv_db_exec(admin, sql, DV_SQL_NO_ARGS, NULL, &error);
    g_assert_no_error(error);
}

char *
dv_test_pg_uri_with_dbname(const char *uri, const char *dbname)
{
    const char *authority = strstr(uri, "://");
    const char *slash;
    const char *query;

    g_assert_nonnull(authority);
    authority += 3;
    query = strchr(authority, '?');
    slash = strchr(authority, '/');
    if (slash != NULL && query != NULL && slash > query)
        slash = NULL;
    if (slash == NULL)
        slash = query != NULL ? query : authority + strlen(authority);
    return g_strdup_printf("%.*s/%s%s", (int)(slash - uri), uri, dbname,
                           query != NULL ? query : "");
}

char *
dv_test_pg_new_database(const char *prefix, char **ret_name)
{
    g_autofree char *name = g_strdup_printf("%s_%08x", prefix, g_random_int());
    g_autofree char *sql = g_strdup_printf("CREATE DATABASE %s", name);
    char *uri;

    dv_test_pg_admin_exec(sql);
    uri = dv_test_pg_uri_with_dbname(g_getenv("DV_TEST_PG_URI"), name);
    if (ret_name != NULL)
        *ret_name = g_steal_pointer(&name);
    return uri;
}

void
dv_test_pg_drop_database(const char *name)
{
    g_autofree char *sql = NULL;

    if (name == NULL)
        return;
    sql = g_strdup_printf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    dv_test_pg_admin_exec(sql);
}

DvTestDaemon *
dv_test_daemon_start_on(const char *backend, const char *prefix, char **ret_pg_db)
{
    g_autofree char *uri = NULL;
    const char *extra[] = { "--database", NULL, NULL };

    if (g_strcmp0(backend, "postgresql") != 0)
        return dv_test_daemon_start(NULL, NULL);
    if (g_getenv("DV_TEST_PG_URI") == NULL)
        g_error("DV_TEST_PG_URI is not set: run under tests/services/with-services");
    uri = dv_test_pg_new_database(prefix, ret_pg_db);
    extra[1] = uri;
    return dv_test_daemon_start(NULL, extra);
}
