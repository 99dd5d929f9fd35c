"""Functions for add-on code: ``from collective.zasync import api``."""

from collective.zasync.checkpoint import checkpoint
from collective.zasync.checkpoint import get_checkpoint
from collective.zasync.progress import get_progress
from collective.zasync.progress import set_progress
from collective.zasync.service import get_service
from collective.zasync.service import makeJob


__all__ = ["checkpoint", "get_checkpoint", "get_progress", "get_service", "makeJob", "set_progress"]
