/* The acceptance flow through the REST API against the real local
 * hypervisor: a droverd process, the system libvirtd (qemu:///system) and
 * QEMU under TCG.  Run as root after scripts/ensure-libvirtd (make check
 * does both through tests/services/with-services).
 *
 * Every case runs in a child process.  The parent owns the names (all
 * start with dvsys-<pid>-<hash>-), the pool directory and droverd's state
 * directory, and removes everything carrying the prefix with virsh after
 * the child ends, also when the child failed half-way. */
#define G_LOG_DOMAIN "DvTestApiSystem"

#include "dv-test-util.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define SYSTEM_URI "qemu:///system"
#define OVMF_CODE "/usr/share/OVMF/OVMF_CODE_4M.ms.fd"
#define NVRAM_DIR "/var/lib/libvirt/qemu/nvram"
#define ENV_POOL_DIR "DV_SYSTEM_TEST_POOL_DIR"
#define ENV_STATE_DIR "DV_SYSTEM_TEST_STATE_DIR"

typedef struct {
    DvTestDaemon *d;
    char *prefix;
    char *pool_dir;
    char *pool;     /* <prefix>pool */
    char *host;     /* <prefix>local */
    char *host_id;
    char *host_path; /* /api/v1/hosts/<id> */
} Fixture;

/* --- commands ------------------------------------------------------------ */

/* Runs @argv; returns TRUE when it exited 0.  @ret_out (may be NULL) gets
 * stdout.  Never asserts: cleanup uses it too. */
static gboolean
run_argv(const char *const *argv, char **ret_out, char **ret_err)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    int status = 0;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
                      &status, &error)) {
        if (ret_err != NULL)
            *ret_err = g_strdup(error->message);
        return FALSE;
    }
    if (ret_out != NULL)
        *ret_out = g_steal_pointer(&out);
    if (ret_err != NULL)
        *ret_err = g_steal_pointer(&err);
    return g_spawn_check_wait_status(status, NULL);
}

/* virsh -c qemu:///system ARGS...; NULL-terminated. */
static gboolean
virsh(char **ret_out, ...)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    va_list ap;
    const char *arg;

    g_ptr_array_add(argv, "virsh");
    g_ptr_array_add(argv, "-q");
    g_ptr_array_add(argv, "-c");
    g_ptr_array_add(argv, SYSTEM_URI);
    va_start(ap, ret_out);
    while ((arg = va_arg(ap, const char *)) != NULL)
        g_ptr_array_add(argv, (char *)arg);
    va_end(ap);
    g_ptr_array_add(argv, NULL);
    return run_argv((const char *const *)argv->pdata, ret_out, NULL);
}

/* Like virsh() but asserts success and returns stdout, stripped. */
static char *
virsh_ok(const char *what, ...)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    va_list ap;
    const char *arg;

    g_ptr_array_add(argv, "virsh");
    g_ptr_array_add(argv, "-q");
    g_ptr_array_add(argv, "-c");
    g_ptr_array_add(argv, SYSTEM_URI);
    va_start(ap, what);
    while ((arg = va_arg(ap, const char *)) != NULL)
        g_ptr_array_add(argv, (char *)arg);
    va_end(ap);
    g_ptr_array_add(argv, NULL);
    if (!run_argv((const char *const *)argv->pdata, &out, &err))
        g_error("virsh %s failed: %s", what, err != NULL ? err : "?");
    return g_strstrip(g_steal_pointer(&out));
}

/* Reachability, once per process.  Empty string: reachable. */
static const char *
daemon_problem(void)
{
    static char *problem;
    if (problem == NULL) {
        g_autofree char *out = NULL;
        g_autofree char *err = NULL;
        const char *const argv[] = { "virsh", "-c", SYSTEM_URI, "version", NULL };
        if (getuid() != 0)
            problem = g_strdup("the system test needs root (qemu:///system, its admin socket)");
        else if (!run_argv(argv, &out, &err))
            problem = g_strdup_printf("libvirtd is not reachable at %s (%s); run "
                                      "scripts/ensure-libvirtd as root",
                                      SYSTEM_URI, err != NULL ? g_strstrip(err) : "?");
        else
            problem = g_strdup("");
    }
    return problem;
}

/* A missing daemon fails in CI (or under with-services) and skips
 * elsewhere, always saying why. */
static gboolean
check_daemon(void)
{
    const char *problem = daemon_problem();
    if (problem[0] == '\0')
        return TRUE;
    if (dv_test_require_services())
        g_error("%s", problem);
    g_test_skip(problem);
    return FALSE;
}

/* The parent and the child derive the same prefix: parent pid and test
 * path. */
static char *
test_prefix_new(pid_t parent)
{
    return g_strdup_printf("dvsys-%d-%08x-", (int)parent, g_str_hash(g_test_get_path()));
}

/* --- cleanup (parent) ------------------------------------------------------ */

static void
remove_tree(const char *dir)
{
    const char *const argv[] = { "rm", "-rf", "--", dir, NULL };
    if (dir != NULL && !run_argv(argv, NULL, NULL))
        g_printerr("cleanup: cannot remove %s\n", dir);
}

static void
cleanup_prefix(const char *prefix)
{
    g_autofree char *doms = NULL;
    g_autofree char *pool = g_strdup_printf("%spool", prefix);
    g_autofree char *vols = NULL;

    if (virsh(&doms, "list", "--all", "--name", NULL)) {
        g_auto(GStrv) names = g_strsplit(doms, "\n", -1);
        for (guint i = 0; names[i] != NULL; i++) {
            const char *n = g_strstrip(names[i]);
            if (!g_str_has_prefix(n, prefix))
                continue;
            g_printerr("cleanup: removing leftover domain %s\n", n);
            virsh(NULL, "destroy", n, NULL);
            if (!virsh(NULL, "undefine", n, "--nvram", "--snapshots-metadata", "--managed-save",
                       NULL))
                virsh(NULL, "undefine", n, NULL);
        }
    }
    if (virsh(&vols, "vol-list", "--pool", pool, NULL)) {
        g_auto(GStrv) lines = g_strsplit(vols, "\n", -1);
        for (guint i = 0; lines[i] != NULL; i++) {
            g_auto(GStrv) cols = g_strsplit_set(g_strstrip(lines[i]), " \t", 2);
            if (cols[0] == NULL || cols[0][0] == '\0')
                continue;
            virsh(NULL, "vol-delete", "--pool", pool, cols[0], NULL);
        }
    }
    virsh(NULL, "pool-destroy", pool, NULL);
    virsh(NULL, "pool-undefine", pool, NULL);
    /* What the pool-and-network case makes through Drover. */
    {
        g_autofree char *pool2 = g_strdup_printf("%spool2", prefix);
        g_autofree char *net = g_strdup_printf("%snet", prefix);
        virsh(NULL, "pool-destroy", pool2, NULL);
        virsh(NULL, "pool-undefine", pool2, NULL);
        virsh(NULL, "net-destroy", net, NULL);
        virsh(NULL, "net-undefine", net, NULL);
    }
}

/* --- fixture (child) ------------------------------------------------------- */

static void
assert_succeeded(JsonObject *job)
{
    if (g_strcmp0(json_object_get_string_member(job, "state"), "succeeded") != 0) {
        g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), job);
        g_autofree char *t = json_to_string(n, FALSE);
        g_error("job did not succeed: %s", t);
    }
    g_assert_cmpint(json_object_get_int_member(job, "progress"), ==, 100);
}

static void
assert_job_error(JsonObject *job, const char *code, const char *field, const char *in_message)
{
    JsonObject *err;
    if (g_strcmp0(json_object_get_string_member(job, "state"), "failed") != 0) {
        g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), job);
        g_autofree char *t = json_to_string(n, FALSE);
        g_error("job did not fail: %s", t);
    }
    err = json_object_get_object_member(job, "error");
    g_assert_nonnull(err);
    g_test_message("job error: %s", json_object_get_string_member(err, "message"));
    g_assert_cmpstr(json_object_get_string_member(err, "code"), ==, code);
    if (field != NULL)
        g_assert_cmpstr(json_object_get_string_member_with_default(err, "field", "(null)"), ==,
                        field);
    if (in_message != NULL)
        g_assert_nonnull(strstr(json_object_get_string_member(err, "message"), in_message));
}

static JsonNode *
get_ok(Fixture *f, const char *path)
{
    guint status = 0;
    JsonNode *n = dv_test_request(f->d, "GET", path, NULL, &status);
    if (status != 200) {
        g_autofree char *t = n != NULL ? json_to_string(n, FALSE) : g_strdup("(none)");
        g_error("GET %s: %u %s", path, status, t);
    }
    return n;
}

static void
make_pool(Fixture *f)
{
    g_free(virsh_ok("pool-define-as", "pool-define-as", f->pool, "dir", "--target", f->pool_dir,
                    NULL));
    g_free(virsh_ok("pool-build", "pool-build", f->pool, NULL));
    g_free(virsh_ok("pool-start", "pool-start", f->pool, NULL));
}

static void
fixture_setup(Fixture *f)
{
    g_autofree char *body = NULL;
    g_autofree char *state_dir = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonNode) host = NULL;
    JsonObject *ho;
    JsonObject *limits;
    JsonObject *daemon;
    JsonObject *rights;

    f->prefix = test_prefix_new(getppid());
    f->pool_dir = g_strdup(g_getenv(ENV_POOL_DIR));
    state_dir = g_strdup(g_getenv(ENV_STATE_DIR));
    g_assert_nonnull(f->pool_dir);
    g_assert_nonnull(state_dir);
    f->pool = g_strdup_printf("%spool", f->prefix);
    f->host = g_strdup_printf("%slocal", f->prefix);
    f->d = dv_test_daemon_start(state_dir, NULL);

    body = g_strdup_printf("{\"name\":\"%s\",\"uri\":\"%s\"}", f->host, SYSTEM_URI);
    job = dv_test_run_job(f->d, "POST", "/api/v1/hosts", body);
    assert_succeeded(job);
    f->host_id = g_strdup(json_object_get_string_member(
        json_object_get_object_member(job, "result"), "id"));
    f->host_path = g_strdup_printf("/api/v1/hosts/%s", f->host_id);

    host = get_ok(f, f->host_path);
    ho = json_node_get_object(host);
    g_assert_cmpstr(json_object_get_string_member(ho, "state"), ==, "ok");
    g_assert_cmpstr(json_object_get_string_member(ho, "hypervisor_type"), ==, "QEMU");
    /* libvirtd's own limits, read through the admin API, beside ours. */
    limits = json_object_get_object_member(ho, "limits");
    g_assert_nonnull(limits);
    g_assert_cmpint(json_object_get_int_member(limits, "max_connections"), ==, 16);
    g_assert_cmpint(json_object_get_int_member(limits, "max_concurrent_operations"), ==, 16);
    g_assert_false(json_object_get_null_member(limits, "daemon"));
    daemon = json_object_get_object_member(limits, "daemon");
    g_assert_true(json_object_has_member(daemon, "max_workers"));
    g_assert_cmpint(json_object_get_int_member(daemon, "max_workers"), >, 0);
    g_assert_true(json_object_has_member(daemon, "max_clients"));
    g_assert_true(json_object_has_member(daemon, "max_client_requests"));
    rights = json_object_get_object_member(ho, "rights");
    g_assert_true(json_object_get_boolean_member(rights, "read_write"));
    g_assert_true(json_object_get_boolean_member(rights, "list_storage"));
    g_assert_true(json_object_get_boolean_member(rights, "create_volumes"));
    g_assert_true(json_object_get_boolean_member(rights, "define_domains"));
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(rights, "missing")), ==, 0);

    /* The pool is made after the host was added: a refresh finds it. */
    make_pool(f);
    {
        g_autofree char *rp = g_strdup_printf("%s/refresh", f->host_path);
        g_autofree char *q = g_strdup_printf("/api/v1/storage-pools?host_id=%s&name=%s", f->host_id,
                                             f->pool);
        g_autoptr(JsonObject) rj = dv_test_run_job(f->d, "POST", rp, NULL);
        g_autoptr(JsonNode) pools = NULL;
        JsonObject *p;
        assert_succeeded(rj);
        pools = get_ok(f, q);
        g_assert_cmpuint(json_array_get_length(json_object_get_array_member(json_node_get_object(pools), "items")), ==, 1);
        p = json_array_get_object_element(json_object_get_array_member(json_node_get_object(pools), "items"), 0);
        g_assert_cmpstr(json_object_get_string_member(p, "state"), ==, "running");
        g_assert_cmpstr(json_object_get_string_member(p, "path"), ==, f->pool_dir);
    }
}

static void
fixture_teardown(Fixture *f)
{
    g_clear_pointer(&f->d, dv_test_daemon_free);
    g_free(f->prefix);
    g_free(f->pool_dir);
    g_free(f->pool);
    g_free(f->host);
    g_free(f->host_id);
    g_free(f->host_path);
}

/* --- helpers --------------------------------------------------------------- */

static char *
submit(Fixture *f, const char *method, const char *path, const char *body)
{
    guint status = 0;
    g_autoptr(JsonNode) r = dv_test_request(f->d, method, path, body, &status);
    if (status != 202) {
        g_autofree char *t = r != NULL ? json_to_string(r, FALSE) : g_strdup("(none)");
        g_error("%s %s: expected 202, got %u: %s", method, path, status, t);
    }
    return g_strdup(json_object_get_string_member(
        json_object_get_object_member(json_node_get_object(r), "job"), "id"));
}

static char *
vm_create_body(Fixture *f, const char *vm, guint generation, gboolean secure_boot)
{
    return g_strdup_printf("{\"name\":\"%s%s\",\"host\":\"%s\",\"vcpus\":1,\"memory_mib\":64,"
                           "\"generation\":%u%s,\"disks\":[{\"size_mib\":16,\"pool\":\"%s\"}]}",
                           f->prefix, vm, f->host, generation,
                           secure_boot ? ",\"secure_boot\":true" : "", f->pool);
}

static char *
vol_path(Fixture *f, const char *vm)
{
    g_autofree char *name = g_strdup_printf("%s%s-disk0.qcow2", f->prefix, vm);
    return g_build_filename(f->pool_dir, name, NULL);
}

static char *
domstate(const char *dom)
{
    return virsh_ok("domstate", "domstate", dom, NULL);
}

static gboolean
domain_exists(const char *dom)
{
    return virsh(NULL, "dominfo", dom, NULL);
}

static JsonObject *
run_ok(Fixture *f, const char *method, const char *path, const char *body)
{
    JsonObject *job = dv_test_run_job(f->d, method, path, body);
    assert_succeeded(job);
    return job;
}

/* Reads a job's event stream to its end.  Progress never goes down and the
 * last progress event is the finished job at 100 %.  Returns that last job
 * object. */
static JsonObject *
watch_events(Fixture *f, const char *job_id)
{
    guint status = 0;
    g_autoptr(GPtrArray) events = dv_test_job_events(f->d, f->d->token, job_id, &status);
    g_autoptr(JsonObject) last = NULL;
    gint64 prev = -1;

    g_assert_cmpuint(status, ==, 200);
    for (guint i = 0; i < events->len; i++) {
        g_autoptr(JsonParser) p = json_parser_new();
        JsonObject *job;
        gint64 progress;
        g_assert_true(json_parser_load_from_data(p, g_ptr_array_index(events, i), -1, NULL));
        job = json_node_get_object(json_parser_get_root(p));
        progress = json_object_get_int_member(job, "progress");
        g_assert_cmpint(progress, >=, prev);
        g_assert_cmpint(progress, <=, 100);
        prev = progress;
        g_clear_pointer(&last, json_object_unref);
        last = json_object_ref(job);
    }
    g_assert_nonnull(last);
    g_test_message("job %s: %u progress events", job_id, events->len);
    g_assert_cmpuint(events->len, >=, 2);
    g_assert_cmpint(prev, ==, 100);
    return g_steal_pointer(&last);
}

/* --- cases ----------------------------------------------------------------- */

/* Day-2 changes on a real QEMU guest (issue 12, item 4): a blank-disk
 * machine runs SeaBIOS with no OS, so it ignores ACPI power buttons,
 * which the shutdown timeout needs. */
static void
test_vm_day2(Fixture *f)
{
    g_autofree char *vm = g_strdup_printf("%sday2", f->prefix);
    g_autofree char *vm_path = g_strdup_printf("/api/v1/vms/%s", vm);
    g_autofree char *body = vm_create_body(f, "day2", 1, FALSE);
    g_autofree char *p = NULL;
    g_autofree char *state = NULL;
    g_autofree char *xml = NULL;
    g_autoptr(JsonObject) j = NULL;
    JsonObject *applied;
    guint status = 0;
    gint64 t0;

    j = run_ok(f, "POST", "/api/v1/vms", body);
    g_clear_pointer(&j, json_object_unref);
    p = g_strdup_printf("%s/start", vm_path);
    j = run_ok(f, "POST", p, NULL);
    g_clear_pointer(&j, json_object_unref);
    state = domstate(vm);
    g_assert_nonnull(strstr(state, "running"));

    /* Memory under the running maximum: live (the balloon target) and in
     * the definition; vCPUs above the maximum: the definition, next boot. */
    j = run_ok(f, "PATCH", vm_path, "{\"memory_mib\":48,\"vcpus\":2,\"autostart\":true}");
    applied = json_object_get_object_member(json_object_get_object_member(j, "result"), "applied");
    g_assert_cmpstr(json_object_get_string_member(applied, "memory_mib"), ==, "live");
    g_assert_cmpstr(json_object_get_string_member(applied, "vcpus"), ==, "next-boot");
    g_clear_pointer(&j, json_object_unref);
    xml = virsh_ok("dumpxml", "dumpxml", "--inactive", vm, NULL);
    g_assert_nonnull(strstr(xml, "<currentMemory unit='KiB'>49152</currentMemory>"));
    g_assert_nonnull(strstr(xml, ">2</vcpu>"));
    g_clear_pointer(&xml, g_free);
    xml = virsh_ok("dominfo", "dominfo", vm, NULL);
    g_assert_nonnull(strstr(xml, "Autostart:      enable"));
    g_clear_pointer(&xml, g_free);
    xml = virsh_ok("dumpxml", "dumpxml", vm, NULL);
    /* The running machine keeps its one vCPU until it boots again. */
    g_assert_nonnull(strstr(xml, ">1</vcpu>"));

    /* Renaming a running VM: 409 naming the field, nothing changes. */
    {
        g_autoptr(JsonNode) r =
            dv_test_request(f->d, "PATCH", vm_path, "{\"name\":\"x\"}", &status);
        g_assert_cmpuint(status, ==, 409);
        g_assert_true(domain_exists(vm));
    }
    /* Memory above the host's: 400 naming memory_mib. */
    {
        g_autoptr(JsonNode) r =
            dv_test_request(f->d, "PATCH", vm_path, "{\"memory_mib\":4194304}", &status);
        g_autofree char *t = json_to_string(r, FALSE);
        g_assert_cmpuint(status, ==, 400);
        g_assert_nonnull(strstr(t, "memory_mib"));
    }

    g_clear_pointer(&p, g_free);
    p = g_strdup_printf("%s/reboot", vm_path);
    j = run_ok(f, "POST", p, NULL);
    g_clear_pointer(&j, json_object_unref);
    g_clear_pointer(&p, g_free);
    p = g_strdup_printf("%s/reset", vm_path);
    j = run_ok(f, "POST", p, NULL);
    g_clear_pointer(&j, json_object_unref);
    g_clear_pointer(&state, g_free);
    state = domstate(vm);
    g_assert_nonnull(strstr(state, "running"));

    /* A shutdown the guest ignores ends as a timeout naming the VM. */
    g_clear_pointer(&p, g_free);
    p = g_strdup_printf("%s/shutdown", vm_path);
    t0 = g_get_monotonic_time();
    j = dv_test_run_job(f->d, "POST", p, "{\"timeout\":3}");
    {
        JsonObject *err = json_object_get_object_member(j, "error");
        const char *msg = json_object_get_string_member(err, "message");
        g_autofree char *want = g_strdup_printf("VM %s did not shut down within 3 s", vm);
        g_test_message("shutdown: %s after %.1f s", msg,
                       (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC);
        g_assert_cmpstr(json_object_get_string_member(j, "state"), ==, "failed");
        g_assert_cmpstr(json_object_get_string_member(err, "code"), ==, "timeout");
        g_assert_nonnull(strstr(msg, want));
        g_assert_null(strstr(msg, "unreachable"));
        g_assert_cmpint(g_get_monotonic_time() - t0, <, 30 * G_USEC_PER_SEC);
    }
    g_clear_pointer(&j, json_object_unref);

    /* Delete while running: 409 naming the state; with force it goes. */
    {
        g_autoptr(JsonNode) r = dv_test_request(f->d, "DELETE", vm_path, NULL, &status);
        g_autofree char *t = json_to_string(r, FALSE);
        g_assert_cmpuint(status, ==, 409);
        g_assert_nonnull(strstr(t, "is running"));
        g_assert_true(domain_exists(vm));
    }
    g_clear_pointer(&p, g_free);
    p = g_strdup_printf("%s?force=true&delete_volumes=true", vm_path);
    j = run_ok(f, "DELETE", p, NULL);
    g_assert_false(domain_exists(vm));
}

static void
test_vm_lifecycle(Fixture *f)
{
    g_autofree char *vm = g_strdup_printf("%svm1", f->prefix);
    g_autofree char *vm_path = g_strdup_printf("/api/v1/vms/%s", vm);
    g_autofree char *body = vm_create_body(f, "vm1", 1, FALSE);
    g_autofree char *vpath = vol_path(f, "vm1");
    g_autofree char *job_id = NULL;
    g_autofree char *state = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *snaps = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) final = NULL;
    guint status = 0;

    /* Create, following the job's event stream. */
    job_id = submit(f, "POST", "/api/v1/vms", body);
    final = watch_events(f, job_id);
    g_assert_cmpstr(json_object_get_string_member(final, "state"), ==, "succeeded");
    job = dv_test_wait_job(f->d, job_id, 10);
    assert_succeeded(job);
    g_assert_cmpstr(json_object_get_string_member(job, "kind"), ==, "vm.create");
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(job, "steps")), ==, 4);

    g_assert_true(domain_exists(vm));
    xml = virsh_ok("dumpxml", "dumpxml", vm, NULL);
    /* TCG, not KVM: guests hang under KVM on these machines. */
    g_assert_nonnull(strstr(xml, "<domain type='qemu'"));
    g_assert_nonnull(strstr(xml, vpath));
    g_assert_true(g_file_test(vpath, G_FILE_TEST_IS_REGULAR));
    state = domstate(vm);
    g_assert_cmpstr(state, ==, "shut off");
    {
        g_autoptr(JsonNode) v = get_ok(f, vm_path);
        g_assert_cmpstr(json_object_get_string_member(json_node_get_object(v), "state"), ==, "shutoff");
        g_assert_cmpint(json_object_get_int_member(json_node_get_object(v), "generation"), ==, 1);
    }

    /* Start. */
    {
        g_autofree char *p = g_strdup_printf("%s/start", vm_path);
        g_autoptr(JsonObject) j = run_ok(f, "POST", p, NULL);
        g_free(state);
        state = domstate(vm);
        g_assert_cmpstr(state, ==, "running");
    }

    /* Snapshot of the running guest, seen by the API and by virsh. */
    {
        g_autofree char *p = g_strdup_printf("%s/snapshots", vm_path);
        g_autoptr(JsonObject) j = run_ok(f, "POST", p, "{\"name\":\"s1\",\"description\":\"first\"}");
        g_autoptr(JsonNode) list = get_ok(f, p);
        JsonArray *items = json_object_get_array_member(json_node_get_object(list), "items");
        g_assert_cmpuint(json_array_get_length(items), ==, 1);
        g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(items, 0), "name"), ==, "s1");
        snaps = virsh_ok("snapshot-list", "snapshot-list", vm, "--name", NULL);
        g_assert_cmpstr(snaps, ==, "s1");
    }
    {
        g_autofree char *p = g_strdup_printf("%s/snapshots/s1/revert", vm_path);
        g_autoptr(JsonObject) j = run_ok(f, "POST", p, NULL);
        g_free(state);
        state = domstate(vm);
        g_assert_cmpstr(state, ==, "running");
    }
    {
        g_autofree char *p = g_strdup_printf("%s/snapshots/s1", vm_path);
        g_autofree char *lp = g_strdup_printf("%s/snapshots", vm_path);
        g_autoptr(JsonObject) j = run_ok(f, "DELETE", p, NULL);
        g_autoptr(JsonNode) list = get_ok(f, lp);
        g_assert_cmpuint(json_array_get_length(json_object_get_array_member(json_node_get_object(list), "items")), ==, 0);
        g_free(snaps);
        snaps = virsh_ok("snapshot-list", "snapshot-list", vm, "--name", NULL);
        g_assert_cmpstr(snaps, ==, "");
    }

    /* A running VM is not deleted. */
    {
        g_autoptr(JsonNode) r = dv_test_request(f->d, "DELETE", vm_path, NULL, &status);
        dv_test_assert_error(r, status, 409, "conflict", NULL);
    }
    /* Stop. */
    {
        g_autofree char *p = g_strdup_printf("%s/stop", vm_path);
        g_autoptr(JsonObject) j = run_ok(f, "POST", p, NULL);
        g_free(state);
        state = domstate(vm);
        g_assert_cmpstr(state, ==, "shut off");
    }
    /* Delete with its volume. */
    {
        g_autofree char *p = g_strdup_printf("%s?delete_volumes=true", vm_path);
        g_autoptr(JsonObject) j = run_ok(f, "DELETE", p, NULL);
        g_autoptr(JsonNode) r = dv_test_request(f->d, "GET", vm_path, NULL, &status);
        dv_test_assert_error(r, status, 404, "not-found", NULL);
    }
    g_assert_false(domain_exists(vm));
    g_assert_false(g_file_test(vpath, G_FILE_TEST_EXISTS));
}

/* A pool and an isolated network made, stopped and deleted with Drover
 * alone (the README's tour needs no virsh), and a file copied into the
 * pool's directory listed after a host refresh. */
static void
test_pool_and_network(Fixture *f)
{
    g_autofree char *dir = g_build_filename(f->pool_dir, "second", NULL);
    g_autofree char *pool2 = g_strdup_printf("%spool2", f->prefix);
    g_autofree char *net = g_strdup_printf("%snet", f->prefix);
    /* A subnet of its own per run: 10.2xx.yyy.0/24 from the process id. */
    guint pid = (guint)getpid();
    g_autofree char *address = g_strdup_printf("10.%u.%u.1/24", 200 + pid % 50, (pid / 50) % 250);
    g_autofree char *body = NULL;
    g_autofree char *path = NULL;
    g_autofree char *file = g_build_filename(dir, "copied.img", NULL);
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(GError) error = NULL;

    g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
    body = g_strdup_printf("{\"name\":\"%s\",\"host\":\"%s\",\"type\":\"dir\",\"path\":\"%s\"}",
                           pool2, f->host, dir);
    job = dv_test_run_job(f->d, "POST", "/api/v1/storage-pools", body);
    assert_succeeded(job);
    g_clear_pointer(&body, g_free);
    body = g_strdup_printf("{\"name\":\"%s\",\"host\":\"%s\",\"forward\":\"isolated\","
                           "\"address\":\"%s\"}",
                           net, f->host, address);
    g_clear_pointer(&job, json_object_unref);
    job = dv_test_run_job(f->d, "POST", "/api/v1/networks", body);
    assert_succeeded(job);
    {
        g_autofree char *out = NULL;
        g_assert_true(virsh(&out, "net-info", net, NULL));
        g_assert_nonnull(strstr(out, "Active:         yes"));
    }

    /* A file copied in behind libvirt's back: listed after a refresh. */
    g_assert_true(g_file_set_contents(file, "0123456789", 10, &error));
    g_assert_no_error(error);
    path = g_strdup_printf("%s/refresh", f->host_path);
    g_clear_pointer(&job, json_object_unref);
    job = dv_test_run_job(f->d, "POST", path, NULL);
    assert_succeeded(job);
    {
        g_autofree char *q = g_strdup_printf("/api/v1/volumes?host_id=%s&name=copied.img", f->host_id);
        g_autoptr(JsonNode) vols = get_ok(f, q);
        JsonArray *items = json_object_get_array_member(json_node_get_object(vols), "items");
        g_assert_cmpuint(json_array_get_length(items), ==, 1);
        g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(items, 0), "path"),
                        ==, file);
    }

    /* Stopped and deleted by name; libvirt knows neither any more. */
    {
        const char *const what[][2] = { { "storage-pools", NULL }, { "networks", NULL } };
        for (guint i = 0; i < G_N_ELEMENTS(what); i++) {
            const char *name = i == 0 ? pool2 : net;
            g_autofree char *stop = g_strdup_printf("/api/v1/%s/%s/stop", what[i][0], name);
            g_autofree char *del = g_strdup_printf("/api/v1/%s/%s", what[i][0], name);
            g_clear_pointer(&job, json_object_unref);
            job = dv_test_run_job(f->d, "POST", stop, NULL);
            assert_succeeded(job);
            g_clear_pointer(&job, json_object_unref);
            job = dv_test_run_job(f->d, "DELETE", del, NULL);
            assert_succeeded(job);
        }
    }
    g_assert_false(virsh(NULL, "pool-info", pool2, NULL));
    g_assert_false(virsh(NULL, "net-info", net, NULL));
    /* The pool's files stay. */
    g_assert_true(g_file_test(file, G_FILE_TEST_EXISTS));
}

static void
test_mixed_cluster(Fixture *f)
{
    g_autofree char *cluster = g_strdup_printf("%sc", f->prefix);
    g_autofree char *body = g_strdup_printf("{\"name\":\"%s\"}", cluster);
    g_autofree char *patch = g_strdup_printf("{\"cluster\":\"%s\"}", cluster);
    g_autofree char *sim_xml = NULL;
    g_autofree char *sim_body = NULL;
    g_autofree char *sim_name = g_strdup_printf("%ssim", f->prefix);
    g_autofree char *sim_q = g_strdup_printf("/api/v1/hosts?name=%s", sim_name);
    g_autoptr(JsonObject) j = NULL;
    g_autoptr(JsonNode) c = NULL;

    j = run_ok(f, "POST", "/api/v1/clusters", body);
    g_clear_pointer(&j, json_object_unref);
    /* The real host joins the empty cluster. */
    j = run_ok(f, "PATCH", f->host_path, patch);
    {
        g_autoptr(JsonNode) h = get_ok(f, f->host_path);
        g_autofree char *cp = g_strdup_printf("/api/v1/clusters/%s", cluster);
        c = get_ok(f, cp);
        g_assert_cmpstr(json_object_get_string_member(json_node_get_object(h), "cluster_id"), ==,
                        json_object_get_string_member(json_node_get_object(c), "id"));
    }

    /* A simulated host (hypervisor TEST) may not join it. */
    sim_xml = dv_test_write_host_xml(f->d->state_dir, "sim.xml", "simdom", 1);
    sim_body = g_strdup_printf("{\"name\":\"%s\",\"uri\":\"test://%s\",\"cluster\":\"%s\"}",
                               sim_name, sim_xml, cluster);
    g_clear_pointer(&j, json_object_unref);
    j = dv_test_run_job(f->d, "POST", "/api/v1/hosts", sim_body);
    assert_job_error(j, "conflict", "cluster", "mixed");
    g_assert_cmpint(dv_test_count(f->d, sim_q), ==, 0);
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/hosts"), ==, 1);
    /* Nothing of it was imported either. */
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/vms?name_prefix=simdom"), ==, 0);
    g_unlink(sim_xml);
}

static void
test_unreachable_host(Fixture *f)
{
    g_autofree char *name = g_strdup_printf("%sgone", f->prefix);
    g_autofree char *body = g_strdup_printf("{\"name\":\"%s\",\"uri\":\"qemu+tcp://127.0.0.1:1/system\"}",
                                            name);
    g_autofree char *q = g_strdup_printf("/api/v1/hosts?name=%s", name);
    gint64 t0 = g_get_monotonic_time();
    g_autoptr(JsonObject) j = dv_test_run_job(f->d, "POST", "/api/v1/hosts", body);

    assert_job_error(j, "unavailable", NULL, name);
    g_test_message("unreachable host failed in %.2f s", (g_get_monotonic_time() - t0) / 1e6);
    g_assert_cmpint(dv_test_count(f->d, q), ==, 0);
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/hosts"), ==, 1);
}

static void
test_serialised_creates(Fixture *f)
{
    static const char *const vms[] = { "ser-a", "ser-b", "ser-c" };
    g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(JsonObject) j = NULL;
    gint64 t0;

    j = run_ok(f, "PATCH", f->host_path, "{\"max_concurrent_operations\":1}");
    {
        g_autoptr(JsonNode) h = get_ok(f, f->host_path);
        JsonObject *limits = json_object_get_object_member(json_node_get_object(h), "limits");
        g_assert_cmpint(json_object_get_int_member(limits, "max_concurrent_operations"), ==, 1);
    }
    t0 = g_get_monotonic_time();
    for (gsize i = 0; i < G_N_ELEMENTS(vms); i++) {
        g_autofree char *body = vm_create_body(f, vms[i], 1, FALSE);
        g_ptr_array_add(ids, submit(f, "POST", "/api/v1/vms", body));
    }
    for (gsize i = 0; i < G_N_ELEMENTS(vms); i++) {
        g_autoptr(JsonObject) done = dv_test_wait_job(f->d, g_ptr_array_index(ids, i), 300);
        g_autofree char *name = g_strdup_printf("%s%s", f->prefix, vms[i]);
        g_autofree char *vp = vol_path(f, vms[i]);
        assert_succeeded(done);
        g_assert_true(domain_exists(name));
        g_assert_true(g_file_test(vp, G_FILE_TEST_IS_REGULAR));
    }
    g_test_message("3 creates with max_concurrent_operations 1: %.2f s",
                   (g_get_monotonic_time() - t0) / 1e6);

    g_clear_pointer(&j, json_object_unref);
    j = run_ok(f, "PATCH", f->host_path, "{\"max_concurrent_operations\":16}");
    {
        g_autoptr(JsonNode) h = get_ok(f, f->host_path);
        JsonObject *limits = json_object_get_object_member(json_node_get_object(h), "limits");
        g_assert_cmpint(json_object_get_int_member(limits, "max_concurrent_operations"), ==, 16);
    }
    for (gsize i = 0; i < G_N_ELEMENTS(vms); i++) {
        g_autofree char *name = g_strdup_printf("%s%s", f->prefix, vms[i]);
        g_autofree char *p = g_strdup_printf("/api/v1/vms/%s?delete_volumes=true", name);
        g_autofree char *vp = vol_path(f, vms[i]);
        g_autoptr(JsonObject) dj = run_ok(f, "DELETE", p, NULL);
        g_assert_false(domain_exists(name));
        g_assert_false(g_file_test(vp, G_FILE_TEST_EXISTS));
    }
}

static void
test_gen2_secure_boot(Fixture *f)
{
    g_autofree char *vm = g_strdup_printf("%sgen2", f->prefix);
    g_autofree char *vm_path = g_strdup_printf("/api/v1/vms/%s", vm);
    g_autofree char *body = vm_create_body(f, "gen2", 2, TRUE);
    g_autofree char *vpath = vol_path(f, "gen2");
    g_autofree char *nvram = g_strdup_printf(NVRAM_DIR "/%s_VARS.fd", vm);
    g_autofree char *state = NULL;
    g_autofree char *xml = NULL;
    g_autoptr(JsonObject) j = NULL;
    gint64 jobs_before;
    guint status = 0;

    if (!g_file_test(OVMF_CODE, G_FILE_TEST_EXISTS)) {
        if (dv_test_require_services())
            g_error("no " OVMF_CODE " (package ovmf)");
        g_test_skip("no " OVMF_CODE " (package ovmf)");
        return;
    }
    j = run_ok(f, "POST", "/api/v1/vms", body);
    {
        g_autoptr(JsonNode) v = get_ok(f, vm_path);
        JsonObject *o = json_node_get_object(v);
        g_assert_cmpint(json_object_get_int_member(o, "generation"), ==, 2);
        g_assert_true(json_object_get_boolean_member(o, "secure_boot"));
    }
    g_clear_pointer(&j, json_object_unref);
    {
        g_autofree char *p = g_strdup_printf("%s/start", vm_path);
        j = run_ok(f, "POST", p, NULL);
    }
    state = domstate(vm);
    g_assert_cmpstr(state, ==, "running");
    /* libvirt picked the Secure Boot OVMF build from the descriptors. */
    xml = virsh_ok("dumpxml", "dumpxml", vm, NULL);
    g_assert_nonnull(strstr(xml, "<domain type='qemu'"));
    g_assert_nonnull(strstr(xml, "OVMF_CODE_4M.ms.fd"));
    g_assert_true(g_file_test(nvram, G_FILE_TEST_EXISTS));

    /* No internal snapshots of UEFI guests: refused at once, no job. */
    jobs_before = dv_test_count(f->d, "/api/v1/jobs");
    {
        g_autofree char *p = g_strdup_printf("%s/snapshots", vm_path);
        gint64 t0 = g_get_monotonic_time();
        g_autoptr(JsonNode) r = dv_test_request(f->d, "POST", p, "{\"name\":\"s1\"}", &status);
        dv_test_assert_error(r, status, 422, "not-supported", NULL);
        g_assert_cmpint(g_get_monotonic_time() - t0, <, 5 * G_USEC_PER_SEC);
    }
    g_assert_cmpint(dv_test_count(f->d, "/api/v1/jobs"), ==, jobs_before);

    g_clear_pointer(&j, json_object_unref);
    {
        g_autofree char *p = g_strdup_printf("%s/stop", vm_path);
        j = run_ok(f, "POST", p, NULL);
    }
    g_free(state);
    state = domstate(vm);
    g_assert_cmpstr(state, ==, "shut off");
    g_clear_pointer(&j, json_object_unref);
    {
        g_autofree char *p = g_strdup_printf("%s?delete_volumes=true", vm_path);
        j = run_ok(f, "DELETE", p, NULL);
    }
    g_assert_false(domain_exists(vm));
    g_assert_false(g_file_test(vpath, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(nvram, G_FILE_TEST_EXISTS));
}

/* --- running a case ---------------------------------------------------------- */

typedef void (*SystemTestFunc)(Fixture *f);

static void
run_isolated(gconstpointer data)
{
    SystemTestFunc fn = (SystemTestFunc)data;
    g_autoptr(GError) error = NULL;
    g_autofree char *prefix = NULL;
    g_autofree char *pool_dir = NULL;
    g_autofree char *state_dir = NULL;
    g_autofree char *tmpl = NULL;

    if (g_test_subprocess()) {
        Fixture f = { 0 };
        fixture_setup(&f);
        fn(&f);
        fixture_teardown(&f);
        return;
    }
    if (!check_daemon())
        return;
    prefix = test_prefix_new(getpid());
    tmpl = g_strdup_printf("%sXXXXXX", prefix);
    pool_dir = g_dir_make_tmp(tmpl, &error);
    g_assert_no_error(error);
    /* QEMU runs as libvirt-qemu and must reach the volumes. */
    g_assert_cmpint(g_chmod(pool_dir, 0755), ==, 0);
    state_dir = g_dir_make_tmp("drover-system-state-XXXXXX", &error);
    g_assert_no_error(error);
    g_setenv(ENV_POOL_DIR, pool_dir, TRUE);
    g_setenv(ENV_STATE_DIR, state_dir, TRUE);

    g_test_trap_subprocess(NULL, 500 * G_USEC_PER_SEC,
                           G_TEST_SUBPROCESS_INHERIT_STDOUT | G_TEST_SUBPROCESS_INHERIT_STDERR);
    cleanup_prefix(prefix);
    if (!g_test_trap_has_passed()) {
        g_autofree char *log = g_build_filename(state_dir, "droverd.out", NULL);
        g_autofree char *text = NULL;
        if (g_file_get_contents(log, &text, NULL, NULL))
            g_printerr("--- droverd output ---\n%s\n--- end ---\n", text);
    }
    remove_tree(pool_dir);
    remove_tree(state_dir);
    g_unsetenv(ENV_POOL_DIR);
    g_unsetenv(ENV_STATE_DIR);
    g_test_trap_assert_passed();
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add_data_func(path, (gconstpointer)(fn), run_isolated)
    ADD("/drover/api/system/vm-lifecycle", test_vm_lifecycle);
    ADD("/drover/api/system/vm-day2", test_vm_day2);
    ADD("/drover/api/system/pool-and-network", test_pool_and_network);
    ADD("/drover/api/system/mixed-cluster", test_mixed_cluster);
    ADD("/drover/api/system/unreachable-host", test_unreachable_host);
    ADD("/drover/api/system/serialised-creates", test_serialised_creates);
    ADD("/drover/api/system/gen2-secure-boot", test_gen2_secure_boot);
    return g_test_run();
}
