#define G_LOG_DOMAIN "DvCli"

/* drover host, host-group, cluster. */

#include "dv-cli.h"

#include "dv-error.h"
#include "dv-json.h"

static const DvCliOption dv_cli_host_add_options[] = {
    { "uri", DV_CLI_OPT_STRING, "URI", "uri", NULL, NULL, 0, 0, "libvirt URI, e.g. qemu+ssh://root@kvm1/system", TRUE },
    { "group", DV_CLI_OPT_STRING, "G", "host_group", NULL, NULL, 0, 0, "host group (name or id)" },
    { "cluster", DV_CLI_OPT_STRING, "C", "cluster", NULL, NULL, 0, 0, "cluster (name or id)" },
    { "max-connections", DV_CLI_OPT_INT, "N", "max_connections", NULL, NULL, 1, 1024,
      "libvirt connections Drover may open to the host" },
    { "max-operations", DV_CLI_OPT_INT, "N", "max_concurrent_operations", NULL, NULL, 1, 1024,
      "operations Drover runs on the host at once" },
    { "domain-type", DV_CLI_OPT_CHOICE, "auto|kvm|qemu", "domain_type", NULL, NULL, 0, 0,
      "hypervisor domain type (default auto)" },
    { "run-as", DV_CLI_OPT_STRING, "ACCOUNT", "run_as", NULL, NULL, 0, 0,
      "Run As account (name or id) that answers libvirt's authentication" },
    { NULL },
};

static const DvCliOption dv_cli_host_list_options[] = {
    { "state", DV_CLI_OPT_CHOICE, "ok|needs-attention|unreachable|adding", NULL, "state", NULL, 0, 0,
      "only hosts in this state" },
    { "group", DV_CLI_OPT_STRING, "G", NULL, "host_group_id", "/host-groups", 0, 0, "only hosts of this group" },
    { NULL },
};

static const DvCliOption dv_cli_host_set_options[] = {
    { "max-connections", DV_CLI_OPT_INT, "N", "max_connections", NULL, NULL, 1, 1024,
      "libvirt connections Drover may open to the host" },
    { "max-operations", DV_CLI_OPT_INT, "N", "max_concurrent_operations", NULL, NULL, 1, 1024,
      "operations Drover runs on the host at once" },
    { "cluster", DV_CLI_OPT_STRING, "C", "cluster", NULL, NULL, 0, 0, "move the host into this cluster" },
    { "no-cluster", DV_CLI_OPT_FLAG_NULL, NULL, "cluster", NULL, NULL, 0, 0, "take the host out of its cluster" },
    { "group", DV_CLI_OPT_STRING, "G", "host_group", NULL, NULL, 0, 0, "move the host into this group" },
    { "run-as", DV_CLI_OPT_STRING, "ACCOUNT", "run_as", NULL, NULL, 0, 0,
      "authenticate to libvirt with this Run As account (name or id)" },
    { "no-run-as", DV_CLI_OPT_FLAG_NULL, NULL, "run_as", NULL, NULL, 0, 0, "stop using a Run As account" },
    { NULL },
};

static const DvCliOption dv_cli_host_group_add_options[] = {
    { "parent", DV_CLI_OPT_STRING, "P", "parent", NULL, NULL, 0, 0, "parent group (name or id)" },
    { "description", DV_CLI_OPT_STRING, "D", "description", NULL, NULL, 0, 0, "free text" },
    { NULL },
};

static const DvCliOption dv_cli_cluster_add_options[] = {
    { "group", DV_CLI_OPT_STRING, "G", "host_group", NULL, NULL, 0, 0, "host group the cluster belongs to" },
    { "description", DV_CLI_OPT_STRING, "D", "description", NULL, NULL, 0, 0, "free text" },
    { NULL },
};

static const DvCliColumn dv_cli_host_columns[] = {
    { "NAME", "name" },
    { "STATE", "state" },
    { "URI", "uri" },
    { "GROUP", "host_group_name|host_group_id|host_group" },
    { "CLUSTER", "cluster_name|cluster_id|cluster" },
    { "ID", "id" },
    { NULL },
};

static const DvCliColumn dv_cli_host_group_columns[] = {
    { "NAME", "name" },
    { "PARENT", "parent_name|parent_id|parent" },
    { "DESCRIPTION", "description" },
    { "ID", "id" },
    { NULL },
};

static const DvCliColumn dv_cli_cluster_columns[] = {
    { "NAME", "name" },
    { "GROUP", "host_group_name|host_group_id|host_group" },
    { "DESCRIPTION", "description" },
    { "ID", "id" },
    { NULL },
};

static const DvCliColumn dv_cli_host_pool_columns[] = {
    { "POOL", "name" },
    { "STATE", "state" },
    { "TYPE", "type" },
    { "CAPACITY", "capacity", DV_CLI_COL_BYTES },
    { "ALLOCATION", "allocation", DV_CLI_COL_BYTES },
    { "AVAILABLE", "available", DV_CLI_COL_BYTES },
    { NULL },
};

static gboolean
dv_cli_prepare_host_set(DvCliArgs *args, JsonObject *body, GError **error)
{
    if (dv_cli_args_has(args, "cluster") && dv_cli_args_has(args, "no-cluster")) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "cluster", "--cluster and --no-cluster contradict");
        return FALSE;
    }
    if (dv_cli_args_has(args, "run-as") && dv_cli_args_has(args, "no-run-as")) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "run_as", "--run-as and --no-run-as contradict");
        return FALSE;
    }
    if (json_object_get_size(body) == 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL, "nothing to change: give at least one option");
        return FALSE;
    }
    return TRUE;
}

/* Our limits beside libvirtd's own, one row per resource. */
static void
dv_cli_host_print_limits(DvCli *cli, JsonObject *host)
{
    static const struct {
        const char *what;
        const char *ours;
        const char *daemon;
    } rows[] = {
        { "connections", "limits.max_connections", "max_clients" },
        { "concurrent operations", "limits.max_concurrent_operations", "max_workers" },
        { "requests per client", NULL, "max_client_requests" },
    };
    static const char *const headers[] = { "LIMIT", "DROVER", "LIBVIRTD", "LIBVIRTD SETTING" };
    g_autoptr(DvCliTable) table = dv_cli_table_new(4, headers);
    g_autofree char *text = NULL;

    for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
        g_autofree char *ours = rows[i].ours != NULL ? dv_cli_value_to_string(host, rows[i].ours, DV_CLI_COL_TEXT)
                                                     : g_strdup("-");
        /* "limits.daemon" as documented; "daemon_limits" as some servers send it. */
        g_autofree char *path = g_strdup_printf("limits.daemon.%s|daemon_limits.%s", rows[i].daemon,
                                                rows[i].daemon);
        g_autofree char *theirs = dv_cli_value_to_string(host, path, DV_CLI_COL_TEXT);
        const char *cells[] = { rows[i].what, ours, theirs, rows[i].daemon };
        dv_cli_table_add_row(table, cells);
    }
    text = dv_cli_table_render(table, cli->out_tty);
    fprintf(cli->out, "\nLimits:\n%s", text);
}

static void
dv_cli_host_print_pools(DvCli *cli, const char *host_id)
{
    g_autoptr(GString) path = g_string_new("/storage-pools");
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonNode) node = NULL;
    g_autofree char *text = NULL;
    JsonArray *items;

    dv_cli_query_add(path, "host_id", host_id);
    node = dv_cli_client_request(cli->client, "GET", path->str, NULL, NULL, &local);
    if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node)) {
        /* The host itself was shown; a pool list is a bonus. */
        fprintf(cli->out, "\nPools: cannot list (%s)\n", local != NULL ? local->message : "bad response");
        return;
    }
    items = dv_json_get_array(json_node_get_object(node), "items");
    if (items == NULL || json_array_get_length(items) == 0) {
        fprintf(cli->out, "\nPools: none\n");
        return;
    }
    text = dv_cli_items_render(items, dv_cli_host_pool_columns, cli->out_tty);
    fprintf(cli->out, "\nPools:\n%s", text);
    if (dv_json_get_string(json_node_get_object(node), "next_cursor", NULL) != NULL)
        fprintf(cli->out, "(more: drover pool list --host %s)\n", host_id);
}

static gboolean
dv_cli_run_host_show(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body, GError **error)
{
    static const char *const skip[] = { "limits", "daemon_limits", NULL };
    g_autofree char *escaped = g_uri_escape_string(dv_cli_args_get_positional(args, 0), NULL, TRUE);
    g_autofree char *path = g_strconcat("/hosts/", escaped, NULL);
    g_autoptr(JsonNode) node = dv_cli_client_request(cli->client, "GET", path, NULL, NULL, error);
    JsonObject *host;

    if (node == NULL)
        return FALSE;
    if (cli->format == DV_CLI_FORMAT_JSON || !JSON_NODE_HOLDS_OBJECT(node)) {
        dv_cli_print_json(cli, node);
        return TRUE;
    }
    host = json_node_get_object(node);
    dv_cli_print_object(cli, "/hosts", host, skip);
    dv_cli_host_print_limits(cli, host);
    if (dv_json_get_string(host, "id", NULL) != NULL)
        dv_cli_host_print_pools(cli, dv_json_get_string(host, "id", NULL));
    return TRUE;
}

const DvCliCommand dv_cli_commands_host[] = {
    { "host", "add", "NAME", "Add a KVM host to the inventory.", dv_cli_host_add_options, dv_cli_prepare_name,
      dv_cli_run_job, "POST", "/hosts", NULL, "Added host {0}" },
    { "host", "list", "", "List hosts.", dv_cli_host_list_options, NULL, dv_cli_run_list, "GET", "/hosts",
      dv_cli_host_columns },
    { "host", "show", "HOST", "Show a host: facts, rights, limits beside libvirtd's, pools.", NULL, NULL,
      dv_cli_run_host_show },
    { "host", "refresh", "HOST", "Read a host's facts, rights, pools and networks again.", NULL, NULL,
      dv_cli_run_job, "POST", "/hosts/{0}/refresh", NULL, "Refreshed host {0}" },
    { "host", "set", "HOST", "Change a host's limits, cluster, group or Run As account.", dv_cli_host_set_options,
      dv_cli_prepare_host_set, dv_cli_run_job, "PATCH", "/hosts/{0}", NULL, "Updated host {0}" },
    { "host", "remove", "HOST", "Remove a host from the inventory (its VMs keep running).", NULL, NULL,
      dv_cli_run_job, "DELETE", "/hosts/{0}", NULL, "Removed host {0}" },

    { "host-group", "add", "NAME", "Add a host group.", dv_cli_host_group_add_options, dv_cli_prepare_name,
      dv_cli_run_job, "POST", "/host-groups", NULL, "Added host group {0}" },
    { "host-group", "list", "", "List host groups.", NULL, NULL, dv_cli_run_list, "GET", "/host-groups",
      dv_cli_host_group_columns },
    { "host-group", "show", "GROUP", "Show a host group.", NULL, NULL, dv_cli_run_show, "GET", "/host-groups/{0}" },
    { "host-group", "remove", "GROUP", "Remove an empty host group.", NULL, NULL, dv_cli_run_job, "DELETE",
      "/host-groups/{0}", NULL, "Removed host group {0}" },

    { "cluster", "add", "NAME", "Add a cluster.", dv_cli_cluster_add_options, dv_cli_prepare_name, dv_cli_run_job,
      "POST", "/clusters", NULL, "Added cluster {0}" },
    { "cluster", "list", "", "List clusters.", NULL, NULL, dv_cli_run_list, "GET", "/clusters",
      dv_cli_cluster_columns },
    { "cluster", "show", "CLUSTER", "Show a cluster.", NULL, NULL, dv_cli_run_show, "GET", "/clusters/{0}" },
    { "cluster", "remove", "CLUSTER", "Remove a cluster.", NULL, NULL, dv_cli_run_job, "DELETE", "/clusters/{0}",
      NULL, "Removed cluster {0}" },
    { NULL },
};
