#!/usr/bin/env bash
# citus.sh -- a throwaway Citus cluster for the scale-out tests: a
# coordinator and two workers, three PostgreSQL 15 servers of pg.sh on
# their own ports, with Citus 13.2.2 built once from the vendored source.
#
#   citus.sh available        exit 0 when the vendored tarball is there
#                             (else print one line saying why not, exit 77)
#   citus.sh build            build and install Citus once (cached under
#                             ~/.cache/presence-ingest; needs root to copy
#                             into PostgreSQL's directories)
#   citus.sh start DIR        build if needed, start the three servers,
#                             write DIR/conninfo (the coordinator's),
#                             DIR/workers (host:port per line)
#   citus.sh createdb DIR DB  a database on every node with the extension,
#                             the workers registered on the coordinator;
#                             prints the coordinator's conninfo for it
#   citus.sh stop DIR         stop the three servers, remove DIR
#   citus.sh worker DIR N pause|resume|restart   one worker's outage
#
# Citus is not packaged by Debian; its source and a one-hunk patch for
# Debian 12's PostgreSQL 15 are in ../shared/vendor (see its README). A
# user's machine installs Citus from Citus's own packages instead.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

CITUS_VERSION=13.2.2
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
# The vendored sources sit beside the main checkout (../shared/vendor); a
# git worktree elsewhere finds them beside its main checkout too.
vendor_dir() {
    local common
    if [ -d "$here/../../../shared/vendor" ]; then
        echo "$here/../../../shared/vendor"
    elif common=$(git -C "$here" rev-parse --path-format=absolute --git-common-dir 2>/dev/null) &&
        [ -d "$common/../../shared/vendor" ]; then
        echo "$common/../../shared/vendor"
    else
        echo "$here/../../../shared/vendor"
    fi
}
VENDOR=${PI_VENDOR_DIR:-$(vendor_dir)}
CACHE=${PI_CACHE_DIR:-$HOME/.cache/presence-ingest}
TARBALL=$VENDOR/citus-$CITUS_VERSION.tar.gz
PATCH=$VENDOR/citus-$CITUS_VERSION-pg15-have_createdb_privilege.patch

usage() { die "usage: $0 available|build|start DIR|createdb DIR DB|stop DIR|worker DIR N pause|resume|restart"; }

cmd_available() {
    if [ ! -f "$TARBALL" ]; then
        echo "citus.sh: skipped: no Citus source at $TARBALL (install Citus from its own packages to run these tests)"
        exit 77
    fi
}

# The installed extension's version, or nothing.
installed_version() {
    local lib
    lib=$("$PG_CONFIG" --pkglibdir)/citus.so
    [ -f "$lib" ] && [ -f "$("$PG_CONFIG" --sharedir)/extension/citus.control" ] &&
        sed -n "s/^default_version = '\(.*\)'/\1/p" \
            "$("$PG_CONFIG" --sharedir)/extension/citus.control" 2>/dev/null
}

cmd_build() {
    cmd_available
    local pgv stage src
    pgv=$("$PG_CONFIG" --version | awk '{print $2}')
    stage=$CACHE/citus-$CITUS_VERSION-pg$pgv
    if [ ! -f "$stage/.built" ]; then
        command -v "$PG_CONFIG" >/dev/null ||
            die "no $PG_CONFIG: install postgresql-server-dev-15 (deploy/install-deps.sh does)"
        log "building Citus $CITUS_VERSION for PostgreSQL $pgv (once; a few minutes on 2 cores)"
        rm -rf "$stage"
        mkdir -p "$stage"
        src=$stage/src
        mkdir -p "$src"
        tar -xzf "$TARBALL" -C "$src" --strip-components=1
        (cd "$src" && patch -p1 -s <"$PATCH")
        (cd "$src" && ./configure --quiet PG_CONFIG="$PG_CONFIG" >"$stage/configure.log" 2>&1) ||
            { tail -n 30 "$stage/configure.log" >&2; die "Citus configure failed"; }
        (cd "$src" && make -s -j"$(nproc)" >"$stage/make.log" 2>&1) ||
            { tail -n 30 "$stage/make.log" >&2; die "Citus build failed"; }
        (cd "$src" && make -s install DESTDIR="$stage/root" >>"$stage/make.log" 2>&1) ||
            { tail -n 30 "$stage/make.log" >&2; die "Citus staging install failed"; }
        rm -rf "$src"
        touch "$stage/.built"
    fi
    # Copy the staged files into PostgreSQL's directories (root only: there
    # is no other way to point PostgreSQL 15 at an extension's control file).
    if [ "$(installed_version || true)" != "${CITUS_VERSION%.*}-1" ] ||
        ! cmp -s "$stage/root$("$PG_CONFIG" --pkglibdir)/citus.so" \
            "$("$PG_CONFIG" --pkglibdir)/citus.so"; then
        [ "$(id -u)" -eq 0 ] || die "Citus is built in $stage but not installed: run '$0 build' as root"
        cp -a "$stage/root/." /
        log "Citus $CITUS_VERSION installed into $("$PG_CONFIG" --pkglibdir)"
    fi
}

psql_at() { # conninfo sql...
    local ci=$1
    shift
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At -d "$ci" "$@"
}

cmd_start() {
    local dir=$1 name
    cmd_build
    [ ! -e "$dir" ] || cmd_stop "$dir"
    mkdir -p "$dir"
    trap 'log "start failed; cleaning up"; cmd_stop "$dir" || true' EXIT
    # Citus starts a maintenance worker per database (it recovers in-doubt
    # two-phase commits): the tests' databases at once need more than
    # PostgreSQL's default 8 background workers.
    for name in coordinator worker1 worker2; do
        PI_PG_EXTRA_CONF="shared_preload_libraries = 'citus'
citus.enable_create_database_propagation = off
max_prepared_transactions = 200
citus.max_client_connections = 150
max_worker_processes = 32
" bash "$here/pg.sh" start "$dir/$name" >/dev/null
    done
    : >"$dir/workers"
    for name in worker1 worker2; do
        echo "127.0.0.1:$(cat "$dir/$name/port")" >>"$dir/workers"
    done
    cp "$dir/coordinator/conninfo" "$dir/conninfo"
    cmd_createdb "$dir" postgres >/dev/null
    trap - EXIT
    log "Citus cluster up: coordinator port $(cat "$dir/coordinator/port"), workers $(tr '\n' ' ' <"$dir/workers")"
}

# A database of the same name on every node, each with the extension; the
# coordinator knows itself and the workers. Citus keeps its metadata per
# database, so every database of a test is a cluster of its own.
cmd_createdb() {
    local dir=$1 db=$2 name port cport
    cport=$(cat "$dir/coordinator/port")
    for name in coordinator worker1 worker2; do
        port=$(cat "$dir/$name/port")
        if [ "$db" != postgres ]; then
            psql_at "host=127.0.0.1 port=$port user=postgres dbname=postgres" \
                -c "CREATE DATABASE \"$db\""
        fi
        psql_at "host=127.0.0.1 port=$port user=postgres dbname=$db" \
            -c "CREATE EXTENSION IF NOT EXISTS citus"
    done
    psql_at "host=127.0.0.1 port=$cport user=postgres dbname=$db" \
        -c "SELECT citus_set_coordinator_host('127.0.0.1', $cport)" >/dev/null
    for name in worker1 worker2; do
        port=$(cat "$dir/$name/port")
        psql_at "host=127.0.0.1 port=$cport user=postgres dbname=$db" \
            -c "SELECT citus_add_node('127.0.0.1', $port)" >/dev/null
    done
    echo "host=127.0.0.1 port=$cport user=postgres dbname=$db"
}

cmd_stop() {
    local dir=$1 name
    for name in coordinator worker1 worker2; do
        [ ! -e "$dir/$name" ] || bash "$here/pg.sh" stop "$dir/$name" || true
    done
    rm -rf "$dir"
}

cmd_worker() {
    local dir=$1 n=$2 what=$3
    case "$what" in
        pause | resume | restart) bash "$here/pg.sh" "$what" "$dir/worker$n" ;;
        *) usage ;;
    esac
}

case "${1:-}" in
    available) cmd_available ;;
    build) cmd_build ;;
    start) [ $# -eq 2 ] || usage; cmd_start "$(abspath "$2")" ;;
    createdb) [ $# -eq 3 ] || usage; cmd_createdb "$(abspath "$2")" "$3" ;;
    stop) [ $# -eq 2 ] || usage; cmd_stop "$(abspath "$2")" ;;
    worker) [ $# -eq 4 ] || usage; cmd_worker "$(abspath "$2")" "$3" "$4" ;;
    *) usage ;;
esac
