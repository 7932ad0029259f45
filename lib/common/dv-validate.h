/* Input rules shared by the API, the engine and the CLI. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define DV_NAME_MAX 64
#define DV_DESCRIPTION_MAX 1024
#define DV_URI_MAX 1024
#define DV_PAGE_MAX 500
#define DV_PAGE_DEFAULT 100

/* A name of an object Drover manages, usable as a libvirt domain, volume
 * or pool name and in a file name: 1-64 characters from [A-Za-z0-9._-],
 * starting with a letter or digit. */
gboolean dv_validate_name(const char *field, const char *name, GError **error);

/* Free text (descriptions): valid UTF-8, at most @max bytes, no control
 * characters other than newline and tab. */
gboolean dv_validate_text(const char *field, const char *text, gsize max, GError **error);

/* An integer in [min, max]; the error states the range. */
gboolean dv_validate_range(const char *field, gint64 value, gint64 min, gint64 max,
                           GError **error);

/* A libvirt connection URI: scheme "test", "qemu" or "qemu+<transport>",
 * printable ASCII, at most DV_URI_MAX bytes. */
gboolean dv_validate_libvirt_uri(const char *field, const char *uri, GError **error);

/* A UUID in its canonical text form. */
gboolean dv_validate_id(const char *field, const char *id, GError **error);

G_END_DECLS

G_BEGIN_DECLS
/* A copy of untrusted text that is safe to put in a message: valid UTF-8,
 * at most @max bytes (cut on a character boundary, "…" appended), control
 * characters replaced by '?'. */
char *dv_text_excerpt(const char *text, gsize max);
G_END_DECLS
