#!/usr/bin/env bash
# Usage: scripts/deploy_local.sh [stack-name [Param=Value ...]] — sam build + sam deploy to the local cloud
# (an update when it exists), e.g. scripts/deploy_local.sh keyed ApiKeyRequired=true ImageTableName=keyed-images.
# Prints the stack's outputs and the API base URL that works from this machine (and the API key, if any).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
STACK="${1:-${STACK_NAME:-image-pipeline}}"
shift || true
overrides=()
[ $# -gt 0 ] && overrides=(--parameter-overrides "$@")
export_client_env
cd "$ROOT"

bash "$ROOT/scripts/up.sh" >/dev/null
artifacts="sam-artifacts-000000000000-${AWS_DEFAULT_REGION}"
steps=("$VENV_DIR/dev/bin/python" "$ROOT/scripts/deploy_steps.py")
# sam deploy waits 5 s before its first look at a change set or a stack and between looks (SAM_CLI_POLL_DELAY);
# the local cloud answers in well under a second.
export SAM_CLI_POLL_DELAY="${SAM_CLI_POLL_DELAY:-0.5}"

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
  if [ -f "$build_stamp" ] && [ "$("${steps[@]}" build-state "$ROOT")" = "$(cat "$build_stamp")" ]; then
    log "sam build: no input changed since the last build"
  else
    log "sam build"
    rm -f "$build_stamp"
    SAM_CLI_TELEMETRY=0 sam build --cached --parallel >"$STATE_DIR/sam-build.log" 2>&1 \
      || { tail -30 "$STATE_DIR/sam-build.log" >&2; die "sam build failed (log: .localcloud/sam-build.log)"; }
    "${steps[@]}" build-state "$ROOT" >"$build_stamp"
  fi
  fingerprint="$(cut -d' ' -f2 "$build_stamp")"
  if ! "${steps[@]}" packaged-current "$packaged" "$fingerprint" "$artifacts"; then
    rm -f "$packaged.fingerprint"
    if "${steps[@]}" restore-package "$kept" "$packaged" "$fingerprint" "$artifacts"; then
      log "sam package: this build's package is reused (kept in .aws-sam/package)"
    else
      SAM_CLI_TELEMETRY=0 sam package --template-file "$ROOT/.aws-sam/build/template.yaml" --s3-bucket "$artifacts" --s3-prefix sam --region "$AWS_DEFAULT_REGION" \
        --output-template-file "$packaged" >"$STATE_DIR/sam-package.log" 2>&1 \
        || { tail -30 "$STATE_DIR/sam-package.log" >&2; die "sam package failed (log: .localcloud/sam-package.log)"; }
      echo "$fingerprint" >"$packaged.fingerprint"
      "${steps[@]}" keep-package "$packaged" "$fingerprint" "$kept"
    fi
  fi
  cp "$packaged" "$STATE_DIR/packaged-$STACK.yaml"  # what this deploy reads, whatever another one packages meanwhile
) 9>"$ROOT/.aws-sam.lock"
log "sam deploy ($STACK)"
SAM_CLI_TELEMETRY=0 sam deploy --template-file "$STATE_DIR/packaged-$STACK.yaml" --stack-name "$STACK" --s3-bucket "$artifacts" --s3-prefix "$STACK" \
  --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-confirm-changeset --no-fail-on-empty-changeset \
  --region "$AWS_DEFAULT_REGION" "${overrides[@]}" >"$STATE_DIR/sam-deploy.log" 2>&1 \
  || { tail -40 "$STATE_DIR/sam-deploy.log" >&2
       if grep -q "CreateStage operation: Stage already exists" "$STATE_DIR/sam-deploy.log"; then
         die "LocalStack cannot update a stack whose API definition changed (it creates the new stage before deleting the old one). Start fresh: make down && make deploy"
       fi
       die "sam deploy failed (log: .localcloud/sam-deploy.log)"; }

"${steps[@]}" finish "$STACK" "$STATE_DIR/stack-$STACK.json" "$ROOT/web/"
