/* Internals of src/engine/keys shared by its files, the tests and the fuzz
 * target.  Not for the rest of the engine. */
#pragma once

#include <sodium.h>

#include "dv-keys.h"

G_BEGIN_DECLS

#define DV_KEYS_NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES /* 24 */
#define DV_KEYS_TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES      /* 16 */
#define DV_KEY_ID_MAX 32
#define DV_KEYS_NAME_MAX 256 /* object type, object id, field */
/* Longest stored value: "dv1." + key id + "." + base64url of the blob. */
#define DV_KEYS_BLOB_MAX (DV_KEYS_NONCE_LEN + DV_KEYS_PLAINTEXT_MAX + DV_KEYS_TAG_LEN)
#define DV_KEYS_STORED_MAX (4 + DV_KEY_ID_MAX + 1 + (DV_KEYS_BLOB_MAX * 4 + 2) / 3)

/* A parsed "dv1.<key id>.<blob>" value.  Nothing in it is secret. */
typedef struct {
    char key_id[DV_KEY_ID_MAX + 1];
    guint8 *blob; /* nonce || ciphertext || tag, g_malloc'd */
    gsize blob_len;
} DvCiphertext;

void dv_ciphertext_clear(DvCiphertext *ct);

/* Strict, bounded parser.  On failure sets DV_ERROR_SECRET_UNREADABLE with
 * "unknown format version 'dvN'" or "malformed value: ..." and leaves @ret
 * untouched. */
gboolean dv_ciphertext_parse(const char *stored, DvCiphertext *ret, GError **error);
char *dv_ciphertext_to_string(const char *key_id, const guint8 *blob, gsize blob_len);

/* Key ids: 1..DV_KEY_ID_MAX of [A-Za-z0-9_-]. */
gboolean dv_keys_key_id_is_valid(const char *key_id);

/* "drover/v1" NUL type NUL id NUL field (owned). */
GByteArray *dv_keys_aad_new(const char *object_type, const char *object_id, const char *field);

/* The AEAD with this installation's additional data. */
char *dv_keys_seal_with(const DvSecret *key, const char *key_id, const char *object_type,
                        const char *object_id, const char *field, const guint8 *data,
                        gsize len);
/* NULL when authentication fails (no error: the caller words it). */
DvSecret *dv_keys_open_with(const DvSecret *key, const DvCiphertext *ct, const char *object_type,
                            const char *object_id, const char *field);

/* The canary of a key version: a fixed text sealed under it. */
char *dv_keys_canary_new(const DvSecret *key, const char *key_id);
gboolean dv_keys_canary_check(const DvSecret *key, const char *key_id, const char *canary);

/* --- host protector (dv-keys-host.c) ----------------------------------- */

typedef struct _DvHostKeys DvHostKeys;

DvHostKeys *dv_host_keys_new(const char *state_dir, const char *machine_id_path);
/* For a given account rather than the effective uid: the file must belong
 * to @uid, the KEK binds @uid and @user, and a file written is given to
 * @uid (as root). */
DvHostKeys *dv_host_keys_new_for_account(const char *state_dir, const char *machine_id_path,
                                         guint uid, const char *user);
void dv_host_keys_free(DvHostKeys *host);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvHostKeys, dv_host_keys_free)
const char *dv_host_keys_get_path(DvHostKeys *host);
/* Reads the key file again; afterwards unwrap() answers from it. */
void dv_host_keys_load(DvHostKeys *host);
DvSecret *dv_host_keys_unwrap(DvHostKeys *host, const char *key_id, GError **error);
/* Rewrites the file (temp + fsync + rename) so that it also holds @keys
 * (key id -> DvSecret*, borrowed), keeping the other copies it holds when
 * it is usable here; an unusable file is renamed aside first. */
gboolean dv_host_keys_store(DvHostKeys *host, GHashTable *keys, GError **error);

/* --- recovery protector (dv-keys-recovery.c) ------------------------------ */

#define DV_RECOVERY_PUBLIC_LEN crypto_box_PUBLICKEYBYTES
/* Makes a keypair, writes the private half to @path (O_EXCL, 0600) and
 * returns the public half as base64 (owned). */
char *dv_recovery_key_create(const char *path, GError **error);
/* Reads a recovery key file: the private key (guarded) and the public key
 * as base64 in @ret_public_b64 (owned). */
DvSecret *dv_recovery_key_load(const char *path, char **ret_public_b64, GError **error);
char *dv_recovery_seal(const char *public_b64, const DvSecret *key, GError **error);
DvSecret *dv_recovery_unseal(const char *public_b64, const DvSecret *private_key,
                             const char *wrapped, GError **error);

G_END_DECLS
