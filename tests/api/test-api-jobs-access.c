/* Jobs and the audit log under the access model (issue 11,
 * docs/ACCESS.md): a real droverd on SQLite and PostgreSQL, users of each
 * role made through the API and bound to host group "In".
 *
 * - events: GET /jobs/{id}/events is the op row job.events, authorized as
 *   job.get: 401 without a session, 404 out of scope or someone else's
 *   job for a self-service user, 200 with events in scope;
 * - redaction: a delegated administrator's job answers (202 {job}, the
 *   job list, the job, its events) carry no pool, volume or path, the
 *   administrator's do;
 * - error-redaction: a job failing in libvirt on a volume and a pool: the
 *   delegated administrator reads its code, never its message;
 * - audit: a read-only administrator of In reads the audit entries of
 *   objects in In and its own actions, the global administrator all;
 * - audit-objects: entries about a catalog, a library share or a Run As
 *   account are read by the audit readers bound to that object (and a
 *   share's by those of its host's group);
 * - catalog-errors: a catalog machine's error is withheld from the
 *   delegated administrator, its images' bases carry no volume name. */
#define G_LOG_DOMAIN "DvTestApiJobsAccess"

#include "dv-json.h"
#include "dv-test-pg.h"
#include "dv-test-util.h"

#include <string.h>

#define PW "jobs-access-password-1"

typedef struct {
    DvTestDaemon *d;
    char *pg_db; /* the PostgreSQL database of this test, or NULL (SQLite) */
    char *hostdir;
    char *hg_in; /* host group In's id */
    char *job_in;  /* the administrator's host refresh jobs on hin (In), hout (Out) */
    char *job_out;
} Fixture;

/* One request with @token (NULL: none); the status in @ret_status. */
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
object_text(JsonObject *o)
{
    g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), o);
    return json_to_string(n, FALSE);
}

/* The job's event stream read to its end with @token: the data of every
 * progress event, or NULL with the refusal's status in @ret_status. */
static GPtrArray *
read_events(Fixture *f, const char *token, const char *job_id, guint *ret_status)
{
    g_autoptr(GPtrArray) events = dv_test_job_events(f->d, token, job_id, ret_status);

    if (events != NULL)
        g_assert_cmpuint(events->len, >=, 1);
    return g_steal_pointer(&events);
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
refresh(Fixture *f, const char *host)
{
    g_autofree char *path = g_strdup_printf("/api/v1/hosts/%s/refresh", host);
    g_autoptr(JsonObject) job = dv_test_run_job(f->d, "POST", path, NULL);
    dv_test_assert_job_state(job, "succeeded");
    return g_strdup(json_object_get_string_member(job, "id"));
}

/* A user made through the API, bound to @role over host group In, logged in. */
static char *
make_user(Fixture *f, const char *name, const char *role)
{
    g_autofree char *ubody = g_strdup_printf("{\"name\":\"%s\",\"password\":\"%s\"}", name, PW);
    g_autofree char *bbody = g_strdup_printf(
        "{\"user\":\"%s\",\"role\":\"%s\",\"scope\":{\"kind\":\"host_group\",\"ref\":\"%s\"}}",
        name, role, f->hg_in);
    g_autofree char *login = g_strdup_printf("{\"user\":\"%s\",\"password\":\"%s\"}", name, PW);
    g_autoptr(JsonObject) u = req_ok(f, f->d->token, "POST", "/api/v1/users", ubody, 201);
    g_autoptr(JsonObject) b = req_ok(f, f->d->token, "POST", "/api/v1/bindings", bbody, 201);
    g_autoptr(JsonObject) s = req_ok(f, NULL, "POST", "/api/v1/session", login, 201);
    return g_strdup(json_object_get_string_member(s, "token"));
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autofree char *hin = NULL;
    g_autofree char *hout = NULL;

    f->d = dv_test_daemon_start_on(data, "dv_jobs_access", &f->pg_db);
    f->hostdir = g_dir_make_tmp("dv-jobs-access-XXXXXX", NULL);
    dv_test_run_job_ok(f->d, "POST", "/api/v1/host-groups", "{\"name\":\"In\"}");
    dv_test_run_job_ok(f->d, "POST", "/api/v1/host-groups", "{\"name\":\"Out\"}");
    {
        g_autoptr(JsonObject) in =
            req_ok(f, f->d->token, "GET", "/api/v1/host-groups/In", NULL, 200);
        f->hg_in = g_strdup(json_object_get_string_member(in, "id"));
    }
    hin = add_host(f, "hin", "In");
    hout = add_host(f, "hout", "Out");
    f->job_in = refresh(f, "hin");
    f->job_out = refresh(f, "hout");
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
    g_free(f->hg_in);
    g_free(f->job_in);
    g_free(f->job_out);
}

static void
assert_events_refused(Fixture *f, const char *token, const char *job_id, guint want)
{
    guint status = 0;
    g_autoptr(GPtrArray) ev = read_events(f, token, job_id, &status);
    g_assert_null(ev);
    g_assert_cmpuint(status, ==, want);
}

/* A submitted VM create on hin with a disk in pool1: the 202 answer. */
static JsonObject *
create_vm(Fixture *f, const char *token, const char *name)
{
    g_autofree char *body = g_strdup_printf(
        "{\"name\":\"%s\",\"host\":\"hin\",\"memory_mib\":64,"
        "\"disks\":[{\"size_mib\":8,\"pool\":\"pool1\"}]}",
        name);
    return req_ok(f, token, "POST", "/api/v1/vms", body, 202);
}

/* The event stream is authorized like the job itself. */
static void
test_events(Fixture *f, gconstpointer data)
{
    g_autofree char *ro = make_user(f, "ro-in", "read-only-administrator");
    g_autofree char *ss = make_user(f, "ss-in", "self-service-user");
    g_autofree char *ss2 = make_user(f, "ss2-in", "self-service-user");
    g_autoptr(GPtrArray) ev = NULL;
    guint status = 0;

    /* No session: 401, for an existing job and a made-up one alike. */
    assert_events_refused(f, NULL, f->job_in, 401);
    assert_events_refused(f, "not-a-token", f->job_in, 401);

    /* In scope: the job and its end; out of scope: as if absent. */
    ev = read_events(f, ro, f->job_in, &status);
    g_assert_cmpuint(status, ==, 200);
    g_assert_nonnull(strstr(g_ptr_array_index(ev, ev->len - 1), "\"succeeded\""));
    g_assert_nonnull(strstr(g_ptr_array_index(ev, ev->len - 1), f->job_in));
    g_clear_pointer(&ev, g_ptr_array_unref);
    assert_events_refused(f, ro, f->job_out, 404);

    /* A self-service user streams its own jobs, nobody else's, not even
     * in its own group. */
    assert_events_refused(f, ss, f->job_in, 404);
    {
        g_autoptr(JsonObject) made = create_vm(f, ss, "vss");
        const char *id =
            json_object_get_string_member(json_object_get_object_member(made, "job"), "id");
        g_autoptr(JsonObject) done = NULL;

        ev = read_events(f, ss, id, &status);
        g_assert_cmpuint(status, ==, 200);
        g_assert_nonnull(strstr(g_ptr_array_index(ev, ev->len - 1), "\"succeeded\""));
        g_clear_pointer(&ev, g_ptr_array_unref);
        done = dv_test_wait_job(f->d, id, 60);
        dv_test_assert_job_state(done, "succeeded");
        assert_events_refused(f, ss2, id, 404);
        /* The administrator of the group sees everybody's. */
        ev = read_events(f, ro, id, &status);
        g_assert_cmpuint(status, ==, 200);
        g_clear_pointer(&ev, g_ptr_array_unref);
    }
    /* The global administrator streams any job; an unknown id is 404, a
     * malformed one 400, a query 400 (the row takes none). */
    ev = read_events(f, f->d->token, f->job_out, &status);
    g_assert_cmpuint(status, ==, 200);
    g_clear_pointer(&ev, g_ptr_array_unref);
    assert_events_refused(f, f->d->token, "00000000-0000-4000-8000-000000000000", 404);
    {
        g_autofree char *q = g_strdup_printf("%s/events?x=1", f->job_in);
        assert_events_refused(f, f->d->token, q, 400);
    }
}

/* Storage data in a job record, as text: the disks, the pool's name and
 * its path. */
static guint
storage_marks(const char *text)
{
    static const char *const marks[] = { "\"disks\"", "\"pool\"", "pool1", "\"path\"", NULL };
    guint n = 0;
    for (guint i = 0; marks[i] != NULL; i++)
        n += strstr(text, marks[i]) != NULL;
    return n;
}

/* A delegated administrator's job answers carry no storage data; the
 * administrator's answers about the same job do. */
static void
test_redaction(Fixture *f, gconstpointer data)
{
    g_autofree char *del = make_user(f, "del-in", "delegated-administrator");
    g_autoptr(JsonObject) made = create_vm(f, del, "vdel");
    JsonObject *job = json_object_get_object_member(made, "job");
    g_autofree char *id = g_strdup(json_object_get_string_member(job, "id"));
    g_autofree char *path = g_strdup_printf("/api/v1/jobs/%s", id);
    g_autofree char *accepted = object_text(job);
    g_autoptr(GPtrArray) ev = NULL;
    guint status = 0;

    /* 202 {job}: the params are there, without the disks. */
    g_assert_nonnull(json_object_get_object_member(job, "params"));
    g_assert_nonnull(dv_json_get_string(json_object_get_object_member(job, "params"), "uuid", NULL));
    g_assert_cmpstr(json_object_get_string_member(job, "target_name"), ==, "vdel");
    g_assert_cmpuint(storage_marks(accepted), ==, 0);
    /* Its events, live or not. */
    ev = read_events(f, del, id, &status);
    g_assert_cmpuint(status, ==, 200);
    for (guint i = 0; i < ev->len; i++)
        g_assert_cmpuint(storage_marks(g_ptr_array_index(ev, i)), ==, 0);
    g_clear_pointer(&ev, g_ptr_array_unref);
    {
        g_autoptr(JsonObject) done = dv_test_wait_job(f->d, id, 60);
        dv_test_assert_job_state(done, "succeeded");
    }
    /* The job, the list, the finished job's events. */
    {
        g_autoptr(JsonObject) got = req_ok(f, del, "GET", path, NULL, 200);
        g_autoptr(JsonObject) list = req_ok(f, del, "GET", "/api/v1/jobs?limit=100", NULL, 200);
        g_autofree char *got_text = object_text(got);
        g_autofree char *list_text = object_text(list);
        g_assert_cmpstr(json_object_get_string_member(got, "state"), ==, "succeeded");
        g_assert_cmpuint(storage_marks(got_text), ==, 0);
        g_assert_nonnull(strstr(list_text, id));
        g_assert_cmpuint(storage_marks(list_text), ==, 0);
    }
    ev = read_events(f, del, id, &status);
    g_assert_cmpuint(status, ==, 200);
    g_assert_cmpuint(storage_marks(g_ptr_array_index(ev, 0)), ==, 0);
    g_clear_pointer(&ev, g_ptr_array_unref);

    /* The administrator: the same job with its disks and pool. */
    {
        g_autoptr(JsonObject) got = req_ok(f, f->d->token, "GET", path, NULL, 200);
        g_autoptr(JsonObject) list =
            req_ok(f, f->d->token, "GET", "/api/v1/jobs?limit=100", NULL, 200);
        g_autofree char *got_text = object_text(got);
        g_autofree char *list_text = object_text(list);
        g_autoptr(JsonObject) again = create_vm(f, f->d->token, "vadm");
        g_autofree char *again_text = object_text(json_object_get_object_member(again, "job"));
        g_assert_cmpuint(storage_marks(got_text), >=, 3);
        g_assert_cmpuint(storage_marks(list_text), >=, 3);
        g_assert_cmpuint(storage_marks(again_text), >=, 3);
        ev = read_events(f, f->d->token, id, &status);
        g_assert_cmpuint(status, ==, 200);
        g_assert_cmpuint(storage_marks(g_ptr_array_index(ev, 0)), >=, 3);
        g_clear_pointer(&ev, g_ptr_array_unref);
        {
            const char *aid = json_object_get_string_member(
                json_object_get_object_member(again, "job"), "id");
            g_autoptr(JsonObject) done = dv_test_wait_job(f->d, aid, 60);
            dv_test_assert_job_state(done, "succeeded");
        }
    }
    /* The job kept its disks: the VM has them (redaction changed a copy). */
    {
        g_autoptr(JsonObject) vm = req_ok(f, f->d->token, "GET", "/api/v1/vms/vdel", NULL, 200);
        g_autofree char *t = object_text(vm);
        g_assert_nonnull(strstr(t, "pool1"));
    }
}

/* The error of a job that failed on a path: the delegated administrator
 * reads its code and a storage-free message in every job answer, the
 * administrator the message naming the path. */
static void
assert_error_withheld(JsonObject *job, const char *mark)
{
    JsonObject *e = json_object_get_object_member(job, "error");
    g_autofree char *text = object_text(job);
    g_assert_nonnull(e);
    g_assert_null(strstr(text, mark));
    g_assert_nonnull(strstr(json_object_get_string_member(e, "message"), "withheld"));
    g_assert_false(json_object_has_member(e, "public_message"));
    g_assert_nonnull(dv_json_get_string(e, "code", NULL));
}

static void
test_error_redaction(Fixture *f, gconstpointer data)
{
    g_autofree char *del = make_user(f, "del-in", "delegated-administrator");
    g_autofree char *body = NULL;
    g_autoptr(JsonObject) made = NULL;
    const char *id;
    g_autofree char *path = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(GPtrArray) ev = NULL;
    guint status = 0;

    /* Host hpath in In: pool "pool-images" at /srv/pool-images holds a
     * volume named vpath-disk0.qcow2 whose file lies elsewhere, so the
     * store sees no clash at /srv/pool-images/vpath-disk0.qcow2 and
     * libvirt refuses the name in the job, in words naming the volume and
     * the pool. */
    {
        g_autofree char *xml = g_build_filename(f->hostdir, "hpath.xml", NULL);
        g_autofree char *pool_uuid = g_uuid_string_random();
        g_autofree char *text = g_strdup_printf(
            "<node>\n  <cpu><mhz>2000</mhz><model>x86_64</model><nodes>1</nodes>"
            "<sockets>1</sockets><cores>8</cores><threads>1</threads><active>8</active></cpu>\n"
            "  <memory>16777216</memory>\n"
            "  <pool type='dir'><name>pool-images</name><uuid>%s</uuid>"
            "<capacity>107374182400</capacity><allocation>0</allocation>"
            "<available>107374182400</available>"
            "<target><path>/srv/pool-images</path></target>\n"
            "    <volume type='file'><name>vpath-disk0.qcow2</name>"
            "<capacity>1073741824</capacity><allocation>0</allocation>"
            "<target><path>/srv/elsewhere/stray.qcow2</path><format type='qcow2'/></target>"
            "</volume>\n  </pool>\n</node>\n",
            pool_uuid);
        g_autofree char *hbody = g_strdup_printf(
            "{\"name\":\"hpath\",\"uri\":\"test://%s\",\"host_group\":\"In\"}", xml);
        g_autoptr(JsonObject) job = NULL;
        g_assert_true(g_file_set_contents(xml, text, -1, NULL));
        job = dv_test_run_job(f->d, "POST", "/api/v1/hosts", hbody);
        dv_test_assert_job_state(job, "succeeded");
    }
    body = g_strdup("{\"name\":\"vpath\",\"host\":\"hpath\",\"memory_mib\":64,"
                    "\"disks\":[{\"size_mib\":8,\"pool\":\"pool-images\"}]}");
    made = req_ok(f, del, "POST", "/api/v1/vms", body, 202);
    id = json_object_get_string_member(json_object_get_object_member(made, "job"), "id");
    path = g_strdup_printf("/api/v1/jobs/%s", id);
    done = dv_test_wait_job(f->d, id, 60);

    /* The administrator: the full message, naming the path. */
    dv_test_assert_job_state(done, "failed");
    {
        g_autoptr(JsonObject) got = req_ok(f, f->d->token, "GET", path, NULL, 200);
        JsonObject *e = json_object_get_object_member(got, "error");
        g_test_message("admin sees: %s", json_object_get_string_member(e, "message"));
        g_assert_nonnull(strstr(json_object_get_string_member(e, "message"), "pool-images"));
    }
    /* The delegated administrator: the job, the list, the events. */
    {
        g_autoptr(JsonObject) got = req_ok(f, del, "GET", path, NULL, 200);
        g_autoptr(JsonObject) list = req_ok(f, del, "GET", "/api/v1/jobs?limit=100", NULL, 200);
        JsonArray *items = json_object_get_array_member(list, "items");
        guint seen = 0;
        g_assert_cmpstr(json_object_get_string_member(got, "state"), ==, "failed");
        assert_error_withheld(got, "pool-images");
        for (guint i = 0; i < json_array_get_length(items); i++) {
            JsonObject *j = json_array_get_object_element(items, i);
            if (g_strcmp0(dv_json_get_string(j, "id", NULL), id) != 0)
                continue;
            assert_error_withheld(j, "pool-images");
            seen++;
        }
        g_assert_cmpuint(seen, ==, 1);
    }
    ev = read_events(f, del, id, &status);
    g_assert_cmpuint(status, ==, 200);
    g_assert_cmpuint(ev->len, >, 0);
    for (guint i = 0; i < ev->len; i++)
        g_assert_null(strstr(g_ptr_array_index(ev, i), "pool-images"));
    g_assert_nonnull(strstr(g_ptr_array_index(ev, ev->len - 1), "withheld"));
    g_clear_pointer(&ev, g_ptr_array_unref);
    /* The administrator's stream keeps it. */
    ev = read_events(f, f->d->token, id, &status);
    g_assert_cmpuint(status, ==, 200);
    g_assert_nonnull(strstr(g_ptr_array_index(ev, ev->len - 1), "pool-images"));
}

/* The audit entries @token reads (one page), as a list of objects. */
static JsonArray *
audit(Fixture *f, const char *token)
{
    g_autoptr(JsonObject) o = req_ok(f, token, "GET", "/api/v1/audit?limit=500", NULL, 200);
    /* One page holds the whole log of this test. */
    g_assert_null(dv_json_get_string(o, "next_cursor", NULL));
    return json_array_ref(json_object_get_array_member(o, "items"));
}

static guint
audit_count(JsonArray *items, const char *user, const char *operation, const char *object_id)
{
    guint n = 0;
    for (guint i = 0; i < json_array_get_length(items); i++) {
        JsonObject *e = json_array_get_object_element(items, i);
        if ((user == NULL || g_strcmp0(dv_json_get_string(e, "user", NULL), user) == 0) &&
            g_strcmp0(dv_json_get_string(e, "operation", NULL), operation) == 0 &&
            (object_id == NULL || g_strcmp0(dv_json_get_string(e, "object_id", NULL), object_id) == 0))
            n++;
    }
    return n;
}

/* A read-only administrator of In reads the audit of In and its own
 * actions; installation-wide entries and Out's are the global
 * administrator's alone. */
static void
test_audit(Fixture *f, gconstpointer data)
{
    g_autofree char *ro = make_user(f, "ro-in", "read-only-administrator");
    g_autofree char *ss = make_user(f, "ss-in", "self-service-user");
    g_autoptr(JsonArray) mine = NULL;
    g_autoptr(JsonArray) all = NULL;
    g_autoptr(JsonNode) r = NULL;
    g_autoptr(JsonObject) hin = req_ok(f, f->d->token, "GET", "/api/v1/hosts/hin", NULL, 200);
    g_autoptr(JsonObject) hout = req_ok(f, f->d->token, "GET", "/api/v1/hosts/hout", NULL, 200);
    const char *hin_id = json_object_get_string_member(hin, "id");
    const char *hout_id = json_object_get_string_member(hout, "id");
    guint status = 0;

    /* A refused attempt of its own on Out (404, out of scope). */
    r = req(f, ro, "POST", "/api/v1/hosts/hout/refresh", NULL, &status);
    g_assert_cmpuint(status, ==, 404);
    g_clear_pointer(&r, json_node_unref);
    /* No audit.read anywhere: 403 naming it. */
    r = req(f, ss, "GET", "/api/v1/audit", NULL, &status);
    g_assert_cmpuint(status, ==, 403);
    {
        g_autofree char *t = json_to_string(r, FALSE);
        g_assert_nonnull(strstr(t, "audit.read"));
    }

    mine = audit(f, ro);
    all = audit(f, f->d->token);
    /* In's objects: the host added there and its refresh. */
    g_assert_cmpuint(audit_count(mine, "admin", "host.refresh", hin_id), ==, 1);
    g_assert_cmpuint(audit_count(mine, "admin", "host.create", NULL), ==, 1);
    /* Its own refused attempt on Out. */
    g_assert_cmpuint(audit_count(mine, "ro-in", "host.refresh", NULL), ==, 1);
    /* Not Out's, not the installation's (users, bindings, root groups). */
    g_assert_cmpuint(audit_count(all, "admin", "host.refresh", hout_id), ==, 1);
    g_assert_cmpuint(audit_count(mine, "admin", "host.refresh", hout_id), ==, 0);
    g_assert_cmpuint(audit_count(mine, NULL, "user.create", NULL), ==, 0);
    g_assert_cmpuint(audit_count(mine, NULL, "binding.create", NULL), ==, 0);
    g_assert_cmpuint(audit_count(mine, NULL, "host_group.create", NULL), ==, 0);
    for (guint i = 0; i < json_array_get_length(mine); i++) {
        JsonObject *e = json_array_get_object_element(mine, i);
        g_assert_true(g_strcmp0(dv_json_get_string(e, "host_group_id", NULL), f->hg_in) == 0 ||
                      g_strcmp0(dv_json_get_string(e, "user", NULL), "ro-in") == 0);
    }
    /* The global administrator reads everything. */
    g_assert_cmpuint(audit_count(all, "admin", "host.refresh", NULL), ==, 2);
    g_assert_cmpuint(audit_count(all, "admin", "host.create", NULL), ==, 2);
    g_assert_cmpuint(audit_count(all, "admin", "user.create", NULL), ==, 2);
    g_assert_cmpuint(audit_count(all, "ro-in", "host.refresh", NULL), ==, 1);
    g_assert_cmpuint(json_array_get_length(all), >, json_array_get_length(mine));
}

/* A user bound to @role over the object @ref of scope kind @kind, logged in. */
static char *
make_user_on(Fixture *f, const char *name, const char *role, const char *kind, const char *ref)
{
    g_autofree char *ubody = g_strdup_printf("{\"name\":\"%s\",\"password\":\"%s\"}", name, PW);
    g_autofree char *bbody = g_strdup_printf(
        "{\"user\":\"%s\",\"role\":\"%s\",\"scope\":{\"kind\":\"%s\",\"ref\":\"%s\"}}", name, role,
        kind, ref);
    g_autofree char *login = g_strdup_printf("{\"user\":\"%s\",\"password\":\"%s\"}", name, PW);
    g_autoptr(JsonObject) u = req_ok(f, f->d->token, "POST", "/api/v1/users", ubody, 201);
    g_autoptr(JsonObject) b = req_ok(f, f->d->token, "POST", "/api/v1/bindings", bbody, 201);
    g_autoptr(JsonObject) s = req_ok(f, NULL, "POST", "/api/v1/session", login, 201);
    return g_strdup(json_object_get_string_member(s, "token"));
}

/* Entries of @operation whose scope is (@kind, @id). */
static guint
audit_scoped(JsonArray *items, const char *operation, const char *kind, const char *id)
{
    guint n = 0;
    for (guint i = 0; i < json_array_get_length(items); i++) {
        JsonObject *e = json_array_get_object_element(items, i);
        if (g_strcmp0(dv_json_get_string(e, "operation", NULL), operation) == 0 &&
            g_strcmp0(dv_json_get_string(e, "scope_kind", NULL), kind) == 0 &&
            g_strcmp0(dv_json_get_string(e, "scope_id", NULL), id) == 0)
            n++;
    }
    return n;
}

static char *
id_of(Fixture *f, const char *path)
{
    g_autoptr(JsonObject) o = req_ok(f, f->d->token, "GET", path, NULL, 200);
    return g_strdup(json_object_get_string_member(o, "id"));
}

/* Entries about a catalog, a library share or a Run As account carry
 * that object as their scope (and a share its host's group): a
 * read-only administrator bound to the object reads them, one bound to
 * another object or to a group they are not in does not. */
static void
test_audit_objects(Fixture *f, gconstpointer data)
{
    g_autofree char *lroot =
        g_strdup_printf("{\"name\":\"lroot\",\"path\":\"%s/library/lroot\"}", f->d->state_dir);
    g_autofree char *cat = NULL, *ra = NULL, *lr = NULL, *lh = NULL;
    g_autofree char *ro_cat = NULL, *ro_share = NULL, *ro_ra = NULL, *ro_in = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonArray) all = NULL;
    g_autoptr(JsonArray) seen = NULL;

    dv_test_run_job_ok(f->d, "POST", "/api/v1/run-as-accounts",
                       "{\"name\":\"rin\",\"username\":\"root\",\"password\":\"audit-Pw-12\"}");
    dv_test_run_job_ok(f->d, "POST", "/api/v1/library-shares", lroot);
    dv_test_run_job_ok(f->d, "POST", "/api/v1/library-shares",
                       "{\"name\":\"lhost\",\"host\":\"hin\",\"pool\":\"pool1\"}");
    /* A catalog of a list of hosts: under no group.  test:// cannot
     * upload identity disks, so its job fails once the row is made. */
    dv_test_run_job_ok(f->d, "POST", "/api/v1/vms/vin0/stop", NULL);
    dv_test_run_job_ok(f->d, "POST", "/api/v1/vms/vin0/snapshots", "{\"name\":\"s1\"}");
    job = dv_test_run_job(f->d, "POST", "/api/v1/catalogs",
                          "{\"name\":\"catin\",\"master_vm\":\"vin0\",\"master_snapshot\":\"s1\","
                          "\"hosts\":[\"hin\"],\"pool\":\"pool1\",\"naming_scheme\":\"dc-#\","
                          "\"count\":1,\"machine\":{\"memory_mib\":64}}");
    dv_test_assert_job_state(job, "failed");
    g_clear_pointer(&job, json_object_unref);
    job = dv_test_run_job(f->d, "POST", "/api/v1/catalogs/catin/provision", NULL);
    cat = id_of(f, "/api/v1/catalogs/catin");
    ra = id_of(f, "/api/v1/run-as-accounts/rin");
    lr = id_of(f, "/api/v1/library-shares/lroot");
    lh = id_of(f, "/api/v1/library-shares/lhost");

    ro_cat = make_user_on(f, "ro-cat", "read-only-administrator", "catalog", "catin");
    ro_share = make_user_on(f, "ro-share", "read-only-administrator", "library_share", "lroot");
    ro_ra = make_user_on(f, "ro-ra", "read-only-administrator", "run_as", "rin");
    ro_in = make_user(f, "ro-in", "read-only-administrator");

    /* The administrator's entries name their object as scope. */
    all = audit(f, f->d->token);
    g_assert_cmpuint(audit_scoped(all, "catalog.create", "catalog", cat), ==, 1);
    g_assert_cmpuint(audit_scoped(all, "catalog.provision", "catalog", cat), ==, 1);
    g_assert_cmpuint(audit_scoped(all, "run_as.create", "run_as", ra), ==, 1);
    g_assert_cmpuint(audit_scoped(all, "library_share.create", "library_share", lr), ==, 1);
    g_assert_cmpuint(audit_scoped(all, "library_share.create", "library_share", lh), ==, 1);

    /* Bound to the catalog: its entries, nothing else of the admin's. */
    seen = audit(f, ro_cat);
    g_assert_cmpuint(audit_scoped(seen, "catalog.create", "catalog", cat), ==, 1);
    g_assert_cmpuint(audit_scoped(seen, "catalog.provision", "catalog", cat), ==, 1);
    g_assert_cmpuint(audit_count(seen, NULL, "run_as.create", NULL), ==, 0);
    g_assert_cmpuint(audit_count(seen, NULL, "library_share.create", NULL), ==, 0);
    g_assert_cmpuint(audit_count(seen, NULL, "host.create", NULL), ==, 0);
    g_clear_pointer(&seen, json_array_unref);

    /* Bound to the root share: its entry, not the host's share's. */
    seen = audit(f, ro_share);
    g_assert_cmpuint(audit_scoped(seen, "library_share.create", "library_share", lr), ==, 1);
    g_assert_cmpuint(audit_scoped(seen, "library_share.create", "library_share", lh), ==, 0);
    g_assert_cmpuint(audit_count(seen, NULL, "catalog.create", NULL), ==, 0);
    g_assert_cmpuint(audit_count(seen, NULL, "run_as.create", NULL), ==, 0);
    g_clear_pointer(&seen, json_array_unref);

    /* Bound to the Run As account. */
    seen = audit(f, ro_ra);
    g_assert_cmpuint(audit_scoped(seen, "run_as.create", "run_as", ra), ==, 1);
    g_assert_cmpuint(audit_count(seen, NULL, "catalog.create", NULL), ==, 0);
    g_assert_cmpuint(audit_count(seen, NULL, "library_share.create", NULL), ==, 0);
    g_clear_pointer(&seen, json_array_unref);

    /* Bound to In: the share on hin (its host's group), not the others. */
    seen = audit(f, ro_in);
    g_assert_cmpuint(audit_scoped(seen, "library_share.create", "library_share", lh), ==, 1);
    g_assert_cmpuint(audit_scoped(seen, "library_share.create", "library_share", lr), ==, 0);
    g_assert_cmpuint(audit_count(seen, NULL, "run_as.create", NULL), ==, 0);
    g_assert_cmpuint(audit_count(seen, NULL, "catalog.create", NULL), ==, 0);
    g_assert_cmpuint(audit_count(seen, NULL, "catalog.provision", NULL), ==, 0);
}

/* A catalog of host group In whose machine failed at the identity step
 * (test:// cannot upload): the delegated administrator of In reads the
 * machine's error withheld and the images' bases without volume names,
 * the administrator both. */
static void
test_catalog_errors(Fixture *f, gconstpointer data)
{
    g_autofree char *del = make_user(f, "del-in", "delegated-administrator");
    g_autoptr(JsonObject) job = NULL;
    g_autofree char *admin_error = NULL;

    dv_test_run_job_ok(f->d, "POST", "/api/v1/vms/vin0/stop", NULL);
    dv_test_run_job_ok(f->d, "POST", "/api/v1/vms/vin0/snapshots", "{\"name\":\"s1\"}");
    job = dv_test_run_job(f->d, "POST", "/api/v1/catalogs",
                          "{\"name\":\"catg\",\"master_vm\":\"vin0\",\"master_snapshot\":\"s1\","
                          "\"host_group\":\"In\",\"pool\":\"pool1\",\"naming_scheme\":\"dg-#\","
                          "\"count\":1,\"machine\":{\"memory_mib\":64}}");
    dv_test_assert_job_state(job, "failed");
    {
        g_autoptr(JsonObject) page =
            req_ok(f, f->d->token, "GET", "/api/v1/catalogs/catg/machines", NULL, 200);
        JsonObject *m = json_array_get_object_element(json_object_get_array_member(page, "items"), 0);
        admin_error = g_strdup(dv_json_get_string(m, "error", NULL));
        g_assert_nonnull(admin_error);
        g_assert_null(strstr(admin_error, "withheld"));
    }
    {
        g_autoptr(JsonObject) page =
            req_ok(f, del, "GET", "/api/v1/catalogs/catg/machines", NULL, 200);
        JsonObject *m = json_array_get_object_element(json_object_get_array_member(page, "items"), 0);
        const char *e = dv_json_get_string(m, "error", "");
        g_test_message("delegated administrator reads: %s", e);
        g_assert_nonnull(strstr(e, "withheld"));
        g_assert_nonnull(strstr(e, "failed"));
        g_assert_cmpstr(e, !=, admin_error);
        g_assert_false(json_object_has_member(m, "overlay_path"));
    }
    for (guint who = 0; who < 2; who++) {
        g_autoptr(JsonObject) page = req_ok(f, who == 0 ? f->d->token : del, "GET",
                                            "/api/v1/catalogs/catg/images", NULL, 200);
        JsonObject *img =
            json_array_get_object_element(json_object_get_array_member(page, "items"), 0);
        JsonObject *base =
            json_array_get_object_element(json_object_get_array_member(img, "bases"), 0);
        g_autofree char *text = object_text(page);
        g_assert_nonnull(base);
        g_assert_nonnull(dv_json_get_string(base, "state", NULL));
        if (who == 0) {
            g_assert_nonnull(strstr(text, "catg-base-v1.qcow2"));
        } else {
            g_assert_null(strstr(text, "catg-base"));
            g_assert_false(json_object_has_member(base, "volume_name"));
        }
    }
    /* The reconcile report lists volumes by pool and path: absent for the
     * delegated administrator, its verdict kept. */
    for (guint who = 0; who < 2; who++) {
        g_autoptr(JsonObject) rep = req_ok(f, who == 0 ? f->d->token : del, "GET",
                                           "/api/v1/catalogs/catg/reconcile", NULL, 200);
        g_assert_true(json_object_has_member(rep, "ok"));
        g_assert_true(json_object_has_member(rep, "hosts_checked"));
        g_assert_cmpint(json_object_has_member(rep, "orphans_on_hosts"), ==, who == 0);
        g_assert_cmpint(json_object_has_member(rep, "missing_on_hosts"), ==, who == 0);
        g_assert_cmpint(json_object_has_member(rep, "pool_problems"), ==, who == 0);
    }
}

int
main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*func)(Fixture *, gconstpointer);
    } tests[] = {
        { "events", test_events },
        { "redaction", test_redaction },
        { "error-redaction", test_error_redaction },
        { "audit", test_audit },
        { "audit-objects", test_audit_objects },
        { "catalog-errors", test_catalog_errors },
    };
    static const char *const backends[] = { "sqlite", "postgresql" };

    g_test_init(&argc, &argv, NULL);
    for (gsize b = 0; b < G_N_ELEMENTS(backends); b++)
        for (gsize i = 0; i < G_N_ELEMENTS(tests); i++) {
            g_autofree char *path =
                g_strdup_printf("/drover/api/jobs-access/%s/%s", backends[b], tests[i].name);
            g_test_add(path, Fixture, backends[b], fixture_setup, tests[i].func,
                       fixture_teardown);
        }
    return g_test_run();
}
