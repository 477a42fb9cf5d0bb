#!/usr/bin/env bash
# embed.sh -- write OUT, the C source of the migrations compiled into the
# binary, from migrations/NNNN_*.sql and migrations/citus/citus.sql. The
# build runs it (lib/CMakeLists.txt: build/*/lib/migrate_data.c) whenever a
# migration or this script changes.
#
#   bash migrations/embed.sh OUT
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: embed.sh OUT}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
  echo "/* migrate_data.c -- the migrations compiled in (generated: do not edit) */"
  echo "/* Made by migrations/embed.sh from the .sql files of migrations/. */"
  echo "/* clang-format off */"
  echo '#include "pg_int.h"'
  echo
  echo "const pi_migration_src pi_migrations_embedded[] = {"
  for f in "$here"/[0-9]*_*.sql; do
    name=$(basename "$f")
    echo "    {\"$name\","
    # Each line as a C string: backslashes and quotes escaped, newline kept.
    LC_ALL=C sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\t/\\t/g' \
      -e 's/^/     "/' -e 's/$/\\n"/' "$f"
    echo "    },"
  done
  echo "};"
  echo
  echo "const size_t pi_migrations_embedded_count ="
  echo "    sizeof(pi_migrations_embedded) / sizeof(pi_migrations_embedded[0]);"
  echo
  echo "const char pi_migration_citus[] ="
  LC_ALL=C sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\t/\\t/g' \
    -e 's/^/    "/' -e 's/$/\\n"/' "$here/citus/citus.sql"
  echo "    ;"
} >"$tmp"
cp "$tmp" "$out"
