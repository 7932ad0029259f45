#define G_LOG_DOMAIN "DvCli"

/* Shell completion and the command dump, both read from the command
 * tables so that a new row is completed and documented with no change
 * here.
 *
 * `drover __complete W1 ... WN CUR`: the words before the cursor (without
 * "drover") and the word being completed, which may be empty.  Prints the
 * candidates that start with CUR, one a line:
 *  - the next word of a command (nouns, then verbs);
 *  - options of the command found, and the global options, when CUR
 *    starts with '-';
 *  - the choices of a DV_CLI_OPT_CHOICE option (and of --output), after
 *    the option's word or in it ("--output=j" gives "--output=json");
 *  - names of objects read from the server for a positional argument
 *    whose place in the command's path names a collection ("/vms/{0}"),
 *    or whose name does (VM, HOST...), and for options that name one.
 * Server look-ups use the credentials a command would, with a 2 s
 * timeout; any error prints nothing (a prompt must never show one). */

#include "dv-cli.h"

#include <string.h>

#include "dv-error.h"
#include "dv-json.h"

#define DV_CLI_COMPLETE_TIMEOUT_S 2
#define DV_CLI_COMPLETE_LIMIT "200"

typedef struct {
    const char *name;     /* "--server" */
    const char *metavar;  /* NULL for flags */
    const char *choices;  /* '|'-separated, may be NULL */
    const char *help;
} DvCliGlobalOption;

static const DvCliGlobalOption dv_cli_global_options[] = {
    { "--server", "URL", NULL, "Drover server (env DROVER_SERVER, config, http://127.0.0.1:8420)" },
    { "--token", "T", NULL, "session token (env DROVER_TOKEN, config; see 'drover login')" },
    { "--output", "FORMAT", "table|json", "output format (default table); also -o" },
    { "--no-wait", NULL, NULL, "print the job id and return once a change is accepted" },
    { "--insecure", NULL, NULL, "accept a self-signed TLS certificate" },
    { "--help", NULL, NULL, "show help for the command; also -h" },
};

/* Argument and option names that name a collection when the command's
 * path does not say (a runner of its own, or an option filling a body
 * member by name). */
static const struct {
    const char *word;
    const char *collection;
} dv_cli_complete_collections[] = {
    { "VM", "/vms" },
    { "vm", "/vms" },
    { "HOST", "/hosts" },
    { "host", "/hosts" },
    { "POOL", "/storage-pools" },
    { "pool", "/storage-pools" },
    { "NETWORK", "/networks" },
    { "network", "/networks" },
    { "CATALOG", "/catalogs" },
    { "catalog", "/catalogs" },
    { "CLUSTER", "/clusters" },
    { "cluster", "/clusters" },
    { "GROUP", "/host-groups" },
    { "group", "/host-groups" },
    { "TEMPLATE", "/templates" },
    { "template", "/templates" },
    { "USER", "/users" },
    { "user", "/users" },
    { "ROLE", "/roles" },
    { "role", "/roles" },
    { "SHARE", "/library-shares" },
    { "library-share", "/library-shares" },
    { "ACCOUNT", "/run-as-accounts" },
    { "run-as", "/run-as-accounts" },
    { "PROFILE", "/guest-os-profiles" },
};

static const char *
dv_cli_complete_collection_for(const char *word)
{
    for (gsize i = 0; i < G_N_ELEMENTS(dv_cli_complete_collections); i++)
        if (g_strcmp0(dv_cli_complete_collections[i].word, word) == 0)
            return dv_cli_complete_collections[i].collection;
    return NULL;
}

static void
dv_cli_complete_print(FILE *out, const char *candidate, const char *cur)
{
    if (g_str_has_prefix(candidate, cur))
        fprintf(out, "%s\n", candidate);
}

/* A value candidate: after @prefix ("--host=", for a word completed
 * whole) or alone (""). */
static void
dv_cli_complete_print_value(FILE *out, const char *prefix, const char *candidate, const char *cur)
{
    if (g_str_has_prefix(candidate, cur))
        fprintf(out, "%s%s\n", prefix, candidate);
}

static void
dv_cli_complete_choices(FILE *out, const char *prefix, const char *choices, const char *cur)
{
    g_auto(GStrv) words = g_strsplit(choices, "|", -1);
    for (guint i = 0; words[i] != NULL; i++)
        dv_cli_complete_print_value(out, prefix, words[i], cur);
}

static const DvCliGlobalOption *
dv_cli_complete_global(const char *word)
{
    if (g_strcmp0(word, "-o") == 0)
        word = "--output";
    for (gsize i = 0; i < G_N_ELEMENTS(dv_cli_global_options); i++)
        if (g_strcmp0(dv_cli_global_options[i].name, word) == 0)
            return &dv_cli_global_options[i];
    return NULL;
}

static const DvCliOption *
dv_cli_complete_option(const DvCliCommand *cmd, const char *word)
{
    if (cmd == NULL || cmd->options == NULL || !g_str_has_prefix(word, "--"))
        return NULL;
    for (const DvCliOption *o = cmd->options; o->name != NULL; o++)
        if (g_strcmp0(o->name, word + 2) == 0)
            return o;
    return NULL;
}

static gboolean
dv_cli_option_takes_value(const DvCliOption *o)
{
    switch (o->type) {
    case DV_CLI_OPT_FLAG:
    case DV_CLI_OPT_FLAG_FALSE:
    case DV_CLI_OPT_FLAG_NULL:
    case DV_CLI_OPT_SECRET_STDIN:
    case DV_CLI_OPT_REFUSED:
        return FALSE;
    default:
        return TRUE;
    }
}

/* The words of @cmd: noun words then the verb. */
static GStrv
dv_cli_complete_command_words(const DvCliCommand *cmd)
{
    g_autofree char *all =
        cmd->verb != NULL ? g_strconcat(cmd->noun, " ", cmd->verb, NULL) : g_strdup(cmd->noun);
    return g_strsplit(all, " ", -1);
}

/* Names (or ids, for collections without names) of @collection starting
 * with @cur, from the server; nothing on any error. */
static void
dv_cli_complete_names(DvCli *cli, const char *collection, const char *prefix, const char *cur,
                      FILE *out)
{
    g_autoptr(GString) path = g_string_new(collection);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) node = NULL;
    JsonObject *obj;
    JsonArray *items;

    if (cli->client == NULL) {
        if (!dv_cli_client_setup(cli, &error))
            return;
        dv_cli_client_set_timeout(cli->client, DV_CLI_COMPLETE_TIMEOUT_S);
    }
    /* Without a credential the server can only answer 401. */
    if (!dv_cli_client_has_token(cli->client))
        return;
    dv_cli_query_add(path, "limit", DV_CLI_COMPLETE_LIMIT);
    if (cur[0] != '\0')
        dv_cli_query_add(path, "name_prefix", cur);
    node = dv_cli_client_request(cli->client, "GET", path->str, NULL, NULL, &error);
    if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node))
        return;
    obj = json_node_get_object(node);
    if (!json_object_has_member(obj, "items") || !JSON_NODE_HOLDS_ARRAY(json_object_get_member(obj, "items")))
        return;
    items = json_object_get_array_member(obj, "items");
    for (guint i = 0; i < json_array_get_length(items); i++) {
        JsonNode *item = json_array_get_element(items, i);
        JsonObject *o = JSON_NODE_HOLDS_OBJECT(item) ? json_node_get_object(item) : NULL;
        const char *name = o != NULL ? dv_json_get_string(o, "name", NULL) : NULL;
        if (name == NULL && o != NULL)
            name = dv_json_get_string(o, "id", NULL);
        /* A name with a newline would split into two candidates. */
        if (name != NULL && strchr(name, '\n') == NULL)
            dv_cli_complete_print_value(out, prefix, name, cur);
    }
}

/* The collection positional @index of @cmd names: the part of the path
 * before "{index}" (with the earlier positionals put in), else the
 * argument's name. */
static char *
dv_cli_complete_positional_collection(const DvCliCommand *cmd, GPtrArray *positional, guint index)
{
    g_auto(GStrv) names = g_strsplit(cmd->args != NULL ? cmd->args : "", " ", -1);
    g_autofree char *mark = g_strdup_printf("/{%u}", index);
    const char *at = cmd->path != NULL ? strstr(cmd->path, mark) : NULL;

    if (at != NULL && at != cmd->path) {
        g_autofree char *prefix = g_strndup(cmd->path, at - cmd->path);
        g_ptr_array_add(positional, NULL);
        g_autofree char *expanded = dv_cli_path_expand(prefix, (const char *const *)positional->pdata, TRUE);
        g_ptr_array_remove_index(positional, positional->len - 1);
        /* Only a plain collection ("/vms", "/vms/x/snapshots") lists. */
        if (strchr(expanded, '?') == NULL)
            return g_steal_pointer(&expanded);
    }
    if (index < g_strv_length(names))
        return g_strdup(dv_cli_complete_collection_for(names[index]));
    return NULL;
}

static int dv_cli_complete_words(DvCli *cli, int argc, char **argv);

/* The values of option @name (with its dashes: "--host", "-o") of @cmd
 * that start with @cur, each after @prefix.  FALSE when @name is not an
 * option that takes a value. */
static gboolean
dv_cli_complete_values(DvCli *cli, const DvCliCommand *cmd, const char *name, const char *prefix,
                       const char *cur, FILE *out)
{
    const DvCliGlobalOption *g = dv_cli_complete_global(name);
    const DvCliOption *o = dv_cli_complete_option(cmd, name);

    if (g != NULL && g->metavar != NULL) {
        if (g->choices != NULL)
            dv_cli_complete_choices(out, prefix, g->choices, cur);
        return TRUE;
    }
    if (o != NULL && dv_cli_option_takes_value(o)) {
        const char *collection =
            o->resolve != NULL ? o->resolve : dv_cli_complete_collection_for(o->name);
        if (o->type == DV_CLI_OPT_CHOICE)
            dv_cli_complete_choices(out, prefix, o->metavar, cur);
        else if (o->type == DV_CLI_OPT_STRING && collection != NULL)
            dv_cli_complete_names(cli, collection, prefix, cur, out);
        return TRUE;
    }
    return FALSE;
}

int
dv_cli_complete(DvCli *cli, int argc, char **argv)
{
    FILE *devnull = fopen("/dev/null", "w");
    int ret;

    if (devnull == NULL)
        return DV_EXIT_OK;
    cli->err = devnull; /* config warnings would garble the prompt */
    ret = dv_cli_complete_words(cli, argc, argv);
    fflush(cli->out);
    cli->err = NULL;
    fclose(devnull);
    return ret;
}

static int
dv_cli_complete_words(DvCli *cli, int argc, char **argv)
{
    FILE *out = cli->out;
    g_autoptr(GPtrArray) words = g_ptr_array_new(); /* command words and positionals */
    g_autoptr(GPtrArray) positional = g_ptr_array_new();
    const char *cur = argc > 0 ? argv[argc - 1] : "";
    const char *prev = argc > 1 ? argv[argc - 2] : NULL;
    const DvCliCommand *cmd = NULL;
    guint n_tables = 0;
    const DvCliCommand *const *tables = dv_cli_command_tables(&n_tables);
    guint used = 0;

    /* The words before the cursor: global options taken out (their
     * values kept for the look-ups), then command options with theirs. */
    for (int i = 0; i < argc - 1; i++) {
        const char *eq = g_str_has_prefix(argv[i], "--") ? strchr(argv[i], '=') : NULL;
        g_autofree char *name = eq != NULL ? g_strndup(argv[i], eq - argv[i]) : g_strdup(argv[i]);
        const DvCliGlobalOption *g = dv_cli_complete_global(name);
        const char *value = NULL;
        int taken = 0;

        /* --server URL, --server=URL, or bash's --server = URL. */
        if (g != NULL && g->metavar != NULL) {
            if (eq != NULL)
                value = eq + 1;
            else if (i + 2 < argc - 1 && g_strcmp0(argv[i + 1], "=") == 0)
                value = argv[i + 2], taken = 2;
            else if (i + 1 < argc - 1)
                value = argv[i + 1], taken = 1;
        }
        if (value != NULL) {
            if (g_strcmp0(g->name, "--server") == 0) {
                g_free(cli->server_opt);
                cli->server_opt = g_strdup(value);
            } else if (g_strcmp0(g->name, "--token") == 0) {
                if (cli->token_opt != NULL)
                    dv_secret_str_free(cli->token_opt);
                cli->token_opt = g_strdup(value);
            }
            i += taken;
            continue;
        }
        if (g_strcmp0(argv[i], "--insecure") == 0)
            cli->insecure = TRUE;
        if (argv[i][0] == '-') {
            const DvCliOption *o = dv_cli_complete_option(cmd, argv[i]);
            /* bash's "--opt" "=" "value" is one option with its value. */
            if (i + 2 < argc - 1 && g_strcmp0(argv[i + 1], "=") == 0)
                i += 2;
            else if (o != NULL && dv_cli_option_takes_value(o) && strchr(argv[i], '=') == NULL)
                i++;
            continue;
        }
        g_ptr_array_add(words, argv[i]);
        if (cmd == NULL) {
            /* Longest command whose words are all given so far. */
            for (guint t = 0; t < n_tables; t++) {
                for (const DvCliCommand *c = tables[t]; c->noun != NULL; c++) {
                    g_auto(GStrv) cw = dv_cli_complete_command_words(c);
                    guint n = g_strv_length(cw);
                    gboolean match = n == words->len;
                    for (guint k = 0; match && k < n; k++)
                        match = g_strcmp0(cw[k], g_ptr_array_index(words, k)) == 0;
                    if (match && n > used) {
                        cmd = c;
                        used = n;
                    }
                }
            }
        } else {
            g_ptr_array_add(positional, argv[i]);
        }
    }

    /* A value in the same word: "--host=k" completes to "--host=kvm-a"
     * (zsh, and bash without '=' in COMP_WORDBREAKS). */
    if (g_str_has_prefix(cur, "--") && strchr(cur, '=') != NULL) {
        g_autofree char *name = g_strndup(cur, strchr(cur, '=') - cur);
        g_autofree char *prefix = g_strconcat(name, "=", NULL);
        dv_cli_complete_values(cli, cmd, name, prefix, strchr(cur, '=') + 1, out);
        return DV_EXIT_OK;
    }
    /* bash's readline splits "--host=k" at '=' (COMP_WORDBREAKS): the words
     * are "--host" "=" "k", and only "k" (or nothing, on "=") is replaced. */
    if (g_strcmp0(cur, "=") == 0 && prev != NULL && g_str_has_prefix(prev, "--")) {
        dv_cli_complete_values(cli, cmd, prev, "", "", out);
        return DV_EXIT_OK;
    }
    if (g_strcmp0(prev, "=") == 0 && argc > 2 && g_str_has_prefix(argv[argc - 3], "--")) {
        dv_cli_complete_values(cli, cmd, argv[argc - 3], "", cur, out);
        return DV_EXIT_OK;
    }
    /* A value for the option before the cursor. */
    if (prev != NULL && prev[0] == '-' && dv_cli_complete_values(cli, cmd, prev, "", cur, out))
        return DV_EXIT_OK;

    if (cur[0] == '-') {
        if (cmd != NULL && cmd->options != NULL) {
            for (const DvCliOption *o = cmd->options; o->name != NULL; o++) {
                g_autofree char *name = g_strconcat("--", o->name, NULL);
                if (o->type != DV_CLI_OPT_REFUSED)
                    dv_cli_complete_print(out, name, cur);
            }
        }
        for (gsize i = 0; i < G_N_ELEMENTS(dv_cli_global_options); i++)
            dv_cli_complete_print(out, dv_cli_global_options[i].name, cur);
        return DV_EXIT_OK;
    }

    if (cmd != NULL) {
        g_autofree char *collection = dv_cli_complete_positional_collection(cmd, positional, positional->len);
        if (collection != NULL)
            dv_cli_complete_names(cli, collection, "", cur, out);
        return DV_EXIT_OK;
    }

    /* The next word of every command the given words begin. */
    {
        g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(GPtrArray) next = g_ptr_array_new_with_free_func(g_free);
        for (guint t = 0; t < n_tables; t++) {
            for (const DvCliCommand *c = tables[t]; c->noun != NULL; c++) {
                g_auto(GStrv) cw = dv_cli_complete_command_words(c);
                guint n = g_strv_length(cw);
                gboolean match = n > words->len;
                for (guint k = 0; match && k < words->len; k++)
                    match = g_strcmp0(cw[k], g_ptr_array_index(words, k)) == 0;
                if (!match || g_hash_table_contains(seen, cw[words->len]))
                    continue;
                g_ptr_array_add(next, g_strdup(cw[words->len]));
                g_hash_table_add(seen, g_ptr_array_index(next, next->len - 1));
            }
        }
        for (guint i = 0; i < next->len; i++)
            dv_cli_complete_print(out, g_ptr_array_index(next, i), cur);
    }
    return DV_EXIT_OK;
}

static const char *
dv_cli_opt_type_to_string(DvCliOptType type)
{
    switch (type) {
    case DV_CLI_OPT_STRING:
        return "string";
    case DV_CLI_OPT_INT:
        return "int";
    case DV_CLI_OPT_CHOICE:
        return "choice";
    case DV_CLI_OPT_LIST:
        return "list";
    case DV_CLI_OPT_FLAG:
    case DV_CLI_OPT_FLAG_FALSE:
    case DV_CLI_OPT_FLAG_NULL:
    case DV_CLI_OPT_SECRET_STDIN:
        return "flag";
    case DV_CLI_OPT_REFUSED:
        return "refused";
    case DV_CLI_OPT_SECRET_FILE:
    case DV_CLI_OPT_TEXT_FILE:
        return "file";
    case DV_CLI_OPT_SIZE:
    case DV_CLI_OPT_SIZE_MIB:
        return "size";
    default:
        return "string";
    }
}

int
dv_cli_dump_commands(FILE *out)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = NULL;
    g_autofree char *text = NULL;
    guint n_tables = 0;
    const DvCliCommand *const *tables = dv_cli_command_tables(&n_tables);

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "global_options");
    json_builder_begin_array(b);
    for (gsize i = 0; i < G_N_ELEMENTS(dv_cli_global_options); i++) {
        const DvCliGlobalOption *g = &dv_cli_global_options[i];
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, g->name);
        json_builder_set_member_name(b, "metavar");
        json_builder_add_string_value(b, g->choices != NULL ? g->choices : g->metavar);
        json_builder_set_member_name(b, "help");
        json_builder_add_string_value(b, g->help);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_set_member_name(b, "commands");
    json_builder_begin_array(b);
    for (guint t = 0; t < n_tables; t++) {
        for (const DvCliCommand *c = tables[t]; c->noun != NULL; c++) {
            json_builder_begin_object(b);
            json_builder_set_member_name(b, "noun");
            json_builder_add_string_value(b, c->noun);
            json_builder_set_member_name(b, "verb");
            json_builder_add_string_value(b, c->verb);
            json_builder_set_member_name(b, "args");
            json_builder_add_string_value(b, c->args != NULL ? c->args : "");
            json_builder_set_member_name(b, "summary");
            json_builder_add_string_value(b, c->summary);
            json_builder_set_member_name(b, "options");
            json_builder_begin_array(b);
            for (const DvCliOption *o = c->options; o != NULL && o->name != NULL; o++) {
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "name");
                json_builder_add_string_value(b, o->name);
                json_builder_set_member_name(b, "type");
                json_builder_add_string_value(b, dv_cli_opt_type_to_string(o->type));
                json_builder_set_member_name(b, "metavar");
                json_builder_add_string_value(b, o->metavar);
                json_builder_set_member_name(b, "help");
                json_builder_add_string_value(b, o->help);
                json_builder_set_member_name(b, "required");
                json_builder_add_boolean_value(b, o->required);
                json_builder_end_object(b);
            }
            json_builder_end_array(b);
            json_builder_end_object(b);
        }
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, TRUE);
    text = json_generator_to_data(gen, NULL);
    fprintf(out, "%s\n", text);
    return DV_EXIT_OK;
}
