#define G_LOG_DOMAIN "DvVmsConsole"

/* VM serial consoles: single-use tickets and one shared stream per VM
 * (docs/API.md, "Consoles"; docs/VIRT.md, "Serial console").
 *
 * Threads: the hub table and the ticket table each have one mutex.  The
 * virt layer calls dv_vm_console_hub_output() in libvirt's event loop
 * thread; it holds the hub lock while it hands the bytes to every
 * viewer's function, which must only queue them (the daemon invokes its
 * main context).  No lock is held across a libvirt round trip: the
 * stream is opened and freed outside it. */

#include "dv-vms.h"
#include "dv-error.h"
#include "dv-virt.h"

#include <sodium.h>
#include <string.h>

#define DV_VM_CONSOLE_BACKLOG (16 * 1024)
#define DV_VM_CONSOLE_MAX_TICKETS 10000

typedef struct _DvVmConsoleHub DvVmConsoleHub;

struct _DvVmConsoleViewer {
    DvVmConsoleHub *hub;
    gboolean writer;
    DvVmConsoleOutput func;
    gpointer user_data;
    GDestroyNotify notify;
};

struct _DvVmConsoleHub {
    char *key; /* engine pointer and VM id */
    char *vm_name;
    DvVirtConsole *stream;
    GPtrArray *viewers; /* DvVmConsoleViewer, borrowed */
    DvVmConsoleViewer *writer;
    char *writer_name;
    GByteArray *backlog;
    gboolean ended;
    gboolean in_table;
};

static GMutex dv_vm_console_lock;
static GHashTable *dv_vm_console_hubs; /* key -> DvVmConsoleHub */

typedef struct {
    char *vm_id;
    char *token; /* the issuing request's bearer token: a secret */
    gint64 expires;
} DvVmConsoleTicket;

static GMutex dv_vm_console_ticket_lock;
static GHashTable *dv_vm_console_tickets; /* ticket -> DvVmConsoleTicket */

static void
dv_vm_console_ticket_free(DvVmConsoleTicket *t)
{
    g_free(t->vm_id);
    dv_secret_str_free(t->token);
    g_free(t);
}

/* --- tickets ---------------------------------------------------------------- */

/* DV_VM_CONSOLE_TICKET_TTL s; tests (DV_DEBUG_JOBS=1) may shorten it with
 * DV_DEBUG_CONSOLE_TICKET_SECONDS rather than wait half a minute. */
static gint64
dv_vm_console_ticket_ttl(void)
{
    const char *v = g_getenv("DV_DEBUG_CONSOLE_TICKET_SECONDS");

    if (v != NULL && dv_core_debug_enabled())
        return (gint64)CLAMP(g_ascii_strtoull(v, NULL, 10), 1, 3600);
    return DV_VM_CONSOLE_TICKET_TTL;
}

JsonObject *
dv_engine_vm_console_ticket(DvEngine *engine, const char *vm_ref, const char *token,
                            GError **error)
{
    g_autoptr(JsonObject) vm = dv_core_resolve(engine, DV_KIND_VM, vm_ref, NULL, error);
    guint8 raw[24];
    char hex[sizeof(raw) * 2 + 1];
    g_autofree char *ticket = NULL;
    DvVmConsoleTicket *t;
    JsonObject *out;
    gint64 now = g_get_monotonic_time();

    if (vm == NULL)
        return NULL;
    if (token == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED,
                    "a console ticket is issued to a signed-in caller (a bearer token)");
        return NULL;
    }
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
    ticket = g_strconcat("dvct_", hex, NULL);
    t = g_new0(DvVmConsoleTicket, 1);
    t->vm_id = g_strdup(dv_json_get_string(vm, "id", ""));
    t->token = g_strdup(token);
    t->expires = now + dv_vm_console_ticket_ttl() * G_USEC_PER_SEC;

    g_mutex_lock(&dv_vm_console_ticket_lock);
    if (dv_vm_console_tickets == NULL)
        dv_vm_console_tickets = g_hash_table_new_full(
            g_str_hash, g_str_equal, (GDestroyNotify)dv_secret_str_free,
            (GDestroyNotify)dv_vm_console_ticket_free);
    /* Expired tickets go at every issue: the table stays small. */
    {
        GHashTableIter it;
        gpointer value;
        g_hash_table_iter_init(&it, dv_vm_console_tickets);
        while (g_hash_table_iter_next(&it, NULL, &value))
            if (((DvVmConsoleTicket *)value)->expires <= now)
                g_hash_table_iter_remove(&it);
    }
    if (g_hash_table_size(dv_vm_console_tickets) >= DV_VM_CONSOLE_MAX_TICKETS) {
        g_mutex_unlock(&dv_vm_console_ticket_lock);
        dv_vm_console_ticket_free(t);
        dv_set_field_error(error, DV_ERROR_BUSY, NULL,
                           "%d console tickets are outstanding; try again in %d s",
                           DV_VM_CONSOLE_MAX_TICKETS, DV_VM_CONSOLE_TICKET_TTL);
        return NULL;
    }
    g_hash_table_insert(dv_vm_console_tickets, g_strdup(ticket), t);
    g_mutex_unlock(&dv_vm_console_ticket_lock);

    out = json_object_new();
    json_object_set_string_member(out, "ticket", ticket);
    json_object_set_string_member(out, "vm_id", dv_json_get_string(vm, "id", ""));
    json_object_set_int_member(out, "expires_in", dv_vm_console_ticket_ttl());
    return out;
}

char *
dv_engine_vm_console_redeem(DvEngine *engine, const char *ticket, const char *vm_ref,
                            GError **error)
{
    g_autoptr(JsonObject) vm = dv_core_resolve(engine, DV_KIND_VM, vm_ref, NULL, NULL);
    DvVmConsoleTicket *t = NULL;
    gpointer key = NULL;
    char *token;

    g_mutex_lock(&dv_vm_console_ticket_lock);
    /* Single use: taken out of the table whatever follows. */
    if (dv_vm_console_tickets != NULL &&
        g_hash_table_steal_extended(dv_vm_console_tickets, ticket, &key, (gpointer *)&t))
        dv_secret_str_free(key);
    g_mutex_unlock(&dv_vm_console_ticket_lock);

    if (t == NULL) {
        dv_set_field_error(error, DV_ERROR_AUTH_REQUIRED, "ticket",
                           "ticket: unknown or already used (a console ticket opens one "
                           "connection)");
        return NULL;
    }
    if (t->expires <= g_get_monotonic_time()) {
        dv_vm_console_ticket_free(t);
        dv_set_field_error(error, DV_ERROR_AUTH_REQUIRED, "ticket",
                           "ticket: expired (a console ticket is good for %d s)",
                           (int)dv_vm_console_ticket_ttl());
        return NULL;
    }
    if (vm == NULL || g_strcmp0(dv_json_get_string(vm, "id", ""), t->vm_id) != 0) {
        dv_vm_console_ticket_free(t);
        dv_set_field_error(error, DV_ERROR_PERMISSION_DENIED, "ticket",
                           "ticket: issued for another VM");
        return NULL;
    }
    token = g_steal_pointer(&t->token);
    dv_vm_console_ticket_free(t);
    return token;
}

/* --- the request's inputs ------------------------------------------------------ */

const DvFieldSpec dv_vm_console_query[] = {
    { "type", DV_FIELD_STRING, FALSE },
    { "mode", DV_FIELD_STRING, FALSE },
    { "ticket", DV_FIELD_STRING, FALSE },
    { NULL },
};

JsonObject *
dv_engine_vm_console_check(DvEngine *engine, const char *vm_ref, GHashTable *query,
                           GError **error)
{
    g_autoptr(JsonObject) vm = dv_core_resolve(engine, DV_KIND_VM, vm_ref, NULL, error);
    const char *type = query != NULL ? g_hash_table_lookup(query, "type") : NULL;
    const char *mode = query != NULL ? g_hash_table_lookup(query, "mode") : NULL;
    JsonObject *out;

    if (vm == NULL)
        return NULL;
    if (query != NULL) {
        GHashTableIter it;
        gpointer k;
        g_hash_table_iter_init(&it, query);
        while (g_hash_table_iter_next(&it, &k, NULL)) {
            gboolean known = FALSE;
            for (guint i = 0; dv_vm_console_query[i].name != NULL; i++)
                known = known || g_strcmp0(k, dv_vm_console_query[i].name) == 0;
            if (!known) {
                g_autofree char *f = dv_text_excerpt(k, 64);
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f,
                                   "%s: unknown parameter (the console takes type, mode, ticket)",
                                   f);
                return NULL;
            }
        }
    }
    if (type != NULL && g_strcmp0(type, "serial") != 0 && g_strcmp0(type, "vnc") != 0) {
        if (g_strcmp0(type, "spice") == 0)
            dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "type",
                               "type: SPICE displays are not bridged yet; type=vnc and "
                               "type=serial are");
        else
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "type",
                               "type: must be serial (the default) or vnc");
        return NULL;
    }
    if (g_strcmp0(type, "vnc") == 0 && mode != NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "mode",
                           "mode: applies to type=serial only (a VNC display takes every "
                           "viewer's input)");
        return NULL;
    }
    if (mode != NULL && g_strcmp0(mode, "write") != 0 && g_strcmp0(mode, "read") != 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "mode",
                           "mode: must be write (the default: the one viewer that types) or "
                           "read (watch only)");
        return NULL;
    }
    if (g_strcmp0(dv_json_get_string(vm, "state", ""), "running") != 0) {
        g_autofree char *safe = dv_text_excerpt(dv_json_get_string(vm, "name", ""), 80);
        g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT,
                    "VM %s is %s: its console opens while it runs", safe,
                    dv_json_get_string(vm, "state", "unknown"));
        return NULL;
    }
    out = json_object_new();
    json_object_set_string_member(out, "id", dv_json_get_string(vm, "id", ""));
    json_object_set_string_member(out, "name", dv_json_get_string(vm, "name", ""));
    json_object_set_string_member(out, "mode", mode != NULL ? mode : "write");
    json_object_set_string_member(out, "type", type != NULL ? type : "serial");
    return out;
}

/* --- graphical displays ----------------------------------------------------------- */

/* DV_VIRT_GRAPHICS_PASSWORD_SECONDS; tests (DV_DEBUG_JOBS=1) may set
 * DV_DEBUG_CONSOLE_PASSWORD_SECONDS=0 for a password that has expired
 * before droverd connects. */
static guint
dv_vm_console_password_seconds(void)
{
    const char *v = g_getenv("DV_DEBUG_CONSOLE_PASSWORD_SECONDS");

    if (v != NULL && dv_core_debug_enabled())
        return (guint)MIN(g_ascii_strtoull(v, NULL, 10), 60);
    return DV_VIRT_GRAPHICS_PASSWORD_SECONDS;
}

int
dv_engine_vm_console_open_display(DvEngine *engine, const char *vm_id, const char *type,
                                  gboolean *ret_authenticated, GError **error)
{
    g_autoptr(JsonObject) vm = dv_core_resolve(engine, DV_KIND_VM, vm_id, NULL, error);
    g_autoptr(DvVirtHost) vh = NULL;
    int fd;

    if (vm == NULL)
        return -1;
    vh = dv_core_virt_host_by_id(engine, dv_json_get_string(vm, "host_id", ""), error);
    if (vh == NULL)
        return -1;
    fd = dv_virt_domain_open_graphics(vh, dv_json_get_string(vm, "uuid", ""), type,
                                      dv_vm_console_password_seconds(), ret_authenticated, NULL,
                                      error);
    if (fd < 0) {
        g_autofree char *safe = dv_text_excerpt(dv_json_get_string(vm, "name", ""), 80);
        g_prefix_error(error, "VM %s: ", safe);
    }
    return fd;
}

/* --- the shared stream --------------------------------------------------------- */

/* libvirt's event loop thread. */
static void
dv_vm_console_hub_output(const guint8 *data, gsize len, const char *ended, gpointer user_data)
{
    DvVmConsoleHub *hub = user_data;
    g_autoptr(GBytes) bytes = data != NULL ? g_bytes_new(data, len) : NULL;

    g_mutex_lock(&dv_vm_console_lock);
    if (data != NULL) {
        g_byte_array_append(hub->backlog, data, (guint)len);
        if (hub->backlog->len > DV_VM_CONSOLE_BACKLOG)
            g_byte_array_remove_range(hub->backlog, 0,
                                      hub->backlog->len - DV_VM_CONSOLE_BACKLOG);
    } else {
        hub->ended = TRUE;
        /* The next viewer opens a fresh stream. */
        if (hub->in_table) {
            g_hash_table_steal(dv_vm_console_hubs, hub->key);
            hub->in_table = FALSE;
        }
    }
    for (guint i = 0; i < hub->viewers->len; i++) {
        DvVmConsoleViewer *v = g_ptr_array_index(hub->viewers, i);
        v->func(bytes, ended, v->user_data);
    }
    g_mutex_unlock(&dv_vm_console_lock);
}

static void
dv_vm_console_hub_free(DvVmConsoleHub *hub)
{
    g_clear_pointer(&hub->stream, dv_virt_console_free);
    g_ptr_array_unref(hub->viewers);
    g_byte_array_unref(hub->backlog);
    g_free(hub->key);
    g_free(hub->vm_name);
    g_free(hub->writer_name);
    g_free(hub);
}

/* Under the lock: joins @v to @hub, or refuses a second writer. */
static gboolean
dv_vm_console_join_locked(DvVmConsoleHub *hub, DvVmConsoleViewer *v, const DvActor *actor,
                          GError **error)
{
    if (v->writer && hub->writer != NULL) {
        g_autofree char *safe = dv_text_excerpt(hub->vm_name, 80);
        dv_set_field_error(error, DV_ERROR_CONFLICT, "mode",
                           "mode: the serial console of VM %s already has a writer (%s); one "
                           "viewer types at a time, connect with mode=read to watch",
                           safe, hub->writer_name != NULL ? hub->writer_name : "another viewer");
        return FALSE;
    }
    v->hub = hub;
    g_ptr_array_add(hub->viewers, v);
    if (v->writer) {
        hub->writer = v;
        g_free(hub->writer_name);
        hub->writer_name = g_strdup(dv_actor_get_name(actor));
    }
    /* What the console showed lately, so a late viewer sees a prompt. */
    if (hub->backlog->len > 0) {
        g_autoptr(GBytes) b = g_bytes_new(hub->backlog->data, hub->backlog->len);
        v->func(b, NULL, v->user_data);
    }
    return TRUE;
}

DvVmConsoleViewer *
dv_engine_vm_console_attach(DvEngine *engine, const char *vm_id, gboolean writer,
                            const DvActor *actor, DvVmConsoleOutput func, gpointer user_data,
                            GDestroyNotify notify, GError **error)
{
    g_autofree char *key = g_strdup_printf("%p/%s", (void *)engine, vm_id);
    g_autoptr(JsonObject) vm = NULL;
    g_autoptr(DvVirtHost) vh = NULL;
    DvVmConsoleViewer *v = g_new0(DvVmConsoleViewer, 1);
    DvVmConsoleHub *hub;
    DvVmConsoleHub *fresh;
    gboolean ok;

    v->writer = writer;
    v->func = func;
    v->user_data = user_data;
    v->notify = notify;

    g_mutex_lock(&dv_vm_console_lock);
    if (dv_vm_console_hubs == NULL)
        dv_vm_console_hubs = g_hash_table_new(g_str_hash, g_str_equal);
    hub = g_hash_table_lookup(dv_vm_console_hubs, key);
    if (hub != NULL) {
        ok = dv_vm_console_join_locked(hub, v, actor, error);
        g_mutex_unlock(&dv_vm_console_lock);
        if (!ok) {
            g_free(v);
            return NULL;
        }
        return v;
    }
    g_mutex_unlock(&dv_vm_console_lock);

    /* None yet: open one outside the lock (a libvirt round trip). */
    vm = dv_core_resolve(engine, DV_KIND_VM, vm_id, NULL, error);
    if (vm != NULL)
        vh = dv_core_virt_host_by_id(engine, dv_json_get_string(vm, "host_id", ""), error);
    if (vh == NULL) {
        g_free(v);
        return NULL;
    }
    fresh = g_new0(DvVmConsoleHub, 1);
    fresh->key = g_strdup(key);
    fresh->vm_name = g_strdup(dv_json_get_string(vm, "name", ""));
    fresh->viewers = g_ptr_array_new();
    fresh->backlog = g_byte_array_new();
    fresh->stream = dv_virt_console_open(vh, dv_json_get_string(vm, "uuid", ""),
                                         dv_vm_console_hub_output, fresh, error);
    if (fresh->stream == NULL) {
        g_autofree char *safe = dv_text_excerpt(fresh->vm_name, 80);
        g_prefix_error(error, "VM %s: ", safe);
        dv_vm_console_hub_free(fresh);
        g_free(v);
        return NULL;
    }
    g_mutex_lock(&dv_vm_console_lock);
    hub = g_hash_table_lookup(dv_vm_console_hubs, key);
    if (hub == NULL) {
        hub = fresh;
        fresh = NULL;
        g_hash_table_insert(dv_vm_console_hubs, hub->key, hub);
        hub->in_table = TRUE;
    }
    ok = dv_vm_console_join_locked(hub, v, actor, error);
    g_mutex_unlock(&dv_vm_console_lock);
    /* Another request opened one meanwhile: ours goes. */
    if (fresh != NULL)
        dv_vm_console_hub_free(fresh);
    if (!ok) {
        g_free(v);
        /* A hub of ours with no viewer: dropped at once. */
        return NULL;
    }
    return v;
}

gboolean
dv_vm_console_viewer_is_writer(DvVmConsoleViewer *v)
{
    return v->writer;
}

gboolean
dv_vm_console_viewer_write(DvVmConsoleViewer *v, const guint8 *data, gsize len, GError **error)
{
    if (!v->writer) {
        dv_set_field_error(error, DV_ERROR_PERMISSION_DENIED, "mode",
                           "mode: this viewer watches (mode=read); its input is not sent");
        return FALSE;
    }
    return dv_virt_console_write(v->hub->stream, data, len, error);
}

void
dv_vm_console_viewer_free(DvVmConsoleViewer *v)
{
    DvVmConsoleHub *hub;
    DvVmConsoleHub *drop = NULL;

    if (v == NULL)
        return;
    hub = v->hub;
    g_mutex_lock(&dv_vm_console_lock);
    g_ptr_array_remove(hub->viewers, v);
    if (hub->writer == v)
        hub->writer = NULL;
    if (hub->viewers->len == 0) {
        if (hub->in_table)
            g_hash_table_remove(dv_vm_console_hubs, hub->key);
        drop = hub;
    }
    g_mutex_unlock(&dv_vm_console_lock);
    /* Outside the lock: freeing the stream waits for its callback. */
    if (drop != NULL)
        dv_vm_console_hub_free(drop);
    if (v->notify != NULL)
        v->notify(v->user_data);
    g_free(v);
}
