#define G_LOG_DOMAIN "DvEngineMetrics"

/* The inventory gauges of /metrics (docs/METRICS.md): hosts, VMs, catalog
 * machines and jobs by state, read with one grouped query per table and
 * kept DV_ENGINE_METRICS_CACHE_US so a scrape every second costs at most
 * four small queries every few seconds; the database connection's use.
 * The counters and histograms live with the code they count (jobs/, virt/,
 * auth/, keys/, the daemon's request hook). */

#include "dv-core.h"
#include "dv-engine.h"
#include "dv-metrics.h"

#define DV_ENGINE_METRICS_CACHE_US (5 * G_USEC_PER_SEC)

static DvMetric dv_metric_hosts =
    DV_METRIC_GAUGE("drover_hosts", "Hosts in the inventory, by state.", "state");
static DvMetric dv_metric_vms =
    DV_METRIC_GAUGE("drover_vms", "VMs in the inventory, by state.", "state");
static DvMetric dv_metric_machines =
    DV_METRIC_GAUGE("drover_catalog_machines", "Catalog machines, by state.", "state");
static DvMetric dv_metric_jobs = DV_METRIC_GAUGE(
    "drover_jobs",
    "Jobs in the database (finished ones until housekeeping removes them), by kind and state.",
    "kind", "state");
static DvMetric dv_metric_db = DV_METRIC_GAUGE(
    "drover_db_pool_connections",
    "This server's database connections, by state (one connection, used by one thread at a time).",
    "state");
static DvMetric dv_metric_scrape_errors = DV_METRIC_COUNTER(
    "drover_metrics_collect_errors_total", "Inventory reads for /metrics that failed.", NULL);

/* Every known state reads 0 before the first row in it. */
static const char *const dv_engine_metrics_host_states[] = { "ok", "needs-attention", "unreachable",
                                                             "adding", NULL };
static const char *const dv_engine_metrics_vm_states[] = { "running", "paused",   "shutdown",
                                                           "shutoff", "crashed",  "pmsuspended",
                                                           "unknown", "creating", "missing",
                                                           NULL };

static GMutex dv_engine_metrics_lock;
static gint64 dv_engine_metrics_last;

static void
dv_engine_metrics_count(DvStore *store, const DvTableDef *def, DvMetric *m, const char *column2,
                        const char *const *states)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonArray) rows = dv_store_count_by(store, def, column2 != NULL ? column2 : "state",
                                                  column2 != NULL ? "state" : NULL, &error);

    if (rows == NULL) {
        g_debug("metrics: cannot count %s: %s", def->table, error->message);
        dv_metric_add(&dv_metric_scrape_errors, 1);
        return;
    }
    dv_metric_zero(m);
    for (guint i = 0; states != NULL && states[i] != NULL; i++)
        dv_metric_set(m, 0, states[i]);
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *o = json_array_get_object_element(rows, i);
        double n = (double)dv_json_get_int(o, "count", 0);
        if (column2 != NULL)
            dv_metric_set(m, n, dv_json_get_string(o, column2, ""),
                          dv_json_get_string(o, "state", ""));
        else
            dv_metric_set(m, n, dv_json_get_string(o, "state", ""));
    }
}

static void
dv_engine_metrics_collect(gpointer data)
{
    DvEngine *engine = data;
    DvStore *store = dv_core(engine)->store;
    gint64 now = g_get_monotonic_time();
    gboolean busy = dv_db_is_busy(dv_store_get_db(store));

    dv_metric_set(&dv_metric_db, 1, "open");
    dv_metric_set(&dv_metric_db, busy ? 1 : 0, "in_use");
    dv_metric_set(&dv_metric_db, busy ? 0 : 1, "idle");
    g_mutex_lock(&dv_engine_metrics_lock);
    if (dv_engine_metrics_last != 0 && now - dv_engine_metrics_last < DV_ENGINE_METRICS_CACHE_US) {
        g_mutex_unlock(&dv_engine_metrics_lock);
        return;
    }
    dv_engine_metrics_last = now;
    g_mutex_unlock(&dv_engine_metrics_lock);
    dv_engine_metrics_count(store, &dv_table_hosts, &dv_metric_hosts, NULL,
                            dv_engine_metrics_host_states);
    dv_engine_metrics_count(store, &dv_table_vms, &dv_metric_vms, NULL,
                            dv_engine_metrics_vm_states);
    dv_engine_metrics_count(store, &dv_table_catalog_machines, &dv_metric_machines, NULL, NULL);
    dv_engine_metrics_count(store, &dv_table_jobs, &dv_metric_jobs, "kind", NULL);
}

void
dv_engine_metrics_start(DvEngine *engine)
{
    dv_metrics_add_collector(dv_engine_metrics_collect, engine);
}

void
dv_engine_metrics_stop(DvEngine *engine)
{
    dv_metrics_remove_collector(dv_engine_metrics_collect, engine);
    g_mutex_lock(&dv_engine_metrics_lock);
    dv_engine_metrics_last = 0;
    g_mutex_unlock(&dv_engine_metrics_lock);
}

void
dv_engine_metrics_invalidate(void)
{
    g_mutex_lock(&dv_engine_metrics_lock);
    dv_engine_metrics_last = 0;
    g_mutex_unlock(&dv_engine_metrics_lock);
}

char *
dv_engine_metrics_render(DvEngine *engine)
{
    return dv_metrics_render();
}
