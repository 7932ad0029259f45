/* Access control end to end (issue 11, docs/ACCESS.md): a real droverd on
 * SQLite and on PostgreSQL, users made through the API, each built-in role
 * logged in.
 *
 * /drover/api/access/{sqlite,postgresql}/matrix: the authorization matrix,
 * generated from the operation table (droverd --dump-ops): every operation
 * x every built-in role (the global administrator, and an administrator, a
 * delegated, a read-only and a tenant administrator and a self-service user
 * bound to host group "In") x {an object in scope, out of scope, the
 * principal's own object}.  Every operation needs a row of dv_matrix_rows
 * (tools/check-ops checks it too).  A row gives the path and body with
 * placeholders ({vm}, {catalog}...: dv_matrix_places gives their "in" and
 * "out" objects; "own" is the VM the principal made and the job that made
 * it) and one letter per principal and column:
 *   A allowed: the op's own rules then refuse "matrix" with 400 (a read
 *     may answer 200), so an allowed change changes nothing, which the
 *     test checks by counting objects before and after;
 *   3 refused, 403 naming the privilege, 4 refused as absent, 404;
 *   N 404 from the handler: authorized, and the object (no upgrade report
 *     in a fresh database) does not exist;
 *   S not sent (tested apart).
 * The own column is NULL for the kinds with no owner (all but VMs and
 * jobs): it would repeat "in".  The fixture holds real objects of every
 * kind: catalogs and Run As accounts are scopes of their own, so each
 * principal also holds its role over catin and rin; library share lin is
 * on host hin, so In covers it and its template (lout is of the library
 * root, under no group); the share's own scope is checked apart
 * (matrix_direct_share). */
#define G_LOG_DOMAIN "DvTestApiAccess"

#include "dv-json.h"
#include "dv-test-pg.h"
#include "dv-test-util.h"

#include <string.h>

#define PW "matrix-password-1"

/* The principals of the matrix, in the order of every expectation string:
 * the global administrator, then one user of each built-in role bound to
 * host group "In" and, with the same role, to the catalog and Run As
 * account of "In" (catin, rin): those kinds are scopes of their own and
 * inherit nothing from a host group. */
static const struct {
    const char *name;
    const char *role;
} dv_matrix_principals[] = {
    { "admin", NULL },
    { "adm-in", "administrator" },
    { "del-in", "delegated-administrator" },
    { "ro-in", "read-only-administrator" },
    { "ten-in", "tenant-administrator" },
    { "ss-in", "self-service-user" },
};
#define DV_MATRIX_N_PRINCIPALS G_N_ELEMENTS(dv_matrix_principals)

/* A placeholder of a row's path or body and its value in the "in" and
 * "out" columns; the "own" column takes the "in" value but for {vm} and
 * {job}, which name the requesting principal's own VM and the job that
 * made it.  Values in braces are looked up in the fixture's table. */
static const struct {
    const char *key;
    const char *in;
    const char *out;
} dv_matrix_places[] = {
    { "{hg}", "In", "Out" },
    { "{cluster}", "cin", "cout" },
    { "{host}", "hin", "hout" },
    { "{pool}", "{pool_in}", "{pool_out}" },
    { "{volume}", "{volume_in}", "{volume_out}" },
    { "{network}", "{network_in}", "{network_out}" },
    { "{share}", "lin", "lout" },
    { "{template}", "tin", "tout" },
    { "{vm}", "vin0", "vout0" },
    { "{job}", "{job_in}", "{job_out}" },
    { "{run_as}", "rin", "rout" },
    /* Guest OS profiles and settings are installation-wide: both
     * columns name the same object. */
    { "{profile}", "gp", "gp" },
    { "{setting}", "{setting}", "{setting}" },
    { "{catalog}", "catin", "catout" },
    { "{machine}", "din-1", "dout-1" },
};

typedef struct {
    const char *name;
    const char *path; /* under /api/v1, with placeholders */
    const char *body; /* the same */
    /* One letter per principal (dv_matrix_principals) for the object in
     * "In", in "Out", and the principal's own object in "In": NULL when
     * the kind has no owner (the column would repeat "in"). */
    const char *in;
    const char *out;
    const char *own;
} DvMatrixRow;

#define M "{\"matrix\":1}"

/* Derived from the model's rules (docs/ACCESS.md, "Roles" and "The actor
 * and the decision") and reviewed by hand; a new operation fails the test
 * until it has a row.  Each string's letters, in order: global admin,
 * administrator, delegated, read-only and tenant administrator and
 * self-service user (admin adm-in del-in ro-in ten-in ss-in). */
static const DvMatrixRow dv_matrix_rows[] = {
    { "host_group.list", "/host-groups", NULL, "AAAAA3", "AAAAA3", NULL },
    { "host_group.create", "/host-groups", "{\"parent\":\"{hg}\",\"matrix\":1}", "AAA334", "A44444",
      NULL },
    { "host_group.get", "/host-groups/{hg}", NULL, "AAAAA4", "A44444", NULL },
    { "host_group.change", "/host-groups/{hg}", M, "AAA334", "A44444", NULL },
    { "host_group.delete", "/host-groups/{hg}", M, "AAA334", "A44444", NULL },
    { "cluster.list", "/clusters", NULL, "AAAAA3", "AAAAA3", NULL },
    { "cluster.create", "/clusters", "{\"host_group\":\"{hg}\",\"matrix\":1}", "AAA334", "A44444",
      NULL },
    { "cluster.get", "/clusters/{cluster}", NULL, "AAAAA4", "A44444", NULL },
    { "cluster.change", "/clusters/{cluster}", M, "AAA334", "A44444", NULL },
    { "cluster.delete", "/clusters/{cluster}", M, "AAA334", "A44444", NULL },
    { "host.list", "/hosts", NULL, "AAAAA3", "AAAAA3", NULL },
    { "host.create", "/hosts", "{\"host_group\":\"{hg}\",\"matrix\":1}", "AAA334", "A44444", NULL },
    { "host.get", "/hosts/{host}", NULL, "AAAAA4", "A44444", NULL },
    { "host.change", "/hosts/{host}", M, "AAA334", "A44444", NULL },
    { "host.delete", "/hosts/{host}", M, "AAA334", "A44444", NULL },
    { "host.refresh", "/hosts/{host}/refresh", M, "AAA334", "A44444", NULL },
    /* Pools and volumes: no tenant or self-service read (not even 403). */
    { "pool.list", "/storage-pools", NULL, "AAAA33", "AAAA33", NULL },
    { "pool.get", "/storage-pools/{pool}", NULL, "AAAA44", "A44444", NULL },
    { "pool.volumes", "/storage-pools/{pool}/volumes", NULL, "AAAA44", "A44444", NULL },
    { "volume.list", "/volumes", NULL, "AAAA33", "AAAA33", NULL },
    { "volume.get", "/volumes/{volume}", NULL, "AAAA44", "A44444", NULL },
    { "network.list", "/networks", NULL, "AAAAAA", "AAAAAA", NULL },
    { "network.get", "/networks/{network}", NULL, "AAAAAA", "A44444", NULL },
    /* Networks and pools made through Drover (issue 12 item 7): made on a
     * host in scope; a tenant and a self-service user read networks
     * (403) but no pools (404). */
    { "network.create", "/networks", "{\"host\":\"{host}\",\"matrix\":1}", "AAA333", "A44444", NULL },
    { "network.start", "/networks/{network}/start", M, "AAA333", "A44444", NULL },
    { "network.stop", "/networks/{network}/stop", M, "AAA333", "A44444", NULL },
    { "network.change", "/networks/{network}", M, "AAA333", "A44444", NULL },
    { "network.delete", "/networks/{network}", M, "AAA333", "A44444", NULL },
    { "pool.create", "/storage-pools", "{\"host\":\"{host}\",\"matrix\":1}", "AAA344", "A44444", NULL },
    { "pool.start", "/storage-pools/{pool}/start", M, "AAA344", "A44444", NULL },
    { "pool.stop", "/storage-pools/{pool}/stop", M, "AAA344", "A44444", NULL },
    { "pool.change", "/storage-pools/{pool}", M, "AAA344", "A44444", NULL },
    { "pool.delete", "/storage-pools/{pool}", M, "AAA344", "A44444", NULL },
    /* A share is under its host's group: lin is on hin, lout on no host
     * (of the library root) and bound to nobody. */
    { "library_share.list", "/library-shares", NULL, "AAAAA3", "AAAAA3", NULL },
    { "library_share.create", "/library-shares", "{\"host\":\"{host}\",\"matrix\":1}", "AAA334",
      "A44444", NULL },
    { "library_share.get", "/library-shares/{share}", NULL, "AAAAA4", "A44444", NULL },
    { "library_share.delete", "/library-shares/{share}", M, "AAA334", "A44444", NULL },
    /* Templates live in a share and inherit its scope: a self-service
     * user of In reads lin's (to make a VM from one). */
    { "template.list", "/templates", NULL, "AAAAAA", "AAAAAA", NULL },
    { "template.create", "/templates", "{\"library_share\":\"{share}\",\"matrix\":1}", "AAA333",
      "A44444", NULL },
    { "template.get", "/templates/{template}", NULL, "AAAAAA", "A44444", NULL },
    { "template.delete", "/templates/{template}", M, "AAA333", "A44444", NULL },
    /* VMs and jobs have owners: a self-service user acts on its own only. */
    { "vm.list", "/vms", NULL, "AAAAAA", "AAAAAA", NULL },
    { "vm.create", "/vms", "{\"host\":\"{host}\",\"matrix\":1}", "AAA3AA", "A44444", NULL },
    { "vm.get", "/vms/{vm}", NULL, "AAAAA4", "A44444", "AAAAAA" },
    { "vm.delete", "/vms/{vm}", M, "AAA3A4", "A44444", "AAA3AA" },
    { "vm.start", "/vms/{vm}/start", M, "AAA3A4", "A44444", "AAA3AA" },
    { "vm.shutdown", "/vms/{vm}/shutdown", M, "AAA3A4", "A44444", "AAA3AA" },
    { "vm.stop", "/vms/{vm}/stop", M, "AAA3A4", "A44444", "AAA3AA" },
    { "vm.reboot", "/vms/{vm}/reboot", M, "AAA3A4", "A44444", "AAA3AA" },
    { "vm.reset", "/vms/{vm}/reset", M, "AAA3A4", "A44444", "AAA3AA" },
    { "vm.change", "/vms/{vm}", M, "AAA3A4", "A44444", "AAA3AA" },
    { "vm.snapshot.list", "/vms/{vm}/snapshots", NULL, "AAAAA4", "A44444", "AAAAAA" },
    { "vm.snapshot.create", "/vms/{vm}/snapshots", M, "AAA3A4", "A44444", "AAA3AA" },
    { "vm.snapshot.delete", "/vms/{vm}/snapshots/nosnap", M, "AAA3A4", "A44444", "AAA3AA" },
    { "vm.snapshot.revert", "/vms/{vm}/snapshots/nosnap/revert", M, "AAA3A4", "A44444", "AAA3AA" },
    /* Volumes made, grown, deleted (volume.*: no tenant or self-service
     * read, so 404), and a VM's disks (vm.change, as PATCH /vms). */
    { "volume.create", "/volumes", "{\"pool\":\"{pool}\",\"matrix\":1}", "AAA344", "A44444",
      NULL },
    { "volume.resize", "/volumes/{volume}/resize", M, "AAA344", "A44444", NULL },
    { "volume.delete", "/volumes/{volume}", M, "AAA344", "A44444", NULL },
    { "vm.disk.add", "/vms/{vm}/disks", M, "AAA3A4", "A44444", "AAA3AA" },
    { "vm.disk.remove", "/vms/{vm}/disks/vdz", M, "AAA3A4", "A44444", "AAA3AA" },
    /* Installation media (issue 12, item 2). */
    { "vm.cdrom", "/vms/{vm}/cdrom", M, "AAA3A4", "A44444", "AAA3AA" },
    /* Uploads: the body is streamed; without ?name= the op refuses (400). */
    { "library_share.upload", "/library-shares/{share}/files", M, "AAA334", "A44444", NULL },
    { "volume.upload", "/storage-pools/{pool}/volumes", M, "AAA344", "A44444", NULL },
    /* Clone (issue 12): vm.create checked on the source VM. */
    { "vm.clone", "/vms/{vm}/clone", M, "AAA3A4", "A44444", "AAA3AA" },
    /* Live migration (issue 14): vm.migrate, the administrators' only
     * (tenant and self-service roles exclude it: 403 where they see the
     * VM). */
    { "vm.migrate", "/vms/{vm}/migrate", M, "AAA334", "A44444", "AAA333" },
    { "vm.migrate.preflight", "/vms/{vm}/migrate/preflight?matrix=1", NULL, "AAA334", "A44444",
      "AAA333" },
    /* A VM's network interfaces (issue 12, item 4): vm.change, as its
     * disks; "nomac" is refused (400) once authorized. */
    { "vm.nic.add", "/vms/{vm}/nics", M, "AAA3A4", "A44444", "AAA3AA" },
    { "vm.nic.remove", "/vms/{vm}/nics/nomac", M, "AAA3A4", "A44444", "AAA3AA" },
    /* Consoles (issue 12, item 3): the WebSocket route answers its unknown
     * query parameter with 400 once authorized; the ticket its body. */
    { "vm.console", "/vms/{vm}/console?matrix=1", NULL, "AAA3A4", "A44444", "AAA3AA" },
    { "vm.console.ticket", "/vms/{vm}/console-tickets", M, "AAA3A4", "A44444", "AAA3AA" },
    { "job.list", "/jobs", NULL, "AAAAAA", "AAAAAA", NULL },
    { "job.get", "/jobs/{job}", NULL, "AAAAA4", "A44444", "AAAAAA" },
    { "job.cancel", "/jobs/{job}/cancel", M, "AAA3A4", "A44444", "AAA3AA" },
    { "job.events", "/jobs/{job}/events", NULL, "AAAAA4", "A44444", "AAAAAA" },
    /* Run As accounts: rin is bound, rout is not; made globally only. */
    { "run_as.list", "/run-as-accounts", NULL, "AAAAA3", "AAAAA3", NULL },
    { "run_as.create", "/run-as-accounts", M, "A33333", "A33333", NULL },
    { "run_as.get", "/run-as-accounts/{run_as}", NULL, "AAAAA4", "A44444", NULL },
    { "run_as.change", "/run-as-accounts/{run_as}", M, "AAA334", "A44444", NULL },
    { "run_as.delete", "/run-as-accounts/{run_as}", M, "AAA334", "A44444", NULL },
    /* Guest OS profiles: read by whoever holds guest_os_profile.read in
     * some scope; made, changed, deleted under a global binding only. */
    { "guest_os_profile.list", "/guest-os-profiles", NULL, "AAAAAA", "AAAAAA", NULL },
    { "guest_os_profile.create", "/guest-os-profiles", M, "A33333", "A33333", NULL },
    { "guest_os_profile.get", "/guest-os-profiles/{profile}", NULL, "AAAAAA", "AAAAAA", NULL },
    { "guest_os_profile.change", "/guest-os-profiles/{profile}", M, "A33333", "A33333", NULL },
    { "guest_os_profile.delete", "/guest-os-profiles/{profile}", M, "A33333", "A33333", NULL },
    /* Settings are installation-wide: 403 below a global binding. */
    { "setting.list", "/settings", NULL, "AA3A33", "AA3A33", NULL },
    { "setting.create", "/settings", M, "A33333", "A33333", NULL },
    { "setting.get", "/settings/{setting}", NULL, "A33333", "A33333", NULL },
    { "setting.change", "/settings/{setting}", M, "A33333", "A33333", NULL },
    { "setting.delete", "/settings/{setting}", M, "A33333", "A33333", NULL },
    /* No upgrade report in a fresh database: 404 from the handler. */
    { "upgrade.report", "/upgrade-report", NULL, "N33333", "N33333", NULL },
    /* Metrics are installation-wide (metrics.read): 403 below a global
     * binding, the delegated administrator's role has none. */
    { "metrics.read", "/metrics", NULL, "A33333", "A33333", NULL },
    /* Catalogs: made in a host group, then reached through a catalog
     * scope (catin bound, catout not). */
    { "catalog.list", "/catalogs", NULL, "AAAAAA", "AAAAAA", NULL },
    { "catalog.create", "/catalogs", "{\"host_group\":\"{hg}\",\"matrix\":1}", "AAA333", "A44444",
      NULL },
    { "catalog.get", "/catalogs/{catalog}", NULL, "AAAAAA", "A44444", NULL },
    { "catalog.delete", "/catalogs/{catalog}", M, "AAA333", "A44444", NULL },
    { "catalog.provision", "/catalogs/{catalog}/provision", M, "AAA3AA", "A44444", NULL },
    { "catalog.machines", "/catalogs/{catalog}/machines", NULL, "AAAAAA", "A44444", NULL },
    { "catalog.add-machines", "/catalogs/{catalog}/machines", M, "AAA3AA", "A44444", NULL },
    { "catalog.remove-machines", "/catalogs/{catalog}/remove-machines", M, "AAA3AA", "A44444",
      NULL },
    { "catalog.reconcile", "/catalogs/{catalog}/reconcile", NULL, "AAAAAA", "A44444", NULL },
    { "catalog.reconcile-submit", "/catalogs/{catalog}/reconcile", M, "AAA333", "A44444", NULL },
    { "catalog.images", "/catalogs/{catalog}/images", NULL, "AAAAAA", "A44444", NULL },
    { "catalog.update-image", "/catalogs/{catalog}/images", M, "AAA333", "A44444", NULL },
    { "catalog.rollback", "/catalogs/{catalog}/rollback", M, "AAA333", "A44444", NULL },
    { "catalog.rebuild", "/catalogs/{catalog}/rebuild", M, "AAA333", "A44444", NULL },
    /* vm.power on the catalog's machines: a self-service user's catalog
     * binding covers them (a catalog has no owner). */
    { "catalog.power", "/catalogs/{catalog}/power", M, "AAA3AA", "A44444", NULL },
    /* catalog.change on the machine's catalog, under its host's group. */
    { "catalog-machine.identity", "/catalog-machines/{machine}/identity", NULL, "AAA333", "A44444",
      NULL },
    /* One's own session and tokens: every principal.  Logging out would
     * end the matrix's own sessions: tested apart. */
    { "session.logout", "/session", NULL, "SSSSSS", "SSSSSS", NULL },
    { "session.get", "/session", NULL, "AAAAAA", "AAAAAA", NULL },
    { "session.password", "/session/password", M, "AAAAAA", "AAAAAA", NULL },
    { "session.list", "/sessions", NULL, "AAAAAA", "AAAAAA", NULL },
    { "session.delete", "/sessions/nothing", M, "AAAAAA", "AAAAAA", NULL },
    { "token.create", "/tokens", M, "AAAAAA", "AAAAAA", NULL },
    { "token.delete", "/tokens/nothing", M, "AAAAAA", "AAAAAA", NULL },
    { "token.list", "/tokens", NULL, "AAAAAA", "AAAAAA", NULL },
    /* Users, roles and the audit log are installation-wide; a binding's
     * own grant rule is the operation's (tested in "escalation"). */
    { "privilege.list", "/privileges", NULL, "A33333", "A33333", NULL },
    { "role.list", "/roles", NULL, "A33333", "A33333", NULL },
    { "role.create", "/roles", M, "A33333", "A33333", NULL },
    { "role.get", "/roles/nothing", NULL, "A33333", "A33333", NULL },
    { "role.delete", "/roles/nothing", M, "A33333", "A33333", NULL },
    { "user.list", "/users", NULL, "A33333", "A33333", NULL },
    { "user.create", "/users", M, "A33333", "A33333", NULL },
    { "user.get", "/users/nothing", NULL, "A33333", "A33333", NULL },
    { "user.change", "/users/nothing", M, "A33333", "A33333", NULL },
    { "user.delete", "/users/nothing", M, "A33333", "A33333", NULL },
    { "binding.list", "/bindings", NULL, "A33333", "A33333", NULL },
    { "binding.create", "/bindings", M, "AAAAAA", "AAAAAA", NULL },
    { "binding.delete", "/bindings/nothing", M, "AAAAAA", "AAAAAA", NULL },
    { "audit.list", "/audit", NULL, "AAAA33", "AAAA33", NULL },
};

#undef M

typedef struct {
    DvTestDaemon *d;
    char *pg_db; /* the PostgreSQL database of this test, or NULL (SQLite) */
    char *hostdir;
    GHashTable *subst; /* "{pool_in}" -> id */
    char *tokens[4];   /* global admin, admin@In, read-only@In, self-service@In */
} Fixture;

/* One request with @token; the status in @ret_status, the body (or NULL). */
static JsonNode *
req(Fixture *f, const char *token, const char *method, const char *path, const char *body,
    guint *ret_status)
{
    return dv_test_request_as(f->d, token, method, path, body, ret_status);
}

static JsonObject *
req_ok(Fixture *f, const char *token, const char *method, const char *path, const char *body,
       guint want)
{
    return dv_test_request_as_ok(f->d, token, method, path, body, want);
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

    f->d = dv_test_daemon_start_on(data, "dv_access", &f->pg_db);
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

/* What the matrix adds to the fixture: a user of every built-in role,
 * the objects of the kinds that are scopes of their own, and one VM per
 * principal that it owns (with the job that made it). */
typedef struct {
    const char *tokens[DV_MATRIX_N_PRINCIPALS]; /* borrowed from the fixture or keep */
    char *own_vm[DV_MATRIX_N_PRINCIPALS];
    char *own_job[DV_MATRIX_N_PRINCIPALS];
    GPtrArray *keep;
} DvMatrix;

static void
dv_matrix_clear(DvMatrix *m)
{
    for (gsize i = 0; i < DV_MATRIX_N_PRINCIPALS; i++) {
        g_free(m->own_vm[i]);
        g_free(m->own_job[i]);
    }
    g_clear_pointer(&m->keep, g_ptr_array_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(DvMatrix, dv_matrix_clear)

/* A binding made by the global administrator; returns its id (owned). */
static char *
matrix_bind(Fixture *f, const char *user, const char *role, const char *scope_kind, const char *ref)
{
    g_autofree char *body = g_strdup_printf(
        "{\"user\":\"%s\",\"role\":\"%s\",\"scope\":{\"kind\":\"%s\",\"ref\":\"%s\"}}", user, role,
        scope_kind, ref);
    g_autoptr(JsonObject) b = req_ok(f, f->d->token, "POST", "/api/v1/bindings", body, 201);
    return g_strdup(json_object_get_string_member(b, "id"));
}

/* Catalog @name of one machine (@scheme) from @vm, stopped with a
 * snapshot, on @host.  test:// cannot upload identity disks, so its job
 * fails after the catalog's row is made; the row is what the matrix needs. */
static void
make_catalog(Fixture *f, const char *name, const char *vm, const char *host, const char *scheme)
{
    g_autofree char *stop = g_strdup_printf("/api/v1/vms/%s/stop", vm);
    g_autofree char *snap = g_strdup_printf("/api/v1/vms/%s/snapshots", vm);
    g_autofree char *body = g_strdup_printf(
        "{\"name\":\"%s\",\"master_vm\":\"%s\",\"master_snapshot\":\"s1\",\"hosts\":[\"%s\"],"
        "\"pool\":\"pool1\",\"naming_scheme\":\"%s\",\"count\":1,\"machine\":{\"memory_mib\":64}}",
        name, vm, host, scheme);
    g_autofree char *get = g_strdup_printf("/api/v1/catalogs/%s", name);
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) row = NULL;

    dv_test_run_job_ok(f->d, "POST", stop, NULL);
    dv_test_run_job_ok(f->d, "POST", snap, "{\"name\":\"s1\"}");
    job = dv_test_run_job(f->d, "POST", "/api/v1/catalogs", body);
    dv_test_assert_job_state(job, "failed");
    row = req_ok(f, f->d->token, "GET", get, NULL, 200);
}

static void
matrix_setup(Fixture *f, DvMatrix *m)
{
    /* Scopes of their own: "in" is bound below, "out" is not. */
    static const struct {
        const char *kind;
        const char *ref;
    } scopes[] = { { "catalog", "catin" }, { "run_as", "rin" } };
    g_autofree char *temp = NULL;

    m->keep = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < 2; i++) {
        const char *side = i == 0 ? "in" : "out";
        /* lin on hin's pool (under In), lout of the library root: the
         * test hosts' pools share one path, which two shares cannot. */
        g_autofree char *share =
            i == 0 ? g_strdup("{\"name\":\"lin\",\"host\":\"hin\",\"pool\":\"pool1\"}")
                   : g_strdup_printf("{\"name\":\"lout\",\"path\":\"%s/library/lout\"}",
                                     f->d->state_dir);
        /* A share on a host holds its pool's volumes (vin0's disk). */
        g_autofree char *tmpl = g_strdup_printf("{\"name\":\"t%s\",\"library_share\":\"l%s\","
                                                "\"disk_volume\":\"%s\",\"vcpus\":1,"
                                                "\"memory_mib\":64}",
                                                side, side, i == 0 ? "vin0.qcow2" : "d.qcow2");
        g_autofree char *ra = g_strdup_printf(
            "{\"name\":\"r%s\",\"username\":\"root\",\"password\":\"matrix-Pw-1\"}", side);
        g_autofree char *vm = g_strdup_printf("v%s0", side);
        g_autofree char *host = g_strdup_printf("h%s", side);
        g_autofree char *cat = g_strdup_printf("cat%s", side);
        g_autofree char *scheme = g_strdup_printf("d%s-#", side);
        dv_test_run_job_ok(f->d, "POST", "/api/v1/library-shares", share);
        dv_test_run_job_ok(f->d, "POST", "/api/v1/templates", tmpl);
        dv_test_run_job_ok(f->d, "POST", "/api/v1/run-as-accounts", ra);
        make_catalog(f, cat, vm, host, scheme);
    }
    dv_test_run_job_ok(f->d, "POST", "/api/v1/guest-os-profiles", "{\"name\":\"gp\"}");
    {
        g_autoptr(JsonObject) job =
            dv_test_run_job(f->d, "POST", "/api/v1/settings",
                            "{\"scope\":\"application\",\"name\":\"m1\",\"value\":\"1\"}");
        dv_test_assert_job_state(job, "succeeded");
        g_hash_table_insert(f->subst, g_strdup("{setting}"),
                            g_strdup(json_object_get_string_member(
                                json_object_get_object_member(job, "result"), "id")));
    }

    m->tokens[0] = f->tokens[0];
    m->tokens[1] = f->tokens[1];
    m->tokens[3] = f->tokens[2];
    m->tokens[5] = f->tokens[3];
    for (guint who = 2; who < DV_MATRIX_N_PRINCIPALS; who += 2) {
        char *t = make_user(f, dv_matrix_principals[who].name, dv_matrix_principals[who].role);
        g_ptr_array_add(m->keep, t);
        m->tokens[who] = t;
    }
    for (guint who = 1; who < DV_MATRIX_N_PRINCIPALS; who++)
        for (gsize s = 0; s < G_N_ELEMENTS(scopes); s++) {
            g_autofree char *id =
                matrix_bind(f, dv_matrix_principals[who].name, dv_matrix_principals[who].role,
                            scopes[s].kind, scopes[s].ref);
        }

    /* Own VMs: each principal makes one in "In"; the read-only
     * administrator, who may not, through a self-service binding held
     * for the time of the create (its VM stays its own). */
    temp = matrix_bind(f, "ro-in", "self-service-user", "host_group", "In");
    for (guint who = 0; who < DV_MATRIX_N_PRINCIPALS; who++) {
        g_autofree char *name = g_strdup_printf("own-%s", dv_matrix_principals[who].name);
        g_autofree char *body =
            g_strdup_printf("{\"name\":\"%s\",\"host\":\"hin\",\"memory_mib\":64}", name);
        g_autoptr(JsonObject) accepted =
            req_ok(f, m->tokens[who], "POST", "/api/v1/vms", body, 202);
        const char *job_id =
            json_object_get_string_member(json_object_get_object_member(accepted, "job"), "id");
        g_autoptr(JsonObject) job = dv_test_wait_job(f->d, job_id, 60);
        dv_test_assert_job_state(job, "succeeded");
        m->own_vm[who] = g_steal_pointer(&name);
        m->own_job[who] = g_strdup(job_id);
    }
    {
        g_autofree char *path = g_strdup_printf("/api/v1/bindings/%s", temp);
        g_autoptr(JsonObject) gone = req_ok(f, f->d->token, "DELETE", path, NULL, 200);
    }
}

/* @text with the placeholders of @col (0 in, 1 out, 2 own) for principal
 * @who, then the fixture's ids (owned). */
static char *
matrix_subst(Fixture *f, const DvMatrix *m, const char *text, guint col, guint who)
{
    g_autoptr(GString) s = g_string_new(text);
    if (col == 2) {
        g_string_replace(s, "{vm}", m->own_vm[who], 0);
        g_string_replace(s, "{job}", m->own_job[who], 0);
    }
    for (gsize i = 0; i < G_N_ELEMENTS(dv_matrix_places); i++)
        g_string_replace(s, dv_matrix_places[i].key,
                         col == 1 ? dv_matrix_places[i].out : dv_matrix_places[i].in, 0);
    return subst(f, s->str);
}

/* Whether @status (with @resp) is what @want says for @method, @priv. */
static gboolean
matrix_answer_ok(char want, const char *method, const char *priv, guint status, JsonNode *resp)
{
    g_autofree char *t = NULL;
    switch (want) {
    case 'A':
        /* Past the authorizer, the op's own rules refuse "matrix" (400),
         * so a change changes nothing; a read may ignore it (200). */
        return status == 400 || (status == 200 && g_strcmp0(method, "GET") == 0);
    case '3':
        if (status != 403)
            return FALSE;
        t = resp != NULL ? json_to_string(resp, FALSE) : g_strdup("");
        return priv == NULL || strstr(t, priv) != NULL;
    case '4':
    case 'N':
        return status == 404;
    default:
        g_error("unknown expectation '%c'", want);
    }
}

/* Object counts the matrix must leave as they were. */
static char *
matrix_counts(Fixture *f)
{
    static const char *const lists[] = {
        "/api/v1/host-groups",     "/api/v1/clusters",
        "/api/v1/hosts",           "/api/v1/library-shares",
        "/api/v1/templates",       "/api/v1/vms",
        "/api/v1/run-as-accounts", "/api/v1/guest-os-profiles",
        "/api/v1/settings",        "/api/v1/catalogs",
        "/api/v1/users",           "/api/v1/roles",
        "/api/v1/tokens",          "/api/v1/catalogs/catin/machines",
    };
    GString *s = g_string_new(NULL);
    /* Each list fits one page (not every list takes ?limit). */
    for (gsize i = 0; i < G_N_ELEMENTS(lists); i++) {
        g_autoptr(JsonObject) o = req_ok(f, f->d->token, "GET", lists[i], NULL, 200);
        g_string_append_printf(s, "%s=%u ", lists[i],
                               json_array_get_length(json_object_get_array_member(o, "items")));
    }
    for (gsize who = 0; who < DV_MATRIX_N_PRINCIPALS; who++) {
        g_autofree char *path =
            g_strdup_printf("/api/v1/bindings?user=%s", dv_matrix_principals[who].name);
        g_autoptr(JsonObject) o = req_ok(f, f->d->token, "GET", path, NULL, 200);
        g_string_append_printf(s, "%s=%u ", path,
                               json_array_get_length(json_object_get_array_member(o, "items")));
    }
    return g_string_free(s, FALSE);
}

static char *list_names(Fixture *f, const char *token, const char *path);

/* GET @path as @token: its status. */
static guint
matrix_status(Fixture *f, const char *token, const char *path)
{
    guint status = 0;
    g_autoptr(JsonNode) resp = req(f, token, "GET", path, NULL, &status);
    return status;
}

/* Through droverd, the share's own scope beside its host's group: the
 * self-service user of In reads lout's template (a share of no group)
 * only while bound over lout, and a deny of its own over lin hides lin's
 * template though In covers it (the deeper binding wins). */
static void
matrix_direct_share(Fixture *f, const DvMatrix *m)
{
    const char *ss = m->tokens[5];
    g_autofree char *allow = NULL;
    g_autofree char *deny = NULL;

    g_assert_cmpuint(matrix_status(f, ss, "/api/v1/templates/tout"), ==, 404);
    /* A VM made from a template the caller cannot read: as if it did not
     * exist, before anything is made. */
    {
        guint status = 0;
        gint64 vms = dv_test_count(f->d, "/api/v1/vms");
        g_autoptr(JsonNode) r = req(f, ss, "POST", "/api/v1/vms",
                                    "{\"name\":\"from-tout\",\"host\":\"hin\",\"template\":\"tout\"}",
                                    &status);
        dv_test_assert_error(r, status, 404, "not-found", "template");
        g_assert_cmpint(dv_test_count(f->d, "/api/v1/vms"), ==, vms);
    }
    allow = matrix_bind(f, "ss-in", "self-service-user", "library_share", "lout");
    g_assert_cmpuint(matrix_status(f, ss, "/api/v1/templates/tout"), ==, 200);
    {
        g_autofree char *names = list_names(f, ss, "/api/v1/templates");
        g_assert_cmpstr(names, ==, "tin tout");
    }
    {
        g_autofree char *body = g_strdup_printf(
            "{\"user\":\"ss-in\",\"role\":\"self-service-user\",\"effect\":\"deny\","
            "\"scope\":{\"kind\":\"library_share\",\"ref\":\"lin\"}}");
        g_autoptr(JsonObject) b = req_ok(f, f->d->token, "POST", "/api/v1/bindings", body, 201);
        deny = g_strdup(json_object_get_string_member(b, "id"));
    }
    g_assert_cmpuint(matrix_status(f, ss, "/api/v1/templates/tin"), ==, 404);
    {
        g_autofree char *names = list_names(f, ss, "/api/v1/templates");
        g_assert_cmpstr(names, ==, "tout");
    }
    for (guint i = 0; i < 2; i++) {
        g_autofree char *path = g_strdup_printf("/api/v1/bindings/%s", i == 0 ? allow : deny);
        g_autoptr(JsonObject) gone = req_ok(f, f->d->token, "DELETE", path, NULL, 200);
    }
    g_assert_cmpuint(matrix_status(f, ss, "/api/v1/templates/tout"), ==, 404);
    g_assert_cmpuint(matrix_status(f, ss, "/api/v1/templates/tin"), ==, 200);
}

static void
test_matrix(Fixture *f, gconstpointer data)
{
    static const char *const columns[] = { "in", "out", "own" };
    g_autoptr(JsonArray) ops = dump_ops();
    g_autoptr(GString) failures = g_string_new(NULL);
    g_auto(DvMatrix) m = { 0 };
    g_autofree char *before = NULL;
    g_autofree char *after = NULL;
    guint checked = 0;

    matrix_setup(f, &m);
    before = matrix_counts(f);
    for (guint i = 0; i < json_array_get_length(ops); i++) {
        JsonObject *op = json_array_get_object_element(ops, i);
        const char *name = json_object_get_string_member(op, "name");
        const char *method = json_object_get_string_member(op, "method");
        const char *priv = json_object_get_string_member(op, "privilege");
        const DvMatrixRow *row;
        gboolean owned;

        if (json_object_get_boolean_member(op, "public") ||
            json_object_get_boolean_member(op, "debug"))
            continue;
        row = matrix_row(name);
        if (row == NULL) {
            g_string_append_printf(failures, "  %s: no row in dv_matrix_rows\n", name);
            continue;
        }
        /* The own column is there exactly when the object has an owner. */
        owned = strstr(row->path, "{vm}") != NULL || strstr(row->path, "{job}") != NULL;
        if (owned != (row->own != NULL)) {
            g_string_append_printf(failures, "  %s: own column %s\n", name,
                                   owned ? "missing" : "given for a kind with no owner");
            continue;
        }
        for (guint col = 0; col < G_N_ELEMENTS(columns); col++) {
            const char *expect = col == 0 ? row->in : col == 1 ? row->out : row->own;
            if (expect == NULL)
                continue;
            g_assert_cmpuint(strlen(expect), ==, DV_MATRIX_N_PRINCIPALS);
            for (guint who = 0; who < DV_MATRIX_N_PRINCIPALS; who++) {
                g_autofree char *p = NULL;
                g_autofree char *body = NULL;
                g_autofree char *url = NULL;
                g_autoptr(JsonNode) resp = NULL;
                guint status = 0;

                if (expect[who] == 'S')
                    continue;
                p = matrix_subst(f, &m, row->path, col, who);
                body = row->body != NULL ? matrix_subst(f, &m, row->body, col, who) : NULL;
                url = g_strconcat("/api/v1", p, strchr(p, '?') ? "&" : "?", "matrix=1", NULL);
                resp = req(f, m.tokens[who], method, url, body, &status);
                checked++;
                if (!matrix_answer_ok(expect[who], method, priv, status, resp)) {
                    g_autofree char *t = resp != NULL ? json_to_string(resp, FALSE) : g_strdup("");
                    g_string_append_printf(failures, "  %s %s as %s (%s %s): want %c, got %u %s\n",
                                           name, columns[col], dv_matrix_principals[who].name,
                                           method, url, expect[who], status, t);
                }
            }
        }
    }
    /* A row of no operation (renamed or removed) is a stale row. */
    for (gsize r = 0; r < G_N_ELEMENTS(dv_matrix_rows); r++) {
        gboolean found = FALSE;
        for (guint i = 0; i < json_array_get_length(ops) && !found; i++)
            found = g_strcmp0(json_object_get_string_member(json_array_get_object_element(ops, i),
                                                            "name"),
                              dv_matrix_rows[r].name) == 0;
        if (!found)
            g_string_append_printf(failures, "  %s: a row of no operation\n",
                                   dv_matrix_rows[r].name);
    }
    g_test_message("matrix: %u requests", checked);
    after = matrix_counts(f);
    if (failures->len > 0)
        g_error("authorization matrix:\n%s", failures->str);
    /* An allowed request was refused by the operation's own rules. */
    g_assert_cmpstr(after, ==, before);
    g_assert_cmpuint(checked, >, 1000);
    matrix_direct_share(f, &m);
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
    /* Out of scope reads exactly as an absent VM of that name. */
    {
        g_autoptr(JsonNode) absent =
            req(f, f->tokens[1], "POST", "/api/v1/vms/nosuchvm/start", NULL, &status);
        g_assert_cmpuint(status, ==, 404);
        JsonObject *e1 = json_object_get_object_member(json_node_get_object(r2), "error");
        JsonObject *e2 = json_object_get_object_member(json_node_get_object(absent), "error");
        g_assert_cmpstr(json_object_get_string_member(e1, "message"), ==, "VM 'vout0' not found");
        g_assert_cmpstr(json_object_get_string_member(e2, "message"), ==,
                        "VM 'nosuchvm' not found");
    }
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
    /* A read-only administrator of In reads the log of its scope (its
     * content is tested in api-jobs-access); a self-service user holds no
     * audit.read anywhere. */
    {
        g_autoptr(JsonNode) r4 = req(f, f->tokens[2], "GET", "/api/v1/audit", NULL, &status);
        g_assert_cmpuint(status, ==, 200);
        JsonArray *entries = json_object_get_array_member(json_node_get_object(r4), "items");
        g_assert_cmpuint(json_array_get_length(entries), >, 0);
        for (guint i = 0; i < json_array_get_length(entries); i++) {
            JsonObject *e = json_array_get_object_element(entries, i);
            g_assert_cmpstr(json_object_get_string_member_with_default(e, "operation", ""), !=,
                            "user.create");
        }
    }
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
    /* A self-service user making a VM on another VM's disk (a volume of
     * a host in its scope it may not read): as absent as an unknown path,
     * nothing made. */
    {
        guint status = 0;
        gint64 vms = dv_test_count(f->d, "/api/v1/vms");
        g_autoptr(JsonNode) r = req(f, f->tokens[3], "POST", "/api/v1/vms",
                                    "{\"name\":\"thief\",\"host\":\"hin\",\"memory_mib\":64,"
                                    "\"disks\":[{\"volume\":\"/pool1/vin0.qcow2\"}]}",
                                    &status);
        dv_test_assert_error(r, status, 404, "not-found", "disks[0].volume");
        g_assert_cmpint(dv_test_count(f->d, "/api/v1/vms"), ==, vms);
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
