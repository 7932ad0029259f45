#define G_LOG_DOMAIN "DvCli"

/* Tables, sizes, key/value views and the progress bar, rendered to strings. */

#include <string.h>

#include "dv-cli-output.h"
#include "dv-json.h"

static JsonObject *
parse_object(const char *text)
{
    g_autoptr(GError) error = NULL;
    JsonObject *obj = dv_json_parse_object(text, strlen(text), DV_JSON_MAX_BODY, DV_JSON_MAX_DEPTH, &error);
    g_assert_no_error(error);
    return obj;
}

static void
test_table_alignment(void)
{
    static const char *const headers[] = { "NAME", "STATE", "ID" };
    static const char *const row1[] = { "web1", "running", "1" };
    static const char *const row2[] = { "wéb-longer", NULL, "" };
    g_autoptr(DvCliTable) table = dv_cli_table_new(3, headers);
    g_autofree char *text = NULL;

    dv_cli_table_add_row(table, row1);
    dv_cli_table_add_row(table, row2);
    g_assert_cmpuint(dv_cli_table_get_n_rows(table), ==, 2);
    text = dv_cli_table_render(table, FALSE);
    /* Widths count characters, "é" is one; a NULL cell shows "-"; an
     * empty last cell leaves no trailing blanks. */
    g_assert_cmpstr(text, ==,
                    "NAME        STATE    ID\n"
                    "web1        running  1\n"
                    "wéb-longer  -\n");
}

static void
test_table_color(void)
{
    static const char *const headers[] = { "A", "B" };
    static const char *const row[] = { "x\ty", "z" };
    g_autoptr(DvCliTable) table = dv_cli_table_new(2, headers);
    g_autofree char *text = NULL;

    dv_cli_table_add_row(table, row);
    text = dv_cli_table_render(table, TRUE);
    g_assert_cmpstr(text, ==, "\033[1mA    B\033[0m\nx y  z\n");
}

static void
test_sizes(void)
{
    static const struct {
        gint64 value;
        const char *mib;
        const char *bytes;
    } cases[] = {
        { 0, "0 MiB", "0 B" },
        { 512, "512 MiB", "512 B" },
        { 1023, "1023 MiB", "1023 B" },
        { 1024, "1 GiB", "1 KiB" },
        { 1536, "1.5 GiB", "1.5 KiB" },
        { 10240, "10 GiB", "10 KiB" },
        { 1048576, "1 TiB", "1 MiB" },
        { G_GINT64_CONSTANT(1610612736), "1.5 PiB", "1.5 GiB" },
        { -1, "-", "-" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *mib = dv_cli_format_size_mib(cases[i].value);
        g_autofree char *bytes = dv_cli_format_size_bytes(cases[i].value);
        g_assert_cmpstr(mib, ==, cases[i].mib);
        g_assert_cmpstr(bytes, ==, cases[i].bytes);
    }
}

static void
test_progress_bar(void)
{
    g_autofree char *half = dv_cli_progress_bar_render(45, "create volumes", 20);
    g_autofree char *zero = dv_cli_progress_bar_render(0, NULL, 10);
    g_autofree char *full = dv_cli_progress_bar_render(100, "done", 10);
    g_autofree char *over = dv_cli_progress_bar_render(250, "", 4);
    g_autofree char *under = dv_cli_progress_bar_render(-5, "x", 4);

    g_assert_cmpstr(half, ==, "[#########...........]  45%  create volumes");
    g_assert_cmpstr(zero, ==, "[..........]   0%");
    g_assert_cmpstr(full, ==, "[##########] 100%  done");
    g_assert_cmpstr(over, ==, "[####] 100%");
    g_assert_cmpstr(under, ==, "[....]   0%  x");
}

static void
test_progress_lines(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *stream = open_memstream(&buf, &len);
    g_autoptr(JsonObject) a = parse_object("{\"state\": \"running\", \"progress\": 10, \"current_step\": \"create volumes\"}");
    g_autoptr(JsonObject) b = parse_object("{\"state\": \"running\", \"progress\": 30, \"current_step\": \"create volumes\"}");
    g_autoptr(JsonObject) c = parse_object("{\"state\": \"succeeded\", \"progress\": 100, \"current_step\": null}");
    DvCliProgress *progress = dv_cli_progress_new(stream, FALSE);

    /* Not a terminal: one line per step change, no bar. */
    dv_cli_progress_update(progress, a);
    dv_cli_progress_update(progress, b);
    dv_cli_progress_update(progress, c);
    dv_cli_progress_free(progress);
    fclose(stream);
    g_assert_cmpstr(buf, ==, " 10%  create volumes\n100%  succeeded\n");
    free(buf);

    buf = NULL;
    stream = open_memstream(&buf, &len);
    progress = dv_cli_progress_new(stream, TRUE);
    dv_cli_progress_update(progress, a);
    dv_cli_progress_finish(progress);
    dv_cli_progress_free(progress);
    fclose(stream);
    g_assert_true(g_str_has_prefix(buf, "\r[###"));
    g_assert_true(g_str_has_suffix(buf, "  10%  create volumes\033[K\n"));
    free(buf);

    /* A job that fails in the step it showed says so. */
    buf = NULL;
    stream = open_memstream(&buf, &len);
    progress = dv_cli_progress_new(stream, FALSE);
    {
        g_autoptr(JsonObject) run = parse_object("{\"state\": \"running\", \"progress\": 0, \"current_step\": \"connect\"}");
        g_autoptr(JsonObject) fail = parse_object("{\"state\": \"failed\", \"progress\": 0, \"current_step\": \"connect\"}");
        dv_cli_progress_update(progress, run);
        dv_cli_progress_update(progress, fail);
    }
    dv_cli_progress_free(progress);
    fclose(stream);
    g_assert_cmpstr(buf, ==, "  0%  connect\n  0%  connect (failed)\n");
    free(buf);

    /* A recorded sequence from a job followed across a reconnect: the
     * stream replays the last event, a poll answers with an older copy,
     * and a resumed job reports its step again.  Nothing goes backwards
     * and no step is printed twice. */
    {
        static const char *const events[] = {
            "{\"state\": \"queued\", \"progress\": 0, \"current_step\": null}",
            "{\"state\": \"running\", \"progress\": 5, \"current_step\": \"consolidate\"}",
            "{\"state\": \"running\", \"progress\": 40, \"current_step\": \"machines\"}",
            "{\"state\": \"running\", \"progress\": 40, \"current_step\": \"machines\"}",
            "{\"state\": \"running\", \"progress\": 20, \"current_step\": \"consolidate\"}",
            "{\"state\": \"running\", \"progress\": 35, \"current_step\": \"record\"}",
            "{\"state\": \"queued\", \"progress\": 0, \"current_step\": null}",
            "{\"state\": \"running\", \"progress\": 90, \"current_step\": \"machines\"}",
            "{\"state\": \"succeeded\", \"progress\": 100, \"current_step\": \"record\"}",
            "{\"state\": \"succeeded\", \"progress\": 100, \"current_step\": null}",
            "{\"state\": \"succeeded\", \"progress\": 100, \"current_step\": null}",
        };

        buf = NULL;
        stream = open_memstream(&buf, &len);
        progress = dv_cli_progress_new(stream, FALSE);
        for (gsize i = 0; i < G_N_ELEMENTS(events); i++) {
            g_autoptr(JsonObject) ev = parse_object(events[i]);
            dv_cli_progress_update(progress, ev);
        }
        dv_cli_progress_free(progress);
        fclose(stream);
        g_assert_cmpstr(buf, ==,
                        "  0%  queued\n"
                        "  5%  consolidate\n"
                        " 40%  machines\n"
                        " 40%  record\n"
                        "100%  succeeded\n");
        free(buf);

        /* On a terminal every redraw is at least the last percentage and
         * never an older step's name. */
        buf = NULL;
        stream = open_memstream(&buf, &len);
        progress = dv_cli_progress_new(stream, TRUE);
        for (gsize i = 0; i < G_N_ELEMENTS(events); i++) {
            g_autoptr(JsonObject) ev = parse_object(events[i]);
            dv_cli_progress_update(progress, ev);
        }
        dv_cli_progress_free(progress);
        fclose(stream);
        {
            g_auto(GStrv) draws = g_strsplit(buf, "\r", -1);
            const char *const labels[] = { "queued", "consolidate", "machines", "machines", "machines",
                                           "record",  "record",      "record",   "record",   "succeeded",
                                           "succeeded" };
            const int percents[] = { 0, 5, 40, 40, 40, 40, 40, 90, 100, 100, 100 };
            g_assert_cmpuint(g_strv_length(draws), ==, G_N_ELEMENTS(events) + 1);
            for (gsize i = 0; i < G_N_ELEMENTS(events); i++) {
                g_autofree char *want = g_strdup_printf("%3d%%  %s\033[K", percents[i], labels[i]);
                g_assert_nonnull(strstr(draws[i + 1], want));
            }
        }
        free(buf);
    }
}

static void
test_values(void)
{
    g_autoptr(JsonObject) obj = parse_object(
        "{\"name\": \"web1\", \"host\": {\"id\": \"h1\", \"name\": \"kvm1\"}, \"memory_mib\": 2048,"
        " \"rights\": [\"read\", \"write\"], \"gone\": null, \"ok\": true,"
        " \"limits\": {\"daemon\": {\"max_workers\": 20}}}");
    static const struct {
        const char *path;
        DvCliColumnKind kind;
        const char *want;
    } cases[] = {
        { "name", DV_CLI_COL_TEXT, "web1" },
        { "host_name|host", DV_CLI_COL_TEXT, "kvm1" },
        { "gone|name", DV_CLI_COL_TEXT, "web1" },
        { "memory_mib", DV_CLI_COL_MIB, "2 GiB" },
        { "memory_mib", DV_CLI_COL_TEXT, "2048" },
        { "rights", DV_CLI_COL_TEXT, "read, write" },
        { "ok", DV_CLI_COL_TEXT, "yes" },
        { "gone", DV_CLI_COL_TEXT, "-" },
        { "missing", DV_CLI_COL_TEXT, "-" },
        { "limits.daemon.max_workers", DV_CLI_COL_TEXT, "20" },
        { "limits.daemon.nope", DV_CLI_COL_TEXT, "-" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *got = dv_cli_value_to_string(obj, cases[i].path, cases[i].kind);
        g_assert_cmpstr(got, ==, cases[i].want);
    }
}

static void
test_items(void)
{
    static const DvCliColumn columns[] = {
        { "NAME", "name" },
        { "MEMORY", "memory_mib", DV_CLI_COL_MIB },
        { NULL },
    };
    g_autoptr(JsonObject) page = parse_object(
        "{\"items\": [{\"name\": \"a\", \"memory_mib\": 512}, {\"name\": \"bigger\", \"memory_mib\": 4096}],"
        " \"next_cursor\": null}");
    g_autofree char *text = dv_cli_items_render(json_object_get_array_member(page, "items"), columns, FALSE);

    g_assert_cmpstr(text, ==,
                    "NAME    MEMORY\n"
                    "a       512 MiB\n"
                    "bigger  4 GiB\n");
}

static void
test_object(void)
{
    static const char *const skip[] = { "secret", NULL };
    g_autoptr(JsonObject) obj = parse_object(
        "{\"name\": \"kvm1\", \"facts\": {\"cpus\": 8}, \"rights\": [\"a\", \"b\"], \"secret\": \"x\","
        " \"steps\": [{\"name\": \"s1\"}]}");
    g_autofree char *text = dv_cli_object_render(obj, skip);

    g_assert_cmpstr(text, ==,
                    "name:           kvm1\n"
                    "facts.cpus:     8\n"
                    "rights:         a, b\n"
                    "steps[0].name:  s1\n");
}

/* Secret fields come as {"set", "key_id", "readable", "reason"}: one cell,
 * one line, never the three members. */
static void
test_secret_descriptors(void)
{
    static const DvCliColumn columns[] = {
        { "NAME", "name" },
        { "PASSWORD", "password" },
        { "SSH KEY", "ssh_private_key" },
        { NULL },
    };
    g_autoptr(JsonObject) page = parse_object(
        "{\"items\": ["
        "{\"name\": \"a\", \"password\": {\"set\": true, \"key_id\": \"k1\", \"readable\": true},"
        " \"ssh_private_key\": {\"set\": false}},"
        "{\"name\": \"b\", \"password\": {\"set\": true, \"key_id\": \"k2\", \"readable\": false,"
        " \"reason\": \"key k2 cannot be opened here: machine-id differs\"},"
        " \"ssh_private_key\": null},"
        "{\"name\": \"c\", \"password\": {\"set\": true}}"
        "], \"next_cursor\": null}");
    g_autoptr(JsonObject) shown = parse_object(
        "{\"name\": \"db\", \"admin_password\": {\"set\": true, \"key_id\": \"k1\", \"readable\": true},"
        " \"product_key\": {\"set\": false},"
        " \"domain_join_password\": {\"set\": true, \"key_id\": \"k1\", \"readable\": false,"
        " \"reason\": \"host key\\nfile missing\"},"
        " \"facts\": {\"set\": true, \"cpus\": 8}}");
    g_autofree char *table = dv_cli_items_render(json_object_get_array_member(page, "items"), columns, FALSE);
    g_autofree char *text = dv_cli_object_render(shown, NULL);

    const char *unreadable = "set, UNREADABLE: key k2 cannot be opened here: machine-id differs";
    int w = (int)strlen(unreadable);
    g_autofree char *want = g_strdup_printf("NAME  %-*s  SSH KEY\n"
                                            "a     %-*s  -\n"
                                            "b     %-*s  -\n"
                                            "c     %-*s  -\n",
                                            w, "PASSWORD", w, "set (k1)", w, unreadable, w, "set");

    g_assert_cmpstr(table, ==, want);
    /* An object that merely has a "set" member is not a descriptor. */
    g_assert_cmpstr(text, ==,
                    "name:                  db\n"
                    "admin_password:        set (k1)\n"
                    "product_key:           -\n"
                    "domain_join_password:  set, UNREADABLE: host key file missing\n"
                    "facts.set:             yes\n"
                    "facts.cpus:            8\n");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/drover/cli/output/table-alignment", test_table_alignment);
    g_test_add_func("/drover/cli/output/table-color", test_table_color);
    g_test_add_func("/drover/cli/output/sizes", test_sizes);
    g_test_add_func("/drover/cli/output/progress-bar", test_progress_bar);
    g_test_add_func("/drover/cli/output/progress-lines", test_progress_lines);
    g_test_add_func("/drover/cli/output/values", test_values);
    g_test_add_func("/drover/cli/output/items", test_items);
    g_test_add_func("/drover/cli/output/object", test_object);
    g_test_add_func("/drover/cli/output/secret-descriptors", test_secret_descriptors);
    return g_test_run();
}
