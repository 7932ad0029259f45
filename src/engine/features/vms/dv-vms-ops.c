#define G_LOG_DOMAIN "DvVmsOps"

/* The VM operations beyond the generic collection rows (docs/API.md). */

#include "dv-core.h"
#include "dv-vms.h"

static JsonObject *
dv_vms_op_action(DvOpCall *call, GError **error)
{
    /* The action is the path's last segment: "/vms/{ref}/start". */
    const char *action = strrchr(call->op->path, '/') + 1;
    return dv_engine_vm_action(call->engine, call->params[0], action, call->actor, error);
}

static JsonObject *
dv_vms_op_power(DvOpCall *call, GError **error)
{
    const char *action = strrchr(call->op->path, '/') + 1;
    return dv_engine_vm_power(call->engine, call->params[0], action, call->body, call->actor,
                              error);
}

static JsonObject *
dv_vms_op_change(DvOpCall *call, GError **error)
{
    return dv_engine_vm_change(call->engine, call->params[0], call->body, call->actor, error);
}

static JsonObject *
dv_vms_op_clone(DvOpCall *call, GError **error)
{
    return dv_engine_vm_clone(call->engine, call->params[0], call->body, call->actor, error);
}

static JsonObject *
dv_vms_op_snapshot_list(DvOpCall *call, GError **error)
{
    return dv_engine_vm_snapshot_list(call->engine, call->params[0], error);
}

static JsonObject *
dv_vms_op_snapshot_create(DvOpCall *call, GError **error)
{
    return dv_engine_vm_snapshot_create(call->engine, call->params[0], call->body, call->actor,
                                        error);
}

static JsonObject *
dv_vms_op_snapshot_delete(DvOpCall *call, GError **error)
{
    return dv_engine_vm_snapshot_delete(call->engine, call->params[0], call->params[1], call->actor,
                                        error);
}

static JsonObject *
dv_vms_op_snapshot_revert(DvOpCall *call, GError **error)
{
    return dv_engine_vm_snapshot_revert(call->engine, call->params[0], call->params[1], call->actor,
                                        error);
}

/* Live migration (issue 14). */
static JsonObject *
dv_vms_op_migrate(DvOpCall *call, GError **error)
{
    return dv_engine_vm_migrate(call->engine, call->params[0], call->body, call->actor, error);
}

static JsonObject *
dv_vms_op_migrate_preflight(DvOpCall *call, GError **error)
{
    return dv_engine_vm_migrate_preflight(call->engine, call->params[0], call->query, error);
}

/* Consoles (issue 12, item 3). */
static JsonObject *
dv_vms_op_console(DvOpCall *call, GError **error)
{
    return dv_engine_vm_console_check(call->engine, call->params[0], call->query, error);
}

static JsonObject *
dv_vms_op_console_ticket(DvOpCall *call, GError **error)
{
    return dv_engine_vm_console_ticket(call->engine, call->params[0], call->token, error);
}

static const char *const dv_jobs_start[] = { "vm.start", NULL };
static const char *const dv_jobs_shutdown[] = { "vm.shutdown", NULL };
static const char *const dv_jobs_stop[] = { "vm.stop", NULL };
static const char *const dv_jobs_reboot[] = { "vm.reboot", NULL };
static const char *const dv_jobs_reset[] = { "vm.reset", NULL };
static const char *const dv_jobs_change[] = { "vm.change", NULL };
static const char *const dv_jobs_clone[] = { "vm.clone", NULL };
static const char *const dv_jobs_snap_create[] = { "vm.snapshot.create", NULL };
static const char *const dv_jobs_snap_delete[] = { "vm.snapshot.delete", NULL };
static const char *const dv_jobs_snap_revert[] = { "vm.snapshot.revert", NULL };
static const char *const dv_jobs_migrate[] = { "vm.migrate", NULL };

/* Further members (.fields, .query) follow the handler. */
#define DV_VM_ROW(n, m, p, priv, lk, jobs, sh, b, h, ...)                                          \
    {                                                                                              \
        .name = n, .method = m, .path = p, .privilege = priv, .kind = "vm", .object = DV_KIND_VM,  \
        .target = DV_OP_TARGET_PATH, .target_field = "ref", .lock = lk, .job_kinds = jobs,         \
        .shape = sh, .body = b, .handler = h, __VA_ARGS__                                          \
    }

static const DvOp dv_vms_ops[] = {
    DV_VM_ROW("vm.start", "POST", "/vms/{ref}/start", "vm.power", DV_OP_LOCK_OBJECT, dv_jobs_start,
              DV_OP_SHAPE_JOB, DV_OP_BODY_NONE, dv_vms_op_action),
    DV_VM_ROW("vm.shutdown", "POST", "/vms/{ref}/shutdown", "vm.power", DV_OP_LOCK_OBJECT,
              dv_jobs_shutdown, DV_OP_SHAPE_JOB, DV_OP_BODY_OPTIONAL, dv_vms_op_power,
              .fields = dv_vm_shutdown_fields),
    DV_VM_ROW("vm.stop", "POST", "/vms/{ref}/stop", "vm.power", DV_OP_LOCK_OBJECT, dv_jobs_stop,
              DV_OP_SHAPE_JOB, DV_OP_BODY_NONE, dv_vms_op_action),
    DV_VM_ROW("vm.reboot", "POST", "/vms/{ref}/reboot", "vm.power", DV_OP_LOCK_OBJECT,
              dv_jobs_reboot, DV_OP_SHAPE_JOB, DV_OP_BODY_NONE, dv_vms_op_action),
    DV_VM_ROW("vm.reset", "POST", "/vms/{ref}/reset", "vm.power", DV_OP_LOCK_OBJECT, dv_jobs_reset,
              DV_OP_SHAPE_JOB, DV_OP_BODY_NONE, dv_vms_op_action),
    DV_VM_ROW("vm.change", "PATCH", "/vms/{ref}", "vm.change", DV_OP_LOCK_OBJECT, dv_jobs_change,
              DV_OP_SHAPE_JOB, DV_OP_BODY_REQUIRED, dv_vms_op_change,
              .fields = dv_vm_change_fields),
    /* vm.create checked against the source (a clone stays on its host);
     * vm.read of the source and vm.create on the host for the quota by
     * the handler. */
    DV_VM_ROW("vm.clone", "POST", "/vms/{ref}/clone", "vm.create", DV_OP_LOCK_OBJECT, dv_jobs_clone,
              DV_OP_SHAPE_JOB, DV_OP_BODY_REQUIRED, dv_vms_op_clone, .fields = dv_vm_clone_fields),
    DV_VM_ROW("vm.snapshot.list", "GET", "/vms/{ref}/snapshots", "vm.read", DV_OP_LOCK_NONE, NULL,
              DV_OP_SHAPE_LIST, DV_OP_BODY_IGNORED, dv_vms_op_snapshot_list),
    DV_VM_ROW("vm.snapshot.create", "POST", "/vms/{ref}/snapshots", "vm.snapshot",
              DV_OP_LOCK_OBJECT, dv_jobs_snap_create, DV_OP_SHAPE_JOB, DV_OP_BODY_REQUIRED,
              dv_vms_op_snapshot_create, .fields = dv_vm_snapshot_fields),
    DV_VM_ROW("vm.snapshot.delete", "DELETE", "/vms/{ref}/snapshots/{snapshot}", "vm.snapshot",
              DV_OP_LOCK_OBJECT, dv_jobs_snap_delete, DV_OP_SHAPE_JOB, DV_OP_BODY_NONE,
              dv_vms_op_snapshot_delete),
    DV_VM_ROW("vm.snapshot.revert", "POST", "/vms/{ref}/snapshots/{snapshot}/revert", "vm.snapshot",
              DV_OP_LOCK_OBJECT, dv_jobs_snap_revert, DV_OP_SHAPE_JOB, DV_OP_BODY_NONE,
              dv_vms_op_snapshot_revert),
    /* Live migration: vm.migrate on the VM; the target host is the
     * cluster's (or group's) the VM is in, checked by the preflight. */
    DV_VM_ROW("vm.migrate", "POST", "/vms/{ref}/migrate", "vm.migrate", DV_OP_LOCK_OBJECT,
              dv_jobs_migrate, DV_OP_SHAPE_JOB, DV_OP_BODY_OPTIONAL, dv_vms_op_migrate,
              .fields = dv_vm_migrate_fields),
    DV_VM_ROW("vm.migrate.preflight", "GET", "/vms/{ref}/migrate/preflight", "vm.migrate",
              DV_OP_LOCK_NONE, NULL, DV_OP_SHAPE_OBJECT, DV_OP_BODY_IGNORED,
              dv_vms_op_migrate_preflight, .query = dv_vm_migrate_query),
    /* Consoles: the WebSocket (a bearer token or ?ticket=) and its tickets. */
    DV_VM_ROW("vm.console", "GET", "/vms/{ref}/console", "vm.console", DV_OP_LOCK_NONE, NULL,
              DV_OP_SHAPE_WEBSOCKET, DV_OP_BODY_IGNORED, dv_vms_op_console,
              .query = dv_vm_console_query),
    DV_VM_ROW("vm.console.ticket", "POST", "/vms/{ref}/console-tickets", "vm.console",
              DV_OP_LOCK_OBJECT, NULL, DV_OP_SHAPE_CREATED, DV_OP_BODY_NONE,
              dv_vms_op_console_ticket),
};

void
dv_engine_vms_register_ops(DvEngine *engine)
{
    dv_core_add_ops(engine, dv_vms_ops, G_N_ELEMENTS(dv_vms_ops));
    dv_engine_vm_disks_register_ops(engine);
    dv_engine_vm_nics_register_ops(engine);
    dv_engine_vm_cdrom_register_ops(engine);
    dv_engine_volume_upload_register_ops(engine);
}
