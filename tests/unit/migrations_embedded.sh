#!/usr/bin/env bash
# migrations_embedded.sh -- lib/migrate_data.c, the migrations compiled into
# the binary, matches migrations/*.sql (regenerate: bash migrations/embed.sh).
set -euo pipefail
: "${PI_SOURCE_DIR:?run through ctest}"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
bash "$PI_SOURCE_DIR/migrations/embed.sh" "$tmp"
if ! diff -u "$PI_SOURCE_DIR/lib/migrate_data.c" "$tmp"; then
  echo "FAIL: lib/migrate_data.c is stale: run 'bash migrations/embed.sh'" >&2
  exit 1
fi
echo "lib/migrate_data.c matches migrations/"
