#define G_LOG_DOMAIN "DvVirtVolume"

#include "dv-virt-private.h"

#include "dv-validate.h"

/* 64 TiB: far above any disk Drover creates, low enough to catch unit
 * mistakes (bytes vs MiB). */
#define DV_VIRT_MAX_VOLUME_BYTES (G_GUINT64_CONSTANT(64) << 40)

/* One creation path for plain and overlay volumes: a backing store always
 * names its format, or libvirt assumes the pool's default (raw). */
static JsonObject *
dv_virt_volume_create_full(DvVirtHost *host, const char *pool, const char *name, guint64 capacity,
                           const char *format, const char *backing, const char *backing_format,
                           gboolean lean, const char *dir, GCancellable *cancellable,
                           GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStoragePool) p = NULL;
    g_autoptr(virStorageVol) vol = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *backing_xml = NULL;
    gboolean qcow2 = g_strcmp0(format, "qcow2") == 0;

    g_return_val_if_fail(host != NULL, NULL);
    if (!dv_validate_name("name", name, error))
        return NULL;
    if (!qcow2 && g_strcmp0(format, "raw") != 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "format",
                           "must be \"qcow2\" or \"raw\"");
        return NULL;
    }
    if (capacity > DV_VIRT_MAX_VOLUME_BYTES) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "capacity",
                           "must be at most 64 TiB (in bytes)");
        return NULL;
    }
    if (backing != NULL) {
        g_autofree char *esc = NULL;
        if (!qcow2) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "format",
                               "an overlay must be qcow2");
            return NULL;
        }
        if (backing[0] != '/' ||
            (g_strcmp0(backing_format, "qcow2") != 0 && g_strcmp0(backing_format, "raw") != 0)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "backing",
                               "needs an absolute path and a format (qcow2 or raw)");
            return NULL;
        }
        esc = g_markup_escape_text(backing, -1);
        backing_xml = g_strdup_printf("<backingStore><path>%s</path><format type='%s'/></backingStore>",
                                      esc, backing_format);
    }
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;
    p = dv_virt_pool_lookup_cached(&op, pool, error);
    if (p == NULL)
        return NULL;
    /* allocation 0 keeps raw volumes sparse (no fallocate); compat 1.1
     * avoids the old qcow2 0.10 format libvirt writes by default. */
    xml = g_strdup_printf("<volume><name>%s</name>"
                          "<capacity unit='bytes'>%" G_GUINT64_FORMAT "</capacity>"
                          "<allocation unit='bytes'>0</allocation>"
                          "<target><format type='%s'/>%s</target>%s</volume>",
                          name, capacity, qcow2 ? "qcow2" : "raw",
                          qcow2 ? "<compat>1.1</compat>" : "",
                          backing_xml != NULL ? backing_xml : "");
    vol = virStorageVolCreateXML(p, xml, 0);
    if (vol == NULL && dv_virt_pool_forget_if_gone(&op, pool)) {
        /* The cached handle outlived its pool: once more on a fresh one. */
        g_clear_pointer(&p, dv_virt_pool_free);
        p = dv_virt_pool_lookup_cached(&op, pool, error);
        if (p == NULL)
            return NULL;
        vol = virStorageVolCreateXML(p, xml, 0);
    }
    if (vol == NULL) {
        g_autoptr(GError) local_error = NULL;

        dv_virt_op_fail(&op, &local_error, "cannot create volume %s in pool %s", name, pool);
        dv_virt_volume_conflict_if_exists(p, name, local_error);
        g_propagate_error(error, g_steal_pointer(&local_error));
        return NULL;
    }
    /* GetInfo and GetXMLDesc each make the daemon re-read the new file
     * (and its backing chain); the name and path need no such read. */
    if (lean && dir != NULL) {
        JsonObject *obj = json_object_new();
        g_autofree char *path = g_build_filename(dir, name, NULL);
        json_object_set_string_member(obj, "name", name);
        json_object_set_string_member(obj, "path", path);
        return obj;
    }
    if (lean) {
        JsonObject *obj;
        char *path = virStorageVolGetPath(vol);
        if (path == NULL)
            return dv_virt_op_fail_null(&op, error, "cannot read volume %s", name);
        obj = json_object_new();
        json_object_set_string_member(obj, "name", name);
        json_object_set_string_member(obj, "path", path);
        free(path);
        return obj;
    }
    return dv_virt_volume_entry_new(&op, vol, error);
}

JsonObject *
dv_virt_volume_create_lean(DvVirtHost *host, const char *pool, const char *name, guint64 capacity,
                           const char *format, const char *backing, const char *backing_format,
                           const char *dir, GCancellable *cancellable, GError **error)
{
    return dv_virt_volume_create_full(host, pool, name, capacity, format, backing, backing_format,
                                      TRUE, dir, cancellable, error);
}

JsonObject *
dv_virt_volume_create(DvVirtHost *host, const char *pool, const char *name, guint64 capacity,
                      const char *format, GCancellable *cancellable, GError **error)
{
    return dv_virt_volume_create_full(host, pool, name, capacity, format, NULL, NULL, FALSE, NULL,
                                      cancellable, error);
}

JsonObject *
dv_virt_volume_create_overlay(DvVirtHost *host, const char *pool, const char *name,
                              const char *backing, const char *backing_format,
                              guint64 capacity, GCancellable *cancellable, GError **error)
{
    return dv_virt_volume_create_full(host, pool, name, capacity, "qcow2", backing, backing_format,
                                      FALSE, NULL, cancellable, error);
}

static gboolean
dv_virt_path_ok(const char *path, GError **error)
{
    if (path == NULL || path[0] != '/') {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "path", "must be an absolute path");
        return FALSE;
    }
    return TRUE;
}

JsonObject *
dv_virt_volume_lookup_by_path(DvVirtHost *host, const char *path, GCancellable *cancellable,
                              GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStorageVol) vol = NULL;
    g_autoptr(virStoragePool) pool = NULL;
    g_autoptr(JsonObject) obj = NULL;

    g_return_val_if_fail(host != NULL, NULL);
    if (!dv_virt_path_ok(path, error))
        return NULL;
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;
    vol = virStorageVolLookupByPath(op.conn, path);
    if (vol == NULL)
        return dv_virt_op_fail_null(&op, error, "cannot find volume %s", path);
    obj = dv_virt_volume_entry_new(&op, vol, error);
    if (obj == NULL)
        return NULL;
    pool = virStoragePoolLookupByVolume(vol);
    if (pool == NULL)
        return dv_virt_op_fail_null(&op, error, "cannot find the pool of volume %s", path);
    json_object_set_string_member(obj, "pool", virStoragePoolGetName(pool));
    return g_steal_pointer(&obj);
}

gboolean
dv_virt_volume_delete(DvVirtHost *host, const char *pool, const char *name,
                      GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStoragePool) p = NULL;
    g_autoptr(virStorageVol) vol = NULL;

    g_return_val_if_fail(host != NULL, FALSE);
    if (!dv_validate_name("name", name, error))
        return FALSE;
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    p = dv_virt_pool_lookup(&op, pool, error);
    if (p == NULL)
        return FALSE;
    vol = virStorageVolLookupByName(p, name);
    if (vol == NULL)
        return dv_virt_op_fail(&op, error, "cannot find volume %s in pool %s", name, pool);
    if (virStorageVolDelete(vol, 0) < 0)
        return dv_virt_op_fail(&op, error, "cannot delete volume %s in pool %s", name, pool);
    return TRUE;
}

gboolean
dv_virt_volume_delete_by_path(DvVirtHost *host, const char *path, GCancellable *cancellable,
                              GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStorageVol) vol = NULL;

    g_return_val_if_fail(host != NULL, FALSE);
    if (!dv_virt_path_ok(path, error))
        return FALSE;
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    vol = virStorageVolLookupByPath(op.conn, path);
    if (vol == NULL)
        return dv_virt_op_fail(&op, error, "cannot find volume %s", path);
    if (virStorageVolDelete(vol, 0) < 0)
        return dv_virt_op_fail(&op, error, "cannot delete volume %s", path);
    return TRUE;
}
