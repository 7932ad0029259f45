#define G_LOG_DOMAIN "DroverSetup"

/* drover-setup: installation tasks that need no running server.  It links
 * the engine directly.  This first version inspects and migrates the
 * database schema; install, upgrade, backup and key management follow. */

#include "dv-config.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-store.h"

#include <stdio.h>
#include <string.h>

static char *opt_state_dir;
static char *opt_database;
static char *opt_output;

static const GOptionEntry entries[] = {
    { "state-dir", 's', 0, G_OPTION_ARG_FILENAME, &opt_state_dir, "State directory (default /var/lib/drover)", "DIR" },
    { "database", 'd', 0, G_OPTION_ARG_STRING, &opt_database, "SQLite file or postgresql:// URI (default <state-dir>/drover.db)", "DB" },
    { "output", 'o', 0, G_OPTION_ARG_STRING, &opt_output, "table or json", "FORMAT" },
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
    g_autoptr(DvStore) store = dv_store_open(location, DV_STORE_OPEN_MIGRATE, &error);

    if (store == NULL)
        return dv_setup_fail(error);
    g_print("schema at version %u\n", dv_store_get_schema_version(store, NULL));
    return 0;
}

int
main(int argc, char **argv)
{
    g_autoptr(GOptionContext) ctx = g_option_context_new("schema status|migrate");
    g_autoptr(GError) error = NULL;

    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_summary(ctx, "Installation tasks that need no running server.\n\n"
                                      "  schema status    show the schema version and history, and whether\n"
                                      "                   droverd would start on this database\n"
                                      "  schema migrate   apply pending migrations");
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
    {
        g_autofree char *help = g_option_context_get_help(ctx, TRUE, NULL);
        g_printerr("%s", help);
    }
    return DV_EXIT_USAGE;
}
