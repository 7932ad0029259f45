/* Identity disks: the NoCloud ISO9660 image each catalog machine boots with.
 *
 * The image (volume label "cidata") holds meta-data, user-data
 * (#cloud-config) and, when given, network-config.  It is built in memory
 * and never touches a local file: libarchive's ISO9660 writer stages file
 * contents in an O_TMPFILE under $TMPDIR, so Drover writes the few sectors
 * itself (ECMA-119 with Rock Ridge and Joliet names) and uses libarchive
 * only to read images back.  See docs/IDENTITY-DISK.md for the format and
 * the decisions.
 *
 * The image carries secrets (admin password hash, domain join password,
 * product key): it is returned as a DvSecret (sodium_malloc'd, wiped on
 * free) and every intermediate buffer that held a secret is guarded memory
 * too.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "dv-secret.h"

G_BEGIN_DECLS

/* Caps on what a spec can grow (bytes). */
#define DV_IDENTITY_USER_DATA_MAX (64 * 1024)      /* whole user-data file */
#define DV_IDENTITY_NETWORK_CONFIG_MAX (16 * 1024)
#define DV_IDENTITY_META_DATA_MAX (4 * 1024)
#define DV_IDENTITY_SSH_KEYS_MAX 64
#define DV_IDENTITY_SSH_KEY_MAX (16 * 1024)
#define DV_IDENTITY_SECRET_MAX 1024                /* each password or key */
/* Largest image dv_identity_build_iso() makes and dv_identity_read_iso()
 * accepts: descriptors, path tables, two directories and the files. */
#define DV_IDENTITY_ISO_MAX (256 * 1024)

/* The volume label NoCloud looks for (blkid LABEL=cidata). */
#define DV_IDENTITY_VOLUME_ID "cidata"

/* Everything the identity disk of one machine says.  All members are
 * borrowed; NULL means "not set".  Required: instance_id, hostname. */
typedef struct {
    const char *instance_id;      /* 1-128 bytes [A-Za-z0-9._:-], meta-data instance-id */
    const char *hostname;         /* RFC 1123 host name, meta-data local-hostname */
    const char *time_zone;        /* e.g. "Europe/Berlin" */

    /* The administrator account (created with sudo rights). */
    const char *admin_username;   /* default "admin" when a password or keys are given */
    const DvSecret *admin_password;        /* hashed with SHA-512 crypt into user-data */
    const char *const *ssh_authorized_keys; /* NULL-terminated, for the admin account */

    /* Delivered to /var/lib/drover/identity.json (mode 0600) in the guest. */
    const char *domain;           /* domain to join */
    const char *domain_join_user;
    const DvSecret *domain_join_password;  /* needs @domain */
    const DvSecret *product_key;

    /* A guest OS profile's own user-data: "#cloud-config" YAML appended to
     * Drover's; it must not repeat a top-level key Drover writes. */
    const char *extra_user_data;
    /* Written verbatim as network-config (netplan v1/v2 YAML). */
    const char *network_config;
} DvIdentitySpec;

/* Builds the ISO image for @spec.  Returns it in guarded memory (owned;
 * dv_secret_free), or NULL with DV_ERROR_INVALID_ARGUMENT naming the spec
 * field ("hostname", "instance_id", "user_data", ...) for bad or oversized
 * input, DV_ERROR_INTERNAL when password hashing fails.  Error messages
 * never contain secret values. */
DvSecret *dv_identity_build_iso(const DvIdentitySpec *spec, GError **error);

/* Reads an identity image back (at most DV_IDENTITY_ISO_MAX bytes,
 * borrowed) and describes it without any secret value (owned):
 *
 *   {volume_id, files: [{name, size}],
 *    meta_data: {"instance-id": ..., "local-hostname": ..., ...},
 *    user_data_summary: {format ("cloud-config"|"other"), size, hostname,
 *        timezone, users: [names], has_password, ssh_keys (count),
 *        domain, domain_join_user, has_domain_join_password,
 *        has_product_key, extra_keys: [top-level keys Drover did not write]},
 *    user_data: the text with the value of every secret key (passwd,
 *        hashed_passwd, domain_join_password, product_key, anything named
 *        like a password, key, token or secret) replaced by
 *        "(secret, N bytes)", or null,
 *    network_config: text with password values replaced by "<redacted>",
 *        or null}
 *
 * DV_ERROR_INVALID_ARGUMENT (field "iso") when the bytes are not an
 * ISO9660 image or a file is over its cap. */
JsonObject *dv_identity_read_iso(const guint8 *data, gsize len, GError **error);

G_END_DECLS
