/* The lifecycle of a machine catalog, engine tier (a DvEngine in process,
 * SQLite in a temp dir, libvirt's test driver): image update, rollback,
 * base reference counts, adding and removing machines, power actions and
 * the periodic reconcile report.  Every refusal must name its field or
 * reason and write nothing.
 *
 * test:// implements no volume upload, so provisioning stops every
 * machine at its identity step; make_ready() then finishes what the job
 * would have done (a domain with the machine's UUID, its VM row, the row
 * ready), so the moves and power actions run against real test-driver
 * domains and volumes. */
#define G_LOG_DOMAIN "DvTestCatalogLifecycle"

#include "dv-catalogs-private.h"
#include "dv-core.h"
#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-test-catalog.h"
#include "dv-test-util.h"

#include <string.h>

#define WAIT_MS DV_TEST_CATALOG_WAIT_MS

typedef DvTestCatalogEnv Fixture;

/* cat1 (pooled unless @type says otherwise), @n machines desk-01.. (3
 * with personal disks for make_catalog()), from m0's snapshot s1.  Provisioning stops at the
 * identity step on test://. */
static void
make_catalog_of(Fixture *f, const char *type, guint n, guint personal_mib)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *b = g_strdup_printf(
        "{\"name\":\"cat1\",\"master_vm\":\"m0\",\"master_snapshot\":\"s1\",\"hosts\":[\"h1\"],"
        "\"pool\":\"pool1\",\"naming_scheme\":\"desk-##\",\"count\":%u,\"personal_disk_mib\":%u,"
        "\"type\":\"%s\",\"machine\":{\"memory_mib\":128,\"networks\":[\"net1\"]}}",
        n, personal_mib, type);
    g_autoptr(JsonObject) body = dv_test_json_object(b);
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;

    dv_test_engine_snapshot(f->engine, "m0", "s1", WAIT_MS);
    job = dv_engine_create(f->engine, DV_KIND_CATALOG, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    done = dv_test_env_job_wait(f, job);
    g_assert_cmpstr(dv_json_get_string(done, "state", ""), ==, "failed");
}

static void
make_catalog(Fixture *f, const char *type)
{
    make_catalog_of(f, type, 3, 64);
}

/* The machine's row now (borrowed: kept until the end of the test). */
static JsonObject *
machine(Fixture *f, const char *name)
{
    g_autoptr(GError) error = NULL;
    JsonObject *m =
        dv_store_find(dv_test_env_store(f), &dv_table_catalog_machines, "name", name, &error);
    g_assert_no_error(error);
    g_assert_nonnull(m);
    g_ptr_array_add(f->keep, m);
    return m;
}

/* What provisioning does after the identity step, by hand: a domain with
 * the machine's UUID on its overlay, its VM row, the row ready. */
static void
make_ready(Fixture *f)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonArray) rows =
        dv_core_list_all(f->engine, &dv_table_catalog_machines, "catalog_id",
                         dv_json_get_string(machine(f, "desk-01"), "catalog_id", ""), &error);
    g_autoptr(DvVirtHost) vh = dv_test_engine_virt_host(f->engine, f->host_id);
    g_assert_no_error(error);
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *m = json_array_get_object_element(rows, i);
        g_autoptr(JsonObject) spec = json_object_new();
        g_autoptr(JsonObject) vm = json_object_new();
        g_autoptr(JsonObject) ch = json_object_new();
        g_autofree char *xml = NULL;
        g_autofree char *uuid = NULL;
        gint64 now = dv_store_now();

        json_object_set_string_member(spec, "name", dv_json_get_string(m, "name", ""));
        json_object_set_string_member(spec, "uuid", dv_json_get_string(m, "domain_uuid", ""));
        json_object_set_string_member(spec, "domain_type", "test");
        json_object_set_int_member(spec, "memory_mib", 64);
        json_object_set_string_member(spec, "description", "machine of catalog cat1");
        xml = dv_virt_domain_xml_new(spec, &error);
        g_assert_no_error(error);
        uuid = dv_virt_domain_define(vh, xml, NULL, &error);
        g_assert_no_error(error);
        json_object_set_string_member(vm, "id", dv_json_get_string(m, "id", ""));
        json_object_set_string_member(vm, "name", dv_json_get_string(m, "name", ""));
        json_object_set_string_member(vm, "host_id", f->host_id);
        json_object_set_string_member(vm, "uuid", uuid);
        json_object_set_string_member(vm, "state", "shutoff");
        json_object_set_string_member(vm, "origin", "catalog");
        json_object_set_int_member(vm, "created_at", now);
        json_object_set_int_member(vm, "updated_at", now);
        g_assert_true(dv_store_insert(dv_test_env_store(f), &dv_table_vms, vm, &error));
        g_assert_no_error(error);
        json_object_set_string_member(ch, "state", "ready");
        json_object_set_string_member(ch, "step", "define");
        json_object_set_string_member(ch, "vm_id", dv_json_get_string(m, "id", ""));
        json_object_set_null_member(ch, "error");
        g_assert_true(dv_store_update(dv_test_env_store(f), &dv_table_catalog_machines,
                                      dv_json_get_string(m, "id", ""), ch, &error));
        g_assert_no_error(error);
    }
}

typedef struct {
    gint64 images, bases, machines, jobs;
} Counts;

static Counts
counts(Fixture *f)
{
    return (Counts){ dv_test_env_count(f, &dv_table_catalog_images),
                     dv_test_env_count(f, &dv_table_catalog_bases),
                     dv_test_env_count(f, &dv_table_catalog_machines),
                     dv_test_env_count(f, &dv_table_jobs) };
}

/* @job must be NULL with @code (and @field, when not NULL: "" means no
 * field) and a message holding @in_message, and nothing written. */
static void
assert_refused(Fixture *f, Counts before, JsonObject *job, GError *error, DvErrorCode code, const char *field,
               const char *in_message)
{
    Counts after = counts(f);
    g_assert_null(job);
    g_assert_nonnull(error);
    g_test_message("refused: %s", error->message);
    g_assert_error(error, DV_ERROR, (gint)code);
    if (field != NULL)
        g_assert_cmpstr(dv_error_get_field(error) != NULL ? dv_error_get_field(error) : "", ==, field);
    if (in_message != NULL)
        g_assert_nonnull(strstr(error->message, in_message));
    g_assert_cmpint(after.images, ==, before.images);
    g_assert_cmpint(after.bases, ==, before.bases);
    g_assert_cmpint(after.machines, ==, before.machines);
    g_assert_cmpint(after.jobs, ==, before.jobs);
}

static JsonObject *
update_image(Fixture *f, const char *snap, GError **error)
{
    g_autofree char *json = g_strdup_printf("{\"master_vm\":\"m0\",\"master_snapshot\":\"%s\"}", snap);
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    return dv_engine_catalog_update_image(f->engine, "cat1", body, DV_ACTOR_NAMED("tester"), error);
}

static JsonObject *
image(Fixture *f, gint64 version)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) list = dv_engine_catalog_images(f->engine, "cat1", &error);
    JsonArray *items;
    g_assert_no_error(error);
    items = dv_json_get_array(list, "items");
    for (guint i = 0; i < json_array_get_length(items); i++) {
        JsonObject *o = json_array_get_object_element(items, i);
        if (dv_json_get_int(o, "version", 0) == version)
            return json_object_ref(o);
    }
    g_error("no image v%" G_GINT64_FORMAT, version);
    return NULL;
}

static void
vm_action(Fixture *f, const char *vm, const char *action)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job =
        dv_engine_vm_action(f->engine, vm, action, DV_ACTOR_NAMED("tester"), &error);
    g_autoptr(JsonObject) done = NULL;
    g_assert_no_error(error);
    done = dv_test_engine_run(f->engine, job, WAIT_MS);
}

static char *
domain_state(Fixture *f, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvVirtHost) vh = dv_test_engine_virt_host(f->engine, f->host_id);
    JsonObject *m = machine(f, name);
    g_autoptr(JsonObject) dom = dv_virt_domain_get(vh, dv_json_get_string(m, "domain_uuid", ""), NULL, &error);
    g_assert_no_error(error);
    return g_strdup(dv_json_get_string(dom, "state", ""));
}

static void
assert_on_version(Fixture *f, const char *name, gint64 version)
{
    JsonObject *m = machine(f, name);
    g_autoptr(JsonObject) img = image(f, version);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) base = dv_store_get(dv_test_env_store(f), &dv_table_catalog_bases,
                                              dv_json_get_string(m, "base_id", ""), &error);
    g_autofree char *want = g_strdup_printf("cat1-base-v%" G_GINT64_FORMAT ".qcow2", version);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(m, "image_id", ""), ==, dv_json_get_string(img, "id", "x"));
    g_assert_cmpstr(dv_json_get_string(base, "volume_name", ""), ==, want);
    /* A pooled machine has no overlay (its transient disk on the base is
     * checked by the system test, from inside the guest); a persistent
     * one's exists on the host. */
    if (dv_json_get_string(m, "overlay_path", NULL) == NULL)
        return;
    {
        g_autoptr(DvVirtHost) vh = dv_test_engine_virt_host(f->engine, f->host_id);
        g_autoptr(JsonObject) vol = dv_virt_volume_lookup_by_path(vh, dv_json_get_string(m, "overlay_path", ""), NULL,
                                                                  &error);
        g_assert_no_error(error);
        g_assert_nonnull(vol);
    }
}

static JsonObject *
base_of(Fixture *f, gint64 version)
{
    g_autoptr(JsonObject) img = image(f, version);
    JsonArray *bases = dv_json_get_array(img, "bases");
    g_autoptr(GError) error = NULL;
    JsonObject *b;
    g_assert_cmpuint(json_array_get_length(bases), ==, 1);
    b = dv_store_get(dv_test_env_store(f), &dv_table_catalog_bases,
                     dv_json_get_string(json_array_get_object_element(bases, 0), "id", ""), &error);
    g_assert_no_error(error);
    g_ptr_array_add(f->keep, b);
    return b;
}

/* Refusals of update-image and rollback: each names the field or the
 * reason, and nothing is written. */
static void
test_image_refusals(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    Counts before;

    make_catalog(f, "pooled");
    before = counts(f);
    {
        g_autoptr(JsonObject) j = update_image(f, "nope", &error);
        assert_refused(f, before, j, error, DV_ERROR_NOT_FOUND, "master_snapshot", "has no snapshot 'nope'");
        g_clear_error(&error);
    }
    {
        g_autoptr(JsonObject) j = update_image(f, "s1", &error);
        assert_refused(f, before, j, error, DV_ERROR_CONFLICT, "master_snapshot", "already the current image (v1)");
        g_clear_error(&error);
    }
    dv_test_engine_snapshot(f->engine, "m0", "s2", WAIT_MS);
    before = counts(f);
    dv_test_engine_set_vm(f->engine, "m0", "{\"generation\":2,\"secure_boot\":true}");
    {
        g_autoptr(JsonObject) j = update_image(f, "s2", &error);
        assert_refused(f, before, j, error, DV_ERROR_NOT_SUPPORTED, "master_vm",
                       "Virtual Delivery Agent does not work with Secure Boot");
        g_clear_error(&error);
    }
    dv_test_engine_set_vm(f->engine, "m0", "{\"generation\":1,\"secure_boot\":false}");
    {
        g_autoptr(JsonObject) body = dv_test_json_object("{\"master_vm\":\"m0\",\"master_snapshot\":\"s2\",\"extra\":1}");
        g_autoptr(JsonObject) j = dv_engine_catalog_update_image(f->engine, "cat1", body,
                                                                 DV_ACTOR_NAMED("tester"), &error);
        assert_refused(f, before, j, error, DV_ERROR_INVALID_ARGUMENT, "extra", NULL);
        g_clear_error(&error);
    }
    /* No previous image yet. */
    {
        g_autoptr(JsonObject) j =
            dv_engine_catalog_rollback(f->engine, "cat1", DV_ACTOR_NAMED("tester"), &error);
        assert_refused(f, before, j, error, DV_ERROR_CONFLICT, "", "has no previous image to roll back to");
        g_clear_error(&error);
    }
    /* A running job of the catalog: every lifecycle call is refused
     * naming it. */
    {
        g_autofree char *jid = dv_test_catalog_fake_running_job(f, "cat1");
        g_autoptr(JsonObject) add = dv_test_json_object("{\"count\":1}");
        g_autoptr(JsonObject) power = dv_test_json_object("{\"action\":\"start\"}");
        g_autoptr(JsonObject) rebuild = dv_test_json_object("{\"all\":true}");
        g_autoptr(JsonObject) remove = dv_test_json_object("{\"count\":1}");
        JsonObject *j;
        before = counts(f);
        j = update_image(f, "s2", &error);
        assert_refused(f, before, j, error, DV_ERROR_CONFLICT, "", jid);
        g_clear_error(&error);
        j = dv_engine_catalog_add_machines(f->engine, "cat1", add, DV_ACTOR_NAMED("tester"),
                                           &error);
        assert_refused(f, before, j, error, DV_ERROR_CONFLICT, "", jid);
        g_clear_error(&error);
        j = dv_engine_catalog_power(f->engine, "cat1", power, DV_ACTOR_NAMED("tester"), &error);
        assert_refused(f, before, j, error, DV_ERROR_CONFLICT, "", jid);
        g_clear_error(&error);
        j = dv_engine_catalog_rebuild(f->engine, "cat1", rebuild, DV_ACTOR_NAMED("tester"), &error);
        assert_refused(f, before, j, error, DV_ERROR_CONFLICT, "", jid);
        g_clear_error(&error);
        j = dv_engine_catalog_remove_machines(f->engine, "cat1", remove, DV_ACTOR_NAMED("tester"),
                                              &error);
        assert_refused(f, before, j, error, DV_ERROR_CONFLICT, "", jid);
        g_clear_error(&error);
        j = dv_engine_catalog_rollback(f->engine, "cat1", DV_ACTOR_NAMED("tester"), &error);
        assert_refused(f, before, j, error, DV_ERROR_CONFLICT, "", jid);
        g_clear_error(&error);
        g_assert_true(dv_store_delete(dv_test_env_store(f), &dv_table_jobs, jid, &error));
        g_assert_no_error(error);
    }
}

/* Update, restart, rollback, update again: powered-off pooled machines
 * move at once, a running one at its next start through Drover; bases
 * are counted, kept while a machine or the rollback target needs them,
 * and removed when neither does. */
static void
test_update_and_rollback(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    JsonObject *b1 = NULL;
    JsonObject *b2 = NULL;
    g_autofree char *st = NULL;
    g_autofree char *vols = NULL;
    g_autofree char *personal_before = NULL;
    JsonObject *r;

    make_catalog(f, "pooled");
    make_ready(f);
    personal_before = g_strdup(dv_json_get_string(machine(f, "desk-02"), "personal_path", ""));
    vm_action(f, "desk-01", "start");
    st = domain_state(f, "desk-01");
    g_assert_cmpstr(st, ==, "running");

    dv_test_engine_snapshot(f->engine, "m0", "s2", WAIT_MS);
    job = update_image(f, "s2", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(job, "kind", ""), ==, "catalog.update-image");
    done = dv_test_engine_run(f->engine, job, WAIT_MS);
    r = dv_json_get_object(done, "result");
    g_assert_cmpint(dv_json_get_int(r, "image_version", 0), ==, 2);
    g_assert_cmpint(dv_json_get_int(r, "machines_moved", 0), ==, 2);
    g_assert_cmpint(dv_json_get_int(r, "machines_move_at_restart", 0), ==, 1);
    assert_on_version(f, "desk-01", 1);
    assert_on_version(f, "desk-02", 2);
    assert_on_version(f, "desk-03", 2);
    /* The personal disk is the same volume. */
    g_assert_cmpstr(dv_json_get_string(machine(f, "desk-02"), "personal_path", ""), ==, personal_before);
    {
        g_autoptr(JsonObject) v1 = image(f, 1);
        g_autoptr(JsonObject) v2 = image(f, 2);
        g_autoptr(JsonObject) cat = dv_engine_get(f->engine, DV_KIND_CATALOG, "cat1", &error);
        g_assert_false(dv_json_get_bool(v1, "current", TRUE));
        g_assert_true(dv_json_get_bool(v2, "current", FALSE));
        g_assert_cmpint(dv_json_get_int(v1, "machines", 0), ==, 1);
        g_assert_cmpint(dv_json_get_int(v2, "machines", 0), ==, 2);
        g_assert_cmpstr(dv_json_get_string(v2, "base_state", ""), ==, "ready");
        g_assert_cmpstr(dv_json_get_string(v2, "previous_image_id", ""), ==, dv_json_get_string(v1, "id", "x"));
        g_assert_cmpstr(dv_json_get_string(cat, "master_snapshot", ""), ==, "s2");
    }
    b1 = base_of(f, 1);
    b2 = base_of(f, 2);
    g_assert_cmpint(dv_json_get_int(b1, "refcount", 0), ==, 1);
    g_assert_cmpint(dv_json_get_int(b2, "refcount", 0), ==, 2);

    /* A base in use cannot be deleted: refused with the reason, row and
     * volume stay. */
    {
        g_autoptr(JsonObject) cat =
            dv_store_find(dv_test_env_store(f), &dv_table_catalogs, "name", "cat1", &error);
        gboolean ok = dv_catalog_base_delete(f->engine, cat, b1, NULL, &error);
        g_assert_false(ok);
        g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
        g_test_message("refused: %s", error->message);
        g_assert_nonnull(strstr(error->message, "1 machines use it (first: desk-01)"));
        g_clear_error(&error);
        ok = dv_catalog_base_delete(f->engine, cat, b2, NULL, &error);
        g_assert_false(ok);
        g_assert_nonnull(strstr(error->message, "2 machines use it"));
        g_clear_error(&error);
        vols = dv_test_engine_pool_names(f->engine, f->host_id, "cat1-base");
        g_assert_cmpstr(vols, ==, "cat1-base-v1.qcow2 cat1-base-v2.qcow2");
        g_assert_cmpint(dv_test_env_count(f, &dv_table_catalog_bases), ==, 2);
    }

    /* The running machine moves at its next start through Drover. */
    vm_action(f, "desk-01", "stop");
    assert_on_version(f, "desk-01", 1);
    vm_action(f, "desk-01", "start");
    assert_on_version(f, "desk-01", 2);
    b1 = base_of(f, 1);
    g_assert_cmpint(dv_json_get_int(b1, "refcount", -1), ==, 0);
    /* Unused, but what a rollback returns to: kept. */
    {
        g_autoptr(JsonObject) cat =
            dv_store_find(dv_test_env_store(f), &dv_table_catalogs, "name", "cat1", &error);
        g_assert_false(dv_catalog_base_delete(f->engine, cat, b1, NULL, &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
        g_assert_nonnull(strstr(error->message, "what a rollback returns to"));
        g_clear_error(&error);
    }

    /* Rollback: the shut-off machines move back at once. */
    g_clear_pointer(&job, json_object_unref);
    g_clear_pointer(&done, json_object_unref);
    job = dv_engine_catalog_rollback(f->engine, "cat1", DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(job, "kind", ""), ==, "catalog.rollback");
    done = dv_test_engine_run(f->engine, job, WAIT_MS);
    r = dv_json_get_object(done, "result");
    g_assert_cmpint(dv_json_get_int(r, "image_version", 0), ==, 1);
    g_assert_cmpint(dv_json_get_int(r, "machines_moved", 0), ==, 2);
    g_assert_cmpint(dv_json_get_int(r, "machines_move_at_restart", 0), ==, 1);
    assert_on_version(f, "desk-02", 1);
    assert_on_version(f, "desk-03", 1);
    assert_on_version(f, "desk-01", 2);
    {
        g_autoptr(JsonObject) v1 = image(f, 1);
        g_assert_true(dv_json_get_bool(v1, "current", FALSE));
    }
    /* v1 came first: no further rollback. */
    {
        Counts before = counts(f);
        g_autoptr(JsonObject) j =
            dv_engine_catalog_rollback(f->engine, "cat1", DV_ACTOR_NAMED("tester"), &error);
        assert_refused(f, before, j, error, DV_ERROR_CONFLICT, "", "no previous image");
        g_clear_error(&error);
    }

    /* v3 from s3: its previous is v1.  desk-01 still runs on v2; once it
     * moves, nothing needs v2 and its base is removed. */
    dv_test_engine_snapshot(f->engine, "m0", "s3", WAIT_MS);
    g_clear_pointer(&job, json_object_unref);
    g_clear_pointer(&done, json_object_unref);
    job = update_image(f, "s3", &error);
    g_assert_no_error(error);
    done = dv_test_engine_run(f->engine, job, WAIT_MS);
    g_clear_pointer(&vols, g_free);
    vols = dv_test_engine_pool_names(f->engine, f->host_id, "cat1-base");
    g_assert_cmpstr(vols, ==, "cat1-base-v1.qcow2 cat1-base-v2.qcow2 cat1-base-v3.qcow2");
    vm_action(f, "desk-01", "stop");
    vm_action(f, "desk-01", "start");
    assert_on_version(f, "desk-01", 3);
    g_clear_pointer(&vols, g_free);
    vols = dv_test_engine_pool_names(f->engine, f->host_id, "cat1-base");
    g_assert_cmpstr(vols, ==, "cat1-base-v1.qcow2 cat1-base-v3.qcow2");
    {
        g_autoptr(JsonObject) v2 = image(f, 2);
        g_autoptr(JsonObject) v3 = image(f, 3);
        g_autoptr(JsonObject) v1 = image(f, 1);
        g_assert_cmpstr(dv_json_get_string(v2, "base_state", ""), ==, "removed");
        g_assert_cmpstr(dv_json_get_string(v3, "previous_image_id", ""), ==, dv_json_get_string(v1, "id", "x"));
    }
    /* Rolling back to v1 works again (its base was kept). */
    g_clear_pointer(&job, json_object_unref);
    g_clear_pointer(&done, json_object_unref);
    job = dv_engine_catalog_rollback(f->engine, "cat1", DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    done = dv_test_engine_run(f->engine, job, WAIT_MS);
    assert_on_version(f, "desk-02", 1);
}

/* Rollback needs the previous image's base: when it is gone, refused
 * with the reason and nothing written. */
static void
test_rollback_base_gone(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    JsonObject *b1;
    Counts before;

    make_catalog(f, "pooled");
    dv_test_engine_snapshot(f->engine, "m0", "s2", WAIT_MS);
    job = update_image(f, "s2", &error);
    g_assert_no_error(error);
    done = dv_test_engine_run(f->engine, job, WAIT_MS);
    /* Gone behind Drover's back (an administrator, a failed disk). */
    b1 = base_of(f, 1);
    g_assert_true(dv_store_delete(dv_test_env_store(f), &dv_table_catalog_bases,
                                  dv_json_get_string(b1, "id", ""), &error));
    g_assert_no_error(error);
    before = counts(f);
    {
        JsonObject *j =
            dv_engine_catalog_rollback(f->engine, "cat1", DV_ACTOR_NAMED("tester"), &error);
        assert_refused(f, before, j, error, DV_ERROR_CONFLICT, "", "its base on host h1 was removed");
        g_clear_error(&error);
    }
}

/* A persistent catalog keeps its machines' disks through an update;
 * rebuild gives the chosen ones the current image and refuses running
 * ones. */
static void
test_persistent_rebuild(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    JsonObject *r;

    make_catalog(f, "persistent");
    make_ready(f);
    dv_test_engine_snapshot(f->engine, "m0", "s2", WAIT_MS);
    job = update_image(f, "s2", &error);
    g_assert_no_error(error);
    done = dv_test_engine_run(f->engine, job, WAIT_MS);
    r = dv_json_get_object(done, "result");
    g_assert_cmpint(dv_json_get_int(r, "machines_kept", 0), ==, 3);
    g_assert_cmpint(dv_json_get_int(r, "machines_moved", -1), ==, 0);
    assert_on_version(f, "desk-01", 1);
    /* A start does not move a persistent machine. */
    vm_action(f, "desk-03", "start");
    assert_on_version(f, "desk-03", 1);
    {
        Counts before = counts(f);
        g_autoptr(JsonObject) bad = dv_test_json_object("{\"machines\":[\"desk-09\"]}");
        g_autoptr(JsonObject) both = dv_test_json_object("{\"machines\":[\"desk-01\"],\"all\":true}");
        JsonObject *j =
            dv_engine_catalog_rebuild(f->engine, "cat1", bad, DV_ACTOR_NAMED("tester"), &error);
        assert_refused(f, before, j, error, DV_ERROR_NOT_FOUND, "machines[0]", "no machine 'desk-09'");
        g_clear_error(&error);
        j = dv_engine_catalog_rebuild(f->engine, "cat1", both, DV_ACTOR_NAMED("tester"), &error);
        assert_refused(f, before, j, error, DV_ERROR_INVALID_ARGUMENT, "machines", NULL);
        g_clear_error(&error);
    }
    {
        g_autoptr(JsonObject) body = dv_test_json_object("{\"machines\":[\"desk-01\",\"desk-03\"]}");
        g_clear_pointer(&job, json_object_unref);
        g_clear_pointer(&done, json_object_unref);
        job = dv_engine_catalog_rebuild(f->engine, "cat1", body, DV_ACTOR_NAMED("tester"), &error);
        g_assert_no_error(error);
        done = dv_test_env_job_wait(f, job);
        g_assert_cmpstr(dv_json_get_string(done, "state", ""), ==, "failed");
        r = dv_json_get_object(done, "result");
        g_assert_cmpint(dv_json_get_int(r, "machines_rebuilt", 0), ==, 1);
        g_assert_cmpint(dv_json_get_int(r, "machines_failed", 0), ==, 1);
        g_assert_nonnull(strstr(dv_json_get_string(dv_json_get_object(done, "error"), "message", ""),
                                "desk-03 is running; shut it down first"));
    }
    assert_on_version(f, "desk-01", 2);
    assert_on_version(f, "desk-02", 1);
    assert_on_version(f, "desk-03", 1);
}

/* add-machines: count rules, names taken, the running-job conflict,
 * then the next free names (gaps only when asked); remove-machines. */
static void
test_add_remove(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    Counts before;

    make_catalog(f, "pooled");
    before = counts(f);
    {
        g_autoptr(JsonObject) b0 = dv_test_json_object("{\"count\":0}");
        g_autoptr(JsonObject) b1 = dv_test_json_object("{\"count\":97}");
        g_autoptr(JsonObject) b2 = dv_test_json_object("{\"count\":10001}");
        g_autoptr(JsonObject) b3 = dv_test_json_object("{\"count\":\"two\"}");
        JsonObject *j =
            dv_engine_catalog_add_machines(f->engine, "cat1", b0, DV_ACTOR_NAMED("tester"), &error);
        assert_refused(f, before, j, error, DV_ERROR_INVALID_ARGUMENT, "count", NULL);
        g_clear_error(&error);
        j = dv_engine_catalog_add_machines(f->engine, "cat1", b1, DV_ACTOR_NAMED("tester"), &error);
        assert_refused(f, before, j, error, DV_ERROR_INVALID_ARGUMENT, "count", "only 96 more names are free");
        g_clear_error(&error);
        j = dv_engine_catalog_add_machines(f->engine, "cat1", b2, DV_ACTOR_NAMED("tester"), &error);
        assert_refused(f, before, j, error, DV_ERROR_INVALID_ARGUMENT, "count", NULL);
        g_clear_error(&error);
        j = dv_engine_catalog_add_machines(f->engine, "cat1", b3, DV_ACTOR_NAMED("tester"), &error);
        assert_refused(f, before, j, error, DV_ERROR_INVALID_ARGUMENT, "count", NULL);
        g_clear_error(&error);
    }
    /* No room in the pool for the overlays (1 MiB each). */
    {
        g_autoptr(JsonObject) pool =
            dv_store_find(dv_test_env_store(f), &dv_table_pools, "name", "pool1", &error);
        g_autoptr(JsonObject) small = dv_test_json_object("{\"available\":1048576}");
        g_autoptr(JsonObject) big = dv_test_json_object("{\"available\":107374182400}");
        g_autoptr(JsonObject) b = dv_test_json_object("{\"count\":2}");
        JsonObject *j;
        g_assert_no_error(error);
        g_assert_true(dv_store_update(dv_test_env_store(f), &dv_table_pools,
                                      dv_json_get_string(pool, "id", ""), small, &error));
        j = dv_engine_catalog_add_machines(f->engine, "cat1", b, DV_ACTOR_NAMED("tester"), &error);
        assert_refused(f, before, j, error, DV_ERROR_CONFLICT, "pool", "2 overlays need 2 MiB");
        g_clear_error(&error);
        g_assert_true(dv_store_update(dv_test_env_store(f), &dv_table_pools,
                                      dv_json_get_string(pool, "id", ""), big, &error));
        g_assert_no_error(error);
    }
    /* A VM named like the next machine on the host. */
    {
        g_autoptr(JsonObject) vm = json_object_new();
        g_autoptr(JsonObject) b = dv_test_json_object("{\"count\":1}");
        g_autofree char *id = g_uuid_string_random();
        g_autofree char *uuid = g_uuid_string_random();
        JsonObject *j;
        json_object_set_string_member(vm, "id", id);
        json_object_set_string_member(vm, "name", "desk-04");
        json_object_set_string_member(vm, "origin", "discovered");
        json_object_set_string_member(vm, "host_id", f->host_id);
        json_object_set_string_member(vm, "uuid", uuid);
        json_object_set_string_member(vm, "state", "shutoff");
        json_object_set_int_member(vm, "created_at", 1);
        json_object_set_int_member(vm, "updated_at", 1);
        g_assert_true(dv_store_insert(dv_test_env_store(f), &dv_table_vms, vm, &error));
        g_assert_no_error(error);
        j = dv_engine_catalog_add_machines(f->engine, "cat1", b, DV_ACTOR_NAMED("tester"), &error);
        assert_refused(f, before, j, error, DV_ERROR_CONFLICT, "count", "already has a machine named 'desk-04'");
        g_clear_error(&error);
        g_assert_true(dv_store_delete(dv_test_env_store(f), &dv_table_vms, id, &error));
    }
    {
        g_autoptr(JsonObject) b = dv_test_json_object("{\"count\":2}");
        g_autoptr(JsonObject) cat = NULL;
        job =
            dv_engine_catalog_add_machines(f->engine, "cat1", b, DV_ACTOR_NAMED("tester"), &error);
        g_assert_no_error(error);
        g_assert_cmpstr(dv_json_get_string(job, "kind", ""), ==, "catalog.provision");
        done = dv_test_env_job_wait(f, job);
        /* Only the new ones are provisioned (the first three, failed
         * before, wait for a retry); they stop at the identity step too. */
        g_assert_nonnull(strstr(dv_json_get_string(dv_json_get_object(done, "error"), "message", ""),
                                "2 of 2 machines failed"));
        g_assert_cmpint(dv_test_env_count(f, &dv_table_catalog_machines), ==, 5);
        g_assert_cmpstr(dv_json_get_string(machine(f, "desk-05"), "step", ""), ==, "overlay");
        cat = dv_engine_get(f->engine, DV_KIND_CATALOG, "cat1", &error);
        g_assert_cmpint(dv_json_get_int(cat, "next_index", 0), ==, 6);
    }
    /* remove-machines refusals, then desk-02 and desk-05 go. */
    before = counts(f);
    {
        g_autoptr(JsonObject) b0 = dv_test_json_object("{\"count\":0}");
        g_autoptr(JsonObject) b1 = dv_test_json_object("{\"machines\":[\"desk-77\"]}");
        g_autoptr(JsonObject) b2 = dv_test_json_object("{\"machines\":[\"desk-01\"],\"count\":1}");
        g_autoptr(JsonObject) b3 = dv_test_json_object("{\"machines\":[\"desk-01\",\"desk-01\"]}");
        JsonObject *j = dv_engine_catalog_remove_machines(f->engine, "cat1", b0,
                                                          DV_ACTOR_NAMED("tester"), &error);
        assert_refused(f, before, j, error, DV_ERROR_INVALID_ARGUMENT, "count", NULL);
        g_clear_error(&error);
        j = dv_engine_catalog_remove_machines(f->engine, "cat1", b1, DV_ACTOR_NAMED("tester"),
                                              &error);
        assert_refused(f, before, j, error, DV_ERROR_NOT_FOUND, "machines[0]", NULL);
        g_clear_error(&error);
        j = dv_engine_catalog_remove_machines(f->engine, "cat1", b2, DV_ACTOR_NAMED("tester"),
                                              &error);
        assert_refused(f, before, j, error, DV_ERROR_INVALID_ARGUMENT, "machines", NULL);
        g_clear_error(&error);
        j = dv_engine_catalog_remove_machines(f->engine, "cat1", b3, DV_ACTOR_NAMED("tester"),
                                              &error);
        assert_refused(f, before, j, error, DV_ERROR_INVALID_ARGUMENT, "machines[1]", "listed twice");
        g_clear_error(&error);
    }
    {
        g_autoptr(JsonObject) b = dv_test_json_object("{\"machines\":[\"desk-02\",\"desk-05\"]}");
        g_autofree char *vols = NULL;
        g_clear_pointer(&job, json_object_unref);
        g_clear_pointer(&done, json_object_unref);
        job = dv_engine_catalog_remove_machines(f->engine, "cat1", b, DV_ACTOR_NAMED("tester"),
                                                &error);
        g_assert_no_error(error);
        done = dv_test_engine_run(f->engine, job, WAIT_MS);
        g_assert_cmpint(dv_json_get_int(dv_json_get_object(done, "result"), "machines_removed", 0), ==, 2);
        g_assert_cmpint(dv_test_env_count(f, &dv_table_catalog_machines), ==, 3);
        vols = dv_test_engine_pool_names(f->engine, f->host_id, "cat1-");
        /* Pooled: the machines have no overlay volume. */
        g_assert_cmpstr(vols, ==, "cat1-base-v1.qcow2");
        g_assert_cmpint(dv_json_get_int(base_of(f, 1), "refcount", 0), ==, 3);
    }
    /* Without reuse_gaps the next name is desk-06; with it, desk-02. */
    {
        g_autoptr(JsonObject) b = dv_test_json_object("{\"count\":1,\"reuse_gaps\":true}");
        g_clear_pointer(&job, json_object_unref);
        g_clear_pointer(&done, json_object_unref);
        job =
            dv_engine_catalog_add_machines(f->engine, "cat1", b, DV_ACTOR_NAMED("tester"), &error);
        g_assert_no_error(error);
        done = dv_test_env_job_wait(f, job);
        g_assert_cmpint(dv_test_env_count(f, &dv_table_catalog_machines), ==, 4);
        g_clear_pointer(&done, json_object_unref);
        done = dv_store_find(dv_test_env_store(f), &dv_table_catalog_machines, "name", "desk-02",
                             &error);
        g_assert_nonnull(done);
    }
    {
        g_autoptr(JsonObject) b = dv_test_json_object("{\"count\":1}");
        g_clear_pointer(&job, json_object_unref);
        g_clear_pointer(&done, json_object_unref);
        job =
            dv_engine_catalog_add_machines(f->engine, "cat1", b, DV_ACTOR_NAMED("tester"), &error);
        g_assert_no_error(error);
        done = dv_test_env_job_wait(f, job);
        g_clear_pointer(&done, json_object_unref);
        done = dv_store_find(dv_test_env_store(f), &dv_table_catalog_machines, "name", "desk-06",
                             &error);
        g_assert_nonnull(done);
    }
    /* By count: powered-off first, running ones only with force. */
    make_ready(f);
    vm_action(f, "desk-01", "start");
    {
        g_autoptr(JsonObject) b = dv_test_json_object("{\"count\":5}");
        before = counts(f);
        g_clear_pointer(&job, json_object_unref);
        job = dv_engine_catalog_remove_machines(f->engine, "cat1", b, DV_ACTOR_NAMED("tester"),
                                                &error);
        assert_refused(f, before, job, error, DV_ERROR_CONFLICT, "count", "only 4 of the 5 machines");
        g_clear_error(&error);
    }
    {
        g_autoptr(JsonObject) b = dv_test_json_object("{\"machines\":[\"desk-01\"]}");
        before = counts(f);
        g_clear_pointer(&job, json_object_unref);
        job = dv_engine_catalog_remove_machines(f->engine, "cat1", b, DV_ACTOR_NAMED("tester"),
                                                &error);
        assert_refused(f, before, job, error, DV_ERROR_CONFLICT, "machines[0]", "desk-01 is running");
        g_clear_error(&error);
    }
    {
        g_autoptr(JsonObject) b = dv_test_json_object("{\"count\":4}");
        g_clear_pointer(&done, json_object_unref);
        job = dv_engine_catalog_remove_machines(f->engine, "cat1", b, DV_ACTOR_NAMED("tester"),
                                                &error);
        g_assert_no_error(error);
        done = dv_test_engine_run(f->engine, job, WAIT_MS);
        g_assert_cmpint(dv_test_env_count(f, &dv_table_catalog_machines), ==, 1);
        g_clear_pointer(&done, json_object_unref);
        done = dv_store_find(dv_test_env_store(f), &dv_table_catalog_machines, "name", "desk-01",
                             &error);
        g_assert_nonnull(done);
    }
}

/* Power actions: at most ceil(share x machines) at a time; bad input
 * refused; start, then shutdown. */
static void
test_power(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    JsonObject *r;
    Counts before;

    make_catalog(f, "pooled");
    make_ready(f);
    before = counts(f);
    {
        static const char *const bad[][2] = {
            { "{\"action\":\"reboot\"}", "action" },
            { "{\"action\":\"start\",\"max_share\":0}", "max_share" },
            { "{\"action\":\"start\",\"max_share\":101}", "max_share" },
            { "{\"action\":\"start\",\"machines\":[\"desk-44\"]}", "machines[0]" },
            { "{}", "action" },
        };
        for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
            g_autoptr(JsonObject) b = dv_test_json_object(bad[i][0]);
            JsonObject *j =
                dv_engine_catalog_power(f->engine, "cat1", b, DV_ACTOR_NAMED("tester"), &error);
            assert_refused(f, before, j, error, i == 3 ? DV_ERROR_NOT_FOUND : DV_ERROR_INVALID_ARGUMENT, bad[i][1],
                           NULL);
            g_clear_error(&error);
        }
    }
    {
        g_autoptr(JsonObject) b = dv_test_json_object("{\"action\":\"start\",\"max_share\":34}");
        job = dv_engine_catalog_power(f->engine, "cat1", b, DV_ACTOR_NAMED("tester"), &error);
        g_assert_no_error(error);
        g_assert_cmpstr(dv_json_get_string(job, "kind", ""), ==, "catalog.power");
        done = dv_test_engine_run(f->engine, job, WAIT_MS);
        r = dv_json_get_object(done, "result");
        g_assert_cmpint(dv_json_get_int(r, "parallel", 0), ==, 2); /* ceil(3 x 0.34) */
        g_assert_cmpint(dv_json_get_int(r, "max_parallel_seen", 0), <=, 2);
        g_assert_cmpint(dv_json_get_int(r, "done", 0), ==, 3);
        for (guint i = 1; i <= 3; i++) {
            g_autofree char *name = g_strdup_printf("desk-0%u", i);
            g_autofree char *st = domain_state(f, name);
            g_assert_cmpstr(st, ==, "running");
        }
    }
    {
        g_autoptr(JsonObject) b = dv_test_json_object("{\"action\":\"shutdown\",\"machines\":[\"desk-02\"]}");
        g_autofree char *s1 = NULL;
        g_autofree char *s2 = NULL;
        g_clear_pointer(&job, json_object_unref);
        g_clear_pointer(&done, json_object_unref);
        job = dv_engine_catalog_power(f->engine, "cat1", b, DV_ACTOR_NAMED("tester"), &error);
        g_assert_no_error(error);
        done = dv_test_engine_run(f->engine, job, WAIT_MS);
        r = dv_json_get_object(done, "result");
        g_assert_cmpint(dv_json_get_int(r, "parallel", 0), ==, 1); /* 10% of 3, at least 1 */
        s1 = domain_state(f, "desk-01");
        s2 = domain_state(f, "desk-02");
        g_assert_cmpstr(s1, ==, "running");
        g_assert_cmpstr(s2, ==, "shutoff");
        g_clear_pointer(&done, json_object_unref);
        done = dv_store_find(dv_test_env_store(f), &dv_table_vms, "name", "desk-02", &error);
        g_assert_cmpstr(dv_json_get_string(done, "state", ""), ==, "shutoff");
    }
    /* restart of a pooled machine on an older image moves it. */
    dv_test_engine_snapshot(f->engine, "m0", "s2", WAIT_MS);
    {
        g_autoptr(JsonObject) b = dv_test_json_object("{\"action\":\"restart\",\"max_share\":100}");
        g_clear_pointer(&job, json_object_unref);
        g_clear_pointer(&done, json_object_unref);
        job = update_image(f, "s2", &error);
        g_assert_no_error(error);
        done = dv_test_engine_run(f->engine, job, WAIT_MS);
        assert_on_version(f, "desk-01", 1);
        assert_on_version(f, "desk-02", 2);
        g_clear_pointer(&job, json_object_unref);
        g_clear_pointer(&done, json_object_unref);
        job = dv_engine_catalog_power(f->engine, "cat1", b, DV_ACTOR_NAMED("tester"), &error);
        g_assert_no_error(error);
        done = dv_test_engine_run(f->engine, job, WAIT_MS);
        assert_on_version(f, "desk-01", 2);
        assert_on_version(f, "desk-03", 2);
    }
}

/* The periodic reconcile records a summary per catalog; it deletes
 * nothing. */
static void
test_reconcile_all(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) cat = NULL;
    g_autoptr(JsonObject) vol = NULL;
    g_autoptr(DvVirtHost) vh = NULL;
    g_autofree char *names = NULL;
    JsonObject *last;
    guint checked = 0, not_ok = 0;

    make_catalog(f, "pooled");
    g_assert_true(dv_engine_catalog_reconcile_all(f->engine, &checked, &not_ok, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(checked, ==, 1);
    cat = dv_engine_get(f->engine, DV_KIND_CATALOG, "cat1", &error);
    last = dv_json_get_object(cat, "last_reconcile");
    g_assert_nonnull(last);
    g_assert_cmpint(dv_json_get_int(last, "at", 0), >, 0);
    g_assert_cmpint(dv_json_get_int(last, "orphans", -1), ==, 0);

    vh = dv_test_engine_virt_host(f->engine, f->host_id);
    vol = dv_virt_volume_create(vh, "pool1", "cat1-stray.qcow2", 1 << 20, "qcow2", NULL, &error);
    g_assert_no_error(error);
    g_assert_true(dv_engine_catalog_reconcile_all(f->engine, &checked, &not_ok, &error));
    g_assert_cmpuint(not_ok, ==, 1);
    g_clear_pointer(&cat, json_object_unref);
    cat = dv_engine_get(f->engine, DV_KIND_CATALOG, "cat1", &error);
    last = dv_json_get_object(cat, "last_reconcile");
    g_assert_false(dv_json_get_bool(last, "ok", TRUE));
    g_assert_cmpint(dv_json_get_int(last, "orphans", 0), ==, 1);
    names = dv_test_engine_pool_names(f->engine, f->host_id, "cat1-stray");
    g_assert_cmpstr(names, ==, "cat1-stray.qcow2");
}

/* Pooled machines made before they ran on their base (0.2.0: an overlay
 * volume each, overlay_path set): the catalog's reconcile job repoints the
 * shut-off ones at the base, transient, and deletes their overlays; a
 * running one waits for its next start through Drover, which converts it.
 * QEMU's "<base>.TRANSIENT-<machine>" file is no orphan. */
static void
test_pooled_old_form(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvVirtHost) vh = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object("{\"delete_orphans\":true}");
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autofree char *names = NULL;
    const char *base_path;
    JsonObject *result;

    make_catalog(f, "pooled");
    make_ready(f);
    vh = dv_test_engine_virt_host(f->engine, f->host_id);
    base_path = dv_json_get_string(base_of(f, 1), "path", "");
    for (guint i = 1; i <= 3; i++) {
        g_autofree char *name = g_strdup_printf("desk-%02u", i);
        g_autofree char *vname = g_strdup_printf("cat1-%s-disk.qcow2", name);
        g_autoptr(JsonObject) vol =
            dv_virt_volume_create(vh, "pool1", vname, 1 << 20, "qcow2", NULL, &error);
        g_autoptr(JsonObject) ch = json_object_new();
        g_assert_no_error(error);
        json_object_set_string_member(ch, "overlay_path", dv_json_get_string(vol, "path", ""));
        g_assert_true(dv_store_update(dv_test_env_store(f), &dv_table_catalog_machines,
                                      dv_json_get_string(machine(f, name), "id", ""), ch, &error));
        g_assert_no_error(error);
    }
    /* desk-03 runs; QEMU's overlay of desk-02 is beside the base. */
    g_assert_true(dv_virt_domain_start(
        vh, dv_json_get_string(machine(f, "desk-03"), "domain_uuid", ""), NULL, &error));
    g_assert_no_error(error);
    {
        g_autofree char *tname = g_strdup_printf("%s.TRANSIENT-desk-02", "cat1-base-v1.qcow2");
        g_autoptr(JsonObject) t =
            dv_virt_volume_create(vh, "pool1", tname, 1 << 20, "qcow2", NULL, &error);
        g_assert_no_error(error);
    }
    job = dv_engine_catalog_reconcile_submit(f->engine, "cat1", body, DV_ACTOR_NAMED("tester"),
                                             &error);
    g_assert_no_error(error);
    done = dv_test_env_job_wait(f, job);
    g_assert_cmpstr(dv_json_get_string(done, "state", ""), ==, "succeeded");
    result = dv_json_get_object(done, "result");
    g_assert_cmpint(dv_json_get_int(result, "machines_made_transient", -1), ==, 2);
    g_assert_cmpint(dv_json_get_int(result, "machines_transient_at_start", -1), ==, 1);
    g_assert_cmpuint(json_array_get_length(dv_json_get_array(result, "deleted")), ==, 0);
    g_assert_null(dv_json_get_string(machine(f, "desk-01"), "overlay_path", NULL));
    g_assert_null(dv_json_get_string(machine(f, "desk-02"), "overlay_path", NULL));
    g_assert_nonnull(dv_json_get_string(machine(f, "desk-03"), "overlay_path", NULL));
    names = dv_test_engine_pool_names(f->engine, f->host_id, "cat1-");
    g_assert_cmpstr(
        names, ==,
        "cat1-base-v1.qcow2 cat1-base-v1.qcow2.TRANSIENT-desk-02 cat1-desk-03-disk.qcow2");
    /* The definition names the base, transient. */
    {
        g_autoptr(JsonObject) dom = dv_virt_domain_get(
            vh, dv_json_get_string(machine(f, "desk-01"), "domain_uuid", ""), NULL, &error);
        g_autofree char *text = dv_json_object_to_string(dom, FALSE);
        g_assert_no_error(error);
        g_assert_nonnull(strstr(text, base_path));
    }
    /* desk-03 stops and starts through Drover: converted. */
    g_assert_true(dv_virt_domain_destroy(
        vh, dv_json_get_string(machine(f, "desk-03"), "domain_uuid", ""), NULL, &error));
    g_assert_no_error(error);
    {
        g_autoptr(JsonObject) catalog =
            dv_store_find(dv_test_env_store(f), &dv_table_catalogs, "name", "cat1", &error);
        g_assert_true(
            dv_catalog_machine_start(f->engine, catalog, machine(f, "desk-03"), NULL, &error));
        g_assert_no_error(error);
    }
    g_assert_null(dv_json_get_string(machine(f, "desk-03"), "overlay_path", NULL));
    g_free(names);
    names = dv_test_engine_pool_names(f->engine, f->host_id, "cat1-desk-");
    g_assert_cmpstr(names, ==, "");
}

/* The bulk actions run on many machines at once (dv-catalog-each.c): 40
 * pooled machines move to a new image, 10 are removed and the catalog is
 * deleted, each with 16 workers, and every count and base reference is
 * right afterwards (the base's count is written by many workers). */
static void
test_bulk_parallel(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autofree char *vols = NULL;
    JsonObject *r;

    make_catalog_of(f, "pooled", 40, 0);
    make_ready(f);
    dv_test_engine_snapshot(f->engine, "m0", "s2", WAIT_MS);
    job = update_image(f, "s2", &error);
    g_assert_no_error(error);
    done = dv_test_engine_run(f->engine, job, WAIT_MS);
    dv_test_assert_job_succeeded(done);
    r = dv_json_get_object(done, "result");
    g_test_message("update-image: %s", dv_json_object_to_string(r, FALSE));
    g_assert_cmpint(dv_json_get_int(r, "machines_moved", 0), ==, 40);
    g_assert_cmpint(dv_json_get_int(r, "parallel", 0), ==, 16);
    g_assert_cmpint(dv_json_get_int(r, "max_parallel_seen", 0), >=, 1);
    g_assert_cmpint(dv_json_get_int(base_of(f, 2), "refcount", 0), ==, 40);
    for (guint i = 1; i <= 40; i++) {
        g_autofree char *name = g_strdup_printf("desk-%02u", i);
        assert_on_version(f, name, 2);
    }

    {
        g_autoptr(JsonObject) b = dv_test_json_object("{\"count\":10}");
        g_clear_pointer(&job, json_object_unref);
        g_clear_pointer(&done, json_object_unref);
        job = dv_engine_catalog_remove_machines(f->engine, "cat1", b, DV_ACTOR_NAMED("tester"),
                                                &error);
        g_assert_no_error(error);
        done = dv_test_engine_run(f->engine, job, WAIT_MS);
        dv_test_assert_job_succeeded(done);
        r = dv_json_get_object(done, "result");
        g_assert_cmpint(dv_json_get_int(r, "machines_removed", 0), ==, 10);
        g_assert_cmpint(dv_json_get_int(r, "parallel", 0), ==, 10);
        g_assert_cmpint(dv_test_env_count(f, &dv_table_catalog_machines), ==, 30);
        g_assert_cmpint(dv_json_get_int(base_of(f, 2), "refcount", 0), ==, 30);
    }

    g_clear_pointer(&job, json_object_unref);
    g_clear_pointer(&done, json_object_unref);
    job = dv_engine_delete(f->engine, DV_KIND_CATALOG, "cat1", NULL, DV_ACTOR_NAMED("tester"),
                           &error);
    g_assert_no_error(error);
    done = dv_test_engine_run(f->engine, job, WAIT_MS);
    dv_test_assert_job_succeeded(done);
    r = dv_json_get_object(done, "result");
    g_assert_true(dv_json_get_bool(r, "deleted", FALSE));
    g_assert_cmpint(dv_json_get_int(r, "machines_removed", 0), ==, 30);
    g_assert_cmpint(dv_json_get_int(r, "parallel", 0), ==, 16);
    g_assert_cmpint(dv_test_env_count(f, &dv_table_catalog_machines), ==, 0);
    g_assert_cmpint(dv_test_env_count(f, &dv_table_catalog_bases), ==, 0);
    vols = dv_test_engine_pool_names(f->engine, f->host_id, "cat1-");
    g_assert_cmpstr(vols, ==, "");
}

/* Bases are made on the master's host first (the others stream from it),
 * whatever order the rows come in. */
static void
test_bases_in_order(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonArray) bases = json_array_new();
    g_autoptr(GPtrArray) order = NULL;
    g_autoptr(JsonObject) img = NULL;
    const char *image_id;
    guint n_first = 0;

    make_catalog(f, "pooled");
    img = image(f, 1);
    image_id = dv_json_get_string(img, "id", "");
    for (guint i = 0; i < 3; i++) {
        JsonObject *b = json_object_new();
        json_object_set_string_member(b, "image_id", image_id);
        json_object_set_string_member(b, "host_id", i == 2 ? f->host_id : (i == 0 ? "other-a" : "other-b"));
        json_array_add_object_element(bases, b);
    }
    order = dv_catalog_bases_in_order(f->engine, bases, &n_first);
    g_assert_cmpuint(order->len, ==, 3);
    g_assert_cmpuint(n_first, ==, 1);
    g_assert_cmpstr(dv_json_get_string(g_ptr_array_index(order, 0), "host_id", ""), ==, f->host_id);
    g_assert_cmpstr(dv_json_get_string(g_ptr_array_index(order, 1), "host_id", ""), ==, "other-a");
    g_assert_cmpstr(dv_json_get_string(g_ptr_array_index(order, 2), "host_id", ""), ==, "other-b");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn)                                                                              \
    g_test_add(path, Fixture, NULL, dv_test_catalog_env_setup, fn, dv_test_catalog_env_teardown)
    ADD("/drover/catalog/lifecycle/image-refusals", test_image_refusals);
    ADD("/drover/catalog/lifecycle/update-and-rollback", test_update_and_rollback);
    ADD("/drover/catalog/lifecycle/rollback-base-gone", test_rollback_base_gone);
    ADD("/drover/catalog/lifecycle/persistent-rebuild", test_persistent_rebuild);
    ADD("/drover/catalog/lifecycle/add-remove", test_add_remove);
    ADD("/drover/catalog/lifecycle/power", test_power);
    ADD("/drover/catalog/lifecycle/reconcile-all", test_reconcile_all);
    ADD("/drover/catalog/lifecycle/bulk-parallel", test_bulk_parallel);
    ADD("/drover/catalog/lifecycle/bases-in-order", test_bases_in_order);
    ADD("/drover/catalog/lifecycle/pooled-old-form", test_pooled_old_form);
#undef ADD
    return g_test_run();
}
