/* Machine catalogs, engine tier: a DvEngine in process (SQLite in a temp
 * dir) against libvirt's test driver.  Every refused create must name the
 * field and leave nothing behind: no catalog, machine, base or job row.
 * Delete and reconcile run against the same simulated host: the tests
 * reach it through the engine's own handle (a test:///file host lives
 * only as long as its one connection). */
#define G_LOG_DOMAIN "DvTestCatalog"

#include "dv-core.h"
#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-test-catalog.h"
#include "dv-test-util.h"

#include <string.h>

#define WAIT_MS DV_TEST_CATALOG_WAIT_MS

typedef DvTestCatalogEnv Fixture;

/* Adds test host @name whose pool1 has @available bytes (all free); returns
 * its id. */
static char *
add_host_with_pool(Fixture *f, const char *name, gint64 available)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *file = g_strdup_printf("%s.xml", name);
    g_autofree char *xml = dv_test_write_host_xml(f->tmpdir, file, name, 0);
    g_autofree char *text = NULL;
    g_autofree char *avail = g_strdup_printf(
        "    <volume type='file'><name>filler.img</name><capacity>%" G_GINT64_FORMAT "</capacity>"
        "<allocation>%" G_GINT64_FORMAT "</allocation><target><path>/pool1/filler.img</path>"
        "<format type='raw'/></target></volume>\n  </pool>",
        G_GINT64_CONSTANT(107374182400) - available, G_GINT64_CONSTANT(107374182400) - available);
    g_autofree char *body = g_strdup_printf("{\"name\":\"%s\",\"uri\":\"test://%s\"}", name, xml);
    g_autoptr(JsonObject) b = dv_test_json_object(body);
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_auto(GStrv) parts = NULL;

    g_assert_true(g_file_get_contents(xml, &text, NULL, &error));
    /* libvirt's test driver gives every pool 100 GiB and counts what its
     * volumes allocate: a filler volume takes the rest. */
    parts = g_strsplit(text, "  </pool>", -1);
    g_free(text);
    text = g_strjoinv(avail, parts);
    g_assert_true(g_file_set_contents(xml, text, -1, &error));
    job = dv_engine_create(f->engine, DV_KIND_HOST, b, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    done = dv_test_engine_run(f->engine, job, WAIT_MS);
    return g_strdup(dv_json_get_string(dv_json_get_object(done, "result"), "id", ""));
}

/* A valid body with one member replaced (or added) by @override, a JSON
 * fragment "\"key\":value". */
static char *
body_with(const char *override)
{
    g_autoptr(JsonObject) base = dv_test_json_object("{\"name\":\"cat1\",\"master_vm\":\"m0\",\"master_snapshot\":\"s1\","
                                                     "\"hosts\":[\"h1\"],\"pool\":\"pool1\",\"naming_scheme\":\"desk-##\","
                                                     "\"count\":3,\"machine\":{\"memory_mib\":128,\"networks\":[\"net1\"]}}");
    if (override != NULL) {
        g_autofree char *wrapped = g_strdup_printf("{%s}", override);
        g_autoptr(JsonObject) o = dv_test_json_object(wrapped);
        JsonObjectIter it;
        const char *k;
        JsonNode *n;
        json_object_iter_init(&it, o);
        while (json_object_iter_next(&it, &k, &n)) {
            if (JSON_NODE_HOLDS_NULL(n) && g_str_has_prefix(k, "-"))
                continue;
            json_object_set_member(base, k, json_node_copy(n));
        }
    }
    return dv_json_object_to_string(base, FALSE);
}

/* Create must fail with @code naming @field (message holding @in_message)
 * and write nothing. */
static void
refused(Fixture *f, const char *body, DvErrorCode code, const char *field, const char *in_message)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) b = dv_test_json_object(body);
    gint64 jobs = dv_test_env_count(f, &dv_table_jobs);
    g_autoptr(JsonObject) job =
        dv_engine_create(f->engine, DV_KIND_CATALOG, b, DV_ACTOR_NAMED("tester"), &error);

    g_assert_null(job);
    g_assert_nonnull(error);
    g_test_message("refused: %s", error->message);
    g_assert_error(error, DV_ERROR, (gint)code);
    g_assert_cmpstr(dv_error_get_field(error), ==, field);
    if (in_message != NULL)
        g_assert_nonnull(strstr(error->message, in_message));
    g_assert_cmpint(dv_test_env_count(f, &dv_table_catalogs), ==, 0);
    g_assert_cmpint(dv_test_env_count(f, &dv_table_catalog_images), ==, 0);
    g_assert_cmpint(dv_test_env_count(f, &dv_table_catalog_bases), ==, 0);
    g_assert_cmpint(dv_test_env_count(f, &dv_table_catalog_machines), ==, 0);
    g_assert_cmpint(dv_test_env_count(f, &dv_table_jobs), ==, jobs);
}

static void
test_validation(Fixture *f, gconstpointer data)
{
    g_autofree char *b = NULL;

    /* The snapshot does not exist yet. */
    b = body_with(NULL);
    refused(f, b, DV_ERROR_NOT_FOUND, "master_snapshot", "has no snapshot 's1'");
    dv_test_engine_snapshot(f->engine, "m0", "s1", WAIT_MS);

    /* Generation 2 with Secure Boot: refused with the seeds' reason. */
    dv_test_engine_set_vm(f->engine, "m0", "{\"generation\":2,\"secure_boot\":true}");
    refused(f, b, DV_ERROR_NOT_SUPPORTED, "master_vm", "Virtual Delivery Agent does not work with Secure Boot");
    dv_test_engine_set_vm(f->engine, "m0", "{\"generation\":1,\"secure_boot\":false}");

    /* A paused master (a running one is frozen while it is copied). */
    dv_test_engine_set_vm(f->engine, "m0", "{\"state\":\"paused\"}");
    refused(f, b, DV_ERROR_CONFLICT, "master_vm", "must be shut off or running");
    dv_test_engine_set_vm(f->engine, "m0", "{\"state\":\"shutoff\"}");

    /* Naming schemes. */
    {
        static const char *const bad[] = {
            "\"naming_scheme\":\"desk\"",              /* no run of # */
            "\"naming_scheme\":\"d#sk#\"",             /* two runs */
            "\"naming_scheme\":\"verylongnames-##\"",  /* 16 characters */
            "\"naming_scheme\":\"desk_##\"",           /* bad character */
            "\"naming_scheme\":\"-desk##\"",
            "\"naming_scheme\":\"\"",
        };
        for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
            g_autofree char *bb = body_with(bad[i]);
            refused(f, bb, DV_ERROR_INVALID_ARGUMENT, "naming_scheme", NULL);
        }
    }
    /* Counts. */
    {
        g_autofree char *b0 = body_with("\"count\":0");
        g_autofree char *b1 = body_with("\"count\":10001,\"naming_scheme\":\"d#####\"");
        g_autofree char *b2 = body_with("\"count\":100,\"naming_scheme\":\"desk-##\"");
        refused(f, b0, DV_ERROR_INVALID_ARGUMENT, "count", NULL);
        refused(f, b1, DV_ERROR_INVALID_ARGUMENT, "count", NULL);
        refused(f, b2, DV_ERROR_INVALID_ARGUMENT, "count", "at most 99 machines");
    }
    /* Names taken: the host has m1 and m2. */
    {
        g_autofree char *bb = body_with("\"naming_scheme\":\"m#\",\"count\":2");
        refused(f, bb, DV_ERROR_CONFLICT, "naming_scheme", "already has a machine named 'm1'");
    }
    /* Pools. */
    {
        g_autofree char *b0 = body_with("\"pool\":\"nope\"");
        refused(f, b0, DV_ERROR_NOT_FOUND, "pool", "has no storage pool 'nope'");
    }
    {
        /* Read live from the host: h2's pool has 1 GiB free, the base
         * (1 GiB) and 3 overlays of 1 MiB do not fit. */
        g_autofree char *h2 = add_host_with_pool(f, "h2", 1073741824);
        g_autofree char *b2 = body_with("\"hosts\":[\"h2\"]");
        refused(f, b2, DV_ERROR_CONFLICT, "pool", "overlays need");
    }
    /* Other fields. */
    {
        g_autofree char *b0 = body_with("\"personal_disk_mib\":1048577");
        g_autofree char *b1 = body_with("\"guest_os_profile\":\"nope\"");
        g_autofree char *b2 = body_with("\"hosts\":[\"nope\"]");
        g_autofree char *b3 = body_with("\"machine\":{\"networks\":[\"nonet\"]}");
        g_autofree char *b4 = body_with("\"type\":\"shared\"");
        g_autofree char *b5 = body_with("\"cluster\":\"c\"");
        g_autofree char *b6 = body_with("\"name\":\"a-catalog-name-longer-than-32-chars\"");
        refused(f, b0, DV_ERROR_INVALID_ARGUMENT, "personal_disk_mib", NULL);
        refused(f, b1, DV_ERROR_NOT_FOUND, "guest_os_profile", NULL);
        refused(f, b2, DV_ERROR_NOT_FOUND, "hosts[0]", NULL);
        refused(f, b3, DV_ERROR_NOT_FOUND, "machine.networks[0]", NULL);
        refused(f, b4, DV_ERROR_INVALID_ARGUMENT, "type", NULL);
        refused(f, b5, DV_ERROR_INVALID_ARGUMENT, "hosts", "exactly one of");
        refused(f, b6, DV_ERROR_INVALID_ARGUMENT, "name", NULL);
    }
}

/* A valid create writes the catalog, its image, one base and one pending
 * machine per name, and submits catalog.provision.  On test:// hosts the
 * identity upload is not supported: every machine fails with that reason
 * recorded, and the job says how many failed.  A second provision while
 * one is running is a conflict naming the running job. */
static void
test_create_and_conflict(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *b = body_with("\"personal_disk_mib\":64");
    g_autoptr(JsonObject) body = dv_test_json_object(b);
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) cat = NULL;
    g_autoptr(JsonObject) machines = NULL;
    g_autoptr(JsonObject) dup = NULL;
    JsonArray *items;

    dv_test_engine_snapshot(f->engine, "m0", "s1", WAIT_MS);
    job = dv_engine_create(f->engine, DV_KIND_CATALOG, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(job, "kind", ""), ==, "catalog.provision");
    done = dv_test_env_job_wait(f, job);
    g_test_message("job: %s", dv_json_get_string(dv_json_get_object(done, "error"), "message", ""));
    g_assert_cmpstr(dv_json_get_string(done, "state", ""), ==, "failed");
    g_assert_nonnull(strstr(dv_json_get_string(dv_json_get_object(done, "error"), "message", ""),
                            "3 of 3 machines failed"));

    cat = dv_engine_get(f->engine, DV_KIND_CATALOG, "cat1", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(cat, "state", ""), ==, "degraded");
    g_assert_cmpint(dv_json_get_int(cat, "next_index", 0), ==, 4);
    machines = dv_engine_catalog_machines(f->engine, "cat1", NULL, &error);
    g_assert_no_error(error);
    items = dv_json_get_array(machines, "items");
    g_assert_cmpuint(json_array_get_length(items), ==, 3);
    g_assert_cmpstr(dv_json_get_string(json_array_get_object_element(items, 0), "name", ""), ==, "desk-01");
    g_assert_cmpstr(dv_json_get_string(json_array_get_object_element(items, 2), "name", ""), ==, "desk-03");
    for (guint i = 0; i < 3; i++) {
        JsonObject *m = json_array_get_object_element(items, i);
        g_test_message("%s: %s", dv_json_get_string(m, "name", ""), dv_json_get_string(m, "error", ""));
        g_assert_cmpstr(dv_json_get_string(m, "state", ""), ==, "failed");
        g_assert_nonnull(strstr(dv_json_get_string(m, "error", ""), "identity"));
        /* The steps before it were made and recorded. */
        g_assert_cmpstr(dv_json_get_string(m, "step", ""), ==, "overlay");
        /* Pooled: the machine is on the base itself, no overlay volume. */
        g_assert_null(dv_json_get_string(m, "overlay_path", NULL));
        /* No domain yet: no power state, and the member says so. */
        g_assert_true(json_object_has_member(m, "power_state"));
        g_assert_null(dv_json_get_string(m, "power_state", NULL));
    }
    /* The same name again: refused, nothing more written. */
    dup = dv_engine_create(f->engine, DV_KIND_CATALOG, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_null(dup);
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "name");
    g_clear_error(&error);

    /* A running job of the catalog blocks a second one. */
    {
        g_autoptr(JsonObject) again = NULL;
        g_autofree char *jid = dv_test_catalog_fake_running_job(f, "cat1");
        again = dv_engine_catalog_provision(f->engine, "cat1", DV_ACTOR_NAMED("tester"), &error);
        g_assert_null(again);
        g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
        g_test_message("conflict: %s", error->message);
        g_assert_nonnull(strstr(error->message, jid));
        g_clear_error(&error);
        g_assert_true(dv_store_delete(dv_test_env_store(f), &dv_table_jobs, jid, &error));
    }
}

/* cat1 with 3 machines whose identity step failed (test:// has no
 * upload): base and overlays exist (persistent: a pooled machine has no
 * overlay), nothing else. */
static void
make_failed_catalog(Fixture *f)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *b = body_with("\"personal_disk_mib\":64,\"type\":\"persistent\"");
    g_autoptr(JsonObject) body = dv_test_json_object(b);
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;

    dv_test_engine_snapshot(f->engine, "m0", "s1", WAIT_MS);
    job = dv_engine_create(f->engine, DV_KIND_CATALOG, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    done = dv_test_env_job_wait(f, job);
    g_assert_cmpstr(dv_json_get_string(done, "state", ""), ==, "failed");
}

static JsonObject *
delete_catalog(Fixture *f, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job =
        dv_engine_delete(f->engine, DV_KIND_CATALOG, name, NULL, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(job, "kind", ""), ==, "catalog.delete");
    return dv_test_env_job_wait(f, job);
}

/* Deleting while a job of the catalog runs is 409 naming the job, and
 * changes nothing. */
static void
test_delete_refused_while_provisioning(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) cat = NULL;
    g_autofree char *jid = NULL;
    gint64 jobs;

    make_failed_catalog(f);
    jid = dv_test_catalog_fake_running_job(f, "cat1");
    jobs = dv_test_env_count(f, &dv_table_jobs);
    job = dv_engine_delete(f->engine, DV_KIND_CATALOG, "cat1", NULL, DV_ACTOR_NAMED("tester"),
                           &error);
    g_assert_null(job);
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_test_message("refused: %s", error->message);
    g_assert_nonnull(strstr(error->message, jid));
    g_assert_nonnull(strstr(error->message, "catalog.provision"));
    g_clear_error(&error);
    g_assert_cmpint(dv_test_env_count(f, &dv_table_jobs), ==, jobs);
    cat = dv_engine_get(f->engine, DV_KIND_CATALOG, "cat1", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(cat, "state", ""), ==, "degraded");
    g_assert_cmpint(dv_test_env_count(f, &dv_table_catalog_machines), ==, 3);
    g_assert_true(dv_store_delete(dv_test_env_store(f), &dv_table_jobs, jid, &error));
    g_assert_no_error(error);
}

/* A catalog whose machines failed: delete removes the overlays and the
 * base from the pool and every row; the VMs m0-m2 stay. */
static void
test_delete_failed_catalog(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) again = NULL;
    g_autofree char *before = NULL;
    g_autofree char *after = NULL;
    gint64 vms;

    make_failed_catalog(f);
    before = dv_test_engine_pool_names(f->engine, f->host_id, "cat1-");
    g_test_message("before: %s", before);
    g_assert_cmpstr(before, ==, "cat1-base-v1.qcow2 cat1-desk-01-disk.qcow2 cat1-desk-02-disk.qcow2 "
                                "cat1-desk-03-disk.qcow2");
    vms = dv_test_env_count(f, &dv_table_vms);
    done = delete_catalog(f, "cat1");
    dv_test_assert_job_succeeded(done);
    g_assert_true(dv_json_get_bool(dv_json_get_object(done, "result"), "deleted", FALSE));
    g_assert_cmpint(dv_json_get_int(dv_json_get_object(done, "result"), "machines_removed", 0), ==, 3);
    g_assert_cmpint(dv_json_get_int(dv_json_get_object(done, "result"), "bases_removed", 0), ==, 1);
    after = dv_test_engine_pool_names(f->engine, f->host_id, "cat1-");
    g_assert_cmpstr(after, ==, "");
    g_assert_cmpint(dv_test_env_count(f, &dv_table_catalogs), ==, 0);
    g_assert_cmpint(dv_test_env_count(f, &dv_table_catalog_images), ==, 0);
    g_assert_cmpint(dv_test_env_count(f, &dv_table_catalog_bases), ==, 0);
    g_assert_cmpint(dv_test_env_count(f, &dv_table_catalog_machines), ==, 0);
    g_assert_cmpint(dv_test_env_count(f, &dv_table_vms), ==, vms);
    again = dv_engine_delete(f->engine, DV_KIND_CATALOG, "cat1", NULL, DV_ACTOR_NAMED("tester"),
                             &error);
    g_assert_null(again);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    /* The name is free again. */
    {
        g_autofree char *b = body_with(NULL);
        g_autoptr(JsonObject) body = dv_test_json_object(b);
        g_autoptr(JsonObject) job =
            dv_engine_create(f->engine, DV_KIND_CATALOG, body, DV_ACTOR_NAMED("tester"), &error);
        g_autoptr(JsonObject) row = NULL;
        g_assert_no_error(error);
        row = dv_test_env_job_wait(f, job);
    }
}

/* A host that cannot be reached fails the delete with the reason and
 * keeps every row of what may still exist there; provisioning is refused
 * while the catalog is being deleted; once the host is back a second
 * delete finishes. */
static void
test_delete_unreachable_host(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) host = NULL;
    g_autoptr(JsonObject) bad = dv_test_json_object("{\"uri\":\"test:///nonexistent/drover-host.xml\"}");
    g_autoptr(JsonObject) back = json_object_new();
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) done2 = NULL;
    g_autoptr(JsonObject) cat = NULL;
    g_autoptr(JsonObject) prov = NULL;
    const char *msg;

    make_failed_catalog(f);
    host = dv_store_get(dv_test_env_store(f), &dv_table_hosts, f->host_id, &error);
    g_assert_no_error(error);
    json_object_set_string_member(back, "uri", dv_json_get_string(host, "uri", ""));
    g_assert_true(dv_store_update(dv_test_env_store(f), &dv_table_hosts, f->host_id, bad, &error));
    g_assert_no_error(error);

    done = delete_catalog(f, "cat1");
    g_assert_cmpstr(dv_json_get_string(done, "state", ""), ==, "failed");
    msg = dv_json_get_string(dv_json_get_object(done, "error"), "message", "");
    g_test_message("delete: %s", msg);
    g_assert_nonnull(strstr(msg, "could not remove 3 of 3 machines, 1 of 1 base images and the identity pools of 0 hosts"));
    g_assert_nonnull(strstr(msg, "nonexistent"));
    g_assert_cmpint(dv_test_env_count(f, &dv_table_catalogs), ==, 1);
    g_assert_cmpint(dv_test_env_count(f, &dv_table_catalog_bases), ==, 1);
    g_assert_cmpint(dv_test_env_count(f, &dv_table_catalog_machines), ==, 3);
    cat = dv_engine_get(f->engine, DV_KIND_CATALOG, "cat1", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(cat, "state", ""), ==, "deleting");
    prov = dv_engine_catalog_provision(f->engine, "cat1", DV_ACTOR_NAMED("tester"), &error);
    g_assert_null(prov);
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_nonnull(strstr(error->message, "being deleted"));
    g_clear_error(&error);

    /* Back (as a fresh simulated host: what was on it is gone, which a
     * delete takes as done). */
    g_assert_true(dv_store_update(dv_test_env_store(f), &dv_table_hosts, f->host_id, back, &error));
    g_assert_no_error(error);
    done2 = delete_catalog(f, "cat1");
    dv_test_assert_job_succeeded(done2);
    g_assert_cmpint(dv_test_env_count(f, &dv_table_catalogs), ==, 0);
    g_assert_cmpint(dv_test_env_count(f, &dv_table_catalog_bases), ==, 0);
    g_assert_cmpint(dv_test_env_count(f, &dv_table_catalog_machines), ==, 0);
}

static JsonObject *
reconcile(Fixture *f)
{
    g_autoptr(GError) error = NULL;
    JsonObject *r = dv_engine_catalog_reconcile(f->engine, "cat1", &error);
    g_autofree char *t = NULL;
    g_assert_no_error(error);
    t = dv_json_object_to_string(r, FALSE);
    g_test_message("reconcile: %s", t);
    return r;
}

static void
define_domain(Fixture *f, const char *name, const char *description)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvVirtHost) vh = dv_test_engine_virt_host(f->engine, f->host_id);
    g_autoptr(JsonObject) spec = json_object_new();
    g_autofree char *xml = NULL;
    g_autofree char *uuid = NULL;

    json_object_set_string_member(spec, "name", name);
    json_object_set_string_member(spec, "domain_type", "test");
    json_object_set_int_member(spec, "memory_mib", 64);
    json_object_set_string_member(spec, "description", description);
    xml = dv_virt_domain_xml_new(spec, &error);
    g_assert_no_error(error);
    uuid = dv_virt_domain_define(vh, xml, NULL, &error);
    g_assert_no_error(error);
}

static gboolean
domain_exists(Fixture *f, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvVirtHost) vh = dv_test_engine_virt_host(f->engine, f->host_id);
    g_autoptr(JsonArray) doms = dv_virt_domain_list_by_prefix(vh, name, NULL, &error);
    g_assert_no_error(error);
    for (guint i = 0; i < json_array_get_length(doms); i++)
        if (g_strcmp0(dv_json_get_string(json_array_get_object_element(doms, i), "name", ""), name) == 0)
            return TRUE;
    return FALSE;
}

/* The reconciler on a test:// host: a volume named like the catalog's
 * made by hand and a domain of the catalog unknown to it are orphans; a
 * domain whose name fits but is not the catalog's is not; an overlay
 * removed by hand is missing.  delete_orphans removes the two orphans and
 * nothing else. */
static void
test_reconcile(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) r0 = NULL;
    g_autoptr(JsonObject) r1 = NULL;
    g_autoptr(JsonObject) r2 = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) vol = NULL;
    g_autoptr(DvVirtHost) vh = NULL;
    g_autofree char *names = NULL;
    JsonArray *orphans;
    JsonArray *missing;

    make_failed_catalog(f);
    r0 = reconcile(f);
    g_assert_true(dv_json_get_bool(r0, "ok", FALSE));
    g_assert_cmpint(dv_json_get_int(r0, "hosts_checked", 0), ==, 1);

    vh = dv_test_engine_virt_host(f->engine, f->host_id);
    vol = dv_virt_volume_create(vh, "pool1", "cat1-stray.qcow2", 1 << 20, "qcow2", NULL, &error);
    g_assert_no_error(error);
    define_domain(f, "desk-07", "machine of catalog cat1");
    define_domain(f, "desk-08", "someone else's");
    g_assert_true(dv_virt_volume_delete(vh, "pool1", "cat1-desk-02-disk.qcow2", NULL, &error));
    g_assert_no_error(error);

    r1 = reconcile(f);
    g_assert_false(dv_json_get_bool(r1, "ok", TRUE));
    orphans = dv_json_get_array(r1, "orphans_on_hosts");
    g_assert_cmpuint(json_array_get_length(orphans), ==, 2);
    {
        JsonObject *o = json_array_get_object_element(orphans, 0);
        g_assert_cmpstr(dv_json_get_string(o, "host", ""), ==, "h1");
        g_assert_cmpstr(dv_json_get_string(o, "kind", ""), ==, "volume");
        g_assert_cmpstr(dv_json_get_string(o, "name", ""), ==, "cat1-stray.qcow2");
        g_assert_cmpstr(dv_json_get_string(o, "path", ""), ==, "/pool1/cat1-stray.qcow2");
        o = json_array_get_object_element(orphans, 1);
        g_assert_cmpstr(dv_json_get_string(o, "kind", ""), ==, "domain");
        g_assert_cmpstr(dv_json_get_string(o, "name", ""), ==, "desk-07");
    }
    missing = dv_json_get_array(r1, "missing_on_hosts");
    g_assert_cmpuint(json_array_get_length(missing), ==, 1);
    g_assert_cmpstr(dv_json_get_string(json_array_get_object_element(missing, 0), "machine", ""), ==, "desk-02");
    g_assert_cmpstr(dv_json_get_string(json_array_get_object_element(missing, 0), "kind", ""), ==, "volume");
    g_assert_cmpstr(dv_json_get_string(json_array_get_object_element(missing, 0), "name", ""), ==,
                    "cat1-desk-02-disk.qcow2");

    /* The report alone deletes nothing. */
    names = dv_test_engine_pool_names(f->engine, f->host_id, "cat1-stray");
    g_assert_cmpstr(names, ==, "cat1-stray.qcow2");
    g_assert_true(domain_exists(f, "desk-07"));

    /* Unknown fields are refused. */
    {
        g_autoptr(JsonObject) bad = dv_test_json_object("{\"delete_everything\":true}");
        g_autoptr(JsonObject) j = dv_engine_catalog_reconcile_submit(
            f->engine, "cat1", bad, DV_ACTOR_NAMED("tester"), &error);
        g_assert_null(j);
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_clear_error(&error);
    }
    {
        g_autoptr(JsonObject) body = dv_test_json_object("{\"delete_orphans\":true}");
        job = dv_engine_catalog_reconcile_submit(f->engine, "cat1", body, DV_ACTOR_NAMED("tester"),
                                                 &error);
        g_assert_no_error(error);
        g_assert_cmpstr(dv_json_get_string(job, "kind", ""), ==, "catalog.reconcile");
        done = dv_test_engine_run(f->engine, job, WAIT_MS);
        g_assert_cmpuint(json_array_get_length(dv_json_get_array(dv_json_get_object(done, "result"),
                                                                 "deleted")), ==, 2);
    }
    g_clear_pointer(&names, g_free);
    names = dv_test_engine_pool_names(f->engine, f->host_id, "cat1-");
    g_assert_cmpstr(names, ==, "cat1-base-v1.qcow2 cat1-desk-01-disk.qcow2 cat1-desk-03-disk.qcow2");
    g_assert_false(domain_exists(f, "desk-07"));
    g_assert_true(domain_exists(f, "desk-08"));

    r2 = reconcile(f);
    g_assert_cmpuint(json_array_get_length(dv_json_get_array(r2, "orphans_on_hosts")), ==, 0);
    g_assert_cmpuint(json_array_get_length(dv_json_get_array(r2, "missing_on_hosts")), ==, 1);
    g_assert_false(dv_json_get_bool(r2, "ok", TRUE));
}

/* Placement reads the hosts live: h3's pool has room for the base and
 * one overlay only, so of 5 machines it takes 1 and h1 the other 4, and
 * h1's share alternates as long as both have room. */
static void
test_placement(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *h3 = add_host_with_pool(f, "h3", 1073741824 + 1048576 + 4096);
    g_autofree char *b = body_with("\"hosts\":[\"h1\",\"h3\"],\"count\":5,\"machine\":{\"memory_mib\":64}");
    g_autoptr(JsonObject) body = dv_test_json_object(b);
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) machines = NULL;
    JsonArray *items;
    guint on_h3 = 0;

    dv_test_engine_snapshot(f->engine, "m0", "s1", WAIT_MS);
    job = dv_engine_create(f->engine, DV_KIND_CATALOG, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    done = dv_test_env_job_wait(f, job);
    machines = dv_engine_catalog_machines(f->engine, "cat1", NULL, &error);
    g_assert_no_error(error);
    items = dv_json_get_array(machines, "items");
    g_assert_cmpuint(json_array_get_length(items), ==, 5);
    for (guint i = 0; i < 5; i++) {
        JsonObject *m = json_array_get_object_element(items, i);
        if (g_strcmp0(dv_json_get_string(m, "host_id", ""), h3) == 0)
            on_h3++;
        else
            g_assert_cmpstr(dv_json_get_string(m, "host_id", ""), ==, f->host_id);
    }
    g_assert_cmpuint(on_h3, ==, 1);
    /* h3 is no master's host and a test host cannot stream the base: its
     * machine fails with that reason, the others get as far as test://
     * allows (no identity upload). */
    {
        JsonObject *m = NULL;
        for (guint i = 0; i < 5; i++)
            if (g_strcmp0(dv_json_get_string(json_array_get_object_element(items, i), "host_id", ""), h3) == 0)
                m = json_array_get_object_element(items, i);
        g_test_message("h3 machine: %s", dv_json_get_string(m, "error", ""));
        g_assert_nonnull(strstr(dv_json_get_string(m, "error", ""), "cannot stream volumes between hosts"));
    }
    /* Too many for both pools together. */
    {
        g_autoptr(JsonObject) b2 = dv_test_json_object("{\"name\":\"cat2\",\"master_vm\":\"m0\",\"master_snapshot\":\"s1\","
                                                       "\"hosts\":[\"h3\"],\"pool\":\"pool1\",\"naming_scheme\":\"xx-##\","
                                                       "\"count\":2,\"machine\":{\"memory_mib\":64}}");
        g_autoptr(JsonObject) j2 =
            dv_engine_create(f->engine, DV_KIND_CATALOG, b2, DV_ACTOR_NAMED("tester"), &error);
        g_assert_null(j2);
        g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
        g_assert_cmpstr(dv_error_get_field(error), ==, "pool");
        g_assert_nonnull(strstr(error->message, "room for 1 of the 2 machines"));
    }
}

/* Bases on hosts other than the master's are streamed from the master
 * host's base, several at once (dv_catalog_consolidate_all): h1's base is
 * made, and each of h2, h3 and h4 fails on its own with the test driver's
 * reason, recorded on its base and its machines. */
static void
test_bases_other_hosts(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *h2 = add_host_with_pool(f, "h2", G_GINT64_CONSTANT(53687091200));
    g_autofree char *h3 = add_host_with_pool(f, "h3", G_GINT64_CONSTANT(53687091200));
    g_autofree char *h4 = add_host_with_pool(f, "h4", G_GINT64_CONSTANT(53687091200));
    g_autofree char *b = body_with("\"hosts\":[\"h1\",\"h2\",\"h3\",\"h4\"],\"count\":8,\"machine\":{\"memory_mib\":64}");
    g_autoptr(JsonObject) body = dv_test_json_object(b);
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonArray) bases = NULL;
    g_autoptr(JsonArray) machines = NULL;
    guint failed_bases = 0, ready_bases = 0;

    dv_test_engine_snapshot(f->engine, "m0", "s1", WAIT_MS);
    job = dv_engine_create(f->engine, DV_KIND_CATALOG, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    done = dv_test_env_job_wait(f, job);
    g_assert_cmpstr(dv_json_get_string(done, "state", ""), ==, "failed");
    bases =
        dv_core_list_all(f->engine, &dv_table_catalog_bases, "catalog_id",
                         dv_json_get_string(dv_json_get_object(done, "result"), "id", ""), &error);
    g_assert_no_error(error);
    g_assert_cmpuint(json_array_get_length(bases), ==, 4);
    for (guint i = 0; i < 4; i++) {
        JsonObject *row = json_array_get_object_element(bases, i);
        const char *host = dv_json_get_string(row, "host_id", "");
        if (g_strcmp0(host, f->host_id) == 0) {
            g_assert_cmpstr(dv_json_get_string(row, "state", ""), ==, "ready");
            ready_bases++;
        } else {
            g_assert_true(g_strcmp0(host, h2) == 0 || g_strcmp0(host, h3) == 0 || g_strcmp0(host, h4) == 0);
            g_assert_cmpstr(dv_json_get_string(row, "state", ""), ==, "failed");
            g_assert_nonnull(strstr(dv_json_get_string(row, "error", ""), "cannot stream volumes between hosts"));
            failed_bases++;
        }
    }
    g_assert_cmpuint(ready_bases, ==, 1);
    g_assert_cmpuint(failed_bases, ==, 3);
    /* The three were streamed at once. */
    g_assert_cmpint(dv_json_get_int(dv_json_get_object(dv_json_get_object(done, "result"), "timing"), "bases_at_once", 0),
                    ==, 3);
    machines =
        dv_core_list_all(f->engine, &dv_table_catalog_machines, "catalog_id",
                         dv_json_get_string(dv_json_get_object(done, "result"), "id", ""), &error);
    g_assert_no_error(error);
    for (guint i = 0; i < json_array_get_length(machines); i++) {
        JsonObject *m = json_array_get_object_element(machines, i);
        if (g_strcmp0(dv_json_get_string(m, "host_id", ""), f->host_id) != 0)
            g_assert_nonnull(strstr(dv_json_get_string(m, "error", ""), "cannot stream volumes between hosts"));
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn)                                                                              \
    g_test_add(path, Fixture, NULL, dv_test_catalog_env_setup, fn, dv_test_catalog_env_teardown)
    ADD("/drover/catalog/validation", test_validation);
    ADD("/drover/catalog/create-and-conflict", test_create_and_conflict);
    ADD("/drover/catalog/delete-refused-while-provisioning", test_delete_refused_while_provisioning);
    ADD("/drover/catalog/delete-failed-catalog", test_delete_failed_catalog);
    ADD("/drover/catalog/delete-unreachable-host", test_delete_unreachable_host);
    ADD("/drover/catalog/reconcile", test_reconcile);
    ADD("/drover/catalog/placement", test_placement);
    ADD("/drover/catalog/bases-other-hosts", test_bases_other_hosts);
#undef ADD
    return g_test_run();
}
