#define G_LOG_DOMAIN "DvCli"

/* drover login, logout, version, job (user passwd: dv-cli-commands-access.c). */

#include "dv-cli.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "dv-config.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-secret.h"

#define DV_CLI_MAX_PASSWORD 4096

static const DvCliOption dv_cli_job_list_options[] = {
    { "state", DV_CLI_OPT_CHOICE, "queued|running|succeeded|failed|cancelled", NULL, "state", NULL, 0, 0,
      "only jobs in this state" },
    { NULL },
};

static const DvCliOption dv_cli_login_options[] = {
    { "user", DV_CLI_OPT_STRING, "U", NULL, NULL, NULL, 0, 0, "user name (prompted for on a terminal)" },
    { "password-file", DV_CLI_OPT_STRING, "F", NULL, NULL, NULL, 0, 0, "read the password from the first line of F" },
    { "password-stdin", DV_CLI_OPT_FLAG, NULL, NULL, NULL, NULL, 0, 0, "read the password from standard input" },
    { "password", DV_CLI_OPT_REFUSED, NULL, NULL, NULL, NULL, 0, 0,
      "a password on the command line is visible to every user in 'ps' and stays in the shell history; "
      "use --password-file F or --password-stdin, or let drover prompt for it" },
    { NULL },
};

static const DvCliColumn dv_cli_job_columns[] = {
    { "ID", "id" },
    { "KIND", "kind" },
    { "STATE", "state" },
    { "PROGRESS", "progress", DV_CLI_COL_PERCENT },
    { "STEP", "current_step" },
    { "TARGET", "target_name|target_id" },
    { "CREATED", "created_at" },
    { NULL },
};

static const DvCliColumn dv_cli_step_columns[] = {
    { "STEP", "name" },
    { "WEIGHT", "weight" },
    { "STATE", "state" },
    { NULL },
};

static gboolean
dv_cli_run_job_show(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body, GError **error)
{
    static const char *const skip[] = { "steps", NULL };
    g_autofree char *escaped = g_uri_escape_string(dv_cli_args_get_positional(args, 0), NULL, TRUE);
    g_autofree char *path = g_strconcat("/jobs/", escaped, NULL);
    g_autoptr(JsonNode) node = dv_cli_client_request(cli->client, "GET", path, NULL, NULL, error);
    JsonObject *job;
    JsonArray *steps;

    if (node == NULL)
        return FALSE;
    if (cli->format == DV_CLI_FORMAT_JSON || !JSON_NODE_HOLDS_OBJECT(node)) {
        dv_cli_print_json(cli, node);
        return TRUE;
    }
    job = json_node_get_object(node);
    if (dv_json_get_object(job, "job") != NULL)
        job = dv_json_get_object(job, "job");
    dv_cli_print_object(cli, "/jobs", job, skip);
    steps = dv_json_get_array(job, "steps");
    if (steps != NULL && json_array_get_length(steps) > 0) {
        g_autofree char *table = dv_cli_items_render(steps, dv_cli_step_columns, cli->out_tty);
        fprintf(cli->out, "\nSteps:\n%s", table);
    }
    return TRUE;
}

static gboolean
dv_cli_run_job_watch(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body, GError **error)
{
    g_autofree char *escaped = g_uri_escape_string(dv_cli_args_get_positional(args, 0), NULL, TRUE);
    g_autofree char *path = g_strconcat("/jobs/", escaped, NULL);
    g_autoptr(JsonNode) node = dv_cli_client_request(cli->client, "GET", path, NULL, NULL, error);
    g_autofree char *done = NULL;
    JsonObject *job;

    if (node == NULL)
        return FALSE;
    if (!JSON_NODE_HOLDS_OBJECT(node)) {
        dv_set_field_error(error, DV_ERROR_INTERNAL, NULL, "the server sent a job that is not an object");
        return FALSE;
    }
    job = json_node_get_object(node);
    if (dv_json_get_object(job, "job") != NULL)
        job = dv_json_get_object(job, "job");
    done = g_strdup_printf("Job %s (%s) succeeded", dv_cli_args_get_positional(args, 0),
                           dv_json_get_string(job, "kind", "?"));
    /* Watching is waiting: --no-wait would make the command a no-op. */
    cli->no_wait = FALSE;
    return dv_cli_follow_and_report(cli, job, done, error);
}

/* Reads one line from @fd into guarded memory, byte by byte so no stdio
 * buffer keeps a copy. */
static DvSecret *
dv_cli_read_secret_line(int fd, const char *what, GError **error)
{
    g_autoptr(DvSecret) buf = dv_secret_new(DV_CLI_MAX_PASSWORD);
    guint8 *data = dv_secret_get_data_mutable(buf);
    gsize len = 0;

    for (;;) {
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "password", "cannot read %s: %s", what,
                               g_strerror(errno));
            return NULL;
        }
        if (n == 0 || c == '\n')
            break;
        if (len == DV_CLI_MAX_PASSWORD) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "password", "the password in %s is too long", what);
            return NULL;
        }
        data[len++] = (guint8)c;
    }
    if (len > 0 && data[len - 1] == '\r')
        len--;
    if (len == 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "password", "no password in %s", what);
        return NULL;
    }
    return dv_secret_new_from_data(data, len);
}

static DvSecret *
dv_cli_prompt_secret(const char *prompt, GError **error)
{
    struct termios saved;
    struct termios quiet;
    g_autoptr(DvSecret) secret = NULL;
    g_autoptr(GError) local = NULL;

    fputs(prompt, stderr);
    fflush(stderr);
    if (tcgetattr(STDIN_FILENO, &saved) != 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "password", "cannot turn off echo: %s",
                           g_strerror(errno));
        return NULL;
    }
    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    secret = dv_cli_read_secret_line(STDIN_FILENO, "the terminal", &local);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    if (secret == NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    return g_steal_pointer(&secret);
}

static void
dv_cli_json_escape_append(GString *out, const char *s)
{
    g_string_append_c(out, '"');
    for (const guchar *p = (const guchar *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            g_string_append_printf(out, "\\%c", *p);
        else if (*p < 0x20)
            g_string_append_printf(out, "\\u%04x", *p);
        else
            g_string_append_c(out, (char)*p);
    }
    g_string_append_c(out, '"');
}

DvSecret *
dv_cli_login_body_new(const char *user, const DvSecret *password)
{
    const char *pw = dv_secret_get_string(password);
    /* Sized for the worst case (every byte as \uXXXX) so the GString never
     * reallocates and leaves a stray copy of the password behind. */
    GString *s = g_string_sized_new(64 + 6 * (strlen(user) + strlen(pw)));
    g_autoptr(DvSecret) body = NULL;

    g_string_append(s, "{\"user\": ");
    dv_cli_json_escape_append(s, user);
    g_string_append(s, ", \"password\": ");
    dv_cli_json_escape_append(s, pw);
    g_string_append_c(s, '}');
    body = dv_secret_new_from_data(s->str, s->len);
    dv_secret_str_free(g_string_free(s, FALSE));
    return g_steal_pointer(&body);
}

static gboolean
dv_cli_prepare_login(DvCliArgs *args, JsonObject *body, GError **error)
{
    gboolean from_file = dv_cli_args_has(args, "password-file");
    gboolean from_stdin = dv_cli_args_has(args, "password-stdin");

    if (from_file && from_stdin) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "password",
                           "give --password-file or --password-stdin, not both");
        return FALSE;
    }
    if (!dv_cli_args_has(args, "user") && (from_stdin || !isatty(STDIN_FILENO))) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "user",
                           "--user is required when there is no terminal to prompt on");
        return FALSE;
    }
    if (!from_file && !from_stdin && !isatty(STDIN_FILENO)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "password",
                           "no terminal to prompt for the password: use --password-file F or --password-stdin");
        return FALSE;
    }
    return TRUE;
}

static DvSecret *
dv_cli_login_read_password(DvCliArgs *args, GError **error)
{
    const char *file = dv_cli_args_get_string(args, "password-file");

    if (file != NULL) {
        g_autofree char *what = g_strdup_printf("'%s'", file);
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        g_autoptr(DvSecret) secret = NULL;
        if (fd < 0) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "password-file", "cannot open %s: %s", what,
                               g_strerror(errno));
            return NULL;
        }
        secret = dv_cli_read_secret_line(fd, what, error);
        close(fd);
        return g_steal_pointer(&secret);
    }
    if (dv_cli_args_has(args, "password-stdin"))
        return dv_cli_read_secret_line(STDIN_FILENO, "standard input", error);
    return dv_cli_prompt_secret("Password: ", error);
}

static char *
dv_cli_prompt_user(GError **error)
{
    char line[256];

    fputs("User: ", stderr);
    fflush(stderr);
    if (fgets(line, sizeof line, stdin) == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "user", "no user name given");
        return NULL;
    }
    g_strstrip(line);
    if (line[0] == '\0') {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "user", "no user name given");
        return NULL;
    }
    return g_strdup(line);
}

/* A password sent in clear text to another machine is worth a warning. */
static void
dv_cli_warn_plain_http(DvCli *cli)
{
    g_autoptr(GUri) uri = g_uri_parse(dv_cli_client_get_server(cli->client), G_URI_FLAGS_NONE, NULL);
    const char *host;

    if (uri == NULL || g_ascii_strcasecmp(g_uri_get_scheme(uri), "http") != 0)
        return;
    host = g_uri_get_host(uri);
    if (g_strcmp0(host, "localhost") == 0 || g_str_has_prefix(host, "127.") || g_strcmp0(host, "::1") == 0)
        return;
    fprintf(cli->err, "warning: sending the password unencrypted to %s; use https://\n", host);
}

static gboolean
dv_cli_run_login(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *unused, GError **error)
{
    g_autofree char *user = g_strdup(dv_cli_args_get_string(args, "user"));
    g_autoptr(DvSecret) password = NULL;
    g_autoptr(DvSecret) body = NULL;
    g_autoptr(JsonNode) node = NULL;
    g_autoptr(GKeyFile) config = NULL;
    g_autoptr(JsonNode) whoami = NULL;
    g_autoptr(GError) local = NULL;
    JsonObject *session;
    JsonObject *me;
    JsonArray *bindings;
    const char *token;

    if (user == NULL && (user = dv_cli_prompt_user(error)) == NULL)
        return FALSE;
    password = dv_cli_login_read_password(args, error);
    if (password == NULL)
        return FALSE;
    config = dv_cli_config_load(error);
    if (config == NULL)
        return FALSE;
    dv_cli_warn_plain_http(cli);

    body = dv_cli_login_body_new(user, password);
    dv_cli_client_set_token(cli->client, NULL);
    node = dv_cli_client_request_raw(cli->client, "POST", "/session", dv_secret_get_string(body),
                                     dv_secret_get_len(body), NULL, error);
    if (node == NULL)
        return FALSE;
    session = JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
    token = dv_json_get_string(session, "token", NULL);
    if (token == NULL) {
        dv_set_field_error(error, DV_ERROR_INTERNAL, NULL, "the server answered the login without a token");
        return FALSE;
    }
    g_key_file_set_string(config, "server", "url", dv_cli_client_get_server(cli->client));
    g_key_file_set_string(config, "server", "token", token);
    if (!dv_cli_config_save(config, error))
        return FALSE;

    /* What the session may do: its bindings as GET /session resolves them
     * (the user's own and its directory groups'), not users.role, which
     * nothing reads any more.  A server that cannot say is no failed
     * login: the token is saved already. */
    dv_cli_client_set_token(cli->client, token);
    whoami = dv_cli_client_request(cli->client, "GET", "/session", NULL, NULL, &local);
    if (whoami == NULL)
        fprintf(cli->err, "warning: cannot read the session's roles: %s\n", local->message);
    me = whoami != NULL && JSON_NODE_HOLDS_OBJECT(whoami) ? json_node_get_object(whoami) : NULL;
    bindings = dv_json_get_array(me, "bindings");

    if (cli->format == DV_CLI_FORMAT_JSON) {
        /* Everything but the token, which is in the config file now. */
        g_autoptr(JsonObject) shown = json_object_new();
        g_autoptr(JsonNode) shown_node = NULL;
        json_object_set_string_member(shown, "server", dv_cli_client_get_server(cli->client));
        json_object_set_string_member(shown, "user", dv_json_get_string(session, "user", user));
        json_object_set_string_member(shown, "expires_at", dv_json_get_string(session, "expires_at", ""));
        if (bindings != NULL)
            json_object_set_array_member(shown, "bindings", json_array_ref(bindings));
        else
            json_object_set_null_member(shown, "bindings");
        shown_node = dv_json_node_new_object(json_object_ref(shown));
        dv_cli_print_json(cli, shown_node);
        return TRUE;
    }
    fprintf(cli->out, "Logged in to %s as %s; the session expires at %s\n",
            dv_cli_client_get_server(cli->client), dv_json_get_string(session, "user", user),
            dv_json_get_string(session, "expires_at", "?"));
    if (me == NULL)
        return TRUE;
    if (bindings == NULL || json_array_get_length(bindings) == 0) {
        fprintf(
            cli->out,
            "No role is bound to you yet: an administrator can add one ('drover binding add')\n");
        return TRUE;
    }
    fprintf(cli->out, "Roles:\n");
    for (guint i = 0; i < json_array_get_length(bindings); i++) {
        JsonObject *b = json_array_get_object_element(bindings, i);
        /* role and scope as names, of either form docs/API.md allows (a
         * name, or {id, name}; an older server's scope_kind/scope_id). */
        g_autofree char *role = dv_cli_value_to_string(b, "role", DV_CLI_COL_TEXT);
        g_autofree char *kind = dv_cli_value_to_string(b, "scope.kind|scope_kind", DV_CLI_COL_TEXT);
        g_autofree char *scope =
            dv_cli_value_to_string(b, "scope.name|scope.ref|scope.id|scope_id", DV_CLI_COL_TEXT);
        g_autofree char *group = dv_cli_value_to_string(b, "group", DV_CLI_COL_TEXT);
        gboolean global = strcmp(scope, "-") == 0;
        fprintf(cli->out, "  %s%s on %s%s%s", role,
                g_strcmp0(dv_json_get_string(b, "effect", ""), "deny") == 0 ? " (denied)" : "",
                strcmp(kind, "-") == 0 ? "global" : kind, global ? "" : " ", global ? "" : scope);
        if (g_strcmp0(dv_json_get_string(b, "principal_kind", ""), "group") == 0 ||
            strcmp(group, "-") != 0)
            fprintf(cli->out, ", through group %s",
                    strcmp(group, "-") != 0 ? group : dv_json_get_string(b, "principal", "?"));
        fputc('\n', cli->out);
    }
    return TRUE;
}

static gboolean
dv_cli_run_logout(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *unused, GError **error)
{
    g_autoptr(GKeyFile) config = dv_cli_config_load(error);
    g_autofree char *url = NULL;

    if (config == NULL)
        return FALSE;
    if (dv_cli_client_has_token(cli->client)) {
        g_autoptr(GError) local = NULL;
        g_autoptr(JsonNode) node = dv_cli_client_request(cli->client, "DELETE", "/session", NULL, NULL, &local);
        /* An expired session is as good as ended; anything else is worth
         * saying, but the local token goes either way. */
        if (node == NULL && !g_error_matches(local, DV_ERROR, DV_ERROR_AUTH_REQUIRED))
            fprintf(cli->err, "warning: the server did not end the session: %s\n", local->message);
    }
    url = g_key_file_get_string(config, "server", "url", NULL);
    if (g_key_file_has_key(config, "server", "token", NULL) &&
        (url == NULL || g_strcmp0(url, dv_cli_client_get_server(cli->client)) == 0)) {
        g_key_file_remove_key(config, "server", "token", NULL);
        if (!dv_cli_config_save(config, error))
            return FALSE;
    }
    if (cli->format == DV_CLI_FORMAT_TABLE)
        fprintf(cli->out, "Logged out of %s\n", dv_cli_client_get_server(cli->client));
    else
        fprintf(cli->out, "{}\n");
    return TRUE;
}

static gboolean
dv_cli_run_version(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *unused, GError **error)
{
    g_autoptr(JsonNode) node = NULL;
    JsonObject *server;

    if (cli->format == DV_CLI_FORMAT_TABLE) {
        fprintf(cli->out, "client: drover %s\n", DV_VERSION);
        fflush(cli->out);
    }
    node = dv_cli_client_request(cli->client, "GET", "/version", NULL, NULL, error);
    if (node == NULL)
        return FALSE;
    server = JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
    if (cli->format == DV_CLI_FORMAT_JSON) {
        g_autoptr(JsonObject) both = json_object_new();
        g_autoptr(JsonNode) both_node = NULL;
        json_object_set_string_member(both, "client", DV_VERSION);
        json_object_set_member(both, "server", json_node_copy(node));
        both_node = dv_json_node_new_object(json_object_ref(both));
        dv_cli_print_json(cli, both_node);
    } else {
        fprintf(cli->out, "server: droverd %s (api %s, schema %" G_GINT64_FORMAT ") at %s\n",
                dv_json_get_string(server, "version", "?"), dv_json_get_string(server, "api", "?"),
                dv_json_get_int(server, "schema_version", 0), dv_cli_client_get_server(cli->client));
    }
    return TRUE;
}

/* The document is JSON whatever --output says: it is meant for tools. */
static gboolean
dv_cli_run_openapi(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *unused, GError **error)
{
    g_autoptr(JsonNode) node = dv_cli_client_request(cli->client, "GET", "/openapi.json", NULL, NULL, error);
    if (node == NULL)
        return FALSE;
    dv_cli_print_json(cli, node);
    return TRUE;
}

/* drover metrics: the Prometheus text as the server wrote it (escape
 * sequences it may hold in a label value are escaped by the format). */
static gboolean
dv_cli_run_metrics(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *unused, GError **error)
{
    g_autoptr(GBytes) text = dv_cli_client_get_text(cli->client, cmd->path, error);
    gsize len = 0;
    const char *data;

    if (text == NULL)
        return FALSE;
    data = g_bytes_get_data(text, &len);
    if (cli->format == DV_CLI_FORMAT_JSON) {
        g_autoptr(JsonObject) o = json_object_new();
        g_autoptr(JsonNode) node = NULL;
        g_autofree char *s = g_strndup(data != NULL ? data : "", len);
        json_object_set_string_member(o, "text", s);
        node = dv_json_node_new_object(json_object_ref(o));
        dv_cli_print_json(cli, node);
        return TRUE;
    }
    if (len > 0 && fwrite(data, 1, len, cli->out) != len) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot write the metrics");
        return FALSE;
    }
    return TRUE;
}

const DvCliCommand dv_cli_commands_job[] = {
    { "job", "list", "", "List jobs.", dv_cli_job_list_options, NULL, dv_cli_run_list, "GET", "/jobs",
      dv_cli_job_columns },
    { "job", "show", "ID", "Show a job and its steps.", NULL, NULL, dv_cli_run_job_show },
    { "job", "watch", "ID", "Follow a job until it ends.", NULL, NULL, dv_cli_run_job_watch },
    { "job", "cancel", "ID", "Ask a job to stop at its next step boundary.", NULL, NULL, dv_cli_run_action, "POST",
      "/jobs/{0}/cancel", NULL, "Cancellation of job {0} requested" },
    { NULL },
};

const DvCliCommand dv_cli_commands_misc[] = {
    { "login", NULL, "", "Log in and keep the session token in the config file.", dv_cli_login_options,
      dv_cli_prepare_login, dv_cli_run_login, NULL, NULL, NULL, NULL,
      "login [--user U] [--password-file F | --password-stdin]" },
    { "logout", NULL, "", "End the session and forget its token.", NULL, NULL, dv_cli_run_logout },
    { "version", NULL, "", "Show the client's and the server's version.", NULL, NULL, dv_cli_run_version },
    { "openapi", NULL, "", "Print the server's OpenAPI 3.1 document (GET /openapi.json) as JSON.", NULL, NULL,
      dv_cli_run_openapi },
    { "upgrade-report", NULL, "", "Show the report of the last drover-setup upgrade: secrets to re-enter, hosts "
      "to refresh, limits to review.", NULL, NULL, dv_cli_run_show, "GET", "/upgrade-report" },
    { "metrics", NULL, "", "Print the server's metrics in the Prometheus text format (needs metrics.read).", NULL,
      NULL, dv_cli_run_metrics, "GET", "/metrics" },
    { NULL },
};
