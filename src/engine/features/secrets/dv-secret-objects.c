#define G_LOG_DOMAIN "DvSecretObjects"

/* Objects that hold secrets: Run As accounts, guest OS profiles and
 * settings with encrypted values.
 *
 * Secret fields are write-only.  The request's plaintext is sealed here,
 * before any job exists, so job records only ever hold ciphertext bound
 * to its object and field; responses describe each secret field as
 * {"set", "key_id", "readable", "reason"} and never show a value.  An
 * update that does not name a secret field leaves its ciphertext exactly
 * as it was, readable or not. */

#include "dv-secret-objects.h"
#include "dv-keys.h"
#include "dv-secret.h"

#include <string.h>

#define DV_SECRET_MAX 65536
#define DV_USER_DATA_MAX (64 * 1024)
#define DV_SSH_KEYS_MAX 64

typedef struct {
    const char *name;       /* request member */
    gboolean required_on_create;
} DvSecretField;

static const DvSecretField dv_run_as_secrets[] = {
    { "password", FALSE },
    { "ssh_private_key", FALSE },
    { NULL },
};

static const DvSecretField dv_profile_secrets[] = {
    { "admin_password", FALSE },
    { "domain_join_password", FALSE },
    { "product_key", FALSE },
    { NULL },
};

static const DvSecretField dv_setting_secrets[] = {
    { "value", FALSE },
    { NULL },
};

static const DvSecretField *
dv_secret_fields_for(DvKind kind)
{
    switch (kind) {
    case DV_KIND_RUN_AS:
        return dv_run_as_secrets;
    case DV_KIND_GUEST_OS_PROFILE:
        return dv_profile_secrets;
    case DV_KIND_SETTING:
        return dv_setting_secrets;
    default:
        return NULL;
    }
}

/* Seals every secret member of @body present in @fields into @sealed
 * ({field: "dv1...."}).  The plaintext lives only in guarded memory. */
static gboolean
dv_secret_objects_seal(DvEngine *engine, DvKind kind, const char *id, JsonObject *body,
                       const DvSecretField *fields, JsonObject *sealed, GError **error)
{
    const DvKindInfo *info = dv_core_kind_info(kind);

    for (const DvSecretField *f = fields; f->name != NULL; f++) {
        const char *text;
        g_autoptr(DvSecret) secret = NULL;
        g_autofree char *value = NULL;

        if (!json_object_has_member(body, f->name))
            continue;
        text = dv_json_get_string(body, f->name, NULL);
        if (text == NULL) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f->name,
                               "%s: must be a string (secrets cannot be cleared with null; "
                               "delete the object or enter a new value)",
                               f->name);
            return FALSE;
        }
        if (text[0] == '\0' || strlen(text) > DV_SECRET_MAX) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f->name,
                               "%s: must be 1-%d bytes", f->name, DV_SECRET_MAX);
            return FALSE;
        }
        secret = dv_secret_new_from_string(text);
        value = dv_keyring_seal(dv_core(engine)->keyring, info->type, id, f->name, secret, error);
        if (value == NULL)
            return FALSE;
        json_object_set_string_member(sealed, f->name, value);
    }
    return TRUE;
}

/* --- validation ---------------------------------------------------------- */

const DvFieldSpec dv_run_as_fields[] = {
    { "name", DV_FIELD_STRING, TRUE, .max_len = DV_NAME_MAX },
    { "username", DV_FIELD_STRING, TRUE },
    { "password", DV_FIELD_STRING, FALSE },
    { "ssh_private_key", DV_FIELD_STRING, FALSE },
    { "description", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = DV_DESCRIPTION_MAX },
    { NULL },
};

const DvFieldSpec dv_run_as_update_fields[] = {
    { "username", DV_FIELD_STRING, FALSE, .max_len = 256 },
    { "password", DV_FIELD_STRING, FALSE },
    { "ssh_private_key", DV_FIELD_STRING, FALSE },
    { "description", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = DV_DESCRIPTION_MAX },
    { NULL },
};

const DvFieldSpec dv_guest_os_profile_fields[] = {
    { "name", DV_FIELD_STRING, TRUE, .max_len = DV_NAME_MAX },
    { "computer_name_pattern", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = 15 },
    { "admin_username", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = 256 },
    { "admin_password", DV_FIELD_STRING, FALSE },
    { "domain", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = 255 },
    { "domain_join_user", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = 256 },
    { "domain_join_password", DV_FIELD_STRING, FALSE },
    { "domain_join_run_as", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = 256 },
    { "product_key", DV_FIELD_STRING, FALSE },
    { "time_zone", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = 64 },
    { "ssh_authorized_keys", DV_FIELD_ARRAY, FALSE },
    { "user_data", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = DV_USER_DATA_MAX },
    { "description", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = DV_DESCRIPTION_MAX },
    { NULL },
};

/* A profile's update is checked as a whole profile (the same rules); its
 * name cannot change, which the update says in its own words. */
const DvFieldSpec dv_guest_os_profile_update_fields[] = {
    { "name", DV_FIELD_STRING, FALSE, "refused: a profile cannot be renamed" },
    { "computer_name_pattern", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = 15 },
    { "admin_username", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = 256 },
    { "admin_password", DV_FIELD_STRING, FALSE },
    { "domain", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = 255 },
    { "domain_join_user", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = 256 },
    { "domain_join_password", DV_FIELD_STRING, FALSE },
    { "domain_join_run_as", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = 256 },
    { "product_key", DV_FIELD_STRING, FALSE },
    { "time_zone", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = 64 },
    { "ssh_authorized_keys", DV_FIELD_ARRAY, FALSE },
    { "user_data", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = DV_USER_DATA_MAX },
    { "description", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = DV_DESCRIPTION_MAX },
    { NULL },
};

static const char *const dv_setting_scopes[] = { "application", "service", "deployment",
                                                 "deploy-package", NULL };

const DvFieldSpec dv_setting_fields[] = {
    { "scope", DV_FIELD_STRING, TRUE, .values = dv_setting_scopes },
    { "name", DV_FIELD_STRING, TRUE, .max_len = DV_NAME_MAX },
    { "value", DV_FIELD_STRING, TRUE },
    { "encrypted", DV_FIELD_BOOL, FALSE },
    { "description", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = DV_DESCRIPTION_MAX },
    { NULL },
};

const DvFieldSpec dv_setting_update_fields[] = {
    { "value", DV_FIELD_STRING, FALSE },
    { "description", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = DV_DESCRIPTION_MAX },
    { NULL },
};

static gboolean
dv_copy_text(JsonObject *body, JsonObject *record, const char *member, gsize max, GError **error)
{
    const char *v;
    if (!json_object_has_member(body, member))
        return TRUE;
    v = dv_json_get_string(body, member, NULL);
    if (!dv_validate_text(member, v, max, error))
        return FALSE;
    if (v != NULL)
        json_object_set_string_member(record, member, v);
    else
        json_object_set_null_member(record, member);
    return TRUE;
}

/* A user name or account as a hypervisor or guest knows it: printable,
 * no spaces, at most 256 bytes ("DOMAIN\\user" and "user@realm" allowed). */
static gboolean
dv_validate_account(const char *field, const char *v, GError **error)
{
    if (v == NULL)
        return TRUE;
    if (v[0] == '\0' || strlen(v) > 256) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "%s: must be 1-256 bytes", field);
        return FALSE;
    }
    for (const char *p = v; *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                               "%s: must not hold spaces or control characters", field);
            return FALSE;
        }
    }
    return g_utf8_validate(v, -1, NULL) ||
           (dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "%s: must be UTF-8", field),
            FALSE);
}

/* The plain (non-secret) fields of a guest OS profile, checked. */
static JsonObject *
dv_secret_objects_build_profile_fields(JsonObject *body, GError **error)
{
    g_autoptr(JsonObject) rec = json_object_new();
    JsonArray *keys = dv_json_get_array(body, "ssh_authorized_keys");
    JsonArray *keys_out = json_array_new();
    const char *pattern = dv_json_get_string(body, "computer_name_pattern", NULL);

    if (!dv_json_check_fields(body, dv_guest_os_profile_fields, NULL, error))
        return NULL;
    json_object_set_array_member(rec, "ssh_authorized_keys", keys_out);
    json_object_set_null_member(rec, "computer_name_pattern");
    json_object_set_null_member(rec, "admin_username");
    json_object_set_null_member(rec, "domain");
    json_object_set_null_member(rec, "domain_join_user");
    json_object_set_null_member(rec, "time_zone");
    json_object_set_null_member(rec, "user_data");
    if (pattern != NULL && (strlen(pattern) == 0 || strlen(pattern) > 15 ||
                            strspn(pattern, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-#") != strlen(pattern))) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "computer_name_pattern",
                           "computer_name_pattern: 1-15 letters, digits, '-' and '#' "
                           "(each run of # is replaced by a number), e.g. desk-###");
        return NULL;
    }
    if (!dv_copy_text(body, rec, "computer_name_pattern", 15, error) ||
        !dv_validate_account("admin_username", dv_json_get_string(body, "admin_username", NULL), error) ||
        !dv_copy_text(body, rec, "admin_username", 256, error) ||
        !dv_copy_text(body, rec, "domain", 255, error) ||
        !dv_validate_account("domain_join_user", dv_json_get_string(body, "domain_join_user", NULL), error) ||
        !dv_copy_text(body, rec, "domain_join_user", 256, error) ||
        !dv_copy_text(body, rec, "time_zone", 64, error) ||
        !dv_copy_text(body, rec, "user_data", DV_USER_DATA_MAX, error))
        return NULL;
    if (json_object_has_member(body, "domain_join_password") &&
        dv_json_get_string(body, "domain", NULL) == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "domain_join_password",
                           "domain_join_password: needs a domain to join");
        return NULL;
    }
    if (keys != NULL) {
        if (json_array_get_length(keys) > DV_SSH_KEYS_MAX) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "ssh_authorized_keys",
                               "ssh_authorized_keys: at most %d keys", DV_SSH_KEYS_MAX);
            return NULL;
        }
        for (guint i = 0; i < json_array_get_length(keys); i++) {
            JsonNode *n = json_array_get_element(keys, i);
            g_autofree char *f = g_strdup_printf("ssh_authorized_keys[%u]", i);
            const char *k;
            if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f, "%s: must be a string", f);
                return NULL;
            }
            k = json_node_get_string(n);
            if (!dv_validate_text(f, k, 16384, error))
                return NULL;
            if (!g_str_has_prefix(k, "ssh-") && !g_str_has_prefix(k, "ecdsa-") &&
                !g_str_has_prefix(k, "sk-")) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f,
                                   "%s: must be an OpenSSH public key (ssh-ed25519 AAAA...)", f);
                return NULL;
            }
            json_array_add_string_element(keys_out, k);
        }
    }
    return g_steal_pointer(&rec);
}

/* Using a Run As account for a profile's domain join needs run_as.use on
 * it (docs/ACCESS.md, "Run As accounts").  An account the actor cannot see
 * reads as absent, in the words of dv_core_resolve() for the reference
 * given, so neither its id nor its existence shows. */
static gboolean
dv_profile_check_run_as_use(const DvActor *actor, JsonObject *account, const char *ref,
                            GError **error)
{
    const DvAuthzContext *ctx = dv_core_actor_authz(actor);
    g_autoptr(GError) local = NULL;

    if (ctx == NULL ||
        dv_authz_check_run_as_use(ctx, dv_json_get_string(account, "id", NULL), &local))
        return TRUE;
    if (g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_autofree char *safe = dv_text_excerpt(ref, 80);
        dv_set_field_error(error, DV_ERROR_NOT_FOUND, "domain_join_run_as",
                           "Run As account '%s' not found", safe);
        return FALSE;
    }
    dv_set_field_error(error, local->code, "domain_join_run_as", "domain_join_run_as: %s",
                       local->message);
    return FALSE;
}

/* A profile may take its domain join from a Run As account
 * (domain_join_run_as, a name or id) instead of holding inline
 * credentials; the two are exclusive.  @obj is the profile being changed,
 * NULL on create.  Writes domain_join_run_as_id (and clears the inline
 * user) into @out when the body names an account or null. */
static gboolean
dv_profile_join_run_as(DvEngine *engine, const DvActor *actor, JsonObject *body, JsonObject *obj,
                       JsonObject *out, GError **error)
{
    const char *ref = dv_json_get_string(body, "domain_join_run_as", NULL);
    const char *current =
        obj != NULL ? dv_json_get_string(obj, "domain_join_run_as_id", NULL) : NULL;
    gboolean user = dv_json_get_string(body, "domain_join_user", NULL) != NULL;
    gboolean inline_given = user || json_object_has_member(body, "domain_join_password");
    const char *domain = json_object_has_member(body, "domain")
                             ? dv_json_get_string(body, "domain", NULL)
                             : (obj != NULL ? dv_json_get_string(obj, "domain", NULL) : NULL);
    g_autoptr(JsonObject) account = NULL;

    if (!json_object_has_member(body, "domain_join_run_as")) {
        const char *field = user ? "domain_join_user" : "domain_join_password";
        if (current != NULL && inline_given) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                               "%s: the profile joins its domain with a Run As account "
                               "(domain_join_run_as); give domain_join_run_as null with it",
                               field);
            return FALSE;
        }
        if (current != NULL && domain == NULL) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "domain",
                               "domain: the profile's domain_join_run_as needs a domain to join; "
                               "give domain_join_run_as null with it");
            return FALSE;
        }
        return TRUE;
    }
    if (ref == NULL) {
        json_object_set_null_member(out, "domain_join_run_as_id");
        return TRUE;
    }
    if (inline_given) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "domain_join_run_as",
                           "domain_join_run_as: give either domain_join_run_as or "
                           "domain_join_user and domain_join_password, not both");
        return FALSE;
    }
    if (domain == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "domain_join_run_as",
                           "domain_join_run_as: needs a domain to join");
        return FALSE;
    }
    account = dv_core_resolve(engine, DV_KIND_RUN_AS, ref, "domain_join_run_as", error);
    if (account == NULL || !dv_profile_check_run_as_use(actor, account, ref, error))
        return FALSE;
    if (g_strcmp0(dv_json_get_string(account, "credential_kind", ""), "password") != 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "domain_join_run_as",
                           "domain_join_run_as: Run As account '%s' holds an SSH key; a domain "
                           "join needs an account with a password",
                           dv_json_get_string(account, "name", ""));
        return FALSE;
    }
    json_object_set_string_member(out, "domain_join_run_as_id",
                                  dv_json_get_string(account, "id", ""));
    json_object_set_null_member(out, "domain_join_user");
    return TRUE;
}

static JsonObject *
dv_secret_objects_build(DvEngine *engine, DvKind kind, JsonObject *body, const char *id,
                        const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) rec = json_object_new();
    const char *name = dv_json_get_string(body, "name", NULL);
    gint64 now = dv_store_now();

    json_object_set_string_member(rec, "id", id);
    json_object_set_null_member(rec, "description");
    if (!dv_copy_text(body, rec, "description", DV_DESCRIPTION_MAX, error))
        return NULL;
    json_object_set_int_member(rec, "created_at", now);
    json_object_set_int_member(rec, "updated_at", now);

    switch (kind) {
    case DV_KIND_RUN_AS: {
        const char *account = dv_json_get_string(body, "username", NULL);
        gboolean pw = json_object_has_member(body, "password");
        gboolean key = json_object_has_member(body, "ssh_private_key");
        if (!dv_json_check_fields(body, dv_run_as_fields, NULL, error) ||
            !dv_validate_name("name", name, error) ||
            !dv_validate_account("username", account, error))
            return NULL;
        if (pw == key) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "password",
                               "password: give exactly one of password or ssh_private_key");
            return NULL;
        }
        json_object_set_string_member(rec, "name", name);
        json_object_set_string_member(rec, "username", account);
        json_object_set_string_member(rec, "credential_kind", pw ? "password" : "ssh-key");
        if (!dv_core_check_unique(engine, &dv_table_run_as_accounts, "name", name, NULL, "name",
                                  "Run As account", error))
            return NULL;
        break;
    }
    case DV_KIND_GUEST_OS_PROFILE: {
        g_autoptr(JsonObject) fields = NULL;
        JsonObjectIter it;
        const char *m;
        JsonNode *n;
        if (!dv_json_check_fields(body, dv_guest_os_profile_fields, NULL, error) ||
            !dv_validate_name("name", name, error))
            return NULL;
        fields = dv_secret_objects_build_profile_fields(body, error);
        if (fields == NULL)
            return NULL;
        json_object_iter_init(&it, fields);
        while (json_object_iter_next(&it, &m, &n))
            json_object_set_member(rec, m, json_node_copy(n));
        json_object_set_string_member(rec, "name", name);
        json_object_set_null_member(rec, "domain_join_run_as_id");
        if (!dv_profile_join_run_as(engine, actor, body, NULL, rec, error) ||
            !dv_core_check_unique(engine, &dv_table_guest_os_profiles, "name", name, NULL, "name",
                                  "guest OS profile", error))
            return NULL;
        break;
    }
    case DV_KIND_SETTING: {
        const char *scope = dv_json_get_string(body, "scope", NULL);
        gboolean enc = dv_json_get_bool(body, "encrypted", FALSE);
        g_autoptr(JsonArray) same = NULL;
        if (!dv_json_check_fields(body, dv_setting_fields, NULL, error) ||
            !dv_validate_name("name", name, error))
            return NULL;
        if (scope == NULL || !g_strv_contains(dv_setting_scopes, scope)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "scope",
                               "scope: must be application, service, deployment or deploy-package");
            return NULL;
        }
        json_object_set_string_member(rec, "scope", scope);
        json_object_set_string_member(rec, "name", name);
        json_object_set_boolean_member(rec, "encrypted", enc);
        if (enc) {
            json_object_set_null_member(rec, "value");
        } else if (!dv_copy_text(body, rec, "value", DV_SECRET_MAX, error)) {
            return NULL;
        }
        same = dv_core_list_all(engine, &dv_table_app_settings, "name", name, error);
        if (same == NULL)
            return NULL;
        for (guint i = 0; i < json_array_get_length(same); i++) {
            if (g_strcmp0(dv_json_get_string(json_array_get_object_element(same, i), "scope", ""), scope) == 0) {
                dv_set_field_error(error, DV_ERROR_CONFLICT, "name",
                                   "name: a %s setting named '%s' already exists", scope, name);
                return NULL;
            }
        }
        break;
    }
    default:
        g_assert_not_reached();
    }
    return g_steal_pointer(&rec);
}

/* --- jobs ----------------------------------------------------------------- */

/* Writes a value sealed at request time into the secrets table, replacing
 * the field's previous value (an explicit re-entry). */
static gboolean
dv_secret_objects_store_sealed(DvStore *store, const char *type, const char *id,
                               const char *field, const char *sealed, GError **error)
{
    DvFilter f[] = {
        { "object_type", DV_FILTER_EQ, type },
        { "object_id", DV_FILTER_EQ, id },
        { "field", DV_FILTER_EQ, field },
    };
    g_auto(GStrv) parts = g_strsplit(sealed, ".", 3);
    g_autoptr(JsonArray) rows = NULL;
    g_autoptr(JsonObject) row = json_object_new();

    if (g_strv_length(parts) != 3) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "sealed value for %s is malformed", field);
        return FALSE;
    }
    rows = dv_store_list(store, &dv_table_secrets, f, G_N_ELEMENTS(f), 1, NULL, NULL, error);
    if (rows == NULL)
        return FALSE;
    json_object_set_string_member(row, "key_id", parts[1]);
    json_object_set_string_member(row, "value", sealed);
    json_object_set_int_member(row, "updated_at", dv_store_now());
    if (json_array_get_length(rows) > 0)
        return dv_store_update(store, &dv_table_secrets,
                               dv_json_get_string(json_array_get_object_element(rows, 0), "id", ""),
                               row, error);
    {
        g_autofree char *sid = g_uuid_string_random();
        json_object_set_string_member(row, "id", sid);
        json_object_set_string_member(row, "object_type", type);
        json_object_set_string_member(row, "object_id", id);
        json_object_set_string_member(row, "field", field);
    }
    return dv_store_insert(store, &dv_table_secrets, row, error);
}

/* Deletes one secret field of an object, if it is set. */
static gboolean
dv_secret_objects_drop_field(DvStore *store, const char *type, const char *id, const char *field,
                             GError **error)
{
    DvFilter f[] = {
        { "object_type", DV_FILTER_EQ, type },
        { "object_id", DV_FILTER_EQ, id },
        { "field", DV_FILTER_EQ, field },
    };
    g_autoptr(JsonArray) rows =
        dv_store_list(store, &dv_table_secrets, f, G_N_ELEMENTS(f), 1, NULL, NULL, error);

    if (rows == NULL)
        return FALSE;
    if (json_array_get_length(rows) == 0)
        return TRUE;
    return dv_store_delete(store, &dv_table_secrets,
                           dv_json_get_string(json_array_get_object_element(rows, 0), "id", ""),
                           error);
}

typedef struct {
    DvEngine *engine;
    DvKind kind;
    const char *op;
    const char *id;
    JsonObject *record;
    JsonObject *changes;
    JsonObject *sealed;
} DvSecretTxn;

static gboolean
dv_secret_objects_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvSecretTxn *t = user_data;
    const DvKindInfo *info = dv_core_kind_info(t->kind);
    JsonObjectIter it;
    const char *field;
    JsonNode *node;

    if (g_strcmp0(t->op, "delete") == 0) {
        if (!dv_keyring_delete_object_secrets(dv_core(t->engine)->keyring, store, info->type, t->id,
                                              error))
            return FALSE;
        return dv_store_delete(store, info->def, t->id, error);
    }
    if (g_strcmp0(t->op, "create") == 0) {
        g_autoptr(GError) local = NULL;
        g_autoptr(JsonObject) existing = dv_store_get(store, info->def, t->id, &local);
        if (existing == NULL && !dv_store_insert(store, info->def, t->record, error))
            return FALSE;
    } else if (t->changes != NULL && json_object_get_size(t->changes) > 0) {
        if (!dv_store_update(store, info->def, t->id, t->changes, error))
            return FALSE;
        /* A Run As account replaces the inline domain-join credentials:
         * the inline password goes, so the profile holds one or the other. */
        if (t->kind == DV_KIND_GUEST_OS_PROFILE &&
            dv_json_get_string(t->changes, "domain_join_run_as_id", NULL) != NULL &&
            !dv_secret_objects_drop_field(store, info->type, t->id, "domain_join_password", error))
            return FALSE;
    }
    if (t->sealed == NULL)
        return TRUE;
    json_object_iter_init(&it, t->sealed);
    while (json_object_iter_next(&it, &field, &node)) {
        if (!dv_secret_objects_store_sealed(store, info->type, t->id, field,
                                            json_node_get_string(node), error))
            return FALSE;
    }
    return TRUE;
}

static gboolean
dv_secret_objects_job(DvJob *job, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    JsonObject *params = dv_job_get_params(job);
    static const DvJobStep steps[] = { { "save", 1 } };
    DvSecretTxn t = { 0 };
    g_autoptr(JsonObject) result = json_object_new();

    dv_job_set_steps(job, steps, G_N_ELEMENTS(steps));
    if (!dv_job_step(job, "save", error))
        return FALSE;
    t.engine = engine;
    t.kind = (DvKind)dv_json_get_int(params, "kind", 0);
    t.op = dv_json_get_string(params, "op", "");
    t.id = dv_json_get_string(params, "id", "");
    t.record = dv_json_get_object(params, "record");
    t.changes = dv_json_get_object(params, "changes");
    t.sealed = dv_json_get_object(params, "sealed");
    if (g_strcmp0(t.op, "delete") == 0) {
        g_autoptr(GError) local = NULL;
        g_autoptr(JsonObject) existing =
            dv_store_get(dv_core(engine)->store, dv_core_kind_info(t.kind)->def, t.id, &local);
        if (existing == NULL)
            return TRUE; /* a resumed delete that already ran */
    }
    if (!dv_store_transaction(dv_core(engine)->store, dv_secret_objects_txn, &t, error))
        return FALSE;
    json_object_set_string_member(result, "id", t.id);
    dv_job_set_result(job, result);
    return TRUE;
}

static JsonObject *dv_secret_objects_shape(DvEngine *engine, DvKind kind, JsonObject *record);

void
dv_engine_secret_objects_register(DvEngine *engine)
{
    static const char *const names[] = {
        "run-as.create", "run-as.update", "run-as.delete",
        "guest-os-profile.create", "guest-os-profile.update", "guest-os-profile.delete",
        "setting.create", "setting.update", "setting.delete",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        DvJobKind kind = { names[i], dv_secret_objects_job, engine, TRUE };
        dv_job_manager_register_kind(dv_core(engine)->jobs, &kind);
    }
    dv_core_set_shaper(engine, DV_KIND_RUN_AS, dv_secret_objects_shape);
    dv_core_set_shaper(engine, DV_KIND_GUEST_OS_PROFILE, dv_secret_objects_shape);
    dv_core_set_shaper(engine, DV_KIND_SETTING, dv_secret_objects_shape);
}

JsonObject *
dv_engine_secret_object_create(DvEngine *engine, DvKind kind, JsonObject *body,
                               const DvActor *actor, GError **error)
{
    g_autofree char *id = g_uuid_string_random();
    g_autoptr(JsonObject) rec = dv_secret_objects_build(engine, kind, body, id, actor, error);
    g_autoptr(JsonObject) sealed = json_object_new();
    const DvSecretField *fields = dv_secret_fields_for(kind);

    if (rec == NULL)
        return NULL;
    if (kind == DV_KIND_SETTING && !dv_json_get_bool(body, "encrypted", FALSE))
        fields = NULL; /* a plain setting holds its value in its row */
    if (fields != NULL && !dv_secret_objects_seal(engine, kind, id, body, fields, sealed, error))
        return NULL;
    return dv_core_object_submit(engine, kind, "create", id, dv_json_get_string(rec, "name", ""),
                                 rec, NULL, sealed, actor, error);
}

JsonObject *
dv_engine_secret_object_update(DvEngine *engine, DvKind kind, JsonObject *obj, JsonObject *body,
                               const DvActor *actor, GError **error)
{
    const char *id = dv_json_get_string(obj, "id", "");
    g_autoptr(JsonObject) changes = json_object_new();
    g_autoptr(JsonObject) sealed = json_object_new();
    const DvSecretField *fields = dv_secret_fields_for(kind);

    switch (kind) {
    case DV_KIND_RUN_AS: {
        gboolean pw = json_object_has_member(body, "password");
        gboolean key = json_object_has_member(body, "ssh_private_key");
        if (!dv_json_check_fields(body, dv_run_as_update_fields, NULL, error) ||
            !dv_validate_account("username", dv_json_get_string(body, "username", NULL), error) ||
            !dv_copy_text(body, changes, "username", 256, error))
            return NULL;
        if (pw && key) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "password",
                               "password: give at most one of password or ssh_private_key");
            return NULL;
        }
        if (pw || key)
            json_object_set_string_member(changes, "credential_kind", pw ? "password" : "ssh-key");
        break;
    }
    case DV_KIND_GUEST_OS_PROFILE: {
        static const char *const plain[] = { "computer_name_pattern", "admin_username", "domain",
                                             "domain_join_user", "time_zone", "user_data", NULL };
        g_autoptr(JsonObject) probe = NULL;
        g_autoptr(JsonObject) merged = json_object_new();
        JsonObjectIter it;
        const char *m;
        JsonNode *n;
        /* Validate the update as a whole profile: the same rules apply. */
        json_object_set_string_member(merged, "name", dv_json_get_string(obj, "name", ""));
        json_object_iter_init(&it, body);
        while (json_object_iter_next(&it, &m, &n)) {
            if (g_strcmp0(m, "name") == 0) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "name",
                                   "name: a profile cannot be renamed");
                return NULL;
            }
            json_object_set_member(merged, m, json_node_copy(n));
        }
        if (json_object_has_member(body, "domain_join_password") &&
            !json_object_has_member(body, "domain") && dv_json_get_string(obj, "domain", NULL) != NULL)
            json_object_set_string_member(merged, "domain", dv_json_get_string(obj, "domain", ""));
        probe = dv_secret_objects_build_profile_fields(merged, error);
        if (probe == NULL)
            return NULL;
        for (guint i = 0; plain[i] != NULL; i++)
            if (json_object_has_member(body, plain[i]))
                json_object_set_member(changes, plain[i],
                                       json_node_copy(json_object_get_member(probe, plain[i])));
        if (json_object_has_member(body, "ssh_authorized_keys"))
            json_object_set_member(changes, "ssh_authorized_keys",
                                   json_node_copy(json_object_get_member(probe, "ssh_authorized_keys")));
        if (!dv_profile_join_run_as(engine, actor, body, obj, changes, error))
            return NULL;
        break;
    }
    case DV_KIND_SETTING:
        if (!dv_json_check_fields(body, dv_setting_update_fields, NULL, error))
            return NULL;
        if (!dv_json_get_bool(obj, "encrypted", FALSE)) {
            fields = NULL;
            if (!dv_copy_text(body, changes, "value", DV_SECRET_MAX, error))
                return NULL;
        }
        break;
    default:
        g_assert_not_reached();
    }
    if (!dv_copy_text(body, changes, "description", DV_DESCRIPTION_MAX, error))
        return NULL;
    if (fields != NULL && !dv_secret_objects_seal(engine, kind, id, body, fields, sealed, error))
        return NULL;
    if (json_object_get_size(changes) == 0 && json_object_get_size(sealed) == 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL, "nothing to change");
        return NULL;
    }
    json_object_set_int_member(changes, "updated_at", dv_store_now());
    return dv_core_object_submit(engine, kind, "update", id, dv_json_get_string(obj, "name", ""),
                                 NULL, changes, sealed, actor, error);
}

/* An account a guest OS profile joins its domain with cannot go: 409
 * naming the profiles (the first few), as for hosts. */
static gboolean
dv_secret_objects_check_profiles(DvEngine *engine, JsonObject *account, GError **error)
{
    DvFilter f = { "domain_join_run_as_id", DV_FILTER_EQ, dv_json_get_string(account, "id", "") };
    g_autoptr(JsonArray) rows = dv_store_list(dv_core(engine)->store, &dv_table_guest_os_profiles,
                                              &f, 1, 6, NULL, NULL, error);
    g_autoptr(GString) names = g_string_new(NULL);
    guint n;

    if (rows == NULL)
        return FALSE;
    n = json_array_get_length(rows);
    if (n == 0)
        return TRUE;
    for (guint i = 0; i < n && i < 5; i++)
        g_string_append_printf(
            names, "%s'%s'", i > 0 ? ", " : "",
            dv_json_get_string(json_array_get_object_element(rows, i), "name", ""));
    dv_set_field_error(error, DV_ERROR_CONFLICT, NULL,
                       "Run As account '%s' is the domain join account of guest OS profile%s %s%s; "
                       "change them first",
                       dv_json_get_string(account, "name", ""), n > 1 ? "s" : "", names->str,
                       n > 5 ? ", ..." : "");
    return FALSE;
}

JsonObject *
dv_engine_secret_object_delete(DvEngine *engine, DvKind kind, JsonObject *obj, const DvActor *actor,
                               GError **error)
{
    const char *id = dv_json_get_string(obj, "id", "");
    if (kind == DV_KIND_RUN_AS) {
        DvFilter f = { "run_as_id", DV_FILTER_EQ, id };
        if (dv_store_count(dv_core(engine)->store, &dv_table_hosts, &f, 1, NULL) != 0) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, NULL,
                               "Run As account '%s' is used by hosts; change them first",
                               dv_json_get_string(obj, "name", ""));
            return NULL;
        }
        if (!dv_secret_objects_check_profiles(engine, obj, error))
            return NULL;
    }
    return dv_core_object_submit(engine, kind, "delete", id, dv_json_get_string(obj, "name", ""),
                                 NULL, NULL, NULL, actor, error);
}

/* Adds each secret field's description to a shaped record. */
static void
dv_engine_secret_object_shape(DvEngine *engine, DvKind kind, JsonObject *out)
{
    const DvKindInfo *info = dv_core_kind_info(kind);
    const DvSecretField *fields = dv_secret_fields_for(kind);
    g_autoptr(JsonObject) described = NULL;

    if (fields == NULL)
        return;
    if (kind == DV_KIND_SETTING && !dv_json_get_bool(out, "encrypted", FALSE))
        return;
    described = dv_keyring_describe_object(dv_core(engine)->keyring, dv_core(engine)->store,
                                           info->type, dv_json_get_string(out, "id", ""), NULL);
    for (const DvSecretField *f = fields; f->name != NULL; f++) {
        JsonObject *d = described != NULL ? dv_json_get_object(described, f->name) : NULL;
        if (d != NULL) {
            json_object_set_object_member(out, f->name, json_object_ref(d));
        } else {
            JsonObject *unset = json_object_new();
            json_object_set_boolean_member(unset, "set", FALSE);
            json_object_set_object_member(out, f->name, unset);
        }
    }
}

/* A profile's domain-join account as {id, name} (null when none), in
 * place of the column: the reference, never the account's secret. */
static void
dv_secret_objects_shape_join_run_as(DvEngine *engine, JsonObject *out)
{
    g_autofree char *id = g_strdup(dv_json_get_string(out, "domain_join_run_as_id", NULL));
    g_autoptr(JsonObject) account = NULL;
    JsonObject *ref;

    if (json_object_has_member(out, "domain_join_run_as_id"))
        json_object_remove_member(out, "domain_join_run_as_id");
    if (id == NULL) {
        json_object_set_null_member(out, "domain_join_run_as");
        return;
    }
    account = dv_store_get(dv_core(engine)->store, &dv_table_run_as_accounts, id, NULL);
    ref = json_object_new();
    json_object_set_string_member(ref, "id", id);
    if (account != NULL)
        json_object_set_string_member(ref, "name", dv_json_get_string(account, "name", ""));
    else
        json_object_set_null_member(ref, "name");
    json_object_set_object_member(out, "domain_join_run_as", ref);
}

static JsonObject *
dv_secret_objects_shape(DvEngine *engine, DvKind kind, JsonObject *record)
{
    JsonObject *out = json_object_ref(record);
    dv_engine_secret_object_shape(engine, kind, out);
    if (kind == DV_KIND_GUEST_OS_PROFILE)
        dv_secret_objects_shape_join_run_as(engine, out);
    return out;
}
