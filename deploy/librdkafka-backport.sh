#!/usr/bin/env bash
# librdkafka-backport.sh -- Debian 13's librdkafka 2.8.0 rebuilt on Debian 12.
#
#   librdkafka-backport.sh           install it, unless librdkafka1 and
#                                    librdkafka-dev >= 2.6.1 are installed
#   librdkafka-backport.sh build     only build the .debs (into the cache)
#
# Why: Debian 12's librdkafka 2.0.2 cannot log in with SCRAM to Kafka 4
# (librdkafka issue 4895, fixed in 2.6.1: its client-final-message repeats
# the client nonce, which Kafka 4 rejects as invalid credentials).
#
# How: a deb-src-only trixie line in its own sources file (no `deb` line,
# so apt never installs a trixie binary), `apt-get source`, build
# dependencies from Debian 12, a local version 2.8.0-N~bpo12+pi1 (below
# Debian 13's own, which replaces it on an upgrade), `dpkg-buildpackage -b`
# with the upstream test suite off (it needs a broker). The .debs are kept
# in ${PI_CACHE_DIR:-~/.cache/presence-ingest}/librdkafka-backport: a second
# run builds nothing. Root, or sudo for apt and dpkg.
set -euo pipefail

min_version=2.6.1
upstream=2.8.0
suffix='~bpo12+pi1'
cache=${PI_CACHE_DIR:-${HOME:-/tmp}/.cache/presence-ingest}/librdkafka-backport
srcs=/etc/apt/sources.list.d/presence-ingest-trixie-src.sources

say() { echo "librdkafka-backport: $*"; }
die() { echo "librdkafka-backport: $*" >&2; exit 1; }

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo"
    sudo=(sudo)
fi
apt_get() {
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=900 "$@"
}

installed_version() { # package -> its installed version, or nothing
    dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null |
        awk '$3 == "installed" { print $4 }'
}

new_enough() { # package -> true when installed at >= min_version
    local v
    v=$(installed_version "$1")
    [ -n "$v" ] && dpkg --compare-versions "$v" ge "$min_version"
}

debs_present() {
    compgen -G "$cache/librdkafka1_${upstream}-*_*.deb" >/dev/null &&
        compgen -G "$cache/librdkafka-dev_${upstream}-*_*.deb" >/dev/null &&
        compgen -G "$cache/librdkafka++1_${upstream}-*_*.deb" >/dev/null
}

build() {
    if debs_present; then
        say "using the cached .debs in $cache"
        return
    fi
    local started=$SECONDS
    if [ ! -f "$srcs" ]; then
        say "adding $srcs (deb-src only: sources, never trixie binaries)"
        "${sudo[@]}" tee "$srcs" >/dev/null <<'EOF'
# presence-ingest: Debian 13's librdkafka source, rebuilt on Debian 12 by
# deploy/librdkafka-backport.sh. Sources only: no binary package from trixie.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    apt_get update -q
    # dpkg-dev unpacks the source; fakeroot builds as a non-root user.
    apt_get install -y -q --no-install-recommends build-essential dpkg-dev \
        fakeroot ca-certificates


    work=$(mktemp -d "${TMPDIR:-/tmp}/librdkafka-backport.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && apt-get source -q "librdkafka/trixie") ||
        die "apt-get source librdkafka/trixie failed"
    local dir
    dir=$(find "$work" -maxdepth 1 -type d -name "librdkafka-${upstream}*" | head -n 1)
    [ -n "$dir" ] || die "trixie no longer has librdkafka $upstream: update this script"

    # The build dependencies as Debian 12 has them (debian/control read
    # from the unpacked tree, resolved against bookworm's binaries).
    apt_get build-dep -y -q --no-install-recommends "$dir"

    # The local version: the trixie one with ~bpo12+pi1 appended.
    local version name
    version=$(cd "$dir" && dpkg-parsechangelog -S Version)
    name=$(cd "$dir" && dpkg-parsechangelog -S Maintainer)
    {
        printf 'librdkafka (%s%s) bookworm; urgency=medium\n\n' "$version" "$suffix"
        printf '  * Rebuilt for Debian 12 by presence-ingest (SCRAM with Kafka 4,\n'
        printf '    librdkafka issue 4895).\n\n'
        printf ' -- %s  %s\n\n' "$name" "$(date -R)"
        cat "$dir/debian/changelog"
    } >"$work/changelog" && mv "$work/changelog" "$dir/debian/changelog"

    say "building librdkafka $version$suffix (a few minutes on 2 cores)"
    (cd "$dir" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
        dpkg-buildpackage -b -uc -us >"$work/build.log" 2>&1) || {
        tail -n 40 "$work/build.log" >&2
        die "dpkg-buildpackage failed (log above)"
    }
    mkdir -p "$cache"
    cp "$work"/librdkafka1_*.deb "$work"/librdkafka++1_*.deb \
        "$work"/librdkafka-dev_*.deb "$cache"/
    rm -rf "$work"
    trap - EXIT
    say "built in $((SECONDS - started)) s: $(cd "$cache" && echo *.deb)"
}

install() {
    if new_enough librdkafka1 && new_enough librdkafka-dev; then
        say "librdkafka1 $(installed_version librdkafka1) and librdkafka-dev" \
            "$(installed_version librdkafka-dev) installed (>= $min_version), nothing to do"
        return
    fi
    build
    # apt, not dpkg -i: it upgrades librdkafka1 under kcat (which asks for
    # >= 1.6.0) and refuses rather than leaving anything half-configured.
    local debs=("$cache"/librdkafka1_"$upstream"-*.deb
        "$cache"/librdkafka++1_"$upstream"-*.deb
        "$cache"/librdkafka-dev_"$upstream"-*.deb)
    apt_get install -y -q --no-install-recommends --allow-downgrades "${debs[@]}"
    new_enough librdkafka1 && new_enough librdkafka-dev ||
        die "librdkafka1/librdkafka-dev still older than $min_version after the install"
    say "installed librdkafka $(installed_version librdkafka1)"
}

case "${1:-install}" in
install) install ;;
build) build ;;
*) die "usage: librdkafka-backport.sh [install|build]" ;;
esac
