#!/usr/bin/env bash
# Create the environments of the official Taskcluster clients used by
# tests/test_official_clients.py:
#
#   DIR/tc19   venv with the Python client taskcluster==19.0.0 (v19-era routes)
#   DIR/tc113  venv with the Python client taskcluster==113.2.0 (current routes)
#   DIR/npm    npm project with the JavaScript client taskcluster-client@87.1.3
#
# Usage: scripts/setup-client-envs.sh [DIR]
#   DIR defaults to .ci-work/clients under the repository root; a relative DIR
#   given as argument is taken relative to the current directory.
#
# Idempotent: each environment gets a marker file `.ready` holding the exact
# specification it was built from; an environment whose marker matches is left
# alone (a warm run takes well under a second), anything else is rebuilt from
# scratch. Needs python3.11 (override with $PYTHON): taskcluster 19.0.0's urllib3
# 1.25 no longer imports on 3.12 (its bundled six), node >= 20 and npm.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-$REPO/.ci-work/clients}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"

# taskcluster 19.0.0 (October 2019) declares only lower bounds. These pins are
# the versions a fresh install resolved to when it was released, for the
# libraries that shape the requests on the wire (HTTP, Hawk, URLs); all of them
# install and import on Python 3.11. Its aiohttp dependency (used only by
# taskcluster.aio, which the tests do not import) is pinned to a release that
# has wheels for current Pythons. The one incompatibility of 19.0.0 with
# Python >= 3.9 (base64.encodestring) is patched by the harness script
# tests/clients/tc_scenario.py, not here: the client stays unmodified.
TC19_PINS=(
  taskcluster==19.0.0
  requests==2.22.0
  urllib3==1.25.6
  chardet==3.0.4
  idna==2.8
  certifi==2019.9.11
  mohawk==1.0.0
  six==1.12.0
  slugid==2.0.0
  taskcluster-urls==12.1.0
  aiohttp==3.14.5
  aiohappyeyeballs==2.7.1
  aiosignal==1.4.0
  async-timeout==5.0.1
  attrs==26.1.0
  frozenlist==1.8.0
  multidict==7.2.1
  propcache==0.5.4
  typing_extensions==4.16.0
  yarl==1.25.1
)
TC113_PINS=(
  taskcluster==113.2.0
  requests==2.34.2
  urllib3==2.8.0
  charset-normalizer==3.5.3
  idna==3.20
  certifi==2026.10.19.post1
  mohawk==1.1.0
  six==1.17.0
  slugid==2.0.0
  taskcluster-urls==13.1.0
  python-dateutil==4.0.0
  tzdata==2026.6
  aiohttp==3.14.5
  aiohappyeyeballs==2.7.1
  aiosignal==1.4.0
  async-timeout==5.0.1
  attrs==26.1.0
  frozenlist==1.8.0
  multidict==7.2.1
  propcache==0.5.4
  typing_extensions==4.16.0
  yarl==1.25.1
)
NPM_PACKAGE="taskcluster-client@87.1.3"

log() { printf 'setup-client-envs: %s\n' "$*" >&2; }

for tool in "$PYTHON" node npm; do
  command -v "$tool" > /dev/null || { log "error: $tool not found"; exit 1; }
done

# The import check each venv must pass before it is marked ready. The alias is
# the same one tc_scenario.py applies (needed by 19.0.0 only; harmless in 113).
PY_CHECK='import base64
base64.encodestring = getattr(base64, "encodestring", base64.encodebytes)
import taskcluster, sys
print(taskcluster.PurgeCache.funcinfo["purgeCache"]["args"], file=sys.stderr)'

ready() {  # ready ENV_DIR SPEC: true when ENV_DIR was completely built from SPEC
  [[ -f "$1/.ready" ]] && [[ "$(cat "$1/.ready")" == "$2" ]]
}

make_venv() {  # make_venv NAME PIN...
  local name="$1"; shift
  local env="$DIR/$name"
  local spec
  spec="python=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') $*"
  if ready "$env" "$spec"; then
    log "$name: up to date"
    return
  fi
  log "$name: building"
  rm -rf "$env"
  "$PYTHON" -m venv "$env"
  # Every pin is also a constraint, so no dependency can drift to another version.
  printf '%s\n' "$@" > "$env/constraints.txt"
  "$env/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --constraint "$env/constraints.txt" "$@" 2> >(grep -v "^WARNING: Location '" >&2)
  "$env/bin/python" -c "$PY_CHECK"
  printf '%s' "$spec" > "$env/.ready"
  log "$name: ready"
}

make_npm() {
  local env="$DIR/npm"
  local spec
  spec="node=$(node --version) $NPM_PACKAGE"
  if ready "$env" "$spec"; then
    log "npm: up to date"
    return
  fi
  log "npm: building"
  rm -rf "$env"
  mkdir -p "$env"
  cat > "$env/package.json" <<'JSON'
{
  "name": "purgecache-official-client-tests",
  "private": true,
  "description": "Environment of the official JavaScript client for tests/test_official_clients.py"
}
JSON
  # taskcluster-client 87 declares engines.node 22.17.1 but runs on node 20 (npm
  # only warns, EBADENGINE); the tests prove it works there.
  (cd "$env" && npm install --no-audit --no-fund --save-exact --loglevel=error "$NPM_PACKAGE") >&2
  node --input-type=module -e "
    const tc = (await import('$env/node_modules/taskcluster-client/src/index.js')).default;
    if (typeof tc.PurgeCache !== 'function') { throw new Error('no PurgeCache client'); }"
  printf '%s' "$spec" > "$env/.ready"
  log "npm: ready"
}

# One setup at a time per DIR (CI and a developer, or parallel test runs).
exec 9> "$DIR/.lock"
if command -v flock > /dev/null; then
  flock 9
fi

make_venv tc19 "${TC19_PINS[@]}"
make_venv tc113 "${TC113_PINS[@]}"
make_npm
log "all client environments ready in $DIR"
