# Shared shell helpers for the scripts in tests/services/.
#
# Why this exists: the three service scripts (kafka, postgres, clickhouse) share the same
# lifecycle (install once, start in the background with a pid file and a log under a state
# dir, wait for the port with a bounded wait, stop politely then firmly). Keeping that here
# means one fix applies to all three. It must never bind anything beyond loopback, never
# touch the system's own service instances, and never read or write outside the state dir
# except for package installs and the Maven cache.
#
# Sourced, not executed; callers set SERVICE before sourcing.

set -euo pipefail

HEDDLE_SERVICES_DIR="${HEDDLE_SERVICES_DIR:-/tmp/heddle-services}"
SERVICES_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE_DIR="$HEDDLE_SERVICES_DIR/$SERVICE"
PID_FILE="$STATE_DIR/$SERVICE.pid"
LOG_FILE="$STATE_DIR/$SERVICE.log"
# Seconds to wait for a service to accept connections after start.
START_TIMEOUT="${HEDDLE_SERVICES_START_TIMEOUT:-120}"

say() { echo "[$SERVICE] $*" >&2; }

die() {
  echo "[$SERVICE] error: $*" >&2
  exit 1
}

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# read_pid: the service's pid, from the first line of its pid file (postgres writes more).
read_pid() {
  head -n 1 "$PID_FILE"
}

# pid_alive: true when the pid file names a live process.
pid_alive() {
  [[ -f "$PID_FILE" ]] && kill -0 "$(read_pid)" 2>/dev/null
}

# wait_for_port PORT: wait until the service accepts connections, or fail with the log's tail.
wait_for_port() {
  local port="$1" waited=0
  while ! port_open "$port"; do
    if ! pid_alive; then
      tail -n 30 "$LOG_FILE" >&2 2>/dev/null || true
      die "process exited before listening on 127.0.0.1:$port (log: $LOG_FILE)"
    fi
    if ((waited >= START_TIMEOUT)); then
      tail -n 30 "$LOG_FILE" >&2 2>/dev/null || true
      die "not listening on 127.0.0.1:$port after ${START_TIMEOUT}s (log: $LOG_FILE)"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  say "listening on 127.0.0.1:$port after ${waited}s"
}

# refuse_taken_port PORT ENVVAR: fail clearly when another program holds the port we need.
refuse_taken_port() {
  if port_open "$1"; then
    die "127.0.0.1:$1 is already taken by another program; stop it or set $2 to a free port"
  fi
}

# stop_pid: stop the process in the pid file with SIGTERM, then SIGKILL after 30 s.
stop_pid() {
  if ! pid_alive; then
    say "not running"
    rm -f "$PID_FILE"
    return 0
  fi
  local pid waited=0
  pid="$(read_pid)"
  say "stopping pid $pid"
  kill "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= 30)); then
      say "pid $pid ignored SIGTERM for 30s; sending SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
    fi
    sleep 1
    waited=$((waited + 1))
  done
  rm -f "$PID_FILE"
  say "stopped"
}

# report_status PORT: print the state and return 0 only when the service accepts connections.
report_status() {
  if pid_alive && port_open "$1"; then
    say "running (pid $(read_pid), 127.0.0.1:$1, state $STATE_DIR)"
    return 0
  fi
  say "not running"
  return 1
}

# apt_install PKG...: install Debian packages, refreshing the package lists once if needed.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  say "installing $* with apt-get"
  if ! apt-get install -y -q "$@" >&2; then
    say "install failed; refreshing package lists and retrying"
    apt-get update -q >&2 || die "apt-get update failed"
    apt-get install -y -q "$@" >&2 || die "apt-get install $* failed"
  fi
}

# dispatch START STOP STATUS "$@": run the function named by the command-line action.
dispatch() {
  local action="${4:-}"
  case "$action" in
  start) "$1" ;;
  stop) "$2" ;;
  status) "$3" ;;
  *) die "usage: $(basename "$0") start|stop|status" ;;
  esac
}
