/* Process-wide metrics in the Prometheus text exposition format
 * (docs/METRICS.md).
 *
 * A metric is a static DvMetric defined by the code that feeds it
 * (DV_METRIC_COUNTER(), DV_METRIC_GAUGE(), DV_METRIC_HISTOGRAM()): name,
 * help, up to DV_METRIC_LABELS_MAX label names and, for a histogram, its
 * bucket bounds.  It registers itself on first use; dv_metrics_render()
 * writes every registered metric, sorted by name, after running the
 * collectors (gauges read from elsewhere once per scrape).
 *
 * Threads: any thread may add, set or observe; each metric has its own
 * mutex held only for one hash lookup and one update (never across I/O).
 * Collectors run in the thread that renders.
 *
 * Label values must be bounded by the caller (op names, kinds, states,
 * host names): each distinct set of values is a series kept for the
 * process's life.  DV_METRIC_SERIES_MAX caps a metric's series; values
 * past it are counted under the label value "other".
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define DV_METRIC_LABELS_MAX 3
#define DV_METRIC_SERIES_MAX 2000
#define DV_METRIC_BUCKETS_MAX 24

typedef enum {
    DV_METRIC_TYPE_COUNTER,
    DV_METRIC_TYPE_GAUGE,
    DV_METRIC_TYPE_HISTOGRAM,
} DvMetricType;

typedef struct {
    const char *name;
    const char *help;
    DvMetricType type;
    const char *labels[DV_METRIC_LABELS_MAX]; /* NULL after the last */
    const double *buckets;                    /* histogram upper bounds, ascending */
    guint n_buckets;                          /* at most DV_METRIC_BUCKETS_MAX */
    /* private */
    GMutex lock;
    GHashTable *series;
    gboolean registered;
} DvMetric;

/* clang-format off */
#define DV_METRIC_COUNTER(n, h, ...) { .name = (n), .help = (h), .type = DV_METRIC_TYPE_COUNTER, .labels = { __VA_ARGS__ } }
#define DV_METRIC_GAUGE(n, h, ...) { .name = (n), .help = (h), .type = DV_METRIC_TYPE_GAUGE, .labels = { __VA_ARGS__ } }
#define DV_METRIC_HISTOGRAM(n, h, b, ...)                                                                 \
    { .name = (n), .help = (h), .type = DV_METRIC_TYPE_HISTOGRAM, .buckets = (b), .n_buckets = G_N_ELEMENTS(b), \
      .labels = { __VA_ARGS__ } }
/* clang-format on */

/* Bucket bounds in seconds: a request or a libvirt call (1 ms to 30 s),
 * a job or its wait in the queue (100 ms to 2 h). */
extern const double dv_metrics_buckets_fast[12];
extern const double dv_metrics_buckets_slow[12];

/* The label values follow @v, one per label name of @m, in order (NULL
 * is written as ""). */
void dv_metric_add(DvMetric *m, double v, ...);     /* counter or gauge += v */
void dv_metric_set(DvMetric *m, double v, ...);     /* gauge = v */
void dv_metric_observe(DvMetric *m, double v, ...); /* histogram */

/* Sets every series of gauge @m to 0 (a collector refreshing a grouped
 * count: states no row is in any more read 0, not their last value). */
void dv_metric_zero(DvMetric *m);

/* Turns the hooks on or off (on by default): off, add/set/observe return
 * at once (bench/inventory-scale --metrics compares both). */
void dv_metrics_set_enabled(gboolean enabled);
gboolean dv_metrics_get_enabled(void);

typedef void (*DvMetricsCollector)(gpointer user_data);
void dv_metrics_add_collector(DvMetricsCollector func, gpointer user_data);
void dv_metrics_remove_collector(DvMetricsCollector func, gpointer user_data);

/* Runs the collectors, then writes every registered metric in the text
 * format version 0.0.4 (owned). */
char *dv_metrics_render(void);

/* The content type of dv_metrics_render()'s text. */
#define DV_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Appends @value escaped as a label value (\\, \" and \n). */
void dv_metrics_escape_label(GString *out, const char *value);

/* Tests: forgets every series of every metric (metrics stay registered). */
void dv_metrics_reset_for_test(void);

G_END_DECLS
