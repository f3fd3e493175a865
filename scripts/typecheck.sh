#!/usr/bin/env bash
# Usage: scripts/typecheck.sh — mypy over the app code: the layer's package, then each function's handler
# (one call per function: every handler is app.py, which mypy cannot take twice in one run).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
mypy="$VENV_DIR/dev/bin/mypy"
"$mypy" layers/shared/image_pipeline
"$mypy" cli/imgpipe
for handler in functions/*/app.py; do
  out="$("$mypy" "$handler" 2>&1)" || { echo "$out"; exit 1; }
done
echo "mypy: the layer, imgpipe and $(ls functions/*/app.py | wc -l) handlers are clean"
