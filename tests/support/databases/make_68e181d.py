"""Write a queue database as the code of commit 68e181d leaves it, for tests/test_migration.py.

A later restructure moves every persistent class to another module; this database, written
before it, shows that the stored class paths keep loading. Run it with the code of that commit,
in a virtualenv of its own (this repository on PYTHONPATH: the jobs call tests.sample_jobs)::

    mkdir OLD && git archive 68e181d | tar -x -C OLD
    python3 -m venv OLD/.venv && OLD/.venv/bin/pip install -c OLD/constraints.txt -e "OLD[test]"
    PYTHONPATH=$PWD OLD/.venv/bin/python tests/databases/make_68e181d.py tests/databases/queue-68e181d.fs

As make_layout1.py: plone.app.testing's site, the queue in a database of its own (a FileStorage,
the output), written by that code's own service, dispatcher and job threads. In it, in the
default queue:

- finished: ``add(1)``; ``add(2)`` with a callback (``record_callback``), both run; ``fail("boom")``;
- running: ``report_progress`` (it waits for ``sample_jobs.gate``), claimed by worker
  ``OLD_WORKER``, which then died (the process ends here without a word to the database);
- filed by the dispatcher, waiting: ``add(10)`` with a callback; delayed: ``add(30)`` (due a
  minute after it was queued); a recurring ``add(40)`` every minute (its first run due then);
  a serial batch of ``add(3)`` and ``add(4)``; ``add(6)``, and ``add(5)`` that depends on it.
Prints the ids, by place, as JSON.
"""

from datetime import timedelta

import json
import os
import shutil
import sys
import tempfile
import time
import transaction


OLD_WORKER = "22222222-2222-2222-2222-222222222222"


def set_up(layer, done):
    """Set up ``layer`` after its bases, as zope.testrunner does."""
    for base in layer.__bases__:
        set_up(base, done)
    if layer not in done:
        layer.setUp()
        done.append(layer)
    return done


def wait(condition, what, seconds=60):
    deadline = time.monotonic() + seconds
    while True:
        transaction.begin()
        if condition():
            return
        if time.monotonic() > deadline:
            raise RuntimeError("Timed out waiting for %s" % what)
        time.sleep(0.05)


def main(output):
    from collective.zasync.config import QueueDatabase
    from collective.zasync.dispatcher import Dispatcher
    from collective.zasync.interfaces import ACTIVE
    from collective.zasync.interfaces import COMPLETED
    from collective.zasync.interfaces import IAsyncService
    from collective.zasync.interfaces import IQueueDatabase
    from collective.zasync.job import utcnow
    from collective.zasync.queue import get_queue_root
    from collective.zasync.service import makeJob
    from collective.zasync.settings import copy_to_queue_database
    from collective.zasync.testing import ZASYNC_FIXTURE
    from collective.zasync.workersettings import WorkerSettings
    from plone.app.testing import FunctionalTesting
    from plone.app.testing import login
    from plone.app.testing import TEST_USER_NAME
    from tests import sample_jobs
    from ZODB import DB
    from ZODB.FileStorage import FileStorage
    from zope.component import getUtility
    from zope.component import provideUtility
    from zope.component.hooks import setSite

    layer = FunctionalTesting(bases=(ZASYNC_FIXTURE,), name="make_68e181d")
    for each in set_up(layer, []):
        each.testSetUp()
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "Async.fs")
    DB(FileStorage(path), database_name="async", databases=layer["zodbDB"].databases)
    provideUtility(QueueDatabase("async"), IQueueDatabase)
    portal = layer["portal"]
    setSite(portal)
    login(portal, TEST_USER_NAME)
    service = getUtility(IAsyncService)
    root = get_queue_root(portal._p_jar)  # made in the queue's database, with the site's settings
    copy_to_queue_database(portal)
    transaction.commit()
    ids = {}

    def note(place, job):
        ids.setdefault(place, []).append(job.id)
        return job

    finished = [note("finished", service.queueJob(sample_jobs.add, portal, 1)),
                note("finished", service.queueJob(sample_jobs.add, portal, 2)),
                note("finished", service.queueJob(sample_jobs.fail, portal, "boom"))]
    finished[1].addCallback(sample_jobs.record_callback)
    transaction.commit()
    worker = Dispatcher(layer["zodbDB"], OLD_WORKER, WorkerSettings(
        threads=1, poll_interval=0.2, ping_interval=1.0, death_interval=30.0, max_retries=3, stop_timeout=10.0))
    worker.start()
    queue = root.queues[""]
    wait(lambda: all(job.status == COMPLETED for job in finished) and queue.completed_count() == 2
         and queue.failed_count() == 1, "the finished jobs to be filed")
    worker._average_run = 10.0  # long jobs: claimed for its idle thread only, none ahead
    running = note("running", service.queueJob(sample_jobs.report_progress, portal))
    transaction.commit()
    wait(lambda: running.status == ACTIVE, "the running job")
    note("waiting", service.queueJob(sample_jobs.add, portal, 10)).addCallback(sample_jobs.record_callback)
    note("delayed", service.queueJobWithDelay(None, utcnow() + timedelta(minutes=1), sample_jobs.add, portal, 30))
    note("recurring", service.queueRecurringJob(sample_jobs.add, portal, 60, 40))
    note("batch", service.queueSerialJobs(makeJob(sample_jobs.add, portal, 3), makeJob(sample_jobs.add, portal, 4)))
    first = note("dependency", service.queueJob(sample_jobs.add, portal, 6))
    note("dependent", service.queueJob(sample_jobs.add, portal, 5, depends_on=[first]))
    transaction.commit()
    wait(lambda: all(not list(inbox.unread()) for inbox in queue.inboxes.values()), "the dispatcher to file them")
    # The worker dies: its dispatcher first (no pass, no ping), then the process.
    worker.dispatch = worker._in_transaction = lambda *args: 0
    time.sleep(2)  # a pass or ping begun before the freeze has committed by now
    shutil.copyfile(path, output)
    print(json.dumps(ids, indent=1, sort_keys=True))
    sys.stdout.flush()
    os._exit(0)  # as a killed worker: nothing more reaches the database


if __name__ == "__main__":
    main(sys.argv[1])
