/* Shared between the engine's own files; not for front ends. */
#pragma once

#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-validate.h"
#include "dv-virt.h"
#include "dv-keys.h"

struct _DvEngine {
    char *state_dir;
    char *server_id;
    char *installation_id;
    gboolean registered;
    DvStore *store;
    /* droverd: the one-writer lock on a SQLite database, for the
     * engine's life (NULL otherwise). */
    DvStoreLock *db_lock;
    DvVirt *virt;
    DvAuth *auth;
    DvJobManager *jobs;
    DvKeyring *keyring;
    DvKeyProtector *directory; /* when <state-dir>/directory.conf exists */
    /* Handles of known hosts, kept open: connections are reused, and a
     * test:///file host lives only as long as its one connection. */
    GMutex hosts_lock;
    GHashTable *hosts; /* host id -> DvVirtHost* */
    guint recovered_resumed;
    guint recovered_failed;
    char *default_share_name; /* NULL: "default" */
    char *default_share_path; /* NULL: <state_dir>/library */
    char *library_root;       /* absolute, canonical */
};

typedef struct {
    DvKind kind;
    const DvTableDef *def;
    const char *singular;   /* "host group" */
    const char *type;       /* job target_type: "host-group" */
    gboolean named;         /* addressable by a unique name */
} DvKindInfo;

const DvKindInfo *dv_engine_kind_info(DvKind kind);

/* Finds an object by id or name.  @field names the input for errors
 * (may be NULL). */
JsonObject *dv_engine_resolve(DvEngine *engine, DvKind kind, const char *id_or_name,
                              const char *field, GError **error);

/* Every row matching one EQ filter (bounded per host). */
JsonArray *dv_engine_list_all(DvEngine *engine, const DvTableDef *def, const char *column,
                              const char *value, GError **error);

JsonObject *dv_engine_submit(DvEngine *engine, const char *kind, const char *target_type,
                             const char *target_id, const char *target_name, const char *host_id,
                             JsonObject *params, const char *user, GError **error);

/* A host's virt handle with its limits and credentials applied. */
DvVirtHost *dv_engine_virt_host(DvEngine *engine, JsonObject *host, GError **error);
DvVirtHost *dv_engine_virt_host_by_id(DvEngine *engine, const char *host_id, GError **error);

/* Forgets a removed host's handle (closing its connections). */
void dv_engine_virt_host_forget(DvEngine *engine, const char *host_id);

/* Writes the probe result of a host into the inventory (one transaction). */
gboolean dv_engine_host_sync(DvEngine *engine, const char *host_id, JsonObject *probe,
                             GError **error);

/* Registration of each file's job kinds. */
void dv_engine_hosts_register(DvEngine *engine);
void dv_engine_vms_register(DvEngine *engine);
void dv_engine_objects_register(DvEngine *engine);

/* Per-kind create/update/delete entry points. */
JsonObject *dv_engine_host_add(DvEngine *engine, JsonObject *body, const char *user, GError **error);
JsonObject *dv_engine_host_update(DvEngine *engine, JsonObject *host, JsonObject *body,
                                  const char *user, GError **error);
JsonObject *dv_engine_host_remove(DvEngine *engine, JsonObject *host, const char *user,
                                  GError **error);
JsonObject *dv_engine_vm_create(DvEngine *engine, JsonObject *body, const char *user, GError **error);
JsonObject *dv_engine_vm_delete(DvEngine *engine, JsonObject *vm, GHashTable *query,
                                const char *user, GError **error);
JsonObject *dv_engine_object_create(DvEngine *engine, DvKind kind, JsonObject *body,
                                    const char *user, GError **error);
JsonObject *dv_engine_object_update(DvEngine *engine, DvKind kind, JsonObject *obj,
                                    JsonObject *body, const char *user, GError **error);
JsonObject *dv_engine_object_delete(DvEngine *engine, DvKind kind, JsonObject *obj,
                                    const char *user, GError **error);

/* Objects holding secrets (dv-secret-objects.c). */
void dv_engine_secret_objects_register(DvEngine *engine);
JsonObject *dv_engine_secret_object_create(DvEngine *engine, DvKind kind, JsonObject *body,
                                           const char *user, GError **error);
JsonObject *dv_engine_secret_object_update(DvEngine *engine, DvKind kind, JsonObject *obj,
                                           JsonObject *body, const char *user, GError **error);
JsonObject *dv_engine_secret_object_delete(DvEngine *engine, DvKind kind, JsonObject *obj,
                                           const char *user, GError **error);
void dv_engine_secret_object_shape(DvEngine *engine, DvKind kind, JsonObject *out);
DvSecret *dv_engine_run_as_credentials(DvEngine *engine, const char *run_as_id,
                                       char **ret_username, GError **error);

/* Machine catalogs (catalog/dv-catalogs.c). */
void dv_engine_catalogs_register(DvEngine *engine);
JsonObject *dv_engine_catalog_create(DvEngine *engine, JsonObject *body, const char *user,
                                     GError **error);
JsonObject *dv_engine_catalog_delete(DvEngine *engine, JsonObject *catalog, GHashTable *query,
                                     const char *user, GError **error);

/* Called before a VM is started through Drover: a pooled catalog
 * machine whose domain is shut off gets a fresh overlay on its catalog's
 * current image first (catalog/dv-catalog-image.c).  Other VMs: nothing. */
gboolean dv_engine_catalog_before_start(DvEngine *engine, JsonObject *vm, GCancellable *c,
                                        GError **error);

/* Host groups below @group_id, itself included (ids, owned). */
GPtrArray *dv_engine_group_subtree(DvEngine *engine, const char *group_id, GError **error);

/* Submits the job of a database-only change: params {op, kind, id,
 * record, changes, sealed}. */
JsonObject *dv_engine_object_submit(DvEngine *engine, DvKind kind, const char *op, const char *id,
                                    const char *name, JsonObject *record, JsonObject *changes,
                                    JsonObject *sealed, const char *user, GError **error);

/* Default library share made on first start. */
gboolean dv_engine_ensure_default_share(DvEngine *engine, GError **error);

/* The host's domain type for new VMs ("kvm", "qemu" or "test"). */
const char *dv_engine_host_domain_type(JsonObject *host);

JsonObject *dv_engine_shape(DvEngine *engine, DvKind kind, JsonObject *record);

/* Checks that no other @def row has @column == @value (excluding
 * @except_id); DV_ERROR_CONFLICT naming @field otherwise. */
gboolean dv_engine_check_unique(DvEngine *engine, const DvTableDef *def, const char *column,
                                const char *value, const char *except_id, const char *field,
                                const char *what, GError **error);

/* Writes one domain's state, spec and snapshots (as dv_virt_domain_get()
 * reports them) into the VM's row. */
gboolean dv_engine_vm_sync(DvEngine *engine, JsonObject *vm, JsonObject *domain, GError **error);
