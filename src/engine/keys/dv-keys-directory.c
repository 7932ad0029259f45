#define G_LOG_DOMAIN "DvKeysDirectory"

/* The directory key protector (see dv-keys-directory.h and
 * docs/DIRECTORY.md).  The only file that includes <ldap.h>: LDAP result
 * codes are turned into DV_ERROR here. */

#include "dv-keys-directory.h"

#include "dv-error.h"
#include "dv-keys.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <ldap.h>
#include <openldap.h>
#include <sodium.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define DV_DIRECTORY_KEY_PREFIX "drover-key-v1:"
#define DV_DIRECTORY_CURRENT_PREFIX "drover-current-v1:"
#define DV_DIRECTORY_PROBE_PREFIX "drover-probe-v1:"
#define DV_DIRECTORY_KDF_CONTEXT "drover/directory-kek/v1"
#define DV_DIRECTORY_AAD_CONTEXT "drover/directory-key/v1"
#define DV_DIRECTORY_PASSWORD_MAX 4096
#define DV_DIRECTORY_LIST_MAX 10000
#define DV_DIRECTORY_INSTALLATION_ID_MAX 1024
#define DV_DIRECTORY_DN_MAX 1024

G_DEFINE_AUTOPTR_CLEANUP_FUNC(LDAPMessage, ldap_msgfree)

static void
dv_ldap_unbind(LDAP *ld)
{
    if (ld != NULL)
        ldap_unbind_ext_s(ld, NULL, NULL);
}

typedef LDAP DvLdap;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvLdap, dv_ldap_unbind)

static void
dv_ldap_values_free(struct berval **values)
{
    if (values != NULL)
        ldap_value_free_len(values);
}

typedef struct berval **DvBervals;
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(DvBervals, dv_ldap_values_free, NULL)

static void
dv_ldap_memfree(char *str)
{
    if (str != NULL)
        ldap_memfree(str);
}

typedef char DvLdapStr;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvLdapStr, dv_ldap_memfree)

/* --- connection settings --------------------------------------------------- */

typedef enum {
    DV_SCHEME_LDAP,
    DV_SCHEME_LDAPS,
    DV_SCHEME_LDAPI,
} DvScheme;

/* An owned copy of a DvDirectoryConn. */
typedef struct {
    char *uri;
    DvScheme scheme;
    char *bind_dn;
    char *password_file;
    DvSecret *password;
    gboolean sasl_external;
    char *ca_file;
    char *cert_file;
    char *key_file;
    guint network_timeout_s;
    guint op_timeout_s;
} DvConn;

static void
dv_conn_clear(DvConn *conn)
{
    g_clear_pointer(&conn->uri, g_free);
    g_clear_pointer(&conn->bind_dn, g_free);
    g_clear_pointer(&conn->password_file, g_free);
    g_clear_pointer(&conn->password, dv_secret_free);
    g_clear_pointer(&conn->ca_file, g_free);
    g_clear_pointer(&conn->cert_file, g_free);
    g_clear_pointer(&conn->key_file, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(DvConn, dv_conn_clear)

static gboolean
dv_conn_anonymous(const DvConn *conn)
{
    return !conn->sasl_external && conn->bind_dn == NULL;
}

/* Who a connection binds as, for messages. */
static const char *
dv_conn_who(const DvConn *conn)
{
    if (conn->sasl_external)
        return conn->scheme == DV_SCHEME_LDAPI ? "the ldapi peer identity (SASL EXTERNAL)"
                                               : "the TLS client certificate (SASL EXTERNAL)";
    if (conn->bind_dn == NULL)
        return "anonymous";
    return conn->bind_dn;
}

static gboolean
dv_dn_valid(const char *dn)
{
    LDAPDN parsed = NULL;

    if (dn == NULL || dn[0] == '\0' || strlen(dn) > DV_DIRECTORY_DN_MAX)
        return FALSE;
    if (ldap_str2dn(dn, &parsed, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
        return FALSE;
    ldap_dnfree(parsed);
    return TRUE;
}

/* Copies @in into @out, filling in @defaults (may be NULL) for a NULL uri
 * and ca_file, and checks it. */
static gboolean
dv_conn_copy(const DvDirectoryConn *in, const DvConn *defaults, DvConn *out, GError **error)
{
    g_auto(DvConn) conn = { 0 };
    const char *uri = in->uri != NULL ? in->uri : (defaults != NULL ? defaults->uri : NULL);
    const char *ca_file = in->ca_file != NULL ? in->ca_file : (defaults != NULL ? defaults->ca_file : NULL);

    if (uri == NULL || uri[0] == '\0' || strlen(uri) > 1024 || strpbrk(uri, " \t\r\n,") != NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "uri",
                           "the directory URI must be one ldap://, ldaps:// or ldapi:// URI");
        return FALSE;
    }
    if (g_ascii_strncasecmp(uri, "ldap://", 7) == 0) {
        conn.scheme = DV_SCHEME_LDAP;
    } else if (g_ascii_strncasecmp(uri, "ldaps://", 8) == 0) {
        conn.scheme = DV_SCHEME_LDAPS;
    } else if (g_ascii_strncasecmp(uri, "ldapi://", 8) == 0) {
        conn.scheme = DV_SCHEME_LDAPI;
    } else {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "uri",
                           "the directory URI must start with ldap://, ldaps:// or ldapi://");
        return FALSE;
    }
    if (!ldap_is_ldap_url(uri) && conn.scheme != DV_SCHEME_LDAPI) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "uri", "'%s' is not a valid LDAP URI", uri);
        return FALSE;
    }
    if (in->sasl_external && in->bind_dn != NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "bind_dn",
                           "a bind DN and SASL EXTERNAL exclude each other");
        return FALSE;
    }
    if (in->bind_dn != NULL && !dv_dn_valid(in->bind_dn)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "bind_dn", "the bind DN is not a valid DN");
        return FALSE;
    }
    if (in->bind_dn != NULL && in->password == NULL && in->password_file == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "password",
                           "a simple bind as %s needs a password or a password file", in->bind_dn);
        return FALSE;
    }
    if (in->bind_dn == NULL && (in->password != NULL || in->password_file != NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "bind_dn",
                           "a password was given without a bind DN");
        return FALSE;
    }
    if (in->password != NULL && dv_secret_get_len(in->password) == 0) {
        /* An empty password is an unauthenticated bind (RFC 4513 5.1.2):
         * the server would treat it as anonymous. */
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "password", "the bind password is empty");
        return FALSE;
    }
    if ((in->cert_file == NULL) != (in->key_file == NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "cert_file",
                           "a TLS client certificate needs both a certificate and a key file");
        return FALSE;
    }
    if (in->sasl_external && conn.scheme != DV_SCHEME_LDAPI && in->cert_file == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "cert_file",
                           "SASL EXTERNAL over %s needs a TLS client certificate",
                           conn.scheme == DV_SCHEME_LDAP ? "StartTLS" : "ldaps");
        return FALSE;
    }
    conn.uri = g_strdup(uri);
    conn.bind_dn = g_strdup(in->bind_dn);
    conn.password_file = g_strdup(in->password_file);
    if (in->password != NULL)
        conn.password = dv_secret_new_from_data(dv_secret_get_data(in->password),
                                                dv_secret_get_len(in->password));
    conn.sasl_external = in->sasl_external;
    conn.ca_file = g_strdup(ca_file);
    conn.cert_file = g_strdup(in->cert_file);
    conn.key_file = g_strdup(in->key_file);
    conn.network_timeout_s = in->network_timeout_s > 0 ? in->network_timeout_s : DV_DIRECTORY_NETWORK_TIMEOUT_S;
    conn.op_timeout_s = in->op_timeout_s > 0 ? in->op_timeout_s : DV_DIRECTORY_OP_TIMEOUT_S;
    *out = conn;
    memset(&conn, 0, sizeof(conn));
    return TRUE;
}

/* Reads a bind password file straight into guarded memory. */
static DvSecret *
dv_directory_read_password_file(const char *path, GError **error)
{
    g_autoptr(DvSecret) buf = NULL;
    struct stat st;
    gsize len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0) {
        int saved = errno;
        g_set_error(error, DV_ERROR, saved == ENOENT ? DV_ERROR_NOT_FOUND : DV_ERROR_PERMISSION_DENIED,
                    "cannot open the directory password file %s: %s", path, g_strerror(saved));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                    "the directory password file %s is not a regular file", path);
        return NULL;
    }
    if ((st.st_mode & S_IRWXO) != 0) {
        close(fd);
        g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                    "the directory password file %s may be read by other users (mode %04o): "
                    "refusing to use it; chmod o-rwx it",
                    path, (unsigned)(st.st_mode & 07777));
        return NULL;
    }
    buf = dv_secret_new(DV_DIRECTORY_PASSWORD_MAX + 1);
    while (len < DV_DIRECTORY_PASSWORD_MAX + 1) {
        ssize_t n = read(fd, dv_secret_get_data_mutable(buf) + len, DV_DIRECTORY_PASSWORD_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            close(fd);
            g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot read the directory password file %s: %s",
                        path, g_strerror(saved));
            return NULL;
        }
        if (n == 0)
            break;
        len += (gsize)n;
    }
    close(fd);
    if (len > DV_DIRECTORY_PASSWORD_MAX) {
        g_set_error(error, DV_ERROR, DV_ERROR_TOO_LARGE,
                    "the directory password file %s is over %u bytes", path, DV_DIRECTORY_PASSWORD_MAX);
        return NULL;
    }
    /* One trailing newline (echo pw > file) is not part of the password. */
    if (len > 0 && dv_secret_get_data(buf)[len - 1] == '\n')
        len--;
    if (len > 0 && dv_secret_get_data(buf)[len - 1] == '\r')
        len--;
    if (len == 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT, "the directory password file %s is empty",
                    path);
        return NULL;
    }
    return dv_secret_new_from_data(dv_secret_get_data(buf), len);
}

/* --- errors --------------------------------------------------------------- */

/* The server's diagnostic message for the last operation, or NULL (owned). */
static char *
dv_ldap_dup_diagnostic(LDAP *ld)
{
    char *msg = NULL;
    char *copy = NULL;

    if (ld != NULL && ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &msg) == LDAP_OPT_SUCCESS &&
        msg != NULL) {
        if (msg[0] != '\0')
            copy = g_strstrip(g_strdup(msg));
        ldap_memfree(msg);
    }
    return copy;
}

static gboolean
dv_ldap_rc_unavailable(int rc)
{
    switch (rc) {
    case LDAP_SERVER_DOWN:
    case LDAP_CONNECT_ERROR:
    case LDAP_TIMEOUT:
    case LDAP_TIMELIMIT_EXCEEDED:
    case LDAP_UNAVAILABLE:
    case LDAP_BUSY:
    case LDAP_ADMINLIMIT_EXCEEDED:
    case LDAP_OTHER:
        return TRUE;
    default:
        return FALSE;
    }
}

/* Sets @error for LDAP result @rc of "@what" (e.g. "read cn=k1,ou=keys").
 * @conn says where and as whom. */
static void
dv_ldap_set_error(LDAP *ld, int rc, const DvConn *conn, const char *what, GError **error)
{
    g_autofree char *diag = dv_ldap_dup_diagnostic(ld);
    const char *reason = ldap_err2string(rc);
    g_autofree char *detail = NULL;

    /* libldap repeats the result string, or says "(unknown error code)". */
    if (diag != NULL && g_strcmp0(diag, reason) != 0 && strstr(diag, "unknown error code") == NULL)
        detail = g_strdup_printf("%s (%s)", reason, diag);
    else
        detail = g_strdup(reason);

    if (rc == LDAP_CONNECT_ERROR && conn->scheme != DV_SCHEME_LDAPI) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE,
                    "directory %s cannot be reached: the TLS handshake failed: %s; check that %s "
                    "holds the CA that signed the server certificate and that the certificate "
                    "names the host in the URI",
                    conn->uri, detail, conn->ca_file != NULL ? conn->ca_file : "the system CA bundle");
        return;
    }
    if (dv_ldap_rc_unavailable(rc)) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "directory %s cannot be reached: %s", conn->uri,
                    detail);
        return;
    }
    switch (rc) {
    case LDAP_INVALID_CREDENTIALS:
    case LDAP_INAPPROPRIATE_AUTH:
    case LDAP_AUTH_UNKNOWN:
    case LDAP_STRONG_AUTH_REQUIRED:
    case LDAP_AUTH_METHOD_NOT_SUPPORTED:
    case LDAP_X_PROXY_AUTHZ_FAILURE:
        g_set_error(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED, "directory %s refused to authenticate %s: %s",
                    conn->uri, dv_conn_who(conn), detail);
        return;
    case LDAP_INSUFFICIENT_ACCESS:
    case LDAP_CONFIDENTIALITY_REQUIRED:
    case LDAP_UNWILLING_TO_PERFORM:
        g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED, "directory %s does not let %s %s: %s",
                    conn->uri, dv_conn_who(conn), what, detail);
        return;
    case LDAP_NO_SUCH_OBJECT:
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND,
                    "directory %s: cannot %s: no such entry, or %s may not see it", conn->uri, what,
                    dv_conn_who(conn));
        return;
    case LDAP_ALREADY_EXISTS:
        g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT, "directory %s: cannot %s: the entry exists",
                    conn->uri, what);
        return;
    case LDAP_OBJECT_CLASS_VIOLATION:
    case LDAP_NAMING_VIOLATION:
    case LDAP_INVALID_DN_SYNTAX:
    case LDAP_INVALID_SYNTAX:
    case LDAP_UNDEFINED_TYPE:
    case LDAP_CONSTRAINT_VIOLATION:
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT, "directory %s refused to %s: %s", conn->uri,
                    what, detail);
        return;
    case LDAP_PARAM_ERROR:
    case LDAP_NO_MEMORY:
    case LDAP_LOCAL_ERROR:
    case LDAP_ENCODING_ERROR:
    case LDAP_DECODING_ERROR:
    case LDAP_PROTOCOL_ERROR:
    default:
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "directory %s: cannot %s: %s", conn->uri, what,
                    detail);
        return;
    }
}

/* --- connecting ------------------------------------------------------------ */

static gboolean
dv_ldap_set(LDAP *ld, int option, const void *value, const DvConn *conn, const char *name,
            GError **error)
{
    if (ldap_set_option(ld, option, value) != LDAP_OPT_SUCCESS) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "directory %s: cannot set the LDAP option %s",
                    conn->uri, name);
        return FALSE;
    }
    return TRUE;
}

/* libldap 2.5 with GnuTLS does not bound a TLS handshake: against a
 * server that accepts the connection and then stays silent, ldaps:// spins
 * a CPU forever and StartTLS blocks forever, whatever the timeouts say.  So
 * the TCP connection is ours (ldap_init_fd) and a watchdog thread shuts it
 * down when the handshake outlives its deadline, which makes the handshake
 * fail at once. */
typedef struct {
    GMutex lock;
    GCond cond;
    gboolean done;
    gboolean fired;
    int fd;
    gint64 deadline;
    GThread *thread;
} DvWatchdog;

static gpointer
dv_watchdog_run(gpointer data)
{
    DvWatchdog *w = data;

    g_mutex_lock(&w->lock);
    while (!w->done) {
        if (!g_cond_wait_until(&w->cond, &w->lock, w->deadline) && !w->done) {
            w->fired = TRUE;
            shutdown(w->fd, SHUT_RDWR);
            break;
        }
    }
    g_mutex_unlock(&w->lock);
    return NULL;
}

static void
dv_watchdog_arm(DvWatchdog *w, int fd, guint seconds)
{
    memset(w, 0, sizeof(*w));
    g_mutex_init(&w->lock);
    g_cond_init(&w->cond);
    w->fd = fd;
    w->deadline = g_get_monotonic_time() + (gint64)seconds * G_USEC_PER_SEC;
    w->thread = g_thread_new("dv-ldap-watchdog", dv_watchdog_run, w);
}

/* Returns TRUE when the watchdog fired. */
static gboolean
dv_watchdog_disarm(DvWatchdog *w)
{
    g_mutex_lock(&w->lock);
    w->done = TRUE;
    g_cond_signal(&w->cond);
    g_mutex_unlock(&w->lock);
    g_thread_join(w->thread);
    g_mutex_clear(&w->lock);
    g_cond_clear(&w->cond);
    return w->fired;
}

/* A blocking TCP socket to the host of @conn->uri (owned fd), connected
 * within the network timeout. */
static int
dv_ldap_tcp_connect(const DvConn *conn, GError **error)
{
    LDAPURLDesc *url = NULL;
    g_autoptr(GSocketClient) client = NULL;
    g_autoptr(GSocketConnectable) address = NULL;
    g_autoptr(GSocketConnection) connection = NULL;
    g_autoptr(GError) local_error = NULL;
    guint16 port;
    int fd;
    int flags;

    if (ldap_url_parse(conn->uri, &url) != LDAP_URL_SUCCESS) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "uri", "'%s' is not a valid LDAP URI", conn->uri);
        return -1;
    }
    port = url->lud_port > 0 ? (guint16)url->lud_port : (conn->scheme == DV_SCHEME_LDAPS ? 636 : 389);
    address = g_network_address_new(url->lud_host != NULL && url->lud_host[0] != '\0' ? url->lud_host
                                                                                       : "localhost",
                                     port);
    ldap_free_urldesc(url);
    client = g_socket_client_new();
    g_socket_client_set_timeout(client, conn->network_timeout_s);
    connection = g_socket_client_connect(client, address, NULL, &local_error);
    if (connection == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "directory %s cannot be reached: %s", conn->uri,
                    local_error->message);
        return -1;
    }
    /* libldap owns a duplicate; GIO closes its own descriptor. */
    fd = fcntl(g_socket_get_fd(g_socket_connection_get_socket(connection)), F_DUPFD_CLOEXEC, 3);
    if (fd < 0 || (flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "directory %s: cannot use the connection: %s", conn->uri,
                    g_strerror(saved));
        return -1;
    }
    return fd;
}

static gboolean
dv_ldap_set_options(LDAP *ld, const DvConn *conn, GError **error)
{
    const int version = LDAP_VERSION3;
    const struct timeval op_tv = { .tv_sec = conn->op_timeout_s };

    if (!dv_ldap_set(ld, LDAP_OPT_PROTOCOL_VERSION, &version, conn, "protocol version", error) ||
        !dv_ldap_set(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF, conn, "referrals", error) ||
        !dv_ldap_set(ld, LDAP_OPT_TIMEOUT, &op_tv, conn, "timeout", error))
        return FALSE;
    if (conn->scheme == DV_SCHEME_LDAPI) {
        const struct timeval net_tv = { .tv_sec = conn->network_timeout_s };
        return dv_ldap_set(ld, LDAP_OPT_NETWORK_TIMEOUT, &net_tv, conn, "network timeout", error);
    }
    {
        const int demand = LDAP_OPT_X_TLS_DEMAND;
        const int min_proto = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
        const int client = 0;
        int rc;

        if (!dv_ldap_set(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand, conn, "TLS require cert", error) ||
            !dv_ldap_set(ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &min_proto, conn, "TLS minimum protocol", error))
            return FALSE;
        if (conn->ca_file != NULL &&
            !dv_ldap_set(ld, LDAP_OPT_X_TLS_CACERTFILE, conn->ca_file, conn, "TLS CA file", error))
            return FALSE;
        if (conn->cert_file != NULL &&
            (!dv_ldap_set(ld, LDAP_OPT_X_TLS_CERTFILE, conn->cert_file, conn, "TLS certificate", error) ||
             !dv_ldap_set(ld, LDAP_OPT_X_TLS_KEYFILE, conn->key_file, conn, "TLS key", error)))
            return FALSE;
        /* A context of this handle's own, so these settings apply. */
        rc = ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &client);
        if (rc != LDAP_OPT_SUCCESS) {
            g_autofree char *diag = dv_ldap_dup_diagnostic(ld);
            g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                        "directory %s: cannot set up TLS (CA file %s, client certificate %s): %s", conn->uri,
                        conn->ca_file != NULL ? conn->ca_file : "system",
                        conn->cert_file != NULL ? conn->cert_file : "none",
                        diag != NULL ? diag : ldap_err2string(rc));
            return FALSE;
        }
    }
    return TRUE;
}

/* TLS over the connection: the StartTLS request, then the handshake, under
 * the watchdog. */
static gboolean
dv_ldap_start_tls(LDAP *ld, int fd, const DvConn *conn, GError **error)
{
    DvWatchdog watchdog;
    guint budget = conn->network_timeout_s + conn->op_timeout_s;
    int rc;

    dv_watchdog_arm(&watchdog, fd, budget);
    if (conn->scheme == DV_SCHEME_LDAP)
        rc = ldap_start_tls_s(ld, NULL, NULL);
    else
        rc = ldap_install_tls(ld);
    if (dv_watchdog_disarm(&watchdog)) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE,
                    "directory %s cannot be reached: no TLS session within %u s (the server does not answer)",
                    conn->uri, budget);
        return FALSE;
    }
    if (rc == LDAP_SUCCESS)
        return TRUE;
    if (conn->scheme == DV_SCHEME_LDAP &&
        (rc == LDAP_PROTOCOL_ERROR || rc == LDAP_UNAVAILABLE || rc == LDAP_UNWILLING_TO_PERFORM ||
         rc == LDAP_OPERATIONS_ERROR)) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE,
                    "directory %s cannot be reached: the server refused StartTLS (%s); Drover never binds "
                    "without TLS",
                    conn->uri, ldap_err2string(rc));
        return FALSE;
    }
    /* Anything else here is the handshake failing: say so. */
    dv_ldap_set_error(ld, rc == LDAP_TIMEOUT || rc == LDAP_SERVER_DOWN ? rc : LDAP_CONNECT_ERROR, conn,
                      "start TLS", error);
    return FALSE;
}

/* Connects (TLS for ldap:// and ldaps://) and binds.  Returns the handle
 * (owned). */
static LDAP *
dv_ldap_open(const DvConn *conn, GError **error)
{
    g_autoptr(DvLdap) ld = NULL;
    g_autoptr(DvSecret) loaded = NULL;
    const DvSecret *password = conn->password;
    int rc;

    /* A bad password file is reported before touching the network. */
    if (conn->bind_dn != NULL && password == NULL) {
        loaded = dv_directory_read_password_file(conn->password_file, error);
        if (loaded == NULL)
            return NULL;
        password = loaded;
    }

    if (conn->scheme == DV_SCHEME_LDAPI) {
        rc = ldap_initialize(&ld, conn->uri);
        if (rc != LDAP_SUCCESS) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "uri", "'%s' is not a usable LDAP URI: %s",
                               conn->uri, ldap_err2string(rc));
            return NULL;
        }
        if (!dv_ldap_set_options(ld, conn, error))
            return NULL;
    } else {
        int fd = dv_ldap_tcp_connect(conn, error);
        if (fd < 0)
            return NULL;
        rc = ldap_init_fd(fd, LDAP_PROTO_TCP, conn->uri, &ld);
        if (rc != LDAP_SUCCESS) {
            close(fd);
            g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "directory %s: cannot start an LDAP session: %s",
                        conn->uri, ldap_err2string(rc));
            return NULL;
        }
        if (!dv_ldap_set_options(ld, conn, error) || !dv_ldap_start_tls(ld, fd, conn, error))
            return NULL;
    }

    if (conn->sasl_external) {
        /* slapd and AD implement EXTERNAL themselves: no SASL library
         * round trip, no authzid (the identity is the peer's). */
        struct berval no_authzid = { 0, "" };
        rc = ldap_sasl_bind_s(ld, NULL, "EXTERNAL", &no_authzid, NULL, NULL, NULL);
    } else if (conn->bind_dn != NULL) {
        struct berval cred;

        cred.bv_val = (char *)dv_secret_get_data(password);
        cred.bv_len = dv_secret_get_len(password);
        rc = ldap_sasl_bind_s(ld, conn->bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
    } else {
        struct berval empty = { 0, NULL };
        rc = ldap_sasl_bind_s(ld, NULL, LDAP_SASL_SIMPLE, &empty, NULL, NULL, NULL);
    }
    if (rc != LDAP_SUCCESS) {
        /* ldaps:// and ldapi:// connect lazily, at the bind: a TLS or
         * connection failure shows up here. */
        dv_ldap_set_error(ld, rc, conn, "bind", error);
        return NULL;
    }
    return g_steal_pointer(&ld);
}

static struct timeval
dv_conn_op_timeout(const DvConn *conn)
{
    return (struct timeval){ .tv_sec = conn->op_timeout_s };
}

/* Reads the values of @attr of the entry @dn (a base search); @ret_values
 * gets NULL when the entry has none (or they are hidden). */
static gboolean
dv_ldap_read_attr(LDAP *ld, const DvConn *conn, const char *dn, const char *attr, const char *what,
                  struct berval ***ret_values, GError **error)
{
    g_autoptr(LDAPMessage) res = NULL;
    char *attrs[] = { (char *)attr, NULL };
    struct timeval tv = dv_conn_op_timeout(conn);
    LDAPMessage *entry;
    int rc;

    rc = ldap_search_ext_s(ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL, &tv, 1, &res);
    if (rc != LDAP_SUCCESS) {
        dv_ldap_set_error(ld, rc, conn, what, error);
        return FALSE;
    }
    entry = ldap_first_entry(ld, res);
    if (entry == NULL) {
        dv_ldap_set_error(ld, LDAP_NO_SUCH_OBJECT, conn, what, error);
        return FALSE;
    }
    *ret_values = ldap_get_values_len(ld, entry, attr);
    return TRUE;
}

/* The one description value of @dn that starts with @prefix, after the
 * prefix (owned).  NOT_FOUND when the entry is missing or hidden;
 * SECRET_UNREADABLE when it holds no such value or several. */
static char *
dv_ldap_read_tagged(LDAP *ld, const DvConn *conn, const char *dn, const char *prefix, const char *what,
                    GError **error)
{
    g_auto(DvBervals) values = NULL;
    const struct berval *found = NULL;

    if (!dv_ldap_read_attr(ld, conn, dn, "description", what, &values, error))
        return NULL;
    for (guint i = 0; values != NULL && values[i] != NULL; i++) {
        if (values[i]->bv_len >= strlen(prefix) && memcmp(values[i]->bv_val, prefix, strlen(prefix)) == 0) {
            if (found != NULL) {
                g_set_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                            "directory %s: %s holds several '%s' values", conn->uri, dn, prefix);
                return NULL;
            }
            found = values[i];
        }
    }
    if (found == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                    "directory %s: %s holds no '%s' description (unknown format, or %s may not read it)",
                    conn->uri, dn, prefix, dv_conn_who(conn));
        return NULL;
    }
    return g_strndup(found->bv_val + strlen(prefix), found->bv_len - strlen(prefix));
}

/* Adds @dn as an applicationProcess with @description, or replaces its
 * description when it exists. */
static gboolean
dv_ldap_put_entry(LDAP *ld, const DvConn *conn, const char *dn, const char *cn, const char *description,
                  const char *what, GError **error)
{
    char *oc_vals[] = { "applicationProcess", NULL };
    char *cn_vals[] = { (char *)cn, NULL };
    char *desc_vals[] = { (char *)description, NULL };
    LDAPMod oc_mod = { .mod_op = LDAP_MOD_ADD, .mod_type = "objectClass", .mod_values = oc_vals };
    LDAPMod cn_mod = { .mod_op = LDAP_MOD_ADD, .mod_type = "cn", .mod_values = cn_vals };
    LDAPMod desc_add = { .mod_op = LDAP_MOD_ADD, .mod_type = "description", .mod_values = desc_vals };
    LDAPMod desc_replace = { .mod_op = LDAP_MOD_REPLACE, .mod_type = "description", .mod_values = desc_vals };
    LDAPMod *add_mods[] = { &oc_mod, &cn_mod, &desc_add, NULL };
    LDAPMod *replace_mods[] = { &desc_replace, NULL };
    int rc;

    rc = ldap_add_ext_s(ld, dn, add_mods, NULL, NULL);
    if (rc == LDAP_ALREADY_EXISTS)
        rc = ldap_modify_ext_s(ld, dn, replace_mods, NULL, NULL);
    if (rc != LDAP_SUCCESS) {
        dv_ldap_set_error(ld, rc, conn, what, error);
        return FALSE;
    }
    return TRUE;
}

/* "dn:cn=x,..." -> "cn=x,..." for the identity @ld is bound as (owned); ""
 * when anonymous. */
static char *
dv_ldap_whoami(LDAP *ld, const DvConn *conn, GError **error)
{
    struct berval *authzid = NULL;
    char *dn;
    int rc = ldap_whoami_s(ld, &authzid, NULL, NULL);

    if (rc != LDAP_SUCCESS) {
        dv_ldap_set_error(ld, rc, conn, "tell who it is bound as (Who am I?)", error);
        return NULL;
    }
    if (authzid == NULL || authzid->bv_len == 0) {
        ber_bvfree(authzid);
        return g_strdup("");
    }
    if (authzid->bv_len > 3 && g_ascii_strncasecmp(authzid->bv_val, "dn:", 3) == 0)
        dn = g_strndup(authzid->bv_val + 3, authzid->bv_len - 3);
    else
        dn = g_strndup(authzid->bv_val, authzid->bv_len);
    ber_bvfree(authzid);
    return dn;
}

/* --- the object ------------------------------------------------------------ */

struct _DvDirectory {
    DvConn conn;
    char *container_dn;
};

DvDirectory *
dv_directory_new(const DvDirectoryOptions *options, GError **error)
{
    g_autoptr(DvDirectory) self = g_new0(DvDirectory, 1);

    g_return_val_if_fail(options != NULL, NULL);
    if (!dv_conn_copy(&options->conn, NULL, &self->conn, error))
        return NULL;
    if (!dv_dn_valid(options->container_dn)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "container_dn",
                           "the key container must be a valid DN of at most %u characters",
                           DV_DIRECTORY_DN_MAX);
        return NULL;
    }
    self->container_dn = g_strdup(options->container_dn);
    return g_steal_pointer(&self);
}

void
dv_directory_free(DvDirectory *self)
{
    if (self == NULL)
        return;
    dv_conn_clear(&self->conn);
    g_free(self->container_dn);
    g_free(self);
}

const char *
dv_directory_get_uri(DvDirectory *self)
{
    return self->conn.uri;
}

const char *
dv_directory_get_container_dn(DvDirectory *self)
{
    return self->container_dn;
}

static gboolean
dv_directory_check_key_id(const char *key_id, GError **error)
{
    gsize len = key_id != NULL ? strlen(key_id) : 0;

    if (len == 0 || len > DV_DIRECTORY_KEY_ID_MAX) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "key_id", "a key id must be 1-%u characters",
                           DV_DIRECTORY_KEY_ID_MAX);
        return FALSE;
    }
    for (gsize i = 0; i < len; i++) {
        if (!g_ascii_isalnum(key_id[i]) && key_id[i] != '.' && key_id[i] != '_' && key_id[i] != '-') {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "key_id",
                               "a key id may only hold letters, digits, '.', '_' and '-'");
            return FALSE;
        }
    }
    if (g_ascii_strcasecmp(key_id, DV_DIRECTORY_CURRENT_RDN) == 0 ||
        g_ascii_strcasecmp(key_id, DV_DIRECTORY_PROBE_RDN) == 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "key_id", "'%s' is a reserved name", key_id);
        return FALSE;
    }
    return TRUE;
}

static gboolean
dv_directory_check_installation_id(const char *installation_id, GError **error)
{
    if (installation_id == NULL || installation_id[0] == '\0' ||
        strlen(installation_id) > DV_DIRECTORY_INSTALLATION_ID_MAX) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "installation_id",
                           "the installation id must be 1-%u bytes", DV_DIRECTORY_INSTALLATION_ID_MAX);
        return FALSE;
    }
    return TRUE;
}

static char *
dv_directory_entry_dn(DvDirectory *self, const char *rdn_value)
{
    /* Key ids and the reserved names need no DN escaping. */
    return g_strdup_printf("cn=%s,%s", rdn_value, self->container_dn);
}

/* --- wrapping --------------------------------------------------------------- */

/* KEK = BLAKE2b-256 over (context, installation id, key id), each
 * length-prefixed.  Neither input is secret alone; together with the
 * directory entry they open the key. */
static DvSecret *
dv_directory_derive_kek(const char *installation_id, const char *key_id)
{
    DvSecret *kek = dv_secret_new(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
    crypto_generichash_state *state = sodium_malloc(sizeof(*state));
    const char *parts[] = { DV_DIRECTORY_KDF_CONTEXT, installation_id, key_id };

    if (state == NULL)
        g_error("sodium_malloc failed");
    crypto_generichash_init(state, NULL, 0, dv_secret_get_len(kek));
    for (guint i = 0; i < G_N_ELEMENTS(parts); i++) {
        guint8 len_le[8];
        guint64 len = strlen(parts[i]);
        for (guint b = 0; b < 8; b++)
            len_le[b] = (guint8)(len >> (8 * b));
        crypto_generichash_update(state, len_le, sizeof(len_le));
        crypto_generichash_update(state, (const guint8 *)parts[i], len);
    }
    crypto_generichash_final(state, dv_secret_get_data_mutable(kek), dv_secret_get_len(kek));
    sodium_free(state); /* wipes */
    return kek;
}

static char *
dv_directory_aad(const char *key_id)
{
    return g_strdup_printf("%s/%s", DV_DIRECTORY_AAD_CONTEXT, key_id);
}

/* base64(nonce || ciphertext || tag), not secret (owned). */
static char *
dv_directory_wrap(const char *installation_id, const char *key_id, const DvSecret *data_key)
{
    g_autoptr(DvSecret) kek = dv_directory_derive_kek(installation_id, key_id);
    g_autofree char *aad = dv_directory_aad(key_id);
    gsize klen = dv_secret_get_len(data_key);
    gsize blen = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + klen + crypto_aead_xchacha20poly1305_ietf_ABYTES;
    g_autofree guint8 *blob = g_malloc(blen);
    gsize b64_len = sodium_base64_encoded_len(blen, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = g_malloc(b64_len);
    unsigned long long clen = 0;

    randombytes_buf(blob, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(blob + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen,
                                               dv_secret_get_data(data_key), klen, (const guint8 *)aad,
                                               strlen(aad), NULL, blob, dv_secret_get_data(kek));
    sodium_bin2base64(b64, b64_len, blob, blen, sodium_base64_VARIANT_ORIGINAL);
    return b64;
}

static DvSecret *
dv_directory_unwrap(const DvConn *conn, const char *dn, const char *installation_id, const char *key_id,
                    const char *b64, GError **error)
{
    g_autoptr(DvSecret) kek = NULL;
    g_autoptr(DvSecret) key = NULL;
    g_autofree char *aad = dv_directory_aad(key_id);
    gsize b64_len = strlen(b64);
    gsize max = b64_len / 4 * 3 + 3;
    g_autofree guint8 *blob = g_malloc(max);
    gsize blen = 0;
    const gsize overhead = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES;

    if (sodium_base642bin(blob, max, b64, b64_len, NULL, &blen, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        blen <= overhead || blen - overhead > DV_DIRECTORY_DATA_KEY_MAX) {
        g_set_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                    "directory %s: the wrapped key in %s is malformed (not base64, or of the wrong length)",
                    conn->uri, dn);
        return NULL;
    }
    kek = dv_directory_derive_kek(installation_id, key_id);
    key = dv_secret_new(blen - overhead);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            dv_secret_get_data_mutable(key), NULL, NULL, blob + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
            blen - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, (const guint8 *)aad, strlen(aad), blob,
            dv_secret_get_data(kek)) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                    "directory %s: the key in %s does not unwrap: it was wrapped for another installation "
                    "id or key id, or the entry was altered",
                    conn->uri, dn);
        return NULL;
    }
    return g_steal_pointer(&key);
}

/* --- keys ------------------------------------------------------------------- */

static DvSecret *
dv_directory_load_key_on(DvDirectory *self, LDAP *ld, const char *installation_id, const char *key_id,
                         GError **error)
{
    g_autofree char *dn = dv_directory_entry_dn(self, key_id);
    g_autofree char *what = g_strdup_printf("read the key entry %s", dn);
    g_autofree char *b64 = dv_ldap_read_tagged(ld, &self->conn, dn, DV_DIRECTORY_KEY_PREFIX, what, error);

    if (b64 == NULL)
        return NULL;
    return dv_directory_unwrap(&self->conn, dn, installation_id, key_id, b64, error);
}

gboolean
dv_directory_store_key(DvDirectory *self, const char *installation_id, const char *key_id,
                       const DvSecret *data_key, DvDirectoryStoreFlags flags, GError **error)
{
    g_autoptr(DvLdap) ld = NULL;
    g_autoptr(DvSecret) existing = NULL;
    g_autoptr(GError) read_error = NULL;
    g_autofree char *dn = NULL;
    g_autofree char *what = NULL;
    g_autofree char *b64 = NULL;
    g_autofree char *description = NULL;

    g_return_val_if_fail(self != NULL && data_key != NULL, FALSE);
    if (!dv_directory_check_key_id(key_id, error) || !dv_directory_check_installation_id(installation_id, error))
        return FALSE;
    if (dv_secret_get_len(data_key) == 0 || dv_secret_get_len(data_key) > DV_DIRECTORY_DATA_KEY_MAX) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "data_key", "a data key must be 1-%u bytes",
                           DV_DIRECTORY_DATA_KEY_MAX);
        return FALSE;
    }
    ld = dv_ldap_open(&self->conn, error);
    if (ld == NULL)
        return FALSE;
    dn = dv_directory_entry_dn(self, key_id);

    /* Never overwrite another key by accident: a key version id names one
     * key for the life of the installation. */
    existing = dv_directory_load_key_on(self, ld, installation_id, key_id, &read_error);
    if (existing != NULL && dv_secret_equal(existing, data_key))
        return TRUE;
    if (existing == NULL && !g_error_matches(read_error, DV_ERROR, DV_ERROR_NOT_FOUND) &&
        !g_error_matches(read_error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE)) {
        g_propagate_error(error, g_steal_pointer(&read_error));
        return FALSE;
    }
    if ((existing != NULL || g_error_matches(read_error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE)) &&
        (flags & DV_DIRECTORY_STORE_REPLACE) == 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT,
                    "directory %s: %s already holds %s for key %s; refusing to overwrite it", self->conn.uri,
                    dn, existing != NULL ? "another key" : "a key this installation cannot unwrap", key_id);
        return FALSE;
    }

    b64 = dv_directory_wrap(installation_id, key_id, data_key);
    description = g_strconcat(DV_DIRECTORY_KEY_PREFIX, b64, NULL);
    what = g_strdup_printf("write the key entry %s", dn);
    return dv_ldap_put_entry(ld, &self->conn, dn, key_id, description, what, error);
}

DvSecret *
dv_directory_load_key(DvDirectory *self, const char *installation_id, const char *key_id, GError **error)
{
    g_autoptr(DvLdap) ld = NULL;

    g_return_val_if_fail(self != NULL, NULL);
    if (!dv_directory_check_key_id(key_id, error) || !dv_directory_check_installation_id(installation_id, error))
        return NULL;
    ld = dv_ldap_open(&self->conn, error);
    if (ld == NULL)
        return NULL;
    return dv_directory_load_key_on(self, ld, installation_id, key_id, error);
}

gboolean
dv_directory_set_current(DvDirectory *self, const char *key_id, GError **error)
{
    g_autoptr(DvLdap) ld = NULL;
    g_auto(DvBervals) values = NULL;
    g_autofree char *key_dn = NULL;
    g_autofree char *dn = NULL;
    g_autofree char *what = NULL;
    g_autofree char *description = NULL;

    g_return_val_if_fail(self != NULL, FALSE);
    if (!dv_directory_check_key_id(key_id, error))
        return FALSE;
    ld = dv_ldap_open(&self->conn, error);
    if (ld == NULL)
        return FALSE;
    key_dn = dv_directory_entry_dn(self, key_id);
    what = g_strdup_printf("read the key entry %s", key_dn);
    if (!dv_ldap_read_attr(ld, &self->conn, key_dn, "cn", what, &values, error))
        return FALSE;
    dn = dv_directory_entry_dn(self, DV_DIRECTORY_CURRENT_RDN);
    description = g_strconcat(DV_DIRECTORY_CURRENT_PREFIX, key_id, NULL);
    g_free(what);
    what = g_strdup_printf("write %s", dn);
    return dv_ldap_put_entry(ld, &self->conn, dn, DV_DIRECTORY_CURRENT_RDN, description, what, error);
}

char *
dv_directory_dup_current(DvDirectory *self, GError **error)
{
    g_autoptr(DvLdap) ld = NULL;
    g_autofree char *dn = NULL;
    g_autofree char *what = NULL;
    g_autofree char *key_id = NULL;
    g_autoptr(GError) local_error = NULL;

    g_return_val_if_fail(self != NULL, NULL);
    ld = dv_ldap_open(&self->conn, error);
    if (ld == NULL)
        return NULL;
    dn = dv_directory_entry_dn(self, DV_DIRECTORY_CURRENT_RDN);
    what = g_strdup_printf("read the current-key pointer %s", dn);
    key_id = dv_ldap_read_tagged(ld, &self->conn, dn, DV_DIRECTORY_CURRENT_PREFIX, what, error);
    if (key_id == NULL)
        return NULL;
    if (!dv_directory_check_key_id(key_id, &local_error)) {
        g_set_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                    "directory %s: %s names an invalid key id: %s", self->conn.uri, dn, local_error->message);
        return NULL;
    }
    return g_steal_pointer(&key_id);
}

static gint
dv_strcmp_p(gconstpointer a, gconstpointer b)
{
    return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

char **
dv_directory_list_keys(DvDirectory *self, GError **error)
{
    g_autoptr(DvLdap) ld = NULL;
    g_autoptr(LDAPMessage) res = NULL;
    g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *filter = g_strdup_printf("(&(objectClass=applicationProcess)(description=%s*))",
                                              DV_DIRECTORY_KEY_PREFIX);
    g_autofree char *what = NULL;
    char *attrs[] = { "cn", NULL };
    struct timeval tv = dv_conn_op_timeout(&self->conn);
    int rc;

    g_return_val_if_fail(self != NULL, NULL);
    ld = dv_ldap_open(&self->conn, error);
    if (ld == NULL)
        return NULL;
    what = g_strdup_printf("list the keys in %s", self->container_dn);
    rc = ldap_search_ext_s(ld, self->container_dn, LDAP_SCOPE_ONELEVEL, filter, attrs, 0, NULL, NULL, &tv,
                           DV_DIRECTORY_LIST_MAX + 1, &res);
    if (rc == LDAP_SIZELIMIT_EXCEEDED) {
        g_set_error(error, DV_ERROR, DV_ERROR_TOO_LARGE, "directory %s: %s holds over %u keys",
                    self->conn.uri, self->container_dn, DV_DIRECTORY_LIST_MAX);
        return NULL;
    }
    if (rc != LDAP_SUCCESS) {
        dv_ldap_set_error(ld, rc, &self->conn, what, error);
        return NULL;
    }
    for (LDAPMessage *e = ldap_first_entry(ld, res); e != NULL; e = ldap_next_entry(ld, e)) {
        g_auto(DvBervals) cns = ldap_get_values_len(ld, e, "cn");
        /* The RDN value is the key id; a multi-valued cn is not ours. */
        if (cns == NULL || cns[0] == NULL || cns[1] != NULL || cns[0]->bv_len > DV_DIRECTORY_KEY_ID_MAX)
            continue;
        g_autofree char *id = g_strndup(cns[0]->bv_val, cns[0]->bv_len);
        if (dv_directory_check_key_id(id, NULL))
            g_ptr_array_add(ids, g_steal_pointer(&id));
    }
    g_ptr_array_sort(ids, dv_strcmp_p);
    g_ptr_array_add(ids, NULL);
    return (char **)g_ptr_array_free(g_steal_pointer(&ids), FALSE);
}

/* --- the ACL ----------------------------------------------------------------- */

/* Lower-cased LDAPv3 form of @dn, for comparisons (owned; NULL if invalid). */
static char *
dv_dn_normalize(const char *dn)
{
    char *out = NULL;
    char *copy;

    if (ldap_dn_normalize(dn, LDAP_DN_FORMAT_LDAPV3, &out, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
        return NULL;
    copy = g_ascii_strdown(out, -1);
    ldap_memfree(out);
    return copy;
}

/* TRUE when @dn is @suffix or below it (both normalised). */
static gboolean
dv_dn_is_under(const char *dn, const char *suffix)
{
    gsize dlen = strlen(dn);
    gsize slen = strlen(suffix);

    if (slen == 0)
        return TRUE;
    if (dlen == slen)
        return strcmp(dn, suffix) == 0;
    return dlen > slen && strcmp(dn + dlen - slen, suffix) == 0 && dn[dlen - slen - 1] == ',';
}

/* "{3}to ..." -> "to ..." (borrowed pointer into @value). */
static const char *
dv_olc_strip_index(const char *value)
{
    if (value[0] == '{') {
        const char *end = strchr(value, '}');
        if (end != NULL)
            return end + 1;
    }
    return value;
}

static char *
dv_directory_acl_rule(const char *container_dn, const char *service_dn, const char *group_dn)
{
    GString *rule = g_string_new(NULL);

    g_string_append_printf(rule, "to dn.subtree=\"%s\" by dn.exact=\"%s\" write", container_dn, service_dn);
    if (group_dn != NULL)
        g_string_append_printf(rule, " by group.exact=\"%s\" read", group_dn);
    g_string_append(rule, " by * none");
    return g_string_free(rule, FALSE);
}

/* Writes @rule as the first olcAccess of the database holding the
 * container, removing older rules for the same container. */
static gboolean
dv_directory_write_olc_acl(DvDirectory *self, const DvConn *config, const char *rule, GError **error)
{
    g_autoptr(DvLdap) ld = NULL;
    g_autoptr(LDAPMessage) res = NULL;
    g_autofree char *container_norm = dv_dn_normalize(self->container_dn);
    g_autofree char *db_dn = NULL;
    g_autofree char *target = g_strdup_printf("to dn.subtree=\"%s\" ", self->container_dn);
    g_autoptr(GPtrArray) stale = g_ptr_array_new_with_free_func(g_free);
    char *attrs[] = { "olcSuffix", "olcAccess", NULL };
    struct timeval tv = dv_conn_op_timeout(config);
    gsize best_len = 0;
    gboolean in_place = FALSE;
    int rc;

    ld = dv_ldap_open(config, error);
    if (ld == NULL)
        return FALSE;
    rc = ldap_search_ext_s(ld, "cn=config", LDAP_SCOPE_ONELEVEL, "(&(objectClass=olcDatabaseConfig)(olcSuffix=*))",
                           attrs, 0, NULL, NULL, &tv, 1000, &res);
    if (rc != LDAP_SUCCESS) {
        dv_ldap_set_error(ld, rc, config, "read the databases in cn=config", error);
        g_prefix_error(error, "cannot write the OpenLDAP ACL (the config administrator must manage cn=config): ");
        return FALSE;
    }
    for (LDAPMessage *e = ldap_first_entry(ld, res); e != NULL; e = ldap_next_entry(ld, e)) {
        g_auto(DvBervals) suffixes = ldap_get_values_len(ld, e, "olcSuffix");
        for (guint i = 0; suffixes != NULL && suffixes[i] != NULL; i++) {
            g_autofree char *suffix = g_strndup(suffixes[i]->bv_val, suffixes[i]->bv_len);
            g_autofree char *norm = dv_dn_normalize(suffix);
            if (norm != NULL && container_norm != NULL && dv_dn_is_under(container_norm, norm) &&
                (db_dn == NULL || strlen(norm) > best_len)) {
                g_auto(DvBervals) access = ldap_get_values_len(ld, e, "olcAccess");
                g_autoptr(DvLdapStr) edn = ldap_get_dn(ld, e);
                g_free(db_dn);
                db_dn = g_strdup(edn);
                best_len = strlen(norm);
                g_ptr_array_set_size(stale, 0);
                in_place = FALSE;
                for (guint j = 0; access != NULL && access[j] != NULL; j++) {
                    g_autofree char *value = g_strndup(access[j]->bv_val, access[j]->bv_len);
                    const char *body = dv_olc_strip_index(value);
                    if (j == 0 && strcmp(body, rule) == 0)
                        in_place = TRUE;
                    else if (g_str_has_prefix(body, target))
                        g_ptr_array_add(stale, g_steal_pointer(&value));
                }
            }
        }
    }
    if (db_dn == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND,
                    "directory %s: no database in cn=config holds %s (or %s may not read cn=config)",
                    config->uri, self->container_dn, dv_conn_who(config));
        return FALSE;
    }
    if (in_place && stale->len == 0)
        return TRUE;
    if (stale->len > 0) {
        g_ptr_array_add(stale, NULL);
        LDAPMod del = { .mod_op = LDAP_MOD_DELETE, .mod_type = "olcAccess", .mod_values = (char **)stale->pdata };
        LDAPMod *mods[] = { &del, NULL };
        g_autofree char *what = g_strdup_printf("remove the older ACL for %s from %s", self->container_dn, db_dn);
        rc = ldap_modify_ext_s(ld, db_dn, mods, NULL, NULL);
        if (rc != LDAP_SUCCESS) {
            dv_ldap_set_error(ld, rc, config, what, error);
            return FALSE;
        }
    }
    if (!in_place) {
        g_autofree char *value = g_strconcat("{0}", rule, NULL);
        char *vals[] = { value, NULL };
        LDAPMod add = { .mod_op = LDAP_MOD_ADD, .mod_type = "olcAccess", .mod_values = vals };
        LDAPMod *mods[] = { &add, NULL };
        g_autofree char *what = g_strdup_printf("add the ACL for %s to %s", self->container_dn, db_dn);
        rc = ldap_modify_ext_s(ld, db_dn, mods, NULL, NULL);
        if (rc != LDAP_SUCCESS) {
            dv_ldap_set_error(ld, rc, config, what, error);
            return FALSE;
        }
    }
    return TRUE;
}

/* Creates the container as the administrator; an existing one is kept. */
static gboolean
dv_directory_create_container(DvDirectory *self, const DvConn *admin, GError **error)
{
    g_autoptr(DvLdap) ld = NULL;
    LDAPDN dn = NULL;
    g_autofree char *attr = NULL;
    g_autofree char *value = NULL;
    g_autofree char *what = g_strdup_printf("create the key container %s", self->container_dn);
    int rc;

    if (ldap_str2dn(self->container_dn, &dn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS || dn == NULL ||
        dn[0] == NULL || dn[0][1] != NULL) {
        if (dn != NULL)
            ldap_dnfree(dn);
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "container_dn",
                           "the key container's RDN must be a single ou= or cn= value");
        return FALSE;
    }
    attr = g_ascii_strdown(dn[0][0]->la_attr.bv_val, dn[0][0]->la_attr.bv_len);
    value = g_strndup(dn[0][0]->la_value.bv_val, dn[0][0]->la_value.bv_len);
    ldap_dnfree(dn);
    if (strcmp(attr, "ou") != 0 && strcmp(attr, "cn") != 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "container_dn",
                           "the key container's RDN must be ou= or cn=, not %s=", attr);
        return FALSE;
    }

    ld = dv_ldap_open(admin, error);
    if (ld == NULL)
        return FALSE;
    {
        char *oc_vals[] = { strcmp(attr, "ou") == 0 ? "organizationalUnit" : "applicationProcess", NULL };
        char *rdn_vals[] = { value, NULL };
        char *desc_vals[] = { "Drover data keys (directory key protector)", NULL };
        LDAPMod oc = { .mod_op = LDAP_MOD_ADD, .mod_type = "objectClass", .mod_values = oc_vals };
        LDAPMod rdn = { .mod_op = LDAP_MOD_ADD, .mod_type = attr, .mod_values = rdn_vals };
        LDAPMod desc = { .mod_op = LDAP_MOD_ADD, .mod_type = "description", .mod_values = desc_vals };
        LDAPMod *mods[] = { &oc, &rdn, &desc, NULL };

        rc = ldap_add_ext_s(ld, self->container_dn, mods, NULL, NULL);
    }
    if (rc == LDAP_SUCCESS || rc == LDAP_ALREADY_EXISTS)
        return TRUE;
    if (rc == LDAP_NO_SUCH_OBJECT) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND,
                    "directory %s: cannot create the key container %s: its parent entry does not exist",
                    admin->uri, self->container_dn);
        return FALSE;
    }
    dv_ldap_set_error(ld, rc, admin, what, error);
    return FALSE;
}

/* Binds as @conn and reports whether it reads any description under the
 * container.  A bind failure is an error: it proves nothing. */
static gboolean
dv_directory_probe_readable(DvDirectory *self, const DvConn *conn, gboolean *ret_readable, GError **error)
{
    g_autoptr(DvLdap) ld = NULL;
    g_autoptr(LDAPMessage) res = NULL;
    char *attrs[] = { "description", NULL };
    struct timeval tv = dv_conn_op_timeout(conn);
    gboolean readable = FALSE;
    int rc;

    ld = dv_ldap_open(conn, error);
    if (ld == NULL)
        return FALSE;
    rc = ldap_search_ext_s(ld, self->container_dn, LDAP_SCOPE_SUBTREE, "(objectClass=*)", attrs, 0, NULL, NULL,
                           &tv, DV_DIRECTORY_LIST_MAX, &res);
    if (rc == LDAP_NO_SUCH_OBJECT || rc == LDAP_INSUFFICIENT_ACCESS) {
        *ret_readable = FALSE;
        return TRUE;
    }
    if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
        dv_ldap_set_error(ld, rc, conn, "search the key container", error);
        return FALSE;
    }
    for (LDAPMessage *e = ldap_first_entry(ld, res); e != NULL && !readable; e = ldap_next_entry(ld, e)) {
        g_auto(DvBervals) values = ldap_get_values_len(ld, e, "description");
        if (values != NULL && values[0] != NULL)
            readable = TRUE;
    }
    *ret_readable = readable;
    return TRUE;
}

gboolean
dv_directory_check_acl(DvDirectory *self, const DvDirectoryConn *non_members, guint n_non_members,
                       GError **error)
{
    g_autoptr(GPtrArray) readers = g_ptr_array_new_with_free_func(g_free);
    g_auto(DvConn) anonymous = { 0 };
    DvDirectoryConn anon_in = { .uri = self->conn.uri, .ca_file = self->conn.ca_file,
                                .network_timeout_s = self->conn.network_timeout_s,
                                .op_timeout_s = self->conn.op_timeout_s };
    g_autoptr(DvLdap) ld = NULL;
    g_autofree char *probe_dn = dv_directory_entry_dn(self, DV_DIRECTORY_PROBE_RDN);
    g_autofree char *probe = NULL;
    gboolean readable = FALSE;

    g_return_val_if_fail(self != NULL, FALSE);
    g_return_val_if_fail(non_members != NULL || n_non_members == 0, FALSE);

    /* The service identity reads the probe. */
    ld = dv_ldap_open(&self->conn, error);
    if (ld == NULL) {
        g_prefix_error(error, "the service identity cannot connect: ");
        return FALSE;
    }
    probe = dv_ldap_read_tagged(ld, &self->conn, probe_dn, DV_DIRECTORY_PROBE_PREFIX, "read the ACL probe", error);
    if (probe == NULL) {
        g_prefix_error(error, "the service identity cannot read the key container %s: ", self->container_dn);
        return FALSE;
    }

    /* Nobody else reads anything in the container. */
    if (!dv_conn_copy(&anon_in, NULL, &anonymous, error) ||
        !dv_directory_probe_readable(self, &anonymous, &readable, error))
        return FALSE;
    if (readable)
        g_ptr_array_add(readers, g_strdup("anonymous"));
    for (guint i = 0; i < n_non_members; i++) {
        g_auto(DvConn) other = { 0 };
        if (!dv_conn_copy(&non_members[i], &self->conn, &other, error))
            return FALSE;
        if (dv_conn_anonymous(&other))
            continue;
        if (!dv_directory_probe_readable(self, &other, &readable, error)) {
            g_prefix_error(error, "cannot prove the ACL on %s as %s: ", self->container_dn, dv_conn_who(&other));
            return FALSE;
        }
        if (readable)
            g_ptr_array_add(readers, g_strdup(dv_conn_who(&other)));
    }
    if (readers->len > 0) {
        g_ptr_array_add(readers, NULL);
        g_autofree char *who = g_strjoinv(", ", (char **)readers->pdata);
        g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                    "the ACL of the key container %s on %s is not safe: it can be read by %s; only the "
                    "service identity and its group may read it",
                    self->container_dn, self->conn.uri, who);
        return FALSE;
    }
    return TRUE;
}

gboolean
dv_directory_init(DvDirectory *self, const DvDirectoryInitOptions *options, GError **error)
{
    g_auto(DvConn) admin = { 0 };
    g_auto(DvConn) config = { 0 };
    g_autofree char *service_dn = NULL;
    g_autofree char *probe_dn = NULL;
    g_autofree char *probe_desc = NULL;
    guint8 nonce[16];
    char nonce_hex[sizeof(nonce) * 2 + 1];

    g_return_val_if_fail(self != NULL && options != NULL, FALSE);
    if (!dv_conn_copy(&options->admin, &self->conn, &admin, error))
        return FALSE;
    if (options->config_admin != NULL && !dv_conn_copy(options->config_admin, &self->conn, &config, error))
        return FALSE;
    if (options->service_dn != NULL && !dv_dn_valid(options->service_dn)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "service_dn", "the service DN is not a valid DN");
        return FALSE;
    }
    if (options->group_dn != NULL && !dv_dn_valid(options->group_dn)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "group_dn", "the group DN is not a valid DN");
        return FALSE;
    }

    /* Who the service is, as the server sees it. */
    if (options->service_dn != NULL) {
        service_dn = g_strdup(options->service_dn);
    } else {
        g_autoptr(DvLdap) ld = dv_ldap_open(&self->conn, error);
        if (ld == NULL) {
            g_prefix_error(error, "the service identity cannot connect: ");
            return FALSE;
        }
        service_dn = dv_ldap_whoami(ld, &self->conn, error);
        if (service_dn == NULL)
            return FALSE;
        if (service_dn[0] == '\0' || !dv_dn_valid(service_dn)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "service_dn",
                               "the service identity binds as '%s', not as a DN: give the service DN",
                               service_dn[0] != '\0' ? service_dn : "anonymous");
            return FALSE;
        }
    }

    if (!dv_directory_create_container(self, &admin, error))
        return FALSE;
    if (options->acl_mode == DV_DIRECTORY_ACL_OPENLDAP) {
        g_autofree char *rule = dv_directory_acl_rule(self->container_dn, service_dn, options->group_dn);
        if (!dv_directory_write_olc_acl(self, options->config_admin != NULL ? &config : &admin, rule, error))
            return FALSE;
    }

    /* The probe: written by the service, which proves it may write. */
    randombytes_buf(nonce, sizeof(nonce));
    sodium_bin2hex(nonce_hex, sizeof(nonce_hex), nonce, sizeof(nonce));
    probe_dn = dv_directory_entry_dn(self, DV_DIRECTORY_PROBE_RDN);
    probe_desc = g_strconcat(DV_DIRECTORY_PROBE_PREFIX, nonce_hex, NULL);
    {
        g_autoptr(DvLdap) ld = dv_ldap_open(&self->conn, error);
        if (ld == NULL ||
            !dv_ldap_put_entry(ld, &self->conn, probe_dn, DV_DIRECTORY_PROBE_RDN, probe_desc,
                               "write the ACL probe in the key container", error)) {
            g_prefix_error(error, "the service identity %s cannot write to the key container %s: ", service_dn,
                           self->container_dn);
            return FALSE;
        }
    }
    return dv_directory_check_acl(self, options->non_members, options->n_non_members, error);
}

/* --- the keyring's protector ----------------------------------------------- */

typedef struct {
    DvKeyProtector parent;
    DvDirectory *directory;
    char *installation_id;
} DvDirectoryProtector;

static gboolean
dv_directory_protector_wrap(DvKeyProtector *protector, const char *key_id, const DvSecret *key, GError **error)
{
    DvDirectoryProtector *self = (DvDirectoryProtector *)protector;
    return dv_directory_store_key(self->directory, self->installation_id, key_id, key,
                                  DV_DIRECTORY_STORE_REPLACE, error);
}

static DvSecret *
dv_directory_protector_unwrap(DvKeyProtector *protector, const char *key_id, GError **error)
{
    DvDirectoryProtector *self = (DvDirectoryProtector *)protector;
    return dv_directory_load_key(self->directory, self->installation_id, key_id, error);
}

static gboolean
dv_directory_protector_set_current(DvKeyProtector *protector, const char *key_id, GError **error)
{
    DvDirectoryProtector *self = (DvDirectoryProtector *)protector;
    return dv_directory_set_current(self->directory, key_id, error);
}

static void
dv_directory_protector_free(DvKeyProtector *protector)
{
    DvDirectoryProtector *self = (DvDirectoryProtector *)protector;

    dv_directory_free(self->directory);
    g_free(self->installation_id);
    g_free(self);
}

DvKeyProtector *
dv_directory_protector_new(const DvDirectoryOptions *options, const char *installation_id, GError **error)
{
    DvDirectoryProtector *self;
    DvDirectory *directory;

    if (!dv_directory_check_installation_id(installation_id, error))
        return NULL;
    directory = dv_directory_new(options, error);
    if (directory == NULL)
        return NULL;
    self = g_new0(DvDirectoryProtector, 1);
    self->parent.kind = "directory";
    self->parent.wrap = dv_directory_protector_wrap;
    self->parent.unwrap = dv_directory_protector_unwrap;
    self->parent.set_current = dv_directory_protector_set_current;
    self->parent.free = dv_directory_protector_free;
    self->directory = directory;
    self->installation_id = g_strdup(installation_id);
    return &self->parent;
}

DvDirectory *
dv_directory_protector_get_directory(DvKeyProtector *protector)
{
    if (protector == NULL || protector->free != dv_directory_protector_free)
        return NULL;
    return ((DvDirectoryProtector *)protector)->directory;
}

/* --- directory logins ------------------------------------------------------ */

gpointer
dv_directory_conn_open(const DvDirectoryConn *conn, GError **error)
{
    g_auto(DvConn) copy = { 0 };

    if (!dv_conn_copy(conn, NULL, &copy, error))
        return NULL;
    return dv_ldap_open(&copy, error);
}

void
dv_directory_conn_set_error(gpointer ld, int rc, const DvDirectoryConn *conn, const char *what,
                            GError **error)
{
    g_auto(DvConn) copy = { 0 };

    if (!dv_conn_copy(conn, NULL, &copy, NULL)) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "directory: cannot %s: %s", what,
                    ldap_err2string(rc));
        return;
    }
    dv_ldap_set_error(ld, rc, &copy, what, error);
}
