#define G_LOG_DOMAIN "DvVirtList"

/* Live listings by name prefix, for the machine catalog reconciler: what
 * a pool and a host hold right now, read from libvirt rather than from
 * the inventory, and only the names that matter (a pool may hold
 * thousands of volumes of other owners). */

#include "dv-virt-private.h"

#include "dv-validate.h"

#include <string.h>

/* g_ptr_array_sort() order of JsonObjects by "name". */
static gint
dv_virt_list_by_name(gconstpointer a, gconstpointer b)
{
    JsonObject *x = *(JsonObject *const *)a;
    JsonObject *y = *(JsonObject *const *)b;
    return g_strcmp0(json_object_get_string_member(x, "name"),
                     json_object_get_string_member(y, "name"));
}

JsonArray *
dv_virt_pool_list_volumes(DvVirtHost *host, const char *pool, const char *prefix,
                          GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStoragePool) p = NULL;
    g_autoptr(DvVirtVolList) vols = NULL;
    g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    g_autoptr(JsonArray) out = json_array_new();
    int n;

    g_return_val_if_fail(host != NULL, NULL);
    g_return_val_if_fail(prefix != NULL, NULL);
    p = dv_virt_pool_open(&op, host, pool, cancellable, error);
    if (p == NULL)
        return NULL;
    n = virStoragePoolListAllVolumes(p, &vols, 0);
    if (n < 0)
        return dv_virt_op_fail_null(&op, error, "cannot list the volumes of pool %s", pool);
    for (int i = 0; i < n; i++) {
        const char *name = virStorageVolGetName(vols[i]);
        g_autoptr(JsonObject) v = NULL;
        char *path;

        if (name == NULL || !g_str_has_prefix(name, prefix))
            continue;
        path = virStorageVolGetPath(vols[i]);
        if (path == NULL) {
            const virError *err = virGetLastError();
            /* Deleted by another client between the list and the read. */
            if (err != NULL && err->code == VIR_ERR_NO_STORAGE_VOL) {
                virResetLastError();
                continue;
            }
            return dv_virt_op_fail_null(&op, error, "cannot read volume %s in pool %s", name, pool);
        }
        v = json_object_new();
        json_object_set_string_member(v, "name", name);
        json_object_set_string_member(v, "path", path);
        free(path);
        g_ptr_array_add(found, g_steal_pointer(&v));
    }
    g_ptr_array_sort(found, dv_virt_list_by_name);
    for (guint i = 0; i < found->len; i++)
        json_array_add_object_element(out, json_object_ref(g_ptr_array_index(found, i)));
    return g_steal_pointer(&out);
}

JsonArray *
dv_virt_domain_list_by_prefix(DvVirtHost *host, const char *prefix, GCancellable *cancellable,
                              GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(DvVirtDomainList) doms = NULL;
    g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    g_autoptr(JsonArray) out = json_array_new();
    int n;

    g_return_val_if_fail(host != NULL, NULL);
    g_return_val_if_fail(prefix != NULL, NULL);
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;
    n = virConnectListAllDomains(op.conn, &doms, 0);
    if (n < 0)
        return dv_virt_op_fail_null(&op, error, "cannot list domains");
    for (int i = 0; i < n; i++) {
        const char *name = virDomainGetName(doms[i]);
        char uuid[VIR_UUID_STRING_BUFLEN];
        g_autoptr(JsonObject) d = NULL;
        g_autoptr(xmlDoc) doc = NULL;
        g_autofree char *description = NULL;
        char *xml;
        int active;

        if (name == NULL || !g_str_has_prefix(name, prefix))
            continue;
        if (virDomainGetUUIDString(doms[i], uuid) < 0)
            return dv_virt_op_fail_null(&op, error, "cannot read the UUID of domain %s", name);
        xml = virDomainGetXMLDesc(doms[i], VIR_DOMAIN_XML_INACTIVE);
        active = xml != NULL ? virDomainIsActive(doms[i]) : -1;
        if (xml == NULL || active < 0) {
            const virError *err = virGetLastError();
            free(xml);
            /* Undefined by another client between the list and the read. */
            if (err != NULL && err->code == VIR_ERR_NO_DOMAIN) {
                virResetLastError();
                continue;
            }
            return dv_virt_op_fail_null(&op, error, "cannot read domain %s", name);
        }
        doc = dv_virt_xml_parse(xml, error);
        free(xml);
        if (doc == NULL)
            return NULL;
        description = dv_virt_xml_child_text(xmlDocGetRootElement(doc), "description");
        d = json_object_new();
        json_object_set_string_member(d, "name", name);
        json_object_set_string_member(d, "uuid", uuid);
        json_object_set_boolean_member(d, "active", active == 1);
        json_object_set_string_member(d, "description", description);
        g_ptr_array_add(found, g_steal_pointer(&d));
    }
    g_ptr_array_sort(found, dv_virt_list_by_name);
    for (guint i = 0; i < found->len; i++)
        json_array_add_object_element(out, json_object_ref(g_ptr_array_index(found, i)));
    return g_steal_pointer(&out);
}

gboolean
dv_virt_pool_refresh(DvVirtHost *host, const char *pool, GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStoragePool) p = NULL;

    g_return_val_if_fail(host != NULL, FALSE);
    p = dv_virt_pool_open(&op, host, pool, cancellable, error);
    if (p == NULL)
        return FALSE;
    if (virStoragePoolRefresh(p, 0) < 0) {
        const virError *err = virGetLastError();
        /* "pool has asynchronous jobs running": an upload or a copy. */
        if (err != NULL &&
            (err->code == VIR_ERR_INTERNAL_ERROR || err->code == VIR_ERR_OPERATION_INVALID)) {
            virResetLastError();
            return TRUE;
        }
        return dv_virt_op_fail(&op, error, "cannot refresh storage pool %s", pool);
    }
    return TRUE;
}

/* g_ptr_array_sort() order of C strings. */
static gint
dv_virt_list_by_string(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *
dv_virt_host_volumes_digest(DvVirtHost *host, gboolean refresh, GCancellable *cancellable,
                            GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(DvVirtPoolList) pools = NULL;
    g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    int n;

    g_return_val_if_fail(host != NULL, NULL);
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;
    n = virConnectListAllStoragePools(op.conn, &pools, VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE);
    if (n < 0) {
        const virError *err = virGetLastError();
        /* A daemon without the storage driver has no volumes to watch. */
        if (err != NULL && err->code == VIR_ERR_NO_SUPPORT) {
            virResetLastError();
            return g_strdup(g_checksum_get_string(sum));
        }
        return dv_virt_op_fail_null(&op, error, "cannot list storage pools");
    }
    for (int i = 0; i < n; i++) {
        const char *pool = virStoragePoolGetName(pools[i]);
        g_autoptr(DvVirtVolList) vols = NULL;
        int nv;

        /* A refresh refused (an upload or a copy runs in the pool, the
         * pool stopped meanwhile) leaves what libvirt knew: the next
         * round tries again. */
        if (refresh && virStoragePoolRefresh(pools[i], 0) < 0)
            virResetLastError();
        nv = virStoragePoolListAllVolumes(pools[i], &vols, 0);
        if (nv < 0) {
            /* Stopped or undefined between the two calls. */
            virResetLastError();
            g_ptr_array_add(lines, g_strdup_printf("%s\n", pool));
            continue;
        }
        for (int j = 0; j < nv; j++) {
            virStorageVolInfo info;

            if (virStorageVolGetInfo(vols[j], &info) < 0) {
                virResetLastError();
                info.capacity = G_MAXUINT64;
            }
            g_ptr_array_add(lines,
                            g_strdup_printf("%s/%s %" G_GUINT64_FORMAT "\n", pool,
                                            virStorageVolGetName(vols[j]), (guint64)info.capacity));
        }
    }
    g_ptr_array_sort(lines, dv_virt_list_by_string);
    for (guint i = 0; i < lines->len; i++)
        g_checksum_update(sum, g_ptr_array_index(lines, i), -1);
    return g_strdup(g_checksum_get_string(sum));
}
