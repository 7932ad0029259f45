#define G_LOG_DOMAIN "DvCatalogFreeze"

/* A running master's disk, frozen for the time its base is copied
 * (docs/CATALOGS.md): an external disk-only snapshot puts the layer
 * "<disk>-drover-freeze.qcow2" on top, the copy reads the frozen file, and
 * an active block commit merges the layer back and deletes it.  A layer
 * left by a crash (the master's disk is such a layer) is merged back
 * first. */

#include "dv-catalogs-private.h"

#include <string.h>

#define DV_CATALOG_FREEZE_SUFFIX "-drover-freeze.qcow2"
#define DV_CATALOG_FREEZE_MERGE_MS (10 * 60 * 1000)

struct _DvCatalogFreeze {
    DvVirtHost *vh;
    char *uuid;
    char *target;
    gboolean merged;
};

void
dv_catalog_freeze_free(DvCatalogFreeze *f)
{
    if (f == NULL)
        return;
    if (!f->merged) {
        /* A failed copy: the master goes back to its own disk anyway. */
        g_autoptr(GError) local = NULL;
        if (!dv_virt_domain_commit_active(f->vh, f->uuid, f->target, DV_CATALOG_FREEZE_MERGE_MS, NULL, &local))
            g_warning("master %s stays on its freeze layer: %s", f->uuid, local->message);
    }
    dv_virt_host_unref(f->vh);
    g_free(f->uuid);
    g_free(f->target);
    g_free(f);
}

DvCatalogFreeze *
dv_catalog_freeze(DvEngine *engine, DvVirtHost *vh, JsonObject *master, JsonObject *dom, JsonObject *disk,
                  GCancellable *c, GError **error)
{
    const char *uuid = dv_json_get_string(master, "uuid", "");
    const char *target = dv_json_get_string(disk, "target", NULL);
    const char *source = dv_json_get_string(disk, "source", "");
    g_autofree char *layer = NULL;
    DvCatalogFreeze *f;

    if (g_strcmp0(dv_json_get_string(dom, "state", ""), "running") != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT,
                    "master VM %s is %s; its disk can be frozen only while it runs or is shut off",
                    dv_json_get_string(master, "name", ""), dv_json_get_string(dom, "state", ""));
        return NULL;
    }
    if (target == NULL || (g_strcmp0(dv_json_get_string(disk, "format", ""), "qcow2") != 0 &&
                           g_strcmp0(dv_json_get_string(disk, "format", ""), "raw") != 0)) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED,
                    "master VM %s: its disk is no file image QEMU can put a layer on", dv_json_get_string(master, "name", ""));
        return NULL;
    }
    if (g_str_has_suffix(source, DV_CATALOG_FREEZE_SUFFIX)) {
        /* Left by an interrupted job: merge it back, then freeze anew. */
        if (!dv_virt_domain_commit_active(vh, uuid, target, DV_CATALOG_FREEZE_MERGE_MS, c, error)) {
            g_prefix_error(error, "master VM %s, an earlier freeze layer: ", dv_json_get_string(master, "name", ""));
            return NULL;
        }
        layer = g_strdup(source);
    } else {
        layer = g_strconcat(source, DV_CATALOG_FREEZE_SUFFIX, NULL);
    }
    if (!dv_virt_domain_freeze_disk(vh, uuid, target, layer, c, error)) {
        g_prefix_error(error, "master VM %s: ", dv_json_get_string(master, "name", ""));
        return NULL;
    }
    f = g_new0(DvCatalogFreeze, 1);
    f->vh = dv_virt_host_ref(vh);
    f->uuid = g_strdup(uuid);
    f->target = g_strdup(target);
    return f;
}

gboolean
dv_catalog_freeze_end(DvCatalogFreeze *f, GCancellable *c, GError **error)
{
    if (f->merged)
        return TRUE;
    if (!dv_virt_domain_commit_active(f->vh, f->uuid, f->target, DV_CATALOG_FREEZE_MERGE_MS, c, error)) {
        g_prefix_error(error, "merging the master's disk back: ");
        return FALSE;
    }
    f->merged = TRUE;
    return TRUE;
}
