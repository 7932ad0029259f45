#define G_LOG_DOMAIN "DvValidate"

#include "dv-validate.h"
#include "dv-error.h"

#include <string.h>

gboolean
dv_validate_name(const char *field, const char *name, GError **error)
{
    gsize len;

    if (name == NULL || name[0] == '\0') {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "%s: must not be empty", field);
        return FALSE;
    }
    len = strlen(name);
    if (len > DV_NAME_MAX) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "%s: must be at most %d characters (got %" G_GSIZE_FORMAT ")",
                           field, DV_NAME_MAX, len);
        return FALSE;
    }
    if (!g_ascii_isalnum(name[0])) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "%s: must start with a letter or digit", field);
        return FALSE;
    }
    for (gsize i = 0; i < len; i++) {
        char c = name[i];
        if (!g_ascii_isalnum(c) && c != '.' && c != '_' && c != '-') {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                               "%s: may hold only letters, digits, '.', '_' and '-' "
                               "(character %" G_GSIZE_FORMAT " is not allowed)",
                               field, i + 1);
            return FALSE;
        }
    }
    return TRUE;
}

gboolean
dv_validate_text(const char *field, const char *text, gsize max, GError **error)
{
    gsize len;

    if (text == NULL)
        return TRUE;
    len = strlen(text);
    if (len > max) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "%s: must be at most %" G_GSIZE_FORMAT " bytes", field, max);
        return FALSE;
    }
    if (!g_utf8_validate(text, (gssize)len, NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "%s: must be valid UTF-8", field);
        return FALSE;
    }
    for (gsize i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 && c != '\n' && c != '\t') {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                               "%s: must not hold control characters", field);
            return FALSE;
        }
    }
    return TRUE;
}

gboolean
dv_validate_range(const char *field, gint64 value, gint64 min, gint64 max, GError **error)
{
    if (value < min || value > max) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "%s: must be between %" G_GINT64_FORMAT " and %" G_GINT64_FORMAT
                           " (got %" G_GINT64_FORMAT ")",
                           field, min, max, value);
        return FALSE;
    }
    return TRUE;
}

/* --- host URIs -------------------------------------------------------------- */

/* Transports as libvirt's remote driver names them. */
enum {
    DV_URI_T_LOCAL = 1 << 0,  /* qemu:///system, qemu+unix:///system */
    DV_URI_T_SSH = 1 << 1,    /* the ssh binary */
    DV_URI_T_LIBSSH = 1 << 2, /* libssh and libssh2 (in-process ssh) */
    DV_URI_T_TLS = 1 << 3,    /* qemu+tls://, and qemu://host/ */
    DV_URI_T_TCP = 1 << 4,    /* plain TCP; libvirtd insists on SASL */
};

static const char *const dv_uri_mode_values[] = { "auto", "direct", "legacy", NULL };
static const char *const dv_uri_proxy_values[] = { "auto", "netcat", "native", NULL };
static const char *const dv_uri_bool_values[] = { "0", "1", NULL };
static const char *const dv_uri_verify_values[] = { "normal", NULL };
static const char *const dv_uri_sshauth_values[] = { "agent", "privkey", "password",
                                                     "keyboard-interactive", NULL };

/* Every parameter libvirt's remote driver reads (docs/uri.rst), where it
 * reads it, and the values allowed without configuration (NULL: none;
 * only droverd's [hosts] allow_uri_parameters turns it on, with any
 * value).  Any other parameter is unknown and refused: libvirt passes
 * unknown ones through to the far end. */
static const struct {
    const char *name;
    guint transports;
    const char *const *values;
    gboolean list;   /* a comma-separated list of values */
    const char *why; /* why it is off by default */
} dv_uri_params[] = {
    { "name", DV_URI_T_LOCAL | DV_URI_T_SSH | DV_URI_T_LIBSSH | DV_URI_T_TLS | DV_URI_T_TCP, NULL,
      FALSE, "replaces the driver URI the daemon opens" },
    { "mode", DV_URI_T_LOCAL | DV_URI_T_SSH | DV_URI_T_LIBSSH, dv_uri_mode_values, FALSE, NULL },
    { "proxy", DV_URI_T_SSH | DV_URI_T_LIBSSH, dv_uri_proxy_values, FALSE, NULL },
    { "command", DV_URI_T_SSH, NULL, FALSE, "names a program to run on the management server" },
    { "socket", DV_URI_T_LOCAL | DV_URI_T_SSH | DV_URI_T_LIBSSH, NULL, FALSE,
      "names a socket to connect to" },
    { "netcat", DV_URI_T_SSH | DV_URI_T_LIBSSH, NULL, FALSE,
      "names a program run through a shell on the host" },
    { "keyfile", DV_URI_T_SSH | DV_URI_T_LIBSSH, NULL, FALSE,
      "names a key file on the management server" },
    { "no_verify", DV_URI_T_SSH | DV_URI_T_TLS, NULL, FALSE,
      "turns off host key or certificate checking" },
    { "no_tty", DV_URI_T_SSH, dv_uri_bool_values, FALSE, NULL },
    { "known_hosts", DV_URI_T_LIBSSH, NULL, FALSE,
      "names a file on the management server that libssh may rewrite" },
    { "known_hosts_verify", DV_URI_T_LIBSSH, dv_uri_verify_values, FALSE,
      "other values accept unknown host keys" },
    { "sshauth", DV_URI_T_LIBSSH, dv_uri_sshauth_values, TRUE, NULL },
    { "tls_priority", DV_URI_T_TLS, NULL, FALSE, "can weaken the TLS ciphers" },
    { "pkipath", DV_URI_T_TLS, NULL, FALSE, "names a directory of keys on the management server" },
};

static gboolean
dv_uri_refuse(GError **error, const char *field, const char *format, ...) G_GNUC_PRINTF(3, 4);

static gboolean
dv_uri_refuse(GError **error, const char *field, const char *format, ...)
{
    va_list args;
    g_autofree char *msg = NULL;

    va_start(args, format);
    msg = g_strdup_vprintf(format, args);
    va_end(args);
    dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "%s: %s", field, msg);
    return FALSE;
}

static gboolean
dv_uri_value_in(const char *value, const char *const *values, gboolean list)
{
    g_auto(GStrv) parts = NULL;

    if (!list)
        return g_strv_contains(values, value);
    parts = g_strsplit(value, ",", -1);
    if (parts[0] == NULL)
        return FALSE;
    for (guint i = 0; parts[i] != NULL; i++)
        if (!g_strv_contains(values, parts[i]))
            return FALSE;
    return TRUE;
}

static gboolean
dv_uri_policy_allows(const DvUriPolicy *policy, const char *name)
{
    return policy != NULL && policy->allow_parameters != NULL &&
           g_strv_contains(policy->allow_parameters, name);
}

gboolean
dv_validate_uri_parameter_name(const char *name, GError **error)
{
    g_autoptr(GString) known = g_string_new(NULL);

    for (gsize i = 0; i < G_N_ELEMENTS(dv_uri_params); i++) {
        if (g_strcmp0(name, dv_uri_params[i].name) == 0)
            return TRUE;
        g_string_append_printf(known, "%s%s", i > 0 ? ", " : "", dv_uri_params[i].name);
    }
    g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                "'%s' is not a libvirt URI parameter (known: %s)", name != NULL ? name : "", known->str);
    return FALSE;
}

/* A DNS name or an IP address: never an option to the ssh binary. */
static gboolean
dv_uri_host_ok(const char *host)
{
    gboolean ipv6 = strchr(host, ':') != NULL;

    if (host[0] == '\0' || host[0] == '-' || host[0] == '.')
        return FALSE;
    for (const char *p = host; *p != '\0'; p++) {
        if (ipv6 ? !(g_ascii_isxdigit(*p) || *p == ':' || *p == '.')
                 : !(g_ascii_isalnum(*p) || *p == '-' || *p == '.'))
            return FALSE;
    }
    return TRUE;
}

static gboolean
dv_uri_user_ok(const char *user)
{
    if (user[0] == '\0' || user[0] == '-')
        return FALSE;
    for (const char *p = user; *p != '\0'; p++)
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.')
            return FALSE;
    return TRUE;
}

static gboolean
dv_uri_check_params(const char *field, const char *query, guint transport, const char *transport_name,
                    const DvUriPolicy *policy, GHashTable *seen, GError **error)
{
    GUriParamsIter iter;
    g_autoptr(GError) local = NULL;
    char *raw_name = NULL;
    char *raw_value = NULL;

    /* libvirt splits parameters on '&' and ';' and compares names
     * without case: so does this check. */
    g_uri_params_iter_init(&iter, query, -1, "&;", G_URI_PARAMS_NONE);
    while (g_uri_params_iter_next(&iter, &raw_name, &raw_value, &local)) {
        g_autofree char *given = raw_name;
        g_autofree char *value = raw_value;
        g_autofree char *name = g_ascii_strdown(given, -1);
        gssize idx = -1;

        for (gsize i = 0; i < G_N_ELEMENTS(dv_uri_params); i++)
            if (g_strcmp0(name, dv_uri_params[i].name) == 0)
                idx = (gssize)i;
        if (idx < 0)
            return dv_uri_refuse(error, field, "parameter '%s' is unknown to Drover", given);
        if (!g_hash_table_add(seen, g_strdup(name)))
            return dv_uri_refuse(error, field, "parameter '%s' is given twice", name);
        if ((dv_uri_params[idx].transports & transport) == 0)
            return dv_uri_refuse(error, field, "parameter '%s' does not apply to the %s transport",
                                 name, transport_name);
        if (dv_uri_policy_allows(policy, name))
            continue;
        if (dv_uri_params[idx].values == NULL)
            return dv_uri_refuse(error, field,
                                 "parameter '%s' %s; an administrator allows it in droverd's "
                                 "config ([hosts] allow_uri_parameters)",
                                 name, dv_uri_params[idx].why);
        if (!dv_uri_value_in(value, dv_uri_params[idx].values, dv_uri_params[idx].list)) {
            g_autofree char *allowed = g_strjoinv(", ", (char **)dv_uri_params[idx].values);
            return dv_uri_refuse(error, field, "parameter '%s' may be %s%s (other values need "
                                 "[hosts] allow_uri_parameters in droverd's config)",
                                 name, dv_uri_params[idx].list ? "a list of " : "", allowed);
        }
    }
    if (local != NULL)
        return dv_uri_refuse(error, field, "the query cannot be parsed: %s", local->message);
    return TRUE;
}

gboolean
dv_validate_host_uri(const char *field, const char *uri, const DvUriPolicy *policy, GError **error)
{
    g_autoptr(GUri) parsed = NULL;
    g_autoptr(GError) local = NULL;
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    const char *scheme;
    const char *plus;
    const char *host;
    const char *user;
    const char *path;
    const char *query;
    g_autofree char *driver = NULL;
    const char *tname;
    guint transport;
    gsize len;

    if (uri == NULL || uri[0] == '\0')
        return dv_uri_refuse(error, field, "must not be empty");
    len = strlen(uri);
    if (len > DV_URI_MAX)
        return dv_uri_refuse(error, field, "must be at most %d bytes", DV_URI_MAX);
    /* RFC 3986 characters only: what GUri and libvirt's own parser could
     * read differently stays out. */
    for (gsize i = 0; i < len; i++) {
        if (!g_ascii_isalnum(uri[i]) && strchr("-._~:/?#[]@!$&'()*+,;=%", uri[i]) == NULL)
            return dv_uri_refuse(error, field, "must be printable ASCII without spaces, "
                                 "quotes or backslashes (character %" G_GSIZE_FORMAT ")", i + 1);
    }
    parsed = g_uri_parse(uri, G_URI_FLAGS_ENCODED | G_URI_FLAGS_NON_DNS | G_URI_FLAGS_HAS_PASSWORD |
                         G_URI_FLAGS_SCHEME_NORMALIZE, &local);
    if (parsed == NULL)
        return dv_uri_refuse(error, field, "is not a URI (%s); use e.g. qemu+ssh://kvm1.example/system",
                             local->message);
    if (g_uri_get_fragment(parsed) != NULL)
        return dv_uri_refuse(error, field, "must not have a fragment ('#')");
    if (g_uri_get_password(parsed) != NULL)
        return dv_uri_refuse(error, field, "must not hold a password; give the host a Run As account");
    if (g_uri_get_auth_params(parsed) != NULL)
        return dv_uri_refuse(error, field, "must not hold authentication parameters");
    scheme = g_uri_get_scheme(parsed);
    host = g_uri_get_host(parsed);
    user = g_uri_get_user(parsed);
    path = g_uri_get_path(parsed);
    query = g_uri_get_query(parsed);
    plus = strchr(scheme, '+');
    driver = plus != NULL ? g_strndup(scheme, (gsize)(plus - scheme)) : g_strdup(scheme);
    tname = plus != NULL ? plus + 1 : NULL;
    if (host != NULL && host[0] == '\0')
        host = NULL;

    if (g_ascii_strcasecmp(driver, "test") == 0) {
        /* libvirt's simulated hypervisor reads any file named in the path. */
        if (policy == NULL || !policy->allow_simulated)
            return dv_uri_refuse(error, field, "simulated hosts (test://) are off; droverd's config "
                                 "turns them on with [hosts] simulated = true");
        /* test+unix: the same simulation served by the local libvirtd
         * (the benchmark's --hosts-in-libvirtd). */
        if ((tname != NULL && g_ascii_strcasecmp(tname, "unix") != 0) || host != NULL || user != NULL || g_uri_get_port(parsed) != -1 ||
            query != NULL || !g_path_is_absolute(path) || strlen(path) < 2)
            return dv_uri_refuse(error, field, "a simulated host is test:///default, test:///FILE or test+unix:///FILE");
        return TRUE;
    }
    if (g_ascii_strcasecmp(driver, "qemu") != 0)
        return dv_uri_refuse(error, field, "driver '%s' is not supported; use qemu (KVM/QEMU)", driver);

    if (tname == NULL)
        transport = host != NULL ? DV_URI_T_TLS : DV_URI_T_LOCAL;
    else if (g_ascii_strcasecmp(tname, "unix") == 0)
        transport = DV_URI_T_LOCAL;
    else if (g_ascii_strcasecmp(tname, "ssh") == 0)
        transport = DV_URI_T_SSH;
    else if (g_ascii_strcasecmp(tname, "libssh") == 0 || g_ascii_strcasecmp(tname, "libssh2") == 0)
        transport = DV_URI_T_LIBSSH;
    else if (g_ascii_strcasecmp(tname, "tls") == 0)
        transport = DV_URI_T_TLS;
    else if (g_ascii_strcasecmp(tname, "tcp") == 0)
        transport = DV_URI_T_TCP;
    else if (g_ascii_strcasecmp(tname, "ext") == 0)
        return dv_uri_refuse(error, field, "transport 'ext' runs a program on the management server "
                             "and is never allowed");
    else
        return dv_uri_refuse(error, field, "transport '%s' is not supported; use ssh, libssh, "
                             "libssh2, tls or tcp", tname);
    if (tname == NULL)
        tname = transport == DV_URI_T_TLS ? "tls" : "unix";

    if (transport == DV_URI_T_LOCAL) {
        if (host != NULL || user != NULL || g_uri_get_port(parsed) != -1)
            return dv_uri_refuse(error, field, "the unix transport takes no host, user or port");
    } else {
        if (host == NULL)
            return dv_uri_refuse(error, field, "the %s transport needs a host name", tname);
        if (!dv_uri_host_ok(host))
            return dv_uri_refuse(error, field, "host '%s' must be a DNS name or an IP address", host);
        if (user != NULL && !dv_uri_user_ok(user))
            return dv_uri_refuse(error, field, "user name may hold only letters, digits, '.', '_' "
                                 "and '-', not first");
    }
    if (query != NULL &&
        !dv_uri_check_params(field, query, transport, tname, policy, seen, error))
        return FALSE;
    if (g_strcmp0(path, "/system") == 0)
        return TRUE;
    if (g_strcmp0(path, "/session") == 0) {
        /* A local session URI starts a daemon as droverd's own account
         * unless a socket names one that runs already. */
        if (transport != DV_URI_T_LOCAL || g_hash_table_contains(seen, "socket"))
            return TRUE;
        return dv_uri_refuse(error, field, "qemu:///session would start a libvirt daemon as "
                             "droverd's account; use qemu:///system");
    }
    return dv_uri_refuse(error, field, "path must be /system or /session (got '%s')", path);
}

gboolean
dv_validate_libvirt_uri(const char *field, const char *uri, GError **error)
{
    return dv_validate_host_uri(field, uri, NULL, error);
}

gboolean
dv_validate_id(const char *field, const char *id, GError **error)
{
    if (id == NULL || !g_uuid_string_is_valid(id)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "%s: must be a UUID", field);
        return FALSE;
    }
    return TRUE;
}

char *
dv_text_excerpt(const char *text, gsize max)
{
    g_autofree char *valid = NULL;
    GString *out;
    const char *p;

    if (text == NULL)
        return g_strdup("(null)");
    valid = g_utf8_make_valid(text, -1);
    out = g_string_sized_new(MIN(strlen(valid), max) + 4);
    for (p = valid; *p != '\0'; p = g_utf8_next_char(p)) {
        const char *next = g_utf8_next_char(p);
        if (out->len + (gsize)(next - p) > max) {
            g_string_append(out, "\xe2\x80\xa6");
            break;
        }
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            g_string_append_c(out, '?');
        else
            g_string_append_len(out, p, next - p);
    }
    return g_string_free(out, FALSE);
}
