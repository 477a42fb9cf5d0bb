/* consumer_int.h -- the consumer's state, shared by its files
 *
 * consumer.c owns the poll loop and batching; lanes.c the
 * writers (lanes) and the hand-off to them; rebalance.c the answers to
 * assignments and revocations; positions.c what is stored where: the
 * positions believed in ingest_offsets, the compare-and-set stamps, the re-read
 * after a database went back, and the commits to Kafka; bounded.c the
 * bounded mode of `replay`; parts.c the table of partitions and which lane
 * holds each. Calls go one way: consumer.c on top, then rebalance.c and
 * bounded.c, lanes.c, positions.c, and parts.c below them all. All run on
 * the consumer's one thread.
 */
#ifndef PRESENCE_CONSUMER_INT_H
#define PRESENCE_CONSUMER_INT_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "presence/batch.h"
#include "presence/commit_log.h"
#include "presence/config.h"
#include "presence/consumer.h"
#include "presence/decode.h"
#include "presence/kafka.h"
#include "presence/pipeline.h"
#include "presence/times.h"
#include "presence/writer.h"

/* How long the writer may stay behind before the partitions are paused. */
#define PAUSE_AFTER_MS 1000
/* Committed batches remembered, to take back from the counters those a
 * database that lost its last commits no longer has (about a minute at
 * full speed). */
#define COMMIT_LOG_BATCHES 1024

/* Per assigned partition. */
typedef struct part {
    char *topic;
    int32_t partition;
    bool assigned;
    bool warned_below; /* said once that the log went below next */
    int64_t next;      /* next offset expected from Kafka; -1: any */
    int64_t committed; /* highest offset committed to Kafka since assigned */
    int64_t stored;    /* ingest_offsets.next_offset as last read or
                          committed by us; -1: no row */
    int64_t origin;    /* with no row at assignment: the first offset
                          consumed, where a re-read starts if the row
                          vanishes; -1: not yet */
    /* replay only */
    int64_t start, end; /* the range [start, end); end -1 for run */
    bool done;          /* reached its end: unassigned */
} part;

/* One writer and the batches of the partitions it owns
 * (lanes.c). */
typedef struct lane {
    pi_writer *w;      /* used by the pipeline's thread only; NULL: dry run */
    pi_pipeline *pipe; /* owns the batch in flight */
    atomic_int cancel; /* w's opts.cancel */
    pi_batch *fill;    /* being filled */
    pi_batch *spare;   /* written and reset, ready to fill next */
    pi_batch *requeue; /* came back unwritten: write before fill */
    int64_t fill_since_ms;
} lane;

struct pi_consumer {
    const pi_config *cfg;
    rd_kafka_t *rk;
    pi_writer *meta; /* this thread's connection: offsets on assignment */
    lane *lanes;     /* cfg->writers of them */
    size_t n_lanes;
    pi_decoder *dec;
    bool paused;
    bool cooperative; /* the assignor's protocol, from the configuration */
    int64_t reset;    /* where a partition with no row in ingest_offsets
                         starts: RD_KAFKA_OFFSET_BEGINNING, _END, or
                         _INVALID (librdkafka's auto.offset.reset=error) */
    int64_t revoke_budget_ms; /* longest flush inside a revoke */
    int64_t stop_deadline;    /* once stopping: when to give up flushing */
    part *parts;
    size_t n_parts, cap_parts;
    size_t last_part; /* cache for the per-message lookup */
    pi_commit_log *log;
    pi_commit_pos *scratch_pos; /* for pi_commit_log_add */
    size_t cap_scratch_pos;
    pi_write_stats total;
    const atomic_int *stop;
    pi_kafka_cause cause; /* what librdkafka's errors said, for start-up */
    int fatal;
    pi_err fatal_err;
    bool closed; /* left the group cleanly */
    /* replay: bounded, assigned, no group (bounded.c) */
    bool replay;
    size_t parts_total, parts_done;
    int64_t replay_total;   /* messages in all ranges */
    int64_t replay_missing; /* asked for but no longer on the broker */
    int64_t progress_shown; /* ms of the last progress line */
    bool progress_tty;      /* a self-updating line on stderr */
    int64_t started_ms;
};

/* parts.c */
part *pi_consumer__find_part(pi_consumer *c, const char *topic,
                             int32_t partition, bool create);
/* The lane of a partition among n_lanes: partition mod n_lanes (-1, a
 * message with no partition, is lane 0). */
size_t pi_consumer__lane_index(int32_t partition, size_t n_lanes);
lane *pi_consumer__lane(pi_consumer *c, int32_t partition);
/* Drop every buffered message of (topic, partition), in flight excepted. */
void pi_consumer__drop(pi_consumer *c, const char *topic, int32_t partition);

/* lanes.c */
/* cfg->writers lanes, each with its writer (none with dry_run) made from
 * wopts and its pipeline. On failure what was made stays for
 * pi_consumer__lanes_destroy. */
int pi_consumer__lanes_new(pi_consumer *c, const pi_writer_opts *wopts,
                           bool dry_run, pi_err *err);
void pi_consumer__lanes_destroy(pi_consumer *c);
bool pi_consumer__full(const pi_consumer *c, const lane *l);
/* A lane whose filling batch is full while its writer is busy, or NULL. */
lane *pi_consumer__backlog(pi_consumer *c);
bool pi_consumer__any_full(const pi_consumer *c);
bool pi_consumer__idle(pi_consumer *c); /* no batch in flight anywhere */
size_t pi_consumer__buffered(const pi_consumer *c); /* filling + requeued */
/* Take back what the writers finished: waiting up to wait_ms for wait_on
 * (may be NULL), not at all for the others. */
void pi_consumer__collect(pi_consumer *c, lane *wait_on, int wait_ms);
void pi_consumer__drain(pi_consumer *c, int64_t deadline, bool sync_commit);
void pi_consumer__submit(pi_consumer *c, bool force);

/* rebalance.c */
void pi_consumer__rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t kerr,
                               rd_kafka_topic_partition_list_t *parts,
                               void *opaque);

/* bounded.c */
int pi_consumer__replay_start(pi_consumer *c, pi_err *err);
void pi_consumer__replay_message(pi_consumer *c, part *p, int64_t offset,
                                 bool *take);
void pi_consumer__replay_eof(pi_consumer *c, const rd_kafka_message_t *rkm);
bool pi_consumer__replay_finished(pi_consumer *c);
void pi_consumer__replay_progress(pi_consumer *c, bool last);

/* positions.c */
int pi_consumer__stored_offset(pi_consumer *c, const char *topic,
                               int32_t partition, int64_t *next);
void pi_consumer__commit_assigned(pi_consumer *c,
                                  const rd_kafka_topic_partition_list_t *parts);
void pi_consumer__commit_positions(pi_consumer *c, const pi_batch *batch,
                                   bool sync);
void pi_consumer__stamp_expected(pi_consumer *c, pi_batch *batch);
void pi_consumer__note_committed(pi_consumer *c, const pi_batch *batch,
                                 const pi_write_stats *stats);
int pi_consumer__resync(pi_consumer *c, pi_batch *batch);

#endif
