#define G_LOG_DOMAIN "DvCli"

#include "dv-cli.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dv-error.h"
#include "dv-json.h"

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

static void
dv_cli_secret_member_free(DvCliSecretMember *member)
{
    g_free(member->field);
    dv_secret_free(member->value);
    g_free(member);
}

void
dv_cli_args_free(DvCliArgs *args)
{
    if (args == NULL)
        return;
    g_ptr_array_unref(args->positional);
    g_ptr_array_unref(args->given);
    g_ptr_array_unref(args->secrets);
    g_ptr_array_unref(args->warnings);
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

gboolean
dv_cli_parse_size(const char *what, const char *str, gint64 *ret_bytes, GError **error)
{
    static const struct {
        const char *suffix;
        guint shift;
    } units[] = {
        { "KiB", 10 }, { "MiB", 20 }, { "GiB", 30 }, { "TiB", 40 },
        { "K", 10 },   { "M", 20 },   { "G", 30 },   { "T", 40 },
    };
    const gint64 max = G_GINT64_CONSTANT(64) << 40;
    g_autofree char *digits = g_strdup(str);
    guint shift = 0;
    gint64 n = 0;

    for (gsize i = 0; i < G_N_ELEMENTS(units); i++) {
        if (g_str_has_suffix(digits, units[i].suffix) && strlen(digits) > strlen(units[i].suffix)) {
            digits[strlen(digits) - strlen(units[i].suffix)] = '\0';
            shift = units[i].shift;
            break;
        }
    }
    if (!g_ascii_string_to_signed(digits, 10, 1, max >> shift, &n, NULL)) {
        dv_set_field_error(
            error, DV_ERROR_INVALID_ARGUMENT, what,
            "%s: expected a size such as 20G, 512M or a number of bytes, from 1 byte "
            "to 64T, got '%s'",
            what, str);
        return FALSE;
    }
    *ret_bytes = n << shift;
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
    guint n;

    if (cmd->args == NULL || cmd->args[0] == '\0')
        return 0;
    names = g_strsplit(cmd->args, " ", -1);
    n = g_strv_length(names);
    /* A last "[NAME...]" takes any number of words (none included). */
    if (n > 0 && g_str_has_suffix(names[n - 1], "...]"))
        n--;
    return n;
}

/* Words a "[NAME...]" argument may take. */
#define DV_CLI_MAX_VARIADIC 10000

static gboolean
dv_cli_command_variadic(const DvCliCommand *cmd)
{
    return cmd->args != NULL && g_str_has_suffix(cmd->args, "...]");
}

static gboolean
dv_cli_option_is_flag(const DvCliOption *o)
{
    return o->type == DV_CLI_OPT_FLAG || o->type == DV_CLI_OPT_FLAG_FALSE || o->type == DV_CLI_OPT_FLAG_NULL ||
           o->type == DV_CLI_OPT_SECRET_STDIN;
}

gboolean
dv_cli_command_takes_secrets(const DvCliCommand *cmd)
{
    for (const DvCliOption *o = cmd->options; o != NULL && o->name != NULL; o++)
        if (o->type == DV_CLI_OPT_SECRET_FILE || o->type == DV_CLI_OPT_SECRET_STDIN ||
            o->type == DV_CLI_OPT_REFUSED)
            return TRUE;
    return FALSE;
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
    args->secrets = g_ptr_array_new_with_free_func((GDestroyNotify)dv_cli_secret_member_free);
    args->warnings = g_ptr_array_new_with_free_func(g_free);

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
    if (args->positional->len > n_args && dv_cli_command_variadic(cmd) &&
        args->positional->len <= n_args + DV_CLI_MAX_VARIADIC) {
        n_args = args->positional->len;
    } else if (args->positional->len > n_args) {
        /* A stray word after a secret option may be the secret itself
         * ("--password-stdin hunter2"): do not repeat it. */
        if (dv_cli_command_takes_secrets(cmd))
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL,
                               "unexpected extra argument (not repeated here: this command takes secrets, "
                               "which are read from files or standard input, never from arguments)");
        else
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
        case DV_CLI_OPT_SECRET_FILE:
        case DV_CLI_OPT_SECRET_STDIN:
        case DV_CLI_OPT_TEXT_FILE:
            /* dv_cli_args_load_inputs() reads them. */
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

/* --- secrets and files --------------------------------------------------- */

DvSecret *
dv_cli_secret_read_fd(int fd, const char *what, const char *field, GError **error)
{
    /* Room for the largest secret, its "\r\n" and one byte more, which
     * tells a secret that is too large. */
    const gsize cap = DV_CLI_MAX_SECRET + 3;
    g_autoptr(DvSecret) buf = dv_secret_new(cap);
    guint8 *data = dv_secret_get_data_mutable(buf);
    gsize len = 0;

    /* read(2) straight into guarded memory: no stdio buffer keeps a copy. */
    while (len < cap) {
        ssize_t n = read(fd, data + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "cannot read %s: %s", what,
                               g_strerror(errno));
            return NULL;
        }
        if (n == 0)
            break;
        len += (gsize)n;
    }
    /* A file written by an editor or `echo` ends with one newline that is
     * not part of the secret; anything before it is. */
    if (len > 0 && data[len - 1] == '\n') {
        len--;
        if (len > 0 && data[len - 1] == '\r')
            len--;
    }
    if (len > DV_CLI_MAX_SECRET) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "%s: a secret is at most %d bytes", what,
                           DV_CLI_MAX_SECRET);
        return NULL;
    }
    if (len == 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "%s is empty", what);
        return NULL;
    }
    if (memchr(data, '\0', len) != NULL || !g_utf8_validate_len((const char *)data, len, NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "%s is not UTF-8 text without NUL bytes, which is all a JSON string can carry", what);
        return NULL;
    }
    return dv_secret_new_from_data(data, len);
}

DvSecret *
dv_cli_secret_read_file(const char *path, const char *what, const char *field, char **ret_warning, GError **error)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    g_autoptr(DvSecret) secret = NULL;
    g_autofree char *warning = NULL;
    struct stat st = { 0 };

    if (fd < 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "cannot open %s: %s", what, g_strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0)
        memset(&st, 0, sizeof st);
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "%s is a directory", what);
        return NULL;
    }
    /* Pipes and process substitutions (<(pass show x)) have no such mode. */
    if (S_ISREG(st.st_mode) && (st.st_mode & 0044) != 0)
        warning = g_strdup_printf("warning: %s can be read by other users; run 'chmod 600 %s'", what, path);
    secret = dv_cli_secret_read_fd(fd, what, field, error);
    close(fd);
    if (secret == NULL)
        return NULL;
    if (ret_warning != NULL)
        *ret_warning = g_steal_pointer(&warning);
    return g_steal_pointer(&secret);
}

/* A file whose content is a plain member (user_data): as is, at most @max
 * bytes. */
static char *
dv_cli_text_read_file(const char *path, const char *what, const char *field, gsize max, GError **error)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    g_autoptr(GByteArray) buf = g_byte_array_new();
    guint8 chunk[8192];

    if (fd < 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "cannot open %s: %s", what, g_strerror(errno));
        return NULL;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            close(fd);
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "cannot read %s: %s", what,
                               g_strerror(saved));
            return NULL;
        }
        if (n == 0)
            break;
        if (buf->len + (gsize)n > max) {
            close(fd);
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "%s: at most %" G_GSIZE_FORMAT " bytes",
                               what, max);
            return NULL;
        }
        g_byte_array_append(buf, chunk, (guint)n);
    }
    close(fd);
    if (memchr(buf->data, '\0', buf->len) != NULL || !g_utf8_validate_len((const char *)buf->data, buf->len, NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "%s is not UTF-8 text without NUL bytes", what);
        return NULL;
    }
    return g_strndup((const char *)buf->data, buf->len);
}

static gboolean
dv_cli_args_field_taken(DvCliArgs *args, JsonObject *body, const char *field)
{
    if (json_object_has_member(body, field))
        return TRUE;
    for (guint i = 0; i < args->secrets->len; i++)
        if (g_strcmp0(((DvCliSecretMember *)g_ptr_array_index(args->secrets, i))->field, field) == 0)
            return TRUE;
    return FALSE;
}

gboolean
dv_cli_args_load_inputs(DvCliArgs *args, JsonObject *body, GError **error)
{
    const DvCliOption *stdin_option = NULL;

    for (guint i = 0; i < args->given->len; i++) {
        DvCliArg *arg = g_ptr_array_index(args->given, i);
        const DvCliOption *o = arg->option;
        if (o->type != DV_CLI_OPT_SECRET_STDIN)
            continue;
        if (stdin_option != NULL) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, o->name,
                               "--%s and --%s both read standard input: give only one", stdin_option->name,
                               o->name);
            return FALSE;
        }
        stdin_option = o;
    }

    for (guint i = 0; i < args->given->len; i++) {
        DvCliArg *arg = g_ptr_array_index(args->given, i);
        const DvCliOption *o = arg->option;
        g_autoptr(DvSecret) secret = NULL;
        g_autofree char *what = NULL;
        g_autofree char *warning = NULL;
        DvCliSecretMember *member;

        if (o->type != DV_CLI_OPT_SECRET_FILE && o->type != DV_CLI_OPT_SECRET_STDIN &&
            o->type != DV_CLI_OPT_TEXT_FILE)
            continue;
        if (dv_cli_args_field_taken(args, body, o->field)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, o->name, "--%s: %s is given twice", o->name,
                               o->field);
            return FALSE;
        }
        if (o->type == DV_CLI_OPT_TEXT_FILE) {
            g_autofree char *text = NULL;
            what = g_strdup_printf("--%s '%s'", o->name, arg->value);
            text = dv_cli_text_read_file(arg->value, what, o->name, (gsize)o->max, error);
            if (text == NULL)
                return FALSE;
            json_object_set_string_member(body, o->field, text);
            continue;
        }
        if (o->type == DV_CLI_OPT_SECRET_FILE) {
            what = g_strdup_printf("--%s '%s'", o->name, arg->value);
            secret = dv_cli_secret_read_file(arg->value, what, o->name, &warning, error);
        } else if (isatty(STDIN_FILENO)) {
            /* Typed at a terminal it would be echoed; the end is Ctrl-D. */
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, o->name,
                               "--%s: standard input is a terminal; pipe the secret in or use a file", o->name);
            return FALSE;
        } else {
            what = g_strdup_printf("standard input (--%s)", o->name);
            secret = dv_cli_secret_read_fd(STDIN_FILENO, what, o->name, error);
        }
        if (secret == NULL)
            return FALSE;
        if (warning != NULL)
            g_ptr_array_add(args->warnings, g_steal_pointer(&warning));
        member = g_new0(DvCliSecretMember, 1);
        member->field = g_strdup(o->field);
        member->value = g_steal_pointer(&secret);
        g_ptr_array_add(args->secrets, member);
    }
    return TRUE;
}

/* The letter of @c's two-character JSON escape ('n' for a newline), or 0. */
static char
dv_cli_json_short_escape(guint8 c)
{
    switch (c) {
    case '\n':
        return 'n';
    case '\r':
        return 'r';
    case '\t':
        return 't';
    case '\b':
        return 'b';
    case '\f':
        return 'f';
    default:
        return 0;
    }
}

/* The length of @s (@len bytes) as a JSON string body, without quotes. */
static gsize
dv_cli_json_escaped_len(const guint8 *s, gsize len)
{
    gsize n = 0;

    for (gsize i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\' || dv_cli_json_short_escape(s[i]) != 0)
            n += 2;
        else if (s[i] < 0x20)
            n += 6;
        else
            n++;
    }
    return n;
}

static gsize
dv_cli_json_escape_into(guint8 *out, const guint8 *s, gsize len)
{
    static const char hex[] = "0123456789abcdef";
    gsize n = 0;

    out[n++] = '"';
    for (gsize i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            out[n++] = '\\';
            out[n++] = s[i];
        } else if (dv_cli_json_short_escape(s[i]) != 0) {
            out[n++] = '\\';
            out[n++] = (guint8)dv_cli_json_short_escape(s[i]);
        } else if (s[i] < 0x20) {
            out[n++] = '\\';
            out[n++] = 'u';
            out[n++] = '0';
            out[n++] = '0';
            out[n++] = (guint8)hex[s[i] >> 4];
            out[n++] = (guint8)hex[s[i] & 0xf];
        } else {
            out[n++] = s[i];
        }
    }
    out[n++] = '"';
    return n;
}

DvSecret *
dv_cli_args_body_new(DvCliArgs *args, JsonObject *body)
{
    g_autofree char *plain = dv_json_object_to_string(body, FALSE);
    gsize plain_len = strlen(plain);
    gboolean comma = json_object_get_size(body) > 0;
    g_autoptr(DvSecret) out = NULL;
    guint8 *p;
    gsize total;
    gsize pos;

    g_return_val_if_fail(plain_len >= 2 && plain[plain_len - 1] == '}', NULL);
    /* Sized exactly first, then written once: no buffer that grows and
     * leaves a copy of a secret behind. */
    total = plain_len;
    for (guint i = 0; i < args->secrets->len; i++) {
        DvCliSecretMember *m = g_ptr_array_index(args->secrets, i);
        total += (comma || i > 0 ? 1 : 0) + 2 + dv_cli_json_escaped_len((const guint8 *)m->field, strlen(m->field)) +
                 1 + 2 + dv_cli_json_escaped_len(dv_secret_get_data(m->value), dv_secret_get_len(m->value));
    }
    out = dv_secret_new(total);
    p = dv_secret_get_data_mutable(out);
    memcpy(p, plain, plain_len - 1);
    pos = plain_len - 1;
    for (guint i = 0; i < args->secrets->len; i++) {
        DvCliSecretMember *m = g_ptr_array_index(args->secrets, i);
        if (comma || i > 0)
            p[pos++] = ',';
        pos += dv_cli_json_escape_into(p + pos, (const guint8 *)m->field, strlen(m->field));
        p[pos++] = ':';
        pos += dv_cli_json_escape_into(p + pos, dv_secret_get_data(m->value), dv_secret_get_len(m->value));
    }
    p[pos++] = '}';
    g_assert(pos == total);
    return g_steal_pointer(&out);
}
