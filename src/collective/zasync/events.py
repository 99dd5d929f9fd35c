"""IJobSuccess and IJobFailure: object events whose object is the result."""

from collective.zasync import interfaces
from zope.interface import implementer
from zope.interface.interfaces import ObjectEvent


class JobEvent(ObjectEvent):
    def __init__(self, obj, job):
        super().__init__(obj)
        self.job = job


@implementer(interfaces.IJobSuccess)
class JobSuccess(JobEvent):
    """``object`` is the job's return value."""


@implementer(interfaces.IJobFailure)
class JobFailure(JobEvent):
    """``object`` is the Failure."""
