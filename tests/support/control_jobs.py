"""Job functions of tests/inprocess/test_dependencies.py: priorities, rate limits, dependencies.

In-process workers run them, so they record what happened in this module's
lists: which job started, in which order, and when its worker started it.
"""

from collective.zasync.worker.current import current

import threading


lock = threading.Lock()
starts = []  # (label, job.started in microseconds since 1970), in the order the functions ran


def record(context, label):
    """Note that job ``label`` ran, and when its worker started it (the claim's time)."""
    with lock:
        starts.append((label, round(current.job.started.timestamp() * 1_000_000)))
    return label


def fail(context, label):
    raise ValueError("%s failed on purpose" % label)


def labels():
    """The labels of the jobs that ran, in order."""
    with lock:
        return [label for label, _when in starts]
