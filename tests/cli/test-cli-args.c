#define G_LOG_DOMAIN "DvCli"

/* Argument parsing: strict numbers, --disk specs, the request bodies the
 * option tables build, and usage errors (exit 2) before any request. */

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "dv-cli.h"
#include "dv-error.h"
#include "dv-json.h"

static char *
object_to_string(JsonObject *obj)
{
    return dv_json_object_to_string(obj, FALSE);
}

static void
test_disk_spec(void)
{
    static const struct {
        const char *spec;
        const char *want; /* NULL: a usage error */
    } cases[] = {
        { "1024:default:qcow2", "{\"size_mib\":1024,\"pool\":\"default\",\"format\":\"qcow2\"}" },
        { "2048:fast", "{\"size_mib\":2048,\"pool\":\"fast\"}" },
        { "10240", "{\"size_mib\":10240}" },
        { "67108864", "{\"size_mib\":67108864}" },
        { "67108865", NULL },
        { "0", NULL },
        { "-5", NULL },
        { "abc", NULL },
        { "10k", NULL },
        { " 10", NULL },
        { "", NULL },
        { "10::raw", NULL },
        { "10:pool:", NULL },
        { "1:2:3:4", NULL },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) disk = dv_cli_disk_spec_parse(cases[i].spec, &error);
        if (cases[i].want == NULL) {
            g_assert_null(disk);
            g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        } else {
            g_autofree char *text = NULL;
            g_assert_no_error(error);
            text = object_to_string(disk);
            g_assert_cmpstr(text, ==, cases[i].want);
        }
    }
}

static void
test_parse_int(void)
{
    static const struct {
        const char *str;
        gboolean ok;
        gint64 value;
    } cases[] = {
        { "1", TRUE, 1 }, { "512", TRUE, 512 }, { "0", FALSE }, { "513", FALSE }, { "", FALSE },
        { "1x", FALSE },  { "0x10", FALSE },    { " 4", FALSE }, { "4 ", FALSE }, { "1e3", FALSE },
        { "99999999999999999999", FALSE },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        gint64 value = -1;
        gboolean ok = dv_cli_parse_int("--vcpus", cases[i].str, 1, 512, &value, &error);
        g_assert_cmpint(ok, ==, cases[i].ok);
        if (ok) {
            g_assert_cmpint(value, ==, cases[i].value);
        } else {
            g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
            g_assert_nonnull(strstr(error->message, "--vcpus"));
            g_assert_cmpint(value, ==, -1); /* untouched on failure */
        }
    }
}

/* Sizes with units (issue 12, item 10): binary units, plain bytes, 1 byte
 * to 64 TiB; anything else names the option. */
static void
test_parse_size(void)
{
    static const struct {
        const char *str;
        gboolean ok;
        gint64 value;
    } cases[] = {
        { "20G", TRUE, G_GINT64_CONSTANT(20) << 30 },
        { "512M", TRUE, G_GINT64_CONSTANT(512) << 20 },
        { "1T", TRUE, G_GINT64_CONSTANT(1) << 40 },
        { "64K", TRUE, 65536 },
        { "20GiB", TRUE, G_GINT64_CONSTANT(20) << 30 },
        { "4096", TRUE, 4096 },
        { "64T", TRUE, G_GINT64_CONSTANT(64) << 40 },
        { "65T", FALSE }, { "0", FALSE }, { "0G", FALSE }, { "G", FALSE }, { "", FALSE },
        { "1.5G", FALSE }, { "-1G", FALSE }, { "20g", FALSE }, { "20Q", FALSE }, { "20 G", FALSE },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        gint64 value = -1;
        gboolean ok = dv_cli_parse_size("--size", cases[i].str, &value, &error);
        g_assert_cmpint(ok, ==, cases[i].ok);
        if (ok) {
            g_assert_cmpint(value, ==, cases[i].value);
        } else {
            g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
            g_assert_cmpstr(dv_error_get_field(error), ==, "--size");
            g_assert_cmpint(value, ==, -1);
        }
    }
}

static const DvCliCommand *
find_command(const DvCliCommand *table, const char *noun, const char *verb)
{
    for (const DvCliCommand *cmd = table; cmd->noun != NULL; cmd++)
        if (g_strcmp0(cmd->noun, noun) == 0 && g_strcmp0(cmd->verb, verb) == 0)
            return cmd;
    g_assert_not_reached();
}

/* Parses @words for @cmd and runs its prepare hook: the request body. */
static char *
build_body(const DvCliCommand *cmd, const char *const *words, GError **error)
{
    g_autoptr(DvCliArgs) args = dv_cli_args_parse(cmd, (int)g_strv_length((char **)words), (char **)words, error);
    g_autoptr(JsonObject) body = NULL;

    if (args == NULL)
        return NULL;
    body = dv_cli_args_to_body(args);
    if (cmd->prepare != NULL && !cmd->prepare(args, body, error))
        return NULL;
    if (!dv_cli_args_load_inputs(args, body, error))
        return NULL;
    if (args->secrets->len > 0) {
        /* What dv_cli_run_job() sends for a command with secrets. */
        g_autoptr(DvSecret) raw = dv_cli_args_body_new(args, body);
        return g_strndup(dv_secret_get_string(raw), dv_secret_get_len(raw));
    }
    return object_to_string(body);
}

static void
test_vm_create_body(void)
{
    const DvCliCommand *cmd = find_command(dv_cli_commands_vm, "vm", "create");
    static const char *const words[] = { "web1", "--host", "kvm1", "--vcpus", "2", "--memory=2048",
                                         "--disk", "1024:default:qcow2", "--volume", "/img/data.qcow2",
                                         "--disk", "512", "--network", "default", "--network", "dmz",
                                         "--generation", "2", "--no-secure-boot", "--start", NULL };
    g_autoptr(GError) error = NULL;
    g_autofree char *body = build_body(cmd, words, &error);

    g_assert_no_error(error);
    /* Disks keep their command-line order across --disk and --volume. */
    g_assert_cmpstr(body, ==,
                    "{\"host\":\"kvm1\",\"vcpus\":2,\"memory_mib\":2048,\"generation\":2,\"secure_boot\":false,"
                    "\"start\":true,"
                    "\"disks\":[{\"size_mib\":1024,\"pool\":\"default\",\"format\":\"qcow2\"},"
                    "{\"volume\":\"/img/data.qcow2\"},{\"size_mib\":512}],"
                    "\"networks\":[{\"network\":\"default\"},{\"network\":\"dmz\"}],\"name\":\"web1\"}");
}

static void
test_template_body(void)
{
    const DvCliCommand *cmd = find_command(dv_cli_commands_storage, "template", "add");
    static const char *const words[] = { "small", "--vcpus", "1", "--memory", "512", "--network", "net1",
                                         "--network", "dmz", NULL };
    g_autoptr(GError) error = NULL;
    g_autofree char *body = build_body(cmd, words, &error);

    g_assert_no_error(error);
    /* A template names its networks as plain strings. */
    g_assert_cmpstr(body, ==, "{\"vcpus\":1,\"memory_mib\":512,\"networks\":[\"net1\",\"dmz\"],\"name\":\"small\"}");
}

/* volume create|resize, vm disk add: sizes in bytes in the body. */
static void
test_volume_bodies(void)
{
    static const char *const create[] = { "data1", "--pool", "default", "--size", "20G", "--format",
                                          "raw", NULL };
    static const char *const grow[] = { "0b8e", "--size", "512M", NULL };
    static const char *const add_new[] = { "vm1", "--size", "1G", "--pool", "fast", NULL };
    static const char *const add_vol[] = { "vm1", "--volume", "/var/lib/x.qcow2", NULL };
    static const char *const add_both[] = { "vm1", "--volume", "/x", "--size", "1G", NULL };
    static const char *const add_none[] = { "vm1", NULL };
    g_autoptr(GError) error = NULL;
    g_autofree char *b1 = build_body(find_command(dv_cli_commands_storage, "volume", "create"), create, &error);
    g_autofree char *b2 = NULL;
    g_autofree char *b3 = NULL;
    g_autofree char *b4 = NULL;
    g_autofree char *b5 = NULL;

    g_assert_no_error(error);
    g_assert_cmpstr(b1, ==,
                    "{\"pool\":\"default\",\"format\":\"raw\",\"size\":21474836480,\"name\":\"data1\"}");
    b2 = build_body(find_command(dv_cli_commands_storage, "volume", "resize"), grow, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(b2, ==, "{\"size\":536870912}");
    b3 = build_body(find_command(dv_cli_commands_vm, "vm disk", "add"), add_new, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(b3, ==, "{\"pool\":\"fast\",\"size\":1073741824}");
    b4 = build_body(find_command(dv_cli_commands_vm, "vm disk", "add"), add_vol, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(b4, ==, "{\"volume\":\"/var/lib/x.qcow2\"}");
    b5 = build_body(find_command(dv_cli_commands_vm, "vm disk", "add"), add_both, &error);
    g_assert_null(b5);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
    b5 = build_body(find_command(dv_cli_commands_vm, "vm disk", "add"), add_none, &error);
    g_assert_null(b5);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
}

static void
test_host_bodies(void)
{
    const DvCliCommand *add = find_command(dv_cli_commands_host, "host", "add");
    const DvCliCommand *set = find_command(dv_cli_commands_host, "host", "set");
    static const char *const add_words[] = { "kvm1", "--uri", "qemu:///system", "--max-operations", "4",
                                             "--domain-type", "kvm", NULL };
    static const char *const set_words[] = { "kvm1", "--no-cluster", "--max-connections", "8", NULL };
    g_autoptr(GError) error = NULL;
    g_autofree char *add_body = build_body(add, add_words, &error);
    g_autofree char *set_body = NULL;

    g_assert_no_error(error);
    g_assert_cmpstr(add_body, ==,
                    "{\"uri\":\"qemu:///system\",\"max_concurrent_operations\":4,\"domain_type\":\"kvm\","
                    "\"name\":\"kvm1\"}");
    set_body = build_body(set, set_words, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(set_body, ==, "{\"cluster\":null,\"max_connections\":8}");
}

/* A catalog: --host repeated into "hosts", the machine spec nested under
 * "machine" with its networks as plain names, the rest flat, with the
 * field names dv_engine_catalog_create() takes. */
static void
test_catalog_create_body(void)
{
    const DvCliCommand *cmd = find_command(dv_cli_commands_catalog, "catalog", "create");
    static const char *const words[] = { "desks", "--master", "gold", "--snapshot", "v1", "--host", "kvm1",
                                         "--host", "kvm2", "--pool", "default", "--count", "20", "--naming",
                                         "desk-###", "--vcpus", "2", "--memory=2048", "--network", "net1",
                                         "--network", "dmz", "--profile", "win", "--personal-disk", "1024",
                                         "--type", "persistent", "--kernel", "/boot/vmlinuz", "--initrd",
                                         "/boot/initrd.img", "--cmdline", "console=ttyS0 quiet",
                                         "--description", "floor 2", NULL };
    static const char *const group_words[] = { "pool1", "--naming", "d-##", "--count", "5", "--master", "gold",
                                               "--snapshot", "v1", "--pool", "p", "--host-group", "prod", NULL };
    static const char *const cluster_words[] = { "pool2", "--master", "gold", "--snapshot", "v1", "--cluster",
                                                 "c1", "--pool", "p", "--count", "1", "--naming", "x#", NULL };
    g_autoptr(GError) error = NULL;
    g_autofree char *body = build_body(cmd, words, &error);
    g_autofree char *group_body = NULL;
    g_autofree char *cluster_body = NULL;

    g_assert_no_error(error);
    g_assert_cmpstr(body, ==,
                    "{\"master_vm\":\"gold\",\"master_snapshot\":\"v1\",\"pool\":\"default\",\"count\":20,"
                    "\"naming_scheme\":\"desk-###\",\"guest_os_profile\":\"win\",\"personal_disk_mib\":1024,"
                    "\"type\":\"persistent\",\"description\":\"floor 2\",\"hosts\":[\"kvm1\",\"kvm2\"],"
                    "\"machine\":{\"vcpus\":2,\"memory_mib\":2048,\"networks\":[\"net1\",\"dmz\"],"
                    "\"kernel\":\"/boot/vmlinuz\",\"initrd\":\"/boot/initrd.img\","
                    "\"cmdline\":\"console=ttyS0 quiet\"},\"name\":\"desks\"}");

    /* Nothing of the machine spec given: no "machine" member at all, so
     * the server takes the master's. */
    group_body = build_body(cmd, group_words, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(group_body, ==,
                    "{\"naming_scheme\":\"d-##\",\"count\":5,\"master_vm\":\"gold\",\"master_snapshot\":\"v1\","
                    "\"pool\":\"p\",\"host_group\":\"prod\",\"name\":\"pool1\"}");
    cluster_body = build_body(cmd, cluster_words, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(cluster_body, ==,
                    "{\"master_vm\":\"gold\",\"master_snapshot\":\"v1\",\"cluster\":\"c1\",\"pool\":\"p\","
                    "\"count\":1,\"naming_scheme\":\"x#\",\"name\":\"pool2\"}");
}

/* The lifecycle commands: MACHINE... words and comma-separated
 * --machines lists into "machines", the power action from the verb. */
static void
test_catalog_lifecycle_bodies(void)
{
    static const char *const rebuild[] = { "desks", "desk-01", "desk-07", NULL };
    static const char *const remove[] = { "desks", "--count", "3", "--force", NULL };
    static const char *const restart[] = { "desks", "--machines", "desk-01,desk-02", "--machines", "desk-09",
                                           "--max-share", "20", NULL };
    static const char *const add[] = { "desks", "--count", "4", "--reuse-gaps", NULL };
    static const char *const update[] = { "desks", "--master", "gold", "--snapshot", "v2", NULL };
    g_autoptr(GError) error = NULL;
    g_autofree char *b1 = build_body(find_command(dv_cli_commands_catalog, "catalog", "rebuild"), rebuild, &error);
    g_autofree char *b2 = NULL;
    g_autofree char *b3 = NULL;
    g_autofree char *b4 = NULL;
    g_autofree char *b5 = NULL;

    g_assert_no_error(error);
    g_assert_cmpstr(b1, ==, "{\"machines\":[\"desk-01\",\"desk-07\"]}");
    b2 = build_body(find_command(dv_cli_commands_catalog, "catalog", "remove-machines"), remove, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(b2, ==, "{\"count\":3,\"force\":true}");
    b3 = build_body(find_command(dv_cli_commands_catalog, "catalog", "restart"), restart, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(b3, ==, "{\"max_share\":20,\"action\":\"restart\",\"machines\":[\"desk-01\",\"desk-02\","
                            "\"desk-09\"]}");
    b4 = build_body(find_command(dv_cli_commands_catalog, "catalog", "add-machines"), add, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(b4, ==, "{\"count\":4,\"reuse_gaps\":true}");
    b5 = build_body(find_command(dv_cli_commands_catalog, "catalog", "update-image"), update, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(b5, ==, "{\"master_vm\":\"gold\",\"master_snapshot\":\"v2\"}");
}

/* Every catalog create refusal of the command line, before any request. */
static void
test_catalog_create_errors(void)
{
    const DvCliCommand *cmd = find_command(dv_cli_commands_catalog, "catalog", "create");
#define BASE "c", "--master", "m", "--snapshot", "s", "--pool", "p", "--naming", "d-##"
    static const struct {
        const char *words[20];
        const char *field;
        const char *message;
    } cases[] = {
        { { BASE, "--count", "2" }, "hosts", "exactly one of --host (repeatable), --host-group and --cluster" },
        { { BASE, "--count", "2", "--host", "a", "--cluster", "c" }, "hosts", "exactly one of" },
        { { BASE, "--count", "2", "--host-group", "g", "--cluster", "c" }, "hosts", "exactly one of" },
        { { BASE, "--host", "a" }, "count", "missing option --count N" },
        { { BASE, "--host", "a", "--count", "0" }, "--count", "from 1 to 10000, got '0'" },
        { { BASE, "--host", "a", "--count", "10001" }, "--count", "from 1 to 10000" },
        { { BASE, "--host", "a", "--count", "2", "--type", "shared" }, "type", "one of pooled|persistent" },
        { { BASE, "--host", "a", "--count", "2", "--personal-disk", "0" }, "--personal-disk", "from 1 to 1048576" },
        { { BASE, "--host", "a", "--count", "2", "--initrd", "/i" }, "initrd", "--initrd needs --kernel" },
        { { BASE, "--host", "a", "--count", "2", "--cmdline", "quiet" }, "cmdline", "--cmdline needs --kernel" },
        { { BASE, "--host", "a", "--count", "2", "--memory", "8" }, "--memory", "from 16 to 4194304" },
        { { BASE, "--host", "a", "--count", "2", "--pool", "q" }, "pool", "--pool given more than once" },
        { { "c", "--snapshot", "s", "--pool", "p", "--naming", "d-##", "--host", "a", "--count", "2" },
          "master", "missing option --master VM" },
        { { "c", "--master", "m", "--pool", "p", "--naming", "d-##", "--host", "a", "--count", "2" },
          "snapshot", "missing option --snapshot SNAP" },
        { { "--master", "m", "--snapshot", "s", "--pool", "p", "--naming", "d-##", "--host", "a", "--count", "2" },
          "NAME", "missing argument NAME" },
    };
#undef BASE

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *body = build_body(cmd, cases[i].words, &error);
        g_assert_null(body);
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        if (strstr(error->message, cases[i].message) == NULL)
            g_error("case %" G_GSIZE_FORMAT ": '%s' does not contain '%s'", i, error->message, cases[i].message);
        g_assert_cmpstr(dv_error_get_field(error), ==, cases[i].field);
    }
    {
        /* Nine networks: more than a machine takes. */
        static const char *const words[] = { "c", "--master", "m", "--snapshot", "s", "--pool", "p", "--naming",
                                             "d-##", "--count", "2", "--host", "a", "--network", "1",
                                             "--network", "2", "--network", "3", "--network", "4", "--network",
                                             "5", "--network", "6", "--network", "7", "--network", "8",
                                             "--network", "9", NULL };
        g_autoptr(GError) error = NULL;
        g_autofree char *body = build_body(cmd, words, &error);
        g_assert_null(body);
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_assert_cmpstr(dv_error_get_field(error), ==, "machine.networks");
    }
}

static void
test_parse_errors(void)
{
    static const struct {
        const char *noun;
        const char *verb;
        const char *words[8];
        const char *message; /* a part of the message */
    } cases[] = {
        { "vm", "create", { "web1", "--host", "h", "--vcpus", "0" }, "from 1 to 512, got '0'" },
        { "vm", "create", { "web1", "--host", "h", "--vcpus", "two" }, "got 'two'" },
        { "vm", "create", { "web1", "--host", "h", "--memory" }, "--memory needs a value" },
        { "vm", "create", { "web1" }, "exactly one of --host and --host-group" },
        { "vm", "create", { "web1", "--host", "a", "--host-group", "b" }, "exactly one of" },
        { "vm", "create", { "web1", "--host", "a", "--host", "b" }, "more than once" },
        { "vm", "create", { "web1", "--host", "a", "--disk", "big" }, "--disk size" },
        { "vm", "create", { "--host", "a" }, "missing argument NAME" },
        { "vm", "create", { "a", "b", "--host", "a" }, "unexpected argument 'b'" },
        { "vm", "create", { "a", "--host", "a", "--frob" }, "unknown option '--frob'" },
        { "vm", "create", { "a", "--host", "a", "--start=yes" }, "takes no value" },
        { "vm", "create", { "a", "--host", "" }, "must not be empty" },
        { "host", "add", { "kvm1" }, "missing option --uri" },
        { "host", "add", { "kvm1", "--uri", "x", "--domain-type", "xen" }, "one of auto|kvm|qemu" },
        { "host", "set", { "kvm1" }, "nothing to change" },
        { "host", "set", { "kvm1", "--cluster", "c", "--no-cluster" }, "contradict" },
        { "library-share", "add", { "s", "--path", "/p", "--host", "h" }, "go together" },
        { "template", "add", { "t", "--vcpus", "1", "--memory", "8" }, "from 16 to 4194304" },
        { "template", "add", { "t", "--vcpus", "1", "--memory", "64", "--generation", "3" }, "from 1 to 2" },
        { "login", NULL, { "--password", "hunter2" }, "visible to every user in 'ps'" },
        { "login", NULL, { "--password=hunter2" }, "--password-file" },
        { "job", "list", { "--limit", "501" }, "from 1 to 500" },
        { "job", "list", { "--state", "sleeping" }, "must be one of" },
        { "host", "set", { "kvm1", "--run-as", "a", "--no-run-as" }, "contradict" },
        { "run-as", "add", { "a", "--username", "u", "--password", "Pw-unit-1" }, "visible to every user in 'ps'" },
        { "run-as", "add", { "a", "--username", "u", "--password=Pw-unit-1" }, "--password-file" },
        { "run-as", "set", { "a", "--password", "Pw-unit-1" }, "--password-stdin" },
        { "run-as", "add", { "a", "--username", "u" }, "exactly one of --password-file" },
        { "run-as", "add", { "a", "--password-stdin" }, "missing option --username" },
        { "run-as", "add", { "a", "--username", "u", "--password-stdin", "--ssh-key-file", "k" }, "exactly one" },
        { "run-as", "set", { "a", "--password-stdin", "--ssh-key-file", "k" }, "only one of" },
        { "run-as", "set", { "a" }, "nothing to change" },
        { "run-as", "add", { "a", "--username", "u", "--password-file", "/nonexistent/pw" }, "cannot open" },
        { "guest-os-profile", "add", { "p", "--admin-password", "Pw-unit-1" }, "--admin-password-file" },
        { "guest-os-profile", "add", { "p", "--product-key=Pw-unit-1" }, "--product-key-file" },
        { "guest-os-profile", "set", { "p" }, "nothing to change" },
        { "setting", "add", { "application", "s", "--value", "Pw-unit-1", "--encrypted" }, "'ps'" },
        { "setting", "add", { "application", "s", "--encrypted", "--value=Pw-unit-1" }, "--value-file F" },
        { "setting", "add", { "application", "s" }, "exactly one of --value" },
        { "setting", "add", { "galaxy", "s", "--value", "v" }, "SCOPE: must be one of" },
        { "setting", "set", { "s", "--value", "v", "--value-stdin" }, "only one of" },
        { "setting", "list", { "--scope", "galaxy" }, "must be one of" },
        { "catalog", "machines", { "c", "--state", "broken" }, "one of pending|ready|failed" },
        { "catalog", "list", { "--state", "failed" }, "one of provisioning|ready|degraded" },
        { "catalog", "provision", { }, "missing argument CATALOG" },
        { "catalog", "rebuild", { "c" }, "give the machines (MACHINE...) or --all" },
        { "catalog", "rebuild", { "c", "m", "--all" }, "give the machines (MACHINE...) or --all" },
        { "catalog", "remove-machines", { "c" }, "give the machines (MACHINE...) or --count N" },
        { "catalog", "remove-machines", { "c", "m", "--count", "2" }, "give the machines (MACHINE...) or --count N" },
        { "catalog", "start", { "c", "--machines", "a,,b" }, "an empty machine name" },
        { "catalog", "start", { "c", "m" }, "unexpected argument 'm'" },
        { "catalog", "add-machines", { "c", "--count", "0" }, "from 1 to 10000" },
        { "catalog", "add-machines", { "c" }, "missing option --count" },
        { "catalog", "restart", { "c", "--max-share", "0" }, "from 1 to 100" },
        { "catalog", "update-image", { "c", "--master", "m" }, "missing option --snapshot" },
        { "catalog machine", "identity", { }, "missing argument MACHINE" },
    };
    const DvCliCommand *const tables[] = { dv_cli_commands_vm, dv_cli_commands_host, dv_cli_commands_storage,
                                           dv_cli_commands_misc, dv_cli_commands_job, dv_cli_commands_secret,
                                           dv_cli_commands_catalog, dv_cli_commands_access };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        const DvCliCommand *cmd = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *body = NULL;

        for (gsize t = 0; t < G_N_ELEMENTS(tables) && cmd == NULL; t++)
            for (const DvCliCommand *c = tables[t]; c->noun != NULL; c++)
                if (g_strcmp0(c->noun, cases[i].noun) == 0 && g_strcmp0(c->verb, cases[i].verb) == 0)
                    cmd = c;
        g_assert_nonnull(cmd);
        body = build_body(cmd, cases[i].words, &error);
        g_assert_null(body);
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        if (strstr(error->message, cases[i].message) == NULL)
            g_error("case %" G_GSIZE_FORMAT ": '%s' does not contain '%s'", i, error->message, cases[i].message);
        /* A secret given where it does not belong is never repeated. */
        g_assert_null(strstr(error->message, "Pw-unit-1"));
    }
}

/* Runs the whole command line; usage errors never reach the network
 * (the server below does not exist). */
static int
run(const char *const *words, char **ret_out, char **ret_err)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    char *out = NULL;
    char *err = NULL;
    size_t out_len = 0;
    size_t err_len = 0;
    FILE *o = open_memstream(&out, &out_len);
    FILE *e = open_memstream(&err, &err_len);
    int rc;

    g_ptr_array_add(argv, (gpointer) "drover");
    for (guint i = 0; words[i] != NULL; i++)
        g_ptr_array_add(argv, (gpointer)words[i]);
    g_ptr_array_add(argv, NULL);
    rc = dv_cli_main((int)argv->len - 1, (char **)argv->pdata, o, e);
    fclose(o);
    fclose(e);
    *ret_out = g_strdup(out);
    *ret_err = g_strdup(err);
    free(out);
    free(err);
    return rc;
}

static void
test_main_usage(void)
{
    static const struct {
        const char *words[8];
        int rc;
        const char *out;
        const char *err;
    } cases[] = {
        { { NULL }, 2, "", "error: no command given" },
        { { "--help" }, 0, "usage: drover [GLOBAL OPTIONS]", "" },
        { { "vm", "--help" }, 0, "snapshot create VM SNAP", "" },
        { { "--help", "vm", "create" }, 0, "usage: drover vm create NAME (--host H | --host-group G)", "" },
        { { "vm", "snapshot", "-h" }, 0, "usage: drover vm snapshot VERB", "" },
        { { "vm" }, 2, "", "error: 'vm' needs a verb" },
        { { "vm", "frobnicate" }, 2, "", "error: unknown verb 'frobnicate' for 'vm'" },
        { { "frobnicate" }, 2, "", "error: unknown command 'frobnicate'" },
        { { "-o", "yaml", "host", "list" }, 2, "", "--output: must be table or json" },
        { { "host", "list", "--server" }, 2, "", "--server needs a value" },
        { { "--server", "ftp://x", "host", "list" }, 2, "", "is not a server URL" },
        { { "vm", "create", "web1", "--host", "h", "--vcpus", "1.5" }, 2, "", "usage: drover vm create" },
        { { "login", "--password", "x" }, 2, "", "use --password-file F or --password-stdin" },
        { { "catalog", "--help" }, 0, "machines CATALOG", "" },
        { { "catalog", "create", "c", "--master", "m" }, 2, "", "usage: drover catalog create NAME --master VM" },
        { { "user", "--help" }, 0, "passwd", "" },
        { { "--help" }, 0, "  binding          list, add, delete\n", "" },
        { { "audit", "--help" }, 0, "usage: drover audit [--user U] [--operation OP]", "" },
        { { "binding", "add", "--role", "r", "--quota-vms", "x" }, 2, "", "usage: drover binding add (--user U" },
        { { "binding", "add", "--role", "r" }, 2, "", "error: give exactly one of --user U and --group G" },
        { { "token", "add", "ci", "--expires-in", "0" }, 2, "", "from 1 to 365" },
        { { "user", "add", "x", "--password", "Pw-unit-1" }, 2, "", "use --password-file F or --password-stdin" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *out = NULL;
        g_autofree char *err = NULL;
        int rc = run(cases[i].words, &out, &err);
        if (rc != cases[i].rc || strstr(out, cases[i].out) == NULL || strstr(err, cases[i].err) == NULL)
            g_error("case %" G_GSIZE_FORMAT ": rc %d, out '%s', err '%s'", i, rc, out, err);
    }
}

static void
test_path_expand(void)
{
    static const char *const args[] = { "web 1", "snap/1", NULL };
    g_autofree char *path = dv_cli_path_expand("/vms/{0}/snapshots/{1}/revert", args, TRUE);
    g_autofree char *text = dv_cli_path_expand("Reverted vm {0} to snapshot {1}", args, FALSE);
    g_autoptr(GString) query = g_string_new("/vms");

    g_assert_cmpstr(path, ==, "/vms/web%201/snapshots/snap%2F1/revert");
    g_assert_cmpstr(text, ==, "Reverted vm web 1 to snapshot snap/1");
    dv_cli_query_add(query, "name_prefix", "a&b");
    dv_cli_query_add(query, "limit", "5");
    g_assert_cmpstr(query->str, ==, "/vms?name_prefix=a%26b&limit=5");
}

static void
test_login_body(void)
{
    g_autoptr(DvSecret) password = dv_secret_new_from_string("p\"w\\d\n");
    g_autoptr(DvSecret) body = dv_cli_login_body_new("admin", password);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) obj = dv_json_parse_object(dv_secret_get_string(body), dv_secret_get_len(body),
                                                     DV_JSON_MAX_BODY, DV_JSON_MAX_DEPTH, &error);

    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(obj, "user", NULL), ==, "admin");
    g_assert_cmpstr(dv_json_get_string(obj, "password", NULL), ==, "p\"w\\d\n");
}


/* A file in the test's directory holding @len bytes of @data, mode 0600. */
static char *
write_file(const char *dir, const char *name, const char *data, gssize len)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_autoptr(GError) error = NULL;

    g_file_set_contents_full(path, data, len, G_FILE_SET_CONTENTS_NONE, 0600, &error);
    g_assert_no_error(error);
    return g_steal_pointer(&path);
}

static JsonObject *
parse_body(const char *body)
{
    g_autoptr(GError) error = NULL;
    JsonObject *obj = dv_json_parse_object(body, strlen(body), DV_JSON_MAX_BODY, DV_JSON_MAX_DEPTH, &error);

    g_assert_no_error(error);
    return obj;
}

static const DvCliCommand *
secret_command(const char *noun, const char *verb)
{
    return find_command(dv_cli_commands_secret, noun, verb);
}

/* The whole file less one trailing newline ("\n" or "\r\n"); inner
 * newlines, quotes and control characters survive the JSON escaping. */
static void
test_secret_from_file(void)
{
    g_autofree char *dir = g_dir_make_tmp("drover-cli-secret-XXXXXX", NULL);
    static const struct {
        const char *content;
        const char *want;
    } cases[] = {
        { "Pw-cli-7f3a9c\n", "Pw-cli-7f3a9c" },
        { "Pw-cli-7f3a9c", "Pw-cli-7f3a9c" },
        { "Pw-cli-7f3a9c\r\n", "Pw-cli-7f3a9c" },
        { "two\nlines\n\n", "two\nlines\n" },
        { "q\"u\\o\tte\x01 é", "q\"u\\o\tte\x01 é" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *pw = write_file(dir, "pw", cases[i].content, -1);
        const char *words[] = { "acct", "--username", "svc", "--password-file", pw, "--description", "d", NULL };
        g_autoptr(GError) error = NULL;
        g_autofree char *body = build_body(secret_command("run-as", "add"), words, &error);
        g_autoptr(JsonObject) obj = NULL;

        g_assert_no_error(error);
        obj = parse_body(body);
        g_assert_cmpstr(dv_json_get_string(obj, "password", NULL), ==, cases[i].want);
        g_assert_cmpstr(dv_json_get_string(obj, "username", NULL), ==, "svc");
        g_assert_cmpstr(dv_json_get_string(obj, "name", NULL), ==, "acct");
        g_assert_cmpuint(json_object_get_size(obj), ==, 4);
        g_unlink(pw);
    }
    g_rmdir(dir);
}

/* The exact bodies: plain members as the option table builds them, then
 * the secrets in command-line order. */
static void
test_secret_bodies(void)
{
    g_autofree char *dir = g_dir_make_tmp("drover-cli-secret-XXXXXX", NULL);
    g_autofree char *admin = write_file(dir, "admin", "Adm-pw\n", -1);
    g_autofree char *join = write_file(dir, "join", "Join-pw\n", -1);
    g_autofree char *key = write_file(dir, "key", "ABCDE-12345\n", -1);
    g_autofree char *user_data = write_file(dir, "user-data", "#cloud-config\nhostname: x\n", -1);
    g_autofree char *value = write_file(dir, "value", "Val-pw\n", -1);
    g_autofree char *ssh = write_file(dir, "id", "-----BEGIN KEY-----\nabc\n-----END KEY-----\n", -1);
    const char *profile_words[] = { "win", "--computer-name-pattern", "desk-###", "--admin-user", "Administrator",
                                    "--admin-password-file", admin, "--domain", "corp.example", "--join-user",
                                    "joiner", "--join-password-file", join, "--product-key-file", key,
                                    "--time-zone", "UTC", "--ssh-authorized-key", "ssh-ed25519 AAA a",
                                    "--ssh-authorized-key", "ssh-ed25519 BBB b", "--user-data-file", user_data,
                                    NULL };
    const char *setting_words[] = { "deployment", "db-password", "--encrypted", "--value-file", value, NULL };
    const char *plain_words[] = { "application", "color", "--value", "blue", "--description", "d", NULL };
    const char *ssh_words[] = { "acct", "--ssh-key-file", ssh, NULL };
    const char *desc_words[] = { "acct", "--description", "only this", NULL };
    const char *host_words[] = { "kvm1", "--uri", "qemu+tls://kvm1/system", "--run-as", "acct", NULL };
    const char *host_set_words[] = { "kvm1", "--no-run-as", NULL };
    g_autoptr(GError) error = NULL;
    g_autofree char *profile = build_body(secret_command("guest-os-profile", "add"), profile_words, &error);
    g_autofree char *setting = NULL;
    g_autofree char *plain = NULL;
    g_autofree char *ssh_body = NULL;
    g_autofree char *desc = NULL;
    g_autofree char *host = NULL;
    g_autofree char *host_set = NULL;

    g_assert_no_error(error);
    g_assert_cmpstr(profile, ==,
                    "{\"computer_name_pattern\":\"desk-###\",\"admin_username\":\"Administrator\","
                    "\"domain\":\"corp.example\",\"domain_join_user\":\"joiner\",\"time_zone\":\"UTC\","
                    "\"ssh_authorized_keys\":[\"ssh-ed25519 AAA a\",\"ssh-ed25519 BBB b\"],\"name\":\"win\","
                    "\"user_data\":\"#cloud-config\\nhostname: x\\n\","
                    "\"admin_password\":\"Adm-pw\",\"domain_join_password\":\"Join-pw\","
                    "\"product_key\":\"ABCDE-12345\"}");
    setting = build_body(secret_command("setting", "add"), setting_words, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(setting, ==,
                    "{\"encrypted\":true,\"scope\":\"deployment\",\"name\":\"db-password\",\"value\":\"Val-pw\"}");
    plain = build_body(secret_command("setting", "add"), plain_words, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(plain, ==,
                    "{\"value\":\"blue\",\"description\":\"d\",\"scope\":\"application\",\"name\":\"color\"}");
    ssh_body = build_body(secret_command("run-as", "set"), ssh_words, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(ssh_body, ==, "{\"ssh_private_key\":\"-----BEGIN KEY-----\\nabc\\n-----END KEY-----\"}");
    desc = build_body(secret_command("run-as", "set"), desc_words, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(desc, ==, "{\"description\":\"only this\"}");
    host = build_body(find_command(dv_cli_commands_host, "host", "add"), host_words, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(host, ==, "{\"uri\":\"qemu+tls://kvm1/system\",\"run_as\":\"acct\",\"name\":\"kvm1\"}");
    host_set = build_body(find_command(dv_cli_commands_host, "host", "set"), host_set_words, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(host_set, ==, "{\"run_as\":null}");

    for (const char *const *f = (const char *const[]){ admin, join, key, user_data, value, ssh, NULL }; *f; f++)
        g_unlink(*f);
    g_rmdir(dir);
}

/* Runs @words with @input as standard input (NULL: /dev/null). */
static char *
build_body_with_stdin(const DvCliCommand *cmd, const char *const *words, const char *input, gsize len,
                      GError **error)
{
    int fds[2];
    int saved = dup(STDIN_FILENO);
    char *body;

    g_assert_cmpint(pipe(fds), ==, 0);
    /* Small inputs only: the pipe buffer holds them without a reader. */
    g_assert_cmpuint(len, <, 60000);
    g_assert_cmpint(write(fds[1], input, len), ==, (gssize)len);
    close(fds[1]);
    g_assert_cmpint(dup2(fds[0], STDIN_FILENO), ==, STDIN_FILENO);
    close(fds[0]);
    body = build_body(cmd, words, error);
    g_assert_cmpint(dup2(saved, STDIN_FILENO), ==, STDIN_FILENO);
    close(saved);
    return body;
}

static void
test_secret_from_stdin(void)
{
    static const char *const words[] = { "acct", "--username", "svc", "--password-stdin", NULL };
    static const char *const value_words[] = { "service", "token", "--encrypted", "--value-stdin", NULL };
    static const char input[] = "Pw-cli-7f3a9c\nsecond line\n";
    g_autoptr(GError) error = NULL;
    g_autofree char *body = build_body_with_stdin(secret_command("run-as", "add"), words, input, sizeof input - 1,
                                                  &error);
    g_autofree char *value = NULL;
    g_autofree char *empty = NULL;
    g_autoptr(JsonObject) obj = NULL;

    g_assert_no_error(error);
    obj = parse_body(body);
    /* All of stdin, not its first line. */
    g_assert_cmpstr(dv_json_get_string(obj, "password", NULL), ==, "Pw-cli-7f3a9c\nsecond line");

    value = build_body_with_stdin(secret_command("setting", "add"), value_words, "v\n", 2, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(value, ==, "{\"encrypted\":true,\"scope\":\"service\",\"name\":\"token\",\"value\":\"v\"}");

    empty = build_body_with_stdin(secret_command("run-as", "add"), words, "\n", 1, &error);
    g_assert_null(empty);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(error->message, "standard input (--password-stdin) is empty"));
}

/* Two options that both read stdin are refused before either reads. */
static void
test_secret_one_stdin(void)
{
    static const DvCliOption options[] = {
        { "a-stdin", DV_CLI_OPT_SECRET_STDIN, NULL, "a" },
        { "b-stdin", DV_CLI_OPT_SECRET_STDIN, NULL, "b" },
        { NULL },
    };
    static const DvCliCommand cmd = { "thing", "add", "", "", options, NULL, dv_cli_run_job, "POST", "/things" };
    static const char *const words[] = { "--a-stdin", "--b-stdin", NULL };
    g_autoptr(GError) error = NULL;
    g_autofree char *body = build_body_with_stdin(&cmd, words, "x\n", 2, &error);

    g_assert_null(body);
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(error->message, "both read standard input"));
}

static void
test_secret_limits(void)
{
    g_autofree char *dir = g_dir_make_tmp("drover-cli-secret-XXXXXX", NULL);
    g_autofree char *max = g_malloc(DV_CLI_MAX_SECRET + 2);
    g_autofree char *fits = NULL;
    g_autofree char *big = NULL;
    g_autofree char *nul = NULL;
    g_autofree char *latin1 = NULL;
    g_autofree char *open_file = NULL;
    g_autofree char *body = NULL;
    g_autoptr(JsonObject) obj = NULL;

    memset(max, 'x', DV_CLI_MAX_SECRET + 1);
    max[DV_CLI_MAX_SECRET] = '\n';
    /* 64 KiB and its newline: accepted. */
    fits = write_file(dir, "fits", max, DV_CLI_MAX_SECRET + 1);
    {
        const char *words[] = { "acct", "--username", "u", "--password-file", fits, NULL };
        g_autoptr(GError) error = NULL;
        body = build_body(secret_command("run-as", "add"), words, &error);
        g_assert_no_error(error);
        obj = parse_body(body);
        g_assert_cmpuint(strlen(dv_json_get_string(obj, "password", "")), ==, DV_CLI_MAX_SECRET);
    }
    /* One byte more: a usage error that does not show the content. */
    max[DV_CLI_MAX_SECRET] = 'x';
    max[DV_CLI_MAX_SECRET + 1] = '\n';
    big = write_file(dir, "big", max, DV_CLI_MAX_SECRET + 2);
    nul = write_file(dir, "nul", "Pw\0-cli\n", 8);
    latin1 = write_file(dir, "latin1", "Pw-caf\xe9\n", -1);
    open_file = write_file(dir, "open", "Pw-cli-7f3a9c\n", -1);
    g_assert_cmpint(g_chmod(open_file, 0644), ==, 0);
    {
        const struct {
            const char *file;
            const char *message;
        } cases[] = {
            { big, "a secret is at most 65536 bytes" },
            { nul, "not UTF-8 text without NUL bytes" },
            { latin1, "not UTF-8 text without NUL bytes" },
            { dir, "is a directory" },
        };
        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
            const char *words[] = { "acct", "--username", "u", "--password-file", cases[i].file, NULL };
            g_autoptr(GError) error = NULL;
            g_autofree char *none = build_body(secret_command("run-as", "add"), words, &error);
            g_assert_null(none);
            g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
            if (strstr(error->message, cases[i].message) == NULL)
                g_error("case %" G_GSIZE_FORMAT ": '%s'", i, error->message);
            g_assert_nonnull(strstr(error->message, "--password-file '"));
            g_assert_null(strstr(error->message, "xxxxxxxx"));
            g_assert_null(strstr(error->message, "Pw"));
        }
    }
    /* Others may read it: a warning, and the secret still goes. */
    {
        const char *words[] = { "acct", "--username", "u", "--password-file", open_file, NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(DvCliArgs) args = dv_cli_args_parse(secret_command("run-as", "add"), 5, (char **)words, &error);
        g_autoptr(JsonObject) b = NULL;
        g_assert_no_error(error);
        b = dv_cli_args_to_body(args);
        g_assert_true(dv_cli_args_load_inputs(args, b, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(args->warnings->len, ==, 1);
        g_assert_nonnull(strstr(g_ptr_array_index(args->warnings, 0), "can be read by other users"));
        g_assert_nonnull(strstr(g_ptr_array_index(args->warnings, 0), "chmod 600"));
        g_assert_cmpuint(args->secrets->len, ==, 1);
        /* Not in the JsonObject, whose strings are freed unwiped. */
        g_assert_false(json_object_has_member(b, "password"));
    }
    {
        g_autofree char *ud = g_malloc0(64 * 1024 + 2);
        g_autofree char *ud_file = NULL;
        memset(ud, 'u', 64 * 1024 + 1);
        ud_file = write_file(dir, "ud", ud, -1);
        const char *words[] = { "p", "--user-data-file", ud_file, NULL };
        g_autoptr(GError) error = NULL;
        g_autofree char *none = build_body(secret_command("guest-os-profile", "add"), words, &error);
        g_assert_null(none);
        g_assert_nonnull(strstr(error->message, "at most 65536 bytes"));
        g_unlink(ud_file);
    }
    for (const char *const *f = (const char *const[]){ fits, big, nul, latin1, open_file, NULL }; *f; f++)
        g_unlink(*f);
    g_rmdir(dir);
}

/* The whole command line: secrets refused as arguments exit 2, the
 * refused value is not printed, and neither help nor usage errors show
 * one. */
static void
test_secret_main(void)
{
    static const struct {
        const char *words[10];
        int rc;
        const char *err;
    } cases[] = {
        { { "run-as", "add", "a", "--username", "u", "--password", "Pw-cli-7f3a9c" }, 2, "--password-stdin" },
        { { "run-as", "add", "a", "--username", "u", "--password-stdin", "Pw-cli-7f3a9c" }, 2, "unexpected extra argument" },
        { { "setting", "add", "deployment", "s", "--encrypted", "--value", "Pw-cli-7f3a9c" }, 2, "'ps'" },
        { { "guest-os-profile", "set", "p", "--join-password", "Pw-cli-7f3a9c" }, 2, "--join-password-file" },
        { { "run-as", "add", "--help" }, 0, "" },
        { { "guest-os-profile", "add", "--help" }, 0, "" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *out = NULL;
        g_autofree char *err = NULL;
        int rc = run(cases[i].words, &out, &err);
        if (rc != cases[i].rc || strstr(err, cases[i].err) == NULL)
            g_error("case %" G_GSIZE_FORMAT ": rc %d, out '%s', err '%s'", i, rc, out, err);
        g_assert_null(strstr(out, "Pw-cli-7f3a9c"));
        g_assert_null(strstr(err, "Pw-cli-7f3a9c"));
        /* Refused options are not offered in the help. */
        g_assert_null(strstr(out, "--password "));
        g_assert_null(strstr(out, "--admin-password "));
    }
}

static const DvCliCommand *
access_command(const char *noun, const char *verb)
{
    return find_command(dv_cli_commands_access, noun, verb);
}

/* The bodies of the access-control commands, as docs/API.md ("Access
 * control") writes them: a binding's scope and quotas nested, a role's and
 * a token's privileges as plain strings, the user's password from a file. */
static void
test_access_bodies(void)
{
    g_autofree char *dir = g_dir_make_tmp("drover-cli-access-XXXXXX", NULL);
    g_autofree char *pw = write_file(dir, "pw", "Dora-pw-5678\n", -1);
    g_autofree char *cur = write_file(dir, "cur", "Old-pw-1234\n", -1);
    static const struct {
        const char *noun;
        const char *verb;
        const char *words[24];
        const char *body;
    } cases[] = {
        { "user", "disable", { "bob" }, "{\"disabled\":true}" },
        { "user", "enable", { "bob" }, "{\"disabled\":false}" },
        { "user", "delete", { "bob" }, "{}" },
        { "role", "add", { "ops", "--privilege", "vm.power", "--privilege=vm.read" },
          "{\"privileges\":[\"vm.power\",\"vm.read\"],\"name\":\"ops\"}" },
        { "binding", "add", { "--user", "alice", "--role", "read-only" }, "{\"user\":\"alice\",\"role\":\"read-only\"}" },
        { "binding", "add", { "--role", "administrator", "--group", "admins" },
          "{\"role\":\"administrator\",\"group\":\"admins\"}" },
        { "binding", "add", { "--user", "alice", "--role", "r", "--catalog", "desks" },
          "{\"user\":\"alice\",\"role\":\"r\",\"scope\":{\"kind\":\"catalog\",\"ref\":\"desks\"}}" },
        { "binding", "add", { "--user", "alice", "--role", "r", "--library-share", "iso" },
          "{\"user\":\"alice\",\"role\":\"r\",\"scope\":{\"kind\":\"library_share\",\"ref\":\"iso\"}}" },
        { "binding", "add", { "--user", "alice", "--role", "r", "--run-as", "svc", "--deny" },
          "{\"user\":\"alice\",\"role\":\"r\",\"scope\":{\"kind\":\"run_as\",\"ref\":\"svc\"},\"effect\":\"deny\"}" },
        { "binding", "add",
          { "--group", "tenants", "--role", "tenant-administrator", "--host-group", "prod", "--quota-vms", "0",
            "--quota-vcpus", "64", "--quota-memory", "65536", "--quota-storage", "500", "--member-vms", "2",
            "--member-vcpus", "4", "--member-memory", "4096", "--member-storage", "50" },
          "{\"group\":\"tenants\",\"role\":\"tenant-administrator\",\"scope\":{\"kind\":\"host_group\",\"ref\":\"prod\"},"
          "\"quota\":{\"vms\":0,\"vcpus\":64,\"memory_mib\":65536,\"storage_gib\":500,"
          "\"per_member\":{\"vms\":2,\"vcpus\":4,\"memory_mib\":4096,\"storage_gib\":50}}}" },
        { "binding", "add", { "--user", "u", "--role", "r", "--member-vms", "1" },
          "{\"user\":\"u\",\"role\":\"r\",\"quota\":{\"per_member\":{\"vms\":1}}}" },
        { "token", "add", { "ci" }, "{\"name\":\"ci\"}" },
        { "token", "add", { "ci", "--expires-in", "365", "--privilege", "vm.read", "--privilege", "vm.power" },
          "{\"expires_in_days\":365,\"privileges\":[\"vm.read\",\"vm.power\"],\"name\":\"ci\"}" },
        { "token", "revoke", { "t1" }, "{}" },
        { "session", "revoke", { "s1" }, "{}" },
        { "binding", "list", { "--user", "alice" }, "{}" },
        { "audit", NULL, { "--outcome", "failed", "--limit", "500", "--all" }, "{}" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *body = build_body(access_command(cases[i].noun, cases[i].verb), cases[i].words, &error);
        if (error != NULL)
            g_error("case %" G_GSIZE_FORMAT ": %s", i, error->message);
        g_assert_cmpstr(body, ==, cases[i].body);
    }

    /* The password from its file, in guarded memory, beside --role. */
    {
        const char *words[] = { "dora", "--role", "self-service", "--password-file", pw, NULL };
        g_autoptr(GError) error = NULL;
        g_autofree char *body = build_body(access_command("user", "add"), words, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(body, ==, "{\"role\":\"self-service\",\"name\":\"dora\",\"password\":\"Dora-pw-5678\"}");
    }
    /* user passwd moved beside the new user verbs and still works. */
    {
        const char *words[] = { "--current-password-file", cur, "--new-password-file", pw, NULL };
        g_autoptr(GError) error = NULL;
        g_autofree char *body = build_body(access_command("user", "passwd"), words, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(body, ==, "{\"current_password\":\"Old-pw-1234\",\"new_password\":\"Dora-pw-5678\"}");
        g_assert_true(g_str_equal(access_command("user", "passwd")->path, "/session/password"));
    }
    g_unlink(pw);
    g_unlink(cur);
    g_rmdir(dir);
}

/* Bad command lines: each a DV_ERROR naming the option and the rule. */
static void
test_access_errors(void)
{
    static const struct {
        const char *noun;
        const char *verb;
        const char *words[12];
        const char *field;
        const char *message; /* a part of the message */
    } cases[] = {
        { "user", "add", { "carol" }, "password", "give exactly one of --password-file F and --password-stdin" },
        { "user", "add", { "carol", "--password-file", "f", "--password-stdin" }, "password", "exactly one of" },
        { "user", "add", { "carol", "--password", "Pw-unit-1" }, "password", "visible to every user in 'ps'" },
        { "user", "add", { "carol", "--password=Pw-unit-1" }, "password", "--password-file F or --password-stdin" },
        { "user", "add", { "--password-stdin" }, "NAME", "missing argument NAME" },
        { "user", "add", { "carol", "--password-file", "/nonexistent/pw" }, "password-file", "cannot open" },
        { "user", "add", { "carol", "--password-stdin", "--role" }, "role", "--role needs a value" },
        { "user", "list", { "--frob" }, NULL, "unknown option '--frob'" },
        { "user", "list", { "--limit", "0" }, "--limit", "from 1 to 500" },
        { "user", "show", { }, "USER", "missing argument USER" },
        { "user", "disable", { "a", "b" }, NULL, "unexpected argument 'b'" },
        { "user", "delete", { "a", "--yes" }, NULL, "unknown option '--yes'" },
        { "user", "passwd", { "--new-password-file", "f" }, "current_password", "--current-password-file" },
        { "role", "add", { "ops" }, "privilege", "missing option --privilege P" },
        { "role", "add", { "ops", "--privilege", "" }, "privilege", "must not be empty" },
        { "role", "show", { }, "ROLE", "missing argument ROLE" },
        { "role", "privileges", { "x" }, NULL, "unexpected argument 'x'" },
        { "binding", "add", { "--role", "r" }, "user", "give exactly one of --user U and --group G" },
        { "binding", "add", { "--user", "u", "--group", "g", "--role", "r" }, "group", "exclude each other" },
        { "binding", "add", { "--user", "u" }, "role", "missing option --role R" },
        { "binding", "add", { "--user", "u", "--role", "r", "--host-group", "a", "--catalog", "b" }, "scope",
          "--host-group and --catalog: a binding has at most one scope" },
        { "binding", "add", { "--user", "u", "--role", "r", "--library-share", "a", "--run-as", "b" }, "scope",
          "at most one scope" },
        { "binding", "add", { "--user", "u", "--role", "r", "--quota-vms", "ten" }, "--quota-vms",
          "--quota-vms: expected a whole number from 0 to 1000000, got 'ten'" },
        { "binding", "add", { "--user", "u", "--role", "r", "--quota-memory", "-1" }, "--quota-memory", "got '-1'" },
        { "binding", "add", { "--user", "u", "--role", "r", "--quota-storage", "1.5" }, "--quota-storage",
          "got '1.5'" },
        { "binding", "add", { "--user", "u", "--role", "r", "--member-vcpus", "4x" }, "--member-vcpus", "got '4x'" },
        { "binding", "add", { "--user", "u", "--role", "r", "--deny=yes" }, "deny", "takes no value" },
        { "binding", "add", { "--user", "u", "--role", "r", "--host-group", "a", "--host-group", "b" }, "host-group",
          "more than once" },
        { "binding", "list", { "--user", "u", "--group", "g" }, "group", "exclude each other" },
        { "binding", "list", { "--role", "r" }, NULL, "unknown option '--role'" },
        { "binding", "delete", { }, "ID", "missing argument ID" },
        { "token", "add", { "ci", "--expires-in", "0" }, "--expires-in", "from 1 to 365, got '0'" },
        { "token", "add", { "ci", "--expires-in", "366" }, "--expires-in", "got '366'" },
        { "token", "add", { "ci", "--expires-in", "soon" }, "--expires-in", "got 'soon'" },
        { "token", "add", { }, "NAME", "missing argument NAME" },
        { "token", "list", { "--group", "g" }, NULL, "unknown option '--group'" },
        { "token", "revoke", { }, "ID", "missing argument ID" },
        { "session", "list", { "--user" }, "user", "--user needs a value (U)" },
        { "session", "revoke", { "s1", "s2" }, NULL, "unexpected argument 's2'" },
        { "audit", NULL, { "--outcome", "maybe" }, "outcome", "--outcome: must be one of allowed|refused|failed" },
        { "audit", NULL, { "--limit", "501" }, "--limit", "from 1 to 500" },
        { "audit", NULL, { "--since", "x" }, NULL, "unknown option '--since'" },
        { "audit", NULL, { "extra" }, NULL, "unexpected argument 'extra'" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *body = build_body(access_command(cases[i].noun, cases[i].verb), cases[i].words, &error);

        g_assert_null(body);
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        if (strstr(error->message, cases[i].message) == NULL)
            g_error("case %" G_GSIZE_FORMAT ": '%s' does not contain '%s'", i, error->message, cases[i].message);
        if (g_strcmp0(dv_error_get_field(error), cases[i].field) != 0)
            g_error("case %" G_GSIZE_FORMAT ": field '%s', expected '%s'", i, dv_error_get_field(error),
                    cases[i].field);
        g_assert_null(strstr(error->message, "Pw-unit-1"));
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* No config file or environment of the person running the tests. */
    g_autofree char *tmp = g_dir_make_tmp("drover-cli-args-XXXXXX", NULL);
    g_setenv("XDG_CONFIG_HOME", tmp, TRUE);
    g_unsetenv("DROVER_SERVER");
    g_unsetenv("DROVER_TOKEN");

    g_test_add_func("/drover/cli/args/disk-spec", test_disk_spec);
    g_test_add_func("/drover/cli/args/parse-int", test_parse_int);
    g_test_add_func("/drover/cli/args/parse-size", test_parse_size);
    g_test_add_func("/drover/cli/args/volume-bodies", test_volume_bodies);
    g_test_add_func("/drover/cli/args/vm-create-body", test_vm_create_body);
    g_test_add_func("/drover/cli/args/template-body", test_template_body);
    g_test_add_func("/drover/cli/args/host-bodies", test_host_bodies);
    g_test_add_func("/drover/cli/args/catalog-create-body", test_catalog_create_body);
    g_test_add_func("/drover/cli/args/catalog-lifecycle-bodies", test_catalog_lifecycle_bodies);
    g_test_add_func("/drover/cli/args/catalog-create-errors", test_catalog_create_errors);
    g_test_add_func("/drover/cli/args/parse-errors", test_parse_errors);
    g_test_add_func("/drover/cli/args/main-usage", test_main_usage);
    g_test_add_func("/drover/cli/args/path-expand", test_path_expand);
    g_test_add_func("/drover/cli/args/login-body", test_login_body);
    g_test_add_func("/drover/cli/args/secret-from-file", test_secret_from_file);
    g_test_add_func("/drover/cli/args/secret-bodies", test_secret_bodies);
    g_test_add_func("/drover/cli/args/secret-from-stdin", test_secret_from_stdin);
    g_test_add_func("/drover/cli/args/secret-one-stdin", test_secret_one_stdin);
    g_test_add_func("/drover/cli/args/secret-limits", test_secret_limits);
    g_test_add_func("/drover/cli/args/secret-main", test_secret_main);
    g_test_add_func("/drover/cli/args/access-bodies", test_access_bodies);
    g_test_add_func("/drover/cli/args/access-errors", test_access_errors);
    {
        int ret = g_test_run();
        g_rmdir(tmp); /* nothing in here writes the config */
        return ret;
    }
}
