#define G_LOG_DOMAIN "DvVirtChange"

/* Changing a defined domain: vCPUs, memory, description, autostart, boot
 * order, name; reboot and reset.  Each call is one operation on the host
 * (one slot, one connection) and touches one domain. */

#include "dv-virt-private.h"

#include "dv-validate.h"

#include <string.h>

/* The persistent maximum and current value of @what ("vcpus", "memory")
 * read from the inactive XML. */
static gboolean
dv_virt_domain_config_values(DvVirtOp *op, virDomainPtr dom, const char *uuid, gboolean vcpus,
                             guint64 *ret_max, guint64 *ret_cur, GError **error)
{
    g_autoptr(xmlDoc) doc = NULL;
    g_autofree char *max_text = NULL;
    g_autofree char *cur_text = NULL;
    xmlNode *root;
    guint64 max;
    guint64 cur;
    char *xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE);

    if (xml == NULL)
        return dv_virt_op_fail(op, error, "cannot read domain %s", uuid);
    doc = dv_virt_xml_parse(xml, error);
    free(xml);
    if (doc == NULL)
        return FALSE;
    root = xmlDocGetRootElement(doc);
    if (vcpus) {
        xmlNode *vcpu = dv_virt_xml_child(root, "vcpu");
        max_text = dv_virt_xml_child_text(root, "vcpu");
        cur_text = dv_virt_xml_prop(vcpu, "current");
    } else {
        max_text = dv_virt_xml_child_text(root, "memory");
        cur_text = dv_virt_xml_child_text(root, "currentMemory");
    }
    max = max_text != NULL ? g_ascii_strtoull(max_text, NULL, 10) : 0;
    cur = cur_text != NULL ? g_ascii_strtoull(cur_text, NULL, 10) : max;
    *ret_max = max;
    *ret_cur = cur;
    return TRUE;
}

static gboolean
dv_virt_domain_running(DvVirtOp *op, virDomainPtr dom, const char *uuid, gboolean *ret_running,
                       GError **error)
{
    int active = virDomainIsActive(dom);

    if (active < 0)
        return dv_virt_op_fail(op, error, "cannot read the state of domain %s", uuid);
    *ret_running = active == 1;
    return TRUE;
}

gboolean
dv_virt_domain_set_vcpus(DvVirtHost *host, const char *uuid, guint vcpus, gboolean *ret_live,
                         GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    gboolean running = FALSE;
    gboolean live = FALSE;
    guint64 max = 0;
    guint64 cur = 0;

    if (!dv_validate_range("vcpus", vcpus, 1, DV_VIRT_MAX_VCPUS, error))
        return FALSE;
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL || !dv_virt_domain_running(&op, dom, uuid, &running, error))
        return FALSE;
    if (running) {
        int live_max = virDomainGetMaxVcpus(dom);
        /* Within the running maximum: hot-plug (or unplug) now, then the
         * definition below keeps it for the next boot (two calls: the
         * test driver refuses LIVE|CONFIG in one).  QEMU refuses what the
         * machine cannot plug; then it waits for the next boot like a
         * value above the maximum. */
        if (live_max > 0 && vcpus <= (guint)live_max &&
            virDomainSetVcpusFlags(dom, vcpus, VIR_DOMAIN_AFFECT_LIVE) == 0)
            live = TRUE;
        virResetLastError();
    }
    if (!dv_virt_domain_config_values(&op, dom, uuid, TRUE, &max, &cur, error))
        return FALSE;
    /* The persistent definition, the maximum first when it grows, so the
     * current count never exceeds it; a stopped domain gets both equal. */
    if (vcpus > max) {
        if (virDomainSetVcpusFlags(dom, vcpus, VIR_DOMAIN_AFFECT_CONFIG | VIR_DOMAIN_VCPU_MAXIMUM) <
            0)
            return dv_virt_op_fail(&op, error, "cannot set the maximum vCPUs of domain %s", uuid);
    }
    if (virDomainSetVcpusFlags(dom, vcpus, VIR_DOMAIN_AFFECT_CONFIG) < 0)
        return dv_virt_op_fail(&op, error, "cannot set the vCPUs of domain %s", uuid);
    if (!running && vcpus < max &&
        virDomainSetVcpusFlags(dom, vcpus, VIR_DOMAIN_AFFECT_CONFIG | VIR_DOMAIN_VCPU_MAXIMUM) < 0)
        return dv_virt_op_fail(&op, error, "cannot set the maximum vCPUs of domain %s", uuid);
    *ret_live = live;
    return TRUE;
}

gboolean
dv_virt_domain_set_memory(DvVirtHost *host, const char *uuid, guint64 memory_mib,
                          gboolean *ret_live, GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    gboolean running = FALSE;
    gboolean live = FALSE;
    guint64 max = 0;
    guint64 cur = 0;
    guint64 kib = memory_mib * 1024;

    if (!dv_validate_range("memory_mib", (gint64)memory_mib, 16, DV_VIRT_MAX_MEMORY_MIB, error))
        return FALSE;
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL || !dv_virt_domain_running(&op, dom, uuid, &running, error))
        return FALSE;
    if (running) {
        unsigned long live_max = virDomainGetMaxMemory(dom);
        /* Within the running maximum the balloon moves it now; the
         * definition follows below. */
        if (live_max > 0 && kib <= live_max &&
            virDomainSetMemoryFlags(dom, kib, VIR_DOMAIN_AFFECT_LIVE) == 0)
            live = TRUE;
        virResetLastError();
    }
    if (!dv_virt_domain_config_values(&op, dom, uuid, FALSE, &max, &cur, error))
        return FALSE;
    if (kib > max) {
        if (virDomainSetMemoryFlags(dom, kib, VIR_DOMAIN_AFFECT_CONFIG | VIR_DOMAIN_MEM_MAXIMUM) <
            0)
            return dv_virt_op_fail(&op, error, "cannot set the maximum memory of domain %s", uuid);
    }
    if (virDomainSetMemoryFlags(dom, kib, VIR_DOMAIN_AFFECT_CONFIG) < 0)
        return dv_virt_op_fail(&op, error, "cannot set the memory of domain %s", uuid);
    if (!running && kib < max &&
        virDomainSetMemoryFlags(dom, kib, VIR_DOMAIN_AFFECT_CONFIG | VIR_DOMAIN_MEM_MAXIMUM) < 0)
        return dv_virt_op_fail(&op, error, "cannot set the maximum memory of domain %s", uuid);
    *ret_live = live;
    return TRUE;
}

gboolean
dv_virt_domain_set_description(DvVirtHost *host, const char *uuid, const char *text,
                               GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    gboolean running = FALSE;
    unsigned int flags = VIR_DOMAIN_AFFECT_CONFIG;

    if (text != NULL && !dv_validate_text("description", text, DV_DESCRIPTION_MAX, error))
        return FALSE;
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL || !dv_virt_domain_running(&op, dom, uuid, &running, error))
        return FALSE;
    if (running)
        flags |= VIR_DOMAIN_AFFECT_LIVE;
    if (virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_DESCRIPTION,
                             text != NULL && text[0] != '\0' ? text : NULL, NULL, NULL, flags) < 0)
        return dv_virt_op_fail(&op, error, "cannot set the description of domain %s", uuid);
    return TRUE;
}

gboolean
dv_virt_domain_set_autostart(DvVirtHost *host, const char *uuid, gboolean autostart,
                             GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;

    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return FALSE;
    if (virDomainSetAutostart(dom, autostart ? 1 : 0) < 0)
        return dv_virt_op_fail(&op, error, "cannot set autostart of domain %s", uuid);
    return TRUE;
}

/* Drover's boot device words and libvirt's <boot dev>. */
static const char *
dv_virt_boot_dev(const char *word)
{
    static const char *const map[][2] = { { "disk", "hd" },
                                          { "cdrom", "cdrom" },
                                          { "network", "network" } };
    for (gsize i = 0; i < G_N_ELEMENTS(map); i++)
        if (g_strcmp0(word, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

static void
dv_virt_xml_drop_children(xmlNode *parent, const char *name)
{
    xmlNode *n = parent != NULL ? parent->children : NULL;
    while (n != NULL) {
        xmlNode *next = n->next;
        if (n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, BAD_CAST name) == 0) {
            xmlUnlinkNode(n);
            xmlFreeNode(n);
        }
        n = next;
    }
}

gboolean
dv_virt_domain_set_boot_order(DvVirtHost *host, const char *uuid, const char *const *order,
                              GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(virDomain) defined = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    xmlNode *root;
    xmlNode *os;
    xmlNode *devices;
    xmlChar *out = NULL;
    int out_len = 0;
    g_autofree char *text = NULL;
    char *xml;
    guint n = order != NULL ? g_strv_length((char **)order) : 0;

    if (n == 0 || n > 3) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "boot_order",
                           "boot_order: one to three of disk, cdrom, network");
        return FALSE;
    }
    for (guint i = 0; i < n; i++) {
        if (dv_virt_boot_dev(order[i]) == NULL) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "boot_order",
                               "boot_order: each entry is disk, cdrom or network");
            return FALSE;
        }
    }
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return FALSE;
    xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
    if (xml == NULL)
        return dv_virt_op_fail(&op, error, "cannot read domain %s", uuid);
    doc = dv_virt_xml_parse(xml, error);
    free(xml);
    if (doc == NULL)
        return FALSE;
    root = xmlDocGetRootElement(doc);
    os = dv_virt_xml_child(root, "os");
    if (os == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED, "domain %s has no <os> element", uuid);
        return FALSE;
    }
    /* A domain booted from a kernel has no boot devices to order. */
    if (dv_virt_xml_child(os, "kernel") != NULL) {
        dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "boot_order",
                           "boot_order: this VM boots a kernel directly, not from a device");
        return FALSE;
    }
    /* <os><boot dev/> and per-device <boot order/> exclude each other:
     * the per-device ones go, the list is written in <os>. */
    devices = dv_virt_xml_child(root, "devices");
    for (xmlNode *d = devices != NULL ? devices->children : NULL; d != NULL; d = d->next)
        if (d->type == XML_ELEMENT_NODE)
            dv_virt_xml_drop_children(d, "boot");
    dv_virt_xml_drop_children(os, "boot");
    for (guint i = 0; i < n; i++) {
        xmlNode *b = xmlNewChild(os, NULL, BAD_CAST "boot", NULL);
        xmlNewProp(b, BAD_CAST "dev", BAD_CAST dv_virt_boot_dev(order[i]));
    }
    xmlDocDumpMemory(doc, &out, &out_len);
    if (out == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot write domain %s's XML", uuid);
        return FALSE;
    }
    text = g_strndup((const char *)out, (gsize)out_len);
    xmlFree(out);
    defined = virDomainDefineXML(op.conn, text);
    if (defined == NULL)
        return dv_virt_op_fail(&op, error, "cannot set the boot order of domain %s", uuid);
    return TRUE;
}

/* The attribute @attr of @node's first child element @name, or NULL
 * (xmlFree). */
static xmlChar *
dv_virt_xml_child_attr(xmlNode *node, const char *name, const char *attr)
{
    xmlNode *c = dv_virt_xml_child(node, name);
    return c != NULL ? xmlGetProp(c, BAD_CAST attr) : NULL;
}

gboolean
dv_virt_domain_set_disk_source(DvVirtHost *host, const char *uuid, const char *target,
                               const char *path, const char *format, gboolean transient,
                               GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(virDomain) defined = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    xmlNode *devices;
    xmlNode *disk = NULL;
    xmlChar *out = NULL;
    int out_len = 0;
    g_autofree char *text = NULL;
    char *xml;

    g_return_val_if_fail(target != NULL && path != NULL && format != NULL, FALSE);
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return FALSE;
    xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
    if (xml == NULL)
        return dv_virt_op_fail(&op, error, "cannot read domain %s", uuid);
    doc = dv_virt_xml_parse(xml, error);
    free(xml);
    if (doc == NULL)
        return FALSE;
    devices = dv_virt_xml_child(xmlDocGetRootElement(doc), "devices");
    for (xmlNode *d = devices != NULL ? devices->children : NULL; d != NULL && disk == NULL;
         d = d->next) {
        xmlChar *dev;
        if (d->type != XML_ELEMENT_NODE || xmlStrcmp(d->name, BAD_CAST "disk") != 0)
            continue;
        dev = dv_virt_xml_child_attr(d, "target", "dev");
        if (dev != NULL && xmlStrcmp(dev, BAD_CAST target) == 0)
            disk = d;
        xmlFree(dev);
    }
    if (disk == NULL && devices != NULL) {
        /* libvirt's test driver keeps no disk of a file it cannot see. */
        xmlNode *t;
        disk = xmlNewChild(devices, NULL, BAD_CAST "disk", NULL);
        xmlNewProp(disk, BAD_CAST "device", BAD_CAST "disk");
        t = xmlNewChild(disk, NULL, BAD_CAST "target", NULL);
        xmlNewProp(t, BAD_CAST "dev", BAD_CAST target);
        xmlNewProp(t, BAD_CAST "bus", BAD_CAST "virtio");
    }
    if (disk == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "domain %s has no devices", uuid);
        return FALSE;
    }
    {
        xmlChar *src = dv_virt_xml_child_attr(disk, "source", "file");
        xmlChar *fmt = dv_virt_xml_child_attr(disk, "driver", "type");
        xmlNode *tr = dv_virt_xml_child(disk, "transient");
        xmlChar *share = tr != NULL ? xmlGetProp(tr, BAD_CAST "shareBacking") : NULL;
        gboolean same =
            src != NULL && xmlStrcmp(src, BAD_CAST path) == 0 && fmt != NULL &&
            xmlStrcmp(fmt, BAD_CAST format) == 0 &&
            (transient ? share != NULL && xmlStrcmp(share, BAD_CAST "yes") == 0 : tr == NULL);
        xmlFree(src);
        xmlFree(fmt);
        xmlFree(share);
        if (same)
            return TRUE;
    }
    /* A file disk: the old source (and any <backingStore> libvirt
     * recorded for it) goes, the new one is written. */
    xmlSetProp(disk, BAD_CAST "type", BAD_CAST "file");
    dv_virt_xml_drop_children(disk, "source");
    dv_virt_xml_drop_children(disk, "backingStore");
    dv_virt_xml_drop_children(disk, "transient");
    {
        xmlNode *driver = dv_virt_xml_child(disk, "driver");
        xmlNode *src;
        if (driver == NULL) {
            driver = xmlNewChild(disk, NULL, BAD_CAST "driver", NULL);
            xmlNewProp(driver, BAD_CAST "name", BAD_CAST "qemu");
        }
        xmlSetProp(driver, BAD_CAST "type", BAD_CAST format);
        src = xmlNewChild(disk, NULL, BAD_CAST "source", NULL);
        xmlNewProp(src, BAD_CAST "file", BAD_CAST path);
        if (transient) {
            xmlNode *t = xmlNewChild(disk, NULL, BAD_CAST "transient", NULL);
            xmlNewProp(t, BAD_CAST "shareBacking", BAD_CAST "yes");
        }
    }
    xmlDocDumpMemory(doc, &out, &out_len);
    if (out == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot write domain %s's XML", uuid);
        return FALSE;
    }
    text = g_strndup((const char *)out, (gsize)out_len);
    xmlFree(out);
    defined = virDomainDefineXML(op.conn, text);
    if (defined == NULL)
        return dv_virt_op_fail(&op, error, "cannot change disk %s of domain %s", target, uuid);
    return TRUE;
}

gboolean
dv_virt_domain_rename(DvVirtHost *host, const char *uuid, const char *name,
                      GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    gboolean running = FALSE;

    if (!dv_validate_name("name", name, error))
        return FALSE;
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL || !dv_virt_domain_running(&op, dom, uuid, &running, error))
        return FALSE;
    /* Resumed after the rename: done. */
    if (g_strcmp0(virDomainGetName(dom), name) == 0)
        return TRUE;
    if (running) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "name",
                           "name: domain %s is running; a VM is renamed only while shut off", uuid);
        return FALSE;
    }
    if (virDomainRename(dom, name, 0) < 0)
        return dv_virt_op_fail(&op, error, "cannot rename domain %s", uuid);
    return TRUE;
}

gboolean
dv_virt_domain_reboot(DvVirtHost *host, const char *uuid, GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;

    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return FALSE;
    if (virDomainReboot(dom, 0) < 0)
        return dv_virt_op_fail(&op, error, "cannot reboot domain %s", uuid);
    return TRUE;
}

gboolean
dv_virt_domain_reset(DvVirtHost *host, const char *uuid, GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;

    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return FALSE;
    if (virDomainReset(dom, 0) < 0)
        return dv_virt_op_fail(&op, error, "cannot reset domain %s", uuid);
    return TRUE;
}
