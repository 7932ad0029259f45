#define G_LOG_DOMAIN "DvCli"

#include "dv-cli-output.h"

#include "dv-json.h"

#include <string.h>

struct _DvCliTable {
    guint n_columns;
    GPtrArray *rows; /* of GStrv, row 0 is the header */
};

DvCliTable *
dv_cli_table_new(guint n_columns, const char *const *headers)
{
    DvCliTable *table = g_new0(DvCliTable, 1);

    table->n_columns = n_columns;
    table->rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    dv_cli_table_add_row(table, headers);
    return table;
}

void
dv_cli_table_add_row(DvCliTable *table, const char *const *cells)
{
    char **row = g_new0(char *, table->n_columns + 1);

    for (guint i = 0; i < table->n_columns; i++) {
        const char *cell = cells[i] != NULL ? cells[i] : "-";
        /* A newline or tab in a value would break the columns. */
        row[i] = g_strdelimit(g_strdup(cell), "\n\r\t", ' ');
    }
    g_ptr_array_add(table->rows, row);
}

guint
dv_cli_table_get_n_rows(DvCliTable *table)
{
    return table->rows->len - 1;
}

char *
dv_cli_table_render(DvCliTable *table, gboolean color)
{
    g_autofree glong *widths = g_new0(glong, table->n_columns);
    GString *out = g_string_new(NULL);

    for (guint r = 0; r < table->rows->len; r++) {
        char **row = g_ptr_array_index(table->rows, r);
        for (guint c = 0; c < table->n_columns; c++)
            widths[c] = MAX(widths[c], g_utf8_strlen(row[c], -1));
    }
    for (guint r = 0; r < table->rows->len; r++) {
        char **row = g_ptr_array_index(table->rows, r);
        gsize line_start = out->len;
        if (r == 0 && color)
            g_string_append(out, "\033[1m");
        for (guint c = 0; c < table->n_columns; c++) {
            g_string_append(out, row[c]);
            if (c + 1 < table->n_columns) {
                glong pad = widths[c] - g_utf8_strlen(row[c], -1) + 2;
                for (glong i = 0; i < pad; i++)
                    g_string_append_c(out, ' ');
            }
        }
        /* Trailing blanks come from empty last cells only; drop them. */
        while (out->len > line_start && out->str[out->len - 1] == ' ')
            g_string_truncate(out, out->len - 1);
        if (r == 0 && color)
            g_string_append(out, "\033[0m");
        g_string_append_c(out, '\n');
    }
    return g_string_free(out, FALSE);
}

void
dv_cli_table_free(DvCliTable *table)
{
    if (table == NULL)
        return;
    g_ptr_array_unref(table->rows);
    g_free(table);
}

/* @value in units of @base; @units[0] is the unit of @value itself. */
static char *
dv_cli_format_scaled(gint64 value, const char *const *units, guint n_units)
{
    gdouble scaled = (gdouble)value;
    guint unit = 0;

    if (value < 0)
        return g_strdup("-");
    while (scaled >= 1024.0 && unit + 1 < n_units) {
        scaled /= 1024.0;
        unit++;
    }
    if (unit == 0 || scaled == (gdouble)(gint64)scaled)
        return g_strdup_printf("%" G_GINT64_FORMAT " %s", (gint64)scaled, units[unit]);
    return g_strdup_printf("%.1f %s", scaled, units[unit]);
}

char *
dv_cli_format_size_mib(gint64 mib)
{
    static const char *const units[] = { "MiB", "GiB", "TiB", "PiB" };
    return dv_cli_format_scaled(mib, units, G_N_ELEMENTS(units));
}

char *
dv_cli_format_size_bytes(gint64 bytes)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
    return dv_cli_format_scaled(bytes, units, G_N_ELEMENTS(units));
}

static JsonNode *
dv_cli_lookup_one(JsonObject *obj, const char *path)
{
    g_auto(GStrv) parts = g_strsplit(path, ".", -1);
    JsonObject *cur = obj;
    JsonNode *node = NULL;

    for (guint i = 0; parts[i] != NULL; i++) {
        if (cur == NULL || !json_object_has_member(cur, parts[i]))
            return NULL;
        node = json_object_get_member(cur, parts[i]);
        cur = JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
    }
    return node;
}

static JsonNode *
dv_cli_lookup(JsonObject *obj, const char *path)
{
    g_auto(GStrv) alternatives = g_strsplit(path, "|", -1);

    for (guint i = 0; alternatives[i] != NULL; i++) {
        JsonNode *node = dv_cli_lookup_one(obj, alternatives[i]);
        if (node != NULL && !JSON_NODE_HOLDS_NULL(node))
            return node;
    }
    return NULL;
}

static char *
dv_cli_scalar_to_string(JsonNode *node, DvCliColumnKind kind)
{
    GType type = json_node_get_value_type(node);

    if (type == G_TYPE_INT64) {
        gint64 v = json_node_get_int(node);
        switch (kind) {
        case DV_CLI_COL_MIB:
            return dv_cli_format_size_mib(v);
        case DV_CLI_COL_BYTES:
            return dv_cli_format_size_bytes(v);
        case DV_CLI_COL_PERCENT:
            return g_strdup_printf("%" G_GINT64_FORMAT "%%", v);
        case DV_CLI_COL_TEXT:
        case DV_CLI_COL_COUNT:
            break;
        }
        return g_strdup_printf("%" G_GINT64_FORMAT, v);
    }
    if (type == G_TYPE_DOUBLE)
        return g_strdup_printf("%g", json_node_get_double(node));
    if (type == G_TYPE_BOOLEAN)
        return g_strdup(json_node_get_boolean(node) ? "yes" : "no");
    if (type == G_TYPE_STRING)
        return g_strdup(json_node_get_string(node));
    return g_strdup("?");
}

gboolean
dv_cli_secret_descriptor_is(JsonNode *node)
{
    static const char *const allowed[] = { "set", "key_id", "readable", "reason", NULL };
    g_autoptr(GList) members = NULL;
    JsonObject *obj;
    JsonNode *set;

    if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node))
        return FALSE;
    obj = json_node_get_object(node);
    set = json_object_get_member(obj, "set");
    if (set == NULL || !JSON_NODE_HOLDS_VALUE(set) || json_node_get_value_type(set) != G_TYPE_BOOLEAN)
        return FALSE;
    members = json_object_get_members(obj);
    for (GList *l = members; l != NULL; l = l->next)
        if (!g_strv_contains(allowed, l->data))
            return FALSE;
    return TRUE;
}

char *
dv_cli_secret_descriptor_to_string(JsonObject *descriptor)
{
    const char *key_id = dv_json_get_string(descriptor, "key_id", NULL);
    const char *reason = dv_json_get_string(descriptor, "reason", NULL);

    if (!dv_json_get_bool(descriptor, "set", FALSE))
        return g_strdup("-");
    if (!dv_json_get_bool(descriptor, "readable", TRUE))
        return reason != NULL ? g_strdup_printf("set, UNREADABLE: %s", reason) : g_strdup("set, UNREADABLE");
    return key_id != NULL ? g_strdup_printf("set (%s)", key_id) : g_strdup("set");
}

static char *
dv_cli_node_to_cell(JsonNode *node, DvCliColumnKind kind)
{
    if (node == NULL || JSON_NODE_HOLDS_NULL(node))
        return g_strdup("-");
    if (JSON_NODE_HOLDS_VALUE(node))
        return dv_cli_scalar_to_string(node, kind);
    if (dv_cli_secret_descriptor_is(node))
        return dv_cli_secret_descriptor_to_string(json_node_get_object(node));
    if (JSON_NODE_HOLDS_OBJECT(node)) {
        /* A reference to another object: show its name, else its id. */
        JsonObject *o = json_node_get_object(node);
        const char *s = dv_json_get_string(o, "name", dv_json_get_string(o, "id", NULL));
        return g_strdup(s != NULL ? s : "{...}");
    }
    if (JSON_NODE_HOLDS_ARRAY(node) && kind == DV_CLI_COL_COUNT)
        return g_strdup_printf("%u", json_array_get_length(json_node_get_array(node)));
    if (JSON_NODE_HOLDS_ARRAY(node)) {
        JsonArray *arr = json_node_get_array(node);
        g_autoptr(GPtrArray) parts = g_ptr_array_new_with_free_func(g_free);
        for (guint i = 0; i < json_array_get_length(arr); i++)
            g_ptr_array_add(parts, dv_cli_node_to_cell(json_array_get_element(arr, i), kind));
        g_ptr_array_add(parts, NULL);
        if (parts->len == 1)
            return g_strdup("-");
        return g_strjoinv(", ", (char **)parts->pdata);
    }
    return g_strdup("?");
}

char *
dv_cli_value_to_string(JsonObject *obj, const char *path, DvCliColumnKind kind)
{
    return dv_cli_node_to_cell(dv_cli_lookup(obj, path), kind);
}

char *
dv_cli_items_render(JsonArray *items, const DvCliColumn *columns, gboolean color)
{
    g_autoptr(GPtrArray) headers = g_ptr_array_new();
    g_autoptr(DvCliTable) table = NULL;
    guint n = 0;

    for (const DvCliColumn *c = columns; c->header != NULL; c++) {
        g_ptr_array_add(headers, (gpointer)c->header);
        n++;
    }
    table = dv_cli_table_new(n, (const char *const *)headers->pdata);
    for (guint i = 0; items != NULL && i < json_array_get_length(items); i++) {
        JsonNode *node = json_array_get_element(items, i);
        g_autoptr(GPtrArray) cells = g_ptr_array_new_with_free_func(g_free);
        if (!JSON_NODE_HOLDS_OBJECT(node))
            continue;
        for (guint c = 0; c < n; c++)
            g_ptr_array_add(cells, dv_cli_value_to_string(json_node_get_object(node), columns[c].path,
                                                         columns[c].kind));
        dv_cli_table_add_row(table, (const char *const *)cells->pdata);
    }
    return dv_cli_table_render(table, color);
}

static void
dv_cli_object_flatten(JsonObject *obj, const char *prefix, const char *const *skip,
                      GPtrArray *keys, GPtrArray *values)
{
    /* get_members, not an iterator: it keeps the server's order. */
    g_autoptr(GList) members = json_object_get_members(obj);

    for (GList *l = members; l != NULL; l = l->next) {
        const char *name = l->data;
        JsonNode *node = json_object_get_member(obj, name);
        g_autofree char *key = prefix != NULL ? g_strdup_printf("%s.%s", prefix, name) : g_strdup(name);
        if (skip != NULL && g_strv_contains(skip, key))
            continue;
        /* A secret's description is one value, not three lines. */
        if (JSON_NODE_HOLDS_OBJECT(node) && json_object_get_size(json_node_get_object(node)) > 0 &&
            !dv_cli_secret_descriptor_is(node)) {
            dv_cli_object_flatten(json_node_get_object(node), key, skip, keys, values);
            continue;
        }
        if (JSON_NODE_HOLDS_ARRAY(node)) {
            JsonArray *arr = json_node_get_array(node);
            gboolean objects = FALSE;
            for (guint i = 0; i < json_array_get_length(arr); i++)
                objects |= JSON_NODE_HOLDS_OBJECT(json_array_get_element(arr, i));
            if (objects) {
                for (guint i = 0; i < json_array_get_length(arr); i++) {
                    JsonNode *el = json_array_get_element(arr, i);
                    g_autofree char *k = g_strdup_printf("%s[%u]", key, i);
                    if (JSON_NODE_HOLDS_OBJECT(el)) {
                        dv_cli_object_flatten(json_node_get_object(el), k, skip, keys, values);
                    } else {
                        g_ptr_array_add(keys, g_steal_pointer(&k));
                        g_ptr_array_add(values, dv_cli_node_to_cell(el, DV_CLI_COL_TEXT));
                    }
                }
                continue;
            }
        }
        g_ptr_array_add(values, dv_cli_node_to_cell(node, DV_CLI_COL_TEXT));
        g_ptr_array_add(keys, g_steal_pointer(&key));
    }
}

char *
dv_cli_object_render(JsonObject *obj, const char *const *skip)
{
    g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) values = g_ptr_array_new_with_free_func(g_free);
    GString *out = g_string_new(NULL);
    glong width = 0;

    dv_cli_object_flatten(obj, NULL, skip, keys, values);
    for (guint i = 0; i < keys->len; i++)
        width = MAX(width, g_utf8_strlen(g_ptr_array_index(keys, i), -1));
    for (guint i = 0; i < keys->len; i++) {
        const char *k = g_ptr_array_index(keys, i);
        g_autofree char *v = g_strdelimit(g_strdup(g_ptr_array_index(values, i)), "\n\r\t", ' ');
        g_string_append_printf(out, "%s:%*s%s\n", k, (int)(width - g_utf8_strlen(k, -1) + 2), "", v);
    }
    return g_string_free(out, FALSE);
}

char *
dv_cli_progress_bar_render(gint64 percent, const char *step, guint width)
{
    GString *out = g_string_new("[");
    guint filled;

    percent = CLAMP(percent, 0, 100);
    filled = (guint)((percent * width + 50) / 100);
    for (guint i = 0; i < width; i++)
        g_string_append_c(out, i < filled ? '#' : '.');
    g_string_append_printf(out, "] %3d%%", (int)percent);
    if (step != NULL && step[0] != '\0')
        g_string_append_printf(out, "  %s", step);
    return g_string_free(out, FALSE);
}

/* Events can arrive twice or out of order (a stream reconnected, a poll
 * after an event, a step reported again when a job is resumed): what is
 * shown never goes back.  The percentage is the highest seen, and a line
 * (or a bar's label) is never a step already shown, except the last line
 * of a job that failed or was cancelled in it, which says so. */
struct _DvCliProgress {
    FILE *stream;
    gboolean tty;
    gboolean drawn;    /* a bar is on the current line */
    gboolean stopped;  /* a failed or cancelled line is out: nothing more */
    gint64 percent;    /* the highest seen */
    char *label;       /* the step (or state) shown last */
    GHashTable *shown; /* labels already shown */
};

DvCliProgress *
dv_cli_progress_new(FILE *stream, gboolean tty)
{
    DvCliProgress *progress = g_new0(DvCliProgress, 1);

    progress->stream = stream;
    progress->tty = tty;
    progress->shown = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return progress;
}

void
dv_cli_progress_update(DvCliProgress *progress, JsonObject *job)
{
    const char *step = dv_json_get_string(job, "current_step", NULL);
    const char *state = dv_json_get_string(job, "state", "");
    const char *label = step != NULL && step[0] != '\0' ? step : state;
    gboolean stopped = g_strcmp0(state, "failed") == 0 || g_strcmp0(state, "cancelled") == 0;
    gboolean is_new;

    if (progress->stopped)
        return;
    progress->percent = MAX(progress->percent, CLAMP(dv_json_get_int(job, "progress", 0), 0, 100));
    /* A step seen before is not shown again (an old event): the label
     * stays the newest one. */
    is_new = !g_hash_table_contains(progress->shown, label);
    if (is_new) {
        g_hash_table_add(progress->shown, g_strdup(label));
        g_free(progress->label);
        progress->label = g_strdup(label);
    }
    if (progress->tty) {
        g_autofree char *bar = dv_cli_progress_bar_render(progress->percent, progress->label, 30);
        /* \033[K clears what a longer step name left behind. */
        fprintf(progress->stream, "\r%s\033[K", bar);
        progress->drawn = TRUE;
    } else if (stopped && step != NULL && step[0] != '\0') {
        /* A job that fails in the step it showed shows it again: say why
         * the line is there. */
        fprintf(progress->stream, "%3d%%  %s (%s)\n", (int)progress->percent, step, state);
    } else if (is_new) {
        fprintf(progress->stream, "%3d%%  %s\n", (int)progress->percent, label);
    }
    progress->stopped = stopped;
    fflush(progress->stream);
}

void
dv_cli_progress_finish(DvCliProgress *progress)
{
    if (progress->drawn) {
        fputc('\n', progress->stream);
        fflush(progress->stream);
        progress->drawn = FALSE;
    }
}

void
dv_cli_progress_free(DvCliProgress *progress)
{
    if (progress == NULL)
        return;
    dv_cli_progress_finish(progress);
    g_free(progress->label);
    g_hash_table_unref(progress->shown);
    g_free(progress);
}
