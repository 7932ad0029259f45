#define G_LOG_DOMAIN "DvTestScope"

/* Access control wired into the engine (docs/ACCESS.md, "Wiring"): lists
 * filtered inside the query by the actor's scope and paged through what
 * it sees, an object outside the scope not found, storage data left out
 * for a delegated administrator, the VM's owner, and quotas reserved in
 * the transaction that accepts the create (50 parallel creates against
 * 10) and given back on delete.  On SQLite and PostgreSQL; the creates run
 * against libvirt's test:/// driver. */

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
    f->engine = dv_test_engine_on_backend("dv-test-scope", GPOINTER_TO_INT(data), 4, &f->tmpdir,
                                          &f->pg_dbname);
    if (f->engine != NULL)
        f->store = dv_core(f->engine)->store;
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    dv_test_engine_on_backend_free(g_steal_pointer(&f->engine), g_steal_pointer(&f->tmpdir),
                                   g_steal_pointer(&f->pg_dbname));
}

/* --- the tree -------------------------------------------------------------
 *
 *   root ─ prod ─ web      hosts h-root, h-prod, h-web, h-dev, one per group
 *        └ dev             VMs: 3 on h-root, 7 on h-prod, 5 on h-web, 6 on h-dev
 */

static void
exec_sql(Fixture *f, const char *sql, const DvSqlParam *p, guint n)
{
    dv_test_scope_exec(f->store, sql, p, n);
}

/* A VM whose spec carries storage data (a disk in a pool). */
static void
add_vm(Fixture *f, const char *name, const char *host)
{
    g_autofree char *id = g_uuid_string_random();
    dv_test_scope_add_vm(f->store, id, name, host, NULL, "drover",
                         "{\"disks\": [{\"pool\": \"pool1\", \"path\": "
                         "\"/var/lib/x.qcow2\"}], \"networks\": []}");
}

static char *
add_user(Fixture *f, const char *name)
{
    return dv_test_scope_add_user(dv_core(f->engine)->auth, name);
}

/* A binding made by the engine itself; @quota_vms < 0: none. */
static char *
bind(Fixture *f, const char *user_id, const char *role, const char *scope_id, gint64 quota_vms)
{
    return dv_test_scope_bind(f->store, "user", user_id, role,
                              scope_id != NULL ? "host_group" : "global", scope_id, "allow",
                              quota_vms);
}

/* An actor for user @user_id carrying its resolved context (owned). */
static DvActor *
actor_for(Fixture *f, const char *user_id, const char *name)
{
    return dv_test_scope_actor(f->store, user_id, name);
}

static void
make_tree(Fixture *f)
{
    static const struct {
        const char *host;
        guint n;
    } vms[] = { { "h-root", 3 }, { "h-prod", 7 }, { "h-web", 5 }, { "h-dev", 6 } };

    dv_test_scope_add_group(f->store, "hg-root", NULL);
    dv_test_scope_add_group(f->store, "hg-prod", "hg-root");
    dv_test_scope_add_group(f->store, "hg-web", "hg-prod");
    dv_test_scope_add_group(f->store, "hg-dev", "hg-root");
    dv_test_scope_add_host(f->store, "h-root", "hg-root");
    dv_test_scope_add_host(f->store, "h-prod", "hg-prod");
    dv_test_scope_add_host(f->store, "h-web", "hg-web");
    dv_test_scope_add_host(f->store, "h-dev", "hg-dev");
    for (gsize i = 0; i < G_N_ELEMENTS(vms); i++) {
        for (guint k = 0; k < vms[i].n; k++) {
            g_autofree char *name = g_strdup_printf("%s-vm%u", vms[i].host, k);
            add_vm(f, name, vms[i].host);
        }
    }
}

/* Every VM @actor lists, page by page with @limit: "name;name;..." in
 * list order; @ret_pages counts the pages. */
static char *
list_all_names(Fixture *f, const DvActor *actor, DvKind kind, guint limit, guint *ret_pages)
{
    g_autoptr(GString) names = g_string_new(NULL);
    g_autofree char *cursor = NULL;
    guint pages = 0;

    do {
        g_autoptr(GError) error = NULL;
        g_autoptr(GHashTable) q = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
        g_autoptr(JsonObject) page = NULL;
        JsonArray *items;

        g_hash_table_insert(q, "limit", g_strdup_printf("%u", limit));
        if (cursor != NULL)
            g_hash_table_insert(q, "cursor", g_strdup(cursor));
        page = dv_engine_list_for(f->engine, actor, kind, q, &error);
        g_assert_no_error(error);
        g_assert_nonnull(page);
        items = dv_json_get_array(page, "items");
        g_assert_cmpuint(json_array_get_length(items), <=, limit);
        for (guint i = 0; i < json_array_get_length(items); i++) {
            JsonObject *o = json_array_get_object_element(items, i);
            if (names->len > 0)
                g_string_append_c(names, ';');
            g_string_append(names, dv_json_get_string(o, "name", "?"));
        }
        g_free(cursor);
        cursor = g_strdup(dv_json_get_string(page, "next_cursor", NULL));
        /* A page is full unless it is the last. */
        if (cursor != NULL)
            g_assert_cmpuint(json_array_get_length(items), ==, limit);
        pages++;
        g_assert_cmpuint(pages, <, 100);
    } while (cursor != NULL);
    *ret_pages = pages;
    return g_string_free(g_steal_pointer(&names), FALSE);
}

static gint
compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "a;b;c" of the VMs of these hosts, in the list order (by name). */
static char *
expected_names(const char *const *hosts, const guint *counts)
{
    g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GString) out = g_string_new(NULL);
    for (guint i = 0; hosts[i] != NULL; i++)
        for (guint k = 0; k < counts[i]; k++)
            g_ptr_array_add(all, g_strdup_printf("%s-vm%u", hosts[i], k));
    g_ptr_array_sort(all, compare_names);
    for (guint i = 0; i < all->len; i++) {
        if (i > 0)
            g_string_append_c(out, ';');
        g_string_append(out, g_ptr_array_index(all, i));
    }
    return g_string_free(g_steal_pointer(&out), FALSE);
}

/* --- lists ------------------------------------------------------------------ */

static void
test_list_paging(Fixture *f, gconstpointer data)
{
    g_autofree char *admin_id = NULL;
    g_autofree char *dele_id = NULL;
    g_autofree char *dev_id = NULL;
    g_autoptr(DvActor) admin = NULL;
    g_autoptr(DvActor) dele = NULL;
    g_autoptr(DvActor) dev = NULL;
    static const char *const prod_hosts[] = { "h-prod", "h-web", NULL };
    static const guint prod_counts[] = { 7, 5 };
    static const char *const all_hosts[] = { "h-root", "h-prod", "h-web", "h-dev", NULL };
    static const guint all_counts[] = { 3, 7, 5, 6 };
    guint pages = 0;

    if (f->engine == NULL)
        return;
    make_tree(f);
    admin_id = add_user(f, "ada");
    dele_id = add_user(f, "dele");
    dev_id = add_user(f, "devon");
    g_free(bind(f, admin_id, "administrator", NULL, -1));
    g_free(bind(f, dele_id, "delegated-administrator", "hg-prod", -1));
    g_free(bind(f, dev_id, "read-only-administrator", "hg-dev", -1));
    admin = actor_for(f, admin_id, "ada");
    dele = actor_for(f, dele_id, "dele");
    dev = actor_for(f, dev_id, "devon");

    /* The delegated administrator of prod: prod and web, 12 VMs, paged
     * by 5 through exactly those (5, 5, 2), none twice, none missing. */
    {
        g_autofree char *want = expected_names(prod_hosts, prod_counts);
        g_autofree char *got = list_all_names(f, dele, DV_KIND_VM, 5, &pages);
        g_assert_cmpstr(got, ==, want);
        g_assert_cmpuint(pages, ==, 3);
    }
    /* A page size that divides the count: the last full page says so. */
    {
        g_autofree char *want = expected_names(prod_hosts, prod_counts);
        g_autofree char *got = list_all_names(f, dele, DV_KIND_VM, 4, &pages);
        g_assert_cmpstr(got, ==, want);
        g_assert_cmpuint(pages, ==, 3);
    }
    /* The administrator: all 21; an actor without a context too. */
    {
        g_autofree char *want = expected_names(all_hosts, all_counts);
        g_autofree char *got = list_all_names(f, admin, DV_KIND_VM, 7, &pages);
        g_autofree char *plain = list_all_names(f, DV_ACTOR_NAMED("setup"), DV_KIND_VM, 50, &pages);
        g_assert_cmpstr(got, ==, want);
        g_assert_cmpstr(plain, ==, want);
    }
    /* Read-only in dev: dev's 6 VMs; hosts and groups limited the same way. */
    {
        static const char *const dev_hosts[] = { "h-dev", NULL };
        static const guint dev_counts[] = { 6 };
        g_autofree char *want = expected_names(dev_hosts, dev_counts);
        g_autofree char *got = list_all_names(f, dev, DV_KIND_VM, 2, &pages);
        g_autofree char *hosts = list_all_names(f, dev, DV_KIND_HOST, 2, &pages);
        g_autofree char *groups = list_all_names(f, dele, DV_KIND_HOST_GROUP, 1, &pages);
        g_assert_cmpstr(got, ==, want);
        g_assert_cmpstr(hosts, ==, "h-dev");
        g_assert_cmpstr(groups, ==, "hg-prod;hg-web");
        g_assert_cmpuint(pages, ==, 2);
    }
    /* Filters of the query still apply inside the scope. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(GHashTable) q = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(JsonObject) page = NULL;
        g_hash_table_insert(q, "name_prefix", "h-web-");
        page = dv_engine_list_for(f->engine, dele, DV_KIND_VM, q, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(dv_json_get_array(page, "items")), ==, 5);
        g_clear_pointer(&page, json_object_unref);
        g_hash_table_insert(q, "name_prefix", "h-dev-");
        page = dv_engine_list_for(f->engine, dele, DV_KIND_VM, q, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(dv_json_get_array(page, "items")), ==, 0);
    }
    /* A reference filter naming an invisible host: as unknown as an absent one. */
    {
        g_autoptr(GError) e1 = NULL;
        g_autoptr(GError) e2 = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GHashTable) q = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(JsonObject) page = NULL;
        g_hash_table_insert(q, "host", "h-dev");
        g_assert_null(dv_engine_list_for(f->engine, dele, DV_KIND_VM, q, &e1));
        g_assert_error(e1, DV_ERROR, DV_ERROR_NOT_FOUND);
        g_assert_cmpstr(dv_error_get_field(e1), ==, "host");
        g_hash_table_insert(q, "host", "h-nowhere");
        g_assert_null(dv_engine_list_for(f->engine, dele, DV_KIND_VM, q, &e2));
        g_assert_error(e2, DV_ERROR, DV_ERROR_NOT_FOUND);
        g_hash_table_insert(q, "host", "h-web");
        page = dv_engine_list_for(f->engine, dele, DV_KIND_VM, q, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(dv_json_get_array(page, "items")), ==, 5);
    }
    /* A bad cursor is still refused by name. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(GHashTable) q = g_hash_table_new(g_str_hash, g_str_equal);
        g_hash_table_insert(q, "cursor", "!!");
        g_assert_null(dv_engine_list_for(f->engine, dele, DV_KIND_VM, q, &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_assert_cmpstr(dv_error_get_field(error), ==, "cursor");
    }
}

/* --- get -------------------------------------------------------------------- */

static void
test_get_out_of_scope(Fixture *f, gconstpointer data)
{
    g_autofree char *dele_id = NULL;
    g_autoptr(DvActor) dele = NULL;
    g_autoptr(GError) e1 = NULL;
    g_autoptr(GError) e2 = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) seen = NULL;
    g_autoptr(JsonObject) dev_vm = NULL;

    if (f->engine == NULL)
        return;
    make_tree(f);
    dele_id = add_user(f, "dele");
    g_free(bind(f, dele_id, "delegated-administrator", "hg-prod", -1));
    dele = actor_for(f, dele_id, "dele");

    seen = dv_engine_get_for(f->engine, dele, DV_KIND_VM, "h-web-vm1", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(seen, "name", NULL), ==, "h-web-vm1");
    /* Out of scope, by name and by id: the very error of an absent VM. */
    g_assert_null(dv_engine_get_for(f->engine, dele, DV_KIND_VM, "h-dev-vm1", &e1));
    g_assert_error(e1, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_assert_null(dv_engine_get_for(f->engine, dele, DV_KIND_VM, "no-such-vm", &e2));
    g_assert_error(e2, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_assert_cmpstr(strstr(e1->message, "not found"), !=, NULL);
    {
        g_autoptr(GError) e3 = NULL;
        g_autoptr(GError) e4 = NULL;
        dev_vm = dv_engine_get(f->engine, DV_KIND_VM, "h-dev-vm1", &error);
        g_assert_no_error(error);
        g_assert_null(dv_engine_get_for(f->engine, dele, DV_KIND_VM,
                                        dv_json_get_string(dev_vm, "id", ""), &e3));
        g_assert_error(e3, DV_ERROR, DV_ERROR_NOT_FOUND);
        g_assert_null(dv_engine_get_for(f->engine, dele, DV_KIND_HOST, "h-root", &e4));
        g_assert_error(e4, DV_ERROR, DV_ERROR_NOT_FOUND);
    }
}

/* --- ids by unique prefix ------------------------------------------------------ */

/* dv_core_resolve_prefix() for @actor: the full id, "" when @ref stays as
 * it is, or NULL with @error. */
static char *
prefix_of(Fixture *f, const DvActor *actor, const char *ref, GError **error)
{
    g_autofree char *id = NULL;

    if (!dv_core_resolve_prefix(f->engine, actor, DV_KIND_VM, ref, "id", &id, error))
        return NULL;
    return id != NULL ? g_steal_pointer(&id) : g_strdup("");
}

static void
test_id_prefix(Fixture *f, gconstpointer data)
{
    static const char *const a = "abcdef01-0000-4000-8000-000000000001"; /* h-prod */
    static const char *const b = "abcdef02-0000-4000-8000-000000000002"; /* h-dev */
    static const char *const c = "0123456a-0000-4000-8000-000000000003"; /* h-web, named "abcdef" */
    static const char *const d = "fedcba98-0000-4000-8000-000000000004"; /* h-web */
    const DvActor *admin = DV_ACTOR_NAMED("setup");
    g_autofree char *dele_id = NULL;
    g_autofree char *dev_id = NULL;
    g_autoptr(DvActor) dele = NULL;
    g_autoptr(DvActor) dev = NULL;

    if (f->engine == NULL)
        return;
    make_tree(f);
    dv_test_scope_add_vm(f->store, a, "pa", "h-prod", NULL, "drover", "{\"disks\": [], \"networks\": []}");
    dv_test_scope_add_vm(f->store, b, "pb", "h-dev", NULL, "drover", "{\"disks\": [], \"networks\": []}");
    dv_test_scope_add_vm(f->store, c, "abcdef", "h-web", NULL, "drover", "{\"disks\": [], \"networks\": []}");
    dv_test_scope_add_vm(f->store, d, "pd", "h-web", NULL, "drover", "{\"disks\": [], \"networks\": []}");
    dele_id = add_user(f, "dele");
    g_free(bind(f, dele_id, "delegated-administrator", "hg-prod", -1));
    dele = actor_for(f, dele_id, "dele");
    dev_id = add_user(f, "devon");
    g_free(bind(f, dev_id, "delegated-administrator", "hg-dev", -1));
    dev = actor_for(f, dev_id, "devon");

    {
        /* Two ids start so: 409 naming the field and listing both. */
        g_autoptr(GError) error = NULL;
        g_assert_null(prefix_of(f, admin, "abcdef0", &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
        g_assert_cmpstr(dv_error_get_field(error), ==, "id");
        g_assert_nonnull(strstr(error->message, a));
        g_assert_nonnull(strstr(error->message, b));
        g_assert_nonnull(strstr(error->message, "(pa)"));
        g_assert_nonnull(strstr(error->message, "give more of the id"));
    }
    {
        g_autoptr(GError) error = NULL;
        g_autofree char *one = prefix_of(f, admin, "abcdef01", &error);
        g_autofree char *upper = prefix_of(f, admin, "ABCDEF01-00", &error);
        g_autofree char *named = prefix_of(f, admin, "abcdef", &error);
        g_autofree char *whole = prefix_of(f, admin, a, &error);
        g_autofree char *shorter = prefix_of(f, admin, "fedcb", &error);
        g_autofree char *not_hex = prefix_of(f, admin, "pdpdpdpd", &error);
        g_autofree char *none = prefix_of(f, admin, "99999999", &error);
        g_assert_no_error(error);
        g_assert_cmpstr(one, ==, a);
        g_assert_cmpstr(upper, ==, a);
        /* A name beats a prefix: "abcdef" is C's name, and stays so. */
        g_assert_cmpstr(named, ==, "");
        g_assert_cmpstr(whole, ==, "");
        /* Below DV_CORE_ID_PREFIX_MIN, not hex, or nothing starts so: as
         * given, for the caller's lookup to report. */
        g_assert_cmpstr(shorter, ==, "");
        g_assert_cmpstr(not_hex, ==, "");
        g_assert_cmpstr(none, ==, "");
    }
    {
        /* Scope: the delegated administrator of prod does not see B, so
         * "abcdef0" is A alone; devon sees B alone, and D not at all. */
        g_autoptr(GError) error = NULL;
        g_autofree char *dele_a = prefix_of(f, dele, "abcdef0", &error);
        g_autofree char *dele_d = prefix_of(f, dele, "fedcba", &error);
        g_autofree char *dev_b = prefix_of(f, dev, "abcdef0", &error);
        g_autofree char *dev_d = prefix_of(f, dev, "fedcba98", &error);
        g_autofree char *dev_c = prefix_of(f, dev, "0123456a", &error);
        g_assert_no_error(error);
        g_assert_cmpstr(dele_a, ==, a);
        g_assert_cmpstr(dele_d, ==, d);
        g_assert_cmpstr(dev_b, ==, b);
        g_assert_cmpstr(dev_d, ==, "");
        g_assert_cmpstr(dev_c, ==, "");
    }
    {
        /* C's name out of devon's scope does not hide B's prefix from
         * him: "abcdef" is B for devon, C's name for prod. */
        g_autoptr(GError) error = NULL;
        g_autofree char *dev_named = prefix_of(f, dev, "abcdef", &error);
        g_autofree char *dele_named = prefix_of(f, dele, "abcdef", &error);
        g_assert_no_error(error);
        g_assert_cmpstr(dev_named, ==, b);
        g_assert_cmpstr(dele_named, ==, "");
    }
}

/* --- redaction ---------------------------------------------------------------- */

static void
test_redaction(Fixture *f, gconstpointer data)
{
    g_autofree char *admin_id = NULL;
    g_autofree char *dele_id = NULL;
    g_autoptr(DvActor) admin = NULL;
    g_autoptr(DvActor) dele = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) page = NULL;
    g_autoptr(JsonObject) one = NULL;
    g_autoptr(JsonObject) full = NULL;
    JsonArray *items;

    if (f->engine == NULL)
        return;
    make_tree(f);
    admin_id = add_user(f, "ada");
    dele_id = add_user(f, "dele");
    g_free(bind(f, admin_id, "administrator", NULL, -1));
    g_free(bind(f, dele_id, "delegated-administrator", "hg-prod", -1));
    admin = actor_for(f, admin_id, "ada");
    dele = actor_for(f, dele_id, "dele");

    page = dv_engine_list_for(f->engine, dele, DV_KIND_VM, NULL, &error);
    g_assert_no_error(error);
    items = dv_json_get_array(page, "items");
    g_assert_cmpuint(json_array_get_length(items), >, 0);
    for (guint i = 0; i < json_array_get_length(items); i++) {
        JsonObject *vm = json_array_get_object_element(items, i);
        JsonObject *spec = dv_json_get_object(vm, "spec");
        g_assert_nonnull(spec);
        g_assert_false(json_object_has_member(spec, "disks"));
        g_assert_true(json_object_has_member(spec, "networks"));
    }
    one = dv_engine_get_for(f->engine, dele, DV_KIND_VM, "h-prod-vm0", &error);
    g_assert_no_error(error);
    g_assert_false(json_object_has_member(dv_json_get_object(one, "spec"), "disks"));
    /* The administrator sees them. */
    full = dv_engine_get_for(f->engine, admin, DV_KIND_VM, "h-prod-vm0", &error);
    g_assert_no_error(error);
    g_assert_true(json_object_has_member(dv_json_get_object(full, "spec"), "disks"));
}

/* --- owner and quota ----------------------------------------------------------- */

typedef struct {
    Fixture *f;
    const DvActor *actor;
    guint index;
    JsonObject *job; /* owned, or NULL */
    GError *error;
} CreateJob;

static gpointer
create_thread(gpointer data)
{
    CreateJob *c = data;
    g_autofree char *json =
        g_strdup_printf("{\"name\": \"q%02u\", \"host\": \"h1\", \"memory_mib\": 16, "
                        "\"vcpus\": 2}",
                        c->index);
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    c->job = dv_engine_create(c->f->engine, DV_KIND_VM, body, c->actor, &c->error);
    return NULL;
}

static gint64
usage(Fixture *f, const char *binding, const char *what)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) used = dv_authz_quota_usage(f->store, binding, NULL, &error);
    g_assert_no_error(error);
    return dv_json_get_int(used, what, -1);
}

/* 50 parallel creates by a self-service user with a quota of 10 VMs:
 * exactly 10 accepted, each owned by the user; the others refused naming
 * quota.vms, leaving no row.  A delete gives one back. */
static void
test_quota_parallel(Fixture *f, gconstpointer data)
{
    enum {
        N = 50
    };
    g_autofree char *user_id = NULL;
    g_autofree char *binding = NULL;
    g_autofree char *host_id = NULL;
    g_autoptr(DvActor) sam = NULL;
    CreateJob jobs[N];
    GThread *threads[N];
    guint accepted = 0;
    g_autofree char *first_vm = NULL;

    if (f->engine == NULL)
        return;
    host_id = dv_test_catalog_add_host(f->engine, f->tmpdir, WAIT_MS);
    user_id = add_user(f, "sam");
    binding = bind(f, user_id, "self-service-user", NULL, 10);
    sam = actor_for(f, user_id, "sam");

    for (guint i = 0; i < N; i++) {
        jobs[i] = (CreateJob){ f, sam, i, NULL, NULL };
        threads[i] = g_thread_new("create", create_thread, &jobs[i]);
    }
    for (guint i = 0; i < N; i++)
        g_thread_join(threads[i]);
    for (guint i = 0; i < N; i++) {
        if (jobs[i].job != NULL) {
            g_autoptr(JsonObject) row = dv_test_engine_run(f->engine, jobs[i].job, WAIT_MS);
            g_assert_no_error(jobs[i].error);
            accepted++;
            if (first_vm == NULL)
                first_vm = g_strdup(dv_json_get_string(jobs[i].job, "target_id", ""));
        } else {
            g_assert_error(jobs[i].error, DV_ERROR, DV_ERROR_CONFLICT);
            g_assert_cmpstr(dv_error_get_field(jobs[i].error), ==, "quota.vms");
            g_assert_nonnull(strstr(jobs[i].error->message, "10 of 10"));
        }
        g_clear_pointer(&jobs[i].job, json_object_unref);
        g_clear_error(&jobs[i].error);
    }
    g_assert_cmpuint(accepted, ==, 10);
    g_assert_cmpint(usage(f, binding, "vms"), ==, 10);
    g_assert_cmpint(usage(f, binding, "vcpus"), ==, 20);
    g_assert_cmpint(usage(f, binding, "memory_mib"), ==, 160);
    {
        DvFilter owned = { "owner_id", DV_FILTER_EQ, user_id };
        g_autoptr(GError) error = NULL;
        g_assert_cmpint(dv_store_count(f->store, &dv_table_vms, &owned, 1, &error), ==, 10);
        g_assert_no_error(error);
        /* h1's three VMs and the ten made. */
        g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_vms), ==, 13);
    }
    /* A refused create wrote no job either; the user's job list holds its
     * own ten, not the host's add and stop made by "tester". */
    {
        DvFilter kind = { "kind", DV_FILTER_EQ, "vm.create" };
        g_autoptr(GError) error = NULL;
        g_autoptr(GHashTable) q = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(JsonObject) page = NULL;
        JsonArray *items;
        g_assert_cmpint(dv_store_count(f->store, &dv_table_jobs, &kind, 1, &error), ==, 10);
        g_hash_table_insert(q, "limit", "100");
        page = dv_engine_list_for(f->engine, sam, DV_KIND_JOB, q, &error);
        g_assert_no_error(error);
        items = dv_json_get_array(page, "items");
        g_assert_cmpuint(json_array_get_length(items), ==, 10);
        for (guint i = 0; i < json_array_get_length(items); i++)
            g_assert_cmpstr(
                dv_json_get_string(json_array_get_object_element(items, i), "created_by", NULL), ==,
                "sam");
        g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_jobs), >, 10);
    }
    /* The user lists exactly its own ten (self-service: own objects). */
    {
        guint pages = 0;
        g_autofree char *names = list_all_names(f, sam, DV_KIND_VM, 3, &pages);
        g_autofree char **parts = g_strsplit(names, ";", -1);
        g_assert_cmpuint(g_strv_length(parts), ==, 10);
        g_strfreev(g_steal_pointer(&parts));
        g_assert_cmpuint(pages, ==, 4);
    }

    /* Delete one: its quota comes back with its row; one more fits, and
     * the next is refused again. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) del =
            dv_engine_delete(f->engine, DV_KIND_VM, first_vm, NULL, sam, &error);
        g_autoptr(JsonObject) row = NULL;
        g_assert_no_error(error);
        row = dv_test_engine_run(f->engine, del, WAIT_MS);
        g_assert_cmpint(usage(f, binding, "vms"), ==, 9);
        g_assert_cmpint(usage(f, binding, "vcpus"), ==, 18);
    }
    {
        CreateJob again = { f, sam, 90, NULL, NULL };
        CreateJob over = { f, sam, 91, NULL, NULL };
        g_autoptr(JsonObject) row = NULL;
        create_thread(&again);
        g_assert_no_error(again.error);
        row = dv_test_engine_run(f->engine, again.job, WAIT_MS);
        create_thread(&over);
        g_assert_null(over.job);
        g_assert_error(over.error, DV_ERROR, DV_ERROR_CONFLICT);
        g_assert_cmpstr(dv_error_get_field(over.error), ==, "quota.vms");
        g_assert_cmpint(usage(f, binding, "vms"), ==, 10);
        json_object_unref(again.job);
        g_clear_error(&over.error);
    }
}

/* The owner is the creating user; a create outside the actor's scope is
 * refused before anything is written; a create that fails in its job
 * gives its quota back. */
static void
test_owner_and_release(Fixture *f, gconstpointer data)
{
    g_autofree char *host_id = NULL;
    g_autofree char *user_id = NULL;
    g_autofree char *binding = NULL;
    g_autofree char *outsider_id = NULL;
    g_autoptr(DvActor) amy = NULL;
    g_autoptr(DvActor) outsider = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) row = NULL;
    g_autoptr(JsonObject) vm = NULL;
    gint64 before;

    if (f->engine == NULL)
        return;
    host_id = dv_test_catalog_add_host(f->engine, f->tmpdir, WAIT_MS);
    user_id = add_user(f, "amy");
    binding = bind(f, user_id, "self-service-user", NULL, 5);
    amy = actor_for(f, user_id, "amy");
    dv_test_scope_add_group(f->store, "hg-other", NULL);
    outsider_id = add_user(f, "otto");
    g_free(bind(f, outsider_id, "delegated-administrator", "hg-other", -1));
    outsider = actor_for(f, outsider_id, "otto");

    {
        g_autoptr(JsonObject) body = dv_test_json_object(
            "{\"name\": \"mine\", \"host\": \"h1\", \"memory_mib\": 32, \"vcpus\": 1, "
            "\"disks\": [{\"pool\": \"pool1\", \"size_mib\": 1536}]}");
        job = dv_engine_create(f->engine, DV_KIND_VM, body, amy, &error);
        g_assert_no_error(error);
        row = dv_test_engine_run(f->engine, job, WAIT_MS);
    }
    vm = dv_engine_get_for(f->engine, amy, DV_KIND_VM, "mine", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(vm, "owner_id", NULL), ==, user_id);
    g_assert_cmpint(usage(f, binding, "vms"), ==, 1);
    g_assert_cmpint(usage(f, binding, "storage_gib"), ==, 2);
    /* The charge survives the inventory sync of the create, and a refresh
     * of the host. */
    g_assert_nonnull(dv_json_get_object(dv_json_get_object(vm, "spec"), "quota"));
    {
        g_autoptr(JsonObject) refresh =
            dv_engine_host_refresh(f->engine, "h1", DV_ACTOR_NAMED("tester"), &error);
        g_autoptr(JsonObject) done = NULL;
        g_autoptr(JsonObject) again = NULL;
        g_assert_no_error(error);
        done = dv_test_engine_run(f->engine, refresh, WAIT_MS);
        again = dv_engine_get_for(f->engine, amy, DV_KIND_VM, "mine", &error);
        g_assert_no_error(error);
        g_assert_nonnull(dv_json_get_object(dv_json_get_object(again, "spec"), "quota"));
        g_assert_nonnull(dv_json_get_array(dv_json_get_object(again, "spec"), "disks"));
    }

    /* Outside its host groups: as if the host were absent; nothing written. */
    {
        g_autoptr(GError) local = NULL;
        g_autoptr(JsonObject) body =
            dv_test_json_object("{\"name\": \"theirs\", \"host\": \"h1\", \"memory_mib\": 32}");
        before = dv_test_engine_count(f->engine, &dv_table_vms);
        g_assert_null(dv_engine_create(f->engine, DV_KIND_VM, body, outsider, &local));
        g_assert_error(local, DV_ERROR, DV_ERROR_NOT_FOUND);
        g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_vms), ==, before);
    }

    /* A create whose job fails gives its quota back with its row: the
     * host's file goes away between acceptance and the job (its handle
     * forgotten, its URI pointing at nothing). */
    {
        g_autoptr(GError) local = NULL;
        g_autoptr(JsonObject) body = dv_test_json_object(
            "{\"name\": \"doomed\", \"host\": \"h1\", \"memory_mib\": 32, \"vcpus\": 3}");
        g_autoptr(JsonObject) broken =
            dv_test_json_object("{\"uri\": \"test:///nonexistent.xml\"}");
        g_autoptr(JsonObject) failed_job = NULL;
        g_autoptr(JsonObject) failed = NULL;
        g_assert_true(dv_store_update(f->store, &dv_table_hosts, host_id, broken, &local));
        g_assert_no_error(local);
        dv_core_virt_host_forget(f->engine, host_id);
        failed_job = dv_engine_create(f->engine, DV_KIND_VM, body, amy, &local);
        g_assert_no_error(local);
        failed = dv_test_engine_job_row(f->engine, failed_job, WAIT_MS);
        g_assert_cmpstr(dv_json_get_string(failed, "state", ""), ==, "failed");
        g_assert_cmpint(usage(f, binding, "vms"), ==, 1);
        g_assert_cmpint(usage(f, binding, "vcpus"), ==, 1);
        g_assert_cmpint(usage(f, binding, "storage_gib"), ==, 2);
    }
}

/* A "creating" row left by a crash after its reservation: the recovery
 * that rolls it back gives its quota back in the same transaction. */
static void
test_recovery_release(Fixture *f, gconstpointer data)
{
    g_autofree char *user_id = NULL;
    g_autofree char *binding = NULL;
    g_autofree char *id = g_uuid_string_random();
    g_autofree char *spec = NULL;
    g_autoptr(GError) error = NULL;
    DvAuthzAmount amount = { 1, 4, 2048, 10 };
    guint settled = 0;

    if (f->engine == NULL)
        return;
    user_id = add_user(f, "rita");
    binding = bind(f, user_id, "self-service-user", NULL, 3);
    g_assert_true(dv_authz_quota_reserve(f->store, binding, user_id, &amount, &error));
    g_assert_no_error(error);
    dv_test_scope_add_group(f->store, "hg-r", NULL);
    dv_test_scope_add_host(f->store, "h-r", "hg-r");
    spec = g_strdup_printf("{\"disks\": [], \"networks\": [], \"quota\": {\"binding_id\": "
                           "\"%s\", \"user_id\": \"%s\", \"vms\": 1, \"vcpus\": 4, "
                           "\"memory_mib\": 2048, \"storage_gib\": 10}}",
                           binding, user_id);
    exec_sql(f,
             "INSERT INTO vms (id, name, host_id, state, vcpus, memory_mib, generation, "
             "secure_boot, origin, spec, owner_id, created_at, updated_at) VALUES (?, 'stuck', "
             "'h-r', 'creating', 4, 2048, 1, 0, 'drover', ?, ?, 1, 1)",
             DV_SQL_ARGS(DV_SQL_TEXT_P(id), DV_SQL_TEXT_P(spec), DV_SQL_TEXT_P(user_id)));
    g_assert_cmpint(usage(f, binding, "vms"), ==, 1);

    g_assert_true(dv_engine_recover_rows(f->engine, 0, &settled, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(settled, ==, 1);
    g_assert_cmpint(usage(f, binding, "vms"), ==, 0);
    g_assert_cmpint(usage(f, binding, "vcpus"), ==, 0);
    g_assert_cmpint(usage(f, binding, "memory_mib"), ==, 0);
    g_assert_cmpint(usage(f, binding, "storage_gib"), ==, 0);
}

/* A member cap below the binding's total refuses naming member_quota. */
static void
test_member_quota(Fixture *f, gconstpointer data)
{
    g_autofree char *host_id = NULL;
    g_autofree char *user_id = NULL;
    g_autoptr(DvActor) mo = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) spec = NULL;
    g_autoptr(JsonObject) b = NULL;

    if (f->engine == NULL)
        return;
    host_id = dv_test_catalog_add_host(f->engine, f->tmpdir, WAIT_MS);
    user_id = add_user(f, "mo");
    spec = dv_test_json_object("{\"principal_kind\": \"user\", \"role\": "
                               "\"self-service-user\", \"scope_kind\": \"global\", "
                               "\"quota\": {\"vms\": 10}, \"member_quota\": {\"vcpus\": 3}}");
    json_object_set_string_member(spec, "principal", user_id);
    b = dv_authz_binding_add(f->store, NULL, spec, &error);
    g_assert_no_error(error);
    mo = actor_for(f, user_id, "mo");
    {
        g_autoptr(JsonObject) body =
            dv_test_json_object("{\"name\": \"m-a\", \"host\": \"h1\", \"memory_mib\": 16, "
                                "\"vcpus\": 2}");
        g_autoptr(JsonObject) job = dv_engine_create(f->engine, DV_KIND_VM, body, mo, &error);
        g_autoptr(JsonObject) row = NULL;
        g_assert_no_error(error);
        row = dv_test_engine_run(f->engine, job, WAIT_MS);
    }
    {
        g_autoptr(JsonObject) body =
            dv_test_json_object("{\"name\": \"m-b\", \"host\": \"h1\", \"memory_mib\": 16, "
                                "\"vcpus\": 2}");
        gint64 before = dv_test_engine_count(f->engine, &dv_table_vms);
        g_assert_null(dv_engine_create(f->engine, DV_KIND_VM, body, mo, &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
        g_assert_cmpstr(dv_error_get_field(error), ==, "member_quota.vcpus");
        g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_vms), ==, before);
        /* The refused one took nothing from the total either. */
        g_assert_cmpint(usage(f, dv_json_get_string(b, "id", ""), "vms"), ==, 1);
    }
}

/* Every kind has its name in privileges and filters. */
static void
test_authz_kinds(void)
{
    for (DvKind k = 0; k < DV_KIND_LAST; k++)
        g_assert_nonnull(dv_core_authz_kind(k));
    g_assert_cmpstr(dv_core_authz_kind(DV_KIND_HOST_GROUP), ==, "host_group");
    g_assert_cmpstr(dv_core_authz_kind(DV_KIND_RUN_AS), ==, "run_as");
    g_assert_null(dv_core_actor_authz(NULL));
    g_assert_null(dv_core_actor_authz(DV_ACTOR_NAMED("setup")));
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
    g_test_add_func("/drover/auth/scope/kinds", test_authz_kinds);
    add_both("/drover/auth/scope/list-paging", test_list_paging);
    add_both("/drover/auth/scope/get-out-of-scope", test_get_out_of_scope);
    add_both("/drover/auth/scope/id-prefix", test_id_prefix);
    add_both("/drover/auth/scope/redaction", test_redaction);
    add_both("/drover/auth/scope/quota-parallel", test_quota_parallel);
    add_both("/drover/auth/scope/owner-and-release", test_owner_and_release);
    add_both("/drover/auth/scope/recovery-release", test_recovery_release);
    add_both("/drover/auth/scope/member-quota", test_member_quota);
    return g_test_run();
}
