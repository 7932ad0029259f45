#define G_LOG_DOMAIN "DvAuthDirectory"

#include "dv-auth-directory.h"
#include "dv-error.h"
#include "dv-keys-directory.h"

#include <ldap.h>
#include <string.h>

#define DV_AUTH_DIRECTORY_NAME_MAX 256
#define DV_AUTH_DIRECTORY_DN_MAX 1024
#define DV_AUTH_DIRECTORY_FILTER_MAX 1024

static void
dv_ldap_unbind(LDAP *ld)
{
    if (ld != NULL)
        ldap_unbind_ext_s(ld, NULL, NULL);
}
typedef LDAP DvLdap;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvLdap, dv_ldap_unbind)

static void
dv_ldap_message_free(LDAPMessage *msg)
{
    if (msg != NULL)
        ldap_msgfree(msg);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LDAPMessage, dv_ldap_message_free)

typedef enum {
    DV_AUTH_GROUPS_SEARCH,
    DV_AUTH_GROUPS_MEMBEROF,
} DvAuthGroupsMode;

struct _DvAuthDirectory {
    char *uri;
    char *bind_dn;
    char *password_file;
    gboolean sasl_external;
    char *ca_file;
    char *cert_file;
    char *key_file;
    char *user_base;
    char *user_filter;
    DvAuthGroupsMode groups;
    char *group_base;
    char *group_filter;
    guint network_timeout_s;
    guint op_timeout_s;
};

void
dv_auth_directory_free(DvAuthDirectory *dir)
{
    if (dir == NULL)
        return;
    g_free(dir->uri);
    g_free(dir->bind_dn);
    g_free(dir->password_file);
    g_free(dir->ca_file);
    g_free(dir->cert_file);
    g_free(dir->key_file);
    g_free(dir->user_base);
    g_free(dir->user_filter);
    g_free(dir->group_base);
    g_free(dir->group_filter);
    g_free(dir);
}

const char *
dv_auth_directory_get_uri(DvAuthDirectory *dir)
{
    return dir->uri;
}

char *
dv_auth_directory_filter_escape(const char *value)
{
    GString *out = g_string_sized_new(strlen(value) + 8);

    for (const guchar *p = (const guchar *)value; *p != '\0'; p++) {
        if (*p == '*' || *p == '(' || *p == ')' || *p == '\\' || *p < 0x20 || *p >= 0x7f)
            g_string_append_printf(out, "\\%02x", *p);
        else
            g_string_append_c(out, (char)*p);
    }
    return g_string_free(out, FALSE);
}

/* --- settings ------------------------------------------------------------------ */

static gboolean
dv_auth_directory_dn_valid(const char *dn)
{
    LDAPDN parsed = NULL;

    if (dn == NULL || dn[0] == '\0' || strlen(dn) > DV_AUTH_DIRECTORY_DN_MAX)
        return FALSE;
    if (ldap_str2dn(dn, &parsed, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
        return FALSE;
    ldap_dnfree(parsed);
    return TRUE;
}

/* A filter template: "(...)", exactly one %s and no other %. */
static gboolean
dv_auth_directory_template_valid(const char *field, const char *template, GError **error)
{
    const char *at = template != NULL ? strstr(template, "%s") : NULL;

    if (template == NULL || template[0] != '(' || !g_str_has_suffix(template, ")") ||
        strlen(template) > DV_AUTH_DIRECTORY_FILTER_MAX / 2 || at == NULL ||
        strchr(template, '%') != at || strchr(at + 2, '%') != NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "%s: must be an LDAP filter in parentheses holding exactly one %%s "
                           "and no other %%",
                           field);
        return FALSE;
    }
    return TRUE;
}

static gboolean
dv_auth_directory_timeout(GKeyFile *kf, const char *key, guint fallback, guint *ret,
                          GError **error)
{
    g_autoptr(GError) local = NULL;
    gint value;

    if (!g_key_file_has_key(kf, "login", key, NULL)) {
        *ret = fallback;
        return TRUE;
    }
    value = g_key_file_get_integer(kf, "login", key, &local);
    if (local != NULL || value < 1 || value > DV_AUTH_DIRECTORY_TIMEOUT_MAX_S) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, key, "login.%s: must be 1-%d seconds",
                           key, DV_AUTH_DIRECTORY_TIMEOUT_MAX_S);
        return FALSE;
    }
    *ret = (guint)value;
    return TRUE;
}

gboolean
dv_auth_directory_load(const char *path, DvAuthDirectory **ret_dir, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) local = NULL;
    g_autoptr(DvAuthDirectory) dir = NULL;
    g_autofree char *groups = NULL;

    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &local)) {
        if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
            *ret_dir = NULL;
            return TRUE;
        }
        g_propagate_error(error, g_steal_pointer(&local));
        dv_error_convert(error);
        g_prefix_error(error, "cannot read %s: ", path);
        return FALSE;
    }
    if (!g_key_file_has_group(kf, "login") ||
        !g_key_file_get_boolean(kf, "login", "enabled", NULL)) {
        *ret_dir = NULL;
        return TRUE;
    }
    dir = g_new0(DvAuthDirectory, 1);
    dir->uri = g_key_file_get_string(kf, "login", "uri", NULL);
    if (dir->uri == NULL)
        dir->uri = g_key_file_get_string(kf, "directory", "uri", NULL);
    dir->bind_dn = g_key_file_get_string(kf, "directory", "bind_dn", NULL);
    dir->password_file = g_key_file_get_string(kf, "directory", "password_file", NULL);
    dir->sasl_external = g_key_file_get_boolean(kf, "directory", "sasl_external", NULL);
    dir->ca_file = g_key_file_get_string(kf, "directory", "ca_file", NULL);
    dir->cert_file = g_key_file_get_string(kf, "directory", "cert_file", NULL);
    dir->key_file = g_key_file_get_string(kf, "directory", "key_file", NULL);
    dir->user_base = g_key_file_get_string(kf, "login", "user_base", NULL);
    dir->user_filter = g_key_file_get_string(kf, "login", "user_filter", NULL);
    if (dir->user_filter == NULL)
        dir->user_filter = g_strdup("(uid=%s)");
    dir->group_base = g_key_file_get_string(kf, "login", "group_base", NULL);
    if (dir->group_base == NULL)
        dir->group_base = g_strdup(dir->user_base);
    dir->group_filter = g_key_file_get_string(kf, "login", "group_filter", NULL);
    if (dir->group_filter == NULL)
        dir->group_filter = g_strdup("(member=%s)");
    groups = g_key_file_get_string(kf, "login", "groups", NULL);

    if (dir->uri == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "uri",
                           "%s: directory logins need [directory] uri or [login] uri", path);
        return FALSE;
    }
    if (!dv_auth_directory_dn_valid(dir->user_base)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "user_base",
                           "login.user_base: must be the DN under which users are searched");
        return FALSE;
    }
    if (!dv_auth_directory_dn_valid(dir->group_base)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "group_base",
                           "login.group_base: must be a DN");
        return FALSE;
    }
    if (!dv_auth_directory_template_valid("user_filter", dir->user_filter, error) ||
        !dv_auth_directory_template_valid("group_filter", dir->group_filter, error))
        return FALSE;
    if (groups == NULL || g_strcmp0(groups, "search") == 0) {
        dir->groups = DV_AUTH_GROUPS_SEARCH;
    } else if (g_strcmp0(groups, "memberof") == 0) {
        dir->groups = DV_AUTH_GROUPS_MEMBEROF;
    } else {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "groups",
                           "login.groups: must be search or memberof");
        return FALSE;
    }
    if (!dv_auth_directory_timeout(kf, "network_timeout_s", DV_DIRECTORY_NETWORK_TIMEOUT_S,
                                   &dir->network_timeout_s, error) ||
        !dv_auth_directory_timeout(kf, "op_timeout_s", DV_DIRECTORY_OP_TIMEOUT_S,
                                   &dir->op_timeout_s, error))
        return FALSE;
    *ret_dir = g_steal_pointer(&dir);
    return TRUE;
}

/* --- searching and binding ------------------------------------------------------ */

static DvDirectoryConn
dv_auth_directory_service_conn(DvAuthDirectory *dir)
{
    return (DvDirectoryConn){
        .uri = dir->uri,
        .bind_dn = dir->bind_dn,
        .password_file = dir->password_file,
        .sasl_external = dir->sasl_external,
        .ca_file = dir->ca_file,
        .cert_file = dir->cert_file,
        .key_file = dir->key_file,
        .network_timeout_s = dir->network_timeout_s,
        .op_timeout_s = dir->op_timeout_s,
    };
}

/* A directory that cannot be reached refuses logins with that reason;
 * anything else the service identity meets is the installation's fault
 * and says so too, never "wrong password". */
static void
dv_auth_directory_prefix(GError **error)
{
    if (error != NULL && *error != NULL && (*error)->domain == DV_ERROR &&
        (*error)->code == DV_ERROR_UNAVAILABLE)
        g_prefix_error(error, "directory logins are unavailable: ");
    else
        g_prefix_error(error, "directory logins: ");
}

static char *
dv_auth_directory_fill(const char *template, const char *value)
{
    const char *at = strstr(template, "%s");
    g_autofree char *escaped = dv_auth_directory_filter_escape(value);
    return g_strdup_printf("%.*s%s%s", (int)(at - template), template, escaped, at + 2);
}

static gboolean
dv_auth_directory_search(DvAuthDirectory *dir, LDAP *ld, const char *base, const char *filter,
                         char **attrs, int size_limit, gboolean partial_ok, LDAPMessage **ret_res,
                         GError **error)
{
    DvDirectoryConn conn = dv_auth_directory_service_conn(dir);
    struct timeval tv = { .tv_sec = dir->op_timeout_s };
    g_autoptr(LDAPMessage) res = NULL;
    g_autofree char *what = g_strdup_printf("search %s", base);
    int rc;

    rc = ldap_search_ext_s(ld, base, LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL, NULL, &tv,
                           size_limit, &res);
    if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
        dv_directory_conn_set_error(ld, rc, &conn, what, error);
        dv_auth_directory_prefix(error);
        return FALSE;
    }
    /* A cut list of groups could miss a deny binding's group: refused. */
    if (rc == LDAP_SIZELIMIT_EXCEEDED && (!partial_ok || res == NULL)) {
        g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                    "directory logins: the search of %s found more than %d entries", base,
                    size_limit);
        return FALSE;
    }
    *ret_res = g_steal_pointer(&res);
    return TRUE;
}

static gboolean
dv_auth_directory_name_valid(const char *name, GError **error)
{
    if (name == NULL || name[0] == '\0' || strlen(name) > DV_AUTH_DIRECTORY_NAME_MAX ||
        !g_utf8_validate(name, -1, NULL)) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED,
                            "wrong user name or password");
        return FALSE;
    }
    return TRUE;
}

/* The one entry of @name: its DN and, with groups = memberof, its
 * memberOf values.  No entry, or more than one, is AUTH_REQUIRED. */
static gboolean
dv_auth_directory_find_user(DvAuthDirectory *dir, LDAP *ld, const char *name, char **ret_dn,
                            GPtrArray **ret_memberof, GError **error)
{
    g_autofree char *filter = dv_auth_directory_fill(dir->user_filter, name);
    char *attrs_dn[] = { LDAP_NO_ATTRS, NULL };
    char *attrs_memberof[] = { "memberOf", NULL };
    g_autoptr(LDAPMessage) res = NULL;
    g_autoptr(GPtrArray) memberof = g_ptr_array_new_with_free_func(g_free);
    LDAPMessage *entry;
    char *dn;

    if (!dv_auth_directory_search(dir, ld, dir->user_base, filter,
                                  dir->groups == DV_AUTH_GROUPS_MEMBEROF ? attrs_memberof : attrs_dn,
                                  2, TRUE, &res, error))
        return FALSE;
    if (ldap_count_entries(ld, res) != 1) {
        /* Two entries for one name: neither is chosen. */
        g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED, "wrong user name or password");
        return FALSE;
    }
    entry = ldap_first_entry(ld, res);
    dn = ldap_get_dn(ld, entry);
    if (dn == NULL) {
        g_set_error_literal(error, DV_ERROR, DV_ERROR_INTERNAL,
                            "directory logins: the user's entry has no DN");
        return FALSE;
    }
    if (dir->groups == DV_AUTH_GROUPS_MEMBEROF) {
        struct berval **values = ldap_get_values_len(ld, entry, "memberOf");
        gint n = values != NULL ? ldap_count_values_len(values) : 0;
        for (gint i = 0; i < n && n <= DV_AUTH_DIRECTORY_GROUPS_MAX; i++)
            g_ptr_array_add(memberof, g_strndup(values[i]->bv_val, values[i]->bv_len));
        ldap_value_free_len(values);
        if (n > DV_AUTH_DIRECTORY_GROUPS_MAX) {
            ldap_memfree(dn);
            g_set_error(error, DV_ERROR, DV_ERROR_PERMISSION_DENIED,
                        "directory logins: the user is a member of more than %d groups",
                        DV_AUTH_DIRECTORY_GROUPS_MAX);
            return FALSE;
        }
    }
    *ret_dn = g_strdup(dn);
    ldap_memfree(dn);
    if (ret_memberof != NULL)
        *ret_memberof = g_steal_pointer(&memberof);
    return TRUE;
}

/* The groups of the user @dn (a NULL-terminated array, owned). */
static char **
dv_auth_directory_read_groups(DvAuthDirectory *dir, LDAP *ld, const char *dn, GPtrArray *memberof,
                              GError **error)
{
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);

    if (dir->groups == DV_AUTH_GROUPS_MEMBEROF) {
        for (guint i = 0; memberof != NULL && i < memberof->len; i++)
            g_ptr_array_add(out, g_strdup(g_ptr_array_index(memberof, i)));
    } else {
        g_autofree char *filter = dv_auth_directory_fill(dir->group_filter, dn);
        char *attrs[] = { LDAP_NO_ATTRS, NULL };
        g_autoptr(LDAPMessage) res = NULL;

        if (!dv_auth_directory_search(dir, ld, dir->group_base, filter, attrs,
                                      DV_AUTH_DIRECTORY_GROUPS_MAX, FALSE, &res, error))
            return NULL;
        for (LDAPMessage *e = ldap_first_entry(ld, res); e != NULL; e = ldap_next_entry(ld, e)) {
            char *group = ldap_get_dn(ld, e);
            if (group != NULL)
                g_ptr_array_add(out, g_strdup(group));
            ldap_memfree(group);
        }
    }
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(g_steal_pointer(&out), FALSE);
}

static LDAP *
dv_auth_directory_open_service(DvAuthDirectory *dir, GError **error)
{
    DvDirectoryConn conn = dv_auth_directory_service_conn(dir);
    LDAP *ld = dv_directory_conn_open(&conn, error);

    if (ld == NULL)
        dv_auth_directory_prefix(error);
    return ld;
}

char **
dv_auth_directory_verify(DvAuthDirectory *dir, const char *name, const DvSecret *password,
                         GError **error)
{
    g_autoptr(DvLdap) service = NULL;
    g_autoptr(DvLdap) user = NULL;
    g_autoptr(GPtrArray) memberof = NULL;
    g_autofree char *dn = NULL;
    g_autoptr(GError) local = NULL;
    DvDirectoryConn conn = dv_auth_directory_service_conn(dir);

    /* Before anything goes on the wire: an empty simple bind is an
     * unauthenticated bind (RFC 4513 5.1.2), which servers accept. */
    if (password == NULL || dv_secret_get_len(password) == 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "password",
                           "password: must not be empty");
        return NULL;
    }
    if (!dv_auth_directory_name_valid(name, error))
        return NULL;
    service = dv_auth_directory_open_service(dir, error);
    if (service == NULL)
        return NULL;
    if (!dv_auth_directory_find_user(dir, service, name, &dn, &memberof, error))
        return NULL;

    conn.bind_dn = dn;
    conn.password = password;
    conn.password_file = NULL;
    conn.sasl_external = FALSE;
    conn.cert_file = NULL;
    conn.key_file = NULL;
    user = dv_directory_conn_open(&conn, &local);
    if (user == NULL) {
        if (g_error_matches(local, DV_ERROR, DV_ERROR_AUTH_REQUIRED)) {
            g_set_error_literal(error, DV_ERROR, DV_ERROR_AUTH_REQUIRED,
                                "wrong user name or password");
            return NULL;
        }
        g_propagate_error(error, g_steal_pointer(&local));
        dv_auth_directory_prefix(error);
        return NULL;
    }
    return dv_auth_directory_read_groups(dir, service, dn, memberof, error);
}

char **
dv_auth_directory_groups(DvAuthDirectory *dir, const char *name, GError **error)
{
    g_autoptr(DvLdap) service = NULL;
    g_autoptr(GPtrArray) memberof = NULL;
    g_autofree char *dn = NULL;

    if (!dv_auth_directory_name_valid(name, error))
        return NULL;
    service = dv_auth_directory_open_service(dir, error);
    if (service == NULL)
        return NULL;
    if (!dv_auth_directory_find_user(dir, service, name, &dn, &memberof, error))
        return NULL;
    return dv_auth_directory_read_groups(dir, service, dn, memberof, error);
}
