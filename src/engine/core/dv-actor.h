/* DvActor: who asks the engine for something.  Every engine entry point
 * that changes something takes one (never a bare user name), and every
 * job it submits records the actor's name as created_by.
 *
 * The daemon builds one per request from the session
 * (dv_actor_new_from_user() on dv_auth_check_token()'s result);
 * drover-setup and the tests use a named actor.  An actor is immutable
 * once handed to the engine and may be read from any thread.
 *
 * authz: room for the resolved authorization context (the user's
 * bindings, scopes and privileges as src/engine/auth/ resolves them).
 * Core does not look inside: it is an opaque pointer owned by the actor
 * and released with the destroy notify given to dv_actor_set_authz().
 * NULL means "not resolved" (today: every actor, as every user is an
 * administrator until the authorizer lands).
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef struct {
    char *id;                     /* users.id; NULL for an actor that is no stored user */
    char *name;                   /* the user's name, recorded as a job's created_by */
    char *role;                   /* the users.role column as stored; NULL when none */
    gpointer authz;               /* resolved authorization context, or NULL */
    GDestroyNotify authz_destroy; /* frees @authz (may be NULL) */
} DvActor;

/* An actor from its parts (copied; @id and @role may be NULL).  Owned. */
DvActor *dv_actor_new(const char *id, const char *name, const char *role);
/* An actor from a user row {id, name, role} as dv_auth_check_token()
 * returns it.  Owned. */
DvActor *dv_actor_new_from_user(JsonObject *user);
void dv_actor_free(DvActor *actor);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvActor, dv_actor_free)

/* Hands @authz to @actor (freed with @destroy when the actor is, or when
 * replaced). */
void dv_actor_set_authz(DvActor *actor, gpointer authz, GDestroyNotify destroy);

/* The name jobs record (borrowed): "?" for a NULL actor or name, as the
 * daemon recorded a session without a name before. */
const char *dv_actor_get_name(const DvActor *actor);

/* An actor known by name only, on the caller's stack (C99 compound
 * literal, alive to the end of the enclosing block): drover-setup's
 * internal work and the tests.  Never freed. */
#define DV_ACTOR_NAMED(n) (&(const DvActor){ .name = (char *)(n) })

G_END_DECLS
