/* Feature: objects holding secrets — Run As accounts, guest OS profiles,
 * encrypted settings (dv-secret-objects.c).  Uses core and below only;
 * a host's Run As credentials are opened by core
 * (dv_core_run_as_credentials()). */
#pragma once

#include "dv-core.h"

G_BEGIN_DECLS

/* Request bodies: the spec arrays this feature checks its bodies against, which
 * its op rows point at (DvOp.fields), so the contract has one source. */
extern const DvFieldSpec dv_run_as_fields[];
extern const DvFieldSpec dv_run_as_update_fields[];
extern const DvFieldSpec dv_guest_os_profile_fields[];
extern const DvFieldSpec dv_guest_os_profile_update_fields[];
extern const DvFieldSpec dv_setting_fields[];
extern const DvFieldSpec dv_setting_update_fields[];

/* Job kinds and the shaper of the three kinds. */
void dv_engine_secret_objects_register(DvEngine *engine);
JsonObject *dv_engine_secret_object_create(DvEngine *engine, DvKind kind, JsonObject *body,
                                           const DvActor *actor, GError **error);
JsonObject *dv_engine_secret_object_update(DvEngine *engine, DvKind kind, JsonObject *obj,
                                           JsonObject *body, const DvActor *actor, GError **error);
JsonObject *dv_engine_secret_object_delete(DvEngine *engine, DvKind kind, JsonObject *obj,
                                           const DvActor *actor, GError **error);

G_END_DECLS
