#define G_LOG_DOMAIN "DvTestCatalogScope"

/* Catalog machines under the access model (docs/ACCESS.md, "Catalog
 * machines"): a machine a user adds is its own and charged to its
 * binding's quota in the transaction that accepts the job, given back
 * when the machine or the catalog goes; parallel adds cannot overshoot;
 * a self-service user lists, powers and removes only its own machines; a
 * machine's identity is checked against its catalog and its host's group;
 * a catalog is visible to whoever may read in the host group it targets.
 * On SQLite and PostgreSQL, against libvirt's test:/// driver. */

#include "dv-auth-users.h"
#include "dv-catalogs.h"
#include "dv-authz.h"
#include "dv-core.h"
#include "dv-engine.h"
#include "dv-test-catalog.h"
#include "dv-test-pg.h"
#include "dv-test-scope.h"
#include "dv-test-util.h"

#include <string.h>

#define WAIT_MS DV_TEST_CATALOG_WAIT_MS

typedef struct {
    char *tmpdir;
    char *pg_dbname;
    DvEngine *engine;
    DvStore *store;
    char *host_id;
} Fixture;

static void
exec_sql(Fixture *f, const char *sql, const DvSqlParam *p, guint n)
{
    dv_test_scope_exec(f->store, sql, p, n);
}

static void
add_group(Fixture *f, const char *id, const char *parent)
{
    dv_test_scope_add_group(f->store, id, parent);
}

/* Groups hg-root > hg-a, hg-b; host h1 (VMs m0..m2, m0 stopped with
 * snapshot s1) in hg-a; catalog cat1 targeting hg-a with one machine
 * desk-01 made by "tester" (no actor context: nobody's, no quota).
 * Provisioning stops at the identity step on test://, so machines end
 * "failed", which is all these tests need. */
static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) done = NULL;

    f->engine = dv_test_engine_on_backend("dv-test-catalog-scope", GPOINTER_TO_INT(data), 4,
                                          &f->tmpdir, &f->pg_dbname);
    if (f->engine == NULL)
        return;
    f->store = dv_core(f->engine)->store;
    f->host_id = dv_test_catalog_add_host(f->engine, f->tmpdir, WAIT_MS);
    add_group(f, "hg-root", NULL);
    add_group(f, "hg-a", "hg-root");
    add_group(f, "hg-b", "hg-root");
    exec_sql(f, "UPDATE hosts SET host_group_id = 'hg-a' WHERE id = ?",
             DV_SQL_ARGS(DV_SQL_TEXT_P(f->host_id)));
    dv_test_engine_snapshot(f->engine, "m0", "s1", WAIT_MS);
    body = dv_test_json_object(
        "{\"name\":\"cat1\",\"master_vm\":\"m0\",\"master_snapshot\":\"s1\",\"host_group\":"
        "\"hg-a\",\"pool\":\"pool1\",\"naming_scheme\":\"desk-##\",\"count\":1,"
        "\"personal_disk_mib\":1024,\"type\":\"pooled\",\"machine\":{\"vcpus\":2,"
        "\"memory_mib\":128,\"networks\":[\"net1\"]}}");
    job = dv_engine_create(f->engine, DV_KIND_CATALOG, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    done = dv_test_engine_job_row(f->engine, job, WAIT_MS);
    g_assert_cmpstr(dv_json_get_string(done, "state", ""), ==, "failed");
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    if (f->engine != NULL)
        dv_job_manager_wait_idle(dv_core(f->engine)->jobs, WAIT_MS);
    dv_test_engine_on_backend_free(g_steal_pointer(&f->engine), g_steal_pointer(&f->tmpdir),
                                   g_steal_pointer(&f->pg_dbname));
    g_clear_pointer(&f->host_id, g_free);
}

static char *
add_user(Fixture *f, const char *name)
{
    return dv_test_scope_add_user(dv_core(f->engine)->auth, name);
}

/* A binding made by the engine itself: @scope_kind global (@scope_id
 * NULL), host_group or catalog; @quota_vms < 0: none. */
static char *
bind(Fixture *f, const char *user_id, const char *role, const char *scope_kind,
     const char *scope_id, gint64 quota_vms)
{
    return dv_test_scope_bind(f->store, "user", user_id, role, scope_kind, scope_id, "allow",
                              quota_vms);
}

static DvActor *
actor_for(Fixture *f, const char *user_id, const char *name)
{
    return dv_test_scope_actor(f->store, user_id, name);
}

static gint64
usage(Fixture *f, const char *binding, const char *what)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) used = dv_authz_quota_usage(f->store, binding, NULL, &error);
    g_assert_no_error(error);
    return dv_json_get_int(used, what, -1);
}

static gint64
count(Fixture *f, const DvTableDef *def, const char *column, const char *value)
{
    g_autoptr(GError) error = NULL;
    DvFilter flt = { column, DV_FILTER_EQ, value };
    gint64 n = dv_store_count(f->store, def, &flt, column != NULL ? 1 : 0, &error);
    g_assert_no_error(error);
    return n;
}

static JsonObject *
add_machines(Fixture *f, const DvActor *actor, gint64 n, GError **error)
{
    g_autofree char *json = g_strdup_printf("{\"count\":%" G_GINT64_FORMAT "}", n);
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    return dv_engine_catalog_add_machines(f->engine, "cat1", body, actor, error);
}

static void
run(Fixture *f, JsonObject *job)
{
    g_autoptr(JsonObject) row = dv_test_engine_job_row(f->engine, job, WAIT_MS);
    g_assert_nonnull(row);
}

static gint
by_name(gconstpointer a, gconstpointer b)
{
    return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

/* The names @actor lists in cat1, sorted, joined by ' ' (owned); NULL
 * with @error set when refused. */
static char *
machine_names(Fixture *f, const DvActor *actor, GError **error)
{
    g_autoptr(GHashTable) q = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(JsonObject) page = NULL;
    g_autoptr(GPtrArray) names = g_ptr_array_new();
    JsonArray *items;

    g_hash_table_insert(q, "limit", "100");
    page = dv_engine_catalog_machines_for(f->engine, actor, "cat1", q, error);
    if (page == NULL)
        return NULL;
    items = dv_json_get_array(page, "items");
    for (guint i = 0; i < json_array_get_length(items); i++)
        g_ptr_array_add(names, (gpointer)dv_json_get_string(json_array_get_object_element(items, i),
                                                            "name", ""));
    g_ptr_array_sort(names, by_name);
    g_ptr_array_add(names, NULL);
    return g_strjoinv(" ", (char **)names->pdata);
}

static JsonObject *
machine(Fixture *f, const char *name)
{
    g_autoptr(GError) error = NULL;
    JsonObject *m = dv_store_find(f->store, &dv_table_catalog_machines, "name", name, &error);
    g_assert_no_error(error);
    g_assert_nonnull(m);
    return m;
}

/* Owner recorded on the machine and its VM, quota charged with the job and
 * kept while the row lives (a failed provision leaves a retryable row),
 * refused beyond the quota with nothing written, given back by remove
 * and by deleting the catalog. */
static void
test_owner_quota_release(Fixture *f, gconstpointer data)
{
    g_autofree char *sam_id = NULL;
    g_autofree char *binding = NULL;
    g_autoptr(DvActor) sam = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(GError) error = NULL;
    gint64 jobs_before, machines_before;

    if (f->engine == NULL)
        return;
    sam_id = add_user(f, "sam");
    binding = bind(f, sam_id, "self-service-user", "host_group", "hg-a", 3);
    sam = actor_for(f, sam_id, "sam");

    job = add_machines(f, sam, 2, &error);
    g_assert_no_error(error);
    run(f, job);
    g_clear_pointer(&job, json_object_unref);
    {
        g_autoptr(JsonObject) m2 = machine(f, "desk-02");
        g_autoptr(JsonObject) m1 = machine(f, "desk-01");
        JsonObject *q = dv_json_get_object(m2, "quota");
        g_assert_cmpstr(dv_json_get_string(m2, "owner_id", NULL), ==, sam_id);
        g_assert_cmpstr(dv_json_get_string(q, "binding_id", NULL), ==, binding);
        g_assert_cmpint(dv_json_get_int(q, "vcpus", 0), ==, 2);
        g_assert_cmpint(dv_json_get_int(q, "memory_mib", 0), ==, 128);
        /* The base's size (m0's 1 GiB disk or more) plus 1 GiB personal. */
        g_test_message("one machine's quota: %" G_GINT64_FORMAT " GiB",
                       dv_json_get_int(q, "storage_gib", 0));
        g_assert_cmpint(dv_json_get_int(q, "storage_gib", 0), >=, 2);
        g_assert_null(dv_json_get_string(m1, "owner_id", NULL));
        g_assert_null(dv_json_get_object(m1, "quota"));
    }
    g_assert_cmpint(count(f, &dv_table_catalog_machines, "owner_id", sam_id), ==, 2);
    g_assert_cmpint(usage(f, binding, "vms"), ==, 2);
    g_assert_cmpint(usage(f, binding, "vcpus"), ==, 4);
    g_assert_cmpint(usage(f, binding, "memory_mib"), ==, 256);

    /* Beyond the quota: refused naming it, nothing written. */
    jobs_before = count(f, &dv_table_jobs, NULL, NULL);
    machines_before = count(f, &dv_table_catalog_machines, NULL, NULL);
    job = add_machines(f, sam, 2, &error);
    g_assert_null(job);
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "quota.vms");
    g_clear_error(&error);
    g_assert_cmpint(count(f, &dv_table_jobs, NULL, NULL), ==, jobs_before);
    g_assert_cmpint(count(f, &dv_table_catalog_machines, NULL, NULL), ==, machines_before);
    g_assert_cmpint(usage(f, binding, "vms"), ==, 2);

    /* Removing one gives its share back, in the same transaction as the row. */
    {
        g_autoptr(JsonObject) body =
            dv_test_json_object("{\"machines\":[\"desk-02\"],\"force\":true}");
        job = dv_engine_catalog_remove_machines(f->engine, "cat1", body, sam, &error);
        g_assert_no_error(error);
        run(f, job);
        g_clear_pointer(&job, json_object_unref);
    }
    g_assert_cmpint(count(f, &dv_table_catalog_machines, "owner_id", sam_id), ==, 1);
    g_assert_cmpint(usage(f, binding, "vms"), ==, 1);
    g_assert_cmpint(usage(f, binding, "vcpus"), ==, 2);
    g_assert_cmpint(usage(f, binding, "memory_mib"), ==, 128);

    /* Deleting the catalog gives back what its machines still hold. */
    {
        g_autoptr(JsonObject) cat = NULL;
        cat = dv_store_find(f->store, &dv_table_catalogs, "name", "cat1", &error);
        g_assert_no_error(error);
        job = dv_engine_delete(f->engine, DV_KIND_CATALOG, "cat1", NULL, DV_ACTOR_NAMED("tester"),
                               &error);
        g_assert_no_error(error);
        run(f, job);
        g_clear_pointer(&job, json_object_unref);
        g_assert_cmpint(count(f, &dv_table_catalogs, NULL, NULL), ==, 0);
    }
    g_assert_cmpint(usage(f, binding, "vms"), ==, 0);
    g_assert_cmpint(usage(f, binding, "vcpus"), ==, 0);
    g_assert_cmpint(usage(f, binding, "memory_mib"), ==, 0);
    g_assert_cmpint(usage(f, binding, "storage_gib"), ==, 0);
}

typedef struct {
    Fixture *f;
    const DvActor *actor;
    JsonObject *job;
    GError *error;
} AddJob;

/* Adds one machine, again while the catalog is busy with another job,
 * until accepted or refused for another reason.  Two adds that both find
 * the catalog idle pick the same next name: the second one's transaction
 * is refused on it (409 "count" or "name", nothing
 * written), and it tries again too. */
static gpointer
add_thread(gpointer data)
{
    AddJob *a = data;
    gint64 until = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
    for (;;) {
        const char *field;
        a->job = add_machines(a->f, a->actor, 1, &a->error);
        if (a->job != NULL || !g_error_matches(a->error, DV_ERROR, DV_ERROR_CONFLICT) ||
            g_get_monotonic_time() > until)
            return NULL;
        field = dv_error_get_field(a->error);
        if (field != NULL && g_str_has_prefix(field, "quota."))
            return NULL;
        g_clear_error(&a->error);
        g_usleep(20 * 1000);
    }
}

/* 8 parallel adds of one machine each against a quota of 3: exactly 3
 * accepted, the others refused naming quota.vms. */
static void
test_quota_parallel(Fixture *f, gconstpointer data)
{
    enum {
        N = 8
    };
    g_autofree char *sam_id = NULL;
    g_autofree char *binding = NULL;
    g_autoptr(DvActor) sam = NULL;
    AddJob adds[N];
    GThread *threads[N];
    guint accepted = 0;

    if (f->engine == NULL)
        return;
    sam_id = add_user(f, "sam");
    binding = bind(f, sam_id, "self-service-user", "global", NULL, 3);
    sam = actor_for(f, sam_id, "sam");
    for (guint i = 0; i < N; i++) {
        adds[i] = (AddJob){ f, sam, NULL, NULL };
        threads[i] = g_thread_new("add", add_thread, &adds[i]);
    }
    for (guint i = 0; i < N; i++)
        g_thread_join(threads[i]);
    for (guint i = 0; i < N; i++) {
        if (adds[i].job != NULL) {
            g_assert_no_error(adds[i].error);
            accepted++;
            run(f, adds[i].job);
        } else {
            g_test_message("refused: %s", adds[i].error->message);
            g_assert_error(adds[i].error, DV_ERROR, DV_ERROR_CONFLICT);
            g_assert_cmpstr(dv_error_get_field(adds[i].error), ==, "quota.vms");
        }
        g_clear_pointer(&adds[i].job, json_object_unref);
        g_clear_error(&adds[i].error);
    }
    g_assert_cmpuint(accepted, ==, 3);
    g_assert_cmpint(usage(f, binding, "vms"), ==, 3);
    g_assert_cmpint(count(f, &dv_table_catalog_machines, "owner_id", sam_id), ==, 3);
    /* desk-01 and the three added. */
    g_assert_cmpint(count(f, &dv_table_catalog_machines, NULL, NULL), ==, 4);
}

/* Lists, power and identity by scope. */
static void
test_machines_scope(Fixture *f, gconstpointer data)
{
    g_autofree char *sam_id = NULL;
    g_autofree char *olga_id = NULL;
    g_autofree char *una_id = NULL;
    g_autofree char *ada_id = NULL;
    g_autofree char *dora_id = NULL;
    g_autoptr(DvActor) sam = NULL;
    g_autoptr(DvActor) olga = NULL;
    g_autoptr(DvActor) una = NULL;
    g_autoptr(DvActor) ada = NULL;
    g_autoptr(DvActor) dora = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) cat = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *names = NULL;

    if (f->engine == NULL)
        return;
    sam_id = add_user(f, "sam");
    olga_id = add_user(f, "olga");
    una_id = add_user(f, "una");
    ada_id = add_user(f, "ada");
    dora_id = add_user(f, "dora");
    cat = dv_store_find(f->store, &dv_table_catalogs, "name", "cat1", &error);
    g_assert_no_error(error);
    g_free(bind(f, sam_id, "self-service-user", "host_group", "hg-a", -1));
    g_free(bind(f, olga_id, "self-service-user", "host_group", "hg-root", -1));
    g_free(bind(f, una_id, "self-service-user", "catalog", dv_json_get_string(cat, "id", ""), -1));
    g_free(bind(f, ada_id, "administrator", "global", NULL, -1));
    g_free(bind(f, dora_id, "delegated-administrator", "host_group", "hg-b", -1));
    sam = actor_for(f, sam_id, "sam");
    olga = actor_for(f, olga_id, "olga");
    una = actor_for(f, una_id, "una");
    ada = actor_for(f, ada_id, "ada");
    dora = actor_for(f, dora_id, "dora");

    {
        const DvActor *who[] = { sam, sam, olga, una };
        for (guint i = 0; i < G_N_ELEMENTS(who); i++) {
            job = add_machines(f, who[i], 1, &error);
            g_assert_no_error(error);
            run(f, job);
            g_clear_pointer(&job, json_object_unref);
        }
    }
    /* desk-02, desk-03 sam's; desk-04 olga's; desk-05 una's. */
    {
        g_autoptr(JsonObject) m4 = machine(f, "desk-04");
        g_autoptr(JsonObject) m5 = machine(f, "desk-05");
        g_assert_cmpstr(dv_json_get_string(m4, "owner_id", ""), ==, olga_id);
        g_assert_cmpstr(dv_json_get_string(m5, "owner_id", ""), ==, una_id);
    }

    /* The catalog is visible by the host group it targets... */
    {
        g_autoptr(JsonObject) page =
            dv_engine_list_for(f->engine, sam, DV_KIND_CATALOG, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(dv_json_get_array(page, "items")), ==, 1);
        g_clear_pointer(&page, json_object_unref);
        page = dv_engine_list_for(f->engine, dora, DV_KIND_CATALOG, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(dv_json_get_array(page, "items")), ==, 0);
    }
    /* ...and each lists its own machines only; the administrator all. */
    names = machine_names(f, sam, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(names, ==, "desk-02 desk-03");
    g_clear_pointer(&names, g_free);
    names = machine_names(f, olga, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(names, ==, "desk-04");
    g_clear_pointer(&names, g_free);
    names = machine_names(f, una, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(names, ==, "desk-05");
    g_clear_pointer(&names, g_free);
    names = machine_names(f, ada, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(names, ==, "desk-01 desk-02 desk-03 desk-04 desk-05");
    g_clear_pointer(&names, g_free);
    /* Out of scope: the catalog is not found at all. */
    names = machine_names(f, dora, &error);
    g_assert_null(names);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);

    /* Power: another's machine named is not found; all = one's own. */
    {
        g_autoptr(JsonObject) body =
            dv_test_json_object("{\"action\":\"start\",\"machines\":[\"desk-04\"]}");
        g_autoptr(JsonObject) all = dv_test_json_object("{\"action\":\"shutdown\"}");
        g_autoptr(JsonObject) row = NULL;
        JsonArray *ids;
        job = dv_engine_catalog_power(f->engine, "cat1", body, sam, &error);
        g_assert_null(job);
        g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
        g_assert_cmpstr(dv_error_get_field(error), ==, "machines[0]");
        g_clear_error(&error);
        job = dv_engine_catalog_power(f->engine, "cat1", all, sam, &error);
        g_assert_no_error(error);
        row = dv_test_engine_job_row(f->engine, job, WAIT_MS);
        g_clear_pointer(&job, json_object_unref);
        ids = dv_json_get_array(dv_json_get_object(row, "params"), "machine_ids");
        g_assert_cmpuint(json_array_get_length(ids), ==, 2);
        for (guint i = 0; i < 2; i++) {
            g_autoptr(JsonObject) m = dv_store_get(f->store, &dv_table_catalog_machines,
                                                   json_array_get_string_element(ids, i), &error);
            g_assert_no_error(error);
            g_assert_cmpstr(dv_json_get_string(m, "owner_id", ""), ==, sam_id);
        }
    }

    /* Identity: out of scope is absent; visible without catalog.change is
     * 403; the administrator gets past the check (to the machine's own
     * state: no identity disk was made on test://). */
    job = dv_engine_catalog_machine_identity_for(f->engine, dora, "desk-02", &error);
    g_assert_null(job);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "no catalog machine 'desk-02'");
    g_clear_error(&error);
    job = dv_engine_catalog_machine_identity_for(f->engine, sam, "desk-02", &error);
    g_assert_null(job);
    g_assert_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED);
    g_clear_error(&error);
    job = dv_engine_catalog_machine_identity_for(f->engine, ada, "desk-02", &error);
    g_assert_null(job);
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_nonnull(strstr(error->message, "no identity disk yet"));
    g_clear_error(&error);

    /* A read-only administrator of the group sees the machines, so naming
     * one to power is 403 on that machine, not 404. */
    {
        g_autofree char *rita_id = add_user(f, "rita");
        g_autoptr(DvActor) rita = NULL;
        g_autoptr(JsonObject) body =
            dv_test_json_object("{\"action\":\"start\",\"machines\":[\"desk-02\"]}");
        g_free(bind(f, rita_id, "read-only-administrator", "host_group", "hg-a", -1));
        rita = actor_for(f, rita_id, "rita");
        names = machine_names(f, rita, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(names, ==, "desk-01 desk-02 desk-03 desk-04 desk-05");
        g_clear_pointer(&names, g_free);
        job = dv_engine_catalog_power(f->engine, "cat1", body, rita, &error);
        g_assert_null(job);
        g_assert_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED);
        g_assert_cmpstr(dv_error_get_field(error), ==, "machines[0]");
        g_clear_error(&error);
    }
    /* Removing another's machine by name: as unknown. */
    {
        g_autoptr(JsonObject) body =
            dv_test_json_object("{\"machines\":[\"desk-05\"],\"force\":true}");
        job = dv_engine_catalog_remove_machines(f->engine, "cat1", body, sam, &error);
        g_assert_null(job);
        g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
        g_assert_cmpstr(dv_error_get_field(error), ==, "machines[0]");
        g_clear_error(&error);
    }
    /* Remove by count takes from one's own machines only. */
    {
        g_autoptr(JsonObject) body = dv_test_json_object("{\"count\":3,\"force\":true}");
        job = dv_engine_catalog_remove_machines(f->engine, "cat1", body, sam, &error);
        g_assert_null(job);
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_assert_cmpstr(dv_error_get_field(error), ==, "count");
        g_clear_error(&error);
    }
}

/* A catalog row written directly, targeting @kind @target (no machines). */
static void
add_catalog_row(Fixture *f, const char *name, const char *kind, const char *target)
{
    g_autofree char *id = g_uuid_string_random();
    exec_sql(f,
             "INSERT INTO catalogs (id, name, catalog_type, state, master_vm_name, "
             "master_snapshot, target_kind, target_id, host_ids, pool_name, machine_spec, "
             "naming_scheme, next_index, personal_disk_mib, created_at, updated_at) VALUES (?, ?, "
             "'pooled', 'ready', 'm0', 's1', ?, ?, '[]', 'pool1', '{}', 'x-##', 1, 0, 1, 1)",
             DV_SQL_ARGS(DV_SQL_TEXT_P(id), DV_SQL_TEXT_P(name), DV_SQL_TEXT_P(kind),
                         DV_SQL_TEXT_P(target)));
}

/* The catalog names @actor lists, sorted, joined by ' ' (owned). */
static char *
catalog_names(Fixture *f, const DvActor *actor)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) page = dv_engine_list_for(f->engine, actor, DV_KIND_CATALOG, NULL, &error);
    g_autoptr(GPtrArray) names = g_ptr_array_new();
    JsonArray *items;
    g_assert_no_error(error);
    items = dv_json_get_array(page, "items");
    for (guint i = 0; i < json_array_get_length(items); i++)
        g_ptr_array_add(names, (gpointer)dv_json_get_string(
                                   json_array_get_object_element(items, i), "name", ""));
    g_ptr_array_sort(names, by_name);
    g_ptr_array_add(names, NULL);
    return g_strjoinv(" ", (char **)names->pdata);
}

/* A catalog is under the group it targets, or its cluster's group; one of
 * a list of hosts under none: seen through catalog or global bindings. */
static void
test_catalog_visibility(Fixture *f, gconstpointer data)
{
    g_autofree char *sam_id = NULL;
    g_autofree char *dora_id = NULL;
    g_autofree char *gil_id = NULL;
    g_autofree char *names = NULL;
    g_autoptr(DvActor) sam = NULL;
    g_autoptr(DvActor) dora = NULL;
    g_autoptr(DvActor) gil = NULL;
    g_autoptr(JsonObject) got = NULL;
    g_autoptr(GError) error = NULL;

    if (f->engine == NULL)
        return;
    exec_sql(f,
             "INSERT INTO clusters (id, name, host_group_id, created_at) VALUES ('cl-b', 'cl-b', "
             "'hg-b', 1)",
             DV_SQL_NO_ARGS);
    add_catalog_row(f, "cat2", "cluster", "cl-b");
    add_catalog_row(f, "cat3", "hosts", NULL);
    sam_id = add_user(f, "sam");
    dora_id = add_user(f, "dora");
    gil_id = add_user(f, "gil");
    g_free(bind(f, sam_id, "self-service-user", "host_group", "hg-a", -1));
    g_free(bind(f, dora_id, "delegated-administrator", "host_group", "hg-b", -1));
    g_free(bind(f, gil_id, "read-only-administrator", "host_group", "hg-root", -1));
    sam = actor_for(f, sam_id, "sam");
    dora = actor_for(f, dora_id, "dora");
    gil = actor_for(f, gil_id, "gil");

    names = catalog_names(f, sam);
    g_assert_cmpstr(names, ==, "cat1");
    g_clear_pointer(&names, g_free);
    names = catalog_names(f, dora);
    g_assert_cmpstr(names, ==, "cat2");
    g_clear_pointer(&names, g_free);
    names = catalog_names(f, gil);
    g_assert_cmpstr(names, ==, "cat1 cat2");
    g_clear_pointer(&names, g_free);
    got = dv_engine_get_for(f->engine, dora, DV_KIND_CATALOG, "cat2", &error);
    g_assert_no_error(error);
    g_assert_nonnull(got);
    g_clear_pointer(&got, json_object_unref);
    got = dv_engine_get_for(f->engine, dora, DV_KIND_CATALOG, "cat1", &error);
    g_assert_null(got);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    got = dv_engine_get_for(f->engine, gil, DV_KIND_CATALOG, "cat3", &error);
    g_assert_null(got);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
}

/* The machine ids a retry by @actor takes (sorted names, joined by ' ';
 * "*" when it takes every machine not ready) and the number that failed
 * in it. */
static char *
retry(Fixture *f, const DvActor *actor, gint64 *ret_failed)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = dv_engine_catalog_provision(f->engine, "cat1", actor, &error);
    g_autoptr(JsonObject) row = NULL;
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    JsonArray *ids;

    g_assert_no_error(error);
    g_assert_nonnull(job);
    row = dv_test_engine_job_row(f->engine, job, WAIT_MS);
    g_assert_nonnull(row);
    *ret_failed = dv_json_get_int(dv_json_get_object(row, "result"), "machines_failed", -1);
    ids = dv_json_get_array(dv_json_get_object(row, "params"), "machine_ids");
    if (ids == NULL)
        return g_strdup("*");
    for (guint i = 0; i < json_array_get_length(ids); i++) {
        g_autoptr(JsonObject) m = dv_store_get(f->store, &dv_table_catalog_machines,
                                               json_array_get_string_element(ids, i), &error);
        g_assert_no_error(error);
        g_ptr_array_add(names, g_strdup(dv_json_get_string(m, "name", "")));
    }
    g_ptr_array_sort(names, by_name);
    g_ptr_array_add(names, NULL);
    return g_strjoinv(" ", (char **)names->pdata);
}

/* POST /catalogs/{ref}/provision (a retry): a self-service user retries
 * its own machines that are not ready, nobody else's; an administrator of
 * the catalog's group or a global one retries all of them; the catalog
 * stays degraded while another's machine is not ready. */
static void
test_retry_own(Fixture *f, gconstpointer data)
{
    g_autofree char *sam_id = NULL;
    g_autofree char *olga_id = NULL;
    g_autofree char *una_id = NULL;
    g_autofree char *ada_id = NULL;
    g_autofree char *tina_id = NULL;
    g_autoptr(DvActor) sam = NULL;
    g_autoptr(DvActor) olga = NULL;
    g_autoptr(DvActor) una = NULL;
    g_autoptr(DvActor) ada = NULL;
    g_autoptr(DvActor) tina = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) cat = NULL;
    gint64 failed = -1;

    if (f->engine == NULL)
        return;
    sam_id = add_user(f, "sam");
    olga_id = add_user(f, "olga");
    una_id = add_user(f, "una");
    ada_id = add_user(f, "ada");
    tina_id = add_user(f, "tina");
    g_free(bind(f, sam_id, "self-service-user", "host_group", "hg-a", -1));
    g_free(bind(f, olga_id, "self-service-user", "host_group", "hg-root", -1));
    g_free(bind(f, una_id, "self-service-user", "host_group", "hg-a", -1));
    g_free(bind(f, ada_id, "administrator", "global", NULL, -1));
    g_free(bind(f, tina_id, "delegated-administrator", "host_group", "hg-a", -1));
    sam = actor_for(f, sam_id, "sam");
    olga = actor_for(f, olga_id, "olga");
    una = actor_for(f, una_id, "una");
    ada = actor_for(f, ada_id, "ada");
    tina = actor_for(f, tina_id, "tina");

    /* desk-01 (nobody's, from the fixture), desk-02 and desk-03 sam's,
     * desk-04 olga's: all failed at the identity step. */
    {
        const DvActor *who[] = { sam, sam, olga };
        for (guint i = 0; i < G_N_ELEMENTS(who); i++) {
            g_autoptr(JsonObject) job = add_machines(f, who[i], 1, &error);
            g_assert_no_error(error);
            run(f, job);
        }
    }
    {
        g_autoptr(JsonObject) m = machine(f, "desk-04");
        g_assert_cmpstr(dv_json_get_string(m, "owner_id", NULL), ==, olga_id);
        g_assert_cmpstr(dv_json_get_string(m, "state", NULL), !=, "ready");
    }

    /* Each self-service user: its own machines only. */
    {
        g_autofree char *took = retry(f, sam, &failed);
        g_assert_cmpstr(took, ==, "desk-02 desk-03");
        g_assert_cmpint(failed, ==, 2);
    }
    {
        g_autofree char *took = retry(f, olga, &failed);
        g_assert_cmpstr(took, ==, "desk-04");
        g_assert_cmpint(failed, ==, 1);
    }
    /* None of its own: a job that takes nothing, and the catalog stays
     * degraded (others' machines are not ready), however quick the job. */
    {
        g_autofree char *took = retry(f, una, &failed);
        g_assert_cmpstr(took, ==, "");
        g_assert_cmpint(failed, ==, 0);
        cat = dv_store_find(f->store, &dv_table_catalogs, "name", "cat1", &error);
        g_assert_no_error(error);
        g_assert_cmpstr(dv_json_get_string(cat, "state", ""), ==, "degraded");
    }
    /* The group's delegated administrator and the global one: all four. */
    {
        g_autofree char *took = retry(f, tina, &failed);
        g_assert_cmpstr(took, ==, "*");
        g_assert_cmpint(failed, ==, 4);
    }
    {
        g_autofree char *took = retry(f, ada, &failed);
        g_assert_cmpstr(took, ==, "*");
        g_assert_cmpint(failed, ==, 4);
    }
}

/* The job's end is the catalog's last word: state and job_id are written
 * in the transaction that accepts the job, so a job that ends before the
 * request returns (DV_DEBUG_CATALOG_PAUSE=submitted waits for its end
 * there) leaves "degraded", never "provisioning".  Before the fix the
 * submit wrote "provisioning" after the job, and it stayed. */
static void
test_submit_race(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    if (f->engine == NULL)
        return;
    g_setenv("DV_DEBUG_JOBS", "1", TRUE);
    g_setenv("DV_DEBUG_CATALOG_PAUSE", "submitted", TRUE);
    for (guint round = 0; round < 2; round++) {
        g_autoptr(JsonObject) job =
            round == 0 ? dv_engine_catalog_provision(f->engine, "cat1", DV_ACTOR_NAMED("tester"),
                                                     &error)
                       : add_machines(f, DV_ACTOR_NAMED("tester"), 1, &error);
        g_autoptr(JsonObject) row = NULL;
        g_autoptr(JsonObject) cat = NULL;
        g_assert_no_error(error);
        row = dv_store_get(f->store, &dv_table_jobs, dv_json_get_string(job, "id", ""), &error);
        g_assert_no_error(error);
        /* The job had ended when the request returned. */
        g_assert_cmpstr(dv_json_get_string(row, "state", ""), ==, "failed");
        cat = dv_store_find(f->store, &dv_table_catalogs, "name", "cat1", &error);
        g_assert_no_error(error);
        g_assert_cmpstr(dv_json_get_string(cat, "state", ""), ==, "degraded");
        g_assert_cmpstr(dv_json_get_string(cat, "job_id", ""), ==,
                        dv_json_get_string(job, "id", ""));
    }
    g_unsetenv("DV_DEBUG_CATALOG_PAUSE");
    g_unsetenv("DV_DEBUG_JOBS");
}

/* POST /catalogs/{ref}/machines provisions the machines it adds, not a
 * machine that failed before: desk-01 keeps its error (a retry is
 * POST .../provision), the catalog stays degraded. */
static void
test_add_new_only(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) row = NULL;
    g_autoptr(JsonObject) m1 = NULL;
    g_autoptr(JsonObject) m2 = NULL;
    g_autoptr(JsonObject) cat = NULL;
    JsonArray *ids;

    if (f->engine == NULL)
        return;
    exec_sql(f, "UPDATE catalog_machines SET error = 'marker: untouched' WHERE name = 'desk-01'",
             NULL, 0);
    job = add_machines(f, DV_ACTOR_NAMED("tester"), 1, &error);
    g_assert_no_error(error);
    row = dv_test_engine_job_row(f->engine, job, WAIT_MS);
    ids = dv_json_get_array(dv_json_get_object(row, "params"), "machine_ids");
    g_assert_nonnull(ids);
    g_assert_cmpuint(json_array_get_length(ids), ==, 1);
    m2 = machine(f, "desk-02");
    g_assert_cmpstr(json_array_get_string_element(ids, 0), ==, dv_json_get_string(m2, "id", ""));
    g_assert_cmpint(dv_json_get_int(dv_json_get_object(row, "result"), "machines_failed", -1), ==, 1);
    g_assert_cmpstr(dv_json_get_string(m2, "state", ""), ==, "failed");
    m1 = machine(f, "desk-01");
    g_assert_cmpstr(dv_json_get_string(m1, "error", ""), ==, "marker: untouched");
    cat = dv_store_find(f->store, &dv_table_catalogs, "name", "cat1", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(cat, "state", ""), ==, "degraded");
}

/* A catalog machine's error may quote a path: the group's delegated
 * administrator reads the machine's state and step and a withheld text,
 * the administrator the text itself. */
static void
test_machine_error_redaction(Fixture *f, gconstpointer data)
{
    g_autofree char *tina_id = NULL;
    g_autofree char *ada_id = NULL;
    g_autoptr(DvActor) tina = NULL;
    g_autoptr(DvActor) ada = NULL;

    if (f->engine == NULL)
        return;
    tina_id = add_user(f, "tina");
    ada_id = add_user(f, "ada");
    g_free(bind(f, tina_id, "delegated-administrator", "host_group", "hg-a", -1));
    g_free(bind(f, ada_id, "administrator", "global", NULL, -1));
    tina = actor_for(f, tina_id, "tina");
    ada = actor_for(f, ada_id, "ada");
    exec_sql(f, "UPDATE catalog_machines SET error = 'cannot open /srv/pool1/desk-01.qcow2', "
                "step = 'identity' WHERE name = 'desk-01'",
             NULL, 0);
    for (guint who = 0; who < 2; who++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GHashTable) q = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(JsonObject) page =
            dv_engine_catalog_machines_for(f->engine, who == 0 ? tina : ada, "cat1", q, &error);
        JsonObject *m;
        const char *text;
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(dv_json_get_array(page, "items")), ==, 1);
        m = json_array_get_object_element(dv_json_get_array(page, "items"), 0);
        text = dv_json_get_string(m, "error", "");
        g_test_message("%s reads: %s", who == 0 ? "tina" : "ada", text);
        if (who == 0) {
            g_assert_null(strstr(text, "/srv/pool1"));
            g_assert_nonnull(strstr(text, "withheld"));
            g_assert_nonnull(strstr(text, "failed at step identity"));
            g_assert_false(json_object_has_member(m, "overlay_path"));
        } else {
            g_assert_cmpstr(text, ==, "cannot open /srv/pool1/desk-01.qcow2");
        }
        g_assert_cmpstr(dv_json_get_string(m, "state", ""), ==, "failed");
    }
}

/* A custom role of @privileges (NULL-terminated), made by the engine. */
static void
add_role(Fixture *f, const char *name, const char *const *privileges)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) r = dv_authz_role_create(f->store, NULL, name, privileges, NULL, &error);
    g_assert_no_error(error);
}

/* Asserts @error is @code naming @field and holding @words. */
static void
assert_refused(GError *error, DvErrorCode code, const char *field, const char *words)
{
    g_assert_error(error, DV_ERROR, (gint)code);
    g_assert_cmpstr(dv_error_get_field(error), ==, field);
    if (words != NULL && strstr(error->message, words) == NULL)
        g_error("'%s' lacks '%s'", error->message, words);
}

static JsonObject *
profile_create(Fixture *f, const DvActor *actor, const char *json, GError **error)
{
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    return dv_engine_create(f->engine, DV_KIND_GUEST_OS_PROFILE, body, actor, error);
}

/* Issue 11's grant rule (docs/ACCESS.md, "Run As accounts"): a guest OS
 * profile may join its domain with a Run As account; naming it needs
 * run_as.use (403 when the account is visible, 404 when not, nothing
 * made); it is exclusive with the inline pair; the account cannot be
 * deleted while named; a catalog with that profile is made, provisioned
 * and grown only by actors holding run_as.use on it; a catalog binding
 * giving catalog.provision needs the grantee to hold it; the identity
 * disk carries the account's user and its password by size only. */
static void
test_run_as_profile(Fixture *f, gconstpointer data)
{
    static const char *const profiler[] = { "guest_os_profile.read",
                                            "guest_os_profile.create",
                                            "guest_os_profile.change",
                                            "run_as.read",
                                            "catalog.read",
                                            "catalog.create",
                                            "catalog.provision",
                                            NULL };
    static const char *const blind[] = { "guest_os_profile.read", "guest_os_profile.create",
                                         "catalog.read", "catalog.create", NULL };
    static const char *const user_of[] = { "run_as.use", NULL };
    static const char *const reader_of[] = { "run_as.read", NULL };
    g_autofree char *ada_id = NULL;
    g_autofree char *gina_id = NULL;
    g_autofree char *nora_id = NULL;
    g_autofree char *sam_id = NULL;
    g_autofree char *tom_id = NULL;
    g_autofree char *una_id = NULL;
    g_autoptr(DvActor) ada = NULL;
    g_autoptr(DvActor) gina = NULL;
    g_autoptr(DvActor) nora = NULL;
    g_autoptr(DvActor) sam = NULL;
    g_autoptr(DvActor) tom = NULL;
    g_autoptr(JsonObject) joiner = NULL;
    g_autoptr(JsonObject) p1 = NULL;
    g_autoptr(JsonObject) cat = NULL;
    g_autofree char *joiner_id = NULL;
    gint64 profiles, machines, bindings;

    if (f->engine == NULL)
        return;
    json_object_unref(
        dv_test_engine_create(f->engine, DV_KIND_RUN_AS,
                              "{\"name\":\"joiner\",\"username\":\"CORP\\\\svc-join\","
                              "\"password\":\"Join-Secret-4711\"}",
                              WAIT_MS));
    json_object_unref(dv_test_engine_create(f->engine, DV_KIND_RUN_AS,
                                            "{\"name\":\"keyed\",\"username\":\"root\","
                                            "\"ssh_private_key\":\"-----BEGIN KEY-----\"}",
                                            WAIT_MS));
    json_object_unref(dv_test_engine_create(f->engine, DV_KIND_GUEST_OS_PROFILE,
                                            "{\"name\":\"p0\",\"domain\":\"corp.example\","
                                            "\"domain_join_user\":\"inline\","
                                            "\"domain_join_password\":\"Inline-Secret-1\"}",
                                            WAIT_MS));
    joiner = dv_store_find(f->store, &dv_table_run_as_accounts, "name", "joiner", NULL);
    g_assert_nonnull(joiner);
    joiner_id = g_strdup(dv_json_get_string(joiner, "id", ""));
    add_role(f, "profiler", profiler);
    add_role(f, "blind", blind);
    add_role(f, "account-user", user_of);
    add_role(f, "account-reader", reader_of);
    ada_id = add_user(f, "ada");
    gina_id = add_user(f, "gina");
    nora_id = add_user(f, "nora");
    sam_id = add_user(f, "sam");
    tom_id = add_user(f, "tom");
    una_id = add_user(f, "una");
    g_free(bind(f, ada_id, "administrator", "global", NULL, -1));
    g_free(bind(f, gina_id, "profiler", "global", NULL, -1));
    g_free(bind(f, nora_id, "blind", "global", NULL, -1));
    g_free(bind(f, sam_id, "self-service-user", "host_group", "hg-a", -1));
    g_free(bind(f, tom_id, "self-service-user", "host_group", "hg-a", -1));
    g_free(bind(f, tom_id, "account-reader", "run_as", joiner_id, -1));
    ada = actor_for(f, ada_id, "ada");
    gina = actor_for(f, gina_id, "gina");
    nora = actor_for(f, nora_id, "nora");
    tom = actor_for(f, tom_id, "tom");

    /* Naming the account: 403 when visible, 404 in the words of an absent
     * one when not; nothing made. */
    profiles = count(f, &dv_table_guest_os_profiles, NULL, NULL);
    {
        static const char *const json =
            "{\"name\":\"p1\",\"domain\":\"corp.example\",\"domain_join_run_as\":\"joiner\"}";
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) job = profile_create(f, gina, json, &error);
        g_assert_null(job);
        assert_refused(error, DV_ERROR_PERMISSION_DENIED, "domain_join_run_as", "run_as.use");
        g_clear_error(&error);
        job = profile_create(f, nora, json, &error);
        g_assert_null(job);
        assert_refused(error, DV_ERROR_NOT_FOUND, "domain_join_run_as",
                       "Run As account 'joiner' not found");
        g_assert_null(strstr(error->message, joiner_id));
    }
    /* Bad input, even for the administrator: exclusive with the inline
     * pair, needs a domain, a password account, an existing one. */
    {
        static const struct {
            const char *json;
            DvErrorCode code;
            const char *field;
        } bad[] = {
            { "{\"name\":\"p1\",\"domain\":\"corp.example\",\"domain_join_run_as\":\"joiner\","
              "\"domain_join_user\":\"x\"}",
              DV_ERROR_INVALID_ARGUMENT, "domain_join_run_as" },
            { "{\"name\":\"p1\",\"domain\":\"corp.example\",\"domain_join_run_as\":\"joiner\","
              "\"domain_join_password\":\"Other-Secret-1\"}",
              DV_ERROR_INVALID_ARGUMENT, "domain_join_run_as" },
            { "{\"name\":\"p1\",\"domain_join_run_as\":\"joiner\"}", DV_ERROR_INVALID_ARGUMENT,
              "domain_join_run_as" },
            { "{\"name\":\"p1\",\"domain\":\"corp.example\",\"domain_join_run_as\":\"keyed\"}",
              DV_ERROR_INVALID_ARGUMENT, "domain_join_run_as" },
            { "{\"name\":\"p1\",\"domain\":\"corp.example\",\"domain_join_run_as\":\"nobody\"}",
              DV_ERROR_NOT_FOUND, "domain_join_run_as" },
        };
        for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
            g_autoptr(GError) error = NULL;
            g_autoptr(JsonObject) job = profile_create(f, ada, bad[i].json, &error);
            g_assert_null(job);
            assert_refused(error, bad[i].code, bad[i].field, NULL);
        }
    }
    g_assert_cmpint(count(f, &dv_table_guest_os_profiles, NULL, NULL), ==, profiles);

    /* The administrator holds run_as.use: made; shown by id and name. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) job = profile_create(
            f, ada,
            "{\"name\":\"p1\",\"domain\":\"corp.example\",\"domain_join_run_as\":\"joiner\"}",
            &error);
        g_assert_no_error(error);
        json_object_unref(dv_test_engine_run(f->engine, job, WAIT_MS));
        p1 = dv_engine_get(f->engine, DV_KIND_GUEST_OS_PROFILE, "p1", &error);
        g_assert_no_error(error);
        g_assert_false(json_object_has_member(p1, "domain_join_run_as_id"));
        g_assert_cmpstr(dv_json_get_string(dv_json_get_object(p1, "domain_join_run_as"), "id", ""),
                        ==, joiner_id);
        g_assert_cmpstr(
            dv_json_get_string(dv_json_get_object(p1, "domain_join_run_as"), "name", ""), ==,
            "joiner");
    }
    /* A change of the inline pair while the account is named: refused. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) body = dv_test_json_object("{\"domain_join_user\":\"x\"}");
        g_autoptr(JsonObject) job =
            dv_engine_update(f->engine, DV_KIND_GUEST_OS_PROFILE, "p1", body, ada, &error);
        g_assert_null(job);
        assert_refused(error, DV_ERROR_INVALID_ARGUMENT, "domain_join_user", "domain_join_run_as");
    }
    /* An account replacing the inline pair: the inline password goes. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) body = dv_test_json_object("{\"domain_join_run_as\":\"joiner\"}");
        g_autoptr(JsonObject) job = NULL;
        g_autoptr(JsonObject) p0 = NULL;
        job = dv_engine_update(f->engine, DV_KIND_GUEST_OS_PROFILE, "p0", body, gina, &error);
        g_assert_null(job);
        assert_refused(error, DV_ERROR_PERMISSION_DENIED, "domain_join_run_as", "run_as.use");
        g_clear_error(&error);
        job = dv_engine_update(f->engine, DV_KIND_GUEST_OS_PROFILE, "p0", body, ada, &error);
        g_assert_no_error(error);
        json_object_unref(dv_test_engine_run(f->engine, job, WAIT_MS));
        p0 = dv_engine_get(f->engine, DV_KIND_GUEST_OS_PROFILE, "p0", &error);
        g_assert_no_error(error);
        g_assert_true(dv_json_get_string(p0, "domain_join_user", NULL) == NULL);
        g_assert_false(
            dv_json_get_bool(dv_json_get_object(p0, "domain_join_password"), "set", TRUE));
        g_assert_cmpstr(
            dv_json_get_string(dv_json_get_object(p0, "domain_join_run_as"), "name", ""), ==,
            "joiner");
    }
    /* A named account cannot be deleted: 409 naming the profiles. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) job =
            dv_engine_delete(f->engine, DV_KIND_RUN_AS, "joiner", NULL, ada, &error);
        g_assert_null(job);
        g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
        g_assert_nonnull(strstr(error->message, "'p0', 'p1'"));
    }

    /* A catalog with that profile: made only by an actor with run_as.use. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) body = dv_test_json_object(
            "{\"name\":\"cat2\",\"master_vm\":\"m0\",\"master_snapshot\":\"s1\",\"host_group\":"
            "\"hg-a\",\"pool\":\"pool1\",\"naming_scheme\":\"rdp-##\",\"count\":1,"
            "\"type\":\"pooled\",\"guest_os_profile\":\"p1\",\"machine\":{\"vcpus\":1,"
            "\"memory_mib\":128,\"networks\":[\"net1\"]}}");
        g_autoptr(JsonObject) job = NULL;
        gint64 catalogs = count(f, &dv_table_catalogs, NULL, NULL);
        job = dv_engine_create(f->engine, DV_KIND_CATALOG, body, gina, &error);
        g_assert_null(job);
        assert_refused(error, DV_ERROR_PERMISSION_DENIED, "guest_os_profile", "run_as.use");
        g_clear_error(&error);
        job = dv_engine_create(f->engine, DV_KIND_CATALOG, body, nora, &error);
        g_assert_null(job);
        assert_refused(error, DV_ERROR_NOT_FOUND, "guest_os_profile", NULL);
        g_assert_cmpint(count(f, &dv_table_catalogs, NULL, NULL), ==, catalogs);
        g_clear_error(&error);
        job = dv_engine_create(f->engine, DV_KIND_CATALOG, body, ada, &error);
        g_assert_no_error(error);
        run(f, job);
        g_assert_cmpint(count(f, &dv_table_catalogs, NULL, NULL), ==, catalogs + 1);
    }

    /* cat1 takes p1: using it needs run_as.use, refused before anything
     * is made. */
    exec_sql(f, "UPDATE catalogs SET guest_os_profile_id = ? WHERE name = 'cat1'",
             DV_SQL_ARGS(DV_SQL_TEXT_P(dv_json_get_string(p1, "id", ""))));
    sam = actor_for(f, sam_id, "sam");
    machines = count(f, &dv_table_catalog_machines, NULL, NULL);
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) job = add_machines(f, sam, 1, &error);
        g_assert_null(job);
        assert_refused(error, DV_ERROR_NOT_FOUND, "guest_os_profile", NULL);
        g_clear_error(&error);
        job = add_machines(f, tom, 1, &error);
        g_assert_null(job);
        assert_refused(error, DV_ERROR_PERMISSION_DENIED, "guest_os_profile", "run_as.use");
        g_clear_error(&error);
        job = dv_engine_catalog_provision(f->engine, "cat1", sam, &error);
        g_assert_null(job);
        assert_refused(error, DV_ERROR_NOT_FOUND, "guest_os_profile", NULL);
    }
    g_assert_cmpint(count(f, &dv_table_catalog_machines, NULL, NULL), ==, machines);
    g_free(bind(f, sam_id, "account-user", "run_as", joiner_id, -1));
    g_clear_pointer(&sam, dv_actor_free);
    sam = actor_for(f, sam_id, "sam");
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) job = add_machines(f, sam, 1, &error);
        g_assert_no_error(error);
        run(f, job);
        g_clear_pointer(&job, json_object_unref);
        job = dv_engine_catalog_provision(f->engine, "cat1", sam, &error);
        g_assert_no_error(error);
        run(f, job);
    }
    g_assert_cmpint(count(f, &dv_table_catalog_machines, NULL, NULL), ==, machines + 1);

    /* Granting cat1: refused unless the grantee holds run_as.use. */
    bindings = count(f, &dv_table_bindings, NULL, NULL);
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) spec = json_object_new();
        g_autoptr(JsonObject) b = NULL;
        cat = dv_store_find(f->store, &dv_table_catalogs, "name", "cat1", &error);
        g_assert_no_error(error);
        json_object_set_string_member(spec, "principal", una_id);
        json_object_set_string_member(spec, "role", "self-service-user");
        json_object_set_string_member(spec, "scope_kind", "catalog");
        json_object_set_string_member(spec, "scope_id", dv_json_get_string(cat, "id", ""));
        b = dv_authz_binding_add(f->store, dv_core_actor_authz(ada), spec, &error);
        g_assert_null(b);
        assert_refused(error, DV_ERROR_PERMISSION_DENIED, "principal", "run_as.use");
        g_clear_error(&error);
        /* A deny is no hand-over. */
        json_object_set_string_member(spec, "effect", "deny");
        b = dv_authz_binding_add(f->store, dv_core_actor_authz(ada), spec, &error);
        g_assert_no_error(error);
        g_clear_pointer(&b, json_object_unref);
        g_assert_cmpint(count(f, &dv_table_bindings, NULL, NULL), ==, bindings + 1);
        g_free(bind(f, una_id, "account-user", "run_as", joiner_id, -1));
        json_object_set_string_member(spec, "effect", "allow");
        b = dv_authz_binding_add(f->store, dv_core_actor_authz(ada), spec, &error);
        g_assert_no_error(error);
        g_assert_nonnull(b);
        g_assert_cmpint(count(f, &dv_table_bindings, NULL, NULL), ==, bindings + 3);
    }

    /* The identity disk: the account's user, its password by size only. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) id =
            dv_engine_catalog_identity_preview(f->engine, "cat1", "desk-99", &error);
        g_autofree char *text = NULL;
        JsonObject *sum;
        g_assert_no_error(error);
        sum = dv_json_get_object(id, "user_data_summary");
        g_assert_cmpstr(dv_json_get_string(sum, "domain", ""), ==, "corp.example");
        g_assert_cmpstr(dv_json_get_string(sum, "domain_join_user", ""), ==, "CORP\\svc-join");
        g_assert_true(dv_json_get_bool(sum, "has_domain_join_password", FALSE));
        text = dv_json_object_to_string(id, FALSE);
        g_assert_null(strstr(text, "Join-Secret-4711"));
    }
}

static void
add_both(const char *path, void (*func)(Fixture *, gconstpointer))
{
    dv_test_add_both(path, sizeof(Fixture), (GTestFixtureFunc)fixture_setup, (GTestFixtureFunc)func,
                     (GTestFixtureFunc)fixture_teardown);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    add_both("/drover/auth/catalog-scope/owner-quota-release", test_owner_quota_release);
    add_both("/drover/auth/catalog-scope/quota-parallel", test_quota_parallel);
    add_both("/drover/auth/catalog-scope/machines-scope", test_machines_scope);
    add_both("/drover/auth/catalog-scope/catalog-visibility", test_catalog_visibility);
    add_both("/drover/auth/catalog-scope/retry-own", test_retry_own);
    add_both("/drover/auth/catalog-scope/submit-race", test_submit_race);
    add_both("/drover/auth/catalog-scope/add-new-only", test_add_new_only);
    add_both("/drover/auth/catalog-scope/machine-error-redaction", test_machine_error_redaction);
    add_both("/drover/auth/catalog-scope/run-as-profile", test_run_as_profile);
    return g_test_run();
}
