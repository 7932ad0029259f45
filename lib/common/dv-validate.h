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

/* dv_validate_host_uri() with no policy: only the built-in allowlist. */
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

G_BEGIN_DECLS
/* What droverd's configuration lets a host URI use beyond the built-in
 * allowlist (docs/VIRT.md, "Host URIs").  A NULL policy allows nothing
 * extra. */
typedef struct {
    gboolean allow_simulated;             /* test:///FILE and test:///default */
    const char *const *allow_parameters;  /* NULL-terminated lower-case names, or NULL */
} DvUriPolicy;

/* A host URI Drover may open: parsed as a URI (RFC 3986), then checked
 * against an allowlist of drivers, transports and query parameters.
 * Allowed without configuration: qemu:///system and remote
 * qemu[+ssh|+libssh|+libssh2|+tls|+tcp]://[user@]host[:port]/{system,session}
 * with the harmless parameters mode, proxy, no_tty, known_hosts_verify=normal
 * and sshauth.  Everything that names a program, a socket or a file on the
 * management server, or weakens host checking, needs @policy.  Refusals
 * are DV_ERROR_INVALID_ARGUMENT naming @field and the rule. */
gboolean dv_validate_host_uri(const char *field, const char *uri, const DvUriPolicy *policy,
                              GError **error);

/* Whether @name is a libvirt URI parameter an administrator may allow
 * (configuration check); the error lists the known names. */
gboolean dv_validate_uri_parameter_name(const char *name, GError **error);
G_END_DECLS
