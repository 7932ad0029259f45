#define G_LOG_DOMAIN "DvAuthz"

/* Access control; see dv-authz.h and docs/ACCESS.md. */

#include "dv-authz.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-validate.h"

#include <string.h>

/* --- privileges: verbs on kinds, declared once -------------------------------- */

static const char *const dv_authz_privilege_names[] = {
    "host_group.read",
    "host_group.create",
    "host_group.change",
    "host_group.delete",
    "cluster.read",
    "cluster.create",
    "cluster.change",
    "cluster.delete",
    "host.read",
    "host.create",
    "host.change",
    "host.delete",
    "host.power",
    "pool.read",
    "pool.create",
    "pool.change",
    "pool.delete",
    "volume.read",
    "volume.create",
    "volume.change",
    "volume.delete",
    "network.read",
    "network.create",
    "network.change",
    "network.delete",
    "library_share.read",
    "library_share.create",
    "library_share.change",
    "library_share.delete",
    "template.read",
    "template.create",
    "template.change",
    "template.delete",
    "vm.read",
    "vm.create",
    "vm.change",
    "vm.delete",
    "vm.power",
    "vm.console",
    "vm.snapshot",
    "vm.migrate",
    "catalog.read",
    "catalog.create",
    "catalog.change",
    "catalog.delete",
    "catalog.provision",
    "run_as.read",
    "run_as.create",
    "run_as.change",
    "run_as.delete",
    "run_as.use",
    "guest_os_profile.read",
    "guest_os_profile.create",
    "guest_os_profile.change",
    "guest_os_profile.delete",
    "setting.read",
    "setting.change",
    "user.read",
    "user.create",
    "user.change",
    "user.delete",
    "user.manage",
    "role.read",
    "role.create",
    "role.delete",
    "role.manage",
    "job.read",
    "job.change",
    "audit.read",
    "metrics.read",
    NULL,
};

#define DV_AUTHZ_N_PRIVILEGES (G_N_ELEMENTS(dv_authz_privilege_names) - 1)

/* Kinds whose objects have an owner: an own-only grant covers only the
 * actor's own objects of these kinds. */
static const char *const dv_authz_owned_kinds[] = { "vm", "job", "catalog_machine", NULL };

const char *const *
dv_authz_privileges(void)
{
    return dv_authz_privilege_names;
}

static int
dv_authz_privilege_index(const char *name)
{
    for (guint i = 0; name != NULL && i < DV_AUTHZ_N_PRIVILEGES; i++)
        if (strcmp(dv_authz_privilege_names[i], name) == 0)
            return (int)i;
    return -1;
}

gboolean
dv_authz_privilege_check(const char *field, const char *name, GError **error)
{
    if (dv_authz_privilege_index(name) < 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "%s: '%s' is not a privilege (kind.verb, see docs/ACCESS.md)", field,
                           name != NULL ? name : "");
        return FALSE;
    }
    return TRUE;
}

/* "kind.verb" against a pattern: "*", "kind.*", "*.verb" or a name. */
static gboolean
dv_authz_pattern_match(const char *pattern, const char *name)
{
    const char *pdot = strchr(pattern, '.');
    const char *ndot = strchr(name, '.');

    if (strcmp(pattern, "*") == 0)
        return TRUE;
    if (pdot == NULL || ndot == NULL)
        return strcmp(pattern, name) == 0;
    if (!(pdot - pattern == 1 && pattern[0] == '*') &&
        !(pdot - pattern == ndot - name && strncmp(pattern, name, (gsize)(pdot - pattern)) == 0))
        return FALSE;
    return strcmp(pdot + 1, "*") == 0 || strcmp(pdot + 1, ndot + 1) == 0;
}

/* --- built-in roles: patterns, "!" excludes ---------------------------------- */

typedef struct {
    const char *id;
    const char *name;
    const char *legacy; /* users.role string of schema 1-6 that meant it */
    gboolean own_only;  /* covers only the actor's own VMs and jobs */
    gboolean redacts;   /* storage data left out of responses */
    const char *const *patterns;
} DvAuthzBuiltin;

static const char *const dv_authz_admin_patterns[] = { "*", NULL };
static const char *const dv_authz_delegated_patterns[] = { "*", "!setting.*", "!metrics.*", NULL };
static const char *const dv_authz_read_only_patterns[] = { "*.read", NULL };
static const char *const dv_authz_tenant_patterns[] = {
    "host_group.read", "cluster.read",          "host.read",   "network.read", "library_share.read",
    "template.read",   "guest_os_profile.read", "run_as.read", "run_as.use",   "vm.*",
    "catalog.read",    "catalog.provision",     "job.*",       "user.read",    "user.create",
    "user.change",     "user.manage",           "role.read",   "role.manage",
    /* Moving a VM between hosts is the hosts' administrators' (issue 14). */
    "!vm.migrate",     NULL,
};
static const char *const dv_authz_self_service_patterns[] = {
    "vm.*",
    "!vm.migrate",
    "job.*",
    "template.read",
    "catalog.read",
    "catalog.provision",
    "network.read",
    "guest_os_profile.read",
    NULL,
};

static const DvAuthzBuiltin dv_authz_builtins[] = {
    { DV_AUTHZ_ROLE_ADMINISTRATOR, "administrator", "administrator", FALSE, FALSE,
      dv_authz_admin_patterns },
    { DV_AUTHZ_ROLE_DELEGATED, "delegated-administrator", "delegated-administrator", FALSE, TRUE,
      dv_authz_delegated_patterns },
    { DV_AUTHZ_ROLE_READ_ONLY, "read-only-administrator", "read-only", FALSE, FALSE,
      dv_authz_read_only_patterns },
    { DV_AUTHZ_ROLE_TENANT, "tenant-administrator", "tenant", FALSE, FALSE,
      dv_authz_tenant_patterns },
    { DV_AUTHZ_ROLE_SELF_SERVICE, "self-service-user", NULL, TRUE, FALSE,
      dv_authz_self_service_patterns },
};

static const DvAuthzBuiltin *
dv_authz_builtin_lookup(const char *id_or_name)
{
    for (guint i = 0; id_or_name != NULL && i < G_N_ELEMENTS(dv_authz_builtins); i++)
        if (strcmp(dv_authz_builtins[i].id, id_or_name) == 0 ||
            strcmp(dv_authz_builtins[i].name, id_or_name) == 0)
            return &dv_authz_builtins[i];
    return NULL;
}

static gboolean
dv_authz_builtin_has(const DvAuthzBuiltin *b, const char *privilege)
{
    gboolean in = FALSE;
    for (guint i = 0; b->patterns[i] != NULL; i++) {
        const char *p = b->patterns[i];
        if (p[0] == '!' && dv_authz_pattern_match(p + 1, privilege))
            return FALSE;
        if (p[0] != '!' && dv_authz_pattern_match(p, privilege))
            in = TRUE;
    }
    return in;
}

const char *
dv_authz_role_for_legacy(const char *legacy_role)
{
    for (guint i = 0; legacy_role != NULL && i < G_N_ELEMENTS(dv_authz_builtins); i++)
        if (dv_authz_builtins[i].legacy != NULL &&
            strcmp(dv_authz_builtins[i].legacy, legacy_role) == 0)
            return dv_authz_builtins[i].id;
    return NULL;
}

/* A role row with its privileges as the decision sees them. */
static JsonObject *
dv_authz_role_shape(JsonObject *row)
{
    JsonObject *out = json_object_new();
    const DvAuthzBuiltin *b = dv_authz_builtin_lookup(dv_json_get_string(row, "id", ""));
    JsonArray *privs = json_array_new();

    json_object_set_string_member(out, "id", dv_json_get_string(row, "id", ""));
    json_object_set_string_member(out, "name", dv_json_get_string(row, "name", ""));
    json_object_set_boolean_member(out, "builtin", b != NULL);
    if (b != NULL) {
        for (guint i = 0; i < DV_AUTHZ_N_PRIVILEGES; i++)
            if (dv_authz_builtin_has(b, dv_authz_privilege_names[i]))
                json_array_add_string_element(privs, dv_authz_privilege_names[i]);
        json_object_set_boolean_member(out, "own_objects_only", b->own_only);
        json_object_set_boolean_member(out, "storage_redacted", b->redacts);
    } else {
        JsonArray *stored = dv_json_get_array(row, "privileges");
        for (guint i = 0; stored != NULL && i < json_array_get_length(stored); i++)
            json_array_add_string_element(privs, json_array_get_string_element(stored, i));
        json_object_set_boolean_member(out, "own_objects_only", FALSE);
        json_object_set_boolean_member(out, "storage_redacted", FALSE);
    }
    json_object_set_array_member(out, "privileges", privs);
    json_object_set_string_member(out, "description", dv_json_get_string(row, "description", ""));
    return out;
}

JsonArray *
dv_authz_role_list(DvStore *store, GError **error)
{
    g_autoptr(JsonArray) rows = NULL;
    JsonArray *out;

    /* Roles are few (a custom role is made by hand): one page holds them. */
    rows = dv_store_list(store, &dv_table_roles, NULL, 0, DV_PAGE_MAX, NULL, NULL, error);
    if (rows == NULL)
        return NULL;
    out = json_array_new();
    for (guint i = 0; i < json_array_get_length(rows); i++)
        json_array_add_object_element(out,
                                      dv_authz_role_shape(json_array_get_object_element(rows, i)));
    return out;
}

static JsonObject *
dv_authz_role_row(DvStore *store, const char *id_or_name, GError **error)
{
    g_autoptr(GError) local = NULL;
    JsonObject *row;

    if (id_or_name == NULL || id_or_name[0] == '\0') {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "role", "role: is required");
        return NULL;
    }
    row = dv_store_get(store, &dv_table_roles, id_or_name, &local);
    if (row == NULL && g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_clear_error(&local);
        row = dv_store_find(store, &dv_table_roles, "name", id_or_name, &local);
    }
    if (row == NULL) {
        if (g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
            dv_set_field_error(error, DV_ERROR_NOT_FOUND, "role", "role: no role '%s'", id_or_name);
        else
            g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    return row;
}

JsonObject *
dv_authz_role_get(DvStore *store, const char *id_or_name, GError **error)
{
    g_autoptr(JsonObject) row = dv_authz_role_row(store, id_or_name, error);
    return row != NULL ? dv_authz_role_shape(row) : NULL;
}

static gboolean dv_authz_require_global(const DvAuthzContext *actor, const char *privilege,
                                        GError **error);

JsonObject *
dv_authz_role_create(DvStore *store, const DvAuthzContext *actor, const char *name,
                     const char *const *privileges, const char *description, GError **error)
{
    g_autoptr(JsonObject) rec = json_object_new();
    g_autofree char *id = g_uuid_string_random();
    JsonArray *arr = json_array_new();
    guint n = 0;

    json_object_set_array_member(rec, "privileges", arr);
    if (!dv_authz_require_global(actor, "role.create", error))
        return NULL;
    if (!dv_validate_name("name", name, error))
        return NULL;
    if (dv_authz_builtin_lookup(name) != NULL) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "name", "name: '%s' is a built-in role", name);
        return NULL;
    }
    for (; privileges != NULL && privileges[n] != NULL; n++) {
        if (!dv_authz_privilege_check("privileges", privileges[n], error))
            return NULL;
        json_array_add_string_element(arr, privileges[n]);
    }
    if (n == 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "privileges",
                           "privileges: at least one is required");
        return NULL;
    }
    if (description != NULL && strlen(description) > 1024) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "description",
                           "description: must be at most 1024 bytes");
        return NULL;
    }
    json_object_set_string_member(rec, "id", id);
    json_object_set_string_member(rec, "name", name);
    json_object_set_boolean_member(rec, "builtin", FALSE);
    json_object_set_string_member(rec, "description", description != NULL ? description : "");
    json_object_set_int_member(rec, "created_at", dv_store_now());
    if (!dv_store_insert(store, &dv_table_roles, rec, error))
        return NULL;
    return dv_authz_role_shape(rec);
}

typedef struct {
    const char *role_id;
} DvAuthzRoleDeleteTxn;

static gboolean
dv_authz_role_delete_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvAuthzRoleDeleteTxn *t = user_data;
    DvFilter f = { "role_id", DV_FILTER_EQ, t->role_id };
    gint64 bound = dv_store_count(store, &dv_table_bindings, &f, 1, error);

    if (bound < 0)
        return FALSE;
    if (bound > 0) {
        dv_set_field_error(
            error, DV_ERROR_CONFLICT, "role",
            "role: still bound by %" G_GINT64_FORMAT " binding(s); remove them first", bound);
        return FALSE;
    }
    return dv_store_delete(store, &dv_table_roles, t->role_id, error);
}

gboolean
dv_authz_role_delete(DvStore *store, const DvAuthzContext *actor, const char *id_or_name,
                     GError **error)
{
    g_autoptr(JsonObject) row = NULL;
    DvAuthzRoleDeleteTxn t;

    if (!dv_authz_require_global(actor, "role.delete", error))
        return FALSE;
    row = dv_authz_role_row(store, id_or_name, error);
    if (row == NULL)
        return FALSE;
    if (dv_authz_builtin_lookup(dv_json_get_string(row, "id", "")) != NULL) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "role",
                           "role: '%s' is built in and cannot be changed or deleted",
                           dv_json_get_string(row, "name", ""));
        return FALSE;
    }
    t.role_id = dv_json_get_string(row, "id", "");
    return dv_store_transaction(store, dv_authz_role_delete_txn, &t, error);
}

/* --- the resolved actor ------------------------------------------------------- */

typedef enum {
    DV_SCOPE_GLOBAL,
    DV_SCOPE_HOST_GROUP,
    DV_SCOPE_CATALOG,
    DV_SCOPE_LIBRARY_SHARE,
    DV_SCOPE_RUN_AS,
} DvAuthzScopeKind;

static const char *const dv_authz_scope_names[] = {
    "global", "host_group", "catalog", "library_share", "run_as", NULL,
};

/* A scope named directly is deeper than any host group chain. */
#define DV_AUTHZ_DEPTH_DIRECT 10000

typedef struct {
    DvAuthzScopeKind scope_kind;
    char *scope_id;
    gboolean user; /* a user binding (else a group binding) */
    gboolean deny;
    gboolean own_only;
    gboolean redacts;
    char *role_id;
    char *binding_id;
    char *role_name; /* for GET /session: what the actor holds, readable */
    char *principal; /* the user id or group DN the binding names */
} DvAuthzGrant;

struct _DvAuthzContext {
    gatomicrefcount ref;
    char *user_id;
    char *name;
    GPtrArray *grants[DV_AUTHZ_N_PRIVILEGES]; /* DvAuthzGrant *, shared; NULL: none */
    GPtrArray *all;                           /* every DvAuthzGrant (owns them) */
};

static void
dv_authz_grant_free(gpointer data)
{
    DvAuthzGrant *g = data;
    g_free(g->scope_id);
    g_free(g->role_id);
    g_free(g->binding_id);
    g_free(g->role_name);
    g_free(g->principal);
    g_free(g);
}

static DvAuthzContext *
dv_authz_context_alloc(const char *user_id, const char *name)
{
    DvAuthzContext *ctx = g_new0(DvAuthzContext, 1);
    g_atomic_ref_count_init(&ctx->ref);
    ctx->user_id = g_strdup(user_id);
    ctx->name = g_strdup(name);
    ctx->all = g_ptr_array_new_with_free_func(dv_authz_grant_free);
    return ctx;
}

DvAuthzContext *
dv_authz_context_ref(DvAuthzContext *ctx)
{
    g_atomic_ref_count_inc(&ctx->ref);
    return ctx;
}

void
dv_authz_context_unref(DvAuthzContext *ctx)
{
    if (ctx == NULL || !g_atomic_ref_count_dec(&ctx->ref))
        return;
    for (guint i = 0; i < DV_AUTHZ_N_PRIVILEGES; i++)
        if (ctx->grants[i] != NULL)
            g_ptr_array_unref(ctx->grants[i]);
    g_ptr_array_unref(ctx->all);
    g_free(ctx->user_id);
    g_free(ctx->name);
    g_free(ctx);
}

const char *
dv_authz_context_get_user_id(const DvAuthzContext *ctx)
{
    return ctx->user_id;
}

const char *
dv_authz_context_get_name(const DvAuthzContext *ctx)
{
    return ctx->name;
}

static void
dv_authz_context_add(DvAuthzContext *ctx, guint privilege, DvAuthzGrant *g)
{
    if (ctx->grants[privilege] == NULL)
        ctx->grants[privilege] = g_ptr_array_new();
    g_ptr_array_add(ctx->grants[privilege], g);
}

static int
dv_authz_scope_kind_parse(const char *s)
{
    for (guint i = 0; s != NULL && dv_authz_scope_names[i] != NULL; i++)
        if (strcmp(dv_authz_scope_names[i], s) == 0)
            return (int)i;
    return -1;
}

/* Adds one binding row's grants. */
static void
dv_authz_context_add_binding(DvAuthzContext *ctx, JsonObject *binding, JsonObject *role)
{
    const DvAuthzBuiltin *b = dv_authz_builtin_lookup(dv_json_get_string(role, "id", ""));
    JsonArray *custom = b == NULL ? dv_json_get_array(role, "privileges") : NULL;
    int scope = dv_authz_scope_kind_parse(dv_json_get_string(binding, "scope_kind", ""));
    DvAuthzGrant *g;

    if (scope < 0)
        return; /* written by a newer build: grants nothing here */
    g = g_new0(DvAuthzGrant, 1);
    g->scope_kind = (DvAuthzScopeKind)scope;
    g->scope_id = g_strdup(json_object_get_string_member_with_default(binding, "scope_id", NULL));
    g->user = g_strcmp0(dv_json_get_string(binding, "principal_kind", ""), "user") == 0;
    g->deny = g_strcmp0(dv_json_get_string(binding, "effect", ""), "deny") == 0;
    g->own_only = b != NULL && b->own_only;
    g->redacts = b != NULL && b->redacts;
    g->role_id = g_strdup(dv_json_get_string(role, "id", ""));
    g->binding_id = g_strdup(dv_json_get_string(binding, "id", ""));
    g->role_name = g_strdup(dv_json_get_string(role, "name", g->role_id));
    g->principal = g_strdup(dv_json_get_string(binding, "principal", ""));
    g_ptr_array_add(ctx->all, g);
    for (guint i = 0; i < DV_AUTHZ_N_PRIVILEGES; i++) {
        gboolean has = FALSE;
        if (b != NULL) {
            has = dv_authz_builtin_has(b, dv_authz_privilege_names[i]);
        } else {
            for (guint j = 0; custom != NULL && j < json_array_get_length(custom) && !has; j++)
                has = g_strcmp0(json_array_get_string_element(custom, j),
                                dv_authz_privilege_names[i]) == 0;
        }
        if (has)
            dv_authz_context_add(ctx, i, g);
    }
}

static gboolean
dv_authz_context_load(DvStore *store, DvAuthzContext *ctx, const char *principal_kind,
                      const char *principal, GHashTable *roles, GError **error)
{
    DvFilter f[2] = {
        { "principal_kind", DV_FILTER_EQ, principal_kind },
        { "principal", DV_FILTER_EQ, principal },
    };
    g_autoptr(JsonArray) rows =
        dv_store_list(store, &dv_table_bindings, f, 2, DV_AUTHZ_BINDINGS_MAX, NULL, NULL, error);
    if (rows == NULL)
        return FALSE;
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *b = json_array_get_object_element(rows, i);
        const char *role_id = dv_json_get_string(b, "role_id", "");
        JsonObject *role = g_hash_table_lookup(roles, role_id);
        if (role == NULL) {
            role = dv_store_get(store, &dv_table_roles, role_id, error);
            if (role == NULL)
                return FALSE;
            g_hash_table_insert(roles, g_strdup(role_id), role);
        }
        dv_authz_context_add_binding(ctx, b, role);
    }
    return TRUE;
}

DvAuthzContext *
dv_authz_context_new(DvStore *store, const char *user_id, const char *const *groups, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonObject) user = NULL;
    g_autoptr(DvAuthzContext) ctx = NULL;
    g_autoptr(GHashTable) roles =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)json_object_unref);

    user = user_id != NULL ? dv_store_get(store, &dv_table_users, user_id, &local) : NULL;
    if (user == NULL && local != NULL && !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    if (user == NULL || dv_json_get_bool(user, "disabled", FALSE)) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED,
                            user == NULL ? "the user no longer exists; log in again"
                                         : "this user is disabled");
        return NULL;
    }
    ctx = dv_authz_context_alloc(user_id, dv_json_get_string(user, "name", ""));
    if (!dv_authz_context_load(store, ctx, "user", user_id, roles, error))
        return NULL;
    for (guint i = 0; groups != NULL && groups[i] != NULL; i++)
        if (!dv_authz_context_load(store, ctx, "group", groups[i], roles, error))
            return NULL;
    return g_steal_pointer(&ctx);
}

DvAuthzContext *
dv_authz_context_restrict(const DvAuthzContext *ctx, const char *const *privileges, GError **error)
{
    g_autoptr(DvAuthzContext) out = dv_authz_context_alloc(ctx->user_id, ctx->name);

    for (guint i = 0; privileges != NULL && privileges[i] != NULL; i++) {
        int p = dv_authz_privilege_index(privileges[i]);
        if (!dv_authz_privilege_check("privileges", privileges[i], error))
            return NULL;
        if (!dv_authz_context_holds(ctx, privileges[i])) {
            dv_set_field_error(error, DV_ERROR_PERMISSION_DENIED, "privileges",
                               "privileges: %s is not held by user '%s'; a token never "
                               "exceeds its user",
                               privileges[i], ctx->name);
            return NULL;
        }
        if (out->grants[p] != NULL)
            continue;
        /* The grants are shared with @ctx's: copy each once. */
        for (guint j = 0; j < ctx->grants[p]->len; j++) {
            DvAuthzGrant *src = g_ptr_array_index(ctx->grants[p], j);
            DvAuthzGrant *g = g_new0(DvAuthzGrant, 1);
            *g = *src;
            g->scope_id = g_strdup(src->scope_id);
            g->role_id = g_strdup(src->role_id);
            g->binding_id = g_strdup(src->binding_id);
            g->role_name = g_strdup(src->role_name);
            g->principal = g_strdup(src->principal);
            g_ptr_array_add(out->all, g);
            dv_authz_context_add(out, (guint)p, g);
        }
    }
    return g_steal_pointer(&out);
}

gboolean
dv_authz_context_holds(const DvAuthzContext *ctx, const char *privilege)
{
    int p = dv_authz_privilege_index(privilege);
    if (p < 0 || ctx->grants[p] == NULL)
        return FALSE;
    for (guint i = 0; i < ctx->grants[p]->len; i++)
        if (!((DvAuthzGrant *)g_ptr_array_index(ctx->grants[p], i))->deny)
            return TRUE;
    return FALSE;
}

gboolean
dv_authz_context_redacts_storage(const DvAuthzContext *ctx)
{
    gboolean redacts = FALSE;
    for (guint i = 0; i < ctx->all->len; i++) {
        DvAuthzGrant *g = g_ptr_array_index(ctx->all, i);
        if (g->deny)
            continue;
        if (g->scope_kind == DV_SCOPE_GLOBAL &&
            strcmp(g->role_id, DV_AUTHZ_ROLE_ADMINISTRATOR) == 0)
            return FALSE;
        redacts = redacts || g->redacts;
    }
    return redacts;
}

JsonObject *
dv_authz_context_to_json(const DvAuthzContext *ctx)
{
    JsonObject *out = json_object_new();
    JsonArray *roles = json_array_new();
    JsonArray *privs = json_array_new();
    JsonArray *bindings = json_array_new();
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

    json_object_set_string_member(out, "user_id", ctx->user_id);
    json_object_set_string_member(out, "name", ctx->name);
    for (guint i = 0; i < ctx->all->len; i++) {
        DvAuthzGrant *g = g_ptr_array_index(ctx->all, i);
        if (!g->deny && g_hash_table_add(seen, g->role_id))
            json_array_add_string_element(roles, g->role_id);
    }
    for (guint i = 0; i < DV_AUTHZ_N_PRIVILEGES; i++)
        if (dv_authz_context_holds(ctx, dv_authz_privilege_names[i]))
            json_array_add_string_element(privs, dv_authz_privilege_names[i]);
    /* Each binding that gives the actor something, as GET /bindings
     * spells its rows, with the role's name: what `drover login` shows. */
    g_hash_table_remove_all(seen);
    for (guint i = 0; i < ctx->all->len; i++) {
        DvAuthzGrant *g = g_ptr_array_index(ctx->all, i);
        JsonObject *b;
        if (!g_hash_table_add(seen, g->binding_id))
            continue;
        b = json_object_new();
        json_object_set_string_member(b, "id", g->binding_id);
        json_object_set_string_member(b, "principal_kind", g->user ? "user" : "group");
        json_object_set_string_member(b, "principal", g->principal);
        json_object_set_string_member(b, "role_id", g->role_id);
        json_object_set_string_member(b, "role", g->role_name);
        json_object_set_string_member(b, "scope_kind", dv_authz_scope_names[g->scope_kind]);
        if (g->scope_id != NULL)
            json_object_set_string_member(b, "scope_id", g->scope_id);
        else
            json_object_set_null_member(b, "scope_id");
        json_object_set_string_member(b, "effect", g->deny ? "deny" : "allow");
        json_array_add_object_element(bindings, b);
    }
    json_object_set_array_member(out, "roles", roles);
    json_object_set_array_member(out, "bindings", bindings);
    json_object_set_array_member(out, "privileges", privs);
    json_object_set_boolean_member(out, "storage_redacted", dv_authz_context_redacts_storage(ctx));
    return out;
}

/* --- the decision ------------------------------------------------------------- */

/* How deep @g's scope covers @o: -1 when it does not. */
static int
dv_authz_grant_depth(const DvAuthzGrant *g, const DvAuthzObject *o)
{
    switch (g->scope_kind) {
    case DV_SCOPE_GLOBAL:
        return 0;
    case DV_SCOPE_HOST_GROUP:
        for (guint i = 0; o->host_group_path != NULL && o->host_group_path[i] != NULL; i++)
            if (g_strcmp0(o->host_group_path[i], g->scope_id) == 0)
                return (int)i + 1;
        return -1;
    case DV_SCOPE_CATALOG:
        return g_strcmp0(o->catalog_id, g->scope_id) == 0 ? DV_AUTHZ_DEPTH_DIRECT : -1;
    case DV_SCOPE_LIBRARY_SHARE:
        return g_strcmp0(o->library_share_id, g->scope_id) == 0 ? DV_AUTHZ_DEPTH_DIRECT : -1;
    case DV_SCOPE_RUN_AS:
        return g_strcmp0(o->run_as_id, g->scope_id) == 0 ? DV_AUTHZ_DEPTH_DIRECT : -1;
    }
    return -1;
}

/* Installation-wide definitions that every scope uses (a VM of any host
 * group may be made with any profile): read by whoever holds their read
 * privilege in some scope; made, changed and deleted under a global
 * binding only (docs/ACCESS.md, "Guest OS profiles"). */
static const char *const dv_authz_read_anywhere_kinds[] = { "guest_os_profile", NULL };

/* Whether privilege @p is the read of @kind, a kind read anywhere. */
static gboolean
dv_authz_reads_anywhere(const char *kind, guint p)
{
    const char *name = dv_authz_privilege_names[p];
    gsize len;

    if (kind == NULL || !g_strv_contains(dv_authz_read_anywhere_kinds, kind))
        return FALSE;
    len = strlen(kind);
    return strncmp(name, kind, len) == 0 && strcmp(name + len, ".read") == 0;
}

static DvAuthzDecision dv_authz_decide_index(const DvAuthzContext *ctx, guint p,
                                             const DvAuthzObject *o);

/* Whether some allow of @p decides at its own scope: the place it names
 * (a host group alone: an ancestor's grant is shallower than the allow,
 * so it could not beat it), decided with every grant of @p, denies
 * included. */
static gboolean
dv_authz_held_somewhere(const DvAuthzContext *ctx, guint p)
{
    GPtrArray *grants = ctx->grants[p];

    for (guint i = 0; grants != NULL && i < grants->len; i++) {
        const DvAuthzGrant *g = g_ptr_array_index(grants, i);
        const char *path[] = { g->scope_id, NULL };
        DvAuthzObject o = { 0 };
        if (g->deny)
            continue;
        switch (g->scope_kind) {
        case DV_SCOPE_GLOBAL:
            break;
        case DV_SCOPE_HOST_GROUP:
            o.host_group_path = path;
            break;
        case DV_SCOPE_CATALOG:
            o.catalog_id = g->scope_id;
            break;
        case DV_SCOPE_LIBRARY_SHARE:
            o.library_share_id = g->scope_id;
            break;
        case DV_SCOPE_RUN_AS:
            o.run_as_id = g->scope_id;
            break;
        }
        /* o.kind is NULL: decided as a place, not again as a profile. */
        if (dv_authz_decide_index(ctx, p, &o) == DV_AUTHZ_ALLOW)
            return TRUE;
    }
    return FALSE;
}

static DvAuthzDecision
dv_authz_decide_index(const DvAuthzContext *ctx, guint p, const DvAuthzObject *o)
{
    GPtrArray *grants = ctx->grants[p];
    gboolean owned_kind = o->kind != NULL && g_strv_contains(dv_authz_owned_kinds, o->kind);
    gboolean own = o->owner_id != NULL && g_strcmp0(o->owner_id, ctx->user_id) == 0;
    int best = -1;
    gboolean allowed = FALSE;

    if (dv_authz_reads_anywhere(o->kind, p))
        return dv_authz_held_somewhere(ctx, p) ? DV_AUTHZ_ALLOW : DV_AUTHZ_FORBIDDEN;
    for (guint i = 0; grants != NULL && i < grants->len; i++) {
        DvAuthzGrant *g = g_ptr_array_index(grants, i);
        int depth = dv_authz_grant_depth(g, o);
        int rank;
        if (depth < 0 || (g->own_only && owned_kind && !own))
            continue;
        rank = depth * 2 + (g->user ? 1 : 0);
        if (rank > best) {
            best = rank;
            allowed = !g->deny;
        } else if (rank == best && g->deny) {
            allowed = FALSE;
        }
    }
    return best >= 0 && allowed ? DV_AUTHZ_ALLOW : DV_AUTHZ_FORBIDDEN;
}

/* "<kind>.read" of a privilege's kind, or -1. */
static int
dv_authz_read_of(guint p)
{
    const char *name = dv_authz_privilege_names[p];
    const char *dot = strchr(name, '.');
    g_autofree char *read = g_strdup_printf("%.*s.read", (int)(dot - name), name);
    return dv_authz_privilege_index(read);
}

const char *
dv_authz_decide_binding(const DvAuthzContext *ctx, const char *privilege,
                        const DvAuthzObject *object)
{
    int p = dv_authz_privilege_index(privilege);
    GPtrArray *grants;
    gboolean owned_kind, own;
    const DvAuthzGrant *best_grant = NULL;
    int best = -1;

    if (p < 0 || dv_authz_decide_index(ctx, (guint)p, object) != DV_AUTHZ_ALLOW)
        return NULL;
    /* The same ranking as dv_authz_decide_index(): the first allow of the
     * highest rank is the binding that decided. */
    grants = ctx->grants[p];
    owned_kind = object->kind != NULL && g_strv_contains(dv_authz_owned_kinds, object->kind);
    own = object->owner_id != NULL && g_strcmp0(object->owner_id, ctx->user_id) == 0;
    for (guint i = 0; grants != NULL && i < grants->len; i++) {
        const DvAuthzGrant *g = g_ptr_array_index(grants, i);
        int depth = dv_authz_grant_depth(g, object);
        int rank;
        if (depth < 0 || g->deny || (g->own_only && owned_kind && !own))
            continue;
        rank = depth * 2 + (g->user ? 1 : 0);
        if (rank > best) {
            best = rank;
            best_grant = g;
        }
    }
    return best_grant != NULL ? best_grant->binding_id : NULL;
}

DvAuthzDecision
dv_authz_decide(const DvAuthzContext *ctx, const char *privilege, const DvAuthzObject *object)
{
    int p = dv_authz_privilege_index(privilege);
    int r;

    g_return_val_if_fail(p >= 0, DV_AUTHZ_NOT_FOUND);
    if (dv_authz_decide_index(ctx, (guint)p, object) == DV_AUTHZ_ALLOW)
        return DV_AUTHZ_ALLOW;
    /* Refused: 403 only when the object is visible to the actor. */
    r = dv_authz_read_of((guint)p);
    if (r >= 0 && r != p && dv_authz_decide_index(ctx, (guint)r, object) == DV_AUTHZ_ALLOW)
        return DV_AUTHZ_FORBIDDEN;
    return DV_AUTHZ_NOT_FOUND;
}

gboolean
dv_authz_check(const DvAuthzContext *ctx, const char *privilege, const DvAuthzObject *object,
               GError **error)
{
    if (!dv_authz_privilege_check("privilege", privilege, error))
        return FALSE;
    switch (dv_authz_decide(ctx, privilege, object)) {
    case DV_AUTHZ_ALLOW:
        return TRUE;
    case DV_AUTHZ_FORBIDDEN:
        g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                    "user '%s' lacks the privilege %s on this %s", ctx->name, privilege,
                    object->kind != NULL ? object->kind : "object");
        return FALSE;
    case DV_AUTHZ_NOT_FOUND:
        break;
    }
    /* A new object has no id yet: what is not found is a place in the
     * caller's scope to make it in. */
    if (object->id == NULL)
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND,
                    "no place in the scope of user '%s' to make a %s there", ctx->name,
                    object->kind != NULL ? object->kind : "object");
    else
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "%s %s not found",
                    object->kind != NULL ? object->kind : "object", object->id);
    return FALSE;
}

gboolean
dv_authz_check_run_as_use(const DvAuthzContext *ctx, const char *run_as_id, GError **error)
{
    DvAuthzObject o = { .kind = "run_as", .id = run_as_id, .run_as_id = run_as_id };
    return run_as_id == NULL || dv_authz_check(ctx, "run_as.use", &o, error);
}

/* Needs @privilege over everything (global binding). */
static gboolean
dv_authz_require_global(const DvAuthzContext *actor, const char *privilege, GError **error)
{
    const char *dot = strchr(privilege, '.');
    g_autofree char *kind = g_strndup(privilege, (gsize)(dot - privilege));
    DvAuthzObject o = { .kind = kind };

    if (actor == NULL)
        return TRUE; /* the engine itself (setup, migration, tests) */
    if (dv_authz_decide_index(actor, (guint)dv_authz_privilege_index(privilege), &o) ==
        DV_AUTHZ_ALLOW)
        return TRUE;
    /* Global objects are known to all: refused, never "not found". */
    g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED, "user '%s' lacks the privilege %s",
                actor->name, privilege);
    return FALSE;
}

#define DV_AUTHZ_HOST_GROUP_DEPTH_MAX 64

char **
dv_authz_host_group_path(DvStore *store, const char *id, GError **error)
{
    g_autoptr(GPtrArray) chain = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *cur = g_strdup(id);
    GStrvBuilder *b;
    char **out;

    while (cur != NULL) {
        g_autoptr(JsonObject) row = dv_store_get(store, &dv_table_host_groups, cur, error);
        const char *parent;
        if (row == NULL)
            return NULL;
        if (chain->len >= DV_AUTHZ_HOST_GROUP_DEPTH_MAX) {
            g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL,
                        "host group %s: deeper than %d or a loop", id,
                        DV_AUTHZ_HOST_GROUP_DEPTH_MAX);
            return NULL;
        }
        g_ptr_array_add(chain, g_steal_pointer(&cur));
        parent = json_object_get_string_member_with_default(row, "parent_id", NULL);
        cur = parent != NULL && parent[0] != '\0' ? g_strdup(parent) : NULL;
    }
    b = g_strv_builder_new();
    for (guint i = chain->len; i > 0; i--)
        g_strv_builder_add(b, g_ptr_array_index(chain, i - 1));
    out = g_strv_builder_end(b);
    g_strv_builder_unref(b);
    return out;
}

/* --- list filters ------------------------------------------------------------- */

void
dv_authz_filter_free(DvAuthzFilter *filter)
{
    if (filter == NULL)
        return;
    g_free(filter->where);
    g_ptr_array_unref(filter->values);
    g_free(filter);
}

DvSqlParam *
dv_authz_filter_params(const DvAuthzFilter *filter, guint *ret_n)
{
    DvSqlParam *p = g_new0(DvSqlParam, filter->values->len + 1);
    for (guint i = 0; i < filter->values->len; i++)
        p[i] = DV_SQL_TEXT_P((const char *)g_ptr_array_index(filter->values, i));
    *ret_n = filter->values->len;
    return p;
}

/* How a kind's rows reach a scope: the column holding the host group (or
 * the SQL giving it), the owner column, the directly named scope. */
typedef struct {
    const char *kind;
    const char *group_expr; /* "%s" is replaced by the group id list; NULL: none */
    const char *owner_column;
    DvAuthzScopeKind direct; /* DV_SCOPE_GLOBAL: none */
    const char *direct_column;
    /* Rows the actor made itself, shown whenever it holds the privilege
     * somewhere (its own audit entries): the column holding its user id. */
    const char *self_column;
    const char *read; /* the privilege that shows a row; NULL: "<kind>.read" */
    /* The rows under no host group, shown with a global allow; NULL: none
     * shown once a deny makes the filter list the groups. */
    const char *ungrouped;
} DvAuthzListRule;

#define DV_AUTHZ_SHARE_UNGROUPED                                                                   \
    "host_id IS NULL OR host_id IN (SELECT id FROM hosts WHERE host_group_id IS NULL)"

/* The direct scopes an audit entry may name (migration 0011), read by
 * the audit list filter below and checked by dv_audit_record_scoped(). */
static const struct {
    const char *name;
    DvAuthzScopeKind kind;
} dv_audit_scopes[] = {
    { "catalog", DV_SCOPE_CATALOG },
    { "library_share", DV_SCOPE_LIBRARY_SHARE },
    { "run_as", DV_SCOPE_RUN_AS },
};

#define DV_AUTHZ_BY_HOST "host_id IN (SELECT id FROM hosts WHERE host_group_id IN (%s))"
#define DV_AUTHZ_HOST_UNGROUPED "host_id IN (SELECT id FROM hosts WHERE host_group_id IS NULL)"

static const DvAuthzListRule dv_authz_list_rules[] = {
    { "host_group", "id IN (%s)", NULL, DV_SCOPE_GLOBAL, NULL },
    /* .ungrouped: what a global allow still covers once a deny somewhere
     * makes the filter list the groups (dv_authz_check() allows those rows
     * one by one, so the list shows them too). */
    { "cluster", "host_group_id IN (%s)", NULL, DV_SCOPE_GLOBAL, NULL,
      .ungrouped = "host_group_id IS NULL" },
    { "host", "host_group_id IN (%s)", NULL, DV_SCOPE_GLOBAL, NULL,
      .ungrouped = "host_group_id IS NULL" },
    { "pool", DV_AUTHZ_BY_HOST, NULL, DV_SCOPE_GLOBAL, NULL, .ungrouped = DV_AUTHZ_HOST_UNGROUPED },
    { "volume", DV_AUTHZ_BY_HOST, NULL, DV_SCOPE_GLOBAL, NULL,
      .ungrouped = DV_AUTHZ_HOST_UNGROUPED },
    { "network", DV_AUTHZ_BY_HOST, NULL, DV_SCOPE_GLOBAL, NULL,
      .ungrouped = DV_AUTHZ_HOST_UNGROUPED },
    /* vms.host_group_id is the host's, kept by triggers (migration 0009):
     * one group's page reads vms_host_group_idx in (name, id) order. */
    { "vm", "host_group_id IN (%s)", "owner_id", DV_SCOPE_GLOBAL, NULL,
      .ungrouped = "host_group_id IS NULL" },
    /* A job is under its host's group; one on no host (a host group made,
     * a host add that failed) is its creator's, as every job of the caller
     * is wherever it holds job.read (self_column). */
    { "job", DV_AUTHZ_BY_HOST, "created_by", DV_SCOPE_GLOBAL, NULL, "created_by",
      .ungrouped = DV_AUTHZ_HOST_UNGROUPED },
    /* A catalog is under the host group it targets (a cluster's group for a
     * cluster); a catalog of a list of hosts is under no group. */
    { "catalog",
      "(CASE target_kind WHEN 'host-group' THEN target_id WHEN 'cluster' THEN (SELECT "
      "host_group_id FROM clusters WHERE clusters.id = target_id) END) IN (%s)",
      NULL, DV_SCOPE_CATALOG, "id",
      .ungrouped = "(CASE target_kind WHEN 'host-group' THEN target_id WHEN 'cluster' THEN "
                   "(SELECT host_group_id FROM clusters WHERE clusters.id = target_id) END) "
                   "IS NULL" },
    /* A catalog machine is a VM of its catalog: shown by vm.read over its
     * host, its catalog or (own-only grants) its owner. */
    { "catalog_machine", DV_AUTHZ_BY_HOST, "owner_id", DV_SCOPE_CATALOG, "catalog_id", NULL,
      "vm.read", DV_AUTHZ_HOST_UNGROUPED },
    /* A share lives on a host and is under its group; a share of the
     * library root (no host) through its own scope only.  Its templates
     * follow it either way. */
    { "library_share", DV_AUTHZ_BY_HOST, NULL, DV_SCOPE_LIBRARY_SHARE, "id", NULL, NULL,
      DV_AUTHZ_SHARE_UNGROUPED },
    { "template", "library_share_id IN (SELECT id FROM library_shares WHERE " DV_AUTHZ_BY_HOST ")",
      NULL, DV_SCOPE_LIBRARY_SHARE, "library_share_id", NULL, NULL,
      "library_share_id IS NULL OR library_share_id IN (SELECT id FROM library_shares "
      "WHERE " DV_AUTHZ_SHARE_UNGROUPED ")" },
    { "run_as", NULL, NULL, DV_SCOPE_RUN_AS, "id" },
    /* Read anywhere (dv_authz_read_anywhere_kinds): "1=1" or "1=0". */
    { "guest_os_profile", NULL, NULL, DV_SCOPE_GLOBAL, NULL },
    { "setting", NULL, NULL, DV_SCOPE_GLOBAL, NULL },
    { "user", NULL, NULL, DV_SCOPE_GLOBAL, NULL },
    { "role", NULL, NULL, DV_SCOPE_GLOBAL, NULL },
    /* An entry about an object in a host group is read in that group's
     * scope; one with no group (users, roles, settings, catalogs...) is
     * installation-wide: global readers only. */
    { "audit", "host_group_id IN (%s)", NULL, DV_SCOPE_GLOBAL, NULL, "actor_id" },
};

static void
dv_authz_append_in(GString *sql, const char *expr, GPtrArray *ids, GPtrArray *values)
{
    g_autoptr(GString) marks = g_string_new(NULL);
    for (guint i = 0; i < ids->len; i++) {
        g_string_append(marks, i == 0 ? "?" : ", ?");
        g_ptr_array_add(values, g_strdup(g_ptr_array_index(ids, i)));
    }
    if (sql->len > 0)
        g_string_append(sql, " OR ");
    g_string_append_c(sql, '(');
    /* @expr is one of the constant rules above. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    g_string_append_printf(sql, expr, marks->str);
#pragma GCC diagnostic pop
    g_string_append_c(sql, ')');
}

/* A row under an allowed host group whose own scope (catalog, share) the
 * actor is denied directly: the deeper deny wins, so the group part of
 * @sql becomes "(<group part>) AND <column> NOT IN (the denied ones)".
 * The rows allowed through an own-objects grant there are added back by
 * the direct part of the filter. */
static void
dv_authz_exclude_denied(const DvAuthzContext *ctx, guint p, const DvAuthzListRule *rule,
                        GString *sql, GPtrArray *values)
{
    g_autoptr(GPtrArray) denied = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GString) marks = g_string_new(NULL);

    for (guint i = 0; ctx->grants[p] != NULL && i < ctx->grants[p]->len; i++) {
        const DvAuthzGrant *g = g_ptr_array_index(ctx->grants[p], i);
        DvAuthzObject o = { .kind = rule->kind };
        if (!g->deny || g->scope_kind != rule->direct)
            continue;
        o.catalog_id = rule->direct == DV_SCOPE_CATALOG ? g->scope_id : NULL;
        o.library_share_id = rule->direct == DV_SCOPE_LIBRARY_SHARE ? g->scope_id : NULL;
        o.run_as_id = rule->direct == DV_SCOPE_RUN_AS ? g->scope_id : NULL;
        /* A directly named scope is deeper than any group: its own
         * grants alone decide it. */
        if (dv_authz_decide_index(ctx, p, &o) != DV_AUTHZ_ALLOW)
            g_ptr_array_add(denied, g_strdup(g->scope_id));
    }
    if (denied->len == 0)
        return;
    for (guint i = 0; i < denied->len; i++) {
        g_string_append(marks, i == 0 ? "?" : ", ?");
        g_ptr_array_add(values, g_strdup(g_ptr_array_index(denied, i)));
    }
    g_string_prepend_c(sql, '(');
    g_string_append_printf(sql, ") AND (%s IS NULL OR %s NOT IN (%s))", rule->direct_column,
                           rule->direct_column, marks->str);
}

DvAuthzFilter *
dv_authz_list_filter(DvStore *store, const DvAuthzContext *ctx, const char *kind, GError **error)
{
    g_autofree char *read = NULL;
    int p = -1;
    const DvAuthzListRule *rule = NULL;
    g_autoptr(DvAuthzFilter) f = g_new0(DvAuthzFilter, 1);
    g_autoptr(GString) sql = g_string_new(NULL);
    gboolean any_deny = FALSE, global_allow = FALSE, own_only = FALSE, own_global = FALSE;
    const char *owner_value = NULL;
    DvAuthzObject top = { .kind = kind };

    f->values = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < G_N_ELEMENTS(dv_authz_list_rules) && kind != NULL; i++)
        if (strcmp(dv_authz_list_rules[i].kind, kind) == 0)
            rule = &dv_authz_list_rules[i];
    if (rule != NULL) {
        read = rule->read != NULL ? g_strdup(rule->read) : g_strdup_printf("%s.read", kind);
        p = dv_authz_privilege_index(read);
    }
    if (rule == NULL || p < 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "kind",
                           "kind: '%s' is not an object kind with a list",
                           kind != NULL ? kind : "");
        return NULL;
    }
    for (guint i = 0; ctx->grants[p] != NULL && i < ctx->grants[p]->len; i++) {
        DvAuthzGrant *g = g_ptr_array_index(ctx->grants[p], i);
        any_deny = any_deny || g->deny;
        own_only = own_only || (!g->deny && g->own_only);
    }
    global_allow = dv_authz_decide_index(ctx, (guint)p, &top) == DV_AUTHZ_ALLOW;
    if (dv_authz_reads_anywhere(kind, (guint)p)) {
        f->where = g_strdup(global_allow ? "1=1" : "1=0");
        return g_steal_pointer(&f);
    }
    if (global_allow && !any_deny && !(own_only && rule->owner_column != NULL)) {
        f->where = g_strdup("1=1");
        return g_steal_pointer(&f);
    }
    if (rule->owner_column != NULL && own_only) {
        DvAuthzObject o = { .kind = kind, .owner_id = ctx->user_id };
        own_global = !any_deny && dv_authz_decide_index(ctx, (guint)p, &o) == DV_AUTHZ_ALLOW;
        owner_value = strcmp(rule->owner_column, "created_by") == 0 ? ctx->name : ctx->user_id;
    }
    if (rule->group_expr != NULL) {
        /* Each host group decided as an object of this kind inside it: the
         * groups are few and read in one query, the rows under them many.
         * A group reached only through an own-objects grant shows the
         * actor's own rows there. */
        g_autoptr(DvSqlRows) rows = dv_db_query(
            dv_store_get_db(store), "SELECT id, parent_id FROM host_groups", DV_SQL_NO_ARGS, error);
        g_autoptr(GHashTable) parents = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) own_ids = g_ptr_array_new_with_free_func(g_free);
        if (rows == NULL)
            return NULL;
        for (guint r = 0; r < dv_sql_rows_get_n_rows(rows); r++)
            g_hash_table_insert(parents, (gpointer)dv_sql_rows_get_text(rows, r, 0),
                                (gpointer)dv_sql_rows_get_text(rows, r, 1));
        for (guint r = 0; r < dv_sql_rows_get_n_rows(rows); r++) {
            const char *path[DV_AUTHZ_HOST_GROUP_DEPTH_MAX + 1];
            const char *chain[DV_AUTHZ_HOST_GROUP_DEPTH_MAX];
            const char *cur = dv_sql_rows_get_text(rows, r, 0);
            guint depth = 0;
            DvAuthzObject o = { .kind = kind, .host_group_path = path };
            while (cur != NULL && depth < DV_AUTHZ_HOST_GROUP_DEPTH_MAX) {
                chain[depth++] = cur;
                cur = g_hash_table_lookup(parents, cur);
            }
            if (cur != NULL)
                continue; /* a loop or a tree deeper than any we make: shown to nobody */
            for (guint i = 0; i < depth; i++)
                path[i] = chain[depth - 1 - i];
            path[depth] = NULL;
            if (dv_authz_decide_index(ctx, (guint)p, &o) == DV_AUTHZ_ALLOW) {
                g_ptr_array_add(ids, g_strdup(dv_sql_rows_get_text(rows, r, 0)));
                continue;
            }
            o.owner_id = ctx->user_id;
            if (owner_value != NULL && !own_global &&
                dv_authz_decide_index(ctx, (guint)p, &o) == DV_AUTHZ_ALLOW)
                g_ptr_array_add(own_ids, g_strdup(dv_sql_rows_get_text(rows, r, 0)));
        }
        if (ids->len > 0)
            dv_authz_append_in(sql, rule->group_expr, ids, f->values);
        if (own_ids->len > 0) {
            g_autofree char *expr =
                g_strdup_printf("%s = ? AND %s", rule->owner_column, rule->group_expr);
            g_ptr_array_add(f->values, g_strdup(owner_value));
            dv_authz_append_in(sql, expr, own_ids, f->values);
        }
        if (global_allow && rule->ungrouped != NULL) {
            if (sql->len > 0)
                g_string_append(sql, " OR ");
            g_string_append_printf(sql, "(%s)", rule->ungrouped);
        }
        if (sql->len > 0 && rule->direct != DV_SCOPE_GLOBAL)
            dv_authz_exclude_denied(ctx, (guint)p, rule, sql, f->values);
    }
    if (rule->direct != DV_SCOPE_GLOBAL) {
        g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) own_ids = g_ptr_array_new_with_free_func(g_free);
        for (guint i = 0; ctx->grants[p] != NULL && i < ctx->grants[p]->len; i++) {
            DvAuthzGrant *g = g_ptr_array_index(ctx->grants[p], i);
            DvAuthzObject o = { .kind = kind };
            if (g->deny || g->scope_kind != rule->direct)
                continue;
            o.catalog_id = rule->direct == DV_SCOPE_CATALOG ? g->scope_id : NULL;
            o.library_share_id = rule->direct == DV_SCOPE_LIBRARY_SHARE ? g->scope_id : NULL;
            o.run_as_id = rule->direct == DV_SCOPE_RUN_AS ? g->scope_id : NULL;
            if (dv_authz_decide_index(ctx, (guint)p, &o) == DV_AUTHZ_ALLOW) {
                g_ptr_array_add(ids, g_strdup(g->scope_id));
                continue;
            }
            /* An own-objects grant on a catalog: the actor's own machines there. */
            o.owner_id = ctx->user_id;
            if (owner_value != NULL && !own_global &&
                dv_authz_decide_index(ctx, (guint)p, &o) == DV_AUTHZ_ALLOW)
                g_ptr_array_add(own_ids, g_strdup(g->scope_id));
        }
        if (ids->len > 0) {
            g_autofree char *expr = g_strdup_printf("%s IN (%%s)", rule->direct_column);
            dv_authz_append_in(sql, expr, ids, f->values);
        }
        if (own_ids->len > 0) {
            g_autofree char *expr =
                g_strdup_printf("%s = ? AND %s IN (%%s)", rule->owner_column, rule->direct_column);
            g_ptr_array_add(f->values, g_strdup(owner_value));
            dv_authz_append_in(sql, expr, own_ids, f->values);
        }
    }
    if (own_global) {
        if (sql->len > 0)
            g_string_append(sql, " OR ");
        g_string_append_printf(sql, "(%s = ?)", rule->owner_column);
        g_ptr_array_add(f->values, g_strdup(owner_value));
    }
    if (strcmp(kind, "audit") == 0) {
        /* An entry about a catalog, a library share or a Run As account is
         * read by whoever reads audit in that object's own scope. */
        for (guint k = 0; k < G_N_ELEMENTS(dv_audit_scopes); k++) {
            g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
            g_autofree char *expr = NULL;
            for (guint i = 0; ctx->grants[p] != NULL && i < ctx->grants[p]->len; i++) {
                DvAuthzGrant *g = g_ptr_array_index(ctx->grants[p], i);
                DvAuthzObject o = { .kind = kind };
                if (g->deny || g->scope_kind != dv_audit_scopes[k].kind)
                    continue;
                o.catalog_id = g->scope_kind == DV_SCOPE_CATALOG ? g->scope_id : NULL;
                o.library_share_id = g->scope_kind == DV_SCOPE_LIBRARY_SHARE ? g->scope_id : NULL;
                o.run_as_id = g->scope_kind == DV_SCOPE_RUN_AS ? g->scope_id : NULL;
                if (dv_authz_decide_index(ctx, (guint)p, &o) == DV_AUTHZ_ALLOW)
                    g_ptr_array_add(ids, g_strdup(g->scope_id));
            }
            if (ids->len == 0)
                continue;
            /* The names are the constants above, never input. */
            expr =
                g_strdup_printf("scope_kind = '%s' AND scope_id IN (%%s)", dv_audit_scopes[k].name);
            dv_authz_append_in(sql, expr, ids, f->values);
        }
    }
    if (rule->self_column != NULL && dv_authz_context_holds(ctx, read)) {
        if (sql->len > 0)
            g_string_append(sql, " OR ");
        g_string_append_printf(sql, "(%s = ?)", rule->self_column);
        /* jobs.created_by holds the user's name, audit_log.actor_id its id. */
        g_ptr_array_add(f->values, g_strdup(strcmp(rule->self_column, "created_by") == 0
                                                ? ctx->name
                                                : ctx->user_id));
    }
    f->where = sql->len > 0 ? g_strdup_printf("(%s)", sql->str) : g_strdup("1=0");
    return g_steal_pointer(&f);
}

/* --- redaction ---------------------------------------------------------------- */

typedef struct {
    const char *kind;
    const char *const fields[8];
} DvAuthzStorageFields;

/* Storage data (seed 004): what a delegated administrator must not see. */
static const DvAuthzStorageFields dv_authz_storage[] = {
    { "vm", { "pool", "pool_id", "pool_name", "disks", "disk_path", "volumes", NULL } },
    { "template", { "disk_volume", "pool", "pool_name", "disk_path", NULL } },
    { "catalog", { "pool_name", "pool", "pool_id", "personal_disk_mib", "personal_disk_pool", NULL } },
    { "catalog_machine", { "overlay_path", "identity_path", "personal_path", "base_id", NULL } },
    { "catalog_base", { "pool_name", "volume_name", "path", "format", "capacity", NULL } },
    { "host", { "pools", "volumes", NULL } },
    { "library_share", { "path", "pool_name", NULL } },
    { "pool", { "path", "capacity", "allocation", "available", "uuid", "volumes", NULL } },
    { "volume", { "path", "vkey", "pool_id", "capacity", "allocation", "format", NULL } },
};

/* A job's params and result are the inputs and outputs of any operation
 * (a VM's disks, a catalog's pool, a share's path, a reconcile's orphan
 * volumes), nested at any depth: these members are storage data wherever
 * they appear inside them.  The job record's own members (kind, state,
 * target, steps, progress, error) are not. */
static const char *const dv_authz_job_storage[] = {
    "pool", "pool_id", "pool_name", "pools", "disks", "disk_path", "disk_volume", "volume",
    "volumes", "path", "overlay_path", "identity_path", "personal_path", "base_path",
    "personal_disk_pool",
    /* a catalog reconcile's report: volumes on hosts, by pool and path */
    "orphans_on_hosts", "missing_on_hosts", "pool_problems",
    NULL,
};
/* Lists of volumes a reconcile removed; a catalog delete's boolean
 * "deleted" is no storage data and stays. */
static const char *const dv_authz_job_storage_lists[] = { "deleted", "delete_failed", NULL };
static const char *const dv_authz_job_parts[] = { "params", "result", NULL };
/* Free text an operation wrote from whatever failed (a libvirt error
 * quoting a volume path, a pool's name, a share's directory): inside a
 * job's params and result, a string member of these names is replaced. */
static const char *const dv_authz_job_texts[] = { "error", "message", NULL };

/* What a redacting actor reads instead of a message that may name storage:
 * the error's code and field, which are Drover's words, never a path. */
static char *
dv_authz_withheld_message(const char *code, const char *field)
{
    static const char withheld[] = "the message is withheld: it may name storage (pools, "
                                   "volumes, paths) that this view does not show";
    if (code == NULL)
        return g_strdup(withheld);
    return g_strdup_printf("failed (%s%s%s); %s", code, field != NULL ? ", field " : "",
                           field != NULL ? field : "", withheld);
}

/* A job's error for a redacting actor: the public message the job recorded
 * beside the full one when there is one (the job manager's own messages),
 * else the withheld text.  Never a pattern over the message: a path a
 * pattern does not know would pass. */
static void
dv_authz_redact_job_error(JsonObject *error)
{
    const char *pub = dv_json_get_string(error, "public_message", NULL);
    g_autofree char *text =
        pub != NULL ? g_strdup(pub)
                    : dv_authz_withheld_message(dv_json_get_string(error, "code", NULL),
                                                dv_json_get_string(error, "field", NULL));
    json_object_set_string_member(error, "message", text);
    if (json_object_has_member(error, "public_message"))
        json_object_remove_member(error, "public_message");
}

/* A catalog machine's, image's or base's "error" column for a redacting
 * actor: the free text of whatever failed (a libvirt error quoting a
 * volume path, a pool's name) becomes the withheld text with the row's
 * state and step (Drover's words), as a job's error does. */
static void
dv_authz_redact_row_error(JsonObject *row)
{
    g_autofree char *code = NULL;
    g_autofree char *text = NULL;
    const char *step = dv_json_get_string(row, "step", NULL);

    if (dv_json_get_string(row, "error", NULL) == NULL)
        return;
    code = step != NULL ? g_strdup_printf("%s at step %s", dv_json_get_string(row, "state", "failed"), step)
                        : g_strdup(dv_json_get_string(row, "state", "failed"));
    text = g_strdup_printf("%s; the message is withheld: it may name storage (pools, volumes, "
                           "paths) that this view does not show",
                           code);
    json_object_set_string_member(row, "error", text);
}

/* A catalog's images (GET /catalogs/{ref}/images): each image's error and
 * each base's volume name and error; @object is the image or the page of
 * them ({items}). */
static void
dv_authz_redact_catalog_image(JsonObject *object)
{
    JsonArray *a = dv_json_get_array(object, "items");

    for (guint i = 0; a != NULL && i < json_array_get_length(a); i++) {
        JsonNode *n = json_array_get_element(a, i);
        if (JSON_NODE_HOLDS_OBJECT(n))
            dv_authz_redact_catalog_image(json_node_get_object(n));
    }
    dv_authz_redact_row_error(object);
    a = dv_json_get_array(object, "bases");
    for (guint i = 0; a != NULL && i < json_array_get_length(a); i++) {
        JsonNode *n = json_array_get_element(a, i);
        if (JSON_NODE_HOLDS_OBJECT(n))
            dv_authz_redact("catalog_base", json_node_get_object(n));
    }
}

const char *const *
dv_authz_storage_fields(const char *kind)
{
    static const char *const none[] = { NULL };
    if (kind != NULL && strcmp(kind, "job") == 0)
        return dv_authz_job_storage;
    for (guint i = 0; kind != NULL && i < G_N_ELEMENTS(dv_authz_storage); i++)
        if (strcmp(dv_authz_storage[i].kind, kind) == 0)
            return dv_authz_storage[i].fields;
    return none;
}

static void dv_authz_redact_deep(JsonNode *node);

static void
dv_authz_redact_deep_object(JsonObject *object)
{
    g_autoptr(GList) members = NULL;

    for (guint i = 0; dv_authz_job_storage[i] != NULL; i++)
        if (json_object_has_member(object, dv_authz_job_storage[i]))
            json_object_remove_member(object, dv_authz_job_storage[i]);
    for (guint i = 0; dv_authz_job_storage_lists[i] != NULL; i++)
        if (dv_json_get_array(object, dv_authz_job_storage_lists[i]) != NULL)
            json_object_remove_member(object, dv_authz_job_storage_lists[i]);
    for (guint i = 0; dv_authz_job_texts[i] != NULL; i++)
        if (dv_json_get_string(object, dv_authz_job_texts[i], NULL) != NULL) {
            g_autofree char *text = dv_authz_withheld_message(NULL, NULL);
            json_object_set_string_member(object, dv_authz_job_texts[i], text);
        }
    members = json_object_get_members(object);
    for (GList *l = members; l != NULL; l = l->next)
        dv_authz_redact_deep(json_object_get_member(object, l->data));
}

static void
dv_authz_redact_deep(JsonNode *node)
{
    if (node == NULL)
        return;
    if (JSON_NODE_HOLDS_OBJECT(node)) {
        dv_authz_redact_deep_object(json_node_get_object(node));
    } else if (JSON_NODE_HOLDS_ARRAY(node)) {
        JsonArray *a = json_node_get_array(node);
        for (guint i = 0; i < json_array_get_length(a); i++)
            dv_authz_redact_deep(json_array_get_element(a, i));
    }
}

void
dv_authz_redact(const char *kind, JsonObject *object)
{
    const char *const *fields = dv_authz_storage_fields(kind);
    JsonObject *spec;

    if (object == NULL)
        return;
    if (kind != NULL && strcmp(kind, "job") == 0) {
        /* Depth is bounded: the record was parsed or built within
         * DV_JSON_MAX_DEPTH. */
        for (guint i = 0; dv_authz_job_parts[i] != NULL; i++)
            if (json_object_has_member(object, dv_authz_job_parts[i]))
                dv_authz_redact_deep(json_object_get_member(object, dv_authz_job_parts[i]));
        spec = dv_json_get_object(object, "error");
        if (spec != NULL)
            dv_authz_redact_job_error(spec);
        return;
    }
    if (kind != NULL && strcmp(kind, "catalog_image") == 0) {
        dv_authz_redact_catalog_image(object);
        return;
    }
    /* A reconcile report (GET /catalogs/{ref}/reconcile) is what a
     * reconcile job's result holds: the same storage members, at any depth. */
    if (kind != NULL && strcmp(kind, "catalog_reconcile") == 0) {
        dv_authz_redact_deep_object(object);
        return;
    }
    for (guint i = 0; fields[i] != NULL; i++)
        if (json_object_has_member(object, fields[i]))
            json_object_remove_member(object, fields[i]);
    /* Free text from whatever failed in a catalog's machine or base. */
    if (kind != NULL && (strcmp(kind, "catalog_machine") == 0 || strcmp(kind, "catalog_base") == 0))
        dv_authz_redact_row_error(object);
    /* A VM's and a catalog's spec carry the same storage members. */
    spec = dv_json_get_object(object, "spec");
    if (spec != NULL && fields[0] != NULL)
        dv_authz_redact(kind, spec);
    spec = dv_json_get_object(object, "machine_spec");
    if (spec != NULL)
        dv_authz_redact("vm", spec);
}

/* --- bindings ----------------------------------------------------------------- */

static const char *const dv_authz_quota_names[] = { "vms", "vcpus", "memory_mib", "storage_gib",
                                                    NULL };

/* Reads {vms, ...} of @spec's member @member into @rec's @prefix_ columns. */
static gboolean
dv_authz_quota_parse(JsonObject *spec, const char *member, const char *prefix, JsonObject *rec,
                     GError **error)
{
    JsonNode *node = json_object_get_member(spec, member);
    JsonObject *q;
    g_autoptr(GList) names = NULL;

    if (node == NULL || JSON_NODE_HOLDS_NULL(node))
        return TRUE;
    if (!JSON_NODE_HOLDS_OBJECT(node)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, member,
                           "%s: must be an object {vms, vcpus, memory_mib, storage_gib}", member);
        return FALSE;
    }
    q = json_node_get_object(node);
    names = json_object_get_members(q);
    for (GList *l = names; l != NULL; l = l->next) {
        JsonNode *v = json_object_get_member(q, l->data);
        g_autofree char *field = g_strdup_printf("%s.%s", member, (const char *)l->data);
        g_autofree char *column = g_strdup_printf("%s_%s", prefix, (const char *)l->data);
        if (!g_strv_contains(dv_authz_quota_names, l->data)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                               "%s: unknown; a quota has vms, vcpus, memory_mib, storage_gib",
                               field);
            return FALSE;
        }
        if (JSON_NODE_HOLDS_NULL(v))
            continue;
        if (json_node_get_value_type(v) != G_TYPE_INT64 || json_node_get_int(v) < 0 ||
            json_node_get_int(v) > G_MAXINT32) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                               "%s: must be an integer 0-%d", field, G_MAXINT32);
            return FALSE;
        }
        json_object_set_int_member(rec, column, json_node_get_int(v));
    }
    return TRUE;
}

/* The object a scope stands for, to check a granter's own rights over it. */
static gboolean
dv_authz_scope_object(DvStore *store, DvAuthzScopeKind kind, const char *id, char ***ret_path,
                      DvAuthzObject *o, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonObject) row = NULL;

    switch (kind) {
    case DV_SCOPE_GLOBAL:
        return TRUE;
    case DV_SCOPE_HOST_GROUP:
        *ret_path = dv_authz_host_group_path(store, id, &local);
        o->host_group_path = (const char *const *)*ret_path;
        break;
    case DV_SCOPE_CATALOG:
        row = dv_store_get(store, &dv_table_catalogs, id, &local);
        o->catalog_id = id;
        break;
    case DV_SCOPE_LIBRARY_SHARE:
        row = dv_store_get(store, &dv_table_library_shares, id, &local);
        o->library_share_id = id;
        break;
    case DV_SCOPE_RUN_AS:
        row = dv_store_get(store, &dv_table_run_as_accounts, id, &local);
        o->run_as_id = id;
        break;
    }
    if (local == NULL)
        return TRUE;
    if (g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "scope_id", "scope_id: no %s '%s'",
                           dv_authz_scope_names[kind], id);
    else
        g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
}

/* Grant rule: @actor must hold every privilege of @role over the scope, as
 * far and as wide: an own-only grant cannot pass on a wider one. */
static gboolean
dv_authz_check_grant(const DvAuthzContext *actor, JsonObject *role, const DvAuthzObject *scope,
                     GError **error)
{
    g_autoptr(JsonObject) shaped = dv_authz_role_shape(role);
    JsonArray *privs = dv_json_get_array(shaped, "privileges");
    gboolean own_only = dv_json_get_bool(shaped, "own_objects_only", FALSE);

    if (actor == NULL)
        return TRUE;
    for (guint i = 0; i < json_array_get_length(privs); i++) {
        const char *name = json_array_get_string_element(privs, i);
        int p = dv_authz_privilege_index(name);
        const char *dot = strchr(name, '.');
        g_autofree char *kind = g_strndup(name, (gsize)(dot - name));
        DvAuthzObject o = *scope;
        o.kind = kind;
        /* An own-only role passes on rights over its members' own objects:
         * the granter must hold them over anybody's. */
        o.owner_id = own_only ? "" : NULL;
        if (dv_authz_decide_index(actor, (guint)p, &o) != DV_AUTHZ_ALLOW) {
            dv_set_field_error(error, DV_ERROR_PERMISSION_DENIED, "role",
                               "role: grants %s over this scope, which user '%s' does not hold "
                               "there; one may grant only a subset of one's own privileges and "
                               "scopes",
                               name, actor->name);
            return FALSE;
        }
    }
    return TRUE;
}

/* Grant rule for Run As accounts (docs/ACCESS.md, "Run As accounts"): an
 * allow binding that gives catalog.provision over a catalog whose guest
 * OS profile joins its domain with a Run As account hands over the use of
 * that account's credentials.  So the granter needs run_as.use on it, and
 * the grantee must hold run_as.use on it once @rec is added (its own
 * bindings, a group's for a group); otherwise nobody would be handed a
 * catalog whose credentials they may not use (SCVMM's template granted
 * without its Run As account).  Bindings over a host group or globally
 * are left to the check on use (provisioning needs run_as.use). */
static gboolean
dv_authz_check_grant_run_as(DvStore *store, const DvAuthzContext *actor, JsonObject *rec,
                            JsonObject *role, GError **error)
{
    g_autoptr(DvAuthzContext) given = dv_authz_context_alloc(NULL, "");
    g_autoptr(DvAuthzContext) grantee = NULL;
    g_autoptr(GHashTable) roles =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)json_object_unref);
    g_autoptr(JsonObject) catalog = NULL;
    g_autoptr(JsonObject) profile = NULL;
    const char *profile_id;
    const char *run_as;
    DvAuthzObject o = { .kind = "run_as" };

    if (g_strcmp0(dv_json_get_string(rec, "effect", ""), "allow") != 0 ||
        g_strcmp0(dv_json_get_string(rec, "scope_kind", ""), "catalog") != 0)
        return TRUE;
    dv_authz_context_add_binding(given, rec, role);
    if (!dv_authz_context_holds(given, "catalog.provision"))
        return TRUE;
    catalog =
        dv_store_get(store, &dv_table_catalogs, dv_json_get_string(rec, "scope_id", ""), error);
    if (catalog == NULL)
        return FALSE;
    profile_id = dv_json_get_string(catalog, "guest_os_profile_id", NULL);
    if (profile_id == NULL)
        return TRUE;
    profile = dv_store_get(store, &dv_table_guest_os_profiles, profile_id, error);
    if (profile == NULL)
        return FALSE;
    run_as = dv_json_get_string(profile, "domain_join_run_as_id", NULL);
    if (run_as == NULL)
        return TRUE;
    if (actor != NULL && !dv_authz_check_run_as_use(actor, run_as, error)) {
        g_prefix_error(error,
                       "scope_id: catalog '%s' joins its domain with a Run As account "
                       "(guest OS profile '%s'): ",
                       dv_json_get_string(catalog, "name", ""),
                       dv_json_get_string(profile, "name", ""));
        return FALSE;
    }
    grantee = dv_authz_context_alloc(NULL, dv_json_get_string(rec, "principal", ""));
    if (!dv_authz_context_load(store, grantee, dv_json_get_string(rec, "principal_kind", ""),
                               dv_json_get_string(rec, "principal", ""), roles, error))
        return FALSE;
    dv_authz_context_add_binding(grantee, rec, role);
    o.id = run_as;
    o.run_as_id = run_as;
    if (dv_authz_decide(grantee, "run_as.use", &o) == DV_AUTHZ_ALLOW)
        return TRUE;
    {
        g_autoptr(JsonObject) account =
            dv_store_get(store, &dv_table_run_as_accounts, run_as, NULL);
        dv_set_field_error(error, DV_ERROR_PERMISSION_DENIED, "principal",
                           "principal: grants catalog.provision over catalog '%s', whose guest OS "
                           "profile '%s' joins its domain with Run As account '%s', but the "
                           "grantee does not hold run_as.use on that account; bind it run_as.use "
                           "there first",
                           dv_json_get_string(catalog, "name", ""),
                           dv_json_get_string(profile, "name", ""),
                           account != NULL ? dv_json_get_string(account, "name", "") : run_as);
    }
    return FALSE;
}

JsonObject *
dv_authz_binding_add(DvStore *store, const DvAuthzContext *actor, JsonObject *spec, GError **error)
{
    g_autoptr(JsonObject) rec = json_object_new();
    g_autoptr(JsonObject) role = NULL;
    g_autofree char *id = g_uuid_string_random();
    g_auto(GStrv) path = NULL;
    const char *pkind = dv_json_get_string(spec, "principal_kind", "user");
    const char *principal = dv_json_get_string(spec, "principal", NULL);
    const char *effect = dv_json_get_string(spec, "effect", "allow");
    const char *scope_id = dv_json_get_string(spec, "scope_id", NULL);
    int scope = dv_authz_scope_kind_parse(dv_json_get_string(spec, "scope_kind", "global"));
    DvAuthzObject o = { 0 };
    g_autofree char *user_id = NULL;

    if (actor != NULL && !dv_authz_context_holds(actor, "role.manage")) {
        g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                    "user '%s' lacks the privilege role.manage", actor->name);
        return NULL;
    }
    if (g_strcmp0(pkind, "user") != 0 && g_strcmp0(pkind, "group") != 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "principal_kind",
                           "principal_kind: must be user or group");
        return NULL;
    }
    if (principal == NULL || principal[0] == '\0' || strlen(principal) > 1024) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "principal",
                           "principal: a user id or name, or a group name, 1-1024 bytes");
        return NULL;
    }
    if (strcmp(pkind, "user") == 0) {
        g_autoptr(JsonObject) u = dv_store_get(store, &dv_table_users, principal, NULL);
        if (u == NULL)
            u = dv_store_find(store, &dv_table_users, "name", principal, NULL);
        if (u == NULL) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "principal",
                               "principal: no user '%s'", principal);
            return NULL;
        }
        user_id = g_strdup(dv_json_get_string(u, "id", ""));
    }
    if (g_strcmp0(effect, "allow") != 0 && g_strcmp0(effect, "deny") != 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "effect",
                           "effect: must be allow or deny");
        return NULL;
    }
    if (scope < 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "scope_kind",
                           "scope_kind: must be global, host_group, catalog, library_share or "
                           "run_as");
        return NULL;
    }
    if ((scope == DV_SCOPE_GLOBAL) != (scope_id == NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "scope_id",
                           scope == DV_SCOPE_GLOBAL
                               ? "scope_id: must be absent for a global binding"
                               : "scope_id: is required for this scope_kind");
        return NULL;
    }
    role = dv_authz_role_row(store, dv_json_get_string(spec, "role", NULL), error);
    if (role == NULL) {
        if (error != NULL && *error != NULL && (*error)->code == DV_ERROR_NOT_FOUND)
            (*error)->code = DV_ERROR_INVALID_ARGUMENT;
        return NULL;
    }
    if (!dv_authz_scope_object(store, (DvAuthzScopeKind)scope, scope_id, &path, &o, error))
        return NULL;
    if (!dv_authz_check_grant(actor, role, &o, error))
        return NULL;
    json_object_set_string_member(rec, "id", id);
    json_object_set_string_member(rec, "principal_kind", pkind);
    json_object_set_string_member(rec, "principal", user_id != NULL ? user_id : principal);
    json_object_set_string_member(rec, "role_id", dv_json_get_string(role, "id", ""));
    json_object_set_string_member(rec, "scope_kind", dv_authz_scope_names[scope]);
    if (scope_id != NULL)
        json_object_set_string_member(rec, "scope_id", scope_id);
    else
        json_object_set_null_member(rec, "scope_id");
    json_object_set_string_member(rec, "effect", effect);
    if (!dv_authz_quota_parse(spec, "quota", "quota", rec, error) ||
        !dv_authz_quota_parse(spec, "member_quota", "member", rec, error))
        return NULL;
    json_object_set_string_member(rec, "created_by", actor != NULL ? actor->name : "drover");
    json_object_set_int_member(rec, "created_at", dv_store_now());
    if (!dv_authz_check_grant_run_as(store, actor, rec, role, error))
        return NULL;
    if (!dv_store_insert(store, &dv_table_bindings, rec, error))
        return NULL;
    return g_steal_pointer(&rec);
}

gint64
dv_authz_count_administrators(DvStore *store, GError **error)
{
    g_autoptr(DvSqlRows) rows = dv_db_query(
        dv_store_get_db(store),
        "SELECT COUNT(DISTINCT u.id) FROM users u JOIN bindings b "
        "ON b.principal_kind = 'user' AND b.principal = u.id "
        "WHERE u.disabled = 0 AND b.role_id = ? AND b.scope_kind = 'global' AND b.effect = 'allow'",
        DV_SQL_ARGS(DV_SQL_TEXT_P(DV_AUTHZ_ROLE_ADMINISTRATOR)), error);
    return rows != NULL ? dv_sql_rows_get_int(rows, 0, 0) : -1;
}

typedef struct {
    const char *id;
} DvAuthzBindingDeleteTxn;

static gboolean
dv_authz_binding_delete_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvAuthzBindingDeleteTxn *t = user_data;
    gint64 admins;

    if (!dv_store_delete(store, &dv_table_bindings, t->id, error))
        return FALSE;
    admins = dv_authz_count_administrators(store, error);
    if (admins < 0)
        return FALSE;
    if (admins == 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "id",
                           "id: this binding makes the last enabled administrator; it cannot "
                           "be removed");
        return FALSE;
    }
    return TRUE;
}

gboolean
dv_authz_binding_delete(DvStore *store, const DvAuthzContext *actor, const char *id, GError **error)
{
    g_autoptr(JsonObject) b = dv_store_get(store, &dv_table_bindings, id, error);
    g_autoptr(JsonObject) role = NULL;
    g_auto(GStrv) path = NULL;
    DvAuthzBindingDeleteTxn t = { id };
    DvAuthzObject o = { 0 };
    int scope;

    if (b == NULL)
        return FALSE;
    if (actor != NULL) {
        /* Removing a binding is granting in reverse: same rule. */
        if (!dv_authz_context_holds(actor, "role.manage")) {
            g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                        "user '%s' lacks the privilege role.manage", actor->name);
            return FALSE;
        }
        role = dv_store_get(store, &dv_table_roles, dv_json_get_string(b, "role_id", ""), error);
        scope = dv_authz_scope_kind_parse(dv_json_get_string(b, "scope_kind", ""));
        if (role == NULL || scope < 0 ||
            !dv_authz_scope_object(store, (DvAuthzScopeKind)scope,
                                   json_object_get_string_member_with_default(b, "scope_id", NULL),
                                   &path, &o, error) ||
            !dv_authz_check_grant(actor, role, &o, error)) {
            if (error != NULL && *error == NULL)
                g_set_error_literal(error, DV_ERROR, DV_ERROR_INTERNAL, "bad binding row");
            return FALSE;
        }
    }
    return dv_store_transaction(store, dv_authz_binding_delete_txn, &t, error);
}

JsonArray *
dv_authz_binding_list(DvStore *store, const char *principal_kind, const char *principal,
                      GError **error)
{
    g_autoptr(JsonObject) user = NULL;
    DvFilter f[2] = {
        { "principal_kind", DV_FILTER_EQ, principal_kind },
        { "principal", DV_FILTER_EQ, principal },
    };

    /* A user binding's principal is the user's id; GET /bindings?user=
     * names the user (docs/API.md): a name that is no id is looked up. */
    if (g_strcmp0(principal_kind, "user") == 0 && principal != NULL &&
        strlen(principal) <= DV_NAME_MAX) {
        g_autoptr(JsonObject) by_id = dv_store_get(store, &dv_table_users, principal, NULL);
        if (by_id == NULL)
            user = dv_store_find(store, &dv_table_users, "name", principal, NULL);
        if (user != NULL)
            f[1].value = dv_json_get_string(user, "id", principal);
    }
    return dv_store_list(store, &dv_table_bindings, f, 2, DV_AUTHZ_BINDINGS_MAX, NULL, NULL, error);
}

/* The name of @id in @table, or @id when the row is gone. */
static char *
dv_authz_row_name(DvStore *store, const DvTableDef *table, const char *id, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonObject) row = dv_store_get(store, table, id, &local);

    if (row == NULL && !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    return g_strdup(row != NULL ? dv_json_get_string(row, "name", id) : id);
}

static JsonObject *
dv_authz_ref_new(const char *id, const char *name)
{
    JsonObject *ref = json_object_new();
    json_object_set_string_member(ref, "id", id);
    json_object_set_string_member(ref, "name", name);
    return ref;
}

/* {vms, vcpus, memory_mib, storage_gib} from @row's @prefix_ columns, or
 * NULL when none is set (@always: all four null then). */
static JsonObject *
dv_authz_quota_to_api(JsonObject *row, const char *prefix, gboolean always)
{
    g_autoptr(JsonObject) q = json_object_new();
    gboolean any = always;

    for (guint i = 0; dv_authz_quota_names[i] != NULL; i++) {
        g_autofree char *column = g_strdup_printf("%s_%s", prefix, dv_authz_quota_names[i]);
        JsonNode *v = json_object_get_member(row, column);
        if (v != NULL && JSON_NODE_HOLDS_VALUE(v)) {
            json_object_set_int_member(q, dv_authz_quota_names[i], json_node_get_int(v));
            any = TRUE;
        } else {
            json_object_set_null_member(q, dv_authz_quota_names[i]);
        }
    }
    return any ? g_steal_pointer(&q) : NULL;
}

/* The tables a scope's id is looked up in, by DvAuthzScopeKind. */
static const DvTableDef *
dv_authz_scope_table(DvAuthzScopeKind kind)
{
    switch (kind) {
    case DV_SCOPE_HOST_GROUP:
        return &dv_table_host_groups;
    case DV_SCOPE_CATALOG:
        return &dv_table_catalogs;
    case DV_SCOPE_LIBRARY_SHARE:
        return &dv_table_library_shares;
    case DV_SCOPE_RUN_AS:
        return &dv_table_run_as_accounts;
    case DV_SCOPE_GLOBAL:
        break;
    }
    return NULL;
}

JsonObject *
dv_authz_binding_to_api(DvStore *store, JsonObject *row, GError **error)
{
    g_autoptr(JsonObject) out = json_object_new();
    g_autoptr(GList) members = json_object_get_members(row);
    const char *principal = dv_json_get_string(row, "principal", "");
    const char *role_id = dv_json_get_string(row, "role_id", "");
    const char *scope_id = json_object_get_string_member_with_default(row, "scope_id", NULL);
    int scope = dv_authz_scope_kind_parse(dv_json_get_string(row, "scope_kind", "global"));
    g_autofree char *role_name = NULL;
    JsonObject *total;
    JsonObject *member;

    for (GList *l = members; l != NULL; l = l->next)
        json_object_set_member(out, l->data, json_node_copy(json_object_get_member(row, l->data)));
    if (g_strcmp0(dv_json_get_string(row, "principal_kind", ""), "user") == 0) {
        g_autofree char *name = dv_authz_row_name(store, &dv_table_users, principal, error);
        if (name == NULL)
            return NULL;
        json_object_set_object_member(out, "user", dv_authz_ref_new(principal, name));
        json_object_set_null_member(out, "group");
    } else {
        json_object_set_null_member(out, "user");
        json_object_set_string_member(out, "group", principal);
    }
    role_name = dv_authz_row_name(store, &dv_table_roles, role_id, error);
    if (role_name == NULL)
        return NULL;
    json_object_set_object_member(out, "role", dv_authz_ref_new(role_id, role_name));
    if (scope > DV_SCOPE_GLOBAL && scope_id != NULL) {
        g_autofree char *name = dv_authz_row_name(
            store, dv_authz_scope_table((DvAuthzScopeKind)scope), scope_id, error);
        JsonObject *s;
        if (name == NULL)
            return NULL;
        s = dv_authz_ref_new(scope_id, name);
        json_object_set_string_member(s, "kind", dv_authz_scope_names[scope]);
        json_object_set_object_member(out, "scope", s);
    } else {
        json_object_set_null_member(out, "scope");
    }
    member = dv_authz_quota_to_api(row, "member", FALSE);
    total = dv_authz_quota_to_api(row, "quota", member != NULL);
    if (total != NULL) {
        if (member != NULL)
            json_object_set_object_member(total, "per_member", member);
        else
            json_object_set_null_member(total, "per_member");
        json_object_set_object_member(out, "quota", total);
    } else {
        json_object_set_null_member(out, "quota");
    }
    return g_steal_pointer(&out);
}

JsonArray *
dv_authz_bindings_to_api(DvStore *store, JsonArray *rows, GError **error)
{
    g_autoptr(JsonArray) out = json_array_new();

    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *b =
            dv_authz_binding_to_api(store, json_array_get_object_element(rows, i), error);
        if (b == NULL)
            return NULL;
        json_array_add_object_element(out, b);
    }
    return g_steal_pointer(&out);
}

/* --- quotas ------------------------------------------------------------------- */

static gboolean
dv_authz_quota_bump(DvStore *store, JsonObject *binding, const char *row_user,
                    const char *limit_prefix, const char *field_prefix, const DvAuthzAmount *amount,
                    gint64 sign, GError **error)
{
    DvDb *db = dv_store_get_db(store);
    const char *binding_id = dv_json_get_string(binding, "id", "");
    const gint64 values[] = { amount->vms, amount->vcpus, amount->memory_mib, amount->storage_gib };
    g_autoptr(GString) sql = g_string_new("UPDATE quota_usage SET ");
    DvSqlParam params[16];
    guint n = 0;
    gint64 changes = 0;

    if (!dv_db_exec(db,
                    "INSERT INTO quota_usage (binding_id, user_id) VALUES (?, ?) "
                    "ON CONFLICT (binding_id, user_id) DO NOTHING",
                    DV_SQL_ARGS(DV_SQL_TEXT_P(binding_id), DV_SQL_TEXT_P(row_user)), NULL, error))
        return FALSE;
    for (guint i = 0; i < 4; i++) {
        g_string_append_printf(sql, "%s%s = %s + ?", i > 0 ? ", " : "", dv_authz_quota_names[i],
                               dv_authz_quota_names[i]);
        params[n++] = DV_SQL_INT_P(sign * values[i]);
    }
    g_string_append(sql, " WHERE binding_id = ? AND user_id = ?");
    params[n++] = DV_SQL_TEXT_P(binding_id);
    params[n++] = DV_SQL_TEXT_P(row_user);
    if (sign > 0) {
        /* The limit is checked by the UPDATE itself: on PostgreSQL a
         * concurrent reservation waits on the row lock and then re-reads
         * the row, on SQLite the write transaction is exclusive. */
        for (guint i = 0; i < 4; i++) {
            g_autofree char *col = g_strdup_printf("%s_%s", limit_prefix, dv_authz_quota_names[i]);
            JsonNode *lim = json_object_get_member(binding, col);
            if (lim == NULL || JSON_NODE_HOLDS_NULL(lim) || values[i] == 0)
                continue;
            g_string_append_printf(sql, " AND %s + ? <= ?", dv_authz_quota_names[i]);
            params[n++] = DV_SQL_INT_P(values[i]);
            params[n++] = DV_SQL_INT_P(json_node_get_int(lim));
        }
    }
    if (!dv_db_exec(db, sql->str, params, n, &changes, error))
        return FALSE;
    if (changes == 0) {
        g_autoptr(JsonObject) used = dv_authz_quota_usage(
            store, binding_id, strcmp(row_user, "*") == 0 ? NULL : row_user, NULL);
        for (guint i = 0; i < 4; i++) {
            g_autofree char *col = g_strdup_printf("%s_%s", limit_prefix, dv_authz_quota_names[i]);
            gint64 lim = dv_json_get_int(binding, col, -1);
            gint64 cur = used != NULL ? dv_json_get_int(used, dv_authz_quota_names[i], 0) : 0;
            if (lim >= 0 && values[i] > 0 && cur + values[i] > lim) {
                g_autofree char *field =
                    g_strdup_printf("%s.%s", field_prefix, dv_authz_quota_names[i]);
                dv_set_field_error(error, DV_ERROR_CONFLICT, field,
                                   "%s: quota exceeded: %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
                                   " in use, %" G_GINT64_FORMAT " more asked",
                                   field, cur, lim, values[i]);
                return FALSE;
            }
        }
        dv_set_field_error(error, DV_ERROR_CONFLICT, field_prefix, "%s: quota exceeded",
                           field_prefix);
        return FALSE;
    }
    return TRUE;
}

typedef struct {
    const char *binding_id;
    const char *user_id;
    const DvAuthzAmount *amount;
    gint64 sign;
} DvAuthzQuotaTxn;

/* Total and member together or neither: a savepoint inside the caller's
 * transaction, a transaction of its own outside one. */
static gboolean
dv_authz_quota_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvAuthzQuotaTxn *t = user_data;
    g_autoptr(JsonObject) b = dv_store_get(store, &dv_table_bindings, t->binding_id, error);

    if (b == NULL)
        return FALSE;
    return dv_authz_quota_bump(store, b, "*", "quota", "quota", t->amount, t->sign, error) &&
           dv_authz_quota_bump(store, b, t->user_id, "member", "member_quota", t->amount, t->sign,
                               error);
}

static gboolean
dv_authz_quota_change(DvStore *store, const char *binding_id, const char *user_id,
                      const DvAuthzAmount *amount, gint64 sign, GError **error)
{
    DvAuthzQuotaTxn t = { binding_id, user_id, amount, sign };

    if (amount->vms < 0 || amount->vcpus < 0 || amount->memory_mib < 0 || amount->storage_gib < 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "quota",
                           "quota: amounts must not be negative");
        return FALSE;
    }
    if (user_id == NULL || user_id[0] == '\0' || strcmp(user_id, "*") == 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "user_id",
                           "user_id: a member is required");
        return FALSE;
    }
    return dv_store_transaction(store, dv_authz_quota_txn, &t, error);
}

gboolean
dv_authz_quota_reserve(DvStore *store, const char *binding_id, const char *user_id,
                       const DvAuthzAmount *amount, GError **error)
{
    return dv_authz_quota_change(store, binding_id, user_id, amount, 1, error);
}

gboolean
dv_authz_quota_release(DvStore *store, const char *binding_id, const char *user_id,
                       const DvAuthzAmount *amount, GError **error)
{
    return dv_authz_quota_change(store, binding_id, user_id, amount, -1, error);
}

JsonObject *
dv_authz_quota_usage(DvStore *store, const char *binding_id, const char *user_id, GError **error)
{
    g_autoptr(DvSqlRows) rows = dv_db_query(
        dv_store_get_db(store),
        "SELECT vms, vcpus, memory_mib, storage_gib FROM quota_usage "
        "WHERE binding_id = ? AND user_id = ?",
        DV_SQL_ARGS(DV_SQL_TEXT_P(binding_id), DV_SQL_TEXT_P(user_id != NULL ? user_id : "*")),
        error);
    JsonObject *out;

    if (rows == NULL)
        return NULL;
    out = json_object_new();
    for (guint i = 0; i < 4; i++)
        json_object_set_int_member(
            out, dv_authz_quota_names[i],
            dv_sql_rows_get_n_rows(rows) > 0 ? dv_sql_rows_get_int(rows, 0, i) : 0);
    return out;
}

/* --- audit -------------------------------------------------------------------- */

static const char *const dv_audit_outcomes[] = { "ok",      "forbidden", "not-found",
                                                 "invalid", "failed",    NULL };

#define DV_AUDIT_TEXT_MAX 1024

static void
dv_audit_set(JsonObject *rec, const char *member, const char *value)
{
    if (value == NULL) {
        json_object_set_null_member(rec, member);
        return;
    }
    /* Capped, so a client cannot grow the log by sending long names. */
    if (strlen(value) > DV_AUDIT_TEXT_MAX) {
        g_autofree char *cut = g_utf8_make_valid(value, DV_AUDIT_TEXT_MAX);
        json_object_set_string_member(rec, member, cut);
        return;
    }
    json_object_set_string_member(rec, member, value);
}

gboolean
dv_audit_record(DvStore *store, const DvAuthzContext *actor, const char *actor_name,
                const char *address, const char *operation, const char *object_kind,
                const char *object_id, const char *outcome, const char *job_id, const char *detail,
                GError **error)
{
    return dv_audit_record_in_group(store, NULL, actor, actor_name, address, operation,
                                    object_kind, object_id, outcome, job_id, detail, error);
}

gboolean
dv_audit_record_in_group(DvStore *store, const char *host_group_id, const DvAuthzContext *actor,
                         const char *actor_name, const char *address, const char *operation,
                         const char *object_kind, const char *object_id, const char *outcome,
                         const char *job_id, const char *detail, GError **error)
{
    DvAuditScope scope = { .host_group_id = host_group_id };
    return dv_audit_record_scoped(store, &scope, actor, actor_name, address, operation, object_kind,
                                  object_id, outcome, job_id, detail, error);
}

gboolean
dv_audit_record_scoped(DvStore *store, const DvAuditScope *scope, const DvAuthzContext *actor,
                       const char *actor_name, const char *address, const char *operation,
                       const char *object_kind, const char *object_id, const char *outcome,
                       const char *job_id, const char *detail, GError **error)
{
    g_autoptr(JsonObject) rec = json_object_new();
    g_autofree char *id = g_uuid_string_random();
    gboolean known = scope->scope_kind == NULL;

    for (guint i = 0; !known && i < G_N_ELEMENTS(dv_audit_scopes); i++)
        known = strcmp(dv_audit_scopes[i].name, scope->scope_kind) == 0;
    if (!known || (scope->scope_kind != NULL) != (scope->scope_id != NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "scope_kind",
                           "scope_kind: must be catalog, library_share or run_as, with a "
                           "scope_id, or neither");
        return FALSE;
    }
    if (operation == NULL || operation[0] == '\0' || outcome == NULL ||
        !g_strv_contains(dv_audit_outcomes, outcome)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT,
                           operation == NULL || operation[0] == '\0' ? "operation" : "outcome",
                           "audit: operation is required and outcome must be ok, forbidden, "
                           "not-found, invalid or failed");
        return FALSE;
    }
    json_object_set_string_member(rec, "id", id);
    json_object_set_int_member(rec, "at", dv_store_now());
    dv_audit_set(rec, "actor_id", actor != NULL ? actor->user_id : NULL);
    dv_audit_set(rec, "actor_name", actor != NULL ? actor->name : actor_name);
    dv_audit_set(rec, "address", address);
    dv_audit_set(rec, "operation", operation);
    dv_audit_set(rec, "object_kind", object_kind);
    dv_audit_set(rec, "object_id", object_id);
    dv_audit_set(rec, "outcome", outcome);
    dv_audit_set(rec, "job_id", job_id);
    dv_audit_set(rec, "detail", detail);
    dv_audit_set(rec, "host_group_id", scope->host_group_id);
    dv_audit_set(rec, "scope_kind", scope->scope_kind);
    dv_audit_set(rec, "scope_id", scope->scope_id);
    return dv_store_insert(store, &dv_table_audit_log, rec, error);
}

JsonArray *
dv_audit_list(DvStore *store, const DvFilter *filters, guint n_filters, guint limit,
              const char *cursor, char **ret_next_cursor, GError **error)
{
    return dv_audit_list_for(store, NULL, filters, n_filters, limit, cursor, ret_next_cursor,
                             error);
}

JsonArray *
dv_audit_list_for(DvStore *store, const DvAuthzContext *ctx, const DvFilter *filters,
                  guint n_filters, guint limit, const char *cursor, char **ret_next_cursor,
                  GError **error)
{
    g_autoptr(DvAuthzFilter) scope = NULL;
    g_autofree DvSqlParam *params = NULL;
    guint n_params = 0;

    if (ctx == NULL)
        return dv_store_list(store, &dv_table_audit_log, filters, n_filters, limit, cursor,
                             ret_next_cursor, error);
    scope = dv_authz_list_filter(store, ctx, "audit", error);
    if (scope == NULL)
        return NULL;
    params = dv_authz_filter_params(scope, &n_params);
    return dv_store_list_where(store, &dv_table_audit_log, filters, n_filters, scope->where,
                               params, n_params, limit, cursor, ret_next_cursor, error);
}
