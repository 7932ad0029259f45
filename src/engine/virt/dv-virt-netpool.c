#define G_LOG_DOMAIN "DvVirtNetPool"

/* Networks and storage pools an administrator makes through Drover
 * (issue 12 item 7): their XML from a checked spec, define, build, start,
 * stop, autostart and undefine.  Every action is idempotent (starting a
 * running network is done), so a resumed job converges. */

#include "dv-virt-private.h"

#include "dv-json.h"
#include "dv-validate.h"

#include <string.h>

/* ---- specs and XML ------------------------------------------------------ */

static const char *const dv_virt_forward_modes[] = { "nat", "route", "isolated", "bridge", NULL };
static const char *const dv_virt_pool_types[] = { "dir", "netfs", "logical", NULL };

static gboolean
dv_virt_str_in(const char *s, const char *const *set)
{
    for (guint i = 0; s != NULL && set[i] != NULL; i++)
        if (strcmp(s, set[i]) == 0)
            return TRUE;
    return FALSE;
}

/* A Linux interface name: 1-15 characters of [A-Za-z0-9_.-]. */
static gboolean
dv_virt_check_ifname(const char *field, const char *s, GError **error)
{
    gsize n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > 15) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "%s: must be 1-15 characters", field);
        return FALSE;
    }
    for (gsize i = 0; i < n; i++)
        if (!g_ascii_isalnum(s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.') {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                               "%s: only letters, digits, '_', '-' and '.'", field);
            return FALSE;
        }
    return TRUE;
}

static gboolean
dv_virt_parse_ipv4(const char *field, const char *s, guint32 *ret, GError **error)
{
    g_autoptr(GInetAddress) a = s != NULL ? g_inet_address_new_from_string(s) : NULL;
    const guint8 *b;
    if (a == NULL || g_inet_address_get_family(a) != G_SOCKET_FAMILY_IPV4) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "%s: must be an IPv4 address (a.b.c.d)", field);
        return FALSE;
    }
    b = g_inet_address_to_bytes(a);
    *ret = ((guint32)b[0] << 24) | ((guint32)b[1] << 16) | ((guint32)b[2] << 8) | b[3];
    return TRUE;
}

static guint32
dv_virt_prefix_mask(guint prefix)
{
    return prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
}

/* "10.20.30.1/24" -> host address and prefix; the address must be a host
 * of its subnet (neither the subnet's own address nor its broadcast). */
static gboolean
dv_virt_parse_cidr(const char *field, const char *s, guint32 *ret_addr, guint *ret_prefix,
                   GError **error)
{
    g_auto(GStrv) parts = s != NULL ? g_strsplit(s, "/", 2) : NULL;
    guint64 prefix = 0;
    guint32 addr = 0;
    guint32 mask;

    if (parts == NULL || parts[0] == NULL || parts[1] == NULL ||
        !g_ascii_string_to_unsigned(parts[1], 10, 8, 30, &prefix, NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "%s: must be an IPv4 address with a prefix of 8-30 (10.20.30.1/24)",
                           field);
        return FALSE;
    }
    if (!dv_virt_parse_ipv4(field, parts[0], &addr, error))
        return FALSE;
    mask = dv_virt_prefix_mask((guint)prefix);
    if ((addr & ~mask) == 0 || (addr & ~mask) == ~mask) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "%s: %s is not a host address of its subnet", field, parts[0]);
        return FALSE;
    }
    *ret_addr = addr;
    *ret_prefix = (guint)prefix;
    return TRUE;
}

char *
dv_virt_network_xml_new(JsonObject *spec, GError **error)
{
    const char *name = dv_json_get_string(spec, "name", NULL);
    const char *forward = dv_json_get_string(spec, "forward", "nat");
    const char *bridge = dv_json_get_string(spec, "bridge", NULL);
    const char *address = dv_json_get_string(spec, "address", NULL);
    const char *dhcp_start = dv_json_get_string(spec, "dhcp_start", NULL);
    const char *dhcp_end = dv_json_get_string(spec, "dhcp_end", NULL);
    g_autoptr(GString) xml = g_string_new("<network>");
    guint32 addr = 0, start = 0, end = 0, mask;
    guint prefix = 0;

    if (!dv_validate_name("name", name, error))
        return NULL;
    if (!dv_virt_str_in(forward, dv_virt_forward_modes)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "forward",
                           "forward: must be nat, route, isolated or bridge");
        return NULL;
    }
    if (bridge != NULL && !dv_virt_check_ifname("bridge", bridge, error))
        return NULL;
    g_string_append_printf(xml, "<name>%s</name>", name);
    if (strcmp(forward, "bridge") == 0) {
        /* The host's own bridge: libvirt makes no address or DHCP there. */
        if (bridge == NULL) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "bridge",
                               "bridge: required with forward bridge (the host bridge to join)");
            return NULL;
        }
        if (address != NULL || dhcp_start != NULL || dhcp_end != NULL) {
            const char *f = address != NULL ? "address" : dhcp_start != NULL ? "dhcp_start" : "dhcp_end";
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f,
                               "%s: a bridge to a host bridge takes no address or DHCP range", f);
            return NULL;
        }
        g_string_append_printf(xml, "<forward mode='bridge'/><bridge name='%s'/></network>", bridge);
        return g_string_free(g_steal_pointer(&xml), FALSE);
    }
    if (address == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "address",
                           "address: required with forward %s (10.20.30.1/24)", forward);
        return NULL;
    }
    if (!dv_virt_parse_cidr("address", address, &addr, &prefix, error))
        return NULL;
    mask = dv_virt_prefix_mask(prefix);
    if ((dhcp_start == NULL) != (dhcp_end == NULL)) {
        const char *f = dhcp_start == NULL ? "dhcp_start" : "dhcp_end";
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f,
                           "%s: dhcp_start and dhcp_end are given together", f);
        return NULL;
    }
    if (dhcp_start != NULL) {
        if (!dv_virt_parse_ipv4("dhcp_start", dhcp_start, &start, error) ||
            !dv_virt_parse_ipv4("dhcp_end", dhcp_end, &end, error))
            return NULL;
        if ((start & mask) != (addr & mask) || (start & ~mask) == 0 || (start & ~mask) == ~mask) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "dhcp_start",
                               "dhcp_start: must be a host address inside %s", address);
            return NULL;
        }
        if ((end & mask) != (addr & mask) || (end & ~mask) == 0 || (end & ~mask) == ~mask) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "dhcp_end",
                               "dhcp_end: must be a host address inside %s", address);
            return NULL;
        }
        if (end < start) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "dhcp_end",
                               "dhcp_end: must not come before dhcp_start");
            return NULL;
        }
        if (addr >= start && addr <= end) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "dhcp_start",
                               "dhcp_start: the range must leave out the network's own address");
            return NULL;
        }
    }
    if (strcmp(forward, "isolated") != 0)
        g_string_append_printf(xml, "<forward mode='%s'/>", forward);
    if (bridge != NULL)
        g_string_append_printf(xml, "<bridge name='%s' stp='on' delay='0'/>", bridge);
    {
        g_autofree char *a = g_strndup(address, strcspn(address, "/"));
        g_string_append_printf(xml, "<ip address='%s' prefix='%u'>", a, prefix);
    }
    if (dhcp_start != NULL)
        g_string_append_printf(xml, "<dhcp><range start='%s' end='%s'/></dhcp>", dhcp_start,
                               dhcp_end);
    g_string_append(xml, "</ip></network>");
    return g_string_free(g_steal_pointer(&xml), FALSE);
}

/* An absolute path without '..' or characters XML or a shell would read. */
static gboolean
dv_virt_check_abs_path(const char *field, const char *path, GError **error)
{
    if (path == NULL || path[0] != '/' || strlen(path) > 1024 || strstr(path, "/../") != NULL ||
        g_str_has_suffix(path, "/..") || strpbrk(path, "<>&'\"\n") != NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "%s: must be an absolute path (at most 1024 characters, no '..')", field);
        return FALSE;
    }
    return TRUE;
}

static gboolean
dv_virt_check_plain(const char *field, const char *s, GError **error)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 255 || strpbrk(s, "<>&'\"\n ") != NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "%s: must be 1-255 characters without spaces, quotes or <>&", field);
        return FALSE;
    }
    return TRUE;
}

char *
dv_virt_pool_xml_new(JsonObject *spec, GError **error)
{
    const char *name = dv_json_get_string(spec, "name", NULL);
    const char *type = dv_json_get_string(spec, "type", "dir");
    const char *path = dv_json_get_string(spec, "path", NULL);
    const char *source_host = dv_json_get_string(spec, "source_host", NULL);
    const char *source_path = dv_json_get_string(spec, "source_path", NULL);
    const char *source_format = dv_json_get_string(spec, "source_format", NULL);
    const char *source_name = dv_json_get_string(spec, "source_name", NULL);
    JsonArray *devices = dv_json_get_array(spec, "source_devices");
    g_autoptr(GString) xml = g_string_new(NULL);

    if (!dv_validate_name("name", name, error))
        return NULL;
    if (!dv_virt_str_in(type, dv_virt_pool_types)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "type",
                           "type: must be dir, netfs or logical");
        return NULL;
    }
    g_string_append_printf(xml, "<pool type='%s'><name>%s</name>", type, name);
    if (strcmp(type, "logical") == 0) {
        /* The volume group: named after the pool unless said; built from
         * the devices when they are given, else it must exist. */
        const char *vg = source_name != NULL ? source_name : name;
        if (!dv_virt_check_plain("source_name", vg, error))
            return NULL;
        if (path != NULL) {
            g_autofree char *want = g_strdup_printf("/dev/%s", vg);
            if (g_strcmp0(path, want) != 0) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "path",
                                   "path: a logical pool's path is /dev/<volume group> (%s)", want);
                return NULL;
            }
        }
        g_string_append(xml, "<source>");
        for (guint i = 0; devices != NULL && i < json_array_get_length(devices); i++) {
            const char *dev = json_array_get_string_element(devices, i);
            if (i >= 16 || !dv_virt_check_abs_path("source_devices", dev, error)) {
                if (i >= 16)
                    dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "source_devices",
                                       "source_devices: at most 16 devices");
                return NULL;
            }
            g_string_append_printf(xml, "<device path='%s'/>", dev);
        }
        g_string_append_printf(xml, "<name>%s</name><format type='lvm2'/></source>"
                                    "<target><path>/dev/%s</path></target></pool>",
                               vg, vg);
        return g_string_free(g_steal_pointer(&xml), FALSE);
    }
    if (devices != NULL || source_name != NULL) {
        const char *f = devices != NULL ? "source_devices" : "source_name";
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f, "%s: only for a logical pool", f);
        return NULL;
    }
    if (!dv_virt_check_abs_path("path", path, error))
        return NULL;
    if (strcmp(type, "netfs") == 0) {
        const char *fmt = source_format != NULL ? source_format : "nfs";
        if (strcmp(fmt, "nfs") != 0 && strcmp(fmt, "cifs") != 0) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "source_format",
                               "source_format: must be nfs or cifs");
            return NULL;
        }
        if (!dv_virt_check_plain("source_host", source_host, error))
            return NULL;
        /* NFS: the exported directory; CIFS: the share's name. */
        if (strcmp(fmt, "nfs") == 0 ? !dv_virt_check_abs_path("source_path", source_path, error)
                                    : !dv_virt_check_plain("source_path", source_path, error))
            return NULL;
        g_string_append_printf(xml, "<source><host name='%s'/><dir path='%s'/>"
                                    "<format type='%s'/></source>",
                               source_host, source_path, fmt);
    } else if (source_host != NULL || source_path != NULL || source_format != NULL) {
        const char *f = source_host != NULL ? "source_host"
                        : source_path != NULL ? "source_path"
                                              : "source_format";
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f, "%s: only for a netfs pool", f);
        return NULL;
    }
    /* 0711 as Drover's own pools: QEMU reaches the files it is given. */
    g_string_append_printf(xml, "<target><path>%s</path><permissions><mode>0711</mode>"
                                "</permissions></target></pool>",
                           path);
    return g_string_free(g_steal_pointer(&xml), FALSE);
}

/* ---- overlap ------------------------------------------------------------ */

JsonArray *
dv_virt_network_list_subnets(DvVirtHost *host, GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(DvVirtNetList) nets = NULL;
    g_autoptr(JsonArray) out = json_array_new();
    int n;

    g_return_val_if_fail(host != NULL, NULL);
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;
    n = virConnectListAllNetworks(op.conn, &nets, 0);
    if (n < 0)
        return dv_virt_op_fail_null(&op, error, "cannot list networks");
    for (int i = 0; i < n; i++) {
        g_autoptr(xmlDoc) doc = NULL;
        char *xml = virNetworkGetXMLDesc(nets[i], 0);
        if (xml == NULL) {
            virResetLastError(); /* undefined meanwhile */
            continue;
        }
        doc = dv_virt_xml_parse(xml, error);
        free(xml);
        if (doc == NULL)
            return NULL;
        for (xmlNode *c = xmlDocGetRootElement(doc)->children; c != NULL; c = c->next) {
            g_autofree char *addr = NULL;
            g_autofree char *prefix = NULL;
            g_autofree char *netmask = NULL;
            g_autofree char *family = NULL;
            guint32 a = 0, m = 0;
            guint64 p = 0;
            JsonObject *e;
            if (c->type != XML_ELEMENT_NODE || xmlStrcmp(c->name, BAD_CAST "ip") != 0)
                continue;
            family = dv_virt_xml_prop(c, "family");
            addr = dv_virt_xml_prop(c, "address");
            prefix = dv_virt_xml_prop(c, "prefix");
            netmask = dv_virt_xml_prop(c, "netmask");
            if ((family != NULL && strcmp(family, "ipv4") != 0) ||
                !dv_virt_parse_ipv4("address", addr, &a, NULL))
                continue;
            if (prefix != NULL)
                g_ascii_string_to_unsigned(prefix, 10, 0, 32, &p, NULL);
            else if (netmask != NULL && dv_virt_parse_ipv4("netmask", netmask, &m, NULL))
                while (p < 32 && (m & (0x80000000u >> p)) != 0)
                    p++;
            else
                p = 24; /* libvirt's default for a class C address */
            e = json_object_new();
            json_object_set_string_member(e, "name", virNetworkGetName(nets[i]));
            json_object_set_string_member(e, "address", addr);
            json_object_set_int_member(e, "prefix", (gint64)p);
            json_array_add_object_element(out, e);
        }
    }
    return g_steal_pointer(&out);
}

gboolean
dv_virt_network_check_overlap(JsonObject *spec, JsonArray *subnets, GError **error)
{
    const char *address = dv_json_get_string(spec, "address", NULL);
    const char *name = dv_json_get_string(spec, "name", "");
    guint32 addr = 0;
    guint prefix = 0;

    if (address == NULL)
        return TRUE;
    if (!dv_virt_parse_cidr("address", address, &addr, &prefix, error))
        return FALSE;
    for (guint i = 0; subnets != NULL && i < json_array_get_length(subnets); i++) {
        JsonObject *s = json_array_get_object_element(subnets, i);
        guint32 other = 0;
        guint op = (guint)dv_json_get_int(s, "prefix", 24);
        guint shorter = MIN(op, prefix);
        if (g_strcmp0(dv_json_get_string(s, "name", ""), name) == 0)
            continue; /* itself, on a retried job */
        if (!dv_virt_parse_ipv4("address", dv_json_get_string(s, "address", ""), &other, NULL))
            continue;
        /* Two subnets overlap when they agree on the shorter prefix. */
        if ((other & dv_virt_prefix_mask(shorter)) == (addr & dv_virt_prefix_mask(shorter))) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "address",
                               "address: %s overlaps network %s (%s/%u) on this host", address,
                               dv_json_get_string(s, "name", ""), dv_json_get_string(s, "address", ""),
                               op);
            return FALSE;
        }
    }
    return TRUE;
}

/* ---- networks ----------------------------------------------------------- */

static virNetworkPtr
dv_virt_network_open(DvVirtOp *op, DvVirtHost *host, const char *name, GCancellable *cancellable,
                     GError **error)
{
    virNetworkPtr net;
    if (!dv_validate_name("network", name, error))
        return NULL;
    if (!dv_virt_op_begin(op, host, cancellable, error))
        return NULL;
    net = virNetworkLookupByName(op->conn, name);
    if (net == NULL)
        return dv_virt_op_fail_null(op, error, "cannot find network %s", name);
    return net;
}

gboolean
dv_virt_network_define(DvVirtHost *host, const char *name, const char *xml,
                       GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virNetwork) net = NULL;

    g_return_val_if_fail(host != NULL && xml != NULL, FALSE);
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    net = virNetworkLookupByName(op.conn, name);
    if (net != NULL)
        return TRUE; /* a retried job: made the first time */
    virResetLastError();
    net = virNetworkDefineXML(op.conn, xml);
    if (net == NULL)
        return dv_virt_op_fail(&op, error, "cannot define network %s", name);
    return TRUE;
}

gboolean
dv_virt_network_set_active(DvVirtHost *host, const char *name, gboolean active,
                           GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virNetwork) net = dv_virt_network_open(&op, host, name, cancellable, error);
    int is;

    if (net == NULL)
        return FALSE;
    is = virNetworkIsActive(net);
    if (is < 0)
        return dv_virt_op_fail(&op, error, "cannot read network %s", name);
    if (is == (active ? 1 : 0))
        return TRUE;
    if (active ? virNetworkCreate(net) < 0 : virNetworkDestroy(net) < 0)
        return dv_virt_op_fail(&op, error, "cannot %s network %s", active ? "start" : "stop", name);
    return TRUE;
}

gboolean
dv_virt_network_set_autostart(DvVirtHost *host, const char *name, gboolean autostart,
                              GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virNetwork) net = dv_virt_network_open(&op, host, name, cancellable, error);

    if (net == NULL)
        return FALSE;
    if (virNetworkSetAutostart(net, autostart ? 1 : 0) < 0)
        return dv_virt_op_fail(&op, error, "cannot set autostart of network %s", name);
    return TRUE;
}

gboolean
dv_virt_network_undefine(DvVirtHost *host, const char *name, GCancellable *cancellable,
                         GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virNetwork) net = NULL;
    int is;

    if (!dv_validate_name("network", name, error))
        return FALSE;
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    net = virNetworkLookupByName(op.conn, name);
    if (net == NULL) {
        const virError *err = virGetLastError();
        if (err != NULL && err->code == VIR_ERR_NO_NETWORK) {
            virResetLastError();
            return TRUE; /* gone already: a retried job */
        }
        return dv_virt_op_fail(&op, error, "cannot find network %s", name);
    }
    is = virNetworkIsActive(net);
    if (is < 0)
        return dv_virt_op_fail(&op, error, "cannot read network %s", name);
    if (is == 1 && virNetworkDestroy(net) < 0)
        return dv_virt_op_fail(&op, error, "cannot stop network %s", name);
    if (virNetworkUndefine(net) < 0)
        return dv_virt_op_fail(&op, error, "cannot undefine network %s", name);
    return TRUE;
}

/* ---- pools -------------------------------------------------------------- */

gboolean
dv_virt_pool_define(DvVirtHost *host, const char *name, const char *xml, gboolean build,
                    GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStoragePool) p = NULL;

    g_return_val_if_fail(host != NULL && xml != NULL, FALSE);
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    p = virStoragePoolLookupByName(op.conn, name);
    if (p != NULL)
        return TRUE; /* a retried job */
    virResetLastError();
    p = virStoragePoolDefineXML(op.conn, xml, 0);
    if (p == NULL)
        return dv_virt_op_fail(&op, error, "cannot define storage pool %s", name);
    /* dir and netfs: the target directory (an existing one is kept);
     * logical with devices: the volume group.  A failed build leaves no
     * definition behind. */
    if (build && virStoragePoolBuild(p, 0) < 0) {
        g_autoptr(GError) local = NULL;
        dv_virt_op_fail(&op, &local, "cannot build storage pool %s", name);
        if (virStoragePoolUndefine(p) < 0)
            virResetLastError();
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    return TRUE;
}

gboolean
dv_virt_pool_set_active(DvVirtHost *host, const char *name, gboolean active,
                        GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStoragePool) p = dv_virt_pool_open(&op, host, name, cancellable, error);
    int is;

    if (p == NULL)
        return FALSE;
    is = virStoragePoolIsActive(p);
    if (is < 0)
        return dv_virt_op_fail(&op, error, "cannot read storage pool %s", name);
    if (is == (active ? 1 : 0))
        return TRUE;
    if (active ? virStoragePoolCreate(p, 0) < 0 : virStoragePoolDestroy(p) < 0)
        return dv_virt_op_fail(&op, error, "cannot %s storage pool %s", active ? "start" : "stop",
                               name);
    return TRUE;
}

gboolean
dv_virt_pool_set_autostart(DvVirtHost *host, const char *name, gboolean autostart,
                           GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStoragePool) p = dv_virt_pool_open(&op, host, name, cancellable, error);

    if (p == NULL)
        return FALSE;
    if (virStoragePoolSetAutostart(p, autostart ? 1 : 0) < 0)
        return dv_virt_op_fail(&op, error, "cannot set autostart of storage pool %s", name);
    return TRUE;
}

gboolean
dv_virt_pool_undefine(DvVirtHost *host, const char *name, GCancellable *cancellable,
                      GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStoragePool) p = NULL;
    int is;

    if (!dv_validate_name("pool", name, error))
        return FALSE;
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    p = virStoragePoolLookupByName(op.conn, name);
    if (p == NULL) {
        const virError *err = virGetLastError();
        if (err != NULL && err->code == VIR_ERR_NO_STORAGE_POOL) {
            virResetLastError();
            return TRUE;
        }
        return dv_virt_op_fail(&op, error, "cannot find storage pool %s", name);
    }
    is = virStoragePoolIsActive(p);
    if (is < 0)
        return dv_virt_op_fail(&op, error, "cannot read storage pool %s", name);
    if (is == 1 && virStoragePoolDestroy(p) < 0)
        return dv_virt_op_fail(&op, error, "cannot stop storage pool %s", name);
    if (virStoragePoolUndefine(p) < 0)
        return dv_virt_op_fail(&op, error, "cannot undefine storage pool %s", name);
    return TRUE;
}

/* {autostart, active} of a network or pool, read live. */
JsonObject *
dv_virt_netpool_get_flags(DvVirtHost *host, gboolean is_pool, const char *name,
                          GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(JsonObject) out = json_object_new();
    int autostart = 0, active;

    if (is_pool) {
        g_autoptr(virStoragePool) p = dv_virt_pool_open(&op, host, name, cancellable, error);
        if (p == NULL)
            return NULL;
        active = virStoragePoolIsActive(p);
        if (active < 0 || virStoragePoolGetAutostart(p, &autostart) < 0)
            return dv_virt_op_fail_null(&op, error, "cannot read storage pool %s", name);
    } else {
        g_autoptr(virNetwork) n = dv_virt_network_open(&op, host, name, cancellable, error);
        if (n == NULL)
            return NULL;
        active = virNetworkIsActive(n);
        if (active < 0 || virNetworkGetAutostart(n, &autostart) < 0)
            return dv_virt_op_fail_null(&op, error, "cannot read network %s", name);
    }
    json_object_set_boolean_member(out, "active", active == 1);
    json_object_set_boolean_member(out, "autostart", autostart == 1);
    return g_steal_pointer(&out);
}
