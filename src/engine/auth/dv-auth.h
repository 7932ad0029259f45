/* Users, passwords (Argon2id) and API sessions.
 *
 * Threads: every call may run on any request thread; the token cache and
 * the login throttle are guarded by one mutex that is never held across a
 * database round trip or a password hash.
 *
 * Sessions: a token's check is answered from a cache, but an entry older
 * than DV_AUTH_RECHECK_US reads its session row again (one indexed
 * SELECT), so a session deleted or expired in the database by any server
 * or by hand stops working within that time.
 *
 * Logins (docs/API.md, "Sessions"): failures are counted per user name and
 * per source address.  After DV_AUTH_ADDRESS_FREE_FAILURES failures from an
 * address, it is refused (DV_ERROR_BUSY, 429) for 1 s, doubling with each
 * further failure up to DV_AUTH_ADDRESS_DELAY_MAX_S; the same for a user
 * after DV_AUTH_USER_FREE_FAILURES failures from any address, capped at the
 * much shorter DV_AUTH_USER_DELAY_MAX_S, and not applied to an address the
 * user has logged in from before.  A success resets the user's and the
 * address's count; a count is forgotten DV_AUTH_THROTTLE_FORGET_US after
 * its last failure.  Nothing sleeps: a refused attempt costs no hash. */
#pragma once

#include <json-glib/json-glib.h>

#include "dv-authz.h"
#include "dv-secret.h"
#include "dv-store.h"

G_BEGIN_DECLS

#define DV_AUTH_SESSION_LIFETIME_US (12 * G_TIME_SPAN_HOUR)
#define DV_AUTH_PASSWORD_MAX 1024
#define DV_AUTH_PASSWORD_MIN 8
#define DV_AUTH_RECHECK_US G_USEC_PER_SEC
#define DV_AUTH_ADDRESS_FREE_FAILURES 5
#define DV_AUTH_ADDRESS_DELAY_MAX_S 900
#define DV_AUTH_USER_FREE_FAILURES 10
#define DV_AUTH_USER_DELAY_MAX_S 30
#define DV_AUTH_THROTTLE_FORGET_US G_TIME_SPAN_HOUR
/* How long an API token of a directory user uses the groups last read
 * from the directory before reading them again (docs/ACCESS.md). */
#define DV_AUTH_TOKEN_GROUPS_TTL_US (60 * G_USEC_PER_SEC)

typedef struct _DvAuth DvAuth;

DvAuth *dv_auth_new(DvStore *store);
void dv_auth_free(DvAuth *auth);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvAuth, dv_auth_free)

/* On a database without users, creates "admin" with a random password
 * written once to <state_dir>/initial-admin-password (mode 0600).
 * @ret_created (may be NULL) tells whether it did.  On a database with
 * users, removes that file when its password no longer opens "admin" (it
 * was changed, possibly through another server). */
gboolean dv_auth_ensure_admin(DvAuth *auth, const char *state_dir, gboolean *ret_created,
                              GError **error);

/* Creates a user; the password is hashed with Argon2id. */
JsonObject *dv_auth_user_add(DvAuth *auth, const char *name, const DvSecret *password,
                             const char *role, GError **error);

/* Checks the password and opens a session.  Returns the bearer token
 * (owned, secret: never log it) and the user record in @ret_user.
 * Wrong user or password is DV_ERROR_AUTH_REQUIRED with one message for
 * both, and costs the same time; each is logged with the user name and
 * @address (the client's IP address, as text).  A user or address that
 * failed too often is DV_ERROR_BUSY without checking the password (see
 * dv_auth_login_retry_after()). */
char *dv_auth_login(DvAuth *auth, const char *user, const char *address,
                    const DvSecret *password, JsonObject **ret_user, GError **error)
    G_GNUC_WARN_UNUSED_RESULT;

/* Seconds until a login of @user from @address is no longer refused as
 * DV_ERROR_BUSY (the answer's Retry-After), at least 1; 0 when it would
 * not be refused now. */
guint dv_auth_login_retry_after(DvAuth *auth, const char *user, const char *address);

/* Changes the password of the session's user: @current must be its
 * password (a wrong one counts as a failed login of that user from
 * @address), @new_password 8-DV_AUTH_PASSWORD_MAX bytes and different.
 * Ends every other session of the user (the caller's stays) and, when
 * @current was the first-start password, removes
 * <state_dir>/initial-admin-password. */
gboolean dv_auth_change_password(DvAuth *auth, const char *token, const char *address,
                                 const DvSecret *current, const DvSecret *new_password,
                                 GError **error) G_GNUC_WARN_UNUSED_RESULT;

/* Returns the session's user {id, name, role, session_id} for a bearer
 * token, or NULL with DV_ERROR_AUTH_REQUIRED. */
JsonObject *dv_auth_check_token(DvAuth *auth, const char *token, GError **error);

gboolean dv_auth_logout(DvAuth *auth, const char *token, GError **error);

/* The session's actor (dv-authz.h): resolved once per session and cached
 * with it, so a request costs no binding reads; dropped with the cache
 * entry (recheck of another session, logout, dv_auth_forget_user()).
 * Errors as dv_auth_check_token(). */
DvAuthzContext *dv_auth_check_token_context(DvAuth *auth, const char *token,
                                            GError **error);

/* Drops every cached session and actor of @user_id, so its next request
 * reads the database again: called after its bindings change, when it is
 * disabled (its sessions end at once) or deleted. */
void dv_auth_forget_user(DvAuth *auth, const char *user_id);

/* Tests: moves the throttle's clock forward by @usec. */
void dv_auth_advance_clock_for_test(DvAuth *auth, gint64 usec);

G_END_DECLS
