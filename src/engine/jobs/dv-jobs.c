#define G_LOG_DOMAIN "DvJobs"

#include "dv-jobs.h"
#include "dv-error.h"
#include "dv-json.h"

#define DV_JOB_PERSIST_INTERVAL_US (250 * 1000)

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
};

struct _DvJobManager {
    DvStore *store;
    char *server_id;
    GThreadPool *pool;
    GHashTable *kinds;       /* kind name -> DvJobKind* (owned copy) */
    GMutex lock;
    GCond cond;              /* idle and target-lock changes */
    GHashTable *active;      /* id -> DvJob* (queued or running here) */
    GHashTable *busy_targets; /* target id -> job id, while running */
    GRWLock listener_lock;   /* held for reading while the listener runs */
    DvJobListener listener;
    gpointer listener_data;
    char **live_servers;
    gboolean shutting_down;
};

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

/* Writes @changes to the row and to the in-memory record, then tells the
 * listener.  Persisting failures are logged: a job must not fail because
 * its progress could not be saved, and the final state is retried by the
 * caller's next write. */
static void
dv_job_apply(DvJob *job, JsonObject *changes, gboolean finished)
{
    DvJobManager *mgr = job->mgr;
    g_autoptr(GError) error = NULL;
    JsonObjectIter iter;
    const char *name;
    JsonNode *node;

    json_object_set_int_member(changes, "updated_at", dv_store_now());
    if (!dv_store_update(mgr->store, &dv_table_jobs, job->id, changes, &error))
        g_warning("cannot save job %s: %s", job->id, error->message);
    json_object_iter_init(&iter, changes);
    while (json_object_iter_next(&iter, &name, &node))
        json_object_set_member(job->record, name, json_node_copy(node));
    job->last_persist = g_get_monotonic_time();
    g_rw_lock_reader_lock(&mgr->listener_lock);
    if (mgr->listener != NULL)
        mgr->listener(job->id, job->record, finished, mgr->listener_data);
    g_rw_lock_reader_unlock(&mgr->listener_lock);
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
    mgr->kinds = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    mgr->active = g_hash_table_new(g_str_hash, g_str_equal);
    mgr->busy_targets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
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
    g_hash_table_unref(mgr->busy_targets);
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

static void
dv_job_manager_enqueue(DvJobManager *mgr, DvJob *job)
{
    g_mutex_lock(&mgr->lock);
    g_hash_table_insert(mgr->active, job->id, job);
    g_mutex_unlock(&mgr->lock);
    g_thread_pool_push(mgr->pool, job, NULL);
}

JsonObject *
dv_job_manager_submit(DvJobManager *mgr, const DvJobRequest *req, GError **error)
{
    g_autoptr(JsonObject) record = json_object_new();
    g_autofree char *id = g_uuid_string_random();
    gint64 now = dv_store_now();
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
    if (!dv_store_insert(mgr->store, &dv_table_jobs, record, error))
        return NULL;

    job = dv_job_new_from_record(mgr, record);
    dv_job_manager_enqueue(mgr, job);
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

static JsonObject *
dv_error_to_json(const GError *error)
{
    JsonObject *o = json_object_new();
    const char *field = dv_error_get_field(error);
    json_object_set_string_member(o, "code",
        dv_error_code_to_string(error->domain == DV_ERROR ? (DvErrorCode)error->code
                                                          : DV_ERROR_INTERNAL));
    json_object_set_string_member(o, "message", error->message);
    if (field != NULL)
        json_object_set_string_member(o, "field", field);
    else
        json_object_set_null_member(o, "field");
    return o;
}

static void
dv_job_finish(DvJob *job, const char *state, const GError *error)
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
        json_object_set_object_member(changes, "error", dv_error_to_json(error));
    if (job->result != NULL)
        json_object_set_object_member(changes, "result", json_object_ref(job->result));
    json_object_set_int_member(changes, "finished_at", dv_store_now());
    dv_job_apply(job, changes, TRUE);
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

    if (shutting_down) {
        /* Left queued in the store: the next start picks it up. */
        g_mutex_lock(&mgr->lock);
        g_hash_table_remove(mgr->active, job->id);
        g_cond_broadcast(&mgr->cond);
        g_mutex_unlock(&mgr->lock);
        return;
    }

    if (job->kind == NULL) {
        g_set_error(&error, DV_ERROR, DV_ERROR_INTERNAL, "unknown job kind '%s'",
                    dv_json_get_string(job->record, "kind", "?"));
        dv_job_finish(job, "failed", error);
    } else if (g_cancellable_is_cancelled(job->cancellable)) {
        g_set_error(&error, DV_ERROR, DV_ERROR_CANCELLED, "cancelled before it started");
        dv_job_finish(job, "cancelled", error);
    } else if (target != NULL && !(locked = dv_job_manager_lock_target(mgr, job, target))) {
        g_set_error(&error, DV_ERROR, DV_ERROR_CANCELLED, "cancelled before it started");
        dv_job_finish(job, "cancelled", error);
    } else {
        g_autoptr(JsonObject) changes = json_object_new();
        gboolean ok;

        job->attempt++;
        json_object_set_string_member(changes, "state", "running");
        json_object_set_int_member(changes, "started_at", dv_store_now());
        json_object_set_int_member(changes, "attempts", job->attempt);
        json_object_set_string_member(changes, "server_id", mgr->server_id);
        dv_job_apply(job, changes, FALSE);

        ok = job->kind->run(job, job->kind->user_data, &error);
        if (ok) {
            dv_job_finish(job, "succeeded", NULL);
        } else {
            if (error == NULL)
                g_set_error(&error, DV_ERROR, DV_ERROR_INTERNAL, "job failed without a reason");
            dv_error_convert(&error);
            if (g_error_matches(error, DV_ERROR, DV_ERROR_CANCELLED))
                dv_job_finish(job, "cancelled", error);
            else
                dv_job_finish(job, "failed", error);
            g_info("job %s (%s) %s: %s", job->id, job->kind->kind,
                   g_error_matches(error, DV_ERROR, DV_ERROR_CANCELLED) ? "cancelled" : "failed",
                   error->message);
        }
    }

    g_mutex_lock(&mgr->lock);
    if (locked)
        g_hash_table_remove(mgr->busy_targets, target);
    g_hash_table_remove(mgr->active, job->id);
    g_cond_broadcast(&mgr->cond);
    g_mutex_unlock(&mgr->lock);
}

gboolean
dv_job_manager_cancel(DvJobManager *mgr, const char *job_id, GError **error)
{
    g_autoptr(JsonObject) record = NULL;
    g_autoptr(JsonObject) changes = NULL;
    const char *state;
    DvJob *job;

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
    if (job != NULL)
        g_cancellable_cancel(job->cancellable);
    g_cond_broadcast(&mgr->cond);
    g_mutex_unlock(&mgr->lock);
    return TRUE;
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
                g_autoptr(JsonObject) changes = json_object_new();

                if (!g_hash_table_add(seen, g_strdup(dv_json_get_string(row, "id", ""))))
                    continue;
                if (kind != NULL && (!was_running || kind->resumable)) {
                    DvJob *job;
                    json_object_set_string_member(changes, "state", "queued");
                    json_object_set_int_member(changes, "updated_at", dv_store_now());
                    if (!dv_store_update(mgr->store, &dv_table_jobs,
                                         dv_json_get_string(row, "id", ""), changes, error))
                        return FALSE;
                    json_object_set_string_member(row, "state", "queued");
                    job = dv_job_new_from_record(mgr, row);
                    dv_job_manager_enqueue(mgr, job);
                    resumed++;
                } else {
                    g_autoptr(GError) why = NULL;
                    g_autoptr(DvJob) job = dv_job_new_from_record(mgr, row);
                    if (kind == NULL)
                        g_set_error(&why, DV_ERROR, DV_ERROR_INTERNAL,
                                    "unknown job kind '%s'", kind_name);
                    else
                        g_set_error_literal(&why, DV_ERROR, DV_ERROR_UNAVAILABLE,
                                            "interrupted by a server restart");
                    /* Keep the steps the job had recorded. */
                    {
                        JsonArray *steps = dv_json_get_array(row, "steps");
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
                    }
                    dv_job_finish(job, "failed", why);
                    failed++;
                }
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
}
