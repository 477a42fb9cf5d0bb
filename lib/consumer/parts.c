/* parts.c -- the consumer's table of partitions, and which lane holds each */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "consumer_int.h"
#include "presence/batch.h"
#include "presence/mem.h"

part *pi_consumer__find_part(pi_consumer *c, const char *topic,
                             int32_t partition, bool create)
{
    if (c->last_part < c->n_parts) {
        part *p = &c->parts[c->last_part];
        if (p->partition == partition && strcmp(p->topic, topic) == 0)
            return p;
    }
    for (size_t i = 0; i < c->n_parts; i++) {
        part *p = &c->parts[i];
        if (p->partition == partition && strcmp(p->topic, topic) == 0) {
            c->last_part = i;
            return p;
        }
    }
    if (!create)
        return NULL;
    pi_grow((void **)&c->parts, &c->cap_parts, c->n_parts + 1,
            sizeof(*c->parts));
    part *p = &c->parts[c->n_parts];
    p->topic = pi_strdup(topic);
    p->partition = partition;
    p->assigned = false;
    p->next = -1;
    p->committed = -1;
    p->stored = -1;
    p->origin = -1;
    c->last_part = c->n_parts;
    return &c->parts[c->n_parts++];
}

size_t pi_consumer__lane_index(int32_t partition, size_t n_lanes)
{
    return partition < 0 ? 0 : (size_t)partition % n_lanes;
}

lane *pi_consumer__lane(pi_consumer *c, int32_t partition)
{
    return &c->lanes[pi_consumer__lane_index(partition, c->n_lanes)];
}

void pi_consumer__drop(pi_consumer *c, const char *topic, int32_t partition)
{
    lane *l = pi_consumer__lane(c, partition);

    pi_batch_drop_partition(l->fill, topic, partition);
    if (l->requeue)
        pi_batch_drop_partition(l->requeue, topic, partition);
}
