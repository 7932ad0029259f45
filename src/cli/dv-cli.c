#define G_LOG_DOMAIN "DvCli"

/* drover: global options, finding the command, and the exit code. */

#include "dv-cli.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "dv-config.h"
#include "dv-error.h"
#include "dv-secret.h"

static const DvCliCommand *const dv_cli_tables[] = {
    dv_cli_commands_misc,
    dv_cli_commands_host,
    dv_cli_commands_storage,
    dv_cli_commands_vm,
    dv_cli_commands_catalog,
    dv_cli_commands_job,
    dv_cli_commands_secret,
    dv_cli_commands_access,
};

const DvCliCommand *const *
dv_cli_command_tables(guint *ret_n)
{
    *ret_n = G_N_ELEMENTS(dv_cli_tables);
    return dv_cli_tables;
}

static const char dv_cli_global_usage[] =
    "global options (before or after the command):\n"
    "  --server URL                     Drover server (env DROVER_SERVER, config, http://127.0.0.1:8420)\n"
    "  --token T                        session token (env DROVER_TOKEN, config; see 'drover login')\n"
    "  -o, --output table|json          output format (default table)\n"
    "  --no-wait                        print the job id and return once a change is accepted\n"
    "  --insecure                       accept a self-signed TLS certificate\n"
    "  -h, --help                       show help for the command\n";

void
dv_cli_clear(DvCli *cli)
{
    g_clear_pointer(&cli->client, dv_cli_client_free);
    g_clear_pointer(&cli->server_opt, g_free);
    g_clear_pointer(&cli->names, g_hash_table_unref);
    if (cli->token_opt != NULL)
        dv_secret_str_free(g_steal_pointer(&cli->token_opt));
}

static gboolean
dv_cli_set_format(DvCli *cli, const char *value, GError **error)
{
    if (g_strcmp0(value, "table") == 0) {
        cli->format = DV_CLI_FORMAT_TABLE;
    } else if (g_strcmp0(value, "json") == 0) {
        cli->format = DV_CLI_FORMAT_JSON;
    } else {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "output", "--output: must be table or json, got '%s'",
                           value != NULL ? value : "");
        return FALSE;
    }
    return TRUE;
}

/* Takes the global options out of argv wherever they are; the rest, in
 * order, goes to @rest. */
static gboolean
dv_cli_take_global_options(DvCli *cli, int argc, char **argv, GPtrArray *rest, GError **error)
{
    static const char *const with_value[] = { "--server", "--token", "--output", "-o" };

    for (int i = 1; i < argc; i++) {
        const char *word = argv[i];
        const char *value = NULL;
        const char *name = NULL;

        if (g_strcmp0(word, "--") == 0) {
            for (; i < argc; i++)
                g_ptr_array_add(rest, argv[i]);
            break;
        }
        if (g_strcmp0(word, "--help") == 0 || g_strcmp0(word, "-h") == 0) {
            cli->help = TRUE;
            continue;
        }
        if (g_strcmp0(word, "--no-wait") == 0) {
            cli->no_wait = TRUE;
            continue;
        }
        if (g_strcmp0(word, "--insecure") == 0) {
            cli->insecure = TRUE;
            continue;
        }
        for (gsize k = 0; k < G_N_ELEMENTS(with_value); k++) {
            gsize len = strlen(with_value[k]);
            if (g_strcmp0(word, with_value[k]) == 0) {
                name = with_value[k];
                if (i + 1 >= argc) {
                    dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, name, "%s needs a value", name);
                    return FALSE;
                }
                value = argv[++i];
            } else if (strncmp(word, with_value[k], len) == 0 && word[len] == '=') {
                name = with_value[k];
                value = word + len + 1;
            } else if (g_strcmp0(with_value[k], "-o") == 0 && g_str_has_prefix(word, "-o") && word[2] != '-') {
                name = "-o";
                value = word + 2;
            }
            if (name != NULL)
                break;
        }
        if (name == NULL) {
            g_ptr_array_add(rest, argv[i]);
            continue;
        }
        if (g_strcmp0(name, "--server") == 0) {
            g_free(cli->server_opt);
            cli->server_opt = g_strdup(value);
        } else if (g_strcmp0(name, "--token") == 0) {
            if (cli->token_opt != NULL)
                dv_secret_str_free(cli->token_opt);
            cli->token_opt = g_strdup(value);
        } else if (!dv_cli_set_format(cli, value, error)) {
            return FALSE;
        }
    }
    return TRUE;
}

static guint
dv_cli_command_match(const DvCliCommand *cmd, char **words, guint n_words)
{
    g_auto(GStrv) parts = g_strsplit(cmd->noun, " ", -1);
    guint n = g_strv_length(parts);

    if (cmd->verb != NULL)
        n++;
    if (n > n_words)
        return 0;
    for (guint i = 0; parts[i] != NULL; i++)
        if (g_strcmp0(parts[i], words[i]) != 0)
            return 0;
    if (cmd->verb != NULL && g_strcmp0(cmd->verb, words[n - 1]) != 0)
        return 0;
    return n;
}

static const DvCliCommand *
dv_cli_command_find(char **words, guint n_words, guint *ret_used)
{
    const DvCliCommand *best = NULL;
    guint best_n = 0;

    for (gsize t = 0; t < G_N_ELEMENTS(dv_cli_tables); t++) {
        for (const DvCliCommand *cmd = dv_cli_tables[t]; cmd->noun != NULL; cmd++) {
            guint n = dv_cli_command_match(cmd, words, n_words);
            if (n > best_n) {
                best = cmd;
                best_n = n;
            }
        }
    }
    *ret_used = best_n;
    return best;
}

/* The longest noun ("vm snapshot", then "vm") that @words start with. */
static char *
dv_cli_noun_find(char **words, guint n_words)
{
    g_autofree char *two = n_words >= 2 ? g_strconcat(words[0], " ", words[1], NULL) : NULL;
    gboolean first = FALSE;

    for (gsize t = 0; t < G_N_ELEMENTS(dv_cli_tables); t++) {
        for (const DvCliCommand *cmd = dv_cli_tables[t]; cmd->noun != NULL; cmd++) {
            g_auto(GStrv) parts = g_strsplit(cmd->noun, " ", 2);
            if (two != NULL && g_strcmp0(cmd->noun, two) == 0)
                return g_steal_pointer(&two);
            first = first || g_strcmp0(parts[0], words[0]) == 0;
        }
    }
    return first ? g_strdup(words[0]) : NULL;
}

static char *
dv_cli_noun_usage(const char *noun)
{
    GString *out = g_string_new(NULL);
    g_autofree char *sub = g_strconcat(noun, " ", NULL);

    g_string_append_printf(out, "usage: drover %s VERB [ARGS] [OPTIONS]\n\nverbs:\n", noun);
    for (gsize t = 0; t < G_N_ELEMENTS(dv_cli_tables); t++) {
        for (const DvCliCommand *cmd = dv_cli_tables[t]; cmd->noun != NULL; cmd++) {
            g_autofree char *left = NULL;
            if (g_strcmp0(cmd->noun, noun) != 0 && !g_str_has_prefix(cmd->noun, sub))
                continue;
            left = g_strdup_printf("%s%s%s %s", cmd->noun + strlen(noun), cmd->noun[strlen(noun)] ? " " : "",
                                   cmd->verb != NULL ? cmd->verb : "", cmd->args != NULL ? cmd->args : "");
            g_strstrip(left);
            g_string_append_printf(out, "  %-32s %s\n", left, cmd->summary);
        }
    }
    g_string_append_printf(out, "\nRun 'drover %s VERB --help' for the options of a verb.\n", noun);
    return g_string_free(out, FALSE);
}

static char *
dv_cli_top_usage(void)
{
    GString *out = g_string_new("usage: drover [GLOBAL OPTIONS] NOUN VERB [ARGS] [OPTIONS]\n\ncommands:\n");
    g_autoptr(GPtrArray) nouns = g_ptr_array_new_with_free_func(g_free);

    for (gsize t = 0; t < G_N_ELEMENTS(dv_cli_tables); t++) {
        for (const DvCliCommand *cmd = dv_cli_tables[t]; cmd->noun != NULL; cmd++) {
            g_autoptr(GString) verbs = g_string_new(NULL);
            if (cmd->verb == NULL) {
                g_string_append_printf(out, "  %-16s %s\n", cmd->noun, cmd->summary);
                continue;
            }
            if (g_ptr_array_find_with_equal_func(nouns, cmd->noun, g_str_equal, NULL) || strchr(cmd->noun, ' '))
                continue;
            g_ptr_array_add(nouns, g_strdup(cmd->noun));
            for (const DvCliCommand *c = cmd; c->noun != NULL; c++) {
                if (g_strcmp0(c->noun, cmd->noun) == 0)
                    g_string_append_printf(verbs, "%s%s", verbs->len > 0 ? ", " : "", c->verb);
                else if (g_str_has_prefix(c->noun, cmd->noun) && c->noun[strlen(cmd->noun)] == ' ' &&
                         !strstr(verbs->str, c->noun + strlen(cmd->noun) + 1))
                    g_string_append_printf(verbs, "%s%s ...", verbs->len > 0 ? ", " : "",
                                           c->noun + strlen(cmd->noun) + 1);
            }
            g_string_append_printf(out, "  %-16s %s\n", cmd->noun, verbs->str);
        }
    }
    g_string_append_printf(out, "\n%s\nRun 'drover NOUN --help' for the verbs of a noun.\n", dv_cli_global_usage);
    return g_string_free(out, FALSE);
}

/* Server messages go to a terminal: no escape sequences from them. */
static char *
dv_cli_sanitize(const char *text)
{
    g_autofree char *valid = g_utf8_make_valid(text, -1);
    for (char *p = valid; *p != '\0'; p++)
        if ((guchar)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return g_steal_pointer(&valid);
}

static void
dv_cli_print_error(DvCli *cli, const GError *error)
{
    g_autofree char *msg = dv_cli_sanitize(error->message);
    const char *field = dv_error_get_field(error);

    if (field != NULL && !g_str_has_prefix(msg, field)) {
        g_autofree char *f = dv_cli_sanitize(field);
        fprintf(cli->err, "error: %s (field: %s)\n", msg, f);
    } else {
        fprintf(cli->err, "error: %s\n", msg);
    }
}

/* A usage error is one line naming the problem and where the usage is:
 * the whole usage after it would push the one line that matters off the
 * screen (it is printed by --help).  @words: "vm create", "vm", or NULL
 * for the top level. */
static int
dv_cli_usage_error(DvCli *cli, const GError *error, const char *words)
{
    g_autofree char *msg = dv_cli_sanitize(error->message);

    fprintf(cli->err, "error: %s\nTry 'drover %s%s--help'.\n", msg, words != NULL ? words : "",
            words != NULL ? " " : "");
    return DV_EXIT_USAGE;
}

/* "vm create", "vm snapshot list", "login": the words of @cmd. */
static char *
dv_cli_command_words(const DvCliCommand *cmd)
{
    return cmd->verb != NULL ? g_strconcat(cmd->noun, " ", cmd->verb, NULL) : g_strdup(cmd->noun);
}

static void
dv_cli_warn_config_mode(DvCli *cli)
{
    g_autofree char *path = dv_cli_config_path();
    GStatBuf st;

    if (g_stat(path, &st) == 0 && (st.st_mode & 0077) != 0)
        fprintf(cli->err, "warning: %s holds a session token but others may read it; run 'chmod 600 %s'\n", path,
                path);
}

/* --server, then DROVER_SERVER, then the config, then the default; the
 * token likewise, but a token from the config is only sent to the server
 * it was issued by. */
gboolean
dv_cli_client_setup(DvCli *cli, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(GKeyFile) config = dv_cli_config_load(&local);
    g_autofree char *config_url = NULL;
    g_autofree char *config_token = NULL;
    const char *server = cli->server_opt;
    const char *token = cli->token_opt;

    if (config == NULL) {
        fprintf(cli->err, "warning: ignoring the config file: %s\n", local->message);
    } else {
        config_url = g_key_file_get_string(config, "server", "url", NULL);
        config_token = g_key_file_get_string(config, "server", "token", NULL);
        if (config_token != NULL)
            dv_cli_warn_config_mode(cli);
    }
    if (server == NULL)
        server = g_getenv("DROVER_SERVER");
    if (server == NULL || server[0] == '\0')
        server = config_url;
    if (server == NULL)
        server = DV_CLI_DEFAULT_SERVER;
    cli->client = dv_cli_client_new(server, cli->insecure, error);
    if (cli->client == NULL)
        return FALSE;

    if (token == NULL)
        token = g_getenv("DROVER_TOKEN");
    if ((token == NULL || token[0] == '\0') && config_url != NULL &&
        g_strcmp0(config_url, dv_cli_client_get_server(cli->client)) == 0)
        token = config_token;
    dv_cli_client_set_token(cli->client, token);
    if (config_token != NULL)
        dv_secret_str_free(g_steal_pointer(&config_token));
    return TRUE;
}

int
dv_cli_main(int argc, char **argv, FILE *out, FILE *err)
{
    g_auto(DvCli) cli = { 0 };
    g_autoptr(GPtrArray) rest = g_ptr_array_new();
    g_autoptr(GError) error = NULL;
    g_autoptr(DvCliArgs) args = NULL;
    g_autoptr(JsonObject) body = NULL;
    g_autofree char *usage = NULL;
    g_autofree char *words = NULL;
    const DvCliCommand *cmd;
    guint n_words = 0;
    guint used = 0;

    cli.out = out;
    cli.err = err;
    cli.out_tty = isatty(fileno(out));
    cli.err_tty = isatty(fileno(err));
    cli.format = DV_CLI_FORMAT_TABLE;

    /* Hidden entry points for the completion scripts and the man page
     * generator; not commands of the table (no operation behind them). */
    if (argc >= 2 && g_strcmp0(argv[1], "__complete") == 0)
        return dv_cli_complete(&cli, argc - 2, argv + 2);
    if (argc == 2 && g_strcmp0(argv[1], "__commands") == 0)
        return dv_cli_dump_commands(out);

    if (!dv_cli_take_global_options(&cli, argc, argv, rest, &error))
        return dv_cli_usage_error(&cli, error, NULL);
    while (n_words < rest->len && ((char *)g_ptr_array_index(rest, n_words))[0] != '-')
        n_words++;
    cmd = dv_cli_command_find((char **)rest->pdata, n_words, &used);
    if (cmd == NULL) {
        g_autofree char *noun = n_words > 0 ? dv_cli_noun_find((char **)rest->pdata, n_words) : NULL;
        usage = noun != NULL ? dv_cli_noun_usage(noun) : dv_cli_top_usage();
        if (cli.help) {
            fputs(usage, out);
            return DV_EXIT_OK;
        }
        if (noun != NULL) {
            guint noun_words = 1 + (strchr(noun, ' ') != NULL);
            if (n_words > noun_words)
                dv_set_field_error(&error, DV_ERROR_INVALID_ARGUMENT, NULL, "unknown verb '%s' for '%s'",
                                   (char *)g_ptr_array_index(rest, noun_words), noun);
            else
                dv_set_field_error(&error, DV_ERROR_INVALID_ARGUMENT, NULL, "'%s' needs a verb", noun);
        } else if (rest->len > 0) {
            dv_set_field_error(&error, DV_ERROR_INVALID_ARGUMENT, NULL, "unknown command '%s'",
                               (char *)g_ptr_array_index(rest, 0));
        } else {
            dv_set_field_error(&error, DV_ERROR_INVALID_ARGUMENT, NULL, "no command given");
        }
        return dv_cli_usage_error(&cli, error, noun);
    }

    words = dv_cli_command_words(cmd);
    if (cli.help) {
        usage = dv_cli_command_usage(cmd);
        fputs(usage, out);
        fputs("\n", out);
        fputs(dv_cli_global_usage, out);
        return DV_EXIT_OK;
    }
    args = dv_cli_args_parse(cmd, (int)(rest->len - used), (char **)rest->pdata + used, &error);
    if (args == NULL)
        return dv_cli_usage_error(&cli, error, words);
    body = dv_cli_args_to_body(args);
    if (cmd->prepare != NULL && !cmd->prepare(args, body, &error))
        return dv_cli_usage_error(&cli, error, words);
    /* Files and stdin last: a wrong combination is reported before
     * anything is read. */
    if (!dv_cli_args_load_inputs(args, body, &error))
        return dv_cli_usage_error(&cli, error, words);
    for (guint i = 0; i < args->warnings->len; i++)
        fprintf(err, "%s\n", (const char *)g_ptr_array_index(args->warnings, i));
    if (!dv_cli_client_setup(&cli, &error))
        return dv_cli_usage_error(&cli, error, words);

    if (!cmd->run(&cli, cmd, args, body, &error)) {
        DvExitCode code = dv_error_to_exit_code(error);
        fflush(out);
        if (cli.usage_failed)
            return dv_cli_usage_error(&cli, error, words);
        dv_cli_print_error(&cli, error);
        /* A job that ran and failed without a more telling code. */
        if (cli.job_failed && code == DV_EXIT_FAILURE)
            code = DV_EXIT_JOB_FAILED;
        return code;
    }
    fflush(out);
    return DV_EXIT_OK;
}
