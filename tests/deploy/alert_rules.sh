#!/usr/bin/env bash
# deploy/prometheus/alerts.yml is valid, and each alert fires on the
# synthetic series of alerts_test.yml where it must and not where it must not.
set -euo pipefail
: "${PI_SOURCE_DIR:?run through ctest}"
command -v promtool >/dev/null ||
  { echo "promtool missing (bash deploy/install-deps.sh)" >&2; exit 1; }
cd "$PI_SOURCE_DIR/deploy/prometheus"
promtool check rules alerts.yml
promtool test rules alerts_test.yml
