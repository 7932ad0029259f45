#define G_LOG_DOMAIN "DvVirtCopy"

/* Copies of a volume from one host to another, through libvirt only: a
 * download stream on the source (virStorageVolDownload) feeds an upload
 * stream on the target (virStorageVolUpload), chunk by chunk, so nothing
 * lands in a local file and memory stays at one chunk.  Machine catalogs
 * copy their base image this way to target hosts other than the
 * master's. */

#include "dv-virt-private.h"

#include "dv-validate.h"

#define DV_VIRT_COPY_CHUNK 262120

JsonObject *
dv_virt_volume_copy_between(DvVirtHost *src_host, const char *src_path, DvVirtHost *dst_host,
                            const char *dst_pool, const char *name, GCancellable *cancellable,
                            GError **error)
{
    g_auto(DvVirtOp) sop = DV_VIRT_OP_INIT;
    g_auto(DvVirtOp) dop = DV_VIRT_OP_INIT;
    g_autoptr(virStorageVol) src = NULL;
    g_autoptr(virStoragePool) p = NULL;
    g_autoptr(virStorageVol) dst = NULL;
    g_autoptr(virStorageVol) made = NULL;
    g_autoptr(virStream) in = NULL;
    g_autoptr(virStream) out = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *buf = NULL;
    g_autoptr(GError) local = NULL;
    virStorageVolInfo info;
    guint64 len, moved = 0;

    g_return_val_if_fail(src_host != NULL && dst_host != NULL, NULL);
    if (!dv_validate_name("name", name, error) || !dv_validate_name("pool", dst_pool, error))
        return NULL;
    if (src_path == NULL || src_path[0] != '/') {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "source", "source: must be an absolute path");
        return NULL;
    }
    if (!dv_virt_host_can_stream(src_host, "stream volumes between hosts", error) ||
        !dv_virt_host_can_stream(dst_host, "stream volumes between hosts", error))
        return NULL;
    /* Both operations are held together: begin them in one order (by host
     * id), so copies A->B and B->A at once cannot each hold the slot or
     * connection the other waits for. */
    if (g_strcmp0(dv_virt_host_get_id(src_host), dv_virt_host_get_id(dst_host)) > 0) {
        if (!dv_virt_op_begin(&dop, dst_host, cancellable, error))
            return NULL;
    }
    if (!dv_virt_op_begin(&sop, src_host, cancellable, error))
        return NULL;
    src = virStorageVolLookupByPath(sop.conn, src_path);
    if (src == NULL)
        return dv_virt_op_fail_null(&sop, error, "cannot find volume %s on host %s", src_path,
                                    dv_virt_host_get_id(src_host));
    /* The file's length (not its capacity): the image is copied as the
     * bytes it is, qcow2 header and all. */
    if (virStorageVolGetInfoFlags(src, &info, VIR_STORAGE_VOL_GET_PHYSICAL) < 0)
        return dv_virt_op_fail_null(&sop, error, "cannot read volume %s", src_path);
    len = info.allocation;
    if (len == 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT, "volume %s is empty", src_path);
        return NULL;
    }

    if (dop.host == NULL && !dv_virt_op_begin(&dop, dst_host, cancellable, error))
        return NULL;
    p = virStoragePoolLookupByName(dop.conn, dst_pool);
    if (p == NULL)
        return dv_virt_op_fail_null(&dop, error, "cannot find storage pool %s on host %s", dst_pool,
                                    dv_virt_host_get_id(dst_host));
    /* Raw and sparse at first (no qemu-img run); the pool refresh libvirt
     * does after the upload reads the qcow2 header back. */
    xml = g_strdup_printf("<volume><name>%s</name>"
                          "<capacity unit='bytes'>%" G_GUINT64_FORMAT "</capacity>"
                          "<allocation unit='bytes'>0</allocation>"
                          "<target><format type='raw'/></target></volume>",
                          name, len);
    dst = virStorageVolCreateXML(p, xml, 0);
    if (dst == NULL) {
        dv_virt_op_fail(&dop, &local, "cannot create volume %s in pool %s", name, dst_pool);
        dv_virt_volume_conflict_if_exists(p, name, local);
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }

    in = virStreamNew(sop.conn, 0);
    out = virStreamNew(dop.conn, 0);
    if (in == NULL || out == NULL) {
        dv_virt_op_fail(in == NULL ? &sop : &dop, &local, "cannot open a stream");
    } else if (virStorageVolDownload(src, in, 0, len, 0) < 0) {
        dv_virt_op_fail(&sop, &local, "cannot download %s", src_path);
    } else if (virStorageVolUpload(dst, out, 0, len, 0) < 0) {
        dv_virt_op_fail(&dop, &local, "cannot upload to %s in pool %s", name, dst_pool);
        virStreamAbort(in);
    } else {
        buf = g_malloc(DV_VIRT_COPY_CHUNK);
        while (local == NULL) {
            int n;
            gsize sent = 0;
            if (g_cancellable_is_cancelled(cancellable)) {
                g_set_error(&local, DV_ERROR, DV_ERROR_CANCELLED, "copy of %s to host %s cancelled", src_path,
                            dv_virt_host_get_id(dst_host));
                break;
            }
            n = virStreamRecv(in, buf, DV_VIRT_COPY_CHUNK);
            if (n == 0)
                break;
            if (n < 0) {
                dv_virt_op_fail(&sop, &local, "cannot download %s", src_path);
                break;
            }
            while (sent < (gsize)n && local == NULL) {
                int w = virStreamSend(out, buf + sent, (gsize)n - sent);
                if (w < 0)
                    dv_virt_op_fail(&dop, &local, "cannot upload to %s in pool %s", name, dst_pool);
                else
                    sent += (gsize)w;
            }
            moved += sent;
        }
        if (local == NULL && moved != len)
            g_set_error(&local, DV_ERROR, DV_ERROR_HOST_FAILED,
                        "copy of %s: %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " bytes arrived", src_path,
                        moved, len);
        if (local == NULL && virStreamFinish(in) < 0)
            dv_virt_op_fail(&sop, &local, "cannot finish the download of %s", src_path);
        if (local == NULL && virStreamFinish(out) < 0)
            dv_virt_op_fail(&dop, &local, "cannot finish the upload to %s in pool %s", name, dst_pool);
        if (local != NULL) {
            virStreamAbort(in);
            virStreamAbort(out);
        }
    }
    if (local != NULL) {
        /* No half-made copy stays behind. */
        virStorageVolDelete(dst, 0);
        virResetLastError();
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    /* Looked up again: the refresh after the upload replaced the pool's
     * volume objects. */
    made = virStorageVolLookupByName(p, name);
    if (made == NULL)
        return dv_virt_op_fail_null(&dop, error, "cannot find volume %s after the copy", name);
    return dv_virt_volume_entry_new(&dop, made, error);
}
