/* cmd.h -- the subcommands of presence-ingest; each returns an exit code */
#ifndef PRESENCE_CMD_H
#define PRESENCE_CMD_H

/* Exit codes shared by every subcommand. */
enum {
    PI_EXIT_OK = 0,
    PI_EXIT_FAILURE = 1, /* infrastructure failure (database, broker) */
    PI_EXIT_USAGE = 2,   /* bad option, value or configuration */
    PI_EXIT_SCHEMA = 3   /* schema older than this build: run migrate */
};

/* argv[0] is the subcommand name. */
int pi_cmd_run(int argc, char **argv);
int pi_cmd_load(int argc, char **argv);
int pi_cmd_migrate(int argc, char **argv);
int pi_cmd_version(int argc, char **argv);

#endif
