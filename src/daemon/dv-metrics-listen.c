#define G_LOG_DOMAIN "DvMetricsListen"

#include "dv-metrics-listen.h"
#include "dv-config.h"
#include "dv-error.h"
#include "dv-metrics.h"
#include "dv-server.h"

#include <libsoup/soup.h>
#include <string.h>

struct _DvMetricsListener {
    SoupServer *soup;
    char *url;
};

/* On the main thread: the inventory gauges' query runs at most once per
 * 5 s (their cache), the rest is copying counters. */
static void
dv_metrics_listener_handler(SoupServer *soup, SoupServerMessage *msg, const char *path,
                            GHashTable *query, gpointer user_data)
{
    const char *method = soup_server_message_get_method(msg);
    char *text;

    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection",
                                 "close");
    if (strcmp(path, "/metrics") != 0) {
        soup_server_message_set_status(msg, SOUP_STATUS_NOT_FOUND, NULL);
        soup_server_message_set_response(msg, "text/plain", SOUP_MEMORY_STATIC, "not found\n", 10);
        return;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow",
                                     "GET, HEAD");
        soup_server_message_set_status(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
        return;
    }
    text = dv_metrics_render();
    soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
    soup_server_message_set_response(msg, DV_METRICS_CONTENT_TYPE, SOUP_MEMORY_TAKE, text,
                                     strlen(text));
}

DvMetricsListener *
dv_metrics_listener_new(const char *listen, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(GInetSocketAddress) addr = dv_server_parse_listen(listen, &local);
    g_autoptr(DvMetricsListener) l = NULL;
    GSList *uris;

    if (addr == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "metrics_listen", "metrics_listen: %s",
                           local->message);
        return NULL;
    }
    l = g_new0(DvMetricsListener, 1);
    l->soup = soup_server_new("server-header", "droverd/" DV_VERSION " ", NULL);
    soup_server_add_handler(l->soup, NULL, dv_metrics_listener_handler, NULL, NULL);
    if (!soup_server_listen(l->soup, G_SOCKET_ADDRESS(addr), 0, error)) {
        dv_error_convert(error);
        g_prefix_error(error, "cannot listen on %s for metrics: ", listen);
        return NULL;
    }
    uris = soup_server_get_uris(l->soup);
    if (uris != NULL) {
        g_autofree char *base = g_uri_to_string(uris->data);
        l->url = g_strdup_printf("%smetrics", base);
    }
    g_slist_free_full(uris, (GDestroyNotify)g_uri_unref);
    return g_steal_pointer(&l);
}

const char *
dv_metrics_listener_get_url(DvMetricsListener *l)
{
    return l->url;
}

void
dv_metrics_listener_free(DvMetricsListener *l)
{
    if (l == NULL)
        return;
    if (l->soup != NULL)
        soup_server_disconnect(l->soup);
    g_clear_object(&l->soup);
    g_free(l->url);
    g_free(l);
}
