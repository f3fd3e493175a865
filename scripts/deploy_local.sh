#!/usr/bin/env bash
# Usage: scripts/deploy_local.sh [stack-name] — sam build + sam deploy to the local cloud (an update when it exists).
# Prints the stack's outputs and the API base URL that works from this machine.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
STACK="${1:-${STACK_NAME:-image-pipeline}}"
export_client_env
cd "$ROOT"

bash "$ROOT/scripts/up.sh" >/dev/null
artifacts="sam-artifacts-000000000000-${AWS_DEFAULT_REGION}"
aws s3api head-bucket --bucket "$artifacts" >/dev/null 2>&1 || aws s3api create-bucket --bucket "$artifacts" >/dev/null

log "sam build"
SAM_CLI_TELEMETRY=0 sam build --cached --parallel >"$STATE_DIR/sam-build.log" 2>&1 \
  || { tail -30 "$STATE_DIR/sam-build.log" >&2; die "sam build failed (log: .localcloud/sam-build.log)"; }
log "sam deploy ($STACK)"
SAM_CLI_TELEMETRY=0 sam deploy --stack-name "$STACK" --s3-bucket "$artifacts" --s3-prefix "$STACK" \
  --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-confirm-changeset --no-fail-on-empty-changeset \
  --region "$AWS_DEFAULT_REGION" >"$STATE_DIR/sam-deploy.log" 2>&1 \
  || { tail -40 "$STATE_DIR/sam-deploy.log" >&2
       if grep -q "CreateStage operation: Stage already exists" "$STATE_DIR/sam-deploy.log"; then
         die "LocalStack cannot update a stack whose API definition changed (it creates the new stage before deleting the old one). Start fresh: make down && make deploy"
       fi
       die "sam deploy failed (log: .localcloud/sam-deploy.log)"; }

outputs="$(aws cloudformation describe-stacks --stack-name "$STACK" --query 'Stacks[0].Outputs' --output json)"
python3 - "$outputs" "$ENDPOINT" "$STATE_DIR/stack-$STACK.json" <<'PY'
import json, sys
outputs = {o["OutputKey"]: o["OutputValue"] for o in json.loads(sys.argv[1])}
outputs["LocalApiUrl"] = f"{sys.argv[2]}/restapis/{outputs['RestApiId']}/prod/_user_request_"
json.dump(outputs, open(sys.argv[3], "w"), indent=2)
for key in ("LocalApiUrl", "ApiUrl", "OriginalBucketName", "ProcessedBucketName", "ImageTableName", "ImagePipelineStateMachineArn", "ReconcilerFunctionName"):
    print(f"{key:30} {outputs[key]}")
PY
