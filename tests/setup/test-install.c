/* drover-setup install / uninstall, run as root against real components:
 * real Unix accounts (useradd, removed after each test), droverd started
 * from the written config as the service account (setpriv), the drover
 * CLI logging in and storing a secret, PostgreSQL from with-services
 * (DV_TEST_PG_URI) and the private slapd (DV_TEST_LDAP_*).  Every test has
 * its own temp root, state and unit directories, so nothing touches /etc. */
#define G_LOG_DOMAIN "DvTestInstall"

#include "dv-config.h"
#include "dv-db.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-setup-install.h"
#include "dv-store.h"
#include "dv-test-pg.h"
#include "dv-test-util.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_TEXT "PLAINTEXT-install-k9Zq"

typedef struct {
    char *tmp;
    char *root;
    char *units;
    char *state;
    char *machine_id;
    char *account;
    char *account2; /* a second account, for a changed service account */
    char *home;     /* HOME of the drover CLI */
    char *url;
    GSubprocess *droverd;
    GPtrArray *pg_dbs;
} Fixture;

static guint account_counter;

static char *
path_in(Fixture *f, const char *name)
{
    return g_build_filename(f->tmp, name, NULL);
}

static gboolean
account_exists(const char *name)
{
    return getpwnam(name) != NULL;
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    f->tmp = g_dir_make_tmp("drover-install-XXXXXX", &error);
    g_assert_no_error(error);
    /* The service account walks through it to its state directory. */
    g_assert_cmpint(g_chmod(f->tmp, 0755), ==, 0);
    f->root = path_in(f, "root");
    f->units = path_in(f, "units");
    f->state = path_in(f, "state");
    f->home = path_in(f, "home");
    f->machine_id = path_in(f, "machine-id");
    g_assert_cmpint(g_mkdir(f->root, 0755), ==, 0);
    g_assert_cmpint(g_mkdir(f->units, 0755), ==, 0);
    g_assert_cmpint(g_mkdir(f->home, 0700), ==, 0);
    g_assert_true(
        g_file_set_contents(f->machine_id, "5f0c1e2d3b4a59687766554433221100\n", -1, NULL));
    g_assert_cmpint(g_chmod(f->machine_id, 0644), ==, 0);
    f->account = g_strdup_printf("dvi%u-%u", (guint)getpid(), ++account_counter);
    f->account2 = g_strdup_printf("dvi%u-%u", (guint)getpid(), ++account_counter);
    g_assert_false(account_exists(f->account));
    g_assert_false(account_exists(f->account2));
    f->pg_dbs = g_ptr_array_new_with_free_func(g_free);
}

static void
stop_droverd(Fixture *f)
{
    if (f->droverd == NULL)
        return;
    g_subprocess_send_signal(f->droverd, SIGTERM);
    g_subprocess_wait(f->droverd, NULL, NULL);
    g_clear_object(&f->droverd);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    stop_droverd(f);
    if (account_exists(f->account))
        dv_test_remove_account(f->account);
    if (account_exists(f->account2))
        dv_test_remove_account(f->account2);
    /* The group useradd --user-group made goes with the account. */
    g_assert_false(account_exists(f->account));
    g_assert_false(account_exists(f->account2));
    for (guint i = 0; i < f->pg_dbs->len; i++)
        dv_test_pg_drop_database(g_ptr_array_index(f->pg_dbs, i));
    g_ptr_array_unref(f->pg_dbs);
    dv_test_rm_rf(f->tmp);
    g_free(f->tmp);
    g_free(f->root);
    g_free(f->units);
    g_free(f->state);
    g_free(f->home);
    g_free(f->machine_id);
    g_free(f->account);
    g_free(f->account2);
    g_free(f->url);
}

/* The base options of a test install, followed by @extra (NULL-terminated). */
static int
run_install(Fixture *f, char **ret_out, char **ret_err, const char *const *extra)
{
    g_autoptr(GPtrArray) args = g_ptr_array_new();
    g_ptr_array_add(args, (gpointer) "install");
    g_ptr_array_add(args, (gpointer) "--root");
    g_ptr_array_add(args, f->root);
    g_ptr_array_add(args, (gpointer) "--unit-dir");
    g_ptr_array_add(args, f->units);
    g_ptr_array_add(args, (gpointer) "--state-dir");
    g_ptr_array_add(args, f->state);
    g_ptr_array_add(args, (gpointer) "--machine-id-file");
    g_ptr_array_add(args, f->machine_id);
    g_ptr_array_add(args, (gpointer) "--service-account");
    g_ptr_array_add(args, f->account);
    for (guint i = 0; extra != NULL && extra[i] != NULL; i++)
        g_ptr_array_add(args, (gpointer)extra[i]);
    g_ptr_array_add(args, NULL);
    return dv_test_run_setup((const char *const *)args->pdata, ret_out, ret_err);
}

static int
free_port(void)
{
    g_autoptr(GSocket) s =
        g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) a = g_inet_socket_address_new(lo, 0);
    g_autoptr(GSocketAddress) bound = NULL;
    g_assert_true(g_socket_bind(s, a, TRUE, NULL));
    bound = g_socket_get_local_address(s, NULL);
    return g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
}

static char *
config_path(Fixture *f)
{
    return g_build_filename(f->root, "etc", "drover", "droverd.conf", NULL);
}

/* Starts droverd from the written config as the service account, the way
 * the unit does, and waits until it serves. */
static void
start_droverd(Fixture *f, const char *const *extra)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *conf = config_path(f);
    g_autoptr(GDataInputStream) in = NULL;

    g_ptr_array_add(argv, g_strdup("setpriv"));
    g_ptr_array_add(argv, g_strdup_printf("--reuid=%s", f->account));
    g_ptr_array_add(argv, g_strdup_printf("--regid=%s", f->account));
    g_ptr_array_add(argv, g_strdup("--init-groups"));
    g_ptr_array_add(argv, g_strdup("--no-new-privs"));
    g_ptr_array_add(argv, dv_test_build_path("src", "daemon", "droverd", NULL));
    if (extra == NULL) {
        g_ptr_array_add(argv, g_strdup("--config"));
        g_ptr_array_add(argv, g_strdup(conf));
    }
    for (guint i = 0; extra != NULL && extra[i] != NULL; i++)
        g_ptr_array_add(argv, g_strdup(extra[i]));
    g_ptr_array_add(argv, NULL);
    {
        /* HOME as the unit gives it: the account's home, the state dir. */
        g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(
            G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
        g_subprocess_launcher_setenv(l, "HOME", f->state, TRUE);
        f->droverd = g_subprocess_launcher_spawnv(l, (const char *const *)argv->pdata, &error);
    }
    g_assert_no_error(error);
    in = g_data_input_stream_new(g_subprocess_get_stdout_pipe(f->droverd));
    for (;;) {
        g_autofree char *line = g_data_input_stream_read_line_utf8(in, NULL, NULL, &error);
        const char *serving;
        g_assert_no_error(error);
        if (line == NULL)
            g_error("droverd stopped before it served");
        g_test_message("droverd: %s", line);
        serving = strstr(line, " serving ");
        if (serving != NULL) {
            const char *end = strstr(serving, "/api/v1");
            g_assert_nonnull(end);
            g_free(f->url);
            f->url = g_strndup(serving + strlen(" serving "), end - serving - strlen(" serving "));
            break;
        }
    }
}

/* Runs the drover CLI (HOME in the fixture, so its login is private). */
static int
run_cli(Fixture *f, char **ret_out, const char *const *args)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_auto(GStrv) env = g_get_environ();
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    int rc;

    env = g_environ_setenv(env, "HOME", f->home, TRUE);
    env = g_environ_unsetenv(env, "XDG_CONFIG_HOME");
    g_ptr_array_add(argv, dv_test_build_path("src", "cli", "drover", NULL));
    g_ptr_array_add(argv, g_strdup("--insecure"));
    for (guint i = 0; args[i] != NULL; i++)
        g_ptr_array_add(argv, g_strdup(args[i]));
    g_ptr_array_add(argv, NULL);
    rc = dv_test_spawn((const char *const *)argv->pdata, (const char *const *)env, &out, &err);
    g_test_message("drover %s: status %d\n%s%s", args[0], rc, out, err);
    if (ret_out != NULL)
        *ret_out = g_steal_pointer(&out);
    return rc;
}

static void
cli_login(Fixture *f)
{
    g_autofree char *pw = g_build_filename(f->state, "initial-admin-password", NULL);
    const char *args[] = { "--server",        f->url, "login", "--user", "admin",
                           "--password-file", pw,     NULL };
    g_assert_cmpint(run_cli(f, NULL, args), ==, 0);
}

static void
cli_add_secret(Fixture *f, const char *name)
{
    g_autofree char *pw = path_in(f, "run-as.pw");
    const char *args[] = {
        "run-as", "add", name, "--username", "root", "--password-file", pw, NULL
    };
    g_assert_true(g_file_set_contents(pw, SECRET_TEXT "\n", -1, NULL));
    g_assert_cmpint(g_chmod(pw, 0600), ==, 0);
    g_assert_cmpint(run_cli(f, NULL, args), ==, 0);
}

static void
cli_assert_readable(Fixture *f, const char *name)
{
    g_autofree char *out = NULL;
    g_autoptr(JsonNode) node = NULL;
    JsonObject *pw;
    const char *args[] = { "run-as", "show", name, "-o", "json", NULL };

    g_assert_cmpint(run_cli(f, &out, args), ==, 0);
    node = json_from_string(out, NULL);
    g_assert_nonnull(node);
    pw = json_object_get_object_member(json_node_get_object(node), "password");
    g_assert_true(json_object_get_boolean_member(pw, "set"));
    g_assert_true(json_object_get_boolean_member(pw, "readable"));
    g_assert_cmpstr(json_object_get_string_member(pw, "key_id"), ==, "k1");
}

/* droverd, started from the written config, serves the Run As account
 * @name with a password that opens; then it is stopped again. */
static void
assert_served_readable(Fixture *f, const char *name)
{
    start_droverd(f, NULL);
    cli_assert_readable(f, name);
    stop_droverd(f);
}

/* "drover-setup keys check" as the service account: every used key opens. */
static void
assert_keys_open_as_account(Fixture *f, const char *database, const char *want_via)
{
    g_autofree char *uid = g_strdup_printf("--reuid=%s", f->account);
    g_autofree char *gid = g_strdup_printf("--regid=%s", f->account);
    g_autofree char *setup = dv_test_build_path("src", "setup", "drover-setup", NULL);
    const char *argv[] = { "setpriv",     uid,
                           gid,           "--init-groups",
                           setup,         "keys",
                           "check",       "-o",
                           "json",        "--state-dir",
                           f->state,      "--database",
                           database,      "--machine-id-file",
                           f->machine_id, NULL };
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) node = NULL;
    JsonArray *versions;
    int status = 0;

    g_auto(GStrv) envp = g_environ_setenv(g_get_environ(), "HOME", f->state, TRUE);

    g_spawn_sync(f->tmp, (char **)argv, envp, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status,
                 &error);
    g_assert_no_error(error);
    g_test_message("keys check: %s%s", out, err);
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    node = json_from_string(out, NULL);
    g_assert_nonnull(node);
    versions = json_node_get_array(node);
    g_assert_cmpuint(json_array_get_length(versions), ==, 1);
    g_assert_true(dv_json_get_bool(json_array_get_object_element(versions, 0), "open", FALSE));
    if (want_via != NULL) {
        JsonArray *prot =
            json_object_get_array_member(json_array_get_object_element(versions, 0), "protectors");
        gboolean found = FALSE;
        for (guint i = 0; i < json_array_get_length(prot); i++) {
            JsonObject *p = json_array_get_object_element(prot, i);
            if (g_strcmp0(dv_json_get_string(p, "kind", ""), want_via) == 0 &&
                dv_json_get_bool(p, "open", FALSE))
                found = TRUE;
        }
        g_assert_true(found);
    }
}

static void
assert_owned(const char *path, const char *account, guint mode)
{
    struct stat st;
    struct passwd *pw = getpwnam(account);
    g_assert_nonnull(pw);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpuint(st.st_uid, ==, pw->pw_uid);
    g_assert_cmpuint(st.st_mode & 07777, ==, mode);
}

static void
assert_contains(const char *text, const char *want)
{
    if (strstr(text, want) == NULL)
        g_error("expected '%s' in:\n%s", want, text);
}

/* --- tests ----------------------------------------------------------------------------- */

/* SQLite: install, the files it wrote, droverd from the config as the
 * account, a secret across a restart; install again; uninstall --keep-data
 * and install again switches to upgrade with the keys untouched. */
static void
test_sqlite(Fixture *f, gconstpointer data)
{
    g_autofree char *listen = g_strdup_printf("127.0.0.1:%d", free_port());
    g_autofree char *recovery = path_in(f, "recovery.key");
    g_autofree char *share = path_in(f, "isos");
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autofree char *conf_text = NULL;
    g_autofree char *unit_text = NULL;
    g_autofree char *unit = g_build_filename(f->units, "drover.service", NULL);
    g_autofree char *conf = config_path(f);
    g_autofree char *host_key = g_build_filename(f->state, "keys", "host.key", NULL);
    g_autofree char *tls_key = g_build_filename(f->state, "tls", "server.key", NULL);
    g_autofree char *db = g_build_filename(f->state, "drover.db", NULL);
    g_autofree char *key_sum = NULL;
    g_autofree char *before = NULL;
    g_autofree char *exec_line = NULL;
    g_autofree char *droverd = dv_test_build_path("src", "daemon", "droverd", NULL);
    struct passwd *pw;
    struct group *libvirt;
    int rc;
    const char *extra[] = { "--listen",
                            listen,
                            "--self-signed-tls",
                            "--recovery-key-out",
                            recovery,
                            "--library-share-name",
                            "isos",
                            "--library-share-path",
                            share,
                            NULL };
    /* The same without making a recovery key (it is written once). */
    const char *again[] = { "--listen",
                            listen,
                            "--self-signed-tls",
                            "--library-share-name",
                            "isos",
                            "--library-share-path",
                            share,
                            NULL };

    g_assert_cmpint(run_install(f, &out, &err, extra), ==, 0);
    assert_contains(out, "created system account");
    assert_contains(out, "installed");

    /* The account: system, home = state dir, nologin, in libvirt. */
    pw = getpwnam(f->account);
    g_assert_nonnull(pw);
    g_assert_cmpuint(pw->pw_uid, <, 1000);
    g_assert_cmpstr(pw->pw_dir, ==, f->state);
    g_assert_true(g_str_has_suffix(pw->pw_shell, "nologin"));
    libvirt = getgrnam("libvirt");
    if (libvirt != NULL) {
        gboolean member = FALSE;
        for (char **m = libvirt->gr_mem; *m != NULL; m++)
            member |= g_strcmp0(*m, f->account) == 0;
        g_assert_true(member);
    }

    /* Files: owned by the account, private where they hold keys. */
    assert_owned(f->state, f->account, 0700);
    assert_owned(host_key, f->account, 0600);
    assert_owned(tls_key, f->account, 0600);
    assert_owned(share, f->account, 0755);
    {
        struct stat st;
        g_autofree char *text = NULL;
        g_assert_cmpint(stat(recovery, &st), ==, 0);
        g_assert_cmpuint(st.st_uid, ==, 0);
        g_assert_cmpuint(st.st_mode & 0777, ==, 0600);
        g_assert_true(g_file_get_contents(recovery, &text, NULL, NULL));
        assert_contains(text, "drover-recovery-key 1");
    }
    g_assert_true(g_file_get_contents(conf, &conf_text, NULL, NULL));
    assert_contains(conf_text, "[server]");
    {
        g_autofree char *l = g_strdup_printf("listen=%s\n", listen);
        g_autofree char *s = g_strdup_printf("state_dir=%s\n", f->state);
        g_autofree char *a = g_strdup_printf("service_account=%s\n", f->account);
        assert_contains(conf_text, l);
        assert_contains(conf_text, s);
        assert_contains(conf_text, a);
    }
    g_assert_true(g_file_get_contents(unit, &unit_text, NULL, NULL));
    exec_line = g_strdup_printf("ExecStart=%s --config %s\n", droverd, conf);
    assert_contains(unit_text, exec_line);
    {
        g_autofree char *user = g_strdup_printf("User=%s\n", f->account);
        g_autofree char *rw = g_strdup_printf("ReadWritePaths=%s %s\n", f->state, share);
        assert_contains(unit_text, user);
        assert_contains(unit_text, rw);
    }
    assert_contains(unit_text, "NoNewPrivileges=yes\n");
    assert_contains(unit_text, "ProtectSystem=full\n");
    assert_contains(unit_text, "LimitCORE=0\n");
    assert_contains(unit_text, "Restart=on-failure\n");
    if (getgrnam("libvirt") != NULL)
        assert_contains(unit_text, "SupplementaryGroups=libvirt\n");
    /* systemd's own parser accepts the unit (and finds ExecStart). */
    {
        g_autofree char *analyze = g_find_program_in_path("systemd-analyze");
        if (analyze != NULL) {
            const char *argv[] = { analyze, "verify", unit, NULL };
            g_autofree char *vout = NULL;
            g_autofree char *verr = NULL;
            int status = 0;
            g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                                       &vout, &verr, &status, NULL));
            g_test_message("systemd-analyze verify: %s%s", vout, verr);
            g_assert_true(g_spawn_check_wait_status(status, NULL));
            g_assert_cmpstr(verr, ==, "");
        } else if (g_getenv("CI") != NULL || g_getenv("DV_REQUIRE_SERVICES") != NULL) {
            g_test_fail_printf("systemd-analyze is needed to verify the unit");
        }
    }

    /* droverd accepts the config, as the account; a secret survives a restart. */
    start_droverd(f, NULL);
    g_assert_true(g_str_has_prefix(f->url, "https://"));
    cli_login(f);
    cli_add_secret(f, "acct1");
    {
        g_autofree char *list = NULL;
        const char *args[] = { "library-share", "show", "isos", "-o", "json", NULL };
        g_assert_cmpint(run_cli(f, &list, args), ==, 0);
        assert_contains(list, share);
    }
    stop_droverd(f);
    assert_served_readable(f, "acct1");

    /* The same install again: already installed, nothing new. */
    key_sum = dv_test_file_sha256(host_key);
    before = dv_test_tree_snapshot(f->tmp, DV_TEST_TREE_DEFAULT);
    g_clear_pointer(&out, g_free);
    g_assert_cmpint(run_install(f, &out, NULL, again), ==, 0);
    assert_contains(out, "already installed");
    dv_test_assert_tree_unchanged(f->tmp, DV_TEST_TREE_DEFAULT, before);

    /* uninstall --keep-data: unit and config go, the data stays. */
    {
        const char *args[] = { "uninstall", "--root", f->root, "--keep-data", NULL };
        g_clear_pointer(&out, g_free);
        g_assert_cmpint(dv_test_run_setup(args, &out, NULL), ==, 0);
        assert_contains(out, host_key);
        assert_contains(out, "switches to upgrade");
        assert_contains(out, recovery);
    }
    g_assert_false(g_file_test(unit, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(conf, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(db, G_FILE_TEST_EXISTS));
    g_assert_true(account_exists(f->account));
    dv_test_assert_file_unchanged(host_key, key_sum);

    /* Install on it again: switches to upgrade, makes no key itself. */
    g_free(before);
    before = dv_test_tree_snapshot(f->state, DV_TEST_TREE_DEFAULT);
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);
    rc = run_install(f, &out, &err, again);
    assert_contains(out, "this database already holds a Drover installation (schema ");
    assert_contains(out, ", 1 secrets); switching to upgrade");
    {
        g_autofree char *cmd =
            g_strdup_printf("running: drover-setup upgrade --state-dir %s --database %s "
                            "--machine-id-file %s --service-account %s",
                            f->state, db, f->machine_id, f->account);
        assert_contains(out, cmd);
    }
    if (rc != 0) {
        /* Without a working upgrade command install stops there and
         * changes nothing: no key, no config, the account kept. */
        assert_contains(err, "drover-setup upgrade did not finish");
        dv_test_assert_tree_unchanged(f->state, DV_TEST_TREE_DEFAULT, before);
        dv_test_assert_file_unchanged(host_key, key_sum);
        g_assert_false(g_file_test(conf, G_FILE_TEST_EXISTS));
        g_assert_true(account_exists(f->account));
        assert_keys_open_as_account(f, db, "host");
        {
            const char *args[] = { "--state-dir",       f->state,
                                   "--listen",          listen,
                                   "--self-signed-tls", "--machine-id-file",
                                   f->machine_id,       NULL };
            start_droverd(f, args);
            cli_assert_readable(f, "acct1");
            stop_droverd(f);
        }
    } else {
        /* Upgrade ran: install wrote the config and unit again. */
        assert_contains(out, "installed on the upgraded database");
        g_assert_true(g_file_test(conf, G_FILE_TEST_EXISTS));
        assert_keys_open_as_account(f, db, "host");
        assert_served_readable(f, "acct1");
    }
}

/* A failure after the account was made takes back everything install made. */
static void
test_failure_undone(Fixture *f, gconstpointer data)
{
    g_autofree char *file = path_in(f, "a-file");
    g_autofree char *share = g_build_filename(file, "library", NULL);
    g_autofree char *err = NULL;
    g_autofree char *before = NULL;
    const char *extra[] = { "--library-share-path", share, NULL };

    g_assert_true(g_file_set_contents(file, "not a directory\n", -1, NULL));
    before = dv_test_tree_snapshot(f->tmp, DV_TEST_TREE_DEFAULT);
    g_assert_cmpint(run_install(f, NULL, &err, extra), !=, 0);
    assert_contains(err, "install failed; taking back what it made");
    assert_contains(err, "removed the account");
    dv_test_assert_tree_unchanged(f->tmp, DV_TEST_TREE_DEFAULT, before);
    g_assert_false(account_exists(f->account));
    g_assert_false(g_file_test(f->state, G_FILE_TEST_EXISTS));

    /* The same when the keys were already made: the config cannot be
     * written, so the state directory with its keys goes again. */
    {
        g_autofree char *config_dir = g_build_filename(file, "etc", NULL);
        const char *late[] = { "--config-dir", config_dir, NULL };
        g_clear_pointer(&err, g_free);
        g_assert_cmpint(run_install(f, NULL, &err, late), !=, 0);
        assert_contains(err, "install failed; taking back what it made");
        dv_test_assert_tree_unchanged(f->tmp, DV_TEST_TREE_DEFAULT, before);
        g_assert_false(account_exists(f->account));
    }
}

/* Bad input: a clear error naming the option; nothing written anywhere
 * and no account created. */
static void
test_bad_input(Fixture *f, gconstpointer data)
{
    g_autofree char *foreign = path_in(f, "foreign");
    g_autofree char *notes = g_build_filename(foreign, "notes.txt", NULL);
    g_autofree char *exists = path_in(f, "exists.key");
    g_autofree char *not_sqlite = path_in(f, "not-a-db");
    g_autofree char *cert = path_in(f, "c.pem");
    struct {
        const char *option;
        const char *args[8];
    } cases[] = {
        { "--frobnicate", { "--frobnicate", NULL } },
        { "--listen", { "--listen", NULL } },
        { "--listen", { "--listen", "nonsense", NULL } },
        { "--listen", { "--listen", "127.0.0.1:99999", NULL } },
        { "--listen", { "--listen", "example.com:8420", NULL } },
        { "--listen", { "--listen", "10.1.2.3:8420", NULL } },
        { "--database",
          { "--database", "postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=2", NULL } },
        { "--database", { "--database", "relative.db", NULL } },
        { "--database", { "--database", not_sqlite, NULL } },
        { "--state-dir", { "--state-dir", foreign, NULL } },
        { "--state-dir", { "--state-dir", "relative/dir", NULL } },
        { "--tls-cert", { "--tls-key", cert, NULL } },
        { "--self-signed-tls",
          { "--self-signed-tls", "--tls-cert", cert, "--tls-key", cert, NULL } },
        { "--recovery-key-out", { "--recovery-key-out", exists, NULL } },
        { "--recovery-key-out", { "--recovery-key-out", "/nonexistent-dir/r.key", NULL } },
        { "--ldap-uri", { "--directory", NULL } },
        { "--directory", { "--ldap-uri", "ldap://127.0.0.1", NULL } },
        { "--service-password-file", { "--service-dn", "cn=x,dc=y", NULL } },
        { "--library-share-name", { "--library-share-name", "no spaces allowed", NULL } },
        { "--library-share-path", { "--library-share-path", "rel/path", NULL } },
        { "--library-share", { "--library-share", "bogus", NULL } },
        { "--machine-id-file", { "--machine-id-file", "/nonexistent/machine-id", NULL } },
        { "unexpected argument", { "extra-word", NULL } },
    };
    g_autofree char *before = NULL;

    g_assert_cmpint(g_mkdir(foreign, 0755), ==, 0);
    g_assert_true(g_file_set_contents(notes, "someone else's\n", -1, NULL));
    g_assert_true(g_file_set_contents(exists, "keep me\n", -1, NULL));
    g_assert_true(g_file_set_contents(not_sqlite, "this is not a database at all\n", -1, NULL));
    g_assert_true(g_file_set_contents(cert, "-----BEGIN CERTIFICATE-----\n", -1, NULL));
    before = dv_test_tree_snapshot(f->tmp, DV_TEST_TREE_DEFAULT);
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *err = NULL;
        int rc = run_install(f, NULL, &err, cases[i].args);
        g_assert_cmpint(rc, !=, 0);
        assert_contains(err, cases[i].option);
        assert_contains(err, "nothing was changed");
        dv_test_assert_tree_unchanged(f->tmp, DV_TEST_TREE_DEFAULT, before);
        g_assert_false(account_exists(f->account));
    }
    /* An invalid account name, and root. */
    {
        const char *names[] = { "Bad Name", "9starts-with-digit",
                                "a-name-that-is-far-too-long-for-useradd", "root", NULL };
        for (guint i = 0; names[i] != NULL; i++) {
            g_autofree char *err = NULL;
            const char *args[] = { "install", "--root",      f->root,  "--unit-dir",
                                   f->units,  "--state-dir", f->state, "--service-account",
                                   names[i],  NULL };
            g_assert_cmpint(dv_test_run_setup(args, NULL, &err), ==, DV_EXIT_INVALID);
            assert_contains(err, "--service-account");
            dv_test_assert_tree_unchanged(f->tmp, DV_TEST_TREE_DEFAULT, before);
        }
    }
    /* uninstall with nothing installed, or with both choices. */
    {
        g_autofree char *err = NULL;
        const char *args[] = { "uninstall", "--root", f->root, "--keep-data", NULL };
        const char *both[] = { "uninstall",         "--root", f->root, "--keep-data",
                               "--yes-delete-data", NULL };
        g_assert_cmpint(dv_test_run_setup(args, NULL, &err), ==, DV_EXIT_NOT_FOUND);
        assert_contains(err, "no installation here");
        g_clear_pointer(&err, g_free);
        g_assert_cmpint(dv_test_run_setup(both, NULL, &err), ==, DV_EXIT_USAGE);
        assert_contains(err, "--keep-data and --yes-delete-data");
    }
    dv_test_assert_tree_unchanged(f->tmp, DV_TEST_TREE_DEFAULT, before);
}

/* uninstall: refuses to delete data unless told; then removes the state
 * directory, and the account only with --remove-account. */
static void
test_uninstall_delete(Fixture *f, gconstpointer data)
{
    g_autofree char *conf = config_path(f);
    g_autofree char *unit = g_build_filename(f->units, "drover.service", NULL);
    g_autofree char *err = NULL;
    g_autofree char *before = NULL;
    const char *refuse[] = { "uninstall", "--root", f->root, NULL };
    const char *del[] = { "uninstall",         "--root",           f->root,
                          "--yes-delete-data", "--remove-account", NULL };

    g_autofree char *listen = g_strdup_printf("127.0.0.1:%d", free_port());
    const char *extra[] = { "--listen", listen, NULL };

    g_assert_cmpint(run_install(f, NULL, NULL, extra), ==, 0);
    g_assert_true(g_file_test(unit, G_FILE_TEST_EXISTS));
    /* Refused while droverd serves the database. */
    start_droverd(f, NULL);
    g_assert_cmpint(dv_test_run_setup(del, NULL, &err), ==, DV_EXIT_CONFLICT);
    assert_contains(err, "is serving this database; stop it first");
    g_assert_true(g_file_test(conf, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(unit, G_FILE_TEST_EXISTS));
    stop_droverd(f);
    g_clear_pointer(&err, g_free);
    before = dv_test_tree_snapshot(f->tmp, DV_TEST_TREE_DEFAULT);
    g_assert_cmpint(dv_test_run_setup(refuse, NULL, &err), ==, DV_EXIT_USAGE);
    assert_contains(err, "--yes-delete-data");
    dv_test_assert_tree_unchanged(f->tmp, DV_TEST_TREE_DEFAULT, before);
    g_assert_cmpint(dv_test_run_setup(del, NULL, NULL), ==, 0);
    g_assert_false(g_file_test(f->state, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(conf, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(unit, G_FILE_TEST_EXISTS));
    g_assert_false(account_exists(f->account));
}

/* An existing account is used as it is and never removed. */
static void
test_existing_account(Fixture *f, gconstpointer data)
{
    g_autofree char *cmd = g_strdup_printf("useradd --system --user-group --no-create-home --shell "
                                           "/usr/sbin/nologin %s",
                                           f->account);
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    const char *del[] = { "uninstall",         "--root",           f->root,
                          "--yes-delete-data", "--remove-account", NULL };
    const char *keep[] = { "uninstall", "--root", f->root, "--yes-delete-data", NULL };
    int status = 0;

    g_autofree char *cert = path_in(f, "given.crt");
    g_autofree char *key = path_in(f, "given.key");
    g_autofree char *listen = g_strdup_printf("0.0.0.0:%d", free_port());
    g_autofree char *state_key = g_build_filename(f->state, "tls", "server.key", NULL);
    const char *tls[] = { "--tls-cert", cert, "--tls-key", key, "--listen", listen, NULL };

    g_assert_true(g_spawn_command_line_sync(cmd, NULL, NULL, &status, NULL));
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    /* A certificate of the administrator's, given to install. */
    {
        const char *argv[] = { "openssl", "req",     "-x509", "-newkey",       "rsa:2048",
                               "-nodes",  "-keyout", key,     "-out",          cert,
                               "-days",   "2",       "-subj", "/CN=localhost", NULL };
        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL,
                                   G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL |
                                       G_SPAWN_STDERR_TO_DEV_NULL,
                                   NULL, NULL, NULL, NULL, &status, NULL));
        g_assert_true(g_spawn_check_wait_status(status, NULL));
        g_assert_cmpint(g_chmod(key, 0600), ==, 0);
    }
    g_assert_cmpint(run_install(f, &out, NULL, tls), ==, 0);
    assert_contains(out, "using existing account");
    assert_contains(out, "copied the TLS certificate and key");
    assert_owned(state_key, f->account, 0600);
    /* droverd serves TLS on all addresses with it, as the account. */
    start_droverd(f, NULL);
    g_assert_true(g_str_has_prefix(f->url, "https://"));
    stop_droverd(f);
    /* Another state directory under the same config: refused, nothing changed. */
    {
        g_autofree char *other = path_in(f, "other-state");
        g_autofree char *before = dv_test_tree_snapshot(f->tmp, DV_TEST_TREE_DEFAULT);
        const char *args[] = { "install",  "--root",      f->root, "--unit-dir",
                               f->units,   "--state-dir", other,   "--service-account",
                               f->account, NULL };
        g_assert_cmpint(dv_test_run_setup(args, NULL, &err), ==, DV_EXIT_CONFLICT);
        assert_contains(err, "belongs to another installation");
        dv_test_assert_tree_unchanged(f->tmp, DV_TEST_TREE_DEFAULT, before);
        g_clear_pointer(&err, g_free);
    }
    g_assert_cmpint(dv_test_run_setup(del, NULL, &err), ==, DV_EXIT_CONFLICT);
    assert_contains(err, "existed before install");
    g_assert_true(g_file_test(f->state, G_FILE_TEST_IS_DIR));
    g_assert_cmpint(dv_test_run_setup(keep, NULL, NULL), ==, 0);
    g_assert_true(account_exists(f->account));
}

/* Existing data and another service account: install makes the new account
 * for upgrade to re-wrap the keys for; if upgrade does not finish, the
 * account it made goes again and the data is untouched. */
static void
test_existing_data_new_account(Fixture *f, gconstpointer data)
{
    g_autofree char *host_key = g_build_filename(f->state, "keys", "host.key", NULL);
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autofree char *before = NULL;
    g_autofree char *want = NULL;
    const char *keep[] = { "uninstall", "--root", f->root, "--keep-data", NULL };
    const char *args[] = { "install",     "--root",
                           f->root,       "--unit-dir",
                           f->units,      "--state-dir",
                           f->state,      "--machine-id-file",
                           f->machine_id, "--service-account",
                           f->account2,   "--library-share",
                           "keep",        NULL };
    int rc;

    g_assert_cmpint(run_install(f, NULL, NULL, NULL), ==, 0);
    g_assert_cmpint(dv_test_run_setup(keep, NULL, NULL), ==, 0);
    before = dv_test_tree_snapshot(f->state, DV_TEST_TREE_DEFAULT);
    rc = dv_test_run_setup(args, &out, &err);
    assert_contains(out, "switching to upgrade");
    want = g_strdup_printf("--service-account %s", f->account2);
    assert_contains(out, want);
    if (rc != 0) {
        assert_contains(err, "removed the account");
        g_assert_false(account_exists(f->account2));
        dv_test_assert_tree_unchanged(f->state, DV_TEST_TREE_DEFAULT, before);
        g_autofree char *db = g_build_filename(f->state, "drover.db", NULL);
        assert_keys_open_as_account(f, db, "host");
    } else {
        g_autofree char *conf = config_path(f);
        g_autofree char *text = NULL;
        g_autofree char *line = g_strdup_printf("service_account=%s\n", f->account2);
        g_assert_true(g_file_get_contents(conf, &text, NULL, NULL));
        assert_contains(text, line);
    }
    g_assert_true(g_file_test(host_key, G_FILE_TEST_EXISTS));
}

static gboolean
services_missing(const char *what)
{
    if (g_getenv("CI") != NULL || g_getenv("DV_REQUIRE_SERVICES") != NULL) {
        g_test_fail_printf(
            "%s is not set but services are required (CI=true or DV_REQUIRE_SERVICES=1)", what);
        return TRUE;
    }
    g_test_skip_printf("%s is not set; run under tests/services/with-services", what);
    return TRUE;
}

static char *
pg_new_database(Fixture *f)
{
    char *name = NULL;
    char *uri = dv_test_pg_new_database("dv_install", &name);
    g_ptr_array_add(f->pg_dbs, name);
    return uri;
}

/* PostgreSQL: an empty database is installed on; droverd serves it from the
 * config as the account; a database holding other tables is refused. */
static void
test_postgresql(Fixture *f, gconstpointer data)
{
    g_autofree char *uri = NULL;
    g_autofree char *other = NULL;
    g_autofree char *listen = g_strdup_printf("127.0.0.1:%d", free_port());
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autofree char *before = NULL;

    if (g_getenv("DV_TEST_PG_URI") == NULL) {
        services_missing("DV_TEST_PG_URI");
        return;
    }
    uri = pg_new_database(f);
    other = pg_new_database(f);
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(DvDb) db = dv_db_open(other, &error);
        g_assert_no_error(error);
        dv_db_exec(db, "CREATE TABLE invoices (id integer)", DV_SQL_NO_ARGS, NULL, &error);
        g_assert_no_error(error);
    }
    {
        const char *extra[] = { "--database", other, NULL };
        before = dv_test_tree_snapshot(f->tmp, DV_TEST_TREE_DEFAULT);
        g_assert_cmpint(run_install(f, NULL, &err, extra), ==, DV_EXIT_INVALID);
        assert_contains(err, "--database");
        assert_contains(err, "invoices");
        dv_test_assert_tree_unchanged(f->tmp, DV_TEST_TREE_DEFAULT, before);
        g_assert_false(account_exists(f->account));
    }
    /* A failure after the database was populated empties it again. */
    {
        g_autofree char *file = path_in(f, "a-file");
        g_autofree char *config_dir = g_build_filename(file, "etc", NULL);
        const char *late[] = { "--database", uri, "--config-dir", config_dir, NULL };
        g_auto(DvStoreInspection) in = { 0 };
        g_autoptr(GError) error = NULL;
        g_assert_true(g_file_set_contents(file, "not a directory\n", -1, NULL));
        g_clear_pointer(&err, g_free);
        g_assert_cmpint(run_install(f, NULL, &err, late), !=, 0);
        assert_contains(err, "dropped the tables install made");
        g_assert_true(dv_store_inspect(uri, &in, &error));
        g_assert_no_error(error);
        g_assert_cmpint(in.content, ==, DV_STORE_CONTENT_EMPTY);
        g_assert_false(account_exists(f->account));
        g_assert_false(g_file_test(f->state, G_FILE_TEST_EXISTS));
    }
    {
        const char *extra[] = { "--database", uri, "--listen", listen, NULL };
        g_autofree char *conf_text = NULL;
        g_autofree char *conf = config_path(f);
        g_autofree char *host_key = g_build_filename(f->state, "keys", "host.key", NULL);
        g_autofree char *sum = NULL;
        g_autofree char *sqlite = g_build_filename(f->state, "drover.db", NULL);
        g_assert_cmpint(run_install(f, &out, NULL, extra), ==, 0);
        g_assert_false(g_file_test(sqlite, G_FILE_TEST_EXISTS));
        g_assert_true(g_file_get_contents(conf, &conf_text, NULL, NULL));
        {
            g_autofree char *line = g_strdup_printf("database=%s\n", uri);
            assert_contains(conf_text, line);
        }
        start_droverd(f, NULL);
        g_assert_true(g_str_has_prefix(f->url, "http://"));
        cli_login(f);
        cli_add_secret(f, "pg-acct");
        stop_droverd(f);
        assert_served_readable(f, "pg-acct");
        /* Again: already installed; without the config: switches to upgrade. */
        sum = dv_test_file_sha256(host_key);
        g_clear_pointer(&out, g_free);
        g_assert_cmpint(run_install(f, &out, NULL, extra), ==, 0);
        assert_contains(out, "already installed");
        g_assert_cmpint(g_unlink(conf), ==, 0);
        g_clear_pointer(&out, g_free);
        {
            const char *again[] = { "--database",      uri,    "--listen", listen,
                                    "--library-share", "keep", NULL };
            int rc = run_install(f, &out, NULL, again);
            assert_contains(out, "1 secrets); switching to upgrade");
            assert_contains(out, "--library-share keep");
            if (rc != 0) {
                /* No working upgrade here: nothing changed, no key made. */
                dv_test_assert_file_unchanged(host_key, sum);
                g_assert_false(g_file_test(conf, G_FILE_TEST_EXISTS));
            } else {
                /* Upgraded and installed again: droverd reads the secret. */
                g_assert_true(g_file_test(conf, G_FILE_TEST_EXISTS));
                assert_served_readable(f, "pg-acct");
            }
        }
    }
}

/* --directory against the private slapd, with a recovery key: the key is
 * wrapped in the directory too, and droverd opens it from the config. */
static void
test_directory(Fixture *f, gconstpointer data)
{
    g_autofree char *container = NULL;
    g_autofree char *nonmember = NULL;
    g_autofree char *recovery = path_in(f, "recovery.key");
    g_autofree char *listen = g_strdup_printf("127.0.0.1:%d", free_port());
    g_autofree char *out = NULL;
    g_autofree char *db = g_build_filename(f->state, "drover.db", NULL);
    g_autofree char *dir_conf = g_build_filename(f->state, "directory.conf", NULL);
    g_autofree char *bind_pw = g_build_filename(f->state, "directory-bind.password", NULL);

    if (g_getenv("DV_TEST_LDAP_URI") == NULL) {
        services_missing("DV_TEST_LDAP_URI");
        return;
    }
    container = g_strdup_printf("ou=drover-install-%u,%s", g_random_int(),
                                dv_test_env("DV_TEST_LDAP_BASE"));
    nonmember = g_strdup_printf("%s=%s", dv_test_env("DV_TEST_LDAP_INTRUDER_DN"),
                                dv_test_env("DV_TEST_LDAP_INTRUDER_PW_FILE"));
    {
        const char *extra[] = { "--directory",
                                "--ldap-uri",
                                dv_test_env("DV_TEST_LDAP_URI"),
                                "--container",
                                container,
                                "--admin-dn",
                                dv_test_env("DV_TEST_LDAP_ADMIN_DN"),
                                "--admin-password-file",
                                dv_test_env("DV_TEST_LDAP_ADMIN_PW_FILE"),
                                "--config-admin-uri",
                                dv_test_env("DV_TEST_LDAPI_URI"),
                                "--service-dn",
                                dv_test_env("DV_TEST_LDAP_SERVICE_DN"),
                                "--service-password-file",
                                dv_test_env("DV_TEST_LDAP_SERVICE_PW_FILE"),
                                "--group-dn",
                                dv_test_env("DV_TEST_LDAP_GROUP_DN"),
                                "--non-member",
                                nonmember,
                                "--ca-file",
                                dv_test_env("DV_TEST_LDAP_CA"),
                                "--recovery-key-out",
                                recovery,
                                "--listen",
                                listen,
                                NULL };
        g_assert_cmpint(run_install(f, &out, NULL, extra), ==, 0);
    }
    assert_contains(out, "also wrapped in the directory");
    assert_owned(dir_conf, f->account, 0600);
    assert_owned(bind_pw, f->account, 0600);
    g_assert_true(g_file_test(recovery, G_FILE_TEST_IS_REGULAR));
    {
        g_autofree char *conf_text = NULL;
        g_autofree char *want =
            g_strdup_printf("service_dn=%s\n", dv_test_env("DV_TEST_LDAP_SERVICE_DN"));
        g_autofree char *conf = config_path(f);
        g_assert_true(g_file_get_contents(conf, &conf_text, NULL, NULL));
        assert_contains(conf_text, want);
    }
    assert_keys_open_as_account(f, db, "directory");
    start_droverd(f, NULL);
    cli_login(f);
    cli_add_secret(f, "dir-acct");
    stop_droverd(f);
    assert_served_readable(f, "dir-acct");
}

/* An unreachable directory fails before anything is written here. */
static void
test_directory_unreachable(Fixture *f, gconstpointer data)
{
    g_autofree char *pw = path_in(f, "pw");
    g_autofree char *err = NULL;
    g_autofree char *before = NULL;
    g_autofree char *uri = g_strdup_printf("ldap://127.0.0.1:%d", free_port());
    const char *extra[] = { "--directory",
                            "--ldap-uri",
                            uri,
                            "--container",
                            "ou=k,dc=x",
                            "--admin-dn",
                            "cn=a,dc=x",
                            "--admin-password-file",
                            pw,
                            "--service-dn",
                            "cn=s,dc=x",
                            "--service-password-file",
                            pw,
                            NULL };

    g_assert_true(g_file_set_contents(pw, "pw\n", -1, NULL));
    g_assert_cmpint(g_chmod(pw, 0600), ==, 0);
    before = dv_test_tree_snapshot(f->tmp, DV_TEST_TREE_DEFAULT);
    g_assert_cmpint(run_install(f, NULL, &err, extra), ==, DV_EXIT_UNAVAILABLE);
    assert_contains(err, "--ldap-uri");
    assert_contains(err, "cannot be reached");
    dv_test_assert_tree_unchanged(f->tmp, DV_TEST_TREE_DEFAULT, before);
    g_assert_false(account_exists(f->account));
}

/* An installed instance backed up and restored: the secret opens again. */
static void
test_backup_round_trip(Fixture *f, gconstpointer data)
{
    g_autofree char *listen = g_strdup_printf("127.0.0.1:%d", free_port());
    g_autofree char *archive = path_in(f, "backup.tar.zst");
    g_autofree char *db = g_build_filename(f->state, "drover.db", NULL);
    const char *extra[] = { "--listen", listen, NULL };
    const char *backup[] = { "backup", "--state-dir", f->state, "--out", archive, NULL };
    const char *restore[] = { "restore", "--state-dir",       f->state,      "--in",
                              archive,   "--machine-id-file", f->machine_id, NULL };

    g_assert_cmpint(run_install(f, NULL, NULL, extra), ==, 0);
    start_droverd(f, NULL);
    cli_login(f);
    cli_add_secret(f, "backed-up");
    stop_droverd(f);
    g_assert_cmpint(dv_test_run_setup(backup, NULL, NULL), ==, 0);
    /* Lose the database; restore it (as root, then hand it back). */
    g_assert_cmpint(g_unlink(db), ==, 0);
    g_assert_cmpint(dv_test_run_setup(restore, NULL, NULL), ==, 0);
    {
        struct passwd *pw = getpwnam(f->account);
        g_autofree char *cmd =
            g_strdup_printf("chown -R %u:%u %s", (guint)pw->pw_uid, (guint)pw->pw_gid, f->state);
        g_assert_true(g_spawn_command_line_sync(cmd, NULL, NULL, NULL, NULL));
    }
    assert_served_readable(f, "backed-up");
}

static void
test_account_names(void)
{
    g_assert_true(dv_setup_install_account_name_valid("drover"));
    g_assert_true(dv_setup_install_account_name_valid("_drover-2"));
    g_assert_true(dv_setup_install_account_name_valid("machine$"));
    g_assert_false(dv_setup_install_account_name_valid(""));
    g_assert_false(dv_setup_install_account_name_valid("Drover"));
    g_assert_false(dv_setup_install_account_name_valid("2drover"));
    g_assert_false(dv_setup_install_account_name_valid("dro ver"));
    g_assert_false(dv_setup_install_account_name_valid("dro$ver"));
    g_assert_false(dv_setup_install_account_name_valid("abcdefghijklmnopqrstuvwxyz0123456"));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/drover/setup/install/account-names", test_account_names);
    if (geteuid() != 0) {
        g_printerr("test-install creates accounts and must run as root\n");
        return 1;
    }
    dv_test_remove_stale_accounts("dvi"); /* dvi<pid>-<n> */
    g_test_add("/drover/setup/install/sqlite", Fixture, NULL, fixture_setup, test_sqlite,
               fixture_teardown);
    g_test_add("/drover/setup/install/bad-input", Fixture, NULL, fixture_setup, test_bad_input,
               fixture_teardown);
    g_test_add("/drover/setup/install/failure-undone", Fixture, NULL, fixture_setup,
               test_failure_undone, fixture_teardown);
    g_test_add("/drover/setup/install/uninstall-delete", Fixture, NULL, fixture_setup,
               test_uninstall_delete, fixture_teardown);
    g_test_add("/drover/setup/install/existing-account", Fixture, NULL, fixture_setup,
               test_existing_account, fixture_teardown);
    g_test_add("/drover/setup/install/existing-data-new-account", Fixture, NULL, fixture_setup,
               test_existing_data_new_account, fixture_teardown);
    g_test_add("/drover/setup/install/postgresql", Fixture, NULL, fixture_setup, test_postgresql,
               fixture_teardown);
    g_test_add("/drover/setup/install/directory", Fixture, NULL, fixture_setup, test_directory,
               fixture_teardown);
    g_test_add("/drover/setup/install/directory-unreachable", Fixture, NULL, fixture_setup,
               test_directory_unreachable, fixture_teardown);
    g_test_add("/drover/setup/install/backup-round-trip", Fixture, NULL, fixture_setup,
               test_backup_round_trip, fixture_teardown);
    return g_test_run();
}
