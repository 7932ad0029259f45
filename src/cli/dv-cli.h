/* The drover command line: global state, the command table and the
 * argument parser.
 *
 * Every command is one DvCliCommand row: its words, its positional
 * arguments, its options (each naming the JSON field or query parameter it
 * fills) and a runner.  The generic runners (list, show, job, action) do
 * the request and the printing, so most rows need no code of their own.
 *
 * Running a command has two phases.  Parsing (dv_cli_args_parse() and the
 * row's prepare hook) touches no network and any failure there is a usage
 * error, exit 2.  Running maps its DV_ERROR to an exit code with
 * dv_error_to_exit_code(), except that a job which ran and failed for a
 * reason with no more specific code exits DV_EXIT_JOB_FAILED.
 */
#pragma once

#include <stdio.h>

#include "dv-cli-client.h"
#include "dv-cli-output.h"
#include "dv-secret.h"

G_BEGIN_DECLS

typedef struct {
    DvCliClient *client;   /* NULL until the command runs */
    DvCliFormat format;
    gboolean no_wait;
    gboolean insecure;
    gboolean help;
    char *server_opt;      /* --server, may be NULL */
    char *token_opt;       /* --token, may be NULL; wiped on free */
    FILE *out;
    FILE *err;
    gboolean out_tty;
    gboolean err_tty;
    gboolean job_failed;   /* the error being reported came from a job */
    gboolean usage_failed; /* the run phase found a usage error: exit 2 */
    GHashTable *names;     /* "collection/id" -> name ("" when unknown),
                            * so a list looks each referenced object up once */
} DvCli;

void dv_cli_clear(DvCli *cli);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(DvCli, dv_cli_clear)

typedef enum {
    DV_CLI_OPT_STRING,
    DV_CLI_OPT_INT,        /* strict decimal, within [min, max] */
    DV_CLI_OPT_CHOICE,     /* one of the '|'-separated words in metavar */
    DV_CLI_OPT_LIST,       /* repeatable string; the prepare hook uses it */
    DV_CLI_OPT_FLAG,       /* sets field true / query "true" */
    DV_CLI_OPT_FLAG_FALSE, /* sets field false */
    DV_CLI_OPT_FLAG_NULL,  /* sets field null */
    DV_CLI_OPT_REFUSED,    /* always a usage error; help says why */
    DV_CLI_OPT_SECRET_FILE,  /* a path: field gets the file's content as a
                              * secret (one trailing newline dropped) */
    DV_CLI_OPT_SECRET_STDIN, /* a flag: field gets all of stdin as a secret */
    DV_CLI_OPT_TEXT_FILE,    /* a path: field gets the file's content as is,
                              * at most max bytes; not a secret */
    DV_CLI_OPT_SIZE,         /* a size with a unit (20G) or plain bytes, to
                              * bytes within [min, max] */
    DV_CLI_OPT_SIZE_MIB,     /* a size with a unit (2G) or plain MiB, to MiB
                              * within [min, max] */
} DvCliOptType;

typedef struct {
    const char *name;     /* without the leading "--" */
    DvCliOptType type;
    const char *metavar;  /* "N", "URI"; the choices for DV_CLI_OPT_CHOICE */
    const char *field;    /* request body member filled, or NULL */
    const char *query;    /* query parameter filled, or NULL */
    const char *resolve;  /* with query: the value names an object of this
                           * collection ("/hosts") and is sent as its id */
    gint64 min;
    gint64 max;
    const char *help;
    gboolean required;    /* the command cannot run without it */
} DvCliOption;

typedef struct _DvCliCommand DvCliCommand;
typedef struct _DvCliArgs DvCliArgs;

/* Usage phase: checks combinations and adds body members the table cannot
 * express; errors are usage errors. */
typedef gboolean (*DvCliPrepareFunc)(DvCliArgs *args, JsonObject *body, GError **error);
typedef gboolean (*DvCliRunFunc)(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body,
                                 GError **error);

struct _DvCliCommand {
    const char *noun;      /* "vm", "vm snapshot" */
    const char *verb;      /* NULL for "login", "logout", "version" */
    const char *args;      /* positional names, space separated: "VM SNAP" */
    const char *summary;
    const DvCliOption *options; /* NULL-name terminated, may be NULL */
    DvCliPrepareFunc prepare;
    DvCliRunFunc run;
    const char *method;    /* for the job and action runners */
    const char *path;      /* "/vms/{0}/start": {n} is positional n, escaped */
    const DvCliColumn *columns; /* for the list runner */
    const char *done;      /* "Started vm {0}", printed when the job succeeds */
    const char *usage;     /* synopsis when the generated one says too little */
};

typedef struct {
    const DvCliOption *option;
    char *value;           /* NULL for flags */
    gint64 number;         /* DV_CLI_OPT_INT */
} DvCliArg;

/* A body member whose value is a secret, kept out of JsonObject (whose
 * strings are copied and freed without wiping). */
typedef struct {
    char *field;
    DvSecret *value;
} DvCliSecretMember;

struct _DvCliArgs {
    const DvCliCommand *command;
    GPtrArray *positional; /* char * */
    GPtrArray *given;      /* DvCliArg *, in command-line order */
    GPtrArray *secrets;    /* DvCliSecretMember *, filled by dv_cli_args_load_inputs() */
    GPtrArray *warnings;   /* char *, printed on stderr before the command runs */
};

/* Parses the words after the command's noun and verb. */
DvCliArgs *dv_cli_args_parse(const DvCliCommand *cmd, int argc, char **argv, GError **error);
void dv_cli_args_free(DvCliArgs *args);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvCliArgs, dv_cli_args_free)

const char *dv_cli_args_get_positional(DvCliArgs *args, guint index);
gboolean dv_cli_args_has(DvCliArgs *args, const char *name);
const char *dv_cli_args_get_string(DvCliArgs *args, const char *name); /* borrowed, NULL if absent */
gint64 dv_cli_args_get_int(DvCliArgs *args, const char *name, gint64 def);
/* The body members the options name (DV_CLI_OPT_LIST excepted). */
JsonObject *dv_cli_args_to_body(DvCliArgs *args);
/* Reads the files and standard input the options name (secret and text
 * files, --*-stdin) into @args->secrets and @body.  Runs after the
 * prepare hook, so combinations are checked before stdin is read; any
 * failure is a usage error and never shows a secret. */
gboolean dv_cli_args_load_inputs(DvCliArgs *args, JsonObject *body, GError **error);
/* @body serialised with the secret members of @args added, in guarded
 * memory: the request body of a command that carries secrets. */
DvSecret *dv_cli_args_body_new(DvCliArgs *args, JsonObject *body);
/* TRUE when the command has an option that reads a secret. */
gboolean dv_cli_command_takes_secrets(const DvCliCommand *cmd);

/* The largest secret drover sends, as the server accepts (docs/API.md). */
#define DV_CLI_MAX_SECRET 65536
/* Reads all of @fd (up to DV_CLI_MAX_SECRET bytes after one trailing
 * newline, "\n" or "\r\n", is dropped) into guarded memory.  @what names
 * the source in errors ("--password-file 'pw.txt'"); the content never
 * appears in one.  Refuses empty content, NUL bytes and invalid UTF-8
 * (a JSON string cannot carry them). */
DvSecret *dv_cli_secret_read_fd(int fd, const char *what, const char *field, GError **error);
/* The same for a file; *@ret_warning (may be NULL) gets a warning when
 * the file is a regular file others may read. */
DvSecret *dv_cli_secret_read_file(const char *path, const char *what, const char *field, char **ret_warning,
                                  GError **error);

/* Prepare hook for creations: body "name" is positional 0. */
gboolean dv_cli_prepare_name(DvCliArgs *args, JsonObject *body, GError **error);
/* Sets body[@field] to an array of {@member: value} (of plain strings when
 * @member is NULL) for every value of the list option @name, in
 * command-line order; nothing when not given. */
void dv_cli_args_add_list(DvCliArgs *args, const char *name, JsonObject *body, const char *field,
                          const char *member);
/* Both or neither of @a and @b; usage error otherwise. */
gboolean dv_cli_args_require_together(DvCliArgs *args, const char *a, const char *b, GError **error);
/* Exactly one of @a and @b. */
gboolean dv_cli_args_require_one_of(DvCliArgs *args, const char *a, const char *b, GError **error);

/* "SIZE[:POOL[:FORMAT]]" to {"size_mib", "pool", "format"}: SIZE is MiB,
 * or with a unit (20G). */
JsonObject *dv_cli_disk_spec_parse(const char *spec, GError **error);
/* Strict decimal in [min, max]; @what names the input in the message. */
gboolean dv_cli_parse_int(const char *what, const char *str, gint64 min, gint64 max, gint64 *ret_value,
                          GError **error);

typedef enum {
    DV_CLI_SIZE_BYTES,
    DV_CLI_SIZE_MIB,
} DvCliSizeUnit;

/* A size: a number with a binary unit K, M, G or T (either case, with an
 * optional "iB" or "B": 2G = 2GiB = 2gb = 2^31 bytes), a fraction allowed
 * with a unit ("1.5G"), or a plain whole number, which is in @unit (the
 * meaning each flag had before units: bytes for --size, MiB for
 * --memory).  *@ret_value is in @unit, within [@min, @max]; a size that is
 * not a whole number of @unit ("1.3M" of MiB) is refused.  @what names the
 * input ("--memory") in the message. */
gboolean dv_cli_parse_size_in(const char *what, const char *str, DvCliSizeUnit unit, gint64 min,
                              gint64 max, gint64 *ret_value, GError **error);
/* dv_cli_parse_size_in() in bytes, from 1 byte to 64 TiB. */
gboolean dv_cli_parse_size(const char *what, const char *str, gint64 *ret_bytes, GError **error);

/* The generated usage of a command: synopsis and options. */
char *dv_cli_command_usage(const DvCliCommand *cmd);

/* Appends the query string of @args' options with a query parameter to
 * @path (names resolved to ids where the option says so). */
gboolean dv_cli_args_add_query(DvCli *cli, DvCliArgs *args, GString *path, GError **error);

/* Generic runners. */
gboolean dv_cli_run_list(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body, GError **error);
gboolean dv_cli_run_show(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body, GError **error);
/* A mutation: 202 {"job"}, then follow it unless --no-wait. */
gboolean dv_cli_run_job(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body, GError **error);
/* A request whose answer is final: print cmd->done or the JSON. */
gboolean dv_cli_run_action(DvCli *cli, const DvCliCommand *cmd, DvCliArgs *args, JsonObject *body,
                           GError **error);

/* Follows a job with progress on stderr, then reports it: @done (already
 * expanded) on success, or an error from the job's error object. */
gboolean dv_cli_follow_and_report(DvCli *cli, JsonObject *job, const char *done, GError **error);
/* GET @collection/{value} (or a name lookup for collections that are not
 * addressed by name) and return the object's id. */
char *dv_cli_resolve_id(DvCli *cli, const char *collection, const char *value, const char *host_id,
                        GError **error);
void dv_cli_print_json(DvCli *cli, JsonNode *node);
/* Records refer to other objects by id ("host_group_id"); for people,
 * adds the name beside it ("host_group_name") unless the record has it,
 * looking each object up once per command.  @collection is the record's
 * own ("/host-groups"), for "parent_id"; with @columns (may be NULL),
 * only names some column shows. */
void dv_cli_add_names(DvCli *cli, const char *collection, const DvCliColumn *columns, JsonObject *obj);
/* A key/value view of @obj for people: names added, "id" and "name"
 * first, then the members in alphabetical order (the server's order is
 * not stable), @skip left out. */
void dv_cli_print_object(DvCli *cli, const char *collection, JsonObject *obj, const char *const *skip);

/* The command tables, each terminated by a row with noun NULL. */
extern const DvCliCommand dv_cli_commands_host[];
extern const DvCliCommand dv_cli_commands_storage[];
extern const DvCliCommand dv_cli_commands_vm[];
extern const DvCliCommand dv_cli_commands_catalog[];
extern const DvCliCommand dv_cli_commands_misc[]; /* login, logout, version */
extern const DvCliCommand dv_cli_commands_job[];
extern const DvCliCommand dv_cli_commands_secret[]; /* run-as, guest-os-profile, setting */
extern const DvCliCommand dv_cli_commands_access[]; /* user, role, binding, token, session, audit */

/* All command tables, in help order (borrowed). */
const DvCliCommand *const *dv_cli_command_tables(guint *ret_n);
/* Sets cli->client from --server/--token, the environment and the config. */
gboolean dv_cli_client_setup(DvCli *cli, GError **error);

/* dv-cli-complete.c: `drover __complete WORD... CURRENT` prints the
 * candidates for CURRENT, one a line (bash and zsh completion), and
 * `drover __commands` the command tables as JSON (tools/gen-man).  Both
 * always exit 0; completion prints nothing on any error. */
int dv_cli_complete(DvCli *cli, int argc, char **argv);
int dv_cli_dump_commands(FILE *out);

/* Config file: $XDG_CONFIG_HOME/drover/config, [server] url and token. */
char *dv_cli_config_path(void);
/* An empty key file when the file does not exist. */
GKeyFile *dv_cli_config_load(GError **error);
gboolean dv_cli_config_save(GKeyFile *config, GError **error);

/* {"user": ..., "password": ...} built in guarded memory. */
DvSecret *dv_cli_login_body_new(const char *user, const DvSecret *password);

/* Runs one command line (argv[0] is the program name) and returns the
 * exit code; everything printed goes to @out and @err. */
int dv_cli_main(int argc, char **argv, FILE *out, FILE *err);

G_END_DECLS
