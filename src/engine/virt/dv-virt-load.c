#define G_LOG_DOMAIN "DvVirtLoad"

/* What a host has to spare now, read live for placement decisions: free
 * memory, how busy its CPUs are, and a pool's free space. */

#include "dv-virt-private.h"

#include "dv-validate.h"

#include <string.h>

/* Busy and total CPU time of the whole host (nanoseconds), or FALSE when
 * the driver does not say (libvirt's test driver). */
static gboolean
dv_virt_cpu_times(virConnectPtr conn, guint64 *ret_busy, guint64 *ret_total)
{
    int n = 0;
    g_autofree virNodeCPUStatsPtr params = NULL;
    guint64 busy = 0, total = 0;

    if (virNodeGetCPUStats(conn, VIR_NODE_CPU_STATS_ALL_CPUS, NULL, &n, 0) < 0 || n <= 0) {
        virResetLastError();
        return FALSE;
    }
    params = g_new0(virNodeCPUStats, n);
    if (virNodeGetCPUStats(conn, VIR_NODE_CPU_STATS_ALL_CPUS, params, &n, 0) < 0) {
        virResetLastError();
        return FALSE;
    }
    for (int i = 0; i < n; i++) {
        if (strcmp(params[i].field, VIR_NODE_CPU_STATS_IDLE) == 0 ||
            strcmp(params[i].field, VIR_NODE_CPU_STATS_IOWAIT) == 0)
            total += params[i].value;
        else if (strcmp(params[i].field, VIR_NODE_CPU_STATS_KERNEL) == 0 ||
                 strcmp(params[i].field, VIR_NODE_CPU_STATS_USER) == 0) {
            busy += params[i].value;
            total += params[i].value;
        }
    }
    *ret_busy = busy;
    *ret_total = total;
    return total > 0;
}

JsonObject *
dv_virt_host_get_load(DvVirtHost *host, guint sample_ms, GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    virNodeInfo info;
    unsigned long long free_bytes;
    guint64 b0 = 0, t0 = 0, b1 = 0, t1 = 0;
    gboolean estimated = FALSE;
    JsonObject *out;

    g_return_val_if_fail(host != NULL, NULL);
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return NULL;
    if (virNodeGetInfo(op.conn, &info) < 0)
        return dv_virt_op_fail_null(&op, error, "cannot read host %s", dv_virt_host_get_id(host));
    free_bytes = virNodeGetFreeMemory(op.conn);
    if (free_bytes == 0) {
        /* Drivers without it (libvirt's test driver) may report per NUMA
         * cell; failing that, the total stands in (flagged). */
        unsigned long long cells[64];
        int n = virNodeGetCellsFreeMemory(op.conn, cells, 0, G_N_ELEMENTS(cells));
        virResetLastError();
        for (int i = 0; i < n; i++)
            free_bytes += cells[i];
        estimated = free_bytes == 0;
        if (estimated)
            free_bytes = (unsigned long long)info.memory * 1024;
    }
    out = json_object_new();
    json_object_set_boolean_member(out, "free_memory_estimated", estimated);
    json_object_set_int_member(out, "memory_mib", (gint64)(info.memory / 1024));
    json_object_set_int_member(out, "free_memory_mib", (gint64)(free_bytes >> 20));
    json_object_set_int_member(out, "cpus", info.cpus);
    /* Two samples @sample_ms apart: the share of CPU time spent busy. */
    if (dv_virt_cpu_times(op.conn, &b0, &t0)) {
        g_usleep((gulong)sample_ms * 1000);
        if (dv_virt_cpu_times(op.conn, &b1, &t1) && t1 > t0 && b1 >= b0)
            json_object_set_double_member(out, "cpu_busy", (double)(b1 - b0) / (double)(t1 - t0));
    }
    if (!json_object_has_member(out, "cpu_busy"))
        json_object_set_null_member(out, "cpu_busy");
    return out;
}

JsonObject *
dv_virt_pool_get_info(DvVirtHost *host, const char *pool, GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    g_autoptr(virStoragePool) p = NULL;
    virStoragePoolInfo info;
    JsonObject *out;

    g_return_val_if_fail(host != NULL, NULL);
    p = dv_virt_pool_open(&op, host, pool, cancellable, error);
    if (p == NULL)
        return NULL;
    if (virStoragePoolGetInfo(p, &info) < 0)
        return dv_virt_op_fail_null(&op, error, "cannot read storage pool %s", pool);
    out = json_object_new();
    json_object_set_boolean_member(out, "active", info.state == VIR_STORAGE_POOL_RUNNING);
    json_object_set_int_member(out, "capacity", (gint64)info.capacity);
    json_object_set_int_member(out, "allocation", (gint64)info.allocation);
    json_object_set_int_member(out, "available", (gint64)info.available);
    return out;
}

gboolean
dv_virt_host_ping(DvVirtHost *host, GCancellable *cancellable, GError **error)
{
    g_auto(DvVirtOp) op = DV_VIRT_OP_INIT;
    unsigned long version = 0;

    g_return_val_if_fail(host != NULL, FALSE);
    if (!dv_virt_op_begin(&op, host, cancellable, error))
        return FALSE;
    if (virConnectGetLibVersion(op.conn, &version) < 0)
        return dv_virt_op_fail(&op, error, "host %s does not answer", dv_virt_host_get_id(host));
    return TRUE;
}
