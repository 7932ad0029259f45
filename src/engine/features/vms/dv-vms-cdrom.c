#define G_LOG_DOMAIN "DvVmsCdrom"

/* Installation media (issue 12, item 2; docs/API.md "CD-ROMs"): an ISO
 * named by a library share and a file, or by a pool and a volume, always
 * one the VM's host holds; CD-ROM drives in a VM's spec and media
 * inserted into and ejected from a VM, running or not.
 *
 * Every reference is checked against the inventory before a job exists
 * (a refusal names the field and the rule and writes nothing), and the
 * job changes the medium with virDomainUpdateDeviceFlags, live and in the
 * definition (dv_virt_domain_cdrom_change()). */

#include "dv-vms-private.h"

#include <string.h>

const DvFieldSpec dv_vm_cdrom_fields[] = {
    { "library_share", DV_FIELD_STRING, FALSE, "a library share on the VM's host (id or name)" },
    { "file", DV_FIELD_STRING, FALSE, "an ISO in that share", .max_len = DV_NAME_MAX },
    { "pool", DV_FIELD_STRING, FALSE, "a storage pool of the VM's host (name)" },
    { "volume", DV_FIELD_STRING, FALSE, "an ISO volume in that pool (name)",
      .max_len = DV_NAME_MAX },
    { "eject", DV_FIELD_BOOL, FALSE, "true: empty the drive" },
    { "target", DV_FIELD_STRING, FALSE, "the drive (hdc, sda...); default the first" },
    { NULL },
};

/* The inventory row of the volume at @path on @host_id, or NULL. */
static JsonObject *
dv_vm_iso_volume(DvEngine *engine, const char *host_id, const char *path)
{
    g_autoptr(JsonArray) rows = dv_core_list_all(engine, &dv_table_volumes, "path", path, NULL);
    for (guint i = 0; rows != NULL && i < json_array_get_length(rows); i++) {
        JsonObject *r = json_array_get_object_element(rows, i);
        if (g_strcmp0(dv_json_get_string(r, "host_id", NULL), host_id) == 0)
            return json_object_ref(r);
    }
    return NULL;
}

char *
dv_engine_vm_iso_path(DvEngine *engine, const DvActor *actor, JsonObject *host, JsonObject *ref,
                      const char *prefix, GError **error)
{
    const char *host_id = dv_json_get_string(host, "id", "");
    const char *host_name = dv_json_get_string(host, "name", "");
    const char *share_ref = dv_json_get_string(ref, "library_share", NULL);
    const char *file = dv_json_get_string(ref, "file", NULL);
    const char *pool_ref = dv_json_get_string(ref, "pool", NULL);
    const char *vname = dv_json_get_string(ref, "volume", NULL);
    g_autofree char *f_share = g_strconcat(prefix, "library_share", NULL);
    g_autofree char *f_file = g_strconcat(prefix, "file", NULL);
    g_autofree char *f_pool = g_strconcat(prefix, "pool", NULL);
    g_autofree char *f_volume = g_strconcat(prefix, "volume", NULL);
    g_autofree char *path = NULL;
    g_autoptr(JsonObject) vol = NULL;
    const char *f_named;
    const char *format;

    if ((share_ref != NULL) + (pool_ref != NULL) != 1 || (share_ref != NULL) != (file != NULL) ||
        (pool_ref != NULL) != (vname != NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, share_ref != NULL ? f_file : f_share,
                           "%s: an ISO is library_share with file, or pool with volume",
                           share_ref != NULL ? f_file : f_share);
        return NULL;
    }
    if (share_ref != NULL) {
        g_autoptr(JsonObject) share = NULL;
        if (!dv_validate_name(f_file, file, error))
            return NULL;
        share =
            dv_core_resolve_for(engine, actor, DV_KIND_LIBRARY_SHARE, share_ref, f_share, error);
        if (share == NULL)
            return NULL;
        if (g_strcmp0(dv_json_get_string(share, "host_id", NULL), host_id) != 0) {
            dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, f_share,
                               "%s: library share '%s' is not on host %s; an ISO must be in a "
                               "share or a pool of the VM's host",
                               f_share, dv_json_get_string(share, "name", ""), host_name);
            return NULL;
        }
        path = g_build_filename(dv_json_get_string(share, "path", "/"), file, NULL);
        vol = dv_vm_iso_volume(engine, host_id, path);
        f_named = f_file;
        if (vol == NULL) {
            dv_set_field_error(error, DV_ERROR_NOT_FOUND, f_file,
                               "%s: library share '%s' holds no file '%s' on host %s (upload it, "
                               "or refresh the host if it was just copied there)",
                               f_file, dv_json_get_string(share, "name", ""), file, host_name);
            return NULL;
        }
    } else {
        g_autoptr(JsonArray) pools = NULL;
        JsonObject *pool = NULL;
        if (!dv_validate_name(f_pool, pool_ref, error) || !dv_validate_name(f_volume, vname, error))
            return NULL;
        pools = dv_core_list_all(engine, &dv_table_pools, "host_id", host_id, error);
        if (pools == NULL)
            return NULL;
        for (guint i = 0; i < json_array_get_length(pools); i++) {
            JsonObject *p = json_array_get_object_element(pools, i);
            if (g_strcmp0(dv_json_get_string(p, "name", ""), pool_ref) == 0)
                pool = p;
        }
        if (pool == NULL) {
            dv_set_field_error(error, DV_ERROR_NOT_FOUND, f_pool,
                               "%s: host %s has no storage pool '%s'", f_pool, host_name, pool_ref);
            return NULL;
        }
        path = g_build_filename(dv_json_get_string(pool, "path", "/"), vname, NULL);
        vol = dv_vm_iso_volume(engine, host_id, path);
        /* A volume the caller may not read is as absent as an unknown one. */
        if (vol != NULL) {
            g_autoptr(JsonObject) seen = dv_core_resolve_for(
                engine, actor, DV_KIND_VOLUME, dv_json_get_string(vol, "id", ""), f_volume, NULL);
            if (seen == NULL)
                g_clear_pointer(&vol, json_object_unref);
        }
        f_named = f_volume;
        if (vol == NULL) {
            dv_set_field_error(error, DV_ERROR_NOT_FOUND, f_volume,
                               "%s: pool '%s' of host %s holds no volume '%s' (upload it, or "
                               "refresh the host if it was just copied there)",
                               f_volume, pool_ref, host_name, vname);
            return NULL;
        }
    }
    /* libvirt reads an ISO9660 file as format "iso"; a raw image is taken
     * too (a hybrid ISO is often named .img).  A qcow2 image is a disk. */
    format = dv_json_get_string(vol, "format", "raw");
    if (g_strcmp0(format, "iso") != 0 && g_strcmp0(format, "raw") != 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f_named,
                           "%s: %s is a %s image, not an ISO; attach it as a disk", f_named, path,
                           format);
        return NULL;
    }
    return g_steal_pointer(&path);
}

JsonObject *
dv_engine_vm_cdrom(DvEngine *engine, const char *vm_ref, JsonObject *body, const DvActor *actor,
                   GError **error)
{
    g_autoptr(JsonObject) vm = NULL;
    g_autoptr(JsonObject) host = NULL;
    g_autoptr(JsonObject) params = json_object_new();
    gboolean eject = dv_json_get_bool(body, "eject", FALSE);
    const char *target = dv_json_get_string(body, "target", NULL);

    if (!dv_json_check_fields(body, dv_vm_cdrom_fields, NULL, error))
        return NULL;
    vm = dv_core_resolve_for(engine, actor, DV_KIND_VM, vm_ref, "ref", error);
    if (vm == NULL)
        return NULL;
    if (target != NULL && !dv_validate_name("target", target, error))
        return NULL;
    if (eject) {
        if (json_object_get_size(body) > (target != NULL ? 2u : 1u)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "eject",
                               "eject: takes no ISO (library_share, file, pool, volume)");
            return NULL;
        }
        json_object_set_null_member(params, "path");
    } else {
        g_autofree char *path = NULL;
        if (json_object_has_member(body, "eject") && json_object_get_size(body) == 1) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "eject",
                               "eject: false needs an ISO (library_share and file, or pool and "
                               "volume)");
            return NULL;
        }
        host = dv_store_get(dv_core(engine)->store, &dv_table_hosts,
                            dv_json_get_string(vm, "host_id", ""), error);
        if (host == NULL)
            return NULL;
        path = dv_engine_vm_iso_path(engine, actor, host, body, "", error);
        if (path == NULL)
            return NULL;
        json_object_set_string_member(params, "path", path);
    }
    if (target != NULL)
        json_object_set_string_member(params, "target", target);
    return dv_vm_submit(engine, "vm.cdrom", vm, params, actor, error);
}

static gboolean
dv_vm_cdrom_change(DvEngine *engine, DvJob *job, DvVirtHost *vh, JsonObject *vm, JsonObject *result,
                   gboolean *ret_live, GError **error)
{
    JsonObject *params = dv_job_get_params(job);
    g_autoptr(JsonObject) changed = NULL;
    JsonObjectIter it;
    const char *member;
    JsonNode *value;

    changed = dv_virt_domain_cdrom_change(
        vh, dv_json_get_string(vm, "uuid", ""), dv_json_get_string(params, "path", NULL),
        dv_json_get_string(params, "target", NULL), dv_job_get_cancellable(job), error);
    if (changed == NULL)
        return FALSE;
    json_object_iter_init(&it, changed);
    while (json_object_iter_next(&it, &member, &value))
        json_object_set_member(result, member, json_node_copy(value));
    *ret_live = dv_json_get_bool(changed, "live", FALSE);
    return TRUE;
}

static gboolean
dv_vm_cdrom_job(DvJob *job, gpointer user_data, GError **error)
{
    static const DvJobStep steps[] = { { "change medium", 80 }, { "save", 20 } };
    return dv_vm_device_job(user_data, job, steps, G_N_ELEMENTS(steps), dv_vm_cdrom_change, error);
}

void
dv_engine_vm_cdrom_register(DvEngine *engine)
{
    /* Setting a medium twice gives the same drive: resumable. */
    DvJobKind kind = { "vm.cdrom", dv_vm_cdrom_job, engine, TRUE };
    dv_job_manager_register_kind(dv_core(engine)->jobs, &kind);
}

/* --- operation rows ----------------------------------------------------------- */

static JsonObject *
dv_op_vm_cdrom(DvOpCall *call, GError **error)
{
    return dv_engine_vm_cdrom(call->engine, call->params[0], call->body, call->actor, error);
}

static const char *const dv_jobs_vm_cdrom[] = { "vm.cdrom", NULL };

static const DvOp dv_vm_cdrom_ops[] = {
    { .name = "vm.cdrom",
      .method = "POST",
      .path = "/vms/{ref}/cdrom",
      .privilege = "vm.change",
      .kind = "vm",
      .object = DV_KIND_VM,
      .target = DV_OP_TARGET_PATH,
      .target_field = "ref",
      .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_vm_cdrom,
      .shape = DV_OP_SHAPE_JOB,
      .body = DV_OP_BODY_REQUIRED,
      .fields = dv_vm_cdrom_fields,
      .flags = DV_OP_FLAG_NO_QUERY,
      .handler = dv_op_vm_cdrom },
};

void
dv_engine_vm_cdrom_register_ops(DvEngine *engine)
{
    dv_core_add_ops(engine, dv_vm_cdrom_ops, G_N_ELEMENTS(dv_vm_cdrom_ops));
}
