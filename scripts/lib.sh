# Shared by scripts/*.sh: paths, interpreter discovery, venv creation. Source it; do not run it.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_DIR="$ROOT/.venv"
STATE_DIR="${LOCALCLOUD_STATE_DIR:-$ROOT/.localcloud}"
LOCALCLOUD_PORT="${LOCALCLOUD_PORT:-4566}"
ENDPOINT="http://localhost:${LOCALCLOUD_PORT}"
# Services the project uses. Leaving out CloudWatch (metrics) saves ~4 ms per Lambda invoke: LocalStack
# publishes a metric through a full internal API call on every invoke. Add it here if you need it.
LOCALCLOUD_SERVICES="${LOCALCLOUD_SERVICES:-s3,lambda,stepfunctions,events,scheduler,apigateway,cloudformation,iam,sts,logs,dynamodb,sqs,sns,ssm,kms,cognito-idp}"
# Lambda runtimes the local executor provides (python3.11 for the local-cloud tests, python3.13 for the stack).
LAMBDA_RUNTIMES="${LAMBDA_RUNTIMES:-3.11 3.13}"

die() { echo "error: $*" >&2; exit 1; }
log() { echo "==> $*" >&2; }

# find_python 3.13 -> path of a CPython 3.13 interpreter (PATH first, then pyenv), or nothing.
find_python() {
  local want="$1" cand
  for cand in "python$want" "$(command -v pyenv >/dev/null 2>&1 && pyenv root)/versions/$want"*/bin/"python$want" \
              /usr/local/bin/"python$want" /usr/bin/"python$want"; do
    [ -n "$cand" ] || continue
    if [ -x "$cand" ] || command -v "$cand" >/dev/null 2>&1; then
      if "$cand" -c "import sys; sys.exit(0 if sys.version.startswith('$want.') else 1)" 2>/dev/null; then
        "$cand" -c 'import os, sys; print(os.path.realpath(sys.executable))'
        return 0
      fi
    fi
  done
  return 1
}

# find_python_min 3.12 -> the first of 3.13, 3.12 that exists
find_localstack_python() {
  find_python 3.13 || find_python 3.12
}

pip_quiet() { grep -v -e "is ignored: it is neither" -e "^$" || true; }

# ensure_venv DIR PYTHON STAMP_INPUTS... -- PIP_ARGS...
# (Re)creates DIR with PYTHON and pip-installs PIP_ARGS when the inputs' hash changed.
ensure_venv() {
  local dir="$1" python="$2"; shift 2
  local inputs=() args=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do inputs+=("$1"); shift; done
  shift
  args=("$@")
  local stamp
  stamp="$( { "$python" -V; printf '%s\n' "${args[@]}"; cat "${inputs[@]}" 2>/dev/null; } | sha256sum | cut -c1-16)"
  if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$stamp" ] && [ -x "$dir/bin/python" ]; then
    return 0
  fi
  log "building $(basename "$dir") environment ($("$python" -V))"
  rm -rf "$dir"
  "$python" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --upgrade "pip==25.3" 2>&1 | pip_quiet
  "$dir/bin/python" -m pip install -q "${args[@]}" 2>&1 | pip_quiet
  [ "${PIPESTATUS[0]}" = 0 ] || die "pip install failed for $dir"
  echo "$stamp" > "$dir/.stamp"
}

# Environment of the local cloud's clients (tests, awslocal, sam).
export_client_env() {
  export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
  export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" AWS_REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
  export AWS_ENDPOINT_URL="$ENDPOINT" LOCALSTACK_HOST="localhost:${LOCALCLOUD_PORT}"
  export PATH="$VENV_DIR/dev/bin:$VENV_DIR/pybin:$PATH"
}
