/* pi_test_fleet.c -- a realistic fleet of devices as a stream of presences */
#include "pi_test_fleet.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "presence/mem.h"

#define EPOCH_2010_MS INT64_C(1262304000000)
/* Mean time between two events of one asset: sessions of 0.9 × 1.5 h +
 * 0.1 × 24 h, gaps of 0.5 h, so a connect and a disconnect every 4.25 h;
 * the flapping assets (1 in 50, 50 times as many events) about double
 * that. */
#define MEAN_EVENT_MS INT64_C(3800000)
/* Events held back and emitted later (out of order). */
#define LATE_SLOTS 512

typedef enum { NEXT_DECLARE, NEXT_CONNECT, NEXT_DISCONNECT } next_kind;

typedef struct fleet_asset {
    int64_t next_ms; /* time of its next event */
    int64_t conn;    /* connection id of the open session, 0: none */
    uint32_t n;      /* its number: the IMEI-like name is derived from it */
    uint8_t next;    /* next_kind */
    uint8_t flappy;
    uint8_t restarted; /* its next connect follows the server restart */
} fleet_asset;

typedef struct event {
    int64_t id, conn, ms;
    const char *type, *reason;
    uint32_t asset; /* UINT32_MAX: null */
    int16_t offset_min;
    uint32_t unhandled; /* reason "Unhandled reason <this>, …" when set */
} event;

struct pi_fleet {
    fleet_asset *assets; /* a min-heap on next_ms */
    uint64_t n_assets;
    int64_t end_ms;
    uint64_t rng;
    uint64_t seq;
    double scale;   /* durations × this (a longer span, same events) */
    uint64_t limit; /* events to make, at most */
    uint64_t made;
    event late[LATE_SLOTS]; /* held back; ms == 0: free */
    uint64_t pending;       /* events waiting after a failed_connect */
    event queued[2];
    int n_queued;
    /* pi_fleet_incidents: the restart (0: none or done), its burst of
     * disconnects, and asset #2's quiet period. */
    int64_t restart_ms, quiet_from_ms;
    event *burst;
    size_t n_burst, burst_pos;
};

static const char *const connect_reasons[] = {
    "cold_boot",       "suspend_boot", "idle_out",   "idle_out",
    "idle_out",        "ppp_lost",     "ppp_lost",   "modem_reset",
    "sim_error",       "write_error",  "read_error", "closed_by_server",
    "closed_by_server"};
static const char *const disconnect_reasons[] = {"socket_closed",
                                                 "socket_closed",
                                                 "socket_closed",
                                                 "network_error",
                                                 "network_error",
                                                 "client_disconnect",
                                                 "network_activity_timeout",
                                                 "network_activity_timeout",
                                                 "network_activity_timeout",
                                                 "message_ack_timeout",
                                                 "basevalue_ack_timeout",
                                                 "unknown_channel",
                                                 "unknown_dynamic_channel",
                                                 "server_shutdown"};
static const int16_t offsets[] = {0, 0, 60, 120, -300, 330};

static uint64_t next_rand(pi_fleet *f)
{
    /* splitmix64 */
    uint64_t z = (f->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform(pi_fleet *f)
{
    return ((double)(next_rand(f) >> 11) + 0.5) / 9007199254740992.0;
}

static int64_t exp_ms(pi_fleet *f, double mean_ms)
{
    return 1000 + (int64_t)(-log(uniform(f)) * mean_ms);
}

#define PICK(f, list) (list)[next_rand(f) % (sizeof(list) / sizeof((list)[0]))]

static void sift_down(pi_fleet *f, uint64_t i)
{
    fleet_asset *a = f->assets;

    for (;;) {
        uint64_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < f->n_assets && a[l].next_ms < a[m].next_ms)
            m = l;
        if (r < f->n_assets && a[r].next_ms < a[m].next_ms)
            m = r;
        if (m == i)
            return;
        fleet_asset t = a[i];
        a[i] = a[m];
        a[m] = t;
        i = m;
    }
}

pi_fleet *pi_fleet_new(uint64_t n_assets, uint64_t events, int64_t end_ms,
                       int64_t span_ms, uint64_t seed)
{
    pi_fleet *f = pi_calloc(1, sizeof(*f));
    int64_t span =
        (int64_t)(events / (n_assets ? n_assets : 1)) * MEAN_EVENT_MS;
    int64_t start;

    /* A longer span than the events need: every duration stretched. */
    if (span_ms > span && span > 0)
        f->scale = (double)span_ms / (double)span;
    else
        f->scale = 1;
    if (span_ms > span)
        span = span_ms;
    start = end_ms - (span > 3600000 ? span : 3600000);

    f->n_assets = n_assets ? n_assets : 1;
    f->limit = events;
    f->assets = pi_calloc(f->n_assets, sizeof(fleet_asset));
    f->end_ms = end_ms;
    f->rng = seed * 0x2545f4914f6cdd1dULL + 1;
    for (uint64_t i = 0; i < f->n_assets; i++) {
        fleet_asset *a = &f->assets[i];
        a->n = (uint32_t)i;
        a->flappy = next_rand(f) % 50 == 0;
        a->next = NEXT_DECLARE;
        /* Devices join over the first tenth of the span. */
        a->next_ms = start + (int64_t)(uniform(f) * (double)(span / 10 + 1));
    }
    for (uint64_t i = f->n_assets / 2 + 1; i-- > 0;)
        sift_down(f, i);
    return f;
}

void pi_fleet_destroy(pi_fleet *f)
{
    if (f == NULL)
        return;
    free(f->assets);
    free(f->burst);
    free(f);
}

static int64_t new_id(pi_fleet *f, int64_t ms)
{
    return ((ms - EPOCH_2010_MS) << 22) | (int64_t)(f->seq++ & 0x3fffff);
}

void pi_fleet_incidents(pi_fleet *f, int64_t restart_ms, int64_t quiet_ms)
{
    f->restart_ms = restart_ms;
    f->quiet_from_ms = quiet_ms ? f->end_ms - quiet_ms : 0;
    for (uint64_t i = 0; i < f->n_assets; i++) {
        if (f->assets[i].n == 1)
            f->assets[i].flappy = 1;
    }
}

/* The server restarts: every asset in a session is disconnected at
 * restart_ms (within a second, in asset order), and reconnects 20 s to
 * 16 min later (their back-off). */
static void restart(pi_fleet *f)
{
    int64_t t = f->restart_ms;

    f->burst = pi_calloc(f->n_assets + 1, sizeof(event));
    for (uint64_t i = 0; i < f->n_assets; i++) {
        fleet_asset *a = &f->assets[i];
        event *ev;

        if (a->next != NEXT_DISCONNECT || a->conn == 0)
            continue;
        ev = &f->burst[f->n_burst++];
        ev->ms = t + (int64_t)(next_rand(f) % 1000);
        ev->id = new_id(f, ev->ms);
        ev->conn = a->conn;
        ev->type = "disconnect";
        ev->reason = "server_shutdown";
        ev->asset = a->n;
        ev->offset_min = offsets[a->n % (sizeof(offsets) / sizeof(offsets[0]))];
        a->conn = 0;
        a->next = NEXT_CONNECT;
        a->restarted = 1;
        a->next_ms = t + 60000 + (int64_t)(next_rand(f) % 900000);
    }
    for (uint64_t i = f->n_assets / 2 + 1; i-- > 0;)
        sift_down(f, i);
    f->restart_ms = 0;
}

/* Advance the asset at the top of the heap by one step into ev. */
static void step(pi_fleet *f, event *ev)
{
    fleet_asset *a = &f->assets[0];
    double k = (a->flappy ? 0.02 : 1.0) * f->scale;

    memset(ev, 0, sizeof(*ev));
    ev->ms = a->next_ms;
    ev->asset = a->n;
    ev->offset_min = offsets[a->n % (sizeof(offsets) / sizeof(offsets[0]))];
    ev->id = new_id(f, ev->ms);
    if (a->next == NEXT_DECLARE) {
        ev->type = "declare_asset";
        ev->reason = "declared";
        ev->conn = ev->id;
        a->next = NEXT_CONNECT;
        /* One asset in 10 was already connected when the stream starts:
         * its first disconnect has no connect (an orphan). */
        if (next_rand(f) % 10 == 0) {
            a->next = NEXT_DISCONNECT;
            a->conn = new_id(f, ev->ms - 3600000);
        }
        a->next_ms += 1000 + (int64_t)(next_rand(f) % 60000);
    } else if (a->next == NEXT_CONNECT) {
        ev->type = "connect";
        ev->reason = PICK(f, connect_reasons);
        if (a->restarted)
            ev->reason = "closed_by_server";
        a->restarted = 0;
        ev->conn = a->conn = ev->id;
        a->next = NEXT_DISCONNECT;
        /* Most sessions last minutes to hours, one in ten about a day. */
        a->next_ms +=
            exp_ms(f, k * (next_rand(f) % 10 == 0 ? 86400000.0 : 5400000.0));
    } else {
        double u = uniform(f);
        ev->type = "disconnect";
        ev->conn = a->conn;
        if (u < 0.03) {
            /* A handful of codes, as a server's unhandled errors are. */
            ev->unhandled = 95074823 - 7919 * (uint32_t)(next_rand(f) % 12);
            ev->reason = "";
        } else {
            ev->reason = PICK(f, disconnect_reasons);
        }
        a->conn = 0;
        a->next = NEXT_CONNECT;
        a->next_ms += exp_ms(f, k * 1800000.0);
        /* The asset that goes quiet: offline from here to the end. */
        if (a->n == 2 && f->quiet_from_ms && ev->ms >= f->quiet_from_ms)
            a->next_ms = INT64_MAX;
        /* One disconnect in 50 is lost; one reconnect in 20 fails first. */
        if (next_rand(f) % 50 == 0 && a->next_ms != INT64_MAX)
            ev->type = NULL;
        else if (next_rand(f) % 20 == 0) {
            event *fc = &f->queued[f->n_queued++];
            memset(fc, 0, sizeof(*fc));
            fc->ms = ev->ms + 1 + (int64_t)(next_rand(f) % 1000);
            fc->id = new_id(f, fc->ms);
            fc->conn = fc->id;
            fc->type = "failed_connect";
            fc->reason = PICK(f, connect_reasons);
            fc->asset = UINT32_MAX;
        }
    }
    sift_down(f, 0);
}

static size_t format(char *buf, size_t cap, const event *ev)
{
    int64_t local = ev->ms + ev->offset_min * 60000;
    time_t secs = (time_t)(local / 1000);
    struct tm tm;
    char when[48], asset[32], reason[64], off[8];
    int n;

    gmtime_r(&secs, &tm);
    if (ev->offset_min == 0)
        snprintf(off, sizeof(off), "Z");
    else
        snprintf(off, sizeof(off), "%c%02d:%02d",
                 ev->offset_min < 0 ? '-' : '+', abs(ev->offset_min) / 60,
                 abs(ev->offset_min) % 60);
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03d%s",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(local % 1000), off);
    if (ev->asset == UINT32_MAX)
        snprintf(asset, sizeof(asset), "null");
    else
        snprintf(asset, sizeof(asset), "\"35%07" PRIu32 "%06" PRIu32 "\"",
                 (uint32_t)(ev->asset * 2654435761u % 10000000u),
                 ev->asset % 1000000u);
    if (ev->unhandled)
        snprintf(reason, sizeof(reason),
                 "Unhandled reason %" PRIu32 ", please contact maintainer",
                 ev->unhandled);
    else
        snprintf(reason, sizeof(reason), "%s", ev->reason);
    n = snprintf(
        buf, cap,
        "{\"id\":%" PRId64 ",\"id_str\":\"%" PRId64
        "\",\"connection_id\":%" PRId64 ",\"connection_id_str\":\"%" PRId64
        "\",\"type\":\"%s\",\"reason\":\"%s\",\"asset\":%s,"
        "\"time\":\"%s\"}",
        ev->id, ev->id, ev->conn, ev->conn, ev->type, reason, asset, when);
    return n < 0 ? 0 : (size_t)n;
}

size_t pi_fleet_next(pi_fleet *f, char *buf, size_t cap)
{
    event ev;

    for (;;) {
        if (f->burst_pos < f->n_burst) {
            ev = f->burst[f->burst_pos++];
        } else if (f->n_queued > 0) {
            ev = f->queued[--f->n_queued];
        } else if (f->restart_ms && f->assets[0].next_ms >= f->restart_ms &&
                   f->restart_ms < f->end_ms) {
            restart(f);
            continue;
        } else if (f->assets[0].next_ms < f->end_ms && f->made < f->limit) {
            step(f, &ev);
            if (ev.type == NULL)
                continue; /* a lost disconnect */
        } else {
            /* Over: flush what was held back. */
            for (size_t i = 0; i < LATE_SLOTS; i++) {
                if (f->late[i].ms) {
                    ev = f->late[i];
                    f->late[i].ms = 0;
                    return format(buf, cap, &ev);
                }
            }
            return 0;
        }
        f->made++;
        /* One event in 100 is held back and goes out in place of a later
         * one: up to a few hundred lines late. */
        if (next_rand(f) % 100 == 0) {
            size_t slot = next_rand(f) % LATE_SLOTS;
            event held = f->late[slot];
            f->late[slot] = ev;
            if (held.ms == 0)
                continue;
            ev = held;
        }
        return format(buf, cap, &ev);
    }
}
