#define G_LOG_DOMAIN "DvVirtConsole"

/* A domain's serial console as a non-blocking virStream on a connection
 * of its own (docs/VIRT.md, "Serial console").
 *
 * Threads: libvirt calls dv_virt_console_cb() in its event loop thread
 * ("dv-virt-events"); it reads what the stream holds and calls the owner's
 * function under the shared state's mutex, so dv_virt_console_free(),
 * which clears the function under the same mutex, returns only when no
 * call runs and none will come.  Writes may come from any thread: what
 * the stream does not take at once waits in @pending (under the mutex)
 * and goes out when libvirt says the stream is writable.
 *
 * libvirt's reference: the remote driver of libvirt 9.0 never calls the
 * free function given to virStreamEventAddCallback (fixed upstream in
 * 2025, "remote/stream-event: Fix a memory leak in
 * remoteStreamCallbackFree()"), so none is given.  Once the callback is
 * removed, a zero timeout on libvirt's event loop drops that reference:
 * the loop runs one callback at a time, so a dispatch of the stream that
 * was under way has returned by then (LeakSanitizer found the shared
 * state left behind, one per stream). */

#include "dv-virt-private.h"

#define DV_VIRT_CONSOLE_CHUNK 4096
#define DV_VIRT_CONSOLE_MAX_PENDING (64 * 1024)

typedef struct {
    gint refcount;  /* the console plus libvirt's callback */
    GMutex lock;
    DvVirtConsoleFunc func; /* NULL once freed or ended */
    gpointer user_data;
    virStreamPtr st;
    GByteArray *pending;
    gboolean ended;
    int release_timer; /* the timeout that drops libvirt's reference, or -1 */
} DvVirtConsoleShared;

struct _DvVirtConsole {
    virConnectPtr conn;
    virStreamPtr st;
    DvVirtConsoleShared *shared;
    gboolean cb_added;
};

static void
dv_virt_console_shared_unref(void *data)
{
    DvVirtConsoleShared *shared = data;

    if (!g_atomic_int_dec_and_test(&shared->refcount))
        return;
    g_byte_array_unref(shared->pending);
    g_mutex_clear(&shared->lock);
    g_free(shared);
}

/* libvirt's event loop thread: the stream's callback is gone and no
 * dispatch of it runs any more. */
static void
dv_virt_console_release_cb(int timer, void *opaque)
{
    (void)virEventRemoveTimeout(timer);
    dv_virt_console_shared_unref(opaque);
}

/* Under the lock, once the callback is removed: libvirt's reference goes
 * from the event loop, after any dispatch under way. */
static void
dv_virt_console_release_locked(DvVirtConsoleShared *shared)
{
    if (shared->release_timer >= 0)
        return;
    shared->release_timer = virEventAddTimeout(0, dv_virt_console_release_cb, shared, NULL);
    /* Without a timer the reference stays: a small leak, not a use after free. */
    if (shared->release_timer < 0)
        virResetLastError();
}

/* Under the lock: writes what waits; TRUE while the stream is usable. */
static gboolean
dv_virt_console_flush_locked(DvVirtConsoleShared *shared)
{
    while (shared->pending->len > 0) {
        int n = virStreamSend(shared->st, (const char *)shared->pending->data,
                              shared->pending->len);
        if (n == -2)
            break;
        if (n < 0) {
            virResetLastError();
            return FALSE;
        }
        g_byte_array_remove_range(shared->pending, 0, (guint)n);
    }
    (void)virStreamEventUpdateCallback(
        shared->st, VIR_STREAM_EVENT_READABLE | VIR_STREAM_EVENT_ERROR | VIR_STREAM_EVENT_HANGUP |
                        (shared->pending->len > 0 ? VIR_STREAM_EVENT_WRITABLE : 0));
    return TRUE;
}

/* Under the lock: tells the owner once that the console ended. */
static void
dv_virt_console_end_locked(DvVirtConsoleShared *shared, const char *why)
{
    if (shared->ended)
        return;
    shared->ended = TRUE;
    (void)virStreamEventRemoveCallback(shared->st); /* may already be gone */
    virResetLastError();
    dv_virt_console_release_locked(shared);
    if (shared->func != NULL)
        shared->func(NULL, 0, why, shared->user_data);
}

static void
dv_virt_console_cb(virStreamPtr st, int events, void *opaque)
{
    DvVirtConsoleShared *shared = opaque;
    char buf[DV_VIRT_CONSOLE_CHUNK];

    g_mutex_lock(&shared->lock);
    if (shared->ended) {
        g_mutex_unlock(&shared->lock);
        return;
    }
    if ((events & VIR_STREAM_EVENT_WRITABLE) && !dv_virt_console_flush_locked(shared)) {
        dv_virt_console_end_locked(shared, "the console stream failed");
        g_mutex_unlock(&shared->lock);
        return;
    }
    if (events & (VIR_STREAM_EVENT_READABLE | VIR_STREAM_EVENT_HANGUP)) {
        for (;;) {
            int n = virStreamRecv(st, buf, sizeof(buf));
            if (n == -2)
                break;
            if (n == 0) {
                dv_virt_console_end_locked(shared, "the domain's console closed");
                break;
            }
            if (n < 0) {
                virResetLastError();
                dv_virt_console_end_locked(shared, "the console stream failed");
                break;
            }
            if (shared->func != NULL)
                shared->func((const guint8 *)buf, (gsize)n, NULL, shared->user_data);
        }
    } else if (events & VIR_STREAM_EVENT_ERROR) {
        dv_virt_console_end_locked(shared, "the console stream failed");
    }
    g_mutex_unlock(&shared->lock);
}

DvVirtConsole *
dv_virt_console_open(DvVirtHost *host, const char *uuid, DvVirtConsoleFunc func,
                     gpointer user_data, GError **error)
{
    g_autoptr(DvVirtConsole) console = g_new0(DvVirtConsole, 1);
    g_autoptr(virDomain) dom = NULL;
    DvVirtConsoleShared *shared;

    g_return_val_if_fail(host != NULL && uuid != NULL && func != NULL, NULL);

    console->conn = dv_virt_host_open_conn(host, error);
    if (console->conn == NULL)
        return NULL;
    dom = virDomainLookupByUUIDString(console->conn, uuid);
    if (dom == NULL) {
        virError copy = { 0 };
        virCopyLastError(&copy);
        dv_virt_set_error_from_virt(error, copy.code != 0 ? &copy : NULL,
                                    dv_virt_host_get_uri(host), FALSE, "cannot find the domain");
        virResetError(&copy);
        return NULL;
    }
    console->st = virStreamNew(console->conn, VIR_STREAM_NONBLOCK);
    /* VIR_DOMAIN_CONSOLE_SAFE: refused while another client (virsh
     * console) holds it, instead of taking it away. */
    if (console->st == NULL ||
        virDomainOpenConsole(dom, NULL, console->st, VIR_DOMAIN_CONSOLE_SAFE) < 0) {
        virError copy = { 0 };
        virCopyLastError(&copy);
        dv_virt_set_error_from_virt(error, copy.code != 0 ? &copy : NULL,
                                    dv_virt_host_get_uri(host), FALSE,
                                    "cannot open the domain's serial console");
        virResetError(&copy);
        return NULL;
    }
    shared = g_new0(DvVirtConsoleShared, 1);
    shared->refcount = 2;
    g_mutex_init(&shared->lock);
    shared->func = func;
    shared->user_data = user_data;
    shared->st = console->st;
    shared->pending = g_byte_array_new();
    shared->release_timer = -1;
    console->shared = shared;
    if (virStreamEventAddCallback(console->st,
                                  VIR_STREAM_EVENT_READABLE | VIR_STREAM_EVENT_ERROR |
                                      VIR_STREAM_EVENT_HANGUP,
                                  dv_virt_console_cb, shared, NULL) < 0) {
        virError copy = { 0 };
        /* libvirt did not take its reference: dv_virt_console_free() drops it. */
        virCopyLastError(&copy);
        dv_virt_set_error_from_virt(error, copy.code != 0 ? &copy : NULL,
                                    dv_virt_host_get_uri(host), FALSE,
                                    "cannot watch the domain's serial console");
        virResetError(&copy);
        return NULL;
    }
    console->cb_added = TRUE;
    return g_steal_pointer(&console);
}

gboolean
dv_virt_console_write(DvVirtConsole *console, const guint8 *data, gsize len, GError **error)
{
    DvVirtConsoleShared *shared = console->shared;
    gboolean ok;

    g_mutex_lock(&shared->lock);
    if (shared->ended) {
        g_mutex_unlock(&shared->lock);
        g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT, "the serial console has ended");
        return FALSE;
    }
    if (shared->pending->len + len > DV_VIRT_CONSOLE_MAX_PENDING) {
        g_mutex_unlock(&shared->lock);
        dv_set_field_error(error, DV_ERROR_BUSY, NULL,
                           "the guest reads its console slower than it is written: more than "
                           "%d bytes wait",
                           DV_VIRT_CONSOLE_MAX_PENDING);
        return FALSE;
    }
    g_byte_array_append(shared->pending, data, (guint)len);
    ok = dv_virt_console_flush_locked(shared);
    if (!ok)
        dv_virt_console_end_locked(shared, "the console stream failed");
    g_mutex_unlock(&shared->lock);
    if (!ok)
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "the serial console stream failed");
    return ok;
}

void
dv_virt_console_free(DvVirtConsole *console)
{
    if (console == NULL)
        return;
    if (console->shared != NULL) {
        DvVirtConsoleShared *shared = console->shared;
        g_mutex_lock(&shared->lock);
        shared->func = NULL;
        if (!shared->ended) {
            shared->ended = TRUE;
            if (console->cb_added) {
                (void)virStreamEventRemoveCallback(console->st);
                dv_virt_console_release_locked(shared);
            }
        }
        g_mutex_unlock(&shared->lock);
        if (!console->cb_added)
            dv_virt_console_shared_unref(shared);
        dv_virt_console_shared_unref(shared);
    }
    if (console->st != NULL) {
        (void)virStreamAbort(console->st); /* an ended stream refuses: nothing to undo */
        virStreamFree(console->st);
    }
    virResetLastError();
    if (console->conn != NULL)
        virConnectClose(console->conn);
    g_free(console);
}
