/* main.c -- presence-ingest: dispatch to a subcommand */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "presence/completion.h"
#include "presence/config.h"
#include "presence/manpage.h"
#include "presence/report.h"

/* args: what follows the options in its synopsis; bit: its options'
 * PI_CMD_* bit (0: none). */
typedef struct pi_cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
    const char *args;
    unsigned bit;
} pi_cmd;

static int cmd_completion(int argc, char **argv);

static const pi_cmd commands[] = {
    {"run", pi_cmd_run, "consume a topic with a consumer group, forever", NULL,
     PI_CMD_RUN},
    {"replay", pi_cmd_replay,
     "re-read a topic range (by time or offset) without a consumer group, "
     "then exit",
     NULL, PI_CMD_REPLAY},
    {"load", pi_cmd_load,
     "read messages from a file or stdin, one message value per line, then "
     "exit",
     "[FILE|-]", PI_CMD_LOAD},
    {"migrate", pi_cmd_migrate, "apply pending migrations, then exit", NULL,
     PI_CMD_MIGRATE},
    {"report", pi_cmd_report,
     "print a connectivity report ('report --help' lists the kinds)", "KIND",
     PI_CMD_REPORT},
    {"retention", pi_cmd_retention,
     "create the next partitions of presences and drop those older than "
     "--keep, then exit",
     NULL, PI_CMD_RETENTION},
    {"watch", pi_cmd_watch,
     "print status changes as they happen (--after SEQ resumes)", NULL,
     PI_CMD_WATCH},
    {"completion", cmd_completion,
     "print the bash completion script ('completion bash')", "bash", 0},
    {"version", pi_cmd_version, "print the version", NULL, 0},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* `completion bash`: the script, from the table above, the option table
 * and the report kinds. */
static int cmd_completion(int argc, char **argv)
{
    static const char *const shells[] = {"bash", NULL};
    pi_completion_cmd cmds[N_COMMANDS];
    const char *kinds[64];
    size_t n_kinds = 0;

    if (argc != 2 || strcmp(argv[1], "bash") != 0) {
        fprintf(stderr, "presence-ingest completion: usage: presence-ingest "
                        "completion bash\n");
        return PI_EXIT_USAGE;
    }
    while (n_kinds + 1 < sizeof(kinds) / sizeof(kinds[0]) &&
           (kinds[n_kinds] = pi_report_kind_at(n_kinds, NULL)) != NULL)
        n_kinds++;
    kinds[n_kinds] = NULL;
    for (size_t i = 0; i < N_COMMANDS; i++) {
        cmds[i].name = commands[i].name;
        cmds[i].opts = commands[i].bit;
        cmds[i].files = commands[i].args && strstr(commands[i].args, "FILE");
        cmds[i].words = commands[i].fn == pi_cmd_report    ? kinds
                        : commands[i].fn == cmd_completion ? shells
                                                           : NULL;
    }
    pi_completion_print_bash(stdout, cmds, N_COMMANDS);
    return fflush(stdout) == 0 ? PI_EXIT_OK : PI_EXIT_FAILURE;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: presence-ingest COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'presence-ingest COMMAND --help' lists its options.\n");
}

int pi_cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("presence-ingest %s\n", PI_VERSION);
    return PI_EXIT_OK;
}

/* presence-ingest(1), from the same table and the option table (the build
 * writes it with --print-manpage). */
static void manpage(FILE *out)
{
    pi_manpage_cmd cmds[sizeof(commands) / sizeof(commands[0])];

    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        cmds[i] = (pi_manpage_cmd){commands[i].name, commands[i].args,
                                   commands[i].bit, commands[i].summary};
    pi_manpage_print(out, cmds, sizeof(commands) / sizeof(commands[0]),
                     PI_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return PI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return PI_EXIT_OK;
    }
    if (strcmp(argv[1], "--print-manpage") == 0) {
        manpage(stdout);
        return PI_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0)
        return pi_cmd_version(argc - 1, argv + 1);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "presence-ingest: unknown command '%s' (try --help)\n",
            argv[1]);
    return PI_EXIT_USAGE;
}
