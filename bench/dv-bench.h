#pragma once

/* What the benchmarks that drive qemu:///system share. */

#include <glib.h>

G_BEGIN_DECLS

#define DV_BENCH_SYSTEM_URI "qemu:///system"

/* Monotonic seconds. */
double dv_bench_now_s(void);
/* Runs @argv (searched in PATH); ends the benchmark with its output when it
 * fails, unless @may_fail (then FALSE). */
gboolean dv_bench_run_argv(const char *const *argv, gboolean may_fail);
/* The 1-minute load average, "?" when unknown (owned). */
char *dv_bench_load_average(void);
/* Removes every domain named @prefix... (forced off, undefined with its
 * NVRAM and snapshot metadata), every pool named @prefix... (@pool
 * stopped; a transient pool goes with it) and @dir (may be NULL). */
void dv_bench_cleanup_host(const char *prefix, const char *pool, const char *dir);

G_END_DECLS
