#!/usr/bin/env bash
# Usage: scripts/down.sh — stop the local cloud and every Lambda process it started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

pidfile="$STATE_DIR/localstack.pid"
[ -f "$pidfile" ] || { echo "local cloud not running"; exit 0; }
pid="$(cat "$pidfile")"
# LocalStack runs in its own session (setsid): its Lambda supervisors and runtimes share it.
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
fi
pkill -KILL -s "$pid" 2>/dev/null || true
rm -f "$pidfile"
echo "local cloud stopped"
