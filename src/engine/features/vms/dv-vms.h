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
extern const DvFieldSpec dv_vm_migrate_fields[];
extern const DvFieldSpec dv_vm_migrate_query[];

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
 * VM @vm_id: a socket descriptor the caller owns.  On a local host it
 * speaks RFB from the banner with the security type None
 * (*ret_authenticated FALSE); on a remote host droverd has answered the
 * display's VNC authentication with a one-time password and the socket
 * waits for ClientInit (*ret_authenticated TRUE: the caller gives its
 * client the handshake up to there).  -1 with a DV_ERROR (no such
 * display, another type, or one nobody can reach from here:
 * NOT_SUPPORTED naming "type"; TIMEOUT).  Round trips: not on the
 * main thread. */
int dv_engine_vm_console_open_display(DvEngine *engine, const char *vm_id, const char *type,
                                      gboolean *ret_authenticated, GError **error);

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

/* Live migration (dv-vms-migrate.c; docs/API.md, "Live migration"):
 * @body {to?, storage?, bandwidth_mib_s?, timeout_s?}
 * (dv_vm_migrate_fields); the preflight's @query {to?, storage?}
 * (dv_vm_migrate_query).  The preflight answers every candidate host's
 * checks and rating, and the host placement picks (target, null when none
 * can); the migration refuses with the first failed check of the one
 * host named, or every candidate's, before anything moves, and submits a
 * vm.migrate job otherwise. */
JsonObject *dv_engine_vm_migrate_preflight(DvEngine *engine, const char *vm_ref, GHashTable *query,
                                           GError **error);
JsonObject *dv_engine_vm_migrate(DvEngine *engine, const char *vm_ref, JsonObject *body,
                                 const DvActor *actor, GError **error);
void dv_engine_vm_migrate_register(DvEngine *engine);

G_END_DECLS
