#define G_LOG_DOMAIN "DvVms"

/* VMs: create from a spec or a template, power actions, delete, snapshots. */

#include "dv-vms-private.h"

#include <string.h>

#define DV_VM_MAX_DISKS 16
#define DV_VM_MAX_NETWORKS 8
#define DV_VM_MAX_DISK_MIB G_GINT64_CONSTANT(67108864) /* 64 TiB */
#define DV_VM_SHUTDOWN_TIMEOUT_MS (120 * 1000)
/* A running source's freeze layer while its disk is copied (clone). */
#define DV_VM_CLONE_LAYER_SUFFIX "-drover-clone.qcow2"
#define DV_VM_CLONE_MERGE_MS (10 * 60 * 1000)

const DvFieldSpec dv_vm_fields[] = {
    { "name", DV_FIELD_STRING, TRUE, .max_len = DV_NAME_MAX },
    { "host", DV_FIELD_STRING_OR_NULL, FALSE, "a host id or name; or host_group" },
    { "host_group", DV_FIELD_STRING_OR_NULL, FALSE },
    { "template", DV_FIELD_STRING_OR_NULL, FALSE, "a template id or name" },
    { "vcpus", DV_FIELD_INT, FALSE, .min = 1, .max = 512 },
    { "memory_mib", DV_FIELD_INT, FALSE, .min = 16, .max = 4194304 },
    { "generation", DV_FIELD_INT, FALSE, .min = 1, .max = 2 },
    { "secure_boot", DV_FIELD_BOOL, FALSE },
    { "disks", DV_FIELD_ARRAY, FALSE },
    { "networks", DV_FIELD_ARRAY, FALSE },
    { "cdroms", DV_FIELD_ARRAY, FALSE,
      "CD-ROM drives: {library_share, file}, {pool, volume} or {} (empty); read-only" },
    { "boot_order", DV_FIELD_ARRAY, FALSE, "1-3 of disk, cdrom, network (default disk)" },
    { "start", DV_FIELD_BOOL, FALSE },
    { "description", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = DV_DESCRIPTION_MAX },
    { "graphics", DV_FIELD_STRING, FALSE, "vnc (the default), spice or none" },
    { NULL },
};

static const DvFieldSpec dv_disk_fields[] = {
    { "size_mib", DV_FIELD_INT, FALSE },
    { "pool", DV_FIELD_STRING, FALSE },
    { "format", DV_FIELD_STRING, FALSE },
    { "volume", DV_FIELD_STRING, FALSE },
    { NULL },
};

static const DvFieldSpec dv_nic_fields[] = {
    { "network", DV_FIELD_STRING, FALSE },
    { "bridge", DV_FIELD_STRING, FALSE },
    { NULL },
};

/* PATCH /vms/{ref} (vm.change): every member optional, at least one. */
const DvFieldSpec dv_vm_change_fields[] = {
    { "vcpus", DV_FIELD_INT, FALSE, "live when running and within the maximum, else at next boot",
      .min = 1, .max = 256 },
    { "memory_mib", DV_FIELD_INT, FALSE,
      "live when running and within the maximum, else at next boot", .min = 16, .max = 4194304 },
    { "description", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = DV_DESCRIPTION_MAX },
    { "autostart", DV_FIELD_BOOL, FALSE },
    { "boot_order", DV_FIELD_ARRAY, FALSE, "1-3 of disk, cdrom, network; at next boot" },
    { "name", DV_FIELD_STRING, FALSE, "only while shut off", .max_len = DV_NAME_MAX },
    { NULL },
};

/* POST /vms/{ref}/shutdown: how long to wait for the guest. */
const DvFieldSpec dv_vm_shutdown_fields[] = {
    { "timeout", DV_FIELD_INT, FALSE, "seconds to wait for the guest (default 120)", .min = 1,
      .max = 3600 },
    { NULL },
};

/* POST /vms/{ref}/clone (vm.clone). */
const DvFieldSpec dv_vm_clone_fields[] = {
    { "name", DV_FIELD_STRING, TRUE, .max_len = DV_NAME_MAX },
    { "host", DV_FIELD_STRING_OR_NULL, FALSE, "the source's host: a clone stays on it" },
    { "pool", DV_FIELD_STRING_OR_NULL, FALSE, "a pool of the host; default each disk's own" },
    { "linked", DV_FIELD_BOOL, FALSE, "a qcow2 overlay on a frozen copy of each disk" },
    { "description", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = DV_DESCRIPTION_MAX },
    { NULL },
};

/* POST /vms/{ref}/snapshots (vm.snapshot.create; docs/API.md, "Snapshots"). */
const DvFieldSpec dv_vm_snapshot_fields[] = {
    { "name", DV_FIELD_STRING, TRUE, .max_len = DV_NAME_MAX },
    { "description", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = DV_DESCRIPTION_MAX },
    { "kind", DV_FIELD_STRING_OR_NULL, FALSE,
      "\"internal\" or \"external\"; default internal when the VM allows it" },
    { "memory", DV_FIELD_BOOL, FALSE, "keep the running VM's memory (default: when running)" },
    { NULL },
};

/* Placement: the usable host of the group (and its subgroups) with the most
 * free memory that can hold @memory_mib. */
static JsonObject *
dv_engine_place(DvEngine *engine, const char *group_ref, gint64 memory_mib, GError **error)
{
    g_autoptr(JsonObject) group =
        dv_core_resolve(engine, DV_KIND_HOST_GROUP, group_ref, "host_group", error);
    g_autoptr(GPtrArray) groups = NULL;
    JsonObject *best = NULL;
    gint64 best_free = -1;
    guint candidates = 0;
    g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func((GDestroyNotify)json_array_unref);

    if (group == NULL)
        return NULL;
    groups = dv_core_group_subtree(engine, dv_json_get_string(group, "id", ""), error);
    if (groups == NULL)
        return NULL;
    for (guint g = 0; g < groups->len; g++) {
        JsonArray *hosts = dv_core_list_all(engine, &dv_table_hosts, "host_group_id",
                                            g_ptr_array_index(groups, g), error);
        if (hosts == NULL)
            return NULL;
        g_ptr_array_add(keep, hosts);
        for (guint i = 0; i < json_array_get_length(hosts); i++) {
            JsonObject *h = json_array_get_object_element(hosts, i);
            gint64 free_mib = dv_json_get_int(h, "free_memory_mib", 0);
            if (g_strcmp0(dv_json_get_string(h, "state", ""), "ok") != 0)
                continue;
            if (free_mib <= 0) {
                /* Hosts that report no free memory (the test driver):
                 * total memory less what their running VMs hold. */
                g_autoptr(JsonArray) vms = dv_core_list_all(engine, &dv_table_vms, "host_id",
                                                            dv_json_get_string(h, "id", ""), error);
                if (vms == NULL)
                    return NULL;
                free_mib = dv_json_get_int(h, "memory_mib", 0);
                for (guint k = 0; k < json_array_get_length(vms); k++) {
                    JsonObject *vm = json_array_get_object_element(vms, k);
                    if (g_strcmp0(dv_json_get_string(vm, "state", ""), "running") == 0)
                        free_mib -= dv_json_get_int(vm, "memory_mib", 0);
                }
            }
            candidates++;
            if (free_mib < memory_mib)
                continue;
            if (free_mib > best_free) {
                best_free = free_mib;
                best = h;
            }
        }
    }
    if (best == NULL) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "host_group",
                           "host_group: none of the %u usable hosts in '%s' has %" G_GINT64_FORMAT
                           " MiB of memory free",
                           candidates, dv_json_get_string(group, "name", ""), memory_mib);
        return NULL;
    }
    return json_object_ref(best);
}

static JsonObject *
dv_engine_find_on_host(DvEngine *engine, const DvTableDef *def, const char *host_id,
                       const char *column, const char *value, GError **error)
{
    g_autoptr(JsonArray) rows = dv_core_list_all(engine, def, "host_id", host_id, error);
    if (rows == NULL)
        return NULL;
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *r = json_array_get_object_element(rows, i);
        if (g_strcmp0(dv_json_get_string(r, column, NULL), value) == 0)
            return json_object_ref(r);
    }
    g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "not found");
    return NULL;
}

static gboolean
dv_engine_vm_check_host_usable(JsonObject *host, GError **error)
{
    const char *state = dv_json_get_string(host, "state", "");
    if (g_strcmp0(state, "ok") != 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "host", "host: %s is %s%s%s",
                           dv_json_get_string(host, "name", ""), state,
                           dv_json_get_string(host, "state_reason", NULL) != NULL ? ": " : "",
                           dv_json_get_string(host, "state_reason", ""));
        return FALSE;
    }
    return TRUE;
}

/* Validates the disks of a VM spec against the chosen host and returns the
 * normalised list the job works from. */
static JsonArray *
dv_engine_vm_disks(DvEngine *engine, const DvActor *actor, JsonObject *host, const char *vm_name,
                   JsonArray *disks, GError **error)
{
    g_autoptr(JsonArray) out = json_array_new();
    const char *host_id = dv_json_get_string(host, "id", "");

    if (disks == NULL)
        return g_steal_pointer(&out);
    if (json_array_get_length(disks) > DV_VM_MAX_DISKS) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "disks", "disks: at most %d",
                           DV_VM_MAX_DISKS);
        return NULL;
    }
    for (guint i = 0; i < json_array_get_length(disks); i++) {
        JsonNode *node = json_array_get_element(disks, i);
        g_autofree char *path = g_strdup_printf("disks[%u].", i);
        g_autofree char *f_pool = g_strdup_printf("disks[%u].pool", i);
        g_autofree char *f_size = g_strdup_printf("disks[%u].size_mib", i);
        g_autofree char *f_format = g_strdup_printf("disks[%u].format", i);
        g_autofree char *f_volume = g_strdup_printf("disks[%u].volume", i);
        JsonObject *d;
        JsonObject *o = json_object_new();

        json_array_add_object_element(out, o);
        if (!JSON_NODE_HOLDS_OBJECT(node)) {
            g_autofree char *f = g_strdup_printf("disks[%u]", i);
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f, "%s: must be an object", f);
            return NULL;
        }
        d = json_node_get_object(node);
        if (!dv_json_check_fields(d, dv_disk_fields, path, error))
            return NULL;
        if (json_object_has_member(d, "volume")) {
            const char *vpath = dv_json_get_string(d, "volume", "");
            g_autoptr(JsonObject) vol = NULL;
            g_autoptr(GError) local = NULL;
            if (json_object_has_member(d, "size_mib") || json_object_has_member(d, "pool")) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f_volume,
                                   "%s: an existing volume takes no size_mib or pool", f_volume);
                return NULL;
            }
            vol = dv_engine_find_on_host(engine, &dv_table_volumes, host_id, "path", vpath, &local);
            /* vm.create does not reach every volume of the host (another
             * user's VM's disk): the caller must see this one (volume.read
             * in its scope), else it is as absent as an unknown path. */
            if (vol != NULL) {
                g_autoptr(JsonObject) seen = dv_core_resolve_for(
                    engine, actor, DV_KIND_VOLUME, dv_json_get_string(vol, "id", ""), f_volume, NULL);
                if (seen == NULL)
                    g_clear_pointer(&vol, json_object_unref);
            }
            if (vol == NULL) {
                g_autofree char *safe = dv_text_excerpt(vpath, 256);
                dv_set_field_error(error, DV_ERROR_NOT_FOUND, f_volume,
                                   "%s: host %s has no volume at '%s' (refresh the host if it is new)",
                                   f_volume, dv_json_get_string(host, "name", ""), safe);
                return NULL;
            }
            json_object_set_string_member(o, "kind", "existing");
            json_object_set_string_member(o, "path", dv_json_get_string(vol, "path", ""));
            /* libvirt detects an ISO9660 file as format "iso": it goes in
             * as a read-only raw CD-ROM (before, "iso" reached the domain
             * XML as a disk format and failed the job after its volumes
             * were made). */
            if (g_strcmp0(dv_json_get_string(vol, "format", "raw"), "iso") == 0) {
                json_object_set_string_member(o, "format", "raw");
                json_object_set_string_member(o, "device", "cdrom");
            } else if (g_strcmp0(dv_json_get_string(vol, "format", "raw"), "qcow2") == 0 ||
                       g_strcmp0(dv_json_get_string(vol, "format", "raw"), "raw") == 0) {
                json_object_set_string_member(o, "format",
                                              dv_json_get_string(vol, "format", "raw"));
            } else {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f_volume,
                                   "%s: %s is a %s image; a disk is qcow2 or raw, an ISO iso",
                                   f_volume, dv_json_get_string(vol, "path", ""),
                                   dv_json_get_string(vol, "format", "?"));
                return NULL;
            }
        } else {
            gint64 size = dv_json_get_int(d, "size_mib", -1);
            const char *pool = dv_json_get_string(d, "pool", "default");
            const char *format = dv_json_get_string(d, "format", "qcow2");
            g_autofree char *vname = NULL;
            g_autoptr(JsonObject) p = NULL;
            g_autoptr(GError) local = NULL;

            if (!json_object_has_member(d, "size_mib")) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f_size,
                                   "%s: is required for a new disk (or give volume)", f_size);
                return NULL;
            }
            if (!dv_validate_range(f_size, size, 1, DV_VM_MAX_DISK_MIB, error) ||
                !dv_validate_name(f_pool, pool, error))
                return NULL;
            if (g_strcmp0(format, "qcow2") != 0 && g_strcmp0(format, "raw") != 0) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f_format,
                                   "%s: must be qcow2 or raw", f_format);
                return NULL;
            }
            p = dv_engine_find_on_host(engine, &dv_table_pools, host_id, "name", pool, &local);
            if (p == NULL) {
                dv_set_field_error(error, DV_ERROR_NOT_FOUND, f_pool,
                                   "%s: host %s has no storage pool '%s'", f_pool,
                                   dv_json_get_string(host, "name", ""), pool);
                return NULL;
            }
            if (g_strcmp0(dv_json_get_string(p, "state", ""), "running") != 0) {
                dv_set_field_error(error, DV_ERROR_CONFLICT, f_pool,
                                   "%s: storage pool '%s' is not running", f_pool, pool);
                return NULL;
            }
            /* Sparse volumes may overcommit the pool: not refused here. */
            vname = g_strdup_printf("%s-disk%u.%s", vm_name, i, g_strcmp0(format, "raw") == 0 ? "img" : "qcow2");
            {
                g_autoptr(JsonObject) clash = NULL;
                g_autoptr(GError) l2 = NULL;
                g_autofree char *vpath = g_build_filename(dv_json_get_string(p, "path", "/"), vname, NULL);
                clash = dv_engine_find_on_host(engine, &dv_table_volumes, host_id, "path", vpath, &l2);
                if (clash != NULL) {
                    dv_set_field_error(error, DV_ERROR_CONFLICT, f_pool,
                                       "%s: pool '%s' already holds a volume named %s", f_pool, pool,
                                       vname);
                    return NULL;
                }
            }
            json_object_set_string_member(o, "kind", "new");
            json_object_set_string_member(o, "pool", pool);
            json_object_set_string_member(o, "pool_path", dv_json_get_string(p, "path", ""));
            json_object_set_string_member(o, "name", vname);
            json_object_set_string_member(o, "format", format);
            json_object_set_int_member(o, "capacity", size * 1024 * 1024);
        }
    }
    return g_steal_pointer(&out);
}

#define DV_VM_MAX_CDROMS 4

/* Appends the CD-ROM drives of a VM spec to @disks (after the disks, so a
 * disk keeps booting first unless boot_order says otherwise). */
static gboolean
dv_engine_vm_cdroms(DvEngine *engine, const DvActor *actor, JsonObject *host, JsonArray *cdroms,
                    JsonArray *disks, GError **error)
{
    if (cdroms == NULL)
        return TRUE;
    if (json_array_get_length(cdroms) > DV_VM_MAX_CDROMS) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "cdroms", "cdroms: at most %d",
                           DV_VM_MAX_CDROMS);
        return FALSE;
    }
    for (guint i = 0; i < json_array_get_length(cdroms); i++) {
        JsonNode *node = json_array_get_element(cdroms, i);
        g_autofree char *prefix = g_strdup_printf("cdroms[%u].", i);
        JsonObject *c;
        JsonObject *o;

        if (!JSON_NODE_HOLDS_OBJECT(node)) {
            g_autofree char *f = g_strdup_printf("cdroms[%u]", i);
            dv_set_field_error(
                error, DV_ERROR_INVALID_ARGUMENT, f,
                "%s: must be an object ({library_share, file}, {pool, volume} or {})", f);
            return FALSE;
        }
        c = json_node_get_object(node);
        if (!dv_json_check_fields(c, dv_vm_cdrom_fields, prefix, error))
            return FALSE;
        if (json_object_has_member(c, "eject") || json_object_has_member(c, "target")) {
            g_autofree char *f =
                g_strconcat(prefix, json_object_has_member(c, "eject") ? "eject" : "target", NULL);
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f,
                               "%s: is for POST /vms/{ref}/cdrom, not a VM spec", f);
            return FALSE;
        }
        o = json_object_new();
        json_object_set_string_member(o, "device", "cdrom");
        json_object_set_string_member(o, "format", "raw");
        if (json_object_get_size(c) == 0) {
            json_object_set_string_member(o, "kind", "empty");
        } else {
            g_autofree char *path = dv_engine_vm_iso_path(engine, actor, host, c, prefix, error);
            if (path == NULL) {
                json_object_unref(o);
                return FALSE;
            }
            json_object_set_string_member(o, "kind", "existing");
            json_object_set_string_member(o, "path", path);
        }
        json_array_add_object_element(disks, o);
    }
    return TRUE;
}

/* A host named in its URI (qemu+tcp://HOST/...): reached over the
 * network, where libvirt passes no descriptor. */
static gboolean
dv_engine_vm_host_is_remote(JsonObject *host)
{
    g_autoptr(GUri) uri = g_uri_parse(dv_json_get_string(host, "uri", ""),
                                      G_URI_FLAGS_ENCODED | G_URI_FLAGS_NON_DNS, NULL);
    const char *name = uri != NULL ? g_uri_get_host(uri) : NULL;

    return name != NULL && name[0] != '\0';
}

/* The domain spec (dv_virt_domain_xml_new()) of a VM row @vm and its
 * create job's @params; @xml_disks (borrowed) the disks as made, or NULL
 * for their planned paths (checked before the job). */
static JsonObject *
dv_engine_vm_domain_spec(JsonObject *vm, JsonObject *params, const char *name, JsonArray *xml_disks)
{
    JsonObject *spec = json_object_new();
    g_autoptr(JsonArray) planned = NULL;

    json_object_set_string_member(spec, "name", name);
    json_object_set_string_member(spec, "uuid", dv_json_get_string(params, "uuid", ""));
    json_object_set_string_member(spec, "domain_type",
                                  dv_json_get_string(params, "domain_type", "qemu"));
    json_object_set_int_member(spec, "vcpus", dv_json_get_int(vm, "vcpus", 1));
    json_object_set_int_member(spec, "memory_mib", dv_json_get_int(vm, "memory_mib", 64));
    json_object_set_int_member(spec, "generation", dv_json_get_int(vm, "generation", 1));
    json_object_set_boolean_member(spec, "secure_boot", dv_json_get_bool(vm, "secure_boot", FALSE));
    if (dv_json_get_string(vm, "description", NULL) != NULL)
        json_object_set_string_member(spec, "description",
                                      dv_json_get_string(vm, "description", NULL));
    if (xml_disks == NULL) {
        JsonArray *disks = dv_json_get_array(params, "disks");
        planned = json_array_new();
        for (guint i = 0; disks != NULL && i < json_array_get_length(disks); i++) {
            JsonObject *d = json_array_get_object_element(disks, i);
            JsonObject *xd = json_object_new();
            const char *kind = dv_json_get_string(d, "kind", "");
            json_array_add_object_element(planned, xd);
            json_object_set_string_member(xd, "format", dv_json_get_string(d, "format", "raw"));
            if (dv_json_get_string(d, "device", NULL) != NULL)
                json_object_set_string_member(xd, "device", dv_json_get_string(d, "device", NULL));
            if (g_strcmp0(kind, "existing") == 0) {
                json_object_set_string_member(xd, "path", dv_json_get_string(d, "path", ""));
            } else if (g_strcmp0(kind, "empty") != 0) {
                g_autofree char *vpath = g_build_filename(dv_json_get_string(d, "pool_path", "/"),
                                                          dv_json_get_string(d, "name", ""), NULL);
                json_object_set_string_member(xd, "path", vpath);
            }
        }
        xml_disks = planned;
    }
    json_object_set_array_member(spec, "disks", json_array_ref(xml_disks));
    json_object_set_array_member(spec, "networks",
                                 json_array_ref(dv_json_get_array(params, "networks")));
    /* A job accepted before graphics existed made a VM without a display. */
    json_object_set_string_member(spec, "graphics", dv_json_get_string(params, "graphics", "none"));
    if (dv_json_get_string(params, "graphics_listen", NULL) != NULL)
        json_object_set_string_member(spec, "graphics_listen",
                                      dv_json_get_string(params, "graphics_listen", NULL));
    if (dv_json_get_array(params, "boot_order") != NULL)
        json_object_set_array_member(spec, "boot_order",
                                     json_array_ref(dv_json_get_array(params, "boot_order")));
    return spec;
}

static JsonArray *
dv_engine_vm_networks(DvEngine *engine, JsonObject *host, JsonArray *nets, GError **error)
{
    g_autoptr(JsonArray) out = json_array_new();
    const char *host_id = dv_json_get_string(host, "id", "");

    if (nets == NULL)
        return g_steal_pointer(&out);
    if (json_array_get_length(nets) > DV_VM_MAX_NETWORKS) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "networks", "networks: at most %d",
                           DV_VM_MAX_NETWORKS);
        return NULL;
    }
    for (guint i = 0; i < json_array_get_length(nets); i++) {
        JsonNode *node = json_array_get_element(nets, i);
        g_autofree char *f = g_strdup_printf("networks[%u]", i);
        g_autofree char *path = g_strdup_printf("networks[%u].", i);
        JsonObject *n;
        JsonObject *o;
        const char *network;
        const char *bridge;

        /* A plain string names a network (templates store them so). */
        if (JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING) {
            network = json_node_get_string(node);
            bridge = NULL;
        } else if (JSON_NODE_HOLDS_OBJECT(node)) {
            n = json_node_get_object(node);
            if (!dv_json_check_fields(n, dv_nic_fields, path, error))
                return NULL;
            network = dv_json_get_string(n, "network", NULL);
            bridge = dv_json_get_string(n, "bridge", NULL);
        } else {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f,
                               "%s: must be an object {\"network\": NAME} or {\"bridge\": NAME}", f);
            return NULL;
        }
        if ((network == NULL) == (bridge == NULL)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f,
                               "%s: give exactly one of network or bridge", f);
            return NULL;
        }
        o = json_object_new();
        json_array_add_object_element(out, o);
        if (network != NULL) {
            g_autoptr(JsonObject) row = NULL;
            g_autoptr(GError) local = NULL;
            if (!dv_validate_name(f, network, error))
                return NULL;
            row = dv_engine_find_on_host(engine, &dv_table_networks, host_id, "name", network, &local);
            if (row == NULL) {
                dv_set_field_error(error, DV_ERROR_NOT_FOUND, f, "%s: host %s has no network '%s'",
                                   f, dv_json_get_string(host, "name", ""), network);
                return NULL;
            }
            json_object_set_string_member(o, "network", network);
        } else {
            if (!dv_validate_name(f, bridge, error))
                return NULL;
            json_object_set_string_member(o, "bridge", bridge);
        }
    }
    return g_steal_pointer(&out);
}

/* Test hook: with DV_DEBUG_JOBS=1 and DV_DEBUG_VM_CREATE_PAUSE=<point> in
 * droverd's environment, VM creation says "vm.create: paused at <point>"
 * on stderr and waits there (30 s) so a test can kill droverd at that
 * very point: "row" (the VM row written, its job not yet, both in one
 * transaction).  Off unless both variables are set. */
static void
dv_engine_vm_debug_pause(const char *point)
{
    if (!dv_core_debug_enabled() || g_strcmp0(g_getenv("DV_DEBUG_VM_CREATE_PAUSE"), point) != 0)
        return;
    g_printerr("vm.create: paused at %s\n", point);
    g_usleep(30 * G_USEC_PER_SEC);
}

/* --- quota (docs/ACCESS.md, "Quotas") -----------------------------------------
 *
 * A VM made by an actor with an authorization context is charged to the
 * binding that allows it vm.create on the chosen host: vms 1, its vCPUs,
 * memory and disk capacity (GiB, rounded up).  The reservation is made in
 * the transaction that writes the row and accepts the job, and recorded
 * in the row's spec.quota, so the row's removal gives back exactly what
 * was taken, in the transaction that removes it. */

static void
dv_engine_vm_quota_amount(JsonObject *q, DvAuthzAmount *ret)
{
    ret->vms = dv_json_get_int(q, "vms", 0);
    ret->vcpus = dv_json_get_int(q, "vcpus", 0);
    ret->memory_mib = dv_json_get_int(q, "memory_mib", 0);
    ret->storage_gib = dv_json_get_int(q, "storage_gib", 0);
}

/* {binding_id, user_id, vms, vcpus, memory_mib, storage_gib} for a new VM
 * on @host, or NULL with nothing to charge (an actor without context);
 * the actor not allowed vm.create there: the error of dv_authz_check(). */
static gboolean
dv_engine_vm_quota_plan(DvEngine *engine, const DvActor *actor, JsonObject *host, gint64 vcpus,
                        gint64 mem, JsonArray *disks, JsonObject **ret_quota, GError **error)
{
    const DvAuthzContext *ctx = dv_core_actor_authz(actor);
    const char *group_id = dv_json_get_string(host, "host_group_id", NULL);
    g_auto(GStrv) path = NULL;
    DvAuthzObject o = { .kind = "vm" };
    const char *binding;
    JsonObject *q;
    guint64 bytes = 0;

    *ret_quota = NULL;
    if (ctx == NULL)
        return TRUE;
    if (group_id != NULL) {
        path = dv_authz_host_group_path(dv_core(engine)->store, group_id, error);
        if (path == NULL)
            return FALSE;
    }
    o.host_group_path = (const char *const *)path;
    o.owner_id = dv_authz_context_get_user_id(ctx);
    if (!dv_authz_check(ctx, "vm.create", &o, error))
        return FALSE;
    binding = dv_authz_decide_binding(ctx, "vm.create", &o);
    if (binding == NULL) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_INTERNAL, "vm.create: allowed by no binding");
        return FALSE;
    }
    for (guint i = 0; i < json_array_get_length(disks); i++)
        bytes += (guint64)MAX(
            dv_json_get_int(json_array_get_object_element(disks, i), "capacity", 0), 0);
    q = json_object_new();
    json_object_set_string_member(q, "binding_id", binding);
    json_object_set_string_member(q, "user_id", dv_authz_context_get_user_id(ctx));
    json_object_set_int_member(q, "vms", 1);
    json_object_set_int_member(q, "vcpus", vcpus);
    json_object_set_int_member(q, "memory_mib", mem);
    json_object_set_int_member(q, "storage_gib", (gint64)((bytes + (1 << 30) - 1) >> 30));
    *ret_quota = q;
    return TRUE;
}

static gboolean
dv_engine_vm_row_delete_txn(DvStore *store, gpointer user_data, GError **error)
{
    JsonObject *vm = user_data;
    return dv_store_delete(store, &dv_table_vms, dv_json_get_string(vm, "id", ""), error) &&
           dv_core_vm_quota_release(store, vm, error);
}

/* Removes @vm's row and gives its quota back, together. */
static gboolean
dv_engine_vm_row_delete(DvEngine *engine, const char *vm_id, GError **error)
{
    g_autoptr(JsonObject) vm = dv_store_get(dv_core(engine)->store, &dv_table_vms, vm_id, error);
    if (vm == NULL)
        return FALSE;
    return dv_store_transaction(dv_core(engine)->store, dv_engine_vm_row_delete_txn, vm, error);
}

static gboolean
dv_engine_vm_create_txn(DvStore *store, gpointer user_data, GError **error)
{
    JsonObject *rec = user_data;
    JsonObject *q = dv_json_get_object(dv_json_get_object(rec, "spec"), "quota");

    if (q != NULL) {
        DvAuthzAmount amount;
        dv_engine_vm_quota_amount(q, &amount);
        if (!dv_authz_quota_reserve(store, dv_json_get_string(q, "binding_id", ""),
                                    dv_json_get_string(q, "user_id", ""), &amount, error))
            return FALSE;
    }
    if (!dv_store_insert(store, &dv_table_vms, rec, error))
        return FALSE;
    dv_engine_vm_debug_pause("row");
    return TRUE;
}

JsonObject *
dv_engine_vm_create(DvEngine *engine, JsonObject *body, const DvActor *actor, GError **error)
{
    static const char *const graphics_types[] = { "vnc", "spice", "none", NULL };
    g_autoptr(JsonObject) host = NULL;
    g_autoptr(JsonObject) tmpl = NULL;
    g_autoptr(JsonObject) rec = json_object_new();
    g_autoptr(JsonObject) params = json_object_new();
    g_autoptr(JsonArray) disks = NULL;
    g_autoptr(JsonArray) nets = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) quota = NULL;
    g_autoptr(GError) local = NULL;
    g_autofree char *id = g_uuid_string_random();
    g_autofree char *uuid = g_uuid_string_random();
    const char *name = dv_json_get_string(body, "name", NULL);
    const char *host_ref = dv_json_get_string(body, "host", NULL);
    const char *group_ref = dv_json_get_string(body, "host_group", NULL);
    const char *tmpl_ref = dv_json_get_string(body, "template", NULL);
    JsonArray *net_in = dv_json_get_array(body, "networks");
    gint64 vcpus, mem, gen;
    gboolean sb;
    gint64 now = dv_store_now();

    if (!dv_json_check_fields(body, dv_vm_fields, NULL, error) ||
        !dv_validate_name("name", name, error))
        return NULL;
    if (tmpl_ref != NULL) {
        /* A template the caller may not read is as absent as an unknown one. */
        tmpl = dv_core_resolve_for(engine, actor, DV_KIND_TEMPLATE, tmpl_ref, "template", error);
        if (tmpl == NULL)
            return NULL;
    }
    vcpus = dv_json_get_int(body, "vcpus", dv_json_get_int(tmpl, "vcpus", 1));
    mem = dv_json_get_int(body, "memory_mib", dv_json_get_int(tmpl, "memory_mib", -1));
    gen = dv_json_get_int(body, "generation", dv_json_get_int(tmpl, "generation", 1));
    if (!json_object_has_member(body, "memory_mib") && tmpl == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "memory_mib",
                           "memory_mib: is required (or give a template)");
        return NULL;
    }
    if (!dv_validate_range("vcpus", vcpus, 1, 512, error) ||
        !dv_validate_range("memory_mib", mem, 16, 4194304, error) ||
        !dv_validate_range("generation", gen, 1, 2, error))
        return NULL;
    sb = dv_json_get_bool(body, "secure_boot",
                          tmpl != NULL && !json_object_has_member(body, "generation")
                              ? dv_json_get_bool(tmpl, "secure_boot", gen == 2)
                              : gen == 2);
    if (gen == 1 && sb) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "secure_boot",
                           "secure_boot: needs generation 2 (UEFI)");
        return NULL;
    }
    if (json_object_has_member(body, "description") &&
        !dv_validate_text("description", dv_json_get_string(body, "description", NULL),
                          DV_DESCRIPTION_MAX, error))
        return NULL;
    if (!g_strv_contains(graphics_types, dv_json_get_string(body, "graphics", "vnc"))) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "graphics",
                           "graphics: must be vnc (the default), spice or none");
        return NULL;
    }
    if ((host_ref == NULL) == (group_ref == NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "host",
                           "host: give exactly one of host or host_group");
        return NULL;
    }
    if (host_ref != NULL) {
        host = dv_core_resolve(engine, DV_KIND_HOST, host_ref, "host", error);
        if (host == NULL || !dv_engine_vm_check_host_usable(host, error))
            return NULL;
        if (dv_json_get_int(host, "memory_mib", 0) > 0 && mem > dv_json_get_int(host, "memory_mib", 0)) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "memory_mib",
                               "memory_mib: host %s has only %" G_GINT64_FORMAT " MiB of memory",
                               dv_json_get_string(host, "name", ""), dv_json_get_int(host, "memory_mib", 0));
            return NULL;
        }
    } else {
        host = dv_engine_place(engine, group_ref, mem, error);
        if (host == NULL)
            return NULL;
    }
    {
        g_autoptr(JsonObject) clash = dv_engine_find_on_host(engine, &dv_table_vms,
                                                             dv_json_get_string(host, "id", ""),
                                                             "name", name, &local);
        if (clash != NULL) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "name",
                               "name: host %s already has a VM named '%s'",
                               dv_json_get_string(host, "name", ""), name);
            return NULL;
        }
        g_clear_error(&local);
    }
    disks =
        dv_engine_vm_disks(engine, actor, host, name, dv_json_get_array(body, "disks"), error);
    if (disks == NULL)
        return NULL;
    if (tmpl != NULL && dv_json_get_string(tmpl, "disk_volume", NULL) != NULL) {
        /* The template's image becomes the first disk: a qcow2 overlay on
         * the library copy when the share is on this host. */
        g_autoptr(JsonObject) share =
            dv_store_get(dv_core(engine)->store, &dv_table_library_shares,
                         dv_json_get_string(tmpl, "library_share_id", ""), error);
        g_autofree char *backing = NULL;
        g_autoptr(JsonObject) vol = NULL;
        JsonObject *o;
        if (share == NULL)
            return NULL;
        if (g_strcmp0(dv_json_get_string(share, "host_id", ""), dv_json_get_string(host, "id", "")) != 0) {
            dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "template",
                               "template: its image is in library share '%s', which is not on host %s; "
                               "register a library share on that host",
                               dv_json_get_string(share, "name", ""), dv_json_get_string(host, "name", ""));
            return NULL;
        }
        backing = g_build_filename(dv_json_get_string(share, "path", ""),
                                   dv_json_get_string(tmpl, "disk_volume", ""), NULL);
        vol = dv_engine_find_on_host(engine, &dv_table_volumes, dv_json_get_string(host, "id", ""),
                                     "path", backing, &local);
        if (vol == NULL) {
            dv_set_field_error(error, DV_ERROR_NOT_FOUND, "template",
                               "template: its image %s is not on host %s", backing,
                               dv_json_get_string(host, "name", ""));
            return NULL;
        }
        o = json_object_new();
        json_object_set_string_member(o, "kind", "overlay");
        json_object_set_string_member(o, "pool", dv_json_get_string(share, "pool_name", ""));
        json_object_set_string_member(o, "pool_path", dv_json_get_string(share, "path", ""));
        {
            g_autofree char *vname = g_strdup_printf("%s-root.qcow2", name);
            json_object_set_string_member(o, "name", vname);
        }
        json_object_set_string_member(o, "format", "qcow2");
        json_object_set_string_member(o, "backing", backing);
        json_object_set_string_member(o, "backing_format", dv_json_get_string(vol, "format", "qcow2"));
        json_object_set_int_member(o, "capacity", dv_json_get_int(vol, "capacity", 0));
        {
            /* First disk boots. */
            g_autoptr(JsonArray) all = json_array_new();
            json_array_add_object_element(all, o);
            for (guint i = 0; i < json_array_get_length(disks); i++)
                json_array_add_element(all, json_array_dup_element(disks, i));
            g_clear_pointer(&disks, json_array_unref);
            disks = g_steal_pointer(&all);
        }
    }
    /* The spec's drives, else the template's. */
    if (!dv_engine_vm_cdroms(engine, actor, host,
                             json_object_has_member(body, "cdroms") || tmpl == NULL
                                 ? dv_json_get_array(body, "cdroms")
                                 : dv_json_get_array(tmpl, "cdroms"),
                             disks, error))
        return NULL;
    if (net_in == NULL && tmpl != NULL)
        net_in = dv_json_get_array(tmpl, "networks");
    nets = dv_engine_vm_networks(engine, host, net_in, error);
    if (nets == NULL)
        return NULL;
    if (!dv_engine_vm_quota_plan(engine, actor, host, vcpus, mem, disks, &quota, error))
        return NULL;

    json_object_set_string_member(rec, "id", id);
    json_object_set_string_member(rec, "name", name);
    json_object_set_string_member(rec, "host_id", dv_json_get_string(host, "id", ""));
    json_object_set_null_member(rec, "uuid");
    json_object_set_string_member(rec, "state", "creating");
    json_object_set_int_member(rec, "vcpus", vcpus);
    json_object_set_int_member(rec, "memory_mib", mem);
    json_object_set_int_member(rec, "generation", gen);
    json_object_set_boolean_member(rec, "secure_boot", sb);
    if (tmpl != NULL)
        json_object_set_string_member(rec, "template_id", dv_json_get_string(tmpl, "id", ""));
    else
        json_object_set_null_member(rec, "template_id");
    json_object_set_string_member(rec, "origin", "drover");
    {
        JsonObject *spec = json_object_new();
        json_object_set_array_member(spec, "disks", json_array_ref(disks));
        json_object_set_array_member(spec, "networks", json_array_ref(nets));
        if (quota != NULL)
            json_object_set_object_member(spec, "quota", g_steal_pointer(&quota));
        json_object_set_object_member(rec, "spec", spec);
    }
    if (actor != NULL && actor->id != NULL)
        json_object_set_string_member(rec, "owner_id", actor->id);
    else if (dv_core_actor_authz(actor) != NULL)
        json_object_set_string_member(rec, "owner_id",
                                      dv_authz_context_get_user_id(dv_core_actor_authz(actor)));
    else
        json_object_set_null_member(rec, "owner_id");
    if (dv_json_get_string(body, "description", NULL) != NULL)
        json_object_set_string_member(rec, "description", dv_json_get_string(body, "description", NULL));
    else
        json_object_set_null_member(rec, "description");
    json_object_set_int_member(rec, "created_at", now);
    json_object_set_int_member(rec, "updated_at", now);

    json_object_set_string_member(params, "uuid", uuid);
    json_object_set_string_member(params, "domain_type", dv_core_host_domain_type(host));
    json_object_set_boolean_member(params, "start", dv_json_get_bool(body, "start", FALSE));
    json_object_set_array_member(params, "disks", json_array_ref(disks));
    json_object_set_array_member(params, "networks", json_array_ref(nets));
    json_object_set_string_member(params, "graphics", dv_json_get_string(body, "graphics", "vnc"));
    /* A remote host's display listens where its qemu.conf says
     * (vnc_listen): droverd reaches it over TCP there, 127.0.0.1 of a
     * remote host would be out of reach (docs/VIRT.md). */
    if (dv_engine_vm_host_is_remote(host))
        json_object_set_string_member(params, "graphics_listen", "");
    if (dv_json_get_array(body, "boot_order") != NULL)
        json_object_set_array_member(params, "boot_order",
                                     json_array_ref(dv_json_get_array(body, "boot_order")));
    /* The domain definition the job will write, checked now with the
     * volumes' planned paths: a spec libvirt would refuse is refused
     * before any volume is made. */
    {
        g_autoptr(JsonObject) spec = dv_engine_vm_domain_spec(rec, params, name, NULL);
        g_autofree char *xml = dv_virt_domain_xml_new(spec, error);
        if (xml == NULL)
            return NULL;
    }

    /* The row reserves the name now; the job fills it in or removes it.
     * Row and job are written in one transaction: a crash or a failed
     * write never leaves a "creating" row that no job owns. */
    {
        DvJobRequest req = {
            .kind = "vm.create",
            .target_type = "vm",
            .target_id = id,
            .target_name = name,
            .host_id = dv_json_get_string(host, "id", ""),
            .params = params,
            .created_by = dv_actor_get_name(actor),
        };
        job = dv_job_manager_submit_with(dv_core(engine)->jobs, &req, dv_engine_vm_create_txn, rec,
                                         error);
    }
    return g_steal_pointer(&job);
}

/* Keeps the volume inventory in step with what a job made or removed,
 * without a full refresh of the host. */
static void
dv_engine_volume_remember(DvEngine *engine, const char *host_id, const char *pool_name,
                          JsonObject *vol)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonObject) pool = dv_engine_find_on_host(engine, &dv_table_pools, host_id, "name",
                                                        pool_name, &local);
    g_autoptr(JsonObject) row = json_object_new();
    g_autofree char *id = g_uuid_string_random();

    if (pool == NULL)
        return;
    json_object_set_string_member(row, "id", id);
    json_object_set_string_member(row, "pool_id", dv_json_get_string(pool, "id", ""));
    json_object_set_string_member(row, "host_id", host_id);
    json_object_set_string_member(row, "name", dv_json_get_string(vol, "name", ""));
    json_object_set_string_member(row, "vkey", dv_json_get_string(vol, "key", NULL));
    json_object_set_string_member(row, "path", dv_json_get_string(vol, "path", NULL));
    json_object_set_string_member(row, "format", dv_json_get_string(vol, "format", NULL));
    json_object_set_int_member(row, "capacity", dv_json_get_int(vol, "capacity", 0));
    json_object_set_int_member(row, "allocation", dv_json_get_int(vol, "allocation", 0));
    /* Already known (a resumed job): fine. */
    if (!dv_store_insert(dv_core(engine)->store, &dv_table_volumes, row, &local) &&
        !g_error_matches(local, DV_ERROR, DV_ERROR_CONFLICT))
        g_warning("cannot record volume %s: %s", dv_json_get_string(vol, "path", ""), local->message);
}

static void
dv_engine_volumes_forget(DvEngine *engine, const char *host_id, JsonObject *vm)
{
    JsonArray *disks = dv_json_get_array(dv_json_get_object(vm, "spec"), "disks");
    g_autoptr(JsonArray) vols = NULL;

    if (disks == NULL)
        return;
    vols = dv_core_list_all(engine, &dv_table_volumes, "host_id", host_id, NULL);
    for (guint i = 0; vols != NULL && i < json_array_get_length(vols); i++) {
        JsonObject *v = json_array_get_object_element(vols, i);
        for (guint k = 0; k < json_array_get_length(disks); k++) {
            JsonObject *d = json_array_get_object_element(disks, k);
            if (g_strcmp0(dv_json_get_string(d, "device", "disk"), "disk") == 0 &&
                g_strcmp0(dv_json_get_string(d, "source", NULL), dv_json_get_string(v, "path", "")) == 0)
                dv_store_delete(dv_core(engine)->store, &dv_table_volumes,
                                dv_json_get_string(v, "id", ""), NULL);
        }
    }
}

static const DvJobStep dv_vm_create_steps[] = {
    { "create volumes", 40 },
    { "define domain", 30 },
    { "start", 20 },
    { "save", 10 },
};

/* Undoes what a failed create made, so nothing half-done stays behind. */
static void
dv_engine_vm_create_cleanup(DvEngine *engine, DvVirtHost *vh, const char *vm_id, const char *uuid,
                            gboolean defined, GPtrArray *created)
{
    g_autoptr(GError) local = NULL;

    /* The host cannot be reached: what it holds stays there (a refresh
     * shows it), but the row goes and frees the name. */
    if (vh == NULL)
        created = NULL;
    if (vh != NULL && defined && !dv_virt_domain_delete(vh, uuid, FALSE, NULL, &local) &&
        !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
        g_warning("cleanup: cannot remove domain %s: %s", uuid, local->message);
    g_clear_error(&local);
    for (guint i = 0; created != NULL && i < created->len; i++) {
        DvFilter f = { "path", DV_FILTER_EQ, g_ptr_array_index(created, i) };
        dv_store_delete_matching(dv_core(engine)->store, &dv_table_volumes, &f, 1, NULL);
        if (!dv_virt_volume_delete_by_path(vh, g_ptr_array_index(created, i), NULL, &local) &&
            !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
            g_warning("cleanup: cannot remove volume %s: %s", (char *)g_ptr_array_index(created, i),
                      local->message);
        g_clear_error(&local);
    }
    if (!dv_engine_vm_row_delete(engine, vm_id, &local) &&
        !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
        g_warning("cleanup: cannot remove VM row %s: %s", vm_id, local->message);
}

static gboolean
dv_engine_vm_create_run(DvEngine *engine, DvJob *job, DvVirtHost *vh, JsonObject *vm,
                        GPtrArray *created, gboolean *defined, GError **error)
{
    JsonObject *params = dv_job_get_params(job);
    JsonArray *disks = dv_json_get_array(params, "disks");
    GCancellable *c = dv_job_get_cancellable(job);
    g_autoptr(JsonObject) spec = NULL;
    g_autoptr(JsonArray) xml_disks = json_array_new();
    g_autoptr(JsonObject) dom = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *got_uuid = NULL;
    guint n = disks != NULL ? json_array_get_length(disks) : 0;

    if (!dv_job_step(job, "create volumes", error))
        return FALSE;
    for (guint i = 0; i < n; i++) {
        JsonObject *d = json_array_get_object_element(disks, i);
        const char *kind = dv_json_get_string(d, "kind", "");
        JsonObject *xd = json_object_new();
        json_array_add_object_element(xml_disks, xd);
        json_object_set_string_member(xd, "format", dv_json_get_string(d, "format", "raw"));
        if (dv_json_get_string(d, "device", NULL) != NULL)
            json_object_set_string_member(xd, "device", dv_json_get_string(d, "device", NULL));
        if (g_strcmp0(kind, "existing") == 0) {
            json_object_set_string_member(xd, "path", dv_json_get_string(d, "path", ""));
        } else if (g_strcmp0(kind, "empty") == 0) {
            /* An empty CD-ROM drive: nothing to make. */
        } else {
            g_autoptr(JsonObject) vol = NULL;
            g_autoptr(GError) local = NULL;
            g_autofree char *vpath = g_build_filename(dv_json_get_string(d, "pool_path", "/"),
                                                      dv_json_get_string(d, "name", ""), NULL);
            if (g_strcmp0(kind, "overlay") == 0)
                vol = dv_virt_volume_create_overlay(vh, dv_json_get_string(d, "pool", ""),
                                                    dv_json_get_string(d, "name", ""),
                                                    dv_json_get_string(d, "backing", ""),
                                                    dv_json_get_string(d, "backing_format", "qcow2"),
                                                    (guint64)dv_json_get_int(d, "capacity", 0), c,
                                                    &local);
            else
                vol = dv_virt_volume_create(vh, dv_json_get_string(d, "pool", ""),
                                            dv_json_get_string(d, "name", ""),
                                            (guint64)dv_json_get_int(d, "capacity", 0),
                                            dv_json_get_string(d, "format", "qcow2"), c, &local);
            if (vol == NULL) {
                /* A resumed job finds the volume it made before the crash. */
                if (g_error_matches(local, DV_ERROR, DV_ERROR_CONFLICT) && dv_job_get_attempt(job) > 1) {
                    g_clear_error(&local);
                    vol = dv_virt_volume_lookup_by_path(vh, vpath, c, &local);
                }
                if (vol == NULL) {
                    g_propagate_prefixed_error(error, g_steal_pointer(&local), "disks[%u]: ", i);
                    return FALSE;
                }
            }
            g_ptr_array_add(created, g_strdup(dv_json_get_string(vol, "path", vpath)));
            dv_engine_volume_remember(engine, dv_json_get_string(vm, "host_id", ""),
                                      dv_json_get_string(d, "pool", ""), vol);
            json_object_set_string_member(xd, "path", dv_json_get_string(vol, "path", vpath));
        }
        dv_job_step_progress(job, (double)(i + 1) / n);
    }

    if (!dv_job_step(job, "define domain", error))
        return FALSE;
    spec = dv_engine_vm_domain_spec(vm, params, dv_json_get_string(vm, "name", ""), xml_disks);
    xml = dv_virt_domain_xml_new(spec, error);
    if (xml == NULL)
        return FALSE;
    got_uuid = dv_virt_domain_define(vh, xml, c, error);
    if (got_uuid == NULL)
        return FALSE;
    *defined = TRUE;

    if (dv_json_get_bool(params, "start", FALSE)) {
        if (!dv_job_step(job, "start", error))
            return FALSE;
        if (!dv_virt_domain_start(vh, got_uuid, c, error)) {
            g_autoptr(GError) local = NULL;
            /* Already running after a resume is fine. */
            if (error != NULL && g_error_matches(*error, DV_ERROR, DV_ERROR_CONFLICT) &&
                dv_job_get_attempt(job) > 1)
                g_clear_error(error);
            else
                return FALSE;
        }
    }
    if (!dv_job_step(job, "save", error))
        return FALSE;
    dom = dv_virt_domain_get(vh, got_uuid, c, error);
    if (dom == NULL)
        return FALSE;
    return dv_core_vm_sync(engine, vm, dom, error);
}

typedef gboolean (*DvVmMakeFunc)(DvEngine *engine, DvJob *job, DvVirtHost *vh, JsonObject *vm,
                                 GPtrArray *created, gboolean *defined, GError **error);

/* The frame of a job that makes a VM (create, clone): the row written by
 * the request in state "creating", @run making its volumes and domain,
 * every failure rolling all of it back (a failed job leaves no VM in
 * "creating" behind; start-up recovery settles any that a failed write
 * kept).  The result {id, name, uuid} (owned) or NULL. */
static JsonObject *
dv_engine_vm_make_job(DvEngine *engine, DvJob *job, const DvJobStep *steps, guint n_steps,
                      DvVmMakeFunc run, GError **error)
{
    const char *vm_id = dv_job_get_target_id(job);
    JsonObject *params = dv_job_get_params(job);
    g_autoptr(JsonObject) vm = NULL;
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(GPtrArray) created = g_ptr_array_new_with_free_func(g_free);
    JsonObject *result;
    gboolean defined = FALSE;

    dv_job_set_steps(job, steps, n_steps);
    vm = dv_store_get(dv_core(engine)->store, &dv_table_vms, vm_id, error);
    if (vm == NULL)
        return NULL;
    vh = dv_core_virt_host_by_id(engine, dv_json_get_string(vm, "host_id", ""), error);
    if (vh == NULL) {
        dv_engine_vm_create_cleanup(engine, NULL, vm_id, NULL, FALSE, created);
        return NULL;
    }
    if (!run(engine, job, vh, vm, created, &defined, error)) {
        /* On a resume the domain may exist from the first attempt. */
        dv_engine_vm_create_cleanup(engine, vh, vm_id, dv_json_get_string(params, "uuid", ""),
                                    defined || dv_job_get_attempt(job) > 1, created);
        return NULL;
    }
    result = json_object_new();
    json_object_set_string_member(result, "id", vm_id);
    json_object_set_string_member(result, "name", dv_json_get_string(vm, "name", ""));
    json_object_set_string_member(result, "uuid", dv_json_get_string(params, "uuid", ""));
    return result;
}

static gboolean
dv_engine_vm_create_job(DvJob *job, gpointer user_data, GError **error)
{
    g_autoptr(JsonObject) result =
        dv_engine_vm_make_job(user_data, job, dv_vm_create_steps, G_N_ELEMENTS(dv_vm_create_steps),
                              dv_engine_vm_create_run, error);
    if (result == NULL)
        return FALSE;
    dv_job_set_result(job, result);
    return TRUE;
}

/* --- power ------------------------------------------------------------------- */

static JsonObject *
dv_engine_vm_ready(DvEngine *engine, const char *vm_ref, GError **error)
{
    g_autoptr(JsonObject) vm = dv_core_resolve(engine, DV_KIND_VM, vm_ref, NULL, error);
    const char *state;
    if (vm == NULL)
        return NULL;
    state = dv_json_get_string(vm, "state", "");
    if (g_strcmp0(state, "creating") == 0 || g_strcmp0(state, "missing") == 0 ||
        dv_json_get_string(vm, "uuid", NULL) == NULL) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, NULL, "VM %s is %s",
                           dv_json_get_string(vm, "name", ""),
                           g_strcmp0(state, "missing") == 0 ? "missing from its host" : "still being created");
        return NULL;
    }
    return g_steal_pointer(&vm);
}

JsonObject *
dv_engine_vm_action(DvEngine *engine, const char *vm_ref, const char *action, const DvActor *actor,
                    GError **error)
{
    return dv_engine_vm_power(engine, vm_ref, action, NULL, actor, error);
}

JsonObject *
dv_engine_vm_power(DvEngine *engine, const char *vm_ref, const char *action, JsonObject *body,
                   const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) vm = dv_engine_vm_ready(engine, vm_ref, error);
    g_autoptr(JsonObject) params = NULL;
    g_autofree char *kind = NULL;
    const char *state;

    if (vm == NULL)
        return NULL;
    if (body != NULL && json_object_get_size(body) > 0) {
        gint64 timeout;
        if (g_strcmp0(action, "shutdown") != 0) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL, "body: %s takes no body",
                               action);
            return NULL;
        }
        if (!dv_json_check_fields(body, dv_vm_shutdown_fields, NULL, error))
            return NULL;
        timeout = dv_json_get_int(body, "timeout", DV_VM_SHUTDOWN_TIMEOUT_MS / 1000);
        if (!dv_validate_range("timeout", timeout, 1, 3600, error))
            return NULL;
        params = json_object_new();
        json_object_set_int_member(params, "timeout", timeout);
    }
    state = dv_json_get_string(vm, "state", "");
    if (g_strcmp0(action, "start") == 0) {
        if (g_strcmp0(state, "running") == 0) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, NULL, "VM %s is already running",
                               dv_json_get_string(vm, "name", ""));
            return NULL;
        }
    } else if (g_strcmp0(action, "shutdown") == 0 || g_strcmp0(action, "stop") == 0) {
        if (g_strcmp0(state, "shutoff") == 0) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, NULL, "VM %s is already shut off",
                               dv_json_get_string(vm, "name", ""));
            return NULL;
        }
    } else if (g_strcmp0(action, "reboot") == 0 || g_strcmp0(action, "reset") == 0) {
        if (g_strcmp0(state, "running") != 0) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, NULL,
                               "VM %s is %s; only a running VM can %s",
                               dv_json_get_string(vm, "name", ""), state, action);
            return NULL;
        }
    } else {
        dv_set_field_error(error, DV_ERROR_NOT_FOUND, NULL, "unknown VM action '%s'", action);
        return NULL;
    }
    kind = g_strdup_printf("vm.%s", action);
    return dv_vm_submit(engine, kind, vm, params, actor, error);
}

static gboolean
dv_engine_vm_power_job(DvJob *job, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    const char *vm_id = dv_job_get_target_id(job);
    const char *kind = json_object_get_string_member(dv_job_get_params(job), "action");
    GCancellable *c = dv_job_get_cancellable(job);
    static const DvJobStep steps[] = { { "power", 80 }, { "save", 20 } };
    g_autoptr(JsonObject) vm = NULL;
    g_autoptr(JsonObject) dom = NULL;
    g_autoptr(DvVirtHost) vh = NULL;
    const char *uuid;
    gboolean ok;

    dv_job_set_steps(job, steps, G_N_ELEMENTS(steps));
    vm = dv_store_get(dv_core(engine)->store, &dv_table_vms, vm_id, error);
    if (vm == NULL)
        return FALSE;
    uuid = dv_json_get_string(vm, "uuid", "");
    vh = dv_core_virt_host_by_id(engine, dv_json_get_string(vm, "host_id", ""), error);
    if (vh == NULL || !dv_job_step(job, "power", error))
        return FALSE;
    if (g_strcmp0(kind, "start") == 0) {
        g_autoptr(GError) local = NULL;
        /* The before-start hooks: a pooled catalog machine moves onto its
         * catalog's current image first. */
        if (!dv_core_run_vm_before_start(engine, vm, c, error))
            return FALSE;
        ok = dv_virt_domain_start(vh, uuid, c, &local);
        /* Already running (a resumed job, or started meanwhile): done. */
        if (!ok && g_error_matches(local, DV_ERROR, DV_ERROR_CONFLICT)) {
            g_autoptr(JsonObject) now = dv_virt_domain_get(vh, uuid, c, NULL);
            ok = now != NULL && g_strcmp0(dv_json_get_string(now, "state", ""), "running") == 0;
        }
        if (!ok)
            g_propagate_error(error, g_steal_pointer(&local));
    } else if (g_strcmp0(kind, "stop") == 0) {
        ok = dv_virt_domain_destroy(vh, uuid, c, error);
    } else if (g_strcmp0(kind, "reboot") == 0) {
        ok = dv_virt_domain_reboot(vh, uuid, c, error);
    } else if (g_strcmp0(kind, "reset") == 0) {
        ok = dv_virt_domain_reset(vh, uuid, c, error);
    } else {
        gint64 timeout_s =
            dv_json_get_int(dv_job_get_params(job), "timeout", DV_VM_SHUTDOWN_TIMEOUT_MS / 1000);
        g_autoptr(GError) local = NULL;
        ok = dv_virt_domain_shutdown(vh, uuid, c, &local) &&
             dv_virt_domain_wait_shutoff(vh, uuid, (guint)timeout_s * 1000, c, &local);
        /* The virt layer knows the domain by UUID; the user knows the VM
         * by name: a timeout is said in the user's words. */
        if (!ok && g_error_matches(local, DV_ERROR, DV_ERROR_TIMEOUT))
            dv_set_field_error(error, DV_ERROR_TIMEOUT, "timeout",
                               "VM %s did not shut down within %" G_GINT64_FORMAT
                               " s (its guest ignored the request; use stop to force it off)",
                               dv_json_get_string(vm, "name", ""), timeout_s);
        else if (!ok)
            g_propagate_error(error, g_steal_pointer(&local));
    }
    if (!ok)
        return FALSE;
    if (!dv_job_step(job, "save", error))
        return FALSE;
    dom = dv_virt_domain_get(vh, uuid, c, error);
    if (dom == NULL || !dv_core_vm_sync(engine, vm, dom, error))
        return FALSE;
    {
        g_autoptr(JsonObject) result = json_object_new();
        json_object_set_string_member(result, "id", vm_id);
        json_object_set_string_member(result, "name", dv_json_get_string(vm, "name", ""));
        json_object_set_string_member(result, "state", dv_json_get_string(dom, "state", ""));
        dv_job_set_result(job, result);
    }
    return TRUE;
}

/* The action is passed through params so one function serves all three. */
static gboolean dv_engine_vm_start_job(DvJob *job, gpointer d, GError **e)
{
    json_object_set_string_member(dv_job_get_params(job), "action", "start");
    return dv_engine_vm_power_job(job, d, e);
}
static gboolean dv_engine_vm_stop_job(DvJob *job, gpointer d, GError **e)
{
    json_object_set_string_member(dv_job_get_params(job), "action", "stop");
    return dv_engine_vm_power_job(job, d, e);
}
static gboolean dv_engine_vm_shutdown_job(DvJob *job, gpointer d, GError **e)
{
    json_object_set_string_member(dv_job_get_params(job), "action", "shutdown");
    return dv_engine_vm_power_job(job, d, e);
}
static gboolean
dv_engine_vm_reboot_job(DvJob *job, gpointer d, GError **e)
{
    json_object_set_string_member(dv_job_get_params(job), "action", "reboot");
    return dv_engine_vm_power_job(job, d, e);
}
static gboolean
dv_engine_vm_reset_job(DvJob *job, gpointer d, GError **e)
{
    json_object_set_string_member(dv_job_get_params(job), "action", "reset");
    return dv_engine_vm_power_job(job, d, e);
}

/* --- change (PATCH /vms/{ref}) ---------------------------------------------- */

static const char *const dv_vm_boot_devices[] = { "disk", "cdrom", "network", NULL };

/* @order (owned) from body.boot_order: 1-3 distinct known devices. */
static gboolean
dv_engine_vm_boot_order(JsonArray *arr, GError **error)
{
    guint n = json_array_get_length(arr);

    if (n == 0 || n > 3) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "boot_order",
                           "boot_order: one to three of disk, cdrom, network");
        return FALSE;
    }
    for (guint i = 0; i < n; i++) {
        JsonNode *node = json_array_get_element(arr, i);
        const char *dev =
            JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING
                ? json_node_get_string(node)
                : NULL;
        if (dev == NULL || !g_strv_contains(dv_vm_boot_devices, dev)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "boot_order",
                               "boot_order: entry %u is not one of disk, cdrom, network", i + 1);
            return FALSE;
        }
        for (guint k = 0; k < i; k++) {
            if (g_strcmp0(json_array_get_string_element(arr, k), dev) == 0) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "boot_order",
                                   "boot_order: %s is named twice", dev);
                return FALSE;
            }
        }
    }
    return TRUE;
}

/* A change that grows a charged VM's vCPUs or memory: the charge follows,
 * in the transaction that accepts the job (docs/ACCESS.md, "Quotas"). */
typedef struct {
    gboolean needed;
    const char *vm_id;
    JsonObject *spec;  /* the row's spec with the new charge */
    DvAuthzAmount more; /* reserved */
    DvAuthzAmount less; /* given back */
    const char *binding_id;
    const char *user_id;
} DvVmRecharge;

static gboolean
dv_engine_vm_recharge_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvVmRecharge *r = user_data;
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonObject) changes = json_object_new();

    if (!r->needed)
        return TRUE;
    if (!dv_authz_quota_reserve(store, r->binding_id, r->user_id, &r->more, &local)) {
        /* The binding is gone: nothing is charged any more. */
        if (!g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        return TRUE;
    }
    if (!dv_authz_quota_release(store, r->binding_id, r->user_id, &r->less, error))
        return FALSE;
    json_object_set_object_member(changes, "spec", json_object_ref(r->spec));
    return dv_store_update(store, &dv_table_vms, r->vm_id, changes, error);
}

/* Fills @r with the charge of @vm after @body (@r->needed FALSE: none);
 * @r borrows from @vm and from *@ret_copy (owned by the caller). */
static void
dv_engine_vm_recharge_plan(JsonObject *vm, JsonObject *body, DvVmRecharge *r, JsonNode **ret_copy)
{
    JsonObject *spec = dv_json_get_object(vm, "spec");
    JsonObject *q = dv_json_get_object(spec, "quota");
    g_autoptr(JsonNode) spec_node = NULL;
    JsonNode *copy;
    JsonObject *new_q;
    gint64 d_vcpus;
    gint64 d_mem;

    r->needed = FALSE;
    if (q == NULL)
        return;
    d_vcpus = json_object_has_member(body, "vcpus")
                  ? dv_json_get_int(body, "vcpus", 0) - dv_json_get_int(q, "vcpus", 0)
                  : 0;
    d_mem = json_object_has_member(body, "memory_mib")
                ? dv_json_get_int(body, "memory_mib", 0) - dv_json_get_int(q, "memory_mib", 0)
                : 0;
    if (d_vcpus == 0 && d_mem == 0)
        return;
    spec_node = json_node_init_object(json_node_alloc(), spec);
    copy = dv_json_node_deep_copy(spec_node);
    new_q = dv_json_get_object(json_node_get_object(copy), "quota");
    json_object_set_int_member(new_q, "vcpus", dv_json_get_int(q, "vcpus", 0) + d_vcpus);
    json_object_set_int_member(new_q, "memory_mib", dv_json_get_int(q, "memory_mib", 0) + d_mem);
    r->needed = TRUE;
    r->vm_id = dv_json_get_string(vm, "id", "");
    r->spec = json_node_get_object(copy);
    r->binding_id = dv_json_get_string(q, "binding_id", "");
    r->user_id = dv_json_get_string(q, "user_id", "");
    r->more.vcpus = MAX(d_vcpus, 0);
    r->more.memory_mib = MAX(d_mem, 0);
    r->less.vcpus = MAX(-d_vcpus, 0);
    r->less.memory_mib = MAX(-d_mem, 0);
    *ret_copy = copy;
}

JsonObject *
dv_engine_vm_change(DvEngine *engine, const char *vm_ref, JsonObject *body, const DvActor *actor,
                    GError **error)
{
    g_autoptr(JsonObject) vm = dv_engine_vm_ready(engine, vm_ref, error);
    g_autoptr(JsonObject) host = NULL;
    g_autoptr(JsonObject) params = NULL;
    const char *vm_name;
    const char *state;

    if (vm == NULL)
        return NULL;
    if (body == NULL || json_object_get_size(body) == 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL,
                           "body: give at least one of vcpus, memory_mib, description, autostart, "
                           "boot_order, name");
        return NULL;
    }
    if (!dv_json_check_fields(body, dv_vm_change_fields, NULL, error))
        return NULL;
    vm_name = dv_json_get_string(vm, "name", "");
    state = dv_json_get_string(vm, "state", "");
    host = dv_store_get(dv_core(engine)->store, &dv_table_hosts,
                        dv_json_get_string(vm, "host_id", ""), error);
    if (host == NULL)
        return NULL;
    if (json_object_has_member(body, "vcpus")) {
        gint64 vcpus = dv_json_get_int(body, "vcpus", 0);
        gint64 cpus = dv_json_get_int(host, "cpus", 0);
        if (!dv_validate_range("vcpus", vcpus, 1, 256, error))
            return NULL;
        if (cpus > 0 && vcpus > cpus) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "vcpus",
                               "vcpus: host %s has only %" G_GINT64_FORMAT " CPUs",
                               dv_json_get_string(host, "name", ""), cpus);
            return NULL;
        }
    }
    if (json_object_has_member(body, "memory_mib")) {
        gint64 mem = dv_json_get_int(body, "memory_mib", 0);
        gint64 host_mem = dv_json_get_int(host, "memory_mib", 0);
        if (!dv_validate_range("memory_mib", mem, 16, 4194304, error))
            return NULL;
        if (host_mem > 0 && mem > host_mem) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "memory_mib",
                               "memory_mib: host %s has only %" G_GINT64_FORMAT " MiB of memory",
                               dv_json_get_string(host, "name", ""), host_mem);
            return NULL;
        }
    }
    if (!dv_validate_text("description", dv_json_get_string(body, "description", NULL),
                          DV_DESCRIPTION_MAX, error))
        return NULL;
    if (json_object_has_member(body, "boot_order") &&
        !dv_engine_vm_boot_order(dv_json_get_array(body, "boot_order"), error))
        return NULL;
    if (json_object_has_member(body, "name")) {
        const char *name = dv_json_get_string(body, "name", NULL);
        g_autoptr(JsonObject) clash = NULL;
        g_autoptr(GError) local = NULL;
        if (!dv_validate_name("name", name, error))
            return NULL;
        if (g_strcmp0(state, "shutoff") != 0) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "name",
                               "name: VM %s is %s; a VM is renamed only while shut off", vm_name,
                               state);
            return NULL;
        }
        clash = dv_engine_find_on_host(engine, &dv_table_vms, dv_json_get_string(host, "id", ""),
                                       "name", name, &local);
        if (clash != NULL &&
            g_strcmp0(dv_json_get_string(clash, "id", ""), dv_json_get_string(vm, "id", "")) != 0) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "name",
                               "name: host %s already has a VM named '%s'",
                               dv_json_get_string(host, "name", ""), name);
            return NULL;
        }
    }
    {
        g_autoptr(JsonNode) in = json_node_init_object(json_node_alloc(), body);
        g_autoptr(JsonNode) copy = dv_json_node_deep_copy(in);
        params = json_object_ref(json_node_get_object(copy));
    }
    /* The charge follows in the transaction that accepts the job: a
     * change the quota refuses is 409 naming quota.<what>; one the host
     * then refuses keeps the new charge, erring on the quota's side. */
    {
        g_autoptr(JsonNode) spec_copy = NULL;
        DvVmRecharge r = { 0 };
        DvJobRequest req = {
            .kind = "vm.change",
            .target_type = "vm",
            .target_id = dv_json_get_string(vm, "id", ""),
            .target_name = vm_name,
            .host_id = dv_json_get_string(vm, "host_id", ""),
            .params = params,
            .created_by = dv_actor_get_name(actor),
        };
        dv_engine_vm_recharge_plan(vm, body, &r, &spec_copy);
        return dv_job_manager_submit_with(dv_core(engine)->jobs, &req, dv_engine_vm_recharge_txn,
                                          &r, error);
    }
}

static const DvJobStep dv_vm_change_steps[] = { { "change", 80 }, { "save", 20 } };

/* Records where a vcpus/memory change took effect. */
static void
dv_engine_vm_change_applied(JsonObject *applied, const char *field, gboolean live)
{
    json_object_set_string_member(applied, field, live ? "live" : "next-boot");
}

static gboolean
dv_engine_vm_change_job(DvJob *job, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    JsonObject *params = dv_job_get_params(job);
    const char *vm_id = dv_job_get_target_id(job);
    GCancellable *c = dv_job_get_cancellable(job);
    g_autoptr(JsonObject) vm = NULL;
    g_autoptr(JsonObject) dom = NULL;
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(JsonObject) applied = json_object_new();
    g_autoptr(JsonObject) changes = json_object_new();
    g_autoptr(JsonObject) result = json_object_new();
    const char *uuid;

    dv_job_set_steps(job, dv_vm_change_steps, G_N_ELEMENTS(dv_vm_change_steps));
    vm = dv_store_get(dv_core(engine)->store, &dv_table_vms, vm_id, error);
    if (vm == NULL)
        return FALSE;
    uuid = dv_json_get_string(vm, "uuid", "");
    vh = dv_core_virt_host_by_id(engine, dv_json_get_string(vm, "host_id", ""), error);
    if (vh == NULL || !dv_job_step(job, "change", error))
        return FALSE;
    /* The name first: refused while running, before anything changed. */
    if (json_object_has_member(params, "name")) {
        if (!dv_virt_domain_rename(vh, uuid, dv_json_get_string(params, "name", ""), c, error))
            return FALSE;
        json_object_set_string_member(changes, "name", dv_json_get_string(params, "name", ""));
        json_object_set_string_member(applied, "name", "now");
    }
    if (json_object_has_member(params, "vcpus")) {
        gboolean live = FALSE;
        if (!dv_virt_domain_set_vcpus(vh, uuid, (guint)dv_json_get_int(params, "vcpus", 1), &live,
                                      c, error))
            return FALSE;
        dv_engine_vm_change_applied(applied, "vcpus", live);
    }
    if (json_object_has_member(params, "memory_mib")) {
        gboolean live = FALSE;
        if (!dv_virt_domain_set_memory(vh, uuid, (guint64)dv_json_get_int(params, "memory_mib", 16),
                                       &live, c, error))
            return FALSE;
        dv_engine_vm_change_applied(applied, "memory_mib", live);
    }
    if (json_object_has_member(params, "description")) {
        const char *text = dv_json_get_string(params, "description", NULL);
        if (!dv_virt_domain_set_description(vh, uuid, text, c, error))
            return FALSE;
        if (text != NULL)
            json_object_set_string_member(changes, "description", text);
        else
            json_object_set_null_member(changes, "description");
        json_object_set_string_member(applied, "description", "now");
    }
    if (json_object_has_member(params, "autostart")) {
        if (!dv_virt_domain_set_autostart(vh, uuid, dv_json_get_bool(params, "autostart", FALSE), c,
                                          error))
            return FALSE;
        json_object_set_string_member(applied, "autostart", "now");
    }
    if (json_object_has_member(params, "boot_order")) {
        JsonArray *arr = dv_json_get_array(params, "boot_order");
        g_autoptr(GPtrArray) order = g_ptr_array_new();
        for (guint i = 0; arr != NULL && i < json_array_get_length(arr); i++)
            g_ptr_array_add(order, (gpointer)json_array_get_string_element(arr, i));
        g_ptr_array_add(order, NULL);
        if (!dv_virt_domain_set_boot_order(vh, uuid, (const char *const *)order->pdata, c, error))
            return FALSE;
        json_object_set_string_member(applied, "boot_order", "next-boot");
    }
    if (!dv_job_step(job, "save", error))
        return FALSE;
    dom = dv_virt_domain_get(vh, uuid, c, error);
    if (dom == NULL || !dv_core_vm_sync(engine, vm, dom, error))
        return FALSE;
    if (json_object_get_size(changes) > 0) {
        json_object_set_int_member(changes, "updated_at", dv_store_now());
        if (!dv_store_update(dv_core(engine)->store, &dv_table_vms, vm_id, changes, error))
            return FALSE;
    }
    json_object_set_string_member(result, "id", vm_id);
    json_object_set_string_member(result, "name", dv_json_get_string(dom, "name", ""));
    json_object_set_string_member(result, "state", dv_json_get_string(dom, "state", ""));
    json_object_set_object_member(result, "applied", g_steal_pointer(&applied));
    dv_job_set_result(job, result);
    return TRUE;
}

/* --- delete ------------------------------------------------------------------ */

JsonObject *
dv_engine_vm_delete(DvEngine *engine, JsonObject *vm, GHashTable *query, const DvActor *actor,
                    GError **error)
{
    g_autoptr(JsonObject) params = json_object_new();
    const char *state = dv_json_get_string(vm, "state", "");
    const char *dv = query != NULL ? g_hash_table_lookup(query, "delete_volumes") : NULL;
    const char *fv = query != NULL ? g_hash_table_lookup(query, "force") : NULL;
    gboolean delete_volumes = FALSE;
    gboolean force = FALSE;

    if (query != NULL) {
        GHashTableIter it;
        gpointer k;
        g_hash_table_iter_init(&it, query);
        while (g_hash_table_iter_next(&it, &k, NULL)) {
            if (g_strcmp0(k, "delete_volumes") != 0 && g_strcmp0(k, "force") != 0) {
                g_autofree char *safe = dv_text_excerpt(k, 64);
                dv_set_field_error(
                    error, DV_ERROR_INVALID_ARGUMENT, safe,
                    "%s: unknown parameter; only delete_volumes and force are accepted", safe);
                return NULL;
            }
        }
    }
    if (dv != NULL) {
        if (g_strcmp0(dv, "true") == 0 || g_strcmp0(dv, "1") == 0)
            delete_volumes = TRUE;
        else if (g_strcmp0(dv, "false") != 0 && g_strcmp0(dv, "0") != 0) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "delete_volumes",
                               "delete_volumes: must be true or false");
            return NULL;
        }
    }
    if (fv != NULL) {
        if (g_strcmp0(fv, "true") == 0 || g_strcmp0(fv, "1") == 0)
            force = TRUE;
        else if (g_strcmp0(fv, "false") != 0 && g_strcmp0(fv, "0") != 0) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "force",
                               "force: must be true or false");
            return NULL;
        }
    }
    if (g_strcmp0(state, "creating") == 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, NULL, "VM %s is still being created",
                           dv_json_get_string(vm, "name", ""));
        return NULL;
    }
    if (!force && (g_strcmp0(state, "running") == 0 || g_strcmp0(state, "paused") == 0)) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "force",
                           "VM %s is %s; stop it first, or delete it with force to destroy it",
                           dv_json_get_string(vm, "name", ""), state);
        return NULL;
    }
    json_object_set_boolean_member(params, "delete_volumes", delete_volumes);
    json_object_set_boolean_member(params, "force", force);
    return dv_vm_submit(engine, "vm.delete", vm, params, actor, error);
}

/* A linked clone's frozen bases (spec.clone_bases), removed with its
 * volumes once the overlays on them are gone; already gone is fine. */
static gboolean
dv_engine_vm_delete_clone_bases(DvEngine *engine, DvVirtHost *vh, JsonObject *vm, GCancellable *c,
                                GError **error)
{
    JsonArray *bases = dv_json_get_array(dv_json_get_object(vm, "spec"), "clone_bases");

    for (guint i = 0; bases != NULL && i < json_array_get_length(bases); i++) {
        const char *path = json_array_get_string_element(bases, i);
        DvFilter f = { "path", DV_FILTER_EQ, path };
        g_autoptr(GError) local = NULL;

        if (!dv_virt_volume_delete_by_path(vh, path, c, &local) &&
            !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        /* The inventory row: a failure here only leaves a row a refresh removes. */
        (void)dv_store_delete_matching(dv_core(engine)->store, &dv_table_volumes, &f, 1, NULL);
    }
    return TRUE;
}

static gboolean
dv_engine_vm_delete_job(DvJob *job, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    const char *vm_id = dv_job_get_target_id(job);
    static const DvJobStep steps[] = { { "remove domain", 80 }, { "save", 20 } };
    g_autoptr(JsonObject) vm = NULL;
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(GError) local = NULL;
    const char *uuid;

    dv_job_set_steps(job, steps, G_N_ELEMENTS(steps));
    vm = dv_store_get(dv_core(engine)->store, &dv_table_vms, vm_id, &local);
    if (vm == NULL) {
        /* Resumed after it was already removed. */
        if (g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND) && dv_job_get_attempt(job) > 1)
            return TRUE;
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (!dv_job_step(job, "remove domain", error))
        return FALSE;
    uuid = dv_json_get_string(vm, "uuid", NULL);
    if (uuid != NULL) {
        vh = dv_core_virt_host_by_id(engine, dv_json_get_string(vm, "host_id", ""), error);
        if (vh == NULL)
            return FALSE;
        if (!dv_virt_domain_delete(vh, uuid,
                                   dv_json_get_bool(dv_job_get_params(job), "delete_volumes", FALSE),
                                   dv_job_get_cancellable(job), &local) &&
            !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
    }
    if (vh != NULL && dv_json_get_bool(dv_job_get_params(job), "delete_volumes", FALSE) &&
        !dv_engine_vm_delete_clone_bases(engine, vh, vm, dv_job_get_cancellable(job), error))
        return FALSE;
    if (!dv_job_step(job, "save", error))
        return FALSE;
    g_clear_error(&local);
    if (dv_json_get_bool(dv_job_get_params(job), "delete_volumes", FALSE))
        dv_engine_volumes_forget(engine, dv_json_get_string(vm, "host_id", ""), vm);
    if (!dv_engine_vm_row_delete(engine, vm_id, &local) &&
        !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    return TRUE;
}

/* --- snapshots --------------------------------------------------------------- */

JsonObject *
dv_engine_vm_snapshot_list(DvEngine *engine, const char *vm_ref, GError **error)
{
    g_autoptr(JsonObject) vm = dv_core_resolve(engine, DV_KIND_VM, vm_ref, NULL, error);
    g_autoptr(JsonArray) rows = NULL;
    JsonObject *out;

    if (vm == NULL)
        return NULL;
    rows = dv_core_list_all(engine, &dv_table_snapshots, "vm_id", dv_json_get_string(vm, "id", ""),
                            error);
    if (rows == NULL)
        return NULL;
    out = json_object_new();
    json_object_set_array_member(out, "items", g_steal_pointer(&rows));
    json_object_set_null_member(out, "next_cursor");
    return out;
}

static JsonObject *
dv_engine_vm_find_snapshot(DvEngine *engine, JsonObject *vm, const char *name, GError **error)
{
    g_autoptr(JsonArray) rows = dv_core_list_all(engine, &dv_table_snapshots, "vm_id",
                                                 dv_json_get_string(vm, "id", ""), error);
    if (rows == NULL)
        return NULL;
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *s = json_array_get_object_element(rows, i);
        if (g_strcmp0(dv_json_get_string(s, "name", ""), name) == 0)
            return json_object_ref(s);
    }
    {
        g_autofree char *safe = dv_text_excerpt(name, 80);
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "VM %s has no snapshot '%s'",
                    dv_json_get_string(vm, "name", ""), safe);
    }
    return NULL;
}

static JsonObject *
dv_engine_vm_snapshot_submit(DvEngine *engine, JsonObject *vm, const char *op, JsonObject *params,
                             const DvActor *actor, GError **error)
{
    g_autofree char *kind = g_strdup_printf("vm.snapshot.%s", op);
    return dv_vm_submit(engine, kind, vm, params, actor, error);
}

static JsonObject *
dv_engine_vm_snapshot_params(const char *name)
{
    JsonObject *params = json_object_new();
    json_object_set_string_member(params, "snapshot", name);
    return params;
}

/* Which kinds the VM's snapshots are: *@ret_internal, *@ret_external. */
static gboolean
dv_engine_vm_snapshot_kinds(DvEngine *engine, JsonObject *vm, gboolean *ret_internal,
                            gboolean *ret_external, GError **error)
{
    g_autoptr(JsonArray) rows = dv_core_list_all(engine, &dv_table_snapshots, "vm_id",
                                                 dv_json_get_string(vm, "id", ""), error);
    gboolean internal = FALSE, external = FALSE;

    if (rows == NULL)
        return FALSE;
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *s = json_array_get_object_element(rows, i);
        if (g_strcmp0(dv_json_get_string(s, "kind", "internal"), "external") == 0)
            external = TRUE;
        else
            internal = TRUE;
    }
    *ret_internal = internal;
    *ret_external = external;
    return TRUE;
}

JsonObject *
dv_engine_vm_snapshot_create(DvEngine *engine, const char *vm_ref, JsonObject *body,
                             const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) vm = dv_engine_vm_ready(engine, vm_ref, error);
    g_autoptr(JsonObject) clash = NULL;
    g_autoptr(JsonObject) params = NULL;
    g_autoptr(GError) local = NULL;
    const char *name = dv_json_get_string(body, "name", NULL);
    const char *desc = dv_json_get_string(body, "description", NULL);
    const char *kind = dv_json_get_string(body, "kind", NULL);
    const char *vm_name;
    JsonArray *disks;
    JsonObject *not_qcow2 = NULL;
    guint own = 0;
    gboolean running, memory, has_internal = FALSE, has_external = FALSE;

    if (vm == NULL || !dv_json_check_fields(body, dv_vm_snapshot_fields, NULL, error) ||
        !dv_validate_name("name", name, error) ||
        !dv_validate_text("description", desc, DV_DESCRIPTION_MAX, error))
        return NULL;
    vm_name = dv_json_get_string(vm, "name", "");
    if (kind != NULL && g_strcmp0(kind, "internal") != 0 && g_strcmp0(kind, "external") != 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "kind",
                           "kind: must be \"internal\" or \"external\"");
        return NULL;
    }
    running = g_strcmp0(dv_json_get_string(vm, "state", ""), "running") == 0 ||
              g_strcmp0(dv_json_get_string(vm, "state", ""), "paused") == 0;
    memory = dv_json_get_bool(body, "memory", running);
    if (memory && !running) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "memory",
                           "memory: VM %s is not running: it has no memory to keep", vm_name);
        return NULL;
    }
    if (g_strcmp0(kind, "internal") == 0 && dv_json_get_int(vm, "generation", 1) == 2) {
        dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "kind",
                           "kind: VM %s is generation 2 (UEFI): libvirt keeps no internal "
                           "snapshots of UEFI firmware variables; take an external one",
                           vm_name);
        return NULL;
    }
    if (g_strcmp0(kind, "internal") == 0 && running && !memory) {
        dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "memory",
                           "memory: an internal snapshot of a running VM always holds its memory; "
                           "take an external one for the disks alone");
        return NULL;
    }
    /* The VM's own disks (writable, not shared, not CD-ROMs): what a
     * snapshot covers. */
    disks = dv_json_get_array(dv_json_get_object(vm, "spec"), "disks");
    for (guint i = 0; disks != NULL && i < json_array_get_length(disks); i++) {
        JsonObject *d = json_array_get_object_element(disks, i);
        if (g_strcmp0(dv_json_get_string(d, "device", "disk"), "disk") != 0 ||
            dv_json_get_bool(d, "readonly", FALSE) || dv_json_get_bool(d, "shareable", FALSE))
            continue;
        own++;
        if (not_qcow2 == NULL && g_strcmp0(dv_json_get_string(d, "format", ""), "qcow2") != 0)
            not_qcow2 = d;
    }
    if (g_strcmp0(kind, "internal") == 0 && not_qcow2 != NULL) {
        dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "kind",
                           "kind: disk %s of VM %s is %s: internal snapshots live inside qcow2 "
                           "files; take an external one",
                           dv_json_get_string(not_qcow2, "target", "?"), vm_name,
                           dv_json_get_string(not_qcow2, "format", "not qcow2"));
        return NULL;
    }
    if (!dv_engine_vm_snapshot_kinds(engine, vm, &has_internal, &has_external, error))
        return NULL;
    /* The default, decided here once (docs/API.md, "Snapshots"). */
    if (kind == NULL)
        kind = dv_json_get_int(vm, "generation", 1) == 2 || has_external || (running && !memory) ||
                       not_qcow2 != NULL
                   ? "external"
                   : "internal";
    if ((g_strcmp0(kind, "internal") == 0 && has_external) ||
        (g_strcmp0(kind, "external") == 0 && has_internal)) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "kind",
                           "kind: the snapshot would be %s, but VM %s has %s snapshots, and a VM's "
                           "snapshots are all of one kind",
                           kind, vm_name, has_external ? "external" : "internal");
        return NULL;
    }
    if (g_strcmp0(kind, "external") == 0 && own == 0) {
        dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "kind",
                           "kind: VM %s has no writable disk of its own: an external snapshot "
                           "has nothing to put a layer on",
                           vm_name);
        return NULL;
    }
    clash = dv_engine_vm_find_snapshot(engine, vm, name, &local);
    if (clash != NULL) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "name",
                           "name: VM %s already has a snapshot '%s'", vm_name, name);
        return NULL;
    }
    params = dv_engine_vm_snapshot_params(name);
    if (desc != NULL)
        json_object_set_string_member(params, "description", desc);
    json_object_set_string_member(params, "kind", kind);
    json_object_set_boolean_member(params, "memory", memory);
    return dv_engine_vm_snapshot_submit(engine, vm, "create", params, actor, error);
}

/* Drover reverts and deletes an external snapshot only when no later
 * snapshot builds on it (docs/VIRT.md, "Snapshots"): said before any job. */
static gboolean
dv_engine_vm_snapshot_check_newest(DvEngine *engine, JsonObject *vm, JsonObject *snap,
                                   const char *what, GError **error)
{
    g_autoptr(JsonArray) rows = NULL;
    const char *name = dv_json_get_string(snap, "name", "");

    if (g_strcmp0(dv_json_get_string(snap, "kind", "internal"), "external") != 0)
        return TRUE;
    rows = dv_core_list_all(engine, &dv_table_snapshots, "vm_id", dv_json_get_string(vm, "id", ""),
                            error);
    if (rows == NULL)
        return FALSE;
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *s = json_array_get_object_element(rows, i);
        if (g_strcmp0(dv_json_get_string(s, "parent_name", ""), name) != 0)
            continue;
        dv_set_field_error(error, DV_ERROR_CONFLICT, "snapshot",
                           "snapshot: '%s' of VM %s is external and snapshot '%s' builds on it: "
                           "Drover can only %s the newest external snapshot; delete the later "
                           "ones first",
                           name, dv_json_get_string(vm, "name", ""),
                           dv_json_get_string(s, "name", ""), what);
        return FALSE;
    }
    return TRUE;
}

JsonObject *
dv_engine_vm_snapshot_revert(DvEngine *engine, const char *vm_ref, const char *snapshot,
                             const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) vm = dv_engine_vm_ready(engine, vm_ref, error);
    g_autoptr(JsonObject) snap = NULL;
    if (vm == NULL)
        return NULL;
    snap = dv_engine_vm_find_snapshot(engine, vm, snapshot, error);
    if (snap == NULL || !dv_engine_vm_snapshot_check_newest(engine, vm, snap, "revert to", error))
        return NULL;
    {
        g_autoptr(JsonObject) params = dv_engine_vm_snapshot_params(snapshot);
        return dv_engine_vm_snapshot_submit(engine, vm, "revert", params, actor, error);
    }
}

JsonObject *
dv_engine_vm_snapshot_delete(DvEngine *engine, const char *vm_ref, const char *snapshot,
                             const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) vm = dv_engine_vm_ready(engine, vm_ref, error);
    g_autoptr(JsonObject) snap = NULL;
    if (vm == NULL)
        return NULL;
    snap = dv_engine_vm_find_snapshot(engine, vm, snapshot, error);
    if (snap == NULL || !dv_engine_vm_snapshot_check_newest(engine, vm, snap, "delete", error))
        return NULL;
    {
        g_autoptr(JsonObject) params = dv_engine_vm_snapshot_params(snapshot);
        return dv_engine_vm_snapshot_submit(engine, vm, "delete", params, actor, error);
    }
}

static gboolean
dv_engine_vm_snapshot_job(DvJob *job, const char *op, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    JsonObject *params = dv_job_get_params(job);
    const char *vm_id = dv_job_get_target_id(job);
    const char *name = dv_json_get_string(params, "snapshot", "");
    GCancellable *c = dv_job_get_cancellable(job);
    static const DvJobStep steps[] = { { "snapshot", 80 }, { "save", 20 } };
    g_autoptr(JsonObject) vm = NULL;
    g_autoptr(JsonObject) dom = NULL;
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonObject) made = NULL;
    const char *uuid;
    gboolean ok = TRUE;

    dv_job_set_steps(job, steps, G_N_ELEMENTS(steps));
    vm = dv_store_get(dv_core(engine)->store, &dv_table_vms, vm_id, error);
    if (vm == NULL)
        return FALSE;
    uuid = dv_json_get_string(vm, "uuid", "");
    vh = dv_core_virt_host_by_id(engine, dv_json_get_string(vm, "host_id", ""), error);
    if (vh == NULL || !dv_job_step(job, "snapshot", error))
        return FALSE;
    if (g_strcmp0(op, "create") == 0) {
        g_autoptr(JsonObject) snap = dv_virt_snapshot_create_full(
            vh, uuid, name, dv_json_get_string(params, "description", NULL),
            dv_json_get_string(params, "kind", NULL), dv_json_get_bool(params, "memory", FALSE), c,
            &local);
        /* Resumed: the snapshot may already exist. */
        if (snap == NULL && !(g_error_matches(local, DV_ERROR, DV_ERROR_CONFLICT) &&
                              dv_job_get_attempt(job) > 1)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        made = g_steal_pointer(&snap);
    } else if (g_strcmp0(op, "revert") == 0) {
        ok = dv_virt_snapshot_revert(vh, uuid, name, c, error);
    } else {
        ok = dv_virt_snapshot_delete(vh, uuid, name, c, &local);
        if (!ok && g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND) && dv_job_get_attempt(job) > 1)
            ok = TRUE;
        else if (!ok)
            g_propagate_error(error, g_steal_pointer(&local));
    }
    if (!ok || !dv_job_step(job, "save", error))
        return FALSE;
    dom = dv_virt_domain_get(vh, uuid, c, error);
    if (dom == NULL || !dv_core_vm_sync(engine, vm, dom, error))
        return FALSE;
    {
        g_autoptr(JsonObject) result = json_object_new();
        json_object_set_string_member(result, "id", vm_id);
        json_object_set_string_member(result, "name", dv_json_get_string(vm, "name", ""));
        json_object_set_string_member(result, "snapshot", name);
        if (made != NULL) {
            json_object_set_string_member(result, "kind", dv_json_get_string(made, "kind", ""));
            json_object_set_boolean_member(result, "memory",
                                           dv_json_get_bool(made, "memory", FALSE));
        }
        dv_job_set_result(job, result);
    }
    return TRUE;
}

static gboolean dv_engine_snap_create_job(DvJob *j, gpointer d, GError **e)
{
    return dv_engine_vm_snapshot_job(j, "create", d, e);
}
static gboolean dv_engine_snap_revert_job(DvJob *j, gpointer d, GError **e)
{
    return dv_engine_vm_snapshot_job(j, "revert", d, e);
}
static gboolean dv_engine_snap_delete_job(DvJob *j, gpointer d, GError **e)
{
    return dv_engine_vm_snapshot_job(j, "delete", d, e);
}

/* --- clone (docs/API.md, "Clone a VM") -----------------------------------------
 *
 * A clone is a new VM on the source's host, owned by the caller and
 * charged like a create, made while the source is shut off: each owned
 * disk copied flat (virStorageVolCreateXMLFrom: qemu-img convert on the
 * host) or, linked, copied once as a frozen base with a qcow2 overlay on
 * it; then the source's definition with a new name, UUID and MAC
 * addresses.  A failure removes what was made, row and quota included. */

/* The copies of @vm's owned disks: [{source, pool, pool_path, name,
 * base (linked only), capacity}]. */
static JsonArray *
dv_engine_vm_clone_plan(DvEngine *engine, JsonObject *vm, JsonObject *host, const char *name,
                        const char *pool_ref, gboolean linked, GError **error)
{
    JsonArray *disks = dv_json_get_array(dv_json_get_object(vm, "spec"), "disks");
    const char *host_id = dv_json_get_string(host, "id", "");
    g_autoptr(JsonArray) plan = json_array_new();
    g_autoptr(JsonObject) to_pool = NULL;

    if (pool_ref != NULL) {
        g_autoptr(GError) local = NULL;
        to_pool =
            dv_engine_find_on_host(engine, &dv_table_pools, host_id, "name", pool_ref, &local);
        if (to_pool == NULL) {
            dv_set_field_error(error, DV_ERROR_NOT_FOUND, "pool", "pool: host %s has no pool '%s'",
                               dv_json_get_string(host, "name", ""), pool_ref);
            return NULL;
        }
    }
    for (guint i = 0; disks != NULL && i < json_array_get_length(disks); i++) {
        JsonObject *d = json_array_get_object_element(disks, i);
        const char *source = dv_json_get_string(d, "source", NULL);
        g_autoptr(JsonObject) vol = NULL;
        g_autoptr(JsonObject) pool = NULL;
        g_autoptr(GError) local = NULL;
        g_autofree char *vname = NULL;
        g_autofree char *vpath = NULL;
        JsonObject *o;

        if (g_strcmp0(dv_json_get_string(d, "device", "disk"), "disk") != 0 ||
            dv_json_get_bool(d, "readonly", FALSE) || dv_json_get_bool(d, "shareable", FALSE))
            continue;
        if (source != NULL)
            vol =
                dv_engine_find_on_host(engine, &dv_table_volumes, host_id, "path", source, &local);
        if (vol == NULL) {
            dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "disks",
                               "disks: the source's disk %s is not a volume of a pool on host %s",
                               source != NULL ? source : "(no file)",
                               dv_json_get_string(host, "name", ""));
            return NULL;
        }
        if (to_pool != NULL)
            pool = json_object_ref(to_pool);
        else
            pool = dv_store_get(dv_core(engine)->store, &dv_table_pools,
                                dv_json_get_string(vol, "pool_id", ""), error);
        if (pool == NULL)
            return NULL;
        vname = g_strdup_printf("%s-%s.qcow2", name, dv_json_get_string(d, "target", "disk"));
        vpath = g_build_filename(dv_json_get_string(pool, "path", "/"), vname, NULL);
        {
            g_autoptr(JsonObject) clash =
                dv_engine_find_on_host(engine, &dv_table_volumes, host_id, "path", vpath, &local);
            if (clash != NULL) {
                dv_set_field_error(error, DV_ERROR_CONFLICT, "name",
                                   "name: pool %s already has a volume named %s",
                                   dv_json_get_string(pool, "name", ""), vname);
                return NULL;
            }
        }
        o = json_object_new();
        json_object_set_string_member(o, "source", source);
        json_object_set_string_member(o, "target", dv_json_get_string(d, "target", NULL));
        json_object_set_string_member(o, "pool", dv_json_get_string(pool, "name", ""));
        json_object_set_string_member(o, "pool_path", dv_json_get_string(pool, "path", "/"));
        json_object_set_string_member(o, "name", vname);
        if (linked) {
            g_autofree char *base =
                g_strdup_printf("%s-%s-base.qcow2", name, dv_json_get_string(d, "target", "disk"));
            json_object_set_string_member(o, "base", base);
        }
        json_object_set_int_member(o, "capacity", dv_json_get_int(vol, "capacity", 0));
        json_array_add_object_element(plan, o);
    }
    return g_steal_pointer(&plan);
}

JsonObject *
dv_engine_vm_clone(DvEngine *engine, const char *vm_ref, JsonObject *body, const DvActor *actor,
                   GError **error)
{
    g_autoptr(JsonObject) src = NULL;
    g_autoptr(JsonObject) host = NULL;
    g_autoptr(JsonArray) plan = NULL;
    g_autoptr(JsonObject) quota = NULL;
    g_autoptr(JsonObject) rec = json_object_new();
    g_autoptr(JsonObject) params = json_object_new();
    g_autoptr(GError) local = NULL;
    g_autofree char *id = g_uuid_string_random();
    g_autofree char *uuid = g_uuid_string_random();
    const char *name = dv_json_get_string(body, "name", NULL);
    const char *host_ref = dv_json_get_string(body, "host", NULL);
    const char *state;
    gboolean linked = dv_json_get_bool(body, "linked", FALSE);
    gint64 now = dv_store_now();

    if (!dv_json_check_fields(body, dv_vm_clone_fields, NULL, error) ||
        !dv_validate_name("name", name, error))
        return NULL;
    if (json_object_has_member(body, "description") &&
        !dv_validate_text("description", dv_json_get_string(body, "description", NULL),
                          DV_DESCRIPTION_MAX, error))
        return NULL;
    src = dv_core_resolve_for(engine, actor, DV_KIND_VM, vm_ref, NULL, error);
    if (src == NULL)
        return NULL;
    state = dv_json_get_string(src, "state", "");
    if (g_strcmp0(state, "shutoff") != 0 && g_strcmp0(state, "running") != 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "state",
                           "state: VM %s is %s; a clone copies the disks of a shut-off or "
                           "running VM",
                           dv_json_get_string(src, "name", ""), state);
        return NULL;
    }
    host = dv_store_get(dv_core(engine)->store, &dv_table_hosts,
                        dv_json_get_string(src, "host_id", ""), error);
    if (host == NULL || !dv_engine_vm_check_host_usable(host, error))
        return NULL;
    if (host_ref != NULL) {
        g_autoptr(JsonObject) want = dv_core_resolve(engine, DV_KIND_HOST, host_ref, "host", error);
        if (want == NULL)
            return NULL;
        if (g_strcmp0(dv_json_get_string(want, "id", ""), dv_json_get_string(host, "id", "")) !=
            0) {
            dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "host",
                               "host: a clone is made on its source's host (%s); "
                               "migrate it afterwards",
                               dv_json_get_string(host, "name", ""));
            return NULL;
        }
    }
    {
        g_autoptr(JsonObject) clash = dv_engine_find_on_host(
            engine, &dv_table_vms, dv_json_get_string(host, "id", ""), "name", name, &local);
        if (clash != NULL) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "name",
                               "name: host %s already has a VM named '%s'",
                               dv_json_get_string(host, "name", ""), name);
            return NULL;
        }
        g_clear_error(&local);
    }
    plan = dv_engine_vm_clone_plan(engine, src, host, name, dv_json_get_string(body, "pool", NULL),
                                   linked, error);
    if (plan == NULL)
        return NULL;
    if (!dv_engine_vm_quota_plan(engine, actor, host, dv_json_get_int(src, "vcpus", 1),
                                 dv_json_get_int(src, "memory_mib", 0), plan, &quota, error))
        return NULL;

    json_object_set_string_member(rec, "id", id);
    json_object_set_string_member(rec, "name", name);
    json_object_set_string_member(rec, "host_id", dv_json_get_string(host, "id", ""));
    json_object_set_null_member(rec, "uuid");
    json_object_set_string_member(rec, "state", "creating");
    json_object_set_int_member(rec, "vcpus", dv_json_get_int(src, "vcpus", 1));
    json_object_set_int_member(rec, "memory_mib", dv_json_get_int(src, "memory_mib", 0));
    json_object_set_int_member(rec, "generation", dv_json_get_int(src, "generation", 1));
    json_object_set_boolean_member(rec, "secure_boot", dv_json_get_bool(src, "secure_boot", FALSE));
    json_object_set_null_member(rec, "template_id");
    json_object_set_string_member(rec, "origin", "drover");
    {
        JsonObject *spec = json_object_new();
        json_object_set_array_member(spec, "disks", json_array_ref(plan));
        json_object_set_string_member(spec, "cloned_from", dv_json_get_string(src, "id", ""));
        /* A linked clone's bases, which its domain's XML does not name: in
         * the row from the start (syncs keep them), deleted with it. */
        for (guint i = 0; i < json_array_get_length(plan); i++) {
            JsonObject *d = json_array_get_object_element(plan, i);
            g_autofree char *bpath = NULL;
            if (dv_json_get_string(d, "base", NULL) == NULL)
                continue;
            bpath = g_build_filename(dv_json_get_string(d, "pool_path", "/"),
                                     dv_json_get_string(d, "base", ""), NULL);
            if (dv_json_get_array(spec, "clone_bases") == NULL)
                json_object_set_array_member(spec, "clone_bases", json_array_new());
            json_array_add_string_element(dv_json_get_array(spec, "clone_bases"), bpath);
        }
        if (quota != NULL)
            json_object_set_object_member(spec, "quota", g_steal_pointer(&quota));
        json_object_set_object_member(rec, "spec", spec);
    }
    if (actor != NULL && actor->id != NULL)
        json_object_set_string_member(rec, "owner_id", actor->id);
    else if (dv_core_actor_authz(actor) != NULL)
        json_object_set_string_member(rec, "owner_id",
                                      dv_authz_context_get_user_id(dv_core_actor_authz(actor)));
    else
        json_object_set_null_member(rec, "owner_id");
    if (json_object_has_member(body, "description"))
        dv_core_copy_member(rec, "description", body, "description");
    else
        dv_core_copy_member(rec, "description", src, "description");
    json_object_set_int_member(rec, "created_at", now);
    json_object_set_int_member(rec, "updated_at", now);

    json_object_set_string_member(params, "uuid", uuid);
    json_object_set_string_member(params, "source_id", dv_json_get_string(src, "id", ""));
    json_object_set_string_member(params, "source_uuid", dv_json_get_string(src, "uuid", ""));
    json_object_set_string_member(params, "source_name", dv_json_get_string(src, "name", ""));
    json_object_set_boolean_member(params, "linked", linked);
    json_object_set_array_member(params, "disks", json_array_ref(plan));
    {
        DvJobRequest req = {
            .kind = "vm.clone",
            .target_type = "vm",
            .target_id = id,
            .target_name = name,
            .host_id = dv_json_get_string(host, "id", ""),
            .params = params,
            .created_by = dv_actor_get_name(actor),
        };
        return dv_job_manager_submit_with(dv_core(engine)->jobs, &req, dv_engine_vm_create_txn, rec,
                                          error);
    }
}

static const DvJobStep dv_vm_clone_steps[] = {
    { "copy disks", 85 },
    { "define domain", 10 },
    { "save", 5 },
};

/* One disk of the plan: its flat copy, or (linked) its frozen base and
 * the overlay on it.  Every volume made goes into @created first. */
static JsonObject *
dv_engine_vm_clone_disk(DvEngine *engine, DvJob *job, DvVirtHost *vh, JsonObject *vm, JsonObject *d,
                        GPtrArray *created, GError **error)
{
    GCancellable *c = dv_job_get_cancellable(job);
    const char *host_id = dv_json_get_string(vm, "host_id", "");
    const char *pool = dv_json_get_string(d, "pool", "");
    const char *base = dv_json_get_string(d, "base", NULL);
    g_autoptr(JsonObject) copy = NULL;
    JsonObject *overlay;

    copy = dv_virt_volume_clone(vh, dv_json_get_string(d, "source", ""), pool,
                                base != NULL ? base : dv_json_get_string(d, "name", ""), c, error);
    if (copy == NULL)
        return NULL;
    g_ptr_array_add(created, g_strdup(dv_json_get_string(copy, "path", "")));
    dv_engine_volume_remember(engine, host_id, pool, copy);
    if (base == NULL)
        return g_steal_pointer(&copy);
    overlay =
        dv_virt_volume_create_overlay(vh, pool, dv_json_get_string(d, "name", ""),
                                      dv_json_get_string(copy, "path", ""), "qcow2", 0, c, error);
    if (overlay == NULL)
        return NULL;
    g_ptr_array_add(created, g_strdup(dv_json_get_string(overlay, "path", "")));
    dv_engine_volume_remember(engine, host_id, pool, overlay);
    return overlay;
}

/* The same from a running source: its disk is frozen under a layer
 * "<disk>-drover-clone.qcow2" (an external disk-only snapshot) while the
 * copy reads it, then the layer is merged back (active block commit,
 * pivot), also when the copy failed.  The copy is crash-consistent: what
 * the disk held at the freeze, as after a power cut. */
static JsonObject *
dv_engine_vm_clone_disk_running(DvEngine *engine, DvJob *job, DvVirtHost *vh, JsonObject *vm,
                                const char *source_uuid, JsonObject *d, GPtrArray *created,
                                GError **error)
{
    GCancellable *c = dv_job_get_cancellable(job);
    const char *target = dv_json_get_string(d, "target", NULL);
    g_autofree char *layer =
        g_strconcat(dv_json_get_string(d, "source", ""), DV_VM_CLONE_LAYER_SUFFIX, NULL);
    g_autoptr(JsonObject) copy = NULL;
    g_autoptr(GError) local = NULL;

    if (target == NULL) {
        dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "disks",
                           "disks: the source's disk %s has no target to freeze",
                           dv_json_get_string(d, "source", ""));
        return NULL;
    }
    if (!dv_virt_domain_freeze_disk(vh, source_uuid, target, layer, c, error))
        return NULL;
    copy = dv_engine_vm_clone_disk(engine, job, vh, vm, d, created, &local);
    /* Not cancellable: the source must get its own disk back. */
    if (!dv_virt_domain_commit_active(vh, source_uuid, target, DV_VM_CLONE_MERGE_MS, NULL,
                                      local == NULL ? error : NULL)) {
        if (local == NULL) {
            g_prefix_error(error, "the copy was made, but ");
            return NULL;
        }
        g_warning("clone: the source %s stays on its layer %s", source_uuid, layer);
    }
    if (copy == NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    return g_steal_pointer(&copy);
}

static gboolean
dv_engine_vm_clone_run(DvEngine *engine, DvJob *job, DvVirtHost *vh, JsonObject *vm,
                       GPtrArray *created, gboolean *defined, GError **error)
{
    JsonObject *params = dv_job_get_params(job);
    JsonArray *disks = dv_json_get_array(params, "disks");
    GCancellable *c = dv_job_get_cancellable(job);
    const char *source_uuid = dv_json_get_string(params, "source_uuid", "");
    g_autoptr(JsonObject) map = json_object_new();
    g_autoptr(JsonObject) src_dom = NULL;
    gboolean running;
    g_autoptr(JsonObject) dom = NULL;
    g_autofree char *got_uuid = NULL;
    guint n = disks != NULL ? json_array_get_length(disks) : 0;

    if (!dv_job_step(job, "copy disks", error))
        return FALSE;
    /* The row said shut off when the job was accepted; the domain must
     * still be, or the copies would be torn. */
    src_dom = dv_virt_domain_get(vh, source_uuid, c, error);
    if (src_dom == NULL)
        return FALSE;
    running = g_strcmp0(dv_json_get_string(src_dom, "state", ""), "running") == 0;
    if (!running && g_strcmp0(dv_json_get_string(src_dom, "state", ""), "shutoff") != 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "state",
                           "state: VM %s is %s; a clone copies the disks of a shut-off or "
                           "running VM",
                           dv_json_get_string(params, "source_name", ""),
                           dv_json_get_string(src_dom, "state", ""));
        return FALSE;
    }
    for (guint i = 0; i < n; i++) {
        JsonObject *d = json_array_get_object_element(disks, i);
        g_autoptr(JsonObject) vol =
            running ? dv_engine_vm_clone_disk_running(engine, job, vh, vm, source_uuid, d, created,
                                                      error)
                    : dv_engine_vm_clone_disk(engine, job, vh, vm, d, created, error);
        if (vol == NULL) {
            g_prefix_error(error, "disks[%u]: ", i);
            return FALSE;
        }
        json_object_set_string_member(map, dv_json_get_string(d, "source", ""),
                                      dv_json_get_string(vol, "path", ""));

        dv_job_step_progress(job, (double)(i + 1) / n);
    }
    if (!dv_job_step(job, "define domain", error))
        return FALSE;
    got_uuid = dv_virt_domain_clone_define(vh, source_uuid, dv_json_get_string(vm, "name", ""),
                                           dv_json_get_string(params, "uuid", ""), map, c, error);
    if (got_uuid == NULL)
        return FALSE;
    *defined = TRUE;
    if (!dv_job_step(job, "save", error))
        return FALSE;
    dom = dv_virt_domain_get(vh, got_uuid, c, error);
    if (dom == NULL)
        return FALSE;
    return dv_core_vm_sync(engine, vm, dom, error);
}

static gboolean
dv_engine_vm_clone_job(DvJob *job, gpointer user_data, GError **error)
{
    JsonObject *params = dv_job_get_params(job);
    g_autoptr(JsonObject) result =
        dv_engine_vm_make_job(user_data, job, dv_vm_clone_steps, G_N_ELEMENTS(dv_vm_clone_steps),
                              dv_engine_vm_clone_run, error);
    if (result == NULL)
        return FALSE;
    json_object_set_string_member(result, "source", dv_json_get_string(params, "source_name", ""));
    json_object_set_boolean_member(result, "linked", dv_json_get_bool(params, "linked", FALSE));
    dv_job_set_result(job, result);
    return TRUE;
}

void
dv_engine_vms_register(DvEngine *engine)
{
    static const struct {
        const char *name;
        DvJobFunc func;
        gboolean resumable;
    } kinds[] = {
        { "vm.create", dv_engine_vm_create_job, TRUE },
        { "vm.start", dv_engine_vm_start_job, TRUE },
        { "vm.stop", dv_engine_vm_stop_job, TRUE },
        { "vm.shutdown", dv_engine_vm_shutdown_job, TRUE },
        /* A reboot or reset run twice is two of them: not resumed. */
        { "vm.reboot", dv_engine_vm_reboot_job, FALSE },
        { "vm.reset", dv_engine_vm_reset_job, FALSE },
        { "vm.change", dv_engine_vm_change_job, TRUE },
        { "vm.delete", dv_engine_vm_delete_job, TRUE },
        /* A retry would meet its own half-made copies: a failed clone
         * removes them and is run again by hand. */
        { "vm.clone", dv_engine_vm_clone_job, FALSE },
        { "vm.snapshot.create", dv_engine_snap_create_job, TRUE },
        /* A revert interrupted half-way leaves the guest in an unknown
         * state: report it rather than run it again. */
        { "vm.snapshot.revert", dv_engine_snap_revert_job, FALSE },
        { "vm.snapshot.delete", dv_engine_snap_delete_job, TRUE },
    };
    for (gsize i = 0; i < G_N_ELEMENTS(kinds); i++) {
        DvJobKind kind = { kinds[i].name, kinds[i].func, engine, kinds[i].resumable };
        dv_job_manager_register_kind(dv_core(engine)->jobs, &kind);
    }
    dv_engine_vm_disks_register(engine);
    dv_engine_vm_migrate_register(engine);
    dv_engine_vm_nics_register(engine);
    dv_engine_vm_cdrom_register(engine);
    dv_engine_volume_upload_register(engine);
}
