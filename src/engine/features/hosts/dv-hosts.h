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

/* --- networks and pools (dv-hosts-netpool.c; docs/API.md) -----------------
 *
 * @what is "network" or "pool" (the op row's kind).  Create: the body of
 * dv_network_create_fields / dv_pool_create_fields, checked, a name in use
 * on the host 409 naming "name", a network address overlapping another
 * network of the host 400 naming "address"; a job then defines (builds a
 * pool when its type needs it), starts, marks autostart and reads the
 * host again.  @action: "start", "stop", "change" ({autostart}) or
 * "delete" (409 naming the VMs whose NICs or disks use it). */
extern const DvFieldSpec dv_network_create_fields[];
extern const DvFieldSpec dv_pool_create_fields[];
extern const DvFieldSpec dv_netpool_change_fields[];
JsonObject *dv_engine_netpool_create(DvEngine *engine, const char *what, JsonObject *body,
                                     const DvActor *actor, GError **error);
JsonObject *dv_engine_netpool_action(DvEngine *engine, const char *what, const char *ref,
                                     const char *action, JsonObject *body, const DvActor *actor,
                                     GError **error);
void dv_engine_netpool_register(DvEngine *engine);
void dv_engine_netpool_register_ops(DvEngine *engine);

/* --- watching hosts (dv-hosts-watch.c; docs/VIRT.md, "Events") --------------
 *
 * droverd watches every host of the inventory: one event connection per
 * host, events written to the database as they come, a full sync every
 * @resync_ms (0: DV_HOSTS_WATCH_RESYNC_MS) and whenever a lost connection is
 * regained, a lost host marked unreachable and tried again every @retry_ms
 * (0: DV_HOSTS_WATCH_RETRY_MS).  Hosts added or removed later are followed
 * by the add and remove jobs.  Stop before the engine's store and virt go. */
#define DV_HOSTS_WATCH_RESYNC_MS 60000
#define DV_HOSTS_WATCH_RETRY_MS 5000
gboolean dv_engine_hosts_watch_start(DvEngine *engine, guint resync_ms, guint retry_ms,
                                     GError **error);
void dv_engine_hosts_watch_stop(DvEngine *engine);
/* No-ops when hosts are not watched. */
void dv_engine_hosts_watch_host(DvEngine *engine, const char *host_id);
void dv_engine_hosts_watch_forget(DvEngine *engine, const char *host_id);
/* {hosts, connected, events, applied_rounds, last_delay_us, max_delay_us}:
 * the delays run from libvirt delivering the oldest event of a round to
 * its write being committed. */
JsonObject *dv_engine_hosts_watch_get_stats(DvEngine *engine);

G_END_DECLS
