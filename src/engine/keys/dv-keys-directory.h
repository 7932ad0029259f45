/* The directory key protector: data keys wrapped in an LDAP container.
 *
 * Layout (standard schema only, so OpenLDAP and Active Directory both take
 * it; see docs/DIRECTORY.md):
 *
 *   <container>                      organizationalUnit (ou=) or applicationProcess (cn=)
 *   cn=<key id>,<container>          applicationProcess,
 *                                    description: drover-key-v1:<base64(nonce || ciphertext)>
 *   cn=current,<container>           applicationProcess,
 *                                    description: drover-current-v1:<key id>
 *   cn=acl-probe,<container>         applicationProcess,
 *                                    description: drover-probe-v1:<random>  (the ACL proof)
 *
 * The data key is wrapped with XChaCha20-Poly1305 under a KEK derived from
 * the installation id (kept in the Drover database) and the key id, so
 * neither the directory entry nor the database alone opens a secret.
 *
 * Every call opens its own connection (ldap:// always with StartTLS,
 * ldaps://, or ldapi://), binds, does its work and unbinds: nothing is held
 * between calls, no lock is held across a round trip, and every wait is
 * bounded by the network timeout (connect) and the operation timeout
 * (each request).  Calls may come from several threads.
 *
 * Errors (LDAP result codes never leave this file):
 *   DV_ERROR_UNAVAILABLE        server down, timeout, TLS failure
 *                               ("directory ldap://... cannot be reached: ...")
 *   DV_ERROR_AUTH_REQUIRED      the directory refused the credentials
 *   DV_ERROR_PERMISSION_DENIED  insufficient access; the ACL proof failed
 *   DV_ERROR_NOT_FOUND          no such entry (or the identity may not see it)
 *   DV_ERROR_SECRET_UNREADABLE  an entry that does not unwrap (another
 *                               installation id, altered, unknown format)
 *   DV_ERROR_CONFLICT           storing a different key under an existing id
 *   DV_ERROR_INVALID_ARGUMENT   bad options (the field is named)
 * A read failure never rewrites or deletes anything.
 */
#pragma once

#include <glib.h>

#include "dv-secret.h"

G_BEGIN_DECLS

#define DV_DIRECTORY_NETWORK_TIMEOUT_S 5
#define DV_DIRECTORY_OP_TIMEOUT_S 10
/* Key ids are 1..64 characters of [A-Za-z0-9._-]; these are reserved. */
#define DV_DIRECTORY_KEY_ID_MAX 64
#define DV_DIRECTORY_CURRENT_RDN "current"
#define DV_DIRECTORY_PROBE_RDN "acl-probe"
/* A wrapped data key is 16..256 bytes. */
#define DV_DIRECTORY_DATA_KEY_MAX 256

/* How to reach the directory and as whom.  All strings are borrowed and
 * copied by the functions that take the struct.
 *
 * Authentication is one of:
 *   - simple bind: @bind_dn and @password or @password_file; refused on a
 *     plain ldap:// connection, which is therefore always upgraded with
 *     StartTLS (a failed StartTLS is an error, never a fallback);
 *   - @sasl_external: over ldapi:// (the peer's Unix uid/gid) or over TLS
 *     with a client certificate (@cert_file + @key_file);
 *   - none of them: an anonymous bind (used by the ACL proof only).
 */
typedef struct {
    const char *uri;              /* one ldap://, ldaps:// or ldapi:// URI */
    const char *bind_dn;
    const char *password_file;    /* read at every connection: at most 4 KiB, one
                                   * trailing newline dropped; refused when other
                                   * users may read it */
    const DvSecret *password;     /* or the password itself (copied); wins over the file */
    gboolean sasl_external;
    const char *ca_file;          /* PEM CA bundle the server certificate must chain to;
                                   * NULL: the system's (ldap.conf TLS_CACERT) */
    const char *cert_file;        /* TLS client certificate and key (PEM) */
    const char *key_file;
    guint network_timeout_s;      /* connect + TLS handshake; 0: DV_DIRECTORY_NETWORK_TIMEOUT_S */
    guint op_timeout_s;           /* each request; 0: DV_DIRECTORY_OP_TIMEOUT_S */
} DvDirectoryConn;

typedef struct {
    DvDirectoryConn conn;         /* the service identity */
    const char *container_dn;     /* e.g. ou=drover-keys,dc=example,dc=com */
} DvDirectoryOptions;

typedef struct _DvDirectory DvDirectory;

/* Checks and copies @options; does not connect.  DV_ERROR_INVALID_ARGUMENT
 * naming the field ("uri", "bind_dn", "password", "cert_file",
 * "container_dn") when they are unusable. */
DvDirectory *dv_directory_new(const DvDirectoryOptions *options, GError **error);
void dv_directory_free(DvDirectory *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvDirectory, dv_directory_free)

/* Borrowed. */
const char *dv_directory_get_uri(DvDirectory *self);
const char *dv_directory_get_container_dn(DvDirectory *self);

typedef enum {
    DV_DIRECTORY_STORE_DEFAULT = 0,
    /* Overwrite an entry that holds another key (or one this installation
     * cannot unwrap).  Without it that is DV_ERROR_CONFLICT; storing the same
     * key again is always a no-op success. */
    DV_DIRECTORY_STORE_REPLACE = 1 << 0,
} DvDirectoryStoreFlags;

/* Wraps @data_key (1..DV_DIRECTORY_DATA_KEY_MAX bytes, borrowed) for
 * @installation_id and @key_id and writes cn=<key_id>,<container>. */
gboolean dv_directory_store_key(DvDirectory *self, const char *installation_id,
                                const char *key_id, const DvSecret *data_key,
                                DvDirectoryStoreFlags flags, GError **error);

/* Reads and unwraps cn=<key_id>,<container>.  Returns the data key in
 * guarded memory (owned). */
DvSecret *dv_directory_load_key(DvDirectory *self, const char *installation_id,
                                const char *key_id, GError **error);

/* Points cn=current,<container> at @key_id, whose entry must exist
 * (DV_ERROR_NOT_FOUND otherwise). */
gboolean dv_directory_set_current(DvDirectory *self, const char *key_id, GError **error);

/* The key id cn=current points at (owned); DV_ERROR_NOT_FOUND when unset. */
char *dv_directory_dup_current(DvDirectory *self, GError **error);

/* The key ids stored in the container, sorted (owned, NULL-terminated;
 * empty when there are none).  At most 10,000. */
char **dv_directory_list_keys(DvDirectory *self, GError **error);

/* --- setting up the container ------------------------------------------ */

typedef enum {
    /* OpenLDAP: write the ACL as the first olcAccess rule of the database
     * that holds the container, in cn=config. */
    DV_DIRECTORY_ACL_OPENLDAP,
    /* The administrator wrote the ACL (Active Directory, other servers, or a
     * managed cn=config): only create the container and prove the ACL. */
    DV_DIRECTORY_ACL_PRESET,
} DvDirectoryAclMode;

typedef struct {
    DvDirectoryConn admin;                /* creates the container (rootDN, or a DN with write there) */
    const DvDirectoryConn *config_admin;  /* writes cn=config; NULL: @admin (e.g. ldapi EXTERNAL as root) */
    DvDirectoryAclMode acl_mode;
    const char *service_dn;               /* who may write the keys; NULL: whom the service binds as */
    const char *group_dn;                 /* groupOfNames whose members may read; may be NULL */
    /* Identities that must not read the keys (the proof binds as each one;
     * an anonymous bind is always tried).  A NULL uri or ca_file in them
     * means the service's. */
    const DvDirectoryConn *non_members;
    guint n_non_members;
} DvDirectoryInitOptions;

/* `drover-setup keys directory init`: creates the container (an existing
 * one is kept), writes its ACL (OpenLDAP, first rule, replacing an older
 * rule for the same container)
 *
 *   to dn.subtree="<container>" by dn.exact="<service>" write
 *      by group.exact="<group>" read by * none
 *
 * then writes the probe entry as the service identity and runs
 * dv_directory_check_acl().  Idempotent: run again, it changes nothing that
 * is right. */
gboolean dv_directory_init(DvDirectory *self, const DvDirectoryInitOptions *options,
                           GError **error);

/* Proves the ACL without writing: the service identity reads the probe
 * entry, and neither an anonymous bind nor any of @non_members (may be
 * NULL when @n_non_members is 0) reads any description in the container.
 * DV_ERROR_PERMISSION_DENIED naming who could read otherwise;
 * DV_ERROR_AUTH_REQUIRED when a non-member cannot bind (nothing proved). */
gboolean dv_directory_check_acl(DvDirectory *self, const DvDirectoryConn *non_members,
                                guint n_non_members, GError **error);

/* --- the keyring's protector ----------------------------------------------- */

typedef struct _DvKeyProtector DvKeyProtector;

/* A DvKeyProtector (dv-keys.h) of kind "directory" over a new DvDirectory
 * for @options, wrapping with @installation_id (copied).  wrap() replaces
 * (DV_DIRECTORY_STORE_REPLACE), unwrap() loads, set_current() moves
 * cn=current.  Free it with dv_key_protector_free(). */
DvKeyProtector *dv_directory_protector_new(const DvDirectoryOptions *options,
                                           const char *installation_id, GError **error);

/* Borrowed: the DvDirectory behind a protector made above (NULL for any
 * other protector). */
DvDirectory *dv_directory_protector_get_directory(DvKeyProtector *protector);

/* --- directory logins ------------------------------------------------------ */

/* For src/engine/auth/dv-auth-directory.c only: a connection opened and
 * bound exactly as the protector's own (StartTLS on ldap://, the TLS
 * watchdog, the network and operation timeouts).  Returns an LDAP * (a
 * gpointer, so this header needs no <ldap.h>; owned, free it with
 * ldap_unbind_ext_s()).  Errors as listed at the top of this file. */
gpointer dv_directory_conn_open(const DvDirectoryConn *conn, GError **error);

/* Sets @error for LDAP result @rc of "@what" on @ld (an LDAP *, may be
 * NULL), worded and coded as the protector's own errors. */
void dv_directory_conn_set_error(gpointer ld, int rc, const DvDirectoryConn *conn, const char *what,
                                 GError **error);

G_END_DECLS
