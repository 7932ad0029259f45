#define G_LOG_DOMAIN "DvVirtRfb"

/* The client half of an RFB handshake with VNC authentication (security
 * type 2), which droverd speaks to a remote host's display
 * (docs/VIRT.md, "Graphical console"; RFC 6143 §7.1-7.2).
 *
 * VNC authentication: the server sends 16 random bytes, the client
 * returns them DES-encrypted (ECB, two blocks) with the password as the
 * key: its first 8 bytes, zero-padded, each byte's bits reversed (the
 * historical VNC quirk, RFC 6143 errata).  DES is nettle's. */

#include "dv-virt-private.h"
#include "dv-validate.h"

#include <nettle/des.h>
#include <sodium.h>
#include <string.h>

void
dv_virt_rfb_des_key(const char *password, guint8 ret_key[8])
{
    gsize len = strlen(password);

    for (gsize i = 0; i < 8; i++) {
        guint8 c = i < len ? (guint8)password[i] : 0;
        guint8 r = 0;
        for (guint b = 0; b < 8; b++)
            if (c & (1u << b))
                r |= (guint8)(0x80u >> b);
        ret_key[i] = r;
    }
}

gboolean
dv_virt_rfb_des_response(const char *password, const guint8 challenge[16], guint8 ret_response[16])
{
    struct des_ctx ctx;
    guint8 key[8];
    gboolean strong;

    dv_virt_rfb_des_key(password, key);
    /* nettle sets the key either way and says whether it is one of DES's
     * weak keys, which the caller's password generator avoids. */
    strong = des_set_key(&ctx, key) == 1;
    des_encrypt(&ctx, 16, ret_response, challenge);
    sodium_memzero(key, sizeof(key));
    sodium_memzero(&ctx, sizeof(ctx));
    return strong;
}

/* --- blocking I/O with the socket's timeout ------------------------------------ */

static gboolean
dv_rfb_read(GSocket *sock, guint8 *buf, gsize n, const char *what, GError **error)
{
    gsize got = 0;

    while (got < n) {
        g_autoptr(GError) local = NULL;
        gssize r = g_socket_receive(sock, (char *)buf + got, n - got, NULL, &local);
        if (r <= 0) {
            gboolean timeout =
                local != NULL && g_error_matches(local, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
            g_set_error(error, DV_ERROR, timeout ? DV_ERROR_TIMEOUT : DV_ERROR_HOST_FAILED,
                        "the display %s before its %s (RFB handshake)",
                        timeout ? "did not answer in time" : "closed the connection", what);
            return FALSE;
        }
        got += (gsize)r;
    }
    return TRUE;
}

static gboolean
dv_rfb_write(GSocket *sock, const guint8 *buf, gsize n, GError **error)
{
    gsize put = 0;

    while (put < n) {
        g_autoptr(GError) local = NULL;
        gssize r = g_socket_send(sock, (const char *)buf + put, n - put, NULL, &local);
        if (r <= 0) {
            g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED,
                        "cannot write to the display (RFB handshake): %s",
                        local != NULL ? local->message : "short write");
            return FALSE;
        }
        put += (gsize)r;
    }
    return TRUE;
}

/* RFB 3.8's failure reason: a length and that many bytes (at most 200
 * shown). */
static char *
dv_rfb_read_reason(GSocket *sock)
{
    guint8 len_be[4];
    guint32 len;
    g_autofree char *text = NULL;

    if (!dv_rfb_read(sock, len_be, 4, "reason", NULL))
        return g_strdup("no reason given");
    len = (guint32)len_be[0] << 24 | (guint32)len_be[1] << 16 | (guint32)len_be[2] << 8 | len_be[3];
    len = MIN(len, 200);
    text = g_malloc0(len + 1);
    if (!dv_rfb_read(sock, (guint8 *)text, len, "reason", NULL))
        return g_strdup("no reason given");
    return dv_text_excerpt(text, 200);
}

gboolean
dv_virt_rfb_client_auth(GSocket *sock, const char *password, GError **error)
{
    static const guint8 version[12] = {
        'R', 'F', 'B', ' ', '0', '0', '3', '.', '0', '0', '8', '\n'
    };
    guint8 banner[12];
    guint8 n_types;
    guint8 types[255];
    guint8 vnc_auth = 2;
    guint8 challenge[16];
    guint8 response[16];
    guint8 result[4];

    if (!dv_rfb_read(sock, banner, sizeof(banner), "version banner", error))
        return FALSE;
    if (memcmp(banner, "RFB 003.", 8) != 0 || memcmp(banner + 8, "008\n", 4) < 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED,
                    "the display does not speak RFB 3.8 (its banner is not \"RFB 003.008\")");
        return FALSE;
    }
    if (!dv_rfb_write(sock, version, sizeof(version), error) ||
        !dv_rfb_read(sock, &n_types, 1, "security types", error))
        return FALSE;
    if (n_types == 0) {
        g_autofree char *why = dv_rfb_read_reason(sock);
        g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED, "the display refused the connection: %s",
                    why);
        return FALSE;
    }
    if (!dv_rfb_read(sock, types, n_types, "security types", error))
        return FALSE;
    if (memchr(types, 2, n_types) == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED,
                    "the display does not offer VNC authentication (security type 2); Drover "
                    "defines displays with a password");
        return FALSE;
    }
    if (!dv_rfb_write(sock, &vnc_auth, 1, error) ||
        !dv_rfb_read(sock, challenge, sizeof(challenge), "challenge", error))
        return FALSE;
    (void)dv_virt_rfb_des_response(password, challenge, response); /* weak keys: the caller's */
    if (!dv_rfb_write(sock, response, sizeof(response), error) ||
        !dv_rfb_read(sock, result, sizeof(result), "security result", error))
        return FALSE;
    if (memcmp(result, "\0\0\0\0", 4) != 0) {
        g_autofree char *why = dv_rfb_read_reason(sock);
        g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED,
                    "the display refused droverd's one-time password (%s): the password expired "
                    "before droverd connected (is the host's clock ahead of droverd's?) or "
                    "another client changed it",
                    why);
        return FALSE;
    }
    return TRUE;
}
