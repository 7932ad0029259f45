/* The RFB handshake droverd plays to a remote console's browser
 * (lib/common/dv-rfb.c): security None only, then the client's bytes
 * belong to the display. */
#define G_LOG_DOMAIN "DvTestRfb"

#include "dv-error.h"
#include "dv-rfb.h"

#include <string.h>

static const guint8 server_banner[12] = "RFB 003.008\n";

static void
test_v38(void)
{
    g_autoptr(GByteArray) out = g_byte_array_new();
    g_autoptr(GError) error = NULL;
    static const guint8 client[] = "RFB 003.008\n\001\001"; /* version, None, ClientInit */
    static const guint8 want[] = { 1, 1, 0, 0, 0, 0 };
    DvRfbFront f;
    gsize used = 0;

    dv_rfb_front_init(&f, out);
    g_assert_cmpmem(out->data, out->len, server_banner, 12);
    g_byte_array_set_size(out, 0);
    /* Everything at once: the handshake takes 13 bytes, ClientInit is
     * left for the display. */
    g_assert_true(dv_rfb_front_feed(&f, client, 14, out, &used, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(used, ==, 13);
    g_assert_true(dv_rfb_front_done(&f));
    g_assert_cmpmem(out->data, out->len, want, sizeof(want));
    /* Once done, nothing more is taken. */
    g_byte_array_set_size(out, 0);
    g_assert_true(dv_rfb_front_feed(&f, client, 3, out, &used, &error));
    g_assert_cmpuint(used, ==, 0);
    g_assert_cmpuint(out->len, ==, 0);
}

/* One byte at a time, as a WebSocket may split it. */
static void
test_bytewise(void)
{
    g_autoptr(GByteArray) out = g_byte_array_new();
    static const guint8 client[] = "RFB 003.008\n\001";
    static const guint8 want[] = { 'R', 'F', 'B',  ' ', '0', '0', '3', '.', '0',
                                   '0', '8', '\n', 1,   1,   0,   0,   0,   0 };
    DvRfbFront f;

    dv_rfb_front_init(&f, out);
    for (gsize i = 0; i < 13; i++) {
        gsize used = 0;
        g_assert_false(dv_rfb_front_done(&f));
        g_assert_true(dv_rfb_front_feed(&f, client + i, 1, out, &used, NULL));
        g_assert_cmpuint(used, ==, 1);
    }
    g_assert_true(dv_rfb_front_done(&f));
    g_assert_cmpmem(out->data, out->len, want, sizeof(want));
}

/* Older clients: 3.7 gets no security result for None, 3.3 (and any
 * unknown minor below 7) is told the type. */
static void
test_older(void)
{
    g_autoptr(GByteArray) out = g_byte_array_new();
    static const guint8 want37[] = { 1, 1 };
    static const guint8 want33[] = { 0, 0, 0, 1 };
    DvRfbFront f;
    gsize used = 0;

    dv_rfb_front_init(&f, out);
    g_byte_array_set_size(out, 0);
    g_assert_true(dv_rfb_front_feed(&f, (const guint8 *)"RFB 003.007\n\001", 13, out, &used, NULL));
    g_assert_cmpuint(used, ==, 13);
    g_assert_true(dv_rfb_front_done(&f));
    g_assert_cmpmem(out->data, out->len, want37, sizeof(want37));

    dv_rfb_front_init(&f, out);
    g_byte_array_set_size(out, 0);
    g_assert_true(dv_rfb_front_feed(&f, (const guint8 *)"RFB 003.003\n\001", 13, out, &used, NULL));
    g_assert_cmpuint(used, ==, 12); /* the 13th is ClientInit */
    g_assert_true(dv_rfb_front_done(&f));
    g_assert_cmpmem(out->data, out->len, want33, sizeof(want33));
}

static void
test_refused(void)
{
    g_autoptr(GByteArray) out = g_byte_array_new();
    g_autoptr(GError) error = NULL;
    DvRfbFront f;
    gsize used = 0;

    dv_rfb_front_init(&f, out);
    g_byte_array_set_size(out, 0);
    g_assert_false(dv_rfb_front_feed(&f, (const guint8 *)"GET / HTTP/1", 12, out, &used, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(error->message, "RFB"));
    g_assert_cmpuint(out->len, ==, 0);
    g_clear_error(&error);

    /* VNC authentication asked of droverd: refused, nothing answered. */
    dv_rfb_front_init(&f, out);
    g_assert_true(dv_rfb_front_feed(&f, (const guint8 *)"RFB 003.008\n", 12, out, &used, NULL));
    g_byte_array_set_size(out, 0);
    g_assert_false(dv_rfb_front_feed(&f, (const guint8 *)"\002", 1, out, &used, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(error->message, "security type 2"));
    g_assert_cmpuint(out->len, ==, 0);
    g_assert_false(dv_rfb_front_done(&f));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/drover/common/rfb/v3.8", test_v38);
    g_test_add_func("/drover/common/rfb/bytewise", test_bytewise);
    g_test_add_func("/drover/common/rfb/older", test_older);
    g_test_add_func("/drover/common/rfb/refused", test_refused);
    return g_test_run();
}
