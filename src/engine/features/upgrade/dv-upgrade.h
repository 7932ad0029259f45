/* drover-setup upgrade: the plan that predicts, and the upgrade that does
 * what the plan said (docs/UPGRADE.md).
 *
 * An upgrade is a new installation of Drover that keeps the database.  The
 * plan opens nothing for writing: for the machine, service account and key
 * protectors given, it gives one verdict per key version and per secret
 * ("preserved" through a protector the new service holds, "rewrap": the
 * administrator running the upgrade opens the key and it is re-wrapped for
 * the new service, "lost": no path to the key), the objects whose secrets
 * would need re-entry, and the known issues that apply.  The upgrade runs
 * the same plan, backs up, migrates in one transaction, re-wraps, verifies
 * every secret against the plan and restores the backup on any failure. */
#pragma once

#include <json-glib/json-glib.h>

#include "dv-store.h"

G_BEGIN_DECLS

typedef enum {
    DV_LIBRARY_SHARE_UNSET,       /* a clash is a blocking issue */
    DV_LIBRARY_SHARE_USE_DEFAULT, /* the registered share becomes the default */
    DV_LIBRARY_SHARE_KEEP,        /* shares stay as they are; no default registered */
    DV_LIBRARY_SHARE_NEW,         /* register name=path as the new default */
} DvLibraryShareChoice;

typedef struct _DvUpgradeOptions DvUpgradeOptions;

/* Called by dv_upgrade_run() before migrating: writes a backup of the
 * database, key material and config and returns where (owned), or NULL
 * with an error (too little space: nothing was migrated). */
typedef char *(*DvUpgradeBackupFunc)(const DvUpgradeOptions *o, gpointer user_data,
                                     GError **error);
/* Called on a failure after the database or key files changed: puts the
 * backup @path back. */
typedef gboolean (*DvUpgradeRestoreFunc)(const DvUpgradeOptions *o, const char *path,
                                         gpointer user_data, GError **error);

struct _DvUpgradeOptions {
    const char *state_dir;        /* required */
    const char *database;         /* NULL: <state_dir>/drover.db */
    const char *machine_id_path;  /* NULL: /etc/machine-id */
    const char *config_path;      /* NULL: /etc/drover/droverd.conf ([server] service_account) */
    /* The new service identity. */
    const char *service_account;  /* local Unix account; NULL: the config's, else the caller */
    const char *service_dn;       /* directory identity (with its password file) */
    const char *service_password_file;
    /* The directory protector (NULL: as in <state_dir>/directory.conf). */
    const char *ldap_uri;
    const char *container;
    const char *ca_file;
    /* A directory administrator who may read the key container (the plan
     * re-wraps keys it reads that the new identity cannot). */
    const char *admin_dn;
    const char *admin_password_file;
    const char *recovery_key_path;
    gboolean accept_unreadable_secrets;
    gboolean reset_host_limits;
    DvLibraryShareChoice library_share;
    const char *library_share_name; /* DV_LIBRARY_SHARE_NEW */
    const char *library_share_path;
    /* The default library share of this version, for the clash check
     * (NULL: "library" at <state_dir>/library). */
    const char *default_share_name;
    const char *default_share_path;
    /* dv_upgrade_run() only. */
    DvUpgradeBackupFunc backup;
    DvUpgradeRestoreFunc restore;
    gpointer user_data;
};

/* The plan (owned JSON, see docs/UPGRADE.md for its members).  Changes
 * nothing: no database write, no file written in the state directory.
 * Fails only when the plan cannot be made (database missing, corrupt or
 * newer than this Drover, unknown service account, bad options); problems
 * the upgrade would meet are issues in the plan. */
JsonObject *dv_upgrade_plan(const DvUpgradeOptions *o, GError **error);

/* TRUE when the plan has an issue that stops the upgrade. */
gboolean dv_upgrade_plan_is_blocked(JsonObject *plan);

/* The upgrade.  Returns the post-upgrade report (owned, also stored in the
 * database), or NULL with an error; @ret_plan (may be NULL) gets the plan
 * it ran, also on failure.  A blocked plan is DV_ERROR_CONFLICT and changes
 * nothing. */
JsonObject *dv_upgrade_run(const DvUpgradeOptions *o, JsonObject **ret_plan, GError **error);

/* The newest post-upgrade report in @store, or NULL with DV_ERROR_NOT_FOUND
 * when no upgrade wrote one. */
JsonObject *dv_upgrade_report_load(DvStore *store, GError **error);

/* droverd's start check: a database whose schema is older than this build
 * (and not empty) is refused, telling to run drover-setup upgrade. */
gboolean dv_upgrade_check_schema_for_server(DvStore *store, GError **error);

G_END_DECLS
