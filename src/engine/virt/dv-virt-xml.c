#define G_LOG_DOMAIN "DvVirtXml"

#include "dv-virt-private.h"

#include "dv-json.h"
#include "dv-validate.h"

#include <libxml/xmlwriter.h>
#include <string.h>

#define DV_VIRT_MAX_DISKS 16
#define DV_VIRT_MAX_NICS 8

static void
dv_virt_xml_writer_free(xmlTextWriterPtr w)
{
    if (w != NULL)
        xmlFreeTextWriter(w);
}

static void
dv_virt_xml_buffer_free(xmlBufferPtr b)
{
    if (b != NULL)
        xmlBufferFree(b);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlTextWriter, dv_virt_xml_writer_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlBuffer, dv_virt_xml_buffer_free)

/* The writer's calls return -1 only when out of memory; a small helper set
 * keeps the builder readable and tracks failure once. */
typedef struct {
    xmlTextWriterPtr w;
    gboolean failed;
} DvXmlOut;

static void
dv_out_start(DvXmlOut *o, const char *name)
{
    if (xmlTextWriterStartElement(o->w, BAD_CAST name) < 0)
        o->failed = TRUE;
}

static void
dv_out_end(DvXmlOut *o)
{
    if (xmlTextWriterEndElement(o->w) < 0)
        o->failed = TRUE;
}

static void
dv_out_attr(DvXmlOut *o, const char *name, const char *value)
{
    if (value != NULL && xmlTextWriterWriteAttribute(o->w, BAD_CAST name, BAD_CAST value) < 0)
        o->failed = TRUE;
}

static void
dv_out_text(DvXmlOut *o, const char *name, const char *text)
{
    if (xmlTextWriterWriteElement(o->w, BAD_CAST name, BAD_CAST text) < 0)
        o->failed = TRUE;
}

/* <name attr='value'/> */
static void
dv_out_empty(DvXmlOut *o, const char *name, const char *attr, const char *value)
{
    dv_out_start(o, name);
    if (attr != NULL)
        dv_out_attr(o, attr, value);
    dv_out_end(o);
}

static gboolean
dv_virt_spec_path_ok(const char *field, const char *path, GError **error)
{
    if (path == NULL || path[0] != '/' || strlen(path) > 4096 ||
        !g_utf8_validate(path, -1, NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "must be an absolute path of at most 4096 bytes");
        return FALSE;
    }
    for (const char *p = path; *p != '\0'; p++) {
        if ((guchar)*p < 0x20) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                               "must not contain control characters");
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean
dv_virt_spec_one_of(const char *field, const char *value, const char *const *allowed,
                    GError **error)
{
    g_autofree char *list = NULL;

    if (g_strv_contains(allowed, value))
        return TRUE;
    list = g_strjoinv("\", \"", (char **)allowed);
    dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "must be one of \"%s\"", list);
    return FALSE;
}

/* 1-3 distinct of disk, cdrom, network (written as <os><boot dev>). */
static gboolean
dv_virt_spec_boot_order_ok(JsonArray *order, GError **error)
{
    static const char *const words[] = { "disk", "cdrom", "network", NULL };
    guint n = order != NULL ? json_array_get_length(order) : 1;

    if (n < 1 || n > 3) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "boot_order",
                           "boot_order: one to three of disk, cdrom, network");
        return FALSE;
    }
    for (guint i = 0; order != NULL && i < n; i++) {
        JsonNode *e = json_array_get_element(order, i);
        const char *w = JSON_NODE_HOLDS_VALUE(e) && json_node_get_value_type(e) == G_TYPE_STRING
                            ? json_node_get_string(e)
                            : NULL;
        if (w == NULL || !g_strv_contains(words, w)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "boot_order",
                               "boot_order: entry %u is not one of disk, cdrom, network", i + 1);
            return FALSE;
        }
        for (guint k = 0; k < i; k++) {
            if (g_strcmp0(json_array_get_string_element(order, k), w) == 0) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "boot_order",
                                   "boot_order: %s is given twice", w);
                return FALSE;
            }
        }
    }
    return TRUE;
}

static const DvFieldSpec dv_virt_spec_fields[] = {
    { "name", DV_FIELD_STRING, TRUE },
    { "uuid", DV_FIELD_STRING_OR_NULL, FALSE },
    { "description", DV_FIELD_STRING_OR_NULL, FALSE },
    { "domain_type", DV_FIELD_STRING_OR_NULL, FALSE },
    { "vcpus", DV_FIELD_INT, FALSE },
    { "memory_mib", DV_FIELD_INT, TRUE },
    { "generation", DV_FIELD_INT, FALSE },
    { "secure_boot", DV_FIELD_BOOL, FALSE },
    { "graphics", DV_FIELD_STRING, FALSE },
    { "graphics_listen", DV_FIELD_STRING, FALSE },
    { "serial_log", DV_FIELD_STRING_OR_NULL, FALSE },
    { "serial_append", DV_FIELD_BOOL, FALSE },
    { "kernel", DV_FIELD_STRING_OR_NULL, FALSE },
    { "initrd", DV_FIELD_STRING_OR_NULL, FALSE },
    { "cmdline", DV_FIELD_STRING_OR_NULL, FALSE },
    { "disks", DV_FIELD_ARRAY, FALSE },
    { "networks", DV_FIELD_ARRAY, FALSE },
    { "boot_order", DV_FIELD_ARRAY, FALSE },
    { NULL, 0, FALSE },
};

static const DvFieldSpec dv_virt_disk_fields[] = {
    /* Required but for a CD-ROM drive, which may be empty. */
    { "path", DV_FIELD_STRING, FALSE },
    { "format", DV_FIELD_STRING, FALSE },
    { "device", DV_FIELD_STRING, FALSE },
    { "readonly", DV_FIELD_BOOL, FALSE },
    { "bus", DV_FIELD_STRING, FALSE },
    { "transient", DV_FIELD_BOOL, FALSE },
    { NULL, 0, FALSE },
};

static const DvFieldSpec dv_virt_nic_fields[] = {
    { "network", DV_FIELD_STRING, FALSE },
    { "bridge", DV_FIELD_STRING, FALSE },
    { "mac", DV_FIELD_STRING, FALSE },
    { "model", DV_FIELD_STRING, FALSE },
    { NULL, 0, FALSE },
};

/* Target device names per bus: vda.. for virtio, sda.. for sata/scsi,
 * hda.. for ide. */
static char *
dv_virt_disk_target(const char *bus, guint *counters)
{
    const char *prefix;
    guint *counter;

    if (g_strcmp0(bus, "virtio") == 0) {
        prefix = "vd";
        counter = &counters[0];
    } else if (g_strcmp0(bus, "ide") == 0) {
        prefix = "hd";
        counter = &counters[1];
    } else {
        prefix = "sd";
        counter = &counters[2];
    }
    return g_strdup_printf("%s%c", prefix, 'a' + (*counter)++);
}

static gboolean
dv_virt_write_disks(DvXmlOut *o, JsonArray *disks, guint generation, GError **error)
{
    static const char *const formats[] = { "qcow2", "raw", NULL };
    static const char *const devices[] = { "disk", "cdrom", NULL };
    static const char *const buses[] = { "virtio", "sata", "ide", "scsi", NULL };
    guint counters[3] = { 0, 0, 0 };
    gboolean need_scsi = FALSE;
    guint n = disks != NULL ? json_array_get_length(disks) : 0;

    if (n > DV_VIRT_MAX_DISKS) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "disks", "must have at most %d entries",
                           DV_VIRT_MAX_DISKS);
        return FALSE;
    }
    for (guint i = 0; i < n; i++) {
        JsonNode *node = json_array_get_element(disks, i);
        g_autofree char *prefix = g_strdup_printf("disks[%u].", i);
        g_autofree char *f_path = g_strdup_printf("disks[%u].path", i);
        g_autofree char *f_format = g_strdup_printf("disks[%u].format", i);
        g_autofree char *f_device = g_strdup_printf("disks[%u].device", i);
        g_autofree char *f_bus = g_strdup_printf("disks[%u].bus", i);
        g_autofree char *target = NULL;
        JsonObject *disk;
        const char *path;
        const char *format;
        const char *device;
        const char *bus;

        if (!JSON_NODE_HOLDS_OBJECT(node)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, prefix, "must be an object");
            return FALSE;
        }
        disk = json_node_get_object(node);
        if (!dv_json_check_fields(disk, dv_virt_disk_fields, prefix, error))
            return FALSE;
        path = dv_json_get_string(disk, "path", NULL);
        device = dv_json_get_string(disk, "device", "disk");
        format = dv_json_get_string(disk, "format", g_strcmp0(device, "cdrom") == 0 ? "raw" : "qcow2");
        /* A CD-ROM cannot sit on virtio: SATA on q35, IDE on pc. */
        bus = dv_json_get_string(disk, "bus", g_strcmp0(device, "cdrom") == 0
                                                  ? (generation == 2 ? "sata" : "ide")
                                                  : "virtio");
        if ((path != NULL || g_strcmp0(device, "cdrom") != 0) &&
            !dv_virt_spec_path_ok(f_path, path, error))
            return FALSE;
        if (!dv_virt_spec_one_of(f_format, format, formats, error) ||
            !dv_virt_spec_one_of(f_device, device, devices, error) ||
            !dv_virt_spec_one_of(f_bus, bus, buses, error))
            return FALSE;
        if (generation == 2 && g_strcmp0(bus, "ide") == 0) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f_bus,
                               "must not be \"ide\" for generation 2 (q35 has no IDE)");
            return FALSE;
        }
        if (g_strcmp0(device, "cdrom") == 0 && g_strcmp0(bus, "virtio") == 0) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f_bus,
                               "must not be \"virtio\" for a cdrom");
            return FALSE;
        }
        /* A transient disk on a shared backing image (pooled catalog
         * machines): QEMU makes its overlay beside the image at start and
         * libvirt deletes it at stop.  libvirt hot-plugs such a disk once
         * QEMU runs, so it must be a writable virtio or SCSI disk (the
         * domain has ACPI, written below). */
        if (dv_json_get_bool(disk, "transient", FALSE) &&
            (g_strcmp0(device, "disk") != 0 || dv_json_get_bool(disk, "readonly", FALSE) ||
             (g_strcmp0(bus, "virtio") != 0 && g_strcmp0(bus, "scsi") != 0))) {
            g_autofree char *f_tr = g_strdup_printf("disks[%u].transient", i);
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f_tr,
                               "%s: only a writable virtio or scsi disk can be transient", f_tr);
            return FALSE;
        }
        if (g_strcmp0(bus, "scsi") == 0)
            need_scsi = TRUE;
        target = dv_virt_disk_target(bus, counters);

        dv_out_start(o, "disk");
        dv_out_attr(o, "type", "file");
        dv_out_attr(o, "device", device);
        dv_out_start(o, "driver");
        dv_out_attr(o, "name", "qemu");
        dv_out_attr(o, "type", format);
        dv_out_end(o);
        if (path != NULL)
            dv_out_empty(o, "source", "file", path);
        dv_out_start(o, "target");
        dv_out_attr(o, "dev", target);
        dv_out_attr(o, "bus", bus);
        dv_out_end(o);
        if (dv_json_get_bool(disk, "readonly", g_strcmp0(device, "cdrom") == 0))
            dv_out_empty(o, "readonly", NULL, NULL);
        if (dv_json_get_bool(disk, "transient", FALSE))
            dv_out_empty(o, "transient", "shareBacking", "yes");
        dv_out_end(o);
    }
    if (need_scsi) {
        dv_out_start(o, "controller");
        dv_out_attr(o, "type", "scsi");
        dv_out_attr(o, "model", "virtio-scsi");
        dv_out_end(o);
    }
    return TRUE;
}

static gboolean
dv_virt_mac_ok(const char *mac)
{
    if (strlen(mac) != 17)
        return FALSE;
    for (guint i = 0; i < 17; i++) {
        if (i % 3 == 2 ? mac[i] != ':' : !g_ascii_isxdigit(mac[i]))
            return FALSE;
    }
    return TRUE;
}

static gboolean
dv_virt_write_nics(DvXmlOut *o, JsonArray *nics, GError **error)
{
    guint n = nics != NULL ? json_array_get_length(nics) : 0;

    if (n > DV_VIRT_MAX_NICS) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "networks",
                           "must have at most %d entries", DV_VIRT_MAX_NICS);
        return FALSE;
    }
    for (guint i = 0; i < n; i++) {
        JsonNode *node = json_array_get_element(nics, i);
        g_autofree char *prefix = g_strdup_printf("networks[%u].", i);
        g_autofree char *f_mac = g_strdup_printf("networks[%u].mac", i);
        JsonObject *nic;
        const char *network;
        const char *bridge;
        const char *mac;

        if (!JSON_NODE_HOLDS_OBJECT(node)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, prefix, "must be an object");
            return FALSE;
        }
        nic = json_node_get_object(node);
        if (!dv_json_check_fields(nic, dv_virt_nic_fields, prefix, error))
            return FALSE;
        network = dv_json_get_string(nic, "network", NULL);
        bridge = dv_json_get_string(nic, "bridge", NULL);
        mac = dv_json_get_string(nic, "mac", NULL);
        if ((network == NULL) == (bridge == NULL)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, prefix,
                               "must have exactly one of \"network\" and \"bridge\"");
            return FALSE;
        }
        if (!dv_validate_name(network != NULL ? "network" : "bridge",
                              network != NULL ? network : bridge, error)) {
            g_prefix_error(error, "%s: ", prefix);
            return FALSE;
        }
        if (mac != NULL && !dv_virt_mac_ok(mac)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f_mac,
                               "must be a MAC address like 52:54:00:12:34:56");
            return FALSE;
        }
        dv_out_start(o, "interface");
        dv_out_attr(o, "type", network != NULL ? "network" : "bridge");
        if (mac != NULL)
            dv_out_empty(o, "mac", "address", mac);
        dv_out_empty(o, "source", network != NULL ? "network" : "bridge",
                     network != NULL ? network : bridge);
        dv_out_empty(o, "model", "type", dv_json_get_string(nic, "model", "virtio"));
        dv_out_end(o);
    }
    return TRUE;
}

static void
dv_virt_write_os(DvXmlOut *o, const char *domain_type, guint generation, gboolean secure_boot,
                 JsonObject *spec)
{
    const char *kernel = dv_json_get_string(spec, "kernel", NULL);
    const char *initrd = dv_json_get_string(spec, "initrd", NULL);
    const char *cmdline = dv_json_get_string(spec, "cmdline", NULL);
    JsonArray *boot_order = dv_json_get_array(spec, "boot_order");
    gboolean test = g_strcmp0(domain_type, "test") == 0;

    dv_out_start(o, "os");
    if (generation == 2)
        dv_out_attr(o, "firmware", "efi");
    dv_out_start(o, "type");
    dv_out_attr(o, "arch", test ? "i686" : "x86_64");
    if (!test)
        dv_out_attr(o, "machine", generation == 2 ? "q35" : "pc");
    if (xmlTextWriterWriteString(o->w, BAD_CAST "hvm") < 0)
        o->failed = TRUE;
    dv_out_end(o);
    if (generation == 2) {
        /* libvirt 9.0 picks the firmware from /usr/share/qemu/firmware
         * descriptors: secure-boot + enrolled-keys selects
         * OVMF_CODE_4M.ms.fd with the Microsoft keys pre-enrolled. */
        dv_out_start(o, "firmware");
        dv_out_start(o, "feature");
        dv_out_attr(o, "enabled", secure_boot ? "yes" : "no");
        dv_out_attr(o, "name", "enrolled-keys");
        dv_out_end(o);
        dv_out_start(o, "feature");
        dv_out_attr(o, "enabled", secure_boot ? "yes" : "no");
        dv_out_attr(o, "name", "secure-boot");
        dv_out_end(o);
        dv_out_end(o);
        if (secure_boot) {
            dv_out_start(o, "loader");
            dv_out_attr(o, "secure", "yes");
            dv_out_end(o);
        }
    }
    if (kernel != NULL)
        dv_out_text(o, "kernel", kernel);
    if (initrd != NULL)
        dv_out_text(o, "initrd", initrd);
    if (cmdline != NULL)
        dv_out_text(o, "cmdline", cmdline);
    if (kernel == NULL && boot_order == NULL)
        dv_out_empty(o, "boot", "dev", "hd");
    for (guint i = 0; kernel == NULL && boot_order != NULL && i < json_array_get_length(boot_order);
         i++) {
        const char *word = json_array_get_string_element(boot_order, i);
        dv_out_empty(o, "boot", "dev", g_strcmp0(word, "disk") == 0 ? "hd" : word);
    }
    dv_out_end(o);

    dv_out_start(o, "features");
    dv_out_empty(o, "acpi", NULL, NULL);
    dv_out_empty(o, "apic", NULL, NULL);
    if (generation == 2 && secure_boot)
        dv_out_empty(o, "smm", "state", "on");
    dv_out_end(o);
}

/* A file serial console.  With @append QEMU opens it without truncating:
 * a migration's destination QEMU opens the same path while the source
 * still writes it (both hosts see the file on shared storage). */
static void
dv_virt_write_serial_source(DvXmlOut *o, const char *path, gboolean append)
{
    dv_out_start(o, "source");
    dv_out_attr(o, "path", path);
    if (append)
        dv_out_attr(o, "append", "on");
    dv_out_end(o);
}

char *
dv_virt_domain_xml_new(JsonObject *spec, GError **error)
{
    static const char *const domain_types[] = { "kvm", "qemu", "test", NULL };
    static const char *const graphics_types[] = { "vnc", "spice", "none", NULL };
    g_autoptr(xmlBuffer) buf = NULL;
    g_autoptr(xmlTextWriter) w = NULL;
    DvXmlOut out = { NULL, FALSE };
    DvXmlOut *o = &out;
    const char *name;
    const char *uuid;
    const char *description;
    const char *domain_type;
    const char *serial_log;
    const char *graphics;
    const char *graphics_listen;
    g_autoptr(GInetAddress) listen_addr = NULL;
    g_autofree char *memory = NULL;
    g_autofree char *vcpus = NULL;
    gint64 generation;
    gboolean secure_boot;

    g_return_val_if_fail(spec != NULL, NULL);
    if (!dv_json_check_fields(spec, dv_virt_spec_fields, NULL, error))
        return NULL;
    name = dv_json_get_string(spec, "name", NULL);
    uuid = dv_json_get_string(spec, "uuid", NULL);
    description = dv_json_get_string(spec, "description", NULL);
    domain_type = dv_json_get_string(spec, "domain_type", DV_VIRT_DEFAULT_DOMAIN_TYPE);
    serial_log = dv_json_get_string(spec, "serial_log", NULL);
    graphics = dv_json_get_string(spec, "graphics", "none");
    graphics_listen = dv_json_get_string(spec, "graphics_listen", DV_VIRT_GRAPHICS_LISTEN);
    generation = dv_json_get_int(spec, "generation", 1);
    secure_boot = dv_json_get_bool(spec, "secure_boot", generation == 2);

    if (!dv_validate_name("name", name, error))
        return NULL;
    if (uuid != NULL && !dv_validate_id("uuid", uuid, error))
        return NULL;
    if (description != NULL &&
        !dv_validate_text("description", description, DV_DESCRIPTION_MAX, error))
        return NULL;
    if (!dv_virt_spec_one_of("domain_type", domain_type, domain_types, error))
        return NULL;
    if (!dv_validate_range("vcpus", dv_json_get_int(spec, "vcpus", 1), 1, DV_VIRT_MAX_VCPUS, error))
        return NULL;
    if (!dv_validate_range("memory_mib", dv_json_get_int(spec, "memory_mib", 0), 16,
                           DV_VIRT_MAX_MEMORY_MIB, error))
        return NULL;
    if (!dv_validate_range("generation", generation, 1, 2, error))
        return NULL;
    if (generation == 1 && secure_boot) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "secure_boot",
                           "must be false for generation 1 (BIOS) machines");
        return NULL;
    }
    if (serial_log != NULL && !dv_virt_spec_path_ok("serial_log", serial_log, error))
        return NULL;
    if (!dv_virt_spec_one_of("graphics", graphics, graphics_types, error))
        return NULL;
    /* "": no address, libvirt takes the host's qemu.conf vnc_listen. */
    listen_addr =
        graphics_listen[0] != '\0' ? g_inet_address_new_from_string(graphics_listen) : NULL;
    if (listen_addr == NULL && graphics_listen[0] != '\0') {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "graphics_listen",
                           "graphics_listen: must be an IPv4 or IPv6 address");
        return NULL;
    }
    if (dv_json_get_string(spec, "kernel", NULL) != NULL &&
        !dv_virt_spec_path_ok("kernel", dv_json_get_string(spec, "kernel", NULL), error))
        return NULL;
    if (dv_json_get_string(spec, "initrd", NULL) != NULL &&
        !dv_virt_spec_path_ok("initrd", dv_json_get_string(spec, "initrd", NULL), error))
        return NULL;
    if (dv_json_get_string(spec, "cmdline", NULL) != NULL &&
        !dv_validate_text("cmdline", dv_json_get_string(spec, "cmdline", NULL), 2048, error))
        return NULL;
    if (!dv_virt_spec_boot_order_ok(dv_json_get_array(spec, "boot_order"), error))
        return NULL;

    buf = xmlBufferCreate();
    w = xmlNewTextWriterMemory(buf, 0);
    if (buf == NULL || w == NULL) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_INTERNAL, "out of memory building domain XML");
        return NULL;
    }
    out.w = w;
    xmlTextWriterSetIndent(w, 1);
    xmlTextWriterSetIndentString(w, BAD_CAST "  ");

    memory = g_strdup_printf("%" G_GINT64_FORMAT, dv_json_get_int(spec, "memory_mib", 0));
    vcpus = g_strdup_printf("%" G_GINT64_FORMAT, dv_json_get_int(spec, "vcpus", 1));

    dv_out_start(o, "domain");
    dv_out_attr(o, "type", domain_type);
    dv_out_text(o, "name", name);
    if (uuid != NULL)
        dv_out_text(o, "uuid", uuid);
    if (description != NULL)
        dv_out_text(o, "description", description);
    dv_out_start(o, "memory");
    dv_out_attr(o, "unit", "MiB");
    if (xmlTextWriterWriteString(w, BAD_CAST memory) < 0)
        out.failed = TRUE;
    dv_out_end(o);
    dv_out_text(o, "vcpu", vcpus);
    dv_virt_write_os(o, domain_type, (guint)generation, secure_boot, spec);
    dv_out_start(o, "devices");
    if (!dv_virt_write_disks(o, dv_json_get_array(spec, "disks"), (guint)generation, error))
        return NULL;
    if (!dv_virt_write_nics(o, dv_json_get_array(spec, "networks"), error))
        return NULL;
    /* Serial console: a file the caller can read, or a pty. */
    dv_out_start(o, "serial");
    dv_out_attr(o, "type", serial_log != NULL ? "file" : "pty");
    if (serial_log != NULL)
        dv_virt_write_serial_source(o, serial_log, dv_json_get_bool(spec, "serial_append", FALSE));
    dv_out_empty(o, "target", "port", "0");
    dv_out_end(o);
    dv_out_start(o, "console");
    dv_out_attr(o, "type", serial_log != NULL ? "file" : "pty");
    if (serial_log != NULL)
        dv_virt_write_serial_source(o, serial_log, dv_json_get_bool(spec, "serial_append", FALSE));
    dv_out_start(o, "target");
    dv_out_attr(o, "type", "serial");
    dv_out_attr(o, "port", "0");
    dv_out_end(o);
    dv_out_end(o);
    if (g_strcmp0(graphics, "none") != 0) {
        /* The display's TCP listener is locked: a random password that
         * expired in 1970.  droverd reaches the display through
         * virDomainOpenGraphicsFD (dv-virt-graphics.c), which needs none. */
        g_autofree char *passwd = dv_virt_graphics_password_new();
        dv_out_start(o, "graphics");
        dv_out_attr(o, "type", graphics);
        dv_out_attr(o, "autoport", "yes");
        dv_out_attr(o, "passwd", passwd);
        dv_out_attr(o, "passwdValidTo", "1970-01-01T00:00:01");
        if (graphics_listen[0] != '\0') {
            dv_out_start(o, "listen");
            dv_out_attr(o, "type", "address");
            dv_out_attr(o, "address", graphics_listen);
            dv_out_end(o);
        }
        dv_out_end(o);
    }
    dv_out_empty(o, "memballoon", "model", "virtio");
    dv_out_end(o); /* devices */
    dv_out_end(o); /* domain */
    if (xmlTextWriterEndDocument(w) < 0)
        out.failed = TRUE;
    g_clear_pointer(&w, dv_virt_xml_writer_free);
    if (out.failed) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot build domain XML");
        return NULL;
    }
    return g_strndup((const char *)xmlBufferContent(buf), xmlBufferLength(buf));
}
