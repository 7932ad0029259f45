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

gboolean
dv_validate_libvirt_uri(const char *field, const char *uri, GError **error)
{
    g_autofree char *scheme = NULL;
    gsize len;

    if (uri == NULL || uri[0] == '\0') {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field, "%s: must not be empty", field);
        return FALSE;
    }
    len = strlen(uri);
    if (len > DV_URI_MAX) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "%s: must be at most %d bytes", field, DV_URI_MAX);
        return FALSE;
    }
    for (gsize i = 0; i < len; i++) {
        if (!g_ascii_isprint(uri[i]) || uri[i] == ' ') {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                               "%s: must be printable ASCII without spaces", field);
            return FALSE;
        }
    }
    scheme = g_uri_parse_scheme(uri);
    if (scheme == NULL || strstr(uri, ":/") == NULL) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "%s: must be a libvirt URI such as qemu:///system or qemu+tls://host/system",
                           field);
        return FALSE;
    }
    if (g_strcmp0(scheme, "test") != 0 && g_strcmp0(scheme, "test+unix") != 0 &&
        g_strcmp0(scheme, "qemu") != 0 &&
        !g_str_has_prefix(scheme, "qemu+")) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                           "%s: driver '%s' is not supported; use qemu (KVM/QEMU) or test",
                           field, scheme);
        return FALSE;
    }
    return TRUE;
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
