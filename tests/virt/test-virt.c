/* Engine tier of src/engine/virt: libvirt's test driver, one XML file per
 * simulated host (test:///<abs path>). */
#define G_LOG_DOMAIN "DvVirtTest"

#include "dv-virt-private.h"

#include "dv-json.h"

#include <glib/gstdio.h>
#include <nettle/des.h>
#include <string.h>

static DvVirt *the_virt; /* process-wide, like droverd */

typedef struct {
    char *tmpdir;
    char *uri;
    DvVirtHost *host;
} Fixture;

/* A simulated host: @ndomains domains (every 5th shut off, every 7th a
 * UEFI one), a dir pool with one volume per domain (if @with_pool), one
 * network. */
static char *
write_host_xml(const char *dir, const char *name, guint ndomains, gboolean with_pool)
{
    g_autoptr(GString) xml = g_string_new("<node>\n");
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_autoptr(GError) error = NULL;

    g_string_append(xml, "  <cpu><mhz>2000</mhz><model>x86_64</model><nodes>1</nodes>"
                         "<sockets>1</sockets><cores>8</cores><threads>1</threads>"
                         "<active>8</active></cpu>\n  <memory>16777216</memory>\n");
    for (guint i = 0; i < ndomains; i++) {
        gboolean efi = i % 7 == 6;

        g_string_append_printf(
            xml,
            "  <domain type='test'><name>vm%u</name>"
            "<uuid>11111111-2222-3333-4444-%012u</uuid>"
            "<description>machine %u</description>"
            "<memory unit='MiB'>%u</memory><vcpu>%u</vcpu>"
            "<os>%s<type arch='i686'>hvm</type></os>"
            "<devices>"
            "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            "<source file='/pool1/vm%u.qcow2'/><target dev='vda' bus='virtio'/></disk>"
            "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>"
            "<source file='/iso/install.iso'/><target dev='hda' bus='ide'/><readonly/></disk>"
            "<interface type='network'><mac address='52:54:00:aa:%02x:%02x'/>"
            "<source network='net1'/></interface>"
            "</devices></domain>\n",
            i, i, i, 256 + 64 * (i % 4), 1 + i % 4,
            efi ? "<loader readonly='yes' secure='yes' type='pflash'>"
                  "/usr/share/OVMF/OVMF_CODE_4M.ms.fd</loader>"
                : "",
            i, (i >> 8) & 0xff, i & 0xff);
    }
    g_string_append(xml, "  <network><name>net1</name>"
                         "<uuid>aaaaaaaa-2222-3333-4444-555555555501</uuid>"
                         "<bridge name='virbr9'/>"
                         "<ip address='192.168.150.1' netmask='255.255.255.0'/></network>\n");
    if (with_pool) {
        g_string_append(xml, "  <pool type='dir'><name>pool1</name>"
                             "<uuid>bbbbbbbb-2222-3333-4444-555555555501</uuid>"
                             "<capacity>107374182400</capacity><allocation>0</allocation>"
                             "<available>107374182400</available>"
                             "<target><path>/pool1</path></target>\n");
        for (guint i = 0; i < ndomains; i++)
            g_string_append_printf(xml,
                                   "    <volume type='file'><name>vm%u.qcow2</name>"
                                   "<capacity>1073741824</capacity><allocation>0</allocation>"
                                   "<target><path>/pool1/vm%u.qcow2</path>"
                                   "<format type='qcow2'/></target></volume>\n",
                                   i, i);
        g_string_append(xml, "  </pool>\n");
    }
    g_string_append(xml, "</node>\n");
    g_file_set_contents(path, xml->str, (gssize)xml->len, &error);
    g_assert_no_error(error);
    return g_steal_pointer(&path);
}

static void
fixture_setup_with(Fixture *fx, guint ndomains, gboolean with_pool)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = NULL;
    g_autofree char *id = NULL;

    fx->tmpdir = g_dir_make_tmp("dv-virt-XXXXXX", &error);
    g_assert_no_error(error);
    path = write_host_xml(fx->tmpdir, "host.xml", ndomains, with_pool);
    fx->uri = g_strdup_printf("test://%s", path);
    id = g_path_get_basename(fx->tmpdir);
    fx->host = dv_virt_host_get(the_virt, id, fx->uri);
}

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
    fixture_setup_with(fx, 3, TRUE);
}

static void
fixture_setup_nopool(Fixture *fx, gconstpointer data)
{
    fixture_setup_with(fx, 1, FALSE);
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
    g_autofree char *path = g_build_filename(fx->tmpdir, "host.xml", NULL);

    dv_virt_host_unref(fx->host);
    g_unlink(path);
    g_rmdir(fx->tmpdir);
    g_free(fx->tmpdir);
    g_free(fx->uri);
}

static JsonObject *
find_by(JsonArray *arr, const char *key, const char *value)
{
    for (guint i = 0; i < json_array_get_length(arr); i++) {
        JsonObject *o = json_array_get_object_element(arr, i);
        if (g_strcmp0(dv_json_get_string(o, key, NULL), value) == 0)
            return o;
    }
    return NULL;
}

/* ---- probe ------------------------------------------------------------ */

static void
test_probe(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) probe = dv_virt_host_probe(fx->host, NULL, &error);
    JsonArray *pools;
    JsonArray *doms;
    JsonObject *pool;
    JsonObject *vol;
    JsonObject *net;
    JsonObject *dom;
    JsonObject *disk;
    JsonObject *nic;

    g_assert_no_error(error);
    g_assert_nonnull(probe);
    g_assert_cmpint(dv_json_get_int(probe, "cpus", 0), ==, 8);
    g_assert_cmpint(dv_json_get_int(probe, "memory_mib", 0), ==, 16384);
    g_assert_cmpstr(dv_json_get_string(probe, "hypervisor_type", NULL), ==, "TEST");
    g_assert_nonnull(dv_json_get_string(probe, "hostname", NULL));
    g_assert_nonnull(dv_json_get_string(probe, "hypervisor_version", NULL));
    g_assert_true(json_object_has_member(probe, "hypervisor_major"));
    g_assert_true(json_object_has_member(probe, "free_memory_mib"));
    g_assert_true(g_str_has_prefix(dv_json_get_string(probe, "libvirt_version", ""), "9."));

    pools = dv_json_get_array(probe, "pools");
    g_assert_cmpint(json_array_get_length(pools), ==, 1);
    pool = json_array_get_object_element(pools, 0);
    g_assert_cmpstr(dv_json_get_string(pool, "name", NULL), ==, "pool1");
    g_assert_cmpstr(dv_json_get_string(pool, "uuid", NULL), ==,
                    "bbbbbbbb-2222-3333-4444-555555555501");
    g_assert_cmpstr(dv_json_get_string(pool, "type", NULL), ==, "dir");
    g_assert_cmpstr(dv_json_get_string(pool, "path", NULL), ==, "/pool1");
    g_assert_cmpstr(dv_json_get_string(pool, "state", NULL), ==, "running");
    g_assert_cmpint(dv_json_get_int(pool, "capacity", 0), ==, 107374182400);
    g_assert_true(json_object_has_member(pool, "allocation"));
    g_assert_true(json_object_has_member(pool, "available"));
    g_assert_cmpint(json_array_get_length(dv_json_get_array(pool, "volumes")), ==, 3);
    vol = find_by(dv_json_get_array(pool, "volumes"), "name", "vm1.qcow2");
    g_assert_nonnull(vol);
    g_assert_cmpstr(dv_json_get_string(vol, "path", NULL), ==, "/pool1/vm1.qcow2");
    g_assert_cmpstr(dv_json_get_string(vol, "key", NULL), ==, "/pool1/vm1.qcow2");
    g_assert_cmpstr(dv_json_get_string(vol, "format", NULL), ==, "qcow2");
    g_assert_cmpint(dv_json_get_int(vol, "capacity", 0), ==, 1073741824);
    g_assert_cmpint(dv_json_get_int(vol, "allocation", -1), ==, 0);

    net = find_by(dv_json_get_array(probe, "networks"), "name", "net1");
    g_assert_nonnull(net);
    g_assert_true(dv_json_get_bool(net, "active", FALSE));
    g_assert_cmpstr(dv_json_get_string(net, "bridge", NULL), ==, "virbr9");
    g_assert_cmpstr(dv_json_get_string(net, "uuid", NULL), ==,
                    "aaaaaaaa-2222-3333-4444-555555555501");

    doms = dv_json_get_array(probe, "domains");
    g_assert_cmpint(json_array_get_length(doms), ==, 3);
    dom = find_by(doms, "name", "vm1");
    g_assert_nonnull(dom);
    g_assert_cmpstr(dv_json_get_string(dom, "uuid", NULL), ==,
                    "11111111-2222-3333-4444-000000000001");
    g_assert_cmpstr(dv_json_get_string(dom, "state", NULL), ==, "running");
    g_assert_cmpint(dv_json_get_int(dom, "vcpus", 0), ==, 2);
    g_assert_cmpint(dv_json_get_int(dom, "memory_mib", 0), ==, 320);
    g_assert_cmpint(dv_json_get_int(dom, "generation", 0), ==, 1);
    g_assert_false(dv_json_get_bool(dom, "secure_boot", TRUE));
    g_assert_cmpstr(dv_json_get_string(dom, "description", NULL), ==, "machine 1");
    g_assert_cmpint(json_array_get_length(dv_json_get_array(dom, "disks")), ==, 2);
    disk = json_array_get_object_element(dv_json_get_array(dom, "disks"), 0);
    g_assert_cmpstr(dv_json_get_string(disk, "device", NULL), ==, "disk");
    g_assert_cmpstr(dv_json_get_string(disk, "target", NULL), ==, "vda");
    g_assert_cmpstr(dv_json_get_string(disk, "source", NULL), ==, "/pool1/vm1.qcow2");
    g_assert_cmpstr(dv_json_get_string(disk, "format", NULL), ==, "qcow2");
    disk = json_array_get_object_element(dv_json_get_array(dom, "disks"), 1);
    g_assert_cmpstr(dv_json_get_string(disk, "device", NULL), ==, "cdrom");
    g_assert_true(dv_json_get_bool(disk, "readonly", FALSE));
    nic = json_array_get_object_element(dv_json_get_array(dom, "networks"), 0);
    g_assert_cmpstr(dv_json_get_string(nic, "network", NULL), ==, "net1");
    g_assert_cmpstr(dv_json_get_string(nic, "mac", NULL), ==, "52:54:00:aa:00:01");
    g_assert_cmpint(json_array_get_length(dv_json_get_array(dom, "snapshots")), ==, 0);
}

static void
test_probe_uefi(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = write_host_xml(fx->tmpdir, "uefi.xml", 7, TRUE);
    g_autofree char *uri = g_strdup_printf("test://%s", path);
    g_autoptr(DvVirtHost) host = dv_virt_host_get(the_virt, "uefi-host", uri);
    g_autoptr(JsonObject) probe = dv_virt_host_probe(host, NULL, &error);
    JsonObject *dom;

    g_assert_no_error(error);
    dom = find_by(dv_json_get_array(probe, "domains"), "name", "vm6");
    g_assert_nonnull(dom);
    g_assert_cmpint(dv_json_get_int(dom, "generation", 0), ==, 2);
    g_assert_true(dv_json_get_bool(dom, "secure_boot", FALSE));
    g_unlink(path);
}

/* ---- rights ----------------------------------------------------------- */

static guint
count_domains_and_volumes(DvVirtHost *host)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) probe = dv_virt_host_probe(host, NULL, &error);
    JsonArray *pools;
    guint n;

    g_assert_no_error(error);
    n = json_array_get_length(dv_json_get_array(probe, "domains"));
    pools = dv_json_get_array(probe, "pools");
    for (guint i = 0; i < json_array_get_length(pools); i++)
        n += json_array_get_length(
            dv_json_get_array(json_array_get_object_element(pools, i), "volumes"));
    return n;
}

static void
test_rights(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    guint before = count_domains_and_volumes(fx->host);
    g_autoptr(JsonObject) rights = dv_virt_host_check_rights(fx->host, NULL, &error);

    g_assert_no_error(error);
    g_assert_true(dv_json_get_bool(rights, "read_write", FALSE));
    g_assert_true(dv_json_get_bool(rights, "list_storage", FALSE));
    g_assert_true(dv_json_get_bool(rights, "create_volumes", FALSE));
    g_assert_true(dv_json_get_bool(rights, "define_domains", FALSE));
    g_assert_cmpint(json_array_get_length(dv_json_get_array(rights, "missing")), ==, 0);
    g_assert_cmpstr(dv_json_get_string(rights, "detail", NULL), ==, "all rights present");
    g_assert_cmpuint(count_domains_and_volumes(fx->host), ==, before);
}

static void
test_rights_no_pool(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) rights = dv_virt_host_check_rights(fx->host, NULL, &error);

    g_assert_no_error(error);
    g_assert_true(dv_json_get_bool(rights, "create_volumes", FALSE));
    g_assert_nonnull(strstr(dv_json_get_string(rights, "detail", ""), "no active storage pool"));
    g_assert_cmpint(json_array_get_length(dv_json_get_array(rights, "missing")), ==, 0);
}

/* ---- domain XML --------------------------------------------------------- */

static JsonObject *
spec_new(const char *json)
{
    g_autoptr(GError) error = NULL;
    JsonObject *obj = dv_json_parse_object(json, strlen(json), DV_JSON_MAX_BODY,
                                           DV_JSON_MAX_DEPTH, &error);
    g_assert_no_error(error);
    return obj;
}

static void
test_xml_gen1(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) spec = spec_new(
        "{\"name\":\"web-1\",\"vcpus\":2,\"memory_mib\":512,\"description\":\"a <b> & c\","
        "\"disks\":[{\"path\":\"/p/web-1.qcow2\"},{\"path\":\"/iso/x.iso\",\"device\":\"cdrom\"}],"
        "\"networks\":[{\"network\":\"default\",\"mac\":\"52:54:00:01:02:03\"},"
        "{\"bridge\":\"br0\"}],\"serial_log\":\"/tmp/web-1.log\"}");
    g_autofree char *xml = dv_virt_domain_xml_new(spec, &error);

    g_assert_no_error(error);
    g_assert_nonnull(strstr(xml, "<domain type=\"qemu\">"));
    g_assert_nonnull(strstr(xml, "machine=\"pc\""));
    g_assert_null(strstr(xml, "firmware"));
    g_assert_nonnull(strstr(xml, "a &lt;b&gt; &amp; c"));
    g_assert_nonnull(strstr(xml, "<target dev=\"vda\" bus=\"virtio\"/>"));
    g_assert_nonnull(strstr(xml, "<target dev=\"hda\" bus=\"ide\"/>"));
    g_assert_nonnull(strstr(xml, "<driver name=\"qemu\" type=\"qcow2\"/>"));
    g_assert_nonnull(strstr(xml, "<source network=\"default\"/>"));
    g_assert_nonnull(strstr(xml, "<source bridge=\"br0\"/>"));
    g_assert_nonnull(strstr(xml, "<serial type=\"file\">"));
    g_assert_nonnull(strstr(xml, "<console type=\"file\">"));
    g_assert_nonnull(strstr(xml, "<memballoon model=\"virtio\"/>"));
    g_assert_null(strstr(xml, "graphics"));
}

static void
test_xml_gen2(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) spec = spec_new(
        "{\"name\":\"uefi-1\",\"memory_mib\":512,\"generation\":2,\"graphics\":\"vnc\","
        "\"domain_type\":\"kvm\",\"disks\":[{\"path\":\"/iso/x.iso\",\"device\":\"cdrom\"}]}");
    g_autofree char *xml = dv_virt_domain_xml_new(spec, &error);

    g_assert_no_error(error);
    g_assert_nonnull(strstr(xml, "<domain type=\"kvm\">"));
    g_assert_nonnull(strstr(xml, "machine=\"q35\""));
    g_assert_nonnull(strstr(xml, "firmware=\"efi\""));
    g_assert_nonnull(strstr(xml, "<feature enabled=\"yes\" name=\"secure-boot\"/>"));
    g_assert_nonnull(strstr(xml, "<feature enabled=\"yes\" name=\"enrolled-keys\"/>"));
    g_assert_nonnull(strstr(xml, "<smm state=\"on\"/>"));
    g_assert_nonnull(strstr(xml, "bus=\"sata\""));
    /* The TCP listener locked: a random password that expired in 1970. */
    g_assert_nonnull(strstr(xml, "<graphics type=\"vnc\" autoport=\"yes\" passwd=\""));
    g_assert_nonnull(strstr(xml, "passwdValidTo=\"1970-01-01T00:00:01\">"));
    g_assert_nonnull(strstr(xml, "<listen type=\"address\" address=\"127.0.0.1\"/>"));
}

static void
test_xml_invalid(void)
{
    static const struct {
        const char *json;
        const char *field;
    } cases[] = {
        { "{\"memory_mib\":512}", "name" },
        { "{\"name\":\"bad name\",\"memory_mib\":512}", "name" },
        { "{\"name\":\"a\",\"memory_mib\":1}", "memory_mib" },
        { "{\"name\":\"a\",\"memory_mib\":64,\"generation\":3}", "generation" },
        { "{\"name\":\"a\",\"memory_mib\":64,\"secure_boot\":true}", "secure_boot" },
        { "{\"name\":\"a\",\"memory_mib\":64,\"domain_type\":\"xen\"}", "domain_type" },
        { "{\"name\":\"a\",\"memory_mib\":64,\"disks\":[{\"path\":\"rel\"}]}", "disks[0].path" },
        { "{\"name\":\"a\",\"memory_mib\":64,\"disks\":[{\"path\":\"/a\",\"format\":\"vmdk\"}]}",
          "disks[0].format" },
        { "{\"name\":\"a\",\"memory_mib\":64,\"networks\":[{\"mac\":\"52:54:00:01:02:03\"}]}",
          "networks[0]." },
        { "{\"name\":\"a\",\"memory_mib\":64,\"networks\":[{\"network\":\"n\",\"mac\":\"zz\"}]}",
          "networks[0].mac" },
        { "{\"name\":\"a\",\"memory_mib\":64,\"graphics\":\"rdp\"}", "graphics" },
        { "{\"name\":\"a\",\"memory_mib\":64,\"graphics\":true}", "graphics" },
        { "{\"name\":\"a\",\"memory_mib\":64,\"graphics\":\"vnc\",\"graphics_listen\":\"any\"}",
          "graphics_listen" },
        /* Unknown fields: see lib/common dv_json_check_fields (its field
         * name is checked in tests/common). */
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) spec = spec_new(cases[i].json);
        g_autofree char *xml = dv_virt_domain_xml_new(spec, &error);

        g_assert_null(xml);
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_assert_cmpstr(dv_error_get_field(error), ==, cases[i].field);
    }
}

/* ---- domains ---------------------------------------------------------- */

static char *
define_test_domain(DvVirtHost *host, const char *name, guint generation, const char *disk_path)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) spec = json_object_new();
    g_autofree char *xml = NULL;
    char *uuid;

    json_object_set_string_member(spec, "name", name);
    json_object_set_string_member(spec, "domain_type", "test");
    json_object_set_int_member(spec, "memory_mib", 64);
    json_object_set_int_member(spec, "vcpus", 1);
    json_object_set_int_member(spec, "generation", generation);
    if (disk_path != NULL) {
        JsonArray *disks = json_array_new();
        JsonObject *disk = json_object_new();

        json_object_set_string_member(disk, "path", disk_path);
        json_array_add_object_element(disks, disk);
        json_object_set_array_member(spec, "disks", disks);
    }
    xml = dv_virt_domain_xml_new(spec, &error);
    g_assert_no_error(error);
    uuid = dv_virt_domain_define(host, xml, NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(uuid);
    return uuid;
}

static const char *
domain_state(DvVirtHost *host, const char *uuid)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) dom = dv_virt_domain_get(host, uuid, NULL, &error);

    g_assert_no_error(error);
    return g_intern_string(dv_json_get_string(dom, "state", NULL));
}

static void
test_domain_lifecycle(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *uuid = define_test_domain(fx->host, "life", 1, "/pool1/vm0.qcow2");
    g_autoptr(JsonObject) dom = dv_virt_domain_get(fx->host, uuid, NULL, &error);

    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(dom, "name", NULL), ==, "life");
    g_assert_cmpstr(dv_json_get_string(dom, "state", NULL), ==, "shutoff");
    g_assert_cmpint(dv_json_get_int(dom, "memory_mib", 0), ==, 64);
    g_assert_cmpint(dv_json_get_int(dom, "generation", 0), ==, 1);

    g_assert_true(dv_virt_domain_start(fx->host, uuid, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(domain_state(fx->host, uuid), ==, "running");

    /* Starting twice is a conflict, not a host failure. */
    g_assert_false(dv_virt_domain_start(fx->host, uuid, NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_clear_error(&error);

    g_assert_false(dv_virt_domain_undefine(fx->host, uuid, NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_clear_error(&error);

    g_assert_true(dv_virt_domain_shutdown(fx->host, uuid, NULL, &error));
    g_assert_no_error(error);
    g_assert_true(dv_virt_domain_wait_shutoff(fx->host, uuid, 5000, NULL, &error));
    g_assert_no_error(error);

    g_assert_true(dv_virt_domain_start(fx->host, uuid, NULL, &error));
    g_assert_true(dv_virt_domain_destroy(fx->host, uuid, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(domain_state(fx->host, uuid), ==, "shutoff");
    /* Destroying a stopped domain is fine. */
    g_assert_true(dv_virt_domain_destroy(fx->host, uuid, NULL, &error));
    g_assert_no_error(error);

    g_assert_true(dv_virt_domain_undefine(fx->host, uuid, NULL, &error));
    g_assert_no_error(error);
    g_assert_null(dv_virt_domain_get(fx->host, uuid, NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_false(dv_virt_domain_start(fx->host, uuid, NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_false(dv_virt_domain_start(fx->host, "not-a-uuid", NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
}

static void
test_domain_delete_volumes(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) vol = dv_virt_volume_create(fx->host, "pool1", "del.qcow2", 1 << 20,
                                                      "qcow2", NULL, &error);
    g_autofree char *uuid = NULL;
    g_autoptr(JsonObject) found = NULL;
    g_autoptr(JsonObject) iso = NULL;

    g_assert_no_error(error);
    uuid = define_test_domain(fx->host, "del", 1, dv_json_get_string(vol, "path", NULL));
    g_assert_true(dv_virt_domain_start(fx->host, uuid, NULL, &error));
    g_assert_no_error(error);
    /* Running: delete destroys it first. */
    g_assert_true(dv_virt_domain_delete(fx->host, uuid, TRUE, NULL, &error));
    g_assert_no_error(error);
    found = dv_virt_volume_lookup_by_path(fx->host, "/pool1/del.qcow2", NULL, &error);
    g_assert_null(found);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    /* Disks that are no volume are left alone and not an error. */
    g_clear_pointer(&uuid, g_free);
    uuid = define_test_domain(fx->host, "del2", 1, "/elsewhere/disk.qcow2");
    g_assert_true(dv_virt_domain_delete(fx->host, uuid, TRUE, NULL, &error));
    g_assert_no_error(error);
    /* Unrelated volumes survive. */
    iso = dv_virt_volume_lookup_by_path(fx->host, "/pool1/vm0.qcow2", NULL, &error);
    g_assert_no_error(error);
}

/* A pooled catalog machine's system disk: its base, transient.  Deleting
 * the domain with its volumes leaves the base (other domains share it);
 * a transient disk that is read-only or a CD-ROM is refused naming it. */
static void
test_domain_transient_disk(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) base = dv_virt_volume_create(fx->host, "pool1", "shared-base.qcow2",
                                                       1 << 20, "qcow2", NULL, &error);
    g_autoptr(JsonObject) own = NULL;
    g_autoptr(JsonObject) found = NULL;
    g_autofree char *uuid = NULL;
    g_autofree char *xml = NULL;

    g_assert_no_error(error);
    own = dv_virt_volume_create(fx->host, "pool1", "own.qcow2", 1 << 20, "qcow2", NULL, &error);
    g_assert_no_error(error);
    uuid = define_test_domain(fx->host, "pooled1", 1, dv_json_get_string(own, "path", NULL));
    /* Repointed at the base, transient; again is a no-op. */
    for (guint i = 0; i < 2; i++) {
        g_assert_true(dv_virt_domain_set_disk_source(fx->host, uuid, "vda",
                                                     dv_json_get_string(base, "path", ""), "qcow2",
                                                     TRUE, NULL, &error));
        g_assert_no_error(error);
    }
    /* The base stays, the domain goes; "own" was no disk of it any more. */
    g_assert_true(dv_virt_domain_delete(fx->host, uuid, TRUE, NULL, &error));
    g_assert_no_error(error);
    found =
        dv_virt_volume_lookup_by_path(fx->host, dv_json_get_string(base, "path", ""), NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(found);
    g_clear_pointer(&found, json_object_unref);
    found =
        dv_virt_volume_lookup_by_path(fx->host, dv_json_get_string(own, "path", ""), NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(found);

    /* The XML: <transient shareBacking='yes'/> on a writable virtio disk only. */
    {
        g_autoptr(JsonObject) spec = dv_json_object_from_text(
            "{\"name\":\"t\",\"domain_type\":\"test\",\"memory_mib\":64,"
            "\"disks\":[{\"path\":\"/pool1/shared-base.qcow2\",\"transient\":true}]}",
            NULL);
        xml = dv_virt_domain_xml_new(spec, &error);
        g_assert_no_error(error);
        g_assert_nonnull(strstr(xml, "<transient shareBacking=\"yes\"/>"));
    }
    {
        g_autoptr(JsonObject) spec =
            dv_json_object_from_text("{\"name\":\"t\",\"domain_type\":\"test\",\"memory_mib\":64,"
                                     "\"disks\":[{\"path\":\"/pool1/"
                                     "shared-base.qcow2\",\"transient\":true,\"readonly\":true}]}",
                                     NULL);
        g_autofree char *bad = dv_virt_domain_xml_new(spec, &error);
        g_assert_null(bad);
        g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
        g_assert_cmpstr(dv_error_get_field(error), ==, "disks[0].transient");
    }
}

static void
test_domain_gen2(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *uuid = define_test_domain(fx->host, "uefi", 2, NULL);
    g_autoptr(JsonObject) dom = dv_virt_domain_get(fx->host, uuid, NULL, &error);
    g_autoptr(JsonObject) snap = NULL;

    g_assert_no_error(error);
    g_assert_cmpint(dv_json_get_int(dom, "generation", 0), ==, 2);
    g_assert_true(dv_json_get_bool(dom, "secure_boot", FALSE));
    snap = dv_virt_snapshot_create(fx->host, uuid, "s1", NULL, NULL, &error);
    g_assert_null(snap);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED);
    g_assert_nonnull(strstr(error->message, "UEFI"));
    g_clear_error(&error);
    g_assert_true(dv_virt_domain_delete(fx->host, uuid, FALSE, NULL, &error));
    g_assert_no_error(error);
}

/* ---- snapshots -------------------------------------------------------- */

static void
test_snapshots(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *uuid = define_test_domain(fx->host, "snappy", 1, "/pool1/vm0.qcow2");
    g_autoptr(JsonObject) s1 = NULL;
    g_autoptr(JsonObject) s2 = NULL;
    g_autoptr(JsonArray) list = NULL;
    g_autoptr(JsonObject) dom = NULL;
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;

    s1 = dv_virt_snapshot_create(fx->host, uuid, "s1", "before <update>", NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(s1, "name", NULL), ==, "s1");
    g_assert_cmpstr(dv_json_get_string(s1, "description", NULL), ==, "before <update>");
    g_assert_cmpstr(dv_json_get_string(s1, "state", NULL), ==, "shutoff");
    g_assert_true(dv_json_get_bool(s1, "is_current", FALSE));
    g_assert_cmpint(dv_json_get_int(s1, "created_at", 0), >=, now - 5);
    g_assert_null(dv_json_get_string(s1, "parent", NULL));

    g_assert_true(dv_virt_domain_start(fx->host, uuid, NULL, &error));
    s2 = dv_virt_snapshot_create(fx->host, uuid, "s2", NULL, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(s2, "parent", NULL), ==, "s1");
    g_assert_cmpstr(dv_json_get_string(s2, "state", NULL), ==, "running");

    /* Same name twice: conflict. */
    g_assert_null(dv_virt_snapshot_create(fx->host, uuid, "s2", NULL, NULL, &error));
    g_assert_nonnull(error);
    g_clear_error(&error);

    list = dv_virt_snapshot_list(fx->host, uuid, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpint(json_array_get_length(list), ==, 2);
    g_assert_true(dv_json_get_bool(find_by(list, "name", "s2"), "is_current", FALSE));
    g_assert_false(dv_json_get_bool(find_by(list, "name", "s1"), "is_current", TRUE));

    g_assert_true(dv_virt_snapshot_revert(fx->host, uuid, "s1", NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(domain_state(fx->host, uuid), ==, "shutoff");

    g_assert_true(dv_virt_snapshot_delete(fx->host, uuid, "s2", NULL, &error));
    g_assert_no_error(error);
    g_assert_false(dv_virt_snapshot_delete(fx->host, uuid, "s2", NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_false(dv_virt_snapshot_revert(fx->host, uuid, "nope", NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);

    dom = dv_virt_domain_get(fx->host, uuid, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpint(json_array_get_length(dv_json_get_array(dom, "snapshots")), ==, 1);
    g_assert_true(dv_virt_domain_delete(fx->host, uuid, FALSE, NULL, &error));
    g_assert_no_error(error);
}

/* ---- volumes ---------------------------------------------------------- */

static void
test_pool_define_dir(Fixture *fx, const char *name, const char *path)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) spec = json_object_new();
    g_autofree char *xml = NULL;

    json_object_set_string_member(spec, "name", name);
    json_object_set_string_member(spec, "path", path);
    xml = dv_virt_pool_xml_new(spec, &error);
    g_assert_no_error(error);
    g_assert_true(dv_virt_pool_define(fx->host, name, xml, FALSE, NULL, &error));
    g_assert_no_error(error);
    g_assert_true(dv_virt_pool_set_active(fx->host, name, TRUE, NULL, &error));
    g_assert_no_error(error);
}

/* A lean create names the path itself in a dir pool, asks for it
 * otherwise; the pool handle it cached survives its pool being made
 * again under the same name (a new UUID): the create looks it up again. */
static void
test_volume_create_lean(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) a = NULL;
    g_autoptr(JsonObject) b = NULL;
    g_autoptr(JsonObject) c = NULL;
    g_autoptr(JsonObject) found = NULL;

    test_pool_define_dir(fx, "lean1", "/lean1");
    a = dv_virt_volume_create_lean(fx->host, "lean1", "a.img", 1 << 20, "raw", NULL, NULL, "/lean1",
                                   NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(a, "path", NULL), ==, "/lean1/a.img");
    found = dv_virt_volume_lookup_by_path(fx->host, "/lean1/a.img", NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(found, "pool", NULL), ==, "lean1");

    g_assert_true(dv_virt_pool_undefine(fx->host, "lean1", NULL, &error));
    g_assert_no_error(error);
    test_pool_define_dir(fx, "lean1", "/lean1");
    b = dv_virt_volume_create_lean(fx->host, "lean1", "b.img", 1 << 20, "raw", NULL, NULL, NULL,
                                   NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(b, "name", NULL), ==, "b.img");
    g_assert_cmpstr(dv_json_get_string(b, "path", NULL), ==, "/lean1/b.img");

    /* Gone for good: not found, nothing made. */
    g_assert_true(dv_virt_pool_undefine(fx->host, "lean1", NULL, &error));
    g_assert_no_error(error);
    c = dv_virt_volume_create_lean(fx->host, "lean1", "c.img", 1 << 20, "raw", NULL, NULL, "/lean1",
                                   NULL, &error);
    g_assert_null(c);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
}

static void
test_volumes(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) q = NULL;
    g_autoptr(JsonObject) r = NULL;
    g_autoptr(JsonObject) found = NULL;

    q = dv_virt_volume_create(fx->host, "pool1", "new.qcow2", 16 << 20, "qcow2", NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(q, "name", NULL), ==, "new.qcow2");
    g_assert_cmpstr(dv_json_get_string(q, "path", NULL), ==, "/pool1/new.qcow2");
    g_assert_cmpstr(dv_json_get_string(q, "format", NULL), ==, "qcow2");
    g_assert_cmpint(dv_json_get_int(q, "capacity", 0), ==, 16 << 20);
    g_assert_nonnull(dv_json_get_string(q, "key", NULL));

    r = dv_virt_volume_create(fx->host, "pool1", "new.img", 1 << 20, "raw", NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(r, "format", NULL), ==, "raw");

    found = dv_virt_volume_lookup_by_path(fx->host, "/pool1/new.img", NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dv_json_get_string(found, "pool", NULL), ==, "pool1");
    g_assert_cmpstr(dv_json_get_string(found, "name", NULL), ==, "new.img");

    /* Errors: duplicate, missing pool, bad format. */
    g_assert_null(dv_virt_volume_create(fx->host, "pool1", "new.img", 1, "raw", NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_CONFLICT);
    g_clear_error(&error);
    g_assert_null(dv_virt_volume_create(fx->host, "nopool", "x.img", 1, "raw", NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_null(dv_virt_volume_create(fx->host, "pool1", "x.img", 1, "vmdk", NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(dv_error_get_field(error), ==, "format");
    g_clear_error(&error);

    g_assert_true(dv_virt_volume_delete(fx->host, "pool1", "new.qcow2", NULL, &error));
    g_assert_no_error(error);
    g_assert_true(dv_virt_volume_delete_by_path(fx->host, "/pool1/new.img", NULL, &error));
    g_assert_no_error(error);
    g_assert_false(dv_virt_volume_delete(fx->host, "pool1", "new.qcow2", NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_false(dv_virt_volume_delete_by_path(fx->host, "/pool1/new.img", NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_FOUND);
}

/* ---- limits ----------------------------------------------------------- */

typedef struct {
    DvVirtHost *host;
    guint ops;
    gint failures;
    gint completed;
    gint max_seen_conns;
} LimitsData;

static gpointer
limits_worker(gpointer user_data)
{
    LimitsData *d = user_data;

    for (guint i = 0; i < d->ops; i++) {
        g_autoptr(GError) error = NULL;

        if (i % 2 == 0) {
            g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
            g_autoptr(DvVirtDomainList) doms = NULL;
            g_autoptr(JsonObject) stats = NULL;

            if (!dv_virt_op_begin(&op, d->host, NULL, &error)) {
                g_atomic_int_inc(&d->failures);
                continue;
            }
            if (virConnectListAllDomains(op.conn, &doms, 0) < 0)
                g_atomic_int_inc(&d->failures);
            /* Hold the slot long enough for the others to pile up. */
            g_usleep(20 * G_TIME_SPAN_MILLISECOND);
            stats = dv_virt_host_get_stats(d->host);
            g_assert_cmpint(dv_json_get_int(stats, "operations_in_flight", 99), <=, 3);
            g_assert_cmpint(dv_json_get_int(stats, "open_connections", 99), <=, 2);
        } else {
            g_autoptr(JsonObject) probe = dv_virt_host_probe(d->host, NULL, &error);
            if (probe == NULL) {
                g_atomic_int_inc(&d->failures);
                continue;
            }
        }
        g_atomic_int_inc(&d->completed);
    }
    return NULL;
}

static void
test_limits(void)
{
    /* test:///default is one shared instance per process, so several
     * connections to it are allowed and meaningful. */
    g_autoptr(DvVirtHost) host = dv_virt_host_get(the_virt, "limits", "test:///default");
    g_autoptr(JsonObject) stats = NULL;
    GThread *threads[8];
    LimitsData d = { host, 4, 0, 0, 0 };

    dv_virt_host_set_limits(host, 2, 3);
    for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
        threads[i] = g_thread_new("limits", limits_worker, &d);
    for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
        g_thread_join(threads[i]);
    stats = dv_virt_host_get_stats(host);
    g_test_message("limits: %s", dv_json_object_to_string(stats, FALSE));
    g_assert_cmpint(d.failures, ==, 0);
    g_assert_cmpint(d.completed, ==, 32);
    g_assert_cmpint(dv_json_get_int(stats, "peak_operations_in_flight", 99), <=, 3);
    g_assert_cmpint(dv_json_get_int(stats, "peak_operations_in_flight", 0), >=, 2);
    g_assert_cmpint(dv_json_get_int(stats, "open_connections", 99), <=, 2);
    g_assert_cmpint(dv_json_get_int(stats, "open_connections", 0), >=, 1);
    g_assert_cmpint(dv_json_get_int(stats, "operations_in_flight", 99), ==, 0);

    /* Lowering the limit closes idle connections above it on release. */
    dv_virt_host_set_limits(host, 1, 3);
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) probe = dv_virt_host_probe(host, NULL, &error);
        g_autoptr(JsonObject) after = dv_virt_host_get_stats(host);

        g_assert_no_error(error);
        g_assert_cmpint(dv_json_get_int(after, "open_connections", 99), <=, 1);
        g_assert_cmpint(dv_json_get_int(after, "max_connections", 0), ==, 1);
    }
}

static void
test_limits_test_file(Fixture *fx, gconstpointer data)
{
    g_autoptr(JsonObject) stats = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) probe = NULL;
    g_autofree char *uuid = NULL;

    /* A test:///<file> host is a private instance per open: one
     * connection forever, whatever the configured limit. */
    dv_virt_host_set_limits(fx->host, 4, 8);
    stats = dv_virt_host_get_stats(fx->host);
    g_assert_cmpint(dv_json_get_int(stats, "max_connections", 0), ==, 1);
    g_assert_cmpint(dv_json_get_int(stats, "max_concurrent_operations", 0), ==, 8);
    uuid = define_test_domain(fx->host, "persist", 1, NULL);
    probe = dv_virt_host_probe(fx->host, NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(find_by(dv_json_get_array(probe, "domains"), "name", "persist"));
}

typedef struct {
    DvVirtHost *host;
    GMutex lock;
    GCond cond;
    gboolean holding;
    gboolean release;
} HoldData;

static gpointer
hold_worker(gpointer user_data)
{
    HoldData *d = user_data;
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(GError) error = NULL;

    g_assert_true(dv_virt_op_begin(&op, d->host, NULL, &error));
    g_mutex_lock(&d->lock);
    d->holding = TRUE;
    g_cond_broadcast(&d->cond);
    while (!d->release)
        g_cond_wait(&d->cond, &d->lock);
    g_mutex_unlock(&d->lock);
    return NULL;
}

static gboolean
cancel_later(gpointer user_data)
{
    g_cancellable_cancel(user_data);
    return G_SOURCE_REMOVE;
}

static gpointer
cancel_thread(gpointer user_data)
{
    g_usleep(100 * G_TIME_SPAN_MILLISECOND);
    cancel_later(user_data);
    return NULL;
}

static void
test_busy(void)
{
    g_autoptr(DvVirtHost) host = dv_virt_host_get(the_virt, "busy", "test:///default");
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) probe = NULL;
    g_autoptr(GCancellable) cancellable = g_cancellable_new();
    g_autoptr(JsonObject) stats = NULL;
    HoldData d = { host };
    GThread *holder;
    GThread *canceller;
    gint64 start;

    dv_virt_host_set_limits(host, 1, 1);
    dv_virt_host_set_busy_timeout(host, 200);
    g_mutex_init(&d.lock);
    g_cond_init(&d.cond);
    holder = g_thread_new("hold", hold_worker, &d);
    g_mutex_lock(&d.lock);
    while (!d.holding)
        g_cond_wait(&d.cond, &d.lock);
    g_mutex_unlock(&d.lock);

    start = g_get_monotonic_time();
    probe = dv_virt_host_probe(host, NULL, &error);
    g_assert_null(probe);
    g_assert_error(error, DV_ERROR, DV_ERROR_BUSY);
    g_assert_cmpint(g_get_monotonic_time() - start, >=, 150 * G_TIME_SPAN_MILLISECOND);
    g_clear_error(&error);

    /* A cancelled wait ends at once with CANCELLED. */
    dv_virt_host_set_busy_timeout(host, 10000);
    canceller = g_thread_new("cancel", cancel_thread, cancellable);
    start = g_get_monotonic_time();
    probe = dv_virt_host_probe(host, cancellable, &error);
    g_assert_null(probe);
    g_assert_error(error, DV_ERROR, DV_ERROR_CANCELLED);
    g_assert_cmpint(g_get_monotonic_time() - start, <, 5 * G_TIME_SPAN_SECOND);
    g_clear_error(&error);
    g_thread_join(canceller);

    g_mutex_lock(&d.lock);
    d.release = TRUE;
    g_cond_broadcast(&d.cond);
    g_mutex_unlock(&d.lock);
    g_thread_join(holder);
    probe = dv_virt_host_probe(host, NULL, &error);
    g_assert_no_error(error);
    stats = dv_virt_host_get_stats(host);
    g_assert_cmpint(dv_json_get_int(stats, "busy_rejections", 0), ==, 1);
    g_mutex_clear(&d.lock);
    g_cond_clear(&d.cond);
}

/* ---- errors ----------------------------------------------------------- */

static void
test_unreachable(void)
{
    g_autoptr(DvVirtHost) host = dv_virt_host_get(the_virt, "down", "qemu+tcp://127.0.0.1:1/system");
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) probe = NULL;
    g_autoptr(JsonObject) stats = NULL;
    gint64 start = g_get_monotonic_time();

    probe = dv_virt_host_probe(host, NULL, &error);
    g_assert_null(probe);
    g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
    g_assert_true(g_str_has_prefix(error->message,
                                   "cannot reach host qemu+tcp://127.0.0.1:1/system: "));
    g_assert_cmpint(g_get_monotonic_time() - start, <, 5 * G_TIME_SPAN_SECOND);
    stats = dv_virt_host_get_stats(host);
    g_assert_cmpint(dv_json_get_int(stats, "open_connections", 99), ==, 0);
    g_assert_cmpint(dv_json_get_int(stats, "operations_in_flight", 99), ==, 0);
    g_clear_error(&error);
    g_assert_null(dv_virt_host_check_rights(host, NULL, &error));
    g_assert_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE);
}

static void
test_error_mapping(void)
{
    static const struct {
        int code;
        int domain;
        gboolean at_connect;
        DvErrorCode expected;
    } cases[] = {
        { VIR_ERR_NO_DOMAIN, VIR_FROM_QEMU, FALSE, DV_ERROR_NOT_FOUND },
        { VIR_ERR_NO_STORAGE_POOL, VIR_FROM_STORAGE, FALSE, DV_ERROR_NOT_FOUND },
        { VIR_ERR_NO_STORAGE_VOL, VIR_FROM_STORAGE, FALSE, DV_ERROR_NOT_FOUND },
        { VIR_ERR_NO_NETWORK, VIR_FROM_NETWORK, FALSE, DV_ERROR_NOT_FOUND },
        { VIR_ERR_NO_DOMAIN_SNAPSHOT, VIR_FROM_DOMAIN_SNAPSHOT, FALSE, DV_ERROR_NOT_FOUND },
        { VIR_ERR_OPERATION_DENIED, VIR_FROM_NONE, FALSE, DV_ERROR_PERMISSION_DENIED },
        { VIR_ERR_AUTH_FAILED, VIR_FROM_AUTH, TRUE, DV_ERROR_PERMISSION_DENIED },
        { VIR_ERR_AUTH_CANCELLED, VIR_FROM_AUTH, TRUE, DV_ERROR_PERMISSION_DENIED },
        { VIR_ERR_NO_CONNECT, VIR_FROM_NONE, TRUE, DV_ERROR_UNAVAILABLE },
        { VIR_ERR_SYSTEM_ERROR, VIR_FROM_RPC, TRUE, DV_ERROR_UNAVAILABLE },
        { VIR_ERR_SYSTEM_ERROR, VIR_FROM_REMOTE, TRUE, DV_ERROR_UNAVAILABLE },
        { VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC, FALSE, DV_ERROR_UNAVAILABLE },
        { VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU, FALSE, DV_ERROR_CONFLICT },
        { VIR_ERR_DOM_EXIST, VIR_FROM_QEMU, FALSE, DV_ERROR_CONFLICT },
        { VIR_ERR_STORAGE_VOL_EXIST, VIR_FROM_STORAGE, FALSE, DV_ERROR_CONFLICT },
        { VIR_ERR_OPERATION_TIMEOUT, VIR_FROM_QEMU, FALSE, DV_ERROR_TIMEOUT },
        { VIR_ERR_NO_SUPPORT, VIR_FROM_QEMU, FALSE, DV_ERROR_NOT_SUPPORTED },
        { VIR_ERR_ARGUMENT_UNSUPPORTED, VIR_FROM_QEMU, FALSE, DV_ERROR_NOT_SUPPORTED },
        { VIR_ERR_INTERNAL_ERROR, VIR_FROM_QEMU, FALSE, DV_ERROR_HOST_FAILED },
        { VIR_ERR_SYSTEM_ERROR, VIR_FROM_QEMU, FALSE, DV_ERROR_HOST_FAILED },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        virError err = { 0 };
        g_autoptr(GError) error = NULL;

        err.code = cases[i].code;
        err.domain = cases[i].domain;
        err.message = (char *)"boom";
        g_assert_cmpint(dv_virt_error_code_from_virt(&err, cases[i].at_connect), ==,
                        cases[i].expected);
        dv_virt_set_error_from_virt(&error, &err, "qemu+ssh://h/system", cases[i].at_connect,
                                    "doing x");
        g_assert_error(error, DV_ERROR, (gint)cases[i].expected);
        if (cases[i].expected == DV_ERROR_UNAVAILABLE)
            g_assert_cmpstr(error->message, ==, "cannot reach host qemu+ssh://h/system: boom");
        else
            g_assert_cmpstr(error->message, ==, "doing x: boom");
    }
    g_assert_cmpint(dv_virt_error_code_from_virt(NULL, FALSE), ==, DV_ERROR_HOST_FAILED);
}

static void
test_daemon_limits_remote(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) limits = dv_virt_host_get_daemon_limits(fx->host, &error);

    g_assert_null(limits);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED);
    g_assert_nonnull(strstr(error->message, "only be read on the local host"));
}

static void
test_host_cache(void)
{
    g_autoptr(DvVirtHost) a = dv_virt_host_get(the_virt, "cache", "test:///default");
    g_autoptr(DvVirtHost) b = dv_virt_host_get(the_virt, "cache", "test:///default");
    g_autoptr(DvVirtHost) c = dv_virt_host_get(the_virt, "cache", "test:///elsewhere.xml");

    g_assert_true(a == b);
    g_assert_true(a != c);
    g_assert_cmpstr(dv_virt_host_get_uri(c), ==, "test:///elsewhere.xml");
    g_assert_cmpstr(dv_virt_host_get_id(a), ==, "cache");
    /* Credentials are stored, not echoed anywhere. */
    dv_virt_host_set_credentials(a, "admin", "s3cret");
    dv_virt_host_set_credentials(a, NULL, NULL);
}

/* ---- speed sanity (not a timed assertion) ----------------------------- */

static void
test_probe_speed(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("dv-virt-speed-XXXXXX", &error);
    const guint nhosts = 40;
    g_autoptr(GPtrArray) hosts = g_ptr_array_new_with_free_func((GDestroyNotify)dv_virt_host_unref);
    g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
    gint64 t0;
    gint64 t_open;
    gint64 t_probe;

    g_assert_no_error(error);
    for (guint i = 0; i < nhosts; i++) {
        g_autofree char *name = g_strdup_printf("h%u.xml", i);
        char *path = write_host_xml(dir, name, 25, TRUE);
        g_autofree char *uri = g_strdup_printf("test://%s", path);
        g_autofree char *id = g_strdup_printf("speed-%u", i);

        g_ptr_array_add(paths, path);
        g_ptr_array_add(hosts, dv_virt_host_get(the_virt, id, uri));
    }
    /* First probe opens (parses the host file), the second reuses. */
    t0 = g_get_monotonic_time();
    for (guint i = 0; i < nhosts; i++) {
        g_autoptr(JsonObject) p = dv_virt_host_probe(g_ptr_array_index(hosts, i), NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpint(json_array_get_length(dv_json_get_array(p, "domains")), ==, 25);
    }
    t_open = g_get_monotonic_time() - t0;
    t0 = g_get_monotonic_time();
    for (guint i = 0; i < nhosts; i++) {
        g_autoptr(JsonObject) p = dv_virt_host_probe(g_ptr_array_index(hosts, i), NULL, &error);
        g_assert_no_error(error);
    }
    t_probe = g_get_monotonic_time() - t0;
    g_test_message("probe of a 25-domain test host: first (with open) %.2f ms, again %.2f ms; "
                   "1000 hosts on one core would take %.1f s",
                   t_open / 1000.0 / nhosts, t_probe / 1000.0 / nhosts,
                   t_probe / 1e6 / nhosts * 1000);
    if (g_getenv("DV_VIRT_SPEED") != NULL)
        g_printerr("probe: first %.2f ms, again %.2f ms per host\n", t_open / 1000.0 / nhosts,
                   t_probe / 1000.0 / nhosts);
    for (guint i = 0; i < paths->len; i++)
        g_unlink(g_ptr_array_index(paths, i));
    g_rmdir(dir);
}

/* VNC authentication's DES.  The vector was computed independently with
 * OpenSSL's DES (printf 0123456789abcdef | openssl enc -des-ecb -nopad
 * -K 8646c626a666e616 -provider legacy -provider default), and QEMU
 * accepts this code's answers in api-console-remote-system. */
static void
test_rfb_des(void)
{
    static const guint8 want_key[8] = { 0x86, 0x46, 0xc6, 0x26, 0xa6, 0x66, 0xe6, 0x16 };
    static const guint8 want_short[8] = { 0x0e, 0xee, 0, 0, 0, 0, 0, 0 };
    static const guint8 challenge[16] = "0123456789abcdef";
    static const guint8 want[16] = { 0x2f, 0xf8, 0x41, 0x4e, 0xb7, 0xe9, 0x72, 0x29,
                                     0xe7, 0x2e, 0xa9, 0xd2, 0x6a, 0xfa, 0xfe, 0xb0 };
    guint8 key[8];
    guint8 response[16];
    guint8 back[16];
    struct des_ctx ctx;

    /* Each byte's bits reversed ('a' 0x61 -> 0x86); short passwords are
     * zero-padded, long ones cut at 8 bytes. */
    dv_virt_rfb_des_key("abcdefgh", key);
    g_assert_cmpmem(key, 8, want_key, 8);
    dv_virt_rfb_des_key("abcdefghijk", key);
    g_assert_cmpmem(key, 8, want_key, 8);
    dv_virt_rfb_des_key("pw", key);
    g_assert_cmpmem(key, 8, want_short, 8);

    g_assert_true(dv_virt_rfb_des_response("abcdefgh", challenge, response));
    g_assert_cmpmem(response, 16, want, 16);
    /* Round trip: nettle's decrypt with the reversed key gives the
     * challenge back, block by block (ECB). */
    dv_virt_rfb_des_key("abcdefgh", key);
    g_assert_cmpint(des_set_key(&ctx, key), ==, 1);
    des_decrypt(&ctx, 16, back, response);
    g_assert_cmpmem(back, 16, challenge, 16);
    /* Not the unreversed key's answer. */
    g_assert_cmpint(des_set_key(&ctx, (const guint8 *)"abcdefgh"), ==, 1);
    des_decrypt(&ctx, 16, back, response);
    g_assert_true(memcmp(back, challenge, 16) != 0);
    /* A weak DES key is reported (all zero bits: the empty password). */
    g_assert_false(dv_virt_rfb_des_response("", challenge, response));
}

/* Where droverd connects for a remote display (docs/VIRT.md). */
static void
test_graphics_connect_address(void)
{
    g_autoptr(GError) error = NULL;
    char *a;

    a = dv_virt_graphics_connect_address("0.0.0.0", "kvm1.example", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(a, ==, "kvm1.example");
    g_free(a);
    a = dv_virt_graphics_connect_address("::", "10.0.0.5", &error);
    g_assert_cmpstr(a, ==, "10.0.0.5");
    g_free(a);
    a = dv_virt_graphics_connect_address("192.0.2.7", "kvm1.example", &error);
    g_assert_cmpstr(a, ==, "192.0.2.7");
    g_free(a);
    /* The host's loopback: only from the same machine. */
    a = dv_virt_graphics_connect_address("127.0.0.1", "127.0.0.2", &error);
    g_assert_cmpstr(a, ==, "127.0.0.1");
    g_free(a);
    a = dv_virt_graphics_connect_address(NULL, "localhost", &error);
    g_assert_cmpstr(a, ==, "127.0.0.1");
    g_free(a);
    g_assert_no_error(error);
    a = dv_virt_graphics_connect_address("127.0.0.1", "kvm1.example", &error);
    g_assert_null(a);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED);
    g_assert_cmpstr(dv_error_get_field(error), ==, "type");
    g_assert_nonnull(strstr(error->message, "loopback"));
    g_clear_error(&error);
    a = dv_virt_graphics_connect_address("::1", "kvm1.example", &error);
    g_assert_null(a);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED);
    g_clear_error(&error);
    a = dv_virt_graphics_connect_address("not-an-address", "kvm1.example", &error);
    g_assert_null(a);
    g_assert_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED);
}

int
main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    the_virt = dv_virt_new();
    dv_virt_set_uri_policy(the_virt, TRUE, NULL); /* test:/// hosts */

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("/drover/virt/probe", test_probe);
    ADD("/drover/virt/probe-uefi", test_probe_uefi);
    ADD("/drover/virt/rights", test_rights);
    g_test_add("/drover/virt/rights-no-pool", Fixture, NULL, fixture_setup_nopool, test_rights_no_pool,
               fixture_teardown);
    g_test_add_func("/drover/virt/xml/gen1", test_xml_gen1);
    g_test_add_func("/drover/virt/xml/gen2", test_xml_gen2);
    g_test_add_func("/drover/virt/xml/invalid", test_xml_invalid);
    ADD("/drover/virt/domain/lifecycle", test_domain_lifecycle);
    ADD("/drover/virt/domain/delete-volumes", test_domain_delete_volumes);
    ADD("/drover/virt/domain/transient-disk", test_domain_transient_disk);
    ADD("/drover/virt/domain/gen2", test_domain_gen2);
    ADD("/drover/virt/snapshots", test_snapshots);
    ADD("/drover/virt/volumes", test_volumes);
    ADD("/drover/virt/volume-create-lean", test_volume_create_lean);
    g_test_add_func("/drover/virt/limits/enforced", test_limits);
    ADD("/drover/virt/limits/test-file-one-connection", test_limits_test_file);
    g_test_add_func("/drover/virt/limits/busy", test_busy);
    g_test_add_func("/drover/virt/errors/unreachable", test_unreachable);
    g_test_add_func("/drover/virt/errors/mapping", test_error_mapping);
    ADD("/drover/virt/daemon-limits/not-local", test_daemon_limits_remote);
    g_test_add_func("/drover/virt/host-cache", test_host_cache);
    g_test_add_func("/drover/virt/probe-speed", test_probe_speed);
    g_test_add_func("/drover/virt/rfb/des", test_rfb_des);
    g_test_add_func("/drover/virt/graphics/connect-address", test_graphics_connect_address);
#undef ADD

    rc = g_test_run();
    dv_virt_free(the_virt);
    return rc;
}
