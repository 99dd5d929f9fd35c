"""Job functions of tests/inprocess/test_races.py (module-level, so that workers find them again)."""

from collective.zasync.interfaces import IJobSuccess
from zope.component import adapter
from transaction.interfaces import TransientError

import transaction


def write_then_savepoint(context, value):
    """Write, then take a savepoint (as long jobs do to keep memory down)."""
    context.integrity_mark = value
    transaction.savepoint()
    return value


def write(context, value):
    context.integrity_mark = value
    return value


def raise_transient(context):
    """A TransientError of the job's own (not the database's)."""
    raise TransientError("the job's own transient error")


@adapter(IJobSuccess)
def mark_on_success(event):
    """An add-on's IJobSuccess subscriber that writes."""
    context = event.job._p_jar.root()["Application"].unrestrictedTraverse(event.job.context_path.lstrip("/"))
    context.integrity_notified = getattr(context, "integrity_notified", 0) + 1


class Fragile:
    """An argument whose class "changes" (``broken`` set): loading a job that holds one raises."""

    broken = False

    def __init__(self):
        self.version = 1

    def __setstate__(self, state):
        if Fragile.broken:
            raise TypeError("Fragile has changed since the job was queued")
        self.__dict__.update(state)


def takes_fragile(context, fragile):
    return "ran"


def fails_with_fragile(context, fragile):
    raise ValueError("planned failure")
