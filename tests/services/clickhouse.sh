#!/usr/bin/env bash
# Runs a ClickHouse HTTP endpoint on 127.0.0.1 for tests, backed by the chdb-core wheel.
#
# Why this exists: Debian 12's clickhouse-server is 18.16 (2018) and rejects the typed query
# parameters (`{name:Type}`) that @clickhouse/client sends; no registry reachable from CI
# serves a newer server binary. The chdb-core wheel on PyPI ships a current ClickHouse
# engine, and clickhouse/chdb_http.py serves ClickHouse's HTTP interface over it (see
# docs/services.md for what that covers). It must never listen beyond loopback and never
# install into the system Python: everything goes into a venv under the state dir.
#
# Usage: clickhouse.sh start|stop|status
# Env: HEDDLE_SERVICES_DIR (state root, default /tmp/heddle-services),
#      HEDDLE_CLICKHOUSE_PORT (HTTP port, default 8123).

SERVICE=clickhouse
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

PORT="${HEDDLE_CLICKHOUSE_PORT:-8123}"
# Pinned so that every machine serves the same engine; bump deliberately.
CHDB_VERSION=26.9.0
VENV="$STATE_DIR/venv"

install_engine() {
  if [[ -f "$VENV/.chdb-$CHDB_VERSION" ]]; then
    return 0
  fi
  command -v python3 >/dev/null || die "python3 is not installed"
  say "installing chdb-core==$CHDB_VERSION from PyPI into $VENV (~180 MB wheel)"
  python3 -m venv "$VENV" || die "could not create a venv in $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "chdb-core==$CHDB_VERSION" >&2 ||
    die "pip could not install chdb-core==$CHDB_VERSION"
  touch "$VENV/.chdb-$CHDB_VERSION"
}

start() {
  if pid_alive; then
    say "already running (pid $(read_pid))"
    wait_for_port "$PORT"
    return 0
  fi
  refuse_taken_port "$PORT" HEDDLE_CLICKHOUSE_PORT
  mkdir -p "$STATE_DIR"
  install_engine
  say "starting the HTTP endpoint (log: $LOG_FILE)"
  (exec "$VENV/bin/python" "$SERVICES_HOME/clickhouse/chdb_http.py" \
    --data "$STATE_DIR/data" --port "$PORT") >>"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  wait_for_port "$PORT"
}

stop() { stop_pid; }
status() { report_status "$PORT"; }

dispatch start stop status "$@"
