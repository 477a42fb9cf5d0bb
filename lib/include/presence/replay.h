/* replay.h -- the range of a `replay`: parsed from its options, resolved
 * against the broker into per-partition offsets [start, end)
 *
 * Start: --from-beginning (the default: each partition's log start),
 * --from TIME, --from-offset N (every partition) or --from-offsets P:N,…
 * End (exclusive): --to TIME, --to-offset N or --to-offsets P:N,…; by
 * default the high watermark of each partition, taken once at start. TIME is
 * RFC 3339 or relative to now (-90s, -15m, -2h, -7d) and selects by the
 * Kafka message timestamp (rd_kafka_offsets_for_times: the first offset
 * whose timestamp is at or after TIME), the only index the broker has.
 * --partitions 0,2,5 restricts the partitions (default: all).
 *
 * Errors (PI_EINVAL, one line): two start or two end forms, a malformed
 * TIME, offset or list, --to before --from when both are offsets or both
 * times, an unknown topic, a partition the topic does not have. An offset
 * below a partition's log start starts at the log start and counts the
 * difference as missing (the caller warns); an end beyond the high
 * watermark is the high watermark.
 */
#ifndef PRESENCE_REPLAY_H
#define PRESENCE_REPLAY_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "presence/config.h"
#include "presence/err.h"

typedef enum pi_replay_kind {
    PI_REPLAY_EDGE = 0, /* log start (from) or high watermark (to) */
    PI_REPLAY_TIME,     /* .time_ms */
    PI_REPLAY_OFFSET,   /* .offset, every partition */
    PI_REPLAY_OFFSETS   /* .list, per partition (others: the edge) */
} pi_replay_kind;

typedef struct pi_replay_pair {
    int32_t partition;
    int64_t offset;
} pi_replay_pair;

typedef struct pi_replay_end {
    pi_replay_kind kind;
    int64_t time_ms; /* since the epoch */
    int64_t offset;
    pi_replay_pair *list;
    size_t n_list;
} pi_replay_end;

typedef struct pi_replay_spec {
    pi_replay_end from, to;
    int32_t *partitions; /* NULL: all */
    size_t n_partitions;
} pi_replay_spec;

/* One partition's resolved range. */
typedef struct pi_replay_range {
    int32_t partition;
    int64_t start, end; /* start >= end: nothing to read */
    int64_t missing;    /* asked for below the log start, no longer there */
} pi_replay_range;

/* Parse cfg's replay options; now_ms is the clock for relative times. */
PI_MUST_CHECK int pi_replay_spec_parse(pi_replay_spec *spec,
                                       const pi_config *cfg, int64_t now_ms,
                                       pi_err *err);
void pi_replay_spec_fini(pi_replay_spec *spec);

/* A TIME (RFC 3339, or -N followed by s, m, h or d: that long before now_ms)
 * in milliseconds since the epoch; -1 if malformed. */
int64_t pi_replay_parse_time(const char *s, int64_t now_ms);

/* Resolve spec for topic on the broker: *out (malloc'd, the caller frees)
 * gets one range per selected partition, in partition order. PI_EINVAL for
 * an unknown topic or partition, PI_ERETRY when the broker does not
 * answer. */
PI_MUST_CHECK int pi_replay_resolve(rd_kafka_t *rk, const char *topic,
                                    const pi_replay_spec *spec,
                                    pi_replay_range **out, size_t *n,
                                    pi_err *err);

#endif
