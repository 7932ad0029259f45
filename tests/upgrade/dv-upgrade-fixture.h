/* Old installations for the upgrade tests, the committed fixtures and
 * bench/upgrade: a database made by the current code at an older schema
 * (dv_store_migrate_to()), with keys, protectors and secrets. */
#pragma once

#include "dv-keys.h"
#include "dv-store.h"

G_BEGIN_DECLS

typedef struct {
    const char *state_dir;        /* required; created 0700 */
    const char *database;         /* NULL: <state_dir>/drover.db */
    const char *machine_id_path;  /* the old machine */
    guint schema;                 /* 0: the schema of the oldest release */
    const char *account;          /* the old service account (local); NULL: the caller */
    DvKeyProtector *directory;    /* optional: the directory protector (borrowed) */
    JsonObject *directory_config; /* its key_protectors config */
    const char *recovery_key_out; /* optional: make a recovery key here */
    gboolean rotate;              /* two key versions, secrets under each */
    gboolean queued_job;          /* one job left queued */
    guint n_hosts;                /* bench scale: extra hosts, VMs and secrets */
    guint n_vms;
    guint n_secrets;
} DvFixtureOptions;

/* The small fixed data set (every secret-bearing kind, a host below the
 * default limits, a cluster of mixed hypervisor majors, a library share
 * whose path clashes with the default) plus the scale given. */
gboolean dv_fixture_make(const DvFixtureOptions *o, GError **error);

/* Plaintext of each fixed secret, for tests: "object_type/name/field". */
extern const char *const dv_fixture_secrets[][2];
guint dv_fixture_n_secrets(void);

/* The schema of the oldest release (the first entry of the version table). */
guint dv_fixture_oldest_schema(void);

G_END_DECLS
