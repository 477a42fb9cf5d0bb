#!/usr/bin/env bash
# pg.sh -- a throwaway PostgreSQL 15 server for tests and local runs.
#
#   pg.sh start   DIR   initdb, start on a free 127.0.0.1 port, wait until ready
#                       (PI_PG_EXTRA_CONF: lines added to postgresql.conf)
#   pg.sh stop    DIR   stop (fast, then SIGKILL) and remove DIR; idempotent
#   pg.sh pause   DIR   stop the server, keep the data (outage tests)
#   pg.sh resume  DIR   start it again on the same port
#   pg.sh restart DIR   pause + resume
#   pg.sh crash   DIR   immediate stop (no checkpoint: like a power cut for
#                       what synchronous_commit=off had not written yet),
#                       then start again on the same port
#   pg.sh freeze  DIR   SIGSTOP the postmaster and every backend: a server
#                       that accepts TCP connections and never answers
#   pg.sh thaw    DIR   SIGCONT them
#   pg.sh start-tls DIR like start, but TLS and passwords only (below)
#   pg.sh cert    DIR good|other   (TLS mode) the server presents the
#                       certificate for its own name (good) or for another
#                       host name (other), then reloads: new connections see it
#
# DIR receives: conninfo (libpq keyword string), port, pid (postmaster),
# pgroot (where data/ and postgres.log live). Authentication is trust, only
# on 127.0.0.1: this server holds test data and nothing else.
#
# TLS mode: a CA made here with openssl (DIR/tls/ca.crt) signs the server's
# certificate for DNS:localhost and IP:127.0.0.1, and another for
# DNS:other.invalid only (`cert DIR other`). ssl = on, password_encryption =
# scram-sha-256, and pg_hba.conf holds nothing but `hostssl … scram-sha-256`
# lines: no trust, no TCP without TLS. The superuser postgres and a login role
# pi_app get random passwords, in DIR/pgpass (a libpq password file, mode
# 600; the passwords alone in DIR/postgres.password and DIR/pi_app.password).
# DIR/conninfo then reads "host=localhost port=P user=postgres
# dbname=postgres sslmode=verify-full sslrootcert=DIR/tls/ca.crt
# passfile=DIR/pgpass": no password in it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
MARKER=.pi-harness-pg

usage() {
    die "usage: $0 start|start-tls|stop|pause|resume|restart|crash|freeze|thaw DIR" \
        "| cert DIR good|other"
}

# PostgreSQL refuses to run as root; CI and `bash deploy/local.sh` run as root,
# so there the server runs as the Debian package's `postgres` user. `cd /`
# because the caller's cwd (often under /root) may not be readable by it.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

pgroot_of() { cat "$1/pgroot" 2>/dev/null || true; }

# The postmaster's pid, from the server's own pid file when it is there.
postmaster_pid() {
    local root
    root=$(pgroot_of "$1")
    if [ -n "$root" ] && [ -f "$root/data/postmaster.pid" ]; then
        head -n 1 "$root/data/postmaster.pid"
    elif [ -f "$1/pid" ]; then
        cat "$1/pid"
    fi
}

server_start() {
    local dir=$1 root port i
    root=$(pgroot_of "$dir")
    port=$(cat "$dir/port")
    if port_in_use "$port"; then
        die "port $port is taken by another process; cannot start on it"
    fi
    # pg_ctl redirects the postmaster's stdio to the log file, so ctest does
    # not wait on an inherited pipe. -w waits for the "ready" mark in
    # postmaster.pid.
    if ! as_pg "$PG_BIN/pg_ctl" -D "$root/data" -l "$root/postgres.log" \
        -w -t 60 start >/dev/null; then
        log "pg_ctl start failed; last lines of $root/postgres.log:"
        tail -n 30 "$root/postgres.log" >&2 || true
        return 1
    fi
    for i in $(seq 1 120); do
        if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres \
            -d postgres -t 1; then
            postmaster_pid "$dir" >"$dir/pid"
            return 0
        fi
        sleep 0.25
    done
    log "server did not accept connections on port $port within 30 s"
    tail -n 30 "$root/postgres.log" >&2 || true
    return 1
}

# Stop the server but keep its files. Fast shutdown first (rolls back open
# transactions, disconnects clients); a server that does not stop in time is
# killed, children first so no backend is left holding shared memory.
server_stop() {
    local dir=$1 root pid
    root=$(pgroot_of "$dir")
    pid=$(postmaster_pid "$dir")
    if [ -n "$root" ] && [ -f "$root/data/postmaster.pid" ]; then
        if as_pg "$PG_BIN/pg_ctl" -D "$root/data" stop -m fast -w -t 30 \
            >/dev/null 2>&1; then
            return 0
        fi
        log "pg_ctl stop failed; killing postmaster $pid"
    fi
    if pid_alive "$pid"; then
        pkill -KILL -P "$pid" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            pid_alive "$pid" || break
            sleep 0.1
        done
    fi
    if [ -n "$root" ]; then
        rm -f "$root/data/postmaster.pid"
    fi
}

# tls_files DIR ROOT: the CA, the server's certificates and pg_hba.conf.
tls_files() {
    local dir=$1 root=$2 name
    mkdir -p "$dir/tls"
    (
        cd "$dir/tls"
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pi-test-ca" \
            -keyout ca.key -out ca.crt 2>/dev/null
        for name in good other; do
            if [ "$name" = good ]; then
                printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$name.ext"
                subj=/CN=localhost
            else
                printf 'subjectAltName=DNS:other.invalid\n' >"$name.ext"
                subj=/CN=other.invalid
            fi
            openssl req -newkey rsa:2048 -nodes -subj "$subj" \
                -keyout "$name.key" -out "$name.csr" 2>/dev/null
            openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key \
                -CAcreateserial -days 2 -extfile "$name.ext" -out "$name.crt" \
                2>/dev/null
        done
    )
    chmod 644 "$dir/tls/ca.crt"
    install_cert "$dir" good
    cat >"$root/data/pg_hba.conf" <<EOF
# presence-ingest test harness, TLS mode: TLS and SCRAM only.
hostssl all all 127.0.0.1/32 scram-sha-256
hostssl all all ::1/128      scram-sha-256
EOF
    cat >>"$root/data/postgresql.conf" <<EOF
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
password_encryption = 'scram-sha-256'
EOF
}

# install_cert DIR good|other: the server's certificate and key, in its data
# directory where only its user reads the key.
install_cert() {
    local dir=$1 root
    root=$(pgroot_of "$dir")
    cp "$dir/tls/$2.crt" "$root/data/server.crt"
    cp "$dir/tls/$2.key" "$root/data/server.key"
    chmod 600 "$root/data/server.key"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$root/data/server.crt" "$root/data/server.key"
}

cmd_cert() {
    local root
    [ -f "$1/tls/ca.crt" ] || die "$1 holds no TLS server started by pg.sh start-tls"
    case "$2" in good | other) ;; *) usage ;; esac
    root=$(pgroot_of "$1")
    install_cert "$1" "$2"
    as_pg "$PG_BIN/pg_ctl" -D "$root/data" reload >/dev/null
    # The postmaster loads the new files on SIGHUP; wait until a handshake
    # shows the certificate asked for.
    local want
    want=$(openssl x509 -in "$1/tls/$2.crt" -noout -fingerprint -sha256)
    for _ in $(seq 1 100); do
        if [ "$(openssl s_client -starttls postgres -connect "127.0.0.1:$(cat "$1/port")" \
            </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 2>/dev/null)" = "$want" ]; then
            return 0
        fi
        sleep 0.1
    done
    die "the server did not switch to the $2 certificate within 10 s"
}

# The random passwords of TLS mode; the superuser's set by initdb.
new_password() { openssl rand -hex 16; }

cmd_start() {
    local dir=$1 tls=${2:-} root port
    # A DIR left by a killed run: clear it so every start is from scratch.
    if [ -e "$dir" ]; then
        cmd_stop "$dir"
    fi
    mkdir -p "$dir"
    : >"$dir/$MARKER"
    # From here on, any failure undoes everything started so far.
    trap 'log "start failed; cleaning up"; cmd_stop "$dir" || true' EXIT

    # The data lives in DIR when the server's user can reach it; otherwise
    # (DIR under /root, say) in a private temp dir, rather than opening up
    # the caller's parent directories.
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$dir"
    fi
    if as_pg test -w "$dir"; then
        root=$dir
    else
        root=$(mktemp -d "${TMPDIR:-/tmp}/pi-pg.XXXXXX")
        chmod 700 "$root"
        [ "$(id -u)" -ne 0 ] || chown postgres: "$root"
    fi
    echo "$root" >"$dir/pgroot"

    port=$(free_ports 1)
    echo "$port" >"$dir/port"

    # --no-sync and the settings below trade durability for speed: the data
    # is thrown away after the run.
    local auth=(-A trust) pw=""
    if [ -n "$tls" ]; then
        pw=$(new_password)
        (umask 077 && printf '%s\n' "$pw" >"$root/pwfile")
        [ "$(id -u)" -ne 0 ] || chown postgres: "$root/pwfile"
        auth=(-A scram-sha-256 --pwfile="$root/pwfile")
    fi
    as_pg "$PG_BIN/initdb" -D "$root/data" -U postgres "${auth[@]}" -E UTF8 \
        --locale=C --no-sync >"$root/initdb.log" 2>&1 ||
        { cat "$root/initdb.log" >&2; return 1; }
    rm -f "$root/pwfile"
    # No unix socket: its path must fit in 107 bytes and build dirs can be
    # deeper than that; every client uses TCP on 127.0.0.1.
    cat >>"$root/data/postgresql.conf" <<EOF

# --- presence-ingest test harness ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
log_min_messages = warning
log_line_prefix = '%m [%p] '
EOF
    # PI_PG_EXTRA_CONF: more settings for this server (citus.sh preloads
    # Citus with it).
    [ -z "${PI_PG_EXTRA_CONF:-}" ] ||
        printf '%s\n' "$PI_PG_EXTRA_CONF" >>"$root/data/postgresql.conf"
    [ -z "$tls" ] || tls_files "$dir" "$root"
    server_start "$dir"
    if [ -z "$tls" ]; then
        echo "host=127.0.0.1 port=$port user=postgres dbname=postgres" \
            >"$dir/conninfo"
    else
        local app
        app=$(new_password)
        (
            umask 077
            printf '%s\n' "$pw" >"$dir/postgres.password"
            printf '%s\n' "$app" >"$dir/pi_app.password"
            for host in localhost 127.0.0.1; do
                printf '%s:%s:*:postgres:%s\n' "$host" "$port" "$pw"
                printf '%s:%s:*:pi_app:%s\n' "$host" "$port" "$app"
            done >"$dir/pgpass"
        )
        echo "host=localhost port=$port user=postgres dbname=postgres" \
            "sslmode=verify-full sslrootcert=$dir/tls/ca.crt passfile=$dir/pgpass" \
            >"$dir/conninfo"
        "$PG_BIN/psql" "$(cat "$dir/conninfo")" -XAtq -v ON_ERROR_STOP=1 \
            -c "CREATE ROLE pi_app LOGIN PASSWORD '$app'" >/dev/null
    fi
    trap - EXIT
    log "PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}') ready:" \
        "$(cat "$dir/conninfo") (pid $(cat "$dir/pid"))"
}

cmd_stop() {
    local dir=$1 root
    [ -e "$dir" ] || return 0
    # Refuse to delete a directory this script did not create.
    if [ ! -e "$dir/$MARKER" ] && [ -n "$(ls -A "$dir")" ]; then
        die "$dir was not made by pg.sh (no $MARKER); not removing it"
    fi
    root=$(pgroot_of "$dir")
    server_stop "$dir"
    if [ -n "$root" ] && [ "$root" != "$dir" ]; then
        rm -rf -- "$root"
    fi
    rm -rf -- "$dir"
}

cmd_pause() {
    [ -f "$1/port" ] || die "$1 holds no server started by pg.sh"
    server_stop "$1"
    rm -f "$1/pid"
}

cmd_resume() {
    [ -f "$1/port" ] || die "$1 holds no server started by pg.sh"
    pid_alive "$(postmaster_pid "$1")" && return 0
    server_start "$1"
}

cmd_crash() {
    local root
    [ -f "$1/port" ] || die "$1 holds no server started by pg.sh"
    root=$(pgroot_of "$1")
    as_pg "$PG_BIN/pg_ctl" -D "$root/data" stop -m immediate -w -t 30 \
        >/dev/null 2>&1 || die "immediate stop failed"
    rm -f "$1/pid"
    server_start "$1"
}

# The postmaster and its children, by parent pid.
signal_all() {
    local pid
    pid=$(postmaster_pid "$1")
    pid_alive "$pid" || die "no server running in $1"
    kill "-$2" "$pid"
    pkill "-$2" -P "$pid" 2>/dev/null || true
}

{ [ $# -eq 2 ] && [ "$1" != cert ]; } || { [ $# -eq 3 ] && [ "$1" = cert ]; } ||
    usage
[ -n "$2" ] && [ "$2" != / ] || usage
dir=$(abspath "$2")
case "$1" in
    cert) cmd_cert "$dir" "$3" ;;
    start) cmd_start "$dir" ;;
    start-tls) cmd_start "$dir" tls ;;
    stop) cmd_stop "$dir" ;;
    pause) cmd_pause "$dir" ;;
    resume) cmd_resume "$dir" ;;
    restart) cmd_pause "$dir" && cmd_resume "$dir" ;;
    crash) cmd_crash "$dir" ;;
    freeze) signal_all "$dir" STOP ;;
    thaw) signal_all "$dir" CONT ;;
    *) usage ;;
esac
