#define G_LOG_DOMAIN "DvFuzzCiphertext"

/* The stored form of a sealed secret ("dv1.<key id>.<base64url>"), which
 * is read back from the database: through the parser alone and through
 * dv_keyring_unseal()/dv_keyring_describe() on a keyring with a real key
 * (SQLite store and host key file in a temp dir).
 *
 * Input: the whole input is the stored value (an embedded NUL ends it).
 * Properties checked: a value the parser accepts is in its one canonical
 * spelling (formatting it again gives the input back) with a valid key id
 * and a blob within bounds; unseal never opens fuzzed input and always
 * fails with DV_ERROR_SECRET_UNREADABLE naming the field; describe agrees
 * and says "readable": false with a reason. */

#include "dv-error.h"
#include "dv-keys-private.h"
#include "dv-store.h"
#include "fuzz.h"

#include <glib/gstdio.h>

static DvStore *dv_fuzz_store;
static DvKeyring *dv_fuzz_keyring;
static char *dv_fuzz_dir;

static void
dv_fuzz_rm_rf(const char *path)
{
    if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
        GDir *dir = g_dir_open(path, 0, NULL);
        const char *name;
        if (dir != NULL) {
            while ((name = g_dir_read_name(dir)) != NULL) {
                g_autofree char *child = g_build_filename(path, name, NULL);
                dv_fuzz_rm_rf(child);
            }
            g_dir_close(dir);
        }
        g_rmdir(path);
    } else {
        g_unlink(path);
    }
}

static void
dv_fuzz_cleanup(void)
{
    g_clear_pointer(&dv_fuzz_keyring, dv_keyring_free);
    g_clear_pointer(&dv_fuzz_store, dv_store_free);
    if (dv_fuzz_dir != NULL)
        dv_fuzz_rm_rf(dv_fuzz_dir);
    g_clear_pointer(&dv_fuzz_dir, g_free);
}

static void
dv_fuzz_setup(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *db = NULL;
    g_autofree char *machine_id = NULL;
    DvKeyringOptions opts = { 0 };

    dv_fuzz_dir = g_dir_make_tmp("dv-fuzz-ciphertext-XXXXXX", &error);
    if (dv_fuzz_dir == NULL)
        g_error("%s", error->message);
    atexit(dv_fuzz_cleanup);
    machine_id = g_build_filename(dv_fuzz_dir, "machine-id", NULL);
    if (!g_file_set_contents(machine_id, "00112233445566778899aabbccddeeff\n", -1, &error))
        g_error("%s", error->message);
    db = g_build_filename(dv_fuzz_dir, "drover.db", NULL);
    dv_fuzz_store = dv_store_open(db, DV_STORE_OPEN_MIGRATE, &error);
    if (dv_fuzz_store == NULL)
        g_error("%s", error->message);
    opts.state_dir = dv_fuzz_dir;
    opts.machine_id_path = machine_id;
    dv_fuzz_keyring = dv_keyring_open(dv_fuzz_store, &opts, &error);
    if (dv_fuzz_keyring == NULL || !dv_keyring_initialize(dv_fuzz_keyring, &error))
        g_error("%s", error->message);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSecret) plain = NULL;
    g_autoptr(JsonObject) desc = NULL;
    g_autofree char *input = NULL;
    DvCiphertext ct = { { 0 } };

    if (size > DV_FUZZ_MAX_INPUT * 2)
        return 0;
    if (dv_fuzz_keyring == NULL)
        dv_fuzz_setup();
    input = dv_fuzz_strndup(data, size);

    if (dv_ciphertext_parse(input, &ct, &error)) {
        g_autofree char *again = dv_ciphertext_to_string(ct.key_id, ct.blob, ct.blob_len);
        DV_FUZZ_CHECK(g_strcmp0(again, input) == 0);
        DV_FUZZ_CHECK(dv_keys_key_id_is_valid(ct.key_id));
        DV_FUZZ_CHECK(ct.blob_len > DV_KEYS_NONCE_LEN + DV_KEYS_TAG_LEN);
        DV_FUZZ_CHECK(ct.blob_len <= DV_KEYS_BLOB_MAX);
        dv_ciphertext_clear(&ct);
    } else {
        DV_FUZZ_CHECK(g_error_matches(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE));
        DV_FUZZ_CHECK(ct.blob == NULL);
    }
    g_clear_error(&error);

    plain = dv_keyring_unseal(dv_fuzz_keyring, "run_as_account", "fuzz", "password", input, &error);
    DV_FUZZ_CHECK(plain == NULL);
    DV_FUZZ_CHECK(g_error_matches(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE));
    DV_FUZZ_CHECK(g_strcmp0(dv_error_get_field(error), "password") == 0);
    DV_FUZZ_CHECK(strlen(error->message) < 1024);

    desc = dv_keyring_describe(dv_fuzz_keyring, "run_as_account", "fuzz", "password", input);
    DV_FUZZ_CHECK(json_object_get_boolean_member(desc, "set"));
    DV_FUZZ_CHECK(!json_object_get_boolean_member(desc, "readable"));
    DV_FUZZ_CHECK(json_object_has_member(desc, "reason"));
    return 0;
}
