#!/usr/bin/env bash
# Debian packages the tests need: chromium for the browser test, postgresql for the
# RelStorage tests (they start private servers of their own: collective.zasync.postgres).
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "Missing Debian packages: ${missing[*]} (run as root: apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "Installing ${missing[*]} ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The package creates and may start a system cluster (port 5432) that the tests do not use:
# stop it and keep it from starting at boot. A PostgreSQL installed before is left alone.
if [[ " ${missing[*]} " == *" postgresql "* ]]; then
    for conf in /etc/postgresql/*/*/start.conf; do
        [ -e "$conf" ] || continue
        cluster=$(dirname "$conf")
        pg_ctlcluster "$(basename "$(dirname "$cluster")")" "$(basename "$cluster")" stop >/dev/null 2>&1 || true
        echo manual >"$conf"
    done
fi
