/* Users, passwords (Argon2id) and API sessions. */
#pragma once

#include <json-glib/json-glib.h>

#include "dv-secret.h"
#include "dv-store.h"

G_BEGIN_DECLS

#define DV_AUTH_SESSION_LIFETIME_US (12 * G_TIME_SPAN_HOUR)
#define DV_AUTH_PASSWORD_MAX 1024

typedef struct _DvAuth DvAuth;

DvAuth *dv_auth_new(DvStore *store);
void dv_auth_free(DvAuth *auth);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvAuth, dv_auth_free)

/* On a database without users, creates "admin" with a random password
 * written once to <state_dir>/initial-admin-password (mode 0600).
 * @ret_created (may be NULL) tells whether it did. */
gboolean dv_auth_ensure_admin(DvAuth *auth, const char *state_dir, gboolean *ret_created,
                              GError **error);

/* Creates a user; the password is hashed with Argon2id. */
JsonObject *dv_auth_user_add(DvAuth *auth, const char *name, const DvSecret *password,
                             const char *role, GError **error);

/* Checks the password and opens a session.  Returns the bearer token
 * (owned, secret: never log it) and the user record in @ret_user.
 * Wrong user or password is DV_ERROR_AUTH_REQUIRED with one message for
 * both, and costs the same time. */
char *dv_auth_login(DvAuth *auth, const char *user, const DvSecret *password,
                    JsonObject **ret_user, GError **error);

/* Returns the session's user {id, name, role} for a bearer token, or NULL
 * with DV_ERROR_AUTH_REQUIRED. */
JsonObject *dv_auth_check_token(DvAuth *auth, const char *token, GError **error);

gboolean dv_auth_logout(DvAuth *auth, const char *token, GError **error);

G_END_DECLS
