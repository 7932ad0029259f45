#define G_LOG_DOMAIN "DvVirtStream"

#include "dv-virt-private.h"

#include "dv-validate.h"

#include <string.h>

/* libvirt moves stream data in messages of at most 262,120 bytes
 * (VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX); larger sends are split anyway. */
#define DV_VIRT_STREAM_CHUNK 262120
#define DV_VIRT_UPLOAD_MAX ((gsize)1 << 30)

/* The raw volume to upload into: made first (the common case, one round
 * trip); one that exists already (a retried step) is reused when it has
 * the right size and format, recreated otherwise. */
static virStorageVolPtr
dv_virt_upload_target(DvVirtOp *op, virStoragePoolPtr *pp, const char *pool, const char *name,
                      gsize len, GError **error)
{
    virStoragePoolPtr p = *pp;
    g_autoptr(virStorageVol) vol = NULL;
    g_autofree char *xml = NULL;

    /* allocation 0: no zero-fill before the upload writes every byte;
     * mode 0600: identity volumes hold secrets. */
    xml = g_strdup_printf("<volume><name>%s</name>"
                          "<capacity unit='bytes'>%" G_GSIZE_FORMAT "</capacity>"
                          "<allocation unit='bytes'>0</allocation>"
                          "<target><format type='raw'/>"
                          "<permissions><mode>0600</mode></permissions></target></volume>",
                          name, len);
    vol = virStorageVolCreateXML(p, xml, 0);
    if (vol == NULL && dv_virt_pool_forget_if_gone(op, pool)) {
        /* The cached handle outlived its pool: once more on a fresh one. */
        g_clear_pointer(pp, dv_virt_pool_free);
        *pp = dv_virt_pool_lookup_cached(op, pool, error);
        if (*pp == NULL)
            return NULL;
        p = *pp;
        vol = virStorageVolCreateXML(p, xml, 0);
    }
    if (vol != NULL)
        return g_steal_pointer(&vol);
    {
        /* The creation's own error is the one to report when there is no
         * volume of that name either (a full disk, say). */
        g_autoptr(GError) create_error = NULL;
        dv_virt_op_fail(op, &create_error, "cannot create volume %s in pool %s", name, pool);
        vol = virStorageVolLookupByName(p, name);
        if (vol == NULL) {
            virResetLastError();
            g_propagate_error(error, g_steal_pointer(&create_error));
            return NULL;
        }
    }
    {
        virStorageVolInfo info;
        g_autofree char *vxml = NULL;
        gboolean reuse = FALSE;

        if (virStorageVolGetInfo(vol, &info) < 0)
            return dv_virt_op_fail_null(op, error, "cannot read volume %s in pool %s", name, pool);
        vxml = virStorageVolGetXMLDesc(vol, 0);
        reuse = info.capacity == len && vxml != NULL &&
                strstr(vxml, "<format type='raw'/>") != NULL;
        if (reuse)
            return g_steal_pointer(&vol);
        if (virStorageVolDelete(vol, 0) < 0)
            return dv_virt_op_fail_null(op, error, "cannot replace volume %s in pool %s", name,
                                        pool);
        g_clear_pointer(&vol, dv_virt_vol_free);
    }
    vol = virStorageVolCreateXML(p, xml, 0);
    if (vol == NULL)
        return dv_virt_op_fail_null(op, error, "cannot create volume %s in pool %s", name, pool);
    return g_steal_pointer(&vol);
}

gboolean
dv_virt_volume_upload(DvVirtHost *host, const char *pool, const char *name, const guint8 *data,
                      gsize len, GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStoragePool) p = NULL;
    g_autoptr(virStorageVol) vol = NULL;
    g_autoptr(virStream) st = NULL;
    gsize sent = 0;

    g_return_val_if_fail(host != NULL, FALSE);
    g_return_val_if_fail(data != NULL || len == 0, FALSE);
    if (!dv_validate_name("name", name, error))
        return FALSE;
    if (len == 0 || len > DV_VIRT_UPLOAD_MAX) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "data",
                           "data: must be 1 byte to 1 GiB");
        return FALSE;
    }
    if (!dv_virt_host_can_stream(host, "upload or download volumes", error))
        return FALSE;
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    p = dv_virt_pool_lookup_cached(&op, pool, error);
    if (p == NULL)
        return FALSE;
    vol = dv_virt_upload_target(&op, &p, pool, name, len, error);
    if (vol == NULL)
        return FALSE;

    st = virStreamNew(op.conn, 0);
    if (st == NULL)
        return dv_virt_op_fail(&op, error, "cannot open a stream to host %s",
                               dv_virt_host_get_id(host));
    if (virStorageVolUpload(vol, st, 0, len, 0) < 0)
        return dv_virt_op_fail(&op, error, "cannot upload to volume %s in pool %s", name, pool);
    while (sent < len) {
        int n;

        if (g_cancellable_is_cancelled(cancellable)) {
            virStreamAbort(st);
            virResetLastError();
            g_set_error(error, DV_ERROR, DV_ERROR_CANCELLED,
                        "upload to volume %s in pool %s cancelled", name, pool);
            return FALSE;
        }
        n = virStreamSend(st, (const char *)data + sent, MIN(len - sent, DV_VIRT_STREAM_CHUNK));
        if (n < 0) {
            g_autoptr(GError) local_error = NULL;
            dv_virt_op_fail(&op, &local_error, "cannot upload to volume %s in pool %s", name,
                            pool);
            virStreamAbort(st);
            g_propagate_error(error, g_steal_pointer(&local_error));
            return FALSE;
        }
        sent += (gsize)n;
    }
    if (virStreamFinish(st) < 0) {
        g_autoptr(GError) local_error = NULL;
        dv_virt_op_fail(&op, &local_error, "cannot finish the upload to volume %s in pool %s",
                        name, pool);
        virStreamAbort(st);
        g_propagate_error(error, g_steal_pointer(&local_error));
        return FALSE;
    }
    return TRUE;
}

DvSecret *
dv_virt_volume_download(DvVirtHost *host, const char *pool, const char *name, gsize max_len,
                        GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStoragePool) p = NULL;
    g_autoptr(virStorageVol) vol = NULL;
    g_autoptr(virStream) st = NULL;
    g_autoptr(DvSecret) buf = NULL;
    virStorageVolInfo info;
    guint8 *dst;
    gsize got = 0;
    gsize cap;

    g_return_val_if_fail(host != NULL, NULL);
    if (!dv_validate_name("name", name, error))
        return NULL;
    if (!dv_virt_host_can_stream(host, "upload or download volumes", error))
        return NULL;
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;
    p = dv_virt_pool_lookup(&op, pool, error);
    if (p == NULL)
        return NULL;
    vol = virStorageVolLookupByName(p, name);
    if (vol == NULL)
        return dv_virt_op_fail_null(&op, error, "cannot find volume %s in pool %s", name, pool);
    if (virStorageVolGetInfo(vol, &info) < 0)
        return dv_virt_op_fail_null(&op, error, "cannot read volume %s in pool %s", name, pool);
    if (info.capacity > max_len) {
        g_set_error(error, DV_ERROR, DV_ERROR_TOO_LARGE,
                    "volume %s in pool %s holds %llu bytes, more than the %" G_GSIZE_FORMAT
                    " allowed here", name, pool, info.capacity, max_len);
        return NULL;
    }
    cap = (gsize)info.capacity;
    /* One spare byte tells a volume that grew since GetInfo from one
     * that did not. */
    buf = dv_secret_new(cap + 1);
    dst = dv_secret_get_data_mutable(buf);

    st = virStreamNew(op.conn, 0);
    if (st == NULL)
        return dv_virt_op_fail_null(&op, error, "cannot open a stream to host %s",
                                    dv_virt_host_get_id(host));
    if (virStorageVolDownload(vol, st, 0, 0, 0) < 0)
        return dv_virt_op_fail_null(&op, error, "cannot download volume %s in pool %s", name,
                                    pool);
    for (;;) {
        int n;

        if (g_cancellable_is_cancelled(cancellable)) {
            virStreamAbort(st);
            virResetLastError();
            g_set_error(error, DV_ERROR, DV_ERROR_CANCELLED,
                        "download of volume %s in pool %s cancelled", name, pool);
            return NULL;
        }
        if (got > cap) {
            virStreamAbort(st);
            virResetLastError();
            g_set_error(error, DV_ERROR, DV_ERROR_TOO_LARGE,
                        "volume %s in pool %s grew during the download", name, pool);
            return NULL;
        }
        n = virStreamRecv(st, (char *)dst + got, MIN(cap + 1 - got, DV_VIRT_STREAM_CHUNK));
        if (n == 0)
            break;
        if (n < 0) {
            g_autoptr(GError) local_error = NULL;
            dv_virt_op_fail(&op, &local_error, "cannot download volume %s in pool %s", name, pool);
            virStreamAbort(st);
            g_propagate_error(error, g_steal_pointer(&local_error));
            return NULL;
        }
        got += (gsize)n;
    }
    if (virStreamFinish(st) < 0)
        return dv_virt_op_fail_null(&op, error, "cannot finish the download of volume %s in pool %s",
                                    name, pool);
    /* An exact-size copy; @buf (with the spare byte) is wiped on return. */
    return dv_secret_new_from_data(dst, got);
}

gboolean
dv_virt_volume_upload_stream(DvVirtHost *host, const char *pool, const char *name, guint64 length,
                             DvVirtReadFunc read_func, gpointer read_data,
                             DvVirtProgressFunc progress, gpointer progress_data, char **ret_path,
                             GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStoragePool) p = NULL;
    g_autoptr(virStorageVol) vol = NULL;
    g_autoptr(virStream) st = NULL;
    g_autofree guint8 *buf = NULL;
    g_autofree char *xml = NULL;
    g_autoptr(GError) local = NULL;
    virStoragePoolInfo info;
    guint64 sent = 0;
    gboolean ok = FALSE;
    char *path;

    g_return_val_if_fail(host != NULL && read_func != NULL, FALSE);
    if (!dv_validate_name("name", name, error))
        return FALSE;
    if (length == 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "Content-Length",
                           "Content-Length: an upload has at least one byte");
        return FALSE;
    }
    if (!dv_virt_host_can_stream(host, "upload volumes", error))
        return FALSE;
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    p = dv_virt_pool_lookup(&op, pool, error);
    if (p == NULL)
        return FALSE;
    /* Checked on the host again: the inventory's figure may be old. */
    if (virStoragePoolGetInfo(p, &info) < 0)
        return dv_virt_op_fail(&op, error, "cannot read pool %s", pool);
    if (info.available < length) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "Content-Length",
                           "Content-Length: %" G_GUINT64_FORMAT " bytes do not fit in pool %s, "
                           "which has %llu bytes available",
                           length, pool, info.available);
        return FALSE;
    }
    /* A new raw volume of the upload's size, mode 0644 (QEMU reads an
     * ISO as another user); libvirt reads the format from the data when
     * it refreshes the pool after the upload (iso, qcow2...). */
    xml = g_markup_printf_escaped("<volume><name>%s</name>"
                                  "<capacity unit='bytes'>%" G_GUINT64_FORMAT "</capacity>"
                                  "<allocation unit='bytes'>0</allocation>"
                                  "<target><format type='raw'/>"
                                  "<permissions><mode>0644</mode></permissions></target></volume>",
                                  name, length);
    vol = virStorageVolCreateXML(p, xml, 0);
    if (vol == NULL) {
        if (virGetLastErrorCode() == VIR_ERR_STORAGE_VOL_EXIST) {
            virResetLastError();
            dv_set_field_error(error, DV_ERROR_CONFLICT, "name",
                               "name: pool %s already holds a volume named %s", pool, name);
            return FALSE;
        }
        return dv_virt_op_fail(&op, error, "cannot create volume %s in pool %s", name, pool);
    }
    buf = g_malloc(DV_VIRT_STREAM_CHUNK);
    st = virStreamNew(op.conn, 0);
    if (st == NULL) {
        dv_virt_op_fail(&op, &local, "cannot open a stream to host %s", dv_virt_host_get_id(host));
    } else if (virStorageVolUpload(vol, st, 0, length, 0) < 0) {
        dv_virt_op_fail(&op, &local, "cannot upload to volume %s in pool %s", name, pool);
        g_clear_pointer(&st, dv_virt_stream_free);
    } else {
        for (;;) {
            gssize n;
            if (g_cancellable_is_cancelled(cancellable)) {
                g_set_error(&local, DV_ERROR, DV_ERROR_CANCELLED,
                            "upload to volume %s in pool %s cancelled", name, pool);
                break;
            }
            n = read_func(read_data, buf, DV_VIRT_STREAM_CHUNK, &local);
            if (n < 0)
                break;
            if (n == 0) {
                ok = TRUE;
                break;
            }
            for (gssize off = 0; off < n;) {
                int w = virStreamSend(st, (const char *)buf + off, (size_t)(n - off));
                if (w < 0) {
                    dv_virt_op_fail(&op, &local, "cannot upload to volume %s in pool %s", name,
                                    pool);
                    break;
                }
                off += w;
            }
            if (local != NULL)
                break;
            sent += (guint64)n;
            if (progress != NULL)
                progress(progress_data, sent, length);
        }
        if (ok && virStreamFinish(st) < 0) {
            ok = FALSE;
            dv_virt_op_fail(&op, &local, "cannot finish the upload to volume %s in pool %s", name,
                            pool);
        }
        if (!ok) {
            virStreamAbort(st);
            virResetLastError();
        }
    }
    if (!ok) {
        /* Nothing half-made: the partial volume goes. */
        if (virStorageVolDelete(vol, 0) < 0) {
            g_warning("cannot delete the partial volume %s in pool %s: %s", name, pool,
                      virGetLastErrorMessage());
            virResetLastError();
        }
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    path = virStorageVolGetPath(vol);
    if (ret_path != NULL)
        *ret_path = g_strdup(path);
    free(path);
    return TRUE;
}
