#!/usr/bin/env bash
# Usage: scripts/scan.sh — checkov policy scan of template.yaml and of its SAM transform (what AWS deploys).
# Settings and justified skips: .checkov.yaml. Fails on any finding; `make test` runs the same scan.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bash "$ROOT/scripts/setup.sh" >/dev/null
cd "$ROOT"
transformed="$ROOT/.aws-sam/scan/template.transformed.json"
"$VENV_DIR/dev/bin/python" "$ROOT/scripts/sam_transform.py" "$transformed"
# scripts/policy_scan.py is checkov with its JSONPath parses made once (half of a scan's CPU)
exec "$VENV_DIR/scan/bin/python" "$ROOT/scripts/policy_scan.py" --config-file "$ROOT/.checkov.yaml" -f "$ROOT/template.yaml" -f "$transformed" --quiet
