/* System tier of identity disks: upload an identity image into a pool of
 * the real local libvirtd (qemu:///system), check the file the daemon
 * wrote, download it back.  libvirt's test driver implements neither
 * upload nor download.  Start the daemon with scripts/ensure-libvirtd.
 *
 * Everything is named dvtest-<pid>-<hash>-... and removed by the parent
 * process after each test, also when the test failed half-way.  A daemon
 * that cannot be reached fails the test under CI=true or
 * DV_REQUIRE_SERVICES=1 and skips it (with the reason) elsewhere. */
#define G_LOG_DOMAIN "DvIdentitySystemTest"

#include "dv-identity.h"
#include "dv-test-system.h"
#include "dv-test-util.h"
#include "dv-virt-private.h"

#include "dv-json.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYSTEM_URI "qemu:///system"

static DvVirt *the_virt;

typedef struct {
    DvVirtHost *host;
    char *prefix;
    char *tmpdir;
    char *pool;
} Fixture;

static void
fixture_setup(Fixture *fx)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *pool_xml = NULL;
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStoragePool) pool = NULL;

    fx->host = dv_virt_host_get(the_virt, "local", SYSTEM_URI);
    fx->prefix = dv_test_system_prefix_new("dvtest", getppid());
    fx->tmpdir = dv_test_system_dir_new(fx->prefix);
    fx->pool = g_strdup_printf("%spool", fx->prefix);

    /* A transient dir pool: gone from libvirt when destroyed. */
    pool_xml = g_markup_printf_escaped("<pool type='dir'><name>%s</name>"
                                       "<target><path>%s</path></target></pool>",
                                       fx->pool, fx->tmpdir);
    g_assert_true(dv_virt_op_begin(&op, fx->host, NULL, &error));
    g_assert_no_error(error);
    pool = virStoragePoolCreateXML(op.conn, pool_xml, 0);
    if (pool == NULL) {
        dv_virt_op_fail(&op, &error, "cannot create test pool");
        g_assert_no_error(error);
    }
}

static void
fixture_teardown(Fixture *fx)
{
    g_clear_pointer(&fx->host, dv_virt_host_unref);
    g_free(fx->prefix);
    g_free(fx->pool);
    g_free(fx->tmpdir);
}

typedef void (*SystemTestFunc)(Fixture *fx);

static void
run_isolated(gconstpointer data)
{
    SystemTestFunc fn = (SystemTestFunc)data;
    g_autofree char *prefix = NULL;
    g_autofree char *tmpdir = NULL;

    if (g_test_subprocess()) {
        Fixture fx = { 0 };

        fixture_setup(&fx);
        fn(&fx);
        fixture_teardown(&fx);
        return;
    }
    if (!dv_test_system_check_daemon(the_virt))
        return;
    prefix = dv_test_system_prefix_new("dvtest", getpid());
    tmpdir = dv_test_system_dir_new(prefix);
    g_assert_cmpint(g_mkdir(tmpdir, 0755), ==, 0);
    g_test_trap_subprocess(NULL, 120 * G_USEC_PER_SEC,
                           G_TEST_SUBPROCESS_INHERIT_STDOUT | G_TEST_SUBPROCESS_INHERIT_STDERR);
    dv_test_system_cleanup(the_virt, prefix, tmpdir);
    g_assert_false(g_file_test(tmpdir, G_FILE_TEST_EXISTS));
    g_test_trap_assert_passed();
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

static DvSecret *
build_iso(const char *instance_id, const char *network_config)
{
    g_autoptr(DvSecret) password = dv_secret_new_from_string("PLAINTEXT-identity-2Jk5");
    g_autoptr(GError) error = NULL;
    const char *keys[] = { "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIsystem test@example", NULL };
    DvIdentitySpec spec = {
        .instance_id = instance_id,
        .hostname = "desk-007",
        .admin_password = password,
        .ssh_authorized_keys = keys,
        .network_config = network_config,
    };
    DvSecret *iso = dv_identity_build_iso(&spec, &error);

    g_assert_no_error(error);
    return iso;
}

static void
test_upload_download(Fixture *fx)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSecret) iso = build_iso("iid-system-1", NULL);
    g_autoptr(DvSecret) back = NULL;
    g_autoptr(JsonObject) shown = NULL;
    g_autofree char *name = g_strconcat(fx->prefix, "desk-007-identity.iso", NULL);
    g_autofree char *path = g_build_filename(fx->tmpdir, name, NULL);
    g_autofree char *label = NULL;
    const char *argv[] = { NULL, "-p", "-o", "value", "-s", "LABEL", NULL, NULL };
    GStatBuf st;
    int status = 0;

    g_assert_true(dv_virt_volume_upload(fx->host, fx->pool, name, dv_secret_get_data(iso),
                                        dv_secret_get_len(iso), NULL, &error));
    g_assert_no_error(error);

    /* The daemon wrote the file, 0600, exactly the image's size. */
    g_assert_cmpint(g_stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0600);
    g_assert_cmpuint((gsize)st.st_size, ==, dv_secret_get_len(iso));

    back = dv_virt_volume_download(fx->host, fx->pool, name, DV_IDENTITY_ISO_MAX, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpmem(dv_secret_get_data(back), dv_secret_get_len(back), dv_secret_get_data(iso),
                    dv_secret_get_len(iso));

    argv[0] = find_blkid();
    g_assert_nonnull(argv[0]);
    argv[6] = path;
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &label,
                               NULL, &status, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(g_strstrip(label), ==, "cidata");

    shown = dv_identity_read_iso(dv_secret_get_data(back), dv_secret_get_len(back), &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(json_object_get_object_member(shown, "meta_data"),
                                       "instance-id", NULL), ==, "iid-system-1");

    /* A cap below the volume's size refuses before transferring. */
    g_clear_pointer(&back, dv_secret_free);
    back = dv_virt_volume_download(fx->host, fx->pool, name, 4096, NULL, &error);
    g_assert_null(back);
    g_assert_error(error, DV_ERROR, DV_ERROR_TOO_LARGE);
    g_clear_error(&error);

    /* Missing volume and pool. */
    back = dv_virt_volume_download(fx->host, fx->pool, "dvtest-no-such-volume", 1 << 20, NULL,
                                   &error);
    g_assert_null(back);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_false(dv_virt_volume_upload(fx->host, "dvtest-no-such-pool", name,
                                         dv_secret_get_data(iso), dv_secret_get_len(iso), NULL,
                                         &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
}

/* A retried upload reuses the volume; a new image of another size replaces
 * it; the result is always exactly the last image. */
static void
test_upload_again(Fixture *fx)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSecret) iso1 = build_iso("iid-system-2", NULL);
    g_autofree char *big_net = NULL;
    g_autoptr(DvSecret) iso2 = NULL;
    g_autoptr(DvSecret) back = NULL;
    g_autofree char *name = g_strconcat(fx->prefix, "again.iso", NULL);
    g_autofree char *path = g_build_filename(fx->tmpdir, name, NULL);
    GString *net = g_string_new("version: 2\nethernets:\n");
    GStatBuf st;

    for (guint i = 0; i < 200; i++)
        g_string_append_printf(net, "  eth%u:\n    dhcp4: true\n", i);
    big_net = g_string_free(net, FALSE);
    iso2 = build_iso("iid-system-2b", big_net);
    g_assert_cmpuint(dv_secret_get_len(iso1), !=, dv_secret_get_len(iso2));

    for (guint i = 0; i < 2; i++) {
        g_assert_true(dv_virt_volume_upload(fx->host, fx->pool, name, dv_secret_get_data(iso1),
                                            dv_secret_get_len(iso1), NULL, &error));
        g_assert_no_error(error);
    }
    g_assert_true(dv_virt_volume_upload(fx->host, fx->pool, name, dv_secret_get_data(iso2),
                                        dv_secret_get_len(iso2), NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpint(g_stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0600);
    g_assert_cmpuint((gsize)st.st_size, ==, dv_secret_get_len(iso2));
    back = dv_virt_volume_download(fx->host, fx->pool, name, DV_IDENTITY_ISO_MAX, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpmem(dv_secret_get_data(back), dv_secret_get_len(back), dv_secret_get_data(iso2),
                    dv_secret_get_len(iso2));

    g_assert_true(dv_virt_volume_delete(fx->host, fx->pool, name, NULL, &error));
    g_assert_no_error(error);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
}

/* The test driver has no upload or download: a clear error, no crash. */
static void
test_test_driver_refused(Fixture *fx)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvVirtHost) host = dv_virt_host_get(the_virt, "sim", "test:///default");
    guint8 byte = 0;

    g_assert_false(dv_virt_volume_upload(host, "default-pool", "x.iso", &byte, 1, NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED);
    g_clear_error(&error);
    g_assert_null(dv_virt_volume_download(host, "default-pool", "x.iso", 1024, NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED);
}

int
main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    the_virt = dv_virt_new();
    dv_virt_set_uri_policy(the_virt, TRUE, NULL); /* test:/// hosts */

#define ADD(path, fn) g_test_add_data_func(path, (gconstpointer)fn, run_isolated)
    ADD("/drover/catalog/identity-system/upload-download", test_upload_download);
    ADD("/drover/catalog/identity-system/upload-again", test_upload_again);
    ADD("/drover/catalog/identity-system/test-driver-refused", test_test_driver_refused);
#undef ADD

    rc = g_test_run();
    dv_virt_free(the_virt);
    return rc;
}
