#define G_LOG_DOMAIN "DroverSetup"

/* drover-setup: installation tasks that need no running server.  It links
 * the engine directly.  This first version inspects and migrates the
 * database schema; install, upgrade, backup and key management follow. */

#include "dv-config.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-engine-directory.h"
#include "dv-keys-directory.h"
#include "dv-keys.h"
#include "dv-setup-backup.h"
#include "dv-setup-upgrade.h"
#include "dv-store.h"
/* install / uninstall */
#include "dv-setup-install.h"

#include <stdio.h>
#include <string.h>

static char *opt_state_dir;
static char *opt_database;
static char *opt_output;
static char *opt_machine_id;
static char *opt_recovery_key;
static char *opt_out;
static int opt_batch = 500;
static char *opt_ldap_uri;
static char *opt_container;
static char *opt_admin_dn;
static char *opt_admin_pw;
static char *opt_config_admin_uri;
static char *opt_service_dn;
static char *opt_service_pw;
static char *opt_service_cert;
static char *opt_service_key;
static gboolean opt_sasl_external;
static char *opt_group_dn;
static char **opt_non_members;
static char *opt_ca_file;
static char *opt_in;
static gboolean opt_force;
static gboolean opt_plan;
static gboolean opt_report;
static char *opt_service_account;
static gboolean opt_accept_unreadable;
static gboolean opt_reset_host_limits;
static char *opt_library_share;
static char *opt_backup_dir;

static const GOptionEntry entries[] = {
    { "state-dir", 's', 0, G_OPTION_ARG_FILENAME, &opt_state_dir, "State directory (default /var/lib/drover)", "DIR" },
    { "database", 'd', 0, G_OPTION_ARG_STRING, &opt_database, "SQLite file or postgresql:// URI (default <state-dir>/drover.db)", "DB" },
    { "output", 'o', 0, G_OPTION_ARG_STRING, &opt_output, "table or json", "FORMAT" },
    { "machine-id-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_machine_id, "Machine identity of the host key file (default /etc/machine-id)", "FILE" },
    { "recovery-key", 0, 0, G_OPTION_ARG_FILENAME, &opt_recovery_key, "Open the keys with this recovery key file", "FILE" },
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &opt_out, "Where keys recovery create writes the private key (once), or backup the archive", "FILE" },
    { "in", 0, 0, G_OPTION_ARG_FILENAME, &opt_in, "The archive restore reads", "FILE" },
    { "force", 0, 0, G_OPTION_ARG_NONE, &opt_force, "restore: over another installation or key set; backup: without key files", NULL },
    { "batch", 0, 0, G_OPTION_ARG_INT, &opt_batch, "Secrets re-encrypted per batch by keys rekey (1-1000)", "N" },
    { "ldap-uri", 0, 0, G_OPTION_ARG_STRING, &opt_ldap_uri, "Directory for the key protector (ldap:// with StartTLS, ldaps:// or ldapi://)", "URI" },
    { "container", 0, 0, G_OPTION_ARG_STRING, &opt_container, "Container DN that holds the wrapped keys", "DN" },
    { "admin-dn", 0, 0, G_OPTION_ARG_STRING, &opt_admin_dn, "Directory administrator who creates the container", "DN" },
    { "admin-password-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_admin_pw, "Its password (file, mode 0600)", "FILE" },
    { "config-admin-uri", 0, 0, G_OPTION_ARG_STRING, &opt_config_admin_uri, "ldapi:// URI where root may write cn=config (OpenLDAP ACL)", "URI" },
    { "service-dn", 0, 0, G_OPTION_ARG_STRING, &opt_service_dn, "Identity droverd binds as", "DN" },
    { "service-password-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_service_pw, "Its password (file, mode 0600)", "FILE" },
    { "service-cert", 0, 0, G_OPTION_ARG_FILENAME, &opt_service_cert, "TLS client certificate for SASL EXTERNAL", "FILE" },
    { "service-key", 0, 0, G_OPTION_ARG_FILENAME, &opt_service_key, "Its private key", "FILE" },
    { "sasl-external", 0, 0, G_OPTION_ARG_NONE, &opt_sasl_external, "Bind with SASL EXTERNAL (ldapi or client certificate)", NULL },
    { "group-dn", 0, 0, G_OPTION_ARG_STRING, &opt_group_dn, "Group whose members (other servers) may read the keys", "DN" },
    { "non-member", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_non_members, "An identity that must NOT read the keys, to prove the ACL (repeatable)", "DN=PASSWORD_FILE" },
    { "ca-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_ca_file, "CA certificate(s) the directory's certificate chains to", "FILE" },
    { "plan", 0, 0, G_OPTION_ARG_NONE, &opt_plan, "upgrade: print what the upgrade would do and change nothing", NULL },
    { "report", 0, 0, G_OPTION_ARG_NONE, &opt_report, "upgrade: print the last post-upgrade report", NULL },
    { "service-account", 0, 0, G_OPTION_ARG_STRING, &opt_service_account, "upgrade: local account droverd runs as (default: [server] service_account of the config, else the caller)", "USER" },
    { "accept-unreadable-secrets", 0, 0, G_OPTION_ARG_NONE, &opt_accept_unreadable, "upgrade: go on when secrets would become unreadable (they are kept and reported)", NULL },
    { "reset-host-limits", 0, 0, G_OPTION_ARG_NONE, &opt_reset_host_limits, "upgrade: raise per-host limits below the defaults to the defaults", NULL },
    { "library-share", 0, 0, G_OPTION_ARG_STRING, &opt_library_share, "upgrade: on a library share clash, use-default, keep or NAME=PATH", "CHOICE" },
    { "backup-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_backup_dir, "upgrade: where the backup before migrating goes (default <state-dir>/backups)", "DIR" },
    { NULL },
};

static char *
dv_setup_location(void)
{
    if (opt_database != NULL)
        return g_strdup(opt_database);
    return g_build_filename(opt_state_dir != NULL ? opt_state_dir : "/var/lib/drover", "drover.db",
                            NULL);
}

static int
dv_setup_fail(const GError *error)
{
    g_printerr("drover-setup: %s\n", error->message);
    return dv_error_to_exit_code(error);
}

/* "schema status": what this build knows, what the database holds, and
 * whether droverd would start on it. */
static int
dv_setup_schema_status(void)
{
    g_autofree char *location = dv_setup_location();
    g_autoptr(GError) error = NULL;
    g_autoptr(GError) check = NULL;
    g_autoptr(DvStore) store = NULL;
    g_autoptr(JsonArray) history = NULL;
    guint version;

    if (opt_database == NULL && !g_file_test(location, G_FILE_TEST_EXISTS)) {
        g_set_error(&error, DV_ERROR, DV_ERROR_NOT_FOUND, "no database at %s", location);
        return dv_setup_fail(error);
    }
    store = dv_store_open(location, 0, &check);
    if (store == NULL) {
        /* Refused (newer, dirty, altered): say why, that is the status. */
        if (g_strcmp0(opt_output, "json") == 0) {
            g_autoptr(JsonObject) o = json_object_new();
            g_autofree char *text = NULL;
            json_object_set_int_member(o, "known_version", dv_store_get_known_version());
            json_object_set_boolean_member(o, "usable", FALSE);
            json_object_set_string_member(o, "problem", check->message);
            text = dv_json_object_to_string(o, TRUE);
            g_print("%s\n", text);
        }
        return dv_setup_fail(check);
    }
    version = dv_store_get_schema_version(store, &error);
    if (error != NULL)
        return dv_setup_fail(error);
    history = dv_store_get_schema_history(store, &error);
    if (history == NULL)
        return dv_setup_fail(error);
    if (g_strcmp0(opt_output, "json") == 0) {
        g_autoptr(JsonObject) o = json_object_new();
        g_autofree char *text = NULL;
        json_object_set_int_member(o, "known_version", dv_store_get_known_version());
        json_object_set_int_member(o, "schema_version", version);
        json_object_set_boolean_member(o, "usable", TRUE);
        json_object_set_boolean_member(o, "pending", version < dv_store_get_known_version());
        json_object_set_array_member(o, "history", json_array_ref(history));
        text = dv_json_object_to_string(o, TRUE);
        g_print("%s\n", text);
        return 0;
    }
    g_print("database:        %s\n", location);
    g_print("schema version:  %u (this Drover knows up to %u)\n", version, dv_store_get_known_version());
    for (guint i = 0; i < json_array_get_length(history); i++) {
        JsonObject *h = json_array_get_object_element(history, i);
        g_print("  %04" G_GINT64_FORMAT "  %-28s %s  %s\n", dv_json_get_int(h, "version", 0),
                dv_json_get_string(h, "name", ""), dv_json_get_string(h, "checksum", ""),
                dv_json_get_bool(h, "success", FALSE) ? "applied" : "DIRTY");
    }
    if (version < dv_store_get_known_version())
        g_print("pending migrations: run 'drover-setup schema migrate'\n");
    return 0;
}

static int
dv_setup_schema_migrate(void)
{
    g_autofree char *location = dv_setup_location();
    g_autoptr(GError) error = NULL;
    g_autoptr(DvStoreLock) lock = NULL;
    g_autoptr(DvStore) store = NULL;

    /* Migrating writes: not under a running droverd. */
    if (g_file_test(location, G_FILE_TEST_EXISTS)) {
        lock = dv_store_lock_acquire(location, "drover-setup schema migrate", &error);
        if (lock == NULL)
            return dv_setup_fail(error);
    }
    store = dv_store_open(location, DV_STORE_OPEN_MIGRATE, &error);
    if (store == NULL)
        return dv_setup_fail(error);
    g_print("schema at version %u\n", dv_store_get_schema_version(store, NULL));
    return 0;
}

static char *
dv_setup_state_dir(void)
{
    return g_strdup(opt_state_dir != NULL ? opt_state_dir : "/var/lib/drover");
}

typedef DvKeyProtector DvKeyProtectorHolder;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvKeyProtectorHolder, dv_key_protector_free)

/* The keyring as droverd would open it here, with the directory protector
 * when this installation uses one (@ret_directory must outlive it). */
static DvKeyring *
dv_setup_keyring(DvStore *store, DvKeyProtector **ret_directory, GError **error)
{
    g_autofree char *state_dir = dv_setup_state_dir();
    g_autofree char *conf = dv_directory_settings_path(state_dir);
    DvKeyringOptions ko = {
        .state_dir = state_dir,
        .machine_id_path = opt_machine_id,
        .recovery_key_path = opt_recovery_key,
    };
    if (g_file_test(conf, G_FILE_TEST_EXISTS)) {
        g_autoptr(DvDirectorySettings) ds = dv_directory_settings_load(conf, error);
        g_autoptr(JsonObject) inst = NULL;
        if (ds == NULL)
            return NULL;
        inst = dv_store_find(store, &dv_table_settings, "name", "installation_id", error);
        if (inst == NULL)
            return NULL;
        *ret_directory = dv_directory_settings_protector(ds, dv_json_get_string(inst, "value", ""), error);
        if (*ret_directory == NULL)
            return NULL;
        ko.protectors = ret_directory;
        ko.n_protectors = 1;
    }
    return dv_keyring_open(store, &ko, error);
}

static void
dv_setup_print_check(JsonArray *versions)
{
    g_print("%-6s %-8s %-8s %-5s %-10s %8s  %s\n", "KEY", "VERSION", "STATE", "OPEN", "VIA", "SECRETS", "REASON");
    for (guint i = 0; i < json_array_get_length(versions); i++) {
        JsonObject *v = json_array_get_object_element(versions, i);
        g_print("%-6s %-8" G_GINT64_FORMAT " %-8s %-5s %-10s %8" G_GINT64_FORMAT "  %s%s\n",
                dv_json_get_string(v, "key_id", "?"), dv_json_get_int(v, "version", 0),
                dv_json_get_string(v, "state", "?"), dv_json_get_bool(v, "open", FALSE) ? "yes" : "NO",
                dv_json_get_string(v, "via", "-"), dv_json_get_int(v, "secrets", 0),
                dv_json_get_bool(v, "current", FALSE) ? "(current) " : "",
                dv_json_get_string(v, "reason", ""));
    }
}

/* keys directory init: the container, its ACL and the proof, then every
 * open key wrapped into it and the local settings written. */
static int
dv_setup_keys_directory_init(DvStore *store, DvKeyring *keyring)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *state_dir = dv_setup_state_dir();
    g_autofree char *conf_path = dv_directory_settings_path(state_dir);
    g_autoptr(DvDirectorySettings) settings = NULL;
    g_autoptr(DvDirectory) dir = NULL;
    g_autoptr(JsonObject) installation = NULL;
    g_autoptr(JsonObject) config = NULL;
    DvKeyProtector *protector;
    DvDirectoryOptions o = { 0 };
    const DvSetupDirectoryInit d = {
        .ldap_uri = opt_ldap_uri,
        .ca_file = opt_ca_file,
        .admin_dn = opt_admin_dn,
        .admin_password_file = opt_admin_pw,
        .config_admin_uri = opt_config_admin_uri,
        .service_dn = opt_service_dn,
        .group_dn = opt_group_dn,
        .non_members = opt_non_members,
    };
    guint n_non_members = 0;

    if (opt_ldap_uri == NULL || opt_container == NULL || opt_admin_dn == NULL || opt_admin_pw == NULL ||
        (opt_service_pw == NULL && !opt_sasl_external) || (opt_service_dn == NULL && !opt_sasl_external)) {
        g_printerr("drover-setup: keys directory init needs --ldap-uri, --container, --admin-dn, "
                   "--admin-password-file and the service identity (--service-dn with "
                   "--service-password-file, or --sasl-external)\n");
        return DV_EXIT_USAGE;
    }
    o.conn.uri = opt_ldap_uri;
    o.conn.bind_dn = opt_sasl_external ? NULL : opt_service_dn;
    o.conn.password_file = opt_sasl_external ? NULL : opt_service_pw;
    o.conn.sasl_external = opt_sasl_external;
    o.conn.ca_file = opt_ca_file;
    o.conn.cert_file = opt_service_cert;
    o.conn.key_file = opt_service_key;
    o.container_dn = opt_container;
    dir = dv_directory_new(&o, &error);
    if (dir == NULL)
        return dv_setup_fail(error);

    for (guint i = 0; opt_non_members != NULL && opt_non_members[i] != NULL; i++) {
        if (strchr(opt_non_members[i], '=') == NULL) {
            g_printerr("drover-setup: --non-member takes DN=PASSWORD_FILE\n");
            return DV_EXIT_USAGE;
        }
    }
    if (!dv_setup_directory_init(dir, &d, &n_non_members, &error))
        return dv_setup_fail(error);
    g_print("container %s made; its ACL admits only the service identity%s; proved: anonymous and "
            "%u non-member identities cannot read it\n",
            opt_container, opt_group_dn != NULL ? " and its group" : "", n_non_members);

    installation = dv_store_find(store, &dv_table_settings, "name", "installation_id", &error);
    if (installation == NULL)
        return dv_setup_fail(error);
    settings = dv_directory_settings_new(opt_ldap_uri, opt_container,
                                         opt_sasl_external ? NULL : opt_service_dn,
                                         opt_sasl_external ? NULL : opt_service_pw, opt_sasl_external,
                                         opt_ca_file, opt_service_cert, opt_service_key);
    protector = dv_directory_settings_protector(settings, dv_json_get_string(installation, "value", ""),
                                                &error);
    if (protector == NULL)
        return dv_setup_fail(error);
    config = dv_directory_settings_to_config(settings);
    if (!dv_keyring_add_protector(keyring, protector, config, &error)) {
        dv_key_protector_free(protector);
        return dv_setup_fail(error);
    }
    if (!dv_directory_settings_save(settings, conf_path, &error)) {
        dv_key_protector_free(protector);
        return dv_setup_fail(error);
    }
    dv_key_protector_free(protector);
    g_print("every key open here is now also in the directory; settings in %s\n", conf_path);
    return 0;
}

/* keys check|rotate|rekey|retire|recovery create|protect-host */
static int
dv_setup_keys(int argc, char **argv)
{
    g_autofree char *location = dv_setup_location();
    g_autoptr(GError) error = NULL;
    g_autoptr(DvStore) store = NULL;
    /* Declared first, freed last: the keyring borrows it. */
    g_autoptr(DvKeyProtectorHolder) directory = NULL;
    g_autoptr(DvKeyring) keyring = NULL;
    const char *verb = argc > 2 ? argv[2] : "";

    store = dv_store_open(location, DV_STORE_OPEN_CHECK_ONLY, &error);
    if (store == NULL)
        return dv_setup_fail(error);
    keyring = dv_setup_keyring(store, &directory, &error);
    if (keyring == NULL)
        return dv_setup_fail(error);
    if (g_strcmp0(verb, "directory") == 0 && argc == 4 && g_strcmp0(argv[3], "init") == 0)
        return dv_setup_keys_directory_init(store, keyring);

    if (g_strcmp0(verb, "check") == 0 && argc == 3) {
        g_autoptr(JsonArray) versions = dv_keyring_check(keyring, &error);
        gboolean all_open = TRUE;
        if (versions == NULL)
            return dv_setup_fail(error);
        for (guint i = 0; i < json_array_get_length(versions); i++) {
            JsonObject *v = json_array_get_object_element(versions, i);
            if (!dv_json_get_bool(v, "open", FALSE) && dv_json_get_int(v, "secrets", 0) > 0)
                all_open = FALSE;
        }
        if (g_strcmp0(opt_output, "json") == 0) {
            g_autoptr(JsonNode) n = json_node_init_array(json_node_alloc(), versions);
            g_autofree char *text = dv_json_node_to_string(n, TRUE);
            g_print("%s\n", text);
        } else {
            dv_setup_print_check(versions);
        }
        /* Exit 1 when some secret could not be opened here. */
        return all_open ? 0 : 1;
    }
    if (g_strcmp0(verb, "rotate") == 0 && argc == 3) {
        g_autofree char *key_id = NULL;
        if (!dv_keyring_rotate(keyring, &key_id, &error))
            return dv_setup_fail(error);
        g_print("new key version %s is current; run 'drover-setup keys rekey' to re-encrypt "
                "existing secrets under it\n", key_id);
        return 0;
    }
    if (g_strcmp0(verb, "rekey") == 0 && argc == 3) {
        guint total = 0, skipped_total = 0;
        for (;;) {
            guint done = 0, remaining = 0, skipped = 0;
            if (!dv_keyring_rekey_batch(keyring, (guint)opt_batch, &done, &remaining, &skipped, &error))
                return dv_setup_fail(error);
            total += done;
            skipped_total = skipped;
            if (remaining == 0 || done == 0)
                break;
        }
        g_print("re-encrypted %u secrets under the current key", total);
        if (skipped_total > 0)
            g_print("; %u could not be opened here and were left as they are", skipped_total);
        g_print("\n");
        return skipped_total > 0 ? 1 : 0;
    }
    if (g_strcmp0(verb, "retire") == 0 && argc == 3) {
        guint n = 0;
        if (!dv_keyring_retire_unused(keyring, &n, &error))
            return dv_setup_fail(error);
        g_print("retired %u key versions no secret uses\n", n);
        return 0;
    }
    if (g_strcmp0(verb, "recovery") == 0 && argc == 4 && g_strcmp0(argv[3], "create") == 0) {
        if (opt_out == NULL) {
            g_printerr("drover-setup: keys recovery create needs --out FILE\n");
            return DV_EXIT_USAGE;
        }
        if (!dv_keyring_recovery_create(keyring, opt_out, &error))
            return dv_setup_fail(error);
        g_print("recovery key written to %s: keep it offline; it opens every secret on any machine\n",
                opt_out);
        return 0;
    }
    if (g_strcmp0(verb, "protect-host") == 0 && argc == 3) {
        if (!dv_keyring_protect_with_host(keyring, &error))
            return dv_setup_fail(error);
        g_print("every key open here is now also in this machine's host key file\n");
        return 0;
    }
    g_printerr("drover-setup: unknown keys command; see --help\n");
    return DV_EXIT_USAGE;
}

/* upgrade [--plan | --report] (dv-setup-upgrade.c, src/engine/features/upgrade) */
static int
dv_setup_upgrade_main(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *state_dir = dv_setup_state_dir();
    DvSetupUpgradeArgs a = {
        .plan_only = opt_plan,
        .report_only = opt_report,
        .json = g_strcmp0(opt_output, "json") == 0,
        .backup_dir = opt_backup_dir,
        .upgrade = {
            .state_dir = state_dir,
            .database = opt_database,
            .machine_id_path = opt_machine_id,
            .service_account = opt_service_account,
            .service_dn = opt_service_dn,
            .service_password_file = opt_service_pw,
            .ldap_uri = opt_ldap_uri,
            .container = opt_container,
            .ca_file = opt_ca_file,
            .admin_dn = opt_admin_dn,
            .admin_password_file = opt_admin_pw,
            .recovery_key_path = opt_recovery_key,
            .accept_unreadable_secrets = opt_accept_unreadable,
            .reset_host_limits = opt_reset_host_limits,
        },
    };

    if (opt_plan && opt_report) {
        g_printerr("drover-setup: --plan and --report do not go together\n");
        return DV_EXIT_USAGE;
    }
    if (opt_library_share != NULL &&
        !dv_setup_upgrade_parse_library_share(opt_library_share, &a.upgrade, &error)) {
        g_printerr("drover-setup: %s\n", error->message);
        return DV_EXIT_USAGE;
    }
    return dv_setup_upgrade(&a);
}

/* backup --out FILE | restore --in FILE [--force] (dv-setup-backup.c) */
static int
dv_setup_backup_restore(gboolean backup)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvStoreLock) lock = NULL;
    g_autofree char *state_dir = dv_setup_state_dir();
    DvSetupBackupOptions bo = {
        .state_dir = state_dir,
        .database = opt_database,
        .machine_id_path = opt_machine_id,
        .force = opt_force,
    };

    if ((backup ? opt_out : opt_in) == NULL) {
        g_printerr("drover-setup: %s needs %s FILE\n", backup ? "backup" : "restore", backup ? "--out" : "--in");
        return DV_EXIT_USAGE;
    }
    /* Restore replaces the database: never under a droverd holding it
     * (backup only reads, and may run beside it). */
    if (!backup) {
        g_autofree char *location = opt_database != NULL
                                        ? g_strdup(opt_database)
                                        : g_build_filename(state_dir, "drover.db", NULL);
        g_autofree char *dir = g_path_get_dirname(location);
        if (g_file_test(dir, G_FILE_TEST_IS_DIR)) {
            lock = dv_store_lock_acquire(location, "drover-setup restore", &error);
            if (lock == NULL)
                return dv_setup_fail(error);
        }
    }
    if (!(backup ? dv_setup_backup(&bo, opt_out, &error) : dv_setup_restore(&bo, opt_in, &error)))
        return dv_setup_fail(error);
    return 0;
}

int
main(int argc, char **argv)
{
    g_autoptr(GOptionContext) ctx = g_option_context_new("schema status|migrate | keys ...");
    g_autoptr(GError) error = NULL;

    /* install and uninstall parse their own options (dv-setup-install.c). */
    if (argc >= 2 && (g_strcmp0(argv[1], "install") == 0 || g_strcmp0(argv[1], "uninstall") == 0))
        return dv_setup_install_main(argc, argv);
    g_option_context_set_description(ctx, "Installing: drover-setup install --help, drover-setup uninstall "
                                          "--help (docs/INSTALL.md).\n");

    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_summary(ctx, "Installation tasks that need no running server.\n\n"
                                      "  schema status    show the schema version and history, and whether\n"
                                      "                   droverd would start on this database\n"
                                      "  schema migrate   apply pending migrations\n"
                                      "  keys check       which key versions open here, and how many secrets each protects\n"
                                      "                   (canaries only; exit 1 if a used key cannot be opened)\n"
                                      "  keys rotate      make a new key version, wrapped by every protector\n"
                                      "  keys rekey       re-encrypt every secret under the newest key, in batches\n"
                                      "  keys retire      retire key versions no secret uses\n"
                                      "  keys recovery create --out FILE   make the offline recovery key (once)\n"
                                      "  keys directory init --ldap-uri URI --container DN --admin-dn DN\n"
                                      "                   --admin-password-file F --service-dn DN --service-password-file F\n"
                                      "                   [--group-dn DN] [--non-member DN=F]... [--ca-file F]\n"
                                      "                   [--config-admin-uri ldapi://...]   the directory key protector:\n"
                                      "                   container, ACL, proof that others cannot read, keys wrapped\n"
                                      "  keys protect-host   add every key open here (e.g. through --recovery-key)\n"
                                      "                   to this machine's host key file\n"
                                      "  backup --out FILE [--force]   database, key files and config in one archive (0600)\n"
                                      "  restore --in FILE [--force]   verify the archive and put it back; refuses another\n"
                                      "                   installation or key set unless --force (see docs/BACKUP.md)\n"
                                      "  upgrade --plan   what an upgrade would do for this machine, service account and\n"
                                      "                   protectors: per key and secret preserved/rewrap/lost, known issues\n"
                                      "                   (exit 0: OK, 10: blocking issues); changes nothing\n"
                                      "  upgrade          the plan's checks, backup, migration in one transaction, re-wrap,\n"
                                      "                   verification, rollback on failure, post-upgrade report\n"
                                      "  upgrade --report the last post-upgrade report (see docs/UPGRADE.md)");
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        g_printerr("drover-setup: %s\n", error->message);
        return DV_EXIT_USAGE;
    }
    if (opt_output != NULL && g_strcmp0(opt_output, "json") != 0 && g_strcmp0(opt_output, "table") != 0) {
        g_printerr("drover-setup: --output must be table or json\n");
        return DV_EXIT_USAGE;
    }
    if (argc == 3 && g_strcmp0(argv[1], "schema") == 0 && g_strcmp0(argv[2], "status") == 0)
        return dv_setup_schema_status();
    if (argc == 3 && g_strcmp0(argv[1], "schema") == 0 && g_strcmp0(argv[2], "migrate") == 0)
        return dv_setup_schema_migrate();
    if (argc == 2 && g_strcmp0(argv[1], "upgrade") == 0)
        return dv_setup_upgrade_main();
    if (argc == 2 && (g_strcmp0(argv[1], "backup") == 0 || g_strcmp0(argv[1], "restore") == 0))
        return dv_setup_backup_restore(g_strcmp0(argv[1], "backup") == 0);
    if (argc >= 3 && g_strcmp0(argv[1], "keys") == 0) {
        if (opt_batch < 1 || opt_batch > 1000) {
            g_printerr("drover-setup: --batch must be 1-1000\n");
            return DV_EXIT_USAGE;
        }
        return dv_setup_keys(argc, argv);
    }
    {
        g_autofree char *help = g_option_context_get_help(ctx, TRUE, NULL);
        g_printerr("%s", help);
    }
    return DV_EXIT_USAGE;
}
