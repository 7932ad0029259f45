#define G_LOG_DOMAIN "DvEngine"

/* The facade: builds the core (store, virt, auth, jobs, keys), registers
 * every feature's job kinds, shapers and hooks, and dispatches the front
 * ends' calls to the feature owning each kind.  Features never call each
 * other nor this file (docs/ARCHITECTURE.md, tools/check-layers). */

#include "dv-config.h"
#include "dv-core.h"
#include "dv-engine.h"
#include "dv-engine-directory.h"
#include "dv-upgrade.h"
#include "dv-version.h"
#include "dv-access.h"
#include "dv-catalogs.h"
#include "dv-engine-objects.h"
#include "dv-hosts.h"
#include "dv-secret-objects.h"
#include "dv-vms.h"

#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string.h>
#include <glib/gstdio.h>

struct _DvEngine {
    DvCore core; /* first: dv_core() casts the engine to it */
    gboolean registered;
    /* droverd: the one-writer lock on a SQLite database, for the
     * engine's life (NULL otherwise). */
    DvStoreLock *db_lock;
    guint recovered_resumed;
    guint recovered_failed;
};
G_STATIC_ASSERT(G_STRUCT_OFFSET(DvEngine, core) == 0);

static gboolean
dv_engine_ensure_state_dir(const char *dir, GError **error)
{
    if (g_mkdir_with_parents(dir, 0700) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot create state directory %s: %s",
                    dir, g_strerror(errno));
        return FALSE;
    }
    return TRUE;
}

/* --- first start ---------------------------------------------------------- */

/* Entries of a state directory that only an installation leaves behind:
 * keys, certificates, configs, the default share, backups, the first
 * password; the default database's companions (drover.db-wal, -shm,
 * .lock), backup archives and recovery keys too.  Anything else (a log
 * file, lost+found) is not taken for one. */
static const char *const dv_engine_trace_names[] = {
    "keys",
    "tls",
    "directory.conf",
    "directory-bind.password",
    "directory-ca.pem",
    "initial-admin-password",
    "droverd.conf",
    "library",
    "backups",
    "recovery.key",
    NULL,
};

static gboolean
dv_engine_is_trace(const char *name)
{
    static const char *const suffixes[] = { ".tar.zst", ".tar", ".zst", ".service", ".key", NULL };

    if (g_strv_contains(dv_engine_trace_names, name) || g_str_has_prefix(name, "drover.db") ||
        g_str_has_prefix(name, "drover-backup") || g_str_has_prefix(name, ".recovery-") ||
        g_str_has_prefix(name, "recovery"))
        return TRUE;
    for (guint i = 0; suffixes[i] != NULL; i++)
        if (g_str_has_suffix(name, suffixes[i]))
            return TRUE;
    return FALSE;
}

/* A missing or empty (0-byte) SQLite database is a first start only in a
 * state directory holding nothing of an earlier installation: otherwise
 * the data was lost or moved, and making a new installation (new admin
 * password, new keys) over it would hide that for good. */
static gboolean
dv_engine_check_first_start(const char *state_dir, const char *db_path, GError **error)
{
    static const char *const companions[] = { "-wal", "-shm", "-journal", ".lock", NULL };
    g_autoptr(GString) traces = g_string_new(NULL);
    g_autoptr(GDir) dir = NULL;
    const char *name;
    struct stat st;
    const char *what;

    if (g_str_has_prefix(db_path, "postgresql://") || g_str_has_prefix(db_path, "postgres://"))
        return TRUE;
    if (stat(db_path, &st) == 0) {
        if (st.st_size > 0)
            return TRUE;
        what = "empty (0 bytes)";
    } else if (errno == ENOENT) {
        what = "missing";
    } else {
        return TRUE; /* opening it says why */
    }
    for (guint i = 0; companions[i] != NULL; i++) {
        g_autofree char *p = g_strconcat(db_path, companions[i], NULL);
        if (g_file_test(p, G_FILE_TEST_EXISTS))
            g_string_append_printf(traces, "%s%s", traces->len > 0 ? ", " : "", p);
    }
    dir = g_dir_open(state_dir, 0, NULL);
    while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
        g_autofree char *p = g_build_filename(state_dir, name, NULL);
        if (!dv_engine_is_trace(name) || g_strcmp0(p, db_path) == 0 ||
            strstr(traces->str, p) != NULL)
            continue;
        g_string_append_printf(traces, "%s%s", traces->len > 0 ? ", " : "", name);
    }
    if (traces->len == 0)
        return TRUE;
    dv_set_field_error(error, DV_ERROR_CONFLICT, "database",
                       "the database %s is %s, but the state directory %s holds what an earlier "
                       "installation left (%s): this is not a first start, and starting would make "
                       "a new, empty installation over it. Put the database back with "
                       "'drover-setup restore --in BACKUP --state-dir %s', or give the server the "
                       "database it used; to start afresh, give an empty state directory",
                       db_path, what, state_dir, traces->str, state_dir);
    return FALSE;
}

static char *
dv_engine_load_server_id(DvStore *store, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonObject) row = dv_store_find(store, &dv_table_settings, "name", "installation_id",
                                              &local);
    if (row != NULL)
        return g_strdup(dv_json_get_string(row, "value", ""));
    if (!g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    {
        g_autoptr(JsonObject) rec = json_object_new();
        g_autofree char *id = g_uuid_string_random();
        g_autofree char *value = g_uuid_string_random();
        json_object_set_string_member(rec, "id", id);
        json_object_set_string_member(rec, "name", "installation_id");
        json_object_set_string_member(rec, "value", value);
        json_object_set_int_member(rec, "updated_at", dv_store_now());
        if (!dv_store_insert(store, &dv_table_settings, rec, error))
            return NULL;
        return g_steal_pointer(&value);
    }
}

/* --- servers of this database ------------------------------------------------ */

#define DV_SERVER_STALE_US (60 * G_USEC_PER_SEC)

/* A server row is alive when its heartbeat is fresh; on this machine a
 * crashed process is recognised at once by its pid. */
static gboolean
dv_engine_server_alive(JsonObject *row)
{
    gint64 heartbeat = dv_json_get_int(row, "heartbeat_at", 0);
    if (dv_store_now() - heartbeat > DV_SERVER_STALE_US)
        return FALSE;
    if (g_strcmp0(dv_json_get_string(row, "hostname", ""), g_get_host_name()) == 0) {
        gint64 pid = dv_json_get_int(row, "pid", 0);
        if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH))
            return FALSE;
    }
    return TRUE;
}

/* Returns the ids of live servers, removing dead servers' rows. */
static GPtrArray *
dv_engine_live_servers(DvEngine *engine, GPtrArray *ret_rows, GError **error)
{
    g_autoptr(JsonArray) rows = dv_core_list_all(engine, &dv_table_servers, NULL, NULL, error);
    g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);

    if (rows == NULL)
        return NULL;
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *row = json_array_get_object_element(rows, i);
        const char *id = dv_json_get_string(row, "id", "");
        if (g_strcmp0(id, dv_core(engine)->server_id) == 0)
            continue;
        if (!dv_engine_server_alive(row)) {
            dv_store_delete(dv_core(engine)->store, &dv_table_servers, id, NULL);
            continue;
        }
        g_ptr_array_add(ids, g_strdup(id));
        if (ret_rows != NULL)
            g_ptr_array_add(ret_rows, json_object_ref(row));
    }
    g_ptr_array_add(ids, NULL);
    return g_steal_pointer(&ids);
}

static gboolean
dv_engine_register(DvEngine *engine, GError **error)
{
    g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    g_autoptr(GPtrArray) live = dv_engine_live_servers(engine, rows, error);
    g_autoptr(JsonObject) me = json_object_new();
    gint64 now = dv_store_now();

    if (live == NULL)
        return FALSE;
    /* Rolling upgrades: servers one version step apart may serve together. */
    for (guint i = 0; i < rows->len; i++) {
        JsonObject *other = g_ptr_array_index(rows, i);
        g_autofree char *where = g_strdup_printf("droverd on %s (pid %" G_GINT64_FORMAT ")",
                                                 dv_json_get_string(other, "hostname", "?"),
                                                 dv_json_get_int(other, "pid", 0));
        if (!dv_version_check_skew(DV_VERSION, dv_json_get_string(other, "version", ""), where,
                                   error))
            return FALSE;
    }
    if (rows->len > 0) {
        DvFilter f = { "kind", DV_FILTER_EQ, "directory" };
        gint64 n = dv_store_count(dv_core(engine)->store, &dv_table_key_protectors, &f, 1, error);
        if (n < 0)
            return FALSE;
        if (n == 0) {
            JsonObject *other = g_ptr_array_index(rows, 0);
            g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT,
                        "another droverd (%s, pid %" G_GINT64_FORMAT ") serves this database; several "
                        "servers on one database need the directory key protector, because a host key "
                        "file opens only on the machine and account it was made for, so the other "
                        "servers could not read the secrets. Set it up with 'drover-setup keys directory "
                        "init', or stop the other server",
                        dv_json_get_string(other, "hostname", "?"), dv_json_get_int(other, "pid", 0));
            return FALSE;
        }
    }
    /* Jobs the live servers run are theirs; recovery leaves them alone. */
    dv_job_manager_set_live_servers(dv_core(engine)->jobs, (const char *const *)live->pdata);
    json_object_set_string_member(me, "id", dv_core(engine)->server_id);
    json_object_set_string_member(me, "hostname", g_get_host_name());
    json_object_set_int_member(me, "pid", getpid());
    json_object_set_string_member(me, "version", DV_VERSION);
    json_object_set_int_member(me, "started_at", now);
    json_object_set_int_member(me, "heartbeat_at", now);
    if (!dv_store_insert(dv_core(engine)->store, &dv_table_servers, me, error))
        return FALSE;
    engine->registered = TRUE;
    return TRUE;
}

gboolean
dv_engine_heartbeat(DvEngine *engine, GError **error)
{
    g_autoptr(JsonObject) changes = json_object_new();
    g_autoptr(GPtrArray) live = NULL;
    g_autofree char *detail = NULL;

    if (!engine->registered)
        return TRUE;
    /* Also notices a database file removed or replaced while no request
     * wrote: from then on every write is refused with the reason. */
    switch (dv_db_check_state(dv_store_get_db(dv_core(engine)->store), &detail)) {
    case DV_DB_STATE_MISSING:
    case DV_DB_STATE_REPLACED:
        dv_set_field_error(error, DV_ERROR_UNAVAILABLE, "database", "%s; writes are refused",
                           detail);
        return FALSE;
    default:
        break;
    }
    json_object_set_int_member(changes, "heartbeat_at", dv_store_now());
    if (!dv_store_update(dv_core(engine)->store, &dv_table_servers, dv_core(engine)->server_id,
                         changes, error))
        return FALSE;
    live = dv_engine_live_servers(engine, NULL, error);
    return live != NULL;
}

void
dv_engine_unregister(DvEngine *engine)
{
    if (!engine->registered)
        return;
    dv_store_delete(dv_core(engine)->store, &dv_table_servers, dv_core(engine)->server_id, NULL);
    engine->registered = FALSE;
}

/* --- rows left between ------------------------------------------------------ */

typedef enum {
    DV_SETTLE_ROLL_BACK,  /* delete the row (frees the name), record a failed job */
    DV_SETTLE_MARK_FAILED, /* state "failed" and the reason in its "error" column */
} DvSettleHow;

/* Row states that only a job holds a row in, the column a job owning the
 * row targets, and how the row is settled when no queued or running job
 * does.  Hosts have none (their row is written by the add job's last
 * step), pools and volumes neither (their state is libvirt's); catalogs
 * are re-submittable in every state (a provision or delete consults its
 * job, not the row) and pending machines and bases are the next
 * provision's to-do list (docs/DECISIONS.md, "Rows left between"). */
static const struct {
    const DvTableDef *def;
    const char *state;
    const char *owner_column;
    const char *job_kind;
    DvSettleHow how;
} dv_engine_transitional[] = {
    { &dv_table_vms, "creating", "id", "vm.create", DV_SETTLE_ROLL_BACK },
    /* An update-image whose job was never written or ended without
     * saying: otherwise "being made" for ever and never removable. */
    { &dv_table_catalog_images, "pending", "catalog_id", NULL, DV_SETTLE_MARK_FAILED },
};

typedef struct {
    DvEngine *engine;
    guint t;              /* index into dv_engine_transitional */
    const char *id;
    gint64 created_before;
    gboolean settled;
} DvSettleCtx;

/* In one transaction: the row is still in its state, old enough, and no
 * job queued or running targets its owner, so it is settled. */
static gboolean
dv_engine_settle_row_txn(DvStore *store, gpointer user_data, GError **error)
{
    DvSettleCtx *c = user_data;
    static const char *const live[] = { "queued", "running" };
    const DvTableDef *def = dv_engine_transitional[c->t].def;
    const char *state = dv_engine_transitional[c->t].state;
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonObject) row = dv_store_get(store, def, c->id, &local);
    g_autoptr(GError) why = NULL;
    const char *owner;
    const char *name;

    if (row == NULL) {
        if (g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
            return TRUE;
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (g_strcmp0(dv_json_get_string(row, "state", ""), state) != 0 ||
        dv_json_get_int(row, "created_at", 0) > c->created_before)
        return TRUE;
    owner = dv_json_get_string(row, dv_engine_transitional[c->t].owner_column, "");
    for (gsize i = 0; i < G_N_ELEMENTS(live); i++) {
        DvFilter f[] = {
            { "target_id", DV_FILTER_EQ, owner },
            { "state", DV_FILTER_EQ, live[i] },
        };
        gint64 n = dv_store_count(store, &dv_table_jobs, f, G_N_ELEMENTS(f), error);
        if (n < 0)
            return FALSE;
        if (n > 0)
            return TRUE; /* owned by a live job */
    }

    if (dv_engine_transitional[c->t].how == DV_SETTLE_MARK_FAILED) {
        g_autoptr(JsonObject) ch = json_object_new();
        json_object_set_string_member(ch, "state", "failed");
        json_object_set_string_member(ch, "error",
                                      "left pending with no job to finish it (the server stopped "
                                      "or could not write); marked failed at recovery");
        if (!dv_store_update(store, def, c->id, ch, error))
            return FALSE;
        c->settled = TRUE;
        return TRUE;
    }

    name = dv_json_get_string(row, "name", "");
    if (!dv_store_delete(store, def, c->id, error) ||
        (def == &dv_table_vms && !dv_core_vm_quota_release(store, row, error)))
        return FALSE;
    g_set_error(&why, DV_ERROR, DV_ERROR_UNAVAILABLE,
                "%s was left '%s' with no job to finish it (the server stopped or could not "
                "write); its row was rolled back and the name '%s' is free again",
                name, state, name);
    {
        g_autoptr(JsonObject) job = NULL;
        DvJobRequest req = {
            .kind = dv_engine_transitional[c->t].job_kind,
            .target_type = "vm",
            .target_id = c->id,
            .target_name = name,
            .host_id = dv_json_get_string(row, "host_id", NULL),
            .params = NULL,
            .created_by = "droverd",
        };
        job = dv_job_manager_record_failed(dv_core(c->engine)->jobs, &req, why, error);
        if (job == NULL)
            return FALSE;
    }
    c->settled = TRUE;
    return TRUE;
}

gboolean
dv_engine_recover_rows(DvEngine *engine, gint64 min_age_us, guint *ret_settled, GError **error)
{
    guint settled = 0;
    gint64 created_before = dv_store_now() - MAX(min_age_us, 0);

    for (guint t = 0; t < G_N_ELEMENTS(dv_engine_transitional); t++) {
        g_autoptr(JsonArray) rows = dv_core_list_all(engine, dv_engine_transitional[t].def, "state",
                                                     dv_engine_transitional[t].state, error);
        if (rows == NULL)
            return FALSE;
        for (guint i = 0; i < json_array_get_length(rows); i++) {
            JsonObject *row = json_array_get_object_element(rows, i);
            DvSettleCtx c = { engine, t, dv_json_get_string(row, "id", ""), created_before, FALSE };
            /* The job check and the change in one transaction: a create
             * submitted meanwhile writes its row and its job together. */
            if (!dv_store_transaction(dv_core(engine)->store, dv_engine_settle_row_txn, &c, error))
                return FALSE;
            if (c.settled) {
                g_message("recovery: %s row %s (%s) was left '%s' with no job; %s",
                          dv_engine_transitional[t].def->table, c.id,
                          dv_json_get_string(row, "name", "-"), dv_engine_transitional[t].state,
                          dv_engine_transitional[t].how == DV_SETTLE_ROLL_BACK ? "rolled back"
                                                                               : "marked failed");
                settled++;
            }
        }
    }
    if (ret_settled != NULL)
        *ret_settled = settled;
    return TRUE;
}

DvEngine *
dv_engine_new(const DvEngineOptions *opts, GError **error)
{
    g_autoptr(DvEngine) engine = g_new0(DvEngine, 1);
    g_autofree char *db_location = NULL;
    g_autofree char *installation = NULL;
    g_autoptr(GError) local_schema = NULL;

    dv_core_init(dv_core(engine));
    if (opts->state_dir == NULL) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT, "no state directory given");
        return NULL;
    }
    if (!dv_engine_ensure_state_dir(opts->state_dir, error))
        return NULL;
    dv_core(engine)->state_dir = g_canonicalize_filename(opts->state_dir, NULL);
    dv_core(engine)->default_share_name = g_strdup(opts->default_share_name);
    dv_core(engine)->default_share_path = g_strdup(opts->default_share_path);
    if (opts->library_root != NULL && !g_path_is_absolute(opts->library_root)) {
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                    "library root %s: must be an absolute path", opts->library_root);
        return NULL;
    }
    dv_core(engine)->library_root =
        opts->library_root != NULL ? g_canonicalize_filename(opts->library_root, NULL)
                                   : g_build_filename(dv_core(engine)->state_dir, "library", NULL);
    for (guint i = 0; opts->allow_uri_parameters != NULL && opts->allow_uri_parameters[i] != NULL; i++) {
        if (!dv_validate_uri_parameter_name(opts->allow_uri_parameters[i], error)) {
            g_prefix_error(error, "allow_uri_parameters: ");
            return NULL;
        }
    }
    db_location = opts->database != NULL
                      ? g_strdup(opts->database)
                      : g_build_filename(dv_core(engine)->state_dir, "drover.db", NULL);
    /* droverd: never a new installation over the traces of an earlier
     * one, and one server per SQLite database while it exists, whatever
     * its heartbeat (checked before the lock: its file is a trace). */
    if (opts->serve) {
        if (!dv_engine_check_first_start(dv_core(engine)->state_dir, db_location, error))
            return NULL;
        engine->db_lock = dv_store_lock_acquire(db_location, "droverd", error);
        if (engine->db_lock == NULL)
            return NULL;
    }
    /* A new (empty) database is set up here; one of an older schema is
     * refused: the schema is migrated by drover-setup upgrade, with its plan
     * and backup, before a server of the new version serves. */
    dv_core(engine)->store = dv_store_open(db_location, 0, error);
    if (dv_core(engine)->store == NULL)
        return NULL;
    if (opts->serve) {
        g_autofree char *detail = NULL;
        if (dv_db_check_state(dv_store_get_db(dv_core(engine)->store), &detail) ==
            DV_DB_STATE_READ_ONLY) {
            dv_set_field_error(error, DV_ERROR_UNAVAILABLE, "database", "%s", detail);
            return NULL;
        }
    }
    if (!dv_upgrade_check_schema_for_server(dv_core(engine)->store, &local_schema)) {
        /* Name this server's state directory, so the commands can be
         * copied as they are (never the database URI: it may hold a
         * password). */
        g_set_error(error, local_schema->domain, local_schema->code, "%s, with --state-dir %s%s",
                    local_schema->message, dv_core(engine)->state_dir,
                    opts->database != NULL ? " and this server's --database" : "");
        return NULL;
    }
    if (!dv_store_migrate_to(dv_core(engine)->store, dv_store_get_known_version(), error))
        return NULL;
    installation = dv_engine_load_server_id(dv_core(engine)->store, error);
    if (installation == NULL)
        return NULL;
    dv_core(engine)->installation_id = g_strdup(installation);
    /* A server id per process: jobs record which server runs them, so a
     * restarted server takes over only its own and dead servers' jobs. */
    {
        g_autofree char *uuid = g_uuid_string_random();
        dv_core(engine)->server_id = g_strdup_printf("%s/%s", g_get_host_name(), uuid);
    }
    {
        DvKeyringOptions ko = {
            .state_dir = dv_core(engine)->state_dir,
            .machine_id_path = opts->machine_id_path,
            .recovery_key_path = opts->recovery_key_path,
        };
        g_autoptr(GError) local = NULL;
        g_autofree char *dir_conf = dv_directory_settings_path(dv_core(engine)->state_dir);

        /* The directory protector, when this installation uses one. */
        if (g_file_test(dir_conf, G_FILE_TEST_EXISTS)) {
            g_autoptr(DvDirectorySettings) ds = dv_directory_settings_load(dir_conf, error);
            if (ds == NULL)
                return NULL;
            dv_core(engine)->directory =
                dv_directory_settings_protector(ds, dv_core(engine)->installation_id, error);
            if (dv_core(engine)->directory == NULL)
                return NULL;
            ko.protectors = &dv_core(engine)->directory;
            ko.n_protectors = 1;
        }
        dv_core(engine)->keyring = dv_keyring_open(dv_core(engine)->store, &ko, error);
        if (dv_core(engine)->keyring == NULL)
            return NULL;
        /* The first start makes key k1 with the host protector.  When keys
         * exist but cannot be opened here, the server still starts: every
         * secret under them is reported unreadable with the reason, and
         * nothing is rewritten. */
        if (!dv_keyring_initialize(dv_core(engine)->keyring, &local))
            g_warning("secrets: %s", local->message);
    }
    dv_core(engine)->virt = dv_virt_new();
    dv_virt_set_uri_policy(dv_core(engine)->virt, opts->allow_simulated_hosts,
                           opts->allow_uri_parameters);
    dv_core(engine)->migration_allow_unsafe = opts->allow_unsafe_migration;
    dv_core(engine)->auth = dv_auth_new(dv_core(engine)->store);
    dv_core(engine)->jobs = dv_job_manager_new(dv_core(engine)->store, dv_core(engine)->server_id,
                                               opts->job_workers > 0 ? opts->job_workers : 16);
    /* Before recovery, which takes leases too. */
    if (opts->job_lease_ms > 0) {
        if (opts->job_lease_ms < DV_ENGINE_JOB_LEASE_MIN_S * 1000 ||
            opts->job_lease_ms > DV_ENGINE_JOB_LEASE_MAX_S * 1000) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "job_lease",
                               "the job lease must be %d to %d seconds", DV_ENGINE_JOB_LEASE_MIN_S,
                               DV_ENGINE_JOB_LEASE_MAX_S);
            return NULL;
        }
        dv_job_manager_set_lease(dv_core(engine)->jobs, opts->job_lease_ms, opts->job_lease_ms / 4);
    }
    dv_engine_hosts_register(engine);
    dv_engine_vms_register(engine);
    dv_engine_objects_register(engine);
    dv_engine_secret_objects_register(engine);
    dv_engine_catalogs_register(engine);
    dv_engine_debug_register(engine);
    /* The operation table: the facade's rows, then each feature's. */
    dv_engine_ops_register(engine);
    dv_engine_hosts_register_ops(engine);
    dv_engine_vms_register_ops(engine);
    dv_engine_catalogs_register_ops(engine);
    dv_engine_access_register_ops(engine);
    dv_engine_metrics_start(engine);
    if (!dv_engine_ensure_default_share(engine, error))
        return NULL;
    if (opts->serve && !dv_engine_register(engine, error))
        return NULL;
    if (!opts->no_recover &&
        !dv_job_manager_recover(dv_core(engine)->jobs, &engine->recovered_resumed,
                                &engine->recovered_failed, error))
        return NULL;
    /* After the jobs: rows a resumed job owns are left to it. */
    if (!opts->no_recover && !dv_engine_recover_rows(engine, 0, NULL, error))
        return NULL;
    /* A server renews its jobs' leases and takes over those of servers
     * that stopped (docs/DECISIONS.md, "Leased jobs"). */
    if (opts->serve)
        dv_job_manager_start_leases(dv_core(engine)->jobs);
    /* A server keeps its view of every host current (docs/VIRT.md,
     * "Events"); drover-setup and in-process tests do not watch. */
    if (opts->serve && !opts->no_watch &&
        !dv_engine_hosts_watch_start(engine, opts->watch_resync_ms, 0, error))
        return NULL;
    return g_steal_pointer(&engine);
}

void
dv_engine_free(DvEngine *engine)
{
    if (engine == NULL)
        return;
    dv_engine_metrics_stop(engine);
    /* Event work writes rows and reads hosts: it stops first. */
    dv_engine_hosts_watch_stop(engine);
    g_clear_pointer(&dv_core(engine)->jobs, dv_job_manager_free);
    if (dv_core(engine)->store != NULL)
        dv_engine_unregister(engine);
    g_clear_pointer(&dv_core(engine)->auth, dv_auth_free);
    /* The host handles go before the virt layer they belong to. */
    dv_core_clear(dv_core(engine));
    g_clear_pointer(&dv_core(engine)->virt, dv_virt_free);
    g_clear_pointer(&dv_core(engine)->keyring, dv_keyring_free);
    g_clear_pointer(&dv_core(engine)->directory, dv_key_protector_free);
    g_clear_pointer(&dv_core(engine)->store, dv_store_free);
    g_clear_pointer(&engine->db_lock, dv_store_lock_release);
    g_free(dv_core(engine)->state_dir);
    g_free(dv_core(engine)->server_id);
    g_free(dv_core(engine)->installation_id);
    g_free(dv_core(engine)->default_share_name);
    g_free(dv_core(engine)->default_share_path);
    g_free(dv_core(engine)->library_root);
    g_free(engine);
}

DvStore *
dv_engine_get_store(DvEngine *engine)
{
    return dv_core(engine)->store;
}

DvJobManager *
dv_engine_get_jobs(DvEngine *engine)
{
    return dv_core(engine)->jobs;
}

DvAuth *
dv_engine_get_auth(DvEngine *engine)
{
    return dv_core(engine)->auth;
}

const char *
dv_engine_get_state_dir(DvEngine *engine)
{
    return dv_core(engine)->state_dir;
}

DvKeyring *
dv_engine_get_keyring(DvEngine *engine)
{
    return dv_core(engine)->keyring;
}

const char *
dv_engine_get_installation_id(DvEngine *engine)
{
    return dv_core(engine)->installation_id;
}

const char *
dv_engine_get_server_id(DvEngine *engine)
{
    return dv_core(engine)->server_id;
}

void
dv_engine_get_recovery(DvEngine *engine, guint *ret_resumed, guint *ret_failed)
{
    if (ret_resumed != NULL)
        *ret_resumed = engine->recovered_resumed;
    if (ret_failed != NULL)
        *ret_failed = engine->recovered_failed;
}




JsonObject *
dv_engine_list(DvEngine *engine, DvKind kind, GHashTable *query, GError **error)
{
    return dv_core_list(engine, kind, query, error);
}

JsonObject *
dv_engine_get(DvEngine *engine, DvKind kind, const char *id_or_name, GError **error)
{
    g_autoptr(JsonObject) rec = dv_core_resolve(engine, kind, id_or_name, NULL, error);
    if (rec == NULL)
        return NULL;
    return dv_core_shape(engine, kind, rec);
}

JsonObject *
dv_engine_list_for(DvEngine *engine, const DvActor *actor, DvKind kind, GHashTable *query,
                   GError **error)
{
    return dv_core_list_for(engine, actor, kind, query, error);
}

JsonObject *
dv_engine_get_for(DvEngine *engine, const DvActor *actor, DvKind kind, const char *id_or_name,
                  GError **error)
{
    return dv_core_get_for(engine, actor, kind, id_or_name, error);
}

JsonObject *
dv_engine_health(DvEngine *engine)
{
    JsonObject *out = json_object_new();
    JsonObject *db = json_object_new();
    g_autoptr(GError) error = NULL;
    g_autofree char *detail = NULL;
    guint version = dv_store_get_schema_version(dv_core(engine)->store, &error);
    DvDbState state = dv_db_check_state(dv_store_get_db(dv_core(engine)->store), &detail);
    gboolean ok = error == NULL && state == DV_DB_STATE_OK;

    json_object_set_string_member(out, "status", ok ? "ok" : "degraded");
    json_object_set_string_member(out, "database",
                                  ok              ? "ok"
                                  : error != NULL ? error->message
                                                  : detail);
    /* What is wrong with the database file, for monitoring: */
    json_object_set_string_member(db, "state", dv_db_state_to_string(state));
    if (detail != NULL)
        json_object_set_string_member(db, "detail", detail);
    else if (error != NULL)
        json_object_set_string_member(db, "detail", error->message);
    else
        json_object_set_null_member(db, "detail");
    json_object_set_object_member(out, "database_state", db);
    json_object_set_int_member(out, "schema_version", version);
    json_object_set_int_member(out, "jobs_active",
                               dv_job_manager_get_n_active(dv_core(engine)->jobs));
    return out;
}

JsonObject *
dv_engine_version(DvEngine *engine)
{
    JsonObject *out = json_object_new();
    json_object_set_string_member(out, "version", DV_VERSION);
    json_object_set_string_member(out, "api", "v1");
    json_object_set_int_member(out, "schema_version", dv_store_get_known_version());
    return out;
}

/* --- dispatch ------------------------------------------------------------ */

JsonObject *
dv_engine_create(DvEngine *engine, DvKind kind, JsonObject *body, const DvActor *actor,
                 GError **error)
{
    switch (kind) {
    case DV_KIND_HOST:
        return dv_engine_host_add(engine, body, actor, error);
    case DV_KIND_VM:
        return dv_engine_vm_create(engine, body, actor, error);
    case DV_KIND_CATALOG:
        return dv_engine_catalog_create(engine, body, actor, error);
    case DV_KIND_HOST_GROUP:
    case DV_KIND_CLUSTER:
    case DV_KIND_LIBRARY_SHARE:
    case DV_KIND_TEMPLATE:
        return dv_engine_object_create(engine, kind, body, actor, error);
    case DV_KIND_RUN_AS:
    case DV_KIND_GUEST_OS_PROFILE:
    case DV_KIND_SETTING:
        return dv_engine_secret_object_create(engine, kind, body, actor, error);
    default:
        break;
    }
    g_set_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED,
                "%ss cannot be created; they are read from hosts",
                dv_core_kind_info(kind)->singular);
    return NULL;
}

JsonObject *
dv_engine_update(DvEngine *engine, DvKind kind, const char *id_or_name, JsonObject *body,
                 const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) obj = dv_core_resolve(engine, kind, id_or_name, NULL, error);
    if (obj == NULL)
        return NULL;
    switch (kind) {
    case DV_KIND_HOST:
        return dv_engine_host_update(engine, obj, body, actor, error);
    case DV_KIND_HOST_GROUP:
    case DV_KIND_CLUSTER:
        return dv_engine_object_update(engine, kind, obj, body, actor, error);
    case DV_KIND_RUN_AS:
    case DV_KIND_GUEST_OS_PROFILE:
    case DV_KIND_SETTING:
        return dv_engine_secret_object_update(engine, kind, obj, body, actor, error);
    default:
        break;
    }
    g_set_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED, "%ss cannot be changed in place",
                dv_core_kind_info(kind)->singular);
    return NULL;
}

JsonObject *
dv_engine_delete(DvEngine *engine, DvKind kind, const char *id_or_name, GHashTable *query,
                 const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) obj = dv_core_resolve(engine, kind, id_or_name, NULL, error);
    if (obj == NULL)
        return NULL;
    switch (kind) {
    case DV_KIND_HOST:
        return dv_engine_host_remove(engine, obj, actor, error);
    case DV_KIND_VM:
        return dv_engine_vm_delete(engine, obj, query, actor, error);
    case DV_KIND_CATALOG:
        return dv_engine_catalog_delete(engine, obj, query, actor, error);
    case DV_KIND_HOST_GROUP:
    case DV_KIND_CLUSTER:
    case DV_KIND_LIBRARY_SHARE:
    case DV_KIND_TEMPLATE:
        return dv_engine_object_delete(engine, kind, obj, actor, error);
    case DV_KIND_RUN_AS:
    case DV_KIND_GUEST_OS_PROFILE:
    case DV_KIND_SETTING:
        return dv_engine_secret_object_delete(engine, kind, obj, actor, error);
    default:
        break;
    }
    g_set_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED, "%ss cannot be deleted here",
                dv_core_kind_info(kind)->singular);
    return NULL;
}

JsonObject *
dv_engine_job_cancel(DvEngine *engine, const char *job_id, GError **error)
{
    g_autoptr(JsonObject) row = NULL;

    if (!dv_validate_id("id", job_id, error))
        return NULL;
    if (!dv_job_manager_cancel(dv_core(engine)->jobs, job_id, error))
        return NULL;
    row = dv_store_get(dv_core(engine)->store, &dv_table_jobs, job_id, error);
    if (row == NULL)
        return NULL;
    return dv_core_shape(engine, DV_KIND_JOB, row);
}

/* --- debug jobs ------------------------------------------------------------------ */

gboolean
dv_engine_debug_enabled(void)
{
    return dv_core_debug_enabled();
}

static gboolean
dv_engine_debug_sleep_job(DvJob *job, gpointer user_data, GError **error)
{
    gint64 seconds = dv_json_get_int(dv_job_get_params(job), "seconds", 1);
    static const DvJobStep steps[] = { { "sleep", 90 }, { "finish", 10 } };

    dv_job_set_steps(job, steps, G_N_ELEMENTS(steps));
    if (!dv_job_step(job, "sleep", error))
        return FALSE;
    for (gint64 i = 0; i < seconds * 10; i++) {
        if (dv_job_is_cancelled(job)) {
            g_set_error_literal(error, DV_ERROR, DV_ERROR_CANCELLED, "cancelled while sleeping");
            return FALSE;
        }
        g_usleep(100 * 1000);
        dv_job_step_progress(job, (double)(i + 1) / (seconds * 10));
    }
    return dv_job_step(job, "finish", error);
}

const DvFieldSpec dv_engine_debug_sleep_fields[] = {
    { "seconds", DV_FIELD_INT, TRUE, "how long the job sleeps", .min = 0, .max = 3600 },
    { "resumable", DV_FIELD_BOOL, FALSE, "resume the job after a restart of droverd" },
    { NULL },
};

JsonObject *
dv_engine_debug_sleep(DvEngine *engine, JsonObject *body, const DvActor *actor, GError **error)
{
    g_autoptr(JsonObject) params = json_object_new();
    g_autofree char *target = g_uuid_string_random();

    if (!dv_core_debug_enabled()) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_NOT_FOUND, "no such API route");
        return NULL;
    }
    if (!dv_json_check_fields(body, dv_engine_debug_sleep_fields, NULL, error) ||
        !dv_validate_range("seconds", dv_json_get_int(body, "seconds", 0), 0, 3600, error))
        return NULL;
    json_object_set_int_member(params, "seconds", dv_json_get_int(body, "seconds", 0));
    return dv_core_submit(
        engine, dv_json_get_bool(body, "resumable", FALSE) ? "debug.sleep" : "debug.sleep-once",
        "debug", target, "sleep", NULL, params, actor, error);
}

void
dv_engine_debug_register(DvEngine *engine)
{
    DvJobKind a = { "debug.sleep", dv_engine_debug_sleep_job, engine, TRUE };
    DvJobKind b = { "debug.sleep-once", dv_engine_debug_sleep_job, engine, FALSE };
    if (!dv_core_debug_enabled())
        return;
    dv_job_manager_register_kind(dv_core(engine)->jobs, &a);
    dv_job_manager_register_kind(dv_core(engine)->jobs, &b);
}

/* --- housekeeping ------------------------------------------------------------------ */

gboolean
dv_engine_housekeeping(DvEngine *engine, gint64 job_retention_us, guint *ret_jobs,
                       guint *ret_sessions, GError **error)
{
    static const char *const finished[] = { "succeeded", "failed", "cancelled" };
    g_autofree char *now = g_strdup_printf("%" G_GINT64_FORMAT, dv_store_now());
    g_autofree char *cutoff = g_strdup_printf("%" G_GINT64_FORMAT, dv_store_now() - job_retention_us);
    DvFilter sf[] = { { "expires_at", DV_FILTER_LESS, now } };
    gint64 jobs = 0;
    gint64 sessions;

    for (gsize i = 0; i < G_N_ELEMENTS(finished); i++) {
        DvFilter jf[] = {
            { "state", DV_FILTER_EQ, finished[i] },
            { "finished_at", DV_FILTER_LESS, cutoff },
        };
        gint64 n = dv_store_delete_matching(dv_core(engine)->store, &dv_table_jobs, jf,
                                            G_N_ELEMENTS(jf), error);
        if (n < 0)
            return FALSE;
        jobs += n;
    }
    sessions = dv_store_delete_matching(dv_core(engine)->store, &dv_table_sessions, sf,
                                        G_N_ELEMENTS(sf), error);
    if (sessions < 0)
        return FALSE;
    /* A create whose rollback could not be written (a full disk) is
     * settled once the store takes writes again, without a restart.  Rows
     * younger than that may belong to a submit still under way (an
     * update-image writes its image before its job). */
    if (!dv_engine_recover_rows(engine, DV_ENGINE_SETTLE_MIN_AGE_US, NULL, error))
        return FALSE;
    if (ret_jobs != NULL)
        *ret_jobs = (guint)jobs;
    if (ret_sessions != NULL)
        *ret_sessions = (guint)sessions;
    return TRUE;
}

JsonObject *
dv_engine_upgrade_report(DvEngine *engine, GError **error)
{
    return dv_upgrade_report_load(dv_core(engine)->store, error);
}
