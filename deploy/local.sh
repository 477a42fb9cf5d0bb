#!/usr/bin/env bash
# local.sh -- presence-ingest on this machine, end to end, for trying it out.
#
#   bash deploy/local.sh [up]        install deps, build (release), start
#                                    PostgreSQL and Kafka (the test harness),
#                                    create schema and topic, feed sample
#                                    presences and a generated fleet, run the
#                                    service, show `report status`,
#                                    `report sessions`, `report fleet` and
#                                    `report availability --fleet`
#   bash deploy/local.sh down        stop everything and remove the state
#
# Run it as root (it installs packages with apt; no sudo needed).
# State lives in ${PI_LOCAL_DIR:-/tmp/presence-ingest-local}: pg/ and kafka/
# (as written by tests/support/{pg,kafka}.sh), service.log, service.pid.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL=${PI_LOCAL_DIR:-/tmp/presence-ingest-local}
TOPIC=${PRESENCE_TOPIC:-presences}
PARTITIONS=${PI_LOCAL_PARTITIONS:-4}
GROUP=${PRESENCE_GROUP:-presence-ingest-local}
BIN=$root/build/release/cmd/presence-ingest/presence-ingest
GEN=$root/build/release/tests/pi-gen
support=$root/tests/support

say() { printf '\n==> %s\n' "$*"; }

# True when the subcommand exists in this build: the real ones answer
# --help with exit 0, the placeholders left while one is written do not.
have_cmd() { "$BIN" "$1" --help >/dev/null 2>&1; }

services_up() {
    [ -f "$LOCAL/pg/conninfo" ] && [ -f "$LOCAL/kafka/brokers" ] &&
        psql "$(cat "$LOCAL/pg/conninfo")" -qAtc 'select 1' >/dev/null 2>&1 &&
        kcat -L -b "$(cat "$LOCAL/kafka/brokers")" -m 2 >/dev/null 2>&1
}

start_services() {
    if services_up; then
        echo "already running in $LOCAL"
        return 0
    fi
    # Half-up from an earlier run: start both from scratch.
    stop_services
    mkdir -p "$LOCAL"
    bash "$support/pg.sh" start "$LOCAL/pg"
    bash "$support/kafka.sh" start "$LOCAL/kafka"
}

stop_services() {
    stop_service
    bash "$support/kafka.sh" stop "$LOCAL/kafka"
    bash "$support/pg.sh" stop "$LOCAL/pg"
}

# --- the service itself ------------------------------------------------------

# create_schema: the tables, through the service's own migrations.
create_schema() {
    "$BIN" migrate --pg "$(cat "$LOCAL/pg/conninfo")"
}

create_topic() {
    if kcat -L -b "$(cat "$LOCAL/kafka/brokers")" -t "$TOPIC" -m 2 2>/dev/null |
        grep -q 'partition 0,'; then
        echo "topic $TOPIC exists"
    else
        bash "$support/kafka.sh" topic "$LOCAL/kafka" "$TOPIC" "$PARTITIONS"
        echo "topic $TOPIC created with $PARTITIONS partitions"
    fi
}

# feed_samples: the two real CloudConnect bodies in deploy/samples (one
# message value each), then a generated fleet ending now (pi-gen --shape
# fleet: sessions of realistic lengths, lost disconnects, late events,
# failed connects, flapping devices) with a few incidents (--incidents 6: a
# server restart 6 hours ago that disconnected every online asset at once
# with server_shutdown, one asset that flaps, one offline for the last 3
# days), one message value per line, produced with kcat. Sets FED to the
# number of presences fed.
FLEET_EVENTS=${PI_LOCAL_FLEET_EVENTS:-20000}
FLEET_ASSETS=${PI_LOCAL_FLEET_ASSETS:-200}
feed_samples() {
    "$GEN" "$FLEET_EVENTS" --shape fleet --assets "$FLEET_ASSETS" --end now \
        --incidents 6 >"$LOCAL/fleet.jsonl"
    FED=$(($(wc -l <"$LOCAL/fleet.jsonl") + 2))
    cat "$root"/deploy/samples/*.json "$LOCAL/fleet.jsonl" |
        kcat -P -b "$(cat "$LOCAL/kafka/brokers")" -t "$TOPIC"
    echo "fed 2 sample bodies + $((FED - 2)) generated presences of $FLEET_ASSETS assets into $TOPIC"
}

# show_reports: what the fleet looks like now, from the stored presences.
# Each report is written to a file first, then cut: `report … | head` under
# pipefail would end the script when head closes the pipe (SIGPIPE).
show_reports() {
    local pg out=$LOCAL/report.txt
    pg=$(cat "$LOCAL/pg/conninfo")
    echo "report status (first 10 of $FLEET_ASSETS assets):"
    "$BIN" report status --pg "$pg" --format table >"$out"
    head -n 11 "$out"
    echo
    echo "report status, by state:"
    "$BIN" report status --pg "$pg" --format csv >"$out"
    tail -n +2 "$out" | cut -d, -f2 | sort | uniq -c
    asset=$(sed -n 2p "$out" | cut -d, -f1)
    echo
    echo "report sessions --asset $asset --since -1d:"
    "$BIN" report sessions --pg "$pg" --asset "$asset" --since -1d --format table
    echo
    echo "report reasons --since -1d (top 8):"
    "$BIN" report reasons --pg "$pg" --since -1d --format table >"$out"
    head -n 9 "$out"
    echo
    echo "report status --offline-for 2d (the asset that went quiet):"
    "$BIN" report status --pg "$pg" --offline-for 2d --format table
    echo
    echo "report fleet --since -7h --until -5h --step 5m (the server restart 6 h ago):"
    "$BIN" report fleet --pg "$pg" --since -7h --until -5h --step 5m --format table
    echo
    echo "report availability --fleet --since -7d --period day:"
    "$BIN" report availability --fleet --pg "$pg" --since -7d --period day \
        --format table
}

# run_service: `presence-ingest run` in the background, detached (setsid) so
# it outlives this script; `local.sh down` stops it.
run_service() {
    local pid i n=0
    stop_service
    setsid "$BIN" run --brokers "$(cat "$LOCAL/kafka/brokers")" \
        --topic "$TOPIC" --group "$GROUP" --pg "$(cat "$LOCAL/pg/conninfo")" \
        </dev/null >>"$LOCAL/service.log" 2>&1 &
    pid=$!
    echo "$pid" >"$LOCAL/service.pid"
    # Wait for what was fed to land.
    for ((i = 0; i < 120; i++)); do
        kill -0 "$pid" 2>/dev/null ||
            { tail -n 20 "$LOCAL/service.log" >&2; echo "service exited" >&2; return 1; }
        n=$(psql "$(cat "$LOCAL/pg/conninfo")" -qAtc \
            'select count(*) from presences' 2>/dev/null || echo 0)
        [ "$n" -ge "$FED" ] && break
        sleep 0.5
    done
    echo "presence-ingest run: pid $pid, log $LOCAL/service.log; presences stored: $n"
}

stop_service() {
    local pid i
    pid=$(cat "$LOCAL/service.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
        grep -qs presence-ingest "/proc/$pid/cmdline"; then
        kill -TERM "$pid"
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$LOCAL/service.pid"
}

# --- commands ----------------------------------------------------------------

up() {
    say "dependencies"
    bash "$root/deploy/install-deps.sh"

    say "build (release)"
    cmake --preset release >/dev/null
    cmake --build --preset release --target presence-ingest pi-gen

    say "PostgreSQL and Kafka in $LOCAL"
    start_services
    conninfo=$(cat "$LOCAL/pg/conninfo")
    brokers=$(cat "$LOCAL/kafka/brokers")

    # Each step runs once its subcommand exists in the build.
    if have_cmd migrate; then
        say "schema"
        create_schema
    else
        say "schema: skipped, 'presence-ingest migrate' is not built yet"
    fi
    say "topic"
    create_topic
    if have_cmd run; then
        say "samples"
        feed_samples
        say "service"
        run_service
        if have_cmd report; then
            say "reports"
            show_reports
        fi
    else
        say "samples and service: skipped, 'presence-ingest run' is not built yet"
    fi

    cat <<EOF

presence-ingest local stack is up.
  PostgreSQL: $conninfo
              psql '$conninfo' -c 'select * from presences limit 5'
  Kafka:      $brokers   (topic $TOPIC, group $GROUP)
              kcat -C -b $brokers -t $TOPIC -e
  Stop it:    bash deploy/local.sh down   (as root)
EOF
}

down() {
    stop_services
    rm -rf -- "$LOCAL"
    echo "presence-ingest local stack stopped; $LOCAL removed"
}

case "${1:-up}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 [up|down]" >&2; exit 2 ;;
esac
