#define G_LOG_DOMAIN "DvVirtPool"

/* Small dir pools that Drover makes and removes itself: the machine
 * catalogs' identity pools.  libvirt refreshes a whole pool after every
 * upload, so uploaded volumes live in pools of a few dozen volumes each
 * instead of the catalog's big pool (docs/VIRT.md). */

#include "dv-virt-private.h"

#include "dv-validate.h"

#include <string.h>

gboolean
dv_virt_pool_ensure_dir(DvVirtHost *host, const char *name, const char *path, GCancellable *cancellable,
                        GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStoragePool) p = NULL;
    gboolean built = FALSE;
    int active;

    g_return_val_if_fail(host != NULL, FALSE);
    if (!dv_validate_name("pool", name, error))
        return FALSE;
    if (path == NULL || path[0] != '/') {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "path", "path: must be absolute");
        return FALSE;
    }
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    p = virStoragePoolLookupByName(op.conn, name);
    if (p == NULL) {
        const virError *err = virGetLastError();
        g_autofree char *epath = g_markup_escape_text(path, -1);
        g_autofree char *xml = NULL;
        if (err == NULL || err->code != VIR_ERR_NO_STORAGE_POOL)
            return dv_virt_op_fail(&op, error, "cannot look up storage pool %s", name);
        virResetLastError();
        /* 0711: QEMU (another user) reaches the files it is given, nobody
         * lists the directory. */
        xml = g_strdup_printf("<pool type='dir'><name>%s</name><target><path>%s</path>"
                              "<permissions><mode>0711</mode></permissions></target></pool>",
                              name, epath);
        p = virStoragePoolDefineXML(op.conn, xml, 0);
        if (p == NULL)
            return dv_virt_op_fail(&op, error, "cannot define storage pool %s", name);
        /* The directory may be left from an earlier attempt: build only
         * makes what is missing. */
        if (virStoragePoolBuild(p, 0) < 0) {
            g_autoptr(GError) local = NULL;
            dv_virt_op_fail(&op, &local, "cannot make the directory of storage pool %s", name);
            virStoragePoolUndefine(p);
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        if (virStoragePoolSetAutostart(p, 1) < 0)
            return dv_virt_op_fail(&op, error, "cannot mark storage pool %s autostart", name);
        built = TRUE;
    } else {
        g_autofree char *xml = virStoragePoolGetXMLDesc(p, 0);
        g_autofree char *want = g_markup_printf_escaped("<path>%s</path>", path);
        if (xml == NULL)
            return dv_virt_op_fail(&op, error, "cannot read storage pool %s", name);
        if (strstr(xml, want) == NULL) {
            g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT,
                        "storage pool %s exists with another directory than %s", name, path);
            return FALSE;
        }
    }
    active = virStoragePoolIsActive(p);
    if (active < 0)
        return dv_virt_op_fail(&op, error, "cannot read storage pool %s", name);
    /* A running pool whose directory was removed on the host: the refresh
     * fails and libvirt stops the pool.  A refresh refused while the pool
     * stays active (an upload running in it) means it is in use: fine. */
    if (active == 1 && virStoragePoolRefresh(p, 0) < 0) {
        active = virStoragePoolIsActive(p);
        if (active < 0)
            return dv_virt_op_fail(&op, error, "cannot read storage pool %s", name);
        virResetLastError();
    }
    /* Stopped (by hand, at boot when its directory was gone, or by the
     * refresh above): build remakes a missing directory with the mode
     * and owner of the definition (0711) and keeps an existing one. */
    if (active == 0) {
        if (!built && virStoragePoolBuild(p, 0) < 0)
            return dv_virt_op_fail(&op, error, "cannot make the directory of storage pool %s", name);
        if (virStoragePoolCreate(p, 0) < 0)
            return dv_virt_op_fail(&op, error, "cannot start storage pool %s", name);
    }
    return TRUE;
}

gboolean
dv_virt_pool_remove(DvVirtHost *host, const char *name, GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStoragePool) p = NULL;
    int active;

    g_return_val_if_fail(host != NULL, FALSE);
    p = dv_virt_pool_open(&op, host, name, cancellable, error);
    if (p == NULL)
        return FALSE;
    active = virStoragePoolIsActive(p);
    if (active < 0)
        return dv_virt_op_fail(&op, error, "cannot read storage pool %s", name);
    if (active == 1) {
        /* Files libvirt did not make would be missed by the check below.
         * A refresh that fails because the directory is gone stops the
         * pool: nothing is left in it to keep. */
        if (virStoragePoolRefresh(p, 0) < 0) {
            active = virStoragePoolIsActive(p);
            if (active != 0)
                return dv_virt_op_fail(&op, error, "cannot refresh storage pool %s", name);
            virResetLastError();
        }
    }
    if (active == 1) {
        if (virStoragePoolNumOfVolumes(p) > 0) {
            g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT, "storage pool %s still holds %d volumes",
                        name, virStoragePoolNumOfVolumes(p));
            return FALSE;
        }
        if (virStoragePoolDestroy(p) < 0)
            return dv_virt_op_fail(&op, error, "cannot stop storage pool %s", name);
    }
    /* rmdir: refuses a directory that is not empty. */
    if (virStoragePoolDelete(p, 0) < 0) {
        const virError *err = virGetLastError();
        if (err == NULL || err->code != VIR_ERR_SYSTEM_ERROR || strstr(err->message, "No such file") == NULL)
            return dv_virt_op_fail(&op, error, "cannot remove the directory of storage pool %s", name);
        virResetLastError();
    }
    if (virStoragePoolUndefine(p) < 0)
        return dv_virt_op_fail(&op, error, "cannot undefine storage pool %s", name);
    return TRUE;
}

static gint
dv_virt_pool_name_cmp(gconstpointer a, gconstpointer b)
{
    return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

JsonArray *
dv_virt_pool_list_by_prefix(DvVirtHost *host, const char *prefix, GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(DvVirtPoolList) pools = NULL;
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    JsonArray *out;
    int n;

    g_return_val_if_fail(host != NULL, NULL);
    g_return_val_if_fail(prefix != NULL, NULL);
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;
    n = virConnectListAllStoragePools(op.conn, &pools, 0);
    if (n < 0)
        return dv_virt_op_fail_null(&op, error, "cannot list storage pools");
    for (int i = 0; i < n; i++) {
        const char *name = virStoragePoolGetName(pools[i]);
        if (name != NULL && g_str_has_prefix(name, prefix))
            g_ptr_array_add(names, g_strdup(name));
    }
    g_ptr_array_sort(names, dv_virt_pool_name_cmp);
    out = json_array_new();
    for (guint i = 0; i < names->len; i++)
        json_array_add_string_element(out, g_ptr_array_index(names, i));
    return out;
}

JsonObject *
dv_virt_pool_prepare(DvVirtHost *host, const char *name, guint64 needed, GCancellable *cancellable,
                     GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStoragePool) p = NULL;
    g_autoptr(JsonObject) out = json_object_new();
    g_autofree char *xml = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    g_autofree char *type = NULL;
    virStoragePoolInfo info;
    gboolean built = FALSE;
    gboolean started = FALSE;
    int active;

    g_return_val_if_fail(host != NULL, NULL);
    p = dv_virt_pool_open(&op, host, name, cancellable, error);
    if (p == NULL)
        return NULL;
    xml = virStoragePoolGetXMLDesc(p, 0); /* the test driver takes no flags */
    if (xml == NULL)
        return dv_virt_op_fail_null(&op, error, "cannot read storage pool %s", name);
    doc = dv_virt_xml_parse(xml, error);
    if (doc == NULL)
        return NULL;
    type = dv_virt_xml_prop(xmlDocGetRootElement(doc), "type");
    active = virStoragePoolIsActive(p);
    if (active < 0)
        return dv_virt_op_fail_null(&op, error, "cannot read storage pool %s", name);
    /* A running dir pool whose directory was removed: the refresh fails
     * and libvirt stops the pool (as dv_virt_pool_ensure_dir()). */
    if (active == 1 && virStoragePoolRefresh(p, 0) < 0) {
        active = virStoragePoolIsActive(p);
        if (active < 0)
            return dv_virt_op_fail_null(&op, error, "cannot read storage pool %s", name);
        virResetLastError();
    }
    if (active == 0) {
        /* Only a dir pool is built: building makes its directory (and
         * keeps an existing one); for fs, netfs or logical pools it would
         * format or mount devices, which is the administrator's call. */
        if (g_strcmp0(type, "dir") == 0) {
            if (virStoragePoolBuild(p, 0) < 0)
                return dv_virt_op_fail_null(&op, error,
                                            "cannot make the directory of storage pool %s", name);
            built = TRUE;
        }
        if (virStoragePoolCreate(p, 0) < 0)
            return dv_virt_op_fail_null(&op, error, "cannot start storage pool %s", name);
        started = TRUE;
    }
    if (virStoragePoolGetInfo(p, &info) < 0)
        return dv_virt_op_fail_null(&op, error, "cannot read storage pool %s", name);
    if (info.available < needed) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "pool",
                           "pool: storage pool %s has %llu MiB free; %" G_GUINT64_FORMAT
                           " MiB are needed",
                           name, info.available >> 20, (needed + (1 << 20) - 1) >> 20);
        return NULL;
    }
    {
        g_autofree char *path =
            dv_virt_xml_child_text(dv_virt_xml_child(xmlDocGetRootElement(doc), "target"), "path");
        json_object_set_string_member(out, "path", path);
    }
    json_object_set_string_member(out, "type", type);
    json_object_set_boolean_member(out, "built", built);
    json_object_set_boolean_member(out, "started", started);
    json_object_set_int_member(out, "available", (gint64)info.available);
    return g_steal_pointer(&out);
}
