#define G_LOG_DOMAIN "DvJobs"

#include "dv-jobs.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-metrics.h"

#define DV_JOB_PERSIST_INTERVAL_US (250 * 1000)
/* A job's end that the store refused is saved again after these waits
 * (doubling); at most one warning a minute for other failed writes. */
#define DV_JOB_RESAVE_FIRST_US (200 * 1000)
#define DV_JOB_RESAVE_MAX_US (30 * G_USEC_PER_SEC)
#define DV_JOB_WARN_INTERVAL_US (60 * G_USEC_PER_SEC)

static DvMetric dv_metric_job_duration = DV_METRIC_HISTOGRAM(
    "drover_job_duration_seconds", "Time from a job's start to its end, by kind, on this server.",
    dv_metrics_buckets_slow, "kind");
static DvMetric dv_metric_job_queue_wait =
    DV_METRIC_HISTOGRAM("drover_job_queue_wait_seconds",
                        "Time a job waited from its acceptance to its first start, by kind.",
                        dv_metrics_buckets_slow, "kind");
static DvMetric dv_metric_job_takeovers = DV_METRIC_COUNTER(
    "drover_job_takeovers_total",
    "Jobs this server took over from another whose lease expired, by kind.", "kind");
static DvMetric dv_metric_jobs_finished =
    DV_METRIC_COUNTER("drover_jobs_finished_total",
                      "Jobs this server finished, by kind and end state.", "kind", "state");

static void dv_job_report_end(JsonObject *record, const char *state, const GError *error);

typedef struct {
    char *name;
    guint weight;
    char *state; /* "pending", "running", "done", "failed" */
} DvJobStepState;

struct _DvJob {
    DvJobManager *mgr;
    char *id;
    const DvJobKind *kind;
    JsonObject *record;     /* the job row as last persisted / notified */
    JsonObject *params;
    GPtrArray *steps;       /* DvJobStepState */
    int current;            /* index into steps, -1 before the first */
    double fraction;
    GCancellable *cancellable;
    JsonObject *result;
    guint attempt;
    gint64 last_persist;
    gboolean ended;         /* under mgr->lock: its end is decided */
    char *host_id;          /* the host it works on, or NULL (read only) */
    /* The lease, under mgr->lock: the epoch every write is conditional on,
     * the monotonic instant it runs out at the latest (measured from
     * before the statement that took or renewed it), and whether another
     * server took the job over (then nothing more is written). */
    gint64 epoch;
    gint64 lease_deadline;
    gboolean fenced;
};

/* A job that ended but whose end the store refused (disk full, I/O
 * error): kept here until a retry saves it, and shown from here. */
typedef struct {
    JsonObject *record;     /* the final record; never changed again */
    gint64 epoch;           /* the lease epoch it is written at */
    guint attempts;         /* saves tried */
    gint64 next_try;        /* monotonic time */
    gint64 wait;            /* current backoff */
} DvJobUnsaved;

struct _DvJobManager {
    DvStore *store;
    char *server_id;
    GThreadPool *pool;
    GHashTable *kinds;       /* kind name -> DvJobKind* (owned copy) */
    GMutex lock;
    GCond cond;              /* idle and target-lock changes */
    GHashTable *active;      /* id -> DvJob* (queued or running here) */
    GHashTable *busy_targets; /* target id -> job id, while running */
    GHashTable *host_gen;    /* host id -> guint64*: jobs on it started or ended */
    GRWLock listener_lock;   /* held for reading while the listener runs */
    DvJobListener listener;
    gpointer listener_data;
    char **live_servers;
    gboolean shutting_down;
    GHashTable *unsaved;     /* id -> DvJobUnsaved*, under lock */
    GThread *saver;          /* retries unsaved ends while any is left */
    gboolean saver_running;
    gboolean saver_stop;
    guint save_faults;       /* tests: job ends still to refuse */
    gint64 last_warn;        /* rate limit of "cannot save job" */
    gint64 lease_us;         /* leases (dv_job_manager_set_lease()) */
    gint64 heartbeat_us;
    GThread *leaser; /* renews leases, takes over expired ones */
    gboolean leaser_stop;
    gboolean leases_paused; /* tests */
    guint takeovers;
    guint warn_suppressed;
};

static void
dv_job_unsaved_free(gpointer data)
{
    DvJobUnsaved *u = data;
    json_object_unref(u->record);
    g_free(u);
}

static void
dv_job_step_state_free(gpointer data)
{
    DvJobStepState *s = data;
    g_free(s->name);
    g_free(s->state);
    g_free(s);
}

static void
dv_job_free(DvJob *job)
{
    if (job == NULL)
        return;
    g_free(job->id);
    g_free(job->host_id);
    g_clear_pointer(&job->record, json_object_unref);
    g_clear_pointer(&job->params, json_object_unref);
    g_clear_pointer(&job->steps, g_ptr_array_unref);
    g_clear_object(&job->cancellable);
    g_clear_pointer(&job->result, json_object_unref);
    g_free(job);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvJob, dv_job_free)

static JsonArray *
dv_job_steps_to_json(DvJob *job)
{
    JsonArray *arr = json_array_new();
    for (guint i = 0; i < job->steps->len; i++) {
        DvJobStepState *s = g_ptr_array_index(job->steps, i);
        JsonObject *o = json_object_new();
        json_object_set_string_member(o, "name", s->name);
        json_object_set_int_member(o, "weight", s->weight);
        json_object_set_string_member(o, "state", s->state);
        json_array_add_object_element(arr, o);
    }
    return arr;
}

static gint64
dv_job_compute_progress(DvJob *job)
{
    guint total = 0;
    double done = 0;

    for (guint i = 0; i < job->steps->len; i++) {
        DvJobStepState *s = g_ptr_array_index(job->steps, i);
        total += s->weight;
        if (g_strcmp0(s->state, "done") == 0)
            done += s->weight;
        else if ((int)i == job->current)
            done += s->weight * CLAMP(job->fraction, 0.0, 1.0);
    }
    if (total == 0)
        return 0;
    return (gint64)(done * 100.0 / total);
}

static gpointer dv_job_manager_saver(gpointer data);
static JsonObject *dv_error_to_json(const GError *error, gboolean own);

/* One warning for a failed write, then at most one a minute with the
 * number left out: a full disk must not fill the log as well. */
static void
dv_job_manager_warn_save(DvJobManager *mgr, const char *job_id, const GError *error)
{
    gint64 now = g_get_monotonic_time();
    guint suppressed;

    g_mutex_lock(&mgr->lock);
    if (mgr->last_warn != 0 && now - mgr->last_warn < DV_JOB_WARN_INTERVAL_US) {
        mgr->warn_suppressed++;
        g_mutex_unlock(&mgr->lock);
        return;
    }
    mgr->last_warn = now;
    suppressed = mgr->warn_suppressed;
    mgr->warn_suppressed = 0;
    g_mutex_unlock(&mgr->lock);
    if (suppressed > 0)
        g_warning("cannot save job %s: %s (%u more failed writes of jobs not logged)", job_id,
                  error->message, suppressed);
    else
        g_warning("cannot save job %s: %s", job_id, error->message);
}

/* The changes of a record's final save: every column a run changes, so
 * one write holds the whole end even when earlier writes were lost.  Not
 * cancel_requested: the API writes that one to the row. */
static JsonObject *
dv_job_final_changes(JsonObject *record)
{
    static const char *const columns[] = {
        "state", "steps", "current_step", "progress", "error", "result", "attempts",
        "server_id", "target_id", "target_name", "started_at", "updated_at", "finished_at",
    };
    JsonObject *changes = json_object_new();

    for (gsize i = 0; i < G_N_ELEMENTS(columns); i++) {
        JsonNode *node = json_object_get_member(record, columns[i]);
        if (node != NULL)
            json_object_set_member(changes, columns[i], json_node_copy(node));
    }
    return changes;
}

static gboolean
dv_job_manager_save_final(DvJobManager *mgr, const char *id, gint64 epoch, JsonObject *changes,
                          GError **error)
{
    g_mutex_lock(&mgr->lock);
    if (mgr->save_faults > 0) {
        mgr->save_faults--;
        g_mutex_unlock(&mgr->lock);
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE,
                    "cannot write to the database (fault injected by a test)");
        return FALSE;
    }
    g_mutex_unlock(&mgr->lock);
    /* The end frees the job's scopes in the same transaction. */
    return dv_store_job_write(mgr->store, id, epoch, changes, TRUE, error);
}

static gboolean
dv_job_error_is_fenced(const GError *error)
{
    return g_error_matches(error, DV_ERROR, DV_ERROR_CONFLICT) &&
           g_strcmp0(dv_error_get_field(error), "lease_epoch") == 0;
}

/* Another server holds the job now: stop it here at once and write
 * nothing more of it (its cancellable stops any libvirt call). */
static void
dv_job_fence(DvJob *job, const GError *why)
{
    DvJobManager *mgr = job->mgr;
    gboolean first;

    g_mutex_lock(&mgr->lock);
    first = !job->fenced;
    job->fenced = TRUE;
    g_mutex_unlock(&mgr->lock);
    g_cancellable_cancel(job->cancellable);
    if (first)
        g_message("job %s: its lease is lost (%s); this server stops it and writes nothing more",
                  job->id, why != NULL ? why->message : "not renewed in time");
}

static gboolean
dv_job_is_fenced(DvJob *job)
{
    gboolean fenced;
    g_mutex_lock(&job->mgr->lock);
    fenced = job->fenced;
    g_mutex_unlock(&job->mgr->lock);
    return fenced;
}

/* Renews @job's lease now; FALSE (and the job fenced when another server
 * holds it) when it cannot. */
static gboolean
dv_job_renew(DvJob *job, GError **error)
{
    DvJobManager *mgr = job->mgr;
    gint64 t0 = g_get_monotonic_time();
    gint64 epoch;
    gboolean cancel = FALSE;
    g_autoptr(GError) local = NULL;

    g_mutex_lock(&mgr->lock);
    epoch = job->epoch;
    g_mutex_unlock(&mgr->lock);
    if (!dv_store_job_renew_lease(mgr->store, job->id, mgr->server_id, epoch, mgr->lease_us,
                                  &cancel, &local)) {
        if (dv_job_error_is_fenced(local))
            dv_job_fence(job, local);
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    g_mutex_lock(&mgr->lock);
    if (job->epoch == epoch)
        job->lease_deadline = t0 + mgr->lease_us;
    g_mutex_unlock(&mgr->lock);
    if (cancel)
        g_cancellable_cancel(job->cancellable);
    return TRUE;
}

/* Before a step (a change on a host): the lease must still be held with
 * a safe margin (a quarter of it) left; otherwise it is renewed first,
 * and a job whose lease cannot be renewed stops before touching libvirt. */
static gboolean
dv_job_check_lease(DvJob *job, GError **error)
{
    DvJobManager *mgr = job->mgr;
    gint64 left;
    g_autoptr(GError) local = NULL;

    g_mutex_lock(&mgr->lock);
    left = job->fenced ? -1 : job->lease_deadline - g_get_monotonic_time();
    g_mutex_unlock(&mgr->lock);
    if (left < 0 && dv_job_is_fenced(job)) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE,
                    "job %s was taken over by another server", job->id);
        return FALSE;
    }
    if (left >= mgr->lease_us / 4)
        return TRUE;
    if (!dv_job_renew(job, &local)) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE,
                    "job %s stops: its lease could not be renewed: %s", job->id, local->message);
        return FALSE;
    }
    return TRUE;
}

/* Keeps the job's end in memory and has the saver retry it. */
static void
dv_job_manager_keep_unsaved(DvJobManager *mgr, DvJob *job)
{
    DvJobUnsaved *u = g_new0(DvJobUnsaved, 1);
    g_autoptr(JsonNode) src = json_node_init_object(json_node_alloc(), job->record);
    g_autoptr(JsonNode) copy = dv_json_node_deep_copy(src);
    GThread *old = NULL;

    u->record = json_object_ref(json_node_get_object(copy));
    u->epoch = job->epoch;
    u->attempts = 1;
    u->wait = DV_JOB_RESAVE_FIRST_US;
    u->next_try = g_get_monotonic_time() + u->wait;
    g_mutex_lock(&mgr->lock);
    g_hash_table_replace(mgr->unsaved, g_strdup(job->id), u);
    if (!mgr->saver_running && !mgr->saver_stop) {
        old = g_steal_pointer(&mgr->saver);
        mgr->saver_running = TRUE;
        mgr->saver = g_thread_new("dv-job-saver", dv_job_manager_saver, mgr);
    }
    g_cond_broadcast(&mgr->cond);
    g_mutex_unlock(&mgr->lock);
    /* A saver that found nothing left has returned already. */
    if (old != NULL)
        g_thread_join(old);
}

/* Writes @changes to the row and to the in-memory record, then tells the
 * listener.  A job must not fail because its progress could not be
 * saved: such failures are logged (rate-limited).  The end of a job
 * (@finished) that cannot be saved is kept in memory, shown by the API
 * from there and saved again with backoff until the store takes it. */
static void
dv_job_apply(DvJob *job, JsonObject *changes, gboolean finished)
{
    DvJobManager *mgr = job->mgr;
    g_autoptr(GError) error = NULL;
    JsonObjectIter iter;
    const char *name;
    JsonNode *node;
    gboolean saved;

    if (dv_job_is_fenced(job)) {
        if (finished) {
            g_mutex_lock(&mgr->lock);
            job->ended = TRUE;
            g_mutex_unlock(&mgr->lock);
        }
        return;
    }
    json_object_set_int_member(changes, "updated_at", dv_store_now());
    json_object_iter_init(&iter, changes);
    while (json_object_iter_next(&iter, &name, &node))
        json_object_set_member(job->record, name, json_node_copy(node));
    if (finished) {
        g_autoptr(JsonObject) all = dv_job_final_changes(job->record);
        saved = dv_job_manager_save_final(mgr, job->id, job->epoch, all, &error);
    } else {
        saved = dv_store_job_write(mgr->store, job->id, job->epoch, changes, FALSE, &error);
    }
    if (!saved && dv_job_error_is_fenced(error)) {
        dv_job_fence(job, error);
        if (finished) {
            g_mutex_lock(&mgr->lock);
            job->ended = TRUE;
            g_mutex_unlock(&mgr->lock);
        }
        return;
    }
    if (!saved)
        dv_job_manager_warn_save(mgr, job->id, error);
    if (finished) {
        if (!saved)
            dv_job_manager_keep_unsaved(mgr, job);
        g_mutex_lock(&mgr->lock);
        job->ended = TRUE;
        g_mutex_unlock(&mgr->lock);
    }
    job->last_persist = g_get_monotonic_time();
    g_rw_lock_reader_lock(&mgr->listener_lock);
    if (mgr->listener != NULL)
        mgr->listener(job->id, job->record, finished, mgr->listener_data);
    g_rw_lock_reader_unlock(&mgr->listener_lock);
}

/* Tries every unsaved end that is due; returns how many are left. */
static guint
dv_job_manager_resave(DvJobManager *mgr, gboolean all_now)
{
    g_autoptr(GPtrArray) due = g_ptr_array_new_with_free_func(g_free);
    GHashTableIter iter;
    gpointer key, value;
    gint64 now = g_get_monotonic_time();
    guint left;

    g_mutex_lock(&mgr->lock);
    g_hash_table_iter_init(&iter, mgr->unsaved);
    while (g_hash_table_iter_next(&iter, &key, &value)) {
        DvJobUnsaved *u = value;
        if (all_now || u->next_try <= now)
            g_ptr_array_add(due, g_strdup(key));
    }
    g_mutex_unlock(&mgr->lock);

    for (guint i = 0; i < due->len; i++) {
        const char *id = g_ptr_array_index(due, i);
        g_autoptr(JsonObject) changes = NULL;
        g_autoptr(GError) error = NULL;
        DvJobUnsaved *u;
        guint attempts;
        gint64 epoch = 0;
        gboolean ok;

        g_mutex_lock(&mgr->lock);
        u = g_hash_table_lookup(mgr->unsaved, id);
        changes = u != NULL ? dv_job_final_changes(u->record) : NULL;
        if (u != NULL)
            epoch = u->epoch;
        g_mutex_unlock(&mgr->lock);
        if (changes == NULL)
            continue;
        /* No lock is held across the database round trip. */
        ok = dv_job_manager_save_final(mgr, id, epoch, changes, &error);
        /* The row went (housekeeping, a restore), or another server took
         * the job over: nothing left to save here. */
        if (!ok &&
            (g_error_matches(error, DV_ERROR, DV_ERROR_NOT_FOUND) || dv_job_error_is_fenced(error)))
            ok = TRUE;
        g_mutex_lock(&mgr->lock);
        u = g_hash_table_lookup(mgr->unsaved, id);
        attempts = u != NULL ? ++u->attempts : 0;
        if (ok) {
            g_hash_table_remove(mgr->unsaved, id);
        } else if (u != NULL) {
            u->wait = MIN(u->wait * 2, DV_JOB_RESAVE_MAX_US);
            u->next_try = g_get_monotonic_time() + u->wait;
        }
        g_mutex_unlock(&mgr->lock);
        if (ok)
            g_message("job %s: its end is saved (after %u attempts)", id, attempts);
        else if ((attempts & (attempts - 1)) == 0) /* 2, 4, 8, ...: bounded */
            g_warning("job %s: its end is still not saved after %u attempts: %s", id, attempts,
                      error->message);
    }
    g_mutex_lock(&mgr->lock);
    left = g_hash_table_size(mgr->unsaved);
    g_mutex_unlock(&mgr->lock);
    return left;
}

static gpointer
dv_job_manager_saver(gpointer data)
{
    DvJobManager *mgr = data;

    for (;;) {
        gint64 next = G_MAXINT64;
        GHashTableIter iter;
        gpointer value;

        g_mutex_lock(&mgr->lock);
        g_hash_table_iter_init(&iter, mgr->unsaved);
        while (g_hash_table_iter_next(&iter, NULL, &value))
            next = MIN(next, ((DvJobUnsaved *)value)->next_try);
        if (mgr->saver_stop || g_hash_table_size(mgr->unsaved) == 0) {
            mgr->saver_running = FALSE;
            g_cond_broadcast(&mgr->cond);
            g_mutex_unlock(&mgr->lock);
            return NULL;
        }
        if (next > g_get_monotonic_time())
            g_cond_wait_until(&mgr->cond, &mgr->lock, next);
        g_mutex_unlock(&mgr->lock);
        dv_job_manager_resave(mgr, FALSE);
    }
}

JsonObject *
dv_job_manager_dup_unsaved(DvJobManager *mgr, const char *job_id)
{
    DvJobUnsaved *u;
    JsonObject *out = NULL;

    g_mutex_lock(&mgr->lock);
    u = job_id != NULL ? g_hash_table_lookup(mgr->unsaved, job_id) : NULL;
    if (u != NULL) {
        g_autoptr(JsonNode) src = json_node_init_object(json_node_alloc(), u->record);
        g_autoptr(JsonNode) copy = dv_json_node_deep_copy(src);
        out = json_object_ref(json_node_get_object(copy));
    }
    g_mutex_unlock(&mgr->lock);
    return out;
}

guint
dv_job_manager_get_n_unsaved(DvJobManager *mgr)
{
    guint n;
    g_mutex_lock(&mgr->lock);
    n = g_hash_table_size(mgr->unsaved);
    g_mutex_unlock(&mgr->lock);
    return n;
}

void
dv_job_manager_set_save_faults_for_test(DvJobManager *mgr, guint n_failures)
{
    g_mutex_lock(&mgr->lock);
    mgr->save_faults = n_failures;
    g_mutex_unlock(&mgr->lock);
}

static void
dv_job_save_progress(DvJob *job, gboolean force)
{
    g_autoptr(JsonObject) changes = NULL;

    if (!force && g_get_monotonic_time() - job->last_persist < DV_JOB_PERSIST_INTERVAL_US)
        return;
    changes = json_object_new();
    json_object_set_array_member(changes, "steps", dv_job_steps_to_json(job));
    json_object_set_int_member(changes, "progress", dv_job_compute_progress(job));
    if (job->current >= 0) {
        DvJobStepState *s = g_ptr_array_index(job->steps, job->current);
        json_object_set_string_member(changes, "current_step", s->name);
    }
    dv_job_apply(job, changes, FALSE);
}

const char *
dv_job_get_id(DvJob *job)
{
    return job->id;
}

JsonObject *
dv_job_get_params(DvJob *job)
{
    return job->params;
}

const char *
dv_job_get_target_id(DvJob *job)
{
    return dv_json_get_string(job->record, "target_id", NULL);
}

guint
dv_job_get_attempt(DvJob *job)
{
    return job->attempt;
}

GCancellable *
dv_job_get_cancellable(DvJob *job)
{
    return job->cancellable;
}

gboolean
dv_job_is_cancelled(DvJob *job)
{
    return g_cancellable_is_cancelled(job->cancellable);
}

void
dv_job_set_steps(DvJob *job, const DvJobStep *steps, guint n_steps)
{
    g_ptr_array_set_size(job->steps, 0);
    for (guint i = 0; i < n_steps; i++) {
        DvJobStepState *s = g_new0(DvJobStepState, 1);
        s->name = g_strdup(steps[i].name);
        s->weight = steps[i].weight;
        s->state = g_strdup("pending");
        g_ptr_array_add(job->steps, s);
    }
    job->current = -1;
    job->fraction = 0;
    dv_job_save_progress(job, TRUE);
}

gboolean
dv_job_step(DvJob *job, const char *name, GError **error)
{
    int next = -1;

    if (!dv_job_check_lease(job, error))
        return FALSE;
    if (dv_job_is_cancelled(job)) {
        g_set_error(error, DV_ERROR, DV_ERROR_CANCELLED, "cancelled before step '%s'", name);
        return FALSE;
    }
    for (guint i = 0; i < job->steps->len; i++) {
        DvJobStepState *s = g_ptr_array_index(job->steps, i);
        if (g_strcmp0(s->name, name) == 0) {
            next = (int)i;
            break;
        }
    }
    if (next < 0) {
        /* An undeclared step is a programming error; keep going with it
         * appended so progress stays honest. */
        DvJobStepState *s = g_new0(DvJobStepState, 1);
        g_warning("job %s: step '%s' was not declared", job->id, name);
        s->name = g_strdup(name);
        s->weight = 1;
        s->state = g_strdup("pending");
        g_ptr_array_add(job->steps, s);
        next = (int)job->steps->len - 1;
    }
    /* Steps before the new one are done (skipped steps count as done). */
    for (int i = 0; i < next; i++) {
        DvJobStepState *s = g_ptr_array_index(job->steps, i);
        g_free(s->state);
        s->state = g_strdup("done");
    }
    {
        DvJobStepState *s = g_ptr_array_index(job->steps, next);
        g_free(s->state);
        s->state = g_strdup("running");
    }
    job->current = next;
    job->fraction = 0;
    dv_job_save_progress(job, TRUE);
    return TRUE;
}

void
dv_job_step_progress(DvJob *job, double fraction)
{
    job->fraction = fraction;
    dv_job_save_progress(job, FALSE);
}

void
dv_job_set_target(DvJob *job, const char *target_id, const char *target_name)
{
    g_autoptr(JsonObject) changes = json_object_new();
    if (target_id != NULL)
        json_object_set_string_member(changes, "target_id", target_id);
    if (target_name != NULL)
        json_object_set_string_member(changes, "target_name", target_name);
    dv_job_apply(job, changes, FALSE);
}

void
dv_job_set_result(DvJob *job, JsonObject *result)
{
    g_clear_pointer(&job->result, json_object_unref);
    job->result = result != NULL ? json_object_ref(result) : NULL;
}

/* --- manager ---------------------------------------------------------- */

static void dv_job_manager_run(gpointer data, gpointer user_data);

DvJobManager *
dv_job_manager_new(DvStore *store, const char *server_id, guint max_workers)
{
    DvJobManager *mgr = g_new0(DvJobManager, 1);

    mgr->store = store;
    mgr->server_id = g_strdup(server_id);
    mgr->lease_us = (gint64)DV_JOB_LEASE_MS * 1000;
    mgr->heartbeat_us = (gint64)DV_JOB_HEARTBEAT_MS * 1000;
    mgr->kinds = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    mgr->active = g_hash_table_new(g_str_hash, g_str_equal);
    mgr->host_gen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    mgr->busy_targets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    mgr->unsaved = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, dv_job_unsaved_free);
    g_mutex_init(&mgr->lock);
    g_cond_init(&mgr->cond);
    g_rw_lock_init(&mgr->listener_lock);
    mgr->pool = g_thread_pool_new(dv_job_manager_run, mgr, (int)MAX(max_workers, 1), FALSE, NULL);
    return mgr;
}

void
dv_job_manager_free(DvJobManager *mgr)
{
    if (mgr == NULL)
        return;
    dv_job_manager_shutdown(mgr, 30000);
    g_thread_pool_free(mgr->pool, TRUE, TRUE);
    /* Jobs that never started are still in the table as queued. */
    {
        GHashTableIter iter;
        gpointer value;
        g_hash_table_iter_init(&iter, mgr->active);
        while (g_hash_table_iter_next(&iter, NULL, &value))
            dv_job_free(value);
    }
    g_hash_table_unref(mgr->active);
    g_hash_table_unref(mgr->host_gen);
    g_hash_table_unref(mgr->busy_targets);
    g_hash_table_unref(mgr->unsaved);
    g_hash_table_unref(mgr->kinds);
    g_mutex_clear(&mgr->lock);
    g_cond_clear(&mgr->cond);
    g_rw_lock_clear(&mgr->listener_lock);
    g_free(mgr->server_id);
    g_strfreev(mgr->live_servers);
    g_free(mgr);
}

void
dv_job_manager_register_kind(DvJobManager *mgr, const DvJobKind *kind)
{
    DvJobKind *copy = g_memdup2(kind, sizeof(*kind));
    g_hash_table_replace(mgr->kinds, (gpointer)copy->kind, copy);
}

static gint
dv_job_kind_name_cmp(gconstpointer a, gconstpointer b)
{
    return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

GPtrArray *
dv_job_manager_dup_kinds(DvJobManager *mgr)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, mgr->kinds);
    while (g_hash_table_iter_next(&it, &key, NULL))
        g_ptr_array_add(out, g_strdup(key));
    g_ptr_array_sort(out, dv_job_kind_name_cmp);
    return out;
}

void
dv_job_manager_set_live_servers(DvJobManager *mgr, const char *const *server_ids)
{
    g_strfreev(mgr->live_servers);
    mgr->live_servers = g_strdupv((char **)server_ids);
}

/* Returns once no job thread is still inside the previous listener, so
 * its owner may go away right after setting NULL. */
void
dv_job_manager_set_listener(DvJobManager *mgr, DvJobListener listener, gpointer user_data)
{
    g_rw_lock_writer_lock(&mgr->listener_lock);
    mgr->listener = listener;
    mgr->listener_data = user_data;
    g_rw_lock_writer_unlock(&mgr->listener_lock);
}

static DvJob *
dv_job_new_from_record(DvJobManager *mgr, JsonObject *record)
{
    DvJob *job = g_new0(DvJob, 1);
    JsonObject *params = dv_json_get_object(record, "params");

    job->mgr = mgr;
    job->id = g_strdup(dv_json_get_string(record, "id", NULL));
    job->host_id = g_strdup(dv_json_get_string(record, "host_id", NULL));
    job->kind = g_hash_table_lookup(mgr->kinds, dv_json_get_string(record, "kind", ""));
    /* The job's own copy: the caller keeps (and may render) @record while
     * the worker thread changes this one. */
    {
        g_autoptr(JsonNode) src = json_node_init_object(json_node_alloc(), record);
        g_autoptr(JsonNode) copy = dv_json_node_deep_copy(src);
        job->record = json_object_ref(json_node_get_object(copy));
    }
    params = dv_json_get_object(job->record, "params");
    job->params = params != NULL ? json_object_ref(params) : json_object_new();
    job->steps = g_ptr_array_new_with_free_func(dv_job_step_state_free);
    job->current = -1;
    job->cancellable = g_cancellable_new();
    job->attempt = (guint)dv_json_get_int(record, "attempts", 0);
    if (dv_json_get_bool(record, "cancel_requested", FALSE))
        g_cancellable_cancel(job->cancellable);
    return job;
}

/* Under mgr->lock: a job on @job's host started or ended. */
static void
dv_job_manager_bump_host_locked(DvJobManager *mgr, DvJob *job)
{
    guint64 *gen;
    if (job->host_id == NULL)
        return;
    gen = g_hash_table_lookup(mgr->host_gen, job->host_id);
    if (gen == NULL) {
        gen = g_new0(guint64, 1);
        g_hash_table_insert(mgr->host_gen, g_strdup(job->host_id), gen);
    }
    (*gen)++;
}

static void
dv_job_manager_enqueue(DvJobManager *mgr, DvJob *job)
{
    g_mutex_lock(&mgr->lock);
    dv_job_manager_bump_host_locked(mgr, job);
    g_hash_table_insert(mgr->active, job->id, job);
    g_mutex_unlock(&mgr->lock);
    g_thread_pool_push(mgr->pool, job, NULL);
}

/* The job row as submitted (queued, nothing run yet). */
static JsonObject *
dv_job_record_new(DvJobManager *mgr, const DvJobRequest *req)
{
    JsonObject *record = json_object_new();
    g_autofree char *id = req->id != NULL ? g_strdup(req->id) : g_uuid_string_random();
    gint64 now = dv_store_now();

    json_object_set_string_member(record, "id", id);
    json_object_set_string_member(record, "kind", req->kind);
    json_object_set_string_member(record, "state", "queued");
    json_object_set_string_member(record, "target_type", req->target_type);
    json_object_set_string_member(record, "target_id", req->target_id);
    json_object_set_string_member(record, "target_name", req->target_name);
    json_object_set_string_member(record, "host_id", req->host_id);
    if (req->params != NULL)
        json_object_set_object_member(record, "params", json_object_ref(req->params));
    else
        json_object_set_object_member(record, "params", json_object_new());
    json_object_set_array_member(record, "steps", json_array_new());
    json_object_set_null_member(record, "current_step");
    json_object_set_int_member(record, "progress", 0);
    json_object_set_null_member(record, "error");
    json_object_set_null_member(record, "result");
    json_object_set_string_member(record, "created_by", req->created_by);
    json_object_set_string_member(record, "server_id", mgr->server_id);
    json_object_set_boolean_member(record, "cancel_requested", FALSE);
    json_object_set_int_member(record, "attempts", 0);
    json_object_set_int_member(record, "created_at", now);
    json_object_set_null_member(record, "started_at");
    json_object_set_int_member(record, "updated_at", now);
    json_object_set_null_member(record, "finished_at");
    return record;
}

typedef struct {
    DvJobManager *mgr;
    const DvJobRequest *req;
    JsonObject *record;
    DvStoreTxnFunc func;
    gpointer user_data;
    gint64 epoch; /* out */
} DvJobSubmitTxn;

/* The job's row, its scopes and its lease (this server's) in one
 * transaction: a conflicting scope writes nothing. */
static gboolean
dv_job_submit_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvJobSubmitTxn *t = user_data;
    const char *id = dv_json_get_string(t->record, "id", "");

    /* The scopes first: a busy catalog is a conflict naming its job, not
     * whatever the caller's rows would have clashed with (the names of
     * machines that job is adding). */
    if (!dv_store_job_take_scopes(store, id, t->req->scopes, t->req->n_scopes, error))
        return FALSE;
    if (t->func != NULL && !t->func(store, t->user_data, error))
        return FALSE;
    return dv_store_insert(store, &dv_table_jobs, t->record, error) &&
           dv_store_job_take_lease(store, id, t->mgr->server_id, t->mgr->lease_us, FALSE, &t->epoch,
                                   error);
}

JsonObject *
dv_job_manager_submit_with(DvJobManager *mgr, const DvJobRequest *req, DvStoreTxnFunc func,
                           gpointer user_data, GError **error)
{
    g_autoptr(JsonObject) record = NULL;
    DvJob *job;

    if (g_hash_table_lookup(mgr->kinds, req->kind) == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "unknown job kind '%s'", req->kind);
        return NULL;
    }
    g_mutex_lock(&mgr->lock);
    if (mgr->shutting_down || g_hash_table_size(mgr->active) >= DV_JOBS_MAX_QUEUED) {
        gboolean down = mgr->shutting_down;
        g_mutex_unlock(&mgr->lock);
        g_set_error(error, DV_ERROR, down ? DV_ERROR_UNAVAILABLE : DV_ERROR_BUSY,
                    down ? "the server is shutting down" :
                           "too many jobs in flight (%d); try again later", DV_JOBS_MAX_QUEUED);
        return NULL;
    }
    g_mutex_unlock(&mgr->lock);

    record = dv_job_record_new(mgr, req);
    {
        DvJobSubmitTxn t = { mgr, req, record, func, user_data, 0 };
        gint64 t0 = g_get_monotonic_time();
        if (!dv_store_transaction(mgr->store, dv_job_submit_txn, &t, error))
            return NULL;
        job = dv_job_new_from_record(mgr, record);
        job->epoch = t.epoch;
        job->lease_deadline = t0 + mgr->lease_us;
    }
    dv_job_manager_enqueue(mgr, job);
    return g_steal_pointer(&record);
}

JsonObject *
dv_job_manager_submit(DvJobManager *mgr, const DvJobRequest *req, GError **error)
{
    return dv_job_manager_submit_with(mgr, req, NULL, NULL, error);
}

JsonObject *
dv_job_manager_record_failed(DvJobManager *mgr, const DvJobRequest *req, const GError *why,
                             GError **error)
{
    g_autoptr(JsonObject) record = dv_job_record_new(mgr, req);
    gint64 now = dv_store_now();

    json_object_set_string_member(record, "state", "failed");
    json_object_set_object_member(record, "error", dv_error_to_json(why, FALSE));
    json_object_set_int_member(record, "started_at", now);
    json_object_set_int_member(record, "finished_at", now);
    if (!dv_store_insert(mgr->store, &dv_table_jobs, record, error))
        return NULL;
    dv_job_report_end(record, "failed", why);
    return g_steal_pointer(&record);
}

static gboolean
dv_job_manager_lock_target(DvJobManager *mgr, DvJob *job, const char *target)
{
    g_mutex_lock(&mgr->lock);
    while (g_hash_table_contains(mgr->busy_targets, target)) {
        if (mgr->shutting_down || g_cancellable_is_cancelled(job->cancellable)) {
            g_mutex_unlock(&mgr->lock);
            return FALSE;
        }
        g_cond_wait_until(&mgr->cond, &mgr->lock, g_get_monotonic_time() + G_TIME_SPAN_SECOND);
    }
    g_hash_table_insert(mgr->busy_targets, g_strdup(target), g_strdup(job->id));
    g_mutex_unlock(&mgr->lock);
    return TRUE;
}

/* @own: the job manager wrote the message itself (a cancellation before
 * the start, a restart, an unknown kind), so it names no storage and is
 * also the public message a storage-redacted view shows
 * (dv_authz_redact(), docs/ACCESS.md "Storage data"); any other message
 * may quote what libvirt said about a volume and has none. */
static JsonObject *
dv_error_to_json(const GError *error, gboolean own)
{
    JsonObject *o = json_object_new();
    const char *field = dv_error_get_field(error);
    json_object_set_string_member(o, "code",
        dv_error_code_to_string(error->domain == DV_ERROR ? (DvErrorCode)error->code
                                                          : DV_ERROR_INTERNAL));
    json_object_set_string_member(o, "message", error->message);
    if (own)
        json_object_set_string_member(o, "public_message", error->message);
    if (field != NULL)
        json_object_set_string_member(o, "field", field);
    else
        json_object_set_null_member(o, "field");
    return o;
}

/* Metrics of a finished job, and one log line when it failed or was
 * cancelled: with the journal's fields when droverd logs there
 * (docs/METRICS.md, "Logs").  The message is the job's error, which the
 * API shows too: no secret is ever in it. */
static void
dv_job_report_end(JsonObject *record, const char *state, const GError *error)
{
    const char *id = dv_json_get_string(record, "id", "");
    const char *kind = dv_json_get_string(record, "kind", "");
    gint64 started = dv_json_get_int(record, "started_at", 0);
    gint64 finished = dv_json_get_int(record, "finished_at", 0);
    const char *target_type = dv_json_get_string(record, "target_type", NULL);
    const char *target_name = dv_json_get_string(record, "target_name", NULL);
    const char *target_id = dv_json_get_string(record, "target_id", NULL);
    g_autofree char *target = NULL;
    const char *actor = dv_json_get_string(record, "created_by", "");

    dv_metric_add(&dv_metric_jobs_finished, 1, kind, state);
    if (started > 0 && finished >= started)
        dv_metric_observe(&dv_metric_job_duration, (double)(finished - started) / G_USEC_PER_SEC,
                          kind);
    if (g_strcmp0(state, "succeeded") == 0 || error == NULL)
        return;
    target = g_strdup_printf("%s %s", target_type != NULL ? target_type : "-",
                             target_name != NULL ? target_name
                             : target_id != NULL ? target_id
                                                 : "-");
    g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "DROVER_JOB_ID", id, "DROVER_OP", kind,
                     "DROVER_TARGET", target, "DROVER_ACTOR", actor, "DROVER_JOB_STATE", state,
                     "MESSAGE", "job %s %s %s on %s by %s: %s", id, kind, state, target, actor,
                     error->message);
}

static void
dv_job_finish(DvJob *job, const char *state, const GError *error, gboolean own)
{
    g_autoptr(JsonObject) changes = json_object_new();

    if (g_strcmp0(state, "succeeded") == 0) {
        for (guint i = 0; i < job->steps->len; i++) {
            DvJobStepState *s = g_ptr_array_index(job->steps, i);
            g_free(s->state);
            s->state = g_strdup("done");
        }
        json_object_set_int_member(changes, "progress", 100);
    } else {
        if (job->current >= 0) {
            DvJobStepState *s = g_ptr_array_index(job->steps, job->current);
            g_free(s->state);
            s->state = g_strdup(g_strcmp0(state, "cancelled") == 0 ? "cancelled" : "failed");
        }
        json_object_set_int_member(changes, "progress", dv_job_compute_progress(job));
    }
    json_object_set_string_member(changes, "state", state);
    json_object_set_array_member(changes, "steps", dv_job_steps_to_json(job));
    if (error != NULL)
        json_object_set_object_member(changes, "error", dv_error_to_json(error, own));
    if (job->result != NULL)
        json_object_set_object_member(changes, "result", json_object_ref(job->result));
    json_object_set_int_member(changes, "finished_at", dv_store_now());
    dv_job_apply(job, changes, TRUE);
    dv_job_report_end(job->record, state, error);
}

static void
dv_job_manager_run(gpointer data, gpointer user_data)
{
    DvJobManager *mgr = user_data;
    g_autoptr(DvJob) job = data;
    g_autoptr(GError) error = NULL;
    g_autofree char *target = g_strdup(dv_json_get_string(job->record, "target_id", NULL));
    gboolean locked = FALSE;
    gboolean shutting_down;

    g_mutex_lock(&mgr->lock);
    shutting_down = mgr->shutting_down;
    g_mutex_unlock(&mgr->lock);

    if (shutting_down || dv_job_is_fenced(job)) {
        /* Left queued in the store: the next start (or another server,
         * once the lease expired) picks it up. */
        g_mutex_lock(&mgr->lock);
        dv_job_manager_bump_host_locked(mgr, job);
        if (g_hash_table_lookup(mgr->active, job->id) == job)
            g_hash_table_remove(mgr->active, job->id);
        g_cond_broadcast(&mgr->cond);
        g_mutex_unlock(&mgr->lock);
        return;
    }

    if (job->kind == NULL) {
        g_set_error(&error, DV_ERROR, DV_ERROR_INTERNAL, "unknown job kind '%s'",
                    dv_json_get_string(job->record, "kind", "?"));
        dv_job_finish(job, "failed", error, TRUE);
    } else if (g_cancellable_is_cancelled(job->cancellable)) {
        g_set_error(&error, DV_ERROR, DV_ERROR_CANCELLED, "cancelled before it started");
        dv_job_finish(job, "cancelled", error, TRUE);
    } else if (target != NULL && !(locked = dv_job_manager_lock_target(mgr, job, target))) {
        g_set_error(&error, DV_ERROR, DV_ERROR_CANCELLED, "cancelled before it started");
        dv_job_finish(job, "cancelled", error, TRUE);
    } else if (!dv_job_check_lease(job, &error)) {
        /* Not started: the job stays queued for whoever holds it. */
        g_message("%s", error->message);
    } else {
        g_autoptr(JsonObject) changes = json_object_new();
        gboolean ok;

        job->attempt++;
        json_object_set_string_member(changes, "state", "running");
        json_object_set_int_member(changes, "started_at", dv_store_now());
        json_object_set_int_member(changes, "attempts", job->attempt);
        json_object_set_string_member(changes, "server_id", mgr->server_id);
        dv_job_apply(job, changes, FALSE);
        if (job->attempt == 1) {
            gint64 wait = dv_json_get_int(job->record, "started_at", 0) -
                          dv_json_get_int(job->record, "created_at", 0);
            dv_metric_observe(&dv_metric_job_queue_wait, (double)MAX(wait, 0) / G_USEC_PER_SEC,
                              job->kind->kind);
        }

        ok = job->kind->run(job, job->kind->user_data, &error);
        if (ok) {
            dv_job_finish(job, "succeeded", NULL, FALSE);
        } else {
            if (error == NULL)
                g_set_error(&error, DV_ERROR, DV_ERROR_INTERNAL, "job failed without a reason");
            dv_error_convert(&error);
            if (g_error_matches(error, DV_ERROR, DV_ERROR_CANCELLED))
                dv_job_finish(job, "cancelled", error, FALSE);
            else
                dv_job_finish(job, "failed", error, FALSE);
        }
    }

    g_mutex_lock(&mgr->lock);
    if (locked)
        g_hash_table_remove(mgr->busy_targets, target);
    dv_job_manager_bump_host_locked(mgr, job);
    if (g_hash_table_lookup(mgr->active, job->id) == job)
        g_hash_table_remove(mgr->active, job->id);
    g_cond_broadcast(&mgr->cond);
    g_mutex_unlock(&mgr->lock);
}

gboolean
dv_job_manager_cancel(DvJobManager *mgr, const char *job_id, GError **error)
{
    g_autoptr(JsonObject) record = NULL;
    g_autoptr(JsonObject) changes = NULL;
    g_autoptr(JsonObject) ended = NULL;
    const char *state;
    DvJob *job;
    gboolean already = FALSE;

    /* Ended but not saved yet: the store still says running. */
    ended = dv_job_manager_dup_unsaved(mgr, job_id);
    if (ended != NULL) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, NULL, "job %s already %s", job_id,
                           dv_json_get_string(ended, "state", "finished"));
        return FALSE;
    }
    record = dv_store_get(mgr->store, &dv_table_jobs, job_id, error);
    if (record == NULL)
        return FALSE;
    state = dv_json_get_string(record, "state", "");
    if (g_strcmp0(state, "queued") != 0 && g_strcmp0(state, "running") != 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, NULL, "job %s already %s", job_id, state);
        return FALSE;
    }
    changes = json_object_new();
    json_object_set_boolean_member(changes, "cancel_requested", TRUE);
    if (!dv_store_update(mgr->store, &dv_table_jobs, job_id, changes, error))
        return FALSE;
    g_mutex_lock(&mgr->lock);
    job = g_hash_table_lookup(mgr->active, job_id);
    if (job != NULL && job->ended)
        already = TRUE;
    else if (job != NULL)
        g_cancellable_cancel(job->cancellable);
    g_cond_broadcast(&mgr->cond);
    g_mutex_unlock(&mgr->lock);
    /* It ended while the request was made: say so rather than accept a
     * cancel that changes nothing. */
    if (already) {
        g_autoptr(JsonObject) now = dv_job_manager_dup_unsaved(mgr, job_id);
        if (now == NULL)
            now = dv_store_get(mgr->store, &dv_table_jobs, job_id, NULL);
        dv_set_field_error(error, DV_ERROR_CONFLICT, NULL, "job %s already %s", job_id,
                           now != NULL ? dv_json_get_string(now, "state", "finished") : "finished");
        return FALSE;
    }
    return TRUE;
}

/* Runs a job this server just took the lease of (@row with its
 * "lease_epoch"): a queued job or a resumable kind is queued here again
 * and runs from its start (its steps are idempotent: create-if-absent,
 * verify-if-present); a running job of a kind that cannot resume ends
 * failed saying @why, with the steps it had recorded. */
static gboolean
dv_job_manager_take_over(DvJobManager *mgr, JsonObject *row, const char *why, GError **error)
{
    const char *kind_name = dv_json_get_string(row, "kind", "");
    const DvJobKind *kind = g_hash_table_lookup(mgr->kinds, kind_name);
    gboolean was_running = g_strcmp0(dv_json_get_string(row, "state", ""), "running") == 0;
    g_autoptr(DvJob) job = dv_job_new_from_record(mgr, row);

    job->epoch = dv_json_get_int(row, "lease_epoch", 0);
    job->lease_deadline = g_get_monotonic_time() + mgr->lease_us / 2;
    if (kind != NULL && (!was_running || kind->resumable)) {
        g_autoptr(JsonObject) changes = json_object_new();
        json_object_set_string_member(changes, "state", "queued");
        json_object_set_int_member(changes, "updated_at", dv_store_now());
        if (!dv_store_job_write(mgr->store, job->id, job->epoch, changes, FALSE, error))
            return FALSE;
        json_object_set_string_member(job->record, "state", "queued");
        {
            DvJob *old;
            g_mutex_lock(&mgr->lock);
            old = g_hash_table_lookup(mgr->active, job->id);
            g_mutex_unlock(&mgr->lock);
            /* This server's own earlier run of it lost its lease. */
            if (old != NULL)
                dv_job_fence(old, NULL);
        }
        dv_job_manager_enqueue(mgr, g_steal_pointer(&job));
        return TRUE;
    }
    {
        g_autoptr(GError) reason = NULL;
        JsonArray *steps = dv_json_get_array(row, "steps");

        if (kind == NULL)
            g_set_error(&reason, DV_ERROR, DV_ERROR_INTERNAL, "unknown job kind '%s'", kind_name);
        else
            g_set_error(&reason, DV_ERROR, DV_ERROR_UNAVAILABLE, "%s", why);
        /* Keep the steps the job had recorded. */
        for (guint k = 0; steps != NULL && k < json_array_get_length(steps); k++) {
            JsonObject *st = json_array_get_object_element(steps, k);
            DvJobStepState *ss = g_new0(DvJobStepState, 1);
            ss->name = g_strdup(dv_json_get_string(st, "name", "?"));
            ss->weight = (guint)dv_json_get_int(st, "weight", 1);
            ss->state = g_strdup(dv_json_get_string(st, "state", "pending"));
            if (g_strcmp0(ss->state, "running") == 0)
                job->current = (int)k;
            g_ptr_array_add(job->steps, ss);
        }
        dv_job_finish(job, "failed", reason, TRUE);
    }
    return TRUE;
}

/* One heartbeat of the lease thread: renew the leases of this server's
 * jobs, then take over those whose lease expired anywhere. */
static void
dv_job_manager_lease_tick(DvJobManager *mgr)
{
    g_autoptr(GPtrArray) mine = g_ptr_array_new();
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonArray) expired = NULL;
    GHashTableIter it;
    gpointer value;

    /* Jobs are freed by their worker only after leaving mgr->active;
     * the renewals run with the lock released, so hold off their end by
     * renewing only jobs still there afterwards (a renewal of a job that
     * just ended is refused by its epoch or harmless). */
    g_mutex_lock(&mgr->lock);
    g_hash_table_iter_init(&it, mgr->active);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        DvJob *job = value;
        if (!job->fenced && !job->ended)
            g_ptr_array_add(mine, g_strdup(job->id));
    }
    g_mutex_unlock(&mgr->lock);
    g_ptr_array_set_free_func(mine, g_free);
    for (guint i = 0; i < mine->len; i++) {
        const char *id = g_ptr_array_index(mine, i);
        gint64 t0 = g_get_monotonic_time();
        gint64 epoch = -1;
        gboolean cancel = FALSE;
        g_autoptr(GError) local = NULL;
        DvJob *job;

        g_mutex_lock(&mgr->lock);
        job = g_hash_table_lookup(mgr->active, id);
        if (job != NULL && !job->fenced)
            epoch = job->epoch;
        g_mutex_unlock(&mgr->lock);
        if (epoch < 0)
            continue;
        if (dv_store_job_renew_lease(mgr->store, id, mgr->server_id, epoch, mgr->lease_us, &cancel,
                                     &local)) {
            g_mutex_lock(&mgr->lock);
            job = g_hash_table_lookup(mgr->active, id);
            if (job != NULL && job->epoch == epoch) {
                job->lease_deadline = t0 + mgr->lease_us;
                /* Cancelled through another server: it wrote the row's
                 * cancel_requested, this server holds the cancellable. */
                if (cancel && !g_cancellable_is_cancelled(job->cancellable)) {
                    g_message("job %s: cancel requested (through another server); cancelling", id);
                    g_cancellable_cancel(job->cancellable);
                }
            }
            g_mutex_unlock(&mgr->lock);
        } else if (dv_job_error_is_fenced(local)) {
            g_mutex_lock(&mgr->lock);
            job = g_hash_table_lookup(mgr->active, id);
            if (job != NULL && job->epoch == epoch) {
                job->fenced = TRUE;
                g_cancellable_cancel(job->cancellable);
            }
            g_mutex_unlock(&mgr->lock);
            g_message("job %s: its lease is lost (%s); this server stops it and writes nothing "
                      "more",
                      id, local->message);
        } else {
            dv_job_manager_warn_save(mgr, id, local);
        }
    }

    expired = dv_store_job_claim_expired(mgr->store, mgr->server_id, mgr->lease_us, 50, &error);
    if (expired == NULL) {
        dv_job_manager_warn_save(mgr, "(lease sweep)", error);
        return;
    }
    for (guint i = 0; i < json_array_get_length(expired); i++) {
        JsonObject *row = json_array_get_object_element(expired, i);
        const char *kind = dv_json_get_string(row, "kind", "");
        g_autoptr(GError) local = NULL;
        g_autofree char *why =
            g_strdup_printf("its server (%s) stopped renewing its lease and a %s job cannot resume",
                            dv_json_get_string(row, "server_id", "?"), kind);

        g_message(
            "job %s (%s): the lease of server %s expired; taken over at epoch %" G_GINT64_FORMAT,
            dv_json_get_string(row, "id", ""), kind, dv_json_get_string(row, "server_id", "?"),
            dv_json_get_int(row, "lease_epoch", 0));
        dv_metric_add(&dv_metric_job_takeovers, 1, kind);
        g_mutex_lock(&mgr->lock);
        mgr->takeovers++;
        g_mutex_unlock(&mgr->lock);
        if (!dv_job_manager_take_over(mgr, row, why, &local))
            dv_job_manager_warn_save(mgr, dv_json_get_string(row, "id", ""), local);
    }
}

static gpointer
dv_job_manager_leaser(gpointer data)
{
    DvJobManager *mgr = data;

    for (;;) {
        gint64 until;
        gboolean paused;

        g_mutex_lock(&mgr->lock);
        until = g_get_monotonic_time() + mgr->heartbeat_us;
        while (!mgr->leaser_stop && g_get_monotonic_time() < until)
            g_cond_wait_until(&mgr->cond, &mgr->lock, until);
        if (mgr->leaser_stop) {
            g_mutex_unlock(&mgr->lock);
            return NULL;
        }
        paused = mgr->leases_paused;
        g_mutex_unlock(&mgr->lock);
        if (!paused)
            dv_job_manager_lease_tick(mgr);
    }
}

void
dv_job_manager_set_lease(DvJobManager *mgr, guint lease_ms, guint heartbeat_ms)
{
    g_return_if_fail(heartbeat_ms > 0 && lease_ms > heartbeat_ms);
    mgr->lease_us = (gint64)lease_ms * 1000;
    mgr->heartbeat_us = (gint64)heartbeat_ms * 1000;
}

void
dv_job_manager_start_leases(DvJobManager *mgr)
{
    g_return_if_fail(mgr->leaser == NULL);
    mgr->leaser = g_thread_new("dv-job-leases", dv_job_manager_leaser, mgr);
}

guint
dv_job_manager_get_n_takeovers(DvJobManager *mgr)
{
    guint n;
    g_mutex_lock(&mgr->lock);
    n = mgr->takeovers;
    g_mutex_unlock(&mgr->lock);
    return n;
}

void
dv_job_manager_pause_leases_for_test(DvJobManager *mgr, gboolean paused)
{
    g_mutex_lock(&mgr->lock);
    mgr->leases_paused = paused;
    g_mutex_unlock(&mgr->lock);
}

gboolean
dv_job_manager_recover(DvJobManager *mgr, guint *ret_resumed, guint *ret_failed, GError **error)
{
    static const char *const states[] = { "running", "queued" };
    guint resumed = 0, failed = 0;
    /* A running job re-queued by the first pass is "queued" when the
     * second pass lists: handle every job once. */
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

    for (gsize s = 0; s < G_N_ELEMENTS(states); s++) {
        g_autofree char *cursor = NULL;
        do {
            DvFilter filter = { "state", DV_FILTER_EQ, states[s] };
            g_autofree char *next = NULL;
            g_autoptr(JsonArray) rows = dv_store_list(mgr->store, &dv_table_jobs, &filter, 1,
                                                      200, cursor, &next, error);
            if (rows == NULL)
                return FALSE;
            for (guint i = 0; i < json_array_get_length(rows); i++) {
                JsonObject *row = json_array_get_object_element(rows, i);
                const char *kind_name = dv_json_get_string(row, "kind", "");
                const char *owner = dv_json_get_string(row, "server_id", NULL);

                /* Another live server is running it. */
                if (owner != NULL && mgr->live_servers != NULL &&
                    g_strv_contains((const char *const *)mgr->live_servers, owner))
                    continue;
                const DvJobKind *kind = g_hash_table_lookup(mgr->kinds, kind_name);
                gboolean was_running = s == 0;

                if (!g_hash_table_add(seen, g_strdup(dv_json_get_string(row, "id", ""))))
                    continue;
                {
                    g_autoptr(GError) local = NULL;
                    gint64 epoch = 0;
                    /* Its server is gone: take its lease whether or not it
                     * ran out yet (a raised epoch fences any writer left). */
                    if (!dv_store_job_take_lease(mgr->store, dv_json_get_string(row, "id", ""),
                                                 mgr->server_id, mgr->lease_us, FALSE, &epoch,
                                                 &local)) {
                        if (g_error_matches(local, DV_ERROR, DV_ERROR_CONFLICT))
                            continue; /* ended meanwhile */
                        g_propagate_error(error, g_steal_pointer(&local));
                        return FALSE;
                    }
                    json_object_set_int_member(row, "lease_epoch", epoch);
                }
                if (!dv_job_manager_take_over(mgr, row, "interrupted by a server restart", error))
                    return FALSE;
                if (kind != NULL && (!was_running || kind->resumable))
                    resumed++;
                else
                    failed++;
            }
            g_free(cursor);
            cursor = g_steal_pointer(&next);
        } while (cursor != NULL);
    }
    if (ret_resumed != NULL)
        *ret_resumed = resumed;
    if (ret_failed != NULL)
        *ret_failed = failed;
    return TRUE;
}

guint64
dv_job_manager_host_activity(DvJobManager *mgr, const char *host_id, guint *ret_active)
{
    GHashTableIter it;
    gpointer value;
    guint64 *gen;
    guint64 out;
    guint n = 0;

    g_mutex_lock(&mgr->lock);
    g_hash_table_iter_init(&it, mgr->active);
    while (g_hash_table_iter_next(&it, NULL, &value))
        if (g_strcmp0(((DvJob *)value)->host_id, host_id) == 0)
            n++;
    gen = g_hash_table_lookup(mgr->host_gen, host_id);
    out = gen != NULL ? *gen : 0;
    g_mutex_unlock(&mgr->lock);
    if (ret_active != NULL)
        *ret_active = n;
    return out;
}

guint
dv_job_manager_get_n_active(DvJobManager *mgr)
{
    guint n;
    g_mutex_lock(&mgr->lock);
    n = g_hash_table_size(mgr->active);
    g_mutex_unlock(&mgr->lock);
    return n;
}

gboolean
dv_job_manager_wait_idle(DvJobManager *mgr, guint timeout_ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    gboolean idle;

    g_mutex_lock(&mgr->lock);
    while (g_hash_table_size(mgr->active) > 0) {
        if (!g_cond_wait_until(&mgr->cond, &mgr->lock, end))
            break;
    }
    idle = g_hash_table_size(mgr->active) == 0;
    g_mutex_unlock(&mgr->lock);
    return idle;
}

void
dv_job_manager_shutdown(DvJobManager *mgr, guint timeout_ms)
{
    g_mutex_lock(&mgr->lock);
    mgr->shutting_down = TRUE;
    g_cond_broadcast(&mgr->cond);
    g_mutex_unlock(&mgr->lock);
    dv_job_manager_wait_idle(mgr, timeout_ms);
    {
        GThread *leaser;
        g_mutex_lock(&mgr->lock);
        mgr->leaser_stop = TRUE;
        g_cond_broadcast(&mgr->cond);
        leaser = g_steal_pointer(&mgr->leaser);
        g_mutex_unlock(&mgr->lock);
        if (leaser != NULL)
            g_thread_join(leaser);
    }

    /* Ends still unsaved get one last try; those the store still refuses
     * stay "running" there, and the next start's recovery deals with them
     * as with a crash. */
    {
        GThread *saver;
        guint left;

        g_mutex_lock(&mgr->lock);
        mgr->saver_stop = TRUE;
        g_cond_broadcast(&mgr->cond);
        saver = g_steal_pointer(&mgr->saver);
        g_mutex_unlock(&mgr->lock);
        if (saver != NULL)
            g_thread_join(saver);
        left = dv_job_manager_resave(mgr, TRUE);
        if (left > 0)
            g_warning("%u finished jobs could not be saved as finished; the next start "
                      "recovers them as interrupted", left);
    }
}
