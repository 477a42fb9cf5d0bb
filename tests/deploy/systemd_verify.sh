#!/usr/bin/env bash
# deploy/presence-ingest.service passes systemd-analyze verify, with
# ExecStart pointed at the binary just built (verify checks it exists).
set -euo pipefail
: "${PI_SOURCE_DIR:?run through ctest}" "${PI_BINARY:?}"
command -v systemd-analyze >/dev/null ||
  { echo "systemd-analyze missing (bash deploy/install-deps.sh)" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
unit=$PI_SOURCE_DIR/deploy/presence-ingest.service
grep -q '^ExecStart=/usr/local/bin/presence-ingest run ' "$unit" ||
  { echo "ExecStart changed: update this test" >&2; exit 1; }
sed "s|^ExecStart=/usr/local/bin/presence-ingest|ExecStart=$PI_BINARY|" "$unit" \
  >"$dir/presence-ingest.service"
out=$(systemd-analyze verify "$dir/presence-ingest.service" 2>&1) || {
  echo "$out" >&2; exit 1; }
# verify reports some problems as warnings with status 0: none allowed.
[ -z "$out" ] || { echo "systemd-analyze verify: $out" >&2; exit 1; }
for key in DynamicUser=yes NoNewPrivileges=yes ProtectSystem=strict \
  ProtectHome=yes PrivateTmp=yes 'CapabilityBoundingSet=$'; do
  grep -q "^$key" "$unit" || { echo "unit lost $key" >&2; exit 1; }
done
echo "ok: systemd-analyze verify"
