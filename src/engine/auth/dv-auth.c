#define G_LOG_DOMAIN "DvAuth"

#include "dv-auth.h"
#include "dv-metrics.h"
#include "dv-auth-directory.h"
#include "dv-auth-private.h"
#include "dv-authz.h"
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

#define DV_AUTH_CACHE_MAX 4096
#define DV_AUTH_THROTTLE_MAX 8192
#define DV_AUTH_TRUSTED_MAX 1024

typedef struct {
    char *session_id;
    char *user_id;
    char *name;
    char *role;
    gboolean directory;  /* a directory user: its groups bind too */
    DvAuthzContext *ctx; /* resolved once per session; NULL until asked */
    gint64 expires_at; /* wall clock, as stored */
    gint64 checked_at; /* monotonic: when the session row was last read */
} DvAuthCached;

/* The directory groups of a user as its API tokens last read them. */
typedef struct {
    char **groups;
    gint64 read_at; /* throttle clock (tests move it) */
} DvAuthUserGroups;

static void
dv_auth_user_groups_free(gpointer data)
{
    DvAuthUserGroups *g = data;
    g_strfreev(g->groups);
    g_free(g);
}

/* Failed logins of one user name ("u:NAME") or from one address ("a:ADDR"). */
typedef struct {
    guint failures;
    gint64 last_failure; /* throttle clock */
    gint64 locked_until; /* throttle clock; refused before it */
    gboolean refusal_logged;
} DvAuthThrottle;

struct _DvAuth {
    DvStore *store;
    GMutex lock;
    GHashTable *cache;    /* token hash (hex) -> DvAuthCached */
    GHashTable *throttle; /* "u:NAME" or "a:ADDRESS" -> DvAuthThrottle */
    GHashTable *trusted;  /* "NAME\nADDRESS" of a past success -> nothing */
    GHashTable *groups;   /* session id of a directory login -> its group DNs (GStrv) */
    GHashTable *user_groups; /* user id -> DvAuthUserGroups: an API token's directory groups */
    gint64 clock_offset;  /* tests move the throttle's clock */
    char *state_dir;      /* where initial-admin-password is; NULL until known */
    char *dummy_hash;     /* verified against for unknown users */
};

static void
dv_auth_cached_free(gpointer data)
{
    DvAuthCached *c = data;
    g_free(c->session_id);
    g_free(c->user_id);
    g_free(c->name);
    g_free(c->role);
    g_clear_pointer(&c->ctx, dv_authz_context_unref);
    g_free(c);
}

char *
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

char *
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
    auth->throttle = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    auth->trusted = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    auth->groups = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_strfreev);
    auth->user_groups =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, dv_auth_user_groups_free);
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
    g_hash_table_unref(auth->throttle);
    g_hash_table_unref(auth->trusted);
    g_hash_table_unref(auth->groups);
    g_hash_table_unref(auth->user_groups);
    g_mutex_clear(&auth->lock);
    g_free(auth->state_dir);
    g_free(auth->dummy_hash);
    g_free(auth);
}

static const char *const dv_auth_roles[] = {
    "administrator", "delegated-administrator", "read-only", "tenant", NULL,
};

typedef struct {
    JsonObject *user;
    JsonObject *binding;
} DvAuthUserAddTxn;

static gboolean
dv_auth_user_add_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvAuthUserAddTxn *t = user_data;
    return dv_store_insert(store, &dv_table_users, t->user, error) &&
           dv_store_insert(store, &dv_table_bindings, t->binding, error);
}

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
    if (dv_secret_get_len(password) < DV_AUTH_PASSWORD_MIN ||
        dv_secret_get_len(password) > DV_AUTH_PASSWORD_MAX) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "password",
                           "password: must be %d-%d bytes", DV_AUTH_PASSWORD_MIN,
                           DV_AUTH_PASSWORD_MAX);
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
    json_object_set_boolean_member(rec, "disabled", FALSE);
    {
        /* The role string becomes a global binding of the built-in role it
         * names, as migration 0007 does for users made before it. */
        g_autoptr(JsonObject) binding = json_object_new();
        g_autofree char *binding_id = g_uuid_string_random();
        DvAuthUserAddTxn t = { rec, binding };
        json_object_set_string_member(binding, "id", binding_id);
        json_object_set_string_member(binding, "principal_kind", "user");
        json_object_set_string_member(binding, "principal", id);
        json_object_set_string_member(binding, "role_id", dv_authz_role_for_legacy(role));
        json_object_set_string_member(binding, "scope_kind", "global");
        json_object_set_string_member(binding, "effect", "allow");
        json_object_set_string_member(binding, "created_by", "drover");
        json_object_set_int_member(binding, "created_at", dv_store_now());
        if (!dv_store_transaction(auth->store, dv_auth_user_add_txn, &t, error))
            return NULL;
    }
    json_object_remove_member(rec, "password_hash");
    return g_steal_pointer(&rec);
}

/* --- the first-start password file ------------------------------------------- */

/* Reads <state_dir>/initial-admin-password (first line) into guarded
 * memory; NULL when it is not there or not readable. */
static DvSecret *
dv_auth_initial_password_read(const char *path)
{
    g_autoptr(DvSecret) buf = dv_secret_new(DV_AUTH_PASSWORD_MAX + 2);
    guint8 *data = dv_secret_get_data_mutable(buf);
    gsize len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0)
        return NULL;
    while (len < DV_AUTH_PASSWORD_MAX + 2) {
        ssize_t n = read(fd, data + len, DV_AUTH_PASSWORD_MAX + 2 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (gsize)n;
    }
    close(fd);
    for (gsize i = 0; i < len; i++) {
        if (data[i] == '\n' || data[i] == '\r') {
            len = i;
            break;
        }
    }
    if (len == 0 || len > DV_AUTH_PASSWORD_MAX)
        return NULL;
    return dv_secret_new_from_data(data, len);
}

static void
dv_auth_initial_password_remove(const char *path, const char *why)
{
    if (unlink(path) == 0)
        g_message("removed %s: %s", path, why);
    else if (errno != ENOENT)
        g_warning("cannot remove %s (%s): %s", path, why, g_strerror(errno));
}

/* Removes the first-start file when @password is the one it holds. */
static void
dv_auth_initial_password_forget(DvAuth *auth, const DvSecret *password)
{
    g_autofree char *path = NULL;
    g_autoptr(DvSecret) initial = NULL;

    g_mutex_lock(&auth->lock);
    if (auth->state_dir != NULL)
        path = g_build_filename(auth->state_dir, "initial-admin-password", NULL);
    g_mutex_unlock(&auth->lock);
    if (path == NULL || (initial = dv_auth_initial_password_read(path)) == NULL)
        return;
    if (dv_secret_equal(initial, password))
        dv_auth_initial_password_remove(path, "the administrator changed that password");
}

/* At start: the file is stale when its password no longer opens "admin". */
static void
dv_auth_initial_password_check(DvAuth *auth, const char *state_dir)
{
    g_autofree char *path = g_build_filename(state_dir, "initial-admin-password", NULL);
    g_autoptr(DvSecret) initial = dv_auth_initial_password_read(path);
    g_autoptr(JsonObject) admin = NULL;
    g_autoptr(GError) local = NULL;

    if (initial == NULL)
        return;
    admin = dv_store_find(auth->store, &dv_table_users, "name", "admin", &local);
    if (admin == NULL) {
        /* A database error says nothing about the password: keep the file. */
        if (g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
            dv_auth_initial_password_remove(path, "there is no user 'admin' any more");
        return;
    }
    if (crypto_pwhash_str_verify(dv_json_get_string(admin, "password_hash", ""),
                                 dv_secret_get_string(initial), dv_secret_get_len(initial)) != 0)
        dv_auth_initial_password_remove(path, "the administrator changed that password");
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

    g_mutex_lock(&auth->lock);
    g_free(auth->state_dir);
    auth->state_dir = g_strdup(state_dir);
    g_mutex_unlock(&auth->lock);
    n = dv_store_count(auth->store, &dv_table_users, NULL, 0, error);
    if (n < 0)
        return FALSE;
    if (n > 0) {
        dv_auth_initial_password_check(auth, state_dir);
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

/* --- login throttle ------------------------------------------------------------ */

static gint64
dv_auth_clock(DvAuth *auth)
{
    return g_get_monotonic_time() + auth->clock_offset;
}

void
dv_auth_advance_clock_for_test(DvAuth *auth, gint64 usec)
{
    g_mutex_lock(&auth->lock);
    auth->clock_offset += usec;
    g_mutex_unlock(&auth->lock);
}

/* Keys are built from the name as given, cut to a bounded length: a name
 * longer than any valid one is as unknown as a short one. */
static char *
dv_auth_user_key(const char *user)
{
    return g_strdup_printf("u:%.*s", DV_NAME_MAX + 1, user != NULL ? user : "");
}

static char *
dv_auth_address_key(const char *address)
{
    return g_strdup_printf("a:%.64s", address != NULL ? address : "unknown");
}

static char *
dv_auth_trusted_key(const char *user, const char *address)
{
    return g_strdup_printf("%.*s\n%.64s", DV_NAME_MAX + 1, user != NULL ? user : "",
                           address != NULL ? address : "unknown");
}

/* The lock after @failures failures: 0 while free, then 1 s doubling up to
 * @max_s. */
static gint64
dv_auth_throttle_delay(guint failures, guint free_failures, guint max_s)
{
    guint over;

    if (failures < free_failures)
        return 0;
    over = failures - free_failures;
    if (over >= 20 || (1u << over) >= max_s)
        return (gint64)max_s * G_USEC_PER_SEC;
    return (gint64)(1u << over) * G_USEC_PER_SEC;
}

/* Under the lock.  The entry of @key, forgetting one whose last failure is
 * old; NULL when there is none and @create is FALSE. */
static DvAuthThrottle *
dv_auth_throttle_lookup(DvAuth *auth, const char *key, gint64 now, gboolean create)
{
    DvAuthThrottle *t = g_hash_table_lookup(auth->throttle, key);

    if (t != NULL && t->locked_until <= now && now - t->last_failure > DV_AUTH_THROTTLE_FORGET_US) {
        g_hash_table_remove(auth->throttle, key);
        t = NULL;
    }
    if (t != NULL || !create)
        return t;
    if (g_hash_table_size(auth->throttle) >= DV_AUTH_THROTTLE_MAX) {
        /* Many addresses or names at once: keep only the entries that
         * refuse someone now, so the table stays bounded. */
        GHashTableIter it;
        gpointer value;
        g_hash_table_iter_init(&it, auth->throttle);
        while (g_hash_table_iter_next(&it, NULL, &value))
            if (((DvAuthThrottle *)value)->locked_until <= now)
                g_hash_table_iter_remove(&it);
        if (g_hash_table_size(auth->throttle) >= DV_AUTH_THROTTLE_MAX)
            return NULL;
    }
    t = g_new0(DvAuthThrottle, 1);
    g_hash_table_insert(auth->throttle, g_strdup(key), t);
    return t;
}

/* Under the lock: microseconds until @user may try from @address (0: now). */
static gint64
dv_auth_throttle_wait(DvAuth *auth, const char *user, const char *address, gint64 now)
{
    g_autofree char *ukey = dv_auth_user_key(user);
    g_autofree char *akey = dv_auth_address_key(address);
    g_autofree char *tkey = dv_auth_trusted_key(user, address);
    DvAuthThrottle *a = dv_auth_throttle_lookup(auth, akey, now, FALSE);
    DvAuthThrottle *u = dv_auth_throttle_lookup(auth, ukey, now, FALSE);
    gint64 wait = 0;

    if (a != NULL && a->locked_until > now)
        wait = a->locked_until - now;
    /* A user under attack can still log in from where they did before. */
    if (u != NULL && u->locked_until > now && !g_hash_table_contains(auth->trusted, tkey))
        wait = MAX(wait, u->locked_until - now);
    return wait;
}

guint
dv_auth_login_retry_after(DvAuth *auth, const char *user, const char *address)
{
    gint64 wait;

    g_mutex_lock(&auth->lock);
    wait = dv_auth_throttle_wait(auth, user, address, dv_auth_clock(auth));
    g_mutex_unlock(&auth->lock);
    if (wait <= 0)
        return 0;
    return (guint)MAX(1, (wait + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC);
}

/* Sets @t's lock for its next failure before the password is checked, so
 * that attempts sent in parallel cannot all pass while the first is
 * being hashed. */
static void
dv_auth_throttle_reserve(DvAuthThrottle *t, gint64 now, guint free_failures, guint max_s)
{
    gint64 delay;

    if (t == NULL)
        return;
    delay = dv_auth_throttle_delay(t->failures + 1, free_failures, max_s);
    if (delay > 0)
        t->locked_until = MAX(t->locked_until, now + delay);
}

/* Refuses (DV_ERROR_BUSY) or admits an attempt of @user from @address. */
static gboolean
dv_auth_throttle_admit(DvAuth *auth, const char *user, const char *address, GError **error)
{
    g_autofree char *ukey = dv_auth_user_key(user);
    g_autofree char *akey = dv_auth_address_key(address);
    g_autofree char *tkey = dv_auth_trusted_key(user, address);
    gint64 now;
    gint64 wait;

    g_mutex_lock(&auth->lock);
    now = dv_auth_clock(auth);
    wait = dv_auth_throttle_wait(auth, user, address, now);
    if (wait > 0) {
        DvAuthThrottle *a = dv_auth_throttle_lookup(auth, akey, now, FALSE);
        DvAuthThrottle *u = dv_auth_throttle_lookup(auth, ukey, now, FALSE);
        gboolean logged = (a == NULL || a->refusal_logged || a->locked_until <= now) &&
                          (u == NULL || u->refusal_logged || u->locked_until <= now);
        guint secs = (guint)MAX(1, (wait + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC);
        if (a != NULL && a->locked_until > now)
            a->refusal_logged = TRUE;
        if (u != NULL && u->locked_until > now)
            u->refusal_logged = TRUE;
        g_mutex_unlock(&auth->lock);
        /* Once per lock, not once per attempt: refusals cost nothing and
         * would flood the log. */
        if (!logged) {
            g_autofree char *shown = dv_text_excerpt(user != NULL ? user : "", 64);
            g_message("login of user '%s' from %s refused for %u s after too many failures", shown,
                      address != NULL ? address : "unknown", secs);
        }
        g_set_error(error, DV_ERROR, DV_ERROR_BUSY,
                    "too many failed logins for this user or from this address; try again in %u s",
                    secs);
        return FALSE;
    }
    dv_auth_throttle_reserve(dv_auth_throttle_lookup(auth, akey, now, TRUE), now,
                             DV_AUTH_ADDRESS_FREE_FAILURES, DV_AUTH_ADDRESS_DELAY_MAX_S);
    if (!g_hash_table_contains(auth->trusted, tkey))
        dv_auth_throttle_reserve(dv_auth_throttle_lookup(auth, ukey, now, TRUE), now,
                                 DV_AUTH_USER_FREE_FAILURES, DV_AUTH_USER_DELAY_MAX_S);
    g_mutex_unlock(&auth->lock);
    return TRUE;
}

static guint
dv_auth_throttle_fail_one(DvAuth *auth, const char *key, gint64 now, guint free_failures,
                          guint max_s)
{
    DvAuthThrottle *t = dv_auth_throttle_lookup(auth, key, now, TRUE);

    if (t == NULL)
        return 0;
    t->failures++;
    t->last_failure = now;
    t->locked_until = now + dv_auth_throttle_delay(t->failures, free_failures, max_s);
    t->refusal_logged = FALSE;
    return t->failures;
}

static DvMetric dv_metric_login_failures = DV_METRIC_COUNTER(
    "drover_login_failures_total", "Failed logins (password or directory).", NULL);

/* Counts a failure of @user from @address and logs it once. */
static void
dv_auth_throttle_fail(DvAuth *auth, const char *user, const char *address, const char *what)
{
    g_autofree char *ukey = dv_auth_user_key(user);
    g_autofree char *akey = dv_auth_address_key(address);
    g_autofree char *shown = dv_text_excerpt(user != NULL ? user : "", 64);
    guint nu;
    guint na;
    gint64 now;

    g_mutex_lock(&auth->lock);
    now = dv_auth_clock(auth);
    na = dv_auth_throttle_fail_one(auth, akey, now, DV_AUTH_ADDRESS_FREE_FAILURES,
                                   DV_AUTH_ADDRESS_DELAY_MAX_S);
    nu = dv_auth_throttle_fail_one(auth, ukey, now, DV_AUTH_USER_FREE_FAILURES,
                                   DV_AUTH_USER_DELAY_MAX_S);
    g_mutex_unlock(&auth->lock);
    dv_metric_add(&dv_metric_login_failures, 1);
    g_message("%s for user '%s' from %s (failure %u from this address, %u for this user)", what,
              shown, address != NULL ? address : "unknown", na, nu);
}

static void
dv_auth_throttle_succeed(DvAuth *auth, const char *user, const char *address)
{
    g_autofree char *ukey = dv_auth_user_key(user);
    g_autofree char *akey = dv_auth_address_key(address);

    g_mutex_lock(&auth->lock);
    g_hash_table_remove(auth->throttle, ukey);
    g_hash_table_remove(auth->throttle, akey);
    if (g_hash_table_size(auth->trusted) >= DV_AUTH_TRUSTED_MAX)
        g_hash_table_remove_all(auth->trusted);
    g_hash_table_add(auth->trusted, dv_auth_trusted_key(user, address));
    g_mutex_unlock(&auth->lock);
}

/* --- sessions ------------------------------------------------------------------- */

/* Verifies @password against @rec's hash (the dummy hash when @rec is
 * NULL, so an unknown user costs the same). */
static gboolean
dv_auth_verify(DvAuth *auth, JsonObject *rec, const DvSecret *password)
{
    const char *hash = rec != NULL ? dv_json_get_string(rec, "password_hash", auth->dummy_hash)
                                   : auth->dummy_hash;
    return crypto_pwhash_str_verify(hash, dv_secret_get_string(password),
                                    dv_secret_get_len(password)) == 0 &&
           rec != NULL;
}

/* --- directory logins ------------------------------------------------------------ */

static gboolean
dv_auth_is_directory_user(JsonObject *rec)
{
    return rec != NULL &&
           g_strcmp0(dv_json_get_string(rec, "password_hash", ""), DV_AUTH_DIRECTORY_HASH) == 0;
}

/* Read at every directory login: an edited directory.conf applies at once,
 * and the file is small next to the LDAP round trips that follow. */
static gboolean
dv_auth_directory_settings(DvAuth *auth, DvAuthDirectory **ret_dir, GError **error)
{
    g_autofree char *path = NULL;

    g_mutex_lock(&auth->lock);
    if (auth->state_dir != NULL)
        path = g_build_filename(auth->state_dir, "directory.conf", NULL);
    g_mutex_unlock(&auth->lock);
    if (path == NULL) {
        *ret_dir = NULL;
        return TRUE;
    }
    return dv_auth_directory_load(path, ret_dir, error);
}

/* The users row of a directory user, made at its first login so sessions,
 * ownership and the audit log can name it.  Its password_hash is no hash:
 * no local password opens it. */
static JsonObject *
dv_auth_directory_user_row(DvAuth *auth, JsonObject *rec, const char *name, GError **error)
{
    g_autoptr(JsonObject) row = NULL;
    g_autoptr(JsonObject) again = NULL;
    g_autoptr(GError) local = NULL;
    g_autofree char *id = NULL;

    if (rec != NULL)
        return json_object_ref(rec);
    if (!dv_validate_name("name", name, error)) {
        g_prefix_error(error, "the directory user cannot be a Drover user: ");
        return NULL;
    }
    id = g_uuid_string_random();
    row = json_object_new();
    json_object_set_string_member(row, "id", id);
    json_object_set_string_member(row, "name", name);
    json_object_set_string_member(row, "password_hash", DV_AUTH_DIRECTORY_HASH);
    json_object_set_string_member(row, "role", "directory");
    json_object_set_int_member(row, "created_at", dv_store_now());
    json_object_set_boolean_member(row, "disabled", FALSE);
    if (dv_store_insert(auth->store, &dv_table_users, row, &local)) {
        g_message("directory user '%s' logged in for the first time: user %s made", name, id);
        return g_steal_pointer(&row);
    }
    /* Another login of the same user, here or on another server, made it
     * first: use that row; a local user of that name is not taken over. */
    again = dv_store_find(auth->store, &dv_table_users, "name", name, NULL);
    if (dv_auth_is_directory_user(again))
        return g_steal_pointer(&again);
    g_propagate_error(error, g_steal_pointer(&local));
    return NULL;
}

/* Under the lock. */
static void
dv_auth_groups_remember(DvAuth *auth, const char *session_id, char **groups)
{
    if (g_hash_table_size(auth->groups) >= DV_AUTH_CACHE_MAX)
        g_hash_table_remove_all(auth->groups); /* read again from the directory when needed */
    g_hash_table_replace(auth->groups, g_strdup(session_id), g_strdupv(groups));
}

/* --- logins ---------------------------------------------------------------------- */

/* Opens a session for @rec; @groups (may be NULL) are a directory login's. */
static char *
dv_auth_session_open(DvAuth *auth, JsonObject *rec, char **groups, JsonObject **ret_user,
                     GError **error)
{
    g_autoptr(JsonObject) session = json_object_new();
    g_autoptr(JsonObject) out = NULL;
    g_autofree char *session_id = g_uuid_string_random();
    g_autofree char *token_hash = NULL;
    char token[64];
    guchar raw[32];
    gint64 now = dv_store_now();

    if (dv_json_get_bool(rec, "disabled", FALSE)) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED,
                            "this user is disabled; an administrator can enable it");
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
    if (groups != NULL) {
        g_mutex_lock(&auth->lock);
        dv_auth_groups_remember(auth, session_id, groups);
        g_mutex_unlock(&auth->lock);
    }
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

/* A login of a name that is no local user, or a directory user's: an LDAP
 * simple bind as the user's entry decides; its groups are read now. */
static char *
dv_auth_login_directory(DvAuth *auth, DvAuthDirectory *dir, JsonObject *rec, const char *user,
                        const char *address, const DvSecret *password, JsonObject **ret_user,
                        GError **error)
{
    g_auto(GStrv) groups = NULL;
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonObject) row = NULL;

    groups = dv_auth_directory_verify(dir, user, password, &local);
    if (groups == NULL) {
        /* Only a refused password counts as a failure; a directory that
         * is down is no guess of the caller's. */
        if (g_error_matches(local, DV_ERROR, DV_ERROR_AUTH_REQUIRED))
            dv_auth_throttle_fail(auth, user, address, "failed directory login");
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    dv_auth_throttle_succeed(auth, user, address);
    row = dv_auth_directory_user_row(auth, rec, user, error);
    if (row == NULL)
        return NULL;
    return dv_auth_session_open(auth, row, groups, ret_user, error);
}

char *
dv_auth_login(DvAuth *auth, const char *user, const char *address, const DvSecret *password,
              JsonObject **ret_user, GError **error)
{
    g_autoptr(JsonObject) rec = NULL;
    g_autoptr(GError) local = NULL;

    if (!dv_auth_throttle_admit(auth, user, address, error))
        return NULL;
    if (user != NULL && strlen(user) <= DV_NAME_MAX)
        rec = dv_store_find(auth->store, &dv_table_users, "name", user, &local);
    if (rec == NULL && local != NULL && !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    /* A local user's name is never looked up in the directory: a
     * directory entry cannot take over a local account. */
    if (rec == NULL || dv_auth_is_directory_user(rec)) {
        g_autoptr(DvAuthDirectory) dir = NULL;
        if (!dv_auth_directory_settings(auth, &dir, error))
            return NULL;
        if (dir != NULL)
            return dv_auth_login_directory(auth, dir, rec, user, address, password, ret_user,
                                           error);
    }
    if (!dv_auth_verify(auth, rec, password)) {
        dv_auth_throttle_fail(auth, user, address, "failed login");
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED, "wrong user name or password");
        return NULL;
    }
    dv_auth_throttle_succeed(auth, user, address);
    return dv_auth_session_open(auth, rec, NULL, ret_user, error);
}

static JsonObject *
dv_auth_cached_to_user(const DvAuthCached *c)
{
    JsonObject *out = json_object_new();
    json_object_set_string_member(out, "id", c->user_id);
    json_object_set_string_member(out, "name", c->name);
    json_object_set_string_member(out, "role", c->role);
    json_object_set_string_member(out, "session_id", c->session_id);
    return out;
}

/* Under the lock: drops every entry when the cache is full (tokens of
 * sessions nobody uses any more are never looked up again). */
static void
dv_auth_cache_insert(DvAuth *auth, const char *token_hash, DvAuthCached *cached)
{
    if (g_hash_table_size(auth->cache) >= DV_AUTH_CACHE_MAX &&
        !g_hash_table_contains(auth->cache, token_hash))
        g_hash_table_remove_all(auth->cache);
    g_hash_table_replace(auth->cache, g_strdup(token_hash), cached);
}

JsonObject *
dv_auth_check_token(DvAuth *auth, const char *token, GError **error)
{
    g_autofree char *token_hash = NULL;
    g_autofree char *cached_session = NULL;
    g_autoptr(JsonObject) session = NULL;
    g_autoptr(JsonObject) user = NULL;
    g_autoptr(GError) local = NULL;
    DvAuthCached *cached;
    JsonObject *out;
    gint64 now = dv_store_now();
    gint64 mono = g_get_monotonic_time();

    if (token == NULL || token[0] == '\0' || strlen(token) > 128) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED,
                            "a bearer token is required: POST /api/v1/session first");
        return NULL;
    }
    token_hash = dv_auth_token_hash(token);

    g_mutex_lock(&auth->lock);
    cached = g_hash_table_lookup(auth->cache, token_hash);
    if (cached != NULL && cached->expires_at > now && mono - cached->checked_at < DV_AUTH_RECHECK_US) {
        out = dv_auth_cached_to_user(cached);
        g_mutex_unlock(&auth->lock);
        return out;
    }
    if (cached != NULL && cached->expires_at > now)
        cached_session = g_strdup(cached->session_id);
    else if (cached != NULL)
        g_hash_table_remove(auth->cache, token_hash);
    g_mutex_unlock(&auth->lock);

    /* The row is read again, so a session deleted or shortened by any
     * server, or by hand, ends here within DV_AUTH_RECHECK_US. */
    session = dv_store_find(auth->store, &dv_table_sessions, "token_hash", token_hash, &local);
    if (session == NULL || dv_json_get_int(session, "expires_at", 0) <= now) {
        g_mutex_lock(&auth->lock);
        g_hash_table_remove(auth->cache, token_hash);
        g_mutex_unlock(&auth->lock);
        if (local != NULL && !g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED,
                            "the session token is unknown or expired; log in again");
        return NULL;
    }
    if (cached_session != NULL &&
        g_strcmp0(cached_session, dv_json_get_string(session, "id", "")) == 0) {
        /* Same session: the user's record is the one cached. */
        g_mutex_lock(&auth->lock);
        cached = g_hash_table_lookup(auth->cache, token_hash);
        if (cached != NULL && g_strcmp0(cached->session_id, cached_session) == 0) {
            cached->checked_at = mono;
            cached->expires_at = dv_json_get_int(session, "expires_at", 0);
            out = dv_auth_cached_to_user(cached);
            g_mutex_unlock(&auth->lock);
            return out;
        }
        g_mutex_unlock(&auth->lock);
    }
    user = dv_store_get(auth->store, &dv_table_users, dv_json_get_string(session, "user_id", ""),
                        NULL);
    if (user == NULL || dv_json_get_bool(user, "disabled", FALSE)) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED,
                            user == NULL ? "the session's user no longer exists; log in again"
                                         : "this user is disabled");
        return NULL;
    }
    cached = g_new0(DvAuthCached, 1);
    cached->session_id = g_strdup(dv_json_get_string(session, "id", ""));
    cached->user_id = g_strdup(dv_json_get_string(user, "id", ""));
    cached->name = g_strdup(dv_json_get_string(user, "name", ""));
    cached->role = g_strdup(dv_json_get_string(user, "role", ""));
    cached->directory = dv_auth_is_directory_user(user);
    cached->expires_at = dv_json_get_int(session, "expires_at", 0);
    cached->checked_at = mono;
    out = dv_auth_cached_to_user(cached);
    g_mutex_lock(&auth->lock);
    dv_auth_cache_insert(auth, token_hash, cached);
    g_mutex_unlock(&auth->lock);
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
    g_mutex_lock(&auth->lock);
    g_hash_table_remove(auth->groups, dv_json_get_string(session, "id", ""));
    g_mutex_unlock(&auth->lock);
    return dv_store_delete(auth->store, &dv_table_sessions, dv_json_get_string(session, "id", ""),
                           error);
}

/* --- password change ------------------------------------------------------------- */

typedef struct {
    const char *user_id;
    const char *hash;
    JsonObject *keep; /* the caller's session row, put back */
    gint64 ended;
} DvAuthPasswordTxn;

static gboolean
dv_auth_change_password_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvAuthPasswordTxn *t = user_data;
    g_autoptr(JsonObject) changes = json_object_new();
    const DvFilter by_user[] = { { "user_id", DV_FILTER_EQ, t->user_id } };

    json_object_set_string_member(changes, "password_hash", t->hash);
    if (!dv_store_update(store, &dv_table_users, t->user_id, changes, error))
        return FALSE;
    /* Every session of the user goes; the caller's is written back as it
     * was, so one statement ends the others whatever their number. */
    t->ended = dv_store_delete_matching(store, &dv_table_sessions, by_user, 1, error);
    if (t->ended < 0)
        return FALSE;
    return dv_store_insert(store, &dv_table_sessions, t->keep, error);
}

gboolean
dv_auth_change_password(DvAuth *auth, const char *token, const char *address,
                        const DvSecret *current, const DvSecret *new_password, GError **error)
{
    g_autoptr(JsonObject) who = NULL;
    g_autoptr(JsonObject) rec = NULL;
    g_autoptr(JsonObject) session = NULL;
    g_autofree char *token_hash = NULL;
    g_autofree char *hash = NULL;
    g_autofree char *shown = NULL;
    DvAuthPasswordTxn txn = { 0 };
    const char *name;

    if (current == NULL || dv_secret_get_len(current) == 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "current_password",
                           "current_password: must not be empty");
        return FALSE;
    }
    if (dv_secret_get_len(current) > DV_AUTH_PASSWORD_MAX) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "current_password",
                           "current_password: must be at most %d bytes", DV_AUTH_PASSWORD_MAX);
        return FALSE;
    }
    if (new_password == NULL || dv_secret_get_len(new_password) < DV_AUTH_PASSWORD_MIN ||
        dv_secret_get_len(new_password) > DV_AUTH_PASSWORD_MAX) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "new_password",
                           "new_password: must be %d-%d bytes", DV_AUTH_PASSWORD_MIN,
                           DV_AUTH_PASSWORD_MAX);
        return FALSE;
    }
    if (dv_secret_equal(current, new_password)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "new_password",
                           "new_password: must differ from the current password");
        return FALSE;
    }
    who = dv_auth_check_token(auth, token, error);
    if (who == NULL)
        return FALSE;
    name = dv_json_get_string(who, "name", "");
    if (!dv_auth_throttle_admit(auth, name, address, error))
        return FALSE;
    rec = dv_store_get(auth->store, &dv_table_users, dv_json_get_string(who, "id", ""), error);
    if (rec == NULL)
        return FALSE;
    if (dv_auth_is_directory_user(rec)) {
        dv_set_field_error(error, DV_ERROR_CONFLICT, "new_password",
                           "new_password: a directory user's password is changed in the directory");
        return FALSE;
    }
    if (!dv_auth_verify(auth, rec, current)) {
        dv_auth_throttle_fail(auth, name, address, "wrong current password in a password change");
        dv_set_field_error(error, DV_ERROR_PERMISSION_DENIED, "current_password",
                           "current_password: is not the user's password");
        return FALSE;
    }
    dv_auth_throttle_succeed(auth, name, address);
    hash = dv_auth_hash_password(new_password, error);
    if (hash == NULL)
        return FALSE;
    token_hash = dv_auth_token_hash(token);
    session = dv_store_find(auth->store, &dv_table_sessions, "token_hash", token_hash, error);
    if (session == NULL)
        return FALSE;
    txn.user_id = dv_json_get_string(rec, "id", "");
    txn.hash = hash;
    txn.keep = session;
    if (!dv_store_transaction(auth->store, dv_auth_change_password_txn, &txn, error)) {
        g_prefix_error(error, "cannot change the password: ");
        return FALSE;
    }
    {
        /* This server's cache forgets the user's other tokens now; other
         * servers' within DV_AUTH_RECHECK_US. */
        GHashTableIter it;
        gpointer value;
        const char *keep_id = dv_json_get_string(session, "id", "");
        g_mutex_lock(&auth->lock);
        g_hash_table_iter_init(&it, auth->cache);
        while (g_hash_table_iter_next(&it, NULL, &value)) {
            DvAuthCached *c = value;
            if (g_strcmp0(c->user_id, txn.user_id) == 0 && g_strcmp0(c->session_id, keep_id) != 0)
                g_hash_table_iter_remove(&it);
        }
        g_mutex_unlock(&auth->lock);
    }
    shown = dv_text_excerpt(name, 64);
    g_message("user '%s' changed their password from %s; %" G_GINT64_FORMAT
              " other session(s) ended", shown, address != NULL ? address : "unknown",
              txn.ended > 0 ? txn.ended - 1 : 0);
    dv_auth_initial_password_forget(auth, current);
    return TRUE;
}

/* --- the actor of a session ---------------------------------------------------- */

DvStore *
dv_auth_get_store(DvAuth *auth)
{
    return auth->store;
}

void
dv_auth_forget_user(DvAuth *auth, const char *user_id)
{
    GHashTableIter iter;
    gpointer value;

    g_mutex_lock(&auth->lock);
    g_hash_table_iter_init(&iter, auth->cache);
    while (g_hash_table_iter_next(&iter, NULL, &value))
        if (g_strcmp0(((DvAuthCached *)value)->user_id, user_id) == 0)
            g_hash_table_iter_remove(&iter);
    g_hash_table_remove(auth->user_groups, user_id);
    g_mutex_unlock(&auth->lock);
}

/* The directory groups of a session's user (owned; empty for a local
 * user): those read at its login, or, for a session opened on another
 * server or before a restart, read again as the service identity.  A
 * directory that cannot answer is an error, not "no groups": a group may
 * hold a deny binding. */
static char **
dv_auth_session_groups(DvAuth *auth, const char *token_hash, JsonObject *user, GError **error)
{
    g_autofree char *session_id = NULL;
    g_autoptr(DvAuthDirectory) dir = NULL;
    g_autoptr(JsonObject) row = NULL;
    char **groups = NULL;
    gboolean directory = FALSE;
    DvAuthCached *cached;

    g_mutex_lock(&auth->lock);
    cached = g_hash_table_lookup(auth->cache, token_hash);
    if (cached != NULL) {
        directory = cached->directory;
        session_id = g_strdup(cached->session_id);
        groups = g_strdupv(g_hash_table_lookup(auth->groups, session_id));
    }
    g_mutex_unlock(&auth->lock);
    if (groups != NULL)
        return groups;
    if (cached == NULL) {
        row = dv_store_get(auth->store, &dv_table_users, dv_json_get_string(user, "id", ""), error);
        if (row == NULL)
            return NULL;
        directory = dv_auth_is_directory_user(row);
    }
    if (!directory)
        return g_new0(char *, 1);
    if (!dv_auth_directory_settings(auth, &dir, error))
        return NULL;
    if (dir == NULL) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED,
                            "directory logins are turned off; this directory user's session "
                            "cannot be used");
        return NULL;
    }
    groups = dv_auth_directory_groups(dir, dv_json_get_string(user, "name", ""), error);
    if (groups == NULL)
        return NULL;
    if (session_id != NULL) {
        g_mutex_lock(&auth->lock);
        dv_auth_groups_remember(auth, session_id, groups);
        g_mutex_unlock(&auth->lock);
    }
    return groups;
}

char **
dv_auth_user_groups(DvAuth *auth, JsonObject *user, GError **error)
{
    g_autoptr(DvAuthDirectory) dir = NULL;
    const char *user_id = dv_json_get_string(user, "id", "");
    DvAuthUserGroups *cached;
    char **groups = NULL;

    if (!dv_auth_is_directory_user(user))
        return g_new0(char *, 1);
    g_mutex_lock(&auth->lock);
    cached = g_hash_table_lookup(auth->user_groups, user_id);
    if (cached != NULL && dv_auth_clock(auth) - cached->read_at < DV_AUTH_TOKEN_GROUPS_TTL_US)
        groups = g_strdupv(cached->groups);
    g_mutex_unlock(&auth->lock);
    if (groups != NULL)
        return groups;
    if (!dv_auth_directory_settings(auth, &dir, error))
        return NULL;
    if (dir == NULL) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED,
                            "directory logins are turned off; this directory user's API token "
                            "cannot be used");
        return NULL;
    }
    /* A directory that cannot answer is an error (503), never "no
     * groups": a group may hold a deny binding. */
    groups = dv_auth_directory_groups(dir, dv_json_get_string(user, "name", ""), error);
    if (groups == NULL)
        return NULL;
    g_mutex_lock(&auth->lock);
    if (g_hash_table_size(auth->user_groups) >= DV_AUTH_CACHE_MAX)
        g_hash_table_remove_all(auth->user_groups);
    cached = g_new0(DvAuthUserGroups, 1);
    cached->groups = g_strdupv(groups);
    cached->read_at = dv_auth_clock(auth);
    g_hash_table_replace(auth->user_groups, g_strdup(user_id), cached);
    g_mutex_unlock(&auth->lock);
    return groups;
}

DvAuthzContext *
dv_auth_check_token_context(DvAuth *auth, const char *token, GError **error)
{
    g_autoptr(JsonObject) user = dv_auth_check_token(auth, token, error);
    g_autofree char *token_hash = NULL;
    g_auto(GStrv) groups = NULL;
    DvAuthzContext *ctx = NULL;
    DvAuthCached *cached;

    if (user == NULL)
        return NULL;
    token_hash = dv_auth_token_hash(token);
    g_mutex_lock(&auth->lock);
    cached = g_hash_table_lookup(auth->cache, token_hash);
    if (cached != NULL && cached->ctx != NULL)
        ctx = dv_authz_context_ref(cached->ctx);
    g_mutex_unlock(&auth->lock);
    if (ctx != NULL)
        return ctx;
    /* Built outside the lock (database reads); a racing request may build
     * its own, the first stored wins. */
    groups = dv_auth_session_groups(auth, token_hash, user, error);
    if (groups == NULL)
        return NULL;
    ctx = dv_authz_context_new(auth->store, dv_json_get_string(user, "id", ""),
                               (const char *const *)groups, error);
    if (ctx == NULL)
        return NULL;
    g_mutex_lock(&auth->lock);
    cached = g_hash_table_lookup(auth->cache, token_hash);
    if (cached != NULL && cached->ctx == NULL &&
        g_strcmp0(cached->user_id, dv_json_get_string(user, "id", "")) == 0)
        cached->ctx = dv_authz_context_ref(ctx);
    g_mutex_unlock(&auth->lock);
    return ctx;
}
