/* Feature: machine catalogs (src/engine/features/catalogs; docs/CATALOGS.md).  Uses
 * core and below only; it registers the core hook that renews a pooled
 * machine's overlay before its VM starts. */
#pragma once

#include "dv-core.h"

G_BEGIN_DECLS

/* Request bodies: the spec arrays this feature checks its bodies against, which
 * its op rows point at (DvOp.fields), so the contract has one source. */
extern const DvFieldSpec dv_catalog_fields[];
extern const DvFieldSpec dv_catalog_reconcile_fields[];
extern const DvFieldSpec dv_catalog_update_image_fields[];
extern const DvFieldSpec dv_catalog_rebuild_fields[];
extern const DvFieldSpec dv_catalog_add_fields[];
extern const DvFieldSpec dv_catalog_remove_fields[];
extern const DvFieldSpec dv_catalog_power_fields[];

/* Job kinds and the before-start hook. */
void dv_engine_catalogs_register(DvEngine *engine);
/* The catalog rows of the operation table (dv-catalogs-ops.c). */
void dv_engine_catalogs_register_ops(DvEngine *engine);
JsonObject *dv_engine_catalog_create(DvEngine *engine, JsonObject *body, const DvActor *actor,
                                     GError **error);
JsonObject *dv_engine_catalog_delete(DvEngine *engine, JsonObject *catalog, GHashTable *query,
                                     const DvActor *actor, GError **error);

/* The operations dv-engine.h offers (documented there).  Provision runs
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
/* The identity disk a new machine named @hostname of catalog @ref would
 * get now (its guest OS profile, a Run As account's domain join
 * included), built in memory and described as
 * dv_engine_catalog_machine_identity() describes one: no secret value.
 * For tests and diagnostics; no operation routes to it. */
JsonObject *dv_engine_catalog_identity_preview(DvEngine *engine, const char *ref,
                                               const char *hostname, GError **error);
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

G_END_DECLS
