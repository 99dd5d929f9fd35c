"""A time limit for each test: a hung test fails alone, and the run goes on to its summary.

At its limit (``time_limit`` of its class, in seconds; DEFAULT if it has none)
a test's main thread gets TimedOut, after the traceback of every thread is
written to stderr: the test fails, its tearDown stops what it started, the next
test runs. If the main thread cannot take the exception (stuck in C code),
faulthandler ends the whole run GRACE seconds later, with every thread's
traceback; the servers the tests started end with it (collective.zasync.lifeline).
"""

import faulthandler
import signal
import sys
import unittest


DEFAULT = 10 * 60
GRACE = 2 * 60


class TimedOut(BaseException):
    """A test ran past its limit (not an Exception: ``except Exception`` in the code it runs lets it through)."""


def limit_every_test():
    """Run each test of this process under its time limit (the test runner calls this once)."""
    run = unittest.TestCase.run

    def run_limited(test, result=None):
        seconds = getattr(test, "time_limit", DEFAULT)

        def expired(signum, frame):
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
            raise TimedOut("%s ran past its time limit of %d s (tracebacks above)" % (test.id(), seconds))

        previous = signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        faulthandler.dump_traceback_later(seconds + GRACE, exit=True, file=sys.stderr)
        try:
            return run(test, result)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            faulthandler.cancel_dump_traceback_later()
            signal.signal(signal.SIGALRM, previous)

    unittest.TestCase.run = run_limited
