#define G_LOG_DOMAIN "DvCli"

/* drover pool, volume, network, library-share, template. */

#include "dv-cli.h"
#include "dv-error.h"

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

/* --- networks and pools made through Drover (issue 12 item 7) --- */

static const DvCliOption dv_cli_network_create_options[] = {
    { "host", DV_CLI_OPT_STRING, "H", "host", NULL, NULL, 0, 0, "the host to make it on", TRUE },
    { "forward", DV_CLI_OPT_CHOICE, "nat|route|isolated|bridge", "forward", NULL, NULL, 0, 0,
      "how guests reach out (default nat)" },
    { "bridge", DV_CLI_OPT_STRING, "BR", "bridge", NULL, NULL, 0, 0,
      "the host bridge (bridge), else the bridge to make" },
    { "address", DV_CLI_OPT_STRING, "A/P", "address", NULL, NULL, 0, 0,
      "the host's IPv4 address and prefix on it: 10.20.30.1/24" },
    { "dhcp", DV_CLI_OPT_STRING, "FIRST-LAST", NULL, NULL, NULL, 0, 0, "DHCP range: 10.20.30.100-10.20.30.199" },
    { "no-start", DV_CLI_OPT_FLAG_FALSE, NULL, "start", NULL, NULL, 0, 0, "define it only" },
    { "no-autostart", DV_CLI_OPT_FLAG_FALSE, NULL, "autostart", NULL, NULL, 0, 0,
      "do not start it with the host" },
    { NULL },
};

static const DvCliOption dv_cli_pool_create_options[] = {
    { "host", DV_CLI_OPT_STRING, "H", "host", NULL, NULL, 0, 0, "the host to make it on", TRUE },
    { "type", DV_CLI_OPT_CHOICE, "dir|netfs|logical", "type", NULL, NULL, 0, 0, "pool type (default dir)" },
    { "path", DV_CLI_OPT_STRING, "DIR", "path", NULL, NULL, 0, 0, "target directory (dir, netfs)" },
    { "source-host", DV_CLI_OPT_STRING, "SERVER", "source_host", NULL, NULL, 0, 0, "netfs: NFS or SMB server" },
    { "source-path", DV_CLI_OPT_STRING, "EXPORT", "source_path", NULL, NULL, 0, 0,
      "netfs: NFS export or SMB share" },
    { "source-format", DV_CLI_OPT_CHOICE, "nfs|cifs", "source_format", NULL, NULL, 0, 0, "netfs: default nfs" },
    { "vg", DV_CLI_OPT_STRING, "VG", "source_name", NULL, NULL, 0, 0, "logical: volume group (default NAME)" },
    { "device", DV_CLI_OPT_LIST, "DEV", NULL, NULL, NULL, 0, 0, "logical: build the volume group on DEV" },
    { "no-start", DV_CLI_OPT_FLAG_FALSE, NULL, "start", NULL, NULL, 0, 0, "define (and build) it only" },
    { "no-autostart", DV_CLI_OPT_FLAG_FALSE, NULL, "autostart", NULL, NULL, 0, 0,
      "do not start it with the host" },
    { NULL },
};

static const DvCliOption dv_cli_netpool_set_options[] = {
    { "autostart", DV_CLI_OPT_CHOICE, "on|off", NULL, NULL, NULL, 0, 0, "start with the host", TRUE },
    { NULL },
};

static gboolean
dv_cli_prepare_network_create(DvCliArgs *args, JsonObject *body, GError **error)
{
    const char *dhcp = dv_cli_args_get_string(args, "dhcp");
    if (dhcp != NULL) {
        g_auto(GStrv) parts = g_strsplit(dhcp, "-", 2);
        if (parts[0] == NULL || parts[1] == NULL) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "dhcp",
                               "--dhcp: must be FIRST-LAST (10.20.30.100-10.20.30.199)");
            return FALSE;
        }
        json_object_set_string_member(body, "dhcp_start", parts[0]);
        json_object_set_string_member(body, "dhcp_end", parts[1]);
    }
    return dv_cli_prepare_name(args, body, error);
}

static gboolean
dv_cli_prepare_pool_create(DvCliArgs *args, JsonObject *body, GError **error)
{
    if (dv_cli_args_has(args, "device"))
        dv_cli_args_add_list(args, "device", body, "source_devices", NULL);
    return dv_cli_prepare_name(args, body, error);
}

static gboolean
dv_cli_prepare_netpool_set(DvCliArgs *args, JsonObject *body, GError **error)
{
    json_object_set_boolean_member(body, "autostart",
                                   g_strcmp0(dv_cli_args_get_string(args, "autostart"), "on") == 0);
    return TRUE;
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

    { "network", "create", "NAME", "Make a virtual network on a host (NAT, routed, isolated, or a host bridge).",
      dv_cli_network_create_options, dv_cli_prepare_network_create, dv_cli_run_job, "POST", "/networks", NULL,
      "Created network {0}",
      "network create NAME --host H [--forward nat|route|isolated|bridge] [--bridge BR]\n"
      "                       [--address A/P] [--dhcp FIRST-LAST] [--no-start] [--no-autostart]" },
    { "network", "start", "NETWORK", "Start a network.", NULL, NULL, dv_cli_run_job, "POST", "/networks/{0}/start",
      NULL, "Started network {0}" },
    { "network", "stop", "NETWORK", "Stop a network.", NULL, NULL, dv_cli_run_job, "POST", "/networks/{0}/stop",
      NULL, "Stopped network {0}" },
    { "network", "set", "NETWORK", "Change whether a network starts with its host.", dv_cli_netpool_set_options,
      dv_cli_prepare_netpool_set, dv_cli_run_job, "PATCH", "/networks/{0}", NULL, "Changed network {0}" },
    { "network", "delete", "NETWORK", "Stop and delete a network (refused while VMs use it).", NULL, NULL,
      dv_cli_run_job, "DELETE", "/networks/{0}", NULL, "Deleted network {0}" },
    { "pool", "create", "NAME", "Make a storage pool on a host (dir, netfs NFS/CIFS, logical).",
      dv_cli_pool_create_options, dv_cli_prepare_pool_create, dv_cli_run_job, "POST", "/storage-pools", NULL,
      "Created pool {0}",
      "pool create NAME --host H [--type dir|netfs|logical] [--path DIR]\n"
      "                       [--source-host SERVER --source-path EXPORT [--source-format nfs|cifs]]\n"
      "                       [--vg VG] [--device DEV]... [--no-start] [--no-autostart]" },
    { "pool", "start", "POOL", "Start a storage pool.", NULL, NULL, dv_cli_run_job, "POST",
      "/storage-pools/{0}/start", NULL, "Started pool {0}" },
    { "pool", "stop", "POOL", "Stop a storage pool.", NULL, NULL, dv_cli_run_job, "POST", "/storage-pools/{0}/stop",
      NULL, "Stopped pool {0}" },
    { "pool", "set", "POOL", "Change whether a storage pool starts with its host.", dv_cli_netpool_set_options,
      dv_cli_prepare_netpool_set, dv_cli_run_job, "PATCH", "/storage-pools/{0}", NULL, "Changed pool {0}" },
    { "pool", "delete", "POOL", "Stop and forget a storage pool; its files stay (refused while VMs' disks are in it).",
      NULL, NULL, dv_cli_run_job, "DELETE", "/storage-pools/{0}", NULL, "Deleted pool {0}" },

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
