/* Shared by the access-control tests of the engine tier (test-authz,
 * test-scope, test-scope-index, test-catalog-scope): rows planted with SQL
 * in a store on either backend (host groups, hosts, VMs), users and
 * bindings made by the engine itself, resolved contexts and actors, and
 * each case registered on SQLite and on PostgreSQL.  Every helper asserts
 * instead of returning an error. */
#pragma once

#include "dv-auth.h"
#include "dv-authz.h"
#include "dv-core.h"
#include "dv-store.h"

G_BEGIN_DECLS

/* Runs @sql with its @n parameters @p on @store's database. */
void dv_test_scope_exec(DvStore *store, const char *sql, const DvSqlParam *p, guint n);
/* Host group @id (named @id) under @parent (NULL: a root). */
void dv_test_scope_add_group(DvStore *store, const char *id, const char *parent);
/* Host @id (named @id, URI test:///<id>, state ok) in group @group (NULL: none). */
void dv_test_scope_add_host(DvStore *store, const char *id, const char *group);
/* A shut-off VM row @id named @name on @host, owned by @owner (NULL: nobody),
 * with origin @origin and spec @spec (NULL: none). */
void dv_test_scope_add_vm(DvStore *store, const char *id, const char *name, const char *host,
                          const char *owner, const char *origin, const char *spec);
/* A local user @name with a fixed password; returns its id (owned). */
char *dv_test_scope_add_user(DvAuth *auth, const char *name);
/* A binding made by the engine itself (no granter): principal @pkind
 * @principal, @role on @scope_kind @scope_id (NULL for global), @effect;
 * @quota_vms < 0: no quota.  Returns its id (owned). */
char *dv_test_scope_bind(DvStore *store, const char *pkind, const char *principal, const char *role,
                         const char *scope_kind, const char *scope_id, const char *effect,
                         gint64 quota_vms);
/* The resolved context of user @user_id in directory @groups (owned). */
DvAuthzContext *dv_test_scope_context(DvStore *store, const char *user_id,
                                      const char *const *groups);
/* An actor for user @user_id named @name carrying its resolved context (owned). */
DvActor *dv_test_scope_actor(DvStore *store, const char *user_id, const char *name);

/* g_test_add() of @func at "@path/sqlite" with data DV_TEST_BACKEND_SQLITE
 * and at "@path/pg" with DV_TEST_BACKEND_PG (dv-test-catalog.h); the
 * fixture is @fixture_size bytes, zeroed. */
void dv_test_add_both(const char *path, gsize fixture_size, GTestFixtureFunc setup,
                      GTestFixtureFunc func, GTestFixtureFunc teardown);

G_END_DECLS
