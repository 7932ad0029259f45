#define G_LOG_DOMAIN "DvVirtDisk"

/* Growing volumes (live through the running domain that uses them) and
 * adding or removing a domain's disks, live and persistent.  Each call is
 * one operation on the host (one slot, one connection). */

#include "dv-virt-private.h"

#include "dv-validate.h"

#include <string.h>

#define DV_VIRT_MAX_VOLUME_BYTES (G_GUINT64_CONSTANT(64) << 40)

/* The target ("vdb") of the disk whose source is @path in @dom's live
 * XML, or NULL (no error) when it has none. */
static char *
dv_virt_domain_disk_target_of(DvVirtOp *op, virDomainPtr dom, const char *path, GError **error)
{
    g_autoptr(xmlDoc) doc = NULL;
    xmlNode *devices;
    /* Read before the call: every libvirt call resets the last error. */
    const char *name = virDomainGetName(dom);
    char *xml = virDomainGetXMLDesc(dom, 0);

    if (xml == NULL) {
        dv_virt_op_fail(op, error, "cannot read domain %s", name);
        return NULL;
    }
    doc = dv_virt_xml_parse(xml, error);
    free(xml);
    if (doc == NULL)
        return NULL;
    devices = dv_virt_xml_child(xmlDocGetRootElement(doc), "devices");
    for (xmlNode *d = devices != NULL ? devices->children : NULL; d != NULL; d = d->next) {
        g_autofree char *file = NULL;
        if (d->type != XML_ELEMENT_NODE || strcmp((const char *)d->name, "disk") != 0)
            continue;
        file = dv_virt_xml_prop(dv_virt_xml_child(d, "source"), "file");
        if (g_strcmp0(file, path) == 0)
            return dv_virt_xml_prop(dv_virt_xml_child(d, "target"), "dev");
    }
    return NULL;
}

JsonObject *
dv_virt_volume_resize(DvVirtHost *host, const char *path, guint64 capacity,
                      GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStorageVol) vol = NULL;
    g_autoptr(DvVirtDomainList) doms = NULL;
    g_autoptr(JsonObject) result = json_object_new();
    virStorageVolInfo info;
    int n;

    g_return_val_if_fail(host != NULL, NULL);
    if (path == NULL || path[0] != '/') {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "path", "path: must be absolute");
        return NULL;
    }
    if (capacity == 0 || capacity > DV_VIRT_MAX_VOLUME_BYTES) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "size",
                           "size: must be 1 byte to 64 TiB");
        return NULL;
    }
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;
    vol = virStorageVolLookupByPath(op.conn, path);
    if (vol == NULL)
        return dv_virt_op_fail_null(&op, error, "cannot find volume %s", path);
    if (virStorageVolGetInfo(vol, &info) < 0)
        return dv_virt_op_fail_null(&op, error, "cannot read volume %s", path);
    /* Checked again on the host: the inventory may be behind. */
    if (capacity < info.capacity) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "size",
                           "size: %" G_GUINT64_FORMAT " bytes is below the volume's %llu; a "
                           "volume only grows",
                           capacity, info.capacity);
        return NULL;
    }
    json_object_set_int_member(result, "capacity", (gint64)capacity);
    json_object_set_boolean_member(result, "live", FALSE);
    if (capacity == info.capacity)
        return g_steal_pointer(&result); /* a retried job: done */
    /* A running domain using the file: QEMU grows it, so the guest sees
     * the new size at once (the file is QEMU's while it runs). */
    n = virConnectListAllDomains(op.conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    if (n < 0)
        return dv_virt_op_fail_null(&op, error, "cannot list domains");
    for (int i = 0; i < n; i++) {
        g_autoptr(GError) local = NULL;
        g_autofree char *target = dv_virt_domain_disk_target_of(&op, doms[i], path, &local);
        if (local != NULL) {
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        const char *name;
        if (target == NULL)
            continue;
        name = virDomainGetName(doms[i]); /* before: a call resets the last error */
        if (virDomainBlockResize(doms[i], target, capacity, VIR_DOMAIN_BLOCK_RESIZE_BYTES) < 0)
            return dv_virt_op_fail_null(&op, error, "cannot grow disk %s of domain %s", target,
                                        name);
        json_object_set_boolean_member(result, "live", TRUE);
        json_object_set_string_member(result, "domain", name);
        json_object_set_string_member(result, "target", target);
        return g_steal_pointer(&result);
    }
    if (virStorageVolResize(vol, capacity, 0) < 0)
        return dv_virt_op_fail_null(&op, error, "cannot grow volume %s", path);
    return g_steal_pointer(&result);
}

/* Disk targets in use in @xml (any bus), added to @used. */
static gboolean
dv_virt_disk_targets_used(const char *xml, GHashTable *used, GError **error)
{
    g_autoptr(xmlDoc) doc = dv_virt_xml_parse(xml, error);
    xmlNode *devices;

    if (doc == NULL)
        return FALSE;
    devices = dv_virt_xml_child(xmlDocGetRootElement(doc), "devices");
    for (xmlNode *d = devices != NULL ? devices->children : NULL; d != NULL; d = d->next) {
        char *dev;
        if (d->type != XML_ELEMENT_NODE || strcmp((const char *)d->name, "disk") != 0)
            continue;
        dev = dv_virt_xml_prop(dv_virt_xml_child(d, "target"), "dev");
        if (dev != NULL)
            g_hash_table_add(used, dev);
    }
    return TRUE;
}

static gboolean
dv_virt_domain_xmls(DvVirtOp *op, virDomainPtr dom, const char *uuid, gboolean running,
                    GHashTable *used, GError **error)
{
    for (int live = 0; live <= (running ? 1 : 0); live++) {
        char *xml = virDomainGetXMLDesc(dom, live ? 0 : VIR_DOMAIN_XML_INACTIVE);
        gboolean ok;
        if (xml == NULL)
            return dv_virt_op_fail(op, error, "cannot read domain %s", uuid);
        ok = dv_virt_disk_targets_used(xml, used, error);
        free(xml);
        if (!ok)
            return FALSE;
    }
    return TRUE;
}

char *
dv_virt_domain_disk_attach(DvVirtHost *host, const char *uuid, const char *path, const char *format,
                           gboolean *ret_live, GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(GHashTable) used = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autofree char *esc = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *target = NULL;
    int active;
    guint flags = VIR_DOMAIN_AFFECT_CONFIG;

    g_return_val_if_fail(host != NULL, NULL);
    if (path == NULL || path[0] != '/') {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "volume", "volume: needs a path");
        return NULL;
    }
    if (g_strcmp0(format, "qcow2") != 0 && g_strcmp0(format, "raw") != 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "format",
                           "format: must be qcow2 or raw");
        return NULL;
    }
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return NULL;
    active = virDomainIsActive(dom);
    if (active < 0)
        return dv_virt_op_fail_null(&op, error, "cannot read the state of domain %s", uuid);
    if (!dv_virt_domain_xmls(&op, dom, uuid, active == 1, used, error))
        return NULL;
    /* The first virtio name free in both definitions: vda.. vdz. */
    for (char c = 'a'; c <= 'z' && target == NULL; c++) {
        g_autofree char *t = g_strdup_printf("vd%c", c);
        if (!g_hash_table_contains(used, t))
            target = g_steal_pointer(&t);
    }
    if (target == NULL) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "volume",
                           "volume: domain %s has no free virtio disk name left", uuid);
        return NULL;
    }
    esc = g_markup_escape_text(path, -1);
    xml = g_strdup_printf("<disk type='file' device='disk'><driver name='qemu' type='%s'/>"
                          "<source file='%s'/><target dev='%s' bus='virtio'/></disk>",
                          format, esc, target);
    if (active == 1)
        flags |= VIR_DOMAIN_AFFECT_LIVE;
    if (virDomainAttachDeviceFlags(dom, xml, flags) < 0)
        return dv_virt_op_fail_null(&op, error, "cannot attach %s to domain %s", path, uuid);
    if (ret_live != NULL)
        *ret_live = active == 1;
    return g_steal_pointer(&target);
}

/* The <disk> element of @target in @xml, serialized (owned), or NULL. */
static char *
dv_virt_disk_element(const char *xml, const char *target, GError **error)
{
    g_autoptr(xmlDoc) doc = dv_virt_xml_parse(xml, error);
    xmlNode *devices;

    if (doc == NULL)
        return NULL;
    devices = dv_virt_xml_child(xmlDocGetRootElement(doc), "devices");
    for (xmlNode *d = devices != NULL ? devices->children : NULL; d != NULL; d = d->next) {
        g_autofree char *dev = NULL;
        if (d->type != XML_ELEMENT_NODE || strcmp((const char *)d->name, "disk") != 0)
            continue;
        dev = dv_virt_xml_prop(dv_virt_xml_child(d, "target"), "dev");
        if (g_strcmp0(dev, target) == 0) {
            xmlBuffer *buf = xmlBufferCreate();
            char *out;
            xmlNodeDump(buf, doc, d, 0, 0);
            out = g_strdup((const char *)xmlBufferContent(buf));
            xmlBufferFree(buf);
            return out;
        }
    }
    return NULL;
}

gboolean
dv_virt_domain_device_detach(DvVirtHost *host, const char *uuid, DvVirtDeviceFind find,
                             const char *key, const char *what, gboolean *ret_live,
                             GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    int active;
    gboolean live = FALSE;

    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return FALSE;
    active = virDomainIsActive(dom);
    if (active < 0)
        return dv_virt_op_fail(&op, error, "cannot read the state of domain %s", uuid);
    /* Each definition separately: a device may be in one only (a detach
     * resumed after the live half, or one added for the next boot). */
    for (int pass = 0; pass < 2; pass++) {
        gboolean is_live = pass == 1;
        g_autofree char *elem = NULL;
        g_autoptr(GError) local = NULL;
        char *xml;
        if (is_live && active != 1)
            break;
        xml = virDomainGetXMLDesc(dom, is_live ? 0 : VIR_DOMAIN_XML_INACTIVE);
        if (xml == NULL)
            return dv_virt_op_fail(&op, error, "cannot read domain %s", uuid);
        elem = find(xml, key, &local);
        free(xml);
        if (local != NULL) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        if (elem == NULL)
            continue;
        if (virDomainDetachDeviceFlags(
                dom, elem, is_live ? VIR_DOMAIN_AFFECT_LIVE : VIR_DOMAIN_AFFECT_CONFIG) < 0)
            return dv_virt_op_fail(&op, error, "cannot detach %s %s from domain %s", what, key,
                                   uuid);
        live = live || is_live;
    }
    /* In neither: a resumed job, done. */
    if (ret_live != NULL)
        *ret_live = live;
    return TRUE;
}

gboolean
dv_virt_domain_disk_detach(DvVirtHost *host, const char *uuid, const char *target,
                           gboolean *ret_live, GCancellable *cancellable, GError **error)
{
    g_return_val_if_fail(host != NULL, FALSE);
    if (!dv_validate_name("target", target, error))
        return FALSE;
    return dv_virt_domain_device_detach(host, uuid, dv_virt_disk_element, target, "disk", ret_live,
                                        cancellable, error);
}
