#define G_LOG_DOMAIN "DvVirtCdrom"

/* CD-ROM media of a defined domain: insert and eject.  A medium change is
 * virDomainUpdateDeviceFlags on the drive's <disk device='cdrom'> (QEMU's
 * blockdev-change-medium when the domain runs, the definition always);
 * a drive itself is added only while the domain is shut off, because
 * neither IDE nor SATA takes a hot-plugged drive. */

#include "dv-virt-private.h"

#include "dv-validate.h"

#include <string.h>

/* The first CD-ROM drive of @xml, or the one at @target: its target and
 * bus (owned), or FALSE with nothing set when there is none. */
static gboolean
dv_virt_cdrom_find(xmlDoc *doc, const char *target, char **ret_target, char **ret_bus)
{
    xmlNode *devices = dv_virt_xml_child(xmlDocGetRootElement(doc), "devices");

    for (xmlNode *d = devices != NULL ? devices->children : NULL; d != NULL; d = d->next) {
        g_autofree char *device = NULL;
        g_autofree char *dev = NULL;
        if (d->type != XML_ELEMENT_NODE || strcmp((const char *)d->name, "disk") != 0)
            continue;
        device = dv_virt_xml_prop(d, "device");
        if (g_strcmp0(device, "cdrom") != 0)
            continue;
        dev = dv_virt_xml_prop(dv_virt_xml_child(d, "target"), "dev");
        if (dev == NULL || (target != NULL && g_strcmp0(dev, target) != 0))
            continue;
        *ret_bus = dv_virt_xml_prop(dv_virt_xml_child(d, "target"), "bus");
        *ret_target = g_steal_pointer(&dev);
        return TRUE;
    }
    return FALSE;
}

/* A free target name for a new drive on @bus ("hd" for IDE, "sd" for
 * SATA), or NULL. */
static char *
dv_virt_cdrom_free_target(xmlDoc *doc, const char *bus)
{
    const char *prefix = g_strcmp0(bus, "ide") == 0 ? "hd" : "sd";
    xmlNode *devices = dv_virt_xml_child(xmlDocGetRootElement(doc), "devices");
    g_autoptr(GHashTable) used = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

    for (xmlNode *d = devices != NULL ? devices->children : NULL; d != NULL; d = d->next) {
        char *dev;
        if (d->type != XML_ELEMENT_NODE || strcmp((const char *)d->name, "disk") != 0)
            continue;
        dev = dv_virt_xml_prop(dv_virt_xml_child(d, "target"), "dev");
        if (dev != NULL)
            g_hash_table_add(used, dev);
    }
    /* IDE has four places (two buses, two units). */
    for (char c = 'a'; c <= (g_strcmp0(bus, "ide") == 0 ? 'd' : 'z'); c++) {
        g_autofree char *t = g_strdup_printf("%s%c", prefix, c);
        if (!g_hash_table_contains(used, t))
            return g_steal_pointer(&t);
    }
    return NULL;
}

static char *
dv_virt_cdrom_xml(const char *path, const char *target, const char *bus)
{
    g_autofree char *esc = path != NULL ? g_markup_escape_text(path, -1) : NULL;
    g_autofree char *source =
        esc != NULL ? g_strdup_printf("<source file='%s'/>", esc) : g_strdup("");

    return g_strdup_printf("<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>"
                           "%s<target dev='%s' bus='%s'/><readonly/></disk>",
                           source, target, bus);
}

JsonObject *
dv_virt_domain_cdrom_change(DvVirtHost *host, const char *uuid, const char *path,
                            const char *target, GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(JsonObject) result = json_object_new();
    g_autofree char *dev = NULL;
    g_autofree char *bus = NULL;
    g_autofree char *xml = NULL;
    char *text;
    int active;
    guint flags = VIR_DOMAIN_AFFECT_CONFIG;

    g_return_val_if_fail(host != NULL, NULL);
    if (path != NULL && !g_path_is_absolute(path)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "volume",
                           "volume: an ISO is given by its absolute path on the host");
        return NULL;
    }
    if (target != NULL && !dv_validate_name("target", target, error))
        return NULL;
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return NULL;
    active = virDomainIsActive(dom);
    if (active < 0)
        return dv_virt_op_fail_null(&op, error, "cannot read the state of domain %s", uuid);
    /* The running domain's drives when it runs (a drive added for the
     * next boot cannot take a medium now), else the definition's. */
    text = virDomainGetXMLDesc(dom, active == 1 ? 0 : VIR_DOMAIN_XML_INACTIVE);
    if (text == NULL)
        return dv_virt_op_fail_null(&op, error, "cannot read domain %s", uuid);
    doc = dv_virt_xml_parse(text, error);
    free(text);
    if (doc == NULL)
        return NULL;
    if (!dv_virt_cdrom_find(doc, target, &dev, &bus)) {
        g_autofree char *machine = NULL;
        if (target != NULL) {
            dv_set_field_error(error, DV_ERROR_NOT_FOUND, "target",
                               "target: domain %s has no CD-ROM drive %s", uuid, target);
            return NULL;
        }
        if (path == NULL) {
            dv_set_field_error(error, DV_ERROR_NOT_FOUND, "cdrom",
                               "cdrom: domain %s has no CD-ROM drive to eject", uuid);
            return NULL;
        }
        if (active == 1) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "cdrom",
                               "cdrom: domain %s is running and has no CD-ROM drive; a drive is "
                               "added only while the VM is shut off (IDE and SATA take no "
                               "hot-plugged drive)",
                               uuid);
            return NULL;
        }
        /* q35 has SATA and no IDE; pc (i440fx) has IDE. */
        machine = dv_virt_xml_prop(
            dv_virt_xml_child(dv_virt_xml_child(xmlDocGetRootElement(doc), "os"), "type"),
            "machine");
        bus = g_strdup(machine != NULL && strstr(machine, "q35") != NULL ? "sata" : "ide");
        dev = dv_virt_cdrom_free_target(doc, bus);
        if (dev == NULL) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "cdrom",
                               "cdrom: domain %s has no free %s place for a CD-ROM drive", uuid,
                               bus);
            return NULL;
        }
        xml = dv_virt_cdrom_xml(path, dev, bus);
        if (virDomainAttachDeviceFlags(dom, xml, VIR_DOMAIN_AFFECT_CONFIG) < 0)
            return dv_virt_op_fail_null(&op, error, "cannot add a CD-ROM drive to domain %s", uuid);
        json_object_set_boolean_member(result, "drive_added", TRUE);
    } else {
        xml = dv_virt_cdrom_xml(path, dev, bus != NULL ? bus : "ide");
        if (active == 1)
            flags |= VIR_DOMAIN_AFFECT_LIVE;
        /* An eject goes through a tray the guest has locked. */
        if (path == NULL)
            flags |= VIR_DOMAIN_DEVICE_MODIFY_FORCE;
        if (virDomainUpdateDeviceFlags(dom, xml, flags) < 0)
            return dv_virt_op_fail_null(&op, error, "cannot %s the CD-ROM of domain %s",
                                        path != NULL ? "change the medium in" : "eject", uuid);
        json_object_set_boolean_member(result, "drive_added", FALSE);
    }
    json_object_set_string_member(result, "target", dev);
    json_object_set_string_member(result, "bus", bus);
    if (path != NULL)
        json_object_set_string_member(result, "path", path);
    else
        json_object_set_null_member(result, "path");
    json_object_set_boolean_member(result, "live", active == 1 && (flags & VIR_DOMAIN_AFFECT_LIVE));
    return g_steal_pointer(&result);
}
