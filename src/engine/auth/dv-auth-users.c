#define G_LOG_DOMAIN "DvAuthUsers"

/* User management and API tokens; see dv-auth-users.h. */

#include "dv-auth-users.h"
#include "dv-auth-private.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-validate.h"

#include <sodium.h>
#include <string.h>

/* @actor needs @privilege over everything (users and roles are global). */
static gboolean
dv_auth_users_require(const DvAuthzContext *actor, const char *privilege, GError **error)
{
    const char *dot = strchr(privilege, '.');
    g_autofree char *kind = g_strndup(privilege, (gsize)(dot - privilege));
    DvAuthzObject o = { .kind = kind };

    if (actor == NULL || dv_authz_decide(actor, privilege, &o) == DV_AUTHZ_ALLOW)
        return TRUE;
    /* Users exist for everyone who may log in: refused, never "not found". */
    g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED, "user '%s' lacks the privilege %s",
                dv_authz_context_get_name(actor), privilege);
    return FALSE;
}

static gboolean
dv_auth_users_password_check(const char *name, const DvSecret *password, GError **error)
{
    gsize len = password != NULL ? dv_secret_get_len(password) : 0;

    if (len < DV_AUTH_PASSWORD_MIN || len > DV_AUTH_PASSWORD_MAX) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "password",
                           "password: must be %d-%d bytes", DV_AUTH_PASSWORD_MIN,
                           DV_AUTH_PASSWORD_MAX);
        return FALSE;
    }
    if (len == strlen(name) &&
        g_ascii_strncasecmp(dv_secret_get_string(password), name, len) == 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "password",
                           "password: must differ from the user name");
        return FALSE;
    }
    return TRUE;
}

static JsonObject *
dv_auth_users_public(JsonObject *row)
{
    JsonObject *out = json_object_new();
    json_object_set_string_member(out, "id", dv_json_get_string(row, "id", ""));
    json_object_set_string_member(out, "name", dv_json_get_string(row, "name", ""));
    json_object_set_boolean_member(out, "disabled", dv_json_get_bool(row, "disabled", FALSE));
    json_object_set_int_member(out, "created_at", dv_json_get_int(row, "created_at", 0));
    return out;
}

static JsonObject *
dv_auth_users_row(DvStore *store, const char *id_or_name, GError **error)
{
    g_autoptr(GError) local = NULL;
    JsonObject *row = NULL;

    if (id_or_name != NULL && id_or_name[0] != '\0')
        row = dv_store_get(store, &dv_table_users, id_or_name, &local);
    if (row == NULL && (local == NULL || g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))) {
        g_clear_error(&local);
        if (id_or_name != NULL && id_or_name[0] != '\0')
            row = dv_store_find(store, &dv_table_users, "name", id_or_name, &local);
    }
    if (row == NULL) {
        if (local == NULL || g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
            dv_set_field_error(error, DV_ERROR_NOT_FOUND, "user", "user %s not found",
                               id_or_name != NULL ? id_or_name : "");
        else
            g_propagate_error(error, g_steal_pointer(&local));
    }
    return row;
}

JsonObject *
dv_auth_users_add(DvAuth *auth, const DvAuthzContext *actor, const char *name,
                  const DvSecret *password, GError **error)
{
    g_autoptr(JsonObject) rec = json_object_new();
    g_autofree char *id = g_uuid_string_random();
    g_autofree char *hash = NULL;

    if (!dv_auth_users_require(actor, "user.create", error))
        return NULL;
    if (!dv_validate_name("name", name, error))
        return NULL;
    if (!dv_auth_users_password_check(name, password, error))
        return NULL;
    hash = dv_auth_hash_password(password, error);
    if (hash == NULL)
        return NULL;
    json_object_set_string_member(rec, "id", id);
    json_object_set_string_member(rec, "name", name);
    json_object_set_string_member(rec, "password_hash", hash);
    /* users.role is read by nothing since 0007; kept NOT NULL for old builds. */
    json_object_set_string_member(rec, "role", "none");
    json_object_set_int_member(rec, "created_at", dv_store_now());
    json_object_set_boolean_member(rec, "disabled", FALSE);
    if (!dv_store_insert(dv_auth_get_store(auth), &dv_table_users, rec, error))
        return NULL;
    return dv_auth_users_public(rec);
}

JsonArray *
dv_auth_users_list(DvAuth *auth, const DvAuthzContext *actor, guint limit, const char *cursor,
                   char **ret_next_cursor, GError **error)
{
    g_autoptr(JsonArray) rows = NULL;
    JsonArray *out;

    if (!dv_auth_users_require(actor, "user.read", error))
        return NULL;
    rows = dv_store_list(dv_auth_get_store(auth), &dv_table_users, NULL, 0, limit, cursor,
                         ret_next_cursor, error);
    if (rows == NULL)
        return NULL;
    out = json_array_new();
    for (guint i = 0; i < json_array_get_length(rows); i++)
        json_array_add_object_element(out,
                                      dv_auth_users_public(json_array_get_object_element(rows, i)));
    return out;
}

JsonObject *
dv_auth_users_show(DvAuth *auth, const DvAuthzContext *actor, const char *id_or_name,
                   GError **error)
{
    DvStore *store = dv_auth_get_store(auth);
    g_autoptr(JsonObject) row = NULL;
    g_autoptr(JsonArray) rows = NULL;
    JsonArray *bindings;
    JsonObject *out;

    if (!dv_auth_users_require(actor, "user.read", error))
        return NULL;
    row = dv_auth_users_row(store, id_or_name, error);
    if (row == NULL)
        return NULL;
    rows = dv_authz_binding_list(store, "user", dv_json_get_string(row, "id", ""), error);
    if (rows == NULL)
        return NULL;
    bindings = dv_authz_bindings_to_api(store, rows, error);
    if (bindings == NULL)
        return NULL;
    out = dv_auth_users_public(row);
    json_object_set_array_member(out, "bindings", bindings);
    return out;
}

/* The last administrator stays: checked inside the changing transaction. */
static gboolean
dv_auth_users_keep_admin(DvStore *store, GError **error)
{
    gint64 n = dv_authz_count_administrators(store, error);
    if (n < 0)
        return FALSE;
    if (n == 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "user",
                           "user: this is the last enabled administrator; it cannot be "
                           "disabled, deleted or lose that role");
        return FALSE;
    }
    return TRUE;
}

typedef struct {
    const char *user_id;
    gboolean disabled;
    gboolean delete;
    const DvAuthzContext *actor;
    JsonArray *bindings;
} DvAuthUsersTxn;

static gboolean
dv_auth_users_end_sessions(DvStore *store, const char *user_id, GError **error)
{
    DvFilter f = { "user_id", DV_FILTER_EQ, user_id };
    return dv_store_delete_matching(store, &dv_table_sessions, &f, 1, error) >= 0;
}

static gboolean
dv_auth_users_change_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvAuthUsersTxn *t = user_data;

    if (t->delete) {
        DvFilter f[2] = { { "principal_kind", DV_FILTER_EQ, "user" },
                          { "principal", DV_FILTER_EQ, t->user_id } };
        if (dv_store_delete_matching(store, &dv_table_bindings, f, 2, error) < 0 ||
            !dv_store_delete(store, &dv_table_users, t->user_id, error))
            return FALSE;
    } else {
        g_autoptr(JsonObject) changes = json_object_new();
        json_object_set_boolean_member(changes, "disabled", t->disabled);
        if (!dv_store_update(store, &dv_table_users, t->user_id, changes, error))
            return FALSE;
    }
    if ((t->delete || t->disabled) && !dv_auth_users_end_sessions(store, t->user_id, error))
        return FALSE;
    return dv_auth_users_keep_admin(store, error);
}

static gboolean
dv_auth_users_change(DvAuth *auth, const DvAuthzContext *actor, const char *id_or_name,
                     const char *privilege, DvAuthUsersTxn *t, GError **error)
{
    DvStore *store = dv_auth_get_store(auth);
    g_autoptr(JsonObject) row = NULL;

    if (!dv_auth_users_require(actor, privilege, error))
        return FALSE;
    row = dv_auth_users_row(store, id_or_name, error);
    if (row == NULL)
        return FALSE;
    t->user_id = dv_json_get_string(row, "id", "");
    t->actor = actor;
    if (!dv_store_transaction(store, dv_auth_users_change_txn, t, error))
        return FALSE;
    /* After the commit, so no request rebuilds from the old rows. */
    dv_auth_forget_user(auth, t->user_id);
    return TRUE;
}

gboolean
dv_auth_users_set_disabled(DvAuth *auth, const DvAuthzContext *actor, const char *id_or_name,
                           gboolean disabled, GError **error)
{
    DvAuthUsersTxn t = { .disabled = disabled };
    return dv_auth_users_change(auth, actor, id_or_name, "user.change", &t, error);
}

gboolean
dv_auth_users_delete(DvAuth *auth, const DvAuthzContext *actor, const char *id_or_name,
                     GError **error)
{
    DvAuthUsersTxn t = { .delete = TRUE };
    return dv_auth_users_change(auth, actor, id_or_name, "user.delete", &t, error);
}

static gboolean
dv_auth_users_bindings_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvAuthUsersTxn *t = user_data;
    g_autoptr(JsonArray) old = dv_authz_binding_list(store, "user", t->user_id, error);

    if (old == NULL)
        return FALSE;
    for (guint i = 0; i < json_array_get_length(t->bindings); i++) {
        JsonNode *node = json_array_get_element(t->bindings, i);
        g_autoptr(JsonObject) spec = NULL;
        g_autoptr(JsonObject) added = NULL;
        if (!JSON_NODE_HOLDS_OBJECT(node)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "bindings",
                               "bindings[%u]: must be an object", i);
            return FALSE;
        }
        spec = json_object_ref(json_node_get_object(node));
        /* The principal is the user being set; the spec cannot name another. */
        json_object_set_string_member(spec, "principal_kind", "user");
        json_object_set_string_member(spec, "principal", t->user_id);
        added = dv_authz_binding_add(store, t->actor, spec, error);
        if (added == NULL) {
            g_prefix_error(error, "bindings[%u]: ", i);
            return FALSE;
        }
    }
    /* The new ones first, so re-stating the last administrator's binding
     * is no removal of it; removing is granting in reverse. */
    for (guint i = 0; i < json_array_get_length(old); i++) {
        JsonObject *b = json_array_get_object_element(old, i);
        if (!dv_authz_binding_delete(store, t->actor, dv_json_get_string(b, "id", ""), error))
            return FALSE;
    }
    return dv_auth_users_keep_admin(store, error);
}

gboolean
dv_auth_users_set_bindings(DvAuth *auth, const DvAuthzContext *actor, const char *id_or_name,
                           JsonArray *bindings, GError **error)
{
    DvStore *store = dv_auth_get_store(auth);
    g_autoptr(JsonObject) row = NULL;
    DvAuthUsersTxn t = { .bindings = bindings, .actor = actor };

    if (bindings == NULL || json_array_get_length(bindings) > DV_AUTHZ_BINDINGS_MAX) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "bindings",
                           "bindings: an array of at most %d", DV_AUTHZ_BINDINGS_MAX);
        return FALSE;
    }
    /* role.manage anywhere: each binding is then held to the grant rule
     * over its own scope (a delegated administrator inside its groups). */
    if (actor != NULL && !dv_authz_context_holds(actor, "role.manage")) {
        g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                    "user '%s' lacks the privilege role.manage", dv_authz_context_get_name(actor));
        return FALSE;
    }
    row = dv_auth_users_row(store, id_or_name, error);
    if (row == NULL)
        return FALSE;
    t.user_id = dv_json_get_string(row, "id", "");
    if (!dv_store_transaction(store, dv_auth_users_bindings_txn, &t, error))
        return FALSE;
    dv_auth_forget_user(auth, t.user_id);
    return TRUE;
}

/* --- API tokens ----------------------------------------------------------------- */

char *
dv_auth_token_create(DvAuth *auth, const DvAuthzContext *actor, const char *name,
                     const char *const *privileges, gint64 expires_at, JsonObject **ret_record,
                     GError **error)
{
    DvStore *store = dv_auth_get_store(auth);
    g_autoptr(JsonObject) rec = json_object_new();
    g_autoptr(DvAuthzContext) limited = NULL;
    g_autofree char *id = g_uuid_string_random();
    g_autofree char *hash = NULL;
    JsonArray *arr = json_array_new();
    gint64 now = dv_store_now();
    DvFilter f = { "user_id", DV_FILTER_EQ, NULL };
    gint64 n;
    char token[64];
    guchar raw[32];

    json_object_set_array_member(rec, "privileges", arr);
    g_return_val_if_fail(actor != NULL, NULL);
    if (!dv_validate_name("name", name, error))
        return NULL;
    if (privileges == NULL || privileges[0] == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "privileges",
                           "privileges: at least one is required");
        return NULL;
    }
    limited = dv_authz_context_restrict(actor, privileges, error);
    if (limited == NULL)
        return NULL;
    if (expires_at <= now || expires_at > now + DV_AUTHZ_TOKEN_LIFETIME_MAX_US) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "expires_at",
                           "expires_at: must be in the future and at most 366 days ahead");
        return NULL;
    }
    f.value = dv_authz_context_get_user_id(actor);
    n = dv_store_count(store, &dv_table_api_tokens, &f, 1, error);
    if (n < 0)
        return NULL;
    if (n >= DV_AUTH_TOKENS_MAX) {
        dv_set_field_error(error, DV_ERROR_TOO_LARGE, "name",
                           "name: a user may hold at most %d tokens; revoke one",
                           DV_AUTH_TOKENS_MAX);
        return NULL;
    }
    for (guint i = 0; privileges[i] != NULL; i++)
        json_array_add_string_element(arr, privileges[i]);
    randombytes_buf(raw, sizeof raw);
    memcpy(token, "dvt_", 4);
    sodium_bin2base64(token + 4, sizeof token - 4, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    hash = dv_auth_token_hash(token);
    json_object_set_string_member(rec, "id", id);
    json_object_set_string_member(rec, "user_id", dv_authz_context_get_user_id(actor));
    json_object_set_string_member(rec, "name", name);
    json_object_set_string_member(rec, "token_hash", hash);
    json_object_set_int_member(rec, "expires_at", expires_at);
    json_object_set_null_member(rec, "revoked_at");
    json_object_set_int_member(rec, "created_at", now);
    if (!dv_store_insert(store, &dv_table_api_tokens, rec, error)) {
        sodium_memzero(token, sizeof token);
        return NULL;
    }
    json_object_remove_member(rec, "token_hash");
    if (ret_record != NULL)
        *ret_record = g_steal_pointer(&rec);
    {
        char *result = g_strdup(token);
        sodium_memzero(token, sizeof token);
        return result;
    }
}

DvAuthzContext *
dv_auth_token_context(DvAuth *auth, const char *token, GError **error)
{
    DvStore *store = dv_auth_get_store(auth);
    g_autofree char *hash = NULL;
    g_autoptr(JsonObject) rec = NULL;
    g_autoptr(DvAuthzContext) user = NULL;
    g_autoptr(JsonObject) row = NULL;
    g_autoptr(GError) local = NULL;
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    g_auto(GStrv) groups = NULL;
    g_auto(GStrv) privs = NULL;
    JsonArray *arr;

    if (token == NULL || strlen(token) > 128) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED, "an API token is required");
        return NULL;
    }
    hash = dv_auth_token_hash(token);
    rec = dv_store_find(store, &dv_table_api_tokens, "token_hash", hash, &local);
    if (rec == NULL) {
        if (!g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED, "unknown API token");
        return NULL;
    }
    if (json_object_has_member(rec, "revoked_at") &&
        !json_object_get_null_member(rec, "revoked_at")) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED, "this API token was revoked");
        return NULL;
    }
    if (dv_json_get_int(rec, "expires_at", 0) <= dv_store_now()) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED, "this API token expired");
        return NULL;
    }
    /* A directory user's token keeps its groups' bindings (and denies):
     * read from the directory as a session on another server does. */
    row = dv_store_get(store, &dv_table_users, dv_json_get_string(rec, "user_id", ""), &local);
    if (row == NULL) {
        if (!g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED,
                            "this API token's user no longer exists");
        return NULL;
    }
    if (dv_json_get_bool(row, "disabled", FALSE)) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED, "this user is disabled");
        return NULL;
    }
    groups = dv_auth_user_groups(auth, row, error);
    if (groups == NULL)
        return NULL;
    user = dv_authz_context_new(store, dv_json_get_string(rec, "user_id", ""),
                                (const char *const *)groups, error);
    if (user == NULL)
        return NULL;
    arr = dv_json_get_array(rec, "privileges");
    for (guint i = 0; arr != NULL && i < json_array_get_length(arr); i++)
        g_strv_builder_add(b, json_array_get_string_element(arr, i));
    privs = g_strv_builder_end(b);
    /* Checked again at use: a user who lost a privilege loses it in its
     * tokens too. */
    return dv_authz_context_restrict(user, (const char *const *)privs, error);
}

gboolean
dv_auth_token_revoke(DvAuth *auth, const DvAuthzContext *actor, const char *id, GError **error)
{
    DvStore *store = dv_auth_get_store(auth);
    g_autoptr(JsonObject) rec = dv_store_get(store, &dv_table_api_tokens, id, error);
    g_autoptr(JsonObject) changes = json_object_new();

    if (rec == NULL)
        return FALSE;
    if (actor != NULL &&
        g_strcmp0(dv_json_get_string(rec, "user_id", ""), dv_authz_context_get_user_id(actor)) !=
            0 &&
        !dv_auth_users_require(actor, "user.manage", error))
        return FALSE;
    json_object_set_int_member(changes, "revoked_at", dv_store_now());
    return dv_store_update(store, &dv_table_api_tokens, id, changes, error);
}

/* --- sessions and tokens of a user ----------------------------------------- */

static gboolean
dv_auth_users_manages(const DvAuthzContext *actor)
{
    DvAuthzObject global = { .kind = "user" };
    return actor == NULL || dv_authz_decide(actor, "user.manage", &global) == DV_AUTHZ_ALLOW;
}

/* The id of the user whose records @actor asks for (owned): its own (@name
 * NULL or its own name), or anyone's with user.manage (403 otherwise). */
static char *
dv_auth_users_subject(DvAuth *auth, const DvAuthzContext *actor, const char *name, GError **error)
{
    g_autoptr(JsonObject) user = NULL;

    if (actor != NULL && (name == NULL || g_strcmp0(name, dv_authz_context_get_name(actor)) == 0))
        return g_strdup(dv_authz_context_get_user_id(actor));
    if (!dv_auth_users_manages(actor)) {
        dv_set_field_error(error, DV_ERROR_PERMISSION_DENIED, "user",
                           "user: another user's records need user.manage");
        return NULL;
    }
    if (name != NULL && strlen(name) <= DV_NAME_MAX)
        user = dv_store_find(dv_auth_get_store(auth), &dv_table_users, "name", name, NULL);
    if (user == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "user", "user: no user '%s'",
                           name != NULL ? name : "");
        return NULL;
    }
    return g_strdup(dv_json_get_string(user, "id", ""));
}

JsonArray *
dv_auth_sessions_list(DvAuth *auth, const DvAuthzContext *actor, const char *user,
                      const char *token, guint limit, const char *cursor, char **ret_next_cursor,
                      GError **error)
{
    g_autofree char *user_id = dv_auth_users_subject(auth, actor, user, error);
    g_autoptr(JsonArray) rows = NULL;
    g_autoptr(JsonObject) me = NULL;
    JsonArray *items;
    DvFilter filter;

    if (user_id == NULL)
        return NULL;
    filter = (DvFilter){ .column = "user_id", .op = DV_FILTER_EQ, .value = user_id };
    rows = dv_store_list(dv_auth_get_store(auth), &dv_table_sessions, &filter, 1, limit, cursor,
                         ret_next_cursor, error);
    if (rows == NULL)
        return NULL;
    if (token != NULL)
        me = dv_auth_check_token(auth, token, NULL);
    items = json_array_new();
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *row = json_array_get_object_element(rows, i);
        JsonObject *o = json_object_new();
        const char *id = dv_json_get_string(row, "id", "");
        json_object_set_string_member(o, "id", id);
        json_object_set_string_member(
            o, "user",
            user != NULL ? user : (actor != NULL ? dv_authz_context_get_name(actor) : ""));
        json_object_set_int_member(o, "created_at", dv_json_get_int(row, "created_at", 0));
        json_object_set_int_member(o, "expires_at", dv_json_get_int(row, "expires_at", 0));
        json_object_set_boolean_member(
            o, "current", g_strcmp0(id, dv_json_get_string(me, "session_id", NULL)) == 0);
        json_array_add_object_element(items, o);
    }
    return items;
}

gboolean
dv_auth_session_revoke(DvAuth *auth, const DvAuthzContext *actor, const char *id, GError **error)
{
    DvStore *store = dv_auth_get_store(auth);
    g_autoptr(JsonObject) row =
        id != NULL ? dv_store_get(store, &dv_table_sessions, id, NULL) : NULL;

    /* Another user's session is "not found" without user.manage, as if
     * absent: session ids are not for others to probe. */
    if (row == NULL || (actor != NULL &&
                        g_strcmp0(dv_json_get_string(row, "user_id", NULL),
                                  dv_authz_context_get_user_id(actor)) != 0 &&
                        !dv_auth_users_manages(actor))) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "session '%s' not found",
                    id != NULL ? id : "");
        return FALSE;
    }
    if (!dv_store_delete(store, &dv_table_sessions, id, error))
        return FALSE;
    /* Its cached entry goes too: the very next request with it is 401. */
    dv_auth_forget_user(auth, dv_json_get_string(row, "user_id", ""));
    return TRUE;
}

JsonArray *
dv_auth_tokens_list(DvAuth *auth, const DvAuthzContext *actor, const char *user, guint limit,
                    const char *cursor, char **ret_next_cursor, GError **error)
{
    g_autofree char *user_id = dv_auth_users_subject(auth, actor, user, error);
    g_autoptr(JsonArray) rows = NULL;
    JsonArray *items;
    DvFilter filter;

    if (user_id == NULL)
        return NULL;
    filter = (DvFilter){ .column = "user_id", .op = DV_FILTER_EQ, .value = user_id };
    rows = dv_store_list(dv_auth_get_store(auth), &dv_table_api_tokens, &filter, 1, limit, cursor,
                         ret_next_cursor, error);
    if (rows == NULL)
        return NULL;
    items = json_array_new();
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *row = json_object_ref(json_array_get_object_element(rows, i));
        /* Never the hash: the token is shown once, when made. */
        json_object_remove_member(row, "token_hash");
        /* Named as a session's user is (drover token list shows it). */
        json_object_set_string_member(
            row, "user",
            user != NULL ? user : (actor != NULL ? dv_authz_context_get_name(actor) : ""));
        json_array_add_object_element(items, row);
    }
    return items;
}
