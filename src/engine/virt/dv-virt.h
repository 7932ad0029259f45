/* The libvirt layer: the only part of Drover that talks to hypervisors.
 *
 * Upper layers see hosts, domains, pools and volumes as JsonObjects and
 * every failure as a DV_ERROR (see docs/VIRT.md for the error table); no
 * libvirt type or header leaks out of src/engine/virt.
 *
 * Threads: a DvVirt and its DvVirtHost handles may be used from any number
 * of threads at once.  Each host enforces its own limits: at most
 * max_connections open libvirt connections and at most
 * max_concurrent_operations calls in flight, and a connection through
 * libvirt's RPC client carries one operation at a time (in-process test:///
 * connections are shared); a call that finds no free slot or connection
 * waits (up to the host's busy timeout, 60 s by default, or until its
 * GCancellable fires) and then fails with DV_ERROR_BUSY (or
 * DV_ERROR_CANCELLED).
 *
 * Ownership: functions named _new, _probe, _get_* returning JsonObject/
 * JsonArray/char* return owned data (json_object_unref / g_free).
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "dv-secret.h"

G_BEGIN_DECLS

/* Defaults for a host's limits.  An operation holds one connection to
 * itself (one call per connection: docs/VIRT.md), so as many connections
 * as operations; 16 leave a few of libvirtd's max_workers (20) threads to
 * other clients (virsh, virt-manager, a second droverd). */
#define DV_VIRT_DEFAULT_MAX_CONNECTIONS 16
#define DV_VIRT_DEFAULT_MAX_OPERATIONS 16
#define DV_VIRT_DEFAULT_BUSY_TIMEOUT_MS 60000
#define DV_VIRT_KEEPALIVE_INTERVAL 5
#define DV_VIRT_KEEPALIVE_COUNT 5

/* Default domain type of new domains: TCG ("qemu").  On these machines
 * /dev/kvm opens but guests hang, see docs/VIRT.md. */
#define DV_VIRT_DEFAULT_DOMAIN_TYPE "qemu"

typedef struct _DvVirt DvVirt;
typedef struct _DvVirtHost DvVirtHost;

/* ---- manager ---------------------------------------------------------- */

/* Process-wide manager.  The first call registers libvirt's default event
 * loop (run in a thread "dv-virt-events" for the life of the process; it
 * drives keepalive) and silences libvirt's stderr error printing. */
DvVirt *dv_virt_new(void);
void dv_virt_free(DvVirt *virt);

/* Which host URIs this process may open beyond the built-in allowlist
 * (dv_validate_host_uri()): droverd's [hosts] simulated and
 * allow_uri_parameters.  Every connection open checks its URI again right
 * before libvirt sees it; a refused URI is DV_ERROR_INVALID_ARGUMENT
 * naming "uri".  Default: nothing extra (no test:// hosts). */
void dv_virt_set_uri_policy(DvVirt *virt, gboolean allow_simulated,
                            const char *const *allow_parameters);
gboolean dv_virt_check_uri(DvVirt *virt, const char *uri, GError **error);

/* ---- hosts ------------------------------------------------------------ */

/* A handle on the host @host_id reached at @uri, cached by @host_id: the
 * same handle is returned while anyone holds it.  When @uri differs from
 * the cached handle's URI a fresh handle replaces it in the cache (holders
 * of the old one keep it).  Returns a new reference; never NULL. */
DvVirtHost *dv_virt_host_get(DvVirt *virt, const char *host_id, const char *uri);
DvVirtHost *dv_virt_host_ref(DvVirtHost *host);
void dv_virt_host_unref(DvVirtHost *host);

const char *dv_virt_host_get_id(DvVirtHost *host);   /* borrowed */
const char *dv_virt_host_get_uri(DvVirtHost *host);  /* borrowed */
/* The host's name, the label of its libvirt call metrics (docs/METRICS.md;
 * the id until set).  Copied. */
void dv_virt_host_set_name(DvVirtHost *host, const char *name);

/* 0 means "default".  test:///<file> URIs always get max_connections 1:
 * every open of such a URI is a fresh private simulated host.  Changes
 * apply to operations that start afterwards; connections over the new
 * limit are closed when they become idle. */
void dv_virt_host_set_limits(DvVirtHost *host, guint max_connections,
                             guint max_concurrent_operations);
/* How long an operation waits for a slot before DV_ERROR_BUSY. */
void dv_virt_host_set_busy_timeout(DvVirtHost *host, guint timeout_ms);

/* Credentials answered to virConnectOpenAuth (VIR_CRED_AUTHNAME,
 * VIR_CRED_PASSPHRASE).  The password is copied into guarded memory
 * (DvSecret) and never logged; NULL clears it.  Applies to connections
 * opened afterwards. */
void dv_virt_host_set_credentials(DvVirtHost *host, const char *username,
                                  const char *password);

/* {open_connections, operations_in_flight, peak_operations_in_flight,
 *  peak_operations_per_connection, max_connections,
 *  max_concurrent_operations, busy_rejections} */
JsonObject *dv_virt_host_get_stats(DvVirtHost *host);

/* Connects and reads the whole host (see docs/VIRT.md for the fields). */
JsonObject *dv_virt_host_probe(DvVirtHost *host, GCancellable *cancellable, GError **error);

/* {read_write, list_storage, create_volumes, define_domains, missing: [..],
 *  detail}.  Creates and removes a probe volume and a probe domain named
 *  drover-rights-probe-<random>; leaves nothing behind. */
JsonObject *dv_virt_host_check_rights(DvVirtHost *host, GCancellable *cancellable,
                                      GError **error);

/* libvirtd's own limits through the admin API; local hosts only
 * (qemu:///system, qemu:///session), otherwise DV_ERROR_NOT_SUPPORTED.
 * Runs the virt-admin client (libvirt-admin cannot share a process with
 * libvirt 9.0, see docs/VIRT.md); blocks up to 10 s per daemon tried.
 * {daemon, server, max_clients, nclients, max_unauth_clients,
 *  nclients_unauth, min_workers, max_workers, nworkers, free_workers,
 *  prio_workers, job_queue_depth, max_client_requests,
 *  max_client_requests_source ("config"|"default")} */
JsonObject *dv_virt_host_get_daemon_limits(DvVirtHost *host, GError **error);

/* ---- domain XML ------------------------------------------------------- */

/* Builds a domain definition from @spec:
 * {name*, uuid, description, domain_type ("kvm"|"qemu"|"test", default
 *  "qemu"), vcpus (default 1), memory_mib*, generation (1 BIOS/pc, 2 UEFI/
 *  q35), secure_boot (default: generation == 2), graphics ("vnc",
 *  "spice" or "none", the default; its TCP listener on graphics_listen,
 *  default DV_VIRT_GRAPHICS_LISTEN, "" for none (the host's qemu.conf
 *  vnc_listen), locked by a password that has already expired), serial_log (path of a file serial
 * console), serial_append (open it without truncating: a migrated guest's log goes on), kernel,
 * initrd, cmdline (direct kernel boot), disks: [{path*, format ("qcow2"|"raw"), device
 * ("disk"|"cdrom"), readonly, bus ("virtio"|"sata"|"ide"|"scsi")}], networks: [{network | bridge,
 * mac}]} Input errors are DV_ERROR_INVALID_ARGUMENT naming the field. */
char *dv_virt_domain_xml_new(JsonObject *spec, GError **error);

/* ---- domains (all identified by UUID) --------------------------------- */

/* Defines (or redefines) a persistent domain; returns its UUID. */
char *dv_virt_domain_define(DvVirtHost *host, const char *xml, GCancellable *cancellable,
                            GError **error);
gboolean dv_virt_domain_start(DvVirtHost *host, const char *uuid, GCancellable *cancellable,
                              GError **error);
/* ACPI power-button request; returns at once. */
gboolean dv_virt_domain_shutdown(DvVirtHost *host, const char *uuid,
                                 GCancellable *cancellable, GError **error);
/* Polls until the domain is shut off; DV_ERROR_TIMEOUT after @timeout_ms. */
gboolean dv_virt_domain_wait_shutoff(DvVirtHost *host, const char *uuid, guint timeout_ms,
                                     GCancellable *cancellable, GError **error);
/* Forced power off; succeeds when the domain is already off. */
gboolean dv_virt_domain_destroy(DvVirtHost *host, const char *uuid,
                                GCancellable *cancellable, GError **error);
/* Removes the definition with its NVRAM, snapshot and checkpoint metadata
 * and managed save image.  The domain must be shut off. */
gboolean dv_virt_domain_undefine(DvVirtHost *host, const char *uuid,
                                 GCancellable *cancellable, GError **error);
/* Destroys (if running) and undefines the domain; with @delete_volumes also
 * deletes the storage volume behind each writable disk (device "disk", not
 * readonly or shareable) and the files of its external snapshots (frozen
 * bases, layers, memory); files that are in no pool are left alone. */
gboolean dv_virt_domain_delete(DvVirtHost *host, const char *uuid, gboolean delete_volumes,
                               GCancellable *cancellable, GError **error);
/* One entry as in a probe's "domains" list, with "autostart" added. */
JsonObject *dv_virt_domain_get(DvVirtHost *host, const char *uuid,
                               GCancellable *cancellable, GError **error);
/* The live (or inactive) XML; owned. */
char *dv_virt_domain_get_xml(DvVirtHost *host, const char *uuid, gboolean inactive,
                             GCancellable *cancellable, GError **error);

/* ---- changing a domain (dv-virt-change.c) ----------------------------- */

/* vCPUs / memory: on a running domain within its running maximum they are
 * applied live and to the persistent definition (*@ret_live TRUE, unless
 * QEMU refuses the hot-plug); otherwise only the persistent definition
 * changes, raising its maximum when needed, and the value takes effect at
 * the next boot (*@ret_live FALSE).  A stopped domain gets maximum =
 * current. */
gboolean dv_virt_domain_set_vcpus(DvVirtHost *host, const char *uuid, guint vcpus,
                                  gboolean *ret_live, GCancellable *cancellable, GError **error);
gboolean dv_virt_domain_set_memory(DvVirtHost *host, const char *uuid, guint64 memory_mib,
                                   gboolean *ret_live, GCancellable *cancellable, GError **error);
/* <description>, live too when running; NULL or "" removes it. */
gboolean dv_virt_domain_set_description(DvVirtHost *host, const char *uuid, const char *text,
                                        GCancellable *cancellable, GError **error);
gboolean dv_virt_domain_set_autostart(DvVirtHost *host, const char *uuid, gboolean autostart,
                                      GCancellable *cancellable, GError **error);
/* @order: NULL-terminated, 1-3 of "disk", "cdrom", "network", written as
 * <os><boot dev/> in the persistent definition (per-device <boot order/>
 * removed): the next boot uses it.  A direct-kernel domain:
 * DV_ERROR_NOT_SUPPORTED naming boot_order. */
gboolean dv_virt_domain_set_boot_order(DvVirtHost *host, const char *uuid, const char *const *order,
                                       GCancellable *cancellable, GError **error);
/* Points disk @target ("vda") of the persistent definition at the file
 * @path (@format qcow2 or raw), transient on a shared backing image or
 * not (<transient shareBacking='yes'/>); a running domain keeps its disk
 * until it next starts.  Already so: nothing is redefined.  A definition
 * without such a disk gets one (virtio). */
gboolean dv_virt_domain_set_disk_source(DvVirtHost *host, const char *uuid, const char *target,
                                        const char *path, const char *format, gboolean transient,
                                        GCancellable *cancellable, GError **error);
/* virDomainRename; a running domain is DV_ERROR_CONFLICT naming "name";
 * already named @name: done. */
gboolean dv_virt_domain_rename(DvVirtHost *host, const char *uuid, const char *name,
                               GCancellable *cancellable, GError **error);
/* ACPI reboot request / hard reset of a running domain. */
gboolean dv_virt_domain_reboot(DvVirtHost *host, const char *uuid, GCancellable *cancellable,
                               GError **error);
gboolean dv_virt_domain_reset(DvVirtHost *host, const char *uuid, GCancellable *cancellable,
                              GError **error);

/* ---- snapshots (dv-virt-snapshot.c; docs/VIRT.md, "Snapshots") ------- */

/* Takes snapshot @name of domain @uuid and returns its entry {name,
 * description, state, parent, is_current, created_at, kind ("internal"|
 * "external"), memory (the running domain's memory is kept)}.
 * @kind: "internal" (inside the qcow2 disks; with the memory of a running
 * domain), "external" (a new qcow2 layer "<disk>-<name>.qcow2" beside
 * each own disk; with @memory and a running domain, its memory in
 * "<domain>-<name>.mem" beside the first) or NULL: internal when it can be
 * (BIOS, every own disk qcow2, no external snapshot, not a running domain
 * without @memory), else external.  @memory is ignored for a shut-off
 * domain.  Refusals, each naming its field: a name in use (CONFLICT,
 * "name"); internal for a UEFI domain, a raw disk or beside external
 * snapshots (NOT_SUPPORTED, "kind"); internal without memory of a running
 * domain (NOT_SUPPORTED, "memory"); external beside internal snapshots
 * (CONFLICT, "kind"). */
JsonObject *dv_virt_snapshot_create_full(DvVirtHost *host, const char *uuid, const char *name,
                                         const char *description, const char *kind, gboolean memory,
                                         GCancellable *cancellable, GError **error);
/* An internal snapshot (UEFI domains: DV_ERROR_NOT_SUPPORTED). */
JsonObject *dv_virt_snapshot_create(DvVirtHost *host, const char *uuid, const char *name,
                                    const char *description, GCancellable *cancellable,
                                    GError **error);
JsonArray *dv_virt_snapshot_list(DvVirtHost *host, const char *uuid,
                                 GCancellable *cancellable, GError **error);
/* Internal snapshots through libvirt.  External ones by Drover, the
 * newest only (no child snapshot; each disk still writing to the
 * snapshot's layer), else DV_ERROR_CONFLICT naming "snapshot", and only
 * for disks that are pool volumes (DV_ERROR_NOT_SUPPORTED): revert stops
 * the domain, makes each layer anew over its frozen base and restores the
 * saved memory (the guest runs on from the snapshot) or leaves the domain
 * shut off; delete merges each layer into its base (active block commit,
 * a shut-off domain started paused meanwhile) and removes the memory
 * file. */
gboolean dv_virt_snapshot_revert(DvVirtHost *host, const char *uuid, const char *name,
                                 GCancellable *cancellable, GError **error);
gboolean dv_virt_snapshot_delete(DvVirtHost *host, const char *uuid, const char *name,
                                 GCancellable *cancellable, GError **error);

/* ---- volumes ---------------------------------------------------------- */

/* A sparse volume (allocation 0); qcow2 gets compat 1.1.
 * Returns {name, path, key, format, capacity, allocation}. */
JsonObject *dv_virt_volume_create(DvVirtHost *host, const char *pool, const char *name,
                                  guint64 capacity, const char *format,
                                  GCancellable *cancellable, GError **error);
/* A qcow2 overlay (compat 1.1) on @backing, whose format is always given.
 * @capacity 0 takes the backing file's size. */
JsonObject *dv_virt_volume_create_overlay(DvVirtHost *host, const char *pool, const char *name,
                                          const char *backing, const char *backing_format,
                                          guint64 capacity, GCancellable *cancellable,
                                          GError **error);
/* Either of the above (@backing NULL: plain) returning only {name, path}:
 * two round trips less, and the daemon does not re-read the new file
 * (machine catalogs make thousands).  @dir: the pool's directory when the
 * caller knows @pool is a directory pool (the path is then @dir/@name and
 * not asked for: one round trip less), or NULL. */
JsonObject *dv_virt_volume_create_lean(DvVirtHost *host, const char *pool, const char *name,
                                       guint64 capacity, const char *format, const char *backing,
                                       const char *backing_format, const char *dir,
                                       GCancellable *cancellable, GError **error);
/* {name, path, key, format, capacity, allocation, pool}. */
JsonObject *dv_virt_volume_lookup_by_path(DvVirtHost *host, const char *path,
                                          GCancellable *cancellable, GError **error);
gboolean dv_virt_volume_delete(DvVirtHost *host, const char *pool, const char *name,
                               GCancellable *cancellable, GError **error);
gboolean dv_virt_volume_delete_by_path(DvVirtHost *host, const char *path,
                                       GCancellable *cancellable, GError **error);

/* ---- growing volumes, a domain's disks (dv-virt-disk.c) ------------- */

/* Grows the volume at @path to @capacity bytes.  When a running domain
 * uses the file, QEMU grows it (virDomainBlockResize) so the guest sees the
 * new size at once; otherwise virStorageVolResize.  A smaller @capacity is
 * DV_ERROR_INVALID_ARGUMENT naming "size" (volumes only grow); the same
 * size is done.  Returns {capacity, live, domain, target} (the last two
 * when live). */
JsonObject *dv_virt_volume_resize(DvVirtHost *host, const char *path, guint64 capacity,
                                  GCancellable *cancellable, GError **error);
/* Attaches the file @path (@format qcow2 or raw) as the next free virtio
 * disk (vdb, vdc, ...) of domain @uuid, persistently and, when it runs,
 * live (*@ret_live).  Returns the target (owned). */
char *dv_virt_domain_disk_attach(DvVirtHost *host, const char *uuid, const char *path,
                                 const char *format, gboolean *ret_live, GCancellable *cancellable,
                                 GError **error);
/* Detaches disk @target from the persistent definition and, when it
 * runs, from the live domain (*@ret_live: a live detach was asked; the
 * guest completes it).  A target in neither: done. */
gboolean dv_virt_domain_disk_detach(DvVirtHost *host, const char *uuid, const char *target,
                                    gboolean *ret_live, GCancellable *cancellable, GError **error);

/* ---- network interfaces (dv-virt-nic.c) ------------------------------- */

/* virtio, e1000, e1000e, rtl8139. */
gboolean dv_virt_nic_model_ok(const char *model);
/* @mac is "xx:xx:xx:xx:xx:xx", unicast and not all zeros; else
 * DV_ERROR_INVALID_ARGUMENT naming @field. */
gboolean dv_virt_mac_check(const char *field, const char *mac, GError **error);
/* Adds an interface to domain @uuid, persistently and, when it runs, live
 * (*@ret_live).  @nic: {network | bridge, mac*, model (default virtio)}.
 * A MAC another domain of the host has (either definition) is
 * DV_ERROR_CONFLICT naming mac; one the domain already has: done. */
gboolean dv_virt_domain_nic_attach(DvVirtHost *host, const char *uuid, JsonObject *nic,
                                   gboolean *ret_live, GCancellable *cancellable, GError **error);
/* Removes the interface @mac from the persistent definition and, when it
 * runs, from the live domain (*@ret_live).  In neither: done. */
gboolean dv_virt_domain_nic_detach(DvVirtHost *host, const char *uuid, const char *mac,
                                   gboolean *ret_live, GCancellable *cancellable, GError **error);
/* The addresses of a running domain's guest by MAC (lowercase):
 * {mac: [{ip, prefix, family ("ipv4"|"ipv6"), source ("agent"|"lease")}]}.
 * From the guest agent when its channel is connected, else (or when the
 * agent fails) from the DHCP leases of the libvirt networks.  A domain
 * that does not run: {}.  Not bounded in time by itself (a host that does
 * not answer holds it until keepalive gives up): callers that must answer
 * quickly run it in a thread (features/vms, dv-vms-nics.c). */
JsonObject *dv_virt_domain_addresses(DvVirtHost *host, const char *uuid, GCancellable *cancellable,
                                     GError **error);

/* ---- CD-ROM media (dv-virt-cdrom.c) ------------------------------------ */

/* Puts the ISO at @path (absolute, on the host; NULL ejects) into the
 * CD-ROM drive @target of domain @uuid (NULL: its first drive), in the
 * definition and, when the domain runs, live (virDomainUpdateDeviceFlags;
 * an eject is forced through a locked tray).  A shut-off domain without a
 * drive gets one (SATA on q35, IDE on pc); a running one without a drive
 * is DV_ERROR_CONFLICT naming "cdrom", an eject without a drive
 * DV_ERROR_NOT_FOUND naming "cdrom".  Returns {target, bus, path, live,
 * drive_added} (owned). */
JsonObject *dv_virt_domain_cdrom_change(DvVirtHost *host, const char *uuid, const char *path,
                                        const char *target, GCancellable *cancellable,
                                        GError **error);

/* ---- volume upload and download (dv-virt-stream.c) ------------------- */

/* Writes @data (@len bytes, 1..1 GiB, borrowed) as the whole content of
 * the raw volume @name in @pool, streamed through the host's libvirt
 * connection (virStorageVolUpload), never through a local file.  The
 * volume is created (raw, @len bytes, file mode 0600) when missing; an
 * existing volume of another size or format is deleted and recreated, so a
 * retried upload converges.  The daemon refreshes the whole pool after
 * every upload: keep uploaded volumes in small pools.  One operation slot
 * is held for the whole transfer.  Not available on test:// hosts
 * (DV_ERROR_NOT_SUPPORTED). */
gboolean dv_virt_volume_upload(DvVirtHost *host, const char *pool, const char *name,
                               const guint8 *data, gsize len, GCancellable *cancellable,
                               GError **error);

/* Reads up to @len bytes into @buf: > 0 read, 0 at the end, -1 with
 * @error set. */
typedef gssize (*DvVirtReadFunc)(gpointer data, guint8 *buf, gsize len, GError **error);
typedef void (*DvVirtProgressFunc)(gpointer data, guint64 done, guint64 total);

/* Makes the new raw volume @name (@length bytes, mode 0644) in @pool and
 * fills it with exactly @length bytes pulled from @read_func as they
 * come (virStorageVolUpload, 262,120 bytes at a time; nothing kept but one
 * chunk), calling @progress after each.  Refused before the volume is
 * made: a pool with less than @length bytes available on the host
 * (DV_ERROR_CONFLICT naming "Content-Length"), a name the pool holds
 * (DV_ERROR_CONFLICT naming "name").  Any failure after (a reader error,
 * a cut body, the host) aborts the stream and deletes the volume.
 * *@ret_path: the volume's path (owned).  Holds one operation slot
 * for the whole transfer.  Not on test:// hosts. */
gboolean dv_virt_volume_upload_stream(DvVirtHost *host, const char *pool, const char *name,
                                      guint64 length, DvVirtReadFunc read_func, gpointer read_data,
                                      DvVirtProgressFunc progress, gpointer progress_data,
                                      char **ret_path, GCancellable *cancellable, GError **error);

/* The whole content of volume @name in @pool (virStorageVolDownload), read
 * into guarded memory (owned; dv_secret_free) because identity volumes
 * hold secrets.  DV_ERROR_TOO_LARGE when the volume is larger than
 * @max_len bytes (checked before any byte is transferred). */
DvSecret *dv_virt_volume_download(DvVirtHost *host, const char *pool, const char *name,
                                  gsize max_len, GCancellable *cancellable, GError **error);

/* ---- volume copies (dv-virt-clone.c; machine catalogs) ---------------- */

/* Flattens the volume at @source_path (its whole backing chain) into a
 * new qcow2 volume (compat 1.1, no backing file) @name in @pool on the
 * same host, with the source's capacity (virStorageVolCreateXMLFrom, which
 * runs qemu-img convert on the host).  The source must not be written
 * while this runs: callers copy only shut-off domains' disks.  An existing
 * @name is DV_ERROR_CONFLICT.  Holds one operation slot for the whole
 * copy.  Returns {name, path, key, format, capacity, allocation}. */
JsonObject *dv_virt_volume_clone(DvVirtHost *host, const char *source_path, const char *pool,
                                 const char *name, GCancellable *cancellable, GError **error);

/* Defines a copy of the domain @source_uuid named @name with UUID @uuid:
 * its inactive XML with every interface's <mac> removed (libvirt makes
 * new addresses), <nvram> removed (a fresh UEFI store), each owned disk
 * (writable, not shared) pointed at @disk_map[its path] as qcow2 (a
 * missing entry: DV_ERROR_NOT_SUPPORTED naming "disks"), and file
 * serial/console devices at "<name>-console.log" beside the source's log.
 * CD-ROMs and read-only disks stay shared.  Returns the UUID (owned). */
char *dv_virt_domain_clone_define(DvVirtHost *host, const char *source_uuid, const char *name,
                                  const char *uuid, JsonObject *disk_map, GCancellable *cancellable,
                                  GError **error);

/* Copies the file behind @src_path on @src_host, byte for byte, into a
 * new volume @name of @dst_pool on @dst_host: a download stream feeds an
 * upload stream chunk by chunk (dv-virt-copy.c), nothing goes through a
 * local file.  The source must not be written meanwhile.  An existing
 * @name is DV_ERROR_CONFLICT; a failed copy leaves no volume.  Holds one
 * operation slot on each host for the whole copy.  Not on test:// hosts
 * (DV_ERROR_NOT_SUPPORTED).  Returns the new volume's entry. */
JsonObject *dv_virt_volume_copy_between(DvVirtHost *src_host, const char *src_path,
                                        DvVirtHost *dst_host, const char *dst_pool,
                                        const char *name, GCancellable *cancellable,
                                        GError **error);

/* ---- freezing a running domain's disk (dv-virt-freeze.c) ------------- */

/* An external disk-only snapshot of the running domain @uuid (atomic, no
 * metadata) for disk @target only: QEMU writes to the new qcow2 layer
 * @overlay_path from now on and the former file is frozen. */
gboolean dv_virt_domain_freeze_disk(DvVirtHost *host, const char *uuid, const char *target,
                                    const char *overlay_path, GCancellable *cancellable,
                                    GError **error);
/* Folds the active top layer of disk @target back into the file below
 * it (active block commit, pivot, the layer's file deleted); waits up to
 * @timeout_ms (DV_ERROR_TIMEOUT; the job goes on in QEMU). */
gboolean dv_virt_domain_commit_active(DvVirtHost *host, const char *uuid, const char *target,
                                      guint timeout_ms, GCancellable *cancellable,
                                      GError **error);

/* ---- live listings by name prefix (dv-virt-list.c; catalog reconciler) -- */

/* The volumes of @pool whose name starts with @prefix, read live from the
 * host: [{name, path}] sorted by name; what libvirt knows of the pool
 * (see dv_virt_pool_refresh()).  A missing pool is DV_ERROR_NOT_FOUND. */
JsonArray *dv_virt_pool_list_volumes(DvVirtHost *host, const char *pool, const char *prefix,
                                     GCancellable *cancellable, GError **error);
/* Refreshes @pool so libvirt sees files it did not make.  A refresh the
 * daemon refuses because an upload or copy runs in the pool is skipped
 * (TRUE); a missing pool is DV_ERROR_NOT_FOUND. */
gboolean dv_virt_pool_refresh(DvVirtHost *host, const char *pool, GCancellable *cancellable,
                              GError **error);
/* A digest of every volume in the host's active pools (pool, name and
 * capacity), refreshing each pool first when @refresh: what changes when
 * a file is copied into a pool, removed or grown outside libvirt.  Allocation
 * is left out: it moves whenever a running guest writes. */
char *dv_virt_host_volumes_digest(DvVirtHost *host, gboolean refresh, GCancellable *cancellable,
                                  GError **error);
/* The domains whose name starts with @prefix ("" lists all), read live:
 * [{name, uuid, active, description}] sorted by name. */
JsonArray *dv_virt_domain_list_by_prefix(DvVirtHost *host, const char *prefix,
                                         GCancellable *cancellable, GError **error);

/* ---- what a host has to spare (dv-virt-load.c; catalog placement) --- */

/* {memory_mib, free_memory_mib, free_memory_estimated (the driver did
 *  not say; the total stands in), cpus, cpu_busy (0..1 over @sample_ms,
 *  null when the driver does not report CPU times)}, read live. */
JsonObject *dv_virt_host_get_load(DvVirtHost *host, guint sample_ms, GCancellable *cancellable,
                                  GError **error);
/* One cheap round trip (on a new connection when the old ones died):
 * does the host answer now? */
gboolean dv_virt_host_ping(DvVirtHost *host, GCancellable *cancellable, GError **error);
/* {active, capacity, allocation, available} of @pool, read live (bytes). */
JsonObject *dv_virt_pool_get_info(DvVirtHost *host, const char *pool, GCancellable *cancellable,
                                  GError **error);

/* ---- Drover's own small dir pools (dv-virt-pool.c; identity pools) ---- */

/* Makes pool @name ready for new volumes before the first is made: a
 * stopped pool (or a running dir pool whose directory is gone, which the
 * refresh stops) is built when it is a dir pool (its directory made) and
 * started; then it must have @needed bytes free (DV_ERROR_CONFLICT naming
 * "pool" otherwise).  An unknown pool is DV_ERROR_NOT_FOUND.  Returns
 * {path (its target directory), type, built, started, available} (owned). */
JsonObject *dv_virt_pool_prepare(DvVirtHost *host, const char *name, guint64 needed,
                                 GCancellable *cancellable, GError **error);
/* Makes sure a persistent, autostarted, running dir pool @name over the
 * directory @path (made 0711 when missing) exists.  A running pool is
 * refreshed; one whose directory was removed on the host (libvirt stops it
 * then) or that was stopped is built again (the directory with the
 * definition's mode and owner) and started.  A pool of that name over
 * another directory is DV_ERROR_CONFLICT. */
gboolean dv_virt_pool_ensure_dir(DvVirtHost *host, const char *name, const char *path,
                                 GCancellable *cancellable, GError **error);
/* Stops and undefines @name and removes its directory; refused
 * (DV_ERROR_CONFLICT) while it holds any volume.  A directory already gone
 * is fine.  Missing: DV_ERROR_NOT_FOUND. */
gboolean dv_virt_pool_remove(DvVirtHost *host, const char *name, GCancellable *cancellable,
                             GError **error);
/* Names of the host's pools starting with @prefix, sorted (strings). */
JsonArray *dv_virt_pool_list_by_prefix(DvVirtHost *host, const char *prefix,
                                       GCancellable *cancellable, GError **error);

/* ---- networks and pools made through Drover (dv-virt-netpool.c) -------
 *
 * Each action is idempotent: defining what exists, starting what runs,
 * stopping what is stopped and undefining what is gone are done. */

/* The network definition of @spec {name*, forward ("nat" default,
 * "route", "isolated", "bridge"), bridge (the host bridge for "bridge",
 * else the name of the bridge libvirt makes; optional), address
 * ("10.20.30.1/24"; required but for "bridge"), dhcp_start, dhcp_end
 * (together, inside address's subnet)}; owned.  Bad input is
 * DV_ERROR_INVALID_ARGUMENT naming the field. */
char *dv_virt_network_xml_new(JsonObject *spec, GError **error);
/* The pool definition of @spec {name*, type ("dir" default, "netfs",
 * "logical"), path (absolute; dir and netfs), source_host, source_path
 * (the NFS export or the CIFS share), source_format ("nfs" default,
 * "cifs") for netfs; source_name (volume group, default the pool's name),
 * source_devices (strings) for logical}; owned. */
char *dv_virt_pool_xml_new(JsonObject *spec, GError **error);
/* Every IPv4 subnet of the host's networks: [{name, address, prefix}]. */
JsonArray *dv_virt_network_list_subnets(DvVirtHost *host, GCancellable *cancellable,
                                        GError **error);
/* DV_ERROR_INVALID_ARGUMENT naming "address" when @spec's address
 * overlaps one of @subnets of another network. */
gboolean dv_virt_network_check_overlap(JsonObject *spec, JsonArray *subnets, GError **error);
gboolean dv_virt_network_define(DvVirtHost *host, const char *name, const char *xml,
                                GCancellable *cancellable, GError **error);
gboolean dv_virt_network_set_active(DvVirtHost *host, const char *name, gboolean active,
                                    GCancellable *cancellable, GError **error);
gboolean dv_virt_network_set_autostart(DvVirtHost *host, const char *name, gboolean autostart,
                                       GCancellable *cancellable, GError **error);
/* Stops (when running) and undefines. */
gboolean dv_virt_network_undefine(DvVirtHost *host, const char *name, GCancellable *cancellable,
                                  GError **error);
/* Defines, then builds when @build (a failed build undefines again). */
gboolean dv_virt_pool_define(DvVirtHost *host, const char *name, const char *xml, gboolean build,
                             GCancellable *cancellable, GError **error);
gboolean dv_virt_pool_set_active(DvVirtHost *host, const char *name, gboolean active,
                                 GCancellable *cancellable, GError **error);
gboolean dv_virt_pool_set_autostart(DvVirtHost *host, const char *name, gboolean autostart,
                                    GCancellable *cancellable, GError **error);
/* Stops (when running) and undefines; the files stay. */
gboolean dv_virt_pool_undefine(DvVirtHost *host, const char *name, GCancellable *cancellable,
                               GError **error);
/* {active, autostart} of pool (@is_pool) or network @name, read live. */
JsonObject *dv_virt_netpool_get_flags(DvVirtHost *host, gboolean is_pool, const char *name,
                                      GCancellable *cancellable, GError **error);

/* ---- events (dv-virt-events.c) ----------------------------------------
 *
 * A watch is one long-lived connection of its own per host, outside the
 * pool and its limits (docs/VIRT.md, "Events"), registered for domain
 * lifecycle, storage pool lifecycle and network lifecycle events and for
 * the connection's close (keepalive, EOF).  Callbacks run in the thread
 * "dv-virt-events" (libvirt's event loop): they must be quick and must not
 * call libvirt or free the watch; hand the work to another thread. */

typedef enum {
    DV_VIRT_EVENT_DOMAIN,
    DV_VIRT_EVENT_POOL,
    DV_VIRT_EVENT_NETWORK,
    DV_VIRT_EVENT_CLOSED, /* the watch's connection went away: open a new watch */
} DvVirtEventKind;

typedef struct {
    DvVirtEventKind kind;
    const char *uuid;  /* of the object; NULL for CLOSED */
    const char *name;  /* of the object; NULL for CLOSED */
    /* domain: "defined", "undefined", "started", "suspended", "resumed",
     * "stopped", "shutdown", "pmsuspended", "crashed"; pool and network:
     * "defined", "undefined", "started", "stopped", "created", "deleted",
     * "refreshed"; CLOSED: "error", "eof", "keepalive", "client". */
    const char *what;
    gint64 received_us; /* g_get_monotonic_time() when libvirt delivered it */
} DvVirtEvent;

/* All members borrowed for the call only. */
typedef void (*DvVirtEventFunc)(const DvVirtEvent *event, gpointer user_data);

typedef struct _DvVirtWatch DvVirtWatch;

/* Opens the watch connection of @host and registers the callbacks; @func
 * is called from the event thread until dv_virt_watch_free() returns.
 * @notify frees @user_data once libvirt holds no callback of the watch.
 * An unreachable host is DV_ERROR_UNAVAILABLE (and @notify is called). */
DvVirtWatch *dv_virt_watch_new(DvVirtHost *host, DvVirtEventFunc func, gpointer user_data,
                               GDestroyNotify notify, GError **error);
/* Does the watch's connection still answer (keepalive)? */
gboolean dv_virt_watch_is_alive(DvVirtWatch *watch);
/* Deregisters and closes.  Waits for a callback running now; after it
 * returns @func is never called again.  Never call it from @func. */
void dv_virt_watch_free(DvVirtWatch *watch);

/* ---- live migration (dv-virt-migrate.c) ------------------------------- */

/* Storage of a migration.  SHARED: every writable disk is on storage both
 * hosts see, nothing is copied.  COPY_ALL: every writable disk (or those in
 * @disks) is copied whole into a file the destination already has at the
 * disk's path (VIR_MIGRATE_NON_SHARED_DISK, QEMU's NBD mirror).  COPY_TOP:
 * only the top of each backing chain is copied; the destination already
 * has the overlay file, on the same backing chain (NON_SHARED_INC). */
typedef enum {
    DV_VIRT_MIGRATE_SHARED,
    DV_VIRT_MIGRATE_COPY_ALL,
    DV_VIRT_MIGRATE_COPY_TOP,
} DvVirtMigrateStorage;

#define DV_VIRT_MIGRATE_DEFAULT_TIMEOUT_MS (30 * 60 * 1000)
#define DV_VIRT_MIGRATE_DEFAULT_INTERVAL_MS 500

/* All members optional (zero/NULL: the default); borrowed for the call. */
typedef struct {
    DvVirtMigrateStorage storage;
    /* Disk targets ("vda", ...) to copy; NULL: every writable disk. */
    const char *const *disks;
    /* The definition the destination runs (VIR_MIGRATE_PARAM_DEST_XML,
     * e.g. other disk paths) and keeps (PERSIST_XML: @persist_xml, else
     * @dest_xml); NULL: the source's. */
    const char *dest_xml;
    const char *persist_xml;
    /* Where QEMU sends the data ("tcp://ADDRESS[:PORT]"); NULL: the
     * destination libvirtd's hostname and a port of its range. */
    const char *migrate_uri;
    guint64 bandwidth_mib_s; /* cap; 0: libvirt's default (unlimited) */
    /* VIR_MIGRATE_UNSAFE: libvirt refuses SHARED migrations of disks on a
     * local filesystem ("Migration without shared storage is unsafe").
     * Only for a directory both daemons see on one machine (the tests). */
    gboolean allow_unsafe;
    guint progress_interval_ms; /* 0: DV_VIRT_MIGRATE_DEFAULT_INTERVAL_MS */
    guint timeout_ms;           /* 0: DV_VIRT_MIGRATE_DEFAULT_TIMEOUT_MS */
    /* When set, the finished job's statistics (downtime) are read from the
     * destination afterwards (only the destination keeps them). */
    DvVirtHost *dest_host;
} DvVirtMigrateParams;

/* The running domain's definition for a migration's @dest_xml
 * (VIR_DOMAIN_XML_MIGRATABLE), with the file disks named in @disk_paths
 * ({old path: new path}, may be NULL) moved to their new paths and their
 * <backingStore> dropped (the destination reads each file's own chain).  A
 * path that is no file disk of the domain, or a new path that is not
 * absolute: DV_ERROR_INVALID_ARGUMENT naming disk_paths.  Owned. */
char *dv_virt_domain_get_migratable_xml(DvVirtHost *host, const char *uuid, JsonObject *disk_paths,
                                        GCancellable *cancellable, GError **error);

/* Called from the calling thread with the migration's statistics, borrowed:
 * {time_elapsed (ms), data_total, data_processed, data_remaining (bytes),
 *  memory_*, disk_* likewise, memory_iteration, memory_dirty_rate,
 *  auto_converge_throttle, ... (every number virDomainGetJobStats gives,
 *  under its own name), percent (0-99 while running)}. */
typedef void (*DvVirtMigrateProgress)(JsonObject *stats, gpointer user_data);

/* Live-migrates the running domain @uuid of @host peer to peer to the
 * libvirtd at @dest_uri (as @host's libvirtd reaches it: it opens that
 * connection, not this process), persistent there and undefined here, with
 * auto-converge (VIR_MIGRATE_LIVE | PEER2PEER | PERSIST_DEST |
 * UNDEFINE_SOURCE | AUTO_CONVERGE, plus the storage flags).
 *
 * Blocks until the migration ends.  virDomainMigrateToURI3 runs in a
 * thread of its own on one connection of @host while this thread polls
 * virDomainGetJobStats on a second one every progress interval (so @host
 * needs max_connections >= 2) and calls @progress.  When @cancellable
 * fires, or the timeout passes, it calls virDomainAbortJob: the domain
 * keeps running on @host, and the call fails with DV_ERROR_CANCELLED
 * (or DV_ERROR_TIMEOUT) once libvirt has rolled back.
 *
 * Returns the last statistics plus {elapsed_ms (wall clock of the whole
 * call), samples, and with @dest_host: downtime (ms), the completed job's
 * figures}.  @dest_uri is checked against this process's URI policy
 * (dv_virt_check_uri()): "uri" in the error. */
JsonObject *dv_virt_domain_migrate(DvVirtHost *host, const char *uuid, const char *dest_uri,
                                   const DvVirtMigrateParams *params,
                                   DvVirtMigrateProgress progress, gpointer user_data,
                                   GCancellable *cancellable, GError **error);

/* What a migration's preflight reads of the domain @uuid on @host and of
 * @target (both live): {running, memory_mib (the domain's maximum),
 * snapshots, hostdevs (passthrough devices), target_free_memory_mib,
 * cpu: {mode ("none", "custom", "host-model", "host-passthrough"), model?,
 * result ("identical", "superset", "incompatible", "not-compared"),
 * detail?}}.  A custom model is compared with what the target's hypervisor
 * offers (virConnectCompareHypervisorCPU), host-passthrough with the
 * target's host CPU (virConnectCompareCPU of the source's); without a
 * model nothing is compared.  An unreachable @target is its connection
 * error (DV_ERROR_UNAVAILABLE).  Owned. */
JsonObject *dv_virt_domain_migrate_facts(DvVirtHost *host, const char *uuid, DvVirtHost *target,
                                         GCancellable *cancellable, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvVirt, dv_virt_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvVirtHost, dv_virt_host_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvVirtWatch, dv_virt_watch_free)

/* ---- graphical console (dv-virt-graphics.c; docs/VIRT.md, "Graphical console") ---- */

/* Where a display Drover defines listens when the spec does not say. */
#define DV_VIRT_GRAPHICS_LISTEN "127.0.0.1"

/* How long a remote display's one-time password is valid, in seconds
 * from droverd's clock (docs/VIRT.md, "Graphical console"). */
#define DV_VIRT_GRAPHICS_PASSWORD_SECONDS 10
/* Remote displays: TCP connect, then the whole RFB handshake. */
#define DV_VIRT_GRAPHICS_CONNECT_TIMEOUT 5
#define DV_VIRT_GRAPHICS_HANDSHAKE_TIMEOUT 5

/* A new client connection to the display of the running domain @uuid,
 * whose first <graphics> must be of @type ("vnc"): a socket descriptor
 * the caller owns (close it).
 *
 * On a local host (no host name in the URI) libvirt passes the
 * descriptor (SKIPAUTH): it speaks RFB from the banner on with security
 * type None, *ret_authenticated is FALSE.  On a remote host
 * (qemu+tcp/tls/ssh://HOST) droverd sets a one-time password valid for
 * @password_seconds (0: already expired, for tests), connects over TCP
 * to the display's listen address (the rule in docs/VIRT.md) and answers
 * VNC authentication; the password is expired again before this
 * returns.  The descriptor is then past the security result (the next
 * message is the client's ClientInit), *ret_authenticated is TRUE and
 * the caller owes its client the handshake up to there.
 *
 * -1 with DV_ERROR_CONFLICT (not running), DV_ERROR_NOT_SUPPORTED
 * naming "type" (no display, another type, or one droverd cannot reach),
 * DV_ERROR_TIMEOUT, or a host error. */
int dv_virt_domain_open_graphics(DvVirtHost *host, const char *uuid, const char *type,
                                 guint password_seconds, gboolean *ret_authenticated,
                                 GCancellable *cancellable, GError **error);

/* Where droverd connects for a display listening on @listen (NULL:
 * qemu.conf's default, 127.0.0.1) of the host named @uri_host in its
 * URI: a wildcard (0.0.0.0, ::) means @uri_host; a loopback address is
 * reachable only when @uri_host is loopback too (this machine), else
 * DV_ERROR_NOT_SUPPORTED naming "type"; any other address is used as
 * it is.  Owned. */
char *dv_virt_graphics_connect_address(const char *listen, const char *uri_host, GError **error);

/* VNC authentication (dv-virt-rfb.c): the DES key VNC derives from
 * @password (8 bytes, zero-padded, each byte's bits reversed); the
 * response to a 16-byte challenge (FALSE when the key is one of DES's
 * weak keys: the response is still written); the client half of an RFB
 * 3.8 handshake choosing type 2 on the blocking @sock (its timeout
 * applies), which leaves it before ClientInit. */
void dv_virt_rfb_des_key(const char *password, guint8 ret_key[8]);
gboolean dv_virt_rfb_des_response(const char *password, const guint8 challenge[16],
                                  guint8 ret_response[16]);
gboolean dv_virt_rfb_client_auth(GSocket *sock, const char *password, GError **error);

/* ---- serial console (dv-virt-console.c; docs/VIRT.md, "Serial console") ---- */

typedef struct _DvVirtConsole DvVirtConsole;

/* Called in libvirt's event loop thread with what the guest wrote
 * (@data, @len; @ended NULL), and once at the end with @data NULL and
 * @ended saying why (the domain stopped, the stream failed). */
typedef void (*DvVirtConsoleFunc)(const guint8 *data, gsize len, const char *ended,
                                  gpointer user_data);

/* Opens the first serial console of the running domain @uuid on a
 * connection of its own, non-blocking, driven by libvirt's event loop.
 * Refused (DV_ERROR_CONFLICT or DV_ERROR_HOST_FAILED) when the domain is
 * not running, has no pty console, or another client (virsh console)
 * holds it. */
DvVirtConsole *dv_virt_console_open(DvVirtHost *host, const char *uuid, DvVirtConsoleFunc func,
                                    gpointer user_data, GError **error);
/* Any thread.  Queues what the stream does not take at once (at most
 * 64 KiB waiting: DV_ERROR_BUSY beyond). */
gboolean dv_virt_console_write(DvVirtConsole *console, const guint8 *data, gsize len,
                               GError **error);
/* Returns once no call of the function runs and none will come. */
void dv_virt_console_free(DvVirtConsole *console);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvVirtConsole, dv_virt_console_free)

G_END_DECLS
