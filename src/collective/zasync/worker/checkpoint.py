"""Long jobs that commit in steps: ``api.checkpoint(state)`` and ``api.get_checkpoint()``.

A job's work is normally committed in one transaction with its result
(worker/runner.py). A job that calls ``checkpoint(state)`` commits the work done so
far together with ``state`` (kept on the job as ``job.checkpoint_state``),
and goes on in a new transaction, still claimed by its worker, with the same
site, request and user. Whenever the function is called again (its worker
died and another took the job back, a ConflictError after the checkpoint, a
retry of the failed job), ``get_checkpoint()`` returns the last state
committed, and the function resumes from there. Add-ons call these through
``collective.zasync.api``.
"""

from collective.zasync.core.calls import check_picklable
from collective.zasync.core.job import utcnow
from collective.zasync.worker.current import current
from collective.zasync.worker.current import running_job
from collective.zasync.worker.current import StaleClaim

import logging
import transaction


log = logging.getLogger("collective.zasync")


def get_checkpoint():
    """The state of the running job's last checkpoint, or None if it has none yet."""
    return running_job("get_checkpoint()", function_only=True)[0].checkpoint_state


def checkpoint(state=None):
    """Commit the running job's work so far with ``state``; go on in a new transaction.

    Raises ConflictError if the commit conflicts (the step is not committed:
    the worker calls the function again, which resumes from the previous
    checkpoint), and stops the job if its claim was taken back meanwhile.
    """
    job, runner = running_job("checkpoint()", function_only=True)
    check_picklable(state, "the checkpoint state of job %s" % job.id)
    if job.worker_uuid != runner.worker_uuid or job.claim_token != getattr(current, "token", None):
        raise StaleClaim(job._p_oid)  # taken back: another worker goes on from the last checkpoint
    job.checkpoint_state = state
    job.checkpoints += 1
    job.checkpointed = utcnow()
    transaction.commit()  # a ConflictError here goes to the runner, which runs the step again
    transaction.begin()
    log.debug("Job %s: checkpoint %d committed.", job.id, job.checkpoints)
