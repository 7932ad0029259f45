#define G_LOG_DOMAIN "DvTestKeys"

/* src/engine/keys against a SQLite store in a temp dir.  "Another machine"
 * is another state dir opened with another machine-id file; "another
 * service account" is a child process running as another Unix user
 * (created with useradd when missing; needs root). */

#include "dv-error.h"
#include "dv-json.h"
#include "dv-keys-private.h"
#include "dv-store.h"
#include "dv-test-util.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MACHINE_A "0123456789abcdef0123456789abcdef"
#define MACHINE_B "fedcba9876543210fedcba9876543210"
#define TEST_USER "drover-test2"

typedef struct {
    char *tmpdir;
    char *state_dir;
    char *db_path;
    char *machine_a;
    char *machine_b;
    DvStore *store;
    DvKeyring *keyring;
} Fixture;

/* --- helpers ------------------------------------------------------------- */

static void
rm_rf(const char *path)
{
    GDir *dir;
    const char *name;

    if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
        dir = g_dir_open(path, 0, NULL);
        if (dir != NULL) {
            while ((name = g_dir_read_name(dir)) != NULL) {
                g_autofree char *child = g_build_filename(path, name, NULL);
                rm_rf(child);
            }
            g_dir_close(dir);
        }
        g_rmdir(path);
    } else {
        g_unlink(path);
    }
}

static char *
write_file(const char *dir, const char *name, const char *text)
{
    g_autoptr(GError) error = NULL;
    char *path = g_build_filename(dir, name, NULL);

    g_file_set_contents(path, text, -1, &error);
    g_assert_no_error(error);
    g_assert_cmpint(g_chmod(path, 0644), ==, 0);
    return path;
}

static void
copy_file(const char *from, const char *to, int mode)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *data = NULL;
    gsize len = 0;

    g_file_get_contents(from, &data, &len, &error);
    g_assert_no_error(error);
    g_file_set_contents(to, data, (gssize)len, &error);
    g_assert_no_error(error);
    g_assert_cmpint(g_chmod(to, mode), ==, 0);
}

static char *
read_file(const char *path)
{
    g_autoptr(GError) error = NULL;
    char *data = NULL;

    g_file_get_contents(path, &data, NULL, &error);
    g_assert_no_error(error);
    return data;
}

static DvKeyring *
open_keyring(DvStore *store, const char *state_dir, const char *machine_id_path,
             const char *recovery_path, DvKeyProtector **protectors, guint n_protectors)
{
    g_autoptr(GError) error = NULL;
    DvKeyringOptions opts = { 0 };
    DvKeyring *keyring;

    opts.state_dir = state_dir;
    opts.machine_id_path = machine_id_path;
    opts.recovery_key_path = recovery_path;
    opts.protectors = protectors;
    opts.n_protectors = n_protectors;
    keyring = dv_keyring_open(store, &opts, &error);
    g_assert_no_error(error);
    g_assert_nonnull(keyring);
    return keyring;
}

static DvStore *
open_store(const char *path)
{
    g_autoptr(GError) error = NULL;
    DvStore *store = dv_store_open(path, DV_STORE_OPEN_MIGRATE, &error);

    g_assert_no_error(error);
    return store;
}

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    fx->tmpdir = g_dir_make_tmp("dv-test-keys-XXXXXX", &error);
    g_assert_no_error(error);
    fx->state_dir = g_build_filename(fx->tmpdir, "state", NULL);
    g_assert_cmpint(g_mkdir(fx->state_dir, 0700), ==, 0);
    fx->db_path = g_build_filename(fx->state_dir, "drover.db", NULL);
    fx->machine_a = write_file(fx->tmpdir, "machine-id-a", MACHINE_A "\n");
    fx->machine_b = write_file(fx->tmpdir, "machine-id-b", MACHINE_B "\n");
    fx->store = open_store(fx->db_path);
    fx->keyring = open_keyring(fx->store, fx->state_dir, fx->machine_a, NULL, NULL, 0);
    dv_keyring_initialize(fx->keyring, &error);
    g_assert_no_error(error);
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
    g_clear_pointer(&fx->keyring, dv_keyring_free);
    g_clear_pointer(&fx->store, dv_store_free);
    rm_rf(fx->tmpdir);
    g_free(fx->tmpdir);
    g_free(fx->state_dir);
    g_free(fx->db_path);
    g_free(fx->machine_a);
    g_free(fx->machine_b);
}

/* Closes and reopens the keyring of @fx (same store). */
static void
fixture_reopen(Fixture *fx, const char *machine_id_path)
{
    g_clear_pointer(&fx->keyring, dv_keyring_free);
    fx->keyring = open_keyring(fx->store, fx->state_dir, machine_id_path, NULL, NULL, 0);
}

static char *
seal_text(Fixture *fx, const char *type, const char *id, const char *field, const char *text)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSecret) plain = dv_secret_new_from_string(text);
    char *stored = dv_keyring_seal(fx->keyring, type, id, field, plain, &error);

    g_assert_no_error(error);
    g_assert_nonnull(stored);
    g_assert_null(strstr(stored, text));
    return stored;
}

static void
assert_unreadable(DvKeyring *keyring, const char *type, const char *id, const char *field,
                  const char *stored, const char *reason, const char *plaintext)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSecret) plain = dv_keyring_unseal(keyring, type, id, field, stored, &error);

    g_assert_null(plain);
    g_assert_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE);
    if (reason != NULL && strstr(error->message, reason) == NULL)
        g_error("'%s' does not contain '%s'", error->message, reason);
    if (plaintext != NULL)
        g_assert_null(strstr(error->message, plaintext));
    g_assert_cmpstr(dv_error_get_field(error), ==, field);
}

static void
store_text(Fixture *fx, DvKeyring *keyring, const char *type, const char *id, const char *field,
           const char *text)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSecret) plain = dv_secret_new_from_string(text);

    dv_keyring_store_secret(keyring, fx->store, type, id, field, plain, &error);
    g_assert_no_error(error);
}

static void
assert_load(DvKeyring *keyring, DvStore *store, const char *type, const char *id,
            const char *field, const char *text)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSecret) plain = dv_keyring_load_secret(keyring, store, type, id, field, &error);

    g_assert_no_error(error);
    g_assert_cmpstr(dv_secret_get_string(plain), ==, text);
}

/* Every row of the secrets table, as one string, to compare byte for byte. */
static char *
dump_secrets(DvStore *store)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSqlRows) rows = dv_db_query(dv_store_get_db(store),
                                            "SELECT id, object_type, object_id, field, key_id, "
                                            "value, updated_at FROM secrets ORDER BY id",
                                            DV_SQL_NO_ARGS, &error);
    GString *out = g_string_new(NULL);

    g_assert_no_error(error);
    for (guint i = 0; i < dv_sql_rows_get_n_rows(rows); i++) {
        for (guint c = 0; c < 7; c++)
            g_string_append_printf(out, "%s|", dv_sql_rows_get_text(rows, i, c));
        g_string_append_c(out, '\n');
    }
    return g_string_free(out, FALSE);
}

static gint64
count_rows(DvStore *store, const char *sql)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSqlRows) rows = dv_db_query(dv_store_get_db(store), sql, DV_SQL_NO_ARGS, &error);

    g_assert_no_error(error);
    return dv_sql_rows_get_int(rows, 0, 0);
}

static JsonObject *
check_entry(DvKeyring *keyring, const char *key_id)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonArray) arr = dv_keyring_check(keyring, &error);

    g_assert_no_error(error);
    for (guint i = 0; i < json_array_get_length(arr); i++) {
        JsonObject *o = json_array_get_object_element(arr, i);
        if (g_strcmp0(json_object_get_string_member(o, "key_id"), key_id) == 0)
            return json_object_ref(o);
    }
    g_error("key %s not in the check output", key_id);
}

static void
assert_contains(const char *haystack, const char *needle)
{
    if (haystack == NULL || strstr(haystack, needle) == NULL)
        g_error("'%s' does not contain '%s'", haystack, needle);
}

static gboolean
require_root(void)
{
    if (geteuid() == 0)
        return TRUE;
    if (g_getenv("CI") != NULL || g_getenv("DV_REQUIRE_SERVICES") != NULL)
        g_error("this test needs root (CI or DV_REQUIRE_SERVICES is set)");
    g_test_skip("needs root");
    return FALSE;
}

/* --- sealing -------------------------------------------------------------- */

static void
test_round_trip(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *stored = seal_text(fx, "run_as_account", "a1", "password", "hunter2-xyzzy");
    g_autofree char *stored2 = seal_text(fx, "run_as_account", "a1", "password", "hunter2-xyzzy");
    g_autoptr(DvSecret) plain = NULL;

    g_assert_true(g_str_has_prefix(stored, "dv1.k1."));
    g_assert_cmpstr(stored, !=, stored2); /* random nonces */
    plain = dv_keyring_unseal(fx->keyring, "run_as_account", "a1", "password", stored, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_secret_get_string(plain), ==, "hunter2-xyzzy");
}

static void
test_aad_binding(Fixture *fx, gconstpointer data)
{
    g_autofree char *stored = seal_text(fx, "run_as_account", "a1", "password", "s3cret-aad");
    const char *reason = "authentication failed: the value was altered or belongs to another "
                         "object or field";

    assert_unreadable(fx->keyring, "run_as_account", "a2", "password", stored, reason, "s3cret-aad");
    assert_unreadable(fx->keyring, "run_as_account", "a1", "ssh_key", stored, reason, NULL);
    assert_unreadable(fx->keyring, "guest_os_profile", "a1", "password", stored, reason, NULL);
    /* The separators make ("a", "1x") and ("a1", "x") different. */
    assert_unreadable(fx->keyring, "run_as_accounta", "1", "password", stored, reason, NULL);
}

static void
test_tampered(Fixture *fx, gconstpointer data)
{
    g_autofree char *stored = seal_text(fx, "run_as_account", "a1", "password", "tamper-me-please");
    gsize len = strlen(stored);

    for (gsize i = 0; i < len; i++) {
        g_autofree char *bad = g_strdup(stored);
        g_autoptr(GError) error = NULL;
        g_autoptr(DvSecret) plain = NULL;

        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        plain = dv_keyring_unseal(fx->keyring, "run_as_account", "a1", "password", bad, &error);
        if (plain != NULL)
            g_error("tampered value (byte %" G_GSIZE_FORMAT ") opened", i);
        g_assert_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE);
        g_assert_null(strstr(error->message, "tamper-me-please"));
    }
    /* A flipped byte inside the blob is an authentication failure. */
    {
        g_autofree char *bad = g_strdup(stored);
        bad[len - 10] = bad[len - 10] == 'A' ? 'B' : 'A';
        assert_unreadable(fx->keyring, "run_as_account", "a1", "password", bad,
                          "authentication failed", NULL);
    }
}

static void
test_truncated(Fixture *fx, gconstpointer data)
{
    g_autofree char *stored = seal_text(fx, "run_as_account", "a1", "password", "truncate-me");
    gsize len = strlen(stored);

    for (gsize n = 0; n < len; n++) {
        g_autofree char *bad = g_strndup(stored, n);
        assert_unreadable(fx->keyring, "run_as_account", "a1", "password", bad, NULL, NULL);
    }
    {
        g_autofree char *bad = g_strndup(stored, 7 + 10);
        assert_unreadable(fx->keyring, "run_as_account", "a1", "password", bad, "malformed value",
                          NULL);
    }
    assert_unreadable(fx->keyring, "run_as_account", "a1", "password", "dv1.k1.", "malformed value",
                      NULL);
    assert_unreadable(fx->keyring, "run_as_account", "a1", "password", "dv1.k1.!!!!====",
                      "malformed value", NULL);
    assert_unreadable(fx->keyring, "run_as_account", "a1", "password", "", "malformed value", NULL);
    assert_unreadable(fx->keyring, "run_as_account", "a1", "password", "hunter2", "malformed value",
                      NULL);
}

static void
test_unknown_version(Fixture *fx, gconstpointer data)
{
    g_autofree char *stored = seal_text(fx, "run_as_account", "a1", "password", "version-test");
    g_autofree char *v9 = g_strconcat("dv9.", stored + 4, NULL);
    g_autofree char *v10 = g_strconcat("dv10.", stored + 4, NULL);

    assert_unreadable(fx->keyring, "run_as_account", "a1", "password", v9,
                      "unknown format version 'dv9'", NULL);
    assert_unreadable(fx->keyring, "run_as_account", "a1", "password", v10,
                      "unknown format version", NULL);
}

static void
test_unknown_key(Fixture *fx, gconstpointer data)
{
    g_autofree char *stored = seal_text(fx, "run_as_account", "a1", "password", "key-test");
    g_autofree char *k7 = g_strconcat("dv1.k7.", stored + 7, NULL);

    assert_unreadable(fx->keyring, "run_as_account", "a1", "password", k7,
                      "key k7 is unknown to this installation", NULL);
}

static void
test_size_limits(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSecret) empty = dv_secret_new(0);
    g_autoptr(DvSecret) max = dv_secret_new_random(DV_KEYS_PLAINTEXT_MAX);
    g_autoptr(DvSecret) over = dv_secret_new_random(DV_KEYS_PLAINTEXT_MAX + 1);
    g_autofree char *stored = NULL;
    g_autofree char *none = NULL;
    g_autoptr(DvSecret) back = NULL;

    none = dv_keyring_seal(fx->keyring, "run_as_account", "a1", "password", empty, &error);
    g_assert_null(none);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "password");
    g_clear_error(&error);

    none = dv_keyring_seal(fx->keyring, "run_as_account", "a1", "password", over, &error);
    g_assert_null(none);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "password");
    g_clear_error(&error);

    stored = dv_keyring_seal(fx->keyring, "run_as_account", "a1", "password", max, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(strlen(stored), <=, DV_KEYS_STORED_MAX);
    back = dv_keyring_unseal(fx->keyring, "run_as_account", "a1", "password", stored, &error);
    g_assert_no_error(error);
    g_assert_true(dv_secret_equal(back, max));
}

static void
test_binary(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    guint8 bytes[512];
    g_autoptr(DvSecret) plain = NULL;
    g_autoptr(DvSecret) back = NULL;
    g_autofree char *stored = NULL;

    for (guint i = 0; i < sizeof(bytes); i++)
        bytes[i] = (guint8)(i * 7 + 0x80); /* NULs, 0xff, invalid UTF-8 */
    plain = dv_secret_new_from_data(bytes, sizeof(bytes));
    stored = dv_keyring_seal(fx->keyring, "app_setting", "s1", "value", plain, &error);
    g_assert_no_error(error);
    back = dv_keyring_unseal(fx->keyring, "app_setting", "s1", "value", stored, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(dv_secret_get_len(back), ==, sizeof(bytes));
    g_assert_cmpmem(dv_secret_get_data(back), sizeof(bytes), bytes, sizeof(bytes));
}

static void
test_describe(Fixture *fx, gconstpointer data)
{
    g_autofree char *stored = seal_text(fx, "run_as_account", "a1", "password", "describe-me");
    g_autoptr(JsonObject) unset = dv_keyring_describe(fx->keyring, "run_as_account", "a1",
                                                      "password", NULL);
    g_autoptr(JsonObject) ok = dv_keyring_describe(fx->keyring, "run_as_account", "a1", "password",
                                                   stored);
    g_autoptr(JsonObject) moved = dv_keyring_describe(fx->keyring, "run_as_account", "a2",
                                                      "password", stored);
    g_autoptr(JsonObject) junk = dv_keyring_describe(fx->keyring, "run_as_account", "a1",
                                                     "password", "junk");
    g_autofree char *ok_text = dv_json_object_to_string(ok, FALSE);

    g_assert_false(json_object_get_boolean_member(unset, "set"));
    g_assert_cmpuint(json_object_get_size(unset), ==, 1);
    g_assert_cmpstr(ok_text, ==, "{\"set\":true,\"key_id\":\"k1\",\"readable\":true}");
    g_assert_false(json_object_get_boolean_member(moved, "readable"));
    assert_contains(json_object_get_string_member(moved, "reason"), "authentication failed");
    g_assert_false(json_object_get_boolean_member(junk, "readable"));
    g_assert_true(json_object_get_null_member(junk, "key_id"));
    assert_contains(json_object_get_string_member(junk, "reason"), "malformed value");
}

/* --- the secrets table -------------------------------------------------------- */

static void
test_store_helpers(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) desc = NULL;
    g_autoptr(DvSecret) none = NULL;
    g_autofree char *db_bytes = NULL;
    gsize db_len = 0;

    store_text(fx, fx->keyring, "run_as_account", "a1", "password", "first-pass-1234");
    store_text(fx, fx->keyring, "run_as_account", "a1", "password", "second-pass-5678");
    store_text(fx, fx->keyring, "run_as_account", "a1", "ssh_key", "ssh-private-key-bytes");
    store_text(fx, fx->keyring, "run_as_account", "a2", "password", "other-account-pass");
    assert_load(fx->keyring, fx->store, "run_as_account", "a1", "password", "second-pass-5678");
    g_assert_cmpint(count_rows(fx->store, "SELECT COUNT(*) FROM secrets"), ==, 3);

    desc = dv_keyring_describe_object(fx->keyring, fx->store, "run_as_account", "a1", &error);
    g_assert_no_error(error);
    g_assert_cmpuint(json_object_get_size(desc), ==, 2);
    g_assert_true(json_object_get_boolean_member(json_object_get_object_member(desc, "ssh_key"),
                                                 "readable"));

    /* No plaintext reaches the database file. */
    g_clear_pointer(&fx->keyring, dv_keyring_free);
    g_clear_pointer(&fx->store, dv_store_free);
    g_file_get_contents(fx->db_path, &db_bytes, &db_len, &error);
    g_assert_no_error(error);
    g_assert_null(g_strstr_len(db_bytes, (gssize)db_len, "second-pass-5678"));
    g_assert_null(g_strstr_len(db_bytes, (gssize)db_len, "ssh-private-key-bytes"));
    fx->store = open_store(fx->db_path);
    fx->keyring = open_keyring(fx->store, fx->state_dir, fx->machine_a, NULL, NULL, 0);

    dv_keyring_delete_secret(fx->keyring, fx->store, "run_as_account", "a1", "ssh_key", &error);
    g_assert_no_error(error);
    none = dv_keyring_load_secret(fx->keyring, fx->store, "run_as_account", "a1", "ssh_key", &error);
    g_assert_null(none);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);

    dv_keyring_delete_object_secrets(fx->keyring, fx->store, "run_as_account", "a1", &error);
    g_assert_no_error(error);
    g_assert_cmpint(count_rows(fx->store, "SELECT COUNT(*) FROM secrets"), ==, 1);
    assert_load(fx->keyring, fx->store, "run_as_account", "a2", "password", "other-account-pass");
}

/* --- the host protector ---------------------------------------------------------- */

static char *
host_key_path(const char *state_dir)
{
    return g_build_filename(state_dir, "keys", "host.key", NULL);
}

static void
test_host_file_mode(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = host_key_path(fx->state_dir);
    g_autofree char *before = read_file(path);
    g_autofree char *after = NULL;
    g_autofree char *stored = seal_text(fx, "run_as_account", "a1", "password", "mode-test");
    g_autoptr(JsonObject) k1 = NULL;
    g_autofree char *none = NULL;
    g_autoptr(DvSecret) plain = dv_secret_new_from_string("x");
    struct stat st;

    g_assert_cmpint(g_stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0600);
    g_assert_cmpint(g_chmod(path, 0644), ==, 0);
    fixture_reopen(fx, fx->machine_a);

    k1 = check_entry(fx->keyring, "k1");
    g_assert_false(json_object_get_boolean_member(k1, "open"));
    assert_contains(json_object_get_string_member(k1, "reason"), "mode 0644");
    assert_contains(json_object_get_string_member(k1, "reason"), path);
    assert_unreadable(fx->keyring, "run_as_account", "a1", "password", stored, "mode 0644",
                      "mode-test");
    none = dv_keyring_seal(fx->keyring, "run_as_account", "a1", "password", plain, &error);
    g_assert_null(none);
    g_assert_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE);
    g_clear_error(&error);
    /* Not a reason to make a new key. */
    g_assert_false(dv_keyring_initialize(fx->keyring, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE);
    after = read_file(path);
    g_assert_cmpstr(before, ==, after);

    g_assert_cmpint(g_chmod(path, 0600), ==, 0);
    fixture_reopen(fx, fx->machine_a);
    g_clear_pointer(&k1, json_object_unref);
    k1 = check_entry(fx->keyring, "k1");
    g_assert_true(json_object_get_boolean_member(k1, "open"));
    g_assert_cmpstr(json_object_get_string_member(k1, "via"), ==, "host");
}

static void
test_host_file_owner(Fixture *fx, gconstpointer data)
{
    g_autofree char *path = host_key_path(fx->state_dir);
    g_autoptr(JsonObject) k1 = NULL;

    if (!require_root())
        return;
    g_assert_cmpint(chown(path, 65534, 65534), ==, 0);
    fixture_reopen(fx, fx->machine_a);
    k1 = check_entry(fx->keyring, "k1");
    g_assert_false(json_object_get_boolean_member(k1, "open"));
    assert_contains(json_object_get_string_member(k1, "reason"),
                    "belongs to uid 65534, this process runs as uid 0");
}

/* Copies the database (closed) and the host key file to a second state dir. */
static char *
copy_installation(Fixture *fx, const char *name)
{
    g_autofree char *src_key = host_key_path(fx->state_dir);
    char *dir = g_build_filename(fx->tmpdir, name, NULL);
    g_autofree char *keys = g_build_filename(dir, "keys", NULL);
    g_autofree char *db = g_build_filename(dir, "drover.db", NULL);
    g_autofree char *key = host_key_path(dir);

    g_clear_pointer(&fx->keyring, dv_keyring_free);
    g_clear_pointer(&fx->store, dv_store_free);
    g_assert_cmpint(g_mkdir_with_parents(keys, 0700), ==, 0);
    copy_file(fx->db_path, db, 0600);
    copy_file(src_key, key, 0600);
    fx->store = open_store(fx->db_path);
    fx->keyring = open_keyring(fx->store, fx->state_dir, fx->machine_a, NULL, NULL, 0);
    return dir;
}

static void
test_another_machine(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir_b = NULL;
    g_autofree char *db_b = NULL;
    g_autofree char *key_b = NULL;
    g_autofree char *key_b_before = NULL;
    g_autofree char *key_b_after = NULL;
    g_autofree char *rows_before = NULL;
    g_autofree char *rows_after = NULL;
    g_autofree char *recovery = g_build_filename(fx->tmpdir, "recovery.key", NULL);
    g_autoptr(DvStore) store_b = NULL;
    g_autoptr(DvKeyring) keyring_b = NULL;
    g_autoptr(JsonObject) k1 = NULL;
    g_autoptr(JsonObject) desc = NULL;
    g_autoptr(DvSecret) none = NULL;
    char name[32];

    for (guint i = 0; i < 5; i++) {
        g_autofree char *text = g_strdup_printf("machine-secret-%u", i);
        g_snprintf(name, sizeof(name), "a%u", i);
        store_text(fx, fx->keyring, "run_as_account", name, "password", text);
    }

    dir_b = copy_installation(fx, "state-b");
    db_b = g_build_filename(dir_b, "drover.db", NULL);
    key_b = host_key_path(dir_b);
    key_b_before = read_file(key_b);
    store_b = open_store(db_b);
    rows_before = dump_secrets(store_b);
    keyring_b = open_keyring(store_b, dir_b, fx->machine_b, NULL, NULL, 0);

    k1 = check_entry(keyring_b, "k1");
    g_assert_false(json_object_get_boolean_member(k1, "open"));
    assert_contains(json_object_get_string_member(k1, "reason"), "no protector could open key k1");
    assert_contains(json_object_get_string_member(k1, "reason"),
                    "was made on another machine (machine-id differs)");
    g_assert_cmpint(json_object_get_int_member(k1, "secrets"), ==, 5);

    desc = dv_keyring_describe_object(keyring_b, store_b, "run_as_account", "a3", &error);
    g_assert_no_error(error);
    {
        JsonObject *pw = json_object_get_object_member(desc, "password");
        g_assert_true(json_object_get_boolean_member(pw, "set"));
        g_assert_false(json_object_get_boolean_member(pw, "readable"));
        g_assert_cmpstr(json_object_get_string_member(pw, "key_id"), ==, "k1");
        assert_contains(json_object_get_string_member(pw, "reason"), "machine-id differs");
    }
    none = dv_keyring_load_secret(keyring_b, store_b, "run_as_account", "a3", "password", &error);
    g_assert_null(none);
    g_assert_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE);
    assert_contains(error->message, "key k1 cannot be opened here");
    g_assert_null(strstr(error->message, "machine-secret"));
    g_clear_error(&error);

    /* Nothing made, rewritten or deleted. */
    g_assert_false(dv_keyring_initialize(keyring_b, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE);
    g_clear_error(&error);
    {
        guint done = 99, remaining = 99, skipped = 99;
        g_assert_false(dv_keyring_rekey_batch(keyring_b, 7, &done, &remaining, &skipped, &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE);
        g_clear_error(&error);
    }
    rows_after = dump_secrets(store_b);
    g_assert_cmpstr(rows_before, ==, rows_after);
    g_assert_cmpint(count_rows(store_b, "SELECT COUNT(*) FROM key_versions"), ==, 1);
    key_b_after = read_file(key_b);
    g_assert_cmpstr(key_b_before, ==, key_b_after);
    g_clear_pointer(&keyring_b, dv_keyring_free);
    g_clear_pointer(&store_b, dv_store_free);

    /* The recovery key, made on the first installation, opens them there. */
    dv_keyring_recovery_create(fx->keyring, recovery, &error);
    g_assert_no_error(error);
    {
        struct stat st;
        g_assert_cmpint(g_stat(recovery, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 07777, ==, 0600);
    }
    g_free(dir_b);
    dir_b = copy_installation(fx, "state-c");
    g_free(db_b);
    db_b = g_build_filename(dir_b, "drover.db", NULL);
    store_b = open_store(db_b);
    keyring_b = open_keyring(store_b, dir_b, fx->machine_b, recovery, NULL, 0);
    g_clear_pointer(&k1, json_object_unref);
    k1 = check_entry(keyring_b, "k1");
    g_assert_true(json_object_get_boolean_member(k1, "open"));
    g_assert_cmpstr(json_object_get_string_member(k1, "via"), ==, "recovery");
    for (guint i = 0; i < 5; i++) {
        g_autofree char *text = g_strdup_printf("machine-secret-%u", i);
        g_snprintf(name, sizeof(name), "a%u", i);
        assert_load(keyring_b, store_b, "run_as_account", name, "password", text);
    }

    /* This machine's own host key file then opens them without it. */
    dv_keyring_protect_with_host(keyring_b, &error);
    g_assert_no_error(error);
    g_clear_pointer(&keyring_b, dv_keyring_free);
    keyring_b = open_keyring(store_b, dir_b, fx->machine_b, NULL, NULL, 0);
    g_clear_pointer(&k1, json_object_unref);
    k1 = check_entry(keyring_b, "k1");
    g_assert_true(json_object_get_boolean_member(k1, "open"));
    g_assert_cmpstr(json_object_get_string_member(k1, "via"), ==, "host");
    {
        /* The copied file was kept aside, not deleted. */
        g_autofree char *keys_dir = g_build_filename(dir_b, "keys", NULL);
        g_autoptr(GDir) d = g_dir_open(keys_dir, 0, NULL);
        const char *n;
        gboolean found = FALSE;
        while ((n = g_dir_read_name(d)) != NULL)
            found |= g_str_has_prefix(n, "host.key.unusable-");
        g_assert_true(found);
    }
}

static void
test_recovery_no_overwrite(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = write_file(fx->tmpdir, "existing.key", "precious\n");
    g_autofree char *path2 = g_build_filename(fx->tmpdir, "recovery2.key", NULL);
    g_autofree char *path3 = g_build_filename(fx->tmpdir, "recovery3.key", NULL);
    g_autofree char *after = NULL;

    g_assert_false(dv_keyring_recovery_create(fx->keyring, path, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    assert_contains(error->message, "already exists");
    g_clear_error(&error);
    after = read_file(path);
    g_assert_cmpstr(after, ==, "precious\n");
    g_assert_cmpint(count_rows(fx->store, "SELECT COUNT(*) FROM key_protectors WHERE kind = 'recovery'"),
                    ==, 0);

    dv_keyring_recovery_create(fx->keyring, path2, &error);
    g_assert_no_error(error);
    /* One recovery key per installation. */
    g_assert_false(dv_keyring_recovery_create(fx->keyring, path3, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_assert_false(g_file_test(path3, G_FILE_TEST_EXISTS));
    g_clear_error(&error);

    /* Keys made later are sealed to it automatically. */
    dv_keyring_rotate(fx->keyring, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpint(count_rows(fx->store, "SELECT COUNT(*) FROM key_versions "
                                          "WHERE recovery_wrapped IS NOT NULL"),
                    ==, 2);
    {
        g_autofree char *keyfile = host_key_path(fx->state_dir);
        g_autoptr(DvKeyring) kr = NULL;
        g_autoptr(JsonObject) k2 = NULL;
        g_assert_cmpint(g_unlink(keyfile), ==, 0);
        kr = open_keyring(fx->store, fx->state_dir, fx->machine_a, path2, NULL, 0);
        k2 = check_entry(kr, "k2");
        g_assert_true(json_object_get_boolean_member(k2, "open"));
        g_assert_cmpstr(json_object_get_string_member(k2, "via"), ==, "recovery");
    }
}

/* Runs in a child process as @pw: opens the keyring on @db_path with the
 * host key file of @state_dir and writes k1's reason to @fd. */
static void
child_open_as(const struct passwd *pw, const char *db_path, const char *state_dir,
              const char *machine_id, int fd)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvStore) store = NULL;
    g_autoptr(DvKeyring) keyring = NULL;
    g_autoptr(JsonObject) k1 = NULL;
    DvKeyringOptions opts = { 0 };
    const char *reason;

    if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        (void)!write(fd, "ERR:setuid", 10);
        _exit(1);
    }
    store = dv_store_open(db_path, 0, &error);
    opts.state_dir = state_dir;
    opts.machine_id_path = machine_id;
    if (store != NULL)
        keyring = dv_keyring_open(store, &opts, &error);
    if (keyring == NULL) {
        g_autofree char *msg = g_strdup_printf("ERR:%s", error->message);
        (void)!write(fd, msg, strlen(msg));
        _exit(1);
    }
    k1 = check_entry(keyring, "k1");
    reason = json_object_get_boolean_member(k1, "open") ? "OPEN"
                                                        : json_object_get_string_member(k1, "reason");
    (void)!write(fd, reason, strlen(reason));
    _exit(0);
}

static char *
run_child_as(const struct passwd *pw, const char *db_path, const char *state_dir,
             const char *machine_id)
{
    int fds[2];
    pid_t pid;
    GString *out = g_string_new(NULL);
    char buf[1024];
    ssize_t n;
    int status = 0;

    g_assert_cmpint(pipe(fds), ==, 0);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        close(fds[0]);
        child_open_as(pw, db_path, state_dir, machine_id, fds[1]);
    }
    close(fds[1]);
    while ((n = read(fds[0], buf, sizeof(buf))) > 0)
        g_string_append_len(out, buf, n);
    close(fds[0]);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        g_error("child failed: %s", out->str);
    return g_string_free(out, FALSE);
}

static void
test_another_account(Fixture *fx, gconstpointer data)
{
    struct passwd *pw;
    g_autofree char *user_dir = NULL;
    g_autofree char *user_db = NULL;
    g_autofree char *user_state = NULL;
    g_autofree char *user_keys = NULL;
    g_autofree char *user_key = NULL;
    g_autofree char *keys_dir = g_build_filename(fx->state_dir, "keys", NULL);
    g_autofree char *src_key = host_key_path(fx->state_dir);
    g_autofree char *reason = NULL;
    g_autofree char *expect = NULL;

    if (!require_root())
        return;
    pw = getpwnam(TEST_USER);
    if (pw == NULL) {
        const char *argv[] = { "useradd", "-r", "-M", "-s", "/usr/sbin/nologin", TEST_USER, NULL };
        g_autoptr(GError) error = NULL;
        gint status = 0;
        g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                     &status, &error);
        g_assert_no_error(error);
        g_spawn_check_wait_status(status, &error);
        g_assert_no_error(error);
        pw = getpwnam(TEST_USER);
    }
    g_assert_nonnull(pw);
    g_assert_cmpuint(pw->pw_uid, !=, 0);

    store_text(fx, fx->keyring, "run_as_account", "a1", "password", "account-secret");
    g_clear_pointer(&fx->keyring, dv_keyring_free);
    g_clear_pointer(&fx->store, dv_store_free);

    /* The other account may traverse to the root-owned key file (to see
     * whose it is) and owns a copy of the database and a state dir. */
    g_assert_cmpint(g_chmod(fx->tmpdir, 0711), ==, 0);
    g_assert_cmpint(g_chmod(fx->state_dir, 0711), ==, 0);
    g_assert_cmpint(g_chmod(keys_dir, 0711), ==, 0);
    user_dir = g_build_filename(fx->tmpdir, "user2", NULL);
    user_state = g_build_filename(user_dir, "state", NULL);
    user_keys = g_build_filename(user_state, "keys", NULL);
    g_assert_cmpint(g_mkdir_with_parents(user_keys, 0700), ==, 0);
    user_db = g_build_filename(user_dir, "drover.db", NULL);
    copy_file(fx->db_path, user_db, 0600);
    user_key = host_key_path(user_state);
    copy_file(src_key, user_key, 0600);
    g_assert_cmpint(chown(user_dir, pw->pw_uid, pw->pw_gid), ==, 0);
    g_assert_cmpint(chown(user_state, pw->pw_uid, pw->pw_gid), ==, 0);
    g_assert_cmpint(chown(user_keys, pw->pw_uid, pw->pw_gid), ==, 0);
    g_assert_cmpint(chown(user_db, pw->pw_uid, pw->pw_gid), ==, 0);

    /* The root-owned file: refused by owner. */
    reason = run_child_as(pw, user_db, fx->state_dir, fx->machine_a);
    expect = g_strdup_printf("belongs to uid 0, this process runs as uid %u", (guint)pw->pw_uid);
    assert_contains(reason, expect);
    g_clear_pointer(&reason, g_free);
    g_clear_pointer(&expect, g_free);

    /* The file handed over to the other account (chown): bound to root. */
    g_assert_cmpint(chown(user_key, pw->pw_uid, pw->pw_gid), ==, 0);
    reason = run_child_as(pw, user_db, user_state, fx->machine_a);
    expect = g_strdup_printf("was made for uid 0 (root), this process runs as uid %u (%s)",
                             (guint)pw->pw_uid, TEST_USER);
    assert_contains(reason, expect);

    fx->store = open_store(fx->db_path);
    fx->keyring = open_keyring(fx->store, fx->state_dir, fx->machine_a, NULL, NULL, 0);
    assert_load(fx->keyring, fx->store, "run_as_account", "a1", "password", "account-secret");
}

/* --- check, rotation, rekey -------------------------------------------------- */

static void
test_check_counts(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonArray) arr = NULL;
    g_autofree char *k2_id = NULL;
    g_autoptr(JsonObject) k1 = NULL;
    g_autoptr(JsonObject) k2 = NULL;

    for (guint i = 0; i < 3; i++) {
        g_autofree char *id = g_strdup_printf("p%u", i);
        store_text(fx, fx->keyring, "guest_os_profile", id, "admin_password", "check-pass");
    }
    dv_keyring_rotate(fx->keyring, &k2_id, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(k2_id, ==, "k2");
    store_text(fx, fx->keyring, "guest_os_profile", "p0", "product_key", "check-pk");
    store_text(fx, fx->keyring, "guest_os_profile", "p1", "product_key", "check-pk");
    /* A forged value under a key id nobody has. */
    dv_db_exec(dv_store_get_db(fx->store),
               "INSERT INTO secrets (id, object_type, object_id, field, key_id, value, updated_at) "
               "VALUES ('x', 'app_setting', 's', 'value', 'k9', 'dv1.k9.AAAA', 0)",
               DV_SQL_NO_ARGS, NULL, &error);
    g_assert_no_error(error);

    fixture_reopen(fx, fx->machine_a);
    k1 = check_entry(fx->keyring, "k1");
    k2 = check_entry(fx->keyring, "k2");
    g_assert_cmpint(json_object_get_int_member(k1, "secrets"), ==, 3);
    g_assert_cmpint(json_object_get_int_member(k2, "secrets"), ==, 2);
    g_assert_true(json_object_get_boolean_member(k1, "open"));
    g_assert_false(json_object_get_boolean_member(k1, "current"));
    g_assert_true(json_object_get_boolean_member(k2, "current"));
    g_assert_cmpstr(json_object_get_string_member(k2, "via"), ==, "host");
    g_assert_cmpstr(json_object_get_string_member(k1, "state"), ==, "active");
    arr = dv_keyring_check(fx->keyring, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(json_array_get_length(arr), ==, 3);
    {
        JsonObject *k9 = json_array_get_object_element(arr, 2);
        g_assert_cmpstr(json_object_get_string_member(k9, "key_id"), ==, "k9");
        g_assert_cmpint(json_object_get_int_member(k9, "secrets"), ==, 1);
        assert_contains(json_object_get_string_member(k9, "reason"), "unknown");
    }
}

static void
test_rotate_rekey_retire(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *old_value = NULL;
    g_autoptr(JsonObject) k1 = NULL;
    guint total = 0;
    guint rounds = 0;
    guint retired = 0;

    for (guint i = 0; i < 50; i++) {
        g_autofree char *id = g_strdup_printf("s%02u", i);
        g_autofree char *text = g_strdup_printf("rekey-secret-%02u", i);
        store_text(fx, fx->keyring, "app_setting", id, "value", text);
    }
    old_value = seal_text(fx, "app_setting", "old", "value", "backup-value");
    /* Nothing to retire yet, and never the current key. */
    dv_keyring_retire_unused(fx->keyring, &retired, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(retired, ==, 0);

    dv_keyring_rotate(fx->keyring, NULL, &error);
    g_assert_no_error(error);
    for (;;) {
        guint done = 0, remaining = 0, skipped = 0;
        dv_keyring_rekey_batch(fx->keyring, 7, &done, &remaining, &skipped, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(done, <=, 7);
        g_assert_cmpuint(skipped, ==, 0);
        total += done;
        rounds++;
        g_assert_cmpuint(remaining, ==, 50 - total);
        if (remaining == 0)
            break;
        g_assert_cmpuint(rounds, <, 20);
    }
    g_assert_cmpuint(total, ==, 50);
    g_assert_cmpuint(rounds, ==, 8);
    g_assert_cmpint(count_rows(fx->store, "SELECT COUNT(*) FROM secrets WHERE key_id = 'k2'"), ==,
                    50);
    for (guint i = 0; i < 50; i++) {
        g_autofree char *id = g_strdup_printf("s%02u", i);
        g_autofree char *text = g_strdup_printf("rekey-secret-%02u", i);
        assert_load(fx->keyring, fx->store, "app_setting", id, "value", text);
    }

    dv_keyring_retire_unused(fx->keyring, &retired, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(retired, ==, 1);
    k1 = check_entry(fx->keyring, "k1");
    g_assert_cmpstr(json_object_get_string_member(k1, "state"), ==, "retired");
    g_assert_cmpint(count_rows(fx->store, "SELECT COUNT(*) FROM key_versions "
                                          "WHERE id = 'k1' AND retired_at IS NOT NULL"),
                    ==, 1);
    /* A value from an old backup still opens, also after a restart. */
    fixture_reopen(fx, fx->machine_a);
    {
        g_autoptr(DvSecret) plain = dv_keyring_unseal(fx->keyring, "app_setting", "old", "value",
                                                      old_value, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(dv_secret_get_string(plain), ==, "backup-value");
    }
    {
        g_autofree char *current = dv_keyring_dup_current_key_id(fx->keyring);
        g_assert_cmpstr(current, ==, "k2");
    }
}

static void
test_rekey_skips_unreadable(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSqlRows) rows = NULL;
    g_autofree char *tampered = NULL;
    g_autofree char *after = NULL;
    guint total = 0;
    guint last_skipped = 0;
    guint retired = 99;

    for (guint i = 0; i < 10; i++) {
        g_autofree char *id = g_strdup_printf("s%02u", i);
        store_text(fx, fx->keyring, "app_setting", id, "value", "skip-test-value");
    }
    rows = dv_db_query(dv_store_get_db(fx->store),
                       "SELECT value FROM secrets WHERE object_id = 's03'", DV_SQL_NO_ARGS, &error);
    g_assert_no_error(error);
    tampered = g_strdup(dv_sql_rows_get_text(rows, 0, 0));
    tampered[strlen(tampered) - 5] = tampered[strlen(tampered) - 5] == 'A' ? 'B' : 'A';
    dv_db_exec(dv_store_get_db(fx->store), "UPDATE secrets SET value = ? WHERE object_id = 's03'",
               DV_SQL_ARGS(DV_SQL_TEXT_P(tampered)), NULL, &error);
    g_assert_no_error(error);

    dv_keyring_rotate(fx->keyring, NULL, &error);
    g_assert_no_error(error);
    for (guint round = 0;; round++) {
        guint done = 0, remaining = 0, skipped = 0;
        dv_keyring_rekey_batch(fx->keyring, 3, &done, &remaining, &skipped, &error);
        g_assert_no_error(error);
        total += done;
        last_skipped = skipped;
        if (remaining == 0)
            break;
        g_assert_cmpuint(round, <, 10);
    }
    g_assert_cmpuint(total, ==, 9);
    g_assert_cmpuint(last_skipped, ==, 1);
    g_clear_pointer(&rows, dv_sql_rows_free);
    rows = dv_db_query(dv_store_get_db(fx->store),
                       "SELECT value, key_id FROM secrets WHERE object_id = 's03'", DV_SQL_NO_ARGS,
                       &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_sql_rows_get_text(rows, 0, 0), ==, tampered);
    g_assert_cmpstr(dv_sql_rows_get_text(rows, 0, 1), ==, "k1");
    /* k1 still holds it: not retired. */
    dv_keyring_retire_unused(fx->keyring, &retired, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(retired, ==, 0);
    {
        g_autoptr(DvSecret) none = dv_keyring_load_secret(fx->keyring, fx->store, "app_setting",
                                                          "s03", "value", &error);
        g_assert_null(none);
        g_assert_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE);
        assert_contains(error->message, "authentication failed");
    }
}

static void
test_initialize_refuses(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = host_key_path(fx->state_dir);
    g_autofree char *aside = g_strconcat(path, ".away", NULL);

    /* Running it again on a healthy installation does nothing. */
    dv_keyring_initialize(fx->keyring, &error);
    g_assert_no_error(error);
    g_assert_cmpint(count_rows(fx->store, "SELECT COUNT(*) FROM key_versions"), ==, 1);

    g_assert_cmpint(g_rename(path, aside), ==, 0);
    fixture_reopen(fx, fx->machine_a);
    g_assert_false(dv_keyring_initialize(fx->keyring, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE);
    assert_contains(error->message, "strand");
    assert_contains(error->message, "does not exist");
    g_assert_cmpint(count_rows(fx->store, "SELECT COUNT(*) FROM key_versions"), ==, 1);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
}

/* --- extra protectors ----------------------------------------------------------- */

typedef struct {
    DvKeyProtector parent;
    GHashTable *keys;   /* key id -> DvSecret* */
    char *current;
    gboolean fail_wrap;
    gboolean wrong_key;
} FakeProtector;

static gboolean
fake_wrap(DvKeyProtector *self, const char *key_id, const DvSecret *key, GError **error)
{
    FakeProtector *f = (FakeProtector *)self;

    if (f->fail_wrap) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "fake directory is down");
        return FALSE;
    }
    g_hash_table_replace(f->keys, g_strdup(key_id),
                         dv_secret_new_from_data(dv_secret_get_data(key), dv_secret_get_len(key)));
    return TRUE;
}

static DvSecret *
fake_unwrap(DvKeyProtector *self, const char *key_id, GError **error)
{
    FakeProtector *f = (FakeProtector *)self;
    DvSecret *key = g_hash_table_lookup(f->keys, key_id);

    if (f->wrong_key)
        return dv_secret_new_random(DV_KEYS_DATA_KEY_LEN);
    if (key == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "fake directory has no entry for %s",
                    key_id);
        return NULL;
    }
    return dv_secret_new_from_data(dv_secret_get_data(key), dv_secret_get_len(key));
}

static gboolean
fake_set_current(DvKeyProtector *self, const char *key_id, GError **error)
{
    FakeProtector *f = (FakeProtector *)self;
    g_free(f->current);
    f->current = g_strdup(key_id);
    return TRUE;
}

static void
fake_free(DvKeyProtector *self)
{
    FakeProtector *f = (FakeProtector *)self;
    g_hash_table_unref(f->keys);
    g_free(f->current);
    g_free(f);
}

static FakeProtector *
fake_new(void)
{
    FakeProtector *f = g_new0(FakeProtector, 1);
    f->parent.kind = "directory";
    f->parent.wrap = fake_wrap;
    f->parent.unwrap = fake_unwrap;
    f->parent.set_current = fake_set_current;
    f->parent.free = fake_free;
    f->keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                    (GDestroyNotify)dv_secret_free);
    return f;
}

static void
test_extra_protector(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    FakeProtector *fake = fake_new();
    DvKeyProtector *prots[] = { &fake->parent };
    g_autoptr(JsonObject) config = json_object_new();
    g_autofree char *path = host_key_path(fx->state_dir);
    g_autofree char *aside = g_strconcat(path, ".away", NULL);
    g_autoptr(JsonObject) k1 = NULL;
    g_autoptr(JsonObject) k2 = NULL;

    store_text(fx, fx->keyring, "run_as_account", "a1", "password", "directory-secret");
    json_object_set_string_member(config, "uri", "ldaps://ldap.example.test");
    dv_keyring_add_protector(fx->keyring, &fake->parent, config, &error);
    g_assert_no_error(error);
    g_assert_true(g_hash_table_contains(fake->keys, "k1"));
    g_assert_cmpstr(fake->current, ==, "k1");

    /* Rotation wraps with it and moves its current pointer. */
    dv_keyring_rotate(fx->keyring, NULL, &error);
    g_assert_no_error(error);
    g_assert_true(g_hash_table_contains(fake->keys, "k2"));
    g_assert_cmpstr(fake->current, ==, "k2");

    /* Another machine without the host file opens through it. */
    g_assert_cmpint(g_rename(path, aside), ==, 0);
    g_clear_pointer(&fx->keyring, dv_keyring_free);
    fx->keyring = open_keyring(fx->store, fx->state_dir, fx->machine_b, NULL, prots, 1);
    k1 = check_entry(fx->keyring, "k1");
    g_assert_true(json_object_get_boolean_member(k1, "open"));
    g_assert_cmpstr(json_object_get_string_member(k1, "via"), ==, "directory");
    assert_load(fx->keyring, fx->store, "run_as_account", "a1", "password", "directory-secret");

    /* A protector that returns another installation's key is caught. */
    fake->wrong_key = TRUE;
    fixture_reopen(fx, fx->machine_b);
    g_clear_pointer(&fx->keyring, dv_keyring_free);
    fx->keyring = open_keyring(fx->store, fx->state_dir, fx->machine_b, NULL, prots, 1);
    k2 = check_entry(fx->keyring, "k2");
    g_assert_false(json_object_get_boolean_member(k2, "open"));
    assert_contains(json_object_get_string_member(k2, "reason"), "does not open the canary");
    {
        /* A key problem the administrator sees in the log. */
        g_autoptr(GHashTable) line = dv_test_log_capture_find("DvKeys", G_LOG_LEVEL_MESSAGE,
                                                              "does not open the canary of k2", 0);
        g_assert_nonnull(line);
        assert_contains(g_hash_table_lookup(line, "MESSAGE"),
                        "key problem: the directory protector returned a key");
    }
    fake->wrong_key = FALSE;

    /* Without it, no new key is made that it would not hold. */
    g_assert_cmpint(g_rename(aside, path), ==, 0);
    fixture_reopen(fx, fx->machine_a);
    g_assert_false(dv_keyring_rotate(fx->keyring, NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED);
    assert_contains(error->message, "directory protector is configured");
    g_clear_error(&error);

    /* A protector that is down fails the rotation and leaves k2 current. */
    fake->fail_wrap = TRUE;
    g_clear_pointer(&fx->keyring, dv_keyring_free);
    fx->keyring = open_keyring(fx->store, fx->state_dir, fx->machine_a, NULL, prots, 1);
    g_assert_false(dv_keyring_rotate(fx->keyring, NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
    assert_contains(error->message, "fake directory is down");
    g_clear_error(&error);
    {
        g_autofree char *current = dv_keyring_dup_current_key_id(fx->keyring);
        g_assert_cmpstr(current, ==, "k2");
    }
    g_assert_cmpint(count_rows(fx->store, "SELECT COUNT(*) FROM key_versions"), ==, 2);
    store_text(fx, fx->keyring, "run_as_account", "a2", "password", "still-works");

    g_clear_pointer(&fx->keyring, dv_keyring_free);
    dv_key_protector_free(&fake->parent);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    dv_test_log_capture_start();

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("/drover/keys/seal/round-trip", test_round_trip);
    ADD("/drover/keys/seal/aad-binding", test_aad_binding);
    ADD("/drover/keys/seal/tampered", test_tampered);
    ADD("/drover/keys/seal/truncated", test_truncated);
    ADD("/drover/keys/seal/unknown-version", test_unknown_version);
    ADD("/drover/keys/seal/unknown-key", test_unknown_key);
    ADD("/drover/keys/seal/size-limits", test_size_limits);
    ADD("/drover/keys/seal/binary", test_binary);
    ADD("/drover/keys/seal/describe", test_describe);
    ADD("/drover/keys/secrets/helpers", test_store_helpers);
    ADD("/drover/keys/host/loose-mode", test_host_file_mode);
    ADD("/drover/keys/host/other-owner", test_host_file_owner);
    ADD("/drover/keys/host/another-machine-then-recovery", test_another_machine);
    ADD("/drover/keys/host/another-account", test_another_account);
    ADD("/drover/keys/recovery/no-overwrite", test_recovery_no_overwrite);
    ADD("/drover/keys/check/counts", test_check_counts);
    ADD("/drover/keys/rotate/rekey-retire", test_rotate_rekey_retire);
    ADD("/drover/keys/rotate/rekey-skips-unreadable", test_rekey_skips_unreadable);
    ADD("/drover/keys/initialize/refuses-when-unreadable", test_initialize_refuses);
    ADD("/drover/keys/protector/extra", test_extra_protector);
#undef ADD
    return g_test_run();
}
