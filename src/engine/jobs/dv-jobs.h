/* Persisted jobs with weighted steps, progress, cancellation and resume.
 *
 * Every change Drover makes runs as a job.  A job kind names a function
 * that runs in a worker thread and reports its steps; the manager persists
 * state, progress and errors in the store's jobs table and tells a listener
 * (the daemon's event streams) about every change.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "dv-store.h"

G_BEGIN_DECLS

typedef struct _DvJob DvJob;
typedef struct _DvJobManager DvJobManager;

typedef gboolean (*DvJobFunc)(DvJob *job, gpointer user_data, GError **error);

typedef struct {
    const char *kind;        /* "vm.create" */
    DvJobFunc run;
    gpointer user_data;
    /* TRUE when every step is idempotent, so a job interrupted by a crash
     * may simply run again from the start; FALSE makes it fail instead. */
    gboolean resumable;
} DvJobKind;

typedef struct {
    const char *name;
    guint weight;
} DvJobStep;

#define DV_JOBS_MAX_QUEUED 20000

/* Called from worker threads with the job's current JSON (borrowed). */
typedef void (*DvJobListener)(const char *job_id, JsonObject *job, gboolean finished,
                              gpointer user_data);

DvJobManager *dv_job_manager_new(DvStore *store, const char *server_id, guint max_workers);
void dv_job_manager_free(DvJobManager *mgr);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvJobManager, dv_job_manager_free)

void dv_job_manager_register_kind(DvJobManager *mgr, const DvJobKind *kind);
/* The registered kinds' names, sorted (owned array of owned strings):
 * tools/check-ops checks that each belongs to an operation. */
GPtrArray *dv_job_manager_dup_kinds(DvJobManager *mgr);
void dv_job_manager_set_listener(DvJobManager *mgr, DvJobListener listener, gpointer user_data);

/* Deals with jobs a previous run of the server left queued or running:
 * resumable kinds are queued again, the others fail with "interrupted by
 * a server restart".  Call once at start, before serving.  The engine
 * then rolls back rows that no queued or running job owns
 * (dv_engine_recover_rows()): a job that owns a row in a transitional
 * state writes it in its submit transaction (dv_job_manager_submit_with())
 * or in its own steps, never before it is submitted. */
gboolean dv_job_manager_recover(DvJobManager *mgr, guint *ret_resumed, guint *ret_failed,
                                GError **error);
/* Leases (docs/DECISIONS.md, "Leased jobs"): every queued or running job
 * of this server holds a lease in its row, renewed every @heartbeat_ms
 * and valid @lease_ms from the database's now.  Defaults: 20 s and 5 s
 * (DV_JOB_LEASE_MS, DV_JOB_HEARTBEAT_MS).  A step starts only while at
 * least a quarter of the lease is left.  Call before
 * dv_job_manager_start_leases(). */
#define DV_JOB_LEASE_MS 20000
#define DV_JOB_HEARTBEAT_MS 5000
void dv_job_manager_set_lease(DvJobManager *mgr, guint lease_ms, guint heartbeat_ms);
/* Starts the lease thread: renews this server's leases and, on each
 * heartbeat, takes over queued or running jobs whose lease expired
 * (another server died or stopped answering): resumable kinds run again
 * here from their last committed step, the others end failed saying so.
 * A server (droverd) calls it once it serves; tools that only read the
 * database do not. */
void dv_job_manager_start_leases(DvJobManager *mgr);
/* Jobs this server took over from another since it started. */
guint dv_job_manager_get_n_takeovers(DvJobManager *mgr);
/* Tests: stop (TRUE) or resume the lease thread's work, as if the
 * server were paused; the jobs' own writes go on. */
void dv_job_manager_pause_leases_for_test(DvJobManager *mgr, gboolean paused);

/* Jobs owned by these servers (ids, NULL-terminated) are still being run
 * by them and are left alone by recovery. */
void dv_job_manager_set_live_servers(DvJobManager *mgr, const char *const *server_ids);

typedef struct {
    const char *kind;
    const char *target_type;
    const char *target_id;
    const char *target_name;
    const char *host_id;     /* host the job works on, may be NULL */
    JsonObject *params;      /* may be NULL; copied */
    const char *created_by;  /* user name */
    const char *id;          /* may be NULL: a new UUID.  Set by a caller whose
                              * submit transaction records the job's id in a
                              * row it owns (a catalog's job_id). */
    /* Exclusive scopes taken in the transaction that writes the job (a
     * catalog): a second job on a busy scope is DV_ERROR_CONFLICT naming
     * the first, on whichever server it was accepted. */
    const DvJobScope *scopes;
    guint n_scopes;
} DvJobRequest;

/* Persists a queued job and schedules it.  Returns the job record. */
JsonObject *dv_job_manager_submit(DvJobManager *mgr, const DvJobRequest *req, GError **error);
/* dv_job_manager_submit() that also runs @func (may be NULL) in the
 * transaction that writes the job row: a row the job owns (a VM in
 * "creating") is never saved without its job, whatever stops the server
 * in between.  Nothing is written when @func fails. */
JsonObject *dv_job_manager_submit_with(DvJobManager *mgr, const DvJobRequest *req,
                                       DvStoreTxnFunc func, gpointer user_data, GError **error);
/* Writes a job that ended before it ran, failed with @why: start-up
 * recovery records so what it settled, visible in the jobs list. */
JsonObject *dv_job_manager_record_failed(DvJobManager *mgr, const DvJobRequest *req,
                                         const GError *why, GError **error);

/* Ends the store refused to save.  A job whose end (state, error,
 * result) cannot be written keeps it in memory and a saver thread writes
 * it again with backoff (0.2 s doubling to 30 s; warnings at attempts 1,
 * 2, 4, 8, ...) until the store takes it; meanwhile the API shows this
 * record instead of the stale row.  Returns a copy, or NULL when the job
 * has no unsaved end. */
JsonObject *dv_job_manager_dup_unsaved(DvJobManager *mgr, const char *job_id);
guint dv_job_manager_get_n_unsaved(DvJobManager *mgr);
/* Tests: the next @n_failures saves of a job's end fail as if the disk
 * were full. */
void dv_job_manager_set_save_faults_for_test(DvJobManager *mgr, guint n_failures);

/* Requests cancellation; DV_ERROR_CONFLICT if the job already finished
 * (also when its end is not saved yet). */
gboolean dv_job_manager_cancel(DvJobManager *mgr, const char *job_id, GError **error);

/* Waits until no job runs (tests, shutdown); FALSE on timeout. */
gboolean dv_job_manager_wait_idle(DvJobManager *mgr, guint timeout_ms);
guint dv_job_manager_get_n_active(DvJobManager *mgr);
/* How many of this server's jobs on @host_id are queued or running
 * (@ret_active), and a count that moves whenever one of them starts or
 * ends: a reader of the host that saw the same count before and after,
 * and no job active, read nothing a job of Drover's was changing. */
guint64 dv_job_manager_host_activity(DvJobManager *mgr, const char *host_id, guint *ret_active);

/* Stops taking new work and waits for running jobs up to @timeout_ms;
 * jobs still running afterwards stay "running" in the store and are
 * recovered at the next start. */
void dv_job_manager_shutdown(DvJobManager *mgr, guint timeout_ms);

/* --- inside a running job ------------------------------------------ */

const char *dv_job_get_id(DvJob *job);
JsonObject *dv_job_get_params(DvJob *job);      /* borrowed */
const char *dv_job_get_target_id(DvJob *job);
guint dv_job_get_attempt(DvJob *job);            /* 1 on the first run */
GCancellable *dv_job_get_cancellable(DvJob *job);

/* Declares the steps (copied) and their weights; call once, first. */
void dv_job_set_steps(DvJob *job, const DvJobStep *steps, guint n_steps);
/* Starts step @name, finishing the previous one.  Fails with
 * DV_ERROR_CANCELLED when cancellation was asked for. */
gboolean dv_job_step(DvJob *job, const char *name, GError **error);
/* Fraction (0..1) of the current step that is done. */
void dv_job_step_progress(DvJob *job, double fraction);
/* Sets the target once the job knows it (e.g. the new object's id). */
void dv_job_set_target(DvJob *job, const char *target_id, const char *target_name);
/* Result object of the job (copied into the record when it finishes). */
void dv_job_set_result(DvJob *job, JsonObject *result);
gboolean dv_job_is_cancelled(DvJob *job);

G_END_DECLS
