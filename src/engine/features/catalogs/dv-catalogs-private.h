/* Shared between the machine catalog files (src/engine/features/catalogs); not for
 * the rest of the engine.
 *
 * dv-catalogs.c           create, validation, submitting jobs
 * dv-catalog-provision.c  the catalog.provision job
 * dv-catalog-delete.c     the catalog.delete job
 * dv-catalog-reconcile.c  database vs hosts: the report and catalog.reconcile
 * dv-catalog-image.c      image update, rollback, rebuild, moving machines,
 *                         base reference counts
 * dv-catalog-machines.c   add/remove machines, power actions, identity
 */
#pragma once

#include "dv-authz.h"
#include "dv-catalogs.h"

G_BEGIN_DECLS

/* Every volume of catalog <c> is named "<c>-...": the base
 * "<c>-base-v<version>.qcow2" and per machine <m>
 * "<c>-<m>-disk.qcow2", "<c>-<m>-identity.iso", "<c>-<m>-personal.img"
 * (raw, sparse; machines made before kept "-personal.qcow2") and the
 * serial console log "<c>-<m>-console.log" on dir pools.  Identity disks
 * live in the catalog's identity pools (below), the rest in its pool. */
#define DV_CATALOG_VOLUME_DISK "disk.qcow2"
#define DV_CATALOG_VOLUME_IDENTITY "identity.iso"
#define DV_CATALOG_VOLUME_PERSONAL "personal.img"
#define DV_CATALOG_VOLUME_PERSONAL_OLD "personal.qcow2"
#define DV_CATALOG_VOLUME_CONSOLE "console.log"

/* A pooled catalog's machines have no overlay volume: their system disk
 * is their base, transient with a shared backing image, so QEMU makes
 * "<base path>.TRANSIENT-<machine>" beside it at start and libvirt
 * deletes it at stop.  Machines made before (0.2.0 and until issue 16)
 * have an overlay_path and are moved to this form the next time Drover
 * moves them (a start through Drover, update-image, rollback, rebuild,
 * reconcile) while shut off. */
#define DV_CATALOG_TRANSIENT_INFIX ".TRANSIENT-"
gboolean dv_catalog_is_pooled(JsonObject *catalog);

/* All of the above, NULL-terminated: what a machine may own, for delete
 * and for the reconciler alike. */
extern const char *const dv_catalog_machine_volumes[];

/* Identity pools: libvirt refreshes a whole pool after every upload, so
 * identity disks go into small dir pools "<c>-id-<k>" of their own, one
 * per host and shard of DV_CATALOG_IDENTITY_POOL_SIZE machine numbers
 * (k = (name_index - 1) / size), each a directory of that name in the
 * catalog pool's directory.  The job makes them; delete removes them. */
#define DV_CATALOG_IDENTITY_POOL_SIZE 32
#define DV_CATALOG_IDENTITY_POOL_INFIX "id-"
char *dv_catalog_identity_pool_name(const char *catalog, gint64 name_index);
/* Does @name fit "<catalog>-id-<digits>"? */
gboolean dv_catalog_is_identity_pool(const char *catalog, const char *name);

/* Machine steps at once per host at most (also bounded by the host's
 * max_concurrent_operations). */
#define DV_CATALOG_HOST_WORKERS_MAX 16

/* Domains of a catalog carry this description ("machine of catalog <c>"),
 * which tells them from other domains whose name fits the scheme. */
#define DV_CATALOG_DOMAIN_DESCRIPTION "machine of catalog %s"

/* A naming scheme's run of '#': offset and width. */
gboolean dv_catalog_scheme_parse(const char *scheme, guint *ret_offset, guint *ret_width,
                                 GError **error);
/* The machine name of @index in @scheme (the run at @offset, @width). */
char *dv_catalog_machine_name(const char *scheme, guint offset, guint width, gint64 index);
/* The machines @body names ("machines": names or ids, each once, or
 * "all": true) as "machine_ids" in @params; errors name machines[i]. */
gboolean dv_catalog_pick_machines(DvEngine *engine, JsonObject *catalog, JsonObject *body,
                                  JsonObject *params, GError **error);
/* "<catalog>-<machine>-<what>" (owned). */
char *dv_catalog_volume_name(const char *catalog, const char *machine, const char *what);

/* The catalog pool @pool on @host (a host row) as its pool row (owned),
 * or NULL with @error set: DV_ERROR_NOT_FOUND on field "pool" when the
 * host has no such pool. */
JsonObject *dv_catalog_host_pool(DvEngine *engine, JsonObject *host, const char *pool, GError **error);

/* Adds every name in use on @host_id, as a VM or as a catalog's
 * reserved machine, to @taken (name -> @host_name, both owned: a table
 * with g_free for keys and values), for a new machine name to avoid. */
gboolean dv_catalog_names_taken(DvEngine *engine, const char *host_id, const char *host_name, GHashTable *taken,
                                GError **error);

/* A new catalog machine row (owned), pending, with fresh random ids; the one shape a
 * machine has whether the catalog is created with it or grows by it. */
JsonObject *dv_catalog_machine_row_new(const char *catalog_id, const char *name, gint64 name_index,
                                       const char *host_id, const char *image_id, gint64 now);

/* A new qcow2 base row (owned), pending, unreferenced, with a fresh random id; the one
 * shape a base has whether made with the catalog or for a new image. */
JsonObject *dv_catalog_base_row_new(const char *catalog_id, const char *image_id, const char *host_id,
                                    const char *pool, const char *volume_name, gint64 capacity, gint64 now);

/* One action over many machines, several at a time (dv-catalog-each.c). */
typedef struct _DvCatalogEach DvCatalogEach;

/* Runs in a worker thread on machine @m (the worker's own row, owned by
 * the caller): TRUE when done (*@ret_skipped TRUE when there was nothing
 * to do), FALSE with @error set.  A DV_ERROR_CANCELLED error stops the
 * run.  May read the store, write rows of @m and call the virt layer; the
 * data it shares with other workers (@each->data, @each->catalog) is read
 * only, or guarded by the caller. */
typedef gboolean (*DvCatalogEachFunc)(DvCatalogEach *each, JsonObject *m, gboolean *ret_skipped,
                                      GError **error);

struct _DvCatalogEach {
    DvEngine *engine;
    DvJob *job;
    JsonObject *catalog; /* read only */
    DvCatalogEachFunc func;
    gpointer data;
};

typedef struct {
    guint parallel;    /* workers started */
    guint done;        /* machines handled, whatever the outcome */
    guint running;
    guint max_running; /* the most machines in hand at once */
    guint ok;
    guint skipped;     /* nothing to do */
    guint gone;        /* the row was gone (removed meanwhile or by an earlier attempt) */
    guint failed;
    gboolean cancelled;
    char *first_error; /* "<name><sep><message>" of the first failure */
} DvCatalogEachResult;

/* Runs @each->func on every machine id in @ids with up to @parallel
 * workers, moving the job's current step progress; returns when every
 * worker has stopped.  On cancellation the workers stop taking machines
 * and r->cancelled is TRUE.  Clear @r with dv_catalog_each_result_clear(). */
void dv_catalog_each_machine(DvCatalogEach *each, JsonArray *ids, guint parallel, const char *sep,
                             DvCatalogEachResult *r);
void dv_catalog_each_result_clear(DvCatalogEachResult *r);

/* Workers of a bulk action (remove, delete, image moves): the virt layer
 * holds each host to its own limit, so this only bounds the threads. */
#define DV_CATALOG_EACH_PARALLEL 16

/* The master VM's boot disk in its spec (borrowed), or NULL. */
JsonObject *dv_catalog_master_disk(JsonObject *vm);

/* A row of @def on @host_id whose @column is @value; NULL without an
 * error when there is none. */
JsonObject *dv_catalog_on_host(DvEngine *engine, const DvTableDef *def, const char *host_id,
                               const char *column, const char *value, GError **error);

/* DV_ERROR_CONFLICT naming the catalog's job while it is queued or
 * running. */
gboolean dv_catalog_check_idle(DvEngine *engine, JsonObject *catalog, GError **error);

/* Writes @changes (plus updated_at) to row @row of @def and into @row. */
gboolean dv_catalog_update(DvEngine *engine, const DvTableDef *def, JsonObject *row,
                           JsonObject *changes, GError **error);

/* The catalog's target hosts: its host_ids and the hosts of its machines
 * and bases (ids, owned, sorted). */
GPtrArray *dv_catalog_host_ids(JsonObject *catalog, JsonArray *machines, JsonArray *bases);

/* Makes @base (a catalog_bases row, not ready) ready: the image's master
 * disk flattened into the base volume on the base's host and pool
 * (dv-catalog-provision.c).  Idempotent; records the result in the row. */
gboolean dv_catalog_consolidate(DvEngine *engine, DvJob *job, JsonObject *catalog,
                                JsonObject *base, GError **error);

/* The rows of @bases (borrowed) in the order to make them: those on the
 * host of their image's master first, as the other hosts' bases are
 * streamed from them (made before, a base elsewhere would flatten the
 * master itself, freezing it again when it runs). */
GPtrArray *dv_catalog_bases_in_order(DvEngine *engine, JsonArray *bases, guint *ret_n_first);

/* Makes the bases of @order (from dv_catalog_bases_in_order(), its first
 * @n_first on the master's host) with dv_catalog_consolidate(): those
 * first, one after another, then the others up to
 * DV_CATALOG_BASE_PARALLEL at once when every first one is ready (each
 * streams from it), one after another otherwise (each would flatten the
 * master itself).  Returns an array as long as @order of the GError of
 * each base (NULL when made), owned; moves the job's step progress.
 * @ret_at_once (may be NULL): the most bases made at once. */
GPtrArray *dv_catalog_consolidate_all(DvEngine *engine, DvJob *job, JsonObject *catalog, GPtrArray *order,
                                      guint n_first, guint *ret_at_once);
#define DV_CATALOG_BASE_PARALLEL 4

/* Create's checks of a master VM and snapshot (body members master_vm,
 * master_snapshot): exists, has the snapshot and it is current,
 * generation rules, shut off, a known boot disk.  Returns the VM row and
 * the disk's volume row. */
JsonObject *dv_catalog_check_master(DvEngine *engine, JsonObject *body, JsonObject **ret_disk_vol,
                                    GError **error);

/* Submits job @kind for @catalog after dv_catalog_check_idle() (and
 * refusing a catalog being deleted) and records it as the catalog's job,
 * so a second job is refused naming it.  @state, when not NULL, becomes
 * the catalog's state.  Both are written in the transaction that writes
 * the job row, never after it: a job quicker than the request would
 * otherwise end first and its end (ready, degraded) be overwritten. */
JsonObject *dv_catalog_submit(DvEngine *engine, JsonObject *catalog, const char *kind,
                              JsonObject *params, const char *state, const DvActor *actor,
                              GError **error);
/* dv_catalog_submit() that also runs @func (may be NULL) in the
 * transaction writing the job row (dv_job_manager_submit_with()): rows
 * the job owns and the quota they charge are written with their job or
 * not at all. */
JsonObject *dv_catalog_submit_with(DvEngine *engine, JsonObject *catalog, const char *kind,
                                   JsonObject *params, const char *state, const DvActor *actor,
                                   DvStoreTxnFunc func, gpointer user_data, GError **error);

/* The base of @catalog's image @image_id on @host_id (its pool), or NULL
 * without an error when there is none. */
JsonObject *dv_catalog_base_for(DvEngine *engine, JsonObject *catalog, const char *image_id,
                                const char *host_id, GError **error);

/* Moves machine @m (its domain shut off) onto the current image's base
 * of its host.  Persistent: a new overlay (the old one removed, the new
 * one made under the same name).  Pooled: the definition's system disk
 * repointed at the base, transient, and an overlay left from before
 * deleted.  The row's image_id, base_id and overlay_path recorded;
 * identity and personal disks untouched.  Idempotent. */
gboolean dv_catalog_machine_move(DvEngine *engine, DvVirtHost *vh, JsonObject *catalog,
                                 JsonObject *m, GCancellable *c, GError **error);

/* A pooled, ready machine whose domain is shut off moves with
 * dv_catalog_machine_move() when its base is not the current image's or
 * it still has an overlay (*@ret_moved TRUE); anything else is left as
 * it is.  Other catalogs: nothing. */
gboolean dv_catalog_machine_reset_if_pooled(DvEngine *engine, DvVirtHost *vh, JsonObject *catalog,
                                            JsonObject *m, GCancellable *c, gboolean *ret_moved,
                                            GError **error);

/* Recomputes every base's refcount of the catalog from the machine rows. */
gboolean dv_catalog_bases_recount(DvEngine *engine, const char *catalog_id, GError **error);

/* Why @base may not be deleted (owned), or NULL when it may: machines
 * use it, or the current image or the one a rollback returns to needs
 * it, or it is being made. */
char *dv_catalog_base_in_use(DvEngine *engine, JsonObject *catalog, JsonObject *base,
                             GError **error);

/* Deletes one base (volume, then row); DV_ERROR_CONFLICT with the reason
 * of dv_catalog_base_in_use() when it is still needed. */
gboolean dv_catalog_base_delete(DvEngine *engine, JsonObject *catalog, JsonObject *base,
                                GCancellable *c, GError **error);

/* Deletes every base of the catalog nobody needs any more (counted in
 * @ret_removed, may be NULL).  A base that cannot be deleted stays, with
 * the reason in its row, for the next collection; @error is for the
 * database and cancellation only. */
gboolean dv_catalog_bases_collect(DvEngine *engine, const char *catalog_id, GCancellable *c,
                                  guint *ret_removed, GError **error);

/* Removes one machine from its host (domain, volumes by name, recorded
 * paths), then its rows (dv-catalog-delete.c). */
gboolean dv_catalog_machine_remove(DvEngine *engine, DvJob *job, JsonObject *catalog,
                                   JsonObject *m, DvVirtHost *vh, const char *pool_path,
                                   GError **error);

/* Starts machine @m's domain: a pooled machine gets a fresh overlay on
 * the current image first.  Then its VM row is synced. */
gboolean dv_catalog_machine_start(DvEngine *engine, JsonObject *catalog, JsonObject *m,
                                  GCancellable *c, GError **error);

/* Placement (dv-catalog-place.c): one target host as read live. */
typedef struct {
    gint64 free_memory_mib;
    double cpu_busy;        /* 0..1; < 0 unknown */
    gint64 pool_available;  /* bytes left for machines (after the base) */
} DvCatalogPlaceHost;

/* Deals @count machines out to @hosts: returns the count per host (owned,
 * n_hosts entries) and, when @ret_order is given (@count entries), the
 * host index of each machine in turn.  A pool too small for all is
 * DV_ERROR_CONFLICT naming "pool". */
gint64 *dv_catalog_place(const DvCatalogPlaceHost *hosts, guint n_hosts, gint64 count,
                         gint64 per_machine_bytes, guint *ret_order, GError **error);

/* A running master's disk frozen while its base is copied
 * (dv-catalog-freeze.c).  @dom is the master's live entry, @disk its boot
 * disk there (target, source, format).  _end merges the layer back;
 * _free merges it back too when _end was not reached. */
typedef struct _DvCatalogFreeze DvCatalogFreeze;
DvCatalogFreeze *dv_catalog_freeze(DvEngine *engine, DvVirtHost *vh, JsonObject *master, JsonObject *dom,
                                   JsonObject *disk, GCancellable *c, GError **error);
gboolean dv_catalog_freeze_end(DvCatalogFreeze *f, GCancellable *c, GError **error);
void dv_catalog_freeze_free(DvCatalogFreeze *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvCatalogFreeze, dv_catalog_freeze_free)

/* --- access (dv-catalog-access.c; docs/ACCESS.md, "Catalog machines") ---
 *
 * The object a catalog or a machine is checked as: a catalog is under the
 * host group it targets (a cluster's group; none for a list of hosts), a
 * machine under its host's group, in its catalog, owned by the user who
 * added it.  The path is owned by the struct; clear it. */
typedef struct {
    DvAuthzObject o;
    char **path;
} DvCatalogAuthz;
void dv_catalog_authz_clear(DvCatalogAuthz *a);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(DvCatalogAuthz, dv_catalog_authz_clear)
gboolean dv_catalog_authz_catalog(DvEngine *engine, JsonObject *catalog, DvCatalogAuthz *ret,
                                  GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* @kind: "catalog_machine" (a machine as a VM: vm.* privileges) or
 * "catalog" (catalog.* privileges on one machine). */
gboolean dv_catalog_authz_machine(DvEngine *engine, JsonObject *m, const char *kind,
                                  DvCatalogAuthz *ret, GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* Keeps in @params' machine_ids the machines @actor holds @privilege on
 * (all of them for an actor without authz).  @named: the caller named
 * them, so one refused is an error naming machines[i] (404 when the actor
 * may not see it, 403 when it may); otherwise refused ones are left out.
 * None left: DV_ERROR_PERMISSION_DENIED. */
gboolean dv_catalog_machines_allowed(DvEngine *engine, const DvActor *actor, const char *privilege,
                                     JsonObject *catalog, JsonObject *params, gboolean named,
                                     GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* Using a catalog whose guest OS profile (@profile_id, NULL: none) joins
 * its domain with a Run As account needs run_as.use on that account
 * (docs/ACCESS.md, "Run As accounts"): 404 when @actor cannot see the
 * account, 403 naming run_as.use when it can; TRUE for an actor without
 * authz.  The error names the field guest_os_profile. */
gboolean dv_catalog_check_run_as(DvEngine *engine, const DvActor *actor, const char *profile_id,
                                 GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* The quota one machine added by @actor costs, {binding_id, user_id, vms,
 * vcpus, memory_mib, storage_gib} (owned) under the binding that allows it
 * catalog.provision on @catalog; NULL for an actor without authz.  Not
 * allowed: the errors of dv_authz_check(). */
gboolean dv_catalog_quota_plan(DvEngine *engine, const DvActor *actor, JsonObject *catalog,
                               gint64 base_capacity, JsonObject **ret_each,
                               GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* Reserves @count times @each (NULL: nothing) inside the caller's
 * transaction; exceeded: DV_ERROR_CONFLICT naming quota.<what>. */
gboolean dv_catalog_quota_reserve(DvStore *store, JsonObject *each, gint64 count,
                                  GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* Gives back what machine row @m was charged (its "quota"), inside the
 * transaction removing it. */
gboolean dv_catalog_machine_quota_release(DvStore *store, JsonObject *m,
                                          GError **error) G_GNUC_WARN_UNUSED_RESULT;

/* What a provision retry by @actor takes: every machine not ready when
 * the actor holds catalog.provision on each of them as a machine of the
 * catalog (its catalog, its host's group, its owner: a self-service user
 * holds it on its own machines only); else, in @ret_params (owned), the
 * "machine_ids" of those it holds it on, possibly none.  *@ret_params is
 * NULL when nothing is to be left out (or @actor has no authz). */
gboolean dv_catalog_provision_scope(DvEngine *engine, const DvActor *actor, JsonObject *catalog,
                                    JsonObject **ret_params,
                                    GError **error) G_GNUC_WARN_UNUSED_RESULT;

/* Job kinds of dv-catalog-provision.c, dv-catalog-delete.c and
 * dv-catalog-reconcile.c. */
void dv_catalog_provision_register(DvEngine *engine);
void dv_catalog_delete_register(DvEngine *engine);
void dv_catalog_reconcile_register(DvEngine *engine);
void dv_catalog_image_register(DvEngine *engine);
void dv_catalog_machines_register(DvEngine *engine);

/* The core hook run before a VM is started through Drover
 * (dv_core_add_vm_before_start()): a pooled catalog machine whose domain
 * is shut off gets a fresh overlay on its catalog's current image first
 * (dv-catalog-image.c).  Other VMs: nothing. */
gboolean dv_catalog_before_start(DvEngine *engine, JsonObject *vm, GCancellable *c, GError **error);

/* The reconcile report of one catalog (dv-catalog-reconcile.c). */
JsonObject *dv_catalog_reconcile_report(DvEngine *engine, JsonObject *catalog, GCancellable *c,
                                        GError **error);

G_END_DECLS
