#define G_LOG_DOMAIN "DvCatalogsOps"

/* The catalog operations beyond the generic collection rows (docs/API.md,
 * "Machine catalogs"). */

#include "dv-catalogs.h"
#include "dv-core.h"

static JsonObject *
dv_catalogs_op_provision(DvOpCall *call, GError **error)
{
    return dv_engine_catalog_provision(call->engine, call->params[0], call->actor, error);
}

static JsonObject *
dv_catalogs_op_machines(DvOpCall *call, GError **error)
{
    return dv_engine_catalog_machines_for(call->engine, call->actor, call->params[0], call->query,
                                          error);
}

static JsonObject *
dv_catalogs_op_reconcile(DvOpCall *call, GError **error)
{
    return dv_engine_catalog_reconcile(call->engine, call->params[0], error);
}

static JsonObject *
dv_catalogs_op_reconcile_submit(DvOpCall *call, GError **error)
{
    /* No body: report only. */
    return dv_engine_catalog_reconcile_submit(call->engine, call->params[0], call->body,
                                              call->actor, error);
}

static JsonObject *
dv_catalogs_op_images(DvOpCall *call, GError **error)
{
    return dv_engine_catalog_images(call->engine, call->params[0], error);
}

static JsonObject *
dv_catalogs_op_update_image(DvOpCall *call, GError **error)
{
    return dv_engine_catalog_update_image(call->engine, call->params[0], call->body, call->actor,
                                          error);
}

static JsonObject *
dv_catalogs_op_rollback(DvOpCall *call, GError **error)
{
    return dv_engine_catalog_rollback(call->engine, call->params[0], call->actor, error);
}

static JsonObject *
dv_catalogs_op_rebuild(DvOpCall *call, GError **error)
{
    return dv_engine_catalog_rebuild(call->engine, call->params[0], call->body, call->actor, error);
}

static JsonObject *
dv_catalogs_op_remove_machines(DvOpCall *call, GError **error)
{
    return dv_engine_catalog_remove_machines(call->engine, call->params[0], call->body, call->actor,
                                             error);
}

static JsonObject *
dv_catalogs_op_power(DvOpCall *call, GError **error)
{
    return dv_engine_catalog_power(call->engine, call->params[0], call->body, call->actor, error);
}

static JsonObject *
dv_catalogs_op_add_machines(DvOpCall *call, GError **error)
{
    return dv_engine_catalog_add_machines(call->engine, call->params[0], call->body, call->actor,
                                          error);
}

static JsonObject *
dv_catalogs_op_machine_identity(DvOpCall *call, GError **error)
{
    return dv_engine_catalog_machine_identity_for(call->engine, call->actor, call->params[0],
                                                  error);
}

static const char *const dv_jobs_provision[] = { "catalog.provision", NULL };
static const char *const dv_jobs_reconcile[] = { "catalog.reconcile", NULL };
static const char *const dv_jobs_update_image[] = { "catalog.update-image", NULL };
static const char *const dv_jobs_rollback[] = { "catalog.rollback", NULL };
static const char *const dv_jobs_rebuild[] = { "catalog.rebuild", NULL };
static const char *const dv_jobs_remove[] = { "catalog.remove-machines", NULL };
static const char *const dv_jobs_power[] = { "catalog.power", NULL };

/* Further members (.fields, .query) follow the handler. */
#define DV_CATALOG_ROW(n, m, sub, priv, jobs, sh, b, fl, h, ...)                                   \
    {                                                                                              \
        .name = n, .method = m, .path = "/catalogs/{ref}/" sub, .privilege = priv,                 \
        .kind = "catalog", .object = DV_KIND_CATALOG, .target = DV_OP_TARGET_PATH,                 \
        .target_field = "ref", .lock = jobs != NULL ? DV_OP_LOCK_CATALOG : DV_OP_LOCK_NONE,        \
        .job_kinds = jobs, .shape = sh, .body = b, .flags = fl, .handler = h, __VA_ARGS__          \
    }

static const DvOp dv_catalogs_ops[] = {
    DV_CATALOG_ROW("catalog.provision", "POST", "provision", "catalog.provision", dv_jobs_provision,
                   DV_OP_SHAPE_JOB, DV_OP_BODY_NONE, DV_OP_FLAG_NONE, dv_catalogs_op_provision),
    { .name = "catalog.machines",
      .method = "GET",
      .path = "/catalogs/{ref}/machines",
      .privilege = "catalog.read",
      .kind = "catalog",
      .answer_kind = "catalog_machine",
      .object = DV_KIND_CATALOG,
      .target = DV_OP_TARGET_PATH,
      .target_field = "ref",
      .shape = DV_OP_SHAPE_LIST,
      .handler = dv_catalogs_op_machines },
    DV_CATALOG_ROW("catalog.add-machines", "POST", "machines", "catalog.provision",
                   dv_jobs_provision, DV_OP_SHAPE_JOB, DV_OP_BODY_REQUIRED, DV_OP_FLAG_NO_QUERY,
                   dv_catalogs_op_add_machines,
                   .fields = dv_catalog_add_fields),
    /* Redacted as a reconcile job's result: volumes, paths, pools. */
    DV_CATALOG_ROW("catalog.reconcile", "GET", "reconcile", "catalog.read", NULL,
                   DV_OP_SHAPE_OBJECT, DV_OP_BODY_IGNORED, DV_OP_FLAG_NO_QUERY,
                   dv_catalogs_op_reconcile, .answer_kind = "catalog_reconcile"),
    DV_CATALOG_ROW("catalog.reconcile-submit", "POST", "reconcile", "catalog.change",
                   dv_jobs_reconcile, DV_OP_SHAPE_JOB, DV_OP_BODY_OPTIONAL, DV_OP_FLAG_NO_QUERY,
                   dv_catalogs_op_reconcile_submit,
                   .fields = dv_catalog_reconcile_fields),
    /* Redacted as its images: their bases' volumes and errors. */
    DV_CATALOG_ROW("catalog.images", "GET", "images", "catalog.read", NULL, DV_OP_SHAPE_OBJECT,
                   DV_OP_BODY_IGNORED, DV_OP_FLAG_NO_QUERY, dv_catalogs_op_images,
                   .answer_kind = "catalog_image"),
    DV_CATALOG_ROW("catalog.update-image", "POST", "images", "catalog.change", dv_jobs_update_image,
                   DV_OP_SHAPE_JOB, DV_OP_BODY_REQUIRED, DV_OP_FLAG_NO_QUERY,
                   dv_catalogs_op_update_image,
                   .fields = dv_catalog_update_image_fields),
    DV_CATALOG_ROW("catalog.rollback", "POST", "rollback", "catalog.change", dv_jobs_rollback,
                   DV_OP_SHAPE_JOB, DV_OP_BODY_NONE, DV_OP_FLAG_NONE, dv_catalogs_op_rollback),
    DV_CATALOG_ROW("catalog.rebuild", "POST", "rebuild", "catalog.change", dv_jobs_rebuild,
                   DV_OP_SHAPE_JOB, DV_OP_BODY_REQUIRED, DV_OP_FLAG_NO_QUERY,
                   dv_catalogs_op_rebuild,
                   .fields = dv_catalog_rebuild_fields),
    DV_CATALOG_ROW("catalog.remove-machines", "POST", "remove-machines", "catalog.provision",
                   dv_jobs_remove, DV_OP_SHAPE_JOB, DV_OP_BODY_REQUIRED, DV_OP_FLAG_NO_QUERY,
                   dv_catalogs_op_remove_machines,
                   .fields = dv_catalog_remove_fields),
    DV_CATALOG_ROW("catalog.power", "POST", "power", "vm.power", dv_jobs_power, DV_OP_SHAPE_JOB,
                   DV_OP_BODY_REQUIRED, DV_OP_FLAG_NO_QUERY, dv_catalogs_op_power,
                   .fields = dv_catalog_power_fields),
    { .name = "catalog-machine.identity",
      .method = "GET",
      .path = "/catalog-machines/{ref}/identity",
      .privilege = "catalog.change",
      /* Checked against the machine's catalog and its host's group (the
       * handler checks the same for callers of the engine). */
      .kind = "catalog",
      .object = DV_KIND_CATALOG_MACHINE,
      .target = DV_OP_TARGET_PATH,
      .target_field = "ref",
      .shape = DV_OP_SHAPE_OBJECT,
      .flags = DV_OP_FLAG_NO_QUERY,
      .handler = dv_catalogs_op_machine_identity },
};

void
dv_engine_catalogs_register_ops(DvEngine *engine)
{
    dv_core_add_ops(engine, dv_catalogs_ops, G_N_ELEMENTS(dv_catalogs_ops));
}
