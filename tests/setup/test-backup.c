/* drover-setup backup / restore: an installation made by the engine in
 * process (a Run As account with a sealed password), backed up and
 * restored by the drover-setup binary, then opened again by the engine.
 * SQLite in temp dirs; PostgreSQL on DV_TEST_PG_URI (fails without it
 * under CI=true or DV_REQUIRE_SERVICES=1). */
#define G_LOG_DOMAIN "DvTestBackup"

#include "dv-config.h"
#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-keys.h"
#include "dv-setup-backup.h"
#include "dv-store.h"
#include "dv-test-pg.h"
#include "dv-test-util.h"

#include <archive.h>
#include <archive_entry.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PASSWORD "s3cret-Run-As-pw"
#define WAIT_MS 30000

typedef struct {
    char *tmpdir;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    f->tmpdir = g_dir_make_tmp("drover-backup-XXXXXX", &error);
    g_assert_no_error(error);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    dv_test_rm_rf(f->tmpdir);
    g_free(f->tmpdir);
}

static char *
path_in(Fixture *f, const char *name)
{
    return g_build_filename(f->tmpdir, name, NULL);
}

/* An installation: keys made at first start, one Run As account with a
 * password sealed under k1.  Returns the installation id. */
static char *
make_installation(const char *state_dir, const char *database, const char *name)
{
    g_autoptr(GError) error = NULL;
    DvEngineOptions o = { .state_dir = state_dir, .database = database, .job_workers = 2, .no_recover = TRUE };
    g_autoptr(DvEngine) engine = dv_engine_new(&o, &error);
    g_autoptr(JsonObject) body = json_object_new();
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) acct = NULL;

    g_assert_no_error(error);
    json_object_set_string_member(body, "name", name);
    json_object_set_string_member(body, "username", "root");
    json_object_set_string_member(body, "password", PASSWORD);
    job = dv_engine_create(engine, DV_KIND_RUN_AS, body, DV_ACTOR_NAMED("admin"), &error);
    g_assert_no_error(error);
    g_assert_true(dv_job_manager_wait_idle(dv_engine_get_jobs(engine), WAIT_MS));
    acct = dv_engine_get(engine, DV_KIND_RUN_AS, name, &error);
    g_assert_no_error(error);
    return g_strdup(dv_engine_get_installation_id(engine));
}

/* Opens the installation and checks the Run As password reads back. */
static void
assert_secret_readable(const char *state_dir, const char *database, const char *name,
                       const char *installation_id)
{
    g_autoptr(GError) error = NULL;
    DvEngineOptions o = { .state_dir = state_dir, .database = database, .job_workers = 2, .no_recover = TRUE };
    g_autoptr(DvEngine) engine = dv_engine_new(&o, &error);
    g_autoptr(JsonObject) acct = NULL;
    g_autoptr(DvSecret) pw = NULL;

    g_assert_no_error(error);
    g_assert_cmpstr(dv_engine_get_installation_id(engine), ==, installation_id);
    acct = dv_engine_get(engine, DV_KIND_RUN_AS, name, &error);
    g_assert_no_error(error);
    pw = dv_keyring_load_secret(dv_engine_get_keyring(engine), dv_engine_get_store(engine), "run-as",
                                dv_json_get_string(acct, "id", ""), "password", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_secret_get_string(pw), ==, PASSWORD);
}

static void
backup_ok(const char *state_dir, const char *database, const char *out)
{
    const char *args[] = { "backup", "--state-dir", state_dir, "--out", out,
                           database != NULL ? "--database" : NULL, database, NULL };
    struct stat st;

    g_assert_cmpint(dv_test_run_setup(args, NULL, NULL), ==, 0);
    g_assert_cmpint(stat(out, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);
}

static int
restore(const char *state_dir, const char *database, const char *in, gboolean force, char **ret_err)
{
    const char *args[9] = { "restore", "--state-dir", state_dir, "--in", in };
    guint n = 5;
    if (force)
        args[n++] = "--force";
    if (database != NULL) {
        args[n++] = "--database";
        args[n++] = database;
    }
    args[n] = NULL;
    return dv_test_run_setup(args, NULL, ret_err);
}

static guint
count_prefixed(const char *dir, const char *prefix)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;
    guint n = 0;

    if (d == NULL)
        return 0;
    while ((name = g_dir_read_name(d)) != NULL)
        if (g_str_has_prefix(name, prefix))
            n++;
    return n;
}

/* --- SQLite -------------------------------------------------------------- */

static void
test_sqlite_round_trip(Fixture *f, gconstpointer data)
{
    g_autofree char *a = path_in(f, "a");
    g_autofree char *b = path_in(f, "b");
    g_autofree char *archive = path_in(f, "a.tar.zst");
    g_autofree char *id = make_installation(a, NULL, "kvm-root");
    g_autofree char *host_key = g_build_filename(b, "keys", "host.key", NULL);
    struct stat st;

    backup_ok(a, NULL, archive);
    g_assert_cmpint(restore(b, NULL, archive, FALSE, NULL), ==, 0);
    g_assert_cmpint(stat(host_key, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);
    g_assert_cmpint(st.st_uid, ==, geteuid());
    assert_secret_readable(b, NULL, "kvm-root", id);

    /* Restoring the same archive again over itself is the same
     * installation and key set: allowed, the replaced files kept. */
    g_assert_cmpint(restore(b, NULL, archive, FALSE, NULL), ==, 0);
    g_assert_cmpuint(count_prefixed(b, "drover.db.before-restore-"), >=, 1);
    assert_secret_readable(b, NULL, "kvm-root", id);
}

static void
test_refuses_existing_out(Fixture *f, gconstpointer data)
{
    g_autofree char *a = path_in(f, "a");
    g_autofree char *archive = path_in(f, "exists.tar.zst");
    g_autofree char *id = make_installation(a, NULL, "kvm-root");
    g_autofree char *err = NULL;
    g_autofree char *text = NULL;
    const char *args[] = { "backup", "--state-dir", a, "--out", archive, NULL };

    g_assert_true(g_file_set_contents(archive, "precious", -1, NULL));
    g_assert_cmpint(dv_test_run_setup(args, NULL, &err), ==, DV_EXIT_CONFLICT);
    g_assert_nonnull(strstr(err, "already exists"));
    g_assert_true(g_file_get_contents(archive, &text, NULL, NULL));
    g_assert_cmpstr(text, ==, "precious");
}

/* Copies @in to @out changing one byte of @member. */
static void
tamper(const char *in, const char *out, const char *member)
{
    struct archive *r = archive_read_new();
    struct archive *w = archive_write_new();
    struct archive_entry *e;
    gboolean changed = FALSE;

    archive_read_support_filter_all(r);
    archive_read_support_format_tar(r);
    g_assert_cmpint(archive_read_open_filename(r, in, 65536), ==, ARCHIVE_OK);
    archive_write_set_format_pax_restricted(w);
    archive_write_add_filter_gzip(w);
    g_assert_cmpint(archive_write_open_filename(w, out), ==, ARCHIVE_OK);
    while (archive_read_next_header(r, &e) == ARCHIVE_OK) {
        gint64 size = archive_entry_size(e);
        g_autofree guint8 *buf = g_malloc(MAX(size, 1));
        g_assert_cmpint(archive_read_data(r, buf, size), ==, size);
        if (g_strcmp0(archive_entry_pathname(e), member) == 0) {
            buf[size / 2] ^= 0x01;
            changed = TRUE;
        }
        g_assert_cmpint(archive_write_header(w, e), ==, ARCHIVE_OK);
        g_assert_cmpint(archive_write_data(w, buf, size), ==, size);
    }
    g_assert_true(changed);
    archive_write_close(w);
    archive_write_free(w);
    archive_read_free(r);
}

static void
test_tampered(Fixture *f, gconstpointer data)
{
    g_autofree char *a = path_in(f, "a");
    g_autofree char *b = path_in(f, "b");
    g_autofree char *archive = path_in(f, "a.tar.zst");
    g_autofree char *id = make_installation(a, NULL, "kvm-root");
    const char *members[] = { "keys/host.key", "database/drover.db" };

    backup_ok(a, NULL, archive);
    for (guint i = 0; i < G_N_ELEMENTS(members); i++) {
        g_autofree char *bad = g_strdup_printf("%s/bad-%u.tar.gz", f->tmpdir, i);
        g_autofree char *err = NULL;
        g_autofree char *db = g_build_filename(b, "drover.db", NULL);
        tamper(archive, bad, members[i]);
        g_assert_cmpint(restore(b, NULL, bad, TRUE, &err), ==, DV_EXIT_INVALID);
        g_assert_nonnull(strstr(err, members[i]));
        g_assert_nonnull(strstr(err, "sha256"));
        g_assert_false(g_file_test(db, G_FILE_TEST_EXISTS));
    }
}

static void
test_other_installation(Fixture *f, gconstpointer data)
{
    g_autofree char *a = path_in(f, "a");
    g_autofree char *c = path_in(f, "c");
    g_autofree char *keys_c = g_build_filename(c, "keys", NULL);
    g_autofree char *archive = path_in(f, "a.tar.zst");
    g_autofree char *id = make_installation(a, NULL, "kvm-root");
    g_autofree char *other = make_installation(c, NULL, "other");
    g_autofree char *err = NULL;

    g_assert_cmpstr(id, !=, other);
    backup_ok(a, NULL, archive);
    g_assert_cmpint(restore(c, NULL, archive, FALSE, &err), ==, DV_EXIT_CONFLICT);
    g_assert_nonnull(strstr(err, "installation id differs"));
    g_assert_nonnull(strstr(err, "key k1 has another canary"));
    g_assert_nonnull(strstr(err, "--force"));
    g_assert_cmpuint(count_prefixed(c, "drover.db.before-restore-"), ==, 0);
    assert_secret_readable(c, NULL, "other", other);

    g_assert_cmpint(restore(c, NULL, archive, TRUE, NULL), ==, 0);
    g_assert_cmpuint(count_prefixed(c, "drover.db.before-restore-"), ==, 1);
    g_assert_cmpuint(count_prefixed(keys_c, "host.key.before-restore-"), ==, 1);
    assert_secret_readable(c, NULL, "kvm-root", id);
}

static void
test_running_server(Fixture *f, gconstpointer data)
{
    g_autofree char *a = path_in(f, "a");
    g_autofree char *archive = path_in(f, "a.tar.zst");
    g_autofree char *db = g_build_filename(a, "drover.db", NULL);
    g_autofree char *id = make_installation(a, NULL, "kvm-root");
    g_autofree char *err = NULL;

    backup_ok(a, NULL, archive);
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(DvStore) store = dv_store_open(db, 0, &error);
        g_autoptr(JsonObject) row = json_object_new();
        g_autofree char *sid = g_uuid_string_random();
        g_assert_no_error(error);
        json_object_set_string_member(row, "id", sid);
        json_object_set_string_member(row, "hostname", g_get_host_name());
        json_object_set_int_member(row, "pid", getpid());
        json_object_set_string_member(row, "version", DV_VERSION);
        json_object_set_int_member(row, "started_at", dv_store_now());
        json_object_set_int_member(row, "heartbeat_at", dv_store_now());
        g_assert_true(dv_store_insert(store, &dv_table_servers, row, &error));
    }
    g_assert_cmpint(restore(a, NULL, archive, TRUE, &err), ==, DV_EXIT_CONFLICT);
    g_assert_nonnull(strstr(err, "is running on"));
}

static void
test_missing_key_file(Fixture *f, gconstpointer data)
{
    g_autofree char *a = path_in(f, "a");
    g_autofree char *archive = path_in(f, "a.tar.zst");
    g_autofree char *host_key = g_build_filename(a, "keys", "host.key", NULL);
    g_autofree char *moved = g_build_filename(a, "keys", "host.key.away", NULL);
    g_autofree char *id = make_installation(a, NULL, "kvm-root");
    g_autofree char *err = NULL;
    const char *args[] = { "backup", "--state-dir", a, "--out", archive, NULL };

    g_assert_cmpint(rename(host_key, moved), ==, 0);
    g_assert_cmpint(dv_test_run_setup(args, NULL, &err), ==, DV_EXIT_NOT_FOUND);
    g_assert_nonnull(strstr(err, "missing key file"));
    g_assert_false(g_file_test(archive, G_FILE_TEST_EXISTS));
}

static void
test_space(void)
{
    g_autoptr(GError) error = NULL;
    struct statvfs st = { 0 };

    st.f_frsize = 4096;
    st.f_bavail = 100; /* 400 KiB */
    g_assert_false(dv_setup_backup_check_space("/backups", 2 * 1024 * 1024, &st, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
    g_assert_nonnull(strstr(error->message, "not enough space in /backups"));
    g_assert_nonnull(strstr(error->message, "2 MiB needed"));
    g_clear_error(&error);
    st.f_bavail = 1024;
    g_assert_true(dv_setup_backup_check_space("/backups", 2 * 1024 * 1024, &st, &error));
    g_assert_no_error(error);
}

/* --- PostgreSQL ------------------------------------------------------------- */

static char *
pg_new_database(GPtrArray *names)
{
    char *name = NULL;
    char *uri = dv_test_pg_new_database("dv_test", &name);
    g_ptr_array_add(names, name);
    return uri;
}

static void
test_pg_round_trip(Fixture *f, gconstpointer data)
{
    g_autoptr(GPtrArray) dbs = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *a = path_in(f, "a");
    g_autofree char *b = path_in(f, "b");
    g_autofree char *c = path_in(f, "c");
    g_autofree char *archive = path_in(f, "pg.tar.zst");
    g_autofree char *uri_a = pg_new_database(dbs);
    g_autofree char *uri_b = pg_new_database(dbs);
    g_autofree char *uri_c = pg_new_database(dbs);
    g_autofree char *id = make_installation(a, uri_a, "kvm-root");
    g_autofree char *other = make_installation(c, uri_c, "other");
    g_autofree char *err = NULL;

    backup_ok(a, uri_a, archive);
    /* Into an empty database and a fresh state dir. */
    g_assert_cmpint(restore(b, uri_b, archive, FALSE, NULL), ==, 0);
    assert_secret_readable(b, uri_b, "kvm-root", id);

    /* Over another installation: refused, then forced, the old one dumped. */
    g_assert_cmpint(restore(c, uri_c, archive, FALSE, &err), ==, DV_EXIT_CONFLICT);
    g_assert_nonnull(strstr(err, "installation id differs"));
    assert_secret_readable(c, uri_c, "other", other);
    g_assert_cmpint(restore(c, uri_c, archive, TRUE, NULL), ==, 0);
    g_assert_cmpuint(count_prefixed(c, "drover-pg.before-restore-"), ==, 1);
    assert_secret_readable(c, uri_c, "kvm-root", id);

    for (guint i = 0; i < dbs->len; i++)
        dv_test_pg_drop_database(g_ptr_array_index(dbs, i));
}

static void
test_pg_missing(void)
{
    if (dv_test_require_services())
        g_test_fail_printf("DV_TEST_PG_URI is not set but services are required (CI=true or "
                           "DV_REQUIRE_SERVICES=1): run under tests/services/with-services");
    else
        g_test_skip("DV_TEST_PG_URI is not set; run under tests/services/with-services");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    dv_secret_init_library();

    g_test_add("/drover/setup/backup/sqlite-round-trip", Fixture, NULL, fixture_setup, test_sqlite_round_trip,
               fixture_teardown);
    g_test_add("/drover/setup/backup/refuses-existing-out", Fixture, NULL, fixture_setup,
               test_refuses_existing_out, fixture_teardown);
    g_test_add("/drover/setup/backup/missing-key-file", Fixture, NULL, fixture_setup, test_missing_key_file,
               fixture_teardown);
    g_test_add_func("/drover/setup/backup/not-enough-space", test_space);
    g_test_add("/drover/setup/restore/tampered-member", Fixture, NULL, fixture_setup, test_tampered,
               fixture_teardown);
    g_test_add("/drover/setup/restore/other-installation", Fixture, NULL, fixture_setup,
               test_other_installation, fixture_teardown);
    g_test_add("/drover/setup/restore/running-server", Fixture, NULL, fixture_setup, test_running_server,
               fixture_teardown);
    if (g_getenv("DV_TEST_PG_URI") != NULL)
        g_test_add("/drover/setup/backup/pg-round-trip", Fixture, NULL, fixture_setup, test_pg_round_trip,
                   fixture_teardown);
    else
        g_test_add_func("/drover/setup/backup/pg-round-trip", test_pg_missing);
    return g_test_run();
}
