"""A queue database written by an earlier release keeps its jobs: pending, delayed, running, finished.

The databases are real ones, kept in tests/support/databases/ with the scripts that wrote them
(each run with the code of its release): the queue's own database of the multi-database
layout (``<zodb_db async>``), a FileStorage of a few tens of KB. A test copies one, mounts
it beside the test's site as the ``async`` database, and lets this release's code open it.

The site is the test's, not the one the jobs were queued on: the same path, the same user,
another object id (plone.app.testing's storage hands out random ones). Before the jobs run,
each is given the id of this site (``adopt``): the only change made to the database by hand.
"""

from collective.zasync.plone.queuedb import QueueDatabase
from collective.zasync.worker.dispatcher import Dispatcher
from collective.zasync.interfaces import COMPLETED
from collective.zasync.interfaces import IQueueDatabase
from collective.zasync.core.migration import migrate
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.queue import LAYOUT
from collective.zasync.core.priority import waiting_trees
from collective.zasync.core.keys import waiting_key
from collective.zasync.testing import wait_until
from collective.zasync.worker.settings import WorkerSettings
from pathlib import Path
from tests.support import sample_jobs
from tests.support.base import OwnWorkerTestCase
from Testing.makerequest import makerequest
from ZODB import DB
from ZODB.broken import Broken
from ZODB.DemoStorage import DemoStorage
from ZODB.FileStorage import FileStorage
from zope.component import getGlobalSiteManager
from zope.component import provideUtility
from zope.component.hooks import getSite
from zope.component.hooks import setSite

import shutil
import sys
import tempfile
import transaction


DATABASES = Path(__file__).parent.parent / "support" / "databases"
OLD_SAMPLE_JOBS = "tests.sample_jobs"  # what the stored jobs call: tests/support/sample_jobs.py now
OLD_WORKER = "11111111-1111-1111-1111-111111111111"  # make_layout1.py's, killed while it ran a job


class QueueDatabaseTestCase(OwnWorkerTestCase):
    """The test's site, opened again with the queue database ``database`` (a file in
    tests/support/databases) mounted beside it, and a worker of its own on both (``start``)."""

    database = None

    def setUp(self):
        super().setUp()
        # The stored jobs call the test suite's functions by the dotted names they had then
        # (tests.sample_jobs:add): found at their old path, as moved.py finds the package's.
        sys.modules.setdefault(OLD_SAMPLE_JOBS, sample_jobs)
        self.addCleanup(sys.modules.pop, OLD_SAMPLE_JOBS, None)
        tmp = tempfile.mkdtemp(prefix="zasync-migration-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        path = Path(tmp) / "Async.fs"
        shutil.copyfile(DATABASES / self.database, path)  # (a FileStorage writes its file)
        databases = {}
        self.db = DB(DemoStorage(base=self.layer["zodbDB"].storage), database_name="main", databases=databases)
        DB(FileStorage(str(path)), database_name="async", databases=databases)
        provideUtility(QueueDatabase("async"), IQueueDatabase)
        self.conn = self.db.open()
        self.layer_site = getSite()
        self.portal = makerequest(self.conn.root()["Application"]).plone
        setSite(self.portal)
        self.own = None

    def tearDown(self):
        if self.own is not None:
            self.own.stop()
        transaction.abort()
        setSite(self.layer_site)
        self.conn.close()
        for db in list(self.db.databases.values()):
            db.close()
        getGlobalSiteManager().unregisterUtility(provided=IQueueDatabase)
        super().tearDown()  # (the layer's worker starts again, on the layer's database)

    def start(self):
        """A worker of this release on the site's and the queue's databases."""
        # (a retention of a century: the stored jobs that finished then are kept whenever it runs)
        # (a short death interval: the stored worker that died is declared dead soon)
        self.own = Dispatcher(self.db, "00000000-0000-0000-0000-0000migrated", WorkerSettings(
            threads=2, poll_interval=0.2, ping_interval=0.5, death_interval=2.0, max_retries=3,
            stop_timeout=10.0, retention_days=36500))
        self.own.start()

    def root(self):
        return get_queue_root(self.portal._p_jar)

    def assert_every_object_loads(self):
        """Each object stored in the queue database loads with a class of this release."""
        conn = self.portal._p_jar.get_connection("async")
        oids = {record.oid for txn in conn.db().storage.iterator() for record in txn}
        broken = {}
        for oid in oids:
            obj = conn.get(oid)
            obj._p_activate()
            found = list(broken_in(obj.__getstate__()))
            if isinstance(obj, Broken) or found:
                broken[oid] = (type(obj), found)
        self.assertEqual(broken, {})
        return len(oids)

    def state(self, obj):
        """The stored attributes of ``obj`` (those the classes of this release no longer have)."""
        obj._p_activate()
        return obj.__dict__

    def adopt(self, jobs):
        """The jobs run on this test's site (see the module's docstring)."""
        for job in jobs:
            job.context_oid = self.portal._p_oid

    def call(self, job):
        """(function name, args) of ``job``: what tells the stored jobs apart."""
        return job.func_name.split(":")[1], job.args

    def wait_all_filed(self, count):
        queue = self.root().queues[""]
        wait_until(lambda: queue.completed_count() == count and len(queue) == 0,
                   "%d jobs to be filed as completed" % count, seconds=60)
        return {self.call(job): job.result for job in queue.completed.values()}


def broken_in(state, depth=4):
    """The objects of classes that no longer load (ZODB's Broken) in ``state``, a few levels down."""
    if isinstance(state, Broken):
        yield state
    elif depth and isinstance(state, dict):
        for value in state.values():
            yield from broken_in(value, depth - 1)
    elif depth and isinstance(state, (list, tuple)):
        for value in state:
            yield from broken_in(value, depth - 1)
    elif depth and hasattr(state, "__dict__") and not hasattr(state, "_p_oid"):
        yield from broken_in(vars(state), depth - 1)


class TestLayout1(QueueDatabaseTestCase):
    """1.0.0a1's queue database (tests/support/databases/make_layout1.py, commit 44cc960)."""

    database = "queue-layout1.fs"
    pending = {("add", (10,)), ("add", (20,)), ("add", (30,)), ("add", (40,)), ("report_progress", ())}
    results = {("add", (1,)): 1, ("add", (2,)): 2, ("sleep", (3,)): 3,  # finished before
               ("add", (10,)): 10, ("add", (20,)): 20, ("add", (30,)): 30, ("add", (40,)): 40,
               ("report_progress", ()): "done"}

    def test_it_loads_as_that_release_left_it(self):
        self.assertGreater(self.assert_every_object_loads(), 20)
        root = self.root()
        self.assertEqual(root.layout, 1)
        queue = root.queues[""]
        state = self.state(queue)
        self.assertEqual({self.call(job) for job in state["inbox"]}, {("add", (40,))})
        self.assertEqual({self.call(job) for job in state["pending_jobs"].values()},
                         {("add", (10,)), ("add", (20,)), ("add", (30,))})
        self.assertEqual({self.call(job): job.result for job in queue.completed.values()},
                         {("add", (1,)): 1, ("add", (2,)): 2})
        record = self.state(root.workers[OLD_WORKER])
        self.assertEqual([self.call(job) for job in record["active"]], [("report_progress", ())])
        self.assertEqual([(self.call(job), job.result) for job in record["done"]], [(("sleep", (3,)), 3)])

    def test_a_worker_of_this_release_migrates_it_and_runs_every_job(self):
        root = self.root()
        self.assertTrue(migrate(root))  # what the worker does when it starts (tested below)
        self.assertEqual(root.layout, LAYOUT)
        self.assertNotIn(OLD_WORKER, root.workers)
        queue = root.queues[""]
        for name in ("inbox", "pending_jobs", "pending_count", "done"):
            self.assertNotIn(name, self.state(queue))
        pending = list(queue.pending())
        self.assertEqual({self.call(job) for job in pending}, self.pending)
        self.adopt(pending)
        transaction.commit()
        sample_jobs.gate.set()  # report_progress ends at once
        self.start()
        self.assertEqual(self.wait_all_filed(8), self.results)
        self.assertEqual({job.status for job in queue.jobs.values()}, {COMPLETED})

    def test_a_worker_that_starts_on_it_migrates_it(self):
        queue = self.state(self.root().queues[""])
        self.adopt([*queue["pending_jobs"].values(), *queue["inbox"], *self.state(self.root().workers[OLD_WORKER])["active"]])
        transaction.commit()
        sample_jobs.gate.set()
        self.start()
        self.assertEqual(self.wait_all_filed(8), self.results)
        self.assertEqual(self.root().layout, LAYOUT)

    def test_the_first_queued_job_migrates_it_when_no_worker_has_yet(self):
        new = self.service.queueJob(sample_jobs.add, self.portal, 50)
        transaction.commit()
        root = self.root()
        self.assertEqual(root.layout, LAYOUT)
        self.assertFalse(migrate(root), "nothing left to do")
        self.assertEqual({self.call(job) for job in root.queues[""].pending()}, self.pending | {("add", (50,))})

    def test_upgrade_step(self):
        setup = self.portal.portal_setup
        setup.setLastVersionForProfile("collective.zasync:default", "1000")
        upgrades = setup.listUpgrades("collective.zasync:default")
        titles = [step["title"] for step in upgrades]
        self.assertEqual(titles[0], "collective.zasync 1.0: settings and queue layout")
        self.assertIn("collective.zasync: My jobs and the jobs of a content item", titles)
        self.assertIn("collective.zasync 1.0: the health check setting", titles)
        self.assertEqual(titles[-1], "collective.zasync: each site's jobs, items by database and oid")
        setup.upgradeProfile("collective.zasync:default")
        self.assertEqual(self.root().layout, LAYOUT)
        self.assertEqual({self.call(job) for job in self.root().queues[""].pending()}, self.pending)
        self.assertEqual(setup.getLastVersionForProfile("collective.zasync:default"),
                         (setup.getVersionForProfile("collective.zasync:default"),))


class TestDatabaseOf68e181d(QueueDatabaseTestCase):
    """The code of commit 68e181d's queue database (tests/support/databases/make_68e181d.py), written
    before a restructure moved every persistent class: the class paths it names keep loading."""

    database = "queue-68e181d.fs"
    old_worker = "22222222-2222-2222-2222-222222222222"  # killed while it ran report_progress

    def test_every_object_loads_and_every_job_runs(self):
        self.assertGreater(self.assert_every_object_loads(), 40)
        root = self.root()
        self.assertEqual(root.layout, 3)  # (4: a job given back waits under a new key)
        self.assertIsNone(root.queues[""].waiting_added)  # (5: jobs added to waiting wake hungry workers)
        self.assertTrue(migrate(root))
        self.assertEqual(root.layout, LAYOUT)
        self.assertEqual(root.queues[""].waiting_added(), 0)
        for _priority, tree in waiting_trees(root.queues[""]):
            for key, job in tree.items():
                self.assertEqual(key, waiting_key(job))
        queue = root.queues[""]
        jobs = {self.call(job): job for job in queue.jobs.values() if job.func_name}
        [batch] = [job for job in queue.jobs.values() if job.batch_kind == "serial"]
        recurrence = jobs[("add", (40,))].recurrence
        self.assertEqual((recurrence.schedule, recurrence.runs), (60.0, 0))
        self.assertEqual(list(root.blocked.values()), [jobs[("add", (5,))]])  # waits for add(6)
        self.assertEqual([self.call(job) for job in root.workers[self.old_worker].claimed.values()],
                         [("report_progress", ())])
        self.assertEqual({call: job.result for call, job in jobs.items() if job.status == COMPLETED},
                         {("add", (1,)): 1, ("add", (2,)): 2, ("fail", ("boom",)): jobs[("fail", ("boom",))].result})
        self.assertEqual(str(jobs[("fail", ("boom",))].result), "ValueError: boom")
        self.assertEqual([callback.result for callback in jobs[("add", (2,))].callbacks], ["called back with 2"])
        self.adopt(queue.jobs.values())
        transaction.commit()
        sample_jobs.gate.set()  # report_progress ends at once
        self.start()

        def next_run():
            return recurrence.current if recurrence.current is not jobs[("add", (40,))] else None

        wait_until(lambda: next_run() is not None and all(
            job.status == COMPLETED for job in queue.jobs.values() if job is not next_run()),
            "every job but the next recurring run to complete", seconds=60)
        self.service.cancelRecurringJob(recurrence)
        transaction.commit()
        self.assertEqual({call: job.result for call, job in jobs.items() if not job.failed}, {
            ("add", (1,)): 1, ("add", (2,)): 2, ("report_progress", ()): "done", ("add", (10,)): 10,
            ("add", (30,)): 30, ("add", (40,)): 40, ("add", (3,)): 3, ("add", (4,)): 4, ("add", (6,)): 6,
            ("add", (5,)): 5})
        self.assertEqual(jobs[("report_progress", ())].attempts, 2)  # taken back from the dead worker
        self.assertNotIn(self.old_worker, root.workers)
        self.assertEqual([callback.result for callback in jobs[("add", (10,))].callbacks], ["called back with 10"])
        self.assertEqual([job.result for job in batch.subjobs], [3, 4])
        self.assertEqual(batch.status, COMPLETED)
        self.assertGreaterEqual(jobs[("add", (5,))].started, jobs[("add", (6,))].ended)
        self.assertEqual(recurrence.runs, 1)
        self.assertEqual(len(root.blocked), 0)
