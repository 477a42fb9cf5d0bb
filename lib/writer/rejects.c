/* rejects.c -- the rejects of a batch: collected, then one COPY */
#include "presence/writer.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presence/db.h"
#include "presence/log.h"
#include "presence/mem.h"
#include "writer_int.h"

static const char rejects_sql[] =
    "INSERT INTO presence_rejects (topic, partition, \"offset\", element,"
    " error, detail, payload, key)"
    " SELECT topic, partition, \"offset\", element, error, detail, payload,"
    " key FROM pi_stage_rejects"
    " ON CONFLICT (topic, partition, \"offset\", element) DO NOTHING";

/* The payload of a writer reject: the element as a presence object. The raw
 * value is only kept for messages with decoder rejects (batch.h), and for an
 * array the element alone is what one would re-drive. */
static pi_str element_json(pi_writer *w, const pi_presence *pr)
{
    size_t start = w->out.len; /* w->out holds the COPY being built */
    pi_str out;

    pi_json_presence(&w->out, pr);
    out.len = w->out.len - start;
    out.ptr = pi_arena_memdup(&w->scratch, w->out.ptr + start, out.len);
    w->out.len = start;
    return out;
}

void pi_writer__add_xrej(pi_writer *w, uint32_t presence, pi_reject_code code,
                         const pi_sbuf *sb)
{
    xrej *x;

    pi_grow((void **)&w->xrejs, &w->cap_xrejs, w->n_xrejs + 1,
            sizeof(*w->xrejs));
    x = &w->xrejs[w->n_xrejs++];
    x->presence = presence;
    x->code = code;
    x->detail = pi_text_clean(&w->scratch, sb->data, sb->len);
    if (x->detail.ptr == sb->data)
        x->detail.ptr = pi_arena_memdup(&w->scratch, sb->data, sb->len);
}

static void reject_row(pi_writer *w, const pi_batch *batch, uint32_t tag,
                       uint32_t element, pi_reject_code code, pi_str detail,
                       pi_str payload)
{
    const pi_msg_meta *m = pi_batch_msg(batch, tag);
    const char *topic = w->topics[m->topic];
    const char *name = pi_reject_code_name(code);

    pi_wbuf_i16(&w->out, 8);
    pi_copy_bytes(&w->out, topic, strlen(topic));
    pi_copy_i32(&w->out, m->partition);
    pi_copy_i64(&w->out, m->offset);
    pi_copy_i32(&w->out, (int32_t)element);
    pi_copy_bytes(&w->out, name, strlen(name));
    pi_copy_bytes(&w->out, detail.ptr ? detail.ptr : "", detail.len);
    pi_copy_bytes(&w->out, payload.ptr, payload.len);
    pi_copy_bytes(&w->out, m->key.ptr, m->key.len);
}

int pi_writer__write_rejects(pi_writer *w, const pi_batch *batch, pi_err *err)
{
    const pi_decode_result *res = pi_batch_result(batch);
    const pi_str none = {NULL, 0};
    PGresult *pres;
    size_t n = 0;
    int rc;

    pi_copy_header(&w->out);
    for (size_t i = 0; i < res->n_rejects; i++) {
        const pi_reject *rj = &res->rejects[i];
        const pi_msg_meta *m = pi_batch_msg(batch, rj->tag);
        if (w->fenced[rj->tag])
            continue;
        /* The raw value once per message (CONTRACT §4): on its first
         * rejected element, the decoder's rejects of a message being
         * consecutive and in element order; NULL on the others. */
        bool first = i == 0 || res->rejects[i - 1].tag != rj->tag;
        reject_row(w, batch, rj->tag, rj->element, rj->code,
                   pi_text_clean(&w->scratch, rj->detail.ptr, rj->detail.len),
                   first ? m->payload : none);
        w->cur.rejected++;
        w->cur.rejects_by_code[rj->code]++;
        n++;
    }
    for (size_t i = 0; i < w->n_xrejs; i++) {
        const pi_presence *pr = &res->presences[w->xrejs[i].presence];
        reject_row(w, batch, pr->tag, pr->element, w->xrejs[i].code,
                   w->xrejs[i].detail, element_json(w, pr));
        w->cur.rejects_by_code[w->xrejs[i].code]++;
        n++;
    }
    if (n == 0)
        return 0;
    pi_wbuf_i16(&w->out, -1);
    rc = pi_writer__send_copy(
        w, "COPY pi_stage_rejects FROM STDIN (FORMAT binary)",
        "COPY into pi_stage_rejects", err);
    if (rc)
        return rc;
    pres = PQexec(w->conn, rejects_sql);
    if (PQresultStatus(pres) != PGRES_COMMAND_OK)
        rc = pi_writer__fail(w, pres, "inserting into presence_rejects", err);
    PQclear(pres);
    return rc;
}
