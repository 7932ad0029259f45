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
    if (!dv_store_update(engine->store, def, dv_json_get_string(row, "id", ""), changes, error))
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

/* Makes the base of one pool when it is not ready.  A base still pending
 * after a crash may be a half-written copy: it is removed and made again. */
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
    g_autoptr(GError) local = NULL;
    g_autofree char *path = NULL;
    JsonObject *disk;

    if (g_strcmp0(dv_json_get_string(base, "state", ""), "ready") == 0)
        return TRUE;
    /* The master of the base's image (an image update may name another
     * master than the catalog was created from). */
    image = dv_store_get(engine->store, &dv_table_catalog_images, dv_json_get_string(base, "image_id", ""), error);
    if (image == NULL)
        return FALSE;
    master = dv_store_get(engine->store, &dv_table_vms, dv_json_get_string(image, "master_vm_id", ""), error);
    if (master == NULL) {
        g_prefix_error(error, "master VM of image v%" G_GINT64_FORMAT ": ", dv_json_get_int(image, "version", 0));
        return FALSE;
    }
    vh = dv_engine_virt_host_by_id(engine, dv_json_get_string(base, "host_id", ""), error);
    if (vh == NULL)
        return FALSE;
    pool = dv_catalog_on_host(engine, &dv_table_pools, dv_json_get_string(base, "host_id", ""), "name",
                              dv_json_get_string(base, "pool_name", ""), error);
    if (pool == NULL) {
        if (error != NULL && *error == NULL)
            g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "storage pool %s is gone",
                        dv_json_get_string(base, "pool_name", ""));
        return FALSE;
    }
    /* Copy only a disk nobody writes. */
    dom = dv_virt_domain_get(vh, dv_json_get_string(master, "uuid", ""), c, error);
    if (dom == NULL)
        return FALSE;
    if (g_strcmp0(dv_json_get_string(dom, "state", ""), "shutoff") != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT,
                    "master VM %s is %s; the base is copied only from a shut-off master",
                    dv_json_get_string(master, "name", ""), dv_json_get_string(dom, "state", ""));
        return FALSE;
    }
    /* The disk as libvirt reports it now (the row may be older). */
    {
        g_autoptr(JsonObject) wrap = json_object_new();
        json_object_set_object_member(wrap, "spec", json_object_ref(dom));
        disk = dv_catalog_master_disk(wrap);
    }
    if (disk == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT, "master VM %s has no writable disk",
                    dv_json_get_string(master, "name", ""));
        return FALSE;
    }
    path = g_build_filename(dv_json_get_string(pool, "path", "/"), dv_json_get_string(base, "volume_name", ""), NULL);
    /* Not recorded as ready: whatever is there is a half-made copy (or
     * one whose recording was lost), and no machine uses it yet. */
    {
        if (!dv_virt_volume_delete(vh, dv_json_get_string(base, "pool_name", ""),
                                   dv_json_get_string(base, "volume_name", ""), c, &local) &&
            !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        g_clear_error(&local);
    }
    vol = dv_virt_volume_clone(vh, dv_json_get_string(disk, "source", ""), dv_json_get_string(base, "pool_name", ""),
                               dv_json_get_string(base, "volume_name", ""), c, error);
    if (vol == NULL)
        return FALSE;
    {
        g_autoptr(JsonObject) changes = json_object_new();
        json_object_set_string_member(changes, "path", dv_json_get_string(vol, "path", path));
        json_object_set_int_member(changes, "capacity", dv_json_get_int(vol, "capacity", 0));
        json_object_set_string_member(changes, "state", "ready");
        json_object_set_null_member(changes, "error");
        return dv_catalog_update(engine, &dv_table_catalog_bases, base, changes, error);
    }
}

/* Builds and uploads the identity disk of @m; secrets are opened only
 * here, in guarded memory. */
static gboolean
dv_catalog_identity(DvEngine *engine, DvVirtHost *vh, JsonObject *catalog, JsonObject *m,
                    const char *pool, const char *vname, GCancellable *c, GError **error)
{
    const char *profile_id = dv_json_get_string(catalog, "guest_os_profile_id", NULL);
    g_autoptr(JsonObject) profile = NULL;
    g_autoptr(DvSecret) admin = NULL;
    g_autoptr(DvSecret) join = NULL;
    g_autoptr(DvSecret) key = NULL;
    g_autoptr(GPtrArray) keys = g_ptr_array_new();
    g_autoptr(DvSecret) iso = NULL;
    DvIdentitySpec spec = { 0 };

    spec.instance_id = dv_json_get_string(m, "id", "");
    spec.hostname = dv_json_get_string(m, "name", "");
    if (profile_id != NULL) {
        static const char *const fields[] = { "admin_password", "domain_join_password", "product_key" };
        DvSecret **slots[] = { &admin, &join, &key };
        JsonArray *ssh;

        profile = dv_store_get(engine->store, &dv_table_guest_os_profiles, profile_id, error);
        if (profile == NULL) {
            g_prefix_error(error, "guest OS profile: ");
            return FALSE;
        }
        for (gsize i = 0; i < G_N_ELEMENTS(fields); i++) {
            g_autoptr(GError) local = NULL;
            *slots[i] = dv_keyring_load_secret(engine->keyring, engine->store, "guest-os-profile", profile_id,
                                               fields[i], &local);
            if (*slots[i] == NULL && !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
                g_propagate_error(error, g_steal_pointer(&local));
                return FALSE;
            }
        }
        spec.admin_username = dv_json_get_string(profile, "admin_username", NULL);
        spec.time_zone = dv_json_get_string(profile, "time_zone", NULL);
        spec.domain = dv_json_get_string(profile, "domain", NULL);
        spec.domain_join_user = dv_json_get_string(profile, "domain_join_user", NULL);
        spec.extra_user_data = dv_json_get_string(profile, "user_data", NULL);
        spec.admin_password = admin;
        spec.domain_join_password = join;
        spec.product_key = key;
        ssh = dv_json_get_array(profile, "ssh_authorized_keys");
        for (guint i = 0; ssh != NULL && i < json_array_get_length(ssh); i++)
            g_ptr_array_add(keys, (gpointer)json_array_get_string_element(ssh, i));
        if (keys->len > 0) {
            g_ptr_array_add(keys, NULL);
            spec.ssh_authorized_keys = (const char *const *)keys->pdata;
        }
    }
    iso = dv_identity_build_iso(&spec, error);
    if (iso == NULL)
        return FALSE;
    return dv_virt_volume_upload(vh, pool, vname, dv_secret_get_data(iso), dv_secret_get_len(iso), c, error);
}

/* Creates a volume, or finds the one an earlier attempt made. */
static JsonObject *
dv_catalog_ensure_volume(DvVirtHost *vh, const char *pool, const char *pool_path, const char *name,
                         const char *backing, guint64 capacity, GCancellable *c, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autofree char *path = g_build_filename(pool_path, name, NULL);
    JsonObject *vol = dv_virt_volume_lookup_by_path(vh, path, c, &local);

    if (vol != NULL)
        return vol;
    if (!g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    if (backing != NULL)
        return dv_virt_volume_create_overlay(vh, pool, name, backing, "qcow2", capacity, c, error);
    return dv_virt_volume_create(vh, pool, name, capacity, "qcow2", c, error);
}

/* The steps of one machine.  Each looks up what exists first, so a
 * resumed job redoes nothing that is recorded and converges otherwise. */
static gboolean
dv_catalog_machine_run(DvEngine *engine, DvJob *job, JsonObject *catalog, JsonObject *m, JsonObject *base,
                       GError **error)
{
    GCancellable *c = dv_job_get_cancellable(job);
    const char *cname = dv_json_get_string(catalog, "name", "");
    const char *mname = dv_json_get_string(m, "name", "");
    const char *host_id = dv_json_get_string(m, "host_id", "");
    const char *pool = dv_json_get_string(catalog, "pool_name", "");
    JsonObject *mspec = dv_json_get_object(catalog, "machine_spec");
    gint64 personal = dv_json_get_int(catalog, "personal_disk_mib", 0);
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(JsonObject) host = NULL;
    g_autoptr(JsonObject) prow = NULL;
    g_autoptr(JsonObject) master = NULL;
    g_autofree char *disk_name = dv_catalog_volume_name(cname, mname, DV_CATALOG_VOLUME_DISK);
    g_autofree char *id_name = dv_catalog_volume_name(cname, mname, DV_CATALOG_VOLUME_IDENTITY);
    g_autofree char *pers_name = dv_catalog_volume_name(cname, mname, DV_CATALOG_VOLUME_PERSONAL);
    const char *pool_path;

    if (base == NULL || g_strcmp0(dv_json_get_string(base, "state", ""), "ready") != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED, "base image: %s",
                    base != NULL ? dv_json_get_string(base, "error", "not made") : "none for this host");
        return FALSE;
    }
    host = dv_store_get(engine->store, &dv_table_hosts, host_id, error);
    if (host == NULL)
        return FALSE;
    vh = dv_engine_virt_host(engine, host, error);
    if (vh == NULL)
        return FALSE;
    prow = dv_catalog_on_host(engine, &dv_table_pools, host_id, "name", pool, error);
    if (prow == NULL) {
        if (error != NULL && *error == NULL)
            g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "storage pool %s is gone", pool);
        return FALSE;
    }
    pool_path = dv_json_get_string(prow, "path", "/");

    /* overlay */
    if (dv_json_get_string(m, "overlay_path", NULL) == NULL) {
        g_autoptr(JsonObject) vol = dv_catalog_ensure_volume(vh, pool, pool_path, disk_name,
                                                             dv_json_get_string(base, "path", ""), 0, c, error);
        g_autoptr(JsonObject) ch = json_object_new();
        if (vol == NULL) {
            g_prefix_error(error, "overlay: ");
            return FALSE;
        }
        json_object_set_string_member(ch, "overlay_path", dv_json_get_string(vol, "path", ""));
        json_object_set_string_member(ch, "base_id", dv_json_get_string(base, "id", ""));
        json_object_set_string_member(ch, "step", "overlay");
        if (!dv_catalog_update(engine, &dv_table_catalog_machines, m, ch, error))
            return FALSE;
    }
    /* identity: uploaded whole each time it is not recorded (an upload
     * converges on retry) */
    if (dv_json_get_string(m, "identity_path", NULL) == NULL) {
        g_autoptr(JsonObject) ch = json_object_new();
        g_autofree char *path = g_build_filename(pool_path, id_name, NULL);
        if (!dv_catalog_identity(engine, vh, catalog, m, pool, id_name, c, error)) {
            g_prefix_error(error, "identity: ");
            return FALSE;
        }
        json_object_set_string_member(ch, "identity_path", path);
        json_object_set_string_member(ch, "step", "identity");
        if (!dv_catalog_update(engine, &dv_table_catalog_machines, m, ch, error))
            return FALSE;
    }
    /* personal */
    if (personal > 0 && dv_json_get_string(m, "personal_path", NULL) == NULL) {
        g_autoptr(JsonObject) vol = dv_catalog_ensure_volume(vh, pool, pool_path, pers_name, NULL,
                                                             (guint64)personal << 20, c, error);
        g_autoptr(JsonObject) ch = json_object_new();
        if (vol == NULL) {
            g_prefix_error(error, "personal: ");
            return FALSE;
        }
        json_object_set_string_member(ch, "personal_path", dv_json_get_string(vol, "path", ""));
        json_object_set_string_member(ch, "step", "personal");
        if (!dv_catalog_update(engine, &dv_table_catalog_machines, m, ch, error))
            return FALSE;
    }
    /* define: the same UUID on every attempt, so a redefine replaces */
    {
        g_autoptr(JsonObject) spec = json_object_new();
        g_autoptr(JsonArray) disks = json_array_new();
        g_autoptr(JsonObject) dom = NULL;
        g_autoptr(JsonObject) vm = NULL;
        g_autoptr(JsonObject) ch = json_object_new();
        g_autoptr(GError) local = NULL;
        g_autofree char *xml = NULL;
        g_autofree char *uuid = NULL;
        g_autofree char *log = g_strdup_printf("%s/%s-%s-" DV_CATALOG_VOLUME_CONSOLE, pool_path, cname, mname);
        const char *vm_id = dv_json_get_string(m, "id", "");
        JsonObject *d;

        master = dv_store_get(engine->store, &dv_table_vms, dv_json_get_string(catalog, "master_vm_id", ""), NULL);
        d = json_object_new();
        json_object_set_string_member(d, "path", dv_json_get_string(m, "overlay_path", ""));
        json_object_set_string_member(d, "format", "qcow2");
        json_object_set_string_member(d, "bus", "virtio");
        json_array_add_object_element(disks, d);
        /* The identity disk is a read-only virtio disk, not a CD-ROM:
         * guests may have virtio drivers only (docs/TINY-GUEST.md). */
        d = json_object_new();
        json_object_set_string_member(d, "path", dv_json_get_string(m, "identity_path", ""));
        json_object_set_string_member(d, "format", "raw");
        json_object_set_string_member(d, "bus", "virtio");
        json_object_set_boolean_member(d, "readonly", TRUE);
        json_array_add_object_element(disks, d);
        if (dv_json_get_string(m, "personal_path", NULL) != NULL) {
            d = json_object_new();
            json_object_set_string_member(d, "path", dv_json_get_string(m, "personal_path", ""));
            json_object_set_string_member(d, "format", "qcow2");
            json_object_set_string_member(d, "bus", "virtio");
            json_array_add_object_element(disks, d);
        }
        json_object_set_string_member(spec, "name", mname);
        json_object_set_string_member(spec, "uuid", dv_json_get_string(m, "domain_uuid", ""));
        json_object_set_string_member(spec, "domain_type", dv_engine_host_domain_type(host));
        json_object_set_int_member(spec, "vcpus", dv_json_get_int(mspec, "vcpus", 1));
        json_object_set_int_member(spec, "memory_mib", dv_json_get_int(mspec, "memory_mib", 512));
        json_object_set_int_member(spec, "generation", dv_json_get_int(master, "generation", 1));
        json_object_set_boolean_member(spec, "secure_boot", FALSE);
        {
            g_autofree char *desc = g_strdup_printf(DV_CATALOG_DOMAIN_DESCRIPTION, cname);
            json_object_set_string_member(spec, "description", desc);
        }
        if (g_strcmp0(dv_json_get_string(prow, "type", ""), "dir") == 0)
            json_object_set_string_member(spec, "serial_log", log);
        if (dv_json_get_string(mspec, "kernel", NULL) != NULL)
            json_object_set_string_member(spec, "kernel", dv_json_get_string(mspec, "kernel", NULL));
        if (dv_json_get_string(mspec, "initrd", NULL) != NULL)
            json_object_set_string_member(spec, "initrd", dv_json_get_string(mspec, "initrd", NULL));
        if (dv_json_get_string(mspec, "cmdline", NULL) != NULL)
            json_object_set_string_member(spec, "cmdline", dv_json_get_string(mspec, "cmdline", NULL));
        json_object_set_array_member(spec, "disks", json_array_ref(disks));
        if (dv_json_get_array(mspec, "networks") != NULL)
            json_object_set_array_member(spec, "networks", json_array_ref(dv_json_get_array(mspec, "networks")));
        xml = dv_virt_domain_xml_new(spec, error);
        if (xml == NULL) {
            g_prefix_error(error, "define: ");
            return FALSE;
        }
        uuid = dv_virt_domain_define(vh, xml, c, error);
        if (uuid == NULL) {
            g_prefix_error(error, "define: ");
            return FALSE;
        }
        /* The VM row's id is the machine's id, so a resume finds it. */
        vm = dv_store_get(engine->store, &dv_table_vms, vm_id, &local);
        if (vm == NULL) {
            gint64 now = dv_store_now();
            vm = json_object_new();
            json_object_set_string_member(vm, "id", vm_id);
            json_object_set_string_member(vm, "name", mname);
            json_object_set_string_member(vm, "host_id", host_id);
            json_object_set_string_member(vm, "uuid", uuid);
            json_object_set_string_member(vm, "state", "shutoff");
            json_object_set_string_member(vm, "origin", "catalog");
            json_object_set_int_member(vm, "generation", dv_json_get_int(spec, "generation", 1));
            json_object_set_boolean_member(vm, "secure_boot", FALSE);
            json_object_set_string_member(vm, "description", dv_json_get_string(spec, "description", NULL));
            json_object_set_int_member(vm, "created_at", now);
            json_object_set_int_member(vm, "updated_at", now);
            if (!dv_store_insert(engine->store, &dv_table_vms, vm, error))
                return FALSE;
        }
        dom = dv_virt_domain_get(vh, uuid, c, error);
        if (dom == NULL || !dv_engine_vm_sync(engine, vm, dom, error))
            return FALSE;
        json_object_set_string_member(ch, "vm_id", vm_id);
        json_object_set_string_member(ch, "step", "define");
        json_object_set_string_member(ch, "state", "ready");
        json_object_set_null_member(ch, "error");
        return dv_catalog_update(engine, &dv_table_catalog_machines, m, ch, error);
    }
}

static gboolean
dv_catalog_provision_job(DvJob *job, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    const char *catalog_id = dv_job_get_target_id(job);
    g_autoptr(JsonObject) catalog = NULL;
    g_autoptr(JsonArray) bases = NULL;
    g_autoptr(JsonArray) machines = NULL;
    g_autoptr(JsonObject) result = json_object_new();
    g_autoptr(GHashTable) base_by_host = g_hash_table_new(g_str_hash, g_str_equal);
    g_autofree char *first_error = NULL;
    guint ready = 0, failed = 0, n;

    dv_job_set_steps(job, dv_catalog_steps, G_N_ELEMENTS(dv_catalog_steps));
    catalog = dv_store_get(engine->store, &dv_table_catalogs, catalog_id, error);
    if (catalog == NULL)
        return FALSE;
    if (!dv_job_step(job, "consolidate", error))
        return FALSE;
    bases = dv_engine_list_all(engine, &dv_table_catalog_bases, "image_id",
                               dv_json_get_string(catalog, "current_image_id", ""), error);
    if (bases == NULL)
        return FALSE;
    for (guint i = 0; i < json_array_get_length(bases); i++) {
        JsonObject *b = json_array_get_object_element(bases, i);
        g_autoptr(GError) local = NULL;
        if (!dv_catalog_consolidate(engine, job, catalog, b, &local)) {
            g_autoptr(JsonObject) ch = json_object_new();
            if (g_error_matches(local, DV_ERROR, DV_ERROR_CANCELLED)) {
                g_propagate_error(error, g_steal_pointer(&local));
                return FALSE;
            }
            json_object_set_string_member(ch, "state", "failed");
            json_object_set_string_member(ch, "error", local->message);
            if (!dv_catalog_update(engine, &dv_table_catalog_bases, b, ch, error))
                return FALSE;
        }
        g_hash_table_insert(base_by_host, (gpointer)dv_json_get_string(b, "host_id", ""), b);
        dv_job_step_progress(job, (double)(i + 1) / json_array_get_length(bases));
    }

    if (!dv_job_step(job, "machines", error))
        return FALSE;
    machines = dv_engine_list_all(engine, &dv_table_catalog_machines, "catalog_id", catalog_id, error);
    if (machines == NULL)
        return FALSE;
    n = json_array_get_length(machines);
    for (guint i = 0; i < n; i++) {
        JsonObject *m = json_array_get_object_element(machines, i);
        g_autoptr(GError) local = NULL;
        if (g_strcmp0(dv_json_get_string(m, "state", ""), "ready") == 0) {
            ready++;
            continue;
        }
        if (dv_job_is_cancelled(job)) {
            g_set_error_literal(error, DV_ERROR, DV_ERROR_CANCELLED, "cancelled; run provision again to finish");
            return FALSE;
        }
        if (!dv_catalog_machine_run(engine, job, catalog, m,
                                    g_hash_table_lookup(base_by_host, dv_json_get_string(m, "host_id", "")),
                                    &local)) {
            g_autoptr(JsonObject) ch = json_object_new();
            if (g_error_matches(local, DV_ERROR, DV_ERROR_CANCELLED)) {
                g_propagate_error(error, g_steal_pointer(&local));
                return FALSE;
            }
            json_object_set_string_member(ch, "state", "failed");
            json_object_set_string_member(ch, "error", local->message);
            if (!dv_catalog_update(engine, &dv_table_catalog_machines, m, ch, error))
                return FALSE;
            if (first_error == NULL)
                first_error = g_strdup_printf("%s: %s", dv_json_get_string(m, "name", ""), local->message);
            failed++;
        } else {
            ready++;
        }
        dv_job_step_progress(job, (double)(i + 1) / n);
    }

    if (!dv_job_step(job, "save", error))
        return FALSE;
    /* Reference counts from what the rows say, so a resume never counts
     * a machine twice. */
    for (guint i = 0; i < json_array_get_length(bases); i++) {
        JsonObject *b = json_array_get_object_element(bases, i);
        DvFilter f = { "base_id", DV_FILTER_EQ, dv_json_get_string(b, "id", "") };
        gint64 refs = dv_store_count(engine->store, &dv_table_catalog_machines, &f, 1, error);
        g_autoptr(JsonObject) ch = json_object_new();
        if (refs < 0)
            return FALSE;
        json_object_set_int_member(ch, "refcount", refs);
        if (!dv_catalog_update(engine, &dv_table_catalog_bases, b, ch, error))
            return FALSE;
    }
    {
        g_autoptr(JsonObject) ch = json_object_new();
        json_object_set_string_member(ch, "state", failed > 0 ? "degraded" : "ready");
        if (!dv_catalog_update(engine, &dv_table_catalogs, catalog, ch, error))
            return FALSE;
    }
    json_object_set_string_member(result, "id", catalog_id);
    json_object_set_string_member(result, "name", dv_json_get_string(catalog, "name", ""));
    json_object_set_int_member(result, "machines_ready", ready);
    json_object_set_int_member(result, "machines_failed", failed);
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
    dv_job_manager_register_kind(engine->jobs, &kind);
}
