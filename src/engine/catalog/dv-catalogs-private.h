/* Shared between the machine catalog files (src/engine/catalog); not for
 * the rest of the engine.
 *
 * dv-catalogs.c           create, validation, submitting jobs
 * dv-catalog-provision.c  the catalog.provision job
 * dv-catalog-delete.c     the catalog.delete job
 * dv-catalog-reconcile.c  database vs hosts: the report and catalog.reconcile
 */
#pragma once

#include "dv-engine-private.h"

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
/* "<catalog>-<machine>-<what>" (owned). */
char *dv_catalog_volume_name(const char *catalog, const char *machine, const char *what);

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

/* Job kinds of dv-catalog-provision.c, dv-catalog-delete.c and
 * dv-catalog-reconcile.c. */
void dv_catalog_provision_register(DvEngine *engine);
void dv_catalog_delete_register(DvEngine *engine);
void dv_catalog_reconcile_register(DvEngine *engine);

G_END_DECLS
