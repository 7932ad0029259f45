/* Envelope encryption of secrets and the protectors of the data keys.
 *
 * Every secret field is sealed with XChaCha20-Poly1305 under the data key of
 * a key version ("k1", "k2", ...).  The stored value is
 *
 *     dv1.<key id>.<base64url, no padding, of nonce (24 bytes) || ciphertext || tag>
 *
 * and the additional data binds it to ("drover/v1", object type, object id,
 * field), so a value copied to another row or field does not open.  Data
 * keys never enter the database: each key version is wrapped by protectors,
 * any one of which opens it:
 *
 *   host       <state_dir>/keys/host.key, mode 0600, owned by the service
 *              account, bound to this machine's machine-id and that account;
 *   directory  an LDAP container (DvKeyProtector below, implemented in
 *              dv-keys-directory.c);
 *   recovery   crypto_box_seal to an offline public key, kept in
 *              key_versions.recovery_wrapped.
 *
 * A key version that cannot be opened here never makes dv_keyring_open()
 * fail: the keyring records why, secrets under it are reported unreadable
 * with that reason, and nothing is ever rewritten or deleted because of it.
 * See docs/KEYS.md for the file formats and the decisions.
 *
 * Thread safety: a DvKeyring may be used from several threads.  No lock is
 * held across a database or protector call.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "dv-secret.h"
#include "dv-store.h"

G_BEGIN_DECLS

/* A plaintext secret is 1..DV_KEYS_PLAINTEXT_MAX bytes (any bytes). */
#define DV_KEYS_PLAINTEXT_MAX 65536
/* Data keys are 32 random bytes. */
#define DV_KEYS_DATA_KEY_LEN 32

/* --- pluggable protectors ------------------------------------------- */

typedef struct _DvKeyProtector DvKeyProtector;

/* A key protector other than host and recovery (the directory protector).
 * The implementation embeds this struct as its first member.
 *
 * Contract:
 *  - @kind names it in key_protectors.kind, in messages and in "via"
 *    ("directory").  Static string.
 *  - wrap() stores @key (DV_KEYS_DATA_KEY_LEN bytes, borrowed) for @key_id,
 *    replacing any copy it holds for that id, and returns only when it is
 *    durably stored.  It must not keep @key after returning.
 *  - unwrap() returns a new DvSecret with the key for @key_id (the caller
 *    frees it), or NULL with: DV_ERROR_NOT_FOUND when it holds no copy of
 *    @key_id, DV_ERROR_UNAVAILABLE when its server cannot be reached,
 *    DV_ERROR_PERMISSION_DENIED when access is refused, anything else
 *    otherwise.  The message is shown to administrators as the reason a key
 *    cannot be opened: make it say where and why, and never include key
 *    material.  The keyring verifies the result against the key version's
 *    canary, so returning another installation's key is caught.
 *  - set_current() (may be NULL) records that @key_id is the newest key
 *    version, after a successful wrap() during rotation.
 *  - Every call may block (network); it must time out on its own.  The
 *    keyring never holds a lock or a database transaction across a call.
 *  - Calls may come from several threads at once.
 *  - free() (may be NULL) releases the implementation; the keyring never
 *    calls it: protectors are borrowed and must outlive the keyring.
 */
struct _DvKeyProtector {
    const char *kind;
    gboolean (*wrap)(DvKeyProtector *self, const char *key_id, const DvSecret *key,
                     GError **error);
    DvSecret *(*unwrap)(DvKeyProtector *self, const char *key_id, GError **error);
    gboolean (*set_current)(DvKeyProtector *self, const char *key_id, GError **error);
    void (*free)(DvKeyProtector *self);
};

/* Calls @protector->free when set; accepts NULL. */
void dv_key_protector_free(DvKeyProtector *protector);

/* --- the keyring ------------------------------------------------------ */

typedef struct _DvKeyring DvKeyring;

typedef struct {
    const char *state_dir;         /* required: the host key file is <state_dir>/keys/host.key */
    const char *machine_id_path;   /* NULL: /etc/machine-id */
    const char *recovery_key_path; /* NULL, or a recovery key file to open keys with */
    DvKeyProtector *const *protectors; /* extra protectors (borrowed), tried after host */
    guint n_protectors;
    /* The host key file of this account instead of the effective uid's
     * (drover-setup upgrade, run as root for the service account). */
    gboolean host_account_set;
    guint host_uid;
    const char *host_user;
} DvKeyringOptions;

/* Loads every key version from @store (borrowed; must outlive the keyring)
 * and tries every protector on each: host, then @opts->protectors in order,
 * then the recovery key file if given.  A version is open when one of them
 * returns a key that opens the version's canary.  Fails only when the
 * database cannot be read or @opts is invalid, never because a key cannot
 * be opened (see dv_keyring_check()). */
DvKeyring *dv_keyring_open(DvStore *store, const DvKeyringOptions *opts, GError **error);
void dv_keyring_free(DvKeyring *keyring);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvKeyring, dv_keyring_free)

/* On an installation with no key version: makes k1, its canary, wraps it
 * with the host protector (writes the key file) and every extra protector,
 * seals it to the recovery key if one is configured, and records the host
 * protector.  When key versions exist it makes nothing: it returns TRUE if
 * the current version is open here, and fails with
 * DV_ERROR_SECRET_UNREADABLE saying why otherwise (a new key would strand
 * the existing secrets). */
gboolean dv_keyring_initialize(DvKeyring *keyring, GError **error);

/* Id of the current key version (the newest active one), or NULL when none
 * exists.  Returns a copy. */
char *dv_keyring_dup_current_key_id(DvKeyring *keyring);

/* Re-reads key versions from the database and tries to open the ones this
 * keyring has not seen (made by another server).  dv_keyring_unseal() does
 * this by itself, at most once a second, when it meets an unknown key id. */
gboolean dv_keyring_refresh(DvKeyring *keyring, GError **error);

/* --- sealing ------------------------------------------------------------ */

/* Seals @plaintext (1..DV_KEYS_PLAINTEXT_MAX bytes, borrowed) under the
 * current key version, bound to (@object_type, @object_id, @field).
 * Returns the stored form (owned, not secret).  Errors:
 * DV_ERROR_INVALID_ARGUMENT naming @field for an empty or oversized value;
 * DV_ERROR_SECRET_UNREADABLE when the current key cannot be opened here;
 * DV_ERROR_UNAVAILABLE when no key version exists yet. */
char *dv_keyring_seal(DvKeyring *keyring, const char *object_type, const char *object_id,
                      const char *field, const DvSecret *plaintext, GError **error);

/* Opens a value made by dv_keyring_seal() for the same object and field.
 * Returns the plaintext in guarded memory (owned), or NULL with
 * DV_ERROR_SECRET_UNREADABLE naming @field, whose message is the reason:
 * "unknown format version 'dvN'", "malformed value: ...", "key k7 is
 * unknown to this installation", "key k2 cannot be opened here: ...",
 * "authentication failed: the value was altered or belongs to another
 * object or field".  Messages never contain plaintext or key material. */
DvSecret *dv_keyring_unseal(DvKeyring *keyring, const char *object_type, const char *object_id,
                            const char *field, const char *stored, GError **error);

/* What the API shows for a secret field (owned): {"set": false} for NULL
 * @stored; else {"set": true, "key_id": "k1" (null if unparsable),
 * "readable": true|false, "reason": "..." (only when unreadable)}.
 * Readability is tested by opening into guarded memory and discarding. */
JsonObject *dv_keyring_describe(DvKeyring *keyring, const char *object_type,
                                const char *object_id, const char *field, const char *stored);

/* Whether @stored opens with a key this keyring holds, without handing out
 * the plaintext: it is decrypted into @scratch (guarded, at least
 * DV_KEYS_PLAINTEXT_MAX bytes, reused across calls) and wiped.  For checking
 * many values at once (drover-setup upgrade).  Never refreshes key
 * versions.  @ret_reason (may be NULL) gets why not (owned). */
gboolean dv_keyring_value_opens(DvKeyring *keyring, DvSecret *scratch, const char *object_type,
                                const char *object_id, const char *field, const char *stored,
                                char **ret_reason);

/* --- the secrets table ------------------------------------------------- */

/* Seals @plaintext and inserts or replaces the (object_type, object_id,
 * field) row of the secrets table in @store.  Usable inside an outer
 * dv_store_transaction(). */
gboolean dv_keyring_store_secret(DvKeyring *keyring, DvStore *store, const char *object_type,
                                 const char *object_id, const char *field,
                                 const DvSecret *plaintext, GError **error);

/* The plaintext of one stored secret (owned), or NULL with
 * DV_ERROR_NOT_FOUND (no such secret is set) or DV_ERROR_SECRET_UNREADABLE
 * (prefixed with the object and field). */
DvSecret *dv_keyring_load_secret(DvKeyring *keyring, DvStore *store, const char *object_type,
                                 const char *object_id, const char *field, GError **error);

/* {field: dv_keyring_describe() of it, ...} for every secret of one object
 * (owned; empty when it has none). */
JsonObject *dv_keyring_describe_object(DvKeyring *keyring, DvStore *store,
                                       const char *object_type, const char *object_id,
                                       GError **error);

/* Removes one secret field (an explicit "clear"); not an error when unset. */
gboolean dv_keyring_delete_secret(DvKeyring *keyring, DvStore *store, const char *object_type,
                                  const char *object_id, const char *field, GError **error);

/* Removes every secret of an object that is itself being deleted. */
gboolean dv_keyring_delete_object_secrets(DvKeyring *keyring, DvStore *store,
                                          const char *object_type, const char *object_id,
                                          GError **error);

/* --- administration ----------------------------------------------------- */

/* One entry per key version, oldest first, without opening any real secret:
 * {"key_id", "version", "state" (pending|active|retired), "current",
 *  "open", "via" (protector kind or null), "reason" (null when open),
 *  "secrets" (rows of the secrets table under it),
 *  "protectors": [{"kind", "open", "reason"}...] (each protector tried)}.
 * Owned. */
JsonArray *dv_keyring_check(DvKeyring *keyring, GError **error);

/* Makes a recovery keypair, records the public key (key_protectors kind
 * "recovery"), seals every open key version to it and writes the private
 * key once to @out_path (mode 0600; refused if the file exists).  The
 * private key is wiped from memory afterwards.  Fails with
 * DV_ERROR_CONFLICT when a recovery key already exists. */
gboolean dv_keyring_recovery_create(DvKeyring *keyring, const char *out_path, GError **error);

/* Adds an extra protector to a running installation: wraps every open key
 * version with @protector (borrowed; must outlive the keyring), records it
 * in key_protectors with @config (borrowed; not secret) and uses it for
 * later rotations.  For `drover-setup keys directory init`. */
gboolean dv_keyring_add_protector(DvKeyring *keyring, DvKeyProtector *protector,
                                  JsonObject *config, GError **error);

/* Rewrites this machine's host key file so it holds every open key version
 * (after opening with the recovery key or the directory on a new machine).
 * A host key file that cannot be used here is renamed to
 * host.key.unusable-<time>, never deleted. */
gboolean dv_keyring_protect_with_host(DvKeyring *keyring, GError **error);

/* Makes a new key version k<N+1>, wraps it with every configured protector
 * (host file rewritten atomically, recovery sealing, extra protectors) and
 * makes it current.  Fails, leaving the current version as it was, when a
 * configured protector is not available or refuses the key.  Returns the
 * new key id in @ret_key_id (owned, may be NULL). */
gboolean dv_keyring_rotate(DvKeyring *keyring, char **ret_key_id, GError **error);

/* Re-encrypts up to @batch_size (1..1000) secrets that are not under the
 * current key version, each with its own compare-and-swap update, so
 * concurrent writes win and a rerun continues where this one stopped.
 * Secrets that cannot be opened here are left exactly as they are.
 * @ret_done: re-encrypted by this call; @ret_remaining: still to do by a
 * later call (0 = finished); @ret_skipped: not under the current key and
 * not re-encryptable here (key not open, or value fails to open).  Any
 * may be NULL. */
gboolean dv_keyring_rekey_batch(DvKeyring *keyring, guint batch_size, guint *ret_done,
                                guint *ret_remaining, guint *ret_skipped, GError **error);

/* Marks "retired" every key version other than the current one that no
 * secret references.  Retired keys stay wrapped by their protectors, so
 * backups of the database taken before the rekey stay readable; they are
 * no longer used to seal.  @ret_retired (may be NULL) gets how many. */
gboolean dv_keyring_retire_unused(DvKeyring *keyring, guint *ret_retired, GError **error);

/* --- another account's host key file (drover-setup upgrade) ------------- */

/* The account <state_dir>/keys/host.key was made for, read by whoever may
 * read the file (root), without opening any key.  DV_ERROR_NOT_FOUND when
 * there is no file. */
gboolean dv_host_keys_read_account(const char *state_dir, guint *ret_uid, char **ret_user,
                                   GError **error);

/* A read-only protector (kind "previous-host") that opens keys from the
 * host key file of account @uid/@user on this machine (@machine_id_path,
 * NULL: /etc/machine-id), for an administrator who re-wraps them for a new
 * service account.  Free with dv_key_protector_free(). */
DvKeyProtector *dv_host_file_protector_new(const char *state_dir, const char *machine_id_path,
                                           guint uid, const char *user);

G_END_DECLS
