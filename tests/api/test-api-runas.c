#define G_LOG_DOMAIN "DvTestApiRunAs"

/* Issue 11's grant rule through a real droverd (docs/ACCESS.md, "Run As
 * accounts"): a guest OS profile naming a Run As account for its domain
 * join needs run_as.use on it (403 when the account is visible, 404 when
 * not, nothing made, the refusal audited as forbidden); the account is
 * shown by id and name and cannot be deleted while named; a catalog with
 * that profile is grown and retried only by callers holding run_as.use;
 * a binding giving catalog.provision over it is refused until the grantee
 * holds run_as.use ("a template granted without its Run As account").
 * On SQLite and PostgreSQL (tests/services/with-services). */

#include "dv-test-pg.h"
#include "dv-test-util.h"

#include <string.h>

#define PW "run-as-access-password-1"

typedef struct {
    DvTestDaemon *d;
    char *pg_db;
    char *hostdir;
} Fixture;

/* One request with @token; the status in @ret_status. */
static JsonNode *
req(Fixture *f, const char *token, const char *method, const char *path, const char *body,
    guint *ret_status)
{
    g_autofree char *url = g_strconcat(f->d->url, path, NULL);
    g_autoptr(SoupMessage) msg = soup_message_new(method, url);
    g_autoptr(GBytes) out = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autofree char *h = g_strdup_printf("Bearer %s", token);
    gsize len = 0;
    const char *text;

    g_assert_nonnull(msg);
    soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization", h);
    if (body != NULL) {
        g_autoptr(GBytes) b = g_bytes_new(body, strlen(body));
        soup_message_set_request_body_from_bytes(msg, "application/json", b);
    }
    out = soup_session_send_and_read(f->d->session, msg, NULL, &error);
    g_assert_no_error(error);
    *ret_status = soup_message_get_status(msg);
    text = g_bytes_get_data(out, &len);
    if (len == 0 || !json_parser_load_from_data(parser, text, (gssize)len, NULL))
        return NULL;
    return json_node_copy(json_parser_get_root(parser));
}

static JsonObject *
req_ok(Fixture *f, const char *token, const char *method, const char *path, const char *body,
       guint want)
{
    guint status = 0;
    g_autoptr(JsonNode) n = req(f, token, method, path, body, &status);
    if (status != want) {
        g_autofree char *t = n != NULL ? json_to_string(n, FALSE) : g_strdup("(no body)");
        g_error("%s %s: expected %u, got %u: %s", method, path, want, status, t);
    }
    return json_object_ref(json_node_get_object(n));
}

/* Asserts a refusal: status, code, field and, when not NULL, words in the
 * message. */
static void
refused(Fixture *f, const char *token, const char *method, const char *path, const char *body,
        guint want, const char *code, const char *field, const char *words)
{
    guint status = 0;
    g_autoptr(JsonNode) n = req(f, token, method, path, body, &status);
    JsonObject *e;

    dv_test_assert_error(n, status, want, code, field);
    e = json_object_get_object_member(json_node_get_object(n), "error");
    if (words != NULL &&
        strstr(json_object_get_string_member_with_default(e, "message", ""), words) == NULL)
        g_error("%s %s: '%s' lacks '%s'", method, path,
                json_object_get_string_member_with_default(e, "message", ""), words);
}

static void
bind(Fixture *f, const char *user, const char *role, const char *scope_kind, const char *ref)
{
    g_autofree char *body =
        scope_kind != NULL
            ? g_strdup_printf("{\"user\":\"%s\",\"role\":\"%s\",\"scope\":{\"kind\":\"%s\","
                              "\"ref\":\"%s\"}}",
                              user, role, scope_kind, ref)
            : g_strdup_printf("{\"user\":\"%s\",\"role\":\"%s\"}", user, role);
    g_autoptr(JsonObject) b = req_ok(f, f->d->token, "POST", "/api/v1/bindings", body, 201);
}

/* The number of @user's bindings. */
static gint64
n_bindings(Fixture *f, const char *user)
{
    g_autofree char *path = g_strdup_printf("/api/v1/bindings?user=%s", user);
    return dv_test_count(f->d, path);
}

/* A user made through the API. */
static void
make_user(Fixture *f, const char *name)
{
    g_autofree char *ubody = g_strdup_printf("{\"name\":\"%s\",\"password\":\"%s\"}", name, PW);
    g_autoptr(JsonObject) u = req_ok(f, f->d->token, "POST", "/api/v1/users", ubody, 201);
}

/* Logs @name in: its session token (owned). */

static char *
login(Fixture *f, const char *name)
{
    g_autofree char *body = g_strdup_printf("{\"user\":\"%s\",\"password\":\"%s\"}", name, PW);
    guint status = 0;
    g_autoptr(JsonNode) n = NULL;
    g_autofree char *url = g_strconcat(f->d->url, "/api/v1/session", NULL);
    g_autoptr(SoupMessage) msg = soup_message_new("POST", url);
    g_autoptr(GBytes) b = g_bytes_new(body, strlen(body));
    g_autoptr(GBytes) out = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();
    gsize len = 0;
    const char *text;

    soup_message_set_request_body_from_bytes(msg, "application/json", b);
    out = soup_session_send_and_read(f->d->session, msg, NULL, &error);
    g_assert_no_error(error);
    status = soup_message_get_status(msg);
    g_assert_cmpuint(status, ==, 201);
    text = g_bytes_get_data(out, &len);
    g_assert_true(json_parser_load_from_data(parser, text, (gssize)len, NULL));
    n = json_node_copy(json_parser_get_root(parser));
    return g_strdup(json_object_get_string_member(json_node_get_object(n), "token"));
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    if (g_strcmp0(data, "postgresql") == 0) {
        g_autofree char *uri = NULL;
        const char *extra[] = { "--database", NULL, NULL };
        if (g_getenv("DV_TEST_PG_URI") == NULL)
            g_error("DV_TEST_PG_URI is not set: run under tests/services/with-services");
        uri = dv_test_pg_new_database("dv_runas", &f->pg_db);
        extra[1] = uri;
        f->d = dv_test_daemon_start(NULL, extra);
    } else {
        f->d = dv_test_daemon_start(NULL, NULL);
    }
    f->hostdir = g_dir_make_tmp("dv-runas-XXXXXX", NULL);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    g_clear_pointer(&f->d, dv_test_daemon_free);
    dv_test_pg_drop_database(f->pg_db);
    g_free(f->pg_db);
    if (f->hostdir != NULL)
        dv_test_rm_rf(f->hostdir);
    g_free(f->hostdir);
}

static void
test_grant_rule(Fixture *f, gconstpointer data)
{
    static const char *const p1 =
        "{\"name\":\"p1\",\"domain\":\"corp.example\",\"domain_join_run_as\":\"joiner\"}";
    g_autofree char *gina = NULL;
    g_autofree char *nora = NULL;
    g_autofree char *sam = NULL;
    g_autofree char *tom = NULL;
    g_autofree char *xml = dv_test_write_host_xml(f->hostdir, "h1.xml", "m", 3);
    g_autofree char *host = g_strdup_printf("{\"name\":\"h1\",\"uri\":\"test://%s\"}", xml);
    g_autoptr(JsonObject) acct = NULL;
    g_autoptr(JsonObject) prof = NULL;
    g_autoptr(JsonObject) job = NULL;
    JsonObject *ref;
    gint64 profiles, machines, bindings;

    dv_test_run_job_ok(f->d, "POST", "/api/v1/run-as-accounts",
                       "{\"name\":\"joiner\",\"username\":\"CORP\\\\svc-join\","
                       "\"password\":\"Join-Secret-4711\"}");
    acct = req_ok(f, f->d->token, "GET", "/api/v1/run-as-accounts/joiner", NULL, 200);
    make_user(f, "gina");
    make_user(f, "nora");
    make_user(f, "sam");
    make_user(f, "tom");
    {
        g_autoptr(JsonObject) r1 =
            req_ok(f, f->d->token, "POST", "/api/v1/roles",
                   "{\"name\":\"profiler\",\"privileges\":[\"guest_os_profile.read\","
                   "\"guest_os_profile.create\",\"guest_os_profile.change\",\"run_as.read\"]}",
                   201);
        g_autoptr(JsonObject) r2 =
            req_ok(f, f->d->token, "POST", "/api/v1/roles",
                   "{\"name\":\"blind\",\"privileges\":[\"guest_os_profile.read\","
                   "\"guest_os_profile.create\"]}",
                   201);
        g_autoptr(JsonObject) r3 = req_ok(f, f->d->token, "POST", "/api/v1/roles",
                                          "{\"name\":\"account-user\",\"privileges\":"
                                          "[\"run_as.use\"]}",
                                          201);
    }
    bind(f, "gina", "profiler", NULL, NULL);
    bind(f, "nora", "blind", NULL, NULL);
    gina = login(f, "gina");
    nora = login(f, "nora");

    /* Naming the account without run_as.use: 403 visible, 404 not. */
    profiles = dv_test_count(f->d, "/api/v1/guest-os-profiles");
    refused(f, gina, "POST", "/api/v1/guest-os-profiles", p1, 403, "permission-denied",
            "domain_join_run_as", "run_as.use");
    refused(f, nora, "POST", "/api/v1/guest-os-profiles", p1, 404, "not-found",
            "domain_join_run_as", "Run As account 'joiner' not found");
    refused(f, f->d->token, "POST", "/api/v1/guest-os-profiles",
            "{\"name\":\"p1\",\"domain\":\"corp.example\",\"domain_join_run_as\":\"joiner\","
            "\"domain_join_password\":\"Other-Secret-1\"}",
            400, "invalid-argument", "domain_join_run_as", "not both");
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/guest-os-profiles"), ==, profiles);

    /* The administrator: made, shown by id and name, no secret. */
    dv_test_run_job_ok(f->d, "POST", "/api/v1/guest-os-profiles", p1);
    prof = req_ok(f, gina, "GET", "/api/v1/guest-os-profiles/p1", NULL, 200);
    ref = json_object_get_object_member(prof, "domain_join_run_as");
    g_assert_nonnull(ref);
    g_assert_cmpstr(json_object_get_string_member(ref, "id"), ==,
                    json_object_get_string_member(acct, "id"));
    g_assert_cmpstr(json_object_get_string_member(ref, "name"), ==, "joiner");
    g_assert_false(json_object_has_member(prof, "domain_join_run_as_id"));
    refused(f, f->d->token, "DELETE", "/api/v1/run-as-accounts/joiner", NULL, 409, "conflict", NULL,
            "'p1'");

    /* A catalog with the profile (its job fails at the identity upload on
     * test://, after the profile and the account were opened). */
    dv_test_run_job_ok(f->d, "POST", "/api/v1/hosts", host);
    dv_test_run_job_ok(f->d, "POST", "/api/v1/vms/m0/stop", NULL);
    dv_test_run_job_ok(f->d, "POST", "/api/v1/vms/m0/snapshots", "{\"name\":\"s1\"}");
    job =
        dv_test_run_job(f->d, "POST", "/api/v1/catalogs",
                        "{\"name\":\"cat1\",\"master_vm\":\"m0\",\"master_snapshot\":\"s1\","
                        "\"hosts\":[\"h1\"],\"pool\":\"pool1\",\"naming_scheme\":\"desk-##\","
                        "\"count\":1,\"guest_os_profile\":\"p1\",\"machine\":{\"memory_mib\":64}}");
    dv_test_assert_job_state(job, "failed");
    g_assert_null(strstr(json_object_get_string_member_with_default(
                             json_object_get_object_member(job, "error"), "message", ""),
                         "Run As"));

    /* Granting it: refused until the grantee holds run_as.use. */
    bindings = n_bindings(f, "sam");
    refused(f, f->d->token, "POST", "/api/v1/bindings",
            "{\"user\":\"sam\",\"role\":\"self-service-user\",\"scope\":{\"kind\":\"catalog\","
            "\"ref\":\"cat1\"}}",
            403, "permission-denied", "user", "run_as.use");
    g_assert_cmpint(n_bindings(f, "sam"), ==, bindings);
    bind(f, "sam", "account-user", "run_as", "joiner");
    bind(f, "sam", "self-service-user", "catalog", "cat1");
    g_assert_cmpint(n_bindings(f, "sam"), ==, bindings + 2);

    /* Using it: tom holds catalog.provision everywhere (a global binding,
     * checked on use) but no run_as.use: refused before anything is made;
     * sam adds a machine. */
    bind(f, "tom", "self-service-user", NULL, NULL);
    tom = login(f, "tom");
    sam = login(f, "sam");
    machines = dv_test_count(f->d, "/api/v1/catalogs/cat1/machines");
    refused(f, tom, "POST", "/api/v1/catalogs/cat1/machines", "{\"count\":1}", 404, "not-found",
            "guest_os_profile", NULL);
    refused(f, tom, "POST", "/api/v1/catalogs/cat1/provision", NULL, 404, "not-found",
            "guest_os_profile", NULL);
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/catalogs/cat1/machines"), ==, machines);
    {
        g_autoptr(JsonObject) accepted =
            req_ok(f, sam, "POST", "/api/v1/catalogs/cat1/machines", "{\"count\":1}", 202);
        g_autoptr(JsonObject) done = dv_test_wait_job(
            f->d,
            json_object_get_string_member(json_object_get_object_member(accepted, "job"), "id"),
            60);
        g_assert_nonnull(done);
    }
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/catalogs/cat1/machines"), ==, machines + 1);
}

int
main(int argc, char **argv)
{
    static const char *const backends[] = { "sqlite", "postgresql" };

    g_test_init(&argc, &argv, NULL);
    for (gsize b = 0; b < G_N_ELEMENTS(backends); b++) {
        g_autofree char *path = g_strdup_printf("/drover/api/runas/%s/grant-rule", backends[b]);
        g_test_add(path, Fixture, backends[b], fixture_setup, test_grant_rule, fixture_teardown);
    }
    return g_test_run();
}
