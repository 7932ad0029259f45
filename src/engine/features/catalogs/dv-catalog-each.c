#define G_LOG_DOMAIN "DvCatalogEach"

/* One action over many machines of a catalog, several at a time: the
 * power actions, remove-machines, delete and the image moves.  Workers take
 * the next machine id, read its row themselves (each works on its own
 * copy), run the action and count the outcome; the job thread only waits
 * and moves the progress.  The virt layer still holds every host to its
 * own max_concurrent_operations, so many workers on one host queue there
 * rather than overload it. */

#include "dv-catalogs-private.h"

#include <string.h>

typedef struct {
    DvCatalogEach *each;
    JsonArray *ids;
    const char *sep;
    GMutex lock;
    GCond cond;
    guint next;
    DvCatalogEachResult *r;
} DvEachRun;

static gpointer
dv_catalog_each_worker(gpointer data)
{
    DvEachRun *run = data;
    DvCatalogEachResult *r = run->r;
    DvJob *job = run->each->job;

    for (;;) {
        guint i;
        g_autoptr(JsonObject) m = NULL;
        g_autoptr(GError) local = NULL;
        gboolean skipped = FALSE, ok;

        g_mutex_lock(&run->lock);
        if (run->next >= json_array_get_length(run->ids) || r->cancelled || dv_job_is_cancelled(job)) {
            /* A cancel after the last machine was taken cancels nothing. */
            if (run->next < json_array_get_length(run->ids))
                r->cancelled = r->cancelled || dv_job_is_cancelled(job);
            g_cond_broadcast(&run->cond);
            g_mutex_unlock(&run->lock);
            return NULL;
        }
        i = run->next++;
        r->running++;
        r->max_running = MAX(r->max_running, r->running);
        g_mutex_unlock(&run->lock);

        m = dv_store_get(dv_core(run->each->engine)->store, &dv_table_catalog_machines,
                         json_array_get_string_element(run->ids, i), &local);
        if (m == NULL && g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            /* removed meanwhile, or by an earlier attempt of this job */
            g_clear_error(&local);
            g_mutex_lock(&run->lock);
            r->running--;
            r->done++;
            r->gone++;
            g_cond_broadcast(&run->cond);
            g_mutex_unlock(&run->lock);
            continue;
        } else {
            ok = m != NULL && run->each->func(run->each, m, &skipped, &local);
        }

        g_mutex_lock(&run->lock);
        r->running--;
        r->done++;
        if (!ok) {
            if (g_error_matches(local, DV_ERROR, DV_ERROR_CANCELLED)) {
                r->cancelled = TRUE;
            } else {
                r->failed++;
                if (r->first_error == NULL)
                    r->first_error = g_strdup_printf("%s%s%s", m != NULL ? dv_json_get_string(m, "name", "") : "?",
                                                     run->sep, local != NULL ? local->message : "failed");
            }
        } else if (skipped) {
            r->skipped++;
        } else {
            r->ok++;
        }
        g_cond_broadcast(&run->cond);
        g_mutex_unlock(&run->lock);
    }
}

void
dv_catalog_each_machine(DvCatalogEach *each, JsonArray *ids, guint parallel, const char *sep,
                        DvCatalogEachResult *r)
{
    g_autoptr(GPtrArray) threads = g_ptr_array_new();
    DvEachRun run = { each, ids, sep != NULL ? sep : ": " };
    guint n = ids != NULL ? json_array_get_length(ids) : 0;

    memset(r, 0, sizeof *r);
    run.r = r;
    r->parallel = CLAMP(parallel, 1, MAX(n, 1));
    g_mutex_init(&run.lock);
    g_cond_init(&run.cond);
    for (guint t = 0; t < r->parallel && n > 0; t++)
        g_ptr_array_add(threads, g_thread_new("dv-catalog-each", dv_catalog_each_worker, &run));
    /* Progress from this thread only. */
    g_mutex_lock(&run.lock);
    while (r->done < n && !(r->cancelled && r->running == 0)) {
        guint seen = r->done;
        g_mutex_unlock(&run.lock);
        dv_job_step_progress(each->job, n > 0 ? (double)seen / n : 1.0);
        g_mutex_lock(&run.lock);
        while (r->done == seen && !(r->cancelled && r->running == 0))
            g_cond_wait(&run.cond, &run.lock);
    }
    g_mutex_unlock(&run.lock);
    for (guint t = 0; t < threads->len; t++)
        g_thread_join(g_ptr_array_index(threads, t));
    if (!r->cancelled)
        dv_job_step_progress(each->job, 1.0);
    g_mutex_clear(&run.lock);
    g_cond_clear(&run.cond);
}

void
dv_catalog_each_result_clear(DvCatalogEachResult *r)
{
    g_clear_pointer(&r->first_error, g_free);
}
