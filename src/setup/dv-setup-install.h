/* drover-setup install / uninstall: the database, the service account, the
 * keys made as that account, TLS, the default library share, the config
 * file and the systemd unit.  See docs/INSTALL.md. */
#pragma once

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

G_END_DECLS
