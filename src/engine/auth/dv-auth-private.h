/* Shared by the files of src/engine/auth only. */
#pragma once

#include "dv-auth.h"

G_BEGIN_DECLS

DvStore *dv_auth_get_store(DvAuth *auth); /* borrowed */
/* The hex digest under which a bearer token (session or API token) is
 * stored; the token itself never is (owned). */
char *dv_auth_token_hash(const char *token);
/* Argon2id hash of @password (owned). */
char *dv_auth_hash_password(const DvSecret *password, GError **error);

/* The directory group DNs of @user (a users row) for an API token's
 * context (owned; empty for a local user).  Read from the directory as the
 * service identity and kept DV_AUTH_TOKEN_GROUPS_TTL_US per user; a
 * directory that cannot answer is DV_ERROR_UNAVAILABLE, directory logins
 * turned off DV_ERROR_AUTH_REQUIRED: never fewer groups. */
char **dv_auth_user_groups(DvAuth *auth, JsonObject *user, GError **error);

G_END_DECLS
