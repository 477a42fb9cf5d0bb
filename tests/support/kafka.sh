#!/usr/bin/env bash
# kafka.sh -- a throwaway single-node Apache Kafka (KRaft) for tests and local runs.
#
#   kafka.sh fetch                          download the jars into the cache (once)
#   kafka.sh start  DIR [PARTITIONS]        format, start on free 127.0.0.1 ports,
#                                           wait until kcat sees the broker
#   kafka.sh stop   DIR                     SIGTERM, SIGKILL after 20 s; remove DIR
#   kafka.sh topic  DIR NAME PARTITIONS     create a topic, wait until it has leaders
#   kafka.sh groups DIR GROUP [ARGS...]     ConsumerGroupCommand --describe
#   kafka.sh grow   DIR NAME PARTITIONS     raise a topic's partition count
#   kafka.sh truncate DIR NAME PARTITION OFFSET
#                                           delete a partition's records below
#                                           OFFSET (moves its log start)
#   kafka.sh freeze DIR | thaw DIR          SIGSTOP / SIGCONT the broker: it
#                                           accepts connections, answers nothing
#
# Besides the PLAINTEXT listener the tests use, the broker has a
# SASL_PLAINTEXT one (mechanism PLAIN, user pi, password pi-secret) and an
# SSL one with a certificate for 127.0.0.1 signed by a CA made at start:
# DIR/brokers_sasl, DIR/brokers_ssl and DIR/tls/ca.pem (plus
# DIR/tls/other-ca.pem, a CA that signed nothing), for the tests of error
# lines that must name an authentication or certificate failure. A fourth,
# SASL_SSL with SCRAM-SHA-512 only (the same certificate; user pi-scram, a
# random password made at start, its credentials created in KRaft at format
# time), is what a production cluster looks like: DIR/brokers_sasl_ssl,
# DIR/scram_user and DIR/scram_password (mode 600). No ACLs: any
# authenticated user may do anything.
#
# DIR receives: brokers (host:port for bootstrap.servers), pid, classpath (for
# running Kafka's own tools with `java -cp "$(cat DIR/classpath)" ...`),
# server.properties and server.log.
#
# The broker comes from Maven Central (tests/support/kafka/pom.xml), fetched
# by `mvn dependency:copy-dependencies` into
# ${PI_CACHE_DIR:-~/.cache/presence-ingest}/kafka-$KAFKA_VERSION/libs and
# reused by every later run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
CACHE_DIR=${PI_CACHE_DIR:-${HOME:-/tmp}/.cache/presence-ingest}
LIBS=$CACHE_DIR/kafka-$KAFKA_VERSION/libs
MARKER=.pi-harness-kafka
STOP_TIMEOUT=20
READY_TIMEOUT=${KAFKA_READY_TIMEOUT:-120}

usage() {
    die "usage: $0 fetch | start DIR [PARTITIONS] | stop DIR |" \
        "topic DIR NAME PARTITIONS | groups DIR GROUP [ARGS...] |" \
        "grow DIR NAME PARTITIONS | truncate DIR NAME PARTITION OFFSET |" \
        "freeze DIR | thaw DIR"
}

cmd_fetch() {
    if [ -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]; then
        return 0
    fi
    command -v mvn >/dev/null || die "mvn not found: run deploy/install-deps.sh"
    mkdir -p "$CACHE_DIR"
    # Two runs fetching at once (a CI run and a local one) must not both
    # write into libs/: take a lock, re-check, then download into a temp
    # dir and rename, so libs/ is either complete or absent.
    exec 9>"$CACHE_DIR/.kafka-fetch.lock"
    flock 9
    if [ ! -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]; then
        local tmp
        log "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central (once)"
        tmp=$(mktemp -d "$CACHE_DIR/.fetch.XXXXXX")
        if ! mvn -q -B -Dstyle.color=never -f "$here/kafka/pom.xml" \
            -Dkafka.version="$KAFKA_VERSION" \
            dependency:copy-dependencies -DincludeScope=runtime \
            -DoutputDirectory="$tmp/libs" >&2; then
            rm -rf "$tmp"
            die "mvn could not fetch Kafka $KAFKA_VERSION"
        fi
        rm -rf "$LIBS"
        mkdir -p "$(dirname "$LIBS")"
        mv "$tmp/libs" "$LIBS"
        rmdir "$tmp"
    fi
    exec 9>&-
}

# run_java DIR CLASS ARGS...: one of Kafka's command-line tools, logging into
# DIR/tools.log. C1-only JIT: these run for a second or two, and it halves
# the JVM's start-up cost.
run_java() {
    local dir=$1
    shift
    java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
        -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
        -Dkafka.logs.dir="$dir" -Dkafka.log.name=tools.log \
        -cp "$(cat "$dir/classpath")" "$@"
}

# A random Kafka cluster id: 16 random bytes, base64url without padding,
# which is what `StorageTool random-uuid` prints (saves a JVM start). Like
# Kafka's Uuid.randomUuid, never one starting with '-', which the tool's
# option parser would take for an option.
cluster_id() {
    python3 - <<'PY'
import base64, os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break
PY
}

# A CA and a server certificate for 127.0.0.1 in DIR/tls (PEM; the key and
# chain in one file, as Kafka's PEM keystore wants them).
make_tls() {
    local t=$1/tls
    mkdir -p "$t"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=pi-test-ca \
        -keyout "$t/ca.key" -out "$t/ca.pem" 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=pi-other-ca \
        -keyout "$t/other-ca.key" -out "$t/other-ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
        -keyout "$t/server.key" -out "$t/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' >"$t/ext.cnf"
    openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" \
        -CAcreateserial -days 2 -extfile "$t/ext.cnf" -out "$t/server.pem" \
        2>/dev/null
    openssl pkcs8 -topk8 -nocrypt -in "$t/server.key" -out "$t/server.p8"
    cat "$t/server.p8" "$t/server.pem" >"$t/keystore.pem"
}

cmd_start() {
    local dir=$1 partitions=${2:-1} bport cport sport tport qport pid i
    command -v java >/dev/null || die "java not found: run deploy/install-deps.sh"
    command -v kcat >/dev/null || die "kcat not found: run deploy/install-deps.sh"
    cmd_fetch
    # A DIR left by a killed run: clear it so every start is from scratch.
    if [ -e "$dir" ]; then
        cmd_stop "$dir"
    fi
    mkdir -p "$dir/data"
    : >"$dir/$MARKER"
    # From here on, any failure undoes everything started so far.
    trap 'log "start failed; cleaning up"; cmd_stop "$dir" || true' EXIT

    read -r bport cport sport tport qport < <(free_ports 5)
    echo "$LIBS/*" >"$dir/classpath"
    make_tls "$dir"
    echo pi-scram >"$dir/scram_user"
    (umask 077 && python3 -c 'import secrets; print("pi-" + secrets.token_hex(12))' \
        >"$dir/scram_password")
    # One node that is both broker and controller. Replication factors are 1
    # because there is one node; the initial rebalance delay is 0 so a test's
    # consumer joins at once; topics are created only on purpose
    # (auto.create off), so a typo in a test fails instead of passing.
    cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$bport,CONTROLLER://127.0.0.1:$cport,SASL_PLAINTEXT://127.0.0.1:$sport,SSL://127.0.0.1:$tport,SASL_SSL://127.0.0.1:$qport
advertised.listeners=PLAINTEXT://127.0.0.1:$bport,SASL_PLAINTEXT://127.0.0.1:$sport,SSL://127.0.0.1:$tport,SASL_SSL://127.0.0.1:$qport
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_pi="pi-secret";
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$dir/tls/keystore.pem
ssl.client.auth=none
log.dirs=$dir/data
num.partitions=$partitions
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
    run_java "$dir" kafka.tools.StorageTool format --standalone \
        -t "$(cluster_id)" -c "$dir/server.properties" \
        --add-scram "SCRAM-SHA-512=[name=$(cat "$dir/scram_user"),password=$(cat "$dir/scram_password")]" \
        >"$dir/format.log" 2>&1 ||
        { cat "$dir/format.log" >&2; return 1; }

    # setsid: the broker outlives this script (and a terminal's ^C or
    # hangup when started from deploy/local.sh); stdio goes to files so
    # ctest does not wait on an inherited pipe.
    setsid java -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
        -Dkafka.logs.dir="$dir" -Dkafka.log.name=server.log \
        -cp "$LIBS/*" kafka.Kafka "$dir/server.properties" \
        </dev/null >"$dir/stdout.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/pid"

    for ((i = 0; i < READY_TIMEOUT * 4; i++)); do
        if ! pid_alive "$pid"; then
            log "broker exited during start-up; last lines of its logs:"
            tail -n 20 "$dir/stdout.log" "$dir/server.log" >&2 || true
            return 1
        fi
        if kcat -L -b "127.0.0.1:$bport" -m 1 2>/dev/null |
            grep -q '1 brokers:'; then
            echo "127.0.0.1:$bport" >"$dir/brokers"
            echo "127.0.0.1:$sport" >"$dir/brokers_sasl"
            echo "127.0.0.1:$tport" >"$dir/brokers_ssl"
            echo "127.0.0.1:$qport" >"$dir/brokers_sasl_ssl"
            trap - EXIT
            log "Kafka $KAFKA_VERSION ready: brokers=127.0.0.1:$bport (pid $pid)"
            return 0
        fi
        sleep 0.25
    done
    log "broker not ready within $READY_TIMEOUT s; last lines of $dir/server.log:"
    tail -n 30 "$dir/server.log" >&2 || true
    return 1
}

cmd_stop() {
    local dir=$1 pid
    [ -e "$dir" ] || return 0
    # Refuse to delete a directory this script did not create.
    if [ ! -e "$dir/$MARKER" ] && [ -n "$(ls -A "$dir")" ]; then
        die "$dir was not made by kafka.sh (no $MARKER); not removing it"
    fi
    pid=$(cat "$dir/pid" 2>/dev/null || true)
    # Only signal the pid if it still is our java: after a reboot or a long
    # pause the number may belong to someone else.
    if pid_alive "$pid" && grep -qs "$dir/server.properties" "/proc/$pid/cmdline"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
            pid_alive "$pid" || break
            sleep 0.1
        done
        if pid_alive "$pid"; then
            log "broker $pid did not stop within $STOP_TIMEOUT s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            while pid_alive "$pid"; do sleep 0.1; done
        fi
    fi
    rm -rf -- "$dir"
}

cmd_topic() {
    local dir=$1 name=$2 partitions=$3 i
    [ -f "$dir/brokers" ] || die "no broker in $dir (run: $0 start $dir)"
    run_java "$dir" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$(cat "$dir/brokers")" --create --topic "$name" \
        --partitions "$partitions" --replication-factor 1 >/dev/null
    # CreateTopics returns before every partition has a leader in the
    # metadata a client sees; wait for that so a producer's first send works.
    for ((i = 0; i < 40; i++)); do
        if [ "$(kcat -L -b "$(cat "$dir/brokers")" -t "$name" -m 1 2>/dev/null |
            grep -c 'partition [0-9]*, leader 1,')" -eq "$partitions" ]; then
            return 0
        fi
        sleep 0.25
    done
    die "topic $name created but its $partitions partitions have no leader after 10 s"
}

cmd_grow() {
    local dir=$1 name=$2 partitions=$3
    [ -f "$dir/brokers" ] || die "no broker in $dir (run: $0 start $dir)"
    run_java "$dir" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$(cat "$dir/brokers")" --alter --topic "$name" \
        --partitions "$partitions" >/dev/null
}

cmd_truncate() {
    local dir=$1 name=$2 partition=$3 offset=$4
    [ -f "$dir/brokers" ] || die "no broker in $dir (run: $0 start $dir)"
    printf '{"partitions":[{"topic":"%s","partition":%d,"offset":%d}],"version":1}\n' \
        "$name" "$partition" "$offset" >"$dir/delete-records.json"
    run_java "$dir" org.apache.kafka.tools.DeleteRecordsCommand \
        --bootstrap-server "$(cat "$dir/brokers")" \
        --offset-json-file "$dir/delete-records.json" >/dev/null
}

cmd_signal() {
    [ -f "$1/pid" ] || die "no broker in $1"
    kill "-$2" "$(cat "$1/pid")"
}

cmd_groups() {
    local dir=$1 group=$2
    shift 2
    [ -f "$dir/brokers" ] || die "no broker in $dir (run: $0 start $dir)"
    run_java "$dir" org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
        --bootstrap-server "$(cat "$dir/brokers")" --describe --group "$group" "$@"
}

[ $# -ge 1 ] || usage
# Everything given a DIR may end in rm -rf DIR: refuse empty or /.
if [ "$1" != fetch ]; then
    [ $# -ge 2 ] && [ -n "$2" ] && [ "$2" != / ] || usage
    dir=$(abspath "$2")
fi
case "$1" in
    fetch) [ $# -eq 1 ] || usage; cmd_fetch; echo "$LIBS" ;;
    start) [ $# -le 3 ] || usage; cmd_start "$dir" "${3:-1}" ;;
    stop) [ $# -eq 2 ] || usage; cmd_stop "$dir" ;;
    topic) [ $# -eq 4 ] || usage; cmd_topic "$dir" "$3" "$4" ;;
    groups) [ $# -ge 3 ] || usage; group=$3; shift 3; cmd_groups "$dir" "$group" "$@" ;;
    grow) [ $# -eq 4 ] || usage; cmd_grow "$dir" "$3" "$4" ;;
    truncate) [ $# -eq 5 ] || usage; cmd_truncate "$dir" "$3" "$4" "$5" ;;
    freeze) [ $# -eq 2 ] || usage; cmd_signal "$dir" STOP ;;
    thaw) [ $# -eq 2 ] || usage; cmd_signal "$dir" CONT ;;
    *) usage ;;
esac
