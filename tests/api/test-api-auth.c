/* Sessions and logins end to end (issue 10, item 6): a real droverd, its
 * SQLite database changed by hand with sqlite3 as an operator or another
 * server would, clients on two loopback addresses. */
#define G_LOG_DOMAIN "DvTestApiAuth"

#include "dv-test-util.h"

#include <string.h>

typedef struct {
    DvTestDaemon *d;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    f->d = dv_test_daemon_start(NULL, NULL);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    g_clear_pointer(&f->d, dv_test_daemon_free);
}

static gboolean
accept_any_cert(SoupMessage *msg, GTlsCertificate *cert, GTlsCertificateFlags errors, gpointer data)
{
    return TRUE;
}

/* A client bound to @local (e.g. "127.0.0.2"): another source address on
 * the same machine. */
static SoupSession *
session_from(const char *local)
{
    g_autoptr(GInetAddress) addr = g_inet_address_new_from_string(local);
    g_autoptr(GSocketAddress) sa = g_inet_socket_address_new(addr, 0);
    return soup_session_new_with_options("timeout", 60, "local-address", sa, NULL);
}

/* One request; returns the status, the body in @ret_body (may be NULL)
 * and Retry-After in @ret_retry (0 when absent). */
static guint
send_req(Fixture *f, SoupSession *session, const char *method, const char *path, const char *token,
         const char *body, JsonNode **ret_body, guint *ret_retry)
{
    g_autofree char *url = g_strconcat(f->d->url, path, NULL);
    g_autoptr(SoupMessage) msg = soup_message_new(method, url);
    g_autoptr(GBytes) out = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();
    const char *retry;
    gsize len = 0;
    const char *text;

    g_signal_connect(msg, "accept-certificate", G_CALLBACK(accept_any_cert), NULL);
    if (token != NULL) {
        g_autofree char *h = g_strdup_printf("Bearer %s", token);
        soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization", h);
    }
    if (body != NULL) {
        g_autoptr(GBytes) b = g_bytes_new(body, strlen(body));
        soup_message_set_request_body_from_bytes(msg, "application/json", b);
    }
    out = soup_session_send_and_read(session != NULL ? session : f->d->session, msg, NULL, &error);
    g_assert_no_error(error);
    retry = soup_message_headers_get_one(soup_message_get_response_headers(msg), "Retry-After");
    if (ret_retry != NULL)
        *ret_retry = retry != NULL ? (guint)g_ascii_strtoull(retry, NULL, 10) : 0;
    text = g_bytes_get_data(out, &len);
    if (ret_body != NULL)
        *ret_body = len > 0 && json_parser_load_from_data(parser, text, (gssize)len, NULL)
                        ? json_node_copy(json_parser_get_root(parser))
                        : NULL;
    return soup_message_get_status(msg);
}

static char *
login(Fixture *f, SoupSession *session, const char *password)
{
    g_autofree char *body = g_strdup_printf("{\"user\":\"admin\",\"password\":\"%s\"}", password);
    g_autoptr(JsonNode) resp = NULL;
    guint status = send_req(f, session, "POST", "/api/v1/session", NULL, body, &resp, NULL);
    g_assert_cmpuint(status, ==, 201);
    return g_strdup(json_object_get_string_member(json_node_get_object(resp), "token"));
}

static guint
get_hosts(Fixture *f, const char *token)
{
    return send_req(f, NULL, "GET", "/api/v1/hosts", token, NULL, NULL, NULL);
}

static void
sqlite(Fixture *f, const char *sql)
{
    g_autofree char *db = g_build_filename(f->d->state_dir, "drover.db", NULL);
    const char *const argv[] = { "sqlite3", "-cmd", ".timeout 5000", db, sql, NULL };
    g_assert_cmpint(dv_test_spawn(argv, NULL, NULL, NULL), ==, 0);
}

/* Waits for at most @limit_ms until @token is refused; returns how long. */
static gint64
ms_until_refused(Fixture *f, const char *token, gint64 limit_ms)
{
    gint64 start = g_get_monotonic_time();
    while (get_hosts(f, token) != 401) {
        g_assert_cmpint(g_get_monotonic_time() - start, <, limit_ms * 1000);
        g_usleep(50 * 1000);
    }
    return (g_get_monotonic_time() - start) / 1000;
}

static void
test_revoked_in_db(Fixture *f, gconstpointer data)
{
    g_autofree char *t1 = login(f, NULL, f->d->password);
    g_autofree char *t2 = login(f, NULL, f->d->password);
    gint64 ms;

    /* Both cached on the server. */
    g_assert_cmpuint(get_hosts(f, t1), ==, 200);
    g_assert_cmpuint(get_hosts(f, t2), ==, 200);

    /* Logout of one token leaves the others alone. */
    g_assert_cmpuint(send_req(f, NULL, "DELETE", "/api/v1/session", t1, NULL, NULL, NULL), ==, 200);
    g_assert_cmpuint(get_hosts(f, t1), ==, 401);
    g_assert_cmpuint(get_hosts(f, t2), ==, 200);
    g_assert_cmpuint(get_hosts(f, f->d->token), ==, 200);

    /* Expired by hand: refused within about a second (today: 12 h). */
    sqlite(f, "UPDATE sessions SET expires_at = 1");
    ms = ms_until_refused(f, t2, 3000);
    g_test_message("expired session refused after %" G_GINT64_FORMAT " ms", ms);
    g_assert_cmpint(ms, <=, 1500);
    /* Each token's cache entry ages on its own: the fixture's token was
     * last checked a little later than t2, so it may take a moment more. */
    ms = ms_until_refused(f, f->d->token, 1500);
    g_assert_cmpint(ms, <=, 1500);

    /* Deleted by hand (a logout through another server is the same row). */
    g_free(t2);
    t2 = login(f, NULL, f->d->password);
    g_assert_cmpuint(get_hosts(f, t2), ==, 200);
    sqlite(f, "DELETE FROM sessions");
    ms = ms_until_refused(f, t2, 3000);
    g_test_message("deleted session refused after %" G_GINT64_FORMAT " ms", ms);
    g_assert_cmpint(ms, <=, 1500);
}

static void
test_login_delay(Fixture *f, gconstpointer data)
{
    g_autoptr(SoupSession) other = session_from("127.0.0.2");
    g_autofree char *err_path = g_build_filename(f->d->state_dir, "droverd.err", NULL);
    g_autofree char *log = NULL;
    const char *wrong = "{\"user\":\"admin\",\"password\":\"wrong-password-xyz\"}";
    guint n401 = 0;
    guint n429 = 0;
    guint retry = 0;
    gint64 start = g_get_monotonic_time();

    /* An attacker's burst of 200: only the first few are even checked. */
    for (guint i = 0; i < 200; i++) {
        guint r = 0;
        guint status = send_req(f, NULL, "POST", "/api/v1/session", NULL, wrong, NULL, &r);
        if (status == 401) {
            n401++;
        } else {
            g_assert_cmpuint(status, ==, 429);
            g_assert_cmpuint(r, >=, 1);
            retry = r;
            n429++;
        }
    }
    g_test_message("200 wrong passwords in %" G_GINT64_FORMAT " ms: %u checked, %u refused "
                   "(Retry-After %u s)",
                   (g_get_monotonic_time() - start) / 1000, n401, n429, retry);
    /* Five free failures, the sixth checked and locking 1 s, then 2 s, 4 s...:
     * a burst that lasts longer (a slow machine, a sanitizer build) may
     * see one more check per lock that ran out meanwhile. */
    {
        double elapsed_s = (g_get_monotonic_time() - start) / (double)G_USEC_PER_SEC;
        guint extra = 0;
        for (double locked = 1; locked <= elapsed_s; locked = locked * 2 + 1)
            extra++;
        g_assert_cmpuint(n401, <=, 6 + extra);
        g_assert_cmpuint(n429, >=, 194 - extra);
    }
    /* Even the right password is refused from that address for now... */
    {
        g_autofree char *body = g_strdup_printf("{\"user\":\"admin\",\"password\":\"%s\"}",
                                                f->d->password);
        guint r = 0;
        g_assert_cmpuint(send_req(f, NULL, "POST", "/api/v1/session", NULL, body, NULL, &r), ==, 429);
        g_assert_cmpuint(r, >=, 1);
    }
    /* ...but not from another address, and the server answers the rest. */
    {
        g_autofree char *token = login(f, other, f->d->password);
        g_assert_nonnull(token);
    }
    g_assert_cmpuint(get_hosts(f, f->d->token), ==, 200);

    /* Each failure is logged once, with user and address, never the
     * password. */
    g_assert_true(g_file_get_contents(err_path, &log, NULL, NULL));
    g_assert_nonnull(strstr(log, "failed login for user 'admin' from 127.0.0.1"));
    g_assert_null(strstr(log, "wrong-password-xyz"));
}

static void
test_password_change(Fixture *f, gconstpointer data)
{
    g_autofree char *pw_path = g_build_filename(f->d->state_dir, "initial-admin-password", NULL);
    g_autofree char *other = login(f, NULL, f->d->password);
    g_autofree char *good = g_strdup_printf(
        "{\"current_password\":\"%s\",\"new_password\":\"brand-new-password\"}", f->d->password);
    g_autofree char *same = g_strdup_printf(
        "{\"current_password\":\"%s\",\"new_password\":\"%s\"}", f->d->password, f->d->password);
    g_autofree char *too_long = NULL;
    static const struct {
        const char *body;
        guint status;
        const char *code;
        const char *field;
    } bad[] = {
        { "{\"current_password\":\"\",\"new_password\":\"brand-new-password\"}", 400,
          "invalid-argument", "current_password" },
        { "{\"new_password\":\"brand-new-password\"}", 400, "invalid-argument", "current_password" },
        { "{\"current_password\":\"x\",\"new_password\":\"\"}", 400, "invalid-argument", "new_password" },
        { "{\"current_password\":\"x\",\"new_password\":\"short\"}", 400, "invalid-argument",
          "new_password" },
        { "{\"current_password\":\"wrong-one\",\"new_password\":\"brand-new-password\"}", 403,
          "permission-denied", "current_password" },
    };

    g_assert_true(g_file_test(pw_path, G_FILE_TEST_EXISTS));
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(JsonNode) resp = NULL;
        guint status = send_req(f, NULL, "POST", "/api/v1/session/password", f->d->token,
                                bad[i].body, &resp, NULL);
        dv_test_assert_error(resp, status, bad[i].status, bad[i].code, bad[i].field);
    }
    {
        g_autoptr(GString) b = g_string_new("{\"current_password\":\"x\",\"new_password\":\"");
        for (guint i = 0; i < 1025; i++)
            g_string_append_c(b, 'y');
        g_string_append(b, "\"}");
        too_long = g_string_free(g_steal_pointer(&b), FALSE);
    }
    {
        g_autoptr(JsonNode) resp = NULL;
        guint status = send_req(f, NULL, "POST", "/api/v1/session/password", f->d->token,
                                too_long, &resp, NULL);
        dv_test_assert_error(resp, status, 400, "invalid-argument", "new_password");
        g_clear_pointer(&resp, json_node_unref);
        status = send_req(f, NULL, "POST", "/api/v1/session/password", f->d->token, same, &resp,
                          NULL);
        dv_test_assert_error(resp, status, 400, "invalid-argument", "new_password");
    }
    /* Nothing changed. */
    g_assert_true(g_file_test(pw_path, G_FILE_TEST_EXISTS));
    g_assert_cmpuint(get_hosts(f, other), ==, 200);

    g_assert_cmpuint(send_req(f, NULL, "POST", "/api/v1/session/password", f->d->token, good, NULL,
                              NULL), ==, 200);
    g_assert_false(g_file_test(pw_path, G_FILE_TEST_EXISTS));
    g_assert_cmpuint(get_hosts(f, f->d->token), ==, 200);
    g_assert_cmpuint(get_hosts(f, other), ==, 401);
    {
        g_autofree char *body = g_strdup_printf("{\"user\":\"admin\",\"password\":\"%s\"}",
                                                f->d->password);
        g_autoptr(JsonNode) resp = NULL;
        guint status = send_req(f, NULL, "POST", "/api/v1/session", NULL, body, &resp, NULL);
        dv_test_assert_error(resp, status, 401, "auth-required", NULL);
    }
    {
        g_autofree char *token = login(f, NULL, "brand-new-password");
        g_assert_cmpuint(get_hosts(f, token), ==, 200);
    }
    /* A restart does not bring the file back. */
    dv_test_daemon_stop(f->d, FALSE);
    g_assert_true(dv_test_daemon_restart(f->d));
    g_assert_false(g_file_test(pw_path, G_FILE_TEST_EXISTS));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("/drover/api/auth/revoked-in-db", test_revoked_in_db);
    ADD("/drover/api/auth/login-delay", test_login_delay);
    ADD("/drover/api/auth/password-change", test_password_change);
    return g_test_run();
}
