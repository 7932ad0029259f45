#define G_LOG_DOMAIN "DvAuth"

#include "dv-auth.h"
#include "dv-error.h"
#include "dv-validate.h"
#include "dv-json.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DV_AUTH_ARGON2_OPSLIMIT 2
#define DV_AUTH_ARGON2_MEMLIMIT (19 * 1024 * 1024)

typedef struct {
    char *user_id;
    char *name;
    char *role;
    gint64 expires_at;
} DvAuthCached;

struct _DvAuth {
    DvStore *store;
    GMutex lock;
    GHashTable *cache; /* token hash (hex) -> DvAuthCached */
    char *dummy_hash;  /* verified against for unknown users */
};

static void
dv_auth_cached_free(gpointer data)
{
    DvAuthCached *c = data;
    g_free(c->user_id);
    g_free(c->name);
    g_free(c->role);
    g_free(c);
}

static char *
dv_auth_hash_password(const DvSecret *password, GError **error)
{
    char out[crypto_pwhash_STRBYTES];

    /* Argon2id with 19 MiB and 2 passes (OWASP's recommended minimum):
     * libsodium's "interactive" 64 MiB would make every login, and the
     * server's peak memory, three times larger for little gain.  The
     * parameters are stored in each hash, so they can be raised later
     * without breaking existing passwords. */
    if (crypto_pwhash_str_alg(out, dv_secret_get_string(password), dv_secret_get_len(password),
                              DV_AUTH_ARGON2_OPSLIMIT, DV_AUTH_ARGON2_MEMLIMIT,
                              crypto_pwhash_ALG_ARGON2ID13) != 0) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_INTERNAL,
                            "cannot hash password: out of memory");
        return NULL;
    }
    return g_strdup(out);
}

static char *
dv_auth_token_hash(const char *token)
{
    guchar digest[crypto_generichash_BYTES];
    char hex[crypto_generichash_BYTES * 2 + 1];

    crypto_generichash(digest, sizeof digest, (const guchar *)token, strlen(token), NULL, 0);
    sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
    return g_strdup(hex);
}

DvAuth *
dv_auth_new(DvStore *store)
{
    DvAuth *auth = g_new0(DvAuth, 1);
    g_autoptr(DvSecret) dummy = NULL;

    dv_secret_init_library();
    auth->store = store;
    g_mutex_init(&auth->lock);
    auth->cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, dv_auth_cached_free);
    dummy = dv_secret_new_random(24);
    {
        char hex[49];
        sodium_bin2hex(hex, sizeof hex, dv_secret_get_data(dummy), 24);
        g_autoptr(DvSecret) text = dv_secret_new_from_string(hex);
        sodium_memzero(hex, sizeof hex);
        auth->dummy_hash = dv_auth_hash_password(text, NULL);
    }
    return auth;
}

void
dv_auth_free(DvAuth *auth)
{
    if (auth == NULL)
        return;
    g_hash_table_unref(auth->cache);
    g_mutex_clear(&auth->lock);
    g_free(auth->dummy_hash);
    g_free(auth);
}

static const char *const dv_auth_roles[] = {
    "administrator", "delegated-administrator", "read-only", "tenant", NULL,
};

JsonObject *
dv_auth_user_add(DvAuth *auth, const char *name, const DvSecret *password, const char *role,
                 GError **error)
{
    g_autoptr(JsonObject) rec = json_object_new();
    g_autofree char *id = g_uuid_string_random();
    g_autofree char *hash = NULL;

    if (!dv_validate_name("name", name, error))
        return NULL;
    if (role == NULL || !g_strv_contains(dv_auth_roles, role)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "role",
                           "role: must be administrator, delegated-administrator, read-only or tenant");
        return NULL;
    }
    if (dv_secret_get_len(password) < 8 || dv_secret_get_len(password) > DV_AUTH_PASSWORD_MAX) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "password",
                           "password: must be 8-%d bytes", DV_AUTH_PASSWORD_MAX);
        return NULL;
    }
    hash = dv_auth_hash_password(password, error);
    if (hash == NULL)
        return NULL;
    json_object_set_string_member(rec, "id", id);
    json_object_set_string_member(rec, "name", name);
    json_object_set_string_member(rec, "password_hash", hash);
    json_object_set_string_member(rec, "role", role);
    json_object_set_int_member(rec, "created_at", dv_store_now());
    if (!dv_store_insert(auth->store, &dv_table_users, rec, error))
        return NULL;
    json_object_remove_member(rec, "password_hash");
    return g_steal_pointer(&rec);
}

gboolean
dv_auth_ensure_admin(DvAuth *auth, const char *state_dir, gboolean *ret_created, GError **error)
{
    g_autoptr(DvSecret) raw = NULL;
    g_autoptr(DvSecret) password = NULL;
    g_autoptr(JsonObject) user = NULL;
    g_autofree char *path = NULL;
    char text[64];
    gint64 n;
    int fd;

    n = dv_store_count(auth->store, &dv_table_users, NULL, 0, error);
    if (n < 0)
        return FALSE;
    if (n > 0) {
        if (ret_created != NULL)
            *ret_created = FALSE;
        return TRUE;
    }
    raw = dv_secret_new_random(18);
    sodium_bin2base64(text, sizeof text, dv_secret_get_data(raw), 18,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    password = dv_secret_new_from_string(text);
    sodium_memzero(text, sizeof text);

    path = g_build_filename(state_dir, "initial-admin-password", NULL);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot write %s: %s", path,
                    g_strerror(errno));
        return FALSE;
    }
    if (fchmod(fd, 0600) != 0 ||
        write(fd, dv_secret_get_data(password), dv_secret_get_len(password)) !=
            (gssize)dv_secret_get_len(password) ||
        write(fd, "\n", 1) != 1) {
        int saved = errno;
        close(fd);
        unlink(path);
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot write %s: %s", path,
                    g_strerror(saved));
        return FALSE;
    }
    close(fd);
    user = dv_auth_user_add(auth, "admin", password, "administrator", error);
    if (user == NULL) {
        unlink(path);
        return FALSE;
    }
    if (ret_created != NULL)
        *ret_created = TRUE;
    return TRUE;
}

char *
dv_auth_login(DvAuth *auth, const char *user, const DvSecret *password, JsonObject **ret_user,
              GError **error)
{
    g_autoptr(JsonObject) rec = NULL;
    g_autoptr(JsonObject) session = json_object_new();
    g_autoptr(JsonObject) out = NULL;
    g_autoptr(GError) local = NULL;
    g_autofree char *session_id = g_uuid_string_random();
    g_autofree char *token_hash = NULL;
    const char *hash;
    char token[64];
    guchar raw[32];
    gint64 now = dv_store_now();

    if (user != NULL && strlen(user) <= DV_NAME_MAX)
        rec = dv_store_find(auth->store, &dv_table_users, "name", user, &local);
    if (rec == NULL && local != NULL && !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    hash = rec != NULL ? dv_json_get_string(rec, "password_hash", auth->dummy_hash)
                       : auth->dummy_hash;
    if (crypto_pwhash_str_verify(hash, dv_secret_get_string(password),
                                 dv_secret_get_len(password)) != 0 ||
        rec == NULL) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED, "wrong user name or password");
        return NULL;
    }
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(token, sizeof token, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    token_hash = dv_auth_token_hash(token);
    json_object_set_string_member(session, "id", session_id);
    json_object_set_string_member(session, "token_hash", token_hash);
    json_object_set_string_member(session, "user_id", dv_json_get_string(rec, "id", ""));
    json_object_set_int_member(session, "created_at", now);
    json_object_set_int_member(session, "expires_at", now + DV_AUTH_SESSION_LIFETIME_US);
    if (!dv_store_insert(auth->store, &dv_table_sessions, session, error)) {
        sodium_memzero(token, sizeof token);
        return NULL;
    }
    if (ret_user != NULL) {
        out = json_object_new();
        json_object_set_string_member(out, "id", dv_json_get_string(rec, "id", ""));
        json_object_set_string_member(out, "name", dv_json_get_string(rec, "name", ""));
        json_object_set_string_member(out, "role", dv_json_get_string(rec, "role", ""));
        json_object_set_int_member(out, "expires_at", now + DV_AUTH_SESSION_LIFETIME_US);
        *ret_user = g_steal_pointer(&out);
    }
    {
        char *result = g_strdup(token);
        sodium_memzero(token, sizeof token);
        return result;
    }
}

JsonObject *
dv_auth_check_token(DvAuth *auth, const char *token, GError **error)
{
    g_autofree char *token_hash = NULL;
    g_autoptr(JsonObject) session = NULL;
    g_autoptr(JsonObject) user = NULL;
    g_autoptr(GError) local = NULL;
    JsonObject *out;
    DvAuthCached *cached;
    gint64 now = dv_store_now();

    if (token == NULL || token[0] == '\0' || strlen(token) > 128) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED,
                            "a bearer token is required: POST /api/v1/session first");
        return NULL;
    }
    token_hash = dv_auth_token_hash(token);

    g_mutex_lock(&auth->lock);
    cached = g_hash_table_lookup(auth->cache, token_hash);
    if (cached != NULL && cached->expires_at > now) {
        out = json_object_new();
        json_object_set_string_member(out, "id", cached->user_id);
        json_object_set_string_member(out, "name", cached->name);
        json_object_set_string_member(out, "role", cached->role);
        g_mutex_unlock(&auth->lock);
        return out;
    }
    if (cached != NULL)
        g_hash_table_remove(auth->cache, token_hash);
    g_mutex_unlock(&auth->lock);

    session = dv_store_find(auth->store, &dv_table_sessions, "token_hash", token_hash, &local);
    if (session == NULL || dv_json_get_int(session, "expires_at", 0) <= now) {
        if (local != NULL && !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED,
                            "the session token is unknown or expired; log in again");
        return NULL;
    }
    user = dv_store_get(auth->store, &dv_table_users, dv_json_get_string(session, "user_id", ""),
                        NULL);
    if (user == NULL) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED,
                            "the session's user no longer exists; log in again");
        return NULL;
    }
    cached = g_new0(DvAuthCached, 1);
    cached->user_id = g_strdup(dv_json_get_string(user, "id", ""));
    cached->name = g_strdup(dv_json_get_string(user, "name", ""));
    cached->role = g_strdup(dv_json_get_string(user, "role", ""));
    cached->expires_at = dv_json_get_int(session, "expires_at", 0);
    g_mutex_lock(&auth->lock);
    g_hash_table_replace(auth->cache, g_strdup(token_hash), cached);
    g_mutex_unlock(&auth->lock);

    out = json_object_new();
    json_object_set_string_member(out, "id", dv_json_get_string(user, "id", ""));
    json_object_set_string_member(out, "name", dv_json_get_string(user, "name", ""));
    json_object_set_string_member(out, "role", dv_json_get_string(user, "role", ""));
    return out;
}

gboolean
dv_auth_logout(DvAuth *auth, const char *token, GError **error)
{
    g_autofree char *token_hash = NULL;
    g_autoptr(JsonObject) session = NULL;

    if (token == NULL) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED, "no session");
        return FALSE;
    }
    token_hash = dv_auth_token_hash(token);
    g_mutex_lock(&auth->lock);
    g_hash_table_remove(auth->cache, token_hash);
    g_mutex_unlock(&auth->lock);
    session = dv_store_find(auth->store, &dv_table_sessions, "token_hash", token_hash, error);
    if (session == NULL)
        return FALSE;
    return dv_store_delete(auth->store, &dv_table_sessions, dv_json_get_string(session, "id", ""),
                           error);
}
