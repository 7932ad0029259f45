/* Helpers shared by the API tests and the benchmarks: simulated hosts for
 * libvirt's test driver and a droverd started as a real process. */
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
} DvTestDaemon;

/* Starts droverd on 127.0.0.1:0 in @state_dir (NULL: a new temp dir) with
 * DV_DEBUG_JOBS=1, waits until it serves, and logs in as admin.
 * @extra_args may be NULL. */
DvTestDaemon *dv_test_daemon_start(const char *state_dir, const char *const *extra_args);
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

/* Asserts an error response: status and error code, and the field when
 * @field is not NULL. */
void dv_test_assert_error(JsonNode *resp, guint status, guint want_status, const char *code,
                          const char *field);

/* Asserts nothing in @path changed: compares item counts of a list. */
gint64 dv_test_count(DvTestDaemon *d, const char *list_path);

/* rm -rf @dir (may be NULL); failures are ignored. */
void dv_test_remove_tree(const char *dir);

/* TRUE when tests must not skip for missing services (CI). */
gboolean dv_test_require_services(void);

G_END_DECLS
