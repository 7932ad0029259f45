/* Directory (LDAP) logins: users and groups of the directory the
 * installation already knows (docs/DIRECTORY.md, "Directory logins").
 *
 * Settings: the [directory] group of <state-dir>/directory.conf (where the
 * directory is and how the service binds: the key protector's) and a
 * [login] group of the same file:
 *
 *   [login]
 *   enabled = true
 *   user_base = ou=people,dc=example,dc=com
 *   user_filter = (&(objectClass=inetOrgPerson)(uid=%s))   default (uid=%s)
 *   groups = search | memberof                              default search
 *   group_base = ou=groups,dc=example,dc=com                default user_base
 *   group_filter = (&(objectClass=groupOfNames)(member=%s)) default (member=%s)
 *   uri = ldaps://...                                       default [directory] uri
 *   network_timeout_s = 5, op_timeout_s = 10                1..60
 *
 * In user_filter the one %s is the login name, in group_filter the user's
 * DN, both escaped as RFC 4515 says, so no input widens a filter.
 *
 * Connections are the key protector's (dv_directory_conn_open()):
 * ldap:// always upgraded with StartTLS (never a plain bind), ldaps://, or
 * ldapi://; every wait bounded by the two timeouts.  Each call opens its
 * connections and closes them; nothing is shared between threads.
 *
 * Errors:
 *   DV_ERROR_INVALID_ARGUMENT  bad settings ("login.user_filter: ...") or
 *                              an empty password (never sent: an empty
 *                              simple bind is an unauthenticated bind that
 *                              succeeds)
 *   DV_ERROR_AUTH_REQUIRED     no such user, more than one, wrong password
 *   DV_ERROR_UNAVAILABLE       the directory cannot be reached
 *                              ("directory logins are unavailable: directory
 *                              ldap://... cannot be reached: ...")
 * LDAP result codes never leave dv-auth-directory.c and dv-keys-directory.c. */
#pragma once

#include <glib.h>

#include "dv-secret.h"

G_BEGIN_DECLS

#define DV_AUTH_DIRECTORY_GROUPS_MAX 1000
#define DV_AUTH_DIRECTORY_TIMEOUT_MAX_S 60
/* The password_hash of a directory user's row: not a hash, so no local
 * password ever matches it. */
#define DV_AUTH_DIRECTORY_HASH "!directory"

typedef struct _DvAuthDirectory DvAuthDirectory;

/* Reads the settings at @path.  TRUE with *@ret_dir NULL when directory
 * logins are off (no file, no [login] group, enabled false). */
gboolean dv_auth_directory_load(const char *path, DvAuthDirectory **ret_dir, GError **error)
    G_GNUC_WARN_UNUSED_RESULT;
void dv_auth_directory_free(DvAuthDirectory *dir);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvAuthDirectory, dv_auth_directory_free)

/* Borrowed: the URI logins use. */
const char *dv_auth_directory_get_uri(DvAuthDirectory *dir);

/* Finds @name's entry as the service identity, binds as it with
 * @password, and reads its groups.  Returns the group DNs (owned,
 * NULL-terminated, possibly empty). */
char **dv_auth_directory_verify(DvAuthDirectory *dir, const char *name, const DvSecret *password,
                                GError **error) G_GNUC_WARN_UNUSED_RESULT;

/* The group DNs of @name, read as the service identity (no password):
 * for a session opened on another server.  Errors as above. */
char **dv_auth_directory_groups(DvAuthDirectory *dir, const char *name, GError **error)
    G_GNUC_WARN_UNUSED_RESULT;

/* RFC 4515 escaping of an assertion value: '*', '(', ')', '\\' and NUL
 * (and every byte outside printable ASCII) as \XX.  Owned. */
char *dv_auth_directory_filter_escape(const char *value);

G_END_DECLS
