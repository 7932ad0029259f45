#define G_LOG_DOMAIN "DvVirtClone"

/* Flattened copies of volumes: the base image of a machine catalog.
 * virStorageVolCreateXMLFrom runs qemu-img convert on the host, which
 * reads the whole backing chain of the source and writes one image. */

#include "dv-virt-private.h"

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
