#define G_LOG_DOMAIN "DvVirtClone"

/* Flattened copies of volumes: the base image of a machine catalog.
 * virStorageVolCreateXMLFrom runs qemu-img convert on the host, which
 * reads the whole backing chain of the source and writes one image. */

#include "dv-virt-private.h"

#include "dv-json.h"
#include "dv-validate.h"

JsonObject *
dv_virt_volume_clone(DvVirtHost *host, const char *source_path, const char *pool,
                     const char *name, GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStoragePool) p = NULL;
    g_autoptr(virStorageVol) src = NULL;
    g_autoptr(virStorageVol) vol = NULL;
    g_autofree char *xml = NULL;
    virStorageVolInfo info;

    g_return_val_if_fail(host != NULL, NULL);
    if (!dv_validate_name("name", name, error) || !dv_validate_name("pool", pool, error))
        return NULL;
    if (source_path == NULL || source_path[0] != '/') {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "source",
                           "source: must be an absolute path");
        return NULL;
    }
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;
    p = virStoragePoolLookupByName(op.conn, pool);
    if (p == NULL)
        return dv_virt_op_fail_null(&op, error, "cannot find storage pool %s", pool);
    src = virStorageVolLookupByPath(op.conn, source_path);
    if (src == NULL)
        return dv_virt_op_fail_null(&op, error, "cannot find volume %s", source_path);
    if (virStorageVolGetInfo(src, &info) < 0)
        return dv_virt_op_fail_null(&op, error, "cannot read volume %s", source_path);
    /* compat 1.1 rather than the qcow2 0.10 libvirt writes by default;
     * no backingStore: the copy is flat. */
    xml = g_strdup_printf("<volume><name>%s</name>"
                          "<capacity unit='bytes'>%llu</capacity>"
                          "<target><format type='qcow2'/><compat>1.1</compat></target></volume>",
                          name, info.capacity);
    vol = virStorageVolCreateXMLFrom(p, xml, src, 0);
    if (vol == NULL) {
        g_autoptr(GError) local = NULL;

        dv_virt_op_fail(&op, &local, "cannot copy %s to %s in pool %s", source_path, name, pool);
        dv_virt_volume_conflict_if_exists(p, name, local);
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    return dv_virt_volume_entry_new(&op, vol, error);
}

/* Points every <source path> of a file serial or console device of the
 * clone at its own log, "<name>-console.log" beside the source's: two
 * domains appending to one file would mix their consoles. */
static void
dv_virt_clone_logs(xmlNode *devices, const char *name)
{
    for (xmlNode *d = devices != NULL ? devices->children : NULL; d != NULL; d = d->next) {
        g_autofree char *type = NULL;
        xmlNode *source;

        if (d->type != XML_ELEMENT_NODE || (xmlStrcmp(d->name, BAD_CAST "serial") != 0 &&
                                            xmlStrcmp(d->name, BAD_CAST "console") != 0))
            continue;
        type = dv_virt_xml_prop(d, "type");
        source = dv_virt_xml_child(d, "source");
        if (g_strcmp0(type, "file") == 0 && source != NULL) {
            g_autofree char *old = dv_virt_xml_prop(source, "path");
            g_autofree char *dir = old != NULL ? g_path_get_dirname(old) : NULL;
            g_autofree char *base = g_strdup_printf("%s-console.log", name);
            g_autofree char *path = dir != NULL ? g_build_filename(dir, base, NULL) : NULL;
            if (path != NULL)
                xmlSetProp(source, BAD_CAST "path", BAD_CAST path);
        }
    }
}

/* The clone's disks: each owned disk (writable, not shared) must have a
 * new path in @disk_map; CD-ROMs and read-only disks stay shared. */
static gboolean
dv_virt_clone_disks(xmlNode *devices, JsonObject *disk_map, GError **error)
{
    for (xmlNode *d = devices != NULL ? devices->children : NULL; d != NULL; d = d->next) {
        g_autofree char *device = NULL;
        g_autofree char *path = NULL;
        xmlNode *source;
        const char *to;

        if (d->type != XML_ELEMENT_NODE || xmlStrcmp(d->name, BAD_CAST "disk") != 0)
            continue;
        device = dv_virt_xml_prop(d, "device");
        if ((device != NULL && g_strcmp0(device, "disk") != 0) ||
            dv_virt_xml_child(d, "readonly") != NULL || dv_virt_xml_child(d, "shareable") != NULL)
            continue;
        source = dv_virt_xml_child(d, "source");
        path = dv_virt_xml_prop(source, "file");
        to = path != NULL ? dv_json_get_string(disk_map, path, NULL) : NULL;
        if (to == NULL) {
            dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "disks",
                               "disks: the source's disk %s is not a file Drover copied",
                               path != NULL ? path : "(not a file)");
            return FALSE;
        }
        xmlSetProp(source, BAD_CAST "file", BAD_CAST to);
        /* The copies are qcow2 (flat or an overlay). */
        if (dv_virt_xml_child(d, "driver") != NULL)
            xmlSetProp(dv_virt_xml_child(d, "driver"), BAD_CAST "type", BAD_CAST "qcow2");
        /* A <backingStore> of the source's chain does not describe the copy. */
        for (xmlNode *c = d->children; c != NULL;) {
            xmlNode *next = c->next;
            if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, BAD_CAST "backingStore") == 0) {
                xmlUnlinkNode(c);
                xmlFreeNode(c);
            }
            c = next;
        }
    }
    return TRUE;
}

char *
dv_virt_domain_clone_define(DvVirtHost *host, const char *source_uuid, const char *name,
                            const char *uuid, JsonObject *disk_map, GCancellable *cancellable,
                            GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) src = NULL;
    g_autoptr(virDomain) defined = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    g_autofree char *text = NULL;
    xmlNode *root;
    xmlNode *devices;
    xmlNode *os;
    xmlChar *out = NULL;
    int out_len = 0;
    char *xml;
    char got[VIR_UUID_STRING_BUFLEN];

    g_return_val_if_fail(host != NULL && disk_map != NULL, NULL);
    if (!dv_validate_name("name", name, error))
        return NULL;
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;
    src = dv_virt_domain_lookup(&op, source_uuid, error);
    if (src == NULL)
        return NULL;
    xml = virDomainGetXMLDesc(src, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
    if (xml == NULL)
        return dv_virt_op_fail_null(&op, error, "cannot read domain %s", source_uuid);
    doc = dv_virt_xml_parse(xml, error);
    free(xml);
    if (doc == NULL)
        return NULL;
    root = xmlDocGetRootElement(doc);
    devices = dv_virt_xml_child(root, "devices");
    xmlNodeSetContent(dv_virt_xml_child(root, "name"), BAD_CAST name);
    if (dv_virt_xml_child(root, "uuid") != NULL)
        xmlNodeSetContent(dv_virt_xml_child(root, "uuid"), BAD_CAST uuid);
    else
        xmlNewTextChild(root, NULL, BAD_CAST "uuid", BAD_CAST uuid);
    /* New identity: without <mac> libvirt generates a fresh address per
     * interface; without <nvram> it copies a fresh UEFI variable store. */
    for (xmlNode *d = devices != NULL ? devices->children : NULL; d != NULL; d = d->next) {
        xmlNode *mac;
        if (d->type != XML_ELEMENT_NODE || xmlStrcmp(d->name, BAD_CAST "interface") != 0)
            continue;
        while ((mac = dv_virt_xml_child(d, "mac")) != NULL) {
            xmlUnlinkNode(mac);
            xmlFreeNode(mac);
        }
    }
    os = dv_virt_xml_child(root, "os");
    if (os != NULL && dv_virt_xml_child(os, "nvram") != NULL) {
        xmlNode *nvram = dv_virt_xml_child(os, "nvram");
        xmlUnlinkNode(nvram);
        xmlFreeNode(nvram);
    }
    if (!dv_virt_clone_disks(devices, disk_map, error))
        return NULL;
    dv_virt_clone_logs(devices, name);
    xmlDocDumpMemory(doc, &out, &out_len);
    if (out == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot write the XML of clone %s", name);
        return NULL;
    }
    text = g_strndup((const char *)out, (gsize)out_len);
    xmlFree(out);
    defined = virDomainDefineXML(op.conn, text);
    if (defined == NULL)
        return dv_virt_op_fail_null(&op, error, "cannot define clone %s", name);
    if (virDomainGetUUIDString(defined, got) < 0)
        return dv_virt_op_fail_null(&op, error, "cannot read the UUID of clone %s", name);
    return g_strdup(got);
}
