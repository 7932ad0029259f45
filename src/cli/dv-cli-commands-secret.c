#define G_LOG_DOMAIN "DvCli"

/* drover run-as, guest-os-profile, setting: the objects that hold secrets
 * (docs/API.md, "Secrets").
 *
 * A secret is never taken from an argument (every user sees arguments in
 * ps, and they stay in the shell history): it comes from a file or from
 * standard input, is held in guarded memory and goes into a request body
 * built there (dv_cli_args_load_inputs(), dv_cli_args_body_new()).  The
 * server never sends one back; it describes each secret field instead,
 * which the output code shows as "set (k1)". */

#include "dv-cli.h"

#include <string.h>

#include "dv-error.h"
#include "dv-json.h"

#define DV_CLI_USER_DATA_MAX (64 * 1024)

#define DV_CLI_IN_PS_HELP \
    "a secret on the command line is visible to every user in 'ps' and stays in the shell history"

static const DvCliOption dv_cli_run_as_add_options[] = {
    { "username", DV_CLI_OPT_STRING, "U", "username", NULL, NULL, 0, 0, "user name libvirt authenticates as", TRUE },
    { "password-file", DV_CLI_OPT_SECRET_FILE, "F", "password", NULL, NULL, 0, 0,
      "read the password from F (all of it, less one trailing newline)" },
    { "password-stdin", DV_CLI_OPT_SECRET_STDIN, NULL, "password", NULL, NULL, 0, 0,
      "read the password from standard input (all of it, less one trailing newline)" },
    { "ssh-key-file", DV_CLI_OPT_SECRET_FILE, "F", "ssh_private_key", NULL, NULL, 0, 0,
      "read an SSH private key from F" },
    { "description", DV_CLI_OPT_STRING, "D", "description", NULL, NULL, 0, 0, "free text" },
    { "password", DV_CLI_OPT_REFUSED, NULL, NULL, NULL, NULL, 0, 0,
      DV_CLI_IN_PS_HELP "; use --password-file F or --password-stdin" },
    { NULL },
};

static const DvCliOption dv_cli_run_as_set_options[] = {
    { "username", DV_CLI_OPT_STRING, "U", "username", NULL, NULL, 0, 0, "user name libvirt authenticates as" },
    { "password-file", DV_CLI_OPT_SECRET_FILE, "F", "password", NULL, NULL, 0, 0,
      "enter a new password from F (all of it, less one trailing newline)" },
    { "password-stdin", DV_CLI_OPT_SECRET_STDIN, NULL, "password", NULL, NULL, 0, 0,
      "enter a new password from standard input" },
    { "ssh-key-file", DV_CLI_OPT_SECRET_FILE, "F", "ssh_private_key", NULL, NULL, 0, 0,
      "enter a new SSH private key from F" },
    { "description", DV_CLI_OPT_STRING, "D", "description", NULL, NULL, 0, 0, "free text" },
    { "password", DV_CLI_OPT_REFUSED, NULL, NULL, NULL, NULL, 0, 0,
      DV_CLI_IN_PS_HELP "; use --password-file F or --password-stdin" },
    { NULL },
};

/* Add and set take the same options. */
static const DvCliOption dv_cli_profile_options[] = {
    { "computer-name-pattern", DV_CLI_OPT_STRING, "P", "computer_name_pattern", NULL, NULL, 0, 0,
      "computer names, e.g. desk-### (1-15 characters)" },
    { "admin-user", DV_CLI_OPT_STRING, "U", "admin_username", NULL, NULL, 0, 0, "local administrator's name" },
    { "admin-password-file", DV_CLI_OPT_SECRET_FILE, "F", "admin_password", NULL, NULL, 0, 0,
      "read the administrator's password from F" },
    { "domain", DV_CLI_OPT_STRING, "DOMAIN", "domain", NULL, NULL, 0, 0, "domain to join" },
    { "join-user", DV_CLI_OPT_STRING, "U", "domain_join_user", NULL, NULL, 0, 0, "account that joins the domain" },
    { "join-password-file", DV_CLI_OPT_SECRET_FILE, "F", "domain_join_password", NULL, NULL, 0, 0,
      "read the domain join password from F" },
    { "join-run-as", DV_CLI_OPT_STRING, "ACCOUNT", "domain_join_run_as", NULL, NULL, 0, 0,
      "Run As account that joins the domain (instead of --join-user and a password)" },
    { "product-key-file", DV_CLI_OPT_SECRET_FILE, "F", "product_key", NULL, NULL, 0, 0,
      "read the product key from F" },
    { "time-zone", DV_CLI_OPT_STRING, "TZ", "time_zone", NULL, NULL, 0, 0, "time zone, e.g. Europe/Paris" },
    { "ssh-authorized-key", DV_CLI_OPT_LIST, "KEY", NULL, NULL, NULL, 0, 0, "a public key the guest accepts" },
    { "user-data-file", DV_CLI_OPT_TEXT_FILE, "F", "user_data", NULL, NULL, 0, DV_CLI_USER_DATA_MAX,
      "cloud-init user data, the content of F (at most 64 KiB)" },
    { "description", DV_CLI_OPT_STRING, "D", "description", NULL, NULL, 0, 0, "free text" },
    { "admin-password", DV_CLI_OPT_REFUSED, NULL, NULL, NULL, NULL, 0, 0,
      DV_CLI_IN_PS_HELP "; use --admin-password-file F" },
    { "join-password", DV_CLI_OPT_REFUSED, NULL, NULL, NULL, NULL, 0, 0,
      DV_CLI_IN_PS_HELP "; use --join-password-file F" },
    { "product-key", DV_CLI_OPT_REFUSED, NULL, NULL, NULL, NULL, 0, 0,
      DV_CLI_IN_PS_HELP "; use --product-key-file F" },
    { NULL },
};

static const DvCliOption dv_cli_setting_add_options[] = {
    { "value", DV_CLI_OPT_STRING, "V", "value", NULL, NULL, 0, 0, "the value (not with --encrypted)" },
    { "value-file", DV_CLI_OPT_SECRET_FILE, "F", "value", NULL, NULL, 0, 0,
      "read the value from F (all of it, less one trailing newline)" },
    { "value-stdin", DV_CLI_OPT_SECRET_STDIN, NULL, "value", NULL, NULL, 0, 0,
      "read the value from standard input" },
    { "encrypted", DV_CLI_OPT_FLAG, NULL, "encrypted", NULL, NULL, 0, 0,
      "the value is a secret: stored sealed, never shown" },
    { "description", DV_CLI_OPT_STRING, "D", "description", NULL, NULL, 0, 0, "free text" },
    { NULL },
};

static const DvCliOption dv_cli_setting_set_options[] = {
    { "value", DV_CLI_OPT_STRING, "V", "value", NULL, NULL, 0, 0, "a new value (refused for encrypted settings)" },
    { "value-file", DV_CLI_OPT_SECRET_FILE, "F", "value", NULL, NULL, 0, 0, "read a new value from F" },
    { "value-stdin", DV_CLI_OPT_SECRET_STDIN, NULL, "value", NULL, NULL, 0, 0,
      "read a new value from standard input" },
    { "description", DV_CLI_OPT_STRING, "D", "description", NULL, NULL, 0, 0, "free text" },
    { NULL },
};

static const DvCliOption dv_cli_setting_list_options[] = {
    { "scope", DV_CLI_OPT_CHOICE, "application|service|deployment|deploy-package", NULL, "scope", NULL, 0, 0,
      "only settings of this scope" },
    { NULL },
};

static const DvCliColumn dv_cli_run_as_columns[] = {
    { "NAME", "name" },
    { "USERNAME", "username" },
    { "CREDENTIAL", "credential_kind" },
    { "PASSWORD", "password" },
    { "SSH KEY", "ssh_private_key" },
    { "DESCRIPTION", "description" },
    { "ID", "id" },
    { NULL },
};

static const DvCliColumn dv_cli_profile_columns[] = {
    { "NAME", "name" },
    { "COMPUTER NAME", "computer_name_pattern" },
    { "ADMIN", "admin_username" },
    { "ADMIN PASSWORD", "admin_password" },
    { "DOMAIN", "domain" },
    { "JOIN PASSWORD", "domain_join_password" },
    { "JOIN ACCOUNT", "domain_join_run_as" },
    { "PRODUCT KEY", "product_key" },
    { "ID", "id" },
    { NULL },
};

static const DvCliColumn dv_cli_setting_columns[] = {
    { "NAME", "name" },
    { "SCOPE", "scope" },
    { "ENCRYPTED", "encrypted" },
    { "VALUE", "value" },
    { "DESCRIPTION", "description" },
    { "ID", "id" },
    { NULL },
};

static const char *const dv_cli_setting_scopes[] = { "application", "service", "deployment", "deploy-package",
                                                     NULL };

/* How many of @names (NULL terminated) were given. */
static guint
dv_cli_args_count(DvCliArgs *args, const char *const *names)
{
    guint n = 0;

    for (guint i = 0; names[i] != NULL; i++)
        n += dv_cli_args_has(args, names[i]);
    return n;
}

static gboolean
dv_cli_args_at_most_one(DvCliArgs *args, const char *const *names, const char *field, GError **error)
{
    g_autofree char *list = NULL;

    if (dv_cli_args_count(args, names) <= 1)
        return TRUE;
    list = g_strjoinv(", --", (char **)names);
    dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "give only one of --%s", list);
    return FALSE;
}

/* Nothing in the body and no secret to read: a PATCH would change nothing. */
static gboolean
dv_cli_check_something_to_change(DvCliArgs *args, JsonObject *body, const char *const *secret_options,
                                 GError **error)
{
    if (json_object_get_size(body) == 0 && dv_cli_args_count(args, secret_options) == 0 &&
        !dv_cli_args_has(args, "ssh-authorized-key") && !dv_cli_args_has(args, "user-data-file")) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL, "nothing to change: give at least one option");
        return FALSE;
    }
    return TRUE;
}

static const char *const dv_cli_run_as_credentials[] = { "password-file", "password-stdin", "ssh-key-file", NULL };

static gboolean
dv_cli_prepare_run_as_add(DvCliArgs *args, JsonObject *body, GError **error)
{
    if (dv_cli_args_count(args, dv_cli_run_as_credentials) != 1) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "password",
                           "give exactly one of --password-file F, --password-stdin and --ssh-key-file F");
        return FALSE;
    }
    return dv_cli_prepare_name(args, body, error);
}

static gboolean
dv_cli_prepare_run_as_set(DvCliArgs *args, JsonObject *body, GError **error)
{
    return dv_cli_args_at_most_one(args, dv_cli_run_as_credentials, "password", error) &&
           dv_cli_check_something_to_change(args, body, dv_cli_run_as_credentials, error);
}

static const char *const dv_cli_profile_secret_options[] = { "admin-password-file", "join-password-file",
                                                             "product-key-file", NULL };

static gboolean
dv_cli_prepare_profile_add(DvCliArgs *args, JsonObject *body, GError **error)
{
    dv_cli_args_add_list(args, "ssh-authorized-key", body, "ssh_authorized_keys", NULL);
    return dv_cli_prepare_name(args, body, error);
}

static gboolean
dv_cli_prepare_profile_set(DvCliArgs *args, JsonObject *body, GError **error)
{
    if (!dv_cli_check_something_to_change(args, body, dv_cli_profile_secret_options, error))
        return FALSE;
    dv_cli_args_add_list(args, "ssh-authorized-key", body, "ssh_authorized_keys", NULL);
    return TRUE;
}

static const char *const dv_cli_setting_values[] = { "value", "value-file", "value-stdin", NULL };

static gboolean
dv_cli_prepare_setting_add(DvCliArgs *args, JsonObject *body, GError **error)
{
    if (dv_cli_args_has(args, "encrypted") && dv_cli_args_has(args, "value")) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "value",
                           "--value cannot hold an encrypted value: arguments are visible to every user in 'ps' "
                           "and stay in the shell history; use --value-file F or --value-stdin");
        return FALSE;
    }
    if (dv_cli_args_count(args, dv_cli_setting_values) != 1) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "value",
                           "give exactly one of --value V, --value-file F and --value-stdin");
        return FALSE;
    }
    json_object_set_string_member(body, "scope", dv_cli_args_get_positional(args, 0));
    json_object_set_string_member(body, "name", dv_cli_args_get_positional(args, 1));
    return TRUE;
}

static gboolean
dv_cli_prepare_setting_set(DvCliArgs *args, JsonObject *body, GError **error)
{
    return dv_cli_args_at_most_one(args, dv_cli_setting_values, "value", error) &&
           dv_cli_check_something_to_change(args, body, dv_cli_setting_values, error);
}

static gboolean
dv_cli_prepare_setting_scope(DvCliArgs *args, JsonObject *body, GError **error)
{
    const char *scope = dv_cli_args_get_positional(args, 0);
    g_autofree char *choices = NULL;

    if (g_strv_contains(dv_cli_setting_scopes, scope))
        return dv_cli_prepare_setting_add(args, body, error);
    choices = g_strjoinv("|", (char **)dv_cli_setting_scopes);
    dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "scope", "SCOPE: must be one of %s, got '%s'", choices,
                       scope);
    return FALSE;
}

/* "/settings" of "/settings/{0}". */
static char *
dv_cli_secret_collection(const DvCliCommand *cmd)
{
    const char *slash = strchr(cmd->path + 1, '/');
    return slash != NULL ? g_strndup(cmd->path, slash - cmd->path) : g_strdup(cmd->path);
}

static const char *
dv_cli_secret_singular(const char *collection)
{
    if (g_strcmp0(collection, "/run-as-accounts") == 0)
        return "Run As account";
    if (g_strcmp0(collection, "/guest-os-profiles") == 0)
        return "guest OS profile";
    return "setting";
}

/* The object @value names in @collection: its id, its name, or for a
 * setting SCOPE/NAME (a setting's name is unique only within its scope).
 * Names are looked up with the list's name filter, so this works whether
 * or not the server addresses these objects by name. */
static JsonObject *
dv_cli_secret_object_find(DvCli *cli, const char *collection, const char *value, GError **error)
{
    g_autoptr(GString) path = g_string_new(collection);
    g_autoptr(JsonNode) node = NULL;
    g_autoptr(GError) local = NULL;
    g_autofree char *scope = NULL;
    const char *name = value;
    const char *what = dv_cli_secret_singular(collection);
    JsonArray *items;

    if (g_uuid_string_is_valid(value)) {
        g_autofree char *escaped = g_uri_escape_string(value, NULL, TRUE);
        g_string_append_printf(path, "/%s", escaped);
        node = dv_cli_client_request(cli->client, "GET", path->str, NULL, NULL, error);
        if (node == NULL)
            return NULL;
        if (!JSON_NODE_HOLDS_OBJECT(node)) {
            dv_set_field_error(error, DV_ERROR_INTERNAL, NULL, "the server sent something other than a JSON object");
            return NULL;
        }
        return json_object_ref(json_node_get_object(node));
    }
    if (g_strcmp0(collection, "/settings") == 0 && strchr(value, '/') != NULL) {
        const char *slash = strchr(value, '/');
        scope = g_strndup(value, slash - value);
        if (g_strv_contains(dv_cli_setting_scopes, scope))
            name = slash + 1;
        else
            g_clear_pointer(&scope, g_free);
    }
    dv_cli_query_add(path, "name", name);
    if (scope != NULL)
        dv_cli_query_add(path, "scope", scope);
    dv_cli_query_add(path, "limit", "2");
    node = dv_cli_client_request(cli->client, "GET", path->str, NULL, NULL, &local);
    if (node == NULL) {
        /* A server without the name filter may still take a name in the path. */
        if (scope == NULL && g_error_matches(local, DV_ERROR, DV_ERROR_INVALID_ARGUMENT)) {
            g_autofree char *escaped = g_uri_escape_string(value, NULL, TRUE);
            g_autofree char *direct = g_strconcat(collection, "/", escaped, NULL);
            node = dv_cli_client_request(cli->client, "GET", direct, NULL, NULL, error);
            if (node == NULL)
                return NULL;
            if (!JSON_NODE_HOLDS_OBJECT(node)) {
                dv_set_field_error(error, DV_ERROR_INTERNAL, NULL,
                                   "the server sent something other than a JSON object");
                return NULL;
            }
            return json_object_ref(json_node_get_object(node));
        }
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    items = JSON_NODE_HOLDS_OBJECT(node) ? dv_json_get_array(json_node_get_object(node), "items") : NULL;
    if (items == NULL) {
        dv_set_field_error(error, DV_ERROR_INTERNAL, NULL, "the server sent a list without items");
        return NULL;
    }
    if (json_array_get_length(items) == 0) {
        dv_set_field_error(error, DV_ERROR_NOT_FOUND, NULL, "no %s is named '%s'", what, value);
        return NULL;
    }
    if (json_array_get_length(items) > 1) {
        if (g_strcmp0(collection, "/settings") == 0)
            dv_set_field_error(error, DV_ERROR_CONFLICT, NULL,
                               "settings named '%s' exist in more than one scope: use SCOPE/%s or the id", value,
                               value);
        else
            dv_set_field_error(error, DV_ERROR_CONFLICT, NULL, "more than one %s is named '%s': use its id", what,
                               value);
        return NULL;
    }
    if (!JSON_NODE_HOLDS_OBJECT(json_array_get_element(items, 0))) {
        dv_set_field_error(error, DV_ERROR_INTERNAL, NULL, "the server sent a list item that is not an object");
        return NULL;
    }
    return json_object_ref(json_array_get_object_element(items, 0));
}

/* @cmd with "{0}" of its path replaced by the id of the object positional
 * 0 names; its messages keep the name the user gave. */
typedef gboolean (*DvCliByIdFunc)(DvCli *cli, JsonObject *obj, const DvCliCommand *cmd, DvCliArgs *args,
                                  JsonObject *body, GError **error);

static gboolean
dv_cli_run_by_id(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body, DvCliByIdFunc check,
                 DvCliRunFunc run, GError **error)
{
    g_autofree char *collection = dv_cli_secret_collection(cmd);
    g_autoptr(JsonObject) obj = dv_cli_secret_object_find(cli, collection, dv_cli_args_get_positional(args, 0),
                                                          error);
    g_autofree char *escaped = NULL;
    g_auto(GStrv) parts = NULL;
    g_autofree char *path = NULL;
    DvCliCommand by_id;
    const char *id;

    if (obj == NULL)
        return FALSE;
    id = dv_json_get_string(obj, "id", NULL);
    if (id == NULL) {
        dv_set_field_error(error, DV_ERROR_INTERNAL, NULL, "the server sent an object without an id");
        return FALSE;
    }
    if (check != NULL && !check(cli, obj, cmd, args, body, error))
        return FALSE;
    escaped = g_uri_escape_string(id, NULL, TRUE);
    parts = g_strsplit(cmd->path, "{0}", -1);
    path = g_strjoinv(escaped, parts);
    by_id = *cmd;
    by_id.path = path;
    return run(cli, &by_id, args, body, error);
}

static gboolean
dv_cli_run_secret_show(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body, GError **error)
{
    return dv_cli_run_by_id(cli, cmd, args, body, NULL, dv_cli_run_show, error);
}

static gboolean
dv_cli_run_secret_job(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body, GError **error)
{
    return dv_cli_run_by_id(cli, cmd, args, body, NULL, dv_cli_run_job, error);
}

/* Whether a setting is encrypted is known only once it is looked up. */
static gboolean
dv_cli_check_setting_set(DvCli *cli, JsonObject *setting, const DvCliCommand *cmd, DvCliArgs *args,
                         JsonObject *body, GError **error)
{
    if (dv_json_get_bool(setting, "encrypted", FALSE) && dv_cli_args_has(args, "value")) {
        cli->usage_failed = TRUE;
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "value",
                           "setting '%s' is encrypted: --value is refused because arguments are visible to every "
                           "user in 'ps' and stay in the shell history; use --value-file F or --value-stdin",
                           dv_cli_args_get_positional(args, 0));
        return FALSE;
    }
    return TRUE;
}

static gboolean
dv_cli_run_setting_set(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body, GError **error)
{
    return dv_cli_run_by_id(cli, cmd, args, body, dv_cli_check_setting_set, dv_cli_run_job, error);
}

const DvCliCommand dv_cli_commands_secret[] = {
    { "run-as", "add", "NAME", "Add a Run As account: credentials Drover gives libvirt for a host.",
      dv_cli_run_as_add_options, dv_cli_prepare_run_as_add, dv_cli_run_job, "POST", "/run-as-accounts", NULL,
      "Added Run As account {0}",
      "run-as add NAME --username U (--password-file F | --password-stdin | --ssh-key-file F)\n"
      "                 [--description D]" },
    { "run-as", "list", "", "List Run As accounts (secrets show as set or not, never their value).", NULL, NULL,
      dv_cli_run_list, "GET", "/run-as-accounts", dv_cli_run_as_columns },
    { "run-as", "show", "ACCOUNT", "Show a Run As account.", NULL, NULL, dv_cli_run_secret_show, "GET",
      "/run-as-accounts/{0}" },
    { "run-as", "set", "ACCOUNT", "Change a Run As account or enter its password or key again.",
      dv_cli_run_as_set_options, dv_cli_prepare_run_as_set, dv_cli_run_secret_job, "PATCH", "/run-as-accounts/{0}",
      NULL, "Updated Run As account {0}",
      "run-as set ACCOUNT [--username U] [--password-file F | --password-stdin | --ssh-key-file F]\n"
      "                 [--description D]" },
    { "run-as", "remove", "ACCOUNT", "Remove a Run As account no host uses.", NULL, NULL, dv_cli_run_secret_job,
      "DELETE", "/run-as-accounts/{0}", NULL, "Removed Run As account {0}" },

    { "guest-os-profile", "add", "NAME", "Add a guest OS profile (computer name, administrator, domain, keys).",
      dv_cli_profile_options, dv_cli_prepare_profile_add, dv_cli_run_job, "POST", "/guest-os-profiles", NULL,
      "Added guest OS profile {0}" },
    { "guest-os-profile", "list", "", "List guest OS profiles.", NULL, NULL, dv_cli_run_list, "GET",
      "/guest-os-profiles", dv_cli_profile_columns },
    { "guest-os-profile", "show", "PROFILE", "Show a guest OS profile.", NULL, NULL, dv_cli_run_secret_show, "GET",
      "/guest-os-profiles/{0}" },
    { "guest-os-profile", "set", "PROFILE", "Change a guest OS profile; a secret given again replaces it.",
      dv_cli_profile_options, dv_cli_prepare_profile_set, dv_cli_run_secret_job, "PATCH", "/guest-os-profiles/{0}",
      NULL, "Updated guest OS profile {0}" },
    { "guest-os-profile", "remove", "PROFILE", "Remove a guest OS profile.", NULL, NULL, dv_cli_run_secret_job,
      "DELETE", "/guest-os-profiles/{0}", NULL, "Removed guest OS profile {0}" },

    { "setting", "add", "SCOPE NAME", "Add a setting of a scope (application|service|deployment|deploy-package).",
      dv_cli_setting_add_options, dv_cli_prepare_setting_scope, dv_cli_run_job, "POST", "/settings", NULL,
      "Added setting {0}/{1}",
      "setting add SCOPE NAME (--value V | --value-file F | --value-stdin) [--encrypted] [--description D]" },
    { "setting", "list", "", "List settings (encrypted values show as set or not).", dv_cli_setting_list_options,
      NULL, dv_cli_run_list, "GET", "/settings", dv_cli_setting_columns },
    { "setting", "show", "SETTING", "Show a setting (id, NAME or SCOPE/NAME).", NULL, NULL, dv_cli_run_secret_show,
      "GET", "/settings/{0}" },
    { "setting", "set", "SETTING", "Change a setting's value or description.", dv_cli_setting_set_options,
      dv_cli_prepare_setting_set, dv_cli_run_setting_set, "PATCH", "/settings/{0}", NULL, "Updated setting {0}",
      "setting set SETTING [--value V | --value-file F | --value-stdin] [--description D]" },
    { "setting", "remove", "SETTING", "Remove a setting.", NULL, NULL, dv_cli_run_secret_job, "DELETE",
      "/settings/{0}", NULL, "Removed setting {0}" },
    { NULL },
};
