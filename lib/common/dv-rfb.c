#define G_LOG_DOMAIN "DvRfb"

#include "dv-rfb.h"
#include "dv-error.h"

#include <string.h>

enum {
    DV_RFB_VERSION,
    DV_RFB_CHOICE,
    DV_RFB_DONE
};

void
dv_rfb_front_init(DvRfbFront *front, GByteArray *to_client)
{
    memset(front, 0, sizeof(*front));
    front->state = DV_RFB_VERSION;
    g_byte_array_append(to_client, (const guint8 *)"RFB 003.008\n", 12);
}

gboolean
dv_rfb_front_done(const DvRfbFront *front)
{
    return front->state == DV_RFB_DONE;
}

gboolean
dv_rfb_front_feed(DvRfbFront *front, const guint8 *data, gsize len, GByteArray *to_client,
                  gsize *ret_used, GError **error)
{
    static const guint8 none_only[2] = { 1, 1 };       /* one type: None */
    static const guint8 ok[4] = { 0, 0, 0, 0 };        /* SecurityResult OK */
    static const guint8 type_none[4] = { 0, 0, 0, 1 }; /* RFB 3.3: the server picks */
    gsize used = 0;

    while (used < len && front->state != DV_RFB_DONE) {
        if (front->state == DV_RFB_VERSION) {
            gsize take = MIN(len - used, sizeof(front->version) - front->have);
            memcpy(front->version + front->have, data + used, take);
            front->have += (guint)take;
            used += take;
            if (front->have < sizeof(front->version))
                break;
            if (memcmp(front->version, "RFB 003.", 8) != 0 || front->version[11] != '\n' ||
                !g_ascii_isdigit(front->version[8]) || !g_ascii_isdigit(front->version[9]) ||
                !g_ascii_isdigit(front->version[10])) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL,
                                   "the VNC client sent no RFB 3.x version");
                return FALSE;
            }
            front->minor = (guint)((front->version[9] - '0') * 10 + (front->version[10] - '0'));
            /* Unknown minors are 3.3 (RFC 6143 §7.1.1); above 8 speak 3.8. */
            if (front->minor >= 8) {
                front->minor = 8;
            } else if (front->minor != 7) {
                front->minor = 3;
                g_byte_array_append(to_client, type_none, sizeof(type_none));
                front->state = DV_RFB_DONE;
                break;
            }
            g_byte_array_append(to_client, none_only, sizeof(none_only));
            front->state = DV_RFB_CHOICE;
        } else {
            guint8 choice = data[used++];
            if (choice != 1) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL,
                                   "the VNC client chose security type %u; droverd offers None "
                                   "(1) only: the console's ticket or token is the authentication",
                                   choice);
                return FALSE;
            }
            /* RFB 3.7 sends no result for None; 3.8 does. */
            if (front->minor == 8)
                g_byte_array_append(to_client, ok, sizeof(ok));
            front->state = DV_RFB_DONE;
        }
    }
    *ret_used = used;
    return TRUE;
}
