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
/* ---- serial consoles (dv-vms-console.c; docs/API.md, "Consoles") ---- */

/* How long a console ticket is good for, in seconds. */
#define DV_VM_CONSOLE_TICKET_TTL 30

extern const DvFieldSpec dv_vm_console_query[];

/* POST /vms/{ref}/console-tickets: {ticket, vm_id, expires_in}.  The
 * ticket opens one console connection of VM @vm_ref within
 * DV_VM_CONSOLE_TICKET_TTL s as the caller of @token (its session or API
 * token, checked again then: the user and the vm.console privilege). */
JsonObject *dv_engine_vm_console_ticket(DvEngine *engine, const char *vm_ref, const char *token,
                                        GError **error);
/* Takes @ticket out (single use) and returns the bearer token it stands
 * for (owned, a secret: dv_secret_str_free()), or NULL: unknown, used or
 * expired (DV_ERROR_AUTH_REQUIRED), for another VM than @vm_ref
 * (DV_ERROR_PERMISSION_DENIED), each naming the field "ticket". */
char *dv_engine_vm_console_redeem(DvEngine *engine, const char *ticket, const char *vm_ref,
                                  GError **error);
/* GET /vms/{ref}/console's inputs: type (serial|vnc), mode (write|read,
 * serial only), ticket; the VM running.  Returns {id, name, mode, type}. */
JsonObject *dv_engine_vm_console_check(DvEngine *engine, const char *vm_ref, GHashTable *query,
                                       GError **error);

/* A new client connection to the graphical display (@type "vnc") of
 * VM @vm_id: a socket descriptor the caller owns, speaking RFB with the
 * security type None; -1 with a DV_ERROR (no such display: CONFLICT
 * naming "type"; a remote host: NOT_SUPPORTED).  A libvirt round trip:
 * not on the main thread. */
int dv_engine_vm_console_open_display(DvEngine *engine, const char *vm_id, const char *type,
                                      GError **error);

typedef struct _DvVmConsoleViewer DvVmConsoleViewer;
/* Called from any thread (libvirt's event loop) with the guest's output
 * (@data) or once with @data NULL and @ended saying why it ended; must
 * only queue the data. */
typedef void (*DvVmConsoleOutput)(GBytes *data, const char *ended, gpointer user_data);
/* Joins the VM's shared console stream (opened on the first viewer),
 * as its one writer or, @writer FALSE, as a watcher.  A second writer is
 * refused: DV_ERROR_CONFLICT naming "mode".  A new viewer gets the last
 * 16 KiB the console showed first. */
DvVmConsoleViewer *dv_engine_vm_console_attach(DvEngine *engine, const char *vm_id,
                                               gboolean writer, const DvActor *actor,
                                               DvVmConsoleOutput func, gpointer user_data,
                                               GDestroyNotify notify, GError **error);
gboolean dv_vm_console_viewer_is_writer(DvVmConsoleViewer *v);
gboolean dv_vm_console_viewer_write(DvVmConsoleViewer *v, const guint8 *data, gsize len,
                                    GError **error);
/* Leaves; the last viewer closes the stream.  Calls the notify. */
void dv_vm_console_viewer_free(DvVmConsoleViewer *v);

G_END_DECLS
