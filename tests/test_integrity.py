"""The defects the integrity review and the simulation found, each shown by the test that
failed before its fix (tests/test_simulation.py runs the simulation itself).

The races are played with the package's own functions on one database and a
connection per process, committing in the order that lost a job; the others
run real jobs in the functional layer's worker.
"""

from collective.zasync import actions
from collective.zasync import claiming
from collective.zasync import filing
from collective.zasync.dispatcher import Dispatcher
from collective.zasync.dispatcher import WorkerIdentityInUse
from collective.zasync.failure import Failure
from collective.zasync.interfaces import ACTIVE
from collective.zasync.interfaces import COMPLETED
from collective.zasync.interfaces import IJobSuccess
from collective.zasync.job import Job
from collective.zasync.job import utcnow
from collective.zasync.metrics import oldest_due
from collective.zasync.queue import get_queue_root
from collective.zasync.queue import requeue
from collective.zasync.queue import waiting_key
from collective.zasync.queue import waits
from collective.zasync.records import WorkerRecord
from collective.zasync.setaside import set_aside_jobs
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from collective.zasync.transactional import transactional
from collective.zasync.workersettings import WorkerSettings
from datetime import timedelta
from plone import api
from plone.app.testing import login
from plone.app.testing import SITE_OWNER_NAME
from tests import integrity_jobs
from tests import sample_jobs
from tests.base import OwnWorkerTestCase
from tests.base import WorkerTestCase
from ZODB.DB import DB
from ZODB.FileStorage import FileStorage
from ZODB.POSException import ConflictError
from zope.component import getGlobalSiteManager

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import transaction
import unittest


class PlainDatabase(unittest.TestCase):
    """One queue database, no site: what the dispatchers' transactions do, played by hand."""

    queued = 5  # jobs waiting when a test begins

    def setUp(self):
        # A FileStorage, as a ZEO server has: conflicts on BTrees are resolved as there.
        home = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, home)
        self.db = DB(FileStorage(os.path.join(home, "Data.fs")))
        self.addCleanup(self.db.close)
        tm, root = self.connection()
        tm.commit()  # (the queues are stored: requests can queue)
        root.queues[""].concurrency = None  # (in parallel: claims need no limit mark)
        for uuid in ("a", "b"):  # a is the finisher (first by uuid)
            root.workers[uuid] = WorkerRecord(uuid, threads=2)
        # Five: the entries share a bucket that no commit below empties (that would conflict).
        self.jobs = [root.queues[""].put(Job("tests.sample_jobs:noop")) for _ in range(self.queued)]
        filing.file_inboxes(root.queues[""])
        tm.commit()
        self.late = utcnow() + timedelta(seconds=claiming.STEAL_AFTER + 5)  # b may take a's share

    def connection(self):
        tm = transaction.TransactionManager()
        conn = self.db.open(transaction_manager=tm)
        self.addCleanup(conn.close)
        self.addCleanup(tm.abort)
        tm.begin()
        return tm, get_queue_root(conn)

    def where(self, job_id):
        """(waiting keys that wait, claims) of job ``job_id``, as committed."""
        _tm, root = self.connection()
        queue = root.queues[""]
        entries = [key for key, job in queue.waiting.items() if job.id == job_id and waits(key, job)]
        claims = [uuid for uuid, record in root.workers.items() if job_id in record.claimed]
        return entries, claims


class TestRaces(PlainDatabase):

    def test_a_job_given_back_while_the_finisher_drops_its_old_entry_still_waits(self):
        # b (not the finisher) claims the job: its waiting entry stays, for the finisher to delete.
        tm_b, root_b = self.connection()
        [job] = claiming.claim(root_b, root_b.workers["b"], 1, self.late)
        tm_b.commit()
        # At once: the finisher's pass deletes that entry, and b gives the job back.
        tm_finisher, root_f = self.connection()
        tm_giver, root_g = self.connection()
        filing.drop_taken(root_f.queues[""])
        requeue(root_g, root_g.queues[""].jobs[job.id])
        tm_finisher.commit()
        try:
            tm_giver.commit()  # (once: they wrote different objects, so both committed)
        except ConflictError:  # (now both write the tree: this may conflict, then b tries again)
            tm_giver.abort()
            requeue(root_g, root_g.queues[""].jobs[job.id])
            tm_giver.commit()
        entries, claims = self.where(job.id)
        self.assertEqual(claims, [])
        # Once lost (pending, in no tree): now it waits under a key of its own.
        self.assertEqual(len(entries), 1)
        _tm, root = self.connection()
        self.assertEqual(entries[0], waiting_key(root.queues[""].jobs[job.id]))

    def test_a_claim_while_its_worker_is_declared_dead_conflicts(self):
        for first in ("reaper", "claimer"):
            with self.subTest(committed_first=first):
                self.setUp()
                tm_r, root_r = self.connection()
                tm_c, root_c = self.connection()
                filing.take_back(root_r, root_r.workers["b"])  # b looks dead: it claims nothing here
                del root_r.workers["b"]
                claiming.claim(root_c, root_c.workers["b"], 1, self.late)  # ... but its dispatcher claims
                one, other = (tm_r, tm_c) if first == "reaper" else (tm_c, tm_r)
                one.commit()
                with self.assertRaises(ConflictError):  # once: both committed, the job in no place
                    other.commit()

    def test_a_worker_taken_back_files_its_whole_done_log(self):
        tm, root = self.connection()
        record = root.workers["b"]
        queue = root.queues[""]
        claimed = claiming.claim(root, record, 3, self.late)
        self.assertEqual(len(claimed), 3)
        for job in claimed:
            job.finish("done")
            job.complete()
        filing.file_completed(root, record)  # all three in b's done log, not filed yet
        # The first one seen running on b still: a pass stops reading the log there (its view
        # of the job would be older than the log's: filing.file_done_log) ...
        first = claimed[0]
        first.status, first.worker_uuid = ACTIVE, "b"
        record.claimed[first.id] = first
        self.assertTrue(filing.file_done_log(root, record))  # (something left for the next pass)
        # ... but b is declared dead: its record goes, so all of its log is filed now.
        filing.take_back(root, record)
        del root.workers["b"]
        tm.commit()
        _tm, root = self.connection()
        queue = root.queues[""]
        filed = {job.id for job in queue.completed.values()}
        for job in claimed[1:]:  # (once: the log was read up to the job seen running, then dropped)
            self.assertIn(job.id, filed)
        self.assertTrue(any(waits(key, job) for key, job in queue.waiting.items() if job.id == first.id))


class TestIdentity(PlainDatabase):

    queued = 0  # (no site here to run them in)

    def start(self, uuid="w"):
        dispatcher = Dispatcher(self.db, uuid, WorkerSettings(threads=1, poll_interval=0.2, stop_timeout=1.0))
        dispatcher.start()
        self.addCleanup(dispatcher.stop)
        return dispatcher

    def record(self, uuid="w", **changes):
        tm, root = self.connection()
        for name, value in changes.items():
            setattr(root.workers[uuid], name, value)
        tm.commit()

    def test_a_second_process_with_the_identity_of_a_live_one_refuses_to_start(self):
        first = self.start()
        self.record(pid=os.getppid())  # as if it ran in another process of this host, alive
        with self.assertRaisesRegex(WorkerIdentityInUse, r"Worker w is running already: on %s, pid %d"
                                    % (socket.gethostname(), os.getppid())):
            Dispatcher(self.db, "w").start()
        self.record(host="elsewhere")  # ... or on another host
        with self.assertRaisesRegex(WorkerIdentityInUse, "on elsewhere"):
            Dispatcher(self.db, "w").start()
        first.stop()

    def test_a_restarted_worker_takes_its_identity_back(self):
        first = self.start()
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout.strip()
        self.record(pid=int(gone))  # its process is gone (killed, the machine restarted)
        second = self.start()
        wait_until(lambda: first.stopping.is_set(), "the first one to find out and stop")
        _tm, root = self.connection()
        self.assertEqual(root.workers["w"].incarnation, second.incarnation)
        first.stop()  # the record is the second one's: not unregistered
        _tm, root = self.connection()
        self.assertEqual(root.workers["w"].incarnation, second.incarnation)


class TestJobsKeepTheirWrites(WorkerTestCase):

    def test_writes_before_a_savepoint_are_kept(self):
        job = self.service.queueJob(integrity_jobs.write_then_savepoint, self.portal, "after a savepoint")
        self.assertEqual(wait_for_result(job), "after a savepoint")
        self.assertEqual(self.portal.integrity_mark, "after a savepoint")

    def test_writes_are_kept_with_an_ijobsuccess_subscriber(self):
        getGlobalSiteManager().registerHandler(integrity_jobs.mark_on_success)
        self.addCleanup(getGlobalSiteManager().unregisterHandler, integrity_jobs.mark_on_success, (IJobSuccess,))
        job = self.service.queueJob(integrity_jobs.write, self.portal, "with a subscriber")
        self.assertEqual(wait_for_result(job), "with a subscriber")
        self.assertEqual(self.portal.integrity_mark, "with a subscriber")
        self.assertEqual(self.portal.integrity_notified, 1)


class TestOneJobFailsAlone(OwnWorkerTestCase):

    def tearDown(self):
        integrity_jobs.Fragile.broken = False
        super().tearDown()

    def test_a_job_that_cannot_be_loaded_is_set_aside_and_the_queue_goes_on(self):
        poisoned = self.service.queueJob(integrity_jobs.takes_fragile, self.portal, integrity_jobs.Fragile())
        transaction.commit()
        poisoned_id = poisoned.id
        integrity_jobs.Fragile.broken = True  # a new release: the class changed ...
        self.layer["zodbDB"].cacheMinimize()  # ... and the processes started again: nothing loaded
        self.start_worker()
        plain = self.service.queueJob(sample_jobs.add, self.portal, 1, 2)
        self.assertEqual(wait_for_result(plain), 3)  # (once: every pass failed on the other job)
        root = get_queue_root(self.portal._p_jar)
        [(key, job_id, error, _when, where)] = set_aside_jobs(root)
        self.assertEqual(job_id, poisoned_id)
        self.assertIn("Fragile has changed", error)
        # The control panel lists it to the Zope root's Manager (a job that cannot be loaded
        # cannot tell its site), not to a site's Manager.
        panel = self.portal.restrictedTraverse("@@zasync-controlpanel")
        self.assertEqual(panel.set_aside(), [])
        login(self.layer["app"], SITE_OWNER_NAME)
        [row] = panel.set_aside()
        self.assertEqual((row["key"], row["job_id"]), (key, poisoned_id))
        # Fixed: an administrator files it again, and it runs.
        integrity_jobs.Fragile.broken = False
        actions.retry_set_aside(root, key)
        transaction.commit()
        wait_until(lambda: getattr(root.queues[""].get(poisoned_id), "status", None) == COMPLETED,
                   "the job to run")
        self.assertEqual(root.queues[""].get(poisoned_id).result, "ran")
        self.assertEqual(set_aside_jobs(root), [])

    def test_a_transient_error_of_the_job_fails_it_at_once(self):
        self.start_worker()
        job = self.service.queueJob(integrity_jobs.raise_transient, self.portal)
        wait_for_result(job)
        self.assertTrue(job.failed)
        self.assertEqual(job.attempts, 1)
        self.assertIn("the job's own transient error", str(job.result))


class TestCancelAndRecurrences(OwnWorkerTestCase):

    def test_cancelling_one_run_of_a_recurring_job_keeps_the_recurrence(self):
        first = self.service.queueRecurringJob(sample_jobs.noop, self.portal, 3600)
        transaction.commit()
        self.start_worker()
        wait_until(lambda: first.id in get_queue_root(self.portal._p_jar).queues[""].jobs, "the run filed")

        @transactional
        def cancel():
            actions.cancel(first)

        cancel()
        transaction.begin()
        recurrence = first.recurrence
        self.assertTrue(first.failed)
        self.assertFalse(recurrence.cancelled)
        self.assertIsNot(recurrence.current, first)  # (once: no next run, silently)
        self.assertEqual(recurrence.current.begin_after, first.begin_after + timedelta(seconds=3600))

    def test_a_finished_jobs_cancel_request_is_forgotten(self):
        self.start_worker()
        job = self.service.queueJob(sample_jobs.sleep, self.portal, 0.5)
        transaction.commit()
        wait_until(lambda: job.status == ACTIVE and job.started is not None, "the job to start")

        @transactional
        def cancel():
            actions.cancel(job)  # it never checks: it runs to its end

        cancel()
        root = get_queue_root(self.portal._p_jar)
        wait_until(lambda: job.id in root.queues[""].jobs and job.id not in root.cancel_requests,
                   "the job filed, its request forgotten")

    def test_a_job_that_just_finished_is_removed_or_retried_once_filed(self):
        job = self.service.queueJob(sample_jobs.noop, self.portal)
        transaction.commit()
        root = get_queue_root(self.portal._p_jar)
        root.workers["played"] = record = WorkerRecord("played", 1)
        queue = root.queues[""]
        filing.file_inboxes(queue)
        [claimed] = claiming.claim(root, record, 1, utcnow() + timedelta(seconds=5))
        claimed.finish(Failure(ValueError("failed")))
        claimed.complete()  # finished, not filed by the finisher yet
        # (once: removed, then filed again by the finisher; retried, then its old end filed too)
        for action in (actions.remove, actions.retry):
            with self.assertRaisesRegex(actions.ActionError, "a worker is filing it: try again"):
                action(job)
        filing.file_completed(root, record)
        filing.file_done_logs(root, True)
        actions.remove(job)
        self.assertIsNone(queue.get(job.id))
        self.assertNotIn(job, list(queue.failed.values()))
        self.assertEqual(queue.failed_count(), len(queue.failed))
        del root.workers["played"]
        transaction.commit()


class TestHealth(WorkerTestCase):

    def test_a_backlog_at_another_priority_counts(self):
        later = utcnow() + timedelta(hours=1)
        job = self.service.queueJobWithDelay(None, later, sample_jobs.noop, self.portal, priority=5)
        transaction.commit()
        root = get_queue_root(self.portal._p_jar)
        wait_until(lambda: job.id in root.queues[""].jobs, "the job filed")
        self.assertIsNone(oldest_due(root.queues[""], utcnow()))  # not due yet
        due = oldest_due(root.queues[""], later + timedelta(minutes=5))  # (once: None)
        self.assertAlmostEqual(due, later.timestamp(), places=3)

        @transactional
        def cancel():
            actions.cancel(job)

        cancel()


class TestContentDeletion(OwnWorkerTestCase):

    def test_a_job_failed_in_its_inbox_is_listed_in_my_jobs(self):
        from collective.zasync.indexes import jobs_of_user

        api.content.create(self.portal, "Document", "doomed")
        transaction.commit()
        job = self.service.queueJob(sample_jobs.noop, self.portal["doomed"])
        transaction.commit()
        api.content.delete(self.portal["doomed"])
        transaction.commit()
        self.assertTrue(job.failed)
        self.start_worker()  # it reads the inbox, and passes the job over: it is finished
        root = get_queue_root(self.portal._p_jar)
        wait_until(lambda: not any(inbox.unread_count() for inbox in root.queues[""].inboxes.values()),
                   "the inbox read")
        self.assertIn(job, list(jobs_of_user(root, job.userfolder_path, job.user_id)))


class TestOutages(unittest.TestCase):
    """What the runner takes for the database being unreachable (a job runs again once it is
    back), and what for the job's own error (it fails, or its retry policy applies)."""

    def test_the_storage_drivers_disconnection_is_an_outage(self):
        from relstorage.adapters.sqlite.adapter import Sqlite3Adapter
        from relstorage.options import Options
        from relstorage.storage import RelStorage
        from collective.zasync.runner import is_outage
        from transaction.interfaces import TransientError
        from ZEO.Exceptions import ClientDisconnected

        import sqlite3

        home = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, home)
        options = Options(keep_history=False)
        db = DB(RelStorage(Sqlite3Adapter(data_dir=home, pragmas={}, options=options), options=options))
        self.addCleanup(db.close)
        # RelStorage's driver says so of a lost server (PostgreSQL restarting: psycopg2's
        # OperationalError, raised while a job loads an object); once, the job failed of it.
        self.assertTrue(is_outage(sqlite3.OperationalError("server closed the connection"), db))
        self.assertTrue(is_outage(ClientDisconnected("ZEO"), db))
        self.assertFalse(is_outage(TransientError("the job's own"), db))
        self.assertFalse(is_outage(ValueError("the job's own"), db))
