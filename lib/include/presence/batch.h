/* batch.h -- messages decoded and waiting to be written in one transaction
 *
 * A batch owns everything a write needs: the decoded presences and rejects,
 * the per-message provenance (topic, partition, offset, key; the raw value is
 * copied only for messages that produced a decoder reject), and per partition
 * the range of offsets covered. Strings live in the batch's arena, so a batch
 * in steady state allocates nothing per message. Single-threaded; the pipeline
 * hands whole batches between threads.
 */
#ifndef PRESENCE_BATCH_H
#define PRESENCE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "presence/decode.h"

/* Provenance of one message, indexed by the tag stamped on its presences and
 * rejects. */
typedef struct pi_msg_meta {
    uint32_t topic;    /* index for pi_batch_topic() */
    int32_t partition; /* -1 for `load` */
    int64_t offset;    /* Kafka offset, or line number for `load` */
    pi_str key;        /* ptr NULL when the message had no key */
    pi_str payload;    /* ptr NULL unless the message has a reject */
    uint32_t skipped;  /* envelopes of this message the decoder skipped */
} pi_msg_meta;

/* The offsets a batch covers on one partition. */
typedef struct pi_position {
    uint32_t topic;
    int32_t partition;
    int64_t first_offset; /* lowest offset in the batch */
    int64_t next_offset;  /* highest offset in the batch + 1 */
    int64_t expected;     /* the partition's ingest_offsets.next_offset as
                             the writer's caller believes it stored, or -1
                             (no belief); see pi_writer_write */
} pi_position;

typedef struct pi_batch pi_batch;

void pi_batch_new(pi_batch **out);
void pi_batch_destroy(pi_batch *batch);

/* Forget every message; keep the memory. */
void pi_batch_reset(pi_batch *batch);

/* Decode one message value with dec and add the result. topic is copied once
 * per distinct name. Never fails: bad input becomes rejects. */
void pi_batch_add(pi_batch *batch, pi_decoder *dec, const char *topic,
                  int32_t partition, int64_t offset, const void *key,
                  size_t key_len, const void *value, size_t value_len);

/* Add a message that is rejected without decoding, with one reject (element
 * 0, code, detail) and value as its payload: for a caller that could not
 * hold the whole value (`load` keeps only the first max_message_bytes of an
 * overlong line, and says so in detail). value_len counts in
 * pi_batch_bytes. */
void pi_batch_add_reject(pi_batch *batch, const char *topic, int32_t partition,
                         int64_t offset, const void *key, size_t key_len,
                         const void *value, size_t value_len,
                         pi_reject_code code, const char *detail);

/* Remove every message of (topic, partition) from the batch (a lost or
 * revoked partition that will be redelivered to its next owner). */
void pi_batch_drop_partition(pi_batch *batch, const char *topic,
                             int32_t partition);

size_t pi_batch_messages(const pi_batch *batch);
size_t pi_batch_bytes(const pi_batch *batch); /* sum of value lengths */
uint64_t pi_batch_skipped(const pi_batch *batch);
const pi_decode_result *pi_batch_result(const pi_batch *batch);
const pi_msg_meta *pi_batch_msg(const pi_batch *batch, uint32_t tag);
const char *pi_batch_topic(const pi_batch *batch, uint32_t topic);
/* One entry per (topic, partition) present, in order of first appearance. */
const pi_position *pi_batch_positions(const pi_batch *batch, size_t *n);

/* Set the expected stored offset of position i (pi_batch_positions). Does
 * not change the batch's version: it is not content. */
void pi_batch_set_expected(pi_batch *batch, size_t i, int64_t expected);

/* Changes whenever the batch's content does (add, drop, reset): with the
 * batch's address, it tells whether a batch is the one seen before. */
uint64_t pi_batch_version(const pi_batch *batch);

#endif
