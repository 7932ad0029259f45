#define G_LOG_DOMAIN "DvVirtSnapshot"

/* A domain's snapshots, of two kinds (docs/VIRT.md, "Snapshots"):
 *
 *  - internal: inside each qcow2 disk, with the memory of a running
 *    domain (QEMU's savevm); libvirt takes, reverts and deletes them.
 *    Not for UEFI domains (pflash NVRAM) nor raw disks.
 *  - external: a new qcow2 layer on each of the domain's own disks (the
 *    file under it is frozen as the snapshot's state) and, for a running
 *    domain asked to keep it, the memory in a file beside its first disk.
 *    libvirt 9.0 takes them but neither reverts nor deletes them (9.9
 *    does), so Drover does both here, for the newest external snapshot
 *    only (one without children): revert stops the domain, makes each
 *    layer anew, empty, on the frozen file, and restores the memory file
 *    when there is one (the guest runs on from the snapshot); delete
 *    merges each layer into the file under it (active block commit: a
 *    shut-off domain is started paused for it and stopped again), then
 *    removes the memory file and the metadata.
 *
 * A domain's snapshots are all of one kind: an internal snapshot inside a
 * file that became an external snapshot's frozen base could no longer be
 * reverted, and an external layer over internal snapshots would hide them. */

#include "dv-virt-private.h"

#include "dv-validate.h"

#include <string.h>

/* How long a merge of one layer may take before the delete gives up. */
#define DV_VIRT_SNAPSHOT_COMMIT_TIMEOUT_MS (10 * 60 * 1000)

typedef struct {
    char *target;
    char *path;
    char *format;
    gboolean owned; /* writable, not shared, not a CD-ROM: the domain's own */
} DvSnapDisk;

static void
dv_snap_disk_free(DvSnapDisk *d)
{
    if (d == NULL)
        return;
    g_free(d->target);
    g_free(d->path);
    g_free(d->format);
    g_free(d);
}

/* The disks of the <domain> element @root. */
static GPtrArray *
dv_virt_snapshot_disks_of(xmlNode *root)
{
    GPtrArray *disks = g_ptr_array_new_with_free_func((GDestroyNotify)dv_snap_disk_free);
    xmlNode *devices = dv_virt_xml_child(root, "devices");

    for (xmlNode *d = devices != NULL ? devices->children : NULL; d != NULL; d = d->next) {
        g_autofree char *device = NULL;
        DvSnapDisk *disk;

        if (d->type != XML_ELEMENT_NODE || xmlStrcmp(d->name, BAD_CAST "disk") != 0)
            continue;
        device = dv_virt_xml_prop(d, "device");
        disk = g_new0(DvSnapDisk, 1);
        disk->target = dv_virt_xml_prop(dv_virt_xml_child(d, "target"), "dev");
        disk->path = dv_virt_xml_prop(dv_virt_xml_child(d, "source"), "file");
        disk->format = dv_virt_xml_prop(dv_virt_xml_child(d, "driver"), "type");
        disk->owned = (device == NULL || g_strcmp0(device, "disk") == 0) &&
                      dv_virt_xml_child(d, "readonly") == NULL &&
                      dv_virt_xml_child(d, "shareable") == NULL;
        if (disk->target == NULL) {
            dv_snap_disk_free(disk);
            continue;
        }
        g_ptr_array_add(disks, disk);
    }
    return disks;
}

static const DvSnapDisk *
dv_virt_snapshot_disk_find(GPtrArray *disks, const char *target)
{
    for (guint i = 0; i < disks->len; i++) {
        const DvSnapDisk *d = g_ptr_array_index(disks, i);
        if (g_strcmp0(d->target, target) == 0)
            return d;
    }
    return NULL;
}

static xmlDoc *
dv_virt_snapshot_domain_doc(DvVirtOp *op, virDomainPtr dom, const char *uuid, GError **error)
{
    char *xml = virDomainGetXMLDesc(dom, 0);
    xmlDoc *doc;

    if (xml == NULL)
        return dv_virt_op_fail_null(op, error, "cannot read domain %s", uuid);
    doc = dv_virt_xml_parse(xml, error);
    free(xml);
    return doc;
}

static gboolean
dv_virt_snapshot_is_uefi(xmlNode *root)
{
    xmlNode *os = dv_virt_xml_child(root, "os");
    g_autofree char *firmware = dv_virt_xml_prop(os, "firmware");
    g_autofree char *loader_type = dv_virt_xml_prop(dv_virt_xml_child(os, "loader"), "type");
    return g_strcmp0(firmware, "efi") == 0 || g_strcmp0(loader_type, "pflash") == 0;
}

/* "internal" or "external", from a snapshot's XML root. */
static const char *
dv_virt_snapshot_kind_of(xmlNode *sroot)
{
    g_autofree char *memory = dv_virt_xml_prop(dv_virt_xml_child(sroot, "memory"), "snapshot");
    xmlNode *disks = dv_virt_xml_child(sroot, "disks");

    if (g_strcmp0(memory, "external") == 0)
        return "external";
    for (xmlNode *d = disks != NULL ? disks->children : NULL; d != NULL; d = d->next) {
        g_autofree char *how = NULL;
        if (d->type != XML_ELEMENT_NODE)
            continue;
        how = dv_virt_xml_prop(d, "snapshot");
        if (g_strcmp0(how, "external") == 0)
            return "external";
    }
    return "internal";
}

void
dv_virt_snapshot_entry_add_kind(JsonObject *obj, xmlNode *sroot)
{
    g_autofree char *memory = dv_virt_xml_prop(dv_virt_xml_child(sroot, "memory"), "snapshot");
    g_autofree char *state = dv_virt_xml_child_text(sroot, "state");

    json_object_set_string_member(obj, "kind", dv_virt_snapshot_kind_of(sroot));
    /* Internal snapshots of a running domain always hold its memory; the
     * test driver writes no <memory>. */
    json_object_set_boolean_member(obj, "memory",
                                   g_strcmp0(memory, "internal") == 0 ||
                                       g_strcmp0(memory, "external") == 0 ||
                                       (memory == NULL && (g_strcmp0(state, "running") == 0 ||
                                                           g_strcmp0(state, "paused") == 0)));
}

/* The snapshot @snap's XML parsed; owned. */
static xmlDoc *
dv_virt_snapshot_doc(DvVirtOp *op, virDomainSnapshotPtr snap, GError **error)
{
    char *raw = virDomainSnapshotGetXMLDesc(snap, 0);
    xmlDoc *doc;

    if (raw == NULL)
        return dv_virt_op_fail_null(op, error, "cannot read snapshot %s",
                                    virDomainSnapshotGetName(snap));
    doc = dv_virt_xml_parse(raw, error);
    free(raw);
    return doc;
}

/* Kinds of the domain's existing snapshots: *@ret_internal, *@ret_external. */
static gboolean
dv_virt_snapshot_kinds(DvVirtOp *op, virDomainPtr dom, gboolean *ret_internal,
                       gboolean *ret_external, GError **error)
{
    g_autoptr(DvVirtSnapList) snaps = NULL;
    gboolean internal = FALSE, external = FALSE;
    int n = virDomainListAllSnapshots(dom, &snaps, 0);

    if (n < 0)
        return dv_virt_op_fail(op, error, "cannot list snapshots of %s", virDomainGetName(dom));
    for (int i = 0; i < n; i++) {
        g_autoptr(xmlDoc) doc = dv_virt_snapshot_doc(op, snaps[i], error);
        if (doc == NULL)
            return FALSE;
        if (strcmp(dv_virt_snapshot_kind_of(xmlDocGetRootElement(doc)), "external") == 0)
            external = TRUE;
        else
            internal = TRUE;
    }
    *ret_internal = internal;
    *ret_external = external;
    return TRUE;
}

/* The volume behind @path; when libvirt does not know the file yet (a
 * layer qemu-img made behind the pool's back), the active pools over its
 * directory are refreshed and it is looked up again.  NULL with no error
 * set when the file is in no pool (or gone). */
virStorageVolPtr
dv_virt_volume_lookup_refreshed(DvVirtOp *op, const char *path, GError **error)
{
    g_autoptr(DvVirtPoolList) pools = NULL;
    g_autofree char *dir = NULL;
    virStorageVolPtr vol = virStorageVolLookupByPath(op->conn, path);
    const virError *err;
    int n;

    if (vol != NULL)
        return vol;
    err = virGetLastError();
    if (err != NULL && err->code != VIR_ERR_NO_STORAGE_VOL)
        return dv_virt_op_fail_null(op, error, "cannot find volume %s", path);
    virResetLastError();
    dir = g_path_get_dirname(path);
    n = virConnectListAllStoragePools(op->conn, &pools, VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE);
    if (n < 0)
        return dv_virt_op_fail_null(op, error, "cannot list the storage pools");
    for (int i = 0; i < n; i++) {
        g_autoptr(xmlDoc) doc = NULL;
        g_autofree char *target = NULL;
        char *xml = virStoragePoolGetXMLDesc(pools[i], 0);

        if (xml == NULL) {
            virResetLastError();
            continue;
        }
        doc = dv_virt_xml_parse(xml, NULL);
        free(xml);
        if (doc == NULL)
            continue;
        target =
            dv_virt_xml_child_text(dv_virt_xml_child(xmlDocGetRootElement(doc), "target"), "path");
        if (g_strcmp0(target, dir) != 0)
            continue;
        if (virStoragePoolRefresh(pools[i], 0) < 0)
            virResetLastError(); /* an upload runs there: look up what is known */
        vol = virStorageVolLookupByPath(op->conn, path);
        if (vol != NULL)
            return vol;
        virResetLastError();
    }
    return NULL;
}

/* Deletes the volume behind @path; a file in no pool or gone: done. */
static gboolean
dv_virt_snapshot_remove_file(DvVirtOp *op, const char *path, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(virStorageVol) vol = dv_virt_volume_lookup_refreshed(op, path, &local);

    if (local != NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (vol == NULL)
        return TRUE;
    if (virStorageVolDelete(vol, 0) < 0)
        return dv_virt_op_fail(op, error, "cannot delete %s", path);
    return TRUE;
}

/* "<dir of @path>/<its name without the extension>-<snapshot>.qcow2" */
static char *
dv_virt_snapshot_layer_path(const char *path, const char *name)
{
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *base = g_path_get_basename(path);
    g_autofree char *file = NULL;
    char *dot = strrchr(base, '.');

    if (dot != NULL && dot != base)
        *dot = '\0';
    file = g_strdup_printf("%s-%s.qcow2", base, name);
    return g_build_filename(dir, file, NULL);
}

static char *
dv_virt_snapshot_external_xml(GPtrArray *disks, const char *name, const char *description,
                              const char *memory_file, GError **error)
{
    g_autoptr(GString) xml = g_string_new(NULL);
    g_autofree char *ename = g_markup_escape_text(name, -1);
    g_autofree char *edesc = g_markup_escape_text(description != NULL ? description : "", -1);
    guint layers = 0;

    g_string_append_printf(xml, "<domainsnapshot><name>%s</name><description>%s</description>",
                           ename, edesc);
    if (memory_file != NULL) {
        g_autofree char *emem = g_markup_escape_text(memory_file, -1);
        g_string_append_printf(xml, "<memory snapshot='external' file='%s'/>", emem);
    } else {
        g_string_append(xml, "<memory snapshot='no'/>");
    }
    g_string_append(xml, "<disks>");
    for (guint i = 0; i < disks->len; i++) {
        const DvSnapDisk *d = g_ptr_array_index(disks, i);
        g_autofree char *layer = NULL;
        g_autofree char *elayer = NULL;

        if (!d->owned) {
            g_string_append_printf(xml, "<disk name='%s' snapshot='no'/>", d->target);
            continue;
        }
        if (d->path == NULL) {
            dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "kind",
                               "kind: disk %s is no file: Drover takes external snapshots of "
                               "file disks only",
                               d->target);
            return NULL;
        }
        layer = dv_virt_snapshot_layer_path(d->path, name);
        elayer = g_markup_escape_text(layer, -1);
        g_string_append_printf(xml,
                               "<disk name='%s' snapshot='external' type='file'>"
                               "<driver type='qcow2'/><source file='%s'/></disk>",
                               d->target, elayer);
        layers++;
    }
    g_string_append(xml, "</disks></domainsnapshot>");
    if (layers == 0) {
        dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "kind",
                           "kind: the domain has no writable disk of its own to snapshot");
        return NULL;
    }
    return g_string_free(g_steal_pointer(&xml), FALSE);
}

JsonObject *
dv_virt_snapshot_create_full(DvVirtHost *host, const char *uuid, const char *name,
                             const char *description, const char *kind, gboolean memory,
                             GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(virDomainSnapshot) snap = NULL;
    g_autoptr(virDomainSnapshot) clash = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(GPtrArray) disks = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *memory_file = NULL;
    const char *why_not_internal = NULL;
    gboolean has_internal = FALSE, has_external = FALSE, running;
    unsigned int flags = VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC;
    int active;

    if (!dv_validate_name("name", name, error))
        return NULL;
    if (description != NULL &&
        !dv_validate_text("description", description, DV_DESCRIPTION_MAX, error))
        return NULL;
    if (kind != NULL && strcmp(kind, "internal") != 0 && strcmp(kind, "external") != 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "kind",
                           "kind: must be \"internal\" or \"external\"");
        return NULL;
    }
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return NULL;
    clash = virDomainSnapshotLookupByName(dom, name, 0);
    if (clash != NULL) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "name",
                           "name: domain %s already has a snapshot '%s'", uuid, name);
        return NULL;
    }
    virResetLastError();
    active = virDomainIsActive(dom);
    if (active < 0)
        return dv_virt_op_fail_null(&op, error, "cannot read the state of domain %s", uuid);
    running = active == 1;
    doc = dv_virt_snapshot_domain_doc(&op, dom, uuid, error);
    if (doc == NULL)
        return NULL;
    disks = dv_virt_snapshot_disks_of(xmlDocGetRootElement(doc));
    if (!dv_virt_snapshot_kinds(&op, dom, &has_internal, &has_external, error))
        return NULL;

    if (dv_virt_snapshot_is_uefi(xmlDocGetRootElement(doc)))
        why_not_internal = "it is a generation 2 (UEFI) machine: libvirt cannot take internal "
                           "snapshots of machines with pflash NVRAM";
    else if (has_external)
        why_not_internal =
            "it has external snapshots, and a machine's snapshots are all of one kind";
    else if (running && !memory)
        why_not_internal = "an internal snapshot of a running machine always holds its memory";
    for (guint i = 0; why_not_internal == NULL && i < disks->len; i++) {
        const DvSnapDisk *d = g_ptr_array_index(disks, i);
        if (d->owned && g_strcmp0(d->format, "qcow2") != 0)
            why_not_internal = "not all its disks are qcow2 (internal snapshots live inside qcow2 "
                               "files)";
    }
    if (kind == NULL)
        kind = why_not_internal == NULL ? "internal" : "external";
    if (strcmp(kind, "internal") == 0 && why_not_internal != NULL) {
        dv_set_field_error(
            error, DV_ERROR_NOT_SUPPORTED, running && !memory && !has_external ? "memory" : "kind",
            "%s: no internal snapshot of domain %s: %s",
            running && !memory && !has_external ? "memory" : "kind", uuid, why_not_internal);
        return NULL;
    }
    if (strcmp(kind, "external") == 0 && has_internal) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "kind",
                           "kind: domain %s has internal snapshots, and a machine's snapshots are "
                           "all of one kind: delete them before taking an external one",
                           uuid);
        return NULL;
    }

    if (strcmp(kind, "internal") == 0) {
        g_autofree char *ename = g_markup_escape_text(name, -1);
        g_autofree char *edesc = g_markup_escape_text(description != NULL ? description : "", -1);
        xml = g_strdup_printf("<domainsnapshot><name>%s</name><description>%s</description>"
                              "</domainsnapshot>",
                              ename, edesc);
        flags = 0;
    } else {
        if (running && memory) {
            const DvSnapDisk *first = NULL;
            g_autofree char *dir = NULL;
            g_autofree char *file = NULL;
            for (guint i = 0; first == NULL && i < disks->len; i++) {
                const DvSnapDisk *d = g_ptr_array_index(disks, i);
                if (d->owned && d->path != NULL)
                    first = d;
            }
            if (first != NULL) {
                dir = g_path_get_dirname(first->path);
                file = g_strdup_printf("%s-%s.mem", virDomainGetName(dom), name);
                memory_file = g_build_filename(dir, file, NULL);
            }
        } else {
            flags |= VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY;
        }
        xml = dv_virt_snapshot_external_xml(disks, name, description, memory_file, error);
        if (xml == NULL)
            return NULL;
    }
    snap = virDomainSnapshotCreateXML(dom, xml, flags);
    if (snap == NULL)
        return dv_virt_op_fail_null(&op, error, "cannot snapshot domain %s", uuid);
    return dv_virt_snapshot_entry_new(&op, snap, error);
}

JsonObject *
dv_virt_snapshot_create(DvVirtHost *host, const char *uuid, const char *name,
                        const char *description, GCancellable *cancellable, GError **error)
{
    return dv_virt_snapshot_create_full(host, uuid, name, description, "internal", TRUE,
                                        cancellable, error);
}

JsonArray *
dv_virt_snapshot_list(DvVirtHost *host, const char *uuid, GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;

    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return NULL;
    return dv_virt_snapshot_list_for(&op, dom, error);
}

static virDomainSnapshotPtr
dv_virt_snapshot_lookup(DvVirtOp *op, virDomainPtr dom, const char *uuid, const char *name,
                        GError **error)
{
    virDomainSnapshotPtr snap;

    if (!dv_validate_name("name", name, error))
        return NULL;
    snap = virDomainSnapshotLookupByName(dom, name, 0);
    if (snap == NULL)
        return dv_virt_op_fail_null(op, error, "cannot find snapshot %s of domain %s", name, uuid);
    return snap;
}

/* One layer of an external snapshot: disk @target's file @layer (what the
 * domain writes since the snapshot) over @base (the state at it). */
typedef struct {
    char *target;
    char *layer;
    char *base;
    char *base_format;
} DvSnapLayer;

static void
dv_snap_layer_free(DvSnapLayer *l)
{
    if (l == NULL)
        return;
    g_free(l->target);
    g_free(l->layer);
    g_free(l->base);
    g_free(l->base_format);
    g_free(l);
}

/* The layers of the external snapshot @sroot, checked against the domain
 * now: the snapshot must be the newest (no child), and each disk must
 * still write to the snapshot's layer.  @what is "revert to" or
 * "delete". */
static GPtrArray *
dv_virt_snapshot_layers(DvVirtOp *op, virDomainPtr dom, virDomainSnapshotPtr snap, xmlNode *sroot,
                        const char *uuid, const char *what, GError **error)
{
    g_autoptr(GPtrArray) layers =
        g_ptr_array_new_with_free_func((GDestroyNotify)dv_snap_layer_free);
    g_autoptr(GPtrArray) then = NULL;
    g_autoptr(GPtrArray) now = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    const char *name = virDomainSnapshotGetName(snap);
    xmlNode *sdisks = dv_virt_xml_child(sroot, "disks");
    xmlNode *sdomain = dv_virt_xml_child(sroot, "domain");
    int children = virDomainSnapshotNumChildren(snap, 0);

    if (children < 0)
        return dv_virt_op_fail_null(op, error, "cannot read snapshot %s", name);
    if (children > 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "snapshot",
                           "snapshot: '%s' is not the newest external snapshot of domain %s (%d "
                           "later one(s) build on it): Drover can only %s the newest; delete the "
                           "later ones first",
                           name, uuid, children, what);
        return NULL;
    }
    if (sdomain == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED,
                    "snapshot %s of domain %s keeps no domain definition", name, uuid);
        return NULL;
    }
    then = dv_virt_snapshot_disks_of(sdomain);
    doc = dv_virt_snapshot_domain_doc(op, dom, uuid, error);
    if (doc == NULL)
        return NULL;
    now = dv_virt_snapshot_disks_of(xmlDocGetRootElement(doc));
    for (xmlNode *d = sdisks != NULL ? sdisks->children : NULL; d != NULL; d = d->next) {
        g_autofree char *how = NULL;
        g_autofree char *target = NULL;
        g_autofree char *layer = NULL;
        const DvSnapDisk *base, *cur;
        DvSnapLayer *l;

        if (d->type != XML_ELEMENT_NODE)
            continue;
        how = dv_virt_xml_prop(d, "snapshot");
        if (g_strcmp0(how, "external") != 0)
            continue;
        target = dv_virt_xml_prop(d, "name");
        layer = dv_virt_xml_prop(dv_virt_xml_child(d, "source"), "file");
        base = dv_virt_snapshot_disk_find(then, target);
        cur = dv_virt_snapshot_disk_find(now, target);
        if (layer == NULL || base == NULL || base->path == NULL) {
            g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED,
                        "snapshot %s of domain %s names no file for disk %s", name, uuid, target);
            return NULL;
        }
        /* A delete run again after a crash finds the layers it merged
         * gone and the disk back on its base: that part is done. */
        if (strcmp(what, "delete") == 0 && cur != NULL && g_strcmp0(cur->path, base->path) == 0)
            continue;
        if (cur == NULL || g_strcmp0(cur->path, layer) != 0) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "snapshot",
                               "snapshot: disk %s of domain %s no longer writes to the layer of "
                               "snapshot '%s' (%s, now %s): Drover cannot %s it",
                               target, uuid, name, layer,
                               cur != NULL && cur->path != NULL ? cur->path : "no file", what);
            return NULL;
        }
        l = g_new0(DvSnapLayer, 1);
        l->target = g_steal_pointer(&target);
        l->layer = g_steal_pointer(&layer);
        l->base = g_strdup(base->path);
        l->base_format = g_strdup(base->format != NULL ? base->format : "raw");
        g_ptr_array_add(layers, l);
    }
    return g_steal_pointer(&layers);
}

/* Makes the layer @l anew: an empty qcow2 over its base, in the base's
 * pool (@base_vol) under the layer's file name. */
static gboolean
dv_virt_snapshot_layer_renew(DvVirtOp *op, const DvSnapLayer *l, virStorageVolPtr base_vol,
                             GError **error)
{
    g_autoptr(virStoragePool) pool = virStoragePoolLookupByVolume(base_vol);
    g_autoptr(virStorageVol) made = NULL;
    g_autoptr(GError) local = NULL;
    g_autoptr(virStorageVol) old = NULL;
    g_autofree char *file = g_path_get_basename(l->layer);
    g_autofree char *efile = g_markup_escape_text(file, -1);
    g_autofree char *ebase = g_markup_escape_text(l->base, -1);
    g_autofree char *xml = NULL;
    virStorageVolInfo info;

    if (pool == NULL)
        return dv_virt_op_fail(op, error, "cannot find the pool of %s", l->base);
    if (virStorageVolGetInfo(base_vol, &info) < 0)
        return dv_virt_op_fail(op, error, "cannot read %s", l->base);
    old = dv_virt_volume_lookup_refreshed(op, l->layer, &local);
    if (local != NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (old != NULL && virStorageVolDelete(old, 0) < 0)
        return dv_virt_op_fail(op, error, "cannot remove the layer %s", l->layer);
    xml = g_strdup_printf("<volume><name>%s</name><capacity unit='bytes'>%llu</capacity>"
                          "<target><format type='qcow2'/><compat>1.1</compat></target>"
                          "<backingStore><path>%s</path><format type='%s'/></backingStore>"
                          "</volume>",
                          efile, info.capacity, ebase, l->base_format);
    made = virStorageVolCreateXML(pool, xml, 0);
    if (made == NULL)
        return dv_virt_op_fail(op, error, "cannot make the layer %s anew", l->layer);
    return TRUE;
}

/* The saved memory's domain definition with each layer's base replaced
 * by the layer: the memory was saved before the layers existed, and the
 * guest must write to the layers, never to the frozen bases. */
static char *
dv_virt_snapshot_restore_xml(DvVirtOp *op, const char *memory_file, GPtrArray *layers,
                             GError **error)
{
    g_autoptr(xmlDoc) doc = NULL;
    xmlChar *out = NULL;
    xmlNode *devices;
    int len = 0;
    char *ret;
    char *raw =
        virDomainSaveImageGetXMLDesc(op->conn, memory_file, VIR_DOMAIN_SAVE_IMAGE_XML_SECURE);

    if (raw == NULL)
        return dv_virt_op_fail_null(op, error, "cannot read the saved memory %s", memory_file);
    doc = dv_virt_xml_parse(raw, error);
    free(raw);
    if (doc == NULL)
        return NULL;
    devices = dv_virt_xml_child(xmlDocGetRootElement(doc), "devices");
    for (xmlNode *d = devices != NULL ? devices->children : NULL; d != NULL; d = d->next) {
        xmlNode *source;
        g_autofree char *target = NULL;

        if (d->type != XML_ELEMENT_NODE || xmlStrcmp(d->name, BAD_CAST "disk") != 0)
            continue;
        target = dv_virt_xml_prop(dv_virt_xml_child(d, "target"), "dev");
        source = dv_virt_xml_child(d, "source");
        for (guint i = 0; source != NULL && i < layers->len; i++) {
            const DvSnapLayer *l = g_ptr_array_index(layers, i);
            xmlNode *driver = dv_virt_xml_child(d, "driver");
            if (g_strcmp0(l->target, target) != 0)
                continue;
            xmlNode *chain = dv_virt_xml_child(d, "backingStore");
            xmlSetProp(source, BAD_CAST "file", BAD_CAST l->layer);
            if (driver != NULL)
                xmlSetProp(driver, BAD_CAST "type", BAD_CAST "qcow2");
            /* The saved definition says the base had no backing file
             * (an empty <backingStore/>): without it libvirt reads the
             * layer's chain from its header, base included. */
            if (chain != NULL) {
                xmlUnlinkNode(chain);
                xmlFreeNode(chain);
            }
        }
    }
    xmlDocDumpMemory(doc, &out, &len);
    ret = g_strndup((const char *)out, len);
    xmlFree(out);
    return ret;
}

static gboolean
dv_virt_snapshot_revert_external(DvVirtOp *op, virDomainPtr dom, virDomainSnapshotPtr snap,
                                 xmlNode *sroot, const char *uuid, GError **error)
{
    g_autoptr(GPtrArray) layers = NULL;
    g_autoptr(GPtrArray) bases = g_ptr_array_new_with_free_func((GDestroyNotify)dv_virt_vol_free);
    g_autofree char *memory = dv_virt_xml_prop(dv_virt_xml_child(sroot, "memory"), "snapshot");
    g_autofree char *memory_file = dv_virt_xml_prop(dv_virt_xml_child(sroot, "memory"), "file");
    g_autofree char *restore_xml = NULL;
    const char *name = virDomainSnapshotGetName(snap);
    gboolean with_memory = g_strcmp0(memory, "external") == 0 && memory_file != NULL;

    layers = dv_virt_snapshot_layers(op, dom, snap, sroot, uuid, "revert to", error);
    if (layers == NULL)
        return FALSE;
    /* Everything that can be refused is checked before the domain stops. */
    for (guint i = 0; i < layers->len; i++) {
        const DvSnapLayer *l = g_ptr_array_index(layers, i);
        g_autoptr(GError) local = NULL;
        g_autofree char *ldir = g_path_get_dirname(l->layer);
        g_autofree char *bdir = g_path_get_dirname(l->base);
        virStorageVolPtr vol = dv_virt_volume_lookup_refreshed(op, l->base, &local);

        if (local != NULL) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        if (vol == NULL || strcmp(ldir, bdir) != 0) {
            if (vol != NULL)
                virStorageVolFree(vol);
            dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "snapshot",
                               "snapshot: disk %s's file %s is no volume of a storage pool with "
                               "the layer beside it: Drover reverts external snapshots of pool "
                               "volumes only",
                               l->target, l->base);
            return FALSE;
        }
        g_ptr_array_add(bases, vol);
    }
    if (with_memory) {
        restore_xml = dv_virt_snapshot_restore_xml(op, memory_file, layers, error);
        if (restore_xml == NULL)
            return FALSE;
    }
    if (virDomainIsActive(dom) == 1 && virDomainDestroy(dom) < 0)
        return dv_virt_op_fail(op, error, "cannot stop domain %s to revert it to %s", uuid, name);
    for (guint i = 0; i < layers->len; i++) {
        if (!dv_virt_snapshot_layer_renew(op, g_ptr_array_index(layers, i),
                                          g_ptr_array_index(bases, i), error)) {
            g_prefix_error(error, "reverting domain %s to %s: ", uuid, name);
            return FALSE;
        }
    }
    if (with_memory &&
        virDomainRestoreFlags(op->conn, memory_file, restore_xml, VIR_DOMAIN_SAVE_RUNNING) < 0)
        return dv_virt_op_fail(op, error,
                               "domain %s: disks reverted to %s, but its memory cannot be restored "
                               "(the domain is shut off)",
                               uuid, name);
    /* libvirt's "current snapshot" follows a revert it made itself; say
     * it for this one too (cosmetic: a failure changes nothing). */
    {
        char *sxml = virDomainSnapshotGetXMLDesc(snap, VIR_DOMAIN_SNAPSHOT_XML_SECURE);
        virDomainSnapshotPtr again = NULL;
        if (sxml != NULL)
            again = virDomainSnapshotCreateXML(dom, sxml,
                                               VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE |
                                                   VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT);
        free(sxml);
        if (again != NULL)
            virDomainSnapshotFree(again);
        virResetLastError();
    }
    return TRUE;
}

/* Snapshot @name of domain @uuid, opened for a revert or a delete: the
 * call's connection, the domain, the snapshot and its XML. */
typedef struct {
    DvVirtOp op;
    virDomainPtr dom;
    virDomainSnapshotPtr snap;
    xmlDoc *sdoc;
} DvSnapOpen;

#define DV_SNAP_OPEN_INIT                                                                          \
    {                                                                                              \
        DV_VIRT_OP_INIT, NULL, NULL, NULL                                                          \
    }

static void
dv_snap_open_clear(DvSnapOpen *s)
{
    g_clear_pointer(&s->sdoc, xmlFreeDoc);
    g_clear_pointer(&s->snap, virDomainSnapshotFree);
    g_clear_pointer(&s->dom, virDomainFree);
    dv_virt_op_end(&s->op);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(DvSnapOpen, dv_snap_open_clear)

static gboolean
dv_snap_open(DvSnapOpen *s, DvVirtHost *host, const char *uuid, const char *name,
             GCancellable *cancellable, GError **error)
{
    if (!dv_virt_op_begin(&s->op, host, cancellable, error))
        return FALSE;
    s->dom = dv_virt_domain_lookup(&s->op, uuid, error);
    if (s->dom == NULL)
        return FALSE;
    s->snap = dv_virt_snapshot_lookup(&s->op, s->dom, uuid, name, error);
    if (s->snap == NULL)
        return FALSE;
    s->sdoc = dv_virt_snapshot_doc(&s->op, s->snap, error);
    return s->sdoc != NULL;
}

/* Whether the opened snapshot is an external one. */
static gboolean
dv_snap_open_is_external(DvSnapOpen *s)
{
    return strcmp(dv_virt_snapshot_kind_of(xmlDocGetRootElement(s->sdoc)), "external") == 0;
}

gboolean
dv_virt_snapshot_revert(DvVirtHost *host, const char *uuid, const char *name,
                        GCancellable *cancellable, GError **error)
{
    g_auto(DvSnapOpen) s = DV_SNAP_OPEN_INIT;

    if (!dv_snap_open(&s, host, uuid, name, cancellable, error))
        return FALSE;
    if (dv_snap_open_is_external(&s))
        return dv_virt_snapshot_revert_external(&s.op, s.dom, s.snap, xmlDocGetRootElement(s.sdoc),
                                                uuid, error);
    if (virDomainRevertToSnapshot(s.snap, 0) < 0)
        return dv_virt_op_fail(&s.op, error, "cannot revert domain %s to snapshot %s", uuid, name);
    return TRUE;
}

static gboolean
dv_virt_snapshot_delete_external(DvVirtOp *op, virDomainPtr dom, virDomainSnapshotPtr snap,
                                 xmlNode *sroot, const char *uuid, GCancellable *cancellable,
                                 GError **error)
{
    g_autoptr(GPtrArray) layers = NULL;
    g_autofree char *memory_file = dv_virt_xml_prop(dv_virt_xml_child(sroot, "memory"), "file");
    const char *name = virDomainSnapshotGetName(snap);
    gboolean started = FALSE;
    int active;

    layers = dv_virt_snapshot_layers(op, dom, snap, sroot, uuid, "delete", error);
    if (layers == NULL)
        return FALSE;
    active = virDomainIsActive(dom);
    if (active < 0)
        return dv_virt_op_fail(op, error, "cannot read the state of domain %s", uuid);
    /* Merging needs QEMU: a shut-off domain runs paused meanwhile. */
    if (active == 0 && layers->len > 0) {
        if (virDomainCreateWithFlags(dom, VIR_DOMAIN_START_PAUSED) < 0)
            return dv_virt_op_fail(
                op, error, "cannot start domain %s paused to merge the layers of %s", uuid, name);
        started = TRUE;
    }
    for (guint i = 0; i < layers->len; i++) {
        const DvSnapLayer *l = g_ptr_array_index(layers, i);
        if (!dv_virt_domain_commit_active_in(
                op, dom, uuid, l->target, DV_VIRT_SNAPSHOT_COMMIT_TIMEOUT_MS, cancellable, error)) {
            if (started && virDomainDestroy(dom) < 0)
                virResetLastError();
            return FALSE;
        }
    }
    if (started && virDomainDestroy(dom) < 0)
        return dv_virt_op_fail(op, error, "cannot stop domain %s after merging %s", uuid, name);
    if (memory_file != NULL && !dv_virt_snapshot_remove_file(op, memory_file, error))
        return FALSE;
    if (virDomainSnapshotDelete(snap, VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY) < 0)
        return dv_virt_op_fail(op, error, "cannot delete snapshot %s of domain %s", name, uuid);
    return TRUE;
}

gboolean
dv_virt_snapshot_delete(DvVirtHost *host, const char *uuid, const char *name,
                        GCancellable *cancellable, GError **error)
{
    g_auto(DvSnapOpen) s = DV_SNAP_OPEN_INIT;

    if (!dv_snap_open(&s, host, uuid, name, cancellable, error))
        return FALSE;
    if (dv_snap_open_is_external(&s))
        return dv_virt_snapshot_delete_external(&s.op, s.dom, s.snap, xmlDocGetRootElement(s.sdoc),
                                                uuid, cancellable, error);
    if (virDomainSnapshotDelete(s.snap, 0) < 0)
        return dv_virt_op_fail(&s.op, error, "cannot delete snapshot %s of domain %s", name, uuid);
    return TRUE;
}

GPtrArray *
dv_virt_snapshot_external_files(DvVirtOp *op, virDomainPtr dom, GError **error)
{
    g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(DvVirtSnapList) snaps = NULL;
    int n = virDomainListAllSnapshots(dom, &snaps, 0);

    if (n < 0)
        return dv_virt_op_fail_null(op, error, "cannot list snapshots of %s",
                                    virDomainGetName(dom));
    for (int i = 0; i < n; i++) {
        g_autoptr(xmlDoc) doc = dv_virt_snapshot_doc(op, snaps[i], error);
        xmlNode *sroot, *sdisks, *sdomain;
        g_autoptr(GPtrArray) then = NULL;
        g_autofree char *memory_file = NULL;

        if (doc == NULL)
            return NULL;
        sroot = xmlDocGetRootElement(doc);
        if (strcmp(dv_virt_snapshot_kind_of(sroot), "external") != 0)
            continue;
        memory_file = dv_virt_xml_prop(dv_virt_xml_child(sroot, "memory"), "file");
        if (memory_file != NULL)
            g_ptr_array_add(files, g_steal_pointer(&memory_file));
        sdisks = dv_virt_xml_child(sroot, "disks");
        sdomain = dv_virt_xml_child(sroot, "domain");
        if (sdomain == NULL)
            continue;
        then = dv_virt_snapshot_disks_of(sdomain);
        for (xmlNode *d = sdisks != NULL ? sdisks->children : NULL; d != NULL; d = d->next) {
            g_autofree char *how = NULL;
            g_autofree char *target = NULL;
            g_autofree char *layer = NULL;
            const DvSnapDisk *base;
            if (d->type != XML_ELEMENT_NODE)
                continue;
            how = dv_virt_xml_prop(d, "snapshot");
            if (g_strcmp0(how, "external") != 0)
                continue;
            target = dv_virt_xml_prop(d, "name");
            layer = dv_virt_xml_prop(dv_virt_xml_child(d, "source"), "file");
            base = dv_virt_snapshot_disk_find(then, target);
            if (base != NULL && base->path != NULL && base->owned)
                g_ptr_array_add(files, g_strdup(base->path));
            if (layer != NULL)
                g_ptr_array_add(files, g_steal_pointer(&layer));
        }
    }
    return g_steal_pointer(&files);
}
