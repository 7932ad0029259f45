#define G_LOG_DOMAIN "DvTestStore"

/* The store against SQLite (always) and PostgreSQL (DV_TEST_PG_URI, as
 * set by tests/services/with-services).  Every test gets a fresh database:
 * a temp dir for SQLite, CREATE DATABASE dv_test_<random> for PostgreSQL. */

#include "dv-db-private.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-store.h"
#include "dv-test-pg.h"
#include "dv-validate.h"

#include <glib/gstdio.h>
#include <string.h>

typedef struct {
    DvDbBackend backend;
    char *tmpdir;
    char *location;
    char *pg_dbname;
    DvStore *store; /* opened and migrated, or NULL for the bare fixture */
} Fixture;

/* --- fixtures ------------------------------------------------------- */

static void
fixture_setup_bare(Fixture *fx, gconstpointer data)
{
    fx->backend = (DvDbBackend)GPOINTER_TO_INT(data);
    if (fx->backend == DV_DB_SQLITE) {
        g_autoptr(GError) error = NULL;
        fx->tmpdir = g_dir_make_tmp("dv-test-store-XXXXXX", &error);
        g_assert_no_error(error);
        fx->location = g_build_filename(fx->tmpdir, "drover.db", NULL);
    } else {
        fx->location = dv_test_pg_new_database("dv_test", &fx->pg_dbname);
    }
}

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    fixture_setup_bare(fx, data);
    fx->store = dv_store_open(fx->location, DV_STORE_OPEN_MIGRATE, &error);
    g_assert_no_error(error);
    g_assert_nonnull(fx->store);
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
    g_clear_pointer(&fx->store, dv_store_free);
    dv_store_set_extra_migrations_for_test(NULL, NULL);
    if (fx->backend == DV_DB_SQLITE) {
        const char *suffixes[] = { "", "-wal", "-shm", "-journal" };
        for (guint i = 0; i < G_N_ELEMENTS(suffixes); i++) {
            g_autofree char *path = g_strconcat(fx->location, suffixes[i], NULL);
            g_unlink(path);
        }
        g_rmdir(fx->tmpdir);
    } else {
        dv_test_pg_drop_database(fx->pg_dbname);
    }
    g_free(fx->tmpdir);
    g_free(fx->location);
    g_free(fx->pg_dbname);
}

/* --- record helpers ------------------------------------------------- */

static JsonObject *
make_host(const char *name)
{
    JsonObject *o = json_object_new();
    g_autofree char *id = g_uuid_string_random();
    g_autofree char *uri = g_strdup_printf("test:///%s", name);

    json_object_set_string_member(o, "id", id);
    json_object_set_string_member(o, "name", name);
    json_object_set_string_member(o, "uri", uri);
    json_object_set_string_member(o, "state", "online");
    json_object_set_string_member(o, "domain_type", "kvm");
    json_object_set_int_member(o, "max_connections", 5);
    json_object_set_int_member(o, "max_concurrent_operations", 2);
    json_object_set_int_member(o, "created_at", dv_store_now());
    return o;
}

static char *
insert_host(DvStore *store, const char *name)
{
    g_autoptr(JsonObject) host = make_host(name);
    g_autoptr(GError) error = NULL;

    dv_store_insert(store, &dv_table_hosts, host, &error);
    g_assert_no_error(error);
    return g_strdup(json_object_get_string_member(host, "id"));
}

static JsonObject *
make_vm(const char *host_id, const char *name)
{
    JsonObject *o = json_object_new();
    g_autofree char *id = g_uuid_string_random();

    json_object_set_string_member(o, "id", id);
    json_object_set_string_member(o, "name", name);
    json_object_set_string_member(o, "host_id", host_id);
    json_object_set_string_member(o, "state", "shutoff");
    json_object_set_string_member(o, "origin", "created");
    json_object_set_int_member(o, "created_at", dv_store_now());
    json_object_set_int_member(o, "updated_at", dv_store_now());
    return o;
}

static char *
insert_vm(DvStore *store, const char *host_id, const char *name)
{
    g_autoptr(JsonObject) vm = make_vm(host_id, name);
    g_autoptr(GError) error = NULL;

    dv_store_insert(store, &dv_table_vms, vm, &error);
    g_assert_no_error(error);
    return g_strdup(json_object_get_string_member(vm, "id"));
}

static void
assert_member_null(JsonObject *o, const char *name)
{
    g_assert_true(json_object_has_member(o, name));
    g_assert_true(JSON_NODE_HOLDS_NULL(json_object_get_member(o, name)));
}

static gint64
count_rows(DvStore *store, const DvTableDef *def)
{
    g_autoptr(GError) error = NULL;
    gint64 n = dv_store_count(store, def, NULL, 0, &error);
    g_assert_no_error(error);
    return n;
}

/* --- records -------------------------------------------------------- */

static void
test_crud(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) host = make_host("h1");
    g_autoptr(JsonObject) got = NULL;
    g_autoptr(JsonNode) rights = json_from_string("{\"start\":true,\"list\":[1,\"x\",null,{\"d\":2.5}]}", NULL);
    g_autoptr(JsonObject) changes = json_object_new();
    g_autoptr(JsonObject) net = json_object_new();
    g_autoptr(JsonObject) bad = make_host("h2");
    g_autofree char *net_id = g_uuid_string_random();
    g_autofree char *missing = g_uuid_string_random();
    g_autofree char *expect_msg = NULL;
    const char *id = json_object_get_string_member(host, "id");

    json_object_set_member(host, "rights", json_node_copy(rights));
    json_object_set_null_member(host, "daemon_limits");
    json_object_set_int_member(host, "cpus", 8);
    json_object_set_int_member(host, "memory_mib", G_GINT64_CONSTANT(1) << 40);
    g_assert_true(dv_store_insert(fx->store, &dv_table_hosts, host, &error));
    g_assert_no_error(error);

    got = dv_store_get(fx->store, &dv_table_hosts, id, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(json_object_get_string_member(got, "name"), ==, "h1");
    g_assert_cmpint(json_object_get_int_member(got, "cpus"), ==, 8);
    g_assert_cmpint(json_object_get_int_member(got, "memory_mib"), ==, G_GINT64_CONSTANT(1) << 40);
    g_assert_true(json_node_equal(json_object_get_member(got, "rights"), rights));
    assert_member_null(got, "daemon_limits");
    assert_member_null(got, "state_reason");
    assert_member_null(got, "refreshed_at");
    assert_member_null(got, "migration_uri");
    assert_member_null(got, "migration_bandwidth_mib_s");
    /* Every column is present, so API output is stable. */
    g_assert_cmpuint(json_object_get_size(got), ==, 25);
    g_clear_pointer(&got, json_object_unref);

    /* BOOL columns come back as JSON booleans. */
    json_object_set_string_member(net, "id", net_id);
    json_object_set_string_member(net, "host_id", id);
    json_object_set_string_member(net, "name", "default");
    json_object_set_boolean_member(net, "active", TRUE);
    g_assert_true(dv_store_insert(fx->store, &dv_table_networks, net, &error));
    g_assert_no_error(error);
    got = dv_store_get(fx->store, &dv_table_networks, net_id, &error);
    g_assert_no_error(error);
    g_assert_true(JSON_NODE_HOLDS_VALUE(json_object_get_member(got, "active")));
    g_assert_true(json_object_get_boolean_member(got, "active"));
    g_clear_pointer(&got, json_object_unref);

    /* Update: JSON array, text, int, null. */
    {
        g_autoptr(JsonNode) arr = json_from_string("[\"a\",[\"b\"],{}]", NULL);
        json_object_set_member(changes, "rights", json_node_copy(arr));
        json_object_set_string_member(changes, "state_reason", "maintenance");
        json_object_set_int_member(changes, "cpus", 16);
        json_object_set_null_member(changes, "memory_mib");
        g_assert_true(dv_store_update(fx->store, &dv_table_hosts, id, changes, &error));
        g_assert_no_error(error);
        got = dv_store_get(fx->store, &dv_table_hosts, id, &error);
        g_assert_no_error(error);
        g_assert_true(json_node_equal(json_object_get_member(got, "rights"), arr));
        g_assert_cmpstr(json_object_get_string_member(got, "state_reason"), ==, "maintenance");
        g_assert_cmpint(json_object_get_int_member(got, "cpus"), ==, 16);
        assert_member_null(got, "memory_mib");
        g_clear_pointer(&got, json_object_unref);
    }

    /* find */
    got = dv_store_find(fx->store, &dv_table_hosts, "name", "h1", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(json_object_get_string_member(got, "id"), ==, id);
    g_clear_pointer(&got, json_object_unref);
    got = dv_store_find(fx->store, &dv_table_hosts, "name", "nope", &error);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "host 'nope' not found");
    g_clear_error(&error);

    /* Not found, with the object's name. */
    g_assert_false(dv_store_update(fx->store, &dv_table_hosts, missing, changes, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    got = dv_store_get(fx->store, &dv_table_host_groups, missing, &error);
    g_assert_null(got);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    expect_msg = g_strdup_printf("host group '%s' not found", missing);
    g_assert_cmpstr(error->message, ==, expect_msg);
    g_clear_error(&error);

    /* A member that is not a column, a value of the wrong type. */
    json_object_set_string_member(bad, "colour", "blue");
    g_assert_false(dv_store_insert(fx->store, &dv_table_hosts, bad, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_INTERNAL);
    g_assert_cmpstr(dv_error_get_field(error), ==, "colour");
    g_clear_error(&error);
    json_object_remove_member(bad, "colour");
    json_object_set_string_member(bad, "cpus", "eight");
    g_assert_false(dv_store_insert(fx->store, &dv_table_hosts, bad, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_INTERNAL);
    g_assert_cmpstr(dv_error_get_field(error), ==, "cpus");
    g_clear_error(&error);
    /* A NOT NULL column left out names the column. */
    json_object_remove_member(bad, "cpus");
    json_object_remove_member(bad, "state");
    g_assert_false(dv_store_insert(fx->store, &dv_table_hosts, bad, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "state");
    g_clear_error(&error);

    /* Delete, twice. */
    g_assert_true(dv_store_delete(fx->store, &dv_table_hosts, id, &error));
    g_assert_no_error(error);
    g_assert_null(dv_store_get(fx->store, &dv_table_hosts, id, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_false(dv_store_delete(fx->store, &dv_table_hosts, id, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    /* The network went with its host (ON DELETE CASCADE). */
    g_assert_cmpint(count_rows(fx->store, &dv_table_networks), ==, 0);
}

static void
test_conflict(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *h1 = insert_host(fx->store, "h1");
    g_autoptr(JsonObject) dup = make_host("h1");
    g_autoptr(JsonObject) dup_uri = make_host("h3");
    g_autoptr(JsonObject) vm_dup = NULL;
    g_autofree char *vm1 = insert_vm(fx->store, h1, "web");
    g_autofree char *h2 = insert_host(fx->store, "h2");
    g_autofree char *vm2 = insert_vm(fx->store, h2, "web"); /* same name, other host: fine */
    g_autoptr(JsonObject) rename = json_object_new();

    json_object_set_string_member(dup, "uri", "test:///other");
    g_assert_false(dv_store_insert(fx->store, &dv_table_hosts, dup, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "name");
    g_assert_cmpstr(error->message, ==, "a host named 'h1' already exists");
    g_clear_error(&error);

    json_object_set_string_member(dup_uri, "uri", "test:///h1");
    g_assert_false(dv_store_insert(fx->store, &dv_table_hosts, dup_uri, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "uri");
    g_clear_error(&error);

    /* Composite UNIQUE (host_id, name) names "name". */
    vm_dup = make_vm(h1, "web");
    g_assert_false(dv_store_insert(fx->store, &dv_table_vms, vm_dup, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "name");
    g_assert_cmpstr(error->message, ==, "a vm named 'web' already exists");
    g_clear_error(&error);

    /* Duplicate primary key. */
    json_object_set_string_member(dup, "id", h1);
    json_object_set_string_member(dup, "name", "h9");
    json_object_set_string_member(dup, "uri", "test:///h9");
    g_assert_false(dv_store_insert(fx->store, &dv_table_hosts, dup, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "id");
    g_clear_error(&error);

    /* Update into a clash. */
    json_object_set_string_member(rename, "name", "h1");
    g_assert_false(dv_store_update(fx->store, &dv_table_hosts, h2, rename, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "name");
    g_clear_error(&error);
}

static void
test_fk(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *ghost = g_uuid_string_random();
    g_autoptr(JsonObject) vm = make_vm(ghost, "orphan");
    g_autoptr(JsonObject) group = json_object_new();
    g_autoptr(JsonObject) host = make_host("h1");
    g_autofree char *group_id = g_uuid_string_random();

    /* A row that points at nothing. */
    g_assert_false(dv_store_insert(fx->store, &dv_table_vms, vm, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_clear_error(&error);
    g_assert_cmpint(count_rows(fx->store, &dv_table_vms), ==, 0);

    /* Deleting a row others still point at (no ON DELETE action). */
    json_object_set_string_member(group, "id", group_id);
    json_object_set_string_member(group, "name", "g1");
    json_object_set_int_member(group, "created_at", dv_store_now());
    g_assert_true(dv_store_insert(fx->store, &dv_table_host_groups, group, &error));
    g_assert_no_error(error);
    json_object_set_string_member(host, "host_group_id", group_id);
    g_assert_true(dv_store_insert(fx->store, &dv_table_hosts, host, &error));
    g_assert_no_error(error);
    g_assert_false(dv_store_delete(fx->store, &dv_table_host_groups, group_id, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_clear_error(&error);
    g_assert_cmpint(count_rows(fx->store, &dv_table_host_groups), ==, 1);
}

/* --- paging and filters --------------------------------------------- */

typedef struct {
    DvStore *store;
    char *hosts[2];
    guint n;
} FillCtx;

static gboolean
fill_vms_txn(DvStore *store, gpointer user_data, GError **error)
{
    FillCtx *ctx = user_data;
    g_autoptr(GRand) rand = g_rand_new_with_seed(42);
    g_autofree guint *order = g_new(guint, ctx->n);

    /* Insert in a shuffled order so the list order is the store's doing. */
    for (guint i = 0; i < ctx->n; i++)
        order[i] = i;
    for (guint i = ctx->n - 1; i > 0; i--) {
        guint j = g_rand_int_range(rand, 0, (gint32)i + 1);
        guint t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (guint i = 0; i < ctx->n; i++) {
        /* Two rows per name (one per host): ties broken by id. */
        g_autofree char *name = g_strdup_printf("vm-%05u", order[i] / 2);
        g_autoptr(JsonObject) vm = make_vm(ctx->hosts[order[i] % 2], name);
        if (!dv_store_insert(store, &dv_table_vms, vm, error))
            return FALSE;
    }
    return TRUE;
}

static void
test_paging(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    FillCtx ctx = { fx->store, { insert_host(fx->store, "h1"), insert_host(fx->store, "h2") }, 1000 };
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(DvSqlRows) expected = NULL;
    g_autofree char *cursor = NULL;
    guint visited = 0;
    guint pages = 0;

    g_assert_true(dv_store_transaction(fx->store, fill_vms_txn, &ctx, &error));
    g_assert_no_error(error);
    g_assert_cmpint(count_rows(fx->store, &dv_table_vms), ==, 1000);

    expected = dv_db_query(dv_store_get_db(fx->store), "SELECT id, name FROM vms ORDER BY name, id",
                           DV_SQL_NO_ARGS, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(dv_sql_rows_get_n_rows(expected), ==, 1000);

    do {
        g_autofree char *next = NULL;
        g_autoptr(JsonArray) page = dv_store_list(fx->store, &dv_table_vms, NULL, 0, 7, cursor, &next, &error);
        g_assert_no_error(error);
        g_assert_nonnull(page);
        g_assert_cmpuint(json_array_get_length(page), <=, 7);
        for (guint i = 0; i < json_array_get_length(page); i++) {
            JsonObject *vm = json_array_get_object_element(page, i);
            const char *id = json_object_get_string_member(vm, "id");
            g_assert_cmpuint(visited, <, 1000);
            g_assert_cmpstr(id, ==, dv_sql_rows_get_text(expected, visited, 0));
            g_assert_true(g_hash_table_add(seen, g_strdup(id)));
            visited++;
        }
        if (next != NULL)
            g_assert_cmpuint(json_array_get_length(page), ==, 7);
        g_free(cursor);
        cursor = g_steal_pointer(&next);
        pages++;
        g_assert_cmpuint(pages, <=, 200);
    } while (cursor != NULL);
    g_assert_cmpuint(visited, ==, 1000);
    g_assert_cmpuint(pages, ==, (1000 + 6) / 7);
    g_assert_cmpuint(g_hash_table_size(seen), ==, 1000);

    /* The limit is clamped, not refused. */
    {
        g_autoptr(JsonArray) page = dv_store_list(fx->store, &dv_table_vms, NULL, 0, 100000, NULL, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(page), ==, DV_PAGE_MAX);
    }
    g_free(ctx.hosts[0]);
    g_free(ctx.hosts[1]);
}

static void
test_paging_descending(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSqlRows) expected = NULL;
    g_autofree char *cursor = NULL;
    guint visited = 0;

    /* jobs list newest first; created_at repeats, so id breaks ties. */
    for (guint i = 0; i < 50; i++) {
        g_autoptr(JsonObject) job = json_object_new();
        g_autofree char *id = g_uuid_string_random();
        json_object_set_string_member(job, "id", id);
        json_object_set_string_member(job, "kind", "vm.create");
        json_object_set_string_member(job, "state", "queued");
        json_object_set_int_member(job, "progress", 0);
        json_object_set_boolean_member(job, "cancel_requested", FALSE);
        json_object_set_int_member(job, "attempts", 0);
        json_object_set_int_member(job, "created_at", 1000 + i / 3);
        json_object_set_int_member(job, "updated_at", 1000);
        g_assert_true(dv_store_insert(fx->store, &dv_table_jobs, job, &error));
        g_assert_no_error(error);
    }
    expected = dv_db_query(dv_store_get_db(fx->store),
                           "SELECT id FROM jobs ORDER BY created_at DESC, id DESC", DV_SQL_NO_ARGS, &error);
    g_assert_no_error(error);
    do {
        g_autofree char *next = NULL;
        g_autoptr(JsonArray) page = dv_store_list(fx->store, &dv_table_jobs, NULL, 0, 4, cursor, &next, &error);
        g_assert_no_error(error);
        for (guint i = 0; i < json_array_get_length(page); i++) {
            JsonObject *job = json_array_get_object_element(page, i);
            g_assert_cmpstr(json_object_get_string_member(job, "id"), ==,
                            dv_sql_rows_get_text(expected, visited, 0));
            g_assert_false(json_object_get_boolean_member(job, "cancel_requested"));
            visited++;
        }
        g_free(cursor);
        cursor = g_steal_pointer(&next);
    } while (cursor != NULL);
    g_assert_cmpuint(visited, ==, 50);
}

/* Housekeeping: delete by a less-than filter, never a whole table. */
static void
test_delete_matching(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    DvFilter old[] = { { "state", DV_FILTER_EQ, "succeeded" }, { "finished_at", DV_FILTER_LESS, "1500" } };
    DvFilter bad[] = { { "state", DV_FILTER_LESS, "x" } };
    gint64 n;

    for (guint i = 0; i < 20; i++) {
        g_autoptr(JsonObject) job = json_object_new();
        g_autofree char *id = g_uuid_string_random();
        json_object_set_string_member(job, "id", id);
        json_object_set_string_member(job, "kind", "vm.create");
        json_object_set_string_member(job, "state", i % 2 == 0 ? "succeeded" : "running");
        json_object_set_int_member(job, "progress", 0);
        json_object_set_boolean_member(job, "cancel_requested", FALSE);
        json_object_set_int_member(job, "attempts", 0);
        json_object_set_int_member(job, "created_at", 1000);
        json_object_set_int_member(job, "updated_at", 1000);
        json_object_set_int_member(job, "finished_at", 1000 + 100 * i);
        g_assert_true(dv_store_insert(fx->store, &dv_table_jobs, job, &error));
    }
    /* succeeded (even i) with finished_at < 1500: i = 0, 2, 4 */
    n = dv_store_delete_matching(fx->store, &dv_table_jobs, old, G_N_ELEMENTS(old), &error);
    g_assert_no_error(error);
    g_assert_cmpint(n, ==, 3);
    g_assert_cmpint(dv_store_count(fx->store, &dv_table_jobs, NULL, 0, &error), ==, 17);
    g_assert_cmpint(dv_store_delete_matching(fx->store, &dv_table_jobs, NULL, 0, &error), ==, -1);
    g_assert_error(error, DV_ERROR, DV_ERROR_INTERNAL);
    g_clear_error(&error);
    g_assert_cmpint(dv_store_delete_matching(fx->store, &dv_table_jobs, bad, 1, &error), ==, -1);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
    g_assert_cmpint(dv_store_count(fx->store, &dv_table_jobs, NULL, 0, &error), ==, 17);
}

static guint
list_names(DvStore *store, const DvFilter *filters, guint n, GPtrArray *ret_names)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonArray) page = dv_store_list(store, &dv_table_vms, filters, n, DV_PAGE_MAX, NULL, NULL, &error);
    gint64 count;

    g_assert_no_error(error);
    for (guint i = 0; ret_names != NULL && i < json_array_get_length(page); i++)
        g_ptr_array_add(ret_names, g_strdup(json_object_get_string_member(
                                       json_array_get_object_element(page, i), "name")));
    count = dv_store_count(store, &dv_table_vms, filters, n, &error);
    g_assert_no_error(error);
    g_assert_cmpint(count, ==, json_array_get_length(page));
    return json_array_get_length(page);
}

static void
assert_names(GPtrArray *names, const char *const *expected)
{
    g_assert_cmpuint(names->len, ==, g_strv_length((char **)expected));
    for (guint i = 0; i < names->len; i++)
        g_assert_cmpstr(g_ptr_array_index(names, i), ==, expected[i]);
    g_ptr_array_set_size(names, 0);
}

static void
test_filters(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *h1 = insert_host(fx->store, "h1");
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *const vm_names[] = { "a%b", "a%bc", "a_b", "axb", "ab", "A%b", "b%", NULL };
    g_autoptr(JsonObject) tmpl = json_object_new();
    g_autofree char *tmpl_id = g_uuid_string_random();

    json_object_set_string_member(tmpl, "id", tmpl_id);
    json_object_set_string_member(tmpl, "name", "t1");
    json_object_set_int_member(tmpl, "vcpus", 1);
    json_object_set_int_member(tmpl, "memory_mib", 512);
    json_object_set_int_member(tmpl, "generation", 2);
    json_object_set_boolean_member(tmpl, "secure_boot", TRUE);
    json_object_set_int_member(tmpl, "created_at", 1);
    g_assert_true(dv_store_insert(fx->store, &dv_table_templates, tmpl, &error));
    g_assert_no_error(error);

    for (guint i = 0; vm_names[i] != NULL; i++) {
        g_autoptr(JsonObject) vm = make_vm(h1, vm_names[i]);
        json_object_set_string_member(vm, "state", i % 2 == 0 ? "running" : "shutoff");
        json_object_set_int_member(vm, "generation", i < 3 ? 2 : 1);
        if (i < 2)
            json_object_set_string_member(vm, "template_id", tmpl_id);
        g_assert_true(dv_store_insert(fx->store, &dv_table_vms, vm, &error));
        g_assert_no_error(error);
    }

    {
        /* '%' and '_' are plain characters, and the match is case-sensitive. */
        const DvFilter f[] = { { "name", DV_FILTER_PREFIX, "a%" } };
        const char *const want[] = { "a%b", "a%bc", NULL };
        list_names(fx->store, f, 1, names);
        assert_names(names, want);
    }
    {
        const DvFilter f[] = { { "name", DV_FILTER_PREFIX, "a_" } };
        const char *const want[] = { "a_b", NULL };
        list_names(fx->store, f, 1, names);
        assert_names(names, want);
    }
    {
        const DvFilter f[] = { { "name", DV_FILTER_PREFIX, "" } };
        g_assert_cmpuint(list_names(fx->store, f, 1, NULL), ==, 7);
    }
    {
        const DvFilter f[] = { { "state", DV_FILTER_EQ, "running" }, { "name", DV_FILTER_PREFIX, "a" } };
        g_assert_cmpuint(list_names(fx->store, f, 2, NULL), ==, 3); /* a%b a_b ab */
    }
    {
        const DvFilter f[] = { { "generation", DV_FILTER_EQ, "2" } };
        g_assert_cmpuint(list_names(fx->store, f, 1, NULL), ==, 3);
    }
    {
        const DvFilter f[] = { { "template_id", DV_FILTER_IS_NULL, NULL } };
        g_assert_cmpuint(list_names(fx->store, f, 1, NULL), ==, 5);
    }
    {
        const DvFilter f[] = { { "template_id", DV_FILTER_IS_NULL, "false" } };
        const char *const want[] = { "a%b", "a%bc", NULL };
        list_names(fx->store, f, 1, names);
        assert_names(names, want);
    }
    {
        const DvFilter f[] = { { "template_id", DV_FILTER_EQ, tmpl_id } };
        g_assert_cmpuint(list_names(fx->store, f, 1, NULL), ==, 2);
    }
    {
        const DvFilter f[] = { { "generation", DV_FILTER_EQ, "two" } };
        g_assert_null(dv_store_list(fx->store, &dv_table_vms, f, 1, 10, NULL, NULL, &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_assert_cmpstr(dv_error_get_field(error), ==, "generation");
        g_clear_error(&error);
    }
    /* A BOOL column filter. */
    {
        g_autoptr(JsonObject) net = json_object_new();
        g_autofree char *net_id = g_uuid_string_random();
        g_autoptr(JsonArray) page = NULL;
        const DvFilter on[] = { { "active", DV_FILTER_EQ, "true" } };
        const DvFilter off[] = { { "active", DV_FILTER_EQ, "false" } };
        json_object_set_string_member(net, "id", net_id);
        json_object_set_string_member(net, "host_id", h1);
        json_object_set_string_member(net, "name", "n1");
        json_object_set_boolean_member(net, "active", TRUE);
        g_assert_true(dv_store_insert(fx->store, &dv_table_networks, net, &error));
        g_assert_no_error(error);
        page = dv_store_list(fx->store, &dv_table_networks, on, 1, 10, NULL, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(page), ==, 1);
        g_assert_cmpint(dv_store_count(fx->store, &dv_table_networks, off, 1, &error), ==, 0);
        g_assert_no_error(error);
    }
}

static void
test_bad_cursor(Fixture *fx, gconstpointer data)
{
    const char *const bad[] = {
        "!!!",
        "bm90anNvbg",           /* "notjson" */
        "WyJ4Il0",              /* ["x"] */
        "WzEsImlkIl0",          /* [1,"id"]: an int where the order column is text */
        "eyJhIjoxfQ",           /* {"a":1} */
        "W1tbW1tbXV1dXV1dXQ",   /* deep nesting */
        "",
        NULL,
    };
    g_autoptr(GError) error = NULL;
    g_autofree char *host = insert_host(fx->store, "h1");
    g_autofree char *next = NULL;
    g_autoptr(JsonArray) ok = NULL;

    for (guint i = 0; bad[i] != NULL; i++) {
        g_autoptr(JsonArray) page = dv_store_list(fx->store, &dv_table_hosts, NULL, 0, 10, bad[i], NULL, &error);
        g_assert_null(page);
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_assert_cmpstr(dv_error_get_field(error), ==, "cursor");
        g_clear_error(&error);
    }
    /* A real cursor still works. */
    g_free(insert_host(fx->store, "h2"));
    ok = dv_store_list(fx->store, &dv_table_hosts, NULL, 0, 1, NULL, &next, &error);
    g_assert_no_error(error);
    g_assert_nonnull(next);
    g_clear_pointer(&ok, json_array_unref);
    ok = dv_store_list(fx->store, &dv_table_hosts, NULL, 0, 1, next, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(ok, 0), "name"), ==, "h2");
}

static void
test_not_filterable(Fixture *fx, gconstpointer data)
{
    const char *const columns[] = { "spec", "description", "nope", NULL };
    g_autoptr(GError) error = NULL;

    for (guint i = 0; columns[i] != NULL; i++) {
        const DvFilter f[] = { { columns[i], DV_FILTER_EQ, "x" } };
        g_assert_null(dv_store_list(fx->store, &dv_table_vms, f, 1, 10, NULL, NULL, &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_assert_cmpstr(dv_error_get_field(error), ==, columns[i]);
        g_clear_error(&error);
        g_assert_cmpint(dv_store_count(fx->store, &dv_table_vms, f, 1, &error), ==, -1);
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_clear_error(&error);
    }
    {
        /* PREFIX needs a text column. */
        const DvFilter f[] = { { "generation", DV_FILTER_PREFIX, "1" } };
        g_assert_null(dv_store_list(fx->store, &dv_table_vms, f, 1, 10, NULL, NULL, &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_assert_cmpstr(dv_error_get_field(error), ==, "generation");
        g_clear_error(&error);
    }
}

/* --- transactions --------------------------------------------------- */

typedef struct {
    const char *name;
    gboolean fail;
    gpointer inner; /* TxnStep* run nested, or NULL */
    gboolean inner_must_fail;
    const char *after_inner;
} TxnStep;

static gboolean
txn_step(DvStore *store, gpointer user_data, GError **error)
{
    TxnStep *step = user_data;
    g_autoptr(JsonObject) host = step->name != NULL ? make_host(step->name) : NULL;

    if (host != NULL && !dv_store_insert(store, &dv_table_hosts, host, error))
        return FALSE;
    if (step->inner != NULL) {
        g_autoptr(GError) inner_error = NULL;
        gboolean ok = dv_store_transaction(store, txn_step, step->inner, &inner_error);
        g_assert_cmpint(ok, ==, !step->inner_must_fail);
        if (step->inner_must_fail)
            g_assert_nonnull(inner_error);
    }
    if (step->after_inner != NULL) {
        g_autoptr(JsonObject) after = make_host(step->after_inner);
        if (!dv_store_insert(store, &dv_table_hosts, after, error))
            return FALSE;
    }
    if (step->fail) {
        g_set_error(error, DV_ERROR, DV_ERROR_CANCELLED, "step %s fails on purpose", step->name);
        return FALSE;
    }
    return TRUE;
}

static gboolean
host_exists(DvStore *store, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) host = dv_store_find(store, &dv_table_hosts, "name", name, &error);
    if (host == NULL)
        g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    return host != NULL;
}

static void
test_transaction(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    /* Rollback leaves nothing, and the function's error is passed on. */
    {
        TxnStep step = { "r1", TRUE, NULL, FALSE, NULL };
        g_assert_false(dv_store_transaction(fx->store, txn_step, &step, &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_CANCELLED);
        g_clear_error(&error);
        g_assert_false(host_exists(fx->store, "r1"));
    }
    /* A failing inner transaction undoes only itself. */
    {
        TxnStep inner = { "n2", TRUE, NULL, FALSE, NULL };
        TxnStep outer = { "n1", FALSE, &inner, TRUE, "n3" };
        g_assert_true(dv_store_transaction(fx->store, txn_step, &outer, &error));
        g_assert_no_error(error);
        g_assert_true(host_exists(fx->store, "n1"));
        g_assert_false(host_exists(fx->store, "n2"));
        g_assert_true(host_exists(fx->store, "n3"));
    }
    /* A statement that fails inside the inner one (a duplicate name) does
     * not poison the outer one (PostgreSQL aborts the transaction). */
    {
        TxnStep inner = { "n1", FALSE, NULL, FALSE, NULL };
        TxnStep outer = { "p1", FALSE, &inner, TRUE, "p2" };
        g_assert_true(dv_store_transaction(fx->store, txn_step, &outer, &error));
        g_assert_no_error(error);
        g_assert_true(host_exists(fx->store, "p1"));
        g_assert_true(host_exists(fx->store, "p2"));
    }
    /* A successful inner one is undone with its failing outer one. */
    {
        TxnStep inner = { "q2", FALSE, NULL, FALSE, NULL };
        TxnStep outer = { "q1", TRUE, &inner, FALSE, NULL };
        g_assert_false(dv_store_transaction(fx->store, txn_step, &outer, &error));
        g_clear_error(&error);
        g_assert_false(host_exists(fx->store, "q1"));
        g_assert_false(host_exists(fx->store, "q2"));
    }
    /* Three levels deep. */
    {
        TxnStep l3 = { "l3", FALSE, NULL, FALSE, NULL };
        TxnStep l2 = { "l2", FALSE, &l3, FALSE, NULL };
        TxnStep l1 = { "l1", FALSE, &l2, FALSE, NULL };
        g_assert_true(dv_store_transaction(fx->store, txn_step, &l1, &error));
        g_assert_no_error(error);
        g_assert_true(host_exists(fx->store, "l3"));
    }
    g_assert_false(dv_db_in_transaction(dv_store_get_db(fx->store)));
    g_assert_cmpint(count_rows(fx->store, &dv_table_hosts), ==, 7); /* n1 n3 p1 p2 l1 l2 l3 */
}

/* --- threads -------------------------------------------------------- */

typedef struct {
    DvStore *store;
    guint thread;
} ThreadCtx;

typedef struct {
    const char *name;
} ThreadTxn;

static gboolean
thread_txn(DvStore *store, gpointer user_data, GError **error)
{
    ThreadTxn *t = user_data;
    g_autoptr(JsonObject) host = make_host(t->name);
    g_autoptr(JsonObject) back = NULL;

    if (!dv_store_insert(store, &dv_table_hosts, host, error))
        return FALSE;
    g_thread_yield();
    back = dv_store_find(store, &dv_table_hosts, "name", t->name, error);
    return back != NULL;
}

static gpointer
thread_main(gpointer data)
{
    ThreadCtx *ctx = data;

    for (guint i = 0; i < 50; i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *name = g_strdup_printf("t%u-%02u", ctx->thread, i);
        ThreadTxn t = { name };
        g_autoptr(JsonArray) page = NULL;

        if (i % 2 == 0) {
            g_assert_true(dv_store_transaction(ctx->store, thread_txn, &t, &error));
        } else {
            g_autoptr(JsonObject) host = make_host(name);
            g_assert_true(dv_store_insert(ctx->store, &dv_table_hosts, host, &error));
        }
        g_assert_no_error(error);
        page = dv_store_list(ctx->store, &dv_table_hosts, NULL, 0, 20, NULL, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(page), >, 0);
    }
    return NULL;
}

static void
test_threads(Fixture *fx, gconstpointer data)
{
    ThreadCtx ctx[4];
    GThread *threads[4];

    for (guint i = 0; i < 4; i++) {
        ctx[i].store = fx->store;
        ctx[i].thread = i;
        threads[i] = g_thread_new("store-test", thread_main, &ctx[i]);
    }
    for (guint i = 0; i < 4; i++)
        g_thread_join(threads[i]);
    g_assert_cmpint(count_rows(fx->store, &dv_table_hosts), ==, 200);
}

/* --- migrations ----------------------------------------------------- */

static DvStore *
open_store(Fixture *fx, DvStoreOpenFlags flags, GError **error)
{
    return dv_store_open(fx->location, flags, error);
}

static guint
schema_version(DvStore *store)
{
    g_autoptr(GError) error = NULL;
    guint v = dv_store_get_schema_version(store, &error);
    g_assert_no_error(error);
    return v;
}

static void
set_extras(const char *n1, const char *s1, const char *n2, const char *s2)
{
    const char *names[] = { n1, n2, NULL };
    const char *sqls[] = { s1, s2, NULL };
    dv_store_set_extra_migrations_for_test(names, sqls);
}

static void
test_migrate_fresh(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonArray) history = NULL;
    JsonObject *first;

    g_assert_cmpuint(dv_store_get_known_version(), >=, 1);
    g_assert_cmpuint(schema_version(fx->store), ==, dv_store_get_known_version());
    history = dv_store_get_schema_history(fx->store, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(json_array_get_length(history), ==, dv_store_get_known_version());
    first = json_array_get_object_element(history, 0);
    g_assert_cmpint(json_object_get_int_member(first, "version"), ==, 1);
    g_assert_cmpstr(json_object_get_string_member(first, "name"), ==, "0001_initial");
    g_assert_cmpuint(strlen(json_object_get_string_member(first, "checksum")), ==, 64);
    g_assert_true(json_object_get_boolean_member(first, "success"));
    g_assert_cmpint(json_object_get_int_member(first, "applied_at"), >, 0);

    /* Opening again changes nothing; CHECK_ONLY is happy. */
    g_clear_pointer(&fx->store, dv_store_free);
    fx->store = open_store(fx, DV_STORE_OPEN_CHECK_ONLY, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(schema_version(fx->store), ==, dv_store_get_known_version());
}

/* Names of test migrations after the built-in ones: next(0) is the first
 * free number, next(1) the one after. */
static guint builtin_known; /* set in main(), before any extras */

static const char *
next_name(guint offset, const char *suffix)
{
    static char buf[4][64];
    static guint slot;
    char *b = buf[slot++ % 4];
    g_snprintf(b, 64, "%04u_%s", builtin_known + 1 + offset, suffix);
    return b;
}

static void
test_migrate_newer(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvStore) store = NULL;
    g_autofree char *expect = NULL;
    guint known = dv_store_get_known_version();

    set_extras(next_name(0, "future"), "CREATE TABLE future_t (id TEXT PRIMARY KEY);", NULL, NULL);
    store = open_store(fx, DV_STORE_OPEN_MIGRATE, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(schema_version(store), ==, known + 1);
    g_clear_pointer(&store, dv_store_free);

    /* This build forgets 0002: the database is from the future. */
    dv_store_set_extra_migrations_for_test(NULL, NULL);
    store = open_store(fx, DV_STORE_OPEN_MIGRATE, &error);
    g_assert_null(store);
    g_assert_error(error, DV_ERROR, DV_ERROR_SCHEMA);
    expect = g_strdup_printf("database schema version %u is newer than this Drover (knows up to %u)",
                             known + 1, known);
    g_assert_nonnull(strstr(error->message, expect));
    g_clear_error(&error);
    store = open_store(fx, 0, &error);
    g_assert_error(error, DV_ERROR, DV_ERROR_SCHEMA);
}

static void
test_migrate_dirty(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvStore) store = NULL;

    set_extras(next_name(0, "half"), "CREATE TABLE half_t (id TEXT PRIMARY KEY);", NULL, NULL);
    store = open_store(fx, DV_STORE_OPEN_MIGRATE, &error);
    g_assert_no_error(error);
    /* What a crash in the middle of a non-transactional step leaves. */
    {
        g_autofree char *sql = g_strdup_printf("UPDATE schema_history SET success = 0 WHERE version = %u",
                                               builtin_known + 1);
        dv_db_exec(dv_store_get_db(store), sql, DV_SQL_NO_ARGS, NULL, &error);
    }
    g_assert_no_error(error);
    g_clear_pointer(&store, dv_store_free);

    store = open_store(fx, DV_STORE_OPEN_MIGRATE, &error);
    g_assert_null(store);
    g_assert_error(error, DV_ERROR, DV_ERROR_SCHEMA);
    {
        g_autofree char *want = g_strdup_printf("migration %s is marked dirty", next_name(0, "half"));
        g_assert_nonnull(strstr(error->message, want));
    }
    g_clear_error(&error);
}

static void
test_migrate_checksum(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvStore) store = NULL;
    const char *v1 = "CREATE TABLE tags (id TEXT PRIMARY KEY);";
    const char *v2 = "CREATE TABLE tags (id TEXT PRIMARY KEY, name TEXT);";
    g_autofree char *sum1 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, v1, -1);
    g_autofree char *sum2 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, v2, -1);

    set_extras(next_name(0, "tags.sql"), v1, NULL, NULL);
    store = open_store(fx, DV_STORE_OPEN_MIGRATE, &error);
    g_assert_no_error(error);
    g_clear_pointer(&store, dv_store_free);

    /* Someone edited an applied migration. */
    set_extras(next_name(0, "tags.sql"), v2, NULL, NULL);
    store = open_store(fx, DV_STORE_OPEN_MIGRATE, &error);
    g_assert_null(store);
    g_assert_error(error, DV_ERROR, DV_ERROR_SCHEMA);
    g_assert_nonnull(strstr(error->message, next_name(0, "tags")));
    g_assert_nonnull(strstr(error->message, sum1));
    g_assert_nonnull(strstr(error->message, sum2));
}

static void
test_migrate_failing(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvStore) store = NULL;
    g_autoptr(DvSqlRows) rows = NULL;
    g_autoptr(JsonArray) history = NULL;
    g_autofree char *host = NULL;
    guint known = dv_store_get_known_version();

    store = open_store(fx, DV_STORE_OPEN_MIGRATE, &error);
    g_assert_no_error(error);
    host = insert_host(store, "survivor");
    g_clear_pointer(&store, dv_store_free);

    /* Half of it would work: the other half must take it back. */
    set_extras(next_name(0, "bad"),
               "CREATE TABLE bad_t (id TEXT PRIMARY KEY);\n"
               "ALTER TABLE hosts ADD COLUMN bad_col TEXT;\n"
               "INSERT INTO no_such_table VALUES (1);\n",
               NULL, NULL);
    store = open_store(fx, DV_STORE_OPEN_MIGRATE, &error);
    g_assert_null(store);
    g_assert_error(error, DV_ERROR, DV_ERROR_SCHEMA);
    {
        g_autofree char *want = g_strdup_printf("migration %s failed", next_name(0, "bad"));
        g_assert_nonnull(strstr(error->message, want));
    }
    g_clear_error(&error);

    /* No trace: previous version, no history row, no table, data intact. */
    store = open_store(fx, 0, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(schema_version(store), ==, known);
    history = dv_store_get_schema_history(store, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(json_array_get_length(history), ==, known);
    rows = dv_db_query(dv_store_get_db(store), "SELECT COUNT(*) FROM bad_t", DV_SQL_NO_ARGS, &error);
    g_assert_null(rows);
    g_assert_nonnull(error);
    g_clear_error(&error);
    g_assert_true(host_exists(store, "survivor"));
    g_clear_pointer(&store, dv_store_free);

    /* A fixed 0002 then applies cleanly. */
    set_extras(next_name(0, "bad"), "CREATE TABLE bad_t (id TEXT PRIMARY KEY);\n"
                           "ALTER TABLE hosts ADD COLUMN bad_col TEXT;\n", NULL, NULL);
    store = open_store(fx, DV_STORE_OPEN_MIGRATE | DV_STORE_OPEN_CHECK_ONLY, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(schema_version(store), ==, known + 1);
}

static void
test_migrate_check_only(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvStore) store = NULL;
    guint known = dv_store_get_known_version();

    /* An empty database has everything pending. */
    store = open_store(fx, DV_STORE_OPEN_CHECK_ONLY, &error);
    g_assert_null(store);
    g_assert_error(error, DV_ERROR, DV_ERROR_SCHEMA);
    g_assert_nonnull(strstr(error->message, "0001_initial"));
    g_clear_error(&error);

    /* Step by step, as an upgrade test would. */
    set_extras(next_name(0, "a"), "CREATE TABLE a_t (id TEXT PRIMARY KEY);",
               next_name(1, "b"), "ALTER TABLE a_t ADD COLUMN b TEXT;");
    store = open_store(fx, 0, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(schema_version(store), ==, 0);
    g_assert_true(dv_store_migrate_to(store, known, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(schema_version(store), ==, known);
    g_assert_true(dv_store_migrate_to(store, known + 1, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(schema_version(store), ==, known + 1);
    g_assert_false(dv_store_migrate_to(store, known + 5, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_SCHEMA);
    g_clear_error(&error);
    g_clear_pointer(&store, dv_store_free);

    store = open_store(fx, DV_STORE_OPEN_CHECK_ONLY, &error);
    g_assert_null(store);
    g_assert_error(error, DV_ERROR, DV_ERROR_SCHEMA);
    g_assert_nonnull(strstr(error->message, next_name(1, "b")));
    g_clear_error(&error);

    store = open_store(fx, DV_STORE_OPEN_MIGRATE, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(schema_version(store), ==, known + 2);
    g_assert_true(dv_store_migrate_to(store, 1, &error)); /* already there: nothing to do */
    g_assert_no_error(error);
}

/* --- PostgreSQL only ------------------------------------------------- */

static void
pg_kill_backend(Fixture *fx)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSqlRows) rows = dv_db_query(dv_store_get_db(fx->store), "SELECT pg_backend_pid()",
                                            DV_SQL_NO_ARGS, &error);
    g_autofree char *sql = NULL;

    g_assert_no_error(error);
    sql = g_strdup_printf("SELECT pg_terminate_backend(%s)", dv_sql_rows_get_text(rows, 0, 0));
    dv_test_pg_admin_exec(sql);
}

static void
test_pg_reconnect(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonArray) page = NULL;
    g_autoptr(JsonObject) host = make_host("h2");
    g_autofree char *h1 = insert_host(fx->store, "h1");

    /* A read after the server dropped us is run again on a new connection. */
    pg_kill_backend(fx);
    page = dv_store_list(fx->store, &dv_table_hosts, NULL, 0, 10, NULL, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(json_array_get_length(page), ==, 1);

    /* A write is not repeated (it may have run): it fails UNAVAILABLE once,
     * and the next call has a connection again. */
    pg_kill_backend(fx);
    if (!dv_store_insert(fx->store, &dv_table_hosts, host, &error)) {
        g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
        g_clear_error(&error);
        g_assert_true(dv_store_insert(fx->store, &dv_table_hosts, host, &error));
    }
    g_assert_no_error(error);
    g_assert_cmpint(count_rows(fx->store, &dv_table_hosts), ==, 2);
}

/* --- backend-independent units -------------------------------------- */

static void
test_placeholders(void)
{
    const struct {
        const char *in;
        const char *out;
    } cases[] = {
        { "SELECT ? , ?", "SELECT $1 , $2" },
        { "SELECT '?', ? FROM t WHERE a = ?", "SELECT '?', $1 FROM t WHERE a = $2" },
        { "SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1" },
        { "SELECT \"odd?col\" FROM t -- what?\nWHERE x = ?", "SELECT \"odd?col\" FROM t -- what?\nWHERE x = $1" },
        { "/* ? */ SELECT ?", "/* ? */ SELECT $1" },
        { "SELECT 'unterminated ?", "SELECT 'unterminated ?" },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *out = dv_db_rewrite_placeholders(cases[i].in);
        g_assert_cmpstr(out, ==, cases[i].out);
    }
}

static void
test_password_hidden(void)
{
    const struct {
        const char *in;
        const char *out;
    } cases[] = {
        { "postgresql://drover:s3cret@db.example:5432/drover", "postgresql://drover@db.example:5432/drover" },
        { "postgres://u:p%40ss@h/db?sslmode=require&password=x", "postgres://u@h/db?sslmode=require" },
        { "postgresql://h/db?password=s3cret", "postgresql://h/db" },
        { "postgresql://u@h/db", "postgresql://u@h/db" },
    };
    g_autoptr(GError) error = NULL;
    g_autoptr(DvDb) db = NULL;

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *out = dv_db_strip_password(cases[i].in);
        g_assert_cmpstr(out, ==, cases[i].out);
    }
    /* Nothing listens on port 1: the error is UNAVAILABLE and secret-free. */
    db = dv_db_open("postgresql://drover:s3cret@127.0.0.1:1/drover?connect_timeout=3", &error);
    g_assert_null(db);
    g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
    g_assert_null(strstr(error->message, "s3cret"));
    g_assert_nonnull(strstr(error->message, "postgresql://drover@127.0.0.1:1/drover"));
}

static void
test_sqlite_unopenable(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvStore) store = dv_store_open("/nonexistent-dir/sub/drover.db", DV_STORE_OPEN_MIGRATE, &error);
    g_assert_null(store);
    g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
}

/* --- speed (run with -m perf) ---------------------------------------- */

static gboolean
fill_many_txn(DvStore *store, gpointer user_data, GError **error)
{
    FillCtx *ctx = user_data;
    g_autoptr(JsonNode) spec = json_from_string(
        "{\"disks\":[{\"pool\":\"default\",\"size_gib\":20,\"bus\":\"virtio\"}],"
        "\"nics\":[{\"network\":\"default\",\"model\":\"virtio\"}],\"boot\":[\"hd\",\"cdrom\"]}", NULL);

    for (guint i = 0; i < ctx->n; i++) {
        g_autofree char *name = g_strdup_printf("vm-%06u", (i * 7919u) % ctx->n);
        g_autoptr(JsonObject) vm = make_vm(ctx->hosts[i % 2], name);
        json_object_set_member(vm, "spec", json_node_copy(spec));
        json_object_set_string_member(vm, "state", i % 3 == 0 ? "running" : "shutoff");
        json_object_set_int_member(vm, "vcpus", 2);
        json_object_set_int_member(vm, "memory_mib", 2048);
        if (!dv_store_insert(store, &dv_table_vms, vm, error))
            return FALSE;
    }
    return TRUE;
}

static gint
cmp_double(gconstpointer a, gconstpointer b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

static void
test_page_speed(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    FillCtx ctx = { fx->store, { insert_host(fx->store, "h1"), insert_host(fx->store, "h2") }, 25000 };
    g_autoptr(GArray) times = g_array_new(FALSE, FALSE, sizeof(double));
    g_autofree char *cursor = NULL;
    const DvFilter running[] = { { "state", DV_FILTER_EQ, "running" } };
    double p99;

    g_assert_true(dv_store_transaction(fx->store, fill_many_txn, &ctx, &error));
    g_assert_no_error(error);
    for (guint pass = 0; pass < 2; pass++) {
        do {
            g_autofree char *next = NULL;
            g_autoptr(JsonArray) page = NULL;
            gint64 start = g_get_monotonic_time();
            double ms;
            page = dv_store_list(fx->store, &dv_table_vms, pass == 0 ? NULL : running, pass, 100,
                                 cursor, &next, &error);
            ms = (g_get_monotonic_time() - start) / 1000.0;
            g_assert_no_error(error);
            g_array_append_val(times, ms);
            g_free(cursor);
            cursor = g_steal_pointer(&next);
        } while (cursor != NULL);
    }
    g_array_sort(times, cmp_double);
    p99 = g_array_index(times, double, (guint)(times->len * 0.99));
    g_test_minimized_result(p99, "p99 of a 100-row page over 25,000 VMs: %.2f ms (%u pages)", p99, times->len);
    g_assert_cmpfloat(p99, <=, 20.0);
    g_free(ctx.hosts[0]);
    g_free(ctx.hosts[1]);
}

/* --- main ----------------------------------------------------------- */

static void
test_pg_missing(gconstpointer data)
{
    if (GPOINTER_TO_INT(data))
        g_test_fail_printf("DV_TEST_PG_URI is not set but services are required (CI=true or "
                           "DV_REQUIRE_SERVICES=1): run under tests/services/with-services");
    else
        g_test_skip("DV_TEST_PG_URI is not set; run under tests/services/with-services");
}

/* insert_all stops at the first refused row; in a transaction nothing
 * of the batch stays. */
static gboolean
insert_all_txn(DvStore *store, gpointer user_data, GError **error)
{
    return dv_store_insert_all(store, &dv_table_hosts, user_data, error);
}

static void
test_insert_all(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) ok = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    g_autoptr(GPtrArray) bad = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);

    g_ptr_array_add(ok, make_host("a1"));
    g_ptr_array_add(ok, make_host("a2"));
    g_assert_true(dv_store_insert_all(fx->store, &dv_table_hosts, ok, &error));
    g_assert_no_error(error);
    g_assert_cmpint(dv_store_count(fx->store, &dv_table_hosts, NULL, 0, NULL), ==, 2);

    /* b1 is new, the second row repeats a1's name, b3 comes after it. */
    g_ptr_array_add(bad, make_host("b1"));
    g_ptr_array_add(bad, make_host("a1"));
    json_object_set_string_member(g_ptr_array_index(bad, 1), "uri", "test:///b2");
    g_ptr_array_add(bad, make_host("b3"));
    g_assert_false(dv_store_transaction(fx->store, insert_all_txn, bad, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "name");
    g_assert_cmpint(dv_store_count(fx->store, &dv_table_hosts, NULL, 0, NULL), ==, 2);
}

static void
add_suite(const char *prefix, DvDbBackend backend)
{
    const struct {
        const char *name;
        void (*setup)(Fixture *, gconstpointer);
        void (*func)(Fixture *, gconstpointer);
    } tests[] = {
        { "crud", fixture_setup, test_crud },
        { "conflict", fixture_setup, test_conflict },
        { "insert-all", fixture_setup, test_insert_all },
        { "fk", fixture_setup, test_fk },
        { "paging", fixture_setup, test_paging },
        { "paging-descending", fixture_setup, test_paging_descending },
        { "delete-matching", fixture_setup, test_delete_matching },
        { "filters", fixture_setup, test_filters },
        { "bad-cursor", fixture_setup, test_bad_cursor },
        { "not-filterable", fixture_setup, test_not_filterable },
        { "transaction", fixture_setup, test_transaction },
        { "threads", fixture_setup, test_threads },
        { "migrate-fresh", fixture_setup, test_migrate_fresh },
        { "migrate-newer", fixture_setup_bare, test_migrate_newer },
        { "migrate-dirty", fixture_setup_bare, test_migrate_dirty },
        { "migrate-checksum", fixture_setup_bare, test_migrate_checksum },
        { "migrate-failing", fixture_setup_bare, test_migrate_failing },
        { "migrate-check-only", fixture_setup_bare, test_migrate_check_only },
    };

    for (guint i = 0; i < G_N_ELEMENTS(tests); i++) {
        g_autofree char *path = g_strdup_printf("/drover/store/%s/%s", prefix, tests[i].name);
        g_test_add(path, Fixture, GINT_TO_POINTER(backend), tests[i].setup, tests[i].func,
                   fixture_teardown);
    }
    if (backend == DV_DB_POSTGRESQL) {
        g_autofree char *path = g_strdup_printf("/drover/store/%s/reconnect", prefix);
        g_test_add(path, Fixture, GINT_TO_POINTER(backend), fixture_setup, test_pg_reconnect,
                   fixture_teardown);
    }
    if (g_test_perf()) {
        g_autofree char *path = g_strdup_printf("/drover/store/%s/page-speed", prefix);
        g_test_add(path, Fixture, GINT_TO_POINTER(backend), fixture_setup, test_page_speed,
                   fixture_teardown);
    }
}

int
main(int argc, char **argv)
{
    builtin_known = dv_store_get_known_version();
    const char *pg_uri = g_getenv("DV_TEST_PG_URI");
    gboolean required = g_strcmp0(g_getenv("CI"), "true") == 0 ||
                        g_strcmp0(g_getenv("DV_REQUIRE_SERVICES"), "1") == 0;

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/drover/store/placeholders", test_placeholders);
    g_test_add_func("/drover/store/password-hidden", test_password_hidden);
    g_test_add_func("/drover/store/sqlite/unopenable", test_sqlite_unopenable);
    add_suite("sqlite", DV_DB_SQLITE);
    if (pg_uri != NULL && pg_uri[0] != '\0')
        add_suite("pg", DV_DB_POSTGRESQL);
    else
        g_test_add_data_func("/drover/store/pg/available", GINT_TO_POINTER(required), test_pg_missing);
    return g_test_run();
}
