#define G_LOG_DOMAIN "DvVirtDomain"

#include "dv-virt-private.h"

#include "dv-validate.h"

#include <string.h>

#define DV_VIRT_POLL_INTERVAL_MS 250

virDomainPtr
dv_virt_domain_lookup(DvVirtOp *op, const char *uuid, GError **error)
{
    virDomainPtr dom;

    if (!dv_validate_id("uuid", uuid, error))
        return NULL;
    dom = virDomainLookupByUUIDString(op->conn, uuid);
    if (dom == NULL)
        return dv_virt_op_fail_null(op, error, "cannot find domain %s", uuid);
    return dom;
}

char *
dv_virt_domain_define(DvVirtHost *host, const char *xml, GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    char uuid[VIR_UUID_STRING_BUFLEN];

    g_return_val_if_fail(host != NULL, NULL);
    g_return_val_if_fail(xml != NULL, NULL);
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;
    dom = virDomainDefineXML(op.conn, xml);
    if (dom == NULL)
        return dv_virt_op_fail_null(&op, error, "cannot define domain");
    if (virDomainGetUUIDString(dom, uuid) < 0)
        return dv_virt_op_fail_null(&op, error, "cannot read the new domain's UUID");
    return g_strdup(uuid);
}

gboolean
dv_virt_domain_start(DvVirtHost *host, const char *uuid, GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;

    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return FALSE;
    if (virDomainCreate(dom) < 0) {
        g_autoptr(GError) local_error = NULL;

        dv_virt_op_fail(&op, &local_error, "cannot start domain %s", uuid);
        /* "Already running" is a conflict whatever code the driver used
         * (QEMU: OPERATION_INVALID, test: INTERNAL_ERROR). */
        if (g_error_matches(local_error, DV_ERROR, DV_ERROR_HOST_FAILED) &&
            virDomainIsActive(dom) == 1)
            local_error->code = DV_ERROR_CONFLICT;
        g_propagate_error(error, g_steal_pointer(&local_error));
        return FALSE;
    }
    return TRUE;
}

gboolean
dv_virt_domain_shutdown(DvVirtHost *host, const char *uuid, GCancellable *cancellable,
                        GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;

    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return FALSE;
    if (virDomainShutdown(dom) < 0)
        return dv_virt_op_fail(&op, error, "cannot shut down domain %s", uuid);
    return TRUE;
}

/* One short operation per poll so the wait holds no slot. */
static gboolean
dv_virt_domain_get_state(DvVirtHost *host, const char *uuid, int *ret_state,
                         GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    int state = 0;
    int reason = 0;

    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return FALSE;
    if (virDomainGetState(dom, &state, &reason, 0) < 0)
        return dv_virt_op_fail(&op, error, "cannot read the state of domain %s", uuid);
    *ret_state = state;
    return TRUE;
}

gboolean
dv_virt_domain_wait_shutoff(DvVirtHost *host, const char *uuid, guint timeout_ms,
                            GCancellable *cancellable, GError **error)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * G_TIME_SPAN_MILLISECOND;

    for (;;) {
        int state = 0;

        if (!dv_virt_domain_get_state(host, uuid, &state, cancellable, error))
            return FALSE;
        if (state == VIR_DOMAIN_SHUTOFF || state == VIR_DOMAIN_CRASHED)
            return TRUE;
        if (g_get_monotonic_time() >= deadline) {
            g_set_error(error, DV_ERROR, DV_ERROR_TIMEOUT,
                        "domain %s did not shut off within %u ms", uuid, timeout_ms);
            return FALSE;
        }
        if (g_cancellable_set_error_if_cancelled(cancellable, error)) {
            dv_error_convert(error);
            return FALSE;
        }
        g_usleep(DV_VIRT_POLL_INTERVAL_MS * G_TIME_SPAN_MILLISECOND);
    }
}

/* Inside @op: forced power-off, a no-op when already off. */
static gboolean
dv_virt_domain_destroy_in(DvVirtOp *op, virDomainPtr dom, const char *uuid, GError **error)
{
    int active = virDomainIsActive(dom);

    if (active < 0)
        return dv_virt_op_fail(op, error, "cannot read the state of domain %s", uuid);
    if (active == 0)
        return TRUE;
    if (virDomainDestroy(dom) < 0) {
        g_autoptr(GError) local_error = NULL;

        dv_virt_op_fail(op, &local_error, "cannot stop domain %s", uuid);
        /* It stopped by itself between the check and the destroy. */
        if (g_error_matches(local_error, DV_ERROR, DV_ERROR_CONFLICT) &&
            virDomainIsActive(dom) == 0)
            return TRUE;
        g_propagate_error(error, g_steal_pointer(&local_error));
        return FALSE;
    }
    return TRUE;
}

gboolean
dv_virt_domain_destroy(DvVirtHost *host, const char *uuid, GCancellable *cancellable,
                       GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;

    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return FALSE;
    return dv_virt_domain_destroy_in(&op, dom, uuid, error);
}

static gboolean
dv_virt_domain_undefine_in(DvVirtOp *op, virDomainPtr dom, const char *uuid, GError **error)
{
    const unsigned int all = VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                             VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                             VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA;
    const virError *err;
    int active = virDomainIsActive(dom);

    if (active < 0)
        return dv_virt_op_fail(op, error, "cannot read the state of domain %s", uuid);
    if (active == 1) {
        g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT,
                    "domain %s is running: stop it before undefining it", uuid);
        return FALSE;
    }
    if (virDomainUndefineFlags(dom, all) == 0)
        return TRUE;
    /* Drivers without NVRAM or checkpoints (the test driver) reject those
     * flags as unsupported; nothing of that kind exists there to remove. */
    err = virGetLastError();
    if (err == NULL || (err->code != VIR_ERR_INVALID_ARG && err->code != VIR_ERR_NO_SUPPORT &&
                        err->code != VIR_ERR_ARGUMENT_UNSUPPORTED))
        return dv_virt_op_fail(op, error, "cannot undefine domain %s", uuid);
    if (virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                                        VIR_DOMAIN_UNDEFINE_MANAGED_SAVE) < 0)
        return dv_virt_op_fail(op, error, "cannot undefine domain %s", uuid);
    return TRUE;
}

gboolean
dv_virt_domain_undefine(DvVirtHost *host, const char *uuid, GCancellable *cancellable,
                        GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;

    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return FALSE;
    return dv_virt_domain_undefine_in(&op, dom, uuid, error);
}

/* Paths of the disks that belong to the machine alone: writable, not
 * shared, not a CD-ROM (an install ISO is shared by many machines). */
static GPtrArray *
dv_virt_domain_owned_disk_paths(const char *xml, GError **error)
{
    g_autoptr(xmlDoc) doc = dv_virt_xml_parse(xml, error);
    g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
    xmlNode *devices;

    if (doc == NULL)
        return NULL;
    devices = dv_virt_xml_child(xmlDocGetRootElement(doc), "devices");
    for (xmlNode *d = devices != NULL ? devices->children : NULL; d != NULL; d = d->next) {
        g_autofree char *device = NULL;
        g_autofree char *path = NULL;
        xmlNode *source;

        if (d->type != XML_ELEMENT_NODE || xmlStrcmp(d->name, BAD_CAST "disk") != 0)
            continue;
        device = dv_virt_xml_prop(d, "device");
        if (device != NULL && g_strcmp0(device, "disk") != 0)
            continue;
        /* A transient disk's source is a base other domains share
         * (pooled catalog machines); only QEMU's overlay is the domain's,
         * and libvirt removes it at stop. */
        if (dv_virt_xml_child(d, "readonly") != NULL || dv_virt_xml_child(d, "shareable") != NULL ||
            dv_virt_xml_child(d, "transient") != NULL)
            continue;
        source = dv_virt_xml_child(d, "source");
        path = dv_virt_xml_prop(source, "file");
        if (path == NULL)
            path = dv_virt_xml_prop(source, "dev");
        if (path != NULL)
            g_ptr_array_add(paths, g_steal_pointer(&path));
    }
    return g_steal_pointer(&paths);
}

gboolean
dv_virt_domain_delete(DvVirtHost *host, const char *uuid, gboolean delete_volumes,
                      GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(GPtrArray) paths = NULL;

    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return FALSE;
    if (delete_volumes) {
        char *xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE);

        if (xml == NULL)
            return dv_virt_op_fail(&op, error, "cannot read domain %s", uuid);
        paths = dv_virt_domain_owned_disk_paths(xml, error);
        free(xml);
        if (paths == NULL)
            return FALSE;
        /* External snapshots' frozen bases, layers and memory files go
         * with the disks (the metadata naming them goes with undefine). */
        {
            g_autoptr(GPtrArray) more = dv_virt_snapshot_external_files(&op, dom, error);
            if (more == NULL)
                return FALSE;
            for (guint i = 0; i < more->len; i++) {
                const char *p = g_ptr_array_index(more, i);
                if (!g_ptr_array_find_with_equal_func(paths, p, g_str_equal, NULL))
                    g_ptr_array_add(paths, g_strdup(p));
            }
        }
    }
    if (!dv_virt_domain_destroy_in(&op, dom, uuid, error))
        return FALSE;
    if (!dv_virt_domain_undefine_in(&op, dom, uuid, error))
        return FALSE;
    for (guint i = 0; paths != NULL && i < paths->len; i++) {
        const char *path = g_ptr_array_index(paths, i);
        g_autoptr(GError) local = NULL;
        g_autoptr(virStorageVol) vol = dv_virt_volume_lookup_refreshed(&op, path, &local);

        if (local != NULL) {
            g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                       "domain %s undefined, but: ", uuid);
            return FALSE;
        }
        /* Not a volume of any pool (or already gone): nothing to do. */
        if (vol == NULL)
            continue;
        if (virStorageVolDelete(vol, 0) < 0)
            return dv_virt_op_fail(&op, error, "domain %s undefined, but cannot delete volume %s",
                                   uuid, path);
    }
    return TRUE;
}

JsonObject *
dv_virt_domain_get(DvVirtHost *host, const char *uuid, GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(JsonObject) entry = NULL;
    int autostart = 0;

    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;

    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return NULL;
    entry = dv_virt_domain_entry_new(&op, dom, TRUE, error);
    if (entry == NULL)
        return NULL;
    /* One domain only: host probes list many and leave it out. */
    if (virDomainGetAutostart(dom, &autostart) < 0)
        return dv_virt_op_fail_null(&op, error, "cannot read autostart of domain %s", uuid);
    json_object_set_boolean_member(entry, "autostart", autostart != 0);
    return g_steal_pointer(&entry);
}

char *
dv_virt_domain_get_xml(DvVirtHost *host, const char *uuid, gboolean inactive,
                       GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    char *xml;
    char *ret;

    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return NULL;
    xml = virDomainGetXMLDesc(dom, inactive ? VIR_DOMAIN_XML_INACTIVE : 0);
    if (xml == NULL)
        return dv_virt_op_fail_null(&op, error, "cannot read domain %s", uuid);
    ret = g_strdup(xml);
    free(xml);
    return ret;
}
