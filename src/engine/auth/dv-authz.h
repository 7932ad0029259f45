/* Access control: privileges, roles, bindings, the decision, list filters,
 * quotas and the audit log (docs/ACCESS.md).
 *
 * Model: a privilege is a verb on an object kind, written "kind.verb"
 * ("vm.power").  A role is a named set of privileges; five built-in roles
 * are immutable and defined here, custom roles are rows of `roles`.  A
 * binding gives a principal (a user, or a directory group by name) a role
 * over one scope (global, a host group and everything under it, a
 * catalog, a library share, a Run As account), as allow or deny, with
 * optional quotas.
 *
 * Resolution, for one privilege on one object: of the bindings whose role
 * holds the privilege and whose scope covers the object, the most specific
 * decides: a deeper scope beats an inherited one (global < host group <
 * its child group < ... < a catalog, share or account named directly); at
 * the same depth a user binding beats a group binding; at the same depth
 * and principal kind a deny beats an allow.  No covering binding: refused.
 *
 * Threads: a DvAuthzContext is immutable once built and reference counted,
 * so a session cache may hand the same context to many request threads.
 * Nothing here holds a lock across a database round trip.
 *
 * Ownership: _new/_dup/_list return owned data; getters return borrowed. */
#pragma once

#include <json-glib/json-glib.h>

#include "dv-store.h"

G_BEGIN_DECLS

#define DV_AUTHZ_ROLE_NAME_MAX 64
#define DV_AUTHZ_TOKEN_LIFETIME_MAX_US (366 * G_TIME_SPAN_DAY)
#define DV_AUTHZ_BINDINGS_MAX 256 /* per principal, and per dv_auth_users_set_bindings() */

typedef struct _DvAuthzContext DvAuthzContext;

/* --- privileges ------------------------------------------------------------ */

/* Every privilege, NULL-terminated, in a fixed order (borrowed). */
const char *const *dv_authz_privileges(void);
/* TRUE when @name is a privilege; otherwise DV_ERROR_INVALID_ARGUMENT naming
 * @field ("privileges", "privilege") and the rule. */
gboolean dv_authz_privilege_check(const char *field, const char *name,
                                  GError **error) G_GNUC_WARN_UNUSED_RESULT;

/* --- roles ----------------------------------------------------------------- */

/* Built-in role ids ("role-<name>", rows seeded by migration 0007). */
#define DV_AUTHZ_ROLE_ADMINISTRATOR "role-administrator"
#define DV_AUTHZ_ROLE_DELEGATED "role-delegated-administrator"
#define DV_AUTHZ_ROLE_READ_ONLY "role-read-only-administrator"
#define DV_AUTHZ_ROLE_TENANT "role-tenant-administrator"
#define DV_AUTHZ_ROLE_SELF_SERVICE "role-self-service-user"

/* The built-in role a users.role string of schema 1-6 meant (the mapping
 * migration 0007 applies); NULL for an unknown one. */
const char *dv_authz_role_for_legacy(const char *legacy_role);

/* Every role: {id, name, builtin, privileges[], description}; built-in
 * rows carry the privileges defined in code. */
JsonArray *dv_authz_role_list(DvStore *store, GError **error);
/* One role by id or name, or NULL with DV_ERROR_NOT_FOUND. */
JsonObject *dv_authz_role_get(DvStore *store, const char *id_or_name, GError **error);
/* A custom role.  Name checked as names are; every privilege must exist
 * (DV_ERROR_INVALID_ARGUMENT "privileges"); needs role.create globally. */
JsonObject *dv_authz_role_create(DvStore *store, const DvAuthzContext *actor, const char *name,
                                 const char *const *privileges, const char *description,
                                 GError **error);
/* Refused for a built-in role (DV_ERROR_CONFLICT) and for a role still
 * bound (DV_ERROR_CONFLICT naming the bindings' count). */
gboolean dv_authz_role_delete(DvStore *store, const DvAuthzContext *actor, const char *id_or_name,
                              GError **error) G_GNUC_WARN_UNUSED_RESULT;

/* --- the actor ------------------------------------------------------------- */

/* Resolves every binding of user @user_id and of the directory groups
 * @groups (may be NULL) once.  A disabled or unknown user is
 * DV_ERROR_AUTH_REQUIRED. */
DvAuthzContext *dv_authz_context_new(DvStore *store, const char *user_id, const char *const *groups,
                                     GError **error);
/* A copy of @ctx limited to @privileges (tokens): each must be held by
 * @ctx somewhere, else DV_ERROR_PERMISSION_DENIED naming it. */
DvAuthzContext *dv_authz_context_restrict(const DvAuthzContext *ctx, const char *const *privileges,
                                          GError **error);
DvAuthzContext *dv_authz_context_ref(DvAuthzContext *ctx);
void dv_authz_context_unref(DvAuthzContext *ctx);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvAuthzContext, dv_authz_context_unref)

const char *dv_authz_context_get_user_id(const DvAuthzContext *ctx);
const char *dv_authz_context_get_name(const DvAuthzContext *ctx);
/* TRUE when an allowing binding anywhere gives @privilege. */
gboolean dv_authz_context_holds(const DvAuthzContext *ctx, const char *privilege);
/* TRUE when storage data must be left out of this actor's responses (it
 * holds the delegated-administrator role and no global administrator). */
gboolean dv_authz_context_redacts_storage(const DvAuthzContext *ctx);
/* {user_id, name, roles[], privileges[]}: what the actor holds anywhere. */
JsonObject *dv_authz_context_to_json(const DvAuthzContext *ctx);

/* --- the decision ---------------------------------------------------------- */

typedef enum {
    DV_AUTHZ_ALLOW,
    DV_AUTHZ_FORBIDDEN, /* visible, the action is not allowed: 403 */
    DV_AUTHZ_NOT_FOUND, /* outside the actor's scope: 404, as if absent */
} DvAuthzDecision;

/* An object and its ancestry, all borrowed.  @host_group_path lists the
 * host groups from the root down to the object's own group (a host group
 * object ends with itself), NULL-terminated; NULL for an object outside
 * host groups.  @owner_id is the owning user's id (VMs, jobs); for a create
 * check, the object is the one to be made. */
typedef struct {
    const char *kind;
    const char *id;
    const char *const *host_group_path;
    const char *catalog_id;
    const char *library_share_id;
    const char *run_as_id;
    const char *owner_id;
} DvAuthzObject;

/* The decision alone; @privilege must be known. */
DvAuthzDecision dv_authz_decide(const DvAuthzContext *ctx, const char *privilege,
                                const DvAuthzObject *object);
/* The id of the binding whose allow decides @privilege on @object (the
 * one a quota is reserved under), borrowed from @ctx; NULL when the
 * decision is not an allow. */
const char *dv_authz_decide_binding(const DvAuthzContext *ctx, const char *privilege,
                                    const DvAuthzObject *object);
/* TRUE when allowed; else DV_ERROR_PERMISSION_DENIED naming the privilege,
 * DV_ERROR_NOT_FOUND ("<kind> <id> not found"), or DV_ERROR_INVALID_ARGUMENT
 * for an unknown privilege. */
gboolean dv_authz_check(const DvAuthzContext *ctx, const char *privilege,
                        const DvAuthzObject *object, GError **error) G_GNUC_WARN_UNUSED_RESULT;

/* Using or granting a template, guest OS profile or catalog that references
 * Run As account @run_as_id needs run_as.use on that account (SCVMM's
 * credential-extraction path): TRUE, or the errors of dv_authz_check().
 * NULL @run_as_id (nothing referenced) is TRUE. */
gboolean dv_authz_check_run_as_use(const DvAuthzContext *ctx, const char *run_as_id,
                                   GError **error) G_GNUC_WARN_UNUSED_RESULT;

/* The root-first host group path of group @id (ending with @id), owned;
 * DV_ERROR_NOT_FOUND when it does not exist. */
char **dv_authz_host_group_path(DvStore *store, const char *id, GError **error);

/* --- lists ----------------------------------------------------------------- */

/* A WHERE fragment limiting rows of @kind's table to what the actor may
 * read, with its '?' parameters in order (texts, owned).  "1=1" when
 * nothing is hidden, "1=0" when everything is. */
typedef struct {
    char *where;
    GPtrArray *values; /* char *, never NULL entries */
} DvAuthzFilter;

DvAuthzFilter *dv_authz_list_filter(DvStore *store, const DvAuthzContext *ctx, const char *kind,
                                    GError **error);
void dv_authz_filter_free(DvAuthzFilter *filter);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvAuthzFilter, dv_authz_filter_free)
/* The filter's values as parameters for dv_db_query() (owned array of
 * borrowed strings; @ret_n its length). */
DvSqlParam *dv_authz_filter_params(const DvAuthzFilter *filter, guint *ret_n);

/* --- redaction ------------------------------------------------------------- */

/* The members of a @kind response that are storage data (pools, volumes,
 * paths), NULL-terminated (borrowed; empty for kinds without). */
const char *const *dv_authz_storage_fields(const char *kind);
/* Removes them from @object (nested "disks" and "spec" members too).  For
 * "job" the members are removed at any depth of the record's "params" and
 * "result" (the inputs and outputs of any operation); the record's own
 * members stay, its error's message withheld.  A "catalog_machine" or
 * "catalog_base" keeps its "error" member as the withheld text with its
 * state and step; a "catalog_image" (or a page of them, {items}) has its
 * error and its "bases" redacted so. */
void dv_authz_redact(const char *kind, JsonObject *object);

/* --- bindings -------------------------------------------------------------- */

/* Adds a binding described by @spec: {principal_kind: user|group,
 * principal: user id or name | group name, role: id or name, scope_kind:
 * global|host_group|catalog|library_share|run_as, scope_id, effect:
 * allow|deny, quota: {vms, vcpus, memory_mib, storage_gib},
 * member_quota: {...}}.  Every field is checked (named in the error); the
 * scope must exist; @actor must hold role.manage and every privilege of the
 * role over the scope (grant only a subset of one's own). */
JsonObject *dv_authz_binding_add(DvStore *store, const DvAuthzContext *actor, JsonObject *spec,
                                 GError **error);
gboolean dv_authz_binding_delete(DvStore *store, const DvAuthzContext *actor, const char *id,
                                 GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* Bindings of one principal ("user": its id or name; "group": its DN),
 * oldest first. */
JsonArray *dv_authz_binding_list(DvStore *store, const char *principal_kind, const char *principal,
                                 GError **error);
/* The API's form of a binding row (docs/API.md, "A binding in an
 * answer"): a new object with the row's own members (id, principal_kind,
 * principal, role_id, scope_kind, scope_id, effect, quota_*, member_*...)
 * and user {id, name} or null, group (its DN) or null, role {id, name},
 * scope null (global) or {kind, id, name}, quota null or {vms, vcpus,
 * memory_mib, storage_gib, per_member: {the same four} or null}, an unset
 * limit null.  Names are read from @store; an object gone since (a deleted
 * scope) is named by its id.  Every place that answers bindings calls it. */
JsonObject *dv_authz_binding_to_api(DvStore *store, JsonObject *row, GError **error);
/* The same for each row of @rows, into a new array. */
JsonArray *dv_authz_bindings_to_api(DvStore *store, JsonArray *rows, GError **error);
/* Enabled users holding administrator globally through a user binding. */
gint64 dv_authz_count_administrators(DvStore *store, GError **error);

/* --- quotas ---------------------------------------------------------------- */

typedef struct {
    gint64 vms;
    gint64 vcpus;
    gint64 memory_mib;
    gint64 storage_gib;
} DvAuthzAmount;

/* Reserves @amount under binding @binding_id for member @user_id: the
 * binding's total and the member's cap are both checked and raised by
 * conditional updates, so it must run inside the caller's
 * dv_store_transaction() (the one accepting the job) and parallel
 * reservations never overshoot.  Exceeded: DV_ERROR_CONFLICT naming
 * "quota.<what>" or "member_quota.<what>". */
gboolean dv_authz_quota_reserve(DvStore *store, const char *binding_id, const char *user_id,
                                const DvAuthzAmount *amount,
                                GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* Gives an amount back (a VM deleted, a job that failed before creating). */
gboolean dv_authz_quota_release(DvStore *store, const char *binding_id, const char *user_id,
                                const DvAuthzAmount *amount,
                                GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* What is used: {vms, vcpus, memory_mib, storage_gib}, of one member or
 * (@user_id NULL) the binding's total. */
JsonObject *dv_authz_quota_usage(DvStore *store, const char *binding_id, const char *user_id,
                                 GError **error);

/* --- audit ----------------------------------------------------------------- */

/* Records one accepted or refused operation.  Takes no secret: every
 * argument is plain text the caller chose to show; @actor may be NULL (a
 * failed login), then @actor_name names who tried.  @outcome is "ok",
 * "forbidden", "not-found", "invalid" or "failed". */
gboolean dv_audit_record(DvStore *store, const DvAuthzContext *actor, const char *actor_name,
                         const char *address, const char *operation, const char *object_kind,
                         const char *object_id, const char *outcome, const char *job_id,
                         const char *detail, GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* dv_audit_record() of an operation on an object inside host group
 * @host_group_id (the object's own group, or the group a create lands in):
 * readers of audit.read bound to that group or above see it.  A NULL
 * group (dv_audit_record()) is an installation-wide entry, read only with
 * a global audit.read. */
gboolean dv_audit_record_in_group(DvStore *store, const char *host_group_id,
                                  const DvAuthzContext *actor, const char *actor_name,
                                  const char *address, const char *operation,
                                  const char *object_kind, const char *object_id,
                                  const char *outcome, const char *job_id, const char *detail,
                                  GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* The direct scope an audit entry is also read in (migration 0011): a
 * catalog, a library share or a Run As account the entry is about, so an
 * audit reader bound to that object reads it.  Both NULL: none. */
typedef struct {
    const char *host_group_id; /* as dv_audit_record_in_group() */
    const char *scope_kind;    /* "catalog", "library_share", "run_as" or NULL */
    const char *scope_id;
} DvAuditScope;
/* dv_audit_record_in_group() with a direct scope besides the group; a
 * @scope_kind other than those three is DV_ERROR_INVALID_ARGUMENT
 * naming scope_kind, nothing written. */
gboolean dv_audit_record_scoped(DvStore *store, const DvAuditScope *scope,
                                const DvAuthzContext *actor, const char *actor_name,
                                const char *address, const char *operation, const char *object_kind,
                                const char *object_id, const char *outcome, const char *job_id,
                                const char *detail, GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* Newest first, paged and filtered as dv_store_list() (filterable:
 * actor_id, actor_name, address, operation, object_kind, object_id,
 * outcome, job_id, host_group_id, scope_kind, scope_id). */
JsonArray *dv_audit_list(DvStore *store, const DvFilter *filters, guint n_filters, guint limit,
                         const char *cursor, char **ret_next_cursor, GError **error);
/* dv_audit_list() limited inside the query to what @ctx may read
 * (dv_authz_list_filter(), kind "audit"): the entries of host groups it
 * reads audit.read in, and its own actions; everything for a global
 * reader.  A NULL @ctx reads everything. */
JsonArray *dv_audit_list_for(DvStore *store, const DvAuthzContext *ctx, const DvFilter *filters,
                             guint n_filters, guint limit, const char *cursor,
                             char **ret_next_cursor, GError **error);

G_END_DECLS
