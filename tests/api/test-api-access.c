/* Access control end to end (issue 11, docs/ACCESS.md): a real droverd on
 * SQLite, users made through the API, each built-in role logged in.
 *
 * /drover/api/access/matrix: the authorization matrix, generated from the
 * operation table (droverd --dump-ops): every operation x {the global
 * administrator, an administrator, a read-only administrator and a
 * self-service user, each bound to host group "In"} x {an object in "In",
 * the same kind of object in "Out"}.  Every operation needs a row of
 * dv_matrix_rows (tools/check-ops checks it too); a row gives the paths,
 * a body that the op refuses as bad input once authorized (so an allowed
 * change changes nothing) and the expected answer per role:
 *   A allowed by the authorizer (anything but 401/403/404 from it),
 *   3 refused, 403 naming the privilege, 4 refused as absent, 404,
 *   N 404 from the handler: authorized, and the object (no catalog, no
 *     upgrade report in a fresh database) does not exist,
 *   S not sent (tested apart).
 * An allowed request carries "?matrix=1" or {"matrix":1}, which every op
 * rejects with 400 after the authorizer let it through. */
#define G_LOG_DOMAIN "DvTestApiAccess"

#include "dv-json.h"
#include "dv-test-pg.h"
#include "dv-test-util.h"

#include <string.h>

#define PW "matrix-password-1"

typedef struct {
    const char *name;
    const char *in_path;
    const char *out_path;
    const char *in_body;
    const char *out_body;
    const char *in_expect; /* per principal: global admin, admin, read-only, self-service */
    const char *out_expect;
} DvMatrixRow;

/* Generated once from the table with the model's rules (docs/ACCESS.md)
 * and reviewed by hand; a new operation fails the test until it has a row. */
static const DvMatrixRow dv_matrix_rows[] = {
    { "host_group.list", "/host-groups", "/host-groups", NULL, NULL, "AAA3", "AAA3" },
    { "host_group.create", "/host-groups", "/host-groups", "{\"parent\":\"In\",\"matrix\":1}",
      "{\"parent\":\"Out\",\"matrix\":1}", "AA34", "A444" },
    { "host_group.get", "/host-groups/In", "/host-groups/Out", NULL, NULL, "AAA4", "A444" },
    { "host_group.change", "/host-groups/In", "/host-groups/Out", "{\"matrix\":1}",
      "{\"matrix\":1}", "AA34", "A444" },
    { "host_group.delete", "/host-groups/In", "/host-groups/Out", "{\"matrix\":1}",
      "{\"matrix\":1}", "AA34", "A444" },
    { "cluster.list", "/clusters", "/clusters", NULL, NULL, "AAA3", "AAA3" },
    { "cluster.create", "/clusters", "/clusters", "{\"host_group\":\"In\",\"matrix\":1}",
      "{\"host_group\":\"Out\",\"matrix\":1}", "AA34", "A444" },
    { "cluster.get", "/clusters/cin", "/clusters/cout", NULL, NULL, "AAA4", "A444" },
    { "cluster.change", "/clusters/cin", "/clusters/cout", "{\"matrix\":1}", "{\"matrix\":1}",
      "AA34", "A444" },
    { "cluster.delete", "/clusters/cin", "/clusters/cout", "{\"matrix\":1}", "{\"matrix\":1}",
      "AA34", "A444" },
    { "host.list", "/hosts", "/hosts", NULL, NULL, "AAA3", "AAA3" },
    { "host.create", "/hosts", "/hosts", "{\"host_group\":\"In\",\"matrix\":1}",
      "{\"host_group\":\"Out\",\"matrix\":1}", "AA34", "A444" },
    { "host.get", "/hosts/hin", "/hosts/hout", NULL, NULL, "AAA4", "A444" },
    { "host.change", "/hosts/hin", "/hosts/hout", "{\"matrix\":1}", "{\"matrix\":1}", "AA34",
      "A444" },
    { "host.delete", "/hosts/hin", "/hosts/hout", "{\"matrix\":1}", "{\"matrix\":1}", "AA34",
      "A444" },
    { "pool.list", "/storage-pools", "/storage-pools", NULL, NULL, "AAA3", "AAA3" },
    { "pool.get", "/storage-pools/{pool_in}", "/storage-pools/{pool_out}", NULL, NULL, "AAA4",
      "A444" },
    { "volume.list", "/volumes", "/volumes", NULL, NULL, "AAA3", "AAA3" },
    { "volume.get", "/volumes/{volume_in}", "/volumes/{volume_out}", NULL, NULL, "AAA4", "A444" },
    { "network.list", "/networks", "/networks", NULL, NULL, "AAAA", "AAAA" },
    { "network.get", "/networks/{network_in}", "/networks/{network_out}", NULL, NULL, "AAAA",
      "A444" },
    { "library_share.list", "/library-shares", "/library-shares", NULL, NULL, "AAA3", "AAA3" },
    { "library_share.create", "/library-shares", "/library-shares",
      "{\"host\":\"hin\",\"matrix\":1}", "{\"host\":\"hout\",\"matrix\":1}", "AA34", "A444" },
    { "library_share.get", "/library-shares/nothing", "/library-shares/nothing", NULL, NULL, "A444",
      "A444" },
    { "library_share.delete", "/library-shares/nothing", "/library-shares/nothing",
      "{\"matrix\":1}", "{\"matrix\":1}", "A444", "A444" },
    { "template.list", "/templates", "/templates", NULL, NULL, "AAAA", "AAAA" },
    { "template.create", "/templates", "/templates", "{\"matrix\":1}", "{\"matrix\":1}", "A444",
      "A444" },
    { "template.get", "/templates/nothing", "/templates/nothing", NULL, NULL, "A444", "A444" },
    { "template.delete", "/templates/nothing", "/templates/nothing", "{\"matrix\":1}",
      "{\"matrix\":1}", "A444", "A444" },
    { "vm.list", "/vms", "/vms", NULL, NULL, "AAAA", "AAAA" },
    { "vm.create", "/vms", "/vms", "{\"host\":\"hin\",\"matrix\":1}",
      "{\"host\":\"hout\",\"matrix\":1}", "AA3A", "A444" },
    { "vm.get", "/vms/vin0", "/vms/vout0", NULL, NULL, "AAA4", "A444" },
    { "vm.delete", "/vms/vin0", "/vms/vout0", "{\"matrix\":1}", "{\"matrix\":1}", "AA34", "A444" },
    { "job.list", "/jobs", "/jobs", NULL, NULL, "AAAA", "AAAA" },
    { "job.get", "/jobs/{job_in}", "/jobs/{job_out}", NULL, NULL, "AAA4", "A444" },
    { "run_as.list", "/run-as-accounts", "/run-as-accounts", NULL, NULL, "AAA3", "AAA3" },
    { "run_as.create", "/run-as-accounts", "/run-as-accounts", "{\"matrix\":1}", "{\"matrix\":1}",
      "A333", "A333" },
    { "run_as.get", "/run-as-accounts/nothing", "/run-as-accounts/nothing", NULL, NULL, "A444",
      "A444" },
    { "run_as.change", "/run-as-accounts/nothing", "/run-as-accounts/nothing", "{\"matrix\":1}",
      "{\"matrix\":1}", "A444", "A444" },
    { "run_as.delete", "/run-as-accounts/nothing", "/run-as-accounts/nothing", "{\"matrix\":1}",
      "{\"matrix\":1}", "A444", "A444" },
    { "guest_os_profile.list", "/guest-os-profiles", "/guest-os-profiles", NULL, NULL, "AAAA",
      "AAAA" },
    { "guest_os_profile.create", "/guest-os-profiles", "/guest-os-profiles", "{\"matrix\":1}",
      "{\"matrix\":1}", "A333", "A333" },
    { "guest_os_profile.get", "/guest-os-profiles/nothing", "/guest-os-profiles/nothing", NULL,
      NULL, "A444", "A444" },
    { "guest_os_profile.change", "/guest-os-profiles/nothing", "/guest-os-profiles/nothing",
      "{\"matrix\":1}", "{\"matrix\":1}", "A444", "A444" },
    { "guest_os_profile.delete", "/guest-os-profiles/nothing", "/guest-os-profiles/nothing",
      "{\"matrix\":1}", "{\"matrix\":1}", "A444", "A444" },
    { "setting.list", "/settings", "/settings", NULL, NULL, "AAA3", "AAA3" },
    { "setting.create", "/settings", "/settings", "{\"matrix\":1}", "{\"matrix\":1}", "A333",
      "A333" },
    { "setting.get", "/settings/nothing", "/settings/nothing", NULL, NULL, "A444", "A444" },
    { "setting.change", "/settings/nothing", "/settings/nothing", "{\"matrix\":1}",
      "{\"matrix\":1}", "A444", "A444" },
    { "setting.delete", "/settings/nothing", "/settings/nothing", "{\"matrix\":1}",
      "{\"matrix\":1}", "A444", "A444" },
    { "catalog.list", "/catalogs", "/catalogs", NULL, NULL, "AAAA", "AAAA" },
    /* A self-service user reads catalogs, so a catalog in In is visible: 403. */
    { "catalog.create", "/catalogs", "/catalogs", "{\"host_group\":\"In\",\"matrix\":1}",
      "{\"host_group\":\"Out\",\"matrix\":1}", "AA33", "A444" },
    { "catalog.get", "/catalogs/nothing", "/catalogs/nothing", NULL, NULL, "A444", "A444" },
    { "catalog.delete", "/catalogs/nothing", "/catalogs/nothing", "{\"matrix\":1}",
      "{\"matrix\":1}", "A444", "A444" },
    { "pool.volumes", "/storage-pools/{pool_in}/volumes", "/storage-pools/{pool_out}/volumes", NULL,
      NULL, "AAA4", "A444" },
    { "job.cancel", "/jobs/{job_in}/cancel", "/jobs/{job_out}/cancel", "{\"matrix\":1}",
      "{\"matrix\":1}", "AA34", "A444" },
    { "upgrade.report", "/upgrade-report", "/upgrade-report", NULL, NULL, "N333", "N333" },
    { "host.refresh", "/hosts/hin/refresh", "/hosts/hout/refresh", "{\"matrix\":1}",
      "{\"matrix\":1}", "AA34", "A444" },
    { "vm.start", "/vms/vin0/start", "/vms/vout0/start", "{\"matrix\":1}", "{\"matrix\":1}", "AA34",
      "A444" },
    { "vm.shutdown", "/vms/vin0/shutdown", "/vms/vout0/shutdown", "{\"matrix\":1}",
      "{\"matrix\":1}", "AA34", "A444" },
    { "vm.stop", "/vms/vin0/stop", "/vms/vout0/stop", "{\"matrix\":1}", "{\"matrix\":1}", "AA34",
      "A444" },
    { "vm.snapshot.list", "/vms/vin0/snapshots", "/vms/vout0/snapshots", NULL, NULL, "AAA4",
      "A444" },
    { "vm.snapshot.create", "/vms/vin0/snapshots", "/vms/vout0/snapshots", "{\"matrix\":1}",
      "{\"matrix\":1}", "AA34", "A444" },
    { "vm.snapshot.delete", "/vms/vin0/snapshots/nosnap", "/vms/vout0/snapshots/nosnap",
      "{\"matrix\":1}", "{\"matrix\":1}", "AA34", "A444" },
    { "vm.snapshot.revert", "/vms/vin0/snapshots/nosnap/revert",
      "/vms/vout0/snapshots/nosnap/revert", "{\"matrix\":1}", "{\"matrix\":1}", "AA34", "A444" },
    { "catalog.provision", "/catalogs/nothing/provision", "/catalogs/nothing/provision",
      "{\"matrix\":1}", "{\"matrix\":1}", "A444", "A444" },
    { "catalog.machines", "/catalogs/nothing/machines", "/catalogs/nothing/machines", NULL, NULL,
      "N444", "N444" },
    { "catalog.add-machines", "/catalogs/nothing/machines", "/catalogs/nothing/machines",
      "{\"matrix\":1}", "{\"matrix\":1}", "A444", "A444" },
    { "catalog.reconcile", "/catalogs/nothing/reconcile", "/catalogs/nothing/reconcile", NULL, NULL,
      "A444", "A444" },
    { "catalog.reconcile-submit", "/catalogs/nothing/reconcile", "/catalogs/nothing/reconcile",
      "{\"matrix\":1}", "{\"matrix\":1}", "A444", "A444" },
    { "catalog.images", "/catalogs/nothing/images", "/catalogs/nothing/images", NULL, NULL, "A444",
      "A444" },
    { "catalog.update-image", "/catalogs/nothing/images", "/catalogs/nothing/images",
      "{\"matrix\":1}", "{\"matrix\":1}", "A444", "A444" },
    { "catalog.rollback", "/catalogs/nothing/rollback", "/catalogs/nothing/rollback",
      "{\"matrix\":1}", "{\"matrix\":1}", "A444", "A444" },
    { "catalog.rebuild", "/catalogs/nothing/rebuild", "/catalogs/nothing/rebuild", "{\"matrix\":1}",
      "{\"matrix\":1}", "A444", "A444" },
    { "catalog.remove-machines", "/catalogs/nothing/remove-machines",
      "/catalogs/nothing/remove-machines", "{\"matrix\":1}", "{\"matrix\":1}", "A444", "A444" },
    { "catalog.power", "/catalogs/nothing/power", "/catalogs/nothing/power", "{\"matrix\":1}",
      "{\"matrix\":1}", "A444", "A444" },
    /* Checked against the machine's catalog and host group: an unknown one is absent. */
    { "catalog-machine.identity", "/catalog-machines/nothing/identity",
      "/catalog-machines/nothing/identity", NULL, NULL, "A444", "A444" },
    /* Logging out would end the matrix's own sessions: tested apart. */
    { "session.logout", "/session", "/session", NULL, NULL, "SSSS", "SSSS" },
    { "session.get", "/session", "/session", NULL, NULL, "AAAA", "AAAA" },
    { "session.password", "/session/password", "/session/password", "{\"matrix\":1}",
      "{\"matrix\":1}", "AAAA", "AAAA" },
    { "privilege.list", "/privileges", "/privileges", NULL, NULL, "A333", "A333" },
    { "role.list", "/roles", "/roles", NULL, NULL, "A333", "A333" },
    { "role.create", "/roles", "/roles", "{\"matrix\":1}", "{\"matrix\":1}", "A333", "A333" },
    { "role.get", "/roles/nothing", "/roles/nothing", NULL, NULL, "A333", "A333" },
    { "role.delete", "/roles/nothing", "/roles/nothing", "{\"matrix\":1}", "{\"matrix\":1}", "A333",
      "A333" },
    { "user.list", "/users", "/users", NULL, NULL, "A333", "A333" },
    { "user.create", "/users", "/users", "{\"matrix\":1}", "{\"matrix\":1}", "A333", "A333" },
    { "user.get", "/users/nothing", "/users/nothing", NULL, NULL, "A333", "A333" },
    { "user.change", "/users/nothing", "/users/nothing", "{\"matrix\":1}", "{\"matrix\":1}", "A333",
      "A333" },
    { "user.delete", "/users/nothing", "/users/nothing", "{\"matrix\":1}", "{\"matrix\":1}", "A333",
      "A333" },
    { "binding.list", "/bindings", "/bindings", NULL, NULL, "A333", "A333" },
    { "binding.create", "/bindings", "/bindings", "{\"matrix\":1}", "{\"matrix\":1}", "AAAA",
      "AAAA" },
    { "binding.delete", "/bindings/nothing", "/bindings/nothing", "{\"matrix\":1}",
      "{\"matrix\":1}", "AAAA", "AAAA" },
    { "token.create", "/tokens", "/tokens", "{\"matrix\":1}", "{\"matrix\":1}", "AAAA", "AAAA" },
    { "token.delete", "/tokens/nothing", "/tokens/nothing", "{\"matrix\":1}", "{\"matrix\":1}",
      "AAAA", "AAAA" },
    { "token.list", "/tokens", "/tokens", NULL, NULL, "AAAA", "AAAA" },
    { "session.list", "/sessions", "/sessions", NULL, NULL, "AAAA", "AAAA" },
    { "session.delete", "/sessions/nothing", "/sessions/nothing", "{\"matrix\":1}",
      "{\"matrix\":1}", "AAAA", "AAAA" },
    { "audit.list", "/audit", "/audit", NULL, NULL, "A333", "A333" },
};

typedef struct {
    DvTestDaemon *d;
    char *pg_db; /* the PostgreSQL database of this test, or NULL (SQLite) */
    char *hostdir;
    GHashTable *subst; /* "{pool_in}" -> id */
    char *tokens[4];   /* global admin, admin@In, read-only@In, self-service@In */
} Fixture;

static const char *const principals[] = { "admin", "adm-in", "ro-in", "ss-in" };

/* One request with @token; the status in @ret_status, the body (or NULL). */
static JsonNode *
req(Fixture *f, const char *token, const char *method, const char *path, const char *body,
    guint *ret_status)
{
    g_autofree char *url = g_strconcat(f->d->url, path, NULL);
    g_autoptr(SoupMessage) msg = soup_message_new(method, url);
    g_autoptr(GBytes) out = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();
    gsize len = 0;
    const char *text;

    g_assert_nonnull(msg);
    if (token != NULL) {
        g_autofree char *h = g_strdup_printf("Bearer %s", token);
        soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization", h);
    }
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

static char *
first_id(Fixture *f, const char *list_path)
{
    g_autoptr(JsonObject) o = req_ok(f, f->d->token, "GET", list_path, NULL, 200);
    JsonArray *items = json_object_get_array_member(o, "items");
    g_assert_cmpuint(json_array_get_length(items), >, 0);
    return g_strdup(json_object_get_string_member(json_array_get_object_element(items, 0), "id"));
}

static char *
add_host(Fixture *f, const char *name, const char *group)
{
    g_autofree char *file = g_strdup_printf("%s.xml", name);
    g_autofree char *prefix = g_strdup_printf("v%s", name + 1);
    g_autofree char *xml = dv_test_write_host_xml(f->hostdir, file, prefix, 1);
    g_autofree char *body = g_strdup_printf(
        "{\"name\":\"%s\",\"uri\":\"test://%s\",\"host_group\":\"%s\"}", name, xml, group);
    g_autoptr(JsonObject) job = dv_test_run_job(f->d, "POST", "/api/v1/hosts", body);
    dv_test_assert_job_state(job, "succeeded");
    return g_strdup(
        json_object_get_string_member(json_object_get_object_member(job, "result"), "id"));
}

static char *
login(Fixture *f, const char *user)
{
    g_autofree char *body = g_strdup_printf("{\"user\":\"%s\",\"password\":\"%s\"}", user, PW);
    g_autoptr(JsonObject) o = req_ok(f, NULL, "POST", "/api/v1/session", body, 201);
    return g_strdup(json_object_get_string_member(o, "token"));
}

/* A user made through the API and bound to @role over host group In. */
static char *
make_user(Fixture *f, const char *name, const char *role)
{
    g_autofree char *ubody = g_strdup_printf("{\"name\":\"%s\",\"password\":\"%s\"}", name, PW);
    g_autofree char *bbody = g_strdup_printf(
        "{\"user\":\"%s\",\"role\":\"%s\",\"scope\":{\"kind\":\"host_group\",\"ref\":\"%s\"}}",
        name, role, (const char *)g_hash_table_lookup(f->subst, "{hg_in}"));
    g_autoptr(JsonObject) u = req_ok(f, f->d->token, "POST", "/api/v1/users", ubody, 201);
    g_autoptr(JsonObject) b = req_ok(f, f->d->token, "POST", "/api/v1/bindings", bbody, 201);
    g_assert_cmpstr(json_object_get_string_member(u, "name"), ==, name);
    return login(f, name);
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autofree char *hin = NULL;
    g_autofree char *hout = NULL;
    struct {
        const char *key;
        const char *list;
    } lists[] = {
        { "pool", "/api/v1/storage-pools?host_id=" },
        { "volume", "/api/v1/volumes?host_id=" },
        { "network", "/api/v1/networks?host_id=" },
    };

    if (g_strcmp0(data, "postgresql") == 0) {
        g_autofree char *uri = NULL;
        const char *extra[] = { "--database", NULL, NULL };
        if (g_getenv("DV_TEST_PG_URI") == NULL)
            g_error("DV_TEST_PG_URI is not set: run under tests/services/with-services");
        uri = dv_test_pg_new_database("dv_access", &f->pg_db);
        extra[1] = uri;
        f->d = dv_test_daemon_start(NULL, extra);
    } else {
        f->d = dv_test_daemon_start(NULL, NULL);
    }
    f->hostdir = g_dir_make_tmp("dv-access-XXXXXX", NULL);
    f->subst = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    dv_test_run_job_ok(f->d, "POST", "/api/v1/host-groups", "{\"name\":\"In\"}");
    dv_test_run_job_ok(f->d, "POST", "/api/v1/host-groups", "{\"name\":\"Out\"}");
    {
        g_autoptr(JsonObject) in =
            req_ok(f, f->d->token, "GET", "/api/v1/host-groups/In", NULL, 200);
        g_hash_table_insert(f->subst, g_strdup("{hg_in}"),
                            g_strdup(json_object_get_string_member(in, "id")));
    }
    dv_test_run_job_ok(f->d, "POST", "/api/v1/clusters",
                       "{\"name\":\"cin\",\"host_group\":\"In\"}");
    dv_test_run_job_ok(f->d, "POST", "/api/v1/clusters",
                       "{\"name\":\"cout\",\"host_group\":\"Out\"}");
    hin = add_host(f, "hin", "In");
    hout = add_host(f, "hout", "Out");
    for (gsize i = 0; i < G_N_ELEMENTS(lists); i++) {
        g_autofree char *pin = g_strconcat(lists[i].list, hin, NULL);
        g_autofree char *pout = g_strconcat(lists[i].list, hout, NULL);
        g_hash_table_insert(f->subst, g_strdup_printf("{%s_in}", lists[i].key), first_id(f, pin));
        g_hash_table_insert(f->subst, g_strdup_printf("{%s_out}", lists[i].key), first_id(f, pout));
    }
    {
        g_autoptr(JsonObject) jin =
            dv_test_run_job(f->d, "POST", "/api/v1/hosts/hin/refresh", NULL);
        g_autoptr(JsonObject) jout =
            dv_test_run_job(f->d, "POST", "/api/v1/hosts/hout/refresh", NULL);
        g_hash_table_insert(f->subst, g_strdup("{job_in}"),
                            g_strdup(json_object_get_string_member(jin, "id")));
        g_hash_table_insert(f->subst, g_strdup("{job_out}"),
                            g_strdup(json_object_get_string_member(jout, "id")));
    }
    f->tokens[0] = g_strdup(f->d->token);
    f->tokens[1] = make_user(f, "adm-in", "administrator");
    f->tokens[2] = make_user(f, "ro-in", "read-only-administrator");
    f->tokens[3] = make_user(f, "ss-in", "self-service-user");
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
    g_clear_pointer(&f->subst, g_hash_table_unref);
    for (guint i = 0; i < G_N_ELEMENTS(f->tokens); i++)
        g_free(f->tokens[i]);
}

static char *
subst(Fixture *f, const char *path)
{
    g_autoptr(GString) s = g_string_new(path);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, f->subst);
    while (g_hash_table_iter_next(&it, &k, &v))
        g_string_replace(s, k, v, 0);
    return g_string_free(g_steal_pointer(&s), FALSE);
}

/* The operation table as droverd dumps it. */
static JsonArray *
dump_ops(void)
{
    g_autofree char *droverd = dv_test_build_path("src", "daemon", "droverd", NULL);
    g_autofree char *state = g_dir_make_tmp("dv-ops-XXXXXX", NULL);
    const char *argv[] = { droverd, "--state-dir", state, "--dump-ops", NULL };
    g_autofree char *out = NULL;
    g_autoptr(JsonParser) p = json_parser_new();
    g_autoptr(GError) error = NULL;

    g_assert_cmpint(dv_test_spawn(argv, NULL, &out, NULL), ==, 0);
    dv_test_rm_rf(state);
    g_assert_true(json_parser_load_from_data(p, out, -1, &error));
    g_assert_no_error(error);
    return json_array_ref(
        json_object_get_array_member(json_node_get_object(json_parser_get_root(p)), "ops"));
}

static const DvMatrixRow *
matrix_row(const char *name)
{
    for (gsize i = 0; i < G_N_ELEMENTS(dv_matrix_rows); i++)
        if (g_strcmp0(dv_matrix_rows[i].name, name) == 0)
            return &dv_matrix_rows[i];
    return NULL;
}

static void
test_matrix(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonArray) ops = dump_ops();
    g_autoptr(GString) failures = g_string_new(NULL);
    guint checked = 0;

    for (guint i = 0; i < json_array_get_length(ops); i++) {
        JsonObject *op = json_array_get_object_element(ops, i);
        const char *name = json_object_get_string_member(op, "name");
        const char *method = json_object_get_string_member(op, "method");
        const char *priv = json_object_get_string_member(op, "privilege");
        const DvMatrixRow *row;

        if (json_object_get_boolean_member(op, "public") ||
            json_object_get_boolean_member(op, "debug"))
            continue;
        row = matrix_row(name);
        if (row == NULL) {
            g_string_append_printf(failures, "  %s: no row in dv_matrix_rows\n", name);
            continue;
        }
        for (guint v = 0; v < 2; v++) {
            const char *path = v == 0 ? row->in_path : row->out_path;
            const char *body = v == 0 ? row->in_body : row->out_body;
            const char *expect = v == 0 ? row->in_expect : row->out_expect;
            g_autofree char *p = subst(f, path);
            g_autofree char *url =
                g_strconcat("/api/v1", p, strchr(p, '?') ? "&" : "?", "matrix=1", NULL);
            for (guint who = 0; who < G_N_ELEMENTS(principals); who++) {
                g_autoptr(JsonNode) resp = NULL;
                guint status = 0;
                gboolean ok;
                if (expect[who] == 'S')
                    continue;
                resp = req(f, f->tokens[who], method, url, body, &status);
                checked++;
                switch (expect[who]) {
                case 'A':
                    ok = status != 401 && status != 403 && status != 404;
                    break;
                case '3':
                    ok = status == 403;
                    if (ok && priv != NULL) {
                        g_autofree char *t = json_to_string(resp, FALSE);
                        ok = strstr(t, priv) != NULL;
                    }
                    break;
                default:
                    ok = status == 404;
                    break;
                }
                if (!ok) {
                    g_autofree char *t = resp != NULL ? json_to_string(resp, FALSE) : g_strdup("");
                    g_string_append_printf(failures, "  %s %s as %s (%s): want %c, got %u %s\n",
                                           name, v == 0 ? "in" : "out", principals[who], url,
                                           expect[who], status, t);
                }
            }
        }
    }
    g_test_message("matrix: %u requests", checked);
    if (failures->len > 0)
        g_error("authorization matrix:\n%s", failures->str);
    g_assert_cmpuint(checked, >, 300);
}

static gint
cmp_names(gconstpointer a, gconstpointer b)
{
    return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

/* Names of a list's items, sorted and joined by spaces (owned). */
static char *
list_names(Fixture *f, const char *token, const char *path)
{
    g_autoptr(JsonObject) o = req_ok(f, token, "GET", path, NULL, 200);
    JsonArray *items = json_object_get_array_member(o, "items");
    g_autoptr(GPtrArray) names = g_ptr_array_new();
    for (guint i = 0; i < json_array_get_length(items); i++)
        g_ptr_array_add(names, (gpointer)json_object_get_string_member(
                                   json_array_get_object_element(items, i), "name"));
    g_ptr_array_sort(names, cmp_names);
    g_ptr_array_add(names, NULL);
    return g_strjoinv(" ", (char **)names->pdata);
}

/* Lists show what the caller's scope covers, the administrator's all. */
static void
test_lists(Fixture *f, gconstpointer data)
{
    static const struct {
        const char *path;
        const char *all;
        const char *in;
    } lists[] = {
        { "/api/v1/vms", "vin0 vout0", "vin0" },
        { "/api/v1/hosts", "hin hout", "hin" },
        { "/api/v1/clusters", "cin cout", "cin" },
        { "/api/v1/host-groups", "In Out", "In" },
    };
    for (gsize i = 0; i < G_N_ELEMENTS(lists); i++) {
        g_autofree char *all = list_names(f, f->d->token, lists[i].path);
        g_autofree char *adm = list_names(f, f->tokens[1], lists[i].path);
        g_autofree char *ro = list_names(f, f->tokens[2], lists[i].path);
        g_assert_cmpstr(all, ==, lists[i].all);
        g_assert_cmpstr(adm, ==, lists[i].in);
        g_assert_cmpstr(ro, ==, lists[i].in);
    }
    /* A self-service user sees its own VMs only: none yet. */
    {
        g_autofree char *ss = list_names(f, f->tokens[3], "/api/v1/vms");
        g_assert_cmpstr(ss, ==, "");
    }
}

/* Asserts that no member of @obj is a storage field of @kind; returns how
 * many it has (for the administrator's view). */
static guint
storage_members(JsonObject *obj, const char *const *fields)
{
    static const char *const nested[] = { "spec", "machine_spec" };
    guint n = 0;
    for (guint i = 0; fields[i] != NULL; i++)
        if (json_object_has_member(obj, fields[i]))
            n++;
    /* A VM's and a catalog's spec carry the same members. */
    for (gsize k = 0; k < G_N_ELEMENTS(nested); k++) {
        JsonNode *sub = json_object_get_member(obj, nested[k]);
        if (sub != NULL && JSON_NODE_HOLDS_OBJECT(sub))
            n += storage_members(json_node_get_object(sub), fields);
    }
    return n;
}

static guint
list_storage_members(Fixture *f, const char *token, const char *path, const char *const *fields,
                     guint *ret_items)
{
    g_autoptr(JsonObject) o = req_ok(f, token, "GET", path, NULL, 200);
    JsonArray *items = json_object_get_array_member(o, "items");
    guint n = 0;
    for (guint i = 0; i < json_array_get_length(items); i++)
        n += storage_members(json_array_get_object_element(items, i), fields);
    *ret_items = json_array_get_length(items);
    return n;
}

/* A delegated administrator's views carry no storage fields: absent, not
 * emptied; the administrator's views of the same objects do. */
static void
test_redaction(Fixture *f, gconstpointer data)
{
    static const char *const vm_fields[] = { "pool",      "pool_id", "pool_name", "disks",
                                             "disk_path", "volumes", NULL };
    static const char *const pool_fields[] = { "path", "capacity", "allocation", "available",
                                               "uuid", "volumes",  NULL };
    static const char *const volume_fields[] = { "path",       "vkey",   "pool_id", "capacity",
                                                 "allocation", "format", NULL };
    static const struct {
        const char *path;
        const char *const *fields;
    } views[] = {
        { "/api/v1/vms", vm_fields },         { "/api/v1/storage-pools", pool_fields },
        { "/api/v1/volumes", volume_fields }, { "/api/v1/templates", vm_fields },
        { "/api/v1/catalogs", vm_fields },
    };
    g_autofree char *token = make_user(f, "del-in", "delegated-administrator");
    guint items = 0;

    for (gsize i = 0; i < G_N_ELEMENTS(views); i++) {
        guint admin_items = 0;
        guint seen = list_storage_members(f, token, views[i].path, views[i].fields, &items);
        guint admin =
            list_storage_members(f, f->d->token, views[i].path, views[i].fields, &admin_items);
        g_assert_cmpuint(seen, ==, 0);
        /* VMs, pools and volumes exist: the administrator sees their storage. */
        if (i < 3 && (items == 0 || admin == 0)) {
            g_autoptr(JsonObject) o = req_ok(f, f->d->token, "GET", views[i].path, NULL, 200);
            g_autofree char *t = json_to_string(json_node_init_object(json_node_alloc(), o), FALSE);
            g_error("%s: %u items, %u storage fields for the administrator: %s", views[i].path,
                    items, admin, t);
        }
    }
    {
        g_autoptr(JsonObject) vm = req_ok(f, token, "GET", "/api/v1/vms/vin0", NULL, 200);
        g_autoptr(JsonObject) avm = req_ok(f, f->d->token, "GET", "/api/v1/vms/vin0", NULL, 200);
        g_assert_cmpuint(storage_members(vm, vm_fields), ==, 0);
        g_assert_cmpuint(storage_members(avm, vm_fields), >, 0);
    }
    /* Who am I says so, with the roles and privileges (GET /session). */
    {
        g_autoptr(JsonObject) me = req_ok(f, token, "GET", "/api/v1/session", NULL, 200);
        JsonArray *roles = json_object_get_array_member(me, "roles");
        g_assert_cmpstr(json_object_get_string_member(me, "user"), ==, "del-in");
        g_assert_true(json_object_get_boolean_member(me, "storage_redacted"));
        g_assert_cmpuint(json_array_get_length(roles), ==, 1);
        g_assert_cmpuint(json_array_get_length(json_object_get_array_member(me, "privileges")), >,
                         10);
    }
}

static void
assert_refused_status(Fixture *f, const char *token, const char *path, guint want)
{
    guint status = 0;
    g_autoptr(JsonNode) r = req(f, token, "GET", path, NULL, &status);
    g_assert_cmpuint(status, ==, want);
}

static gboolean
audit_has(Fixture *f, const char *user, const char *operation, const char *outcome)
{
    g_autofree char *path =
        g_strdup_printf("/api/v1/audit?user=%s&operation=%s&outcome=%s", user, operation, outcome);
    g_autoptr(JsonObject) o = req_ok(f, f->d->token, "GET", path, NULL, 200);
    return json_array_get_length(json_object_get_array_member(o, "items")) > 0;
}

/* Refused and accepted changes are in the audit log, with the job id;
 * reads are not. */
static void
test_audit(Fixture *f, gconstpointer data)
{
    guint status = 0;
    g_autoptr(JsonNode) r = req(f, f->tokens[2], "POST", "/api/v1/vms/vin0/start", NULL, &status);
    g_autoptr(JsonNode) r2 = NULL;
    g_autoptr(JsonObject) accepted = NULL;
    g_autoptr(JsonObject) page = NULL;
    JsonArray *items;
    JsonObject *entry;

    g_assert_cmpuint(status, ==, 403);
    g_assert_true(audit_has(f, "ro-in", "vm.start", "refused"));
    r2 = req(f, f->tokens[1], "POST", "/api/v1/vms/vout0/start", NULL, &status);
    g_assert_cmpuint(status, ==, 404);
    g_assert_true(audit_has(f, "adm-in", "vm.start", "refused"));
    accepted = req_ok(f, f->tokens[1], "POST", "/api/v1/vms/vin0/stop", NULL, 202);
    page = req_ok(f, f->d->token, "GET", "/api/v1/audit?user=adm-in&operation=vm.stop&outcome=allowed",
                  NULL, 200);
    items = json_object_get_array_member(page, "items");
    g_assert_cmpuint(json_array_get_length(items), ==, 1);
    entry = json_array_get_object_element(items, 0);
    g_assert_cmpstr(
        json_object_get_string_member(entry, "job_id"), ==,
        json_object_get_string_member(json_object_get_object_member(accepted, "job"), "id"));
    g_assert_false(audit_has(f, "adm-in", "vm.get", "allowed"));
    g_assert_cmpstr(json_object_get_string_member(entry, "user"), ==, "adm-in");
    g_assert_cmpstr(json_object_get_string_member(entry, "source"), ==, "127.0.0.1");
    g_assert_cmpstr(json_object_get_string_member(entry, "outcome"), ==, "allowed");
    /* A bad input after the decision is a failure of the operation. */
    {
        g_autoptr(JsonNode) r3 =
            req(f, f->tokens[1], "POST", "/api/v1/vms/vin0/start", "{\"x\":1}", &status);
        g_assert_cmpuint(status, ==, 400);
        g_assert_true(audit_has(f, "adm-in", "vm.start", "failed"));
    }
    /* The log is installation-wide: read with a global audit.read only
     * (a read-only administrator of one group is refused until entries
     * are filtered by scope). */
    assert_refused_status(f, f->tokens[2], "/api/v1/audit", 403);
    assert_refused_status(f, f->tokens[3], "/api/v1/audit", 403);
}

static void
assert_refused(Fixture *f, const char *token, const char *method, const char *path,
               const char *body, guint want, const char *code, const char *field)
{
    guint status = 0;
    g_autoptr(JsonNode) r = req(f, token, method, path, body, &status);
    dv_test_assert_error(r, status, want, code, field);
}

/* Users and roles through the API, with the auth layer's rules. */
static void
test_users(Fixture *f, gconstpointer data)
{
    const char *admin = f->d->token;
    g_autoptr(JsonObject) u = NULL;
    g_autoptr(JsonObject) shown = NULL;
    g_autoptr(JsonObject) role = NULL;
    g_autofree char *token = NULL;
    gint64 users_before = dv_test_count(f->d, "/api/v1/users");

    /* Bad input: each names its field, nothing made. */
    assert_refused(f, admin, "POST", "/api/v1/users", "{\"name\":\"u1\",\"password\":\"short\"}",
                   400, "invalid-argument", "password");
    assert_refused(f, admin, "POST", "/api/v1/users",
                   "{\"name\":\"longname1\",\"password\":\"LongName1\"}", 400, "invalid-argument",
                   "password");
    assert_refused(f, admin, "POST", "/api/v1/users",
                   "{\"name\":\"u1\",\"password\":\"" PW "\",\"role\":\"no-such-role\"}", 400,
                   "invalid-argument", "role");
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/users"), ==, users_before);
    assert_refused(f, admin, "POST", "/api/v1/roles",
                   "{\"name\":\"r1\",\"privileges\":[\"vm.fly\"]}", 400, "invalid-argument",
                   "privileges");
    assert_refused(
        f, admin, "POST", "/api/v1/bindings",
        "{\"user\":\"ro-in\",\"role\":\"administrator\",\"scope\":{\"kind\":\"host_group\","
        "\"ref\":\"no-such-group\"}}",
        400, "invalid-argument", "scope.ref");
    assert_refused(f, admin, "POST", "/api/v1/bindings",
                   "{\"user\":\"ro-in\",\"role\":\"no-such-role\"}", 400, "invalid-argument",
                   "role");

    /* A scope named by its name is stored by its id. */
    {
        g_autoptr(JsonObject) b = req_ok(
            f, admin, "POST", "/api/v1/bindings",
            "{\"user\":\"ro-in\",\"role\":\"read-only-administrator\",\"scope\":{\"kind\":"
            "\"host_group\",\"ref\":\"In\"}}",
            201);
        g_autofree char *path = g_strdup_printf("/api/v1/bindings/%s", dv_json_get_string(b, "id", ""));
        g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), b);
        g_autofree char *body = json_to_string(node, FALSE);
        g_assert_nonnull(strstr(body, (const char *)g_hash_table_lookup(f->subst, "{hg_in}")));
        g_autoptr(JsonObject) gone = req_ok(f, admin, "DELETE", path, NULL, 200);
    }

    /* A user with a role: a global binding, shown with the user. */
    u = req_ok(f, admin, "POST", "/api/v1/users",
               "{\"name\":\"u1\",\"password\":\"" PW "\",\"role\":\"read-only-administrator\"}",
               201);
    g_assert_false(json_object_get_boolean_member(u, "disabled"));
    shown = req_ok(f, admin, "GET", "/api/v1/users/u1", NULL, 200);
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(shown, "bindings")), ==, 1);
    token = login(f, "u1");
    {
        g_autoptr(JsonObject) v = req_ok(f, token, "GET", "/api/v1/vms/vout0", NULL, 200);
    }
    /* Disabled: its session ends at once. */
    {
        g_autoptr(JsonObject) d =
            req_ok(f, admin, "PATCH", "/api/v1/users/u1", "{\"disabled\":true}", 200);
        g_assert_true(json_object_get_boolean_member(d, "disabled"));
    }
    assert_refused(f, token, "GET", "/api/v1/vms", NULL, 401, "auth-required", NULL);

    /* The last administrator stays. */
    assert_refused(f, admin, "PATCH", "/api/v1/users/admin", "{\"disabled\":true}", 409, "conflict",
                   NULL);
    assert_refused(f, admin, "DELETE", "/api/v1/users/admin", NULL, 409, "conflict", NULL);
    /* Built-in roles are not deleted; a bound custom role neither. */
    assert_refused(f, admin, "DELETE", "/api/v1/roles/administrator", NULL, 409, "conflict", NULL);
    role = req_ok(f, admin, "POST", "/api/v1/roles",
                  "{\"name\":\"starter\",\"privileges\":[\"vm.read\",\"vm.power\"]}", 201);
    g_assert_false(json_object_get_boolean_member(role, "builtin"));
    {
        g_autoptr(JsonObject) b = req_ok(f, admin, "POST", "/api/v1/bindings",
                                         "{\"user\":\"ro-in\",\"role\":\"starter\"}", 201);
        g_autofree char *path =
            g_strdup_printf("/api/v1/bindings/%s", json_object_get_string_member(b, "id"));
        g_autoptr(JsonObject) gone = NULL;
        assert_refused(f, admin, "DELETE", "/api/v1/roles/starter", NULL, 409, "conflict", NULL);
        gone = req_ok(f, admin, "DELETE", path, NULL, 200);
    }
    {
        g_autoptr(JsonObject) gone = req_ok(f, admin, "DELETE", "/api/v1/roles/starter", NULL, 200);
        g_autoptr(JsonObject) del = req_ok(f, admin, "DELETE", "/api/v1/users/u1", NULL, 200);
    }
    assert_refused(f, admin, "GET", "/api/v1/users/u1", NULL, 404, "not-found", NULL);
}

/* Sessions and tokens: one's own, or anyone's with user.manage. */
static void
test_sessions(Fixture *f, gconstpointer data)
{
    g_autofree char *second = login(f, "ro-in");
    g_autoptr(JsonObject) mine = req_ok(f, f->tokens[2], "GET", "/api/v1/sessions", NULL, 200);
    g_autoptr(JsonObject) tok = NULL;
    g_autoptr(JsonObject) tokens = NULL;
    JsonArray *items = json_object_get_array_member(mine, "items");
    const char *other = NULL;
    guint current = 0;

    g_assert_cmpuint(json_array_get_length(items), ==, 2);
    for (guint i = 0; i < json_array_get_length(items); i++) {
        JsonObject *o = json_array_get_object_element(items, i);
        g_assert_cmpstr(json_object_get_string_member(o, "user"), ==, "ro-in");
        g_assert_false(json_object_has_member(o, "token_hash"));
        if (json_object_get_boolean_member(o, "current"))
            current++;
        else
            other = json_object_get_string_member(o, "id");
    }
    g_assert_cmpuint(current, ==, 1);
    g_assert_nonnull(other);
    /* Another user's sessions: user.manage only, and hidden from others. */
    {
        g_autoptr(JsonObject) all = req_ok(f, f->d->token, "GET", "/api/v1/sessions?user=ro-in",
                                           NULL, 200);
        g_autofree char *path = g_strdup_printf("/api/v1/sessions/%s", other);
        g_autoptr(JsonObject) gone = NULL;
        g_assert_cmpuint(json_array_get_length(json_object_get_array_member(all, "items")), ==, 2);
        assert_refused(f, f->tokens[3], "GET", "/api/v1/sessions?user=ro-in", NULL, 403,
                       "permission-denied", "user");
        assert_refused(f, f->tokens[3], "DELETE", path, NULL, 404, "not-found", NULL);
        /* Revoked: the other session ends at once, this one goes on. */
        gone = req_ok(f, f->tokens[2], "DELETE", path, NULL, 200);
        assert_refused(f, second, "GET", "/api/v1/vms", NULL, 401, "auth-required", NULL);
        {
            g_autoptr(JsonObject) still = req_ok(f, f->tokens[2], "GET", "/api/v1/sessions", NULL, 200);
            g_assert_cmpuint(json_array_get_length(json_object_get_array_member(still, "items")), ==, 1);
        }
    }
    /* Tokens are listed without their secret. */
    tok = req_ok(f, f->tokens[2], "POST", "/api/v1/tokens", "{\"name\":\"ci\"}", 201);
    g_assert_true(g_str_has_prefix(json_object_get_string_member(tok, "token"), "dvt_"));
    tokens = req_ok(f, f->tokens[2], "GET", "/api/v1/tokens", NULL, 200);
    items = json_object_get_array_member(tokens, "items");
    g_assert_cmpuint(json_array_get_length(items), ==, 1);
    g_assert_false(json_object_has_member(json_array_get_object_element(items, 0), "token"));
    g_assert_false(json_object_has_member(json_array_get_object_element(items, 0), "token_hash"));
}

/* The known escalation paths (issue 11). */
static void
test_escalation(Fixture *f, gconstpointer data)
{
    g_autofree char *del = make_user(f, "del-in2", "delegated-administrator");
    g_autoptr(JsonObject) tok = NULL;
    const char *ro_token;

    /* A delegated administrator granting itself more: administrator
     * globally, or over its own group (administrator holds setting.*). */
    assert_refused(f, del, "POST", "/api/v1/bindings",
                   "{\"user\":\"del-in2\",\"role\":\"administrator\"}", 403, "permission-denied",
                   NULL);
    {
        g_autofree char *b = g_strdup_printf(
            "{\"user\":\"del-in2\",\"role\":\"administrator\",\"scope\":{\"kind\":\"host_group\","
            "\"ref\":\"%s\"}}",
            (const char *)g_hash_table_lookup(f->subst, "{hg_in}"));
        gint64 refused_before =
            dv_test_count(f->d, "/api/v1/audit?operation=binding.create&outcome=refused");
        assert_refused(f, del, "POST", "/api/v1/bindings", b, 403, "permission-denied", NULL);
        /* The grant rule's 403 is audited as a refusal, not a failure. */
        g_assert_cmpint(dv_test_count(f->d, "/api/v1/audit?operation=binding.create&outcome=refused"),
                        ==, refused_before + 1);
    }
    /* A self-service user editing its own quota: it may not bind at all. */
    {
        g_autofree char *b = g_strdup_printf(
            "{\"user\":\"ss-in\",\"role\":\"self-service-user\",\"scope\":{\"kind\":\"host_group\","
            "\"ref\":\"%s\"},\"quota\":{\"vms\":1000}}",
            (const char *)g_hash_table_lookup(f->subst, "{hg_in}"));
        assert_refused(f, f->tokens[3], "POST", "/api/v1/bindings", b, 403, "permission-denied",
                       NULL);
    }
    /* A token above its user is refused; a token within works, and only
     * within its own privileges. */
    assert_refused(f, f->tokens[2], "POST", "/api/v1/tokens",
                   "{\"name\":\"t1\",\"privileges\":[\"vm.power\"]}", 403, "permission-denied",
                   NULL);
    assert_refused(f, f->tokens[2], "POST", "/api/v1/tokens",
                   "{\"name\":\"t1\",\"expires_in_days\":400}", 400, "invalid-argument",
                   "expires_in_days");
    tok = req_ok(f, f->tokens[2], "POST", "/api/v1/tokens",
                 "{\"name\":\"t1\",\"privileges\":[\"vm.read\"]}", 201);
    ro_token = json_object_get_string_member(tok, "token");
    {
        g_autoptr(JsonObject) vm = req_ok(f, ro_token, "GET", "/api/v1/vms/vin0", NULL, 200);
        g_autofree char *path =
            g_strdup_printf("/api/v1/tokens/%s", json_object_get_string_member(tok, "id"));
        g_autoptr(JsonObject) gone = NULL;
        /* The token holds no host.read: hosts are out of its sight. */
        assert_refused(f, ro_token, "GET", "/api/v1/hosts/hin", NULL, 404, "not-found", NULL);
        gone = req_ok(f, f->tokens[2], "DELETE", path, NULL, 200);
        assert_refused(f, ro_token, "GET", "/api/v1/vms/vin0", NULL, 401, "auth-required", NULL);
    }
    /* A read-only administrator reads no secret: a Run As account shows
     * no password or ciphertext, a machine's identity secrets are refused. */
    {
        g_autoptr(JsonObject) u = req_ok(f, f->d->token, "POST", "/api/v1/users",
                                         "{\"name\":\"ro-all\",\"password\":\"" PW
                                         "\",\"role\":\"read-only-administrator\"}",
                                         201);
        g_autofree char *ro_all = login(f, "ro-all");
        g_autoptr(JsonObject) ra = NULL;
        g_autofree char *text = NULL;
        dv_test_run_job_ok(f->d, "POST", "/api/v1/run-as-accounts",
                           "{\"name\":\"svc\",\"username\":\"root\",\"password\":\"s3cret-Pw-x\"}");
        ra = req_ok(f, ro_all, "GET", "/api/v1/run-as-accounts/svc", NULL, 200);
        text = json_to_string(json_node_init_object(json_node_alloc(), ra), FALSE);
        g_assert_null(strstr(text, "s3cret-Pw-x"));
        /* "password" describes the secret ({set, key id...}), never its
         * value or ciphertext. */
        g_assert_true(
            json_object_get_boolean_member(json_object_get_object_member(ra, "password"), "set"));
        g_assert_null(strstr(text, "ciphertext"));
        g_assert_false(json_object_has_member(ra, "sealed"));
        assert_refused(f, ro_all, "GET", "/api/v1/catalog-machines/desk-01/identity", NULL, 403,
                       "permission-denied", NULL);
    }
    /* Using a Run As account (a host's credentials) needs run_as.use on it:
     * an administrator of In cannot see "svc" (404), then sees it but may
     * not use it (403 naming run_as.use), then may (the host's own input
     * check answers). */
    {
        static const char host[] = "{\"name\":\"h3\",\"uri\":\"test:///default\","
                                   "\"host_group\":\"In\",\"run_as\":\"svc\",\"matrix\":1}";
        g_autoptr(JsonObject) svc = req_ok(f, f->d->token, "GET", "/api/v1/run-as-accounts/svc", NULL, 200);
        g_autofree char *see = g_strdup_printf(
            "{\"user\":\"adm-in\",\"role\":\"read-only-administrator\",\"scope\":{\"kind\":"
            "\"run_as\",\"ref\":\"%s\"}}", json_object_get_string_member(svc, "id"));
        g_autofree char *use = g_strdup_printf(
            "{\"user\":\"adm-in\",\"role\":\"administrator\",\"scope\":{\"kind\":"
            "\"run_as\",\"ref\":\"%s\"}}", json_object_get_string_member(svc, "id"));
        guint status = 0;
        g_autoptr(JsonNode) r = NULL;
        g_autoptr(JsonObject) b1 = NULL;
        g_autoptr(JsonObject) b2 = NULL;
        gint64 hosts_before = dv_test_count(f->d, "/api/v1/hosts");

        assert_refused(f, f->tokens[1], "POST", "/api/v1/hosts", host, 404, "not-found", NULL);
        b1 = req_ok(f, f->d->token, "POST", "/api/v1/bindings", see, 201);
        r = req(f, f->tokens[1], "POST", "/api/v1/hosts", host, &status);
        dv_test_assert_error(r, status, 403, "permission-denied", NULL);
        g_assert_nonnull(strstr(json_to_string(r, FALSE), "run_as.use"));
        g_clear_pointer(&r, json_node_unref);
        b2 = req_ok(f, f->d->token, "POST", "/api/v1/bindings", use, 201);
        assert_refused(f, f->tokens[1], "POST", "/api/v1/hosts", host, 400, "invalid-argument",
                       "matrix");
        g_assert_cmpint(dv_test_count(f->d, "/api/v1/hosts"), ==, hosts_before);
    }
}

/* Own objects: a self-service user's VM is its own (vms.owner_id), so
 * it may act on it and on its jobs, and on nobody else's VM in its group;
 * a read-only administrator of the group sees the VM but may not act. */
static void
test_own(Fixture *f, gconstpointer data)
{
    const char *ss = f->tokens[3];
    g_autoptr(JsonObject) created = req_ok(
        f, ss, "POST", "/api/v1/vms",
        "{\"name\":\"vss\",\"host\":\"hin\",\"memory_mib\":64,"
        "\"disks\":[{\"size_mib\":8,\"pool\":\"pool1\"}]}",
        202);
    const char *job_id =
        json_object_get_string_member(json_object_get_object_member(created, "job"), "id");
    g_autoptr(JsonObject) job = dv_test_wait_job(f->d, job_id, 60);
    g_autofree char *job_path = g_strdup_printf("/api/v1/jobs/%s", job_id);
    g_autofree char *names = NULL;

    dv_test_assert_job_state(job, "succeeded");
    names = list_names(f, ss, "/api/v1/vms");
    g_assert_cmpstr(names, ==, "vss");
    {
        g_autoptr(JsonObject) own_job = req_ok(f, ss, "GET", job_path, NULL, 200);
        g_autoptr(JsonObject) vm = req_ok(f, ss, "GET", "/api/v1/vms/vss", NULL, 200);
        g_autoptr(JsonObject) start = req_ok(f, ss, "POST", "/api/v1/vms/vss/start", NULL, 202);
        g_autoptr(JsonObject) seen = req_ok(f, f->tokens[2], "GET", "/api/v1/vms/vss", NULL, 200);
    }
    /* Not its own: as if absent. */
    assert_refused(f, ss, "GET", "/api/v1/vms/vin0", NULL, 404, "not-found", NULL);
    assert_refused(f, ss, "POST", "/api/v1/vms/vin0/stop", NULL, 404, "not-found", NULL);
    /* Visible, not allowed: 403 naming the privilege. */
    assert_refused(f, f->tokens[2], "POST", "/api/v1/vms/vss/start", NULL, 403,
                   "permission-denied", NULL);
    /* Out of the user's host group: a create there is refused as absent. */
    assert_refused(f, ss, "POST", "/api/v1/vms",
                   "{\"name\":\"vss2\",\"host\":\"hout\",\"memory_mib\":64}", 404,
                   "not-found", NULL);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    static const struct {
        const char *name;
        void (*func)(Fixture *, gconstpointer);
    } tests[] = {
        { "matrix", test_matrix },         { "redaction", test_redaction },
        { "audit", test_audit },           { "users", test_users },
        { "escalation", test_escalation }, { "sessions", test_sessions },
        { "lists", test_lists },           { "own", test_own },
    };
    static const char *const backends[] = { "sqlite", "postgresql" };

    for (gsize b = 0; b < G_N_ELEMENTS(backends); b++)
        for (gsize i = 0; i < G_N_ELEMENTS(tests); i++) {
            g_autofree char *path =
                g_strdup_printf("/drover/api/access/%s/%s", backends[b], tests[i].name);
            g_test_add(path, Fixture, backends[b], fixture_setup, tests[i].func, fixture_teardown);
        }
    return g_test_run();
}
