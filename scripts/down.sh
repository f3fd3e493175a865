#!/usr/bin/env bash
# Usage: scripts/down.sh — stop the local cloud and every Lambda process it started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

pidfile="$STATE_DIR/localstack.pid"
[ -f "$pidfile" ] || { echo "local cloud not running"; exit 0; }
pid="$(cat "$pidfile")"
# LocalStack runs in its own session (setsid): its Lambda supervisors and runtimes share it.
# Its own shutdown stops each function's event poller, waiting out a 2 s long poll and a 3 s join per function, and
# took the full 10 s this script allowed once a few stacks were deployed. It keeps nothing on disk that needs it (no
# persistence), so it gets 2 s; then every process of the session gets SIGTERM (a Lambda supervisor stops its runtime
# and removes its cgroup), and SIGKILL after 1 s more.
# (a process of the session that has exited but not been reaped yet, a zombie, holds nothing and does not count; but a
# zombie leader whose other threads are still exiting, "Zl", still holds its files: LocalStack's listening socket)
in_session() { ps -o stat= -s "$pid" 2>/dev/null | grep -qvE '^Z[^l]*$'; }
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 8); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
fi
if in_session; then
  pkill -TERM -s "$pid" 2>/dev/null || true
  for _ in $(seq 1 4); do in_session || break; sleep 0.25; done
fi
pkill -KILL -s "$pid" 2>/dev/null || true
# SIGKILL is delivered asynchronously: "stopped" must mean its port is free for the next local cloud (the lifecycle
# tests start one on the same port right after stopping another, and once found it still listening).
for _ in $(seq 1 50); do in_session || break; sleep 0.1; done
in_session && echo "warning: processes of the local cloud's session $pid are still running after SIGKILL" >&2
listening() { (exec 3<>"/dev/tcp/127.0.0.1/${LOCALCLOUD_PORT}") 2>/dev/null; }
for _ in $(seq 1 50); do listening || break; sleep 0.1; done
listening && echo "warning: port ${LOCALCLOUD_PORT} still accepts connections after the local cloud stopped" >&2
rm -f "$pidfile"
echo "local cloud stopped"
