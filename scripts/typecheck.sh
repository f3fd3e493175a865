#!/usr/bin/env bash
# Usage: scripts/typecheck.sh — mypy over the app code: the layer's package, then each function's handler
# (one call per function: every handler is app.py, which mypy cannot take twice in one run).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
mypy="$VENV_DIR/dev/bin/mypy"
"$mypy" layers/shared/image_pipeline
for handler in functions/*/app.py; do
  "$mypy" "$handler" | grep -v "^Success" || true
  [ "${PIPESTATUS[0]}" = 0 ] || exit 1
done
