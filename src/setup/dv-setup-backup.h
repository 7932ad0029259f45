/* drover-setup backup / restore: the database, the key material that reads
 * it and the config files in one archive (tar + zstd) with a manifest.
 * See docs/BACKUP.md. */
#pragma once

#include <glib.h>
#include <sys/statvfs.h>

G_BEGIN_DECLS

typedef struct {
    const char *state_dir;       /* required */
    const char *database;        /* NULL: <state_dir>/drover.db */
    const char *etc_dir;         /* NULL: /etc/drover (droverd.conf) */
    const char *machine_id_path; /* restore's key check; NULL: /etc/machine-id */
    gboolean force;              /* backup: without key files; restore: over a mismatch */
} DvSetupBackupOptions;

/* Writes the archive @out_path (mode 0600; an existing path is refused;
 * nothing is left at @out_path on failure).  Prints a summary. */
gboolean dv_setup_backup(const DvSetupBackupOptions *opts, const char *out_path, GError **error);

/* Verifies @in_path against its manifest and restores it (see
 * docs/BACKUP.md for the refusals).  Prints what it did. */
gboolean dv_setup_restore(const DvSetupBackupOptions *opts, const char *in_path, GError **error);

/* Internal, for tests: fails with DV_ERROR_UNAVAILABLE ("not enough
 * space ...") when @needed bytes do not fit in what @st says is available
 * to this user in @dir. */
gboolean dv_setup_backup_check_space(const char *dir, guint64 needed, const struct statvfs *st,
                                     GError **error);

G_END_DECLS
