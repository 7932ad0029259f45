#define G_LOG_DOMAIN "DvCli"

/* drover user, role, binding, token, session, audit: access control
 * (docs/ACCESS.md; routes in docs/API.md, "Access control").
 *
 * Declared like every other command: the option tables name the body
 * members and query parameters, and the prepare hooks only check
 * combinations and nest what a flat table cannot (a binding's scope and
 * quotas).  Passwords come from files or standard input, never from
 * arguments (dv-cli-commands-secret.c says why).  These routes answer at
 * once (201 with the object, 200 {}), not with a job. */

#include "dv-cli.h"

#include "dv-error.h"
#include "dv-json.h"

#define DV_CLI_IN_PS_HELP                                                                          \
    "a password on the command line is visible to every user in 'ps' and stays in the shell "      \
    "history"

/* --- user ---------------------------------------------------------------- */

/* Both passwords come from files or standard input (only one of them can
 * use it), never from arguments, as every secret (dv-cli-commands-secret.c). */
static const DvCliOption dv_cli_passwd_options[] = {
    { "current-password-file", DV_CLI_OPT_SECRET_FILE, "F", "current_password", NULL, NULL, 0, 0,
      "read the current password from F (all of it, less one trailing newline)" },
    { "current-password-stdin", DV_CLI_OPT_SECRET_STDIN, NULL, "current_password", NULL, NULL, 0, 0,
      "read the current password from standard input" },
    { "new-password-file", DV_CLI_OPT_SECRET_FILE, "F", "new_password", NULL, NULL, 0, 0,
      "read the new password from F (8-1024 bytes)" },
    { "new-password-stdin", DV_CLI_OPT_SECRET_STDIN, NULL, "new_password", NULL, NULL, 0, 0,
      "read the new password from standard input" },
    { "password", DV_CLI_OPT_REFUSED, NULL, NULL, NULL, NULL, 0, 0,
      DV_CLI_IN_PS_HELP
      "; use --current-password-file F and --new-password-file F (or one of them -stdin)" },
    { "current-password", DV_CLI_OPT_REFUSED, NULL, NULL, NULL, NULL, 0, 0,
      DV_CLI_IN_PS_HELP "; use --current-password-file F or --current-password-stdin" },
    { "new-password", DV_CLI_OPT_REFUSED, NULL, NULL, NULL, NULL, 0, 0,
      DV_CLI_IN_PS_HELP "; use --new-password-file F or --new-password-stdin" },
    { NULL },
};

static const DvCliOption dv_cli_user_add_options[] = {
    { "password-file", DV_CLI_OPT_SECRET_FILE, "F", "password", NULL, NULL, 0, 0,
      "read the password from F (all of it, less one trailing newline)" },
    { "password-stdin", DV_CLI_OPT_SECRET_STDIN, NULL, "password", NULL, NULL, 0, 0,
      "read the password from standard input" },
    { "role", DV_CLI_OPT_STRING, "ROLE", "role", NULL, NULL, 0, 0,
      "bind this role (built-in or custom) globally; add scoped bindings with 'drover binding "
      "add'" },
    { "password", DV_CLI_OPT_REFUSED, NULL, NULL, NULL, NULL, 0, 0,
      DV_CLI_IN_PS_HELP "; use --password-file F or --password-stdin" },
    { NULL },
};

static const DvCliColumn dv_cli_user_columns[] = {
    { "NAME", "name" }, { "DISABLED", "disabled" }, { "CREATED", "created_at" }, { "ID", "id" },
    { NULL },
};

/* A binding as GET /bindings and GET /users/{ref} give it; user, group
 * and role may be names or {id, name} objects (a cell shows the name). */
static const DvCliColumn dv_cli_binding_columns[] = {
    { "ID", "id" },
    { "USER", "user" },
    { "GROUP", "group" },
    { "ROLE", "role" },
    { "SCOPE", "scope.kind|scope_kind" },
    { "SCOPE-REF", "scope.name|scope.ref|scope.id" },
    { "EFFECT", "effect" },
    { "QUOTA-VMS", "quota.vms" },
    { "QUOTA-VCPUS", "quota.vcpus" },
    { "QUOTA-MEMORY", "quota.memory_mib", DV_CLI_COL_MIB },
    { "QUOTA-GIB", "quota.storage_gib" },
    { "MEMBER-VMS", "quota.per_member.vms" },
    { "MEMBER-VCPUS", "quota.per_member.vcpus" },
    { "MEMBER-MEMORY", "quota.per_member.memory_mib", DV_CLI_COL_MIB },
    { "MEMBER-GIB", "quota.per_member.storage_gib" },
    { NULL },
};

static gboolean
dv_cli_prepare_passwd(DvCliArgs *args, JsonObject *body, GError **error)
{
    if (dv_cli_args_has(args, "current-password-file") ==
        dv_cli_args_has(args, "current-password-stdin")) {
        dv_set_field_error(
            error, DV_ERROR_INVALID_ARGUMENT, "current_password",
            "give exactly one of --current-password-file F and --current-password-stdin");
        return FALSE;
    }
    if (dv_cli_args_has(args, "new-password-file") == dv_cli_args_has(args, "new-password-stdin")) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "new_password",
                           "give exactly one of --new-password-file F and --new-password-stdin");
        return FALSE;
    }
    return TRUE;
}

static gboolean
dv_cli_prepare_user_add(DvCliArgs *args, JsonObject *body, GError **error)
{
    if (dv_cli_args_has(args, "password-file") == dv_cli_args_has(args, "password-stdin")) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "password",
                           "give exactly one of --password-file F and --password-stdin");
        return FALSE;
    }
    return dv_cli_prepare_name(args, body, error);
}

static gboolean
dv_cli_prepare_user_disable(DvCliArgs *args, JsonObject *body, GError **error)
{
    json_object_set_boolean_member(body, "disabled", TRUE);
    return TRUE;
}

static gboolean
dv_cli_prepare_user_enable(DvCliArgs *args, JsonObject *body, GError **error)
{
    json_object_set_boolean_member(body, "disabled", FALSE);
    return TRUE;
}

/* A user for people: its members, then its bindings as a table. */
static gboolean
dv_cli_run_user_show(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body,
                     GError **error)
{
    static const char *const skip[] = { "bindings", NULL };
    g_autofree char *path =
        dv_cli_path_expand(cmd->path, (const char *const *)args->positional->pdata, TRUE);
    g_autoptr(JsonNode) node = dv_cli_client_request(cli->client, "GET", path, NULL, NULL, error);
    JsonObject *user;
    JsonArray *bindings;

    if (node == NULL)
        return FALSE;
    if (cli->format == DV_CLI_FORMAT_JSON || !JSON_NODE_HOLDS_OBJECT(node)) {
        dv_cli_print_json(cli, node);
        return TRUE;
    }
    user = json_node_get_object(node);
    dv_cli_print_object(cli, "/users", user, skip);
    bindings = dv_json_get_array(user, "bindings");
    if (bindings != NULL && json_array_get_length(bindings) > 0) {
        g_autofree char *table =
            dv_cli_items_render(bindings, dv_cli_binding_columns, cli->out_tty);
        fprintf(cli->out, "\nBindings:\n%s", table);
    } else {
        fputs("\nBindings: none\n", cli->out);
    }
    return TRUE;
}

/* POST of a creation answered at once with the object (201): "{done} (id
 * X)" for people, the object for scripts.  Bodies with secrets are sent
 * from guarded memory, as dv_cli_run_job() does. */
static gboolean
dv_cli_run_created(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body,
                   GError **error)
{
    const char *const *pos = (const char *const *)args->positional->pdata;
    g_autofree char *path = dv_cli_path_expand(cmd->path, pos, TRUE);
    g_autofree char *done = dv_cli_path_expand(cmd->done, pos, FALSE);
    g_autoptr(JsonNode) node = NULL;
    const char *id = NULL;

    if (args->secrets->len > 0) {
        g_autoptr(DvSecret) raw = dv_cli_args_body_new(args, body);
        node = dv_cli_client_request_raw(cli->client, cmd->method, path, dv_secret_get_string(raw),
                                         dv_secret_get_len(raw), NULL, error);
    } else {
        node = dv_cli_client_request(cli->client, cmd->method, path, body, NULL, error);
    }
    if (node == NULL)
        return FALSE;
    if (cli->format == DV_CLI_FORMAT_JSON) {
        dv_cli_print_json(cli, node);
        return TRUE;
    }
    if (JSON_NODE_HOLDS_OBJECT(node))
        id = dv_json_get_string(json_node_get_object(node), "id", NULL);
    if (id != NULL)
        fprintf(cli->out, "%s (id %s)\n", done, id);
    else
        fprintf(cli->out, "%s\n", done);
    return TRUE;
}

/* --- role ---------------------------------------------------------------- */

static const DvCliOption dv_cli_role_add_options[] = {
    { "privilege", DV_CLI_OPT_LIST, "P", NULL, NULL, NULL, 0, 0,
      "a privilege of the role ('drover role privileges' lists them)", TRUE },
    { NULL },
};

static const DvCliColumn dv_cli_role_columns[] = {
    { "NAME", "name" }, { "BUILTIN", "builtin" }, { "PRIVILEGES", "privileges", DV_CLI_COL_COUNT }, { "ID", "id" },
    { NULL },
};

static const DvCliColumn dv_cli_privilege_columns[] = {
    { "NAME", "name" },
    { NULL },
};

static gboolean
dv_cli_prepare_role_add(DvCliArgs *args, JsonObject *body, GError **error)
{
    dv_cli_args_add_list(args, "privilege", body, "privileges", NULL);
    return dv_cli_prepare_name(args, body, error);
}

/* --- binding ------------------------------------------------------------- */

/* The scopes a binding may have; at most one, none is global.  The kind is
 * the API's, the option its spelling on the command line. */
static const struct {
    const char *option;
    const char *kind;
} dv_cli_binding_scopes[] = {
    { "host-group", "host_group" },
    { "catalog", "catalog" },
    { "library-share", "library_share" },
    { "run-as", "run_as" },
};

/* Quota options and the member of "quota" (or of "quota.per_member") each
 * fills.  0 is a real quota: nothing of that kind.  Which bindings may
 * carry a cap per member is the server's rule (docs/ACCESS.md, "Quotas"). */
static const struct {
    const char *option;
    const char *member;
    gboolean per_member;
} dv_cli_binding_quotas[] = {
    { "quota-vms", "vms", FALSE },           { "quota-vcpus", "vcpus", FALSE },
    { "quota-memory", "memory_mib", FALSE }, { "quota-storage", "storage_gib", FALSE },
    { "member-vms", "vms", TRUE },           { "member-vcpus", "vcpus", TRUE },
    { "member-memory", "memory_mib", TRUE }, { "member-storage", "storage_gib", TRUE },
};

static const DvCliOption dv_cli_binding_add_options[] = {
    { "user", DV_CLI_OPT_STRING, "U", "user", NULL, NULL, 0, 0, "bind a user (name or id)" },
    { "group", DV_CLI_OPT_STRING, "G", "group", NULL, NULL, 0, 0, "bind a directory group (name)" },
    { "role", DV_CLI_OPT_STRING, "R", "role", NULL, NULL, 0, 0, "the role (built-in or custom)",
      TRUE },
    { "host-group", DV_CLI_OPT_STRING, "NAME", NULL, NULL, NULL, 0, 0,
      "scope: a host group, with its clusters, hosts, VMs and pools" },
    { "catalog", DV_CLI_OPT_STRING, "NAME", NULL, NULL, NULL, 0, 0, "scope: a catalog" },
    { "library-share", DV_CLI_OPT_STRING, "NAME", NULL, NULL, NULL, 0, 0,
      "scope: a library share" },
    { "run-as", DV_CLI_OPT_STRING, "NAME", NULL, NULL, NULL, 0, 0, "scope: a Run As account" },
    { "deny", DV_CLI_OPT_FLAG, NULL, NULL, NULL, NULL, 0, 0,
      "deny the role's privileges (an explicit deny wins)" },
    { "quota-vms", DV_CLI_OPT_INT, "N", NULL, NULL, NULL, 0, 1000000,
      "at most N VMs in all (0-1000000)" },
    { "quota-vcpus", DV_CLI_OPT_INT, "N", NULL, NULL, NULL, 0, 100000000,
      "at most N vCPUs in all (0-100000000)" },
    { "quota-memory", DV_CLI_OPT_SIZE_MIB, "SIZE", NULL, NULL, NULL, 0, G_GINT64_CONSTANT(1099511627776),
      "at most this much memory in all: 64G, or MiB as a plain number" },
    { "quota-storage", DV_CLI_OPT_INT, "GIB", NULL, NULL, NULL, 0, G_GINT64_CONSTANT(1073741824),
      "at most this much storage in all, in GiB" },
    { "member-vms", DV_CLI_OPT_INT, "N", NULL, NULL, NULL, 0, 1000000, "at most N VMs per member" },
    { "member-vcpus", DV_CLI_OPT_INT, "N", NULL, NULL, NULL, 0, 100000000,
      "at most N vCPUs per member" },
    { "member-memory", DV_CLI_OPT_SIZE_MIB, "SIZE", NULL, NULL, NULL, 0, G_GINT64_CONSTANT(1099511627776),
      "at most this much memory per member: 8G, or MiB as a plain number" },
    { "member-storage", DV_CLI_OPT_INT, "GIB", NULL, NULL, NULL, 0, G_GINT64_CONSTANT(1073741824),
      "at most this much storage per member, in GiB" },
    { NULL },
};

static const DvCliOption dv_cli_binding_list_options[] = {
    { "user", DV_CLI_OPT_STRING, "U", NULL, "user", NULL, 0, 0, "only this user's bindings" },
    { "group", DV_CLI_OPT_STRING, "G", NULL, "group", NULL, 0, 0, "only this group's bindings" },
    { NULL },
};

/* --user and --group: at most one (list) or exactly one (add). */
static gboolean
dv_cli_binding_check_subject(DvCliArgs *args, gboolean required, GError **error)
{
    gboolean user = dv_cli_args_has(args, "user");
    gboolean group = dv_cli_args_has(args, "group");

    if (user && group) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "group",
                           "--user and --group exclude each other: give one");
        return FALSE;
    }
    if (required && !user && !group) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "user",
                           "give exactly one of --user U and --group G");
        return FALSE;
    }
    return TRUE;
}

static gboolean
dv_cli_prepare_binding_list(DvCliArgs *args, JsonObject *body, GError **error)
{
    return dv_cli_binding_check_subject(args, FALSE, error);
}

static gboolean
dv_cli_prepare_binding_add(DvCliArgs *args, JsonObject *body, GError **error)
{
    g_autoptr(JsonObject) quota = json_object_new();
    g_autoptr(JsonObject) per_member = json_object_new();
    const char *scope_option = NULL;

    if (!dv_cli_binding_check_subject(args, TRUE, error))
        return FALSE;
    for (gsize i = 0; i < G_N_ELEMENTS(dv_cli_binding_scopes); i++) {
        const char *option = dv_cli_binding_scopes[i].option;
        g_autoptr(JsonObject) scope = NULL;
        if (!dv_cli_args_has(args, option))
            continue;
        if (scope_option != NULL) {
            dv_set_field_error(
                error, DV_ERROR_INVALID_ARGUMENT, "scope",
                "--%s and --%s: a binding has at most one scope (add a binding per scope)",
                scope_option, option);
            return FALSE;
        }
        scope_option = option;
        scope = json_object_new();
        json_object_set_string_member(scope, "kind", dv_cli_binding_scopes[i].kind);
        json_object_set_string_member(scope, "ref", dv_cli_args_get_string(args, option));
        json_object_set_object_member(body, "scope", g_steal_pointer(&scope));
    }
    if (dv_cli_args_has(args, "deny"))
        json_object_set_string_member(body, "effect", "deny");
    for (gsize i = 0; i < G_N_ELEMENTS(dv_cli_binding_quotas); i++) {
        const char *option = dv_cli_binding_quotas[i].option;
        if (!dv_cli_args_has(args, option))
            continue;
        json_object_set_int_member(dv_cli_binding_quotas[i].per_member ? per_member : quota,
                                   dv_cli_binding_quotas[i].member,
                                   dv_cli_args_get_int(args, option, 0));
    }
    if (json_object_get_size(per_member) > 0)
        json_object_set_object_member(quota, "per_member", g_steal_pointer(&per_member));
    if (json_object_get_size(quota) > 0)
        json_object_set_object_member(body, "quota", g_steal_pointer(&quota));
    return TRUE;
}

/* --- token, session, audit ----------------------------------------------- */

static const DvCliOption dv_cli_user_filter_options[] = {
    { "user", DV_CLI_OPT_STRING, "U", NULL, "user", NULL, 0, 0,
      "this user's (default your own; others need user management)" },
    { NULL },
};

static const DvCliOption dv_cli_token_add_options[] = {
    { "expires-in", DV_CLI_OPT_INT, "DAYS", "expires_in_days", NULL, NULL, 1, 365,
      "valid for DAYS days (1-365, server default 90)" },
    { "privilege", DV_CLI_OPT_LIST, "P", NULL, NULL, NULL, 0, 0,
      "limit the token to these of your privileges (default all of them)" },
    { NULL },
};

static const DvCliColumn dv_cli_token_columns[] = {
    { "NAME", "name" },
    { "USER", "user" },
    { "EXPIRES", "expires_at" },
    { "PRIVILEGES", "privileges" },
    { "ID", "id" },
    { NULL },
};

static const DvCliColumn dv_cli_session_columns[] = {
    { "ID", "id" },
    { "USER", "user" },
    { "CREATED", "created_at" },
    { "EXPIRES", "expires_at" },
    { "LAST-SEEN", "last_seen_at" },
    { "CURRENT", "current" },
    { NULL },
};

static const DvCliOption dv_cli_audit_options[] = {
    { "user", DV_CLI_OPT_STRING, "U", NULL, "user", NULL, 0, 0, "only this user's operations" },
    { "operation", DV_CLI_OPT_STRING, "OP", NULL, "operation", NULL, 0, 0,
      "only this operation (vm.create)" },
    { "outcome", DV_CLI_OPT_CHOICE, "allowed|refused|failed", NULL, "outcome", NULL, 0, 0,
      "only this outcome" },
    { "object", DV_CLI_OPT_STRING, "REF", NULL, "object", NULL, 0, 0,
      "only operations on this object" },
    { NULL },
};

static const DvCliColumn dv_cli_audit_columns[] = {
    { "AT", "at" },
    { "USER", "user" },
    { "SOURCE", "source" },
    { "OPERATION", "operation" },
    { "KIND", "object_kind" },
    { "OBJECT", "object_id" },
    { "OUTCOME", "outcome" },
    { "JOB", "job_id" },
    { "ID", "id" },
    { NULL },
};

static gboolean
dv_cli_prepare_token_add(DvCliArgs *args, JsonObject *body, GError **error)
{
    dv_cli_args_add_list(args, "privilege", body, "privileges", NULL);
    return dv_cli_prepare_name(args, body, error);
}

/* The token is in this answer only: printed once on stdout, alone on its
 * line so a script can take it, with a warning on stderr. */
static gboolean
dv_cli_run_token_add(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body,
                     GError **error)
{
    g_autoptr(JsonNode) node =
        dv_cli_client_request(cli->client, "POST", cmd->path, body, NULL, error);
    JsonObject *obj;
    const char *token;

    if (node == NULL)
        return FALSE;
    if (!JSON_NODE_HOLDS_OBJECT(node) ||
        (token = dv_json_get_string(json_node_get_object(node), "token", NULL)) == NULL) {
        dv_set_field_error(error, DV_ERROR_INTERNAL, "token", "the server sent no token");
        return FALSE;
    }
    obj = json_node_get_object(node);
    if (cli->format == DV_CLI_FORMAT_JSON) {
        dv_cli_print_json(cli, node);
    } else {
        fprintf(cli->out, "Created token %s (id %s), expires %s:\n",
                dv_json_get_string(obj, "name", "?"), dv_json_get_string(obj, "id", "?"),
                dv_json_get_string(obj, "expires_at", "?"));
        /* Showing it is the command's purpose: this answer is the only one
         * that carries it. */
        fprintf(cli->out, "%s\n", token); /* check-source: allow secret-in-log */
    }
    fputs("warning: the token is shown only now and cannot be shown again; store it safely "
          "(send it as 'Authorization: Bearer TOKEN' or with --token)\n",
          cli->err);
    return TRUE;
}

const DvCliCommand dv_cli_commands_access[] = {
    { "user", "list", "", "List users.", NULL, NULL, dv_cli_run_list, "GET", "/users",
      dv_cli_user_columns },
    { "user", "show", "USER", "Show a user and its role bindings.", NULL, NULL,
      dv_cli_run_user_show, "GET", "/users/{0}" },
    { "user", "add", "NAME", "Add a local user, with a global role binding when --role is given.",
      dv_cli_user_add_options, dv_cli_prepare_user_add, dv_cli_run_created, "POST", "/users", NULL,
      "Added user {0}", "user add NAME (--password-file F | --password-stdin) [--role ROLE]" },
    { "user", "disable", "USER", "Disable a user; its sessions and tokens stop working at once.",
      NULL, dv_cli_prepare_user_disable, dv_cli_run_action, "PATCH", "/users/{0}", NULL,
      "Disabled user {0}" },
    { "user", "enable", "USER", "Enable a disabled user.", NULL, dv_cli_prepare_user_enable,
      dv_cli_run_action, "PATCH", "/users/{0}", NULL, "Enabled user {0}" },
    { "user", "delete", "USER", "Delete a user, its bindings, sessions and tokens.", NULL, NULL,
      dv_cli_run_action, "DELETE", "/users/{0}", NULL, "Deleted user {0}" },
    { "user", "passwd", "", "Change your password; your other sessions end.", dv_cli_passwd_options,
      dv_cli_prepare_passwd, dv_cli_run_job, "POST", "/session/password", NULL,
      "Password changed; your other sessions have ended",
      "user passwd (--current-password-file F | --current-password-stdin)\n"
      "                 (--new-password-file F | --new-password-stdin)" },

    { "role", "list", "", "List roles, built-in and custom.", NULL, NULL, dv_cli_run_list, "GET",
      "/roles", dv_cli_role_columns },
    { "role", "show", "ROLE", "Show a role and its privileges.", NULL, NULL, dv_cli_run_show, "GET",
      "/roles/{0}" },
    { "role", "privileges", "", "List the privileges roles are made of.", NULL, NULL,
      dv_cli_run_list, "GET", "/privileges", dv_cli_privilege_columns },
    { "role", "add", "NAME", "Add a custom role made of privileges.", dv_cli_role_add_options,
      dv_cli_prepare_role_add, dv_cli_run_created, "POST", "/roles", NULL, "Added role {0}",
      "role add NAME --privilege P [--privilege P]..." },
    { "role", "delete", "ROLE", "Delete a custom role that nothing is bound to.", NULL, NULL,
      dv_cli_run_action, "DELETE", "/roles/{0}", NULL, "Deleted role {0}" },

    { "binding", "list", "", "List role bindings.", dv_cli_binding_list_options,
      dv_cli_prepare_binding_list, dv_cli_run_list, "GET", "/bindings", dv_cli_binding_columns,
      NULL, "binding list [--user U | --group G] [--limit N] [--all]" },
    { "binding", "add", "",
      "Bind a role to a user or group, globally or in one scope, with quotas.",
      dv_cli_binding_add_options, dv_cli_prepare_binding_add, dv_cli_run_created, "POST",
      "/bindings", NULL, "Added binding",
      "binding add (--user U | --group G) --role R\n"
      "                   [--host-group NAME | --catalog NAME | --library-share NAME | --run-as "
      "NAME]\n"
      "                   [--deny] [--quota-vms N] [--quota-vcpus N] [--quota-memory SIZE] "
      "[--quota-storage GIB]\n"
      "                   [--member-vms N] [--member-vcpus N] [--member-memory SIZE] "
      "[--member-storage GIB]" },
    { "binding", "delete", "ID", "Delete a role binding.", NULL, NULL, dv_cli_run_action, "DELETE",
      "/bindings/{0}", NULL, "Deleted binding {0}" },

    { "token", "list", "", "List API tokens (never their secret).", dv_cli_user_filter_options,
      NULL, dv_cli_run_list, "GET", "/tokens", dv_cli_token_columns },
    { "token", "add", "NAME", "Make an API token for scripts; it is printed once.",
      dv_cli_token_add_options, dv_cli_prepare_token_add, dv_cli_run_token_add, "POST", "/tokens" },
    { "token", "revoke", "ID", "Revoke an API token.", NULL, NULL, dv_cli_run_action, "DELETE",
      "/tokens/{0}", NULL, "Revoked token {0}" },

    { "session", "list", "", "List sessions.", dv_cli_user_filter_options, NULL, dv_cli_run_list,
      "GET", "/sessions", dv_cli_session_columns },
    { "session", "revoke", "ID", "End a session.", NULL, NULL, dv_cli_run_action, "DELETE",
      "/sessions/{0}", NULL, "Revoked session {0}" },

    { "audit", NULL, "",
      "Show the audit log: who did or tried what, from where, with what outcome.",
      dv_cli_audit_options, NULL, dv_cli_run_list, "GET", "/audit", dv_cli_audit_columns },
    { NULL },
};
