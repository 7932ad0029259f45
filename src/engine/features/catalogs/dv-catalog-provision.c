#define G_LOG_DOMAIN "DvCatalogs"

/* The catalog.provision job (docs/CATALOGS.md): flattens the master's disk
 * into one base per pool ("consolidate"), then gives every machine an
 * overlay, an identity disk, an optional personal disk and a domain,
 * recording each step in catalog_machines so a restart resumes where it
 * stopped.  A machine whose step fails is marked failed with the reason;
 * the others go on. */

#include "dv-catalogs-private.h"
#include "dv-identity.h"

#include <string.h>

/* --- the provisioning job ------------------------------------------------------- */

static const DvJobStep dv_catalog_steps[] = {
    { "consolidate", 30 },
    { "machines", 65 },
    { "save", 5 },
};

gboolean
dv_catalog_update(DvEngine *engine, const DvTableDef *def, JsonObject *row, JsonObject *changes,
                  GError **error)
{
    json_object_set_int_member(changes, "updated_at", dv_store_now());
    if (!dv_store_update(dv_core(engine)->store, def, dv_json_get_string(row, "id", ""), changes,
                         error))
        return FALSE;
    /* Keep the caller's copy current. */
    {
        JsonObjectIter it;
        const char *k;
        JsonNode *n;
        json_object_iter_init(&it, changes);
        while (json_object_iter_next(&it, &k, &n))
            json_object_set_member(row, k, json_node_copy(n));
    }
    return TRUE;
}

/* Test hook: with DV_DEBUG_JOBS=1 and DV_DEBUG_CATALOG_PAUSE=<point> in
 * droverd's environment the job says "catalog.provision: paused at
 * <point>" on stderr and waits there, so a test can kill droverd at that
 * very point: "consolidate" (a base copied, not recorded yet),
 * "machines" (the first batch of machines recorded; the workers go on
 * making the rest, which stay unrecorded)
 * and "save" (the machines recorded, the catalog's state not).  Off
 * unless both variables are set. */
static void
dv_catalog_debug_pause(const char *point, GCancellable *c)
{
    if (!dv_core_debug_enabled() || g_strcmp0(g_getenv("DV_DEBUG_CATALOG_PAUSE"), point) != 0)
        return;
    g_printerr("catalog.provision: paused at %s\n", point);
    /* A cancel ends the pause (the cancellation test). */
    for (guint i = 0; i < 300 && !g_cancellable_is_cancelled(c); i++)
        g_usleep(100 * 1000);
}

/* The ready base of @image_id on @host_id, or NULL (no error). */
static JsonObject *
dv_catalog_ready_base_on(DvEngine *engine, const char *image_id, const char *host_id, GError **error)
{
    g_autoptr(JsonArray) rows =
        dv_core_list_all(engine, &dv_table_catalog_bases, "image_id", image_id, error);
    for (guint i = 0; rows != NULL && i < json_array_get_length(rows); i++) {
        JsonObject *b = json_array_get_object_element(rows, i);
        if (g_strcmp0(dv_json_get_string(b, "host_id", ""), host_id) == 0 &&
            g_strcmp0(dv_json_get_string(b, "state", ""), "ready") == 0 &&
            dv_json_get_string(b, "path", NULL) != NULL)
            return json_object_ref(b);
    }
    return NULL;
}

/* Deletes @name in @pool when it exists. */
static gboolean
dv_catalog_volume_drop(DvVirtHost *vh, const char *pool, const char *name, GCancellable *c, GError **error)
{
    g_autoptr(GError) local = NULL;
    if (!dv_virt_volume_delete(vh, pool, name, c, &local) && !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    return TRUE;
}

/* Makes the base of one pool when it is not ready.  A base still pending
 * after a crash may be a half-written copy: it is removed and made again.
 *
 * On the master's host the master's disk is flattened into the base
 * (virStorageVolCreateXMLFrom).  On another host the base is streamed
 * from the master's host: from the ready base there when the master's
 * host is a target too (the job makes that one first), otherwise from a
 * flattened staging copy "<base>-staging" in the master disk's pool,
 * removed afterwards. */
gboolean
dv_catalog_consolidate(DvEngine *engine, DvJob *job, JsonObject *catalog, JsonObject *base,
                       GError **error)
{
    GCancellable *c = dv_job_get_cancellable(job);
    g_autoptr(JsonObject) image = NULL;
    g_autoptr(JsonObject) master = NULL;
    g_autoptr(JsonObject) dom = NULL;
    g_autoptr(JsonObject) vol = NULL;
    g_autoptr(JsonObject) pool = NULL;
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(DvVirtHost) mvh = NULL;
    g_autoptr(DvCatalogFreeze) freeze = NULL;
    g_autofree char *path = NULL;
    g_autofree char *source = NULL;
    const char *master_host;
    const char *pool_name = dv_json_get_string(base, "pool_name", "");
    const char *vname = dv_json_get_string(base, "volume_name", "");
    JsonObject *disk;

    if (g_strcmp0(dv_json_get_string(base, "state", ""), "ready") == 0)
        return TRUE;
    /* The master of the base's image (an image update may name another
     * master than the catalog was created from). */
    image = dv_store_get(dv_core(engine)->store, &dv_table_catalog_images,
                         dv_json_get_string(base, "image_id", ""), error);
    if (image == NULL)
        return FALSE;
    master = dv_store_get(dv_core(engine)->store, &dv_table_vms,
                          dv_json_get_string(image, "master_vm_id", ""), error);
    if (master == NULL) {
        g_prefix_error(error, "master VM of image v%" G_GINT64_FORMAT ": ", dv_json_get_int(image, "version", 0));
        return FALSE;
    }
    master_host = dv_json_get_string(master, "host_id", "");
    vh = dv_core_virt_host_by_id(engine, dv_json_get_string(base, "host_id", ""), error);
    if (vh == NULL)
        return FALSE;
    mvh = dv_core_virt_host_by_id(engine, master_host, error);
    if (mvh == NULL) {
        g_prefix_error(error, "master's host: ");
        return FALSE;
    }
    pool = dv_catalog_on_host(engine, &dv_table_pools, dv_json_get_string(base, "host_id", ""), "name", pool_name,
                              error);
    if (pool == NULL) {
        if (error != NULL && *error == NULL)
            g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "storage pool %s is gone", pool_name);
        return FALSE;
    }
    path = g_build_filename(dv_json_get_string(pool, "path", "/"), vname, NULL);
    /* Not recorded as ready: whatever is there is a half-made copy (or
     * one whose recording was lost), and no machine uses it yet. */
    if (!dv_catalog_volume_drop(vh, pool_name, vname, c, error))
        return FALSE;

    if (g_strcmp0(dv_json_get_string(base, "host_id", ""), master_host) != 0) {
        g_autoptr(JsonObject) src = dv_catalog_ready_base_on(engine, dv_json_get_string(base, "image_id", ""),
                                                             master_host, error);
        if (src == NULL && error != NULL && *error != NULL)
            return FALSE;
        if (src != NULL)
            source = g_strdup(dv_json_get_string(src, "path", ""));
    }
    if (source == NULL) {
        /* Copy only a disk nobody writes: a running master's disk is
         * frozen first (dv-catalog-freeze.c). */
        dom = dv_virt_domain_get(mvh, dv_json_get_string(master, "uuid", ""), c, error);
        if (dom == NULL)
            return FALSE;
        {
            g_autoptr(JsonObject) wrap = json_object_new();
            json_object_set_object_member(wrap, "spec", json_object_ref(dom));
            disk = dv_catalog_master_disk(wrap);
            if (disk == NULL) {
                g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT, "master VM %s has no writable disk",
                            dv_json_get_string(master, "name", ""));
                return FALSE;
            }
            source = g_strdup(dv_json_get_string(disk, "source", ""));
            if (g_strcmp0(dv_json_get_string(dom, "state", ""), "shutoff") != 0) {
                freeze = dv_catalog_freeze(engine, mvh, master, dom, disk, c, error);
                if (freeze == NULL)
                    return FALSE;
            }
        }
    }

    if (g_strcmp0(dv_json_get_string(base, "host_id", ""), master_host) == 0) {
        vol = dv_virt_volume_clone(vh, source, pool_name, vname, c, error);
    } else if (dom == NULL) {
        /* From the master host's ready base. */
        vol = dv_virt_volume_copy_between(mvh, source, vh, pool_name, vname, c, error);
    } else {
        /* Flattened on the master's host first, then streamed. */
        g_autoptr(JsonObject) where = dv_virt_volume_lookup_by_path(mvh, source, c, error);
        g_autofree char *staging = g_strdup_printf("%s-staging", vname);
        g_autoptr(JsonObject) flat = NULL;
        const char *mpool;
        if (where == NULL)
            return FALSE;
        mpool = dv_json_get_string(where, "pool", "");
        if (!dv_catalog_volume_drop(mvh, mpool, staging, c, error))
            return FALSE;
        flat = dv_virt_volume_clone(mvh, source, mpool, staging, c, error);
        if (flat == NULL)
            return FALSE;
        if (freeze != NULL && !dv_catalog_freeze_end(freeze, c, error))
            return FALSE;
        vol = dv_virt_volume_copy_between(mvh, dv_json_get_string(flat, "path", ""), vh, pool_name, vname, c,
                                          error);
        {
            g_autoptr(GError) local = NULL;
            if (!dv_catalog_volume_drop(mvh, mpool, staging, c, vol != NULL ? error : &local))
                return FALSE;
        }
    }
    if (vol == NULL)
        return FALSE;
    if (freeze != NULL && !dv_catalog_freeze_end(freeze, c, error))
        return FALSE;
    dv_catalog_debug_pause("consolidate", c);
    {
        g_autoptr(JsonObject) changes = json_object_new();
        json_object_set_string_member(changes, "path", dv_json_get_string(vol, "path", path));
        json_object_set_int_member(changes, "capacity", dv_json_get_int(vol, "capacity", 0));
        json_object_set_string_member(changes, "state", "ready");
        json_object_set_null_member(changes, "error");
        return dv_catalog_update(engine, &dv_table_catalog_bases, base, changes, error);
    }
}

GPtrArray *
dv_catalog_bases_in_order(DvEngine *engine, JsonArray *bases, guint *ret_n_first)
{
    GPtrArray *order = g_ptr_array_new();
    g_autoptr(GHashTable) master_host = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

    /* image id -> its master's host id (images of one update share it) */
    for (guint i = 0; i < json_array_get_length(bases); i++) {
        const char *image_id = dv_json_get_string(json_array_get_object_element(bases, i), "image_id", "");
        g_autoptr(JsonObject) image = NULL;
        g_autoptr(JsonObject) master = NULL;

        if (g_hash_table_contains(master_host, image_id))
            continue;
        image = dv_store_get(dv_core(engine)->store, &dv_table_catalog_images, image_id, NULL);
        if (image != NULL)
            master = dv_store_get(dv_core(engine)->store, &dv_table_vms,
                                  dv_json_get_string(image, "master_vm_id", ""), NULL);
        g_hash_table_insert(master_host, g_strdup(image_id),
                            g_strdup(master != NULL ? dv_json_get_string(master, "host_id", "") : ""));
    }
    for (guint pass = 0; pass < 2; pass++)
        for (guint i = 0; i < json_array_get_length(bases); i++) {
            JsonObject *b = json_array_get_object_element(bases, i);
            const char *mhost = g_hash_table_lookup(master_host, dv_json_get_string(b, "image_id", ""));
            if ((g_strcmp0(dv_json_get_string(b, "host_id", ""), mhost) == 0) == (pass == 0))
                g_ptr_array_add(order, b);
            if (pass == 0 && ret_n_first != NULL)
                *ret_n_first = order->len;
        }
    return order;
}

typedef struct {
    DvEngine *engine;
    DvJob *job;
    JsonObject *catalog;
    JsonObject *base;
    GError *error;
} DvConsolidateTask;

static void
dv_catalog_error_free0(gpointer e)
{
    if (e != NULL)
        g_error_free(e);
}

static gpointer
dv_catalog_consolidate_thread(gpointer data)
{
    DvConsolidateTask *t = data;

    dv_catalog_consolidate(t->engine, t->job, t->catalog, t->base, &t->error);
    return NULL;
}

GPtrArray *
dv_catalog_consolidate_all(DvEngine *engine, DvJob *job, JsonObject *catalog, GPtrArray *order, guint n_first,
                           guint *ret_at_once)
{
    GPtrArray *errors = g_ptr_array_new_full(order->len, dv_catalog_error_free0);
    gboolean parallel = TRUE;
    guint i = 0;

    if (ret_at_once != NULL)
        *ret_at_once = MIN(n_first, order->len) > 0 ? 1 : 0;

    g_ptr_array_set_size(errors, order->len);
    for (; i < MIN(n_first, order->len); i++) {
        JsonObject *b = g_ptr_array_index(order, i);
        GError *local = NULL;

        if (!dv_catalog_consolidate(engine, job, catalog, b, &local))
            errors->pdata[i] = local;
        if (g_strcmp0(dv_json_get_string(b, "state", ""), "ready") != 0)
            parallel = FALSE;
        dv_job_step_progress(job, (double)(i + 1) / order->len);
    }
    /* Parallel only when every other base streams from a ready base on
     * its master's host (made above or earlier). */
    for (guint j = i; parallel && j < order->len; j++) {
        JsonObject *b = g_ptr_array_index(order, j);
        g_autoptr(JsonObject) image = dv_store_get(dv_core(engine)->store, &dv_table_catalog_images,
                                                   dv_json_get_string(b, "image_id", ""), NULL);
        g_autoptr(JsonObject) master = NULL;
        g_autoptr(JsonObject) src = NULL;

        if (image != NULL)
            master = dv_store_get(dv_core(engine)->store, &dv_table_vms,
                                  dv_json_get_string(image, "master_vm_id", ""), NULL);
        if (master != NULL)
            src = dv_catalog_ready_base_on(engine, dv_json_get_string(b, "image_id", ""),
                                           dv_json_get_string(master, "host_id", ""), NULL);
        parallel = src != NULL;
    }
    while (i < order->len) {
        DvConsolidateTask tasks[DV_CATALOG_BASE_PARALLEL] = { 0 };
        GThread *threads[DV_CATALOG_BASE_PARALLEL] = { NULL };
        guint k, batch = parallel ? MIN(DV_CATALOG_BASE_PARALLEL, order->len - i) : 1;

        if (dv_job_is_cancelled(job)) {
            for (; i < order->len; i++)
                errors->pdata[i] = g_error_new_literal(DV_ERROR, DV_ERROR_CANCELLED, "cancelled");
            break;
        }
        for (k = 0; k < batch; k++) {
            tasks[k] = (DvConsolidateTask){ engine, job, catalog, g_ptr_array_index(order, i + k), NULL };
            if (batch == 1)
                dv_catalog_consolidate_thread(&tasks[k]);
            else
                threads[k] = g_thread_new("dv-catalog-base", dv_catalog_consolidate_thread, &tasks[k]);
        }
        for (k = 0; k < batch; k++) {
            if (threads[k] != NULL)
                g_thread_join(threads[k]);
            errors->pdata[i + k] = tasks[k].error;
        }
        i += batch;
        if (ret_at_once != NULL)
            *ret_at_once = MAX(*ret_at_once, batch);
        dv_job_step_progress(job, (double)i / order->len);
    }
    return errors;
}

/* --- identity pools -------------------------------------------------------------- */

char *
dv_catalog_identity_pool_name(const char *catalog, gint64 name_index)
{
    gint64 shard = name_index > 0 ? (name_index - 1) / DV_CATALOG_IDENTITY_POOL_SIZE : 0;
    return g_strdup_printf("%s-" DV_CATALOG_IDENTITY_POOL_INFIX "%" G_GINT64_FORMAT, catalog, shard);
}

gboolean
dv_catalog_is_identity_pool(const char *catalog, const char *name)
{
    gsize len = strlen(catalog);
    const char *p;

    if (strncmp(name, catalog, len) != 0 || name[len] != '-' ||
        !g_str_has_prefix(name + len + 1, DV_CATALOG_IDENTITY_POOL_INFIX))
        return FALSE;
    p = name + len + 1 + strlen(DV_CATALOG_IDENTITY_POOL_INFIX);
    if (*p == '\0')
        return FALSE;
    for (; *p != '\0'; p++)
        if (!g_ascii_isdigit(*p))
            return FALSE;
    return TRUE;
}

/* --- the machines step, in parallel ---------------------------------------------- *
 *
 * One runner thread per host; each runs its machines in a thread pool as
 * wide as the host's max_concurrent_operations (the virt layer spreads
 * them over several connections: libvirtd serves 5 calls per connection).
 * Workers touch no database: each machine's outcome goes into a queue,
 * and the job thread writes the queue in batched transactions and moves
 * the progress.  A machine not yet recorded when droverd dies is redone
 * on the next run: every step finds what an earlier attempt made (a
 * volume of its name, the domain by its fixed UUID, the VM row by the
 * machine's id). */

typedef struct {
    DvSecret *admin;
    DvSecret *join;
    DvSecret *key;
    GPtrArray *keys; /* borrowed strings, NULL-terminated when not empty */
    JsonObject *profile;
} DvProvisionProfile;

typedef struct _DvProvision DvProvision;

typedef struct {
    DvProvision *pv;
    JsonObject *host;       /* row, owned */
    DvVirtHost *vh;         /* owned */
    JsonObject *pool_row;   /* the catalog's pool on this host, owned; NULL: gone */
    JsonObject *base;       /* a deep copy, or NULL */
    GPtrArray *machines;    /* borrowed rows, not ready (and repairs, once planned) */
    GPtrArray *ready;       /* borrowed rows, ready: their identity disks are checked */
    char *spec_template;    /* domain spec common to the host's machines (JSON text) */
    GHashTable *id_pools;   /* shard pool name -> error text or "" when ready */
    char *personal_pool;    /* the catalog's personal disk pool when another, or NULL */
    char *personal_path;    /* its directory, once prepared */
    char *personal_err;     /* why it could not be prepared, or NULL */
    gboolean personal_dir;  /* that pool is a dir pool */
    guint width;
    GMutex lock;
    char *dead;             /* the host stopped answering: the rest fail fast */
} DvProvisionHost;

/* Shared by the job thread and the runners and workers, which may outlive
 * the job when a libvirt call never returns (see the stall watchdog):
 * reference-counted, and holding its own copies of what they read. */
struct _DvProvision {
    gint refs;
    GCancellable *c;        /* a reference */
    JsonObject *catalog;    /* a deep copy */
    JsonArray *rows;        /* deep copies of the machine rows being made */
    DvProvisionProfile profile;
    GAsyncQueue *results;   /* DvProvisionResult* */
    gint abort;             /* atomic: the job thread cannot record any more */
    JsonArray *ready_rows;  /* deep copies of the ready rows whose disks are checked */
    gint planning;          /* atomic: runners still deciding which ready machines to repair */
    gint repairs;           /* atomic: ready machines handed to the workers to repair */
};

/* Time spent in each step, summed over the workers (microseconds). */
enum { DV_STEP_OVERLAY, DV_STEP_IDENTITY, DV_STEP_PERSONAL, DV_STEP_DEFINE, DV_STEP_N };
static const char *const dv_step_names[DV_STEP_N] = { "overlay", "identity", "personal", "define" };

typedef struct {
    JsonObject *m;          /* borrowed */
    JsonObject *changes;    /* owned; NULL: skipped (cancelled) */
    JsonObject *vm;         /* owned VM row to write, or NULL */
    char *error;            /* owned "name: reason" when failed */
    gint64 step_us[DV_STEP_N];
    gboolean keep_row;      /* record only: a worker may still read the row */
} DvProvisionResult;

static void
dv_provision_result_free(DvProvisionResult *r)
{
    if (r == NULL)
        return;
    g_clear_pointer(&r->changes, json_object_unref);
    g_clear_pointer(&r->vm, json_object_unref);
    g_free(r->error);
    g_free(r);
}

static void
dv_provision_profile_clear(DvProvisionProfile *p)
{
    g_clear_pointer(&p->admin, dv_secret_free);
    g_clear_pointer(&p->join, dv_secret_free);
    g_clear_pointer(&p->key, dv_secret_free);
    g_clear_pointer(&p->keys, g_ptr_array_unref);
    g_clear_pointer(&p->profile, json_object_unref);
}

/* The "worker" test pause happened (once per process). */
static gint dv_provision_stuck_once;

static void
dv_provision_unref(DvProvision *pv)
{
    if (pv == NULL || !g_atomic_int_dec_and_test(&pv->refs))
        return;
    dv_provision_profile_clear(&pv->profile);
    g_async_queue_unref(pv->results);
    json_object_unref(pv->catalog);
    json_array_unref(pv->rows);
    json_array_unref(pv->ready_rows);
    g_object_unref(pv->c);
    g_free(pv);
}

/* The guest OS profile and its secrets, opened in guarded memory for the
 * machines step only and shared read-only by the workers. */
static gboolean
dv_provision_profile_load(DvEngine *engine, JsonObject *catalog, DvProvisionProfile *p, GError **error)
{
    const char *profile_id = dv_json_get_string(catalog, "guest_os_profile_id", NULL);
    static const char *const fields[] = { "admin_password", "domain_join_password", "product_key" };
    DvSecret **slots[] = { &p->admin, &p->join, &p->key };
    const char *run_as;
    JsonArray *ssh;

    p->keys = g_ptr_array_new();
    if (profile_id == NULL)
        return TRUE;
    p->profile =
        dv_store_get(dv_core(engine)->store, &dv_table_guest_os_profiles, profile_id, error);
    if (p->profile == NULL) {
        g_prefix_error(error, "guest OS profile: ");
        return FALSE;
    }
    for (gsize i = 0; i < G_N_ELEMENTS(fields); i++) {
        g_autoptr(GError) local = NULL;
        *slots[i] = dv_keyring_load_secret(dv_core(engine)->keyring, dv_core(engine)->store,
                                           "guest-os-profile", profile_id, fields[i], &local);
        if (*slots[i] == NULL && !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
    }
    run_as = dv_json_get_string(p->profile, "domain_join_run_as_id", NULL);
    if (run_as != NULL) {
        /* The domain join comes from the profile's Run As account, opened
         * like a host's: its user and password, never an inline pair. */
        g_autofree char *user = NULL;
        g_autoptr(JsonObject) acct =
            dv_store_get(dv_core(engine)->store, &dv_table_run_as_accounts, run_as, error);
        if (acct == NULL) {
            g_prefix_error(error,
                           "guest OS profile '%s': ", dv_json_get_string(p->profile, "name", ""));
            return FALSE;
        }
        /* An account changed to an SSH key since: its key is no password. */
        if (g_strcmp0(dv_json_get_string(acct, "credential_kind", ""), "password") != 0) {
            g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT,
                        "guest OS profile '%s': Run As account '%s' holds an SSH key; a domain "
                        "join needs a password",
                        dv_json_get_string(p->profile, "name", ""),
                        dv_json_get_string(acct, "name", ""));
            return FALSE;
        }
        g_clear_pointer(&p->join, dv_secret_free);
        p->join = dv_core_run_as_credentials(engine, run_as, &user, error);
        if (p->join == NULL) {
            g_prefix_error(error,
                           "guest OS profile '%s': ", dv_json_get_string(p->profile, "name", ""));
            return FALSE;
        }
        json_object_set_string_member(p->profile, "domain_join_user", user);
    }
    ssh = dv_json_get_array(p->profile, "ssh_authorized_keys");
    for (guint i = 0; ssh != NULL && i < json_array_get_length(ssh); i++)
        g_ptr_array_add(p->keys, (gpointer)json_array_get_string_element(ssh, i));
    if (p->keys->len > 0)
        g_ptr_array_add(p->keys, NULL);
    return TRUE;
}

/* The identity of machine @m from the loaded profile @p: pointers
 * borrowed from both. */
static void
dv_provision_identity_spec(DvProvisionProfile *p, JsonObject *m, DvIdentitySpec *spec)
{
    memset(spec, 0, sizeof(*spec));
    spec->instance_id = dv_json_get_string(m, "id", "");
    spec->hostname = dv_json_get_string(m, "name", "");
    if (p->profile != NULL) {
        spec->admin_username = dv_json_get_string(p->profile, "admin_username", NULL);
        spec->time_zone = dv_json_get_string(p->profile, "time_zone", NULL);
        spec->domain = dv_json_get_string(p->profile, "domain", NULL);
        spec->domain_join_user = dv_json_get_string(p->profile, "domain_join_user", NULL);
        spec->extra_user_data = dv_json_get_string(p->profile, "user_data", NULL);
        spec->admin_password = p->admin;
        spec->domain_join_password = p->join;
        spec->product_key = p->key;
        if (p->keys->len > 0)
            spec->ssh_authorized_keys = (const char *const *)p->keys->pdata;
    }
}

JsonObject *
dv_engine_catalog_identity_preview(DvEngine *engine, const char *ref, const char *hostname,
                                   GError **error)
{
    g_autoptr(JsonObject) catalog = dv_core_resolve(engine, DV_KIND_CATALOG, ref, NULL, error);
    g_autoptr(JsonObject) m = json_object_new();
    g_autoptr(DvSecret) iso = NULL;
    g_autofree char *id = g_uuid_string_random();
    DvProvisionProfile p = { 0 };
    DvIdentitySpec spec;
    JsonObject *out;

    if (catalog == NULL)
        return NULL;
    if (!dv_provision_profile_load(engine, catalog, &p, error)) {
        dv_provision_profile_clear(&p);
        return NULL;
    }
    json_object_set_string_member(m, "id", id);
    json_object_set_string_member(m, "name", hostname);
    dv_provision_identity_spec(&p, m, &spec);
    iso = dv_identity_build_iso(&spec, error);
    dv_provision_profile_clear(&p);
    if (iso == NULL)
        return NULL;
    out = dv_identity_read_iso(dv_secret_get_data(iso), dv_secret_get_len(iso), error);
    return out;
}

/* Builds and uploads the identity disk of @m into its identity pool. */
static gboolean
dv_provision_identity(DvProvision *pv, DvVirtHost *vh, JsonObject *m, const char *pool, const char *vname,
                      GError **error)
{
    DvProvisionProfile *p = &pv->profile;
    g_autoptr(DvSecret) iso = NULL;
    DvIdentitySpec spec;

    dv_provision_identity_spec(p, m, &spec);
    iso = dv_identity_build_iso(&spec, error);
    if (iso == NULL)
        return FALSE;
    return dv_virt_volume_upload(vh, pool, vname, dv_secret_get_data(iso), dv_secret_get_len(iso), pv->c, error);
}

/* Creates a volume, or finds the one an earlier attempt made (a create of
 * an existing name is a conflict: then it is looked up, one round trip
 * less than looking first for the common case).  In a dir pool
 * (@dir_pool) the new volume's path is @pool_path/@name, not asked for. */
static JsonObject *
dv_provision_ensure_volume(DvVirtHost *vh, const char *pool, const char *pool_path,
                           gboolean dir_pool, const char *name, const char *backing,
                           const char *format, guint64 capacity, GCancellable *c, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autofree char *path = g_build_filename(pool_path, name, NULL);
    JsonObject *vol;

    vol = dv_virt_volume_create_lean(vh, pool, name, capacity, format, backing,
                                     backing != NULL ? "qcow2" : NULL, dir_pool ? pool_path : NULL,
                                     c, &local);
    if (vol != NULL)
        return vol;
    if (!g_error_matches(local, DV_ERROR, DV_ERROR_CONFLICT)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    return dv_virt_volume_lookup_by_path(vh, path, c, error);
}

/* A disk for the domain XML (@inventory FALSE) or as the inventory
 * records it (dv-virt-probe.c). */
static JsonObject *
dv_provision_disk(const char *path, const char *format, const char *target, gboolean readonly, gboolean inventory)
{
    JsonObject *d = json_object_new();
    json_object_set_string_member(d, inventory ? "source" : "path", path);
    json_object_set_string_member(d, "format", format);
    json_object_set_string_member(d, "bus", "virtio");
    json_object_set_boolean_member(d, "readonly", readonly);
    if (inventory) {
        json_object_set_string_member(d, "device", "disk");
        json_object_set_string_member(d, "target", target);
        json_object_set_boolean_member(d, "shareable", FALSE);
    }
    return d;
}

/* The steps of one machine; what is made goes into @ch as it is made, so
 * a failure records the steps done before it. */
static gboolean
dv_provision_machine_steps(DvProvisionHost *ph, JsonObject *m, JsonObject *ch, JsonObject **ret_vm,
                           gint64 *step_us, GError **error)
{
    DvProvision *pv = ph->pv;
    GCancellable *c = pv->c;
    const char *cname = dv_json_get_string(pv->catalog, "name", "");
    const char *mname = dv_json_get_string(m, "name", "");
    const char *pool = dv_json_get_string(pv->catalog, "pool_name", "");
    gint64 personal = dv_json_get_int(pv->catalog, "personal_disk_mib", 0);
    g_autofree char *disk_name = dv_catalog_volume_name(cname, mname, DV_CATALOG_VOLUME_DISK);
    g_autofree char *id_name = dv_catalog_volume_name(cname, mname, DV_CATALOG_VOLUME_IDENTITY);
    g_autofree char *pers_name = dv_catalog_volume_name(cname, mname, DV_CATALOG_VOLUME_PERSONAL);
    g_autofree char *id_pool = dv_catalog_identity_pool_name(cname, dv_json_get_int(m, "name_index", 0));
    const char *pool_path;
    gboolean dir_pool;
    const char *overlay = dv_json_get_string(m, "overlay_path", NULL);
    const char *identity = dv_json_get_string(m, "identity_path", NULL);
    const char *pers = dv_json_get_string(m, "personal_path", NULL);
    g_autoptr(JsonObject) spec = NULL;
    g_autoptr(JsonArray) disks = json_array_new();
    g_autoptr(JsonArray) inv_disks = json_array_new();
    g_autofree char *xml = NULL;
    g_autofree char *uuid = NULL;
    JsonObject *vm;
    gint64 now, t;
    /* A ready machine handed back by its runner: its identity disk is
     * gone from the host (docs/CATALOGS.md "Identity pools that
     * vanish"); only that disk is made again, under the same name. */
    gboolean repair = g_strcmp0(dv_json_get_string(m, "state", NULL), "ready") == 0;
    gboolean pooled = dv_catalog_is_pooled(pv->catalog);

    if (repair) {
        g_autofree char *dir = NULL;
        g_autofree char *path = NULL;
        const char *pool_err = g_hash_table_lookup(ph->id_pools, id_pool);
        /* Recorded as gone first: a failed repair leaves the next run a
         * machine whose identity step is still to do. */
        json_object_set_null_member(ch, "identity_path");
        if (ph->pool_row == NULL || pool_err == NULL || pool_err[0] != '\0') {
            g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED, "identity: pool %s: %s", id_pool,
                        ph->pool_row == NULL ? "the catalog's pool is gone" : pool_err != NULL ? pool_err : "not made");
            return FALSE;
        }
        dir = g_build_filename(dv_json_get_string(ph->pool_row, "path", "/"), id_pool, NULL);
        path = g_build_filename(dir, id_name, NULL);
        t = g_get_monotonic_time();
        if (!dv_provision_identity(pv, ph->vh, m, id_pool, id_name, error)) {
            g_prefix_error(error, "identity: ");
            return FALSE;
        }
        step_us[DV_STEP_IDENTITY] = g_get_monotonic_time() - t;
        json_object_set_string_member(ch, "identity_path", path);
        json_object_set_string_member(ch, "state", "ready");
        json_object_set_null_member(ch, "error");
        return TRUE;
    }
    if (ph->base == NULL || g_strcmp0(dv_json_get_string(ph->base, "state", ""), "ready") != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED, "base image: %s",
                    ph->base != NULL ? dv_json_get_string(ph->base, "error", "not made") : "none for this host");
        return FALSE;
    }
    if (ph->pool_row == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "storage pool %s is gone", pool);
        return FALSE;
    }
    pool_path = dv_json_get_string(ph->pool_row, "path", "/");
    dir_pool = g_strcmp0(dv_json_get_string(ph->pool_row, "type", ""), "dir") == 0;

    /* overlay: none for a pooled machine, whose system disk is the base
     * itself, transient (QEMU makes the overlay at start and drops it at
     * stop); the base it is defined on is recorded all the same */
    t = g_get_monotonic_time();
    if (pooled && overlay != NULL) {
        /* Begun by a version that gave pooled machines overlays. */
        g_autoptr(GError) local = NULL;
        if (!dv_virt_volume_delete(ph->vh, pool, disk_name, c, &local) &&
            !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_propagate_prefixed_error(error, g_steal_pointer(&local), "overlay: ");
            return FALSE;
        }
        json_object_set_null_member(ch, "overlay_path");
        overlay = NULL;
    }
    if (pooled) {
        if (dv_json_get_string(m, "base_id", NULL) == NULL)
            json_object_set_string_member(ch, "step", "overlay");
        json_object_set_string_member(ch, "base_id", dv_json_get_string(ph->base, "id", ""));
    } else if (!pooled && overlay == NULL) {
        g_autoptr(JsonObject) vol = dv_provision_ensure_volume(
            ph->vh, pool, pool_path, dir_pool, disk_name, dv_json_get_string(ph->base, "path", ""),
            "qcow2", 0, c, error);
        if (vol == NULL) {
            g_prefix_error(error, "overlay: ");
            return FALSE;
        }
        json_object_set_string_member(ch, "overlay_path", dv_json_get_string(vol, "path", ""));
        json_object_set_string_member(ch, "base_id", dv_json_get_string(ph->base, "id", ""));
        json_object_set_string_member(ch, "step", "overlay");
        overlay = json_object_get_string_member(ch, "overlay_path");
    }
    step_us[DV_STEP_OVERLAY] = g_get_monotonic_time() - t;
    /* identity: uploaded whole each time it is not recorded (an upload
     * converges on retry) into the machine's identity pool */
    t = g_get_monotonic_time();
    if (identity == NULL) {
        const char *pool_err = g_hash_table_lookup(ph->id_pools, id_pool);
        g_autofree char *dir = g_build_filename(pool_path, id_pool, NULL);
        g_autofree char *path = g_build_filename(dir, id_name, NULL);
        if (pool_err == NULL || pool_err[0] != '\0') {
            g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED, "identity: pool %s: %s", id_pool,
                        pool_err != NULL ? pool_err : "not made");
            return FALSE;
        }
        if (!dv_provision_identity(pv, ph->vh, m, id_pool, id_name, error)) {
            g_prefix_error(error, "identity: ");
            return FALSE;
        }
        json_object_set_string_member(ch, "identity_path", path);
        json_object_set_string_member(ch, "step", "identity");
        identity = json_object_get_string_member(ch, "identity_path");
    }
    step_us[DV_STEP_IDENTITY] = g_get_monotonic_time() - t;
    /* personal: raw and sparse (no qemu-img run; the guest sees a blank
     * disk either way) */
    t = g_get_monotonic_time();
    if (personal > 0 && pers == NULL) {
        g_autoptr(JsonObject) vol = NULL;
        if (ph->personal_err != NULL) {
            g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED, "personal: %s", ph->personal_err);
            return FALSE;
        }
        vol =
            dv_provision_ensure_volume(ph->vh, ph->personal_pool != NULL ? ph->personal_pool : pool,
                                       ph->personal_path != NULL ? ph->personal_path : pool_path,
                                       ph->personal_pool != NULL ? ph->personal_dir : dir_pool,
                                       pers_name, NULL, "raw", (guint64)personal << 20, c, error);
        if (vol == NULL) {
            g_prefix_error(error, "personal: ");
            return FALSE;
        }
        json_object_set_string_member(ch, "personal_path", dv_json_get_string(vol, "path", ""));
        json_object_set_string_member(ch, "step", "personal");
        pers = json_object_get_string_member(ch, "personal_path");
    }
    step_us[DV_STEP_PERSONAL] = g_get_monotonic_time() - t;
    /* define: the same UUID on every attempt, so a redefine replaces */
    t = g_get_monotonic_time();
    spec = dv_json_object_from_text(ph->spec_template, error);
    if (spec == NULL)
        return FALSE;
    /* The identity disk is a read-only virtio disk, not a CD-ROM: guests
     * may have virtio drivers only (docs/TINY-GUEST.md).  A machine made
     * before personal disks were raw keeps its qcow2 one. */
    for (guint k = 0; k < 2; k++) {
        JsonArray *to = k == 0 ? disks : inv_disks;
        JsonObject *sys =
            dv_provision_disk(pooled ? dv_json_get_string(ph->base, "path", "") : overlay, "qcow2",
                              "vda", FALSE, k == 1);
        if (pooled && k == 0)
            json_object_set_boolean_member(sys, "transient", TRUE);
        json_array_add_object_element(to, sys);
        json_array_add_object_element(to, dv_provision_disk(identity, "raw", "vdb", TRUE, k == 1));
        if (pers != NULL)
            json_array_add_object_element(
                to, dv_provision_disk(pers, g_str_has_suffix(pers, ".qcow2") ? "qcow2" : "raw", "vdc", FALSE, k == 1));
    }
    json_object_set_string_member(spec, "name", mname);
    json_object_set_string_member(spec, "uuid", dv_json_get_string(m, "domain_uuid", ""));
    if (g_strcmp0(dv_json_get_string(ph->pool_row, "type", ""), "dir") == 0) {
        g_autofree char *log = g_strdup_printf("%s/%s-%s-" DV_CATALOG_VOLUME_CONSOLE, pool_path, cname, mname);
        json_object_set_string_member(spec, "serial_log", log);
    }
    json_object_set_array_member(spec, "disks", json_array_ref(disks));
    xml = dv_virt_domain_xml_new(spec, error);
    if (xml == NULL) {
        g_prefix_error(error, "define: ");
        return FALSE;
    }
    uuid = dv_virt_domain_define(ph->vh, xml, c, error);
    if (uuid == NULL) {
        g_prefix_error(error, "define: ");
        return FALSE;
    }
    step_us[DV_STEP_DEFINE] = g_get_monotonic_time() - t;
    /* The VM row's id is the machine's id, so a resume finds it. */
    now = dv_store_now();
    vm = json_object_new();
    json_object_set_string_member(vm, "id", dv_json_get_string(m, "id", ""));
    json_object_set_string_member(vm, "name", mname);
    json_object_set_string_member(vm, "host_id", dv_json_get_string(m, "host_id", ""));
    json_object_set_string_member(vm, "uuid", uuid);
    json_object_set_string_member(vm, "state", "shutoff");
    json_object_set_string_member(vm, "origin", "catalog");
    /* The machine's owner owns its VM (vm.* of own objects); its quota
     * stays with the machine row. */
    if (dv_json_get_string(m, "owner_id", NULL) != NULL)
        json_object_set_string_member(vm, "owner_id", dv_json_get_string(m, "owner_id", NULL));
    json_object_set_int_member(vm, "vcpus", dv_json_get_int(spec, "vcpus", 1));
    json_object_set_int_member(vm, "memory_mib", dv_json_get_int(spec, "memory_mib", 0));
    json_object_set_int_member(vm, "generation", dv_json_get_int(spec, "generation", 1));
    json_object_set_boolean_member(vm, "secure_boot", FALSE);
    json_object_set_string_member(vm, "description", dv_json_get_string(spec, "description", NULL));
    {
        JsonObject *vspec = json_object_new();
        json_object_set_array_member(vspec, "disks", json_array_ref(inv_disks));
        if (dv_json_get_array(spec, "networks") != NULL)
            json_object_set_array_member(vspec, "networks", json_array_ref(dv_json_get_array(spec, "networks")));
        else
            json_object_set_array_member(vspec, "networks", json_array_new());
        json_object_set_object_member(vm, "spec", vspec);
    }
    json_object_set_int_member(vm, "created_at", now);
    json_object_set_int_member(vm, "updated_at", now);
    *ret_vm = vm;
    json_object_set_string_member(ch, "vm_id", dv_json_get_string(m, "id", ""));
    json_object_set_string_member(ch, "step", "define");
    json_object_set_string_member(ch, "state", "ready");
    json_object_set_null_member(ch, "error");
    return TRUE;
}

/* GThreadPool worker: one machine. */
static void
dv_provision_machine(gpointer data, gpointer user_data)
{
    JsonObject *m = data;
    DvProvisionHost *ph = user_data;
    DvProvision *pv = ph->pv;
    DvProvisionResult *r = g_new0(DvProvisionResult, 1);
    g_autoptr(GError) local = NULL;
    g_autofree char *dead = NULL;

    r->m = m;
    /* Test hook: one worker (once per process) hangs as a libvirt call
     * that never returns would (the stall watchdog test). */
    if (dv_core_debug_enabled() && g_strcmp0(g_getenv("DV_DEBUG_CATALOG_PAUSE"), "worker") == 0 &&
        g_atomic_int_compare_and_exchange(&dv_provision_stuck_once, 0, 1)) {
        g_printerr("catalog.provision: paused at worker\n");
        g_usleep(60 * G_USEC_PER_SEC);
    }
    if (g_cancellable_is_cancelled(pv->c) || g_atomic_int_get(&pv->abort)) {
        g_async_queue_push(pv->results, r);
        return;
    }
    r->changes = json_object_new();
    g_mutex_lock(&ph->lock);
    dead = g_strdup(ph->dead);
    g_mutex_unlock(&ph->lock);
    if (dead != NULL)
        g_set_error_literal(&local, DV_ERROR, DV_ERROR_UNAVAILABLE, dead);
    else if (dv_provision_machine_steps(ph, m, r->changes, &r->vm, r->step_us, &local))
        g_clear_error(&local);
    /* A lost connection is not yet a lost host: when the host still
     * answers (on a new connection), the machine's steps run once more
     * (each finds what was made). */
    if (local != NULL && g_error_matches(local, DV_ERROR, DV_ERROR_UNAVAILABLE) && dead == NULL) {
        g_autoptr(GError) ping = NULL;
        if (dv_virt_host_ping(ph->vh, pv->c, &ping)) {
            JsonObjectIter it;
            const char *k;
            JsonNode *n;
            g_clear_error(&local);
            /* What the first attempt made is in r->changes: hand it in. */
            g_clear_pointer(&r->vm, json_object_unref);
            {
                g_autoptr(JsonObject) view = json_object_new();
                json_object_iter_init(&it, m);
                while (json_object_iter_next(&it, &k, &n))
                    json_object_set_member(view, k, json_node_copy(n));
                json_object_iter_init(&it, r->changes);
                while (json_object_iter_next(&it, &k, &n))
                    json_object_set_member(view, k, json_node_copy(n));
                if (dv_provision_machine_steps(ph, view, r->changes, &r->vm, r->step_us, &local))
                    g_clear_error(&local);
            }
        }
    }
    if (local != NULL) {
        if (g_error_matches(local, DV_ERROR, DV_ERROR_CANCELLED)) {
            /* Not a failure of the machine: it stays pending (what it
             * made so far is recorded). */
            json_object_set_null_member(r->changes, "error");
        } else {
            json_object_set_string_member(r->changes, "state", "failed");
            json_object_set_string_member(r->changes, "error", local->message);
            r->error = g_strdup_printf("%s: %s", dv_json_get_string(m, "name", ""), local->message);
        }
        /* A host that stopped answering fails the rest at once instead
         * of one connect timeout per machine. */
        if (g_error_matches(local, DV_ERROR, DV_ERROR_UNAVAILABLE)) {
            g_mutex_lock(&ph->lock);
            if (ph->dead == NULL)
                ph->dead = g_strdup(local->message);
            g_mutex_unlock(&ph->lock);
        }
    }
    g_async_queue_push(pv->results, r);
}

static void dv_provision_host_free(DvProvisionHost *ph);

/* Makes sure identity pool @name of the host is there and running (its
 * directory rebuilt when it was removed on the host); records the outcome
 * in ph->id_pools.  Runner thread only, before any worker runs. */
static void
dv_provision_host_id_pool(DvProvisionHost *ph, const char *name)
{
    g_autofree char *dir = NULL;
    g_autoptr(GError) perr = NULL;

    if (g_hash_table_contains(ph->id_pools, name))
        return;
    dir = g_build_filename(dv_json_get_string(ph->pool_row, "path", "/"), name, NULL);
    if (dv_virt_pool_ensure_dir(ph->vh, name, dir, ph->pv->c, &perr)) {
        g_hash_table_insert(ph->id_pools, g_strdup(name), g_strdup(""));
        return;
    }
    if (g_error_matches(perr, DV_ERROR, DV_ERROR_UNAVAILABLE))
        ph->dead = g_strdup(perr->message); /* no worker runs yet */
    g_hash_table_insert(ph->id_pools, g_strdup(name), g_strdup(perr->message));
}

/* Is the recorded identity disk of @m missing from its pool?  FALSE when
 * the pool cannot be read (left for the next run; reconcile names it).
 * @listed caches each pool's volume names. */
static gboolean
dv_provision_identity_gone(DvProvisionHost *ph, GHashTable *listed, JsonObject *m)
{
    DvProvision *pv = ph->pv;
    const char *cname = dv_json_get_string(pv->catalog, "name", "");
    const char *path = dv_json_get_string(m, "identity_path", NULL);
    g_autofree char *pool = dv_catalog_identity_pool_name(cname, dv_json_get_int(m, "name_index", 0));
    g_autofree char *vname = NULL;
    const char *ready = g_hash_table_lookup(ph->id_pools, pool);

    if (path == NULL || ready == NULL || ready[0] != '\0')
        return FALSE;
    if (!g_hash_table_contains(listed, pool)) {
        g_autofree char *vprefix = g_strdup_printf("%s-", cname);
        g_autoptr(GError) lerr = NULL;
        g_autoptr(JsonArray) vols = dv_virt_pool_list_volumes(ph->vh, pool, vprefix, pv->c, &lerr);
        GHashTable *set;
        if (vols == NULL) {
            g_debug("identity pool %s: %s; its disks are checked on the next run", pool, lerr->message);
            return FALSE;
        }
        set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        for (guint k = 0; k < json_array_get_length(vols); k++)
            g_hash_table_add(set, g_strdup(dv_json_get_string(json_array_get_object_element(vols, k), "name", "")));
        g_hash_table_insert(listed, g_strdup(pool), set);
    }
    vname = g_path_get_basename(path);
    return !g_hash_table_contains(g_hash_table_lookup(listed, pool), vname);
}

/* Identity disks are made when absent, recorded or not (the directory of
 * their pool removed on the host, a file deleted): a machine being made
 * makes its disk again; a ready machine is handed to the workers, which
 * make only that disk. */
static void
dv_provision_host_plan_repairs(DvProvisionHost *ph)
{
    /* pool name -> set of the volume names in it */
    g_autoptr(GHashTable) listed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                         (GDestroyNotify)g_hash_table_unref);
    guint n = 0;

    for (guint i = 0; ph->dead == NULL && i < ph->machines->len; i++) {
        JsonObject *m = g_ptr_array_index(ph->machines, i);
        if (dv_provision_identity_gone(ph, listed, m))
            json_object_set_null_member(m, "identity_path");
    }
    for (guint i = 0; ph->dead == NULL && i < ph->ready->len; i++) {
        JsonObject *m = g_ptr_array_index(ph->ready, i);
        if (!dv_provision_identity_gone(ph, listed, m))
            continue;
        g_ptr_array_add(ph->machines, m);
        n++;
    }
    /* Counted before the runner says it is done planning: the job thread
     * waits for these outcomes too. */
    g_atomic_int_add(&ph->pv->repairs, (gint)n);
}

/* Runner of one host: its identity pools, then its machines. */
/* The catalog's personal disk pool, when it is another than its OS disks'
 * pool: checked, built (a dir pool whose directory is missing) and started
 * before the first personal disk of this host is made, with room for the
 * personal disks still to make here (seed 004).  Runner thread only,
 * before any worker runs; a failure fails those machines' personal step
 * with its reason. */
static void
dv_provision_host_personal_pool(DvProvisionHost *ph)
{
    DvProvision *pv = ph->pv;
    const char *ppool = dv_json_get_string(pv->catalog, "personal_disk_pool", NULL);
    gint64 personal = dv_json_get_int(pv->catalog, "personal_disk_mib", 0);
    guint64 needed = 0;
    g_autoptr(JsonObject) info = NULL;
    g_autoptr(GError) local = NULL;

    if (personal <= 0 || ppool == NULL || ppool[0] == '\0' || ph->dead != NULL ||
        g_strcmp0(ppool, dv_json_get_string(pv->catalog, "pool_name", "")) == 0)
        return;
    ph->personal_pool = g_strdup(ppool);
    for (guint i = 0; i < ph->machines->len; i++)
        if (dv_json_get_string(g_ptr_array_index(ph->machines, i), "personal_path", NULL) == NULL)
            needed += (guint64)personal << 20;
    if (needed == 0)
        return;
    info = dv_virt_pool_prepare(ph->vh, ppool, needed, pv->c, &local);
    if (info == NULL) {
        ph->personal_err =
            g_strdup_printf("personal disk pool %s on host %s: %s", ppool,
                            dv_json_get_string(ph->host, "name", ""), local->message);
        return;
    }
    if (dv_json_get_bool(info, "built", FALSE) || dv_json_get_bool(info, "started", FALSE))
        g_info("catalog %s: personal disk pool %s on host %s %s",
               dv_json_get_string(pv->catalog, "name", ""), ppool,
               dv_json_get_string(ph->host, "name", ""),
               dv_json_get_bool(info, "built", FALSE) ? "built and started" : "started");
    ph->personal_path = g_strdup(dv_json_get_string(info, "path", "/"));
    ph->personal_dir = g_strcmp0(dv_json_get_string(info, "type", ""), "dir") == 0;
}

static gpointer
dv_provision_host_run(gpointer data)
{
    DvProvisionHost *ph = data;
    DvProvision *pv = ph->pv;
    const char *cname = dv_json_get_string(pv->catalog, "name", "");
    g_autoptr(GError) local = NULL;
    GThreadPool *tp;

    dv_provision_host_personal_pool(ph);
    /* The identity pools the host's machines need (ready ones too: a
     * pool whose directory was removed is rebuilt), in the catalog
     * pool's directory; made before the machines so no worker waits. */
    for (guint l = 0; l < 2; l++) {
        GPtrArray *list = l == 0 ? ph->machines : ph->ready;
        for (guint i = 0; ph->pool_row != NULL && ph->dead == NULL && i < list->len; i++) {
            JsonObject *m = g_ptr_array_index(list, i);
            g_autofree char *name = NULL;

            name = dv_catalog_identity_pool_name(cname, dv_json_get_int(m, "name_index", 0));
            dv_provision_host_id_pool(ph, name);
        }
    }
    if (ph->pool_row != NULL)
        dv_provision_host_plan_repairs(ph);
    g_atomic_int_dec_and_test(&pv->planning);
    tp = g_thread_pool_new(dv_provision_machine, ph, (gint)ph->width, TRUE, &local);
    if (tp == NULL) {
        /* Cannot start threads: run them here, one after another. */
        for (guint i = 0; i < ph->machines->len; i++)
            dv_provision_machine(g_ptr_array_index(ph->machines, i), ph);
    } else {
        for (guint i = 0; i < ph->machines->len; i++)
            g_thread_pool_push(tp, g_ptr_array_index(ph->machines, i), NULL);
        g_thread_pool_free(tp, FALSE, TRUE);
    }
    /* The runner owns its host's state (the job may have stopped waiting). */
    dv_provision_host_free(ph);
    return NULL;
}

static void
dv_provision_host_free(DvProvisionHost *ph)
{
    g_free(ph->personal_pool);
    g_free(ph->personal_path);
    g_free(ph->personal_err);
    if (ph == NULL)
        return;
    g_clear_pointer(&ph->base, json_object_unref);
    g_clear_pointer(&ph->host, json_object_unref);
    g_clear_pointer(&ph->vh, dv_virt_host_unref);
    g_clear_pointer(&ph->pool_row, json_object_unref);
    g_clear_pointer(&ph->machines, g_ptr_array_unref);
    g_clear_pointer(&ph->ready, g_ptr_array_unref);
    g_clear_pointer(&ph->id_pools, g_hash_table_unref);
    g_free(ph->spec_template);
    g_free(ph->dead);
    g_mutex_clear(&ph->lock);
    dv_provision_unref(ph->pv);
    g_free(ph);
}

/* The domain spec every machine of the host shares. */
static char *
dv_provision_spec_template(DvEngine *engine, JsonObject *catalog, JsonObject *host)
{
    const char *cname = dv_json_get_string(catalog, "name", "");
    JsonObject *mspec = dv_json_get_object(catalog, "machine_spec");
    g_autoptr(JsonObject) spec = json_object_new();
    g_autoptr(JsonObject) master = NULL;
    g_autofree char *desc = g_strdup_printf(DV_CATALOG_DOMAIN_DESCRIPTION, cname);
    static const char *const boot[] = { "kernel", "initrd", "cmdline" };

    master = dv_store_get(dv_core(engine)->store, &dv_table_vms,
                          dv_json_get_string(catalog, "master_vm_id", ""), NULL);
    json_object_set_string_member(spec, "domain_type", dv_core_host_domain_type(host));
    json_object_set_int_member(spec, "vcpus", dv_json_get_int(mspec, "vcpus", 1));
    json_object_set_int_member(spec, "memory_mib", dv_json_get_int(mspec, "memory_mib", 512));
    json_object_set_int_member(spec, "generation", dv_json_get_int(master, "generation", 1));
    json_object_set_boolean_member(spec, "secure_boot", FALSE);
    json_object_set_string_member(spec, "description", desc);
    for (gsize i = 0; i < G_N_ELEMENTS(boot); i++)
        if (dv_json_get_string(mspec, boot[i], NULL) != NULL)
            json_object_set_string_member(spec, boot[i], dv_json_get_string(mspec, boot[i], NULL));
    if (dv_json_get_array(mspec, "networks") != NULL)
        json_object_set_array_member(spec, "networks", json_array_ref(dv_json_get_array(mspec, "networks")));
    return dv_json_object_to_string(spec, FALSE);
}

typedef struct {
    DvEngine *engine;
    GPtrArray *batch; /* DvProvisionResult* */
} DvProvisionFlush;

static gboolean
dv_provision_flush_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvProvisionFlush *f = user_data;
    gint64 now = dv_store_now();

    for (guint i = 0; i < f->batch->len; i++) {
        DvProvisionResult *r = g_ptr_array_index(f->batch, i);
        if (r->changes == NULL || json_object_get_size(r->changes) == 0)
            continue;
        if (r->vm != NULL) {
            const char *vm_id = dv_json_get_string(r->vm, "id", "");
            g_autoptr(GError) local = NULL;
            g_autoptr(JsonObject) old = dv_store_get(store, &dv_table_vms, vm_id, &local);
            if (old == NULL && !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
                g_propagate_error(error, g_steal_pointer(&local));
                return FALSE;
            }
            if (old == NULL && !dv_store_insert(store, &dv_table_vms, r->vm, error))
                return FALSE;
            if (old != NULL) {
                g_autoptr(JsonObject) ch = json_object_ref(r->vm);
                json_object_remove_member(ch, "id");
                json_object_remove_member(ch, "created_at");
                if (!dv_store_update(store, &dv_table_vms, vm_id, ch, error))
                    return FALSE;
            }
        }
        json_object_set_int_member(r->changes, "updated_at", now);
        if (!dv_store_update(store, &dv_table_catalog_machines, dv_json_get_string(r->m, "id", ""), r->changes,
                             error))
            return FALSE;
    }
    return TRUE;
}

/* Writes @batch in one transaction, then into the rows the job holds. */
static gboolean
dv_provision_flush(DvEngine *engine, GPtrArray *batch, GError **error)
{
    DvProvisionFlush f = { engine, batch };

    if (batch->len == 0)
        return TRUE;
    if (!dv_store_transaction(dv_core(engine)->store, dv_provision_flush_txn, &f, error))
        return FALSE;
    for (guint i = 0; i < batch->len; i++) {
        DvProvisionResult *r = g_ptr_array_index(batch, i);
        JsonObjectIter it;
        const char *k;
        JsonNode *n;
        if (r->changes == NULL || r->keep_row)
            continue;
        json_object_iter_init(&it, r->changes);
        while (json_object_iter_next(&it, &k, &n))
            json_object_set_member(r->m, k, json_node_copy(n));
    }
    g_ptr_array_set_size(batch, 0);
    return TRUE;
}

#define DV_PROVISION_BATCH 256
#define DV_PROVISION_STALL_S 600

/* Seconds without any machine outcome before the job stops waiting;
 * DV_DEBUG_CATALOG_STALL_S overrides it in test runs (DV_DEBUG_JOBS=1). */
static gint64
dv_provision_stall_s(void)
{
    const char *v = g_getenv("DV_DEBUG_CATALOG_STALL_S");
    gint64 s = v != NULL && dv_core_debug_enabled() ? g_ascii_strtoll(v, NULL, 10) : 0;
    return s > 0 ? s : DV_PROVISION_STALL_S;
}
#define DV_PROVISION_FLUSH_US (200 * 1000)

/* Every runner has planned its repairs and every outcome is in.  The
 * planning count is read first: a runner adds its repairs before it says
 * it is done. */
static gboolean
dv_provision_all_in(DvProvision *pv, guint total, guint received)
{
    if (g_atomic_int_get(&pv->planning) > 0)
        return FALSE;
    return received >= total + (guint)g_atomic_int_get(&pv->repairs);
}

/* The machines step: all hosts at once.  Returns FALSE only for errors of
 * the job itself (the database, cancellation); machine failures are
 * counted. */
static gboolean
dv_provision_machines(DvEngine *engine, DvJob *job, JsonObject *catalog, JsonArray *machines,
                      GHashTable *base_by_host, JsonObject *ret_timing, guint *ret_ready, guint *ret_failed,
                      char **ret_first_error, GError **error)
{
    g_autoptr(GHashTable) by_host = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GPtrArray) hosts = g_ptr_array_new();
    g_autoptr(GPtrArray) threads = g_ptr_array_new();
    g_autoptr(GHashTable) received_ids = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GPtrArray) batch = g_ptr_array_new_with_free_func((GDestroyNotify)dv_provision_result_free);
    g_autoptr(GError) flush_error = NULL;
    DvProvision *pv = g_new0(DvProvision, 1);
    guint n = json_array_get_length(machines), total = 0, received = 0, ready = 0, failed = 0;
    gint64 last_flush = g_get_monotonic_time(), last_result = last_flush;
    gint64 stall_us = dv_provision_stall_s() * G_USEC_PER_SEC;
    gboolean cancelled = FALSE, paused = FALSE, stalled = FALSE;
    char *first_error = NULL;
    gint64 step_us[DV_STEP_N] = { 0 }, record_us = 0;

    pv->refs = 1;
    pv->c = g_object_ref(dv_job_get_cancellable(job));
    {
        g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), catalog);
        g_autoptr(JsonNode) copy = dv_json_node_deep_copy(node);
        pv->catalog = json_object_ref(json_node_get_object(copy));
    }
    pv->rows = json_array_new();
    pv->results = g_async_queue_new_full((GDestroyNotify)dv_provision_result_free);
    if (!dv_provision_profile_load(engine, catalog, &pv->profile, error)) {
        dv_provision_unref(pv);
        return FALSE;
    }
    pv->ready_rows = json_array_new();
    for (guint i = 0; i < n; i++) {
        JsonObject *m0 = json_array_get_object_element(machines, i);
        const char *host_id;
        JsonObject *m;
        DvProvisionHost *ph;
        gboolean is_ready = g_strcmp0(dv_json_get_string(m0, "state", ""), "ready") == 0;
        if (is_ready)
            ready++;
        /* The workers read their own copy of the row (the runner reads
         * the ready ones to check their identity disks). */
        {
            g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), m0);
            JsonNode *copy = dv_json_node_deep_copy(node);
            json_array_add_element(is_ready ? pv->ready_rows : pv->rows, copy);
            m = json_node_get_object(copy);
        }
        host_id = dv_json_get_string(m, "host_id", "");
        ph = g_hash_table_lookup(by_host, host_id);
        if (ph == NULL) {
            g_autoptr(GError) local = NULL;
            JsonObject *base = g_hash_table_lookup(base_by_host, host_id);
            gint64 width;
            ph = g_new0(DvProvisionHost, 1);
            g_mutex_init(&ph->lock);
            g_atomic_int_inc(&pv->refs);
            ph->pv = pv;
            ph->machines = g_ptr_array_new();
            ph->ready = g_ptr_array_new();
            ph->id_pools = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
            if (base != NULL) {
                g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), base);
                g_autoptr(JsonNode) copy = dv_json_node_deep_copy(node);
                ph->base = json_object_ref(json_node_get_object(copy));
            }
            ph->host = dv_store_get(dv_core(engine)->store, &dv_table_hosts, host_id, &local);
            if (ph->host != NULL)
                ph->vh = dv_core_virt_host(engine, ph->host, &local);
            if (ph->vh != NULL)
                ph->pool_row = dv_catalog_on_host(engine, &dv_table_pools, host_id, "name",
                                                  dv_json_get_string(catalog, "pool_name", ""), &local);
            if (local != NULL)
                ph->dead = g_strdup(local->message);
            else if (ph->vh == NULL)
                ph->dead = g_strdup("host is gone");
            if (ph->host != NULL)
                ph->spec_template = dv_provision_spec_template(engine, catalog, ph->host);
            /* As many workers as calls can run on the host: a connection
             * carries one call at a time, so the smaller limit. */
            width = ph->host != NULL ? dv_json_get_int(ph->host, "max_concurrent_operations", 0) : 0;
            width = width > 0 ? width : DV_VIRT_DEFAULT_MAX_OPERATIONS;
            if (ph->host != NULL && dv_json_get_int(ph->host, "max_connections", 0) > 0)
                width = MIN(width, dv_json_get_int(ph->host, "max_connections", 0));
            ph->width = (guint)CLAMP(width, 1, DV_CATALOG_HOST_WORKERS_MAX);
            g_hash_table_insert(by_host, (gpointer)host_id, ph);
            g_ptr_array_add(hosts, ph);
        }
        if (is_ready) {
            g_ptr_array_add(ph->ready, m);
            continue;
        }
        g_ptr_array_add(ph->machines, m);
        total++;
    }
    /* From here the runners own their host's state. */
    g_atomic_int_set(&pv->planning, (gint)hosts->len);
    for (guint h = 0; h < hosts->len; h++)
        g_ptr_array_add(threads, g_thread_new("dv-catalog-host", dv_provision_host_run, g_ptr_array_index(hosts, h)));
    g_ptr_array_set_size(hosts, 0);
    /* Collect, record in batches, move the progress. */
    while (!dv_provision_all_in(pv, total, received)) {
        DvProvisionResult *r = g_async_queue_timeout_pop(pv->results, 50 * 1000);
        gint64 now = g_get_monotonic_time();
        if (r != NULL) {
            /* A repair of a ready machine was counted ready already. */
            gboolean repair = g_strcmp0(dv_json_get_string(r->m, "state", ""), "ready") == 0;
            received++;
            last_result = now;
            g_hash_table_add(received_ids, (gpointer)dv_json_get_string(r->m, "id", ""));
            for (guint k = 0; k < DV_STEP_N; k++)
                step_us[k] += r->step_us[k];
            if (r->changes == NULL)
                cancelled = TRUE;
            else if (g_strcmp0(dv_json_get_string(r->changes, "state", ""), "ready") == 0)
                ready += repair ? 0 : 1;
            else if (g_strcmp0(dv_json_get_string(r->changes, "state", ""), "failed") == 0) {
                failed++;
                ready -= repair ? 1 : 0;
                if (first_error == NULL)
                    first_error = g_strdup(r->error);
            } else {
                cancelled = TRUE;
            }
            g_ptr_array_add(batch, r);
        } else if (now - last_result > stall_us) {
            /* The stall watchdog: a libvirt call that never returns (seen
             * once in a while: a reply that never reached its thread)
             * would hold the job forever.  The machines without an
             * outcome fail with the reason; their workers are left to
             * finish or hang on their own, holding only their copies. */
            g_atomic_int_set(&pv->abort, 1);
            stalled = TRUE;
            for (guint i = 0; i < json_array_get_length(pv->rows); i++) {
                JsonObject *m = json_array_get_object_element(pv->rows, i);
                DvProvisionResult *sr;
                if (g_hash_table_contains(received_ids, dv_json_get_string(m, "id", "")))
                    continue;
                sr = g_new0(DvProvisionResult, 1);
                sr->m = m;
                sr->keep_row = TRUE;
                sr->changes = json_object_new();
                json_object_set_string_member(sr->changes, "state", "failed");
                sr->error = g_strdup_printf("no answer from its host within %" G_GINT64_FORMAT
                                            " s (a libvirt call did not return); provision the catalog again",
                                            stall_us / G_USEC_PER_SEC);
                json_object_set_string_member(sr->changes, "error", sr->error);
                if (first_error == NULL)
                    first_error = g_strdup_printf("%s: %s", dv_json_get_string(m, "name", ""), sr->error);
                failed++;
                received++;
                g_ptr_array_add(batch, sr);
            }
        }
        if (flush_error == NULL && batch->len > 0 &&
            (batch->len >= DV_PROVISION_BATCH || now - last_flush >= DV_PROVISION_FLUSH_US || stalled ||
             dv_provision_all_in(pv, total, received))) {
            gint64 f0 = g_get_monotonic_time();
            gboolean flushed = dv_provision_flush(engine, batch, &flush_error);
            record_us += g_get_monotonic_time() - f0;
            if (!flushed)
                g_atomic_int_set(&pv->abort, 1); /* the workers stop; we drain */
            else if (!paused && received < total) {
                paused = TRUE;
                dv_catalog_debug_pause("machines", pv->c);
            }
            last_flush = now;
            {
                guint expected = total + (guint)g_atomic_int_get(&pv->repairs);
                dv_job_step_progress(job, expected > 0 ? MIN(1.0, (double)received / expected) : 1.0);
            }
        }
        if (flush_error != NULL)
            g_ptr_array_set_size(batch, 0);
        /* Repairs still running are left to finish on their own. */
        if (stalled)
            break;
    }
    for (guint i = 0; i < threads->len; i++) {
        if (stalled)
            g_thread_unref(g_ptr_array_index(threads, i));
        else
            g_thread_join(g_ptr_array_index(threads, i));
    }
    if (stalled)
        g_warning("catalog %s: a provisioning worker did not return; its thread is left behind",
                  dv_json_get_string(catalog, "name", ""));
    dv_provision_unref(pv);
    if (flush_error != NULL) {
        g_free(first_error);
        g_propagate_error(error, g_steal_pointer(&flush_error));
        return FALSE;
    }
    if (!stalled && (cancelled || g_cancellable_is_cancelled(dv_job_get_cancellable(job)))) {
        g_free(first_error);
        g_set_error_literal(error, DV_ERROR, DV_ERROR_CANCELLED, "cancelled; run provision again to finish");
        return FALSE;
    }
    /* Where the time went: the workers' time per step (summed over all
     * of them, so it exceeds the wall time when they overlap) and the
     * job thread's time writing the records. */
    {
        JsonObject *t = json_object_new();
        for (guint k = 0; k < DV_STEP_N; k++)
            json_object_set_double_member(t, dv_step_names[k], step_us[k] / 1e6);
        json_object_set_double_member(t, "record", record_us / 1e6);
        json_object_set_object_member(ret_timing, "machine_steps_s", t);
    }
    *ret_ready = ready;
    *ret_failed = failed;
    *ret_first_error = first_error;
    return TRUE;
}

gboolean
dv_catalog_provision_scope(DvEngine *engine, const DvActor *actor, JsonObject *catalog,
                           JsonObject **ret_params, GError **error)
{
    const DvAuthzContext *ctx = dv_core_actor_authz(actor);
    g_autoptr(JsonArray) machines = NULL;
    g_autoptr(JsonArray) kept = json_array_new();
    gboolean all = TRUE;

    if (ctx == NULL) {
        *ret_params = NULL;
        return TRUE;
    }
    machines = dv_core_list_all(engine, &dv_table_catalog_machines, "catalog_id",
                                dv_json_get_string(catalog, "id", ""), error);
    if (machines == NULL)
        return FALSE;
    for (guint i = 0; i < json_array_get_length(machines); i++) {
        JsonObject *m = json_array_get_object_element(machines, i);
        g_auto(DvCatalogAuthz) a = { 0 };
        if (g_strcmp0(dv_json_get_string(m, "state", ""), "ready") == 0)
            continue;
        if (!dv_catalog_authz_machine(engine, m, "catalog_machine", &a, error))
            return FALSE;
        if (dv_authz_decide(ctx, "catalog.provision", &a.o) == DV_AUTHZ_ALLOW)
            json_array_add_string_element(kept, dv_json_get_string(m, "id", ""));
        else
            all = FALSE;
    }
    if (all) {
        *ret_params = NULL;
        return TRUE;
    }
    *ret_params = json_object_new();
    json_object_set_array_member(*ret_params, "machine_ids", g_steal_pointer(&kept));
    return TRUE;
}

/* The catalog's machines, or only those the job's params name (a retry
 * by an actor who may retry some: dv_catalog_provision_scope()). */
static JsonArray *
dv_catalog_provision_machines(DvEngine *engine, DvJob *job, const char *catalog_id, GError **error)
{
    JsonArray *only = dv_json_get_array(dv_job_get_params(job), "machine_ids");
    g_autoptr(JsonArray) all =
        dv_core_list_all(engine, &dv_table_catalog_machines, "catalog_id", catalog_id, error);
    g_autoptr(GHashTable) wanted = NULL;
    JsonArray *out;

    if (all == NULL || only == NULL)
        return g_steal_pointer(&all);
    wanted = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < json_array_get_length(only); i++)
        g_hash_table_add(wanted, (gpointer)json_array_get_string_element(only, i));
    out = json_array_new();
    for (guint i = 0; i < json_array_get_length(all); i++) {
        JsonObject *m = json_array_get_object_element(all, i);
        if (g_hash_table_contains(wanted, dv_json_get_string(m, "id", "")))
            json_array_add_object_element(out, json_object_ref(m));
    }
    return out;
}

gboolean
dv_catalog_provision_job(DvJob *job, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    const char *catalog_id = dv_job_get_target_id(job);
    g_autoptr(JsonObject) catalog = NULL;
    g_autoptr(JsonArray) bases = NULL;
    g_autoptr(JsonArray) machines = NULL;
    g_autoptr(JsonObject) result = json_object_new();
    g_autoptr(GHashTable) base_by_host = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GPtrArray) sorted_bases = NULL;
    g_autoptr(GPtrArray) base_errors = NULL;
    guint n_first = 0, bases_at_once = 0;
    g_autoptr(JsonObject) timing = json_object_new();
    g_autofree char *first_error = NULL;
    guint ready = 0, failed = 0, n;
    gint64 t_start = g_get_monotonic_time(), t_machines;

    dv_job_set_steps(job, dv_catalog_steps, G_N_ELEMENTS(dv_catalog_steps));
    catalog = dv_store_get(dv_core(engine)->store, &dv_table_catalogs, catalog_id, error);
    if (catalog == NULL)
        return FALSE;
    if (!dv_job_step(job, "consolidate", error))
        return FALSE;
    bases = dv_core_list_all(engine, &dv_table_catalog_bases, "image_id",
                             dv_json_get_string(catalog, "current_image_id", ""), error);
    if (bases == NULL)
        return FALSE;
    sorted_bases = dv_catalog_bases_in_order(engine, bases, &n_first);
    base_errors = dv_catalog_consolidate_all(engine, job, catalog, sorted_bases, n_first, &bases_at_once);
    json_object_set_int_member(timing, "bases_at_once", bases_at_once);
    for (guint i = 0; i < sorted_bases->len; i++) {
        JsonObject *b = g_ptr_array_index(sorted_bases, i);
        GError *local = g_ptr_array_index(base_errors, i);
        if (local != NULL) {
            g_autoptr(JsonObject) ch = json_object_new();
            if (g_error_matches(local, DV_ERROR, DV_ERROR_CANCELLED)) {
                g_propagate_error(error, g_error_copy(local));
                return FALSE;
            }
            json_object_set_string_member(ch, "state", "failed");
            json_object_set_string_member(ch, "error", local->message);
            if (!dv_catalog_update(engine, &dv_table_catalog_bases, b, ch, error))
                return FALSE;
        }
        g_hash_table_insert(base_by_host, (gpointer)dv_json_get_string(b, "host_id", ""), b);
    }

    if (!dv_job_step(job, "machines", error))
        return FALSE;
    machines = dv_catalog_provision_machines(engine, job, catalog_id, error);
    if (machines == NULL)
        return FALSE;
    n = json_array_get_length(machines);
    t_machines = g_get_monotonic_time();
    if (!dv_provision_machines(engine, job, catalog, machines, base_by_host, timing, &ready, &failed, &first_error,
                               error))
        return FALSE;
    json_object_set_double_member(timing, "consolidate_s", (t_machines - t_start) / 1e6);
    json_object_set_double_member(timing, "machines_s", (g_get_monotonic_time() - t_machines) / 1e6);


    if (!dv_job_step(job, "save", error))
        return FALSE;
    /* Reference counts from what the rows say, so a resume never counts
     * a machine twice. */
    for (guint i = 0; i < json_array_get_length(bases); i++) {
        JsonObject *b = json_array_get_object_element(bases, i);
        DvFilter f = { "base_id", DV_FILTER_EQ, dv_json_get_string(b, "id", "") };
        gint64 refs =
            dv_store_count(dv_core(engine)->store, &dv_table_catalog_machines, &f, 1, error);
        g_autoptr(JsonObject) ch = json_object_new();
        if (refs < 0)
            return FALSE;
        json_object_set_int_member(ch, "refcount", refs);
        if (!dv_catalog_update(engine, &dv_table_catalog_bases, b, ch, error))
            return FALSE;
    }
    dv_catalog_debug_pause("save", dv_job_get_cancellable(job));
    {
        g_autoptr(JsonObject) ch = json_object_new();
        gboolean degraded = failed > 0;
        /* A retry of some machines (one user's) says nothing of the
         * others: the catalog is ready when all of its machines are. */
        if (!degraded && dv_json_get_array(dv_job_get_params(job), "machine_ids") != NULL) {
            g_autoptr(JsonArray) all = dv_core_list_all(engine, &dv_table_catalog_machines,
                                                        "catalog_id", catalog_id, error);
            if (all == NULL)
                return FALSE;
            for (guint i = 0; i < json_array_get_length(all); i++)
                degraded =
                    degraded || g_strcmp0(dv_json_get_string(json_array_get_object_element(all, i),
                                                             "state", ""),
                                          "ready") != 0;
        }
        json_object_set_string_member(ch, "state", degraded ? "degraded" : "ready");
        if (!dv_catalog_update(engine, &dv_table_catalogs, catalog, ch, error))
            return FALSE;
    }
    json_object_set_string_member(result, "id", catalog_id);
    json_object_set_string_member(result, "name", dv_json_get_string(catalog, "name", ""));
    json_object_set_int_member(result, "machines_ready", ready);
    json_object_set_int_member(result, "machines_failed", failed);
    json_object_set_object_member(result, "timing", json_object_ref(timing));
    dv_job_set_result(job, result);
    if (failed > 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED,
                    "%u of %u machines failed (first: %s); %u are ready. Fix the cause and "
                    "provision the catalog again", failed, n, first_error, ready);
        return FALSE;
    }
    return TRUE;
}

void
dv_catalog_provision_register(DvEngine *engine)
{
    DvJobKind kind = { "catalog.provision", dv_catalog_provision_job, engine, TRUE };
    dv_job_manager_register_kind(dv_core(engine)->jobs, &kind);
}
