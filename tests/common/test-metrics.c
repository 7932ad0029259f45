#define G_LOG_DOMAIN "DvTestMetrics"

/* The Prometheus text exposition of lib/common/dv-metrics.c. */
#include "dv-metrics.h"

#include <string.h>

static const double test_buckets[3] = { 0.1, 1, 10 };
static DvMetric test_requests =
    DV_METRIC_COUNTER("test_requests_total", "Requests.\nSecond line \\ here.", "op", "status");
static DvMetric test_duration =
    DV_METRIC_HISTOGRAM("test_duration_seconds", "Durations.", test_buckets, "kind");
static DvMetric test_things = DV_METRIC_GAUGE("test_things", "Things by state.", "state");
static DvMetric test_plain = DV_METRIC_COUNTER("test_plain_total", "No labels.", NULL);

static gboolean
has_line(const char *text, const char *line)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++)
        if (strcmp(lines[i], line) == 0)
            return TRUE;
    return FALSE;
}

#define assert_line(text, line)                                                                    \
    G_STMT_START                                                                                   \
    {                                                                                              \
        if (!has_line(text, line))                                                                 \
            g_error("line «%s» missing from:\n%s", line, text);                                    \
    }                                                                                              \
    G_STMT_END

static void
test_escaping(void)
{
    g_autofree char *text = NULL;
    g_autoptr(GString) s = g_string_new(NULL);

    dv_metrics_reset_for_test();
    dv_metrics_escape_label(s, "a\\b\"c\nd");
    g_assert_cmpstr(s->str, ==, "a\\\\b\\\"c\\nd");
    dv_metric_add(&test_requests, 1, "vm.start", "202");
    dv_metric_add(&test_requests, 2, "vm.start", "202");
    dv_metric_add(&test_requests, 1, "we\"ird\\op\n", "500");
    dv_metric_add(&test_plain, 1);
    text = dv_metrics_render();
    assert_line(text, "# HELP test_requests_total Requests.\\nSecond line \\\\ here.");
    assert_line(text, "# TYPE test_requests_total counter");
    assert_line(text, "test_requests_total{op=\"vm.start\",status=\"202\"} 3");
    assert_line(text, "test_requests_total{op=\"we\\\"ird\\\\op\\n\",status=\"500\"} 1");
    assert_line(text, "test_plain_total 1");
    g_assert_true(g_str_has_suffix(text, "\n"));
}

static void
test_histogram(void)
{
    g_autofree char *text = NULL;

    dv_metrics_reset_for_test();
    dv_metric_observe(&test_duration, 0.05, "vm.create");
    dv_metric_observe(&test_duration, 0.1, "vm.create"); /* on a bound: in it (le) */
    dv_metric_observe(&test_duration, 5, "vm.create");
    dv_metric_observe(&test_duration, 100, "vm.create");
    text = dv_metrics_render();
    assert_line(text, "# TYPE test_duration_seconds histogram");
    assert_line(text, "test_duration_seconds_bucket{kind=\"vm.create\",le=\"0.1\"} 2");
    assert_line(text, "test_duration_seconds_bucket{kind=\"vm.create\",le=\"1\"} 2");
    assert_line(text, "test_duration_seconds_bucket{kind=\"vm.create\",le=\"10\"} 3");
    assert_line(text, "test_duration_seconds_bucket{kind=\"vm.create\",le=\"+Inf\"} 4");
    assert_line(text, "test_duration_seconds_count{kind=\"vm.create\"} 4");
    assert_line(text, "test_duration_seconds_sum{kind=\"vm.create\"} 105.15");
    /* Buckets come in ascending order, +Inf last, before _sum and _count. */
    g_assert_true(strstr(text, "le=\"0.1\"") < strstr(text, "le=\"10\""));
    g_assert_true(strstr(text, "le=\"10\"") < strstr(text, "le=\"+Inf\""));
    g_assert_true(strstr(text, "le=\"+Inf\"") < strstr(text, "test_duration_seconds_sum"));
}

static void
test_gauge_zero_and_cap(void)
{
    g_autofree char *text = NULL;
    g_autofree char *text2 = NULL;

    dv_metrics_reset_for_test();
    dv_metric_set(&test_things, 4, "running");
    dv_metric_set(&test_things, 2, "stopped");
    dv_metric_zero(&test_things);
    dv_metric_set(&test_things, 1, "running");
    text = dv_metrics_render();
    assert_line(text, "test_things{state=\"running\"} 1");
    assert_line(text, "test_things{state=\"stopped\"} 0");
    /* Unbounded values fold into "other" past the cap. */
    for (guint i = 0; i < DV_METRIC_SERIES_MAX + 10; i++) {
        g_autofree char *v = g_strdup_printf("s%u", i);
        dv_metric_set(&test_things, 1, v);
    }
    text2 = dv_metrics_render();
    assert_line(text2, "test_things{state=\"other\"} 1");
    g_assert_null(strstr(text2, "state=\"s2009\""));
}

static void
test_disabled(void)
{
    g_autofree char *text = NULL;

    dv_metrics_reset_for_test();
    dv_metrics_set_enabled(FALSE);
    dv_metric_add(&test_requests, 1, "vm.stop", "202");
    dv_metrics_set_enabled(TRUE);
    text = dv_metrics_render();
    g_assert_null(strstr(text, "vm.stop"));
}

static guint collected;

static void
test_collector(gpointer data)
{
    collected++;
    dv_metric_set(&test_things, GPOINTER_TO_UINT(data), "collected");
}

static void
test_collectors(void)
{
    g_autofree char *text = NULL;
    g_autofree char *text2 = NULL;

    dv_metrics_reset_for_test();
    dv_metrics_add_collector(test_collector, GUINT_TO_POINTER(7));
    text = dv_metrics_render();
    g_assert_cmpuint(collected, ==, 1);
    assert_line(text, "test_things{state=\"collected\"} 7");
    dv_metrics_remove_collector(test_collector, GUINT_TO_POINTER(7));
    text2 = dv_metrics_render();
    g_assert_cmpuint(collected, ==, 1);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/drover/common/metrics/escaping", test_escaping);
    g_test_add_func("/drover/common/metrics/histogram", test_histogram);
    g_test_add_func("/drover/common/metrics/gauge-zero-and-cap", test_gauge_zero_and_cap);
    g_test_add_func("/drover/common/metrics/disabled", test_disabled);
    g_test_add_func("/drover/common/metrics/collectors", test_collectors);
    return g_test_run();
}
