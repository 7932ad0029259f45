#define G_LOG_DOMAIN "DvHostsNetPool"

/* A host's networks and storage pools made, started, stopped, changed
 * and deleted through Drover (issue 12 item 7; docs/API.md "Networks and
 * pools").  Input is checked and the refusals that need the inventory
 * (a name in use, a range overlapping another network, a network or
 * pool that VMs use) are answered before a job is accepted; the job does
 * the libvirt work and then reads the host again (the sync of dv-hosts.c)
 * so the inventory shows the result when the job ends. */

#include "dv-hosts.h"

#include <string.h>

static const char *const dv_forward_values[] = { "nat", "route", "isolated", "bridge", NULL };
static const char *const dv_pool_type_values[] = { "dir", "netfs", "logical", NULL };
static const char *const dv_pool_format_values[] = { "nfs", "cifs", NULL };

const DvFieldSpec dv_network_create_fields[] = {
    { "name", DV_FIELD_STRING, TRUE, .max_len = DV_NAME_MAX },
    { "host", DV_FIELD_STRING, TRUE, "the host (id or name)" },
    { "forward", DV_FIELD_STRING, FALSE, "nat (default), route, isolated or bridge",
      .values = dv_forward_values },
    { "bridge", DV_FIELD_STRING, FALSE, "the host bridge (bridge), else the bridge to make",
      .max_len = 15 },
    { "address", DV_FIELD_STRING, FALSE, "IPv4 address/prefix of the host on it: 10.20.30.1/24" },
    { "dhcp_start", DV_FIELD_STRING, FALSE, "first DHCP address, inside address's subnet" },
    { "dhcp_end", DV_FIELD_STRING, FALSE, "last DHCP address" },
    { "start", DV_FIELD_BOOL, FALSE, "start it now (default true)" },
    { "autostart", DV_FIELD_BOOL, FALSE, "start it with the host (default true)" },
    { NULL },
};

const DvFieldSpec dv_pool_create_fields[] = {
    { "name", DV_FIELD_STRING, TRUE, .max_len = DV_NAME_MAX },
    { "host", DV_FIELD_STRING, TRUE, "the host (id or name)" },
    { "type", DV_FIELD_STRING, FALSE, "dir (default), netfs or logical",
      .values = dv_pool_type_values },
    { "path", DV_FIELD_STRING, FALSE, "target directory (dir, netfs)", .max_len = 1024 },
    { "source_host", DV_FIELD_STRING, FALSE, "netfs: the NFS or SMB server", .max_len = 255 },
    { "source_path", DV_FIELD_STRING, FALSE, "netfs: the NFS export or the SMB share",
      .max_len = 1024 },
    { "source_format", DV_FIELD_STRING, FALSE, "netfs: nfs (default) or cifs",
      .values = dv_pool_format_values },
    { "source_name", DV_FIELD_STRING, FALSE, "logical: the volume group (default: the name)",
      .max_len = 255 },
    { "source_devices", DV_FIELD_ARRAY, FALSE, "logical: devices to build the volume group on" },
    { "start", DV_FIELD_BOOL, FALSE, "start it now (default true)" },
    { "autostart", DV_FIELD_BOOL, FALSE, "start it with the host (default true)" },
    { NULL },
};

const DvFieldSpec dv_netpool_change_fields[] = {
    { "autostart", DV_FIELD_BOOL, TRUE, "start it with the host" },
    { NULL },
};

/* "network" or "pool": the two share every step but their libvirt calls. */
static gboolean
dv_netpool_is_pool(const char *what)
{
    return g_strcmp0(what, "pool") == 0;
}

/* Reads the host again and writes what it has into the inventory. */
static gboolean
dv_netpool_sync(DvEngine *engine, DvVirtHost *vh, const char *host_id, GCancellable *c,
                GError **error)
{
    g_autoptr(JsonObject) probe = dv_virt_host_probe(vh, c, error);
    if (probe == NULL)
        return FALSE;
    return dv_engine_host_sync(engine, host_id, probe, error);
}

/* The row now naming @name on @host_id, or NULL (not an error). */
static JsonObject *
dv_netpool_row(DvEngine *engine, const char *what, const char *host_id, const char *name,
               GError **error)
{
    const DvTableDef *def = dv_netpool_is_pool(what) ? &dv_table_pools : &dv_table_networks;
    g_autoptr(JsonArray) rows = dv_core_list_all(engine, def, "host_id", host_id, error);
    if (rows == NULL)
        return NULL;
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *r = json_array_get_object_element(rows, i);
        if (g_strcmp0(dv_json_get_string(r, "name", NULL), name) == 0)
            return json_object_ref(r);
    }
    return NULL;
}

static void
dv_netpool_result(DvEngine *engine, DvJob *job, DvVirtHost *vh, const char *what,
                  const char *host_id, const char *name, gboolean gone)
{
    g_autoptr(JsonObject) result = json_object_new();
    g_autoptr(JsonObject) row = NULL;
    g_autoptr(GError) local = NULL;

    json_object_set_string_member(result, "name", name);
    json_object_set_string_member(result, "host_id", host_id);
    if (gone) {
        json_object_set_boolean_member(result, "deleted", TRUE);
    } else {
        g_autoptr(JsonObject) flags = dv_virt_netpool_get_flags(vh, dv_netpool_is_pool(what), name,
                                                                dv_job_get_cancellable(job), &local);
        row = dv_netpool_row(engine, what, host_id, name, NULL);
        if (row != NULL) {
            json_object_set_string_member(result, "id", dv_json_get_string(row, "id", ""));
            dv_job_set_target(job, dv_json_get_string(row, "id", ""), name);
        }
        if (flags != NULL) {
            json_object_set_boolean_member(result, "active", dv_json_get_bool(flags, "active", FALSE));
            json_object_set_boolean_member(result, "autostart",
                                           dv_json_get_bool(flags, "autostart", FALSE));
        } else {
            g_debug("flags of %s %s: %s", what, name, local->message);
        }
    }
    dv_job_set_result(job, result);
}

/* --- jobs ------------------------------------------------------------------------- */

static const DvJobStep dv_netpool_create_steps[] = {
    { "define", 30 },
    { "start", 30 },
    { "save", 40 },
};

/* network.create and pool.create: params {what, host_id, name, xml,
 * build, start, autostart}.  A failure after the definition undefines it
 * again: nothing half-made stays on the host. */
static gboolean
dv_netpool_create_job(DvJob *job, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    JsonObject *p = dv_job_get_params(job);
    const char *what = dv_json_get_string(p, "what", "");
    const char *host_id = dv_json_get_string(p, "host_id", "");
    const char *name = dv_json_get_string(p, "name", "");
    const char *xml = dv_json_get_string(p, "xml", "");
    gboolean pool = dv_netpool_is_pool(what);
    GCancellable *c = dv_job_get_cancellable(job);
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(GError) local = NULL;
    gboolean ok;

    dv_job_set_steps(job, dv_netpool_create_steps, G_N_ELEMENTS(dv_netpool_create_steps));
    vh = dv_core_virt_host_by_id(engine, host_id, error);
    if (vh == NULL)
        return FALSE;
    if (!dv_job_step(job, "define", error))
        return FALSE;
    if (!pool) {
        /* Again at the host: another client may have made one since. */
        g_autoptr(JsonArray) subnets = dv_virt_network_list_subnets(vh, c, error);
        g_autoptr(JsonObject) spec = json_object_ref(dv_json_get_object(p, "spec"));
        if (subnets == NULL || !dv_virt_network_check_overlap(spec, subnets, error))
            return FALSE;
    }
    ok = pool ? dv_virt_pool_define(vh, name, xml, dv_json_get_bool(p, "build", FALSE), c, error)
              : dv_virt_network_define(vh, name, xml, c, error);
    if (!ok)
        return FALSE;
    ok = dv_job_step(job, "start", &local);
    if (ok && dv_json_get_bool(p, "start", TRUE))
        ok = pool ? dv_virt_pool_set_active(vh, name, TRUE, c, &local)
                  : dv_virt_network_set_active(vh, name, TRUE, c, &local);
    if (ok)
        ok = pool ? dv_virt_pool_set_autostart(vh, name, dv_json_get_bool(p, "autostart", TRUE), c,
                                               &local)
                  : dv_virt_network_set_autostart(vh, name, dv_json_get_bool(p, "autostart", TRUE),
                                                  c, &local);
    if (!ok) {
        g_autoptr(GError) undo = NULL;
        if (!(pool ? dv_virt_pool_undefine(vh, name, NULL, &undo)
                   : dv_virt_network_undefine(vh, name, NULL, &undo)))
            g_warning("%s %s left defined after a failed create: %s", what, name, undo->message);
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (!dv_job_step(job, "save", error) || !dv_netpool_sync(engine, vh, host_id, c, error))
        return FALSE;
    dv_netpool_result(engine, job, vh, what, host_id, name, FALSE);
    return TRUE;
}

static const DvJobStep dv_netpool_action_steps[] = {
    { "apply", 50 },
    { "save", 50 },
};

/* network.{start,stop,change,delete} and pool.*: params {what, action,
 * host_id, name, autostart}. */
static gboolean
dv_netpool_action_job(DvJob *job, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    JsonObject *p = dv_job_get_params(job);
    const char *what = dv_json_get_string(p, "what", "");
    const char *action = dv_json_get_string(p, "action", "");
    const char *host_id = dv_json_get_string(p, "host_id", "");
    const char *name = dv_json_get_string(p, "name", "");
    gboolean pool = dv_netpool_is_pool(what);
    GCancellable *c = dv_job_get_cancellable(job);
    g_autoptr(DvVirtHost) vh = NULL;
    gboolean ok;

    dv_job_set_steps(job, dv_netpool_action_steps, G_N_ELEMENTS(dv_netpool_action_steps));
    vh = dv_core_virt_host_by_id(engine, host_id, error);
    if (vh == NULL)
        return FALSE;
    if (!dv_job_step(job, "apply", error))
        return FALSE;
    if (strcmp(action, "start") == 0 || strcmp(action, "stop") == 0) {
        gboolean on = strcmp(action, "start") == 0;
        ok = pool ? dv_virt_pool_set_active(vh, name, on, c, error)
                  : dv_virt_network_set_active(vh, name, on, c, error);
    } else if (strcmp(action, "change") == 0) {
        gboolean on = dv_json_get_bool(p, "autostart", FALSE);
        ok = pool ? dv_virt_pool_set_autostart(vh, name, on, c, error)
                  : dv_virt_network_set_autostart(vh, name, on, c, error);
    } else {
        ok = pool ? dv_virt_pool_undefine(vh, name, c, error)
                  : dv_virt_network_undefine(vh, name, c, error);
    }
    if (!ok)
        return FALSE;
    if (!dv_job_step(job, "save", error) || !dv_netpool_sync(engine, vh, host_id, c, error))
        return FALSE;
    dv_netpool_result(engine, job, vh, what, host_id, name, strcmp(action, "delete") == 0);
    return TRUE;
}

/* --- accepting ---------------------------------------------------------------------- */

static gint
dv_netpool_name_cmp(gconstpointer a, gconstpointer b)
{
    return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

/* The VMs of @host_id using network or pool @row: names, sorted, owned. */
static GPtrArray *
dv_netpool_users(DvEngine *engine, const char *what, JsonObject *row, GError **error)
{
    const char *host_id = dv_json_get_string(row, "host_id", "");
    const char *name = dv_json_get_string(row, "name", "");
    const char *path = dv_json_get_string(row, "path", NULL);
    g_autoptr(JsonArray) vms = dv_core_list_all(engine, &dv_table_vms, "host_id", host_id, error);
    g_autoptr(JsonArray) vols = NULL;
    g_autoptr(GHashTable) paths = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GPtrArray) users = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *dir = path != NULL ? g_strconcat(path, "/", NULL) : NULL;

    if (vms == NULL)
        return NULL;
    if (dv_netpool_is_pool(what)) {
        vols = dv_core_list_all(engine, &dv_table_volumes, "pool_id",
                                dv_json_get_string(row, "id", ""), error);
        if (vols == NULL)
            return NULL;
        for (guint i = 0; i < json_array_get_length(vols); i++) {
            const char *vp = dv_json_get_string(json_array_get_object_element(vols, i), "path", NULL);
            if (vp != NULL)
                g_hash_table_add(paths, (gpointer)vp);
        }
    }
    for (guint i = 0; i < json_array_get_length(vms); i++) {
        JsonObject *vm = json_array_get_object_element(vms, i);
        JsonObject *spec = dv_json_get_object(vm, "spec");
        JsonArray *items = dv_json_get_array(spec, dv_netpool_is_pool(what) ? "disks" : "networks");
        gboolean uses = FALSE;
        for (guint k = 0; !uses && items != NULL && k < json_array_get_length(items); k++) {
            JsonObject *it = json_array_get_object_element(items, k);
            if (dv_netpool_is_pool(what)) {
                const char *src = dv_json_get_string(it, "source", NULL);
                uses = src != NULL && (g_hash_table_contains(paths, src) ||
                                       (dir != NULL && g_str_has_prefix(src, dir)));
            } else {
                uses = g_strcmp0(dv_json_get_string(it, "network", NULL), name) == 0;
            }
        }
        if (uses)
            g_ptr_array_add(users, g_strdup(dv_json_get_string(vm, "name", "")));
    }
    g_ptr_array_sort(users, dv_netpool_name_cmp);
    return g_steal_pointer(&users);
}

static JsonObject *
dv_netpool_submit(DvEngine *engine, const char *what, const char *action, JsonObject *row,
                  JsonObject *params, const DvActor *actor, GError **error)
{
    g_autofree char *kind = g_strdup_printf("%s.%s", what, action);
    json_object_set_string_member(params, "what", what);
    json_object_set_string_member(params, "action", action);
    json_object_set_string_member(params, "host_id", dv_json_get_string(row, "host_id", ""));
    json_object_set_string_member(params, "name", dv_json_get_string(row, "name", ""));
    return dv_core_submit(engine, kind, what, dv_json_get_string(row, "id", ""),
                          dv_json_get_string(row, "name", ""), dv_json_get_string(row, "host_id", ""),
                          params, actor, error);
}

JsonObject *
dv_engine_netpool_create(DvEngine *engine, const char *what, JsonObject *body, const DvActor *actor,
                         GError **error)
{
    gboolean pool = dv_netpool_is_pool(what);
    g_autoptr(JsonObject) host = NULL;
    g_autoptr(JsonObject) existing = NULL;
    g_autoptr(JsonObject) params = json_object_new();
    g_autoptr(JsonObject) spec = json_object_new();
    g_autoptr(GError) local = NULL;
    g_autofree char *xml = NULL;
    const char *name = dv_json_get_string(body, "name", NULL);
    const char *host_id;

    if (!dv_json_check_fields(body, pool ? dv_pool_create_fields : dv_network_create_fields, NULL,
                              error))
        return NULL;
    xml = pool ? dv_virt_pool_xml_new(body, error) : dv_virt_network_xml_new(body, error);
    if (xml == NULL)
        return NULL;
    host = dv_core_resolve(engine, DV_KIND_HOST, dv_json_get_string(body, "host", ""), "host", error);
    if (host == NULL)
        return NULL;
    host_id = dv_json_get_string(host, "id", "");
    existing = dv_netpool_row(engine, what, host_id, name, &local);
    if (local != NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    if (existing != NULL) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "name", "name: host %s already has a %s %s",
                           dv_json_get_string(host, "name", ""), pool ? "storage pool" : "network",
                           name);
        return NULL;
    }
    if (!pool && dv_json_get_string(body, "address", NULL) != NULL) {
        /* Answered before the job: the host's networks are read live (the
         * inventory keeps no addresses), one round trip. */
        g_autoptr(DvVirtHost) vh = dv_core_virt_host(engine, host, error);
        g_autoptr(JsonArray) subnets = NULL;
        if (vh == NULL)
            return NULL;
        subnets = dv_virt_network_list_subnets(vh, NULL, error);
        if (subnets == NULL || !dv_virt_network_check_overlap(body, subnets, error))
            return NULL;
    }
    /* What the job checks the overlap with again. */
    json_object_set_string_member(spec, "name", name);
    if (dv_json_get_string(body, "address", NULL) != NULL)
        json_object_set_string_member(spec, "address", dv_json_get_string(body, "address", NULL));
    json_object_set_string_member(params, "what", what);
    json_object_set_string_member(params, "host_id", host_id);
    json_object_set_string_member(params, "name", name);
    json_object_set_string_member(params, "xml", xml);
    json_object_set_object_member(params, "spec", g_steal_pointer(&spec));
    json_object_set_boolean_member(params, "start", dv_json_get_bool(body, "start", TRUE));
    json_object_set_boolean_member(params, "autostart", dv_json_get_bool(body, "autostart", TRUE));
    /* dir and netfs: the target directory; logical: a new volume group
     * when devices are given. */
    json_object_set_boolean_member(
        params, "build",
        pool && (g_strcmp0(dv_json_get_string(body, "type", "dir"), "logical") != 0 ||
                 dv_json_get_array(body, "source_devices") != NULL));
    {
        g_autofree char *kind = g_strdup_printf("%s.create", what);
        return dv_core_submit(engine, kind, "host", host_id, dv_json_get_string(host, "name", ""),
                              host_id, params, actor, error);
    }
}

JsonObject *
dv_engine_netpool_action(DvEngine *engine, const char *what, const char *ref, const char *action,
                         JsonObject *body, const DvActor *actor, GError **error)
{
    gboolean pool = dv_netpool_is_pool(what);
    g_autoptr(JsonObject) row =
        dv_core_resolve(engine, pool ? DV_KIND_POOL : DV_KIND_NETWORK, ref, NULL, error);
    g_autoptr(JsonObject) params = json_object_new();

    if (row == NULL)
        return NULL;
    if (strcmp(action, "change") == 0) {
        if (!dv_json_check_fields(body, dv_netpool_change_fields, NULL, error))
            return NULL;
        json_object_set_boolean_member(params, "autostart", dv_json_get_bool(body, "autostart", FALSE));
    } else if (strcmp(action, "delete") == 0) {
        g_autoptr(GPtrArray) users = dv_netpool_users(engine, what, row, error);
        if (users == NULL)
            return NULL;
        if (users->len > 0) {
            g_autofree char *list = NULL;
            g_ptr_array_add(users, NULL);
            list = g_strjoinv(", ", (char **)users->pdata);
            dv_set_field_error(error, DV_ERROR_CONFLICT, NULL, "%s %s is used by VMs: %s",
                               pool ? "storage pool" : "network", dv_json_get_string(row, "name", ""),
                               list);
            return NULL;
        }
    }
    return dv_netpool_submit(engine, what, action, row, params, actor, error);
}

void
dv_engine_netpool_register(DvEngine *engine)
{
    static const char *const kinds[] = { "network.create", "pool.create" };
    static const char *const actions[] = { "network.start", "network.stop", "network.change",
                                           "network.delete", "pool.start", "pool.stop",
                                           "pool.change", "pool.delete" };
    for (gsize i = 0; i < G_N_ELEMENTS(kinds); i++) {
        DvJobKind kind = { kinds[i], dv_netpool_create_job, engine, TRUE };
        dv_job_manager_register_kind(dv_core(engine)->jobs, &kind);
    }
    for (gsize i = 0; i < G_N_ELEMENTS(actions); i++) {
        DvJobKind kind = { actions[i], dv_netpool_action_job, engine, TRUE };
        dv_job_manager_register_kind(dv_core(engine)->jobs, &kind);
    }
}

/* --- operations ----------------------------------------------------------------------- */

static JsonObject *
dv_netpool_op_create(DvOpCall *call, GError **error)
{
    return dv_engine_netpool_create(call->engine, call->op->kind, call->body, call->actor, error);
}

/* The action is the path's last segment ("/networks/{ref}/start"), or
 * the method's: PATCH changes, DELETE deletes. */
static JsonObject *
dv_netpool_op_action(DvOpCall *call, GError **error)
{
    const char *action = strcmp(call->op->method, "PATCH") == 0    ? "change"
                         : strcmp(call->op->method, "DELETE") == 0 ? "delete"
                                                                  : strrchr(call->op->path, '/') + 1;
    return dv_engine_netpool_action(call->engine, call->op->kind, call->params[0], action,
                                    call->body, call->actor, error);
}

static const char *const dv_jobs_network_create[] = { "network.create", NULL };
static const char *const dv_jobs_network_start[] = { "network.start", NULL };
static const char *const dv_jobs_network_stop[] = { "network.stop", NULL };
static const char *const dv_jobs_network_change[] = { "network.change", NULL };
static const char *const dv_jobs_network_delete[] = { "network.delete", NULL };
static const char *const dv_jobs_pool_create[] = { "pool.create", NULL };
static const char *const dv_jobs_pool_start[] = { "pool.start", NULL };
static const char *const dv_jobs_pool_stop[] = { "pool.stop", NULL };
static const char *const dv_jobs_pool_change[] = { "pool.change", NULL };
static const char *const dv_jobs_pool_delete[] = { "pool.delete", NULL };

#define DV_NETPOOL_CREATE(n, p, k, obj, priv, jobs, f)                                             \
    {                                                                                              \
        .name = n, .method = "POST", .path = p, .privilege = priv, .kind = k, .object = obj,       \
        .target = DV_OP_TARGET_PARENT, .target_field = "host", .parent_kind = DV_KIND_HOST,        \
        .lock = DV_OP_LOCK_PARENT, .job_kinds = jobs, .shape = DV_OP_SHAPE_JOB,                   \
        .body = DV_OP_BODY_REQUIRED, .fields = f, .flags = DV_OP_FLAG_NO_QUERY,                    \
        .handler = dv_netpool_op_create                                                            \
    }
/* Further members (.fields) follow the body. */
#define DV_NETPOOL_ROW(n, m, p, k, obj, priv, jobs, b, ...)                                        \
    {                                                                                              \
        .name = n, .method = m, .path = p, .privilege = priv, .kind = k, .object = obj,            \
        .target = DV_OP_TARGET_PATH, .target_field = "ref", .lock = DV_OP_LOCK_OBJECT,             \
        .job_kinds = jobs, .shape = DV_OP_SHAPE_JOB, .body = b, .flags = DV_OP_FLAG_NO_QUERY,      \
        .handler = dv_netpool_op_action, __VA_ARGS__                                               \
    }

static const DvOp dv_netpool_ops[] = {
    DV_NETPOOL_CREATE("network.create", "/networks", "network", DV_KIND_NETWORK, "network.create",
                      dv_jobs_network_create, dv_network_create_fields),
    DV_NETPOOL_ROW("network.start", "POST", "/networks/{ref}/start", "network", DV_KIND_NETWORK,
                   "network.change", dv_jobs_network_start, DV_OP_BODY_NONE),
    DV_NETPOOL_ROW("network.stop", "POST", "/networks/{ref}/stop", "network", DV_KIND_NETWORK,
                   "network.change", dv_jobs_network_stop, DV_OP_BODY_NONE),
    DV_NETPOOL_ROW("network.change", "PATCH", "/networks/{ref}", "network", DV_KIND_NETWORK,
                   "network.change", dv_jobs_network_change, DV_OP_BODY_REQUIRED,
                   .fields = dv_netpool_change_fields),
    DV_NETPOOL_ROW("network.delete", "DELETE", "/networks/{ref}", "network", DV_KIND_NETWORK,
                   "network.delete", dv_jobs_network_delete, DV_OP_BODY_NONE),
    DV_NETPOOL_CREATE("pool.create", "/storage-pools", "pool", DV_KIND_POOL, "pool.create", dv_jobs_pool_create,
                      dv_pool_create_fields),
    DV_NETPOOL_ROW("pool.start", "POST", "/storage-pools/{ref}/start", "pool", DV_KIND_POOL,
                   "pool.change", dv_jobs_pool_start, DV_OP_BODY_NONE),
    DV_NETPOOL_ROW("pool.stop", "POST", "/storage-pools/{ref}/stop", "pool", DV_KIND_POOL,
                   "pool.change", dv_jobs_pool_stop, DV_OP_BODY_NONE),
    DV_NETPOOL_ROW("pool.change", "PATCH", "/storage-pools/{ref}", "pool", DV_KIND_POOL,
                   "pool.change", dv_jobs_pool_change, DV_OP_BODY_REQUIRED,
                   .fields = dv_netpool_change_fields),
    DV_NETPOOL_ROW("pool.delete", "DELETE", "/storage-pools/{ref}", "pool", DV_KIND_POOL,
                   "pool.delete", dv_jobs_pool_delete, DV_OP_BODY_NONE),
};

void
dv_engine_netpool_register_ops(DvEngine *engine)
{
    dv_core_add_ops(engine, dv_netpool_ops, G_N_ELEMENTS(dv_netpool_ops));
}
