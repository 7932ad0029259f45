#define G_LOG_DOMAIN "DvCliComplete"

/* Shell completion as a user meets it: bash with
 * packaging/completion/drover.bash loaded, COMP_WORDS and COMP_CWORD set
 * as readline sets them, the function `complete -p drover` names called,
 * and COMPREPLY read back.  The drover on PATH is the build's; object
 * names come from a real droverd with a test:/// host.  zsh's script is
 * checked for syntax and run with compadd and _files standing in. */

#include <glib/gstdio.h>
#include <gio/gio.h>
#include <string.h>

#include "dv-test-util.h"

typedef struct {
    DvTestDaemon *d;
    char *tmp;
    char *xdg;
    char *host_uri;
} Fixture;

static char *
script_path(const char *name)
{
    return g_build_filename(g_getenv("G_TEST_SRCDIR"), "..", "packaging", "completion", name, NULL);
}

/* Runs bash with the completion loaded and the line @line (words split
 * by spaces; a trailing space means an empty current word) completed;
 * returns COMPREPLY, one a line, sorted.  @logged_in gives drover the
 * daemon's URL and token through the environment. */
static char *
complete_bash_at(Fixture *f, const char *line, gboolean logged_in, const char *url)
{
    g_autofree char *script = script_path("drover.bash");
    g_autofree char *bin = g_build_filename(g_getenv("DV_TOP_BUILDDIR"), "src", "cli", NULL);
    g_autofree char *path = g_strconcat(bin, ":/usr/bin:/bin", NULL);
    g_autofree char *quoted = g_shell_quote(line);
    g_autofree char *program = g_strdup_printf(
        "set -e\n"
        ". %s\n"
        "spec=$(complete -p drover)\n"
        "case $spec in *'-F _drover drover') ;; *) echo \"bad spec: $spec\" >&2; exit 3 ;; esac\n"
        "fn=${spec#*-F }; fn=${fn%%%% *}\n"
        "line=%s\n"
        "read -r -a COMP_WORDS <<< \"$line\"\n"
        "[ \"${line%% }\" != \"$line\" ] && COMP_WORDS+=('')\n"
        "COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n"
        "COMP_LINE=$line; COMP_POINT=${#line}\n"
        "COMPREPLY=()\n"
        "\"$fn\" drover \"${COMP_WORDS[COMP_CWORD]}\" \"${COMP_WORDS[COMP_CWORD-1]}\"\n"
        "if [ ${#COMPREPLY[@]} -gt 0 ]; then printf '%%s\\n' \"${COMPREPLY[@]}\" | LC_ALL=C sort; fi\n",
        script, quoted);
    g_autoptr(GPtrArray) env = g_ptr_array_new_with_free_func(g_free);
    const char *argv[] = { "bash", "--norc", "--noprofile", "-c", program, NULL };
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    int status;

    g_ptr_array_add(env, g_strconcat("PATH=", path, NULL));
    g_ptr_array_add(env, g_strconcat("HOME=", f->xdg, NULL));
    g_ptr_array_add(env, g_strconcat("XDG_CONFIG_HOME=", f->xdg, NULL));
    if (logged_in) {
        g_ptr_array_add(env, g_strconcat("DROVER_SERVER=", url != NULL ? url : f->d->url, NULL));
        g_ptr_array_add(env, g_strconcat("DROVER_TOKEN=", f->d->token, NULL));
    }
    g_ptr_array_add(env, NULL);
    status = dv_test_spawn(argv, (const char *const *)env->pdata, &out, &err);
    g_test_message("complete '%s' -> [%s] stderr [%s]", line, out, err);
    g_assert_cmpint(status, ==, 0);
    g_assert_cmpstr(err, ==, "");
    return g_steal_pointer(&out);
}

static char *
complete_bash(Fixture *f, const char *line, gboolean logged_in)
{
    return complete_bash_at(f, line, logged_in, NULL);
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *body = NULL;
    g_autoptr(JsonObject) job = NULL;

    f->tmp = g_dir_make_tmp("drover-cli-complete-XXXXXX", &error);
    g_assert_no_error(error);
    f->xdg = g_build_filename(f->tmp, "config", NULL);
    g_assert_cmpint(g_mkdir(f->xdg, 0700), ==, 0);
    xml = dv_test_write_host_xml(f->tmp, "host1.xml", "cmpl", 2);
    f->host_uri = g_strconcat("test://", xml, NULL);
    f->d = dv_test_daemon_start(NULL, NULL);
    body = g_strdup_printf("{\"name\": \"kvm-a\", \"uri\": \"%s\"}", f->host_uri);
    job = dv_test_run_job(f->d, "POST", "/api/v1/hosts", body);
    dv_test_assert_job_state(job, "succeeded");
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    g_clear_pointer(&f->d, dv_test_daemon_free);
    dv_test_rm_rf(f->tmp);
    g_free(f->tmp);
    g_free(f->xdg);
    g_free(f->host_uri);
}

static void
test_words(Fixture *f, gconstpointer data)
{
    g_autofree char *nouns = complete_bash(f, "drover ", FALSE);
    g_autofree char *v = complete_bash(f, "drover v", FALSE);
    g_autofree char *verbs = complete_bash(f, "drover vm s", FALSE);
    g_autofree char *sub = complete_bash(f, "drover vm snapshot ", FALSE);
    g_autofree char *after_global = complete_bash(f, "drover --output json host re", FALSE);

    /* Every noun of the tables, login and version included. */
    g_assert_nonnull(strstr(nouns, "\nvm\n"));
    g_assert_nonnull(strstr(nouns, "\nhost\n"));
    g_assert_nonnull(strstr(nouns, "\nlogin\n"));
    g_assert_nonnull(strstr(nouns, "\ncatalog\n"));
    g_assert_cmpstr(v, ==, "version\nvm\nvolume\n");
    g_assert_cmpstr(verbs, ==, "set\nshow\nshutdown\nsnapshot\nstart\nstop\n");
    g_assert_cmpstr(sub, ==, "create\ndelete\nlist\nrevert\n");
    g_assert_cmpstr(after_global, ==, "refresh\nremove\n");
}

static void
test_options(Fixture *f, gconstpointer data)
{
    g_autofree char *opts = complete_bash(f, "drover host add kvm-b --m", FALSE);
    g_autofree char *global = complete_bash(f, "drover --o", FALSE);
    g_autofree char *choice = complete_bash(f, "drover host add kvm-b --domain-type ", FALSE);
    g_autofree char *choice_k = complete_bash(f, "drover host add kvm-b --domain-type k", FALSE);
    g_autofree char *output = complete_bash(f, "drover -o ", FALSE);
    g_autofree char *state = complete_bash(f, "drover host list --state ", FALSE);
    /* A value is taken whole: the word after --description is not the
     * next positional, and options after it still complete. */
    g_autofree char *later = complete_bash(f, "drover host add kvm-b --uri test:///x --dom", FALSE);

    g_assert_cmpstr(opts, ==, "--max-connections\n--max-operations\n");
    g_assert_cmpstr(global, ==, "--output\n");
    g_assert_cmpstr(choice, ==, "auto\nkvm\nqemu\n");
    g_assert_cmpstr(choice_k, ==, "kvm\n");
    g_assert_cmpstr(output, ==, "json\ntable\n");
    g_assert_cmpstr(state, ==, "adding\nneeds-attention\nok\nunreachable\n");
    g_assert_cmpstr(later, ==, "--domain-type\n");
}

/* --opt=VALUE: bash's readline splits the word at '=' (in its default
 * COMP_WORDBREAKS), so COMP_WORDS hold "--opt" "=" "VALUE" (written with
 * spaces here) and only the value is replaced; a shell that keeps the word
 * whole gets "--opt=value" candidates. */
static void
test_opt_equals(Fixture *f, gconstpointer data)
{
    g_autofree char *split_empty = complete_bash(f, "drover host add kvm-b --domain-type =", FALSE);
    g_autofree char *split = complete_bash(f, "drover host add kvm-b --domain-type = q", FALSE);
    g_autofree char *whole = complete_bash(f, "drover host add kvm-b --domain-type=k", FALSE);
    g_autofree char *global = complete_bash(f, "drover --output=", FALSE);
    g_autofree char *host = complete_bash(f, "drover vm create x --host = ", TRUE);
    g_autofree char *host_whole = complete_bash(f, "drover vm create x --host=kv", TRUE);
    g_autofree char *pool_whole = complete_bash(f, "drover vm clone cmpl0 copy --pool=", TRUE);
    /* The value given with '=' is the option's, not the next positional. */
    g_autofree char *after = complete_bash(f, "drover vm clone --pool = pool1 cmpl", TRUE);
    g_autofree char *after_whole = complete_bash(f, "drover vm clone --pool=pool1 cmpl", TRUE);
    g_autofree char *flag = complete_bash(f, "drover vm start --no-such=", TRUE);
    /* --server given with '=' (either split) is the server asked. */
    g_autofree char *server_line = g_strdup_printf("drover --server=%s vm start cmpl0", f->d->url);
    g_autofree char *server_split_line =
        g_strdup_printf("drover --server = %s vm start cmpl1", f->d->url);
    g_autofree char *server = complete_bash_at(f, server_line, TRUE, "http://127.0.0.1:1");
    g_autofree char *server_split =
        complete_bash_at(f, server_split_line, TRUE, "http://127.0.0.1:1");

    g_assert_cmpstr(split_empty, ==, "auto\nkvm\nqemu\n");
    g_assert_cmpstr(split, ==, "qemu\n");
    g_assert_cmpstr(whole, ==, "--domain-type=kvm\n");
    g_assert_cmpstr(global, ==, "--output=json\n--output=table\n");
    g_assert_cmpstr(host, ==, "kvm-a\n");
    g_assert_cmpstr(host_whole, ==, "--host=kvm-a\n");
    g_assert_cmpstr(pool_whole, ==, "--pool=pool1\n");
    g_assert_cmpstr(after, ==, "cmpl0\ncmpl1\n");
    g_assert_cmpstr(after_whole, ==, "cmpl0\ncmpl1\n");
    g_assert_cmpstr(flag, ==, "");
    g_assert_cmpstr(server, ==, "cmpl0\n");
    g_assert_cmpstr(server_split, ==, "cmpl1\n");
}

static void
test_names(Fixture *f, gconstpointer data)
{
    g_autofree char *vms = complete_bash(f, "drover vm start ", TRUE);
    g_autofree char *vms_prefix = complete_bash(f, "drover vm start cmpl1", TRUE);
    g_autofree char *hosts = complete_bash(f, "drover host show ", TRUE);
    g_autofree char *pools = complete_bash(f, "drover vm clone cmpl0 copy --pool ", TRUE);
    g_autofree char *host_opt = complete_bash(f, "drover vm create x --host ", TRUE);
    g_autofree char *nets = complete_bash(f, "drover network start ", TRUE);
    g_autofree char *second = complete_bash(f, "drover host show kvm-a ", TRUE);
    g_autofree char *logged_out = complete_bash(f, "drover vm start ", FALSE);
    g_autoptr(GError) error = NULL;
    g_autofree char *dead_url = NULL;
    g_autofree char *dead = NULL;

    /* The test host's two domains, the host, its pool and network. */
    g_assert_cmpstr(vms, ==, "cmpl0\ncmpl1\n");
    g_assert_cmpstr(vms_prefix, ==, "cmpl1\n");
    g_assert_cmpstr(hosts, ==, "kvm-a\n");
    g_assert_cmpstr(host_opt, ==, "kvm-a\n");
    g_assert_cmpstr(nets, ==, "net1\n");
    g_assert_cmpstr(pools, ==, "pool1\n");
    /* host show takes one argument: nothing after it. */
    g_assert_cmpstr(second, ==, "");
    /* Not logged in: nothing, and nothing on stderr (checked above). */
    g_assert_cmpstr(logged_out, ==, "");

    /* A server that does not answer: nothing, quickly. */
    dead_url = g_strdup(f->d->url);
    dv_test_daemon_stop(f->d, FALSE);
    {
        gint64 start = g_get_monotonic_time();
        dead = complete_bash(f, "drover vm start ", TRUE);
        g_assert_cmpstr(dead, ==, "");
        g_assert_cmpint(g_get_monotonic_time() - start, <, 5 * G_USEC_PER_SEC);
    }

    /* A server that accepts the connection and never answers: nothing,
     * after the 2 s timeout, not the 60 s of other commands. */
    {
        g_autoptr(GSocket) sock = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, 0, &error);
        g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
        g_autoptr(GSocketAddress) any = g_inet_socket_address_new(lo, 0);
        g_autoptr(GSocketAddress) bound = NULL;
        g_autofree char *url = NULL;
        g_autofree char *hung = NULL;
        gint64 start;

        g_assert_no_error(error);
        g_assert_true(g_socket_bind(sock, any, TRUE, &error));
        g_assert_true(g_socket_listen(sock, &error));
        bound = g_socket_get_local_address(sock, &error);
        g_assert_no_error(error);
        url = g_strdup_printf("http://127.0.0.1:%u",
                              g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound)));
        start = g_get_monotonic_time();
        hung = complete_bash_at(f, "drover vm start ", TRUE, url);
        g_test_message("hung server: %.1f s", (g_get_monotonic_time() - start) / 1e6);
        g_assert_cmpstr(hung, ==, "");
        g_assert_cmpint(g_get_monotonic_time() - start, >=, 2 * G_USEC_PER_SEC);
        g_assert_cmpint(g_get_monotonic_time() - start, <, 4 * G_USEC_PER_SEC);
    }
}

static void
test_zsh(Fixture *f, gconstpointer data)
{
    g_autofree char *script = script_path("_drover");
    g_autofree char *bin = g_build_filename(g_getenv("DV_TOP_BUILDDIR"), "src", "cli", NULL);
    g_autofree char *path = g_strconcat("PATH=", bin, ":/usr/bin:/bin", NULL);
    g_autofree char *program = g_strdup_printf(
        /* compadd and _files stand in for zsh's completion system: the
         * script's own logic, words and CURRENT as compsys sets them. */
        "compadd() { shift; print -l -- \"$@\"; }\n"
        "_files() { print FILES; }\n"
        "words=(drover vm st); CURRENT=3; source %s\n"
        "words=(drover host add x --domain-type ''); CURRENT=6; source %s\n"
        "words=(drover login --password-file ''); CURRENT=4; source %s\n"
        "words=(drover host add x --domain-type=q); CURRENT=5; source %s\n",
        script, script, script, script);
    const char *syntax[] = { "zsh", "-n", script, NULL };
    const char *run[] = { "zsh", "-f", "-c", program, NULL };
    const char *env[] = { path, NULL };
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autofree char *out2 = NULL;
    g_autofree char *err2 = NULL;

    g_assert_cmpint(dv_test_spawn(syntax, NULL, &out, &err), ==, 0);
    g_assert_cmpstr(err, ==, "");
    g_assert_cmpint(dv_test_spawn(run, env, &out2, &err2), ==, 0);
    g_assert_cmpstr(err2, ==, "");
    /* Verbs, choice values, then file names where drover offers nothing. */
    g_assert_cmpstr(out2, ==, "start\nstop\nauto\nkvm\nqemu\nFILES\n--domain-type=qemu\n");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/drover/cli/complete/words", Fixture, NULL, fixture_setup, test_words, fixture_teardown);
    g_test_add("/drover/cli/complete/options", Fixture, NULL, fixture_setup, test_options, fixture_teardown);
    g_test_add("/drover/cli/complete/opt-equals", Fixture, NULL, fixture_setup, test_opt_equals,
               fixture_teardown);
    g_test_add("/drover/cli/complete/names", Fixture, NULL, fixture_setup, test_names, fixture_teardown);
    g_test_add("/drover/cli/complete/zsh", Fixture, NULL, fixture_setup, test_zsh, fixture_teardown);
    return g_test_run();
}
