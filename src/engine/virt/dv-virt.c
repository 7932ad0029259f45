#define G_LOG_DOMAIN "DvVirt"

#include "dv-virt-private.h"

#include "dv-metrics.h"
#include "dv-secret.h"
#include "dv-validate.h"

#include <libxml/parser.h>
#include <signal.h>
#include <string.h>

/* ---- process-wide libvirt setup --------------------------------------- */

struct _DvVirt {
    gint refcount;      /* the owner plus one per live host */
    GMutex lock;        /* protects hosts and the URI policy */
    GHashTable *hosts;  /* host_id -> DvVirtHost* (weak) */
    gboolean allow_simulated;
    char **allow_parameters; /* NULL-terminated, never NULL */
};

/* Connections of one host being opened at once (ssh's MaxStartups is 10). */
#define DV_VIRT_MAX_OPENING 4

struct _DvVirtConn {
    virConnectPtr conn; /* the pool's reference */
    guint users;        /* operations using it now */
    gboolean dead;      /* removed from the pool, freed by its last user */
    GHashTable *pools;  /* pool name -> virStoragePoolPtr on @conn (host lock), or NULL */
};

static void dv_virt_conn_entry_close(DvVirtConn *entry);

struct _DvVirtHost {
    gint refcount;
    DvVirt *virt;       /* strong */
    char *id;
    char *uri;
    gboolean test_file; /* test:///<file>: one connection forever */
    gboolean in_process; /* test:///...: no RPC, so calls may share a connection */

    GMutex lock;        /* protects everything below; never held across libvirt calls */
    GCond cond;         /* a slot or a connection became free */
    guint max_connections;
    guint max_operations;
    guint busy_timeout_ms;
    guint in_flight;
    guint peak_in_flight;
    guint peak_conn_users; /* most operations seen on one connection at once */
    guint opening;      /* connections being opened (count towards the limit) */
    guint64 busy_rejections;
    GPtrArray *conns;   /* DvVirtConn*, live ones only */
    char *username;
    DvSecret *password;
    char *name; /* metrics label; NULL: the id */
};

static DvMetric dv_metric_call_duration = DV_METRIC_HISTOGRAM(
    "drover_libvirt_call_duration_seconds",
    "Duration of libvirt operations (one or more round trips holding one slot), by host.",
    dv_metrics_buckets_fast, "host");
static DvMetric dv_metric_call_errors = DV_METRIC_COUNTER(
    "drover_libvirt_call_errors_total", "libvirt operations that failed, by host.", "host");

static void dv_virt_host_count_error(DvVirtHost *host);

static void
dv_virt_error_func_noop(void *user_data, virErrorPtr err)
{
    /* libvirt would print every error to stderr; Drover reports them
     * through GError instead. */
}

static gpointer
dv_virt_event_thread(gpointer user_data)
{
    /* Runs for the life of the process: libvirt cannot unregister its
     * event implementation, and keepalive needs the loop to run. */
    for (;;) {
        if (virEventRunDefaultImpl() < 0)
            g_usleep(G_USEC_PER_SEC / 10);
    }
    return NULL;
}

static gpointer
dv_virt_init_once(gpointer user_data)
{
    /* libvirt's RPC client writes its sockets with write(): a daemon that
     * goes away mid-call (a host killed, a keepalive write to a closed
     * socket) would raise SIGPIPE and kill the whole process.  libvirt asks
     * its users to ignore it; the write then fails with EPIPE, which
     * becomes DV_ERROR_UNAVAILABLE for that host only. */
    signal(SIGPIPE, SIG_IGN);
    virSetErrorFunc(NULL, dv_virt_error_func_noop);
    if (virInitialize() < 0)
        g_warning("libvirt failed to initialise");
    if (virEventRegisterDefaultImpl() < 0)
        g_warning("cannot register libvirt's event loop; keepalive is off");
    else
        g_thread_unref(g_thread_new("dv-virt-events", dv_virt_event_thread, NULL));
    xmlInitParser();
    return NULL;
}

static void
dv_virt_init(void)
{
    static GOnce once = G_ONCE_INIT;

    g_once(&once, dv_virt_init_once, NULL);
}

DvVirt *
dv_virt_new(void)
{
    DvVirt *virt;

    dv_virt_init();
    dv_secret_init_library();
    virt = g_new0(DvVirt, 1);
    virt->refcount = 1;
    g_mutex_init(&virt->lock);
    virt->hosts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    virt->allow_parameters = g_new0(char *, 1);
    return virt;
}

static void
dv_virt_unref(DvVirt *virt)
{
    if (!g_atomic_int_dec_and_test(&virt->refcount))
        return;
    g_hash_table_unref(virt->hosts);
    g_strfreev(virt->allow_parameters);
    g_mutex_clear(&virt->lock);
    g_free(virt);
}

void
dv_virt_free(DvVirt *virt)
{
    if (virt == NULL)
        return;
    /* Hosts still held elsewhere keep the shared state alive; drop them
     * from the cache so a later dv_virt_new() starts clean. */
    g_mutex_lock(&virt->lock);
    g_hash_table_remove_all(virt->hosts);
    g_mutex_unlock(&virt->lock);
    dv_virt_unref(virt);
}

void
dv_virt_set_uri_policy(DvVirt *virt, gboolean allow_simulated, const char *const *allow_parameters)
{
    g_return_if_fail(virt != NULL);
    g_mutex_lock(&virt->lock);
    virt->allow_simulated = allow_simulated;
    g_strfreev(virt->allow_parameters);
    virt->allow_parameters = allow_parameters != NULL ? g_strdupv((char **)allow_parameters)
                                                      : g_new0(char *, 1);
    g_mutex_unlock(&virt->lock);
}

gboolean
dv_virt_check_uri(DvVirt *virt, const char *uri, GError **error)
{
    DvUriPolicy policy = { 0 };
    g_auto(GStrv) params = NULL;

    g_mutex_lock(&virt->lock);
    policy.allow_simulated = virt->allow_simulated;
    params = g_strdupv(virt->allow_parameters);
    g_mutex_unlock(&virt->lock);
    policy.allow_parameters = (const char *const *)params;
    return dv_validate_host_uri("uri", uri, &policy, error);
}

/* ---- list frees ---------------------------------------------------------- */

#define DV_VIRT_LIST_FREE(fn, type, freefn) \
    void fn(type *list)                     \
    {                                       \
        if (list == NULL)                   \
            return;                         \
        for (type *p = list; *p != NULL; p++) \
            freefn(*p);                     \
        free(list);                         \
    }

DV_VIRT_LIST_FREE(dv_virt_domain_list_free, virDomainPtr, virDomainFree)
DV_VIRT_LIST_FREE(dv_virt_pool_list_free, virStoragePoolPtr, virStoragePoolFree)
DV_VIRT_LIST_FREE(dv_virt_vol_list_free, virStorageVolPtr, virStorageVolFree)
DV_VIRT_LIST_FREE(dv_virt_net_list_free, virNetworkPtr, virNetworkFree)
DV_VIRT_LIST_FREE(dv_virt_snap_list_free, virDomainSnapshotPtr, virDomainSnapshotFree)

/* ---- errors ---------------------------------------------------------- */

DvErrorCode
dv_virt_error_code_from_virt(const virError *err, gboolean at_connect)
{
    if (err == NULL)
        return DV_ERROR_HOST_FAILED;
    switch (err->code) {
    case VIR_ERR_NO_DOMAIN:
    case VIR_ERR_NO_STORAGE_POOL:
    case VIR_ERR_NO_STORAGE_VOL:
    case VIR_ERR_NO_NETWORK:
    case VIR_ERR_NO_DOMAIN_SNAPSHOT:
    case VIR_ERR_NO_SECRET:
    case VIR_ERR_NO_NODE_DEVICE:
        return DV_ERROR_NOT_FOUND;
    case VIR_ERR_OPERATION_DENIED:
    case VIR_ERR_AUTH_FAILED:
    case VIR_ERR_AUTH_CANCELLED:
    case VIR_ERR_AUTH_UNAVAILABLE:
    case VIR_ERR_ACCESS_DENIED:
        return DV_ERROR_PERMISSION_DENIED;
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_RPC:
        return DV_ERROR_UNAVAILABLE;
    case VIR_ERR_OPERATION_INVALID:
    case VIR_ERR_DOM_EXIST:
    case VIR_ERR_STORAGE_VOL_EXIST:
    case VIR_ERR_NETWORK_EXIST:
    case VIR_ERR_STORAGE_POOL_BUILT:
        return DV_ERROR_CONFLICT;
    case VIR_ERR_OPERATION_TIMEOUT:
    case VIR_ERR_AGENT_UNRESPONSIVE:
        return DV_ERROR_TIMEOUT;
    case VIR_ERR_NO_SUPPORT:
    case VIR_ERR_ARGUMENT_UNSUPPORTED:
    case VIR_ERR_CONFIG_UNSUPPORTED:
        return DV_ERROR_NOT_SUPPORTED;
    default:
        break;
    }
    /* A transport that failed while connecting (socket refused, ssh gone,
     * TLS handshake) means the host cannot be reached. */
    if (at_connect && (err->domain == VIR_FROM_RPC || err->code == VIR_ERR_SYSTEM_ERROR ||
                       err->domain == VIR_FROM_REMOTE))
        return DV_ERROR_UNAVAILABLE;
    if (err->domain == VIR_FROM_RPC)
        return DV_ERROR_UNAVAILABLE;
    return DV_ERROR_HOST_FAILED;
}

void
dv_virt_set_error_from_virt(GError **error, const virError *err, const char *uri,
                            gboolean at_connect, const char *context)
{
    DvErrorCode code = dv_virt_error_code_from_virt(err, at_connect);
    const char *msg = (err != NULL && err->message != NULL) ? err->message : "unknown libvirt error";

    if (code == DV_ERROR_UNAVAILABLE)
        g_set_error(error, DV_ERROR, code, "cannot reach host %s: %s", uri, msg);
    else if (context != NULL)
        g_set_error(error, DV_ERROR, code, "%s: %s", context, msg);
    else
        g_set_error_literal(error, DV_ERROR, code, msg);
}

/* ---- hosts ------------------------------------------------------------ */

gboolean
dv_virt_host_is_test_file_uri(const char *uri)
{
    /* test:///default is one shared instance per process; any other
     * test:/// path is a private instance per open, and so is each
     * connection to a test host served by libvirtd (test+unix:///path). */
    const char *path;
    if (!g_str_has_prefix(uri, "test:///") && !g_str_has_prefix(uri, "test+unix:///"))
        return FALSE;
    path = strstr(uri, ":///") + 3;
    return g_strcmp0(path, "/default") != 0;
}

void
dv_virt_host_set_name(DvVirtHost *host, const char *name)
{
    g_mutex_lock(&host->lock);
    if (g_strcmp0(host->name, name) != 0) {
        g_free(host->name);
        host->name = g_strdup(name);
    }
    g_mutex_unlock(&host->lock);
}

/* Under host->lock: the host's metrics label (owned). */
static char *
dv_virt_host_label_locked(DvVirtHost *host)
{
    return g_strdup(host->name != NULL ? host->name : host->id);
}

DvVirtHost *
dv_virt_host_get(DvVirt *virt, const char *host_id, const char *uri)
{
    DvVirtHost *host;

    g_return_val_if_fail(virt != NULL, NULL);
    g_return_val_if_fail(host_id != NULL, NULL);
    g_return_val_if_fail(uri != NULL, NULL);

    g_mutex_lock(&virt->lock);
    host = g_hash_table_lookup(virt->hosts, host_id);
    if (host != NULL && g_strcmp0(host->uri, uri) == 0) {
        g_atomic_int_inc(&host->refcount);
        g_mutex_unlock(&virt->lock);
        return host;
    }
    host = g_new0(DvVirtHost, 1);
    host->refcount = 1;
    host->virt = virt;
    g_atomic_int_inc(&virt->refcount);
    host->id = g_strdup(host_id);
    host->uri = g_strdup(uri);
    host->test_file = dv_virt_host_is_test_file_uri(uri);
    host->in_process = g_str_has_prefix(uri, "test:///");
    g_mutex_init(&host->lock);
    g_cond_init(&host->cond);
    host->max_connections = host->test_file ? 1 : DV_VIRT_DEFAULT_MAX_CONNECTIONS;
    host->max_operations = DV_VIRT_DEFAULT_MAX_OPERATIONS;
    host->busy_timeout_ms = DV_VIRT_DEFAULT_BUSY_TIMEOUT_MS;
    host->conns = g_ptr_array_new();
    g_hash_table_replace(virt->hosts, g_strdup(host_id), host);
    g_mutex_unlock(&virt->lock);
    return host;
}

DvVirtHost *
dv_virt_host_ref(DvVirtHost *host)
{
    g_return_val_if_fail(host != NULL, NULL);
    g_atomic_int_inc(&host->refcount);
    return host;
}

void
dv_virt_host_unref(DvVirtHost *host)
{
    DvVirt *virt;

    if (host == NULL)
        return;
    virt = host->virt;
    /* Under the cache lock so dv_virt_host_get() never revives a host
     * that is being freed. */
    g_mutex_lock(&virt->lock);
    if (!g_atomic_int_dec_and_test(&host->refcount)) {
        g_mutex_unlock(&virt->lock);
        return;
    }
    if (g_hash_table_lookup(virt->hosts, host->id) == host)
        g_hash_table_remove(virt->hosts, host->id);
    g_mutex_unlock(&virt->lock);

    /* No operation can be running: each holds a reference. */
    for (guint i = 0; i < host->conns->len; i++)
        dv_virt_conn_entry_close(g_ptr_array_index(host->conns, i));
    g_ptr_array_unref(host->conns);
    g_clear_pointer(&host->password, dv_secret_free);
    g_free(host->username);
    g_free(host->id);
    g_free(host->uri);
    g_free(host->name);
    g_mutex_clear(&host->lock);
    g_cond_clear(&host->cond);
    g_free(host);
    dv_virt_unref(virt);
}

const char *
dv_virt_host_get_id(DvVirtHost *host)
{
    return host->id;
}

DvVirt *
dv_virt_host_get_virt(DvVirtHost *host)
{
    return host->virt;
}

const char *
dv_virt_host_get_uri(DvVirtHost *host)
{
    return host->uri;
}

void
dv_virt_host_set_limits(DvVirtHost *host, guint max_connections, guint max_concurrent_operations)
{
    g_return_if_fail(host != NULL);
    g_mutex_lock(&host->lock);
    if (max_connections == 0)
        max_connections = DV_VIRT_DEFAULT_MAX_CONNECTIONS;
    if (max_concurrent_operations == 0)
        max_concurrent_operations = DV_VIRT_DEFAULT_MAX_OPERATIONS;
    host->max_connections = host->test_file ? 1 : max_connections;
    host->max_operations = max_concurrent_operations;
    g_cond_broadcast(&host->cond);
    g_mutex_unlock(&host->lock);
}

void
dv_virt_host_set_busy_timeout(DvVirtHost *host, guint timeout_ms)
{
    g_return_if_fail(host != NULL);
    g_mutex_lock(&host->lock);
    host->busy_timeout_ms = timeout_ms;
    g_mutex_unlock(&host->lock);
}

void
dv_virt_host_set_credentials(DvVirtHost *host, const char *username, const char *password)
{
    g_return_if_fail(host != NULL);
    g_mutex_lock(&host->lock);
    g_free(host->username);
    host->username = g_strdup(username);
    g_clear_pointer(&host->password, dv_secret_free);
    if (password != NULL)
        host->password = dv_secret_new_from_string(password);
    g_mutex_unlock(&host->lock);
}

JsonObject *
dv_virt_host_get_stats(DvVirtHost *host)
{
    JsonObject *obj = json_object_new();

    g_mutex_lock(&host->lock);
    json_object_set_int_member(obj, "open_connections", host->conns->len);
    json_object_set_int_member(obj, "operations_in_flight", host->in_flight);
    json_object_set_int_member(obj, "peak_operations_in_flight", host->peak_in_flight);
    json_object_set_int_member(obj, "peak_operations_per_connection", host->peak_conn_users);
    json_object_set_int_member(obj, "max_connections", host->max_connections);
    json_object_set_int_member(obj, "max_concurrent_operations", host->max_operations);
    json_object_set_int_member(obj, "busy_rejections", (gint64)host->busy_rejections);
    g_mutex_unlock(&host->lock);
    return obj;
}

/* ---- connections ------------------------------------------------------ */

static int
dv_virt_auth_cb(virConnectCredentialPtr cred, unsigned int ncred, void *cbdata)
{
    DvVirtHost *host = cbdata;
    int rc = 0;

    g_mutex_lock(&host->lock);
    for (unsigned int i = 0; i < ncred && rc == 0; i++) {
        const char *value = NULL;

        if (cred[i].type == VIR_CRED_AUTHNAME)
            value = host->username != NULL ? host->username : cred[i].defresult;
        else if (cred[i].type == VIR_CRED_PASSPHRASE && host->password != NULL)
            value = dv_secret_get_string(host->password);
        if (value == NULL) {
            /* Never prompt: a daemon has no terminal. */
            rc = -1;
            break;
        }
        /* libvirt frees the result with free() */
        cred[i].result = strdup(value);
        if (cred[i].result == NULL) {
            rc = -1;
            break;
        }
        cred[i].resultlen = strlen(value);
    }
    g_mutex_unlock(&host->lock);
    return rc;
}

/* A few words for the libvirt error codes a failed open gives; the rest
 * go by number (libvirt's virterror.h). */
static const char *
dv_virt_error_summary(int code)
{
    switch (code) {
    case VIR_ERR_SYSTEM_ERROR:
        return "system call failed";
    case VIR_ERR_NO_CONNECT:
        return "no driver for this URI";
    case VIR_ERR_INTERNAL_ERROR:
        return "internal error";
    case VIR_ERR_OPERATION_FAILED:
        return "operation failed";
    case VIR_ERR_INVALID_ARG:
        return "invalid argument";
    case VIR_ERR_RPC:
        return "RPC failed";
    case VIR_ERR_AUTH_FAILED:
        return "authentication failed";
    case VIR_ERR_AUTH_CANCELLED:
        return "authentication cancelled";
    case VIR_ERR_AUTH_UNAVAILABLE:
        return "no usable authentication method";
    case VIR_ERR_OPERATION_DENIED:
    case VIR_ERR_ACCESS_DENIED:
        return "access denied";
    case VIR_ERR_NO_SUPPORT:
        return "not supported";
    case VIR_ERR_XML_ERROR:
    case VIR_ERR_XML_DETAIL:
        return "the host definition cannot be read";
    case VIR_ERR_OPERATION_TIMEOUT:
        return "timed out";
    case VIR_ERR_CONFIG_UNSUPPORTED:
        return "configuration not supported";
    default:
        return "connection failed";
    }
}

static virConnectPtr
dv_virt_host_open(DvVirtHost *host, GError **error)
{
    int credtypes[] = { VIR_CRED_AUTHNAME, VIR_CRED_PASSPHRASE };
    virConnectAuth auth = { credtypes, G_N_ELEMENTS(credtypes), dv_virt_auth_cb, host };
    virConnectPtr conn;

    /* Defence in depth: the engine checked the URI when the host was
     * added, but a row written by an older Drover (or straight into the
     * database) reaches this point unchecked, and a URI can run programs
     * or read files on this machine (docs/VIRT.md, "Host URIs"). */
    if (!dv_virt_check_uri(host->virt, host->uri, error)) {
        g_prefix_error(error, "cannot connect to host %s: refused by droverd's host URI rules: ",
                       host->id);
        return NULL;
    }
    /* No alias lookup can happen: libvirt looks up only names without
     * ':', and every allowed URI has "://". */
    conn = virConnectOpenAuth(host->uri, &auth, 0);
    if (conn == NULL) {
        virError copy = { 0 };
        DvErrorCode code;

        virCopyLastError(&copy);
        code = dv_virt_error_code_from_virt(copy.code != 0 ? &copy : NULL, TRUE);
        /* libvirt's text may quote the files it read (the test driver
         * quotes the first line of any file it cannot parse): Drover's
         * words and libvirt's numbers only.  The text goes to the debug
         * log, which only the server's administrator reads. */
        g_debug("open %s: libvirt error %d (domain %d): %s", host->uri, copy.code, copy.domain,
                copy.message != NULL ? copy.message : "(none)");
        g_set_error(error, DV_ERROR, code, "cannot %s host %s: libvirt error %d, domain %d (%s)",
                    code == DV_ERROR_UNAVAILABLE ? "reach" : "connect to", host->uri, copy.code,
                    copy.domain, dv_virt_error_summary(copy.code));
        virResetError(&copy);
        return NULL;
    }
    if (!g_str_has_prefix(host->uri, "test:")) {
        /* Remote (and local daemon) connections: detect a dead peer in
         * about 5 x 5 s instead of the TCP timeout. */
        if (virConnectSetKeepAlive(conn, DV_VIRT_KEEPALIVE_INTERVAL, DV_VIRT_KEEPALIVE_COUNT) < 0)
            virResetLastError();
    }
    return conn;
}

virConnectPtr
dv_virt_host_open_conn(DvVirtHost *host, GError **error)
{
    if (host->in_process) {
        /* test:///file is a private host per open, and test:///default is
         * shared anyway: take another reference on the pool's connection. */
        g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
        if (!dv_virt_op_begin(&op, host, NULL, error))
            return NULL;
        virConnectRef(op.conn);
        return op.conn;
    }
    return dv_virt_host_open(host, error);
}

/* Under host->lock.  Removes @entry from the pool; returns the connection
 * the caller must close (after unlocking) or NULL when users remain. */
static DvVirtConn *
dv_virt_host_drop_conn_locked(DvVirtHost *host, DvVirtConn *entry)
{
    if (!entry->dead) {
        entry->dead = TRUE;
        g_ptr_array_remove(host->conns, entry);
    }
    return entry->users == 0 ? entry : NULL;
}

static void
dv_virt_conn_entry_close(DvVirtConn *entry)
{
    if (entry == NULL)
        return;
    g_clear_pointer(&entry->pools, g_hash_table_unref);
    virConnectClose(entry->conn);
    g_free(entry);
}

static void
dv_virt_op_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
    DvVirtHost *host = user_data;

    g_mutex_lock(&host->lock);
    g_cond_broadcast(&host->cond);
    g_mutex_unlock(&host->lock);
}

/* Under host->lock: waits on the cond until @deadline.  FALSE on timeout
 * or cancellation (error set). */
static gboolean
dv_virt_host_wait_locked(DvVirtHost *host, gint64 deadline, GCancellable *cancellable,
                         const char *what, GError **error)
{
    if (g_cancellable_is_cancelled(cancellable)) {
        g_set_error(error, DV_ERROR, DV_ERROR_CANCELLED, "cancelled while waiting for %s on host %s",
                    what, host->id);
        return FALSE;
    }
    if (!g_cond_wait_until(&host->cond, &host->lock, deadline)) {
        host->busy_rejections++;
        g_set_error(error, DV_ERROR, DV_ERROR_BUSY,
                    "host %s is busy: no free %s within %u ms (max_concurrent_operations %u, "
                    "max_connections %u)",
                    host->id, what, host->busy_timeout_ms, host->max_operations,
                    host->max_connections);
        return FALSE;
    }
    return TRUE;
}

static DvVirtConn *
dv_virt_host_pick_conn_locked(DvVirtHost *host)
{
    DvVirtConn *best = NULL;

    for (guint i = 0; i < host->conns->len; i++) {
        DvVirtConn *entry = g_ptr_array_index(host->conns, i);
        if (best == NULL || entry->users < best->users)
            best = entry;
    }
    return best;
}

/* Under host->lock with a slot held; returns with the lock held and a
 * connection entry with one user counted, or NULL with @error set.
 *
 * A connection through libvirt's RPC client carries one call at a time:
 * the 9.0 client (Debian 12) can lose a reply when several threads wait on
 * one connection (docs/VIRT.md, "One call per connection"), so an
 * operation takes an idle connection, opens one when the limit allows, or
 * waits.  Only in-process test:/// connections are shared. */
static DvVirtConn *
dv_virt_host_acquire_conn_locked(DvVirtHost *host, gint64 deadline, GCancellable *cancellable,
                                 GError **error)
{
    for (;;) {
        DvVirtConn *entry = dv_virt_host_pick_conn_locked(host);
        gboolean alive;

        if (entry == NULL || entry->users > 0) {
            if (host->conns->len + host->opening < host->max_connections &&
                host->opening >= DV_VIRT_MAX_OPENING) {
                /* Opens in bursts overwhelm ssh (MaxStartups 10): a few
                 * at a time, the others wait for one to finish. */
                if (!dv_virt_host_wait_locked(host, deadline, cancellable, "connection", error))
                    return NULL;
                continue;
            }
            if (host->conns->len + host->opening < host->max_connections) {
                virConnectPtr conn;

                host->opening++;
                g_mutex_unlock(&host->lock);
                conn = dv_virt_host_open(host, error);
                g_mutex_lock(&host->lock);
                host->opening--;
                g_cond_broadcast(&host->cond);
                if (conn == NULL)
                    return NULL;
                entry = g_new0(DvVirtConn, 1);
                entry->conn = conn;
                entry->users = 1;
                host->peak_conn_users = MAX(host->peak_conn_users, 1);
                g_ptr_array_add(host->conns, entry);
                return entry;
            }
            if (entry == NULL || !host->in_process) {
                /* Every connection is busy (or being opened) and no
                 * other may be opened: wait for one to be released. */
                if (!dv_virt_host_wait_locked(host, deadline, cancellable, "connection", error))
                    return NULL;
                continue;
            }
        }
        entry->users++;
        host->peak_conn_users = MAX(host->peak_conn_users, entry->users);
        if (host->test_file)
            return entry;
        g_mutex_unlock(&host->lock);
        alive = virConnectIsAlive(entry->conn) == 1;
        g_mutex_lock(&host->lock);
        if (alive)
            return entry;
        /* The peer went away (keepalive or a broken socket): reopen. */
        entry->users--;
        if (dv_virt_host_drop_conn_locked(host, entry) != NULL) {
            g_mutex_unlock(&host->lock);
            dv_virt_conn_entry_close(entry);
            g_mutex_lock(&host->lock);
        }
    }
}

virStoragePoolPtr
dv_virt_pool_lookup(DvVirtOp *op, const char *pool, GError **error)
{
    virStoragePoolPtr p;

    if (!dv_validate_name("pool", pool, error))
        return NULL;
    p = virStoragePoolLookupByName(op->conn, pool);
    if (p == NULL)
        return dv_virt_op_fail_null(op, error, "cannot find storage pool %s", pool);
    return p;
}

static void
dv_virt_pool_handle_free(gpointer p)
{
    virStoragePoolFree(p);
}

virStoragePoolPtr
dv_virt_pool_lookup_cached(DvVirtOp *op, const char *pool, GError **error)
{
    virStoragePoolPtr p = NULL;

    if (!dv_validate_name("pool", pool, error))
        return NULL;
    g_mutex_lock(&op->host->lock);
    if (op->entry->pools != NULL)
        p = g_hash_table_lookup(op->entry->pools, pool);
    if (p != NULL)
        virStoragePoolRef(p);
    g_mutex_unlock(&op->host->lock);
    if (p != NULL)
        return p;
    p = dv_virt_pool_lookup(op, pool, error);
    if (p == NULL)
        return NULL;
    g_mutex_lock(&op->host->lock);
    if (op->entry->pools == NULL)
        op->entry->pools =
            g_hash_table_new_full(g_str_hash, g_str_equal, g_free, dv_virt_pool_handle_free);
    /* Bounded: a connection's cache is dropped when it passes the cap. */
    if (g_hash_table_size(op->entry->pools) >= DV_VIRT_POOL_CACHE_MAX)
        g_hash_table_remove_all(op->entry->pools);
    virStoragePoolRef(p);
    g_hash_table_replace(op->entry->pools, g_strdup(pool), p);
    g_mutex_unlock(&op->host->lock);
    return p;
}

gboolean
dv_virt_pool_forget_if_gone(DvVirtOp *op, const char *pool)
{
    if (virGetLastErrorCode() != VIR_ERR_NO_STORAGE_POOL)
        return FALSE;
    virResetLastError();
    g_debug("host %s: the handle of pool %s outlived the pool: looked up again",
            dv_virt_host_get_id(op->host), pool);
    g_mutex_lock(&op->host->lock);
    if (op->entry->pools != NULL)
        g_hash_table_remove(op->entry->pools, pool);
    g_mutex_unlock(&op->host->lock);
    return TRUE;
}

gboolean
dv_virt_host_can_stream(DvVirtHost *host, const char *what, GError **error)
{
    const char *uri = dv_virt_host_get_uri(host);
    if (g_str_has_prefix(uri, "test:") || g_str_has_prefix(uri, "test+")) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED, "host %s: libvirt's test driver cannot %s",
                    dv_virt_host_get_id(host), what);
        return FALSE;
    }
    return TRUE;
}

void
dv_virt_volume_conflict_if_exists(virStoragePoolPtr p, const char *name, GError *err)
{
    if (g_error_matches(err, DV_ERROR, DV_ERROR_HOST_FAILED)) {
        g_autoptr(virStorageVol) existing = virStorageVolLookupByName(p, name);
        if (existing != NULL)
            err->code = DV_ERROR_CONFLICT;
        else
            virResetLastError();
    }
}

virStoragePoolPtr
dv_virt_pool_open(DvVirtOp *op, DvVirtHost *host, const char *pool, GCancellable *cancellable, GError **error)
{
    if (!dv_validate_name("pool", pool, error))
        return NULL;
    if (!dv_virt_op_begin(op, host, cancellable, error))
        return NULL;
    return dv_virt_pool_lookup(op, pool, error);
}

gboolean
dv_virt_op_begin(DvVirtOp *op, DvVirtHost *host, GCancellable *cancellable, GError **error)
{
    gulong handler = 0;
    gint64 deadline;
    gboolean ok = TRUE;
    DvVirtConn *entry = NULL;

    g_return_val_if_fail(op != NULL && op->host == NULL, FALSE);
    g_return_val_if_fail(host != NULL, FALSE);

    if (g_cancellable_set_error_if_cancelled(cancellable, error)) {
        dv_error_convert(error);
        return FALSE;
    }
    if (cancellable != NULL)
        handler = g_cancellable_connect(cancellable, G_CALLBACK(dv_virt_op_cancelled_cb), host,
                                        NULL);

    g_mutex_lock(&host->lock);
    deadline = g_get_monotonic_time() + (gint64)host->busy_timeout_ms * G_TIME_SPAN_MILLISECOND;
    while (host->in_flight >= host->max_operations) {
        if (!dv_virt_host_wait_locked(host, deadline, cancellable, "operation slot", error)) {
            ok = FALSE;
            break;
        }
    }
    if (ok) {
        host->in_flight++;
        host->peak_in_flight = MAX(host->peak_in_flight, host->in_flight);
        entry = dv_virt_host_acquire_conn_locked(host, deadline, cancellable, error);
        if (entry == NULL) {
            host->in_flight--;
            g_cond_broadcast(&host->cond);
            ok = FALSE;
        }
    }
    g_mutex_unlock(&host->lock);
    if (handler != 0)
        g_cancellable_disconnect(cancellable, handler);
    if (!ok) {
        dv_virt_host_count_error(host);
        return FALSE;
    }

    op->host = host;
    op->entry = entry;
    op->conn = entry->conn;
    op->began = g_get_monotonic_time();
    virConnectRef(op->conn);
    return TRUE;
}

void
dv_virt_op_end(DvVirtOp *op)
{
    DvVirtHost *host = op->host;
    DvVirtConn *to_close = NULL;
    g_autofree char *label = NULL;

    if (host == NULL)
        return;
    g_mutex_lock(&host->lock);
    op->entry->users--;
    if (op->entry->dead) {
        if (op->entry->users == 0)
            to_close = op->entry;
    } else if (op->entry->users == 0 && host->conns->len > host->max_connections) {
        /* The limit was lowered: close idle connections over it. */
        to_close = dv_virt_host_drop_conn_locked(host, op->entry);
    }
    host->in_flight--;
    g_cond_broadcast(&host->cond);
    label = dv_metrics_get_enabled() ? dv_virt_host_label_locked(host) : NULL;
    g_mutex_unlock(&host->lock);
    if (label != NULL)
        dv_metric_observe(&dv_metric_call_duration,
                          (double)(g_get_monotonic_time() - op->began) / G_USEC_PER_SEC, label);

    virConnectClose(op->conn);
    dv_virt_conn_entry_close(to_close);
    op->host = NULL;
    op->entry = NULL;
    op->conn = NULL;
}

static void
dv_virt_host_count_error(DvVirtHost *host)
{
    g_autofree char *label = NULL;
    if (host == NULL || !dv_metrics_get_enabled())
        return;
    g_mutex_lock(&host->lock);
    label = dv_virt_host_label_locked(host);
    g_mutex_unlock(&host->lock);
    dv_metric_add(&dv_metric_call_errors, 1, label);
}

static void
dv_virt_op_fail_valist(DvVirtOp *op, GError **error, const char *format, va_list args)
{
    virError copy = { 0 };
    g_autofree char *context = NULL;
    gboolean dead = FALSE;

    /* Copy first: every libvirt API call resets the thread's last error. */
    virCopyLastError(&copy);
    context = g_strdup_vprintf(format, args);

    if (op->host != NULL && !op->host->test_file && virConnectIsAlive(op->conn) != 1)
        dead = TRUE;
    if (dead) {
        g_mutex_lock(&op->host->lock);
        if (!op->entry->dead) {
            op->entry->dead = TRUE;
            g_ptr_array_remove(op->host->conns, op->entry);
        }
        g_mutex_unlock(&op->host->lock);
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot reach host %s: %s: %s",
                    op->host->uri, context,
                    copy.message != NULL ? copy.message : "connection closed");
    } else {
        dv_virt_set_error_from_virt(error, copy.code != 0 ? &copy : NULL,
                                    op->host != NULL ? op->host->uri : "?", FALSE, context);
    }
    virResetError(&copy);
    dv_virt_host_count_error(op->host);
}

gboolean
dv_virt_op_fail(DvVirtOp *op, GError **error, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    dv_virt_op_fail_valist(op, error, format, args);
    va_end(args);
    return FALSE;
}

gpointer
dv_virt_op_fail_null(DvVirtOp *op, GError **error, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    dv_virt_op_fail_valist(op, error, format, args);
    va_end(args);
    return NULL;
}

/* ---- XML helpers ------------------------------------------------------ */

xmlDoc *
dv_virt_xml_parse(const char *xml, GError **error)
{
    xmlDoc *doc;

    doc = xmlReadMemory(xml, (int)strlen(xml), "libvirt.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR |
                            XML_PARSE_NOWARNING);
    if (doc == NULL || xmlDocGetRootElement(doc) == NULL) {
        if (doc != NULL)
            xmlFreeDoc(doc);
        g_set_error_literal(error, DV_ERROR, DV_ERROR_HOST_FAILED,
                            "the host returned XML that cannot be parsed");
        return NULL;
    }
    return doc;
}

xmlNode *
dv_virt_xml_child(xmlNode *node, const char *name)
{
    if (node == NULL)
        return NULL;
    for (xmlNode *c = node->children; c != NULL; c = c->next) {
        if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, BAD_CAST name) == 0)
            return c;
    }
    return NULL;
}

char *
dv_virt_xml_child_text(xmlNode *node, const char *name)
{
    xmlNode *c = dv_virt_xml_child(node, name);
    xmlChar *txt;
    char *ret;

    if (c == NULL)
        return NULL;
    txt = xmlNodeGetContent(c);
    ret = g_strdup((const char *)txt);
    xmlFree(txt);
    return ret;
}

char *
dv_virt_xml_prop(xmlNode *node, const char *name)
{
    xmlChar *v;
    char *ret;

    if (node == NULL)
        return NULL;
    v = xmlGetProp(node, BAD_CAST name);
    ret = g_strdup((const char *)v);
    xmlFree(v);
    return ret;
}

char *
dv_virt_random_suffix(void)
{
    return g_strdup_printf("%08x%04x", g_random_int(), g_random_int() & 0xffff);
}
