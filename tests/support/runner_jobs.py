"""Job functions of the retry policy, cancel and @task tests (same process only)."""

from collective.zasync import task
from collective.zasync.api import check_cancelled
from collective.zasync.api import set_progress
from collective.zasync.worker.current import current
from tests.support.sample_jobs import mark
from urllib.error import URLError

import threading
import time


class RemoteDown(Exception):
    """A remote service did not answer (a module-level class: retry_on can name it)."""


def flaky(context, entry, failures):
    """Mark ``entry`` with the attempt number, then fail with URLError ``failures`` times."""
    attempt = current.job.attempts
    mark(context, "%s-%d" % (entry, attempt))
    if attempt <= failures:
        raise URLError("attempt %d: the remote service is down" % attempt)
    return "ok on attempt %d" % attempt


def fail_with(context, kind):
    """Raise RemoteDown or ValueError, after marking the site."""
    mark(context, "fail_with")
    raise {"RemoteDown": RemoteDown, "ValueError": ValueError}[kind]("failing on purpose")


def queue_flaky(context, prefix, count, failures="2"):
    """Queue ``count`` flaky jobs with a retry policy (from a job: test_zeo's client queues it)."""
    from collective.zasync.api import get_service

    service = get_service()
    return [
        service.queueJob(flaky, context, "%s%d" % (prefix, n), int(failures),
                         retry_on=URLError, max_attempts=int(failures) + 1, retry_backoff=0.05).id
        for n in range(int(count))
    ]


# Set by the looping jobs once they run; the test then cancels them.
started = threading.Event()


def loop_until_cancelled(context, entry, explicit=False):
    """Mark ``entry``, then report progress (or check_cancelled()) until cancelled.

    Gives up after 20 s, so that a broken cancel fails the test instead of
    hanging it; the test never waits for that.
    """
    mark(context, entry)
    started.set()
    for step in range(400):
        if explicit:
            check_cancelled()
        else:
            set_progress(min(step, 100), {"step": step})
        time.sleep(0.05)
    return "never cancelled"


@task
def add_title(context, suffix):
    """Append ``suffix`` to the title of ``context``; return the new title."""
    context.setTitle((context.Title() or "") + suffix)
    return context.Title()


@task(queue="reports", retry_on=(URLError, RemoteDown), max_attempts=2, retry_backoff=0.01,
      unique=True)
def report(context, year):
    """Fail once with URLError, then return the report: a task with options."""
    attempt = current.job.attempts
    if attempt < 2:
        raise URLError("first attempt fails")
    return "report %s, attempt %d" % (year, attempt)


def key_by_year(context, year):
    return "year-%s" % year


@task(unique=key_by_year, delay=3600)
def later(context, year):
    """A task queued an hour ahead, one per year."""
    return year
