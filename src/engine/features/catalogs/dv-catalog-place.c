#define G_LOG_DOMAIN "DvCatalogPlace"

/* Placement of a catalog's machines on its target hosts (docs/CATALOGS.md):
 * each host weighs its free memory, less a share for how busy its CPUs
 * are, and its pool's free space caps how many machines it takes.  The
 * machines are dealt out one by one to the host whose share is smallest
 * for its weight, so they spread in proportion (equal hosts take turns). */

#include "dv-catalogs-private.h"

/* A fully busy host keeps a quarter of its weight: load moves, memory
 * stays taken. */
#define DV_CATALOG_PLACE_CPU_FACTOR 0.75

gint64 *
dv_catalog_place(const DvCatalogPlaceHost *hosts, guint n_hosts, gint64 count, gint64 per_machine_bytes,
                 guint *ret_order, GError **error)
{
    g_autofree gint64 *counts = g_new0(gint64, n_hosts > 0 ? n_hosts : 1);
    g_autofree double *weight = g_new0(double, n_hosts > 0 ? n_hosts : 1);
    g_autofree gint64 *cap = g_new0(gint64, n_hosts > 0 ? n_hosts : 1);
    gint64 room = 0;

    g_return_val_if_fail(n_hosts > 0 && count > 0 && per_machine_bytes > 0, NULL);
    for (guint h = 0; h < n_hosts; h++) {
        double busy = hosts[h].cpu_busy < 0 ? 0 : MIN(hosts[h].cpu_busy, 1.0);
        weight[h] = MAX((double)hosts[h].free_memory_mib, 1.0) * (1.0 - DV_CATALOG_PLACE_CPU_FACTOR * busy);
        cap[h] = hosts[h].pool_available > 0 ? hosts[h].pool_available / per_machine_bytes : 0;
        room += cap[h];
    }
    if (room < count) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "pool",
                           "pool: the target hosts' pools have room for %" G_GINT64_FORMAT " of the %" G_GINT64_FORMAT
                           " machines (after the base, %" G_GINT64_FORMAT " MiB each)",
                           room, count, (per_machine_bytes + (1 << 20) - 1) >> 20);
        return NULL;
    }
    for (gint64 i = 0; i < count; i++) {
        gint best = -1;
        double best_share = 0;
        for (guint h = 0; h < n_hosts; h++) {
            double share;
            if (counts[h] >= cap[h])
                continue;
            share = (double)(counts[h] + 1) / weight[h];
            if (best < 0 || share < best_share) {
                best = (gint)h;
                best_share = share;
            }
        }
        counts[best]++;
        if (ret_order != NULL)
            ret_order[i] = (guint)best;
    }
    return g_steal_pointer(&counts);
}
