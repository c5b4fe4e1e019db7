#!/usr/bin/env bash
# Runs a single-node Kafka broker (KRaft, combined broker+controller) on 127.0.0.1 for tests.
#
# Why this exists: CI has no Docker and no Kafka download host, only Maven Central, so the
# broker runs from the jars that tests/services/kafka/pom.xml resolves into ~/.m2. It must
# never listen beyond loopback, and never reformat a data directory that already holds a
# cluster (start is idempotent; delete the state dir to begin afresh).
#
# Usage: kafka.sh start|stop|status
# Env: HEDDLE_SERVICES_DIR (state root, default /tmp/heddle-services),
#      HEDDLE_KAFKA_PORT (client port, default 9092),
#      HEDDLE_KAFKA_CONTROLLER_PORT (KRaft controller port, default 9093).

SERVICE=kafka
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

PORT="${HEDDLE_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${HEDDLE_KAFKA_CONTROLLER_PORT:-9093}"
CLASSPATH_FILE="$STATE_DIR/classpath.txt"
CONFIG_FILE="$STATE_DIR/server.properties"
DATA_DIR="$STATE_DIR/data"

resolve_jars() {
  command -v java >/dev/null || die "java is not installed (Kafka needs Java 17+)"
  command -v mvn >/dev/null || die "mvn is not installed (it fetches Kafka's jars)"
  local pom="$SERVICES_HOME/kafka/pom.xml"
  if [[ -s "$CLASSPATH_FILE" && "$CLASSPATH_FILE" -nt "$pom" ]]; then
    return 0
  fi
  say "resolving Kafka jars from Maven Central into ~/.m2 (first run downloads ~45 MB)"
  # Maven's output goes to the log: Debian's mvn prints stray colour codes even with -q.
  mvn -q -B -f "$pom" dependency:build-classpath -DincludeScope=runtime \
    -Dmdep.outputFile="$CLASSPATH_FILE" >>"$LOG_FILE" 2>&1 || {
    tail -n 30 "$LOG_FILE" >&2
    die "mvn could not resolve Kafka's jars (log: $LOG_FILE)"
  }
}

write_config() {
  cat >"$CONFIG_FILE" <<PROPS
# Written by tests/services/kafka.sh: a one-node cluster for tests, loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA_DIR
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
}

# A small heap: the broker shares 2 cores and CI's memory with the test suite.
JAVA_OPTS=(-Xms256m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true)

run_java() {
  java "${JAVA_OPTS[@]}" -cp "$(cat "$CLASSPATH_FILE")" "$@"
}

start() {
  if pid_alive; then
    say "already running (pid $(read_pid))"
    wait_for_port "$PORT"
    return 0
  fi
  refuse_taken_port "$PORT" HEDDLE_KAFKA_PORT
  refuse_taken_port "$CONTROLLER_PORT" HEDDLE_KAFKA_CONTROLLER_PORT
  mkdir -p "$STATE_DIR"
  resolve_jars
  write_config
  if [[ ! -f "$DATA_DIR/meta.properties" ]]; then
    local cluster_id
    cluster_id="$(run_java kafka.tools.StorageTool random-uuid 2>>"$LOG_FILE")" ||
      die "could not generate a cluster id (log: $LOG_FILE)"
    say "formatting $DATA_DIR with cluster id $cluster_id"
    run_java kafka.tools.StorageTool format -t "$cluster_id" -c "$CONFIG_FILE" \
      >>"$LOG_FILE" 2>&1 || die "formatting the storage failed (log: $LOG_FILE)"
  fi
  say "starting the broker (log: $LOG_FILE)"
  # A subshell that execs java keeps $! equal to the broker's own pid.
  (exec java "${JAVA_OPTS[@]}" -cp "$(cat "$CLASSPATH_FILE")" kafka.Kafka "$CONFIG_FILE") >>"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  wait_for_port "$PORT"
}

stop() { stop_pid; }
status() { report_status "$PORT"; }

dispatch start stop status "$@"
