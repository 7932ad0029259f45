/* Feature: inventory objects that live only in the database — host
 * groups, clusters, library shares, templates (dv-engine-objects.c).
 * Uses core and below only. */
#pragma once

#include "dv-core.h"

G_BEGIN_DECLS

void dv_engine_objects_register(DvEngine *engine);

JsonObject *dv_engine_object_create(DvEngine *engine, DvKind kind, JsonObject *body,
                                    const DvActor *actor, GError **error);
JsonObject *dv_engine_object_update(DvEngine *engine, DvKind kind, JsonObject *obj,
                                    JsonObject *body, const DvActor *actor, GError **error);
JsonObject *dv_engine_object_delete(DvEngine *engine, DvKind kind, JsonObject *obj,
                                    const DvActor *actor, GError **error);

/* Default library share made on first start. */
gboolean dv_engine_ensure_default_share(DvEngine *engine, GError **error);

G_END_DECLS
