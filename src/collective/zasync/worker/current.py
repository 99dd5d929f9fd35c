"""The job running in this thread, for what it calls (worker/progress.py, worker/checkpoint.py).
Not for add-ons.

Set by an attempt (worker/attempt.py) around the job's function and cleared after it,
so that ``set_progress()`` and friends know their job without an argument, and raise
outside a job.
"""

from collective.zasync import interfaces
from collective.zasync.core.job import utcnow

import contextlib
import threading


current = threading.local()


class StaleClaim(Exception):
    """The job was handed to another worker meanwhile; drop it."""


@contextlib.contextmanager
def running(job, runner, token):
    """``job`` runs in this thread for the block, claimed with ``token`` by ``runner``'s worker."""
    current.job = job
    current.runner = runner
    current.token = token  # checkpoint() commits only while the claim is ours
    current.began = utcnow()
    try:
        yield
    finally:
        current.job = None


def running_job(what, function_only=False):
    """(job, runner) of the job running in this thread; RuntimeError outside a job.

    ``function_only``: also outside its function (its callbacks run as it too).
    """
    job = getattr(current, "job", None)
    runner = getattr(current, "runner", None)
    if job is None or runner is None:
        raise RuntimeError("%s is called from inside a running job only." % what)
    if function_only and job.status != interfaces.ACTIVE:
        raise RuntimeError("%s is for a job's function, not for its callbacks." % what)
    return job, runner
