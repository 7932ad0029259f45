#define G_LOG_DOMAIN "DvKeys"

/* The keyring: key versions, their protectors, sealing, and the secrets
 * table.  See dv-keys.h and docs/KEYS.md. */

#include "dv-error.h"
#include "dv-json.h"
#include "dv-keys-private.h"
#include "dv-metrics.h"

#include <glib/gstdio.h>
#include <string.h>

#define DV_KEYS_REFRESH_INTERVAL (5 * G_USEC_PER_SEC)
#define DV_KEYS_REKEY_PAGE 100
#define DV_KEYS_REKEY_MAX 1000

typedef struct {
    char *kind;
    gboolean open;
    char *reason;
} DvProtectorResult;

typedef struct {
    char *id;
    guint version;
    char *state;            /* pending | active | retired */
    char *canary;
    char *recovery_wrapped; /* NULL when not sealed to the recovery key */
    DvSecret *key;          /* NULL when not open here; set before the version is shared */
    char *via;
    char *reason;           /* why not open: "host: ...; directory: ..." */
    GPtrArray *results;     /* DvProtectorResult* */
} DvKeyVersion;

struct _DvKeyring {
    DvStore *store;
    char *recovery_key_path;
    DvHostKeys *host;
    GMutex lock;            /* guards everything below */
    GPtrArray *extra;       /* DvKeyProtector* (borrowed) */
    GPtrArray *versions;    /* DvKeyVersion*, owned; entries are never removed */
    GHashTable *by_id;      /* key id -> DvKeyVersion* */
    DvKeyVersion *current;
    gint64 last_refresh;
};

/* --- small helpers ----------------------------------------------------- */

void
dv_key_protector_free(DvKeyProtector *protector)
{
    if (protector != NULL && protector->free != NULL)
        protector->free(protector);
}

static void
dv_protector_result_free(gpointer data)
{
    DvProtectorResult *r = data;
    g_free(r->kind);
    g_free(r->reason);
    g_free(r);
}

static void
dv_key_version_free(gpointer data)
{
    DvKeyVersion *v = data;

    if (v == NULL)
        return;
    g_free(v->id);
    g_free(v->state);
    g_free(v->canary);
    g_free(v->recovery_wrapped);
    dv_secret_free(v->key);
    g_free(v->via);
    g_free(v->reason);
    g_ptr_array_unref(v->results);
    g_free(v);
}

static DvKeyVersion *
dv_key_version_new(const char *id, guint version, const char *state, const char *canary,
                   const char *recovery_wrapped)
{
    DvKeyVersion *v = g_new0(DvKeyVersion, 1);

    v->id = g_strdup(id);
    v->version = version;
    v->state = g_strdup(state);
    v->canary = g_strdup(canary);
    v->recovery_wrapped = g_strdup(recovery_wrapped);
    v->results = g_ptr_array_new_with_free_func(dv_protector_result_free);
    return v;
}

static void
dv_key_version_add_result(DvKeyVersion *v, const char *kind, gboolean open, const char *reason)
{
    DvProtectorResult *r = g_new0(DvProtectorResult, 1);

    r->kind = g_strdup(kind);
    r->open = open;
    r->reason = g_strdup(reason);
    g_ptr_array_add(v->results, r);
}

static DvDb *
dv_keyring_db(DvKeyring *keyring)
{
    return dv_store_get_db(keyring->store);
}

static gboolean
dv_keys_name_is_valid(const char *name)
{
    return name != NULL && name[0] != '\0' && strnlen(name, DV_KEYS_NAME_MAX + 1) <= DV_KEYS_NAME_MAX;
}

static gboolean
dv_keys_check_names(const char *object_type, const char *object_id, const char *field,
                    GError **error)
{
    if (!dv_keys_name_is_valid(object_type) || !dv_keys_name_is_valid(object_id) ||
        !dv_keys_name_is_valid(field)) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_INTERNAL,
                            "a secret needs an object type, object id and field of 1-256 bytes");
        return FALSE;
    }
    return TRUE;
}

/* --- loading key versions ------------------------------------------------ */

typedef struct {
    char *public_b64;  /* recovery public key recorded for this installation */
    GPtrArray *kinds;  /* configured protector kinds (char*) */
} DvProtectorConfig;

static void
dv_protector_config_clear(DvProtectorConfig *c)
{
    g_clear_pointer(&c->public_b64, g_free);
    g_clear_pointer(&c->kinds, g_ptr_array_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(DvProtectorConfig, dv_protector_config_clear)

static gboolean
dv_keyring_read_protectors(DvKeyring *keyring, DvProtectorConfig *ret, GError **error)
{
    g_autoptr(DvSqlRows) rows = dv_db_query(dv_keyring_db(keyring),
                                            "SELECT kind, config FROM key_protectors ORDER BY kind",
                                            DV_SQL_NO_ARGS, error);

    if (rows == NULL)
        return FALSE;
    ret->kinds = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < dv_sql_rows_get_n_rows(rows); i++) {
        const char *kind = dv_sql_rows_get_text(rows, i, 0);
        g_ptr_array_add(ret->kinds, g_strdup(kind));
        if (g_strcmp0(kind, "recovery") == 0) {
            g_autoptr(JsonObject) config = dv_json_object_from_text(dv_sql_rows_get_text(rows, i, 1),
                                                                    NULL);
            if (config != NULL)
                ret->public_b64 = g_strdup(dv_json_get_string(config, "public_key", NULL));
        }
    }
    return TRUE;
}

static GPtrArray *
dv_keyring_copy_extra(DvKeyring *keyring)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&keyring->lock);
    GPtrArray *copy = g_ptr_array_new();

    for (guint i = 0; i < keyring->extra->len; i++)
        g_ptr_array_add(copy, g_ptr_array_index(keyring->extra, i));
    return copy;
}

/* The recovery key file, read once per load. */
typedef struct {
    gboolean given;
    DvSecret *private_key;
    char *public_b64;
    char *problem;
} DvRecoveryFile;

static void
dv_recovery_file_clear(DvRecoveryFile *r)
{
    g_clear_pointer(&r->private_key, dv_secret_free);
    g_clear_pointer(&r->public_b64, g_free);
    g_clear_pointer(&r->problem, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(DvRecoveryFile, dv_recovery_file_clear)

static void
dv_recovery_file_load(DvRecoveryFile *r, const char *path, const char *installation_public)
{
    g_autoptr(GError) error = NULL;

    if (path == NULL)
        return;
    r->given = TRUE;
    r->private_key = dv_recovery_key_load(path, &r->public_b64, &error);
    if (r->private_key == NULL) {
        r->problem = g_strdup(error->message);
    } else if (installation_public == NULL) {
        r->problem = g_strdup("this installation has no recovery key");
    } else if (g_strcmp0(installation_public, r->public_b64) != 0) {
        r->problem = g_strdup_printf("recovery key file %s belongs to another installation "
                                     "(its public key is not the one recorded here)", path);
    }
    if (r->problem != NULL)
        g_clear_pointer(&r->private_key, dv_secret_free);
}

static DvMetric dv_metric_canary_failures = DV_METRIC_COUNTER(
    "drover_key_canary_failures_total",
    "Keys a protector returned that do not open their version's canary, by protector.",
    "protector");

/* Accepts @key for @v if it opens the canary; takes @key. */
static gboolean
dv_key_version_try(DvKeyVersion *v, const char *kind, DvSecret *key, const char *failure)
{
    g_autoptr(DvSecret) owned = key;

    if (owned == NULL) {
        dv_key_version_add_result(v, kind, FALSE, failure);
        return FALSE;
    }
    if (dv_secret_get_len(owned) != DV_KEYS_DATA_KEY_LEN ||
        !dv_keys_canary_check(owned, v->id, v->canary)) {
        g_autofree char *why = g_strdup_printf("the %s protector returned a key that does not "
                                               "open the canary of %s (a key of another "
                                               "installation?)", kind, v->id);
        dv_metric_add(&dv_metric_canary_failures, 1, kind);
        /* A key problem the administrator must see (docs/METRICS.md, "Logs"). */
        g_message("key problem: %s", why);
        dv_key_version_add_result(v, kind, FALSE, why);
        return FALSE;
    }
    dv_key_version_add_result(v, kind, TRUE, NULL);
    if (v->key == NULL) {
        v->key = g_steal_pointer(&owned);
        v->via = g_strdup(kind);
    }
    return TRUE;
}

/* Tries every protector on @v (no lock held: protectors may block). */
static void
dv_keyring_open_version(DvKeyring *keyring, DvKeyVersion *v, GPtrArray *extra,
                        const DvProtectorConfig *config, const DvRecoveryFile *recovery)
{
    g_autoptr(GString) reason = g_string_new(NULL);

    {
        g_autoptr(GError) error = NULL;
        DvSecret *key = dv_host_keys_unwrap(keyring->host, v->id, &error);
        dv_key_version_try(v, "host", key, error != NULL ? error->message : NULL);
    }
    for (guint i = 0; i < extra->len; i++) {
        DvKeyProtector *p = g_ptr_array_index(extra, i);
        g_autoptr(GError) error = NULL;
        DvSecret *key = p->unwrap(p, v->id, &error);
        if (key == NULL && error == NULL)
            g_set_error_literal(&error, DV_ERROR, DV_ERROR_INTERNAL, "failed without a reason");
        dv_key_version_try(v, p->kind, key, error != NULL ? error->message : NULL);
    }
    if (config->public_b64 != NULL || recovery->given) {
        g_autoptr(GError) error = NULL;
        DvSecret *key = NULL;
        if (!recovery->given) {
            g_set_error_literal(&error, DV_ERROR, DV_ERROR_NOT_FOUND,
                                "no recovery key file given");
        } else if (recovery->problem != NULL) {
            g_set_error_literal(&error, DV_ERROR, DV_ERROR_NOT_FOUND, recovery->problem);
        } else if (v->recovery_wrapped == NULL) {
            g_set_error(&error, DV_ERROR, DV_ERROR_NOT_FOUND,
                        "key %s is not sealed to the recovery key", v->id);
        } else {
            key = dv_recovery_unseal(recovery->public_b64, recovery->private_key,
                                     v->recovery_wrapped, &error);
        }
        dv_key_version_try(v, "recovery", key, error != NULL ? error->message : NULL);
    }

    if (v->key != NULL)
        return;
    for (guint i = 0; i < v->results->len; i++) {
        DvProtectorResult *r = g_ptr_array_index(v->results, i);
        g_string_append_printf(reason, "%s%s: %s", reason->len > 0 ? "; " : "", r->kind,
                               r->reason != NULL ? r->reason : "failed");
    }
    if (reason->len == 0)
        g_string_append(reason, "no protector is configured");
    v->reason = g_string_free(g_steal_pointer(&reason), FALSE);
}

static void
dv_keyring_update_current_locked(DvKeyring *keyring)
{
    keyring->current = NULL;
    for (guint i = 0; i < keyring->versions->len; i++) {
        DvKeyVersion *v = g_ptr_array_index(keyring->versions, i);
        if (g_strcmp0(v->state, "active") == 0 &&
            (keyring->current == NULL || v->version > keyring->current->version))
            keyring->current = v;
    }
}

static gint
dv_key_version_compare(gconstpointer a, gconstpointer b)
{
    const DvKeyVersion *va = *(const DvKeyVersion *const *)a;
    const DvKeyVersion *vb = *(const DvKeyVersion *const *)b;
    return va->version < vb->version ? -1 : va->version > vb->version;
}

/* Reads key versions; opens those not seen yet and those that were pending
 * (another server may have finished making them); updates states. */
static gboolean
dv_keyring_load(DvKeyring *keyring, GError **error)
{
    g_auto(DvProtectorConfig) config = { 0 };
    g_auto(DvRecoveryFile) recovery = { 0 };
    g_autoptr(DvSqlRows) rows = NULL;
    g_autoptr(GPtrArray) fresh = g_ptr_array_new_with_free_func(dv_key_version_free);
    g_autoptr(GPtrArray) extra = dv_keyring_copy_extra(keyring);
    gboolean recovery_loaded = FALSE;
    gboolean first_load;

    {
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&keyring->lock);
        first_load = keyring->last_refresh == 0;
    }
    if (!dv_keyring_read_protectors(keyring, &config, error))
        return FALSE;
    rows = dv_db_query(dv_keyring_db(keyring),
                       "SELECT id, version, state, canary, recovery_wrapped FROM key_versions "
                       "ORDER BY version",
                       DV_SQL_NO_ARGS, error);
    if (rows == NULL)
        return FALSE;

    for (guint i = 0; i < dv_sql_rows_get_n_rows(rows); i++) {
        const char *id = dv_sql_rows_get_text(rows, i, 0);
        const char *state = dv_sql_rows_get_text(rows, i, 2);
        gboolean known;
        gboolean retry;
        {
            g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&keyring->lock);
            DvKeyVersion *old = g_hash_table_lookup(keyring->by_id, id);
            known = old != NULL;
            retry = old != NULL && old->key == NULL && g_strcmp0(old->state, "pending") == 0;
            if (old != NULL) {
                g_free(old->state);
                old->state = g_strdup(state);
                if (old->recovery_wrapped == NULL)
                    old->recovery_wrapped = g_strdup(dv_sql_rows_get_text(rows, i, 4));
            }
        }
        if (known && !retry)
            continue;
        if (!dv_keys_key_id_is_valid(id))
            continue; /* cannot be referenced by any value */
        if (!recovery_loaded) {
            /* A local drover-setup may have rewritten the host file. */
            if (!first_load)
                dv_host_keys_load(keyring->host);
            dv_recovery_file_load(&recovery, keyring->recovery_key_path, config.public_b64);
            recovery_loaded = TRUE;
        }
        {
            DvKeyVersion *v = dv_key_version_new(id, (guint)dv_sql_rows_get_int(rows, i, 1), state,
                                                 dv_sql_rows_get_text(rows, i, 3),
                                                 dv_sql_rows_get_text(rows, i, 4));
            dv_keyring_open_version(keyring, v, extra, &config, &recovery);
            g_ptr_array_add(fresh, v);
        }
    }

    {
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&keyring->lock);
        for (guint i = 0; i < fresh->len; i++) {
            DvKeyVersion *v = g_ptr_array_index(fresh, i);
            DvKeyVersion *old = g_hash_table_lookup(keyring->by_id, v->id);
            if (old != NULL) {
                /* A pending version retried: adopt the key if we got it now.
                 * The entry itself stays (others may hold pointers to it). */
                if (old->key == NULL && v->key != NULL) {
                    g_ptr_array_set_size(old->results, 0);
                    for (guint j = 0; j < v->results->len; j++) {
                        DvProtectorResult *r = g_ptr_array_index(v->results, j);
                        dv_key_version_add_result(old, r->kind, r->open, r->reason);
                    }
                    old->via = g_steal_pointer(&v->via);
                    g_clear_pointer(&old->reason, g_free);
                    old->key = g_steal_pointer(&v->key);
                }
                continue;
            }
            g_ptr_array_index(fresh, i) = NULL;
            g_ptr_array_add(keyring->versions, v);
            g_hash_table_insert(keyring->by_id, v->id, v);
        }
        g_ptr_array_sort(keyring->versions, dv_key_version_compare);
        dv_keyring_update_current_locked(keyring);
        keyring->last_refresh = g_get_monotonic_time();
    }
    return TRUE;
}

DvKeyring *
dv_keyring_open(DvStore *store, const DvKeyringOptions *opts, GError **error)
{
    g_autoptr(DvKeyring) keyring = NULL;

    g_return_val_if_fail(store != NULL, NULL);
    g_return_val_if_fail(opts != NULL, NULL);

    if (opts->state_dir == NULL || opts->state_dir[0] == '\0') {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                            "the key ring needs a state directory");
        return NULL;
    }
    dv_secret_init_library();
    keyring = g_new0(DvKeyring, 1);
    g_mutex_init(&keyring->lock);
    keyring->store = store;
    keyring->recovery_key_path = g_strdup(opts->recovery_key_path);
    keyring->host = opts->host_account_set
                        ? dv_host_keys_new_for_account(opts->state_dir, opts->machine_id_path,
                                                       opts->host_uid, opts->host_user)
                        : dv_host_keys_new(opts->state_dir, opts->machine_id_path);
    keyring->extra = g_ptr_array_new();
    keyring->versions = g_ptr_array_new_with_free_func(dv_key_version_free);
    keyring->by_id = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < opts->n_protectors; i++) {
        DvKeyProtector *p = opts->protectors[i];
        g_return_val_if_fail(p != NULL && p->kind != NULL && p->wrap != NULL && p->unwrap != NULL,
                             NULL);
        g_ptr_array_add(keyring->extra, p);
    }

    dv_host_keys_load(keyring->host);
    if (!dv_keyring_load(keyring, error))
        return NULL;
    return g_steal_pointer(&keyring);
}

void
dv_keyring_free(DvKeyring *keyring)
{
    if (keyring == NULL)
        return;
    g_hash_table_unref(keyring->by_id);
    g_ptr_array_unref(keyring->versions);
    g_ptr_array_unref(keyring->extra);
    dv_host_keys_free(keyring->host);
    g_free(keyring->recovery_key_path);
    g_mutex_clear(&keyring->lock);
    g_free(keyring);
}

gboolean
dv_keyring_refresh(DvKeyring *keyring, GError **error)
{
    return dv_keyring_load(keyring, error);
}

char *
dv_keyring_dup_current_key_id(DvKeyring *keyring)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&keyring->lock);
    return keyring->current != NULL ? g_strdup(keyring->current->id) : NULL;
}

/* --- making key versions ----------------------------------------------- */

/* Every open key (id -> DvSecret*, borrowed from the versions). */
static GHashTable *
dv_keyring_open_keys(DvKeyring *keyring)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&keyring->lock);
    GHashTable *keys = g_hash_table_new(g_str_hash, g_str_equal);

    for (guint i = 0; i < keyring->versions->len; i++) {
        DvKeyVersion *v = g_ptr_array_index(keyring->versions, i);
        if (v->key != NULL)
            g_hash_table_insert(keys, v->id, v->key);
    }
    return keys;
}

static gboolean
dv_keyring_record_protector(DvKeyring *keyring, const char *kind, JsonObject *config,
                            gboolean replace, GError **error)
{
    g_autoptr(GError) local_error = NULL;
    g_autoptr(JsonObject) record = json_object_new();
    g_autoptr(JsonObject) config_copy = json_object_new();
    g_autofree char *id = g_uuid_string_random();

    if (config != NULL) {
        g_autoptr(JsonNode) node = dv_json_node_new_object(json_object_ref(config));
        g_autoptr(JsonNode) copy = dv_json_node_deep_copy(node);
        g_clear_pointer(&config_copy, json_object_unref);
        config_copy = json_object_ref(json_node_get_object(copy));
    }
    json_object_set_string_member(record, "id", id);
    json_object_set_string_member(record, "kind", kind);
    json_object_set_object_member(record, "config", json_object_ref(config_copy));
    json_object_set_int_member(record, "created_at", dv_store_now());
    if (dv_store_insert(keyring->store, &dv_table_key_protectors, record, &local_error))
        return TRUE;
    if (!g_error_matches(local_error, DV_ERROR, DV_ERROR_CONFLICT)) {
        g_propagate_error(error, g_steal_pointer(&local_error));
        return FALSE;
    }
    if (!replace)
        return TRUE;
    {
        g_autofree char *text = dv_json_object_to_string(config_copy, FALSE);
        return dv_db_exec(dv_keyring_db(keyring), "UPDATE key_protectors SET config = ? WHERE kind = ?",
                          DV_SQL_ARGS(DV_SQL_TEXT_P(text), DV_SQL_TEXT_P(kind)), NULL, error);
    }
}

static gboolean
dv_keyring_record_host_protector(DvKeyring *keyring, GError **error)
{
    g_autoptr(JsonObject) config = json_object_new();

    json_object_set_string_member(config, "file", "keys/host.key");
    return dv_keyring_record_protector(keyring, "host", config, FALSE, error);
}

/* Makes key version N+1: pending row first (it reserves the number across
 * servers), then every protector, then active. */
static gboolean
dv_keyring_make_version(DvKeyring *keyring, char **ret_key_id, GError **error)
{
    g_auto(DvProtectorConfig) config = { 0 };
    g_autoptr(GPtrArray) extra = dv_keyring_copy_extra(keyring);
    g_autoptr(DvSqlRows) rows = NULL;
    g_autoptr(DvSecret) key = dv_secret_new_random(DV_KEYS_DATA_KEY_LEN);
    g_autoptr(JsonObject) record = json_object_new();
    g_autoptr(GHashTable) host_keys = NULL;
    g_autoptr(GError) local_error = NULL;
    g_autofree char *id = NULL;
    g_autofree char *canary = NULL;
    g_autofree char *recovery_wrapped = NULL;
    DvKeyVersion *v;
    guint version;
    gboolean ok = TRUE;

    if (!dv_keyring_read_protectors(keyring, &config, error))
        return FALSE;
    for (guint i = 0; i < config.kinds->len; i++) {
        const char *kind = g_ptr_array_index(config.kinds, i);
        gboolean have = g_strcmp0(kind, "host") == 0 || g_strcmp0(kind, "recovery") == 0;
        for (guint j = 0; !have && j < extra->len; j++)
            have = g_strcmp0(((DvKeyProtector *)g_ptr_array_index(extra, j))->kind, kind) == 0;
        if (!have) {
            g_set_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED,
                        "the %s protector is configured for this installation but not available "
                        "to this process; no key is made that it would not hold",
                        kind);
            return FALSE;
        }
    }

    rows = dv_db_query(dv_keyring_db(keyring), "SELECT MAX(version) FROM key_versions",
                       DV_SQL_NO_ARGS, error);
    if (rows == NULL)
        return FALSE;
    version = (guint)dv_sql_rows_get_int(rows, 0, 0) + 1;
    id = g_strdup_printf("k%u", version);
    canary = dv_keys_canary_new(key, id);
    if (config.public_b64 != NULL) {
        recovery_wrapped = dv_recovery_seal(config.public_b64, key, error);
        if (recovery_wrapped == NULL)
            return FALSE;
    }

    json_object_set_string_member(record, "id", id);
    json_object_set_int_member(record, "version", version);
    json_object_set_string_member(record, "state", "pending");
    json_object_set_string_member(record, "canary", canary);
    if (recovery_wrapped != NULL)
        json_object_set_string_member(record, "recovery_wrapped", recovery_wrapped);
    else
        json_object_set_null_member(record, "recovery_wrapped");
    json_object_set_int_member(record, "created_at", dv_store_now());
    json_object_set_null_member(record, "retired_at");
    if (!dv_store_insert(keyring->store, &dv_table_key_versions, record, &local_error)) {
        if (g_error_matches(local_error, DV_ERROR, DV_ERROR_CONFLICT)) {
            g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT,
                        "key version %u was made by another server at the same time; try again",
                        version);
            return FALSE;
        }
        g_propagate_error(error, g_steal_pointer(&local_error));
        return FALSE;
    }

    /* The host file gets every key open here, so it is complete afterwards. */
    host_keys = dv_keyring_open_keys(keyring);
    g_hash_table_insert(host_keys, id, key);
    ok = dv_host_keys_store(keyring->host, host_keys, &local_error);
    for (guint i = 0; ok && i < extra->len; i++) {
        DvKeyProtector *p = g_ptr_array_index(extra, i);
        ok = p->wrap(p, id, key, &local_error);
        if (ok && p->set_current != NULL)
            ok = p->set_current(p, id, &local_error);
        if (!ok && local_error == NULL)
            g_set_error_literal(&local_error, DV_ERROR, DV_ERROR_INTERNAL, "failed without a reason");
        if (!ok)
            g_prefix_error(&local_error, "%s protector: ", p->kind);
    }
    if (ok) {
        ok = dv_db_exec(dv_keyring_db(keyring),
                        "UPDATE key_versions SET state = 'active' WHERE id = ?",
                        DV_SQL_ARGS(DV_SQL_TEXT_P(id)), NULL, &local_error);
    }
    if (!ok) {
        /* Best effort: a pending row left behind is never used to seal and
         * retire_unused() retires it. */
        dv_db_exec(dv_keyring_db(keyring),
                   "DELETE FROM key_versions WHERE id = ? AND state = 'pending'",
                   DV_SQL_ARGS(DV_SQL_TEXT_P(id)), NULL, NULL);
        g_propagate_prefixed_error(error, g_steal_pointer(&local_error),
                                   "cannot protect the new key %s: ", id);
        return FALSE;
    }

    v = dv_key_version_new(id, version, "active", canary, recovery_wrapped);
    v->key = g_steal_pointer(&key);
    v->via = g_strdup("host");
    dv_key_version_add_result(v, "host", TRUE, NULL);
    for (guint i = 0; i < extra->len; i++)
        dv_key_version_add_result(v, ((DvKeyProtector *)g_ptr_array_index(extra, i))->kind, TRUE,
                                  NULL);
    if (recovery_wrapped != NULL)
        dv_key_version_add_result(v, "recovery", FALSE,
                                  "sealed to the recovery key (not opened here)");
    {
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&keyring->lock);
        g_ptr_array_add(keyring->versions, v);
        g_hash_table_insert(keyring->by_id, v->id, v);
        g_ptr_array_sort(keyring->versions, dv_key_version_compare);
        dv_keyring_update_current_locked(keyring);
    }
    if (ret_key_id != NULL)
        *ret_key_id = g_steal_pointer(&id);
    return TRUE;
}

gboolean
dv_keyring_initialize(DvKeyring *keyring, GError **error)
{
    g_autoptr(DvSqlRows) rows = NULL;
    g_autofree char *current_id = NULL;
    g_autofree char *reason = NULL;

    if (!dv_keyring_load(keyring, error))
        return FALSE;
    rows = dv_db_query(dv_keyring_db(keyring),
                       "SELECT COUNT(*) FROM key_versions WHERE state <> 'pending'",
                       DV_SQL_NO_ARGS, error);
    if (rows == NULL)
        return FALSE;
    if (dv_sql_rows_get_int(rows, 0, 0) == 0) {
        if (!dv_keyring_make_version(keyring, NULL, error))
            return FALSE;
        return dv_keyring_record_host_protector(keyring, error);
    }

    {
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&keyring->lock);
        if (keyring->current != NULL && keyring->current->key != NULL)
            return TRUE;
        if (keyring->current != NULL) {
            current_id = g_strdup(keyring->current->id);
            reason = g_strdup(keyring->current->reason);
        }
    }
    g_set_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                "key versions already exist but the current one (%s) cannot be opened here: %s; "
                "no new key is made, as it would strand the existing secrets. Restore the host "
                "key file, configure the directory protector, or open with the recovery key",
                current_id != NULL ? current_id : "none", reason != NULL ? reason : "no active version");
    return FALSE;
}

gboolean
dv_keyring_rotate(DvKeyring *keyring, char **ret_key_id, GError **error)
{
    if (!dv_keyring_load(keyring, error))
        return FALSE;
    return dv_keyring_make_version(keyring, ret_key_id, error);
}

/* --- sealing ------------------------------------------------------------- */

char *
dv_keyring_seal(DvKeyring *keyring, const char *object_type, const char *object_id,
                const char *field, const DvSecret *plaintext, GError **error)
{
    g_autoptr(GMutexLocker) locker = NULL;
    gsize len;

    g_return_val_if_fail(keyring != NULL, NULL);
    g_return_val_if_fail(plaintext != NULL, NULL);

    if (!dv_keys_check_names(object_type, object_id, field, error))
        return NULL;
    len = dv_secret_get_len(plaintext);
    if (len == 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "%s must not be empty", field);
        return NULL;
    }
    if (len > DV_KEYS_PLAINTEXT_MAX) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "%s must be at most %d bytes", field, DV_KEYS_PLAINTEXT_MAX);
        return NULL;
    }

    locker = g_mutex_locker_new(&keyring->lock);
    if (keyring->current == NULL) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_UNAVAILABLE,
                            "no key version exists yet: run drover-setup install");
        return NULL;
    }
    if (keyring->current->key == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                    "the current key %s cannot be opened here: %s", keyring->current->id,
                    keyring->current->reason);
        return NULL;
    }
    return dv_keys_seal_with(keyring->current->key, keyring->current->id, object_type, object_id,
                             field, dv_secret_get_data(plaintext), len);
}

typedef enum {
    DV_LOOKUP_OPEN,
    DV_LOOKUP_UNKNOWN,
    DV_LOOKUP_CLOSED,
} DvLookup;

/* Opens @ct, assuming the lock is NOT held; refreshes for unknown ids. */
static DvSecret *
dv_keyring_open_ct(DvKeyring *keyring, const DvCiphertext *ct, const char *object_type,
                   const char *object_id, const char *field, gboolean may_refresh, GError **error)
{
    for (guint attempt = 0; attempt < 2; attempt++) {
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&keyring->lock);
        DvKeyVersion *v = g_hash_table_lookup(keyring->by_id, ct->key_id);
        DvLookup what = v == NULL ? DV_LOOKUP_UNKNOWN : v->key == NULL ? DV_LOOKUP_CLOSED : DV_LOOKUP_OPEN;

        if (what == DV_LOOKUP_OPEN) {
            DvSecret *plain = dv_keys_open_with(v->key, ct, object_type, object_id, field);
            if (plain == NULL)
                dv_set_field_error(error, DV_ERROR_SECRET_UNREADABLE, field,
                                   "authentication failed: the value was altered or belongs to "
                                   "another object or field");
            return plain;
        }
        /* Another server may have made this key since we loaded. */
        if (attempt == 0 && may_refresh &&
            (what == DV_LOOKUP_UNKNOWN || g_strcmp0(v->state, "pending") == 0) &&
            g_get_monotonic_time() - keyring->last_refresh > DV_KEYS_REFRESH_INTERVAL) {
            g_clear_pointer(&locker, g_mutex_locker_free);
            if (!dv_keyring_load(keyring, NULL))
                g_debug("cannot re-read key versions");
            continue;
        }
        if (what == DV_LOOKUP_UNKNOWN)
            dv_set_field_error(error, DV_ERROR_SECRET_UNREADABLE, field,
                               "key %s is unknown to this installation", ct->key_id);
        else
            dv_set_field_error(error, DV_ERROR_SECRET_UNREADABLE, field,
                               "key %s cannot be opened here: %s", ct->key_id, v->reason);
        return NULL;
    }
    g_assert_not_reached();
}

DvSecret *
dv_keyring_unseal(DvKeyring *keyring, const char *object_type, const char *object_id,
                  const char *field, const char *stored, GError **error)
{
    g_autoptr(GError) local_error = NULL;
    DvCiphertext ct = { { 0 } };
    DvSecret *plain;

    g_return_val_if_fail(keyring != NULL, NULL);

    if (!dv_keys_check_names(object_type, object_id, field, error))
        return NULL;
    if (!dv_ciphertext_parse(stored, &ct, &local_error)) {
        dv_set_field_error(error, DV_ERROR_SECRET_UNREADABLE, field, "%s", local_error->message);
        return NULL;
    }
    plain = dv_keyring_open_ct(keyring, &ct, object_type, object_id, field, TRUE, error);
    dv_ciphertext_clear(&ct);
    return plain;
}

JsonObject *
dv_keyring_describe(DvKeyring *keyring, const char *object_type, const char *object_id,
                    const char *field, const char *stored)
{
    g_autoptr(JsonObject) obj = json_object_new();
    g_autoptr(GError) error = NULL;
    g_autoptr(DvSecret) plain = NULL;
    DvCiphertext ct = { { 0 } };

    if (stored == NULL) {
        json_object_set_boolean_member(obj, "set", FALSE);
        return g_steal_pointer(&obj);
    }
    json_object_set_boolean_member(obj, "set", TRUE);
    if (dv_ciphertext_parse(stored, &ct, &error)) {
        json_object_set_string_member(obj, "key_id", ct.key_id);
        if (dv_keys_check_names(object_type, object_id, field, &error))
            plain = dv_keyring_open_ct(keyring, &ct, object_type, object_id, field, TRUE, &error);
        dv_ciphertext_clear(&ct);
    } else {
        json_object_set_null_member(obj, "key_id");
    }
    json_object_set_boolean_member(obj, "readable", plain != NULL);
    if (plain == NULL)
        json_object_set_string_member(obj, "reason", error->message);
    return g_steal_pointer(&obj);
}

gboolean
dv_keyring_value_opens(DvKeyring *keyring, DvSecret *scratch, const char *object_type,
                       const char *object_id, const char *field, const char *stored,
                       char **ret_reason)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GByteArray) aad = NULL;
    DvCiphertext ct = { { 0 } };
    DvKeyVersion *v;
    gboolean ok = FALSE;
    unsigned long long plain_len = 0;

    g_return_val_if_fail(dv_secret_get_len(scratch) >= DV_KEYS_PLAINTEXT_MAX, FALSE);
    if (!dv_keys_check_names(object_type, object_id, field, &error) ||
        !dv_ciphertext_parse(stored, &ct, &error)) {
        if (ret_reason != NULL)
            *ret_reason = g_strdup(error->message);
        return FALSE;
    }
    {
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&keyring->lock);
        v = g_hash_table_lookup(keyring->by_id, ct.key_id);
        if (v == NULL) {
            g_set_error(&error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                        "key %s is unknown to this installation", ct.key_id);
        } else if (v->key == NULL) {
            g_set_error(&error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                        "key %s cannot be opened here: %s", ct.key_id, v->reason);
        } else if (ct.blob_len < DV_KEYS_NONCE_LEN + DV_KEYS_TAG_LEN + 1 ||
                   ct.blob_len - DV_KEYS_NONCE_LEN - DV_KEYS_TAG_LEN > DV_KEYS_PLAINTEXT_MAX) {
            g_set_error_literal(&error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                                "malformed value: wrong length");
        } else {
            aad = dv_keys_aad_new(object_type, object_id, field);
            ok = crypto_aead_xchacha20poly1305_ietf_decrypt(
                     dv_secret_get_data_mutable(scratch), &plain_len, NULL,
                     ct.blob + DV_KEYS_NONCE_LEN, ct.blob_len - DV_KEYS_NONCE_LEN, aad->data,
                     aad->len, ct.blob, dv_secret_get_data(v->key)) == 0;
            sodium_memzero(dv_secret_get_data_mutable(scratch), (gsize)plain_len);
            if (!ok)
                g_set_error_literal(&error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                                    "authentication failed: the value was altered or belongs to "
                                    "another object or field");
        }
    }
    dv_ciphertext_clear(&ct);
    if (!ok && ret_reason != NULL)
        *ret_reason = g_strdup(error->message);
    return ok;
}

/* --- the secrets table --------------------------------------------------- */

typedef struct {
    const char *object_type;
    const char *object_id;
    const char *field;
    const char *key_id;
    const char *value;
} DvSecretUpsert;

static gboolean
dv_keyring_upsert_txn(DvDb *db, gpointer user_data, GError **error)
{
    DvSecretUpsert *u = user_data;
    gint64 changes = 0;
    gint64 now = dv_store_now();
    g_autofree char *id = NULL;

    if (!dv_db_exec(db,
                    "UPDATE secrets SET key_id = ?, value = ?, updated_at = ? "
                    "WHERE object_type = ? AND object_id = ? AND field = ?",
                    DV_SQL_ARGS(DV_SQL_TEXT_P(u->key_id), DV_SQL_TEXT_P(u->value), DV_SQL_INT_P(now),
                                DV_SQL_TEXT_P(u->object_type), DV_SQL_TEXT_P(u->object_id),
                                DV_SQL_TEXT_P(u->field)),
                    &changes, error))
        return FALSE;
    if (changes > 0)
        return TRUE;
    id = g_uuid_string_random();
    return dv_db_exec(db,
                      "INSERT INTO secrets (id, object_type, object_id, field, key_id, value, "
                      "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      DV_SQL_ARGS(DV_SQL_TEXT_P(id), DV_SQL_TEXT_P(u->object_type),
                                  DV_SQL_TEXT_P(u->object_id), DV_SQL_TEXT_P(u->field),
                                  DV_SQL_TEXT_P(u->key_id), DV_SQL_TEXT_P(u->value),
                                  DV_SQL_INT_P(now)),
                      NULL, error);
}

gboolean
dv_keyring_store_secret(DvKeyring *keyring, DvStore *store, const char *object_type,
                        const char *object_id, const char *field, const DvSecret *plaintext,
                        GError **error)
{
    g_autofree char *value = dv_keyring_seal(keyring, object_type, object_id, field, plaintext, error);
    DvCiphertext ct = { { 0 } };
    DvSecretUpsert u = { object_type, object_id, field, NULL, value };
    gboolean ok;

    if (value == NULL)
        return FALSE;
    if (!dv_ciphertext_parse(value, &ct, error))
        return FALSE;
    u.key_id = ct.key_id;
    ok = dv_db_transaction(dv_store_get_db(store), dv_keyring_upsert_txn, &u, error);
    dv_ciphertext_clear(&ct);
    return ok;
}

DvSecret *
dv_keyring_load_secret(DvKeyring *keyring, DvStore *store, const char *object_type,
                       const char *object_id, const char *field, GError **error)
{
    g_autoptr(DvSqlRows) rows = NULL;
    DvSecret *plain;

    rows = dv_db_query(dv_store_get_db(store),
                       "SELECT value FROM secrets WHERE object_type = ? AND object_id = ? AND field = ?",
                       DV_SQL_ARGS(DV_SQL_TEXT_P(object_type), DV_SQL_TEXT_P(object_id),
                                   DV_SQL_TEXT_P(field)),
                       error);
    if (rows == NULL)
        return NULL;
    if (dv_sql_rows_get_n_rows(rows) == 0) {
        dv_set_field_error(error, DV_ERROR_NOT_FOUND, field, "%s of %s %s is not set", field,
                           object_type, object_id);
        return NULL;
    }
    plain = dv_keyring_unseal(keyring, object_type, object_id, field,
                              dv_sql_rows_get_text(rows, 0, 0), error);
    if (plain == NULL)
        g_prefix_error(error, "%s of %s %s cannot be read: ", field, object_type, object_id);
    return plain;
}

JsonObject *
dv_keyring_describe_object(DvKeyring *keyring, DvStore *store, const char *object_type,
                           const char *object_id, GError **error)
{
    g_autoptr(DvSqlRows) rows = NULL;
    g_autoptr(JsonObject) obj = json_object_new();

    rows = dv_db_query(dv_store_get_db(store),
                       "SELECT field, value FROM secrets WHERE object_type = ? AND object_id = ? "
                       "ORDER BY field",
                       DV_SQL_ARGS(DV_SQL_TEXT_P(object_type), DV_SQL_TEXT_P(object_id)), error);
    if (rows == NULL)
        return NULL;
    for (guint i = 0; i < dv_sql_rows_get_n_rows(rows); i++) {
        const char *field = dv_sql_rows_get_text(rows, i, 0);
        json_object_set_object_member(obj, field,
                                      dv_keyring_describe(keyring, object_type, object_id, field,
                                                          dv_sql_rows_get_text(rows, i, 1)));
    }
    return g_steal_pointer(&obj);
}

gboolean
dv_keyring_delete_secret(DvKeyring *keyring, DvStore *store, const char *object_type,
                         const char *object_id, const char *field, GError **error)
{
    return dv_db_exec(dv_store_get_db(store),
                      "DELETE FROM secrets WHERE object_type = ? AND object_id = ? AND field = ?",
                      DV_SQL_ARGS(DV_SQL_TEXT_P(object_type), DV_SQL_TEXT_P(object_id),
                                  DV_SQL_TEXT_P(field)),
                      NULL, error);
}

gboolean
dv_keyring_delete_object_secrets(DvKeyring *keyring, DvStore *store, const char *object_type,
                                 const char *object_id, GError **error)
{
    return dv_db_exec(dv_store_get_db(store),
                      "DELETE FROM secrets WHERE object_type = ? AND object_id = ?",
                      DV_SQL_ARGS(DV_SQL_TEXT_P(object_type), DV_SQL_TEXT_P(object_id)), NULL,
                      error);
}

/* --- administration -------------------------------------------------------- */

JsonArray *
dv_keyring_check(DvKeyring *keyring, GError **error)
{
    g_autoptr(DvSqlRows) counts = NULL;
    g_autoptr(GHashTable) by_key = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(JsonArray) out = json_array_new();
    g_autoptr(GMutexLocker) locker = NULL;

    counts = dv_db_query(dv_keyring_db(keyring),
                         "SELECT key_id, COUNT(*) FROM secrets GROUP BY key_id ORDER BY key_id",
                         DV_SQL_NO_ARGS, error);
    if (counts == NULL)
        return NULL;
    for (guint i = 0; i < dv_sql_rows_get_n_rows(counts); i++)
        g_hash_table_insert(by_key, (gpointer)dv_sql_rows_get_text(counts, i, 0),
                            GUINT_TO_POINTER(i + 1));

    locker = g_mutex_locker_new(&keyring->lock);
    for (guint i = 0; i < keyring->versions->len; i++) {
        DvKeyVersion *v = g_ptr_array_index(keyring->versions, i);
        g_autoptr(JsonObject) o = json_object_new();
        g_autoptr(JsonArray) prots = json_array_new();
        guint row = GPOINTER_TO_UINT(g_hash_table_lookup(by_key, v->id));

        json_object_set_string_member(o, "key_id", v->id);
        json_object_set_int_member(o, "version", v->version);
        json_object_set_string_member(o, "state", v->state);
        json_object_set_boolean_member(o, "current", v == keyring->current);
        json_object_set_boolean_member(o, "open", v->key != NULL);
        if (v->via != NULL)
            json_object_set_string_member(o, "via", v->via);
        else
            json_object_set_null_member(o, "via");
        if (v->key == NULL) {
            g_autofree char *reason = g_strdup_printf("no protector could open key %s: %s", v->id,
                                                      v->reason);
            json_object_set_string_member(o, "reason", reason);
        } else {
            json_object_set_null_member(o, "reason");
        }
        json_object_set_int_member(o, "secrets",
                                   row > 0 ? dv_sql_rows_get_int(counts, row - 1, 1) : 0);
        for (guint j = 0; j < v->results->len; j++) {
            DvProtectorResult *r = g_ptr_array_index(v->results, j);
            JsonObject *p = json_object_new();
            json_object_set_string_member(p, "kind", r->kind);
            json_object_set_boolean_member(p, "open", r->open);
            if (r->reason != NULL)
                json_object_set_string_member(p, "reason", r->reason);
            else
                json_object_set_null_member(p, "reason");
            json_array_add_object_element(prots, p);
        }
        json_object_set_array_member(o, "protectors", g_steal_pointer(&prots));
        json_array_add_object_element(out, g_steal_pointer(&o));
        g_hash_table_remove(by_key, v->id);
    }
    /* Secrets under a key id no key version has (forged or from another
     * installation): they are reported too. */
    for (guint i = 0; i < dv_sql_rows_get_n_rows(counts); i++) {
        const char *key_id = dv_sql_rows_get_text(counts, i, 0);
        g_autoptr(JsonObject) o = NULL;
        g_autofree char *reason = NULL;

        if (!g_hash_table_contains(by_key, key_id))
            continue;
        o = json_object_new();
        reason = g_strdup_printf("key %s is unknown to this installation", key_id);
        json_object_set_string_member(o, "key_id", key_id);
        json_object_set_null_member(o, "version");
        json_object_set_string_member(o, "state", "unknown");
        json_object_set_boolean_member(o, "current", FALSE);
        json_object_set_boolean_member(o, "open", FALSE);
        json_object_set_null_member(o, "via");
        json_object_set_string_member(o, "reason", reason);
        json_object_set_int_member(o, "secrets", dv_sql_rows_get_int(counts, i, 1));
        json_object_set_array_member(o, "protectors", json_array_new());
        json_array_add_object_element(out, g_steal_pointer(&o));
    }
    return g_steal_pointer(&out);
}

typedef struct {
    const char *public_b64;
    GPtrArray *ids;     /* char* */
    GPtrArray *wrapped; /* char* */
} DvRecoveryTxn;

static gboolean
dv_keyring_recovery_txn(DvDb *db, gpointer user_data, GError **error)
{
    DvRecoveryTxn *t = user_data;
    g_autofree char *id = g_uuid_string_random();
    g_autofree char *config = NULL;
    g_autoptr(JsonObject) obj = json_object_new();

    json_object_set_string_member(obj, "public_key", t->public_b64);
    config = dv_json_object_to_string(obj, FALSE);
    if (!dv_db_exec(db,
                    "INSERT INTO key_protectors (id, kind, config, created_at) VALUES (?, ?, ?, ?)",
                    DV_SQL_ARGS(DV_SQL_TEXT_P(id), DV_SQL_TEXT_P("recovery"), DV_SQL_TEXT_P(config),
                                DV_SQL_INT_P(dv_store_now())),
                    NULL, error))
        return FALSE;
    for (guint i = 0; i < t->ids->len; i++) {
        if (!dv_db_exec(db, "UPDATE key_versions SET recovery_wrapped = ? WHERE id = ?",
                        DV_SQL_ARGS(DV_SQL_TEXT_P(g_ptr_array_index(t->wrapped, i)),
                                    DV_SQL_TEXT_P(g_ptr_array_index(t->ids, i))),
                        NULL, error))
            return FALSE;
    }
    return TRUE;
}

gboolean
dv_keyring_recovery_create(DvKeyring *keyring, const char *out_path, GError **error)
{
    g_auto(DvProtectorConfig) config = { 0 };
    g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) wrapped = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *public_b64 = NULL;
    DvRecoveryTxn t;

    g_return_val_if_fail(out_path != NULL, FALSE);

    if (!dv_keyring_read_protectors(keyring, &config, error))
        return FALSE;
    for (guint i = 0; i < config.kinds->len; i++) {
        if (g_strcmp0(g_ptr_array_index(config.kinds, i), "recovery") == 0) {
            g_set_error_literal(error, DV_ERROR, DV_ERROR_CONFLICT,
                                "this installation already has a recovery key");
            return FALSE;
        }
    }
    public_b64 = dv_recovery_key_create(out_path, error);
    if (public_b64 == NULL)
        return FALSE;
    {
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&keyring->lock);
        for (guint i = 0; i < keyring->versions->len; i++) {
            DvKeyVersion *v = g_ptr_array_index(keyring->versions, i);
            char *w;
            if (v->key == NULL)
                continue;
            w = dv_recovery_seal(public_b64, v->key, error);
            if (w == NULL) {
                g_unlink(out_path);
                return FALSE;
            }
            g_ptr_array_add(ids, g_strdup(v->id));
            g_ptr_array_add(wrapped, w);
        }
    }
    t = (DvRecoveryTxn){ public_b64, ids, wrapped };
    if (!dv_db_transaction(dv_keyring_db(keyring), dv_keyring_recovery_txn, &t, error)) {
        /* The file opens nothing that was recorded: remove it. */
        g_unlink(out_path);
        return FALSE;
    }
    {
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&keyring->lock);
        for (guint i = 0; i < ids->len; i++) {
            DvKeyVersion *v = g_hash_table_lookup(keyring->by_id, g_ptr_array_index(ids, i));
            g_free(v->recovery_wrapped);
            v->recovery_wrapped = g_strdup(g_ptr_array_index(wrapped, i));
        }
    }
    return TRUE;
}

gboolean
dv_keyring_add_protector(DvKeyring *keyring, DvKeyProtector *protector, JsonObject *config,
                         GError **error)
{
    g_autoptr(GHashTable) keys = dv_keyring_open_keys(keyring);
    g_autofree char *current_id = dv_keyring_dup_current_key_id(keyring);
    GHashTableIter iter;
    gpointer k, v;

    g_return_val_if_fail(protector != NULL && protector->kind != NULL && protector->wrap != NULL &&
                             protector->unwrap != NULL,
                         FALSE);
    if (g_strcmp0(protector->kind, "host") == 0 || g_strcmp0(protector->kind, "recovery") == 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                    "'%s' is a built-in protector kind", protector->kind);
        return FALSE;
    }
    g_hash_table_iter_init(&iter, keys);
    while (g_hash_table_iter_next(&iter, &k, &v)) {
        if (!protector->wrap(protector, k, v, error)) {
            g_prefix_error(error, "%s protector cannot store key %s: ", protector->kind,
                           (const char *)k);
            return FALSE;
        }
    }
    if (current_id != NULL && protector->set_current != NULL &&
        !protector->set_current(protector, current_id, error))
        return FALSE;
    if (!dv_keyring_record_protector(keyring, protector->kind, config, TRUE, error))
        return FALSE;
    {
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&keyring->lock);
        if (!g_ptr_array_find(keyring->extra, protector, NULL))
            g_ptr_array_add(keyring->extra, protector);
    }
    return TRUE;
}

gboolean
dv_keyring_protect_with_host(DvKeyring *keyring, GError **error)
{
    g_autoptr(GHashTable) keys = dv_keyring_open_keys(keyring);

    if (g_hash_table_size(keys) == 0) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                            "no key version is open here: nothing to protect");
        return FALSE;
    }
    if (!dv_host_keys_store(keyring->host, keys, error))
        return FALSE;
    return dv_keyring_record_host_protector(keyring, error);
}

gboolean
dv_keyring_rekey_batch(DvKeyring *keyring, guint batch_size, guint *ret_done,
                       guint *ret_remaining, guint *ret_skipped, GError **error)
{
    g_autoptr(GPtrArray) old_ids = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GString) in_list = g_string_new(NULL);
    g_autoptr(GArray) params = g_array_new(FALSE, TRUE, sizeof(DvSqlParam));
    g_autofree char *current_id = NULL;
    g_autofree char *current_prefix = NULL;
    g_autofree char *cursor = g_strdup("");
    guint done = 0;
    guint failed = 0;
    gint64 remaining = 0;
    gint64 not_current = 0;

    if (batch_size == 0 || batch_size > DV_KEYS_REKEY_MAX) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "batch_size",
                           "batch_size must be 1-%d", DV_KEYS_REKEY_MAX);
        return FALSE;
    }
    if (!dv_keyring_load(keyring, error))
        return FALSE;
    {
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&keyring->lock);
        if (keyring->current == NULL) {
            g_set_error_literal(error, DV_ERROR, DV_ERROR_UNAVAILABLE,
                                "no key version exists yet: run drover-setup install");
            return FALSE;
        }
        if (keyring->current->key == NULL) {
            g_set_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                        "the current key %s cannot be opened here: %s", keyring->current->id,
                        keyring->current->reason);
            return FALSE;
        }
        current_id = g_strdup(keyring->current->id);
        current_prefix = g_strdup_printf("dv1.%s.", current_id);
        for (guint i = 0; i < keyring->versions->len; i++) {
            DvKeyVersion *v = g_ptr_array_index(keyring->versions, i);
            if (v->key != NULL && v != keyring->current)
                g_ptr_array_add(old_ids, g_strdup(v->id));
        }
    }

    for (guint i = 0; i < old_ids->len; i++) {
        DvSqlParam p = DV_SQL_TEXT_P(g_ptr_array_index(old_ids, i));
        g_string_append(in_list, i > 0 ? ", ?" : "?");
        g_array_append_val(params, p);
    }

    while (old_ids->len > 0 && done < batch_size) {
        g_autofree char *sql = g_strdup_printf(
            "SELECT id, object_type, object_id, field, value FROM secrets "
            "WHERE key_id IN (%s) AND id > ? ORDER BY id LIMIT %d",
            in_list->str, DV_KEYS_REKEY_PAGE);
        g_autoptr(DvSqlRows) rows = NULL;
        DvSqlParam cursor_param = DV_SQL_TEXT_P(cursor);
        guint n;

        g_array_append_val(params, cursor_param);
        rows = dv_db_query(dv_keyring_db(keyring), sql, (const DvSqlParam *)params->data,
                           params->len, error);
        g_array_set_size(params, params->len - 1);
        if (rows == NULL)
            return FALSE;
        n = dv_sql_rows_get_n_rows(rows);
        if (n == 0)
            break;
        for (guint i = 0; i < n && done < batch_size; i++) {
            const char *row_id = dv_sql_rows_get_text(rows, i, 0);
            const char *object_type = dv_sql_rows_get_text(rows, i, 1);
            const char *object_id = dv_sql_rows_get_text(rows, i, 2);
            const char *field = dv_sql_rows_get_text(rows, i, 3);
            const char *value = dv_sql_rows_get_text(rows, i, 4);
            g_autoptr(DvSecret) plain = NULL;
            g_autofree char *sealed = NULL;
            gint64 changes = 0;

            g_free(cursor);
            cursor = g_strdup(row_id);
            plain = dv_keyring_unseal(keyring, object_type, object_id, field, value, NULL);
            if (plain == NULL) {
                failed++;
                continue;
            }
            sealed = dv_keyring_seal(keyring, object_type, object_id, field, plain, NULL);
            if (sealed == NULL || !g_str_has_prefix(sealed, current_prefix)) {
                /* Rotated again meanwhile: stop; the next call continues. */
                break;
            }
            /* Compare-and-swap: a value written meanwhile is left alone. */
            if (!dv_db_exec(dv_keyring_db(keyring),
                            "UPDATE secrets SET key_id = ?, value = ?, updated_at = ? "
                            "WHERE id = ? AND value = ?",
                            DV_SQL_ARGS(DV_SQL_TEXT_P(current_id), DV_SQL_TEXT_P(sealed),
                                        DV_SQL_INT_P(dv_store_now()), DV_SQL_TEXT_P(row_id),
                                        DV_SQL_TEXT_P(value)),
                            &changes, error))
                return FALSE;
            if (changes > 0)
                done++;
        }
        if (n < DV_KEYS_REKEY_PAGE && done < batch_size)
            break;
    }

    if (old_ids->len > 0) {
        g_autofree char *sql = g_strdup_printf("SELECT COUNT(*) FROM secrets WHERE key_id IN (%s)",
                                               in_list->str);
        g_autoptr(DvSqlRows) rows = dv_db_query(dv_keyring_db(keyring), sql,
                                                (const DvSqlParam *)params->data, params->len,
                                                error);
        if (rows == NULL)
            return FALSE;
        remaining = dv_sql_rows_get_int(rows, 0, 0) - failed;
        if (remaining < 0)
            remaining = 0;
    }
    {
        g_autoptr(DvSqlRows) rows = dv_db_query(dv_keyring_db(keyring),
                                                "SELECT COUNT(*) FROM secrets WHERE key_id <> ?",
                                                DV_SQL_ARGS(DV_SQL_TEXT_P(current_id)), error);
        if (rows == NULL)
            return FALSE;
        not_current = dv_sql_rows_get_int(rows, 0, 0);
    }
    if (ret_done != NULL)
        *ret_done = done;
    if (ret_remaining != NULL)
        *ret_remaining = (guint)remaining;
    if (ret_skipped != NULL)
        *ret_skipped = (guint)MAX(not_current - remaining, 0);
    return TRUE;
}

gboolean
dv_keyring_retire_unused(DvKeyring *keyring, guint *ret_retired, GError **error)
{
    gint64 changes = 0;

    /* Versions above the newest active one are being made right now by
     * another server: left alone. */
    if (!dv_db_exec(dv_keyring_db(keyring),
                    "UPDATE key_versions SET state = 'retired', retired_at = ? "
                    "WHERE state <> 'retired' "
                    "AND version < (SELECT MAX(k.version) FROM key_versions k WHERE k.state = 'active') "
                    "AND NOT EXISTS (SELECT 1 FROM secrets s WHERE s.key_id = key_versions.id)",
                    DV_SQL_ARGS(DV_SQL_INT_P(dv_store_now())), &changes, error))
        return FALSE;
    if (!dv_keyring_load(keyring, error))
        return FALSE;
    if (ret_retired != NULL)
        *ret_retired = (guint)changes;
    return TRUE;
}
