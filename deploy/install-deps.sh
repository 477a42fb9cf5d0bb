#!/usr/bin/env bash
# install-deps.sh -- everything presence-ingest needs to build, test and run
# locally, on a fresh Debian 12 (bookworm), as root. Idempotent: it installs
# only what is missing, says what, and does nothing when all is there.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Why each one is here:
packages=(
    build-essential cmake pkg-config       # the C17 build
    libjson-c-dev libpq-dev                # the libraries the service links
    libmicrohttpd-dev                      # (and its /metrics endpoint; the
                                           # librdkafka 2.8.0 backport below)
    libcmocka-dev                          # unit/integration test framework
    postgresql-15                          # the server tests/support/pg.sh runs
    kcat                                   # independent Kafka client for tests
    maven openjdk-17-jre-headless          # fetch and run the Kafka broker
    clang clang-format libclang-rt-14-dev  # libFuzzer + sanitizers, format check
    python3 procps util-linux ca-certificates # harness helpers (ports, runuser)
    curl prometheus python3-yaml           # metrics e2e (promtool), alert tests
    systemd                                # systemd-analyze verify of the unit
    openssl                                # test CAs and certificates (pg.sh start-tls)
    debhelper dpkg-dev lintian             # the .deb (deploy/build-deb.sh) and its
                                           # check (ctest deploy_package)
    pgbouncer                              # transaction pooling e2e (e2e_pgbouncer)
)

# Citus for the scale-out tests (ctest -L citus), built once per machine
# by tests/support/citus.sh from ../shared/vendor when that source is there
# (Citus is not packaged by Debian; users install it from Citus's own
# packages): the server's headers and the libraries its configure wants
# (../shared/vendor/README.md).
citus_vendor() {
    local common
    for d in "${PI_VENDOR_DIR:-}" "$here/../../shared/vendor"; do
        [ -n "$d" ] && [ -f "$d/citus-13.2.2.tar.gz" ] && return 0
    done
    common=$(git -C "$here" rev-parse --path-format=absolute --git-common-dir 2>/dev/null) &&
        [ -f "$common/../../shared/vendor/citus-13.2.2.tar.gz" ]
}
if citus_vendor; then
    packages+=(postgresql-server-dev-15 liblz4-dev libzstd-dev
        libcurl4-openssl-dev libkrb5-dev libselinux1-dev libxslt1-dev
        libpam0g-dev libreadline-dev)
fi

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null |
        grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#packages[@]} packages present, nothing to install"
else
    # As a developer (not root), go through sudo for apt only.
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null ||
            { echo "install-deps: missing ${missing[*]}; run me as root" >&2; exit 1; }
        sudo=(sudo)
    fi
    if ! grep -qs 'VERSION_CODENAME=bookworm' /etc/os-release; then
        echo "install-deps: warning: written for Debian 12 (bookworm)" >&2
    fi
    echo "install-deps: installing: ${missing[*]}"
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# librdkafka >= 2.6.1 (Debian 12's 2.0.2 cannot log in with SCRAM to Kafka 4,
# librdkafka issue 4895): Debian 13's 2.8.0 rebuilt here, once, from its
# source package (librdkafka1, librdkafka++1, librdkafka-dev; kcat above
# runs on it, same soname), unless one that new is installed already.
bash "$here/librdkafka-backport.sh"

# The Kafka broker's jars come from Maven Central, cached under
# ~/.cache/presence-ingest; fetching them now keeps the first test run fast.
libs=$(bash "$here/../tests/support/kafka.sh" fetch)
echo "install-deps: Kafka jars in $libs"

# Citus, built once per machine (cached under ~/.cache/presence-ingest) and
# installed into PostgreSQL's directories, when its source is there.
if citus_vendor; then
    bash "$here/../tests/support/citus.sh" build
    echo "install-deps: Citus 13.2.2 built and installed (ctest -L citus)"
fi
