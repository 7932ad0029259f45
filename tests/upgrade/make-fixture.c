#define G_LOG_DOMAIN "DvMakeFixture"
/* make-fixture DIR [SCHEMA]: writes an old installation into DIR, made by
 * this code at SCHEMA (default: the oldest release's), for root on the
 * machine id in DIR/machine-id:
 *
 *   DIR/machine-id      the "machine" the host key file is bound to
 *   DIR/drover.db       the database (SQLite), with secrets under k1 and k2
 *   DIR/keys/host.key   the host key file (uid 0, root)
 *   DIR/recovery.key    the recovery key every key version is sealed to
 *
 * tests/upgrade/fixtures/schema-NNNN/ are its output, committed; the
 * upgrade test checks they match what this makes (docs/UPGRADE.md). */

#include "dv-error.h"
#include "dv-upgrade-fixture.h"

#include <glib/gstdio.h>
#include <stdio.h>

int
main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *machine = NULL;
    g_autofree char *recovery = NULL;
    guint64 schema = 0;
    DvFixtureOptions o = { 0 };

    if (argc < 2 || argc > 3 ||
        (argc == 3 && !g_ascii_string_to_unsigned(argv[2], 10, 1, 1000, &schema, NULL))) {
        fprintf(stderr, "usage: make-fixture DIR [SCHEMA]\n");
        return 2;
    }
    if (g_file_test(argv[1], G_FILE_TEST_EXISTS)) {
        fprintf(stderr, "make-fixture: %s exists; remove it first\n", argv[1]);
        return 2;
    }
    if (g_mkdir_with_parents(argv[1], 0700) != 0) {
        fprintf(stderr, "make-fixture: cannot create %s\n", argv[1]);
        return 1;
    }
    machine = g_build_filename(argv[1], "machine-id", NULL);
    recovery = g_build_filename(argv[1], "recovery.key", NULL);
    if (!g_file_set_contents(machine, "f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1\n", -1, &error)) {
        fprintf(stderr, "make-fixture: %s\n", error->message);
        return 1;
    }
    o.state_dir = argv[1];
    o.machine_id_path = machine;
    o.schema = (guint)schema;
    o.rotate = TRUE;
    o.recovery_key_out = recovery;
    if (!dv_fixture_make(&o, &error)) {
        fprintf(stderr, "make-fixture: %s\n", error->message);
        return 1;
    }
    printf("old installation at schema %u written to %s\n",
           o.schema != 0 ? o.schema : dv_fixture_oldest_schema(), argv[1]);
    return 0;
}
