"""Functions for add-on code: ``from collective.zasync import api``.

What a request or a script calls (the service, a job by its id, its progress), and
what a running job calls (progress, cancel checks, checkpoints). The contract they
serve is collective.zasync.interfaces.
"""

from collective.zasync.client.lookup import get_job
from collective.zasync.client.lookup import get_progress
from collective.zasync.client.lookup import get_service
from collective.zasync.client.service import makeJob
from collective.zasync.core.cancelling import JobCancelled
from collective.zasync.core.failure import Failure
from collective.zasync.worker.checkpoint import checkpoint
from collective.zasync.worker.checkpoint import get_checkpoint
from collective.zasync.worker.progress import check_cancelled
from collective.zasync.worker.progress import set_progress


__all__ = [
    # in a request or a script
    "get_service", "makeJob", "get_job", "get_progress", "Failure",
    # in a running job
    "set_progress", "check_cancelled", "JobCancelled", "checkpoint", "get_checkpoint",
]
