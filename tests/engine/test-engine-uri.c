/* Host URIs and library share paths in the engine tier (issue 10, item 1):
 * a host URI never runs a program or echoes a file of the management
 * server, a library share's directory is never made anywhere on request. */

#define G_LOG_DOMAIN "DvTestEngineUri"

#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-test-catalog.h"
#include "dv-test-util.h"

#include <glib/gstdio.h>
#include <sys/wait.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 30000

typedef struct {
    char *tmpdir;
    char *state_dir;
    char *marker; /* the script touches it: it must never exist */
    char *script;
    DvEngine *engine;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;

    f->tmpdir = g_dir_make_tmp("drover-uri-XXXXXX", &error);
    g_assert_no_error(error);
    f->state_dir = g_build_filename(f->tmpdir, "state", NULL);
    f->marker = g_build_filename(f->tmpdir, "ran", NULL);
    f->script = g_build_filename(f->tmpdir, "evil.sh", NULL);
    text = g_strdup_printf("#!/bin/sh\ntouch '%s'\nexec cat\n", f->marker);
    g_assert_true(g_file_set_contents(f->script, text, -1, &error));
    g_assert_cmpint(g_chmod(f->script, 0755), ==, 0);
    /* The switch the tests and benchmarks use: simulated hosts on. */
    f->engine = dv_test_engine_new(f->state_dir, FALSE);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    g_clear_pointer(&f->engine, dv_engine_free);
    dv_test_rm_rf(f->tmpdir);
    g_free(f->tmpdir);
    g_free(f->state_dir);
    g_free(f->marker);
    g_free(f->script);
}

static void
assert_refused(DvEngine *engine, DvKind kind, const char *json, const char *field, const char *rule)
{
    g_autoptr(JsonObject) body = dv_test_json_object(json);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) job =
        dv_engine_create(engine, kind, body, DV_ACTOR_NAMED("tester"), &error);

    g_assert_null(job);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(dv_error_get_field(error), ==, field);
    if (strstr(error->message, rule) == NULL)
        g_error("%s: refusal '%s' does not say '%s'", json, error->message, rule);
}

static gint64
count_hosts(Fixture *f)
{
    return dv_test_engine_count(f->engine, &dv_table_hosts);
}

/* Every way of naming the script through a host URI is refused before a
 * job exists, and the script never runs. */
static void
test_no_program(Fixture *f, gconstpointer data)
{
    const char *uris[] = { "qemu+ext:///system?command=", "qemu+ssh://h.example/system?command=",
                           "qemu+ssh://h.example/system?netcat=", "qemu+ssh://h.example/system?CoMmAnD=",
                           "qemu+ssh://h.example/system?keyfile=", "qemu+unix:///system?socket=",
                           "qemu+tls://h.example/system?pkipath=", NULL };

    for (guint i = 0; uris[i] != NULL; i++) {
        g_autofree char *uri = g_strconcat(uris[i], f->script, NULL);
        g_autofree char *json = g_strdup_printf("{\"name\":\"h%u\",\"uri\":\"%s\"}", i, uri);
        assert_refused(f->engine, DV_KIND_HOST, json, "uri", "");
    }
    g_assert_cmpint(count_hosts(f), ==, 0);
    g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_jobs), ==, 0);
    g_usleep(200 * 1000);
    g_assert_false(g_file_test(f->marker, G_FILE_TEST_EXISTS));
}

/* A host stored with a URI that is refused now (written by an older
 * Drover): still listed, and every connection is refused with the reason,
 * never opened; the script never runs. */
static void
test_stored_refused_uri(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = dv_test_write_host_xml(f->tmpdir, "h1.xml", "m", 1);
    g_autofree char *json = g_strdup_printf("{\"name\":\"h1\",\"uri\":\"test://%s\"}", xml);
    g_autoptr(JsonObject) added = dv_test_engine_create(f->engine, DV_KIND_HOST, json, WAIT_MS);
    g_autofree char *evil = g_strdup_printf("qemu+ext:///system?command=%s", f->script);
    g_autoptr(JsonObject) changes = json_object_new();
    g_autoptr(JsonObject) host = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) row = NULL;
    const char *msg;

    host = dv_engine_get(f->engine, DV_KIND_HOST, "h1", &error);
    g_assert_no_error(error);
    json_object_set_string_member(changes, "uri", evil);
    g_assert_true(dv_store_update(dv_engine_get_store(f->engine), &dv_table_hosts,
                                  dv_json_get_string(host, "id", ""), changes, &error));
    g_assert_no_error(error);

    job = dv_engine_host_refresh(f->engine, "h1", DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    row = dv_test_engine_job_row(f->engine, job, WAIT_MS);
    g_assert_cmpstr(dv_json_get_string(row, "state", ""), ==, "failed");
    msg = dv_json_get_string(dv_json_get_object(row, "error"), "message", "");
    g_test_message("refresh: %s", msg);
    g_assert_nonnull(strstr(msg, "refused by droverd's host URI rules"));
    g_assert_nonnull(strstr(msg, "transport 'ext'"));
    g_assert_false(g_file_test(f->marker, G_FILE_TEST_EXISTS));

    /* Still listed, with its URI, for the administrator to remove. */
    g_clear_pointer(&host, json_object_unref);
    host = dv_engine_get(f->engine, DV_KIND_HOST, "h1", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(host, "uri", ""), ==, evil);
    g_assert_cmpint(count_hosts(f), ==, 1);
}

static gboolean
json_contains(JsonObject *obj, const char *needle)
{
    g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), obj);
    g_autofree char *text = json_to_string(node, FALSE);
    return strstr(text, needle) != NULL;
}

/* test:///FILE makes libvirt parse FILE; its complaint quotes FILE's
 * first line.  The job's error (readable by every user) says what
 * failed in Drover's words and never holds the line. */
static void
test_file_not_echoed(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *secret = g_strdup_printf("drover-secret-line-%08x", g_random_int());
    g_autofree char *file = g_build_filename(f->tmpdir, "passwd", NULL);
    g_autofree char *text = g_strdup_printf("%s:x:0:0\nsecond line\n", secret);
    g_autofree char *json = NULL;
    g_autoptr(JsonObject) body = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) row = NULL;
    g_autoptr(JsonObject) jobs = NULL;
    const char *msg;

    g_assert_true(g_file_set_contents(file, text, -1, &error));
    json = g_strdup_printf("{\"name\":\"leak\",\"uri\":\"test://%s\"}", file);
    body = dv_test_json_object(json);
    job = dv_engine_create(f->engine, DV_KIND_HOST, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    row = dv_test_engine_job_row(f->engine, job, WAIT_MS);
    g_assert_cmpstr(dv_json_get_string(row, "state", ""), ==, "failed");
    msg = dv_json_get_string(dv_json_get_object(row, "error"), "message", "");
    g_test_message("add: %s", msg);
    g_assert_null(strstr(msg, secret));
    g_assert_false(json_contains(row, secret));
    g_assert_nonnull(strstr(msg, "libvirt error "));
    jobs = dv_engine_list(f->engine, DV_KIND_JOB, NULL, &error);
    g_assert_no_error(error);
    g_assert_false(json_contains(jobs, secret));
    g_assert_cmpint(count_hosts(f), ==, 0);

    /* Without the simulated switch the URI is refused outright. */
    g_clear_pointer(&f->engine, dv_engine_free);
    {
        DvEngineOptions o = { .state_dir = f->state_dir, .job_workers = 2, .no_recover = TRUE };
        f->engine = dv_engine_new(&o, &error);
        g_assert_no_error(error);
    }
    assert_refused(f->engine, DV_KIND_HOST, json, "uri", "simulated hosts (test://) are off");
    assert_refused(f->engine, DV_KIND_HOST, "{\"name\":\"d\",\"uri\":\"test:///default\"}", "uri",
                   "simulated");
}

/* An administrator allows a parameter by name; an unknown name stops
 * the engine from starting. */
static void
test_allowed_parameters(Fixture *f, gconstpointer data)
{
    static const char *const good[] = { "keyfile", NULL };
    static const char *const bad[] = { "keyfile", "rm_rf", NULL };
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object(
        "{\"name\":\"k\",\"uri\":\"qemu+ssh://127.0.0.1:1/system?keyfile=/nonexistent/key&no_tty=1\"}");
    g_autoptr(JsonObject) job = NULL;
    DvEngineOptions o = { .state_dir = f->state_dir, .job_workers = 2, .no_recover = TRUE,
                          .allow_uri_parameters = bad };
    DvEngine *e;

    assert_refused(f->engine, DV_KIND_HOST,
                   "{\"name\":\"k\",\"uri\":\"qemu+ssh://127.0.0.1:1/system?keyfile=/nonexistent/key\"}",
                   "uri", "allow_uri_parameters");
    g_clear_pointer(&f->engine, dv_engine_free);
    e = dv_engine_new(&o, &error);
    g_assert_null(e);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(error->message, "rm_rf"));
    g_clear_error(&error);

    f->engine = dv_test_engine_new_with_uri_parameters(f->state_dir, TRUE, good);
    job = dv_engine_create(f->engine, DV_KIND_HOST, body, DV_ACTOR_NAMED("tester"), &error);
    g_assert_no_error(error);
    g_assert_nonnull(job);
}

/* --- library shares ------------------------------------------------------ */

static void
test_share_paths(Fixture *f, gconstpointer data)
{
    g_autofree char *outside = g_build_filename(f->tmpdir, "not-made", "deep", NULL);
    g_autofree char *real = g_build_filename(f->tmpdir, "isos", NULL);
    g_autofree char *link = g_build_filename(f->tmpdir, "link-to-etc", NULL);
    g_autofree char *file = g_build_filename(f->tmpdir, "a-file", NULL);
    g_autofree char *root = g_build_filename(f->state_dir, "library", NULL);
    g_autofree char *under = g_build_filename(root, "team", "isos", NULL);
    g_autofree char *root_link = g_build_filename(root, "via-link", NULL);
    g_autofree char *through = g_build_filename(root_link, "x", NULL);
    g_autofree char *json = NULL;
    g_autoptr(JsonObject) row = NULL;

    g_assert_cmpint(g_mkdir(real, 0755), ==, 0);
    g_assert_cmpint(symlink("/etc", link), ==, 0);
    g_assert_cmpint(symlink("/etc", root_link), ==, 0);
    g_assert_true(g_file_set_contents(file, "x", -1, NULL));

    /* Not there, not under the root: refused, nothing made. */
    json = g_strdup_printf("{\"name\":\"s1\",\"path\":\"%s\"}", outside);
    assert_refused(f->engine, DV_KIND_LIBRARY_SHARE, json, "path", "only under the library root");
    g_assert_false(g_file_test(outside, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(g_path_get_dirname(outside), G_FILE_TEST_EXISTS));
    g_free(json);
    /* A symbolic link to elsewhere, a file, a link under the root. */
    json = g_strdup_printf("{\"name\":\"s2\",\"path\":\"%s\"}", link);
    assert_refused(f->engine, DV_KIND_LIBRARY_SHARE, json, "path", "symbolic link");
    g_free(json);
    json = g_strdup_printf("{\"name\":\"s3\",\"path\":\"%s\"}", file);
    assert_refused(f->engine, DV_KIND_LIBRARY_SHARE, json, "path", "not a directory");
    g_free(json);
    json = g_strdup_printf("{\"name\":\"s4\",\"path\":\"%s\"}", through);
    assert_refused(f->engine, DV_KIND_LIBRARY_SHARE, json, "path", "symbolic link");
    g_assert_false(g_file_test("/etc/x", G_FILE_TEST_EXISTS));
    g_free(json);
    g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_library_shares), ==, 1);

    /* An existing real directory anywhere; a new one under the root. */
    json = g_strdup_printf("{\"name\":\"s5\",\"path\":\"%s\"}", real);
    row = dv_test_engine_create(f->engine, DV_KIND_LIBRARY_SHARE, json, WAIT_MS);
    g_clear_pointer(&row, json_object_unref);
    g_free(json);
    json = g_strdup_printf("{\"name\":\"s6\",\"path\":\"%s\"}", under);
    row = dv_test_engine_create(f->engine, DV_KIND_LIBRARY_SHARE, json, WAIT_MS);
    g_assert_true(g_file_test(under, G_FILE_TEST_IS_DIR));
    g_assert_cmpint(dv_test_engine_count(f->engine, &dv_table_library_shares), ==, 3);
}

/* --- droverd's config ------------------------------------------------------ */

/* Runs droverd with @conf as its config; returns its exit status and
 * stderr. */
static int
run_droverd(Fixture *f, const char *conf_text, char **ret_err)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *conf = g_build_filename(f->tmpdir, "droverd.conf", NULL);
    g_autofree char *droverd = dv_test_build_path("src", "daemon", "droverd", NULL);
    g_autofree char *state = g_build_filename(f->tmpdir, "dstate", NULL);
    const char *argv[] = { droverd, "--config", conf, "--state-dir", state, "--listen", "127.0.0.1:0",
                           NULL };
    int status = 0;

    g_assert_true(g_file_set_contents(conf, conf_text, -1, &error));
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                               ret_err, &status, &error));
    g_assert_no_error(error);
    g_assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void
test_droverd_config(Fixture *f, gconstpointer data)
{
    g_autofree char *err = NULL;

    g_assert_cmpint(run_droverd(f, "[hosts]\nallow_uri_parameters=keyfile;bogus_param\n", &err), !=, 0);
    g_test_message("%s", err);
    g_assert_nonnull(strstr(err, "bogus_param"));
    g_assert_nonnull(strstr(err, "allow_uri_parameters"));
    g_clear_pointer(&err, g_free);
    g_assert_cmpint(run_droverd(f, "[hosts]\nsimulated=perhaps\n", &err), ==, 2);
    g_assert_nonnull(strstr(err, "[hosts] simulated must be true or false"));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/drover/engine/uri/no-program", Fixture, NULL, fixture_setup, test_no_program,
               fixture_teardown);
    g_test_add("/drover/engine/uri/stored-refused-uri", Fixture, NULL, fixture_setup,
               test_stored_refused_uri, fixture_teardown);
    g_test_add("/drover/engine/uri/file-not-echoed", Fixture, NULL, fixture_setup,
               test_file_not_echoed, fixture_teardown);
    g_test_add("/drover/engine/uri/allowed-parameters", Fixture, NULL, fixture_setup,
               test_allowed_parameters, fixture_teardown);
    g_test_add("/drover/engine/uri/share-paths", Fixture, NULL, fixture_setup, test_share_paths,
               fixture_teardown);
    g_test_add("/drover/engine/uri/droverd-config", Fixture, NULL, fixture_setup, test_droverd_config,
               fixture_teardown);
    return g_test_run();
}
