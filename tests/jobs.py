"""Job functions of the in-process tests (a worker thread of the test process imports them)."""

import threading
import time


# Names of the jobs that ran, in the order they ran (same process only).
ran = []
ran_lock = threading.Lock()


def record(context, name, seconds=0.0):
    """Sleep ``seconds``, then note ``name`` in ``ran``."""
    time.sleep(seconds)
    with ran_lock:
        ran.append(name)
    return name


# -- plone.app.async's documentation: its callbacks, as written there (its job functions
# are those of the porting guide, tests/porting_jobs.py) --

results = []


def job_success_callback(result):
    results.append("Success: %s" % result)


def job_failure_callback(result):
    results.append(result)
