/* The server half of an RFB handshake offering only security type None
 * (RFC 6143 §7.1-7.2), which droverd plays to a console's browser when
 * it has answered a remote display's VNC authentication itself
 * (docs/VIRT.md, "Graphical console").  A byte-fed state machine: no
 * I/O, no threads; one per client connection. */
#pragma once

#include <glib.h>

typedef struct {
    guint state;
    guint8 version[12];
    guint have;
    guint minor; /* 3, 7 or 8: the version the client chose */
} DvRfbFront;

/* Starts @front and appends the server's banner ("RFB 003.008\n") to
 * @to_client. */
void dv_rfb_front_init(DvRfbFront *front, GByteArray *to_client);

/* Feeds @len bytes the client sent.  Appends the server's answers to
 * @to_client and sets *ret_used to the bytes the handshake took; the
 * rest of @data (from ClientInit on) belongs to the display.  FALSE
 * with DV_ERROR_INVALID_ARGUMENT when the client speaks no RFB 3.x or
 * chooses a security type other than None (nothing appended). */
gboolean dv_rfb_front_feed(DvRfbFront *front, const guint8 *data, gsize len, GByteArray *to_client,
                           gsize *ret_used, GError **error);

/* TRUE once the client has chosen None (and been told it passed). */
gboolean dv_rfb_front_done(const DvRfbFront *front);
