#define G_LOG_DOMAIN "DvCli"

/* The generic runners the command tables point at. */

#include "dv-cli.h"

#include <errno.h>
#include <string.h>

#include "dv-error.h"
#include "dv-validate.h"
#include "dv-json.h"
#include "dv-secret.h"

void
dv_cli_print_json(DvCli *cli, JsonNode *node)
{
    g_autofree char *text = dv_json_node_to_string(node, TRUE);
    fprintf(cli->out, "%s\n", text);
}

static void
dv_cli_print_object_json(DvCli *cli, JsonObject *obj)
{
    g_autoptr(JsonNode) node = dv_json_node_new_object(json_object_ref(obj));
    dv_cli_print_json(cli, node);
}

/* Members that hold the id of another object, and where to look it up. */
static const struct {
    const char *member;
    const char *collection;
    const char *name_member;
    const char *only_in; /* the member means this only in one collection */
} dv_cli_refs[] = {
    { "host_id", "/hosts", "host_name", NULL },
    { "host_group_id", "/host-groups", "host_group_name", NULL },
    { "cluster_id", "/clusters", "cluster_name", NULL },
    { "parent_id", "/host-groups", "parent_name", "/host-groups" },
    { "pool_id", "/storage-pools", "pool_name", NULL },
    { "library_share_id", "/library-shares", "library_share_name", NULL },
    { "template_id", "/templates", "template_name", NULL },
    { "vm_id", "/vms", "vm_name", NULL },
    { "run_as_id", "/run-as-accounts", "run_as_name", NULL },
    { "guest_os_profile_id", "/guest-os-profiles", "guest_os_profile_name", NULL },
};

/* A list of many objects on few hosts asks for each host once; after
 * this many distinct lookups the rest show their ids. */
#define DV_CLI_MAX_NAME_LOOKUPS 200

static const char *
dv_cli_name_lookup(DvCli *cli, const char *collection, const char *id)
{
    g_autofree char *escaped = g_uri_escape_string(id, NULL, TRUE);
    g_autofree char *path = g_strconcat(collection, "/", escaped, NULL);
    g_autoptr(JsonNode) node = NULL;
    g_autoptr(GError) local = NULL;
    const char *name = NULL;
    gpointer cached;

    if (cli->names == NULL)
        cli->names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    if (g_hash_table_lookup_extended(cli->names, path, NULL, &cached))
        return ((const char *)cached)[0] != '\0' ? cached : NULL;
    if (g_hash_table_size(cli->names) >= DV_CLI_MAX_NAME_LOOKUPS)
        return NULL;
    /* A name is a nicety: any failure shows the id instead. */
    node = dv_cli_client_request(cli->client, "GET", path, NULL, NULL, &local);
    if (node != NULL && JSON_NODE_HOLDS_OBJECT(node))
        name = dv_json_get_string(json_node_get_object(node), "name", NULL);
    if (local != NULL)
        g_debug("cannot look up %s: %s", path, local->message);
    g_hash_table_insert(cli->names, g_steal_pointer(&path), g_strdup(name != NULL ? name : ""));
    return dv_cli_name_lookup(cli, collection, id);
}

static gboolean
dv_cli_columns_show(const DvCliColumn *columns, const char *member)
{
    if (columns == NULL)
        return TRUE;
    for (const DvCliColumn *c = columns; c->header != NULL; c++) {
        g_auto(GStrv) alternatives = g_strsplit(c->path, "|", -1);
        if (g_strv_contains((const char *const *)alternatives, member))
            return TRUE;
    }
    return FALSE;
}

void
dv_cli_add_names(DvCli *cli, const char *collection, const DvCliColumn *columns, JsonObject *obj)
{
    for (gsize i = 0; i < G_N_ELEMENTS(dv_cli_refs); i++) {
        const char *id = dv_json_get_string(obj, dv_cli_refs[i].member, NULL);
        const char *name;

        if (!dv_cli_columns_show(columns, dv_cli_refs[i].name_member))
            continue;
        if (id == NULL || id[0] == '\0' || json_object_has_member(obj, dv_cli_refs[i].name_member))
            continue;
        if (dv_cli_refs[i].only_in != NULL && g_strcmp0(collection, dv_cli_refs[i].only_in) != 0)
            continue;
        name = dv_cli_name_lookup(cli, dv_cli_refs[i].collection, id);
        if (name != NULL)
            json_object_set_string_member(obj, dv_cli_refs[i].name_member, name);
    }
}

static gint
dv_cli_member_cmp(gconstpointer a, gconstpointer b)
{
    static const char *const first[] = { "id", "name" };
    const char *x = *(const char *const *)a;
    const char *y = *(const char *const *)b;
    guint rx = G_N_ELEMENTS(first);
    guint ry = G_N_ELEMENTS(first);

    for (guint i = 0; i < G_N_ELEMENTS(first); i++) {
        if (g_strcmp0(x, first[i]) == 0)
            rx = i;
        if (g_strcmp0(y, first[i]) == 0)
            ry = i;
    }
    if (rx != ry)
        return rx < ry ? -1 : 1;
    return g_strcmp0(x, y);
}

/* A copy of @node with the members of every object in a stable order. */
static JsonNode *
dv_cli_node_sorted(JsonNode *node)
{
    if (JSON_NODE_HOLDS_OBJECT(node)) {
        JsonObject *obj = json_node_get_object(node);
        g_autoptr(GList) members = json_object_get_members(obj);
        g_autoptr(GPtrArray) names = g_ptr_array_new();
        JsonObject *out = json_object_new();

        for (GList *l = members; l != NULL; l = l->next)
            g_ptr_array_add(names, l->data);
        g_ptr_array_sort(names, dv_cli_member_cmp);
        for (guint i = 0; i < names->len; i++) {
            const char *name = g_ptr_array_index(names, i);
            json_object_set_member(out, name, dv_cli_node_sorted(json_object_get_member(obj, name)));
        }
        return dv_json_node_new_object(out);
    }
    if (JSON_NODE_HOLDS_ARRAY(node)) {
        JsonArray *arr = json_node_get_array(node);
        JsonArray *out = json_array_new();
        for (guint i = 0; i < json_array_get_length(arr); i++)
            json_array_add_element(out, dv_cli_node_sorted(json_array_get_element(arr, i)));
        {
            JsonNode *sorted = json_node_new(JSON_NODE_ARRAY);
            json_node_take_array(sorted, out);
            return sorted;
        }
    }
    return json_node_copy(node);
}

void
dv_cli_print_object(DvCli *cli, const char *collection, JsonObject *obj, const char *const *skip)
{
    g_autoptr(JsonNode) wrapped = NULL;
    g_autoptr(JsonNode) sorted = NULL;
    g_autofree char *text = NULL;

    dv_cli_add_names(cli, collection, NULL, obj);
    wrapped = dv_json_node_new_object(json_object_ref(obj));
    sorted = dv_cli_node_sorted(wrapped);
    text = dv_cli_object_render(json_node_get_object(sorted), skip);
    fputs(text, cli->out);
}

static JsonObject *
dv_cli_node_get_object(JsonNode *node, GError **error)
{
    if (!JSON_NODE_HOLDS_OBJECT(node)) {
        dv_set_field_error(error, DV_ERROR_INTERNAL, NULL, "the server sent something other than a JSON object");
        return NULL;
    }
    return json_node_get_object(node);
}

char *
dv_cli_resolve_id(DvCli *cli, const char *collection, const char *value, const char *host_id, GError **error)
{
    g_autoptr(GString) path = g_string_new(collection);
    g_autoptr(JsonNode) node = NULL;
    JsonObject *obj;
    JsonArray *items;
    const char *id;

    /* Storage pools are not addressed by name: look the name up, on one
     * host when the command named one. */
    if (g_strcmp0(collection, "/storage-pools") == 0) {
        dv_cli_query_add(path, "name", value);
        if (host_id != NULL)
            dv_cli_query_add(path, "host_id", host_id);
        dv_cli_query_add(path, "limit", "2");
        node = dv_cli_client_request(cli->client, "GET", path->str, NULL, NULL, error);
        if (node == NULL || (obj = dv_cli_node_get_object(node, error)) == NULL)
            return NULL;
        items = dv_json_get_array(obj, "items");
        if (items == NULL || json_array_get_length(items) == 0) {
            /* It may be an id (or an id's prefix): the server says, so a
             * pool that does not exist is an error, not an empty table. */
            g_autofree char *escaped = g_uri_escape_string(value, NULL, TRUE);
            g_autoptr(JsonNode) by_id = NULL;
            g_string_assign(path, collection);
            g_string_append_printf(path, "/%s", escaped);
            by_id = dv_cli_client_request(cli->client, "GET", path->str, NULL, NULL, error);
            if (by_id == NULL || (obj = dv_cli_node_get_object(by_id, error)) == NULL)
                return NULL;
            id = dv_json_get_string(obj, "id", NULL);
            return id != NULL ? g_strdup(id) : g_strdup(value);
        }
        if (json_array_get_length(items) > 1) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, "pool",
                               "more than one host has a pool named '%s': add --host or use the pool id", value);
            return NULL;
        }
        id = dv_json_get_string(json_array_get_object_element(items, 0), "id", NULL);
    } else {
        g_autofree char *escaped = g_uri_escape_string(value, NULL, TRUE);
        g_string_append_printf(path, "/%s", escaped);
        node = dv_cli_client_request(cli->client, "GET", path->str, NULL, NULL, error);
        if (node == NULL || (obj = dv_cli_node_get_object(node, error)) == NULL)
            return NULL;
        id = dv_json_get_string(obj, "id", NULL);
    }
    if (id == NULL) {
        dv_set_field_error(error, DV_ERROR_INTERNAL, NULL, "the server sent an object without an id");
        return NULL;
    }
    return g_strdup(id);
}

static void
dv_cli_arg_query_value(DvCliArg *arg, char **ret)
{
    if (arg->option->type == DV_CLI_OPT_FLAG)
        *ret = g_strdup("true");
    else if (arg->option->type == DV_CLI_OPT_INT || arg->option->type == DV_CLI_OPT_SIZE ||
             arg->option->type == DV_CLI_OPT_SIZE_MIB)
        *ret = g_strdup_printf("%" G_GINT64_FORMAT, arg->number);
    else
        *ret = g_strdup(arg->value);
}

/* The query string of @args: options with a query parameter, names
 * resolved to ids where the option says so.  Options go in table order,
 * so a --host resolves before a --pool that is looked up on it. */
gboolean
dv_cli_args_add_query(DvCli *cli, DvCliArgs *args, GString *path, GError **error)
{
    g_autofree char *host_id = NULL;
    g_autoptr(GPtrArray) order = g_ptr_array_new();

    for (const DvCliOption *o = args->command->options; o != NULL && o->name != NULL; o++) {
        for (guint i = 0; i < args->given->len; i++) {
            DvCliArg *arg = g_ptr_array_index(args->given, i);
            if (arg->option == o)
                g_ptr_array_add(order, arg);
        }
    }
    /* Then the paging options, which are not in the command's table. */
    for (guint i = 0; i < args->given->len; i++) {
        DvCliArg *arg = g_ptr_array_index(args->given, i);
        if (!g_ptr_array_find(order, arg, NULL))
            g_ptr_array_add(order, arg);
    }

    for (guint i = 0; i < order->len; i++) {
        DvCliArg *arg = g_ptr_array_index(order, i);
        const DvCliOption *o = arg->option;
        g_autofree char *value = NULL;

        if (o->query == NULL)
            continue;
        if (o->resolve != NULL) {
            /* A filter naming nothing is an error naming the flag, not an
             * empty table. */
            value = dv_cli_resolve_id(cli, o->resolve, arg->value, host_id, error);
            if (value == NULL) {
                g_prefix_error(error, "--%s: ", o->name);
                return FALSE;
            }
        } else
            dv_cli_arg_query_value(arg, &value);
        if (value == NULL)
            return FALSE;
        if (g_strcmp0(o->query, "host_id") == 0) {
            g_free(host_id);
            host_id = g_strdup(value);
        }
        dv_cli_query_add(path, o->query, value);
    }
    return TRUE;
}

/* "/host-groups" of "/host-groups", "/host-groups/{0}" or "/vms/{0}/snapshots"
 * ("/snapshots": only the first segment matters to dv_cli_add_names()). */
static char *
dv_cli_list_collection(const char *path)
{
    const char *slash = path != NULL && path[0] == '/' ? strchr(path + 1, '/') : NULL;

    if (path == NULL)
        return NULL;
    return slash != NULL ? g_strndup(path, slash - path) : g_strdup(path);
}

gboolean
dv_cli_run_list(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body, GError **error)
{
    g_autofree char *base = dv_cli_path_expand(cmd->path, (const char *const *)args->positional->pdata, TRUE);
    g_autoptr(GString) first = g_string_new(base);
    g_autoptr(JsonArray) all = json_array_new();
    g_autofree char *cursor = NULL;
    gboolean follow = dv_cli_args_has(args, "all");

    if (!dv_cli_args_add_query(cli, args, first, error))
        return FALSE;
    for (;;) {
        g_autoptr(GString) path = g_string_new(first->str);
        g_autoptr(JsonNode) node = NULL;
        JsonObject *page;
        JsonArray *items;

        if (cursor != NULL)
            dv_cli_query_add(path, "cursor", cursor);
        node = dv_cli_client_request(cli->client, "GET", path->str, NULL, NULL, error);
        if (node == NULL || (page = dv_cli_node_get_object(node, error)) == NULL)
            return FALSE;
        items = dv_json_get_array(page, "items");
        if (items == NULL) {
            dv_set_field_error(error, DV_ERROR_INTERNAL, NULL, "the server sent a list without items");
            return FALSE;
        }
        g_free(cursor);
        cursor = g_strdup(dv_json_get_string(page, "next_cursor", NULL));
        if (!follow && cli->format == DV_CLI_FORMAT_JSON) {
            dv_cli_print_json(cli, node);
            break;
        }
        for (guint i = 0; i < json_array_get_length(items); i++)
            json_array_add_element(all, json_node_copy(json_array_get_element(items, i)));
        if (!follow || cursor == NULL)
            break;
    }

    if (cli->format == DV_CLI_FORMAT_JSON && follow) {
        g_autoptr(JsonObject) merged = json_object_new();
        json_object_set_array_member(merged, "items", json_array_ref(all));
        json_object_set_null_member(merged, "next_cursor");
        dv_cli_print_object_json(cli, merged);
    } else if (cli->format == DV_CLI_FORMAT_TABLE) {
        g_autofree char *text = NULL;
        g_autofree char *collection = dv_cli_list_collection(cmd->path);
        for (guint i = 0; i < json_array_get_length(all); i++) {
            JsonNode *item = json_array_get_element(all, i);
            if (JSON_NODE_HOLDS_OBJECT(item))
                dv_cli_add_names(cli, collection, cmd->columns, json_node_get_object(item));
        }
        text = dv_cli_items_render(all, cmd->columns, cli->out_tty);
        fputs(text, cli->out);
    }
    if (!follow && cursor != NULL)
        fprintf(cli->err, "(more: use --all or --limit)\n");
    return TRUE;
}

gboolean
dv_cli_run_show(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body, GError **error)
{
    g_autofree char *path = dv_cli_path_expand(cmd->path, (const char *const *)args->positional->pdata, TRUE);
    g_autoptr(JsonNode) node = dv_cli_client_request(cli->client, "GET", path, NULL, NULL, error);
    JsonObject *obj;

    if (node == NULL || (obj = dv_cli_node_get_object(node, error)) == NULL)
        return FALSE;
    if (cli->format == DV_CLI_FORMAT_JSON) {
        dv_cli_print_json(cli, node);
    } else {
        g_autofree char *collection = dv_cli_list_collection(cmd->path);
        dv_cli_print_object(cli, collection, obj, NULL);
    }
    return TRUE;
}

static void
dv_cli_on_job_update(JsonObject *job, gpointer user_data)
{
    dv_cli_progress_update(user_data, job);
}

/* The id a job made: "result" as a string, or its "id" member. */
static const char *
dv_cli_job_result_id(JsonObject *job)
{
    JsonNode *result = json_object_get_member(job, "result");

    if (result == NULL || JSON_NODE_HOLDS_NULL(result))
        return NULL;
    if (JSON_NODE_HOLDS_VALUE(result) && json_node_get_value_type(result) == G_TYPE_STRING)
        return json_node_get_string(result);
    if (JSON_NODE_HOLDS_OBJECT(result))
        return dv_json_get_string(json_node_get_object(result), "id", NULL);
    return NULL;
}

gboolean
dv_cli_follow_and_report(DvCli *cli, JsonObject *job, const char *done, GError **error)
{
    g_autoptr(JsonObject) final = NULL;
    const char *id = dv_json_get_string(job, "id", NULL);
    const char *state;

    if (id == NULL) {
        dv_set_field_error(error, DV_ERROR_INTERNAL, NULL, "the server sent a job without an id");
        return FALSE;
    }
    if (cli->no_wait) {
        if (cli->format == DV_CLI_FORMAT_JSON) {
            dv_cli_print_object_json(cli, job);
        } else {
            fprintf(cli->out, "%s\n", id);
            if (cli->err_tty)
                fprintf(cli->err, "Job %s accepted; follow it with 'drover job watch %s'\n",
                        dv_json_get_string(job, "kind", ""), id);
        }
        return TRUE;
    }
    if (dv_cli_job_state_is_final(dv_json_get_string(job, "state", NULL))) {
        /* Done before the server answered: still one progress line, so
         * the output does not depend on timing. */
        g_autoptr(DvCliProgress) progress = dv_cli_progress_new(cli->err, cli->err_tty);
        dv_cli_progress_update(progress, job);
        final = json_object_ref(job);
    } else {
        g_autoptr(DvCliProgress) progress = dv_cli_progress_new(cli->err, cli->err_tty);
        final = dv_cli_client_follow_job(cli->client, id, dv_cli_on_job_update, progress, error);
        if (final == NULL)
            return FALSE;
    }

    if (cli->format == DV_CLI_FORMAT_JSON)
        dv_cli_print_object_json(cli, final);
    state = dv_json_get_string(final, "state", NULL);
    if (g_strcmp0(state, "succeeded") == 0) {
        if (cli->format == DV_CLI_FORMAT_TABLE) {
            const char *result = dv_cli_job_result_id(final);
            JsonObject *applied =
                dv_json_get_object(dv_json_get_object(final, "result"), "applied");
            if (result != NULL)
                fprintf(cli->out, "%s (id %s)\n", done, result);
            else
                fprintf(cli->out, "%s\n", done);
            /* A change says when each field takes effect (vm set). */
            if (applied != NULL) {
                g_autoptr(GList) members = json_object_get_members(applied);
                for (GList *m = members; m != NULL; m = m->next) {
                    const char *when = dv_json_get_string(applied, m->data, "");
                    g_autofree char *safe_f = dv_text_excerpt(m->data, 64);
                    g_autofree char *safe_w = dv_text_excerpt(when, 64);
                    fprintf(cli->out, "  %s: %s\n", safe_f,
                            g_strcmp0(when, "next-boot") == 0 ? "at the next boot" : safe_w);
                }
            }
        }
        return TRUE;
    }
    cli->job_failed = TRUE;
    if (g_strcmp0(state, "cancelled") == 0) {
        const char *why = dv_json_get_string(dv_json_get_object(final, "error"), "message", NULL);
        if (why != NULL)
            dv_set_field_error(error, DV_ERROR_CANCELLED, NULL, "job %s was cancelled: %s", id, why);
        else
            dv_set_field_error(error, DV_ERROR_CANCELLED, NULL, "job %s was cancelled", id);
        return FALSE;
    } else {
        JsonObject *err = dv_json_get_object(final, "error");
        const char *message = dv_json_get_string(err, "message", NULL);
        dv_set_field_error(error, dv_error_code_from_string(dv_json_get_string(err, "code", NULL)),
                           dv_json_get_string(err, "field", NULL), "%s",
                           message != NULL ? message : "the job failed without saying why");
        return FALSE;
    }
}

static gboolean
dv_cli_body_is_empty(JsonObject *body)
{
    return body == NULL || json_object_get_size(body) == 0;
}

gboolean
dv_cli_run_job(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body, GError **error)
{
    const char *const *pos = (const char *const *)args->positional->pdata;
    g_autofree char *base = dv_cli_path_expand(cmd->path, pos, TRUE);
    g_autofree char *done = dv_cli_path_expand(cmd->done, pos, FALSE);
    g_autoptr(GString) path = g_string_new(base);
    g_autoptr(JsonNode) node = NULL;
    JsonObject *obj;
    JsonObject *job;

    if (!dv_cli_args_add_query(cli, args, path, error))
        return FALSE;
    if (args->secrets->len > 0) {
        /* Serialised in guarded memory and sent from there; wiped when
         * the request is done. */
        g_autoptr(DvSecret) raw = dv_cli_args_body_new(args, body);
        node = dv_cli_client_request_raw(cli->client, cmd->method, path->str, dv_secret_get_string(raw),
                                         dv_secret_get_len(raw), NULL, error);
    } else {
        /* Actions on an object (".../start", DELETE) have no body;
         * creations and changes always have members. */
        node = dv_cli_client_request(cli->client, cmd->method, path->str, dv_cli_body_is_empty(body) ? NULL : body,
                                     NULL, error);
    }
    if (node == NULL || (obj = dv_cli_node_get_object(node, error)) == NULL)
        return FALSE;
    job = dv_json_get_object(obj, "job");
    if (job == NULL) {
        /* A server that did the change at once: show what it said. */
        if (cli->format == DV_CLI_FORMAT_JSON)
            dv_cli_print_json(cli, node);
        else
            fprintf(cli->out, "%s\n", done);
        return TRUE;
    }
    return dv_cli_follow_and_report(cli, job, done, error);
}

gboolean
dv_cli_run_action(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body, GError **error)
{
    const char *const *pos = (const char *const *)args->positional->pdata;
    g_autofree char *path = dv_cli_path_expand(cmd->path, pos, TRUE);
    g_autofree char *done = dv_cli_path_expand(cmd->done, pos, FALSE);
    g_autoptr(JsonNode) node = dv_cli_client_request(cli->client, cmd->method, path,
                                                     dv_cli_body_is_empty(body) ? NULL : body, NULL, error);

    if (node == NULL)
        return FALSE;
    if (cli->format == DV_CLI_FORMAT_JSON)
        dv_cli_print_json(cli, node);
    else
        fprintf(cli->out, "%s\n", done);
    return TRUE;
}

char *
dv_cli_config_path(void)
{
    /* Read the variable each time: g_get_user_config_dir() caches it. */
    const char *xdg = g_getenv("XDG_CONFIG_HOME");

    if (xdg != NULL && g_path_is_absolute(xdg))
        return g_build_filename(xdg, "drover", "config", NULL);
    return g_build_filename(g_get_home_dir(), ".config", "drover", "config", NULL);
}

GKeyFile *
dv_cli_config_load(GError **error)
{
    g_autoptr(GKeyFile) config = g_key_file_new();
    g_autofree char *path = dv_cli_config_path();
    g_autoptr(GError) local = NULL;

    if (!g_key_file_load_from_file(config, path, G_KEY_FILE_NONE, &local)) {
        if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return g_steal_pointer(&config);
        dv_error_convert(&local);
        g_propagate_prefixed_error(error, g_steal_pointer(&local), "cannot read %s: ", path);
        return NULL;
    }
    return g_steal_pointer(&config);
}

gboolean
dv_cli_config_save(GKeyFile *config, GError **error)
{
    g_autofree char *path = dv_cli_config_path();
    g_autofree char *dir = g_path_get_dirname(path);
    gsize len = 0;
    g_autofree char *data = NULL;
    g_autoptr(GError) local = NULL;
    gboolean ok;

    if (g_mkdir_with_parents(dir, 0700) != 0) {
        dv_set_field_error(error, DV_ERROR_PERMISSION_DENIED, NULL, "cannot create %s: %s", dir,
                           g_strerror(errno));
        return FALSE;
    }
    data = g_key_file_to_data(config, &len, NULL);
    /* Created with mode 0600 from the start: it holds the session token. */
    ok = g_file_set_contents_full(path, data, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &local);
    dv_secret_str_free(g_steal_pointer(&data));
    if (!ok) {
        dv_error_convert(&local);
        g_propagate_prefixed_error(error, g_steal_pointer(&local), "cannot write %s: ", path);
        return FALSE;
    }
    return TRUE;
}
