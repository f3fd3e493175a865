#!/usr/bin/env bash
# Usage: scripts/deploy_local.sh [stack-name [Param=Value ...]] — sam build + sam package, then a CloudFormation change set
# (what sam deploy does, scripts/deploy_steps.py deploy) to the local cloud
# (an update when it exists), e.g. scripts/deploy_local.sh keyed ApiKeyRequired=true ImageTableName=keyed-images.
# Prints the stack's outputs and the API base URL that works from this machine (and the API key, if any).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
STACK="${1:-${STACK_NAME:-image-pipeline}}"
shift || true
export_client_env
cd "$ROOT"

bash "$ROOT/scripts/up.sh" >/dev/null
artifacts="sam-artifacts-000000000000-${AWS_DEFAULT_REGION}"
steps=("$VENV_DIR/dev/bin/python" "$ROOT/scripts/deploy_steps.py")

# Build and package under a lock: .aws-sam/ is shared by every local cloud of this checkout (scripts/test.sh runs three),
# and a build rewrites what a concurrent package reads. The deploy itself works from the packaged template. The
# packaged template serves every stack of this local cloud (artifacts are named by their content); it is made again
# only when the build changed or the local cloud lost the artifacts (a restart).
packaged="$STATE_DIR/packaged.yaml"
# A package is also kept for the checkout: another local cloud (the test lanes') copies its artifacts in instead of
# zipping the layer again (~6 s of CPU).
kept="$ROOT/.aws-sam/package"
(
  flock 9
  build_stamp="$ROOT/.aws-sam/build.inputs"
  step="$("${steps[@]}" prepare "$ROOT" "$packaged" "$kept" "$artifacts")"
  if [ "$step" = build ]; then
    log "sam build"
    rm -f "$build_stamp"
    SAM_CLI_TELEMETRY=0 sam build --cached --parallel >"$STATE_DIR/sam-build.log" 2>&1 \
      || { tail -30 "$STATE_DIR/sam-build.log" >&2; die "sam build failed (log: .localcloud/sam-build.log)"; }
    "${steps[@]}" build-state "$ROOT" >"$build_stamp"
    step="$("${steps[@]}" prepare "$ROOT" "$packaged" "$kept" "$artifacts")"
  else
    log "sam build: no input changed since the last build"
  fi
  case "$step" in
    restored) log "sam package: this build's package is reused (kept in .aws-sam/package)" ;;
    "package "*)
      fingerprint="${step#package }"
      SAM_CLI_TELEMETRY=0 sam package --template-file "$ROOT/.aws-sam/build/template.yaml" --s3-bucket "$artifacts" --s3-prefix sam --region "$AWS_DEFAULT_REGION" \
        --output-template-file "$packaged" >"$STATE_DIR/sam-package.log" 2>&1 \
        || { tail -30 "$STATE_DIR/sam-package.log" >&2; die "sam package failed (log: .localcloud/sam-package.log)"; }
      echo "$fingerprint" >"$packaged.fingerprint"
      "${steps[@]}" keep-package "$packaged" "$fingerprint" "$kept"
      ;;
    current) ;;
    *) die "deploy_steps.py prepare said: $step" ;;
  esac
  cp "$packaged" "$STATE_DIR/packaged-$STACK.yaml"  # what this deploy reads, whatever another one packages meanwhile
) 9>"$ROOT/.aws-sam.lock"
log "deploy ($STACK): a CloudFormation change set of the packaged template"
"${steps[@]}" deploy "$STACK" "$STATE_DIR/packaged-$STACK.yaml" "$artifacts" "$STATE_DIR/stack-$STACK.json" "$ROOT/web/" "$@" \
  2>"$STATE_DIR/deploy.log" || { cat "$STATE_DIR/deploy.log" >&2; die "deploy of $STACK failed (log: .localcloud/deploy.log)"; }
