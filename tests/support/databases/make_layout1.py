"""Write a queue database as collective.zasync 1.0.0a1 left it (layout 1), for tests/test_migration.py.

Run it with the code of commit 44cc960, the last one of layout 1, in a virtualenv of its own
(this repository on PYTHONPATH: the jobs call tests.sample_jobs, which today's tests import too)::

    mkdir OLD && git archive 44cc960 | tar -x -C OLD
    python3 -m venv OLD/.venv && OLD/.venv/bin/pip install -c OLD/constraints.txt -e "OLD[test]"
    PYTHONPATH=$PWD OLD/.venv/bin/python tests/databases/make_layout1.py tests/databases/queue-layout1.fs

The site is plone.app.testing's, as the tests have it (the same path, user and user folder;
its object id differs from run to run: the test gives the jobs its own). The queue is in a
database of its own (the multi-database layout: ``<zodb_db async>``), a FileStorage: that
file, written by that release's own service, dispatcher and job threads, is the output. In it:

- finished: ``add(1)`` and ``add(2)``, run and filed by a worker;
- running: ``report_progress`` (it waits for ``sample_jobs.gate``), claimed by worker ``OLD_WORKER``,
  which then died (the process ends here without a word to the database);
- finished, not filed: ``sleep(3)``, which that worker's thread finished after its dispatcher stopped;
- pending, filed by the dispatcher: ``add(10)``, ``add(20)``; delayed: ``add(30)`` (due a minute
  after it was queued);
- in the inbox, not filed: ``add(40)``.
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


OLD_WORKER = "11111111-1111-1111-1111-111111111111"


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
    from collective.zasync.testing import ZASYNC_FIXTURE
    from collective.zasync.worker import Settings
    from plone.app.testing import FunctionalTesting
    from plone.app.testing import login
    from plone.app.testing import TEST_USER_NAME
    from tests import sample_jobs
    from ZODB import DB
    from ZODB.FileStorage import FileStorage
    from zope.component import getUtility
    from zope.component import provideUtility
    from zope.component.hooks import setSite

    layer = FunctionalTesting(bases=(ZASYNC_FIXTURE,), name="make_layout1")
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
    root = get_queue_root(portal._p_jar)
    ids = {}

    def queue(place, func, *args, delay=None):
        if delay is None:
            job = service.queueJob(func, portal, *args)
        else:
            job = service.queueJobWithDelay(None, utcnow() + delay, func, portal, *args)
        ids.setdefault(place, []).append(job.id)
        return job

    finished = [queue("finished", sample_jobs.add, n) for n in (1, 2)]
    transaction.commit()
    worker = Dispatcher(layer["zodbDB"], OLD_WORKER, Settings(
        threads=2, poll_interval=0.2, ping_interval=1.0, death_interval=30.0, max_retries=3, stop_timeout=10.0))
    worker.start()
    transaction.begin()
    queues = root.queues[""]
    record = root.workers[OLD_WORKER]
    wait(lambda: all(job.status == COMPLETED and job not in list(record.done) for job in finished), "filing")
    worker._average_run = 10.0  # long jobs: claimed for idle threads only, none ahead
    running = queue("running", sample_jobs.report_progress)
    transaction.commit()
    wait(lambda: running.status == ACTIVE, "the running job")
    done = queue("done", sample_jobs.sleep, 3)
    transaction.commit()
    wait(lambda: done.status == ACTIVE, "the job to finish unfiled")
    for n in (10, 20):
        queue("pending", sample_jobs.add, n)
    queue("delayed", sample_jobs.add, 30, delay=timedelta(minutes=1))
    transaction.commit()
    wait(lambda: len(queues.inbox) == 0 and len(queues.pending_jobs) == 3, "the dispatcher to file them")
    # The worker dies: its dispatcher first (no pass, no ping), then the process.
    worker.dispatch = worker._in_transaction = lambda *args: 0
    wait(lambda: done.status == COMPLETED and done in list(record.done), "the finished job")
    queue("inbox", sample_jobs.add, 40)
    transaction.commit()
    time.sleep(2)  # a pass or ping begun before the freeze has committed by now
    shutil.copyfile(path, output)
    print(json.dumps(ids, indent=1, sort_keys=True))
    sys.stdout.flush()
    os._exit(0)  # as a killed worker: nothing more reaches the database


if __name__ == "__main__":
    main(sys.argv[1])
