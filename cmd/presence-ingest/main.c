/* main.c -- presence-ingest: dispatch to a subcommand */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "presence/config.h"
#include "presence/manpage.h"

/* args: what follows the options in its synopsis; bit: its options'
 * PI_CMD_* bit (0: none). */
typedef struct pi_cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
    const char *args;
    unsigned bit;
} pi_cmd;

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
     "print connectivity reports (status, sessions, uptime, reasons, "
     "flapping)",
     "status|sessions|uptime|reasons|flapping", PI_CMD_REPORT},
    {"retention", pi_cmd_retention,
     "create the next partitions of presences and drop those older than "
     "--keep, then exit",
     NULL, PI_CMD_RETENTION},
    {"watch", pi_cmd_watch,
     "print status changes as they happen (--after SEQ resumes)", NULL,
     PI_CMD_WATCH},
    {"version", pi_cmd_version, "print the version", NULL, 0},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: presence-ingest COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
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
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "presence-ingest: unknown command '%s' (try --help)\n",
            argv[1]);
    return PI_EXIT_USAGE;
}
