#define G_LOG_DOMAIN "DvTestScopeIndex"

/* The host group denormalised onto VMs (migration 0009, docs/ACCESS.md,
 * "Lists"): vms.host_group_id follows a VM made or imported on a host, a
 * host moved to another group or out of any, and a VM moved to another
 * host; a delegated administrator's VM list filters on it, reads
 * vms_host_group_idx in the page's order for one group (EXPLAIN on each
 * backend) and stays whole and ordered for several.  SQLite and
 * PostgreSQL; hosts from libvirt's test:/// driver. */

#include "dv-auth-users.h"
#include "dv-authz.h"
#include "dv-core.h"
#include "dv-engine.h"
#include "dv-test-catalog.h"
#include "dv-test-pg.h"
#include "dv-test-scope.h"
#include "dv-test-util.h"

#include <string.h>

#define WAIT_MS 60000

typedef struct {
    char *tmpdir;
    char *pg_dbname;
    DvEngine *engine;
    DvStore *store;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    f->engine = dv_test_engine_on_backend("dv-test-scope-index", GPOINTER_TO_INT(data), 4,
                                          &f->tmpdir, &f->pg_dbname);
    if (f->engine != NULL)
        f->store = dv_core(f->engine)->store;
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    dv_test_engine_on_backend_free(g_steal_pointer(&f->engine), g_steal_pointer(&f->tmpdir),
                                   g_steal_pointer(&f->pg_dbname));
}

static void
exec_sql(Fixture *f, const char *sql, const DvSqlParam *p, guint n)
{
    dv_test_scope_exec(f->store, sql, p, n);
}

/* vms.host_group_id of the VM named @name; NULL when unset (owned). */
static char *
vm_group(Fixture *f, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSqlRows) rows =
        dv_db_query(dv_store_get_db(f->store), "SELECT host_group_id FROM vms WHERE name = ?",
                    DV_SQL_ARGS(DV_SQL_TEXT_P(name)), &error);
    g_assert_no_error(error);
    g_assert_cmpuint(dv_sql_rows_get_n_rows(rows), ==, 1);
    return g_strdup(dv_sql_rows_get_text(rows, 0, 0));
}

/* VMs whose host_group_id is not their host's: always 0. */
static gint64
stale_rows(Fixture *f)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSqlRows) rows =
        dv_db_query(dv_store_get_db(f->store),
                    "SELECT COUNT(*) FROM vms v JOIN hosts h ON h.id = v.host_id WHERE "
                    "(v.host_group_id IS NULL) <> (h.host_group_id IS NULL) OR v.host_group_id <> "
                    "h.host_group_id",
                    DV_SQL_NO_ARGS, &error);
    g_assert_no_error(error);
    return dv_sql_rows_get_int(rows, 0, 0);
}

/* A delegated administrator over @groups (NULL-terminated). */
static DvActor *
delegate(Fixture *f, const char *name, const char *const *groups)
{
    g_autofree char *id = dv_test_scope_add_user(dv_core(f->engine)->auth, name);

    for (guint i = 0; groups[i] != NULL; i++) {
        g_autofree char *b = dv_test_scope_bind(f->store, "user", id, "delegated-administrator",
                                                "host_group", groups[i], "allow", -1);
    }
    return dv_test_scope_actor(f->store, id, name);
}

/* Every VM @actor sees, paged by @limit; checks the (name, id) order. */
static guint
count_visible(Fixture *f, const DvActor *actor, guint limit)
{
    g_autofree char *cursor = NULL;
    g_autofree char *last = NULL;
    guint n = 0;

    do {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) page = NULL;
        g_autofree char *limit_s = g_strdup_printf("%u", limit);
        g_autoptr(GHashTable) q = g_hash_table_new(g_str_hash, g_str_equal);
        JsonArray *items;
        g_hash_table_insert(q, "limit", limit_s);
        if (cursor != NULL)
            g_hash_table_insert(q, "cursor", cursor);
        page = dv_engine_list_for(f->engine, actor, DV_KIND_VM, q, &error);
        g_assert_no_error(error);
        items = dv_json_get_array(page, "items");
        for (guint i = 0; i < json_array_get_length(items); i++) {
            const char *name =
                dv_json_get_string(json_array_get_object_element(items, i), "name", "");
            if (last != NULL)
                g_assert_cmpstr(last, <=, name);
            g_free(last);
            last = g_strdup(name);
        }
        n += json_array_get_length(items);
        g_free(cursor);
        cursor = g_strdup(dv_json_get_string(page, "next_cursor", NULL));
    } while (cursor != NULL);
    return n;
}

static void
run_job(Fixture *f, JsonObject *job, GError *error)
{
    g_autoptr(JsonObject) done = NULL;
    g_assert_no_error(error);
    done = dv_test_engine_run(f->engine, job, WAIT_MS);
    json_object_unref(job);
}

static void
move_host(Fixture *f, const char *host, const char *group)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = json_object_new();
    g_autoptr(JsonObject) job = NULL;
    if (group != NULL)
        json_object_set_string_member(body, "host_group", group);
    else
        json_object_set_null_member(body, "host_group");
    job = dv_engine_update(f->engine, DV_KIND_HOST, host, body, DV_ACTOR_NAMED("tester"), &error);
    run_job(f, g_steal_pointer(&job), g_steal_pointer(&error));
}

static void
test_follows(Fixture *f, gconstpointer data)
{
    static const char *const only_a[] = { "hg-a", NULL };
    static const char *const only_b[] = { "hg-b", NULL };
    g_autoptr(DvActor) da = NULL;
    g_autoptr(DvActor) db = NULL;
    g_autofree char *host_id = NULL;
    g_autofree char *g = NULL;
    g_autoptr(GError) error = NULL;

    if (f->engine == NULL)
        return;
    exec_sql(
        f,
        "INSERT INTO host_groups (id, name, created_at) VALUES ('hg-a', 'a', 1), ('hg-b', 'b', 1)",
        DV_SQL_NO_ARGS);
    da = delegate(f, "dana", only_a);
    db = delegate(f, "dora", only_b);

    /* Imported with its host (no group yet): m0..m2 carry none. */
    host_id = dv_test_catalog_add_host(f->engine, f->tmpdir, WAIT_MS);
    g = vm_group(f, "m0");
    g_assert_null(g);
    g_assert_cmpuint(count_visible(f, da, 100), ==, 0);

    /* The host moves into a group: its VMs follow. */
    move_host(f, "h1", "a");
    g_clear_pointer(&g, g_free);
    g = vm_group(f, "m1");
    g_assert_cmpstr(g, ==, "hg-a");
    g_assert_cmpuint(count_visible(f, da, 2), ==, 3);
    g_assert_cmpuint(count_visible(f, db, 2), ==, 0);

    /* A VM made on the host. */
    {
        g_autoptr(JsonObject) body =
            dv_test_json_object("{\"name\": \"made\", \"host\": \"h1\", \"memory_mib\": 32}");
        g_autoptr(JsonObject) job = dv_engine_create(f->engine, DV_KIND_VM, body, da, &error);
        run_job(f, g_steal_pointer(&job), g_steal_pointer(&error));
    }
    g_clear_pointer(&g, g_free);
    g = vm_group(f, "made");
    g_assert_cmpstr(g, ==, "hg-a");
    g_assert_cmpuint(count_visible(f, da, 2), ==, 4);

    /* Moved to another group, then refreshed: all four follow and stay. */
    move_host(f, "h1", "b");
    {
        g_autoptr(JsonObject) job =
            dv_engine_host_refresh(f->engine, "h1", DV_ACTOR_NAMED("tester"), &error);
        run_job(f, g_steal_pointer(&job), g_steal_pointer(&error));
    }
    g_assert_cmpuint(count_visible(f, da, 2), ==, 0);
    g_assert_cmpuint(count_visible(f, db, 3), ==, 4);
    g_assert_cmpint(stale_rows(f), ==, 0);

    /* A VM moved to a host of another group (what a migration writes). */
    exec_sql(
        f,
        "INSERT INTO hosts (id, name, uri, host_group_id, state, domain_type, max_connections, "
        "max_concurrent_operations, created_at) VALUES ('h-other', 'h-other', 'test:///x', "
        "'hg-a', 'ok', 'kvm', 16, 16, 1)",
        DV_SQL_NO_ARGS);
    {
        g_autoptr(JsonObject) vm = dv_engine_get(f->engine, DV_KIND_VM, "m2", &error);
        g_autoptr(JsonObject) ch = json_object_new();
        g_assert_no_error(error);
        json_object_set_string_member(ch, "host_id", "h-other");
        g_assert_true(
            dv_store_update(f->store, &dv_table_vms, dv_json_get_string(vm, "id", ""), ch, &error));
        g_assert_no_error(error);
    }
    g_clear_pointer(&g, g_free);
    g = vm_group(f, "m2");
    g_assert_cmpstr(g, ==, "hg-a");
    g_assert_cmpuint(count_visible(f, da, 100), ==, 1);
    g_assert_cmpuint(count_visible(f, db, 100), ==, 3);

    /* Out of any group: seen by neither, nothing stale. */
    move_host(f, "h1", NULL);
    g_clear_pointer(&g, g_free);
    g = vm_group(f, "made");
    g_assert_null(g);
    g_assert_cmpuint(count_visible(f, db, 100), ==, 0);
    g_assert_cmpint(stale_rows(f), ==, 0);
}

/* 100 hosts over 10 groups bg0..bg9, 50 VMs each: written by plain SQL, so
 * the triggers alone fill host_group_id. */
static void
make_fleet(Fixture *f)
{
    exec_sql(f,
             "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 9) "
             "INSERT INTO host_groups (id, name, created_at) SELECT 'bg' || CAST(i AS TEXT), 'bg' "
             "|| CAST(i AS TEXT), 1 FROM n",
             DV_SQL_NO_ARGS);
    exec_sql(
        f,
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99) "
        "INSERT INTO hosts (id, name, uri, host_group_id, state, domain_type, max_connections, "
        "max_concurrent_operations, created_at) SELECT 'bh' || CAST(i AS TEXT), 'bh' || CAST(i AS "
        "TEXT), 'test:///bh' || CAST(i AS TEXT), "
        "'bg' || CAST(i % 10 AS TEXT), 'ok', 'kvm', 16, 16, 1 FROM n",
        DV_SQL_NO_ARGS);
    exec_sql(f,
             "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 4999) "
             "INSERT INTO vms (id, name, host_id, state, origin, created_at, updated_at) "
             "SELECT 'bv' || CAST(i AS TEXT), 'vm-' || CAST(i * 7919 % 5000 AS TEXT), 'bh' || "
             "CAST(i % 100 AS TEXT), 'shutoff', "
             "'discovered', 1, 1 FROM n",
             DV_SQL_NO_ARGS);
    exec_sql(f, "ANALYZE", DV_SQL_NO_ARGS);
}

/* The plan of a VM page as dv_store_list_where() writes it, under
 * @actor's filter, with a cursor; one text. */
static char *
page_plan(Fixture *f, const DvActor *actor)
{
    g_autoptr(GError) error = NULL;
    DvDb *db = dv_store_get_db(f->store);
    gboolean lite = dv_db_get_backend(db) == DV_DB_SQLITE;
    g_autoptr(DvAuthzFilter) filter =
        dv_authz_list_filter(f->store, dv_core_actor_authz(actor), "vm", &error);
    g_autoptr(GArray) params = g_array_new(FALSE, TRUE, sizeof(DvSqlParam));
    g_autofree DvSqlParam *fp = NULL;
    g_autofree char *sql = NULL;
    g_autoptr(DvSqlRows) rows = NULL;
    g_autoptr(GString) plan = g_string_new(NULL);
    DvSqlParam extra[] = { DV_SQL_TEXT_P("vm-1000"), DV_SQL_TEXT_P("bv0"), DV_SQL_INT_P(101) };
    guint n = 0;

    g_assert_no_error(error);
    fp = dv_authz_filter_params(filter, &n);
    g_array_append_vals(params, fp, n);
    g_array_append_vals(params, extra, G_N_ELEMENTS(extra));
    sql =
        g_strdup_printf("%s SELECT id, name FROM vms WHERE 1 = 1 AND (%s) AND (name, id) > (?, ?) "
                        "ORDER BY name ASC, id ASC LIMIT ?",
                        lite ? "EXPLAIN QUERY PLAN" : "EXPLAIN", filter->where);
    rows = dv_db_query(db, sql, (const DvSqlParam *)(gpointer)params->data, params->len, &error);
    g_assert_no_error(error);
    for (guint r = 0; r < dv_sql_rows_get_n_rows(rows); r++)
        g_string_append_printf(plan, "%s\n", dv_sql_rows_get_text(rows, r, lite ? 3 : 0));
    g_test_message("%s", plan->str);
    return g_string_free(g_steal_pointer(&plan), FALSE);
}

static void
test_plan(Fixture *f, gconstpointer data)
{
    static const char *const one[] = { "bg3", NULL };
    static const char *const two[] = { "bg3", "bg7", NULL };
    g_autoptr(DvActor) d1 = NULL;
    g_autoptr(DvActor) d2 = NULL;
    g_autofree char *plan = NULL;

    if (f->engine == NULL)
        return;
    make_fleet(f);
    g_assert_cmpint(stale_rows(f), ==, 0);
    d1 = delegate(f, "one", one);
    d2 = delegate(f, "two", two);

    /* One group: the index in the page's order, no sort of what it sees. */
    plan = page_plan(f, d1);
    g_assert_nonnull(strstr(plan, "vms_host_group_idx"));
    g_assert_null(strstr(plan, "TEMP B-TREE"));
    g_assert_null(strstr(plan, "Sort"));

    /* Whole and in order, one group or several. */
    g_assert_cmpuint(count_visible(f, d1, 100), ==, 500);
    g_assert_cmpuint(count_visible(f, d1, 7), ==, 500);
    g_assert_cmpuint(count_visible(f, d2, 100), ==, 1000);
    g_assert_cmpuint(count_visible(f, d2, 33), ==, 1000);
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
    add_both("/drover/auth/scope-index/follows", test_follows);
    add_both("/drover/auth/scope-index/plan", test_plan);
    return g_test_run();
}
