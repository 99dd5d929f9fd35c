#!/usr/bin/env bash
# Run the whole suite with zope-testrunner and end with a plain summary line.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
# The repository on PYTHONPATH, absolute: the worker and client processes that the
# multi-process tests start import the test suite's job functions (tests.support.sample_jobs).
# The tests are in tests/unit, tests/inprocess, tests/cluster and tests/web (tests/support:
# what they share): zope-testrunner looks for test modules in packages of those names.
PYTHONHASHSEED=0 PYTHONPATH="$PWD" .venv/bin/zope-testrunner --test-path=. -s tests \
    --tests-pattern '^(unit|inprocess|cluster|web)$' --all -j "${ZASYNC_TEST_PROCESSES:-2}" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# zope-testrunner ends with "Total: N tests, F failures, E errors and S skipped"
# (or "Ran N tests with ..." for a single layer); restate it plainly.
summary=$(grep -E "^(Total: [0-9]+ tests|  Ran [0-9]+ tests)" "$log" | tail -1)
read -r total failures errors skipped < <(echo "$summary" | grep -oE "[0-9]+ (tests|failures|errors|skipped)" | grep -oE "^[0-9]+" | tr '\n' ' ')
rm -f "$log"
if [ -n "${total:-}" ]; then
    failed=$(( ${failures:-0} + ${errors:-0} ))
    echo "$(( total - failed - ${skipped:-0} )) passed, ${failed} failed, ${skipped:-0} skipped"
fi
exit "$status"
