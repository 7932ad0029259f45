#define G_LOG_DOMAIN "DvKeysHost"

/* The host protector: <state_dir>/keys/host.key.
 *
 *     # comment lines
 *     drover-host-key 1
 *     machine-id-hash <hex BLAKE2b-256 of "drover/machine-id/v1\0" machine-id>
 *     uid <decimal>
 *     user <name>
 *     file-secret <base64, 32 random bytes>
 *     key <key id> <base64 of nonce (24) || XChaCha20-Poly1305(data key) (48)>
 *     ...
 *
 * KEK = BLAKE2b-256 keyed with the file secret over
 * "drover/host-kek/v1\0" machine-id "\0" uid "\0" user; each wrap has the
 * additional data "drover/host-key/v1\0" key id.  The machine-id hash, uid
 * and user are only there to say why a file does not open; the KEK is what
 * enforces it.  The file is read only when its owner is the effective uid
 * and its mode gives nothing to group or others; it is read into guarded
 * memory and parsed there. */

#include "dv-error.h"
#include "dv-keys-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <pwd.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define DV_HOST_KEYS_FORMAT "drover-host-key 1"
#define DV_HOST_KEYS_MAX_SIZE (1024 * 1024)
#define DV_HOST_WRAP_AAD "drover/host-key/v1"
#define DV_HOST_KEK_CONTEXT "drover/host-kek/v1"
#define DV_HOST_MACHINE_CONTEXT "drover/machine-id/v1"
#define DV_HOST_FILE_SECRET_LEN 32
#define DV_HOST_WRAPPED_LEN (DV_KEYS_NONCE_LEN + DV_KEYS_DATA_KEY_LEN + DV_KEYS_TAG_LEN)
#define DV_MACHINE_ID_MAX 128

struct _DvHostKeys {
    char *path;
    char *dir;
    char *lock_path;
    char *machine_id_path;
    gboolean has_account; /* the account below instead of the effective uid */
    guint account_uid;
    char *account_user;
    GMutex lock;         /* guards the members below and the file */
    DvSecret *kek;       /* NULL when the file cannot be used here */
    DvSecret *file_secret;
    GHashTable *wrapped; /* key id -> base64 of the wrapped key */
    char *problem;       /* why the file cannot be used, when kek is NULL */
};

typedef struct {
    char *machine_id;
    char *machine_hash; /* hex */
    guint uid;
    char *user;
} DvHostIdentity;

static void
dv_host_identity_clear(DvHostIdentity *id)
{
    g_clear_pointer(&id->machine_id, g_free);
    g_clear_pointer(&id->machine_hash, g_free);
    g_clear_pointer(&id->user, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(DvHostIdentity, dv_host_identity_clear)

static char *
dv_host_user_name(uid_t uid)
{
    struct passwd pw;
    struct passwd *result = NULL;
    char buf[4096];

    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &result) == 0 && result != NULL &&
        pw.pw_name[0] != '\0' && strlen(pw.pw_name) <= 64) {
        gboolean ok = TRUE;
        for (const char *p = pw.pw_name; *p != '\0'; p++) {
            if (!g_ascii_isgraph(*p))
                ok = FALSE;
        }
        if (ok)
            return g_strdup(pw.pw_name);
    }
    return g_strdup_printf("#%u", (guint)uid);
}

static gboolean
dv_host_identity_get(DvHostKeys *host, DvHostIdentity *ret, GError **error)
{
    const char *machine_id_path = host->machine_id_path;
    g_autoptr(GError) local_error = NULL;
    g_autofree char *text = NULL;
    gsize len = 0;
    guint8 hash[crypto_generichash_BYTES];
    crypto_generichash_state st;

    if (!g_file_get_contents(machine_id_path, &text, &len, &local_error)) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot read the machine id: %s",
                    local_error->message);
        return FALSE;
    }
    g_strstrip(text);
    len = strlen(text);
    if (len == 0 || len > DV_MACHINE_ID_MAX) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE,
                    "cannot read the machine id: %s is empty or too long", machine_id_path);
        return FALSE;
    }
    for (gsize i = 0; i < len; i++) {
        if (!g_ascii_isgraph(text[i])) {
            g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE,
                        "cannot read the machine id: %s is not a machine id", machine_id_path);
            return FALSE;
        }
    }
    crypto_generichash_init(&st, NULL, 0, sizeof(hash));
    crypto_generichash_update(&st, (const guint8 *)DV_HOST_MACHINE_CONTEXT,
                              sizeof(DV_HOST_MACHINE_CONTEXT));
    crypto_generichash_update(&st, (const guint8 *)text, len);
    crypto_generichash_final(&st, hash, sizeof(hash));

    ret->machine_hash = g_malloc(sizeof(hash) * 2 + 1);
    sodium_bin2hex(ret->machine_hash, sizeof(hash) * 2 + 1, hash, sizeof(hash));
    ret->machine_id = g_steal_pointer(&text);
    if (host->has_account) {
        ret->uid = host->account_uid;
        ret->user = g_strdup(host->account_user);
    } else {
        ret->uid = (guint)geteuid();
        ret->user = dv_host_user_name(geteuid());
    }
    return TRUE;
}

static DvSecret *
dv_host_kek_new(const DvSecret *file_secret, const DvHostIdentity *id)
{
    g_autoptr(DvSecret) kek = dv_secret_new(DV_KEYS_DATA_KEY_LEN);
    g_autofree char *uid_str = g_strdup_printf("%u", id->uid);
    crypto_generichash_state st;

    crypto_generichash_init(&st, dv_secret_get_data(file_secret), dv_secret_get_len(file_secret),
                            DV_KEYS_DATA_KEY_LEN);
    crypto_generichash_update(&st, (const guint8 *)DV_HOST_KEK_CONTEXT, sizeof(DV_HOST_KEK_CONTEXT));
    crypto_generichash_update(&st, (const guint8 *)id->machine_id, strlen(id->machine_id) + 1);
    crypto_generichash_update(&st, (const guint8 *)uid_str, strlen(uid_str) + 1);
    crypto_generichash_update(&st, (const guint8 *)id->user, strlen(id->user));
    crypto_generichash_final(&st, dv_secret_get_data_mutable(kek), DV_KEYS_DATA_KEY_LEN);
    sodium_memzero(&st, sizeof(st));
    return g_steal_pointer(&kek);
}

/* The uid whose file this is: the account given, else the effective uid. */
static uid_t
dv_host_keys_owner(DvHostKeys *host)
{
    return host->has_account ? (uid_t)host->account_uid : geteuid();
}

DvHostKeys *
dv_host_keys_new_for_account(const char *state_dir, const char *machine_id_path, guint uid,
                             const char *user)
{
    DvHostKeys *host = dv_host_keys_new(state_dir, machine_id_path);

    host->has_account = TRUE;
    host->account_uid = uid;
    host->account_user = g_strdup(user);
    return host;
}

DvHostKeys *
dv_host_keys_new(const char *state_dir, const char *machine_id_path)
{
    DvHostKeys *host = g_new0(DvHostKeys, 1);

    host->dir = g_build_filename(state_dir, "keys", NULL);
    host->path = g_build_filename(host->dir, "host.key", NULL);
    host->lock_path = g_build_filename(host->dir, ".host.key.lock", NULL);
    host->machine_id_path = g_strdup(machine_id_path != NULL ? machine_id_path : "/etc/machine-id");
    host->wrapped = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_mutex_init(&host->lock);
    return host;
}

void
dv_host_keys_free(DvHostKeys *host)
{
    if (host == NULL)
        return;
    g_free(host->path);
    g_free(host->dir);
    g_free(host->lock_path);
    g_free(host->machine_id_path);
    g_free(host->account_user);
    dv_secret_free(host->kek);
    dv_secret_free(host->file_secret);
    g_hash_table_unref(host->wrapped);
    g_free(host->problem);
    g_mutex_clear(&host->lock);
    g_free(host);
}

const char *
dv_host_keys_get_path(DvHostKeys *host)
{
    return host->path;
}

static void
dv_host_keys_reset(DvHostKeys *host)
{
    g_clear_pointer(&host->kek, dv_secret_free);
    g_clear_pointer(&host->file_secret, dv_secret_free);
    g_hash_table_remove_all(host->wrapped);
    g_clear_pointer(&host->problem, g_free);
}

/* Opens the file if its owner and mode allow it; the message says why not. */
static int
dv_host_keys_open_checked(DvHostKeys *host, struct stat *ret_st, GError **error)
{
    int fd = open(host->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int saved_errno = errno;
    struct stat st;

    if (fd < 0) {
        if (saved_errno == ENOENT) {
            g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "host key file %s does not exist",
                        host->path);
        } else if (saved_errno == ELOOP) {
            g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                        "host key file %s is a symbolic link, which is refused", host->path);
        } else if (saved_errno == EACCES && lstat(host->path, &st) == 0 &&
                   st.st_uid != dv_host_keys_owner(host)) {
            g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                        "host key file %s belongs to uid %u, this process runs as uid %u",
                        host->path, (guint)st.st_uid, (guint)dv_host_keys_owner(host));
        } else {
            g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                        "cannot open host key file %s: %s", host->path, g_strerror(saved_errno));
        }
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                    "host key file %s is not a regular file", host->path);
        close(fd);
        return -1;
    }
    if (st.st_uid != dv_host_keys_owner(host)) {
        if (host->has_account)
            g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                        "host key file %s belongs to uid %u, not to the service account %s "
                        "(uid %u)",
                        host->path, (guint)st.st_uid, host->account_user, host->account_uid);
        else
            g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                        "host key file %s belongs to uid %u, this process runs as uid %u",
                        host->path, (guint)st.st_uid, (guint)geteuid());
        close(fd);
        return -1;
    }
    if ((st.st_mode & 077) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                    "host key file %s has mode %04o, which gives group or others access; "
                    "it is not used until its mode is 0600 (chmod 600 %s)",
                    host->path, (guint)(st.st_mode & 07777), host->path);
        close(fd);
        return -1;
    }
    if (st.st_size > DV_HOST_KEYS_MAX_SIZE) {
        g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                    "host key file %s is larger than %d bytes", host->path, DV_HOST_KEYS_MAX_SIZE);
        close(fd);
        return -1;
    }
    *ret_st = st;
    return fd;
}

static DvSecret *
dv_host_keys_read_fd(DvHostKeys *host, int fd, gsize size, GError **error)
{
    g_autoptr(DvSecret) buf = dv_secret_new(size);
    gsize done = 0;

    while (done < size) {
        ssize_t n = read(fd, dv_secret_get_data_mutable(buf) + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot read host key file %s: %s",
                        host->path, n < 0 ? g_strerror(errno) : "file shrank while reading");
            return NULL;
        }
        done += (gsize)n;
    }
    return g_steal_pointer(&buf);
}

static gboolean
dv_host_keys_malformed(DvHostKeys *host, guint line, GError **error)
{
    g_set_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                "host key file %s is malformed (line %u)", host->path, line);
    return FALSE;
}

/* Parses @buf in place; fills the out parameters on success only. */
static gboolean
dv_host_keys_parse(DvHostKeys *host, const DvSecret *buf, char **ret_machine_hash, guint *ret_uid,
                   char **ret_user, DvSecret **ret_file_secret, GHashTable *ret_wrapped,
                   GError **error)
{
    const char *p = (const char *)dv_secret_get_data(buf);
    const char *end = p + dv_secret_get_len(buf);
    g_autofree char *machine_hash = NULL;
    g_autofree char *user = NULL;
    g_autoptr(DvSecret) file_secret = NULL;
    g_autoptr(GHashTable) wrapped = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    gint64 uid = -1;
    gboolean seen_format = FALSE;
    guint line_no = 0;

    while (p < end) {
        const char *nl = memchr(p, '\n', (gsize)(end - p));
        const char *line_end = nl != NULL ? nl : end;
        gsize line_len = (gsize)(line_end - p);
        const char *sp;
        gsize word_len;
        const char *value;
        gsize value_len;

        line_no++;
        if (memchr(p, '\0', line_len) != NULL)
            return dv_host_keys_malformed(host, line_no, error);
        if (line_len == 0 || p[0] == '#') {
            p = line_end + 1;
            continue;
        }
        if (!seen_format) {
            if (line_len != strlen(DV_HOST_KEYS_FORMAT) ||
                memcmp(p, DV_HOST_KEYS_FORMAT, line_len) != 0) {
                g_set_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                            "host key file %s has an unknown format", host->path);
                return FALSE;
            }
            seen_format = TRUE;
            p = line_end + 1;
            continue;
        }
        sp = memchr(p, ' ', line_len);
        if (sp == NULL)
            return dv_host_keys_malformed(host, line_no, error);
        word_len = (gsize)(sp - p);
        value = sp + 1;
        value_len = (gsize)(line_end - value);

#define WORD_IS(w) (word_len == strlen(w) && memcmp(p, w, word_len) == 0)
        if (WORD_IS("machine-id-hash")) {
            if (machine_hash != NULL || value_len != crypto_generichash_BYTES * 2)
                return dv_host_keys_malformed(host, line_no, error);
            machine_hash = g_strndup(value, value_len);
        } else if (WORD_IS("uid")) {
            g_autofree char *s = g_strndup(value, value_len);
            guint64 v = 0;
            if (uid >= 0 || value_len > 10 ||
                !g_ascii_string_to_unsigned(s, 10, 0, G_MAXUINT32, &v, NULL))
                return dv_host_keys_malformed(host, line_no, error);
            uid = (gint64)v;
        } else if (WORD_IS("user")) {
            if (user != NULL || value_len == 0 || value_len > 64)
                return dv_host_keys_malformed(host, line_no, error);
            user = g_strndup(value, value_len);
        } else if (WORD_IS("file-secret")) {
            gsize bin_len = 0;
            if (file_secret != NULL)
                return dv_host_keys_malformed(host, line_no, error);
            file_secret = dv_secret_new(DV_HOST_FILE_SECRET_LEN);
            if (sodium_base642bin(dv_secret_get_data_mutable(file_secret), DV_HOST_FILE_SECRET_LEN,
                                  value, value_len, NULL, &bin_len, NULL,
                                  sodium_base64_VARIANT_ORIGINAL) != 0 ||
                bin_len != DV_HOST_FILE_SECRET_LEN)
                return dv_host_keys_malformed(host, line_no, error);
        } else if (WORD_IS("key")) {
            const char *sp2 = memchr(value, ' ', value_len);
            g_autofree char *key_id = NULL;
            if (sp2 == NULL)
                return dv_host_keys_malformed(host, line_no, error);
            key_id = g_strndup(value, (gsize)(sp2 - value));
            if (!dv_keys_key_id_is_valid(key_id) || g_hash_table_contains(wrapped, key_id) ||
                (gsize)(line_end - sp2 - 1) > 256)
                return dv_host_keys_malformed(host, line_no, error);
            g_hash_table_insert(wrapped, g_steal_pointer(&key_id),
                                g_strndup(sp2 + 1, (gsize)(line_end - sp2 - 1)));
        } else {
            return dv_host_keys_malformed(host, line_no, error);
        }
#undef WORD_IS
        p = line_end + 1;
    }
    if (!seen_format || machine_hash == NULL || uid < 0 || user == NULL || file_secret == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                    "host key file %s is incomplete", host->path);
        return FALSE;
    }
    *ret_machine_hash = g_steal_pointer(&machine_hash);
    *ret_uid = (guint)uid;
    *ret_user = g_steal_pointer(&user);
    *ret_file_secret = g_steal_pointer(&file_secret);
    {
        GHashTableIter iter;
        gpointer k, v;
        g_hash_table_iter_init(&iter, wrapped);
        while (g_hash_table_iter_next(&iter, &k, &v)) {
            g_hash_table_iter_steal(&iter);
            g_hash_table_insert(ret_wrapped, k, v);
        }
    }
    return TRUE;
}

static gboolean
dv_host_keys_load_locked(DvHostKeys *host, GError **error)
{
    g_auto(DvHostIdentity) id = { 0 };
    g_autoptr(DvSecret) buf = NULL;
    g_autoptr(DvSecret) file_secret = NULL;
    g_autofree char *machine_hash = NULL;
    g_autofree char *user = NULL;
    struct stat st;
    guint uid = 0;
    int fd;

    dv_host_keys_reset(host);
    fd = dv_host_keys_open_checked(host, &st, error);
    if (fd < 0)
        return FALSE;
    buf = dv_host_keys_read_fd(host, fd, (gsize)st.st_size, error);
    close(fd);
    if (buf == NULL)
        return FALSE;
    if (!dv_host_keys_parse(host, buf, &machine_hash, &uid, &user, &file_secret, host->wrapped,
                            error))
        return FALSE;
    if (!dv_host_identity_get(host, &id, error)) {
        g_prefix_error(error, "host key file %s cannot be checked: ", host->path);
        return FALSE;
    }
    if (sodium_memcmp(machine_hash, id.machine_hash, strlen(id.machine_hash)) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                    "host key file %s was made on another machine (machine-id differs)",
                    host->path);
        return FALSE;
    }
    if (uid != id.uid) {
        g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                    "host key file %s was made for uid %u (%s), this process runs as uid %u (%s)",
                    host->path, uid, user, id.uid, id.user);
        return FALSE;
    }
    if (g_strcmp0(user, id.user) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                    "host key file %s was made for user %s, this process runs as user %s",
                    host->path, user, id.user);
        return FALSE;
    }
    host->kek = dv_host_kek_new(file_secret, &id);
    host->file_secret = g_steal_pointer(&file_secret);
    return TRUE;
}

void
dv_host_keys_load(DvHostKeys *host)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&host->lock);

    if (!dv_host_keys_load_locked(host, &error)) {
        dv_host_keys_reset(host);
        host->problem = g_strdup(error->message);
    }
}

static DvSecret *
dv_host_keys_unwrap_locked(DvHostKeys *host, const char *key_id, GError **error)
{
    g_autoptr(DvSecret) key = NULL;
    const char *b64;
    guint8 blob[DV_HOST_WRAPPED_LEN];
    gsize blob_len = 0;
    unsigned long long key_len = 0;
    g_autofree char *aad = NULL;
    gsize aad_len;

    if (host->kek == NULL) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                            host->problem != NULL ? host->problem : "host key file not loaded");
        return NULL;
    }
    b64 = g_hash_table_lookup(host->wrapped, key_id);
    if (b64 == NULL) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "host key file %s holds no copy of key %s",
                    host->path, key_id);
        return NULL;
    }
    if (sodium_base642bin(blob, sizeof(blob), b64, strlen(b64), NULL, &blob_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        blob_len != sizeof(blob)) {
        g_set_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                    "host key file %s holds a malformed copy of key %s", host->path, key_id);
        return NULL;
    }
    aad = g_strdup_printf("%s%c%s", DV_HOST_WRAP_AAD, 0, key_id);
    aad_len = strlen(DV_HOST_WRAP_AAD) + 1 + strlen(key_id);
    key = dv_secret_new(DV_KEYS_DATA_KEY_LEN);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            dv_secret_get_data_mutable(key), &key_len, NULL, blob + DV_KEYS_NONCE_LEN,
            blob_len - DV_KEYS_NONCE_LEN, (const guint8 *)aad, aad_len, blob,
            dv_secret_get_data(host->kek)) != 0 ||
        key_len != DV_KEYS_DATA_KEY_LEN) {
        g_set_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                    "host key file %s does not open key %s: the file was altered, or made for "
                    "another machine or account",
                    host->path, key_id);
        return NULL;
    }
    return g_steal_pointer(&key);
}

DvSecret *
dv_host_keys_unwrap(DvHostKeys *host, const char *key_id, GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&host->lock);
    return dv_host_keys_unwrap_locked(host, key_id, error);
}

static char *
dv_host_wrap(const DvSecret *kek, const char *key_id, const DvSecret *key)
{
    guint8 blob[DV_HOST_WRAPPED_LEN];
    char b64[sodium_base64_ENCODED_LEN(DV_HOST_WRAPPED_LEN, sodium_base64_VARIANT_ORIGINAL)];
    g_autofree char *aad = g_strdup_printf("%s%c%s", DV_HOST_WRAP_AAD, 0, key_id);
    gsize aad_len = strlen(DV_HOST_WRAP_AAD) + 1 + strlen(key_id);

    randombytes_buf(blob, DV_KEYS_NONCE_LEN);
    crypto_aead_xchacha20poly1305_ietf_encrypt(blob + DV_KEYS_NONCE_LEN, NULL,
                                               dv_secret_get_data(key), DV_KEYS_DATA_KEY_LEN,
                                               (const guint8 *)aad, aad_len, NULL, blob,
                                               dv_secret_get_data(kek));
    sodium_bin2base64(b64, sizeof(b64), blob, sizeof(blob), sodium_base64_VARIANT_ORIGINAL);
    return g_strdup(b64);
}

static gboolean
dv_host_write_all(int fd, const guint8 *data, gsize len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return FALSE;
        data += n;
        len -= (gsize)n;
    }
    return TRUE;
}

/* Writes the file under a temporary name, fsyncs it, renames it over the
 * old one and fsyncs the directory: a crash leaves the old or the new file. */
static gboolean
dv_host_keys_write(DvHostKeys *host, const DvHostIdentity *id, const DvSecret *file_secret,
                   GHashTable *wrapped, GError **error)
{
    g_autoptr(GString) head = g_string_new(NULL);
    g_autoptr(GString) tail = g_string_new(NULL);
    g_autoptr(DvSecret) content = NULL;
    g_autoptr(GList) ids = g_list_sort(g_hash_table_get_keys(wrapped), (GCompareFunc)g_strcmp0);
    g_autofree char *tmp = g_strdup_printf("%s.tmp-XXXXXX", host->path);
    gsize b64_size = sodium_base64_ENCODED_LEN(DV_HOST_FILE_SECRET_LEN, sodium_base64_VARIANT_ORIGINAL);
    const char *label = "file-secret ";
    gsize len;
    guint8 *out;
    int fd;
    int dfd;
    gboolean ok;

    g_string_append(head, "# Drover host key file: opens this installation's keys on this machine,\n"
                          "# for this account only.  Do not edit; see docs/KEYS.md.\n");
    g_string_append_printf(head, "%s\nmachine-id-hash %s\nuid %u\nuser %s\n", DV_HOST_KEYS_FORMAT,
                           id->machine_hash, id->uid, id->user);
    for (GList *l = ids; l != NULL; l = l->next)
        g_string_append_printf(tail, "key %s %s\n", (const char *)l->data,
                               (const char *)g_hash_table_lookup(wrapped, l->data));

    /* The file secret is encoded straight into guarded memory. */
    len = head->len + strlen(label) + (b64_size - 1) + 1 + tail->len;
    content = dv_secret_new(len);
    out = dv_secret_get_data_mutable(content);
    memcpy(out, head->str, head->len);
    out += head->len;
    memcpy(out, label, strlen(label));
    out += strlen(label);
    sodium_bin2base64((char *)out, b64_size, dv_secret_get_data(file_secret),
                      DV_HOST_FILE_SECRET_LEN, sodium_base64_VARIANT_ORIGINAL);
    out += b64_size - 1;
    *out++ = '\n';
    memcpy(out, tail->str, tail->len);

    fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot write host key file %s: %s",
                    host->path, g_strerror(errno));
        return FALSE;
    }
    ok = fchmod(fd, 0600) == 0 &&
         (id->uid == (guint)geteuid() || fchown(fd, (uid_t)id->uid, (gid_t)-1) == 0) &&
         dv_host_write_all(fd, dv_secret_get_data(content), len) && fsync(fd) == 0;
    if (close(fd) != 0)
        ok = FALSE;
    if (!ok || rename(tmp, host->path) != 0) {
        int saved_errno = errno;
        g_unlink(tmp);
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot write host key file %s: %s",
                    host->path, g_strerror(saved_errno));
        return FALSE;
    }
    dfd = open(host->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return TRUE;
}

gboolean
dv_host_keys_store(DvHostKeys *host, GHashTable *keys, GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&host->lock);
    g_auto(DvHostIdentity) id = { 0 };
    g_autoptr(GError) load_error = NULL;
    g_autoptr(DvSecret) file_secret = NULL;
    g_autoptr(DvSecret) kek = NULL;
    g_autoptr(GHashTable) wrapped = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    GHashTableIter iter;
    gpointer k, v;
    struct stat st;
    int lock_fd;
    gboolean ok;

    if (g_mkdir_with_parents(host->dir, 0700) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot create %s: %s", host->dir,
                    g_strerror(errno));
        return FALSE;
    }
    /* Written for another account (drover-setup upgrade as root for the
     * service account): the directory must be that account's. */
    if (host->has_account && host->account_uid != (guint)geteuid() &&
        chown(host->dir, (uid_t)host->account_uid, (gid_t)-1) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot give %s to uid %u: %s",
                    host->dir, host->account_uid, g_strerror(errno));
        return FALSE;
    }
    if (!dv_host_identity_get(host, &id, error)) {
        g_prefix_error(error, "cannot bind host key file %s to this machine: ", host->path);
        return FALSE;
    }
    /* Another process (drover-setup next to droverd) may rewrite the file
     * too: hold a lock across read, merge and write. */
    lock_fd = open(host->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lock_fd >= 0 && host->has_account && host->account_uid != (guint)geteuid())
        (void)!fchown(lock_fd, (uid_t)host->account_uid, (gid_t)-1);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot lock %s: %s", host->lock_path,
                    g_strerror(errno));
        if (lock_fd >= 0)
            close(lock_fd);
        return FALSE;
    }

    if (dv_host_keys_load_locked(host, &load_error)) {
        file_secret = dv_secret_new_from_data(dv_secret_get_data(host->file_secret),
                                              DV_HOST_FILE_SECRET_LEN);
        kek = dv_secret_new_from_data(dv_secret_get_data(host->kek), DV_KEYS_DATA_KEY_LEN);
        g_hash_table_iter_init(&iter, host->wrapped);
        while (g_hash_table_iter_next(&iter, &k, &v))
            g_hash_table_insert(wrapped, g_strdup(k), g_strdup(v));
        /* The file holds another key under an id we are about to write (it
         * belonged to an earlier database): keep that file as it is. */
        g_hash_table_iter_init(&iter, keys);
        while (g_hash_table_iter_next(&iter, &k, &v)) {
            g_autoptr(DvSecret) old = NULL;
            if (!g_hash_table_contains(host->wrapped, k))
                continue;
            old = dv_host_keys_unwrap_locked(host, k, NULL);
            if (old == NULL || !dv_secret_equal(old, v)) {
                g_autofree char *aside = g_strdup_printf("%s.replaced-%" G_GINT64_FORMAT,
                                                         host->path, g_get_real_time());
                if (link(host->path, aside) != 0) {
                    g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE,
                                "host key file %s holds another key %s and cannot be kept as "
                                "%s: %s", host->path, (const char *)k, aside, g_strerror(errno));
                    close(lock_fd);
                    return FALSE;
                }
                g_message("host key file %s held another key %s; kept a copy as %s", host->path,
                          (const char *)k, aside);
                break;
            }
        }
    } else {
        /* Never destroy a key file, even one that is useless here: it may be
         * the only copy of keys for another machine or account. */
        if (lstat(host->path, &st) == 0) {
            g_autofree char *aside = g_strdup_printf("%s.unusable-%" G_GINT64_FORMAT, host->path,
                                                     g_get_real_time());
            if (rename(host->path, aside) != 0) {
                g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE,
                            "host key file %s cannot be used (%s) and cannot be moved aside: %s",
                            host->path, load_error->message, g_strerror(errno));
                close(lock_fd);
                return FALSE;
            }
            g_message("%s; moved it to %s", load_error->message, aside);
        }
        file_secret = dv_secret_new_random(DV_HOST_FILE_SECRET_LEN);
        kek = dv_host_kek_new(file_secret, &id);
    }

    g_hash_table_iter_init(&iter, keys);
    while (g_hash_table_iter_next(&iter, &k, &v))
        g_hash_table_insert(wrapped, g_strdup(k), dv_host_wrap(kek, k, v));

    ok = dv_host_keys_write(host, &id, file_secret, wrapped, error);
    if (ok) {
        g_autoptr(GError) reload_error = NULL;
        if (!dv_host_keys_load_locked(host, &reload_error)) {
            g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL,
                        "host key file %s was written but does not read back: %s", host->path,
                        reload_error->message);
            host->problem = g_strdup(reload_error->message);
            ok = FALSE;
        }
    } else {
        g_autoptr(GError) reload_error = NULL;
        if (!dv_host_keys_load_locked(host, &reload_error))
            host->problem = g_strdup(reload_error->message);
    }
    close(lock_fd);
    return ok;
}

gboolean
dv_host_keys_read_account(const char *state_dir, guint *ret_uid, char **ret_user, GError **error)
{
    g_autoptr(DvHostKeys) host = dv_host_keys_new(state_dir, NULL);
    g_autoptr(DvSecret) buf = NULL;
    g_autoptr(DvSecret) file_secret = NULL;
    g_autoptr(GHashTable) wrapped = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autofree char *machine_hash = NULL;
    g_autofree char *user = NULL;
    struct stat st;
    guint uid = 0;
    int fd;

    /* Whoever owns it: the administrator reads another account's file. */
    host->has_account = TRUE;
    fd = open(host->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int saved_errno = errno;
        g_set_error(error, DV_ERROR, saved_errno == ENOENT ? DV_ERROR_NOT_FOUND : DV_ERROR_PERMISSION_DENIED,
                    "cannot open host key file %s: %s", host->path, g_strerror(saved_errno));
        return FALSE;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > DV_HOST_KEYS_MAX_SIZE) {
        close(fd);
        g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                    "host key file %s is not a regular file of at most %d bytes", host->path,
                    DV_HOST_KEYS_MAX_SIZE);
        return FALSE;
    }
    buf = dv_host_keys_read_fd(host, fd, (gsize)st.st_size, error);
    close(fd);
    if (buf == NULL)
        return FALSE;
    if (!dv_host_keys_parse(host, buf, &machine_hash, &uid, &user, &file_secret, wrapped, error))
        return FALSE;
    *ret_uid = uid;
    *ret_user = g_steal_pointer(&user);
    return TRUE;
}

/* --- another account's host key file as a read-only protector ------------ */

typedef struct {
    DvKeyProtector parent;
    DvHostKeys *host;
} DvHostFileProtector;

static gboolean
dv_host_file_protector_wrap(DvKeyProtector *self, const char *key_id, const DvSecret *key,
                            GError **error)
{
    g_set_error_literal(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                        "the previous account's host key file is only read");
    return FALSE;
}

static DvSecret *
dv_host_file_protector_unwrap(DvKeyProtector *self, const char *key_id, GError **error)
{
    DvHostFileProtector *p = (DvHostFileProtector *)self;
    return dv_host_keys_unwrap(p->host, key_id, error);
}

static void
dv_host_file_protector_free(DvKeyProtector *self)
{
    DvHostFileProtector *p = (DvHostFileProtector *)self;
    dv_host_keys_free(p->host);
    g_free(p);
}

DvKeyProtector *
dv_host_file_protector_new(const char *state_dir, const char *machine_id_path, guint uid,
                           const char *user)
{
    DvHostFileProtector *p = g_new0(DvHostFileProtector, 1);

    p->parent.kind = "previous-host";
    p->parent.wrap = dv_host_file_protector_wrap;
    p->parent.unwrap = dv_host_file_protector_unwrap;
    p->parent.free = dv_host_file_protector_free;
    p->host = dv_host_keys_new_for_account(state_dir, machine_id_path, uid, user);
    dv_host_keys_load(p->host);
    return &p->parent;
}
