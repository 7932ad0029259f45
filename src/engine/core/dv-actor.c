#define G_LOG_DOMAIN "DvActor"

#include "dv-actor.h"

#include "dv-json.h"

DvActor *
dv_actor_new(const char *id, const char *name, const char *role)
{
    DvActor *actor = g_new0(DvActor, 1);

    actor->id = g_strdup(id);
    actor->name = g_strdup(name);
    actor->role = g_strdup(role);
    return actor;
}

DvActor *
dv_actor_new_from_user(JsonObject *user)
{
    g_return_val_if_fail(user != NULL, NULL);
    return dv_actor_new(dv_json_get_string(user, "id", NULL),
                        dv_json_get_string(user, "name", NULL),
                        dv_json_get_string(user, "role", NULL));
}

void
dv_actor_set_authz(DvActor *actor, gpointer authz, GDestroyNotify destroy)
{
    g_return_if_fail(actor != NULL);
    if (actor->authz != NULL && actor->authz_destroy != NULL)
        actor->authz_destroy(actor->authz);
    actor->authz = authz;
    actor->authz_destroy = destroy;
}

const char *
dv_actor_get_name(const DvActor *actor)
{
    if (actor == NULL || actor->name == NULL)
        return "?";
    return actor->name;
}

void
dv_actor_free(DvActor *actor)
{
    if (actor == NULL)
        return;
    dv_actor_set_authz(actor, NULL, NULL);
    g_free(actor->id);
    g_free(actor->name);
    g_free(actor->role);
    g_free(actor);
}
