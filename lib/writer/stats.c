/* stats.c -- a writer's figures added up and taken back */
#include "presence/writer.h"

void pi_write_stats_add(pi_write_stats *to, const pi_write_stats *from)
{
    to->messages += from->messages;
    to->stored += from->stored;
    to->duplicates += from->duplicates;
    to->conflicts += from->conflicts;
    to->rejected += from->rejected;
    to->skipped += from->skipped;
    to->fenced += from->fenced;
    to->batches += from->batches;
    to->retries += from->retries;
    to->splits += from->splits;
    to->reconnects += from->reconnects;
    to->write_us += from->write_us;
    for (int i = 0; i < PI_REJ__COUNT; i++)
        to->rejects_by_code[i] += from->rejects_by_code[i];
}

static void sub_clamped(uint64_t *to, uint64_t from)
{
    *to = *to > from ? *to - from : 0;
}

void pi_write_stats_sub(pi_write_stats *to, const pi_write_stats *from)
{
    sub_clamped(&to->messages, from->messages);
    sub_clamped(&to->stored, from->stored);
    sub_clamped(&to->duplicates, from->duplicates);
    sub_clamped(&to->conflicts, from->conflicts);
    sub_clamped(&to->rejected, from->rejected);
    sub_clamped(&to->skipped, from->skipped);
    sub_clamped(&to->fenced, from->fenced);
    sub_clamped(&to->batches, from->batches);
    sub_clamped(&to->retries, from->retries);
    sub_clamped(&to->splits, from->splits);
    sub_clamped(&to->reconnects, from->reconnects);
    sub_clamped(&to->write_us, from->write_us);
    for (int i = 0; i < PI_REJ__COUNT; i++)
        sub_clamped(&to->rejects_by_code[i], from->rejects_by_code[i]);
}
