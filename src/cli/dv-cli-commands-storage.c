#define G_LOG_DOMAIN "DvCli"

/* drover pool, volume, network, library-share, template. */

#include "dv-cli.h"

static const DvCliOption dv_cli_host_filter_options[] = {
    { "host", DV_CLI_OPT_STRING, "H", NULL, "host_id", "/hosts", 0, 0, "only this host (name or id)" },
    { NULL },
};

static const DvCliOption dv_cli_volume_list_options[] = {
    /* --host first: a pool name is looked up on that host. */
    { "host", DV_CLI_OPT_STRING, "H", NULL, "host_id", "/hosts", 0, 0, "only this host (name or id)" },
    { "pool", DV_CLI_OPT_STRING, "P", NULL, "pool_id", "/storage-pools", 0, 0, "only this pool (name or id)" },
    { NULL },
};

static const DvCliOption dv_cli_share_add_options[] = {
    { "path", DV_CLI_OPT_STRING, "P", "path", NULL, NULL, 0, 0, "directory holding the library images", TRUE },
    { "host", DV_CLI_OPT_STRING, "H", "host", NULL, NULL, 0, 0, "host that serves the share (with --pool)" },
    { "pool", DV_CLI_OPT_STRING, "POOL", "pool", NULL, NULL, 0, 0, "storage pool on that host (with --host)" },
    { "description", DV_CLI_OPT_STRING, "D", "description", NULL, NULL, 0, 0, "free text" },
    { NULL },
};

static const DvCliOption dv_cli_template_add_options[] = {
    { "vcpus", DV_CLI_OPT_INT, "N", "vcpus", NULL, NULL, 1, 512, "virtual CPUs (1-512)", TRUE },
    { "memory", DV_CLI_OPT_INT, "MIB", "memory_mib", NULL, NULL, 16, 4194304, "memory in MiB (16-4194304)", TRUE },
    { "generation", DV_CLI_OPT_INT, "1|2", "generation", NULL, NULL, 1, 2, "1 = BIOS, 2 = UEFI" },
    { "no-secure-boot", DV_CLI_OPT_FLAG_FALSE, NULL, "secure_boot", NULL, NULL, 0, 0,
      "generation 2 without Secure Boot" },
    { "network", DV_CLI_OPT_LIST, "NET", NULL, NULL, NULL, 0, 0, "attach a NIC to this network" },
    { "share", DV_CLI_OPT_STRING, "S", "library_share", NULL, NULL, 0, 0, "library share of the disk image" },
    { "disk-volume", DV_CLI_OPT_STRING, "V", "disk_volume", NULL, NULL, 0, 0, "disk image in that share" },
    { "description", DV_CLI_OPT_STRING, "D", "description", NULL, NULL, 0, 0, "free text" },
    { NULL },
};

static const DvCliColumn dv_cli_pool_columns[] = {
    { "NAME", "name" },
    { "HOST", "host_name|host_id|host" },
    { "STATE", "state" },
    { "TYPE", "type" },
    { "CAPACITY", "capacity", DV_CLI_COL_BYTES },
    { "AVAILABLE", "available", DV_CLI_COL_BYTES },
    { "ID", "id" },
    { NULL },
};

static const DvCliColumn dv_cli_volume_columns[] = {
    { "NAME", "name" },
    { "POOL", "pool_name|pool_id|pool" },
    { "HOST", "host_name|host_id|host" },
    { "FORMAT", "format" },
    { "CAPACITY", "capacity", DV_CLI_COL_BYTES },
    { "ALLOCATION", "allocation", DV_CLI_COL_BYTES },
    { "PATH", "path" },
    { NULL },
};

static const DvCliColumn dv_cli_network_columns[] = {
    { "NAME", "name" },
    { "HOST", "host_name|host_id|host" },
    { "ACTIVE", "active|state" },
    { "FORWARD", "forward_mode|forward" },
    { "BRIDGE", "bridge" },
    { "ID", "id" },
    { NULL },
};

static const DvCliColumn dv_cli_share_columns[] = {
    { "NAME", "name" },
    { "PATH", "path" },
    { "HOST", "host_name|host_id|host" },
    { "POOL", "pool_name|pool_id|pool" },
    { "ID", "id" },
    { NULL },
};

static const DvCliColumn dv_cli_template_columns[] = {
    { "NAME", "name" },
    { "VCPUS", "vcpus" },
    { "MEMORY", "memory_mib", DV_CLI_COL_MIB },
    { "GEN", "generation" },
    { "SECURE BOOT", "secure_boot" },
    { "NETWORKS", "networks" },
    { "SHARE", "library_share_name|library_share_id|library_share" },
    { "DISK", "disk_volume" },
    { "ID", "id" },
    { NULL },
};

static gboolean
dv_cli_prepare_share_add(DvCliArgs *args, JsonObject *body, GError **error)
{
    if (!dv_cli_args_require_together(args, "host", "pool", error))
        return FALSE;
    return dv_cli_prepare_name(args, body, error);
}

static gboolean
dv_cli_prepare_template_add(DvCliArgs *args, JsonObject *body, GError **error)
{
    if (!dv_cli_args_require_together(args, "share", "disk-volume", error))
        return FALSE;
    /* A template keeps networks as plain names (a VM spec takes objects). */
    dv_cli_args_add_list(args, "network", body, "networks", NULL);
    return dv_cli_prepare_name(args, body, error);
}

static const DvCliOption dv_cli_volume_create_options[] = {
    { "pool", DV_CLI_OPT_STRING, "POOL", "pool", NULL, NULL, 0, 0, "storage pool (name or id)", TRUE },
    { "host", DV_CLI_OPT_STRING, "H", "host", NULL, NULL, 0, 0, "host of the pool, when pool names several" },
    { "size", DV_CLI_OPT_STRING, "SIZE", NULL, NULL, NULL, 0, 0, "size with a unit: 20G, 512M", TRUE },
    { "format", DV_CLI_OPT_CHOICE, "qcow2|raw", "format", NULL, NULL, 0, 0, "disk format (default qcow2)" },
    { NULL },
};

static const DvCliOption dv_cli_volume_resize_options[] = {
    { "size", DV_CLI_OPT_STRING, "SIZE", NULL, NULL, NULL, 0, 0,
      "new size with a unit (20G); volumes only grow", TRUE },
    { NULL },
};

/* --size SIZE to body "size" in bytes. */
static gboolean
dv_cli_prepare_volume_size(DvCliArgs *args, JsonObject *body, GError **error)
{
    gint64 bytes = 0;
    if (!dv_cli_parse_size("--size", dv_cli_args_get_string(args, "size"), &bytes, error))
        return FALSE;
    json_object_set_int_member(body, "size", bytes);
    return TRUE;
}

static gboolean
dv_cli_prepare_volume_create(DvCliArgs *args, JsonObject *body, GError **error)
{
    return dv_cli_prepare_volume_size(args, body, error) && dv_cli_prepare_name(args, body, error);
}

const DvCliCommand dv_cli_commands_storage[] = {
    { "pool", "list", "", "List storage pools.", dv_cli_host_filter_options, NULL, dv_cli_run_list, "GET",
      "/storage-pools", dv_cli_pool_columns },
    { "volume", "list", "", "List storage volumes.", dv_cli_volume_list_options, NULL, dv_cli_run_list, "GET",
      "/volumes", dv_cli_volume_columns },
    { "volume", "create", "NAME", "Create a storage volume in a pool.", dv_cli_volume_create_options,
      dv_cli_prepare_volume_create, dv_cli_run_job, "POST", "/volumes", NULL, "Created volume {0}",
      "volume create NAME --pool POOL [--host H] --size SIZE [--format qcow2|raw]" },
    { "volume", "resize", "VOLUME", "Grow a volume (live when a running VM uses it).",
      dv_cli_volume_resize_options, dv_cli_prepare_volume_size, dv_cli_run_job, "POST", "/volumes/{0}/resize",
      NULL, "Resized volume {0}" },
    { "volume", "delete", "VOLUME", "Delete a volume no VM uses.", NULL, NULL, dv_cli_run_job, "DELETE",
      "/volumes/{0}", NULL, "Deleted volume {0}" },
    { "network", "list", "", "List virtual networks.", dv_cli_host_filter_options, NULL, dv_cli_run_list, "GET",
      "/networks", dv_cli_network_columns },

    { "library-share", "add", "NAME", "Add a library share holding template disk images.",
      dv_cli_share_add_options, dv_cli_prepare_share_add, dv_cli_run_job, "POST", "/library-shares", NULL,
      "Added library share {0}", "library-share add NAME --path P [--host H --pool POOL] [--description D]" },
    { "library-share", "list", "", "List library shares.", NULL, NULL, dv_cli_run_list, "GET", "/library-shares",
      dv_cli_share_columns },
    { "library-share", "show", "SHARE", "Show a library share.", NULL, NULL, dv_cli_run_show, "GET",
      "/library-shares/{0}" },
    { "library-share", "remove", "SHARE", "Remove a library share (its files stay).", NULL, NULL, dv_cli_run_job,
      "DELETE", "/library-shares/{0}", NULL, "Removed library share {0}" },

    { "template", "add", "NAME", "Add a VM template.", dv_cli_template_add_options, dv_cli_prepare_template_add,
      dv_cli_run_job, "POST", "/templates", NULL, "Added template {0}",
      "template add NAME --vcpus N --memory MIB [--generation 1|2] [--no-secure-boot] [--network NET]...\n"
      "                       [--share S --disk-volume V] [--description D]" },
    { "template", "list", "", "List templates.", NULL, NULL, dv_cli_run_list, "GET", "/templates",
      dv_cli_template_columns },
    { "template", "show", "TEMPLATE", "Show a template.", NULL, NULL, dv_cli_run_show, "GET", "/templates/{0}" },
    { "template", "remove", "TEMPLATE", "Remove a template.", NULL, NULL, dv_cli_run_job, "DELETE",
      "/templates/{0}", NULL, "Removed template {0}" },
    { NULL },
};
