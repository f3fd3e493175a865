#!/usr/bin/env bash
# Usage: scripts/up.sh — start the local cloud (LocalStack host mode + localcloud extensions) on 127.0.0.1:4566.
# Idempotent: if it is already running and healthy, it only prints the endpoint. Fails, and stops the local cloud it
# started, if a localcloud start-up hook did not install (LOCALCLOUD_SKIP_HOOKS=name,... starts without those named).
# LOCALCLOUD_SKIP_SETUP=1: the environments under .venv/ are made already; scripts/setup.sh is not run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

health() { curl -fsS -m 2 "http://127.0.0.1:${LOCALCLOUD_PORT}/_localstack/health" >/dev/null 2>&1; }
pidfile="$STATE_DIR/localstack.pid"

if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && health; then
  echo "local cloud already running: $ENDPOINT"
  exit 0
fi
if (exec 3<>"/dev/tcp/127.0.0.1/${LOCALCLOUD_PORT}") 2>/dev/null; then
  die "port ${LOCALCLOUD_PORT} is busy but not by our local cloud: stop that process (ss -ltnp 'sport = :${LOCALCLOUD_PORT}') or set LOCALCLOUD_PORT"
fi

[ "${LOCALCLOUD_SKIP_SETUP:-0}" = 1 ] || bash "$ROOT/scripts/setup.sh"
# plux (LocalStack's plugin loader) caches the entry-point index under $XDG_CACHE_HOME; its key (file mtimes)
# can miss a changed editable install, so a stale index would hide a new localcloud hook. A fresh one per start.
rm -rf "$STATE_DIR/cache"
# What the last local cloud unpacked (each function's code and layers, ~120 MB per layer version) belongs to no one
# now: a new local cloud starts with no functions.
rm -rf "$STATE_DIR/tmp"
mkdir -p "$STATE_DIR/fs/usr/lib/localstack" "$STATE_DIR/tmp" "$STATE_DIR/cache"
# LocalStack's service catalog, built once per environment (scripts/setup.sh): LocalStack reads it from its static libs
for catalog in "$VENV_DIR"/localstack/static/usr/lib/localstack/service-catalog-*.dill; do
  [ -f "$catalog" ] && ln -sf "$catalog" "$STATE_DIR/fs/usr/lib/localstack/"
done
# Function and layer archives unzipped once per content, shared by every local cloud of this checkout (the test lanes'
# too; localcloud/plugins/lambda_executor/executor.py prepare_code). Entries unused for a day go, and what a crash left half-made.
code_cache="$ROOT/.localcloud/code"
mkdir -p "$code_cache"
find "$code_cache" -mindepth 1 -maxdepth 1 \( -mmin +1440 -o -name '.*' -mmin +60 \) -exec rm -rf {} + 2>/dev/null || true
[ -s "$STATE_DIR/localstack.log" ] && mv "$STATE_DIR/localstack.log" "$STATE_DIR/localstack.previous.log"
: > "$STATE_DIR/localstack.log"
# The gateway's HTTP server: localcloud's thread per connection (localcloud/plugins/gateway_server.py: half the CPU of a small request)
# or LocalStack's twisted. The GIL switch interval: 0.5 ms kept twisted's reactor thread from waiting behind busy
# worker threads; with a thread per connection it lengthened a burst's tail 2-4x, and Python's 5 ms does not.
gateway_server="${LOCALCLOUD_GATEWAY_SERVER:-localcloud}"
if [ "$gateway_server" = twisted ]; then switch_interval="${LOCALCLOUD_SWITCH_INTERVAL:-0.0005}"; else switch_interval="${LOCALCLOUD_SWITCH_INTERVAL:-}"; fi
# Run from the state folder: a folder named like a plugin package in the cwd would shadow it on import.
(
  cd "$STATE_DIR"
  exec env -u PYTHONPATH \
    GATEWAY_LISTEN="127.0.0.1:${LOCALCLOUD_PORT}" \
    LOCALSTACK_HOST="localhost:${LOCALCLOUD_PORT}" \
    OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$STATE_DIR/fs" TMPDIR="$STATE_DIR/tmp" XDG_CACHE_HOME="$STATE_DIR/cache" \
    DNS_ADDRESS=0 SKIP_SSL_CERT_DOWNLOAD=1 DISABLE_EVENTS=1 \
    LAMBDA_RUNTIME_EXECUTOR=process LOCALCLOUD_RUNTIMES_DIR="$VENV_DIR/runtimes" LOCALCLOUD_CODE_CACHE="$code_cache" \
    LAMBDA_LIMITS_CONCURRENT_EXECUTIONS="${LOCALCLOUD_LAMBDA_CONCURRENCY:-64}" \
    LAMBDA_KEEPALIVE_MS="${LOCALCLOUD_LAMBDA_KEEPALIVE_MS:-120000}" \
    LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT="${LOCALCLOUD_LAMBDA_STARTUP_TIMEOUT:-60}" \
    PROVIDER_OVERRIDE_DYNAMODB=moto PROVIDER_OVERRIDE_COGNITO_IDP=moto \
    SERVICES="${LOCALCLOUD_SERVICES}" \
    GATEWAY_SERVER="$gateway_server" LOCALCLOUD_SWITCH_INTERVAL="$switch_interval" \
    S3_SKIP_SIGNATURE_VALIDATION=0 IN_MEMORY_CLIENT="${LOCALCLOUD_IN_MEMORY_CLIENT:-1}" \
    setsid "$VENV_DIR/localstack/bin/python" -m localstack.runtime.main
) >>"$STATE_DIR/localstack.log" 2>&1 < /dev/null &
echo $! > "$pidfile"

# Every localcloud hook ran before the gateway answered. One that did not install (a target missing or changed in
# another LocalStack version, an error) leaves LocalStack running without its fix, and only a log line would tell:
# its report (GET /_localcloud/hooks, localcloud/plugins/hook_report.py) names it, with its error.
check_hooks() {
  local report
  report="$(curl -fsS -m 5 "http://127.0.0.1:${LOCALCLOUD_PORT}/_localcloud/hooks" 2>/dev/null)" \
    || { echo "error: no hook report at ${ENDPOINT}/_localcloud/hooks: localcloud's hook_report did not load" >&2; return 1; }
  "$VENV_DIR/localstack/bin/python" -I -c '
import json, sys
failed = json.load(sys.stdin)["failed"]
for name, error in failed.items():
    print(f"error: localcloud hook {name} did not install: {error}", file=sys.stderr)
if failed:
    print("error: to start without it, name it in LOCALCLOUD_SKIP_HOOKS=" + ",".join(failed), file=sys.stderr)
sys.exit(1 if failed else 0)' <<<"$report"
}

for _ in $(seq 1 120); do
  if health && grep -q "^Ready" "$STATE_DIR/localstack.log"; then
    if ! check_hooks; then
      bash "$ROOT/scripts/down.sh" >/dev/null
      die "the local cloud started without a localcloud hook, so it was stopped (log: $STATE_DIR/localstack.log)"
    fi
    echo "local cloud up: $ENDPOINT (log: .localcloud/localstack.log)"
    exit 0
  fi
  kill -0 "$(cat "$pidfile")" 2>/dev/null || { tail -20 "$STATE_DIR/localstack.log" >&2; die "LocalStack exited during start-up (log: .localcloud/localstack.log)"; }
  sleep 0.5
done
die "LocalStack did not become healthy within 60 s (log: .localcloud/localstack.log)"
