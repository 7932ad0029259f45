#define G_LOG_DOMAIN "DvHostsOps"

/* The host operations beyond the generic collection rows (docs/API.md). */

#include "dv-core.h"
#include "dv-hosts.h"

static JsonObject *
dv_hosts_op_refresh(DvOpCall *call, GError **error)
{
    return dv_engine_host_refresh(call->engine, call->params[0], call->actor, error);
}

static const char *const dv_jobs_refresh[] = { "host.refresh", NULL };

static const DvOp dv_hosts_ops[] = {
    { .name = "host.refresh",
      .method = "POST",
      .path = "/hosts/{ref}/refresh",
      .privilege = "host.change",
      .kind = "host",
      .object = DV_KIND_HOST,
      .target = DV_OP_TARGET_PATH,
      .target_field = "ref",
      .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_refresh,
      .shape = DV_OP_SHAPE_JOB,
      .body = DV_OP_BODY_NONE,
      .handler = dv_hosts_op_refresh },
};

void
dv_engine_hosts_register_ops(DvEngine *engine)
{
    dv_core_add_ops(engine, dv_hosts_ops, G_N_ELEMENTS(dv_hosts_ops));
    dv_engine_netpool_register_ops(engine);
}
