/* Feature: inventory objects that live only in the database — host
 * groups, clusters, library shares, templates (dv-engine-objects.c).
 * Uses core and below only. */
#pragma once

#include "dv-core.h"

G_BEGIN_DECLS

/* Request bodies: the spec arrays this feature checks its bodies against, which
 * its op rows point at (DvOp.fields), so the contract has one source. */
extern const DvFieldSpec dv_host_group_fields[];
extern const DvFieldSpec dv_host_group_update_fields[];
extern const DvFieldSpec dv_cluster_fields[];
extern const DvFieldSpec dv_cluster_update_fields[];
extern const DvFieldSpec dv_library_share_fields[];
extern const DvFieldSpec dv_template_fields[];

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
