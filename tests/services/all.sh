#!/usr/bin/env bash
# Starts, stops or reports on every service that Heddle's connector tests use.
#
# Why this exists: CI (.ci/run) and developers need one command for the whole set. It must
# never hide a failure: start stops at the first service that fails; status reports every
# service and fails if any is down.
#
# Usage: all.sh start|stop|status

set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
services=(postgres clickhouse kafka)

case "${1:-}" in
start)
  for s in "${services[@]}"; do
    started=$SECONDS
    "$here/$s.sh" start
    echo "[all] $s ready in $((SECONDS - started))s" >&2
  done
  ;;
stop)
  failed=0
  for s in "${services[@]}"; do "$here/$s.sh" stop || failed=1; done
  exit "$failed"
  ;;
status)
  failed=0
  for s in "${services[@]}"; do "$here/$s.sh" status || failed=1; done
  exit "$failed"
  ;;
*)
  echo "[all] error: usage: $(basename "$0") start|stop|status" >&2
  exit 1
  ;;
esac
