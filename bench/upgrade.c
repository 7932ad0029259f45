#define G_LOG_DOMAIN "DvBenchUpgrade"
/* bench/upgrade: drover-setup upgrade --plan and upgrade on a database of
 * 1000 hosts, 25,000 VMs and 100,000 secrets at the oldest released schema
 * (docs/BENCHMARKS.md).  The upgrade runs on another "machine" with the
 * recovery key, so every key is re-wrapped and every secret verified.
 * Targets on 2 cores: plan <= 5 s, upgrade <= 30 s. */

#include "dv-config.h"
#include "dv-json.h"
#include "dv-test-util.h"
#include "dv-upgrade-fixture.h"

#include <glib/gstdio.h>
#include <stdio.h>

#define PLAN_TARGET_S 5.0
#define UPGRADE_TARGET_S 30.0

static gint opt_hosts = 1000;
static gint opt_vms = 25000;
static gint opt_n_values = 100000;
static gboolean opt_keep;
static gboolean opt_strict;

static const GOptionEntry entries[] = {
    { "hosts", 0, 0, G_OPTION_ARG_INT, &opt_hosts, "Hosts (default 1000)", "N" },
    { "vms", 0, 0, G_OPTION_ARG_INT, &opt_vms, "VMs (default 25000)", "N" },
    { "secrets", 0, 0, G_OPTION_ARG_INT, &opt_n_values, "Secrets (default 100000)", "N" },
    { "keep", 0, 0, G_OPTION_ARG_NONE, &opt_keep, "Keep the state directory", NULL },
    { "strict", 0, 0, G_OPTION_ARG_NONE, &opt_strict, "Exit 1 when a target is missed", NULL },
    { NULL },
};

/* Runs drover-setup; returns seconds, the exit status in @ret_rc, stdout in @ret_out. */
static double
timed_setup(const char *const *args, int *ret_rc, char **ret_out)
{
    g_autoptr(GPtrArray) argv = dv_test_setup_argv_new(args);
    g_autofree char *err = NULL;
    gint64 t0;

    t0 = g_get_monotonic_time();
    *ret_rc = dv_test_spawn((const char *const *)argv->pdata, NULL, ret_out, &err);
    if (*ret_rc != 0)
        fprintf(stderr, "%s", err);
    return (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
}

int
main(int argc, char **argv)
{
    g_autoptr(GOptionContext) ctx = g_option_context_new("- time drover-setup upgrade --plan and upgrade");
    g_autoptr(GError) error = NULL;
    g_autofree char *tmp = NULL;
    g_autofree char *state = NULL;
    g_autofree char *machine_a = NULL;
    g_autofree char *machine_b = NULL;
    g_autofree char *recovery = NULL;
    g_autofree char *plan_out = NULL;
    g_autofree char *up_out = NULL;
    g_autoptr(JsonNode) plan = NULL;
    g_autoptr(JsonNode) report = NULL;
    DvFixtureOptions fo = { 0 };
    double t_make, t_plan, t_up;
    int rc_plan, rc_up;
    gint64 t0;
    gboolean ok;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "%s\n", error->message);
        return 2;
    }
    tmp = g_dir_make_tmp("drover-bench-upgrade-XXXXXX", &error);
    g_assert_no_error(error);
    state = g_build_filename(tmp, "state", NULL);
    machine_a = g_build_filename(tmp, "machine-a", NULL);
    machine_b = g_build_filename(tmp, "machine-b", NULL);
    recovery = g_build_filename(tmp, "recovery.key", NULL);
    g_assert_true(g_file_set_contents(machine_a, "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1\n", -1, NULL));
    g_assert_true(g_file_set_contents(machine_b, "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2\n", -1, NULL));

    fo.state_dir = state;
    fo.machine_id_path = machine_a;
    fo.rotate = TRUE;
    fo.recovery_key_out = recovery;
    fo.n_hosts = (guint)opt_hosts;
    fo.n_vms = (guint)opt_vms;
    fo.n_secrets = (guint)opt_n_values;
    t0 = g_get_monotonic_time();
    if (!dv_fixture_make(&fo, &error))
        g_error("making the old installation: %s", error->message);
    t_make = (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
    printf("old installation (schema %u): %d hosts, %d VMs, %d secrets made in %.1f s\n",
           dv_fixture_oldest_schema(), opt_hosts, opt_vms, opt_n_values + (int)dv_fixture_n_secrets(), t_make);

    {
        const char *args[] = { "upgrade", "--plan", "-o", "json", "--state-dir", state, "--machine-id-file", machine_b,
                               "--service-account", g_get_user_name(), "--recovery-key", recovery, "--library-share",
                               "use-default", NULL };
        t_plan = timed_setup(args, &rc_plan, &plan_out);
    }
    {
        const char *args[] = { "upgrade", "-o", "json", "--state-dir", state, "--machine-id-file", machine_b,
                               "--service-account", g_get_user_name(), "--recovery-key", recovery, "--library-share",
                               "use-default", NULL };
        t_up = timed_setup(args, &rc_up, &up_out);
    }
    plan = json_from_string(plan_out, NULL);
    report = json_from_string(up_out, NULL);
    if (rc_plan == 0 && plan != NULL) {
        JsonObject *s = json_object_get_object_member(json_node_get_object(plan), "secrets");
        printf("plan:    %6.2f s  (target %.0f s, %.2f of it): %" G_GINT64_FORMAT " secrets, %" G_GINT64_FORMAT
               " to re-wrap\n",
               t_plan, PLAN_TARGET_S, t_plan / PLAN_TARGET_S, dv_json_get_int(s, "total", 0),
               dv_json_get_int(s, "rewrap", 0));
    } else {
        printf("plan:    FAILED (exit %d)\n", rc_plan);
    }
    if (rc_up == 0 && report != NULL) {
        JsonObject *r = json_node_get_object(report);
        JsonObject *t = json_object_get_object_member(r, "timings_ms");
        printf("upgrade: %6.2f s  (target %.0f s, %.2f of it): plan %" G_GINT64_FORMAT " ms, backup %" G_GINT64_FORMAT
               " ms, migration+checks %" G_GINT64_FORMAT " ms, re-wrap %" G_GINT64_FORMAT " ms, verification %" G_GINT64_FORMAT
               " ms\n",
               t_up, UPGRADE_TARGET_S, t_up / UPGRADE_TARGET_S, dv_json_get_int(t, "plan", 0),
               dv_json_get_int(t, "backup", 0), dv_json_get_int(t, "migrate", 0), dv_json_get_int(t, "rewrap", 0),
               dv_json_get_int(t, "verify", 0));
    } else {
        printf("upgrade: FAILED (exit %d)\n", rc_up);
    }
    ok = rc_plan == 0 && rc_up == 0 && t_plan <= PLAN_TARGET_S && t_up <= UPGRADE_TARGET_S;
    printf("%s\n", ok ? "both within their targets" : "a target was missed");
    if (opt_keep)
        printf("kept %s\n", tmp);
    else
        dv_test_rm_rf(tmp);
    return opt_strict && !ok ? 1 : 0;
}
