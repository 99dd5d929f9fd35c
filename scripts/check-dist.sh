#!/usr/bin/env bash
# Check what PyPI would get: build the sdist and the wheel from a copy of the checkout, check
# them with twine and by their contents, install the wheel (not the source tree) into a fresh
# virtualenv and run a job there as a Member (scripts/dist_smoke.py); then follow
# docs/deploy.md's pip-only path with it, to a Member's job over HTTP (scripts/dist_deploy.py).
# Usage: scripts/check-dist.sh   (after `make install`; `make check-dist` does both)
# Everything happens in a temporary directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
py=$root/.venv/bin/python
uv=$root/.venv/bin/uv
start=$SECONDS
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "dist check: FAILED: $*" >&2
    exit 1
}

# Run a step quietly; show its output only when it fails.
quiet() {
    local what=$1
    shift
    "$@" >"$tmp/step.log" 2>&1 || { cat "$tmp/step.log" >&2; fail "$what (output above)"; }
}

git rev-parse --is-inside-work-tree >/dev/null 2>&1 || fail "not a git checkout"

# The files a fresh clone would have (tracked or new, not ignored): the build writes nothing
# into the source tree, and a stale src/*.egg-info/SOURCES.txt cannot add files to the sdist.
mkdir "$tmp/src"
git ls-files -z --cached --others --exclude-standard \
    | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$tmp/src" -xf -

# python -m build makes the sdist, then the wheel from the unpacked sdist, as a release does;
# its isolated build environment gets setuptools and wheel at the pins of constraints.txt.
quiet "python -m build" env UV_CONSTRAINT="$root/constraints.txt" \
    "$py" -m build --installer uv --outdir "$tmp/dist" "$tmp/src"
sdist=$(echo "$tmp"/dist/*.tar.gz)
wheel=$(echo "$tmp"/dist/*.whl)
quiet "twine check" "$py" -m twine check --strict "$sdist" "$wheel"
"$py" scripts/dist_contents.py "$tmp/src" "$sdist" "$wheel" || fail "contents of the distributions"

# A fresh virtualenv with the wheel and its test extra, nothing from the source tree.
quiet "creating a virtualenv" "${PYTHON:-python3}" -m venv --without-pip "$tmp/venv"
quiet "installing the wheel" "$uv" pip install -p "$tmp/venv/bin/python" -c constraints.txt \
    "collective.zasync[test] @ file://$wheel"
quiet "zasync-cluster --help" "$tmp/venv/bin/zasync-cluster" --help
quiet "zasync-worker --help" "$tmp/venv/bin/zasync-worker" --help
# -I: neither the script's folder nor PYTHONPATH on sys.path; run from outside the source tree.
# Plone's set-up logs warnings: show them only on failure, else the smoke test's last line.
(cd "$tmp" && quiet "smoke test of the installed wheel" \
    "$tmp/venv/bin/python" -I "$root/scripts/dist_smoke.py" "$root")
tail -n 1 "$tmp/step.log"

# zasync-cluster from a wheel has no .venv-zeo beside it: it says what to install, no traceback.
if out=$(cd "$tmp" && env -u ZASYNC_ZEO_RUNZEO -u ZASYNC_STOCK_ZEO \
        "$tmp/venv/bin/zasync-cluster" start --root "$tmp/cluster" 2>&1); then
    fail "zasync-cluster started a cluster without a stock ZEO server"
fi
if ! grep -q "ZASYNC_ZEO_RUNZEO" <<<"$out" || grep -q "Traceback" <<<"$out"; then
    fail "zasync-cluster without a stock ZEO server said: $out"
fi

# docs/deploy.md's pip-only path, followed as written, with this wheel (scripts/dist_deploy.py).
quiet "the production path of docs/deploy.md" \
    "$tmp/venv/bin/python" -I "$root/scripts/dist_deploy.py" "$root" "$tmp/venv" "$uv" "$tmp/deploy"
tail -n 1 "$tmp/step.log"

files=$("$py" -c "import sys, zipfile; print(len(zipfile.ZipFile(sys.argv[1]).namelist()))" \
    "$wheel")
echo "wheel $(basename "$wheel"): $(du -k "$wheel" | cut -f1) KB, $files files;" \
    "sdist $(du -k "$sdist" | cut -f1) KB; $((SECONDS - start)) s"
echo "dist check: OK"
