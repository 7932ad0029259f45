#define G_LOG_DOMAIN "DvVirtEvents"

/* Event watches: one long-lived connection per host registered for domain,
 * storage pool and network lifecycle events and for its own close
 * (docs/VIRT.md, "Events").
 *
 * Threads: libvirt calls the callbacks below in its event loop thread
 * ("dv-virt-events").  They read only what libvirt's objects carry locally
 * (name and UUID: no round trip) and call the owner's function under the
 * shared state's mutex, so dv_virt_watch_free(), which clears the function
 * under the same mutex, returns only when no callback runs and none will
 * call it again.  libvirt frees each registration's reference on the shared
 * state through its freecb when it drops the callback. */

#include "dv-virt-private.h"

typedef struct {
    gint refcount; /* the watch plus one per callback libvirt holds */
    GMutex lock;   /* held while func runs */
    DvVirtEventFunc func; /* NULL once the watch is freed */
    gpointer user_data;
    GDestroyNotify notify;
} DvVirtWatchShared;

struct _DvVirtWatch {
    virConnectPtr conn;
    DvVirtWatchShared *shared;
    int dom_cb;
    int pool_cb;
    int pool_refresh_cb;
    int net_cb;
    gboolean close_cb;
};

static DvVirtWatchShared *
dv_virt_watch_shared_ref(DvVirtWatchShared *shared)
{
    g_atomic_int_inc(&shared->refcount);
    return shared;
}

static void
dv_virt_watch_shared_unref(void *data)
{
    DvVirtWatchShared *shared = data;

    if (!g_atomic_int_dec_and_test(&shared->refcount))
        return;
    if (shared->notify != NULL)
        shared->notify(shared->user_data);
    g_mutex_clear(&shared->lock);
    g_free(shared);
}

static void
dv_virt_watch_emit(DvVirtWatchShared *shared, DvVirtEventKind kind, const char *uuid,
                   const char *name, const char *what)
{
    DvVirtEvent ev = { kind, uuid, name, what, g_get_monotonic_time() };

    g_mutex_lock(&shared->lock);
    if (shared->func != NULL)
        shared->func(&ev, shared->user_data);
    g_mutex_unlock(&shared->lock);
}

static const char *
dv_virt_domain_event_name(int event)
{
    switch (event) {
    case VIR_DOMAIN_EVENT_DEFINED:
        return "defined";
    case VIR_DOMAIN_EVENT_UNDEFINED:
        return "undefined";
    case VIR_DOMAIN_EVENT_STARTED:
        return "started";
    case VIR_DOMAIN_EVENT_SUSPENDED:
        return "suspended";
    case VIR_DOMAIN_EVENT_RESUMED:
        return "resumed";
    case VIR_DOMAIN_EVENT_STOPPED:
        return "stopped";
    case VIR_DOMAIN_EVENT_SHUTDOWN:
        return "shutdown";
    case VIR_DOMAIN_EVENT_PMSUSPENDED:
        return "pmsuspended";
    case VIR_DOMAIN_EVENT_CRASHED:
        return "crashed";
    default:
        return "changed";
    }
}

static int
dv_virt_watch_domain_cb(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
    char uuid[VIR_UUID_STRING_BUFLEN] = "";

    if (virDomainGetUUIDString(dom, uuid) < 0)
        return 0;
    dv_virt_watch_emit(opaque, DV_VIRT_EVENT_DOMAIN, uuid, virDomainGetName(dom),
                       dv_virt_domain_event_name(event));
    return 0;
}

/* Pool and network lifecycle events share their first four numbers
 * (defined, undefined, started, stopped); pools add created and deleted. */
static const char *
dv_virt_object_event_name(int event)
{
    static const char *const names[] = { "defined", "undefined", "started",
                                         "stopped", "created",   "deleted" };
    return event >= 0 && (gsize)event < G_N_ELEMENTS(names) ? names[event] : "changed";
}

static void
dv_virt_watch_pool_cb(virConnectPtr conn, virStoragePoolPtr pool, int event, int detail,
                      void *opaque)
{
    char uuid[VIR_UUID_STRING_BUFLEN] = "";

    if (virStoragePoolGetUUIDString(pool, uuid) < 0)
        return;
    dv_virt_watch_emit(opaque, DV_VIRT_EVENT_POOL, uuid, virStoragePoolGetName(pool),
                       dv_virt_object_event_name(event));
}

static void
dv_virt_watch_pool_refresh_cb(virConnectPtr conn, virStoragePoolPtr pool, void *opaque)
{
    char uuid[VIR_UUID_STRING_BUFLEN] = "";

    if (virStoragePoolGetUUIDString(pool, uuid) < 0)
        return;
    dv_virt_watch_emit(opaque, DV_VIRT_EVENT_POOL, uuid, virStoragePoolGetName(pool),
                       "refreshed");
}

static void
dv_virt_watch_net_cb(virConnectPtr conn, virNetworkPtr net, int event, int detail, void *opaque)
{
    char uuid[VIR_UUID_STRING_BUFLEN] = "";

    if (virNetworkGetUUIDString(net, uuid) < 0)
        return;
    dv_virt_watch_emit(opaque, DV_VIRT_EVENT_NETWORK, uuid, virNetworkGetName(net),
                       dv_virt_object_event_name(event));
}

static void
dv_virt_watch_close_cb(virConnectPtr conn, int reason, void *opaque)
{
    const char *what = "error";

    if (reason == VIR_CONNECT_CLOSE_REASON_EOF)
        what = "eof";
    else if (reason == VIR_CONNECT_CLOSE_REASON_KEEPALIVE)
        what = "keepalive";
    else if (reason == VIR_CONNECT_CLOSE_REASON_CLIENT)
        what = "client";
    dv_virt_watch_emit(opaque, DV_VIRT_EVENT_CLOSED, NULL, NULL, what);
}

DvVirtWatch *
dv_virt_watch_new(DvVirtHost *host, DvVirtEventFunc func, gpointer user_data,
                  GDestroyNotify notify, GError **error)
{
    g_autoptr(DvVirtWatch) watch = g_new0(DvVirtWatch, 1);
    DvVirtWatchShared *shared = g_new0(DvVirtWatchShared, 1);

    g_return_val_if_fail(host != NULL && func != NULL, NULL);

    shared->refcount = 1;
    g_mutex_init(&shared->lock);
    shared->func = func;
    shared->user_data = user_data;
    shared->notify = notify;
    watch->shared = shared;
    watch->dom_cb = watch->pool_cb = watch->pool_refresh_cb = watch->net_cb = -1;

    watch->conn = dv_virt_host_open_conn(host, error);
    if (watch->conn == NULL)
        return NULL;
    watch->dom_cb = virConnectDomainEventRegisterAny(
        watch->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
        VIR_DOMAIN_EVENT_CALLBACK(dv_virt_watch_domain_cb), dv_virt_watch_shared_ref(shared),
        dv_virt_watch_shared_unref);
    if (watch->dom_cb < 0) {
        virError copy = { 0 };

        /* libvirt did not take the reference it was offered. */
        dv_virt_watch_shared_unref(shared);
        virCopyLastError(&copy);
        dv_virt_set_error_from_virt(error, copy.code != 0 ? &copy : NULL,
                                    dv_virt_host_get_uri(host), FALSE,
                                    "cannot register for domain events");
        virResetError(&copy);
        return NULL;
    }
    /* Pools and networks: a driver without them (or a daemon without the
     * storage or network driver) leaves domains watched. */
    watch->pool_cb = virConnectStoragePoolEventRegisterAny(
        watch->conn, NULL, VIR_STORAGE_POOL_EVENT_ID_LIFECYCLE,
        VIR_STORAGE_POOL_EVENT_CALLBACK(dv_virt_watch_pool_cb), dv_virt_watch_shared_ref(shared),
        dv_virt_watch_shared_unref);
    if (watch->pool_cb < 0) {
        dv_virt_watch_shared_unref(shared);
        virResetLastError();
    }
    watch->pool_refresh_cb = virConnectStoragePoolEventRegisterAny(
        watch->conn, NULL, VIR_STORAGE_POOL_EVENT_ID_REFRESH,
        VIR_STORAGE_POOL_EVENT_CALLBACK(dv_virt_watch_pool_refresh_cb),
        dv_virt_watch_shared_ref(shared), dv_virt_watch_shared_unref);
    if (watch->pool_refresh_cb < 0) {
        dv_virt_watch_shared_unref(shared);
        virResetLastError();
    }
    watch->net_cb = virConnectNetworkEventRegisterAny(
        watch->conn, NULL, VIR_NETWORK_EVENT_ID_LIFECYCLE,
        VIR_NETWORK_EVENT_CALLBACK(dv_virt_watch_net_cb), dv_virt_watch_shared_ref(shared),
        dv_virt_watch_shared_unref);
    if (watch->net_cb < 0) {
        dv_virt_watch_shared_unref(shared);
        virResetLastError();
    }
    /* In-process test connections have no transport to lose. */
    if (virConnectRegisterCloseCallback(watch->conn, dv_virt_watch_close_cb,
                                        dv_virt_watch_shared_ref(shared),
                                        dv_virt_watch_shared_unref) == 0) {
        watch->close_cb = TRUE;
    } else {
        dv_virt_watch_shared_unref(shared);
        virResetLastError();
    }
    return g_steal_pointer(&watch);
}

gboolean
dv_virt_watch_is_alive(DvVirtWatch *watch)
{
    g_return_val_if_fail(watch != NULL, FALSE);
    return virConnectIsAlive(watch->conn) == 1;
}

void
dv_virt_watch_free(DvVirtWatch *watch)
{
    DvVirtWatchShared *shared;

    if (watch == NULL)
        return;
    shared = watch->shared;
    /* First silence the callbacks: one running now finishes before this
     * lock is ours, and none calls the owner afterwards. */
    g_mutex_lock(&shared->lock);
    shared->func = NULL;
    g_mutex_unlock(&shared->lock);
    if (watch->conn != NULL) {
        /* Deregistering a dead connection's callbacks fails on the wire
         * but drops them locally; either way nothing is left to do. */
        if (watch->dom_cb >= 0 && virConnectDomainEventDeregisterAny(watch->conn, watch->dom_cb) < 0)
            virResetLastError();
        if (watch->pool_cb >= 0 &&
            virConnectStoragePoolEventDeregisterAny(watch->conn, watch->pool_cb) < 0)
            virResetLastError();
        if (watch->pool_refresh_cb >= 0 &&
            virConnectStoragePoolEventDeregisterAny(watch->conn, watch->pool_refresh_cb) < 0)
            virResetLastError();
        if (watch->net_cb >= 0 && virConnectNetworkEventDeregisterAny(watch->conn, watch->net_cb) < 0)
            virResetLastError();
        if (watch->close_cb &&
            virConnectUnregisterCloseCallback(watch->conn, dv_virt_watch_close_cb) < 0)
            virResetLastError();
        virConnectClose(watch->conn);
    }
    dv_virt_watch_shared_unref(shared);
    g_free(watch);
}
