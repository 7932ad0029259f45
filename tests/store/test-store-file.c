#define G_LOG_DOMAIN "DvTestStoreFile"

/* The SQLite file under an open store: removed, replaced, read-only, full
 * or malformed (dv_db_check_state() and the check before each write), and
 * the one-writer lock (dv_store_lock_acquire()).  Temp dirs always; the
 * full case mounts a 1 MiB tmpfs, so it runs as root (as CI does). */

#include "dv-error.h"
#include "dv-json.h"
#include "dv-store.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *tmpdir;
    char *location;
    DvStore *store;
} Fixture;

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    fx->tmpdir = g_dir_make_tmp("dv-test-store-file-XXXXXX", &error);
    g_assert_no_error(error);
    fx->location = g_build_filename(fx->tmpdir, "drover.db", NULL);
    fx->store = dv_store_open(fx->location, DV_STORE_OPEN_MIGRATE, &error);
    g_assert_no_error(error);
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
    g_autofree char *cmd = NULL;

    g_clear_pointer(&fx->store, dv_store_free);
    cmd = g_strdup_printf("rm -rf '%s'", fx->tmpdir);
    if (system(cmd) != 0)
        g_printerr("cannot remove %s\n", fx->tmpdir);
    g_free(fx->tmpdir);
    g_free(fx->location);
}

/* Inserts one host group named @name; the result and error are the caller's. */
static gboolean
insert_group(DvStore *store, const char *name, GError **error)
{
    g_autoptr(JsonObject) o = json_object_new();
    g_autofree char *id = g_uuid_string_random();

    json_object_set_string_member(o, "id", id);
    json_object_set_string_member(o, "name", name);
    json_object_set_int_member(o, "created_at", dv_store_now());
    return dv_store_insert(store, &dv_table_host_groups, o, error);
}

static gboolean
insert_two_txn(DvStore *store, gpointer user_data, GError **error)
{
    return insert_group(store, "t1", error) && insert_group(store, "t2", error);
}

static void
assert_state(DvStore *store, DvDbState want, const char *detail_part)
{
    g_autofree char *detail = NULL;
    DvDbState state = dv_db_check_state(dv_store_get_db(store), &detail);

    g_test_message("state %s: %s", dv_db_state_to_string(state), detail != NULL ? detail : "-");
    g_assert_cmpstr(dv_db_state_to_string(state), ==, dv_db_state_to_string(want));
    if (detail_part == NULL)
        g_assert_null(detail);
    else
        g_assert_nonnull(strstr(detail, detail_part));
}

/* A write refused for the file: no row, the reason named. */
static void
assert_write_refused(DvStore *store, const char *reason)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GError) txn_error = NULL;

    g_assert_false(insert_group(store, "after", &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
    g_assert_cmpstr(dv_error_get_field(error), ==, "database");
    g_assert_nonnull(strstr(error->message, reason));
    g_assert_nonnull(strstr(error->message, "drover-setup restore"));
    g_assert_false(dv_store_transaction(store, insert_two_txn, NULL, &txn_error));
    g_assert_error(txn_error, DV_ERROR, DV_ERROR_UNAVAILABLE);
    g_assert_nonnull(strstr(txn_error->message, reason));
}

static void
test_removed(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    g_assert_true(insert_group(fx->store, "before", &error));
    g_assert_no_error(error);
    assert_state(fx->store, DV_DB_STATE_OK, NULL);
    g_assert_cmpint(g_unlink(fx->location), ==, 0);
    assert_state(fx->store, DV_DB_STATE_MISSING, "was removed");
    assert_write_refused(fx->store, "was removed");
    /* Reads still answer from the open file. */
    g_assert_cmpint(dv_store_count(fx->store, &dv_table_host_groups, NULL, 0, NULL), ==, 1);
}

static void
test_replaced(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *other = g_build_filename(fx->tmpdir, "other.db", NULL);

    g_assert_true(insert_group(fx->store, "before", &error));
    {
        /* Another database, moved over the path. */
        g_autoptr(DvStore) second = dv_store_open(other, DV_STORE_OPEN_MIGRATE, &error);
        g_assert_no_error(error);
    }
    g_assert_cmpint(g_rename(other, fx->location), ==, 0);
    /* Noticed by the write itself, before any health check. */
    assert_write_refused(fx->store, "was replaced by another file");
    assert_state(fx->store, DV_DB_STATE_REPLACED, "was replaced");
    {
        /* Nothing refused went into the new file either.  (It may show
         * "before": the old connection's -wal file still lies beside it.) */
        g_autoptr(DvStore) check = dv_store_open(fx->location, 0, &error);
        g_autoptr(JsonObject) row = NULL;
        g_assert_no_error(error);
        for (guint i = 0; i < 3; i++) {
            const char *names[] = { "after", "t1", "t2" };
            row = dv_store_find(check, &dv_table_host_groups, "name", names[i], &error);
            g_assert_null(row);
            g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
            g_clear_error(&error);
        }
    }
}

/* A page of the table's data overwritten: queries fail SQLITE_CORRUPT and
 * the state says malformed. */
static void
test_malformed(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvDb) db = NULL;
    g_autoptr(DvSqlRows) rows = NULL;
    g_autoptr(DvSqlRows) root = NULL;
    g_autofree char *garbage = g_malloc(4096);
    gint64 page;
    FILE *f;

    for (guint i = 0; i < 200; i++) {
        g_autofree char *name = g_strdup_printf("g%03u", i);
        g_assert_true(insert_group(fx->store, name, &error));
    }
    root = dv_db_query(dv_store_get_db(fx->store),
                       "SELECT rootpage FROM sqlite_master WHERE name = 'host_groups'",
                       DV_SQL_NO_ARGS, &error);
    g_assert_no_error(error);
    page = dv_sql_rows_get_int(root, 0, 0);
    {
        g_autoptr(DvSqlRows) size =
            dv_db_query(dv_store_get_db(fx->store), "PRAGMA page_size", DV_SQL_NO_ARGS, &error);
        g_assert_no_error(error);
        g_assert_cmpint(dv_sql_rows_get_int(size, 0, 0), ==, 4096);
    }
    g_assert_cmpint(page, >, 1);
    g_clear_pointer(&fx->store, dv_store_free);
    memset(garbage, 0xa5, 4096);
    f = fopen(fx->location, "r+b");
    g_assert_nonnull(f);
    g_assert_cmpint(fseek(f, (long)(page - 1) * 4096, SEEK_SET), ==, 0);
    g_assert_cmpuint(fwrite(garbage, 1, 4096, f), ==, 4096);
    fclose(f);

    db = dv_db_open(fx->location, &error);
    g_assert_no_error(error);
    rows = dv_db_query(db, "SELECT * FROM host_groups NOT INDEXED", DV_SQL_NO_ARGS, &error);
    g_assert_null(rows);
    g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
    {
        g_autofree char *detail = NULL;
        g_assert_cmpint(dv_db_check_state(db, &detail), ==, DV_DB_STATE_MALFORMED);
        g_assert_nonnull(detail);
    }
}

/* A tiny tmpfs: writes go on until SQLITE_FULL, the state says full. */
static void
test_full(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("dv-test-full-XXXXXX", &error);
    g_autofree char *location = g_build_filename(dir, "drover.db", NULL);
    g_autoptr(DvStore) store = NULL;
    g_autofree char *padding = g_strnfill(3000, 'x');
    gboolean full = FALSE;

    g_assert_no_error(error);
    if (mount("tmpfs", dir, "tmpfs", 0, "size=1m") != 0) {
        /* Tests run as root (make check, CI): mounting must work there. */
        g_error("cannot mount a tmpfs on %s (this test runs as root): %s", dir, g_strerror(errno));
    }
    store = dv_store_open(location, DV_STORE_OPEN_MIGRATE, &error);
    g_assert_no_error(error);
    assert_state(store, DV_DB_STATE_OK, NULL);
    for (guint i = 0; i < 2000 && !full; i++) {
        g_autoptr(JsonObject) o = json_object_new();
        g_autofree char *id = g_uuid_string_random();
        g_autofree char *name = g_strdup_printf("g%05u", i);
        json_object_set_string_member(o, "id", id);
        json_object_set_string_member(o, "name", name);
        json_object_set_string_member(o, "description", padding);
        json_object_set_int_member(o, "created_at", dv_store_now());
        if (!dv_store_insert(store, &dv_table_host_groups, o, &error)) {
            g_test_message("write %u: %s", i, error->message);
            g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
            full = TRUE;
        }
    }
    g_assert_true(full);
    assert_state(store, DV_DB_STATE_FULL, "");
    g_clear_pointer(&store, dv_store_free);
    g_assert_cmpint(umount2(dir, MNT_DETACH), ==, 0);
    g_rmdir(dir);
}

/* A file this account may not write opens read-only: the state says so.
 * Root writes anything, so the child drops to nobody first. */
static void
test_read_only(void)
{
    if (g_test_subprocess()) {
        const char *dir = g_getenv("DV_TEST_RO_DIR");
        g_autofree char *location = g_build_filename(dir, "drover.db", NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(DvStore) store = NULL;
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            g_error("cannot become nobody: %s", g_strerror(errno));
        store = dv_store_open(location, 0, &error);
        g_assert_no_error(error);
        assert_state(store, DV_DB_STATE_READ_ONLY, "read-only");
        return;
    }
    {
        g_autoptr(GError) error = NULL;
        g_autofree char *dir = g_dir_make_tmp("dv-test-ro-XXXXXX", &error);
        g_autofree char *location = g_build_filename(dir, "drover.db", NULL);
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
        {
            g_autoptr(DvStore) store = dv_store_open(location, DV_STORE_OPEN_MIGRATE, &error);
            g_assert_no_error(error);
            /* Back to a rollback journal: read-only WAL needs a writable -shm. */
            g_assert_true(dv_db_exec(dv_store_get_db(store), "PRAGMA journal_mode=DELETE",
                                     DV_SQL_NO_ARGS, NULL, &error));
        }
        g_assert_cmpint(chmod(dir, 0755), ==, 0);
        g_assert_cmpint(chmod(location, 0444), ==, 0);
        g_setenv("DV_TEST_RO_DIR", dir, TRUE);
        g_test_trap_subprocess(NULL, 30 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
        g_assert_cmpint(system(cmd), ==, 0);
        g_test_trap_assert_passed();
    }
}

static void
test_lock(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("dv-test-lock-XXXXXX", &error);
    g_autofree char *location = g_build_filename(dir, "drover.db", NULL);
    g_autofree char *lock_path = dv_store_lock_path(location);
    g_autofree char *pid = g_strdup_printf("pid %d", (int)getpid());
    g_autoptr(DvStoreLock) first = NULL;
    g_autoptr(DvStoreLock) second = NULL;
    g_autoptr(DvStoreLock) pg = NULL;

    first = dv_store_lock_acquire(location, "droverd", &error);
    g_assert_no_error(error);
    g_assert_nonnull(first);
    g_assert_true(g_file_test(lock_path, G_FILE_TEST_EXISTS));
    /* A second open, even in this process, is refused, naming the holder. */
    second = dv_store_lock_acquire(location, "drover-setup upgrade", &error);
    g_assert_null(second);
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "database");
    g_test_message("%s", error->message);
    g_assert_nonnull(strstr(error->message, "droverd"));
    g_assert_nonnull(strstr(error->message, pid));
    g_clear_error(&error);
    /* Released: free again, and the file it made is gone. */
    g_clear_pointer(&first, dv_store_lock_release);
    g_assert_false(g_file_test(lock_path, G_FILE_TEST_EXISTS));
    second = dv_store_lock_acquire(location, "drover-setup upgrade", &error);
    g_assert_no_error(error);
    g_assert_nonnull(second);
    g_clear_pointer(&second, dv_store_lock_release);
    /* PostgreSQL: nothing to hold here. */
    g_assert_null(dv_store_lock_path("postgresql://u@h/db"));
    pg = dv_store_lock_acquire("postgresql://u@h/db", "droverd", &error);
    g_assert_no_error(error);
    g_assert_nonnull(pg);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/drover/store/file/removed", Fixture, NULL, fixture_setup, test_removed,
               fixture_teardown);
    g_test_add("/drover/store/file/replaced", Fixture, NULL, fixture_setup, test_replaced,
               fixture_teardown);
    g_test_add("/drover/store/file/malformed", Fixture, NULL, fixture_setup, test_malformed,
               fixture_teardown);
    g_test_add_func("/drover/store/file/full", test_full);
    g_test_add_func("/drover/store/file/read-only", test_read_only);
    g_test_add_func("/drover/store/file/lock", test_lock);
    return g_test_run();
}
