#define G_LOG_DOMAIN "DvSetupBackup"
#define _GNU_SOURCE /* O_TMPFILE, linkat */

/* drover-setup backup / restore.
 *
 * One archive (POSIX tar, zstd; gzip where libarchive lacks zstd) holding
 * manifest.json first, then the database (a consistent SQLite copy made in
 * memory, or a pg_dump custom-format dump), the key files that read it and
 * the config files.  The manifest records each member's sha256 and the
 * installation's key versions with their canaries, so restore can tell a
 * damaged archive and a foreign key set apart before it touches anything.
 * Layout and rules: docs/BACKUP.md. */

#include "dv-setup-backup.h"

#include "dv-config.h"
#include "dv-engine-directory.h"
#include "dv-error.h"
#include "dv-json.h"
#include "dv-keys.h"
#include "dv-secret.h"
#include "dv-store.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define DV_BACKUP_FORMAT "drover-backup 1"
#define DV_BACKUP_MANIFEST "manifest.json"
#define DV_BACKUP_SQLITE "database/drover.db"
#define DV_BACKUP_PGDUMP "database/drover.pgdump"
#define DV_BACKUP_HOST_KEY "keys/host.key"
#define DV_BACKUP_DIRECTORY "directory.conf"
#define DV_BACKUP_CONFIG "config/droverd.conf"
#define DV_BACKUP_ETC_CONFIG "config/etc/droverd.conf"
/* Key and config files and the manifest are small; anything larger is not ours. */
#define DV_BACKUP_SMALL_MAX (1024 * 1024)
/* Headers, manifest and slack on top of the estimate. */
#define DV_BACKUP_SPACE_SLACK (1024 * 1024)
#define DV_BACKUP_SERVER_STALE_US (60 * G_USEC_PER_SEC)
#define DV_BACKUP_IO_CHUNK (64 * 1024)
/* The migrations that made the tables read here: a database at an older
 * schema (a fixture, or one about to be upgraded) simply has none. */
#define DV_BACKUP_SCHEMA_SETTINGS 1
#define DV_BACKUP_SCHEMA_KEY_VERSIONS 2
#define DV_BACKUP_SCHEMA_SERVERS 3

typedef struct archive DvArchive;
static void
dv_archive_free(DvArchive *a)
{
    if (a == NULL)
        return;
    /* Both free functions release either kind. */
    archive_free(a);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvArchive, dv_archive_free)

static void
dv_fd_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}
#define DV_AUTO_FD __attribute__((cleanup(dv_fd_close))) int

/* --- members ------------------------------------------------------------- */

typedef struct {
    char *name;          /* path in the archive */
    char *dest;          /* where restore puts it (key and config files) */
    DvSecret *secret;    /* key and config files, manifest */
    GBytes *bytes;       /* the SQLite image */
    int fd;              /* the PostgreSQL dump (unnamed temp file), or -1 */
    guint64 size;
    char *sha256;
} DvBackupMember;

static void
dv_backup_member_free(DvBackupMember *m)
{
    if (m == NULL)
        return;
    g_free(m->name);
    g_free(m->dest);
    dv_secret_free(m->secret);
    if (m->bytes != NULL)
        g_bytes_unref(m->bytes);
    if (m->fd >= 0)
        close(m->fd);
    g_free(m->sha256);
    g_free(m);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvBackupMember, dv_backup_member_free)

static DvBackupMember *
dv_backup_member_new(const char *name)
{
    DvBackupMember *m = g_new0(DvBackupMember, 1);
    m->name = g_strdup(name);
    m->fd = -1;
    return m;
}

static DvBackupMember *
dv_backup_members_find(GPtrArray *members, const char *name)
{
    for (guint i = 0; i < members->len; i++) {
        DvBackupMember *m = g_ptr_array_index(members, i);
        if (g_strcmp0(m->name, name) == 0)
            return m;
    }
    return NULL;
}

static gboolean
dv_backup_name_known(const char *name)
{
    static const char *const known[] = { DV_BACKUP_MANIFEST, DV_BACKUP_SQLITE, DV_BACKUP_PGDUMP,
                                         DV_BACKUP_HOST_KEY, DV_BACKUP_DIRECTORY, DV_BACKUP_CONFIG,
                                         DV_BACKUP_ETC_CONFIG, NULL };
    return g_strv_contains(known, name);
}

/* An unnamed file (O_TMPFILE) in @dir, so nothing stays behind on a crash;
 * a named one unlinked at once where the file system lacks O_TMPFILE. */
static int
dv_backup_tmpfile(const char *dir, GError **error)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        g_autofree char *tmpl = g_build_filename(dir, ".drover-backup-XXXXXX", NULL);
        fd = g_mkstemp_full(tmpl, O_RDWR | O_CLOEXEC, 0600);
        if (fd >= 0)
            unlink(tmpl);
    }
    if (fd < 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot make a temporary file in %s: %s", dir,
                    g_strerror(errno));
        return -1;
    }
    return fd;
}

/* A small file read into guarded memory: NULL with DV_ERROR_NOT_FOUND when
 * it does not exist. */
static DvSecret *
dv_backup_read_small(const char *path, GError **error)
{
    DV_AUTO_FD fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    g_autoptr(DvSecret) data = NULL;
    struct stat st;
    gsize done = 0;

    if (fd < 0) {
        g_set_error(error, DV_ERROR, errno == ENOENT ? DV_ERROR_NOT_FOUND : DV_ERROR_PERMISSION_DENIED,
                    "cannot read %s: %s", path, g_strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT, "%s is not a regular file", path);
        return NULL;
    }
    if (st.st_size <= 0 || st.st_size > DV_BACKUP_SMALL_MAX) {
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT, "%s has %lld bytes (1 to %d expected)", path,
                    (long long)st.st_size, DV_BACKUP_SMALL_MAX);
        return NULL;
    }
    data = dv_secret_new((gsize)st.st_size);
    while (done < (gsize)st.st_size) {
        ssize_t n = read(fd, dv_secret_get_data_mutable(data) + done, (gsize)st.st_size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot read %s: %s", path,
                        n < 0 ? g_strerror(errno) : "file shrank while being read");
            return NULL;
        }
        done += (gsize)n;
    }
    return g_steal_pointer(&data);
}

static char *
dv_backup_sha256_fd(int fd, guint64 *ret_size, GError **error)
{
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    g_autofree guint8 *buf = g_malloc(DV_BACKUP_IO_CHUNK);
    guint64 size = 0;

    if (lseek(fd, 0, SEEK_SET) < 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "lseek: %s", g_strerror(errno));
        return NULL;
    }
    for (;;) {
        ssize_t n = read(fd, buf, DV_BACKUP_IO_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot read the dump: %s", g_strerror(errno));
            return NULL;
        }
        if (n == 0)
            break;
        g_checksum_update(sum, buf, n);
        size += (guint64)n;
    }
    *ret_size = size;
    return g_strdup(g_checksum_get_string(sum));
}

static void
dv_backup_member_hash(DvBackupMember *m)
{
    if (m->secret != NULL) {
        m->size = dv_secret_get_len(m->secret);
        m->sha256 = g_compute_checksum_for_data(G_CHECKSUM_SHA256, dv_secret_get_data(m->secret), m->size);
    } else if (m->bytes != NULL) {
        gsize len = 0;
        const guint8 *data = g_bytes_get_data(m->bytes, &len);
        m->size = len;
        m->sha256 = g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, len);
    }
}

/* --- space ---------------------------------------------------------------- */

gboolean
dv_setup_backup_check_space(const char *dir, guint64 needed, const struct statvfs *st, GError **error)
{
    guint64 avail = (guint64)st->f_bavail * (guint64)(st->f_frsize != 0 ? st->f_frsize : st->f_bsize);

    if (needed > avail) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE,
                    "not enough space in %s for the backup: about %" G_GUINT64_FORMAT " MiB needed, %"
                    G_GUINT64_FORMAT " MiB free; nothing was written",
                    dir, (needed + 1024 * 1024 - 1) / (1024 * 1024), avail / (1024 * 1024));
        return FALSE;
    }
    return TRUE;
}

/* --- what the database says ------------------------------------------------ */

static JsonArray *
dv_backup_list_all(DvStore *store, const DvTableDef *def, GError **error)
{
    g_autoptr(JsonArray) all = json_array_new();
    g_autofree char *cursor = NULL;

    do {
        g_autofree char *next = NULL;
        g_autoptr(JsonArray) page = dv_store_list(store, def, NULL, 0, 500, cursor, &next, error);
        if (page == NULL)
            return NULL;
        for (guint i = 0; i < json_array_get_length(page); i++)
            json_array_add_element(all, json_node_copy(json_array_get_element(page, i)));
        g_free(cursor);
        cursor = g_steal_pointer(&next);
    } while (cursor != NULL);
    return g_steal_pointer(&all);
}

/* The installation id, or NULL (no error) for a database with none yet. */
static char *
dv_backup_installation_id(DvStore *store, guint schema, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonObject) row = NULL;

    if (schema < DV_BACKUP_SCHEMA_SETTINGS)
        return NULL;
    row = dv_store_find(store, &dv_table_settings, "name", "installation_id", &local);

    if (row == NULL) {
        if (g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
            return NULL;
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    return g_strdup(dv_json_get_string(row, "value", NULL));
}

/* [{key_id, version, state, canary}] in version order. */
static JsonArray *
dv_backup_key_versions(DvStore *store, guint schema, GError **error)
{
    g_autoptr(JsonArray) rows = NULL;
    g_autoptr(JsonArray) out = json_array_new();

    if (schema < DV_BACKUP_SCHEMA_KEY_VERSIONS)
        return g_steal_pointer(&out);
    rows = dv_backup_list_all(store, &dv_table_key_versions, error);
    if (rows == NULL)
        return NULL;
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *r = json_array_get_object_element(rows, i);
        g_autoptr(JsonObject) k = json_object_new();
        json_object_set_string_member(k, "key_id", dv_json_get_string(r, "id", ""));
        json_object_set_int_member(k, "version", dv_json_get_int(r, "version", 0));
        json_object_set_string_member(k, "state", dv_json_get_string(r, "state", ""));
        json_object_set_string_member(k, "canary", dv_json_get_string(r, "canary", ""));
        json_array_add_object_element(out, g_steal_pointer(&k));
    }
    return g_steal_pointer(&out);
}

static char *
dv_backup_location(const DvSetupBackupOptions *opts)
{
    if (opts->database != NULL)
        return g_strdup(opts->database);
    return g_build_filename(opts->state_dir, "drover.db", NULL);
}

static gboolean
dv_backup_is_pg(const char *location)
{
    return g_str_has_prefix(location, "postgresql://") || g_str_has_prefix(location, "postgres://");
}

static char *
dv_backup_etc_dir(const DvSetupBackupOptions *opts)
{
    return g_strdup(opts->etc_dir != NULL ? opts->etc_dir : "/etc/drover");
}

/* The key and config files present, each with where it lives. */
static gboolean
dv_backup_collect_files(const DvSetupBackupOptions *opts, GPtrArray *members, GError **error)
{
    g_autofree char *etc = dv_backup_etc_dir(opts);
    g_autofree char *host_key = g_build_filename(opts->state_dir, "keys", "host.key", NULL);
    g_autofree char *directory = dv_directory_settings_path(opts->state_dir);
    g_autofree char *config = g_build_filename(opts->state_dir, "droverd.conf", NULL);
    g_autofree char *etc_config = g_build_filename(etc, "droverd.conf", NULL);
    const struct {
        const char *name;
        const char *path;
    } files[] = {
        { DV_BACKUP_HOST_KEY, host_key },
        { DV_BACKUP_DIRECTORY, directory },
        { DV_BACKUP_CONFIG, config },
        { DV_BACKUP_ETC_CONFIG, etc_config },
    };

    for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autoptr(GError) local = NULL;
        g_autoptr(DvSecret) data = dv_backup_read_small(files[i].path, &local);
        DvBackupMember *m;
        if (data == NULL) {
            if (g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
                continue;
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        m = dv_backup_member_new(files[i].name);
        m->dest = g_strdup(files[i].path);
        m->secret = g_steal_pointer(&data);
        dv_backup_member_hash(m);
        g_ptr_array_add(members, m);
    }
    return TRUE;
}

/* --- writing the archive ----------------------------------------------------- */

static gboolean
dv_archive_fail(struct archive *a, const char *what, GError **error)
{
    g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot write the archive (%s): %s", what,
                archive_error_string(a) != NULL ? archive_error_string(a) : "unknown error");
    return FALSE;
}

static gboolean
dv_archive_write_all(struct archive *a, const void *data, gsize len, GError **error)
{
    const guint8 *p = data;
    while (len > 0) {
        la_ssize_t n = archive_write_data(a, p, MIN(len, (gsize)DV_BACKUP_IO_CHUNK));
        if (n <= 0)
            return dv_archive_fail(a, "data", error);
        p += n;
        len -= (gsize)n;
    }
    return TRUE;
}

static gboolean
dv_archive_write_member(struct archive *a, DvBackupMember *m, gint64 mtime, GError **error)
{
    struct archive_entry *e = archive_entry_new();
    gboolean ok;

    archive_entry_set_pathname(e, m->name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_size(e, (la_int64_t)m->size);
    archive_entry_set_mtime(e, mtime, 0);
    ok = archive_write_header(a, e) == ARCHIVE_OK;
    archive_entry_free(e);
    if (!ok)
        return dv_archive_fail(a, m->name, error);
    if (m->secret != NULL)
        return dv_archive_write_all(a, dv_secret_get_data(m->secret), m->size, error);
    if (m->bytes != NULL) {
        gsize len = 0;
        const void *data = g_bytes_get_data(m->bytes, &len);
        return dv_archive_write_all(a, data, len, error);
    }
    if (m->fd >= 0) {
        g_autofree guint8 *buf = g_malloc(DV_BACKUP_IO_CHUNK);
        guint64 left = m->size;
        if (lseek(m->fd, 0, SEEK_SET) < 0) {
            g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "lseek: %s", g_strerror(errno));
            return FALSE;
        }
        while (left > 0) {
            ssize_t n = read(m->fd, buf, MIN(left, (guint64)DV_BACKUP_IO_CHUNK));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot read the dump: %s",
                            n < 0 ? g_strerror(errno) : "it shrank");
                return FALSE;
            }
            if (!dv_archive_write_all(a, buf, (gsize)n, error))
                return FALSE;
            left -= (guint64)n;
        }
    }
    return TRUE;
}

static gboolean
dv_fsync_dir(const char *dir, GError **error)
{
    DV_AUTO_FD fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot sync %s: %s", dir, g_strerror(errno));
        return FALSE;
    }
    return TRUE;
}

/* Writes the archive into an unnamed file in @out_dir and links it as
 * @out_path at the end: a failure or crash leaves nothing there, and a
 * file that appeared meanwhile is not overwritten. */
static gboolean
dv_backup_write_archive(const char *out_path, GPtrArray *members, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(out_path);
    g_autoptr(DvArchive) a = archive_write_new();
    g_autofree char *proc = NULL;
    gint64 mtime = g_get_real_time() / G_USEC_PER_SEC;
    gboolean named = FALSE;
    DV_AUTO_FD fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);

    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        fd = open(out_path, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
        named = fd >= 0;
    }
    if (fd < 0) {
        g_set_error(error, DV_ERROR, errno == EEXIST ? DV_ERROR_CONFLICT : DV_ERROR_UNAVAILABLE,
                    "cannot create %s: %s", out_path, g_strerror(errno));
        return FALSE;
    }
    if (fchmod(fd, 0600) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot set the mode of %s: %s", out_path,
                    g_strerror(errno));
        if (named)
            unlink(out_path);
        return FALSE;
    }
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        (archive_write_add_filter_zstd(a) != ARCHIVE_OK && archive_write_add_filter_gzip(a) != ARCHIVE_OK) ||
        archive_write_open_fd(a, fd) != ARCHIVE_OK) {
        dv_archive_fail(a, "open", error);
        if (named)
            unlink(out_path);
        return FALSE;
    }
    for (guint i = 0; i < members->len; i++) {
        if (!dv_archive_write_member(a, g_ptr_array_index(members, i), mtime, error)) {
            if (named)
                unlink(out_path);
            return FALSE;
        }
    }
    if (archive_write_close(a) != ARCHIVE_OK) {
        dv_archive_fail(a, "close", error);
        if (named)
            unlink(out_path);
        return FALSE;
    }
    if (fsync(fd) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot write %s: %s", out_path, g_strerror(errno));
        if (named)
            unlink(out_path);
        return FALSE;
    }
    if (!named) {
        proc = g_strdup_printf("/proc/self/fd/%d", fd);
        if (linkat(AT_FDCWD, proc, AT_FDCWD, out_path, AT_SYMLINK_FOLLOW) != 0) {
            g_set_error(error, DV_ERROR, errno == EEXIST ? DV_ERROR_CONFLICT : DV_ERROR_UNAVAILABLE,
                        "cannot create %s: %s", out_path, g_strerror(errno));
            return FALSE;
        }
    }
    return dv_fsync_dir(dir, error);
}

gboolean
dv_setup_backup(const DvSetupBackupOptions *opts, const char *out_path, GError **error)
{
    g_autofree char *location = dv_backup_location(opts);
    g_autofree char *out_dir = g_path_get_dirname(out_path);
    g_autoptr(GPtrArray) members = g_ptr_array_new_with_free_func((GDestroyNotify)dv_backup_member_free);
    g_autoptr(DvStore) store = NULL;
    g_autoptr(JsonArray) keys = NULL;
    g_autoptr(JsonObject) manifest = json_object_new();
    g_autoptr(JsonArray) listed = json_array_new();
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *now_text = g_date_time_format_iso8601(now);
    g_autofree char *installation_id = NULL;
    g_autofree char *manifest_text = NULL;
    g_autoptr(DvBackupMember) db_member = NULL;
    DvBackupMember *mm;
    gboolean pg = dv_backup_is_pg(location);
    struct statvfs st;
    struct stat sb;
    guint64 needed = DV_BACKUP_SPACE_SLACK;
    gint64 db_size;
    guint version;
    GError *local = NULL;

    g_return_val_if_fail(opts != NULL && opts->state_dir != NULL && out_path != NULL, FALSE);

    if (lstat(out_path, &sb) == 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT,
                    "%s already exists; a backup never overwrites a file: choose another name", out_path);
        return FALSE;
    }
    if (!g_file_test(out_dir, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "directory %s does not exist", out_dir);
        return FALSE;
    }
    if (!pg && !g_file_test(location, G_FILE_TEST_IS_REGULAR)) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "no database at %s", location);
        return FALSE;
    }
    /* No migration and no check of pending ones: a backup is what one
     * takes before migrating.  A newer or dirty schema is still refused. */
    store = dv_store_open(location, 0, error);
    if (store == NULL)
        return FALSE;
    version = dv_store_get_schema_version(store, &local);
    if (local != NULL) {
        g_propagate_error(error, local);
        return FALSE;
    }
    installation_id = dv_backup_installation_id(store, version, &local);
    if (local != NULL) {
        g_propagate_error(error, local);
        return FALSE;
    }
    keys = dv_backup_key_versions(store, version, error);
    if (keys == NULL)
        return FALSE;

    if (!dv_backup_collect_files(opts, members, error))
        return FALSE;
    if (json_array_get_length(keys) > 0 && dv_backup_members_find(members, DV_BACKUP_HOST_KEY) == NULL &&
        dv_backup_members_find(members, DV_BACKUP_DIRECTORY) == NULL && !opts->force) {
        g_autofree char *host_key = g_build_filename(opts->state_dir, "keys", "host.key", NULL);
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND,
                    "missing key file %s (and no directory.conf): the secrets in this database could "
                    "not be read from the backup; check --state-dir, or pass --force to back up "
                    "without key material (only a recovery key would open them)",
                    host_key);
        return FALSE;
    }

    /* Refuse before making anything: the database copy (and for
     * PostgreSQL its dump in a temp file beside the archive) plus files. */
    db_size = dv_store_get_size(store, error);
    if (db_size < 0)
        return FALSE;
    needed += (guint64)db_size * (pg ? 2 : 1);
    for (guint i = 0; i < members->len; i++)
        needed += ((DvBackupMember *)g_ptr_array_index(members, i))->size;
    if (statvfs(out_dir, &st) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot read the free space of %s: %s", out_dir,
                    g_strerror(errno));
        return FALSE;
    }
    if (!dv_setup_backup_check_space(out_dir, needed, &st, error))
        return FALSE;

    if (pg) {
        db_member = dv_backup_member_new(DV_BACKUP_PGDUMP);
        db_member->fd = dv_backup_tmpfile(out_dir, error);
        if (db_member->fd < 0)
            return FALSE;
        g_clear_pointer(&store, dv_store_free);
        if (!dv_store_pg_dump(location, db_member->fd, error))
            return FALSE;
        db_member->sha256 = dv_backup_sha256_fd(db_member->fd, &db_member->size, error);
        if (db_member->sha256 == NULL)
            return FALSE;
    } else {
        db_member = dv_backup_member_new(DV_BACKUP_SQLITE);
        g_clear_pointer(&store, dv_store_free);
        db_member->bytes = dv_store_backup_sqlite(location, error);
        if (db_member->bytes == NULL)
            return FALSE;
        dv_backup_member_hash(db_member);
    }
    g_ptr_array_insert(members, 0, g_steal_pointer(&db_member));

    json_object_set_string_member(manifest, "format", DV_BACKUP_FORMAT);
    json_object_set_string_member(manifest, "drover_version", DV_VERSION);
    json_object_set_int_member(manifest, "schema_version", version);
    json_object_set_string_member(manifest, "database_kind", pg ? "postgresql" : "sqlite");
    if (installation_id != NULL)
        json_object_set_string_member(manifest, "installation_id", installation_id);
    else
        json_object_set_null_member(manifest, "installation_id");
    json_object_set_string_member(manifest, "created_at", now_text);
    json_object_set_string_member(manifest, "hostname", g_get_host_name());
    json_object_set_array_member(manifest, "key_versions", json_array_ref(keys));
    for (guint i = 0; i < members->len; i++) {
        DvBackupMember *m = g_ptr_array_index(members, i);
        g_autoptr(JsonObject) o = json_object_new();
        json_object_set_string_member(o, "name", m->name);
        json_object_set_int_member(o, "size", (gint64)m->size);
        json_object_set_string_member(o, "sha256", m->sha256);
        json_array_add_object_element(listed, g_steal_pointer(&o));
    }
    json_object_set_array_member(manifest, "members", json_array_ref(listed));
    manifest_text = dv_json_object_to_string(manifest, TRUE);
    mm = dv_backup_member_new(DV_BACKUP_MANIFEST);
    mm->secret = dv_secret_new_from_string(manifest_text);
    dv_backup_member_hash(mm);
    g_ptr_array_insert(members, 0, mm);

    if (!dv_backup_write_archive(out_path, members, error))
        return FALSE;

    g_print("backup written to %s (mode 0600): %s database at schema version %u, %u key versions, "
            "installation %s\n",
            out_path, pg ? "PostgreSQL" : "SQLite", version, json_array_get_length(keys),
            installation_id != NULL ? installation_id : "(none yet)");
    for (guint i = 1; i < members->len; i++) {
        DvBackupMember *m = g_ptr_array_index(members, i);
        g_print("  %-26s %10" G_GUINT64_FORMAT " bytes  sha256 %s\n", m->name, m->size, m->sha256);
    }
    g_print("not included: the recovery key (Drover never holds it; keep it offline)\n");
    return TRUE;
}

/* --- reading the archive ------------------------------------------------------ */

static gboolean
dv_archive_read_fail(struct archive *a, const char *path, const char *what, GError **error)
{
    g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT, "cannot read %s (%s): %s", path, what,
                archive_error_string(a) != NULL ? archive_error_string(a) : "not a Drover backup");
    return FALSE;
}

/* Reads the current entry's data into @m (memory or, for the dump, an
 * unnamed temp file in @tmp_dir), hashing on the way. */
static gboolean
dv_restore_read_member(struct archive *a, const char *path, DvBackupMember *m, gint64 size,
                       const char *tmp_dir, GError **error)
{
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    g_autofree guint8 *buf = g_malloc(DV_BACKUP_IO_CHUNK);
    guint8 *dest = NULL;
    guint8 *big = NULL;
    guint64 got = 0;

    if (size < 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT, "member %s has no size", m->name);
        return FALSE;
    }
    if (g_strcmp0(m->name, DV_BACKUP_PGDUMP) == 0) {
        m->fd = dv_backup_tmpfile(tmp_dir, error);
        if (m->fd < 0)
            return FALSE;
    } else if (g_strcmp0(m->name, DV_BACKUP_SQLITE) == 0) {
        big = g_try_malloc(MAX(size, 1));
        if (big == NULL) {
            g_set_error(error, DV_ERROR, DV_ERROR_TOO_LARGE, "member %s: %" G_GINT64_FORMAT
                        " bytes do not fit in memory", m->name, size);
            return FALSE;
        }
        dest = big;
        m->bytes = g_bytes_new_take(big, (gsize)size);
    } else {
        if (size == 0 || size > DV_BACKUP_SMALL_MAX) {
            g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                        "member %s has %" G_GINT64_FORMAT " bytes (1 to %d expected)", m->name, size,
                        DV_BACKUP_SMALL_MAX);
            return FALSE;
        }
        m->secret = dv_secret_new((gsize)size);
        dest = dv_secret_get_data_mutable(m->secret);
    }
    for (;;) {
        guint8 *into = dest != NULL ? dest + got : buf;
        gsize want = dest != NULL ? (gsize)MIN((guint64)size - got, (guint64)DV_BACKUP_IO_CHUNK)
                                  : DV_BACKUP_IO_CHUNK;
        la_ssize_t n;
        if (dest != NULL && want == 0) {
            /* Anything past the recorded size is an error too. */
            into = buf;
            want = 1;
        }
        n = archive_read_data(a, into, want);
        if (n < 0)
            return dv_archive_read_fail(a, path, m->name, error);
        if (n == 0)
            break;
        if (dest != NULL && got + (guint64)n > (guint64)size) {
            g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT, "member %s is longer than its header says",
                        m->name);
            return FALSE;
        }
        g_checksum_update(sum, into, n);
        if (m->fd >= 0) {
            gsize off = 0;
            while (off < (gsize)n) {
                ssize_t w = write(m->fd, into + off, (gsize)n - off);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0) {
                    g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot write the dump to %s: %s",
                                tmp_dir, g_strerror(errno));
                    return FALSE;
                }
                off += (gsize)w;
            }
        }
        got += (guint64)n;
    }
    if (got != (guint64)size) {
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT, "member %s is truncated", m->name);
        return FALSE;
    }
    m->size = got;
    m->sha256 = g_strdup(g_checksum_get_string(sum));
    return TRUE;
}

/* Every member read and checked against the manifest. */
static JsonObject *
dv_restore_read_archive(const char *path, const char *tmp_dir, GPtrArray *members, GError **error)
{
    g_autoptr(DvArchive) a = archive_read_new();
    g_autoptr(JsonObject) manifest = NULL;
    JsonArray *listed;
    DvBackupMember *mm;
    const char *kind;
    const char *db_name;
    DV_AUTO_FD fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        g_set_error(error, DV_ERROR, errno == ENOENT ? DV_ERROR_NOT_FOUND : DV_ERROR_PERMISSION_DENIED,
                    "cannot open %s: %s", path, g_strerror(errno));
        return NULL;
    }
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_fd(a, fd, DV_BACKUP_IO_CHUNK) != ARCHIVE_OK) {
        dv_archive_read_fail(a, path, "open", error);
        return NULL;
    }
    for (;;) {
        struct archive_entry *e = NULL;
        g_autoptr(DvBackupMember) m = NULL;
        const char *name;
        int rc = archive_read_next_header(a, &e);
        if (rc == ARCHIVE_EOF)
            break;
        if (rc != ARCHIVE_OK) {
            dv_archive_read_fail(a, path, "header", error);
            return NULL;
        }
        name = archive_entry_pathname(e);
        if (name == NULL || !dv_backup_name_known(name) || archive_entry_filetype(e) != AE_IFREG) {
            g_autofree char *shown = g_strescape(name != NULL ? name : "", NULL);
            g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                        "%s holds an unexpected member '%.200s': not a Drover backup, or altered", path, shown);
            return NULL;
        }
        if (dv_backup_members_find(members, name) != NULL) {
            g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT, "%s holds member %s twice", path, name);
            return NULL;
        }
        m = dv_backup_member_new(name);
        if (!dv_restore_read_member(a, path, m, archive_entry_size_is_set(e) ? archive_entry_size(e) : -1,
                                    tmp_dir, error))
            return NULL;
        g_ptr_array_add(members, g_steal_pointer(&m));
    }

    mm = dv_backup_members_find(members, DV_BACKUP_MANIFEST);
    if (mm == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT, "%s has no %s: not a Drover backup", path,
                    DV_BACKUP_MANIFEST);
        return NULL;
    }
    manifest = dv_json_parse_object((const char *)dv_secret_get_data(mm->secret), mm->size, DV_BACKUP_SMALL_MAX,
                                    8, error);
    if (manifest == NULL) {
        g_prefix_error(error, "%s: %s: ", path, DV_BACKUP_MANIFEST);
        return NULL;
    }
    if (g_strcmp0(dv_json_get_string(manifest, "format", ""), DV_BACKUP_FORMAT) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED, "%s: unknown backup format '%s' (this Drover reads '%s')",
                    path, dv_json_get_string(manifest, "format", "?"), DV_BACKUP_FORMAT);
        return NULL;
    }
    kind = dv_json_get_string(manifest, "database_kind", "");
    db_name = g_strcmp0(kind, "sqlite") == 0 ? DV_BACKUP_SQLITE
              : g_strcmp0(kind, "postgresql") == 0 ? DV_BACKUP_PGDUMP : NULL;
    listed = dv_json_get_array(manifest, "members");
    if (db_name == NULL || listed == NULL || dv_json_get_array(manifest, "key_versions") == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                    "%s: %s lacks database_kind, members or key_versions", path, DV_BACKUP_MANIFEST);
        return NULL;
    }
    for (guint i = 0; i < json_array_get_length(listed); i++) {
        JsonObject *o = json_array_get_object_element(listed, i);
        const char *name = o != NULL ? dv_json_get_string(o, "name", "") : "";
        DvBackupMember *m = dv_backup_members_find(members, name);
        if (m == NULL || g_strcmp0(name, DV_BACKUP_MANIFEST) == 0) {
            g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                        "member %.200s is listed in the manifest of %s but missing from the archive", name, path);
            return NULL;
        }
        if (g_strcmp0(m->sha256, dv_json_get_string(o, "sha256", "")) != 0 ||
            (gint64)m->size != dv_json_get_int(o, "size", -1)) {
            g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                        "member %s of %s is damaged or altered: its sha256 differs from the manifest; "
                        "nothing was restored",
                        name, path);
            return NULL;
        }
    }
    for (guint i = 0; i < members->len; i++) {
        DvBackupMember *m = g_ptr_array_index(members, i);
        gboolean found = FALSE;
        if (g_strcmp0(m->name, DV_BACKUP_MANIFEST) == 0)
            continue;
        for (guint j = 0; j < json_array_get_length(listed) && !found; j++) {
            JsonObject *o = json_array_get_object_element(listed, j);
            found = g_strcmp0(dv_json_get_string(o, "name", ""), m->name) == 0;
        }
        if (!found) {
            g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                        "member %s of %s is not in its manifest: the archive was altered", m->name, path);
            return NULL;
        }
    }
    if (dv_backup_members_find(members, db_name) == NULL ||
        dv_backup_members_find(members, g_strcmp0(kind, "sqlite") == 0 ? DV_BACKUP_PGDUMP : DV_BACKUP_SQLITE) !=
            NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT, "%s does not hold exactly one %s database",
                    path, kind);
        return NULL;
    }
    return g_steal_pointer(&manifest);
}

/* --- checks against the target ---------------------------------------------------- */

/* The small check droverd makes in dv_engine_live_servers(): a fresh
 * heartbeat, and on this machine a live pid. */
static gboolean
dv_restore_check_no_server(DvStore *store, guint schema, const char *shown, GError **error)
{
    g_autoptr(JsonArray) rows = NULL;

    if (schema < DV_BACKUP_SCHEMA_SERVERS)
        return TRUE;
    rows = dv_backup_list_all(store, &dv_table_servers, error);
    if (rows == NULL)
        return FALSE;
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        JsonObject *row = json_array_get_object_element(rows, i);
        gint64 age = dv_store_now() - dv_json_get_int(row, "heartbeat_at", 0);
        const char *host = dv_json_get_string(row, "hostname", "?");
        gint64 pid = dv_json_get_int(row, "pid", 0);
        if (age > DV_BACKUP_SERVER_STALE_US)
            continue;
        if (g_strcmp0(host, g_get_host_name()) == 0 &&
            (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH)))
            continue;
        g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT,
                    "droverd (%s, pid %" G_GINT64_FORMAT ") is running on %s (heartbeat %" G_GINT64_FORMAT
                    " s ago); stop it before restoring",
                    host, pid, shown, age / G_USEC_PER_SEC);
        return FALSE;
    }
    return TRUE;
}

/* What differs between the installation in @store and the archive: the
 * installation id, and every key version whose canary differs or that the
 * archive lacks.  NULL when they match (or the database holds none). */
static char *
dv_restore_differences(DvStore *store, guint schema, JsonObject *manifest, GError **error)
{
    g_autoptr(GString) diff = g_string_new(NULL);
    g_autoptr(GError) local = NULL;
    g_autofree char *here_id = dv_backup_installation_id(store, schema, &local);
    g_autoptr(JsonArray) here_keys = NULL;
    JsonArray *their_keys = dv_json_get_array(manifest, "key_versions");
    const char *their_id = dv_json_get_string(manifest, "installation_id", NULL);

    if (local != NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    here_keys = dv_backup_key_versions(store, schema, error);
    if (here_keys == NULL)
        return NULL;
    if (here_id != NULL && g_strcmp0(here_id, their_id) != 0)
        g_string_append_printf(diff, "installation id differs (here %s, archive %s)", here_id,
                               their_id != NULL ? their_id : "none");
    for (guint i = 0; i < json_array_get_length(here_keys); i++) {
        JsonObject *k = json_array_get_object_element(here_keys, i);
        const char *id = dv_json_get_string(k, "key_id", "");
        const char *problem = "is not in the archive";
        for (guint j = 0; j < json_array_get_length(their_keys); j++) {
            JsonObject *t = json_array_get_object_element(their_keys, j);
            if (g_strcmp0(dv_json_get_string(t, "key_id", NULL), id) != 0)
                continue;
            problem = g_strcmp0(dv_json_get_string(t, "canary", NULL), dv_json_get_string(k, "canary", ""))
                              == 0
                          ? NULL
                          : "has another canary in the archive (another key)";
            break;
        }
        if (problem != NULL)
            g_string_append_printf(diff, "%skey %s %s", diff->len > 0 ? "; " : "", id, problem);
    }
    return diff->len > 0 ? g_string_free(g_steal_pointer(&diff), FALSE) : NULL;
}

/* --- writing files in place -------------------------------------------------------- */

typedef struct {
    char *dest;
    char *tmp; /* NULL once renamed */
} DvStaged;

static void
dv_staged_free(DvStaged *s)
{
    if (s == NULL)
        return;
    if (s->tmp != NULL)
        unlink(s->tmp);
    g_free(s->tmp);
    g_free(s->dest);
    g_free(s);
}

/* Writes @data (mode 0600, owned by this euid) beside @dest, synced. */
static gboolean
dv_restore_stage(GPtrArray *staged, const char *dest, const guint8 *data, gsize len, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(dest);
    DvStaged *s = g_new0(DvStaged, 1);
    gsize off = 0;
    DV_AUTO_FD fd = -1;

    s->dest = g_strdup(dest);
    s->tmp = g_strconcat(dest, ".restore-XXXXXX", NULL);
    g_ptr_array_add(staged, s);
    if (g_mkdir_with_parents(dir, 0700) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot create %s: %s", dir, g_strerror(errno));
        g_clear_pointer(&s->tmp, g_free);
        return FALSE;
    }
    fd = g_mkstemp_full(s->tmp, O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot write in %s: %s", dir, g_strerror(errno));
        g_clear_pointer(&s->tmp, g_free);
        return FALSE;
    }
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot write %s: %s", s->tmp, g_strerror(errno));
            return FALSE;
        }
        off += (gsize)n;
    }
    if (fchmod(fd, 0600) != 0 || fsync(fd) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot write %s: %s", s->tmp, g_strerror(errno));
        return FALSE;
    }
    return TRUE;
}

/* Keeps @path as <path>.before-restore-<stamp> (a hard link: the file
 * itself stays where it is until replaced).  Never deletes. */
static gboolean
dv_restore_keep(const char *path, const char *stamp, GString *report, GError **error)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return TRUE;
    for (guint n = 0; n < 100; n++) {
        g_autofree char *keep = n == 0 ? g_strdup_printf("%s.before-restore-%s", path, stamp)
                                       : g_strdup_printf("%s.before-restore-%s.%u", path, stamp, n);
        if (link(path, keep) == 0) {
            g_string_append_printf(report, "  kept %s\n", keep);
            return TRUE;
        }
        if (errno != EEXIST) {
            g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot keep %s as %s: %s", path, keep,
                        g_strerror(errno));
            return FALSE;
        }
    }
    g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT, "too many %s.before-restore-%s files", path, stamp);
    return FALSE;
}

/* Moves a file aside (the SQLite WAL and shm of the replaced database:
 * left in place they would be applied to the restored file). */
static gboolean
dv_restore_move_aside(const char *path, const char *stamp, GString *report, GError **error)
{
    g_autofree char *keep = g_strdup_printf("%s.before-restore-%s", path, stamp);
    struct stat st;

    if (lstat(path, &st) != 0)
        return TRUE;
    if (rename(path, keep) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot move %s aside: %s", path, g_strerror(errno));
        return FALSE;
    }
    g_string_append_printf(report, "  kept %s\n", keep);
    return TRUE;
}

static gboolean
dv_restore_commit(GPtrArray *staged, const char *stamp, GString *report, GError **error)
{
    for (guint i = 0; i < staged->len; i++) {
        DvStaged *s = g_ptr_array_index(staged, i);
        g_autofree char *dir = g_path_get_dirname(s->dest);
        if (!dv_restore_keep(s->dest, stamp, report, error))
            return FALSE;
        if (rename(s->tmp, s->dest) != 0) {
            g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot replace %s: %s", s->dest,
                        g_strerror(errno));
            return FALSE;
        }
        g_clear_pointer(&s->tmp, g_free);
        g_string_append_printf(report, "  wrote %s\n", s->dest);
        if (!dv_fsync_dir(dir, error))
            return FALSE;
    }
    return TRUE;
}

/* Where a restored key or config file goes. */
static char *
dv_restore_dest(const DvSetupBackupOptions *opts, const char *name)
{
    g_autofree char *etc = dv_backup_etc_dir(opts);

    if (g_strcmp0(name, DV_BACKUP_HOST_KEY) == 0)
        return g_build_filename(opts->state_dir, "keys", "host.key", NULL);
    if (g_strcmp0(name, DV_BACKUP_DIRECTORY) == 0)
        return dv_directory_settings_path(opts->state_dir);
    if (g_strcmp0(name, DV_BACKUP_CONFIG) == 0)
        return g_build_filename(opts->state_dir, "droverd.conf", NULL);
    if (g_strcmp0(name, DV_BACKUP_ETC_CONFIG) == 0)
        return g_build_filename(etc, "droverd.conf", NULL);
    return NULL;
}

/* Which key versions open here now, as droverd would see them through the
 * host key file: a restore on another machine or account needs the
 * recovery key or the directory, and says so. */
static void
dv_restore_report_keys(const DvSetupBackupOptions *opts, const char *location)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DvStore) store = dv_store_open(location, 0, &error);
    g_autoptr(DvKeyring) keyring = NULL;
    g_autoptr(JsonArray) versions = NULL;
    DvKeyringOptions ko = { .state_dir = opts->state_dir, .machine_id_path = opts->machine_id_path };

    if (store != NULL)
        keyring = dv_keyring_open(store, &ko, &error);
    if (keyring != NULL)
        versions = dv_keyring_check(keyring, &error);
    if (versions == NULL) {
        g_printerr("drover-setup: warning: cannot check the restored keys: %s\n", error->message);
        return;
    }
    for (guint i = 0; i < json_array_get_length(versions); i++) {
        JsonObject *v = json_array_get_object_element(versions, i);
        if (dv_json_get_bool(v, "open", FALSE))
            g_print("key %s opens here (%s)\n", dv_json_get_string(v, "key_id", "?"),
                    dv_json_get_string(v, "via", "?"));
        else
            g_print("key %s does not open through the host key file here: %s; droverd may still open it "
                    "through the directory, or run 'drover-setup keys protect-host --recovery-key FILE'\n",
                    dv_json_get_string(v, "key_id", "?"), dv_json_get_string(v, "reason", "?"));
    }
}

gboolean
dv_setup_restore(const DvSetupBackupOptions *opts, const char *in_path, GError **error)
{
    g_autofree char *location = dv_backup_location(opts);
    g_autoptr(GPtrArray) members = g_ptr_array_new_with_free_func((GDestroyNotify)dv_backup_member_free);
    g_autoptr(GPtrArray) staged = g_ptr_array_new_with_free_func((GDestroyNotify)dv_staged_free);
    g_autoptr(GString) report = g_string_new(NULL);
    g_autoptr(JsonObject) manifest = NULL;
    g_autoptr(DvStore) target = NULL;
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *stamp = g_date_time_format(now, "%Y%m%dT%H%M%SZ");
    g_autofree char *keys_dir = g_build_filename(opts->state_dir, "keys", NULL);
    g_autofree char *lock_path = g_build_filename(keys_dir, ".host.key.lock", NULL);
    gboolean pg = dv_backup_is_pg(location);
    const char *kind;
    guint target_schema = 0;
    DV_AUTO_FD lock_fd = -1;

    g_return_val_if_fail(opts != NULL && opts->state_dir != NULL && in_path != NULL, FALSE);

    if (g_mkdir_with_parents(opts->state_dir, 0700) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot create %s: %s", opts->state_dir,
                    g_strerror(errno));
        return FALSE;
    }
    manifest = dv_restore_read_archive(in_path, opts->state_dir, members, error);
    if (manifest == NULL)
        return FALSE;
    kind = dv_json_get_string(manifest, "database_kind", "");
    if (g_strcmp0(kind, pg ? "postgresql" : "sqlite") != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_SUPPORTED,
                    "%s holds a %s database and the target is %s; restore into the same kind",
                    in_path, kind, pg ? "PostgreSQL" : "SQLite");
        return FALSE;
    }
    if ((guint)dv_json_get_int(manifest, "schema_version", 0) > dv_store_get_known_version()) {
        g_set_error(error, DV_ERROR, DV_ERROR_SCHEMA,
                    "%s holds schema version %" G_GINT64_FORMAT " (Drover %s); this Drover knows up to %u: "
                    "restore it with that version or newer",
                    in_path, dv_json_get_int(manifest, "schema_version", 0),
                    dv_json_get_string(manifest, "drover_version", "?"), dv_store_get_known_version());
        return FALSE;
    }
    if (!pg) {
        DvBackupMember *db = dv_backup_members_find(members, DV_BACKUP_SQLITE);
        if (!dv_store_check_sqlite_image(db->bytes, error)) {
            g_prefix_error(error, "%s: %s: ", in_path, DV_BACKUP_SQLITE);
            return FALSE;
        }
    }

    /* The target: not served by a running droverd, and the same
     * installation with the same keys unless --force. */
    if (pg || g_file_test(location, G_FILE_TEST_EXISTS)) {
        g_autoptr(GError) local = NULL;
        target = dv_store_open(location, 0, &local);
        if (target == NULL) {
            if (!opts->force || g_error_matches(local, DV_ERROR, DV_ERROR_UNAVAILABLE)) {
                g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                           "cannot check the database to replace%s: ",
                                           opts->force ? "" : " (--force replaces an unusable one)");
                return FALSE;
            }
            g_printerr("drover-setup: warning: replacing an unusable database: %s\n", local->message);
        }
    }
    if (target != NULL) {
        g_autofree char *diff = NULL;
        g_autoptr(GError) local = NULL;
        target_schema = dv_store_get_schema_version(target, &local);
        if (local != NULL) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        if (!dv_restore_check_no_server(target, target_schema,
                                        dv_db_get_display_location(dv_store_get_db(target)), error))
            return FALSE;
        diff = dv_restore_differences(target, target_schema, manifest, &local);
        if (diff == NULL && local != NULL) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        if (diff != NULL && !opts->force) {
            g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT,
                        "refusing to restore over %s: it holds another installation or key set: %s; pass "
                        "--force to replace it anyway (the replaced files are kept)",
                        dv_db_get_display_location(dv_store_get_db(target)), diff);
            return FALSE;
        }
        if (diff != NULL)
            g_printerr("drover-setup: --force: replacing a database that differs: %s\n", diff);
    }

    /* Everything staged next to its destination before anything is
     * replaced, so a failure here changes nothing. */
    for (guint i = 0; i < members->len; i++) {
        DvBackupMember *m = g_ptr_array_index(members, i);
        g_autofree char *dest = dv_restore_dest(opts, m->name);
        if (dest == NULL || m->secret == NULL)
            continue;
        if (!dv_restore_stage(staged, dest, dv_secret_get_data(m->secret), m->size, error))
            return FALSE;
    }
    if (!pg) {
        DvBackupMember *db = dv_backup_members_find(members, DV_BACKUP_SQLITE);
        gsize len = 0;
        const guint8 *data = g_bytes_get_data(db->bytes, &len);
        if (!dv_restore_stage(staged, location, data, len, error))
            return FALSE;
    }

    /* droverd and drover-setup write the host key file under this lock. */
    if (g_mkdir_with_parents(keys_dir, 0700) != 0 ||
        (lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0 ||
        flock(lock_fd, LOCK_EX) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot lock %s: %s", lock_path, g_strerror(errno));
        return FALSE;
    }

    if (pg) {
        DvBackupMember *db = dv_backup_members_find(members, DV_BACKUP_PGDUMP);
        /* What is there now is dumped first and kept, never lost. */
        if (target != NULL) {
            g_autoptr(GError) local = NULL;
            g_autofree char *here_id = dv_backup_installation_id(target, target_schema, &local);
            if (here_id != NULL) {
                g_autofree char *keep = g_strdup_printf("%s/drover-pg.before-restore-%s.dump", opts->state_dir,
                                                        stamp);
                DV_AUTO_FD kfd = open(keep, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (kfd < 0) {
                    g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot create %s: %s", keep,
                                g_strerror(errno));
                    return FALSE;
                }
                if (!dv_store_pg_dump(location, kfd, error)) {
                    unlink(keep);
                    g_prefix_error(error, "keeping the database before restoring: ");
                    return FALSE;
                }
                if (fsync(kfd) != 0) {
                    g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot write %s: %s", keep,
                                g_strerror(errno));
                    unlink(keep);
                    return FALSE;
                }
                g_string_append_printf(report, "  kept the database as it was in %s\n", keep);
            }
        }
        g_clear_pointer(&target, dv_store_free);
        if (lseek(db->fd, 0, SEEK_SET) < 0) {
            g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "lseek: %s", g_strerror(errno));
            return FALSE;
        }
        if (!dv_store_pg_restore(location, db->fd, error))
            return FALSE;
        g_string_append(report, "  restored the database with pg_restore (one transaction)\n");
    } else {
        g_autofree char *wal = g_strconcat(location, "-wal", NULL);
        g_autofree char *shm = g_strconcat(location, "-shm", NULL);
        /* Closing the last connection checkpoints and removes the WAL;
         * whatever stays would be replayed onto the restored file. */
        g_clear_pointer(&target, dv_store_free);
        if (!dv_restore_move_aside(wal, stamp, report, error) || !dv_restore_move_aside(shm, stamp, report, error))
            return FALSE;
    }
    if (!dv_restore_commit(staged, stamp, report, error))
        return FALSE;

    g_print("restored %s (Drover %s, schema version %" G_GINT64_FORMAT ", installation %s, made %s)\n%s",
            in_path, dv_json_get_string(manifest, "drover_version", "?"),
            dv_json_get_int(manifest, "schema_version", 0), dv_json_get_string(manifest, "installation_id", "?"),
            dv_json_get_string(manifest, "created_at", "?"), report->str);
    if ((guint)dv_json_get_int(manifest, "schema_version", 0) < dv_store_get_known_version())
        g_print("the database is at an older schema: run 'drover-setup schema migrate'\n");
    dv_restore_report_keys(opts, location);
    return TRUE;
}
