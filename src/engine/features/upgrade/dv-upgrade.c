#define G_LOG_DOMAIN "DvUpgrade"

/* drover-setup upgrade: the plan and the upgrade (see dv-upgrade.h and
 * docs/UPGRADE.md).
 *
 * Two key rings answer the plan's key question without writing anything:
 *   service  what the new droverd will hold: the host key file of the new
 *            service account on this machine, and the directory as the new
 *            service identity.  A key it opens is "preserved".
 *   admin    what the administrator running the upgrade holds besides: the
 *            host key file of the previous account (root reads it; it opens
 *            only on the machine it was made on), the directory as the
 *            previous identity, the recovery key.  A key only it opens is
 *            "rewrap": the upgrade writes it into the new account's host
 *            key file.
 * Anything else is "lost".  Each secret is then opened (into guarded memory,
 * discarded) with the key ring that holds its key, so the prediction is per
 * secret, and the upgrade checks afterwards, secret by secret, that the new
 * service opens exactly the secrets the plan said it would. */

#include "dv-config.h"
#include "dv-engine-directory.h"
#include "dv-core-types.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-keys.h"
#include "dv-secret.h"
#include "dv-upgrade.h"
#include "dv-version.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DV_UPGRADE_REENTRY_MAX 10000 /* objects listed in a plan; the counts are complete */
#define DV_UPGRADE_SERVER_STALE_US (60 * G_USEC_PER_SEC)

typedef DvKeyProtector DvUpgradeProtector;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvUpgradeProtector, dv_key_protector_free)

typedef struct {
    const DvUpgradeOptions *o;
    char *location;
    char *state_dir;
    DvStore *store;
    guint from_schema;
    guint to_schema;
    char *installation_id;
    /* the new service identity */
    guint uid;
    char *user;
    DvDirectorySettings *old_dir;     /* <state_dir>/directory.conf, NULL when none */
    DvDirectorySettings *service_dir_settings;
    DvKeyProtector *service_dir;      /* as the new identity */
    DvKeyProtector *admin_dir;        /* as the previous identity, when it differs */
    DvKeyProtector *directory_admin;  /* as the directory administrator (--admin-dn) */
    DvKeyProtector *previous_host;    /* the previous account's host key file */
    char *previous_user;
    guint previous_uid;
    DvKeyring *service_ring;
    DvKeyring *admin_ring;
    GHashTable *key_verdicts;         /* key id -> "preserved" | "rewrap" | "lost" */
    GHashTable *predictions;          /* secret id -> "preserved" | "rewrap" | "lost" */
    JsonObject *plan;
} DvUpgradeCtx;

static void
dv_upgrade_ctx_free(DvUpgradeCtx *c)
{
    if (c == NULL)
        return;
    /* Key rings borrow the protectors and the store: free them first. */
    dv_keyring_free(c->service_ring);
    dv_keyring_free(c->admin_ring);
    dv_key_protector_free(c->service_dir);
    dv_key_protector_free(c->admin_dir);
    dv_key_protector_free(c->directory_admin);
    dv_key_protector_free(c->previous_host);
    dv_directory_settings_free(c->old_dir);
    dv_directory_settings_free(c->service_dir_settings);
    dv_store_free(c->store);
    g_free(c->location);
    g_free(c->state_dir);
    g_free(c->installation_id);
    g_free(c->user);
    g_free(c->previous_user);
    if (c->key_verdicts != NULL)
        g_hash_table_unref(c->key_verdicts);
    if (c->predictions != NULL)
        g_hash_table_unref(c->predictions);
    if (c->plan != NULL)
        json_object_unref(c->plan);
    g_free(c);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvUpgradeCtx, dv_upgrade_ctx_free)

static char *
dv_upgrade_location(const DvUpgradeOptions *o)
{
    if (o->database != NULL)
        return g_strdup(o->database);
    return g_build_filename(o->state_dir, "drover.db", NULL);
}

static gboolean
dv_upgrade_is_pg(const char *location)
{
    return g_str_has_prefix(location, "postgresql://") || g_str_has_prefix(location, "postgres://");
}

/* --- the service account --------------------------------------------- */

static char *
dv_upgrade_config_account(const DvUpgradeOptions *o)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    const char *path = o->config_path != NULL ? o->config_path : "/etc/drover/droverd.conf";

    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, NULL))
        return NULL;
    return g_key_file_get_string(kf, "server", "service_account", NULL);
}

static gboolean
dv_upgrade_resolve_account(DvUpgradeCtx *c, GError **error)
{
    g_autofree char *from_config = NULL;
    const char *name = c->o->service_account;
    struct passwd pw;
    struct passwd *result = NULL;
    char buf[4096];

    if (name == NULL)
        name = from_config = dv_upgrade_config_account(c->o);
    if (name == NULL) {
        if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &result) != 0 || result == NULL) {
            g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND,
                        "the calling uid %u has no account name; give --service-account",
                        (guint)geteuid());
            return FALSE;
        }
        c->uid = (guint)pw.pw_uid;
        c->user = g_strdup(pw.pw_name);
        return TRUE;
    }
    if (name[0] == '\0' || strlen(name) > 64) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "service-account",
                           "service-account: must be a local account name of 1-64 characters");
        return FALSE;
    }
    if (getpwnam_r(name, &pw, buf, sizeof(buf), &result) != 0 || result == NULL) {
        dv_set_field_error(error, DV_ERROR_NOT_FOUND, "service-account",
                           "service-account: no local account named '%s' exists on this machine; "
                           "create it first (useradd --system %s) or name another",
                           name, name);
        return FALSE;
    }
    c->uid = (guint)pw.pw_uid;
    c->user = g_strdup(pw.pw_name);
    return TRUE;
}

/* --- protectors --------------------------------------------------------- */

static gboolean
dv_upgrade_setup_directory(DvUpgradeCtx *c, GError **error)
{
    const DvUpgradeOptions *o = c->o;
    g_autofree char *conf = dv_directory_settings_path(c->state_dir);

    if (g_file_test(conf, G_FILE_TEST_EXISTS)) {
        c->old_dir = dv_directory_settings_load(conf, error);
        if (c->old_dir == NULL)
            return FALSE;
    }
    if ((o->service_dn == NULL) != (o->service_password_file == NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT,
                           o->service_dn == NULL ? "service-dn" : "service-password-file",
                           "--service-dn and --service-password-file go together");
        return FALSE;
    }
    if ((o->ldap_uri == NULL) != (o->container == NULL) && c->old_dir == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT,
                           o->ldap_uri == NULL ? "ldap-uri" : "container",
                           "the directory protector needs --ldap-uri and --container");
        return FALSE;
    }
    if (c->old_dir == NULL && o->ldap_uri == NULL)
        return TRUE; /* no directory protector, before or after */
    if (c->old_dir != NULL)
        c->service_dir_settings = dv_directory_settings_copy_with(
            c->old_dir, o->ldap_uri, o->container, o->service_dn, o->service_password_file,
            o->ca_file);
    else
        c->service_dir_settings = dv_directory_settings_new(
            o->ldap_uri, o->container, o->service_dn, o->service_password_file, FALSE, o->ca_file,
            NULL, NULL);
    if (dv_directory_settings_get_bind_dn(c->service_dir_settings) == NULL &&
        c->old_dir == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "service-dn",
                           "the directory protector needs the service identity: --service-dn "
                           "and --service-password-file");
        return FALSE;
    }
    if (c->installation_id == NULL) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_NOT_FOUND,
                            "the database has no installation id, so its directory keys "
                            "cannot be named");
        return FALSE;
    }
    c->service_dir = dv_directory_settings_protector(c->service_dir_settings, c->installation_id,
                                                     error);
    if (c->service_dir == NULL)
        return FALSE;
    /* The directory administrator, when given. */
    if ((o->admin_dn == NULL) != (o->admin_password_file == NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT,
                           o->admin_dn == NULL ? "admin-dn" : "admin-password-file",
                           "--admin-dn and --admin-password-file go together");
        return FALSE;
    }
    if (o->admin_dn != NULL) {
        g_autoptr(DvDirectorySettings) as = dv_directory_settings_copy_with(
            c->service_dir_settings, NULL, NULL, o->admin_dn, o->admin_password_file, NULL);
        c->directory_admin = dv_directory_settings_protector(as, c->installation_id, error);
        if (c->directory_admin == NULL)
            return FALSE;
        /* Its own kind, so the plan can say through whom a key opens. */
        c->directory_admin->kind = "directory-admin";
    }
    /* The previous identity, if the administrator still has its settings. */
    if (c->old_dir != NULL && o->service_dn != NULL &&
        g_strcmp0(o->service_dn, dv_directory_settings_get_bind_dn(c->old_dir)) != 0) {
        g_autoptr(GError) local = NULL;
        c->admin_dir = dv_directory_settings_protector(c->old_dir, c->installation_id, &local);
        if (c->admin_dir == NULL)
            g_debug("previous directory identity unusable: %s", local->message);
    }
    return TRUE;
}

static void
dv_upgrade_setup_previous_host(DvUpgradeCtx *c)
{
    g_autoptr(GError) local = NULL;
    g_autofree char *user = NULL;
    guint uid = 0;

    if (!dv_host_keys_read_account(c->state_dir, &uid, &user, &local))
        return;
    if (uid == c->uid && g_strcmp0(user, c->user) == 0)
        return; /* the same account: the service ring reads it */
    c->previous_uid = uid;
    c->previous_user = g_steal_pointer(&user);
    c->previous_host = dv_host_file_protector_new(c->state_dir, c->o->machine_id_path, uid,
                                                  c->previous_user);
}

/* Options for a keyring of the new service account's host key file; the
 * caller adds its protectors. */
static DvKeyringOptions
dv_upgrade_ring_options(DvUpgradeCtx *c)
{
    DvKeyringOptions o = {
        .state_dir = c->state_dir,
        .machine_id_path = c->o->machine_id_path,
        .host_account_set = TRUE,
        .host_uid = c->uid,
        .host_user = c->user,
    };
    return o;
}

/* The protectors besides the service's own that may open the keys: the
 * previous account's host key file, the previous identity and the
 * directory administrator, those this upgrade has, in that order.
 * Writes at most DV_UPGRADE_N_ADMIN into @out; returns how many. */
#define DV_UPGRADE_N_ADMIN 3
static guint
dv_upgrade_admin_protectors(DvUpgradeCtx *c, DvKeyProtector **out)
{
    guint n = 0;
    if (c->previous_host != NULL)
        out[n++] = c->previous_host;
    if (c->admin_dir != NULL)
        out[n++] = c->admin_dir;
    if (c->directory_admin != NULL)
        out[n++] = c->directory_admin;
    return n;
}

static gboolean
dv_upgrade_open_rings(DvUpgradeCtx *c, GError **error)
{
    DvKeyProtector *admin[DV_UPGRADE_N_ADMIN];
    guint n_admin = dv_upgrade_admin_protectors(c, admin);
    DvKeyringOptions so = dv_upgrade_ring_options(c);
    DvKeyringOptions ao;

    so.protectors = c->service_dir != NULL ? &c->service_dir : NULL;
    so.n_protectors = c->service_dir != NULL ? 1 : 0;
    ao = so;
    c->service_ring = dv_keyring_open(c->store, &so, error);
    if (c->service_ring == NULL)
        return FALSE;
    ao.protectors = admin;
    ao.n_protectors = n_admin;
    ao.recovery_key_path = c->o->recovery_key_path;
    c->admin_ring = dv_keyring_open(c->store, &ao, error);
    return c->admin_ring != NULL;
}

/* --- small SQL helpers -------------------------------------------------- */

static DvSqlRows *
dv_upgrade_query(DvUpgradeCtx *c, const char *sql, GError **error)
{
    return dv_db_query(dv_store_get_db(c->store), sql, DV_SQL_NO_ARGS, error);
}

/* id -> display name for the tables whose rows hold secrets. */
static GHashTable *
dv_upgrade_names(DvUpgradeCtx *c, GError **error)
{
    static const struct {
        const char *type;
        const char *sql;
    } tables[] = {
        { "run-as", "SELECT id, name FROM run_as_accounts" },
        { "guest-os-profile", "SELECT id, name FROM guest_os_profiles" },
        { "setting", "SELECT id, scope || '/' || name FROM app_settings" },
    };
    g_autoptr(GHashTable) names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

    for (guint t = 0; t < G_N_ELEMENTS(tables); t++) {
        g_autoptr(DvSqlRows) rows = dv_upgrade_query(c, tables[t].sql, error);
        if (rows == NULL)
            return NULL;
        for (guint r = 0; r < dv_sql_rows_get_n_rows(rows); r++)
            g_hash_table_insert(names,
                                g_strdup_printf("%s/%s", tables[t].type,
                                                dv_sql_rows_get_text(rows, r, 0)),
                                g_strdup(dv_sql_rows_get_text(rows, r, 1)));
    }
    return g_steal_pointer(&names);
}

/* --- key verdicts ------------------------------------------------------- */

static const char *
dv_upgrade_via_label(const char *via, gboolean admin)
{
    if (g_strcmp0(via, "previous-host") == 0)
        return "previous-host";
    if (g_strcmp0(via, "recovery") == 0)
        return "recovery";
    if (g_strcmp0(via, "directory-admin") == 0)
        return "directory-admin";
    if (g_strcmp0(via, "directory") == 0)
        return admin ? "previous-directory-identity" : "directory";
    return via;
}

static JsonArray *
dv_upgrade_key_verdicts(DvUpgradeCtx *c, GError **error)
{
    g_autoptr(JsonArray) service = dv_keyring_check(c->service_ring, error);
    g_autoptr(JsonArray) admin = NULL;
    g_autoptr(JsonArray) out = json_array_new();

    if (service == NULL)
        return NULL;
    admin = dv_keyring_check(c->admin_ring, error);
    if (admin == NULL)
        return NULL;
    for (guint i = 0; i < json_array_get_length(service); i++) {
        JsonObject *s = json_array_get_object_element(service, i);
        JsonObject *a = i < json_array_get_length(admin) ? json_array_get_object_element(admin, i)
                                                         : NULL;
        const char *key_id = dv_json_get_string(s, "key_id", "");
        g_autoptr(JsonObject) v = json_object_new();
        const char *verdict;
        const char *via = NULL;
        g_autofree char *reason = NULL;

        if (dv_json_get_bool(s, "open", FALSE)) {
            verdict = "preserved";
            via = dv_upgrade_via_label(dv_json_get_string(s, "via", NULL), FALSE);
        } else if (a != NULL && dv_json_get_bool(a, "open", FALSE)) {
            verdict = "rewrap";
            via = dv_upgrade_via_label(dv_json_get_string(a, "via", NULL), TRUE);
            reason = g_strdup_printf("the new service cannot open it (%s); the administrator "
                                     "can, through %s, so the upgrade writes it into the host "
                                     "key file of %s",
                                     dv_json_get_string(s, "reason", "?"), via, c->user);
        } else {
            const char *sr = dv_json_get_string(s, "reason", "?");
            const char *ar = a != NULL ? dv_json_get_string(a, "reason", "?") : "?";
            verdict = "lost";
            if (g_strcmp0(sr, ar) == 0)
                reason = g_strdup_printf("neither the new service nor the administrator opens it: %s", sr);
            else
                reason = g_strdup_printf("new service: %s; administrator: %s", sr, ar);
        }
        json_object_set_string_member(v, "key_id", key_id);
        json_object_set_int_member(v, "version", dv_json_get_int(s, "version", 0));
        json_object_set_string_member(v, "state", dv_json_get_string(s, "state", "?"));
        json_object_set_int_member(v, "secrets", dv_json_get_int(s, "secrets", 0));
        json_object_set_string_member(v, "verdict", verdict);
        if (via != NULL)
            json_object_set_string_member(v, "via", via);
        else
            json_object_set_null_member(v, "via");
        if (reason != NULL)
            json_object_set_string_member(v, "reason", reason);
        else
            json_object_set_null_member(v, "reason");
        g_hash_table_insert(c->key_verdicts, g_strdup(key_id), (gpointer)verdict);
        json_array_add_object_element(out, g_steal_pointer(&v));
    }
    return g_steal_pointer(&out);
}

/* --- secrets -------------------------------------------------------------- */

typedef struct {
    char *object_type;
    gint64 total, preserved, rewrap, lost;
} DvKindCount;

static void
dv_kind_count_free(DvKindCount *k)
{
    g_free(k->object_type);
    g_free(k);
}

static gint
dv_upgrade_reentry_compare(gconstpointer pa, gconstpointer pb)
{
    JsonObject *a = *(JsonObject *const *)pa;
    JsonObject *b = *(JsonObject *const *)pb;
    static const char *const members[] = { "object_type", "name", "object_id", "field" };
    for (guint i = 0; i < G_N_ELEMENTS(members); i++) {
        int c = g_strcmp0(dv_json_get_string(a, members[i], ""), dv_json_get_string(b, members[i], ""));
        if (c != 0)
            return c;
    }
    return 0;
}

/* Walks every secret: its verdict (its key's, or lost when it does not open
 * with that key), counts per object kind, the objects to re-enter. */
static gboolean
dv_upgrade_secret_verdicts(DvUpgradeCtx *c, JsonObject *plan, GError **error)
{
    g_autoptr(DvSqlRows) rows = dv_upgrade_query(
        c, "SELECT id, object_type, object_id, field, key_id, value FROM secrets ORDER BY id", error);
    g_autoptr(GHashTable) names = NULL;
    g_autoptr(GHashTable) kinds = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                                        (GDestroyNotify)dv_kind_count_free);
    g_autoptr(GHashTable) lost_run_as = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(JsonArray) reentry = json_array_new();
    g_autoptr(JsonArray) kind_list = json_array_new();
    g_autoptr(JsonObject) totals = json_object_new();
    g_autoptr(GList) kind_keys = NULL;
    g_autoptr(DvSecret) scratch = dv_secret_new(DV_KEYS_PLAINTEXT_MAX);
    gint64 n_preserved = 0, n_rewrap = 0, n_lost = 0;
    guint n;

    if (rows == NULL)
        return FALSE;
    names = dv_upgrade_names(c, error);
    if (names == NULL)
        return FALSE;
    n = dv_sql_rows_get_n_rows(rows);
    for (guint r = 0; r < n; r++) {
        const char *id = dv_sql_rows_get_text(rows, r, 0);
        const char *type = dv_sql_rows_get_text(rows, r, 1);
        const char *object_id = dv_sql_rows_get_text(rows, r, 2);
        const char *field = dv_sql_rows_get_text(rows, r, 3);
        const char *key_id = dv_sql_rows_get_text(rows, r, 4);
        const char *value = dv_sql_rows_get_text(rows, r, 5);
        const char *verdict = g_hash_table_lookup(c->key_verdicts, key_id);
        g_autofree char *reason = NULL;
        DvKindCount *k = g_hash_table_lookup(kinds, type);

        if (k == NULL) {
            k = g_new0(DvKindCount, 1);
            k->object_type = g_strdup(type);
            g_hash_table_insert(kinds, k->object_type, k);
        }
        if (verdict == NULL || g_str_equal(verdict, "lost")) {
            verdict = "lost";
        } else {
            DvKeyring *ring = g_str_equal(verdict, "preserved") ? c->service_ring : c->admin_ring;
            if (!dv_keyring_value_opens(ring, scratch, type, object_id, field, value, &reason))
                verdict = "lost";
        }
        k->total++;
        if (g_str_equal(verdict, "preserved")) {
            k->preserved++;
            n_preserved++;
        } else if (g_str_equal(verdict, "rewrap")) {
            k->rewrap++;
            n_rewrap++;
        } else {
            k->lost++;
            n_lost++;
        }
        g_hash_table_insert(c->predictions, g_strdup(id), (gpointer)verdict);
        if (g_str_equal(verdict, "lost")) {
            g_autofree char *name_key = g_strdup_printf("%s/%s", type, object_id);
            if (g_str_equal(type, "run-as"))
                g_hash_table_add(lost_run_as, g_strdup(object_id));
            if (json_array_get_length(reentry) < DV_UPGRADE_REENTRY_MAX) {
                g_autoptr(JsonObject) e = json_object_new();
                const char *name = g_hash_table_lookup(names, name_key);
                json_object_set_string_member(e, "object_type", type);
                json_object_set_string_member(e, "object_id", object_id);
                if (name != NULL)
                    json_object_set_string_member(e, "name", name);
                else
                    json_object_set_null_member(e, "name");
                json_object_set_string_member(e, "field", field);
                json_object_set_string_member(e, "key_id", key_id);
                if (reason == NULL) {
                    reason = g_strdup_printf("key %s cannot be opened by the new service or the "
                                             "administrator",
                                             key_id);
                }
                json_object_set_string_member(e, "reason", reason);
                json_array_add_object_element(reentry, g_steal_pointer(&e));
            }
        }
    }
    {
        /* By kind, name and field, not by the secrets' random ids. */
        g_autoptr(GPtrArray) sorted = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
        g_autoptr(JsonArray) again = json_array_new();
        for (guint i = 0; i < json_array_get_length(reentry); i++)
            g_ptr_array_add(sorted, json_object_ref(json_array_get_object_element(reentry, i)));
        g_ptr_array_sort(sorted, dv_upgrade_reentry_compare);
        for (guint i = 0; i < sorted->len; i++)
            json_array_add_object_element(again, json_object_ref(g_ptr_array_index(sorted, i)));
        g_clear_pointer(&reentry, json_array_unref);
        reentry = g_steal_pointer(&again);
    }
    kind_keys = g_list_sort(g_hash_table_get_keys(kinds), (GCompareFunc)g_strcmp0);
    for (GList *l = kind_keys; l != NULL; l = l->next) {
        DvKindCount *k = g_hash_table_lookup(kinds, l->data);
        g_autoptr(JsonObject) e = json_object_new();
        json_object_set_string_member(e, "object_type", k->object_type);
        json_object_set_int_member(e, "secrets", k->total);
        json_object_set_int_member(e, "preserved", k->preserved);
        json_object_set_int_member(e, "rewrap", k->rewrap);
        json_object_set_int_member(e, "lost", k->lost);
        json_object_set_string_member(e, "verdict", k->lost > 0 ? "lost"
                                                   : k->rewrap > 0 ? "rewrap"
                                                                   : "preserved");
        json_array_add_object_element(kind_list, g_steal_pointer(&e));
    }
    /* Hosts hold no sealed field of their own: their credentials are their
     * Run As account's, so a host whose account loses a secret is listed. */
    {
        g_autoptr(DvSqlRows) hosts = dv_upgrade_query(
            c, "SELECT id, name, run_as_id FROM hosts WHERE run_as_id IS NOT NULL ORDER BY name",
            error);
        g_autoptr(JsonArray) affected = json_array_new();
        g_autoptr(JsonObject) e = json_object_new();
        if (hosts == NULL)
            return FALSE;
        for (guint r = 0; r < dv_sql_rows_get_n_rows(hosts); r++) {
            if (!g_hash_table_contains(lost_run_as, dv_sql_rows_get_text(hosts, r, 2)))
                continue;
            if (json_array_get_length(affected) < DV_UPGRADE_REENTRY_MAX) {
                g_autoptr(JsonObject) h = json_object_new();
                json_object_set_string_member(h, "id", dv_sql_rows_get_text(hosts, r, 0));
                json_object_set_string_member(h, "name", dv_sql_rows_get_text(hosts, r, 1));
                json_object_set_string_member(h, "run_as_id", dv_sql_rows_get_text(hosts, r, 2));
                json_array_add_object_element(affected, g_steal_pointer(&h));
            }
        }
        json_object_set_string_member(e, "object_type", "host-credentials");
        json_object_set_int_member(e, "hosts", dv_sql_rows_get_n_rows(hosts));
        json_object_set_int_member(e, "hosts_losing_credentials", json_array_get_length(affected));
        json_object_set_string_member(e, "verdict",
                                      json_array_get_length(affected) > 0 ? "lost" : "preserved");
        json_object_set_array_member(e, "hosts_to_fix", g_steal_pointer(&affected));
        json_array_add_object_element(kind_list, g_steal_pointer(&e));
    }
    json_object_set_int_member(totals, "total", n);
    json_object_set_int_member(totals, "preserved", n_preserved);
    json_object_set_int_member(totals, "rewrap", n_rewrap);
    json_object_set_int_member(totals, "lost", n_lost);
    json_object_set_object_member(plan, "secrets", g_steal_pointer(&totals));
    json_object_set_array_member(plan, "kinds", g_steal_pointer(&kind_list));
    json_object_set_array_member(plan, "reentry", g_steal_pointer(&reentry));
    return TRUE;
}

/* --- known issues --------------------------------------------------------- */

static void
dv_upgrade_add_issue(JsonArray *issues, const char *code, gboolean blocking, JsonArray *objects,
                     const char *const *options, const char *fmt, ...) G_GNUC_PRINTF(6, 7);

static void
dv_upgrade_add_issue(JsonArray *issues, const char *code, gboolean blocking, JsonArray *objects,
                     const char *const *options, const char *fmt, ...)
{
    g_autoptr(JsonObject) e = json_object_new();
    g_autofree char *message = NULL;
    va_list ap;

    va_start(ap, fmt);
    message = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    json_object_set_string_member(e, "code", code);
    json_object_set_boolean_member(e, "blocking", blocking);
    json_object_set_string_member(e, "message", message);
    if (objects != NULL)
        json_object_set_array_member(e, "objects", json_array_ref(objects));
    if (options != NULL) {
        g_autoptr(JsonArray) a = json_array_new();
        for (guint i = 0; options[i] != NULL; i++)
            json_array_add_string_element(a, options[i]);
        json_object_set_array_member(e, "options", g_steal_pointer(&a));
    }
    json_array_add_object_element(issues, g_steal_pointer(&e));
}

static gboolean
dv_upgrade_issue_jobs(DvUpgradeCtx *c, JsonArray *issues, GError **error)
{
    g_autoptr(DvSqlRows) rows = dv_upgrade_query(
        c, "SELECT id, kind, state, target_name FROM jobs WHERE state = 'queued' OR "
           "state = 'running' ORDER BY created_at, id",
        error);
    g_autoptr(JsonArray) objects = json_array_new();
    guint n;

    if (rows == NULL)
        return FALSE;
    n = dv_sql_rows_get_n_rows(rows);
    if (n == 0)
        return TRUE;
    for (guint r = 0; r < n && r < 100; r++) {
        g_autoptr(JsonObject) j = json_object_new();
        json_object_set_string_member(j, "id", dv_sql_rows_get_text(rows, r, 0));
        json_object_set_string_member(j, "kind", dv_sql_rows_get_text(rows, r, 1));
        json_object_set_string_member(j, "state", dv_sql_rows_get_text(rows, r, 2));
        json_object_set_string_member(j, "target", dv_sql_rows_get_text(rows, r, 3));
        json_array_add_object_element(objects, g_steal_pointer(&j));
    }
    dv_upgrade_add_issue(issues, "jobs-active", TRUE, objects, NULL,
                         "%u job(s) are queued or running; the upgrade waits until they finish "
                         "or are cancelled (drover job cancel ID)",
                         n);
    return TRUE;
}

static gboolean
dv_upgrade_issue_library_share(DvUpgradeCtx *c, JsonArray *issues, GError **error)
{
    const DvUpgradeOptions *o = c->o;
    g_autofree char *default_path = o->default_share_path != NULL
                                        ? g_strdup(o->default_share_path)
                                        : g_build_filename(c->state_dir, "library", NULL);
    const char *default_name = o->default_share_name != NULL ? o->default_share_name : DV_DEFAULT_SHARE_NAME;
    g_autoptr(DvSqlRows) rows = dv_upgrade_query(
        c, "SELECT id, name, path, is_default FROM library_shares ORDER BY name", error);
    g_autoptr(JsonArray) objects = json_array_new();
    static const char *const options[] = { "--library-share use-default",
                                           "--library-share NAME=PATH", "--library-share keep",
                                           NULL };

    if (rows == NULL)
        return FALSE;
    for (guint r = 0; r < dv_sql_rows_get_n_rows(rows); r++) {
        const char *name = dv_sql_rows_get_text(rows, r, 1);
        const char *path = dv_sql_rows_get_text(rows, r, 2);
        gboolean same_name = g_strcmp0(name, default_name) == 0;
        gboolean same_path = g_strcmp0(path, default_path) == 0;
        if (same_name != same_path) {
            g_autoptr(JsonObject) s = json_object_new();
            json_object_set_string_member(s, "id", dv_sql_rows_get_text(rows, r, 0));
            json_object_set_string_member(s, "name", name);
            json_object_set_string_member(s, "path", path);
            json_array_add_object_element(objects, g_steal_pointer(&s));
        }
    }
    if (json_array_get_length(objects) == 0)
        return TRUE;
    if (o->library_share == DV_LIBRARY_SHARE_NEW) {
        for (guint r = 0; r < dv_sql_rows_get_n_rows(rows); r++) {
            if (g_strcmp0(dv_sql_rows_get_text(rows, r, 1), o->library_share_name) == 0 ||
                g_strcmp0(dv_sql_rows_get_text(rows, r, 2), o->library_share_path) == 0) {
                dv_upgrade_add_issue(issues, "library-share-clash", TRUE, objects, options,
                                     "the new library share %s=%s clashes with registered share "
                                     "'%s' at %s; choose a name and path no share uses",
                                     o->library_share_name, o->library_share_path,
                                     dv_sql_rows_get_text(rows, r, 1),
                                     dv_sql_rows_get_text(rows, r, 2));
                return TRUE;
            }
        }
    }
    {
        JsonObject *first = json_array_get_object_element(objects, 0);
        const char *choice = o->library_share == DV_LIBRARY_SHARE_USE_DEFAULT
                                 ? "chosen: use-default (the registered share becomes the default)"
                             : o->library_share == DV_LIBRARY_SHARE_KEEP
                                 ? "chosen: keep (shares stay as they are; no default share)"
                             : o->library_share == DV_LIBRARY_SHARE_NEW
                                 ? "chosen: register a new default share"
                                 : "choose --library-share use-default, NAME=PATH or keep";
        dv_upgrade_add_issue(issues, "library-share-clash",
                             o->library_share == DV_LIBRARY_SHARE_UNSET, objects, options,
                             "registered library share '%s' at %s clashes with the default "
                             "share of this version ('%s' at %s): same %s, different %s; %s",
                             dv_json_get_string(first, "name", "?"),
                             dv_json_get_string(first, "path", "?"), default_name, default_path,
                             g_strcmp0(dv_json_get_string(first, "name", ""), default_name) == 0
                                 ? "name"
                                 : "path",
                             g_strcmp0(dv_json_get_string(first, "name", ""), default_name) == 0
                                 ? "path"
                                 : "name",
                             choice);
    }
    return TRUE;
}

static gboolean
dv_upgrade_issue_limits(DvUpgradeCtx *c, JsonArray *issues, GError **error)
{
    g_autoptr(DvSqlRows) rows = NULL;
    g_autoptr(JsonArray) objects = json_array_new();
    g_autofree char *sql = g_strdup_printf(
        "SELECT id, name, max_connections, max_concurrent_operations FROM hosts "
        "WHERE max_connections < %d OR max_concurrent_operations < %d ORDER BY name",
        DV_ENGINE_DEFAULT_MAX_CONNECTIONS, DV_ENGINE_DEFAULT_MAX_OPERATIONS);
    static const char *const options[] = { "--reset-host-limits", NULL };
    guint n;

    rows = dv_upgrade_query(c, sql, error);
    if (rows == NULL)
        return FALSE;
    n = dv_sql_rows_get_n_rows(rows);
    if (n == 0)
        return TRUE;
    for (guint r = 0; r < n && r < DV_UPGRADE_REENTRY_MAX; r++) {
        g_autoptr(JsonObject) h = json_object_new();
        json_object_set_string_member(h, "id", dv_sql_rows_get_text(rows, r, 0));
        json_object_set_string_member(h, "name", dv_sql_rows_get_text(rows, r, 1));
        json_object_set_int_member(h, "max_connections", dv_sql_rows_get_int(rows, r, 2));
        json_object_set_int_member(h, "max_concurrent_operations", dv_sql_rows_get_int(rows, r, 3));
        json_array_add_object_element(objects, g_steal_pointer(&h));
    }
    if (c->o->reset_host_limits)
        dv_upgrade_add_issue(issues, "host-limits-below-defaults", FALSE, objects, options,
                             "%u host(s) have max_connections or max_concurrent_operations below "
                             "the defaults (%d, %d); --reset-host-limits: they will be reset to "
                             "the defaults",
                             n, DV_ENGINE_DEFAULT_MAX_CONNECTIONS, DV_ENGINE_DEFAULT_MAX_OPERATIONS);
    else
        dv_upgrade_add_issue(issues, "host-limits-below-defaults", FALSE, objects, options,
                             "%u host(s) have max_connections or max_concurrent_operations below "
                             "the defaults (%d, %d); the upgrade keeps them as they are (not "
                             "reset). A connection carries one operation at a time since 0.2.0, "
                             "so max_connections also caps a host's parallel operations: review "
                             "them, or give --reset-host-limits",
                             n, DV_ENGINE_DEFAULT_MAX_CONNECTIONS, DV_ENGINE_DEFAULT_MAX_OPERATIONS);
    return TRUE;
}

static gboolean
dv_upgrade_issue_clusters(DvUpgradeCtx *c, JsonArray *issues, GError **error)
{
    g_autoptr(DvSqlRows) rows = dv_upgrade_query(
        c, "SELECT c.id, c.name, h.name, h.hypervisor_major FROM hosts h JOIN clusters c ON "
           "h.cluster_id = c.id WHERE h.hypervisor_major IS NOT NULL ORDER BY c.name, h.name",
        error);
    guint n;

    if (rows == NULL)
        return FALSE;
    n = dv_sql_rows_get_n_rows(rows);
    for (guint start = 0; start < n;) {
        guint end = start;
        gboolean mixed = FALSE;
        while (end < n && g_strcmp0(dv_sql_rows_get_text(rows, end, 0),
                                    dv_sql_rows_get_text(rows, start, 0)) == 0) {
            if (dv_sql_rows_get_int(rows, end, 3) != dv_sql_rows_get_int(rows, start, 3))
                mixed = TRUE;
            end++;
        }
        if (mixed) {
            g_autoptr(JsonArray) objects = json_array_new();
            for (guint r = start; r < end; r++) {
                g_autoptr(JsonObject) h = json_object_new();
                json_object_set_string_member(h, "cluster", dv_sql_rows_get_text(rows, r, 1));
                json_object_set_string_member(h, "host", dv_sql_rows_get_text(rows, r, 2));
                json_object_set_int_member(h, "hypervisor_major", dv_sql_rows_get_int(rows, r, 3));
                json_array_add_object_element(objects, g_steal_pointer(&h));
            }
            dv_upgrade_add_issue(issues, "cluster-mixed-hypervisor", FALSE, objects, NULL,
                                 "cluster '%s' has hosts on different hypervisor major versions; "
                                 "this version refuses to add such hosts to a cluster: move them "
                                 "to a cluster of their own or upgrade them",
                                 dv_sql_rows_get_text(rows, start, 1));
        }
        start = end;
    }
    return TRUE;
}

/* Pooled catalog machines made before issue 16 run on an overlay volume
 * each; this version boots them on their base as a transient disk.  The
 * upgrade touches no host: droverd moves each machine the next time it
 * moves it while shut off (a start through Drover, update-image,
 * rollback, rebuild, or the catalog's reconcile job), deleting its
 * overlay (docs/UPGRADE.md). */
static gboolean
dv_upgrade_issue_pooled(DvUpgradeCtx *c, JsonArray *issues, GError **error)
{
    g_autoptr(DvSqlRows) rows = NULL;
    g_autoptr(JsonArray) objects = json_array_new();
    gint64 total = 0;
    guint n;

    if (c->from_schema < 4)
        return TRUE; /* no catalogs before 0.2.0 */
    rows = dv_upgrade_query(
        c,
        "SELECT c.name, COUNT(*) FROM catalog_machines m JOIN catalogs c ON "
        "m.catalog_id = c.id WHERE c.catalog_type = 'pooled' AND m.overlay_path IS NOT "
        "NULL GROUP BY c.name ORDER BY c.name",
        error);
    if (rows == NULL)
        return FALSE;
    n = dv_sql_rows_get_n_rows(rows);
    if (n == 0)
        return TRUE;
    for (guint r = 0; r < n; r++) {
        g_autoptr(JsonObject) o = json_object_new();
        json_object_set_string_member(o, "catalog", dv_sql_rows_get_text(rows, r, 0));
        json_object_set_int_member(o, "machines", dv_sql_rows_get_int(rows, r, 1));
        total += dv_sql_rows_get_int(rows, r, 1);
        if (r < 100)
            json_array_add_object_element(objects, g_steal_pointer(&o));
    }
    dv_upgrade_add_issue(
        issues, "pooled-overlays", FALSE, objects, NULL,
        "%" G_GINT64_FORMAT " machine(s) of %u pooled catalog(s) run on an overlay volume "
        "each; this version boots pooled machines on their base as a transient disk. "
        "Each moves the next time Drover starts it, updates, rolls back or rebuilds "
        "its catalog, or reconciles it, while it is shut off; its overlay is then "
        "deleted (running machines keep working until then)",
        total, n);
    return TRUE;
}

static gboolean
dv_upgrade_issue_skew(DvUpgradeCtx *c, JsonArray *issues, GError **error)
{
    g_autoptr(DvSqlRows) rows = dv_upgrade_query(
        c, "SELECT id, hostname, pid, version, heartbeat_at FROM servers ORDER BY hostname", error);
    gint64 now = dv_store_now();

    if (rows == NULL)
        return FALSE;
    for (guint r = 0; r < dv_sql_rows_get_n_rows(rows); r++) {
        const char *host = dv_sql_rows_get_text(rows, r, 1);
        const char *version = dv_sql_rows_get_text(rows, r, 3);
        g_autofree char *where = g_strdup_printf("server %s (pid %" G_GINT64_FORMAT ")", host,
                                                 dv_sql_rows_get_int(rows, r, 2));
        g_autoptr(GError) skew = NULL;
        g_autoptr(JsonArray) objects = json_array_new();
        g_autoptr(JsonObject) s = json_object_new();
        int steps = 0;

        if (now - dv_sql_rows_get_int(rows, r, 4) > DV_UPGRADE_SERVER_STALE_US)
            continue;
        if (g_strcmp0(host, g_get_host_name()) == 0) {
            gint64 pid = dv_sql_rows_get_int(rows, r, 2);
            if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH))
                continue;
        }
        json_object_set_string_member(s, "server", where);
        json_object_set_string_member(s, "version", version);
        json_array_add_object_element(objects, g_steal_pointer(&s));
        if (!dv_version_check_skew(DV_VERSION, version, where, &skew)) {
            dv_upgrade_add_issue(issues, "version-skew", TRUE, objects, NULL, "%s",
                                 skew->message);
        } else if (dv_version_steps(version, DV_VERSION, &steps) && steps == 1) {
            dv_upgrade_add_issue(issues, "rolling-upgrade", FALSE, objects, NULL,
                                 "%s still runs Drover %s, one step behind: allowed during a "
                                 "rolling upgrade; after this upgrade migrates the schema, "
                                 "restart each server with Drover %s, one at a time",
                                 where, version, DV_VERSION);
        } else if (dv_version_compare(version, DV_VERSION) > 0) {
            dv_upgrade_add_issue(issues, "version-skew", TRUE, objects, NULL,
                                 "%s runs Drover %s, newer than this drover-setup %s; run the "
                                 "upgrade with Drover %s",
                                 where, version, DV_VERSION, version);
        }
    }
    return TRUE;
}

/* --- the plan ----------------------------------------------------------- */

/* A SQLite file not in WAL mode (a restored backup, say) would be switched
 * to WAL by a normal open, which rewrites its header: the plan opens those
 * read-only.  A WAL file is opened normally: a read-only connection would
 * leave -wal and -shm files behind, a normal one removes them at close. */
static gboolean
dv_upgrade_sqlite_is_wal(const char *path)
{
    guint8 header[100];
    FILE *f = fopen(path, "rb");
    gboolean wal = FALSE;

    if (f == NULL)
        return FALSE;
    if (fread(header, 1, sizeof(header), f) == sizeof(header) &&
        memcmp(header, "SQLite format 3", 16) == 0)
        wal = header[18] == 2 && header[19] == 2;
    fclose(f);
    return wal;
}

static DvUpgradeCtx *
dv_upgrade_prepare(const DvUpgradeOptions *o, gboolean plan_only, GError **error)
{
    g_autoptr(DvUpgradeCtx) c = g_new0(DvUpgradeCtx, 1);
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonObject) inst = NULL;

    if (o->state_dir == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "state-dir", "no state directory given");
        return NULL;
    }
    c->o = o;
    c->state_dir = g_canonicalize_filename(o->state_dir, NULL);
    c->location = dv_upgrade_location(o);
    c->key_verdicts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    c->predictions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    if (o->library_share == DV_LIBRARY_SHARE_NEW &&
        (o->library_share_name == NULL || o->library_share_name[0] == '\0' ||
         o->library_share_path == NULL || o->library_share_path[0] != '/')) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "library-share",
                           "library-share: NAME=PATH needs a name and an absolute path");
        return NULL;
    }
    if (!dv_upgrade_is_pg(c->location) && !g_file_test(c->location, G_FILE_TEST_IS_REGULAR)) {
        dv_set_field_error(error, DV_ERROR_NOT_FOUND, "database",
                           "no database at %s: an upgrade keeps an existing database (for a new "
                           "installation use drover-setup install)",
                           c->location);
        return NULL;
    }
    c->store = dv_store_open(c->location,
                             plan_only && !dv_upgrade_is_pg(c->location) &&
                                     !dv_upgrade_sqlite_is_wal(c->location)
                                 ? DV_STORE_OPEN_READ_ONLY
                                 : 0,
                             &local);
    if (c->store == NULL) {
        g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                   "drover-setup %s (schema %u) cannot upgrade %s: ", DV_VERSION,
                                   dv_store_get_known_version(), c->location);
        return NULL;
    }
    c->from_schema = dv_store_get_schema_version(c->store, &local);
    if (local != NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    c->to_schema = dv_store_get_known_version();
    if (c->from_schema == 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND,
                    "%s holds no Drover data: nothing to upgrade (use drover-setup install)",
                    c->location);
        return NULL;
    }
    inst = dv_store_find(c->store, &dv_table_settings, "name", "installation_id", NULL);
    if (inst != NULL)
        c->installation_id = g_strdup(dv_json_get_string(inst, "value", ""));
    if (!dv_upgrade_resolve_account(c, error))
        return NULL;
    if (!dv_upgrade_setup_directory(c, error))
        return NULL;
    if (o->recovery_key_path != NULL && !g_file_test(o->recovery_key_path, G_FILE_TEST_EXISTS)) {
        dv_set_field_error(error, DV_ERROR_NOT_FOUND, "recovery-key",
                           "recovery-key: %s does not exist", o->recovery_key_path);
        return NULL;
    }
    dv_upgrade_setup_previous_host(c);
    if (!dv_upgrade_open_rings(c, error))
        return NULL;
    return g_steal_pointer(&c);
}

static JsonObject *
dv_upgrade_make_plan(DvUpgradeCtx *c, GError **error)
{
    g_autoptr(JsonObject) plan = json_object_new();
    g_autoptr(JsonObject) from = json_object_new();
    g_autoptr(JsonObject) to = json_object_new();
    g_autoptr(JsonObject) service = json_object_new();
    g_autoptr(JsonArray) issues = json_array_new();
    g_autoptr(JsonArray) keys = NULL;
    g_autoptr(JsonArray) pending = json_array_new();
    g_autoptr(JsonArray) history = NULL;
    const char *from_version = dv_version_for_schema(c->from_schema);
    gboolean blocked = FALSE;

    json_object_set_string_member(plan, "database", dv_db_get_display_location(dv_store_get_db(c->store)));
    json_object_set_string_member(plan, "database_kind", dv_upgrade_is_pg(c->location) ? "postgresql" : "sqlite");
    json_object_set_int_member(from, "schema", c->from_schema);
    if (from_version != NULL)
        json_object_set_string_member(from, "version", from_version);
    else
        json_object_set_null_member(from, "version");
    json_object_set_int_member(to, "schema", c->to_schema);
    json_object_set_string_member(to, "version", DV_VERSION);
    json_object_set_object_member(plan, "from", g_steal_pointer(&from));
    json_object_set_object_member(plan, "to", g_steal_pointer(&to));
    history = dv_store_get_schema_history(c->store, error);
    if (history == NULL)
        return NULL;
    {
        /* The migrations this build would apply, with their checksums. */
        g_autoptr(JsonArray) all = dv_store_list_migrations(error);
        if (all == NULL)
            return NULL;
        for (guint i = 0; i < json_array_get_length(all); i++) {
            JsonObject *m = json_array_get_object_element(all, i);
            if ((guint)dv_json_get_int(m, "version", 0) > c->from_schema)
                json_array_add_object_element(pending, json_object_ref(m));
        }
    }
    json_object_set_array_member(plan, "pending_migrations", g_steal_pointer(&pending));

    json_object_set_string_member(service, "account", c->user);
    json_object_set_int_member(service, "uid", c->uid);
    json_object_set_string_member(service, "machine_id_file",
                                  c->o->machine_id_path != NULL ? c->o->machine_id_path
                                                                : "/etc/machine-id");
    if (c->service_dir_settings != NULL) {
        json_object_set_string_member(service, "directory",
                                      dv_directory_settings_get_uri(c->service_dir_settings));
        json_object_set_string_member(service, "directory_identity",
                                      dv_directory_settings_get_bind_dn(c->service_dir_settings));
    } else {
        json_object_set_null_member(service, "directory");
        json_object_set_null_member(service, "directory_identity");
    }
    if (c->previous_user != NULL)
        json_object_set_string_member(service, "previous_account", c->previous_user);
    else
        json_object_set_null_member(service, "previous_account");
    json_object_set_boolean_member(service, "recovery_key", c->o->recovery_key_path != NULL);
    json_object_set_object_member(plan, "service", g_steal_pointer(&service));

    keys = dv_upgrade_key_verdicts(c, error);
    if (keys == NULL)
        return NULL;
    json_object_set_array_member(plan, "keys", g_steal_pointer(&keys));
    if (!dv_upgrade_secret_verdicts(c, plan, error))
        return NULL;

    {
        JsonObject *totals = json_object_get_object_member(plan, "secrets");
        gint64 lost = dv_json_get_int(totals, "lost", 0);
        if (lost > 0)
            dv_upgrade_add_issue(issues, "secrets-unreadable", !c->o->accept_unreadable_secrets,
                                 NULL, NULL,
                                 "%" G_GINT64_FORMAT " secret(s) would become unreadable (listed "
                                 "under reentry); %s",
                                 lost,
                                 c->o->accept_unreadable_secrets
                                     ? "--accept-unreadable-secrets: the upgrade goes on, keeps "
                                       "their ciphertext and lists them in its report"
                                     : "the upgrade refuses unless --accept-unreadable-secrets "
                                       "(or give a protector that opens their key: --recovery-"
                                       "key, the directory, or run it on the machine and "
                                       "account that made them)");
    }
    if (!dv_upgrade_issue_jobs(c, issues, error) ||
        !dv_upgrade_issue_library_share(c, issues, error) ||
        !dv_upgrade_issue_limits(c, issues, error) ||
        !dv_upgrade_issue_clusters(c, issues, error) || !dv_upgrade_issue_skew(c, issues, error) ||
        !dv_upgrade_issue_pooled(c, issues, error))
        return NULL;
    if (c->old_dir == NULL && c->o->ldap_uri != NULL)
        dv_upgrade_add_issue(issues, "directory-not-configured", FALSE, NULL, NULL,
                             "this installation has no directory protector yet: the keys are not "
                             "in %s; the upgrade does not add it; after the upgrade run "
                             "'drover-setup keys directory init' to put them there",
                             c->o->ldap_uri);
    if (c->from_schema == c->to_schema)
        dv_upgrade_add_issue(issues, "schema-current", FALSE, NULL, NULL,
                             "the schema is already at version %u: no migration; keys are "
                             "re-wrapped where the plan says so and a report is written",
                             c->to_schema);
    for (guint i = 0; i < json_array_get_length(issues); i++)
        if (dv_json_get_bool(json_array_get_object_element(issues, i), "blocking", FALSE))
            blocked = TRUE;
    json_object_set_array_member(plan, "issues", g_steal_pointer(&issues));
    json_object_set_boolean_member(plan, "blocked", blocked);
    return g_steal_pointer(&plan);
}

JsonObject *
dv_upgrade_plan(const DvUpgradeOptions *o, GError **error)
{
    g_autoptr(DvUpgradeCtx) c = dv_upgrade_prepare(o, TRUE, error);
    if (c == NULL)
        return NULL;
    return dv_upgrade_make_plan(c, error);
}

gboolean
dv_upgrade_plan_is_blocked(JsonObject *plan)
{
    return dv_json_get_bool(plan, "blocked", TRUE);
}

/* --- the upgrade ---------------------------------------------------------- */

static DvSqlRows *
dv_upgrade_tables(DvDb *db, GError **error)
{
    return dv_db_query(
        db,
        dv_db_get_backend(db) == DV_DB_SQLITE
            ? "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            : "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
              "AND table_type = 'BASE TABLE' ORDER BY table_name",
        DV_SQL_NO_ARGS, error);
}

static JsonObject *
dv_upgrade_table_counts(DvDb *db, GError **error)
{
    g_autoptr(DvSqlRows) tables = dv_upgrade_tables(db, error);
    g_autoptr(JsonObject) out = json_object_new();

    if (tables == NULL)
        return NULL;
    for (guint r = 0; r < dv_sql_rows_get_n_rows(tables); r++) {
        const char *name = dv_sql_rows_get_text(tables, r, 0);
        g_autofree char *sql = g_strdup_printf("SELECT COUNT(*) FROM \"%s\"", name);
        g_autoptr(DvSqlRows) n = dv_db_query(db, sql, DV_SQL_NO_ARGS, error);
        if (n == NULL)
            return NULL;
        json_object_set_int_member(out, name, dv_sql_rows_get_int(n, 0, 0));
    }
    return g_steal_pointer(&out);
}

typedef struct {
    DvUpgradeCtx *c;
    JsonObject *counts_before; /* taken inside the transaction */
    JsonObject *report;
    const char *backup_path;
    gint64 shares_added;
} DvUpgradeTxn;

static gboolean
dv_upgrade_test_hook(guint version, GError **error)
{
#if DV_TEST_HOOKS
    const char *fail = g_getenv("DV_TEST_FAIL_MIGRATION");
    const char *pause = g_getenv("DV_TEST_PAUSE_MIGRATION");
    g_autofree char *v = g_strdup_printf("%u", version);
    if (g_strcmp0(fail, v) == 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_SCHEMA,
                    "migration %u: failure injected by DV_TEST_FAIL_MIGRATION (test build)",
                    version);
        return FALSE;
    }
    if (g_strcmp0(pause, v) == 0) {
        fprintf(stderr, "DV_TEST_PAUSE_MIGRATION: paused after migration %u\n", version);
        fflush(stderr);
        for (;;)
            g_usleep(G_USEC_PER_SEC);
    }
#endif
    return TRUE;
}

/* After migrating, re-wrapping and verifying: DV_TEST_FAIL_AFTER_MIGRATION=1
 * fails there, so the restore of the backup is tested. */
static gboolean
dv_upgrade_test_hook_after(GError **error)
{
#if DV_TEST_HOOKS
    if (g_strcmp0(g_getenv("DV_TEST_FAIL_AFTER_MIGRATION"), "1") == 0) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_INTERNAL,
                            "failure injected by DV_TEST_FAIL_AFTER_MIGRATION (test build)");
        return FALSE;
    }
#endif
    return TRUE;
}

static gboolean
dv_upgrade_apply_library_share(DvUpgradeTxn *t, DvDb *db, GError **error)
{
    const DvUpgradeOptions *o = t->c->o;
    g_autofree char *default_path = o->default_share_path != NULL
                                        ? g_strdup(o->default_share_path)
                                        : g_build_filename(t->c->state_dir, "library", NULL);
    const char *default_name = o->default_share_name != NULL ? o->default_share_name : DV_DEFAULT_SHARE_NAME;

    if (o->library_share == DV_LIBRARY_SHARE_USE_DEFAULT) {
        /* The registered share with the default's name (else path) becomes the default. */
        g_autoptr(DvSqlRows) rows = dv_db_query(
            db, "SELECT id FROM library_shares WHERE name = ? OR path = ? ORDER BY name",
            DV_SQL_ARGS(DV_SQL_TEXT_P(default_name), DV_SQL_TEXT_P(default_path)), error);
        if (rows == NULL)
            return FALSE;
        if (dv_sql_rows_get_n_rows(rows) == 0)
            return TRUE;
        return dv_db_exec(db, "UPDATE library_shares SET is_default = 0 WHERE is_default <> 0",
                          DV_SQL_NO_ARGS, NULL, error) &&
               dv_db_exec(db, "UPDATE library_shares SET is_default = 1 WHERE id = ?",
                          DV_SQL_ARGS(DV_SQL_TEXT_P(dv_sql_rows_get_text(rows, 0, 0))), NULL,
                          error);
    }
    if (o->library_share == DV_LIBRARY_SHARE_NEW) {
        g_autofree char *id = g_uuid_string_random();
        if (!dv_db_exec(db, "UPDATE library_shares SET is_default = 0 WHERE is_default <> 0",
                        DV_SQL_NO_ARGS, NULL, error) ||
            !dv_db_exec(db,
                        "INSERT INTO library_shares (id, name, path, is_default, description, "
                        "created_at) VALUES (?, ?, ?, 1, ?, ?)",
                        DV_SQL_ARGS(DV_SQL_TEXT_P(id), DV_SQL_TEXT_P(o->library_share_name),
                                    DV_SQL_TEXT_P(o->library_share_path),
                                    DV_SQL_TEXT_P("registered by drover-setup upgrade"),
                                    DV_SQL_INT_P(dv_store_now())),
                        NULL, error))
            return FALSE;
        t->shares_added = 1;
    }
    return TRUE;
}

/* Everything that changes the database, in one transaction: migrations
 * (each a savepoint), the choices of the command line, verification and
 * the report row. */
static gboolean
dv_upgrade_txn(DvDb *db, gpointer user_data, GError **error)
{
    DvUpgradeTxn *t = user_data;
    DvUpgradeCtx *c = t->c;
    g_autoptr(JsonObject) after = NULL;
    g_autoptr(GList) names = NULL;
    g_autofree char *report_text = NULL;
    g_autofree char *id = g_uuid_string_random();
    guint schema;

    /* Row counts before, in the transaction.  SQLite: BEGIN IMMEDIATE keeps
     * writers out already.  PostgreSQL: servers of the previous version may
     * still serve (a rolling upgrade); SHARE locks hold their writes until
     * this transaction ends, so the counts cannot move under it. */
    if (dv_db_get_backend(db) == DV_DB_POSTGRESQL) {
        g_autoptr(DvSqlRows) tables = dv_upgrade_tables(db, error);
        if (tables == NULL)
            return FALSE;
        for (guint r = 0; r < dv_sql_rows_get_n_rows(tables); r++) {
            g_autofree char *sql = g_strdup_printf("LOCK TABLE \"%s\" IN SHARE MODE",
                                                   dv_sql_rows_get_text(tables, r, 0));
            if (!dv_db_exec(db, sql, DV_SQL_NO_ARGS, NULL, error))
                return FALSE;
        }
    }
    g_clear_pointer(&t->counts_before, json_object_unref);
    t->counts_before = dv_upgrade_table_counts(db, error);
    if (t->counts_before == NULL)
        return FALSE;

    for (guint v = c->from_schema + 1; v <= c->to_schema; v++) {
        if (!dv_store_migrate_to(c->store, v, error))
            return FALSE;
        if (!dv_upgrade_test_hook(v, error))
            return FALSE;
    }
    if (!dv_upgrade_apply_library_share(t, db, error))
        return FALSE;
    if (c->o->reset_host_limits &&
        !dv_db_exec(db,
                    "UPDATE hosts SET max_connections = ? WHERE max_connections < ?",
                    DV_SQL_ARGS(DV_SQL_INT_P(DV_ENGINE_DEFAULT_MAX_CONNECTIONS),
                                DV_SQL_INT_P(DV_ENGINE_DEFAULT_MAX_CONNECTIONS)),
                    NULL, error))
        return FALSE;
    if (c->o->reset_host_limits &&
        !dv_db_exec(db,
                    "UPDATE hosts SET max_concurrent_operations = ? WHERE max_concurrent_operations < ?",
                    DV_SQL_ARGS(DV_SQL_INT_P(DV_ENGINE_DEFAULT_MAX_OPERATIONS),
                                DV_SQL_INT_P(DV_ENGINE_DEFAULT_MAX_OPERATIONS)),
                    NULL, error))
        return FALSE;

    /* Verify: the schema is this build's, every table kept its rows. */
    schema = dv_store_get_schema_version(c->store, error);
    if (schema != c->to_schema) {
        if (error != NULL && *error == NULL)
            g_set_error(error, DV_ERROR, DV_ERROR_SCHEMA,
                        "verification: schema is at %u after migrating, expected %u", schema,
                        c->to_schema);
        return FALSE;
    }
    after = dv_upgrade_table_counts(db, error);
    if (after == NULL)
        return FALSE;
    names = json_object_get_members(t->counts_before);
    for (GList *l = names; l != NULL; l = l->next) {
        const char *table = l->data;
        gint64 before = dv_json_get_int(t->counts_before, table, 0);
        gint64 now;
        if (g_str_equal(table, "schema_history") || g_str_equal(table, "upgrade_reports"))
            continue;
        if (!json_object_has_member(after, table)) {
            g_set_error(error, DV_ERROR, DV_ERROR_SCHEMA,
                        "verification: table %s is gone after migrating", table);
            return FALSE;
        }
        now = dv_json_get_int(after, table, 0);
        if (g_str_equal(table, "library_shares"))
            now -= t->shares_added;
        if (now != before) {
            g_set_error(error, DV_ERROR, DV_ERROR_SCHEMA,
                        "verification: table %s had %" G_GINT64_FORMAT " rows and has %" G_GINT64_FORMAT
                        " after migrating",
                        table, before, now);
            return FALSE;
        }
    }
    json_object_set_object_member(t->report, "row_counts", json_object_ref(after));
    report_text = dv_json_object_to_string(t->report, FALSE);
    return dv_db_exec(db,
                      "INSERT INTO upgrade_reports (id, from_version, to_version, from_schema, "
                      "to_schema, backup, report, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      DV_SQL_ARGS(DV_SQL_TEXT_P(id),
                                  DV_SQL_TEXT_P(dv_json_get_string(t->report, "from_version", "?")),
                                  DV_SQL_TEXT_P(DV_VERSION), DV_SQL_INT_P(c->from_schema),
                                  DV_SQL_INT_P(c->to_schema), DV_SQL_TEXT_P(t->backup_path),
                                  DV_SQL_TEXT_P(report_text), DV_SQL_INT_P(dv_store_now())),
                      NULL, error);
}

/* The report: what to do next. */
static JsonObject *
dv_upgrade_report_new(DvUpgradeCtx *c, JsonObject *plan, const char *backup_path)
{
    g_autoptr(JsonObject) r = json_object_new();
    g_autoptr(JsonArray) hosts = json_array_new();
    g_autoptr(JsonArray) limits = json_array_new();
    JsonArray *issues = json_object_get_array_member(plan, "issues");
    JsonArray *kinds = json_object_get_array_member(plan, "kinds");
    const char *from_version = dv_version_for_schema(c->from_schema);

    json_object_set_string_member(r, "from_version", from_version != NULL ? from_version : "?");
    json_object_set_string_member(r, "to_version", DV_VERSION);
    json_object_set_int_member(r, "from_schema", c->from_schema);
    json_object_set_int_member(r, "to_schema", c->to_schema);
    json_object_set_string_member(r, "backup", backup_path != NULL ? backup_path : "");
    json_object_set_string_member(r, "service_account", c->user);
    json_object_set_array_member(r, "keys", json_array_ref(json_object_get_array_member(plan, "keys")));
    json_object_set_object_member(r, "secrets", json_object_ref(json_object_get_object_member(plan, "secrets")));
    json_object_set_array_member(r, "secrets_to_reenter",
                                 json_array_ref(json_object_get_array_member(plan, "reentry")));
    for (guint i = 0; i < json_array_get_length(kinds); i++) {
        JsonObject *k = json_array_get_object_element(kinds, i);
        JsonArray *fix = json_object_has_member(k, "hosts_to_fix")
                             ? json_object_get_array_member(k, "hosts_to_fix")
                             : NULL;
        for (guint j = 0; fix != NULL && j < json_array_get_length(fix); j++) {
            JsonObject *h = json_array_get_object_element(fix, j);
            g_autoptr(JsonObject) e = json_object_new();
            json_object_set_string_member(e, "id", dv_json_get_string(h, "id", ""));
            json_object_set_string_member(e, "name", dv_json_get_string(h, "name", ""));
            json_object_set_string_member(e, "why", "its Run As account's credentials must be "
                                                    "re-entered; then refresh the host");
            json_array_add_object_element(hosts, g_steal_pointer(&e));
        }
    }
    for (guint i = 0; i < json_array_get_length(issues); i++) {
        JsonObject *is = json_array_get_object_element(issues, i);
        const char *code = dv_json_get_string(is, "code", "");
        JsonArray *objs = json_object_has_member(is, "objects")
                              ? json_object_get_array_member(is, "objects")
                              : NULL;
        if (g_str_equal(code, "host-limits-below-defaults") && !c->o->reset_host_limits) {
            for (guint j = 0; objs != NULL && j < json_array_get_length(objs); j++)
                json_array_add_object_element(limits,
                                              json_object_ref(json_array_get_object_element(objs, j)));
        }
        if (g_str_equal(code, "cluster-mixed-hypervisor")) {
            for (guint j = 0; objs != NULL && j < json_array_get_length(objs); j++) {
                JsonObject *h = json_array_get_object_element(objs, j);
                g_autoptr(JsonObject) e = json_object_new();
                json_object_set_string_member(e, "name", dv_json_get_string(h, "host", ""));
                json_object_set_string_member(e, "why", "its cluster mixes hypervisor major "
                                                        "versions; refresh it after moving or "
                                                        "upgrading it");
                json_array_add_object_element(hosts, g_steal_pointer(&e));
            }
        }
    }
    json_object_set_array_member(r, "hosts_to_refresh", g_steal_pointer(&hosts));
    json_object_set_array_member(r, "limits_to_review", g_steal_pointer(&limits));
    json_object_set_array_member(r, "issues", json_array_ref(issues));
    json_object_set_int_member(r, "created_at", dv_store_now());
    return g_steal_pointer(&r);
}

/* The new service's view after the upgrade must be exactly the plan's:
 * every secret predicted preserved or rewrap opens, every one predicted
 * lost does not. */
static gboolean
dv_upgrade_verify_secrets(DvUpgradeCtx *c, GError **error)
{
    DvKeyringOptions so = {
        .state_dir = c->state_dir,
        .machine_id_path = c->o->machine_id_path,
        .host_account_set = TRUE,
        .host_uid = c->uid,
        .host_user = c->user,
        .protectors = c->service_dir != NULL ? &c->service_dir : NULL,
        .n_protectors = c->service_dir != NULL ? 1 : 0,
    };
    g_autoptr(DvKeyring) ring = dv_keyring_open(c->store, &so, error);
    g_autoptr(DvSqlRows) rows = NULL;
    guint mismatches = 0;
    g_autofree char *first = NULL;
    g_autoptr(DvSecret) scratch = dv_secret_new(DV_KEYS_PLAINTEXT_MAX);

    if (ring == NULL)
        return FALSE;
    /* Canaries: every key version the plan kept opens for the new service. */
    {
        g_autoptr(JsonArray) check = dv_keyring_check(ring, error);
        if (check == NULL)
            return FALSE;
        for (guint i = 0; i < json_array_get_length(check); i++) {
            JsonObject *v = json_array_get_object_element(check, i);
            const char *key_id = dv_json_get_string(v, "key_id", "");
            const char *predicted = g_hash_table_lookup(c->key_verdicts, key_id);
            gboolean expected = predicted != NULL && !g_str_equal(predicted, "lost");
            if (expected && !dv_json_get_bool(v, "open", FALSE)) {
                g_set_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                            "verification: key %s was to be %s but the new service cannot open "
                            "its canary: %s",
                            key_id, predicted, dv_json_get_string(v, "reason", "?"));
                return FALSE;
            }
        }
    }
    rows = dv_upgrade_query(c, "SELECT id, object_type, object_id, field, value FROM secrets ORDER BY id",
                            error);
    if (rows == NULL)
        return FALSE;
    for (guint r = 0; r < dv_sql_rows_get_n_rows(rows); r++) {
        const char *id = dv_sql_rows_get_text(rows, r, 0);
        const char *predicted = g_hash_table_lookup(c->predictions, id);
        g_autofree char *reason = NULL;
        gboolean readable;
        gboolean expected;

        /* Written since the plan by a server of the previous version still
         * serving (rolling upgrade): the plan said nothing about it. */
        if (predicted == NULL)
            continue;
        readable = dv_keyring_value_opens(ring, scratch, dv_sql_rows_get_text(rows, r, 1),
                                                   dv_sql_rows_get_text(rows, r, 2),
                                                   dv_sql_rows_get_text(rows, r, 3),
                                                   dv_sql_rows_get_text(rows, r, 4), &reason);
        expected = !g_str_equal(predicted, "lost");
        if (readable != expected) {
            mismatches++;
            if (first == NULL)
                first = g_strdup_printf("%s %s field %s: plan said %s, the new service %s it%s%s",
                                        dv_sql_rows_get_text(rows, r, 1),
                                        dv_sql_rows_get_text(rows, r, 2),
                                        dv_sql_rows_get_text(rows, r, 3),
                                        predicted != NULL ? predicted : "nothing",
                                        readable ? "opens" : "cannot open",
                                        readable ? "" : ": ",
                                        readable ? "" : reason);
        }
    }
    if (mismatches > 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                    "verification: %u secret(s) do not match the plan, first: %s", mismatches,
                    first);
        return FALSE;
    }
    return TRUE;
}

/* Writes every key the plan re-wraps into the new account's host key file. */
static gboolean
dv_upgrade_rewrap(DvUpgradeCtx *c, gboolean *ret_wrote, GError **error)
{
    GHashTableIter iter;
    gpointer k, v;
    gboolean needed = FALSE;
    DvKeyProtector *extra[1 + DV_UPGRADE_N_ADMIN];
    guint n_extra = 0;
    DvKeyringOptions o = dv_upgrade_ring_options(c);
    g_autoptr(DvKeyring) ring = NULL;

    *ret_wrote = FALSE;
    g_hash_table_iter_init(&iter, c->key_verdicts);
    while (g_hash_table_iter_next(&iter, &k, &v))
        if (g_str_equal(v, "rewrap"))
            needed = TRUE;
    if (!needed)
        return TRUE;
    if (c->service_dir != NULL)
        extra[n_extra++] = c->service_dir;
    n_extra += dv_upgrade_admin_protectors(c, extra + n_extra);
    o.recovery_key_path = c->o->recovery_key_path;
    o.protectors = extra;
    o.n_protectors = n_extra;
    ring = dv_keyring_open(c->store, &o, error);
    if (ring == NULL)
        return FALSE;
    if (!dv_keyring_protect_with_host(ring, error)) {
        g_prefix_error(error, "re-wrapping the keys for %s: ", c->user);
        return FALSE;
    }
    *ret_wrote = TRUE;
    return TRUE;
}

/* The new identity's directory settings, when they changed; the old file
 * is kept beside it. */
static gboolean
dv_upgrade_save_directory(DvUpgradeCtx *c, GError **error)
{
    const DvUpgradeOptions *o = c->o;
    g_autofree char *conf = dv_directory_settings_path(c->state_dir);

    if (c->service_dir_settings == NULL || c->old_dir == NULL)
        return TRUE;
    if (o->service_dn == NULL && o->ldap_uri == NULL && o->container == NULL && o->ca_file == NULL)
        return TRUE;
    {
        g_autofree char *aside = g_strdup_printf("%s.before-upgrade-%" G_GINT64_FORMAT, conf,
                                                 g_get_real_time());
        if (link(conf, aside) != 0) {
            g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot keep %s as %s: %s", conf,
                        aside, g_strerror(errno));
            return FALSE;
        }
    }
    return dv_directory_settings_save(c->service_dir_settings, conf, error);
}

JsonObject *
dv_upgrade_run(const DvUpgradeOptions *o, JsonObject **ret_plan, GError **error)
{
    g_autoptr(DvUpgradeCtx) c = dv_upgrade_prepare(o, FALSE, error);
    g_autoptr(JsonObject) plan = NULL;
    g_autoptr(JsonObject) report = NULL;
    g_autoptr(GError) local = NULL;
    gboolean ok;
    g_autofree char *backup_path = NULL;
    DvUpgradeTxn t = { 0 };
    gboolean wrote = FALSE;
    g_autoptr(JsonObject) timings = json_object_new();
    gint64 t0 = g_get_monotonic_time();
    gint64 mark;

#define DV_PHASE(name)                                                                    \
    do {                                                                                  \
        gint64 now_ = g_get_monotonic_time();                                             \
        json_object_set_int_member(timings, name, (now_ - mark) / 1000);                  \
        mark = now_;                                                                      \
    } while (0)

    if (c == NULL)
        return NULL;
    mark = t0;
    plan = dv_upgrade_make_plan(c, error);
    if (plan == NULL)
        return NULL;
    if (ret_plan != NULL)
        *ret_plan = json_object_ref(plan);
    if (dv_upgrade_plan_is_blocked(plan)) {
        JsonArray *issues = json_object_get_array_member(plan, "issues");
        g_autoptr(GString) why = g_string_new(NULL);
        for (guint i = 0; i < json_array_get_length(issues); i++) {
            JsonObject *is = json_array_get_object_element(issues, i);
            if (dv_json_get_bool(is, "blocking", FALSE))
                g_string_append_printf(why, "%s%s", why->len > 0 ? "; " : "",
                                       dv_json_get_string(is, "message", ""));
        }
        g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT,
                    "the upgrade plan has blocking issues, nothing was changed: %s", why->str);
        return NULL;
    }
    DV_PHASE("plan");
    if (o->backup != NULL) {
        backup_path = o->backup(o, o->user_data, error);
        if (backup_path == NULL) {
            g_prefix_error(error, "backup before the upgrade failed, nothing was migrated: ");
            return NULL;
        }
    }
    DV_PHASE("backup");
    report = dv_upgrade_report_new(c, plan, backup_path);
    t.c = c;
    t.report = report;
    t.backup_path = backup_path;
    ok = dv_db_transaction(dv_store_get_db(c->store), dv_upgrade_txn, &t, &local);
    g_clear_pointer(&t.counts_before, json_object_unref);
    if (!ok) {
        /* Rolled back: the database is as it was. */
        g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                   "the upgrade failed and was rolled back; the database is as "
                                   "it was (schema %u, Drover %s can start on it)%s%s: ",
                                   c->from_schema,
                                   dv_json_get_string(report, "from_version", "?"),
                                   backup_path != NULL ? "; backup: " : "",
                                   backup_path != NULL ? backup_path : "");
        return NULL;
    }
    DV_PHASE("migrate");
    if (dv_upgrade_rewrap(c, &wrote, &local))
        DV_PHASE("rewrap");
    if (local == NULL && dv_upgrade_save_directory(c, &local) &&
        dv_upgrade_verify_secrets(c, &local) && dv_upgrade_test_hook_after(&local))
        g_assert(local == NULL);
    if (local != NULL) {
        g_autoptr(GError) restore_error = NULL;
        /* Nothing of ours may hold the database while the backup goes back. */
        g_clear_pointer(&c->service_ring, dv_keyring_free);
        g_clear_pointer(&c->admin_ring, dv_keyring_free);
        g_clear_pointer(&c->store, dv_store_free);
        if (backup_path != NULL && o->restore != NULL &&
            !o->restore(o, backup_path, o->user_data, &restore_error)) {
            g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                       "the upgrade failed and restoring the backup %s failed "
                                       "too (%s): ",
                                       backup_path, restore_error->message);
            return NULL;
        }
        g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                   "the upgrade failed after migrating; the backup %s was "
                                   "restored, the previous installation can start: ",
                                   backup_path != NULL ? backup_path : "(none)");
        return NULL;
    }
    DV_PHASE("verify");
    json_object_set_int_member(timings, "total", (g_get_monotonic_time() - t0) / 1000);
    json_object_set_boolean_member(report, "host_key_file_rewritten", wrote);
    json_object_set_object_member(report, "timings_ms", g_steal_pointer(&timings));
    return g_steal_pointer(&report);
#undef DV_PHASE
}

JsonObject *
dv_upgrade_report_load(DvStore *store, GError **error)
{
    g_autoptr(DvSqlRows) rows = NULL;
    g_autoptr(JsonNode) node = NULL;
    g_autoptr(GError) local = NULL;

    rows = dv_db_query(dv_store_get_db(store),
                       "SELECT report FROM upgrade_reports ORDER BY created_at DESC, id DESC LIMIT 1",
                       DV_SQL_NO_ARGS, error);
    if (rows == NULL)
        return NULL;
    if (dv_sql_rows_get_n_rows(rows) == 0) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_NOT_FOUND,
                            "no upgrade report: this database was not upgraded by drover-setup "
                            "upgrade");
        return NULL;
    }
    node = json_from_string(dv_sql_rows_get_text(rows, 0, 0), &local);
    if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node)) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "the stored upgrade report is not JSON: %s",
                    local != NULL ? local->message : "not an object");
        return NULL;
    }
    return json_object_ref(json_node_get_object(node));
}

gboolean
dv_upgrade_check_schema_for_server(DvStore *store, GError **error)
{
    g_autoptr(GError) local = NULL;
    guint schema = dv_store_get_schema_version(store, &local);
    guint known = dv_store_get_known_version();
    const char *was = NULL;

    if (local != NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (schema == 0 || schema >= known)
        return TRUE;
    was = dv_version_for_schema(schema);
    g_set_error(error, DV_ERROR, DV_ERROR_SCHEMA,
                "the database is at schema %u (Drover %s) and this droverd %s needs schema %u; "
                "the schema is migrated before a new server serves: run 'drover-setup upgrade "
                "--plan', then 'drover-setup upgrade'",
                schema, was != NULL ? was : "?", DV_VERSION, known);
    return FALSE;
}
