#!/usr/bin/env bash
# Usage: scripts/test.sh [pytest args] — run the whole test suite; the tests start the local cloud if needed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bash "$ROOT/scripts/setup.sh"
export_client_env
cd "$ROOT"
exec "$VENV_DIR/dev/bin/python" -m pytest "$@"
