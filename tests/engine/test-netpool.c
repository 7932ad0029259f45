#define G_LOG_DOMAIN "DvTestNetPool"

/* Networks and storage pools made through Drover (issue 12 item 7) in the
 * engine on SQLite and PostgreSQL against a test:/// host (its driver
 * defines, starts, stops and undefines networks and pools): made, stopped,
 * started, autostart changed, deleted, the inventory following each job;
 * bad input, a name in use, an overlapping range and a network or pool
 * that VMs use refused naming the field or the VMs, with nothing written.
 * The same on qemu:///system: tests/engine/test-netpool-system.c. */

#include "dv-core.h"
#include "dv-engine.h"
#include "dv-error.h"
#include "dv-hosts.h"
#include "dv-json.h"
#include "dv-test-catalog.h"
#include "dv-test-pg.h"
#include "dv-test-util.h"

#include <string.h>

#define WAIT_MS 30000

typedef struct {
    char *tmpdir;
    char *pg_dbname;
    DvEngine *engine;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autofree char *xml = NULL;
    g_autofree char *body = NULL;
    g_autoptr(JsonObject) job = NULL;

    f->engine = dv_test_engine_on_backend("dv-test-netpool", GPOINTER_TO_INT(data), 2, &f->tmpdir,
                                          &f->pg_dbname);
    /* Two domains (np0, np1) on net1 with their disks in pool1. */
    xml = dv_test_write_host_xml(f->tmpdir, "h1.xml", "np", 2);
    body = g_strdup_printf("{\"name\":\"h1\",\"uri\":\"test://%s\"}", xml);
    job = dv_test_engine_create(f->engine, DV_KIND_HOST, body, WAIT_MS);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    dv_test_engine_on_backend_free(g_steal_pointer(&f->engine), g_steal_pointer(&f->tmpdir),
                                   g_steal_pointer(&f->pg_dbname));
}

static JsonObject *
row_named(Fixture *f, const DvTableDef *def, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonArray) rows = dv_core_list_all(f->engine, def, NULL, NULL, &error);
    g_assert_no_error(error);
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *r = json_array_get_object_element(rows, i);
        if (g_strcmp0(dv_json_get_string(r, "name", NULL), name) == 0)
            return json_object_ref(r);
    }
    return NULL;
}

/* Networks and pools are addressed by id, or by a name no other host's
 * network or pool has (names are unique per host only). */
static const char *
id_of(Fixture *f, const DvTableDef *def, const char *name)
{
    g_autoptr(JsonObject) r = row_named(f, def, name);
    g_assert_nonnull(r);
    return g_intern_string(dv_json_get_string(r, "id", ""));
}

#define NET(n) id_of(f, &dv_table_networks, n)
#define POOL(n) id_of(f, &dv_table_pools, n)

static JsonObject *
create(Fixture *f, const char *what, const char *json)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    g_autoptr(JsonObject) job =
        dv_engine_netpool_create(f->engine, what, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    return dv_test_engine_run(f->engine, job, WAIT_MS);
}

static JsonObject *
action(Fixture *f, const char *what, const char *ref, const char *act, const char *json)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = json != NULL ? dv_test_json_object(json) : NULL;
    g_autoptr(JsonObject) job =
        dv_engine_netpool_action(f->engine, what, ref, act, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    return dv_test_engine_run(f->engine, job, WAIT_MS);
}

/* A refusal names @field (NULL: none) and @in_message, submits no job and
 * changes no network or pool row. */
static void
refused(Fixture *f, const char *what, const char *ref, const char *act, const char *json,
        DvErrorCode code, const char *field, const char *in_message)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = json != NULL ? dv_test_json_object(json) : NULL;
    g_autoptr(JsonObject) job = NULL;
    gint64 jobs = dv_test_engine_count(f->engine, &dv_table_jobs);
    gint64 nets = dv_test_engine_count(f->engine, &dv_table_networks);
    gint64 pools = dv_test_engine_count(f->engine, &dv_table_pools);

    if (ref == NULL)
        job = dv_engine_netpool_create(f->engine, what, body, DV_ACTOR_NAMED("tester"), &error);
    else
        job = dv_engine_netpool_action(f->engine, what, ref, act, body, DV_ACTOR_NAMED("tester"),
                                       &error);
    g_assert_null(job);
    g_assert_error(error, DV_ERROR, (gint)code);
    g_test_message("refused: %s", error->message);
    g_assert_cmpstr(dv_error_get_field(error), ==, field);
    g_assert_nonnull(strstr(error->message, in_message));
    g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_jobs), ==, jobs);
    g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_networks), ==, nets);
    g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_pools), ==, pools);
}

static void
test_network(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) row = NULL;
    JsonObject *result;

    done = create(f, "network",
                  "{\"name\":\"nat1\",\"host\":\"h1\",\"address\":\"10.30.0.1/24\","
                  "\"dhcp_start\":\"10.30.0.100\",\"dhcp_end\":\"10.30.0.199\"}");
    result = dv_json_get_object(done, "result");
    g_assert_true(dv_json_get_bool(result, "active", FALSE));
    g_assert_true(dv_json_get_bool(result, "autostart", FALSE));
    row = row_named(f, &dv_table_networks, "nat1");
    g_assert_nonnull(row);
    g_assert_true(dv_json_get_bool(row, "active", FALSE));
    g_assert_cmpstr(dv_json_get_string(result, "id", ""), ==, dv_json_get_string(row, "id", "x"));

    /* Stop, start, autostart off: each job leaves the row current. */
    g_clear_pointer(&done, json_object_unref);
    done = action(f, "network", NET("nat1"), "stop", NULL);
    g_clear_pointer(&row, json_object_unref);
    row = row_named(f, &dv_table_networks, "nat1");
    g_assert_false(dv_json_get_bool(row, "active", TRUE));
    g_clear_pointer(&done, json_object_unref);
    done = action(f, "network", NET("nat1"), "stop", NULL); /* stopped already: done */
    g_clear_pointer(&done, json_object_unref);
    done = action(f, "network", NET("nat1"), "start", NULL);
    g_clear_pointer(&row, json_object_unref);
    row = row_named(f, &dv_table_networks, "nat1");
    g_assert_true(dv_json_get_bool(row, "active", FALSE));
    g_clear_pointer(&done, json_object_unref);
    done = action(f, "network", NET("nat1"), "change", "{\"autostart\":false}");
    g_assert_false(dv_json_get_bool(dv_json_get_object(done, "result"), "autostart", TRUE));
    /* By its name, which no other host's network has. */
    g_clear_pointer(&done, json_object_unref);
    done = action(f, "network", "nat1", "stop", NULL);
    g_clear_pointer(&row, json_object_unref);
    row = row_named(f, &dv_table_networks, "nat1");
    g_assert_false(dv_json_get_bool(row, "active", TRUE));
    g_clear_pointer(&done, json_object_unref);
    done = action(f, "network", "nat1", "start", NULL);

    /* Isolated and routed ones beside it; a bridge to a host bridge. */
    g_clear_pointer(&done, json_object_unref);
    done = create(f, "network",
                  "{\"name\":\"iso1\",\"host\":\"h1\",\"forward\":\"isolated\","
                  "\"address\":\"10.31.0.1/24\",\"start\":false}");
    g_assert_false(dv_json_get_bool(dv_json_get_object(done, "result"), "active", TRUE));
    g_clear_pointer(&done, json_object_unref);
    done = create(f, "network",
                  "{\"name\":\"rt1\",\"host\":\"h1\",\"forward\":\"route\",\"address\":\"10.32.0.1/16\"}");
    g_clear_pointer(&done, json_object_unref);
    done = create(f, "network", "{\"name\":\"br1\",\"host\":\"h1\",\"forward\":\"bridge\",\"bridge\":\"br0\"}");

    /* Refusals, nothing written. */
    refused(f, "network", NULL, NULL,
            "{\"name\":\"ov1\",\"host\":\"h1\",\"address\":\"10.30.0.129/25\"}",
            DV_ERROR_INVALID_ARGUMENT, "address", "overlaps network nat1");
    refused(f, "network", NULL, NULL,
            "{\"name\":\"ov2\",\"host\":\"h1\",\"address\":\"10.0.0.1/8\"}",
            DV_ERROR_INVALID_ARGUMENT, "address", "overlaps network");
    refused(f, "network", NULL, NULL, "{\"name\":\"nat1\",\"host\":\"h1\",\"address\":\"10.40.0.1/24\"}",
            DV_ERROR_CONFLICT, "name", "already has a network nat1");
    refused(f, "network", NULL, NULL, "{\"name\":\"x1\",\"host\":\"h1\",\"address\":\"10.40.0.0/24\"}",
            DV_ERROR_INVALID_ARGUMENT, "address", "not a host address");
    refused(f, "network", NULL, NULL, "{\"name\":\"x1\",\"host\":\"h1\",\"address\":\"10.40.0.1\"}",
            DV_ERROR_INVALID_ARGUMENT, "address", "prefix");
    refused(f, "network", NULL, NULL,
            "{\"name\":\"x1\",\"host\":\"h1\",\"address\":\"10.40.0.1/24\",\"dhcp_start\":\"10.41.0.5\","
            "\"dhcp_end\":\"10.40.0.9\"}",
            DV_ERROR_INVALID_ARGUMENT, "dhcp_start", "inside 10.40.0.1/24");
    refused(f, "network", NULL, NULL,
            "{\"name\":\"x1\",\"host\":\"h1\",\"address\":\"10.40.0.1/24\",\"dhcp_start\":\"10.40.0.9\","
            "\"dhcp_end\":\"10.40.0.5\"}",
            DV_ERROR_INVALID_ARGUMENT, "dhcp_end", "must not come before");
    refused(f, "network", NULL, NULL, "{\"name\":\"x1\",\"host\":\"h1\",\"forward\":\"bridge\"}",
            DV_ERROR_INVALID_ARGUMENT, "bridge", "required with forward bridge");
    refused(f, "network", NULL, NULL, "{\"name\":\"x1\",\"host\":\"h1\",\"forward\":\"tunnel\"}",
            DV_ERROR_INVALID_ARGUMENT, "forward", "must be nat");
    refused(f, "network", NULL, NULL, "{\"name\":\"x1\",\"host\":\"h1\"}",
            DV_ERROR_INVALID_ARGUMENT, "address", "required");
    refused(f, "network", NULL, NULL, "{\"name\":\"x y\",\"host\":\"h1\",\"address\":\"10.40.0.1/24\"}",
            DV_ERROR_INVALID_ARGUMENT, "name", "may hold only");
    refused(f, "network", NULL, NULL, "{\"name\":\"x1\",\"host\":\"nohost\",\"address\":\"10.40.0.1/24\"}",
            DV_ERROR_NOT_FOUND, "host", "nohost");
    refused(f, "network", NET("nat1"), "change", "{\"autostart\":\"yes\"}", DV_ERROR_INVALID_ARGUMENT,
            "autostart", "autostart");
    /* net1 carries np0's and np1's NICs. */
    refused(f, "network", NET("net1"), "delete", NULL, DV_ERROR_CONFLICT, NULL, "used by VMs: np0, np1");

    /* Delete: gone from the host and the inventory. */
    g_clear_pointer(&done, json_object_unref);
    done = action(f, "network", NET("nat1"), "delete", NULL);
    g_clear_pointer(&row, json_object_unref);
    row = row_named(f, &dv_table_networks, "nat1");
    g_assert_null(row);
    /* Its range is free again. */
    g_clear_pointer(&done, json_object_unref);
    done = create(f, "network", "{\"name\":\"nat2\",\"host\":\"h1\",\"address\":\"10.30.0.129/25\"}");
}

static void
test_pool(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) row = NULL;
    JsonObject *result;

    done = create(f, "pool", "{\"name\":\"dirp\",\"host\":\"h1\",\"path\":\"/srv/dirp\"}");
    result = dv_json_get_object(done, "result");
    g_assert_true(dv_json_get_bool(result, "active", FALSE));
    g_assert_true(dv_json_get_bool(result, "autostart", FALSE));
    row = row_named(f, &dv_table_pools, "dirp");
    g_assert_nonnull(row);
    g_assert_cmpstr(dv_json_get_string(row, "type", ""), ==, "dir");
    g_assert_cmpstr(dv_json_get_string(row, "path", ""), ==, "/srv/dirp");
    g_assert_cmpstr(dv_json_get_string(row, "state", ""), ==, "running");

    g_clear_pointer(&done, json_object_unref);
    done = action(f, "pool", POOL("dirp"), "stop", NULL);
    g_clear_pointer(&row, json_object_unref);
    row = row_named(f, &dv_table_pools, "dirp");
    g_assert_cmpstr(dv_json_get_string(row, "state", ""), ==, "inactive");
    g_clear_pointer(&done, json_object_unref);
    done = action(f, "pool", POOL("dirp"), "start", NULL);
    g_clear_pointer(&row, json_object_unref);
    row = row_named(f, &dv_table_pools, "dirp");
    g_assert_cmpstr(dv_json_get_string(row, "state", ""), ==, "running");
    g_clear_pointer(&done, json_object_unref);
    done = action(f, "pool", POOL("dirp"), "change", "{\"autostart\":false}");
    g_assert_false(dv_json_get_bool(dv_json_get_object(done, "result"), "autostart", TRUE));

    /* netfs (NFS, CIFS) and logical: defined without starting (no server
     * or volume group here); their definitions are what libvirt keeps. */
    g_clear_pointer(&done, json_object_unref);
    done = create(f, "pool",
                  "{\"name\":\"nfsp\",\"host\":\"h1\",\"type\":\"netfs\",\"path\":\"/mnt/nfsp\","
                  "\"source_host\":\"nas.example\",\"source_path\":\"/export/vms\",\"start\":false}");
    g_clear_pointer(&row, json_object_unref);
    row = row_named(f, &dv_table_pools, "nfsp");
    g_assert_cmpstr(dv_json_get_string(row, "type", ""), ==, "netfs");
    g_clear_pointer(&done, json_object_unref);
    done = create(f, "pool",
                  "{\"name\":\"lvp\",\"host\":\"h1\",\"type\":\"logical\",\"source_name\":\"vg0\","
                  "\"start\":false,\"autostart\":false}");
    g_clear_pointer(&row, json_object_unref);
    row = row_named(f, &dv_table_pools, "lvp");
    g_assert_cmpstr(dv_json_get_string(row, "path", ""), ==, "/dev/vg0");

    refused(f, "pool", NULL, NULL, "{\"name\":\"dirp\",\"host\":\"h1\",\"path\":\"/srv/x\"}",
            DV_ERROR_CONFLICT, "name", "already has a storage pool dirp");
    refused(f, "pool", NULL, NULL, "{\"name\":\"p2\",\"host\":\"h1\",\"path\":\"srv/x\"}",
            DV_ERROR_INVALID_ARGUMENT, "path", "absolute");
    refused(f, "pool", NULL, NULL, "{\"name\":\"p2\",\"host\":\"h1\",\"path\":\"/srv/../etc\"}",
            DV_ERROR_INVALID_ARGUMENT, "path", "no '..'");
    refused(f, "pool", NULL, NULL, "{\"name\":\"p2\",\"host\":\"h1\",\"type\":\"iscsi\",\"path\":\"/x\"}",
            DV_ERROR_INVALID_ARGUMENT, "type", "must be dir, netfs or logical");
    refused(f, "pool", NULL, NULL,
            "{\"name\":\"p2\",\"host\":\"h1\",\"type\":\"netfs\",\"path\":\"/mnt/x\",\"source_path\":\"/e\"}",
            DV_ERROR_INVALID_ARGUMENT, "source_host", "source_host");
    refused(f, "pool", NULL, NULL,
            "{\"name\":\"p2\",\"host\":\"h1\",\"type\":\"netfs\",\"path\":\"/mnt/x\",\"source_host\":\"n\","
            "\"source_path\":\"/e\",\"source_format\":\"glusterfs\"}",
            DV_ERROR_INVALID_ARGUMENT, "source_format", "nfs or cifs");
    refused(f, "pool", NULL, NULL, "{\"name\":\"p2\",\"host\":\"h1\",\"path\":\"/x\",\"source_host\":\"n\"}",
            DV_ERROR_INVALID_ARGUMENT, "source_host", "only for a netfs pool");
    refused(f, "pool", NULL, NULL,
            "{\"name\":\"p2\",\"host\":\"h1\",\"type\":\"logical\",\"path\":\"/dev/other\"}",
            DV_ERROR_INVALID_ARGUMENT, "path", "/dev/p2");
    /* pool1 holds np0's and np1's disks. */
    refused(f, "pool", POOL("pool1"), "delete", NULL, DV_ERROR_CONFLICT, NULL, "used by VMs: np0, np1");

    g_clear_pointer(&done, json_object_unref);
    done = action(f, "pool", POOL("dirp"), "delete", NULL);
    g_assert_true(dv_json_get_bool(dv_json_get_object(done, "result"), "deleted", FALSE));
    g_clear_pointer(&row, json_object_unref);
    row = row_named(f, &dv_table_pools, "dirp");
    g_assert_null(row);
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
    add_both("/drover/engine/netpool/network", test_network);
    add_both("/drover/engine/netpool/pool", test_pool);
    return g_test_run();
}
