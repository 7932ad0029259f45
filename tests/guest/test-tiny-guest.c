/* System tier: the tiny Linux guest (scripts/build-tiny-guest,
 * docs/TINY-GUEST.md) booted by the real local libvirtd (qemu:///system).
 *
 * The guest is built once into a cache dir (DV_TINY_GUEST_DIR, default
 * <builddir>/tests/guest/cache) by the script, which reuses what is there.
 * Each case runs in a child process; everything it makes is named
 * dvguest-<pid>-<hash>-... and the parent removes it afterwards (domains,
 * the transient pool with its volumes, the temp dir), pass or fail. */
#define G_LOG_DOMAIN "DvTinyGuestTest"

#include "dv-virt-private.h"
#include "dv-test-system.h"
#include "dv-test-util.h"

#include "dv-json.h"

#include <archive.h>
#include <archive_entry.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define SYSTEM_URI "qemu:///system"
#define TCG_TIMEOUT_S 60
#define KVM_TIMEOUT_S 20
#define GUEST_CMDLINE "console=ttyS0 quiet"

static DvVirt *the_virt;
static gboolean guest_built;

typedef struct {
    DvVirtHost *host;
    char *prefix;
    char *tmpdir;
    char *pool;
    char *kernel; /* copies in tmpdir, readable by QEMU */
    char *initrd;
    char *master; /* raw ext4, /image-version = v1, a volume of the pool */
} Fixture;

static char *report_path; /* in the child: where report() writes */

/* Findings of a case (boot times, the KVM verdict).  The case runs in a
 * quiet child process whose g_test_message()s are lost, so it appends
 * them to a file the parent prints before cleaning up. */
static void G_GNUC_PRINTF(1, 2) report(const char *format, ...)
{
    g_autofree char *line = NULL;
    va_list args;
    FILE *f;

    va_start(args, format);
    line = g_strdup_vprintf(format, args);
    va_end(args);
    g_test_message("%s", line);
    if (report_path != NULL && (f = fopen(report_path, "a")) != NULL) {
        fprintf(f, "%s\n", line);
        fclose(f);
    }
}

static const char *
guest_dir(void)
{
    return dv_test_tiny_guest_dir(DV_TINY_GUEST_CACHE_DIR);
}

/* Runs scripts/build-tiny-guest (quick when the cache is complete). */
static void
fixture_setup(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *pool_xml = NULL;
    g_autofree char *master_src = NULL;
    g_autofree char *kernel_src = NULL;
    g_autofree char *initrd_src = NULL;
    g_autoptr(JsonObject) vol = NULL;
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStoragePool) pool = NULL;

    if (!dv_test_system_check_daemon(the_virt))
        return;
    fx->host = dv_virt_host_get(the_virt, "local", SYSTEM_URI);
    fx->prefix = dv_test_system_prefix_new("dvguest", getppid());
    fx->tmpdir = dv_test_system_dir_new(fx->prefix);
    fx->pool = g_strdup_printf("%spool", fx->prefix);
    report_path = g_build_filename(fx->tmpdir, "report.txt", NULL);

    /* Everything the domain reads lives in the test's own dir, so that
     * libvirt's relabelling never touches the shared cache. */
    kernel_src = g_build_filename(guest_dir(), "vmlinuz", NULL);
    initrd_src = g_build_filename(guest_dir(), "initrd.img", NULL);
    master_src = g_build_filename(guest_dir(), "master.img", NULL);
    fx->kernel = g_build_filename(fx->tmpdir, "vmlinuz", NULL);
    fx->initrd = g_build_filename(fx->tmpdir, "initrd.img", NULL);
    fx->master = g_strdup_printf("%s/%smaster.img", fx->tmpdir, fx->prefix);
    dv_test_copy_file(kernel_src, fx->kernel);
    dv_test_copy_file(initrd_src, fx->initrd);
    dv_test_copy_file(master_src, fx->master);

    /* A transient dir pool over the temp dir: gone from libvirt when
     * destroyed; the master copy is one of its volumes. */
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
    dv_virt_op_end(&op);
    vol = dv_virt_volume_lookup_by_path(fx->host, fx->master, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(vol, "pool", NULL), ==, fx->pool);
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
    dv_virt_host_unref(fx->host);
    g_free(fx->prefix);
    g_free(fx->pool);
    g_free(fx->tmpdir);
    g_free(fx->kernel);
    g_free(fx->initrd);
    g_free(fx->master);
    g_clear_pointer(&report_path, g_free);
}

typedef void (*GuestTestFunc)(Fixture *fx, gconstpointer data);

/* Each case runs in a child process; the parent owns the names and the
 * temp dir and removes whatever the child left, pass or fail. */
static void
run_isolated(gconstpointer data)
{
    GuestTestFunc fn = (GuestTestFunc)data;
    g_autofree char *prefix = NULL;
    g_autofree char *tmpdir = NULL;
    g_autofree char *report_file = NULL;
    g_autofree char *findings = NULL;

    if (g_test_subprocess()) {
        Fixture fx = { 0 };

        fixture_setup(&fx, NULL);
        if (fx.host != NULL)
            fn(&fx, NULL);
        fixture_teardown(&fx, NULL);
        return;
    }
    if (!dv_test_system_check_daemon(the_virt))
        return;
    /* The parent builds (or checks) the guest once; children reuse it. */
    if (!guest_built) {
        dv_test_tiny_guest_build(DV_BUILD_TINY_GUEST, guest_dir(), NULL);
        guest_built = TRUE;
    }
    prefix = dv_test_system_prefix_new("dvguest", getpid());
    tmpdir = dv_test_system_dir_new(prefix);
    /* QEMU runs as libvirt-qemu and must reach the files. */
    g_assert_cmpint(g_mkdir(tmpdir, 0755), ==, 0);
    g_chmod(tmpdir, 0755);
    g_test_trap_subprocess(NULL, 240 * G_USEC_PER_SEC,
                           G_TEST_SUBPROCESS_INHERIT_STDOUT | G_TEST_SUBPROCESS_INHERIT_STDERR);
    report_file = g_build_filename(tmpdir, "report.txt", NULL);
    if (g_file_get_contents(report_file, &findings, NULL, NULL)) {
        g_auto(GStrv) lines = g_strsplit(findings, "\n", -1);

        for (guint i = 0; lines[i] != NULL; i++)
            if (lines[i][0] != '\0')
                g_test_message("%s", lines[i]);
    }
    dv_test_system_cleanup(the_virt, prefix, tmpdir);
    g_test_trap_assert_passed();
}

/* ---- booting ------------------------------------------------------------ */

static void
spec_add_disk(JsonObject *spec, const char *path, const char *format, gboolean readonly)
{
    JsonArray *disks;
    JsonObject *d = json_object_new();

    if (!json_object_has_member(spec, "disks"))
        json_object_set_array_member(spec, "disks", json_array_new());
    disks = json_object_get_array_member(spec, "disks");
    json_object_set_string_member(d, "path", path);
    json_object_set_string_member(d, "format", format);
    json_object_set_string_member(d, "bus", "virtio");
    json_object_set_boolean_member(d, "readonly", readonly);
    json_array_add_object_element(disks, d);
}

/* A generation-1 domain that boots the tiny guest directly (no firmware
 * boot loader, no disk boot) with its console in a file. */
static JsonObject *
guest_spec_new(Fixture *fx, const char *name, const char *domain_type, const char *extra_cmdline)
{
    JsonObject *spec = json_object_new();
    g_autofree char *full = g_strconcat(fx->prefix, name, NULL);
    g_autofree char *log = g_strdup_printf("%s/%s.log", fx->tmpdir, name);
    g_autofree char *cmdline = g_strjoin(" ", GUEST_CMDLINE, extra_cmdline, NULL);

    json_object_set_string_member(spec, "name", full);
    json_object_set_string_member(spec, "domain_type", domain_type);
    json_object_set_int_member(spec, "memory_mib", 128);
    json_object_set_int_member(spec, "generation", 1);
    json_object_set_string_member(spec, "serial_log", log);
    json_object_set_string_member(spec, "kernel", fx->kernel);
    json_object_set_string_member(spec, "initrd", fx->initrd);
    json_object_set_string_member(spec, "cmdline", cmdline);
    json_object_set_string_member(spec, "description", "drover tiny guest test");
    return spec;
}

typedef struct {
    gboolean done; /* "DROVER-GUEST: done" seen */
    gboolean started;
    double seconds; /* from start to done (or to the timeout) */
    char *log;      /* the serial log as read last */
    char *start_error;
} BootResult;

static void
boot_result_clear(BootResult *r)
{
    g_free(r->log);
    g_free(r->start_error);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(BootResult, boot_result_clear)

/* Defines and starts @spec, polls its serial log until the guest says
 * "done", the domain stops, or @timeout_s passes; then removes the domain
 * (not its volumes).  A start failure is reported in the result, not
 * asserted, so the KVM probe can report it. */
static void
guest_boot(Fixture *fx, JsonObject *spec, guint timeout_s, BootResult *ret)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = dv_virt_domain_xml_new(spec, &error);
    g_autofree char *uuid = NULL;
    const char *log_path = dv_json_get_string(spec, "serial_log", NULL);
    gint64 t0;
    gint64 deadline;

    g_assert_no_error(error);
    uuid = dv_virt_domain_define(fx->host, xml, NULL, &error);
    g_assert_no_error(error);
    t0 = g_get_monotonic_time();
    deadline = t0 + timeout_s * G_USEC_PER_SEC;
    if (!dv_virt_domain_start(fx->host, uuid, NULL, &error)) {
        ret->start_error = g_strdup(error->message);
        g_clear_error(&error);
    } else {
        ret->started = TRUE;
        for (;;) {
            g_autofree char *log = NULL;
            g_autoptr(JsonObject) dom = NULL;

            g_file_get_contents(log_path, &log, NULL, NULL);
            if (log != NULL && strstr(log, "DROVER-GUEST: done") != NULL) {
                ret->done = TRUE;
                break;
            }
            dom = dv_virt_domain_get(fx->host, uuid, NULL, &error);
            g_assert_no_error(error);
            /* Stopped without "done": read the log once more below. */
            if (g_strcmp0(dv_json_get_string(dom, "state", NULL), "shutoff") == 0) {
                g_clear_pointer(&log, g_free);
                g_file_get_contents(log_path, &log, NULL, NULL);
                ret->done = log != NULL && strstr(log, "DROVER-GUEST: done") != NULL;
                break;
            }
            if (g_get_monotonic_time() >= deadline)
                break;
            g_usleep(100 * 1000);
        }
        ret->seconds = (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC;
    }
    g_file_get_contents(log_path, &ret->log, NULL, NULL);
    if (ret->log == NULL)
        ret->log = g_strdup("");
    /* The guest powers off by itself after "done"; give it a moment so
     * the log is complete, then remove the domain either way. */
    if (ret->done && !dv_virt_domain_wait_shutoff(fx->host, uuid, 10000, NULL, &error)) {
        report("guest said done but did not power off within 10 s: %s", error->message);
        g_clear_error(&error);
    }
    g_assert_true(dv_virt_domain_delete(fx->host, uuid, FALSE, NULL, &error));
    g_assert_no_error(error);
}

/* Whether the log holds the protocol line "DROVER-GUEST: @what".  Lines
 * are matched anywhere in a console line (the firmware's escape sequences
 * may precede the first one). */
static gboolean
log_has(const char *log, const char *what)
{
    g_autofree char *want = g_strconcat("DROVER-GUEST: ", what, NULL);
    g_auto(GStrv) lines = g_strsplit(log, "\n", -1);

    for (guint i = 0; lines[i] != NULL; i++) {
        const char *line = lines[i];
        const char *at = strstr(line, "DROVER-GUEST: ");
        gsize len;

        if (at == NULL)
            continue;
        len = strlen(at);
        while (len > 0 && (at[len - 1] == '\r' || at[len - 1] == ' '))
            len--;
        if (len == strlen(want) && strncmp(at, want, len) == 0)
            return TRUE;
    }
    return FALSE;
}

static void
assert_log_has(const BootResult *r, const char *what)
{
    if (!log_has(r->log, what))
        g_error("serial log lacks \"DROVER-GUEST: %s\"; log:\n%s", what, r->log);
}

static void
assert_booted(const BootResult *r, const char *what)
{
    if (r->start_error != NULL)
        g_error("%s: domain did not start: %s", what, r->start_error);
    if (!r->done)
        g_error("%s: no \"DROVER-GUEST: done\" after %.1f s; log:\n%s", what, r->seconds, r->log);
    assert_log_has(r, "boot");
}

/* ---- NoCloud ISO with libarchive ------------------------------------------ */

static la_ssize_t
iso_write_cb(struct archive *a, void *data, const void *buf, size_t len)
{
    g_byte_array_append(data, buf, len);
    return (la_ssize_t)len;
}

static void
iso_add(struct archive *a, const char *name, const char *content)
{
    struct archive_entry *e = archive_entry_new();
    size_t len = strlen(content);

    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)len);
    g_assert_cmpint(archive_write_header(a, e), ==, ARCHIVE_OK);
    g_assert_cmpint(archive_write_data(a, content, len), ==, (la_ssize_t)len);
    archive_entry_free(e);
}

/* A NoCloud seed (volume id "cidata", meta-data and user-data) built in
 * memory; the Rock Ridge names keep "meta-data" readable as such. */
static GBytes *
nocloud_iso_new(const char *instance_id, const char *hostname)
{
    g_autoptr(GByteArray) buf = g_byte_array_new();
    g_autofree char *meta =
        g_strdup_printf("instance-id: %s\nlocal-hostname: %s\n", instance_id, hostname);
    struct archive *a = archive_write_new();

    g_assert_cmpint(archive_write_set_format_iso9660(a), ==, ARCHIVE_OK);
    g_assert_cmpint(archive_write_set_options(a, "volume-id=cidata,rockridge,joliet"), ==,
                    ARCHIVE_OK);
    g_assert_cmpint(archive_write_set_bytes_in_last_block(a, 1), ==, ARCHIVE_OK);
    g_assert_cmpint(archive_write_open(a, buf, NULL, iso_write_cb, NULL), ==, ARCHIVE_OK);
    iso_add(a, "meta-data", meta);
    iso_add(a, "user-data", "#cloud-config\n");
    if (archive_write_close(a) != ARCHIVE_OK)
        g_error("cannot write the ISO: %s", archive_error_string(a));
    archive_write_free(a);
    return g_byte_array_free_to_bytes(g_steal_pointer(&buf));
}

/* ---- cases ---------------------------------------------------------------- */

static void
test_boot_tcg(Fixture *fx, gconstpointer data)
{
    g_autoptr(JsonObject) spec = guest_spec_new(fx, "tcg", "qemu", NULL);
    g_auto(BootResult) r = { 0 };

    spec_add_disk(spec, fx->master, "raw", FALSE);
    guest_boot(fx, spec, TCG_TIMEOUT_S, &r);
    assert_booted(&r, "TCG boot");
    assert_log_has(&r, "disk vda ext4 drover-master");
    assert_log_has(&r, "image-version v1");
    report("TCG: start to \"done\" in %.1f s", r.seconds);
}

static void
test_nocloud_identity(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) spec = guest_spec_new(fx, "nocloud", "qemu", NULL);
    g_autoptr(GBytes) iso = nocloud_iso_new("i-dvtest-0042", "desk-042");
    g_autofree char *iso_path = g_strdup_printf("%s/%sidentity.iso", fx->tmpdir, fx->prefix);
    g_auto(BootResult) r = { 0 };

    g_assert_cmpuint(g_bytes_get_size(iso), >, 32 * 1024);
    g_file_set_contents(iso_path, g_bytes_get_data(iso, NULL), g_bytes_get_size(iso), &error);
    g_assert_no_error(error);
    g_chmod(iso_path, 0644);

    spec_add_disk(spec, fx->master, "raw", FALSE);
    spec_add_disk(spec, iso_path, "raw", TRUE);
    guest_boot(fx, spec, TCG_TIMEOUT_S, &r);
    assert_booted(&r, "NoCloud boot");
    assert_log_has(&r, "image-version v1");
    assert_log_has(&r, "disk vdb iso9660 cidata");
    assert_log_has(&r, "instance-id i-dvtest-0042");
    assert_log_has(&r, "hostname desk-042");
    report("NoCloud: start to \"done\" in %.1f s (ISO %" G_GSIZE_FORMAT " bytes)", r.seconds,
           g_bytes_get_size(iso));
}

/* A blank sparse volume as personal disk: the first boot formats it (ext
 * label "personal") and writes the text, the second boot reads it back. */
static void
test_personal_disk(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *vol_name = g_strconcat(fx->prefix, "personal.qcow2", NULL);
    g_autoptr(JsonObject) vol = NULL;
    g_autoptr(JsonObject) spec1 =
        guest_spec_new(fx, "personal1", "qemu", "drover.write_personal=kept-42");
    g_autoptr(JsonObject) spec2 = guest_spec_new(fx, "personal2", "qemu", NULL);
    g_auto(BootResult) r1 = { 0 };
    g_auto(BootResult) r2 = { 0 };
    const char *path;

    vol = dv_virt_volume_create(fx->host, fx->pool, vol_name, 16 << 20, "qcow2", NULL, &error);
    g_assert_no_error(error);
    path = dv_json_get_string(vol, "path", NULL);

    spec_add_disk(spec1, fx->master, "raw", FALSE);
    spec_add_disk(spec1, path, "qcow2", FALSE);
    guest_boot(fx, spec1, TCG_TIMEOUT_S, &r1);
    assert_booted(&r1, "personal write boot");
    assert_log_has(&r1, "personal-formatted vdb");
    assert_log_has(&r1, "personal-written vdb");
    assert_log_has(&r1, "personal kept-42");

    spec_add_disk(spec2, fx->master, "raw", FALSE);
    spec_add_disk(spec2, path, "qcow2", FALSE);
    guest_boot(fx, spec2, TCG_TIMEOUT_S, &r2);
    assert_booted(&r2, "personal read boot");
    assert_log_has(&r2, "disk vdb ext4 personal");
    assert_log_has(&r2, "personal kept-42");
    g_assert_false(log_has(r2.log, "personal-written vdb"));
    report("personal: format-and-write boot %.1f s, read-back boot %.1f s", r1.seconds, r2.seconds);
}

/* Does the guest boot under KVM here?  Reported, never failed: on these
 * machines /dev/kvm opens but guests hang (docs/TINY-GUEST.md). */
static void
test_kvm_probe(Fixture *fx, gconstpointer data)
{
    g_autoptr(JsonObject) spec = NULL;
    g_auto(BootResult) r = { 0 };

    if (!g_file_test("/dev/kvm", G_FILE_TEST_EXISTS)) {
        report("KVM probe: no /dev/kvm, TCG only");
        return;
    }
    spec = guest_spec_new(fx, "kvm", "kvm", NULL);
    spec_add_disk(spec, fx->master, "raw", FALSE);
    guest_boot(fx, spec, KVM_TIMEOUT_S, &r);
    if (r.start_error != NULL)
        report("KVM probe: domain did not start: %s", r.start_error);
    else if (r.done && log_has(r.log, "image-version v1"))
        report("KVM probe: the guest booted under KVM in %.1f s", r.seconds);
    else
        report("KVM probe: no \"done\" within %u s (%s serial output, %" G_GSIZE_FORMAT
               " bytes): KVM unusable, use TCG",
               KVM_TIMEOUT_S, r.log[0] != '\0' ? "some" : "no", strlen(r.log));
}

int
main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    the_virt = dv_virt_new();
#define ADD(path, fn) g_test_add_data_func(path, (gconstpointer)fn, run_isolated)
    ADD("/drover/guest/boot-tcg", test_boot_tcg);
    ADD("/drover/guest/nocloud-identity", test_nocloud_identity);
    ADD("/drover/guest/personal-disk", test_personal_disk);
    ADD("/drover/guest/kvm-probe", test_kvm_probe);
#undef ADD

    rc = g_test_run();
    dv_virt_free(the_virt);
    return rc;
}
