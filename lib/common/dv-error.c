#define G_LOG_DOMAIN "DvError"

#include "dv-error.h"

#include <gio/gio.h>

typedef struct {
    char *field;
} DvErrorPrivate;

static void
dv_error_private_init(DvErrorPrivate *priv)
{
    priv->field = NULL;
}

static void
dv_error_private_copy(const DvErrorPrivate *src, DvErrorPrivate *dest)
{
    dest->field = g_strdup(src->field);
}

static void
dv_error_private_clear(DvErrorPrivate *priv)
{
    g_clear_pointer(&priv->field, g_free);
}

G_DEFINE_EXTENDED_ERROR(DvError, dv_error)

static const struct {
    DvErrorCode code;
    const char *name;
    guint http;
    DvExitCode exit;
} dv_error_table[] = {
    { DV_ERROR_INTERNAL, "internal", 500, DV_EXIT_FAILURE },
    { DV_ERROR_INVALID_ARGUMENT, "invalid-argument", 400, DV_EXIT_INVALID },
    { DV_ERROR_NOT_FOUND, "not-found", 404, DV_EXIT_NOT_FOUND },
    { DV_ERROR_CONFLICT, "conflict", 409, DV_EXIT_CONFLICT },
    { DV_ERROR_AUTH_REQUIRED, "auth-required", 401, DV_EXIT_AUTH },
    { DV_ERROR_PERMISSION_DENIED, "permission-denied", 403, DV_EXIT_AUTH },
    { DV_ERROR_TOO_LARGE, "too-large", 413, DV_EXIT_INVALID },
    { DV_ERROR_UNAVAILABLE, "unavailable", 503, DV_EXIT_UNAVAILABLE },
    { DV_ERROR_HOST_FAILED, "host-failed", 502, DV_EXIT_FAILURE },
    { DV_ERROR_TIMEOUT, "timeout", 504, DV_EXIT_UNAVAILABLE },
    { DV_ERROR_CANCELLED, "cancelled", 409, DV_EXIT_JOB_FAILED },
    { DV_ERROR_NOT_SUPPORTED, "not-supported", 422, DV_EXIT_INVALID },
    { DV_ERROR_SCHEMA, "schema", 500, DV_EXIT_FAILURE },
    { DV_ERROR_SECRET_UNREADABLE, "secret-unreadable", 500, DV_EXIT_FAILURE },
    { DV_ERROR_BUSY, "busy", 429, DV_EXIT_UNAVAILABLE },
};

void
dv_set_field_error(GError **error, DvErrorCode code, const char *field,
                   const char *format, ...)
{
    va_list args;
    GError *e;

    if (error == NULL)
        return;
    va_start(args, format);
    e = g_error_new_valist(DV_ERROR, code, format, args);
    va_end(args);
    if (field != NULL) {
        DvErrorPrivate *priv = dv_error_get_private(e);
        priv->field = g_strdup(field);
    }
    g_propagate_error(error, e);
}

const char *
dv_error_get_field(const GError *error)
{
    DvErrorPrivate *priv;

    if (error == NULL || error->domain != DV_ERROR)
        return NULL;
    priv = dv_error_get_private(error);
    return priv != NULL ? priv->field : NULL;
}

guint
dv_error_to_http_status(const GError *error)
{
    if (error == NULL)
        return 200;
    if (error->domain == DV_ERROR) {
        for (gsize i = 0; i < G_N_ELEMENTS(dv_error_table); i++)
            if ((int)dv_error_table[i].code == error->code)
                return dv_error_table[i].http;
    }
    return 500;
}

const char *
dv_error_code_to_string(DvErrorCode code)
{
    for (gsize i = 0; i < G_N_ELEMENTS(dv_error_table); i++)
        if (dv_error_table[i].code == code)
            return dv_error_table[i].name;
    return "internal";
}

DvErrorCode
dv_error_code_from_string(const char *str)
{
    if (str != NULL) {
        for (gsize i = 0; i < G_N_ELEMENTS(dv_error_table); i++)
            if (g_strcmp0(dv_error_table[i].name, str) == 0)
                return dv_error_table[i].code;
    }
    return DV_ERROR_INTERNAL;
}

DvExitCode
dv_error_to_exit_code(const GError *error)
{
    if (error == NULL)
        return DV_EXIT_OK;
    if (error->domain == DV_ERROR) {
        for (gsize i = 0; i < G_N_ELEMENTS(dv_error_table); i++)
            if ((int)dv_error_table[i].code == error->code)
                return dv_error_table[i].exit;
    }
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED) ||
        g_error_matches(error, G_IO_ERROR, G_IO_ERROR_HOST_NOT_FOUND) ||
        g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
        return DV_EXIT_UNAVAILABLE;
    return DV_EXIT_FAILURE;
}

static const struct {
    GQuark (*domain)(void);
    int code; /* -1 = any */
    DvErrorCode dv;
} dv_error_convert_table[] = {
    { g_io_error_quark, G_IO_ERROR_NOT_FOUND, DV_ERROR_NOT_FOUND },
    { g_io_error_quark, G_IO_ERROR_EXISTS, DV_ERROR_CONFLICT },
    { g_io_error_quark, G_IO_ERROR_INVALID_ARGUMENT, DV_ERROR_INVALID_ARGUMENT },
    { g_io_error_quark, G_IO_ERROR_PERMISSION_DENIED, DV_ERROR_PERMISSION_DENIED },
    { g_io_error_quark, G_IO_ERROR_CANCELLED, DV_ERROR_CANCELLED },
    { g_io_error_quark, G_IO_ERROR_TIMED_OUT, DV_ERROR_TIMEOUT },
    { g_io_error_quark, G_IO_ERROR_CONNECTION_REFUSED, DV_ERROR_UNAVAILABLE },
    { g_io_error_quark, G_IO_ERROR_HOST_NOT_FOUND, DV_ERROR_UNAVAILABLE },
    { g_io_error_quark, G_IO_ERROR_NETWORK_UNREACHABLE, DV_ERROR_UNAVAILABLE },
    { g_io_error_quark, G_IO_ERROR_NOT_SUPPORTED, DV_ERROR_NOT_SUPPORTED },
    { g_file_error_quark, G_FILE_ERROR_NOENT, DV_ERROR_NOT_FOUND },
    { g_file_error_quark, G_FILE_ERROR_ACCES, DV_ERROR_PERMISSION_DENIED },
    { g_file_error_quark, G_FILE_ERROR_EXIST, DV_ERROR_CONFLICT },
    { g_key_file_error_quark, -1, DV_ERROR_INVALID_ARGUMENT },
    { g_option_error_quark, -1, DV_ERROR_INVALID_ARGUMENT },
};

void
dv_error_convert(GError **perror)
{
    GError *error;

    if (perror == NULL || *perror == NULL)
        return;
    error = *perror;
    if (error->domain == DV_ERROR)
        return;
    for (gsize i = 0; i < G_N_ELEMENTS(dv_error_convert_table); i++) {
        if (error->domain == dv_error_convert_table[i].domain() &&
            (dv_error_convert_table[i].code == -1 ||
             dv_error_convert_table[i].code == error->code)) {
            /* A new error, not a domain swap: DV_ERROR carries private
             * data that a foreign GError was not allocated with. */
            *perror = g_error_new_literal(DV_ERROR, dv_error_convert_table[i].dv,
                                          error->message);
            g_error_free(error);
            return;
        }
    }
    *perror = g_error_new_literal(DV_ERROR, DV_ERROR_INTERNAL, error->message);
    g_error_free(error);
}
