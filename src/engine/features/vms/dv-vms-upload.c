#define G_LOG_DOMAIN "DvVmsUpload"

/* Uploads into a library share or a pool (issue 12, item 2; docs/API.md
 * "Uploads"): the request body, streamed by droverd as it arrives
 * (DvUpload, never held whole), becomes a new volume on the host through
 * virStorageVolUpload, in a volume.upload job whose progress is the bytes
 * sent.  Refused before any job, naming the field: a name the pool holds,
 * a pool not running, a share with no host pool, a Content-Length the
 * pool's available space cannot hold.  A body cut half-way fails the job
 * and deletes the partial volume; so does a droverd that restarted
 * mid-upload (the resumed job finds no body). */

#include "dv-upload.h"
#include "dv-vms.h"

#include <string.h>

/* How long the job waits for its body to be handed over, and then for
 * each next chunk. */
#define DV_UPLOAD_TAKE_MS 30000
#define DV_UPLOAD_IDLE_MS 60000

const DvFieldSpec dv_volume_upload_query[] = {
    { "name", DV_FIELD_STRING, TRUE, "the new volume's (file's) name", .max_len = DV_NAME_MAX },
    { NULL },
};

static const char *
dv_upload_query_name(GHashTable *query, GError **error)
{
    const char *name = query != NULL ? g_hash_table_lookup(query, "name") : NULL;

    if (query != NULL) {
        GHashTableIter it;
        gpointer k;
        g_hash_table_iter_init(&it, query);
        while (g_hash_table_iter_next(&it, &k, NULL)) {
            if (g_strcmp0(k, "name") != 0) {
                g_autofree char *safe = dv_text_excerpt(k, 64);
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, safe,
                                   "%s: unknown parameter; an upload takes name", safe);
                return NULL;
            }
        }
    }
    if (name == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "name",
                           "name: the new volume's name is required (?name=FILE)");
        return NULL;
    }
    return dv_validate_name("name", name, error) ? name : NULL;
}

/* The checks of both routes once the pool is known; submits the job. */
static JsonObject *
dv_upload_submit(DvEngine *engine, JsonObject *pool, const char *name, const char *share_id,
                 DvUpload *upload, const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) params = json_object_new();
    g_autoptr(JsonObject) job = NULL;
    guint64 length;
    gint64 available = dv_json_get_int(pool, "available", -1);

    if (upload == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL,
                           "an upload's body is streamed by droverd only");
        return NULL;
    }
    length = dv_upload_get_length(upload);
    if (g_strcmp0(dv_json_get_string(pool, "state", ""), "running") != 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "pool",
                           "pool: storage pool '%s' is not running",
                           dv_json_get_string(pool, "name", ""));
        return NULL;
    }
    if (!dv_volume_name_free(engine, pool, name, "name", error))
        return NULL;
    if (length == 0 || length > DV_OP_UPLOAD_MAX) {
        dv_set_field_error(error, DV_ERROR_TOO_LARGE, "Content-Length",
                           "Content-Length: an upload is 1 byte to %" G_GUINT64_FORMAT " bytes",
                           DV_OP_UPLOAD_MAX);
        return NULL;
    }
    if (available >= 0 && (guint64)available < length) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "Content-Length",
                           "Content-Length: %" G_GUINT64_FORMAT " bytes do not fit in pool '%s', "
                           "which has %" G_GINT64_FORMAT " bytes available",
                           length, dv_json_get_string(pool, "name", ""), available);
        return NULL;
    }
    json_object_set_string_member(params, "pool_id", dv_json_get_string(pool, "id", ""));
    json_object_set_string_member(params, "pool", dv_json_get_string(pool, "name", ""));
    json_object_set_string_member(params, "name", name);
    json_object_set_int_member(params, "length", (gint64)length);
    if (share_id != NULL)
        json_object_set_string_member(params, "library_share_id", share_id);
    job = dv_core_submit(engine, "volume.upload", "volume", NULL, name,
                         dv_json_get_string(pool, "host_id", ""), params, actor, error);
    if (job == NULL)
        return NULL;
    dv_upload_register(dv_json_get_string(job, "id", ""), upload);
    return g_steal_pointer(&job);
}

JsonObject *
dv_engine_library_share_upload(DvEngine *engine, const char *share_ref, GHashTable *query,
                               gpointer upload, const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) share = NULL;
    g_autoptr(JsonArray) pools = NULL;
    const char *name = dv_upload_query_name(query, error);
    JsonObject *pool = NULL;

    if (name == NULL)
        return NULL;
    share = dv_core_resolve_for(engine, actor, DV_KIND_LIBRARY_SHARE, share_ref, "ref", error);
    if (share == NULL)
        return NULL;
    if (dv_json_get_string(share, "host_id", NULL) == NULL ||
        dv_json_get_string(share, "pool_name", NULL) == NULL) {
        dv_set_field_error(error, DV_ERROR_NOT_SUPPORTED, "library_share",
                           "library_share: '%s' is not on a host's storage pool; uploads go "
                           "through a host (register the share with host and pool)",
                           dv_json_get_string(share, "name", ""));
        return NULL;
    }
    pools = dv_core_list_all(engine, &dv_table_pools, "host_id",
                             dv_json_get_string(share, "host_id", ""), error);
    if (pools == NULL)
        return NULL;
    for (guint i = 0; i < json_array_get_length(pools); i++) {
        JsonObject *p = json_array_get_object_element(pools, i);
        if (g_strcmp0(dv_json_get_string(p, "name", ""),
                      dv_json_get_string(share, "pool_name", "")) == 0)
            pool = p;
    }
    if (pool == NULL) {
        dv_set_field_error(error, DV_ERROR_NOT_FOUND, "library_share",
                           "library_share: the pool '%s' of share '%s' is not on its host any more",
                           dv_json_get_string(share, "pool_name", ""),
                           dv_json_get_string(share, "name", ""));
        return NULL;
    }
    return dv_upload_submit(engine, pool, name, dv_json_get_string(share, "id", ""), upload, actor,
                            error);
}

JsonObject *
dv_engine_pool_upload(DvEngine *engine, const char *pool_ref, GHashTable *query, gpointer upload,
                      const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) pool = NULL;
    const char *name = dv_upload_query_name(query, error);

    if (name == NULL)
        return NULL;
    pool = dv_core_resolve_for(engine, actor, DV_KIND_POOL, pool_ref, "ref", error);
    if (pool == NULL)
        return NULL;
    return dv_upload_submit(engine, pool, name, NULL, upload, actor, error);
}

typedef struct {
    DvUpload *upload;
    DvJob *job;
    guint last_percent;
} DvUploadJobCtx;

static gssize
dv_upload_job_read(gpointer data, guint8 *buf, gsize len, GError **error)
{
    DvUploadJobCtx *ctx = data;
    return dv_upload_read(ctx->upload, buf, len, DV_UPLOAD_IDLE_MS, error);
}

static void
dv_upload_job_progress(gpointer data, guint64 done, guint64 total)
{
    DvUploadJobCtx *ctx = data;
    guint percent = (guint)(done * 100 / MAX(total, 1));
    /* One event per percent, not per chunk. */
    if (percent != ctx->last_percent) {
        ctx->last_percent = percent;
        dv_job_step_progress(ctx->job, (double)done / (double)MAX(total, 1));
    }
}

static gboolean
dv_volume_upload_job(DvJob *job, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    JsonObject *params = dv_job_get_params(job);
    GCancellable *c = dv_job_get_cancellable(job);
    const char *pool_name = dv_json_get_string(params, "pool", "");
    const char *name = dv_json_get_string(params, "name", "");
    g_autoptr(DvUpload) upload = NULL;
    g_autoptr(JsonObject) pool = NULL;
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(JsonObject) vol = NULL;
    g_autoptr(JsonObject) result = json_object_new();
    g_autofree char *path = NULL;
    DvUploadJobCtx ctx = { NULL, job, 0 };
    static const DvJobStep steps[] = { { "upload", 90 }, { "save", 10 } };

    dv_job_set_steps(job, steps, G_N_ELEMENTS(steps));
    /* A resumed attempt (droverd restarted) has no body to wait for. */
    upload =
        dv_upload_take(dv_job_get_id(job), dv_job_get_attempt(job) > 1 ? 0 : DV_UPLOAD_TAKE_MS);
    pool = dv_store_get(dv_core(engine)->store, &dv_table_pools,
                        dv_json_get_string(params, "pool_id", ""), error);
    if (pool == NULL)
        return FALSE;
    vh = dv_core_virt_host_by_id(engine, dv_json_get_string(pool, "host_id", ""), error);
    if (vh == NULL || !dv_job_step(job, "upload", error))
        return FALSE;
    if (upload == NULL) {
        /* A job resumed after a restart: its body is gone, and so must be
         * the volume it was filling (the request checked the name free). */
        g_autofree char *vpath =
            g_build_filename(dv_json_get_string(pool, "path", "/"), name, NULL);
        g_autoptr(GError) local = NULL;
        if (!dv_virt_volume_delete_by_path(vh, vpath, c, &local) &&
            !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
            g_warning("cannot remove the partial upload %s: %s", vpath, local->message);
        g_set_error(error, DV_ERROR, DV_ERROR_CANCELLED,
                    "upload of %s: the request's body is gone (droverd stopped during the "
                    "upload); the partial volume was removed, upload it again",
                    name);
        return FALSE;
    }
    ctx.upload = upload;
    if (!dv_virt_volume_upload_stream(vh, pool_name, name, dv_upload_get_length(upload),
                                      dv_upload_job_read, &ctx, dv_upload_job_progress, &ctx, &path,
                                      c, error)) {
        /* The producer drops what still comes. */
        dv_upload_abort(upload, "the upload job failed");
        return FALSE;
    }
    if (!dv_job_step(job, "save", error))
        return FALSE;
    vol = dv_virt_volume_lookup_by_path(vh, path, c, error);
    if (vol == NULL || !dv_volume_record(engine, pool, vol, error))
        return FALSE;
    json_object_set_string_member(result, "name", name);
    json_object_set_string_member(result, "pool", pool_name);
    json_object_set_string_member(result, "path", path);
    json_object_set_string_member(result, "format", dv_json_get_string(vol, "format", "raw"));
    json_object_set_int_member(result, "size", (gint64)dv_upload_get_length(upload));
    if (dv_json_get_string(params, "library_share_id", NULL) != NULL)
        json_object_set_string_member(result, "library_share_id",
                                      dv_json_get_string(params, "library_share_id", NULL));
    {
        g_autoptr(JsonArray) rows = dv_core_list_all(engine, &dv_table_volumes, "path", path, NULL);
        for (guint i = 0; rows != NULL && i < json_array_get_length(rows); i++) {
            JsonObject *r = json_array_get_object_element(rows, i);
            if (g_strcmp0(dv_json_get_string(r, "host_id", ""),
                          dv_json_get_string(pool, "host_id", "")) == 0)
                json_object_set_string_member(result, "id", dv_json_get_string(r, "id", ""));
        }
    }
    dv_job_set_result(job, result);
    return TRUE;
}

void
dv_engine_volume_upload_register(DvEngine *engine)
{
    /* Resumable: a resumed job removes the partial volume and fails. */
    DvJobKind kind = { "volume.upload", dv_volume_upload_job, engine, TRUE };
    dv_job_manager_register_kind(dv_core(engine)->jobs, &kind);
}

/* --- operation rows ----------------------------------------------------------- */

static JsonObject *
dv_op_library_share_upload(DvOpCall *call, GError **error)
{
    return dv_engine_library_share_upload(call->engine, call->params[0], call->query, call->upload,
                                          call->actor, error);
}

static JsonObject *
dv_op_pool_upload(DvOpCall *call, GError **error)
{
    return dv_engine_pool_upload(call->engine, call->params[0], call->query, call->upload,
                                 call->actor, error);
}

static const char *const dv_jobs_volume_upload[] = { "volume.upload", NULL };

static const DvOp dv_upload_ops[] = {
    { .name = "library_share.upload",
      .method = "POST",
      .path = "/library-shares/{ref}/files",
      .privilege = "library_share.change",
      .kind = "library_share",
      .object = DV_KIND_LIBRARY_SHARE,
      .target = DV_OP_TARGET_PATH,
      .target_field = "ref",
      .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_volume_upload,
      .shape = DV_OP_SHAPE_JOB,
      .body = DV_OP_BODY_IGNORED,
      .query = dv_volume_upload_query,
      .flags = DV_OP_FLAG_UPLOAD,
      .handler = dv_op_library_share_upload },
    { .name = "volume.upload",
      .method = "POST",
      .path = "/storage-pools/{ref}/volumes",
      .privilege = "volume.create",
      .kind = "pool",
      .object = DV_KIND_POOL,
      .target = DV_OP_TARGET_PATH,
      .target_field = "ref",
      .lock = DV_OP_LOCK_OBJECT,
      .job_kinds = dv_jobs_volume_upload,
      .shape = DV_OP_SHAPE_JOB,
      .body = DV_OP_BODY_IGNORED,
      .query = dv_volume_upload_query,
      .flags = DV_OP_FLAG_UPLOAD,
      .handler = dv_op_pool_upload },
};

void
dv_engine_volume_upload_register_ops(DvEngine *engine)
{
    dv_core_add_ops(engine, dv_upload_ops, G_N_ELEMENTS(dv_upload_ops));
}
