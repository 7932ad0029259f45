#define G_LOG_DOMAIN "DvCli"

/* Argument parsing: strict numbers, --disk specs, the request bodies the
 * option tables build, and usage errors (exit 2) before any request. */

#include <string.h>

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
    };
    const DvCliCommand *const tables[] = { dv_cli_commands_vm, dv_cli_commands_host, dv_cli_commands_storage,
                                           dv_cli_commands_misc, dv_cli_commands_job };

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
    g_test_add_func("/drover/cli/args/vm-create-body", test_vm_create_body);
    g_test_add_func("/drover/cli/args/template-body", test_template_body);
    g_test_add_func("/drover/cli/args/host-bodies", test_host_bodies);
    g_test_add_func("/drover/cli/args/parse-errors", test_parse_errors);
    g_test_add_func("/drover/cli/args/main-usage", test_main_usage);
    g_test_add_func("/drover/cli/args/path-expand", test_path_expand);
    g_test_add_func("/drover/cli/args/login-body", test_login_body);
    {
        int ret = g_test_run();
        g_rmdir(tmp); /* nothing in here writes the config */
        return ret;
    }
}
