/* The version model (docs/UPGRADE.md): product versions, the schema each
 * released version shipped with, and the skew rules between the schema,
 * servers and the CLI.
 *
 * The table of released versions is in dv-version.c.  The last entry is
 * this build (DV_VERSION); its schema is the newest migration this build
 * carries (dv_store_get_known_version()), never a number written here.
 * "One version step" is two adjacent entries of the table. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
    const char *version; /* "0.1.0" */
    guint schema;        /* schema version it shipped with */
} DvRelease;

/* The releases, oldest first (borrowed; the last is this build). */
const DvRelease *dv_version_get_releases(guint *ret_n);

/* Index of @version in the table, or -1 when it is not a release this build
 * knows (a newer one, or a development build). */
int dv_version_release_index(const char *version);

/* Compares dotted decimal versions ("0.10.0" > "0.9.1"); unparsable parts
 * count as 0. */
int dv_version_compare(const char *a, const char *b);

/* The newest release whose schema is at most @schema (what a database at
 * that schema was last used by), or NULL for schema 0. */
const char *dv_version_for_schema(guint schema);

/* Steps between two releases (b - a); FALSE when either is unknown. */
gboolean dv_version_steps(const char *a, const char *b, int *ret_steps);

/* The rolling order from @from to @to ("0.1.0 -> 0.2.0 -> 0.3.0"), owned;
 * NULL when either is unknown. */
char *dv_version_order(const char *from, const char *to);

/* Whether a server of @other may serve one database together with one of
 * @mine: one step apart at most.  Fails with DV_ERROR_CONFLICT naming both
 * versions and the order to follow.  A version this build does not know
 * that is newer than it passes: the newer server applies the rule. */
gboolean dv_version_check_skew(const char *mine, const char *other, const char *other_where,
                               GError **error);

/* Tests only: use @releases (borrowed, @n entries, oldest first) instead of
 * the built-in table; NULL restores it.  Process-wide. */
void dv_version_set_releases_for_test(const DvRelease *releases, guint n);

G_END_DECLS
