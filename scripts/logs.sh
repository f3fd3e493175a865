#!/usr/bin/env bash
# Usage: scripts/logs.sh [-f] — show (or follow) the local cloud's log.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ -f "$STATE_DIR/localstack.log" ] || die "no log yet: run 'make up' first"
if [ "${1:-}" = "-f" ]; then exec tail -f "$STATE_DIR/localstack.log"; else exec tail -n 200 "$STATE_DIR/localstack.log"; fi
