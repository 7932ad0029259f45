#define G_LOG_DOMAIN "DvStoreLock"

/* One writer process per SQLite database: an flock(2) on "<file>.lock"
 * held for the life of the process.  The kernel drops it when the process
 * ends, however it ends, and never while it exists: a paused (SIGSTOP)
 * server keeps its lock, whatever its heartbeat row says.  flock locks
 * belong to the open file description, so two opens in one process
 * conflict too (the tests rely on it), and O_CLOEXEC keeps programs this
 * process starts (openssl, ssh for libvirt) from holding it after us. */

#include "dv-error.h"
#include "dv-store.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct _DvStoreLock {
    int fd; /* -1: PostgreSQL, nothing held */
    char *path;
    /* Made by this lock: removed again on release (drover-setup leaves no
     * file behind), while still held, so whoever opened it meanwhile sees
     * it gone once it gets the lock and opens the new one. */
    gboolean created;
};

static gboolean
dv_store_lock_is_pg(const char *location)
{
    return g_str_has_prefix(location, "postgresql://") || g_str_has_prefix(location, "postgres://");
}

char *
dv_store_lock_path(const char *location)
{
    g_return_val_if_fail(location != NULL, NULL);
    if (dv_store_lock_is_pg(location))
        return NULL;
    return g_strconcat(location, ".lock", NULL);
}

/* "1234 droverd" -> "droverd (pid 1234)"; the holder writes it after
 * taking the lock, so it may be empty for a moment. */
static char *
dv_store_lock_read_holder(int fd)
{
    char buf[128];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    g_autofree char *text = NULL;
    char *space;

    if (n <= 0)
        return g_strdup("another process (pid unknown)");
    buf[n] = '\0';
    text = g_strstrip(g_strdup(buf));
    space = strchr(text, ' ');
    if (space == NULL)
        return g_strdup_printf("a process (pid %s)", text);
    *space = '\0';
    return g_strdup_printf("%s (pid %s)", g_strstrip(space + 1), text);
}

static int
dv_store_lock_open(const char *path, gboolean *ret_created, GError **error)
{
    /* 0644: readable is enough to lock, for an account that did not make
     * it; the state directory (0700) keeps others out. */
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);

    *ret_created = fd >= 0;
    if (fd >= 0) {
        /* Made by drover-setup as root: droverd's account must open it
         * too, so it takes the owner of the directory it is in. */
        g_autofree char *dir = g_path_get_dirname(path);
        struct stat st;
        if (geteuid() == 0 && stat(dir, &st) == 0 && fchown(fd, st.st_uid, st.st_gid) != 0)
            g_debug("cannot give %s to uid %u: %s", path, (guint)st.st_uid, g_strerror(errno));
        return fd;
    }
    if (errno == EEXIST) {
        fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        /* Someone else's file: a read-only open still locks. */
        if (fd < 0 && errno == EACCES)
            fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    }
    if (fd < 0)
        dv_set_field_error(error, DV_ERROR_UNAVAILABLE, "database",
                           "cannot open the lock file %s: %s", path, g_strerror(errno));
    return fd;
}

DvStoreLock *
dv_store_lock_acquire(const char *location, const char *holder, GError **error)
{
    g_autoptr(DvStoreLock) lock = g_new0(DvStoreLock, 1);
    g_autofree char *text = NULL;
    int lock_errno = 0;

    g_return_val_if_fail(location != NULL && holder != NULL, NULL);
    lock->fd = -1;
    lock->path = dv_store_lock_path(location);
    if (lock->path == NULL)
        return g_steal_pointer(&lock);
    for (guint attempt = 0;; attempt++) {
        struct stat held, named;
        lock->fd = dv_store_lock_open(lock->path, &lock->created, error);
        if (lock->fd < 0)
            return NULL;
        if (flock(lock->fd, LOCK_EX | LOCK_NB) != 0) {
            lock_errno = errno;
            break;
        }
        /* Locked: unless the file was removed by its last holder between
         * our open and our lock, it is the one others open. */
        if (attempt >= 4 || (fstat(lock->fd, &held) == 0 && stat(lock->path, &named) == 0 &&
                             held.st_dev == named.st_dev && held.st_ino == named.st_ino))
            break;
        close(lock->fd);
        lock->fd = -1;
    }
    if (lock_errno != 0) {
        g_autofree char *who = NULL;
        lock->created = FALSE; /* not ours to remove */
        if (lock_errno != EWOULDBLOCK) {
            dv_set_field_error(error, DV_ERROR_UNAVAILABLE, "database", "cannot lock %s: %s",
                               lock->path, g_strerror(lock_errno));
            return NULL;
        }
        who = dv_store_lock_read_holder(lock->fd);
        dv_set_field_error(error, DV_ERROR_CONFLICT, "database",
                           "%s holds the database %s (lock %s); one process at a time may write a "
                           "SQLite database, so stop it first",
                           who, location, lock->path);
        return NULL;
    }
    /* Who holds it, for the message above; a read-only open cannot say. */
    text = g_strdup_printf("%d %s\n", (int)getpid(), holder);
    if (ftruncate(lock->fd, 0) != 0 || pwrite(lock->fd, text, strlen(text), 0) < 0)
        g_debug("cannot write the holder into %s: %s", lock->path, g_strerror(errno));
    return g_steal_pointer(&lock);
}

void
dv_store_lock_release(DvStoreLock *lock)
{
    if (lock == NULL)
        return;
    if (lock->fd >= 0) {
        struct stat held, named;
        if (lock->created && fstat(lock->fd, &held) == 0 && stat(lock->path, &named) == 0 &&
            held.st_dev == named.st_dev && held.st_ino == named.st_ino)
            g_unlink(lock->path);
        close(lock->fd);
    }
    g_free(lock->path);
    g_free(lock);
}
