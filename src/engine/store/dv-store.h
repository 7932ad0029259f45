/* The store: Drover's database, schema migrations and records.
 *
 * Records are JsonObjects whose members are a table's columns (JSON
 * columns come back as nested objects/arrays, BOOL columns as booleans).
 * Each table is described once by a DvTableDef (dv-store-tables.c) and the
 * generic calls below read and write any of them, so paging, filtering,
 * conflict reporting and JSON handling are written once for both backends.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "dv-db.h"

G_BEGIN_DECLS

typedef enum {
    DV_COL_TEXT,
    DV_COL_INT,
    DV_COL_BOOL,
    DV_COL_JSON, /* stored as TEXT; object or array in the record */
} DvColType;

typedef struct {
    const char *name;
    DvColType type;
    gboolean filterable; /* may be used in dv_store_list() filters */
    /* A TEXT column's only values (NULL-terminated), or NULL: a list
     * filter on another value cannot match and is refused (dv_core_list). */
    const char *const *values;
} DvColumn;

typedef struct {
    const char *table;          /* SQL table name, also the object type */
    const DvColumn *columns;    /* terminated by { NULL }; column 0 is "id" (TEXT UUID) */
    const char *order_column;   /* list order (with id as tie-break) */
    gboolean order_descending;
} DvTableDef;

extern const DvTableDef dv_table_users;
extern const DvTableDef dv_table_sessions;
extern const DvTableDef dv_table_host_groups;
extern const DvTableDef dv_table_clusters;
extern const DvTableDef dv_table_hosts;
extern const DvTableDef dv_table_pools;
extern const DvTableDef dv_table_volumes;
extern const DvTableDef dv_table_networks;
extern const DvTableDef dv_table_vms;
extern const DvTableDef dv_table_snapshots;
extern const DvTableDef dv_table_library_shares;
extern const DvTableDef dv_table_templates;
extern const DvTableDef dv_table_jobs;
extern const DvTableDef dv_table_settings;
extern const DvTableDef dv_table_key_versions;
extern const DvTableDef dv_table_key_protectors;
extern const DvTableDef dv_table_secrets;
extern const DvTableDef dv_table_run_as_accounts;
extern const DvTableDef dv_table_guest_os_profiles;
extern const DvTableDef dv_table_app_settings;
extern const DvTableDef dv_table_servers;
extern const DvTableDef dv_table_catalogs;
extern const DvTableDef dv_table_catalog_images;
extern const DvTableDef dv_table_catalog_bases;
extern const DvTableDef dv_table_catalog_machines;
extern const DvTableDef dv_table_roles;      /* access control (0007, docs/ACCESS.md) */
extern const DvTableDef dv_table_bindings;
extern const DvTableDef dv_table_api_tokens;
extern const DvTableDef dv_table_audit_log;

typedef struct _DvStore DvStore;

typedef enum {
    DV_STORE_OPEN_MIGRATE = 1 << 0,     /* apply pending migrations */
    DV_STORE_OPEN_CHECK_ONLY = 1 << 1,  /* refuse pending migrations too */
    DV_STORE_OPEN_READ_ONLY = 1 << 2,   /* write nothing (see dv_db_open_read_only());
                                         * no schema_history is DV_ERROR_NOT_FOUND */
} DvStoreOpenFlags;

/* Opens the database at @location (see dv_db_open()) and checks the schema
 * history.  Fails with DV_ERROR_SCHEMA, naming the migration, when the
 * database is newer than this build knows, when a migration is recorded as
 * dirty (started, not finished), or when an applied migration's checksum
 * differs from the one this build carries.  With DV_STORE_OPEN_MIGRATE it
 * then applies every pending migration, each in its own transaction
 * together with its history row. */
DvStore *dv_store_open(const char *location, DvStoreOpenFlags flags, GError **error);
void dv_store_free(DvStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvStore, dv_store_free)

DvDb *dv_store_get_db(DvStore *store); /* borrowed */

/* Highest migration this build carries / recorded in the database. */
guint dv_store_get_known_version(void);
guint dv_store_get_schema_version(DvStore *store, GError **error);

/* The migrations this build carries: [{version, name, checksum}], oldest first. */
JsonArray *dv_store_list_migrations(GError **error);

/* Schema history as an array of {version, name, checksum, applied_at, success}. */
JsonArray *dv_store_get_schema_history(DvStore *store, GError **error);

/* Applies the pending migrations up to and including @version (each in its
 * own transaction), after the same checks as dv_store_open().  A @version
 * at or below the current one does nothing; one above
 * dv_store_get_known_version() is DV_ERROR_SCHEMA. */
gboolean dv_store_migrate_to(DvStore *store, guint version, GError **error);

/* Tests only: migrations carried in addition to the built-in ones, as if
 * they were files named @names[i] ("0002_add_x" or "0002_add_x.sql") with
 * text @sqls[i]; one with the number of a built-in migration replaces it.
 * Both arrays NULL-terminated; NULL clears.  Process-wide. */
void dv_store_set_extra_migrations_for_test(const char *const *names, const char *const *sqls);

/* --- generic records ------------------------------------------------ */

/* Inserts @record (members not in the table are an internal error; "id"
 * must be set).  A duplicate unique value is DV_ERROR_CONFLICT naming the
 * column. */
gboolean dv_store_insert(DvStore *store, const DvTableDef *def, JsonObject *record,
                         GError **error);
/* dv_store_insert() of every JsonObject in @records, in order; stops at
 * the first failure (run it in a transaction to keep none of them). */
gboolean dv_store_insert_all(DvStore *store, const DvTableDef *def, GPtrArray *records,
                             GError **error);

/* Updates the columns present in @changes for row @id; DV_ERROR_NOT_FOUND
 * when no such row exists. */
gboolean dv_store_update(DvStore *store, const DvTableDef *def, const char *id,
                         JsonObject *changes, GError **error);

/* Deletes row @id; DV_ERROR_NOT_FOUND when no such row exists. */
/* dv_store_update() only while the row's column @guard (not one of
 * @def's) still holds @guard_value: otherwise DV_ERROR_CONFLICT whose
 * field is @guard, and nothing is written (a leased job's epoch). */
gboolean dv_store_update_if(DvStore *store, const DvTableDef *def, const char *id,
                            const char *guard, gint64 guard_value, JsonObject *changes,
                            GError **error);
gboolean dv_store_delete(DvStore *store, const DvTableDef *def, const char *id,
                         GError **error);

/* Returns the row, or NULL with DV_ERROR_NOT_FOUND ("<object> <id> not found"). */
JsonObject *dv_store_get(DvStore *store, const DvTableDef *def, const char *id,
                         GError **error);

/* Returns the first row whose @column equals @value (text compare), or NULL
 * with DV_ERROR_NOT_FOUND. */
JsonObject *dv_store_find(DvStore *store, const DvTableDef *def, const char *column,
                          const char *value, GError **error);

typedef enum {
    DV_FILTER_EQ,
    DV_FILTER_PREFIX, /* text starts with value */
    DV_FILTER_IS_NULL,
    DV_FILTER_LESS,   /* INT column below value (housekeeping, not the API) */
} DvFilterOp;

typedef struct {
    const char *column; /* must be filterable in the table def */
    DvFilterOp op;
    const char *value;  /* text form; for INT/BOOL columns a decimal/"true"/"false" */
} DvFilter;

/* One page of rows in the table's order, after the row @cursor points at
 * (NULL: from the start).  @limit is clamped to 1..DV_PAGE_MAX.
 * @ret_next_cursor (may be NULL) gets an opaque cursor for the next page,
 * or NULL on the last page.  A malformed cursor or a filter on a column
 * that is not filterable is DV_ERROR_INVALID_ARGUMENT naming "cursor" or
 * the column. */
JsonArray *dv_store_list(DvStore *store, const DvTableDef *def, const DvFilter *filters,
                         guint n_filters, guint limit, const char *cursor,
                         char **ret_next_cursor, GError **error);

/* dv_store_list() limited further by @where_sql, a trusted SQL boolean
 * expression over the table's columns with '?' placeholders for
 * @where_params (in order; both borrowed).  It is ANDed into the query
 * itself, so the database uses its indexes and the page and cursor are
 * those of the rows it leaves (the access-control list filter,
 * docs/ACCESS.md).  Never built from request text.  NULL @where_sql: as
 * dv_store_list(). */
JsonArray *dv_store_list_where(DvStore *store, const DvTableDef *def, const DvFilter *filters,
                               guint n_filters, const char *where_sql,
                               const DvSqlParam *where_params, guint n_where_params, guint limit,
                               const char *cursor, char **ret_next_cursor, GError **error);

/* Number of rows matching @filters, or -1 with @error set. */
gint64 dv_store_count(DvStore *store, const DvTableDef *def, const DvFilter *filters,
                      guint n_filters, GError **error);

/* The number of rows per distinct value of @column (and of @column2 when
 * not NULL), in one grouped query: [{<column>, [<column2>,] count}]
 * (owned).  Both must be TEXT columns of @def (else DV_ERROR_INTERNAL).
 * The metrics' inventory gauges (docs/METRICS.md). */
JsonArray *dv_store_count_by(DvStore *store, const DvTableDef *def, const char *column,
                             const char *column2, GError **error);

/* Deletes every row matching @filters; returns how many, or -1 with
 * @error set.  At least one filter is required. */
gint64 dv_store_delete_matching(DvStore *store, const DvTableDef *def, const DvFilter *filters,
                                guint n_filters, GError **error);

/* Runs @func in one transaction (see dv_db_transaction()); the generic
 * calls above may be used inside it. */
typedef gboolean (*DvStoreTxnFunc)(DvStore *store, gpointer user_data, GError **error);
gboolean dv_store_transaction(DvStore *store, DvStoreTxnFunc func, gpointer user_data,
                              GError **error);

/* Current time in microseconds since the epoch, as stored in *_at columns. */
gint64 dv_store_now(void);

/* --- backup and restore (dv-store-backup.c; drover-setup backup/restore) --- */

/* A consistent copy of the SQLite database file at @path, made with the
 * online backup API into memory (no temporary file) in one read
 * transaction, so droverd may keep writing meanwhile.  Returns the bytes of
 * a database file (owned). */
GBytes *dv_store_backup_sqlite(const char *path, GError **error);

/* Checks in memory that @image is a SQLite database passing
 * "PRAGMA quick_check"; DV_ERROR_INVALID_ARGUMENT saying why otherwise. */
gboolean dv_store_check_sqlite_image(GBytes *image, GError **error);

/* The database's size in bytes (SQLite: pages in use; PostgreSQL:
 * pg_database_size), or -1 with @error set. */
gint64 dv_store_get_size(DvStore *store, GError **error);

/* pg_dump --format=custom of @uri into @out_fd / pg_restore --clean
 * --if-exists --single-transaction of @in_fd (a dump at offset 0) into
 * @uri.  The fds stay the caller's.  A password in @uri travels in
 * PGPASSWORD, never on the command line; $DV_PG_BIN names the directory of
 * the tools (default: PATH).  Errors quote the tool's standard error. */
gboolean dv_store_pg_dump(const char *uri, int out_fd, GError **error);
gboolean dv_store_pg_restore(const char *uri, int in_fd, GError **error);

/* --- one writer per SQLite database (dv-store-lock.c) --- */

typedef struct _DvStoreLock DvStoreLock;

/* Takes the exclusive OS lock (flock, not inherited by programs started
 * later) on "<@location>.lock" beside a SQLite database, for as long as the
 * lock is not released or the process exists: droverd holds it for its
 * whole life, drover-setup while it writes the database.  @holder names
 * the taker in the lock file ("droverd", "drover-setup upgrade").  Another
 * holder, even a paused process, is DV_ERROR_CONFLICT naming it and its
 * pid.  A PostgreSQL URI: a lock that holds nothing.  A lock file the
 * caller's account cannot write still locks (opened read-only). */
DvStoreLock *dv_store_lock_acquire(const char *location, const char *holder, GError **error);
void dv_store_lock_release(DvStoreLock *lock);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvStoreLock, dv_store_lock_release)
/* "<@location>.lock" (owned); NULL for a PostgreSQL URI. */
char *dv_store_lock_path(const char *location);

/* --- what a database holds (dv-store-inspect.c; drover-setup install) --- */

typedef enum {
    DV_STORE_CONTENT_EMPTY,  /* no tables (or a missing / empty SQLite file) */
    DV_STORE_CONTENT_DROVER, /* has Drover's schema_history */
    DV_STORE_CONTENT_OTHER,  /* something else: @detail says what */
} DvStoreContent;

typedef struct {
    DvStoreContent content;
    guint schema_version; /* DROVER: highest applied migration */
    gint64 sealed_count;  /* DROVER: rows of the secrets table (0 before it existed) */
    gint64 key_versions;  /* DROVER: rows of key_versions */
    char *detail;         /* OTHER: why it is not ours (owned) */
    /* DROVER: the servers row with the newest heartbeat, if any (a running
     * droverd, or one that crashed): its hostname (owned), pid and
     * heartbeat_at (µs since the epoch). */
    char *server_host;
    gint64 server_pid;
    gint64 server_heartbeat;
} DvStoreInspection;

/* Looks at @location without changing it, migrating it or checking its
 * history: SQLite is opened read-only (immutable when no WAL file exists),
 * PostgreSQL lists the tables of the current schema.  Errors:
 * DV_ERROR_UNAVAILABLE when the file cannot be read or the server cannot be
 * reached.  Clear @ret with dv_store_inspection_clear(). */
gboolean dv_store_inspect(const char *location, DvStoreInspection *ret, GError **error);
void dv_store_inspection_clear(DvStoreInspection *inspection);

/* Drops every table of the current schema of the PostgreSQL database at
 * @uri, for drover-setup install taking back a database it found empty and
 * then populated.  Refuses (DV_ERROR_CONFLICT) unless the database now holds
 * Drover's schema_history. */
gboolean dv_store_drop_new_pg(const char *uri, GError **error);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(DvStoreInspection, dv_store_inspection_clear)

/* --- leased jobs (dv-store-jobs.c, migration 0016; docs/DECISIONS.md
 * "Leased jobs") ---
 *
 * A queued or running job row carries a lease: its owner (a server id),
 * an epoch and an expiry, all instants read from the database's clock,
 * never a server's.  A holder writes the row only while the epoch is the
 * one it read (dv_store_update_if() on "lease_epoch"); a takeover raises
 * it, so the former holder's next write is refused.  Exclusive scopes
 * (one job per catalog) are rows of job_scopes, unique per scope. */

typedef struct {
    const char *kind; /* "catalog" */
    const char *id;   /* the object's id */
    const char *name; /* for the conflict message */
} DvJobScope;

/* Takes @scopes for @job_id (call it in the transaction that writes the
 * job).  A scope held by a queued or running job is DV_ERROR_CONFLICT
 * naming that job; one left by a job that ended is taken over. */
gboolean dv_store_job_take_scopes(DvStore *store, const char *job_id, const DvJobScope *scopes,
                                  guint n_scopes, GError **error);
/* Gives @owner the lease of job @job_id for @lease_us from the database's
 * now, raising its epoch (returned in @ret_epoch).  With @only_expired,
 * only when no lease is held (none, or expired).  A job that is not
 * queued or running, or whose lease is held, is DV_ERROR_CONFLICT. */
gboolean dv_store_job_take_lease(DvStore *store, const char *job_id, const char *owner,
                                 gint64 lease_us, gboolean only_expired, gint64 *ret_epoch,
                                 GError **error);
/* Extends the lease @owner holds at @epoch; DV_ERROR_CONFLICT with field
 * "lease_epoch" when it holds it no more.  @ret_cancel_requested (may be
 * NULL): whether a cancel of the job was asked for, through any server. */
gboolean dv_store_job_renew_lease(DvStore *store, const char *job_id, const char *owner,
                                  gint64 epoch, gint64 lease_us, gboolean *ret_cancel_requested,
                                  GError **error);
/* Writes @changes to a job held at @epoch and, with @release, frees its
 * scopes in the same transaction (its end). */
gboolean dv_store_job_write(DvStore *store, const char *job_id, gint64 epoch, JsonObject *changes,
                            gboolean release, GError **error);
/* Up to @max queued or running jobs whose lease expired (or was never
 * taken), each taken for @owner: their rows with "lease_epoch" set.
 * PostgreSQL picks them with FOR UPDATE SKIP LOCKED, so servers sweeping
 * at once take different jobs. */
JsonArray *dv_store_job_claim_expired(DvStore *store, const char *owner, gint64 lease_us, guint max,
                                      GError **error);
/* The lease columns of job @job_id: owner (owned, may be NULL), epoch,
 * expiry and the database's now. */
gboolean dv_store_job_get_lease(DvStore *store, const char *job_id, char **ret_owner,
                                gint64 *ret_epoch, gint64 *ret_expires, gint64 *ret_now,
                                GError **error);

G_END_DECLS
