/* The REST API end to end: a real droverd process, libvirt's test driver
 * for hosts (one XML file per simulated host), SQLite in a temp dir. */
#define G_LOG_DOMAIN "DvTestApi"

#include "dv-config.h"
#include "dv-test-util.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

typedef DvTestApiFixture Fixture;



static void
assert_succeeded(JsonObject *job)
{
    if (g_strcmp0(json_object_get_string_member(job, "state"), "succeeded") != 0) {
        g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), job);
        g_autofree char *t = json_to_string(n, FALSE);
        g_error("job did not succeed: %s", t);
    }
    g_assert_cmpint(json_object_get_int_member(job, "progress"), ==, 100);
}

static const char *
obj_str(JsonNode *n, const char *member)
{
    return json_object_get_string_member(json_node_get_object(n), member);
}

/* Adds a simulated host; returns its id. */
static char *
add_test_host(Fixture *f, const char *name, guint ndomains, const char *extra)
{
    g_autofree char *file = g_strdup_printf("%s.xml", name);
    g_autofree char *xml = dv_test_write_host_xml(f->hostdir, file, name, ndomains);
    g_autofree char *body = g_strdup_printf("{\"name\":\"%s\",\"uri\":\"test://%s\"%s%s}", name, xml,
                                            extra != NULL ? "," : "", extra != NULL ? extra : "");
    g_autoptr(JsonObject) job = dv_test_run_job(f->d, "POST", "/api/v1/hosts", body);
    JsonObject *result;
    if (g_strcmp0(json_object_get_string_member(job, "state"), "succeeded") != 0) {
        g_autofree char *t = json_to_string(json_node_init_object(json_node_alloc(), job), FALSE);
        g_error("host add failed: %s", t);
    }
    result = json_object_get_object_member(job, "result");
    return g_strdup(json_object_get_string_member(result, "id"));
}

static void
test_auth(Fixture *f, gconstpointer data)
{
    guint status = 0;
    g_autoptr(JsonNode) v = dv_test_request_anon(f->d, "GET", "/api/v1/version", NULL, &status);
    g_autoptr(JsonNode) h = NULL;
    g_autoptr(JsonNode) noauth = NULL;
    g_autoptr(JsonNode) badpw = NULL;
    g_autoptr(JsonNode) nouser = NULL;
    g_autofree char *pw_path = g_build_filename(f->d->state_dir, "initial-admin-password", NULL);
    struct stat st;

    g_assert_cmpuint(status, ==, 200);
    g_assert_cmpstr(obj_str(v, "api"), ==, "v1");
    h = dv_test_request_anon(f->d, "GET", "/api/v1/health", NULL, &status);
    g_assert_cmpuint(status, ==, 200);
    g_assert_cmpstr(obj_str(h, "status"), ==, "ok");

    noauth = dv_test_request_anon(f->d, "GET", "/api/v1/hosts", NULL, &status);
    dv_test_assert_error(noauth, status, 401, "auth-required", NULL);
    badpw = dv_test_request_anon(f->d, "POST", "/api/v1/session",
                                 "{\"user\":\"admin\",\"password\":\"wrong-password\"}", &status);
    dv_test_assert_error(badpw, status, 401, "auth-required", NULL);
    nouser = dv_test_request_anon(f->d, "POST", "/api/v1/session",
                                  "{\"user\":\"nobody\",\"password\":\"wrong-password\"}", &status);
    dv_test_assert_error(nouser, status, 401, "auth-required", NULL);
    /* Same message for an unknown user and a wrong password. */
    g_assert_cmpstr(json_object_get_string_member(json_object_get_object_member(json_node_get_object(badpw), "error"), "message"),
                    ==,
                    json_object_get_string_member(json_object_get_object_member(json_node_get_object(nouser), "error"), "message"));

    g_assert_cmpint(g_stat(pw_path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);
    {
        g_autoptr(JsonNode) bad_token = NULL;
        g_autofree char *saved = f->d->token;
        f->d->token = g_strdup("not-a-token");
        bad_token = dv_test_request(f->d, "GET", "/api/v1/vms", NULL, &status);
        dv_test_assert_error(bad_token, status, 401, "auth-required", NULL);
        g_free(f->d->token);
        f->d->token = g_steal_pointer(&saved);
    }
}

static void
test_bad_input(Fixture *f, gconstpointer data)
{
    static const struct {
        const char *method;
        const char *path;
        const char *body;
        guint status;
        const char *code;
        const char *field;
    } cases[] = {
        { "POST", "/api/v1/hosts", "{\"name\":", 400, "invalid-argument", NULL },
        { "POST", "/api/v1/hosts", "[1]", 400, "invalid-argument", NULL },
        { "POST", "/api/v1/hosts", "{\"name\":\"h\",\"uri\":\"test:///default\",\"colour\":1}", 400, "invalid-argument", "colour" },
        { "POST", "/api/v1/hosts", "{\"name\":5,\"uri\":\"test:///default\"}", 400, "invalid-argument", "name" },
        { "POST", "/api/v1/hosts", "{\"uri\":\"test:///default\"}", 400, "invalid-argument", "name" },
        { "POST", "/api/v1/hosts", "{\"name\":\"has space\",\"uri\":\"test:///default\"}", 400, "invalid-argument", "name" },
        { "POST", "/api/v1/hosts", "{\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"uri\":\"test:///default\"}", 400, "invalid-argument", "name" },
        { "POST", "/api/v1/hosts", "{\"name\":\"h\",\"uri\":\"xen:///\"}", 400, "invalid-argument", "uri" },
        { "POST", "/api/v1/hosts", "{\"name\":\"h\",\"uri\":\"test:///default\",\"max_connections\":-1}", 400, "invalid-argument", "max_connections" },
        { "POST", "/api/v1/hosts", "{\"name\":\"h\",\"uri\":\"test:///default\",\"max_concurrent_operations\":100000000}", 400, "invalid-argument", "max_concurrent_operations" },
        { "POST", "/api/v1/hosts", "{\"name\":\"h\",\"uri\":\"test:///default\",\"host_group\":\"nope\"}", 404, "not-found", "host_group" },
        { "POST", "/api/v1/vms", "{\"name\":\"v\",\"memory_mib\":64}", 400, "invalid-argument", "host" },
        { "POST", "/api/v1/vms", "{\"name\":\"v\",\"host\":\"nope\",\"memory_mib\":64}", 404, "not-found", "host" },
        { "POST", "/api/v1/vms", "{\"name\":\"v\",\"host\":\"x\",\"memory_mib\":-5}", 400, "invalid-argument", "memory_mib" },
        { "POST", "/api/v1/vms", "{\"name\":\"v\",\"host\":\"x\",\"memory_mib\":64,\"vcpus\":0}", 400, "invalid-argument", "vcpus" },
        { "POST", "/api/v1/vms", "{\"name\":\"v\",\"host\":\"x\",\"memory_mib\":64,\"generation\":3}", 400, "invalid-argument", "generation" },
        { "POST", "/api/v1/vms", "{\"name\":\"v\",\"host\":\"x\",\"memory_mib\":64,\"generation\":1,\"secure_boot\":true}", 400, "invalid-argument", "secure_boot" },
        { "POST", "/api/v1/host-groups", "{\"name\":\"g\",\"parent\":\"missing\"}", 404, "not-found", "parent" },
        { "GET", "/api/v1/hosts/00000000-0000-0000-0000-000000000000", NULL, 404, "not-found", NULL },
        { "GET", "/api/v1/vms?limit=0", NULL, 400, "invalid-argument", "limit" },
        { "GET", "/api/v1/vms?limit=abc", NULL, 400, "invalid-argument", "limit" },
        { "GET", "/api/v1/vms?cursor=bm90LWEtY3Vyc29y", NULL, 400, "invalid-argument", "cursor" },
        { "GET", "/api/v1/vms?colour=red", NULL, 400, "invalid-argument", "colour" },
        { "GET", "/api/v1/nothing-here", NULL, 404, "not-found", NULL },
        { "PUT", "/api/v1/hosts", "{}", 404, "not-found", NULL },
        { "POST", "/api/v1/jobs/not-a-uuid/cancel", NULL, 400, "invalid-argument", "id" },
    };
    gint64 hosts_before = dv_test_count(f->d, "/api/v1/hosts");
    gint64 jobs_before = dv_test_count(f->d, "/api/v1/jobs");

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        guint status = 0;
        g_autoptr(JsonNode) resp = dv_test_request(f->d, cases[i].method, cases[i].path,
                                                   cases[i].body, &status);
        if (g_test_verbose())
            g_printerr("case %" G_GSIZE_FORMAT ": %s %s\n", i, cases[i].method, cases[i].path);
        dv_test_assert_error(resp, status, cases[i].status, cases[i].code, cases[i].field);
    }
    /* A body over the 1 MiB cap is refused before it is read. */
    {
        gsize len = 2 * 1024 * 1024;
        char *big = g_malloc(len);
        g_autoptr(GBytes) bytes = NULL;
        guint status = 0;
        g_autoptr(JsonNode) resp = NULL;
        memset(big, ' ', len);
        big[0] = '{';
        big[len - 1] = '}';
        bytes = g_bytes_new_take(big, len);
        resp = dv_test_request_bytes(f->d, "POST", "/api/v1/hosts", bytes, &status);
        dv_test_assert_error(resp, status, 413, "too-large", NULL);
    }
    /* Nothing was made and no job was queued. */
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/hosts"), ==, hosts_before);
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/jobs"), ==, jobs_before);
    {
        guint status = 0;
        g_autoptr(JsonNode) h = dv_test_request_anon(f->d, "GET", "/api/v1/health", NULL, &status);
        g_assert_cmpuint(status, ==, 200);
    }
}

static void
test_unreachable_host(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonObject) job = dv_test_run_job(
        f->d, "POST", "/api/v1/hosts", "{\"name\":\"gone\",\"uri\":\"qemu+tcp://127.0.0.1:1/system\"}");
    JsonObject *err;
    g_assert_cmpstr(json_object_get_string_member(job, "state"), ==, "failed");
    err = json_object_get_object_member(job, "error");
    g_assert_cmpstr(json_object_get_string_member(err, "code"), ==, "unavailable");
    g_assert_nonnull(strstr(json_object_get_string_member(err, "message"), "gone"));
    /* Nothing half-done: no host row. */
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/hosts"), ==, 0);
}

static void
test_inventory(Fixture *f, gconstpointer data)
{
    g_autofree char *id = add_test_host(f, "sim1", 12, NULL);
    g_autofree char *path = g_strdup_printf("/api/v1/hosts/%s", id);
    g_autofree char *first_cursor = NULL;
    guint status = 0;
    g_autoptr(JsonNode) host = dv_test_request(f->d, "GET", path, NULL, &status);
    JsonObject *ho;

    g_assert_cmpuint(status, ==, 200);
    ho = json_node_get_object(host);
    g_assert_cmpstr(json_object_get_string_member(ho, "state"), ==, "ok");
    g_assert_cmpint(json_object_get_int_member(ho, "cpus"), ==, 8);
    g_assert_cmpstr(json_object_get_string_member(ho, "hypervisor_type"), ==, "TEST");
    g_assert_true(json_object_has_member(json_object_get_object_member(ho, "limits"), "max_connections"));
    g_assert_true(json_object_get_boolean_member(json_object_get_object_member(ho, "rights"), "define_domains"));

    /* Existing domains were imported; pools, volumes, networks read. */
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/vms"), ==, 12);
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/storage-pools"), ==, 1);
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/volumes"), ==, 12);
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/networks"), ==, 1);
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/vms?host=sim1"), ==, 12);
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/vms?name_prefix=sim11"), ==, 3);
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/vms?state=running"), ==, 12);

    /* Paging: 5 + 5 + 2, each VM once, in name order. */
    {
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_autofree char *cursor = NULL;
        guint pages = 0;
        do {
            g_autofree char *p = cursor == NULL ? g_strdup("/api/v1/vms?limit=5")
                                                : g_strdup_printf("/api/v1/vms?limit=5&cursor=%s", cursor);
            g_autoptr(JsonNode) page = dv_test_request(f->d, "GET", p, NULL, &status);
            JsonObject *o = json_node_get_object(page);
            JsonArray *items = json_object_get_array_member(o, "items");
            g_assert_cmpuint(status, ==, 200);
            g_assert_cmpuint(json_array_get_length(items), <=, 5);
            for (guint i = 0; i < json_array_get_length(items); i++) {
                const char *n = json_object_get_string_member(json_array_get_object_element(items, i), "name");
                g_assert_true(g_hash_table_add(seen, g_strdup(n)));
            }
            pages++;
            g_free(cursor);
            cursor = json_object_get_null_member(o, "next_cursor")
                         ? NULL
                         : g_uri_escape_string(json_object_get_string_member(o, "next_cursor"), NULL, TRUE);
            if (pages == 1 && cursor != NULL)
                first_cursor = g_strdup(cursor);
        } while (cursor != NULL);
        g_assert_cmpuint(pages, ==, 3);
        g_assert_cmpuint(g_hash_table_size(seen), ==, 12);
    }

    /* Duplicate name and URI are conflicts naming the field. */
    {
        g_autofree char *xml = g_build_filename(f->hostdir, "sim1.xml", NULL);
        g_autofree char *body = g_strdup_printf("{\"name\":\"sim1\",\"uri\":\"test://%s\"}", xml);
        g_autofree char *body2 = g_strdup_printf("{\"name\":\"other\",\"uri\":\"test://%s\"}", xml);
        g_autoptr(JsonNode) r1 = dv_test_request(f->d, "POST", "/api/v1/hosts", body, &status);
        dv_test_assert_error(r1, status, 409, "conflict", "name");
        {
            g_autoptr(JsonNode) r2 = dv_test_request(f->d, "POST", "/api/v1/hosts", body2, &status);
            dv_test_assert_error(r2, status, 409, "conflict", "uri");
        }
    }

    /* Limits are kept and changeable. */
    {
        g_autoptr(JsonObject) job = dv_test_run_job(f->d, "PATCH", path,
                                                    "{\"max_connections\":2,\"max_concurrent_operations\":3}");
        g_autoptr(JsonNode) h2 = NULL;
        JsonObject *limits;
        assert_succeeded(job);
        h2 = dv_test_request(f->d, "GET", path, NULL, &status);
        limits = json_object_get_object_member(json_node_get_object(h2), "limits");
        g_assert_cmpint(json_object_get_int_member(limits, "max_connections"), ==, 2);
        g_assert_cmpint(json_object_get_int_member(limits, "max_concurrent_operations"), ==, 3);
    }

    /* Refresh keeps the inventory stable. */
    {
        g_autofree char *rp = g_strdup_printf("/api/v1/hosts/%s/refresh", id);
        g_autoptr(JsonObject) job = dv_test_run_job(f->d, "POST", rp, NULL);
        assert_succeeded(job);
        g_assert_cmpint(dv_test_count(f->d, "/api/v1/vms"), ==, 12);
    }
    /* Removing the host removes what was read from it. */
    {
        g_autoptr(JsonObject) job = dv_test_run_job(f->d, "DELETE", path, NULL);
        assert_succeeded(job);
        g_assert_cmpint(dv_test_count(f->d, "/api/v1/vms"), ==, 0);
        g_assert_cmpint(dv_test_count(f->d, "/api/v1/storage-pools"), ==, 0);
    }
}

static const char *
vm_state(Fixture *f, const char *vm)
{
    static char state[32];
    guint status = 0;
    g_autofree char *p = g_strdup_printf("/api/v1/vms/%s", vm);
    g_autoptr(JsonNode) n = dv_test_request(f->d, "GET", p, NULL, &status);
    g_assert_cmpuint(status, ==, 200);
    g_strlcpy(state, obj_str(n, "state"), sizeof state);
    return state;
}

static void
test_vm_lifecycle(Fixture *f, gconstpointer data)
{
    g_autofree char *id = add_test_host(f, "sim2", 2, NULL);
    g_autoptr(JsonObject) job = NULL;
    guint status = 0;
    gint64 vols_before = dv_test_count(f->d, "/api/v1/volumes");

    job = dv_test_run_job(f->d, "POST", "/api/v1/vms",
                          "{\"name\":\"web1\",\"host\":\"sim2\",\"vcpus\":2,\"memory_mib\":128,"
                          "\"disks\":[{\"size_mib\":64,\"pool\":\"pool1\"}],"
                          "\"networks\":[{\"network\":\"net1\"}]}");
    assert_succeeded(job);
    g_assert_cmpstr(json_object_get_string_member(job, "kind"), ==, "vm.create");
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(job, "steps")), ==, 4);
    g_assert_cmpstr(vm_state(f, "web1"), ==, "shutoff");
    {
        g_autoptr(JsonNode) vm = dv_test_request(f->d, "GET", "/api/v1/vms/web1", NULL, &status);
        JsonObject *spec = json_object_get_object_member(json_node_get_object(vm), "spec");
        g_assert_cmpuint(json_array_get_length(json_object_get_array_member(spec, "disks")), ==, 1);
        g_assert_cmpint(json_object_get_int_member(json_node_get_object(vm), "vcpus"), ==, 2);
    }
    /* Same name on the same host: conflict, at once. */
    {
        g_autoptr(JsonNode) r = dv_test_request(f->d, "POST", "/api/v1/vms",
                                                "{\"name\":\"web1\",\"host\":\"sim2\",\"memory_mib\":64}", &status);
        dv_test_assert_error(r, status, 409, "conflict", "name");
    }
    /* Unknown pool and network name the field. */
    {
        g_autoptr(JsonNode) r = dv_test_request(f->d, "POST", "/api/v1/vms",
                                                "{\"name\":\"web2\",\"host\":\"sim2\",\"memory_mib\":64,"
                                                "\"disks\":[{\"size_mib\":64,\"pool\":\"nopool\"}]}", &status);
        dv_test_assert_error(r, status, 404, "not-found", "disks[0].pool");
    }
    {
        g_autoptr(JsonNode) r = dv_test_request(f->d, "POST", "/api/v1/vms",
                                                "{\"name\":\"web2\",\"host\":\"sim2\",\"memory_mib\":64,"
                                                "\"disks\":[{\"size_mib\":-1,\"pool\":\"pool1\"}]}", &status);
        dv_test_assert_error(r, status, 400, "invalid-argument", "disks[0].size_mib");
    }

    g_clear_pointer(&job, json_object_unref);
    job = dv_test_run_job(f->d, "POST", "/api/v1/vms/web1/start", NULL);
    assert_succeeded(job);
    g_assert_cmpstr(vm_state(f, "web1"), ==, "running");
    {
        g_autoptr(JsonNode) r = dv_test_request(f->d, "POST", "/api/v1/vms/web1/start", NULL, &status);
        dv_test_assert_error(r, status, 409, "conflict", NULL);
    }
    {
        g_autoptr(JsonNode) r = dv_test_request(f->d, "DELETE", "/api/v1/vms/web1", NULL, &status);
        dv_test_assert_error(r, status, 409, "conflict", NULL);
    }

    g_clear_pointer(&job, json_object_unref);
    job = dv_test_run_job(f->d, "POST", "/api/v1/vms/web1/snapshots", "{\"name\":\"before\",\"description\":\"clean\"}");
    assert_succeeded(job);
    {
        g_autoptr(JsonNode) list = dv_test_request(f->d, "GET", "/api/v1/vms/web1/snapshots", NULL, &status);
        JsonArray *items = json_object_get_array_member(json_node_get_object(list), "items");
        g_assert_cmpuint(status, ==, 200);
        g_assert_cmpuint(json_array_get_length(items), ==, 1);
        g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(items, 0), "name"), ==, "before");
    }
    {
        g_autoptr(JsonNode) r = dv_test_request(f->d, "POST", "/api/v1/vms/web1/snapshots", "{\"name\":\"before\"}", &status);
        dv_test_assert_error(r, status, 409, "conflict", "name");
    }
    g_clear_pointer(&job, json_object_unref);
    job = dv_test_run_job(f->d, "POST", "/api/v1/vms/web1/snapshots/before/revert", NULL);
    assert_succeeded(job);
    g_clear_pointer(&job, json_object_unref);
    job = dv_test_run_job(f->d, "DELETE", "/api/v1/vms/web1/snapshots/before", NULL);
    assert_succeeded(job);
    {
        g_autoptr(JsonNode) r = dv_test_request(f->d, "DELETE", "/api/v1/vms/web1/snapshots/before", NULL, &status);
        dv_test_assert_error(r, status, 404, "not-found", NULL);
    }

    g_clear_pointer(&job, json_object_unref);
    job = dv_test_run_job(f->d, "POST", "/api/v1/vms/web1/stop", NULL);
    assert_succeeded(job);
    g_assert_cmpstr(vm_state(f, "web1"), ==, "shutoff");

    g_clear_pointer(&job, json_object_unref);
    job = dv_test_run_job(f->d, "DELETE", "/api/v1/vms/web1?delete_volumes=true", NULL);
    assert_succeeded(job);
    {
        g_autoptr(JsonNode) r = dv_test_request(f->d, "GET", "/api/v1/vms/web1", NULL, &status);
        dv_test_assert_error(r, status, 404, "not-found", NULL);
    }
    /* Its volume went with it. */
    {
        g_autofree char *rp = g_strdup_printf("/api/v1/hosts/%s/refresh", id);
        g_autoptr(JsonObject) rj = dv_test_run_job(f->d, "POST", rp, NULL);
        assert_succeeded(rj);
        g_assert_cmpint(dv_test_count(f->d, "/api/v1/volumes"), ==, vols_before);
    }
}

/* Reads a job's event stream to the end; returns the number of progress
 * events and checks the last one shows the finished job. */
static guint
read_events(Fixture *f, const char *job_id, char **ret_last_state)
{
    guint status = 0;
    g_autoptr(GPtrArray) events = dv_test_job_events(f->d, f->d->token, job_id, &status);
    g_autoptr(JsonParser) p = json_parser_new();
    const char *last;

    g_assert_cmpuint(status, ==, 200);
    g_assert_cmpuint(events->len, >, 0);
    last = g_ptr_array_index(events, events->len - 1);
    g_assert_true(json_parser_load_from_data(p, last, -1, NULL));
    *ret_last_state = g_strdup(
        json_object_get_string_member(json_node_get_object(json_parser_get_root(p)), "state"));
    return events->len;
}

static char *
submit_sleep(Fixture *f, guint seconds, gboolean resumable)
{
    guint status = 0;
    g_autofree char *body = g_strdup_printf("{\"seconds\":%u,\"resumable\":%s}", seconds,
                                            resumable ? "true" : "false");
    g_autoptr(JsonNode) r = dv_test_request(f->d, "POST", "/api/v1/debug/sleep", body, &status);
    g_assert_cmpuint(status, ==, 202);
    return g_strdup(json_object_get_string_member(
        json_object_get_object_member(json_node_get_object(r), "job"), "id"));
}

static void
test_job_events_and_cancel(Fixture *f, gconstpointer data)
{
    g_autofree char *id = submit_sleep(f, 2, FALSE);
    g_autofree char *state = NULL;
    g_autofree char *id2 = NULL;
    g_autofree char *cancel_path = NULL;
    g_autoptr(JsonObject) done = NULL;
    guint n = read_events(f, id, &state);
    guint status = 0;

    /* Queued, running, steps and sleep progress: several events. */
    g_assert_cmpuint(n, >=, 3);
    g_assert_cmpstr(state, ==, "succeeded");
    /* A finished job streams its last state and ends at once. */
    {
        g_autofree char *s2 = NULL;
        g_assert_cmpuint(read_events(f, id, &s2), ==, 1);
        g_assert_cmpstr(s2, ==, "succeeded");
    }

    id2 = submit_sleep(f, 30, FALSE);
    g_usleep(300 * 1000);
    cancel_path = g_strdup_printf("/api/v1/jobs/%s/cancel", id2);
    {
        g_autoptr(JsonNode) r = dv_test_request(f->d, "POST", cancel_path, NULL, &status);
        g_assert_cmpuint(status, ==, 200);
    }
    done = dv_test_wait_job(f->d, id2, 10);
    g_assert_cmpstr(json_object_get_string_member(done, "state"), ==, "cancelled");
    {
        g_autoptr(JsonNode) r = dv_test_request(f->d, "POST", cancel_path, NULL, &status);
        dv_test_assert_error(r, status, 409, "conflict", NULL);
    }
}

static void
test_crash_recovery(Fixture *f, gconstpointer data)
{
    g_autofree char *once = submit_sleep(f, 60, FALSE);
    g_autofree char *again = submit_sleep(f, 1, TRUE);
    g_autoptr(JsonObject) j1 = NULL;
    g_autoptr(JsonObject) j2 = NULL;
    JsonObject *err;

    g_usleep(300 * 1000);
    dv_test_daemon_stop(f->d, TRUE); /* kill -9 mid-job */
    g_assert_true(dv_test_daemon_restart(f->d));

    /* Not resumable: failed cleanly with the reason. */
    j1 = dv_test_wait_job(f->d, once, 10);
    g_assert_cmpstr(json_object_get_string_member(j1, "state"), ==, "failed");
    err = json_object_get_object_member(j1, "error");
    g_assert_nonnull(strstr(json_object_get_string_member(err, "message"), "restart"));
    g_assert_false(json_object_get_null_member(j1, "finished_at"));
    /* Resumable: ran again to the end. */
    j2 = dv_test_wait_job(f->d, again, 20);
    g_assert_cmpstr(json_object_get_string_member(j2, "state"), ==, "succeeded");
    g_assert_cmpint(json_object_get_int_member(j2, "attempts"), >=, 1);
    /* Nothing is left running. */
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/jobs?state=running"), ==, 0);
}

static void
test_groups_clusters_shares(Fixture *f, gconstpointer data)
{
    guint status = 0;
    g_autoptr(JsonObject) j = NULL;

    j = dv_test_run_job(f->d, "POST", "/api/v1/host-groups", "{\"name\":\"prod\"}");
    assert_succeeded(j);
    g_clear_pointer(&j, json_object_unref);
    j = dv_test_run_job(f->d, "POST", "/api/v1/host-groups", "{\"name\":\"prod-eu\",\"parent\":\"prod\"}");
    assert_succeeded(j);
    {
        g_autoptr(JsonNode) r = dv_test_request(f->d, "PATCH", "/api/v1/host-groups/prod", "{\"parent\":\"prod-eu\"}", &status);
        dv_test_assert_error(r, status, 400, "invalid-argument", "parent");
    }
    {
        g_autoptr(JsonNode) r = dv_test_request(f->d, "DELETE", "/api/v1/host-groups/prod", NULL, &status);
        dv_test_assert_error(r, status, 409, "conflict", NULL);
    }
    g_clear_pointer(&j, json_object_unref);
    j = dv_test_run_job(f->d, "POST", "/api/v1/clusters", "{\"name\":\"c1\",\"host_group\":\"prod-eu\"}");
    assert_succeeded(j);
    {
        g_autofree char *id = add_test_host(f, "sim3", 1, "\"cluster\":\"c1\"");
        g_autofree char *p = g_strdup_printf("/api/v1/hosts/%s", id);
        g_autoptr(JsonNode) h = dv_test_request(f->d, "GET", p, NULL, &status);
        g_autoptr(JsonNode) c = dv_test_request(f->d, "GET", "/api/v1/clusters/c1", NULL, &status);
        g_assert_cmpstr(obj_str(h, "host_group_id"), ==, obj_str(c, "host_group_id"));
        g_assert_cmpstr(obj_str(c, "hypervisor_type"), ==, "TEST");
    }
    /* Placement by host group (the cluster's host sits in prod-eu). */
    g_clear_pointer(&j, json_object_unref);
    j = dv_test_run_job(f->d, "POST", "/api/v1/vms", "{\"name\":\"placed\",\"host_group\":\"prod\",\"memory_mib\":64}");
    assert_succeeded(j);
    {
        g_autoptr(JsonNode) r = dv_test_request(f->d, "POST", "/api/v1/vms",
                                                "{\"name\":\"huge\",\"host_group\":\"prod\",\"memory_mib\":4000000}", &status);
        dv_test_assert_error(r, status, 409, "conflict", "host_group");
    }

    /* Library shares: the default one exists; name and path are unique. */
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/library-shares?is_default=true"), ==, 1);
    {
        g_autoptr(JsonNode) r = dv_test_request(f->d, "POST", "/api/v1/library-shares", "{\"name\":\"default\",\"path\":\"/srv/other\"}", &status);
        dv_test_assert_error(r, status, 409, "conflict", "name");
    }
    {
        g_autofree char *lib = g_build_filename(f->d->state_dir, "library", NULL);
        g_autofree char *body = g_strdup_printf("{\"name\":\"isos\",\"path\":\"%s/\"}", lib);
        g_autoptr(JsonNode) r = dv_test_request(f->d, "POST", "/api/v1/library-shares", body, &status);
        dv_test_assert_error(r, status, 409, "conflict", "path");
    }
    /* A directory that does not exist is made only under the library
     * root (<state-dir>/library by default). */
    {
        g_autofree char *elsewhere = g_strdup_printf("%s-elsewhere", f->d->state_dir);
        g_autofree char *body = g_strdup_printf("{\"name\":\"isos\",\"path\":\"%s/isos\"}", elsewhere);
        g_autoptr(JsonNode) r = dv_test_request(f->d, "POST", "/api/v1/library-shares", body, &status);
        dv_test_assert_error(r, status, 400, "invalid-argument", "path");
        g_assert_false(g_file_test(elsewhere, G_FILE_TEST_EXISTS));
    }
    {
        g_autofree char *body = g_strdup_printf("{\"name\":\"isos\",\"path\":\"%s/library/isos\"}", f->d->state_dir);
        g_autofree char *made = g_build_filename(f->d->state_dir, "library", "isos", NULL);
        g_clear_pointer(&j, json_object_unref);
        j = dv_test_run_job(f->d, "POST", "/api/v1/library-shares", body);
        assert_succeeded(j);
        g_assert_true(g_file_test(made, G_FILE_TEST_IS_DIR));
    }
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/library-shares"), ==, 2);

    /* Templates fill a VM spec. */
    g_clear_pointer(&j, json_object_unref);
    j = dv_test_run_job(f->d, "POST", "/api/v1/templates",
                        "{\"name\":\"small\",\"vcpus\":2,\"memory_mib\":256,\"generation\":1,\"networks\":[\"net1\"]}");
    assert_succeeded(j);
    g_clear_pointer(&j, json_object_unref);
    j = dv_test_run_job(f->d, "POST", "/api/v1/vms", "{\"name\":\"fromtmpl\",\"host\":\"sim3\",\"template\":\"small\"}");
    assert_succeeded(j);
    {
        g_autoptr(JsonNode) vm = dv_test_request(f->d, "GET", "/api/v1/vms/fromtmpl", NULL, &status);
        g_assert_cmpint(json_object_get_int_member(json_node_get_object(vm), "vcpus"), ==, 2);
        g_assert_cmpint(json_object_get_int_member(json_node_get_object(vm), "memory_mib"), ==, 256);
    }
}

/* A non-loopback address is served only over TLS. */
/* The daemon builds the request's actor from the session: the job records
 * the logged-in user's name, in the 202 answer and read back. */
static void
test_job_created_by(Fixture *f, gconstpointer data)
{
    guint status = 0;
    g_autoptr(JsonNode) accepted =
        dv_test_request(f->d, "POST", "/api/v1/host-groups", "{\"name\":\"by-admin\"}", &status);
    JsonObject *job;
    g_autoptr(JsonObject) done = NULL;

    g_assert_cmpuint(status, ==, 202);
    job = json_object_get_object_member(json_node_get_object(accepted), "job");
    g_assert_nonnull(job);
    g_assert_cmpstr(json_object_get_string_member(job, "created_by"), ==, "admin");
    done = dv_test_wait_job(f->d, json_object_get_string_member(job, "id"), 30);
    assert_succeeded(done);
    g_assert_cmpstr(json_object_get_string_member(done, "created_by"), ==, "admin");
}

static void
test_tls(void)
{
    g_autofree char *dir = g_dir_make_tmp("drover-tls-XXXXXX", NULL);
    g_autofree char *droverd = g_build_filename(g_getenv("DV_TOP_BUILDDIR") != NULL ? g_getenv("DV_TOP_BUILDDIR") : ".",
                                                "src", "daemon", "droverd", NULL);
    const char *argv_plain[] = { droverd, "--state-dir", dir, "--listen", "0.0.0.0:0", NULL };
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autoptr(GError) error = NULL;
    int status = 0;

    g_assert_true(g_spawn_sync(NULL, (char **)argv_plain, NULL, 0, NULL, NULL, &out, &err, &status, &error));
    g_assert_false(g_spawn_check_wait_status(status, NULL));
    g_assert_nonnull(strstr(err, "TLS"));
    g_assert_nonnull(strstr(err, "listen"));
    {
        const char *extra[] = { "--self-signed-tls", NULL };
        g_autoptr(DvTestDaemon) d = dv_test_daemon_start(NULL, extra);
        g_autofree char *crt = g_build_filename(d->state_dir, "tls", "server.crt", NULL);
        /* On loopback too when asked: the URL is https and answers. */
        g_assert_true(g_str_has_prefix(d->url, "https://"));
        g_assert_true(g_file_test(crt, G_FILE_TEST_EXISTS));
    }
    {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
        g_assert_cmpint(system(cmd), ==, 0);
    }
}

/* The same settings from a config file: its values are used (a bad
 * listen address in it is refused naming the key), and the command line
 * wins over it. */
static void
test_config_file(void)
{
    g_autofree char *dir = g_dir_make_tmp("drover-conf-XXXXXX", NULL);
    g_autofree char *conf = g_build_filename(dir, "droverd.conf", NULL);
    g_autofree char *state = g_build_filename(dir, "state", NULL);
    g_autofree char *text = g_strdup_printf("[server]\nstate_dir=%s\nlisten=not-an-address\n", state);
    g_autofree char *droverd = g_build_filename(g_getenv("DV_TOP_BUILDDIR") != NULL ? g_getenv("DV_TOP_BUILDDIR") : DV_BUILD_DIR,
                                                "src", "daemon", "droverd", NULL);
    const char *argv1[] = { droverd, "--config", conf, NULL };
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autofree char *rm = g_strdup_printf("rm -rf '%s'", dir);
    int status = 0;

    g_assert_true(g_file_set_contents(conf, text, -1, NULL));
    g_assert_true(g_spawn_sync(NULL, (char **)argv1, NULL, 0, NULL, NULL, &out, &err, &status, NULL));
    g_assert_false(g_spawn_check_wait_status(status, NULL));
    g_assert_nonnull(strstr(err, "listen"));
    /* The state directory came from the file. */
    g_assert_true(g_file_test(state, G_FILE_TEST_IS_DIR));
    {
        const char *extra[] = { "--config", conf, NULL };
        /* --listen 127.0.0.1:0 from the harness wins over the file's. */
        g_autoptr(DvTestDaemon) d = dv_test_daemon_start(NULL, extra);
        guint st = 0;
        g_autoptr(JsonNode) v = dv_test_request_anon(d, "GET", "/api/v1/version", NULL, &st);
        g_assert_cmpuint(st, ==, 200);
    }
    g_assert_cmpint(system(rm), ==, 0);
}

/* The whole server on PostgreSQL (the private one make check starts). */
static void
test_postgresql(void)
{
    const char *uri = g_getenv("DV_TEST_PG_URI");
    g_autofree char *db = NULL;
    g_autofree char *db_uri = NULL;
    g_autofree char *create = NULL;
    g_autofree char *drop = NULL;
    g_autofree char *hostdir = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *body = NULL;
    const char *extra[4] = { "--database", NULL, NULL };

    if (uri == NULL) {
        if (dv_test_require_services())
            g_error("DV_TEST_PG_URI is not set: run under tests/services/with-services");
        g_test_skip("no PostgreSQL (DV_TEST_PG_URI unset)");
        return;
    }
    db = g_strdup_printf("dv_api_%u", g_random_int());
    create = g_strdup_printf("psql -q -d '%s' -c 'CREATE DATABASE %s'", uri, db);
    g_assert_cmpint(system(create), ==, 0);
    {
        const char *slash = strrchr(uri, '/');
        db_uri = g_strdup_printf("%.*s/%s", (int)(slash - uri), uri, db);
    }
    extra[1] = db_uri;
    {
        g_autoptr(DvTestDaemon) d = dv_test_daemon_start(NULL, extra);
        g_autoptr(JsonObject) job = NULL;
        g_autoptr(JsonObject) vmjob = NULL;
        hostdir = g_dir_make_tmp("drover-pg-XXXXXX", NULL);
        xml = dv_test_write_host_xml(hostdir, "pg1.xml", "pgvm", 30);
        body = g_strdup_printf("{\"name\":\"pg1\",\"uri\":\"test://%s\"}", xml);
        job = dv_test_run_job(d, "POST", "/api/v1/hosts", body);
        assert_succeeded(job);
        g_assert_cmpint(dv_test_count(d, "/api/v1/vms"), ==, 30);
        g_assert_cmpint(dv_test_count(d, "/api/v1/vms?name_prefix=pgvm2"), ==, 11);
        vmjob = dv_test_run_job(d, "POST", "/api/v1/vms",
                                "{\"name\":\"onpg\",\"host\":\"pg1\",\"memory_mib\":64,"
                                "\"disks\":[{\"size_mib\":8,\"pool\":\"pool1\"}]}");
        assert_succeeded(vmjob);
        /* A second server on the same database without the directory key
         * protector is refused, and says why. */
        {
            g_autofree char *dir2 = g_dir_make_tmp("drover-ha-XXXXXX", NULL);
            g_autofree char *droverd = g_build_filename(g_getenv("DV_TOP_BUILDDIR") != NULL ? g_getenv("DV_TOP_BUILDDIR") : DV_BUILD_DIR,
                                                        "src", "daemon", "droverd", NULL);
            const char *argv2[] = { droverd, "--state-dir", dir2, "--listen", "127.0.0.1:0",
                                    "--database", db_uri, NULL };
            g_autofree char *out = NULL;
            g_autofree char *err = NULL;
            g_autofree char *rm = g_strdup_printf("rm -rf '%s'", dir2);
            int status = 0;
            g_assert_true(g_spawn_sync(NULL, (char **)argv2, NULL, 0, NULL, NULL, &out, &err, &status, NULL));
            g_assert_false(g_spawn_check_wait_status(status, NULL));
            g_assert_nonnull(strstr(err, "directory key protector"));
            g_assert_cmpint(system(rm), ==, 0);
        }
        /* Restart on the same database: the data is there. */
        dv_test_daemon_stop(d, FALSE);
        g_assert_true(dv_test_daemon_restart(d));
        g_assert_cmpint(dv_test_count(d, "/api/v1/vms"), ==, 31);
    }
    drop = g_strdup_printf("psql -q -d '%s' -c 'DROP DATABASE %s'", uri, db);
    g_assert_cmpint(system(drop), ==, 0);
    {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", hostdir);
        g_assert_cmpint(system(cmd), ==, 0);
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, dv_test_api_fixture_setup, fn, dv_test_api_fixture_teardown)
    ADD("/drover/api/auth", test_auth);
    ADD("/drover/api/bad-input", test_bad_input);
    ADD("/drover/api/unreachable-host", test_unreachable_host);
    ADD("/drover/api/inventory", test_inventory);
    ADD("/drover/api/vm-lifecycle", test_vm_lifecycle);
    ADD("/drover/api/job-events-and-cancel", test_job_events_and_cancel);
    ADD("/drover/api/crash-recovery", test_crash_recovery);
    ADD("/drover/api/groups-clusters-shares", test_groups_clusters_shares);
    ADD("/drover/api/job-created-by", test_job_created_by);
    g_test_add_func("/drover/api/tls", test_tls);
    g_test_add_func("/drover/api/config-file", test_config_file);
    g_test_add_func("/drover/api/postgresql", test_postgresql);
    return g_test_run();
}
