/* The engine's handle and object kinds: the few names every layer from
 * core up to the front ends shares.  No function here. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The engine as front ends hold it (src/engine/dv-engine.c defines it);
 * features reach its shared state through dv_core() (dv-core.h). */
typedef struct _DvEngine DvEngine;

#define DV_ENGINE_DEFAULT_MAX_CONNECTIONS 16
#define DV_ENGINE_DEFAULT_MAX_OPERATIONS 16

/* The default library share's name when none is given (install, first
 * start, and the share an upgrade checks for clashes). */
#define DV_DEFAULT_SHARE_NAME "default"

typedef enum {
    DV_KIND_HOST_GROUP,
    DV_KIND_CLUSTER,
    DV_KIND_HOST,
    DV_KIND_POOL,
    DV_KIND_VOLUME,
    DV_KIND_NETWORK,
    DV_KIND_LIBRARY_SHARE,
    DV_KIND_TEMPLATE,
    DV_KIND_VM,
    DV_KIND_JOB,
    DV_KIND_RUN_AS,
    DV_KIND_GUEST_OS_PROFILE,
    DV_KIND_SETTING,
    DV_KIND_CATALOG,
    DV_KIND_CATALOG_MACHINE,
    DV_KIND_LAST
} DvKind;

G_END_DECLS
