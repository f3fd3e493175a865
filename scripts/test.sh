#!/usr/bin/env bash
# Usage: scripts/test.sh [pytest args] — run the test suite; the tests start the local cloud they need and stop it.
#
# With no arguments (make test, CI) the suite runs in two lanes at once, each against its own local cloud: most of
# the integration tests' time is waiting (Step Functions retry backoff, task timeouts, polling), so two lanes on this
# 2-core machine take little more than the longer one. Lane "b" gets a second local cloud (port 4567, state under
# .localcloud/lane-b) and the files listed in LANE_B; lane "a" everything else on the usual one (localhost:4566: the
# README's blocks name it). Fault rules and stacks of one lane never touch the other's. Lane b's output follows
# lane a's. With arguments, one pytest run with them, on the usual local cloud.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
if [ $# -gt 0 ]; then
  export_client_env
  exec "$VENV_DIR/dev/bin/python" -m pytest "$@"
fi

LANE_B=(tests/integration/test_faults.py tests/integration/test_renditions.py tests/integration/test_api_key.py)
LANE_B_PORT="${LOCALCLOUD_LANE_B_PORT:-4567}"
ignore=()
for f in "${LANE_B[@]}"; do ignore+=(--ignore "$f"); done
mkdir -p "$STATE_DIR/lane-b"
lane_b_log="$STATE_DIR/lane-b/pytest.log"
started=$SECONDS
(
  export LOCALCLOUD_PORT="$LANE_B_PORT" LOCALCLOUD_STATE_DIR="$STATE_DIR/lane-b"
  ENDPOINT="http://localhost:${LANE_B_PORT}"
  export_client_env
  exec "$VENV_DIR/dev/bin/python" -m pytest -p no:cacheprovider "${LANE_B[@]}"
) >"$lane_b_log" 2>&1 &
lane_b=$!
trap 'kill "$lane_b" 2>/dev/null || true' EXIT

export_client_env
status_a=0
"$VENV_DIR/dev/bin/python" -m pytest "${ignore[@]}" || status_a=$?
status_b=0
wait "$lane_b" || status_b=$?
trap - EXIT
echo
echo "==================== lane b (second local cloud: ${LANE_B[*]}) ===================="
cat "$lane_b_log"
log "lane a exit $status_a, lane b exit $status_b; $((SECONDS - started)) s for both"
[ "$status_a" = 0 ] && [ "$status_b" = 0 ]
