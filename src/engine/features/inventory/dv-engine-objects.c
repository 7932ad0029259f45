#define G_LOG_DOMAIN "DvEngineObjects"

/* Objects that live only in the database: host groups, clusters, library
 * shares and templates.  Their changes are jobs too, so every change has
 * one audit trail, but the work is a single write. */

#include "dv-engine-objects.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>

#define DV_PATH_MAX 4096


static gboolean
dv_engine_has_references(DvEngine *engine, const DvTableDef *def, const char *column,
                         const char *id, GError **error)
{
    DvFilter f = { column, DV_FILTER_EQ, id };
    gint64 n = dv_store_count(dv_core(engine)->store, def, &f, 1, error);
    return n != 0; /* an error counts as referenced: refuse to delete */
}

/* --- library shares on this server ----------------------------------------- */

/* Whether @path (absolute, canonical) may be a library share on the
 * management server: an existing directory reached without symbolic
 * links, or a path under the library root whose existing parts below the
 * root are no symbolic links.  Sets @ret_create when it must be made. */
static gboolean
dv_engine_share_path_check(DvEngine *engine, const char *path, gboolean *ret_create, GError **error)
{
    g_autofree char *real = realpath(path, NULL);
    g_autofree char *root_slash = g_strconcat(dv_core(engine)->library_root, "/", NULL);
    struct stat st;

    if (real != NULL) {
        if (g_strcmp0(real, path) != 0) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "path",
                               "path: %s is or passes through a symbolic link; give the real "
                               "directory", path);
            return FALSE;
        }
        if (g_stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "path",
                               "path: %s exists and is not a directory", path);
            return FALSE;
        }
        *ret_create = FALSE;
        return TRUE;
    }
    if (!g_str_has_prefix(path, root_slash)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "path",
                           "path: %s does not exist; Drover creates a share's directory only under "
                           "the library root %s ([library] root in droverd's config), elsewhere it "
                           "must exist",
                           path, dv_core(engine)->library_root);
        return FALSE;
    }
    /* Nothing from the root down may lead elsewhere: every part of the
     * path that exists (the root, then each component) is a real
     * directory; a dangling link as the last part counts as existing. */
    for (gsize end = strlen(dv_core(engine)->library_root); end <= strlen(path); end++) {
        g_autofree char *part = NULL;
        if (path[end] != '/' && path[end] != '\0')
            continue;
        part = g_strndup(path, end);
        if (g_lstat(part, &st) != 0)
            break;
        if (S_ISLNK(st.st_mode) || !S_ISDIR(st.st_mode)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "path",
                               "path: %s under the library root is %s", part,
                               S_ISLNK(st.st_mode) ? "a symbolic link" : "not a directory");
            return FALSE;
        }
    }
    *ret_create = TRUE;
    return TRUE;
}

static gboolean
dv_engine_share_make_dir(DvEngine *engine, const char *path, GError **error)
{
    gboolean create = FALSE;

    if (path == NULL)
        return TRUE;
    if (!dv_engine_share_path_check(engine, path, &create, error))
        return FALSE;
    if (create && g_mkdir_with_parents(path, 0755) != 0) {
        int saved = errno;
        dv_set_field_error(error, DV_ERROR_UNAVAILABLE, "path", "path: cannot create %s: %s", path,
                           g_strerror(saved));
        return FALSE;
    }
    return TRUE;
}

/* --- the one job kind behind every simple change ----------------------- */

static gboolean
dv_engine_object_job(DvJob *job, gpointer user_data, GError **error)
{
    DvEngine *engine = user_data;
    JsonObject *params = dv_job_get_params(job);
    const char *op = dv_json_get_string(params, "op", "");
    gint64 kind = dv_json_get_int(params, "kind", -1);
    const DvKindInfo *info;
    static const DvJobStep steps[] = { { "save", 1 } };

    if (kind < 0 || kind >= DV_KIND_LAST) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "bad job parameters");
        return FALSE;
    }
    info = dv_core_kind_info((DvKind)kind);
    dv_job_set_steps(job, steps, G_N_ELEMENTS(steps));
    if (!dv_job_step(job, "save", error))
        return FALSE;
    if (g_strcmp0(op, "create") == 0) {
        JsonObject *record = dv_json_get_object(params, "record");
        g_autoptr(GError) local = NULL;
        g_autoptr(JsonObject) result = json_object_new();
        /* Resumed after a crash: the row may already be there. */
        g_autoptr(JsonObject) existing = dv_store_get(dv_core(engine)->store, info->def,
                                                      dv_json_get_string(record, "id", ""), &local);
        /* A share on this server: its directory exists, or is made now
         * under the library root (checked again: the tree may have
         * changed since the request). */
        if (existing == NULL && info->kind == DV_KIND_LIBRARY_SHARE &&
            dv_json_get_string(record, "host_id", NULL) == NULL &&
            !dv_engine_share_make_dir(engine, dv_json_get_string(record, "path", NULL), error))
            return FALSE;
        if (existing == NULL && !dv_store_insert(dv_core(engine)->store, info->def, record, error))
            return FALSE;
        json_object_set_string_member(result, "id", dv_json_get_string(record, "id", ""));
        json_object_set_string_member(result, "name", dv_json_get_string(record, "name", ""));
        dv_job_set_result(job, result);
        return TRUE;
    }
    if (g_strcmp0(op, "update") == 0)
        return dv_store_update(dv_core(engine)->store, info->def,
                               dv_json_get_string(params, "id", ""),
                               dv_json_get_object(params, "changes"), error);
    if (g_strcmp0(op, "delete") == 0) {
        g_autoptr(GError) local = NULL;
        if (!dv_store_delete(dv_core(engine)->store, info->def,
                             dv_json_get_string(params, "id", ""), &local)) {
            /* Already gone (a resumed job): done. */
            if (g_error_matches(local, DV_ERROR, DV_ERROR_NOT_FOUND))
                return TRUE;
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        return TRUE;
    }
    g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "bad job operation '%s'", op);
    return FALSE;
}

void
dv_engine_objects_register(DvEngine *engine)
{
    static const char *const names[] = {
        "host-group.create", "host-group.update", "host-group.delete",
        "cluster.create", "cluster.update", "cluster.delete",
        "library-share.create", "library-share.delete",
        "template.create", "template.delete",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        DvJobKind kind = { names[i], dv_engine_object_job, engine, TRUE };
        dv_job_manager_register_kind(dv_core(engine)->jobs, &kind);
    }
}


/* --- validation per kind -------------------------------------------------- */

const DvFieldSpec dv_host_group_fields[] = {
    { "name", DV_FIELD_STRING, TRUE, .max_len = DV_NAME_MAX },
    { "parent", DV_FIELD_STRING_OR_NULL, FALSE },
    { "description", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = DV_DESCRIPTION_MAX },
    { NULL },
};

const DvFieldSpec dv_host_group_update_fields[] = {
    { "name", DV_FIELD_STRING, FALSE, .max_len = DV_NAME_MAX },
    { "parent", DV_FIELD_STRING_OR_NULL, FALSE },
    { "description", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = DV_DESCRIPTION_MAX },
    { NULL },
};

const DvFieldSpec dv_cluster_fields[] = {
    { "name", DV_FIELD_STRING, TRUE, .max_len = DV_NAME_MAX },
    { "host_group", DV_FIELD_STRING_OR_NULL, FALSE },
    { "description", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = DV_DESCRIPTION_MAX },
    { NULL },
};

const DvFieldSpec dv_cluster_update_fields[] = {
    { "name", DV_FIELD_STRING, FALSE, .max_len = DV_NAME_MAX },
    { "host_group", DV_FIELD_STRING_OR_NULL, FALSE },
    { "description", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = DV_DESCRIPTION_MAX },
    { NULL },
};

const DvFieldSpec dv_library_share_fields[] = {
    { "name", DV_FIELD_STRING, TRUE, .max_len = DV_NAME_MAX },
    { "path", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = DV_PATH_MAX },
    { "host", DV_FIELD_STRING_OR_NULL, FALSE },
    { "pool", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = DV_NAME_MAX },
    { "description", DV_FIELD_STRING_OR_NULL, FALSE },
    { NULL },
};

const DvFieldSpec dv_template_fields[] = {
    { "name", DV_FIELD_STRING, TRUE, .max_len = DV_NAME_MAX },
    { "vcpus", DV_FIELD_INT, TRUE, .min = 1, .max = 512 },
    { "memory_mib", DV_FIELD_INT, TRUE, .min = 16, .max = 4194304 },
    { "generation", DV_FIELD_INT, FALSE, .min = 1, .max = 2 },
    { "secure_boot", DV_FIELD_BOOL, FALSE },
    { "networks", DV_FIELD_ARRAY, FALSE },
    { "library_share", DV_FIELD_STRING_OR_NULL, FALSE },
    { "disk_volume", DV_FIELD_STRING_OR_NULL, FALSE, .max_len = DV_NAME_MAX },
    { "cdroms", DV_FIELD_ARRAY, FALSE,
      "CD-ROM drives of its VMs: {library_share, file}, {pool, volume} or {} (empty)" },
    { "description", DV_FIELD_STRING_OR_NULL, FALSE },
    { NULL },
};

/* A template's CD-ROM drives, checked for shape (the ISO itself is
 * looked up on the VM's host when a VM is made); a share is kept by id.
 * Returns the array to store (owned) or NULL. */
static JsonArray *
dv_engine_template_cdroms(DvEngine *engine, JsonArray *in, GError **error)
{
    g_autoptr(JsonArray) out = json_array_new();

    if (json_array_get_length(in) > 4) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "cdroms", "cdroms: at most 4");
        return NULL;
    }
    for (guint i = 0; i < json_array_get_length(in); i++) {
        JsonNode *n = json_array_get_element(in, i);
        g_autofree char *f = g_strdup_printf("cdroms[%u]", i);
        JsonObject *c;
        JsonObject *o;
        const char *share;
        const char *file;
        const char *pool;
        const char *volume;

        if (!JSON_NODE_HOLDS_OBJECT(n)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f, "%s: must be an object", f);
            return NULL;
        }
        c = json_node_get_object(n);
        share = dv_json_get_string(c, "library_share", NULL);
        file = dv_json_get_string(c, "file", NULL);
        pool = dv_json_get_string(c, "pool", NULL);
        volume = dv_json_get_string(c, "volume", NULL);
        if (json_object_get_size(c) !=
                (guint)((share != NULL) + (file != NULL) + (pool != NULL) + (volume != NULL)) ||
            (share != NULL) != (file != NULL) || (pool != NULL) != (volume != NULL) ||
            (share != NULL && pool != NULL)) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, f,
                               "%s: {library_share, file}, {pool, volume} or {} (an empty drive)",
                               f);
            return NULL;
        }
        o = json_object_new();
        json_array_add_object_element(out, o);
        if (share != NULL) {
            g_autofree char *f_share = g_strconcat(f, ".library_share", NULL);
            g_autofree char *f_file = g_strconcat(f, ".file", NULL);
            g_autoptr(JsonObject) s =
                dv_core_resolve(engine, DV_KIND_LIBRARY_SHARE, share, f_share, error);
            if (s == NULL || !dv_validate_name(f_file, file, error))
                return NULL;
            json_object_set_string_member(o, "library_share", dv_json_get_string(s, "id", ""));
            json_object_set_string_member(o, "file", file);
        } else if (pool != NULL) {
            g_autofree char *f_pool = g_strconcat(f, ".pool", NULL);
            g_autofree char *f_volume = g_strconcat(f, ".volume", NULL);
            if (!dv_validate_name(f_pool, pool, error) ||
                !dv_validate_name(f_volume, volume, error))
                return NULL;
            json_object_set_string_member(o, "pool", pool);
            json_object_set_string_member(o, "volume", volume);
        }
    }
    return g_steal_pointer(&out);
}

/* Resolves an optional reference member of @body into @record's @column. */
static gboolean
dv_engine_set_ref(DvEngine *engine, JsonObject *body, const char *member, DvKind kind,
                  JsonObject *record, const char *column, GError **error)
{
    const char *value = dv_json_get_string(body, member, NULL);
    if (value == NULL) {
        if (json_object_has_member(body, member))
            json_object_set_null_member(record, column);
        return TRUE;
    }
    {
        g_autoptr(JsonObject) ref = dv_core_resolve(engine, kind, value, member, error);
        if (ref == NULL)
            return FALSE;
        json_object_set_string_member(record, column, dv_json_get_string(ref, "id", ""));
    }
    return TRUE;
}

static gboolean
dv_engine_check_group_cycle(DvEngine *engine, const char *group_id, const char *new_parent,
                            GError **error)
{
    g_autofree char *cur = g_strdup(new_parent);
    guint depth = 0;

    while (cur != NULL) {
        g_autoptr(JsonObject) g = NULL;
        if (g_strcmp0(cur, group_id) == 0) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "parent",
                               "parent: a host group cannot be its own ancestor");
            return FALSE;
        }
        if (++depth > 64) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "parent",
                               "parent: host groups nest at most 64 levels");
            return FALSE;
        }
        g = dv_store_get(dv_core(engine)->store, &dv_table_host_groups, cur, error);
        if (g == NULL)
            return FALSE;
        g_free(cur);
        cur = g_strdup(dv_json_get_string(g, "parent_id", NULL));
    }
    return TRUE;
}

static gboolean
dv_engine_validate_description(JsonObject *body, JsonObject *record, GError **error)
{
    if (!json_object_has_member(body, "description"))
        return TRUE;
    {
        const char *d = dv_json_get_string(body, "description", NULL);
        if (!dv_validate_text("description", d, DV_DESCRIPTION_MAX, error))
            return FALSE;
        json_object_set_string_member(record, "description", d);
    }
    return TRUE;
}

static char *
dv_engine_normalize_path(const char *path, GError **error)
{
    g_autofree char *canon = NULL;
    gsize len;

    if (path == NULL || !g_path_is_absolute(path)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "path", "path: must be an absolute path");
        return NULL;
    }
    if (strlen(path) > DV_PATH_MAX || !dv_validate_text("path", path, DV_PATH_MAX, error)) {
        if (error != NULL && *error == NULL)
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "path",
                               "path: must be at most %d bytes", DV_PATH_MAX);
        return NULL;
    }
    canon = g_canonicalize_filename(path, NULL);
    len = strlen(canon);
    while (len > 1 && canon[len - 1] == '/')
        canon[--len] = '\0';
    return g_steal_pointer(&canon);
}

static JsonObject *
dv_engine_share_build(DvEngine *engine, JsonObject *body, GError **error)
{
    g_autoptr(JsonObject) rec = json_object_new();
    g_autofree char *id = g_uuid_string_random();
    g_autofree char *path = NULL;
    const char *name = dv_json_get_string(body, "name", NULL);
    const char *host = dv_json_get_string(body, "host", NULL);
    const char *pool = dv_json_get_string(body, "pool", NULL);
    const char *given_path = dv_json_get_string(body, "path", NULL);

    if (!dv_validate_name("name", name, error))
        return NULL;
    if ((host == NULL) != (pool == NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, host == NULL ? "host" : "pool",
                           "%s: host and pool are given together or not at all",
                           host == NULL ? "host" : "pool");
        return NULL;
    }
    json_object_set_string_member(rec, "id", id);
    json_object_set_string_member(rec, "name", name);
    json_object_set_null_member(rec, "host_id");
    json_object_set_null_member(rec, "pool_name");
    if (host != NULL) {
        g_autoptr(JsonObject) h = dv_core_resolve(engine, DV_KIND_HOST, host, "host", error);
        g_autoptr(JsonArray) pools = NULL;
        JsonObject *found = NULL;
        if (h == NULL)
            return NULL;
        if (!dv_validate_name("pool", pool, error))
            return NULL;
        pools = dv_core_list_all(engine, &dv_table_pools, "host_id",
                                 dv_json_get_string(h, "id", ""), error);
        if (pools == NULL)
            return NULL;
        for (guint i = 0; i < json_array_get_length(pools); i++) {
            JsonObject *p = json_array_get_object_element(pools, i);
            if (g_strcmp0(dv_json_get_string(p, "name", ""), pool) == 0)
                found = p;
        }
        if (found == NULL) {
            dv_set_field_error(error, DV_ERROR_NOT_FOUND, "pool",
                               "pool: host %s has no storage pool '%s'",
                               dv_json_get_string(h, "name", ""), pool);
            return NULL;
        }
        if (given_path == NULL)
            given_path = dv_json_get_string(found, "path", NULL);
        path = dv_engine_normalize_path(given_path, error);
        if (path == NULL)
            return NULL;
        if (dv_json_get_string(found, "path", NULL) != NULL &&
            g_strcmp0(path, dv_json_get_string(found, "path", NULL)) != 0) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "path",
                               "path: pool '%s' is at %s, not %s", pool,
                               dv_json_get_string(found, "path", ""), path);
            return NULL;
        }
        json_object_set_string_member(rec, "host_id", dv_json_get_string(h, "id", ""));
        json_object_set_string_member(rec, "pool_name", pool);
    } else {
        path = dv_engine_normalize_path(given_path, error);
        if (path == NULL)
            return NULL;
    }
    json_object_set_string_member(rec, "path", path);
    json_object_set_boolean_member(rec, "is_default", FALSE);
    json_object_set_null_member(rec, "description");
    if (!dv_engine_validate_description(body, rec, error))
        return NULL;
    json_object_set_int_member(rec, "created_at", dv_store_now());
    if (!dv_core_check_unique(engine, &dv_table_library_shares, "name", name, NULL, "name",
                              "library share", error) ||
        !dv_core_check_unique(engine, &dv_table_library_shares, "path", path, NULL, "path",
                              "library share", error))
        return NULL;
    if (host == NULL) {
        gboolean create = FALSE;
        if (!dv_engine_share_path_check(engine, path, &create, error))
            return NULL;
    }
    return g_steal_pointer(&rec);
}

static JsonObject *
dv_engine_template_build(DvEngine *engine, JsonObject *body, GError **error)
{
    g_autoptr(JsonObject) rec = json_object_new();
    g_autofree char *id = g_uuid_string_random();
    const char *name = dv_json_get_string(body, "name", NULL);
    gint64 vcpus = dv_json_get_int(body, "vcpus", 0);
    gint64 mem = dv_json_get_int(body, "memory_mib", 0);
    gint64 gen = dv_json_get_int(body, "generation", 1);
    gboolean sb = dv_json_get_bool(body, "secure_boot", gen == 2);
    JsonArray *nets = dv_json_get_array(body, "networks");
    const char *share = dv_json_get_string(body, "library_share", NULL);
    const char *disk = dv_json_get_string(body, "disk_volume", NULL);
    JsonArray *net_out = json_array_new();

    json_object_set_array_member(rec, "networks", net_out);
    if (!dv_validate_name("name", name, error) ||
        !dv_validate_range("vcpus", vcpus, 1, 512, error) ||
        !dv_validate_range("memory_mib", mem, 16, 4194304, error) ||
        !dv_validate_range("generation", gen, 1, 2, error))
        return NULL;
    if (gen == 1 && sb) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "secure_boot",
                           "secure_boot: needs generation 2 (UEFI)");
        return NULL;
    }
    if (nets != NULL) {
        if (json_array_get_length(nets) > 8) {
            dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, "networks",
                               "networks: at most 8");
            return NULL;
        }
        for (guint i = 0; i < json_array_get_length(nets); i++) {
            JsonNode *n = json_array_get_element(nets, i);
            g_autofree char *field = g_strdup_printf("networks[%u]", i);
            const char *net = NULL;
            /* A name, or {"network": NAME} as in a VM spec. */
            if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING) {
                net = json_node_get_string(n);
            } else if (JSON_NODE_HOLDS_OBJECT(n) && json_object_get_size(json_node_get_object(n)) == 1) {
                net = dv_json_get_string(json_node_get_object(n), "network", NULL);
            }
            if (net == NULL) {
                dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, field,
                                   "%s: must be a network name or {\"network\": NAME}", field);
                return NULL;
            }
            if (!dv_validate_name(field, net, error))
                return NULL;
            json_array_add_string_element(net_out, net);
        }
    }
    json_object_set_string_member(rec, "id", id);
    json_object_set_string_member(rec, "name", name);
    json_object_set_int_member(rec, "vcpus", vcpus);
    json_object_set_int_member(rec, "memory_mib", mem);
    json_object_set_int_member(rec, "generation", gen);
    json_object_set_boolean_member(rec, "secure_boot", sb);
    json_object_set_null_member(rec, "library_share_id");
    json_object_set_null_member(rec, "disk_volume");
    if ((share == NULL) != (disk == NULL)) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT,
                           share == NULL ? "library_share" : "disk_volume",
                           "%s: library_share and disk_volume are given together",
                           share == NULL ? "library_share" : "disk_volume");
        return NULL;
    }
    if (share != NULL) {
        g_autoptr(JsonObject) s =
            dv_core_resolve(engine, DV_KIND_LIBRARY_SHARE, share, "library_share", error);
        if (s == NULL)
            return NULL;
        if (!dv_validate_name("disk_volume", disk, error))
            return NULL;
        if (dv_json_get_string(s, "host_id", NULL) != NULL) {
            g_autofree char *vpath = g_build_filename(dv_json_get_string(s, "path", ""), disk, NULL);
            g_autoptr(GError) local = NULL;
            g_autoptr(JsonObject) vol =
                dv_store_find(dv_core(engine)->store, &dv_table_volumes, "path", vpath, &local);
            if (vol == NULL) {
                dv_set_field_error(error, DV_ERROR_NOT_FOUND, "disk_volume",
                                   "disk_volume: library share '%s' holds no volume '%s' "
                                   "(refresh its host if it was just copied there)",
                                   dv_json_get_string(s, "name", ""), disk);
                return NULL;
            }
        }
        json_object_set_string_member(rec, "library_share_id", dv_json_get_string(s, "id", ""));
        json_object_set_string_member(rec, "disk_volume", disk);
    }
    json_object_set_null_member(rec, "cdroms");
    if (dv_json_get_array(body, "cdroms") != NULL) {
        JsonArray *cd = dv_engine_template_cdroms(engine, dv_json_get_array(body, "cdroms"), error);
        if (cd == NULL)
            return NULL;
        json_object_set_array_member(rec, "cdroms", cd);
    }
    json_object_set_null_member(rec, "description");
    if (!dv_engine_validate_description(body, rec, error))
        return NULL;
    json_object_set_int_member(rec, "created_at", dv_store_now());
    if (!dv_core_check_unique(engine, &dv_table_templates, "name", name, NULL, "name", "template",
                              error))
        return NULL;
    return g_steal_pointer(&rec);
}

JsonObject *
dv_engine_object_create(DvEngine *engine, DvKind kind, JsonObject *body, const DvActor *actor,
                        GError **error)
{
    const DvKindInfo *info = dv_core_kind_info(kind);
    g_autoptr(JsonObject) rec = NULL;

    switch (kind) {
    case DV_KIND_HOST_GROUP:
    case DV_KIND_CLUSTER: {
        const char *name = dv_json_get_string(body, "name", NULL);
        g_autofree char *id = g_uuid_string_random();
        if (!dv_json_check_fields(
                body, kind == DV_KIND_HOST_GROUP ? dv_host_group_fields : dv_cluster_fields, NULL,
                error) ||
            !dv_validate_name("name", name, error) ||
            !dv_core_check_unique(engine, info->def, "name", name, NULL, "name", info->singular,
                                  error))
            return NULL;
        rec = json_object_new();
        json_object_set_string_member(rec, "id", id);
        json_object_set_string_member(rec, "name", name);
        json_object_set_null_member(rec, "description");
        if (!dv_engine_validate_description(body, rec, error))
            return NULL;
        if (kind == DV_KIND_HOST_GROUP) {
            json_object_set_null_member(rec, "parent_id");
            if (!dv_engine_set_ref(engine, body, "parent", DV_KIND_HOST_GROUP, rec, "parent_id",
                                   error))
                return NULL;
        } else {
            json_object_set_null_member(rec, "host_group_id");
            json_object_set_null_member(rec, "hypervisor_type");
            json_object_set_null_member(rec, "hypervisor_major");
            if (!dv_engine_set_ref(engine, body, "host_group", DV_KIND_HOST_GROUP, rec,
                                   "host_group_id", error))
                return NULL;
        }
        json_object_set_int_member(rec, "created_at", dv_store_now());
        break;
    }
    case DV_KIND_LIBRARY_SHARE:
        if (!dv_json_check_fields(body, dv_library_share_fields, NULL, error))
            return NULL;
        rec = dv_engine_share_build(engine, body, error);
        break;
    case DV_KIND_TEMPLATE:
        if (!dv_json_check_fields(body, dv_template_fields, NULL, error))
            return NULL;
        rec = dv_engine_template_build(engine, body, error);
        break;
    default:
        g_assert_not_reached();
    }
    if (rec == NULL)
        return NULL;
    return dv_core_object_submit(engine, kind, "create", dv_json_get_string(rec, "id", ""),
                                 dv_json_get_string(rec, "name", ""), rec, NULL, NULL, actor,
                                 error);
}

JsonObject *
dv_engine_object_update(DvEngine *engine, DvKind kind, JsonObject *obj, JsonObject *body,
                        const DvActor *actor, GError **error)
{
    const DvKindInfo *info = dv_core_kind_info(kind);
    const char *id = dv_json_get_string(obj, "id", "");
    g_autoptr(JsonObject) changes = json_object_new();
    const char *name = dv_json_get_string(body, "name", NULL);

    if (!dv_json_check_fields(body, kind == DV_KIND_HOST_GROUP ? dv_host_group_update_fields
                                                               : dv_cluster_update_fields,
                              NULL, error))
        return NULL;
    if (name != NULL) {
        if (!dv_validate_name("name", name, error) ||
            !dv_core_check_unique(engine, info->def, "name", name, id, "name", info->singular,
                                  error))
            return NULL;
        json_object_set_string_member(changes, "name", name);
    }
    if (!dv_engine_validate_description(body, changes, error))
        return NULL;
    if (kind == DV_KIND_HOST_GROUP) {
        if (!dv_engine_set_ref(engine, body, "parent", DV_KIND_HOST_GROUP, changes, "parent_id",
                               error))
            return NULL;
        if (dv_json_get_string(changes, "parent_id", NULL) != NULL &&
            !dv_engine_check_group_cycle(engine, id, dv_json_get_string(changes, "parent_id", NULL),
                                         error))
            return NULL;
    } else if (!dv_engine_set_ref(engine, body, "host_group", DV_KIND_HOST_GROUP, changes,
                                  "host_group_id", error)) {
        return NULL;
    }
    if (json_object_get_size(changes) == 0) {
        dv_set_field_error(error, DV_ERROR_INVALID_ARGUMENT, NULL, "nothing to change");
        return NULL;
    }
    return dv_core_object_submit(engine, kind, "update", id, dv_json_get_string(obj, "name", ""),
                                 NULL, changes, NULL, actor, error);
}

JsonObject *
dv_engine_object_delete(DvEngine *engine, DvKind kind, JsonObject *obj, const DvActor *actor,
                        GError **error)
{
    const DvKindInfo *info = dv_core_kind_info(kind);
    const char *id = dv_json_get_string(obj, "id", "");
    const char *name = dv_json_get_string(obj, "name", "");
    struct {
        const DvTableDef *def;
        const char *column;
        const char *what;
    } refs[3] = { { 0 } };

    switch (kind) {
    case DV_KIND_HOST_GROUP:
        refs[0].def = &dv_table_host_groups, refs[0].column = "parent_id", refs[0].what = "host groups";
        refs[1].def = &dv_table_hosts, refs[1].column = "host_group_id", refs[1].what = "hosts";
        refs[2].def = &dv_table_clusters, refs[2].column = "host_group_id", refs[2].what = "clusters";
        break;
    case DV_KIND_CLUSTER:
        refs[0].def = &dv_table_hosts, refs[0].column = "cluster_id", refs[0].what = "hosts";
        break;
    case DV_KIND_LIBRARY_SHARE:
        refs[0].def = &dv_table_templates, refs[0].column = "library_share_id", refs[0].what = "templates";
        break;
    case DV_KIND_TEMPLATE:
        refs[0].def = &dv_table_vms, refs[0].column = "template_id", refs[0].what = "VMs";
        break;
    default:
        g_assert_not_reached();
    }
    for (gsize i = 0; i < G_N_ELEMENTS(refs); i++) {
        if (refs[i].def == NULL)
            continue;
        if (dv_engine_has_references(engine, refs[i].def, refs[i].column, id, NULL)) {
            dv_set_field_error(error, DV_ERROR_CONFLICT, NULL,
                               "%s '%s' still has %s; move or remove them first",
                               info->singular, name, refs[i].what);
            return NULL;
        }
    }
    return dv_core_object_submit(engine, kind, "delete", id, name, NULL, NULL, NULL, actor, error);
}

gboolean
dv_engine_ensure_default_share(DvEngine *engine, GError **error)
{
    DvFilter f = { "is_default", DV_FILTER_EQ, "true" };
    g_autoptr(JsonObject) rec = NULL;
    g_autofree char *id = NULL;
    g_autofree char *path = NULL;
    const char *name;
    gint64 n = dv_store_count(dv_core(engine)->store, &dv_table_library_shares, &f, 1, error);

    if (n < 0)
        return FALSE;
    if (n > 0)
        return TRUE;
    name = dv_core(engine)->default_share_name != NULL ? dv_core(engine)->default_share_name
                                                       : DV_DEFAULT_SHARE_NAME;
    path = dv_core(engine)->default_share_path != NULL
               ? g_strdup(dv_core(engine)->default_share_path)
               : g_build_filename(dv_core(engine)->state_dir, "library", NULL);
    if (g_mkdir_with_parents(path, 0755) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_INTERNAL, "cannot create %s: %s", path,
                    g_strerror(errno));
        return FALSE;
    }
    /* An earlier installation may hold a share with the same name or path
     * (the clash the upgrade guide warns about): keep theirs, skip ours. */
    {
        g_autoptr(GError) local = NULL;
        if (!dv_core_check_unique(engine, &dv_table_library_shares, "name", name, NULL, "name",
                                  "library share", &local) ||
            !dv_core_check_unique(engine, &dv_table_library_shares, "path", path, NULL, "path",
                                  "library share", &local)) {
            if (g_error_matches(local, DV_ERROR, DV_ERROR_CONFLICT)) {
                g_warning("default library share not created: %s", local->message);
                return TRUE;
            }
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
    }
    id = g_uuid_string_random();
    rec = json_object_new();
    json_object_set_string_member(rec, "id", id);
    json_object_set_string_member(rec, "name", name);
    json_object_set_string_member(rec, "path", path);
    json_object_set_null_member(rec, "host_id");
    json_object_set_null_member(rec, "pool_name");
    json_object_set_boolean_member(rec, "is_default", TRUE);
    json_object_set_string_member(rec, "description", "Default library share made on first start");
    json_object_set_int_member(rec, "created_at", dv_store_now());
    return dv_store_insert(dv_core(engine)->store, &dv_table_library_shares, rec, error);
}
