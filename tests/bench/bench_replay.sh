#!/usr/bin/env bash
# bench_replay.sh -- `presence-ingest replay` of a whole topic into an empty
# database against `load` of the same messages from a file, and the same
# replay again into the now full database (every row a duplicate), in one
# run.
#
#   bash tests/bench/bench_replay.sh [MESSAGES] [ROUNDS]   (defaults 1000000, 3)
#
# Build first: cmake --preset release && cmake --build --preset release
source "$(dirname "$0")/bench_lib.sh"

N=${1:-1000000}
ROUNDS=${2:-3}
bench_start "$N"
echo "messages=$N bytes=$(stat -c %s "$WORK/in.txt") partitions=4 rounds=$ROUNDS"

# replay_into DB: the whole topic; prints the rate, checks the summary.
replay_into() {
  local s e out
  s=$(now)
  out=$("$BIN" replay --brokers "$BROKERS" --topic bench --pg "$PG_ADMIN dbname=$1" \
    --stats-interval-ms 2000 --progress never 2>>"$WORK/replay.log")
  e=$(now)
  echo "$out" | grep -q "^messages=$N " || { echo "replay: $out" >&2; exit 1; }
  echo "$out" >>"$WORK/summaries"
  rate "$N" "$s" "$e"
}

for r in $(seq "$ROUNDS"); do
  newdb "load_$r"
  s=$(now)
  "$BIN" load --pg "$PG_ADMIN dbname=load_$r" "$WORK/in.txt" >/dev/null
  e=$(now)
  load_rate=$(rate "$N" "$s" "$e")
  newdb "replay_$r"
  first=$(replay_into "replay_$r")
  again=$(replay_into "replay_$r")
  echo "round $r: load ${load_rate} msgs/s, replay ${first} msgs/s" \
    "($(ratio "$first" "$load_rate") of load), replay again ${again} msgs/s" \
    "($(ratio "$again" "$first") of the first replay)"
  echo "$load_rate" >>"$WORK/load"
  echo "$first" >>"$WORK/first"
  echo "$again" >>"$WORK/again"
  ratio "$first" "$load_rate" >>"$WORK/r_first"
  ratio "$again" "$first" >>"$WORK/r_again"
  psql "$PG_ADMIN" -XAtq -c "drop database load_$r" -c "drop database replay_$r" >/dev/null
done
L=$(median <"$WORK/load")
F=$(median <"$WORK/first")
A=$(median <"$WORK/again")
# The ratios are medians of the per-round ratios: each round's figures saw
# the same machine.
echo "median: load ${L} msgs/s, replay ${F} msgs/s, replay again ${A} msgs/s;" \
  "replay/load $(median <"$WORK/r_first"), again/first $(median <"$WORK/r_again")"
echo "last summaries:"; tail -n 2 "$WORK/summaries"
echo "a progress line:"; grep "replay progress" "$WORK/replay.log" | head -n 1
