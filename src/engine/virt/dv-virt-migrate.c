#define G_LOG_DOMAIN "DvVirtMigrate"

/* Live migration of one running domain, peer to peer between two hosts'
 * libvirtd (docs/VIRT.md "Migration").
 *
 * Threads: the caller's thread begins two operations on the source host
 * (two slots, two connections: libvirt's RPC client carries one call per
 * connection here, and virDomainMigrateToURI3 holds its connection for the
 * whole migration).  A worker thread makes the one blocking migrate call on
 * the first; the caller's thread polls the job's statistics on the second,
 * reports them, and aborts the job on cancel or timeout.  The worker only
 * touches its own result fields and the first operation; the caller joins
 * it before it reads them or ends the operations. */

#include "dv-virt-private.h"

#include "dv-json.h"
#include "dv-validate.h"

#include <string.h>

typedef struct {
    /* Set before the thread starts, read-only afterwards. */
    DvVirtOp *op;
    virDomainPtr dom; /* borrowed from the caller */
    const char *dest_uri;
    virTypedParameterPtr params;
    int nparams;
    unsigned int flags;
    /* Written by the worker, read after join (or after done is seen). */
    gint done; /* atomic */
    gboolean ok;
    GError *error;
} DvMigrateRun;

static gpointer
dv_migrate_thread(gpointer data)
{
    DvMigrateRun *run = data;
    virError copy = { 0 };
    DvErrorCode code;
    const char *msg;

    if (virDomainMigrateToURI3(run->dom, run->dest_uri, run->params, (unsigned int)run->nparams,
                               run->flags) == 0) {
        run->ok = TRUE;
        g_atomic_int_set(&run->done, 1);
        return NULL;
    }
    /* libvirt's last error is per thread, and every call (even
     * virConnectIsAlive) resets it: copy it first, here. */
    virCopyLastError(&copy);
    msg = copy.message != NULL ? copy.message : "unknown libvirt error";
    if (virConnectIsAlive(run->op->conn) != 1) {
        /* The source went away: dv_virt_op_fail() drops its connection
         * from the pool. */
        (void)dv_virt_op_fail(run->op, &run->error, "cannot migrate domain to %s (%s)",
                              run->dest_uri, msg);
    } else {
        /* The source answers, so a transport error is the destination's
         * (or the peer-to-peer connection's): name the destination, not
         * the host whose URI the generic conversion would give. */
        code = dv_virt_error_code_from_virt(copy.code != 0 ? &copy : NULL, FALSE);
        if (code == DV_ERROR_UNAVAILABLE)
            g_set_error(&run->error, DV_ERROR, code,
                        "cannot migrate domain: the destination %s cannot be reached: %s",
                        run->dest_uri, msg);
        else
            g_set_error(&run->error, DV_ERROR, code, "cannot migrate domain to %s: %s",
                        run->dest_uri, msg);
    }
    virResetError(&copy);
    g_atomic_int_set(&run->done, 1);
    return NULL;
}

/* Every number in @params under its own name. */
static void
dv_migrate_stats_add(JsonObject *out, const virTypedParameter *params, int nparams)
{
    for (int i = 0; i < nparams; i++) {
        const virTypedParameter *p = &params[i];

        switch (p->type) {
        case VIR_TYPED_PARAM_INT:
            json_object_set_int_member(out, p->field, p->value.i);
            break;
        case VIR_TYPED_PARAM_UINT:
            json_object_set_int_member(out, p->field, p->value.ui);
            break;
        case VIR_TYPED_PARAM_LLONG:
            json_object_set_int_member(out, p->field, p->value.l);
            break;
        case VIR_TYPED_PARAM_ULLONG:
            /* Byte counts stay far below 2^63. */
            json_object_set_int_member(out, p->field,
                                       (gint64)MIN(p->value.ul, (guint64)G_MAXINT64));
            break;
        case VIR_TYPED_PARAM_DOUBLE:
            json_object_set_double_member(out, p->field, p->value.d);
            break;
        default:
            break;
        }
    }
}

/* The job's statistics now, or NULL when there is no job (not started yet,
 * or already over).  Failures are not fatal to the migration: NULL. */
static JsonObject *
dv_migrate_stats_get(virDomainPtr dom, unsigned int flags)
{
    virTypedParameterPtr params = NULL;
    int nparams = 0;
    int type = VIR_DOMAIN_JOB_NONE;
    JsonObject *out;
    gint64 total;
    gint64 remaining;

    if (virDomainGetJobStats(dom, &type, &params, &nparams, flags) < 0)
        return NULL;
    if (type == VIR_DOMAIN_JOB_NONE) {
        virTypedParamsFree(params, nparams);
        return NULL;
    }
    out = json_object_new();
    dv_migrate_stats_add(out, params, nparams);
    virTypedParamsFree(params, nparams);
    total = json_object_get_int_member_with_default(out, VIR_DOMAIN_JOB_DATA_TOTAL, 0);
    remaining = json_object_get_int_member_with_default(out, VIR_DOMAIN_JOB_DATA_REMAINING, 0);
    if (type == VIR_DOMAIN_JOB_COMPLETED)
        json_object_set_int_member(out, "percent", 100);
    else if (total > 0)
        json_object_set_int_member(out, "percent",
                                   CLAMP(100 - (remaining * 100 + total - 1) / total, 0, 99));
    else
        json_object_set_int_member(out, "percent", 0);
    return out;
}

static gboolean
dv_migrate_params_build(const DvVirtMigrateParams *mp, virTypedParameterPtr *ret_params,
                        int *ret_nparams, unsigned int *ret_flags, GError **error)
{
    virTypedParameterPtr params = NULL;
    int nparams = 0;
    int max = 0;
    unsigned int flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST |
                         VIR_MIGRATE_UNDEFINE_SOURCE | VIR_MIGRATE_AUTO_CONVERGE;
    gboolean ok = TRUE;

    switch (mp->storage) {
    case DV_VIRT_MIGRATE_SHARED:
        break;
    case DV_VIRT_MIGRATE_COPY_ALL:
        flags |= VIR_MIGRATE_NON_SHARED_DISK;
        break;
    case DV_VIRT_MIGRATE_COPY_TOP:
        flags |= VIR_MIGRATE_NON_SHARED_INC;
        break;
    default:
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                    "storage: must be shared, copy-all or copy-top");
        return FALSE;
    }
    if (mp->disks != NULL && mp->storage == DV_VIRT_MIGRATE_SHARED) {
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                    "disks: only a migration that copies storage takes a list of disks");
        return FALSE;
    }
    if (mp->allow_unsafe)
        flags |= VIR_MIGRATE_UNSAFE;

    for (guint i = 0; ok && mp->disks != NULL && mp->disks[i] != NULL; i++) {
        /* Disk targets: vda, sdb, hdc ... */
        if (!dv_validate_name("disks", mp->disks[i], error)) {
            ok = FALSE;
            break;
        }
        ok = virTypedParamsAddString(&params, &nparams, &max, VIR_MIGRATE_PARAM_MIGRATE_DISKS,
                                     mp->disks[i]) == 0;
    }
    if (ok && mp->dest_xml != NULL)
        ok = virTypedParamsAddString(&params, &nparams, &max, VIR_MIGRATE_PARAM_DEST_XML,
                                     mp->dest_xml) == 0;
    if (ok && (mp->persist_xml != NULL || mp->dest_xml != NULL))
        ok = virTypedParamsAddString(&params, &nparams, &max, VIR_MIGRATE_PARAM_PERSIST_XML,
                                     mp->persist_xml != NULL ? mp->persist_xml : mp->dest_xml) == 0;
    if (ok && mp->migrate_uri != NULL) {
        if (!g_str_has_prefix(mp->migrate_uri, "tcp://") || strlen(mp->migrate_uri) > 1024) {
            g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                        "migrate_uri: must be tcp://ADDRESS[:PORT], at most 1024 characters");
            ok = FALSE;
        } else {
            ok = virTypedParamsAddString(&params, &nparams, &max, VIR_MIGRATE_PARAM_URI,
                                         mp->migrate_uri) == 0;
        }
    }
    if (ok && mp->bandwidth_mib_s > 0)
        ok = virTypedParamsAddULLong(&params, &nparams, &max, VIR_MIGRATE_PARAM_BANDWIDTH,
                                     mp->bandwidth_mib_s) == 0;
    if (!ok) {
        if (error != NULL && *error == NULL)
            g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot build migration parameters");
        virTypedParamsFree(params, nparams);
        return FALSE;
    }
    *ret_params = params;
    *ret_nparams = nparams;
    *ret_flags = flags;
    return TRUE;
}

/* The destination's record of the finished job: downtime is measured there. */
static void
dv_migrate_add_completed(DvVirtHost *dest, const char *uuid, JsonObject *out)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(JsonObject) done = NULL;
    g_autoptr(GError) error = NULL;

    if (!dv_virt_op_begin(&op, dest, NULL, &error)) {
        g_debug("no completed statistics from %s: %s", dv_virt_host_get_id(dest), error->message);
        return;
    }
    dom = dv_virt_domain_lookup(&op, uuid, &error);
    if (dom == NULL) {
        g_debug("no completed statistics from %s: %s", dv_virt_host_get_id(dest), error->message);
        return;
    }
    done = dv_migrate_stats_get(dom, VIR_DOMAIN_JOB_STATS_COMPLETED);
    if (done == NULL)
        return;
    json_object_set_object_member(out, "completed", json_object_ref(done));
    if (json_object_has_member(done, VIR_DOMAIN_JOB_DOWNTIME))
        json_object_set_int_member(out, "downtime",
                                   json_object_get_int_member(done, VIR_DOMAIN_JOB_DOWNTIME));
}

JsonObject *
dv_virt_domain_migrate(DvVirtHost *host, const char *uuid, const char *dest_uri,
                       const DvVirtMigrateParams *params, DvVirtMigrateProgress progress,
                       gpointer user_data, GCancellable *cancellable, GError **error)
{
    static const DvVirtMigrateParams defaults = { 0 };
    const DvVirtMigrateParams *mp = params != NULL ? params : &defaults;
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_auto(DvVirtOp) watch = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(virDomain) watch_dom = NULL;
    g_autoptr(JsonObject) last = NULL;
    gint64 disk_max = 0;
    g_autoptr(GThread) thread = NULL;
    DvMigrateRun run = { 0 };
    guint interval_ms = mp->progress_interval_ms > 0 ? mp->progress_interval_ms
                                                     : DV_VIRT_MIGRATE_DEFAULT_INTERVAL_MS;
    guint timeout_ms = mp->timeout_ms > 0 ? mp->timeout_ms : DV_VIRT_MIGRATE_DEFAULT_TIMEOUT_MS;
    gint64 start = g_get_monotonic_time();
    gint64 deadline = start + (gint64)timeout_ms * 1000;
    gboolean aborted = FALSE;
    gboolean timed_out = FALSE;
    guint samples = 0;
    int state = VIR_DOMAIN_NOSTATE;
    JsonObject *out;

    g_return_val_if_fail(host != NULL, NULL);

    if (!dv_validate_id("uuid", uuid, error))
        return NULL;
    if (dest_uri == NULL || !dv_virt_check_uri(dv_virt_host_get_virt(host), dest_uri, error))
        return NULL;
    if (g_strcmp0(dest_uri, dv_virt_host_get_uri(host)) == 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                    "uri: the destination is the domain's own host");
        return NULL;
    }
    if (!dv_migrate_params_build(mp, &run.params, &run.nparams, &run.flags, error))
        return NULL;

    if (!dv_virt_op_begin(&op, host, cancellable, error) ||
        (dom = dv_virt_domain_lookup(&op, uuid, error)) == NULL) {
        virTypedParamsFree(run.params, run.nparams);
        return NULL;
    }
    if (virDomainGetState(dom, &state, NULL, 0) < 0) {
        virTypedParamsFree(run.params, run.nparams);
        return dv_virt_op_fail_null(&op, error, "cannot read the state of domain %s", uuid);
    }
    if (state != VIR_DOMAIN_RUNNING && state != VIR_DOMAIN_PAUSED) {
        virTypedParamsFree(run.params, run.nparams);
        g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT,
                    "state: domain %s is not running; only a running domain migrates live", uuid);
        return NULL;
    }
    /* The second connection, for statistics and abort, before anything
     * moves: without it there would be no way to cancel. */
    if (!dv_virt_op_begin(&watch, host, cancellable, error) ||
        (watch_dom = dv_virt_domain_lookup(&watch, uuid, error)) == NULL) {
        virTypedParamsFree(run.params, run.nparams);
        g_prefix_error(
            error, "migration needs a second connection to host %s: ", dv_virt_host_get_id(host));
        return NULL;
    }

    run.op = &op;
    run.dom = dom;
    run.dest_uri = dest_uri;
    thread = g_thread_new("dv-virt-migrate", dv_migrate_thread, &run);

    while (!g_atomic_int_get(&run.done)) {
        g_autoptr(JsonObject) now = NULL;
        gint64 wake = g_get_monotonic_time() + (gint64)interval_ms * 1000;

        /* Sleep in short steps: cancel must act within a fraction of a
         * second, not a whole interval. */
        while (!g_atomic_int_get(&run.done) && g_get_monotonic_time() < wake &&
               (aborted || !g_cancellable_is_cancelled(cancellable)))
            g_usleep(20 * 1000);
        if (g_atomic_int_get(&run.done))
            break;
        if (aborted || g_cancellable_is_cancelled(cancellable) ||
            g_get_monotonic_time() >= deadline) {
            if (!aborted)
                timed_out = !g_cancellable_is_cancelled(cancellable);
            aborted = TRUE;
            /* Asked again every interval until the worker returns: an abort
             * that came before QEMU's migration started is lost.  It fails
             * when the job just ended: the worker reports that. */
            if (virDomainAbortJob(watch_dom) < 0)
                g_debug("abort of the migration of %s: %s", uuid, virGetLastErrorMessage());
            continue;
        }
        now = dv_migrate_stats_get(watch_dom, 0);
        if (now == NULL)
            continue;
        samples++;
        /* Near the switch-over a sample may count no disk bytes (the
         * mirror is over): the job moved the most any sample saw. */
        disk_max =
            MAX(disk_max,
                json_object_get_int_member_with_default(now, VIR_DOMAIN_JOB_DISK_PROCESSED, 0));
        if (progress != NULL)
            progress(now, user_data);
        g_clear_pointer(&last, json_object_unref);
        last = g_steal_pointer(&now);
    }
    g_thread_join(g_steal_pointer(&thread));
    virTypedParamsFree(run.params, run.nparams);

    if (!run.ok) {
        if (timed_out) {
            g_clear_error(&run.error);
            g_set_error(error, DV_ERROR, DV_ERROR_TIMEOUT,
                        "migration of domain %s to %s did not finish within %u ms; aborted, "
                        "the domain runs on host %s",
                        uuid, dest_uri, timeout_ms, dv_virt_host_get_id(host));
        } else if (aborted) {
            g_clear_error(&run.error);
            g_set_error(error, DV_ERROR, DV_ERROR_CANCELLED,
                        "migration of domain %s to %s cancelled; the domain runs on host %s", uuid,
                        dest_uri, dv_virt_host_get_id(host));
        } else {
            g_propagate_error(error, g_steal_pointer(&run.error));
        }
        return NULL;
    }
    /* Cancelled too late: the migration had already finished. */
    g_clear_error(&run.error);

    out = last != NULL ? json_object_ref(last) : json_object_new();
    if (json_object_get_int_member_with_default(out, VIR_DOMAIN_JOB_DISK_PROCESSED, 0) < disk_max)
        json_object_set_int_member(out, VIR_DOMAIN_JOB_DISK_PROCESSED, disk_max);
    json_object_set_int_member(out, "percent", 100);
    json_object_set_int_member(out, "elapsed_ms", (g_get_monotonic_time() - start) / 1000);
    json_object_set_int_member(out, "samples", samples);
    if (mp->dest_host != NULL)
        dv_migrate_add_completed(mp->dest_host, uuid, out);
    return out;
}

/* Sets the new paths of @paths on the file disks of @devices; *@ret_found:
 * how many of @paths' keys were found. */
static void
dv_migrate_xml_disks(xmlNode *devices, JsonObject *paths, guint *ret_found)
{
    g_autoptr(GHashTable) found = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

    for (xmlNode *d = devices != NULL ? devices->children : NULL; d != NULL; d = d->next) {
        g_autofree char *path = NULL;
        xmlNode *source;
        const char *to;

        if (d->type != XML_ELEMENT_NODE || xmlStrcmp(d->name, BAD_CAST "disk") != 0)
            continue;
        source = dv_virt_xml_child(d, "source");
        path = source != NULL ? dv_virt_xml_prop(source, "file") : NULL;
        to = path != NULL ? dv_json_get_string(paths, path, NULL) : NULL;
        if (to == NULL)
            continue;
        xmlSetProp(source, BAD_CAST "file", BAD_CAST to);
        /* The destination reads its file's own chain (the whole copy has
         * none; the top's is its overlay's): the source's <backingStore>
         * does not describe it. */
        for (xmlNode *c = d->children; c != NULL;) {
            xmlNode *next = c->next;
            if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, BAD_CAST "backingStore") == 0) {
                xmlUnlinkNode(c);
                xmlFreeNode(c);
            }
            c = next;
        }
        g_hash_table_add(found, g_steal_pointer(&path));
    }
    *ret_found = g_hash_table_size(found);
}

char *
dv_virt_domain_get_migratable_xml(DvVirtHost *host, const char *uuid, JsonObject *disk_paths,
                                  GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(GList) members = NULL;
    xmlChar *out = NULL;
    int out_len = 0;
    guint changed = 0;
    char *xml;
    char *text;

    g_return_val_if_fail(host != NULL, NULL);
    if (disk_paths != NULL) {
        members = json_object_get_members(disk_paths);
        for (GList *l = members; l != NULL; l = l->next) {
            const char *to = dv_json_get_string(disk_paths, l->data, NULL);
            if (to == NULL || to[0] != '/' || strlen(to) > 4096 || !g_utf8_validate(to, -1, NULL)) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "disk_paths",
                                   "disk_paths: the new path of %s must be an absolute path "
                                   "of at most 4096 bytes",
                                   (const char *)l->data);
                return NULL;
            }
        }
    }
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return NULL;
    xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_MIGRATABLE | VIR_DOMAIN_XML_SECURE);
    if (xml == NULL)
        return dv_virt_op_fail_null(&op, error, "cannot read domain %s", uuid);
    if (disk_paths == NULL || members == NULL) {
        text = g_strdup(xml);
        free(xml);
        return text;
    }
    doc = dv_virt_xml_parse(xml, error);
    free(xml);
    if (doc == NULL)
        return NULL;
    dv_migrate_xml_disks(dv_virt_xml_child(xmlDocGetRootElement(doc), "devices"), disk_paths,
                         &changed);
    if (changed != g_list_length(members)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "disk_paths",
                           "disk_paths: %u of the %u paths are no file disk of domain %s",
                           g_list_length(members) - MIN(changed, g_list_length(members)),
                           g_list_length(members), uuid);
        return NULL;
    }
    xmlDocDumpMemory(doc, &out, &out_len);
    if (out == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot write the XML of domain %s", uuid);
        return NULL;
    }
    text = g_strndup((const char *)out, (gsize)out_len);
    xmlFree(out);
    return text;
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlBuffer, xmlBufferFree)

/* The <cpu> of a host's capabilities (the host CPU), as XML (owned), or
 * NULL when the driver does not say. */
static char *
dv_migrate_host_cpu_xml(DvVirtOp *op)
{
    g_autoptr(xmlDoc) doc = NULL;
    char *caps = virConnectGetCapabilities(op->conn);
    xmlNode *cpu;
    g_autoptr(xmlBuffer) buf = NULL;

    if (caps == NULL) {
        virResetLastError();
        return NULL;
    }
    doc = dv_virt_xml_parse(caps, NULL);
    free(caps);
    if (doc == NULL)
        return NULL;
    cpu = dv_virt_xml_child(dv_virt_xml_child(xmlDocGetRootElement(doc), "host"), "cpu");
    if (cpu == NULL)
        return NULL;
    buf = xmlBufferCreate();
    if (xmlNodeDump(buf, doc, cpu, 0, 0) < 0)
        return NULL;
    return g_strdup((const char *)xmlBufferContent(buf));
}

static const char *
dv_migrate_cpu_result(int r)
{
    switch (r) {
    case VIR_CPU_COMPARE_IDENTICAL:
        return "identical";
    case VIR_CPU_COMPARE_SUPERSET:
        return "superset";
    case VIR_CPU_COMPARE_INCOMPATIBLE:
        return "incompatible";
    default:
        return "not-compared";
    }
}

JsonObject *
dv_virt_domain_migrate_facts(DvVirtHost *host, const char *uuid, DvVirtHost *target,
                             GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_auto(DvVirtOp) top = DV_VIRT_OP_INIT;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(JsonObject) out = json_object_new();
    g_autoptr(JsonObject) cpu_out = json_object_new();
    g_autofree char *mode = NULL;
    g_autofree char *model = NULL;
    g_autofree char *compare_xml = NULL;
    g_autofree char *virttype = NULL;
    g_autofree char *arch = NULL;
    g_autofree char *machine = NULL;
    g_autofree char *emulator = NULL;
    virDomainInfo info;
    xmlNode *devices;
    xmlNode *cpu;
    guint hostdevs = 0;
    int snaps;
    unsigned long long free_bytes;
    char *xml;

    g_return_val_if_fail(host != NULL && target != NULL, NULL);
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;
    dom = dv_virt_domain_lookup(&op, uuid, error);
    if (dom == NULL)
        return NULL;
    if (virDomainGetInfo(dom, &info) < 0)
        return dv_virt_op_fail_null(&op, error, "cannot read domain %s", uuid);
    json_object_set_boolean_member(
        out, "running", info.state == VIR_DOMAIN_RUNNING || info.state == VIR_DOMAIN_PAUSED);
    json_object_set_int_member(out, "memory_mib", (gint64)(info.maxMem / 1024));
    snaps = virDomainSnapshotNum(dom, 0);
    json_object_set_int_member(out, "snapshots", MAX(snaps, 0));
    if (snaps < 0)
        virResetLastError();
    xml = virDomainGetXMLDesc(dom, 0);
    if (xml == NULL)
        return dv_virt_op_fail_null(&op, error, "cannot read domain %s", uuid);
    doc = dv_virt_xml_parse(xml, error);
    free(xml);
    if (doc == NULL)
        return NULL;
    devices = dv_virt_xml_child(xmlDocGetRootElement(doc), "devices");
    for (xmlNode *n = devices != NULL ? devices->children : NULL; n != NULL; n = n->next)
        if (n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, BAD_CAST "hostdev") == 0)
            hostdevs++;
    json_object_set_int_member(out, "hostdevs", hostdevs);
    /* Compared as this domain runs: its virtualization type (TCG's
     * "qemu" offers other models than KVM), emulator, arch and machine. */
    virttype = dv_virt_xml_prop(xmlDocGetRootElement(doc), "type");
    {
        xmlNode *ostype =
            dv_virt_xml_child(dv_virt_xml_child(xmlDocGetRootElement(doc), "os"), "type");
        arch = dv_virt_xml_prop(ostype, "arch");
        machine = dv_virt_xml_prop(ostype, "machine");
        emulator = dv_virt_xml_child_text(devices, "emulator");
    }
    cpu = dv_virt_xml_child(xmlDocGetRootElement(doc), "cpu");
    if (cpu != NULL) {
        mode = dv_virt_xml_prop(cpu, "mode");
        model = dv_virt_xml_child_text(cpu, "model");
        if (g_strcmp0(mode, "host-passthrough") == 0) {
            /* The guest sees the source's very CPU: the target's must
             * offer all of it. */
            compare_xml = dv_migrate_host_cpu_xml(&op);
        } else if (model != NULL) {
            g_autoptr(xmlBuffer) buf = xmlBufferCreate();
            if (xmlNodeDump(buf, doc, cpu, 0, 0) >= 0)
                compare_xml = g_strdup((const char *)xmlBufferContent(buf));
        }
    }
    json_object_set_string_member(cpu_out, "mode", mode != NULL ? mode : "none");
    if (model != NULL)
        json_object_set_string_member(cpu_out, "model", model);
    dv_virt_op_end(&op);

    if (!dv_virt_op_begin(&top, target, cancellable, error))
        return NULL;
    free_bytes = virNodeGetFreeMemory(top.conn);
    if (free_bytes == 0)
        virResetLastError();
    json_object_set_int_member(out, "target_free_memory_mib", (gint64)(free_bytes >> 20));
    if (compare_xml != NULL) {
        int r = g_strcmp0(mode, "host-passthrough") == 0
                    ? virConnectCompareCPU(top.conn, compare_xml, 0)
                    : virConnectCompareHypervisorCPU(top.conn, emulator, arch, machine, virttype,
                                                     compare_xml, 0);
        if (r < 0) {
            virErrorPtr e = virGetLastError();
            json_object_set_string_member(
                cpu_out, "detail",
                e != NULL && e->message != NULL ? e->message : "the target cannot compare");
            virResetLastError();
        }
        json_object_set_string_member(cpu_out, "result", dv_migrate_cpu_result(r));
    } else {
        json_object_set_string_member(cpu_out, "result", "not-compared");
        json_object_set_string_member(cpu_out, "detail",
                                      "no CPU model asked: QEMU's default model, which every "
                                      "host of one hypervisor version offers");
    }
    json_object_set_object_member(out, "cpu", g_steal_pointer(&cpu_out));
    return g_steal_pointer(&out);
}
