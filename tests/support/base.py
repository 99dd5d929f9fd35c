"""The base of the in-process job tests: a site, a worker in the layer, a Manager logged in."""

from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.records import WorkerRecord
from collective.zasync.interfaces import IAsyncService
from collective.zasync.testing import wait_until
from collective.zasync.testing import ZASYNC_FUNCTIONAL_TESTING
from collective.zasync.worker import filing
from collective.zasync.worker.dispatcher import Dispatcher
from collective.zasync.worker.settings import WorkerSettings
from plone.app.testing import login
from plone.app.testing import setRoles
from plone.app.testing import TEST_USER_ID
from plone.app.testing import TEST_USER_NAME
from tests.support import control_jobs
from tests.support import sample_jobs
from zope.component import getUtility

import transaction
import unittest


class WorkerTestCase(unittest.TestCase):
    layer = ZASYNC_FUNCTIONAL_TESTING

    def setUp(self):
        sample_jobs.reset()  # counters and lists of the job functions, kept by this process
        # The layer's worker's conflict gate forgets the kinds of jobs it runs one at a time
        # (gate.py): a conflict in one test must not serialize the jobs of the next.
        self.layer["zasync_dispatcher"].gate.forget()
        self.portal = self.layer["portal"]
        self.service = getUtility(IAsyncService)
        setRoles(self.portal, TEST_USER_ID, ["Manager"])
        login(self.portal, TEST_USER_NAME)


class MemberFolderTestCase(WorkerTestCase):
    """The test user is a Member who owns ``self.folder`` (as plone.app.async's tests had it)."""

    def setUp(self):
        super().setUp()  # (a Manager, to set up)
        self.portal.invokeFactory("Folder", "folder")
        self.folder = self.portal["folder"]
        self.folder.manage_setLocalRoles(TEST_USER_ID, ["Owner"])
        setRoles(self.portal, TEST_USER_ID, ["Member"])
        login(self.portal, TEST_USER_NAME)
        transaction.commit()


class OwnWorkerTestCase(WorkerTestCase):
    """The layer's worker is stopped; a test starts its own with the settings it needs."""

    def setUp(self):
        self.layer["zasync_dispatcher"].stop()
        transaction.begin()  # see that it unregistered
        super().setUp()
        self.worker = None

    def tearDown(self):
        transaction.abort()
        if self.worker is None or self.worker.stopping.is_set():
            self.start_worker()
        self.layer["zasync_dispatcher"] = self.worker  # the layer stops it

    def start_worker(self, average_run=None, **settings):
        defaults = dict(threads=1, poll_interval=0.2, ping_interval=1.0, death_interval=30.0,
                        max_retries=3, stop_timeout=10.0)
        settings = WorkerSettings(**dict(defaults, **settings))
        self.worker = Dispatcher(self.layer["zodbDB"], self.layer.worker_uuid, settings)
        self.worker.holdings.average_run = average_run  # short jobs: several are claimed per thread
        self.worker.start()
        return self.worker


class TwoWorkersPlayedTestCase(OwnWorkerTestCase):
    """No worker runs: the test plays the dispatchers of two workers, "a" (the finisher:
    first by uuid) and "b", 2 threads each, with connections of its own where they act at once."""

    def setUp(self):
        super().setUp()
        root = get_queue_root(self.portal._p_jar)
        for uuid in ("a", "b"):
            root.workers[uuid] = WorkerRecord(uuid, threads=2)

    def tearDown(self):
        transaction.abort()
        root = get_queue_root(self.portal._p_jar)
        for uuid in ("a", "b"):
            filing.take_back(root, root.workers[uuid])
            del root.workers[uuid]
        transaction.commit()
        super().tearDown()

    def connection(self):
        """(transaction manager, queue root) of a connection of its own."""
        tm = transaction.TransactionManager()
        conn = self.layer["zodbDB"].open(transaction_manager=tm)
        self.addCleanup(conn.close)
        self.addCleanup(tm.abort)
        return tm, get_queue_root(conn)


class Queueing:
    """Queue control_jobs functions in a test."""

    def record(self, label, queue="", quota_names=(), begin_after=None, **kwargs):
        return self.service.queueJobInQueueWithDelay(
            None, begin_after, queue, quota_names, control_jobs.record, self.portal, label, **kwargs)

    def fail(self, label, **kwargs):
        return self.service.queueJob(control_jobs.fail, self.portal, label, **kwargs)

    def wait_for_all(self, jobs, seconds=30):
        transaction.commit()
        wait_until(lambda: all(job.status == "completed-status" for job in jobs),
                   "%d jobs to complete" % len(jobs), seconds)
