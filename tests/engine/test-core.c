#define G_LOG_DOMAIN "DvTestCore"

/* The engine's core (src/engine/core): DvActor, the kind registry, the
 * shapers and the before-start hooks features register, and the jobs
 * recording the actor's name, on SQLite and on PostgreSQL. */

#include "dv-core.h"
#include "dv-engine.h"
#include "dv-op.h"
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
    f->engine = dv_test_engine_on_backend("dv-test-core", GPOINTER_TO_INT(data), 2, &f->tmpdir,
                                          &f->pg_dbname);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    dv_test_engine_on_backend_free(g_steal_pointer(&f->engine), g_steal_pointer(&f->tmpdir),
                                   g_steal_pointer(&f->pg_dbname));
}

/* --- DvActor ---------------------------------------------------------- */

static guint authz_freed;

static void
authz_free(gpointer p)
{
    authz_freed++;
    g_free(p);
}

static void
test_actor_from_user(void)
{
    g_autoptr(JsonObject) user =
        dv_test_json_object("{\"id\": \"0b7c1c8e-2f7e-4a8e-9a53-5d1f9a1e0c11\", \"name\": "
                            "\"alice\", \"role\": \"read-only\"}");
    g_autoptr(DvActor) actor = dv_actor_new_from_user(user);

    g_assert_cmpstr(actor->id, ==, "0b7c1c8e-2f7e-4a8e-9a53-5d1f9a1e0c11");
    g_assert_cmpstr(actor->name, ==, "alice");
    g_assert_cmpstr(actor->role, ==, "read-only");
    g_assert_null(actor->authz);
    g_assert_cmpstr(dv_actor_get_name(actor), ==, "alice");
    /* Copies: the row may go. */
    json_object_set_string_member(user, "name", "mallory");
    g_assert_cmpstr(dv_actor_get_name(actor), ==, "alice");
    /* A session without a name, or no actor at all, records "?". */
    g_assert_cmpstr(dv_actor_get_name(NULL), ==, "?");
    {
        g_autoptr(DvActor) anon = dv_actor_new(NULL, NULL, NULL);
        g_assert_cmpstr(dv_actor_get_name(anon), ==, "?");
    }
    g_assert_cmpstr(dv_actor_get_name(DV_ACTOR_NAMED("setup")), ==, "setup");
}

static void
test_actor_authz(void)
{
    DvActor *actor = dv_actor_new("id", "bob", "administrator");

    authz_freed = 0;
    dv_actor_set_authz(actor, g_strdup("first"), authz_free);
    g_assert_cmpstr(actor->authz, ==, "first");
    /* Replaced: the old context is released at once. */
    dv_actor_set_authz(actor, g_strdup("second"), authz_free);
    g_assert_cmpuint(authz_freed, ==, 1);
    g_assert_cmpstr(actor->authz, ==, "second");
    dv_actor_free(actor);
    g_assert_cmpuint(authz_freed, ==, 2);
    dv_actor_free(NULL);
}

/* The job's created_by is the actor's name, as the bare user was. */
static void
test_actor_created_by(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object("{\"name\": \"g1\"}");
    g_autoptr(DvActor) actor = dv_actor_new("u1", "alice", "administrator");
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) row = NULL;

    if (f->engine == NULL)
        return;
    job = dv_engine_create(f->engine, DV_KIND_HOST_GROUP, body, actor, &error);

    g_assert_no_error(error);
    g_assert_nonnull(job);
    g_assert_cmpstr(dv_json_get_string(job, "created_by", NULL), ==, "alice");
    row = dv_test_engine_run(f->engine, job, WAIT_MS);
    g_assert_cmpstr(dv_json_get_string(row, "created_by", NULL), ==, "alice");
    g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_host_groups), ==, 1);

    /* Bad input still changes nothing and names the field. */
    {
        g_autoptr(GError) local = NULL;
        g_autoptr(JsonObject) bad = dv_test_json_object("{\"name\": \"\"}");
        g_autoptr(JsonObject) none =
            dv_engine_create(f->engine, DV_KIND_HOST_GROUP, bad, actor, &local);
        g_assert_null(none);
        g_assert_error(local, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_assert_cmpstr(dv_error_get_field(local), ==, "name");
        g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_host_groups), ==, 1);
    }
}

/* --- the kind registry and shapers --------------------------------------- */

static void
test_kind_info(void)
{
    for (DvKind k = 0; k < DV_KIND_LAST; k++) {
        const DvKindInfo *info = dv_core_kind_info(k);
        g_assert_nonnull(info);
        g_assert_cmpint(info->kind, ==, k);
        g_assert_nonnull(info->def);
        g_assert_nonnull(info->singular);
        g_assert_nonnull(info->type);
    }
    g_assert_cmpstr(dv_core_kind_info(DV_KIND_RUN_AS)->type, ==, "run-as");
    g_assert_true(dv_core_kind_info(DV_KIND_HOST)->named);
    g_assert_false(dv_core_kind_info(DV_KIND_JOB)->named);
}

/* Hosts registered their shaper (one "limits" member), secrets theirs
 * (each secret field described); a kind without one is its row. */
static void
test_shapers(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonObject) host =
        dv_test_json_object("{\"id\": \"h\", \"name\": \"h\", \"max_connections\": 3, "
                            "\"max_concurrent_operations\": 5}");
    g_autoptr(JsonObject) group = dv_test_json_object("{\"id\": \"g\", \"name\": \"g\"}");
    g_autoptr(JsonObject) shaped = NULL;
    g_autoptr(JsonObject) plain = NULL;
    JsonObject *limits;

    if (f->engine == NULL)
        return;
    shaped = dv_core_shape(f->engine, DV_KIND_HOST, host);
    plain = dv_core_shape(f->engine, DV_KIND_HOST_GROUP, group);
    limits = dv_json_get_object(shaped, "limits");

    g_assert_nonnull(limits);
    g_assert_cmpint(dv_json_get_int(limits, "max_connections", 0), ==, 3);
    g_assert_cmpint(dv_json_get_int(limits, "max_concurrent_operations", 0), ==, 5);
    g_assert_false(json_object_has_member(shaped, "max_connections"));
    g_assert_true(plain == group);
    {
        g_autoptr(JsonObject) acct = dv_test_json_object("{\"id\": \"r\", \"name\": \"r\"}");
        g_autoptr(JsonObject) out = dv_core_shape(f->engine, DV_KIND_RUN_AS, acct);
        JsonObject *pw = dv_json_get_object(out, "password");
        g_assert_nonnull(pw);
        g_assert_false(dv_json_get_bool(pw, "set", TRUE));
    }
}

/* --- hooks ------------------------------------------------------------------ */

static GString *hook_trace;

static gboolean
hook_a(DvEngine *engine, JsonObject *vm, GCancellable *c, GError **error)
{
    g_string_append(hook_trace, "a");
    return TRUE;
}

static gboolean
hook_fail(DvEngine *engine, JsonObject *vm, GCancellable *c, GError **error)
{
    g_string_append(hook_trace, "f");
    g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT, "refused by the test hook");
    return FALSE;
}

static gboolean
hook_never(DvEngine *engine, JsonObject *vm, GCancellable *c, GError **error)
{
    g_string_append(hook_trace, "n");
    return TRUE;
}

/* Hooks run in registration order after the catalog's own (which leaves
 * a VM that is no catalog machine alone); the first failure stops the
 * start with its error. */
static void
test_hooks_before_start(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *id = g_uuid_string_random();
    g_autoptr(JsonObject) vm = json_object_new();

    if (f->engine == NULL)
        return;

    json_object_set_string_member(vm, "id", id);
    json_object_set_string_member(vm, "name", "vm1");
    hook_trace = g_string_new(NULL);
    g_assert_true(dv_core_run_vm_before_start(f->engine, vm, NULL, &error));
    g_assert_no_error(error);
    dv_core_add_vm_before_start(f->engine, hook_a);
    dv_core_add_vm_before_start(f->engine, hook_fail);
    dv_core_add_vm_before_start(f->engine, hook_never);
    g_assert_false(dv_core_run_vm_before_start(f->engine, vm, NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(hook_trace->str, ==, "af");
    g_string_free(hook_trace, TRUE);
    hook_trace = NULL;
}

/* --- lookups ------------------------------------------------------------- */

static void
test_resolve_errors(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) e1 = NULL;
    g_autoptr(GError) e2 = NULL;
    g_autoptr(GError) e3 = NULL;

    if (f->engine == NULL)
        return;

    g_assert_null(dv_core_resolve(f->engine, DV_KIND_HOST, "", "host", &e1));
    g_assert_error(e1, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(dv_error_get_field(e1), ==, "host");
    g_assert_nonnull(strstr(e1->message, "must name a host"));
    g_assert_null(dv_core_resolve(f->engine, DV_KIND_HOST, "nope", "host", &e2));
    g_assert_error(e2, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_assert_cmpstr(dv_error_get_field(e2), ==, "host");
    /* A name too long to be one is refused before any lookup. */
    {
        g_autofree char *longname = g_strnfill(300, 'x');
        g_assert_null(dv_core_resolve(f->engine, DV_KIND_VM, longname, "vm", &e3));
        g_assert_error(e3, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    }
}

/* --- the operation table's field specs (DvOp.fields, DvOp.query) ------- */

static const DvOp *
find_op(DvEngine *engine, const char *name)
{
    guint n = 0;
    const DvOp *const *ops = dv_core_get_ops(engine, &n);
    for (guint i = 0; i < n; i++)
        if (g_strcmp0(ops[i]->name, name) == 0)
            return ops[i];
    g_assert_not_reached();
}

static JsonObject *
parse_body(const char *text)
{
    g_autoptr(GError) error = NULL;
    JsonObject *obj = dv_json_parse_object(text, strlen(text), DV_JSON_MAX_BODY,
                                           DV_JSON_MAX_DEPTH, &error);
    g_assert_no_error(error);
    return obj;
}

static void
expect_body_error(const DvOp *op, const char *text, const char *field, const char *rule)
{
    g_autoptr(JsonObject) body = parse_body(text);
    g_autoptr(GError) error = NULL;
    g_assert_false(dv_op_check_body(op, body, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(dv_error_get_field(error), ==, field);
    g_assert_nonnull(strstr(error->message, rule));
}

/* Every row that takes a body declares its fields, with unique names. */
static void
test_ops_fields_declared(Fixture *f, gconstpointer data)
{
    guint n = 0, with_body = 0;
    const DvOp *const *ops = dv_core_get_ops(f->engine, &n);

    g_assert_cmpuint(n, >, 50);
    for (guint i = 0; i < n; i++) {
        const DvOp *op = ops[i];
        g_autoptr(GHashTable) names = g_hash_table_new(g_str_hash, g_str_equal);
        if (op->body != DV_OP_BODY_REQUIRED && op->body != DV_OP_BODY_OPTIONAL)
            continue;
        with_body++;
        if (op->fields == NULL)
            g_error("%s takes a body but declares no field spec", op->name);
        for (const DvFieldSpec *s = op->fields; s->name != NULL; s++)
            g_assert_true(g_hash_table_add(names, (gpointer)s->name));
        g_assert_cmpuint(g_hash_table_size(names), >, 0);
    }
    g_assert_cmpuint(with_body, >=, 30);
}

/* The check the daemon makes before the handler: the row's spec, with the
 * errors dv_json_check_fields() words (field named, rule said). */
static void
test_ops_fields_check(Fixture *f, gconstpointer data)
{
    const DvOp *vm_create = find_op(f->engine, "vm.create");
    const DvOp *reconcile = find_op(f->engine, "catalog.reconcile-submit");
    const DvOp *vm_start = find_op(f->engine, "vm.start");
    const DvOp *token = find_op(f->engine, "token.create");
    g_autoptr(JsonObject) ok = parse_body("{\"name\": \"vm1\", \"vcpus\": 2, \"host\": null}");
    g_autoptr(JsonObject) anything = parse_body("{\"whatever\": 1}");
    g_autoptr(GError) error = NULL;

    g_assert_true(dv_op_check_body(vm_create, ok, &error));
    g_assert_no_error(error);
    expect_body_error(vm_create, "{\"name\": \"vm1\", \"colour\": \"red\"}", "colour",
                      "unknown field");
    expect_body_error(vm_create, "{\"vcpus\": 2}", "name", "is required");
    expect_body_error(vm_create, "{\"name\": \"vm1\", \"vcpus\": \"two\"}", "vcpus",
                      "must be an integer");
    expect_body_error(token, "{\"name\": \"t\", \"privileges\": \"vm.read\"}", "privileges",
                      "must be an array");
    /* An optional body that is absent passes; a row without a body has
     * nothing to check. */
    g_assert_true(dv_op_check_body(reconcile, NULL, &error));
    expect_body_error(reconcile, "{\"delete_orphans\": \"yes\"}", "delete_orphans",
                      "must be a boolean");
    g_assert_null(vm_start->fields);
    g_assert_true(dv_op_check_body(vm_start, anything, &error));
    g_assert_no_error(error);
}

/* Each limit a row declares is one its engine function enforces: for every
 * field with a range or a maximum length, a value just outside is refused
 * naming that field (a valid @base otherwise), and the bound itself is not
 * what is refused. */
static void
expect_limits_enforced(DvEngine *engine, const char *op_name, DvKind kind, const char *base,
                       const char *skip)
{
    const DvOp *op = find_op(engine, op_name);
    guint checked = 0;

    for (const DvFieldSpec *s = op->fields; s->name != NULL; s++) {
        if (g_strcmp0(s->name, skip) == 0)
            continue;
        for (guint side = 0; side < 2; side++) {
            g_autoptr(JsonObject) body = parse_body(base);
            g_autoptr(JsonObject) job = NULL;
            g_autoptr(GError) error = NULL;
            g_autofree char *too_long = NULL;

            if (s->min < s->max)
                json_object_set_int_member(body, s->name, side == 0 ? s->max + 1 : s->min - 1);
            else if (s->max_len > 0 && side == 0) {
                too_long = g_strnfill(s->max_len + 1, 'a');
                json_object_set_string_member(body, s->name, too_long);
            } else
                continue;
            job = dv_engine_create(engine, kind, body, DV_ACTOR_NAMED("test"), &error);
            g_assert_null(job);
            g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
            if (g_strcmp0(dv_error_get_field(error), s->name) != 0)
                g_error("%s: %s beyond its declared limit: refused as %s (%s)", op_name, s->name,
                        dv_error_get_field(error), error->message);
            checked++;
        }
    }
    g_assert_cmpuint(checked, >, 0);
}

static void
test_ops_fields_limits(Fixture *f, gconstpointer data)
{
    expect_limits_enforced(f->engine, "host_group.create", DV_KIND_HOST_GROUP, "{\"name\": \"g1\"}",
                           NULL);
    expect_limits_enforced(f->engine, "host.create", DV_KIND_HOST,
                           "{\"name\": \"h1\", \"uri\": \"test:///default\"}", NULL);
    expect_limits_enforced(f->engine, "template.create", DV_KIND_TEMPLATE,
                           "{\"name\": \"t1\", \"vcpus\": 1, \"memory_mib\": 16}",
                           "disk_volume" /* needs a library share */);
    expect_limits_enforced(f->engine, "setting.create", DV_KIND_SETTING,
                           "{\"scope\": \"s\", \"name\": \"n1\", \"value\": \"v\"}", NULL);
    g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_host_groups), ==, 0);
}

static JsonObject *
dumped_op(JsonArray *dump, const char *name)
{
    for (guint i = 0; i < json_array_get_length(dump); i++) {
        JsonObject *o = json_array_get_object_element(dump, i);
        if (g_strcmp0(json_object_get_string_member(o, "name"), name) == 0)
            return o;
    }
    g_assert_not_reached();
}

static JsonObject *
dumped_field(JsonObject *op, const char *member, const char *name)
{
    JsonArray *fields = json_object_get_array_member(op, member);
    for (guint i = 0; fields != NULL && i < json_array_get_length(fields); i++) {
        JsonObject *o = json_array_get_object_element(fields, i);
        if (g_strcmp0(json_object_get_string_member(o, "name"), name) == 0)
            return o;
    }
    return NULL;
}

/* droverd --dump-ops: each op's body rule, fields (name, type, required,
 * limits) and query parameters. */
static void
test_ops_dump_fields(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonArray) dump = dv_core_ops_to_json(f->engine);
    JsonObject *token = dumped_op(dump, "token.create");
    JsonObject *vm_list = dumped_op(dump, "vm.list");
    JsonObject *vm_start = dumped_op(dump, "vm.start");
    JsonObject *audit = dumped_op(dump, "audit.list");
    JsonObject *host_create = dumped_op(dump, "host.create");
    JsonObject *o;

    g_assert_cmpstr(json_object_get_string_member(token, "body"), ==, "required");
    o = dumped_field(token, "fields", "expires_in_days");
    g_assert_nonnull(o);
    g_assert_cmpstr(json_object_get_string_member(o, "type"), ==, "integer");
    g_assert_false(json_object_get_boolean_member(o, "required"));
    g_assert_cmpint(json_object_get_int_member(o, "minimum"), ==, 1);
    g_assert_cmpint(json_object_get_int_member(o, "maximum"), ==, 365);
    o = dumped_field(token, "fields", "name");
    g_assert_true(json_object_get_boolean_member(o, "required"));

    o = dumped_field(host_create, "fields", "host_group");
    g_assert_cmpstr(json_object_get_string_member(o, "type"), ==, "string");
    g_assert_true(json_object_get_boolean_member(o, "nullable"));
    g_assert_nonnull(dumped_field(host_create, "fields", "uri"));
    g_assert_null(dumped_field(host_create, "fields", "password"));

    g_assert_cmpstr(json_object_get_string_member(vm_start, "body"), ==, "none");
    g_assert_true(json_object_get_null_member(vm_start, "fields"));
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(vm_start, "query")), ==, 0);

    /* A list of a kind: its parameters come from the kind's table. */
    o = dumped_field(vm_list, "query", "limit");
    g_assert_nonnull(o);
    g_assert_cmpint(json_object_get_int_member(o, "maximum"), ==, DV_PAGE_MAX);
    g_assert_nonnull(dumped_field(vm_list, "query", "cursor"));
    g_assert_nonnull(dumped_field(vm_list, "query", "host"));
    g_assert_nonnull(dumped_field(vm_list, "query", "name_prefix"));
    g_assert_null(dumped_field(vm_list, "query", "memory_mib"));
    g_assert_null(dumped_field(dumped_op(dump, "host.list"), "query", "password_hash"));
    /* A list of another kind under an object: that kind's parameters. */
    g_assert_nonnull(dumped_field(dumped_op(dump, "catalog.machines"), "query", "state"));
    g_assert_nonnull(dumped_field(dumped_op(dump, "pool.volumes"), "query", "format"));
    /* A list of its own: declared on the row. */
    g_assert_nonnull(dumped_field(audit, "query", "outcome"));
    g_assert_cmpint(json_object_get_int_member(dumped_field(audit, "query", "limit"), "maximum"),
                    ==, 1000);
}

static void
add_both(const char *path, void (*func)(Fixture *, gconstpointer))
{
    g_autofree char *lite = g_strdup_printf("%s/sqlite", path);
    g_autofree char *pg = g_strdup_printf("%s/pg", path);
    g_test_add(lite, Fixture, GINT_TO_POINTER(DV_TEST_BACKEND_SQLITE), fixture_setup, func,
               fixture_teardown);
    g_test_add(pg, Fixture, GINT_TO_POINTER(DV_TEST_BACKEND_PG), fixture_setup, func, fixture_teardown);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/drover/core/actor/from-user", test_actor_from_user);
    g_test_add_func("/drover/core/actor/authz", test_actor_authz);
    g_test_add_func("/drover/core/kind-info", test_kind_info);
    add_both("/drover/core/actor/created-by", test_actor_created_by);
    add_both("/drover/core/shapers", test_shapers);
    add_both("/drover/core/hooks/before-start", test_hooks_before_start);
    add_both("/drover/core/resolve/errors", test_resolve_errors);
    add_both("/drover/core/ops/fields/declared", test_ops_fields_declared);
    add_both("/drover/core/ops/fields/check", test_ops_fields_check);
    add_both("/drover/core/ops/fields/dump", test_ops_dump_fields);
    add_both("/drover/core/ops/fields/limits", test_ops_fields_limits);
    return g_test_run();
}
