#define G_LOG_DOMAIN "DvKeysFormat"

/* The stored form of a sealed secret and the AEAD around it.  The parser
 * takes values read from the database, which an attacker with write access
 * to it controls: it checks the length before anything else, accepts one
 * canonical spelling only and is a fuzz target (tests/fuzz/fuzz-ciphertext.c). */

#include "dv-error.h"
#include "dv-keys-private.h"

#include <string.h>

#define DV_KEYS_AAD_PREFIX "drover/v1"
#define DV_KEYS_CANARY_TEXT "drover key canary v1"

void
dv_ciphertext_clear(DvCiphertext *ct)
{
    if (ct == NULL)
        return;
    g_clear_pointer(&ct->blob, g_free);
    ct->blob_len = 0;
    ct->key_id[0] = '\0';
}

gboolean
dv_keys_key_id_is_valid(const char *key_id)
{
    gsize len;

    if (key_id == NULL)
        return FALSE;
    len = strnlen(key_id, DV_KEY_ID_MAX + 1);
    if (len == 0 || len > DV_KEY_ID_MAX)
        return FALSE;
    for (gsize i = 0; i < len; i++) {
        if (!g_ascii_isalnum(key_id[i]) && key_id[i] != '_' && key_id[i] != '-')
            return FALSE;
    }
    return TRUE;
}

static gboolean
dv_ciphertext_malformed(GError **error, const char *why)
{
    g_set_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE, "malformed value: %s", why);
    return FALSE;
}

gboolean
dv_ciphertext_parse(const char *stored, DvCiphertext *ret, GError **error)
{
    gsize len;
    gsize i;
    const char *key_start;
    const char *key_end;
    const char *b64;
    gsize b64_len;
    gsize blob_len = 0;
    g_autofree guint8 *blob = NULL;

    g_return_val_if_fail(ret != NULL, FALSE);

    if (stored == NULL)
        return dv_ciphertext_malformed(error, "empty");
    len = strnlen(stored, DV_KEYS_STORED_MAX + 1);
    if (len == 0)
        return dv_ciphertext_malformed(error, "empty");
    if (len > DV_KEYS_STORED_MAX)
        return dv_ciphertext_malformed(error, "too long");

    /* "dv<digits>." names the format version. */
    if (len < 3 || stored[0] != 'd' || stored[1] != 'v' || !g_ascii_isdigit(stored[2]))
        return dv_ciphertext_malformed(error, "no format version prefix");
    for (i = 2; i < len && g_ascii_isdigit(stored[i]); i++) {
        if (i - 2 >= 4)
            return dv_ciphertext_malformed(error, "no format version prefix");
    }
    if (i >= len || stored[i] != '.')
        return dv_ciphertext_malformed(error, "no format version prefix");
    if (i != 3 || stored[2] != '1') {
        g_set_error(error, DV_ERROR, DV_ERROR_SECRET_UNREADABLE,
                    "unknown format version '%.*s'", (int)i, stored);
        return FALSE;
    }

    key_start = stored + 4;
    key_end = memchr(key_start, '.', len - 4);
    if (key_end == NULL)
        return dv_ciphertext_malformed(error, "no key id");
    if (key_end == key_start || (gsize)(key_end - key_start) > DV_KEY_ID_MAX)
        return dv_ciphertext_malformed(error, "bad key id");
    for (const char *p = key_start; p < key_end; p++) {
        if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-')
            return dv_ciphertext_malformed(error, "bad key id");
    }

    b64 = key_end + 1;
    b64_len = len - (gsize)(b64 - stored);
    /* Base64url without padding: 4 characters per 3 bytes, a remainder of
     * 2 or 3 characters, never 1. */
    if (b64_len % 4 == 1)
        return dv_ciphertext_malformed(error, "bad base64 length");
    if (b64_len < ((DV_KEYS_NONCE_LEN + DV_KEYS_TAG_LEN + 1) * 4 + 2) / 3)
        return dv_ciphertext_malformed(error, "too short");
    /* Checked here too: libsodium 1.0.18 decodes some bytes >= 0x80 as if
     * they were '-' or '_', which would give one blob two spellings. */
    for (i = 0; i < b64_len; i++) {
        if (!g_ascii_isalnum(b64[i]) && b64[i] != '-' && b64[i] != '_')
            return dv_ciphertext_malformed(error, "bad base64");
    }
    blob = g_malloc(b64_len / 4 * 3 + 3);
    /* sodium_base642bin() refuses characters outside the alphabet,
     * padding, and non-zero trailing bits, so each blob has one spelling. */
    if (sodium_base642bin(blob, b64_len / 4 * 3 + 3, b64, b64_len, NULL, &blob_len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return dv_ciphertext_malformed(error, "bad base64");
    if (blob_len < DV_KEYS_NONCE_LEN + DV_KEYS_TAG_LEN + 1)
        return dv_ciphertext_malformed(error, "too short");
    if (blob_len > DV_KEYS_BLOB_MAX)
        return dv_ciphertext_malformed(error, "too long");

    memcpy(ret->key_id, key_start, (gsize)(key_end - key_start));
    ret->key_id[key_end - key_start] = '\0';
    g_free(ret->blob);
    ret->blob = g_steal_pointer(&blob);
    ret->blob_len = blob_len;
    return TRUE;
}

char *
dv_ciphertext_to_string(const char *key_id, const guint8 *blob, gsize blob_len)
{
    gsize b64_size = sodium_base64_encoded_len(blob_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    g_autofree char *b64 = g_malloc(b64_size);

    sodium_bin2base64(b64, b64_size, blob, blob_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return g_strdup_printf("dv1.%s.%s", key_id, b64);
}

/* "drover/v1" NUL type NUL id NUL field: names cannot hold NUL, so the
 * split is unambiguous. */
GByteArray *
dv_keys_aad_new(const char *object_type, const char *object_id, const char *field)
{
    GByteArray *aad = g_byte_array_new();

    g_byte_array_append(aad, (const guint8 *)DV_KEYS_AAD_PREFIX, sizeof(DV_KEYS_AAD_PREFIX));
    g_byte_array_append(aad, (const guint8 *)object_type, strlen(object_type) + 1);
    g_byte_array_append(aad, (const guint8 *)object_id, strlen(object_id) + 1);
    g_byte_array_append(aad, (const guint8 *)field, strlen(field));
    return aad;
}

char *
dv_keys_seal_with(const DvSecret *key, const char *key_id, const char *object_type,
                  const char *object_id, const char *field, const guint8 *data, gsize len)
{
    g_autoptr(GByteArray) aad = dv_keys_aad_new(object_type, object_id, field);
    gsize blob_len = DV_KEYS_NONCE_LEN + len + DV_KEYS_TAG_LEN;
    g_autofree guint8 *blob = g_malloc(blob_len);
    unsigned long long ct_len = 0;

    g_return_val_if_fail(dv_secret_get_len(key) == DV_KEYS_DATA_KEY_LEN, NULL);

    randombytes_buf(blob, DV_KEYS_NONCE_LEN);
    crypto_aead_xchacha20poly1305_ietf_encrypt(blob + DV_KEYS_NONCE_LEN, &ct_len, data, len,
                                               aad->data, aad->len, NULL, blob,
                                               dv_secret_get_data(key));
    g_assert(ct_len == len + DV_KEYS_TAG_LEN);
    return dv_ciphertext_to_string(key_id, blob, blob_len);
}

DvSecret *
dv_keys_open_with(const DvSecret *key, const DvCiphertext *ct, const char *object_type,
                  const char *object_id, const char *field)
{
    g_autoptr(GByteArray) aad = NULL;
    g_autoptr(DvSecret) plain = NULL;
    unsigned long long plain_len = 0;

    if (dv_secret_get_len(key) != DV_KEYS_DATA_KEY_LEN ||
        ct->blob_len < DV_KEYS_NONCE_LEN + DV_KEYS_TAG_LEN + 1)
        return NULL;
    aad = dv_keys_aad_new(object_type, object_id, field);
    plain = dv_secret_new(ct->blob_len - DV_KEYS_NONCE_LEN - DV_KEYS_TAG_LEN);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            dv_secret_get_data_mutable(plain), &plain_len, NULL, ct->blob + DV_KEYS_NONCE_LEN,
            ct->blob_len - DV_KEYS_NONCE_LEN, aad->data, aad->len, ct->blob,
            dv_secret_get_data(key)) != 0)
        return NULL;
    g_assert(plain_len == dv_secret_get_len(plain));
    return g_steal_pointer(&plain);
}

char *
dv_keys_canary_new(const DvSecret *key, const char *key_id)
{
    return dv_keys_seal_with(key, key_id, "key-canary", key_id, "canary",
                             (const guint8 *)DV_KEYS_CANARY_TEXT, strlen(DV_KEYS_CANARY_TEXT));
}

gboolean
dv_keys_canary_check(const DvSecret *key, const char *key_id, const char *canary)
{
    DvCiphertext ct = { { 0 } };
    g_autoptr(DvSecret) plain = NULL;
    gboolean ok;

    if (!dv_ciphertext_parse(canary, &ct, NULL))
        return FALSE;
    if (g_strcmp0(ct.key_id, key_id) != 0) {
        dv_ciphertext_clear(&ct);
        return FALSE;
    }
    plain = dv_keys_open_with(key, &ct, "key-canary", key_id, "canary");
    dv_ciphertext_clear(&ct);
    ok = plain != NULL && dv_secret_get_len(plain) == strlen(DV_KEYS_CANARY_TEXT) &&
         memcmp(dv_secret_get_data(plain), DV_KEYS_CANARY_TEXT, dv_secret_get_len(plain)) == 0;
    return ok;
}
