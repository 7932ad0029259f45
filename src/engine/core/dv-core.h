/* The engine's core: what every feature (hosts, VMs, inventory objects,
 * secrets, catalogs) shares, and the only engine header a feature
 * includes besides its own.  Layers: lib/common < store, virt, keys <
 * auth < jobs < core < features < dv-engine.c (docs/ARCHITECTURE.md,
 * tools/check-layers).
 *
 * - DvCore: the shared state (store, virt, jobs, keyring...), reached
 *   with dv_core(engine).  The facade fills it in dv_engine_new() and
 *   owns it; features read it and never replace a member.
 * - The kind registry: per object kind its table, names and the shaper
 *   that turns a row into an API object (features register theirs).
 * - Hooks: how a feature reacts to another's work without calling it
 *   (a catalog machine's overlay renewed before a VM starts).
 * - Helpers every feature uses: resolve, list, submit, uniqueness, host
 *   handles, the inventory sync.
 *
 * Threads: registries and hooks are filled while the engine is built,
 * before any job worker or request runs, and only read afterwards, so
 * they take no lock.  The host handle table has its own mutex.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "dv-actor.h"
#include "dv-auth.h"
#include "dv-core-types.h"
#include "dv-error.h"
#include "dv-jobs.h"
#include "dv-json.h"
#include "dv-keys.h"
#include "dv-store.h"
#include "dv-validate.h"
#include "dv-virt.h"
#include "dv-op.h"

G_BEGIN_DECLS

/* Turns a row of a kind into its API object (owned). */
typedef JsonObject *(*DvCoreShapeFunc)(DvEngine *engine, DvKind kind, JsonObject *record);

/* Called before a VM is started through Drover, in the job's thread;
 * FALSE with @error set stops the start. */
typedef gboolean (*DvCoreVmHook)(DvEngine *engine, JsonObject *vm, GCancellable *c, GError **error);

typedef struct {
    char *state_dir;
    char *server_id;
    char *installation_id;
    DvStore *store;
    DvVirt *virt;
    DvAuth *auth;
    DvJobManager *jobs;
    DvKeyring *keyring;
    DvKeyProtector *directory; /* when <state-dir>/directory.conf exists */
    /* Handles of known hosts, kept open: connections are reused, and a
     * test:///file host lives only as long as its one connection. */
    GMutex hosts_lock;
    GHashTable *hosts;        /* host id -> DvVirtHost* */
    char *default_share_name; /* NULL: "default" */
    char *default_share_path; /* NULL: <state_dir>/library */
    char *library_root;       /* absolute, canonical */
    /* Registries (see the threads note above). */
    DvCoreShapeFunc shapers[DV_KIND_LAST];
    GArray *vm_before_start; /* of DvCoreVmHook */
    GPtrArray *ops;          /* of const DvOp * (dv-op.h) */
    /* features/hosts' event watcher (droverd), NULL when hosts are not
     * watched; started and stopped by that feature, read by it only. */
    gpointer host_watch;
    /* UUIDs of the domains a live migration job owns (under hosts_lock;
     * dv_core_migration_claim()). */
    GHashTable *migrating;
    /* Test only ([hosts] allow_unsafe_migration): VIR_MIGRATE_UNSAFE, for
     * "shared" storage that is a local directory two daemons of one
     * machine see (docs/TESTING.md, "Two libvirt daemons"). */
    gboolean migration_allow_unsafe;
} DvCore;

/* The shared state of @engine (borrowed): the engine struct begins with
 * its DvCore (checked where it is defined, in dv-engine.c). */
static inline DvCore *
dv_core(DvEngine *engine)
{
    return (DvCore *)(void *)engine;
}

/* Sets up the registries and the host table of a zeroed DvCore; the
 * facade fills in the rest.  dv_core_clear() frees what core owns. */
void dv_core_init(DvCore *core);
void dv_core_clear(DvCore *core);

/* --- kinds ---------------------------------------------------------------- */

typedef struct {
    DvKind kind;
    const DvTableDef *def;
    const char *singular; /* "host group" */
    const char *type;     /* job target_type: "host-group" */
    gboolean named;       /* addressable by a unique name */
} DvKindInfo;

const DvKindInfo *dv_core_kind_info(DvKind kind);

/* Registers the shaper of @kind (one per kind; the default returns the
 * row as it is). */
void dv_core_set_shaper(DvEngine *engine, DvKind kind, DvCoreShapeFunc func);

/* A row shaped for the API (owned). */
JsonObject *dv_core_shape(DvEngine *engine, DvKind kind, JsonObject *record);

/* --- hooks ---------------------------------------------------------------- */

void dv_core_add_vm_before_start(DvEngine *engine, DvCoreVmHook hook);
/* Runs every before-start hook in registration order; stops at the
 * first that fails. */
gboolean dv_core_run_vm_before_start(DvEngine *engine, JsonObject *vm, GCancellable *c,
                                     GError **error);

/* --- reads ---------------------------------------------------------------- */

/* Finds an object by id or name.  @field names the input for errors
 * (may be NULL). */
JsonObject *dv_core_resolve(DvEngine *engine, DvKind kind, const char *id_or_name,
                            const char *field, GError **error);

/* Every row matching one EQ filter (bounded per host). */
JsonArray *dv_core_list_all(DvEngine *engine, const DvTableDef *def, const char *column,
                            const char *value, GError **error);

/* One page of @kind, shaped (dv_engine_list() in dv-engine.h). */
JsonObject *dv_core_list(DvEngine *engine, DvKind kind, GHashTable *query, GError **error);

/* The query parameters a list of @kind takes, as the contract shows them
 * (dv_json_field_specs_to_json(); owned): limit, cursor, name_prefix, the
 * parameters naming another object, and the table's filterable columns.
 * The list above reads its parameters from the same table, so the two
 * cannot differ. */
JsonArray *dv_core_list_query_to_json(DvKind kind);

/* --- reads in the actor's scope (docs/ACCESS.md, "Lists") ----------------
 *
 * An actor whose authz is set (a DvAuthzContext, dv_actor_set_authz())
 * sees only what dv_authz_list_filter() leaves: the filter is part of the
 * list query, so a page costs what the visible rows cost and the cursor
 * pages through them; a redacting actor's objects go through
 * dv_authz_redact().  An actor without authz (drover-setup, the tests,
 * the daemon until its authorizer lands) sees everything, as
 * dv_core_list() does. */

/* The kind's name in privileges and filters ("host_group"). */
const char *dv_core_authz_kind(DvKind kind);
/* @actor's authorization context, or NULL (borrowed). */
const DvAuthzContext *dv_core_actor_authz(const DvActor *actor);

/* dv_core_list() in @actor's scope. */
JsonObject *dv_core_list_for(DvEngine *engine, const DvActor *actor, DvKind kind, GHashTable *query,
                             GError **error);
/* dv_core_resolve() in @actor's scope: an object outside it is
 * DV_ERROR_NOT_FOUND with the very message of an absent one.  The row
 * (owned), unshaped and unredacted. */
JsonObject *dv_core_resolve_for(DvEngine *engine, const DvActor *actor, DvKind kind,
                                const char *id_or_name, const char *field, GError **error);
/* Ids by unique prefix (docs/API.md, "References").  @ref is tried as it
 * is first (an id or a name, in @actor's scope: names keep precedence);
 * when that finds nothing and @ref is DV_CORE_ID_PREFIX_MIN to 35
 * characters of hex digits and hyphens, it is taken as the start of an id
 * among the objects of @kind @actor sees.  TRUE with *@ret_id the full id
 * (owned) when exactly one starts so; TRUE with *@ret_id NULL when @ref is
 * to be used as it is (it resolves, is no prefix, or nothing starts so:
 * the caller's own lookup reports it); FALSE with DV_ERROR_CONFLICT on
 * @field listing the candidates when several do.  Out-of-scope objects
 * are neither counted nor listed. */
#define DV_CORE_ID_PREFIX_MIN 6
gboolean dv_core_resolve_prefix(DvEngine *engine, const DvActor *actor, DvKind kind,
                                const char *ref, const char *field, char **ret_id,
                                GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* One object shaped (and redacted) for @actor, or DV_ERROR_NOT_FOUND. */
JsonObject *dv_core_get_for(DvEngine *engine, const DvActor *actor, DvKind kind,
                            const char *id_or_name, GError **error);

/* Gives back @charge ({binding_id, user_id, vms, vcpus, memory_mib,
 * storage_gib}: what a create reserved and recorded on its row) inside the
 * caller's transaction, the one removing the row.  NULL, or a binding that
 * is gone: TRUE. */
gboolean dv_core_quota_release(DvStore *store, JsonObject *charge, GError **error);
/* Gives back the quota a VM row holds (its spec.quota, written by the
 * create that reserved it), inside the caller's transaction, the one
 * removing the row.  A row without one, or whose binding is gone: TRUE. */
gboolean dv_core_vm_quota_release(DvStore *store, JsonObject *vm,
                                  GError **error) G_GNUC_WARN_UNUSED_RESULT;

/* Checks that no other @def row has @column == @value (excluding
 * @except_id); DV_ERROR_CONFLICT naming @field otherwise. */
gboolean dv_core_check_unique(DvEngine *engine, const DvTableDef *def, const char *column,
                              const char *value, const char *except_id, const char *field,
                              const char *what, GError **error);

/* Host groups below @group_id, itself included (ids, owned). */
GPtrArray *dv_core_group_subtree(DvEngine *engine, const char *group_id, GError **error);

/* --- jobs ----------------------------------------------------------------- */

JsonObject *dv_core_submit(DvEngine *engine, const char *kind, const char *target_type,
                           const char *target_id, const char *target_name, const char *host_id,
                           JsonObject *params, const DvActor *actor, GError **error);

/* Submits the job of a database-only change: params {op, kind, id,
 * record, changes, sealed}; the job kind "<type>.<op>" is registered by
 * the feature owning @kind. */
JsonObject *dv_core_object_submit(DvEngine *engine, DvKind kind, const char *op, const char *id,
                                  const char *name, JsonObject *record, JsonObject *changes,
                                  JsonObject *sealed, const DvActor *actor, GError **error);

/* Test support: DV_DEBUG_JOBS=1 in the environment. */
gboolean dv_core_debug_enabled(void);

/* --- hosts (dv-core-hosts.c) ---------------------------------------------- */

/* A host's virt handle with its limits and credentials applied. */
DvVirtHost *dv_core_virt_host(DvEngine *engine, JsonObject *host, GError **error);
DvVirtHost *dv_core_virt_host_by_id(DvEngine *engine, const char *host_id, GError **error);
/* Forgets a removed host's handle (closing its connections). */
void dv_core_virt_host_forget(DvEngine *engine, const char *host_id);

/* A live migration owns the domain @uuid's row from claim to release: a
 * host sync neither imports the domain where it arrives nor marks the row
 * missing where it leaves; the job writes the row itself.  Claiming a
 * domain already claimed is DV_ERROR_CONFLICT naming "ref". */
gboolean dv_core_migration_claim(DvEngine *engine, const char *uuid, GError **error);
void dv_core_migration_release(DvEngine *engine, const char *uuid);
gboolean dv_core_migration_is_claimed(DvEngine *engine, const char *uuid);

/* The host's domain type for new VMs ("kvm", "qemu" or "test"). */
const char *dv_core_host_domain_type(JsonObject *host);

/* The credentials a host's Run As account gives libvirt, opened only in
 * memory. */
DvSecret *dv_core_run_as_credentials(DvEngine *engine, const char *run_as_id, char **ret_username,
                                     GError **error);

/* How dv_core_sync_rows() matches and writes one table. */
typedef struct {
    const DvTableDef *def;
    const char *const *key_cols; /* 1 or 2 columns forming the key */
    const char *const *compare;  /* columns whose change is written */
    gboolean delete_missing;
    const char *missing_state; /* else: set state to this on missing rows */
} DvSyncSpec;

/* Writes @desired (records without ids) over @existing rows of one host:
 * unchanged rows are not written, new ones inserted, vanished ones deleted
 * (or marked).  @ret_ids maps each desired key to its row id. */
gboolean dv_core_sync_rows(DvStore *store, const DvSyncSpec *spec, JsonArray *existing,
                           GPtrArray *desired, GHashTable *ret_ids, GError **error);
/* Copies member @src_name of @src as @dst_name (null when absent). */
void dv_core_copy_member(JsonObject *dst, const char *dst_name, JsonObject *src,
                         const char *src_name);

/* Writes one domain's state, spec and snapshots (as dv_virt_domain_get()
 * reports them) into the VM's row. */
gboolean dv_core_vm_sync(DvEngine *engine, JsonObject *vm, JsonObject *domain, GError **error);

G_END_DECLS
