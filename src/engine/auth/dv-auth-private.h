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

G_END_DECLS
