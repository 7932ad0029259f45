#define G_LOG_DOMAIN "DvSetupUpgrade"

/* drover-setup upgrade: prints the engine's plan, runs the upgrade with
 * drover-setup backup/restore as its backup, prints the report. */

#include "dv-config.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-setup-backup.h"
#include "dv-setup-upgrade.h"
#include "dv-store.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

gboolean
dv_setup_upgrade_parse_library_share(const char *value, DvUpgradeOptions *o, GError **error)
{
    const char *eq;

    if (g_strcmp0(value, "use-default") == 0) {
        o->library_share = DV_LIBRARY_SHARE_USE_DEFAULT;
        return TRUE;
    }
    if (g_strcmp0(value, "keep") == 0) {
        o->library_share = DV_LIBRARY_SHARE_KEEP;
        return TRUE;
    }
    eq = value != NULL ? strchr(value, '=') : NULL;
    if (eq == NULL || eq == value || eq[1] != '/') {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "library-share",
                           "--library-share must be use-default, keep or NAME=/absolute/path");
        return FALSE;
    }
    o->library_share = DV_LIBRARY_SHARE_NEW;
    o->library_share_name = g_strndup(value, (gsize)(eq - value)); /* lives as long as the process */
    o->library_share_path = eq + 1;
    return TRUE;
}

static int
dv_setup_upgrade_fail(const GError *error)
{
    g_printerr("drover-setup: %s\n", error->message);
    return dv_error_to_exit_code(error);
}

static void
dv_print_json(JsonObject *o)
{
    g_autofree char *text = dv_json_object_to_string(o, TRUE);
    g_print("%s\n", text);
}

static void
dv_print_objects(JsonArray *objects, guint max)
{
    for (guint i = 0; objects != NULL && i < json_array_get_length(objects) && i < max; i++) {
        JsonObject *o = json_array_get_object_element(objects, i);
        g_autoptr(GList) members = json_object_get_members(o);
        g_autoptr(GString) line = g_string_new("      -");
        for (GList *l = members; l != NULL; l = l->next) {
            JsonNode *n = json_object_get_member(o, l->data);
            if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING)
                g_string_append_printf(line, " %s=%s", (const char *)l->data, json_node_get_string(n));
            else if (JSON_NODE_HOLDS_VALUE(n))
                g_string_append_printf(line, " %s=%" G_GINT64_FORMAT, (const char *)l->data,
                                       json_node_get_int(n));
        }
        g_print("%s\n", line->str);
    }
    if (objects != NULL && json_array_get_length(objects) > max)
        g_print("      ... and %u more (-o json lists them)\n", json_array_get_length(objects) - max);
}

static void
dv_print_plan(JsonObject *plan)
{
    JsonObject *from = json_object_get_object_member(plan, "from");
    JsonObject *to = json_object_get_object_member(plan, "to");
    JsonObject *svc = json_object_get_object_member(plan, "service");
    JsonObject *totals = json_object_get_object_member(plan, "secrets");
    JsonArray *keys = json_object_get_array_member(plan, "keys");
    JsonArray *kinds = json_object_get_array_member(plan, "kinds");
    JsonArray *reentry = json_object_get_array_member(plan, "reentry");
    JsonArray *issues = json_object_get_array_member(plan, "issues");

    g_print("upgrade plan for %s (%s)\n", dv_json_get_string(plan, "database", "?"),
            dv_json_get_string(plan, "database_kind", "?"));
    g_print("  from Drover %s (schema %" G_GINT64_FORMAT ") to Drover %s (schema %" G_GINT64_FORMAT ")\n",
            dv_json_get_string(from, "version", "?"), dv_json_get_int(from, "schema", 0),
            dv_json_get_string(to, "version", "?"), dv_json_get_int(to, "schema", 0));
    {
        JsonArray *pending = json_object_get_array_member(plan, "pending_migrations");
        g_autoptr(GString) names = g_string_new(NULL);
        for (guint i = 0; i < json_array_get_length(pending); i++)
            g_string_append_printf(names, "%s%s", i > 0 ? ", " : "",
                                   dv_json_get_string(json_array_get_object_element(pending, i), "name", "?"));
        g_print("  migrations to apply, in one transaction: %s\n", names->len > 0 ? names->str : "none");
    }
    g_print("  service account %s (uid %" G_GINT64_FORMAT "), machine id from %s\n",
            dv_json_get_string(svc, "account", "?"), dv_json_get_int(svc, "uid", 0),
            dv_json_get_string(svc, "machine_id_file", "?"));
    g_print("  directory: %s%s%s; recovery key: %s; previous account's host key file: %s\n",
            dv_json_get_string(svc, "directory", "none"),
            dv_json_get_string(svc, "directory_identity", NULL) != NULL ? " as " : "",
            dv_json_get_string(svc, "directory_identity", ""),
            dv_json_get_bool(svc, "recovery_key", FALSE) ? "given" : "not given",
            dv_json_get_string(svc, "previous_account", "same account"));
    g_print("\n%-6s %-8s %-8s %8s  %-10s %-28s %s\n", "KEY", "VERSION", "STATE", "SECRETS",
            "VERDICT", "VIA", "REASON");
    for (guint i = 0; i < json_array_get_length(keys); i++) {
        JsonObject *k = json_array_get_object_element(keys, i);
        g_print("%-6s %-8" G_GINT64_FORMAT " %-8s %8" G_GINT64_FORMAT "  %-10s %-28s %s\n",
                dv_json_get_string(k, "key_id", "?"), dv_json_get_int(k, "version", 0),
                dv_json_get_string(k, "state", "?"), dv_json_get_int(k, "secrets", 0),
                dv_json_get_string(k, "verdict", "?"), dv_json_get_string(k, "via", "-"),
                dv_json_get_string(k, "reason", ""));
    }
    g_print("\n%-18s %8s %10s %8s %8s  %s\n", "KIND", "SECRETS", "PRESERVED", "REWRAP", "LOST", "VERDICT");
    for (guint i = 0; i < json_array_get_length(kinds); i++) {
        JsonObject *k = json_array_get_object_element(kinds, i);
        if (json_object_has_member(k, "hosts")) {
            g_print("%-18s %8" G_GINT64_FORMAT " hosts use a Run As account, %" G_GINT64_FORMAT
                    " would lose its credentials  %s\n",
                    dv_json_get_string(k, "object_type", "?"), dv_json_get_int(k, "hosts", 0),
                    dv_json_get_int(k, "hosts_losing_credentials", 0),
                    dv_json_get_string(k, "verdict", "?"));
            continue;
        }
        g_print("%-18s %8" G_GINT64_FORMAT " %10" G_GINT64_FORMAT " %8" G_GINT64_FORMAT " %8" G_GINT64_FORMAT "  %s\n",
                dv_json_get_string(k, "object_type", "?"), dv_json_get_int(k, "secrets", 0),
                dv_json_get_int(k, "preserved", 0), dv_json_get_int(k, "rewrap", 0),
                dv_json_get_int(k, "lost", 0), dv_json_get_string(k, "verdict", "?"));
    }
    g_print("%-18s %8" G_GINT64_FORMAT " %10" G_GINT64_FORMAT " %8" G_GINT64_FORMAT " %8" G_GINT64_FORMAT "\n",
            "total", dv_json_get_int(totals, "total", 0), dv_json_get_int(totals, "preserved", 0),
            dv_json_get_int(totals, "rewrap", 0), dv_json_get_int(totals, "lost", 0));
    if (json_array_get_length(reentry) > 0) {
        g_print("\nsecrets that would need re-entry (%u):\n", json_array_get_length(reentry));
        for (guint i = 0; i < json_array_get_length(reentry) && i < 50; i++) {
            JsonObject *e = json_array_get_object_element(reentry, i);
            g_print("  %-16s %s %-20s %-20s %s\n", dv_json_get_string(e, "object_type", "?"),
                    dv_json_get_string(e, "object_id", "?"), dv_json_get_string(e, "name", "-"),
                    dv_json_get_string(e, "field", "?"), dv_json_get_string(e, "reason", ""));
        }
        if (json_array_get_length(reentry) > 50)
            g_print("  ... and %u more (-o json lists them)\n", json_array_get_length(reentry) - 50);
    }
    g_print("\nissues:%s\n", json_array_get_length(issues) == 0 ? " none" : "");
    for (guint i = 0; i < json_array_get_length(issues); i++) {
        JsonObject *is = json_array_get_object_element(issues, i);
        g_print("  [%s] %s: %s\n", dv_json_get_bool(is, "blocking", FALSE) ? "BLOCKING" : "note",
                dv_json_get_string(is, "code", "?"), dv_json_get_string(is, "message", ""));
        if (json_object_has_member(is, "objects"))
            dv_print_objects(json_object_get_array_member(is, "objects"), 10);
    }
    g_print("\n%s\n", dv_json_get_bool(plan, "blocked", TRUE)
                          ? "the plan has blocking issues: 'drover-setup upgrade' would refuse and change nothing"
                          : "no blocking issue: 'drover-setup upgrade' with the same options does this");
}

static void
dv_print_report(JsonObject *r)
{
    JsonObject *totals = json_object_get_object_member(r, "secrets");
    JsonArray *reenter = json_object_get_array_member(r, "secrets_to_reenter");
    JsonArray *hosts = json_object_get_array_member(r, "hosts_to_refresh");
    JsonArray *limits = json_object_get_array_member(r, "limits_to_review");
    JsonArray *issues = json_object_get_array_member(r, "issues");

    g_print("upgraded from Drover %s (schema %" G_GINT64_FORMAT ") to Drover %s (schema %" G_GINT64_FORMAT
            "); service account %s\n",
            dv_json_get_string(r, "from_version", "?"), dv_json_get_int(r, "from_schema", 0),
            dv_json_get_string(r, "to_version", "?"), dv_json_get_int(r, "to_schema", 0),
            dv_json_get_string(r, "service_account", "?"));
    g_print("backup taken before: %s\n", dv_json_get_string(r, "backup", "-"));
    g_print("secrets: %" G_GINT64_FORMAT " total, %" G_GINT64_FORMAT " preserved, %" G_GINT64_FORMAT
            " re-wrapped, %" G_GINT64_FORMAT " to re-enter\n",
            dv_json_get_int(totals, "total", 0), dv_json_get_int(totals, "preserved", 0),
            dv_json_get_int(totals, "rewrap", 0), dv_json_get_int(totals, "lost", 0));
    g_print("\nsecrets to re-enter (%u):\n", json_array_get_length(reenter));
    dv_print_objects(reenter, 50);
    g_print("hosts to refresh (%u):\n", json_array_get_length(hosts));
    dv_print_objects(hosts, 50);
    g_print("limits to review (%u; kept from the previous version, below the defaults):\n",
            json_array_get_length(limits));
    dv_print_objects(limits, 50);
    g_print("issues (%u):\n", json_array_get_length(issues));
    for (guint i = 0; i < json_array_get_length(issues); i++) {
        JsonObject *is = json_array_get_object_element(issues, i);
        g_print("  %s: %s\n", dv_json_get_string(is, "code", "?"), dv_json_get_string(is, "message", ""));
    }
}

/* --- backup and restore hooks ------------------------------------------- */

/* Files restore writes as root that belong to the service account: their
 * owners are noted at backup and given back after a restore, so the old
 * installation starts as it did. */
static const char *const dv_owned_files[] = { "drover.db", "keys", "keys/host.key", "directory.conf", NULL };

typedef struct {
    char *path;
    uid_t uid;
    gid_t gid;
} DvOwner;

static GArray *dv_owners;

static void
dv_owners_record(const char *state_dir, const char *database)
{
    if (dv_owners == NULL)
        dv_owners = g_array_new(FALSE, TRUE, sizeof(DvOwner));
    for (guint i = 0; dv_owned_files[i] != NULL; i++) {
        g_autofree char *p = NULL;
        struct stat st;
        if (i == 0 && database != NULL) {
            if (g_str_has_prefix(database, "postgres"))
                continue;
            p = g_strdup(database);
        } else {
            p = g_build_filename(state_dir, dv_owned_files[i], NULL);
        }
        if (lstat(p, &st) == 0) {
            DvOwner o = { g_steal_pointer(&p), st.st_uid, st.st_gid };
            g_array_append_val(dv_owners, o);
        }
    }
}

static void
dv_owners_restore(void)
{
    for (guint i = 0; dv_owners != NULL && i < dv_owners->len; i++) {
        DvOwner *o = &g_array_index(dv_owners, DvOwner, i);
        if (lchown(o->path, o->uid, o->gid) != 0)
            g_printerr("drover-setup: cannot give %s back to uid %u: %s\n", o->path, (guint)o->uid,
                       g_strerror(errno));
    }
}

static void
dv_print_to_stderr(const char *text)
{
    fputs(text, stderr);
}

static char *
dv_setup_upgrade_backup(const DvUpgradeOptions *o, gpointer user_data, GError **error)
{
    DvSetupUpgradeArgs *a = user_data;
    g_autofree char *state = g_canonicalize_filename(o->state_dir, NULL);
    g_autofree char *dir = a->backup_dir != NULL ? g_canonicalize_filename(a->backup_dir, NULL)
                                                 : g_build_filename(state, "backups", NULL);
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *stamp = g_date_time_format(now, "%Y%m%dT%H%M%S");
    g_autofree char *name = g_strdup_printf("drover-pre-upgrade-%s.%06dZ.tar.zst", stamp,
                                            g_date_time_get_microsecond(now));
    g_autofree char *path = g_build_filename(dir, name, NULL);
    DvSetupBackupOptions bo = {
        .state_dir = o->state_dir,
        .database = o->database,
        .machine_id_path = o->machine_id_path,
        .force = TRUE, /* a backup of what is there, key files or not */
    };
    GPrintFunc old;
    gboolean ok;

    if (g_mkdir_with_parents(dir, 0700) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot create %s: %s", dir,
                    g_strerror(errno));
        return NULL;
    }
    dv_owners_record(o->state_dir, o->database);
    old = g_set_print_handler(dv_print_to_stderr);
    ok = dv_setup_backup(&bo, path, error);
    g_set_print_handler(old);
    return ok ? g_steal_pointer(&path) : NULL;
}

static gboolean
dv_setup_upgrade_restore(const DvUpgradeOptions *o, const char *path, gpointer user_data,
                         GError **error)
{
    DvSetupBackupOptions bo = {
        .state_dir = o->state_dir,
        .database = o->database,
        .machine_id_path = o->machine_id_path,
        .force = TRUE,
    };
    GPrintFunc old = g_set_print_handler(dv_print_to_stderr);
    gboolean ok = dv_setup_restore(&bo, path, error);
    g_set_print_handler(old);
    if (ok)
        dv_owners_restore();
    return ok;
}

/* --- the command ----------------------------------------------------------- */

static int
dv_setup_upgrade_report(DvSetupUpgradeArgs *a)
{
    g_autofree char *location = a->upgrade.database != NULL
                                    ? g_strdup(a->upgrade.database)
                                    : g_build_filename(a->upgrade.state_dir, "drover.db", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(DvStore) store = NULL;
    g_autoptr(JsonObject) report = NULL;

    if (!g_str_has_prefix(location, "postgres") && !g_file_test(location, G_FILE_TEST_IS_REGULAR)) {
        g_set_error(&error, DV_ERROR, DV_ERROR_NOT_FOUND, "no database at %s", location);
        return dv_setup_upgrade_fail(error);
    }
    store = dv_store_open(location, 0, &error);
    if (store == NULL)
        return dv_setup_upgrade_fail(error);
    if (dv_store_get_schema_version(store, NULL) < dv_store_get_known_version()) {
        g_set_error(&error, DV_ERROR, DV_ERROR_NOT_FOUND,
                    "no upgrade report: the database has not been upgraded to this version yet");
        return dv_setup_upgrade_fail(error);
    }
    report = dv_upgrade_report_load(store, &error);
    if (report == NULL)
        return dv_setup_upgrade_fail(error);
    if (a->json)
        dv_print_json(report);
    else
        dv_print_report(report);
    return 0;
}

int
dv_setup_upgrade(DvSetupUpgradeArgs *a)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) plan = NULL;
    g_autoptr(JsonObject) report = NULL;
    g_autoptr(DvStoreLock) lock = NULL;

    if (a->report_only)
        return dv_setup_upgrade_report(a);
    if (a->plan_only) {
        plan = dv_upgrade_plan(&a->upgrade, &error);
        if (plan == NULL)
            return dv_setup_upgrade_fail(error);
        if (a->json)
            dv_print_json(plan);
        else
            dv_print_plan(plan);
        return dv_upgrade_plan_is_blocked(plan) ? DV_SETUP_EXIT_PLAN_BLOCKED : 0;
    }
    /* The upgrade writes the database: never under a running droverd,
     * whatever its heartbeat says (the plan and the report only read). */
    {
        g_autofree char *location = a->upgrade.database != NULL
                                        ? g_strdup(a->upgrade.database)
                                        : g_build_filename(a->upgrade.state_dir, "drover.db", NULL);
        if (g_file_test(location, G_FILE_TEST_EXISTS)) {
            lock = dv_store_lock_acquire(location, "drover-setup upgrade", &error);
            if (lock == NULL)
                return dv_setup_upgrade_fail(error);
        }
    }
    a->upgrade.backup = dv_setup_upgrade_backup;
    a->upgrade.restore = dv_setup_upgrade_restore;
    a->upgrade.user_data = a;
    report = dv_upgrade_run(&a->upgrade, &plan, &error);
    if (report == NULL) {
        if (plan != NULL && dv_upgrade_plan_is_blocked(plan)) {
            if (a->json)
                dv_print_json(plan);
            else
                dv_print_plan(plan);
            g_printerr("drover-setup: %s\n", error->message);
            return DV_SETUP_EXIT_PLAN_BLOCKED;
        }
        return dv_setup_upgrade_fail(error);
    }
    if (a->json) {
        dv_print_json(report);
    } else {
        dv_print_report(report);
        g_print("\nthe report is kept in the database: drover-setup upgrade --report, GET "
                "/api/v1/upgrade-report, drover upgrade-report\n");
    }
    return 0;
}
