"""Job events: IJobStarted, IJobRetrying, IJobSuccess and IJobFailure."""

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


@implementer(interfaces.IJobStarted)
class JobStarted(JobEvent):
    """``object`` and ``job`` are the job about to run."""

    def __init__(self, job):
        super().__init__(job, job)


@implementer(interfaces.IJobRetrying)
class JobRetrying(JobEvent):
    """``object`` is the Failure of the attempt; ``next_try`` when the next one is due."""

    def __init__(self, failure, job, next_try):
        super().__init__(failure, job)
        self.error = failure
        self.next_try = next_try
