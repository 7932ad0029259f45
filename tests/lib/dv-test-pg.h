/* PostgreSQL databases for the tests that run on DV_TEST_PG_URI (the
 * server tests/services/with-services starts): a fresh database per test,
 * dropped again afterwards. */
#pragma once

#include <glib.h>

#include "dv-test-util.h"

G_BEGIN_DECLS

/* Runs @sql on DV_TEST_PG_URI itself (the admin connection); asserts it works. */
void dv_test_pg_admin_exec(const char *sql);
/* @uri (postgresql://...) with its database name replaced by @dbname, the
 * query kept (owned). */
char *dv_test_pg_uri_with_dbname(const char *uri, const char *dbname);
/* Creates an empty database "<@prefix>_<random>" on the server of
 * DV_TEST_PG_URI.  Returns its URI and, in @ret_name, its name (both owned). */
char *dv_test_pg_new_database(const char *prefix, char **ret_name);
/* Drops the database @name, closing its connections (NULL: nothing). */
void dv_test_pg_drop_database(const char *name);

/* droverd (dv_test_daemon_start()) on SQLite when @backend is "sqlite", or
 * on a fresh PostgreSQL database "<@prefix>_<random>" when it is
 * "postgresql" (its name in @ret_pg_db, untouched on SQLite; drop it with
 * dv_test_pg_drop_database()).  Fails the test when DV_TEST_PG_URI is not
 * set: run under tests/services/with-services. */
DvTestDaemon *dv_test_daemon_start_on(const char *backend, const char *prefix, char **ret_pg_db);

G_END_DECLS
