/* The engine: store, virt, jobs and auth wired together, and every
 * inventory operation the front ends offer.
 *
 * Operations that change something validate their input at once (errors
 * name the field) and return the record of the job that will do the work;
 * reads return JSON records shaped for the API.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "dv-actor.h"
#include "dv-auth.h"
#include "dv-core-types.h"
#include "dv-json.h"
#include "dv-jobs.h"
#include "dv-store.h"

G_BEGIN_DECLS

typedef struct _DvVirt DvVirt;

typedef struct {
    const char *state_dir;      /* required; created 0700 if missing */
    const char *database;       /* NULL: <state_dir>/drover.db */
    guint job_workers;          /* 0: default (16) */
    gboolean no_recover;        /* tests: leave interrupted jobs alone */
    const char *machine_id_path;   /* NULL: /etc/machine-id (tests: another "machine") */
    const char *recovery_key_path; /* open keys with this recovery key file */
    gboolean serve;             /* droverd: register as a server of this database */
    /* The default library share made on first start (drover-setup install):
     * NULL: "default" and <state_dir>/library.  Ignored once one exists. */
    const char *default_share_name;
    const char *default_share_path;
    /* Host URIs (docs/VIRT.md, "Host URIs"): simulated test:/// hosts
     * (tests, benchmarks, demos) and the libvirt URI parameters allowed
     * beyond the built-in allowlist (NULL-terminated names; an unknown
     * name makes dv_engine_new() fail). */
    gboolean allow_simulated_hosts;
    const char *const *allow_uri_parameters;
    /* Live migrations of "shared" storage that libvirt deems unsafe (a
     * local directory two daemons of one machine see): tests only. */
    gboolean allow_unsafe_migration;
    /* The only place a library share's directory is created on request
     * (docs/API.md, library shares).  NULL: <state_dir>/library. */
    const char *library_root;
    /* A serving engine watches its hosts' events (docs/VIRT.md, "Events"):
     * no_watch turns that off; watch_resync_ms is the full resync's period
     * (0: 60 s). */
    gboolean no_watch;
    guint watch_resync_ms;
    /* A serving engine's job lease (docs/DECISIONS.md, "Leased jobs"),
     * renewed every quarter of it: 0 is the default (DV_JOB_LEASE_MS);
     * otherwise DV_ENGINE_JOB_LEASE_MIN_S to _MAX_S seconds, in ms. */
    guint job_lease_ms;
} DvEngineOptions;

#define DV_ENGINE_JOB_LEASE_MIN_S 2
#define DV_ENGINE_JOB_LEASE_MAX_S 600

DvEngine *dv_engine_new(const DvEngineOptions *opts, GError **error);
void dv_engine_free(DvEngine *engine);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvEngine, dv_engine_free)

DvStore *dv_engine_get_store(DvEngine *engine);
DvJobManager *dv_engine_get_jobs(DvEngine *engine);
DvAuth *dv_engine_get_auth(DvEngine *engine);
const char *dv_engine_get_state_dir(DvEngine *engine);
const char *dv_engine_get_server_id(DvEngine *engine);
const char *dv_engine_get_installation_id(DvEngine *engine);
typedef struct _DvKeyring DvKeyring;
DvKeyring *dv_engine_get_keyring(DvEngine *engine);
/* Counts of jobs resumed and failed by recovery at start. */
void dv_engine_get_recovery(DvEngine *engine, guint *ret_resumed, guint *ret_failed);
/* Rows left in a state only a job holds them in that no queued or running
 * job owns, created more than @min_age_us ago, are settled: a VM
 * "creating" is rolled back with a failed job saying why, a catalog image
 * "pending" is marked failed with the reason.  Run at start after job
 * recovery (age 0) and by housekeeping (DV_ENGINE_SETTLE_MIN_AGE_US). */
#define DV_ENGINE_SETTLE_MIN_AGE_US (G_GINT64_CONSTANT(300) * G_USEC_PER_SEC)
gboolean dv_engine_recover_rows(DvEngine *engine, gint64 min_age_us, guint *ret_settled,
                                GError **error);

/* --- reads ----------------------------------------------------------- */

/* Object kinds: DvKind in core/dv-core-types.h. */

/* One page of @kind.  @query holds the request's query parameters
 * (limit, cursor, filters named after fields, name_prefix); an unknown
 * parameter is DV_ERROR_INVALID_ARGUMENT naming it.  Returns
 * {"items": [...], "next_cursor": ...}. */
JsonObject *dv_engine_list(DvEngine *engine, DvKind kind, GHashTable *query, GError **error);

/* One object by id (or by name for named kinds). */
JsonObject *dv_engine_get(DvEngine *engine, DvKind kind, const char *id_or_name, GError **error);

/* The same in @actor's scope (docs/ACCESS.md, "Lists"): when the actor
 * carries an authorization context, the list is filtered inside its query
 * and an object outside the scope is DV_ERROR_NOT_FOUND, as if absent;
 * storage data is left out for a delegated administrator.  An actor
 * without one sees everything. */
JsonObject *dv_engine_list_for(DvEngine *engine, const DvActor *actor, DvKind kind,
                               GHashTable *query, GError **error);
JsonObject *dv_engine_get_for(DvEngine *engine, const DvActor *actor, DvKind kind,
                              const char *id_or_name, GError **error);

/* Snapshots of a VM. */
JsonObject *dv_engine_vm_snapshot_list(DvEngine *engine, const char *vm, GError **error);

JsonObject *dv_engine_health(DvEngine *engine);
JsonObject *dv_engine_version(DvEngine *engine);

/* --- changes: each returns the job record ------------------------------ */

JsonObject *dv_engine_create(DvEngine *engine, DvKind kind, JsonObject *body, const DvActor *actor,
                             GError **error);
JsonObject *dv_engine_update(DvEngine *engine, DvKind kind, const char *id_or_name,
                             JsonObject *body, const DvActor *actor, GError **error);
JsonObject *dv_engine_delete(DvEngine *engine, DvKind kind, const char *id_or_name,
                             GHashTable *query, const DvActor *actor, GError **error);
JsonObject *dv_engine_host_refresh(DvEngine *engine, const char *host, const DvActor *actor,
                                   GError **error);
/* @action: "start", "shutdown", "stop", "reboot" or "reset". */
JsonObject *dv_engine_vm_action(DvEngine *engine, const char *vm, const char *action,
                                const DvActor *actor, GError **error);
/* With the request's body: shutdown takes {"timeout": seconds}. */
JsonObject *dv_engine_vm_power(DvEngine *engine, const char *vm, const char *action,
                               JsonObject *body, const DvActor *actor, GError **error);
/* PATCH /vms/{ref} (features/vms/dv-vms.h). */
JsonObject *dv_engine_vm_change(DvEngine *engine, const char *vm, JsonObject *body,
                                const DvActor *actor, GError **error);
JsonObject *dv_engine_vm_snapshot_create(DvEngine *engine, const char *vm, JsonObject *body,
                                         const DvActor *actor, GError **error);
JsonObject *dv_engine_vm_snapshot_revert(DvEngine *engine, const char *vm, const char *snapshot,
                                         const DvActor *actor, GError **error);
JsonObject *dv_engine_vm_snapshot_delete(DvEngine *engine, const char *vm, const char *snapshot,
                                         const DvActor *actor, GError **error);
/* Machine catalogs (src/engine/features/catalogs/dv-catalogs.c).  Provision runs
 * catalog.provision again for the machines not ready (a retry); while a
 * job of the catalog is queued or running it is DV_ERROR_CONFLICT naming
 * that job. */
JsonObject *dv_engine_catalog_provision(DvEngine *engine, const char *catalog, const DvActor *actor,
                                        GError **error);
/* One page of a catalog's machines (query as for dv_engine_list()). */
JsonObject *dv_engine_catalog_machines(DvEngine *engine, const char *catalog, GHashTable *query,
                                       GError **error);
/* The same in @actor's scope: the catalog outside it is DV_ERROR_NOT_FOUND,
 * and only the machines @actor may see (vm.read over their host, their
 * catalog, or their owner for own-objects grants) are listed, filtered in
 * the query. */
JsonObject *dv_engine_catalog_machines_for(DvEngine *engine, const DvActor *actor,
                                           const char *catalog, GHashTable *query, GError **error);
/* The catalog's reconcile report, read live from its hosts:
 * {catalog, catalog_id, orphans_on_hosts: [{host, host_id, kind
 * ("volume"|"domain"), name, path, pool | uuid, running}],
 * missing_on_hosts: [{host, host_id, machine (NULL for a base), kind,
 * name}], unreachable_hosts: [{host, host_id, error}], hosts_checked,
 * truncated, ok}.  Deletes nothing.  (Deleting the catalog is
 * dv_engine_delete() with DV_KIND_CATALOG: job catalog.delete.) */
JsonObject *dv_engine_catalog_reconcile(DvEngine *engine, const char *catalog, GError **error);
/* Job catalog.reconcile: the same report as its result, and with
 * @body {"delete_orphans": true} the orphans it lists are deleted
 * (nothing else).  @body may be NULL. */
JsonObject *dv_engine_catalog_reconcile_submit(DvEngine *engine, const char *catalog,
                                               JsonObject *body, const DvActor *actor,
                                               GError **error);

/* Catalog lifecycle (features/catalogs/dv-catalog-image.c, dv-catalog-machines.c;
 * docs/CATALOGS.md).  Each validates before it writes, then returns the
 * record of the catalog's job; a second job of a busy catalog is
 * DV_ERROR_CONFLICT naming the running one.
 * update-image: @body {master_vm, master_snapshot} -> catalog.update-image.
 * rollback: back to the previous image -> catalog.rollback.
 * rebuild: @body {machines: [names] | all: true} -> catalog.rebuild.
 * add-machines: @body {count, reuse_gaps?} -> catalog.provision.
 * remove-machines: @body {machines | count, force?} -> catalog.remove-machines.
 * power: @body {action: start|shutdown|restart, machines?, max_share?}
 *   -> catalog.power. */
JsonObject *dv_engine_catalog_update_image(DvEngine *engine, const char *catalog, JsonObject *body,
                                           const DvActor *actor, GError **error);
JsonObject *dv_engine_catalog_rollback(DvEngine *engine, const char *catalog, const DvActor *actor,
                                       GError **error);
JsonObject *dv_engine_catalog_rebuild(DvEngine *engine, const char *catalog, JsonObject *body,
                                      const DvActor *actor, GError **error);
/* Image history: {items: [{id, version, master_vm_id, master_vm_name,
 * master_snapshot, current, state, machines, base_state, bases: [...]}]}. */
JsonObject *dv_engine_catalog_images(DvEngine *engine, const char *catalog, GError **error);
JsonObject *dv_engine_catalog_add_machines(DvEngine *engine, const char *catalog, JsonObject *body,
                                           const DvActor *actor, GError **error);
JsonObject *dv_engine_catalog_remove_machines(DvEngine *engine, const char *catalog,
                                              JsonObject *body, const DvActor *actor,
                                              GError **error);
JsonObject *dv_engine_catalog_power(DvEngine *engine, const char *catalog, JsonObject *body,
                                    const DvActor *actor, GError **error);
/* The identity disk of a catalog machine (id, or name when unique),
 * downloaded through its host, without any secret value. */
JsonObject *dv_engine_catalog_machine_identity(DvEngine *engine, const char *machine,
                                               GError **error);
/* The same for @actor: catalog.change checked against the machine's
 * catalog and its host's group; a machine outside @actor's scope is
 * DV_ERROR_NOT_FOUND as an absent one, one it may see 403. */
JsonObject *dv_engine_catalog_machine_identity_for(DvEngine *engine, const DvActor *actor,
                                                   const char *machine, GError **error);
/* The reconcile report of every catalog, each recorded as the catalog's
 * last_reconcile {at, ok, orphans, missing, unreachable}; deletes
 * nothing.  Counts catalogs checked and not ok. */
gboolean dv_engine_catalog_reconcile_all(DvEngine *engine, guint *ret_checked, guint *ret_not_ok,
                                         GError **error);

/* Test support, only with DV_DEBUG_JOBS=1 (see dv-engine.c). */
gboolean dv_engine_debug_enabled(void);
JsonObject *dv_engine_debug_sleep(DvEngine *engine, JsonObject *body, const DvActor *actor,
                                  GError **error);
/* Its body (the debug.sleep row checks it too). */
extern const DvFieldSpec dv_engine_debug_sleep_fields[];
void dv_engine_debug_register(DvEngine *engine);
/* The facade's rows of the operation table (dv-engine-ops.c). */
void dv_engine_ops_register(DvEngine *engine);

/* /metrics (dv-engine-metrics.c, docs/METRICS.md): the inventory gauges'
 * collector, added by dv_engine_new() and removed by dv_engine_free();
 * the text of every metric (owned); invalidate drops the gauges' cache
 * (tests). */
void dv_engine_metrics_start(DvEngine *engine);
void dv_engine_metrics_stop(DvEngine *engine);
void dv_engine_metrics_invalidate(void);
char *dv_engine_metrics_render(DvEngine *engine);

/* Marks this server alive (droverd calls it every 20 s) and forgets
 * servers whose heartbeat stopped. */
gboolean dv_engine_heartbeat(DvEngine *engine, GError **error);
/* Removes this server from the database's list (clean stop). */
void dv_engine_unregister(DvEngine *engine);

/* Removes finished jobs older than @job_retention_us and expired
 * sessions, so neither table grows without bound. */
#define DV_ENGINE_JOB_RETENTION_US (30 * G_TIME_SPAN_DAY)
gboolean dv_engine_housekeeping(DvEngine *engine, gint64 job_retention_us, guint *ret_jobs,
                                guint *ret_sessions, GError **error);

JsonObject *dv_engine_job_cancel(DvEngine *engine, const char *job_id, GError **error);

/* The report of the last drover-setup upgrade (GET /api/v1/upgrade-report),
 * or NULL with DV_ERROR_NOT_FOUND when none was written. */
JsonObject *dv_engine_upgrade_report(DvEngine *engine, GError **error);

G_END_DECLS
