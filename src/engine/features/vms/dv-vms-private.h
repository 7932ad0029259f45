#pragma once

/* Shared by the vms feature's own files; not for the rest of the engine. */

#include "dv-vms.h"

G_BEGIN_DECLS

/* Submits a job of @kind on @vm (its id, name and host). */
JsonObject *dv_vm_submit(DvEngine *engine, const char *kind, JsonObject *vm, JsonObject *params,
                         const DvActor *actor, GError **error);

/* What a device job does on the host after its first step has begun: it
 * changes domain @vm on @vh (it may begin later steps itself, never
 * "save"), adds its members to @result and says in *@ret_live whether the
 * running domain took the change too. */
typedef gboolean (*DvVmDeviceFunc)(DvEngine *engine, DvJob *job, DvVirtHost *vh, JsonObject *vm,
                                   JsonObject *result, gboolean *ret_live, GError **error);

/* The frame of a job that changes one device of its target VM: @steps
 * (the last one "save") set, the VM's row and host read, the first step
 * begun, @func run, the domain read back into the VM's row, and the
 * result {id, name, ...@func's members, applied: "live"|"next-boot"}. */
gboolean dv_vm_device_job(DvEngine *engine, DvJob *job, const DvJobStep *steps, guint n_steps,
                          DvVmDeviceFunc func, GError **error);

G_END_DECLS
