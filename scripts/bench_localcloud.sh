#!/usr/bin/env bash
# Usage: scripts/bench_localcloud.sh [bench args] — run bench/localcloud_bench.py against the running local cloud.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
export_client_env
mkdir -p "$ROOT/bench/out"
exec "$VENV_DIR/dev/bin/python" "$ROOT/bench/localcloud_bench.py" --json "$ROOT/bench/out/localcloud.json" "$@"
