#define G_LOG_DOMAIN "DvVmsMigrate"

/* Live migration of a VM to another host of its cluster (issue 14, items
 * 1-3; docs/API.md "Live migration"): the preflight that names every
 * reason a host cannot take the VM, placement among the hosts that can,
 * and the vm.migrate job around dv_virt_domain_migrate().
 *
 * The preflight runs in the request's thread and reads each candidate
 * live (the virt layer's facts: the domain's CPU, memory, passthrough
 * devices and snapshots, the target's free memory and CPU comparison) and
 * from the inventory (cluster, hypervisor, pools, networks).  The job
 * claims the domain (dv_core_migration_claim()) so a host sync neither
 * imports it where it arrives nor marks it missing where it leaves, makes
 * the target's disk files when storage is copied, migrates, then removes
 * the source's copies and moves the rows in one transaction.  A failure
 * removes what it made on the target; the VM runs on at the source. */

#include "dv-vms-private.h"

#include <string.h>

/* The catalogs' placement weight (dv-catalog-place.c): free memory, less
 * up to three quarters of it for a host whose CPUs are fully busy. */
#define DV_VM_MIGRATE_CPU_FACTOR 0.75
#define DV_VM_MIGRATE_LOAD_SAMPLE_MS 200
#define DV_VM_MIGRATE_MAX_MIB_S (1024 * 1024)
#define DV_VM_MIGRATE_DEFAULT_TIMEOUT_S 1800

static const char *const dv_vm_migrate_storage_values[] = { "auto", "shared", "copy", NULL };

/* POST /vms/{ref}/migrate and /vms/{ref}/migrate/preflight. */
const DvFieldSpec dv_vm_migrate_fields[] = {
    { "to", DV_FIELD_STRING_OR_NULL, FALSE,
      .description = "the target host; omitted: placement picks one of the VM's cluster" },
    { "storage", DV_FIELD_STRING, FALSE, .values = dv_vm_migrate_storage_values,
      .description = "auto (shared when every disk's pool is the same on the target, else "
                     "copied), shared, copy" },
    { "bandwidth_mib_s", DV_FIELD_INT, FALSE, .min = 1, .max = DV_VM_MIGRATE_MAX_MIB_S,
      .description = "cap in MiB/s (lowered to either host's migration_bandwidth_mib_s)" },
    { "timeout_s", DV_FIELD_INT, FALSE, .min = 5, .max = 86400,
      .description = "the migration is aborted after this many seconds (default 1800)" },
    { NULL },
};

/* GET /vms/{ref}/migrate/preflight?to=&storage= */
const DvFieldSpec dv_vm_migrate_query[] = {
    { "to", DV_FIELD_STRING, FALSE, .description = "the target host; omitted: every candidate" },
    { "storage", DV_FIELD_STRING, FALSE, .values = dv_vm_migrate_storage_values,
      .description = "auto, shared or copy" },
    { NULL },
};

/* A host in maintenance takes no VM (issue 14, item 4).  Hosts have no
 * maintenance state yet: this is the one place that will ask it. */
static gboolean
dv_vm_migrate_host_in_maintenance(JsonObject *host)
{
    return g_strcmp0(dv_json_get_string(host, "state", ""), "maintenance") == 0;
}

static void dv_vm_check_add(JsonArray *checks, const char *name, gboolean ok, const char *format,
                            ...) G_GNUC_PRINTF(4, 5);

static void
dv_vm_check_add(JsonArray *checks, const char *name, gboolean ok, const char *format, ...)
{
    JsonObject *c = json_object_new();
    va_list ap;
    g_autofree char *detail = NULL;

    va_start(ap, format);
    detail = g_strdup_vprintf(format, ap);
    va_end(ap);
    json_object_set_string_member(c, "check", name);
    json_object_set_boolean_member(c, "ok", ok);
    json_object_set_string_member(c, "detail", detail);
    json_array_add_object_element(checks, c);
}

/* The VM's own writable disks: {target, source, format} (borrowed). */
static gboolean
dv_vm_disk_is_own(JsonObject *d)
{
    return g_strcmp0(dv_json_get_string(d, "device", "disk"), "disk") == 0 &&
           !dv_json_get_bool(d, "readonly", FALSE) && !dv_json_get_bool(d, "shareable", FALSE) &&
           dv_json_get_string(d, "source", NULL) != NULL;
}

/* The pool row on @host_id whose directory holds @path, or NULL. */
static JsonObject *
dv_vm_pool_of_path(JsonArray *pools, const char *path)
{
    g_autofree char *dir = g_path_get_dirname(path);
    for (guint i = 0; i < json_array_get_length(pools); i++) {
        JsonObject *p = json_array_get_object_element(pools, i);
        if (g_strcmp0(dv_json_get_string(p, "path", NULL), dir) == 0)
            return p;
    }
    return NULL;
}

/* The catalog base a catalog machine's overlay @path sits on, if the VM
 * is one: the base row, or NULL. */
static JsonObject *
dv_vm_migrate_base_of(DvEngine *engine, JsonObject *vm, const char *path, GError **error)
{
    g_autoptr(JsonArray) machines = dv_core_list_all(engine, &dv_table_catalog_machines, "vm_id",
                                                     dv_json_get_string(vm, "id", ""), error);
    JsonObject *m;

    if (machines == NULL || json_array_get_length(machines) == 0)
        return NULL;
    m = json_array_get_object_element(machines, 0);
    if (g_strcmp0(dv_json_get_string(m, "overlay_path", NULL), path) != 0 ||
        dv_json_get_string(m, "base_id", NULL) == NULL)
        return NULL;
    return dv_store_get(dv_core(engine)->store, &dv_table_catalog_bases,
                        dv_json_get_string(m, "base_id", ""), NULL);
}

/* A cluster's name for a check's detail (interned: a handful per
 * installation), "none" or its id when it has none. */
static const char *
dv_vm_cluster_name(DvEngine *engine, const char *cluster_id)
{
    g_autoptr(JsonObject) c = NULL;
    if (cluster_id == NULL)
        return "none";
    c = dv_store_get(dv_core(engine)->store, &dv_table_clusters, cluster_id, NULL);
    return g_intern_string(dv_json_get_string(c, "name", cluster_id));
}

/* Checks @target for @vm (its disks, networks, the live facts) and
 * decides the storage: the candidate {host, host_id, ok, storage,
 * disks: [{target, source, pool, name, format, capacity?, base_path?}],
 * checks: [{check, ok, detail}], rating?...}. */
static JsonObject *
dv_vm_migrate_check_host(DvEngine *engine, JsonObject *vm, JsonObject *src, JsonObject *target,
                         DvVirtHost *svh, const char *storage_req, GCancellable *c)
{
    g_autoptr(JsonObject) cand = json_object_new();
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonArray) src_pools = NULL;
    g_autoptr(JsonArray) dst_pools = NULL;
    g_autoptr(JsonArray) dst_nets = NULL;
    g_autoptr(JsonObject) facts = NULL;
    g_autoptr(DvVirtHost) tvh = NULL;
    JsonArray *checks = json_array_new();
    JsonArray *plan = json_array_new();
    JsonObject *spec = dv_json_get_object(vm, "spec");
    JsonArray *disks = dv_json_get_array(spec, "disks");
    JsonArray *nics = dv_json_get_array(spec, "networks");
    const char *tname = dv_json_get_string(target, "name", "");
    const char *tid = dv_json_get_string(target, "id", "");
    const char *src_cluster = dv_json_get_string(src, "cluster_id", NULL);
    gboolean shared = TRUE, all_bases = TRUE, any_base = FALSE, pools_ok = TRUE, nets_ok = TRUE;
    const char *storage;

    json_object_set_string_member(cand, "host", tname);
    json_object_set_string_member(cand, "host_id", tid);
    json_object_set_array_member(cand, "checks", checks);

    dv_vm_check_add(checks, "not_source", g_strcmp0(tid, dv_json_get_string(src, "id", "")) != 0,
                    "the VM runs on %s", dv_json_get_string(src, "name", ""));
    if (src_cluster != NULL)
        dv_vm_check_add(checks, "cluster",
                        g_strcmp0(src_cluster, dv_json_get_string(target, "cluster_id", NULL)) == 0,
                        "the VM's host is in cluster %s, %s in %s",
                        dv_vm_cluster_name(engine, src_cluster), tname,
                        dv_vm_cluster_name(engine, dv_json_get_string(target, "cluster_id", NULL)));
    else
        dv_vm_check_add(checks, "host_group",
                        g_strcmp0(dv_json_get_string(src, "host_group_id", NULL),
                                  dv_json_get_string(target, "host_group_id", NULL)) == 0 &&
                            dv_json_get_string(target, "cluster_id", NULL) == NULL,
                        "without a cluster a VM moves within its host's group (%s); %s is in %s%s",
                        dv_json_get_string(src, "host_group_id", "none"), tname,
                        dv_json_get_string(target, "host_group_id", "none"),
                        dv_json_get_string(target, "cluster_id", NULL) != NULL ? " and a cluster"
                                                                               : "");
    dv_vm_check_add(checks, "hypervisor",
                    g_strcmp0(dv_json_get_string(src, "hypervisor_type", ""),
                              dv_json_get_string(target, "hypervisor_type", "")) == 0 &&
                        dv_json_get_int(src, "hypervisor_major", -1) ==
                            dv_json_get_int(target, "hypervisor_major", -2),
                    "%s %" G_GINT64_FORMAT " here, %s %" G_GINT64_FORMAT " on %s",
                    dv_json_get_string(src, "hypervisor_type", "?"),
                    dv_json_get_int(src, "hypervisor_major", -1),
                    dv_json_get_string(target, "hypervisor_type", "?"),
                    dv_json_get_int(target, "hypervisor_major", -1), tname);
    dv_vm_check_add(checks, "maintenance", !dv_vm_migrate_host_in_maintenance(target), "%s is %s",
                    tname, dv_json_get_string(target, "state", "?"));

    /* Storage: each own disk's pool, by the directory holding it. */
    src_pools = dv_core_list_all(engine, &dv_table_pools, "host_id",
                                 dv_json_get_string(src, "id", ""), NULL);
    dst_pools = dv_core_list_all(engine, &dv_table_pools, "host_id", tid, NULL);
    for (guint i = 0; disks != NULL && i < json_array_get_length(disks); i++) {
        JsonObject *d = json_array_get_object_element(disks, i);
        const char *path = dv_json_get_string(d, "source", "");
        JsonObject *sp;
        JsonObject *tp = NULL;
        JsonObject *p;
        g_autofree char *base = NULL;
        g_autoptr(JsonObject) base_row = NULL;

        if (!dv_vm_disk_is_own(d))
            continue;
        sp = src_pools != NULL ? dv_vm_pool_of_path(src_pools, path) : NULL;
        if (sp == NULL) {
            dv_vm_check_add(checks, "pools", FALSE,
                            "disk %s (%s) is in no storage pool of the VM's host",
                            dv_json_get_string(d, "target", "?"), path);
            pools_ok = FALSE;
            continue;
        }
        for (guint k = 0; dst_pools != NULL && k < json_array_get_length(dst_pools); k++) {
            JsonObject *x = json_array_get_object_element(dst_pools, k);
            if (g_strcmp0(dv_json_get_string(x, "name", NULL),
                          dv_json_get_string(sp, "name", "")) == 0)
                tp = x;
        }
        if (tp == NULL || g_strcmp0(dv_json_get_string(tp, "state", ""), "running") != 0) {
            dv_vm_check_add(checks, "pools", FALSE, "%s has no running pool '%s' (disk %s)", tname,
                            dv_json_get_string(sp, "name", ""),
                            dv_json_get_string(d, "target", "?"));
            pools_ok = FALSE;
            continue;
        }
        if (g_strcmp0(dv_json_get_string(tp, "path", NULL), dv_json_get_string(sp, "path", "")) !=
                0 ||
            g_strcmp0(dv_json_get_string(tp, "type", NULL), dv_json_get_string(sp, "type", "")) !=
                0)
            shared = FALSE;
        p = json_object_new();
        json_object_set_string_member(p, "target", dv_json_get_string(d, "target", ""));
        json_object_set_string_member(p, "source", path);
        json_object_set_string_member(p, "pool", dv_json_get_string(sp, "name", ""));
        base = g_path_get_basename(path);
        json_object_set_string_member(p, "name", base);
        json_object_set_string_member(p, "format", dv_json_get_string(d, "format", "raw"));
        json_object_set_string_member(p, "new_path", "");
        {
            g_autofree char *np = g_build_filename(dv_json_get_string(tp, "path", "/"), base, NULL);
            json_object_set_string_member(p, "new_path", np);
        }
        /* A catalog machine's overlay: copy the top only when its base is
         * in the target's pool of the same name, by name. */
        base_row = dv_vm_migrate_base_of(engine, vm, path, NULL);
        if (base_row != NULL) {
            g_autoptr(JsonObject) tbp = NULL;
            g_autoptr(JsonObject) vol = NULL;
            g_autoptr(JsonArray) vols = NULL;
            any_base = TRUE;
            vols = dv_core_list_all(engine, &dv_table_volumes, "pool_id",
                                    dv_json_get_string(tp, "id", ""), NULL);
            for (guint k = 0; vols != NULL && k < json_array_get_length(vols); k++) {
                JsonObject *v = json_array_get_object_element(vols, k);
                if (g_strcmp0(dv_json_get_string(v, "name", NULL),
                              dv_json_get_string(base_row, "volume_name", "")) == 0)
                    vol = json_object_ref(v);
            }
            if (vol != NULL) {
                json_object_set_string_member(p, "base_path", dv_json_get_string(vol, "path", ""));
                json_object_set_string_member(p, "base_format",
                                              dv_json_get_string(base_row, "format", "qcow2"));
                json_object_set_string_member(p, "base_image_id",
                                              dv_json_get_string(base_row, "image_id", ""));
            } else {
                all_bases = FALSE;
            }
        }
        json_array_add_object_element(plan, p);
    }
    if (pools_ok)
        dv_vm_check_add(checks, "pools", TRUE, "every disk's pool exists on %s (%s)", tname,
                        shared ? "the same storage" : "other storage: copied");
    storage = shared ? "shared" : (any_base && all_bases ? "copy-top" : "copy-all");
    if (g_strcmp0(storage_req, "shared") == 0 && !shared) {
        dv_vm_check_add(checks, "storage", FALSE,
                        "shared asked, but the pools on %s are not the same storage", tname);
    } else if (g_strcmp0(storage_req, "copy") == 0 && shared) {
        storage = any_base && all_bases ? "copy-top" : "copy-all";
    }
    json_object_set_string_member(cand, "storage", storage);
    json_object_set_array_member(cand, "disks", plan);

    dst_nets = dv_core_list_all(engine, &dv_table_networks, "host_id", tid, NULL);
    for (guint i = 0; nics != NULL && i < json_array_get_length(nics); i++) {
        const char *net =
            dv_json_get_string(json_array_get_object_element(nics, i), "network", NULL);
        gboolean found = FALSE;
        if (net == NULL)
            continue;
        for (guint k = 0; dst_nets != NULL && k < json_array_get_length(dst_nets); k++) {
            JsonObject *n = json_array_get_object_element(dst_nets, k);
            if (g_strcmp0(dv_json_get_string(n, "name", NULL), net) == 0 &&
                dv_json_get_bool(n, "active", FALSE))
                found = TRUE;
        }
        if (!found) {
            dv_vm_check_add(checks, "networks", FALSE, "%s has no active network '%s'", tname, net);
            nets_ok = FALSE;
        }
    }
    if (nets_ok)
        dv_vm_check_add(checks, "networks", TRUE, "every network of the VM is active on %s", tname);

    /* Live: the target answers, and what it offers. */
    tvh = dv_core_virt_host(engine, target, &local);
    if (tvh != NULL)
        facts =
            dv_virt_domain_migrate_facts(svh, dv_json_get_string(vm, "uuid", ""), tvh, c, &local);
    if (facts == NULL) {
        dv_vm_check_add(checks, "reachable", FALSE, "%s", local != NULL ? local->message : "?");
        json_object_set_int_member(cand, "error_code", local != NULL ? local->code : 0);
    } else {
        JsonObject *cpu = dv_json_get_object(facts, "cpu");
        gint64 need = dv_json_get_int(facts, "memory_mib", 0);
        gint64 have = dv_json_get_int(facts, "target_free_memory_mib", 0);
        dv_vm_check_add(checks, "reachable", TRUE, "%s answers", tname);
        dv_vm_check_add(checks, "running", dv_json_get_bool(facts, "running", FALSE),
                        "a live migration moves a running VM; VM %s is %s",
                        dv_json_get_string(vm, "name", ""), dv_json_get_string(vm, "state", "?"));
        dv_vm_check_add(checks, "passthrough", dv_json_get_int(facts, "hostdevs", 0) == 0,
                        "%" G_GINT64_FORMAT " passthrough (hostdev) devices",
                        dv_json_get_int(facts, "hostdevs", 0));
        dv_vm_check_add(checks, "snapshots", dv_json_get_int(facts, "snapshots", 0) == 0,
                        "%" G_GINT64_FORMAT " snapshots (libvirt moves no snapshot; delete them "
                        "first)",
                        dv_json_get_int(facts, "snapshots", 0));
        dv_vm_check_add(checks, "memory", have >= need,
                        "the VM needs %" G_GINT64_FORMAT " MiB, %s has %" G_GINT64_FORMAT
                        " MiB free",
                        need, tname, have);
        dv_vm_check_add(
            checks, "cpu", g_strcmp0(dv_json_get_string(cpu, "result", ""), "incompatible") != 0,
            "CPU %s%s%s: %s%s%s", dv_json_get_string(cpu, "mode", "?"),
            dv_json_get_string(cpu, "model", NULL) != NULL ? " " : "",
            dv_json_get_string(cpu, "model", ""), dv_json_get_string(cpu, "result", "?"),
            dv_json_get_string(cpu, "detail", NULL) != NULL ? "; " : "",
            dv_json_get_string(cpu, "detail", ""));
        json_object_set_int_member(cand, "free_memory_mib", have);
    }
    {
        gboolean ok = TRUE;
        for (guint i = 0; i < json_array_get_length(checks); i++)
            ok = ok && dv_json_get_bool(json_array_get_object_element(checks, i), "ok", FALSE);
        json_object_set_boolean_member(cand, "ok", ok);
        if (ok && tvh != NULL) {
            g_autoptr(JsonObject) load =
                dv_virt_host_get_load(tvh, DV_VM_MIGRATE_LOAD_SAMPLE_MS, c, NULL);
            double busy = load != NULL && json_object_has_member(load, "cpu_busy") &&
                                  !json_object_get_null_member(load, "cpu_busy")
                              ? json_object_get_double_member(load, "cpu_busy")
                              : 0.0;
            gint64 free_mib = load != NULL ? dv_json_get_int(load, "free_memory_mib", 0)
                                           : dv_json_get_int(cand, "free_memory_mib", 0);
            busy = CLAMP(busy, 0.0, 1.0);
            json_object_set_double_member(cand, "cpu_busy", busy);
            json_object_set_int_member(cand, "free_memory_mib", free_mib);
            json_object_set_double_member(
                cand, "rating", (double)MAX(free_mib, 1) * (1.0 - DV_VM_MIGRATE_CPU_FACTOR * busy));
        }
    }
    return g_steal_pointer(&cand);
}

static double
dv_vm_rating(JsonObject *cand)
{
    return json_object_has_member(cand, "rating") ? json_object_get_double_member(cand, "rating")
                                                  : 0.0;
}

/* The preflight of moving @vm: {vm, source, target (the chosen host's
 * name, or null), storage, candidates: [...]}.  @to NULL: every host of
 * the cluster (or, without one, of the host group) but the source. */
static JsonObject *
dv_vm_migrate_plan(DvEngine *engine, JsonObject *vm, const char *to, const char *storage_req,
                   GError **error)
{
    g_autoptr(JsonObject) src = NULL;
    g_autoptr(DvVirtHost) svh = NULL;
    g_autoptr(JsonArray) hosts = NULL;
    g_autoptr(JsonObject) out = json_object_new();
    JsonArray *cands = json_array_new();
    JsonObject *best = NULL;
    const char *src_cluster;

    json_object_set_array_member(out, "candidates", cands);
    src = dv_store_get(dv_core(engine)->store, &dv_table_hosts,
                       dv_json_get_string(vm, "host_id", ""), error);
    if (src == NULL)
        return NULL;
    svh = dv_core_virt_host(engine, src, error);
    if (svh == NULL)
        return NULL;
    json_object_set_string_member(out, "vm", dv_json_get_string(vm, "name", ""));
    json_object_set_string_member(out, "source", dv_json_get_string(src, "name", ""));
    if (to != NULL) {
        JsonObject *t = dv_core_resolve(engine, DV_KIND_HOST, to, "to", error);
        if (t == NULL)
            return NULL;
        hosts = json_array_new();
        json_array_add_object_element(hosts, t);
    } else {
        src_cluster = dv_json_get_string(src, "cluster_id", NULL);
        hosts = src_cluster != NULL
                    ? dv_core_list_all(engine, &dv_table_hosts, "cluster_id", src_cluster, error)
                    : dv_core_list_all(engine, &dv_table_hosts, "host_group_id",
                                       dv_json_get_string(src, "host_group_id", ""), error);
        if (hosts == NULL)
            return NULL;
    }
    for (guint i = 0; i < json_array_get_length(hosts); i++) {
        JsonObject *h = json_array_get_object_element(hosts, i);
        JsonObject *cand;
        if (to == NULL &&
            g_strcmp0(dv_json_get_string(h, "id", ""), dv_json_get_string(src, "id", "")) == 0)
            continue;
        cand = dv_vm_migrate_check_host(engine, vm, src, h, svh, storage_req, NULL);
        json_array_add_object_element(cands, cand);
        if (dv_json_get_bool(cand, "ok", FALSE) &&
            (best == NULL || dv_vm_rating(cand) > dv_vm_rating(best)))
            best = cand;
    }
    if (best != NULL) {
        json_object_set_string_member(out, "target", dv_json_get_string(best, "host", ""));
        json_object_set_string_member(out, "target_id", dv_json_get_string(best, "host_id", ""));
        json_object_set_string_member(out, "storage", dv_json_get_string(best, "storage", ""));
    } else {
        json_object_set_null_member(out, "target");
        json_object_set_null_member(out, "storage");
    }
    return g_steal_pointer(&out);
}

/* The first failed check of the one candidate, as the error a migration
 * with that target is refused with. */
static void
dv_vm_migrate_refuse(JsonObject *plan, GError **error)
{
    JsonArray *cands = dv_json_get_array(plan, "candidates");
    JsonObject *cand;
    JsonArray *checks;

    if (cands == NULL || json_array_get_length(cands) == 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "to",
                           "to: no other host of %s's cluster or host group to move VM %s to",
                           dv_json_get_string(plan, "source", ""),
                           dv_json_get_string(plan, "vm", ""));
        return;
    }
    if (json_array_get_length(cands) > 1) {
        g_autoptr(GString) why = g_string_new(NULL);
        for (guint i = 0; i < json_array_get_length(cands); i++) {
            JsonObject *c = json_array_get_object_element(cands, i);
            JsonArray *ch = dv_json_get_array(c, "checks");
            for (guint k = 0; ch != NULL && k < json_array_get_length(ch); k++) {
                JsonObject *x = json_array_get_object_element(ch, k);
                if (!dv_json_get_bool(x, "ok", TRUE)) {
                    g_string_append_printf(why, "%s%s: %s: %s", why->len > 0 ? "; " : "",
                                           dv_json_get_string(c, "host", ""),
                                           dv_json_get_string(x, "check", ""),
                                           dv_json_get_string(x, "detail", ""));
                    break;
                }
            }
        }
        dv_set_field_error(error, DV_ERROR_CONFLICT, "to", "to: no host can take VM %s (%s)",
                           dv_json_get_string(plan, "vm", ""), why->str);
        return;
    }
    cand = json_array_get_object_element(cands, 0);
    checks = dv_json_get_array(cand, "checks");
    /* A host that does not answer is named as such first: its inventory
     * (pools, networks) may be what it was long ago. */
    for (guint k = 0; checks != NULL && k < json_array_get_length(checks); k++) {
        JsonObject *x = json_array_get_object_element(checks, k);
        if (g_strcmp0(dv_json_get_string(x, "check", ""), "reachable") == 0 &&
            !dv_json_get_bool(x, "ok", TRUE)) {
            DvErrorCode code = dv_json_get_int(cand, "error_code", 0) != 0
                                   ? (DvErrorCode)dv_json_get_int(cand, "error_code", 0)
                                   : DV_ERROR_UNAVAILABLE;
            dv_set_field_error(error, code, "to", "to: cannot move VM %s to %s: reachable: %s",
                               dv_json_get_string(plan, "vm", ""),
                               dv_json_get_string(cand, "host", ""),
                               dv_json_get_string(x, "detail", ""));
            return;
        }
    }
    for (guint k = 0; checks != NULL && k < json_array_get_length(checks); k++) {
        JsonObject *x = json_array_get_object_element(checks, k);
        const char *name = dv_json_get_string(x, "check", "");
        DvErrorCode code = DV_ERROR_CONFLICT;
        const char *field = "to";
        if (dv_json_get_bool(x, "ok", TRUE))
            continue;
        if (g_strcmp0(name, "passthrough") == 0 || g_strcmp0(name, "cpu") == 0 ||
            g_strcmp0(name, "hypervisor") == 0)
            code = DV_ERROR_NOT_SUPPORTED;
        if (g_strcmp0(name, "storage") == 0)
            field = "storage";
        dv_set_field_error(error, code, field, "%s: cannot move VM %s to %s: %s: %s", field,
                           dv_json_get_string(plan, "vm", ""), dv_json_get_string(cand, "host", ""),
                           name, dv_json_get_string(x, "detail", ""));
        return;
    }
    dv_set_field_error(error, DV_ERROR_CONFLICT, "to", "to: host %s cannot take VM %s",
                       dv_json_get_string(cand, "host", ""), dv_json_get_string(plan, "vm", ""));
}

JsonObject *
dv_engine_vm_migrate_preflight(DvEngine *engine, const char *vm_ref, GHashTable *query,
                               GError **error)
{
    g_autoptr(JsonObject) vm = NULL;
    g_autoptr(JsonObject) body = json_object_new();

    if (query != NULL) {
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, query);
        while (g_hash_table_iter_next(&it, &k, &v))
            json_object_set_string_member(body, k, v);
    }
    if (!dv_json_check_fields(body, dv_vm_migrate_query, NULL, error))
        return NULL;
    vm = dv_core_resolve(engine, DV_KIND_VM, vm_ref, NULL, error);
    if (vm == NULL)
        return NULL;
    if (dv_json_get_string(vm, "uuid", NULL) == NULL) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, NULL, "VM %s is still being created",
                           dv_json_get_string(vm, "name", ""));
        return NULL;
    }
    return dv_vm_migrate_plan(engine, vm, dv_json_get_string(body, "to", NULL),
                              dv_json_get_string(body, "storage", "auto"), error);
}

JsonObject *
dv_engine_vm_migrate(DvEngine *engine, const char *vm_ref, JsonObject *body, const DvActor *actor,
                     GError **error)
{
    g_autoptr(JsonObject) vm = NULL;
    g_autoptr(JsonObject) plan = NULL;
    g_autoptr(JsonObject) params = json_object_new();
    JsonArray *cands;

    if (body != NULL && !dv_json_check_fields(body, dv_vm_migrate_fields, NULL, error))
        return NULL;
    vm = dv_core_resolve(engine, DV_KIND_VM, vm_ref, NULL, error);
    if (vm == NULL)
        return NULL;
    if (g_strcmp0(dv_json_get_string(vm, "state", ""), "running") != 0 &&
        g_strcmp0(dv_json_get_string(vm, "state", ""), "paused") != 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "ref",
                           "ref: VM %s is %s: a live migration moves a running VM (start it, "
                           "or move it offline by hand)",
                           dv_json_get_string(vm, "name", ""),
                           dv_json_get_string(vm, "state", "?"));
        return NULL;
    }
    plan = dv_vm_migrate_plan(engine, vm, dv_json_get_string(body, "to", NULL),
                              dv_json_get_string(body, "storage", "auto"), error);
    if (plan == NULL)
        return NULL;
    if (dv_json_get_string(plan, "target_id", NULL) == NULL) {
        dv_vm_migrate_refuse(plan, error);
        return NULL;
    }
    cands = dv_json_get_array(plan, "candidates");
    for (guint i = 0; i < json_array_get_length(cands); i++) {
        JsonObject *c = json_array_get_object_element(cands, i);
        if (g_strcmp0(dv_json_get_string(c, "host_id", ""),
                      dv_json_get_string(plan, "target_id", "")) == 0)
            json_object_set_array_member(params, "disks",
                                         json_array_ref(dv_json_get_array(c, "disks")));
    }
    json_object_set_string_member(params, "to", dv_json_get_string(plan, "target_id", ""));
    json_object_set_string_member(params, "storage", dv_json_get_string(plan, "storage", ""));
    if (json_object_has_member(body != NULL ? body : params, "bandwidth_mib_s"))
        json_object_set_int_member(params, "bandwidth_mib_s",
                                   dv_json_get_int(body, "bandwidth_mib_s", 0));
    json_object_set_int_member(params, "timeout_s",
                               dv_json_get_int(body, "timeout_s", DV_VM_MIGRATE_DEFAULT_TIMEOUT_S));
    json_object_set_object_member(params, "plan", json_object_ref(plan));
    return dv_vm_submit(engine, "vm.migrate", vm, params, actor, error);
}

/* --- the job ---------------------------------------------------------------- */

typedef struct {
    DvJob *job;
    gint64 last_percent;
} DvVmMigrateProgress;

static void
dv_vm_migrate_on_progress(JsonObject *stats, gpointer user_data)
{
    DvVmMigrateProgress *p = user_data;
    gint64 percent = dv_json_get_int(stats, "percent", 0);
    if (percent != p->last_percent) {
        p->last_percent = percent;
        dv_job_step_progress(p->job, (double)percent / 100.0);
    }
}

/* The cap: the request's, lowered to either host's setting. */
static guint64
dv_vm_migrate_bandwidth(JsonObject *params, JsonObject *src, JsonObject *dst)
{
    guint64 cap = (guint64)dv_json_get_int(params, "bandwidth_mib_s", 0);
    JsonObject *hosts[] = { src, dst };
    for (guint i = 0; i < G_N_ELEMENTS(hosts); i++) {
        guint64 h = (guint64)dv_json_get_int(hosts[i], "migration_bandwidth_mib_s", 0);
        if (h > 0 && (cap == 0 || h < cap))
            cap = h;
    }
    return cap;
}

typedef struct {
    DvEngine *engine;
    JsonObject *vm;
    const char *to;
    JsonObject *domain;
    JsonObject *paths; /* old path -> new path */
} DvVmMigrateSave;

static gboolean
dv_vm_migrate_save_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvVmMigrateSave *s = user_data;
    const char *vm_id = dv_json_get_string(s->vm, "id", "");
    g_autoptr(JsonObject) changes = json_object_new();
    g_autoptr(JsonArray) machines = NULL;

    json_object_set_string_member(changes, "host_id", s->to);
    json_object_set_int_member(changes, "updated_at", dv_store_now());
    if (!dv_store_update(store, &dv_table_vms, vm_id, changes, error))
        return FALSE;
    /* A catalog machine stays its catalog's, on its new host, on the
     * target's base of its image when there is one. */
    machines = dv_core_list_all(s->engine, &dv_table_catalog_machines, "vm_id", vm_id, error);
    if (machines == NULL)
        return FALSE;
    for (guint i = 0; i < json_array_get_length(machines); i++) {
        JsonObject *m = json_array_get_object_element(machines, i);
        g_autoptr(JsonObject) mc = json_object_new();
        static const char *const cols[] = { "overlay_path", "identity_path", "personal_path" };
        g_autoptr(JsonArray) bases = NULL;

        json_object_set_string_member(mc, "host_id", s->to);
        for (guint k = 0; k < G_N_ELEMENTS(cols); k++) {
            const char *old = dv_json_get_string(m, cols[k], NULL);
            const char *moved = old != NULL ? dv_json_get_string(s->paths, old, NULL) : NULL;
            if (moved != NULL)
                json_object_set_string_member(mc, cols[k], moved);
        }
        bases = dv_core_list_all(s->engine, &dv_table_catalog_bases, "host_id", s->to, error);
        if (bases == NULL)
            return FALSE;
        for (guint k = 0; k < json_array_get_length(bases); k++) {
            JsonObject *b = json_array_get_object_element(bases, k);
            if (g_strcmp0(dv_json_get_string(b, "image_id", NULL),
                          dv_json_get_string(m, "image_id", "")) == 0 &&
                g_strcmp0(dv_json_get_string(b, "catalog_id", NULL),
                          dv_json_get_string(m, "catalog_id", "")) == 0)
                json_object_set_string_member(mc, "base_id", dv_json_get_string(b, "id", ""));
        }
        json_object_set_int_member(mc, "updated_at", dv_store_now());
        if (!dv_store_update(store, &dv_table_catalog_machines, dv_json_get_string(m, "id", ""), mc,
                             error))
            return FALSE;
    }
    return TRUE;
}

static const DvJobStep dv_vm_migrate_steps[] = {
    { "prepare", 5 },
    { "migrate", 85 },
    { "save", 10 },
};

/* Makes the target's files when storage is copied (an overlay on the
 * target's own base for copy-top, else an empty file as large; their
 * paths added to @made, {old: new} to @paths) and migrates.  The
 * migration's last statistics, or NULL: the caller removes @made. */
static JsonObject *
dv_vm_migrate_move(DvEngine *engine, DvJob *job, JsonObject *vm, JsonObject *src, JsonObject *dst,
                   DvVirtHost *svh, DvVirtHost *tvh, GPtrArray *made, JsonObject *paths,
                   guint64 *ret_bandwidth, GError **error)
{
    JsonObject *params = dv_job_get_params(job);
    GCancellable *c = dv_job_get_cancellable(job);
    const char *uuid = dv_json_get_string(vm, "uuid", "");
    const char *storage = dv_json_get_string(params, "storage", "shared");
    JsonArray *disks = dv_json_get_array(params, "disks");
    gboolean copy = g_strcmp0(storage, "shared") != 0;
    const char *dest_uri = dv_json_get_string(dst, "migration_uri", NULL);
    g_autofree char *dest_xml = NULL;
    DvVirtMigrateParams mp = { 0 };
    DvVmMigrateProgress progress = { job, -1 };

    if (dest_uri == NULL)
        dest_uri = dv_json_get_string(dst, "uri", "");
    if (!dv_job_step(job, "prepare", error))
        return NULL;
    for (guint i = 0; copy && disks != NULL && i < json_array_get_length(disks); i++) {
        JsonObject *d = json_array_get_object_element(disks, i);
        g_autoptr(GError) missing = NULL;
        g_autoptr(JsonObject) sv =
            dv_virt_volume_lookup_by_path(svh, dv_json_get_string(d, "source", ""), c, &missing);
        g_autoptr(JsonObject) nv = NULL;
        /* A file put there behind libvirt's back: the pool learns it. */
        if (sv == NULL && g_error_matches(missing, DV_ERROR, DV_ERROR_NOT_FOUND) &&
            dv_virt_pool_refresh(svh, dv_json_get_string(d, "pool", ""), c, NULL)) {
            g_clear_error(&missing);
            sv = dv_virt_volume_lookup_by_path(svh, dv_json_get_string(d, "source", ""), c,
                                               &missing);
        }
        if (sv == NULL) {
            g_propagate_error(error, g_steal_pointer(&missing));
            return NULL;
        }
        if (g_strcmp0(storage, "copy-top") == 0 && dv_json_get_string(d, "base_path", NULL) != NULL)
            nv = dv_virt_volume_create_overlay(
                tvh, dv_json_get_string(d, "pool", ""), dv_json_get_string(d, "name", ""),
                dv_json_get_string(d, "base_path", ""),
                dv_json_get_string(d, "base_format", "qcow2"),
                (guint64)dv_json_get_int(sv, "capacity", 0), c, error);
        else
            nv = dv_virt_volume_create(tvh, dv_json_get_string(d, "pool", ""),
                                       dv_json_get_string(d, "name", ""),
                                       (guint64)dv_json_get_int(sv, "capacity", 0),
                                       dv_json_get_string(sv, "format", "raw"), c, error);
        if (nv == NULL)
            return NULL;
        g_ptr_array_add(made, g_strdup(dv_json_get_string(nv, "path", "")));
        json_object_set_string_member(paths, dv_json_get_string(d, "source", ""),
                                      dv_json_get_string(nv, "path", ""));
    }
    if (copy) {
        dest_xml = dv_virt_domain_get_migratable_xml(svh, uuid, paths, c, error);
        if (dest_xml == NULL)
            return NULL;
    }
    if (!dv_job_step(job, "migrate", error))
        return NULL;
    mp.storage = g_strcmp0(storage, "copy-top") == 0   ? DV_VIRT_MIGRATE_COPY_TOP
                 : g_strcmp0(storage, "copy-all") == 0 ? DV_VIRT_MIGRATE_COPY_ALL
                                                       : DV_VIRT_MIGRATE_SHARED;
    mp.dest_xml = dest_xml;
    mp.bandwidth_mib_s = dv_vm_migrate_bandwidth(params, src, dst);
    mp.allow_unsafe = dv_core(engine)->migration_allow_unsafe;
    mp.timeout_ms = (guint)MIN(dv_json_get_int(params, "timeout_s", 1800), 86400) * 1000;
    mp.dest_host = tvh;
    *ret_bandwidth = mp.bandwidth_mib_s;
    return dv_virt_domain_migrate(svh, uuid, dest_uri, &mp, dv_vm_migrate_on_progress, &progress, c,
                                  error);
}

static gboolean
dv_vm_migrate_run(DvEngine *engine, DvJob *job, JsonObject *vm, JsonObject *src, JsonObject *dst,
                  GError **error)
{
    JsonObject *params = dv_job_get_params(job);
    const char *uuid = dv_json_get_string(vm, "uuid", "");
    const char *storage = dv_json_get_string(params, "storage", "shared");
    JsonArray *disks = dv_json_get_array(params, "disks");
    g_autoptr(DvVirtHost) svh = NULL;
    g_autoptr(DvVirtHost) tvh = NULL;
    g_autoptr(GPtrArray) made = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(JsonObject) paths = json_object_new();
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(JsonObject) result = json_object_new();
    g_autoptr(JsonObject) domain = NULL;
    g_autoptr(JsonObject) moved = NULL;
    g_autoptr(GError) local = NULL;
    guint64 bandwidth = 0;
    gboolean copy = g_strcmp0(storage, "shared") != 0;
    DvVmMigrateSave save = { engine, vm, dv_json_get_string(dst, "id", ""), NULL, paths };

    svh = dv_core_virt_host(engine, src, error);
    if (svh == NULL)
        return FALSE;
    tvh = dv_core_virt_host(engine, dst, error);
    if (tvh == NULL)
        return FALSE;
    done = dv_vm_migrate_move(engine, job, vm, src, dst, svh, tvh, made, paths, &bandwidth, error);
    if (done == NULL) {
        /* Nothing of the VM stays on the target: the files made for it. */
        for (guint i = 0; i < made->len; i++) {
            g_autoptr(GError) rm = NULL;
            if (!dv_virt_volume_delete_by_path(tvh, made->pdata[i], NULL, &rm))
                g_warning("migrate: %s stays on %s: %s", (const char *)made->pdata[i],
                          dv_json_get_string(dst, "name", ""), rm->message);
        }
        return FALSE;
    }

    /* Moved: the source's copies go (never a base), the rows follow. */
    if (!dv_job_step(job, "save", error))
        return FALSE;
    for (guint i = 0; copy && disks != NULL && i < json_array_get_length(disks); i++) {
        JsonObject *d = json_array_get_object_element(disks, i);
        g_autoptr(GError) rm = NULL;
        if (!dv_virt_volume_delete_by_path(svh, dv_json_get_string(d, "source", ""), NULL, &rm))
            g_warning("migrate: VM %s's old disk %s stays on %s: %s",
                      dv_json_get_string(vm, "name", ""), dv_json_get_string(d, "source", ""),
                      dv_json_get_string(src, "name", ""), rm->message);
    }
    if (!dv_store_transaction(dv_core(engine)->store, dv_vm_migrate_save_txn, &save, error))
        return FALSE;
    moved = dv_store_get(dv_core(engine)->store, &dv_table_vms, dv_json_get_string(vm, "id", ""),
                         error);
    if (moved == NULL)
        return FALSE;
    domain = dv_virt_domain_get(tvh, uuid, NULL, &local);
    if (domain != NULL && !dv_core_vm_sync(engine, moved, domain, error))
        return FALSE;
    json_object_set_string_member(result, "id", dv_json_get_string(vm, "id", ""));
    json_object_set_string_member(result, "name", dv_json_get_string(vm, "name", ""));
    json_object_set_string_member(result, "from", dv_json_get_string(src, "name", ""));
    json_object_set_string_member(result, "to", dv_json_get_string(dst, "name", ""));
    json_object_set_string_member(result, "storage", storage);
    json_object_set_int_member(result, "bandwidth_mib_s", (gint64)bandwidth);
    json_object_set_object_member(result, "migration", g_steal_pointer(&done));
    json_object_set_object_member(result, "placement",
                                  json_object_ref(dv_json_get_object(params, "plan")));
    dv_job_set_result(job, result);
    return TRUE;
}

static gboolean
dv_vm_migrate_job(DvJob *job, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    JsonObject *params = dv_job_get_params(job);
    g_autoptr(JsonObject) vm = NULL;
    g_autoptr(JsonObject) src = NULL;
    g_autoptr(JsonObject) dst = NULL;
    const char *uuid;
    gboolean ok;

    dv_job_set_steps(job, dv_vm_migrate_steps, G_N_ELEMENTS(dv_vm_migrate_steps));
    vm = dv_store_get(dv_core(engine)->store, &dv_table_vms, dv_job_get_target_id(job), error);
    if (vm == NULL)
        return FALSE;
    uuid = dv_json_get_string(vm, "uuid", "");
    src = dv_store_get(dv_core(engine)->store, &dv_table_hosts,
                       dv_json_get_string(vm, "host_id", ""), error);
    dst = src != NULL ? dv_store_get(dv_core(engine)->store, &dv_table_hosts,
                                     dv_json_get_string(params, "to", ""), error)
                      : NULL;
    if (dst == NULL)
        return FALSE;
    if (g_strcmp0(dv_json_get_string(src, "id", ""), dv_json_get_string(dst, "id", "")) == 0) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "to", "to: VM %s is on %s already",
                           dv_json_get_string(vm, "name", ""), dv_json_get_string(dst, "name", ""));
        return FALSE;
    }
    if (!dv_core_migration_claim(engine, uuid, error))
        return FALSE;
    ok = dv_vm_migrate_run(engine, job, vm, src, dst, error);
    dv_core_migration_release(engine, uuid);
    return ok;
}

void
dv_engine_vm_migrate_register(DvEngine *engine)
{
    /* Not resumed: a migration cut by a crash has either finished (the
     * domain runs on the target) or been rolled back by libvirt; running
     * it again from its plan would copy onto the files it made. */
    DvJobKind kind = { "vm.migrate", dv_vm_migrate_job, engine, FALSE };
    dv_job_manager_register_kind(dv_core(engine)->jobs, &kind);
}
