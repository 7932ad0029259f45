#define G_LOG_DOMAIN "DvVmsDisks"

/* Volumes made, grown and deleted from Drover, and a VM's disks added and
 * removed (issue 12, item 5; docs/API.md "Volumes", "A VM's disks").
 *
 * Every request is checked against the inventory before a job exists (bad
 * input changes nothing), and again on the host by the job: the
 * inventory may be behind.  A volume used by a VM's disk is never deleted;
 * a volume attached to a running VM is grown by QEMU so its guest sees the
 * new size (dv_virt_volume_resize()). */

#include "dv-vms-private.h"

#include <string.h>

#define DV_VOLUME_MAX_BYTES (G_GINT64_CONSTANT(64) << 40) /* 64 TiB */

const DvFieldSpec dv_volume_create_fields[] = {
    { "pool", DV_FIELD_STRING, TRUE, "a storage pool id or name" },
    { "host", DV_FIELD_STRING_OR_NULL, FALSE, "a host id or name, when pool names several" },
    { "name", DV_FIELD_STRING, TRUE, .max_len = DV_NAME_MAX },
    { "size", DV_FIELD_INT, TRUE, "bytes", .min = 1, .max = DV_VOLUME_MAX_BYTES },
    { "format", DV_FIELD_STRING, FALSE, "qcow2 (default) or raw" },
    { NULL },
};

const DvFieldSpec dv_volume_resize_fields[] = {
    { "size", DV_FIELD_INT, TRUE, "bytes; at least the volume's size (volumes only grow)", .min = 1,
      .max = DV_VOLUME_MAX_BYTES },
    { NULL },
};

const DvFieldSpec dv_vm_disk_fields[] = {
    { "volume", DV_FIELD_STRING, FALSE, "an existing volume of the VM's host: id or path" },
    { "size", DV_FIELD_INT, FALSE, "bytes: a new volume", .min = 1, .max = DV_VOLUME_MAX_BYTES },
    { "pool", DV_FIELD_STRING, FALSE, "the new volume's pool (default \"default\")" },
    { "format", DV_FIELD_STRING, FALSE, "the new volume's format: qcow2 (default) or raw" },
    { NULL },
};

static gboolean
dv_volume_format_ok(const char *format, GError **error)
{
    if (g_strcmp0(format, "qcow2") != 0 && g_strcmp0(format, "raw") != 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "format",
                           "format: must be qcow2 or raw");
        return FALSE;
    }
    return TRUE;
}

/* The row of @table on @host_id whose @column is @value, or NULL (no error). */
static JsonObject *
dv_volume_row_on_host(DvEngine *engine, const DvTableDef *def, const char *host_id,
                      const char *column, const char *value, GError **error)
{
    g_autoptr(JsonArray) rows = dv_core_list_all(engine, def, "host_id", host_id, error);
    if (rows == NULL)
        return NULL;
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *r = json_array_get_object_element(rows, i);
        if (g_strcmp0(dv_json_get_string(r, column, NULL), value) == 0)
            return json_object_ref(r);
    }
    return NULL;
}

/* The VM of @host_id one of whose disks is the file @path, or NULL. */
static JsonObject *
dv_volume_user(DvEngine *engine, const char *host_id, const char *path, GError **error)
{
    g_autoptr(JsonArray) vms = dv_core_list_all(engine, &dv_table_vms, "host_id", host_id, error);
    if (vms == NULL)
        return NULL;
    for (guint i = 0; i < json_array_get_length(vms); i++) {
        JsonObject *vm = json_array_get_object_element(vms, i);
        JsonArray *disks = dv_json_get_array(dv_json_get_object(vm, "spec"), "disks");
        for (guint k = 0; disks != NULL && k < json_array_get_length(disks); k++) {
            JsonObject *d = json_array_get_object_element(disks, k);
            if (g_strcmp0(dv_json_get_string(d, "source", NULL), path) == 0)
                return json_object_ref(vm);
        }
    }
    return NULL;
}

/* Records a volume a job made (a resumed job finds it recorded). */
gboolean
dv_volume_record(DvEngine *engine, JsonObject *pool, JsonObject *vol, GError **error)
{
    g_autoptr(JsonObject) row = json_object_new();
    g_autofree char *id = g_uuid_string_random();
    g_autoptr(GError) local = NULL;

    json_object_set_string_member(row, "id", id);
    json_object_set_string_member(row, "pool_id", dv_json_get_string(pool, "id", ""));
    json_object_set_string_member(row, "host_id", dv_json_get_string(pool, "host_id", ""));
    json_object_set_string_member(row, "name", dv_json_get_string(vol, "name", ""));
    json_object_set_string_member(row, "vkey", dv_json_get_string(vol, "key", NULL));
    json_object_set_string_member(row, "path", dv_json_get_string(vol, "path", ""));
    json_object_set_string_member(row, "format", dv_json_get_string(vol, "format", "raw"));
    json_object_set_int_member(row, "capacity", dv_json_get_int(vol, "capacity", 0));
    json_object_set_int_member(row, "allocation", dv_json_get_int(vol, "allocation", 0));
    if (!dv_store_insert(dv_core(engine)->store, &dv_table_volumes, row, &local) &&
        !g_error_matches(local, DV_ERROR, DV_ERROR_CONFLICT)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    return TRUE;
}

/* The pool @ref names (id, or name on @host_ref or on the one host that
 * has it), running. */
static JsonObject *
dv_volume_pool(DvEngine *engine, const DvActor *actor, const char *ref, const char *host_ref,
               GError **error)
{
    g_autoptr(JsonObject) pool = NULL;

    if (host_ref != NULL) {
        g_autoptr(JsonObject) host =
            dv_core_resolve_for(engine, actor, DV_KIND_HOST, host_ref, "host", error);
        if (host == NULL)
            return NULL;
        g_autoptr(GError) local = NULL;
        pool = dv_volume_row_on_host(engine, &dv_table_pools, dv_json_get_string(host, "id", ""),
                                     "name", ref, &local);
        if (local != NULL) {
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        if (pool == NULL) {
            g_autofree char *safe = dv_text_excerpt(ref, 64);
            dv_set_field_error(error, DV_ERROR_NOT_FOUND, "pool",
                               "pool: host %s has no storage pool '%s'",
                               dv_json_get_string(host, "name", ""), safe);
            return NULL;
        }
    } else if (g_uuid_string_is_valid(ref)) {
        pool = dv_core_resolve_for(engine, actor, DV_KIND_POOL, ref, "pool", error);
        if (pool == NULL)
            return NULL;
    } else {
        /* Pools are named per host: a name must be the only one the
         * actor sees. */
        g_autoptr(JsonArray) named = dv_core_list_all(engine, &dv_table_pools, "name", ref, error);
        if (named == NULL)
            return NULL;
        for (guint i = 0; i < json_array_get_length(named); i++) {
            const char *id = dv_json_get_string(json_array_get_object_element(named, i), "id", "");
            g_autoptr(JsonObject) seen =
                dv_core_resolve_for(engine, actor, DV_KIND_POOL, id, "pool", NULL);
            if (seen == NULL)
                continue;
            if (pool != NULL) {
                dv_set_field_error(error, DV_ERROR_CONFLICT, "pool",
                                   "pool: several hosts have a storage pool '%s'; give host too",
                                   ref);
                return NULL;
            }
            pool = g_steal_pointer(&seen);
        }
        if (pool == NULL) {
            g_autofree char *safe = dv_text_excerpt(ref, 64);
            dv_set_field_error(error, DV_ERROR_NOT_FOUND, "pool",
                               "pool: no storage pool '%s' found", safe);
            return NULL;
        }
    }
    if (g_strcmp0(dv_json_get_string(pool, "state", ""), "running") != 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "pool",
                           "pool: storage pool '%s' is not running",
                           dv_json_get_string(pool, "name", ""));
        return NULL;
    }
    return g_steal_pointer(&pool);
}

/* A new volume's name is free in @pool (by the inventory). */
gboolean
dv_volume_name_free(DvEngine *engine, JsonObject *pool, const char *name, const char *field,
                    GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonArray) vols = dv_core_list_all(engine, &dv_table_volumes, "pool_id",
                                                 dv_json_get_string(pool, "id", ""), &local);
    if (vols == NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    for (guint i = 0; i < json_array_get_length(vols); i++) {
        JsonObject *v = json_array_get_object_element(vols, i);
        if (g_strcmp0(dv_json_get_string(v, "name", NULL), name) == 0) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, field,
                               "%s: pool '%s' already holds a volume named %s", field,
                               dv_json_get_string(pool, "name", ""), name);
            return FALSE;
        }
    }
    return TRUE;
}

/* --- volumes --------------------------------------------------------------- */

JsonObject *
dv_engine_volume_create(DvEngine *engine, JsonObject *body, const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) pool = NULL;
    g_autoptr(JsonObject) params = json_object_new();
    const char *name;
    const char *format;

    if (!dv_json_check_fields(body, dv_volume_create_fields, NULL, error))
        return NULL;
    name = dv_json_get_string(body, "name", NULL);
    format = dv_json_get_string(body, "format", "qcow2");
    if (!dv_validate_name("name", name, error) || !dv_volume_format_ok(format, error) ||
        !dv_validate_range("size", dv_json_get_int(body, "size", 0), 1, DV_VOLUME_MAX_BYTES, error))
        return NULL;
    pool = dv_volume_pool(engine, actor, dv_json_get_string(body, "pool", ""),
                          dv_json_get_string(body, "host", NULL), error);
    if (pool == NULL || !dv_volume_name_free(engine, pool, name, "name", error))
        return NULL;
    json_object_set_string_member(params, "pool_id", dv_json_get_string(pool, "id", ""));
    json_object_set_string_member(params, "pool", dv_json_get_string(pool, "name", ""));
    json_object_set_string_member(params, "name", name);
    json_object_set_string_member(params, "format", format);
    json_object_set_int_member(params, "size", dv_json_get_int(body, "size", 0));
    return dv_core_submit(engine, "volume.create", "volume", NULL, name,
                          dv_json_get_string(pool, "host_id", ""), params, actor, error);
}

static gboolean
dv_volume_create_job(DvJob *job, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    JsonObject *params = dv_job_get_params(job);
    GCancellable *c = dv_job_get_cancellable(job);
    const char *pool_name = dv_json_get_string(params, "pool", "");
    const char *name = dv_json_get_string(params, "name", "");
    g_autoptr(JsonObject) pool = NULL;
    g_autoptr(JsonObject) vol = NULL;
    g_autoptr(JsonObject) result = json_object_new();
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(GError) local = NULL;
    static const DvJobStep steps[] = { { "create", 80 }, { "save", 20 } };

    dv_job_set_steps(job, steps, G_N_ELEMENTS(steps));
    pool = dv_store_get(dv_core(engine)->store, &dv_table_pools,
                        dv_json_get_string(params, "pool_id", ""), error);
    if (pool == NULL)
        return FALSE;
    vh = dv_core_virt_host_by_id(engine, dv_json_get_string(pool, "host_id", ""), error);
    if (vh == NULL || !dv_job_step(job, "create", error))
        return FALSE;
    vol = dv_virt_volume_create(vh, pool_name, name, (guint64)dv_json_get_int(params, "size", 0),
                                dv_json_get_string(params, "format", "qcow2"), c, &local);
    if (vol == NULL) {
        /* The name taken on the host but not in the inventory: a
         * resumed job made it, or someone else did; either way a clear
         * conflict rather than a second volume. */
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (!dv_job_step(job, "save", error) || !dv_volume_record(engine, pool, vol, error))
        return FALSE;
    {
        g_autoptr(JsonObject) row = dv_volume_row_on_host(
            engine, &dv_table_volumes, dv_json_get_string(pool, "host_id", ""), "path",
            dv_json_get_string(vol, "path", ""), error);
        if (row == NULL)
            return FALSE;
        json_object_set_string_member(result, "id", dv_json_get_string(row, "id", ""));
    }
    json_object_set_string_member(result, "name", name);
    json_object_set_string_member(result, "path", dv_json_get_string(vol, "path", ""));
    json_object_set_int_member(result, "capacity", dv_json_get_int(vol, "capacity", 0));
    dv_job_set_result(job, result);
    return TRUE;
}

JsonObject *
dv_engine_volume_resize(DvEngine *engine, const char *ref, JsonObject *body, const DvActor *actor,
                        GError **error)
{
    g_autoptr(JsonObject) vol = NULL;
    g_autoptr(JsonObject) params = json_object_new();
    gint64 size;
    gint64 capacity;

    vol = dv_core_resolve_for(engine, actor, DV_KIND_VOLUME, ref, "ref", error);
    if (vol == NULL)
        return NULL;
    if (body == NULL || !json_object_has_member(body, "size")) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "size", "size: is required (bytes)");
        return NULL;
    }
    if (!dv_json_check_fields(body, dv_volume_resize_fields, NULL, error))
        return NULL;
    size = dv_json_get_int(body, "size", 0);
    if (!dv_validate_range("size", size, 1, DV_VOLUME_MAX_BYTES, error))
        return NULL;
    capacity = dv_json_get_int(vol, "capacity", 0);
    if (size < capacity) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "size",
                           "size: %" G_GINT64_FORMAT " bytes is below volume %s's %" G_GINT64_FORMAT
                           "; a volume only grows (shrinking would cut its file system)",
                           size, dv_json_get_string(vol, "name", ""), capacity);
        return NULL;
    }
    json_object_set_string_member(params, "path", dv_json_get_string(vol, "path", ""));
    json_object_set_int_member(params, "size", size);
    return dv_core_submit(engine, "volume.resize", "volume", dv_json_get_string(vol, "id", ""),
                          dv_json_get_string(vol, "name", ""),
                          dv_json_get_string(vol, "host_id", ""), params, actor, error);
}

static gboolean
dv_volume_resize_job(DvJob *job, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    JsonObject *params = dv_job_get_params(job);
    const char *vol_id = dv_job_get_target_id(job);
    g_autoptr(JsonObject) vol = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) changes = json_object_new();
    g_autoptr(DvVirtHost) vh = NULL;
    static const DvJobStep steps[] = { { "resize", 80 }, { "save", 20 } };

    dv_job_set_steps(job, steps, G_N_ELEMENTS(steps));
    vol = dv_store_get(dv_core(engine)->store, &dv_table_volumes, vol_id, error);
    if (vol == NULL)
        return FALSE;
    vh = dv_core_virt_host_by_id(engine, dv_json_get_string(vol, "host_id", ""), error);
    if (vh == NULL || !dv_job_step(job, "resize", error))
        return FALSE;
    done = dv_virt_volume_resize(vh, dv_json_get_string(params, "path", ""),
                                 (guint64)dv_json_get_int(params, "size", 0),
                                 dv_job_get_cancellable(job), error);
    if (done == NULL || !dv_job_step(job, "save", error))
        return FALSE;
    json_object_set_int_member(changes, "capacity", dv_json_get_int(done, "capacity", 0));
    if (!dv_store_update(dv_core(engine)->store, &dv_table_volumes, vol_id, changes, error))
        return FALSE;
    json_object_set_string_member(done, "id", vol_id);
    json_object_set_string_member(done, "name", dv_json_get_string(vol, "name", ""));
    dv_job_set_result(job, done);
    return TRUE;
}

JsonObject *
dv_engine_volume_delete(DvEngine *engine, const char *ref, const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) vol = NULL;
    g_autoptr(JsonObject) user = NULL;
    g_autoptr(JsonObject) params = json_object_new();
    g_autoptr(GError) local = NULL;

    vol = dv_core_resolve_for(engine, actor, DV_KIND_VOLUME, ref, "ref", error);
    if (vol == NULL)
        return NULL;
    user = dv_volume_user(engine, dv_json_get_string(vol, "host_id", ""),
                          dv_json_get_string(vol, "path", ""), &local);
    if (local != NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    if (user != NULL) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "ref",
                           "volume %s is a disk of VM %s; remove the disk from the VM first",
                           dv_json_get_string(vol, "name", ""),
                           dv_json_get_string(user, "name", ""));
        return NULL;
    }
    json_object_set_string_member(params, "path", dv_json_get_string(vol, "path", ""));
    return dv_core_submit(engine, "volume.delete", "volume", dv_json_get_string(vol, "id", ""),
                          dv_json_get_string(vol, "name", ""),
                          dv_json_get_string(vol, "host_id", ""), params, actor, error);
}

static gboolean
dv_volume_delete_job(DvJob *job, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    JsonObject *params = dv_job_get_params(job);
    g_autoptr(JsonObject) vol = NULL;
    g_autoptr(JsonObject) user = NULL;
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(GError) local = NULL;
    static const DvJobStep steps[] = { { "delete", 80 }, { "save", 20 } };

    dv_job_set_steps(job, steps, G_N_ELEMENTS(steps));
    vol =
        dv_store_get(dv_core(engine)->store, &dv_table_volumes, dv_job_get_target_id(job), &local);
    if (vol == NULL) {
        if (g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
            return TRUE; /* a resumed job: already gone */
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    /* Checked again: a VM may have taken the disk since the request. */
    user = dv_volume_user(engine, dv_json_get_string(vol, "host_id", ""),
                          dv_json_get_string(vol, "path", ""), &local);
    if (local != NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (user != NULL) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "ref", "volume %s is a disk of VM %s",
                           dv_json_get_string(vol, "name", ""),
                           dv_json_get_string(user, "name", ""));
        return FALSE;
    }
    vh = dv_core_virt_host_by_id(engine, dv_json_get_string(vol, "host_id", ""), error);
    if (vh == NULL || !dv_job_step(job, "delete", error))
        return FALSE;
    if (!dv_virt_volume_delete_by_path(vh, dv_json_get_string(params, "path", ""),
                                       dv_job_get_cancellable(job), &local) &&
        !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (!dv_job_step(job, "save", error))
        return FALSE;
    return dv_store_delete(dv_core(engine)->store, &dv_table_volumes, dv_job_get_target_id(job),
                           error);
}

/* --- a VM's disks ------------------------------------------------------------ */

JsonObject *
dv_engine_vm_disk_add(DvEngine *engine, const char *vm_ref, JsonObject *body, const DvActor *actor,
                      GError **error)
{
    g_autoptr(JsonObject) vm = NULL;
    g_autoptr(JsonObject) params = json_object_new();
    const char *host_id;
    const char *vm_name;

    vm = dv_core_resolve_for(engine, actor, DV_KIND_VM, vm_ref, "ref", error);
    if (vm == NULL)
        return NULL;
    if (body == NULL || !dv_json_check_fields(body, dv_vm_disk_fields, NULL, error))
        return NULL;
    host_id = dv_json_get_string(vm, "host_id", "");
    vm_name = dv_json_get_string(vm, "name", "");
    if (json_object_has_member(body, "volume") == json_object_has_member(body, "size")) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "volume",
                           "volume: give either volume (an existing volume) or size (a new one)");
        return NULL;
    }
    if (json_object_has_member(body, "volume")) {
        const char *ref = dv_json_get_string(body, "volume", "");
        g_autoptr(JsonObject) vol = NULL;
        g_autoptr(JsonObject) user = NULL;
        g_autoptr(GError) local = NULL;
        if (json_object_has_member(body, "pool") || json_object_has_member(body, "format")) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "volume",
                               "volume: an existing volume takes no pool or format");
            return NULL;
        }
        vol = dv_volume_row_on_host(engine, &dv_table_volumes, host_id,
                                    ref[0] == '/' ? "path" : "id", ref, &local);
        if (vol == NULL) {
            g_autofree char *safe = dv_text_excerpt(ref, 256);
            if (local != NULL) {
                g_propagate_error(error, g_steal_pointer(&local));
                return NULL;
            }
            dv_set_field_error(error, DV_ERROR_NOT_FOUND, "volume",
                               "volume: the host of VM %s has no volume '%s'", vm_name, safe);
            return NULL;
        }
        /* vm.change does not reach every volume of the host: the caller
         * must see this one (volume.read in its scope), as absent
         * otherwise. */
        {
            g_autoptr(JsonObject) seen = dv_core_resolve_for(
                engine, actor, DV_KIND_VOLUME, dv_json_get_string(vol, "id", ""), "volume", NULL);
            if (seen == NULL) {
                g_autofree char *safe = dv_text_excerpt(ref, 256);
                dv_set_field_error(error, DV_ERROR_NOT_FOUND, "volume",
                                   "volume: the host of VM %s has no volume '%s'", vm_name, safe);
                return NULL;
            }
        }
        user = dv_volume_user(engine, host_id, dv_json_get_string(vol, "path", ""), &local);
        if (local != NULL) {
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        if (user != NULL) {
            dv_set_field_error(
                error, DV_ERROR_CONFLICT, "volume", "volume: %s is already a disk of VM %s",
                dv_json_get_string(vol, "name", ""), dv_json_get_string(user, "name", ""));
            return NULL;
        }
        json_object_set_string_member(params, "path", dv_json_get_string(vol, "path", ""));
        json_object_set_string_member(params, "format", dv_json_get_string(vol, "format", "raw"));
    } else {
        const char *format = dv_json_get_string(body, "format", "qcow2");
        g_autoptr(JsonObject) pool = NULL;
        g_autoptr(JsonObject) host = NULL;
        g_autofree char *name = NULL;

        if (!dv_volume_format_ok(format, error) ||
            !dv_validate_range("size", dv_json_get_int(body, "size", 0), 1, DV_VOLUME_MAX_BYTES,
                               error))
            return NULL;
        host = dv_store_get(dv_core(engine)->store, &dv_table_hosts, host_id, error);
        if (host == NULL)
            return NULL;
        pool = dv_volume_pool(engine, actor, dv_json_get_string(body, "pool", "default"),
                              dv_json_get_string(host, "name", ""), error);
        if (pool == NULL)
            return NULL;
        /* The first "<vm>-diskN" the pool does not hold. */
        for (guint n = 1; n < 100 && name == NULL; n++) {
            g_autofree char *try = g_strdup_printf("%s-disk%u.%s", vm_name, n,
                                                   g_strcmp0(format, "raw") == 0 ? "img" : "qcow2");
            g_autoptr(GError) taken = NULL;
            if (dv_volume_name_free(engine, pool, try, "pool", &taken))
                name = g_steal_pointer(&try);
            else if (!g_error_matches(taken, DV_ERROR, DV_ERROR_CONFLICT)) {
                g_propagate_error(error, g_steal_pointer(&taken));
                return NULL;
            }
        }
        if (name == NULL) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "pool",
                               "pool: no free disk name for VM %s", vm_name);
            return NULL;
        }
        json_object_set_string_member(params, "pool_id", dv_json_get_string(pool, "id", ""));
        json_object_set_string_member(params, "pool", dv_json_get_string(pool, "name", ""));
        json_object_set_string_member(params, "name", name);
        json_object_set_string_member(params, "format", format);
        json_object_set_int_member(params, "size", dv_json_get_int(body, "size", 0));
    }
    return dv_core_submit(engine, "vm.disk.add", "vm", dv_json_get_string(vm, "id", ""), vm_name,
                          host_id, params, actor, error);
}

static gboolean
dv_vm_disk_attach(DvEngine *engine, DvJob *job, DvVirtHost *vh, JsonObject *vm, JsonObject *result,
                  gboolean *ret_live, GError **error)
{
    JsonObject *params = dv_job_get_params(job);
    GCancellable *c = dv_job_get_cancellable(job);
    g_autofree char *path = g_strdup(dv_json_get_string(params, "path", NULL));
    g_autofree char *target = NULL;
    gboolean created = FALSE;

    if (path == NULL) {
        g_autoptr(JsonObject) pool = dv_store_get(dv_core(engine)->store, &dv_table_pools,
                                                  dv_json_get_string(params, "pool_id", ""), error);
        g_autoptr(JsonObject) vol = NULL;
        if (pool == NULL)
            return FALSE;
        vol = dv_virt_volume_create(vh, dv_json_get_string(params, "pool", ""),
                                    dv_json_get_string(params, "name", ""),
                                    (guint64)dv_json_get_int(params, "size", 0),
                                    dv_json_get_string(params, "format", "qcow2"), c, error);
        if (vol == NULL || !dv_volume_record(engine, pool, vol, error))
            return FALSE;
        path = g_strdup(dv_json_get_string(vol, "path", ""));
        created = TRUE;
    }
    if (!dv_job_step(job, "attach", error))
        return FALSE;
    target = dv_virt_domain_disk_attach(vh, dv_json_get_string(vm, "uuid", ""), path,
                                        dv_json_get_string(params, "format", "qcow2"), ret_live, c,
                                        error);
    if (target == NULL) {
        /* Nothing half-made: the volume this job made goes again. */
        if (created) {
            DvFilter f = { "path", DV_FILTER_EQ, path };
            g_autoptr(GError) local = NULL;
            if (!dv_virt_volume_delete_by_path(vh, path, NULL, &local))
                g_warning("cannot remove volume %s after a failed attach: %s", path,
                          local->message);
            dv_store_delete_matching(dv_core(engine)->store, &dv_table_volumes, &f, 1, NULL);
        }
        return FALSE;
    }
    json_object_set_string_member(result, "target", target);
    json_object_set_string_member(result, "path", path);
    return TRUE;
}

static gboolean
dv_vm_disk_add_job(DvJob *job, gpointer user_data, GError **error)
{
    static const DvJobStep steps[] = { { "create volume", 30 }, { "attach", 50 }, { "save", 20 } };
    return dv_vm_device_job(user_data, job, steps, G_N_ELEMENTS(steps), dv_vm_disk_attach, error);
}

JsonObject *
dv_engine_vm_disk_remove(DvEngine *engine, const char *vm_ref, const char *target,
                         const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) vm = NULL;
    g_autoptr(JsonObject) params = json_object_new();
    JsonArray *disks;
    gboolean found = FALSE;

    vm = dv_core_resolve_for(engine, actor, DV_KIND_VM, vm_ref, "ref", error);
    if (vm == NULL)
        return NULL;
    disks = dv_json_get_array(dv_json_get_object(vm, "spec"), "disks");
    for (guint k = 0; disks != NULL && k < json_array_get_length(disks); k++) {
        JsonObject *d = json_array_get_object_element(disks, k);
        if (g_strcmp0(dv_json_get_string(d, "target", NULL), target) == 0)
            found = TRUE;
    }
    if (!found) {
        g_autofree char *safe = dv_text_excerpt(target, 64);
        dv_set_field_error(error, DV_ERROR_NOT_FOUND, "target", "target: VM %s has no disk %s",
                           dv_json_get_string(vm, "name", ""), safe);
        return NULL;
    }
    json_object_set_string_member(params, "target", target);
    return dv_vm_submit(engine, "vm.disk.remove", vm, params, actor, error);
}

static gboolean
dv_vm_disk_detach(DvEngine *engine, DvJob *job, DvVirtHost *vh, JsonObject *vm, JsonObject *result,
                  gboolean *ret_live, GError **error)
{
    const char *target = dv_json_get_string(dv_job_get_params(job), "target", "");

    if (!dv_virt_domain_disk_detach(vh, dv_json_get_string(vm, "uuid", ""), target, ret_live,
                                    dv_job_get_cancellable(job), error))
        return FALSE;
    json_object_set_string_member(result, "target", target);
    return TRUE;
}

static gboolean
dv_vm_disk_remove_job(DvJob *job, gpointer user_data, GError **error)
{
    static const DvJobStep steps[] = { { "detach", 80 }, { "save", 20 } };
    return dv_vm_device_job(user_data, job, steps, G_N_ELEMENTS(steps), dv_vm_disk_detach, error);
}

void
dv_engine_vm_disks_register(DvEngine *engine)
{
    static const struct {
        const char *name;
        DvJobFunc func;
        gboolean resumable;
    } kinds[] = {
        /* A resumed create finds its name taken on the host: a conflict
         * the operator sees, not a second volume. */
        { "volume.create", dv_volume_create_job, FALSE },
        { "volume.resize", dv_volume_resize_job, TRUE },
        { "volume.delete", dv_volume_delete_job, TRUE },
        { "vm.disk.add", dv_vm_disk_add_job, FALSE },
        { "vm.disk.remove", dv_vm_disk_remove_job, TRUE },
    };
    for (gsize i = 0; i < G_N_ELEMENTS(kinds); i++) {
        DvJobKind kind = { kinds[i].name, kinds[i].func, engine, kinds[i].resumable };
        dv_job_manager_register_kind(dv_core(engine)->jobs, &kind);
    }
}

/* --- operation rows ----------------------------------------------------------- */

static JsonObject *
dv_op_volume_create(DvOpCall *call, GError **error)
{
    return dv_engine_volume_create(call->engine, call->body, call->actor, error);
}

static JsonObject *
dv_op_volume_resize(DvOpCall *call, GError **error)
{
    return dv_engine_volume_resize(call->engine, call->params[0], call->body, call->actor, error);
}

static JsonObject *
dv_op_volume_delete(DvOpCall *call, GError **error)
{
    return dv_engine_volume_delete(call->engine, call->params[0], call->actor, error);
}

static JsonObject *
dv_op_vm_disk_add(DvOpCall *call, GError **error)
{
    return dv_engine_vm_disk_add(call->engine, call->params[0], call->body, call->actor, error);
}

static JsonObject *
dv_op_vm_disk_remove(DvOpCall *call, GError **error)
{
    return dv_engine_vm_disk_remove(call->engine, call->params[0], call->params[1], call->actor,
                                    error);
}

static const char *const dv_jobs_volume_create[] = { "volume.create", NULL };
static const char *const dv_jobs_volume_resize[] = { "volume.resize", NULL };
static const char *const dv_jobs_volume_delete[] = { "volume.delete", NULL };
static const char *const dv_jobs_vm_disk_add[] = { "vm.disk.add", NULL };
static const char *const dv_jobs_vm_disk_remove[] = { "vm.disk.remove", NULL };

static const DvOp dv_vm_disks_ops[] = {
    { .name = "volume.create",
      .method = "POST",
      .path = "/volumes",
      .privilege = "volume.create",
      .kind = "volume",
      .object = DV_KIND_VOLUME,
      /* The host when given (the pool is then looked up on it only),
       * else the pool's id; a pool named without its host is checked
       * as global (a scoped caller gives the host or the id). */
      .target = DV_OP_TARGET_PARENT,
      .target_field = "host",
      .parent_kind = DV_KIND_HOST,
      .alt_field = "pool",
      .alt_kind = DV_KIND_POOL,
      .lock = DV_OP_LOCK_PARENT,
      .job_kinds = dv_jobs_volume_create,
      .shape = DV_OP_SHAPE_JOB,
      .body = DV_OP_BODY_REQUIRED,
      .fields = dv_volume_create_fields,
      .flags = DV_OP_FLAG_NO_QUERY,
      .handler = dv_op_volume_create },
    { .name = "volume.resize",
      .method = "POST",
      .path = "/volumes/{ref}/resize",
      .privilege = "volume.change",
      .kind = "volume",
      .object = DV_KIND_VOLUME,
      .target = DV_OP_TARGET_PATH,
      .target_field = "ref",
      .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_volume_resize,
      .shape = DV_OP_SHAPE_JOB,
      .body = DV_OP_BODY_REQUIRED,
      .fields = dv_volume_resize_fields,
      .flags = DV_OP_FLAG_NO_QUERY,
      .handler = dv_op_volume_resize },
    { .name = "volume.delete",
      .method = "DELETE",
      .path = "/volumes/{ref}",
      .privilege = "volume.delete",
      .kind = "volume",
      .object = DV_KIND_VOLUME,
      .target = DV_OP_TARGET_PATH,
      .target_field = "ref",
      .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_volume_delete,
      .shape = DV_OP_SHAPE_JOB,
      .body = DV_OP_BODY_NONE,
      .flags = DV_OP_FLAG_NO_QUERY,
      .handler = dv_op_volume_delete },
    { .name = "vm.disk.add",
      .method = "POST",
      .path = "/vms/{ref}/disks",
      .privilege = "vm.change",
      .kind = "vm",
      .object = DV_KIND_VM,
      .target = DV_OP_TARGET_PATH,
      .target_field = "ref",
      .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_vm_disk_add,
      .shape = DV_OP_SHAPE_JOB,
      .body = DV_OP_BODY_REQUIRED,
      .fields = dv_vm_disk_fields,
      .flags = DV_OP_FLAG_NO_QUERY,
      .handler = dv_op_vm_disk_add },
    { .name = "vm.disk.remove",
      .method = "DELETE",
      .path = "/vms/{ref}/disks/{target}",
      .privilege = "vm.change",
      .kind = "vm",
      .object = DV_KIND_VM,
      .target = DV_OP_TARGET_PATH,
      .target_field = "ref",
      .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_vm_disk_remove,
      .shape = DV_OP_SHAPE_JOB,
      .body = DV_OP_BODY_NONE,
      .flags = DV_OP_FLAG_NO_QUERY,
      .handler = dv_op_vm_disk_remove },
};

void
dv_engine_vm_disks_register_ops(DvEngine *engine)
{
    dv_core_add_ops(engine, dv_vm_disks_ops, G_N_ELEMENTS(dv_vm_disks_ops));
}
