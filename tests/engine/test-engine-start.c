/* Start-up and the database file under a serving engine: first start only
 * in a state directory holding nothing of an earlier installation, one
 * server per SQLite database (in process, and real droverd processes with
 * the first one paused), the file removed, replaced, read-only or full
 * reported by health and refused for writes. */
#define G_LOG_DOMAIN "DvTestEngineStart"

#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-store.h"
#include "dv-test-catalog.h"
#include "dv-test-util.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *tmpdir;
    char *state_dir;
    char *db;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    f->tmpdir = g_dir_make_tmp("drover-start-XXXXXX", &error);
    g_assert_no_error(error);
    f->state_dir = g_build_filename(f->tmpdir, "state", NULL);
    f->db = g_build_filename(f->state_dir, "drover.db", NULL);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    dv_test_rm_rf(f->tmpdir);
    g_free(f->state_dir);
    g_free(f->db);
    g_free(f->tmpdir);
}

static DvEngine *
engine_new(Fixture *f, GError **error)
{
    DvEngineOptions o = {
        .state_dir = f->state_dir, .job_workers = 2, .no_recover = TRUE, .serve = TRUE
    };
    return dv_engine_new(&o, error);
}

/* A first start, then a clean stop: keys, password file, share and a
 * database exist. */
static void
first_start(Fixture *f)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvEngine) engine = engine_new(f, &error);
    gboolean created = FALSE;

    g_assert_no_error(error);
    g_assert_nonnull(engine);
    g_assert_true(dv_auth_ensure_admin(dv_engine_get_auth(engine), f->state_dir, &created, &error));
    g_assert_no_error(error);
    g_assert_true(created);
}

static void
remove_db_files(Fixture *f)
{
    const char *suffixes[] = { "", "-wal", "-shm", "-journal" };
    for (guint i = 0; i < G_N_ELEMENTS(suffixes); i++) {
        g_autofree char *p = g_strconcat(f->db, suffixes[i], NULL);
        g_unlink(p);
    }
}

static void
assert_refused_as_not_first(Fixture *f, const char *what)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvEngine) engine = engine_new(f, &error);

    g_assert_null(engine);
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_test_message("%s", error->message);
    g_assert_cmpstr(dv_error_get_field(error), ==, "database");
    g_assert_nonnull(strstr(error->message, what));
    g_assert_nonnull(strstr(error->message, "keys"));
    g_assert_nonnull(strstr(error->message, "drover-setup restore"));
}

static void
test_first_start_empty(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvEngine) engine = NULL;
    g_autofree char *log = g_build_filename(f->state_dir, "droverd.err", NULL);

    /* An empty directory that exists, with a log file in it (as the tests'
     * droverd writes one): still a first start. */
    g_assert_cmpint(g_mkdir_with_parents(f->state_dir, 0700), ==, 0);
    g_assert_true(g_file_set_contents(log, "", 0, NULL));
    engine = engine_new(f, &error);
    g_assert_no_error(error);
    g_assert_nonnull(engine);
    g_assert_true(g_file_test(f->db, G_FILE_TEST_IS_REGULAR));
}

/* The database gone, the keys still there: refused, and no new database. */
static void
test_missing_db_with_keys(Fixture *f, gconstpointer data)
{
    first_start(f);
    remove_db_files(f);
    assert_refused_as_not_first(f, "is missing");
    g_assert_false(g_file_test(f->db, G_FILE_TEST_EXISTS));
}

static void
test_empty_db_with_keys(Fixture *f, gconstpointer data)
{
    g_autofree char *pw = g_build_filename(f->state_dir, "initial-admin-password", NULL);
    struct stat st;

    first_start(f);
    remove_db_files(f);
    g_assert_true(g_file_set_contents(f->db, "", 0, NULL));
    assert_refused_as_not_first(f, "empty (0 bytes)");
    g_assert_cmpint(g_stat(f->db, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 0);
    /* No new admin password either: the old file is the old one. */
    g_assert_true(g_file_test(pw, G_FILE_TEST_EXISTS));
}

/* Two serving engines on one database: the second is refused, naming the
 * first's pid; once the first is gone, it starts. */
static void
test_second_engine(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvEngine) first = engine_new(f, &error);
    g_autoptr(DvEngine) second = NULL;
    g_autofree char *pid = g_strdup_printf("droverd (pid %d)", (int)getpid());

    g_assert_no_error(error);
    second = engine_new(f, &error);
    g_assert_null(second);
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_test_message("%s", error->message);
    g_assert_nonnull(strstr(error->message, pid));
    g_clear_error(&error);
    g_clear_pointer(&first, dv_engine_free);
    second = engine_new(f, &error);
    g_assert_no_error(error);
    g_assert_nonnull(second);
}

static void
assert_health(DvEngine *engine, const char *state, const char *in_detail)
{
    g_autoptr(JsonObject) h = dv_engine_health(engine);
    g_autofree char *text = dv_json_object_to_string(h, FALSE);
    JsonObject *db = dv_json_get_object(h, "database_state");

    g_test_message("health: %s", text);
    g_assert_nonnull(db);
    g_assert_cmpstr(dv_json_get_string(db, "state", ""), ==, state);
    if (g_strcmp0(state, "ok") == 0) {
        g_assert_cmpstr(dv_json_get_string(h, "status", ""), ==, "ok");
        g_assert_cmpstr(dv_json_get_string(h, "database", ""), ==, "ok");
    } else {
        g_assert_cmpstr(dv_json_get_string(h, "status", ""), ==, "degraded");
        g_assert_nonnull(strstr(dv_json_get_string(db, "detail", ""), in_detail));
        g_assert_nonnull(strstr(dv_json_get_string(h, "database", ""), in_detail));
    }
}

/* A write through the engine, as a request makes it. */
static void
assert_write_refused(DvEngine *engine, const char *reason)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) body = dv_test_json_object("{\"name\":\"g-after\"}");
    g_autoptr(JsonObject) job =
        dv_engine_create(engine, DV_KIND_HOST_GROUP, body, DV_ACTOR_NAMED("tester"), &error);

    g_assert_null(job);
    g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
    g_test_message("%s", error->message);
    g_assert_nonnull(strstr(error->message, reason));
}

static void
test_removed_under_engine(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvEngine) engine = engine_new(f, &error);

    g_assert_no_error(error);
    assert_health(engine, "ok", NULL);
    g_assert_true(dv_engine_heartbeat(engine, &error));
    g_assert_no_error(error);
    remove_db_files(f);
    /* The heartbeat notices it with nobody writing. */
    g_assert_false(dv_engine_heartbeat(engine, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
    g_assert_nonnull(strstr(error->message, "was removed"));
    assert_health(engine, "missing", "was removed");
    assert_write_refused(engine, "was removed");
}

static void
test_replaced_under_engine(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvEngine) engine = engine_new(f, &error);
    g_autofree char *other = g_build_filename(f->tmpdir, "other.db", NULL);

    g_assert_no_error(error);
    {
        g_autoptr(DvStore) s = dv_store_open(other, DV_STORE_OPEN_MIGRATE, &error);
        g_assert_no_error(error);
    }
    g_assert_cmpint(g_rename(other, f->db), ==, 0);
    /* The next write notices it first. */
    assert_write_refused(engine, "was replaced");
    assert_health(engine, "replaced", "was replaced");
    g_assert_false(dv_engine_heartbeat(engine, &error));
    g_assert_nonnull(strstr(error->message, "was replaced"));
}

/* The state directory on a small tmpfs, filled up: health says full, and
 * again ok once space is back. */
static void
test_full_health(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvEngine) engine = NULL;
    g_autofree char *filler = g_build_filename(f->state_dir, "filler", NULL);
    g_autofree char *chunk = g_malloc0(65536);
    int fd;

    g_assert_cmpint(g_mkdir_with_parents(f->state_dir, 0700), ==, 0);
    if (mount("tmpfs", f->state_dir, "tmpfs", 0, "size=8m,mode=0700") != 0)
        g_error("cannot mount a tmpfs on %s (this test runs as root): %s", f->state_dir,
                g_strerror(errno));
    engine = engine_new(f, &error);
    g_assert_no_error(error);
    assert_health(engine, "ok", NULL);
    fd = open(filler, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    g_assert_cmpint(fd, >=, 0);
    while (write(fd, chunk, 65536) > 0)
        ;
    while (write(fd, chunk, 512) > 0)
        ;
    close(fd);
    assert_health(engine, "full", "no space");
    g_assert_cmpint(g_unlink(filler), ==, 0);
    assert_health(engine, "ok", NULL);
    g_clear_pointer(&engine, dv_engine_free);
    g_assert_cmpint(umount2(f->state_dir, MNT_DETACH), ==, 0);
}

/* A database this account may not write: droverd refuses to serve it,
 * saying so.  Root writes anything, so the child runs as nobody. */
static void
test_read_only_start(Fixture *f, gconstpointer data)
{
    if (g_test_subprocess()) {
        g_autoptr(GError) error = NULL;
        g_autoptr(DvEngine) engine = NULL;
        g_free(f->state_dir);
        g_free(f->db);
        f->state_dir = g_strdup(g_getenv("DV_TEST_RO_STATE"));
        f->db = g_build_filename(f->state_dir, "drover.db", NULL);
        if (setgid(65534) != 0 || setuid(65534) != 0)
            g_error("cannot become nobody: %s", g_strerror(errno));
        engine = engine_new(f, &error);
        g_assert_null(engine);
        g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
        g_test_message("%s", error->message);
        g_assert_nonnull(strstr(error->message, "read-only"));
        return;
    }
    first_start(f);
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(DvDb) db = dv_db_open(f->db, &error);
        g_assert_no_error(error);
        g_assert_true(dv_db_exec(db, "PRAGMA journal_mode=DELETE", DV_SQL_NO_ARGS, NULL, &error));
    }
    g_assert_cmpint(chmod(f->tmpdir, 0755), ==, 0);
    g_assert_cmpint(chown(f->state_dir, 65534, 65534), ==, 0);
    g_assert_cmpint(chmod(f->db, 0444), ==, 0);
    g_setenv("DV_TEST_RO_STATE", f->state_dir, TRUE);
    g_test_trap_subprocess(NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_test_trap_assert_passed();
}

/* --- real droverd processes ------------------------------------------------- */

static void
droverd_done(GObject *source, GAsyncResult *res, gpointer data)
{
    g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
    *(gboolean *)data = TRUE;
}

/* Runs droverd on @state_dir and waits for it to end (it must refuse; one
 * still running after 30 s serves: killed, and the test fails); returns its
 * stderr (owned). */
static char *
droverd_refused(const char *state_dir, const char *tmpdir)
{
    g_autofree char *droverd = dv_test_build_path("src", "daemon", "droverd", NULL);
    const char *const argv[] = {
        droverd, "--state-dir", state_dir, "--listen", "127.0.0.1:0", NULL
    };
    g_autofree char *out_path = g_build_filename(tmpdir, "second.out", NULL);
    g_autofree char *err_path = g_build_filename(tmpdir, "second.err", NULL);
    g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
    g_autoptr(GSubprocess) proc = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL;
    char *err = NULL;
    gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    gboolean done = FALSE;

    g_subprocess_launcher_set_stdout_file_path(launcher, out_path);
    g_subprocess_launcher_set_stderr_file_path(launcher, err_path);
    proc = g_subprocess_launcher_spawnv(launcher, argv, &error);
    g_assert_no_error(error);
    g_subprocess_wait_async(proc, NULL, droverd_done, &done);
    while (!done && g_get_monotonic_time() < deadline) {
        if (!g_main_context_iteration(NULL, FALSE))
            g_usleep(20 * 1000);
    }
    g_assert_true(g_file_get_contents(out_path, &out, NULL, NULL));
    if (!done) {
        g_subprocess_force_exit(proc);
        while (!done)
            g_main_context_iteration(NULL, TRUE);
        g_error("a second droverd served on %s: %s", state_dir, out);
    }
    g_assert_true(g_file_get_contents(err_path, &err, NULL, NULL));
    g_test_message("droverd exit %d: %s", g_subprocess_get_exit_status(proc), err);
    g_assert_true(g_subprocess_get_if_exited(proc));
    g_assert_cmpint(g_subprocess_get_exit_status(proc), !=, 0);
    g_assert_null(strstr(out, "serving"));
    return err;
}

/* The first droverd paused past its heartbeat (SIGSTOP, its servers row
 * made 10 minutes old): a second one on the same state directory refuses,
 * naming the first's pid, and the first serves on once resumed. */
static void
test_droverd_paused(Fixture *f, gconstpointer data)
{
    g_autoptr(DvTestDaemon) d = dv_test_daemon_start(NULL, NULL);
    g_autofree char *db = g_build_filename(d->state_dir, "drover.db", NULL);
    pid_t pid = (pid_t)g_ascii_strtoll(g_subprocess_get_identifier(d->proc), NULL, 10);
    g_autofree char *holder = g_strdup_printf("droverd (pid %d)", (int)pid);
    g_autofree char *err = NULL;
    guint status = 0;

    g_assert_cmpint(kill(pid, SIGSTOP), ==, 0);
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(DvDb) conn = dv_db_open(db, &error);
        gint64 changed = 0;
        g_assert_no_error(error);
        g_assert_true(dv_db_exec(conn, "UPDATE servers SET heartbeat_at = ?",
                                 DV_SQL_ARGS(DV_SQL_INT_P(dv_store_now() - 600 * G_USEC_PER_SEC)),
                                 &changed, &error));
        g_assert_no_error(error);
        g_assert_cmpint(changed, ==, 1);
    }
    err = droverd_refused(d->state_dir, f->tmpdir);
    g_assert_nonnull(strstr(err, holder));
    g_assert_nonnull(strstr(err, "stop it first"));
    g_assert_cmpint(kill(pid, SIGCONT), ==, 0);
    {
        g_autoptr(JsonNode) h = dv_test_request_anon(d, "GET", "/api/v1/health", NULL, &status);
        g_assert_cmpuint(status, ==, 200);
    }
}

/* The database removed under a running droverd: writes are refused (503
 * naming why) instead of acknowledged into the unlinked file, and health
 * turns degraded naming the state. */
static void
test_droverd_db_removed(Fixture *f, gconstpointer data)
{
    g_autoptr(DvTestDaemon) d = dv_test_daemon_start(NULL, NULL);
    g_autofree char *db = g_build_filename(d->state_dir, "drover.db", NULL);
    const char *suffixes[] = { "", "-wal", "-shm" };
    guint status = 0;

    dv_test_run_job_ok(d, "POST", "/api/v1/host-groups", "{\"name\":\"before\"}");
    for (guint i = 0; i < G_N_ELEMENTS(suffixes); i++) {
        g_autofree char *p = g_strconcat(db, suffixes[i], NULL);
        g_unlink(p);
    }
    for (guint i = 0; i < 5; i++) {
        g_autofree char *body = g_strdup_printf("{\"name\":\"after%u\"}", i);
        g_autoptr(JsonNode) resp = dv_test_request(d, "POST", "/api/v1/host-groups", body, &status);
        g_autofree char *text = json_to_string(resp, FALSE);
        g_test_message("%u: %s", status, text);
        dv_test_assert_error(resp, status, 503, "unavailable", "database");
        g_assert_nonnull(strstr(text, "was removed"));
    }
    {
        g_autoptr(JsonNode) h = dv_test_request_anon(d, "GET", "/api/v1/health", NULL, &status);
        JsonObject *o = json_node_get_object(h);
        g_assert_cmpstr(dv_json_get_string(o, "status", ""), ==, "degraded");
        g_assert_cmpstr(dv_json_get_string(dv_json_get_object(o, "database_state"), "state", ""),
                        ==, "missing");
    }
    /* The next start is no first start: refused, no new database. */
    dv_test_daemon_stop(d, FALSE);
    {
        g_autofree char *err = droverd_refused(d->state_dir, f->tmpdir);
        g_assert_nonnull(strstr(err, "is missing"));
        g_assert_nonnull(strstr(err, "drover-setup restore"));
        g_assert_false(g_file_test(db, G_FILE_TEST_EXISTS));
    }
}

/* drover-setup upgrade, restore and install refuse while droverd holds the
 * database; backup (it only reads) goes on. */
static void
test_setup_refused(Fixture *f, gconstpointer data)
{
    g_autoptr(DvTestDaemon) d = dv_test_daemon_start(NULL, NULL);
    pid_t pid = (pid_t)g_ascii_strtoll(g_subprocess_get_identifier(d->proc), NULL, 10);
    g_autofree char *holder = g_strdup_printf("droverd (pid %d)", (int)pid);
    g_autofree char *archive = g_build_filename(f->tmpdir, "b.tar.zst", NULL);
    g_autofree char *db = g_build_filename(d->state_dir, "drover.db", NULL);
    g_autofree char *before = NULL;

    {
        const char *const args[] = {
            "backup", "--state-dir", d->state_dir, "--out", archive, NULL
        };
        g_assert_cmpint(dv_test_run_setup(args, NULL, NULL), ==, 0);
    }
    before = dv_test_file_sha256(db);
    {
        const char *const args[] = { "upgrade", "--state-dir", d->state_dir, NULL };
        g_autofree char *err = NULL;
        g_assert_cmpint(dv_test_run_setup(args, NULL, &err), !=, 0);
        g_assert_nonnull(strstr(err, holder));
    }
    {
        const char *const args[] = { "restore", "--state-dir", d->state_dir, "--in",
                                     archive,   "--force",     NULL };
        g_autofree char *err = NULL;
        g_assert_cmpint(dv_test_run_setup(args, NULL, &err), !=, 0);
        g_assert_nonnull(strstr(err, holder));
    }
    {
        /* install over it: refused before any account or file is made. */
        g_autofree char *root = g_build_filename(f->tmpdir, "root", NULL);
        g_autofree char *units = g_build_filename(root, "units", NULL);
        g_autofree char *account = g_strdup_printf("dvs%d", (int)getpid());
        g_autofree char *listing = NULL;
        g_autofree char *err = NULL;
        const char *const args[] = { "install",
                                     "--root",
                                     root,
                                     "--unit-dir",
                                     units,
                                     "--state-dir",
                                     d->state_dir,
                                     "--machine-id-file",
                                     "/etc/machine-id",
                                     "--service-account",
                                     account,
                                     NULL };
        g_assert_cmpint(g_mkdir_with_parents(units, 0755), ==, 0);
        listing = dv_test_tree_snapshot(root, DV_TEST_TREE_DEFAULT);
        g_assert_cmpint(dv_test_run_setup(args, NULL, &err), !=, 0);
        g_assert_nonnull(strstr(err, holder));
        g_assert_nonnull(strstr(err, "nothing was changed"));
        g_assert_null(getpwnam(account));
        dv_test_assert_tree_unchanged(root, DV_TEST_TREE_DEFAULT, listing);
    }
    dv_test_assert_file_unchanged(db, before);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, func) g_test_add(path, Fixture, NULL, fixture_setup, func, fixture_teardown)
    ADD("/drover/engine/start/first-start-empty", test_first_start_empty);
    ADD("/drover/engine/start/missing-db-with-keys", test_missing_db_with_keys);
    ADD("/drover/engine/start/empty-db-with-keys", test_empty_db_with_keys);
    ADD("/drover/engine/start/second-engine", test_second_engine);
    ADD("/drover/engine/start/db-removed", test_removed_under_engine);
    ADD("/drover/engine/start/db-replaced", test_replaced_under_engine);
    ADD("/drover/engine/start/db-full", test_full_health);
    ADD("/drover/engine/start/db-read-only", test_read_only_start);
    ADD("/drover/engine/start/droverd-paused", test_droverd_paused);
    ADD("/drover/engine/start/droverd-db-removed", test_droverd_db_removed);
    ADD("/drover/engine/start/setup-refused", test_setup_refused);
#undef ADD
    return g_test_run();
}
