#!/usr/bin/env bash
# Usage: scripts/typecheck.sh — mypy over the app code: the layer's package, the CLI and every function's handler, in
# one run (explicit_package_bases in pyproject.toml names each handler by its folder: functions.api.app, ...).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
"$VENV_DIR/dev/bin/mypy" layers/shared/image_pipeline cli/imgpipe functions/*/app.py
echo "mypy: the layer, imgpipe and $(ls functions/*/app.py | wc -l) handlers are clean"
