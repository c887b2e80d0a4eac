#!/usr/bin/env bash
# Install the Debian programs the deployment tests (tests/deployment) run: systemd-analyze and
# systemd-sysusers (package systemd), nginx, PgBouncer, openssl (the throwaway TLS certificate)
# and iproute2 (network namespaces). Installs only what is missing (`apt-get update` only if
# installing needs it); quick once done. Needs root or sudo. Never starts a service: the tests
# start their own nginx, PgBouncer and PostgreSQL instances on free ports.
#
# Usage: scripts/setup-deploy.sh
set -euo pipefail

needed=()
command -v systemd-analyze >/dev/null || needed+=(systemd)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || needed+=(nginx-light)
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || needed+=(pgbouncer)
command -v openssl >/dev/null || needed+=(openssl)
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || needed+=(iproute2)

if [ ${#needed[@]} -ne 0 ]; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "setup-deploy: need root or sudo for apt-get" >&2; exit 2; }
        sudo=(sudo)
    fi
    echo "== installing ${needed[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Debian's policy-rc.d answering 101 keeps the packages' scripts from starting nginx or
    # PgBouncer (no systemd here: they would start from /etc/init.d); an existing one is kept.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
        "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d
        trap '"${sudo[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${needed[@]}" \
        || { "${sudo[@]}" apt-get update -q \
             && "${sudo[@]}" apt-get install -y -q --no-install-recommends "${needed[@]}"; }
fi
echo "== deployment tests: $(systemd-analyze --version | head -n 1), $(/usr/sbin/nginx -v 2>&1)," \
    "$(/usr/sbin/pgbouncer --version | head -n 1)"
