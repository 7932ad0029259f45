/* Feature: hosts (dv-hosts.c) — add, refresh, change, remove, and the
 * sync of what a host reports into the inventory.  Uses core and below
 * only; the facade (dv-engine.c) is its one caller. */
#pragma once

#include "dv-core.h"

G_BEGIN_DECLS

/* Request bodies: the spec arrays this feature checks its bodies against, which
 * its op rows point at (DvOp.fields), so the contract has one source. */
extern const DvFieldSpec dv_host_add_fields[];
extern const DvFieldSpec dv_host_update_fields[];

/* Job kinds and the host shaper. */
void dv_engine_hosts_register(DvEngine *engine);
/* The host rows of the operation table (dv-hosts-ops.c). */
void dv_engine_hosts_register_ops(DvEngine *engine);

JsonObject *dv_engine_host_add(DvEngine *engine, JsonObject *body, const DvActor *actor,
                               GError **error);
JsonObject *dv_engine_host_update(DvEngine *engine, JsonObject *host, JsonObject *body,
                                  const DvActor *actor, GError **error);
JsonObject *dv_engine_host_remove(DvEngine *engine, JsonObject *host, const DvActor *actor,
                                  GError **error);
JsonObject *dv_engine_host_refresh(DvEngine *engine, const char *host, const DvActor *actor,
                                   GError **error);

/* Writes the probe result of a host into the inventory (one transaction). */
gboolean dv_engine_host_sync(DvEngine *engine, const char *host_id, JsonObject *probe,
                             GError **error);

G_END_DECLS
