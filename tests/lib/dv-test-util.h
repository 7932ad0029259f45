/* Helpers shared by the tests and the benchmarks: simulated hosts for
 * libvirt's test driver, a droverd started as a real process, and files
 * and programs of the build (drover-setup) for the setup and upgrade tests. */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

/* Writes a test-driver host with @ndomains domains (names prefixed
 * @prefix), a dir pool "pool1" with one volume per domain and a network
 * "net1".  Returns the file path (owned). */
char *dv_test_write_host_xml(const char *dir, const char *name, const char *prefix,
                             guint ndomains);

typedef struct {
    char *state_dir;
    char *url;          /* http://127.0.0.1:PORT */
    char *token;
    char *password;
    GSubprocess *proc;
    char **extra_args;  /* given again on restart */
    SoupSession *session;
    gboolean owns_state_dir;
    int stderr_fd; /* droverd's stderr when > 0, else droverd.err */
} DvTestDaemon;

/* Starts droverd on 127.0.0.1:0 in @state_dir (NULL: a new temp dir) with
 * DV_DEBUG_JOBS=1, waits until it serves, and logs in as admin.
 * @extra_args may be NULL. */
DvTestDaemon *dv_test_daemon_start(const char *state_dir, const char *const *extra_args);
/* The same with a copy of @stderr_fd as droverd's stderr (the journal's
 * stream in api-journal); the caller keeps @stderr_fd. */
DvTestDaemon *dv_test_daemon_start_with_stderr(const char *state_dir, const char *const *extra_args,
                                               int stderr_fd);
/* Starts it again on the same state directory (after a stop). */
gboolean dv_test_daemon_restart(DvTestDaemon *d);
/* SIGTERM (graceful) or SIGKILL, then wait. */
void dv_test_daemon_stop(DvTestDaemon *d, gboolean kill9);
void dv_test_daemon_free(DvTestDaemon *d); /* stops it if running; removes its temp dir */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvTestDaemon, dv_test_daemon_free)

/* One request; @body may be NULL.  Returns the parsed JSON response
 * (NULL if the body is not JSON) and the status in @ret_status. */
JsonNode *dv_test_request(DvTestDaemon *d, const char *method, const char *path,
                          const char *body, guint *ret_status);
/* Like dv_test_request() but with no Authorization header. */
JsonNode *dv_test_request_anon(DvTestDaemon *d, const char *method, const char *path,
                               const char *body, guint *ret_status);
/* Like dv_test_request() with @token as the bearer (NULL: none). */
JsonNode *dv_test_request_as(DvTestDaemon *d, const char *token, const char *method,
                             const char *path, const char *body, guint *ret_status);
/* dv_test_request_as() that ends the test unless the status is
 * @want_status and returns the body, which must be an object (owned). */
JsonObject *dv_test_request_as_ok(DvTestDaemon *d, const char *token, const char *method,
                                  const char *path, const char *body, guint want_status);
/* Reads GET /api/v1/jobs/@job_id/events with @token (NULL: none) to its
 * "end" event, which must come: the data of every progress event, in
 * order (owned), with the status in @ret_status; NULL when the status is
 * not 200 (a refusal). */
GPtrArray *dv_test_job_events(DvTestDaemon *d, const char *token, const char *job_id,
                              guint *ret_status);
/* Raw body of any size (for the body cap). */
JsonNode *dv_test_request_bytes(DvTestDaemon *d, const char *method, const char *path,
                                GBytes *body, guint *ret_status);

/* POSTs/PATCHes/DELETEs, asserts 202 and waits for the job to finish;
 * returns the final job object. */
JsonObject *dv_test_run_job(DvTestDaemon *d, const char *method, const char *path,
                            const char *body);
JsonObject *dv_test_wait_job(DvTestDaemon *d, const char *job_id, guint timeout_s);

/* Ends the test with the job as text unless its state is @state. */
void dv_test_assert_job_state(JsonObject *job, const char *state);
/* dv_test_run_job() that also asserts the job succeeded. */
void dv_test_run_job_ok(DvTestDaemon *d, const char *method, const char *path, const char *body);
/* Through @d's API: test host "h1" (file <dir>/h1.xml, VMs m0, m1, m2), m0
 * stopped with snapshot s1, and catalog cat1 of 2 machines from it.
 * test:// cannot upload identity disks, so the catalog's job fails with
 * its base and overlays made; asserted. */
void dv_test_api_make_cat1(DvTestDaemon *d, const char *dir);

/* The API tests' fixture: a droverd of its own (dv_test_daemon_start with
 * no arguments) and a temp dir for simulated host files. */
typedef struct {
    DvTestDaemon *d;
    char *hostdir;
} DvTestApiFixture;
void dv_test_api_fixture_setup(DvTestApiFixture *f, gconstpointer data);
void dv_test_api_fixture_teardown(DvTestApiFixture *f, gconstpointer data);

/* Asserts an error response: status and error code, and the field when
 * @field is not NULL. */
void dv_test_assert_error(JsonNode *resp, guint status, guint want_status, const char *code,
                          const char *field);

/* Asserts nothing in @path changed: compares item counts of a list. */
gint64 dv_test_count(DvTestDaemon *d, const char *list_path);

/* TRUE when tests must not skip for missing services (CI). */
gboolean dv_test_require_services(void);

/* The droverd binary of this build (DV_TOP_BUILDDIR overrides). */
const char *dv_test_droverd_path(void);
/* TRUE when the service @what is there (@var, e.g. DV_TEST_PG_URI, is set);
 * otherwise aborts the test when services are required and skips it
 * with a message elsewhere. */
gboolean dv_test_have_service(const char *var, const char *what);

/* The variable's value; a test needing it fails when it is not set. */
const char *dv_test_env(const char *name);

/* Removes @path and everything below it, never following a symlink
 * (NULL: nothing).  Errors are ignored: a temp dir's cleanup. */
void dv_test_rm_rf(const char *path);
/* SHA-256 of the file's content, hex (owned); asserts it can be read. */
char *dv_test_file_sha256(const char *path);
/* Asserts the file's content still hashes to @before (a dv_test_file_sha256()). */
void dv_test_assert_file_unchanged(const char *path, const char *before);
/* A file of the build: <DV_TOP_BUILDDIR, or the build dir configured>/@first/...
 * (NULL-terminated path elements; owned). */
char *dv_test_build_path(const char *first, ...) G_GNUC_NULL_TERMINATED;

typedef enum {
    DV_TEST_TREE_DEFAULT = 0,
    /* Also size and modification time: a file written again with the same
     * content, or a directory whose entries came and went, counts as changed. */
    DV_TEST_TREE_TIMES = 1 << 0,
} DvTestTreeFlags;

/* Every entry under @dir, sorted, one a line: relative path, mode, owner,
 * (with DV_TEST_TREE_TIMES size and mtime,) and a regular file's SHA-256.
 * "Nothing changed" compares two of these (owned). */
char *dv_test_tree_snapshot(const char *dir, DvTestTreeFlags flags);
/* Asserts dv_test_tree_snapshot(@dir, @flags) is still @before. */
void dv_test_assert_tree_unchanged(const char *dir, DvTestTreeFlags flags, const char *before);

/* userdel @name (NULL: nothing); its group goes with it.  Errors are ignored. */
void dv_test_remove_account(const char *name);
/* Removes the accounts "<@prefix><pid><rest>" (rest not empty and not a
 * digit) whose test process <pid> is gone: what a crashed run left behind. */
void dv_test_remove_stale_accounts(const char *prefix);

/* Runs @argv (argv[0] looked up in PATH) with @envp (NULL: ours) and waits.
 * Returns the exit status (128 + signal when killed); stdout and stderr
 * (owned) in @ret_out and @ret_err when not NULL.  Asserts it could start. */
int dv_test_spawn(const char *const *argv, const char *const *envp, char **ret_out, char **ret_err);
/* The built drover-setup followed by @args, NULL-terminated, for
 * dv_test_spawn() or a GSubprocess (owned, and so are its strings). */
GPtrArray *dv_test_setup_argv_new(const char *const *args);
/* Runs the built drover-setup with @args (NULL-terminated) through
 * dv_test_spawn() and logs its output with g_test_message(). */
int dv_test_run_setup(const char *const *args, char **ret_out, char **ret_err);

/* Keeps every structured log entry of this process from now on (each
 * still goes to GLib's default writer too), for tests of what the engine
 * logs (docs/METRICS.md, "Logs").  Call once, before threads log. */
void dv_test_log_capture_start(void);
/* The fields (key -> text, a new reference) of the first entry kept at
 * @level from @domain whose MESSAGE holds @needle, waiting up to
 * @timeout_ms for it; NULL when none came. */
GHashTable *dv_test_log_capture_find(const char *domain, GLogLevelFlags level, const char *needle,
                                     guint timeout_ms);
/* How many entries kept so far match as above. */
guint dv_test_log_capture_count(const char *domain, GLogLevelFlags level, const char *needle);

G_END_DECLS
