#define G_LOG_DOMAIN "DvVmsNics"

/* A VM's network interfaces added and removed (issue 12, item 4), and the
 * addresses its guest holds, read on demand for GET /vms/{ref} (item 9);
 * docs/API.md "A VM's network interfaces", docs/DECISIONS.md.
 *
 * Every request is checked against the inventory before a job exists
 * (bad input changes nothing); the job checks the MAC again on the host,
 * whose domains the inventory may not all know.  The MAC is chosen when
 * the request is accepted (when not given), so a resumed job finds its
 * interface and is done.
 *
 * Addresses: one read per GET of a running VM, in a thread of its own
 * that the request waits for at most DV_VM_ADDRESSES_TIMEOUT_MS; a host
 * that does not answer in time gives no addresses, not an error.  At most
 * DV_VM_ADDRESSES_MAX_READS reads run at once (a stuck host keeps its
 * threads until keepalive ends them); beyond, GET answers without
 * addresses. */

#include "dv-vms-private.h"

#include <string.h>

#define DV_VM_MAX_NICS 8
#define DV_VM_ADDRESSES_TIMEOUT_MS 2000
#define DV_VM_ADDRESSES_MAX_READS 16

const DvFieldSpec dv_vm_nic_fields[] = {
    { "network", DV_FIELD_STRING, FALSE, "a libvirt network of the VM's host",
      .max_len = DV_NAME_MAX },
    { "bridge", DV_FIELD_STRING, FALSE, "or a bridge of the host (e.g. br0)",
      .max_len = DV_NAME_MAX },
    { "mac", DV_FIELD_STRING, FALSE,
      "xx:xx:xx:xx:xx:xx, unicast, not used on the host (default: a free 52:54:00:… address)" },
    { "model", DV_FIELD_STRING, FALSE, "virtio (default), e1000, e1000e or rtl8139" },
    { NULL },
};

/* Every MAC (lowercase) of the VM rows of @host_id, mapped to the VM's
 * name. */
static GHashTable *
dv_vm_nic_macs_on_host(DvEngine *engine, const char *host_id, GError **error)
{
    g_autoptr(JsonArray) vms = dv_core_list_all(engine, &dv_table_vms, "host_id", host_id, error);
    g_autoptr(GHashTable) macs = NULL;

    if (vms == NULL)
        return NULL;
    macs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (guint i = 0; i < json_array_get_length(vms); i++) {
        JsonObject *vm = json_array_get_object_element(vms, i);
        JsonArray *nics = dv_json_get_array(dv_json_get_object(vm, "spec"), "networks");
        for (guint k = 0; nics != NULL && k < json_array_get_length(nics); k++) {
            JsonNode *node = json_array_get_element(nics, k);
            const char *mac;
            if (!JSON_NODE_HOLDS_OBJECT(node))
                continue;
            mac = dv_json_get_string(json_node_get_object(node), "mac", NULL);
            if (mac != NULL)
                g_hash_table_replace(macs, g_ascii_strdown(mac, -1),
                                     g_strdup(dv_json_get_string(vm, "name", "")));
        }
    }
    return g_steal_pointer(&macs);
}

/* The NIC of @vm (its row) whose MAC is @mac, or NULL. */
static JsonObject *
dv_vm_nic_find(JsonObject *vm, const char *mac)
{
    JsonArray *nics = dv_json_get_array(dv_json_get_object(vm, "spec"), "networks");

    for (guint k = 0; nics != NULL && k < json_array_get_length(nics); k++) {
        JsonNode *node = json_array_get_element(nics, k);
        if (JSON_NODE_HOLDS_OBJECT(node) &&
            g_ascii_strcasecmp(dv_json_get_string(json_node_get_object(node), "mac", ""), mac) == 0)
            return json_node_get_object(node);
    }
    return NULL;
}

JsonObject *
dv_engine_vm_nic_add(DvEngine *engine, const char *vm_ref, JsonObject *body, const DvActor *actor,
                     GError **error)
{
    g_autoptr(JsonObject) vm = NULL;
    g_autoptr(JsonObject) host = NULL;
    g_autoptr(JsonObject) params = json_object_new();
    g_autoptr(GHashTable) macs = NULL;
    g_autofree char *mac = NULL;
    const char *network;
    const char *bridge;
    const char *model;
    const char *host_id;
    const char *vm_name;
    JsonArray *nics;

    vm = dv_core_resolve_for(engine, actor, DV_KIND_VM, vm_ref, "ref", error);
    if (vm == NULL)
        return NULL;
    if (body == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "network",
                           "network: give network or bridge");
        return NULL;
    }
    if (!dv_json_check_fields(body, dv_vm_nic_fields, NULL, error))
        return NULL;
    vm_name = dv_json_get_string(vm, "name", "");
    host_id = dv_json_get_string(vm, "host_id", "");
    network = dv_json_get_string(body, "network", NULL);
    bridge = dv_json_get_string(body, "bridge", NULL);
    model = dv_json_get_string(body, "model", "virtio");
    if ((network == NULL) == (bridge == NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "network",
                           "network: give exactly one of network and bridge");
        return NULL;
    }
    if (!dv_validate_name(network != NULL ? "network" : "bridge",
                          network != NULL ? network : bridge, error))
        return NULL;
    if (!dv_virt_nic_model_ok(model)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "model",
                           "model: must be virtio, e1000, e1000e or rtl8139");
        return NULL;
    }
    nics = dv_json_get_array(dv_json_get_object(vm, "spec"), "networks");
    if (nics != NULL && json_array_get_length(nics) >= DV_VM_MAX_NICS) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "network",
                           "network: VM %s has %d network interfaces, the most it may have",
                           vm_name, DV_VM_MAX_NICS);
        return NULL;
    }
    host = dv_store_get(dv_core(engine)->store, &dv_table_hosts, host_id, error);
    if (host == NULL)
        return NULL;
    if (network != NULL) {
        g_autoptr(JsonArray) nets =
            dv_core_list_all(engine, &dv_table_networks, "host_id", host_id, error);
        gboolean found = FALSE;
        if (nets == NULL)
            return NULL;
        for (guint i = 0; i < json_array_get_length(nets); i++)
            if (g_strcmp0(dv_json_get_string(json_array_get_object_element(nets, i), "name", NULL),
                          network) == 0)
                found = TRUE;
        if (!found) {
            dv_set_field_error(error, DV_ERROR_NOT_FOUND, "network",
                               "network: host %s of VM %s has no network '%s'",
                               dv_json_get_string(host, "name", ""), vm_name, network);
            return NULL;
        }
    }
    macs = dv_vm_nic_macs_on_host(engine, host_id, error);
    if (macs == NULL)
        return NULL;
    if (json_object_has_member(body, "mac")) {
        const char *user = dv_json_get_string(body, "mac", "");
        const char *owner;
        if (!dv_virt_mac_check("mac", user, error))
            return NULL;
        mac = g_ascii_strdown(user, -1);
        owner = g_hash_table_lookup(macs, mac);
        if (owner != NULL) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "mac",
                               "mac: %s is in use by VM %s on host %s", mac, owner,
                               dv_json_get_string(host, "name", ""));
            return NULL;
        }
    } else {
        /* 52:54:00 is QEMU's prefix, as libvirt's own choice. */
        for (guint tries = 0; tries < 64 && mac == NULL; tries++) {
            g_autofree char *try =
                g_strdup_printf("52:54:00:%02x:%02x:%02x", g_random_int_range(0, 256),
                                g_random_int_range(0, 256), g_random_int_range(0, 256));
            if (!g_hash_table_contains(macs, try))
                mac = g_steal_pointer(&try);
        }
        if (mac == NULL) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "mac",
                               "mac: no free address found on host %s; give one",
                               dv_json_get_string(host, "name", ""));
            return NULL;
        }
    }
    if (network != NULL)
        json_object_set_string_member(params, "network", network);
    else
        json_object_set_string_member(params, "bridge", bridge);
    json_object_set_string_member(params, "mac", mac);
    json_object_set_string_member(params, "model", model);
    return dv_core_submit(engine, "vm.nic.add", "vm", dv_json_get_string(vm, "id", ""), vm_name,
                          host_id, params, actor, error);
}

static gboolean
dv_vm_nic_attach(DvEngine *engine, DvJob *job, DvVirtHost *vh, JsonObject *vm, JsonObject *result,
                 gboolean *ret_live, GError **error)
{
    JsonObject *params = dv_job_get_params(job);

    if (!dv_virt_domain_nic_attach(vh, dv_json_get_string(vm, "uuid", ""), params, ret_live,
                                   dv_job_get_cancellable(job), error))
        return FALSE;
    json_object_set_string_member(result, "mac", dv_json_get_string(params, "mac", ""));
    return TRUE;
}

static gboolean
dv_vm_nic_add_job(DvJob *job, gpointer user_data, GError **error)
{
    static const DvJobStep steps[] = { { "attach", 80 }, { "save", 20 } };
    return dv_vm_device_job(user_data, job, steps, G_N_ELEMENTS(steps), dv_vm_nic_attach, error);
}

JsonObject *
dv_engine_vm_nic_remove(DvEngine *engine, const char *vm_ref, const char *mac, const DvActor *actor,
                        GError **error)
{
    g_autoptr(JsonObject) vm = NULL;
    g_autoptr(JsonObject) params = json_object_new();
    g_autofree char *lower = NULL;

    vm = dv_core_resolve_for(engine, actor, DV_KIND_VM, vm_ref, "ref", error);
    if (vm == NULL)
        return NULL;
    if (!dv_virt_mac_check("mac", mac, error))
        return NULL;
    if (dv_vm_nic_find(vm, mac) == NULL) {
        dv_set_field_error(error, DV_ERROR_NOT_FOUND, "mac",
                           "mac: VM %s has no network interface %s",
                           dv_json_get_string(vm, "name", ""), mac);
        return NULL;
    }
    lower = g_ascii_strdown(mac, -1);
    json_object_set_string_member(params, "mac", lower);
    return dv_vm_submit(engine, "vm.nic.remove", vm, params, actor, error);
}

static gboolean
dv_vm_nic_detach(DvEngine *engine, DvJob *job, DvVirtHost *vh, JsonObject *vm, JsonObject *result,
                 gboolean *ret_live, GError **error)
{
    const char *mac = dv_json_get_string(dv_job_get_params(job), "mac", "");

    if (!dv_virt_domain_nic_detach(vh, dv_json_get_string(vm, "uuid", ""), mac, ret_live,
                                   dv_job_get_cancellable(job), error))
        return FALSE;
    json_object_set_string_member(result, "mac", mac);
    return TRUE;
}

static gboolean
dv_vm_nic_remove_job(DvJob *job, gpointer user_data, GError **error)
{
    static const DvJobStep steps[] = { { "detach", 80 }, { "save", 20 } };
    return dv_vm_device_job(user_data, job, steps, G_N_ELEMENTS(steps), dv_vm_nic_detach, error);
}

/* --- guest addresses ---------------------------------------------------------- */

/* One read, shared by the request that waits and the thread that reads:
 * whichever lets go last frees it (the request may give up first). */
typedef struct {
    gint ref;
    GMutex lock;
    GCond cond;
    gboolean done;
    DvVirtHost *vh;
    char *uuid;
    GCancellable *cancellable;
    JsonObject *result;
} DvVmAddrRead;

static gint dv_vm_addr_reads; /* in flight, atomic */

static void
dv_vm_addr_read_unref(DvVmAddrRead *r)
{
    if (!g_atomic_int_dec_and_test(&r->ref))
        return;
    g_mutex_clear(&r->lock);
    g_cond_clear(&r->cond);
    dv_virt_host_unref(r->vh);
    g_free(r->uuid);
    g_object_unref(r->cancellable);
    if (r->result != NULL)
        json_object_unref(r->result);
    g_free(r);
}

static gpointer
dv_vm_addr_read_thread(gpointer data)
{
    DvVmAddrRead *r = data;
    g_autoptr(GError) local = NULL;
    JsonObject *result = dv_virt_domain_addresses(r->vh, r->uuid, r->cancellable, &local);

    if (result == NULL)
        g_debug("no addresses for domain %s: %s", r->uuid, local->message);
    g_mutex_lock(&r->lock);
    r->result = result;
    r->done = TRUE;
    g_cond_signal(&r->cond);
    g_mutex_unlock(&r->lock);
    g_atomic_int_add(&dv_vm_addr_reads, -1);
    dv_vm_addr_read_unref(r);
    return NULL;
}

/* The addresses of the running domain @uuid on @vh by MAC, or NULL when
 * the host did not answer within @timeout_ms (or failed). */
static JsonObject *
dv_vm_addresses_within(DvVirtHost *vh, const char *uuid, guint timeout_ms)
{
    DvVmAddrRead *r;
    GThread *thread;
    JsonObject *out = NULL;
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * G_TIME_SPAN_MILLISECOND;

    if (g_atomic_int_add(&dv_vm_addr_reads, 1) >= DV_VM_ADDRESSES_MAX_READS) {
        g_atomic_int_add(&dv_vm_addr_reads, -1);
        return NULL;
    }
    r = g_new0(DvVmAddrRead, 1);
    r->ref = 2;
    g_mutex_init(&r->lock);
    g_cond_init(&r->cond);
    r->vh = dv_virt_host_ref(vh);
    r->uuid = g_strdup(uuid);
    r->cancellable = g_cancellable_new();
    thread = g_thread_try_new("dv-vm-addresses", dv_vm_addr_read_thread, r, NULL);
    if (thread == NULL) {
        g_atomic_int_add(&dv_vm_addr_reads, -1);
        r->ref = 1;
        dv_vm_addr_read_unref(r);
        return NULL;
    }
    g_thread_unref(thread);
    g_mutex_lock(&r->lock);
    while (!r->done)
        if (!g_cond_wait_until(&r->cond, &r->lock, deadline))
            break;
    if (r->done && r->result != NULL)
        out = json_object_ref(r->result);
    g_mutex_unlock(&r->lock);
    /* Given up: a wait for a slot ends now; a call already on the wire
     * ends when the host answers or keepalive drops it. */
    if (out == NULL)
        g_cancellable_cancel(r->cancellable);
    dv_vm_addr_read_unref(r);
    return out;
}

JsonObject *
dv_engine_vm_get(DvEngine *engine, const char *vm_ref, const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) vm = dv_core_get_for(engine, actor, DV_KIND_VM, vm_ref, error);
    g_autoptr(JsonObject) found = NULL;
    JsonArray *nics;

    if (vm == NULL)
        return NULL;
    nics = dv_json_get_array(dv_json_get_object(vm, "spec"), "networks");
    if (nics == NULL || json_array_get_length(nics) == 0)
        return g_steal_pointer(&vm);
    if (g_strcmp0(dv_json_get_string(vm, "state", ""), "running") == 0) {
        g_autoptr(GError) local = NULL;
        g_autoptr(DvVirtHost) vh =
            dv_core_virt_host_by_id(engine, dv_json_get_string(vm, "host_id", ""), &local);
        if (vh != NULL)
            found = dv_vm_addresses_within(vh, dv_json_get_string(vm, "uuid", ""),
                                           DV_VM_ADDRESSES_TIMEOUT_MS);
    }
    for (guint k = 0; k < json_array_get_length(nics); k++) {
        JsonNode *node = json_array_get_element(nics, k);
        JsonObject *nic;
        JsonArray *list = json_array_new();
        g_autofree char *mac = NULL;
        JsonArray *have;
        if (!JSON_NODE_HOLDS_OBJECT(node)) {
            json_array_unref(list);
            continue;
        }
        nic = json_node_get_object(node);
        mac = g_ascii_strdown(dv_json_get_string(nic, "mac", ""), -1);
        have = found != NULL ? dv_json_get_array(found, mac) : NULL;
        for (guint i = 0; have != NULL && i < json_array_get_length(have); i++) {
            JsonObject *a = json_object_new();
            JsonObject *src = json_array_get_object_element(have, i);
            json_object_set_string_member(a, "mac", mac);
            dv_core_copy_member(a, "ip", src, "ip");
            dv_core_copy_member(a, "prefix", src, "prefix");
            dv_core_copy_member(a, "family", src, "family");
            dv_core_copy_member(a, "source", src, "source");
            json_array_add_object_element(list, a);
        }
        json_object_set_array_member(nic, "addresses", list);
    }
    return g_steal_pointer(&vm);
}

void
dv_engine_vm_nics_register(DvEngine *engine)
{
    /* Both resumable: the MAC is in the params, so a rerun finds its
     * interface there (add) or gone (remove) and is done. */
    DvJobKind add = { "vm.nic.add", dv_vm_nic_add_job, engine, TRUE };
    DvJobKind remove = { "vm.nic.remove", dv_vm_nic_remove_job, engine, TRUE };
    dv_job_manager_register_kind(dv_core(engine)->jobs, &add);
    dv_job_manager_register_kind(dv_core(engine)->jobs, &remove);
}

/* --- operation rows ----------------------------------------------------------- */

static JsonObject *
dv_op_vm_nic_add(DvOpCall *call, GError **error)
{
    return dv_engine_vm_nic_add(call->engine, call->params[0], call->body, call->actor, error);
}

static JsonObject *
dv_op_vm_nic_remove(DvOpCall *call, GError **error)
{
    return dv_engine_vm_nic_remove(call->engine, call->params[0], call->params[1], call->actor,
                                   error);
}

static const char *const dv_jobs_vm_nic_add[] = { "vm.nic.add", NULL };
static const char *const dv_jobs_vm_nic_remove[] = { "vm.nic.remove", NULL };

static const DvOp dv_vm_nics_ops[] = {
    { .name = "vm.nic.add",
      .method = "POST",
      .path = "/vms/{ref}/nics",
      .privilege = "vm.change",
      .kind = "vm",
      .object = DV_KIND_VM,
      .target = DV_OP_TARGET_PATH,
      .target_field = "ref",
      .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_vm_nic_add,
      .shape = DV_OP_SHAPE_JOB,
      .body = DV_OP_BODY_REQUIRED,
      .fields = dv_vm_nic_fields,
      .flags = DV_OP_FLAG_NO_QUERY,
      .handler = dv_op_vm_nic_add },
    { .name = "vm.nic.remove",
      .method = "DELETE",
      .path = "/vms/{ref}/nics/{mac}",
      .privilege = "vm.change",
      .kind = "vm",
      .object = DV_KIND_VM,
      .target = DV_OP_TARGET_PATH,
      .target_field = "ref",
      .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_vm_nic_remove,
      .shape = DV_OP_SHAPE_JOB,
      .body = DV_OP_BODY_NONE,
      .flags = DV_OP_FLAG_NO_QUERY,
      .handler = dv_op_vm_nic_remove },
};

void
dv_engine_vm_nics_register_ops(DvEngine *engine)
{
    dv_core_add_ops(engine, dv_vm_nics_ops, G_N_ELEMENTS(dv_vm_nics_ops));
}
