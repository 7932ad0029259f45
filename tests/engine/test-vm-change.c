#define G_LOG_DOMAIN "DvTestVmChange"

/* Day-2 changes of a VM (issue 12, item 4) in the engine on SQLite and on
 * PostgreSQL against a test:/// host, whose driver implements every call
 * used: vCPUs and memory live or for the next boot, description,
 * autostart, boot order, rename while off; reboot and reset; delete of a
 * running VM with force; a VM's quota charge following its size.  Bad
 * input names the field and changes nothing.
 * What only a real QEMU shows (a guest ignoring a shutdown) is in
 * tests/api/test-api-system.c. */

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

#include <string.h>

#define WAIT_MS 30000

typedef struct {
    char *tmpdir;
    char *pg_dbname;
    DvEngine *engine;
    char *host_id;
    char *vm_id;
} Fixture;

static JsonObject *
run(Fixture *f, JsonObject *job)
{
    return dv_test_engine_job_row(f->engine, job, WAIT_MS);
}

static JsonObject *
vm_row(Fixture *f)
{
    g_autoptr(GError) error = NULL;
    JsonObject *r = dv_store_get(dv_engine_get_store(f->engine), &dv_table_vms, f->vm_id, &error);
    g_assert_no_error(error);
    return r;
}

static gint64
job_count(Fixture *f)
{
    g_autoptr(GError) error = NULL;
    gint64 n = dv_store_count(dv_engine_get_store(f->engine), &dv_table_jobs, NULL, 0, &error);
    g_assert_no_error(error);
    return n;
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autofree char *xml = NULL;
    g_autofree char *body = NULL;
    g_autoptr(JsonObject) job = NULL;

    f->engine = dv_test_engine_on_backend("dv-test-vmchg", GPOINTER_TO_INT(data), 2, &f->tmpdir,
                                          &f->pg_dbname);
    xml = dv_test_write_host_xml(f->tmpdir, "h1.xml", "h1", 0);
    body = g_strdup_printf("{\"name\":\"h1\",\"uri\":\"test://%s\"}", xml);
    job = dv_test_engine_create(f->engine, DV_KIND_HOST, body, WAIT_MS);
    f->host_id = g_strdup(dv_json_get_string(dv_json_get_object(job, "result"), "id", ""));
    g_clear_pointer(&job, json_object_unref);
    job = dv_test_engine_create(f->engine, DV_KIND_VM,
                                "{\"name\":\"v1\",\"host\":\"h1\",\"vcpus\":1,\"memory_mib\":128}",
                                WAIT_MS);
    f->vm_id = g_strdup(dv_json_get_string(dv_json_get_object(job, "result"), "id", ""));
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    dv_test_engine_on_backend_free(g_steal_pointer(&f->engine), g_steal_pointer(&f->tmpdir),
                                   g_steal_pointer(&f->pg_dbname));
    g_free(f->host_id);
    g_free(f->vm_id);
}

/* PATCH as the API calls it; the finished job row. */
static JsonObject *
change(Fixture *f, const char *vm, const char *json)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    g_autoptr(JsonObject) job =
        dv_engine_vm_change(f->engine, vm, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    return run(f, job);
}

static void
change_refused(Fixture *f, const char *json, DvErrorCode code, const char *field,
               const char *in_message)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    g_autoptr(JsonObject) before = vm_row(f);
    g_autoptr(JsonObject) after = NULL;
    g_autoptr(JsonObject) job = NULL;
    gint64 jobs = job_count(f);
    g_autofree char *t_before = NULL;
    g_autofree char *t_after = NULL;

    job = dv_engine_vm_change(f->engine, f->vm_id, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_null(job);
    g_assert_error(error, DV_ERROR, (gint)code);
    g_test_message("refused: %s", error->message);
    g_assert_cmpstr(dv_error_get_field(error), ==, field);
    g_assert_nonnull(strstr(error->message, in_message));
    /* Nothing written: no job, the row as it was. */
    g_assert_cmpint(job_count(f), ==, jobs);
    after = vm_row(f);
    t_before = dv_json_object_to_string(before, FALSE);
    t_after = dv_json_object_to_string(after, FALSE);
    g_assert_cmpstr(t_before, ==, t_after);
}

static JsonObject *
power(Fixture *f, const char *action)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job =
        dv_engine_vm_action(f->engine, f->vm_id, action, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    return run(f, job);
}

static char *
inactive_xml(Fixture *f)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) vm = vm_row(f);
    g_autoptr(DvVirtHost) vh = dv_core_virt_host_by_id(f->engine, f->host_id, &error);
    char *xml;
    g_assert_no_error(error);
    xml = dv_virt_domain_get_xml(vh, dv_json_get_string(vm, "uuid", ""), TRUE, NULL, &error);
    g_assert_no_error(error);
    return xml;
}

static const char *
applied(JsonObject *job, const char *field)
{
    return dv_json_get_string(dv_json_get_object(dv_json_get_object(job, "result"), "applied"),
                              field, "(none)");
}

static void
test_stopped(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) vm = NULL;
    g_autofree char *xml = NULL;
    const char *cdrom;
    const char *hd;

    job = change(f, "v1",
                 "{\"vcpus\":2,\"memory_mib\":256,\"description\":\"second day\","
                 "\"autostart\":true,\"boot_order\":[\"cdrom\",\"disk\"]}");
    dv_test_assert_job_succeeded(job);
    g_assert_cmpstr(applied(job, "vcpus"), ==, "next-boot");
    g_assert_cmpstr(applied(job, "memory_mib"), ==, "next-boot");
    g_assert_cmpstr(applied(job, "boot_order"), ==, "next-boot");
    g_assert_cmpstr(applied(job, "description"), ==, "now");
    g_assert_cmpstr(applied(job, "autostart"), ==, "now");
    vm = vm_row(f);
    g_assert_cmpint(dv_json_get_int(vm, "vcpus", 0), ==, 2);
    g_assert_cmpint(dv_json_get_int(vm, "memory_mib", 0), ==, 256);
    g_assert_cmpstr(dv_json_get_string(vm, "description", ""), ==, "second day");
    g_assert_true(dv_json_get_bool(dv_json_get_object(vm, "spec"), "autostart", FALSE));
    /* A refresh of the host (its probe reads no autostart, as the host
     * watch's resyncs do) keeps it. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) refresh =
            dv_engine_host_refresh(f->engine, "h1", DV_ACTOR_NAMED("tester"), &error);
        g_autoptr(JsonObject) done = NULL;
        g_autoptr(JsonObject) after = NULL;
        g_assert_no_error(error);
        done = run(f, refresh);
        dv_test_assert_job_succeeded(done);
        after = vm_row(f);
        g_assert_true(json_object_has_member(dv_json_get_object(after, "spec"), "autostart"));
        g_assert_true(dv_json_get_bool(dv_json_get_object(after, "spec"), "autostart", FALSE));
    }
    xml = inactive_xml(f);
    g_test_message("%s", xml);
    g_assert_nonnull(strstr(xml, "<description>second day</description>"));
    cdrom = strstr(xml, "<boot dev=\"cdrom\"/>");
    if (cdrom == NULL)
        cdrom = strstr(xml, "<boot dev='cdrom'/>");
    hd = strstr(xml, "<boot dev=\"hd\"/>");
    if (hd == NULL)
        hd = strstr(xml, "<boot dev='hd'/>");
    g_assert_nonnull(cdrom);
    g_assert_nonnull(hd);
    g_assert_true(cdrom < hd);
    /* A stopped VM's maximum follows: 2 vCPUs, 256 MiB both ways. */
    g_assert_nonnull(strstr(xml, ">2</vcpu>"));
    g_assert_null(strstr(xml, "current="));

    /* Rename while off: the row and the domain; the old name is free. */
    g_clear_pointer(&job, json_object_unref);
    job = change(f, "v1", "{\"name\":\"v1-renamed\",\"description\":null}");
    dv_test_assert_job_succeeded(job);
    g_clear_pointer(&vm, json_object_unref);
    vm = vm_row(f);
    g_assert_cmpstr(dv_json_get_string(vm, "name", ""), ==, "v1-renamed");
    g_assert_null(dv_json_get_string(vm, "description", NULL));
    g_clear_pointer(&xml, g_free);
    xml = inactive_xml(f);
    g_assert_nonnull(strstr(xml, "<name>v1-renamed</name>"));
    g_assert_null(strstr(xml, "<description>"));
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) old = dv_engine_get(f->engine, DV_KIND_VM, "v1", &error);
        g_assert_null(old);
        g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    }
    /* Shrinking a stopped VM lowers its maximum too. */
    g_clear_pointer(&job, json_object_unref);
    job = change(f, "v1-renamed", "{\"vcpus\":1,\"memory_mib\":64}");
    dv_test_assert_job_succeeded(job);
    g_clear_pointer(&vm, json_object_unref);
    vm = vm_row(f);
    g_assert_cmpint(dv_json_get_int(vm, "vcpus", 0), ==, 1);
    g_assert_cmpint(dv_json_get_int(vm, "memory_mib", 0), ==, 64);
}

static void
test_running(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) vm = NULL;
    g_autoptr(JsonObject) started = power(f, "start");

    dv_test_assert_job_succeeded(started);
    /* Memory within the running maximum moves now; vCPUs above it wait. */
    job = change(f, "v1", "{\"memory_mib\":96,\"vcpus\":2}");
    dv_test_assert_job_succeeded(job);
    g_assert_cmpstr(applied(job, "memory_mib"), ==, "live");
    g_assert_cmpstr(applied(job, "vcpus"), ==, "next-boot");
    vm = vm_row(f);
    g_assert_cmpint(dv_json_get_int(vm, "memory_mib", 0), ==, 96);
    g_assert_cmpint(dv_json_get_int(vm, "vcpus", 0), ==, 1);
    {
        g_autofree char *xml = inactive_xml(f);
        g_assert_nonnull(strstr(xml, ">2</vcpu>"));
    }
    /* Renaming a running VM is refused before any job. */
    change_refused(f, "{\"name\":\"v2\"}", DV_ERROR_CONFLICT, "name",
                   "renamed only while shut off");

    /* Reboot and reset run on a running VM, and are refused on a stopped one. */
    {
        g_autoptr(JsonObject) r1 = power(f, "reboot");
        g_autoptr(JsonObject) r2 = power(f, "reset");
        dv_test_assert_job_succeeded(r1);
        dv_test_assert_job_succeeded(r2);
        g_assert_cmpstr(dv_json_get_string(dv_json_get_object(r2, "result"), "state", ""), ==,
                        "running");
    }
    /* Delete: refused while running, naming the state; forced, gone. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) refused = dv_engine_delete(f->engine, DV_KIND_VM, f->vm_id, NULL,
                                                         DV_ACTOR_NAMED("tester"), &error);
        g_autoptr(GHashTable) q = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(JsonObject) job2 = NULL;
        g_autoptr(JsonObject) done = NULL;
        g_autoptr(JsonObject) gone = NULL;

        g_assert_null(refused);
        g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
        g_assert_nonnull(strstr(error->message, "is running"));
        g_assert_cmpstr(dv_error_get_field(error), ==, "force");
        g_clear_error(&error);
        g_hash_table_insert(q, "force", "maybe");
        refused =
            dv_engine_delete(f->engine, DV_KIND_VM, f->vm_id, q, DV_ACTOR_NAMED("tester"), &error);
        g_assert_null(refused);
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_assert_cmpstr(dv_error_get_field(error), ==, "force");
        g_clear_error(&error);
        g_hash_table_insert(q, "force", "true");
        job2 =
            dv_engine_delete(f->engine, DV_KIND_VM, f->vm_id, q, DV_ACTOR_NAMED("tester"), &error);
        g_assert_no_error(error);
        done = run(f, job2);
        dv_test_assert_job_succeeded(done);
        gone = dv_store_get(dv_engine_get_store(f->engine), &dv_table_vms, f->vm_id, &error);
        g_assert_null(gone);
        g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    }
}

static void
test_refused(Fixture *f, gconstpointer data)
{
    change_refused(f, "{}", DV_ERROR_INVALID_ARGUMENT, NULL, "at least one of");
    change_refused(f, "{\"cpus\":2}", DV_ERROR_INVALID_ARGUMENT, "cpus", "cpus");
    change_refused(f, "{\"vcpus\":\"2\"}", DV_ERROR_INVALID_ARGUMENT, "vcpus", "vcpus");
    change_refused(f, "{\"vcpus\":0}", DV_ERROR_INVALID_ARGUMENT, "vcpus", "vcpus");
    /* Above what the host has: 400 naming the field and the host. */
    change_refused(f, "{\"memory_mib\":4194304}", DV_ERROR_INVALID_ARGUMENT, "memory_mib",
                   "memory_mib: host h1 has only");
    change_refused(f, "{\"vcpus\":256}", DV_ERROR_INVALID_ARGUMENT, "vcpus",
                   "vcpus: host h1 has only");
    change_refused(f, "{\"boot_order\":[]}", DV_ERROR_INVALID_ARGUMENT, "boot_order",
                   "one to three");
    change_refused(f, "{\"boot_order\":[\"disk\",\"floppy\"]}", DV_ERROR_INVALID_ARGUMENT,
                   "boot_order", "entry 2");
    change_refused(f, "{\"boot_order\":[\"disk\",\"disk\"]}", DV_ERROR_INVALID_ARGUMENT,
                   "boot_order", "twice");
    change_refused(f, "{\"name\":\"bad/name\"}", DV_ERROR_INVALID_ARGUMENT, "name", "name");
    /* Taken on the host. */
    {
        g_autoptr(JsonObject) other = dv_test_engine_create(
            f->engine, DV_KIND_VM, "{\"name\":\"v2\",\"host\":\"h1\",\"memory_mib\":64}", WAIT_MS);
        change_refused(f, "{\"name\":\"v2\"}", DV_ERROR_CONFLICT, "name",
                       "already has a VM named 'v2'");
    }
    /* Reboot and reset of a stopped VM. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) job =
            dv_engine_vm_action(f->engine, f->vm_id, "reboot", DV_ACTOR_NAMED("tester"), &error);
        g_assert_null(job);
        g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
        g_assert_nonnull(strstr(error->message, "is shutoff"));
        g_clear_error(&error);
        job = dv_engine_vm_action(f->engine, f->vm_id, "reset", DV_ACTOR_NAMED("tester"), &error);
        g_assert_null(job);
        g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    }
    /* A shutdown's body: only a timeout, in range. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) body = dv_test_json_object("{\"timeout\":0}");
        g_autoptr(JsonObject) started = power(f, "start");
        g_autoptr(JsonObject) job = dv_engine_vm_power(f->engine, f->vm_id, "shutdown", body,
                                                       DV_ACTOR_NAMED("tester"), &error);
        g_assert_null(job);
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_assert_cmpstr(dv_error_get_field(error), ==, "timeout");
        g_clear_error(&error);
        g_clear_pointer(&body, json_object_unref);
        body = dv_test_json_object("{\"timeout\":5}");
        job = dv_engine_vm_power(f->engine, f->vm_id, "reboot", body, DV_ACTOR_NAMED("tester"),
                                 &error);
        g_assert_null(job);
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_clear_error(&error);
        /* The test driver's guest obeys at once. */
        job = dv_engine_vm_power(f->engine, f->vm_id, "shutdown", body, DV_ACTOR_NAMED("tester"),
                                 &error);
        g_assert_no_error(error);
        {
            g_autoptr(JsonObject) done = run(f, job);
            dv_test_assert_job_succeeded(done);
        }
    }
}

/* A self-service user's VM grows within its binding's quota only: the
 * charge follows the change in the transaction that accepts the job, a
 * change past the quota is 409 naming quota.<what> with nothing written,
 * and shrinking gives back. */
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
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) used = NULL;
    g_autoptr(JsonObject) body = NULL;
    const char *user_id;
    const char *binding;
    g_autofree char *vm_id = NULL;
    JsonObject *q = json_object_new();

    g_assert_no_error(error);
    user_id = dv_json_get_string(u, "id", "");
    json_object_set_string_member(spec, "principal_kind", "user");
    json_object_set_string_member(spec, "principal", user_id);
    json_object_set_string_member(spec, "role", "self-service-user");
    json_object_set_string_member(spec, "scope_kind", "global");
    json_object_set_string_member(spec, "effect", "allow");
    json_object_set_int_member(q, "vcpus", 3);
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
    body = dv_test_json_object("{\"name\":\"own\",\"host\":\"h1\",\"vcpus\":1,\"memory_mib\":256}");
    job = dv_engine_create(f->engine, DV_KIND_VM, body, actor, &error);
    g_assert_no_error(error);
    done = run(f, job);
    dv_test_assert_job_succeeded(done);
    vm_id = g_strdup(dv_json_get_string(dv_json_get_object(done, "result"), "id", ""));

    /* Grow to 3 vCPUs, 1024 MiB: exactly the quota. */
    g_clear_pointer(&body, json_object_unref);
    g_clear_pointer(&job, json_object_unref);
    g_clear_pointer(&done, json_object_unref);
    body = dv_test_json_object("{\"vcpus\":3,\"memory_mib\":1024}");
    job = dv_engine_vm_change(f->engine, vm_id, body, actor, &error);
    g_assert_no_error(error);
    done = run(f, job);
    dv_test_assert_job_succeeded(done);
    used = dv_authz_quota_usage(store, binding, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpint(dv_json_get_int(used, "vcpus", 0), ==, 3);
    g_assert_cmpint(dv_json_get_int(used, "memory_mib", 0), ==, 1024);

    /* One vCPU more: refused naming the quota, nothing charged. */
    g_clear_pointer(&body, json_object_unref);
    g_clear_pointer(&job, json_object_unref);
    body = dv_test_json_object("{\"vcpus\":4}");
    job = dv_engine_vm_change(f->engine, vm_id, body, actor, &error);
    g_assert_null(job);
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "quota.vcpus");
    g_clear_error(&error);
    g_clear_pointer(&used, json_object_unref);
    used = dv_authz_quota_usage(store, binding, NULL, &error);
    g_assert_cmpint(dv_json_get_int(used, "vcpus", 0), ==, 3);

    /* Shrink: given back. */
    g_clear_pointer(&body, json_object_unref);
    g_clear_pointer(&done, json_object_unref);
    body = dv_test_json_object("{\"vcpus\":1,\"memory_mib\":128}");
    job = dv_engine_vm_change(f->engine, vm_id, body, actor, &error);
    g_assert_no_error(error);
    done = run(f, job);
    dv_test_assert_job_succeeded(done);
    g_clear_pointer(&used, json_object_unref);
    used = dv_authz_quota_usage(store, binding, NULL, &error);
    g_assert_cmpint(dv_json_get_int(used, "vcpus", 0), ==, 1);
    g_assert_cmpint(dv_json_get_int(used, "memory_mib", 0), ==, 128);
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
    add_both("/drover/engine/vm-change/stopped", test_stopped);
    add_both("/drover/engine/vm-change/running", test_running);
    add_both("/drover/engine/vm-change/refused", test_refused);
    add_both("/drover/engine/vm-change/quota", test_quota);
    return g_test_run();
}
