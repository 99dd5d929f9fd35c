"""Job events: IJobStarted, IJobRetrying, IJobSuccess and IJobFailure, notified by the worker.
Add-ons subscribe to the interfaces (collective.zasync.interfaces), never import this module.
"""

from collective.zasync import interfaces
from zope.component import getSiteManager
from zope.component.event import objectEventNotify
from zope.event import notify
from zope.interface import implementer
from zope.interface import providedBy
from zope.interface.interfaces import ObjectEvent

import logging
import transaction


log = logging.getLogger("collective.zasync")


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


def outcome_event(job):
    """IJobSuccess or IJobFailure for a job whose outcome is stored."""
    return JobFailure(job.result, job) if job.failed else JobSuccess(job.result, job)


def has_subscribers(event):
    """True if a handler would see ``event`` (beyond the generic object-event relay)."""
    # A savepoint costs a temporary file per job: only take one when needed.
    # zope.component's objectEventNotify is subscribed to every IObjectEvent
    # under Zope; it only relays to (object, event) subscribers, asked next.
    adapters = getSiteManager().adapters
    provided = providedBy(event)
    direct = [h for h in adapters.subscriptions([provided], None) if h is not objectEventNotify]
    return bool(direct or adapters.subscriptions([providedBy(event.object), provided], None))


def notify_guarded(event):
    """Notify ``event`` in the current transaction; a failing subscriber's writes are rolled back
    and logged: it costs the job neither its outcome nor its next attempt."""
    if not has_subscribers(event):
        return
    savepoint = transaction.savepoint()
    try:
        notify(event)
    except Exception:
        savepoint.rollback()
        log.exception("A subscriber of job %s's %s event failed.", event.job.id,
                      next(iter(providedBy(event))).__name__)
