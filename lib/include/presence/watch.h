/* watch.h -- `presence-ingest watch`: the status change log (migration 0008,
 * CONTRACT §8 "Status changes") printed as it grows
 *
 * On one connection of its own: LISTEN presence_status, then
 *
 *   SELECT seq, recorded_at, asset, state, since, reason, connection_id,
 *          previous_state, previous_since, <ms until since + offline_for>
 *   FROM asset_status_changes WHERE seq > $last ORDER BY seq LIMIT 1000
 *
 * whenever a notification comes (the payload is not trusted: the query
 * decides what is new), and every 10 s without one (which also notices a
 * connection that died silently). --asset is applied to the rows read, so
 * that $last moves on past the other assets' changes. $last is the highest seq
 * read; seq order is commit order (0008), so nothing is missed and nothing read
 * twice. A lost connection is opened again with exponential backoff (100 ms to
 * 5 s, jittered), LISTENs again and reads on from $last: a PostgreSQL restart
 * costs a delay, not a change.
 *
 * offline_for_ms > 0 debounces: a change to offline is held back until the
 * asset has been offline for that long by its `since` (the disconnect's
 * time, on the server's clock), and dropped, together with the change that
 * ends it, when the asset's next change comes first. A change already that
 * old prints at once. Held changes print when due (so lines may come out of
 * seq order). At most one held change per asset (watch_int.h).
 *
 * Not through PgBouncer in transaction (or statement) pooling mode: LISTEN
 * needs the same server session all along. Connect directly, or through a
 * session-pooled pool.
 */
#ifndef PRESENCE_WATCH_H
#define PRESENCE_WATCH_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "presence/err.h"
#include "presence/report.h"

typedef struct pi_watch_opts {
    const char *conninfo;   /* NULL: libpq's PG* environment */
    int64_t after;          /* print changes with seq > after; < 0: from now */
    const char *state;      /* print only changes to this state; NULL: all */
    const char *asset;      /* only this asset; NULL: all */
    int64_t offline_for_ms; /* > 0: debounce offline changes (above) */
    const char *tz;         /* IANA zone of printed times */
    pi_report_format format;
} pi_watch_opts;

/* Print changes to out (flushed after each batch) until *stop is set: 0.
 * The first connection failing is an error (PI_ERETRY / PI_EFATAL; PI_ESCHEMA
 * when the database lacks migration 0008; PI_EINVAL for an unknown tz);
 * later ones are retried forever. PI_EFATAL when out cannot be written. */
PI_MUST_CHECK int pi_watch_run(const pi_watch_opts *o, FILE *out,
                               const atomic_int *stop, pi_err *err);

#endif
