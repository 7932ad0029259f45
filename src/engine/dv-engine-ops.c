#define G_LOG_DOMAIN "DvEngineOps"

/* The facade's operations: the generic collection rows (list, create, get,
 * change, delete of every kind, dispatched by kind in dv-engine.c) and the
 * installation-wide ones.  Feature-specific rows live with each feature
 * (features/<name>/dv-<name>-ops.c); docs/API.md lists them all. */

#include "dv-engine.h"
#include "dv-op.h"

static JsonObject *
dv_op_list(DvOpCall *call, GError **error)
{
    return dv_engine_list(call->engine, call->op->object, call->query, error);
}

static JsonObject *
dv_op_get(DvOpCall *call, GError **error)
{
    return dv_engine_get(call->engine, call->op->object, call->params[0], error);
}

static JsonObject *
dv_op_create(DvOpCall *call, GError **error)
{
    return dv_engine_create(call->engine, call->op->object, call->body, call->actor, error);
}

static JsonObject *
dv_op_update(DvOpCall *call, GError **error)
{
    return dv_engine_update(call->engine, call->op->object, call->params[0], call->body,
                            call->actor, error);
}

static JsonObject *
dv_op_delete(DvOpCall *call, GError **error)
{
    return dv_engine_delete(call->engine, call->op->object, call->params[0], call->query,
                            call->actor, error);
}

static JsonObject *
dv_op_version(DvOpCall *call, GError **error)
{
    return dv_engine_version(call->engine);
}

static JsonObject *
dv_op_health(DvOpCall *call, GError **error)
{
    return dv_engine_health(call->engine);
}

static JsonObject *
dv_op_upgrade_report(DvOpCall *call, GError **error)
{
    return dv_engine_upgrade_report(call->engine, error);
}

static JsonObject *
dv_op_job_cancel(DvOpCall *call, GError **error)
{
    return dv_engine_job_cancel(call->engine, call->params[0], error);
}

static JsonObject *
dv_op_debug_sleep(DvOpCall *call, GError **error)
{
    return dv_engine_debug_sleep(call->engine, call->body, call->actor, error);
}

/* GET /storage-pools/{ref}/volumes: the volume list filtered on the pool. */
static JsonObject *
dv_op_pool_volumes(DvOpCall *call, GError **error)
{
    g_autoptr(JsonObject) pool = dv_engine_get(call->engine, DV_KIND_POOL, call->params[0], error);
    g_autoptr(GHashTable) q = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    if (pool == NULL)
        return NULL;
    if (call->query != NULL) {
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, call->query);
        while (g_hash_table_iter_next(&it, &k, &v))
            g_hash_table_replace(q, g_strdup(k), g_strdup(v));
    }
    g_hash_table_replace(q, g_strdup("pool_id"), g_strdup(dv_json_get_string(pool, "id", "")));
    return dv_engine_list(call->engine, DV_KIND_VOLUME, q, error);
}

static const char *const dv_jobs_debug_sleep[] = { "debug.sleep", "debug.sleep-once", NULL };

static const char *const dv_jobs_host_group_create[] = { "host-group.create", NULL };
static const char *const dv_jobs_host_group_update[] = { "host-group.update", NULL };
static const char *const dv_jobs_host_group_delete[] = { "host-group.delete", NULL };
static const char *const dv_jobs_cluster_create[] = { "cluster.create", NULL };
static const char *const dv_jobs_cluster_update[] = { "cluster.update", NULL };
static const char *const dv_jobs_cluster_delete[] = { "cluster.delete", NULL };
static const char *const dv_jobs_host_create[] = { "host.add", NULL };
static const char *const dv_jobs_host_update[] = { "host.update", NULL };
static const char *const dv_jobs_host_delete[] = { "host.remove", NULL };
static const char *const dv_jobs_library_share_create[] = { "library-share.create", NULL };
static const char *const dv_jobs_library_share_delete[] = { "library-share.delete", NULL };
static const char *const dv_jobs_template_create[] = { "template.create", NULL };
static const char *const dv_jobs_template_delete[] = { "template.delete", NULL };
static const char *const dv_jobs_vm_create[] = { "vm.create", NULL };
static const char *const dv_jobs_vm_delete[] = { "vm.delete", NULL };
static const char *const dv_jobs_run_as_create[] = { "run-as.create", NULL };
static const char *const dv_jobs_run_as_update[] = { "run-as.update", NULL };
static const char *const dv_jobs_run_as_delete[] = { "run-as.delete", NULL };
static const char *const dv_jobs_guest_os_profile_create[] = { "guest-os-profile.create", NULL };
static const char *const dv_jobs_guest_os_profile_update[] = { "guest-os-profile.update", NULL };
static const char *const dv_jobs_guest_os_profile_delete[] = { "guest-os-profile.delete", NULL };
static const char *const dv_jobs_setting_create[] = { "setting.create", NULL };
static const char *const dv_jobs_setting_update[] = { "setting.update", NULL };
static const char *const dv_jobs_setting_delete[] = { "setting.delete", NULL };
static const char *const dv_jobs_catalog_create[] = { "catalog.provision", NULL };
static const char *const dv_jobs_catalog_delete[] = { "catalog.delete", NULL };

static const DvOp dv_engine_ops[] = {
    { .name = "host_group.list", .method = "GET", .path = "/host-groups", .privilege = "host_group.read", .kind = "host_group",
      .object = DV_KIND_HOST_GROUP, .target = DV_OP_TARGET_KIND, .shape = DV_OP_SHAPE_LIST, .handler = dv_op_list },
    { .name = "host_group.create", .method = "POST", .path = "/host-groups", .privilege = "host_group.create", .kind = "host_group",
      .object = DV_KIND_HOST_GROUP, .target = DV_OP_TARGET_PARENT, .target_field = "parent", .parent_kind = DV_KIND_HOST_GROUP, .lock = DV_OP_LOCK_PARENT,
      .job_kinds = dv_jobs_host_group_create, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_REQUIRED,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_create },
    { .name = "host_group.get", .method = "GET", .path = "/host-groups/{ref}", .privilege = "host_group.read", .kind = "host_group",
      .object = DV_KIND_HOST_GROUP, .target = DV_OP_TARGET_PATH, .target_field = "ref", .shape = DV_OP_SHAPE_OBJECT,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_get },
    { .name = "host_group.change", .method = "PATCH", .path = "/host-groups/{ref}", .privilege = "host_group.change", .kind = "host_group",
      .object = DV_KIND_HOST_GROUP, .target = DV_OP_TARGET_PATH, .target_field = "ref", .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_host_group_update, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_REQUIRED,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_update },
    { .name = "host_group.delete", .method = "DELETE", .path = "/host-groups/{ref}", .privilege = "host_group.delete", .kind = "host_group",
      .object = DV_KIND_HOST_GROUP, .target = DV_OP_TARGET_PATH, .target_field = "ref", .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_host_group_delete, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_NONE, .handler = dv_op_delete },
    { .name = "cluster.list", .method = "GET", .path = "/clusters", .privilege = "cluster.read", .kind = "cluster",
      .object = DV_KIND_CLUSTER, .target = DV_OP_TARGET_KIND, .shape = DV_OP_SHAPE_LIST, .handler = dv_op_list },
    { .name = "cluster.create", .method = "POST", .path = "/clusters", .privilege = "cluster.create", .kind = "cluster",
      .object = DV_KIND_CLUSTER, .target = DV_OP_TARGET_PARENT, .target_field = "host_group", .parent_kind = DV_KIND_HOST_GROUP, .lock = DV_OP_LOCK_PARENT,
      .job_kinds = dv_jobs_cluster_create, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_REQUIRED,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_create },
    { .name = "cluster.get", .method = "GET", .path = "/clusters/{ref}", .privilege = "cluster.read", .kind = "cluster",
      .object = DV_KIND_CLUSTER, .target = DV_OP_TARGET_PATH, .target_field = "ref", .shape = DV_OP_SHAPE_OBJECT,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_get },
    { .name = "cluster.change", .method = "PATCH", .path = "/clusters/{ref}", .privilege = "cluster.change", .kind = "cluster",
      .object = DV_KIND_CLUSTER, .target = DV_OP_TARGET_PATH, .target_field = "ref", .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_cluster_update, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_REQUIRED,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_update },
    { .name = "cluster.delete", .method = "DELETE", .path = "/clusters/{ref}", .privilege = "cluster.delete", .kind = "cluster",
      .object = DV_KIND_CLUSTER, .target = DV_OP_TARGET_PATH, .target_field = "ref", .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_cluster_delete, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_NONE, .handler = dv_op_delete },
    { .name = "host.list", .method = "GET", .path = "/hosts", .privilege = "host.read", .kind = "host",
      .object = DV_KIND_HOST, .target = DV_OP_TARGET_KIND, .shape = DV_OP_SHAPE_LIST, .handler = dv_op_list },
    { .name = "host.create", .method = "POST", .path = "/hosts", .privilege = "host.create", .kind = "host",
      .object = DV_KIND_HOST, .target = DV_OP_TARGET_PARENT, .target_field = "host_group", .parent_kind = DV_KIND_HOST_GROUP, .lock = DV_OP_LOCK_PARENT,
      .job_kinds = dv_jobs_host_create, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_REQUIRED,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_create },
    { .name = "host.get", .method = "GET", .path = "/hosts/{ref}", .privilege = "host.read", .kind = "host",
      .object = DV_KIND_HOST, .target = DV_OP_TARGET_PATH, .target_field = "ref", .shape = DV_OP_SHAPE_OBJECT,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_get },
    { .name = "host.change", .method = "PATCH", .path = "/hosts/{ref}", .privilege = "host.change", .kind = "host",
      .object = DV_KIND_HOST, .target = DV_OP_TARGET_PATH, .target_field = "ref", .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_host_update, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_REQUIRED,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_update },
    { .name = "host.delete", .method = "DELETE", .path = "/hosts/{ref}", .privilege = "host.delete", .kind = "host",
      .object = DV_KIND_HOST, .target = DV_OP_TARGET_PATH, .target_field = "ref", .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_host_delete, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_NONE, .handler = dv_op_delete },
    { .name = "pool.list", .method = "GET", .path = "/storage-pools", .privilege = "pool.read", .kind = "pool",
      .object = DV_KIND_POOL, .target = DV_OP_TARGET_KIND, .shape = DV_OP_SHAPE_LIST, .handler = dv_op_list },
    { .name = "pool.get", .method = "GET", .path = "/storage-pools/{ref}", .privilege = "pool.read", .kind = "pool",
      .object = DV_KIND_POOL, .target = DV_OP_TARGET_PATH, .target_field = "ref", .shape = DV_OP_SHAPE_OBJECT,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_get },
    { .name = "volume.list", .method = "GET", .path = "/volumes", .privilege = "volume.read", .kind = "volume",
      .object = DV_KIND_VOLUME, .target = DV_OP_TARGET_KIND, .shape = DV_OP_SHAPE_LIST, .handler = dv_op_list },
    { .name = "volume.get", .method = "GET", .path = "/volumes/{ref}", .privilege = "volume.read", .kind = "volume",
      .object = DV_KIND_VOLUME, .target = DV_OP_TARGET_PATH, .target_field = "ref", .shape = DV_OP_SHAPE_OBJECT,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_get },
    { .name = "network.list", .method = "GET", .path = "/networks", .privilege = "network.read", .kind = "network",
      .object = DV_KIND_NETWORK, .target = DV_OP_TARGET_KIND, .shape = DV_OP_SHAPE_LIST, .handler = dv_op_list },
    { .name = "network.get", .method = "GET", .path = "/networks/{ref}", .privilege = "network.read", .kind = "network",
      .object = DV_KIND_NETWORK, .target = DV_OP_TARGET_PATH, .target_field = "ref", .shape = DV_OP_SHAPE_OBJECT,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_get },
    { .name = "library_share.list", .method = "GET", .path = "/library-shares", .privilege = "library_share.read", .kind = "library_share",
      .object = DV_KIND_LIBRARY_SHARE, .target = DV_OP_TARGET_KIND, .shape = DV_OP_SHAPE_LIST, .handler = dv_op_list },
    { .name = "library_share.create", .method = "POST", .path = "/library-shares", .privilege = "library_share.create", .kind = "library_share",
      .object = DV_KIND_LIBRARY_SHARE, .target = DV_OP_TARGET_PARENT, .target_field = "host", .parent_kind = DV_KIND_HOST, .lock = DV_OP_LOCK_PARENT,
      .job_kinds = dv_jobs_library_share_create, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_REQUIRED,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_create },
    { .name = "library_share.get", .method = "GET", .path = "/library-shares/{ref}", .privilege = "library_share.read", .kind = "library_share",
      .object = DV_KIND_LIBRARY_SHARE, .target = DV_OP_TARGET_PATH, .target_field = "ref", .shape = DV_OP_SHAPE_OBJECT,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_get },
    { .name = "library_share.delete", .method = "DELETE", .path = "/library-shares/{ref}", .privilege = "library_share.delete", .kind = "library_share",
      .object = DV_KIND_LIBRARY_SHARE, .target = DV_OP_TARGET_PATH, .target_field = "ref", .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_library_share_delete, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_NONE, .handler = dv_op_delete },
    { .name = "template.list", .method = "GET", .path = "/templates", .privilege = "template.read", .kind = "template",
      .object = DV_KIND_TEMPLATE, .target = DV_OP_TARGET_KIND, .shape = DV_OP_SHAPE_LIST, .handler = dv_op_list },
    { .name = "template.create", .method = "POST", .path = "/templates", .privilege = "template.create", .kind = "template",
      .object = DV_KIND_TEMPLATE, .target = DV_OP_TARGET_PARENT, .target_field = "library_share", .parent_kind = DV_KIND_LIBRARY_SHARE, .lock = DV_OP_LOCK_PARENT,
      .job_kinds = dv_jobs_template_create, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_REQUIRED,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_create },
    { .name = "template.get", .method = "GET", .path = "/templates/{ref}", .privilege = "template.read", .kind = "template",
      .object = DV_KIND_TEMPLATE, .target = DV_OP_TARGET_PATH, .target_field = "ref", .shape = DV_OP_SHAPE_OBJECT,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_get },
    { .name = "template.delete", .method = "DELETE", .path = "/templates/{ref}", .privilege = "template.delete", .kind = "template",
      .object = DV_KIND_TEMPLATE, .target = DV_OP_TARGET_PATH, .target_field = "ref", .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_template_delete, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_NONE, .handler = dv_op_delete },
    { .name = "vm.list", .method = "GET", .path = "/vms", .privilege = "vm.read", .kind = "vm",
      .object = DV_KIND_VM, .target = DV_OP_TARGET_KIND, .shape = DV_OP_SHAPE_LIST, .handler = dv_op_list },
    { .name = "vm.create", .method = "POST", .path = "/vms", .privilege = "vm.create", .kind = "vm",
      .object = DV_KIND_VM, .target = DV_OP_TARGET_PARENT, .target_field = "host", .parent_kind = DV_KIND_HOST, .alt_field = "host_group", .alt_kind = DV_KIND_HOST_GROUP, .lock = DV_OP_LOCK_PARENT,
      .job_kinds = dv_jobs_vm_create, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_REQUIRED,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_create },
    { .name = "vm.get", .method = "GET", .path = "/vms/{ref}", .privilege = "vm.read", .kind = "vm",
      .object = DV_KIND_VM, .target = DV_OP_TARGET_PATH, .target_field = "ref", .shape = DV_OP_SHAPE_OBJECT,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_get },
    { .name = "vm.delete", .method = "DELETE", .path = "/vms/{ref}", .privilege = "vm.delete", .kind = "vm",
      .object = DV_KIND_VM, .target = DV_OP_TARGET_PATH, .target_field = "ref", .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_vm_delete, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_NONE, .handler = dv_op_delete },
    { .name = "job.list", .method = "GET", .path = "/jobs", .privilege = "job.read", .kind = "job",
      .object = DV_KIND_JOB, .target = DV_OP_TARGET_KIND, .shape = DV_OP_SHAPE_LIST, .handler = dv_op_list },
    { .name = "job.get", .method = "GET", .path = "/jobs/{ref}", .privilege = "job.read", .kind = "job",
      .object = DV_KIND_JOB, .target = DV_OP_TARGET_PATH, .target_field = "ref", .shape = DV_OP_SHAPE_OBJECT,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_get },
    { .name = "run_as.list", .method = "GET", .path = "/run-as-accounts", .privilege = "run_as.read", .kind = "run_as",
      .object = DV_KIND_RUN_AS, .target = DV_OP_TARGET_KIND, .shape = DV_OP_SHAPE_LIST, .handler = dv_op_list },
    { .name = "run_as.create", .method = "POST", .path = "/run-as-accounts", .privilege = "run_as.create", .kind = "run_as",
      .object = DV_KIND_RUN_AS, .target = DV_OP_TARGET_GLOBAL, .lock = DV_OP_LOCK_GLOBAL,
      .job_kinds = dv_jobs_run_as_create, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_REQUIRED,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_create },
    { .name = "run_as.get", .method = "GET", .path = "/run-as-accounts/{ref}", .privilege = "run_as.read", .kind = "run_as",
      .object = DV_KIND_RUN_AS, .target = DV_OP_TARGET_PATH, .target_field = "ref", .shape = DV_OP_SHAPE_OBJECT,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_get },
    { .name = "run_as.change", .method = "PATCH", .path = "/run-as-accounts/{ref}", .privilege = "run_as.change", .kind = "run_as",
      .object = DV_KIND_RUN_AS, .target = DV_OP_TARGET_PATH, .target_field = "ref", .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_run_as_update, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_REQUIRED,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_update },
    { .name = "run_as.delete", .method = "DELETE", .path = "/run-as-accounts/{ref}", .privilege = "run_as.delete", .kind = "run_as",
      .object = DV_KIND_RUN_AS, .target = DV_OP_TARGET_PATH, .target_field = "ref", .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_run_as_delete, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_NONE, .handler = dv_op_delete },
    { .name = "guest_os_profile.list", .method = "GET", .path = "/guest-os-profiles", .privilege = "guest_os_profile.read", .kind = "guest_os_profile",
      .object = DV_KIND_GUEST_OS_PROFILE, .target = DV_OP_TARGET_KIND, .shape = DV_OP_SHAPE_LIST, .handler = dv_op_list },
    { .name = "guest_os_profile.create", .method = "POST", .path = "/guest-os-profiles", .privilege = "guest_os_profile.create", .kind = "guest_os_profile",
      .object = DV_KIND_GUEST_OS_PROFILE, .target = DV_OP_TARGET_GLOBAL, .lock = DV_OP_LOCK_GLOBAL,
      .job_kinds = dv_jobs_guest_os_profile_create, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_REQUIRED,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_create },
    { .name = "guest_os_profile.get", .method = "GET", .path = "/guest-os-profiles/{ref}", .privilege = "guest_os_profile.read", .kind = "guest_os_profile",
      .object = DV_KIND_GUEST_OS_PROFILE, .target = DV_OP_TARGET_PATH, .target_field = "ref", .shape = DV_OP_SHAPE_OBJECT,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_get },
    { .name = "guest_os_profile.change", .method = "PATCH", .path = "/guest-os-profiles/{ref}", .privilege = "guest_os_profile.change", .kind = "guest_os_profile",
      .object = DV_KIND_GUEST_OS_PROFILE, .target = DV_OP_TARGET_PATH, .target_field = "ref", .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_guest_os_profile_update, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_REQUIRED,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_update },
    { .name = "guest_os_profile.delete", .method = "DELETE", .path = "/guest-os-profiles/{ref}", .privilege = "guest_os_profile.delete", .kind = "guest_os_profile",
      .object = DV_KIND_GUEST_OS_PROFILE, .target = DV_OP_TARGET_PATH, .target_field = "ref", .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_guest_os_profile_delete, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_NONE, .handler = dv_op_delete },
    { .name = "setting.list", .method = "GET", .path = "/settings", .privilege = "setting.read", .kind = "setting",
      .object = DV_KIND_SETTING, .target = DV_OP_TARGET_KIND, .shape = DV_OP_SHAPE_LIST, .handler = dv_op_list },
    { .name = "setting.create", .method = "POST", .path = "/settings", .privilege = "setting.change", .kind = "setting",
      .object = DV_KIND_SETTING, .target = DV_OP_TARGET_GLOBAL, .lock = DV_OP_LOCK_GLOBAL,
      .job_kinds = dv_jobs_setting_create, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_REQUIRED,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_create },
    { .name = "setting.get", .method = "GET", .path = "/settings/{ref}", .privilege = "setting.read", .kind = "setting",
      .object = DV_KIND_SETTING, .target = DV_OP_TARGET_PATH, .target_field = "ref", .shape = DV_OP_SHAPE_OBJECT,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_get },
    { .name = "setting.change", .method = "PATCH", .path = "/settings/{ref}", .privilege = "setting.change", .kind = "setting",
      .object = DV_KIND_SETTING, .target = DV_OP_TARGET_PATH, .target_field = "ref", .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_setting_update, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_REQUIRED,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_update },
    { .name = "setting.delete", .method = "DELETE", .path = "/settings/{ref}", .privilege = "setting.change", .kind = "setting",
      .object = DV_KIND_SETTING, .target = DV_OP_TARGET_PATH, .target_field = "ref", .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_setting_delete, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_NONE, .handler = dv_op_delete },
    { .name = "catalog.list", .method = "GET", .path = "/catalogs", .privilege = "catalog.read", .kind = "catalog",
      .object = DV_KIND_CATALOG, .target = DV_OP_TARGET_KIND, .shape = DV_OP_SHAPE_LIST, .handler = dv_op_list },
    { .name = "catalog.create", .method = "POST", .path = "/catalogs", .privilege = "catalog.create", .kind = "catalog",
      .object = DV_KIND_CATALOG, .target = DV_OP_TARGET_PARENT, .target_field = "host_group", .parent_kind = DV_KIND_HOST_GROUP, .lock = DV_OP_LOCK_PARENT,
      .job_kinds = dv_jobs_catalog_create, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_REQUIRED,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_create },
    { .name = "catalog.get", .method = "GET", .path = "/catalogs/{ref}", .privilege = "catalog.read", .kind = "catalog",
      .object = DV_KIND_CATALOG, .target = DV_OP_TARGET_PATH, .target_field = "ref", .shape = DV_OP_SHAPE_OBJECT,
      .flags = DV_OP_FLAG_NO_QUERY, .handler = dv_op_get },
    { .name = "catalog.delete", .method = "DELETE", .path = "/catalogs/{ref}", .privilege = "catalog.delete", .kind = "catalog",
      .object = DV_KIND_CATALOG, .target = DV_OP_TARGET_PATH, .target_field = "ref", .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_catalog_delete, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_NONE, .handler = dv_op_delete },
    { .name = "pool.volumes", .method = "GET", .path = "/storage-pools/{ref}/volumes",
      .privilege = "volume.read", .kind = "pool", .answer_kind = "volume", .object = DV_KIND_POOL,
      .target = DV_OP_TARGET_PATH, .target_field = "ref", .shape = DV_OP_SHAPE_LIST,
      .handler = dv_op_pool_volumes },
    { .name = "job.cancel", .method = "POST", .path = "/jobs/{ref}/cancel", .privilege = "job.change",
      .kind = "job", .object = DV_KIND_JOB, .target = DV_OP_TARGET_PATH, .target_field = "ref",
      .lock = DV_OP_LOCK_OBJECT, .shape = DV_OP_SHAPE_OBJECT, .body = DV_OP_BODY_NONE,
      .handler = dv_op_job_cancel },
    { .name = "version", .method = "GET", .path = "/version", .object = DV_KIND_LAST,
      .shape = DV_OP_SHAPE_OBJECT, .flags = DV_OP_FLAG_PUBLIC, .handler = dv_op_version },
    { .name = "health", .method = "GET", .path = "/health", .object = DV_KIND_LAST,
      .shape = DV_OP_SHAPE_OBJECT, .flags = DV_OP_FLAG_PUBLIC, .handler = dv_op_health },
    { .name = "upgrade.report", .method = "GET", .path = "/upgrade-report",
      .privilege = "setting.read", .kind = "setting", .object = DV_KIND_LAST,
      .target = DV_OP_TARGET_GLOBAL, .shape = DV_OP_SHAPE_OBJECT, .handler = dv_op_upgrade_report },
    { .name = "debug.sleep", .method = "POST", .path = "/debug/sleep", .privilege = "setting.change",
      .kind = "setting", .object = DV_KIND_LAST, .target = DV_OP_TARGET_GLOBAL,
      .job_kinds = dv_jobs_debug_sleep, .shape = DV_OP_SHAPE_JOB, .body = DV_OP_BODY_REQUIRED,
      .flags = DV_OP_FLAG_DEBUG, .handler = dv_op_debug_sleep },
};

void
dv_engine_ops_register(DvEngine *engine)
{
    dv_core_add_ops(engine, dv_engine_ops, G_N_ELEMENTS(dv_engine_ops));
}
