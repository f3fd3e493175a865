#!/usr/bin/env bash
# Usage: scripts/scan.sh — checkov policy scan of template.yaml (a report; it does not fail the build).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
py="$(find_localstack_python)" || die "needs Python 3.12 or 3.13"
ensure_venv "$VENV_DIR/scan" "$py" "$ROOT/requirements/scan.txt" -- -r "$ROOT/requirements/scan.txt"
"$VENV_DIR/scan/bin/checkov" -f "$ROOT/template.yaml" --framework cloudformation --compact --quiet --skip-download || true
