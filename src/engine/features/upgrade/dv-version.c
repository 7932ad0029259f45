#define G_LOG_DOMAIN "DvVersion"

/* The version model; see dv-version.h and docs/UPGRADE.md. */

#include "dv-config.h"
#include "dv-error.h"
#include "dv-store.h"
#include "dv-version.h"

#include <stdlib.h>

/* Released versions, oldest first.  The schema of the last entry (this
 * build) is filled in from the migrations it carries. */
static DvRelease dv_releases[] = {
    { "0.1.0", 3 }, /* foundation, secrets and keys, servers */
    { "0.2.0", 6 }, /* machine catalogs, upgrade reports */
    { DV_VERSION, 0 },
};

static const DvRelease *dv_test_releases;
static guint dv_test_n_releases;

void
dv_version_set_releases_for_test(const DvRelease *releases, guint n)
{
    dv_test_releases = releases;
    dv_test_n_releases = n;
}

const DvRelease *
dv_version_get_releases(guint *ret_n)
{
    guint n = G_N_ELEMENTS(dv_releases);
    if (dv_test_releases != NULL) {
        if (ret_n != NULL)
            *ret_n = dv_test_n_releases;
        return dv_test_releases;
    }
    if (dv_releases[n - 1].schema == 0)
        dv_releases[n - 1].schema = dv_store_get_known_version();
    if (ret_n != NULL)
        *ret_n = n;
    return dv_releases;
}

int
dv_version_release_index(const char *version)
{
    guint n = 0;
    const DvRelease *r = dv_version_get_releases(&n);
    for (guint i = 0; version != NULL && i < n; i++)
        if (g_strcmp0(r[i].version, version) == 0)
            return (int)i;
    return -1;
}

int
dv_version_compare(const char *a, const char *b)
{
    g_auto(GStrv) pa = g_strsplit(a != NULL ? a : "", ".", 4);
    g_auto(GStrv) pb = g_strsplit(b != NULL ? b : "", ".", 4);

    for (guint i = 0; i < 3; i++) {
        guint64 va = 0, vb = 0;
        if (pa[0] != NULL && i < g_strv_length(pa))
            g_ascii_string_to_unsigned(pa[i], 10, 0, G_MAXUINT32, &va, NULL);
        if (pb[0] != NULL && i < g_strv_length(pb))
            g_ascii_string_to_unsigned(pb[i], 10, 0, G_MAXUINT32, &vb, NULL);
        if (va != vb)
            return va < vb ? -1 : 1;
    }
    return 0;
}

const char *
dv_version_for_schema(guint schema)
{
    guint n = 0;
    const DvRelease *r = dv_version_get_releases(&n);
    const char *found = NULL;
    for (guint i = 0; i < n; i++)
        if (r[i].schema <= schema)
            found = r[i].version;
    return found;
}

gboolean
dv_version_steps(const char *a, const char *b, int *ret_steps)
{
    int ia = dv_version_release_index(a);
    int ib = dv_version_release_index(b);
    if (ia < 0 || ib < 0)
        return FALSE;
    *ret_steps = ib - ia;
    return TRUE;
}

char *
dv_version_order(const char *from, const char *to)
{
    int ia = dv_version_release_index(from);
    int ib = dv_version_release_index(to);
    guint n = 0;
    const DvRelease *r = dv_version_get_releases(&n);
    g_autoptr(GString) s = g_string_new(NULL);

    if (ia < 0 || ib < 0)
        return NULL;
    for (int i = MIN(ia, ib); i <= MAX(ia, ib); i++)
        g_string_append_printf(s, "%s%s", s->len > 0 ? " -> " : "", r[i].version);
    return g_string_free(g_steal_pointer(&s), FALSE);
}

gboolean
dv_version_check_skew(const char *mine, const char *other, const char *other_where, GError **error)
{
    int steps = 0;
    g_autofree char *order = NULL;

    if (g_strcmp0(mine, other) == 0)
        return TRUE;
    if (!dv_version_steps(mine, other, &steps)) {
        if (dv_version_release_index(other) < 0 && dv_version_compare(other, mine) > 0)
            return TRUE; /* newer than this build knows: the newer one judges */
        g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT,
                    "%s runs Drover %s, which is not a release Drover %s knows; servers of one "
                    "database must be released versions at most one step apart",
                    other_where, other, mine);
        return FALSE;
    }
    if (ABS(steps) <= 1)
        return TRUE;
    order = steps > 0 ? dv_version_order(mine, other) : dv_version_order(other, mine);
    g_set_error(error, DV_ERROR, DV_ERROR_CONFLICT,
                "%s runs Drover %s and this is Drover %s: %d version steps apart, and servers of "
                "one database may be at most one step apart; upgrade one step at a time, in this "
                "order: %s",
                other_where, other, mine, ABS(steps), order);
    return FALSE;
}
