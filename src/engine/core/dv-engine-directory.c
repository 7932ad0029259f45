#define G_LOG_DOMAIN "DvEngineDirectory"

/* The directory key protector's local settings: where the directory is and
 * how this server binds to it.  Written by `drover-setup keys directory
 * init` to <state-dir>/directory.conf (mode 0600); the database records only
 * that the protector exists (key_protectors), because each server binds
 * with its own identity. */

#include "dv-core.h"
#include "dv-engine-directory.h"
#include "dv-keys-directory.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <sys/stat.h>

struct _DvDirectorySettings {
    char *uri;
    char *container_dn;
    char *bind_dn;
    char *password_file;
    gboolean sasl_external;
    char *ca_file;
    char *cert_file;
    char *key_file;
};

void
dv_directory_settings_free(DvDirectorySettings *s)
{
    if (s == NULL)
        return;
    g_free(s->uri);
    g_free(s->container_dn);
    g_free(s->bind_dn);
    g_free(s->password_file);
    g_free(s->ca_file);
    g_free(s->cert_file);
    g_free(s->key_file);
    g_free(s);
}

DvDirectorySettings *
dv_directory_settings_new(const char *uri, const char *container_dn, const char *bind_dn,
                          const char *password_file, gboolean sasl_external, const char *ca_file,
                          const char *cert_file, const char *key_file)
{
    DvDirectorySettings *s = g_new0(DvDirectorySettings, 1);
    s->uri = g_strdup(uri);
    s->container_dn = g_strdup(container_dn);
    s->bind_dn = g_strdup(bind_dn);
    s->password_file = g_strdup(password_file);
    s->sasl_external = sasl_external;
    s->ca_file = g_strdup(ca_file);
    s->cert_file = g_strdup(cert_file);
    s->key_file = g_strdup(key_file);
    return s;
}

char *
dv_directory_settings_path(const char *state_dir)
{
    return g_build_filename(state_dir, "directory.conf", NULL);
}

DvDirectorySettings *
dv_directory_settings_load(const char *path, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    DvDirectorySettings *s;

    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, error)) {
        dv_error_convert(error);
        g_prefix_error(error, "cannot read %s: ", path);
        return NULL;
    }
    s = g_new0(DvDirectorySettings, 1);
    s->uri = g_key_file_get_string(kf, "directory", "uri", NULL);
    s->container_dn = g_key_file_get_string(kf, "directory", "container", NULL);
    s->bind_dn = g_key_file_get_string(kf, "directory", "bind_dn", NULL);
    s->password_file = g_key_file_get_string(kf, "directory", "password_file", NULL);
    s->sasl_external = g_key_file_get_boolean(kf, "directory", "sasl_external", NULL);
    s->ca_file = g_key_file_get_string(kf, "directory", "ca_file", NULL);
    s->cert_file = g_key_file_get_string(kf, "directory", "cert_file", NULL);
    s->key_file = g_key_file_get_string(kf, "directory", "key_file", NULL);
    if (s->uri == NULL || s->container_dn == NULL) {
        dv_directory_settings_free(s);
        g_set_error(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT,
                    "%s: [directory] needs uri and container", path);
        return NULL;
    }
    return s;
}

gboolean
dv_directory_settings_save(DvDirectorySettings *s, const char *path, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *data = NULL;
    gsize len = 0;

    /* Other groups of the file ([login]: directory logins, read by
     * src/engine/auth) are kept; only [directory] is rewritten. */
    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_KEEP_COMMENTS, NULL)) {
        /* No file yet, or unreadable: written anew. */
        g_key_file_unref(kf);
        kf = g_key_file_new();
    }
    g_key_file_remove_group(kf, "directory", NULL);
    g_key_file_set_string(kf, "directory", "uri", s->uri);
    g_key_file_set_string(kf, "directory", "container", s->container_dn);
    if (s->bind_dn != NULL)
        g_key_file_set_string(kf, "directory", "bind_dn", s->bind_dn);
    if (s->password_file != NULL)
        g_key_file_set_string(kf, "directory", "password_file", s->password_file);
    g_key_file_set_boolean(kf, "directory", "sasl_external", s->sasl_external);
    if (s->ca_file != NULL)
        g_key_file_set_string(kf, "directory", "ca_file", s->ca_file);
    if (s->cert_file != NULL)
        g_key_file_set_string(kf, "directory", "cert_file", s->cert_file);
    if (s->key_file != NULL)
        g_key_file_set_string(kf, "directory", "key_file", s->key_file);
    data = g_key_file_to_data(kf, &len, NULL);
    if (!g_file_set_contents_full(path, data, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                  error)) {
        dv_error_convert(error);
        return FALSE;
    }
    return TRUE;
}

DvKeyProtector *
dv_directory_settings_protector(DvDirectorySettings *s, const char *installation_id, GError **error)
{
    DvDirectoryOptions o = { 0 };
    o.conn.uri = s->uri;
    o.conn.bind_dn = s->bind_dn;
    o.conn.password_file = s->password_file;
    o.conn.sasl_external = s->sasl_external;
    o.conn.ca_file = s->ca_file;
    o.conn.cert_file = s->cert_file;
    o.conn.key_file = s->key_file;
    o.container_dn = s->container_dn;
    return dv_directory_protector_new(&o, installation_id, error);
}

JsonObject *
dv_directory_settings_to_config(DvDirectorySettings *s)
{
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "uri", s->uri);
    json_object_set_string_member(o, "container", s->container_dn);
    return o;
}

const char *
dv_directory_settings_get_uri(DvDirectorySettings *s)
{
    return s->uri;
}

const char *
dv_directory_settings_get_container(DvDirectorySettings *s)
{
    return s->container_dn;
}

const char *
dv_directory_settings_get_bind_dn(DvDirectorySettings *s)
{
    return s->bind_dn;
}

DvDirectorySettings *
dv_directory_settings_copy_with(DvDirectorySettings *s, const char *uri, const char *container_dn,
                                const char *bind_dn, const char *password_file, const char *ca_file)
{
    gboolean new_identity = bind_dn != NULL;
    return dv_directory_settings_new(uri != NULL ? uri : s->uri,
                                     container_dn != NULL ? container_dn : s->container_dn,
                                     new_identity ? bind_dn : s->bind_dn,
                                     new_identity ? password_file : s->password_file,
                                     new_identity ? FALSE : s->sasl_external,
                                     ca_file != NULL ? ca_file : s->ca_file,
                                     new_identity ? NULL : s->cert_file,
                                     new_identity ? NULL : s->key_file);
}
