#!/usr/bin/env bash
# The Grafana dashboard parses, and every metric it or the alert rules
# reference is one the service exports (pi-metrics-dump prints a fresh
# exposition); its PostgreSQL panels use CONTRACT §7's and §8's names.
set -euo pipefail
: "${PI_SOURCE_DIR:?run through ctest}" "${PI_METRICS_DUMP:?}"
"$PI_METRICS_DUMP" | python3 "$PI_SOURCE_DIR/tests/deploy/check_names.py" \
  "$PI_SOURCE_DIR/deploy/grafana/presence-ingest.json" \
  "$PI_SOURCE_DIR/deploy/prometheus/alerts.yml"
