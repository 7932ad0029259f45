#define G_LOG_DOMAIN "DvVirtProbe"

#include "dv-virt-private.h"

#include <string.h>

/* ---- domains ---------------------------------------------------------- */

static const char *
dv_virt_domain_state_to_string(int state)
{
    switch (state) {
    case VIR_DOMAIN_RUNNING:
    case VIR_DOMAIN_BLOCKED:
        return "running";
    case VIR_DOMAIN_PAUSED:
        return "paused";
    case VIR_DOMAIN_SHUTDOWN:
        return "shutdown";
    case VIR_DOMAIN_SHUTOFF:
        return "shutoff";
    case VIR_DOMAIN_CRASHED:
        return "crashed";
    case VIR_DOMAIN_PMSUSPENDED:
        return "pmsuspended";
    default:
        return "unknown";
    }
}

static gboolean
dv_virt_str_is(const char *a, const char *b)
{
    return a != NULL && g_strcmp0(a, b) == 0;
}

/* Reads what a probe needs from one domain's XML in a single pass over
 * the tree: firmware, disks, interfaces. */
static void
dv_virt_domain_entry_from_xml(JsonObject *obj, xmlNode *root)
{
    xmlNode *os = dv_virt_xml_child(root, "os");
    xmlNode *loader = dv_virt_xml_child(os, "loader");
    xmlNode *devices = dv_virt_xml_child(root, "devices");
    g_autofree char *firmware = dv_virt_xml_prop(os, "firmware");
    g_autofree char *loader_type = dv_virt_xml_prop(loader, "type");
    g_autofree char *loader_secure = dv_virt_xml_prop(loader, "secure");
    g_autofree char *description = dv_virt_xml_child_text(root, "description");
    gboolean efi = dv_virt_str_is(firmware, "efi") || dv_virt_str_is(loader_type, "pflash");
    gboolean secure = dv_virt_str_is(loader_secure, "yes");
    JsonArray *disks = json_array_new();
    JsonArray *nics = json_array_new();

    /* <os firmware='efi'><firmware><feature enabled='yes' name='secure-boot'/> */
    for (xmlNode *f = dv_virt_xml_child(dv_virt_xml_child(os, "firmware"), "feature"); f != NULL;
         f = f->next) {
        g_autofree char *name = NULL;
        g_autofree char *enabled = NULL;

        if (f->type != XML_ELEMENT_NODE || xmlStrcmp(f->name, BAD_CAST "feature") != 0)
            continue;
        name = dv_virt_xml_prop(f, "name");
        enabled = dv_virt_xml_prop(f, "enabled");
        if (dv_virt_str_is(name, "secure-boot"))
            secure = dv_virt_str_is(enabled, "yes");
    }
    if (!efi && loader != NULL) {
        xmlChar *path = xmlNodeGetContent(loader);
        efi = path != NULL && (strstr((const char *)path, "OVMF") != NULL ||
                               strstr((const char *)path, "edk2") != NULL);
        xmlFree(path);
    }

    for (xmlNode *d = devices != NULL ? devices->children : NULL; d != NULL; d = d->next) {
        if (d->type != XML_ELEMENT_NODE)
            continue;
        if (xmlStrcmp(d->name, BAD_CAST "disk") == 0) {
            JsonObject *disk = json_object_new();
            xmlNode *source = dv_virt_xml_child(d, "source");
            g_autofree char *device = dv_virt_xml_prop(d, "device");
            g_autofree char *target = dv_virt_xml_prop(dv_virt_xml_child(d, "target"), "dev");
            g_autofree char *bus = dv_virt_xml_prop(dv_virt_xml_child(d, "target"), "bus");
            g_autofree char *format = dv_virt_xml_prop(dv_virt_xml_child(d, "driver"), "type");
            g_autofree char *path = dv_virt_xml_prop(source, "file");

            if (path == NULL)
                path = dv_virt_xml_prop(source, "dev");
            if (path == NULL)
                path = dv_virt_xml_prop(source, "volume");
            json_object_set_string_member(disk, "device", device != NULL ? device : "disk");
            json_object_set_string_member(disk, "target", target);
            json_object_set_string_member(disk, "bus", bus);
            json_object_set_string_member(disk, "source", path);
            json_object_set_string_member(disk, "format", format);
            json_object_set_boolean_member(disk, "readonly",
                                           dv_virt_xml_child(d, "readonly") != NULL);
            json_object_set_boolean_member(disk, "shareable",
                                           dv_virt_xml_child(d, "shareable") != NULL);
            json_array_add_object_element(disks, disk);
        } else if (xmlStrcmp(d->name, BAD_CAST "interface") == 0) {
            JsonObject *nic = json_object_new();
            xmlNode *source = dv_virt_xml_child(d, "source");
            g_autofree char *type = dv_virt_xml_prop(d, "type");
            g_autofree char *network = dv_virt_xml_prop(source, "network");
            g_autofree char *bridge = dv_virt_xml_prop(source, "bridge");
            g_autofree char *mac = dv_virt_xml_prop(dv_virt_xml_child(d, "mac"), "address");

            json_object_set_string_member(nic, "type", type);
            if (network != NULL)
                json_object_set_string_member(nic, "network", network);
            if (bridge != NULL)
                json_object_set_string_member(nic, "bridge", bridge);
            json_object_set_string_member(nic, "mac", mac);
            json_array_add_object_element(nics, nic);
        }
    }
    json_object_set_int_member(obj, "generation", efi ? 2 : 1);
    json_object_set_boolean_member(obj, "secure_boot", efi && secure);
    json_object_set_string_member(obj, "description", description);
    json_object_set_array_member(obj, "disks", disks);
    json_object_set_array_member(obj, "networks", nics);
}

JsonObject *
dv_virt_snapshot_entry_new(DvVirtOp *op, virDomainSnapshotPtr snap, GError **error)
{
    g_autoptr(JsonObject) obj = json_object_new();
    g_autoptr(xmlDoc) doc = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *created = NULL;
    g_autofree char *state = NULL;
    g_autofree char *description = NULL;
    g_autofree char *parent = NULL;
    const char *name = virDomainSnapshotGetName(snap);
    char *raw;
    xmlNode *root;
    int current;
    gint64 created_at = 0;

    raw = virDomainSnapshotGetXMLDesc(snap, 0);
    if (raw == NULL)
        return dv_virt_op_fail_null(op, error, "cannot read snapshot %s", name);
    xml = g_strdup(raw);
    free(raw);
    current = virDomainSnapshotIsCurrent(snap, 0);
    if (current < 0)
        virResetLastError();
    doc = dv_virt_xml_parse(xml, error);
    if (doc == NULL)
        return NULL;
    root = xmlDocGetRootElement(doc);
    created = dv_virt_xml_child_text(root, "creationTime");
    state = dv_virt_xml_child_text(root, "state");
    description = dv_virt_xml_child_text(root, "description");
    parent = dv_virt_xml_child_text(dv_virt_xml_child(root, "parent"), "name");
    if (created != NULL)
        created_at = g_ascii_strtoll(created, NULL, 10);

    json_object_set_string_member(obj, "name", name);
    json_object_set_string_member(obj, "description", description);
    json_object_set_string_member(obj, "state", state);
    json_object_set_string_member(obj, "parent", parent);
    json_object_set_boolean_member(obj, "is_current", current == 1);
    json_object_set_int_member(obj, "created_at", created_at);
    return g_steal_pointer(&obj);
}

JsonArray *
dv_virt_snapshot_list_for(DvVirtOp *op, virDomainPtr dom, GError **error)
{
    g_autoptr(DvVirtSnapList) snaps = NULL;
    g_autoptr(JsonArray) arr = json_array_new();
    const char *dom_name = virDomainGetName(dom);
    int n;

    n = virDomainListAllSnapshots(dom, &snaps, 0);
    if (n < 0)
        return dv_virt_op_fail_null(op, error, "cannot list snapshots of %s", dom_name);
    for (int i = 0; i < n; i++) {
        JsonObject *entry = dv_virt_snapshot_entry_new(op, snaps[i], error);
        if (entry == NULL)
            return NULL;
        json_array_add_object_element(arr, entry);
    }
    return g_steal_pointer(&arr);
}

JsonObject *
dv_virt_domain_entry_new(DvVirtOp *op, virDomainPtr dom, gboolean with_snapshots, GError **error)
{
    g_autoptr(JsonObject) obj = json_object_new();
    g_autoptr(xmlDoc) doc = NULL;
    char uuid[VIR_UUID_STRING_BUFLEN];
    virDomainInfo info;
    char *xml;

    if (virDomainGetUUIDString(dom, uuid) < 0)
        return dv_virt_op_fail_null(op, error, "cannot read domain UUID");
    if (virDomainGetInfo(dom, &info) < 0)
        return dv_virt_op_fail_null(op, error, "cannot read domain %s", uuid);
    xml = virDomainGetXMLDesc(dom, 0);
    if (xml == NULL)
        return dv_virt_op_fail_null(op, error, "cannot read domain %s", uuid);
    doc = dv_virt_xml_parse(xml, error);
    free(xml);
    if (doc == NULL)
        return NULL;

    json_object_set_string_member(obj, "uuid", uuid);
    json_object_set_string_member(obj, "name", virDomainGetName(dom));
    json_object_set_string_member(obj, "state", dv_virt_domain_state_to_string(info.state));
    json_object_set_int_member(obj, "vcpus", info.nrVirtCpu);
    /* The memory the domain has now (its balloon target when running),
     * not its maximum: a live change below the maximum shows. */
    json_object_set_int_member(obj, "memory_mib", (gint64)(info.memory / 1024));
    dv_virt_domain_entry_from_xml(obj, xmlDocGetRootElement(doc));
    if (with_snapshots) {
        JsonArray *snaps = dv_virt_snapshot_list_for(op, dom, error);
        if (snaps == NULL)
            return NULL;
        json_object_set_array_member(obj, "snapshots", snaps);
    }
    return g_steal_pointer(&obj);
}

/* ---- pools, volumes, networks ----------------------------------------- */

JsonObject *
dv_virt_volume_entry_new(DvVirtOp *op, virStorageVolPtr vol, GError **error)
{
    g_autoptr(JsonObject) obj = json_object_new();
    g_autoptr(xmlDoc) doc = NULL;
    g_autofree char *format = NULL;
    virStorageVolInfo info;
    const char *name = virStorageVolGetName(vol);
    char *path;
    char *xml;

    if (virStorageVolGetInfo(vol, &info) < 0)
        return dv_virt_op_fail_null(op, error, "cannot read volume %s", name);
    xml = virStorageVolGetXMLDesc(vol, 0);
    if (xml == NULL)
        return dv_virt_op_fail_null(op, error, "cannot read volume %s", name);
    doc = dv_virt_xml_parse(xml, error);
    free(xml);
    if (doc == NULL)
        return NULL;
    format = dv_virt_xml_prop(
        dv_virt_xml_child(dv_virt_xml_child(xmlDocGetRootElement(doc), "target"), "format"), "type");
    path = virStorageVolGetPath(vol);
    if (path == NULL)
        virResetLastError();

    json_object_set_string_member(obj, "name", name);
    json_object_set_string_member(obj, "key", virStorageVolGetKey(vol));
    json_object_set_string_member(obj, "path", path);
    json_object_set_string_member(obj, "format", format);
    json_object_set_int_member(obj, "capacity", (gint64)info.capacity);
    json_object_set_int_member(obj, "allocation", (gint64)info.allocation);
    free(path);
    return g_steal_pointer(&obj);
}

static JsonObject *
dv_virt_pool_entry_new(DvVirtOp *op, virStoragePoolPtr pool, GError **error)
{
    g_autoptr(JsonObject) obj = json_object_new();
    g_autoptr(JsonArray) vols_arr = json_array_new();
    g_autoptr(xmlDoc) doc = NULL;
    g_autofree char *type = NULL;
    g_autofree char *path = NULL;
    char uuid[VIR_UUID_STRING_BUFLEN];
    virStoragePoolInfo info;
    char *xml;
    const char *name = virStoragePoolGetName(pool);

    if (virStoragePoolGetUUIDString(pool, uuid) < 0 || virStoragePoolGetInfo(pool, &info) < 0)
        return dv_virt_op_fail_null(op, error, "cannot read pool %s", name);
    xml = virStoragePoolGetXMLDesc(pool, 0);
    if (xml == NULL)
        return dv_virt_op_fail_null(op, error, "cannot read pool %s", name);
    doc = dv_virt_xml_parse(xml, error);
    free(xml);
    if (doc == NULL)
        return NULL;
    type = dv_virt_xml_prop(xmlDocGetRootElement(doc), "type");
    path = dv_virt_xml_child_text(dv_virt_xml_child(xmlDocGetRootElement(doc), "target"), "path");

    if (info.state == VIR_STORAGE_POOL_RUNNING || info.state == VIR_STORAGE_POOL_DEGRADED) {
        g_autoptr(DvVirtVolList) vols = NULL;
        int n = virStoragePoolListAllVolumes(pool, &vols, 0);

        if (n < 0)
            return dv_virt_op_fail_null(op, error, "cannot list volumes of pool %s", name);
        for (int i = 0; i < n; i++) {
            g_autoptr(GError) vol_error = NULL;
            JsonObject *v = dv_virt_volume_entry_new(op, vols[i], &vol_error);
            if (v == NULL) {
                /* Deleted by another client between the list and the read. */
                if (g_error_matches(vol_error, DV_ERROR, DV_ERROR_NOT_FOUND))
                    continue;
                g_propagate_error(error, g_steal_pointer(&vol_error));
                return NULL;
            }
            json_array_add_object_element(vols_arr, v);
        }
    }
    json_object_set_string_member(obj, "name", name);
    json_object_set_string_member(obj, "uuid", uuid);
    json_object_set_string_member(obj, "type", type);
    json_object_set_string_member(obj, "path", path);
    json_object_set_string_member(obj, "state", info.state == VIR_STORAGE_POOL_RUNNING ? "running"
                                               : info.state == VIR_STORAGE_POOL_INACTIVE
                                                   ? "inactive"
                                               : info.state == VIR_STORAGE_POOL_BUILDING
                                                   ? "building"
                                               : info.state == VIR_STORAGE_POOL_DEGRADED
                                                   ? "degraded"
                                                   : "inaccessible");
    json_object_set_int_member(obj, "capacity", (gint64)info.capacity);
    json_object_set_int_member(obj, "allocation", (gint64)info.allocation);
    json_object_set_int_member(obj, "available", (gint64)info.available);
    json_object_set_array_member(obj, "volumes", g_steal_pointer(&vols_arr));
    return g_steal_pointer(&obj);
}

static JsonObject *
dv_virt_network_entry_new(DvVirtOp *op, virNetworkPtr net, GError **error)
{
    g_autoptr(JsonObject) obj = json_object_new();
    char uuid[VIR_UUID_STRING_BUFLEN];
    const char *name = virNetworkGetName(net);
    int active;
    char *bridge;

    if (virNetworkGetUUIDString(net, uuid) < 0)
        return dv_virt_op_fail_null(op, error, "cannot read network");
    active = virNetworkIsActive(net);
    if (active < 0)
        return dv_virt_op_fail_null(op, error, "cannot read network %s", name);
    /* Networks without a bridge (hostdev, macvtap) have none: not an error. */
    bridge = virNetworkGetBridgeName(net);
    if (bridge == NULL)
        virResetLastError();
    json_object_set_string_member(obj, "name", name);
    json_object_set_string_member(obj, "uuid", uuid);
    json_object_set_boolean_member(obj, "active", active == 1);
    json_object_set_string_member(obj, "bridge", bridge);
    free(bridge);
    return g_steal_pointer(&obj);
}

static char *
dv_virt_version_to_string(unsigned long v)
{
    return g_strdup_printf("%lu.%lu.%lu", v / 1000000, (v / 1000) % 1000, v % 1000);
}

JsonObject *
dv_virt_host_probe(DvVirtHost *host, GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(JsonObject) obj = json_object_new();
    g_autoptr(DvVirtDomainList) doms = NULL;
    g_autoptr(DvVirtPoolList) pools = NULL;
    g_autoptr(DvVirtNetList) nets = NULL;
    g_autoptr(JsonArray) doms_arr = json_array_new();
    g_autoptr(JsonArray) pools_arr = json_array_new();
    g_autoptr(JsonArray) nets_arr = json_array_new();
    g_autofree char *hv_version = NULL;
    g_autofree char *lib_version = NULL;
    virNodeInfo node;
    unsigned long long free_mem;
    unsigned long hv = 0;
    unsigned long lib = 0;
    const char *type;
    char *hostname;
    int n;

    g_return_val_if_fail(host != NULL, NULL);
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;

    hostname = virConnectGetHostname(op.conn);
    if (hostname == NULL)
        return dv_virt_op_fail_null(&op, error, "cannot read host name");
    json_object_set_string_member(obj, "hostname", hostname);
    free(hostname);
    if (virNodeGetInfo(op.conn, &node) < 0)
        return dv_virt_op_fail_null(&op, error, "cannot read node info");
    json_object_set_int_member(obj, "cpus", node.cpus);
    json_object_set_int_member(obj, "memory_mib", (gint64)(node.memory / 1024));
    free_mem = virNodeGetFreeMemory(op.conn);
    if (free_mem == 0)
        virResetLastError();
    json_object_set_int_member(obj, "free_memory_mib", (gint64)(free_mem / (1024 * 1024)));
    type = virConnectGetType(op.conn);
    if (type == NULL)
        return dv_virt_op_fail_null(&op, error, "cannot read hypervisor type");
    json_object_set_string_member(obj, "hypervisor_type", type);
    if (virConnectGetVersion(op.conn, &hv) < 0)
        return dv_virt_op_fail_null(&op, error, "cannot read hypervisor version");
    hv_version = dv_virt_version_to_string(hv);
    json_object_set_string_member(obj, "hypervisor_version", hv_version);
    json_object_set_int_member(obj, "hypervisor_major", (gint64)(hv / 1000000));
    if (virConnectGetLibVersion(op.conn, &lib) < 0)
        return dv_virt_op_fail_null(&op, error, "cannot read libvirt version");
    lib_version = dv_virt_version_to_string(lib);
    json_object_set_string_member(obj, "libvirt_version", lib_version);

    n = virConnectListAllStoragePools(op.conn, &pools, 0);
    if (n < 0)
        return dv_virt_op_fail_null(&op, error, "cannot list storage pools");
    for (int i = 0; i < n; i++) {
        g_autoptr(GError) pool_error = NULL;
        JsonObject *p = dv_virt_pool_entry_new(&op, pools[i], &pool_error);
        if (p == NULL) {
            /* Undefined by another client between the list and the read. */
            if (g_error_matches(pool_error, DV_ERROR, DV_ERROR_NOT_FOUND))
                continue;
            g_propagate_error(error, g_steal_pointer(&pool_error));
            return NULL;
        }
        json_array_add_object_element(pools_arr, p);
    }
    n = virConnectListAllNetworks(op.conn, &nets, 0);
    if (n < 0)
        return dv_virt_op_fail_null(&op, error, "cannot list networks");
    for (int i = 0; i < n; i++) {
        g_autoptr(GError) net_error = NULL;
        JsonObject *e = dv_virt_network_entry_new(&op, nets[i], &net_error);
        if (e == NULL) {
            /* Undefined by another client between the list and the read. */
            if (g_error_matches(net_error, DV_ERROR, DV_ERROR_NOT_FOUND))
                continue;
            g_propagate_error(error, g_steal_pointer(&net_error));
            return NULL;
        }
        json_array_add_object_element(nets_arr, e);
    }
    n = virConnectListAllDomains(op.conn, &doms, 0);
    if (n < 0)
        return dv_virt_op_fail_null(&op, error, "cannot list domains");
    for (int i = 0; i < n; i++) {
        g_autoptr(GError) dom_error = NULL;
        JsonObject *d = dv_virt_domain_entry_new(&op, doms[i], TRUE, &dom_error);

        if (d == NULL) {
            /* A domain undefined between the list and the read is gone,
             * not an error of the probe. */
            if (g_error_matches(dom_error, DV_ERROR, DV_ERROR_NOT_FOUND))
                continue;
            g_propagate_error(error, g_steal_pointer(&dom_error));
            return NULL;
        }
        json_array_add_object_element(doms_arr, d);
    }
    json_object_set_array_member(obj, "pools", g_steal_pointer(&pools_arr));
    json_object_set_array_member(obj, "networks", g_steal_pointer(&nets_arr));
    json_object_set_array_member(obj, "domains", g_steal_pointer(&doms_arr));
    return g_steal_pointer(&obj);
}

/* ---- rights ----------------------------------------------------------- */

static gboolean
dv_virt_is_denied(const GError *e)
{
    return g_error_matches(e, DV_ERROR, DV_ERROR_PERMISSION_DENIED);
}

static void
dv_virt_rights_note(GString *detail, const char *what, const GError *e)
{
    if (detail->len > 0)
        g_string_append(detail, "; ");
    g_string_append_printf(detail, "%s: %s", what, e->message);
}

JsonObject *
dv_virt_host_check_rights(DvVirtHost *host, GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(JsonObject) obj = json_object_new();
    g_autoptr(JsonArray) missing = json_array_new();
    g_autoptr(GString) detail = g_string_new(NULL);
    g_autoptr(GError) local_error = NULL;
    g_autoptr(DvVirtPoolList) pools = NULL;
    g_autofree char *suffix = dv_virt_random_suffix();
    g_autofree char *probe_name = g_strdup_printf("drover-rights-probe-%s", suffix);
    gboolean read_write = TRUE;
    gboolean list_storage = TRUE;
    gboolean create_volumes = TRUE;
    gboolean define_domains = TRUE;
    virStoragePoolPtr active_pool = NULL;
    const char *pool_name = NULL;
    int n;

    g_return_val_if_fail(host != NULL, NULL);
    /* The pool always opens connections read-write: a host that only
     * grants read-only access refuses the open itself. */
    if (!dv_virt_op_begin(&op, host, cancellable, &local_error)) {
        if (!dv_virt_is_denied(local_error)) {
            g_propagate_error(error, g_steal_pointer(&local_error));
            return NULL;
        }
        dv_virt_rights_note(detail, "read-write connection", local_error);
        read_write = list_storage = create_volumes = define_domains = FALSE;
    }

    if (read_write) {
        n = virConnectListAllStoragePools(op.conn, &pools, 0);
        if (n < 0) {
            dv_virt_op_fail(&op, &local_error, "cannot list storage pools");
            list_storage = FALSE;
            dv_virt_rights_note(detail, "list storage", local_error);
            g_clear_error(&local_error);
        }
        for (int i = 0; i < n && active_pool == NULL; i++) {
            if (virStoragePoolIsActive(pools[i]) == 1) {
                active_pool = pools[i];
                pool_name = virStoragePoolGetName(active_pool);
            }
        }
        if (active_pool != NULL) {
            g_autoptr(DvVirtVolList) vols = NULL;

            if (virStoragePoolListAllVolumes(active_pool, &vols, 0) < 0) {
                dv_virt_op_fail(&op, &local_error, "cannot list volumes of pool %s", pool_name);
                list_storage = FALSE;
                dv_virt_rights_note(detail, "list volumes", local_error);
                g_clear_error(&local_error);
            }
        }
    }

    if (read_write && active_pool == NULL) {
        if (detail->len > 0)
            g_string_append(detail, "; ");
        g_string_append(detail, "create volumes: not verified, the host has no active storage "
                                "pool (assumed allowed)");
    } else if (read_write) {
        g_autofree char *vol_xml = g_strdup_printf(
            "<volume><name>%s</name><capacity>0</capacity><allocation>0</allocation>"
            "<target><format type='raw'/></target></volume>",
            probe_name);
        gboolean created = FALSE;

        /* The first active pool that takes a volume: one broken pool (its
         * directory removed on the host) is that pool's problem, not a
         * missing right; a refusal is, and so is every pool failing. */
        for (int i = 0; i < n && !created; i++) {
            g_autoptr(virStorageVol) vol = NULL;
            if (virStoragePoolIsActive(pools[i]) != 1)
                continue;
            pool_name = virStoragePoolGetName(pools[i]);
            vol = virStorageVolCreateXML(pools[i], vol_xml, 0);
            if (vol == NULL) {
                g_clear_error(&local_error);
                dv_virt_op_fail(&op, &local_error, "cannot create a volume in pool %s", pool_name);
                if (dv_virt_is_denied(local_error))
                    break;
                continue;
            }
            created = TRUE;
            if (virStorageVolDelete(vol, 0) < 0) {
                dv_virt_op_fail(&op, &local_error, "cannot delete probe volume %s", probe_name);
                dv_virt_rights_note(detail, "delete probe volume (left behind)", local_error);
                g_clear_error(&local_error);
            }
        }
        if (!created && local_error == NULL) {
            /* The pools stopped meanwhile. */
            g_string_append_printf(detail, "%screate volumes: not verified, no storage pool stayed active "
                                   "(assumed allowed)", detail->len > 0 ? "; " : "");
        } else if (!created) {
            create_volumes = FALSE;
            dv_virt_rights_note(detail, "create volumes", local_error);
            g_clear_error(&local_error);
        }
    }

    if (read_write) {
        g_autofree char *dom_type = g_ascii_strdown(virConnectGetType(op.conn) ?: "qemu", -1);
        g_autofree char *dom_xml = NULL;
        g_autoptr(virDomain) dom = NULL;

        /* Any QEMU-family daemon accepts type 'qemu' (TCG) definitions. */
        if (g_strcmp0(dom_type, "test") != 0) {
            g_free(dom_type);
            dom_type = g_strdup("qemu");
        }
        dom_xml = g_strdup_printf("<domain type='%s'><name>%s</name>"
                                  "<description>Drover rights probe; safe to delete"
                                  "</description><memory unit='MiB'>16</memory><vcpu>1</vcpu>"
                                  "<os><type arch='x86_64'>hvm</type></os></domain>",
                                  dom_type, probe_name);
        dom = virDomainDefineXML(op.conn, dom_xml);
        if (dom == NULL) {
            dv_virt_op_fail(&op, &local_error, "cannot define a domain");
            define_domains = FALSE;
            dv_virt_rights_note(detail, "define domains", local_error);
            g_clear_error(&local_error);
        } else if (virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_NVRAM) < 0 &&
                   virDomainUndefine(dom) < 0) {
            dv_virt_op_fail(&op, &local_error, "cannot undefine probe domain %s", probe_name);
            dv_virt_rights_note(detail, "undefine probe domain (left behind)", local_error);
            g_clear_error(&local_error);
        }
    }

    if (!read_write)
        json_array_add_string_element(missing, "read_write");
    if (!list_storage)
        json_array_add_string_element(missing, "list_storage");
    if (!create_volumes)
        json_array_add_string_element(missing, "create_volumes");
    if (!define_domains)
        json_array_add_string_element(missing, "define_domains");
    json_object_set_boolean_member(obj, "read_write", read_write);
    json_object_set_boolean_member(obj, "list_storage", list_storage);
    json_object_set_boolean_member(obj, "create_volumes", create_volumes);
    json_object_set_boolean_member(obj, "define_domains", define_domains);
    json_object_set_array_member(obj, "missing", g_steal_pointer(&missing));
    json_object_set_string_member(obj, "detail", detail->len > 0 ? detail->str : "all rights present");
    return g_steal_pointer(&obj);
}

/* ---- daemon limits (admin API) ----------------------------------------
 *
 * libvirt-admin cannot be used in a process that already uses libvirt
 * (9.0): both libraries carry the same GObject classes (virConnect, ...,
 * virAdmConnect), so virAdmInitialize() fails to register them ("cannot
 * register existing type") and its first virAdmConnectOpen() hits a
 * critical on an invalid GType.  The admin API is therefore reached
 * through its own client, virt-admin, in a child process with a timeout.
 */

#define DV_VIRT_ADMIN_TIMEOUT_MS 10000

typedef struct {
    GMainContext *context;
    GAsyncResult *result;
    gboolean timed_out;
} DvVirtAdminWait;

static void
dv_virt_admin_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
    DvVirtAdminWait *wait = user_data;

    wait->result = g_object_ref(res);
    g_main_context_wakeup(wait->context);
}

static gboolean
dv_virt_admin_timeout_cb(gpointer user_data)
{
    DvVirtAdminWait *wait = user_data;

    wait->timed_out = TRUE;
    return G_SOURCE_REMOVE;
}

/* Runs `virt-admin -c <uri> <cmd> <server>`; returns its stdout. */
static char *
dv_virt_admin_run(const char *adm_uri, const char *cmd, const char *server, GError **error)
{
    g_autoptr(GMainContext) context = g_main_context_new();
    g_autoptr(GSubprocess) proc = NULL;
    g_autoptr(GSource) timeout = NULL;
    g_autoptr(GError) local_error = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    DvVirtAdminWait wait = { context, NULL, FALSE };

    proc = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                            &local_error, "virt-admin", "-q", "-c", adm_uri, cmd, server, NULL);
    if (proc == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED,
                    "cannot run virt-admin (package libvirt-clients): %s", local_error->message);
        return NULL;
    }
    g_main_context_push_thread_default(context);
    g_subprocess_communicate_utf8_async(proc, NULL, NULL, dv_virt_admin_done_cb, &wait);
    timeout = g_timeout_source_new(DV_VIRT_ADMIN_TIMEOUT_MS);
    g_source_set_callback(timeout, dv_virt_admin_timeout_cb, &wait, NULL);
    g_source_attach(timeout, context);
    while (wait.result == NULL && !wait.timed_out)
        g_main_context_iteration(context, TRUE);
    if (wait.result == NULL) {
        g_subprocess_force_exit(proc);
        while (wait.result == NULL)
            g_main_context_iteration(context, TRUE);
    }
    g_source_destroy(timeout);
    g_main_context_pop_thread_default(context);

    if (!g_subprocess_communicate_utf8_finish(proc, wait.result, &out, &err, &local_error)) {
        g_object_unref(wait.result);
        g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED, "virt-admin failed: %s",
                    local_error->message);
        return NULL;
    }
    g_object_unref(wait.result);
    if (wait.timed_out) {
        g_set_error(error, DV_ERROR, DV_ERROR_TIMEOUT, "virt-admin -c %s %s did not answer in %d ms",
                    adm_uri, cmd, DV_VIRT_ADMIN_TIMEOUT_MS);
        return NULL;
    }
    if (!g_subprocess_get_successful(proc)) {
        g_strstrip(err);
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot read limits of %s: %s", adm_uri,
                    err != NULL && err[0] != '\0' ? err : "virt-admin failed");
        return NULL;
    }
    return g_steal_pointer(&out);
}

/* "name : value" lines -> JSON ints named by @map (libvirt name, json
 * name pairs, NULL-terminated). */
static void
dv_virt_admin_parse(JsonObject *obj, const char *out, const char *const *map)
{
    g_auto(GStrv) lines = g_strsplit(out, "\n", -1);

    for (guint i = 0; lines[i] != NULL; i++) {
        char *colon = strchr(lines[i], ':');
        guint64 v = 0;

        if (colon == NULL)
            continue;
        *colon = '\0';
        g_strstrip(lines[i]);
        for (guint m = 0; map[m] != NULL; m += 2) {
            if (g_strcmp0(lines[i], map[m]) == 0 &&
                g_ascii_string_to_unsigned(g_strstrip(colon + 1), 10, 0, G_MAXINT64, &v, NULL))
                json_object_set_int_member(obj, map[m + 1], (gint64)v);
        }
    }
}

/* max_client_requests is not exposed through the admin API. */
static void
dv_virt_read_max_client_requests(JsonObject *obj, const char *daemon)
{
    g_autofree char *path = g_strdup_printf("/etc/libvirt/%s.conf", daemon);
    g_autofree char *contents = NULL;
    g_auto(GStrv) lines = NULL;
    gint64 value = 5;
    const char *source = "default";

    if (g_file_get_contents(path, &contents, NULL, NULL)) {
        lines = g_strsplit(contents, "\n", -1);
        for (guint i = 0; lines[i] != NULL; i++) {
            char *line = lines[i];
            char *hash = strchr(line, '#');
            char *eq;
            guint64 v = 0;

            if (hash != NULL)
                *hash = '\0';
            eq = strchr(line, '=');
            if (eq == NULL)
                continue;
            *eq = '\0';
            if (g_strcmp0(g_strstrip(line), "max_client_requests") != 0)
                continue;
            if (g_ascii_string_to_unsigned(g_strstrip(eq + 1), 10, 1, G_MAXINT, &v, NULL)) {
                value = (gint64)v;
                source = "config";
            }
        }
    }
    json_object_set_int_member(obj, "max_client_requests", value);
    json_object_set_string_member(obj, "max_client_requests_source", source);
}

JsonObject *
dv_virt_host_get_daemon_limits(DvVirtHost *host, GError **error)
{
    static const char *const client_map[] = {
        "nclients_max", "max_clients",
        "nclients", "nclients",
        "nclients_unauth_max", "max_unauth_clients",
        "nclients_unauth", "nclients_unauth",
        NULL,
    };
    static const char *const pool_map[] = {
        "minWorkers", "min_workers",
        "maxWorkers", "max_workers",
        "nWorkers", "nworkers",
        "freeWorkers", "free_workers",
        "prioWorkers", "prio_workers",
        "jobQueueDepth", "job_queue_depth",
        NULL,
    };
    /* The monolithic daemon first, then the modular QEMU daemon. */
    static const char *const daemons[] = { "libvirtd", "virtqemud" };
    const char *uri;
    const char *scope;
    g_autoptr(GError) last_error = NULL;

    g_return_val_if_fail(host != NULL, NULL);
    uri = dv_virt_host_get_uri(host);
    if (g_strcmp0(uri, "qemu:///system") == 0)
        scope = "system";
    else if (g_strcmp0(uri, "qemu:///session") == 0)
        scope = "session";
    else {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED,
                    "daemon limits can only be read on the local host (qemu:///system or "
                    "qemu:///session), not %s",
                    uri);
        return NULL;
    }

    for (guint d = 0; d < G_N_ELEMENTS(daemons); d++) {
        g_autofree char *adm_uri = g_strdup_printf("%s:///%s", daemons[d], scope);
        g_autoptr(JsonObject) obj = json_object_new();
        g_autofree char *clients = NULL;
        g_autofree char *pool = NULL;
        g_autoptr(GError) local = NULL;

        clients = dv_virt_admin_run(adm_uri, "srv-clients-info", daemons[d], &local);
        if (clients == NULL) {
            if (g_error_matches(local, DV_ERROR, DV_ERROR_UNAVAILABLE)) {
                g_clear_error(&last_error);
                /* remember why, in case no daemon answers */
                last_error = g_error_new(DV_ERROR, DV_ERROR_UNAVAILABLE,
                                         "no libvirt daemon answers on the admin socket of %s "
                                         "(tried libvirtd and virtqemud; reading it needs root)",
                                         uri);
                continue;
            }
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        pool = dv_virt_admin_run(adm_uri, "srv-threadpool-info", daemons[d], error);
        if (pool == NULL)
            return NULL;
        json_object_set_string_member(obj, "daemon", daemons[d]);
        json_object_set_string_member(obj, "server", daemons[d]);
        json_object_set_string_member(obj, "admin_uri", adm_uri);
        dv_virt_admin_parse(obj, clients, client_map);
        dv_virt_admin_parse(obj, pool, pool_map);
        if (!json_object_has_member(obj, "max_clients") ||
            !json_object_has_member(obj, "max_workers")) {
            g_set_error(error, DV_ERROR, DV_ERROR_HOST_FAILED,
                        "unexpected output of virt-admin for %s", adm_uri);
            return NULL;
        }
        dv_virt_read_max_client_requests(obj, daemons[d]);
        return g_steal_pointer(&obj);
    }
    g_propagate_error(error, g_steal_pointer(&last_error));
    return NULL;
}
