/* Unit tests of src/engine/features/catalogs/dv-identity.c: the NoCloud identity
 * image, checked with libarchive's reader (an independent ISO9660 parser),
 * the raw volume descriptor bytes, and blkid. */
#define _GNU_SOURCE /* memmem */
#define G_LOG_DOMAIN "DvIdentityTest"

#include "dv-identity.h"

#include "dv-error.h"
#include "dv-json.h"

#include <archive.h>
#include <archive_entry.h>
#include <crypt.h>
#include <glib/gstdio.h>
#include <string.h>

#define PASSWORD "PLAINTEXT-identity-2Jk5"
#define JOIN_PASSWORD "JOIN-secret-9Qz1"
#define PRODUCT_KEY "PKEY1-PKEY2-PKEY3-PKEY4"
#define KEY1 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOnetest one@example"
#define KEY2 "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQtwo two@example"
#define NETWORK_CONFIG                                                                  \
    "version: 2\nethernets:\n  eth0:\n    dhcp4: true\nwifis:\n  wlan0:\n    access-points:\n" \
    "      corp:\n        password: \"WIFI-secret-77\"\n"

typedef struct {
    DvSecret *admin_password;
    DvSecret *join_password;
    DvSecret *product_key;
    const char *keys[3];
    DvIdentitySpec spec;
} Fixture;

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
    fx->admin_password = dv_secret_new_from_string(PASSWORD);
    fx->join_password = dv_secret_new_from_string(JOIN_PASSWORD);
    fx->product_key = dv_secret_new_from_string(PRODUCT_KEY);
    fx->keys[0] = KEY1;
    fx->keys[1] = KEY2;
    fx->keys[2] = NULL;
    fx->spec = (DvIdentitySpec){
        .instance_id = "iid-desk-001-3f2a",
        .hostname = "desk-001",
        .time_zone = "Europe/Berlin",
        .admin_username = "localadmin",
        .admin_password = fx->admin_password,
        .ssh_authorized_keys = fx->keys,
        .domain = "corp.example.com",
        .domain_join_user = "CORP\\joiner",
        .domain_join_password = fx->join_password,
        .product_key = fx->product_key,
        .extra_user_data = "#cloud-config\npackages:\n  - htop\nruncmd:\n  - [touch, /tmp/x]\n",
        .network_config = NETWORK_CONFIG,
    };
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
    dv_secret_free(fx->admin_password);
    dv_secret_free(fx->join_password);
    dv_secret_free(fx->product_key);
}

static gboolean
bytes_contain(const guint8 *data, gsize len, const char *needle)
{
    return memmem(data, len, needle, strlen(needle)) != NULL;
}

/* Every regular file of the image, read with libarchive. */
static GHashTable *
read_files(const guint8 *data, gsize len, gboolean joliet_only)
{
    GHashTable *files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    struct archive *a = archive_read_new();
    struct archive_entry *entry;

    archive_read_support_format_iso9660(a);
    if (joliet_only)
        g_assert_cmpint(archive_read_set_option(a, "iso9660", "rockridge", NULL), ==, ARCHIVE_OK);
    g_assert_cmpint(archive_read_open_memory(a, data, len), ==, ARCHIVE_OK);
    while (archive_read_next_header(a, &entry) == ARCHIVE_OK) {
        gint64 size = archive_entry_size(entry);
        char *content;

        g_test_message("entry %s type %o size %" G_GINT64_FORMAT, archive_entry_pathname(entry),
                       archive_entry_filetype(entry), size);
        if (archive_entry_filetype(entry) != AE_IFREG)
            continue;
        /* Rock Ridge modes: user-data is for root only inside the guest. */
        if (!joliet_only)
            g_assert_cmpint(archive_entry_perm(entry), ==,
                            g_str_equal(archive_entry_pathname(entry), "user-data") ? 0400 : 0444);
        content = g_malloc0(size + 1);

        g_assert_cmpint(archive_read_data(a, content, size), ==, size);
        g_hash_table_insert(files, g_strdup(archive_entry_pathname(entry)), content);
    }
    archive_read_free(a);
    return files;
}

static void
assert_field_error(GError *error, const char *field)
{
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(dv_error_get_field(error), ==, field);
    g_assert_null(strstr(error->message, PASSWORD));
    g_assert_null(strstr(error->message, JOIN_PASSWORD));
    g_assert_null(strstr(error->message, PRODUCT_KEY));
}

static void
test_build_full(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSecret) iso = dv_identity_build_iso(&fx->spec, &error);
    g_autoptr(GHashTable) files = NULL;
    g_autoptr(GHashTable) jfiles = NULL;
    const guint8 *d;
    gsize len;
    const char *user_data;
    const char *pvd_label;
    g_auto(GStrv) lines = NULL;
    const char *hash = NULL;
    struct crypt_data cd = { 0 };

    g_assert_no_error(error);
    d = dv_secret_get_data(iso);
    len = dv_secret_get_len(iso);
    g_assert_cmpuint(len % 2048, ==, 0);
    g_assert_cmpuint(len, <=, DV_IDENTITY_ISO_MAX);

    /* Primary volume descriptor at sector 16: volume identifier at byte 40,
     * written as "cidata" padded with spaces, the way genisoimage -V cidata
     * does; blkid reports it as LABEL=cidata, which NoCloud looks for. */
    g_assert_cmpint(d[32768], ==, 1);
    g_assert_cmpmem(d + 32769, 5, "CD001", 5);
    pvd_label = "cidata                          ";
    g_assert_cmpmem(d + 32768 + 40, 32, pvd_label, 32);
    /* Joliet supplementary descriptor and terminator. */
    g_assert_cmpint(d[34816], ==, 2);
    g_assert_cmpmem(d + 34816 + 88, 3, "%/E", 3);
    g_assert_cmpint(d[36864], ==, 255);

    /* No plaintext secret anywhere in the image except those the guest
     * needs as such (domain join password and product key, in user-data). */
    g_assert_false(bytes_contain(d, len, PASSWORD));
    g_assert_true(bytes_contain(d, len, "$6$"));

    files = read_files(d, len, FALSE);
    g_assert_cmpuint(g_hash_table_size(files), ==, 3);
    g_assert_cmpstr(g_hash_table_lookup(files, "meta-data"), ==,
                    "instance-id: \"iid-desk-001-3f2a\"\nlocal-hostname: \"desk-001\"\n");
    g_assert_cmpstr(g_hash_table_lookup(files, "network-config"), ==, NETWORK_CONFIG);
    user_data = g_hash_table_lookup(files, "user-data");
    g_assert_nonnull(user_data);
    g_assert_true(g_str_has_prefix(user_data, "#cloud-config\n"));
    g_assert_nonnull(strstr(user_data, "\nhostname: \"desk-001\"\n"));
    g_assert_nonnull(strstr(user_data, "\ntimezone: \"Europe/Berlin\"\n"));
    g_assert_nonnull(strstr(user_data, "users:\n  - name: \"localadmin\"\n"));
    g_assert_nonnull(strstr(user_data, "      - \"" KEY1 "\"\n"));
    g_assert_nonnull(strstr(user_data, "    permissions: \"0600\"\n"));
    g_assert_nonnull(strstr(user_data, "\"domain_join_user\":\"CORP\\\\joiner\""));
    g_assert_nonnull(strstr(user_data, "\"domain_join_password\":\"" JOIN_PASSWORD "\""));
    g_assert_nonnull(strstr(user_data, "\"product_key\":\"" PRODUCT_KEY "\""));
    g_assert_nonnull(strstr(user_data, "\npackages:\n  - htop\nruncmd:\n"));
    g_assert_null(strstr(user_data, "\n#cloud-config")); /* the profile's header is dropped */

    /* The hash is SHA-512 crypt of the password. */
    lines = g_strsplit(user_data, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
        if (g_str_has_prefix(lines[i], "    passwd: \"")) {
            hash = lines[i] + strlen("    passwd: \"");
            lines[i][strlen(lines[i]) - 1] = '\0';
        }
    }
    g_assert_nonnull(hash);
    g_assert_true(g_str_has_prefix(hash, "$6$"));
    g_assert_cmpstr(crypt_rn(PASSWORD, hash, &cd, (int)sizeof cd), ==, hash);

    /* The Joliet tree holds the same names for readers without Rock Ridge
     * (Windows). */
    jfiles = read_files(d, len, TRUE);
    g_assert_true(g_hash_table_contains(jfiles, "meta-data"));
    g_assert_true(g_hash_table_contains(jfiles, "user-data"));
    g_assert_true(g_hash_table_contains(jfiles, "network-config"));
}

static void
test_read_summary(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSecret) iso = dv_identity_build_iso(&fx->spec, &error);
    g_autoptr(JsonObject) o = NULL;
    g_autoptr(JsonNode) node = NULL;
    g_autofree char *text = NULL;
    JsonObject *meta, *sum;
    JsonArray *users, *extra;

    g_assert_no_error(error);
    o = dv_identity_read_iso(dv_secret_get_data(iso), dv_secret_get_len(iso), &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(o, "volume_id", NULL), ==, "cidata");
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(o, "files")), ==, 3);

    meta = json_object_get_object_member(o, "meta_data");
    g_assert_cmpstr(dv_json_get_string(meta, "instance-id", NULL), ==, "iid-desk-001-3f2a");
    g_assert_cmpstr(dv_json_get_string(meta, "local-hostname", NULL), ==, "desk-001");

    sum = json_object_get_object_member(o, "user_data_summary");
    g_assert_cmpstr(dv_json_get_string(sum, "format", NULL), ==, "cloud-config");
    g_assert_cmpstr(dv_json_get_string(sum, "hostname", NULL), ==, "desk-001");
    g_assert_cmpstr(dv_json_get_string(sum, "timezone", NULL), ==, "Europe/Berlin");
    users = json_object_get_array_member(sum, "users");
    g_assert_cmpuint(json_array_get_length(users), ==, 1);
    g_assert_cmpstr(json_array_get_string_element(users, 0), ==, "localadmin");
    g_assert_true(json_object_get_boolean_member(sum, "has_password"));
    g_assert_cmpint(json_object_get_int_member(sum, "ssh_keys"), ==, 2);
    g_assert_cmpstr(dv_json_get_string(sum, "domain", NULL), ==, "corp.example.com");
    g_assert_cmpstr(dv_json_get_string(sum, "domain_join_user", NULL), ==, "CORP\\joiner");
    g_assert_true(json_object_get_boolean_member(sum, "has_domain_join_password"));
    g_assert_true(json_object_get_boolean_member(sum, "has_product_key"));
    extra = json_object_get_array_member(sum, "extra_keys");
    g_assert_cmpuint(json_array_get_length(extra), ==, 2);
    g_assert_cmpstr(json_array_get_string_element(extra, 0), ==, "packages");
    g_assert_cmpstr(json_array_get_string_element(extra, 1), ==, "runcmd");
    g_assert_nonnull(strstr(dv_json_get_string(o, "network_config", NULL),
                            "        password: <redacted>\n"));

    /* user-data as text, every secret value replaced by its size: the
     * SHA-512 crypt hash is 106 bytes ($6$, 16 salt characters, $, 86). */
    {
        const char *ud = dv_json_get_string(o, "user_data", NULL);
        g_assert_nonnull(ud);
        g_test_message("user_data shown:\n%s", ud);
        g_assert_nonnull(strstr(ud, "#cloud-config\n"));
        g_assert_nonnull(strstr(ud, "hostname: \"desk-001\""));
        g_assert_nonnull(strstr(ud, "passwd: \"(secret, 106 bytes)\""));
        g_assert_nonnull(strstr(ud, "\"domain_join_password\":\"(secret, 16 bytes)\""));
        g_assert_nonnull(strstr(ud, "\"product_key\":\"(secret, 23 bytes)\""));
        g_assert_nonnull(strstr(ud, "\"domain\":\"corp.example.com\""));
        g_assert_nonnull(strstr(ud, KEY1));
        g_assert_nonnull(strstr(ud, "packages:"));
    }
    /* Secret-looking keys of the profile's own user-data, block values
     * and chpasswd lists too. */
    {
        g_autoptr(DvSecret) iso2 = NULL;
        g_autoptr(JsonObject) o2 = NULL;
        const char *ud;
        fx->spec.extra_user_data = "#cloud-config\nchpasswd:\n  list: |\n    root:ROOT-pw-55\n"
                                   "  expire: false\napi_token: TOKEN-abc-99\nprivate_key: |\n"
                                   "  -----BEGIN KEY-----\n  KEYDATA-xyz\n  -----END KEY-----\nbootcmd: [x]\n"
                                   "users2: [{name: bob, passwd: FLOW-pw-3}]\n";
        iso2 = dv_identity_build_iso(&fx->spec, &error);
        g_assert_no_error(error);
        o2 = dv_identity_read_iso(dv_secret_get_data(iso2), dv_secret_get_len(iso2), &error);
        g_assert_no_error(error);
        ud = dv_json_get_string(o2, "user_data", "");
        g_test_message("with a profile's secrets:\n%s", ud);
        g_assert_null(strstr(ud, "TOKEN-abc-99"));
        g_assert_null(strstr(ud, "KEYDATA-xyz"));
        g_assert_nonnull(strstr(ud, "api_token: \"(secret, 12 bytes)\""));
        g_assert_nonnull(strstr(ud, "bootcmd: [x]"));
        g_assert_null(strstr(ud, "ROOT-pw-55"));
        g_assert_null(strstr(ud, "FLOW-pw-3"));
        g_assert_nonnull(strstr(ud, "lock_passwd: false"));
    }

    /* Nothing secret in what an operator is shown. */
    node = json_node_init_object(json_node_alloc(), o);
    text = json_to_string(node, FALSE);
    g_assert_null(strstr(text, PASSWORD));
    g_assert_null(strstr(text, JOIN_PASSWORD));
    g_assert_null(strstr(text, PRODUCT_KEY));
    g_assert_null(strstr(text, "WIFI-secret-77"));
    g_assert_null(strstr(text, "$6$"));
}

static void
test_minimal(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    DvIdentitySpec spec = { .instance_id = "i-1", .hostname = "vm1" };
    g_autoptr(DvSecret) iso = dv_identity_build_iso(&spec, &error);
    g_autoptr(GHashTable) files = NULL;
    g_autoptr(JsonObject) o = NULL;
    JsonObject *sum;

    g_assert_no_error(error);
    files = read_files(dv_secret_get_data(iso), dv_secret_get_len(iso), FALSE);
    g_assert_cmpuint(g_hash_table_size(files), ==, 2);
    g_assert_false(g_hash_table_contains(files, "network-config"));
    g_assert_null(strstr(g_hash_table_lookup(files, "user-data"), "users:"));
    g_assert_null(strstr(g_hash_table_lookup(files, "user-data"), "write_files:"));

    o = dv_identity_read_iso(dv_secret_get_data(iso), dv_secret_get_len(iso), &error);
    g_assert_no_error(error);
    sum = json_object_get_object_member(o, "user_data_summary");
    g_assert_false(json_object_get_boolean_member(sum, "has_password"));
    g_assert_cmpint(json_object_get_int_member(sum, "ssh_keys"), ==, 0);
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(sum, "users")), ==, 0);
    g_assert_true(json_object_get_null_member(o, "network_config") ||
                  JSON_NODE_HOLDS_NULL(json_object_get_member(o, "network_config")));

    /* Keys alone make the default admin account, without sudo password. */
    {
        const char *keys[] = { KEY1, NULL };
        DvIdentitySpec k = { .instance_id = "i-2", .hostname = "vm2", .ssh_authorized_keys = keys };
        g_autoptr(DvSecret) iso2 = dv_identity_build_iso(&k, &error);
        g_autoptr(GHashTable) f2 = NULL;
        g_assert_no_error(error);
        f2 = read_files(dv_secret_get_data(iso2), dv_secret_get_len(iso2), FALSE);
        g_assert_nonnull(strstr(g_hash_table_lookup(f2, "user-data"),
                                "  - name: \"admin\"\n    shell: /bin/bash\n"
                                "    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n    lock_passwd: true\n"));
    }
}

/* The build needs no temporary directory at all (libarchive's ISO writer
 * would stage the files in $TMPDIR). */
static void
test_no_temp_dir(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *old = g_strdup(g_getenv("TMPDIR"));
    g_autoptr(DvSecret) iso = NULL;

    g_setenv("TMPDIR", "/nonexistent/drover-no-tmp", TRUE);
    iso = dv_identity_build_iso(&fx->spec, &error);
    if (old != NULL)
        g_setenv("TMPDIR", old, TRUE);
    else
        g_unsetenv("TMPDIR");
    g_assert_no_error(error);
    g_assert_nonnull(iso);
}

#define BAD(field, ...)                                                        \
    do {                                                                       \
        DvIdentitySpec s = fx->spec;                                           \
        g_autoptr(GError) e = NULL;                                            \
        g_autoptr(DvSecret) r = NULL;                                          \
        __VA_ARGS__;                                                           \
        r = dv_identity_build_iso(&s, &e);                                     \
        g_assert_null(r);                                                      \
        assert_field_error(e, field);                                          \
    } while (0)

static void
test_bad_input(Fixture *fx, gconstpointer data)
{
    g_autoptr(DvSecret) nul = dv_secret_new_from_data("ab\0cd", 5);
    const char *bad_keys[] = { "ssh-ed25519 AAAA\nevil: 1", NULL };

    BAD("hostname", s.hostname = "my host");
    BAD("hostname", s.hostname = NULL);
    BAD("hostname", s.hostname = "-desk");
    BAD("hostname", s.hostname = "desk..corp");
    BAD("instance_id", s.instance_id = "");
    BAD("instance_id", s.instance_id = NULL);
    BAD("instance_id", s.instance_id = "iid\nlocal-hostname: evil");
    BAD("time_zone", s.time_zone = "Europe/Berlin\"");
    BAD("admin_username", s.admin_username = "9admin");
    BAD("admin_username", s.admin_username = "root:x");
    BAD("ssh_authorized_keys[0]", s.ssh_authorized_keys = bad_keys);
    BAD("admin_password", s.admin_password = nul);
    BAD("domain", s.domain = "corp example");
    BAD("domain_join_password", s.domain = NULL; s.domain_join_user = NULL);
    BAD("domain_join_user", s.domain_join_user = "CORP\\a b");
    BAD("user_data", s.extra_user_data = "#!/bin/sh\necho hi\n");
    BAD("user_data", s.extra_user_data = "#cloud-config\nusers:\n  - name: x\n");
    BAD("user_data", s.extra_user_data = "#cloud-config\nhostname: other\n");
    BAD("network_config", s.network_config = "");
}

static void
test_caps(Fixture *fx, gconstpointer data)
{
    g_autofree char *big_extra = NULL;
    g_autofree char *near_extra = NULL;
    g_autofree char *big_net = g_strnfill(DV_IDENTITY_NETWORK_CONFIG_MAX + 1, 'x');
    g_autofree char *big_secret = g_strnfill(DV_IDENTITY_SECRET_MAX + 1, 's');
    g_autoptr(DvSecret) huge = dv_secret_new_from_string(big_secret);
    g_autofree char *long_host = g_strnfill(64, 'a');
    const char **many_keys = g_new0(const char *, DV_IDENTITY_SSH_KEYS_MAX + 2);
    GString *s1 = g_string_new("#cloud-config\n");
    GString *s2 = g_string_new("#cloud-config\n");

    while (s1->len <= DV_IDENTITY_USER_DATA_MAX)
        g_string_append(s1, "# padding padding padding padding padding padding padding\n");
    big_extra = g_string_free(s1, FALSE);
    /* Under the cap on its own, over it with Drover's part added. */
    while (s2->len < DV_IDENTITY_USER_DATA_MAX - 100)
        g_string_append(s2, "# padding\n");
    near_extra = g_string_free(s2, FALSE);
    for (guint i = 0; i <= DV_IDENTITY_SSH_KEYS_MAX; i++)
        many_keys[i] = KEY1;

    BAD("user_data", s.extra_user_data = big_extra);
    BAD("user_data", s.extra_user_data = near_extra);
    BAD("network_config", s.network_config = big_net);
    BAD("admin_password", s.admin_password = huge);
    BAD("product_key", s.product_key = huge);
    BAD("hostname", s.hostname = long_host);
    BAD("ssh_authorized_keys", s.ssh_authorized_keys = many_keys);
    g_free(many_keys);
}

static void
test_read_bad(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree guint8 *junk = g_malloc0(64 * 1024);
    g_autoptr(JsonObject) o = NULL;

    o = dv_identity_read_iso(junk, 64 * 1024, &error);
    g_assert_null(o);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "iso");
    g_clear_error(&error);

    o = dv_identity_read_iso(junk, 100, &error);
    g_assert_null(o);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);

    /* A descriptor that says CD001 but whose directories are garbage. */
    junk[32768] = 1;
    memcpy(junk + 32769, "CD001", 5);
    o = dv_identity_read_iso(junk, 64 * 1024, &error);
    g_assert_null(o);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
}

static const char *
find_blkid(void)
{
    static const char *const candidates[] = { "/usr/sbin/blkid", "/sbin/blkid", "/usr/bin/blkid" };
    g_autofree char *found = g_find_program_in_path("blkid");

    if (found != NULL)
        return g_intern_string(found);
    for (guint i = 0; i < G_N_ELEMENTS(candidates); i++)
        if (g_file_test(candidates[i], G_FILE_TEST_IS_EXECUTABLE))
            return candidates[i];
    return NULL;
}

/* blkid, which cloud-init uses to find the disk, sees LABEL=cidata. */
static void
test_blkid(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSecret) iso = dv_identity_build_iso(&fx->spec, &error);
    g_autofree char *dir = g_dir_make_tmp("dv-identity-XXXXXX", &error);
    g_autofree char *path = NULL;
    g_autofree char *out = NULL;
    int status = 0;
    const char *argv[] = { "blkid", "-p", "-o", "export", NULL, NULL };

    g_assert_no_error(error);
    argv[0] = find_blkid();
    if (argv[0] == NULL) {
        g_test_fail_printf("blkid (util-linux) is not installed");
        return;
    }
    path = g_build_filename(dir, "identity.iso", NULL);
    g_assert_true(g_file_set_contents_full(path, (const char *)dv_secret_get_data(iso),
                                           dv_secret_get_len(iso), G_FILE_SET_CONTENTS_NONE,
                                           0600, &error));
    argv[4] = path;
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                               NULL, &status, &error));
    g_unlink(path);
    g_rmdir(dir);
    g_assert_no_error(error);
    g_assert_nonnull(strstr(out, "\nLABEL=cidata\n"));
    g_assert_nonnull(strstr(out, "\nTYPE=iso9660\n"));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

#define ADD(path, fn) g_test_add("/drover/catalog/identity/" path, Fixture, NULL, fixture_setup, \
                                 fn, fixture_teardown)
    ADD("build-full", test_build_full);
    ADD("read-summary", test_read_summary);
    ADD("minimal", test_minimal);
    ADD("no-temp-dir", test_no_temp_dir);
    ADD("bad-input", test_bad_input);
    ADD("caps", test_caps);
    ADD("read-bad", test_read_bad);
    ADD("blkid", test_blkid);
#undef ADD
    return g_test_run();
}
