"""collective.zasync test suite (run with make test)."""

import faulthandler
import os
import sys


# A hung test (a deadlock, a process that never answers) should fail the run
# with every thread's traceback instead of holding CI until its time limit.
# Only in the test runner: worker processes and the benchmarks' Celery workers
# import tests.sample_jobs too, and must not be stopped after 20 minutes.
if os.path.basename(sys.argv[0]) == "zope-testrunner":
    faulthandler.dump_traceback_later(20 * 60, exit=True, file=sys.stderr)
