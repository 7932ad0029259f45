#define G_LOG_DOMAIN "DvCli"

#include "dv-cli.h"

#include <string.h>

#include "dv-error.h"

/* Paging options every list command takes. */
static const DvCliOption dv_cli_paging_options[] = {
    { "limit", DV_CLI_OPT_INT, "N", NULL, "limit", NULL, 1, 500, "objects per page (1-500, server default 100)" },
    { "all", DV_CLI_OPT_FLAG, NULL, NULL, NULL, NULL, 0, 0, "follow next_cursor and show every page" },
    { NULL },
};

static void
dv_cli_arg_free(DvCliArg *arg)
{
    g_free(arg->value);
    g_free(arg);
}

void
dv_cli_args_free(DvCliArgs *args)
{
    if (args == NULL)
        return;
    g_ptr_array_unref(args->positional);
    g_ptr_array_unref(args->given);
    g_free(args);
}

gboolean
dv_cli_parse_int(const char *what, const char *str, gint64 min, gint64 max, gint64 *ret_value, GError **error)
{
    gint64 value;

    if (!g_ascii_string_to_signed(str, 10, min, max, &value, NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, what,
                           "%s: expected a whole number from %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT
                           ", got '%s'",
                           what, min, max, str);
        return FALSE;
    }
    *ret_value = value;
    return TRUE;
}

static const DvCliOption *
dv_cli_option_find(const DvCliCommand *cmd, const char *name)
{
    for (const DvCliOption *o = cmd->options; o != NULL && o->name != NULL; o++)
        if (g_strcmp0(o->name, name) == 0)
            return o;
    if (cmd->run == dv_cli_run_list) {
        for (const DvCliOption *o = dv_cli_paging_options; o->name != NULL; o++)
            if (g_strcmp0(o->name, name) == 0)
                return o;
    }
    return NULL;
}

static guint
dv_cli_command_n_args(const DvCliCommand *cmd)
{
    g_auto(GStrv) names = NULL;

    if (cmd->args == NULL || cmd->args[0] == '\0')
        return 0;
    names = g_strsplit(cmd->args, " ", -1);
    return g_strv_length(names);
}

static gboolean
dv_cli_option_is_flag(const DvCliOption *o)
{
    return o->type == DV_CLI_OPT_FLAG || o->type == DV_CLI_OPT_FLAG_FALSE || o->type == DV_CLI_OPT_FLAG_NULL;
}

static gboolean
dv_cli_args_add_option(DvCliArgs *args, const DvCliOption *o, const char *value, GError **error)
{
    g_autoptr(GPtrArray) unused = NULL;
    DvCliArg *arg;
    gint64 number = 0;

    if (o->type == DV_CLI_OPT_REFUSED) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, o->name, "--%s is not accepted: %s", o->name, o->help);
        return FALSE;
    }
    if (o->type != DV_CLI_OPT_LIST && dv_cli_args_has(args, o->name)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, o->name, "--%s given more than once", o->name);
        return FALSE;
    }
    if (o->type == DV_CLI_OPT_INT) {
        g_autofree char *what = g_strconcat("--", o->name, NULL);
        if (!dv_cli_parse_int(what, value, o->min, o->max, &number, error))
            return FALSE;
    } else if (o->type == DV_CLI_OPT_CHOICE) {
        g_auto(GStrv) choices = g_strsplit(o->metavar, "|", -1);
        if (!g_strv_contains((const char *const *)choices, value)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, o->name, "--%s: must be one of %s, got '%s'",
                               o->name, o->metavar, value);
            return FALSE;
        }
    } else if (value != NULL && value[0] == '\0') {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, o->name, "--%s: the value must not be empty", o->name);
        return FALSE;
    }
    arg = g_new0(DvCliArg, 1);
    arg->option = o;
    arg->value = g_strdup(value);
    arg->number = number;
    g_ptr_array_add(args->given, arg);
    return TRUE;
}

DvCliArgs *
dv_cli_args_parse(const DvCliCommand *cmd, int argc, char **argv, GError **error)
{
    g_autoptr(DvCliArgs) args = g_new0(DvCliArgs, 1);
    gboolean options_done = FALSE;
    guint n_args = dv_cli_command_n_args(cmd);

    args->command = cmd;
    args->positional = g_ptr_array_new_with_free_func(g_free);
    args->given = g_ptr_array_new_with_free_func((GDestroyNotify)dv_cli_arg_free);

    for (int i = 0; i < argc; i++) {
        const char *word = argv[i];
        g_autofree char *name = NULL;
        const char *value = NULL;
        const char *eq;
        const DvCliOption *o;

        if (options_done || word[0] != '-' || word[1] == '\0') {
            g_ptr_array_add(args->positional, g_strdup(word));
            continue;
        }
        if (g_strcmp0(word, "--") == 0) {
            options_done = TRUE;
            continue;
        }
        if (word[1] != '-') {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL, "unknown option '%s'", word);
            return NULL;
        }
        eq = strchr(word, '=');
        name = eq != NULL ? g_strndup(word + 2, eq - word - 2) : g_strdup(word + 2);
        o = dv_cli_option_find(cmd, name);
        if (o == NULL) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL, "unknown option '--%s'", name);
            return NULL;
        }
        if (o->type == DV_CLI_OPT_REFUSED) {
            value = NULL;
        } else if (dv_cli_option_is_flag(o)) {
            if (eq != NULL) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, o->name, "--%s takes no value", o->name);
                return NULL;
            }
        } else if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, o->name, "--%s needs a value (%s)", o->name,
                               o->metavar);
            return NULL;
        }
        if (!dv_cli_args_add_option(args, o, value, error))
            return NULL;
    }

    if (args->positional->len < n_args) {
        g_auto(GStrv) names = g_strsplit(cmd->args, " ", -1);
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, names[args->positional->len], "missing argument %s",
                           names[args->positional->len]);
        return NULL;
    }
    if (args->positional->len > n_args) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL, "unexpected argument '%s'",
                           (const char *)g_ptr_array_index(args->positional, n_args));
        return NULL;
    }
    for (guint i = 0; i < n_args; i++) {
        if (((const char *)g_ptr_array_index(args->positional, i))[0] == '\0') {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL, "argument %u must not be empty", i + 1);
            return NULL;
        }
    }
    for (const DvCliOption *o = cmd->options; o != NULL && o->name != NULL; o++) {
        if (o->required && !dv_cli_args_has(args, o->name)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, o->name, "missing option --%s %s", o->name,
                               o->metavar);
            return NULL;
        }
    }
    /* A NULL after the last one lets the array double as a strv. */
    g_ptr_array_add(args->positional, NULL);
    return g_steal_pointer(&args);
}

const char *
dv_cli_args_get_positional(DvCliArgs *args, guint index)
{
    return index + 1 < args->positional->len ? g_ptr_array_index(args->positional, index) : NULL;
}

static DvCliArg *
dv_cli_args_find(DvCliArgs *args, const char *name)
{
    DvCliArg *found = NULL;

    for (guint i = 0; i < args->given->len; i++) {
        DvCliArg *arg = g_ptr_array_index(args->given, i);
        if (g_strcmp0(arg->option->name, name) == 0)
            found = arg;
    }
    return found;
}

gboolean
dv_cli_args_has(DvCliArgs *args, const char *name)
{
    return dv_cli_args_find(args, name) != NULL;
}

const char *
dv_cli_args_get_string(DvCliArgs *args, const char *name)
{
    DvCliArg *arg = dv_cli_args_find(args, name);
    return arg != NULL ? arg->value : NULL;
}

gint64
dv_cli_args_get_int(DvCliArgs *args, const char *name, gint64 def)
{
    DvCliArg *arg = dv_cli_args_find(args, name);
    return arg != NULL ? arg->number : def;
}

JsonObject *
dv_cli_args_to_body(DvCliArgs *args)
{
    JsonObject *body = json_object_new();

    for (guint i = 0; i < args->given->len; i++) {
        DvCliArg *arg = g_ptr_array_index(args->given, i);
        const DvCliOption *o = arg->option;
        if (o->field == NULL)
            continue;
        switch (o->type) {
        case DV_CLI_OPT_STRING:
        case DV_CLI_OPT_CHOICE:
            json_object_set_string_member(body, o->field, arg->value);
            break;
        case DV_CLI_OPT_INT:
            json_object_set_int_member(body, o->field, arg->number);
            break;
        case DV_CLI_OPT_FLAG:
            json_object_set_boolean_member(body, o->field, TRUE);
            break;
        case DV_CLI_OPT_FLAG_FALSE:
            json_object_set_boolean_member(body, o->field, FALSE);
            break;
        case DV_CLI_OPT_FLAG_NULL:
            json_object_set_null_member(body, o->field);
            break;
        case DV_CLI_OPT_LIST:
        case DV_CLI_OPT_REFUSED:
            break;
        }
    }
    return body;
}

gboolean
dv_cli_prepare_name(DvCliArgs *args, JsonObject *body, GError **error)
{
    json_object_set_string_member(body, "name", dv_cli_args_get_positional(args, 0));
    return TRUE;
}

void
dv_cli_args_add_list(DvCliArgs *args, const char *name, JsonObject *body, const char *field, const char *member)
{
    g_autoptr(JsonArray) arr = json_array_new();

    for (guint i = 0; i < args->given->len; i++) {
        DvCliArg *arg = g_ptr_array_index(args->given, i);
        JsonObject *el;
        if (g_strcmp0(arg->option->name, name) != 0)
            continue;
        if (member == NULL) {
            json_array_add_string_element(arr, arg->value);
            continue;
        }
        el = json_object_new();
        json_object_set_string_member(el, member, arg->value);
        json_array_add_object_element(arr, el);
    }
    if (json_array_get_length(arr) > 0)
        json_object_set_array_member(body, field, g_steal_pointer(&arr));
}

gboolean
dv_cli_args_require_together(DvCliArgs *args, const char *a, const char *b, GError **error)
{
    if (dv_cli_args_has(args, a) != dv_cli_args_has(args, b)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, dv_cli_args_has(args, a) ? b : a,
                           "--%s and --%s go together: give both or neither", a, b);
        return FALSE;
    }
    return TRUE;
}

gboolean
dv_cli_args_require_one_of(DvCliArgs *args, const char *a, const char *b, GError **error)
{
    if (dv_cli_args_has(args, a) == dv_cli_args_has(args, b)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, a, "give exactly one of --%s and --%s", a, b);
        return FALSE;
    }
    return TRUE;
}

JsonObject *
dv_cli_disk_spec_parse(const char *spec, GError **error)
{
    g_auto(GStrv) parts = g_strsplit(spec, ":", 4);
    g_autoptr(JsonObject) disk = json_object_new();
    gint64 size;
    guint n = g_strv_length(parts);

    if (n == 0 || n > 3) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "disk",
                           "--disk: expected SIZE_MIB[:POOL[:FORMAT]], got '%s'", spec);
        return NULL;
    }
    if (!dv_cli_parse_int("--disk size", parts[0], 1, 67108864, &size, error))
        return NULL;
    json_object_set_int_member(disk, "size_mib", size);
    if (n >= 2) {
        if (parts[1][0] == '\0') {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "disk", "--disk: empty pool name in '%s'", spec);
            return NULL;
        }
        json_object_set_string_member(disk, "pool", parts[1]);
    }
    if (n == 3) {
        if (parts[2][0] == '\0') {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "disk", "--disk: empty format in '%s'", spec);
            return NULL;
        }
        json_object_set_string_member(disk, "format", parts[2]);
    }
    return g_steal_pointer(&disk);
}

static void
dv_cli_usage_add_options(GString *out, const DvCliOption *options)
{
    for (const DvCliOption *o = options; o != NULL && o->name != NULL; o++) {
        g_autofree char *left = NULL;
        if (o->type == DV_CLI_OPT_REFUSED)
            continue;
        left = o->metavar != NULL && !dv_cli_option_is_flag(o) ? g_strdup_printf("--%s %s", o->name, o->metavar)
                                                               : g_strdup_printf("--%s", o->name);
        g_string_append_printf(out, "  %-32s %s%s\n", left, o->help != NULL ? o->help : "",
                               o->type == DV_CLI_OPT_LIST ? " (repeatable)" : "");
    }
}

char *
dv_cli_command_usage(const DvCliCommand *cmd)
{
    GString *out = g_string_new("usage: drover ");

    if (cmd->usage != NULL) {
        g_string_append(out, cmd->usage);
    } else {
        g_string_append(out, cmd->noun);
        if (cmd->verb != NULL)
            g_string_append_printf(out, " %s", cmd->verb);
        if (cmd->args != NULL && cmd->args[0] != '\0')
            g_string_append_printf(out, " %s", cmd->args);
        for (const DvCliOption *o = cmd->options; o != NULL && o->name != NULL; o++) {
            if (o->type == DV_CLI_OPT_REFUSED)
                continue;
            if (dv_cli_option_is_flag(o))
                g_string_append_printf(out, " [--%s]", o->name);
            else if (o->required)
                g_string_append_printf(out, " --%s %s", o->name, o->metavar);
            else
                g_string_append_printf(out, " [--%s %s]%s", o->name, o->metavar,
                                       o->type == DV_CLI_OPT_LIST ? "..." : "");
        }
        if (cmd->run == dv_cli_run_list)
            g_string_append(out, " [--limit N] [--all]");
    }
    g_string_append_printf(out, "\n\n%s\n", cmd->summary);
    if ((cmd->options != NULL && cmd->options[0].name != NULL) || cmd->run == dv_cli_run_list) {
        g_string_append(out, "\noptions:\n");
        dv_cli_usage_add_options(out, cmd->options);
        if (cmd->run == dv_cli_run_list)
            dv_cli_usage_add_options(out, dv_cli_paging_options);
    }
    return g_string_free(out, FALSE);
}
