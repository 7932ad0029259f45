#define G_LOG_DOMAIN "DvMetrics"

#include "dv-metrics.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

const double dv_metrics_buckets_fast[12] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,   0.25,   0.5,   1,    5,     30 };
const double dv_metrics_buckets_slow[12] = { 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 7200 };

typedef struct {
    char *values[DV_METRIC_LABELS_MAX];
    double value; /* counter, gauge */
    guint64
        counts[DV_METRIC_BUCKETS_MAX + 1]; /* histogram: per bucket (not cumulative), +Inf last */
    double sum;
    guint64 count;
} DvMetricSeries;

static GMutex dv_metrics_lock; /* the registry and the collectors */
static GPtrArray *dv_metrics_all;
static GArray *dv_metrics_collectors;
static gint dv_metrics_disabled;

typedef struct {
    DvMetricsCollector func;
    gpointer user_data;
} DvMetricsCollectorEntry;

static void
dv_metric_series_free(gpointer data)
{
    DvMetricSeries *s = data;
    for (guint i = 0; i < DV_METRIC_LABELS_MAX; i++)
        g_free(s->values[i]);
    g_free(s);
}

void
dv_metrics_set_enabled(gboolean enabled)
{
    g_atomic_int_set(&dv_metrics_disabled, enabled ? 0 : 1);
}

gboolean
dv_metrics_get_enabled(void)
{
    return g_atomic_int_get(&dv_metrics_disabled) == 0;
}

static guint
dv_metric_n_labels(const DvMetric *m)
{
    guint n = 0;
    while (n < DV_METRIC_LABELS_MAX && m->labels[n] != NULL)
        n++;
    return n;
}

/* Under m->lock: the series of the values in @args, made when new. */
static DvMetricSeries *
dv_metric_series_locked(DvMetric *m, va_list args)
{
    const char *values[DV_METRIC_LABELS_MAX] = { NULL };
    guint n = dv_metric_n_labels(m);
    g_autoptr(GString) key = g_string_sized_new(64);
    DvMetricSeries *s;

    if (!m->registered) {
        g_mutex_lock(&dv_metrics_lock);
        if (dv_metrics_all == NULL)
            dv_metrics_all = g_ptr_array_new();
        g_ptr_array_add(dv_metrics_all, m);
        g_mutex_unlock(&dv_metrics_lock);
        m->series = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, dv_metric_series_free);
        m->registered = TRUE;
    }
    /* The key: the values joined by \x1f. */
    for (guint i = 0; i < n; i++) {
        const char *v = va_arg(args, const char *);
        values[i] = v != NULL ? v : "";
        g_string_append(key, values[i]);
        g_string_append_c(key, '\x1f');
    }
    s = g_hash_table_lookup(m->series, key->str);
    if (s != NULL)
        return s;
    if (g_hash_table_size(m->series) >= DV_METRIC_SERIES_MAX) {
        /* Over the cap: one overflow series of "other" values. */
        g_autoptr(GString) other = g_string_new(NULL);
        for (guint i = 0; i < n; i++)
            g_string_append(other, "other\x1f");
        s = g_hash_table_lookup(m->series, other->str);
        if (s != NULL)
            return s;
        s = g_new0(DvMetricSeries, 1);
        for (guint i = 0; i < n; i++)
            s->values[i] = g_strdup("other");
        g_hash_table_insert(m->series, g_string_free(g_steal_pointer(&other), FALSE), s);
        return s;
    }
    s = g_new0(DvMetricSeries, 1);
    for (guint i = 0; i < n; i++)
        s->values[i] = g_strdup(values[i]);
    g_hash_table_insert(m->series, g_strdup(key->str), s);
    return s;
}

void
dv_metric_add(DvMetric *m, double v, ...)
{
    va_list args;
    if (g_atomic_int_get(&dv_metrics_disabled))
        return;
    g_return_if_fail(m->type != DV_METRIC_TYPE_HISTOGRAM);
    va_start(args, v);
    g_mutex_lock(&m->lock);
    dv_metric_series_locked(m, args)->value += v;
    g_mutex_unlock(&m->lock);
    va_end(args);
}

void
dv_metric_set(DvMetric *m, double v, ...)
{
    va_list args;
    if (g_atomic_int_get(&dv_metrics_disabled))
        return;
    g_return_if_fail(m->type == DV_METRIC_TYPE_GAUGE);
    va_start(args, v);
    g_mutex_lock(&m->lock);
    dv_metric_series_locked(m, args)->value = v;
    g_mutex_unlock(&m->lock);
    va_end(args);
}

void
dv_metric_observe(DvMetric *m, double v, ...)
{
    va_list args;
    DvMetricSeries *s;
    guint b = 0;

    if (g_atomic_int_get(&dv_metrics_disabled))
        return;
    g_return_if_fail(m->type == DV_METRIC_TYPE_HISTOGRAM && m->n_buckets <= DV_METRIC_BUCKETS_MAX);
    if (isnan(v))
        return;
    while (b < m->n_buckets && v > m->buckets[b])
        b++;
    va_start(args, v);
    g_mutex_lock(&m->lock);
    s = dv_metric_series_locked(m, args);
    s->counts[b]++;
    s->sum += v;
    s->count++;
    g_mutex_unlock(&m->lock);
    va_end(args);
}

void
dv_metric_zero(DvMetric *m)
{
    GHashTableIter it;
    gpointer value;

    g_mutex_lock(&m->lock);
    if (m->series != NULL) {
        g_hash_table_iter_init(&it, m->series);
        while (g_hash_table_iter_next(&it, NULL, &value))
            ((DvMetricSeries *)value)->value = 0;
    }
    g_mutex_unlock(&m->lock);
}

void
dv_metrics_add_collector(DvMetricsCollector func, gpointer user_data)
{
    DvMetricsCollectorEntry e = { func, user_data };
    g_mutex_lock(&dv_metrics_lock);
    if (dv_metrics_collectors == NULL)
        dv_metrics_collectors = g_array_new(FALSE, FALSE, sizeof(DvMetricsCollectorEntry));
    g_array_append_val(dv_metrics_collectors, e);
    g_mutex_unlock(&dv_metrics_lock);
}

void
dv_metrics_remove_collector(DvMetricsCollector func, gpointer user_data)
{
    g_mutex_lock(&dv_metrics_lock);
    for (guint i = 0; dv_metrics_collectors != NULL && i < dv_metrics_collectors->len; i++) {
        DvMetricsCollectorEntry *e =
            &g_array_index(dv_metrics_collectors, DvMetricsCollectorEntry, i);
        if (e->func == func && e->user_data == user_data) {
            g_array_remove_index(dv_metrics_collectors, i);
            break;
        }
    }
    g_mutex_unlock(&dv_metrics_lock);
}

void
dv_metrics_escape_label(GString *out, const char *value)
{
    for (const char *p = value; p != NULL && *p != '\0'; p++) {
        switch (*p) {
        case '\\':
            g_string_append(out, "\\\\");
            break;
        case '"':
            g_string_append(out, "\\\"");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        default:
            g_string_append_c(out, *p);
        }
    }
}

static void
dv_metrics_append_number(GString *out, double v)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    if (isinf(v))
        g_string_append(out, v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        g_string_append(out, "NaN");
    else if (v == floor(v) && fabs(v) < 1e15)
        g_string_append_printf(out, "%" G_GINT64_FORMAT, (gint64)v);
    else
        g_string_append(out, g_ascii_formatd(buf, sizeof(buf), "%.15g", v));
}

/* {a="x",b="y"} with @extra (le="0.5") last; nothing when there are no labels. */
static void
dv_metrics_append_labels(GString *out, const DvMetric *m, const DvMetricSeries *s, const char *le)
{
    guint n = dv_metric_n_labels(m);
    if (n == 0 && le == NULL)
        return;
    g_string_append_c(out, '{');
    for (guint i = 0; i < n; i++) {
        g_string_append_printf(out, "%s%s=\"", i > 0 ? "," : "", m->labels[i]);
        dv_metrics_escape_label(out, s->values[i]);
        g_string_append_c(out, '"');
    }
    if (le != NULL)
        g_string_append_printf(out, "%sle=\"%s\"", n > 0 ? "," : "", le);
    g_string_append_c(out, '}');
}

static gint
dv_metrics_series_cmp(gconstpointer a, gconstpointer b)
{
    const DvMetricSeries *x = *(DvMetricSeries *const *)a, *y = *(DvMetricSeries *const *)b;
    for (guint i = 0; i < DV_METRIC_LABELS_MAX; i++) {
        int c = g_strcmp0(x->values[i], y->values[i]);
        if (c != 0)
            return c;
    }
    return 0;
}

static gint
dv_metrics_metric_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp((*(DvMetric *const *)a)->name, (*(DvMetric *const *)b)->name);
}

static void
dv_metrics_render_one(GString *out, DvMetric *m)
{
    static const char *const types[] = { "counter", "gauge", "histogram" };
    g_autoptr(GPtrArray) series = g_ptr_array_new();
    GHashTableIter it;
    gpointer value;

    g_string_append_printf(out, "# HELP %s ", m->name);
    for (const char *p = m->help; *p != '\0'; p++) {
        if (*p == '\\')
            g_string_append(out, "\\\\");
        else if (*p == '\n')
            g_string_append(out, "\\n");
        else
            g_string_append_c(out, *p);
    }
    g_string_append_printf(out, "\n# TYPE %s %s\n", m->name, types[m->type]);
    g_mutex_lock(&m->lock);
    g_hash_table_iter_init(&it, m->series);
    while (g_hash_table_iter_next(&it, NULL, &value))
        g_ptr_array_add(series, value);
    g_ptr_array_sort(series, dv_metrics_series_cmp);
    for (guint i = 0; i < series->len; i++) {
        DvMetricSeries *s = series->pdata[i];
        if (m->type != DV_METRIC_TYPE_HISTOGRAM) {
            g_string_append(out, m->name);
            dv_metrics_append_labels(out, m, s, NULL);
            g_string_append_c(out, ' ');
            dv_metrics_append_number(out, s->value);
            g_string_append_c(out, '\n');
            continue;
        }
        {
            guint64 cumulative = 0;
            for (guint b = 0; b <= m->n_buckets; b++) {
                char le[G_ASCII_DTOSTR_BUF_SIZE];
                cumulative += s->counts[b];
                if (b < m->n_buckets)
                    g_ascii_formatd(le, sizeof(le), "%.15g", m->buckets[b]);
                else
                    g_strlcpy(le, "+Inf", sizeof(le));
                g_string_append_printf(out, "%s_bucket", m->name);
                dv_metrics_append_labels(out, m, s, le);
                g_string_append_printf(out, " %" G_GUINT64_FORMAT "\n", cumulative);
            }
            g_string_append_printf(out, "%s_sum", m->name);
            dv_metrics_append_labels(out, m, s, NULL);
            g_string_append_c(out, ' ');
            dv_metrics_append_number(out, s->sum);
            g_string_append_printf(out, "\n%s_count", m->name);
            dv_metrics_append_labels(out, m, s, NULL);
            g_string_append_printf(out, " %" G_GUINT64_FORMAT "\n", s->count);
        }
    }
    g_mutex_unlock(&m->lock);
}

char *
dv_metrics_render(void)
{
    g_autoptr(GArray) collectors = NULL;
    g_autoptr(GPtrArray) all = g_ptr_array_new();
    GString *out = g_string_new(NULL);

    /* Collectors run without the registry's lock: they register metrics. */
    g_mutex_lock(&dv_metrics_lock);
    if (dv_metrics_collectors != NULL)
        collectors = g_array_copy(dv_metrics_collectors);
    g_mutex_unlock(&dv_metrics_lock);
    for (guint i = 0; collectors != NULL && i < collectors->len; i++) {
        DvMetricsCollectorEntry *e = &g_array_index(collectors, DvMetricsCollectorEntry, i);
        e->func(e->user_data);
    }
    g_mutex_lock(&dv_metrics_lock);
    for (guint i = 0; dv_metrics_all != NULL && i < dv_metrics_all->len; i++)
        g_ptr_array_add(all, dv_metrics_all->pdata[i]);
    g_mutex_unlock(&dv_metrics_lock);
    g_ptr_array_sort(all, dv_metrics_metric_cmp);
    for (guint i = 0; i < all->len; i++)
        dv_metrics_render_one(out, all->pdata[i]);
    return g_string_free(out, FALSE);
}

void
dv_metrics_reset_for_test(void)
{
    g_autoptr(GPtrArray) all = g_ptr_array_new();

    /* Lock order: a metric's lock is taken before the registry's (first
     * use registers under it), so never the other way round. */
    g_mutex_lock(&dv_metrics_lock);
    for (guint i = 0; dv_metrics_all != NULL && i < dv_metrics_all->len; i++)
        g_ptr_array_add(all, dv_metrics_all->pdata[i]);
    g_mutex_unlock(&dv_metrics_lock);
    for (guint i = 0; i < all->len; i++) {
        DvMetric *m = all->pdata[i];
        g_mutex_lock(&m->lock);
        g_hash_table_remove_all(m->series);
        g_mutex_unlock(&m->lock);
    }
}
