#!/usr/bin/env bash
# Runs a private PostgreSQL server on 127.0.0.1 for tests, with user/password/database heddle.
#
# Why this exists: connector tests need a real server, and CI has no Docker. This script uses
# Debian's server binaries (installing them when absent) with its own data directory under
# the state dir. It must never touch the system cluster (/var/lib/postgresql), never listen
# beyond loopback, and never reinitialise a data directory that already exists.
#
# Usage: postgres.sh start|stop|status
# Env: HEDDLE_SERVICES_DIR (state root, default /tmp/heddle-services),
#      HEDDLE_PG_PORT (default 5432; set 5433 when a system server already holds 5432).

SERVICE=postgres
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

PORT="${HEDDLE_PG_PORT:-5432}"
DATA_DIR="$STATE_DIR/data"
# The pid file is postgres's own (postmaster.pid's first line), so pg_ctl stays authoritative.
PID_FILE="$DATA_DIR/postmaster.pid"

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [[ -n "$dir" && -x "$dir/initdb" ]] && echo "$dir"
}

# as_owner CMD...: run as the postgres user when we are root, since initdb and postgres
# refuse to run as root.
as_owner() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

init_cluster() {
  local bin="$1" pwfile
  say "initialising a new data directory in $DATA_DIR"
  mkdir -p "$STATE_DIR"
  pwfile="$STATE_DIR/pwfile"
  echo heddle >"$pwfile"
  if [[ "$(id -u)" == 0 ]]; then chown -R postgres:postgres "$STATE_DIR"; fi
  as_owner "$bin/initdb" -D "$DATA_DIR" -U heddle --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >>"$LOG_FILE" 2>&1 ||
    die "initdb failed (log: $LOG_FILE)"
  rm -f "$pwfile"
  cat >>"$DATA_DIR/postgresql.conf" <<CONF
# Added by tests/services/postgres.sh: loopback only, socket in the state dir.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$STATE_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
}

start() {
  if pid_alive; then
    say "already running (pid $(read_pid))"
    wait_for_port "$PORT"
    return 0
  fi
  refuse_taken_port "$PORT" HEDDLE_PG_PORT
  local bin
  bin="$(pg_bin)" || {
    apt_install postgresql
    bin="$(pg_bin)" || die "no initdb under /usr/lib/postgresql after installing postgresql"
  }
  mkdir -p "$STATE_DIR"
  [[ -f "$DATA_DIR/PG_VERSION" ]] || init_cluster "$bin"
  if [[ "$(id -u)" == 0 ]]; then chown -R postgres:postgres "$STATE_DIR"; fi
  say "starting $("$bin/postgres" --version) on 127.0.0.1:$PORT (log: $LOG_FILE)"
  as_owner "$bin/pg_ctl" -D "$DATA_DIR" -l "$LOG_FILE" -o "-p $PORT" -w -t "$START_TIMEOUT" \
    start >&2 || {
    tail -n 30 "$LOG_FILE" >&2 || true
    die "pg_ctl could not start the server (log: $LOG_FILE)"
  }
  wait_for_port "$PORT"
  # The heddle superuser exists from initdb; the database is created on first start only.
  if ! as_owner "$bin/psql" -h "$STATE_DIR" -p "$PORT" -U heddle -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'heddle'" | grep -q 1; then
    say "creating database heddle"
    as_owner "$bin/createdb" -h "$STATE_DIR" -p "$PORT" -U heddle heddle ||
      die "could not create database heddle"
  fi
}

stop() {
  if ! pid_alive; then
    say "not running"
    return 0
  fi
  say "stopping"
  as_owner "$(pg_bin)/pg_ctl" -D "$DATA_DIR" -m fast -w stop >&2 || die "pg_ctl stop failed"
}

status() { report_status "$PORT"; }

dispatch start stop status "$@"
