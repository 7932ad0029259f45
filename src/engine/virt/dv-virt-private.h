/* Internals of src/engine/virt shared by its files and its tests.
 * Never include this outside src/engine/virt and tests/virt. */
#pragma once

#include "dv-error.h"
#include "dv-virt.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/tree.h>

G_BEGIN_DECLS

/* libvirt's free functions return int; wrap them so autoptr can use them. */
static inline void dv_virt_conn_close(virConnectPtr p) { if (p) virConnectClose(p); }
static inline void dv_virt_dom_free(virDomainPtr p) { if (p) virDomainFree(p); }
static inline void dv_virt_pool_free(virStoragePoolPtr p) { if (p) virStoragePoolFree(p); }
static inline void dv_virt_vol_free(virStorageVolPtr p) { if (p) virStorageVolFree(p); }
static inline void dv_virt_net_free(virNetworkPtr p) { if (p) virNetworkFree(p); }
static inline void dv_virt_snap_free(virDomainSnapshotPtr p) { if (p) virDomainSnapshotFree(p); }
static inline void dv_virt_stream_free(virStreamPtr p) { if (p) virStreamFree(p); }

G_DEFINE_AUTOPTR_CLEANUP_FUNC(virConnect, dv_virt_conn_close)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virDomain, dv_virt_dom_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virStoragePool, dv_virt_pool_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virStorageVol, dv_virt_vol_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virNetwork, dv_virt_net_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virDomainSnapshot, dv_virt_snap_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virStream, dv_virt_stream_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)

/* Arrays returned by virConnectListAll*: elements and array. */
void dv_virt_domain_list_free(virDomainPtr *list);
void dv_virt_pool_list_free(virStoragePoolPtr *list);
void dv_virt_vol_list_free(virStorageVolPtr *list);
void dv_virt_net_list_free(virNetworkPtr *list);
void dv_virt_snap_list_free(virDomainSnapshotPtr *list);
typedef virDomainPtr DvVirtDomainList;
typedef virStoragePoolPtr DvVirtPoolList;
typedef virStorageVolPtr DvVirtVolList;
typedef virNetworkPtr DvVirtNetList;
typedef virDomainSnapshotPtr DvVirtSnapList;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvVirtDomainList, dv_virt_domain_list_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvVirtPoolList, dv_virt_pool_list_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvVirtVolList, dv_virt_vol_list_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvVirtNetList, dv_virt_net_list_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvVirtSnapList, dv_virt_snap_list_free)

/* Strings libvirt allocates with malloc. */
static inline void dv_virt_cfree(char *p) { free(p); }

/* What a domain definition may ask for (dv-virt-xml.c, dv-virt-change.c). */
#define DV_VIRT_MAX_VCPUS 256
#define DV_VIRT_MAX_MEMORY_MIB (4 * 1024 * 1024)

/* ---- operations --------------------------------------------------------
 * Every libvirt round trip runs inside an operation: it holds one of the
 * host's operation slots and a reference on one pooled connection.
 *
 *     g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
 *     if (!dv_virt_op_begin(&op, host, cancellable, error))
 *         return FALSE;
 *     if (virDomainCreate(dom) < 0)
 *         return dv_virt_op_fail(&op, error, "cannot start domain %s", uuid);
 */
typedef struct _DvVirtConn DvVirtConn;

typedef struct {
    DvVirtHost *host;     /* borrowed: the caller holds the host */
    DvVirtConn *entry;    /* pool entry, one user counted */
    virConnectPtr conn;   /* own reference */
    gint64 began;         /* monotonic: the call's duration metric */
} DvVirtOp;

#define DV_VIRT_OP_INIT { NULL, NULL, NULL, 0 }

gboolean dv_virt_op_begin(DvVirtOp *op, DvVirtHost *host, GCancellable *cancellable,
                          GError **error);
void dv_virt_op_end(DvVirtOp *op);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(DvVirtOp, dv_virt_op_end)

/* Converts libvirt's last error of this thread into @error (prefixed with
 * the formatted context), drops the connection from the pool when it died,
 * and returns FALSE.  Always sets @error. */
gboolean dv_virt_op_fail(DvVirtOp *op, GError **error, const char *format, ...)
    G_GNUC_PRINTF(3, 4);

/* The same, returning NULL for functions that return pointers. */
gpointer dv_virt_op_fail_null(DvVirtOp *op, GError **error, const char *format, ...)
    G_GNUC_PRINTF(3, 4);

/* Storage pool @pool (checked as a name) on the connection of the begun
 * @op (owned), or NULL with DV_ERROR_NOT_FOUND or another error set. */
virStoragePoolPtr dv_virt_pool_lookup(DvVirtOp *op, const char *pool, GError **error);

/* At most this many pool handles are kept per connection. */
#define DV_VIRT_POOL_CACHE_MAX 256

/* The same from the connection's cache of pool handles: no round trip
 * after the first lookup of @pool on this connection (libvirtd serves
 * each lookup on a thread of its own, a fifth of its CPU when catalogs
 * make thousands of volumes).  A handle names the pool by UUID, so one
 * that outlived its pool (deleted, or made again under the name) fails
 * the call with VIR_ERR_NO_STORAGE_POOL: the caller then calls
 * dv_virt_pool_forget_if_gone() and, when it returns TRUE, looks up and
 * tries once more.  Only for calls that fail before changing anything
 * when the pool is gone. */
virStoragePoolPtr dv_virt_pool_lookup_cached(DvVirtOp *op, const char *pool, GError **error);

/* TRUE (and the last libvirt error reset, @pool dropped from the cache)
 * when the last libvirt call failed because its pool handle is stale. */
gboolean dv_virt_pool_forget_if_gone(DvVirtOp *op, const char *pool);

/* FALSE with DV_ERROR_NOT_SUPPORTED when @host is on libvirt's test
 * driver, which has no volume streams; @what names what the caller
 * wanted ("upload or download volumes"). */
gboolean dv_virt_host_can_stream(DvVirtHost *host, const char *what, GError **error);

/* Some drivers (test) report a duplicate volume name as a generic
 * failure; a duplicate name is a conflict whatever the driver says.
 * @err is what dv_virt_op_fail() set when making volume @name in @p
 * failed; its code becomes DV_ERROR_CONFLICT when @name is there. */
void dv_virt_volume_conflict_if_exists(virStoragePoolPtr p, const char *name, GError *err);

/* The same, beginning @op on @host first; the name is checked before any
 * connection is made. */
virStoragePoolPtr dv_virt_pool_open(DvVirtOp *op, DvVirtHost *host, const char *pool,
                                    GCancellable *cancellable, GError **error);

/* The one libvirt -> DV_ERROR conversion.  @err may be NULL (unknown
 * failure).  @uri is used for connection errors. */
DvErrorCode dv_virt_error_code_from_virt(const virError *err, gboolean at_connect);
void dv_virt_set_error_from_virt(GError **error, const virError *err, const char *uri,
                                 gboolean at_connect, const char *context);

/* test:///<file>: a private simulated host per open. */
gboolean dv_virt_host_is_test_file_uri(const char *uri);

/* XML helpers (libxml2). */
xmlDoc *dv_virt_xml_parse(const char *xml, GError **error);
xmlNode *dv_virt_xml_child(xmlNode *node, const char *name);
char *dv_virt_xml_child_text(xmlNode *node, const char *name);   /* g_free */
char *dv_virt_xml_prop(xmlNode *node, const char *name);         /* g_free */

/* A probe/get entry for one domain (runs inside @op). */
JsonObject *dv_virt_domain_entry_new(DvVirtOp *op, virDomainPtr dom, gboolean with_snapshots,
                                     GError **error);
JsonObject *dv_virt_snapshot_entry_new(DvVirtOp *op, virDomainSnapshotPtr snap, GError **error);
JsonArray *dv_virt_snapshot_list_for(DvVirtOp *op, virDomainPtr dom, GError **error);
JsonObject *dv_virt_volume_entry_new(DvVirtOp *op, virStorageVolPtr vol, GError **error);
/* Adds {kind: "internal"|"external", memory} read from the snapshot XML
 * root @sroot (dv-virt-snapshot.c). */
void dv_virt_snapshot_entry_add_kind(JsonObject *obj, xmlNode *sroot);
/* The files of the domain's external snapshots (each frozen base of an
 * own disk, each layer, each memory file; owned strings): what deleting
 * the domain with its volumes removes besides its disks. */
GPtrArray *dv_virt_snapshot_external_files(DvVirtOp *op, virDomainPtr dom, GError **error);
/* The volume behind @path, refreshing the pools over its directory when
 * libvirt does not know the file yet; NULL without an error when it is in
 * no pool (owned). */
virStorageVolPtr dv_virt_volume_lookup_refreshed(DvVirtOp *op, const char *path, GError **error);
/* dv_virt_domain_commit_active() inside a begun @op. */
gboolean dv_virt_domain_commit_active_in(DvVirtOp *op, virDomainPtr dom, const char *uuid,
                                         const char *target, guint timeout_ms,
                                         GCancellable *cancellable, GError **error);
/* Looks a domain up by UUID (validated first). */
virDomainPtr dv_virt_domain_lookup(DvVirtOp *op, const char *uuid, GError **error);

/* A connection of its own to @host, outside the pool and its limits
 * (the event watch's, dv-virt-events.c): a new one with keepalive, or for
 * in-process test:/// hosts a reference on the pool's one connection. */
virConnectPtr dv_virt_host_open_conn(DvVirtHost *host, GError **error);

/* A random 8-character display password (VNC's limit); g_free. */
char *dv_virt_graphics_password_new(void);
/* The manager @host belongs to (borrowed). */
DvVirt *dv_virt_host_get_virt(DvVirtHost *host);

/* Random suffix for probe object names. */
char *dv_virt_random_suffix(void);

/* Finds the device @key names in a domain's XML: its element serialized
 * (owned), or NULL without an error when the XML has none. */
typedef char *(*DvVirtDeviceFind)(const char *xml, const char *key, GError **error);
/* Removes the device @find finds by @key (a @what: "disk", "interface")
 * from domain @uuid's persistent definition and, when it runs, from the
 * live one, each separately (a device may be in one only); *@ret_live
 * says whether the live one lost it.  In neither: done (a resumed job). */
gboolean dv_virt_domain_device_detach(DvVirtHost *host, const char *uuid, DvVirtDeviceFind find,
                                      const char *key, const char *what, gboolean *ret_live,
                                      GCancellable *cancellable, GError **error);

G_END_DECLS
