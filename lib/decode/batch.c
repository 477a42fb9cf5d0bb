/* batch.c -- decoded messages with their provenance, waiting for one write */
#include "presence/batch.h"

#include <stdlib.h>
#include <string.h>

#include "presence/mem.h"

struct pi_batch {
    pi_arena arena; /* presence strings, reject details, kept keys/values */
    pi_decode_result res;
    pi_msg_meta *msgs;  /* indexed by tag */
    size_t *value_lens; /* parallel to msgs: for pi_batch_bytes after a drop */
    size_t n_msgs, cap_msgs, cap_lens;
    /* Topic names, kept across resets: a consumer sees the same few topics
     * in every batch, so each name is copied once per batch object. */
    char **topics;
    size_t n_topics, cap_topics;
    uint32_t last_topic;
    pi_position *positions;
    size_t n_positions, cap_positions;
    size_t bytes;
    uint64_t skipped;
    uint64_t version; /* changed by every add, drop and reset */
};

void pi_batch_new(pi_batch **out)
{
    pi_batch *batch = pi_calloc(1, sizeof(*batch));

    pi_arena_init(&batch->arena);
    pi_decode_result_init(&batch->res);
    *out = batch;
}

void pi_batch_destroy(pi_batch *batch)
{
    if (batch == NULL)
        return;
    pi_arena_fini(&batch->arena);
    pi_decode_result_fini(&batch->res);
    for (size_t i = 0; i < batch->n_topics; i++)
        free(batch->topics[i]);
    free(batch->topics);
    free(batch->msgs);
    free(batch->value_lens);
    free(batch->positions);
    free(batch);
}

void pi_batch_reset(pi_batch *batch)
{
    batch->version++;
    pi_arena_reset(&batch->arena);
    pi_decode_result_reset(&batch->res);
    batch->n_msgs = 0;
    batch->n_positions = 0;
    batch->bytes = 0;
    batch->skipped = 0;
}

static uint32_t topic_index(pi_batch *batch, const char *topic)
{
    if (batch->n_topics && strcmp(batch->topics[batch->last_topic], topic) == 0)
        return batch->last_topic;
    for (size_t i = 0; i < batch->n_topics; i++) {
        if (strcmp(batch->topics[i], topic) == 0)
            return batch->last_topic = (uint32_t)i;
    }
    pi_grow((void **)&batch->topics, &batch->cap_topics, batch->n_topics + 1,
            sizeof(*batch->topics));
    batch->topics[batch->n_topics] = pi_strdup(topic);
    return batch->last_topic = (uint32_t)batch->n_topics++;
}

static void note_position(pi_batch *batch, uint32_t topic, int32_t partition,
                          int64_t offset)
{
    pi_position *pos = NULL;

    /* Usually the same partition as the previous message: look from the
     * end. */
    for (size_t i = batch->n_positions; i-- > 0;) {
        if (batch->positions[i].topic == topic &&
            batch->positions[i].partition == partition) {
            pos = &batch->positions[i];
            break;
        }
    }
    if (pos == NULL) {
        pi_grow((void **)&batch->positions, &batch->cap_positions,
                batch->n_positions + 1, sizeof(*batch->positions));
        pos = &batch->positions[batch->n_positions++];
        pos->topic = topic;
        pos->partition = partition;
        pos->first_offset = offset;
        pos->next_offset = offset + 1;
        pos->expected = -1;
        return;
    }
    if (offset < pos->first_offset)
        pos->first_offset = offset;
    if (offset + 1 > pos->next_offset)
        pos->next_offset = offset + 1;
}

/* Append the meta of a new message; returns its tag. */
static uint32_t add_msg(pi_batch *batch, const char *topic, int32_t partition,
                        int64_t offset, size_t value_len)
{
    uint32_t t = topic_index(batch, topic);
    pi_msg_meta *m;

    pi_grow((void **)&batch->msgs, &batch->cap_msgs, batch->n_msgs + 1,
            sizeof(*batch->msgs));
    pi_grow((void **)&batch->value_lens, &batch->cap_lens, batch->n_msgs + 1,
            sizeof(*batch->value_lens));
    m = &batch->msgs[batch->n_msgs];
    m->topic = t;
    m->partition = partition;
    m->offset = offset;
    m->key.ptr = NULL;
    m->key.len = 0;
    m->payload.ptr = NULL;
    m->payload.len = 0;
    m->skipped = 0;
    batch->value_lens[batch->n_msgs] = value_len;
    batch->bytes += value_len;
    note_position(batch, t, partition, offset);
    return (uint32_t)batch->n_msgs++;
}

/* Keep the value: only messages with a decoder reject need it (the reject
 * row stores the raw bytes), so the common case copies nothing. */
static void keep_payload(pi_batch *batch, pi_msg_meta *m, const void *value,
                         size_t value_len)
{
    m->payload.ptr =
        pi_arena_memdup(&batch->arena, value ? value : "", value_len);
    m->payload.len = value_len;
}

/* Keys are kept for every message: they are short (or absent), and a reject
 * the writer makes later (id_conflict) records the key too. */
static void keep_key(pi_batch *batch, pi_msg_meta *m, const void *key,
                     size_t key_len)
{
    if (key) {
        m->key.ptr = pi_arena_memdup(&batch->arena, key, key_len);
        m->key.len = key_len;
    }
}

void pi_batch_add(pi_batch *batch, pi_decoder *dec, const char *topic,
                  int32_t partition, int64_t offset, const void *key,
                  size_t key_len, const void *value, size_t value_len)
{
    batch->version++;
    uint32_t tag = add_msg(batch, topic, partition, offset, value_len);
    size_t rejects = batch->res.n_rejects;
    uint64_t skipped = batch->res.skipped;

    keep_key(batch, &batch->msgs[tag], key, key_len);
    pi_decoder_decode(dec, value ? value : "", value_len, tag, &batch->res,
                      &batch->arena);
    batch->msgs[tag].skipped = (uint32_t)(batch->res.skipped - skipped);
    batch->skipped += batch->res.skipped - skipped;
    if (batch->res.n_rejects > rejects)
        keep_payload(batch, &batch->msgs[tag], value, value_len);
}

void pi_batch_add_reject(pi_batch *batch, const char *topic, int32_t partition,
                         int64_t offset, const void *key, size_t key_len,
                         const void *value, size_t value_len,
                         pi_reject_code code, const char *detail)
{
    batch->version++;
    uint32_t tag = add_msg(batch, topic, partition, offset, value_len);
    pi_decode_result *res = &batch->res;
    pi_reject *rej;

    pi_grow((void **)&res->rejects, &res->cap_rejects, res->n_rejects + 1,
            sizeof(*res->rejects));
    rej = &res->rejects[res->n_rejects++];
    rej->code = code;
    rej->element = 0;
    rej->tag = tag;
    rej->detail.len = strlen(detail);
    rej->detail.ptr = pi_arena_memdup(&batch->arena, detail, rej->detail.len);
    keep_key(batch, &batch->msgs[tag], key, key_len);
    keep_payload(batch, &batch->msgs[tag], value, value_len);
}

void pi_batch_drop_partition(pi_batch *batch, const char *topic,
                             int32_t partition)
{
    batch->version++;
    pi_decode_result *res = &batch->res;
    uint32_t t, *remap;
    size_t n = 0, np = 0, nr = 0, i;

    for (t = 0; t < batch->n_topics; t++) {
        if (strcmp(batch->topics[t], topic) == 0)
            break;
    }
    if (t == batch->n_topics)
        return;
    /* Compact the messages and renumber the tags of what stays, so that
     * tags keep indexing pi_batch_msg. Rare (a rebalance), so O(batch). */
    remap = pi_malloc((batch->n_msgs ? batch->n_msgs : 1) * sizeof(*remap));
    batch->bytes = 0;
    batch->skipped = 0;
    for (i = 0; i < batch->n_msgs; i++) {
        pi_msg_meta *m = &batch->msgs[i];
        if (m->topic == t && m->partition == partition) {
            remap[i] = UINT32_MAX;
            continue;
        }
        remap[i] = (uint32_t)n;
        batch->bytes += batch->value_lens[i];
        batch->skipped += m->skipped;
        batch->value_lens[n] = batch->value_lens[i];
        batch->msgs[n++] = *m;
    }
    batch->n_msgs = n;
    for (i = 0; i < res->n_presences; i++) {
        uint32_t tag = remap[res->presences[i].tag];
        if (tag == UINT32_MAX)
            continue;
        res->presences[np] = res->presences[i];
        res->presences[np++].tag = tag;
    }
    res->n_presences = np;
    for (i = 0; i < res->n_rejects; i++) {
        uint32_t tag = remap[res->rejects[i].tag];
        if (tag == UINT32_MAX)
            continue;
        res->rejects[nr] = res->rejects[i];
        res->rejects[nr++].tag = tag;
    }
    res->n_rejects = nr;
    res->skipped = batch->skipped;
    free(remap);
    for (i = 0; i < batch->n_positions; i++) {
        if (batch->positions[i].topic == t &&
            batch->positions[i].partition == partition) {
            memmove(&batch->positions[i], &batch->positions[i + 1],
                    (batch->n_positions - i - 1) * sizeof(*batch->positions));
            batch->n_positions--;
            break;
        }
    }
}

size_t pi_batch_messages(const pi_batch *batch)
{
    return batch->n_msgs;
}

size_t pi_batch_bytes(const pi_batch *batch)
{
    return batch->bytes;
}

uint64_t pi_batch_skipped(const pi_batch *batch)
{
    return batch->skipped;
}

const pi_decode_result *pi_batch_result(const pi_batch *batch)
{
    return &batch->res;
}

const pi_msg_meta *pi_batch_msg(const pi_batch *batch, uint32_t tag)
{
    return &batch->msgs[tag];
}

const char *pi_batch_topic(const pi_batch *batch, uint32_t topic)
{
    return batch->topics[topic];
}

const pi_position *pi_batch_positions(const pi_batch *batch, size_t *n)
{
    *n = batch->n_positions;
    return batch->positions;
}

void pi_batch_set_expected(pi_batch *batch, size_t i, int64_t expected)
{
    batch->positions[i].expected = expected;
}

uint64_t pi_batch_version(const pi_batch *batch)
{
    return batch->version;
}
