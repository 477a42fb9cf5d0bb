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

struct pi_config;
struct pi_consumer;

/* common.c */

/* Parse argv into cfg for subcommand cmd (a PI_CMD_* bit) and set up
 * logging. Returns -1 to go on, else the exit code to return (0 after
 * --help, PI_EXIT_USAGE with the one-line error printed). */
int pi_cmd_setup(struct pi_config *cfg, unsigned cmd, int argc, char **argv);

/* handler for SIGTERM and SIGINT; SIGPIPE ignored. */
void pi_cmd_on_stop(void (*handler)(int));

/* The exit code for a module's return code (PI_EINVAL → usage, …). */
int pi_cmd_exit_code(int rc);

/* consume.c: the loop of `run` and `replay` (cmd PI_CMD_RUN or
 * PI_CMD_REPLAY): options, signals, the HTTP endpoint and the database jobs
 * around one consumer; finish (may be NULL) is called once the consumer
 * stopped, before it is destroyed. Returns the exit code. */
typedef void (*pi_cmd_finish_fn)(struct pi_consumer *c,
                                 const struct pi_config *cfg);
int pi_cmd_consume(int argc, char **argv, unsigned cmd,
                   pi_cmd_finish_fn finish);

/* One per command, argv[0] its name; each returns the exit code. */
int pi_cmd_run(int argc, char **argv);
int pi_cmd_replay(int argc, char **argv);
int pi_cmd_load(int argc, char **argv);
int pi_cmd_migrate(int argc, char **argv);
int pi_cmd_report(int argc, char **argv);
int pi_cmd_retention(int argc, char **argv);
int pi_cmd_watch(int argc, char **argv);
int pi_cmd_version(int argc, char **argv);

#endif
