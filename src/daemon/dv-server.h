/* The REST API over libsoup-3: routes, authentication, JSON bodies and
 * job event streams.  Only this folder uses the libsoup server. */
#pragma once

#include <gio/gio.h>

#include "dv-engine.h"

G_BEGIN_DECLS

typedef struct _DvServer DvServer;

typedef struct {
    const char *listen;          /* "ADDR:PORT" */
    const char *tls_cert_file;   /* PEM; required for non-loopback */
    const char *tls_key_file;
} DvServerOptions;

/* Listens on opts->listen.  A non-loopback address without a certificate
 * is refused (DV_ERROR_INVALID_ARGUMENT naming "listen"). */
DvServer *dv_server_new(DvEngine *engine, const DvServerOptions *opts, GError **error);
void dv_server_free(DvServer *server);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvServer, dv_server_free)

/* The URL clients use, e.g. "http://127.0.0.1:8420". */
const char *dv_server_get_url(DvServer *server);

/* Parses "ADDR:PORT" or "[V6]:PORT"; a loopback check for TLS rules. */
GInetSocketAddress *dv_server_parse_listen(const char *listen, GError **error);

G_END_DECLS
