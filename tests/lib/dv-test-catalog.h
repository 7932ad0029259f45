/* Shared by the tests that drive a DvEngine in process (the engine and
 * catalog tests, their system tiers): JSON bodies, jobs waited for and
 * read back from the store, the simulated host the catalog tests start
 * from.  Every helper asserts instead of returning an error. */
#pragma once

#include "dv-core.h"
#include "dv-engine.h"

G_BEGIN_DECLS

/* Parses @json, which must be an object (owned). */
JsonObject *dv_test_json_object(const char *json);

/* Waits up to @timeout_ms until @engine runs no job, then returns @job's
 * row from the store (owned), whatever its state. */
JsonObject *dv_test_engine_job_row(DvEngine *engine, JsonObject *job, guint timeout_ms);
/* Ends the test with the job row as text unless its state is "succeeded". */
void dv_test_assert_job_succeeded(JsonObject *row);
/* dv_test_engine_job_row() that also asserts the job succeeded. */
JsonObject *dv_test_engine_run(DvEngine *engine, JsonObject *job, guint timeout_ms);
/* Creates an object of @kind from @json as "tester" and runs its job to
 * success; returns the job row (owned). */
JsonObject *dv_test_engine_create(DvEngine *engine, DvKind kind, const char *json,
                                  guint timeout_ms);
/* Rows of @def in @engine's store. */
gint64 dv_test_engine_count(DvEngine *engine, const DvTableDef *def);

/* A DvEngine on @state_dir with 4 job workers. */
DvEngine *dv_test_engine_new(const char *state_dir, gboolean no_recover);
/* The same, with these libvirt URI parameters allowed in host URIs (a
 * private daemon's socket=). */
DvEngine *dv_test_engine_new_with_uri_parameters(const char *state_dir, gboolean no_recover,
                                                 const char *const *allow_uri_parameters);

/* Adds test-driver host "h1" (file <dir>/h1.xml) with VMs m0, m1, m2 and
 * stops m0, the catalogs' master.  Returns the host id (owned). */
char *dv_test_catalog_add_host(DvEngine *engine, const char *dir, guint timeout_ms);

/* The engine-tier fixture of the catalog tests: a temp dir, a DvEngine on
 * <tmpdir>/state and host "h1" (dv_test_catalog_add_host()). */
typedef struct {
    char *tmpdir;
    char *state_dir;
    DvEngine *engine;
    char *host_id;
    GPtrArray *keep; /* rows the helpers return, borrowed by the tests */
} DvTestCatalogEnv;

/* How long the catalog tests wait for a job. */
#define DV_TEST_CATALOG_WAIT_MS 60000

/* g_test_add() fixture functions: set up @env in a new temp dir; free the
 * engine, remove the temp dir and free what @env holds. */
void dv_test_catalog_env_setup(DvTestCatalogEnv *env, gconstpointer data);
void dv_test_catalog_env_teardown(DvTestCatalogEnv *env, gconstpointer data);
/* @env's store. */
DvStore *dv_test_env_store(DvTestCatalogEnv *env);
/* dv_test_engine_job_row() with @env's engine (owned). */
JsonObject *dv_test_env_job_wait(DvTestCatalogEnv *env, JsonObject *job);
/* Rows of @def in @env's store. */
gint64 dv_test_env_count(DvTestCatalogEnv *env, const DvTableDef *def);

/* Writes a job row "running" for catalog @catalog and makes it the
 * catalog's job, as if one of its jobs ran; returns the job id (owned). */
char *dv_test_catalog_fake_running_job(DvTestCatalogEnv *env, const char *catalog);

/* Takes snapshot @name of VM @vm through the engine and waits for it. */
void dv_test_engine_snapshot(DvEngine *engine, const char *vm, const char *name,
                             guint timeout_ms);
/* Writes @json's members into VM @name's row directly (no job). */
void dv_test_engine_set_vm(DvEngine *engine, const char *name, const char *json);
/* The engine's handle on host @host_id (owned). */
DvVirtHost *dv_test_engine_virt_host(DvEngine *engine, const char *host_id);
/* Names of the volumes in pool1 of host @host_id starting with @prefix,
 * joined by ' ' (owned). */
char *dv_test_engine_pool_names(DvEngine *engine, const char *host_id, const char *prefix);

/* An engine of its own on one backend, for the engine-tier tests that run
 * each case on SQLite and on PostgreSQL. */
typedef enum {
    DV_TEST_BACKEND_SQLITE,
    DV_TEST_BACKEND_PG,
} DvTestBackend;

/* Makes a temp dir "<@tag>-XXXXXX" (in @ret_tmpdir) and an engine with
 * @job_workers on @backend, simulated hosts allowed.  On PostgreSQL a fresh
 * database "<@tag>_<random>" (its name in @ret_pg_dbname); without the
 * server this fails the test when services are required and otherwise
 * returns NULL (the case then returns at once). */
DvEngine *dv_test_engine_on_backend(const char *tag, DvTestBackend backend, guint job_workers,
                                    char **ret_tmpdir, char **ret_pg_dbname);
/* Frees what dv_test_engine_on_backend() made; each may be NULL. */
void dv_test_engine_on_backend_free(DvEngine *engine, char *tmpdir, char *pg_dbname);

G_END_DECLS
