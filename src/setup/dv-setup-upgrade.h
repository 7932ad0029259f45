/* drover-setup upgrade [--plan | --report]: the front end of
 * src/engine/features/upgrade (docs/UPGRADE.md). */
#pragma once

#include "dv-upgrade.h"

G_BEGIN_DECLS

/* Exit status of `upgrade --plan` and `upgrade` when the plan has a
 * blocking issue (nothing was changed).  0 is "plan OK" / "upgraded". */
#define DV_SETUP_EXIT_PLAN_BLOCKED 10

typedef struct {
    DvUpgradeOptions upgrade;
    gboolean plan_only;
    gboolean report_only;
    gboolean json;
    const char *backup_dir; /* NULL: <state_dir>/backups */
} DvSetupUpgradeArgs;

/* Parses --library-share use-default|keep|NAME=PATH into @o. */
gboolean dv_setup_upgrade_parse_library_share(const char *value, DvUpgradeOptions *o,
                                              GError **error);

/* Runs the command; returns the exit status. */
int dv_setup_upgrade(DvSetupUpgradeArgs *args);

G_END_DECLS
