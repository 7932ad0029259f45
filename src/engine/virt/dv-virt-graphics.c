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

#include <string.h>
#include <sys/random.h>

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

/* The type ("vnc", "spice") of the first <graphics> of @dom's live XML,
 * or NULL (no error) when it has none. */
static char *
dv_virt_domain_graphics_type(DvVirtOp *op, virDomainPtr dom, GError **error)
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
        if (d->type == XML_ELEMENT_NODE && strcmp((const char *)d->name, "graphics") == 0)
            return dv_virt_xml_prop(d, "type");
    return NULL;
}

int
dv_virt_domain_open_graphics(DvVirtHost *host, const char *uuid, const char *type,
                             GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    g_autofree char *have = NULL;
    g_autoptr(GError) local = NULL;
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
    have = dv_virt_domain_graphics_type(&op, dom, &local);
    if (local != NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return -1;
    }
    if (have == NULL) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "type",
                           "type: domain %s has no graphical display", name);
        return -1;
    }
    if (g_strcmp0(have, type) != 0) {
        g_autofree char *safe = dv_text_excerpt(have, 16);
        dv_set_field_error(error, DV_ERROR_CONFLICT, "type",
                           "type: the display of domain %s is %s, not %s", name, safe, type);
        return -1;
    }
    fd = virDomainOpenGraphicsFD(dom, 0, VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH);
    if (fd < 0) {
        virErrorPtr e = virGetLastError();
        /* A remote transport cannot carry a descriptor. */
        if (e != NULL &&
            (e->code == VIR_ERR_NO_SUPPORT || e->code == VIR_ERR_OPERATION_UNSUPPORTED ||
             e->code == VIR_ERR_ARGUMENT_UNSUPPORTED)) {
            g_autofree char *msg = g_strdup(e->message != NULL ? e->message : "");
            virResetLastError();
            g_set_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED,
                        "the display of domain %s cannot be opened over this host's "
                        "connection (%s): graphical consoles need a local libvirtd for now",
                        name, msg);
            return -1;
        }
        dv_virt_op_fail(&op, error, "cannot open the display of domain %s", name);
        return -1;
    }
    return fd;
}
