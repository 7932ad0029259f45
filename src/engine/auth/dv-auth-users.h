/* User management and named API tokens (docs/ACCESS.md).
 *
 * Every call takes the acting DvAuthzContext (NULL: the engine itself,
 * e.g. drover-setup) and checks its privilege globally: user.read,
 * user.create, user.change, user.delete, role.manage.  Rules (each a
 * DvError naming the field, nothing changed):
 * - a password is DV_AUTH_PASSWORD_MIN-DV_AUTH_PASSWORD_MAX bytes and
 *   differs from the user name;
 * - the last enabled user holding administrator globally cannot be
 *   disabled, deleted or unbound (DV_ERROR_CONFLICT);
 * - disabling or deleting a user ends its live sessions and tokens at once
 *   (rows deleted, the session cache dropped);
 * - bindings follow the grant rule of dv_authz_binding_add();
 * - a token holds a subset of its user's privileges, checked when it is
 *   made and again, against the user's current bindings, at each use. */
#pragma once

#include "dv-auth.h"
#include "dv-authz.h"

G_BEGIN_DECLS

#define DV_AUTH_TOKENS_MAX 64 /* per user */

/* A user with no binding (it can log in and do nothing until bound). */
JsonObject *dv_auth_users_add(DvAuth *auth, const DvAuthzContext *actor, const char *name,
                              const DvSecret *password, GError **error);
/* Users {id, name, disabled, created_at}, by name, paged. */
JsonArray *dv_auth_users_list(DvAuth *auth, const DvAuthzContext *actor, guint limit,
                              const char *cursor, char **ret_next_cursor, GError **error);
/* One user by id or name with its bindings; never its password hash. */
JsonObject *dv_auth_users_show(DvAuth *auth, const DvAuthzContext *actor, const char *id_or_name,
                               GError **error);
gboolean dv_auth_users_set_disabled(DvAuth *auth, const DvAuthzContext *actor,
                                    const char *id_or_name, gboolean disabled,
                                    GError **error) G_GNUC_WARN_UNUSED_RESULT;
gboolean dv_auth_users_delete(DvAuth *auth, const DvAuthzContext *actor, const char *id_or_name,
                              GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* Replaces the user's bindings by @bindings (specs of
 * dv_authz_binding_add(), their principal taken from the user), in one
 * transaction. */
gboolean dv_auth_users_set_bindings(DvAuth *auth, const DvAuthzContext *actor,
                                    const char *id_or_name, JsonArray *bindings,
                                    GError **error) G_GNUC_WARN_UNUSED_RESULT;

/* A named token of @actor's own user holding @privileges (each one the user
 * holds), valid until @expires_at (µs since the epoch, at most
 * DV_AUTHZ_TOKEN_LIFETIME_MAX_US ahead).  Returns the token (owned,
 * secret: shown once, never stored) and its record in @ret_record. */
char *dv_auth_token_create(DvAuth *auth, const DvAuthzContext *actor, const char *name,
                           const char *const *privileges, gint64 expires_at,
                           JsonObject **ret_record, GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* The actor a token stands for: its user's current context restricted to
 * the token's privileges.  Unknown, expired or revoked, or a disabled
 * user: DV_ERROR_AUTH_REQUIRED; a privilege the user no longer holds:
 * DV_ERROR_PERMISSION_DENIED. */
DvAuthzContext *dv_auth_token_context(DvAuth *auth, const char *token, GError **error);
/* Revokes token @id: its own user's, or any with user.manage. */
gboolean dv_auth_token_revoke(DvAuth *auth, const DvAuthzContext *actor, const char *id,
                              GError **error) G_GNUC_WARN_UNUSED_RESULT;

/* The sessions or tokens of @user (a name; NULL: @actor's own), paged
 * (@limit 1..DV_PAGE_MAX, @cursor as dv_store_list()).  Another user's
 * need user.manage (DV_ERROR_PERMISSION_DENIED, field user); an unknown
 * name is DV_ERROR_INVALID_ARGUMENT.  Sessions: {id, user, created_at,
 * expires_at, current}, current when it is @token's (may be NULL).
 * Tokens: their records without the hash, with "user" (its name). */
JsonArray *dv_auth_sessions_list(DvAuth *auth, const DvAuthzContext *actor, const char *user,
                                 const char *token, guint limit, const char *cursor,
                                 char **ret_next_cursor, GError **error);
JsonArray *dv_auth_tokens_list(DvAuth *auth, const DvAuthzContext *actor, const char *user,
                               guint limit, const char *cursor, char **ret_next_cursor,
                               GError **error);
/* Ends session @id at once (row deleted, cache dropped): its own user's,
 * or any with user.manage; otherwise DV_ERROR_NOT_FOUND, as if absent. */
gboolean dv_auth_session_revoke(DvAuth *auth, const DvAuthzContext *actor, const char *id,
                                GError **error) G_GNUC_WARN_UNUSED_RESULT;

G_END_DECLS
