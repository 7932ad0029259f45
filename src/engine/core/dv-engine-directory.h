/* Local settings of the directory key protector (<state-dir>/directory.conf). */
#pragma once

#include <json-glib/json-glib.h>

#include "dv-keys.h"

G_BEGIN_DECLS

typedef struct _DvDirectorySettings DvDirectorySettings;

DvDirectorySettings *dv_directory_settings_new(const char *uri, const char *container_dn,
                                               const char *bind_dn, const char *password_file,
                                               gboolean sasl_external, const char *ca_file,
                                               const char *cert_file, const char *key_file);
void dv_directory_settings_free(DvDirectorySettings *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvDirectorySettings, dv_directory_settings_free)

char *dv_directory_settings_path(const char *state_dir);
DvDirectorySettings *dv_directory_settings_load(const char *path, GError **error);
gboolean dv_directory_settings_save(DvDirectorySettings *s, const char *path, GError **error);
/* A protector binding with these settings (free with dv_key_protector_free). */
DvKeyProtector *dv_directory_settings_protector(DvDirectorySettings *s, const char *installation_id,
                                                GError **error);
/* The non-secret description recorded in key_protectors. */
JsonObject *dv_directory_settings_to_config(DvDirectorySettings *s);
const char *dv_directory_settings_get_uri(DvDirectorySettings *s);
const char *dv_directory_settings_get_container(DvDirectorySettings *s);
const char *dv_directory_settings_get_bind_dn(DvDirectorySettings *s);
/* A copy with the members given here replaced (NULL: kept), for another
 * identity or directory (drover-setup upgrade).  Owned. */
DvDirectorySettings *dv_directory_settings_copy_with(DvDirectorySettings *s, const char *uri,
                                                     const char *container_dn,
                                                     const char *bind_dn,
                                                     const char *password_file,
                                                     const char *ca_file);

G_END_DECLS
