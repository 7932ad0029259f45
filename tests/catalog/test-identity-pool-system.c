/* Identity pools that vanish on the host, system tier: the engine in
 * process against the real local libvirtd (qemu:///system).  Seed 004:
 * the identity disk folder "is recreated if it is deleted so that it is
 * available for reuse" (docs/CATALOGS.md, "Identity pools that vanish").
 *
 * A master VM whose disk is a blank 16 MiB qcow2 (nothing boots: these
 * cases need volumes and definitions only), a catalog of 2 machines, then:
 *
 * - directory-removed: rm -rf of the identity pool's directory while
 *   libvirt still has the pool running; reconcile reports both identity
 *   disks missing, the pool's problem under the pool and the host
 *   reachable; add-machines succeeds and the directory is back with mode
 *   0711, the old machines' disks remade; once more removed, provision
 *   remakes it; once more removed, delete finishes with no records left.
 * - pool-stopped-undefined: the pool stopped in libvirt, then undefined
 *   (its directory removed too), each time reconcile names the missing
 *   disks and provision remakes them; then a pool whose directory cannot
 *   be made (a plain file in its place): delete counts its disks as
 *   deleted with a note and leaves no records.
 *
 * Each case runs in a child process; everything is named dvi<pid><case>-
 * and the parent removes it afterwards (domains, pools, the temp dirs),
 * pass or fail. */
#define G_LOG_DOMAIN "DvTestIdentityPoolSystem"

#include "dv-virt-private.h"
#include "dv-test-catalog.h"
#include "dv-test-system.h"
#include "dv-test-util.h"

#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYSTEM_URI "qemu:///system"
#define JOB_WAIT_MS (180 * 1000)

static DvVirt *the_virt;

/* "dvi<pid><case>-": short, because the naming scheme (at most 15
 * characters) starts with it, so the parent's cleanup finds the domains. */
static char *
prefix_new(pid_t pid, char which)
{
    return g_strdup_printf("dvi%05d%c-", (int)(pid % 100000), which);
}


typedef struct {
    char *prefix;
    char *dir;       /* the catalog pool's directory */
    char *pool;
    char *cat;
    char *id_pool;   /* the catalog's first identity pool */
    char *id_dir;
    char *state_dir;
    DvEngine *engine;
    DvVirtHost *vh;
} Env;

static void
env_clear(Env *env)
{
    g_clear_pointer(&env->engine, dv_engine_free);
    if (env->state_dir != NULL)
        dv_test_system_remove_tree(env->state_dir);
    g_clear_pointer(&env->vh, dv_virt_host_unref);
    g_free(env->prefix);
    g_free(env->dir);
    g_free(env->pool);
    g_free(env->cat);
    g_free(env->id_pool);
    g_free(env->id_dir);
    g_free(env->state_dir);
}

/* Host "local", a master with snapshot "golden", and catalog <prefix>cat
 * of 2 machines provisioned. */
static void
env_setup(Env *env, char which)
{
    g_autofree char *master = NULL;
    g_autofree char *json = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) vol = NULL;
    g_autoptr(GError) error = NULL;

    env->prefix = prefix_new(getppid(), which);
    env->dir = dv_test_system_dir_new(env->prefix);
    env->pool = g_strdup_printf("%spool", env->prefix);
    env->cat = g_strdup_printf("%scat", env->prefix);
    env->id_pool = g_strdup_printf("%s-id-0", env->cat);
    env->id_dir = g_build_filename(env->dir, env->id_pool, NULL);
    env->state_dir = g_strdup_printf("%s/%sstate", g_get_tmp_dir(), env->prefix);
    env->vh = dv_virt_host_get(the_virt, "local-test", SYSTEM_URI);
    dv_test_system_pool_create(env->vh, env->pool, env->dir);
    master = g_strdup_printf("%smaster.qcow2", env->prefix);
    vol = dv_virt_volume_create(env->vh, env->pool, master, 16 << 20, "qcow2", NULL, &error);
    g_assert_no_error(error);

    env->engine = dv_test_engine_new(env->state_dir, FALSE);
    done = dv_test_engine_create(env->engine, DV_KIND_HOST, "{\"name\":\"local\",\"uri\":\"" SYSTEM_URI "\"}",
                                 JOB_WAIT_MS);
    json = g_strdup_printf("{\"name\":\"%smaster\",\"host\":\"local\",\"memory_mib\":128,\"generation\":1,"
                           "\"disks\":[{\"volume\":\"%s\"}]}",
                           env->prefix, dv_json_get_string(vol, "path", ""));
    g_clear_pointer(&done, json_object_unref);
    done = dv_test_engine_create(env->engine, DV_KIND_VM, json, JOB_WAIT_MS);
    {
        g_autofree char *vm = g_strdup_printf("%smaster", env->prefix);
        dv_test_engine_snapshot(env->engine, vm, "golden", JOB_WAIT_MS);
    }
    g_free(json);
    json = g_strdup_printf("{\"name\":\"%s\",\"master_vm\":\"%smaster\",\"master_snapshot\":\"golden\","
                           "\"hosts\":[\"local\"],\"pool\":\"%s\",\"naming_scheme\":\"%s##\",\"count\":2,"
                           "\"machine\":{\"memory_mib\":128}}",
                           env->cat, env->prefix, env->pool, env->prefix);
    g_clear_pointer(&done, json_object_unref);
    done = dv_test_engine_create(env->engine, DV_KIND_CATALOG, json, JOB_WAIT_MS);
    g_assert_true(g_file_test(env->id_dir, G_FILE_TEST_IS_DIR));
}

static guint
file_mode(const char *path)
{
    GStatBuf st;
    if (g_stat(path, &st) != 0)
        g_error("%s: %s", path, g_strerror(errno));
    return st.st_mode & 07777;
}

/* Every machine ready, each identity disk a 0600 file in its recorded
 * place; returns how many machines. */
static guint
assert_machines_ready(Env *env)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) list = dv_engine_catalog_machines(env->engine, env->cat, NULL, &error);
    JsonArray *items;

    g_assert_no_error(error);
    items = dv_json_get_array(list, "items");
    for (guint i = 0; i < json_array_get_length(items); i++) {
        JsonObject *m = json_array_get_object_element(items, i);
        const char *p = dv_json_get_string(m, "identity_path", NULL);
        g_assert_cmpstr(dv_json_get_string(m, "state", ""), ==, "ready");
        g_assert_nonnull(p);
        g_assert_true(g_str_has_prefix(p, env->id_dir));
        g_assert_cmpuint(file_mode(p), ==, 0600);
    }
    /* The directory as when first made: 0711, root's. */
    g_assert_cmpuint(file_mode(env->id_dir), ==, 0711);
    return json_array_get_length(items);
}

static JsonObject *
reconcile(Env *env)
{
    g_autoptr(GError) error = NULL;
    JsonObject *r = dv_engine_catalog_reconcile(env->engine, env->cat, &error);
    g_autofree char *t = NULL;
    g_assert_no_error(error);
    t = dv_json_object_to_string(r, FALSE);
    g_printerr("# reconcile: %s\n", t);
    return r;
}

/* Reconcile names @n identity disks missing (one per machine), the host
 * reachable, and the identity pool's problem under that pool. */
static void
assert_identity_missing(Env *env, guint n)
{
    g_autoptr(JsonObject) r = reconcile(env);
    JsonArray *missing = dv_json_get_array(r, "missing_on_hosts");
    JsonArray *problems = dv_json_get_array(r, "pool_problems");
    g_autoptr(GHashTable) machines = g_hash_table_new(g_str_hash, g_str_equal);

    g_assert_cmpuint(json_array_get_length(dv_json_get_array(r, "unreachable_hosts")), ==, 0);
    g_assert_cmpint(dv_json_get_int(r, "hosts_checked", 0), ==, 1);
    g_assert_cmpuint(json_array_get_length(missing), ==, n);
    for (guint i = 0; i < n; i++) {
        JsonObject *e = json_array_get_object_element(missing, i);
        g_assert_cmpstr(dv_json_get_string(e, "kind", ""), ==, "volume");
        g_assert_cmpstr(dv_json_get_string(e, "host", ""), ==, "local");
        g_assert_true(g_str_has_suffix(dv_json_get_string(e, "name", ""), "-identity.iso"));
        g_assert_true(g_hash_table_add(machines, (gpointer)dv_json_get_string(e, "machine", "")));
    }
    g_assert_nonnull(problems);
    g_assert_cmpuint(json_array_get_length(problems), ==, 1);
    g_assert_cmpstr(dv_json_get_string(json_array_get_object_element(problems, 0), "pool", ""), ==, env->id_pool);
    g_assert_false(dv_json_get_bool(r, "ok", TRUE));
}

static void
assert_reconcile_ok(Env *env)
{
    g_autoptr(JsonObject) r = reconcile(env);
    g_assert_true(dv_json_get_bool(r, "ok", FALSE));
}

static JsonObject *
provision(Env *env)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job =
        dv_engine_catalog_provision(env->engine, env->cat, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    return dv_test_engine_run(env->engine, job, JOB_WAIT_MS);
}

/* Deletes the catalog: the job succeeds, no row of it is left, nor any
 * pool or domain of it on the host.  Returns the job's result notes. */
static JsonArray *
delete_catalog(Env *env)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job = dv_engine_delete(env->engine, DV_KIND_CATALOG, env->cat, NULL,
                                                 DV_ACTOR_NAMED("tester"), &error);
    g_autoptr(JsonObject) done = NULL;
    g_autofree char *vprefix = g_strdup_printf("%s-", env->cat);
    JsonObject *result;

    g_assert_no_error(error);
    done = dv_test_engine_job_row(env->engine, job, JOB_WAIT_MS);
    {
        g_autofree char *t = dv_json_object_to_string(done, FALSE);
        g_printerr("# delete: %s\n", t);
    }
    dv_test_assert_job_succeeded(done);
    result = dv_json_get_object(done, "result");
    g_assert_true(dv_json_get_bool(result, "deleted", FALSE));
    g_assert_cmpint(dv_test_engine_count(env->engine, &dv_table_catalogs), ==, 0);
    g_assert_cmpint(dv_test_engine_count(env->engine, &dv_table_catalog_machines), ==, 0);
    g_assert_cmpint(dv_test_engine_count(env->engine, &dv_table_catalog_bases), ==, 0);
    {
        const char *const args[] = { "list", "--all", "--name", NULL };
        g_autofree char *out = dv_test_virsh(args);
        g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
        g_autofree char *master = g_strdup_printf("%smaster", env->prefix);
        for (guint i = 0; lines[i] != NULL; i++) {
            const char *l = g_strstrip(lines[i]);
            if (g_str_has_prefix(l, env->prefix) && g_strcmp0(l, master) != 0)
                g_error("domain %s is left behind", l);
        }
    }
    {
        const char *const args[] = { "vol-list", env->pool, NULL };
        const char *const refresh[] = { "pool-refresh", env->pool, NULL };
        g_autofree char *r = dv_test_virsh(refresh);
        g_autofree char *out = dv_test_virsh(args);
        g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
        for (guint i = 0; lines[i] != NULL; i++)
            if (g_str_has_prefix(g_strstrip(lines[i]), vprefix) &&
                !g_str_has_prefix(lines[i], env->id_pool))
                g_error("volume %s is left behind", lines[i]);
    }
    g_assert_nonnull(dv_json_get_array(result, "notes"));
    return json_array_ref(dv_json_get_array(result, "notes"));
}

static void
test_directory_removed(void)
{
    Env env = { 0 };
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonArray) notes = NULL;

    env_setup(&env, 'a');
    g_assert_cmpuint(assert_machines_ready(&env), ==, 2);

    /* Removed on the host, the pool still running in libvirt. */
    dv_test_system_remove_tree(env.id_dir);
    g_assert_false(g_file_test(env.id_dir, G_FILE_TEST_EXISTS));
    /* The host's rights are intact: the probe volume goes into a pool that
     * takes it (which pool libvirt lists first is its choice). */
    {
        g_autoptr(JsonObject) rights = dv_virt_host_check_rights(env.vh, NULL, &error);
        g_assert_no_error(error);
        g_assert_true(dv_json_get_bool(rights, "create_volumes", FALSE));
    }
    assert_identity_missing(&env, 2);

    /* add-machines: the new machine made, the directory back, the old
     * machines' disks remade. */
    {
        g_autoptr(JsonObject) body = dv_test_json_object("{\"count\":1}");
        g_autoptr(JsonObject) job = dv_engine_catalog_add_machines(
            env.engine, env.cat, body, DV_ACTOR_NAMED("tester"), &error);
        g_assert_no_error(error);
        done = dv_test_engine_run(env.engine, job, JOB_WAIT_MS);
    }
    g_assert_cmpuint(assert_machines_ready(&env), ==, 3);
    assert_reconcile_ok(&env);

    /* Once more: provision alone remakes it. */
    dv_test_system_remove_tree(env.id_dir);
    assert_identity_missing(&env, 3);
    g_clear_pointer(&done, json_object_unref);
    done = provision(&env);
    g_assert_cmpint(dv_json_get_int(dv_json_get_object(done, "result"), "machines_ready", 0), ==, 3);
    g_assert_cmpuint(assert_machines_ready(&env), ==, 3);
    assert_reconcile_ok(&env);

    /* And delete finishes with the directory gone (and the pool stopped
     * by libvirt when the reconcile's refresh found it gone). */
    dv_test_system_remove_tree(env.id_dir);
    assert_identity_missing(&env, 3);
    notes = delete_catalog(&env);
    g_assert_false(g_file_test(env.id_dir, G_FILE_TEST_EXISTS));
    {
        const char *const args[] = { "pool-list", "--all", "--name", NULL };
        g_autofree char *out = dv_test_virsh(args);
        g_assert_null(strstr(out, env.id_pool));
    }
    env_clear(&env);
}

static void
test_pool_stopped_undefined(void)
{
    Env env = { 0 };
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonArray) notes = NULL;

    env_setup(&env, 'b');
    g_assert_cmpuint(assert_machines_ready(&env), ==, 2);

    /* Stopped in libvirt: its files are there, libvirt does not list them. */
    {
        const char *const args[] = { "pool-destroy", env.id_pool, NULL };
        g_autofree char *out = dv_test_virsh(args);
    }
    assert_identity_missing(&env, 2);
    done = provision(&env);
    g_assert_cmpuint(assert_machines_ready(&env), ==, 2);
    assert_reconcile_ok(&env);

    /* Undefined, and its directory gone with it. */
    {
        const char *const stop[] = { "pool-destroy", env.id_pool, NULL };
        const char *const undef[] = { "pool-undefine", env.id_pool, NULL };
        g_autofree char *o1 = dv_test_virsh(stop);
        g_autofree char *o2 = dv_test_virsh(undef);
    }
    dv_test_system_remove_tree(env.id_dir);
    assert_identity_missing(&env, 2);
    g_clear_pointer(&done, json_object_unref);
    done = provision(&env);
    g_assert_cmpuint(assert_machines_ready(&env), ==, 2);
    assert_reconcile_ok(&env);

    /* A pool that cannot be started: a plain file where its directory
     * was.  Delete counts its disks as deleted and says so. */
    {
        const char *const stop[] = { "pool-destroy", env.id_pool, NULL };
        g_autofree char *o1 = dv_test_virsh(stop);
    }
    dv_test_system_remove_tree(env.id_dir);
    g_assert_true(g_file_set_contents(env.id_dir, "not a directory\n", -1, NULL));
    notes = delete_catalog(&env);
    g_assert_nonnull(notes);
    g_assert_cmpuint(json_array_get_length(notes), >=, 1);
    g_assert_nonnull(strstr(json_array_get_string_element(notes, 0), env.id_pool));
    g_assert_nonnull(strstr(json_array_get_string_element(notes, 0), "count as deleted"));
    env_clear(&env);
}

static void
run_isolated(gconstpointer data)
{
    char which = GPOINTER_TO_INT(data);
    g_autofree char *prefix = NULL;

    if (g_test_subprocess()) {
        if (which == 'a')
            test_directory_removed();
        else
            test_pool_stopped_undefined();
        return;
    }
    if (!dv_test_system_check_daemon(the_virt))
        return;
    prefix = prefix_new(getpid(), which);
    dv_test_system_run_isolated(the_virt, prefix, 420);
}

int
main(int argc, char **argv)
{
    int rc;
    g_test_init(&argc, &argv, NULL);
    the_virt = dv_virt_new();
    g_test_add_data_func("/drover/catalog/identity-pool/system/directory-removed", GINT_TO_POINTER('a'),
                         run_isolated);
    g_test_add_data_func("/drover/catalog/identity-pool/system/pool-stopped-undefined", GINT_TO_POINTER('b'),
                         run_isolated);
    rc = g_test_run();
    dv_virt_free(the_virt);
    return rc;
}
