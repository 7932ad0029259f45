/* The OpenAPI contract end to end (issue 17, item 3; docs/API.md, "The
 * contract"): a real droverd on SQLite and on PostgreSQL.
 *
 * /drover/api/openapi/{sqlite,postgresql}/served: GET /api/v1/openapi.json,
 *   without a token, is docs/openapi.json (tools/check-openapi compares
 *   that file with the operation table).
 * /drover/api/openapi/{sqlite,postgresql}/contract: one valid request per
 *   documented operation (dv_contract_steps), on a test:/// host, every
 *   answer recorded with its operation, method, path and status; then
 *   tests/api/openapi-contract.py validates each body against the
 *   document's schema for that status (python3-jsonschema, Draft 2020-12)
 *   and fails naming op, status and the JSON path of each mismatch, an
 *   operation of the document no step sent, or a step whose path is not
 *   its operation's template.
 *
 * A step's path and body may hold {var}s: the test's temp dir ({dir}) and
 * values saved from earlier answers (@save "var=member", the member of the
 * answer or of its job).  Job answers (202) are waited for, so the next
 * step sees what the job did; a job may fail on test:/// (no upload), its
 * 202 is still the contract.  @want is the status the step expects when
 * it is not the documented success (a refusal by state, not by input).
 */
#define G_LOG_DOMAIN "DvTestApiOpenApi"

#include "dv-json.h"
#include "dv-test-pg.h"
#include "dv-test-util.h"

#include <string.h>

#define DV_CONTRACT_PW "oa-password-1"
#define DV_CONTRACT_PW2 "oa-password-2"

typedef enum {
    DV_STEP_ADMIN,     /* as the administrator */
    DV_STEP_ANON,      /* no token */
    DV_STEP_USER,      /* with the token saved in {user_token} */
    DV_STEP_EVENTS,    /* the job's event stream */
    DV_STEP_UPLOAD,    /* a few bytes as the body */
    DV_STEP_WEBSOCKET, /* the WebSocket handshake with the bearer token, then a close */
    DV_STEP_TEXT,      /* as the administrator; the answer is text, not JSON */
} DvStepHow;

typedef struct {
    const char *op;
    const char *method;
    const char *path; /* under /api/v1 */
    const char *body; /* NULL: none */
    DvStepHow how;
    guint want;       /* 0: the documented success */
    const char *save; /* "var=member" */
} DvStep;

static const DvStep dv_contract_steps[] = {
    { "version", "GET", "/version", NULL, DV_STEP_ANON },
    { "health", "GET", "/health", NULL, DV_STEP_ANON },
    { "openapi", "GET", "/openapi.json", NULL, DV_STEP_ANON },
    { "metrics.read", "GET", "/metrics", NULL, DV_STEP_TEXT },
    /* no upgrade in a fresh database */
    { "upgrade.report", "GET", "/upgrade-report", NULL, DV_STEP_ADMIN, 404 },
    { "host_group.create", "POST", "/host-groups", "{\"name\":\"oa-g1\"}" },
    { "host_group.list", "GET", "/host-groups" },
    { "host_group.get", "GET", "/host-groups/oa-g1" },
    { "host_group.change", "PATCH", "/host-groups/oa-g1", "{\"description\":\"group\"}" },
    { "cluster.create", "POST", "/clusters", "{\"name\":\"oa-c1\",\"host_group\":\"oa-g1\"}" },
    { "cluster.list", "GET", "/clusters" },
    { "cluster.get", "GET", "/clusters/oa-c1" },
    { "cluster.change", "PATCH", "/clusters/oa-c1", "{\"description\":\"cluster\"}" },
    { "host.create", "POST", "/hosts",
      "{\"name\":\"h1\",\"uri\":\"test://{dir}/h1.xml\",\"host_group\":\"oa-g1\"}" },
    { "host.list", "GET", "/hosts" },
    { "host.get", "GET", "/hosts/h1" },
    { "host.change", "PATCH", "/hosts/h1", "{\"max_connections\":8}" },
    { "host.refresh", "POST", "/hosts/h1/refresh" },
    { "pool.list", "GET", "/storage-pools" },
    { "pool.get", "GET", "/storage-pools/pool1" },
    { "pool.volumes", "GET", "/storage-pools/pool1/volumes" },
    { "pool.create", "POST", "/storage-pools",
      "{\"name\":\"oa-p1\",\"host\":\"h1\",\"path\":\"/oa-p1\"}" },
    { "pool.stop", "POST", "/storage-pools/oa-p1/stop" },
    { "pool.start", "POST", "/storage-pools/oa-p1/start" },
    { "pool.change", "PATCH", "/storage-pools/oa-p1", "{\"autostart\":false}" },
    { "volume.list", "GET", "/volumes" },
    { "volume.list", "GET", "/volumes?name=m1.qcow2", NULL, DV_STEP_ADMIN, 0, "m1_vol=items.0.id" },
    { "volume.get", "GET", "/volumes/{m1_vol}" },
    { "volume.create", "POST", "/volumes",
      "{\"pool\":\"pool1\",\"host\":\"h1\",\"name\":\"oa-v1.qcow2\",\"size\":1048576}" },
    { "volume.list", "GET", "/volumes?name=oa-v1.qcow2", NULL, DV_STEP_ADMIN, 0,
      "oa_vol=items.0.id" },
    { "volume.resize", "POST", "/volumes/{oa_vol}/resize", "{\"size\":2097152}" },
    { "volume.delete", "DELETE", "/volumes/{oa_vol}" },
    { "volume.upload", "POST", "/storage-pools/pool1/volumes?name=oa-up.iso", NULL,
      DV_STEP_UPLOAD },
    { "pool.delete", "DELETE", "/storage-pools/oa-p1" },
    { "network.list", "GET", "/networks" },
    { "network.get", "GET", "/networks/net1" },
    { "network.create", "POST", "/networks",
      "{\"name\":\"oa-n1\",\"host\":\"h1\",\"forward\":\"isolated\",\"address\":\"10.99.1.1/"
      "24\"}" },
    { "network.stop", "POST", "/networks/oa-n1/stop" },
    { "network.start", "POST", "/networks/oa-n1/start" },
    { "network.change", "PATCH", "/networks/oa-n1", "{\"autostart\":false}" },
    { "network.delete", "DELETE", "/networks/oa-n1" },
    { "library_share.create", "POST", "/library-shares",
      "{\"name\":\"oa-ls\",\"path\":\"{state}/library/oa-ls\"}" },
    { "library_share.list", "GET", "/library-shares" },
    { "library_share.get", "GET", "/library-shares/oa-ls" },
    /* uploads go through a host: a share on h1's pool (test:/// fails the job) */
    { "library_share.create", "POST", "/library-shares",
      "{\"name\":\"oa-ls2\",\"host\":\"h1\",\"pool\":\"pool1\"}" },
    { "library_share.upload", "POST", "/library-shares/oa-ls2/files?name=oa.iso", NULL,
      DV_STEP_UPLOAD },
    { "library_share.delete", "DELETE", "/library-shares/oa-ls2" },
    { "template.create", "POST", "/templates",
      "{\"name\":\"oa-t1\",\"vcpus\":1,\"memory_mib\":64}" },
    { "template.list", "GET", "/templates" },
    { "template.get", "GET", "/templates/oa-t1" },
    { "template.delete", "DELETE", "/templates/oa-t1" },
    { "vm.create", "POST", "/vms",
      "{\"name\":\"oa-vm1\",\"host\":\"h1\",\"vcpus\":1,\"memory_mib\":64}" },
    { "vm.list", "GET", "/vms" },
    { "vm.get", "GET", "/vms/m1" },
    { "vm.console.ticket", "POST", "/vms/m1/console-tickets" },
    /* test:/// opens no console: the handshake is refused as documented
     * (422); api-console-system upgrades it on the real libvirtd */
    { "vm.console", "GET", "/vms/m1/console?type=serial", NULL, DV_STEP_WEBSOCKET, 422 },
    { "vm.stop", "POST", "/vms/m1/stop" },
    { "vm.start", "POST", "/vms/m1/start" },
    { "vm.reboot", "POST", "/vms/m1/reboot" },
    { "vm.reset", "POST", "/vms/m1/reset" },
    { "vm.shutdown", "POST", "/vms/m1/shutdown", "{\"timeout\":30}" },
    { "vm.change", "PATCH", "/vms/m2", "{\"description\":\"changed\"}" },
    { "vm.stop", "POST", "/vms/m0/stop" },
    { "vm.snapshot.create", "POST", "/vms/m0/snapshots", "{\"name\":\"s1\"}" },
    { "vm.snapshot.list", "GET", "/vms/m0/snapshots" },
    { "vm.snapshot.create", "POST", "/vms/m2/snapshots", "{\"name\":\"oa-s2\"}" },
    { "vm.snapshot.revert", "POST", "/vms/m2/snapshots/oa-s2/revert" },
    { "vm.snapshot.delete", "DELETE", "/vms/m2/snapshots/oa-s2" },
    { "vm.clone", "POST", "/vms/m0/clone", "{\"name\":\"oa-clone\",\"pool\":\"pool1\"}" },
    /* h1 is alone in its group: no candidate (target null), and a move is
     * refused before anything starts. */
    { "vm.migrate.preflight", "GET", "/vms/m2/migrate/preflight" },
    { "vm.migrate", "POST", "/vms/m2/migrate", "{\"timeout_s\":60}", DV_STEP_ADMIN, 409 },
    { "vm.disk.add", "POST", "/vms/oa-vm1/disks", "{\"size\":1048576,\"pool\":\"pool1\"}" },
    /* test:/// attaches nothing: remove what m2 has */
    { "vm.disk.remove", "DELETE", "/vms/m2/disks/vda" },
    { "vm.nic.add", "POST", "/vms/oa-vm1/nics",
      "{\"network\":\"net1\",\"mac\":\"52:54:00:0a:0a:01\"}" },
    { "vm.get", "GET", "/vms/m2", NULL, DV_STEP_ADMIN, 0, "m2_mac=spec.networks.0.mac" },
    { "vm.nic.remove", "DELETE", "/vms/m2/nics/{m2_mac}" },
    { "vm.cdrom", "POST", "/vms/oa-vm1/cdrom", "{\"eject\":true}" },
    { "vm.delete", "DELETE", "/vms/oa-vm1" },
    { "run_as.create", "POST", "/run-as-accounts",
      "{\"name\":\"oa-ra\",\"username\":\"oa\",\"password\":\"oa-secret-1\"}" },
    { "run_as.list", "GET", "/run-as-accounts" },
    { "run_as.get", "GET", "/run-as-accounts/oa-ra" },
    { "run_as.change", "PATCH", "/run-as-accounts/oa-ra", "{\"description\":\"account\"}" },
    { "run_as.delete", "DELETE", "/run-as-accounts/oa-ra" },
    { "guest_os_profile.create", "POST", "/guest-os-profiles", "{\"name\":\"oa-gp\"}" },
    { "guest_os_profile.list", "GET", "/guest-os-profiles" },
    { "guest_os_profile.get", "GET", "/guest-os-profiles/oa-gp" },
    { "guest_os_profile.change", "PATCH", "/guest-os-profiles/oa-gp",
      "{\"description\":\"profile\"}" },
    { "guest_os_profile.delete", "DELETE", "/guest-os-profiles/oa-gp" },
    { "setting.create", "POST", "/settings",
      "{\"scope\":\"deployment\",\"name\":\"oa-key\",\"value\":\"v1\"}" },
    { "setting.list", "GET", "/settings" },
    { "setting.get", "GET", "/settings/oa-key" },
    { "setting.change", "PATCH", "/settings/oa-key", "{\"value\":\"v2\"}" },
    { "setting.delete", "DELETE", "/settings/oa-key" },
    { "catalog.create", "POST", "/catalogs",
      "{\"name\":\"oa-cat\",\"master_vm\":\"m0\",\"master_snapshot\":\"s1\",\"hosts\":[\"h1\"],"
      "\"pool\":\"pool1\",\"naming_scheme\":\"oa-d-##\",\"count\":2,\"machine\":{\"memory_mib\":64}"
      "}" },
    { "catalog.list", "GET", "/catalogs" },
    { "catalog.get", "GET", "/catalogs/oa-cat" },
    { "catalog.machines", "GET", "/catalogs/oa-cat/machines" },
    { "catalog.provision", "POST", "/catalogs/oa-cat/provision" },
    { "catalog.add-machines", "POST", "/catalogs/oa-cat/machines", "{\"count\":1}" },
    { "catalog.reconcile", "GET", "/catalogs/oa-cat/reconcile" },
    { "catalog.reconcile-submit", "POST", "/catalogs/oa-cat/reconcile" },
    { "catalog.images", "GET", "/catalogs/oa-cat/images" },
    { "vm.snapshot.create", "POST", "/vms/m0/snapshots", "{\"name\":\"s3\"}" },
    { "catalog.update-image", "POST", "/catalogs/oa-cat/images",
      "{\"master_vm\":\"m0\",\"master_snapshot\":\"s3\"}" },
    { "catalog.rollback", "POST", "/catalogs/oa-cat/rollback" },
    { "catalog.rebuild", "POST", "/catalogs/oa-cat/rebuild", "{\"all\":true}" },
    { "catalog.power", "POST", "/catalogs/oa-cat/power", "{\"action\":\"start\"}" },
    /* test:/// cannot upload the identity disk: the machine has none */
    { "catalog-machine.identity", "GET", "/catalog-machines/oa-d-01/identity", NULL, DV_STEP_ADMIN,
      409 },
    { "catalog.remove-machines", "POST", "/catalogs/oa-cat/remove-machines",
      "{\"count\":1,\"force\":true}" },
    { "catalog.delete", "DELETE", "/catalogs/oa-cat" },
    { "library_share.delete", "DELETE", "/library-shares/oa-ls" },
    { "job.list", "GET", "/jobs", NULL, DV_STEP_ADMIN, 0, "last_job=items.0.id" },
    { "job.get", "GET", "/jobs/{last_job}" },
    { "job.events", "GET", "/jobs/{last_job}/events", NULL, DV_STEP_EVENTS },
    { NULL, "POST", "/debug/sleep", "{\"seconds\":30}", DV_STEP_ADMIN, 0, "sleep_job=job.id" },
    { "job.cancel", "POST", "/jobs/{sleep_job}/cancel" },
    { "privilege.list", "GET", "/privileges" },
    { "role.create", "POST", "/roles", "{\"name\":\"oa-role\",\"privileges\":[\"vm.read\"]}" },
    { "role.list", "GET", "/roles" },
    { "role.get", "GET", "/roles/oa-role" },
    { "user.create", "POST", "/users", "{\"name\":\"oa-u1\",\"password\":\"" DV_CONTRACT_PW "\"}" },
    { "user.list", "GET", "/users" },
    { "user.get", "GET", "/users/oa-u1" },
    { "user.change", "PATCH", "/users/oa-u1", "{\"disabled\":false}" },
    { "binding.create", "POST", "/bindings",
      "{\"user\":\"oa-u1\",\"role\":\"oa-role\",\"scope\":{\"kind\":\"host_group\",\"ref\":\"oa-"
      "g1\"}}",
      DV_STEP_ADMIN, 0, "binding=id" },
    { "binding.list", "GET", "/bindings?user=oa-u1" },
    { "binding.delete", "DELETE", "/bindings/{binding}" },
    { "token.create", "POST", "/tokens", "{\"name\":\"oa-tok\",\"expires_in_days\":1}",
      DV_STEP_ADMIN, 0, "token=id" },
    { "token.list", "GET", "/tokens" },
    { "token.delete", "DELETE", "/tokens/{token}" },
    { "session.login", "POST", "/session",
      "{\"user\":\"oa-u1\",\"password\":\"" DV_CONTRACT_PW "\"}", DV_STEP_ANON, 0,
      "user_token=token" },
    { "session.get", "GET", "/session" },
    /* Refusals answer the documented error body; a 400 names its field. */
    { "vm.create", "POST", "/vms",
      "{\"name\":\"oa-bad\",\"host\":\"h1\",\"vcpus\":0,\"memory_mib\":64}", DV_STEP_ADMIN, 400 },
    { "host_group.create", "POST", "/host-groups", "{\"name\":\"oa-x\",\"bogus\":1}", DV_STEP_ADMIN,
      400 },
    { "vm.list", "GET", "/vms", NULL, DV_STEP_ANON, 401 },
    { "user.list", "GET", "/users", NULL, DV_STEP_USER, 403 },
    { "vm.get", "GET", "/vms/oa-none", NULL, DV_STEP_ADMIN, 404 },
    { "role.create", "POST", "/roles", "{\"name\":\"oa-role\",\"privileges\":[\"vm.read\"]}",
      DV_STEP_ADMIN, 409 },
    { "session.password", "POST", "/session/password",
      "{\"current_password\":\"" DV_CONTRACT_PW "\",\"new_password\":\"" DV_CONTRACT_PW2 "\"}",
      DV_STEP_USER },
    { "session.list", "GET", "/sessions?user=oa-u1", NULL, DV_STEP_ADMIN, 0, "session=items.0.id" },
    { "session.logout", "DELETE", "/session", NULL, DV_STEP_USER },
    { "session.login", "POST", "/session",
      "{\"user\":\"oa-u1\",\"password\":\"" DV_CONTRACT_PW2 "\"}", DV_STEP_ANON, 0,
      "user_token=token" },
    { "session.list", "GET", "/sessions?user=oa-u1", NULL, DV_STEP_ADMIN, 0, "session=items.0.id" },
    { "session.delete", "DELETE", "/sessions/{session}" },
    { "user.delete", "DELETE", "/users/oa-u1" },
    { "role.delete", "DELETE", "/roles/oa-role" },
    { "audit.list", "GET", "/audit" },
    { "cluster.delete", "DELETE", "/clusters/oa-c1" },
    { "host.delete", "DELETE", "/hosts/h1" },
    { "host_group.delete", "DELETE", "/host-groups/oa-g1" },
};

/* {var}s of @text replaced from @vars (a missing one fails the test). */
static char *
dv_contract_expand(const char *text, GHashTable *vars)
{
    GString *out = g_string_new(NULL);
    const char *p = text;
    while (*p != '\0') {
        const char *close = p[0] == '{' ? strchr(p, '}') : NULL;
        if (close != NULL && close - p > 1 &&
            strspn(p + 1, "abcdefghijklmnopqrstuvwxyz0123456789_") == (gsize)(close - p - 1)) {
            g_autofree char *name = g_strndup(p + 1, close - p - 1);
            const char *value = g_hash_table_lookup(vars, name);
            if (value == NULL)
                g_error("contract step uses {%s} before it was saved: %s", name, text);
            g_string_append(out, value);
            p = close + 1;
        } else {
            g_string_append_c(out, *p++);
        }
    }
    return g_string_free(out, FALSE);
}

/* The member at @path ("items.0.id") of @node as a string, or NULL. */
static char *
dv_contract_member(JsonNode *node, const char *path)
{
    g_auto(GStrv) parts = g_strsplit(path, ".", -1);
    for (guint i = 0; parts[i] != NULL && node != NULL; i++) {
        if (JSON_NODE_HOLDS_OBJECT(node)) {
            JsonObject *o = json_node_get_object(node);
            node = json_object_has_member(o, parts[i]) ? json_object_get_member(o, parts[i]) : NULL;
        } else if (JSON_NODE_HOLDS_ARRAY(node)) {
            JsonArray *a = json_node_get_array(node);
            guint64 k = g_ascii_strtoull(parts[i], NULL, 10);
            node = k < json_array_get_length(a) ? json_array_get_element(a, (guint)k) : NULL;
        } else {
            node = NULL;
        }
    }
    if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
        json_node_get_value_type(node) != G_TYPE_STRING)
        return NULL;
    return g_strdup(json_node_get_string(node));
}

typedef struct {
    gboolean done;
    SoupWebsocketConnection *ws;
    GError *error;
} DvWsConnecting;

static void
dv_contract_ws_connected(GObject *source, GAsyncResult *res, gpointer user_data)
{
    DvWsConnecting *c = user_data;
    c->ws = soup_session_websocket_connect_finish(SOUP_SESSION(source), res, &c->error);
    c->done = TRUE;
}

/* The handshake's status (101 when upgraded); the connection is closed. */
static guint
dv_contract_websocket(DvTestDaemon *d, const char *url)
{
    g_autofree char *http = g_strconcat(d->url, url, NULL);
    g_autofree char *ws_url = g_strconcat("ws", http + strlen("http"), NULL);
    g_autoptr(SoupMessage) msg = soup_message_new("GET", ws_url);
    g_autoptr(SoupSession) session = soup_session_new();
    g_autofree char *auth = g_strdup_printf("Bearer %s", d->token);
    DvWsConnecting c = { 0 };
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

    soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization", auth);
    soup_session_websocket_connect_async(session, msg, NULL, NULL, G_PRIORITY_DEFAULT, NULL,
                                         dv_contract_ws_connected, &c);
    while (!c.done)
        g_main_context_iteration(NULL, TRUE);
    if (c.ws == NULL) {
        g_test_message("%s: %u (%s)", url, soup_message_get_status(msg), c.error->message);
        g_clear_error(&c.error);
        return soup_message_get_status(msg);
    }
    soup_websocket_connection_close(c.ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
    while (soup_websocket_connection_get_state(c.ws) != SOUP_WEBSOCKET_STATE_CLOSED &&
           g_get_monotonic_time() < deadline)
        g_main_context_iteration(NULL, FALSE);
    g_object_unref(c.ws);
    return SOUP_STATUS_SWITCHING_PROTOCOLS;
}

static JsonNode *
dv_contract_send(DvTestDaemon *d, const DvStep *s, const char *url, const char *body,
                 GHashTable *vars, guint *ret_status)
{
    switch (s->how) {
    case DV_STEP_ANON:
        return dv_test_request_anon(d, s->method, url, body, ret_status);
    case DV_STEP_USER:
        return dv_test_request_as(d, g_hash_table_lookup(vars, "user_token"), s->method, url, body,
                                  ret_status);
    case DV_STEP_UPLOAD: {
        g_autoptr(GBytes) bytes = g_bytes_new_static("contract upload\n", 16);
        return dv_test_request_bytes(d, s->method, url, bytes, ret_status);
    }
    case DV_STEP_EVENTS: {
        /* /api/v1/jobs/ID/events */
        g_auto(GStrv) parts = g_strsplit(url, "/", -1);
        g_autoptr(GPtrArray) events = dv_test_job_events(d, d->token, parts[4], ret_status);
        g_assert_nonnull(events);
        return NULL;
    }
    case DV_STEP_WEBSOCKET:
        *ret_status = dv_contract_websocket(d, url);
        return NULL;
    case DV_STEP_ADMIN:
    default:
        return dv_test_request(d, s->method, url, body, ret_status);
    }
}

static char *
dv_contract_source_path(const char *rel)
{
    return g_build_filename(g_test_get_dir(G_TEST_DIST), "..", rel, NULL);
}

static void
test_served(gconstpointer data)
{
    const char *backend = data;
    g_autofree char *pg_db = NULL;
    g_autoptr(DvTestDaemon) d = dv_test_daemon_start_on(backend, "dv_oa", &pg_db);
    g_autofree char *path = dv_contract_source_path("docs/openapi.json");
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) error = NULL;
    guint status = 0;
    g_autoptr(JsonNode) served =
        dv_test_request_anon(d, "GET", "/api/v1/openapi.json", NULL, &status);

    g_assert_cmpuint(status, ==, 200);
    g_assert_nonnull(served);
    json_parser_load_from_file(parser, path, &error);
    g_assert_no_error(error);
    if (!json_node_equal(served, json_parser_get_root(parser))) {
        g_autofree char *text = dv_json_node_to_string(served, TRUE);
        g_autofree char *keep =
            g_build_filename(g_get_tmp_dir(), "drover-served-openapi.json", NULL);
        if (g_file_set_contents(keep, text, -1, NULL))
            g_test_message("served document kept in %s", keep);
        g_error("GET /api/v1/openapi.json differs from docs/openapi.json: regenerate it with "
                "tools/check-openapi --write and review the diff");
    }
    dv_test_daemon_free(g_steal_pointer(&d));
    if (pg_db != NULL)
        dv_test_pg_drop_database(pg_db);
}

static void
test_contract(gconstpointer data)
{
    const char *backend = data;
    g_autofree char *pg_db = NULL;
    g_autoptr(DvTestDaemon) d = dv_test_daemon_start_on(backend, "dv_oa", &pg_db);
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("drover-oa-XXXXXX", &error);
    g_autoptr(GHashTable) vars = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(JsonArray) records = json_array_new();
    g_autoptr(JsonObject) top = json_object_new();
    g_autofree char *xml = NULL;
    g_autofree char *records_path = NULL;
    g_autofree char *text = NULL;
    g_autofree char *doc = dv_contract_source_path("docs/openapi.json");
    g_autofree char *script = dv_contract_source_path("tests/api/openapi-contract.py");
    g_autofree char *out = NULL;
    g_autoptr(GSubprocess) proc = NULL;

    g_assert_no_error(error);
    xml = dv_test_write_host_xml(dir, "h1.xml", "m", 3);
    g_hash_table_insert(vars, g_strdup("dir"), g_strdup(dir));
    g_hash_table_insert(vars, g_strdup("state"), g_strdup(d->state_dir));

    for (guint i = 0; i < G_N_ELEMENTS(dv_contract_steps); i++) {
        const DvStep *s = &dv_contract_steps[i];
        g_autofree char *rel = dv_contract_expand(s->path, vars);
        g_autofree char *url = g_strconcat("/api/v1", rel, NULL);
        g_autofree char *body = s->body != NULL ? dv_contract_expand(s->body, vars) : NULL;
        g_autoptr(JsonNode) resp = NULL;
        JsonObject *rec;
        guint status = 0;

        resp = dv_contract_send(d, s, url, body, vars, &status);
        if (s->op != NULL) {
            rec = json_object_new();
            json_object_set_string_member(rec, "op", s->op);
            json_object_set_string_member(rec, "method", s->method);
            json_object_set_string_member(rec, "path", rel);
            json_object_set_int_member(rec, "status", status);
            json_object_set_int_member(rec, "want", s->want);
            json_object_set_boolean_member(rec, "stream", s->how == DV_STEP_EVENTS);
            json_object_set_boolean_member(rec, "websocket", s->how == DV_STEP_WEBSOCKET);
            json_object_set_boolean_member(rec, "text", s->how == DV_STEP_TEXT);
            if (body != NULL) {
                g_autoptr(JsonParser) parser = json_parser_new();
                g_assert_true(json_parser_load_from_data(parser, body, -1, NULL));
                json_object_set_member(rec, "request",
                                       json_node_copy(json_parser_get_root(parser)));
            }
            if (resp != NULL)
                json_object_set_member(rec, "body", json_node_copy(resp));
            else
                json_object_set_null_member(rec, "body");
            json_array_add_object_element(records, rec);
        }
        if (s->save != NULL) {
            g_auto(GStrv) kv = g_strsplit(s->save, "=", 2);
            char *value = dv_contract_member(resp, kv[1]);
            if (value == NULL) {
                g_autofree char *t =
                    resp != NULL ? dv_json_node_to_string(resp, FALSE) : g_strdup("-");
                g_error("%s %s: %u, no %s in %s", s->method, rel, status, kv[1], t);
            }
            g_hash_table_insert(vars, g_strdup(kv[0]), value);
        }
        if (status == 202 && resp != NULL) {
            g_autofree char *job_id = dv_contract_member(resp, "job.id");
            g_autoptr(JsonObject) job = NULL;
            g_assert_nonnull(job_id);
            if (s->op != NULL) {
                job = dv_test_wait_job(d, job_id, 120);
                g_test_message("%s %s: job %s %s", s->method, rel,
                               dv_json_get_string(job, "state", "?"),
                               dv_json_get_string(dv_json_get_object(job, "error"), "message", ""));
            }
        }
    }

    json_object_set_array_member(top, "records", json_array_ref(records));
    text = dv_json_object_to_string(top, TRUE);
    records_path = g_build_filename(dir, "records.json", NULL);
    g_assert_true(g_file_set_contents(records_path, text, -1, &error));
    g_assert_no_error(error);
    proc = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE,
                            &error, "python3", script, doc, records_path, NULL);
    g_assert_no_error(error);
    g_assert_true(g_subprocess_communicate_utf8(proc, NULL, NULL, &out, NULL, &error));
    g_assert_no_error(error);
    g_test_message("%s", out);
    if (!g_subprocess_get_if_exited(proc) || g_subprocess_get_exit_status(proc) != 0)
        g_error("responses on %s do not match docs/openapi.json:\n%s", backend, out);

    dv_test_daemon_free(g_steal_pointer(&d));
    dv_test_rm_rf(dir);
    if (pg_db != NULL)
        dv_test_pg_drop_database(pg_db);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_data_func("/drover/api/openapi/sqlite/served", "sqlite", test_served);
    g_test_add_data_func("/drover/api/openapi/sqlite/contract", "sqlite", test_contract);
    g_test_add_data_func("/drover/api/openapi/postgresql/served", "postgresql", test_served);
    g_test_add_data_func("/drover/api/openapi/postgresql/contract", "postgresql", test_contract);
    return g_test_run();
}
