/* The VNC console of a VM on a remote host (issue 12, item 3): droverd
 * reaches a second libvirtd over qemu+tcp:// (no descriptor passing),
 * sets a one-time password on the display, connects over TCP and
 * answers VNC authentication itself; the browser's side offers security
 * None only.  Run as root under tests/services/with-second-libvirtd with
 * DV_LIBVIRTD2_TCP=127.0.0.2 (meson test does).
 *
 * Also the same VM kind on qemu:///system for the first frame's time
 * through the local (descriptor) path.  The case runs in a child
 * process; the parent removes the domains named dvvncr-<pid>-<hash>-*
 * on both daemons afterwards, pass or fail. */
#define G_LOG_DOMAIN "DvTestApiConsoleRemote"

#include "dv-test-system.h"
#include "dv-test-util.h"

#include <glib/gstdio.h>
#include <string.h>

static DvVirt *the_virt;
static char *daemon_log;

static const char *
env_required(const char *name)
{
    const char *v = g_getenv(name);
    if (v == NULL || v[0] == '\0')
        g_error("%s is not set: run under DV_LIBVIRTD2_TCP=127.0.0.2 "
                "tests/services/with-second-libvirtd (meson test does)",
                name);
    return v;
}

/* --- a noVNC-like client over the WebSocket ------------------------------------ */

typedef struct {
    GByteArray *in;
    gboolean closed;
    GByteArray *all; /* every byte received (NULL: not kept), for rfb_desync() */
    gsize taken;     /* of which the parser consumed this many */
} Rfb;

/* The parser met what is no RFB message: the stream as received goes
 * to a file for a post-mortem (where it parses, where not), and the
 * bytes around the failing offset are shown. */
static void G_GNUC_NORETURN G_GNUC_PRINTF(2, 3) rfb_desync(Rfb *r, const char *format, ...)
{
    g_autofree char *what = NULL;
    g_autofree char *path = NULL;
    g_autoptr(GString) around = g_string_new(NULL);
    va_list ap;

    va_start(ap, format);
    what = g_strdup_vprintf(format, ap);
    va_end(ap);
    if (r->all != NULL) {
        path = g_strdup_printf("%s/dvrfb-%d-%" G_GSIZE_FORMAT ".bin", g_get_tmp_dir(), getpid(),
                               r->taken);
        (void)g_file_set_contents(path, (const char *)r->all->data, r->all->len, NULL);
        for (gsize i = r->taken >= 16 ? r->taken - 16 : 0; i < MIN(r->taken + 16, r->all->len); i++)
            g_string_append_printf(around, i == r->taken ? "[%02x]" : " %02x", r->all->data[i]);
    }
    g_error("%s at stream offset %" G_GSIZE_FORMAT " of %u received (%s; the stream: %s)", what,
            r->taken, r->all != NULL ? r->all->len : 0, around->str,
            path != NULL ? path : "not kept");
}

static void
rfb_message(SoupWebsocketConnection *ws, gint type, GBytes *message, gpointer user_data)
{
    Rfb *r = user_data;
    gsize len;
    const guint8 *p = g_bytes_get_data(message, &len);
    g_byte_array_append(r->in, p, (guint)len);
    if (r->all != NULL)
        g_byte_array_append(r->all, p, (guint)len);
}

static void
rfb_closed(SoupWebsocketConnection *ws, gpointer user_data)
{
    ((Rfb *)user_data)->closed = TRUE;
}

typedef struct {
    gboolean done;
    SoupWebsocketConnection *ws;
    GError *error;
    Rfb *r;
} RfbConnecting;

static void
rfb_connected(GObject *source, GAsyncResult *res, gpointer user_data)
{
    RfbConnecting *c = user_data;
    c->ws = soup_session_websocket_connect_finish(SOUP_SESSION(source), res, &c->error);
    if (c->ws != NULL) {
        g_signal_connect(c->ws, "message", G_CALLBACK(rfb_message), c->r);
        g_signal_connect(c->ws, "closed", G_CALLBACK(rfb_closed), c->r);
    }
    c->done = TRUE;
}

static SoupWebsocketConnection *
rfb_connect(DvTestDaemon *d, const char *path, Rfb *r)
{
    g_autofree char *http = g_strconcat(d->url, path, NULL);
    g_autofree char *url = g_strconcat("ws", http + strlen("http"), NULL);
    g_autoptr(SoupMessage) msg = soup_message_new("GET", url);
    g_autoptr(SoupSession) session = soup_session_new();
    g_autofree char *auth = g_strdup_printf("Bearer %s", d->token);
    char *protocols[] = { "binary", NULL };
    RfbConnecting c = { .r = r };

    /* A new stream: kept whole for rfb_desync(). */
    if (r->all == NULL)
        r->all = g_byte_array_new();
    g_byte_array_set_size(r->all, 0);
    r->taken = 0;

    soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization", auth);
    soup_session_websocket_connect_async(session, msg, NULL, protocols, G_PRIORITY_DEFAULT, NULL,
                                         rfb_connected, &c);
    while (!c.done)
        g_main_context_iteration(NULL, TRUE);
    if (c.ws == NULL)
        g_error("%s: %u (%s)", path, soup_message_get_status(msg), c.error->message);
    g_assert_cmpuint(soup_message_get_status(msg), ==, 101);
    return c.ws;
}

static void
rfb_need(Rfb *r, guint n, const char *what)
{
    gint64 end = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;

    while (r->in->len < n) {
        if (g_get_monotonic_time() > end || r->closed) {
            g_autofree char *log = NULL;
            if (daemon_log != NULL && g_file_get_contents(daemon_log, &log, NULL, NULL))
                g_printerr("--- droverd ---\n%s\n--- end ---\n", log);
            g_error("no %s from the display (%u of %u bytes; closed: %d)", what, r->in->len, n,
                    r->closed);
        }
        g_main_context_iteration(NULL, FALSE);
        g_usleep(200);
    }
}

static void
rfb_take(Rfb *r, guint8 *out, guint n, const char *what)
{
    rfb_need(r, n, what);
    if (out != NULL)
        memcpy(out, r->in->data, n);
    g_byte_array_remove_range(r->in, 0, n);
    r->taken += n;
}

static guint32
be32(const guint8 *p)
{
    return (guint32)p[0] << 24 | (guint32)p[1] << 16 | (guint32)p[2] << 8 | p[3];
}

/* RFB 3.8 to ServerInit.  The display must offer exactly security type
 * None: on a remote host droverd answered the password itself.  Returns
 * the framebuffer's size and bytes per pixel. */
static void
rfb_handshake(SoupWebsocketConnection *ws, Rfb *r, guint *ret_width, guint *ret_height,
              guint *ret_bpp)
{
    guint8 banner[12];
    guint8 types[2];
    guint8 result[4];
    guint8 init[24];
    guint8 shared = 1;
    guint8 none = 1;

    rfb_take(r, banner, 12, "version banner");
    g_assert_cmpmem(banner, 12, "RFB 003.008\n", 12);
    soup_websocket_connection_send_binary(ws, "RFB 003.008\n", 12);
    rfb_take(r, types, 2, "security types");
    g_assert_cmpuint(types[0], ==, 1); /* one type... */
    g_assert_cmpuint(types[1], ==, 1); /* ...None: no password reaches the browser */
    soup_websocket_connection_send_binary(ws, &none, 1);
    rfb_take(r, result, 4, "security result");
    g_assert_cmpmem(result, 4, "\0\0\0\0", 4);
    soup_websocket_connection_send_binary(ws, &shared, 1);
    rfb_take(r, init, 24, "ServerInit");
    *ret_width = (guint)init[0] << 8 | init[1];
    *ret_height = (guint)init[2] << 8 | init[3];
    *ret_bpp = init[4] / 8;
    g_assert_cmpuint(*ret_bpp, >=, 1);
    g_assert_cmpuint(be32(init + 20), <, 4096);
    rfb_take(r, NULL, be32(init + 20), "desktop name");
}

/* Asks for Raw pixels, DesktopSize (-223: the guest switches video
 * modes as it boots; noVNC asks for it too) and QEMU's LED state
 * (-261). */
static void
rfb_set_encodings(SoupWebsocketConnection *ws)
{
    static const guint8 msg[] = { 2,    0,    0,    3,    0,    0,    0,    0,
                                  0xff, 0xff, 0xff, 0x21, 0xff, 0xff, 0xfe, 0xfb };
    soup_websocket_connection_send_binary(ws, msg, sizeof(msg));
}

static void
rfb_request(SoupWebsocketConnection *ws, gboolean incremental, guint width, guint height)
{
    guint8 msg[10] = { 3,
                       incremental ? 1 : 0,
                       0,
                       0,
                       0,
                       0,
                       (guint8)(width >> 8),
                       (guint8)width,
                       (guint8)(height >> 8),
                       (guint8)height };
    soup_websocket_connection_send_binary(ws, msg, sizeof(msg));
}

/* Reads one FramebufferUpdate: the pixels of its Raw rectangles fed to
 * @sum (may be NULL), the LED state into *ret_leds when it holds one
 * (else left), a new size into *ret_resized, the pixel bytes' count
 * returned.  Other server messages (Bell, ServerCutText) are skipped. */
static gsize
rfb_read_update(Rfb *r, guint bpp, GChecksum *sum, int *ret_leds, gboolean *ret_varied,
                guint *ret_resized)
{
    guint8 head[4];
    gsize pixels = 0;

    for (;;) {
        rfb_take(r, head, 1, "a server message");
        if (head[0] == 0)
            break;
        if (head[0] == 2) /* Bell */
            continue;
        if (head[0] == 3) { /* ServerCutText */
            guint8 cut[7];
            rfb_take(r, cut, 7, "cut text");
            rfb_take(r, NULL, be32(cut + 3), "cut text");
            continue;
        }
        rfb_desync(r, "unexpected server message type %u", head[0]);
    }
    rfb_take(r, head + 1, 3, "FramebufferUpdate");
    for (guint i = 0, n = (guint)head[2] << 8 | head[3]; i < n; i++) {
        guint8 rect[12];
        gint32 enc;
        guint w;
        guint h;
        rfb_take(r, rect, 12, "a rectangle");
        w = (guint)rect[4] << 8 | rect[5];
        h = (guint)rect[6] << 8 | rect[7];
        enc = (gint32)be32(rect + 8);
        if (enc == 0) {
            gsize len = (gsize)w * h * bpp;
            rfb_need(r, (guint)len, "Raw pixels");
            if (sum != NULL)
                g_checksum_update(sum, r->in->data, (gssize)len);
            for (gsize k = bpp; ret_varied != NULL && k < len; k++)
                if (r->in->data[k] != r->in->data[k % bpp])
                    *ret_varied = TRUE;
            g_byte_array_remove_range(r->in, 0, (guint)len);
            r->taken += len;
            pixels += len;
        } else if (enc == -223) {
            if (ret_resized != NULL) {
                ret_resized[0] = w;
                ret_resized[1] = h;
            }
        } else if (enc == -261) {
            guint8 led;
            rfb_take(r, &led, 1, "LED state");
            if (ret_leds != NULL)
                *ret_leds = led;
        } else {
            rfb_desync(r,
                       "unexpected encoding %d in a rectangle at %ux%u+%u+%u (Raw, DesktopSize and "
                       "LED state were asked for)",
                       enc, w, h, (guint)rect[0] << 8 | rect[1], (guint)rect[2] << 8 | rect[3]);
        }
    }
    return pixels;
}

static void rfb_request(SoupWebsocketConnection *ws, gboolean incremental, guint width,
                        guint height);

/* Reads updates until a whole frame's pixels came (an update may hold
 * the LED state only, or part of the screen).  A new size starts over
 * with a request for the whole new screen, as noVNC does. */
static void
rfb_read_frame(SoupWebsocketConnection *ws, Rfb *r, guint *width, guint *height, guint bpp,
               GChecksum *sum, int *ret_leds, gboolean *ret_varied)
{
    gsize got = 0;

    while (got < (gsize)*width * *height * bpp) {
        guint size[2] = { 0, 0 };
        got += rfb_read_update(r, bpp, sum, ret_leds, ret_varied, size);
        if (size[0] > 0) {
            g_printerr("# the display is now %ux%u\n", size[0], size[1]);
            *width = size[0];
            *height = size[1];
            got = 0;
            if (sum != NULL)
                g_checksum_reset(sum);
            rfb_request(ws, FALSE, *width, *height);
        }
    }
    g_assert_cmpuint(got, ==, (gsize)*width * *height * bpp);
}

/* Connects, handshakes and reads the first whole frame; returns the time
 * from the WebSocket's request to the frame's last byte (µs) and the
 * frame's SHA-256 in *ret_sum. */
static gint64
first_frame(DvTestDaemon *d, const char *vm, SoupWebsocketConnection **ret_ws, Rfb *r,
            guint *ret_width, guint *ret_height, guint *ret_bpp, char **ret_sum)
{
    g_autofree char *path = g_strdup_printf("/api/v1/vms/%s/console?type=vnc", vm);
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    gint64 t0 = g_get_monotonic_time();
    gboolean varied = FALSE;
    gint64 us;

    *ret_ws = rfb_connect(d, path, r);
    rfb_handshake(*ret_ws, r, ret_width, ret_height, ret_bpp);
    rfb_set_encodings(*ret_ws);
    rfb_request(*ret_ws, FALSE, *ret_width, *ret_height);
    rfb_read_frame(*ret_ws, r, ret_width, ret_height, *ret_bpp, sum, NULL, &varied);
    us = g_get_monotonic_time() - t0;
    g_assert_true(varied); /* something is drawn: not one colour */
    *ret_sum = g_strdup(g_checksum_get_string(sum));
    return us;
}

/* libsoup 3.2.3's client WebSocket has no safe way to leave while open
 * (test-api-console-system.c, rfb_close): kept until the process ends. */
static GPtrArray *rfb_kept;

static void
rfb_keep(SoupWebsocketConnection *ws, Rfb *r)
{
    g_signal_handlers_disconnect_by_data(ws, r);
    if (rfb_kept == NULL)
        rfb_kept = g_ptr_array_new();
    g_ptr_array_add(rfb_kept, ws);
}

/* --- the second daemon --------------------------------------------------------- */

static char *
virsh2(const char *uri, const char *const *args, gboolean must)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autoptr(GError) error = NULL;
    int status = 0;

    g_ptr_array_add(argv, (gpointer) "virsh");
    g_ptr_array_add(argv, (gpointer) "-q");
    g_ptr_array_add(argv, (gpointer) "-c");
    g_ptr_array_add(argv, (gpointer)uri);
    for (guint i = 0; args[i] != NULL; i++)
        g_ptr_array_add(argv, (gpointer)args[i]);
    g_ptr_array_add(argv, NULL);
    g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                               &out, &err, &status, &error));
    if (must && !g_spawn_check_wait_status(status, NULL))
        g_error("virsh %s: %s", args[0], err);
    return g_steal_pointer(&out);
}

/* The tiny guest with a VNC display listening on every address of the
 * second daemon's host, locked like Drover's (expired password). */
static void
define_tiny(const char *uri, const char *name, const char *dir)
{
    g_autofree char *kernel = dv_test_tiny_guest_copy(DV_TINY_GUEST_CACHE_DIR, dir, "vmlinuz");
    g_autofree char *initrd = dv_test_tiny_guest_copy(DV_TINY_GUEST_CACHE_DIR, dir, "initrd.img");
    g_autofree char *xml = g_markup_printf_escaped(
        "<domain type='qemu'><name>%s</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s</kernel>"
        "<initrd>%s</initrd><cmdline>console=tty0 console=ttyS0 drover.echo</cmdline></os>"
        "<features><acpi/></features><on_poweroff>destroy</on_poweroff>"
        "<devices><serial type='pty'><target port='0'/></serial>"
        "<graphics type='vnc' autoport='yes' passwd='locked00' "
        "passwdValidTo='1970-01-01T00:00:01'><listen type='address' address='0.0.0.0'/>"
        "</graphics><video><model type='vga'/></video></devices></domain>",
        name, kernel, initrd);
    g_autofree char *file = g_strdup_printf("%s/%s.xml", dir, name);
    const char *const def[] = { "define", file, NULL };
    const char *const start[] = { "start", name, NULL };

    g_assert_true(g_file_set_contents(file, xml, -1, NULL));
    g_free(virsh2(uri, def, TRUE));
    g_free(virsh2(uri, start, TRUE));
}

static void
wait_running(DvTestDaemon *d, const char *vm)
{
    g_autofree char *path = g_strdup_printf("/api/v1/vms/%s", vm);
    gint64 end = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;

    for (;;) {
        guint status = 0;
        g_autoptr(JsonNode) r = dv_test_request_as(d, d->token, "GET", path, NULL, &status);
        if (status == 200 && g_strcmp0(json_object_get_string_member_with_default(
                                           json_node_get_object(r), "state", ""),
                                       "running") == 0)
            return;
        if (g_get_monotonic_time() > end)
            g_error("VM %s is not running in droverd after 20 s (%u)", vm, status);
        g_usleep(100 * 1000);
    }
}

static JsonNode *
console_refused(DvTestDaemon *d, const char *vm, guint *ret_status)
{
    g_autofree char *url = g_strdup_printf("%s/api/v1/vms/%s/console?type=vnc", d->url, vm);
    g_autoptr(SoupMessage) msg = soup_message_new("GET", url);
    g_autoptr(SoupSession) session = soup_session_new();
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) body = NULL;
    g_autoptr(JsonParser) p = json_parser_new();
    g_autofree char *auth = g_strdup_printf("Bearer %s", d->token);

    soup_websocket_client_prepare_handshake(msg, NULL, NULL, NULL);
    soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization", auth);
    body = soup_session_send_and_read(session, msg, NULL, &error);
    g_assert_no_error(error);
    *ret_status = soup_message_get_status(msg);
    g_assert_true(json_parser_load_from_data(p, g_bytes_get_data(body, NULL),
                                             (gssize)g_bytes_get_size(body), NULL));
    return json_node_ref(json_parser_get_root(p));
}

static const char *
error_message(JsonNode *r)
{
    return json_object_get_string_member(
        json_object_get_object_member(json_node_get_object(r), "error"), "message");
}

/* Every one-time password the second daemon's QEMUs were given, from its
 * monitor log (virt-admin turned it on for this test). */
static GPtrArray *
passwords_set(const char *log)
{
    g_autofree char *text = NULL;
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    const char *p;

    if (!g_file_get_contents(log, &text, NULL, NULL))
        return out;
    for (p = strstr(text, "\"set_password\""); p != NULL; p = strstr(p + 1, "\"set_password\"")) {
        const char *pw = strstr(p, "\"password\":\"");
        const char *end;
        if (pw == NULL)
            break;
        pw += strlen("\"password\":\"");
        end = strchr(pw, '"');
        if (end != NULL && end - pw == 8)
            g_ptr_array_add(out, g_strndup(pw, (gsize)(end - pw)));
    }
    return out;
}

static void
test_remote(void)
{
    g_autofree char *prefix = dv_test_system_prefix_new("dvvncr", getppid());
    g_autofree char *dir = dv_test_system_dir_new(prefix);
    g_autofree char *state = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), prefix);
    g_autofree char *state2 = g_strdup_printf("%s/%sstate2", g_get_tmp_dir(), prefix);
    g_autofree char *monitor_log = g_strdup_printf("%s/%smonitor.log", g_get_tmp_dir(), prefix);
    const char *tcp_uri = env_required("DV_TEST_LIBVIRTD2_TCP_URI");
    const char *unix_uri = env_required("DV_TEST_LIBVIRTD2_URI");
    g_autofree char *local_vm = g_strdup_printf("%slocal", prefix);
    g_autofree char *far_vm = g_strdup_printf("%sfar", prefix);
    g_autofree char *flat_vm = g_strdup_printf("%sflat", prefix);
    g_autofree char *tiny_vm = g_strdup_printf("%stiny", prefix);
    g_autofree char *body = NULL;
    g_autofree char *sum = NULL;
    g_autofree char *sum2 = NULL;
    g_autofree char *admin_uri = NULL;
    g_autoptr(DvTestDaemon) d = NULL;
    g_autoptr(GString) responses = g_string_new(NULL);
    SoupWebsocketConnection *ws;
    Rfb r = { g_byte_array_new(), FALSE, NULL, 0 };
    guint width;
    guint height;
    guint bpp;
    gint64 local_us;
    gint64 remote_us;
    gint64 tiny_us;

    g_assert_cmpint(g_mkdir(state, 0700), ==, 0);
    d = dv_test_daemon_start(state, NULL);
    daemon_log = g_build_filename(state, "droverd.err", NULL);

    /* The second daemon's QEMU monitor traffic, to learn the passwords
     * droverd set (and then look for them where they must not be). */
    {
        const char *sock = strstr(unix_uri, "socket=");
        g_autofree char *sdir = g_path_get_dirname(sock + strlen("socket="));
        g_autofree char *outputs = g_strdup_printf("1:file:%s", monitor_log);
        const char *argv[] = {
            "virt-admin", "-c", NULL, "daemon-log-filters", "1:qemu.qemu_monitor 4:*", NULL
        };
        const char *argv2[] = { "virt-admin", "-c", NULL, "daemon-log-outputs", outputs, NULL };
        int status = 0;
        admin_uri = g_strdup_printf("libvirtd:///system?socket=%s/libvirt-admin-sock", sdir);
        argv[2] = admin_uri;
        argv2[2] = admin_uri;
        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                                   NULL, &status, NULL));
        g_assert_true(g_spawn_check_wait_status(status, NULL));
        g_assert_true(g_spawn_sync(NULL, (char **)argv2, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                                   NULL, NULL, &status, NULL));
        g_assert_true(g_spawn_check_wait_status(status, NULL));
    }

    body = g_strdup_printf("{\"name\":\"%slocal\",\"uri\":\"%s\"}", prefix, DV_TEST_SYSTEM_URI);
    dv_test_run_job_ok(d, "POST", "/api/v1/hosts", body);
    g_free(body);
    body = g_strdup_printf("{\"name\":\"%sremote\",\"uri\":\"%s\"}", prefix, tcp_uri);
    dv_test_run_job_ok(d, "POST", "/api/v1/hosts", body);
    g_free(body);

    /* SeaBIOS with no disk on each host (Drover's display: 127.0.0.1,
     * locked), and one with no display on the remote host. */
    body = g_strdup_printf("{\"name\":\"%s\",\"host\":\"%slocal\",\"memory_mib\":64,"
                           "\"start\":true}",
                           local_vm, prefix);
    dv_test_run_job_ok(d, "POST", "/api/v1/vms", body);
    g_free(body);
    body = g_strdup_printf("{\"name\":\"%s\",\"host\":\"%sremote\",\"memory_mib\":64,"
                           "\"start\":true}",
                           far_vm, prefix);
    dv_test_run_job_ok(d, "POST", "/api/v1/vms", body);
    g_free(body);
    body = g_strdup_printf("{\"name\":\"%s\",\"host\":\"%sremote\",\"memory_mib\":64,"
                           "\"graphics\":\"none\",\"start\":true}",
                           flat_vm, prefix);
    dv_test_run_job_ok(d, "POST", "/api/v1/vms", body);
    /* The tiny guest, defined on the second daemon behind Drover's back,
     * its display on 0.0.0.0: droverd connects to the URI's host. */
    define_tiny(unix_uri, tiny_vm, dir);
    wait_running(d, tiny_vm);

    /* Drover's display on a remote host names no address (the host's
     * qemu.conf vnc_listen: 127.0.0.1 by default, so droverd on this
     * machine connects there; docs/VIRT.md). */
    {
        const char *const inactive[] = { "dumpxml", "--inactive", far_vm, NULL };
        const char *const live[] = { "dumpxml", far_vm, NULL };
        g_autofree char *ixml = virsh2(unix_uri, inactive, TRUE);
        g_autofree char *lxml = virsh2(unix_uri, live, TRUE);
        g_assert_nonnull(strstr(ixml, "<graphics type='vnc'"));
        g_assert_nonnull(strstr(ixml, "<listen type='address'/>")); /* no address */
        g_assert_nonnull(strstr(ixml, "passwdValidTo='1970-01-01T00:00:01'"));
        g_assert_nonnull(strstr(lxml, "address='127.0.0.1'"));
    }

    /* First frames, local (descriptor) then remote (TCP, password). */
    local_us = first_frame(d, local_vm, &ws, &r, &width, &height, &bpp, &sum);
    rfb_keep(ws, &r);
    g_byte_array_set_size(r.in, 0);
    g_clear_pointer(&sum, g_free);
    remote_us = first_frame(d, far_vm, &ws, &r, &width, &height, &bpp, &sum);
    g_printerr("# first frame: local %.1f ms, remote %.1f ms (%ux%u, %u bytes per pixel)\n",
               local_us / 1000.0, remote_us / 1000.0, width, height, bpp);
    g_assert_cmpint(remote_us, <, 5 * G_USEC_PER_SEC);
    rfb_keep(ws, &r);
    r.in = g_byte_array_new();

    /* The tiny guest: the screen changes as it boots, and Caps Lock typed
     * through droverd reaches the guest's keyboard driver, which lights
     * the LED (QEMU reports it with the LED state pseudo-encoding). */
    {
        gint64 t0 = g_get_monotonic_time();
        int leds = -1;
        gboolean changed = FALSE;
        static const guint8 caps_down[8] = { 4, 1, 0, 0, 0, 0, 0xff, 0xe5 };
        static const guint8 caps_up[8] = { 4, 0, 0, 0, 0, 0, 0xff, 0xe5 };

        tiny_us = first_frame(d, tiny_vm, &ws, &r, &width, &height, &bpp, &sum);
        g_printerr("# tiny guest (display on 0.0.0.0): first frame %.1f ms (%ux%u)\n",
                   tiny_us / 1000.0, width, height);
        /* Until the guest's console shows its echo prompt (and so its
         * keyboard driver runs), the frame changes. */
        while (!changed && g_get_monotonic_time() - t0 < 60 * G_USEC_PER_SEC) {
            g_autoptr(GChecksum) s = g_checksum_new(G_CHECKSUM_SHA256);
            rfb_request(ws, FALSE, width, height);
            rfb_read_frame(ws, &r, &width, &height, bpp, s, &leds, NULL);
            changed = g_strcmp0(g_checksum_get_string(s), sum) != 0;
            if (!changed)
                g_usleep(200 * 1000);
        }
        g_assert_true(changed);
        g_printerr("# tiny guest: the frame changed after %.1f s\n",
                   (g_get_monotonic_time() - t0) / 1e6);
        t0 = g_get_monotonic_time();
        while (!(leds >= 0 && (leds & 4)) && g_get_monotonic_time() - t0 < 60 * G_USEC_PER_SEC) {
            gint64 wait = g_get_monotonic_time() + G_USEC_PER_SEC;
            /* No update is asked for here: what comes is QEMU's LED
             * message, sent when the guest sets its keyboard's LEDs. */
            soup_websocket_connection_send_binary(ws, caps_down, sizeof(caps_down));
            soup_websocket_connection_send_binary(ws, caps_up, sizeof(caps_up));
            while (r.in->len == 0 && g_get_monotonic_time() < wait)
                g_main_context_iteration(NULL, FALSE);
            if (r.in->len > 0)
                rfb_read_update(&r, bpp, NULL, &leds, NULL, NULL);
        }
        g_printerr("# tiny guest: LED state %d after %.1f s of Caps Lock\n", leds,
                   (g_get_monotonic_time() - t0) / 1e6);
        g_assert_cmpint(leds, >=, 0);
        g_assert_true(leds & 4); /* Caps Lock on: the key reached the guest */
        rfb_keep(ws, &r);
        r.in = g_byte_array_new();
    }

    /* No display: 422 naming type. */
    {
        guint status = 0;
        g_autoptr(JsonNode) e = console_refused(d, flat_vm, &status);
        dv_test_assert_error(e, status, 422, "not-supported", "type");
        g_assert_nonnull(strstr(error_message(e), "no graphical display"));
        g_string_append(responses, error_message(e));
    }

    /* The passwords droverd set are nowhere but on the display: not in
     * droverd's log, not in the answers about the VMs. */
    {
        g_autoptr(GPtrArray) pws = passwords_set(monitor_log);
        g_autofree char *log = NULL;
        const char *vms[] = { far_vm, tiny_vm, NULL };
        for (guint i = 0; vms[i] != NULL; i++) {
            g_autofree char *path = g_strdup_printf("/api/v1/vms/%s", vms[i]);
            guint status = 0;
            g_autoptr(JsonNode) v = dv_test_request_as(d, d->token, "GET", path, NULL, &status);
            g_autofree char *text = json_to_string(v, FALSE);
            g_string_append(responses, text);
        }
        g_assert_true(g_file_get_contents(daemon_log, &log, NULL, NULL));
        /* Two consoles: each a one-time password and the re-lock. */
        g_printerr("# %u display passwords set on the second daemon\n", pws->len);
        g_assert_cmpuint(pws->len, >=, 4);
        for (guint i = 0; i < pws->len; i++) {
            g_assert_null(strstr(log, g_ptr_array_index(pws, i)));
            g_assert_null(strstr(responses->str, g_ptr_array_index(pws, i)));
        }
        g_assert_null(strstr(log, "passwd"));
    }

    /* An expired password: a droverd whose one-time password ends before
     * it connects gets the display's refusal, named. */
    {
        g_autoptr(DvTestDaemon) d2 = NULL;
        g_autoptr(JsonNode) e = NULL;
        guint status = 0;
        gint64 t0;

        g_assert_cmpint(g_mkdir(state2, 0700), ==, 0);
        g_setenv("DV_DEBUG_CONSOLE_PASSWORD_SECONDS", "0", TRUE);
        d2 = dv_test_daemon_start(state2, NULL);
        g_unsetenv("DV_DEBUG_CONSOLE_PASSWORD_SECONDS");
        body = g_strdup_printf("{\"name\":\"%sremote\",\"uri\":\"%s\"}", prefix, tcp_uri);
        dv_test_run_job_ok(d2, "POST", "/api/v1/hosts", body);
        wait_running(d2, far_vm);
        t0 = g_get_monotonic_time();
        e = console_refused(d2, far_vm, &status);
        g_printerr("# expired password: %u %s\n", status, error_message(e));
        dv_test_assert_error(e, status, 502, "host-failed", NULL);
        g_assert_nonnull(strstr(error_message(e), "one-time password"));
        g_assert_cmpint(g_get_monotonic_time() - t0, <, 5 * G_USEC_PER_SEC);
        /* The display still works for the first droverd afterwards. */
        g_clear_pointer(&sum2, g_free);
        (void)first_frame(d, far_vm, &ws, &r, &width, &height, &bpp, &sum2);
        rfb_keep(ws, &r);
    }
    /* Back to what the daemon logged before. */
    {
        const char *argv[] = { "virt-admin",
                               "-c",
                               admin_uri,
                               "daemon-log-outputs",
                               "3:file:/var/log/libvirt/libvirtd.log",
                               NULL };
        (void)g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                           NULL, NULL);
        (void)g_unlink(monitor_log);
    }
    g_clear_pointer(&r.all, g_byte_array_unref);
}

static void
run_isolated(void)
{
    g_autofree char *prefix = NULL;
    g_autofree char *dir = NULL;

    if (g_test_subprocess()) {
        test_remote();
        return;
    }
    if (!dv_test_system_check_daemon(the_virt))
        return;
    dv_test_tiny_guest_build(DV_BUILD_TINY_GUEST, dv_test_tiny_guest_dir(DV_TINY_GUEST_CACHE_DIR),
                             NULL);
    prefix = dv_test_system_prefix_new("dvvncr", getpid());
    dir = dv_test_system_dir_new(prefix);
    dv_test_system_cleanup_uri(the_virt, env_required("DV_TEST_LIBVIRTD2_URI"), prefix, NULL);
    dv_test_system_run_isolated(the_virt, prefix, 300);
    dv_test_system_cleanup_uri(the_virt, env_required("DV_TEST_LIBVIRTD2_URI"), prefix, NULL);
    /* The second droverd's state and the monitor log (the first
     * droverd's state goes with run_isolated). */
    {
        g_autofree char *state2 = g_strdup_printf("%s/%sstate2", g_get_tmp_dir(), prefix);
        g_autofree char *mlog = g_strdup_printf("%s/%smonitor.log", g_get_tmp_dir(), prefix);
        dv_test_system_remove_tree(state2);
        (void)g_unlink(mlog);
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    the_virt = dv_virt_new();
    g_test_add_func("/drover/api/console-remote-system/vnc", run_isolated);
    return g_test_run();
}
