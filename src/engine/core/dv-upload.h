/* A request body streamed into a job (issue 12, item 2: uploads).
 *
 * The daemon's main thread pushes the body's chunks as libsoup reads them
 * (never the whole body: the message is paused above a high mark of
 * buffered bytes and resumed below a low mark); the job's thread reads
 * them and sends them to the host (virStorageVolUpload).  A body cut
 * before its Content-Length aborts the upload: the reader gets an error
 * and the job deletes what it made.  Thread-safe; reference counted.
 *
 * The handler that accepts an upload registers it under its job's id; the
 * job takes it (waiting a bounded time for the registration, which may
 * follow the job's start).  A job that finds none (droverd restarted
 * mid-upload) fails and cleans up. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define DV_UPLOAD_HIGH_MARK (4u << 20) /* bytes buffered before the producer pauses */
#define DV_UPLOAD_LOW_MARK (1u << 20)  /* and below which it resumes */

typedef struct _DvUpload DvUpload;

/* An upload of exactly @length bytes (owned, one reference). */
DvUpload *dv_upload_new(guint64 length);
DvUpload *dv_upload_ref(DvUpload *upload);
void dv_upload_unref(DvUpload *upload);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvUpload, dv_upload_unref)

guint64 dv_upload_get_length(DvUpload *upload);
/* Bytes pushed so far. */
guint64 dv_upload_get_received(DvUpload *upload);

/* Producer.  Adds a copy of @data; TRUE when the producer should pause
 * now (it is then resumed through the resume function). */
gboolean dv_upload_push(DvUpload *upload, const void *data, gsize len);
/* Called in @context (the producer's) when a paused producer may go on. */
void dv_upload_set_resume(DvUpload *upload, GMainContext *context, GSourceFunc resume,
                          gpointer data, GDestroyNotify destroy);
/* The body is complete. */
void dv_upload_finish(DvUpload *upload);
/* The body will not complete (@why: "the client's connection closed"). */
void dv_upload_abort(DvUpload *upload, const char *why);

/* Consumer.  Up to @len bytes into @buf: > 0 bytes read, 0 at the end of
 * a complete body, -1 with @error set when the body was cut (or more bytes
 * came than announced, or none came for @timeout_ms). */
gssize dv_upload_read(DvUpload *upload, guint8 *buf, gsize len, guint timeout_ms, GError **error);

/* The registry between the accepting handler and the job. */
void dv_upload_register(const char *job_id, DvUpload *upload);
/* The upload of @job_id (owned), waiting up to @timeout_ms for it to be
 * registered; NULL when none comes. */
DvUpload *dv_upload_take(const char *job_id, guint timeout_ms);

G_END_DECLS
