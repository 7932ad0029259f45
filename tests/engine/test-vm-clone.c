#define G_LOG_DOMAIN "DvTestVmClone"

/* Clone (issue 12, item 6) in the engine on SQLite and on PostgreSQL
 * against a test:/// host (whose driver copies volumes as metadata): a
 * full and a linked clone get their own disks, UUID and name; refusals
 * name their field and write nothing.  What boots is in
 * tests/engine/test-vm-clone-system.c. */

#include "dv-auth-users.h"
#include "dv-authz.h"
#include "dv-core.h"
#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-test-catalog.h"
#include "dv-test-pg.h"
#include "dv-test-util.h"
#include "dv-virt.h"
#include "dv-vms.h"

#include <string.h>

#define WAIT_MS 30000

typedef struct {
    char *tmpdir;
    char *pg_dbname;
    DvEngine *engine;
    char *vm_id;
} Fixture;

static gint64
count(Fixture *f, const DvTableDef *def)
{
    g_autoptr(GError) error = NULL;
    gint64 n = dv_store_count(dv_engine_get_store(f->engine), def, NULL, 0, &error);
    g_assert_no_error(error);
    return n;
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autofree char *xml = NULL;
    g_autofree char *body = NULL;
    g_autoptr(JsonObject) job = NULL;

    f->engine = dv_test_engine_on_backend("dv-test-vmclone", GPOINTER_TO_INT(data), 2, &f->tmpdir,
                                          &f->pg_dbname);
    xml = dv_test_write_host_xml(f->tmpdir, "h1.xml", "h1", 0);
    body = g_strdup_printf("{\"name\":\"h1\",\"uri\":\"test://%s\"}", xml);
    job = dv_test_engine_create(f->engine, DV_KIND_HOST, body, WAIT_MS);
    g_clear_pointer(&job, json_object_unref);
    job = dv_test_engine_create(f->engine, DV_KIND_VM,
                                "{\"name\":\"v1\",\"host\":\"h1\",\"vcpus\":2,\"memory_mib\":128,"
                                "\"disks\":[{\"size_mib\":16,\"pool\":\"pool1\"}]}",
                                WAIT_MS);
    f->vm_id = g_strdup(dv_json_get_string(dv_json_get_object(job, "result"), "id", ""));
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    dv_test_engine_on_backend_free(g_steal_pointer(&f->engine), g_steal_pointer(&f->tmpdir),
                                   g_steal_pointer(&f->pg_dbname));
    g_free(f->vm_id);
}

static JsonObject *
clone_ok(Fixture *f, const char *json)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    g_autoptr(JsonObject) job =
        dv_engine_vm_clone(f->engine, "v1", body, DV_ACTOR_NAMED("tester"), &error);
    JsonObject *done;
    g_assert_no_error(error);
    done = dv_test_engine_job_row(f->engine, job, WAIT_MS);
    dv_test_assert_job_succeeded(done);
    return done;
}

static void
clone_refused(Fixture *f, const char *json, DvErrorCode code, const char *field,
              const char *in_message)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    g_autoptr(JsonObject) job = NULL;
    gint64 jobs = count(f, &dv_table_jobs);
    gint64 vms = count(f, &dv_table_vms);
    gint64 vols = count(f, &dv_table_volumes);

    job = dv_engine_vm_clone(f->engine, "v1", body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_null(job);
    g_assert_error(error, DV_ERROR, (gint)code);
    g_test_message("refused: %s", error->message);
    g_assert_cmpstr(dv_error_get_field(error), ==, field);
    g_assert_nonnull(strstr(error->message, in_message));
    g_assert_cmpint(count(f, &dv_table_jobs), ==, jobs);
    g_assert_cmpint(count(f, &dv_table_vms), ==, vms);
    g_assert_cmpint(count(f, &dv_table_volumes), ==, vols);
}

static JsonObject *
vm_get(Fixture *f, const char *ref)
{
    g_autoptr(GError) error = NULL;
    JsonObject *vm = dv_engine_get(f->engine, DV_KIND_VM, ref, &error);
    g_assert_no_error(error);
    return vm;
}

static const char *
first_disk(JsonObject *vm)
{
    JsonArray *disks = dv_json_get_array(dv_json_get_object(vm, "spec"), "disks");
    g_assert_nonnull(disks);
    g_assert_cmpuint(json_array_get_length(disks), >=, 1);
    return dv_json_get_string(json_array_get_object_element(disks, 0), "source", "");
}

static void
test_full(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonObject) done = clone_ok(f, "{\"name\":\"c1\"}");
    g_autoptr(JsonObject) src = vm_get(f, "v1");
    g_autoptr(JsonObject) c1 = vm_get(f, "c1");
    JsonObject *result = dv_json_get_object(done, "result");

    g_assert_cmpstr(dv_json_get_string(result, "name", ""), ==, "c1");
    g_assert_cmpstr(dv_json_get_string(result, "source", ""), ==, "v1");
    g_assert_cmpstr(dv_json_get_string(c1, "state", ""), ==, "shutoff");
    g_assert_cmpint(dv_json_get_int(c1, "vcpus", 0), ==, 2);
    g_assert_cmpint(dv_json_get_int(c1, "memory_mib", 0), ==, 128);
    g_assert_cmpstr(dv_json_get_string(c1, "uuid", ""), ==,
                    dv_json_get_string(result, "uuid", "?"));
    g_assert_cmpstr(dv_json_get_string(c1, "uuid", ""), !=, dv_json_get_string(src, "uuid", ""));
    g_assert_cmpstr(first_disk(c1), ==, "/pool1/c1-vda.qcow2");
    g_assert_cmpstr(first_disk(src), !=, first_disk(c1));
    /* The copy is in the inventory. */
    {
        g_autoptr(GError) error = NULL;
        DvFilter flt = { "path", DV_FILTER_EQ, "/pool1/c1-vda.qcow2" };
        g_assert_cmpint(
            dv_store_count(dv_engine_get_store(f->engine), &dv_table_volumes, &flt, 1, &error), ==,
            1);
    }
    /* A second clone of that name: 409 naming name, nothing made. */
    clone_refused(f, "{\"name\":\"c1\"}", DV_ERROR_CONFLICT, "name", "already has a VM named 'c1'");
}

static void
test_linked(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonObject) done =
        clone_ok(f, "{\"name\":\"l1\",\"linked\":true,\"pool\":\"pool1\"}");
    g_autoptr(JsonObject) l1 = vm_get(f, "l1");
    g_autoptr(GError) error = NULL;
    DvFilter base = { "path", DV_FILTER_EQ, "/pool1/l1-vda-base.qcow2" };
    DvFilter top = { "path", DV_FILTER_EQ, "/pool1/l1-vda.qcow2" };

    g_assert_true(dv_json_get_bool(dv_json_get_object(done, "result"), "linked", FALSE));
    g_assert_cmpstr(first_disk(l1), ==, "/pool1/l1-vda.qcow2");
    g_assert_cmpint(
        dv_store_count(dv_engine_get_store(f->engine), &dv_table_volumes, &base, 1, &error), ==, 1);
    g_assert_cmpint(
        dv_store_count(dv_engine_get_store(f->engine), &dv_table_volumes, &top, 1, &error), ==, 1);

    /* The bases survive a host refresh in the row, and deleting the clone
     * with its volumes removes overlay and base, on the host and in the
     * inventory; the source's disk stays. */
    {
        g_autoptr(JsonObject) rj =
            dv_engine_host_refresh(f->engine, "h1", DV_ACTOR_NAMED("tester"), &error);
        g_autoptr(JsonObject) refreshed = NULL;
        g_autoptr(JsonObject) again = NULL;
        g_assert_no_error(error);
        refreshed = dv_test_engine_job_row(f->engine, rj, WAIT_MS);
        dv_test_assert_job_succeeded(refreshed);
        again = vm_get(f, "l1");
        JsonArray *bases = dv_json_get_array(dv_json_get_object(again, "spec"), "clone_bases");
        g_assert_nonnull(bases);
        g_assert_cmpstr(json_array_get_string_element(bases, 0), ==, "/pool1/l1-vda-base.qcow2");
    }
    {
        g_autoptr(GHashTable) query = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(JsonObject) job = NULL;
        g_autoptr(JsonObject) dj = NULL;
        g_autoptr(JsonObject) src = vm_get(f, "v1");
        g_autoptr(DvVirtHost) vh =
            dv_core_virt_host_by_id(f->engine, dv_json_get_string(l1, "host_id", ""), &error);
        g_autoptr(JsonObject) gone = NULL;
        g_autoptr(JsonObject) kept = NULL;
        g_assert_no_error(error);
        g_hash_table_insert(query, "delete_volumes", "true");
        job = dv_engine_vm_delete(f->engine, l1, query, DV_ACTOR_NAMED("tester"), &error);
        g_assert_no_error(error);
        dj = dv_test_engine_job_row(f->engine, job, WAIT_MS);
        dv_test_assert_job_succeeded(dj);
        g_assert_cmpint(
            dv_store_count(dv_engine_get_store(f->engine), &dv_table_volumes, &base, 1, &error), ==,
            0);
        g_assert_cmpint(
            dv_store_count(dv_engine_get_store(f->engine), &dv_table_volumes, &top, 1, &error), ==,
            0);
        gone = dv_virt_volume_lookup_by_path(vh, "/pool1/l1-vda-base.qcow2", NULL, &error);
        g_assert_null(gone);
        g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
        g_clear_error(&error);
        kept = dv_virt_volume_lookup_by_path(vh, first_disk(src), NULL, &error);
        g_assert_no_error(error);
    }
}

static void
test_refused(Fixture *f, gconstpointer data)
{
    clone_refused(f, "{}", DV_ERROR_INVALID_ARGUMENT, "name", "name");
    clone_refused(f, "{\"name\":\"bad/name\"}", DV_ERROR_INVALID_ARGUMENT, "name", "name");
    clone_refused(f, "{\"name\":\"c2\",\"copies\":2}", DV_ERROR_INVALID_ARGUMENT, "copies",
                  "copies");
    clone_refused(f, "{\"name\":\"c2\",\"linked\":\"yes\"}", DV_ERROR_INVALID_ARGUMENT, "linked",
                  "linked");
    clone_refused(f, "{\"name\":\"v1\"}", DV_ERROR_CONFLICT, "name", "already has a VM named 'v1'");
    clone_refused(f, "{\"name\":\"c2\",\"pool\":\"nopool\"}", DV_ERROR_NOT_FOUND, "pool",
                  "no pool 'nopool'");
    /* The source running: 409 naming its state. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) job =
            dv_engine_vm_action(f->engine, "v1", "start", DV_ACTOR_NAMED("tester"), &error);
        g_autoptr(JsonObject) done = NULL;
        g_assert_no_error(error);
        done = dv_test_engine_job_row(f->engine, job, WAIT_MS);
        dv_test_assert_job_succeeded(done);
    }
    /* A running source is frozen while copied (tests/engine/test-vm-clone-system.c);
     * the test driver has no disk-only snapshots, so the job fails and
     * leaves nothing. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) body = dv_test_json_object("{\"name\":\"c2\"}");
        g_autoptr(JsonObject) job = NULL;
        g_autoptr(JsonObject) done = NULL;
        gint64 vms = count(f, &dv_table_vms);
        gint64 vols = count(f, &dv_table_volumes);
        job = dv_engine_vm_clone(f->engine, "v1", body, DV_ACTOR_NAMED("tester"), &error);
        g_assert_no_error(error);
        done = dv_test_engine_job_row(f->engine, job, WAIT_MS);
        g_assert_cmpstr(dv_json_get_string(done, "state", ""), ==, "failed");
        g_test_message("running source on test:///: %s",
                       dv_json_get_string(dv_json_get_object(done, "error"), "message", ""));
        g_assert_cmpint(count(f, &dv_table_vms), ==, vms);
        g_assert_cmpint(count(f, &dv_table_volumes), ==, vols);
    }
}

/* A self-service user clones its own VM only, charged like a create: the
 * clone's vms, vCPUs and memory are reserved with its row; past the quota
 * the clone is 409 naming quota.vms with nothing written; another user's
 * VM is as absent as an unknown one. */
static void
test_quota(Fixture *f, gconstpointer data)
{
    DvStore *store = dv_engine_get_store(f->engine);
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSecret) pw = dv_secret_new_from_string("correct horse battery");
    g_autoptr(JsonObject) u = dv_auth_users_add(dv_core(f->engine)->auth, NULL, "sam", pw, &error);
    g_autoptr(JsonObject) spec = json_object_new();
    g_autoptr(JsonObject) b = NULL;
    g_autoptr(DvActor) actor = NULL;
    g_autoptr(JsonObject) body = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) used = NULL;
    g_autoptr(JsonObject) clone = NULL;
    const char *user_id;
    const char *binding;
    JsonObject *q = json_object_new();
    gint64 jobs;
    gint64 vms;

    g_assert_no_error(error);
    user_id = dv_json_get_string(u, "id", "");
    json_object_set_string_member(spec, "principal_kind", "user");
    json_object_set_string_member(spec, "principal", user_id);
    json_object_set_string_member(spec, "role", "self-service-user");
    json_object_set_string_member(spec, "scope_kind", "global");
    json_object_set_string_member(spec, "effect", "allow");
    json_object_set_int_member(q, "vms", 2);
    json_object_set_int_member(q, "vcpus", 4);
    json_object_set_int_member(q, "memory_mib", 1024);
    json_object_set_object_member(spec, "quota", q);
    b = dv_authz_binding_add(store, NULL, spec, &error);
    g_assert_no_error(error);
    binding = dv_json_get_string(b, "id", "");
    {
        DvAuthzContext *ctx = dv_authz_context_new(store, user_id, NULL, &error);
        g_assert_no_error(error);
        actor = dv_actor_new(user_id, "sam", NULL);
        dv_actor_set_authz(actor, ctx, (GDestroyNotify)dv_authz_context_unref);
    }
    body = dv_test_json_object("{\"name\":\"own\",\"host\":\"h1\",\"vcpus\":1,\"memory_mib\":256,"
                               "\"disks\":[{\"size_mib\":16,\"pool\":\"pool1\"}]}");
    job = dv_engine_create(f->engine, DV_KIND_VM, body, actor, &error);
    g_assert_no_error(error);
    done = dv_test_engine_job_row(f->engine, job, WAIT_MS);
    dv_test_assert_job_succeeded(done);

    /* The clone: the second VM of the quota. */
    g_clear_pointer(&body, json_object_unref);
    g_clear_pointer(&job, json_object_unref);
    g_clear_pointer(&done, json_object_unref);
    body = dv_test_json_object("{\"name\":\"own2\"}");
    job = dv_engine_vm_clone(f->engine, "own", body, actor, &error);
    g_assert_no_error(error);
    done = dv_test_engine_job_row(f->engine, job, WAIT_MS);
    dv_test_assert_job_succeeded(done);
    used = dv_authz_quota_usage(store, binding, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpint(dv_json_get_int(used, "vms", 0), ==, 2);
    g_assert_cmpint(dv_json_get_int(used, "vcpus", 0), ==, 2);
    g_assert_cmpint(dv_json_get_int(used, "memory_mib", 0), ==, 512);
    clone = dv_engine_get(f->engine, DV_KIND_VM, "own2", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(clone, "owner_id", ""), ==, user_id);

    /* A third VM: over the quota, nothing written. */
    jobs = count(f, &dv_table_jobs);
    vms = count(f, &dv_table_vms);
    g_clear_pointer(&body, json_object_unref);
    g_clear_pointer(&job, json_object_unref);
    body = dv_test_json_object("{\"name\":\"own3\"}");
    job = dv_engine_vm_clone(f->engine, "own", body, actor, &error);
    g_assert_null(job);
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "quota.vms");
    g_clear_error(&error);
    g_assert_cmpint(count(f, &dv_table_jobs), ==, jobs);
    g_assert_cmpint(count(f, &dv_table_vms), ==, vms);

    /* Another user's VM: not found, as an unknown one. */
    job = dv_engine_vm_clone(f->engine, "v1", body, actor, &error);
    g_assert_null(job);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);

    /* Deleting the clone gives its share back. */
    {
        g_autoptr(JsonObject) vm = dv_engine_get(f->engine, DV_KIND_VM, "own2", &error);
        g_autoptr(JsonObject) dj = dv_engine_vm_delete(f->engine, vm, NULL, actor, &error);
        g_autoptr(JsonObject) dd = NULL;
        g_assert_no_error(error);
        dd = dv_test_engine_job_row(f->engine, dj, WAIT_MS);
        dv_test_assert_job_succeeded(dd);
    }
    g_clear_pointer(&used, json_object_unref);
    used = dv_authz_quota_usage(store, binding, NULL, &error);
    g_assert_cmpint(dv_json_get_int(used, "vms", 0), ==, 1);
    g_assert_cmpint(dv_json_get_int(used, "memory_mib", 0), ==, 256);
}

/* A copy that fails half-way (the second disk's name taken on the host
 * behind Drover's back) fails the job naming the disk and leaves nothing:
 * no row, no domain, no first copy, no volume row. */
static void
test_failed_leaves_nothing(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) v1 = vm_get(f, "v1");
    g_autoptr(DvVirtHost) vh =
        dv_core_virt_host_by_id(f->engine, dv_json_get_string(v1, "host_id", ""), &error);
    g_autoptr(JsonObject) stray = NULL;
    g_autoptr(JsonObject) body = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) gone = NULL;
    JsonObject *err;
    gint64 vms;
    gint64 vols;

    g_assert_no_error(error);
    /* v2 with two disks. */
    done = dv_test_engine_create(
        f->engine, DV_KIND_VM,
        "{\"name\":\"v2\",\"host\":\"h1\",\"memory_mib\":64,\"disks\":"
        "[{\"size_mib\":16,\"pool\":\"pool1\"},{\"size_mib\":8,\"pool\":\"pool1\"}]}",
        WAIT_MS);
    g_clear_pointer(&done, json_object_unref);
    stray = dv_virt_volume_create(vh, "pool1", "c9-vdb.qcow2", 1 << 20, "qcow2", NULL, &error);
    g_assert_no_error(error);
    vms = count(f, &dv_table_vms);
    vols = count(f, &dv_table_volumes);
    body = dv_test_json_object("{\"name\":\"c9\"}");
    job = dv_engine_vm_clone(f->engine, "v2", body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    done = dv_test_engine_job_row(f->engine, job, WAIT_MS);
    g_assert_cmpstr(dv_json_get_string(done, "state", ""), ==, "failed");
    err = dv_json_get_object(done, "error");
    g_test_message("failed: %s", dv_json_get_string(err, "message", ""));
    g_assert_cmpstr(dv_json_get_string(err, "code", ""), ==, "conflict");
    g_assert_nonnull(strstr(dv_json_get_string(err, "message", ""), "disks[1]"));
    g_assert_cmpint(count(f, &dv_table_vms), ==, vms);
    g_assert_cmpint(count(f, &dv_table_volumes), ==, vols);
    gone = dv_virt_volume_lookup_by_path(vh, "/pool1/c9-vda.qcow2", NULL, &error);
    g_assert_null(gone);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    /* The stray volume is not Drover's: it stays. */
    g_clear_pointer(&gone, json_object_unref);
    gone = dv_virt_volume_lookup_by_path(vh, "/pool1/c9-vdb.qcow2", NULL, &error);
    g_assert_no_error(error);
    {
        g_autoptr(JsonArray) doms = dv_virt_domain_list_by_prefix(vh, "c9", NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(doms), ==, 0);
    }
}

static void
add_both(const char *path, void (*func)(Fixture *, gconstpointer))
{
    g_autofree char *lite = g_strdup_printf("%s/sqlite", path);
    g_autofree char *pg = g_strdup_printf("%s/pg", path);
    g_test_add(lite, Fixture, GINT_TO_POINTER(DV_TEST_BACKEND_SQLITE), fixture_setup, func,
               fixture_teardown);
    g_test_add(pg, Fixture, GINT_TO_POINTER(DV_TEST_BACKEND_PG), fixture_setup, func,
               fixture_teardown);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    add_both("/drover/engine/vm-clone/full", test_full);
    add_both("/drover/engine/vm-clone/linked", test_linked);
    add_both("/drover/engine/vm-clone/refused", test_refused);
    add_both("/drover/engine/vm-clone/quota", test_quota);
    add_both("/drover/engine/vm-clone/failed-leaves-nothing", test_failed_leaves_nothing);
    return g_test_run();
}
