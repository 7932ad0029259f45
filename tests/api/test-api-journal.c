#define G_LOG_DOMAIN "DvTestApiJournal"

/* droverd under systemd's journal (issue 17, docs/METRICS.md "Logs"),
 * through a real systemd-journald: tests/services/with-journald starts a
 * private one in a mount namespace of its own, and this test connects
 * droverd's stderr to its stream socket and sets JOURNAL_STREAM as
 * systemd does for a unit with StandardError=journal.
 *
 * /drover/api/journal/fields: with no --log-format droverd notices the
 * journal and sends its lines there natively: a failed job's entry carries
 * DROVER_JOB_ID, DROVER_OP, DROVER_TARGET, DROVER_ACTOR and
 * DROVER_JOB_STATE as fields of their own (journalctl -o json, matched by
 * DROVER_JOB_ID=), at PRIORITY 5 (notice), once; the start-up and stop
 * lines are there too; no entry of droverd holds the first password or the
 * session token; nothing droverd logged fell back to the text stream. */

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "dv-json.h"
#include "dv-test-util.h"

#define JOURNAL_STDOUT "/run/systemd/journal/stdout"

/* A stream to journald as systemd opens one for a service's stderr:
 * the header is identifier, unit, priority, level prefix and the three
 * forwarding switches. */
static int
journal_stream_open(const char *identifier)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    g_autofree char *header = g_strdup_printf("%s\n\n6\n0\n0\n0\n0\n", identifier);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(fd, >=, 0);
    g_strlcpy(addr.sun_path, JOURNAL_STDOUT, sizeof(addr.sun_path));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        g_error("cannot connect to %s: %s", JOURNAL_STDOUT, g_strerror(errno));
    g_assert_cmpint(write(fd, header, strlen(header)), ==, (gssize)strlen(header));
    g_assert_cmpint(shutdown(fd, SHUT_RD), ==, 0);
    return fd;
}

/* The journal's entries matching @match (journalctl -o json), after
 * waiting up to 10 s for at least @at_least of them. */
static GPtrArray *
journal_entries(const char *match, guint at_least)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

    for (;;) {
        const char *argv[] = { "journalctl", "--no-pager", "-o", "json", match, NULL };
        g_autofree char *out = NULL;
        g_autofree char *err = NULL;
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) lines = NULL;
        g_autoptr(GPtrArray) entries =
            g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
        int status = 0;

        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out,
                                   &err, &status, &error));
        g_assert_no_error(error);
        /* journalctl exits 1 with "-- No entries --" on stdout in some
         * versions: the entries counted below decide. */
        lines = g_strsplit(out, "\n", -1);
        for (guint i = 0; lines[i] != NULL; i++) {
            g_autoptr(JsonParser) parser = json_parser_new();
            if (lines[i][0] != '{')
                continue;
            g_assert_true(json_parser_load_from_data(parser, lines[i], -1, NULL));
            g_ptr_array_add(entries,
                            json_object_ref(json_node_get_object(json_parser_get_root(parser))));
        }
        if (entries->len >= at_least || g_get_monotonic_time() > deadline) {
            if (entries->len < at_least)
                g_error("%u journal entries match %s, expected %u (journalctl: %s)", entries->len,
                        match, at_least, err);
            return g_steal_pointer(&entries);
        }
        g_usleep(100 * 1000);
    }
}

static const char *
field(JsonObject *entry, const char *key)
{
    /* A field journalctl shows as a string (not repeated, not binary). */
    JsonNode *n = json_object_get_member(entry, key);
    if (n == NULL || json_node_get_value_type(n) != G_TYPE_STRING)
        g_error("journal entry without a text %s", key);
    return json_node_get_string(n);
}

static JsonObject *
find_entry(GPtrArray *entries, const char *needle)
{
    for (guint i = 0; i < entries->len; i++) {
        JsonObject *e = g_ptr_array_index(entries, i);
        if (json_object_has_member(e, "MESSAGE") &&
            strstr(dv_json_get_string(e, "MESSAGE", ""), needle) != NULL)
            return e;
    }
    g_error("no journal entry of droverd with «%s»", needle);
    return NULL;
}

static void
test_journal_fields(void)
{
    g_autofree char *identifier = g_strdup_printf("dvjournal-%d", (int)getpid());
    int stream = journal_stream_open(identifier);
    struct stat st;
    g_autofree char *journal_stream = NULL;
    g_autoptr(DvTestDaemon) d = NULL;
    g_autoptr(JsonObject) job = NULL;
    g_autoptr(GPtrArray) by_job = NULL;
    g_autoptr(GPtrArray) by_pid = NULL;
    g_autoptr(GPtrArray) by_stream = NULL;
    g_autofree char *job_match = NULL;
    g_autofree char *pid_match = NULL;
    g_autofree char *stream_match = NULL;
    JsonObject *e;
    g_autofree char *pid = NULL; /* the identifier dies with the process */

    g_assert_cmpint(fstat(stream, &st), ==, 0);
    journal_stream = g_strdup_printf("%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT, (guint64)st.st_dev,
                                     (guint64)st.st_ino);
    /* What systemd sets for a unit whose stderr is the journal. */
    g_setenv("JOURNAL_STREAM", journal_stream, TRUE);
    d = dv_test_daemon_start_with_stderr(NULL, NULL, stream);
    g_unsetenv("JOURNAL_STREAM");
    g_assert_nonnull(d);
    pid = g_strdup(g_subprocess_get_identifier(d->proc));
    pid_match = g_strdup_printf("_PID=%s", pid);

    job = dv_test_run_job(d, "POST", "/api/v1/hosts",
                          "{\"name\":\"jbad\",\"uri\":\"test:///nonexistent/j.xml\"}");
    dv_test_assert_job_state(job, "failed");
    dv_test_daemon_stop(d, FALSE);
    close(stream);

    /* The failed job's entry: its fields are the journal's own. */
    job_match = g_strdup_printf("DROVER_JOB_ID=%s", dv_json_get_string(job, "id", ""));
    by_job = journal_entries(job_match, 1);
    g_assert_cmpuint(by_job->len, ==, 1);
    e = g_ptr_array_index(by_job, 0);
    g_assert_cmpstr(field(e, "_TRANSPORT"), ==, "journal");
    g_assert_cmpstr(field(e, "_PID"), ==, pid);
    g_assert_cmpstr(field(e, "PRIORITY"), ==, "5");
    g_assert_cmpstr(field(e, "GLIB_DOMAIN"), ==, "DvJobs");
    g_assert_cmpstr(field(e, "DROVER_OP"), ==, "host.add");
    g_assert_cmpstr(field(e, "DROVER_TARGET"), ==, "host jbad");
    g_assert_cmpstr(field(e, "DROVER_ACTOR"), ==, "admin");
    g_assert_cmpstr(field(e, "DROVER_JOB_STATE"), ==, "failed");
    g_assert_nonnull(strstr(field(e, "MESSAGE"), "cannot add host jbad"));

    /* Start-up and stop, from the same process, natively too. */
    by_pid = journal_entries(pid_match, 3);
    e = find_entry(by_pid, "started: serving");
    g_assert_cmpstr(field(e, "_TRANSPORT"), ==, "journal");
    e = find_entry(by_pid, "droverd stopped");
    g_assert_cmpstr(field(e, "_TRANSPORT"), ==, "journal");
    for (guint i = 0; i < by_pid->len; i++) {
        g_autoptr(JsonNode) node =
            json_node_init_object(json_node_alloc(), g_ptr_array_index(by_pid, i));
        g_autofree char *text = json_to_string(node, FALSE);
        g_assert_null(strstr(text, d->password));
        g_assert_null(strstr(text, d->token));
        /* Every line droverd logs goes natively; the stream holds only
         * what other code printed to stderr, never a log line. */
        e = g_ptr_array_index(by_pid, i);
        if (g_strcmp0(dv_json_get_string(e, "_TRANSPORT", ""), "stdout") == 0)
            g_assert_null(json_object_get_member(e, "GLIB_DOMAIN"));
    }
    stream_match = g_strdup_printf("SYSLOG_IDENTIFIER=%s", identifier);
    by_stream = journal_entries(stream_match, 0);
    for (guint i = 0; i < by_stream->len; i++) {
        const char *msg = dv_json_get_string(g_ptr_array_index(by_stream, i), "MESSAGE", "");
        if (strstr(msg, "DROVER_") != NULL || strstr(msg, "droverd stopped") != NULL)
            g_error("a log line went to the text stream: %s", msg);
    }
    g_printerr("# %u entries of droverd in the journal, %u on its text stream\n", by_pid->len,
               by_stream->len);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* Never a skip: without the private journald this test cannot see
     * what it checks. */
    if (g_strcmp0(g_getenv("DV_TEST_JOURNALD"), "1") != 0)
        g_error("run under tests/services/with-journald (meson test api-journal does)");
    g_test_add_func("/drover/api/journal/fields", test_journal_fields);
    return g_test_run();
}
