#define G_LOG_DOMAIN "DvStoreJobs"

/* Leased jobs and their exclusive scopes (dv-store.h, migration 0016).
 *
 * Every instant here is the database's clock: a server whose own clock
 * runs ahead neither expires another's lease early nor extends its own.
 * SQLite serves one server (its write lock is the single writer);
 * PostgreSQL serves several, and the sweep's SELECT takes its rows with
 * FOR UPDATE SKIP LOCKED so that servers sweeping at once do not queue
 * behind each other for the same job. */

#include "dv-store.h"
#include "dv-db.h"
#include "dv-error.h"
#include "dv-json.h"

static const char *
dv_store_db_now_sql(DvStore *store)
{
    if (dv_db_get_backend(dv_store_get_db(store)) == DV_DB_POSTGRESQL)
        return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)";
    return "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)";
}

static gboolean
dv_store_job_fenced(const char *job_id, gint64 epoch, GError **error)
{
    dv_set_field_error(error, DV_ERROR_CONFLICT, "lease_epoch",
                       "job %s is no longer held at epoch %" G_GINT64_FORMAT
                       " (another server took it over)",
                       job_id, epoch);
    return FALSE;
}

gboolean
dv_store_job_take_scopes(DvStore *store, const char *job_id, const DvJobScope *scopes,
                         guint n_scopes, GError **error)
{
    DvDb *db = dv_store_get_db(store);

    for (guint i = 0; i < n_scopes; i++) {
        const DvJobScope *sc = &scopes[i];
        /* Twice at most: the second time after freeing a scope its job
         * left behind when it ended. */
        for (guint attempt = 0;; attempt++) {
            gint64 changed = 0;
            g_autoptr(DvSqlRows) rows = NULL;
            const char *holder;
            const char *state;

            if (!dv_db_exec(
                    db,
                    "INSERT INTO job_scopes (scope_kind, object_id, job_id) VALUES (?, ?, ?) "
                    "ON CONFLICT (scope_kind, object_id) DO NOTHING",
                    DV_SQL_ARGS(DV_SQL_TEXT_P(sc->kind), DV_SQL_TEXT_P(sc->id),
                                DV_SQL_TEXT_P(job_id)),
                    &changed, error))
                return FALSE;
            if (changed > 0)
                break;
            rows = dv_db_query(db,
                               "SELECT s.job_id, j.kind, j.state FROM job_scopes s "
                               "LEFT JOIN jobs j ON j.id = s.job_id "
                               "WHERE s.scope_kind = ? AND s.object_id = ?",
                               DV_SQL_ARGS(DV_SQL_TEXT_P(sc->kind), DV_SQL_TEXT_P(sc->id)), error);
            if (rows == NULL)
                return FALSE;
            if (dv_sql_rows_get_n_rows(rows) == 0 && attempt == 0)
                continue; /* freed meanwhile */
            holder = dv_sql_rows_get_n_rows(rows) > 0 ? dv_sql_rows_get_text(rows, 0, 0) : NULL;
            state = dv_sql_rows_get_n_rows(rows) > 0 ? dv_sql_rows_get_text(rows, 0, 2) : NULL;
            if (attempt == 0 && (state == NULL || (g_strcmp0(state, "queued") != 0 &&
                                                   g_strcmp0(state, "running") != 0))) {
                if (!dv_db_exec(db,
                                "DELETE FROM job_scopes WHERE scope_kind = ? AND object_id = ? "
                                "AND job_id = ?",
                                DV_SQL_ARGS(DV_SQL_TEXT_P(sc->kind), DV_SQL_TEXT_P(sc->id),
                                            DV_SQL_TEXT_P(holder)),
                                NULL, error))
                    return FALSE;
                continue;
            }
            dv_set_field_error(error, DV_ERROR_CONFLICT, NULL,
                               "%s %s is busy: job %s (%s) is %s; wait for it or cancel it",
                               sc->kind, sc->name != NULL ? sc->name : sc->id,
                               holder != NULL ? holder : "?",
                               dv_sql_rows_get_n_rows(rows) > 0 && dv_sql_rows_get_text(rows, 0, 1)
                                   ? dv_sql_rows_get_text(rows, 0, 1)
                                   : "?",
                               state != NULL ? state : "running");
            return FALSE;
        }
    }
    return TRUE;
}

gboolean
dv_store_job_take_lease(DvStore *store, const char *job_id, const char *owner, gint64 lease_us,
                        gboolean only_expired, gint64 *ret_epoch, GError **error)
{
    DvDb *db = dv_store_get_db(store);
    const char *now = dv_store_db_now_sql(store);
    g_autofree char *sql = g_strdup_printf(
        "UPDATE jobs SET lease_owner = ?, lease_epoch = lease_epoch + 1, lease_expires = %s + ? "
        "WHERE id = ? AND state IN ('queued', 'running')%s%s%s",
        now, only_expired ? " AND (lease_expires IS NULL OR lease_expires < " : "",
        only_expired ? now : "", only_expired ? ")" : "");
    g_autoptr(DvSqlRows) rows = NULL;
    gint64 changed = 0;

    if (!dv_db_exec(
            db, sql,
            DV_SQL_ARGS(DV_SQL_TEXT_P(owner), DV_SQL_INT_P(lease_us), DV_SQL_TEXT_P(job_id)),
            &changed, error))
        return FALSE;
    if (changed == 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "lease_epoch",
                           "job %s is not queued or running, or its lease is held", job_id);
        return FALSE;
    }
    rows = dv_db_query(db, "SELECT lease_epoch FROM jobs WHERE id = ?",
                       DV_SQL_ARGS(DV_SQL_TEXT_P(job_id)), error);
    if (rows == NULL)
        return FALSE;
    if (dv_sql_rows_get_n_rows(rows) == 0)
        return dv_store_job_fenced(job_id, 0, error);
    if (ret_epoch != NULL)
        *ret_epoch = dv_sql_rows_get_int(rows, 0, 0);
    return TRUE;
}

typedef struct {
    const char *job_id;
    const char *owner;
    gint64 epoch;
    gint64 lease_us;
    gboolean cancel_requested;
} DvStoreJobRenew;

/* In a transaction for its check that the database is still the one
 * opened, as every write has (dv_db_exec() has it, a query does not). */
static gboolean
dv_store_job_renew_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvStoreJobRenew *r = user_data;
    /* RETURNING: the holder learns in the same statement whether a cancel
     * was asked for through any server. */
    g_autofree char *sql = g_strdup_printf("UPDATE jobs SET lease_expires = %s + ? WHERE id = ? "
                                           "AND lease_epoch = ? AND lease_owner = ? "
                                           "RETURNING cancel_requested",
                                           dv_store_db_now_sql(store));
    g_autoptr(DvSqlRows) rows =
        dv_db_query(dv_store_get_db(store), sql,
                    DV_SQL_ARGS(DV_SQL_INT_P(r->lease_us), DV_SQL_TEXT_P(r->job_id),
                                DV_SQL_INT_P(r->epoch), DV_SQL_TEXT_P(r->owner)),
                    error);

    if (rows == NULL)
        return FALSE;
    if (dv_sql_rows_get_n_rows(rows) == 0)
        return dv_store_job_fenced(r->job_id, r->epoch, error);
    r->cancel_requested = dv_sql_rows_get_int(rows, 0, 0) != 0;
    return TRUE;
}

gboolean
dv_store_job_renew_lease(DvStore *store, const char *job_id, const char *owner, gint64 epoch,
                         gint64 lease_us, gboolean *ret_cancel_requested, GError **error)
{
    DvStoreJobRenew r = { job_id, owner, epoch, lease_us, FALSE };

    if (!dv_store_transaction(store, dv_store_job_renew_txn, &r, error))
        return FALSE;
    if (ret_cancel_requested != NULL)
        *ret_cancel_requested = r.cancel_requested;
    return TRUE;
}

typedef struct {
    const char *job_id;
    gint64 epoch;
    JsonObject *changes;
} DvStoreJobWrite;

static gboolean
dv_store_job_write_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvStoreJobWrite *w = user_data;

    if (!dv_store_update_if(store, &dv_table_jobs, w->job_id, "lease_epoch", w->epoch, w->changes,
                            error))
        return FALSE;
    return dv_db_exec(dv_store_get_db(store), "DELETE FROM job_scopes WHERE job_id = ?",
                      DV_SQL_ARGS(DV_SQL_TEXT_P(w->job_id)), NULL, error);
}

gboolean
dv_store_job_write(DvStore *store, const char *job_id, gint64 epoch, JsonObject *changes,
                   gboolean release, GError **error)
{
    DvStoreJobWrite w = { job_id, epoch, changes };

    if (!release)
        return dv_store_update_if(store, &dv_table_jobs, job_id, "lease_epoch", epoch, changes,
                                  error);
    return dv_store_transaction(store, dv_store_job_write_txn, &w, error);
}

typedef struct {
    const char *owner;
    gint64 lease_us;
    guint max;
    JsonArray *out;
} DvStoreJobClaim;

static gboolean
dv_store_job_claim_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvStoreJobClaim *c = user_data;
    gboolean pg = dv_db_get_backend(dv_store_get_db(store)) == DV_DB_POSTGRESQL;
    const char *now = dv_store_db_now_sql(store);
    g_autofree char *sql = g_strdup_printf(
        "SELECT id FROM jobs WHERE state IN ('queued', 'running') "
        "AND (lease_expires IS NULL OR lease_expires < %s) ORDER BY created_at LIMIT ?%s",
        now, pg ? " FOR UPDATE SKIP LOCKED" : "");
    g_autoptr(DvSqlRows) rows =
        dv_db_query(dv_store_get_db(store), sql, DV_SQL_ARGS(DV_SQL_INT_P(c->max)), error);

    if (rows == NULL)
        return FALSE;
    for (guint i = 0; i < dv_sql_rows_get_n_rows(rows); i++) {
        const char *id = dv_sql_rows_get_text(rows, i, 0);
        g_autoptr(GError) local = NULL;
        g_autoptr(JsonObject) row = NULL;
        gint64 epoch = 0;

        if (!dv_store_job_take_lease(store, id, c->owner, c->lease_us, TRUE, &epoch, &local)) {
            if (g_error_matches(local, DV_ERROR, DV_ERROR_CONFLICT))
                continue;
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        row = dv_store_get(store, &dv_table_jobs, id, error);
        if (row == NULL)
            return FALSE;
        json_object_set_int_member(row, "lease_epoch", epoch);
        json_array_add_object_element(c->out, g_steal_pointer(&row));
    }
    return TRUE;
}

JsonArray *
dv_store_job_claim_expired(DvStore *store, const char *owner, gint64 lease_us, guint max,
                           GError **error)
{
    g_autoptr(JsonArray) out = json_array_new();
    DvStoreJobClaim c = { owner, lease_us, max, out };

    if (!dv_store_transaction(store, dv_store_job_claim_txn, &c, error))
        return NULL;
    return g_steal_pointer(&out);
}

gboolean
dv_store_job_get_lease(DvStore *store, const char *job_id, char **ret_owner, gint64 *ret_epoch,
                       gint64 *ret_expires, gint64 *ret_now, GError **error)
{
    g_autofree char *sql =
        g_strdup_printf("SELECT lease_owner, lease_epoch, lease_expires, %s FROM jobs WHERE id = ?",
                        dv_store_db_now_sql(store));
    g_autoptr(DvSqlRows) rows =
        dv_db_query(dv_store_get_db(store), sql, DV_SQL_ARGS(DV_SQL_TEXT_P(job_id)), error);

    if (rows == NULL)
        return FALSE;
    if (dv_sql_rows_get_n_rows(rows) == 0) {
        dv_set_field_error(error, DV_ERROR_NOT_FOUND, NULL, "job '%s' not found", job_id);
        return FALSE;
    }
    if (ret_owner != NULL)
        *ret_owner = g_strdup(dv_sql_rows_get_text(rows, 0, 0));
    if (ret_epoch != NULL)
        *ret_epoch = dv_sql_rows_get_int(rows, 0, 1);
    if (ret_expires != NULL)
        *ret_expires = dv_sql_rows_get_int(rows, 0, 2);
    if (ret_now != NULL)
        *ret_now = dv_sql_rows_get_int(rows, 0, 3);
    return TRUE;
}
