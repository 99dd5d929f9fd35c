"""Dependencies across requests: a job starts once the jobs it depends on have finished."""

from collective.zasync.client import admin
from collective.zasync.client import reading
from collective.zasync.client.service import makeJob
from collective.zasync.core import lifecycle
from collective.zasync.core.failure import Failure
from collective.zasync.core.job import Job
from collective.zasync.core.job import utcnow
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from datetime import timedelta
from tests.support import control_jobs
from tests.support.base import OwnWorkerTestCase
from tests.support.base import Queueing
from tests.support.base import WorkerTestCase

import transaction
import ZODB


class TestDependencies(Queueing, WorkerTestCase):

    def setUp(self):
        super().setUp()
        control_jobs.starts.clear()

    def test_a_chain_across_requests_and_queues_runs_in_order(self):
        self.service.createQueue("other")
        first = self.record("first", begin_after=utcnow() + timedelta(seconds=1))
        transaction.commit()  # another request:
        second = self.record("second", queue="other", depends_on=first)
        third = self.record("third", depends_on=[first, second])
        self.assertEqual(wait_for_result(third), "third")
        self.assertEqual(control_jobs.labels(), ["first", "second", "third"])
        self.assertEqual(reading.job_detail(third)["depends_on"], [first.id, second.id])
        self.assertEqual(reading.job_detail(third)["waiting_for"], [])

    def test_a_failure_fails_the_dependents_naming_it_unless_run_on_failure(self):
        failing = self.fail("a")
        dependent = self.record("b", depends_on=failing)
        next_one = self.record("c", depends_on=dependent)
        anyway = self.record("d", depends_on=failing, run_on_failure=True)
        with self.assertLogs("collective.zasync", level="ERROR"):
            result = wait_for_result(next_one)
        self.assertEqual(wait_for_result(anyway), "d")
        self.assertIsInstance(dependent.result, Failure)
        self.assertEqual(dependent.result.type.__name__, "DependencyFailed")
        self.assertIn(failing.id, str(dependent.result))
        self.assertIn("tests.support.control_jobs.fail", str(dependent.result))
        self.assertIn(dependent.id, str(result))
        self.assertEqual(control_jobs.labels(), ["d"])

    def test_a_dependency_finished_or_removed_before_is_decided_at_once(self):
        done = self.record("done")
        failed = self.fail("failed")
        with self.assertLogs("collective.zasync", level="ERROR"):
            wait_for_result(failed)
        wait_for_result(done)
        admin.remove(done)  # an administrator's "remove" (the retention does the same)
        transaction.commit()
        after_done = self.record("after done", depends_on=done)
        after_failed = self.record("after failed", depends_on=failed)
        with self.assertLogs("collective.zasync", level="ERROR"):
            self.assertEqual(wait_for_result(after_done), "after done")
            self.assertIn(failed.id, str(wait_for_result(after_failed)))

    def test_a_waiting_job_shows_what_it_waits_for_and_a_cancel_releases_it(self):
        later = self.record("later", begin_after=utcnow() + timedelta(hours=1))
        transaction.commit()
        dependent = self.record("dependent", depends_on=later)
        transaction.commit()
        wait_until(lambda: dependent.id in self.service.getQueues()[""].jobs, "the dependent filed")
        self.assertIs(self.service.getJob(dependent.id), dependent)
        self.assertEqual(reading.job_detail(dependent)["waiting_for"], [later.id])
        request = self.portal.REQUEST
        request.form["id"] = dependent.id
        html = self.portal.restrictedTraverse("@@zasync-job")()
        self.assertIn("waiting for", html)
        self.assertIn(later.id, html)
        with self.assertLogs("collective.zasync", level="ERROR"):
            admin.cancel(later)  # in this transaction: the dependent fails at once
            failure = wait_for_result(dependent)
        self.assertIn("Cancelled", str(failure))
        self.assertIn(later.id, str(failure))

    def test_bad_dependencies_fail_at_queue_time(self):
        queued = self.record("queued")
        for bad, error, words in (
            ("abc", TypeError, "depends_on takes jobs"),
            ([queued, 5], TypeError, "depends_on takes jobs"),
            (Job(), ValueError, "queue it first"),
        ):
            with self.assertRaises(error) as raised:
                self.record("x", depends_on=bad)
            self.assertIn(words, str(raised.exception))
        with self.assertRaises(TypeError):
            self.record("x", depends_on=queued, run_on_failure="yes")
        with self.assertRaises(ValueError):
            self.service.queueSerialJobs(makeJob(control_jobs.record, self.portal, "x", depends_on=queued))
        with self.assertRaises(ValueError):
            self.service.queueRecurringJob(control_jobs.record, self.portal, 60, "x", depends_on=queued)
        transaction.commit()
        queued.site_path = "/other-site"  # as a job of another site is
        with self.assertRaises(ValueError) as raised:
            self.record("x", depends_on=queued)
        self.assertIn("of its own site", str(raised.exception))
        transaction.abort()
        elsewhere = Job()
        elsewhere.status, elsewhere.site_path = "pending-status", queued.site_path
        db = ZODB.DB(None)
        manager = transaction.TransactionManager()
        conn = db.open(transaction_manager=manager)
        conn.root()["job"] = elsewhere
        manager.commit()
        with self.assertRaises(ValueError) as raised:
            self.record("x", depends_on=elsewhere)
        self.assertIn("another database", str(raised.exception))
        transaction.abort()
        conn.close()
        db.close()


class TestDependencyRace(Queueing, OwnWorkerTestCase):
    """No worker runs while the race is set up by hand, with two connections."""

    def test_a_dependency_changed_while_its_dependent_is_filed_makes_the_filing_retry(self):
        from collective.zasync.core.dependencies import file_or_block
        from collective.zasync.core.queue import get_queue_root
        from ZODB.POSException import ConflictError

        dependency = self.record("dependency")
        dependent = self.record("dependent", depends_on=dependency)
        transaction.commit()
        db = self.layer["zodbDB"]
        connections = []
        for _ in range(2):
            manager = transaction.TransactionManager()
            connections.append((manager, db.open(transaction_manager=manager)))
        (filing_tm, filing), (runner_tm, runner) = connections
        try:
            filing_tm.begin()
            queue = get_queue_root(filing).queues[""]
            file_or_block(queue, filing.get(dependent._p_oid))  # reads the dependency as pending
            runner_tm.begin()
            runner.get(dependency._p_oid)._p_changed = True  # its worker commits it meanwhile
            runner_tm.commit()
            with self.assertRaises(ConflictError):  # ReadConflictError: the dispatcher retries
                filing_tm.commit()
        finally:
            filing_tm.abort()
            for _manager, conn in connections:
                conn.close()
        self.start_worker(threads=1)
        self.assertEqual(wait_for_result(dependent), "dependent")
        self.assertEqual(control_jobs.labels()[-2:], ["dependency", "dependent"])

    def test_two_dependencies_finished_before_either_is_filed_release_the_job_once(self):
        from collective.zasync.worker import filing
        from collective.zasync.core.queue import get_queue_root
        from collective.zasync.core.places import unfile_waiting

        first, second = self.record("first"), self.record("second")
        dependent = self.record("dependent", depends_on=[first, second])
        transaction.commit()
        root = get_queue_root(self.portal._p_jar)
        queue = root.queues[""]
        filing.file_inboxes(queue)  # as a dispatcher does: the dependent is kept aside
        self.assertEqual(queue.waiting_count(), 2)
        for job in (first, second):  # both finish (their workers commit), then both are filed
            unfile_waiting(queue, job)
            job.finish(job.args[0])
            job.complete()
        lifecycle.file_done(root, first)
        lifecycle.file_done(root, second)
        self.assertEqual(list(queue.pending()), [dependent])
        self.assertEqual(queue.waiting_count(), 1)
        transaction.commit()
        self.start_worker(threads=1)
        self.assertEqual(wait_for_result(dependent), "dependent")
