#define G_LOG_DOMAIN "DvCli"

/* drover catalog: machine catalogs (docs/CATALOGS.md). */

#include "dv-cli.h"

#include "dv-error.h"
#include "dv-json.h"

/* The server's own caps (docs/CATALOGS.md); checked here too so a long
 * command line fails before any request. */
#define DV_CLI_CATALOG_MAX_HOSTS 64
#define DV_CLI_CATALOG_MAX_NETWORKS 8

/* Options without a field are placed by the prepare hook: --host into
 * "hosts", the machine spec into "machine". */
static const DvCliOption dv_cli_catalog_create_options[] = {
    { "master", DV_CLI_OPT_STRING, "VM", "master_vm", NULL, NULL, 0, 0, "master VM (name or id), shut off",
      TRUE },
    { "snapshot", DV_CLI_OPT_STRING, "SNAP", "master_snapshot", NULL, NULL, 0, 0,
      "the master's current snapshot: the image the machines get", TRUE },
    { "host", DV_CLI_OPT_LIST, "H", NULL, NULL, NULL, 0, 0, "target host (name or id)" },
    { "host-group", DV_CLI_OPT_STRING, "G", "host_group", NULL, NULL, 0, 0, "target the usable hosts of a group" },
    { "cluster", DV_CLI_OPT_STRING, "C", "cluster", NULL, NULL, 0, 0, "target the hosts of a cluster" },
    { "pool", DV_CLI_OPT_STRING, "POOL", "pool", NULL, NULL, 0, 0,
      "storage pool (by name) on every target host", TRUE },
    { "count", DV_CLI_OPT_INT, "N", "count", NULL, NULL, 1, 10000, "number of machines (1-10000)", TRUE },
    { "naming", DV_CLI_OPT_STRING, "SCHEME", "naming_scheme", NULL, NULL, 0, 0,
      "machine names, one run of # is the number (desk-###)", TRUE },
    { "vcpus", DV_CLI_OPT_INT, "N", NULL, NULL, NULL, 1, 512, "virtual CPUs (1-512; default the master's)" },
    { "memory", DV_CLI_OPT_SIZE_MIB, "SIZE", NULL, NULL, NULL, 16, 4194304,
      "memory: 2G, 512M, or MiB as a plain number (16M-4T; default the master's)" },
    { "network", DV_CLI_OPT_LIST, "NET", NULL, NULL, NULL, 0, 0, "attach a NIC to this network" },
    { "profile", DV_CLI_OPT_STRING, "PROFILE", "guest_os_profile", NULL, NULL, 0, 0,
      "guest OS profile for the identity disk (name or id)" },
    { "personal-disk", DV_CLI_OPT_SIZE_MIB, "SIZE", "personal_disk_mib", NULL, NULL, 1, 1048576,
      "give every machine a personal disk of this size: 10G, or MiB as a plain number" },
    { "personal-disk-pool", DV_CLI_OPT_STRING, "POOL", "personal_disk_pool", NULL, NULL, 0, 0,
      "put the personal disks in this pool of every target host" },
    { "type", DV_CLI_OPT_CHOICE, "pooled|persistent", "type", NULL, NULL, 0, 0,
      "pooled: reset at restart (default); persistent: keeps its disk" },
    { "kernel", DV_CLI_OPT_STRING, "PATH", NULL, NULL, NULL, 0, 0, "boot this kernel (a path on the hosts)" },
    { "initrd", DV_CLI_OPT_STRING, "PATH", NULL, NULL, NULL, 0, 0, "with --kernel: its initramfs" },
    { "cmdline", DV_CLI_OPT_STRING, "TEXT", NULL, NULL, NULL, 0, 0, "with --kernel: its command line" },
    { "description", DV_CLI_OPT_STRING, "D", "description", NULL, NULL, 0, 0, "free text" },
    { NULL },
};

static const DvCliOption dv_cli_catalog_list_options[] = {
    { "state", DV_CLI_OPT_CHOICE, "provisioning|ready|degraded", NULL, "state", NULL, 0, 0,
      "only catalogs in this state" },
    { NULL },
};

static const DvCliOption dv_cli_catalog_machines_options[] = {
    { "state", DV_CLI_OPT_CHOICE, "pending|ready|failed", NULL, "state", NULL, 0, 0,
      "only machines in this state" },
    { NULL },
};

static const DvCliColumn dv_cli_catalog_columns[] = {
    { "NAME", "name" },
    { "TYPE", "catalog_type" },
    { "STATE", "state" },
    { "MASTER", "master_vm_name|master_vm_id" },
    { "SNAPSHOT", "master_snapshot" },
    { "POOL", "pool_name" },
    { "NAMING", "naming_scheme" },
    { "ID", "id" },
    { NULL },
};

static const DvCliColumn dv_cli_catalog_machine_columns[] = {
    { "NAME", "name" },
    { "STATE", "state" },
    { "HOST", "host_name|host_id" },
    { "STEP", "step" },
    { "ERROR", "error" },
    { NULL },
};

/* The machine spec: {vcpus, memory_mib, networks [names], kernel, initrd,
 * cmdline}, only the members given; none at all when nothing was. */
static gboolean
dv_cli_catalog_add_machine(DvCliArgs *args, JsonObject *body, GError **error)
{
    static const char *const paths[] = { "kernel", "initrd", "cmdline" };
    g_autoptr(JsonObject) machine = json_object_new();
    JsonArray *networks;

    if (!dv_cli_args_has(args, "kernel")) {
        for (gsize i = 1; i < G_N_ELEMENTS(paths); i++) {
            if (dv_cli_args_has(args, paths[i])) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, paths[i], "--%s needs --kernel", paths[i]);
                return FALSE;
            }
        }
    }
    if (dv_cli_args_has(args, "vcpus"))
        json_object_set_int_member(machine, "vcpus", dv_cli_args_get_int(args, "vcpus", 0));
    if (dv_cli_args_has(args, "memory"))
        json_object_set_int_member(machine, "memory_mib", dv_cli_args_get_int(args, "memory", 0));
    /* A catalog names its networks as plain strings, as a template does. */
    dv_cli_args_add_list(args, "network", machine, "networks", NULL);
    networks = json_object_has_member(machine, "networks") ? json_object_get_array_member(machine, "networks")
                                                            : NULL;
    if (networks != NULL && json_array_get_length(networks) > DV_CLI_CATALOG_MAX_NETWORKS) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "machine.networks", "at most %d --network options",
                           DV_CLI_CATALOG_MAX_NETWORKS);
        return FALSE;
    }
    for (gsize i = 0; i < G_N_ELEMENTS(paths); i++)
        if (dv_cli_args_has(args, paths[i]))
            json_object_set_string_member(machine, paths[i], dv_cli_args_get_string(args, paths[i]));
    if (json_object_get_size(machine) > 0)
        json_object_set_object_member(body, "machine", g_steal_pointer(&machine));
    return TRUE;
}

static gboolean
dv_cli_prepare_catalog_create(DvCliArgs *args, JsonObject *body, GError **error)
{
    guint n_targets = dv_cli_args_has(args, "host") + dv_cli_args_has(args, "host-group") +
                      dv_cli_args_has(args, "cluster");
    JsonArray *hosts;

    if (n_targets != 1) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "hosts",
                           "give exactly one of --host (repeatable), --host-group and --cluster");
        return FALSE;
    }
    dv_cli_args_add_list(args, "host", body, "hosts", NULL);
    hosts = json_object_has_member(body, "hosts") ? json_object_get_array_member(body, "hosts") : NULL;
    if (hosts != NULL && json_array_get_length(hosts) > DV_CLI_CATALOG_MAX_HOSTS) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "hosts", "at most %d --host options",
                           DV_CLI_CATALOG_MAX_HOSTS);
        return FALSE;
    }
    if (!dv_cli_catalog_add_machine(args, body, error))
        return FALSE;
    return dv_cli_prepare_name(args, body, error);
}

/* The name of the object @id refers to through @member ("host_id"), as
 * dv_cli_add_names() finds it, or NULL. */
static char *
dv_cli_catalog_ref_name(DvCli *cli, const char *member, const char *name_member, const char *id)
{
    g_autoptr(JsonObject) ref = json_object_new();

    json_object_set_string_member(ref, member, id);
    dv_cli_add_names(cli, "/catalogs", NULL, ref);
    return g_strdup(dv_json_get_string(ref, name_member, NULL));
}

/* A catalog for people: its target hosts, and its host group or cluster,
 * by name beside their ids. */
static gboolean
dv_cli_run_catalog_show(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body, GError **error)
{
    static const struct {
        const char *kind;
        const char *member;
        const char *name_member;
    } targets[] = {
        { "host-group", "host_group_id", "host_group_name" },
        { "cluster", "cluster_id", "cluster_name" },
    };
    g_autofree char *escaped = g_uri_escape_string(dv_cli_args_get_positional(args, 0), NULL, TRUE);
    g_autofree char *path = g_strconcat("/catalogs/", escaped, NULL);
    g_autoptr(JsonNode) node = dv_cli_client_request(cli->client, "GET", path, NULL, NULL, error);
    g_autoptr(JsonArray) names = json_array_new();
    JsonObject *catalog;
    JsonArray *host_ids;

    if (node == NULL)
        return FALSE;
    if (cli->format == DV_CLI_FORMAT_JSON || !JSON_NODE_HOLDS_OBJECT(node)) {
        dv_cli_print_json(cli, node);
        return TRUE;
    }
    catalog = json_node_get_object(node);
    host_ids = dv_json_get_array(catalog, "host_ids");
    for (guint i = 0; host_ids != NULL && i < json_array_get_length(host_ids); i++) {
        JsonNode *id = json_array_get_element(host_ids, i);
        g_autofree char *name = NULL;
        if (!JSON_NODE_HOLDS_VALUE(id) || json_node_get_value_type(id) != G_TYPE_STRING)
            continue;
        name = dv_cli_catalog_ref_name(cli, "host_id", "host_name", json_node_get_string(id));
        json_array_add_string_element(names, name != NULL ? name : json_node_get_string(id));
    }
    if (json_array_get_length(names) > 0 && !json_object_has_member(catalog, "host_names"))
        json_object_set_array_member(catalog, "host_names", g_steal_pointer(&names));
    for (gsize i = 0; i < G_N_ELEMENTS(targets); i++) {
        const char *id = dv_json_get_string(catalog, "target_id", NULL);
        g_autofree char *name = NULL;
        if (g_strcmp0(dv_json_get_string(catalog, "target_kind", NULL), targets[i].kind) != 0 || id == NULL)
            continue;
        name = dv_cli_catalog_ref_name(cli, targets[i].member, targets[i].name_member, id);
        if (name != NULL && !json_object_has_member(catalog, "target_name"))
            json_object_set_string_member(catalog, "target_name", name);
    }
    dv_cli_print_object(cli, "/catalogs", catalog, NULL);
    return TRUE;
}

/* POST /catalogs/{id}/reconcile deletes only with this flag set. */
static gboolean
dv_cli_prepare_delete_orphans(DvCliArgs *args, JsonObject *body, GError **error)
{
    json_object_set_boolean_member(body, "delete_orphans", TRUE);
    return TRUE;
}

/* --- lifecycle (docs/CATALOGS.md) ------------------------------------------------ */

static const DvCliOption dv_cli_catalog_update_image_options[] = {
    { "master", DV_CLI_OPT_STRING, "VM", "master_vm", NULL, NULL, 0, 0, "master VM (name or id), shut off", TRUE },
    { "snapshot", DV_CLI_OPT_STRING, "SNAP", "master_snapshot", NULL, NULL, 0, 0,
      "the master's current snapshot: the new image", TRUE },
    { NULL },
};

static const DvCliOption dv_cli_catalog_pick_options[] = {
    { "all", DV_CLI_OPT_FLAG, NULL, "all", NULL, NULL, 0, 0, "every machine of the catalog" },
    { NULL },
};

static const DvCliOption dv_cli_catalog_add_options[] = {
    { "count", DV_CLI_OPT_INT, "N", "count", NULL, NULL, 1, 10000, "number of machines to add (1-10000)", TRUE },
    { "reuse-gaps", DV_CLI_OPT_FLAG, NULL, "reuse_gaps", NULL, NULL, 0, 0,
      "give the numbers of removed machines again (default: after the last one)" },
    { NULL },
};

static const DvCliOption dv_cli_catalog_remove_options[] = {
    { "count", DV_CLI_OPT_INT, "N", "count", NULL, NULL, 1, 10000,
      "remove N machines, powered-off ones first, highest numbers first" },
    { "force", DV_CLI_OPT_FLAG, NULL, "force", NULL, NULL, 0, 0, "remove running machines too (forced off)" },
    { NULL },
};

static const DvCliOption dv_cli_catalog_power_options[] = {
    { "machines", DV_CLI_OPT_LIST, "M[,M...]", NULL, NULL, NULL, 0, 0,
      "only these machines (comma-separated; default all)" },
    { "max-share", DV_CLI_OPT_INT, "PCT", "max_share", NULL, NULL, 1, 100,
      "at most this share of the catalog at a time (1-100, default 10)" },
    { NULL },
};

static const DvCliColumn dv_cli_catalog_image_columns[] = {
    { "VERSION", "version" },
    { "CURRENT", "current" },
    { "MASTER", "master_vm_name|master_vm_id" },
    { "SNAPSHOT", "master_snapshot" },
    { "MACHINES", "machines" },
    { "BASE", "base_state" },
    { "STATE", "state" },
    { NULL },
};

#define DV_CLI_CATALOG_MAX_MACHINES 10000

/* The MACHINE... words after CATALOG, and the --machines lists (split at
 * commas), into "machines"; none: the member is left out. */
static gboolean
dv_cli_catalog_add_machines_list(DvCliArgs *args, JsonObject *body, GError **error)
{
    g_autoptr(JsonArray) machines = json_array_new();

    for (guint i = 1; dv_cli_args_get_positional(args, i) != NULL; i++)
        json_array_add_string_element(machines, dv_cli_args_get_positional(args, i));
    for (guint i = 0; i < args->given->len; i++) {
        DvCliArg *a = g_ptr_array_index(args->given, i);
        g_auto(GStrv) parts = NULL;
        if (g_strcmp0(a->option->name, "machines") != 0 || a->value == NULL)
            continue;
        parts = g_strsplit(a->value, ",", -1);
        for (guint k = 0; parts[k] != NULL; k++) {
            if (parts[k][0] == '\0') {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "machines",
                                   "--machines: an empty machine name in '%s'", a->value);
                return FALSE;
            }
            json_array_add_string_element(machines, parts[k]);
        }
    }
    if (json_array_get_length(machines) > DV_CLI_CATALOG_MAX_MACHINES) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "machines", "at most %d machines",
                           DV_CLI_CATALOG_MAX_MACHINES);
        return FALSE;
    }
    if (json_array_get_length(machines) > 0)
        json_object_set_array_member(body, "machines", g_steal_pointer(&machines));
    return TRUE;
}

static gboolean
dv_cli_prepare_catalog_rebuild(DvCliArgs *args, JsonObject *body, GError **error)
{
    if ((dv_cli_args_get_positional(args, 1) != NULL) == dv_cli_args_has(args, "all")) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "machines", "give the machines (MACHINE...) or --all");
        return FALSE;
    }
    return dv_cli_catalog_add_machines_list(args, body, error);
}

static gboolean
dv_cli_prepare_catalog_remove(DvCliArgs *args, JsonObject *body, GError **error)
{
    if ((dv_cli_args_get_positional(args, 1) != NULL) == dv_cli_args_has(args, "count")) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "machines",
                           "give the machines (MACHINE...) or --count N");
        return FALSE;
    }
    return dv_cli_catalog_add_machines_list(args, body, error);
}

static gboolean
dv_cli_prepare_catalog_power(DvCliArgs *args, JsonObject *body, const char *action, GError **error)
{
    json_object_set_string_member(body, "action", action);
    return dv_cli_catalog_add_machines_list(args, body, error);
}

static gboolean
dv_cli_prepare_catalog_start(DvCliArgs *args, JsonObject *body, GError **error)
{
    return dv_cli_prepare_catalog_power(args, body, "start", error);
}

static gboolean
dv_cli_prepare_catalog_shutdown(DvCliArgs *args, JsonObject *body, GError **error)
{
    return dv_cli_prepare_catalog_power(args, body, "shutdown", error);
}

static gboolean
dv_cli_prepare_catalog_restart(DvCliArgs *args, JsonObject *body, GError **error)
{
    return dv_cli_prepare_catalog_power(args, body, "restart", error);
}

/* catalog machine identity: the summary as a table, then each file of the
 * identity disk as the text the machine reads (the server has already
 * replaced every secret by its size). */
static gboolean
dv_cli_run_identity(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body, GError **error)
{
    static const char *const skip[] = { "meta_data", "user_data", "network_config", NULL };
    g_autofree char *escaped = g_uri_escape_string(dv_cli_args_get_positional(args, 0), NULL, TRUE);
    g_autofree char *path = g_strconcat("/catalog-machines/", escaped, "/identity", NULL);
    g_autoptr(JsonNode) node = dv_cli_client_request(cli->client, "GET", path, NULL, NULL, error);
    JsonObject *obj, *meta;
    const char *text;

    if (node == NULL)
        return FALSE;
    if (cli->format == DV_CLI_FORMAT_JSON || !JSON_NODE_HOLDS_OBJECT(node)) {
        dv_cli_print_json(cli, node);
        return TRUE;
    }
    obj = json_node_get_object(node);
    dv_cli_print_object(cli, "/catalog-machines", obj, skip);
    if ((meta = dv_json_get_object(obj, "meta_data")) != NULL) {
        GList *members = json_object_get_members(meta);
        fputs("\n--- meta-data ---\n", cli->out);
        for (GList *l = members; l != NULL; l = l->next) {
            JsonNode *v = json_object_get_member(meta, l->data);
            if (JSON_NODE_HOLDS_VALUE(v) && json_node_get_value_type(v) == G_TYPE_STRING)
                fprintf(cli->out, "%s: %s\n", (const char *)l->data, json_node_get_string(v));
        }
        g_list_free(members);
    }
    if ((text = dv_json_get_string(obj, "user_data", NULL)) != NULL)
        fprintf(cli->out, "\n--- user-data ---\n%s%s", text, g_str_has_suffix(text, "\n") ? "" : "\n");
    if ((text = dv_json_get_string(obj, "network_config", NULL)) != NULL)
        fprintf(cli->out, "\n--- network-config ---\n%s%s", text, g_str_has_suffix(text, "\n") ? "" : "\n");
    return TRUE;
}

const DvCliCommand dv_cli_commands_catalog[] = {
    { "catalog", "create", "NAME", "Create a catalog of machines from a master's snapshot and provision them.",
      dv_cli_catalog_create_options, dv_cli_prepare_catalog_create, dv_cli_run_job, "POST", "/catalogs", NULL,
      "Created catalog {0}",
      "catalog create NAME --master VM --snapshot SNAP (--host H... | --host-group G | --cluster C)\n"
      "                      --pool POOL --count N --naming SCHEME [--vcpus N] [--memory SIZE]\n"
      "                      [--network NET]... [--profile PROFILE] [--personal-disk SIZE]\n"
      "                      [--personal-disk-pool POOL]\n"
      "                      [--type pooled|persistent] [--kernel PATH [--initrd PATH] [--cmdline TEXT]]\n"
      "                      [--description D]" },
    { "catalog", "list", "", "List catalogs.", dv_cli_catalog_list_options, NULL, dv_cli_run_list, "GET",
      "/catalogs", dv_cli_catalog_columns },
    { "catalog", "show", "CATALOG", "Show a catalog (target hosts by name).", NULL, NULL, dv_cli_run_catalog_show },
    { "catalog", "machines", "CATALOG", "List a catalog's machines: state, host, last step done, error.",
      dv_cli_catalog_machines_options, NULL, dv_cli_run_list, "GET", "/catalogs/{0}/machines",
      dv_cli_catalog_machine_columns },
    { "catalog", "provision", "CATALOG", "Provision the machines that are not ready (after a failure).", NULL,
      NULL, dv_cli_run_job, "POST", "/catalogs/{0}/provision", NULL, "Provisioned catalog {0}" },
    { "catalog", "reconcile", "CATALOG",
      "Compare the database with the hosts: orphans on both sides (changes nothing).", NULL, NULL,
      dv_cli_run_show, "GET", "/catalogs/{0}/reconcile" },
    { "catalog", "delete-orphans", "CATALOG",
      "Delete the volumes and domains reconcile reports as orphans of this catalog.", NULL,
      dv_cli_prepare_delete_orphans, dv_cli_run_job, "POST", "/catalogs/{0}/reconcile", NULL,
      "Deleted the orphans of catalog {0}" },
    { "catalog", "delete", "CATALOG", "Delete a catalog: its machines, their volumes, then its base images.",
      NULL, NULL, dv_cli_run_job, "DELETE", "/catalogs/{0}", NULL, "Deleted catalog {0}" },
    { "catalog", "update-image", "CATALOG",
      "Give a catalog a new image; pooled machines move to it.",
      dv_cli_catalog_update_image_options, NULL, dv_cli_run_job, "POST", "/catalogs/{0}/images", NULL,
      "Updated the image of catalog {0}" },
    { "catalog", "rollback", "CATALOG", "Return a catalog to its previous image, the same way.", NULL, NULL,
      dv_cli_run_job, "POST", "/catalogs/{0}/rollback", NULL, "Rolled catalog {0} back" },
    { "catalog", "images", "CATALOG", "List a catalog's image history: version, master, current, machines, bases.",
      NULL, NULL, dv_cli_run_list, "GET", "/catalogs/{0}/images", dv_cli_catalog_image_columns },
    { "catalog", "rebuild", "CATALOG [MACHINE...]",
      "Give machines (shut off) a fresh disk on the current image.",
      dv_cli_catalog_pick_options, dv_cli_prepare_catalog_rebuild, dv_cli_run_job, "POST", "/catalogs/{0}/rebuild",
      NULL, "Rebuilt machines of catalog {0}", "catalog rebuild CATALOG (MACHINE... | --all)" },
    { "catalog", "add-machines", "CATALOG", "Add machines to a catalog and provision them.",
      dv_cli_catalog_add_options, NULL, dv_cli_run_job, "POST", "/catalogs/{0}/machines", NULL,
      "Added machines to catalog {0}" },
    { "catalog", "remove-machines", "CATALOG [MACHINE...]",
      "Remove machines; running ones only with --force.",
      dv_cli_catalog_remove_options, dv_cli_prepare_catalog_remove, dv_cli_run_job, "POST",
      "/catalogs/{0}/remove-machines", NULL, "Removed machines of catalog {0}",
      "catalog remove-machines CATALOG (MACHINE... | --count N) [--force]" },
    { "catalog", "start", "CATALOG", "Start a catalog's machines, a share of them at a time.",
      dv_cli_catalog_power_options, dv_cli_prepare_catalog_start, dv_cli_run_job, "POST", "/catalogs/{0}/power",
      NULL, "Started machines of catalog {0}" },
    { "catalog", "shutdown", "CATALOG", "Shut a catalog's machines down, a share of them at a time.",
      dv_cli_catalog_power_options, dv_cli_prepare_catalog_shutdown, dv_cli_run_job, "POST",
      "/catalogs/{0}/power", NULL, "Shut down machines of catalog {0}" },
    { "catalog", "restart", "CATALOG",
      "Restart a catalog's machines, a share of them at a time.",
      dv_cli_catalog_power_options, dv_cli_prepare_catalog_restart, dv_cli_run_job, "POST", "/catalogs/{0}/power",
      NULL, "Restarted machines of catalog {0}" },
    { "catalog machine", "identity", "MACHINE",
      "Show a machine's identity disk; secrets are shown by their size.",
      NULL, NULL, dv_cli_run_identity, "GET", "/catalog-machines/{0}/identity" },
    { NULL },
};
