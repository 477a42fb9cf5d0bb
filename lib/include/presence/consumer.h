/* consumer.h -- the Kafka side of `run` and `replay`: poll, decode, batch,
 * write, commit
 *
 * One loop, two modes, decided by cfg->replay. `run` subscribes with the
 * consumer group and goes on until stopped (below). `replay` assigns the
 * partitions of one topic at the start offsets of its range (replay.h),
 * joins no group, commits nothing to Kafka and never touches
 * ingest_offsets (the writer has no group: no fence), stops each partition
 * at its end and returns once everything in range is written; with
 * cfg->dry_run the pipeline only counts (no database).
 *
 * Delivery (CONTRACT §5): the database is the source of truth for positions.
 * On every assignment the next offset of each partition is read from
 * ingest_offsets and set when assigning (the group's committed offset is
 * only used by lag tools); a batch's rows, rejects and ingest_offsets commit
 * in one transaction, and only then is the offset committed to Kafka. A
 * message consumed twice is therefore written twice at most, and the second
 * time changes nothing. On revoke, what is buffered for the revoked partitions
 * is flushed first (bounded by shutdown-timeout-ms; past that it is dropped
 * and redelivered to the next owner); on a lost assignment it is dropped. The
 * writer's fence (writer.h) keeps a stale owner from moving offsets back.
 *
 * Writers (cfg->writers, lanes.c): partition P is written by
 * writer P mod N, each with its own connection and one batch in flight, so
 * that a partition's batches commit one at a time and in order.
 *
 * Memory: at most three batches per writer (one filling, one being written,
 * and one that came back unwritten from a cancelled write; each up to
 * batch-size messages and batch-bytes of values, plus their keys, decoded
 * rows and the payloads of rejected messages), plus librdkafka's pre-fetch
 * queue
 * (queued.max.messages.kbytes, 16 MiB by default here) and one fetch
 * response per broker being read (fetch.max.bytes, 16 MiB). When the writer
 * falls behind for a second, the partitions are paused and polling goes on,
 * so the process stays in the group.
 */
#ifndef PRESENCE_CONSUMER_H
#define PRESENCE_CONSUMER_H

#include <stdatomic.h>

#include "presence/config.h"
#include "presence/err.h"
#include "presence/writer.h"

typedef struct pi_consumer pi_consumer;

/* Build the Kafka handle from cfg (every -X property is checked by
 * librdkafka and its error text shown verbatim), connect to PostgreSQL and
 * check the schema, and check that the brokers answer and the named topics
 * exist. cfg and stop are borrowed and must outlive the consumer; stop
 * becoming non-zero (a signal) ends pi_consumer_run and any wait for the
 * database. Errors: PI_EINVAL (bad configuration), PI_ESCHEMA,
 * PI_ERETRY/PI_EFATAL (unreachable service); err says which, in one line. */
PI_MUST_CHECK int pi_consumer_new(pi_consumer **out, const pi_config *cfg,
                                  const atomic_int *stop, pi_err *err);

/* Subscribe and consume until *stop becomes non-zero, then stop fetching,
 * flush (for at most shutdown-timeout-ms), commit and leave the group; or,
 * replaying, consume the range and flush. Returns 0 on a clean stop or a
 * complete replay, PI_EINVAL for a bad range, PI_EFATAL (err filled) when it
 * could not go on, gave up buffered messages at the deadline, or a replay was
 * interrupted or missed messages below the log start. */
PI_MUST_CHECK int pi_consumer_run(pi_consumer *c, pi_err *err);

/* Totals since the consumer was created. */
void pi_consumer_totals(const pi_consumer *c, pi_write_stats *out);

void pi_consumer_destroy(pi_consumer *c);

#endif
