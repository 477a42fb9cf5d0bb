#!/usr/bin/env bash
# deploy/presence-ingest.service and the retention service + timer pass
# systemd-analyze verify, with ExecStart pointed at the binary just built
# (verify checks it exists).
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
# The templated unit (issue 25): the same service, one per instance, its
# configuration /etc/presence-ingest/INSTANCE.conf; verified as an instance.
tpl=$PI_SOURCE_DIR/deploy/presence-ingest@.service
grep -q '^ExecStart=/usr/local/bin/presence-ingest run --config /etc/presence-ingest/%i.conf$' "$tpl" ||
  { echo "templated ExecStart changed: update this test" >&2; exit 1; }
sed "s|^ExecStart=/usr/local/bin/presence-ingest|ExecStart=$PI_BINARY|" "$tpl" \
  >"$dir/presence-ingest@.service"
out=$(systemd-analyze verify "$dir/presence-ingest@.service" 2>&1) || {
  echo "$out" >&2; exit 1; }
[ -z "$out" ] || { echo "systemd-analyze verify (template): $out" >&2; exit 1; }
# Beside the ExecStart, Description and header, the same unit as the service.
diff <(grep -v '^ExecStart=\|^Description=\|^#' "$unit") \
  <(grep -v '^ExecStart=\|^Description=\|^#' "$tpl") >&2 ||
  { echo "presence-ingest@.service drifted from presence-ingest.service" >&2; exit 1; }
# The retention job: a oneshot service started by its timer, the same
# sandbox, and a command line the binary accepts.
ret=$PI_SOURCE_DIR/deploy/presence-ingest-retention.service
grep -q '^ExecStart=/usr/local/bin/presence-ingest retention --keep 400d ' "$ret" ||
  { echo "retention ExecStart changed: update this test" >&2; exit 1; }
sed "s|^ExecStart=/usr/local/bin/presence-ingest|ExecStart=$PI_BINARY|" "$ret" \
  >"$dir/presence-ingest-retention.service"
cp "$PI_SOURCE_DIR/deploy/presence-ingest-retention.timer" "$dir/"
out=$(systemd-analyze verify "$dir/presence-ingest-retention.timer" \
  "$dir/presence-ingest-retention.service" 2>&1) || { echo "$out" >&2; exit 1; }
[ -z "$out" ] || { echo "systemd-analyze verify (retention): $out" >&2; exit 1; }
for key in Type=oneshot DynamicUser=yes NoNewPrivileges=yes ProtectSystem=strict \
  'CapabilityBoundingSet=$'; do
  grep -q "^$key" "$ret" || { echo "retention unit lost $key" >&2; exit 1; }
done
grep -q '^Persistent=true' "$PI_SOURCE_DIR/deploy/presence-ingest-retention.timer" ||
  { echo "retention timer is not Persistent" >&2; exit 1; }
# --help parses the unit's options (and the CronJob's: the same ones).
# (Into a variable: grep -q on a pipe may stop it early under pipefail.)
help=$("$PI_BINARY" retention --help)
grep -q -- '--keep' <<<"$help" ||
  { echo "retention --help lacks --keep" >&2; exit 1; }
cron=$PI_SOURCE_DIR/deploy/k8s/retention-cronjob.yaml
grep -q 'args: \["retention", "--keep", "400d"\]' "$cron" &&
  grep -q '^  - retention-cronjob.yaml$' "$PI_SOURCE_DIR/deploy/k8s/kustomization.yaml" ||
  { echo "the CronJob's command or its place in kustomization.yaml changed" >&2; exit 1; }
if python3 -c 'import yaml' 2>/dev/null; then
  python3 -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); assert d["kind"] == "CronJob" and d["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"][0] == "retention"' "$cron" ||
    { echo "retention-cronjob.yaml is not the CronJob expected" >&2; exit 1; }
fi
echo "ok: systemd-analyze verify (service, templated service, retention service and timer), CronJob"
