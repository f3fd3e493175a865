#!/usr/bin/env bash
# Usage: scripts/test.sh [pytest args] — run the test suite; the tests start the local cloud they need and stop it.
#
# With no arguments (make test, CI) the suite runs in lanes at once, each against its own local cloud: most of the
# integration tests' time is waiting (Step Functions retry backoff, task timeouts, polling), so lanes on this 2-core
# machine overlap those waits. Each extra lane gets its own local cloud (port 4567, 4568, ...; state under
# .localcloud/lane-<name>) and its own files; lane "a" runs everything else on the usual one (localhost:4566: the
# README's and docs' blocks name it). Fault rules and stacks of one lane never touch another's. The extra lanes'
# output follows lane a's. With arguments: one pytest run with them, on the usual local cloud.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
if [ $# -gt 0 ]; then
  export_client_env
  exec "$VENV_DIR/dev/bin/python" -m pytest "$@"
fi

# name:files (space-separated), balanced by measured durations (2026-12-03, fresh clones: lane a 276 s, b 237 s,
# c 248 s with test_build.py in a; a 219 s, b 240 s, c 209 s with it in b; the machine ~90% busy). Two lanes took
# 296-302 s that day; three were slower than two before deploys skipped what did not change (6 min 40 s against
# 5 min 44 s), when each extra local cloud's deploys cost ~18 s of CPU. Later that day, with the unit tests ~40 CPU-s
# lighter, lane a was the last to end (a 308 s, b 245 s, c 274 s): test_surfaces.py (~30 s) moved to b. That evening,
# with LocalStack's CPU per request lower, lane b was the last (a 215 s, b 258 s, c 230 s; 260 s in all), most of it
# the fault tests' waits: those of timing (test_fault_timing.py, ~80 s of task timeouts) got a fourth lane, d. Later
# (2026-12-03, night) the renditions tests on the default stack ran in lane b, which deploys that stack anyway: one
# deploy fewer, but six fresh-clone runs took 225-252 s against 206-221 s before, lane a and the unit tests slower
# (the machine ~90% busy: the total CPU, not the lanes' balance, sets the time); they are back in lane c.
# 2026-12-04: lane a was the last in six runs of six (by 3-19 s after c; b ended 60-90 s before it), so the lifecycle
# tests (~25 s; their own local clouds on port 4599) run in lane b: a and c then end together (four runs alternated:
# 244 s and 261 s with the move, 280 s and 247 s without; one cannot tell this from the machine's phase).
# Later that day lane c was the last in eight fresh-clone runs of eight (lane b 30-70 s before it), so the webhook and
# backfill tests (~55 s, a stack of their own) run in lane b: two alternating pairs, 217 s and 222 s with the move
# (lanes a 213/211, b 207/219, c 172/173), 220 s and 225 s without (a 215/220, b 178/171, c 217/221).
LANES=(
  "b:tests/integration/test_faults.py tests/integration/test_api_key.py tests/localcloud/test_lifecycle.py tests/integration/test_webhook_and_backfill.py"
  "c:tests/integration/test_express.py tests/integration/test_renditions.py"
  "d:tests/integration/test_fault_timing.py tests/integration/test_surfaces.py tests/integration/test_build.py"
)
# Tests that need no local cloud (tests/unit: moto, the linters, mypy; ~90 s of one core; tests/localcloud/unit: the
# local cloud's standard-library parts, ~2 s) run beside the lanes at a lower CPU priority (nice 19): they use the
# cores while the lanes wait (retry backoff, task timeouts, polling) and give way when a lane needs them.
BACKGROUND=(tests/unit tests/localcloud/unit)
PYTEST=("$VENV_DIR/dev/bin/python" -m pytest -p no:cacheprovider --durations=12)
started=$SECONDS
ignore=()
pids=()
for f in "${BACKGROUND[@]}"; do ignore+=(--ignore "$f"); done
mkdir -p "$STATE_DIR"
nice -n 19 "${PYTEST[@]}" "${BACKGROUND[@]}" >"$STATE_DIR/background-pytest.log" 2>&1 &
background_pid=$!
port="${LOCALCLOUD_LANES_FIRST_PORT:-4567}"
for lane in "${LANES[@]}"; do
  name="${lane%%:*}"
  read -r -a files <<<"${lane#*:}"
  for f in "${files[@]}"; do ignore+=(--ignore "$f"); done
  dir="$STATE_DIR/lane-$name"
  mkdir -p "$dir"
  (
    export LOCALCLOUD_PORT="$port" LOCALCLOUD_STATE_DIR="$dir"
    ENDPOINT="http://localhost:${port}"
    export_client_env
    exec "${PYTEST[@]}" "${files[@]}"
  ) >"$dir/pytest.log" 2>&1 &
  pids+=($!)
  port=$((port + 1))
done
trap 'kill "${pids[@]}" "$background_pid" 2>/dev/null || true' EXIT

export_client_env
status=0
"${PYTEST[@]}" "${ignore[@]}" || status=$?
summary="lane a: exit $status"
# collect NAME TITLE LOG PID: wait for a job run beside lane a, print its output under TITLE, count its exit
collect() {
  local code=0
  wait "$4" || code=$?
  echo
  echo "==================== $2 ===================="
  cat "$3"
  summary+=", $1: exit $code"
  [ "$code" = 0 ] || status=1
}
for i in "${!LANES[@]}"; do
  name="${LANES[$i]%%:*}"
  collect "lane $name" "lane $name (its own local cloud): ${LANES[$i]#*:}" "$STATE_DIR/lane-$name/pytest.log" "${pids[$i]}"
done
collect "${BACKGROUND[*]}" "beside the lanes (no local cloud, lower priority): ${BACKGROUND[*]}" \
  "$STATE_DIR/background-pytest.log" "$background_pid"
trap - EXIT
log "$summary; $((SECONDS - started)) s in all"
exit "$status"
