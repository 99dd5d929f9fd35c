"""Job functions of the content-life, through-the-web and checkpoint tests.

Worker processes import them by their dotted names (``tests.support.content_jobs:...``).
"""

from BTrees.IOBTree import IOBTree
from collective.zasync import api

import time


def prepare_import(site):
    """Create the tree the import jobs fill (once, not by racing jobs)."""
    site._zasync_test_imported = IOBTree()


ran = []  # (function, context path) of each call, in the in-process worker


def paths(context, *objects):
    """Where the context and the objects passed by reference are now."""
    ran.append(("paths", "/".join(context.getPhysicalPath())))
    return ["/".join(obj.getPhysicalPath()) for obj in (context, *objects)]


def mark(context, text="marked"):
    """Record the call and set the context's description (a ZODB effect)."""
    ran.append(("mark", "/".join(context.getPhysicalPath())))
    context.setDescription(text)
    return text


def import_items(site, count, every, hold_at=None):
    """Import ``count`` items into the site's ``_zasync_test_imported`` (item -> times
    imported), with a checkpoint every ``every`` items.

    The first attempt (no checkpoint yet) stops at item ``hold_at``, after the
    checkpoint before it, and waits there to be killed: the items since that
    checkpoint are imported in its transaction, never committed.
    """
    imported = site._zasync_test_imported
    start = api.get_checkpoint() or 0
    for n in range(start, count):
        if hold_at is not None and start == 0 and n == hold_at:
            while True:  # the test kills this process
                time.sleep(1)
        imported[n] = imported.get(n, 0) + 1
        if (n + 1) % every == 0:
            api.checkpoint(n + 1)
    return {"imported": len(imported), "resumed_from": start}


class StepFailed(Exception):
    """Not a ConflictError: the job fails."""


def import_then_fail(site, count, every, fail_at):
    """Import items with checkpoints; raise StepFailed at item ``fail_at`` on the first attempt."""
    imported = site._zasync_test_imported
    start = api.get_checkpoint() or 0
    for n in range(start, count):
        if n == fail_at and start < fail_at - fail_at % every:
            raise StepFailed("item %d cannot be imported" % n)
        imported[n] = imported.get(n, 0) + 1
        if (n + 1) % every == 0:
            api.checkpoint(n + 1)
    return {"imported": len(imported), "resumed_from": start}


def import_then_conflict(site, count, every, conflict_at):
    """Import items with checkpoints; raise ConflictError at ``conflict_at`` on the first attempt."""
    from ZODB.POSException import ConflictError

    imported = site._zasync_test_imported
    start = api.get_checkpoint() or 0
    for n in range(start, count):
        if n == conflict_at and start < conflict_at - conflict_at % every:
            raise ConflictError("a conflict after a checkpoint")
        imported[n] = imported.get(n, 0) + 1
        if (n + 1) % every == 0:
            api.checkpoint(n + 1)
    return {"imported": len(imported), "resumed_from": start}


def manage_only(context):
    """A job function registered with the permission Manage portal (test_through_the_web)."""
    return "managed"
