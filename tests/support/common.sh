# common.sh -- helpers shared by the service harness scripts (pg.sh, kafka.sh).
# Sourced, not run: callers already have `set -euo pipefail`.

# Print a line on stderr prefixed with the script name, so ctest output shows
# which harness said it.
log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# free_ports N: print N distinct TCP ports that are free on 127.0.0.1 right
# now. All sockets are held open until every port is chosen, so the N ports
# differ; the kernel picks them from the ephemeral range, so two harnesses
# started at the same time do not collide.
free_ports() {
    python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# port_in_use PORT: true when something listens on 127.0.0.1:PORT.
port_in_use() {
    python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
PY
}

# abspath DIR: DIR made absolute without requiring it to exist.
abspath() {
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s/%s\n' "$PWD" "$1" ;;
    esac
}

# pid_alive PID: true when the process exists and has not exited. A child of
# this shell that died is a zombie until reaped, and kill -0 still succeeds
# on it, so look at its state too.
pid_alive() {
    [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null &&
        [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]
}
