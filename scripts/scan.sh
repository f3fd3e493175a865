#!/usr/bin/env bash
# Usage: scripts/scan.sh — checkov policy scan of template.yaml (settings and justified skips in .checkov.yaml).
# Fails on any finding; `make test` runs the same scan (tests/unit/test_template.py).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
py="$(find_localstack_python)" || die "needs Python 3.12 or 3.13"
ensure_venv "$VENV_DIR/scan" "$py" "$ROOT/requirements/scan.txt" -- -r "$ROOT/requirements/scan.txt"
cd "$ROOT"
exec "$VENV_DIR/scan/bin/checkov" --config-file "$ROOT/.checkov.yaml" --quiet
