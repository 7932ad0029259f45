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

/* A client's whole opening (version, choice, then ClientInit,
 * SetEncodings and a FramebufferUpdateRequest) cut into three chunks at
 * every pair of offsets, as WebSocket messages may carry it: the
 * answers are the same, and what the handshake does not take reaches
 * the display whole and in order. */
static void
test_every_split(void)
{
    static const struct {
        const char *version;
        gsize choice; /* 1: the client sends a security type */
        guint8 answer[6];
        gsize answer_len;
    } cases[] = {
        { "RFB 003.008\n", 1, { 1, 1, 0, 0, 0, 0 }, 6 },
        { "RFB 003.007\n", 1, { 1, 1 }, 2 },
        { "RFB 003.003\n", 0, { 0, 0, 0, 1 }, 4 },
    };
    static const guint8 display[] = { 1, /* ClientInit, shared */
                                      2, 0, 0, 1, 0xff, 0xff, 0xff, 0x21, 3,
                                      0, 0, 0, 0, 0,    0x02, 0xd0, 0x01, 0x90 };

    for (gsize c = 0; c < G_N_ELEMENTS(cases); c++) {
        g_autoptr(GByteArray) client = g_byte_array_new();
        gsize hs;

        g_byte_array_append(client, (const guint8 *)cases[c].version, 12);
        if (cases[c].choice)
            g_byte_array_append(client, (const guint8 *)"\001", 1);
        hs = client->len;
        g_byte_array_append(client, display, sizeof(display));
        for (gsize a = 0; a <= client->len; a++) {
            for (gsize b = a; b <= client->len; b++) {
                g_autoptr(GByteArray) out = g_byte_array_new();
                g_autoptr(GByteArray) passed = g_byte_array_new();
                const gsize cut[4] = { 0, a, b, client->len };
                DvRfbFront f;

                dv_rfb_front_init(&f, out);
                g_byte_array_set_size(out, 0);
                for (gsize k = 0; k < 3; k++) {
                    const guint8 *p = client->data + cut[k];
                    gsize len = cut[k + 1] - cut[k];
                    gsize used = 0;
                    if (!dv_rfb_front_done(&f)) {
                        g_autoptr(GError) error = NULL;
                        g_assert_true(dv_rfb_front_feed(&f, p, len, out, &used, &error));
                        g_assert_no_error(error);
                        g_assert_cmpuint(used, <=, len);
                    }
                    g_byte_array_append(passed, p + used, (guint)(len - used));
                }
                g_assert_true(dv_rfb_front_done(&f));
                g_assert_cmpmem(out->data, out->len, cases[c].answer, cases[c].answer_len);
                g_assert_cmpmem(passed->data, passed->len, client->data + hs, client->len - hs);
            }
        }
    }
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
    g_test_add_func("/drover/common/rfb/every-split", test_every_split);
    g_test_add_func("/drover/common/rfb/older", test_older);
    g_test_add_func("/drover/common/rfb/refused", test_refused);
    return g_test_run();
}
