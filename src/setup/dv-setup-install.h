/* drover-setup install / uninstall: the database, the service account, the
 * keys made as that account, TLS, the default library share, the config
 * file and the systemd unit.  See docs/INSTALL.md. */
#pragma once

#include "dv-keys-directory.h"

#include <glib.h>

G_BEGIN_DECLS

/* Runs "install" or "uninstall" (argv[1]) with its own options; returns
 * the process exit code.  On a database that already holds Drover data,
 * install replaces this process with "drover-setup upgrade" (execv of
 * /proc/self/exe) and does not return. */
int dv_setup_install_main(int argc, char **argv);

/* TRUE when @name is a valid local account name for --service-account:
 * [a-z_][a-z0-9_-]{0,30}[$]? as useradd accepts by default. */
gboolean dv_setup_install_account_name_valid(const char *name);

/* The command-line options the directory init takes (borrowed). */
typedef struct {
    const char *ldap_uri;
    const char *ca_file;
    const char *admin_dn;
    const char *admin_password_file;
    const char *config_admin_uri; /* SASL EXTERNAL to cn=config, or NULL */
    const char *service_dn;
    const char *group_dn;         /* or NULL */
    char *const *non_members;     /* "DN=PASSWORD_FILE" each, or NULL */
} DvSetupDirectoryInit;

/* The directory container of @dir, its ACL and the proof that anonymous
 * and each non-member identity cannot read it, as the directory
 * administrator: what install and "keys directory init" both do.  The
 * error is dv_directory_init()'s, for the caller to put in its words.
 * @ret_n_non_members (may be NULL) is how many identities were tried. */
gboolean dv_setup_directory_init(DvDirectory *dir, const DvSetupDirectoryInit *d, guint *ret_n_non_members,
                                 GError **error);

G_END_DECLS
