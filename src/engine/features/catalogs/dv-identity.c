#define G_LOG_DOMAIN "DvIdentity"

#include "dv-identity.h"

#include "dv-error.h"

#include <archive.h>
#include <archive_entry.h>
#include <crypt.h>
#include <sodium.h>
#include <string.h>

/* ---- guarded text buffers ----------------------------------------------
 * Every file of the image is assembled in sodium_malloc'd memory of a fixed
 * size (the file's cap): it never reallocates, so no copy of a secret is
 * left behind in freed heap memory.  An append past the cap sets
 * @overflow and is dropped; the caller turns that into a size error. */

typedef struct {
    DvSecret *secret;
    guint8 *data;
    gsize len;
    gsize cap;
    gboolean overflow;
} DvSecBuf;

static void
dv_secbuf_init(DvSecBuf *b, gsize cap)
{
    b->secret = dv_secret_new(cap);
    b->data = dv_secret_get_data_mutable(b->secret);
    b->len = 0;
    b->cap = cap;
    b->overflow = FALSE;
}

static void
dv_secbuf_clear(DvSecBuf *b)
{
    g_clear_pointer(&b->secret, dv_secret_free);
    b->data = NULL;
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(DvSecBuf, dv_secbuf_clear)

static void
dv_secbuf_add_len(DvSecBuf *b, const void *p, gsize n)
{
    if (b->overflow || n > b->cap - b->len) {
        b->overflow = TRUE;
        return;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void
dv_secbuf_add(DvSecBuf *b, const char *s)
{
    dv_secbuf_add_len(b, s, strlen(s));
}

static void
dv_secbuf_add_c(DvSecBuf *b, char c)
{
    dv_secbuf_add_len(b, &c, 1);
}

/* Only for text that holds no secret: the formatted copy is plain heap. */
static void G_GNUC_PRINTF(2, 3)
dv_secbuf_addf(DvSecBuf *b, const char *format, ...)
{
    va_list ap;
    g_autofree char *s = NULL;

    va_start(ap, format);
    s = g_strdup_vprintf(format, ap);
    va_end(ap);
    dv_secbuf_add(b, s);
}

/* A YAML double-quoted scalar, escaped byte by byte straight into @b. */
static void
dv_secbuf_add_yaml_quoted(DvSecBuf *b, const guint8 *s, gsize n)
{
    static const char hex[] = "0123456789abcdef";

    dv_secbuf_add_c(b, '"');
    for (gsize i = 0; i < n; i++) {
        guint8 c = s[i];
        if (c == '"' || c == '\\') {
            dv_secbuf_add_c(b, '\\');
            dv_secbuf_add_c(b, (char)c);
        } else if (c < 0x20 || c == 0x7f) {
            char esc[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
            dv_secbuf_add_len(b, esc, 4);
        } else {
            dv_secbuf_add_c(b, (char)c);
        }
    }
    dv_secbuf_add_c(b, '"');
}

static void
dv_secbuf_add_yaml_str(DvSecBuf *b, const char *s)
{
    dv_secbuf_add_yaml_quoted(b, (const guint8 *)s, strlen(s));
}

/* A JSON string, escaped straight into @b. */
static void
dv_secbuf_add_json_quoted(DvSecBuf *b, const guint8 *s, gsize n)
{
    static const char hex[] = "0123456789abcdef";

    dv_secbuf_add_c(b, '"');
    for (gsize i = 0; i < n; i++) {
        guint8 c = s[i];
        if (c == '"' || c == '\\') {
            dv_secbuf_add_c(b, '\\');
            dv_secbuf_add_c(b, (char)c);
        } else if (c < 0x20 || c == 0x7f) {
            char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
            dv_secbuf_add_len(b, esc, 6);
        } else {
            dv_secbuf_add_c(b, (char)c);
        }
    }
    dv_secbuf_add_c(b, '"');
}

/* ---- validation ---------------------------------------------------------- */

static gboolean
dv_identity_bad(GError **error, const char *field, const char *why)
{
    dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "%s: %s", field, why);
    return FALSE;
}

static gboolean
dv_identity_check_chars(const char *field, const char *v, gsize max, const char *allowed,
                        const char *why, GError **error)
{
    gsize n;

    if (v == NULL || v[0] == '\0')
        return dv_identity_bad(error, field, "must not be empty");
    n = strlen(v);
    if (n > max || strspn(v, allowed) != n)
        return dv_identity_bad(error, field, why);
    return TRUE;
}

#define DV_ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

/* RFC 1123: dot-separated labels of 1-63 letters, digits and hyphens, not
 * starting or ending with a hyphen; 253 bytes at most. */
static gboolean
dv_identity_check_hostname(const char *field, const char *v, GError **error)
{
    static const char why[] = "must be an RFC 1123 host name: labels of 1-63 letters, digits "
                              "and '-' separated by '.', at most 253 bytes, no spaces";
    g_auto(GStrv) labels = NULL;

    if (!dv_identity_check_chars(field, v, 253, DV_ALNUM "-.", why, error))
        return FALSE;
    labels = g_strsplit(v, ".", -1);
    for (guint i = 0; labels[i] != NULL; i++) {
        gsize n = strlen(labels[i]);
        if (n == 0 || n > 63 || labels[i][0] == '-' || labels[i][n - 1] == '-')
            return dv_identity_bad(error, field, why);
    }
    return TRUE;
}

static gboolean
dv_identity_check_text(const char *field, const char *v, gsize max, gboolean oneline,
                       GError **error)
{
    gsize n = strlen(v);

    if (n == 0)
        return dv_identity_bad(error, field, "must not be empty");
    if (n > max) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "%s: must be at most %" G_GSIZE_FORMAT " bytes", field, max);
        return FALSE;
    }
    if (!g_utf8_validate(v, n, NULL))
        return dv_identity_bad(error, field, "must be UTF-8");
    for (const char *p = v; *p != '\0'; p++) {
        guchar c = (guchar)*p;
        if ((c < 0x20 && !(c == '\n' && !oneline) && !(c == '\t' && !oneline)) || c == 0x7f)
            return dv_identity_bad(error, field,
                                   oneline ? "must be one line without control characters"
                                           : "must not hold control characters");
    }
    return TRUE;
}

/* Secret values are checked without ever quoting them. */
static gboolean
dv_identity_check_secret(const char *field, const DvSecret *s, GError **error)
{
    const guint8 *d;
    gsize n;

    if (s == NULL)
        return TRUE;
    d = dv_secret_get_data(s);
    n = dv_secret_get_len(s);
    if (n == 0)
        return dv_identity_bad(error, field, "must not be empty");
    if (n > DV_IDENTITY_SECRET_MAX)
        return dv_identity_bad(error, field, "must be at most 1024 bytes");
    if (memchr(d, '\0', n) != NULL || !g_utf8_validate((const char *)d, n, NULL))
        return dv_identity_bad(error, field, "must be UTF-8 text without NUL bytes");
    return TRUE;
}

/* Top-level keys of a YAML document, one per line that starts a mapping
 * entry at column 0.  Good enough for the profile's #cloud-config: flow
 * style or multi-document input is the profile author's business. */
static GPtrArray *
dv_identity_top_level_keys(const char *text, gsize len)
{
    GPtrArray *keys = g_ptr_array_new_with_free_func(g_free);
    const char *p = text;
    const char *end = text + len;

    while (p < end) {
        const char *eol = memchr(p, '\n', end - p);
        const char *colon;

        if (eol == NULL)
            eol = end;
        colon = memchr(p, ':', eol - p);
        if (colon != NULL && p < eol && strchr(" \t#-[{.", *p) == NULL) {
            const char *ks = p, *ke = colon;
            if ((*ks == '"' || *ks == '\'') && ke > ks + 1 && ke[-1] == *ks) {
                ks++;
                ke--;
            }
            g_ptr_array_add(keys, g_strndup(ks, ke - ks));
        }
        p = eol + 1;
    }
    return keys;
}

static gboolean
dv_identity_keys_contain(GPtrArray *keys, const char *key)
{
    for (guint i = 0; i < keys->len; i++)
        if (g_strcmp0(g_ptr_array_index(keys, i), key) == 0)
            return TRUE;
    return FALSE;
}

static gboolean
dv_identity_spec_check(const DvIdentitySpec *spec, GError **error)
{
    guint n_keys = 0;

    if (!dv_identity_check_chars("instance_id", spec->instance_id, 128, DV_ALNUM "._:-",
                                 "must be 1-128 letters, digits, '.', '_', ':' or '-'", error) ||
        !dv_identity_check_hostname("hostname", spec->hostname, error))
        return FALSE;
    if (spec->time_zone != NULL &&
        !dv_identity_check_chars("time_zone", spec->time_zone, 64, DV_ALNUM "_+-/",
                                 "must be a tz database name such as Europe/Berlin", error))
        return FALSE;
    if (spec->admin_username != NULL) {
        static const char why[] = "must be 1-32 letters, digits, '.', '_' or '-' starting with "
                                  "a letter or '_'";
        if (!dv_identity_check_chars("admin_username", spec->admin_username, 32, DV_ALNUM "._-",
                                     why, error))
            return FALSE;
        if (!g_ascii_isalpha(spec->admin_username[0]) && spec->admin_username[0] != '_')
            return dv_identity_bad(error, "admin_username", why);
    }
    for (; spec->ssh_authorized_keys != NULL && spec->ssh_authorized_keys[n_keys] != NULL;
         n_keys++) {
        g_autofree char *f = g_strdup_printf("ssh_authorized_keys[%u]", n_keys);
        if (n_keys >= DV_IDENTITY_SSH_KEYS_MAX)
            return dv_identity_bad(error, "ssh_authorized_keys", "at most 64 keys");
        if (!dv_identity_check_text(f, spec->ssh_authorized_keys[n_keys], DV_IDENTITY_SSH_KEY_MAX,
                                    TRUE, error))
            return FALSE;
    }
    if (!dv_identity_check_secret("admin_password", spec->admin_password, error) ||
        !dv_identity_check_secret("domain_join_password", spec->domain_join_password, error) ||
        !dv_identity_check_secret("product_key", spec->product_key, error))
        return FALSE;
    if (spec->domain != NULL && !dv_identity_check_hostname("domain", spec->domain, error))
        return FALSE;
    if (spec->domain_join_user != NULL) {
        if (!dv_identity_check_text("domain_join_user", spec->domain_join_user, 256, TRUE, error))
            return FALSE;
        if (strchr(spec->domain_join_user, ' ') != NULL)
            return dv_identity_bad(error, "domain_join_user", "must not hold spaces");
    }
    if (spec->domain == NULL && (spec->domain_join_user != NULL || spec->domain_join_password != NULL))
        return dv_identity_bad(error, spec->domain_join_user != NULL ? "domain_join_user"
                                                                     : "domain_join_password",
                               "needs a domain to join");
    if (spec->network_config != NULL &&
        !dv_identity_check_text("network_config", spec->network_config,
                                DV_IDENTITY_NETWORK_CONFIG_MAX, FALSE, error))
        return FALSE;
    if (spec->extra_user_data != NULL) {
        if (!dv_identity_check_text("user_data", spec->extra_user_data,
                                    DV_IDENTITY_USER_DATA_MAX, FALSE, error))
            return FALSE;
        if (!g_str_has_prefix(spec->extra_user_data, "#cloud-config\n") &&
            g_strcmp0(spec->extra_user_data, "#cloud-config") != 0)
            return dv_identity_bad(error, "user_data",
                                   "must be a #cloud-config document (first line "
                                   "\"#cloud-config\"); scripts and MIME multipart are not "
                                   "supported");
    }
    return TRUE;
}

/* ---- the files ----------------------------------------------------------- */

#define DV_IDENTITY_DEFAULT_ADMIN "admin"
#define DV_IDENTITY_GUEST_FILE "/var/lib/drover/identity.json"

static gboolean
dv_identity_has_admin(const DvIdentitySpec *spec)
{
    return spec->admin_username != NULL || spec->admin_password != NULL ||
           (spec->ssh_authorized_keys != NULL && spec->ssh_authorized_keys[0] != NULL);
}

static gboolean
dv_identity_has_guest_file(const DvIdentitySpec *spec)
{
    return spec->domain != NULL || spec->product_key != NULL;
}

/* SHA-512 crypt ("$6$", 5000 rounds, 16-character salt from libsodium's
 * generator).  The crypt work area holds the password while it runs, so it
 * lives in guarded memory too and is wiped by sodium_free(). */
static gboolean
dv_identity_add_password_hash(DvSecBuf *b, const DvSecret *password, GError **error)
{
    static const char alphabet[] =
        "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    char setting[3 + 16 + 1] = "$6$";
    struct crypt_data *cd;
    const char *hash;
    gboolean ok;

    dv_secret_init_library();
    for (guint i = 0; i < 16; i++)
        setting[3 + i] = alphabet[randombytes_uniform(64)];
    setting[19] = '\0';
    cd = sodium_malloc(sizeof *cd);
    if (cd == NULL)
        g_error("sodium_malloc(%" G_GSIZE_FORMAT ") failed", sizeof *cd);
    sodium_memzero(cd, sizeof *cd);
    /* crypt_rn, not crypt_r: ASan intercepts crypt_r, and with --as-needed
     * libcrypt is then dropped and the interceptor calls NULL. */
    hash = crypt_rn(dv_secret_get_string(password), setting, cd, (int)sizeof *cd);
    ok = hash != NULL && g_str_has_prefix(hash, "$6$") && strlen(hash) > 20;
    if (ok)
        dv_secbuf_add_yaml_str(b, hash);
    sodium_free(cd);
    if (!ok)
        g_set_error_literal(error, DV_ERROR, DV_ERROR_INTERNAL,
                            "admin_password: SHA-512 crypt is not available in libcrypt");
    return ok;
}

static void
dv_identity_write_meta_data(DvSecBuf *b, const DvIdentitySpec *spec)
{
    dv_secbuf_add(b, "instance-id: ");
    dv_secbuf_add_yaml_str(b, spec->instance_id);
    dv_secbuf_add(b, "\nlocal-hostname: ");
    dv_secbuf_add_yaml_str(b, spec->hostname);
    dv_secbuf_add(b, "\n");
}

static gboolean
dv_identity_write_user_data(DvSecBuf *b, const DvIdentitySpec *spec, GError **error)
{
    g_autoptr(GPtrArray) ours = g_ptr_array_new();

    dv_secbuf_add(b, "#cloud-config\n");
    dv_secbuf_addf(b, "# Identity of instance %s, written by Drover.\n", spec->instance_id);
    dv_secbuf_add(b, "hostname: ");
    dv_secbuf_add_yaml_str(b, spec->hostname);
    dv_secbuf_add(b, "\npreserve_hostname: false\n");
    g_ptr_array_add(ours, (gpointer) "hostname");
    g_ptr_array_add(ours, (gpointer) "preserve_hostname");
    if (spec->time_zone != NULL) {
        dv_secbuf_add(b, "timezone: ");
        dv_secbuf_add_yaml_str(b, spec->time_zone);
        dv_secbuf_add(b, "\n");
        g_ptr_array_add(ours, (gpointer) "timezone");
    }
    if (dv_identity_has_admin(spec)) {
        dv_secbuf_add(b, "users:\n  - name: ");
        dv_secbuf_add_yaml_str(b, spec->admin_username != NULL ? spec->admin_username
                                                               : DV_IDENTITY_DEFAULT_ADMIN);
        dv_secbuf_add(b, "\n    shell: /bin/bash\n");
        if (spec->admin_password != NULL) {
            dv_secbuf_add(b, "    sudo: \"ALL=(ALL) ALL\"\n    lock_passwd: false\n"
                             "    passwd: ");
            if (!dv_identity_add_password_hash(b, spec->admin_password, error))
                return FALSE;
            dv_secbuf_add(b, "\n");
        } else {
            dv_secbuf_add(b, "    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n    lock_passwd: true\n");
        }
        if (spec->ssh_authorized_keys != NULL && spec->ssh_authorized_keys[0] != NULL) {
            dv_secbuf_add(b, "    ssh_authorized_keys:\n");
            for (guint i = 0; spec->ssh_authorized_keys[i] != NULL; i++) {
                dv_secbuf_add(b, "      - ");
                dv_secbuf_add_yaml_str(b, spec->ssh_authorized_keys[i]);
                dv_secbuf_add(b, "\n");
            }
        }
        g_ptr_array_add(ours, (gpointer) "users");
    }
    if (dv_identity_has_guest_file(spec)) {
        gboolean first = TRUE;
        struct {
            const char *key;
            const guint8 *v;
            gsize n;
        } items[] = {
            { "domain", (const guint8 *)spec->domain, spec->domain ? strlen(spec->domain) : 0 },
            { "domain_join_user", (const guint8 *)spec->domain_join_user,
              spec->domain_join_user ? strlen(spec->domain_join_user) : 0 },
            { "domain_join_password",
              spec->domain_join_password ? dv_secret_get_data(spec->domain_join_password) : NULL,
              spec->domain_join_password ? dv_secret_get_len(spec->domain_join_password) : 0 },
            { "product_key", spec->product_key ? dv_secret_get_data(spec->product_key) : NULL,
              spec->product_key ? dv_secret_get_len(spec->product_key) : 0 },
        };

        /* One JSON line in a literal block: JSON escaping leaves no
         * newline, so the YAML block needs no escaping at all. */
        dv_secbuf_add(b, "write_files:\n  - path: " DV_IDENTITY_GUEST_FILE "\n"
                         "    owner: \"root:root\"\n    permissions: \"0600\"\n"
                         "    content: |\n      {");
        for (guint i = 0; i < G_N_ELEMENTS(items); i++) {
            if (items[i].v == NULL)
                continue;
            if (!first)
                dv_secbuf_add_c(b, ',');
            first = FALSE;
            dv_secbuf_add_json_quoted(b, (const guint8 *)items[i].key, strlen(items[i].key));
            dv_secbuf_add_c(b, ':');
            dv_secbuf_add_json_quoted(b, items[i].v, items[i].n);
        }
        dv_secbuf_add(b, "}\n");
        g_ptr_array_add(ours, (gpointer) "write_files");
    }
    if (spec->extra_user_data != NULL) {
        const char *body = strchr(spec->extra_user_data, '\n');
        g_autoptr(GPtrArray) theirs = NULL;

        body = body != NULL ? body + 1 : "";
        theirs = dv_identity_top_level_keys(body, strlen(body));
        for (guint i = 0; i < theirs->len; i++) {
            if (dv_identity_keys_contain(ours, g_ptr_array_index(theirs, i))) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "user_data",
                                   "user_data: top-level key '%s' is written by Drover from the "
                                   "profile's own fields; remove it from user_data",
                                   (const char *)g_ptr_array_index(theirs, i));
                return FALSE;
            }
        }
        dv_secbuf_add(b, "# From the guest OS profile's user_data:\n");
        dv_secbuf_add(b, body);
        if (body[0] != '\0' && !g_str_has_suffix(body, "\n"))
            dv_secbuf_add_c(b, '\n');
    }
    if (b->overflow) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "user_data",
                           "user_data: the user-data file would exceed %d bytes",
                           DV_IDENTITY_USER_DATA_MAX);
        return FALSE;
    }
    return TRUE;
}

/* ---- ISO9660 ---------------------------------------------------------------
 * Layout (2048-byte sectors): 0-15 system area, 16 primary volume
 * descriptor, 17 Joliet supplementary descriptor, 18 terminator, 19-20
 * primary L/M path tables, 21-22 Joliet path tables, 23 primary root
 * directory (Rock Ridge), 24 Joliet root directory, 25- file data. */

#define ISO_SECTOR 2048
#define ISO_PVD 16
#define ISO_SVD 17
#define ISO_TERM 18
#define ISO_PT_L 19
#define ISO_PT_M 20
#define ISO_JPT_L 21
#define ISO_JPT_M 22
#define ISO_ROOT 23
#define ISO_JROOT 24
#define ISO_DATA 25
#define ISO_PT_SIZE 10

typedef struct {
    const char *name;      /* Rock Ridge and Joliet name */
    const char *iso_name;  /* ECMA-119 name */
    guint32 mode;          /* POSIX mode for Rock Ridge */
    const DvSecBuf *buf;
    guint32 extent;
} DvIsoFile;

static void
iso_le16(guint8 *p, guint16 v)
{
    p[0] = v & 0xff;
    p[1] = v >> 8;
}

static void
iso_be16(guint8 *p, guint16 v)
{
    p[0] = v >> 8;
    p[1] = v & 0xff;
}

static void
iso_le32(guint8 *p, guint32 v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (v >> (8 * i)) & 0xff;
}

static void
iso_be32(guint8 *p, guint32 v)
{
    for (int i = 0; i < 4; i++)
        p[3 - i] = (v >> (8 * i)) & 0xff;
}

static void
iso_both16(guint8 *p, guint16 v)
{
    iso_le16(p, v);
    iso_be16(p + 2, v);
}

static void
iso_both32(guint8 *p, guint32 v)
{
    iso_le32(p, v);
    iso_be32(p + 4, v);
}

/* A text field padded with spaces (primary) or UCS-2BE spaces (Joliet). */
static void
iso_text(guint8 *p, gsize field, const char *s, gboolean ucs2)
{
    gsize n = s != NULL ? strlen(s) : 0;

    for (gsize i = 0; i < field; i++)
        p[i] = (ucs2 && i % 2 == 0) ? 0x00 : ' ';
    if (ucs2 && field % 2 == 1)
        p[field - 1] = 0x00;
    for (gsize i = 0; i < n; i++) {
        if (ucs2) {
            if (2 * i + 1 >= field)
                break;
            p[2 * i] = 0x00;
            p[2 * i + 1] = (guint8)s[i];
        } else if (i < field) {
            p[i] = (guint8)s[i];
        }
    }
}

/* Rock Ridge PX (RRIP 1.09, 36 bytes). */
static gsize
iso_rr_px(guint8 *p, guint32 mode, guint32 nlink)
{
    p[0] = 'P';
    p[1] = 'X';
    p[2] = 36;
    p[3] = 1;
    iso_both32(p + 4, mode);
    iso_both32(p + 12, nlink);
    iso_both32(p + 20, 0);
    iso_both32(p + 28, 0);
    return 36;
}

/* Writes one directory record at @p; returns its length. */
static gsize
iso_dir_record(guint8 *p, guint32 extent, guint32 size, gboolean is_dir, const guint8 *id,
               gsize id_len, const guint8 *su, gsize su_len, const guint8 date[7])
{
    gsize pad = (id_len % 2 == 0) ? 1 : 0;
    gsize len = 33 + id_len + pad + su_len;

    len += len % 2;
    g_assert(len <= 255);
    p[0] = (guint8)len;
    p[1] = 0;
    iso_both32(p + 2, extent);
    iso_both32(p + 10, size);
    memcpy(p + 18, date, 7);
    p[25] = is_dir ? 0x02 : 0x00;
    p[26] = 0;
    p[27] = 0;
    iso_both16(p + 28, 1);
    p[32] = (guint8)id_len;
    memcpy(p + 33, id, id_len);
    if (su_len > 0)
        memcpy(p + 33 + id_len + pad, su, su_len);
    return len;
}

static void
iso_volume_descriptor(guint8 *p, gboolean joliet, guint32 total_sectors, const guint8 date7[7],
                      const char *date17)
{
    guint8 root_id = 0;

    p[0] = joliet ? 2 : 1;
    memcpy(p + 1, "CD001", 5);
    p[6] = 1;
    iso_text(p + 8, 32, NULL, joliet);
    iso_text(p + 40, 32, DV_IDENTITY_VOLUME_ID, joliet);
    iso_both32(p + 80, total_sectors);
    if (joliet)
        memcpy(p + 88, "%/E", 3); /* UCS-2 level 3 */
    iso_both16(p + 120, 1);
    iso_both16(p + 124, 1);
    iso_both16(p + 128, ISO_SECTOR);
    iso_both32(p + 132, ISO_PT_SIZE);
    iso_le32(p + 140, joliet ? ISO_JPT_L : ISO_PT_L);
    iso_be32(p + 148, joliet ? ISO_JPT_M : ISO_PT_M);
    iso_dir_record(p + 156, joliet ? ISO_JROOT : ISO_ROOT, ISO_SECTOR, TRUE, &root_id, 1, NULL, 0,
                   date7);
    iso_text(p + 190, 128, NULL, joliet);
    iso_text(p + 318, 128, NULL, joliet);
    iso_text(p + 446, 128, NULL, joliet);
    iso_text(p + 574, 128, "DROVER", joliet);
    iso_text(p + 702, 37, NULL, joliet);
    iso_text(p + 739, 37, NULL, joliet);
    iso_text(p + 776, 37, NULL, joliet);
    memcpy(p + 813, date17, 17);
    memcpy(p + 830, date17, 17);
    memcpy(p + 847, "0000000000000000", 16);
    memcpy(p + 864, date17, 17);
    p[881] = 1;
}

static void
iso_path_table(guint8 *p, guint32 root, gboolean big_endian)
{
    p[0] = 1;
    p[1] = 0;
    if (big_endian) {
        iso_be32(p + 2, root);
        iso_be16(p + 6, 1);
    } else {
        iso_le32(p + 2, root);
        iso_le16(p + 6, 1);
    }
    p[8] = 0;
    p[9] = 0;
}

static const char iso_er_id[] = "RRIP_1991A";
static const char iso_er_des[] =
    "THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
static const char iso_er_src[] = "PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.";

static void
iso_root_directory(guint8 *sector, gboolean joliet, DvIsoFile *files, guint n_files,
                   guint32 self, const guint8 date[7])
{
    guint8 su[255] = { 0 };
    gsize su_len = 0;
    gsize off = 0;
    guint8 dot = 0, dotdot = 1;

    /* ".": SUSP SP (Rock Ridge present), PX, and ER naming RRIP so Linux
     * prefers Rock Ridge names over Joliet. */
    if (!joliet) {
        const guint8 sp[7] = { 'S', 'P', 7, 1, 0xbe, 0xef, 0 };
        gsize li = strlen(iso_er_id), ld = strlen(iso_er_des), ls = strlen(iso_er_src);

        memcpy(su, sp, 7);
        su_len = 7;
        su_len += iso_rr_px(su + su_len, 040555, 2);
        su[su_len] = 'E';
        su[su_len + 1] = 'R';
        su[su_len + 2] = (guint8)(8 + li + ld + ls);
        su[su_len + 3] = 1;
        su[su_len + 4] = (guint8)li;
        su[su_len + 5] = (guint8)ld;
        su[su_len + 6] = (guint8)ls;
        su[su_len + 7] = 1;
        memcpy(su + su_len + 8, iso_er_id, li);
        memcpy(su + su_len + 8 + li, iso_er_des, ld);
        memcpy(su + su_len + 8 + li + ld, iso_er_src, ls);
        su_len += 8 + li + ld + ls;
    }
    off += iso_dir_record(sector + off, self, ISO_SECTOR, TRUE, &dot, 1, su, su_len, date);
    su_len = joliet ? 0 : iso_rr_px(su, 040555, 2);
    off += iso_dir_record(sector + off, self, ISO_SECTOR, TRUE, &dotdot, 1, su, su_len, date);

    for (guint i = 0; i < n_files; i++) {
        guint8 id[64];
        gsize id_len = 0;
        gsize n = strlen(files[i].name);

        su_len = 0;
        if (joliet) {
            g_autofree char *jname = g_strconcat(files[i].name, ";1", NULL);
            for (const char *c = jname; *c != '\0'; c++) {
                id[id_len++] = 0x00;
                id[id_len++] = (guint8)*c;
            }
        } else {
            id_len = strlen(files[i].iso_name);
            memcpy(id, files[i].iso_name, id_len);
            su_len = iso_rr_px(su, files[i].mode, 1);
            su[su_len] = 'N';
            su[su_len + 1] = 'M';
            su[su_len + 2] = (guint8)(5 + n);
            su[su_len + 3] = 1;
            su[su_len + 4] = 0;
            memcpy(su + su_len + 5, files[i].name, n);
            su_len += 5 + n;
        }
        off += iso_dir_record(sector + off, files[i].extent, (guint32)files[i].buf->len, FALSE,
                              id, id_len, su, su_len, date);
    }
    g_assert(off <= ISO_SECTOR);
}

/* Assembles the image straight into guarded memory of its exact size. */
static DvSecret *
dv_identity_iso_assemble(DvIsoFile *files, guint n_files)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *date17 = NULL;
    guint8 date7[7];
    guint32 next = ISO_DATA;
    DvSecret *iso;
    guint8 *p;

    for (guint i = 0; i < n_files; i++) {
        files[i].extent = next;
        next += (guint32)((files[i].buf->len + ISO_SECTOR - 1) / ISO_SECTOR);
    }
    date7[0] = (guint8)(g_date_time_get_year(now) - 1900);
    date7[1] = (guint8)g_date_time_get_month(now);
    date7[2] = (guint8)g_date_time_get_day_of_month(now);
    date7[3] = (guint8)g_date_time_get_hour(now);
    date7[4] = (guint8)g_date_time_get_minute(now);
    date7[5] = (guint8)g_date_time_get_second(now);
    date7[6] = 0;
    /* 16 digits then the offset from GMT in 15-minute units (0). */
    date17 = g_date_time_format(now, "%Y%m%d%H%M%S00"); /* its NUL is the offset */

    iso = dv_secret_new((gsize)next * ISO_SECTOR); /* zero-filled */
    p = dv_secret_get_data_mutable(iso);
    iso_volume_descriptor(p + ISO_PVD * ISO_SECTOR, FALSE, next, date7, date17);
    iso_volume_descriptor(p + ISO_SVD * ISO_SECTOR, TRUE, next, date7, date17);
    p[ISO_TERM * ISO_SECTOR] = 255;
    memcpy(p + ISO_TERM * ISO_SECTOR + 1, "CD001", 5);
    p[ISO_TERM * ISO_SECTOR + 6] = 1;
    iso_path_table(p + ISO_PT_L * ISO_SECTOR, ISO_ROOT, FALSE);
    iso_path_table(p + ISO_PT_M * ISO_SECTOR, ISO_ROOT, TRUE);
    iso_path_table(p + ISO_JPT_L * ISO_SECTOR, ISO_JROOT, FALSE);
    iso_path_table(p + ISO_JPT_M * ISO_SECTOR, ISO_JROOT, TRUE);
    iso_root_directory(p + ISO_ROOT * ISO_SECTOR, FALSE, files, n_files, ISO_ROOT, date7);
    iso_root_directory(p + ISO_JROOT * ISO_SECTOR, TRUE, files, n_files, ISO_JROOT, date7);
    for (guint i = 0; i < n_files; i++)
        memcpy(p + (gsize)files[i].extent * ISO_SECTOR, files[i].buf->data, files[i].buf->len);
    return iso;
}

DvSecret *
dv_identity_build_iso(const DvIdentitySpec *spec, GError **error)
{
    g_auto(DvSecBuf) meta = { 0 };
    g_auto(DvSecBuf) user = { 0 };
    g_auto(DvSecBuf) net = { 0 };
    DvIsoFile files[3];
    guint n = 0;

    g_return_val_if_fail(spec != NULL, NULL);
    if (!dv_identity_spec_check(spec, error))
        return NULL;

    dv_secbuf_init(&meta, DV_IDENTITY_META_DATA_MAX);
    dv_identity_write_meta_data(&meta, spec);
    g_assert(!meta.overflow); /* inputs are capped far below */
    dv_secbuf_init(&user, DV_IDENTITY_USER_DATA_MAX);
    if (!dv_identity_write_user_data(&user, spec, error))
        return NULL;

    /* Directory order is the sorted ECMA-119 names. */
    files[n++] = (DvIsoFile){ "meta-data", "META_DATA.;1", 0100444, &meta, 0 };
    if (spec->network_config != NULL) {
        dv_secbuf_init(&net, DV_IDENTITY_NETWORK_CONFIG_MAX);
        dv_secbuf_add(&net, spec->network_config);
        if (!g_str_has_suffix(spec->network_config, "\n"))
            dv_secbuf_add_c(&net, '\n');
        if (net.overflow) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "network_config",
                               "network_config: must be at most %d bytes",
                               DV_IDENTITY_NETWORK_CONFIG_MAX - 1);
            return NULL;
        }
        files[n++] = (DvIsoFile){ "network-config", "NETWORK_CONFIG.;1", 0100444, &net, 0 };
    }
    /* Root-only inside the guest: it holds the password hash and the
     * domain join data until cloud-init has run. */
    files[n++] = (DvIsoFile){ "user-data", "USER_DATA.;1", 0100400, &user, 0 };
    return dv_identity_iso_assemble(files, n);
}

/* ---- reading back ------------------------------------------------------- */

static void
dv_archive_free(struct archive *a)
{
    if (a != NULL)
        archive_read_free(a);
}
typedef struct archive DvArchive;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvArchive, dv_archive_free)

/* A plain copy of a non-secret scalar: quotes removed, simple escapes
 * undone, control characters replaced. */
static char *
dv_identity_scalar(const char *s, gsize n)
{
    GString *out = g_string_new(NULL);

    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\r'))
        n--;
    while (n > 0 && *s == ' ') {
        s++;
        n--;
    }
    if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
        s++;
        n -= 2;
    }
    for (gsize i = 0; i < n && out->len < 1024; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n)
            c = s[++i];
        g_string_append_c(out, ((guchar)c < 0x20 || c == 0x7f) ? '?' : c);
    }
    return g_string_free(out, FALSE);
}

static gsize
dv_indent(const char *line, gsize n)
{
    gsize i = 0;
    while (i < n && line[i] == ' ')
        i++;
    return i;
}

/* A JSON string value of a flat object line, unescaped (\\ and \" only:
 * Drover's own writer escapes nothing else in these non-secret fields). */
static char *
dv_identity_json_value(const char *line, gsize n, const char *key)
{
    g_autofree char *pat = g_strdup_printf("\"%s\":\"", key);
    const char *hit = g_strstr_len(line, n, pat);
    GString *out;

    if (hit == NULL)
        return NULL;
    out = g_string_new(NULL);
    for (const char *p = hit + strlen(pat); p < line + n && *p != '"' && out->len < 1024; p++) {
        if (*p == '\\' && p + 1 < line + n)
            p++;
        g_string_append_c(out, ((guchar)*p < 0x20) ? '?' : *p);
    }
    return g_string_free(out, FALSE);
}

static const char *const dv_identity_drover_keys[] = {
    "hostname", "preserve_hostname", "timezone", "users", "write_files", NULL
};

/* Describes a user-data file held in guarded memory without copying any
 * secret out of it: only names, counts and flags leave. */
static JsonObject *
dv_identity_summarize_user_data(const char *text, gsize len)
{
    JsonObject *o = json_object_new();
    JsonArray *users = json_array_new();
    JsonArray *extra = json_array_new();
    const char *p = text;
    const char *end = text + len;
    g_autofree char *top = NULL;
    gssize keys_indent = -1;
    gint64 n_keys = 0;
    gboolean has_password = FALSE;

    json_object_set_int_member(o, "size", (gint64)len);
    if (!(len >= 14 && memcmp(text, "#cloud-config\n", 14) == 0)) {
        json_object_set_string_member(o, "format", "other");
        json_array_unref(users);
        json_array_unref(extra);
        return o;
    }
    json_object_set_string_member(o, "format", "cloud-config");
    json_object_set_null_member(o, "hostname");
    json_object_set_null_member(o, "timezone");
    json_object_set_null_member(o, "domain");
    json_object_set_null_member(o, "domain_join_user");
    json_object_set_boolean_member(o, "has_domain_join_password", FALSE);
    json_object_set_boolean_member(o, "has_product_key", FALSE);

    while (p < end) {
        const char *eol = memchr(p, '\n', end - p);
        gsize n, ind;
        const char *s;
        gsize sn;

        if (eol == NULL)
            eol = end;
        n = eol - p;
        ind = dv_indent(p, n);
        s = p + ind;
        sn = n - ind;
        if (sn == 0 || s[0] == '#') {
            p = eol + 1;
            continue;
        }
        if (keys_indent >= 0 && (gssize)ind <= keys_indent && !(sn >= 1 && s[0] == '-' &&
                                                                  (gssize)ind > keys_indent))
            keys_indent = -1;
        if (ind == 0 && s[0] != '-') {
            const char *colon = memchr(s, ':', sn);
            g_free(top);
            top = colon != NULL ? g_strndup(s, colon - s) : g_strdup("");
            if (!g_strv_contains(dv_identity_drover_keys, top))
                json_array_add_string_element(extra, top);
            if (colon != NULL && (g_str_equal(top, "hostname") || g_str_equal(top, "timezone"))) {
                g_autofree char *v = dv_identity_scalar(colon + 1, s + sn - colon - 1);
                json_object_set_string_member(o, top, v);
            }
            if (g_str_equal(top, "chpasswd") || g_str_equal(top, "password"))
                has_password = TRUE;
        }
        if (keys_indent >= 0 && (gssize)ind > keys_indent && s[0] == '-') {
            n_keys++;
        } else if (sn >= 20 && (g_str_has_prefix(s, "ssh_authorized_keys:") ||
                                g_str_has_prefix(s, "- ssh_authorized_keys:"))) {
            keys_indent = (gssize)ind;
        } else if (top != NULL && g_str_equal(top, "users") && ind > 0) {
            const char *t = s;
            gsize tn = sn;
            if (tn >= 2 && t[0] == '-' && t[1] == ' ') {
                t += 2;
                tn -= 2;
            }
            if (tn > 5 && memcmp(t, "name:", 5) == 0) {
                g_autofree char *name = dv_identity_scalar(t + 5, tn - 5);
                json_array_add_string_element(users, name);
            } else if ((tn > 7 && memcmp(t, "passwd:", 7) == 0) ||
                       (tn > 14 && memcmp(t, "hashed_passwd:", 14) == 0) ||
                       (tn > 18 && memcmp(t, "plain_text_passwd:", 18) == 0)) {
                has_password = TRUE;
            }
        } else if (top != NULL && g_str_equal(top, "write_files") && s[0] == '{') {
            g_autofree char *domain = dv_identity_json_value(s, sn, "domain");
            g_autofree char *user = dv_identity_json_value(s, sn, "domain_join_user");
            if (domain != NULL)
                json_object_set_string_member(o, "domain", domain);
            if (user != NULL)
                json_object_set_string_member(o, "domain_join_user", user);
            if (g_strstr_len(s, sn, "\"domain_join_password\":") != NULL)
                json_object_set_boolean_member(o, "has_domain_join_password", TRUE);
            if (g_strstr_len(s, sn, "\"product_key\":") != NULL)
                json_object_set_boolean_member(o, "has_product_key", TRUE);
        }
        p = eol + 1;
    }
    json_object_set_array_member(o, "users", users);
    json_object_set_boolean_member(o, "has_password", has_password);
    json_object_set_int_member(o, "ssh_keys", n_keys);
    json_object_set_array_member(o, "extra_keys", extra);
    return o;
}

static JsonObject *
dv_identity_parse_meta_data(const char *text, gsize len)
{
    JsonObject *o = json_object_new();
    const char *p = text;
    const char *end = text + len;
    guint count = 0;

    while (p < end && count < 64) {
        const char *eol = memchr(p, '\n', end - p);
        const char *colon;

        if (eol == NULL)
            eol = end;
        colon = memchr(p, ':', eol - p);
        if (colon != NULL && p < eol && strchr(" \t#-", *p) == NULL) {
            g_autofree char *key = dv_identity_scalar(p, colon - p);
            g_autofree char *value = dv_identity_scalar(colon + 1, eol - colon - 1);
            json_object_set_string_member(o, key, value);
            count++;
        }
        p = eol + 1;
    }
    return o;
}

/* network-config is not treated as secret, but Wi-Fi passphrases may sit
 * in it: every "...password...:" value is replaced. */
static char *
dv_identity_redact_network_config(const char *text, gsize len)
{
    GString *out = g_string_new(NULL);
    const char *p = text;
    const char *end = text + len;

    while (p < end) {
        const char *eol = memchr(p, '\n', end - p);
        const char *colon;
        g_autofree char *head = NULL;

        if (eol == NULL)
            eol = end;
        colon = memchr(p, ':', eol - p);
        head = g_ascii_strdown(p, colon != NULL ? colon - p : 0);
        if (colon != NULL && (strstr(head, "password") != NULL || strstr(head, "psk") != NULL)) {
            g_string_append_len(out, p, colon - p);
            g_string_append(out, ": <redacted>");
        } else {
            g_string_append_len(out, p, eol - p);
        }
        if (eol < end)
            g_string_append_c(out, '\n');
        p = eol + 1;
    }
    return g_string_free(out, FALSE);
}

/* Does a YAML or JSON key name a secret? */
static gboolean
dv_identity_key_is_secret(const char *key, gsize len)
{
    static const char *const words[] = { "passw", "psk", "secret", "product_key", "productkey", "token",
                                         "private", "passphrase" };
    g_autofree char *low = g_ascii_strdown(key, (gssize)len);
    for (gsize i = 0; i < G_N_ELEMENTS(words); i++)
        if (strstr(low, words[i]) != NULL)
            return TRUE;
    return FALSE;
}

/* "true" or "false" (lock_passwd: false is no secret). */
static gboolean
dv_identity_is_yaml_bool(const char *v, gsize n)
{
    g_autofree char *t = g_strstrip(g_strndup(v, n));
    return g_ascii_strcasecmp(t, "true") == 0 || g_ascii_strcasecmp(t, "false") == 0;
}

/* A JSON object on one line (write_files content): the string value of
 * every secret key becomes "(secret, N bytes)". */
static void
dv_identity_redact_json_line(GString *out, const char *s, gsize n)
{
    gsize i = 0;
    while (i < n) {
        gsize kstart, kend, vstart, vend;
        if (s[i] != '"') {
            g_string_append_c(out, s[i++]);
            continue;
        }
        /* a string: find its end */
        kstart = i + 1;
        kend = kstart;
        while (kend < n && s[kend] != '"')
            kend += s[kend] == '\\' ? 2 : 1;
        if (kend >= n) {
            g_string_append_len(out, s + i, n - i);
            return;
        }
        g_string_append_len(out, s + i, kend + 1 - i);
        i = kend + 1;
        /* a key followed by a string value */
        vstart = i;
        while (vstart < n && (s[vstart] == ' ' || s[vstart] == ':'))
            vstart++;
        if (vstart < n && vstart > i && memchr(s + i, ':', vstart - i) != NULL && s[vstart] == '"' &&
            dv_identity_key_is_secret(s + kstart, kend - kstart)) {
            gsize bytes = 0;
            vend = vstart + 1;
            while (vend < n && s[vend] != '"') {
                vend += s[vend] == '\\' ? 2 : 1;
                bytes++;
            }
            g_string_append_len(out, s + i, vstart - i);
            g_string_append_printf(out, "\"(secret, %" G_GSIZE_FORMAT " bytes)\"", bytes);
            i = MIN(vend + 1, n);
        }
    }
}

/* user-data as text, with the value of every secret key (passwd,
 * hashed_passwd, domain_join_password, product_key, ...) replaced by
 * "(secret, N bytes)": block values and JSON lines too.  Nothing of a
 * secret is copied into the result. */
static char *
dv_identity_redact_user_data(const char *text, gsize len)
{
    GString *out = g_string_new(NULL);
    const char *p = text;
    const char *end = text + len;
    gssize block_indent = -1; /* inside a secret block scalar */
    gsize block_bytes = 0;

    while (p < end) {
        const char *eol = memchr(p, '\n', end - p);
        gsize n, ind, sn;
        const char *s;
        const char *colon;

        if (eol == NULL)
            eol = end;
        n = eol - p;
        ind = dv_indent(p, n);
        s = p + ind;
        sn = n - ind;
        if (block_indent >= 0) {
            if (sn == 0 || (gssize)ind > block_indent) {
                block_bytes += n + 1;
                p = eol + 1;
                continue;
            }
            g_string_append_printf(out, " \"(secret, %" G_GSIZE_FORMAT " bytes)\"\n", block_bytes);
            block_indent = -1;
        }
        if (sn >= 2 && s[0] == '-' && s[1] == ' ') {
            s += 2;
            sn -= 2;
        }
        colon = sn > 0 && s[0] != '#' && s[0] != '{' ? memchr(s, ':', sn) : NULL;
        if (sn > 0 && s[0] == '{') {
            g_string_append_len(out, p, s - p);
            dv_identity_redact_json_line(out, s, sn);
        } else if (colon != NULL && dv_identity_key_is_secret(s, colon - s) &&
                   !dv_identity_is_yaml_bool(colon + 1, s + sn - colon - 1)) {
            const char *v = colon + 1;
            gsize vn = s + sn - v;
            while (vn > 0 && (v[0] == ' ' || v[0] == '\t')) {
                v++;
                vn--;
            }
            g_string_append_len(out, p, colon + 1 - p);
            if (vn == 0 || v[0] == '|' || v[0] == '>') {
                block_indent = (gssize)ind;
                block_bytes = 0;
                p = eol + 1;
                continue;
            }
            if (vn >= 2 && (v[0] == '"' || v[0] == '\'') && v[vn - 1] == v[0])
                vn -= 2;
            g_string_append_printf(out, " \"(secret, %" G_GSIZE_FORMAT " bytes)\"", vn);
        } else if (colon != NULL && dv_identity_key_is_secret(colon + 1, s + sn - colon - 1) &&
                   memchr(colon + 1, '{', s + sn - colon - 1) != NULL) {
            /* A flow mapping naming a secret ({name: x, passwd: y}):
             * the whole value goes. */
            g_string_append_len(out, p, colon + 1 - p);
            g_string_append_printf(out, " \"(secret, %" G_GSIZE_FORMAT " bytes)\"", (gsize)(s + sn - colon - 1));
        } else {
            g_string_append_len(out, p, n);
        }
        if (eol < end)
            g_string_append_c(out, '\n');
        p = eol + 1;
    }
    if (block_indent >= 0)
        g_string_append_printf(out, " \"(secret, %" G_GSIZE_FORMAT " bytes)\"\n", block_bytes);
    return g_string_free(out, FALSE);
}

static gboolean
dv_identity_iso_bad(GError **error, const char *why)
{
    dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "iso", "iso: %s", why);
    return FALSE;
}

JsonObject *
dv_identity_read_iso(const guint8 *data, gsize len, GError **error)
{
    g_autoptr(DvArchive) a = NULL;
    g_autoptr(JsonObject) result = json_object_new();
    JsonArray *files = json_array_new();
    struct archive_entry *entry;
    g_autofree char *volume_id = NULL;
    int r;

    json_object_set_array_member(result, "files", files);
    json_object_set_null_member(result, "meta_data");
    json_object_set_null_member(result, "user_data_summary");
    json_object_set_null_member(result, "user_data");
    json_object_set_null_member(result, "network_config");
    if (data == NULL || len < (ISO_PVD + 1) * ISO_SECTOR || len > DV_IDENTITY_ISO_MAX ||
        data[ISO_PVD * ISO_SECTOR] != 1 ||
        memcmp(data + ISO_PVD * ISO_SECTOR + 1, "CD001", 5) != 0) {
        dv_identity_iso_bad(error, "not an ISO9660 identity image of at most 256 KiB");
        return NULL;
    }
    volume_id = dv_identity_scalar((const char *)data + ISO_PVD * ISO_SECTOR + 40, 32);
    json_object_set_string_member(result, "volume_id", volume_id);

    a = archive_read_new();
    archive_read_support_format_iso9660(a);
    if (archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "iso", "iso: cannot read: %s",
                           archive_error_string(a));
        return NULL;
    }
    while ((r = archive_read_next_header(a, &entry)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(entry);
        gint64 size = archive_entry_size(entry);
        gsize cap = 0;
        g_autoptr(DvSecret) content = NULL;
        g_autofree char *shown = dv_identity_scalar(name != NULL ? name : "", name ? strlen(name) : 0);
        JsonObject *f;
        guint8 *buf;
        gsize got = 0;

        if (archive_entry_filetype(entry) != AE_IFREG)
            continue;
        if (json_array_get_length(files) >= 64)
            break;
        f = json_object_new();
        json_object_set_string_member(f, "name", shown);
        json_object_set_int_member(f, "size", size);
        json_array_add_object_element(files, f);
        if (g_strcmp0(name, "meta-data") == 0)
            cap = DV_IDENTITY_META_DATA_MAX;
        else if (g_strcmp0(name, "user-data") == 0)
            cap = DV_IDENTITY_USER_DATA_MAX;
        else if (g_strcmp0(name, "network-config") == 0)
            cap = DV_IDENTITY_NETWORK_CONFIG_MAX;
        else
            continue;
        if (size < 0 || (guint64)size > cap) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "iso",
                               "iso: %s is larger than %" G_GSIZE_FORMAT " bytes", name, cap);
            return NULL;
        }
        /* Files land in guarded memory: user-data holds secrets. */
        content = dv_secret_new((gsize)size);
        buf = dv_secret_get_data_mutable(content);
        while (got < (gsize)size) {
            la_ssize_t n = archive_read_data(a, buf + got, (gsize)size - got);
            if (n < 0) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "iso",
                                   "iso: cannot read %s: %s", name, archive_error_string(a));
                return NULL;
            }
            if (n == 0)
                break;
            got += (gsize)n;
        }
        if (g_str_equal(name, "meta-data")) {
            json_object_set_object_member(result, "meta_data",
                                          dv_identity_parse_meta_data((const char *)buf, got));
        } else if (g_str_equal(name, "user-data")) {
            g_autofree char *ud = dv_identity_redact_user_data((const char *)buf, got);
            json_object_set_object_member(result, "user_data_summary",
                                          dv_identity_summarize_user_data((const char *)buf, got));
            json_object_set_string_member(result, "user_data", ud);
        } else {
            g_autofree char *nc = dv_identity_redact_network_config((const char *)buf, got);
            json_object_set_string_member(result, "network_config", nc);
        }
    }
    if (r != ARCHIVE_EOF && r != ARCHIVE_OK) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "iso", "iso: cannot read: %s",
                           archive_error_string(a));
        return NULL;
    }
    return g_steal_pointer(&result);
}
