/* The web console's static files (docs/WEB.md): droverd serves the tree
 * under its web root at "/", the API stays under /api/v1.
 *
 * Paths are strict: every segment is percent-decoded once and must be a
 * plain name (no "." or ".." and no dotfile, no "/", "\\" or NUL inside,
 * valid UTF-8); the file is opened one directory at a time below the
 * root with O_NOFOLLOW, so no symbolic link is followed, inside the tree
 * or out of it; only regular files of a known type up to
 * DV_WEB_MAX_FILE bytes are served.  Anything else is 404 (405 for a
 * method other than GET and HEAD).  Every answer carries the security
 * headers (Content-Security-Policy default-src 'self', frame-ancestors
 * 'none', nosniff) and an ETag; If-None-Match gives 304.
 *
 * Main thread only (the files are small and local). */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

#define DV_WEB_MAX_FILE (8 * 1024 * 1024)

/* Sent with every static answer.  connect-src 'self' admits the
 * console's WebSocket to the same host and port (CSP Level 3). */
#define DV_WEB_CSP                                                                                 \
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; "            \
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

typedef struct _DvWeb DvWeb;

/* Opens @root (a directory).  NULL with DV_ERROR_NOT_FOUND naming
 * "web_root" when it is not a directory. */
DvWeb *dv_web_new(const char *root, GError **error);
void dv_web_free(DvWeb *web);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvWeb, dv_web_free)

const char *dv_web_get_root(DvWeb *web);

/* Answers @msg (not paused) for @path, the URI's path as sent (still
 * percent-encoded).  @web may be NULL: the console is not installed
 * (404 saying so). */
void dv_web_serve(DvWeb *web, SoupServerMessage *msg, const char *method, const char *path);

/* The default root: <build dir>/web when this binary runs from the build
 * tree, else the installed <datadir>/drover/web.  Owned. */
char *dv_web_default_root(void);

G_END_DECLS
