/* Feature: VMs (dv-vms.c) — create, power, snapshots, delete.  Uses core
 * and below only: a catalog machine's overlay is renewed before a start
 * through the core hook dv_core_run_vm_before_start(). */
#pragma once

#include "dv-core.h"

G_BEGIN_DECLS

/* Request bodies: the spec arrays this feature checks its bodies against, which
 * its op rows point at (DvOp.fields), so the contract has one source. */
extern const DvFieldSpec dv_vm_fields[];
extern const DvFieldSpec dv_vm_snapshot_fields[];
extern const DvFieldSpec dv_vm_change_fields[];
extern const DvFieldSpec dv_vm_shutdown_fields[];
extern const DvFieldSpec dv_vm_clone_fields[];

void dv_engine_vms_register(DvEngine *engine);
/* The VM rows of the operation table (dv-vms-ops.c). */
void dv_engine_vms_register_ops(DvEngine *engine);

JsonObject *dv_engine_vm_create(DvEngine *engine, JsonObject *body, const DvActor *actor,
                                GError **error);
JsonObject *dv_engine_vm_delete(DvEngine *engine, JsonObject *vm, GHashTable *query,
                                const DvActor *actor, GError **error);
/* @action: "start", "shutdown", "stop", "reboot" or "reset". */
JsonObject *dv_engine_vm_action(DvEngine *engine, const char *vm, const char *action,
                                const DvActor *actor, GError **error);
/* The same with the request's body (may be NULL): shutdown takes
 * {"timeout": seconds}, the others none. */
JsonObject *dv_engine_vm_power(DvEngine *engine, const char *vm, const char *action,
                               JsonObject *body, const DvActor *actor, GError **error);
/* PATCH /vms/{ref}: vcpus, memory_mib, description, autostart, boot_order,
 * name (dv_vm_change_fields); the vm.change job's result says per field
 * whether it applied "live"/"now" or at "next-boot". */
JsonObject *dv_engine_vm_change(DvEngine *engine, const char *vm, JsonObject *body,
                                const DvActor *actor, GError **error);
/* POST /vms/{ref}/clone: name, host, pool, linked, description
 * (dv_vm_clone_fields).  The source must be shut off; the clone is a new
 * VM of the caller, charged like a create; a vm.clone job. */
JsonObject *dv_engine_vm_clone(DvEngine *engine, const char *vm, JsonObject *body,
                               const DvActor *actor, GError **error);
JsonObject *dv_engine_vm_snapshot_list(DvEngine *engine, const char *vm, GError **error);
JsonObject *dv_engine_vm_snapshot_create(DvEngine *engine, const char *vm, JsonObject *body,
                                         const DvActor *actor, GError **error);
JsonObject *dv_engine_vm_snapshot_revert(DvEngine *engine, const char *vm, const char *snapshot,
                                         const DvActor *actor, GError **error);
JsonObject *dv_engine_vm_snapshot_delete(DvEngine *engine, const char *vm, const char *snapshot,
                                         const DvActor *actor, GError **error);

/* Volumes and a VM's disks (dv-vms-disks.c; docs/API.md "Volumes").
 * Each returns the accepted job, or NULL with a DV_ERROR naming the
 * field when the request is refused (nothing written). */
extern const DvFieldSpec dv_volume_create_fields[];
extern const DvFieldSpec dv_volume_resize_fields[];
extern const DvFieldSpec dv_vm_disk_fields[];
void dv_engine_vm_disks_register(DvEngine *engine);
void dv_engine_vm_disks_register_ops(DvEngine *engine);
/* POST /volumes: {pool*, host, name*, size* (bytes), format}. */
JsonObject *dv_engine_volume_create(DvEngine *engine, JsonObject *body, const DvActor *actor,
                                    GError **error);
/* POST /volumes/{ref}/resize: {size*}; below the volume's size is
 * DV_ERROR_INVALID_ARGUMENT naming size. */
JsonObject *dv_engine_volume_resize(DvEngine *engine, const char *ref, JsonObject *body,
                                    const DvActor *actor, GError **error);
/* DELETE /volumes/{ref}: a VM's disk is DV_ERROR_CONFLICT naming the VM. */
JsonObject *dv_engine_volume_delete(DvEngine *engine, const char *ref, const DvActor *actor,
                                    GError **error);
/* POST /vms/{ref}/disks: {volume} (id or path) or {size, pool, format}. */
JsonObject *dv_engine_vm_disk_add(DvEngine *engine, const char *vm, JsonObject *body,
                                  const DvActor *actor, GError **error);
/* DELETE /vms/{ref}/disks/{target}: the volume stays. */
JsonObject *dv_engine_vm_disk_remove(DvEngine *engine, const char *vm, const char *target,
                                     const DvActor *actor, GError **error);

/* A VM's network interfaces and its guest's addresses (dv-vms-nics.c;
 * docs/API.md "A VM's network interfaces"). */
extern const DvFieldSpec dv_vm_nic_fields[];
void dv_engine_vm_nics_register(DvEngine *engine);
void dv_engine_vm_nics_register_ops(DvEngine *engine);
/* POST /vms/{ref}/nics: {network | bridge, mac, model}; the job's result
 * has the MAC and whether it applied "live" or at "next-boot". */
JsonObject *dv_engine_vm_nic_add(DvEngine *engine, const char *vm, JsonObject *body,
                                 const DvActor *actor, GError **error);
/* DELETE /vms/{ref}/nics/{mac}. */
JsonObject *dv_engine_vm_nic_remove(DvEngine *engine, const char *vm, const char *mac,
                                    const DvActor *actor, GError **error);
/* GET /vms/{ref}: the VM shaped for @actor, each of spec.networks with
 * "addresses": [{mac, ip, prefix, family, source}] when it runs (read on
 * demand within 2 s; a host that does not answer gives none). */
JsonObject *dv_engine_vm_get(DvEngine *engine, const char *vm, const DvActor *actor,
                             GError **error);

/* --- installation media (dv-vms-cdrom.c) --- */
extern const DvFieldSpec dv_vm_cdrom_fields[];
void dv_engine_vm_cdrom_register(DvEngine *engine);
void dv_engine_vm_cdrom_register_ops(DvEngine *engine);
/* The path on @host of the ISO @ref names ({library_share, file} or
 * {pool, volume}, fields prefixed with @prefix in errors), checked
 * against the inventory and what @actor may read (owned), or NULL. */
char *dv_engine_vm_iso_path(DvEngine *engine, const DvActor *actor, JsonObject *host,
                            JsonObject *ref, const char *prefix, GError **error);
/* POST /vms/{ref}/cdrom: an ISO ({library_share, file} or {pool, volume})
 * or {eject: true}; optional target. */
JsonObject *dv_engine_vm_cdrom(DvEngine *engine, const char *vm, JsonObject *body,
                               const DvActor *actor, GError **error);

/* --- uploads (dv-vms-upload.c) --- */
gboolean dv_volume_record(DvEngine *engine, JsonObject *pool, JsonObject *vol, GError **error);
gboolean dv_volume_name_free(DvEngine *engine, JsonObject *pool, const char *name,
                             const char *field, GError **error);
void dv_engine_volume_upload_register(DvEngine *engine);
void dv_engine_volume_upload_register_ops(DvEngine *engine);
/* POST /library-shares/{ref}/files?name=FILE and
 * POST /storage-pools/{ref}/volumes?name=NAME: @upload (a DvUpload,
 * borrowed) is the body; a volume.upload job, or NULL. */
JsonObject *dv_engine_library_share_upload(DvEngine *engine, const char *share, GHashTable *query,
                                           gpointer upload, const DvActor *actor, GError **error);
JsonObject *dv_engine_pool_upload(DvEngine *engine, const char *pool, GHashTable *query,
                                  gpointer upload, const DvActor *actor, GError **error);

G_END_DECLS
