#define G_LOG_DOMAIN "DvWeb"
#define _GNU_SOURCE /* O_PATH */

#include "dv-web.h"
#include "dv-config.h"
#include "dv-error.h"
#include "dv-json.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DV_WEB_MAX_DEPTH 8

struct _DvWeb {
    char *root;
    int root_fd; /* O_PATH|O_DIRECTORY: the tree is opened below it */
};

/* Declare, don't branch: the types served; any other extension is 404. */
static const struct {
    const char *ext;
    const char *type;
} dv_web_types[] = {
    { ".html", "text/html; charset=utf-8" },
    { ".js", "text/javascript; charset=utf-8" },
    { ".mjs", "text/javascript; charset=utf-8" },
    { ".css", "text/css; charset=utf-8" },
    { ".json", "application/json" },
    { ".svg", "image/svg+xml" },
    { ".png", "image/png" },
    { ".ico", "image/x-icon" },
    { ".woff2", "font/woff2" },
    { ".txt", "text/plain; charset=utf-8" },
};

DvWeb *
dv_web_new(const char *root, GError **error)
{
    int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    DvWeb *web;

    if (fd < 0) {
        dv_set_field_error(error, DV_ERROR_NOT_FOUND, "web_root",
                           "web_root: %s is not a directory (%s)", root, g_strerror(errno));
        return NULL;
    }
    web = g_new0(DvWeb, 1);
    web->root = g_strdup(root);
    web->root_fd = fd;
    return web;
}

void
dv_web_free(DvWeb *web)
{
    if (web == NULL)
        return;
    close(web->root_fd);
    g_free(web->root);
    g_free(web);
}

const char *
dv_web_get_root(DvWeb *web)
{
    return web->root;
}

char *
dv_web_default_root(void)
{
    g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
    g_autofree char *build = g_strconcat(DV_BUILD_DIR, "/", NULL);

    if (exe != NULL && g_str_has_prefix(exe, build))
        return g_build_filename(DV_BUILD_DIR, "web", NULL);
    return g_build_filename(DV_DATA_DIR, "drover", "web", NULL);
}

static const char *
dv_web_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot == NULL)
        return NULL;
    for (gsize i = 0; i < G_N_ELEMENTS(dv_web_types); i++)
        if (g_ascii_strcasecmp(dot, dv_web_types[i].ext) == 0)
            return dv_web_types[i].type;
    return NULL;
}

/* The path's segments, decoded, or NULL when one breaks the rules
 * (dv-web.h).  "/" and a trailing "/" name index.html. */
static GPtrArray *
dv_web_segments(const char *path)
{
    g_autoptr(GPtrArray) seg = g_ptr_array_new_with_free_func(g_free);
    g_auto(GStrv) parts = NULL;

    if (path == NULL || path[0] != '/')
        return NULL;
    parts = g_strsplit(path + 1, "/", DV_WEB_MAX_DEPTH + 2);
    for (guint i = 0; parts[i] != NULL; i++) {
        g_autofree char *s = NULL;
        if (parts[i][0] == '\0' && parts[i + 1] == NULL)
            break; /* trailing slash */
        if (i >= DV_WEB_MAX_DEPTH)
            return NULL;
        s = g_uri_unescape_string(parts[i], "/\\");
        if (s == NULL || s[0] == '\0' || s[0] == '.' || !g_utf8_validate(s, -1, NULL))
            return NULL;
        g_ptr_array_add(seg, g_steal_pointer(&s));
    }
    if (seg->len == 0)
        g_ptr_array_add(seg, g_strdup("index.html"));
    return g_steal_pointer(&seg);
}

/* Opens the file below the root one segment at a time, following no
 * symbolic link; -1 (errno set) otherwise. */
static int
dv_web_open(DvWeb *web, GPtrArray *seg)
{
    int dir = web->root_fd;
    int fd = -1;

    for (guint i = 0; i < seg->len; i++) {
        gboolean last = i + 1 == seg->len;
        int flags = O_NOFOLLOW | O_CLOEXEC | (last ? O_RDONLY : O_PATH | O_DIRECTORY);
        fd = openat(dir, g_ptr_array_index(seg, i), flags);
        if (dir != web->root_fd)
            close(dir);
        if (fd < 0)
            return -1;
        dir = fd;
    }
    return fd;
}

static void
dv_web_headers(SoupMessageHeaders *h)
{
    soup_message_headers_replace(h, "Content-Security-Policy", DV_WEB_CSP);
    soup_message_headers_replace(h, "X-Content-Type-Options", "nosniff");
    soup_message_headers_replace(h, "X-Frame-Options", "DENY");
    soup_message_headers_replace(h, "Referrer-Policy", "no-referrer");
    soup_message_headers_replace(h, "Cross-Origin-Opener-Policy", "same-origin");
}

static void
dv_web_refuse(SoupServerMessage *msg, guint status, const char *message)
{
    g_autoptr(JsonObject) outer = json_object_new();
    JsonObject *inner = json_object_new();
    g_autofree char *body = NULL;

    json_object_set_string_member(inner, "code", status == 405 ? "invalid-argument" : "not-found");
    json_object_set_string_member(inner, "message", message);
    json_object_set_null_member(inner, "field");
    json_object_set_object_member(outer, "error", inner);
    body = dv_json_object_to_string(outer, FALSE);
    dv_web_headers(soup_server_message_get_response_headers(msg));
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Cache-Control",
                                 "no-store");
    soup_server_message_set_status(msg, status, NULL);
    soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, body, strlen(body));
}

/* If-None-Match holds @etag (a list, or "*"). */
static gboolean
dv_web_etag_matches(SoupMessageHeaders *h, const char *etag)
{
    const char *inm = soup_message_headers_get_one(h, "If-None-Match");
    g_auto(GStrv) tags = NULL;

    if (inm == NULL)
        return FALSE;
    tags = g_strsplit(inm, ",", 32);
    for (guint i = 0; tags[i] != NULL; i++) {
        const char *t = g_strstrip(tags[i]);
        if (g_str_has_prefix(t, "W/"))
            t += 2;
        if (g_strcmp0(t, "*") == 0 || g_strcmp0(t, etag) == 0)
            return TRUE;
    }
    return FALSE;
}

void
dv_web_serve(DvWeb *web, SoupServerMessage *msg, const char *method, const char *path)
{
    SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
    g_autoptr(GPtrArray) seg = NULL;
    g_autofree char *etag = NULL;
    g_autofree char *data = NULL;
    const char *type;
    struct stat st;
    gsize got = 0;
    int fd;

    if (g_strcmp0(method, "GET") != 0 && g_strcmp0(method, "HEAD") != 0) {
        soup_message_headers_replace(h, "Allow", "GET, HEAD");
        dv_web_refuse(msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
                      "the web console's files take GET and HEAD; the API is under /api/v1");
        return;
    }
    if (web == NULL) {
        dv_web_refuse(msg, SOUP_STATUS_NOT_FOUND,
                      "not found; the web console is not installed and the API is under /api/v1");
        return;
    }
    seg = dv_web_segments(path);
    type = seg != NULL ? dv_web_type(g_ptr_array_index(seg, seg->len - 1)) : NULL;
    if (type == NULL) {
        dv_web_refuse(msg, SOUP_STATUS_NOT_FOUND, "not found; the API is under /api/v1");
        return;
    }
    fd = dv_web_open(web, seg);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > DV_WEB_MAX_FILE) {
        if (fd >= 0)
            close(fd);
        dv_web_refuse(msg, SOUP_STATUS_NOT_FOUND, "not found; the API is under /api/v1");
        return;
    }
    /* Size and modification time: a file replaced by an install or a
     * rebuild gets another tag. */
    etag = g_strdup_printf("\"%" G_GINT64_FORMAT "-%" G_GINT64_FORMAT "-%ld\"", (gint64)st.st_size,
                           (gint64)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
    dv_web_headers(h);
    soup_message_headers_replace(h, "ETag", etag);
    /* Revalidated each time: the tag makes that one short answer. */
    soup_message_headers_replace(h, "Cache-Control", "no-cache");
    if (dv_web_etag_matches(soup_server_message_get_request_headers(msg), etag)) {
        close(fd);
        soup_server_message_set_status(msg, SOUP_STATUS_NOT_MODIFIED, NULL);
        return;
    }
    data = g_malloc(st.st_size + 1);
    while (got < (gsize)st.st_size) {
        ssize_t n = read(fd, data + got, st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += n;
    }
    close(fd);
    if (got != (gsize)st.st_size) {
        g_warning("web: short read of %s under %s", path, web->root);
        dv_web_refuse(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "the file could not be read");
        return;
    }
    soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
    soup_server_message_set_response(msg, type, SOUP_MEMORY_TAKE, g_steal_pointer(&data), got);
}
