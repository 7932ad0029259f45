/* A noVNC-like RFB client over droverd's console WebSocket, for the
 * console tests: the stream as received (RFB is not message-aligned),
 * the handshake to ServerInit, and a post-mortem of a stream the parser
 * refused. */
#pragma once

#include "dv-test-util.h"

G_BEGIN_DECLS

typedef struct {
    GByteArray *in;   /* received, not yet taken */
    gboolean closed;  /* the WebSocket closed */
    GByteArray *all;  /* every byte of this connection, for dv_test_rfb_desync() */
    gsize taken;      /* of which the parser consumed this many */
    char *daemon_log; /* droverd's stderr, shown when a wait fails */
} DvTestRfb;

/* Connects a "binary" WebSocket to @path on @d with @token as the bearer
 * (NULL: none, a ticket in the path) and starts a new stream in @r
 * (zero-filled at first; @r->in made when NULL).  NULL when refused;
 * the handshake's status in @ret_status. */
SoupWebsocketConnection *dv_test_rfb_connect(DvTestDaemon *d, const char *path, const char *token,
                                             DvTestRfb *r, guint *ret_status);
/* Waits until @r holds @n bytes (20 s; droverd's log and the end). */
void dv_test_rfb_need(DvTestRfb *r, guint n, const char *what);
/* Takes @n bytes (into @out unless NULL). */
void dv_test_rfb_take(DvTestRfb *r, guint8 *out, guint n, const char *what);
guint32 dv_test_rfb_be32(const guint8 *p);
/* The parser met what is no RFB message: the stream as received goes to
 * a file for a post-mortem, the bytes around the failing offset are
 * shown, and the test ends. */
void dv_test_rfb_desync(DvTestRfb *r, const char *format, ...) G_GNUC_NORETURN G_GNUC_PRINTF(2, 3);
/* RFB 3.8 up to ServerInit: the version banner, security type None,
 * ClientInit shared.  @none_only: the display must say exactly RFB 3.8
 * and offer None only (a remote host's, whose password droverd answered);
 * else any RFB 3.x banner with None among the types.  Returns the
 * framebuffer's size and bytes per pixel (@ret_bpp may be NULL). */
void dv_test_rfb_handshake(SoupWebsocketConnection *ws, DvTestRfb *r, const char *label,
                           gboolean none_only, guint *ret_width, guint *ret_height, guint *ret_bpp);
/* The client lets go of @ws (its handlers on @r first): unref'd when
 * closed, else kept open until the process ends (libsoup 3.2.3, see the
 * .c); then the main context runs for 100 ms. */
void dv_test_rfb_close(SoupWebsocketConnection *ws, DvTestRfb *r);
/* Frees @r's buffers (not @r). */
void dv_test_rfb_clear(DvTestRfb *r);

G_END_DECLS
