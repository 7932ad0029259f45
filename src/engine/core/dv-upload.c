#define G_LOG_DOMAIN "DvUpload"

#include "dv-upload.h"

#include "dv-error.h"

#include <string.h>

struct _DvUpload {
    gint refs;
    GMutex lock;
    GCond cond;
    guint64 length;
    guint64 received;
    guint64 consumed;
    GQueue chunks; /* GBytes */
    gsize offset;  /* read from the head chunk */
    gsize buffered;
    gboolean finished;
    gboolean paused;
    char *aborted; /* why, or NULL */
    GMainContext *context;
    GSourceFunc resume;
    gpointer resume_data;
    GDestroyNotify resume_destroy;
};

DvUpload *
dv_upload_new(guint64 length)
{
    DvUpload *u = g_new0(DvUpload, 1);
    u->refs = 1;
    g_mutex_init(&u->lock);
    g_cond_init(&u->cond);
    g_queue_init(&u->chunks);
    u->length = length;
    return u;
}

DvUpload *
dv_upload_ref(DvUpload *upload)
{
    g_atomic_int_inc(&upload->refs);
    return upload;
}

void
dv_upload_unref(DvUpload *upload)
{
    if (upload == NULL || !g_atomic_int_dec_and_test(&upload->refs))
        return;
    g_queue_clear_full(&upload->chunks, (GDestroyNotify)g_bytes_unref);
    if (upload->resume_destroy != NULL)
        upload->resume_destroy(upload->resume_data);
    g_clear_pointer(&upload->context, g_main_context_unref);
    g_free(upload->aborted);
    g_mutex_clear(&upload->lock);
    g_cond_clear(&upload->cond);
    g_free(upload);
}

guint64
dv_upload_get_length(DvUpload *upload)
{
    return upload->length;
}

guint64
dv_upload_get_received(DvUpload *upload)
{
    guint64 n;
    g_mutex_lock(&upload->lock);
    n = upload->received;
    g_mutex_unlock(&upload->lock);
    return n;
}

gboolean
dv_upload_push(DvUpload *upload, const void *data, gsize len)
{
    gboolean pause;

    g_mutex_lock(&upload->lock);
    /* Chunks after an abort (the job gave up) are dropped. */
    if (upload->aborted == NULL && len > 0) {
        g_queue_push_tail(&upload->chunks, g_bytes_new(data, len));
        upload->buffered += len;
        upload->received += len;
        g_cond_broadcast(&upload->cond);
    }
    pause = upload->aborted == NULL && upload->buffered > DV_UPLOAD_HIGH_MARK;
    if (pause)
        upload->paused = TRUE;
    g_mutex_unlock(&upload->lock);
    return pause;
}

void
dv_upload_set_resume(DvUpload *upload, GMainContext *context, GSourceFunc resume, gpointer data,
                     GDestroyNotify destroy)
{
    g_mutex_lock(&upload->lock);
    upload->context = g_main_context_ref(context);
    upload->resume = resume;
    upload->resume_data = data;
    upload->resume_destroy = destroy;
    g_mutex_unlock(&upload->lock);
}

void
dv_upload_finish(DvUpload *upload)
{
    g_mutex_lock(&upload->lock);
    upload->finished = TRUE;
    g_cond_broadcast(&upload->cond);
    g_mutex_unlock(&upload->lock);
}

void
dv_upload_abort(DvUpload *upload, const char *why)
{
    g_mutex_lock(&upload->lock);
    if (upload->aborted == NULL && !(upload->finished && upload->received == upload->length))
        upload->aborted = g_strdup(why);
    g_cond_broadcast(&upload->cond);
    g_mutex_unlock(&upload->lock);
}

gssize
dv_upload_read(DvUpload *upload, guint8 *buf, gsize len, guint timeout_ms, GError **error)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    gsize got = 0;
    gboolean resume = FALSE;

    g_mutex_lock(&upload->lock);
    for (;;) {
        if (upload->aborted != NULL) {
            /* The body never reached its declared size: the request's
             * fault, not the host's. */
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "Content-Length",
                               "upload cut after %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                               " bytes: %s",
                               upload->received, upload->length, upload->aborted);
            g_mutex_unlock(&upload->lock);
            return -1;
        }
        if (upload->received > upload->length) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "Content-Length",
                               "upload: more bytes than the Content-Length of %" G_GUINT64_FORMAT,
                               upload->length);
            g_mutex_unlock(&upload->lock);
            return -1;
        }
        if (!g_queue_is_empty(&upload->chunks))
            break;
        if (upload->finished) {
            gboolean complete = upload->received == upload->length;
            if (!complete)
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "Content-Length",
                                   "upload cut after %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                                   " bytes",
                                   upload->received, upload->length);
            g_mutex_unlock(&upload->lock);
            return complete ? 0 : -1;
        }
        if (!g_cond_wait_until(&upload->cond, &upload->lock, deadline)) {
            g_set_error(error, DV_ERROR, DV_ERROR_TIMEOUT,
                        "upload: no data for %u s after %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                        " bytes",
                        timeout_ms / 1000, upload->received, upload->length);
            g_mutex_unlock(&upload->lock);
            return -1;
        }
    }
    while (got < len && !g_queue_is_empty(&upload->chunks)) {
        GBytes *head = g_queue_peek_head(&upload->chunks);
        gsize size;
        const guint8 *data = g_bytes_get_data(head, &size);
        gsize n = MIN(len - got, size - upload->offset);
        memcpy(buf + got, data + upload->offset, n);
        got += n;
        upload->offset += n;
        if (upload->offset == size) {
            g_bytes_unref(g_queue_pop_head(&upload->chunks));
            upload->offset = 0;
        }
    }
    upload->buffered -= got;
    upload->consumed += got;
    if (upload->paused && upload->buffered < DV_UPLOAD_LOW_MARK && upload->resume != NULL) {
        upload->paused = FALSE;
        resume = TRUE;
    }
    if (resume)
        g_main_context_invoke_full(upload->context, G_PRIORITY_DEFAULT, upload->resume,
                                   upload->resume_data, NULL);
    g_mutex_unlock(&upload->lock);
    return (gssize)got;
}

/* --- the registry ---------------------------------------------------------- */

static GMutex dv_upload_registry_lock;
static GCond dv_upload_registry_cond;
static GHashTable *dv_upload_registry; /* job id -> DvUpload */

void
dv_upload_register(const char *job_id, DvUpload *upload)
{
    g_mutex_lock(&dv_upload_registry_lock);
    if (dv_upload_registry == NULL)
        dv_upload_registry =
            g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)dv_upload_unref);
    g_hash_table_replace(dv_upload_registry, g_strdup(job_id), dv_upload_ref(upload));
    g_cond_broadcast(&dv_upload_registry_cond);
    g_mutex_unlock(&dv_upload_registry_lock);
}

DvUpload *
dv_upload_take(const char *job_id, guint timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    gpointer key = NULL;
    gpointer value = NULL;

    g_mutex_lock(&dv_upload_registry_lock);
    while (dv_upload_registry == NULL ||
           !g_hash_table_steal_extended(dv_upload_registry, job_id, &key, &value)) {
        if (!g_cond_wait_until(&dv_upload_registry_cond, &dv_upload_registry_lock, deadline))
            break;
    }
    g_mutex_unlock(&dv_upload_registry_lock);
    g_free(key);
    return value;
}
