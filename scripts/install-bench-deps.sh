#!/usr/bin/env bash
# Install what `make bench` needs on top of the project's own dependencies:
#   - redis-server (Debian package) for the Celery+Redis reference;
#   - celery, redis (the client), matplotlib, py-spy into the project's venv.
# Versions come from constraints.txt when it pins them, else from the pins below.
# Usage: scripts/install-bench-deps.sh [PYTHON]   (default: .venv/bin/python)
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${1:-${PYTHON:-.venv/bin/python}}"

if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server
    # The benchmark starts its own redis-server; the Debian service is not needed.
    if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
fi

# name==version used when constraints.txt does not pin the package.
DEFAULT_PINS="celery==5.7.0 kombu==5.7.0 redis==8.1.0 matplotlib==3.11.2 py-spy==0.4.3"
REQUIREMENTS=()
CONSTRAINTS=()
if [ -f constraints.txt ]; then CONSTRAINTS=(-c constraints.txt); fi
for pin in $DEFAULT_PINS; do
    name="${pin%%==*}"
    if [ -f constraints.txt ] && grep -qiE "^${name}[[:space:]]*==" constraints.txt; then
        REQUIREMENTS+=("$name")
    else
        REQUIREMENTS+=("$pin")
    fi
done
REQUIREMENTS[0]="${REQUIREMENTS[0]/celery/celery[redis]}"

if command -v uv >/dev/null 2>&1; then
    uv pip install -p "$PYTHON" "${CONSTRAINTS[@]}" "${REQUIREMENTS[@]}"
else
    "$PYTHON" -m pip install "${CONSTRAINTS[@]}" "${REQUIREMENTS[@]}"
fi
