#define G_LOG_DOMAIN "DvBench"

#include "dv-bench.h"

#include <string.h>

double
dv_bench_now_s(void)
{
    return (double)g_get_monotonic_time() / G_USEC_PER_SEC;
}

gboolean
dv_bench_run_argv(const char *const *argv, gboolean may_fail)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    int status = 0;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
                      &status, &error))
        g_error("cannot run %s: %s", argv[0], error->message);
    if (!g_spawn_check_wait_status(status, &error)) {
        if (may_fail)
            return FALSE;
        g_error("%s failed: %s\n%s%s", argv[0], error->message, out, err);
    }
    return TRUE;
}

char *
dv_bench_load_average(void)
{
    g_autofree char *text = NULL;
    if (!g_file_get_contents("/proc/loadavg", &text, NULL, NULL))
        return g_strdup("?");
    return g_strndup(text, strcspn(text, " "));
}

/* The names virsh lists with @what ("list", "pool-list") that start with
 * @prefix. */
static GPtrArray *
dv_bench_names(const char *what, const char *prefix)
{
    const char *const argv[] = { "virsh", "-q",    "-c",     DV_BENCH_SYSTEM_URI,
                                 what,    "--all", "--name", NULL };
    g_autofree char *out = NULL;
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);

    if (g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, NULL, NULL,
                     NULL)) {
        g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
        for (guint i = 0; lines[i] != NULL; i++) {
            const char *name = g_strstrip(lines[i]);
            if (g_str_has_prefix(name, prefix))
                g_ptr_array_add(names, g_strdup(name));
        }
    }
    return names;
}

void
dv_bench_cleanup_host(const char *prefix, const char *pool, const char *dir)
{
    g_autoptr(GPtrArray) doms = dv_bench_names("list", prefix);
    g_autoptr(GPtrArray) pools = dv_bench_names("pool-list", prefix);

    for (guint i = 0; i < doms->len; i++) {
        const char *name = g_ptr_array_index(doms, i);
        const char *const d[] = { "virsh", "-q", "-c", DV_BENCH_SYSTEM_URI, "destroy", name, NULL };
        const char *const u[] = { "virsh",    "-q", "-c",      DV_BENCH_SYSTEM_URI,
                                  "undefine", name, "--nvram", "--snapshots-metadata",
                                  NULL };
        dv_bench_run_argv(d, TRUE);
        dv_bench_run_argv(u, TRUE);
    }
    for (guint i = 0; i < pools->len; i++) {
        const char *name = g_ptr_array_index(pools, i);
        const char *const d[] = { "virsh",        "-q", "-c", DV_BENCH_SYSTEM_URI,
                                  "pool-destroy", name, NULL };
        const char *const u[] = { "virsh",         "-q", "-c", DV_BENCH_SYSTEM_URI,
                                  "pool-undefine", name, NULL };
        dv_bench_run_argv(d, TRUE);
        if (g_strcmp0(name, pool) != 0)
            dv_bench_run_argv(u, TRUE);
    }
    if (dir != NULL) {
        const char *const rm[] = { "rm", "-rf", "--", dir, NULL };
        dv_bench_run_argv(rm, TRUE);
    }
}
