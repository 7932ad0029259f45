#define G_LOG_DOMAIN "DvVirtNic"

/* A domain's network interfaces: added and removed (persistent, and live
 * when the domain runs), and the addresses its guest holds, read from the
 * network's DHCP leases or from the guest agent (docs/VIRT.md "Network
 * interfaces").  Each call is one operation on the host. */

#include "dv-virt-private.h"

#include "dv-json.h"
#include "dv-validate.h"

#include <string.h>

/* Models QEMU emulates that a guest without special drivers can use. */
static const char *const dv_virt_nic_models[] = { "virtio", "e1000", "e1000e", "rtl8139", NULL };

gboolean
dv_virt_nic_model_ok(const char *model)
{
    return model != NULL && g_strv_contains(dv_virt_nic_models, model);
}

gboolean
dv_virt_mac_check(const char *field, const char *mac, GError **error)
{
    guint first = 0;
    gboolean zero = TRUE;

    if (mac == NULL || strlen(mac) != 17) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "%s: must be a MAC address like 52:54:00:12:34:56", field);
        return FALSE;
    }
    for (guint i = 0; i < 17; i++) {
        if (i % 3 == 2 ? mac[i] != ':' : !g_ascii_isxdigit(mac[i])) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                               "%s: must be a MAC address like 52:54:00:12:34:56", field);
            return FALSE;
        }
        if (i % 3 != 2 && mac[i] != '0')
            zero = FALSE;
    }
    first = (guint)(g_ascii_xdigit_value(mac[0]) * 16 + g_ascii_xdigit_value(mac[1]));
    /* The low bit of the first octet marks a group (multicast or
     * broadcast) address: no interface may own one. */
    if ((first & 1) != 0 || zero) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "%s: %s is not a unicast address (the first octet must be even and "
                           "the address not all zeros)",
                           field, mac);
        return FALSE;
    }
    return TRUE;
}

/* The <interface> element of @xml whose MAC is @mac (case-insensitive),
 * serialized (owned), or NULL (no error) when it has none. */
static char *
dv_virt_nic_element(const char *xml, const char *mac, GError **error)
{
    g_autoptr(xmlDoc) doc = dv_virt_xml_parse(xml, error);
    xmlNode *devices;

    if (doc == NULL)
        return NULL;
    devices = dv_virt_xml_child(xmlDocGetRootElement(doc), "devices");
    for (xmlNode *d = devices != NULL ? devices->children : NULL; d != NULL; d = d->next) {
        g_autofree char *addr = NULL;
        if (d->type != XML_ELEMENT_NODE || strcmp((const char *)d->name, "interface") != 0)
            continue;
        addr = dv_virt_xml_prop(dv_virt_xml_child(d, "mac"), "address");
        if (addr != NULL && g_ascii_strcasecmp(addr, mac) == 0) {
            xmlBuffer *buf = xmlBufferCreate();
            char *out;
            xmlNodeDump(buf, doc, d, 0, 0);
            out = g_strdup((const char *)xmlBufferContent(buf));
            xmlBufferFree(buf);
            return out;
        }
    }
    return NULL;
}

/* Whether @dom's inactive or live definition has an interface @mac. */
static gboolean
dv_virt_domain_has_mac(DvVirtOp *op, virDomainPtr dom, const char *mac, gboolean *ret_has,
                       GError **error)
{
    int active = virDomainIsActive(dom);

    if (active < 0)
        return dv_virt_op_fail(op, error, "cannot read the state of domain %s",
                               virDomainGetName(dom));
    for (int live = 0; live <= (active == 1 ? 1 : 0); live++) {
        g_autofree char *elem = NULL;
        g_autoptr(GError) local = NULL;
        char *xml = virDomainGetXMLDesc(dom, live ? 0 : VIR_DOMAIN_XML_INACTIVE);
        if (xml == NULL)
            return dv_virt_op_fail(op, error, "cannot read domain %s", virDomainGetName(dom));
        elem = dv_virt_nic_element(xml, mac, &local);
        free(xml);
        if (local != NULL) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        if (elem != NULL) {
            *ret_has = TRUE;
            return TRUE;
        }
    }
    *ret_has = FALSE;
    return TRUE;
}

gboolean
dv_virt_domain_nic_attach(DvVirtHost *host, const char *uuid, JsonObject *nic, gboolean *ret_live,
                          GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(DvVirtDomainList) doms = NULL;
    const char *network = dv_json_get_string(nic, "network", NULL);
    const char *bridge = dv_json_get_string(nic, "bridge", NULL);
    const char *mac = dv_json_get_string(nic, "mac", NULL);
    const char *model = dv_json_get_string(nic, "model", "virtio");
    g_autofree char *xml = NULL;
    gboolean has = FALSE;
    int active;
    int n;
    guint flags = VIR_DOMAIN_AFFECT_CONFIG;

    g_return_val_if_fail(host != NULL, FALSE);
    if ((network == NULL) == (bridge == NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "network",
                           "network: give exactly one of network and bridge");
        return FALSE;
    }
    if (!dv_validate_name(network != NULL ? "network" : "bridge",
                          network != NULL ? network : bridge, error) ||
        !dv_virt_mac_check("mac", mac, error))
        return FALSE;
    if (!dv_virt_nic_model_ok(model)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "model",
                           "model: must be virtio, e1000, e1000e or rtl8139");
        return FALSE;
    }
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return FALSE;
    active = virDomainIsActive(dom);
    if (active < 0)
        return dv_virt_op_fail(&op, error, "cannot read the state of domain %s", uuid);
    /* The MAC checked on the host, every domain (the inventory may be
     * behind, or a domain Drover does not know uses it).  The domain's
     * own: a resumed job, done. */
    if (!dv_virt_domain_has_mac(&op, dom, mac, &has, error))
        return FALSE;
    if (has) {
        if (ret_live != NULL)
            *ret_live = active == 1;
        return TRUE;
    }
    n = virConnectListAllDomains(op.conn, &doms, 0);
    if (n < 0)
        return dv_virt_op_fail(&op, error, "cannot list domains");
    for (int i = 0; i < n; i++) {
        if (!dv_virt_domain_has_mac(&op, doms[i], mac, &has, error))
            return FALSE;
        if (has) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "mac",
                               "mac: %s is in use by domain %s on this host", mac,
                               virDomainGetName(doms[i]));
            return FALSE;
        }
    }
    {
        g_autofree char *esc_src = g_markup_escape_text(network != NULL ? network : bridge, -1);
        xml = g_strdup_printf("<interface type='%s'><mac address='%s'/><source %s='%s'/>"
                              "<model type='%s'/></interface>",
                              network != NULL ? "network" : "bridge", mac,
                              network != NULL ? "network" : "bridge", esc_src, model);
    }
    if (active == 1)
        flags |= VIR_DOMAIN_AFFECT_LIVE;
    if (virDomainAttachDeviceFlags(dom, xml, flags) < 0)
        return dv_virt_op_fail(&op, error, "cannot add interface %s to domain %s", mac, uuid);
    if (ret_live != NULL)
        *ret_live = active == 1;
    return TRUE;
}

gboolean
dv_virt_domain_nic_detach(DvVirtHost *host, const char *uuid, const char *mac, gboolean *ret_live,
                          GCancellable *cancellable, GError **error)
{
    g_return_val_if_fail(host != NULL, FALSE);
    if (!dv_virt_mac_check("mac", mac, error))
        return FALSE;
    return dv_virt_domain_device_detach(host, uuid, dv_virt_nic_element, mac, "interface", ret_live,
                                        cancellable, error);
}

/* Whether @dom's live XML has a guest agent channel that is connected:
 * asking an absent agent costs libvirt's agent timeout (5 s). */
static gboolean
dv_virt_domain_agent_connected(virDomainPtr dom)
{
    g_autoptr(xmlDoc) doc = NULL;
    xmlNode *devices;
    char *xml = virDomainGetXMLDesc(dom, 0);

    if (xml == NULL)
        return FALSE;
    doc = dv_virt_xml_parse(xml, NULL);
    free(xml);
    if (doc == NULL)
        return FALSE;
    devices = dv_virt_xml_child(xmlDocGetRootElement(doc), "devices");
    for (xmlNode *d = devices != NULL ? devices->children : NULL; d != NULL; d = d->next) {
        g_autofree char *name = NULL;
        g_autofree char *state = NULL;
        xmlNode *target;
        if (d->type != XML_ELEMENT_NODE || strcmp((const char *)d->name, "channel") != 0)
            continue;
        target = dv_virt_xml_child(d, "target");
        name = dv_virt_xml_prop(target, "name");
        state = dv_virt_xml_prop(target, "state");
        if (g_strcmp0(name, "org.qemu.guest_agent.0") == 0)
            return g_strcmp0(state, "connected") == 0;
    }
    return FALSE;
}

/* Adds the addresses of @ifaces to @out (mac, lowercase -> array). */
static void
dv_virt_addresses_add(JsonObject *out, virDomainInterfacePtr *ifaces, int n, const char *source)
{
    for (int i = 0; i < n; i++) {
        virDomainInterfacePtr iface = ifaces[i];
        g_autofree char *mac = NULL;
        JsonArray *list;
        if (iface->hwaddr == NULL)
            continue;
        mac = g_ascii_strdown(iface->hwaddr, -1);
        list = dv_json_get_array(out, mac);
        for (unsigned int k = 0; k < iface->naddrs; k++) {
            virDomainIPAddressPtr a = &iface->addrs[k];
            JsonObject *o;
            if (a->addr == NULL)
                continue;
            if (list == NULL) {
                json_object_set_array_member(out, mac, json_array_new());
                list = dv_json_get_array(out, mac);
            }
            o = json_object_new();
            json_object_set_string_member(o, "ip", a->addr);
            json_object_set_int_member(o, "prefix", a->prefix);
            json_object_set_string_member(o, "family",
                                          a->type == VIR_IP_ADDR_TYPE_IPV6 ? "ipv6" : "ipv4");
            json_object_set_string_member(o, "source", source);
            json_array_add_object_element(list, o);
        }
    }
}

/* Whether every libvirt network @dom's interfaces use has an <ip>.
 * libvirt 9.0's test driver dereferences a network's first <ip> for each
 * such interface when asked for leases and crashes (in process) on a
 * network without one; a network without an address hands out no leases
 * anyway. */
static gboolean
dv_virt_domain_networks_have_ip(virConnectPtr conn, virDomainPtr dom)
{
    g_autoptr(xmlDoc) doc = NULL;
    xmlNode *devices;
    char *xml = virDomainGetXMLDesc(dom, 0);

    if (xml == NULL)
        return FALSE;
    doc = dv_virt_xml_parse(xml, NULL);
    free(xml);
    if (doc == NULL)
        return FALSE;
    devices = dv_virt_xml_child(xmlDocGetRootElement(doc), "devices");
    for (xmlNode *d = devices != NULL ? devices->children : NULL; d != NULL; d = d->next) {
        g_autofree char *type = NULL;
        g_autofree char *name = NULL;
        g_autoptr(xmlDoc) ndoc = NULL;
        virNetworkPtr net;
        char *nxml;
        if (d->type != XML_ELEMENT_NODE || strcmp((const char *)d->name, "interface") != 0)
            continue;
        type = dv_virt_xml_prop(d, "type");
        if (g_strcmp0(type, "network") != 0)
            continue;
        name = dv_virt_xml_prop(dv_virt_xml_child(d, "source"), "network");
        net = name != NULL ? virNetworkLookupByName(conn, name) : NULL;
        if (net == NULL)
            return FALSE;
        nxml = virNetworkGetXMLDesc(net, 0);
        virNetworkFree(net);
        if (nxml == NULL)
            return FALSE;
        ndoc = dv_virt_xml_parse(nxml, NULL);
        free(nxml);
        if (ndoc == NULL || dv_virt_xml_child(xmlDocGetRootElement(ndoc), "ip") == NULL)
            return FALSE;
    }
    return TRUE;
}

static void
dv_virt_interfaces_free(virDomainInterfacePtr *ifaces, int n)
{
    for (int i = 0; i < n; i++)
        virDomainInterfaceFree(ifaces[i]);
    free(ifaces);
}

JsonObject *
dv_virt_domain_addresses(DvVirtHost *host, const char *uuid, GCancellable *cancellable,
                         GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(JsonObject) out = json_object_new();
    virDomainInterfacePtr *ifaces = NULL;
    int n;

    g_return_val_if_fail(host != NULL, NULL);
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return NULL;
    if (virDomainIsActive(dom) != 1)
        return g_steal_pointer(&out);
    /* The agent knows every address the guest holds (static ones too);
     * the lease table only what a libvirt network's DHCP handed out.
     * Without an agent, or when it fails, quietly the leases. */
    if (dv_virt_domain_agent_connected(dom)) {
        n = virDomainInterfaceAddresses(dom, &ifaces, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT, 0);
        if (n >= 0) {
            dv_virt_addresses_add(out, ifaces, n, "agent");
            dv_virt_interfaces_free(ifaces, n);
            return g_steal_pointer(&out);
        }
        g_debug("guest agent of domain %s gave no addresses: %s", uuid, virGetLastErrorMessage());
    }
    ifaces = NULL;
    if (g_str_has_prefix(dv_virt_host_get_uri(host), "test") &&
        !dv_virt_domain_networks_have_ip(op.conn, dom))
        return g_steal_pointer(&out);
    n = virDomainInterfaceAddresses(dom, &ifaces, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0);
    if (n < 0)
        return dv_virt_op_fail_null(&op, error, "cannot read the addresses of domain %s", uuid);
    dv_virt_addresses_add(out, ifaces, n, "lease");
    dv_virt_interfaces_free(ifaces, n);
    return g_steal_pointer(&out);
}
