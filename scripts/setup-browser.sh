#!/usr/bin/env bash
# Install what the admin page's browser tests (tests/web) need:
#   - Debian's `chromium` package (system-wide; `apt-get update` only if installing needs it),
#   - Playwright for Python in the virtual environment VENV (the one that runs pytest).
# Idempotent and quick once done. Never runs `playwright install`: the tests drive the system
# Chromium (/usr/bin/chromium), so no browser is downloaded.
#
# Usage: scripts/setup-browser.sh VENV        e.g. scripts/setup-browser.sh .ci-work/venv
set -euo pipefail
venv=${1:?usage: scripts/setup-browser.sh VENV}
python="$venv/bin/python"
if [ ! -x "$python" ]; then
    echo "setup-browser: no virtual environment at $venv" >&2
    exit 2
fi

apt_install() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "setup-browser: need root or sudo for apt-get" >&2; exit 2; }
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Try with the package lists we have; refresh them only if that fails.
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "$@" \
        || { "${sudo[@]}" apt-get update -q && "${sudo[@]}" apt-get install -y -q --no-install-recommends "$@"; }
}

if [ ! -x /usr/bin/chromium ]; then
    echo "== installing Debian's chromium"
    apt_install chromium fonts-dejavu-core
fi

if ! "$python" -c "import playwright.sync_api" 2>/dev/null; then
    echo "== installing Playwright for Python into $venv"
    "$python" -m pip install -q --disable-pip-version-check playwright
fi
echo "== browser tests: $(/usr/bin/chromium --version 2>/dev/null), playwright $("$python" -c \
    'from importlib.metadata import version; print(version("playwright"))')"
