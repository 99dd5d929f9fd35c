"""Example jobs, shipped so that ``make run`` shows something real. Add-ons may import them
to try things.

Each is an ordinary module-level function: queue it with
``getUtility(IAsyncService).queueJob(publish_later, document)``.
"""

from collective.zasync import task
from collective.zasync.api import checkpoint
from collective.zasync.api import get_checkpoint
from collective.zasync.api import set_progress
from plone import api
from urllib.error import URLError

import time


def publish_later(context):
    """Publish ``context`` through the workflow, as the user who asked."""
    if api.content.get_state(context) != "published":
        api.content.transition(obj=context, transition="publish")
    return "%s is now %s" % (context.getId(), api.content.get_state(context))


def publish_all(context, *items):
    """Publish the content ``items`` (passed by reference), as the user who asked."""
    for item in items:
        if api.content.get_state(item) != "published":
            api.content.transition(obj=item, transition="publish")
    return [item.getId() for item in items]


def count_content(context, seconds=5):
    """Walk the catalog slowly, reporting progress, and return a small report."""
    brains = api.content.find(context=context)
    steps = 10
    for step in range(steps):
        set_progress(step * 100 // steps, {"step": step + 1, "of": steps})
        time.sleep(seconds / steps)
    by_type = {}
    for brain in brains:
        by_type[brain.portal_type] = by_type.get(brain.portal_type, 0) + 1
    return by_type


def fail_once(context):
    """Fail on the first attempt and succeed when retried (to show a retry in the control panel)."""
    if get_checkpoint() is None:
        checkpoint("failed once")
        raise ValueError("The first attempt fails on purpose: retry it from the control panel.")
    return "succeeded when retried"


def tag_all(context, subject, every=100):
    """Add ``subject`` to every item under ``context``, committing every ``every`` items.

    The checkpoint's state is the path of the last item done: a job taken back
    from a dead worker goes on after it instead of starting over.
    """
    from collective.zasync.api import checkpoint
    from collective.zasync.api import get_checkpoint

    last = get_checkpoint()
    done = 0
    top = "/".join(context.getPhysicalPath())
    for brain in api.content.find(context=context, sort_on="path"):
        path = brain.getPath()
        if path == top or (last is not None and path <= last):
            continue  # the context itself, or done before the last checkpoint
        obj = brain.getObject()
        if subject not in obj.subject:
            obj.subject = tuple(obj.subject) + (subject,)
            obj.reindexObject(idxs=["Subject"])
        done += 1
        if done % every == 0:
            checkpoint(path)
    return done
@task(retry_on=(URLError, TimeoutError), max_attempts=5, retry_backoff=30, unique=True)
def summarize(context):
    """Count the content below ``context`` by type (a task: ``summarize.enqueue(context)``).

    A job that called a remote service would fail with URLError or
    TimeoutError when it is down: each such attempt is aborted and the job
    tries again later, 5 attempts at most.
    """
    by_type = {}
    for brain in api.content.find(context=context):
        by_type[brain.portal_type] = by_type.get(brain.portal_type, 0) + 1
    return by_type
