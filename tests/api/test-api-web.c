/* The web console's static files served by a real droverd (dv-web.h):
 * index.html at "/", types, the security headers, ETag and 304, and
 * paths that must not reach a file: traversal (plain, percent-encoded,
 * backslash, NUL), dotfiles, symbolic links out of the tree and inside
 * it, directories, unknown types, other methods.  Requests are written
 * by hand on a socket so that no client normalises the path first. */
#define G_LOG_DOMAIN "DvTestApiWeb"

#include "dv-test-util.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    guint status;
    char *head; /* the status line and headers */
    char *body;
} Reply;

static void
reply_clear(Reply *r)
{
    g_free(r->head);
    g_free(r->body);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Reply, reply_clear)

/* The value of header @name in @r (case-insensitive), owned, or NULL. */
static char *
reply_header(const Reply *r, const char *name)
{
    g_auto(GStrv) lines = g_strsplit(r->head, "\r\n", -1);
    for (guint i = 1; lines[i] != NULL; i++) {
        const char *colon = strchr(lines[i], ':');
        if (colon != NULL && (gsize)(colon - lines[i]) == strlen(name) &&
            g_ascii_strncasecmp(lines[i], name, strlen(name)) == 0)
            return g_strstrip(g_strdup(colon + 1));
    }
    return NULL;
}

static void
raw(DvTestDaemon *d, const char *method, const char *path, const char *extra, Reply *r)
{
    g_autoptr(GSocketClient) client = g_socket_client_new();
    g_autoptr(GUri) uri = g_uri_parse(d->url, G_URI_FLAGS_NONE, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GSocketConnection) conn = NULL;
    g_autoptr(GString) got = g_string_new(NULL);
    g_autofree char *req = NULL;
    char buf[65536];
    gssize n;
    const char *sep;

    conn = g_socket_client_connect_to_host(client, "127.0.0.1", g_uri_get_port(uri), NULL, &error);
    g_assert_no_error(error);
    req = g_strdup_printf("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n",
                          method, path, extra != NULL ? extra : "");
    g_output_stream_write_all(g_io_stream_get_output_stream(G_IO_STREAM(conn)), req, strlen(req),
                              NULL, NULL, &error);
    g_assert_no_error(error);
    while ((n = g_input_stream_read(g_io_stream_get_input_stream(G_IO_STREAM(conn)), buf,
                                    sizeof(buf), NULL, &error)) > 0)
        g_string_append_len(got, buf, n);
    g_assert_no_error(error);
    sep = strstr(got->str, "\r\n\r\n");
    g_assert_nonnull(sep);
    r->head = g_strndup(got->str, sep - got->str);
    r->body = g_strdup(sep + 4);
    g_assert_true(g_str_has_prefix(r->head, "HTTP/1.1 "));
    r->status = (guint)g_ascii_strtoull(r->head + 9, NULL, 10);
}

static void
assert_security_headers(const Reply *r)
{
    g_autofree char *csp = reply_header(r, "Content-Security-Policy");
    g_autofree char *nosniff = reply_header(r, "X-Content-Type-Options");
    g_assert_nonnull(csp);
    g_assert_true(g_str_has_prefix(csp, "default-src 'self'"));
    g_assert_nonnull(strstr(csp, "frame-ancestors 'none'"));
    g_assert_null(strstr(csp, "unsafe"));
    g_assert_cmpstr(nosniff, ==, "nosniff");
}

typedef struct {
    char *dir; /* the temp dir: root/ is served, outside.txt is not */
    char *root;
    DvTestDaemon *d;
} Fixture;

static void
write_file(const char *path, const char *text)
{
    g_autoptr(GError) error = NULL;
    g_file_set_contents(path, text, -1, &error);
    g_assert_no_error(error);
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *app = NULL;
    g_autofree char *p = NULL;
    const char *args[3] = { "--web-root", NULL, NULL };

    f->dir = g_dir_make_tmp("dv-web-XXXXXX", &error);
    g_assert_no_error(error);
    f->root = g_build_filename(f->dir, "root", NULL);
    app = g_build_filename(f->root, "app", NULL);
    g_assert_cmpint(g_mkdir_with_parents(app, 0755), ==, 0);
    p = g_build_filename(f->root, "index.html", NULL);
    write_file(p, "<!doctype html><title>index</title>");
    g_free(p);
    p = g_build_filename(app, "main.js", NULL);
    write_file(p, "export const x = 1;\n");
    g_free(p);
    p = g_build_filename(f->root, "style.css", NULL);
    write_file(p, "body{}\n");
    g_free(p);
    p = g_build_filename(f->root, ".hidden.js", NULL);
    write_file(p, "secret");
    g_free(p);
    p = g_build_filename(f->root, "notes.conf", NULL);
    write_file(p, "unknown type");
    g_free(p);
    p = g_build_filename(f->dir, "outside.js", NULL);
    write_file(p, "OUTSIDE");
    g_free(p);
    /* A link to a file out of the tree, one to a file in it, and a
     * directory link out of it. */
    p = g_build_filename(f->root, "out.js", NULL);
    g_assert_cmpint(symlink("../outside.js", p), ==, 0);
    g_free(p);
    p = g_build_filename(f->root, "in.js", NULL);
    g_assert_cmpint(symlink("app/main.js", p), ==, 0);
    g_free(p);
    p = g_build_filename(f->root, "up", NULL);
    g_assert_cmpint(symlink("..", p), ==, 0);
    args[1] = f->root;
    f->d = dv_test_daemon_start(NULL, args);
    g_assert_nonnull(f->d);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
    dv_test_daemon_free(f->d);
    dv_test_rm_rf(f->dir);
    g_free(f->root);
    g_free(f->dir);
}

static void
test_serve(Fixture *f, gconstpointer data)
{
    struct {
        const char *path;
        const char *type;
        const char *body;
    } ok[] = {
        { "/", "text/html; charset=utf-8", "<!doctype html><title>index</title>" },
        { "/index.html", "text/html; charset=utf-8", "<!doctype html><title>index</title>" },
        { "/app/main.js", "text/javascript; charset=utf-8", "export const x = 1;\n" },
        { "/app/./main.js", "text/javascript; charset=utf-8", "export const x = 1;\n" },
        { "/style.css?v=2", "text/css; charset=utf-8", "body{}\n" },
        { "/app/%6Dain.js", "text/javascript; charset=utf-8", "export const x = 1;\n" },
    };
    for (gsize i = 0; i < G_N_ELEMENTS(ok); i++) {
        g_auto(Reply) r = { 0 };
        g_autofree char *type = NULL;
        g_autofree char *etag = NULL;
        g_autofree char *cache = NULL;
        raw(f->d, "GET", ok[i].path, NULL, &r);
        g_test_message("GET %s -> %u", ok[i].path, r.status);
        g_assert_cmpuint(r.status, ==, 200);
        type = reply_header(&r, "Content-Type");
        g_assert_cmpstr(type, ==, ok[i].type);
        g_assert_cmpstr(r.body, ==, ok[i].body);
        assert_security_headers(&r);
        etag = reply_header(&r, "ETag");
        cache = reply_header(&r, "Cache-Control");
        g_assert_nonnull(etag);
        g_assert_cmpstr(cache, ==, "no-cache");
        /* The same tag again: 304, no body, the headers still there. */
        {
            g_auto(Reply) r2 = { 0 };
            g_autofree char *inm = g_strdup_printf("If-None-Match: %s\r\n", etag);
            raw(f->d, "GET", ok[i].path, inm, &r2);
            g_assert_cmpuint(r2.status, ==, 304);
            g_assert_cmpstr(r2.body, ==, "");
            assert_security_headers(&r2);
        }
    }
    {
        g_auto(Reply) r = { 0 };
        raw(f->d, "HEAD", "/", NULL, &r);
        g_assert_cmpuint(r.status, ==, 200);
        g_assert_cmpstr(r.body, ==, "");
    }
    /* The API is still the API. */
    {
        g_auto(Reply) r = { 0 };
        raw(f->d, "GET", "/api/v1/version", NULL, &r);
        g_assert_cmpuint(r.status, ==, 200);
        g_assert_nonnull(strstr(r.body, "\"api\""));
    }
}

static void
test_refuse(Fixture *f, gconstpointer data)
{
    const char *bad[] = {
        "/../outside.js",
        "/app/../../outside.js",
        "/%2e%2e/outside.js",
        "/%2E%2E%2Foutside.js",
        "/app/%2e%2e%2f%2e%2e%2foutside.js",
        "/..%5coutside.js",
        "/app%5cmain.js",
        "/app/main.js%00.css",
        "/.hidden.js",
        "/%2ehidden.js",
        "/out.js",        /* a link out of the tree */
        "/in.js",         /* a link inside it: links are not followed at all */
        "/up/outside.js", /* a directory link */
        "/up/root/index.html",
        "/app", /* a directory */
        "/app/",
        "/notes.conf", /* a type not served */
        "/nothing.js",
        "/vms/123", /* the app's routes are in the URL's fragment */
        "//etc/passwd",
        "/api",
        "/%ff.js",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_auto(Reply) r = { 0 };
        raw(f->d, "GET", bad[i], NULL, &r);
        g_test_message("GET %s -> %u", bad[i], r.status);
        if (r.status != 404 && r.status != 400)
            g_error("GET %s: %u, expected 404 (or 400 from libsoup): %s", bad[i], r.status, r.body);
        g_assert_null(strstr(r.body, "OUTSIDE"));
        g_assert_null(strstr(r.body, "secret"));
        g_assert_null(strstr(r.body, "export const"));
        g_assert_null(strstr(r.body, "root:"));
    }
    {
        g_auto(Reply) r = { 0 };
        g_autofree char *allow = NULL;
        raw(f->d, "POST", "/index.html", "Content-Length: 0\r\n", &r);
        g_assert_cmpuint(r.status, ==, 405);
        allow = reply_header(&r, "Allow");
        g_assert_cmpstr(allow, ==, "GET, HEAD");
        assert_security_headers(&r);
    }
}

/* --web-root none: no console, "/" is a 404 that says so; the default
 * (no option, run from the build tree) is the build's web/. */
static void
test_roots(void)
{
    const char *none[] = { "--web-root", "none", NULL };
    g_autoptr(DvTestDaemon) d = dv_test_daemon_start(NULL, none);
    g_autoptr(DvTestDaemon) d2 = dv_test_daemon_start(NULL, NULL);
    g_auto(Reply) r = { 0 };
    g_auto(Reply) r2 = { 0 };

    raw(d, "GET", "/", NULL, &r);
    g_assert_cmpuint(r.status, ==, 404);
    g_assert_nonnull(strstr(r.body, "not installed"));
    raw(d2, "GET", "/", NULL, &r2);
    g_assert_cmpuint(r2.status, ==, 200);
    g_assert_nonnull(strstr(r2.body, "app/main.js"));
    assert_security_headers(&r2);
    {
        g_auto(Reply) r3 = { 0 };
        g_autofree char *type = NULL;
        raw(d2, "GET", "/vendor/preact.mjs", NULL, &r3);
        g_assert_cmpuint(r3.status, ==, 200);
        type = reply_header(&r3, "Content-Type");
        g_assert_cmpstr(type, ==, "text/javascript; charset=utf-8");
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/drover/api/web/serve", Fixture, NULL, fixture_set_up, test_serve,
               fixture_tear_down);
    g_test_add("/drover/api/web/refuse", Fixture, NULL, fixture_set_up, test_refuse,
               fixture_tear_down);
    g_test_add_func("/drover/api/web/roots", test_roots);
    return g_test_run();
}
