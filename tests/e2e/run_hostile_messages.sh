#!/usr/bin/env bash
# Hostile messages (issue 8): a small message of many tiny bad elements
# costs memory and storage in proportion to its size (its raw value is
# stored once, not once per element); an array over --max-array-elements is
# one too_large reject; what RFC 8259 forbids and json-c lets through is
# rejected with the right code; and the next message on the partition is
# stored after each of them.
source "$(dirname "$0")/lib.sh"

setup 1
"$PI_GEN" 3000 >"$WORK/good.txt"
head -n 1000 "$WORK/good.txt" >"$WORK/warm.txt"

# One partition, so "the next message" is well defined; the limit at
# 100 000 so that the first array is decoded element by element.
start_service svc --max-array-elements 100000 --batch-size 1000
produce "$WORK/warm.txt"
wait_for "select count(*) from presences" 1000
base_kb=$(awk '/^VmHWM/ { print $2 }' "/proc/$SERVICE_PID/status")

# 1000 (offsets 0-999) are stored; then, offset by offset:
#   1000  [1,1,…] of 100 000 elements: 100 000 not_an_object rejects
#   1001  a good presence
#   1002  100 001 elements: one too_large reject
#   1003  a good presence
#   1004… the non-JSON forms, each followed by a good presence
python3 - "$WORK/good.txt" >"$WORK/hostile.txt" <<'PY'
import sys
good = open(sys.argv[1]).read().splitlines()[1000:]
g = iter(good)
out = []
out.append("[" + ",".join(["1"] * 100000) + "]")
out.append(next(g))
out.append("[" + ",".join(["1"] * 100001) + "]")
out.append(next(g))
sample = next(g)
forms = [
    sample.replace('"id":', "'id':", 1),                       # quoted name
    sample.replace('"reason":"', '"reason":"\\ud800', 1),     # lone surrogate
    sample.replace('"reason":"', '"reason":"a\x01', 1),         # raw control
    sample.replace('"reason":"', '"reason":"\\udc00x', 1),    # lone low one
    '{"id":NaN,"id_str":"1"}',                                 # NaN
    '{"id":1.,"id_str":"1"}',                                  # 1.
    '[' + sample + ',{"x":Infinity}]',                         # Infinity
]
for f in forms:
    out.append(f)
    out.append(next(g))
print("\n".join(out))
PY
produce "$WORK/hostile.txt"
wait_for "select count(*) from presences" 1009 120
wait_for "select count(*) from presence_rejects" 100008 60
peak_kb=$(awk '/^VmHWM/ { print $2 }' "/proc/$SERVICE_PID/status")
log "peak RSS ${peak_kb} kB, ${base_kb} kB before the hostile messages"
[ $((peak_kb - base_kb)) -lt $((64 * 1024)) ] ||
  fail "peak RSS grew by $(((peak_kb - base_kb) / 1024)) MiB (limit 64)"

# The 100 000-element array: every element rejected, the raw value (200 001
# bytes) once, on element 0; the other rows' payload NULL.
[ "$(sql "select count(*), count(payload), min(element), max(element),
                 sum(octet_length(payload))
          from presence_rejects where \"offset\" = 1000")" = "100000|1|0|99999|200001" ] ||
  fail "the 100 000-element array's rejects: $(sql "select count(*), count(payload),
        sum(octet_length(payload)) from presence_rejects where \"offset\" = 1000")"
[ "$(sql "select payload is not null from presence_rejects
          where \"offset\" = 1000 and element = 0")" = t ] || fail "payload not on element 0"
[ "$(sql "select error, detail from presence_rejects where \"offset\" = 1002")" = \
  "too_large|array of 100001 elements exceeds the maximum of 100000" ] ||
  fail "too_large: $(sql "select error, detail from presence_rejects where \"offset\" = 1002")"
# Each form, by offset, with its code and the start of its detail.
want="1004|malformed_json|malformed JSON at byte 1: single quote outside a string
1006|bad_encoding|bad encoding in a string at byte
1008|bad_encoding|bad encoding in a string at byte
1010|bad_encoding|bad encoding in a string at byte
1012|malformed_json|malformed JSON at byte 6: NaN and Infinity are not JSON numbers
1014|malformed_json|malformed JSON at byte 7: digit expected after the decimal point
1016|malformed_json|malformed JSON at byte"
got=$(sql "select \"offset\" || '|' || error || '|' || detail from presence_rejects
           where \"offset\" >= 1004 order by \"offset\"")
while IFS= read -r line; do
  grep -qF -- "$line" <<<"$got" || fail "missing reject '$line'; got: $got"
done <<<"$want"
[ "$(sql "select count(*) from presence_rejects where \"offset\" >= 1004")" = 7 ] ||
  fail "expected 7 rejects of the forms: $got"
grep -q 'raw control character U+0001' <<<"$got" || fail "control character detail: $got"
grep -q 'lone surrogate \\uD800' <<<"$got" || fail "surrogate detail: $got"
# Every good message after a hostile one was stored: the last offset is
# the last good line.
[ "$(sql "select max(kafka_offset) from presences")" = 1017 ] || fail "last stored offset"
check_offsets_match
stop_service "$SERVICE_PID"
log "ok: 100 000 rejects with the payload once, +$(((peak_kb - base_kb) / 1024)) MiB peak; forms rejected"
