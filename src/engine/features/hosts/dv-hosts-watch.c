#define G_LOG_DOMAIN "DvHostsWatch"

/* Current state without asking: every host in the inventory is watched
 * through one event connection of its own (dv_virt_watch_new(), docs/VIRT.md
 * "Events"), and what its events say is written to the database.
 *
 * Threads and work:
 * - libvirt's event thread only records what changed in the host's pending
 *   set (a domain's UUID, "sync the whole host", "the connection is gone")
 *   and hands the host to the worker pool; it never waits on a database or
 *   a host.
 * - A pool of DV_HOSTS_WATCH_WORKERS threads does the work, one task per
 *   host at a time (busy flag), so events of one host are applied in order
 *   and a slow or unreachable host holds one worker, not the others.  A
 *   domain's event re-reads that domain and writes it with dv_core_vm_sync();
 *   anything else (a domain defined or undefined, a pool, a network, a
 *   domain no row knows) re-reads the whole host and writes it with
 *   dv_engine_host_sync(), the refresh's own code.  Events arriving while a
 *   task runs are folded into the next round, so a burst costs one sync.
 * - The ticker thread wakes every DV_HOSTS_WATCH_TICK_MS: a host whose
 *   watch is down is reopened every retry interval (and fully synced when
 *   it answers again), and every host is fully synced every resync interval
 *   to catch what events miss.
 * - Volumes have no events: a file copied into a directory pool is seen
 *   by libvirt only when the pool is refreshed.  Every scan interval the
 *   watch refreshes the host's active pools and compares a digest of their
 *   volumes (dv_virt_host_volumes_digest()) with the last one; a change
 *   reads the host whole.  A pool refreshed by anyone else (its refresh
 *   event) is compared without a refresh of its own.  The interval grows
 *   with the scan's cost, so that scanning takes at most a twentieth of
 *   the time of a host with large pools, and no scan runs beside a job.
 * - A watch's connection closing (keepalive) is written by a thread of its
 *   own (the loss pool) at once, not by the host's next task: that task may
 *   be waiting on the same host (a call in flight, or an open through a
 *   daemon that stopped answering, which libvirt does not bound, as its
 *   keepalive starts only once the connection is open), and the host must
 *   turn unreachable within the keepalive window all the same.  The two
 *   writers of a host's reachability take its reach_lock in turn, so the
 *   change is logged once and a late loss never overwrites the "ok" of a
 *   reconnection (epoch).
 * - The mutex protects the host table and every host's pending state; it is
 *   never held across libvirt or database calls.
 */

#include "dv-hosts.h"

#define DV_HOSTS_WATCH_WORKERS 4
#define DV_HOSTS_WATCH_TICK_MS 200
/* A scan costs at most 1/DV_HOSTS_WATCH_SCAN_SHARE of the time. */
#define DV_HOSTS_WATCH_SCAN_SHARE 20

typedef struct _DvHostsWatch DvHostsWatch;

typedef struct {
    gint refcount;
    DvHostsWatch *w; /* borrowed: outlives every task (the pool is drained first) */
    char *host_id;
    /* Under w->lock: */
    DvVirtWatch *vw;   /* NULL while not connected */
    GHashTable *dirty; /* domain UUIDs to re-read */
    gboolean full;     /* re-read the whole host */
    gboolean connect;  /* (re)open the watch */
    char *lost;        /* the watch's connection closed: why */
    gboolean busy;     /* a task of this host is queued or running */
    gboolean removed;
    gboolean scan;         /* compare the volumes' digest */
    gboolean scan_refresh; /* ... refreshing the pools first */
    char *vol_digest;      /* the last digest read, NULL before the first */
    gint64 next_scan;
    gint64 next_resync;
    gint64 next_retry;
    gint64 first_event_us; /* oldest event of the pending round */
    guint epoch;           /* losses the task has taken in */
    char *loss;            /* the last close, for the loss pool */
    guint loss_epoch;      /* the epoch it happened in */
    /* Held by whoever reads and writes the host's reachability; outside
     * w->lock, across that one row's read and write only. */
    GMutex reach_lock;
} DvWatchedHost;

struct _DvHostsWatch {
    DvEngine *engine;
    GMutex lock;
    GCond cond;
    GHashTable *hosts; /* host id -> DvWatchedHost* (one reference) */
    GThreadPool *pool;
    GThreadPool *loss_pool;
    GThread *ticker;
    gboolean stopping;
    guint resync_ms;
    guint retry_ms;
    guint scan_ms;
    /* Figures (under lock). */
    guint64 events;
    guint64 scans;
    guint64 scan_changes;
    gint64 last_scan_us; /* what the last scan cost */
    guint64 applied_rounds;
    gint64 last_delay_us; /* event received -> its round written */
    gint64 max_delay_us;
};

static DvHostsWatch *
dv_hosts_watch_get(DvEngine *engine)
{
    return dv_core(engine)->host_watch;
}

static DvWatchedHost *
dv_watched_host_ref(DvWatchedHost *wh)
{
    g_atomic_int_inc(&wh->refcount);
    return wh;
}

static void
dv_watched_host_unref(gpointer data)
{
    DvWatchedHost *wh = data;

    if (!g_atomic_int_dec_and_test(&wh->refcount))
        return;
    g_clear_pointer(&wh->vw, dv_virt_watch_free);
    g_hash_table_unref(wh->dirty);
    g_free(wh->vol_digest);
    g_free(wh->lost);
    g_free(wh->loss);
    g_mutex_clear(&wh->reach_lock);
    g_free(wh->host_id);
    g_free(wh);
}

/* Under w->lock. */
static void
dv_hosts_watch_schedule_locked(DvHostsWatch *w, DvWatchedHost *wh)
{
    gboolean pending =
        wh->full || wh->connect || wh->scan || wh->lost != NULL || g_hash_table_size(wh->dirty) > 0;

    if (wh->busy || wh->removed || w->stopping || !pending)
        return;
    wh->busy = TRUE;
    g_thread_pool_push(w->pool, dv_watched_host_ref(wh), NULL);
}

/* libvirt's event thread: record and hand over, nothing more. */
static void
dv_hosts_watch_event_cb(const DvVirtEvent *ev, gpointer user_data)
{
    DvWatchedHost *wh = user_data;
    DvHostsWatch *w = wh->w;

    g_mutex_lock(&w->lock);
    w->events++;
    if (wh->first_event_us == 0)
        wh->first_event_us = ev->received_us;
    switch (ev->kind) {
    case DV_VIRT_EVENT_DOMAIN:
        if (g_strcmp0(ev->what, "defined") == 0 || g_strcmp0(ev->what, "undefined") == 0)
            wh->full = TRUE;
        else
            g_hash_table_add(wh->dirty, g_strdup(ev->uuid));
        break;
    case DV_VIRT_EVENT_POOL:
        /* A refresh (Drover's scan's own among them) may have found new
         * files: compare.  Anything else changed the pool itself. */
        if (g_strcmp0(ev->what, "refreshed") == 0)
            wh->scan = TRUE;
        else
            wh->full = TRUE;
        break;
    case DV_VIRT_EVENT_NETWORK:
        wh->full = TRUE;
        break;
    case DV_VIRT_EVENT_CLOSED:
        g_free(wh->lost);
        wh->lost = g_strdup_printf("the host's connection closed (%s)", ev->what);
        g_free(wh->loss);
        wh->loss = g_strdup(wh->lost);
        wh->loss_epoch = wh->epoch;
        if (!w->stopping && !wh->removed)
            g_thread_pool_push(w->loss_pool, dv_watched_host_ref(wh), NULL);
        break;
    }
    dv_hosts_watch_schedule_locked(w, wh);
    g_mutex_unlock(&w->lock);
}

/* Writes the host's reachability when it changed: "unreachable" with
 * @reason, or back to "ok" from "unreachable" (a host needing attention
 * keeps that state: only a refresh's rights check clears it). */
static void
dv_hosts_watch_write_reachable(DvEngine *engine, const char *host_id, const char *reason)
{
    g_autoptr(JsonObject) host = NULL;
    g_autoptr(JsonObject) changes = json_object_new();
    g_autoptr(GError) local = NULL;
    const char *state;

    host = dv_store_get(dv_core(engine)->store, &dv_table_hosts, host_id, &local);
    if (host == NULL) {
        g_debug("host %s: %s", host_id, local->message);
        return;
    }
    state = dv_json_get_string(host, "state", "");
    if (reason != NULL) {
        if (g_strcmp0(state, "unreachable") == 0 &&
            g_strcmp0(dv_json_get_string(host, "state_reason", ""), reason) == 0)
            return;
        json_object_set_string_member(changes, "state", "unreachable");
        json_object_set_string_member(changes, "state_reason", reason);
    } else {
        if (g_strcmp0(state, "unreachable") != 0)
            return;
        json_object_set_string_member(changes, "state", "ok");
        json_object_set_null_member(changes, "state_reason");
    }
    if (!dv_store_update(dv_core(engine)->store, &dv_table_hosts, host_id, changes, &local))
        g_warning("host %s: cannot record its reachability: %s", host_id, local->message);
    else if (reason != NULL && g_strcmp0(state, "unreachable") == 0)
        /* Another reason for the same loss: one line per loss. */
        g_debug("host %s (%s) still unreachable: %s", dv_json_get_string(host, "name", ""), host_id,
                reason);
    else if (reason != NULL)
        g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "DROVER_HOST",
                         dv_json_get_string(host, "name", ""), "DROVER_HOST_ID", host_id, "MESSAGE",
                         "host %s (%s) connection lost: %s", dv_json_get_string(host, "name", ""),
                         host_id, reason);
    else
        g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "DROVER_HOST",
                         dv_json_get_string(host, "name", ""), "DROVER_HOST_ID", host_id, "MESSAGE",
                         "host %s (%s) connection regained: it answers again",
                         dv_json_get_string(host, "name", ""), host_id);
}

static void
dv_hosts_watch_set_reachable(DvEngine *engine, DvWatchedHost *wh, const char *reason)
{
    g_mutex_lock(&wh->reach_lock);
    dv_hosts_watch_write_reachable(engine, wh->host_id, reason);
    g_mutex_unlock(&wh->reach_lock);
}

/* The loss pool: writes a watch's close unless the host's task took it in
 * meanwhile (it writes it then, and may have reconnected since). */
static void
dv_hosts_watch_loss_task(gpointer data, gpointer user_data)
{
    DvWatchedHost *wh = data;
    DvHostsWatch *w = user_data;
    g_autofree char *loss = NULL;

    g_mutex_lock(&wh->reach_lock);
    g_mutex_lock(&w->lock);
    if (!w->stopping && !wh->removed && wh->loss_epoch == wh->epoch)
        loss = g_strdup(wh->loss);
    g_mutex_unlock(&w->lock);
    if (loss != NULL)
        dv_hosts_watch_write_reachable(w->engine, wh->host_id, loss);
    g_mutex_unlock(&wh->reach_lock);
    dv_watched_host_unref(wh);
}

/* TRUE when no job of this server works on @host_id and none started or
 * ended since @gen was read: what the watch read of the host since then
 * is not older than anything a job wrote. */
static gboolean
dv_hosts_watch_quiet(DvEngine *engine, const char *host_id, guint64 gen)
{
    guint active = 0;
    return dv_job_manager_host_activity(dv_core(engine)->jobs, host_id, &active) == gen &&
           active == 0;
}

/* The refresh's read and write of the whole host, without its job; not
 * written (*@ret_skipped) when a job of Drover's ran on the host meanwhile. */
static gboolean
dv_hosts_watch_full_sync(DvEngine *engine, DvVirtHost *vh, const char *host_id, guint64 gen,
                         gboolean *ret_skipped, GError **error)
{
    g_autoptr(JsonObject) probe = dv_virt_host_probe(vh, NULL, error);

    if (probe == NULL)
        return FALSE;
    if (!dv_hosts_watch_quiet(engine, host_id, gen)) {
        *ret_skipped = TRUE;
        return TRUE;
    }
    return dv_engine_host_sync(engine, host_id, probe, error);
}

/* Re-reads the domains of @uuids that a VM row of the host knows; FALSE
 * in @ret_full when one is unknown or gone (the whole host is read). */
static gboolean
dv_hosts_watch_sync_domains(DvEngine *engine, DvVirtHost *vh, const char *host_id, guint64 gen,
                            GPtrArray *uuids, gboolean *ret_full, GError **error)
{
    for (guint i = 0; i < uuids->len; i++) {
        const char *uuid = g_ptr_array_index(uuids, i);
        g_autoptr(JsonObject) vm = NULL;
        g_autoptr(JsonObject) dom = NULL;
        g_autoptr(GError) local = NULL;

        vm = dv_store_find(dv_core(engine)->store, &dv_table_vms, "uuid", uuid, &local);
        if (vm == NULL && !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        g_clear_error(&local);
        if (vm == NULL || g_strcmp0(dv_json_get_string(vm, "host_id", ""), host_id) != 0) {
            /* A domain no row knows: imported by the whole host's sync. */
            *ret_full = TRUE;
            continue;
        }
        dom = dv_virt_domain_get(vh, uuid, NULL, &local);
        if (dom == NULL) {
            if (!g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
                g_propagate_error(error, g_steal_pointer(&local));
                return FALSE;
            }
            *ret_full = TRUE;
            continue;
        }
        if (!dv_hosts_watch_quiet(engine, host_id, gen)) {
            /* A job changed the host meanwhile: read it whole later. */
            *ret_full = TRUE;
            return TRUE;
        }
        if (!dv_core_vm_sync(engine, vm, dom, error))
            return FALSE;
    }
    return TRUE;
}

/* Reads the digest of the host's volumes and keeps it; TRUE in
 * @ret_changed when it differs from the one kept before. */
static gboolean
dv_hosts_watch_scan(DvHostsWatch *w, DvWatchedHost *wh, DvVirtHost *vh, gboolean refresh,
                    gboolean *ret_changed, GError **error)
{
    gint64 start = g_get_monotonic_time();
    g_autofree char *digest = dv_virt_host_volumes_digest(vh, refresh, NULL, error);
    gint64 cost = g_get_monotonic_time() - start;

    if (digest == NULL)
        return FALSE;
    g_mutex_lock(&w->lock);
    *ret_changed = wh->vol_digest != NULL && strcmp(wh->vol_digest, digest) != 0;
    g_free(wh->vol_digest);
    wh->vol_digest = g_steal_pointer(&digest);
    if (refresh)
        wh->next_scan = g_get_monotonic_time() +
                        MAX((gint64)w->scan_ms * 1000, cost * DV_HOSTS_WATCH_SCAN_SHARE);
    w->scans++;
    if (*ret_changed)
        w->scan_changes++;
    w->last_scan_us = cost;
    g_mutex_unlock(&w->lock);
    return TRUE;
}

#define DV_HOSTS_WATCH_DEFER_MS 500

/* The host is read whole again soon, by the ticker. */
static void
dv_hosts_watch_defer(DvHostsWatch *w, DvWatchedHost *wh)
{
    gint64 soon = g_get_monotonic_time() + DV_HOSTS_WATCH_DEFER_MS * G_TIME_SPAN_MILLISECOND;
    g_mutex_lock(&w->lock);
    wh->next_resync = MIN(wh->next_resync, soon);
    g_mutex_unlock(&w->lock);
}

static void
dv_hosts_watch_task(gpointer data, gpointer user_data)
{
    DvWatchedHost *wh = data;
    DvHostsWatch *w = user_data;
    DvEngine *engine = w->engine;

    for (;;) {
        g_autoptr(GPtrArray) uuids = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *lost = NULL;
        g_autoptr(DvVirtWatch) old_watch = NULL;
        g_autoptr(DvVirtHost) vh = NULL;
        g_autoptr(GError) local = NULL;
        gboolean full, connect, connected, scan, scan_refresh;
        guint64 gen;
        gint64 first_event_us;
        GHashTableIter it;
        gpointer key;

        g_mutex_lock(&w->lock);
        full = wh->full;
        connect = wh->connect;
        scan = wh->scan;
        scan_refresh = wh->scan_refresh;
        lost = g_steal_pointer(&wh->lost);
        first_event_us = wh->first_event_us;
        wh->full = wh->connect = wh->scan = wh->scan_refresh = FALSE;
        wh->first_event_us = 0;
        g_hash_table_iter_init(&it, wh->dirty);
        while (g_hash_table_iter_next(&it, &key, NULL))
            g_ptr_array_add(uuids, g_strdup(key));
        g_hash_table_remove_all(wh->dirty);
        if (w->stopping || wh->removed ||
            (!full && !connect && !scan && lost == NULL && uuids->len == 0)) {
            wh->busy = FALSE;
            g_cond_broadcast(&w->cond);
            g_mutex_unlock(&w->lock);
            break;
        }
        if (lost != NULL) {
            /* Freed outside the lock: it waits for a running callback. */
            old_watch = g_steal_pointer(&wh->vw);
            wh->epoch++;
            wh->next_retry = g_get_monotonic_time() + (gint64)w->retry_ms * 1000;
        }
        connected = wh->vw != NULL;
        g_mutex_unlock(&w->lock);

        if (lost != NULL) {
            g_clear_pointer(&old_watch, dv_virt_watch_free);
            dv_hosts_watch_set_reachable(engine, wh, lost);
            continue;
        }
        vh = dv_core_virt_host_by_id(engine, wh->host_id, &local);
        if (vh == NULL) {
            g_debug("host %s: %s", wh->host_id, local->message);
            continue;
        }
        if (connect && !connected) {
            DvVirtWatch *vw =
                dv_virt_watch_new(vh, dv_hosts_watch_event_cb, dv_watched_host_ref(wh),
                                  dv_watched_host_unref, &local);
            g_mutex_lock(&w->lock);
            wh->next_retry = g_get_monotonic_time() + (gint64)w->retry_ms * 1000;
            if (vw != NULL && !wh->removed && !w->stopping)
                wh->vw = g_steal_pointer(&vw);
            g_mutex_unlock(&w->lock);
            g_clear_pointer(&vw, dv_virt_watch_free);
            if (local != NULL) {
                dv_hosts_watch_set_reachable(engine, wh, local->message);
                continue;
            }
            /* Connected (again): what happened meanwhile is read whole. */
            dv_hosts_watch_set_reachable(engine, wh, NULL);
            full = TRUE;
        }
        /* A job of Drover's changing this host writes what it does
         * itself; a read taken beside it could write back what the job
         * just changed (a snapshot it deleted, a VM it removed).  While
         * the host has jobs, the watch reads it whole once they are over
         * (the ticker, DV_HOSTS_WATCH_DEFER_MS). */
        {
            guint active = 0;
            gen = dv_job_manager_host_activity(dv_core(engine)->jobs, wh->host_id, &active);
            if (active > 0) {
                /* A scan alone waits for the next tick after the jobs. */
                if (full || connect || uuids->len > 0)
                    dv_hosts_watch_defer(w, wh);
                continue;
            }
        }
        if (scan && !full) {
            gboolean changed = FALSE;
            if (!dv_hosts_watch_scan(w, wh, vh, scan_refresh, &changed, &local)) {
                if (g_error_matches(local, DV_ERROR, DV_ERROR_UNAVAILABLE))
                    dv_hosts_watch_set_reachable(engine, wh, local->message);
                else
                    g_debug("host %s: scanning its volumes: %s", wh->host_id, local->message);
                g_clear_error(&local);
            } else if (changed) {
                full = TRUE;
            }
        } else if (full) {
            /* The digest of what the sync below reads: the next scan
             * compares with it.  A failure here fails the sync too. */
            gboolean changed = FALSE;
            if (!dv_hosts_watch_scan(w, wh, vh, FALSE, &changed, &local))
                g_clear_error(&local);
        }
        if (!full &&
            !dv_hosts_watch_sync_domains(engine, vh, wh->host_id, gen, uuids, &full, &local)) {
            g_debug("host %s: applying events: %s", wh->host_id, local->message);
            g_clear_error(&local);
            full = TRUE;
        }
        if (full) {
            g_mutex_lock(&w->lock);
            wh->next_resync = g_get_monotonic_time() + (gint64)w->resync_ms * 1000;
            g_mutex_unlock(&w->lock);
            gboolean skipped = FALSE;
            if (!dv_hosts_watch_full_sync(engine, vh, wh->host_id, gen, &skipped, &local)) {
                if (g_error_matches(local, DV_ERROR, DV_ERROR_UNAVAILABLE))
                    dv_hosts_watch_set_reachable(engine, wh, local->message);
                else
                    g_warning("host %s: cannot sync: %s", wh->host_id, local->message);
                continue;
            }
            if (skipped) {
                dv_hosts_watch_defer(w, wh);
                continue;
            }
        }
        if (first_event_us != 0) {
            gint64 delay = g_get_monotonic_time() - first_event_us;
            g_mutex_lock(&w->lock);
            w->applied_rounds++;
            w->last_delay_us = delay;
            w->max_delay_us = MAX(w->max_delay_us, delay);
            g_mutex_unlock(&w->lock);
        }
    }
    dv_watched_host_unref(wh);
}

static gpointer
dv_hosts_watch_ticker(gpointer data)
{
    DvHostsWatch *w = data;

    g_mutex_lock(&w->lock);
    while (!w->stopping) {
        gint64 now = g_get_monotonic_time();
        GHashTableIter it;
        gpointer value;

        g_hash_table_iter_init(&it, w->hosts);
        while (g_hash_table_iter_next(&it, NULL, &value)) {
            DvWatchedHost *wh = value;
            if (wh->vw == NULL && !wh->busy && now >= wh->next_retry) {
                wh->connect = TRUE;
            } else if (wh->vw != NULL && now >= wh->next_resync) {
                wh->full = TRUE;
            } else if (wh->vw != NULL && w->scan_ms > 0 && now >= wh->next_scan && !wh->busy) {
                wh->scan = wh->scan_refresh = TRUE;
                /* Not again before this one ran. */
                wh->next_scan = now + (gint64)w->scan_ms * 1000;
            }
            dv_hosts_watch_schedule_locked(w, wh);
        }
        g_cond_wait_until(&w->cond, &w->lock,
                          now + DV_HOSTS_WATCH_TICK_MS * G_TIME_SPAN_MILLISECOND);
    }
    g_mutex_unlock(&w->lock);
    return NULL;
}

void
dv_engine_hosts_watch_host(DvEngine *engine, const char *host_id)
{
    DvHostsWatch *w = dv_hosts_watch_get(engine);
    DvWatchedHost *wh;

    if (w == NULL)
        return;
    g_mutex_lock(&w->lock);
    if (g_hash_table_lookup(w->hosts, host_id) == NULL) {
        wh = g_new0(DvWatchedHost, 1);
        wh->refcount = 1;
        wh->w = w;
        wh->host_id = g_strdup(host_id);
        wh->dirty = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_mutex_init(&wh->reach_lock);
        wh->connect = TRUE;
        wh->next_resync = g_get_monotonic_time() + (gint64)w->resync_ms * 1000;
        g_hash_table_insert(w->hosts, g_strdup(host_id), wh);
        dv_hosts_watch_schedule_locked(w, wh);
    }
    g_mutex_unlock(&w->lock);
}

/* Under w->lock: takes @wh out (the caller drops the table's reference
 * and frees the returned watch outside the lock). */
static DvVirtWatch *
dv_hosts_watch_remove_locked(DvHostsWatch *w, DvWatchedHost *wh)
{
    wh->removed = TRUE;
    /* A task of this host may still be running: it sees removed and ends. */
    while (wh->busy)
        g_cond_wait(&w->cond, &w->lock);
    return g_steal_pointer(&wh->vw);
}

void
dv_engine_hosts_watch_forget(DvEngine *engine, const char *host_id)
{
    DvHostsWatch *w = dv_hosts_watch_get(engine);
    DvWatchedHost *wh;
    DvVirtWatch *vw = NULL;

    if (w == NULL)
        return;
    g_mutex_lock(&w->lock);
    wh = g_hash_table_lookup(w->hosts, host_id);
    if (wh != NULL) {
        g_hash_table_steal(w->hosts, host_id);
        vw = dv_hosts_watch_remove_locked(w, wh);
    }
    g_mutex_unlock(&w->lock);
    dv_virt_watch_free(vw);
    if (wh != NULL)
        dv_watched_host_unref(wh);
}

gboolean
dv_engine_hosts_watch_start(DvEngine *engine, guint resync_ms, guint retry_ms, GError **error)
{
    g_autoptr(JsonArray) hosts = NULL;
    DvHostsWatch *w;

    g_return_val_if_fail(dv_core(engine)->host_watch == NULL, FALSE);
    hosts = dv_core_list_all(engine, &dv_table_hosts, NULL, NULL, error);
    if (hosts == NULL)
        return FALSE;
    w = g_new0(DvHostsWatch, 1);
    w->engine = engine;
    g_mutex_init(&w->lock);
    g_cond_init(&w->cond);
    w->hosts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, dv_watched_host_unref);
    w->resync_ms = resync_ms != 0 ? resync_ms : DV_HOSTS_WATCH_RESYNC_MS;
    w->retry_ms = retry_ms != 0 ? retry_ms : DV_HOSTS_WATCH_RETRY_MS;
    w->scan_ms = DV_HOSTS_WATCH_SCAN_MS;
    w->pool = g_thread_pool_new(dv_hosts_watch_task, w, DV_HOSTS_WATCH_WORKERS, FALSE, NULL);
    w->loss_pool = g_thread_pool_new(dv_hosts_watch_loss_task, w, 1, FALSE, NULL);
    dv_core(engine)->host_watch = w;
    for (guint i = 0; i < json_array_get_length(hosts); i++)
        dv_engine_hosts_watch_host(
            engine, dv_json_get_string(json_array_get_object_element(hosts, i), "id", ""));
    w->ticker = g_thread_new("dv-hosts-watch", dv_hosts_watch_ticker, w);
    return TRUE;
}

void
dv_engine_hosts_watch_stop(DvEngine *engine)
{
    DvHostsWatch *w = dv_hosts_watch_get(engine);
    g_autoptr(GPtrArray) watches =
        g_ptr_array_new_with_free_func((GDestroyNotify)dv_virt_watch_free);
    GHashTableIter it;
    gpointer value;

    if (w == NULL)
        return;
    g_mutex_lock(&w->lock);
    w->stopping = TRUE;
    g_cond_broadcast(&w->cond);
    g_mutex_unlock(&w->lock);
    g_thread_join(w->ticker);
    /* Queued tasks see stopping and end at once; running ones finish
     * their round. */
    g_thread_pool_free(w->pool, FALSE, TRUE);
    g_thread_pool_free(w->loss_pool, FALSE, TRUE);
    g_mutex_lock(&w->lock);
    g_hash_table_iter_init(&it, w->hosts);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        DvVirtWatch *vw = dv_hosts_watch_remove_locked(w, value);
        if (vw != NULL)
            g_ptr_array_add(watches, vw);
    }
    g_mutex_unlock(&w->lock);
    g_clear_pointer(&watches, g_ptr_array_unref);
    g_hash_table_unref(w->hosts);
    g_mutex_clear(&w->lock);
    g_cond_clear(&w->cond);
    dv_core(engine)->host_watch = NULL;
    g_free(w);
}

JsonObject *
dv_engine_hosts_watch_get_stats(DvEngine *engine)
{
    DvHostsWatch *w = dv_hosts_watch_get(engine);
    JsonObject *obj = json_object_new();
    GHashTableIter it;
    gpointer value;
    gint64 watched = 0;

    if (w == NULL)
        return obj;
    g_mutex_lock(&w->lock);
    g_hash_table_iter_init(&it, w->hosts);
    while (g_hash_table_iter_next(&it, NULL, &value))
        if (((DvWatchedHost *)value)->vw != NULL)
            watched++;
    json_object_set_int_member(obj, "hosts", g_hash_table_size(w->hosts));
    json_object_set_int_member(obj, "connected", watched);
    json_object_set_int_member(obj, "events", (gint64)w->events);
    json_object_set_int_member(obj, "applied_rounds", (gint64)w->applied_rounds);
    json_object_set_int_member(obj, "volume_scans", (gint64)w->scans);
    json_object_set_int_member(obj, "volume_scan_changes", (gint64)w->scan_changes);
    json_object_set_int_member(obj, "last_volume_scan_us", w->last_scan_us);
    json_object_set_int_member(obj, "last_delay_us", w->last_delay_us);
    json_object_set_int_member(obj, "max_delay_us", w->max_delay_us);
    g_mutex_unlock(&w->lock);
    return obj;
}
