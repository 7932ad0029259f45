#define G_LOG_DOMAIN "DvAccessOps"

/* The session and access-control operations (docs/API.md, "Sessions" and
 * "Access control").  Each handler turns the REST shape into a call of
 * src/engine/auth/, which checks the privilege again and every rule (last
 * administrator, grant only a subset, password rules...). */

#include "dv-access.h"
#include "dv-auth-users.h"
#include "dv-authz.h"
#include "dv-secret.h"

#include <string.h>

static DvAuth *
dv_access_auth(DvOpCall *call)
{
    return dv_core(call->engine)->auth;
}

static JsonObject *
dv_access_items(JsonArray *items, const char *next_cursor)
{
    JsonObject *out = json_object_new();
    json_object_set_array_member(out, "items", items);
    if (next_cursor != NULL)
        json_object_set_string_member(out, "next_cursor", next_cursor);
    else
        json_object_set_null_member(out, "next_cursor");
    return out;
}

static const char *
dv_access_query(DvOpCall *call, const char *name)
{
    return call->query != NULL ? g_hash_table_lookup(call->query, name) : NULL;
}

static gboolean
dv_access_limit(DvOpCall *call, guint *ret_limit, GError **error)
{
    const char *s = dv_access_query(call, "limit");
    guint64 v = 100;
    if (s != NULL && !g_ascii_string_to_unsigned(s, 10, 1, 1000, &v, NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "limit",
                           "limit: must be a number from 1 to 1000");
        return FALSE;
    }
    *ret_limit = (guint)v;
    return TRUE;
}

/* The query parameters of the lists here, for the contract (DvOp.query):
 * the handlers read them with dv_access_query() and dv_access_limit(). */
#define DV_ACCESS_PAGE_QUERY                                                                       \
    { "limit", DV_FIELD_INT, FALSE, "page size (default 100)", .min = 1, .max = 1000 },            \
        { "cursor", DV_FIELD_STRING, FALSE, "the previous page's next_cursor" }

static const DvFieldSpec dv_access_no_query[] = {
    { NULL },
};

static const DvFieldSpec dv_access_page_query[] = {
    DV_ACCESS_PAGE_QUERY,
    { NULL },
};

static const DvFieldSpec dv_access_subject_query[] = {
    DV_ACCESS_PAGE_QUERY,
    { "user", DV_FIELD_STRING, FALSE, "another user's (needs user.manage)" },
    { NULL },
};

static const DvFieldSpec dv_access_binding_query[] = {
    { "user", DV_FIELD_STRING, FALSE, "exactly one of user or group" },
    { "group", DV_FIELD_STRING, FALSE, "exactly one of user or group" },
    { NULL },
};

static const DvFieldSpec dv_access_audit_query[] = {
    DV_ACCESS_PAGE_QUERY,
    { "user", DV_FIELD_STRING, FALSE },
    { "operation", DV_FIELD_STRING, FALSE, "an operation name (vm.start)" },
    { "outcome", DV_FIELD_STRING, FALSE, "allowed, refused or failed" },
    { "object", DV_FIELD_STRING, FALSE, "an object id" },
    { NULL },
};

/* --- sessions ------------------------------------------------------------- */

static const DvFieldSpec dv_access_login_fields[] = {
    { "user", DV_FIELD_STRING, TRUE, "a local or directory user name" },
    { "password", DV_FIELD_STRING, TRUE, .max_len = DV_AUTH_PASSWORD_MAX },
    { NULL },
};

static JsonObject *
dv_access_login(DvOpCall *call, GError **error)
{
    g_autoptr(DvSecret) password = NULL;
    g_autoptr(JsonObject) user = NULL;
    JsonObject *out;
    char *token;
    const char *pw;
    const char *name;

    pw = dv_json_get_string(call->body, "password", "");
    name = dv_json_get_string(call->body, "user", "");
    if (strlen(pw) > DV_AUTH_PASSWORD_MAX) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "password",
                           "password: must be at most %d bytes", DV_AUTH_PASSWORD_MAX);
        return NULL;
    }
    password = dv_secret_new_from_string(pw);
    token = dv_auth_login(dv_access_auth(call), name, call->peer, password, &user, error);
    if (token == NULL) {
        if (error != NULL && g_error_matches(*error, DV_ERROR, DV_ERROR_BUSY))
            call->retry_after = dv_auth_login_retry_after(dv_access_auth(call), name, call->peer);
        return NULL;
    }
    out = json_object_new();
    json_object_set_string_member(out, "token", token);
    dv_secret_str_free(token);
    json_object_set_string_member(out, "user", dv_json_get_string(user, "name", ""));
    json_object_set_string_member(out, "role", dv_json_get_string(user, "role", ""));
    json_object_set_int_member(out, "expires_at", dv_json_get_int(user, "expires_at", 0));
    return out;
}

static JsonObject *
dv_access_logout(DvOpCall *call, GError **error)
{
    if (!dv_auth_logout(dv_access_auth(call), call->token, error))
        return NULL;
    return json_object_new();
}

/* Who am I: the session's user with what it holds anywhere.  Its bindings
 * in the shape every binding answer has (dv_authz_binding_to_api()), read
 * again by id for their names and quotas; one removed since the context
 * was built keeps the context's form. */
static JsonObject *
dv_access_whoami(DvOpCall *call, GError **error)
{
    DvStore *store = dv_core(call->engine)->store;
    g_autoptr(JsonObject) out = dv_authz_context_to_json(call->authz);
    JsonArray *held = dv_json_get_array(out, "bindings");
    g_autoptr(JsonArray) shaped = json_array_new();

    for (guint i = 0; held != NULL && i < json_array_get_length(held); i++) {
        JsonObject *b = json_array_get_object_element(held, i);
        g_autoptr(GError) local = NULL;
        g_autoptr(JsonObject) row =
            dv_store_get(store, &dv_table_bindings, dv_json_get_string(b, "id", ""), &local);
        JsonObject *api;
        if (row == NULL && !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        api = dv_authz_binding_to_api(store, row != NULL ? row : b, error);
        if (api == NULL)
            return NULL;
        json_array_add_object_element(shaped, api);
    }
    json_object_set_array_member(out, "bindings", g_steal_pointer(&shaped));
    json_object_set_string_member(out, "user", dv_actor_get_name(call->actor));
    return g_steal_pointer(&out);
}

static const DvFieldSpec dv_access_password_fields[] = {
    { "current_password", DV_FIELD_STRING, TRUE },
    { "new_password", DV_FIELD_STRING, TRUE, .max_len = DV_AUTH_PASSWORD_MAX },
    { NULL },
};

static JsonObject *
dv_access_password(DvOpCall *call, GError **error)
{
    g_autoptr(DvSecret) current = NULL;
    g_autoptr(DvSecret) new_password = NULL;

    current = dv_secret_new_from_string(dv_json_get_string(call->body, "current_password", ""));
    new_password = dv_secret_new_from_string(dv_json_get_string(call->body, "new_password", ""));
    if (!dv_auth_change_password(dv_access_auth(call), call->token, call->peer, current,
                                 new_password, error)) {
        if (error != NULL && g_error_matches(*error, DV_ERROR, DV_ERROR_BUSY))
            call->retry_after = dv_auth_login_retry_after(
                dv_access_auth(call), dv_actor_get_name(call->actor), call->peer);
        return NULL;
    }
    return json_object_new();
}

/* --- privileges and roles ------------------------------------------------- */

static JsonObject *
dv_access_privileges(DvOpCall *call, GError **error)
{
    JsonArray *items = json_array_new();
    for (const char *const *p = dv_authz_privileges(); *p != NULL; p++) {
        JsonObject *o = json_object_new();
        json_object_set_string_member(o, "name", *p);
        json_array_add_object_element(items, o);
    }
    return dv_access_items(items, NULL);
}

static JsonObject *
dv_access_roles(DvOpCall *call, GError **error)
{
    JsonArray *items = dv_authz_role_list(dv_core(call->engine)->store, error);
    if (items == NULL)
        return NULL;
    return dv_access_items(items, NULL);
}

static JsonObject *
dv_access_role_get(DvOpCall *call, GError **error)
{
    return dv_authz_role_get(dv_core(call->engine)->store, call->params[0], error);
}

static const DvFieldSpec dv_access_role_fields[] = {
    { "name", DV_FIELD_STRING, TRUE },
    { "privileges", DV_FIELD_ARRAY, TRUE, "privilege names (GET /privileges)" },
    { "description", DV_FIELD_STRING, FALSE },
    { NULL },
};

static JsonObject *
dv_access_role_create(DvOpCall *call, GError **error)
{
    g_autoptr(GPtrArray) privs = g_ptr_array_new();
    JsonArray *arr;

    arr = json_object_get_array_member(call->body, "privileges");
    for (guint i = 0; i < json_array_get_length(arr); i++) {
        JsonNode *n = json_array_get_element(arr, i);
        if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "privileges",
                               "privileges: must be a list of privilege names");
            return NULL;
        }
        g_ptr_array_add(privs, (gpointer)json_node_get_string(n));
    }
    g_ptr_array_add(privs, NULL);
    return dv_authz_role_create(dv_core(call->engine)->store, call->authz,
                                dv_json_get_string(call->body, "name", ""),
                                (const char *const *)privs->pdata,
                                dv_json_get_string(call->body, "description", NULL), error);
}

static JsonObject *
dv_access_role_delete(DvOpCall *call, GError **error)
{
    if (!dv_authz_role_delete(dv_core(call->engine)->store, call->authz, call->params[0], error))
        return NULL;
    return json_object_new();
}

/* --- users ---------------------------------------------------------------- */

static JsonObject *
dv_access_users(DvOpCall *call, GError **error)
{
    g_autofree char *next = NULL;
    guint limit;
    JsonArray *items;
    if (!dv_access_limit(call, &limit, error))
        return NULL;
    items = dv_auth_users_list(dv_access_auth(call), call->authz, limit,
                               dv_access_query(call, "cursor"), &next, error);
    if (items == NULL)
        return NULL;
    return dv_access_items(items, next);
}

static JsonObject *
dv_access_user_get(DvOpCall *call, GError **error)
{
    return dv_auth_users_show(dv_access_auth(call), call->authz, call->params[0], error);
}

static const DvFieldSpec dv_access_user_fields[] = {
    { "name", DV_FIELD_STRING, TRUE },
    { "password", DV_FIELD_STRING, TRUE, .max_len = DV_AUTH_PASSWORD_MAX },
    { "role", DV_FIELD_STRING, FALSE, "a role bound globally (GET /roles)" },
    { NULL },
};

static JsonObject *
dv_access_user_create(DvOpCall *call, GError **error)
{
    g_autoptr(DvSecret) password = NULL;
    g_autoptr(JsonObject) user = NULL;
    const char *role;

    role = dv_json_get_string(call->body, "role", NULL);
    if (role != NULL) {
        /* Checked before the user is made, so a bad role changes nothing. */
        g_autoptr(GError) local = NULL;
        g_autoptr(JsonObject) r = dv_authz_role_get(dv_core(call->engine)->store, role, &local);
        if (r == NULL) {
            if (!g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
                g_propagate_error(error, g_steal_pointer(&local));
                return NULL;
            }
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "role",
                               "role: no role '%s' (GET /roles lists them)", role);
            return NULL;
        }
    }
    password = dv_secret_new_from_string(dv_json_get_string(call->body, "password", ""));
    user = dv_auth_users_add(dv_access_auth(call), call->authz,
                             dv_json_get_string(call->body, "name", ""), password, error);
    if (user == NULL)
        return NULL;
    if (role != NULL) {
        g_autoptr(JsonArray) bindings = json_array_new();
        JsonObject *b = json_object_new();
        json_object_set_string_member(b, "role", role);
        json_object_set_string_member(b, "scope_kind", "global");
        json_array_add_object_element(bindings, b);
        if (!dv_auth_users_set_bindings(dv_access_auth(call), call->authz,
                                        dv_json_get_string(user, "id", ""), bindings, error)) {
            /* The grant was refused: take the new user back, so nothing changed. */
            if (!dv_auth_users_delete(dv_access_auth(call), NULL,
                                      dv_json_get_string(user, "id", ""), NULL)) {
                /* Deliberately dropped: the refusal above is the answer. */
            }
            return NULL;
        }
    }
    return g_steal_pointer(&user);
}

static const DvFieldSpec dv_access_user_change_fields[] = {
    { "disabled", DV_FIELD_BOOL, TRUE },
    { NULL },
};

static JsonObject *
dv_access_user_change(DvOpCall *call, GError **error)
{
    if (!dv_auth_users_set_disabled(dv_access_auth(call), call->authz, call->params[0],
                                    json_object_get_boolean_member(call->body, "disabled"), error))
        return NULL;
    {
        g_autoptr(JsonObject) user =
            dv_auth_users_show(dv_access_auth(call), call->authz, call->params[0], error);
        if (user == NULL)
            return NULL;
        json_object_remove_member(user, "bindings");
        return g_steal_pointer(&user);
    }
}

static JsonObject *
dv_access_user_delete(DvOpCall *call, GError **error)
{
    if (!dv_auth_users_delete(dv_access_auth(call), call->authz, call->params[0], error))
        return NULL;
    return json_object_new();
}

/* --- bindings ------------------------------------------------------------- */

static JsonObject *
dv_access_bindings(DvOpCall *call, GError **error)
{
    const char *user = dv_access_query(call, "user");
    const char *group = dv_access_query(call, "group");
    g_autoptr(JsonArray) rows = NULL;
    JsonArray *items;
    if ((user == NULL) == (group == NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "user",
                           "user: give exactly one of user= or group=");
        return NULL;
    }
    rows = dv_authz_binding_list(dv_core(call->engine)->store, user != NULL ? "user" : "group",
                                 user != NULL ? user : group, error);
    if (rows == NULL)
        return NULL;
    items = dv_authz_bindings_to_api(dv_core(call->engine)->store, rows, error);
    if (items == NULL)
        return NULL;
    return dv_access_items(items, NULL);
}

/* A binding changed: the cached contexts of the sessions it concerns are
 * dropped, so the very next request of those users sees it.  A group's
 * members are not known here (the directory says at login): every user's
 * are dropped, an administrator's rare change. */
static void
dv_access_forget_principal(DvOpCall *call, JsonObject *binding)
{
    DvStore *store = dv_core(call->engine)->store;
    g_autofree char *cursor = NULL;

    if (g_strcmp0(dv_json_get_string(binding, "principal_kind", NULL), "user") == 0) {
        dv_auth_forget_user(dv_access_auth(call), dv_json_get_string(binding, "principal", ""));
        return;
    }
    do {
        g_autofree char *next = NULL;
        g_autoptr(JsonArray) users =
            dv_store_list(store, &dv_table_users, NULL, 0, 500, cursor, &next, NULL);
        for (guint i = 0; users != NULL && i < json_array_get_length(users); i++)
            dv_auth_forget_user(dv_access_auth(call),
                                dv_json_get_string(json_array_get_object_element(users, i), "id",
                                                   ""));
        g_free(cursor);
        cursor = users != NULL ? g_steal_pointer(&next) : NULL;
    } while (cursor != NULL);
}

/* Auth names the fields of its binding spec; the API's are those of the
 * REST body (docs/API.md, "Bindings"). */
static void
dv_access_rename_field(GError *local, GError **error)
{
    static const struct {
        const char *spec;
        const char *api;
    } names[] = {
        { "scope_id", "scope.ref" },
        { "scope_kind", "scope.kind" },
        { "principal", "user" },
        { "principal_kind", "user" },
        { "member_quota", "quota.per_member" },
    };
    const char *field = dv_error_get_field(local);
    for (gsize i = 0; field != NULL && i < G_N_ELEMENTS(names); i++) {
        if (strcmp(field, names[i].spec) == 0) {
            const char *msg = local->message;
            gsize n = strlen(names[i].spec);
            if (strncmp(msg, names[i].spec, n) == 0 && msg[n] == ':')
                msg += n + 1;
            dv_set_field_error(error, (DvErrorCode)local->code, names[i].api, "%s:%s", names[i].api,
                               msg);
            return;
        }
    }
    g_propagate_error(error, g_error_copy(local));
}

/* Binding scopes named by the REST body, and the kinds their refs resolve in. */
static const struct {
    const char *name;
    DvKind kind;
} dv_access_scope_kinds[] = {
    { "host_group", DV_KIND_HOST_GROUP },
    { "catalog", DV_KIND_CATALOG },
    { "library_share", DV_KIND_LIBRARY_SHARE },
    { "run_as", DV_KIND_RUN_AS },
};

static const DvFieldSpec dv_access_binding_fields[] = {
    { "user", DV_FIELD_STRING, FALSE, "exactly one of user or group" },
    { "group", DV_FIELD_STRING, FALSE, "exactly one of user or group" },
    { "role", DV_FIELD_STRING, TRUE },
    { "scope", DV_FIELD_OBJECT, FALSE, "{kind, ref}; absent: global" },
    { "effect", DV_FIELD_STRING, FALSE, "allow (default) or deny" },
    { "quota", DV_FIELD_OBJECT, FALSE, "{vms, vcpus, memory_mib, storage_gib, per_member}" },
    { NULL },
};

static JsonObject *
dv_access_binding_create(DvOpCall *call, GError **error)
{
    g_autoptr(JsonObject) spec = json_object_new();
    const char *user;
    const char *group;

    user = dv_json_get_string(call->body, "user", NULL);
    group = dv_json_get_string(call->body, "group", NULL);
    if ((user == NULL) == (group == NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "user",
                           "user: give exactly one of user or group");
        return NULL;
    }
    json_object_set_string_member(spec, "principal_kind", user != NULL ? "user" : "group");
    json_object_set_string_member(spec, "principal", user != NULL ? user : group);
    json_object_set_string_member(spec, "role", dv_json_get_string(call->body, "role", ""));
    json_object_set_string_member(spec, "effect",
                                  dv_json_get_string(call->body, "effect", "allow"));
    if (json_object_has_member(call->body, "scope")) {
        JsonObject *scope = json_object_get_object_member(call->body, "scope");
        const char *kind = dv_json_get_string(scope, "kind", "");
        const char *ref = dv_json_get_string(scope, "ref", "");
        g_autoptr(JsonObject) target = NULL;
        /* The contract takes an id or a name; the model stores ids.  Whether
         * the granting actor may grant over it is the grant rule's answer
         * (403), as for an id. */
        for (gsize i = 0; i < G_N_ELEMENTS(dv_access_scope_kinds); i++) {
            if (g_strcmp0(kind, dv_access_scope_kinds[i].name) != 0)
                continue;
            g_autoptr(GError) local = NULL;
            target = dv_core_resolve(call->engine, dv_access_scope_kinds[i].kind, ref, "scope.ref",
                                     &local);
            /* A scope that does not exist is bad input of the binding,
             * not a missing route object. */
            if (target == NULL && g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "scope.ref", "scope.ref: %s",
                                   local->message);
                return NULL;
            }
            if (target == NULL) {
                g_propagate_error(error, g_steal_pointer(&local));
                return NULL;
            }
            ref = dv_json_get_string(target, "id", ref);
        }
        json_object_set_string_member(spec, "scope_kind", kind);
        json_object_set_string_member(spec, "scope_id", ref);
    } else {
        json_object_set_string_member(spec, "scope_kind", "global");
    }
    if (json_object_has_member(call->body, "quota")) {
        JsonObject *q = json_object_get_object_member(call->body, "quota");
        g_autoptr(JsonNode) copy = json_node_copy(json_object_get_member(call->body, "quota"));
        JsonObject *total = json_node_get_object(copy);
        if (json_object_has_member(q, "per_member")) {
            json_object_set_member(spec, "member_quota",
                                   json_node_copy(json_object_get_member(q, "per_member")));
            json_object_remove_member(total, "per_member");
        }
        json_object_set_object_member(spec, "quota", json_object_ref(total));
    }
    {
        g_autoptr(GError) local = NULL;
        g_autoptr(JsonObject) row =
            dv_authz_binding_add(dv_core(call->engine)->store, call->authz, spec, &local);
        if (row == NULL) {
            dv_access_rename_field(local, error);
            return NULL;
        }
        dv_access_forget_principal(call, row);
        return dv_authz_binding_to_api(dv_core(call->engine)->store, row, error);
    }
}

static JsonObject *
dv_access_binding_delete(DvOpCall *call, GError **error)
{
    g_autoptr(JsonObject) binding =
        dv_store_get(dv_core(call->engine)->store, &dv_table_bindings, call->params[0], NULL);
    if (!dv_authz_binding_delete(dv_core(call->engine)->store, call->authz, call->params[0], error))
        return NULL;
    if (binding != NULL)
        dv_access_forget_principal(call, binding);
    return json_object_new();
}

/* --- tokens --------------------------------------------------------------- */

static const DvFieldSpec dv_access_token_fields[] = {
    { "name", DV_FIELD_STRING, TRUE },
    { "expires_in_days", DV_FIELD_INT, FALSE, "default 90", .min = 1, .max = 365 },
    { "privileges", DV_FIELD_ARRAY, FALSE, "a subset of the user's; default: all of them" },
    { NULL },
};

static JsonObject *
dv_access_token_create(DvOpCall *call, GError **error)
{
    g_autoptr(GPtrArray) privs = g_ptr_array_new();
    g_autoptr(JsonObject) record = NULL;
    gint64 days;
    char *token;

    days = dv_json_get_int(call->body, "expires_in_days", 90);
    if (days < 1 || days > 365) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "expires_in_days",
                           "expires_in_days: must be 1 to 365");
        return NULL;
    }
    if (json_object_has_member(call->body, "privileges")) {
        JsonArray *arr = json_object_get_array_member(call->body, "privileges");
        for (guint i = 0; i < json_array_get_length(arr); i++) {
            JsonNode *n = json_array_get_element(arr, i);
            if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "privileges",
                                   "privileges: must be a list of privilege names");
                return NULL;
            }
            g_ptr_array_add(privs, (gpointer)json_node_get_string(n));
        }
    } else {
        /* Default: every privilege the user holds anywhere. */
        for (const char *const *p = dv_authz_privileges(); *p != NULL; p++)
            if (dv_authz_context_holds(call->authz, *p))
                g_ptr_array_add(privs, (gpointer)*p);
    }
    g_ptr_array_add(privs, NULL);
    token = dv_auth_token_create(dv_access_auth(call), call->authz,
                                 dv_json_get_string(call->body, "name", ""),
                                 (const char *const *)privs->pdata,
                                 g_get_real_time() + days * G_TIME_SPAN_DAY, &record, error);
    if (token == NULL)
        return NULL;
    json_object_set_string_member(record, "token", token);
    dv_secret_str_free(token);
    return g_steal_pointer(&record);
}

static JsonObject *
dv_access_token_delete(DvOpCall *call, GError **error)
{
    if (!dv_auth_token_revoke(dv_access_auth(call), call->authz, call->params[0], error))
        return NULL;
    return json_object_new();
}

/* --- sessions and tokens of a user ---------------------------------------- */

/* The caller's own (?user= absent or its own name), or anyone's with
 * user.manage: src/engine/auth decides and reads. */
static JsonObject *
dv_access_sessions(DvOpCall *call, GError **error)
{
    g_autofree char *next = NULL;
    JsonArray *items;
    guint limit;

    if (!dv_access_limit(call, &limit, error))
        return NULL;
    items =
        dv_auth_sessions_list(dv_access_auth(call), call->authz, dv_access_query(call, "user"),
                              call->token, limit, dv_access_query(call, "cursor"), &next, error);
    if (items == NULL)
        return NULL;
    return dv_access_items(items, next);
}

static JsonObject *
dv_access_session_delete(DvOpCall *call, GError **error)
{
    if (!dv_auth_session_revoke(dv_access_auth(call), call->authz, call->params[0], error))
        return NULL;
    return json_object_new();
}

static JsonObject *
dv_access_tokens(DvOpCall *call, GError **error)
{
    g_autofree char *next = NULL;
    JsonArray *items;
    guint limit;

    if (!dv_access_limit(call, &limit, error))
        return NULL;
    items = dv_auth_tokens_list(dv_access_auth(call), call->authz, dv_access_query(call, "user"),
                                limit, dv_access_query(call, "cursor"), &next, error);
    if (items == NULL)
        return NULL;
    return dv_access_items(items, next);
}

/* --- audit ---------------------------------------------------------------- */

static JsonObject *
dv_access_audit(DvOpCall *call, GError **error)
{
    static const struct {
        const char *query;
        const char *column;
    } filters[] = {
        { "user", "actor_name" },
        { "operation", "operation" },
        { "outcome", "outcome" },
        { "object", "object_id" },
    };
    /* The API's words for what the daemon records (the model's own words
     * are accepted as they are). */
    static const char *const outcomes[][2] = {
        { "allowed", "ok" },
        { "refused", "forbidden" },
        { "failed", "failed" },
    };
    static const char *const copied[] = { "id",      "operation", "object_kind",   "object_id",
                                          "job_id",  "detail",    "host_group_id", "scope_kind",
                                          "scope_id" };
    DvFilter f[G_N_ELEMENTS(filters)];
    guint nf = 0;
    guint limit;
    g_autofree char *next = NULL;
    g_autoptr(JsonArray) rows = NULL;
    JsonArray *items;

    if (!dv_access_limit(call, &limit, error))
        return NULL;
    for (gsize i = 0; i < G_N_ELEMENTS(filters); i++) {
        const char *v = dv_access_query(call, filters[i].query);
        if (v == NULL)
            continue;
        for (gsize k = 0; strcmp(filters[i].query, "outcome") == 0 && k < G_N_ELEMENTS(outcomes);
             k++)
            if (strcmp(v, outcomes[k][0]) == 0)
                v = outcomes[k][1];
        f[nf] = (DvFilter){ .column = filters[i].column, .op = DV_FILTER_EQ, .value = v };
        nf++;
    }
    rows = dv_audit_list_for(dv_core(call->engine)->store, call->authz, f, nf, limit,
                             dv_access_query(call, "cursor"), &next, error);
    if (rows == NULL)
        return NULL;
    items = json_array_new();
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *row = json_array_get_object_element(rows, i);
        JsonObject *o = json_object_new();
        const char *outcome = dv_json_get_string(row, "outcome", "");
        const char *shown = "failed";

        if (strcmp(outcome, "ok") == 0)
            shown = "allowed";
        else if (strcmp(outcome, "forbidden") == 0 || strcmp(outcome, "not-found") == 0)
            shown = "refused";
        g_autofree char *at = dv_json_format_time(dv_json_get_int(row, "at", 0));

        /* "at" is not a "*_at" member, which the daemon formats: a new
         * route, so its time is a string from the start. */
        json_object_set_string_member(o, "at", at);
        json_object_set_string_member(o, "user", dv_json_get_string(row, "actor_name", NULL));
        json_object_set_string_member(o, "source", dv_json_get_string(row, "address", NULL));
        for (gsize k = 0; k < G_N_ELEMENTS(copied); k++)
            json_object_set_string_member(o, copied[k], dv_json_get_string(row, copied[k], NULL));
        json_object_set_string_member(o, "outcome", shown);
        json_array_add_object_element(items, o);
    }
    return dv_access_items(items, next);
}

/* --- the table ------------------------------------------------------------ */

/* Further members (.fields, .query) follow the handler. */
#define DV_ACCESS_ROW(n, m, p, priv, k, tgt, lk, sh, b, fl, h, ...)                                \
    {                                                                                              \
        .name = n, .method = m, .path = p, .privilege = priv, .kind = k, .object = DV_KIND_LAST,   \
        .target = tgt, .lock = lk, .shape = sh, .body = b, .flags = fl, .handler = h, __VA_ARGS__  \
    }

static const DvOp dv_access_ops[] = {
    DV_ACCESS_ROW("session.login", "POST", "/session", NULL, NULL, DV_OP_TARGET_NONE,
                  DV_OP_LOCK_NONE, DV_OP_SHAPE_CREATED, DV_OP_BODY_REQUIRED, DV_OP_FLAG_PUBLIC,
                  dv_access_login,
                  .fields = dv_access_login_fields),
    DV_ACCESS_ROW("session.logout", "DELETE", "/session", NULL, NULL, DV_OP_TARGET_NONE,
                  DV_OP_LOCK_NONE, DV_OP_SHAPE_EMPTY, DV_OP_BODY_IGNORED, DV_OP_FLAG_SESSION,
                  dv_access_logout),
    DV_ACCESS_ROW("session.get", "GET", "/session", NULL, NULL, DV_OP_TARGET_NONE, DV_OP_LOCK_NONE,
                  DV_OP_SHAPE_OBJECT, DV_OP_BODY_IGNORED, DV_OP_FLAG_SESSION | DV_OP_FLAG_NO_QUERY,
                  dv_access_whoami),
    DV_ACCESS_ROW("session.password", "POST", "/session/password", NULL, NULL, DV_OP_TARGET_NONE,
                  DV_OP_LOCK_NONE, DV_OP_SHAPE_EMPTY, DV_OP_BODY_REQUIRED,
                  DV_OP_FLAG_SESSION | DV_OP_FLAG_NO_QUERY, dv_access_password,
                  .fields = dv_access_password_fields),
    DV_ACCESS_ROW("privilege.list", "GET", "/privileges", "role.read", "role", DV_OP_TARGET_GLOBAL,
                  DV_OP_LOCK_NONE, DV_OP_SHAPE_LIST, DV_OP_BODY_IGNORED, DV_OP_FLAG_NO_QUERY,
                  dv_access_privileges),
    DV_ACCESS_ROW("role.list", "GET", "/roles", "role.read", "role", DV_OP_TARGET_GLOBAL,
                  DV_OP_LOCK_NONE, DV_OP_SHAPE_LIST, DV_OP_BODY_IGNORED, DV_OP_FLAG_NONE,
                  dv_access_roles,
                  .query = dv_access_no_query),
    DV_ACCESS_ROW("role.create", "POST", "/roles", "role.create", "role", DV_OP_TARGET_GLOBAL,
                  DV_OP_LOCK_GLOBAL, DV_OP_SHAPE_CREATED, DV_OP_BODY_REQUIRED, DV_OP_FLAG_NO_QUERY,
                  dv_access_role_create,
                  .fields = dv_access_role_fields),
    DV_ACCESS_ROW("role.get", "GET", "/roles/{ref}", "role.read", "role", DV_OP_TARGET_GLOBAL,
                  DV_OP_LOCK_NONE, DV_OP_SHAPE_OBJECT, DV_OP_BODY_IGNORED, DV_OP_FLAG_NO_QUERY,
                  dv_access_role_get),
    DV_ACCESS_ROW("role.delete", "DELETE", "/roles/{ref}", "role.delete", "role",
                  DV_OP_TARGET_GLOBAL, DV_OP_LOCK_GLOBAL, DV_OP_SHAPE_EMPTY, DV_OP_BODY_NONE,
                  DV_OP_FLAG_NO_QUERY, dv_access_role_delete),
    DV_ACCESS_ROW("user.list", "GET", "/users", "user.read", "user", DV_OP_TARGET_GLOBAL,
                  DV_OP_LOCK_NONE, DV_OP_SHAPE_LIST, DV_OP_BODY_IGNORED, DV_OP_FLAG_NONE,
                  dv_access_users,
                  .query = dv_access_page_query),
    DV_ACCESS_ROW("user.create", "POST", "/users", "user.create", "user", DV_OP_TARGET_GLOBAL,
                  DV_OP_LOCK_GLOBAL, DV_OP_SHAPE_CREATED, DV_OP_BODY_REQUIRED, DV_OP_FLAG_NO_QUERY,
                  dv_access_user_create,
                  .fields = dv_access_user_fields),
    DV_ACCESS_ROW("user.get", "GET", "/users/{ref}", "user.read", "user", DV_OP_TARGET_GLOBAL,
                  DV_OP_LOCK_NONE, DV_OP_SHAPE_OBJECT, DV_OP_BODY_IGNORED, DV_OP_FLAG_NO_QUERY,
                  dv_access_user_get),
    DV_ACCESS_ROW("user.change", "PATCH", "/users/{ref}", "user.change", "user",
                  DV_OP_TARGET_GLOBAL, DV_OP_LOCK_GLOBAL, DV_OP_SHAPE_OBJECT, DV_OP_BODY_REQUIRED,
                  DV_OP_FLAG_NO_QUERY, dv_access_user_change,
                  .fields = dv_access_user_change_fields),
    DV_ACCESS_ROW("user.delete", "DELETE", "/users/{ref}", "user.delete", "user",
                  DV_OP_TARGET_GLOBAL, DV_OP_LOCK_GLOBAL, DV_OP_SHAPE_EMPTY, DV_OP_BODY_NONE,
                  DV_OP_FLAG_NO_QUERY, dv_access_user_delete),
    /* Bindings are checked by the grant rule inside auth (role.manage and
     * a subset of the actor's own rights over the scope). */
    DV_ACCESS_ROW("binding.list", "GET", "/bindings", "role.read", "role", DV_OP_TARGET_GLOBAL,
                  DV_OP_LOCK_NONE, DV_OP_SHAPE_LIST, DV_OP_BODY_IGNORED, DV_OP_FLAG_NONE,
                  dv_access_bindings,
                  .query = dv_access_binding_query),
    DV_ACCESS_ROW("binding.create", "POST", "/bindings", "role.manage", "role", DV_OP_TARGET_NONE,
                  DV_OP_LOCK_GLOBAL, DV_OP_SHAPE_CREATED, DV_OP_BODY_REQUIRED, DV_OP_FLAG_NO_QUERY,
                  dv_access_binding_create,
                  .fields = dv_access_binding_fields),
    DV_ACCESS_ROW("binding.delete", "DELETE", "/bindings/{id}", "role.manage", "role",
                  DV_OP_TARGET_NONE, DV_OP_LOCK_GLOBAL, DV_OP_SHAPE_EMPTY, DV_OP_BODY_NONE,
                  DV_OP_FLAG_NO_QUERY, dv_access_binding_delete),
    /* A token is the caller's own: auth checks the subset rule. */
    DV_ACCESS_ROW("token.create", "POST", "/tokens", NULL, NULL, DV_OP_TARGET_NONE, DV_OP_LOCK_NONE,
                  DV_OP_SHAPE_CREATED, DV_OP_BODY_REQUIRED,
                  DV_OP_FLAG_SESSION | DV_OP_FLAG_NO_QUERY, dv_access_token_create,
                  .fields = dv_access_token_fields),
    DV_ACCESS_ROW("token.delete", "DELETE", "/tokens/{id}", NULL, NULL, DV_OP_TARGET_NONE,
                  DV_OP_LOCK_NONE, DV_OP_SHAPE_EMPTY, DV_OP_BODY_NONE,
                  DV_OP_FLAG_SESSION | DV_OP_FLAG_NO_QUERY, dv_access_token_delete),
    DV_ACCESS_ROW("token.list", "GET", "/tokens", NULL, NULL, DV_OP_TARGET_NONE, DV_OP_LOCK_NONE,
                  DV_OP_SHAPE_LIST, DV_OP_BODY_IGNORED, DV_OP_FLAG_SESSION, dv_access_tokens,
                  .query = dv_access_subject_query),
    DV_ACCESS_ROW("session.list", "GET", "/sessions", NULL, NULL, DV_OP_TARGET_NONE,
                  DV_OP_LOCK_NONE, DV_OP_SHAPE_LIST, DV_OP_BODY_IGNORED, DV_OP_FLAG_SESSION,
                  dv_access_sessions,
                  .query = dv_access_subject_query),
    DV_ACCESS_ROW("session.delete", "DELETE", "/sessions/{id}", NULL, NULL, DV_OP_TARGET_NONE,
                  DV_OP_LOCK_NONE, DV_OP_SHAPE_EMPTY, DV_OP_BODY_NONE,
                  DV_OP_FLAG_SESSION | DV_OP_FLAG_NO_QUERY, dv_access_session_delete),
    /* Filtered by scope in the query: a reader bound to a host group reads
     * the entries of its groups and its own actions (docs/ACCESS.md). */
    DV_ACCESS_ROW("audit.list", "GET", "/audit", "audit.read", "audit", DV_OP_TARGET_KIND,
                  DV_OP_LOCK_NONE, DV_OP_SHAPE_LIST, DV_OP_BODY_IGNORED, DV_OP_FLAG_NONE,
                  dv_access_audit,
                  .query = dv_access_audit_query),
};

void
dv_engine_access_register_ops(DvEngine *engine)
{
    dv_core_add_ops(engine, dv_access_ops, G_N_ELEMENTS(dv_access_ops));
}
