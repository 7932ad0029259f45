/* droverd --metrics-listen ADDR:PORT: GET /metrics on an address of its
 * own, plain HTTP and no authentication, for a Prometheus server on a
 * trusted network (docs/METRICS.md).  Anything else there is 404. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _DvMetricsListener DvMetricsListener;

/* Listens on @listen ("ADDR:PORT", as --listen) on the thread-default main
 * context.  A malformed address is DV_ERROR_INVALID_ARGUMENT naming
 * "metrics_listen". */
DvMetricsListener *dv_metrics_listener_new(const char *listen, GError **error);
/* "http://ADDR:PORT/metrics" (borrowed). */
const char *dv_metrics_listener_get_url(DvMetricsListener *l);
void dv_metrics_listener_free(DvMetricsListener *l);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvMetricsListener, dv_metrics_listener_free)

G_END_DECLS
