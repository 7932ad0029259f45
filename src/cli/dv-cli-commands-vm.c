#define G_LOG_DOMAIN "DvCli"

/* drover vm, vm snapshot. */

#include "dv-cli.h"

#include "dv-error.h"
#include "dv-json.h"

#include <errno.h>
#include <glib-unix.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define DV_CLI_MAX_DISKS 16
#define DV_CLI_MAX_NETWORKS 8

static const DvCliOption dv_cli_vm_create_options[] = {
    { "host", DV_CLI_OPT_STRING, "H", "host", NULL, NULL, 0, 0, "create it on this host" },
    { "host-group", DV_CLI_OPT_STRING, "G", "host_group", NULL, NULL, 0, 0,
      "let placement pick a host of this group" },
    { "template", DV_CLI_OPT_STRING, "T", "template", NULL, NULL, 0, 0, "start from this template" },
    { "vcpus", DV_CLI_OPT_INT, "N", "vcpus", NULL, NULL, 1, 512, "virtual CPUs (1-512)" },
    { "memory", DV_CLI_OPT_SIZE_MIB, "SIZE", "memory_mib", NULL, NULL, 16, 4194304,
      "memory: 2G, 512M, or MiB as a plain number (16M-4T)" },
    { "generation", DV_CLI_OPT_INT, "1|2", "generation", NULL, NULL, 1, 2, "1 = BIOS, 2 = UEFI" },
    { "no-secure-boot", DV_CLI_OPT_FLAG_FALSE, NULL, "secure_boot", NULL, NULL, 0, 0,
      "generation 2 without Secure Boot" },
    { "disk", DV_CLI_OPT_LIST, "SIZE[:POOL[:FORMAT]]", NULL, NULL, NULL, 0, 0,
      "create a new disk: 20G:default, or MiB as a plain number" },
    { "volume", DV_CLI_OPT_LIST, "PATH", NULL, NULL, NULL, 0, 0, "attach an existing volume" },
    { "network", DV_CLI_OPT_LIST, "NET", NULL, NULL, NULL, 0, 0, "attach a NIC to this network" },
    { "cdrom", DV_CLI_OPT_LIST, "SHARE/FILE", NULL, NULL, NULL, 0, 0,
      "a CD-ROM drive with this ISO of a library share" },
    { "cdrom-volume", DV_CLI_OPT_LIST, "POOL/VOLUME", NULL, NULL, NULL, 0, 0,
      "a CD-ROM drive with this ISO volume of a pool" },
    { "boot-order", DV_CLI_OPT_STRING, "DEV[,DEV...]", NULL, NULL, NULL, 0, 0,
      "disk, cdrom, network in order (default disk)" },
    { "start", DV_CLI_OPT_FLAG, NULL, "start", NULL, NULL, 0, 0, "start the VM once it is created" },
    { "description", DV_CLI_OPT_STRING, "D", "description", NULL, NULL, 0, 0, "free text" },
    { NULL },
};

static const DvCliOption dv_cli_vm_list_options[] = {
    { "host", DV_CLI_OPT_STRING, "H", NULL, "host_id", "/hosts", 0, 0, "only VMs of this host (name or id)" },
    { "state", DV_CLI_OPT_CHOICE, "running|paused|shutdown|shutoff|crashed|pmsuspended|creating|missing|unknown", NULL,
      "state", NULL, 0, 0, "only VMs in this state" },
    { "name-prefix", DV_CLI_OPT_STRING, "P", NULL, "name_prefix", NULL, 0, 0, "only names starting with P" },
    { NULL },
};

static const DvCliOption dv_cli_vm_delete_options[] = {
    { "delete-volumes", DV_CLI_OPT_FLAG, NULL, NULL, "delete_volumes", NULL, 0, 0, "also delete its volumes" },
    { "force", DV_CLI_OPT_FLAG, NULL, NULL, "force", NULL, 0, 0, "a running VM: force it off first" },
    { NULL },
};

static const DvCliOption dv_cli_vm_shutdown_options[] = {
    { "timeout", DV_CLI_OPT_INT, "SECONDS", "timeout", NULL, NULL, 1, 3600,
      "wait this long for the guest (1-3600, default 120)" },
    { NULL },
};

static const DvCliOption dv_cli_vm_clone_options[] = {
    { "host", DV_CLI_OPT_STRING, "H", "host", NULL, NULL, 0, 0, "the source's host (a clone stays on it)" },
    { "pool", DV_CLI_OPT_STRING, "P", "pool", NULL, NULL, 0, 0, "put the copies in this pool" },
    { "linked", DV_CLI_OPT_FLAG, NULL, "linked", NULL, NULL, 0, 0,
      "an overlay on a frozen copy of each disk" },
    { "description", DV_CLI_OPT_STRING, "D", "description", NULL, NULL, 0, 0, "free text" },
    { NULL },
};

static const DvCliOption dv_cli_vm_migrate_options[] = {
    { "to", DV_CLI_OPT_STRING, "HOST", "to", NULL, NULL, 0, 0,
      "the target host (default: the best host of the VM's cluster)" },
    { "storage", DV_CLI_OPT_CHOICE, "auto|shared|copy", "storage", NULL, NULL, 0, 0,
      "shared storage, or copy the disks (default auto)" },
    { "bandwidth", DV_CLI_OPT_INT, "MIB_S", "bandwidth_mib_s", NULL, NULL, 1, 1048576,
      "cap the migration at this many MiB/s" },
    { "timeout", DV_CLI_OPT_INT, "SECONDS", "timeout_s", NULL, NULL, 5, 86400,
      "abort it after this long (default 1800)" },
    { NULL },
};

static const DvCliOption dv_cli_vm_migrate_check_options[] = {
    { "to", DV_CLI_OPT_STRING, "HOST", NULL, "to", NULL, 0, 0, "check this host only" },
    { "storage", DV_CLI_OPT_CHOICE, "auto|shared|copy", NULL, "storage", NULL, 0, 0,
      "as vm migrate --storage" },
    { NULL },
};

static const DvCliOption dv_cli_vm_set_options[] = {
    { "vcpus", DV_CLI_OPT_INT, "N", "vcpus", NULL, NULL, 1, 256, "virtual CPUs (1-256)" },
    { "memory", DV_CLI_OPT_SIZE_MIB, "SIZE", "memory_mib", NULL, NULL, 16, 4194304,
      "memory: 2G, 512M, or MiB as a plain number (16M-4T)" },
    { "description", DV_CLI_OPT_STRING, "D", "description", NULL, NULL, 0, 0, "free text" },
    { "autostart", DV_CLI_OPT_CHOICE, "on|off", NULL, NULL, NULL, 0, 0, "start with the host" },
    { "boot-order", DV_CLI_OPT_STRING, "DEV[,DEV...]", NULL, NULL, NULL, 0, 0,
      "disk, cdrom, network in order (next boot)" },
    { "name", DV_CLI_OPT_STRING, "NEW", "name", NULL, NULL, 0, 0, "rename (only while shut off)" },
    { NULL },
};

static const DvCliOption dv_cli_vm_console_options[] = {
    { "read-only", DV_CLI_OPT_FLAG, NULL, NULL, NULL, NULL, 0, 0,
      "watch only (another viewer may be typing)" },
    { NULL },
};

/* vm snapshot create (docs/CLI.md, "Snapshots"). */
static const DvCliOption dv_cli_snapshot_create_options[] = {
    { "description", DV_CLI_OPT_STRING, "D", "description", NULL, NULL, 0, 0, "free text" },
    { "kind", DV_CLI_OPT_CHOICE, "internal|external", "kind", NULL, NULL, 0, 0,
      "inside the qcow2 disks, or a new layer on each disk (default: internal when the VM allows it)" },
    { "no-memory", DV_CLI_OPT_FLAG_FALSE, NULL, "memory", NULL, NULL, 0, 0,
      "a running VM's disks alone, crash-consistent (default: with its memory when it runs)" },
    { NULL },
};

static const DvCliColumn dv_cli_vm_columns[] = {
    { "NAME", "name" },
    { "HOST", "host_name|host_id|host" },
    { "STATE", "state" },
    { "VCPUS", "vcpus" },
    { "MEMORY", "memory_mib", DV_CLI_COL_MIB },
    { "GEN", "generation" },
    { "ID", "id" },
    { NULL },
};

static const DvCliColumn dv_cli_snapshot_columns[] = {
    { "NAME", "name" },
    { "VM STATE", "vm_state|state" },
    { "PARENT", "parent_name|parent" },
    { "CURRENT", "is_current|current" },
    { "KIND", "kind" },
    { "MEMORY", "memory" },
    { "CREATED", "created_at" },
    { "DESCRIPTION", "description" },
    { NULL },
};

/* Disks in command-line order, --disk and --volume mixed: the first is
 * the boot disk. */
static gboolean
dv_cli_vm_add_disks(DvCliArgs *args, JsonObject *body, GError **error)
{
    g_autoptr(JsonArray) disks = json_array_new();

    for (guint i = 0; i < args->given->len; i++) {
        DvCliArg *arg = g_ptr_array_index(args->given, i);
        JsonObject *disk;
        if (g_strcmp0(arg->option->name, "disk") == 0) {
            disk = dv_cli_disk_spec_parse(arg->value, error);
            if (disk == NULL)
                return FALSE;
        } else if (g_strcmp0(arg->option->name, "volume") == 0) {
            disk = json_object_new();
            json_object_set_string_member(disk, "volume", arg->value);
        } else {
            continue;
        }
        json_array_add_object_element(disks, disk);
    }
    if (json_array_get_length(disks) > DV_CLI_MAX_DISKS) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "disks", "at most %d disks (--disk and --volume)",
                           DV_CLI_MAX_DISKS);
        return FALSE;
    }
    if (json_array_get_length(disks) > 0)
        json_object_set_array_member(body, "disks", g_steal_pointer(&disks));
    return TRUE;
}

/* "SHARE/FILE" or "POOL/VOLUME" into {library_share, file} or {pool,
 * volume}. */
static JsonObject *
dv_cli_iso_ref(const char *option, const char *value, gboolean pool, GError **error)
{
    const char *slash = strchr(value, '/');
    JsonObject *o;

    if (slash == NULL || slash == value || slash[1] == '\0' || strchr(slash + 1, '/') != NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, pool ? "volume" : "file",
                           "%s: give %s, got '%s'", option, pool ? "POOL/VOLUME" : "SHARE/FILE",
                           value);
        return NULL;
    }
    o = json_object_new();
    {
        g_autofree char *first = g_strndup(value, (gsize)(slash - value));
        json_object_set_string_member(o, pool ? "pool" : "library_share", first);
    }
    json_object_set_string_member(o, pool ? "volume" : "file", slash + 1);
    return o;
}

static gboolean
dv_cli_boot_order(DvCliArgs *args, JsonObject *body)
{
    const char *boot = dv_cli_args_get_string(args, "boot-order");
    if (boot != NULL) {
        g_auto(GStrv) parts = g_strsplit(boot, ",", 4);
        JsonArray *order = json_array_new();
        for (guint i = 0; parts[i] != NULL; i++)
            json_array_add_string_element(order, g_strstrip(parts[i]));
        json_object_set_array_member(body, "boot_order", order);
    }
    return TRUE;
}

static gboolean
dv_cli_vm_add_cdroms(DvCliArgs *args, JsonObject *body, GError **error)
{
    g_autoptr(JsonArray) cdroms = json_array_new();

    for (guint i = 0; i < args->given->len; i++) {
        const DvCliArg *arg = g_ptr_array_index(args->given, i);
        gboolean pool = g_strcmp0(arg->option->name, "cdrom-volume") == 0;
        JsonObject *ref;
        if (!pool && g_strcmp0(arg->option->name, "cdrom") != 0)
            continue;
        ref = dv_cli_iso_ref(pool ? "--cdrom-volume" : "--cdrom", arg->value, pool, error);
        if (ref == NULL)
            return FALSE;
        json_array_add_object_element(cdroms, ref);
    }
    if (json_array_get_length(cdroms) > 0)
        json_object_set_array_member(body, "cdroms", g_steal_pointer(&cdroms));
    return dv_cli_boot_order(args, body);
}

static const DvCliOption dv_cli_vm_cdrom_insert_options[] = {
    { "pool", DV_CLI_OPT_FLAG, NULL, NULL, NULL, NULL, 0, 0, "ISO is POOL/VOLUME, not SHARE/FILE" },
    { "target", DV_CLI_OPT_STRING, "DEV", "target", NULL, NULL, 0, 0, "the drive (default the first)" },
    { NULL },
};

static const DvCliOption dv_cli_vm_cdrom_eject_options[] = {
    { "target", DV_CLI_OPT_STRING, "DEV", "target", NULL, NULL, 0, 0, "the drive (default the first)" },
    { NULL },
};

static gboolean
dv_cli_prepare_vm_cdrom_insert(DvCliArgs *args, JsonObject *body, GError **error)
{
    gboolean pool = dv_cli_args_has(args, "pool");
    g_autoptr(JsonObject) ref =
        dv_cli_iso_ref("ISO", dv_cli_args_get_positional(args, 1), pool, error);
    if (ref == NULL)
        return FALSE;
    json_object_set_string_member(body, pool ? "pool" : "library_share",
                                  dv_json_get_string(ref, pool ? "pool" : "library_share", ""));
    json_object_set_string_member(body, pool ? "volume" : "file",
                                  dv_json_get_string(ref, pool ? "volume" : "file", ""));
    return TRUE;
}

static gboolean
dv_cli_prepare_vm_cdrom_eject(DvCliArgs *args, JsonObject *body, GError **error)
{
    json_object_set_boolean_member(body, "eject", TRUE);
    return TRUE;
}

static gboolean
dv_cli_prepare_vm_create(DvCliArgs *args, JsonObject *body, GError **error)
{
    JsonArray *networks;

    if (!dv_cli_args_require_one_of(args, "host", "host-group", error))
        return FALSE;
    if (!dv_cli_vm_add_disks(args, body, error) || !dv_cli_vm_add_cdroms(args, body, error))
        return FALSE;
    dv_cli_args_add_list(args, "network", body, "networks", "network");
    networks = json_object_has_member(body, "networks") ? json_object_get_array_member(body, "networks") : NULL;
    if (networks != NULL && json_array_get_length(networks) > DV_CLI_MAX_NETWORKS) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "networks", "at most %d --network options",
                           DV_CLI_MAX_NETWORKS);
        return FALSE;
    }
    return dv_cli_prepare_name(args, body, error);
}

static gboolean
dv_cli_prepare_vm_set(DvCliArgs *args, JsonObject *body, GError **error)
{
    const char *autostart = dv_cli_args_get_string(args, "autostart");
    const char *boot = dv_cli_args_get_string(args, "boot-order");

    if (autostart != NULL)
        json_object_set_boolean_member(body, "autostart", g_strcmp0(autostart, "on") == 0);
    if (boot != NULL) {
        g_auto(GStrv) parts = g_strsplit(boot, ",", 4);
        JsonArray *order = json_array_new();
        for (guint i = 0; parts[i] != NULL; i++)
            json_array_add_string_element(order, g_strstrip(parts[i]));
        json_object_set_array_member(body, "boot_order", order);
    }
    if (json_object_get_size(body) == 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL,
                           "nothing to change: give at least one of --vcpus, --memory, --description, "
                           "--autostart, --boot-order, --name");
        return FALSE;
    }
    return TRUE;
}

static const DvCliOption dv_cli_vm_disk_add_options[] = {
    { "volume", DV_CLI_OPT_STRING, "VOL", "volume", NULL, NULL, 0, 0, "attach this existing volume (id or path)" },
    { "size", DV_CLI_OPT_STRING, "SIZE", NULL, NULL, NULL, 0, 0, "or a new volume of this size: 20G, 512M" },
    { "pool", DV_CLI_OPT_STRING, "POOL", "pool", NULL, NULL, 0, 0, "the new volume's pool (default \"default\")" },
    { "format", DV_CLI_OPT_CHOICE, "qcow2|raw", "format", NULL, NULL, 0, 0, "the new volume's format" },
    { NULL },
};

static gboolean
dv_cli_prepare_vm_disk_add(DvCliArgs *args, JsonObject *body, GError **error)
{
    const char *size = dv_cli_args_get_string(args, "size");

    if (!dv_cli_args_require_one_of(args, "volume", "size", error))
        return FALSE;
    if (size != NULL) {
        gint64 bytes = 0;
        if (!dv_cli_parse_size("--size", size, &bytes, error))
            return FALSE;
        json_object_set_int_member(body, "size", bytes);
    }
    return TRUE;
}

static const DvCliOption dv_cli_vm_nic_add_options[] = {
    { "network", DV_CLI_OPT_STRING, "NET", "network", NULL, NULL, 0, 0, "a libvirt network of the VM's host" },
    { "bridge", DV_CLI_OPT_STRING, "BR", "bridge", NULL, NULL, 0, 0, "or a bridge of the host (e.g. br0)" },
    { "mac", DV_CLI_OPT_STRING, "MAC", "mac", NULL, NULL, 0, 0, "its MAC (default: a free 52:54:00:… address)" },
    { "model", DV_CLI_OPT_CHOICE, "virtio|e1000|e1000e|rtl8139", "model", NULL, NULL, 0, 0,
      "the emulated card (default virtio)" },
    { NULL },
};

static gboolean
dv_cli_prepare_vm_nic_add(DvCliArgs *args, JsonObject *body, GError **error)
{
    return dv_cli_args_require_one_of(args, "network", "bridge", error);
}

static gboolean
dv_cli_prepare_vm_clone(DvCliArgs *args, JsonObject *body, GError **error)
{
    json_object_set_string_member(body, "name", dv_cli_args_get_positional(args, 1));
    return TRUE;
}

static gboolean
dv_cli_prepare_snapshot_create(DvCliArgs *args, JsonObject *body, GError **error)
{
    json_object_set_string_member(body, "name", dv_cli_args_get_positional(args, 1));
    return TRUE;
}

/* --- vm migrate-check ------------------------------------------------------- */

/* Prints each candidate host with its rating and every check. */
static gboolean
dv_cli_run_vm_migrate_check(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body,
                            GError **error)
{
    const char *const *pos = (const char *const *)args->positional->pdata;
    g_autofree char *expanded = dv_cli_path_expand(cmd->path, pos, TRUE);
    g_autoptr(GString) path = g_string_new(expanded);
    g_autoptr(JsonNode) node = NULL;
    JsonObject *plan;
    JsonArray *cands;

    if (!dv_cli_args_add_query(cli, args, path, error))
        return FALSE;
    node = dv_cli_client_request(cli->client, "GET", path->str, NULL, NULL, error);
    if (node == NULL)
        return FALSE;
    if (cli->format == DV_CLI_FORMAT_JSON || !JSON_NODE_HOLDS_OBJECT(node)) {
        dv_cli_print_json(cli, node);
        return TRUE;
    }
    plan = json_node_get_object(node);
    cands = dv_json_get_array(plan, "candidates");
    for (guint i = 0; cands != NULL && i < json_array_get_length(cands); i++) {
        JsonObject *c = json_array_get_object_element(cands, i);
        JsonArray *checks = dv_json_get_array(c, "checks");
        fprintf(cli->out, "%s: %s", dv_json_get_string(c, "host", ""),
                dv_json_get_bool(c, "ok", FALSE) ? "can take it" : "cannot take it");
        if (json_object_has_member(c, "rating"))
            fprintf(cli->out, ", rating %.0f (%" G_GINT64_FORMAT " MiB free, CPU %.0f%% busy)",
                    json_object_get_double_member(c, "rating"),
                    dv_json_get_int(c, "free_memory_mib", 0),
                    100.0 * (json_object_has_member(c, "cpu_busy")
                                 ? json_object_get_double_member(c, "cpu_busy")
                                 : 0.0));
        fprintf(cli->out, ", storage %s\n", dv_json_get_string(c, "storage", "?"));
        for (guint k = 0; checks != NULL && k < json_array_get_length(checks); k++) {
            JsonObject *x = json_array_get_object_element(checks, k);
            fprintf(cli->out, "  %-4s %-12s %s\n", dv_json_get_bool(x, "ok", FALSE) ? "ok" : "FAIL",
                    dv_json_get_string(x, "check", ""), dv_json_get_string(x, "detail", ""));
        }
    }
    fprintf(cli->out, "target: %s\n", dv_json_get_string(plan, "target", "none"));
    return TRUE;
}

/* --- vm console ------------------------------------------------------------- */

#define DV_CLI_CONSOLE_ESCAPE 0x1d /* Ctrl-], as virsh console */
#define DV_CLI_CONSOLE_LINGER_MS 1000

typedef struct {
    DvCli *cli;
    SoupWebsocketConnection *ws;
    GMainLoop *loop;
    gboolean read_only;
    gboolean stdin_done;
    guint stdin_watch;
    guint linger;
    char *closed_reason;
} DvCliConsole;

static void
dv_cli_console_leave(DvCliConsole *c)
{
    if (soup_websocket_connection_get_state(c->ws) == SOUP_WEBSOCKET_STATE_OPEN)
        soup_websocket_connection_close(c->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
    g_main_loop_quit(c->loop);
}

static gboolean
dv_cli_console_linger_done(gpointer data)
{
    DvCliConsole *c = data;
    c->linger = 0;
    dv_cli_console_leave(c);
    return G_SOURCE_REMOVE;
}

/* After stdin's end: leave once the console has been quiet a while, so
 * the answer to what was typed is seen. */
static void
dv_cli_console_linger(DvCliConsole *c)
{
    if (c->linger != 0)
        g_source_remove(c->linger);
    c->linger = g_timeout_add(DV_CLI_CONSOLE_LINGER_MS, dv_cli_console_linger_done, c);
}

static void
dv_cli_console_message(SoupWebsocketConnection *ws, gint type, GBytes *message, gpointer user_data)
{
    DvCliConsole *c = user_data;
    gsize len;
    const char *p = g_bytes_get_data(message, &len);

    fwrite(p, 1, len, c->cli->out);
    fflush(c->cli->out);
    if (c->stdin_done)
        dv_cli_console_linger(c);
}

static void
dv_cli_console_closed(SoupWebsocketConnection *ws, gpointer user_data)
{
    DvCliConsole *c = user_data;
    const char *reason = soup_websocket_connection_get_close_data(ws);

    if (reason != NULL && reason[0] != '\0')
        c->closed_reason = g_strdup(reason);
    g_main_loop_quit(c->loop);
}

/* SIGTERM, SIGHUP: leave, so the terminal is restored. */
static gboolean
dv_cli_console_signal(gpointer data)
{
    dv_cli_console_leave(data);
    return G_SOURCE_CONTINUE; /* removed after the loop */
}

static gboolean
dv_cli_console_input(gint fd, GIOCondition condition, gpointer user_data)
{
    DvCliConsole *c = user_data;
    guint8 buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    const guint8 *esc;

    if (n < 0 && errno == EINTR)
        return G_SOURCE_CONTINUE;
    if (n <= 0) {
        c->stdin_done = TRUE;
        c->stdin_watch = 0;
        dv_cli_console_linger(c);
        return G_SOURCE_REMOVE;
    }
    esc = memchr(buf, DV_CLI_CONSOLE_ESCAPE, (gsize)n);
    if (!c->read_only && (esc == NULL || esc > buf))
        soup_websocket_connection_send_binary(c->ws, buf, esc != NULL ? (gsize)(esc - buf) : (gsize)n);
    if (esc != NULL) {
        c->stdin_watch = 0;
        dv_cli_console_leave(c);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

/* drover vm console VM [--read-only]: the serial console in this terminal
 * (raw mode when stdin is a terminal), or stdin to the console and the
 * console to stdout; Ctrl-] leaves. */
static gboolean
dv_cli_run_vm_console(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body,
                      GError **error)
{
    g_autofree char *base = dv_cli_path_expand(cmd->path, (const char *const *)args->positional->pdata, TRUE);
    g_autoptr(GString) path = g_string_new(base);
    DvCliConsole c = { .cli = cli, .read_only = dv_cli_args_has(args, "read-only") };
    gboolean tty = isatty(STDIN_FILENO);
    struct termios saved;
    gboolean raw = FALSE;
    guint sig_term;
    guint sig_hup;

    dv_cli_query_add(path, "type", "serial");
    if (c.read_only)
        dv_cli_query_add(path, "mode", "read");
    c.ws = dv_cli_client_websocket(cli->client, path->str, error);
    if (c.ws == NULL)
        return FALSE;
    /* An open console is not idle when nobody types. */
    soup_websocket_connection_set_keepalive_interval(c.ws, 20);
    c.loop = g_main_loop_new(NULL, FALSE);
    g_signal_connect(c.ws, "message", G_CALLBACK(dv_cli_console_message), &c);
    g_signal_connect(c.ws, "closed", G_CALLBACK(dv_cli_console_closed), &c);
    if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
        struct termios t = saved;
        cfmakeraw(&t);
        raw = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
        fprintf(cli->err, "Connected to the console of vm %s%s (escape character is ^])\r\n",
                dv_cli_args_get_positional(args, 0), c.read_only ? ", watching" : "");
    }
    c.stdin_watch = g_unix_fd_add(STDIN_FILENO, G_IO_IN | G_IO_HUP | G_IO_ERR, dv_cli_console_input, &c);
    sig_term = g_unix_signal_add(SIGTERM, dv_cli_console_signal, &c);
    sig_hup = g_unix_signal_add(SIGHUP, dv_cli_console_signal, &c);
    g_main_loop_run(c.loop);
    g_source_remove(sig_term);
    g_source_remove(sig_hup);

    if (raw)
        (void)tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    if (c.stdin_watch != 0)
        g_source_remove(c.stdin_watch);
    if (c.linger != 0)
        g_source_remove(c.linger);
    g_signal_handlers_disconnect_by_data(c.ws, &c);
    if (c.closed_reason != NULL)
        fprintf(cli->err, "%sConsole closed: %s\n", tty ? "\r\n" : "", c.closed_reason);
    else if (tty)
        fprintf(cli->err, "\r\n");
    g_free(c.closed_reason);
    g_object_unref(c.ws);
    g_main_loop_unref(c.loop);
    return TRUE;
}

const DvCliCommand dv_cli_commands_vm[] = {
    { "vm", "create", "NAME", "Create a VM on a host, or on the best host of a group.", dv_cli_vm_create_options,
      dv_cli_prepare_vm_create, dv_cli_run_job, "POST", "/vms", NULL, "Created vm {0}",
      "vm create NAME (--host H | --host-group G) [--template T] [--vcpus N] [--memory SIZE]\n"
      "                 [--generation 1|2] [--no-secure-boot] [--disk SIZE[:POOL[:FORMAT]]]...\n"
      "                 [--volume PATH]... [--network NET]... [--cdrom SHARE/FILE]...\n"
      "                 [--cdrom-volume POOL/VOLUME]... [--boot-order DEV,...] [--start]\n"
      "                 [--description D]" },
    { "vm", "list", "", "List VMs.", dv_cli_vm_list_options, NULL, dv_cli_run_list, "GET", "/vms",
      dv_cli_vm_columns },
    { "vm", "show", "VM", "Show a VM.", NULL, NULL, dv_cli_run_show, "GET", "/vms/{0}" },
    { "vm", "start", "VM", "Start a VM.", NULL, NULL, dv_cli_run_job, "POST", "/vms/{0}/start", NULL,
      "Started vm {0}" },
    { "vm", "shutdown", "VM", "Ask a VM's guest to shut down.", dv_cli_vm_shutdown_options, NULL, dv_cli_run_job,
      "POST", "/vms/{0}/shutdown", NULL, "Shut down vm {0}" },
    { "vm", "stop", "VM", "Force a VM off.", NULL, NULL, dv_cli_run_job, "POST", "/vms/{0}/stop", NULL,
      "Stopped vm {0}" },
    { "vm", "reboot", "VM", "Ask a running VM's guest to reboot.", NULL, NULL, dv_cli_run_job, "POST",
      "/vms/{0}/reboot", NULL, "Rebooted vm {0}" },
    { "vm", "reset", "VM", "Reset a running VM at once (as the reset button).", NULL, NULL, dv_cli_run_job, "POST",
      "/vms/{0}/reset", NULL, "Reset vm {0}" },
    { "vm", "set", "VM", "Change a VM: vCPUs, memory, description, autostart, boot order, name.",
      dv_cli_vm_set_options, dv_cli_prepare_vm_set, dv_cli_run_job, "PATCH", "/vms/{0}", NULL, "Changed vm {0}",
      "vm set VM [--vcpus N] [--memory SIZE] [--description D] [--autostart on|off]\n"
      "              [--boot-order disk,cdrom,network] [--name NEW]" },
    { "vm", "clone", "SOURCE NEW", "Clone a shut-off VM: copies of its disks, a new UUID and MACs.",
      dv_cli_vm_clone_options, dv_cli_prepare_vm_clone, dv_cli_run_job, "POST", "/vms/{0}/clone", NULL,
      "Cloned vm {0} as {1}",
      "vm clone SOURCE NEW [--host H] [--pool P] [--linked] [--description D]" },
    { "vm", "migrate", "VM", "Move a running VM live to another host of its cluster.",
      dv_cli_vm_migrate_options, NULL, dv_cli_run_job, "POST", "/vms/{0}/migrate", NULL,
      "Migrated vm {0}",
      "vm migrate VM [--to HOST] [--storage auto|shared|copy] [--bandwidth MIB_S] [--timeout S]" },
    { "vm", "migrate-check", "VM",
      "Check which hosts can take a running VM, and which one placement picks.",
      dv_cli_vm_migrate_check_options, NULL, dv_cli_run_vm_migrate_check, "GET",
      "/vms/{0}/migrate/preflight", NULL, NULL,
      "vm migrate-check VM [--to HOST] [--storage auto|shared|copy]" },
    { "vm", "console", "VM", "Open a running VM's serial console (Ctrl-] leaves).", dv_cli_vm_console_options,
      NULL, dv_cli_run_vm_console, "GET", "/vms/{0}/console" },
    { "vm", "delete", "VM", "Delete a VM (its volumes stay unless --delete-volumes).", dv_cli_vm_delete_options,
      NULL, dv_cli_run_job, "DELETE", "/vms/{0}", NULL, "Deleted vm {0}" },

    { "vm disk", "add", "VM", "Add a disk to a VM (live when it runs): an existing volume or a new one.",
      dv_cli_vm_disk_add_options, dv_cli_prepare_vm_disk_add, dv_cli_run_job, "POST", "/vms/{0}/disks", NULL,
      "Added a disk to vm {0}", "vm disk add VM (--volume VOL | --size SIZE [--pool POOL] [--format qcow2|raw])" },
    { "vm disk", "remove", "VM TARGET", "Remove disk TARGET (vdb) from a VM; its volume stays.", NULL, NULL,
      dv_cli_run_job, "DELETE", "/vms/{0}/disks/{1}", NULL, "Removed disk {1} from vm {0}" },

    { "vm nic", "add", "VM", "Add a network interface to a VM (live when it runs).", dv_cli_vm_nic_add_options,
      dv_cli_prepare_vm_nic_add, dv_cli_run_job, "POST", "/vms/{0}/nics", NULL, "Added a network interface to vm {0}",
      "vm nic add VM (--network NET | --bridge BR) [--mac MAC] [--model virtio|e1000|e1000e|rtl8139]" },
    { "vm nic", "remove", "VM MAC", "Remove the network interface MAC from a VM.", NULL, NULL, dv_cli_run_job,
      "DELETE", "/vms/{0}/nics/{1}", NULL, "Removed network interface {1} from vm {0}" },

    { "vm cdrom", "insert", "VM ISO",
      "Put an ISO (SHARE/FILE, or POOL/VOLUME with --pool) in a VM's CD-ROM drive (live when it runs).",
      dv_cli_vm_cdrom_insert_options, dv_cli_prepare_vm_cdrom_insert, dv_cli_run_job, "POST", "/vms/{0}/cdrom",
      NULL, "Inserted {1} into vm {0}", "vm cdrom insert VM ISO [--pool] [--target DEV]" },
    { "vm cdrom", "eject", "VM", "Empty a VM's CD-ROM drive (live when it runs).", dv_cli_vm_cdrom_eject_options,
      dv_cli_prepare_vm_cdrom_eject, dv_cli_run_job, "POST", "/vms/{0}/cdrom", NULL, "Ejected the CD-ROM of vm {0}",
      "vm cdrom eject VM [--target DEV]" },

    { "vm snapshot", "create", "VM SNAP", "Take a snapshot of a VM (with its memory when it runs).",
      dv_cli_snapshot_create_options, dv_cli_prepare_snapshot_create, dv_cli_run_job, "POST",
      "/vms/{0}/snapshots", NULL, "Created snapshot {1} of vm {0}",
      "vm snapshot create VM SNAP [--kind internal|external] [--no-memory] [--description D]" },
    { "vm snapshot", "list", "VM", "List a VM's snapshots.", NULL, NULL, dv_cli_run_list, "GET",
      "/vms/{0}/snapshots", dv_cli_snapshot_columns },
    { "vm snapshot", "revert", "VM SNAP", "Revert a VM to a snapshot.", NULL, NULL, dv_cli_run_job, "POST",
      "/vms/{0}/snapshots/{1}/revert", NULL, "Reverted vm {0} to snapshot {1}" },
    { "vm snapshot", "delete", "VM SNAP", "Delete a snapshot.", NULL, NULL, dv_cli_run_job, "DELETE",
      "/vms/{0}/snapshots/{1}", NULL, "Deleted snapshot {1} of vm {0}" },
    { NULL },
};
