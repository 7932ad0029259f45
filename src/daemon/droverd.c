#define G_LOG_DOMAIN "Droverd"

/* droverd: the Drover management server. */

#include "dv-authz.h"
#include "dv-config.h"
#include "dv-core.h"
#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-openapi.h"
#include "dv-log.h"
#include "dv-metrics.h"
#include "dv-metrics-listen.h"
#include "dv-web.h"
#include "dv-secret.h"
#include "dv-server.h"
#include "dv-validate.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#define DV_DEFAULT_LISTEN "127.0.0.1:8420"

typedef struct {
    char *config;
    char *state_dir;
    char *listen;
    char *database;
    char *tls_cert;
    char *tls_key;
    gboolean self_signed;
    char *add_local_host;
    char *machine_id_file;
    char *recovery_key;
    gboolean verbose;
    gboolean version;
    gboolean dump_ops;
    gboolean dump_openapi;
    int reconcile_interval; /* minutes; -1: not given (default 60), 0: off */
    int job_lease;          /* seconds; -1: not given (default 20) */
    gboolean allow_simulated;
    char **allow_uri_parameters;
    gboolean allow_unsafe_migration;
    char *library_root;
    char *log_level;
    char *log_format;
    char *metrics_listen;
    char *web_root;
} DvDaemonOptions;

static void
dv_daemon_options_clear(DvDaemonOptions *o)
{
    g_free(o->config);
    g_free(o->state_dir);
    g_free(o->listen);
    g_free(o->database);
    g_free(o->tls_cert);
    g_free(o->tls_key);
    g_free(o->add_local_host);
    g_free(o->machine_id_file);
    g_free(o->recovery_key);
    g_strfreev(o->allow_uri_parameters);
    g_free(o->library_root);
    g_free(o->log_level);
    g_free(o->log_format);
    g_free(o->metrics_listen);
    g_free(o->web_root);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(DvDaemonOptions, dv_daemon_options_clear)

/* Command-line values win over the config file's. */
static gboolean
dv_daemon_load_config(DvDaemonOptions *o, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    struct {
        const char *key;
        char **target;
    } keys[] = {
        { "state_dir", &o->state_dir },
        { "listen", &o->listen },
        { "database", &o->database },
        { "tls_cert", &o->tls_cert },
        { "tls_key", &o->tls_key },
        { "machine_id_file", &o->machine_id_file },
        { "recovery_key", &o->recovery_key },
        { "log_level", &o->log_level },
        { "log_format", &o->log_format },
        { "metrics_listen", &o->metrics_listen },
        { "web_root", &o->web_root },
    };

    if (o->config == NULL)
        return TRUE;
    if (!g_key_file_load_from_file(kf, o->config, G_KEY_FILE_NONE, error)) {
        dv_error_convert(error);
        g_prefix_error(error, "cannot read config %s: ", o->config);
        return FALSE;
    }
    for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
        if (*keys[i].target == NULL && g_key_file_has_key(kf, "server", keys[i].key, NULL))
            *keys[i].target = g_key_file_get_string(kf, "server", keys[i].key, NULL);
    }
    if (!o->self_signed && g_key_file_has_key(kf, "server", "self_signed_tls", NULL))
        o->self_signed = g_key_file_get_boolean(kf, "server", "self_signed_tls", NULL);
    if (o->reconcile_interval < 0 && g_key_file_has_key(kf, "server", "catalog_reconcile_interval", NULL)) {
        g_autoptr(GError) local = NULL;
        int v = g_key_file_get_integer(kf, "server", "catalog_reconcile_interval", &local);
        if (local != NULL || v < 0 || v > 10080) {
            g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                        "config %s: catalog_reconcile_interval must be 0 (off) to 10080 minutes", o->config);
            return FALSE;
        }
        o->reconcile_interval = v;
    }
    if (o->job_lease < 0 && g_key_file_has_key(kf, "server", "job_lease", NULL)) {
        g_autoptr(GError) local = NULL;
        int v = g_key_file_get_integer(kf, "server", "job_lease", &local);
        if (local != NULL || v < DV_ENGINE_JOB_LEASE_MIN_S || v > DV_ENGINE_JOB_LEASE_MAX_S) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "job_lease",
                               "config %s: job_lease must be %d to %d seconds", o->config,
                               DV_ENGINE_JOB_LEASE_MIN_S, DV_ENGINE_JOB_LEASE_MAX_S);
            return FALSE;
        }
        o->job_lease = v;
    }
    /* Host URIs and library shares (docs/INSTALL.md, "Hosts and library
     * shares"): what the command line gives adds to the file. */
    if (!o->allow_simulated && g_key_file_has_key(kf, "hosts", "simulated", NULL)) {
        g_autoptr(GError) local = NULL;
        o->allow_simulated = g_key_file_get_boolean(kf, "hosts", "simulated", &local);
        if (local != NULL) {
            g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                        "config %s: [hosts] simulated must be true or false", o->config);
            return FALSE;
        }
    }
    if (g_key_file_has_key(kf, "hosts", "allow_uri_parameters", NULL)) {
        g_auto(GStrv) names = g_key_file_get_string_list(kf, "hosts", "allow_uri_parameters", NULL, NULL);
        g_autoptr(GStrvBuilder) all = g_strv_builder_new();
        if (o->allow_uri_parameters != NULL)
            g_strv_builder_addv(all, (const char **)o->allow_uri_parameters);
        for (guint i = 0; names != NULL && names[i] != NULL; i++) {
            g_strstrip(names[i]);
            if (names[i][0] != '\0')
                g_strv_builder_add(all, names[i]);
        }
        g_strfreev(o->allow_uri_parameters);
        o->allow_uri_parameters = g_strv_builder_end(all);
    }
    /* Test set-ups only: two daemons of one machine sharing a local dir. */
    if (g_key_file_has_key(kf, "hosts", "allow_unsafe_migration", NULL)) {
        g_autoptr(GError) local = NULL;
        o->allow_unsafe_migration =
            g_key_file_get_boolean(kf, "hosts", "allow_unsafe_migration", &local);
        if (local != NULL) {
            g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                        "config %s: [hosts] allow_unsafe_migration must be true or false",
                        o->config);
            return FALSE;
        }
    }
    if (o->library_root == NULL && g_key_file_has_key(kf, "library", "root", NULL))
        o->library_root = g_key_file_get_string(kf, "library", "root", NULL);
    return TRUE;
}

/* A self-signed certificate under the state directory, made once. */
static gboolean
dv_daemon_self_signed(DvDaemonOptions *o, GError **error)
{
    g_autofree char *cert = g_build_filename(o->state_dir, "tls", "server.crt", NULL);
    g_autofree char *key = g_build_filename(o->state_dir, "tls", "server.key", NULL);
    g_autofree char *dir = g_path_get_dirname(cert);
    g_autofree char *subj = g_strdup_printf("/CN=%s", g_get_host_name());
    g_autofree char *san = g_strdup_printf("subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1",
                                           g_get_host_name());
    int status = 0;

    if (!g_file_test(cert, G_FILE_TEST_EXISTS)) {
        const char *argv[] = { "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                               "-keyout", key, "-out", cert, "-days", "825", "-subj", subj,
                               "-addext", san, NULL };
        g_autofree char *err = NULL;
        g_mkdir_with_parents(dir, 0700);
        if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                          NULL, NULL, NULL, &err, &status, error) ||
            !g_spawn_check_wait_status(status, error)) {
            dv_error_convert(error);
            g_prefix_error(error, "cannot make a self-signed certificate with openssl: ");
            return FALSE;
        }
        g_chmod(key, 0600);
        g_print("Made a self-signed TLS certificate: %s\n", cert);
    }
    g_free(o->tls_cert);
    g_free(o->tls_key);
    o->tls_cert = g_steal_pointer(&cert);
    o->tls_key = g_steal_pointer(&key);
    return TRUE;
}

/* Keys and secrets live in this process: no core files. */
static void
dv_daemon_harden(void)
{
    struct rlimit rl = { 0, 0 };
    setrlimit(RLIMIT_CORE, &rl);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* Every client holds a descriptor: take all the hard limit allows (the
 * unit sets LimitNOFILE); the server caps clients below it. */
static void
dv_daemon_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            g_warning("cannot raise the descriptor limit: %s", g_strerror(errno));
    }
}

/* [server] max_connections, header_timeout, idle_timeout (docs/INSTALL.md,
 * "Connection limits"); absent keys keep the defaults. */
static gboolean
dv_daemon_load_server_limits(const char *config, DvServerOptions *so, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    struct {
        const char *key;
        guint *target;
    } keys[] = {
        { "max_connections", &so->max_connections },
        { "header_timeout", &so->header_timeout },
        { "idle_timeout", &so->idle_timeout },
    };

    if (config == NULL)
        return TRUE;
    if (!g_key_file_load_from_file(kf, config, G_KEY_FILE_NONE, error)) {
        dv_error_convert(error);
        return FALSE;
    }
    for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
        g_autofree char *v = g_key_file_get_string(kf, "server", keys[i].key, NULL);
        guint64 n = 0;
        if (v == NULL)
            continue;
        if (!g_ascii_string_to_unsigned(g_strstrip(v), 10, 1, G_MAXUINT32, &n, NULL)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, keys[i].key,
                               "%s: must be a positive whole number", keys[i].key);
            return FALSE;
        }
        *keys[i].target = (guint)n;
    }
    return TRUE;
}

/* The periodic catalog reconcile runs in its own thread (it talks to
 * every host) and never twice at once; it only reports. */
static gint dv_daemon_reconcile_busy;

static gpointer
dv_daemon_reconcile_thread(gpointer data)
{
    DvEngine *engine = data;
    g_autoptr(GError) error = NULL;
    guint checked = 0, not_ok = 0;

    if (!dv_engine_catalog_reconcile_all(engine, &checked, &not_ok, &error))
        g_warning("catalog reconcile: %s", error->message);
    else if (not_ok > 0)
        g_message("catalog reconcile: %u of %u catalogs differ from their hosts (see last_reconcile)", not_ok,
                  checked);
    g_atomic_int_set(&dv_daemon_reconcile_busy, 0);
    return NULL;
}

static gboolean
dv_daemon_reconcile(gpointer data)
{
    if (g_atomic_int_compare_and_exchange(&dv_daemon_reconcile_busy, 0, 1))
        g_thread_unref(g_thread_new("dv-reconcile", dv_daemon_reconcile_thread, data));
    return G_SOURCE_CONTINUE;
}

static gboolean
dv_daemon_housekeeping(gpointer data)
{
    DvEngine *engine = data;
    g_autoptr(GError) error = NULL;
    guint jobs = 0, sessions = 0;

    if (!dv_engine_housekeeping(engine, DV_ENGINE_JOB_RETENTION_US, &jobs, &sessions, &error))
        g_warning("housekeeping: %s", error->message);
    else if (jobs > 0 || sessions > 0)
        g_info("housekeeping: removed %u finished jobs and %u expired sessions", jobs, sessions);
    return G_SOURCE_CONTINUE;
}

static gboolean
dv_daemon_heartbeat(gpointer data)
{
    /* A lost database fails every heartbeat the same way: say it once, and
     * again only when the reason changes or the heartbeat works again. */
    static char *last_failure = NULL;
    g_autoptr(GError) error = NULL;
    if (!dv_engine_heartbeat(data, &error)) {
        if (g_strcmp0(last_failure, error->message) != 0) {
            g_warning("heartbeat: %s (said once until it changes)", error->message);
            g_free(last_failure);
            last_failure = g_strdup(error->message);
        }
    } else if (last_failure != NULL) {
        g_message("heartbeat: working again");
        g_clear_pointer(&last_failure, g_free);
    }
    return G_SOURCE_CONTINUE;
}

/* Tests and bench/inventory-scale --metrics (DV_DEBUG_JOBS=1 only):
 * SIGUSR2 turns the metrics hooks off and on. */
static gboolean
dv_daemon_toggle_metrics(gpointer data)
{
    dv_metrics_set_enabled(!dv_metrics_get_enabled());
    g_message("metrics %s (SIGUSR2)", dv_metrics_get_enabled() ? "on" : "off");
    return G_SOURCE_CONTINUE;
}

static gboolean
dv_daemon_quit(gpointer data)
{
    g_main_loop_quit(data);
    /* The source stays until exit: were it removed, GLib would give the
     * signal back its default action, and a second SIGTERM during the
     * stop would kill the server half-way. */
    return G_SOURCE_CONTINUE;
}

static char *
dv_daemon_host_name(void)
{
    g_autofree char *name = g_strdup(g_get_host_name());
    char *dot = strchr(name, '.');
    if (dot != NULL)
        *dot = '\0';
    for (char *p = name; *p != '\0'; p++)
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_')
            *p = '-';
    if (!g_ascii_isalnum(name[0]))
        return g_strdup("localhost");
    if (strlen(name) > DV_NAME_MAX)
        name[DV_NAME_MAX] = '\0';
    return g_steal_pointer(&name);
}

static void
dv_daemon_add_local_host(DvEngine *engine, const char *uri)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) existing = dv_store_find(dv_engine_get_store(engine), &dv_table_hosts,
                                                   "uri", uri, &error);
    g_autoptr(JsonObject) body = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autofree char *name = NULL;

    if (existing != NULL) {
        g_print("Host %s (%s) is registered.\n", dv_json_get_string(existing, "name", ""), uri);
        return;
    }
    g_clear_error(&error);
    name = dv_daemon_host_name();
    body = json_object_new();
    json_object_set_string_member(body, "name", name);
    json_object_set_string_member(body, "uri", uri);
    job = dv_engine_create(engine, DV_KIND_HOST, body, DV_ACTOR_NAMED("droverd"), &error);
    if (job == NULL) {
        g_printerr("droverd: cannot register this machine's hypervisor %s: %s\n", uri,
                   error->message);
        return;
    }
    g_print("Registering this machine's hypervisor %s as host '%s' (job %s).\n", uri, name,
            dv_json_get_string(job, "id", ""));
}

/* --dump-ops: the operation table, every registered job kind and every
 * privilege, for tools/check-ops and the authorization matrix test. */
static int
dv_daemon_dump_ops(DvEngine *engine)
{
    g_autoptr(JsonObject) out = json_object_new();
    g_autoptr(GPtrArray) kinds = dv_job_manager_dup_kinds(dv_engine_get_jobs(engine));
    JsonArray *arr = json_array_new();
    g_autofree char *text = NULL;

    for (guint i = 0; i < kinds->len; i++)
        json_array_add_string_element(arr, kinds->pdata[i]);
    json_object_set_array_member(out, "ops", dv_core_ops_to_json(engine));
    json_object_set_array_member(out, "job_kinds", arr);
    arr = json_array_new();
    for (const char *const *p = dv_authz_privileges(); *p != NULL; p++)
        json_array_add_string_element(arr, *p);
    json_object_set_array_member(out, "privileges", arr);
    text = dv_json_object_to_string(out, TRUE);
    g_print("%s\n", text);
    return 0;
}

/* --dump-openapi: the OpenAPI document GET /api/v1/openapi.json serves,
 * as committed in docs/openapi.json (tools/check-openapi regenerates it). */
static int
dv_daemon_dump_openapi(DvEngine *engine)
{
    g_autoptr(JsonObject) doc = dv_core_openapi_to_json(engine);
    g_autofree char *text = dv_json_object_to_string(doc, TRUE);
    /* Not g_print(): it converts to the locale's charset, and the C
     * locale of a build turns the UTF-8 of descriptions into '?'. */
    fputs(text, stdout);
    fputs("\n", stdout);
    return fflush(stdout) == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
    g_auto(DvDaemonOptions) o = { 0 };
    g_autoptr(GOptionContext) ctx = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(DvEngine) engine = NULL;
    g_autoptr(DvServer) server = NULL;
    g_autoptr(DvMetricsListener) metrics = NULL;
    g_autoptr(GMainLoop) loop = NULL;
    g_autoptr(GMainContext) context = NULL;
    g_autoptr(GSource) sigint = NULL;
    g_autoptr(GSource) sigterm = NULL;
    g_autofree char *pw_file = NULL;
    DvEngineOptions eo = { 0 };
    DvServerOptions so = { 0 };
    guint resumed = 0, failed = 0;
    GOptionEntry entries[] = {
        { "config", 'c', 0, G_OPTION_ARG_FILENAME, &o.config, "Config file ([server] keys: state_dir, listen, database, tls_cert, tls_key, self_signed_tls, log_level, log_format, metrics_listen, web_root, catalog_reconcile_interval, job_lease, max_connections, header_timeout, idle_timeout; [hosts] simulated, allow_uri_parameters, allow_unsafe_migration; [library] root)", "FILE" },
        { "state-dir", 's', 0, G_OPTION_ARG_FILENAME, &o.state_dir, "State directory (default /var/lib/drover)", "DIR" },
        { "listen", 'l', 0, G_OPTION_ARG_STRING, &o.listen, "Listen address (default " DV_DEFAULT_LISTEN ")", "ADDR:PORT" },
        { "database", 'd', 0, G_OPTION_ARG_STRING, &o.database, "SQLite file or postgresql:// URI (default <state-dir>/drover.db)", "DB" },
        { "tls-cert", 0, 0, G_OPTION_ARG_FILENAME, &o.tls_cert, "TLS certificate (PEM)", "FILE" },
        { "tls-key", 0, 0, G_OPTION_ARG_FILENAME, &o.tls_key, "TLS private key (PEM)", "FILE" },
        { "self-signed-tls", 0, 0, G_OPTION_ARG_NONE, &o.self_signed, "Serve TLS with a self-signed certificate made in the state directory", NULL },
        { "add-local-host", 0, 0, G_OPTION_ARG_STRING, &o.add_local_host, "Register this libvirt URI (e.g. qemu:///system) as a host named after this machine, if not yet registered", "URI" },
        { "recovery-key", 0, 0, G_OPTION_ARG_FILENAME, &o.recovery_key, "Open the data keys with this recovery key file (made by drover-setup keys recovery create)", "FILE" },
        { "machine-id-file", 0, 0, G_OPTION_ARG_FILENAME, &o.machine_id_file, "Machine identity the host key file is bound to (default /etc/machine-id)", "FILE" },
        { "catalog-reconcile-interval", 0, 0, G_OPTION_ARG_INT, &o.reconcile_interval, "Report every catalog's orphans every MIN minutes (default 60, 0: off)", "MIN" },
        { "job-lease", 0, 0, G_OPTION_ARG_INT, &o.job_lease, "Hold each job's lease in the database for SEC seconds, renewed every quarter of it; another server takes over a job whose lease expired (default 20, 2-600; [server] job_lease)", "SEC" },
        { "allow-simulated-hosts", 0, 0, G_OPTION_ARG_NONE, &o.allow_simulated, "Accept libvirt's simulated hosts (test:///FILE) for tests and demos ([hosts] simulated)", NULL },
        { "allow-uri-parameter", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.allow_uri_parameters, "Allow this libvirt URI parameter in host URIs, e.g. keyfile (repeatable; [hosts] allow_uri_parameters)", "NAME" },
        { "library-root", 0, 0, G_OPTION_ARG_FILENAME, &o.library_root, "Directory under which library shares may be created on request (default <state-dir>/library; [library] root)", "DIR" },
        { "verbose", 'v', 0, G_OPTION_ARG_NONE, &o.verbose, "Log debug messages (--log-level debug)", NULL },
        { "log-level", 0, 0, G_OPTION_ARG_STRING, &o.log_level, "Log messages of this level and above: error, warning, info (default), debug ([server] log_level)", "LEVEL" },
        { "log-format", 0, 0, G_OPTION_ARG_STRING, &o.log_format, "Log to stderr as text or json (default: the journal under systemd, else text; [server] log_format)", "FORMAT" },
        { "metrics-listen", 0, 0, G_OPTION_ARG_STRING, &o.metrics_listen, "Also serve GET /metrics here, plain HTTP without authentication, for a scraper on a trusted network ([server] metrics_listen)", "ADDR:PORT" },
        { "web-root", 0, 0, G_OPTION_ARG_FILENAME, &o.web_root, "Serve the web console's files from DIR at / (default: the build tree's web/ when run from it, else the installed one; none: off; [server] web_root)", "DIR" },
        { "version", 0, 0, G_OPTION_ARG_NONE, &o.version, "Print the version and exit", NULL },
        { "dump-ops", 0, 0, G_OPTION_ARG_NONE, &o.dump_ops, "Print the operation table, the job kinds and the privileges as JSON and exit (tools/check-ops)", NULL },
        { "dump-openapi", 0, 0, G_OPTION_ARG_NONE, &o.dump_openapi, "Print the API's OpenAPI 3.1 document (docs/openapi.json) and exit", NULL },
        { NULL },
    };

    o.reconcile_interval = -1;
    o.job_lease = -1;
    /* A peer that closed its socket (libvirtd dropping a connection under
     * load, a client going away) must be a write error, not a SIGPIPE that
     * kills the server: a test process died of one at libvirt teardown. */
    signal(SIGPIPE, SIG_IGN);
    dv_daemon_harden();
    dv_daemon_raise_nofile();
    dv_secret_init_library();
    ctx = g_option_context_new("- the Drover management server");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        g_printerr("droverd: %s\n", error->message);
        return DV_EXIT_USAGE;
    }
    if (o.version) {
        g_print("droverd %s\n", DV_VERSION);
        return 0;
    }
    if (!dv_daemon_load_config(&o, &error)) {
        g_printerr("droverd: %s\n", error->message);
        return DV_EXIT_USAGE;
    }
    if (!dv_log_setup(o.log_level != NULL ? o.log_level : o.verbose ? "debug" : NULL, o.log_format,
                      "log_level", "log_format", &error)) {
        g_printerr("droverd: %s\n", error->message);
        return DV_EXIT_USAGE;
    }
    if (o.reconcile_interval < -1 || o.reconcile_interval > 10080) {
        g_printerr("droverd: --catalog-reconcile-interval must be 0 (off) to 10080 minutes\n");
        return DV_EXIT_USAGE;
    }
    if (o.job_lease != -1 &&
        (o.job_lease < DV_ENGINE_JOB_LEASE_MIN_S || o.job_lease > DV_ENGINE_JOB_LEASE_MAX_S)) {
        g_printerr("droverd: --job-lease must be %d to %d seconds\n", DV_ENGINE_JOB_LEASE_MIN_S,
                   DV_ENGINE_JOB_LEASE_MAX_S);
        return DV_EXIT_USAGE;
    }
    if (o.state_dir == NULL)
        o.state_dir = g_strdup("/var/lib/drover");
    if (o.listen == NULL)
        o.listen = g_strdup(DV_DEFAULT_LISTEN);
    if ((o.tls_cert == NULL) != (o.tls_key == NULL) && !o.self_signed) {
        g_printerr("droverd: tls_cert and tls_key are given together\n");
        return DV_EXIT_USAGE;
    }

    /* SIGTERM and SIGINT are caught from here on, before the engine
     * starts (recovery, host watches), so a stop asked for while it
     * starts is a clean stop once the loop runs, never the default
     * action.  The server's private context (see below) holds them. */
    context = g_main_context_new();
    loop = g_main_loop_new(context, FALSE);
    sigint = g_unix_signal_source_new(SIGINT);
    sigterm = g_unix_signal_source_new(SIGTERM);
    g_source_set_callback(sigint, dv_daemon_quit, loop, NULL);
    g_source_set_callback(sigterm, dv_daemon_quit, loop, NULL);
    g_source_attach(sigint, context);
    g_source_attach(sigterm, context);

    eo.state_dir = o.state_dir;
    eo.database = o.database;
    eo.machine_id_path = o.machine_id_file;
    eo.serve = !o.dump_ops && !o.dump_openapi;
    eo.recovery_key_path = o.recovery_key;
    eo.allow_simulated_hosts = o.allow_simulated;
    eo.allow_uri_parameters = (const char *const *)o.allow_uri_parameters;
    eo.allow_unsafe_migration = o.allow_unsafe_migration;
    eo.library_root = o.library_root;
    eo.job_lease_ms = o.job_lease > 0 ? (guint)o.job_lease * 1000 : 0;
    engine = dv_engine_new(&eo, &error);
    if (engine == NULL) {
        g_printerr("droverd: cannot start: %s\n", error->message);
        return dv_error_to_exit_code(error) == DV_EXIT_OK ? 1 : DV_EXIT_FAILURE;
    }
    if (o.dump_ops)
        return dv_daemon_dump_ops(engine);
    if (o.dump_openapi)
        return dv_daemon_dump_openapi(engine);
    /* After the engine: the certificate it makes in the state directory
     * would otherwise be taken for a trace of an earlier installation. */
    if (o.self_signed && o.tls_cert == NULL && !dv_daemon_self_signed(&o, &error)) {
        g_printerr("droverd: %s\n", error->message);
        return DV_EXIT_FAILURE;
    }
    if ((o.tls_cert == NULL) != (o.tls_key == NULL)) {
        g_printerr("droverd: tls_cert and tls_key are given together\n");
        return DV_EXIT_USAGE;
    }
    {
        gboolean created = FALSE;
        if (!dv_auth_ensure_admin(dv_engine_get_auth(engine), dv_engine_get_state_dir(engine),
                                  &created, &error)) {
            g_printerr("droverd: cannot create the first user: %s\n", error->message);
            return DV_EXIT_FAILURE;
        }
        if (created)
            pw_file = g_build_filename(dv_engine_get_state_dir(engine), "initial-admin-password", NULL);
    }
    /* The server runs on a private main context: libvirt's event loop
     * thread iterates GLib's global default context, and the server's
     * callbacks must never run there. */
    g_main_context_push_thread_default(context);
    so.listen = o.listen;
    so.tls_cert_file = o.tls_cert;
    so.tls_key_file = o.tls_key;
    /* Given: it must be there.  The default is used when present; a
     * build with -Dweb=false has none (docs/WEB.md). */
    if (o.web_root == NULL) {
        g_autofree char *def = dv_web_default_root();
        if (g_file_test(def, G_FILE_TEST_IS_DIR))
            o.web_root = g_steal_pointer(&def);
        else
            g_message("no web console at %s: / answers 404", def);
    }
    if (g_strcmp0(o.web_root, "none") != 0)
        so.web_root = o.web_root;
    if (!dv_daemon_load_server_limits(o.config, &so, &error)) {
        g_printerr("droverd: config %s: %s\n", o.config, error->message);
        return DV_EXIT_USAGE;
    }
    server = dv_server_new(engine, &so, &error);
    if (server == NULL) {
        g_printerr("droverd: %s\n", error->message);
        return error->domain == DV_ERROR && error->code == DV_ERROR_INVALID_ARGUMENT
                   ? DV_EXIT_USAGE
                   : DV_EXIT_FAILURE;
    }
    if (o.metrics_listen != NULL && (metrics = dv_metrics_listener_new(o.metrics_listen, &error)) == NULL) {
        g_printerr("droverd: %s\n", error->message);
        return error->domain == DV_ERROR && error->code == DV_ERROR_INVALID_ARGUMENT ? DV_EXIT_USAGE
                                                                                      : DV_EXIT_FAILURE;
    }
    dv_engine_get_recovery(engine, &resumed, &failed);

    g_print("droverd %s serving %s/api/v1 (state in %s)\n", DV_VERSION, dv_server_get_url(server),
            dv_engine_get_state_dir(engine));
    if (metrics != NULL)
        g_print("Metrics without authentication at %s\n", dv_metrics_listener_get_url(metrics));
    /* The same in the log (the journal under systemd). */
    g_message("droverd %s started: serving %s/api/v1, state in %s, %u interrupted jobs resumed, %u failed",
              DV_VERSION, dv_server_get_url(server), dv_engine_get_state_dir(engine), resumed, failed);
    if (resumed > 0 || failed > 0)
        g_print("Jobs interrupted by the last stop: %u resumed, %u failed.\n", resumed, failed);
    if (pw_file != NULL)
        g_print("First start: user 'admin', password in %s (readable by this account only).\n"
                "Log in with:  drover --server %s login --user admin --password-file %s\n",
                pw_file, dv_server_get_url(server), pw_file);
    if (o.add_local_host != NULL)
        dv_daemon_add_local_host(engine, o.add_local_host);

    dv_daemon_housekeeping(engine);
    {
        g_autoptr(GSource) hk = g_timeout_source_new_seconds(3600);
        g_autoptr(GSource) hb = g_timeout_source_new_seconds(20);
        g_source_set_callback(hk, dv_daemon_housekeeping, engine, NULL);
        g_source_set_callback(hb, dv_daemon_heartbeat, engine, NULL);
        g_source_attach(hb, context);
        g_source_attach(hk, context);
        if (o.reconcile_interval != 0) {
            guint seconds = 60 * (guint)(o.reconcile_interval > 0 ? o.reconcile_interval : 60);
            g_autoptr(GSource) rc = NULL;
            /* Tests (DV_DEBUG_JOBS=1) may count the interval in seconds. */
            if (dv_engine_debug_enabled() && g_getenv("DV_DEBUG_RECONCILE_SECONDS") != NULL)
                seconds = (guint)CLAMP(g_ascii_strtoull(g_getenv("DV_DEBUG_RECONCILE_SECONDS"), NULL, 10), 1, 3600);
            rc = g_timeout_source_new_seconds(seconds);
            g_source_set_callback(rc, dv_daemon_reconcile, engine, NULL);
            g_source_attach(rc, context);
        }
    }
    if (dv_engine_debug_enabled()) {
        g_autoptr(GSource) usr2 = g_unix_signal_source_new(SIGUSR2);
        g_source_set_callback(usr2, dv_daemon_toggle_metrics, NULL, NULL);
        g_source_attach(usr2, context);
    }
    g_main_loop_run(loop);

    g_print("droverd: stopping; jobs still running after 10 s resume at the next start\n");
    g_message("droverd stopping: %u jobs running", dv_job_manager_get_n_active(dv_engine_get_jobs(engine)));
    g_clear_pointer(&metrics, dv_metrics_listener_free);
    /* Answer what is already queued for the main context (finished
     * requests, job events) before the server goes away. */
    while (g_main_context_iteration(context, FALSE))
        ;
    g_clear_pointer(&server, dv_server_free);
    dv_job_manager_shutdown(dv_engine_get_jobs(engine), 10000);
    /* A periodic reconcile still talking to hosts uses the engine. */
    for (guint i = 0; i < 300 && g_atomic_int_get(&dv_daemon_reconcile_busy); i++)
        g_usleep(100 * 1000);
    if (dv_job_manager_get_n_active(dv_engine_get_jobs(engine)) > 0 ||
        g_atomic_int_get(&dv_daemon_reconcile_busy)) {
        dv_engine_unregister(engine);
        /* Their rows stay "running"; the next start resumes or fails them. */
        g_message("droverd stopped with jobs still running: they resume at the next start");
        fflush(stdout);
        _exit(0);
    }
    g_message("droverd stopped");
    return 0;
}
