#define G_LOG_DOMAIN "TestValidate"

#include "dv-error.h"
#include "dv-validate.h"

#include <string.h>

static void
test_names(void)
{
    const char *good[] = { "a", "web-01", "db_2.prod", "A1", NULL };
    const char *bad[] = { "", "-lead", ".hidden", "has space", "slash/y", "quote'", "é", NULL };
    g_autofree char *long_name = g_strnfill(DV_NAME_MAX + 1, 'a');
    g_autofree char *max_name = g_strnfill(DV_NAME_MAX, 'a');
    g_autoptr(GError) error = NULL;

    for (int i = 0; good[i] != NULL; i++) {
        g_assert_true(dv_validate_name("name", good[i], &error));
        g_assert_no_error(error);
    }
    for (int i = 0; bad[i] != NULL; i++) {
        g_assert_false(dv_validate_name("name", bad[i], &error));
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_assert_cmpstr(dv_error_get_field(error), ==, "name");
        g_clear_error(&error);
    }
    g_assert_true(dv_validate_name("name", max_name, NULL));
    g_assert_false(dv_validate_name("name", long_name, &error));
    g_assert_nonnull(g_strstr_len(error->message, -1, "at most 64"));
}

static void
test_ranges_and_uris(void)
{
    g_autoptr(GError) error = NULL;

    g_assert_true(dv_validate_range("vcpus", 1, 1, 8, NULL));
    g_assert_false(dv_validate_range("vcpus", -1, 1, 8, &error));
    g_assert_cmpstr(dv_error_get_field(error), ==, "vcpus");
    g_clear_error(&error);

    g_assert_true(dv_validate_libvirt_uri("uri", "qemu:///system", NULL));
    g_assert_true(dv_validate_libvirt_uri("uri", "qemu+tls://kvm1.example/system", NULL));
    /* Simulated hosts need the policy's switch (test_host_uris). */
    g_assert_false(dv_validate_libvirt_uri("uri", "test:///default", NULL));
    g_assert_false(dv_validate_libvirt_uri("uri", "xen:///system", &error));
    g_assert_cmpstr(dv_error_get_field(error), ==, "uri");
    g_clear_error(&error);
    g_assert_false(dv_validate_libvirt_uri("uri", "not a uri", &error));
    g_clear_error(&error);
    g_assert_false(dv_validate_libvirt_uri("uri", "", &error));
    g_clear_error(&error);

    g_assert_true(dv_validate_text("description", "line\nline", 100, NULL));
    g_assert_false(dv_validate_text("description", "bell\a", 100, &error));
    g_clear_error(&error);
    g_assert_false(dv_validate_text("description", "\xc3\x28", 100, &error));
    g_clear_error(&error);
    g_assert_false(dv_validate_id("id", "nope", &error));
    g_assert_true(dv_validate_id("id", "123e4567-e89b-12d3-a456-426614174000", NULL));
}

/* Every transport and every parameter libvirt's remote driver reads
 * (docs/uri.rst), allowed or refused, without and with the config. */
static void
test_host_uris(void)
{
    static const char *const allow_keyfile[] = { "keyfile", "known_hosts", NULL };
    static const char *const allow_socket[] = { "socket", NULL };
    static const char *const allow_command[] = { "command", NULL };
    const DvUriPolicy none = { FALSE, NULL };
    const DvUriPolicy sim = { TRUE, NULL };
    const DvUriPolicy keys = { FALSE, allow_keyfile };
    const DvUriPolicy sock = { FALSE, allow_socket };
    const DvUriPolicy cmd = { FALSE, allow_command };
    static const struct {
        const char *uri;
        int policy; /* 0 none, 1 simulated, 2 keyfile+known_hosts, 3 socket, 4 command */
        gboolean ok;
        const char *rule; /* part of the refusal */
    } cases[] = {
        /* local */
        { "qemu:///system", 0, TRUE, NULL },
        { "qemu+unix:///system", 0, TRUE, NULL },
        { "qemu:///system?mode=direct", 0, TRUE, NULL },
        { "qemu:///system?mode=evil", 0, FALSE, "may be auto, direct, legacy" },
        { "qemu:///session", 0, FALSE, "droverd's account" },
        { "qemu+unix:///session?socket=/run/u/sock", 0, FALSE, "names a socket" },
        { "qemu+unix:///session?socket=/run/u/sock", 3, TRUE, NULL },
        { "qemu+unix:///system?socket=/tmp/evil", 0, FALSE, "names a socket" },
        { "qemu://", 0, FALSE, "path must be" },
        { "qemu:///other", 0, FALSE, "path must be" },
        { "qemu+unix://h/system", 0, FALSE, "no host" },
        /* remote transports */
        { "qemu+ssh://root@kvm1.example/system", 0, TRUE, NULL },
        { "qemu+ssh://kvm1.example:2222/system", 0, TRUE, NULL },
        { "qemu+ssh://kvm1.example/session", 0, TRUE, NULL },
        { "qemu+libssh2://kvm1.example/system", 0, TRUE, NULL },
        { "qemu+libssh://kvm1.example/system", 0, TRUE, NULL },
        { "qemu+tls://kvm1.example/system", 0, TRUE, NULL },
        { "qemu://kvm1.example/system", 0, TRUE, NULL },
        { "qemu+tcp://10.0.0.5:16509/system", 0, TRUE, NULL },
        { "qemu+tls://[fe80::1]/system", 0, TRUE, NULL },
        { "qemu+ssh:///system", 0, FALSE, "needs a host name" },
        { "qemu+ssh://-oProxyCommand=x/system", 0, FALSE, "DNS name" },
        { "qemu+ssh://-l@h/system", 0, FALSE, "user name" },
        { "qemu+ssh://u:secret@h/system", 0, FALSE, "password" },
        { "qemu+ssh://h/system#frag", 0, FALSE, "fragment" },
        { "qemu+ext:///system?command=/bin/true", 0, FALSE, "never allowed" },
        { "qemu+ext:///system?command=/bin/true", 4, FALSE, "never allowed" },
        { "qemu+http://h/system", 0, FALSE, "not supported" },
        { "xen:///system", 0, FALSE, "not supported" },
        { "lxc:///system", 0, FALSE, "not supported" },
        /* every parameter */
        { "qemu+ssh://h/system?name=qemu:///system", 0, FALSE, "replaces the driver" },
        { "qemu+ssh://h/system?mode=legacy", 0, TRUE, NULL },
        { "qemu+ssh://h/system?proxy=native", 0, TRUE, NULL },
        { "qemu+ssh://h/system?proxy=/bin/sh", 0, FALSE, "may be auto, netcat, native" },
        { "qemu+ssh://h/system?command=/tmp/x", 0, FALSE, "names a program" },
        { "qemu+ssh://h/system?command=/tmp/x", 4, TRUE, NULL },
        { "qemu+ssh://h/system?COMMAND=/tmp/x", 0, FALSE, "names a program" },
        { "qemu+ssh://h/system?comm%61nd=/tmp/x", 0, FALSE, "names a program" },
        { "qemu+ssh://h/system?socket=/x", 0, FALSE, "names a socket" },
        { "qemu+ssh://h/system?netcat=nc", 0, FALSE, "through a shell" },
        { "qemu+ssh://h/system?keyfile=/etc/shadow", 0, FALSE, "key file" },
        { "qemu+ssh://h/system?keyfile=/var/lib/drover/id", 2, TRUE, NULL },
        { "qemu+ssh://h/system?no_verify=1", 0, FALSE, "checking" },
        { "qemu+tls://h/system?no_verify=1", 0, FALSE, "checking" },
        { "qemu+ssh://h/system?no_tty=1", 0, TRUE, NULL },
        { "qemu+ssh://h/system?no_tty=yes", 0, FALSE, "may be 0, 1" },
        { "qemu+libssh2://h/system?known_hosts=/etc/passwd", 0, FALSE, "rewrite" },
        { "qemu+libssh2://h/system?known_hosts=/etc/kh", 2, TRUE, NULL },
        { "qemu+libssh://h/system?known_hosts_verify=normal", 0, TRUE, NULL },
        { "qemu+libssh://h/system?known_hosts_verify=ignore", 0, FALSE, "may be normal" },
        { "qemu+libssh://h/system?sshauth=agent,privkey", 0, TRUE, NULL },
        { "qemu+libssh://h/system?sshauth=agent,evil", 0, FALSE, "a list of" },
        { "qemu+tls://h/system?tls_priority=NONE", 0, FALSE, "weaken" },
        { "qemu+tls://h/system?pkipath=/tmp", 0, FALSE, "directory of keys" },
        { "qemu+tcp://h/system?no_tty=1", 0, FALSE, "does not apply to the tcp" },
        { "qemu+ssh://h/system?known_hosts=/etc/kh", 2, FALSE, "does not apply to the ssh" },
        { "qemu+ssh://h/system?bogus=1", 0, FALSE, "unknown" },
        { "qemu+ssh://h/system?mode=auto&mode=auto", 0, FALSE, "twice" },
        { "qemu+ssh://h/system?mode=auto;MODE=auto", 0, FALSE, "twice" },
        { "qemu+ssh://h/system?mode", 0, FALSE, "query" },
        { "qemu+ssh://h/system?mode=au%00to", 0, FALSE, "query" },
        { "qemu+ssh://h/sys tem", 0, FALSE, "printable" },
        { "qemu+ssh://h/system\\x", 0, FALSE, "printable" },
        /* simulated hosts */
        { "test:///default", 0, FALSE, "simulated" },
        { "test:///etc/passwd", 0, FALSE, "simulated" },
        { "test:///default", 1, TRUE, NULL },
        { "test:///tmp/h1.xml", 1, TRUE, NULL },
        { "test+unix:///tmp/h1.xml", 1, TRUE, NULL },
        { "test+unix:///tmp/h1.xml", 0, FALSE, "simulated" },
        { "test+unix://h/tmp/h1.xml", 1, FALSE, "test:///FILE" },
        { "test+tcp://h/default", 1, FALSE, "test:///FILE" },
        { "test:///x?a=b", 1, FALSE, "test:///FILE" },
        { "", 0, FALSE, "empty" },
        { "not a uri", 0, FALSE, "printable" },
        { "qemu", 0, FALSE, "not a URI" },
    };
    const DvUriPolicy *policies[] = { &none, &sim, &keys, &sock, &cmd };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        gboolean ok = dv_validate_host_uri("uri", cases[i].uri, policies[cases[i].policy], &error);

        if (ok != cases[i].ok)
            g_error("%s (policy %d): expected %s, got %s", cases[i].uri, cases[i].policy,
                    cases[i].ok ? "allowed" : "refused", error != NULL ? error->message : "allowed");
        if (ok) {
            g_assert_no_error(error);
            continue;
        }
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_assert_cmpstr(dv_error_get_field(error), ==, "uri");
        if (strstr(error->message, cases[i].rule) == NULL)
            g_error("%s: refusal '%s' does not name the rule '%s'", cases[i].uri, error->message,
                    cases[i].rule);
    }
    g_assert_true(dv_validate_uri_parameter_name("keyfile", NULL));
    g_assert_true(dv_validate_uri_parameter_name("known_hosts", NULL));
    g_assert_false(dv_validate_uri_parameter_name("KeyFile", NULL));
    g_assert_false(dv_validate_uri_parameter_name("bogus", NULL));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/drover/common/validate/names", test_names);
    g_test_add_func("/drover/common/validate/ranges-uris", test_ranges_and_uris);
    g_test_add_func("/drover/common/validate/host-uris", test_host_uris);
    return g_test_run();
}
