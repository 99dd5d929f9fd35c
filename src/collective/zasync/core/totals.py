"""Running totals of finished and retried jobs per queue, for the metrics.

The completed and failed BTrees lose jobs (retention, "remove", a retry), so
their lengths go down; a Prometheus counter must not. What leaves them is
counted here when it leaves: the dispatcher's filing of finished jobs writes
nothing more than before. Not for add-ons (the metrics show them).
"""

from BTrees.Length import Length
from collective.zasync.core.trees import made
from persistent import Persistent


class Totals(Persistent):
    """Jobs that left a queue's completed / failed BTrees, and retries asked for."""

    def __init__(self):
        self.completed_left = Length()
        self.failed_left = Length()
        self.retried = Length()


def queue_totals(queue, create=False):
    """The Totals of ``queue`` (None before anything was counted, unless ``create``)."""
    return made(queue, "totals", Totals) if create else queue.totals


def count_left(queue, failed, count=1):
    """``count`` finished jobs left the failed (or completed) BTree of ``queue``."""
    if count:
        totals = queue_totals(queue, create=True)
        (totals.failed_left if failed else totals.completed_left).change(count)


def count_retry(queue):
    """An administrator queued a failed job of ``queue`` again."""
    queue_totals(queue, create=True).retried.change(1)


def left_and_retried(queue):
    """{"completed": left, "failed": left, "retried": retries}, zeros if none counted."""
    totals = queue_totals(queue)
    if totals is None:
        return {"completed": 0, "failed": 0, "retried": 0}
    return {"completed": totals.completed_left(), "failed": totals.failed_left(),
            "retried": totals.retried()}
