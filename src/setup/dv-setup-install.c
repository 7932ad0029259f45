#define G_LOG_DOMAIN "DvSetupInstall"

/* drover-setup install / uninstall (docs/INSTALL.md).
 *
 * Install validates every option first and writes nothing until all of
 * them passed.  Then, as root: the directory container and its ACL (when
 * --directory), the service account, the state directory, TLS files, the
 * library share.  The database, key k1 and the first user are made by this
 * same binary run again as the service account (hidden --as-service-init),
 * so the host key file is created by, owned by and bound to that account on
 * this machine exactly as droverd's first start would make it.  Last the
 * config file and the systemd unit.
 *
 * A database that already holds Drover data never gets new keys: install
 * says so and replaces itself with "drover-setup upgrade". */

#include "dv-setup-install.h"

#include "dv-config.h"
#include "dv-engine-directory.h"
#include "dv-engine.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-keys-directory.h"
#include "dv-keys.h"
#include "dv-store.h"
#include "dv-validate.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DV_INSTALL_DEFAULT_ACCOUNT "drover"
#define DV_INSTALL_DEFAULT_LISTEN "127.0.0.1:8420"
#define DV_INSTALL_DEFAULT_SHARE DV_DEFAULT_SHARE_NAME
#define DV_INSTALL_UNIT_NAME "drover.service"
#define DV_INSTALL_SYSTEMD_DIR "/etc/systemd/system"
#define DV_INSTALL_PW_MAX 4096

/* --- options --------------------------------------------------------------- */

static char *o_root;
static char *o_config_dir;
static char *o_unit_dir;
static char *o_state_dir;
static char *o_database;
static char *o_account;
static char *o_service_dn;
static char *o_service_pw_file;
static char *o_listen;
static char *o_tls_cert;
static char *o_tls_key;
static gboolean o_self_signed;
static char *o_recovery_out;
static char *o_recovery_key;
static char *o_share_name;
static char *o_share_path;
static char *o_share_choice;
static char *o_machine_id;
static char *o_droverd;
static gboolean o_directory;
static char *o_ldap_uri;
static char *o_container;
static char *o_admin_dn;
static char *o_admin_pw_file;
static char *o_config_admin_uri;
static char *o_group_dn;
static char *o_ca_file;
static char **o_non_members;
static gboolean o_keep_data;
static gboolean o_yes_delete;
static gboolean o_remove_account;
/* Hidden: the part run as the service account. */
static gboolean o_as_service_init;
static char *o_recovery_tmp;

static const GOptionEntry install_entries[] = {
    { "state-dir", 's', 0, G_OPTION_ARG_FILENAME, &o_state_dir,
      "State directory (default /var/lib/drover)", "DIR" },
    { "database", 'd', 0, G_OPTION_ARG_STRING, &o_database,
      "SQLite file or postgresql:// URI (default <state-dir>/drover.db)", "DB" },
    { "service-account", 0, 0, G_OPTION_ARG_STRING, &o_account,
      "Local account droverd runs as, created if missing (default drover)", "USER" },
    { "service-dn", 0, 0, G_OPTION_ARG_STRING, &o_service_dn,
      "Directory identity of the service (a directory account)", "DN" },
    { "service-password-file", 0, 0, G_OPTION_ARG_FILENAME, &o_service_pw_file,
      "Its password (file)", "FILE" },
    { "listen", 'l', 0, G_OPTION_ARG_STRING, &o_listen,
      "Listen address (default " DV_INSTALL_DEFAULT_LISTEN ")", "ADDR:PORT" },
    { "tls-cert", 0, 0, G_OPTION_ARG_FILENAME, &o_tls_cert,
      "TLS certificate (PEM), copied into <state-dir>/tls", "FILE" },
    { "tls-key", 0, 0, G_OPTION_ARG_FILENAME, &o_tls_key,
      "TLS private key (PEM), copied into <state-dir>/tls", "FILE" },
    { "self-signed-tls", 0, 0, G_OPTION_ARG_NONE, &o_self_signed,
      "Make a self-signed certificate now", NULL },
    { "recovery-key-out", 0, 0, G_OPTION_ARG_FILENAME, &o_recovery_out,
      "Make the recovery key and write it here once (0600)", "FILE" },
    { "recovery-key", 0, 0, G_OPTION_ARG_FILENAME, &o_recovery_key,
      "Existing recovery key, passed to upgrade when install switches to it", "FILE" },
    { "library-share-name", 0, 0, G_OPTION_ARG_STRING, &o_share_name,
      "Name of the default library share (default 'default')", "NAME" },
    { "library-share-path", 0, 0, G_OPTION_ARG_FILENAME, &o_share_path,
      "Its directory, created (default <state-dir>/library)", "DIR" },
    { "library-share", 0, 0, G_OPTION_ARG_STRING, &o_share_choice,
      "On existing data: passed to upgrade for a library share clash (use-default, keep or "
      "NAME=PATH)",
      "CHOICE" },
    { "machine-id-file", 0, 0, G_OPTION_ARG_FILENAME, &o_machine_id,
      "Machine identity the host key file is bound to (default /etc/machine-id)", "FILE" },
    { "droverd", 0, 0, G_OPTION_ARG_FILENAME, &o_droverd,
      "droverd binary for the unit (default: beside drover-setup, else PATH)", "FILE" },
    { "directory", 0, 0, G_OPTION_ARG_NONE, &o_directory,
      "Also protect the keys with the directory (needs the LDAP options)", NULL },
    { "ldap-uri", 0, 0, G_OPTION_ARG_STRING, &o_ldap_uri,
      "Directory URI (ldap:// with StartTLS, ldaps://, ldapi://)", "URI" },
    { "container", 0, 0, G_OPTION_ARG_STRING, &o_container, "Container DN for the wrapped keys",
      "DN" },
    { "admin-dn", 0, 0, G_OPTION_ARG_STRING, &o_admin_dn,
      "Directory administrator who creates the container", "DN" },
    { "admin-password-file", 0, 0, G_OPTION_ARG_FILENAME, &o_admin_pw_file, "Its password (file)",
      "FILE" },
    { "config-admin-uri", 0, 0, G_OPTION_ARG_STRING, &o_config_admin_uri,
      "ldapi:// URI where root may write cn=config", "URI" },
    { "group-dn", 0, 0, G_OPTION_ARG_STRING, &o_group_dn, "Group whose members may read the keys",
      "DN" },
    { "non-member", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o_non_members,
      "Identity that must NOT read the keys (repeatable)", "DN=PASSWORD_FILE" },
    { "ca-file", 0, 0, G_OPTION_ARG_FILENAME, &o_ca_file, "CA certificate(s) of the directory",
      "FILE" },
    { "root", 0, 0, G_OPTION_ARG_FILENAME, &o_root,
      "Prefix of /etc and /var/lib (tests; default /)", "DIR" },
    { "config-dir", 0, 0, G_OPTION_ARG_FILENAME, &o_config_dir,
      "Where droverd.conf goes (default <root>/etc/drover)", "DIR" },
    { "unit-dir", 0, 0, G_OPTION_ARG_FILENAME, &o_unit_dir,
      "Where drover.service goes (default /etc/systemd/system under systemd, else <state-dir>)",
      "DIR" },
    { "as-service-init", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &o_as_service_init, NULL,
      NULL },
    { "recovery-key-tmp", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, &o_recovery_tmp, NULL,
      NULL },
    { NULL },
};

static const GOptionEntry uninstall_entries[] = {
    { "keep-data", 0, 0, G_OPTION_ARG_NONE, &o_keep_data,
      "Keep the database, key files and recovery material", NULL },
    { "yes-delete-data", 0, 0, G_OPTION_ARG_NONE, &o_yes_delete,
      "Delete the state directory (database, keys) too", NULL },
    { "remove-account", 0, 0, G_OPTION_ARG_NONE, &o_remove_account,
      "Also remove the service account install created", NULL },
    { "root", 0, 0, G_OPTION_ARG_FILENAME, &o_root,
      "Prefix of /etc and /var/lib (tests; default /)", "DIR" },
    { "config-dir", 0, 0, G_OPTION_ARG_FILENAME, &o_config_dir,
      "Where droverd.conf is (default <root>/etc/drover)", "DIR" },
    { NULL },
};

/* --- small helpers ------------------------------------------------------------- */

static gboolean dv_install_field_error(GError **error, const char *option, const char *format, ...)
    G_GNUC_PRINTF(3, 4);

static gboolean
dv_install_field_error(GError **error, const char *option, const char *format, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, format);
    msg = g_strdup_vprintf(format, ap);
    va_end(ap);
    /* The field is the option without its dashes. */
    dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, option + 2, "%s: %s", option, msg);
    return FALSE;
}

gboolean
dv_setup_install_account_name_valid(const char *name)
{
    gsize len;

    if (name == NULL)
        return FALSE;
    len = strlen(name);
    if (len == 0 || len > 32)
        return FALSE;
    if (!(g_ascii_islower(name[0]) || name[0] == '_'))
        return FALSE;
    for (gsize i = 1; i < len; i++) {
        char c = name[i];
        if (g_ascii_islower(c) || g_ascii_isdigit(c) || c == '_' || c == '-')
            continue;
        if (c == '$' && i == len - 1)
            continue;
        return FALSE;
    }
    return TRUE;
}

static gboolean
dv_install_is_pg(const char *db)
{
    return g_str_has_prefix(db, "postgresql://") || g_str_has_prefix(db, "postgres://");
}

static char *
dv_install_under_root(const char *root, const char *path)
{
    if (root == NULL || g_strcmp0(root, "/") == 0)
        return g_strdup(path);
    return g_build_filename(root, path, NULL);
}

static gboolean
dv_install_systemd_running(void)
{
    /* sd_booted(): systemd is PID 1 when this directory exists. */
    return g_file_test("/run/systemd/system", G_FILE_TEST_IS_DIR);
}

static gboolean
dv_install_run(const char *const *argv, GError **error)
{
    g_autofree char *err = NULL;
    int status = 0;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                      NULL, NULL, NULL, &err, &status, error)) {
        dv_error_convert(error);
        return FALSE;
    }
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_strstrip(err);
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "%s failed: %s", argv[0],
                    err[0] != '\0' ? err : "no message");
        return FALSE;
    }
    return TRUE;
}

/* Writes @contents to @path through a temp file and rename, with @mode and
 * owner @uid:@gid (-1: unchanged). */
static gboolean
dv_install_write_file(const char *path, const char *contents, gsize len, mode_t mode, uid_t uid,
                      gid_t gid, GError **error)
{
    g_autofree char *tmp = g_strconcat(path, ".install-XXXXXX", NULL);
    int fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0600);
    gsize done = 0;

    if (fd < 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot write %s: %s", path,
                    g_strerror(errno));
        return FALSE;
    }
    while (done < len) {
        ssize_t n = write(fd, contents + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot write %s: %s", path,
                        g_strerror(errno));
            close(fd);
            g_unlink(tmp);
            return FALSE;
        }
        done += (gsize)n;
    }
    if (fchmod(fd, mode) != 0 ||
        ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid) != 0) || fsync(fd) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot write %s: %s", path,
                    g_strerror(errno));
        close(fd);
        g_unlink(tmp);
        return FALSE;
    }
    close(fd);
    if (g_rename(tmp, path) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot write %s: %s", path,
                    g_strerror(errno));
        g_unlink(tmp);
        return FALSE;
    }
    return TRUE;
}

/* A directory made (with parents, 0755 for the parents), then @mode and
 * owner given to the leaf. */
static gboolean
dv_install_mkdir(const char *path, mode_t mode, uid_t uid, gid_t gid, GError **error)
{
    if (g_mkdir_with_parents(path, 0755) != 0 || g_chmod(path, mode) != 0 ||
        ((uid != (uid_t)-1) && chown(path, uid, gid) != 0)) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot create %s: %s", path,
                    g_strerror(errno));
        return FALSE;
    }
    return TRUE;
}

/* A small file checked as an option value: exists, regular, readable,
 * at most @max bytes (0: any). */
static gboolean
dv_install_check_file(const char *option, const char *path, gsize max, GError **error)
{
    struct stat st;

    if (path[0] == '\0')
        return dv_install_field_error(error, option, "is empty");
    if (stat(path, &st) != 0)
        return dv_install_field_error(error, option, "cannot read %s: %s", path, g_strerror(errno));
    if (!S_ISREG(st.st_mode))
        return dv_install_field_error(error, option, "%s is not a regular file", path);
    if (access(path, R_OK) != 0)
        return dv_install_field_error(error, option, "cannot read %s: %s", path, g_strerror(errno));
    if (max > 0 && (gsize)st.st_size > max)
        return dv_install_field_error(error, option, "%s has %lld bytes, at most %zu expected",
                                      path, (long long)st.st_size, max);
    return TRUE;
}

static gboolean
dv_install_dir_is_empty(const char *path)
{
    g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
    return dir == NULL || g_dir_read_name(dir) == NULL;
}

/* What makes a non-empty state directory Drover's. */
static gboolean
dv_install_dir_is_drovers(const char *path)
{
    static const char *const marks[] = { "drover.db",          "keys",
                                         "directory.conf",     "initial-admin-password",
                                         DV_INSTALL_UNIT_NAME, NULL };
    for (guint i = 0; marks[i] != NULL; i++) {
        g_autofree char *p = g_build_filename(path, marks[i], NULL);
        if (g_file_test(p, G_FILE_TEST_EXISTS))
            return TRUE;
    }
    return FALSE;
}

/* --- install: the plan ----------------------------------------------------------- */

typedef struct {
    char *root;
    char *config_dir;
    char *config_path;
    char *unit_dir;
    char *unit_path;
    gboolean unit_in_state_dir;
    gboolean reload_systemd;
    char *state_dir;
    char *database;
    gboolean database_given;
    char *account;
    gboolean account_exists;
    uid_t uid;
    gid_t gid;
    gboolean libvirt_group;
    gboolean libvirt_member;
    char *listen;
    char *listen_host; /* the address, for the certificate */
    char *share_name;
    char *share_path;
    char *droverd;
    char *tls_cert; /* where droverd reads them: <state>/tls/... */
    char *tls_key;
    DvStoreInspection db;
} DvInstallPlan;

static void
dv_install_plan_clear(DvInstallPlan *p)
{
    g_free(p->root);
    g_free(p->config_dir);
    g_free(p->config_path);
    g_free(p->unit_dir);
    g_free(p->unit_path);
    g_free(p->state_dir);
    g_free(p->database);
    g_free(p->account);
    g_free(p->listen);
    g_free(p->listen_host);
    g_free(p->share_name);
    g_free(p->share_path);
    g_free(p->droverd);
    g_free(p->tls_cert);
    g_free(p->tls_key);
    dv_store_inspection_clear(&p->db);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(DvInstallPlan, dv_install_plan_clear)

static gboolean
dv_install_check_listen(DvInstallPlan *p, GError **error)
{
    const char *listen = o_listen != NULL ? o_listen : DV_INSTALL_DEFAULT_LISTEN;
    const char *colon = strrchr(listen, ':');
    g_autofree char *host = NULL;
    g_autoptr(GInetAddress) addr = NULL;
    guint64 port;

    if (colon == NULL)
        return dv_install_field_error(error, "--listen",
                                      "'%s' is not ADDRESS:PORT (e.g. 127.0.0.1:8420)", listen);
    host = g_strndup(listen, colon - listen);
    if (host[0] == '[' && strlen(host) > 2 && host[strlen(host) - 1] == ']') {
        char *inner = g_strndup(host + 1, strlen(host) - 2);
        g_free(host);
        host = inner;
    }
    if (!g_ascii_string_to_unsigned(colon + 1, 10, 1, 65535, &port, NULL))
        return dv_install_field_error(error, "--listen",
                                      "port '%s' is not a number between 1 and 65535", colon + 1);
    if (g_strcmp0(host, "localhost") == 0) {
        g_free(host);
        host = g_strdup("127.0.0.1");
    }
    addr = g_inet_address_new_from_string(host);
    if (addr == NULL)
        return dv_install_field_error(error, "--listen", "'%s' is not an IP address", host);
    if (!g_inet_address_get_is_loopback(addr) && o_tls_cert == NULL && !o_self_signed)
        return dv_install_field_error(
            error, "--listen",
            "%s is not a loopback address, so droverd serves it only over "
            "TLS: give --tls-cert and --tls-key, or --self-signed-tls",
            listen);
    p->listen = g_strdup(listen);
    p->listen_host = g_steal_pointer(&host);
    return TRUE;
}

static gboolean
dv_install_check_account(DvInstallPlan *p, GError **error)
{
    struct passwd *pw;
    struct group *gr;

    p->account = g_strdup(o_account != NULL ? o_account : DV_INSTALL_DEFAULT_ACCOUNT);
    if (!dv_setup_install_account_name_valid(p->account))
        return dv_install_field_error(
            error, "--service-account",
            "'%s' is not a valid account name: 1-32 characters, a lower-case "
            "letter or '_' first, then lower-case letters, digits, '_' or '-'",
            p->account);
    pw = getpwnam(p->account);
    if (pw != NULL) {
        if (pw->pw_uid == 0)
            return dv_install_field_error(error, "--service-account",
                                          "'%s' is root; droverd runs as an unprivileged account",
                                          p->account);
        p->account_exists = TRUE;
        p->uid = pw->pw_uid;
        p->gid = pw->pw_gid;
    } else {
        g_autofree char *useradd = g_find_program_in_path("useradd");
        if (useradd == NULL)
            return dv_install_field_error(
                error, "--service-account",
                "account '%s' does not exist and useradd is not available to "
                "create it",
                p->account);
    }
    gr = getgrnam("libvirt");
    p->libvirt_group = gr != NULL;
    if (gr != NULL && p->account_exists) {
        for (char **m = gr->gr_mem; m != NULL && *m != NULL; m++)
            if (g_strcmp0(*m, p->account) == 0)
                p->libvirt_member = TRUE;
        if (gr->gr_gid == p->gid)
            p->libvirt_member = TRUE;
    }
    return TRUE;
}

static gboolean
dv_install_check_directory(GError **error)
{
    if (!o_directory) {
        const char *given = o_ldap_uri != NULL        ? "--ldap-uri"
                            : o_container != NULL     ? "--container"
                            : o_admin_dn != NULL      ? "--admin-dn"
                            : o_admin_pw_file != NULL ? "--admin-password-file"
                            : o_group_dn != NULL      ? "--group-dn"
                            : o_ca_file != NULL       ? "--ca-file"
                            : o_non_members != NULL   ? "--non-member"
                                                      : NULL;
        if (given != NULL)
            return dv_install_field_error(error, given,
                                          "is a directory protector option; give --directory too");
        return TRUE;
    }
    if (o_ldap_uri == NULL)
        return dv_install_field_error(error, "--ldap-uri", "--directory needs the directory's URI");
    if (!g_str_has_prefix(o_ldap_uri, "ldap://") && !g_str_has_prefix(o_ldap_uri, "ldaps://") &&
        !g_str_has_prefix(o_ldap_uri, "ldapi://"))
        return dv_install_field_error(
            error, "--ldap-uri", "'%s' is not an ldap://, ldaps:// or ldapi:// URI", o_ldap_uri);
    if (o_container == NULL || strchr(o_container, '=') == NULL)
        return dv_install_field_error(error, "--container", "--directory needs the container DN");
    if (o_admin_dn == NULL)
        return dv_install_field_error(error, "--admin-dn",
                                      "--directory needs the directory administrator");
    if (o_admin_pw_file == NULL)
        return dv_install_field_error(error, "--admin-password-file",
                                      "--directory needs the administrator's "
                                      "password file");
    if (!dv_install_check_file("--admin-password-file", o_admin_pw_file, DV_INSTALL_PW_MAX, error))
        return FALSE;
    if (o_service_dn == NULL)
        return dv_install_field_error(error, "--service-dn",
                                      "--directory needs the service identity "
                                      "droverd binds as");
    if (o_ca_file != NULL && !dv_install_check_file("--ca-file", o_ca_file, 1024 * 1024, error))
        return FALSE;
    for (guint i = 0; o_non_members != NULL && o_non_members[i] != NULL; i++) {
        const char *eq = strrchr(o_non_members[i], '=');
        if (eq == NULL || eq == o_non_members[i])
            return dv_install_field_error(error, "--non-member", "'%s' is not DN=PASSWORD_FILE",
                                          o_non_members[i]);
        if (!dv_install_check_file("--non-member", eq + 1, DV_INSTALL_PW_MAX, error))
            return FALSE;
    }
    return TRUE;
}

static char *
dv_install_find_droverd(GError **error)
{
    g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
    g_autofree char *dir = self != NULL ? g_path_get_dirname(self) : NULL;

    if (o_droverd != NULL) {
        if (!g_path_is_absolute(o_droverd) || !g_file_test(o_droverd, G_FILE_TEST_IS_EXECUTABLE)) {
            dv_install_field_error(error, "--droverd",
                                   "'%s' is not an executable file given by its absolute path",
                                   o_droverd);
            return NULL;
        }
        return g_strdup(o_droverd);
    }
    if (dir != NULL) {
        /* Installed beside drover-setup, or the build tree's src/daemon. */
        g_autofree char *beside = g_build_filename(dir, "droverd", NULL);
        g_autofree char *build = g_build_filename(dir, "..", "daemon", "droverd", NULL);
        if (g_file_test(beside, G_FILE_TEST_IS_EXECUTABLE))
            return g_steal_pointer(&beside);
        if (g_file_test(build, G_FILE_TEST_IS_EXECUTABLE))
            return g_canonicalize_filename(build, NULL);
    }
    {
        char *found = g_find_program_in_path("droverd");
        if (found != NULL)
            return found;
    }
    dv_install_field_error(error, "--droverd",
                           "droverd is neither beside drover-setup nor in PATH; give its path");
    return NULL;
}

/* Every check before anything is written. */
static gboolean
dv_install_validate(DvInstallPlan *p, GError **error)
{
    p->root = g_strdup(o_root != NULL ? o_root : "/");
    if (!g_path_is_absolute(p->root) || !g_file_test(p->root, G_FILE_TEST_IS_DIR))
        return dv_install_field_error(
            error, "--root", "'%s' is not an existing directory given by its absolute path",
            p->root);
    if (o_state_dir != NULL && !g_path_is_absolute(o_state_dir))
        return dv_install_field_error(error, "--state-dir", "'%s' is not an absolute path",
                                      o_state_dir);
    p->state_dir = o_state_dir != NULL ? g_canonicalize_filename(o_state_dir, NULL)
                                       : dv_install_under_root(p->root, "/var/lib/drover");
    if (g_file_test(p->state_dir, G_FILE_TEST_EXISTS) &&
        !g_file_test(p->state_dir, G_FILE_TEST_IS_DIR))
        return dv_install_field_error(error, "--state-dir", "%s exists and is not a directory",
                                      p->state_dir);

    if (o_config_dir != NULL && !g_path_is_absolute(o_config_dir))
        return dv_install_field_error(error, "--config-dir", "'%s' is not an absolute path",
                                      o_config_dir);
    p->config_dir = o_config_dir != NULL ? g_strdup(o_config_dir)
                                         : dv_install_under_root(p->root, "/etc/drover");
    p->config_path = g_build_filename(p->config_dir, "droverd.conf", NULL);

    if (o_unit_dir != NULL) {
        if (!g_path_is_absolute(o_unit_dir) || !g_file_test(o_unit_dir, G_FILE_TEST_IS_DIR))
            return dv_install_field_error(error, "--unit-dir",
                                          "'%s' is not an existing directory given by its "
                                          "absolute path",
                                          o_unit_dir);
        p->unit_dir = g_strdup(o_unit_dir);
    } else if (dv_install_systemd_running()) {
        p->unit_dir = dv_install_under_root(p->root, DV_INSTALL_SYSTEMD_DIR);
        p->reload_systemd = o_root == NULL || g_strcmp0(o_root, "/") == 0;
    } else {
        p->unit_dir = g_strdup(p->state_dir);
        p->unit_in_state_dir = TRUE;
    }
    p->unit_path = g_build_filename(p->unit_dir, DV_INSTALL_UNIT_NAME, NULL);

    if (!dv_install_check_account(p, error))
        return FALSE;
    if ((o_service_dn == NULL) != (o_service_pw_file == NULL))
        return dv_install_field_error(
            error, o_service_dn == NULL ? "--service-dn" : "--service-password-file",
            "--service-dn and --service-password-file are given together");
    if (o_service_dn != NULL && strchr(o_service_dn, '=') == NULL)
        return dv_install_field_error(error, "--service-dn", "'%s' is not a DN", o_service_dn);
    if (o_service_pw_file != NULL &&
        !dv_install_check_file("--service-password-file", o_service_pw_file, DV_INSTALL_PW_MAX,
                               error))
        return FALSE;
    if (!dv_install_check_directory(error))
        return FALSE;
    if (!dv_install_check_listen(p, error))
        return FALSE;

    if (o_self_signed && (o_tls_cert != NULL || o_tls_key != NULL))
        return dv_install_field_error(error, "--self-signed-tls",
                                      "is given instead of --tls-cert/--tls-key, not with them");
    if ((o_tls_cert == NULL) != (o_tls_key == NULL))
        return dv_install_field_error(error, o_tls_cert == NULL ? "--tls-cert" : "--tls-key",
                                      "--tls-cert and --tls-key are given together");
    if (o_tls_cert != NULL &&
        (!dv_install_check_file("--tls-cert", o_tls_cert, 1024 * 1024, error) ||
         !dv_install_check_file("--tls-key", o_tls_key, 1024 * 1024, error)))
        return FALSE;
    if (o_self_signed) {
        g_autofree char *openssl = g_find_program_in_path("openssl");
        if (openssl == NULL)
            return dv_install_field_error(error, "--self-signed-tls",
                                          "needs openssl, which is not in PATH");
    }
    if (o_tls_cert != NULL || o_self_signed) {
        p->tls_cert = g_build_filename(p->state_dir, "tls", "server.crt", NULL);
        p->tls_key = g_build_filename(p->state_dir, "tls", "server.key", NULL);
    }

    if (o_recovery_out != NULL) {
        g_autofree char *parent = g_path_get_dirname(o_recovery_out);
        if (!g_path_is_absolute(o_recovery_out))
            return dv_install_field_error(error, "--recovery-key-out",
                                          "'%s' is not an absolute path", o_recovery_out);
        if (g_file_test(o_recovery_out, G_FILE_TEST_EXISTS) ||
            g_file_test(o_recovery_out, G_FILE_TEST_IS_SYMLINK))
            return dv_install_field_error(error, "--recovery-key-out",
                                          "%s exists; the recovery key is written "
                                          "once, to a new file",
                                          o_recovery_out);
        if (!g_file_test(parent, G_FILE_TEST_IS_DIR))
            return dv_install_field_error(error, "--recovery-key-out",
                                          "directory %s does not exist", parent);
    }
    if (o_recovery_key != NULL &&
        !dv_install_check_file("--recovery-key", o_recovery_key, DV_INSTALL_PW_MAX, error))
        return FALSE;
    if (o_machine_id != NULL &&
        !dv_install_check_file("--machine-id-file", o_machine_id, 4096, error))
        return FALSE;

    if (o_share_choice != NULL && g_strcmp0(o_share_choice, "use-default") != 0 &&
        g_strcmp0(o_share_choice, "keep") != 0 &&
        (strchr(o_share_choice, '=') == NULL || o_share_choice[0] == '='))
        return dv_install_field_error(error, "--library-share",
                                      "'%s' is not use-default, keep or NAME=PATH", o_share_choice);
    p->share_name = g_strdup(o_share_name != NULL ? o_share_name : DV_INSTALL_DEFAULT_SHARE);
    {
        g_autoptr(GError) local = NULL;
        if (!dv_validate_name("library-share-name", p->share_name, &local))
            return dv_install_field_error(error, "--library-share-name", "%s", local->message);
    }
    if (o_share_path != NULL && !g_path_is_absolute(o_share_path))
        return dv_install_field_error(error, "--library-share-path", "'%s' is not an absolute path",
                                      o_share_path);
    p->share_path = o_share_path != NULL ? g_canonicalize_filename(o_share_path, NULL)
                                         : g_build_filename(p->state_dir, "library", NULL);
    if (g_file_test(p->share_path, G_FILE_TEST_EXISTS) &&
        !g_file_test(p->share_path, G_FILE_TEST_IS_DIR))
        return dv_install_field_error(error, "--library-share-path",
                                      "%s exists and is not a directory", p->share_path);

    p->droverd = dv_install_find_droverd(error);
    if (p->droverd == NULL)
        return FALSE;

    /* The database last: it may take a network round trip. */
    p->database_given = o_database != NULL;
    if (o_database != NULL && !dv_install_is_pg(o_database) && !g_path_is_absolute(o_database))
        return dv_install_field_error(error, "--database",
                                      "'%s' is neither a postgresql:// URI nor an absolute "
                                      "path",
                                      o_database);
    p->database = o_database != NULL ? g_strdup(o_database)
                                     : g_build_filename(p->state_dir, "drover.db", NULL);
    {
        g_autoptr(GError) local = NULL;
        if (!dv_store_inspect(p->database, &p->db, &local)) {
            dv_set_field_error(error, DV_ERROR_UNAVAILABLE, "database", "--database: %s",
                               local->message);
            return FALSE;
        }
    }
    if (p->db.content == DV_STORE_CONTENT_OTHER)
        return dv_install_field_error(
            error, "--database", "%s is not an empty database and not Drover's: %s",
            dv_install_is_pg(p->database) ? "the PostgreSQL database" : p->database, p->db.detail);
    if (p->db.content == DV_STORE_CONTENT_EMPTY && g_file_test(p->state_dir, G_FILE_TEST_IS_DIR) &&
        !dv_install_dir_is_empty(p->state_dir) && !dv_install_dir_is_drovers(p->state_dir))
        return dv_install_field_error(error, "--state-dir",
                                      "%s is not empty and holds no Drover installation; "
                                      "give an empty or new directory",
                                      p->state_dir);
    if (p->db.content == DV_STORE_CONTENT_EMPTY && dv_install_dir_is_drovers(p->state_dir)) {
        g_autofree char *keys = g_build_filename(p->state_dir, "keys", "host.key", NULL);
        if (g_file_test(keys, G_FILE_TEST_EXISTS))
            return dv_install_field_error(
                error, "--database",
                "%s holds a host key file (%s) but the database %s holds no Drover data: "
                "this key file belongs to another database; give that database, or "
                "an empty state directory",
                p->state_dir, keys, dv_install_is_pg(p->database) ? "given" : p->database);
    }
    return TRUE;
}

/* --- install: an existing installation -------------------------------------------- */

static void
dv_install_push(GPtrArray *argv, const char *option, const char *value)
{
    if (value == NULL)
        return;
    g_ptr_array_add(argv, g_strdup(option));
    g_ptr_array_add(argv, g_strdup(value));
}

/* The start of the argv (owned) that runs this binary again: its path,
 * @words (NULL-terminated), then the state dir, the database and the
 * machine-id file, which every such run needs. */
static GPtrArray *
dv_install_self_argv(DvInstallPlan *p, const char *const *words)
{
    GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);

    g_ptr_array_add(argv, g_strdup("/proc/self/exe"));
    for (guint i = 0; words[i] != NULL; i++)
        g_ptr_array_add(argv, g_strdup(words[i]));
    dv_install_push(argv, "--state-dir", p->state_dir);
    dv_install_push(argv, "--database", p->database);
    dv_install_push(argv, "--machine-id-file", o_machine_id);
    return argv;
}

/* Runs "drover-setup upgrade" (this binary) on the existing installation
 * with the options install was given, and waits for it. */
static gboolean
dv_install_run_upgrade(DvInstallPlan *p, GError **error)
{
    static const char *const words[] = { "drover-setup", "upgrade", NULL };
    g_autoptr(GPtrArray) argv = dv_install_self_argv(p, words);
    g_autofree char *shown = NULL;
    int status = 0;

    /* The account the unit will run as (install's default when not given),
     * so upgrade re-wraps for the same one. */
    dv_install_push(argv, "--service-account", p->account);
    dv_install_push(argv, "--service-dn", o_service_dn);
    dv_install_push(argv, "--service-password-file", o_service_pw_file);
    if (o_directory) {
        dv_install_push(argv, "--ldap-uri", o_ldap_uri);
        dv_install_push(argv, "--container", o_container);
        dv_install_push(argv, "--ca-file", o_ca_file);
        dv_install_push(argv, "--admin-dn", o_admin_dn);
        dv_install_push(argv, "--admin-password-file", o_admin_pw_file);
        dv_install_push(argv, "--config-admin-uri", o_config_admin_uri);
        dv_install_push(argv, "--group-dn", o_group_dn);
        for (guint i = 0; o_non_members != NULL && o_non_members[i] != NULL; i++)
            dv_install_push(argv, "--non-member", o_non_members[i]);
    }
    dv_install_push(argv, "--recovery-key", o_recovery_key);
    dv_install_push(argv, "--library-share", o_share_choice);
    g_ptr_array_add(argv, NULL);
    {
        /* The command as it runs, without a password in a URI. */
        g_autoptr(GString) s = g_string_new(NULL);
        for (guint i = 1; i < argv->len - 1; i++) {
            const char *a = g_ptr_array_index(argv, i);
            g_autofree char *q = NULL;
            if (dv_install_is_pg(a)) {
                /* user:password@ before the host */
                const char *at = strchr(a, '@');
                const char *colon = strchr(strstr(a, "://") + 3, ':');
                if (at != NULL && colon != NULL && colon < at)
                    a = "postgresql://(password hidden)";
            }
            q = g_shell_quote(a);
            g_string_append_printf(s, "%s%s", i > 1 ? " " : "", strchr(a, ' ') != NULL ? q : a);
        }
        shown = g_string_free(g_steal_pointer(&s), FALSE);
    }
    g_print("running: %s\n", shown);
    fflush(stdout);
    fflush(stderr);
    if (!g_spawn_sync(NULL, (char **)argv->pdata, NULL,
                      G_SPAWN_CHILD_INHERITS_STDIN | G_SPAWN_FILE_AND_ARGV_ZERO, NULL, NULL, NULL,
                      NULL, &status, error)) {
        dv_error_convert(error);
        return FALSE;
    }
    if (!g_spawn_check_wait_status(status, NULL)) {
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL,
                    "drover-setup upgrade did not finish (exit %d); install stopped there: the "
                    "database and the keys are as upgrade left them",
                    code);
        return FALSE;
    }
    return TRUE;
}

/* The config file of an earlier install, if there is one. */
static GKeyFile *
dv_install_load_config(const char *path, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, error)) {
        dv_error_convert(error);
        g_prefix_error(error, "cannot read %s: ", path);
        return NULL;
    }
    return g_steal_pointer(&kf);
}

/* --- install: doing it --------------------------------------------------------------- */

static gboolean
dv_install_account(DvInstallPlan *p, GError **error)
{
    struct passwd *pw;

    if (!p->account_exists) {
        const char *nologin = g_file_test("/usr/sbin/nologin", G_FILE_TEST_IS_EXECUTABLE)
                                  ? "/usr/sbin/nologin"
                                  : "/sbin/nologin";
        const char *argv[] = { "useradd",      "--system",
                               "--user-group", "--home-dir",
                               p->state_dir,   "--no-create-home",
                               "--shell",      nologin,
                               "--comment",    "Drover management server",
                               p->account,     NULL };
        if (!dv_install_run(argv, error))
            return FALSE;
    }
    pw = getpwnam(p->account);
    if (pw == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "account %s cannot be found after useradd",
                    p->account);
        return FALSE;
    }
    p->uid = pw->pw_uid;
    p->gid = pw->pw_gid;
    if (!p->account_exists)
        g_print("created system account %s (uid %u), home %s, shell nologin\n", p->account,
                (guint)p->uid, p->state_dir);
    else
        g_print("using existing account %s (uid %u)\n", p->account, (guint)p->uid);
    if (p->libvirt_group && !p->libvirt_member) {
        const char *argv[] = { "usermod", "--append", "--groups", "libvirt", p->account, NULL };
        if (!dv_install_run(argv, error))
            return FALSE;
        g_print("added %s to group libvirt (qemu:///system)\n", p->account);
    } else if (!p->libvirt_group) {
        g_print("note: there is no group libvirt here; give %s access to libvirtd yourself\n",
                p->account);
    }
    return TRUE;
}

static gboolean
dv_install_copy_owned(const char *src, const char *dest, mode_t mode, DvInstallPlan *p,
                      GError **error)
{
    g_autofree char *data = NULL;
    gsize len = 0;

    if (!g_file_get_contents(src, &data, &len, error)) {
        dv_error_convert(error);
        return FALSE;
    }
    return dv_install_write_file(dest, data, len, mode, p->uid, p->gid, error);
}

static gboolean
dv_install_tls(DvInstallPlan *p, GError **error)
{
    g_autofree char *dir = NULL;

    if (p->tls_cert == NULL)
        return TRUE;
    dir = g_path_get_dirname(p->tls_cert);
    if (!dv_install_mkdir(dir, 0700, p->uid, p->gid, error))
        return FALSE;
    if (o_self_signed) {
        g_autofree char *subj = g_strdup_printf("/CN=%s", g_get_host_name());
        g_autoptr(GInetAddress) addr = g_inet_address_new_from_string(p->listen_host);
        g_autofree char *san = NULL;
        if (addr != NULL && !g_inet_address_get_is_any(addr))
            san = g_strdup_printf("subjectAltName=DNS:%s,DNS:localhost,IP:%s%s", g_get_host_name(),
                                  p->listen_host,
                                  g_inet_address_get_is_loopback(addr) ? "" : ",IP:127.0.0.1");
        else
            san = g_strdup_printf("subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1",
                                  g_get_host_name());
        {
            const char *argv[] = { "openssl", "req",     "-x509",    "-newkey", "rsa:2048",
                                   "-nodes",  "-keyout", p->tls_key, "-out",    p->tls_cert,
                                   "-days",   "825",     "-subj",    subj,      "-addext",
                                   san,       NULL };
            if (g_file_test(p->tls_cert, G_FILE_TEST_EXISTS)) {
                g_print("kept the TLS certificate %s\n", p->tls_cert);
            } else {
                if (!dv_install_run(argv, error)) {
                    g_prefix_error(error, "cannot make a self-signed certificate: ");
                    return FALSE;
                }
                g_print("made a self-signed TLS certificate %s (%s)\n", p->tls_cert,
                        san + strlen("subjectAltName="));
            }
        }
        if (chown(p->tls_key, p->uid, p->gid) != 0 || g_chmod(p->tls_key, 0600) != 0 ||
            chown(p->tls_cert, p->uid, p->gid) != 0 || g_chmod(p->tls_cert, 0644) != 0) {
            g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot give %s to %s: %s", dir,
                        p->account, g_strerror(errno));
            return FALSE;
        }
        return TRUE;
    }
    if (!dv_install_copy_owned(o_tls_cert, p->tls_cert, 0644, p, error) ||
        !dv_install_copy_owned(o_tls_key, p->tls_key, 0600, p, error))
        return FALSE;
    g_print("copied the TLS certificate and key to %s (key 0600, owned by %s)\n", dir, p->account);
    return TRUE;
}

static void
dv_install_child_setup(gpointer data)
{
    DvInstallPlan *p = data;
    /* Exactly the service account: its groups, gid and uid, as droverd
     * under the unit runs. */
    if (initgroups(p->account, p->gid) != 0 || setgid(p->gid) != 0 || setuid(p->uid) != 0)
        _exit(126);
}

/* Runs this binary again as the service account to make the database, the
 * keys, the default share and the first user. */
static gboolean
dv_install_init_as_service(DvInstallPlan *p, const char *bind_pw_copy, const char *ca_copy,
                           const char *recovery_tmp, GError **error)
{
    static const char *const words[] = { "install", "--as-service-init", NULL };
    g_autoptr(GPtrArray) argv = dv_install_self_argv(p, words);
    g_auto(GStrv) env = g_get_environ();
    int status = 0;

    dv_install_push(argv, "--library-share-name", p->share_name);
    dv_install_push(argv, "--library-share-path", p->share_path);
    dv_install_push(argv, "--recovery-key-tmp", recovery_tmp);
    if (o_directory) {
        g_ptr_array_add(argv, g_strdup("--directory"));
        dv_install_push(argv, "--ldap-uri", o_ldap_uri);
        dv_install_push(argv, "--container", o_container);
        dv_install_push(argv, "--service-dn", o_service_dn);
        dv_install_push(argv, "--service-password-file", bind_pw_copy);
        dv_install_push(argv, "--ca-file", ca_copy);
    }
    g_ptr_array_add(argv, NULL);
    env = g_environ_setenv(env, "HOME", p->state_dir, TRUE);
    env = g_environ_setenv(env, "USER", p->account, TRUE);
    env = g_environ_setenv(env, "LOGNAME", p->account, TRUE);
    if (!g_spawn_sync(p->state_dir, (char **)argv->pdata, env, G_SPAWN_CHILD_INHERITS_STDIN,
                      dv_install_child_setup, p, NULL, NULL, &status, error)) {
        dv_error_convert(error);
        return FALSE;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 126) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot run as account %s", p->account);
        return FALSE;
    }
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL,
                    "making the database and keys as %s failed (see the message above)",
                    p->account);
        return FALSE;
    }
    return TRUE;
}

/* The recovery key the service-account step wrote into a private temp dir
 * moves to --recovery-key-out, written once as root (0600). */
static gboolean
dv_install_move_recovery(const char *tmp, GError **error)
{
    g_autofree char *data = NULL;
    gsize len = 0;
    gsize done = 0;
    int fd;

    if (!g_file_get_contents(tmp, &data, &len, error)) {
        dv_error_convert(error);
        return FALSE;
    }
    fd = open(o_recovery_out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT, "cannot write the recovery key to %s: %s",
                    o_recovery_out, g_strerror(errno));
        return FALSE;
    }
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (gsize)n;
    }
    if (done < len || fsync(fd) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot write the recovery key to %s: %s",
                    o_recovery_out, g_strerror(errno));
        close(fd);
        return FALSE;
    }
    close(fd);
    memset(data, 0, len);
    g_unlink(tmp);
    g_print("recovery key written once to %s (0600): keep it offline; it opens every secret on any "
            "machine\n",
            o_recovery_out);
    return TRUE;
}

static char *
dv_install_template(const char *name, GError **error)
{
    g_autofree char *path = g_strconcat("/org/drover/setup/", name, NULL);
    g_autoptr(GBytes) bytes = g_resources_lookup_data(path, G_RESOURCE_LOOKUP_FLAGS_NONE, error);
    if (bytes == NULL)
        return NULL;
    return g_strndup(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
}

/* Replaces @KEY@ in @text; a line holding only a key that is replaced by ""
 * disappears. */
static void
dv_install_subst(GString *text, const char *key, const char *value)
{
    g_autofree char *token = g_strdup_printf("@%s@", key);
    g_autofree char *line = g_strdup_printf("%s\n", token);
    if (value == NULL || value[0] == '\0') {
        g_string_replace(text, line, "", 0);
        g_string_replace(text, token, "", 0);
        return;
    }
    g_string_replace(text, token, value, 0);
}

static gboolean
dv_install_write_config(DvInstallPlan *p, GError **error)
{
    g_autofree char *tmpl = dv_install_template("droverd.conf.in", error);
    g_autoptr(GString) s = NULL;
    g_autofree char *tls = NULL;
    g_autofree char *mid = NULL;
    g_autofree char *dn = NULL;
    g_autofree char *rec = NULL;

    if (tmpl == NULL)
        return FALSE;
    s = g_string_new(tmpl);
    if (p->tls_cert != NULL)
        tls = g_strdup_printf("tls_cert=%s\ntls_key=%s", p->tls_cert, p->tls_key);
    if (o_machine_id != NULL)
        mid = g_strdup_printf("machine_id_file=%s", o_machine_id);
    if (o_service_dn != NULL)
        dn = g_strdup_printf("service_dn=%s", o_service_dn);
    if (o_recovery_out != NULL)
        rec = g_strdup_printf("recovery_key_out=%s", o_recovery_out);
    dv_install_subst(s, "STATE_DIR", p->state_dir);
    dv_install_subst(s, "DATABASE", p->database);
    dv_install_subst(s, "LISTEN", p->listen);
    dv_install_subst(s, "TLS", tls);
    dv_install_subst(s, "MACHINE_ID_FILE", mid);
    dv_install_subst(s, "VERSION", DV_VERSION);
    dv_install_subst(s, "USER", p->account);
    dv_install_subst(s, "ACCOUNT_CREATED", p->account_exists ? "false" : "true");
    dv_install_subst(s, "SERVICE_DN", dn);
    dv_install_subst(s, "SHARE_NAME", p->share_name);
    dv_install_subst(s, "SHARE_PATH", p->share_path);
    dv_install_subst(s, "UNIT", p->unit_path);
    dv_install_subst(s, "RECOVERY_KEY_OUT", rec);
    if (!g_file_test(p->config_dir, G_FILE_TEST_IS_DIR) &&
        !dv_install_mkdir(p->config_dir, 0755, (uid_t)-1, (gid_t)-1, error))
        return FALSE;
    /* Readable by the service account's group (a PostgreSQL URI may hold a
     * password), written by root only. */
    if (!dv_install_write_file(p->config_path, s->str, s->len, 0640, 0, p->gid, error))
        return FALSE;
    g_print("wrote %s (0640, group %s)\n", p->config_path, p->account);
    return TRUE;
}

static gboolean
dv_install_write_unit(DvInstallPlan *p, GError **error)
{
    g_autofree char *tmpl = dv_install_template("drover.service.in", error);
    g_autoptr(GString) s = NULL;
    g_autofree char *rw = NULL;
    struct group *gr = getgrgid(p->gid);

    if (tmpl == NULL)
        return FALSE;
    s = g_string_new(tmpl);
    if (g_str_has_prefix(p->share_path, p->state_dir) &&
        (p->share_path[strlen(p->state_dir)] == '/' || p->share_path[strlen(p->state_dir)] == '\0'))
        rw = g_strdup(p->state_dir);
    else
        rw = g_strdup_printf("%s %s", p->state_dir, p->share_path);
    dv_install_subst(s, "USER", p->account);
    dv_install_subst(s, "GROUP", gr != NULL ? gr->gr_name : p->account);
    dv_install_subst(s, "SUPPLEMENTARY_GROUPS",
                     p->libvirt_group ? "SupplementaryGroups=libvirt" : NULL);
    dv_install_subst(s, "DROVERD", p->droverd);
    dv_install_subst(s, "CONFIG", p->config_path);
    dv_install_subst(s, "READ_WRITE_PATHS", rw);
    if (!dv_install_write_file(p->unit_path, s->str, s->len, 0644, 0, 0, error))
        return FALSE;
    g_print("wrote the systemd unit %s\n", p->unit_path);
    if (p->reload_systemd) {
        const char *argv[] = { "systemctl", "daemon-reload", NULL };
        if (!dv_install_run(argv, error))
            return FALSE;
        g_print("systemd reloaded; start droverd with:  systemctl enable --now %s\n",
                DV_INSTALL_UNIT_NAME);
    } else if (p->unit_in_state_dir) {
        g_print("systemd is not running here, so the unit was not installed. Start droverd by hand "
                "with:\n"
                "  setpriv --reuid=%s --regid=%s --init-groups --no-new-privs %s --config %s\n",
                p->account, gr != NULL ? gr->gr_name : p->account, p->droverd, p->config_path);
    } else {
        g_print(
            "to use it: copy it to %s, then systemctl daemon-reload && systemctl enable --now %s\n",
            DV_INSTALL_SYSTEMD_DIR, DV_INSTALL_UNIT_NAME);
    }
    return TRUE;
}

static int
dv_install_fail(const GError *error)
{
    g_printerr("drover-setup: %s\n", error->message);
    return dv_error_to_exit_code(error);
}

gboolean
dv_setup_directory_init(DvDirectory *dir, const DvSetupDirectoryInit *d, guint *ret_n_non_members,
                        GError **error)
{
    g_autoptr(GArray) non_members = g_array_new(FALSE, TRUE, sizeof(DvDirectoryConn));
    g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func(g_free);
    DvDirectoryInitOptions io = { 0 };
    DvDirectoryConn config_admin = { 0 };

    io.admin.uri = d->ldap_uri;
    io.admin.bind_dn = d->admin_dn;
    io.admin.password_file = d->admin_password_file;
    io.admin.ca_file = d->ca_file;
    if (d->config_admin_uri != NULL) {
        config_admin.uri = d->config_admin_uri;
        config_admin.sasl_external = TRUE;
        io.config_admin = &config_admin;
    }
    io.acl_mode = DV_DIRECTORY_ACL_OPENLDAP;
    io.service_dn = d->service_dn;
    io.group_dn = d->group_dn;
    for (guint i = 0; d->non_members != NULL && d->non_members[i] != NULL; i++) {
        DvDirectoryConn c = { 0 };
        const char *eq = strrchr(d->non_members[i], '=');
        char *dn;
        if (eq == NULL) {
            g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT, "--non-member takes DN=PASSWORD_FILE");
            return FALSE;
        }
        dn = g_strndup(d->non_members[i], eq - d->non_members[i]);
        g_ptr_array_add(keep, dn);
        c.uri = d->ldap_uri;
        c.bind_dn = dn;
        c.password_file = eq + 1;
        c.ca_file = d->ca_file;
        g_array_append_val(non_members, c);
    }
    io.non_members = (const DvDirectoryConn *)(gpointer)non_members->data;
    io.n_non_members = non_members->len;
    if (!dv_directory_init(dir, &io, error))
        return FALSE;
    if (ret_n_non_members != NULL)
        *ret_n_non_members = non_members->len;
    return TRUE;
}

/* The directory container, its ACL and the proof, as the directory
 * administrator.  Only the directory is written. */
static gboolean
dv_install_directory_init(GError **error)
{
    g_autoptr(DvDirectory) dir = NULL;
    g_autoptr(GError) local = NULL;
    DvDirectoryOptions o = { 0 };
    const DvSetupDirectoryInit d = {
        .ldap_uri = o_ldap_uri,
        .ca_file = o_ca_file,
        .admin_dn = o_admin_dn,
        .admin_password_file = o_admin_pw_file,
        .config_admin_uri = o_config_admin_uri,
        .service_dn = o_service_dn,
        .group_dn = o_group_dn,
        .non_members = o_non_members,
    };
    guint n_non_members = 0;

    o.conn.uri = o_ldap_uri;
    o.conn.bind_dn = o_service_dn;
    o.conn.password_file = o_service_pw_file;
    o.conn.ca_file = o_ca_file;
    o.container_dn = o_container;
    dir = dv_directory_new(&o, error);
    if (dir == NULL)
        return FALSE;
    if (!dv_setup_directory_init(dir, &d, &n_non_members, &local)) {
        dv_set_field_error(error, (DvErrorCode)local->code, "ldap-uri", "--ldap-uri: %s", local->message);
        return FALSE;
    }
    g_print("directory container %s ready; its ACL admits only %s%s; proved: anonymous and %u "
            "non-member identities cannot read it\n",
            o_container, o_service_dn, o_group_dn != NULL ? " and its group" : "", n_non_members);
    return TRUE;
}

/* What install made, so a failure half-way can take it back. */
typedef struct {
    gboolean account_created;
    gboolean pg_populated;    /* install migrated an empty PostgreSQL database */
    gboolean state_was_empty; /* missing or empty: cleared on failure */
    gboolean state_existed;
    GPtrArray *paths; /* made by install, outside a cleared state dir */
} DvInstallUndo;

static void
dv_install_undo_clear(DvInstallUndo *u)
{
    g_clear_pointer(&u->paths, g_ptr_array_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(DvInstallUndo, dv_install_undo_clear)

static gboolean dv_install_remove_tree(const char *path, GError **error);

static void
dv_install_undo(DvInstallPlan *p, DvInstallUndo *u)
{
    for (guint i = u->paths->len; i > 0; i--) {
        const char *path = g_ptr_array_index(u->paths, i - 1);
        if (g_file_test(path, G_FILE_TEST_EXISTS) && dv_install_remove_tree(path, NULL))
            g_printerr("  removed %s\n", path);
    }
    if (u->state_was_empty && g_file_test(p->state_dir, G_FILE_TEST_IS_DIR)) {
        if (!u->state_existed) {
            if (dv_install_remove_tree(p->state_dir, NULL))
                g_printerr("  removed %s\n", p->state_dir);
        } else {
            g_autoptr(GDir) dir = g_dir_open(p->state_dir, 0, NULL);
            const char *name;
            while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
                g_autofree char *child = g_build_filename(p->state_dir, name, NULL);
                dv_install_remove_tree(child, NULL);
            }
            g_printerr("  emptied %s again\n", p->state_dir);
        }
    }
    if (u->pg_populated) {
        g_autoptr(GError) local = NULL;
        if (dv_store_drop_new_pg(p->database, &local))
            g_printerr("  dropped the tables install made in the PostgreSQL database\n");
        else
            g_printerr("  the PostgreSQL database keeps the tables install made: %s\n",
                       local->message);
    }
    if (u->account_created) {
        const char *argv[] = { "userdel", p->account, NULL };
        if (dv_install_run(argv, NULL))
            g_printerr("  removed the account %s\n", p->account);
    }
}

static void
dv_install_note_new(DvInstallUndo *u, DvInstallPlan *p, const char *path)
{
    gboolean in_state = g_str_has_prefix(path, p->state_dir) &&
                        (path[strlen(p->state_dir)] == '/' || path[strlen(p->state_dir)] == '\0');
    if (!g_file_test(path, G_FILE_TEST_EXISTS) && !(in_state && u->state_was_empty))
        g_ptr_array_add(u->paths, g_strdup(path));
}

/* Everything after validation.  @existing: the database holds Drover data,
 * so upgrade handles the database and the keys and install only the rest. */
static gboolean
dv_install_apply(DvInstallPlan *p, gboolean existing, DvInstallUndo *u, GError **error)
{
    g_autofree char *bind_pw_copy = NULL;
    g_autofree char *ca_copy = NULL;
    g_autofree char *recovery_dir = NULL;
    g_autofree char *recovery_tmp = NULL;

    if (o_directory && !existing && !dv_install_directory_init(error))
        return FALSE;
    if (!dv_install_account(p, error))
        return FALSE;
    u->account_created = !p->account_exists;
    if (existing && !dv_install_run_upgrade(p, error))
        return FALSE;
    dv_install_note_new(u, p, p->state_dir);
    if (!dv_install_mkdir(p->state_dir, 0700, p->uid, p->gid, error))
        return FALSE;
    g_print("state directory %s (0700, owned by %s)\n", p->state_dir, p->account);
    if (!dv_install_tls(p, error))
        return FALSE;
    if (!g_file_test(p->share_path, G_FILE_TEST_IS_DIR)) {
        dv_install_note_new(u, p, p->share_path);
        if (!dv_install_mkdir(p->share_path, 0755, p->uid, p->gid, error))
            return FALSE;
        g_print("library share directory %s (owned by %s)\n", p->share_path, p->account);
    } else if (chown(p->share_path, p->uid, p->gid) != 0) {
        dv_set_field_error(error, DV_ERROR_INTERNAL, "library-share-path",
                           "--library-share-path: cannot give %s to %s: %s", p->share_path,
                           p->account, g_strerror(errno));
        return FALSE;
    }
    if (!existing) {
        if (o_directory) {
            /* droverd binds with these at every start, as the service account. */
            bind_pw_copy = g_build_filename(p->state_dir, "directory-bind.password", NULL);
            if (!dv_install_copy_owned(o_service_pw_file, bind_pw_copy, 0600, p, error))
                return FALSE;
            if (o_ca_file != NULL) {
                ca_copy = g_build_filename(p->state_dir, "directory-ca.pem", NULL);
                if (!dv_install_copy_owned(o_ca_file, ca_copy, 0644, p, error))
                    return FALSE;
            }
            g_print("directory bind password copied to %s (0600, owned by %s)\n", bind_pw_copy,
                    p->account);
        }
        if (o_recovery_out != NULL) {
            g_autofree char *tmpl = g_build_filename(p->state_dir, ".recovery-XXXXXX", NULL);
            recovery_dir = g_mkdtemp_full(g_steal_pointer(&tmpl), 0700);
            if (recovery_dir == NULL || chown(recovery_dir, p->uid, p->gid) != 0) {
                g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL,
                            "cannot make a private directory in %s: %s", p->state_dir,
                            g_strerror(errno));
                return FALSE;
            }
            recovery_tmp = g_build_filename(recovery_dir, "recovery.key", NULL);
        }
        if (dv_install_is_pg(p->database)) {
            u->pg_populated = TRUE;
        } else {
            g_autofree char *wal = g_strconcat(p->database, "-wal", NULL);
            g_autofree char *shm = g_strconcat(p->database, "-shm", NULL);
            dv_install_note_new(u, p, p->database);
            dv_install_note_new(u, p, wal);
            dv_install_note_new(u, p, shm);
        }
        {
            gboolean ok = dv_install_init_as_service(p, bind_pw_copy, ca_copy, recovery_tmp, error);
            if (ok && recovery_tmp != NULL)
                ok = dv_install_move_recovery(recovery_tmp, error);
            if (recovery_dir != NULL) {
                g_unlink(recovery_tmp);
                g_rmdir(recovery_dir);
            }
            if (!ok)
                return FALSE;
        }
    }
    dv_install_note_new(u, p, p->config_dir);
    dv_install_note_new(u, p, p->config_path);
    if (!dv_install_write_config(p, error))
        return FALSE;
    if (!g_file_test(p->unit_dir, G_FILE_TEST_IS_DIR)) {
        dv_install_note_new(u, p, p->unit_dir);
        if (!dv_install_mkdir(p->unit_dir, 0755, (uid_t)-1, (gid_t)-1, error))
            return FALSE;
    }
    dv_install_note_new(u, p, p->unit_path);
    return dv_install_write_unit(p, error);
}

static int
dv_install(void)
{
    g_auto(DvInstallPlan) p = { 0 };
    g_auto(DvInstallUndo) undo = { 0 };
    g_autoptr(GError) error = NULL;
    gboolean existing;

    if (geteuid() != 0) {
        g_printerr("drover-setup: install runs as root (it creates an account and writes /etc)\n");
        return DV_EXIT_USAGE;
    }
    if (!dv_install_validate(&p, &error)) {
        g_printerr("drover-setup: %s\nnothing was changed\n", error->message);
        return dv_error_to_exit_code(error);
    }

    /* An earlier install with the same state directory and database. */
    if (g_file_test(p.config_path, G_FILE_TEST_EXISTS)) {
        g_autoptr(GKeyFile) kf = dv_install_load_config(p.config_path, &error);
        g_autofree char *state = NULL;
        g_autofree char *db = NULL;
        if (kf == NULL)
            return dv_install_fail(error);
        state = g_key_file_get_string(kf, "server", "state_dir", NULL);
        db = g_key_file_get_string(kf, "server", "database", NULL);
        if (g_strcmp0(state, p.state_dir) != 0 || g_strcmp0(db, p.database) != 0) {
            g_printerr("drover-setup: --config-dir: %s belongs to another installation (state "
                       "directory %s, database %s); uninstall it first or give another "
                       "--config-dir\nnothing was changed\n",
                       p.config_path, state != NULL ? state : "?", db != NULL ? db : "?");
            return DV_EXIT_CONFLICT;
        }
        if (p.db.content == DV_STORE_CONTENT_DROVER &&
            p.db.schema_version == dv_store_get_known_version()) {
            g_print("already installed: %s (state directory %s, schema %u, %" G_GINT64_FORMAT
                    " secrets); no key was made and nothing was changed\n",
                    p.config_path, p.state_dir, p.db.schema_version, p.db.sealed_count);
            return DV_EXIT_OK;
        }
    }
    /* A droverd holding the database: refused before anything changes
     * (the upgrade of existing data takes the lock again itself). */
    if (g_file_test(p.database, G_FILE_TEST_EXISTS)) {
        g_autoptr(DvStoreLock) lock =
            dv_store_lock_acquire(p.database, "drover-setup install", &error);
        if (lock == NULL) {
            g_printerr("drover-setup: %s\nnothing was changed\n", error->message);
            return dv_error_to_exit_code(error);
        }
    }
    existing = p.db.content == DV_STORE_CONTENT_DROVER;
    if (existing)
        g_print("this database already holds a Drover installation (schema %u, %" G_GINT64_FORMAT
                " secrets); switching to upgrade: install makes no key and leaves the database "
                "and the key files to upgrade\n",
                p.db.schema_version, p.db.sealed_count);
    else
        g_print("installing Drover %s: state directory %s, database %s\n", DV_VERSION, p.state_dir,
                dv_install_is_pg(p.database) ? "PostgreSQL (given URI)" : p.database);

    undo.paths = g_ptr_array_new_with_free_func(g_free);
    undo.state_existed = g_file_test(p.state_dir, G_FILE_TEST_IS_DIR);
    undo.state_was_empty = !existing && dv_install_dir_is_empty(p.state_dir);
    if (!dv_install_apply(&p, existing, &undo, &error)) {
        g_printerr("drover-setup: %s\ninstall failed; taking back what it made:\n", error->message);
        dv_install_undo(&p, &undo);
        return dv_error_to_exit_code(error);
    }
    g_print(existing ? "installed on the upgraded database\n" : "installed\n");
    return DV_EXIT_OK;
}

/* --- the part that runs as the service account ----------------------------------------- */

typedef DvKeyProtector DvInstallProtector;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvInstallProtector, dv_key_protector_free)

static int
dv_install_as_service(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvEngine) engine = NULL;
    g_autoptr(JsonArray) check = NULL;
    g_autofree char *current = NULL;
    gboolean created = FALSE;
    DvEngineOptions eo = { 0 };

    if (o_state_dir == NULL || o_database == NULL) {
        g_printerr("drover-setup: --as-service-init is internal to install\n");
        return DV_EXIT_USAGE;
    }
    eo.state_dir = o_state_dir;
    eo.database = o_database;
    eo.machine_id_path = o_machine_id;
    eo.no_recover = TRUE;
    eo.job_workers = 1;
    eo.default_share_name = o_share_name;
    eo.default_share_path = o_share_path;
    /* Migrates the new database, makes the installation id, key k1 in the
     * host key file (this account, this machine) and the default share:
     * what droverd's first start would do. */
    engine = dv_engine_new(&eo, &error);
    if (engine == NULL)
        return dv_install_fail(error);
    current = dv_keyring_dup_current_key_id(dv_engine_get_keyring(engine));
    if (current == NULL) {
        g_printerr("drover-setup: no key version was made\n");
        return DV_EXIT_FAILURE;
    }
    g_print("database ready at schema %u; key %s made and wrapped in %s/keys/host.key (uid %u, "
            "this machine)\n",
            dv_store_get_schema_version(dv_engine_get_store(engine), NULL), current, o_state_dir,
            (guint)geteuid());
    if (o_directory) {
        g_autoptr(DvDirectorySettings) settings = dv_directory_settings_new(
            o_ldap_uri, o_container, o_service_dn, o_service_pw_file, FALSE, o_ca_file, NULL, NULL);
        g_autoptr(DvInstallProtector) protector = dv_directory_settings_protector(
            settings, dv_engine_get_installation_id(engine), &error);
        g_autoptr(JsonObject) config = NULL;
        g_autofree char *conf_path = dv_directory_settings_path(o_state_dir);
        if (protector == NULL)
            return dv_install_fail(error);
        config = dv_directory_settings_to_config(settings);
        if (!dv_keyring_add_protector(dv_engine_get_keyring(engine), protector, config, &error) ||
            !dv_directory_settings_save(settings, conf_path, &error))
            return dv_install_fail(error);
        g_print("key %s also wrapped in the directory (%s); settings in %s\n", current, o_container,
                conf_path);
        /* The keyring borrows the protector: free it before the keyring. */
        g_clear_pointer(&engine, dv_engine_free);
    }
    if (engine == NULL) {
        eo.default_share_name = NULL;
        engine = dv_engine_new(&eo, &error);
        if (engine == NULL)
            return dv_install_fail(error);
    }
    if (o_recovery_tmp != NULL) {
        if (!dv_keyring_recovery_create(dv_engine_get_keyring(engine), o_recovery_tmp, &error))
            return dv_install_fail(error);
        g_print("key %s sealed to a new recovery key\n", current);
    }
    if (!dv_auth_ensure_admin(dv_engine_get_auth(engine), o_state_dir, &created, &error))
        return dv_install_fail(error);
    if (created)
        g_print("first user 'admin'; its password is in %s/initial-admin-password (readable by %s "
                "only)\n",
                o_state_dir, g_get_user_name());
    check = dv_keyring_check(dv_engine_get_keyring(engine), &error);
    if (check == NULL)
        return dv_install_fail(error);
    for (guint i = 0; i < json_array_get_length(check); i++) {
        JsonObject *v = json_array_get_object_element(check, i);
        if (!dv_json_get_bool(v, "open", FALSE)) {
            g_printerr("drover-setup: key %s does not open as %s: %s\n",
                       dv_json_get_string(v, "key_id", "?"), g_get_user_name(),
                       dv_json_get_string(v, "reason", "?"));
            return DV_EXIT_FAILURE;
        }
    }
    return DV_EXIT_OK;
}

/* --- uninstall ------------------------------------------------------------------------------- */

static gboolean
dv_install_remove_tree(const char *path, GError **error)
{
    g_autoptr(GFile) file = g_file_new_for_path(path);
    g_autoptr(GFileEnumerator) e = NULL;
    GFileInfo *info;
    struct stat st;

    if (lstat(path, &st) != 0)
        return TRUE;
    if (S_ISDIR(st.st_mode)) {
        e = g_file_enumerate_children(file, G_FILE_ATTRIBUTE_STANDARD_NAME,
                                      G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, error);
        if (e == NULL) {
            dv_error_convert(error);
            return FALSE;
        }
        while ((info = g_file_enumerator_next_file(e, NULL, error)) != NULL) {
            g_autofree char *child = g_build_filename(path, g_file_info_get_name(info), NULL);
            g_object_unref(info);
            if (!dv_install_remove_tree(child, error))
                return FALSE;
        }
        if (error != NULL && *error != NULL) {
            dv_error_convert(error);
            return FALSE;
        }
        if (g_rmdir(path) != 0) {
            g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot remove %s: %s", path,
                        g_strerror(errno));
            return FALSE;
        }
        return TRUE;
    }
    if (g_unlink(path) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot remove %s: %s", path,
                    g_strerror(errno));
        return FALSE;
    }
    return TRUE;
}

static int
dv_uninstall(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GKeyFile) kf = NULL;
    g_autofree char *root = g_strdup(o_root != NULL ? o_root : "/");
    g_autofree char *config_dir =
        o_config_dir != NULL ? g_strdup(o_config_dir) : dv_install_under_root(root, "/etc/drover");
    g_autofree char *config_path = g_build_filename(config_dir, "droverd.conf", NULL);
    g_autofree char *state = NULL;
    g_autofree char *db = NULL;
    g_autofree char *unit = NULL;
    g_autofree char *account = NULL;
    g_autofree char *share = NULL;
    g_autofree char *recovery = NULL;
    gboolean account_created;

    if (geteuid() != 0) {
        g_printerr("drover-setup: uninstall runs as root\n");
        return DV_EXIT_USAGE;
    }
    if (o_keep_data && o_yes_delete) {
        g_printerr("drover-setup: --keep-data and --yes-delete-data: give one of them\nnothing was "
                   "changed\n");
        return DV_EXIT_USAGE;
    }
    if (!g_file_test(config_path, G_FILE_TEST_EXISTS)) {
        g_printerr("drover-setup: no installation here: %s does not exist\nnothing was changed\n",
                   config_path);
        return DV_EXIT_NOT_FOUND;
    }
    kf = dv_install_load_config(config_path, &error);
    if (kf == NULL)
        return dv_install_fail(error);
    state = g_key_file_get_string(kf, "server", "state_dir", NULL);
    db = g_key_file_get_string(kf, "server", "database", NULL);
    unit = g_key_file_get_string(kf, "install", "unit", NULL);
    account = g_key_file_get_string(kf, "server", "service_account", NULL);
    share = g_key_file_get_string(kf, "install", "library_share_path", NULL);
    recovery = g_key_file_get_string(kf, "install", "recovery_key_out", NULL);
    account_created = g_key_file_get_boolean(kf, "install", "account_created", NULL);
    if (state == NULL || db == NULL || unit == NULL || account == NULL) {
        g_printerr("drover-setup: %s was not written by drover-setup install (no state_dir, "
                   "database, unit or "
                   "service_account); nothing was changed\n",
                   config_path);
        return DV_EXIT_INVALID;
    }
    if (!o_keep_data && !o_yes_delete) {
        g_printerr("drover-setup: uninstall would delete the database and the keys in %s; give "
                   "--keep-data to keep "
                   "them, or --yes-delete-data to delete them\nnothing was changed\n",
                   state);
        return DV_EXIT_USAGE;
    }
    if (o_remove_account && !account_created) {
        g_printerr("drover-setup: --remove-account: account %s existed before install, so "
                   "uninstall leaves it; "
                   "nothing was changed\n",
                   account);
        return DV_EXIT_CONFLICT;
    }

    if (g_str_has_prefix(unit, DV_INSTALL_SYSTEMD_DIR "/") && dv_install_systemd_running() &&
        g_strcmp0(root, "/") == 0) {
        const char *argv[] = { "systemctl", "disable", "--now", DV_INSTALL_UNIT_NAME, NULL };
        g_autoptr(GError) local = NULL;
        if (!dv_install_run(argv, &local))
            g_print("note: %s\n", local->message);
        else
            g_print("stopped and disabled %s\n", DV_INSTALL_UNIT_NAME);
    }
    /* A droverd still serving the database (started by hand, or by another
     * unit) would lose its files under it: its lock (SQLite, even paused),
     * else its heartbeat. */
    g_autoptr(DvStoreLock) lock = NULL;
    if (g_file_test(db, G_FILE_TEST_EXISTS)) {
        g_autoptr(GError) local = NULL;
        lock = dv_store_lock_acquire(db, "drover-setup uninstall", &local);
        if (lock == NULL) {
            g_printerr("drover-setup: the lock's holder is serving this database; stop it first "
                       "(%s)\nnothing was changed\n",
                       local->message);
            return dv_error_to_exit_code(local);
        }
    }
    {
        g_auto(DvStoreInspection) in = { 0 };
        g_autoptr(GError) local = NULL;
        if (dv_store_inspect(db, &in, &local) && in.server_host != NULL &&
            dv_store_now() - in.server_heartbeat < 60 * G_USEC_PER_SEC &&
            (g_strcmp0(in.server_host, g_get_host_name()) != 0 ||
             (in.server_pid > 0 && kill((pid_t)in.server_pid, 0) == 0))) {
            g_printerr("drover-setup: droverd (pid %" G_GINT64_FORMAT " on %s) is serving this "
                       "database; stop it first\nnothing was changed\n",
                       in.server_pid, in.server_host);
            return DV_EXIT_CONFLICT;
        }
    }
    if (g_file_test(unit, G_FILE_TEST_EXISTS)) {
        if (g_unlink(unit) != 0) {
            g_printerr("drover-setup: cannot remove %s: %s\n", unit, g_strerror(errno));
            return DV_EXIT_FAILURE;
        }
        g_print("removed the unit %s\n", unit);
        if (g_str_has_prefix(unit, DV_INSTALL_SYSTEMD_DIR "/") && dv_install_systemd_running() &&
            g_strcmp0(root, "/") == 0) {
            const char *argv[] = { "systemctl", "daemon-reload", NULL };
            g_autoptr(GError) local = NULL;
            if (!dv_install_run(argv, &local))
                g_print("note: %s\n", local->message);
        }
    }
    if (g_unlink(config_path) != 0) {
        g_printerr("drover-setup: cannot remove %s: %s\n", config_path, g_strerror(errno));
        return DV_EXIT_FAILURE;
    }
    g_print("removed the config %s\n", config_path);
    g_rmdir(config_dir); /* only when empty */

    if (o_keep_data) {
        g_autofree char *host_key = g_build_filename(state, "keys", "host.key", NULL);
        g_autofree char *dir_conf = dv_directory_settings_path(state);
        g_print("kept the data:\n");
        g_print("  database           %s\n",
                dv_install_is_pg(db) ? "the PostgreSQL database of the config's URI" : db);
        if (g_file_test(host_key, G_FILE_TEST_EXISTS))
            g_print("  host key file      %s\n", host_key);
        if (g_file_test(dir_conf, G_FILE_TEST_EXISTS))
            g_print("  directory settings %s (the wrapped keys stay in the directory)\n", dir_conf);
        if (recovery != NULL) {
            g_print("  recovery material  the recovery public key and the keys sealed to it, in "
                    "the database\n");
            g_print("  recovery key file  %s (never touched by uninstall)\n", recovery);
        }
        g_print("  state directory    %s (TLS files, library share %s, initial-admin-password)\n",
                state, share != NULL ? share : "?");
        g_print("a later 'drover-setup install --state-dir %s%s' finds this data and switches to "
                "upgrade\n",
                state, dv_install_is_pg(db) ? " --database <the same URI>" : "");
    } else {
        if (!dv_install_remove_tree(state, &error))
            return dv_install_fail(error);
        g_print("deleted the state directory %s (database, keys, TLS files)\n", state);
        if (dv_install_is_pg(db))
            g_print("the PostgreSQL database still holds Drover's tables: drop it with dropdb if "
                    "it is no longer "
                    "wanted (a later install on it switches to upgrade, and its secrets cannot be "
                    "opened "
                    "without the deleted keys)\n");
        if (share != NULL && g_file_test(share, G_FILE_TEST_IS_DIR))
            g_print("kept the library share directory %s (outside the state directory)\n", share);
    }
    if (o_remove_account) {
        const char *argv[] = { "userdel", account, NULL };
        if (!dv_install_run(argv, &error))
            return dv_install_fail(error);
        g_print("removed the account %s\n", account);
    } else {
        g_print("the account %s was left as it is\n", account);
    }
    g_print("uninstalled\n");
    return DV_EXIT_OK;
}

/* --- entry ---------------------------------------------------------------------------- */

int
dv_setup_install_main(int argc, char **argv)
{
    gboolean install = g_strcmp0(argv[1], "install") == 0;
    g_autoptr(GOptionContext) ctx = g_option_context_new(install ? "install" : "uninstall");
    g_autoptr(GError) error = NULL;

    g_option_context_add_main_entries(ctx, install ? install_entries : uninstall_entries, NULL);
    g_option_context_set_summary(
        ctx, install ? "Install Drover on this machine: database, service account, keys, TLS,\n"
                       "library share, config file and systemd unit (docs/INSTALL.md).\n"
                       "A database that already holds Drover data switches to upgrade."
                     : "Remove the unit and the config; --keep-data keeps the database and\n"
                       "keys, --yes-delete-data deletes the state directory too.");
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        g_printerr("drover-setup: %s\nnothing was changed\n", error->message);
        return DV_EXIT_USAGE;
    }
    if (argc != 2) {
        g_printerr("drover-setup: unexpected argument '%s'\nnothing was changed\n", argv[2]);
        return DV_EXIT_USAGE;
    }
    if (install && o_as_service_init)
        return dv_install_as_service();
    return install ? dv_install() : dv_uninstall();
}
