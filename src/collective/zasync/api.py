"""Functions for add-on code: ``from collective.zasync import api``."""

from collective.zasync.progress import get_progress
from collective.zasync.progress import set_progress
from collective.zasync.service import get_service
from collective.zasync.service import makeJob


__all__ = ["get_progress", "get_service", "makeJob", "set_progress"]
