#define G_LOG_DOMAIN "DvLog"

#include "dv-log.h"
#include "dv-error.h"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static GLogLevelFlags dv_log_shown = G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL |
                                     G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO;
static DvLogFormat dv_log_format;
static gboolean dv_log_journal;

static const char *
dv_log_level_name(GLogLevelFlags level)
{
    if (level & G_LOG_LEVEL_ERROR)
        return "error";
    if (level & G_LOG_LEVEL_CRITICAL)
        return "critical";
    if (level & G_LOG_LEVEL_WARNING)
        return "warning";
    if (level & G_LOG_LEVEL_MESSAGE)
        return "notice";
    if (level & G_LOG_LEVEL_INFO)
        return "info";
    return "debug";
}

/* A field's value as text: GLib passes length -1 for a string. */
static char *
dv_log_field_value(const GLogField *f)
{
    if (f->length < 0)
        return g_strdup(f->value);
    return g_strndup(f->value, (gsize)f->length);
}

static GLogWriterOutput
dv_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
    g_autofree char *message = NULL;
    g_autofree char *domain = NULL;
    g_autoptr(GDateTime) now = NULL;
    g_autofree char *when = NULL;
    g_autoptr(GString) line = NULL;

    if (!(level & dv_log_shown & G_LOG_LEVEL_MASK))
        return G_LOG_WRITER_HANDLED;
    if (dv_log_journal &&
        g_log_writer_journald(level, fields, n_fields, user_data) == G_LOG_WRITER_HANDLED)
        return G_LOG_WRITER_HANDLED;
    for (gsize i = 0; i < n_fields; i++) {
        if (g_strcmp0(fields[i].key, "MESSAGE") == 0)
            message = dv_log_field_value(&fields[i]);
        else if (g_strcmp0(fields[i].key, "GLIB_DOMAIN") == 0)
            domain = dv_log_field_value(&fields[i]);
    }
    now = g_date_time_new_now_utc();
    when = g_date_time_format(now, "%Y-%m-%dT%H:%M:%S.%fZ");
    if (dv_log_format == DV_LOG_FORMAT_JSON) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonGenerator) gen = json_generator_new();
        g_autoptr(JsonNode) root = NULL;
        g_autofree char *text = NULL;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "time");
        json_builder_add_string_value(b, when);
        json_builder_set_member_name(b, "level");
        json_builder_add_string_value(b, dv_log_level_name(level));
        json_builder_set_member_name(b, "domain");
        json_builder_add_string_value(b, domain != NULL ? domain : "");
        json_builder_set_member_name(b, "message");
        json_builder_add_string_value(b, message != NULL ? message : "");
        for (gsize i = 0; i < n_fields; i++) {
            g_autofree char *v = NULL;
            if (!g_str_has_prefix(fields[i].key, "DROVER_"))
                continue;
            v = dv_log_field_value(&fields[i]);
            json_builder_set_member_name(b, fields[i].key);
            json_builder_add_string_value(b, v);
        }
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        json_generator_set_root(gen, root);
        text = json_generator_to_data(gen, NULL);
        line = g_string_new(text);
    } else {
        line = g_string_new(NULL);
        g_string_append_printf(line, "%s %s %s: %s", when, dv_log_level_name(level),
                               domain != NULL ? domain : "droverd", message != NULL ? message : "");
        for (gsize i = 0; i < n_fields; i++) {
            g_autofree char *v = NULL;
            if (!g_str_has_prefix(fields[i].key, "DROVER_"))
                continue;
            v = dv_log_field_value(&fields[i]);
            /* One line per entry, whatever a value holds. */
            g_strdelimit(v, "\n\r", ' ');
            g_string_append_printf(line, " %s=%s", fields[i].key, v);
        }
    }
    g_strdelimit(line->str, "\n\r", ' ');
    g_string_append_c(line, '\n');
    /* One write per line: lines of several threads do not interleave. */
    if (write(STDERR_FILENO, line->str, line->len) < 0)
        return G_LOG_WRITER_UNHANDLED;
    return G_LOG_WRITER_HANDLED;
}

gboolean
dv_log_setup(const char *level, const char *format, const char *level_field,
             const char *format_field, GError **error)
{
    static const struct {
        const char *name;
        GLogLevelFlags shown;
    } levels[] = {
        { "error", G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL },
        { "warning", G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING },
        { "info", G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING |
                      G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO },
        { "debug", G_LOG_LEVEL_MASK },
    };
    gboolean found = FALSE;

    for (gsize i = 0; i < G_N_ELEMENTS(levels); i++) {
        if (g_strcmp0(level != NULL ? level : "info", levels[i].name) == 0) {
            dv_log_shown = levels[i].shown;
            found = TRUE;
        }
    }
    if (!found) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, level_field,
                           "%s: must be error, warning, info or debug", level_field);
        return FALSE;
    }
    if (format == NULL)
        dv_log_format = DV_LOG_FORMAT_AUTO;
    else if (strcmp(format, "text") == 0)
        dv_log_format = DV_LOG_FORMAT_TEXT;
    else if (strcmp(format, "json") == 0)
        dv_log_format = DV_LOG_FORMAT_JSON;
    else {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, format_field,
                           "%s: must be text or json", format_field);
        return FALSE;
    }
    dv_log_journal =
        dv_log_format == DV_LOG_FORMAT_AUTO && g_log_writer_is_journald(fileno(stderr));
    /* GLib's debug switch still shows debug messages, as before. */
    if (g_getenv("G_MESSAGES_DEBUG") != NULL && level == NULL)
        dv_log_shown = G_LOG_LEVEL_MASK;
    g_log_set_writer_func(dv_log_writer, NULL, NULL);
    return TRUE;
}
