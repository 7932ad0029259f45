/* The engine tier: a DvEngine in process (SQLite in a temp dir) against
 * libvirt's test driver, one XML file per simulated host.  Jobs are
 * submitted through the same calls the daemon uses and read back from the
 * store once the job manager is idle. */
#define G_LOG_DOMAIN "DvTestEngine"

#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-test-catalog.h"
#include "dv-test-util.h"

#include <string.h>

#define WAIT_MS 30000

typedef struct {
    char *tmpdir;
    char *state_dir;
    DvEngine *engine;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    f->tmpdir = g_dir_make_tmp("drover-engine-XXXXXX", &error);
    g_assert_no_error(error);
    f->state_dir = g_build_filename(f->tmpdir, "state", NULL);
    f->engine = dv_test_engine_new(f->state_dir, FALSE);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    const char *const argv[] = { "rm", "-rf", "--", f->tmpdir, NULL };
    int status = 0;
    g_clear_pointer(&f->engine, dv_engine_free);
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                               NULL, &status, NULL));
    g_free(f->state_dir);
    g_free(f->tmpdir);
}

/* --- helpers --------------------------------------------------------------- */

static char *
to_text(JsonObject *o)
{
    return dv_json_object_to_string(o, FALSE);
}

static DvStore *
store(Fixture *f)
{
    return dv_engine_get_store(f->engine);
}

/* Waits until no job runs, then returns the job's row. */
static JsonObject *
job_wait(Fixture *f, JsonObject *job)
{
    return dv_test_engine_job_row(f->engine, job, WAIT_MS);
}

static void
assert_failed(JsonObject *job, const char *code, const char *field, const char *in_message)
{
    JsonObject *err;
    if (g_strcmp0(dv_json_get_string(job, "state", ""), "failed") != 0) {
        g_autofree char *t = to_text(job);
        g_error("job did not fail: %s", t);
    }
    err = dv_json_get_object(job, "error");
    g_assert_nonnull(err);
    g_test_message("job error: %s", dv_json_get_string(err, "message", ""));
    g_assert_cmpstr(dv_json_get_string(err, "code", ""), ==, code);
    if (field != NULL)
        g_assert_cmpstr(dv_json_get_string(err, "field", "(null)"), ==, field);
    if (in_message != NULL)
        g_assert_nonnull(strstr(dv_json_get_string(err, "message", ""), in_message));
    g_assert_false(json_object_get_null_member(job, "finished_at"));
}

static void
assert_error(GError *error, DvErrorCode code, const char *field, const char *in_message)
{
    g_assert_error(error, DV_ERROR, (gint)code);
    g_test_message("error: %s", error->message);
    if (field != NULL)
        g_assert_cmpstr(dv_error_get_field(error), ==, field);
    if (in_message != NULL)
        g_assert_nonnull(strstr(error->message, in_message));
}

static gint64
count(Fixture *f, const DvTableDef *def, const char *column, const char *value)
{
    g_autoptr(GError) error = NULL;
    DvFilter filter = { column, DV_FILTER_EQ, value };
    gint64 n = dv_store_count(store(f), def, column != NULL ? &filter : NULL, column != NULL ? 1 : 0,
                              &error);
    g_assert_no_error(error);
    return n;
}

/* create/update through the engine as the API would; returns the job row
 * once it finished. */
static JsonObject *
create(Fixture *f, DvKind kind, const char *json)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    g_autoptr(JsonObject) job =
        dv_engine_create(f->engine, kind, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    return job_wait(f, job);
}

static JsonObject *
update(Fixture *f, DvKind kind, const char *ref, const char *json)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    g_autoptr(JsonObject) job =
        dv_engine_update(f->engine, kind, ref, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    return job_wait(f, job);
}

/* A simulated host with @ndomains domains named <name>0.., pool "pool1"
 * and network "net1"; returns its id. */
static char *
add_host(Fixture *f, const char *name, guint ndomains, const char *extra)
{
    g_autofree char *file = g_strdup_printf("%s.xml", name);
    g_autofree char *xml = dv_test_write_host_xml(f->tmpdir, file, name, ndomains);
    g_autofree char *body = g_strdup_printf("{\"name\":\"%s\",\"uri\":\"test://%s\"%s%s}", name, xml,
                                            extra != NULL ? "," : "", extra != NULL ? extra : "");
    g_autoptr(JsonObject) job = create(f, DV_KIND_HOST, body);
    dv_test_assert_job_succeeded(job);
    return g_strdup(dv_json_get_string(dv_json_get_object(job, "result"), "id", ""));
}

static JsonObject *
row(Fixture *f, const DvTableDef *def, const char *id)
{
    g_autoptr(GError) error = NULL;
    JsonObject *r = dv_store_get(store(f), def, id, &error);
    g_assert_no_error(error);
    return r;
}

static JsonObject *
find(Fixture *f, const DvTableDef *def, const char *column, const char *value)
{
    g_autoptr(GError) error = NULL;
    JsonObject *r = dv_store_find(store(f), def, column, value, &error);
    if (r == NULL)
        g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    return r;
}

static void
set_columns(Fixture *f, const DvTableDef *def, const char *id, const char *json)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) changes = dv_test_json_object(json);
    g_assert_true(dv_store_update(store(f), def, id, changes, &error));
    g_assert_no_error(error);
}

static void
refresh(Fixture *f, const char *host_id)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job =
        dv_engine_host_refresh(f->engine, host_id, DV_ACTOR_NAMED("tester"), &error);
    g_autoptr(JsonObject) done = NULL;
    g_assert_no_error(error);
    done = dv_test_engine_run(f->engine, job, WAIT_MS);
}

/* TRUE when the host (as its one connection sees it) has a volume at
 * @path: refreshes the inventory and looks. */
static gboolean
host_has_volume(Fixture *f, const char *host_id, const char *path)
{
    g_autoptr(JsonObject) vol = NULL;
    refresh(f, host_id);
    vol = find(f, &dv_table_volumes, "path", path);
    return vol != NULL && g_strcmp0(dv_json_get_string(vol, "host_id", ""), host_id) == 0;
}

static void
assert_nothing_running(Fixture *f)
{
    g_assert_cmpuint(dv_job_manager_get_n_active(dv_engine_get_jobs(f->engine)), ==, 0);
    g_assert_cmpint(count(f, &dv_table_jobs, "state", "running"), ==, 0);
    g_assert_cmpint(count(f, &dv_table_jobs, "state", "queued"), ==, 0);
}

/* --- mixed clusters -------------------------------------------------------- */

static void
test_mixed_cluster(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonObject) j = create(f, DV_KIND_CLUSTER, "{\"name\":\"c\"}");
    g_autofree char *a = NULL;
    g_autofree char *c_id = NULL;
    g_autoptr(JsonObject) host_a = NULL;
    g_autofree char *changes = NULL;
    gint64 major;

    dv_test_assert_job_succeeded(j);
    c_id = g_strdup(dv_json_get_string(dv_json_get_object(j, "result"), "id", ""));
    a = add_host(f, "hosta", 1, "\"cluster\":\"c\"");
    host_a = row(f, &dv_table_hosts, a);
    g_assert_cmpstr(dv_json_get_string(host_a, "cluster_id", ""), ==, c_id);
    g_assert_cmpstr(dv_json_get_string(host_a, "hypervisor_type", ""), ==, "TEST");
    major = dv_json_get_int(host_a, "hypervisor_major", -1);
    g_assert_cmpint(major, >=, 0);

    /* Host A runs another major version now. */
    changes = g_strdup_printf("{\"hypervisor_major\":%" G_GINT64_FORMAT "}", major + 1);
    set_columns(f, &dv_table_hosts, a, changes);

    /* Adding B (the test driver, the old major) to the cluster fails in
     * the job, naming the field, and leaves no host row. */
    {
        g_autofree char *xml = dv_test_write_host_xml(f->tmpdir, "hostb.xml", "hostb", 2);
        g_autofree char *body = g_strdup_printf("{\"name\":\"hostb\",\"uri\":\"test://%s\",\"cluster\":\"c\"}",
                                                xml);
        g_autoptr(JsonObject) job = create(f, DV_KIND_HOST, body);
        g_autoptr(JsonObject) b = NULL;
        assert_failed(job, "conflict", "cluster", "mixed");
        b = find(f, &dv_table_hosts, "name", "hostb");
        g_assert_null(b);
        g_assert_cmpint(count(f, &dv_table_hosts, NULL, NULL), ==, 1);
        /* Nothing read from B was kept either. */
        g_assert_cmpint(count(f, &dv_table_vms, NULL, NULL), ==, 1);
    }

    /* Moving an existing host C into the cluster is refused the same way;
     * C stays outside it. */
    {
        g_autofree char *c = add_host(f, "hostc", 0, NULL);
        g_autoptr(JsonObject) job = update(f, DV_KIND_HOST, "hostc", "{\"cluster\":\"c\"}");
        g_autoptr(JsonObject) host_c = NULL;
        assert_failed(job, "conflict", "cluster", "mixed");
        host_c = row(f, &dv_table_hosts, c);
        g_assert_true(json_object_get_null_member(host_c, "cluster_id"));
    }
    /* Without the difference C may join. */
    {
        g_autofree char *back = g_strdup_printf("{\"hypervisor_major\":%" G_GINT64_FORMAT "}", major);
        g_autoptr(JsonObject) job = NULL;
        set_columns(f, &dv_table_hosts, a, back);
        job = update(f, DV_KIND_HOST, "hostc", "{\"cluster\":\"c\"}");
        dv_test_assert_job_succeeded(job);
    }
    assert_nothing_running(f);
}

/* --- host groups -------------------------------------------------------------- */

static void
test_host_group_rules(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) j = NULL;
    gint64 jobs_before;

    j = create(f, DV_KIND_HOST_GROUP, "{\"name\":\"a\"}");
    dv_test_assert_job_succeeded(j);
    g_clear_pointer(&j, json_object_unref);
    j = create(f, DV_KIND_HOST_GROUP, "{\"name\":\"b\",\"parent\":\"a\"}");
    dv_test_assert_job_succeeded(j);
    g_clear_pointer(&j, json_object_unref);
    j = create(f, DV_KIND_HOST_GROUP, "{\"name\":\"c\",\"parent\":\"b\"}");
    dv_test_assert_job_succeeded(j);
    g_clear_pointer(&j, json_object_unref);
    jobs_before = count(f, &dv_table_jobs, NULL, NULL);

    /* a -> b -> c: a under c would be a cycle, a under a too.  Refused at
     * once, naming the field, and no job is made. */
    {
        g_autoptr(JsonObject) body = dv_test_json_object("{\"parent\":\"c\"}");
        g_autoptr(JsonObject) job = dv_engine_update(f->engine, DV_KIND_HOST_GROUP, "a", body,
                                                     DV_ACTOR_NAMED("tester"), &error);
        g_assert_null(job);
        assert_error(error, DV_ERROR_INVALID_ARGUMENT, "parent", "ancestor");
        g_clear_error(&error);
    }
    {
        g_autoptr(JsonObject) body = dv_test_json_object("{\"parent\":\"a\"}");
        g_autoptr(JsonObject) job = dv_engine_update(f->engine, DV_KIND_HOST_GROUP, "a", body,
                                                     DV_ACTOR_NAMED("tester"), &error);
        g_assert_null(job);
        assert_error(error, DV_ERROR_INVALID_ARGUMENT, "parent", NULL);
        g_clear_error(&error);
    }
    /* A group with a child group is not deleted. */
    {
        g_autoptr(JsonObject) job = dv_engine_delete(f->engine, DV_KIND_HOST_GROUP, "b", NULL,
                                                     DV_ACTOR_NAMED("tester"), &error);
        g_assert_null(job);
        assert_error(error, DV_ERROR_CONFLICT, NULL, "host groups");
        g_clear_error(&error);
    }
    g_assert_cmpint(count(f, &dv_table_jobs, NULL, NULL), ==, jobs_before);
    g_assert_cmpint(count(f, &dv_table_host_groups, NULL, NULL), ==, 3);

    /* A legal move works: c straight under a; then the leaf can go. */
    j = update(f, DV_KIND_HOST_GROUP, "c", "{\"parent\":\"a\"}");
    dv_test_assert_job_succeeded(j);
    {
        g_autoptr(JsonObject) ga = find(f, &dv_table_host_groups, "name", "a");
        g_autoptr(JsonObject) gc = find(f, &dv_table_host_groups, "name", "c");
        g_assert_cmpstr(dv_json_get_string(gc, "parent_id", ""), ==, dv_json_get_string(ga, "id", "?"));
    }
    {
        g_autoptr(JsonObject) job = dv_engine_delete(f->engine, DV_KIND_HOST_GROUP, "b", NULL,
                                                     DV_ACTOR_NAMED("tester"), &error);
        g_autoptr(JsonObject) done = NULL;
        g_assert_no_error(error);
        done = dv_test_engine_run(f->engine, job, WAIT_MS);
    }
    g_assert_cmpint(count(f, &dv_table_host_groups, NULL, NULL), ==, 2);
}

/* --- hosts that need attention ------------------------------------------------ */

static void
test_needs_attention(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *h = add_host(f, "weak", 0, NULL);
    g_autoptr(JsonObject) body = dv_test_json_object("{\"name\":\"vm1\",\"host\":\"weak\",\"memory_mib\":64,"
                                                     "\"disks\":[{\"size_mib\":16,\"pool\":\"pool1\"}]}");
    g_autoptr(JsonObject) job = NULL;
    gint64 jobs_before;

    /* What a host add records when the rights check finds no define
     * right. */
    set_columns(f, &dv_table_hosts, h,
                "{\"state\":\"needs-attention\",\"state_reason\":\"missing rights: define_domains\","
                "\"rights\":{\"read_write\":true,\"list_storage\":true,\"create_volumes\":true,"
                "\"define_domains\":false,\"missing\":[\"define_domains\"],\"detail\":\"\"}}");
    jobs_before = count(f, &dv_table_jobs, NULL, NULL);
    job = dv_engine_create(f->engine, DV_KIND_VM, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_null(job);
    assert_error(error, DV_ERROR_CONFLICT, "host", "define_domains");
    g_assert_nonnull(strstr(error->message, "needs-attention"));
    g_assert_cmpint(count(f, &dv_table_jobs, NULL, NULL), ==, jobs_before);
    g_assert_cmpint(count(f, &dv_table_vms, "host_id", h), ==, 0);
    g_clear_error(&error);

    /* Once the host is fine again the same request is accepted. */
    set_columns(f, &dv_table_hosts, h, "{\"state\":\"ok\",\"state_reason\":null}");
    job = dv_engine_create(f->engine, DV_KIND_VM, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    {
        g_autoptr(JsonObject) done = dv_test_engine_run(f->engine, job, WAIT_MS);
    }
}

/* --- vm.create cleans up after itself ----------------------------------------- */

static void
test_vm_create_cleanup(Fixture *f, gconstpointer data)
{
    g_autofree char *h = add_host(f, "cl", 2, NULL);
    g_autofree char *ghost_id = g_uuid_string_random();
    g_autoptr(GError) error = NULL;
    gint64 vols_before;

    g_assert_cmpint(count(f, &dv_table_vms, "host_id", h), ==, 2);
    vols_before = count(f, &dv_table_volumes, "host_id", h);

    /* 1. The second disk's pool exists in the database only: the first
     *    volume is made, the second fails; the first must go again. */
    {
        g_autoptr(JsonObject) pool = json_object_new();
        g_autoptr(JsonObject) job = NULL;
        json_object_set_string_member(pool, "id", ghost_id);
        json_object_set_string_member(pool, "host_id", h);
        json_object_set_string_member(pool, "name", "ghost");
        json_object_set_string_member(pool, "uuid", ghost_id);
        json_object_set_string_member(pool, "type", "dir");
        json_object_set_string_member(pool, "path", "/ghost");
        json_object_set_string_member(pool, "state", "running");
        json_object_set_int_member(pool, "capacity", G_GINT64_CONSTANT(107374182400));
        json_object_set_int_member(pool, "allocation", 0);
        json_object_set_int_member(pool, "available", G_GINT64_CONSTANT(107374182400));
        g_assert_true(dv_store_insert(store(f), &dv_table_pools, pool, &error));
        g_assert_no_error(error);

        job = create(f, DV_KIND_VM,
                     "{\"name\":\"half\",\"host\":\"cl\",\"memory_mib\":64,"
                     "\"disks\":[{\"size_mib\":16,\"pool\":\"pool1\"},{\"size_mib\":16,\"pool\":\"ghost\"}]}");
        g_assert_cmpstr(dv_json_get_string(job, "state", ""), ==, "failed");
        g_test_message("job error: %s",
                       dv_json_get_string(dv_json_get_object(job, "error"), "message", ""));
        g_assert_nonnull(strstr(dv_json_get_string(dv_json_get_object(job, "error"), "message", ""),
                                "disks[1]"));
        g_assert_cmpstr(dv_json_get_string(job, "current_step", ""), ==, "create volumes");
        g_assert_null(find(f, &dv_table_vms, "name", "half"));
        assert_nothing_running(f);
        g_assert_false(host_has_volume(f, h, "/pool1/half-disk0.qcow2"));
        /* The refresh dropped the ghost pool: it is not on the host. */
        g_assert_null(find(f, &dv_table_pools, "name", "ghost"));
        g_assert_cmpint(count(f, &dv_table_volumes, "host_id", h), ==, vols_before);
    }

    /* 2. The define fails: the host has a domain "cl0" the database has
     *    forgotten, so the name passes validation but libvirt refuses a
     *    second domain of that name.  The volume made for it goes, the
     *    domain that was there stays. */
    {
        g_autoptr(JsonObject) vm = find(f, &dv_table_vms, "name", "cl0");
        g_autoptr(JsonObject) job = NULL;
        g_autofree char *uuid = NULL;
        g_assert_nonnull(vm);
        uuid = g_strdup(dv_json_get_string(vm, "uuid", ""));
        g_assert_true(dv_store_delete(store(f), &dv_table_vms, dv_json_get_string(vm, "id", ""),
                                      &error));
        g_assert_no_error(error);

        job = create(f, DV_KIND_VM,
                     "{\"name\":\"cl0\",\"host\":\"cl\",\"memory_mib\":64,"
                     "\"disks\":[{\"size_mib\":16,\"pool\":\"pool1\"}]}");
        g_assert_cmpstr(dv_json_get_string(job, "state", ""), ==, "failed");
        g_test_message("job error: %s",
                       dv_json_get_string(dv_json_get_object(job, "error"), "message", ""));
        g_assert_cmpstr(dv_json_get_string(job, "current_step", ""), ==, "define domain");
        g_assert_null(find(f, &dv_table_vms, "name", "cl0"));
        assert_nothing_running(f);
        g_assert_false(host_has_volume(f, h, "/pool1/cl0-disk0.qcow2"));
        g_assert_cmpint(count(f, &dv_table_volumes, "host_id", h), ==, vols_before);
        /* The refresh imported the old domain again, unchanged. */
        g_clear_pointer(&vm, json_object_unref);
        vm = find(f, &dv_table_vms, "name", "cl0");
        g_assert_nonnull(vm);
        g_assert_cmpstr(dv_json_get_string(vm, "uuid", ""), ==, uuid);
    }
}

/* --- job recovery ---------------------------------------------------------------- */

static char *
insert_running_job(Fixture *f, const char *kind, const char *target_type, const char *target_id,
                   const char *host_id, const char *params, const char *steps)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) rec = json_object_new();
    g_autofree char *id = g_uuid_string_random();
    gint64 now = dv_store_now();

    json_object_set_string_member(rec, "id", id);
    json_object_set_string_member(rec, "kind", kind);
    json_object_set_string_member(rec, "state", "running");
    json_object_set_string_member(rec, "target_type", target_type);
    json_object_set_string_member(rec, "target_id", target_id);
    json_object_set_string_member(rec, "target_name", "x");
    json_object_set_string_member(rec, "host_id", host_id);
    json_object_set_object_member(rec, "params", dv_test_json_object(params));
    {
        g_autoptr(JsonParser) p = json_parser_new();
        g_assert_true(json_parser_load_from_data(p, steps, -1, NULL));
        json_object_set_member(rec, "steps", json_node_copy(json_parser_get_root(p)));
    }
    json_object_set_string_member(rec, "current_step", "snapshot");
    json_object_set_int_member(rec, "progress", 30);
    json_object_set_null_member(rec, "error");
    json_object_set_null_member(rec, "result");
    json_object_set_string_member(rec, "created_by", "tester");
    json_object_set_string_member(rec, "server_id", "a-server-that-died");
    json_object_set_boolean_member(rec, "cancel_requested", FALSE);
    json_object_set_int_member(rec, "attempts", 1);
    json_object_set_int_member(rec, "created_at", now);
    json_object_set_int_member(rec, "started_at", now);
    json_object_set_int_member(rec, "updated_at", now);
    json_object_set_null_member(rec, "finished_at");
    g_assert_true(dv_store_insert(store(f), &dv_table_jobs, rec, &error));
    g_assert_no_error(error);
    return g_steal_pointer(&id);
}

static void
test_job_recovery(Fixture *f, gconstpointer data)
{
    g_autofree char *h = NULL;
    g_autofree char *refresh_id = NULL;
    g_autofree char *revert_id = NULL;
    g_autoptr(JsonObject) vm = NULL;
    guint resumed = 0, failed = 0;

    /* An engine that leaves interrupted jobs alone, as a server that
     * crashed would have left them. */
    g_clear_pointer(&f->engine, dv_engine_free);
    f->engine = dv_test_engine_new(f->state_dir, TRUE);
    h = add_host(f, "rec", 1, NULL);
    vm = find(f, &dv_table_vms, "name", "rec0");
    g_assert_nonnull(vm);
    refresh_id = insert_running_job(f, "host.refresh", "host", h, h, "{}",
                                    "[{\"name\":\"connect\",\"weight\":20,\"state\":\"done\"},"
                                    "{\"name\":\"check rights\",\"weight\":20,\"state\":\"running\"},"
                                    "{\"name\":\"read inventory\",\"weight\":20,\"state\":\"pending\"},"
                                    "{\"name\":\"save\",\"weight\":40,\"state\":\"pending\"}]");
    revert_id = insert_running_job(f, "vm.snapshot.revert", "vm", dv_json_get_string(vm, "id", ""), h,
                                   "{\"snapshot\":\"s1\"}",
                                   "[{\"name\":\"snapshot\",\"weight\":80,\"state\":\"running\"},"
                                   "{\"name\":\"save\",\"weight\":20,\"state\":\"pending\"}]");
    g_assert_cmpint(count(f, &dv_table_jobs, "state", "running"), ==, 2);

    /* A second engine on the same database recovers them. */
    g_clear_pointer(&f->engine, dv_engine_free);
    f->engine = dv_test_engine_new(f->state_dir, FALSE);
    dv_engine_get_recovery(f->engine, &resumed, &failed);
    g_test_message("recovery: %u resumed, %u failed", resumed, failed);
    /* Each job once: the refresh the "running" pass queued again must not
     * be picked up a second time by the "queued" pass (it would run twice
     * and leave dv_job_manager_wait_idle() early). */
    g_assert_cmpuint(resumed, ==, 1);
    g_assert_cmpuint(failed, ==, 1);
    g_assert_true(dv_job_manager_wait_idle(dv_engine_get_jobs(f->engine), WAIT_MS));
    {
        g_autoptr(JsonObject) j = row(f, &dv_table_jobs, refresh_id);
        dv_test_assert_job_succeeded(j);
        g_assert_cmpint(dv_json_get_int(j, "attempts", 0), ==, 2);
        g_assert_cmpint(dv_json_get_int(j, "progress", 0), ==, 100);
        g_assert_cmpstr(dv_json_get_string(j, "server_id", ""), ==,
                        dv_engine_get_server_id(f->engine));
    }
    {
        g_autoptr(JsonObject) j = row(f, &dv_table_jobs, revert_id);
        JsonArray *steps = dv_json_get_array(j, "steps");
        assert_failed(j, "unavailable", NULL, "restart");
        /* It did not run again: the steps it had are kept, the one it
         * was in marked failed. */
        g_assert_cmpint(dv_json_get_int(j, "attempts", 0), ==, 1);
        g_assert_nonnull(steps);
        g_assert_cmpuint(json_array_get_length(steps), ==, 2);
        g_assert_cmpstr(dv_json_get_string(json_array_get_object_element(steps, 0), "state", ""),
                        ==, "failed");
    }
    assert_nothing_running(f);
    /* The host is still there and fine after the re-run refresh. */
    {
        g_autoptr(JsonObject) host = row(f, &dv_table_hosts, h);
        g_assert_cmpstr(dv_json_get_string(host, "state", ""), ==, "ok");
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("/drover/engine/mixed-cluster", test_mixed_cluster);
    ADD("/drover/engine/host-group-rules", test_host_group_rules);
    ADD("/drover/engine/needs-attention", test_needs_attention);
    ADD("/drover/engine/vm-create-cleanup", test_vm_create_cleanup);
    ADD("/drover/engine/job-recovery", test_job_recovery);
    return g_test_run();
}
