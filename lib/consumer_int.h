/* consumer_int.h -- the consumer's state, shared by its files
 *
 * consumer.c owns the poll loop and batching; consumer_writers.c the
 * writers (lanes) and the hand-off to them; consumer_rebalance.c the answers to
 * assignments and revocations; consumer_positions.c what is stored where: the
 * positions believed in ingest_offsets, the compare-and-set stamps, the re-read
 * after a database went back, and the commits to Kafka. All run on the
 * consumer's one thread.
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
 * (consumer_writers.c). */
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
    /* replay: bounded, assigned, no group (consumer_replay.c) */
    bool replay;
    size_t parts_total, parts_done;
    int64_t replay_total;   /* messages in all ranges */
    int64_t replay_missing; /* asked for but no longer on the broker */
    int64_t progress_shown; /* ms of the last progress line */
    bool progress_tty;      /* a self-updating line on stderr */
    int64_t started_ms;
};

static inline int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* consumer.c */
part *pi_consumer_find_part(pi_consumer *c, const char *topic,
                            int32_t partition, bool create);

/* consumer_writers.c */
/* The lane of a partition among n_lanes: partition mod n_lanes (-1, a
 * message with no partition, is lane 0). */
size_t pi_lane_index(int32_t partition, size_t n_lanes);
/* cfg->writers lanes, each with its writer (none with dry_run) made from
 * wopts and its pipeline. On failure what was made stays for
 * pi_consumer_lanes_destroy. */
int pi_consumer_lanes_new(pi_consumer *c, const pi_writer_opts *wopts,
                          bool dry_run, pi_err *err);
void pi_consumer_lanes_destroy(pi_consumer *c);
lane *pi_consumer_lane(pi_consumer *c, int32_t partition);
bool pi_consumer_full(const pi_consumer *c, const lane *l);
/* A lane whose filling batch is full while its writer is busy, or NULL. */
lane *pi_consumer_backlog(pi_consumer *c);
bool pi_consumer_any_full(const pi_consumer *c);
bool pi_consumer_idle(pi_consumer *c); /* no batch in flight anywhere */
size_t pi_consumer_buffered(const pi_consumer *c); /* filling + requeued */
/* Drop every buffered message of (topic, partition), in flight excepted. */
void pi_consumer_drop(pi_consumer *c, const char *topic, int32_t partition);
/* Take back what the writers finished: waiting up to wait_ms for wait_on
 * (may be NULL), not at all for the others. */
void pi_consumer_collect(pi_consumer *c, lane *wait_on, int wait_ms);
void pi_consumer_drain(pi_consumer *c, int64_t deadline, bool sync_commit);
void pi_consumer_submit(pi_consumer *c, bool force);

/* consumer_rebalance.c */
void pi_consumer_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t kerr,
                              rd_kafka_topic_partition_list_t *parts,
                              void *opaque);

/* consumer_replay.c */
int pi_consumer_replay_start(pi_consumer *c, pi_err *err);
void pi_consumer_replay_message(pi_consumer *c, part *p, int64_t offset,
                                bool *take);
void pi_consumer_replay_eof(pi_consumer *c, const rd_kafka_message_t *rkm);
bool pi_consumer_replay_finished(pi_consumer *c);
void pi_consumer_replay_progress(pi_consumer *c, bool last);

/* consumer_positions.c */
int pi_consumer_stored_offset(pi_consumer *c, const char *topic,
                              int32_t partition, int64_t *next);
void pi_consumer_commit_assigned(pi_consumer *c,
                                 const rd_kafka_topic_partition_list_t *parts);
void pi_consumer_commit_positions(pi_consumer *c, const pi_batch *batch,
                                  bool sync);
void pi_consumer_stamp_expected(pi_consumer *c, pi_batch *batch);
void pi_consumer_note_committed(pi_consumer *c, const pi_batch *batch,
                                const pi_write_stats *stats);
int pi_consumer_resync(pi_consumer *c, pi_batch *batch);

#endif
