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
aws s3api head-bucket --bucket "$artifacts" >/dev/null 2>&1 || aws s3api create-bucket --bucket "$artifacts" >/dev/null

# Build and package under a lock: .aws-sam/ is shared by every local cloud of this checkout (scripts/test.sh runs two),
# and a build rewrites what a concurrent package reads. The deploy itself works from the packaged template.
packaged="$STATE_DIR/packaged-$STACK.yaml"
(
  flock 9
  log "sam build"
  SAM_CLI_TELEMETRY=0 sam build --cached --parallel >"$STATE_DIR/sam-build.log" 2>&1 \
    || { tail -30 "$STATE_DIR/sam-build.log" >&2; die "sam build failed (log: .localcloud/sam-build.log)"; }
  SAM_CLI_TELEMETRY=0 sam package --template-file "$ROOT/.aws-sam/build/template.yaml" --s3-bucket "$artifacts" --s3-prefix "$STACK" --region "$AWS_DEFAULT_REGION" \
    --output-template-file "$packaged" >"$STATE_DIR/sam-package.log" 2>&1 \
    || { tail -30 "$STATE_DIR/sam-package.log" >&2; die "sam package failed (log: .localcloud/sam-package.log)"; }
) 9>"$ROOT/.aws-sam.lock"
log "sam deploy ($STACK)"
SAM_CLI_TELEMETRY=0 sam deploy --template-file "$packaged" --stack-name "$STACK" --s3-bucket "$artifacts" --s3-prefix "$STACK" \
  --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-confirm-changeset --no-fail-on-empty-changeset \
  --region "$AWS_DEFAULT_REGION" "${overrides[@]}" >"$STATE_DIR/sam-deploy.log" 2>&1 \
  || { tail -40 "$STATE_DIR/sam-deploy.log" >&2
       if grep -q "CreateStage operation: Stage already exists" "$STATE_DIR/sam-deploy.log"; then
         die "LocalStack cannot update a stack whose API definition changed (it creates the new stage before deleting the old one). Start fresh: make down && make deploy"
       fi
       die "sam deploy failed (log: .localcloud/sam-deploy.log)"; }

web_bucket="$(aws cloudformation describe-stacks --stack-name "$STACK" --query "Stacks[0].Outputs[?OutputKey=='WebBucketName'].OutputValue" --output text)"
aws s3 sync --delete --only-show-errors "$ROOT/web/" "s3://$web_bucket/"   # the web page's files (WebUrl)
outputs="$(aws cloudformation describe-stacks --stack-name "$STACK" --query 'Stacks[0].Outputs' --output json)"
key_id="$(python3 -c 'import json,sys; print(next((o["OutputValue"] for o in json.loads(sys.argv[1]) if o["OutputKey"] == "ApiKeyId"), ""))' "$outputs")"
api_key=""
[ -n "$key_id" ] && api_key="$(aws apigateway get-api-key --api-key "$key_id" --include-value --query value --output text)"
python3 - "$outputs" "$ENDPOINT" "$STATE_DIR/stack-$STACK.json" "$api_key" <<'PY'
import json, sys
outputs = {o["OutputKey"]: o["OutputValue"] for o in json.loads(sys.argv[1])}
outputs["LocalApiUrl"] = f"{sys.argv[2]}/restapis/{outputs['RestApiId']}/prod/_user_request_"
outputs["LocalWebUrl"] = outputs["LocalApiUrl"] + "/web/index.html"
if sys.argv[4]:
    outputs["ApiKey"] = sys.argv[4]  # send it as header x-api-key
json.dump(outputs, open(sys.argv[3], "w"), indent=2)
for key in ("LocalApiUrl", "LocalWebUrl", "ApiUrl", "OriginalBucketName", "ProcessedBucketName", "ImageTableName", "ImagePipelineStateMachineArn", "ReconcilerFunctionName", "ApiKey"):
    if key in outputs:
        print(f"{key:30} {outputs[key]}")
PY
