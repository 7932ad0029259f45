#define G_LOG_DOMAIN "DvKeysRecovery"

/* The recovery protector: data keys sealed (crypto_box_seal) to a public
 * key kept in key_protectors; the private half lives only in a file handed
 * to the administrator once:
 *
 *     # comment lines
 *     drover-recovery-key 1
 *     public-key <base64, 32 bytes>
 *     private-key <base64, 32 bytes>
 *
 * The file is read into guarded memory and parsed there. */

#include "dv-error.h"
#include "dv-keys-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DV_RECOVERY_FORMAT "drover-recovery-key 1"
#define DV_RECOVERY_MAX_SIZE 4096
#define DV_RECOVERY_B64_SIZE \
    sodium_base64_ENCODED_LEN(crypto_box_PUBLICKEYBYTES, sodium_base64_VARIANT_ORIGINAL)

static gboolean
dv_recovery_decode_public(const char *b64, guint8 pk[crypto_box_PUBLICKEYBYTES])
{
    gsize len = 0;

    return b64 != NULL &&
           sodium_base642bin(pk, crypto_box_PUBLICKEYBYTES, b64, strlen(b64), NULL, &len, NULL,
                             sodium_base64_VARIANT_ORIGINAL) == 0 &&
           len == crypto_box_PUBLICKEYBYTES;
}

char *
dv_recovery_key_create(const char *path, GError **error)
{
    guint8 pk[crypto_box_PUBLICKEYBYTES];
    char pk_b64[DV_RECOVERY_B64_SIZE];
    g_autoptr(DvSecret) sk = dv_secret_new(crypto_box_SECRETKEYBYTES);
    g_autoptr(DvSecret) content = NULL;
    g_autoptr(GString) head = g_string_new(NULL);
    const char *label = "private-key ";
    gsize len;
    guint8 *out;
    gboolean ok;
    int fd;

    crypto_box_keypair(pk, dv_secret_get_data_mutable(sk));
    sodium_bin2base64(pk_b64, sizeof(pk_b64), pk, sizeof(pk), sodium_base64_VARIANT_ORIGINAL);
    g_string_append(head, "# Drover recovery key.  It opens every secret of the installation it\n"
                          "# was made for, on any machine: keep it offline, in a safe place.\n");
    g_string_append_printf(head, "%s\npublic-key %s\n", DV_RECOVERY_FORMAT, pk_b64);

    len = head->len + strlen(label) + (DV_RECOVERY_B64_SIZE - 1) + 1;
    content = dv_secret_new(len);
    out = dv_secret_get_data_mutable(content);
    memcpy(out, head->str, head->len);
    out += head->len;
    memcpy(out, label, strlen(label));
    out += strlen(label);
    sodium_bin2base64((char *)out, DV_RECOVERY_B64_SIZE, dv_secret_get_data(sk),
                      crypto_box_SECRETKEYBYTES, sodium_base64_VARIANT_ORIGINAL);
    out += DV_RECOVERY_B64_SIZE - 1;
    *out = '\n';

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int saved_errno = errno;
        g_set_error(error, DV_ERROR, saved_errno == EEXIST ? DV_ERROR_CONFLICT : DV_ERROR_UNAVAILABLE,
                    saved_errno == EEXIST ? "recovery key file %s already exists; it is never "
                                            "overwritten: choose another path"
                                          : "cannot create recovery key file %s: %s",
                    path, g_strerror(saved_errno));
        return NULL;
    }
    ok = fchmod(fd, 0600) == 0;
    for (gsize done = 0; ok && done < len;) {
        ssize_t n = write(fd, dv_secret_get_data(content) + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            ok = FALSE;
        else
            done += (gsize)n;
    }
    if (ok && fsync(fd) != 0)
        ok = FALSE;
    if (close(fd) != 0)
        ok = FALSE;
    if (!ok) {
        int saved_errno = errno;
        g_unlink(path);
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot write recovery key file %s: %s",
                    path, g_strerror(saved_errno));
        return NULL;
    }
    return g_strdup(pk_b64);
}

DvSecret *
dv_recovery_key_load(const char *path, char **ret_public_b64, GError **error)
{
    g_autoptr(DvSecret) buf = NULL;
    g_autoptr(DvSecret) sk = NULL;
    g_autofree char *pk_b64 = NULL;
    guint8 pk[crypto_box_PUBLICKEYBYTES];
    guint8 derived[crypto_box_PUBLICKEYBYTES];
    gboolean seen_format = FALSE;
    struct stat st;
    const char *p;
    const char *end;
    gsize done = 0;
    int fd;

    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "cannot open recovery key file %s: %s",
                    path, g_strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > DV_RECOVERY_MAX_SIZE) {
        close(fd);
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                    "%s is not a recovery key file", path);
        return NULL;
    }
    buf = dv_secret_new((gsize)st.st_size);
    while (done < (gsize)st.st_size) {
        ssize_t n = read(fd, dv_secret_get_data_mutable(buf) + done, (gsize)st.st_size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (gsize)n;
    }
    close(fd);
    if (done != (gsize)st.st_size) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot read recovery key file %s",
                    path);
        return NULL;
    }

    p = (const char *)dv_secret_get_data(buf);
    end = p + done;
    while (p < end) {
        const char *nl = memchr(p, '\n', (gsize)(end - p));
        const char *line_end = nl != NULL ? nl : end;
        gsize line_len = (gsize)(line_end - p);
        const char *pub_label = "public-key ";
        const char *priv_label = "private-key ";

        if (line_len == 0 || p[0] == '#') {
            /* comment or blank */
        } else if (!seen_format && line_len == strlen(DV_RECOVERY_FORMAT) &&
                   memcmp(p, DV_RECOVERY_FORMAT, line_len) == 0) {
            seen_format = TRUE;
        } else if (seen_format && pk_b64 == NULL && line_len > strlen(pub_label) &&
                   memcmp(p, pub_label, strlen(pub_label)) == 0) {
            pk_b64 = g_strndup(p + strlen(pub_label), line_len - strlen(pub_label));
        } else if (seen_format && sk == NULL && line_len > strlen(priv_label) &&
                   memcmp(p, priv_label, strlen(priv_label)) == 0) {
            gsize sk_len = 0;
            sk = dv_secret_new(crypto_box_SECRETKEYBYTES);
            if (sodium_base642bin(dv_secret_get_data_mutable(sk), crypto_box_SECRETKEYBYTES,
                                  p + strlen(priv_label), line_len - strlen(priv_label), NULL,
                                  &sk_len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
                sk_len != crypto_box_SECRETKEYBYTES) {
                g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                            "recovery key file %s is malformed", path);
                return NULL;
            }
        } else {
            g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                        "%s is not a recovery key file (or is damaged)", path);
            return NULL;
        }
        p = line_end + 1;
    }
    if (!seen_format || sk == NULL || !dv_recovery_decode_public(pk_b64, pk)) {
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                    "%s is not a recovery key file (or is damaged)", path);
        return NULL;
    }
    crypto_scalarmult_base(derived, dv_secret_get_data(sk));
    if (sodium_memcmp(derived, pk, sizeof(pk)) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                    "recovery key file %s is damaged: its two halves do not match", path);
        return NULL;
    }
    *ret_public_b64 = g_steal_pointer(&pk_b64);
    return g_steal_pointer(&sk);
}

char *
dv_recovery_seal(const char *public_b64, const DvSecret *key, GError **error)
{
    guint8 pk[crypto_box_PUBLICKEYBYTES];
    guint8 sealed[crypto_box_SEALBYTES + DV_KEYS_DATA_KEY_LEN];
    char b64[sodium_base64_ENCODED_LEN(sizeof(sealed), sodium_base64_VARIANT_ORIGINAL)];

    if (!dv_recovery_decode_public(public_b64, pk)) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_INTERNAL,
                            "the recovery public key in key_protectors is malformed");
        return NULL;
    }
    if (crypto_box_seal(sealed, dv_secret_get_data(key), DV_KEYS_DATA_KEY_LEN, pk) != 0) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_INTERNAL,
                            "cannot seal a key to the recovery public key");
        return NULL;
    }
    sodium_bin2base64(b64, sizeof(b64), sealed, sizeof(sealed), sodium_base64_VARIANT_ORIGINAL);
    return g_strdup(b64);
}

DvSecret *
dv_recovery_unseal(const char *public_b64, const DvSecret *private_key, const char *wrapped,
                   GError **error)
{
    guint8 pk[crypto_box_PUBLICKEYBYTES];
    guint8 sealed[crypto_box_SEALBYTES + DV_KEYS_DATA_KEY_LEN];
    gsize len = 0;
    g_autoptr(DvSecret) key = NULL;

    if (!dv_recovery_decode_public(public_b64, pk)) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                            "the recovery key file holds a malformed public key");
        return NULL;
    }
    if (wrapped == NULL || strlen(wrapped) > 2 * sizeof(sealed) ||
        sodium_base642bin(sealed, sizeof(sealed), wrapped, strlen(wrapped), NULL, &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        len != sizeof(sealed)) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                            "the recovery copy of the key is malformed");
        return NULL;
    }
    key = dv_secret_new(DV_KEYS_DATA_KEY_LEN);
    if (crypto_box_seal_open(dv_secret_get_data_mutable(key), sealed, sizeof(sealed), pk,
                             dv_secret_get_data(private_key)) != 0) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                            "the recovery key file does not open it (a recovery key of "
                            "another installation, or an older one)");
        return NULL;
    }
    return g_steal_pointer(&key);
}
