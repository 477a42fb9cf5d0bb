/* replay.c -- `presence-ingest replay`: re-read a topic range, then exit */
#include <inttypes.h>
#include <stdio.h>

#include "cmd.h"
#include "presence/config.h"
#include "presence/consumer.h"
#include "presence/writer.h"

/* CONTRACT §6: the summary, even after a failure (it is what was
 * committed). */
static void print_summary(pi_consumer *c, const pi_config *cfg)
{
    pi_write_stats total;

    pi_consumer_totals(c, &total);
    printf("messages=%" PRIu64 " stored=%" PRIu64 " duplicates=%" PRIu64
           " conflicts=%" PRIu64 " rejected=%" PRIu64 " skipped=%" PRIu64 "\n",
           total.messages, total.stored, total.duplicates, total.conflicts,
           total.rejected, total.skipped);
    fflush(stdout);
    if (cfg->dry_run)
        fprintf(stderr, "presence-ingest replay: dry run: nothing written; "
                        "stored counts the presences decoded\n");
}

int pi_cmd_replay(int argc, char **argv)
{
    return pi_cmd_consume(argc, argv, PI_CMD_REPLAY, print_summary);
}
