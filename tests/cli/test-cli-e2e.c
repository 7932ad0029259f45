#define G_LOG_DOMAIN "DvCliE2e"

/* The real `drover` binary against a real droverd (libvirt's test:///
 * driver behind it): every check looks at what a user sees, the exit
 * status, stdout and stderr.  Each test starts its own droverd and uses a
 * private XDG_CONFIG_HOME, so the user's config is never read or written.
 *
 * Golden files (tests/cli/golden/\*.txt) hold outputs that must not change
 * by accident; rewrite them with DV_REGENERATE_GOLDEN=1 and review the
 * diff. */

#include <glib/gstdio.h>
#include <gio/gio.h>
#include <string.h>
#include <sys/stat.h>

#include "dv-test-util.h"

typedef struct {
    int status;
    char *out;
    char *err;
} CliResult;

static void
cli_result_free(CliResult *r)
{
    if (r == NULL)
        return;
    g_free(r->out);
    g_free(r->err);
    g_free(r);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CliResult, cli_result_free)

typedef struct {
    DvTestDaemon *d;
    char *tmp;       /* removed at teardown */
    char *xdg;       /* XDG_CONFIG_HOME of every drover run */
    char *host_xml;  /* a test:/// host: pool1, net1, one domain */
    char *host_uri;
    char *pg_db;     /* droverd's PostgreSQL database, or NULL (SQLite) */
} Fixture;

static const char *
drover_path(void)
{
    static char *path;
    if (path == NULL) {
        const char *top = g_getenv("DV_TOP_BUILDDIR");
        g_assert_nonnull(top); /* set by tests/meson.build */
        path = g_build_filename(top, "src", "cli", "drover", NULL);
    }
    return path;
}

static GSubprocessLauncher *
cli_launcher(const char *xdg, GSubprocessFlags flags)
{
    GSubprocessLauncher *launcher = g_subprocess_launcher_new(flags);

    g_subprocess_launcher_setenv(launcher, "XDG_CONFIG_HOME", xdg, TRUE);
    /* Nothing of the environment the tests run in may leak in. */
    g_subprocess_launcher_setenv(launcher, "HOME", xdg, TRUE);
    g_subprocess_launcher_unsetenv(launcher, "DROVER_SERVER");
    g_subprocess_launcher_unsetenv(launcher, "DROVER_TOKEN");
    g_subprocess_launcher_setenv(launcher, "LC_ALL", "C.UTF-8", TRUE);
    return launcher;
}

static GSubprocess *
cli_spawn_argv(const char *xdg, GSubprocessFlags flags, const char *const *args)
{
    g_autoptr(GSubprocessLauncher) launcher = cli_launcher(xdg, flags);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) error = NULL;
    GSubprocess *proc;

    g_ptr_array_add(argv, (char *)drover_path());
    for (guint i = 0; args[i] != NULL; i++)
        g_ptr_array_add(argv, (char *)args[i]);
    g_ptr_array_add(argv, NULL);
    proc = g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, &error);
    g_assert_no_error(error);
    return proc;
}

static CliResult *
cli_wait(GSubprocess *proc)
{
    g_autoptr(GError) error = NULL;
    CliResult *r = g_new0(CliResult, 1);

    g_subprocess_communicate_utf8(proc, NULL, NULL, &r->out, &r->err, &error);
    g_assert_no_error(error);
    g_assert_true(g_subprocess_get_if_exited(proc));
    r->status = g_subprocess_get_exit_status(proc);
    if (r->out == NULL)
        r->out = g_strdup("");
    if (r->err == NULL)
        r->err = g_strdup("");
    return r;
}

/* The command line as logged: an argument that follows a secret-taking
 * option (the refused-argument tests pass one on purpose) is masked, so
 * the suite's own log never holds a plaintext. */
static char *
cli_logged_command(const char *const *args)
{
    g_autoptr(GPtrArray) shown = g_ptr_array_new();
    for (guint i = 0; args[i] != NULL; i++) {
        gboolean secret = i > 0 && (g_strcmp0(args[i - 1], "--password") == 0 ||
                                    g_strcmp0(args[i - 1], "--value") == 0 ||
                                    g_strcmp0(args[i - 1], "--admin-password") == 0 ||
                                    g_strcmp0(args[i - 1], "--join-password") == 0 ||
                                    g_strcmp0(args[i - 1], "--product-key") == 0);
        g_ptr_array_add(shown, secret ? (gpointer) "<secret>" : (gpointer)args[i]);
    }
    g_ptr_array_add(shown, NULL);
    return g_strjoinv(" ", (char **)shown->pdata);
}

static CliResult *
cli_run_argv(const char *xdg, const char *const *args)
{
    g_autoptr(GSubprocess) proc =
        cli_spawn_argv(xdg, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, args);
    CliResult *r = cli_wait(proc);
    g_autofree char *cmd = cli_logged_command(args);

    g_test_message("$ drover %s\n[exit %d]\n--- stdout\n%s--- stderr\n%s", cmd, r->status, r->out, r->err);
    return r;
}

/* @first and the arguments after it up to NULL, NULL-terminated
 * (borrowed strings; owned array). */
static GPtrArray *
cli_args_valist(const char *first, va_list ap)
{
    GPtrArray *args = g_ptr_array_new();

    for (const char *a = first; a != NULL; a = va_arg(ap, const char *))
        g_ptr_array_add(args, (char *)a);
    g_ptr_array_add(args, NULL);
    return args;
}

/* drover ARGS... (NULL terminated) with the config in @xdg. */
static CliResult *
cli_run_valist(const char *xdg, const char *first, va_list ap)
{
    g_autoptr(GPtrArray) args = cli_args_valist(first, ap);
    return cli_run_argv(xdg, (const char *const *)args->pdata);
}

/* drover ARGS... (NULL terminated) with the fixture's config. */
static CliResult *
cli_run(Fixture *f, const char *first, ...) G_GNUC_NULL_TERMINATED;

static CliResult *
cli_run(Fixture *f, const char *first, ...)
{
    va_list ap;
    CliResult *r;

    va_start(ap, first);
    r = cli_run_valist(f->xdg, first, ap);
    va_end(ap);
    return r;
}

static void
assert_exit(CliResult *r, int status)
{
    if (r->status != status)
        g_error("exit status %d, expected %d\nstdout:\n%s\nstderr:\n%s", r->status, status, r->out, r->err);
}

static void
assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        g_error("'%s' not found in:\n%s", needle, haystack);
}

static void
assert_not_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) != NULL)
        g_error("'%s' unexpectedly found in:\n%s", needle, haystack);
}

/* A failure is reported as one "error: ..." line on stderr, nothing on stdout. */
static void
assert_error(CliResult *r, int status, const char *part)
{
    assert_exit(r, status);
    g_assert_true(g_str_has_prefix(r->err, "error: "));
    assert_contains(r->err, part);
    g_assert_cmpstr(r->out, ==, "");
}

static JsonObject *
parse_object(const char *text)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) error = NULL;

    json_parser_load_from_data(parser, text, -1, &error);
    g_assert_no_error(error);
    g_assert_true(JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)));
    return json_object_ref(json_node_get_object(json_parser_get_root(parser)));
}

/* The row of a table whose first cell is @name, or NULL. */
static char *
table_row(const char *table, const char *name)
{
    g_auto(GStrv) lines = g_strsplit(table, "\n", -1);
    g_autofree char *prefix = g_strconcat(name, " ", NULL);

    for (guint i = 0; lines[i] != NULL; i++)
        if (g_str_has_prefix(lines[i], prefix))
            return g_strdup(lines[i]);
    return NULL;
}

static gboolean
has_row(const char *table, const char *name)
{
    g_autofree char *row = table_row(table, name);
    return row != NULL;
}

/* Non-tty progress: one "NN%  step" line per change. */
static guint
count_progress_lines(const char *err)
{
    g_autoptr(GRegex) re = g_regex_new("^ {0,2}[0-9]{1,3}%  \\S", G_REGEX_MULTILINE, 0, NULL);
    g_autoptr(GMatchInfo) info = NULL;
    guint n = 0;

    g_regex_match(re, err, 0, &info);
    while (g_match_info_matches(info)) {
        n++;
        g_match_info_next(info, NULL);
    }
    return n;
}

/* A job that ran and failed: its progress lines, then one "error: ..."
 * line on stderr, nothing on stdout. */
static void
assert_job_error(CliResult *r, int status, const char *part)
{
    const char *line = strstr(r->err, "error: ");

    assert_exit(r, status);
    g_assert_nonnull(line);
    g_assert_true(line == r->err || line[-1] == '\n');
    g_assert_null(strchr(line, '\n') != NULL ? strstr(strchr(line, '\n'), "error: ") : NULL);
    assert_contains(line, part);
    g_assert_cmpuint(count_progress_lines(r->err), >=, 1);
    g_assert_cmpstr(r->out, ==, "");
}

/* @sql on the private PostgreSQL's admin connection, through psql (the
 * CLI tier links no database client). */
static void
pg_admin_exec(const char *sql)
{
    const char *uri = g_getenv("DV_TEST_PG_URI");
    const char *argv[] = { "psql", uri, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql, NULL };
    g_autofree char *err = NULL;
    gint status = 0;

    if (uri == NULL)
        g_error("DV_TEST_PG_URI is not set: run under tests/services/with-services");
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                      NULL, NULL, NULL, &err, &status, NULL) ||
        !g_spawn_check_wait_status(status, NULL))
        g_error("psql -c '%s' failed: %s", sql, err != NULL ? err : "");
}

/* A fresh database on the private PostgreSQL: its URI, its name in @ret_name. */
static char *
pg_new_database(char **ret_name)
{
    const char *uri = g_getenv("DV_TEST_PG_URI");
    g_autofree char *id = g_uuid_string_random();
    g_autofree char *name = NULL;
    g_autofree char *sql = NULL;
    const char *slash;
    const char *query;

    if (uri == NULL)
        g_error("DV_TEST_PG_URI is not set: run under tests/services/with-services");
    id[8] = '\0';
    name = g_strconcat("dv_cli_", id, NULL);
    sql = g_strdup_printf("CREATE DATABASE %s", name);
    pg_admin_exec(sql);
    /* postgresql://user@host:port/DB[?query]: DB replaced. */
    query = strchr(uri, '?');
    slash = g_strrstr_len(uri, query != NULL ? query - uri : -1, "/");
    g_assert_nonnull(slash);
    *ret_name = g_strdup(name);
    return g_strdup_printf("%.*s/%s%s", (int)(slash - uri), uri, name, query != NULL ? query : "");
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *pw_file = NULL;
    g_autofree char *pw_line = NULL;
    g_autofree char *config = NULL;
    g_autoptr(CliResult) r = NULL;
    GStatBuf st;

    f->tmp = g_dir_make_tmp("drover-cli-e2e-XXXXXX", &error);
    g_assert_no_error(error);
    f->xdg = g_build_filename(f->tmp, "config", NULL);
    g_assert_cmpint(g_mkdir(f->xdg, 0700), ==, 0);
    f->host_xml = dv_test_write_host_xml(f->tmp, "host1.xml", "dom", 1);
    f->host_uri = g_strconcat("test://", f->host_xml, NULL);
    if (g_strcmp0(data, "postgresql") == 0) {
        g_autofree char *uri = pg_new_database(&f->pg_db);
        const char *extra[] = { "--database", uri, NULL };
        f->d = dv_test_daemon_start(NULL, extra);
    } else {
        f->d = dv_test_daemon_start(NULL, NULL);
    }

    /* Log in the way a script does: a password file, no terminal. */
    pw_file = g_build_filename(f->tmp, "password", NULL);
    pw_line = g_strconcat(f->d->password, "\n", NULL);
    g_file_set_contents_full(pw_file, pw_line, -1, G_FILE_SET_CONTENTS_NONE, 0600, &error);
    g_assert_no_error(error);
    r = cli_run(f, "--server", f->d->url, "login", "--user", "admin", "--password-file", pw_file, NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "Logged in to ");
    assert_contains(r->out, " as admin");
    g_assert_cmpstr(r->err, ==, "");

    config = g_build_filename(f->xdg, "drover", "config", NULL);
    g_assert_cmpint(g_stat(config, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    const char *rm[] = { "rm", "-rf", f->tmp, NULL };
    gint status = 0;

    dv_test_daemon_free(f->d);
    if (f->pg_db != NULL) {
        g_autofree char *sql = g_strdup_printf("DROP DATABASE %s WITH (FORCE)", f->pg_db);
        pg_admin_exec(sql);
        g_free(f->pg_db);
    }
    if (!g_spawn_sync(NULL, (char **)rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status, NULL) ||
        status != 0)
        g_printerr("cannot remove %s\n", f->tmp);
    g_free(f->tmp);
    g_free(f->xdg);
    g_free(f->host_xml);
    g_free(f->host_uri);
}

static void
add_host(Fixture *f, const char *name)
{
    g_autoptr(CliResult) r = cli_run(f, "host", "add", name, "--uri", f->host_uri, NULL);
    g_autofree char *want = g_strdup_printf("Added host %s (id ", name);

    assert_exit(r, 0);
    g_assert_true(g_str_has_prefix(r->out, want));
    /* Not a terminal: progress comes as plain lines, never a bar. */
    g_assert_cmpuint(count_progress_lines(r->err), >=, 1);
    assert_not_contains(r->err, "\r");
    assert_not_contains(r->err, "[#");
}

/* A debug job that sleeps (droverd runs with DV_DEBUG_JOBS=1). */
static char *
start_sleep_job(Fixture *f, guint seconds)
{
    g_autofree char *body = g_strdup_printf("{\"seconds\":%u,\"resumable\":false}", seconds);
    guint status = 0;
    g_autoptr(JsonNode) resp = dv_test_request(f->d, "POST", "/api/v1/debug/sleep", body, &status);

    g_assert_cmpuint(status, ==, 202);
    return g_strdup(json_object_get_string_member(
        json_object_get_object_member(json_node_get_object(resp), "job"), "id"));
}

static void
wait_job_state(Fixture *f, const char *id, const char *state)
{
    g_autofree char *path = g_strdup_printf("/api/v1/jobs/%s", id);
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;

    for (;;) {
        guint status = 0;
        g_autoptr(JsonNode) resp = dv_test_request(f->d, "GET", path, NULL, &status);
        g_assert_cmpuint(status, ==, 200);
        if (g_strcmp0(json_object_get_string_member(json_node_get_object(resp), "state"), state) == 0)
            return;
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(50 * 1000);
    }
}

/* drover metrics: the server's Prometheus text, as text or in JSON. */
static void
test_metrics(Fixture *f, gconstpointer data)
{
    g_autoptr(CliResult) text = cli_run(f, "metrics", NULL);
    g_autoptr(CliResult) json = cli_run(f, "--output", "json", "metrics", NULL);

    assert_exit(text, 0);
    assert_contains(text->out, "# TYPE drover_hosts gauge\n");
    assert_contains(
        text->out,
        "drover_http_requests_total{op=\"session.login\",method=\"POST\",status=\"201\"}");
    assert_exit(json, 0);
    assert_contains(json->out, "\"text\"");
    assert_contains(json->out, "drover_vms");
}

static void
test_login(Fixture *f, gconstpointer data)
{
    g_autofree char *bad = g_build_filename(f->tmp, "wrong", NULL);
    g_autoptr(CliResult) version = cli_run(f, "version", NULL);
    g_autoptr(CliResult) wrong = NULL;
    g_autoptr(CliResult) refused = NULL;
    g_autoptr(CliResult) again = NULL;

    /* The server URL and token came from the config file login wrote. */
    assert_exit(version, 0);
    assert_contains(version->out, "client: drover ");
    assert_contains(version->out, "server: droverd ");

    g_assert_true(g_file_set_contents(bad, "not-the-password\n", -1, NULL));
    wrong = cli_run(f, "--server", f->d->url, "login", "--user", "admin", "--password-file", bad, NULL);
    assert_error(wrong, 5, "wrong user name or password");

    refused = cli_run(f, "login", "--user", "admin", "--password", "x", NULL);
    assert_exit(refused, 2);
    assert_contains(refused->err, "--password-file");

    /* A failed login keeps the earlier session. */
    again = cli_run(f, "host", "list", NULL);
    assert_exit(again, 0);
    g_assert_true(g_str_has_prefix(again->out, "NAME"));
}

static void
test_hosts(Fixture *f, gconstpointer data)
{
    g_autoptr(CliResult) list = NULL;
    g_autoptr(CliResult) json = NULL;
    g_autoptr(CliResult) show = NULL;
    g_autoptr(CliResult) r = NULL;
    g_autoptr(JsonObject) page = NULL;
    g_autofree char *row = NULL;
    JsonObject *host;

    add_host(f, "kvm1");

    list = cli_run(f, "host", "list", NULL);
    assert_exit(list, 0);
    g_assert_true(g_str_has_prefix(list->out, "NAME "));
    row = table_row(list->out, "kvm1");
    g_assert_nonnull(row);
    assert_contains(row, " ok ");
    assert_contains(row, f->host_uri);

    json = cli_run(f, "-o", "json", "host", "list", NULL);
    assert_exit(json, 0);
    page = parse_object(json->out);
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(page, "items")), ==, 1);
    g_assert_true(json_object_has_member(page, "next_cursor"));
    host = json_array_get_object_element(json_object_get_array_member(page, "items"), 0);
    g_assert_cmpstr(json_object_get_string_member(host, "name"), ==, "kvm1");
    g_assert_cmpstr(json_object_get_string_member(host, "state"), ==, "ok");
    g_assert_nonnull(json_object_get_string_member(host, "id"));

    show = cli_run(f, "host", "show", "kvm1", NULL);
    assert_exit(show, 0);
    g_assert_true(g_str_has_prefix(show->out, "id: "));
    assert_contains(show->out, "\nname: ");
    assert_contains(show->out, "\nLimits:\n");
    assert_contains(show->out, "\nPools:\n");
    assert_contains(show->out, "pool1");

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host", "refresh", "kvm1", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "Refreshed host kvm1");

    /* Groups and clusters, then lists that show names, not ids. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host-group", "add", "prod", "--description", "production", NULL);
    assert_exit(r, 0);
    g_assert_true(g_str_has_prefix(r->out, "Added host group prod (id "));
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "cluster", "add", "c1", "--group", "prod", NULL);
    assert_exit(r, 0);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host", "set", "kvm1", "--group", "prod", "--cluster", "c1", "--max-connections", "8", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "Updated host kvm1");

    g_clear_pointer(&row, g_free);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host", "list", "--group", "prod", NULL);
    assert_exit(r, 0);
    row = table_row(r->out, "kvm1");
    g_assert_nonnull(row);
    assert_contains(row, " prod ");
    assert_contains(row, " c1 ");

    g_clear_pointer(&row, g_free);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "cluster", "list", NULL);
    assert_exit(r, 0);
    row = table_row(r->out, "c1");
    g_assert_nonnull(row);
    assert_contains(row, " prod ");

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host-group", "show", "prod", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "description:");
    assert_contains(r->out, "production");

    /* Inventory read from the host. */
    g_clear_pointer(&row, g_free);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "pool", "list", "--host", "kvm1", NULL);
    assert_exit(r, 0);
    row = table_row(r->out, "pool1");
    g_assert_nonnull(row);
    assert_contains(row, " kvm1 ");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "volume", "list", "--host", "kvm1", "--pool", "pool1", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "dom0.qcow2");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "network", "list", NULL);
    assert_exit(r, 0);
    g_assert_true(has_row(r->out, "net1"));

    /* Errors: a duplicate, an unknown host, a bad number, a filter on an
     * unknown group. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host", "add", "kvm1", "--uri", f->host_uri, NULL);
    assert_error(r, 4, "already exists");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host", "show", "nosuchhost", NULL);
    assert_error(r, 3, "nosuchhost");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host", "set", "kvm1", "--max-connections", "0", NULL);
    assert_exit(r, 2);
    assert_contains(r->err, "--max-connections");
    assert_contains(r->err, "\nTry 'drover host set --help'.\n");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host", "list", "--group", "nosuchgroup", NULL);
    assert_error(r, 3, "nosuchgroup");
    /* A group with a cluster cannot go. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host-group", "remove", "prod", NULL);
    assert_error(r, 4, "prod");

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host", "remove", "kvm1", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "Removed host kvm1");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "cluster", "remove", "c1", NULL);
    assert_exit(r, 0);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host-group", "remove", "prod", NULL);
    assert_exit(r, 0);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host", "list", NULL);
    assert_exit(r, 0);
    g_assert_false(has_row(r->out, "kvm1"));
}

static void
test_library_and_templates(Fixture *f, gconstpointer data)
{
    g_autofree char *share_dir = g_build_filename(f->tmp, "images", NULL);
    g_autoptr(CliResult) r = NULL;
    g_autoptr(JsonObject) tmpl = NULL;
    g_autofree char *row = NULL;
    JsonArray *nets;

    g_assert_cmpint(g_mkdir(share_dir, 0755), ==, 0);
    r = cli_run(f, "library-share", "add", "images", "--path", share_dir, NULL);
    assert_exit(r, 0);
    g_assert_true(g_str_has_prefix(r->out, "Added library share images (id "));
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "library-share", "list", NULL);
    assert_exit(r, 0);
    g_assert_true(has_row(r->out, "images"));

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "template", "add", "small", "--vcpus", "2", "--memory", "512", "--network", "net1", NULL);
    assert_exit(r, 0);
    g_assert_true(g_str_has_prefix(r->out, "Added template small (id "));
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "template", "list", NULL);
    assert_exit(r, 0);
    row = table_row(r->out, "small");
    g_assert_nonnull(row);
    assert_contains(row, "512 MiB");
    assert_contains(row, "net1");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "template", "show", "small", "-o", "json", NULL);
    assert_exit(r, 0);
    tmpl = parse_object(r->out);
    g_assert_cmpint(json_object_get_int_member(tmpl, "vcpus"), ==, 2);
    g_assert_cmpint(json_object_get_int_member(tmpl, "memory_mib"), ==, 512);
    nets = json_object_get_array_member(tmpl, "networks");
    g_assert_cmpuint(json_array_get_length(nets), ==, 1);

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "template", "add", "small", "--vcpus", "1", "--memory", "64", NULL);
    assert_error(r, 4, "small");

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "template", "remove", "small", NULL);
    assert_exit(r, 0);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "library-share", "remove", "images", NULL);
    assert_exit(r, 0);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "library-share", "show", "images", NULL);
    assert_error(r, 3, "images");
}

static void
test_vm_round_trip(Fixture *f, gconstpointer data)
{
    g_autoptr(CliResult) r = NULL;
    g_autoptr(JsonObject) vm = NULL;
    g_autoptr(JsonObject) snaps = NULL;
    g_autofree char *row = NULL;
    JsonObject *snap;

    add_host(f, "kvm1");

    r = cli_run(f, "vm", "create", "web1", "--host", "kvm1", "--vcpus", "1", "--memory", "128", "--disk",
                "64:pool1", "--network", "net1", NULL);
    assert_exit(r, 0);
    g_assert_true(g_str_has_prefix(r->out, "Created vm web1 (id "));
    g_assert_cmpuint(count_progress_lines(r->err), >=, 1);

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "list", "--host", "kvm1", NULL);
    assert_exit(r, 0);
    row = table_row(r->out, "web1");
    g_assert_nonnull(row);
    assert_contains(row, " kvm1 ");
    assert_contains(row, " shutoff ");
    assert_contains(row, "128 MiB");

    /* droverd records the volumes vm.create made only at the next
     * refresh of the host (reported as a server issue). */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host", "refresh", "kvm1", NULL);
    assert_exit(r, 0);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "volume", "list", "--pool", "pool1", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "web1");

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "start", "web1", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "Started vm web1");

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "show", "web1", "-o", "json", NULL);
    assert_exit(r, 0);
    vm = parse_object(r->out);
    g_assert_cmpstr(json_object_get_string_member(vm, "name"), ==, "web1");
    g_assert_cmpstr(json_object_get_string_member(vm, "state"), ==, "running");
    g_assert_cmpint(json_object_get_int_member(vm, "memory_mib"), ==, 128);

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "show", "web1", NULL);
    assert_exit(r, 0);
    g_assert_true(g_str_has_prefix(r->out, "id: "));
    assert_contains(r->out, "host_name:");
    assert_contains(r->out, "kvm1");

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "snapshot", "create", "web1", "s1", "--description", "before upgrade", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "Created snapshot s1 of vm web1");

    g_clear_pointer(&row, g_free);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "snapshot", "list", "web1", NULL);
    assert_exit(r, 0);
    row = table_row(r->out, "s1");
    g_assert_nonnull(row);
    assert_contains(row, " running ");
    assert_contains(row, " yes ");
    assert_contains(row, "before upgrade");

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "-o", "json", "vm", "snapshot", "list", "web1", NULL);
    assert_exit(r, 0);
    snaps = parse_object(r->out);
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(snaps, "items")), ==, 1);
    snap = json_array_get_object_element(json_object_get_array_member(snaps, "items"), 0);
    g_assert_cmpstr(json_object_get_string_member(snap, "name"), ==, "s1");
    g_assert_true(json_object_get_boolean_member(snap, "is_current"));
    g_assert_cmpstr(json_object_get_string_member(snap, "vm_state"), ==, "running");

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "snapshot", "create", "web1", "s1", NULL);
    assert_error(r, 4, "s1");

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "snapshot", "revert", "web1", "s1", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "Reverted vm web1 to snapshot s1");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "snapshot", "delete", "web1", "s1", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "Deleted snapshot s1 of vm web1");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "snapshot", "delete", "web1", "s1", NULL);
    assert_error(r, 3, "s1");

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "stop", "web1", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "Stopped vm web1");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "delete", "web1", "--delete-volumes", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "Deleted vm web1");

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "list", NULL);
    assert_exit(r, 0);
    g_assert_false(has_row(r->out, "web1"));
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host", "refresh", "kvm1", NULL);
    assert_exit(r, 0);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "volume", "list", NULL);
    assert_exit(r, 0);
    assert_not_contains(r->out, "web1");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "show", "web1", NULL);
    assert_error(r, 3, "web1");
}

/* The id and capacity of volume @name from `volume list -o json`. */
static char *
volume_id(Fixture *f, const char *name, gint64 *ret_capacity)
{
    g_autoptr(CliResult) r = cli_run(f, "volume", "list", "-o", "json", "--limit", "500", NULL);
    g_autoptr(JsonObject) list = NULL;
    JsonArray *items;

    assert_exit(r, 0);
    list = parse_object(r->out);
    items = json_object_get_array_member(list, "items");
    for (guint i = 0; i < json_array_get_length(items); i++) {
        JsonObject *v = json_array_get_object_element(items, i);
        if (g_strcmp0(json_object_get_string_member(v, "name"), name) == 0) {
            *ret_capacity = json_object_get_int_member(v, "capacity");
            return g_strdup(json_object_get_string_member(v, "id"));
        }
    }
    g_error("no volume %s in:\n%s", name, r->out);
}

/* volume create, resize, delete and vm disk add/remove on a test:///
 * host: what its driver does (create, delete) and every refusal, each
 * naming the field, the rule or the VM. */
static void
test_volumes(Fixture *f, gconstpointer data)
{
    g_autoptr(CliResult) r = NULL;
    g_autofree char *id = NULL;
    g_autofree char *used = NULL;
    gint64 capacity = 0;

    add_host(f, "kvm1");
    r = cli_run(f, "volume", "create", "data1", "--pool", "pool1", "--size", "20M", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "Created volume data1");
    id = volume_id(f, "data1", &capacity);
    g_assert_cmpint(capacity, ==, 20 * 1024 * 1024);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "volume", "create", "data1", "--pool", "pool1", "--size", "1M", NULL);
    assert_error(r, 4, "already holds a volume named data1");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "volume", "create", "data2", "--pool", "pool1", "--size", "20X", NULL);
    assert_exit(r, 2);
    assert_contains(r->err, "--size");

    /* Shrinking: refused naming size; deleting a VM's disk: naming the VM. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "volume", "resize", id, "--size", "10M", NULL);
    assert_error(r, 6, "a volume only grows");
    {
        /* +SIZE adds to the capacity: the job asks for 21 MiB (and test:///
         * cannot resize, so it fails there, after the server's checks). */
        g_autoptr(JsonObject) job = NULL;
        g_clear_pointer(&r, cli_result_free);
        r = cli_run(f, "--no-wait", "-o", "json", "volume", "resize", id, "--size", "+1M", NULL);
        assert_exit(r, 0);
        job = parse_object(r->out);
        g_assert_cmpint(json_object_get_int_member(json_object_get_object_member(job, "params"), "size"), ==,
                        21 * 1024 * 1024);
        g_clear_pointer(&r, cli_result_free);
        r = cli_run(f, "job", "watch", json_object_get_string_member(job, "id"), NULL);
        assert_job_error(r, 6, "not supported");
        g_clear_pointer(&r, cli_result_free);
        r = cli_run(f, "volume", "resize", id, "--size", "+64T", NULL);
        assert_exit(r, 2);
        assert_contains(r->err, "above 64 TiB");
    }
    used = volume_id(f, "dom0.qcow2", &capacity);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "volume", "delete", used, NULL);
    assert_error(r, 4, "disk of VM dom0");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "disk", "add", "dom0", "--volume", "/pool1/dom0.qcow2", NULL);
    assert_error(r, 4, "already a disk of VM dom0");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "disk", "add", "dom0", NULL);
    assert_exit(r, 2);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "disk", "remove", "dom0", "vdq", NULL);
    assert_error(r, 3, "has no disk vdq");

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "volume", "delete", id, NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "Deleted volume");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "volume", "list", NULL);
    assert_exit(r, 0);
    assert_not_contains(r->out, "data1");
}

/* vm nic add/remove and the guest's addresses in vm show on a test:///
 * host whose network net1 has DHCP (the test driver then makes up one
 * lease per interface; it has no device attach, so an add fails in its
 * job): the refusals, each naming the field and the rule. */
static void
test_vm_nics(Fixture *f, gconstpointer data)
{
    g_autoptr(CliResult) r = NULL;
    g_autoptr(JsonObject) vm = NULL;
    g_autofree char *text = NULL;
    g_autofree char *with_ip = NULL;
    g_auto(GStrv) parts = NULL;
    g_autoptr(GError) error = NULL;
    JsonObject *nic;
    const char *mac;

    g_assert_true(g_file_get_contents(f->host_xml, &text, NULL, &error));
    parts = g_strsplit(text, "<bridge name='virbr9'/>", 2);
    with_ip = g_strjoinv("<bridge name='virbr9'/><ip address='192.168.122.1' "
                         "netmask='255.255.255.0'><dhcp><range start='192.168.122.2' "
                         "end='192.168.122.254'/></dhcp></ip>",
                         parts);
    g_assert_true(g_file_set_contents(f->host_xml, with_ip, -1, &error));
    add_host(f, "kvm1");

    r = cli_run(f, "vm", "show", "dom0", "-o", "json", NULL);
    assert_exit(r, 0);
    vm = parse_object(r->out);
    nic = json_array_get_object_element(
        json_object_get_array_member(json_object_get_object_member(vm, "spec"), "networks"), 0);
    mac = json_object_get_string_member(nic, "mac");
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(nic, "addresses")), ==, 1);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "show", "dom0", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "192.168.122.");
    assert_contains(r->out, "lease");
    assert_contains(r->out, mac);

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "nic", "add", "dom0", "--network", "nonet", NULL);
    assert_error(r, 3, "network: host kvm1 of VM dom0 has no network 'nonet'");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "nic", "add", "dom0", "--network", "net1", "--mac", "52:54:00:1", NULL);
    assert_error(r, 6, "mac: must be a MAC address");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "nic", "add", "dom0", "--network", "net1", "--mac", "03:00:00:00:00:01",
                NULL);
    assert_error(r, 6, "not a unicast address");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "nic", "add", "dom0", "--network", "net1", "--mac", mac, NULL);
    assert_error(r, 4, "is in use by VM dom0");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "nic", "add", "dom0", "--network", "net1", "--model", "ne2k", NULL);
    assert_exit(r, 2);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "nic", "add", "dom0", NULL);
    assert_exit(r, 2);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "nic", "remove", "dom0", "52:54:00:00:00:01", NULL);
    assert_error(r, 3, "mac: VM dom0 has no network interface 52:54:00:00:00:01");
    /* A free MAC: accepted, then the test driver cannot attach. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "nic", "add", "dom0", "--network", "net1", NULL);
    g_assert_cmpint(r->status, !=, 0);
    assert_contains(r->err, "not supported");
}

/* vm set, reboot, reset, shutdown --timeout, delete --force on a test:///
 * host (its driver implements them all): what changed, when it takes
 * effect, and the refusals, each naming the field or the state. */
static void
test_vm_day2(Fixture *f, gconstpointer data)
{
    g_autoptr(CliResult) r = NULL;
    g_autoptr(JsonObject) vm = NULL;

    add_host(f, "kvm1");
    r = cli_run(f, "vm", "create", "day2", "--host", "kvm1", "--vcpus", "1", "--memory", "128",
                NULL);
    assert_exit(r, 0);

    /* Shut off: everything lands in the definition, for the next boot. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "set", "day2", "--vcpus", "2", "--memory", "256M", "--description",
                "day two", "--autostart", "on", "--boot-order", "disk,network", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "Changed vm day2");
    assert_contains(r->out, "  vcpus: at the next boot\n");
    assert_contains(r->out, "  memory_mib: at the next boot\n");
    assert_contains(r->out, "  boot_order: at the next boot\n");
    assert_contains(r->out, "  autostart: now\n");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "show", "day2", "-o", "json", NULL);
    assert_exit(r, 0);
    vm = parse_object(r->out);
    g_assert_cmpint(json_object_get_int_member(vm, "vcpus"), ==, 2);
    g_assert_cmpint(json_object_get_int_member(vm, "memory_mib"), ==, 256);
    g_assert_cmpstr(json_object_get_string_member(vm, "description"), ==, "day two");
    g_assert_true(
        json_object_get_boolean_member(json_object_get_object_member(vm, "spec"), "autostart"));

    /* Rename while off; the old name is gone. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "set", "day2", "--name", "day3", NULL);
    assert_exit(r, 0);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "show", "day2", NULL);
    assert_error(r, 3, "day2");

    /* Running: memory within the maximum moves live; a rename is refused. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "start", "day3", NULL);
    assert_exit(r, 0);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "set", "day3", "--memory", "192", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "  memory_mib: live\n");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "set", "day3", "--name", "day4", NULL);
    assert_error(r, 4, "renamed only while shut off");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "set", "day3", "--memory", "4T", NULL);
    assert_error(r, 6, "memory_mib: host kvm1 has only");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "set", "day3", "--vcpus", "256", NULL);
    assert_error(r, 6, "vcpus: host kvm1 has only");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "set", "day3", "--boot-order", "disk,floppy", NULL);
    assert_error(r, 6, "boot_order");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "set", "day3", NULL);
    assert_exit(r, 2);
    assert_contains(r->err, "nothing to change");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "set", "day3", "--memory", "2X", NULL);
    assert_exit(r, 2);

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "reboot", "day3", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "Rebooted vm day3");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "reset", "day3", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "Reset vm day3");

    /* Delete while running: refused naming the state, then forced. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "delete", "day3", NULL);
    assert_error(r, 4, "is running");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "delete", "day3", "--force", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "Deleted vm day3");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "reboot", "day3", NULL);
    assert_error(r, 3, "day3");
}

/* vm clone on a test:/// host: a full and a linked clone with their own
 * name and UUID, and the refusals naming the field. */
/* assert_error() that shows what came when it is not that. */
static void
media_error(CliResult *r, int status, const char *part)
{
    if (!g_str_has_prefix(r->err, "error: ") || strstr(r->err, part) == NULL)
        g_error("want 'error: ...%s...', got exit %d, stderr '%s', stdout '%s'", part, r->status,
                r->err, r->out);
    assert_error(r, status, part);
}

/* Installation media through the CLI (issue 12, item 2) on a test:///
 * host: each refusal names its field with the exit status of its code; an
 * upload is streamed, shows progress and ends with the job's error (the
 * test driver has no streams; the real upload is in media-system). */
static void
test_media(Fixture *f, gconstpointer data)
{
    g_autoptr(CliResult) r = NULL;
    g_autofree char *file = g_build_filename(f->xdg, "small.iso", NULL);

    add_host(f, "kvm1");
    r = cli_run(f, "library-share", "add", "isos", "--path", "/pool1", "--host", "kvm1", "--pool",
                "pool1", NULL);
    assert_exit(r, 0);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "create", "m1", "--host", "kvm1", "--memory", "128", "--cdrom",
                "isos/absent.iso", NULL);
    media_error(r, 3, "cdroms[0].file");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "create", "m1", "--host", "kvm1", "--memory", "128", "--cdrom-volume",
                "pool1/absent.iso", "--boot-order", "cdrom,disk", NULL);
    media_error(r, 3, "cdroms[0].volume");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "create", "m1", "--host", "kvm1", "--memory", "128", "--cdrom", "noslash",
                NULL);
    assert_exit(r, 2);
    assert_contains(r->err, "SHARE/FILE");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "create", "m1", "--host", "kvm1", "--memory", "128", "--boot-order",
                "cdrom,floppy", NULL);
    media_error(r, 6, "boot_order");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "create", "m1", "--host", "kvm1", "--memory", "128", NULL);
    assert_exit(r, 0);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "cdrom", "insert", "m1", "isos/absent.iso", NULL);
    media_error(r, 3, "file");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "cdrom", "insert", "m1", "pool1/absent.iso", "--pool", NULL);
    media_error(r, 3, "volume");
    g_clear_pointer(&r, cli_result_free);
    /* No drive to eject: found by the job on the host. */
    r = cli_run(f, "vm", "cdrom", "eject", "m1", NULL);
    assert_exit(r, 3);
    assert_contains(r->err, "error: cdrom: ");

    /* Uploads: a name missing from a share on no host, and one the test
     * driver cannot stream. */
    g_assert_true(g_file_set_contents(file, "not really an iso", -1, NULL));
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "library-share", "upload", "default", file, NULL);
    assert_exit(r, 6);
    assert_contains(r->err, "library_share");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "volume", "upload", "pool1", file, "--name", "up.iso", NULL);
    assert_exit(r, 6);
    assert_contains(r->err, "Uploading: 100%");
    assert_contains(r->err, "error: ");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "volume", "upload", "pool1", "/nonexistent/file.iso", NULL);
    assert_exit(r, 2);
    assert_contains(r->err, "FILE");
}

static void
test_vm_clone(Fixture *f, gconstpointer data)
{
    g_autoptr(CliResult) r = NULL;
    g_autoptr(JsonObject) src = NULL;
    g_autoptr(JsonObject) c1 = NULL;

    add_host(f, "kvm1");
    r = cli_run(f, "vm", "create", "src", "--host", "kvm1", "--memory", "128", "--disk", "16:pool1",
                NULL);
    assert_exit(r, 0);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "clone", "src", "c1", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "Cloned vm src as c1");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "clone", "src", "c2", "--linked", "--pool", "pool1", NULL);
    assert_exit(r, 0);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "show", "src", "-o", "json", NULL);
    assert_exit(r, 0);
    src = parse_object(r->out);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "show", "c1", "-o", "json", NULL);
    assert_exit(r, 0);
    c1 = parse_object(r->out);
    g_assert_cmpstr(json_object_get_string_member(c1, "uuid"), !=,
                    json_object_get_string_member(src, "uuid"));
    g_assert_cmpint(json_object_get_int_member(c1, "memory_mib"), ==, 128);

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "clone", "src", "c1", NULL);
    assert_error(r, 4, "already has a VM named 'c1'");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "clone", "src", "c3", "--pool", "nopool", NULL);
    assert_error(r, 3, "no pool 'nopool'");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "clone", "src", NULL);
    assert_exit(r, 2);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "start", "src", NULL);
    assert_exit(r, 0);
    /* A running source is frozen while copied; the test driver has no
     * disk-only snapshots, so this one fails with the host's reason. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "clone", "src", "c3", NULL);
    g_assert_cmpint(r->status, !=, 0);
    assert_contains(r->err, "cannot freeze disk vda");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "show", "c3", NULL);
    assert_error(r, 3, "c3");
}

/* @sql on droverd's own database while it runs: sqlite3 on its file, or
 * psql on its PostgreSQL database (the CLI tier links no database client). */
static void
db_exec(Fixture *f, const char *sql)
{
    g_autofree char *file = g_build_filename(f->d->state_dir, "drover.db", NULL);
    g_autofree char *uri = NULL;
    g_autofree char *err = NULL;
    gint status = 0;
    const char *sqlite_argv[] = { "sqlite3", "-bail", file, sql, NULL };
    const char *pg_argv[] = { "psql", NULL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql, NULL };
    const char *const *argv = sqlite_argv;

    if (f->pg_db != NULL) {
        const char *admin = g_getenv("DV_TEST_PG_URI");
        const char *query = strchr(admin, '?');
        const char *slash = g_strrstr_len(admin, query != NULL ? query - admin : -1, "/");
        g_assert_nonnull(slash);
        uri = g_strdup_printf("%.*s/%s%s", (int)(slash - admin), admin, f->pg_db, query != NULL ? query : "");
        pg_argv[1] = uri;
        argv = pg_argv;
    }
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                      NULL, &err, &status, NULL) ||
        !g_spawn_check_wait_status(status, NULL))
        g_error("%s '%s' failed: %s", argv[0], sql, err != NULL ? err : "");
}

/* The id of @noun @name, through the CLI. */
static char *
object_id(Fixture *f, const char *noun, const char *name)
{
    g_autoptr(CliResult) r = cli_run(f, "-o", "json", noun, "show", name, NULL);
    g_autoptr(JsonObject) obj = NULL;

    assert_exit(r, 0);
    obj = parse_object(r->out);
    return g_strdup(json_object_get_string_member(obj, "id"));
}

/* CLI habits (issue 12, item 10) against a real droverd: ids by unique
 * prefix in a path and in a body, an ambiguous prefix listing the
 * candidates, names first, and filters that cannot match refused. */
static void
test_ids_by_prefix(Fixture *f, gconstpointer data)
{
    g_autoptr(CliResult) r = NULL;
    g_autofree char *host_id = NULL;
    g_autofree char *vm_id = NULL;
    g_autofree char *short8 = NULL;
    g_autofree char *host8 = NULL;
    g_autoptr(JsonObject) vm = NULL;

    add_host(f, "kvm1");
    host_id = object_id(f, "host", "kvm1");
    host8 = g_strndup(host_id, 8);
    /* Sizes with units, and a host given by a prefix of its id (a body
     * parent). */
    r = cli_run(f, "vm", "create", "web1", "--host", host8, "--memory", "0.125G", "--disk", "64M:pool1", NULL);
    assert_exit(r, 0);
    g_assert_true(g_str_has_prefix(r->out, "Created vm web1 (id "));
    vm_id = object_id(f, "vm", "web1");
    short8 = g_strndup(vm_id, 8);

    /* The path's {ref}: show and act on a VM by 8 digits of its id. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "-o", "json", "vm", "show", short8, NULL);
    assert_exit(r, 0);
    vm = parse_object(r->out);
    g_assert_cmpstr(json_object_get_string_member(vm, "id"), ==, vm_id);
    g_assert_cmpint(json_object_get_int_member(vm, "memory_mib"), ==, 128);
    g_clear_pointer(&r, cli_result_free);
    {
        g_autofree char *upper = g_ascii_strup(short8, -1);
        r = cli_run(f, "vm", "start", upper, NULL);
    }
    assert_exit(r, 0);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "--no-wait", "vm", "stop", short8, NULL);
    assert_exit(r, 0);
    {
        /* A job by prefix too (its scope is its host or its creator). */
        g_autofree char *job_id = g_strstrip(g_strdup(r->out));
        g_autofree char *job8 = g_strndup(job_id, 8);
        g_clear_pointer(&r, cli_result_free);
        r = cli_run(f, "job", "watch", job8, NULL);
        assert_exit(r, 0);
        g_clear_pointer(&r, cli_result_free);
        r = cli_run(f, "-o", "json", "job", "show", job8, NULL);
        assert_exit(r, 0);
        assert_contains(r->out, job_id);
    }
    /* Below six digits: not a prefix, an unknown name. */
    g_clear_pointer(&r, cli_result_free);
    {
        g_autofree char *five = g_strndup(vm_id, 5);
        r = cli_run(f, "vm", "show", five, NULL);
        assert_error(r, 3, "not found");
    }
    /* A query filter by prefix (the CLI resolves it through the path). */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "list", "--host", host8, NULL);
    assert_exit(r, 0);
    g_assert_true(has_row(r->out, "web1"));

    /* Filters that cannot match: errors naming the flag, not empty tables. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "list", "--host", "nosuch", NULL);
    assert_error(r, 3, "--host: host 'nosuch' not found");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "volume", "list", "--pool", "nosuchpool", NULL);
    assert_error(r, 3, "--pool: ");
    assert_contains(r->err, "nosuchpool");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "list", "--state", "runing", NULL);
    assert_exit(r, 2);
    assert_contains(r->err, "--state: must be one of running|");
    g_assert_cmpstr(r->out, ==, "");
    /* An allowed value that matches nothing is still an empty table. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "list", "--state", "crashed", NULL);
    assert_exit(r, 0);
    g_assert_false(has_row(r->out, "web1"));
    {
        /* The API says the same to any client: a state no VM can be in is
         * 400 naming state; a reference filter takes an id's prefix. */
        g_autofree char *by_prefix = g_strdup_printf("/api/v1/vms?host_id=%s", host8);
        g_autofree char *by_id = g_strdup_printf("/api/v1/vms?host_id=%s", host_id);
        g_autoptr(JsonNode) bad = NULL;
        g_autoptr(JsonNode) page = NULL;
        guint status = 0;
        bad = dv_test_request(f->d, "GET", "/api/v1/vms?state=runing", NULL, &status);
        dv_test_assert_error(bad, status, 400, "invalid-argument", "state");
        {
            g_autofree char *text = json_to_string(bad, FALSE);
            assert_contains(text, "one of running, paused");
        }
        page = dv_test_request(f->d, "GET", by_prefix, NULL, &status);
        g_assert_cmpuint(status, ==, 200);
        /* web1 and the test host's own domain. */
        g_assert_cmpint(dv_test_count(f->d, by_prefix), ==, 2);
        g_assert_cmpint(dv_test_count(f->d, by_id), ==, 2);
        g_clear_pointer(&bad, json_node_unref);
        bad = dv_test_request(f->d, "GET", "/api/v1/hosts?state=down", NULL, &status);
        dv_test_assert_error(bad, status, 400, "invalid-argument", "state");
    }

    /* Two host groups whose ids start alike (set in the database): the
     * prefix is ambiguous and both are listed; more digits pick one; a
     * group named like the prefix is found by its name first. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host-group", "add", "g1", NULL);
    assert_exit(r, 0);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host-group", "add", "g2", NULL);
    assert_exit(r, 0);
    db_exec(f, "UPDATE host_groups SET id = 'abcdef01-0000-4000-8000-000000000001' WHERE name = 'g1'");
    db_exec(f, "UPDATE host_groups SET id = 'abcdef02-0000-4000-8000-000000000002' WHERE name = 'g2'");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host-group", "show", "abcdef0", NULL);
    assert_error(r, 4, "'abcdef0' is the start of more than one host group id");
    assert_contains(r->err, "abcdef01-0000-4000-8000-000000000001 (g1)");
    assert_contains(r->err, "abcdef02-0000-4000-8000-000000000002 (g2)");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host", "list", "--group", "abcdef0", NULL);
    assert_error(r, 4, "--group: ");
    assert_contains(r->err, "(g1)");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "-o", "json", "host-group", "show", "ABCDEF02", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "\"g2\"");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host-group", "add", "abcdef", NULL);
    assert_exit(r, 0);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "-o", "json", "host-group", "show", "abcdef", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "\"name\" : \"abcdef\"");
}

static void
test_json_and_no_wait(Fixture *f, gconstpointer data)
{
    g_autoptr(CliResult) r = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(JsonObject) queued = NULL;
    g_autoptr(JsonObject) list = NULL;
    g_autofree char *id = NULL;
    JsonObject *result;

    add_host(f, "kvm1");

    /* A change with -o json prints the final job. */
    r = cli_run(f, "-o", "json", "vm", "create", "web1", "--host", "kvm1", "--vcpus", "1", "--memory", "64", NULL);
    assert_exit(r, 0);
    job = parse_object(r->out);
    g_assert_cmpstr(json_object_get_string_member(job, "kind"), ==, "vm.create");
    g_assert_cmpstr(json_object_get_string_member(job, "state"), ==, "succeeded");
    g_assert_cmpint(json_object_get_int_member(job, "progress"), ==, 100);
    g_assert_true(json_object_has_member(job, "steps"));
    result = json_object_get_object_member(job, "result");
    g_assert_nonnull(result);
    g_assert_nonnull(json_object_get_string_member(result, "id"));

    /* --no-wait -o json: the job as accepted. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "--no-wait", "-o", "json", "vm", "start", "web1", NULL);
    assert_exit(r, 0);
    queued = parse_object(r->out);
    g_assert_cmpstr(json_object_get_string_member(queued, "kind"), ==, "vm.start");
    g_assert_nonnull(json_object_get_string_member(queued, "id"));
    g_assert_nonnull(json_object_get_string_member(queued, "state"));
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "job", "watch", json_object_get_string_member(queued, "id"), NULL);
    assert_exit(r, 0);

    /* --no-wait: just the job id, which job watch follows to the end. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "stop", "web1", "--no-wait", NULL);
    assert_exit(r, 0);
    id = g_strstrip(g_strdup(r->out));
    g_assert_true(g_uuid_string_is_valid(id));
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "job", "watch", id, NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "succeeded");

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "job", "list", "-o", "json", "--limit", "2", NULL);
    assert_exit(r, 0);
    list = parse_object(r->out);
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(list, "items")), ==, 2);
    g_assert_nonnull(json_object_get_string_member(list, "next_cursor"));
    assert_contains(r->err, "(more: use --all or --limit)");

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "job", "list", "--all", NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "vm.create");
    assert_contains(r->out, "host.add");
    g_assert_cmpstr(r->err, ==, "");

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "job", "show", id, NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "kind:");
    assert_contains(r->out, "vm.stop");
    assert_contains(r->out, "\nSteps:\n");
}

static void
test_errors(Fixture *f, gconstpointer data)
{
    g_autoptr(CliResult) r = NULL;

    add_host(f, "kvm1");

    r = cli_run(f, "vm", "show", "nosuchvm", NULL);
    assert_error(r, 3, "nosuchvm");

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "create", "web1", "--host", "kvm1", "--vcpus", "1", "--memory", "64", NULL);
    assert_exit(r, 0);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "create", "web1", "--host", "kvm1", "--vcpus", "1", "--memory", "64", NULL);
    assert_error(r, 4, "web1");

    /* The server's 400 names the field. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "create", "web2", "--host", "kvm1", "--vcpus", "1", NULL);
    assert_error(r, 6, "memory_mib");
    /* An unknown network is the server's to find. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "create", "web2", "--host", "kvm1", "--vcpus", "1", "--memory", "64", "--network",
                "nosuchnet", NULL);
    assert_exit(r, 3);
    assert_contains(r->err, "nosuchnet");

    /* Caught before any request: exit 2, the error and where the usage is. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "create", "web2", "--host", "kvm1", "--memory", "8", NULL);
    assert_exit(r, 2);
    assert_contains(r->err, "--memory");
    assert_contains(r->err, "\nTry 'drover vm create --help'.\n");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "create", "web2", "--vcpus", "1", "--memory", "64", NULL);
    assert_exit(r, 2);
    assert_contains(r->err, "--host");

    /* A job that runs and fails with host-failed exits 8. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "host", "add", "broken", "--uri", "test:///nonexistent/host.xml", NULL);
    assert_exit(r, 8);
    assert_contains(r->err, "error: ");
    assert_contains(r->err, "(failed)");

    /* A bad token: 401, exit 5. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "--token", "not-a-token", "host", "list", NULL);
    assert_error(r, 5, "not logged in");

    /* After logout the token is gone. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "logout", NULL);
    assert_exit(r, 0);
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "vm", "list", NULL);
    assert_error(r, 5, "drover login");
}

static void
test_server_down(Fixture *f, gconstpointer data)
{
    g_autoptr(CliResult) r = NULL;
    g_autofree char *url = g_strdup(f->d->url);

    dv_test_daemon_stop(f->d, FALSE);
    /* The URL comes from the config file. */
    r = cli_run(f, "host", "list", NULL);
    assert_error(r, 7, "cannot reach the Drover server");
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "--server", url, "version", NULL);
    assert_exit(r, 7);
}

static void
test_job_watch(Fixture *f, gconstpointer data)
{
    g_autofree char *id = start_sleep_job(f, 3);
    g_autoptr(CliResult) r = cli_run(f, "job", "watch", id, NULL);
    g_autofree char *done = g_strdup_printf("Job %s (debug.sleep-once) succeeded", id);

    assert_exit(r, 0);
    assert_contains(r->out, done);
    assert_contains(r->err, "%  sleep\n");
    g_assert_cmpuint(count_progress_lines(r->err), >=, 2);

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "job", "show", id, NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "succeeded");
    assert_contains(r->out, "\nSteps:\n");

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "job", "show", "nosuchjob", NULL);
    assert_error(r, 3, "nosuchjob");
}

static void
test_job_cancel(Fixture *f, gconstpointer data)
{
    g_autofree char *id = start_sleep_job(f, 300);
    const char *watch_args[] = { "job", "watch", id, NULL };
    g_autoptr(GSubprocess) watcher = NULL;
    g_autoptr(CliResult) watched = NULL;
    g_autoptr(CliResult) r = NULL;
    g_autoptr(JsonObject) job = NULL;

    wait_job_state(f, id, "running");
    watcher = cli_spawn_argv(f->xdg, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, watch_args);

    r = cli_run(f, "job", "cancel", id, NULL);
    assert_exit(r, 0);
    assert_contains(r->out, "Cancellation of job");

    watched = cli_wait(watcher);
    g_test_message("job watch: [exit %d]\n%s%s", watched->status, watched->out, watched->err);
    assert_exit(watched, 8);
    assert_contains(watched->err, "error: job ");
    assert_contains(watched->err, "cancelled");

    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "-o", "json", "job", "show", id, NULL);
    assert_exit(r, 0);
    job = parse_object(r->out);
    g_assert_cmpstr(json_object_get_string_member(job, "state"), ==, "cancelled");

    /* Watching a job that already ended reports it the same way. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "job", "watch", id, NULL);
    assert_exit(r, 8);
    /* Too late to cancel now. */
    g_clear_pointer(&r, cli_result_free);
    r = cli_run(f, "job", "cancel", id, NULL);
    assert_error(r, 4, id);
}

/* drover ARGS... with @input on its standard input. */
static CliResult *
cli_run_stdin(Fixture *f, const char *input, const char *first, ...) G_GNUC_NULL_TERMINATED;

static CliResult *
cli_run_stdin(Fixture *f, const char *input, const char *first, ...)
{
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(GSubprocess) proc = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *cmd = NULL;
    CliResult *r = g_new0(CliResult, 1);
    va_list ap;

    va_start(ap, first);
    args = cli_args_valist(first, ap);
    va_end(ap);
    proc = cli_spawn_argv(f->xdg,
                          G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                              G_SUBPROCESS_FLAGS_STDERR_PIPE,
                          (const char *const *)args->pdata);
    g_subprocess_communicate_utf8(proc, input, NULL, &r->out, &r->err, &error);
    g_assert_no_error(error);
    g_assert_true(g_subprocess_get_if_exited(proc));
    r->status = g_subprocess_get_exit_status(proc);
    if (r->out == NULL)
        r->out = g_strdup("");
    if (r->err == NULL)
        r->err = g_strdup("");
    cmd = g_strjoinv(" ", (char **)args->pdata);
    g_test_message("$ drover %s < (secret)\n[exit %d]\n--- stdout\n%s--- stderr\n%s", cmd, r->status, r->out,
                   r->err);
    return r;
}

/* Every secret the test hands drover, and one given as a refused argument. */
static const char *const secret_plaintexts[] = {
    "Pw-cli-7f3a9c", "Pw-cli-2b8e41", "Adm-cli-5d0c77", "Join-cli-9a1f3e", "Key-cli-6e2b90",
    "Set-cli-3c7d15", "Set-cli-8f0a62", "Arg-cli-4e9b13",
};

/* No output of any drover command may show a secret. */
static CliResult *
no_secrets(CliResult *r)
{
    for (gsize i = 0; i < G_N_ELEMENTS(secret_plaintexts); i++) {
        assert_not_contains(r->out, secret_plaintexts[i]);
        assert_not_contains(r->err, secret_plaintexts[i]);
    }
    return r;
}

static char *
write_secret_file(Fixture *f, const char *name, const char *content)
{
    g_autofree char *path = g_build_filename(f->tmp, name, NULL);
    g_autoptr(GError) error = NULL;

    g_file_set_contents_full(path, content, -1, G_FILE_SET_CONTENTS_NONE, 0600, &error);
    g_assert_no_error(error);
    return g_steal_pointer(&path);
}

/* A secret field of -o json output: described, readable, never a value. */
static void
assert_secret_described(JsonObject *obj, const char *field)
{
    JsonObject *d;

    g_assert_true(json_object_has_member(obj, field));
    g_assert_true(JSON_NODE_HOLDS_OBJECT(json_object_get_member(obj, field)));
    d = json_object_get_object_member(obj, field);
    g_assert_true(json_object_get_boolean_member(d, "set"));
    g_assert_true(json_object_get_boolean_member(d, "readable"));
    g_assert_true(g_str_has_prefix(json_object_get_string_member(d, "key_id"), "k"));
}

static void
test_secrets(Fixture *f, gconstpointer data)
{
    g_autofree char *pw = write_secret_file(f, "svc-password", "Pw-cli-7f3a9c\n");
    g_autofree char *pw2 = write_secret_file(f, "svc-password-2", "Pw-cli-2b8e41\n");
    g_autofree char *admin = write_secret_file(f, "admin-password", "Adm-cli-5d0c77\n");
    g_autofree char *join = write_secret_file(f, "join-password", "Join-cli-9a1f3e\n");
    g_autofree char *key = write_secret_file(f, "product-key", "Key-cli-6e2b90\n");
    g_autofree char *value = write_secret_file(f, "db-password", "Set-cli-3c7d15\n");
    g_autoptr(CliResult) r = NULL;
    g_autoptr(JsonObject) obj = NULL;
    g_autoptr(JsonObject) jobs = NULL;
    g_autofree char *row = NULL;
    JsonArray *items;
    guint n_secret_jobs = 0;

#define RUN(...)                                                                                                   \
    G_STMT_START                                                                                                   \
    {                                                                                                              \
        g_clear_pointer(&r, cli_result_free);                                                                      \
        r = no_secrets(cli_run(f, __VA_ARGS__, NULL));                                                             \
    }                                                                                                              \
    G_STMT_END

    /* A Run As account from a password file (0600: no warning). */
    RUN("run-as", "add", "svc", "--username", "svcuser", "--password-file", pw, "--description", "libvirt login");
    assert_exit(r, 0);
    g_assert_true(g_str_has_prefix(r->out, "Added Run As account svc (id "));
    assert_not_contains(r->err, "warning");

    RUN("guest-os-profile", "add", "win", "--computer-name-pattern", "desk-###", "--admin-user", "Administrator",
        "--admin-password-file", admin, "--domain", "corp.example", "--join-user", "joiner",
        "--join-password-file", join, "--product-key-file", key, "--time-zone", "UTC", "--ssh-authorized-key",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2e test@example");
    assert_exit(r, 0);
    g_assert_true(g_str_has_prefix(r->out, "Added guest OS profile win (id "));

    RUN("setting", "add", "deployment", "db-password", "--encrypted", "--value-file", value);
    assert_exit(r, 0);
    g_assert_true(g_str_has_prefix(r->out, "Added setting deployment/db-password (id "));
    RUN("setting", "add", "application", "color", "--value", "blue");
    assert_exit(r, 0);

    /* Lists and shows describe secrets, one line each. */
    RUN("run-as", "list");
    assert_exit(r, 0);
    row = table_row(r->out, "svc");
    g_assert_nonnull(row);
    assert_contains(row, "svcuser");
    assert_contains(row, " set (k");
    RUN("run-as", "show", "svc");
    assert_exit(r, 0);
    assert_contains(r->out, "\npassword:");
    assert_contains(r->out, "set (k");
    assert_not_contains(r->out, "password.set");
    RUN("-o", "json", "run-as", "show", "svc");
    assert_exit(r, 0);
    assert_contains(r->out, "\"readable\"");
    obj = parse_object(r->out);
    assert_secret_described(obj, "password");
    g_clear_pointer(&obj, json_object_unref);

    RUN("guest-os-profile", "list");
    assert_exit(r, 0);
    g_clear_pointer(&row, g_free);
    row = table_row(r->out, "win");
    g_assert_nonnull(row);
    assert_contains(row, "desk-###");
    assert_contains(row, " set (k");
    RUN("guest-os-profile", "show", "win");
    assert_exit(r, 0);
    assert_contains(r->out, "\nadmin_password:");
    assert_contains(r->out, "\nproduct_key:");
    assert_contains(r->out, "set (k");
    assert_contains(r->out, "ssh-ed25519");
    RUN("-o", "json", "guest-os-profile", "show", "win");
    assert_exit(r, 0);
    obj = parse_object(r->out);
    assert_secret_described(obj, "admin_password");
    assert_secret_described(obj, "domain_join_password");
    assert_secret_described(obj, "product_key");
    g_clear_pointer(&obj, json_object_unref);

    RUN("setting", "list");
    assert_exit(r, 0);
    g_clear_pointer(&row, g_free);
    row = table_row(r->out, "db-password");
    g_assert_nonnull(row);
    assert_contains(row, " set (k");
    g_clear_pointer(&row, g_free);
    row = table_row(r->out, "color");
    g_assert_nonnull(row);
    assert_contains(row, " blue");
    RUN("-o", "json", "setting", "list", "--scope", "deployment");
    assert_exit(r, 0);
    obj = parse_object(r->out);
    items = json_object_get_array_member(obj, "items");
    g_assert_cmpuint(json_array_get_length(items), ==, 1);
    assert_secret_described(json_array_get_object_element(items, 0), "value");
    g_clear_pointer(&obj, json_object_unref);
    RUN("setting", "show", "deployment/db-password");
    assert_exit(r, 0);
    assert_contains(r->out, "set (k");
    RUN("setting", "show", "db-password");
    assert_exit(r, 0);

    /* Entering a secret again is an explicit change. */
    RUN("run-as", "set", "svc", "--password-file", pw2);
    assert_exit(r, 0);
    assert_contains(r->out, "Updated Run As account svc");
    g_clear_pointer(&r, cli_result_free);
    r = no_secrets(cli_run_stdin(f, "Set-cli-8f0a62\n", "setting", "set", "deployment/db-password", "--value-stdin",
                                 NULL));
    assert_exit(r, 0);
    assert_contains(r->out, "Updated setting deployment/db-password");
    RUN("-o", "json", "run-as", "show", "svc");
    assert_exit(r, 0);
    obj = parse_object(r->out);
    assert_secret_described(obj, "password");
    g_clear_pointer(&obj, json_object_unref);

    /* Refused as arguments, before any request: exit 2, not repeated. */
    RUN("run-as", "add", "other", "--username", "u", "--password", "Arg-cli-4e9b13");
    assert_exit(r, 2);
    assert_contains(r->err, "--password-file");
    RUN("setting", "set", "db-password", "--value", "Arg-cli-4e9b13");
    assert_exit(r, 2);
    assert_contains(r->err, "is encrypted");
    RUN("setting", "add", "service", "tok", "--encrypted", "--value", "Arg-cli-4e9b13");
    assert_exit(r, 2);
    RUN("run-as", "show", "other");
    assert_error(r, 3, "other");

    /* A host that uses the account keeps it from being removed. */
    RUN("host", "add", "kvm1", "--uri", f->host_uri, "--run-as", "svc");
    assert_exit(r, 0);
    RUN("run-as", "remove", "svc");
    assert_exit(r, 4);
    RUN("host", "set", "kvm1", "--no-run-as");
    assert_exit(r, 0);

    /* Job records hold no plaintext, in any view. */
    RUN("-o", "json", "job", "list", "--all");
    assert_exit(r, 0);
    jobs = parse_object(r->out);
    items = json_object_get_array_member(jobs, "items");
    for (guint i = 0; i < json_array_get_length(items); i++) {
        JsonObject *job = json_array_get_object_element(items, i);
        const char *kind = json_object_get_string_member(job, "kind");
        const char *id = json_object_get_string_member(job, "id");
        if (!g_str_has_prefix(kind, "run-as.") && !g_str_has_prefix(kind, "guest-os-profile.") &&
            !g_str_has_prefix(kind, "setting."))
            continue;
        n_secret_jobs++;
        RUN("job", "show", id);
        assert_exit(r, 0);
        RUN("-o", "json", "job", "show", id);
        assert_exit(r, 0);
    }
    /* 3 Run As, 1 profile, 2 settings plus their updates. */
    g_assert_cmpuint(n_secret_jobs, >=, 6);
    RUN("job", "list", "--all");
    assert_exit(r, 0);

    RUN("run-as", "remove", "svc");
    assert_exit(r, 0);
    assert_contains(r->out, "Removed Run As account svc");
    RUN("guest-os-profile", "remove", "win");
    assert_exit(r, 0);
    RUN("setting", "remove", "deployment/db-password");
    assert_exit(r, 0);
    RUN("setting", "remove", "color");
    assert_exit(r, 0);
    RUN("run-as", "show", "svc");
    assert_error(r, 3, "svc");
    RUN("setting", "list");
    assert_exit(r, 0);
    g_assert_false(has_row(r->out, "db-password"));
#undef RUN
}

/* Catalogs on a test:/// host.  Refusals come back at once with the exit
 * code of their error and name the field; a valid catalog is created and
 * provisioned, and on test:/// its provisioning fails at the identity
 * step (the test driver cannot upload volumes): the job fails with that
 * reason, and every machine shows it. */
static void
test_catalogs(Fixture *f, gconstpointer data)
{
    g_autoptr(CliResult) r = NULL;
    g_autoptr(JsonObject) page = NULL;
    g_autoptr(JsonObject) cat = NULL;
    g_autofree char *row = NULL;
    JsonArray *items;

#define RUN(...)                                                                                                   \
    do {                                                                                                           \
        g_clear_pointer(&r, cli_result_free);                                                                      \
        r = cli_run(f, __VA_ARGS__, NULL);                                                                         \
    } while (0)
#define CREATE(name, master, ...)                                                                                  \
    RUN("catalog", "create", name, "--master", master, "--snapshot", "v1", "--host", "kvm1", "--pool", "pool1",   \
        "--naming", "desk-##", __VA_ARGS__)

    add_host(f, "kvm1");
    RUN("vm", "create", "gold", "--host", "kvm1", "--vcpus", "1", "--memory", "128", "--disk", "64:pool1",
        "--network", "net1");
    assert_exit(r, 0);
    RUN("vm", "create", "gold2", "--host", "kvm1", "--vcpus", "1", "--memory", "128", "--generation", "2",
        "--disk", "64:pool1");
    assert_exit(r, 0);
    /* The masters' disks become known volumes at the refresh. */
    RUN("host", "refresh", "kvm1");
    assert_exit(r, 0);

    /* Refused before anything is written, each naming its field. */
    CREATE("desks", "gold", "--count", "2");
    assert_error(r, 3, "has no snapshot 'v1'");
    assert_contains(r->err, "master_snapshot");
    CREATE("desks", "gold2", "--count", "2");
    assert_error(r, 6, "Secure Boot");
    assert_contains(r->err, "master_vm");
    CREATE("desks", "nosuchvm", "--count", "2");
    assert_error(r, 3, "nosuchvm");
    RUN("vm", "snapshot", "create", "gold", "v1");
    assert_exit(r, 0);
    CREATE("desks", "gold", "--count", "100");
    assert_error(r, 6, "numbers at most 99 machines");
    assert_contains(r->err, "count");
    CREATE("desks", "gold", "--count", "2", "--network", "nosuchnet");
    assert_error(r, 3, "nosuchnet");
    assert_contains(r->err, "machine.networks[0]");
    RUN("catalog", "create", "desks", "--master", "gold", "--snapshot", "v1", "--host", "kvm1", "--pool",
        "nosuchpool", "--naming", "desk-##", "--count", "2");
    assert_error(r, 3, "nosuchpool");
    assert_contains(r->err, "pool");
    /* A usage error: no request at all. */
    RUN("catalog", "create", "desks", "--master", "gold", "--snapshot", "v1", "--pool", "pool1", "--naming",
        "desk-##", "--count", "2");
    assert_exit(r, 2);
    assert_contains(r->err, "exactly one of --host");
    assert_contains(r->err, "\nTry 'drover catalog create --help'.\n");
    RUN("catalog", "list");
    assert_exit(r, 0);
    g_assert_false(has_row(r->out, "desks"));

    /* Created and provisioned: the job follows with progress and fails
     * at the identity step, after the overlays were made. */
    CREATE("desks", "gold", "--count", "2", "--network", "net1", "--memory", "64", "--personal-disk", "16",
           "--description", "second floor");
    assert_job_error(r, 8, "2 of 2 machines failed");
    assert_contains(r->err, "identity: ");
    assert_contains(r->err, "cannot upload");

    RUN("catalog", "list");
    assert_exit(r, 0);
    g_assert_true(g_str_has_prefix(r->out, "NAME "));
    row = table_row(r->out, "desks");
    g_assert_nonnull(row);
    assert_contains(row, " pooled ");
    assert_contains(row, " degraded ");
    assert_contains(row, " gold ");
    assert_contains(row, " pool1 ");
    assert_contains(row, " desk-## ");
    RUN("catalog", "list", "--state", "ready");
    assert_exit(r, 0);
    g_assert_false(has_row(r->out, "desks"));

    RUN("catalog", "show", "desks");
    assert_exit(r, 0);
    g_assert_true(g_str_has_prefix(r->out, "id: "));
    assert_contains(r->out, "\nname: ");
    assert_contains(r->out, "second floor");
    assert_contains(r->out, "machine_spec.memory_mib:");
    /* The target hosts by name beside their ids. */
    g_clear_pointer(&row, g_free);
    row = table_row(r->out, "host_names:");
    g_assert_nonnull(row);
    assert_contains(row, " kvm1");
    RUN("-o", "json", "catalog", "show", "desks");
    assert_exit(r, 0);
    cat = parse_object(r->out);
    g_assert_cmpstr(json_object_get_string_member(cat, "state"), ==, "degraded");
    g_assert_cmpint(json_object_get_int_member(cat, "personal_disk_mib"), ==, 16);
    g_assert_cmpint(json_object_get_int_member(json_object_get_object_member(cat, "machine_spec"), "memory_mib"),
                    ==, 64);

    RUN("catalog", "machines", "desks");
    assert_exit(r, 0);
    g_assert_true(g_str_has_prefix(r->out, "NAME "));
    assert_contains(r->out, "STATE");
    assert_contains(r->out, "HOST");
    assert_contains(r->out, "STEP");
    assert_contains(r->out, "ERROR");
    for (guint i = 1; i <= 2; i++) {
        g_autofree char *name = g_strdup_printf("desk-%02u", i);
        g_autofree char *mrow = table_row(r->out, name);
        g_assert_nonnull(mrow);
        assert_contains(mrow, " failed ");
        assert_contains(mrow, " kvm1 ");
        assert_contains(mrow, " overlay ");
        assert_contains(mrow, "identity: ");
    }
    RUN("catalog", "machines", "desks", "--state", "ready");
    assert_exit(r, 0);
    g_assert_false(has_row(r->out, "desk-01"));
    RUN("-o", "json", "catalog", "machines", "desks", "--state", "failed");
    assert_exit(r, 0);
    page = parse_object(r->out);
    items = json_object_get_array_member(page, "items");
    g_assert_cmpuint(json_array_get_length(items), ==, 2);
    for (guint i = 0; i < 2; i++) {
        JsonObject *m = json_array_get_object_element(items, i);
        g_assert_cmpstr(json_object_get_string_member(m, "state"), ==, "failed");
        assert_contains(json_object_get_string_member(m, "error"), "identity");
    }

    /* A retry runs the job again and fails the same way. */
    RUN("catalog", "provision", "desks");
    assert_job_error(r, 8, "2 of 2 machines failed");
    assert_contains(r->err, "identity: ");

    /* The name is taken now; an unknown catalog is not found. */
    CREATE("desks", "gold", "--count", "2");
    assert_error(r, 4, "desks");
    assert_contains(r->err, "name");
    RUN("catalog", "show", "nosuchcatalog");
    assert_error(r, 3, "nosuchcatalog");
    RUN("catalog", "machines", "nosuchcatalog");
    assert_error(r, 3, "nosuchcatalog");
    RUN("catalog", "provision", "nosuchcatalog");
    assert_error(r, 3, "nosuchcatalog");

    /* Reconcile reports (the failed machines' overlays are recorded, so
     * nothing is an orphan); delete removes the catalog. */
    RUN("catalog", "reconcile", "desks");
    assert_exit(r, 0);
    assert_contains(r->out, "ok");
    RUN("catalog", "delete-orphans", "desks");
    assert_exit(r, 0);
    RUN("catalog", "delete", "desks");
    assert_exit(r, 0);
    assert_contains(r->out, "Deleted catalog desks");
    RUN("catalog", "show", "desks");
    assert_error(r, 3, "desks");
#undef CREATE
#undef RUN
}

/* Compares @actual with tests/cli/golden/@name, or rewrites the file when
 * DV_REGENERATE_GOLDEN=1. */
static void
check_golden(const char *name, const char *actual)
{
    g_autofree char *path = g_test_build_filename(G_TEST_DIST, "cli", "golden", name, NULL);
    g_autofree char *expected = NULL;
    g_autoptr(GError) error = NULL;

    if (g_strcmp0(g_getenv("DV_REGENERATE_GOLDEN"), "1") == 0) {
        g_file_set_contents(path, actual, -1, &error);
        g_assert_no_error(error);
        g_test_message("rewrote %s", path);
        return;
    }
    g_file_get_contents(path, &expected, NULL, &error);
    g_assert_no_error(error);
    if (g_strcmp0(expected, actual) != 0)
        g_error("%s differs (run with DV_REGENERATE_GOLDEN=1 to accept):\n--- expected\n%s--- actual\n%s", path,
                expected, actual);
}

static void
test_golden(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *xdg = g_dir_make_tmp("drover-cli-golden-XXXXXX", &error);
    static const char *const help[] = { "--help", NULL };
    static const char *const vm_help[] = { "vm", "--help", NULL };
    static const char *const create_help[] = { "vm", "create", "--help", NULL };
    static const char *const set_help[] = { "vm", "set", "--help", NULL };
    static const char *const usage[] = { "vm", "frob", NULL };
    static const char *const catalog_help[] = { "catalog", "--help", NULL };
    static const char *const catalog_create_help[] = { "catalog", "create", "--help", NULL };
    static const char *const user_help[] = { "user", "--help", NULL };
    static const char *const binding_add_help[] = { "binding", "add", "--help", NULL };
    static const char *const audit_help[] = { "audit", "--help", NULL };
    g_autoptr(CliResult) r = NULL;

    g_assert_no_error(error);
    r = cli_run_argv(xdg, help);
    assert_exit(r, 0);
    g_assert_cmpstr(r->err, ==, "");
    check_golden("help.txt", r->out);

    g_clear_pointer(&r, cli_result_free);
    r = cli_run_argv(xdg, vm_help);
    assert_exit(r, 0);
    check_golden("vm-help.txt", r->out);

    g_clear_pointer(&r, cli_result_free);
    r = cli_run_argv(xdg, create_help);
    assert_exit(r, 0);
    check_golden("vm-create-help.txt", r->out);

    g_clear_pointer(&r, cli_result_free);
    r = cli_run_argv(xdg, set_help);
    assert_exit(r, 0);
    check_golden("vm-set-help.txt", r->out);

    g_clear_pointer(&r, cli_result_free);
    r = cli_run_argv(xdg, catalog_help);
    assert_exit(r, 0);
    check_golden("catalog-help.txt", r->out);

    g_clear_pointer(&r, cli_result_free);
    r = cli_run_argv(xdg, catalog_create_help);
    assert_exit(r, 0);
    check_golden("catalog-create-help.txt", r->out);

    g_clear_pointer(&r, cli_result_free);
    r = cli_run_argv(xdg, user_help);
    assert_exit(r, 0);
    check_golden("user-help.txt", r->out);

    g_clear_pointer(&r, cli_result_free);
    r = cli_run_argv(xdg, binding_add_help);
    assert_exit(r, 0);
    check_golden("binding-add-help.txt", r->out);

    g_clear_pointer(&r, cli_result_free);
    r = cli_run_argv(xdg, audit_help);
    assert_exit(r, 0);
    check_golden("audit-help.txt", r->out);

    g_clear_pointer(&r, cli_result_free);
    r = cli_run_argv(xdg, usage);
    assert_exit(r, 2);
    g_assert_cmpstr(r->out, ==, "");
    check_golden("usage-error.txt", r->err);

    g_rmdir(xdg);
}

/* drover user passwd: both passwords from files or standard input; the
 * first-start file goes, the old password stops working. */
static void
test_user_passwd(Fixture *f, gconstpointer data)
{
    g_autofree char *pw_path = g_build_filename(f->d->state_dir, "initial-admin-password", NULL);
    g_autofree char *cur_line = g_strconcat(f->d->password, "\n", NULL);
    g_autofree char *cur = write_secret_file(f, "current", cur_line);
    g_autofree char *fresh = write_secret_file(f, "fresh", "Fresh-cli-4e9b21\n");
    g_autoptr(CliResult) both = NULL;
    g_autoptr(CliResult) refused = NULL;
    g_autoptr(CliResult) same = NULL;
    g_autoptr(CliResult) changed = NULL;
    g_autoptr(CliResult) old_login = NULL;
    g_autoptr(CliResult) new_login = NULL;

    both = cli_run(f, "user", "passwd", "--current-password-file", cur, NULL);
    assert_exit(both, 2);
    assert_contains(both->err, "--new-password-file");
    refused = cli_run(f, "user", "passwd", "--current-password-file", cur, "--new-password", "x", NULL);
    assert_exit(refused, 2);
    assert_contains(refused->err, "'ps'");
    same = cli_run(f, "user", "passwd", "--current-password-file", cur, "--new-password-file", cur, NULL);
    assert_error(same, 6, "must differ");
    g_assert_true(g_file_test(pw_path, G_FILE_TEST_EXISTS));

    changed = cli_run_stdin(f, "Fresh-cli-4e9b21\n", "user", "passwd", "--current-password-file", cur,
                            "--new-password-stdin", NULL);
    assert_exit(changed, 0);
    assert_contains(changed->out, "Password changed");
    g_assert_false(g_file_test(pw_path, G_FILE_TEST_EXISTS));

    old_login = cli_run(f, "login", "--user", "admin", "--password-file", cur, NULL);
    assert_error(old_login, 5, "wrong user name or password");
    new_login = cli_run(f, "login", "--user", "admin", "--password-file", fresh, NULL);
    assert_exit(new_login, 0);
}

/* drover ARGS... with the config in @xdg (another user's login). */
static CliResult *cli_run_in(const char *xdg, const char *first, ...) G_GNUC_NULL_TERMINATED;

static CliResult *
cli_run_in(const char *xdg, const char *first, ...)
{
    va_list ap;
    CliResult *r;

    va_start(ap, first);
    r = cli_run_valist(xdg, first, ap);
    va_end(ap);
    return r;
}

/* The access commands end to end: an administrator adds a user and binds
 * it read-only; the user logs in (its roles shown), is refused a change
 * with the privilege named, makes a token and uses it; the audit log has
 * the attempts; disabling the user ends its session and its token. */
static void
test_access(Fixture *f, gconstpointer data)
{
    g_autofree char *carol_xdg = g_build_filename(f->tmp, "carol-config", NULL);
    g_autofree char *pw = write_secret_file(f, "carol-password", "Pw-cli-8d2f51\n");
    g_autoptr(CliResult) add = NULL;
    g_autoptr(CliResult) roles = NULL;
    g_autoptr(CliResult) bind = NULL;
    g_autoptr(CliResult) login = NULL;
    g_autoptr(CliResult) hosts = NULL;
    g_autoptr(CliResult) refused = NULL;
    g_autoptr(CliResult) token = NULL;
    g_autoptr(CliResult) by_token = NULL;
    g_autoptr(CliResult) token_refused = NULL;
    g_autoptr(CliResult) audit = NULL;
    g_autoptr(CliResult) disable = NULL;
    g_autoptr(CliResult) ended = NULL;
    g_autoptr(CliResult) token_ended = NULL;
    g_auto(GStrv) token_lines = NULL;

    g_assert_cmpint(g_mkdir(carol_xdg, 0700), ==, 0);
    add = cli_run(f, "user", "add", "carol", "--password-file", pw, NULL);
    assert_exit(add, 0);
    assert_contains(add->out, "Added user carol");
    roles = cli_run(f, "role", "list", NULL);
    assert_exit(roles, 0);
    assert_contains(roles->out, "read-only-administrator");
    bind =
        cli_run(f, "binding", "add", "--user", "carol", "--role", "read-only-administrator", NULL);
    assert_exit(bind, 0);
    {
        /* Listed by the user's name (the row holds its id). */
        g_autoptr(CliResult) list =
            cli_run(f, "binding", "list", "--user", "carol", "-o", "json", NULL);
        assert_exit(list, 0);
        assert_contains(list->out, "role-read-only-administrator");
    }

    login = cli_run_in(carol_xdg, "--server", f->d->url, "login", "--user", "carol",
                       "--password-file", pw, NULL);
    assert_exit(login, 0);
    assert_contains(login->out, " as carol; the session expires at ");
    assert_contains(login->out, "Roles:\n  read-only-administrator on global\n");
    g_assert_cmpstr(login->err, ==, "");

    hosts = cli_run_in(carol_xdg, "host-group", "list", NULL);
    assert_exit(hosts, 0);
    refused = cli_run_in(carol_xdg, "host-group", "add", "carols", NULL);
    assert_error(refused, 5, "host_group.create");

    token = cli_run_in(carol_xdg, "token", "add", "ci", "--privilege", "host_group.read", NULL);
    assert_exit(token, 0);
    token_lines = g_strsplit(token->out, "\n", -1);
    g_assert_cmpuint(g_strv_length(token_lines), >=, 2);
    g_assert_true(g_str_has_prefix(token_lines[1], "dvt_"));
    by_token = cli_run_in(carol_xdg, "--token", token_lines[1], "host-group", "list", NULL);
    assert_exit(by_token, 0);
    token_refused =
        cli_run_in(carol_xdg, "--token", token_lines[1], "host-group", "add", "carols2", NULL);
    assert_error(token_refused, 5, "host_group.create");

    {
        /* Carol's own token and session, named as hers. */
        g_autoptr(CliResult) tokens = cli_run_in(carol_xdg, "token", "list", NULL);
        g_autoptr(CliResult) sessions = cli_run_in(carol_xdg, "session", "list", NULL);
        g_autofree char *row = NULL;
        assert_exit(tokens, 0);
        row = table_row(tokens->out, "ci");
        g_assert_nonnull(row);
        assert_contains(row, " carol ");
        assert_contains(row, " host_group.read ");
        assert_exit(sessions, 0);
        assert_contains(sessions->out, " carol ");
        assert_not_contains(tokens->out, token_lines[1]);
    }
    audit = cli_run(f, "audit", "--user", "carol", NULL);
    assert_exit(audit, 0);
    {
        /* Both refusals, the session's and the token's, and the token made. */
        g_auto(GStrv) lines = g_strsplit(audit->out, "\n", -1);
        guint refusals = 0;
        for (guint i = 0; lines[i] != NULL; i++)
            if (strstr(lines[i], " host_group.create ") != NULL &&
                strstr(lines[i], " refused ") != NULL)
                refusals++;
        g_assert_cmpuint(refusals, ==, 2);
        assert_contains(audit->out, " token.create ");
    }

    disable = cli_run(f, "user", "disable", "carol", NULL);
    assert_exit(disable, 0);
    ended = cli_run_in(carol_xdg, "host-group", "list", NULL);
    /* The session is gone: the hint to log in, with the server's words. */
    assert_error(ended, 5, "not logged in or session expired (the server says: ");
    assert_contains(ended->err, "run 'drover login'");
    /* The token stays but its user is disabled: the server's reason. */
    token_ended = cli_run_in(carol_xdg, "--token", token_lines[1], "host-group", "list", NULL);
    assert_error(token_ended, 5, "the API token was refused: this user is disabled");
}

/* --- the README's tour, by role ------------------------------------------ */

/* The users of the tour, each bound by the administrator to host group In
 * (hosts "hin" with VM invm0; Out holds "hout" with VM outvm0). */
enum { TOUR_ADMIN, TOUR_DELEGATE, TOUR_READONLY, TOUR_TENANT, TOUR_SELF, TOUR_DIRECTORY, TOUR_N };

/* t-dir is a user of the private slapd (tests/services/with-services), in
 * a directory group that is bound, not the user: it holds what the group's
 * binding gives. */
static const struct {
    const char *user;
    const char *role;
} tour_users[TOUR_N] = {
    { "t-admin", "administrator" },
    { "t-delegate", "delegated-administrator" },
    { "t-readonly", "read-only-administrator" },
    { "t-tenant", "tenant-administrator" },
    { "t-self", "self-service-user" },
    { "t-dir", "delegated-administrator" },
};

/* What each role may do of the tour (README, "A five-minute tour"), one
 * character per user in tour_users' order (administrator, delegated,
 * read-only, tenant, self-service, the directory group's delegated):
 *   A  allowed: exit 0;
 *   F  refused, 403: exit 5, the message names the privilege;
 *   N  refused, 404 as if absent: exit 3, the message names the object;
 *   -  not tried (the role could not make the VM the step is about).
 * {vm} is the user's own VM, {user} its name, {pw} a password file.
 * A create whose parent is out of scope names the parent as an unknown one;
 * one naming no parent (a root host group) says "no place in the scope of
 * user U to make a KIND there": that row has no object to look for.
 * Steps with an operation are changes: each attempt is in the audit log. */
typedef struct {
    const char *command;
    const char *operation; /* audited as; NULL: a read (not audited) */
    const char *privilege;
    const char *object; /* what a 404 names */
    const char *want;
} TourStep;

static const TourStep tour_steps[] = {
    /* command                                  operation             privilege        object    ADRTSDir */
    { "host list",                              NULL,                 "host.read",     NULL,     "AAAAFA" },
    { "host show hin",                          NULL,                 "host.read",     "hin",    "AAAANA" },
    { "host show hout",                         NULL,                 "host.read",     "hout",   "NNNNNN" },
    { "pool list",                              NULL,                 "pool.read",     NULL,     "AAAFFA" },
    { "vm list",                                NULL,                 "vm.read",       NULL,     "AAAAAA" },
    { "vm show invm0",                          NULL,                 "vm.read",       "invm0",  "AAAANA" },
    { "vm show outvm0",                         NULL,                 "vm.read",       "outvm0", "NNNNNN" },
    { "vm create {vm} --host hin --memory 64 --disk 64:pool1",
                                                "vm.create",          "vm.create",     NULL,     "AAFAAA" },
    /* A parent out of scope reads as an unknown host. */
    { "vm create {vm}-x --host hout --memory 64", "vm.create",        "vm.create",     "hout",   "NNNNNN" },
    { "vm start {vm}",                          "vm.start",           "vm.power",      NULL,     "AA-AAA" },
    { "vm snapshot create {vm} before",         "vm.snapshot.create", "vm.snapshot",   NULL,     "AA-AAA" },
    { "vm snapshot list {vm}",                  NULL,                 "vm.read",       NULL,     "AA-AAA" },
    { "vm stop {vm}",                           "vm.stop",            "vm.power",      NULL,     "AA-AAA" },
    { "vm start invm0",                         "vm.start",           "vm.power",      "invm0",  "--F-N-" },
    { "vm snapshot create outvm0 s",            "vm.snapshot.create", "vm.snapshot",   "outvm0", "NNNNNN" },
    { "vm delete {vm} --delete-volumes",        "vm.delete",          "vm.delete",     NULL,     "AA-AAA" },
    { "vm delete invm0",                        "vm.delete",          "vm.delete",     "invm0",  "--F-N-" },
    { "job list",                               NULL,                 "job.read",      NULL,     "AAAAAA" },
    { "run-as add ra-{user} --username root --password-file {pw}",
                                                "run_as.create",      "run_as.create", NULL,     "FFFFFF" },
    { "run-as list",                            NULL,                 "run_as.read",   NULL,     "AAAAFA" },
    { "catalog list",                           NULL,                 "catalog.read",  NULL,     "AAAAAA" },
    /* A root group is made nowhere in their scope: 404 for all of them. */
    { "host-group add {user}-g",                "host_group.create",  "host_group.create", NULL, "NNNNNN" },
    /* The job is on no host: its creator follows it all the same. */
    { "host-group add {user}-c --parent In",    "host_group.create",  "host_group.create", "In", "AAFFNA" },
    { "audit",                                  NULL,                 "audit.read",    NULL,     "AAAFFA" },
};

/* Members of parsed -o json output; absent or of another type: NULL / -1. */
static const char *
tour_str(JsonObject *o, const char *member)
{
    JsonNode *n = o != NULL ? json_object_get_member(o, member) : NULL;
    return n != NULL && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
               ? json_node_get_string(n)
               : NULL;
}

static JsonObject *
tour_obj(JsonObject *o, const char *member)
{
    JsonNode *n = o != NULL ? json_object_get_member(o, member) : NULL;
    return n != NULL && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static gint64
tour_int(JsonObject *o, const char *member)
{
    JsonNode *n = o != NULL ? json_object_get_member(o, member) : NULL;
    return n != NULL && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64
               ? json_node_get_int(n)
               : -1;
}

/* The private slapd's settings (tests/services/slapd/start-slapd). */
static const char *
tour_env(const char *name)
{
    const char *value = g_getenv(name);
    if (value == NULL)
        g_error("%s is not set: run under tests/services/with-services", name);
    return value;
}

/* @tool (ldapadd, ldapdelete) as the directory's administrator over ldaps,
 * with @extra arguments and @input on standard input. */
static void
tour_ldap(Fixture *f, const char *tool, const char *extra, const char *input)
{
    g_autofree char *admin_pw = NULL;
    g_autofree char *pw_file = g_build_filename(f->tmp, "ldap-admin-pw", NULL);
    g_autoptr(GSubprocessLauncher) launcher =
        g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                  G_SUBPROCESS_FLAGS_STDERR_PIPE);
    g_autoptr(GSubprocess) proc = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;

    /* -y takes the whole file as the password: no trailing newline. */
    g_assert_true(g_file_get_contents(tour_env("DV_TEST_LDAP_ADMIN_PW_FILE"), &admin_pw, NULL, NULL));
    g_strchomp(admin_pw);
    g_file_set_contents_full(pw_file, admin_pw, -1, G_FILE_SET_CONTENTS_NONE, 0600, &error);
    g_assert_no_error(error);
    g_subprocess_launcher_setenv(launcher, "LDAPTLS_CACERT", tour_env("DV_TEST_LDAP_CA"), TRUE);
    proc = g_subprocess_launcher_spawn(launcher, &error, tool, "-x", "-H",
                                       tour_env("DV_TEST_LDAPS_URI"), "-D",
                                       tour_env("DV_TEST_LDAP_ADMIN_DN"), "-y", pw_file, extra, NULL);
    g_assert_no_error(error);
    g_subprocess_communicate_utf8(proc, input, NULL, &out, &err, &error);
    g_assert_no_error(error);
    if (!g_subprocess_get_if_exited(proc) || g_subprocess_get_exit_status(proc) != 0)
        g_error("%s failed:\n%s%s", tool, out != NULL ? out : "", err != NULL ? err : "");
    g_unlink(pw_file);
}

/* Makes ou=<@ou_value> with user t-dir (password in @pw_text) in group
 * tour-ops, and turns directory logins on in droverd's state directory
 * (read at every directory login: docs/DIRECTORY.md).  Returns the
 * group's DN. */
static char *
tour_directory_setup(Fixture *f, const char *ou, const char *pw_text)
{
    const char *base = tour_env("DV_TEST_LDAP_BASE");
    g_autofree char *group = g_strdup_printf("cn=tour-ops,ou=groups,%s", ou);
    g_autofree char *ldif = g_strdup_printf(
        "dn: %s\nobjectClass: organizationalUnit\nou: %.*s\n\n"
        "dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\n"
        "dn: ou=groups,%s\nobjectClass: organizationalUnit\nou: groups\n\n"
        "dn: uid=t-dir,ou=people,%s\nobjectClass: inetOrgPerson\nuid: t-dir\ncn: Tour\nsn: "
        "Dir\nuserPassword: %s\n\n"
        "dn: %s\nobjectClass: groupOfNames\ncn: tour-ops\nmember: uid=t-dir,ou=people,%s\n",
        ou, (int)(strchr(ou, ',') - ou - 3), ou + 3, ou, ou, ou, pw_text, group, ou);
    g_autofree char *conf_path = g_build_filename(f->d->state_dir, "directory.conf", NULL);
    g_autofree char *conf = g_strdup_printf(
        "[directory]\nuri=%s\ncontainer=ou=drover-keys,%s\nbind_dn=%s\npassword_file=%s\n"
        "ca_file=%s\n"
        "[login]\nenabled=true\nuser_base=ou=people,%s\n"
        "user_filter=(&(objectClass=inetOrgPerson)(uid=%%s))\ngroups=search\n"
        "group_base=ou=groups,%s\ngroup_filter=(&(objectClass=groupOfNames)(member=%%s))\n"
        "network_timeout_s=1\nop_timeout_s=2\n",
        tour_env("DV_TEST_LDAP_URI"), base, tour_env("DV_TEST_LDAP_SERVICE_DN"),
        tour_env("DV_TEST_LDAP_SERVICE_PW_FILE"), tour_env("DV_TEST_LDAP_CA"), ou, ou);

    tour_ldap(f, "ldapadd", NULL, ldif);
    g_assert_true(g_file_set_contents(conf_path, conf, -1, NULL));
    return g_steal_pointer(&group);
}

/* Members that carry storage data (docs/ACCESS.md, "Storage data"). */
static const char *const tour_storage_members[] = {
    "pool", "pools", "pool_id", "pool_name", "disks", "disk_path", "disk_volume", "path",
    "volume", "volumes", "overlay_path", "identity_path", "personal_path", NULL,
};

/* The first storage member anywhere in @node, or NULL. */
static const char *
tour_find_storage(JsonNode *node)
{
    if (JSON_NODE_HOLDS_ARRAY(node)) {
        JsonArray *a = json_node_get_array(node);
        for (guint i = 0; i < json_array_get_length(a); i++) {
            const char *hit = tour_find_storage(json_array_get_element(a, i));
            if (hit != NULL)
                return hit;
        }
    } else if (JSON_NODE_HOLDS_OBJECT(node)) {
        JsonObject *o = json_node_get_object(node);
        g_autoptr(GList) members = json_object_get_members(o);
        for (GList *l = members; l != NULL; l = l->next) {
            const char *hit;
            if (g_strv_contains(tour_storage_members, l->data))
                return l->data;
            hit = tour_find_storage(json_object_get_member(o, l->data));
            if (hit != NULL)
                return hit;
        }
    }
    return NULL;
}

/* @text parsed as JSON: the storage member it holds, or NULL. */
static char *
tour_storage_in(const char *text)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) error = NULL;
    const char *hit;

    json_parser_load_from_data(parser, text, -1, &error);
    g_assert_no_error(error);
    hit = tour_find_storage(json_parser_get_root(parser));
    return g_strdup(hit);
}

static char *
tour_expand(const char *command, const char *user, const char *pw)
{
    g_autofree char *vm = g_strconcat("vm-", user, NULL);
    g_autoptr(GString) s = g_string_new(command);

    g_string_replace(s, "{vm}", vm, 0);
    g_string_replace(s, "{user}", user, 0);
    g_string_replace(s, "{pw}", pw, 0);
    return g_string_free(g_steal_pointer(&s), FALSE);
}

/* One item of @audit (-o json items) by @user for @operation with the
 * outcome @refused says (the API's words: allowed, refused). */
static gboolean
tour_audited(JsonArray *audit, const char *user, const char *operation, gboolean refused)
{
    for (guint i = 0; i < json_array_get_length(audit); i++) {
        JsonObject *e = json_array_get_object_element(audit, i);
        if (g_strcmp0(tour_str(e, "user"), user) == 0 &&
            g_strcmp0(tour_str(e, "operation"), operation) == 0 &&
            g_strcmp0(tour_str(e, "outcome"), refused ? "refused" : "allowed") == 0)
            return TRUE;
    }
    return FALSE;
}

/* A binding of -o json output in the shape docs/API.md gives. */
static void
tour_assert_binding(JsonObject *b, const char *user, const char *role, const char *scope_name)
{
    JsonObject *scope;

    g_assert_nonnull(tour_str(b, "id"));
    g_assert_cmpstr(tour_str(tour_obj(b, "user"), "name"), ==, user);
    g_assert_nonnull(tour_str(tour_obj(b, "user"), "id"));
    g_assert_true(json_object_has_member(b, "group"));
    g_assert_true(JSON_NODE_HOLDS_NULL(json_object_get_member(b, "group")));
    g_assert_cmpstr(tour_str(tour_obj(b, "role"), "name"), ==, role);
    g_assert_nonnull(tour_str(b, "role_id"));
    g_assert_cmpstr(tour_str(tour_obj(b, "role"), "id"), ==,
                    tour_str(b, "role_id"));
    scope = tour_obj(b, "scope");
    g_assert_nonnull(scope);
    g_assert_cmpstr(tour_str(scope, "kind"), ==, "host_group");
    g_assert_cmpstr(tour_str(scope, "name"), ==, scope_name);
    g_assert_cmpstr(tour_str(scope, "id"), ==,
                    tour_str(b, "scope_id"));
    g_assert_cmpstr(tour_str(b, "effect"), ==, "allow");
    g_assert_true(json_object_has_member(b, "quota"));
}

/* The tester's check of issue 11, automated: a user of each built-in role
 * bound to host group In tries the README's tour through the CLI; what
 * tour_steps allows works, the rest is refused with the privilege (403)
 * or as absent (404); the delegated administrator's views carry no
 * storage member; the audit log holds every change tried, refused or not. */
static void
test_tour_by_role(Fixture *f, gconstpointer data)
{
    g_autofree char *pw = write_secret_file(f, "tour-password", "Pw-cli-5c7d19\n");
    g_autofree char *in_xml = dv_test_write_host_xml(f->tmp, "hin.xml", "invm", 1);
    g_autofree char *out_xml = dv_test_write_host_xml(f->tmp, "hout.xml", "outvm", 1);
    g_autofree char *in_uri = g_strconcat("test://", in_xml, NULL);
    g_autofree char *out_uri = g_strconcat("test://", out_xml, NULL);
    g_autofree char *ou_id = g_uuid_string_random();
    g_autofree char *ou = g_strdup_printf("ou=tour-%.8s,%s", ou_id, tour_env("DV_TEST_LDAP_BASE"));
    g_autofree char *group = tour_directory_setup(f, ou, "Pw-cli-3e8a27");
    g_autofree char *dir_pw = write_secret_file(f, "tour-dir-password", "Pw-cli-3e8a27\n");
    char *xdg[TOUR_N];

    {
        g_autoptr(CliResult) a = cli_run(f, "host-group", "add", "In", NULL);
        g_autoptr(CliResult) b = cli_run(f, "host-group", "add", "Out", NULL);
        g_autoptr(CliResult) c = cli_run(f, "host", "add", "hin", "--uri", in_uri, "--group", "In", NULL);
        g_autoptr(CliResult) d =
            cli_run(f, "host", "add", "hout", "--uri", out_uri, "--group", "Out", NULL);
        assert_exit(a, 0);
        assert_exit(b, 0);
        assert_exit(c, 0);
        assert_exit(d, 0);
    }
    for (guint u = 0; u < TOUR_N; u++) {
        g_autoptr(CliResult) add = NULL;
        g_autoptr(CliResult) bind = NULL;
        g_autoptr(CliResult) login = NULL;
        g_autofree char *roles = NULL;

        xdg[u] = g_build_filename(f->tmp, tour_users[u].user, NULL);
        g_assert_cmpint(g_mkdir(xdg[u], 0700), ==, 0);
        if (u == TOUR_DIRECTORY) {
            /* No users row yet: the group is bound; the first login makes it. */
            bind = cli_run(f, "binding", "add", "--group", group, "--role", tour_users[u].role,
                           "--host-group", "In", NULL);
        } else {
            add = cli_run(f, "user", "add", tour_users[u].user, "--password-file", pw, NULL);
            assert_exit(add, 0);
            bind = cli_run(f, "binding", "add", "--user", tour_users[u].user, "--role",
                           tour_users[u].role, "--host-group", "In", NULL);
        }
        assert_exit(bind, 0);
        login = cli_run_in(xdg[u], "--server", f->d->url, "login", "--user", tour_users[u].user,
                           "--password-file", u == TOUR_DIRECTORY ? dir_pw : pw, NULL);
        assert_exit(login, 0);
        /* GET /session's bindings name the role and the scope (and the
         * directory group it comes through). */
        roles = u == TOUR_DIRECTORY
                    ? g_strdup_printf("Roles:\n  %s on host_group In, through group %s\n",
                                      tour_users[u].role, group)
                    : g_strdup_printf("Roles:\n  %s on host_group In\n", tour_users[u].role);
        assert_contains(login->out, roles);
    }

    /* Bindings as docs/API.md shapes them, in every answer that has them. */
    {
        g_autoptr(CliResult) list =
            cli_run(f, "-o", "json", "binding", "list", "--user", "t-delegate", NULL);
        g_autoptr(CliResult) show = cli_run(f, "-o", "json", "user", "show", "t-tenant", NULL);
        g_autoptr(CliResult) quota = cli_run(f, "-o", "json", "binding", "add", "--user", "t-self",
                                             "--role", "self-service-user", "--host-group", "Out",
                                             "--deny", "--quota-vms", "3", "--member-vms", "1", NULL);
        g_autoptr(CliResult) table = NULL;
        g_autoptr(JsonObject) page = NULL;
        g_autoptr(JsonObject) user = NULL;
        g_autoptr(JsonObject) made = NULL;
        g_autofree char *row = NULL;
        JsonObject *q;
        JsonArray *items;

        assert_exit(list, 0);
        page = parse_object(list->out);
        items = json_object_get_array_member(page, "items");
        g_assert_cmpuint(json_array_get_length(items), ==, 1);
        tour_assert_binding(json_array_get_object_element(items, 0), "t-delegate",
                            "delegated-administrator", "In");
        g_assert_true(JSON_NODE_HOLDS_NULL(
            json_object_get_member(json_array_get_object_element(items, 0), "quota")));
        assert_exit(show, 0);
        user = parse_object(show->out);
        items = json_object_get_array_member(user, "bindings");
        g_assert_cmpuint(json_array_get_length(items), ==, 1);
        tour_assert_binding(json_array_get_object_element(items, 0), "t-tenant",
                            "tenant-administrator", "In");

        assert_exit(quota, 0);
        made = parse_object(quota->out);
        g_assert_cmpstr(tour_str(made, "effect"), ==, "deny");
        g_assert_cmpstr(tour_str(tour_obj(made, "scope"), "name"), ==,
                        "Out");
        q = tour_obj(made, "quota");
        g_assert_nonnull(q);
        g_assert_cmpint(tour_int(q, "vms"), ==, 3);
        g_assert_true(JSON_NODE_HOLDS_NULL(json_object_get_member(q, "vcpus")));
        g_assert_cmpint(tour_int(tour_obj(q, "per_member"), "vms"), ==, 1);
        /* And as a table: every column filled from those members. */
        table = cli_run(f, "binding", "list", "--user", "t-self", NULL);
        assert_exit(table, 0);
        assert_contains(table->out, " QUOTA-VMS ");
        assert_contains(table->out, " MEMBER-VMS ");
        row = table_row(table->out, tour_str(made, "id"));
        g_assert_nonnull(row);
        assert_contains(row, " t-self ");
        assert_contains(row, " self-service-user ");
        assert_contains(row, " host_group ");
        assert_contains(row, " Out ");
        assert_contains(row, " deny ");
        assert_contains(row, " 3 ");
        assert_contains(row, " 1 ");
    }

    /* The tour, step by step, each user in turn. */
    for (gsize i = 0; i < G_N_ELEMENTS(tour_steps); i++) {
        const TourStep *step = &tour_steps[i];
        g_assert_cmpuint(strlen(step->want), ==, TOUR_N);
        for (guint u = 0; u < TOUR_N; u++) {
            g_autofree char *command = tour_expand(step->command, tour_users[u].user, pw);
            g_auto(GStrv) argv = g_strsplit(command, " ", -1);
            g_autoptr(CliResult) r = NULL;
            g_autofree char *name = NULL;

            if (step->want[u] == '-')
                continue;
            g_test_message("tour: %s as %s, want %c", command, tour_users[u].user, step->want[u]);
            r = cli_run_argv(xdg[u], (const char *const *)argv);
            switch (step->want[u]) {
            case 'A':
                assert_exit(r, 0);
                break;
            case 'F':
                assert_error(r, 5, step->privilege);
                break;
            case 'N':
                name = step->object != NULL ? tour_expand(step->object, tour_users[u].user, pw)
                                            : NULL;
                assert_error(r, 3, name != NULL ? name : "");
                assert_not_contains(r->err, step->privilege);
                break;
            default:
                g_assert_not_reached();
            }
        }
    }

    /* The delegated administrator's views carry no storage data; the
     * administrator of the same group sees it (so the check can fail). */
    {
        static const char *const views[][5] = {
            { "-o", "json", "host", "show", "hin" },
            { "-o", "json", "vm", "show", "invm0" },
            { "-o", "json", "vm", "list", NULL },
            { "-o", "json", "catalog", "list", NULL },
        };
        gboolean admin_saw = FALSE;
        for (gsize i = 0; i < G_N_ELEMENTS(views); i++) {
            const char *argv[6] = { 0 };
            g_autoptr(CliResult) delegate = NULL;
            g_autoptr(CliResult) admin = NULL;
            g_autofree char *hit = NULL;
            g_autofree char *admin_hit = NULL;
            memcpy(argv, views[i], sizeof(views[i]));
            g_autoptr(CliResult) dir = NULL;
            g_autofree char *dir_hit = NULL;
            delegate = cli_run_argv(xdg[TOUR_DELEGATE], argv);
            dir = cli_run_argv(xdg[TOUR_DIRECTORY], argv);
            admin = cli_run_argv(xdg[TOUR_ADMIN], argv);
            assert_exit(delegate, 0);
            assert_exit(dir, 0);
            assert_exit(admin, 0);
            hit = tour_storage_in(delegate->out);
            if (hit != NULL)
                g_error("%s %s: the delegated administrator sees '%s':\n%s", views[i][2],
                        views[i][3], hit, delegate->out);
            dir_hit = tour_storage_in(dir->out);
            if (dir_hit != NULL)
                g_error("%s %s: the directory group's delegated administrator sees '%s':\n%s",
                        views[i][2], views[i][3], dir_hit, dir->out);
            admin_hit = tour_storage_in(admin->out);
            admin_saw = admin_saw || admin_hit != NULL;
        }
        g_assert_true(admin_saw);
    }

    /* Every change tried, refused or done, is in the audit log. */
    {
        g_autoptr(CliResult) audit = cli_run(f, "-o", "json", "audit", "--all", NULL);
        g_autoptr(JsonObject) page = NULL;
        JsonArray *items;
        guint refused = 0;

        assert_exit(audit, 0);
        page = parse_object(audit->out);
        items = json_object_get_array_member(page, "items");
        for (gsize i = 0; i < G_N_ELEMENTS(tour_steps); i++) {
            if (tour_steps[i].operation == NULL)
                continue;
            for (guint u = 0; u < TOUR_N; u++) {
                char want = tour_steps[i].want[u];
                if (want == '-')
                    continue;
                if (!tour_audited(items, tour_users[u].user, tour_steps[i].operation, want != 'A'))
                    g_error("no %s audit entry of %s by %s:\n%s",
                            want != 'A' ? "refused" : "accepted", tour_steps[i].operation,
                            tour_users[u].user, audit->out);
                refused += want != 'A';
            }
        }
        g_assert_cmpuint(refused, >, 0);
    }
    for (guint u = 0; u < TOUR_N; u++)
        g_free(xdg[u]);
    {
        g_autofree char *dn_line = g_strconcat(ou, "\n", NULL);
        tour_ldap(f, "ldapdelete", "-r", dn_line);
    }
}

/* drover openapi: the server's document, JSON even in table output. */
static void
test_openapi(Fixture *f, gconstpointer data)
{
    g_autoptr(CliResult) r = cli_run(f, "openapi", NULL);
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) error = NULL;
    JsonObject *doc, *start;

    assert_exit(r, 0);
    json_parser_load_from_data(parser, r->out, -1, &error);
    g_assert_no_error(error);
    doc = json_node_get_object(json_parser_get_root(parser));
    g_assert_cmpstr(json_object_get_string_member(doc, "openapi"), ==, "3.1.0");
    start = json_object_get_object_member(
        json_object_get_object_member(json_object_get_object_member(doc, "paths"), "/vms/{ref}/start"),
        "post");
    g_assert_cmpstr(json_object_get_string_member(start, "operationId"), ==, "vm.start");
    g_assert_cmpstr(json_object_get_string_member(start, "x-drover-privilege"), ==, "vm.power");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/drover/cli/e2e/golden", test_golden);
#define ADD(path, fn) g_test_add("/drover/cli/e2e/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("login", test_login);
    ADD("openapi", test_openapi);
    ADD("metrics", test_metrics);
    ADD("hosts", test_hosts);
    ADD("library-and-templates", test_library_and_templates);
    ADD("vm-round-trip", test_vm_round_trip);
    ADD("vm-day2", test_vm_day2);
    ADD("vm-nics", test_vm_nics);
    ADD("volumes", test_volumes);
    ADD("vm-clone", test_vm_clone);
    ADD("media", test_media);
    ADD("json-and-no-wait", test_json_and_no_wait);
    ADD("errors", test_errors);
    ADD("job-watch", test_job_watch);
    ADD("job-cancel", test_job_cancel);
    ADD("server-down", test_server_down);
    ADD("secrets", test_secrets);
    ADD("catalogs", test_catalogs);
    ADD("user-passwd", test_user_passwd);
    ADD("access", test_access);
    /* On both backends: bindings, scopes and the audit log are the store's. */
    g_test_add("/drover/cli/e2e/tour-by-role/sqlite", Fixture, "sqlite", fixture_setup,
               test_tour_by_role, fixture_teardown);
    g_test_add("/drover/cli/e2e/tour-by-role/postgresql", Fixture, "postgresql", fixture_setup,
               test_tour_by_role, fixture_teardown);
    /* Ids by prefix on both backends: the lookup is the store's. */
    g_test_add("/drover/cli/e2e/ids-by-prefix/sqlite", Fixture, "sqlite", fixture_setup, test_ids_by_prefix,
               fixture_teardown);
    g_test_add("/drover/cli/e2e/ids-by-prefix/postgresql", Fixture, "postgresql", fixture_setup,
               test_ids_by_prefix, fixture_teardown);
#undef ADD
    return g_test_run();
}
