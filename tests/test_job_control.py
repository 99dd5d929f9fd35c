"""Job control: priorities, rate limits per quota name, dependencies across requests (issue 19)."""

from collective.zasync import actions
from collective.zasync import reading
from collective.zasync.dispatcher import Dispatcher
from collective.zasync.failure import Failure
from collective.zasync.job import Job
from collective.zasync.job import utcnow
from collective.zasync.service import makeJob
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from collective.zasync.worker import WorkerSettings
from datetime import timedelta
from tests import control_jobs
from tests.base import OwnWorkerTestCase
from tests.base import WorkerTestCase

import transaction
import uuid
import ZODB


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


class TestPriorities(Queueing, OwnWorkerTestCase):
    """The layer's worker is stopped while jobs are queued: they are all due when one starts."""

    def setUp(self):
        super().setUp()
        control_jobs.starts.clear()

    def test_higher_priority_starts_first_equal_ones_in_queueing_order(self):
        self.service.createQueue("parallel")
        for queue in ("parallel", ""):  # no order promised / in order, one at a time
            jobs = [self.record(queue + label, queue=queue, priority=priority)
                    for label, priority in (("a", 0), ("b", 5), ("c", -3), ("d", 5), ("e", 0), ("f", 10))]
            transaction.commit()
            self.start_worker(threads=1)
            self.wait_for_all(jobs)
            self.worker.stop()
            self.assertEqual(control_jobs.labels(), [queue + label for label in "fbdaec"])
            self.assertTrue(all(job.result == job.args[0] for job in jobs))
            control_jobs.starts.clear()

    def test_a_delayed_high_priority_job_does_not_block_due_ones(self):
        later = self.record("later", priority=10, begin_after=utcnow() + timedelta(hours=1))
        due = [self.record("due%d" % n) for n in range(3)]
        transaction.commit()
        self.start_worker(threads=1)
        self.wait_for_all(due)
        self.assertEqual(control_jobs.labels(), ["due0", "due1", "due2"])
        self.assertEqual(actions.state_of(later), "delayed")
        panel_delayed = list(reading.jobs_in_state(self._root(), self.service.getQueues()[""], "delayed"))
        self.assertEqual(panel_delayed, [later])
        actions.cancel(later)
        transaction.commit()

    def test_starvation_low_priority_work_in_its_own_queue_runs_between_busy_ones(self):
        # The promise (README): priorities are strict within a queue; queues take turns.
        self.service.createQueue("busy")
        self.service.createQueue("low")
        busy = [self.record("busy%d" % n, queue="busy", priority=10) for n in range(12)]
        low = self.record("low", queue="low", priority=-10)
        transaction.commit()
        self.start_worker(threads=1)
        self.wait_for_all(busy + [low])
        self.assertLess(control_jobs.labels().index("low"), 4)  # 3 queues: its turn comes within 3 claims

    def test_priority_of_recurring_runs_and_batch_jobs(self):
        job = self.service.queueRecurringJob(control_jobs.record, self.portal, 3600, "r", priority=3)
        self.assertEqual(job.recurrence.next_run(job).priority, 3)
        batch = self.service.queueParallelJobs(makeJob(control_jobs.record, self.portal, "x", priority=7),
                                               makeJob(control_jobs.record, self.portal, "y"))
        self.assertEqual([sub.priority for sub in batch.subjobs], [7, 0])
        self.service.cancelRecurringJob(job)
        transaction.abort()

    def test_bad_priorities_fail_at_queue_time(self):
        for bad, error in (("5", TypeError), (5.0, TypeError), (True, TypeError), (None, TypeError),
                           (11, ValueError), (-11, ValueError)):
            with self.assertRaises(error) as raised:
                self.record("x", priority=bad)
            self.assertIn("priority is", str(raised.exception))
        with self.assertRaises(ValueError):
            self.service.queueSerialJobs(makeJob(control_jobs.record, self.portal, "x", priority=99))
        with self.assertRaises(TypeError):
            self.service.queueRecurringJob(control_jobs.record, self.portal, 60, "x", priority="high")
        transaction.abort()

    def test_a_job_stored_without_a_priority_has_priority_0(self):
        job = self.record("old")
        del job.priority  # as jobs of layout 3 are stored: no attribute
        self.assertEqual(job.priority, 0)
        transaction.commit()
        self.start_worker(threads=1)
        self.assertEqual(wait_for_result(job), "old")

    def _root(self):
        from collective.zasync.queue import get_queue_root

        return get_queue_root(self.portal._p_jar)


class TestRateLimits(Queueing, OwnWorkerTestCase):

    def setUp(self):
        super().setUp()
        control_jobs.starts.clear()
        self.second = None

    def tearDown(self):
        if self.second is not None:
            self.second.stop()
        super().tearDown()

    def test_never_more_starts_per_window_than_the_limit_over_two_workers(self):
        queue = self.service.createQueue("mail")
        queue.rate_limits["smtp"] = (3, timedelta(seconds=1))  # no concurrency quota "smtp"
        jobs = [self.record("mail%d" % n, queue="mail", quota_names=("smtp",)) for n in range(10)]
        free = [self.record("free%d" % n, queue="mail") for n in range(4)]
        transaction.commit()
        self.start_worker(threads=2)
        settings = WorkerSettings(threads=2, poll_interval=0.2, ping_interval=1.0, death_interval=30.0,
                                  max_retries=3, stop_timeout=10.0)
        self.second = Dispatcher(self.layer["zodbDB"], str(uuid.uuid4()), settings)
        self.second.start()
        self.wait_for_all(jobs + free)
        self.assertEqual([job.result for job in jobs], ["mail%d" % n for n in range(10)])  # none failed
        limited = sorted(when for label, when in control_jobs.starts if label.startswith("mail"))
        self.assertEqual(len(limited), 10)
        # In any window of 1 s at most 3 starts: the 4th start after any one is 1 s later or more
        # (1 microsecond: the window stores the claim's time as float seconds).
        gaps = [limited[i + 3] - limited[i] for i in range(len(limited) - 3)]
        self.assertGreaterEqual(min(gaps), 1_000_000 - 1, gaps)
        # Both dispatchers slept until the window reopened, they did not spin.
        passes = self.worker._passes + self.second._passes
        self.assertLess(passes, 1000)
        print("\n  [rate] 10 jobs at 3/s over two workers: %d dispatcher passes" % passes)

    def test_a_backlog_held_by_its_rate_does_not_hide_the_jobs_behind_it(self):
        queue = self.service.createQueue("mail")
        queue.set_rate_limit("smtp", 1, timedelta(hours=1))
        held = [self.record("mail%d" % n, queue="mail", quota_names=("smtp",)) for n in range(60)]
        free = self.record("free", queue="mail")
        transaction.commit()
        self.start_worker(threads=1)
        self.assertEqual(wait_for_result(free), "free")
        self.assertEqual(wait_for_result(held[0]), "mail0")
        self.assertEqual([actions.state_of(job) for job in held[1:]], ["pending"] * 59)  # not failed
        self.assertEqual(control_jobs.labels(), ["mail0", "free"])

    def test_two_claims_under_one_rate_limit_at_once_conflict(self):
        from collective.zasync.queue import get_queue_root
        from ZODB.POSException import ConflictError

        self.service.createQueue("mail").set_rate_limit("smtp", 5, 60)
        transaction.commit()
        managers = [transaction.TransactionManager() for _ in range(2)]
        connections = [self.layer["zodbDB"].open(transaction_manager=tm) for tm in managers]
        try:
            for tm, conn in zip(managers, connections):  # two dispatchers, each starting a job
                tm.begin()
                get_queue_root(conn).queues["mail"].rate_limits.window("smtp").record(utcnow().timestamp())
            managers[0].commit()
            with self.assertRaises(ConflictError):  # the second retries and counts the first's start
                managers[1].commit()
        finally:
            for tm, conn in zip(managers, connections):
                tm.abort()
                conn.close()
        transaction.begin()
        self.assertEqual(len(self.service.getQueues()["mail"].rate_limits.window("smtp").starts), 1)

    def test_rate_limits_mapping_set_rate_limit_and_what_is_shown(self):
        queue = self.service.createQueue("mail")
        self.assertEqual(dict(queue.rate_limits.items()), {})
        queue.set_rate_limit("smtp", 60, timedelta(minutes=1))
        queue.rate_limits["api"] = (5, 10)
        self.assertEqual(queue.rate_limits["smtp"], (60, timedelta(minutes=1)))
        self.assertEqual(sorted(queue.rate_limits), ["api", "smtp"])
        transaction.commit()
        self.assertEqual(reading.rate_limits_info(queue), {"api": {"count": 5, "per": 10.0},
                                                           "smtp": {"count": 60, "per": 60.0}})
        html = self.portal.restrictedTraverse("@@zasync-controlpanel")()
        self.assertIn("smtp 60 / 60 s", html)
        from collective.zasync.restapi.services import QueuesGet

        service = QueuesGet()  # GET @zasync-queues
        service.context, service.request = self.portal, self.portal.REQUEST
        answer = service.reply()
        [mail] = [info for info in answer["queues"] if info["name"] == "mail"]
        self.assertEqual(mail["rate_limits"]["smtp"], {"count": 60, "per": 60.0})
        # A rate limit alone makes the name usable in quota_names; removing it lets queued jobs run.
        job = self.record("api job", queue="mail", quota_names=("api",))
        queue.set_rate_limit("api", None)
        self.assertNotIn("api", queue.rate_limits)
        self.start_worker(threads=1)
        self.assertEqual(wait_for_result(job), "api job")
        with self.assertRaises(ValueError) as raised:
            self.record("x", queue="mail", quota_names=("api",))  # no quota, no rate limit any more
        self.assertIn("has no quota 'api'", str(raised.exception))

    def test_bad_rate_limits_are_refused(self):
        queue = self.service.createQueue("mail")
        for value in ((0, 60), (-1, 60), ("5", 60), (True, 60), (10_001, 60), (5, 0), (5, -1),
                      (5, "1m"), (5, timedelta(days=8)), 5, (5,), "5/m"):
            with self.assertRaises((TypeError, ValueError)) as raised:
                queue.rate_limits["smtp"] = value
            self.assertIn("rate limit", str(raised.exception))
        with self.assertRaises(TypeError):
            queue.set_rate_limit(None, 5, 60)
        with self.assertRaises(ValueError):
            queue.set_rate_limit("smtp", 2.5, 60)
        self.assertEqual(len(queue.rate_limits), 0)
        with self.assertRaises(ValueError):
            self.record("x", queue="mail", quota_names=("smtp",))
        transaction.abort()


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
        self.assertIn("tests.control_jobs.fail", str(dependent.result))
        self.assertIn(dependent.id, str(result))
        self.assertEqual(control_jobs.labels(), ["d"])

    def test_a_dependency_finished_or_removed_before_is_decided_at_once(self):
        done = self.record("done")
        failed = self.fail("failed")
        with self.assertLogs("collective.zasync", level="ERROR"):
            wait_for_result(failed)
        wait_for_result(done)
        actions.remove(done)  # an administrator's "remove" (the retention does the same)
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
            actions.cancel(later)  # in this transaction: the dependent fails at once
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
        from collective.zasync.dependencies import file_or_block
        from collective.zasync.queue import get_queue_root
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
        from collective.zasync import filing
        from collective.zasync.queue import get_queue_root
        from collective.zasync.queue import unfile_waiting

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
        filing.file_done(root, first)
        filing.file_done(root, second)
        self.assertEqual(list(queue.pending()), [dependent])
        self.assertEqual(queue.waiting_count(), 1)
        transaction.commit()
        self.start_worker(threads=1)
        self.assertEqual(wait_for_result(dependent), "dependent")

