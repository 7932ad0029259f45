/* Leased jobs (issue 13, items 1-3): two job managers, each with its own
 * connection and server id, on one database (a private PostgreSQL
 * database, and a SQLite file for the single-server path).  A "server"
 * is frozen inside a step (as by SIGSTOP or a kill: no renewal, no
 * write); the other takes the job over once its lease expired, and the
 * frozen one, thawed, finds its epoch gone and writes nothing. */
#define G_LOG_DOMAIN "DvTestJobLease"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>

#include "dv-error.h"
#include "dv-jobs.h"
#include "dv-json.h"
#include "dv-store.h"
#include "dv-test-pg.h"

#define LEASE_MS 2000
#define HEARTBEAT_MS 250
#define N_STEPS 6

typedef struct {
    const char *name; /* "A", "B" */
    DvStore *store;
    DvJobManager *jobs;
    gboolean frozen; /* under effects_lock */
} Server;

typedef struct {
    char *tmpdir;
    char *pg_dbname;
    char *location;
    Server s[2];
} Fixture;

/* Every step's effect as "server:step", in order (the host-side effect a
 * real job would have). */
static GMutex effects_lock;
static GCond effects_cond;
static GPtrArray *effects;

static gboolean
test_steps_job(DvJob *job, gpointer user_data, GError **error)
{
    Server *srv = user_data;
    static const DvJobStep steps[N_STEPS] = { { "s0", 1 }, { "s1", 1 }, { "s2", 1 },
                                              { "s3", 1 }, { "s4", 1 }, { "s5", 1 } };

    dv_job_set_steps(job, steps, N_STEPS);
    for (guint i = 0; i < N_STEPS; i++) {
        if (!dv_job_step(job, steps[i].name, error))
            return FALSE;
        g_mutex_lock(&effects_lock);
        /* Frozen: the process does nothing until thawed. */
        while (srv->frozen)
            g_cond_wait(&effects_cond, &effects_lock);
        g_mutex_unlock(&effects_lock);
        /* The step's effect, only with the lease held (what a job checks
         * before touching libvirt). */
        if (!dv_job_step(job, steps[i].name, error))
            return FALSE;
        g_mutex_lock(&effects_lock);
        g_ptr_array_add(effects, g_strdup_printf("%s:%s", srv->name, steps[i].name));
        g_cond_broadcast(&effects_cond);
        g_mutex_unlock(&effects_lock);
        g_usleep(150 * 1000);
    }
    return TRUE;
}

static void
fixture_set_up(Fixture *fx, gconstpointer data)
{
    const char *backend = data;
    g_autoptr(GError) error = NULL;

    effects = g_ptr_array_new_with_free_func(g_free);
    if (g_str_equal(backend, "sqlite")) {
        fx->tmpdir = g_dir_make_tmp("dv-test-lease-XXXXXX", &error);
        g_assert_no_error(error);
        fx->location = g_build_filename(fx->tmpdir, "drover.db", NULL);
    } else {
        fx->location = dv_test_pg_new_database("dv_lease", &fx->pg_dbname);
    }
    for (guint i = 0; i < 2; i++) {
        Server *srv = &fx->s[i];
        DvJobKind steps = { "test.steps", test_steps_job, srv, TRUE };
        DvJobKind once = { "test.once", test_steps_job, srv, FALSE };
        srv->name = i == 0 ? "A" : "B";
        srv->store = dv_store_open(fx->location, DV_STORE_OPEN_MIGRATE, &error);
        g_assert_no_error(error);
        srv->jobs = dv_job_manager_new(srv->store, srv->name, 4);
        dv_job_manager_set_lease(srv->jobs, LEASE_MS, HEARTBEAT_MS);
        dv_job_manager_register_kind(srv->jobs, &steps);
        dv_job_manager_register_kind(srv->jobs, &once);
        dv_job_manager_start_leases(srv->jobs);
    }
}

static void
fixture_tear_down(Fixture *fx, gconstpointer data)
{
    (void)data;
    g_mutex_lock(&effects_lock);
    fx->s[0].frozen = fx->s[1].frozen = FALSE;
    g_cond_broadcast(&effects_cond);
    g_mutex_unlock(&effects_lock);
    for (guint i = 0; i < 2; i++) {
        g_clear_pointer(&fx->s[i].jobs, dv_job_manager_free);
        g_clear_pointer(&fx->s[i].store, dv_store_free);
    }
    dv_test_pg_drop_database(fx->pg_dbname);
    g_free(fx->pg_dbname);
    if (fx->tmpdir != NULL) {
        g_autofree char *wal = g_strconcat(fx->location, "-wal", NULL);
        g_autofree char *shm = g_strconcat(fx->location, "-shm", NULL);
        g_unlink(fx->location);
        g_unlink(wal);
        g_unlink(shm);
        g_rmdir(fx->tmpdir);
    }
    g_free(fx->tmpdir);
    g_free(fx->location);
    g_clear_pointer(&effects, g_ptr_array_unref);
}

static JsonObject *
submit(Server *srv, const char *kind, const char *scope_id, GError **error)
{
    DvJobScope scope = { "catalog", scope_id, "c1" };
    DvJobRequest req = {
        .kind = kind,
        .target_type = "debug",
        .target_id = NULL,
        .target_name = "lease",
        .created_by = "test",
        .scopes = scope_id != NULL ? &scope : NULL,
        .n_scopes = scope_id != NULL ? 1 : 0,
    };
    return dv_job_manager_submit(srv->jobs, &req, error);
}

static void
wait_effects(guint n)
{
    gint64 end = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    g_mutex_lock(&effects_lock);
    while (effects->len < n)
        g_assert_true(g_cond_wait_until(&effects_cond, &effects_lock, end));
    g_mutex_unlock(&effects_lock);
}

static JsonObject *
wait_end(Server *srv, const char *id, guint timeout_s)
{
    gint64 end = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
    for (;;) {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) row = dv_store_get(srv->store, &dv_table_jobs, id, &error);
        const char *state;
        g_assert_no_error(error);
        state = dv_json_get_string(row, "state", "");
        if (g_strcmp0(state, "queued") != 0 && g_strcmp0(state, "running") != 0)
            return g_steal_pointer(&row);
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_usleep(50 * 1000);
    }
}

static void
set_frozen(Server *srv, gboolean frozen)
{
    g_mutex_lock(&effects_lock);
    srv->frozen = frozen;
    g_cond_broadcast(&effects_cond);
    g_mutex_unlock(&effects_lock);
    dv_job_manager_pause_leases_for_test(srv->jobs, frozen);
}

/* A's job is taken over by B once A stops renewing; every step's effect
 * happens once; A, thawed, writes nothing and makes no effect. */
static void
test_takeover(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = submit(&fx->s[0], "test.steps", NULL, &error);
    g_autoptr(JsonObject) end = NULL;
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    const char *id;
    gint64 frozen_at, took;
    g_autofree char *owner = NULL;
    gint64 epoch = 0;
    guint a_effects;

    (void)data;
    g_assert_no_error(error);
    id = dv_json_get_string(job, "id", "");
    wait_effects(2);
    set_frozen(&fx->s[0], TRUE);
    frozen_at = g_get_monotonic_time();
    g_mutex_lock(&effects_lock);
    a_effects = effects->len;
    g_mutex_unlock(&effects_lock);

    end = wait_end(&fx->s[1], id, 20);
    took = g_get_monotonic_time() - frozen_at;
    g_test_message("taken over and finished %.2f s after A froze (lease %d ms)",
                   (double)took / G_USEC_PER_SEC, LEASE_MS);
    g_assert_cmpstr(dv_json_get_string(end, "state", ""), ==, "succeeded");
    g_assert_cmpstr(dv_json_get_string(end, "server_id", ""), ==, "B");
    g_assert_cmpint(dv_json_get_int(end, "attempts", 0), ==, 2);
    g_assert_cmpuint(dv_job_manager_get_n_takeovers(fx->s[1].jobs), ==, 1);
    g_assert_cmpuint(dv_job_manager_get_n_takeovers(fx->s[0].jobs), ==, 0);
    /* Not before the lease ran out, and within lease + a few heartbeats. */
    g_assert_cmpint(took, >=, (gint64)LEASE_MS * 1000 / 2);
    g_assert_cmpint(took, <, (gint64)(LEASE_MS + 10 * HEARTBEAT_MS) * 1000 + 3 * G_USEC_PER_SEC);
    g_assert_true(dv_store_job_get_lease(fx->s[1].store, id, &owner, &epoch, NULL, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(owner, ==, "B");
    g_assert_cmpint(epoch, ==, 2);

    /* A thaws: its next step finds the epoch changed; no effect, no write. */
    set_frozen(&fx->s[0], FALSE);
    g_assert_true(dv_job_manager_wait_idle(fx->s[0].jobs, 10000));
    {
        g_autoptr(JsonObject) after = dv_store_get(fx->s[0].store, &dv_table_jobs, id, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(dv_json_get_string(after, "state", ""), ==, "succeeded");
        g_assert_cmpstr(dv_json_get_string(after, "server_id", ""), ==, "B");
        g_assert_cmpint(dv_json_get_int(after, "finished_at", 0), ==,
                        dv_json_get_int(end, "finished_at", 0));
    }
    g_mutex_lock(&effects_lock);
    for (guint i = 0; i < effects->len; i++) {
        const char *e = g_ptr_array_index(effects, i);
        if (i >= a_effects)
            g_assert_true(g_str_has_prefix(e, "B:"));
    }
    /* B ran the steps from the start again (idempotent steps), each once. */
    g_assert_cmpuint(effects->len, ==, a_effects + N_STEPS);
    for (guint i = a_effects; i < effects->len; i++)
        g_assert_true(g_hash_table_add(seen, g_ptr_array_index(effects, i)));
    g_mutex_unlock(&effects_lock);
}

/* A job that cannot resume ends failed with the reason when taken over. */
static void
test_not_resumable(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = submit(&fx->s[0], "test.once", NULL, &error);
    g_autoptr(JsonObject) end = NULL;
    JsonObject *err;

    (void)data;
    g_assert_no_error(error);
    wait_effects(1);
    set_frozen(&fx->s[0], TRUE);
    end = wait_end(&fx->s[1], dv_json_get_string(job, "id", ""), 20);
    g_assert_cmpstr(dv_json_get_string(end, "state", ""), ==, "failed");
    err = dv_json_get_object(end, "error");
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(dv_json_get_string(err, "message", ""), "cannot resume"));
    set_frozen(&fx->s[0], FALSE);
    g_assert_true(dv_job_manager_wait_idle(fx->s[0].jobs, 10000));
    g_mutex_lock(&effects_lock);
    g_assert_cmpuint(effects->len, ==, 1);
    g_mutex_unlock(&effects_lock);
}

typedef struct {
    Server *srv;
    GMutex *start_lock;
    GCond *start_cond;
    gboolean *go;
    JsonObject *job;
    GError *error;
} Racer;

static gpointer
racer(gpointer data)
{
    Racer *r = data;
    g_mutex_lock(r->start_lock);
    while (!*r->go)
        g_cond_wait(r->start_cond, r->start_lock);
    g_mutex_unlock(r->start_lock);
    r->job = submit(r->srv, "test.steps", "11111111-2222-3333-4444-555555555555", &r->error);
    return NULL;
}

/* Two servers accept a job on one catalog at the same instant: one is
 * accepted, the other is a conflict naming it; the end frees the scope. */
static void
test_scope_race(Fixture *fx, gconstpointer data)
{
    GMutex start_lock;
    GCond start_cond;
    gboolean go = FALSE;
    Racer r[2];
    GThread *t[2];
    guint winner;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) end = NULL;
    g_autoptr(JsonObject) again = NULL;

    (void)data;
    g_mutex_init(&start_lock);
    g_cond_init(&start_cond);
    for (guint i = 0; i < 2; i++) {
        r[i] = (Racer){ &fx->s[i], &start_lock, &start_cond, &go, NULL, NULL };
        t[i] = g_thread_new("racer", racer, &r[i]);
    }
    g_mutex_lock(&start_lock);
    go = TRUE;
    g_cond_broadcast(&start_cond);
    g_mutex_unlock(&start_lock);
    for (guint i = 0; i < 2; i++)
        g_thread_join(t[i]);
    g_assert_true((r[0].job == NULL) != (r[1].job == NULL));
    winner = r[0].job != NULL ? 0 : 1;
    g_assert_error(r[1 - winner].error, DV_ERROR, DV_ERROR_CONFLICT);
    g_test_message("%s", r[1 - winner].error->message);
    g_assert_nonnull(
        strstr(r[1 - winner].error->message, dv_json_get_string(r[winner].job, "id", "")));
    g_assert_nonnull(strstr(r[1 - winner].error->message, "catalog c1 is busy"));
    {
        DvFilter f = { "kind", DV_FILTER_EQ, "test.steps" };
        g_assert_cmpint(dv_store_count(fx->s[0].store, &dv_table_jobs, &f, 1, &error), ==, 1);
        g_assert_no_error(error);
    }
    end = wait_end(&fx->s[winner], dv_json_get_string(r[winner].job, "id", ""), 20);
    g_assert_cmpstr(dv_json_get_string(end, "state", ""), ==, "succeeded");
    again =
        submit(&fx->s[1 - winner], "test.steps", "11111111-2222-3333-4444-555555555555", &error);
    g_assert_no_error(error);
    g_assert_nonnull(again);
    g_assert_true(dv_job_manager_wait_idle(fx->s[1 - winner].jobs, 20000));
    json_object_unref(r[winner].job);
    g_clear_error(&r[1 - winner].error);
    g_mutex_clear(&start_lock);
    g_cond_clear(&start_cond);
}

/* A write at an epoch no longer held changes nothing. */
/* A cancel asked for through B reaches A's job: A's next renewal reads
 * cancel_requested and cancels it; it ends cancelled on A (no takeover)
 * with its remaining steps not done. */
static void
test_cancel_elsewhere(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = submit(&fx->s[0], "test.steps", NULL, &error);
    const char *id;
    g_autoptr(JsonObject) row = NULL;
    gint64 t0;
    double took;
    guint done;

    (void)data;
    g_assert_no_error(error);
    id = dv_json_get_string(job, "id", "");
    wait_effects(1);
    t0 = g_get_monotonic_time();
    g_assert_true(dv_job_manager_cancel(fx->s[1].jobs, id, &error));
    g_assert_no_error(error);
    row = wait_end(&fx->s[1], id, 10);
    took = (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
    g_test_message("cancelled on A %.3f s after the cancel through B", took);
    g_assert_cmpstr(dv_json_get_string(row, "state", ""), ==, "cancelled");
    {
        g_autofree char *owner = NULL;
        gint64 epoch = 0, expires = 0, now = 0;
        g_assert_true(
            dv_store_job_get_lease(fx->s[1].store, id, &owner, &epoch, &expires, &now, &error));
        g_assert_cmpstr(owner, ==, "A");
        g_assert_cmpint(epoch, ==, 1);
    }
    g_assert_cmpfloat(took, <, (HEARTBEAT_MS + 1000) / 1000.0);
    g_mutex_lock(&effects_lock);
    done = effects->len;
    for (guint i = 0; i < effects->len; i++)
        g_assert_true(g_str_has_prefix(effects->pdata[i], "A:"));
    g_mutex_unlock(&effects_lock);
    g_assert_cmpuint(done, <, N_STEPS);
    g_assert_cmpuint(dv_job_manager_get_n_takeovers(fx->s[1].jobs), ==, 0);
}

static void
test_stale_write(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = submit(&fx->s[0], "test.steps", NULL, &error);
    g_autoptr(JsonObject) changes = json_object_new();
    const char *id = dv_json_get_string(job, "id", "");
    gint64 epoch = 0;

    (void)data;
    g_assert_no_error(error);
    g_assert_true(dv_job_manager_wait_idle(fx->s[0].jobs, 20000));
    g_assert_true(dv_store_job_get_lease(fx->s[0].store, id, NULL, &epoch, NULL, NULL, &error));
    json_object_set_string_member(changes, "state", "failed");
    g_assert_false(dv_store_job_write(fx->s[1].store, id, epoch - 1, changes, TRUE, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "lease_epoch");
    g_clear_error(&error);
    g_assert_false(dv_store_job_renew_lease(fx->s[1].store, id, "B", epoch, 1000, NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    {
        g_autoptr(JsonObject) row = dv_store_get(fx->s[1].store, &dv_table_jobs, id, NULL);
        g_assert_cmpstr(dv_json_get_string(row, "state", ""), ==, "succeeded");
    }
}

int
main(int argc, char **argv)
{
    static const char *const backends[] = { "sqlite", "postgresql" };

    g_test_init(&argc, &argv, NULL);
    g_cond_init(&effects_cond);
    for (gsize b = 0; b < G_N_ELEMENTS(backends); b++) {
        g_autofree char *p1 = g_strdup_printf("/drover/jobs/lease/%s/takeover", backends[b]);
        g_autofree char *p2 = g_strdup_printf("/drover/jobs/lease/%s/not-resumable", backends[b]);
        g_autofree char *p3 = g_strdup_printf("/drover/jobs/lease/%s/scope-race", backends[b]);
        g_autofree char *p4 = g_strdup_printf("/drover/jobs/lease/%s/stale-write", backends[b]);
        g_autofree char *p5 =
            g_strdup_printf("/drover/jobs/lease/%s/cancel-elsewhere", backends[b]);
        g_test_add(p1, Fixture, backends[b], fixture_set_up, test_takeover, fixture_tear_down);
        g_test_add(p2, Fixture, backends[b], fixture_set_up, test_not_resumable, fixture_tear_down);
        g_test_add(p3, Fixture, backends[b], fixture_set_up, test_scope_race, fixture_tear_down);
        g_test_add(p4, Fixture, backends[b], fixture_set_up, test_stale_write, fixture_tear_down);
        g_test_add(p5, Fixture, backends[b], fixture_set_up, test_cancel_elsewhere,
                   fixture_tear_down);
    }
    return g_test_run();
}
