/* The REST API over libsoup-3: routes, authentication, JSON bodies and
 * job event streams.  Only this folder uses the libsoup server. */
#pragma once

#include <gio/gio.h>

#include "dv-engine.h"

G_BEGIN_DECLS

typedef struct _DvServer DvServer;

/* Client connection limits (docs/API.md, "Connection limits").  Each
 * connection carries one request: libsoup 3.2 never frees a keep-alive
 * connection its client closed, so every response says
 * "Connection: close". */
#define DV_SERVER_HEADER_TIMEOUT 10    /* s from connect to the end of the headers */
#define DV_SERVER_IDLE_TIMEOUT 60      /* s from the headers to the end of the body */
#define DV_SERVER_FD_RESERVE 128       /* descriptors kept for libvirt, the database, files */
#define DV_SERVER_LISTEN_BACKLOG 1024
#define DV_SERVER_MAX_HEADERS (32 * 1024) /* bytes of request headers; more gets 431 */

typedef struct {
    const char *listen;          /* "ADDR:PORT" */
    const char *tls_cert_file;   /* PEM; required for non-loopback */
    const char *tls_key_file;
    /* 0 for the defaults above; max_connections 0 derives the cap from
     * RLIMIT_NOFILE minus DV_SERVER_FD_RESERVE (at least 16). */
    guint max_connections;
    guint header_timeout;
    guint idle_timeout;
    /* The web console's files, served at "/" (dv-web.h); NULL: none,
     * "/" answers 404. */
    const char *web_root;
} DvServerOptions;

/* Listens on opts->listen.  A non-loopback address without a certificate
 * is refused (DV_ERROR_INVALID_ARGUMENT naming "listen"); so is a
 * max_connections that leaves fewer than 32 descriptors free
 * ("max_connections"), and a timeout over a day. */
DvServer *dv_server_new(DvEngine *engine, const DvServerOptions *opts, GError **error);
void dv_server_free(DvServer *server);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvServer, dv_server_free)

/* The URL clients use, e.g. "http://127.0.0.1:8420". */
const char *dv_server_get_url(DvServer *server);

/* Parses "ADDR:PORT" or "[V6]:PORT"; a loopback check for TLS rules. */
/* The client connection cap in force, and how many are open now. */
guint dv_server_get_max_connections(DvServer *server);
guint dv_server_get_n_connections(DvServer *server);

GInetSocketAddress *dv_server_parse_listen(const char *listen, GError **error);

G_END_DECLS
