"""Functions for add-on code: ``from collective.zasync import api``."""

from collective.zasync.cancelling import JobCancelled
from collective.zasync.checkpoint import checkpoint
from collective.zasync.checkpoint import get_checkpoint
from collective.zasync.progress import check_cancelled
from collective.zasync.progress import get_progress
from collective.zasync.progress import set_progress
from collective.zasync.service import get_job
from collective.zasync.service import get_service
from collective.zasync.service import makeJob


__all__ = [
    "JobCancelled", "check_cancelled", "checkpoint", "get_checkpoint", "get_job", "get_progress",
    "get_service", "makeJob", "set_progress",
]
