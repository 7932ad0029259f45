#define G_LOG_DOMAIN "DvVirtFreeze"

/* Freezing the disk of a running domain so it can be copied, then
 * merging it back: an external disk-only snapshot without metadata puts
 * a new qcow2 layer on top (QEMU writes there from then on, the former
 * file is only read), and an active block commit with pivot folds the
 * layer back and removes it.  Both are QEMU block jobs; they work under
 * TCG as under KVM. */

#include "dv-virt-private.h"

#include "dv-validate.h"

#include <string.h>

gboolean
dv_virt_domain_freeze_disk(DvVirtHost *host, const char *uuid, const char *target, const char *overlay_path,
                           GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(virDomainSnapshot) snap = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(GString) xml = g_string_new(NULL);
    g_autofree char *dxml = NULL;
    g_autofree char *esc = NULL;
    g_autofree char *name = dv_virt_random_suffix();
    xmlNode *devices;
    gboolean found = FALSE;

    g_return_val_if_fail(host != NULL, FALSE);
    if (target == NULL || overlay_path == NULL || overlay_path[0] != '/') {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "overlay_path",
                           "overlay_path: must be an absolute path, with a disk target");
        return FALSE;
    }
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return FALSE;
    dxml = virDomainGetXMLDesc(dom, 0);
    if (dxml == NULL)
        return dv_virt_op_fail(&op, error, "cannot read domain %s", uuid);
    doc = dv_virt_xml_parse(dxml, error);
    if (doc == NULL)
        return FALSE;
    esc = g_markup_escape_text(overlay_path, -1);
    g_string_append_printf(xml, "<domainsnapshot><name>drover-freeze-%s</name><disks>", name);
    /* Every disk is named: the one frozen is external, the others are
     * left alone (read-only ones could not take a layer anyway). */
    devices = dv_virt_xml_child(xmlDocGetRootElement(doc), "devices");
    for (xmlNode *d = devices != NULL ? devices->children : NULL; d != NULL; d = d->next) {
        g_autofree char *dev = NULL;
        if (d->type != XML_ELEMENT_NODE || strcmp((const char *)d->name, "disk") != 0)
            continue;
        dev = dv_virt_xml_prop(dv_virt_xml_child(d, "target"), "dev");
        if (dev == NULL)
            continue;
        if (strcmp(dev, target) == 0) {
            found = TRUE;
            g_string_append_printf(xml, "<disk name='%s' snapshot='external' type='file'>"
                                        "<driver type='qcow2'/><source file='%s'/></disk>", dev, esc);
        } else {
            g_string_append_printf(xml, "<disk name='%s' snapshot='no'/>", dev);
        }
    }
    g_string_append(xml, "</disks></domainsnapshot>");
    if (!found) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "domain %s has no disk %s", uuid, target);
        return FALSE;
    }
    snap = virDomainSnapshotCreateXML(dom, xml->str,
                                      VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC |
                                          VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA);
    if (snap == NULL)
        return dv_virt_op_fail(&op, error, "cannot freeze disk %s of domain %s", target, uuid);
    return TRUE;
}

gboolean
dv_virt_domain_commit_active(DvVirtHost *host, const char *uuid, const char *target, guint timeout_ms,
                             GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;

    g_return_val_if_fail(host != NULL, FALSE);
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return FALSE;
    return dv_virt_domain_commit_active_in(&op, dom, uuid, target, timeout_ms, cancellable, error);
}

gboolean
dv_virt_domain_commit_active_in(DvVirtOp *op, virDomainPtr dom, const char *uuid,
                                const char *target, guint timeout_ms, GCancellable *cancellable,
                                GError **error)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    gboolean pivoted = FALSE;

    /* SHALLOW: into the file right under the top, not the deepest one
     * (libvirt's default base), which may be a shared frozen base or an
     * older snapshot's state. */
    if (virDomainBlockCommit(dom, target, NULL, NULL, 0,
                             VIR_DOMAIN_BLOCK_COMMIT_ACTIVE | VIR_DOMAIN_BLOCK_COMMIT_DELETE |
                                 VIR_DOMAIN_BLOCK_COMMIT_SHALLOW) < 0)
        return dv_virt_op_fail(op, error, "cannot merge the top layer of disk %s of domain %s back",
                               target, uuid);
    /* The job is ready (mirroring) when it has copied everything; the
     * pivot then drops the layer.  A job gone after the pivot is done. */
    for (;;) {
        virDomainBlockJobInfo info;
        int rc = virDomainGetBlockJobInfo(dom, target, &info, 0);
        if (rc < 0)
            return dv_virt_op_fail(op, error, "cannot follow the merge of disk %s of domain %s",
                                   target, uuid);
        if (rc == 0 && pivoted)
            return TRUE;
        if (rc == 0) {
            g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED,
                        "the merge of disk %s of domain %s ended before it could pivot", target, uuid);
            return FALSE;
        }
        if (!pivoted && info.end > 0 && info.cur == info.end) {
            if (virDomainBlockJobAbort(dom, target, VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT) == 0) {
                pivoted = TRUE;
                continue;
            }
            /* Not ready yet although the counters say so: try again. */
            virResetLastError();
        }
        if (g_get_monotonic_time() > deadline) {
            g_set_error(error, DV_ERROR, DV_ERROR_TIMEOUT,
                        "the merge of disk %s of domain %s did not finish within %u s; it goes on in QEMU",
                        target, uuid, timeout_ms / 1000);
            return FALSE;
        }
        if (g_cancellable_is_cancelled(cancellable) && !pivoted) {
            virDomainBlockJobAbort(dom, target, 0);
            virResetLastError();
            g_set_error(error, DV_ERROR, DV_ERROR_CANCELLED, "merge of disk %s of domain %s cancelled", target,
                        uuid);
            return FALSE;
        }
        g_usleep(50 * 1000);
    }
}
