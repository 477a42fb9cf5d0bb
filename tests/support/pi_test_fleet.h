/* pi_test_fleet.h -- a realistic fleet of devices, as a stream of presences
 *
 * Each asset is declared (declare_asset) when it first appears, then
 * alternates connect (a device-side reason of presences-format.txt) and,
 * after a session of realistic length, disconnect (a server-side reason, now
 * and then "Unhandled reason <8 digits>, please contact maintainer"), then
 * an offline gap. Sessions: mostly minutes to hours, some lasting days; about
 * one asset in 50 flaps (sessions and gaps of a few minutes). Some
 * disconnects are lost (the next connect supersedes the session), some
 * reconnect attempts fail first (failed_connect, asset null), and some
 * events are emitted late: a few hundred lines after their time order, as
 * when a partition lags. Ids are CloudConnect-like: id >> 22 is the event's
 * milliseconds since 2010-01-01T00:00:00Z, the low 22 bits a sequence; a
 * session's connection_id is its connect's id. Times carry one of a few UTC
 * offsets. Deterministic: the same parameters give the same stream.
 */
#ifndef PI_TEST_FLEET_H
#define PI_TEST_FLEET_H

#include <stddef.h>
#include <stdint.h>

typedef struct pi_fleet pi_fleet;

/* A fleet of n_assets assets whose events end around end_ms (ms since 1970)
 * and start early enough for about `events` events in all (an asset has an
 * event every hour on average), or span_ms before end_ms when that is
 * longer (every session and gap then lasts proportionally longer: the same
 * number of events, spread thinner). seed varies the stream. */
pi_fleet *pi_fleet_new(uint64_t n_assets, uint64_t events, int64_t end_ms,
                       int64_t span_ms, uint64_t seed);
void pi_fleet_destroy(pi_fleet *fleet);

/* Add the incidents a quickstart shows (call before the first
 * pi_fleet_next): a server restart at restart_ms, where every asset online
 * then is disconnected at once (server_shutdown) and reconnects 20 s to
 * 16 min later (closed_by_server); asset #1 flaps all along; asset #2 stays
 * offline from its first disconnect in the last quiet_ms before the end
 * (0: none of these two). */
void pi_fleet_incidents(pi_fleet *fleet, int64_t restart_ms, int64_t quiet_ms);

/* Write the next presence as one JSON object (no newline) into buf and
 * return its length; 0 when the stream is over: `events` were made or
 * end_ms reached, and the late ones held back were written too. */
size_t pi_fleet_next(pi_fleet *fleet, char *buf, size_t cap);

#endif
