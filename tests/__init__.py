"""collective.zasync test suite (run with make test)."""

import faulthandler
import sys


# A hung test (a deadlock, a process that never answers) should fail the run
# with every thread's traceback instead of holding CI until its time limit.
faulthandler.dump_traceback_later(20 * 60, exit=True, file=sys.stderr)
