#define G_LOG_DOMAIN "DvVirtGraphics"

/* A running domain's graphical display handed to droverd as a file
 * descriptor (docs/VIRT.md, "Graphical console").
 *
 * virDomainOpenGraphicsFD() asks QEMU for a new client socket of the
 * display and passes droverd its end.  With
 * VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH QEMU offers that one client the
 * security type None: droverd's caller has been authorized (ticket or
 * token, vm.console), and the display's TCP listener keeps its own
 * password, which Drover defines as already expired (dv-virt-xml.c), so
 * nobody can log in there.  The descriptor works only where libvirtd
 * runs on this machine's kernel: over a remote transport libvirt cannot
 * pass descriptors (qemu+ssh:// and qemu+tls:// refuse), which is
 * reported as DV_ERROR_NOT_SUPPORTED. */

#include "dv-virt-private.h"
#include "dv-validate.h"

#include <sodium.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

char *
dv_virt_graphics_password_new(void)
{
    static const char alphabet[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    guint8 raw[8];
    char *out = g_malloc(sizeof(raw) + 1);

    /* getrandom() of 8 bytes does not fail short once the pool is ready. */
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        for (gsize i = 0; i < sizeof(raw); i++)
            raw[i] = (guint8)g_random_int();
    for (gsize i = 0; i < sizeof(raw); i++)
        out[i] = alphabet[raw[i] % (sizeof(alphabet) - 1)];
    out[sizeof(raw)] = '\0';
    return out;
}

/* The first <graphics> of @dom's live XML (in *ret_doc, which owns it),
 * or NULL with no error when it has none. */
static xmlNode *
dv_virt_domain_graphics_node(DvVirtOp *op, virDomainPtr dom, xmlDoc **ret_doc, GError **error)
{
    g_autoptr(xmlDoc) doc = NULL;
    xmlNode *devices;
    const char *name = virDomainGetName(dom);
    char *xml = virDomainGetXMLDesc(dom, 0);

    if (xml == NULL)
        return dv_virt_op_fail_null(op, error, "cannot read domain %s", name);
    doc = dv_virt_xml_parse(xml, error);
    free(xml);
    if (doc == NULL)
        return NULL;
    devices = dv_virt_xml_child(xmlDocGetRootElement(doc), "devices");
    for (xmlNode *d = devices != NULL ? devices->children : NULL; d != NULL; d = d->next)
        if (d->type == XML_ELEMENT_NODE && strcmp((const char *)d->name, "graphics") == 0) {
            *ret_doc = g_steal_pointer(&doc);
            return d;
        }
    return NULL;
}

static gboolean
dv_virt_is_loopback_name(const char *host)
{
    g_autoptr(GInetAddress) a = g_inet_address_new_from_string(host);

    if (a != NULL)
        return g_inet_address_get_is_loopback(a);
    return g_ascii_strcasecmp(host, "localhost") == 0;
}

char *
dv_virt_graphics_connect_address(const char *listen, const char *uri_host, GError **error)
{
    g_autoptr(GInetAddress) addr = NULL;

    g_return_val_if_fail(uri_host != NULL, NULL);
    /* No address in the live XML: QEMU listens on qemu.conf's vnc_listen,
     * whose default is 127.0.0.1. */
    if (listen == NULL || listen[0] == '\0')
        listen = "127.0.0.1";
    addr = g_inet_address_new_from_string(listen);
    if (addr == NULL) {
        g_autofree char *safe = dv_text_excerpt(listen, 64);
        dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "type",
                           "type: the display listens on %s, not an IP address droverd can "
                           "connect to",
                           safe);
        return NULL;
    }
    if (g_inet_address_get_is_any(addr))
        return g_strdup(uri_host);
    if (g_inet_address_get_is_loopback(addr)) {
        /* The host's loopback is ours only when the host is this machine. */
        if (dv_virt_is_loopback_name(uri_host))
            return g_strdup(listen);
        dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "type",
                           "type: the display listens on the host's loopback (%s) only, which "
                           "droverd on another machine cannot reach; set vnc_listen in the "
                           "host's qemu.conf to an address droverd reaches (docs/VIRT.md)",
                           listen);
        return NULL;
    }
    return g_strdup(listen);
}

/* Sets the live display's password to @password until @valid_to
 * (UTC, "YYYY-MM-DDTHH:MM:SS").  The copy of the element and the
 * serialized XML are wiped. */
static gboolean
dv_virt_graphics_set_password(DvVirtOp *op, virDomainPtr dom, xmlNode *graphics,
                              const char *password, const char *valid_to, GError **error)
{
    xmlNode *copy = xmlCopyNode(graphics, 1);
    xmlBuffer *buf = xmlBufferCreate();
    xmlAttr *attr;
    int rc;

    xmlSetProp(copy, BAD_CAST "passwd", BAD_CAST password);
    xmlSetProp(copy, BAD_CAST "passwdValidTo", BAD_CAST valid_to);
    xmlNodeDump(buf, graphics->doc, copy, 0, 0);
    attr = xmlHasProp(copy, BAD_CAST "passwd");
    if (attr != NULL && attr->children != NULL && attr->children->content != NULL)
        sodium_memzero(attr->children->content, strlen((const char *)attr->children->content));
    xmlFreeNode(copy);
    rc = virDomainUpdateDeviceFlags(dom, (const char *)xmlBufferContent(buf),
                                    VIR_DOMAIN_AFFECT_LIVE);
    sodium_memzero((void *)xmlBufferContent(buf), (size_t)xmlBufferLength(buf));
    xmlBufferFree(buf);
    if (rc < 0)
        return dv_virt_op_fail(op, error, "cannot set the display password of domain %s",
                               virDomainGetName(dom));
    return TRUE;
}

/* 8 characters from libsodium whose VNC DES key is not a weak one. */
static DvSecret *
dv_virt_graphics_one_time_password(void)
{
    static const char alphabet[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

    for (;;) {
        g_autoptr(DvSecret) pw = dv_secret_new(9);
        guint8 *p = dv_secret_get_data_mutable(pw);
        guint8 probe[16] = { 0 };
        guint8 out[16];
        for (gsize i = 0; i < 8; i++)
            p[i] = (guint8)alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
        p[8] = '\0';
        if (dv_virt_rfb_des_response((const char *)p, probe, out))
            return g_steal_pointer(&pw);
    }
}

static char *
dv_virt_graphics_valid_to(guint seconds)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autoptr(GDateTime) until = NULL;

    /* 0: in the past, so QEMU expires it at once. */
    if (seconds == 0)
        return g_strdup("1970-01-01T00:00:01");
    until = g_date_time_add_seconds(now, seconds);
    return g_date_time_format(until, "%Y-%m-%dT%H:%M:%S");
}

static GMutex dv_virt_graphics_remote_lock;

/* Under the lock: password, connect, authenticate.  Returns the
 * connection. */
static GSocketConnection *
dv_virt_graphics_connect_remote(DvVirtOp *op, virDomainPtr dom, xmlNode *graphics,
                                const char *address, guint16 port, guint password_seconds,
                                GCancellable *cancellable, GError **error)
{
    g_autoptr(DvSecret) pw = dv_virt_graphics_one_time_password();
    g_autofree char *valid_to = dv_virt_graphics_valid_to(password_seconds);
    g_autoptr(GSocketClient) client = g_socket_client_new();
    g_autoptr(GSocketConnectable) where = g_network_address_new(address, port);
    g_autoptr(GSocketConnection) conn = NULL;
    g_autoptr(GError) local = NULL;
    const char *name = virDomainGetName(dom);
    GSocket *sock;

    if (!dv_virt_graphics_set_password(op, dom, graphics, dv_secret_get_string(pw), valid_to,
                                       error))
        return NULL;
    g_socket_client_set_timeout(client, DV_VIRT_GRAPHICS_CONNECT_TIMEOUT);
    conn = g_socket_client_connect(client, where, cancellable, &local);
    if (conn == NULL) {
        gboolean timeout = g_error_matches(local, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
        g_set_error(error, DV_ERROR, timeout ? DV_ERROR_TIMEOUT : DV_ERROR_UNAVAILABLE,
                    "cannot connect to the display of domain %s at %s port %u%s: %s", name, address,
                    port, timeout ? " within the connect timeout" : "", local->message);
        return NULL;
    }
    sock = g_socket_connection_get_socket(conn);
    g_socket_set_blocking(sock, TRUE);
    g_socket_set_timeout(sock, DV_VIRT_GRAPHICS_HANDSHAKE_TIMEOUT);
    if (!dv_virt_rfb_client_auth(sock, dv_secret_get_string(pw), error))
        return NULL;
    return g_steal_pointer(&conn);
}

static int
dv_virt_graphics_open_remote(DvVirtOp *op, virDomainPtr dom, xmlNode *graphics,
                             const char *uri_host, guint password_seconds,
                             GCancellable *cancellable, GError **error)
{
    const char *name = virDomainGetName(dom);
    xmlNode *listen_node = dv_virt_xml_child(graphics, "listen");
    g_autofree char *listen_type =
        listen_node != NULL ? dv_virt_xml_prop(listen_node, "type") : NULL;
    g_autofree char *listen = NULL;
    g_autofree char *port_text = dv_virt_xml_prop(graphics, "port");
    g_autofree char *address = NULL;
    g_autoptr(GSocketConnection) conn = NULL;
    g_autoptr(GError) expire_error = NULL;
    g_autoptr(DvSecret) locked = NULL;
    guint64 port = 0;
    int fd;

    if (g_strcmp0(listen_type, "socket") == 0 || g_strcmp0(listen_type, "none") == 0) {
        dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "type",
                           "type: the display of domain %s listens %s, not on TCP: droverd "
                           "cannot reach it on a remote host",
                           name,
                           g_strcmp0(listen_type, "socket") == 0 ? "on a unix socket" : "nowhere");
        return -1;
    }
    listen = listen_node != NULL ? dv_virt_xml_prop(listen_node, "address") : NULL;
    if (listen == NULL)
        listen = dv_virt_xml_prop(graphics, "listen");
    if (port_text == NULL || !g_ascii_string_to_unsigned(port_text, 10, 1, 65535, &port, NULL)) {
        dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "type",
                           "type: the display of domain %s has no TCP port", name);
        return -1;
    }
    address = dv_virt_graphics_connect_address(listen, uri_host, error);
    if (address == NULL)
        return -1;

    g_mutex_lock(&dv_virt_graphics_remote_lock);
    conn = dv_virt_graphics_connect_remote(op, dom, graphics, address, (guint16)port,
                                           password_seconds, cancellable, error);
    /* One-time: whatever happened, the display is locked again. */
    locked = dv_virt_graphics_one_time_password();
    if (!dv_virt_graphics_set_password(op, dom, graphics, dv_secret_get_string(locked),
                                       "1970-01-01T00:00:01", &expire_error))
        g_warning("domain %s: the one-time display password could not be expired (it "
                  "expires by itself within %d s): %s",
                  name, DV_VIRT_GRAPHICS_PASSWORD_SECONDS, expire_error->message);
    g_mutex_unlock(&dv_virt_graphics_remote_lock);
    if (conn == NULL)
        return -1;
    fd = dup(g_socket_get_fd(g_socket_connection_get_socket(conn)));
    if (fd < 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot keep the display's socket: %s",
                    g_strerror(errno));
        return -1;
    }
    return fd;
}

/* The host name of a remote URI (qemu+tcp://HOST/system), or NULL for
 * a local one (qemu:///system, qemu+unix://...). */
static char *
dv_virt_uri_remote_host(const char *uri)
{
    g_autoptr(GUri) parsed = g_uri_parse(uri, G_URI_FLAGS_ENCODED | G_URI_FLAGS_NON_DNS, NULL);
    const char *host = parsed != NULL ? g_uri_get_host(parsed) : NULL;

    if (host == NULL || host[0] == '\0')
        return NULL;
    return g_strdup(host);
}

int
dv_virt_domain_open_graphics(DvVirtHost *host, const char *uuid, const char *type,
                             guint password_seconds, gboolean *ret_authenticated,
                             GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    g_autofree char *have = NULL;
    g_autofree char *remote = NULL;
    g_autoptr(GError) local = NULL;
    xmlNode *graphics;
    const char *name;
    int fd;

    g_return_val_if_fail(host != NULL && uuid != NULL && type != NULL, -1);
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return -1;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return -1;
    /* Read before the calls: every libvirt call resets the last error. */
    name = virDomainGetName(dom);
    if (virDomainIsActive(dom) != 1) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, NULL,
                           "domain %s is not running: its display opens while it runs", name);
        return -1;
    }
    graphics = dv_virt_domain_graphics_node(&op, dom, &doc, &local);
    if (local != NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return -1;
    }
    have = graphics != NULL ? dv_virt_xml_prop(graphics, "type") : NULL;
    if (have == NULL) {
        dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "type",
                           "type: domain %s has no graphical display", name);
        return -1;
    }
    if (g_strcmp0(have, type) != 0) {
        g_autofree char *safe = dv_text_excerpt(have, 16);
        dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "type",
                           "type: the display of domain %s is %s, not %s", name, safe, type);
        return -1;
    }
    remote = dv_virt_uri_remote_host(dv_virt_host_get_uri(host));
    if (remote != NULL) {
        fd = dv_virt_graphics_open_remote(&op, dom, graphics, remote, password_seconds, cancellable,
                                          error);
        if (fd >= 0)
            *ret_authenticated = TRUE;
        return fd;
    }
    fd = virDomainOpenGraphicsFD(dom, 0, VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH);
    if (fd < 0) {
        dv_virt_op_fail(&op, error, "cannot open the display of domain %s", name);
        return -1;
    }
    *ret_authenticated = FALSE;
    return fd;
}
