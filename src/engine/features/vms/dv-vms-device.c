#define G_LOG_DOMAIN "DvVmsDevice"

/* The frame every job that changes one device of a VM shares (a disk, a
 * network interface, a CD-ROM's medium): the VM's row and its host read
 * by the job, the change between the first step and "save", the domain
 * read back into the row, and the result {id, name, ..., applied}. */

#include "dv-vms-private.h"

JsonObject *
dv_vm_submit(DvEngine *engine, const char *kind, JsonObject *vm, JsonObject *params,
             const DvActor *actor, GError **error)
{
    return dv_core_submit(engine, kind, "vm", dv_json_get_string(vm, "id", ""),
                          dv_json_get_string(vm, "name", ""), dv_json_get_string(vm, "host_id", ""),
                          params, actor, error);
}

gboolean
dv_vm_device_job(DvEngine *engine, DvJob *job, const DvJobStep *steps, guint n_steps,
                 DvVmDeviceFunc func, GError **error)
{
    GCancellable *c = dv_job_get_cancellable(job);
    g_autoptr(JsonObject) vm = NULL;
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(JsonObject) result = json_object_new();
    g_autoptr(JsonObject) dom = NULL;
    gboolean live = FALSE;

    g_return_val_if_fail(n_steps >= 2 && g_strcmp0(steps[n_steps - 1].name, "save") == 0, FALSE);
    dv_job_set_steps(job, steps, n_steps);
    vm = dv_store_get(dv_core(engine)->store, &dv_table_vms, dv_job_get_target_id(job), error);
    if (vm == NULL)
        return FALSE;
    json_object_set_string_member(result, "id", dv_json_get_string(vm, "id", ""));
    json_object_set_string_member(result, "name", dv_json_get_string(vm, "name", ""));
    vh = dv_core_virt_host_by_id(engine, dv_json_get_string(vm, "host_id", ""), error);
    if (vh == NULL || !dv_job_step(job, steps[0].name, error))
        return FALSE;
    if (!func(engine, job, vh, vm, result, &live, error) || !dv_job_step(job, "save", error))
        return FALSE;
    dom = dv_virt_domain_get(vh, dv_json_get_string(vm, "uuid", ""), c, error);
    if (dom == NULL || !dv_core_vm_sync(engine, vm, dom, error))
        return FALSE;
    json_object_set_string_member(result, "applied", live ? "live" : "next-boot");
    dv_job_set_result(job, result);
    return TRUE;
}
