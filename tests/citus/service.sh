#!/usr/bin/env bash
# service.sh -- the `citus` ctest fixture: start or stop the cluster of
# tests/support/citus.sh in DIR; without the vendored Citus source, say so
# in one line and do nothing (each test then skips on its own).
#
#   service.sh start|stop DIR
set -euo pipefail
support=$(cd "$(dirname "${BASH_SOURCE[0]}")/../support" && pwd)
case "${1:-}" in
  start)
    bash "$support/citus.sh" available || exit 0
    bash "$support/citus.sh" start "$2"
    ;;
  stop)
    [ ! -e "$2" ] || bash "$support/citus.sh" stop "$2"
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
