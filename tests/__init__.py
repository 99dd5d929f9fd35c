"""collective.zasync test suite (run with make test)."""

import os
import sys


# A hung test fails after its own time limit (tests/support/timelimit.py) and the run goes on.
# Only in the test runner: worker processes and the benchmarks' Celery workers import
# tests.sample_jobs too, and must not be stopped after a test's limit.
if os.path.basename(sys.argv[0]) == "zope-testrunner":
    from tests.support.timelimit import limit_every_test

    limit_every_test()
