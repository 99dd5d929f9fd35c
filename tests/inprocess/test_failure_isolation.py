"""One job's trouble stays that job's: the worker, its threads and the other jobs go on."""

from collective.zasync.client import admin
from collective.zasync.client import reading
from collective.zasync.core.cancelling import cancel_request
from collective.zasync.core.cancelling import drop_stale_requests
from collective.zasync.core.cancelling import request_cancel
from collective.zasync.core.dependencies import waiting_for
from collective.zasync.core.failure import Failure
from collective.zasync.core.job import utcnow
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.setaside import set_aside_jobs
from collective.zasync.core.setaside import stored_id
from collective.zasync.defaults import MAX_STARTS
from collective.zasync.interfaces import COMPLETED
from collective.zasync.interfaces import IJobFailure
from collective.zasync.interfaces import IJobSuccess
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from collective.zasync.worker.events import has_subscribers
from collective.zasync.worker.events import JobSuccess
from datetime import timedelta
from plone.app.testing import login
from plone.app.testing import SITE_OWNER_NAME
from tests.support import integrity_jobs
from tests.support import sample_jobs
from tests.support.base import OwnWorkerTestCase
from tests.support.base import WorkerTestCase
from zope.component import getGlobalSiteManager
from zope.interface import Interface

import contextlib
import transaction


@contextlib.contextmanager
def subscribed(handler, *required):
    """``handler`` subscribed to ``required`` for the duration of the block."""
    gsm = getGlobalSiteManager()
    gsm.registerHandler(handler, required)
    try:
        yield
    finally:
        gsm.unregisterHandler(handler, required)


class TestOneJobsTroubleStaysItsOwn(WorkerTestCase):
    def assert_worker_goes_on(self):
        dispatcher = self.layer["zasync_dispatcher"]
        self.assertTrue(all(thread.is_alive() for thread in dispatcher._threads), "a job thread died")
        job = self.service.queueJob(sample_jobs.add, self.portal, 40, b=2)
        self.assertEqual(wait_for_result(job, seconds=30), 42)

    def test_a_deleted_quota_fails_the_jobs_that_name_it_and_nothing_else(self):
        queue = self.service.createQueue("reports")
        queue.quotas["pdf"] = 0  # nothing may start yet
        blocked = self.service.queueJobInQueue("reports", ("pdf",), sample_jobs.add, self.portal, 1)
        transaction.commit()
        del queue.quotas["pdf"]
        plain = self.service.queueJob(sample_jobs.add, self.portal, 2)
        self.assertEqual(wait_for_result(plain), 2)
        result = wait_for_result(blocked)
        self.assertIsInstance(result, Failure)
        self.assertIs(result.type, LookupError)
        self.assertIn("Queue 'reports' has no quota 'pdf' any more", str(result))
        self.assert_worker_goes_on()

    def test_a_quota_whose_size_is_not_a_number_fails_its_jobs_only(self):
        queue = self.service.createQueue("reports")
        queue.quotas["pdf"] = 0
        blocked = self.service.queueJobInQueue("reports", ("pdf",), sample_jobs.add, self.portal, 1)
        transaction.commit()
        queue.quotas["pdf"] = "2"  # a typo of an add-on, after the job was queued
        plain = self.service.queueJob(sample_jobs.add, self.portal, 2)
        self.assertEqual(wait_for_result(plain), 2)
        self.assertIn("or its size is not a whole number", str(wait_for_result(blocked)))
        self.assert_worker_goes_on()

    def test_a_failing_subscriber_costs_a_timed_out_job_its_event_only(self):
        calls = []

        def broken(event):
            calls.append(event.job.id)
            raise RuntimeError("subscriber broken")

        past = utcnow() - timedelta(minutes=5)
        with subscribed(broken, IJobFailure):
            job = self.service.queueJobWithDelay(timedelta(seconds=1), past, sample_jobs.add, self.portal, 1)
            result = wait_for_result(job, seconds=30)
        self.assertIs(result.type, TimeoutError)
        self.assertEqual(calls, [job.id], "the event is fired once, not again and again")
        self.assertEqual(job.callback_claims, 1)
        self.assert_worker_goes_on()

    def test_an_interrupting_subscriber_neither_kills_a_thread_nor_loops_forever(self):
        calls = []

        def interrupting(event):
            calls.append(event.job.id)
            raise KeyboardInterrupt

        past = utcnow() - timedelta(minutes=5)
        with subscribed(interrupting, IJobFailure):
            job = self.service.queueJobWithDelay(timedelta(seconds=1), past, sample_jobs.add, self.portal, 1)
            result = wait_for_result(job, seconds=60)
        self.assertIs(result.type, TimeoutError)
        # each interrupted run leaves the job claimed with no thread: the next
        # pass gives it back; after MAX_STARTS such runs it completes without its event
        self.assertEqual(len(calls), MAX_STARTS)
        self.assertEqual(job.callback_claims, MAX_STARTS + 1)
        self.assert_worker_goes_on()

    def test_a_job_whose_worker_died_each_time_fails_instead_of_running_forever(self):
        job = self.service.queueJob(sample_jobs.add, self.portal, 1)
        job.attempts = MAX_STARTS  # as after MAX_STARTS killed workers
        result = wait_for_result(job)
        self.assertIs(result.type, RuntimeError)
        self.assertIn("was started %d times and never finished" % MAX_STARTS, str(result))
        self.assert_worker_goes_on()


class TestEventSavepoints(WorkerTestCase):
    def test_only_real_subscribers_count(self):
        # Zope subscribes a relay to every object event: that alone must not
        # make each job pay for a savepoint.
        job = self.service.queueJob(sample_jobs.add, self.portal, 1)
        event = JobSuccess(1, job)
        self.assertFalse(has_subscribers(event))
        with subscribed(lambda event: None, IJobSuccess):
            self.assertTrue(has_subscribers(event))
        with subscribed(lambda result, event: None, Interface, IJobSuccess):
            self.assertTrue(has_subscribers(event))


class TestOneJobFailsAlone(OwnWorkerTestCase):

    def tearDown(self):
        integrity_jobs.Fragile.broken = False
        super().tearDown()

    def set_aside_once_its_class_changed(self, job_id):
        """Break Fragile (a new release), start a worker, see it run another job past the
        queued job ``job_id``, which it set aside; return (the queue root, its set-aside key)."""
        integrity_jobs.Fragile.broken = True
        self.layer["zodbDB"].cacheMinimize()  # (the processes started again: nothing loaded)
        self.start_worker()
        plain = self.service.queueJob(sample_jobs.add, self.portal, 1, 2)
        self.assertEqual(wait_for_result(plain), 3)
        root = get_queue_root(self.portal._p_jar)
        [(key, aside_id, _error, _when, _where)] = set_aside_jobs(root)
        self.assertEqual(aside_id, job_id)
        return root, key

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
        admin.retry_set_aside(root, key)
        transaction.commit()
        wait_until(lambda: getattr(root.queues[""].get(poisoned_id), "status", None) == COMPLETED,
                   "the job to run")
        self.assertEqual(root.queues[""].get(poisoned_id).result, "ran")
        self.assertEqual(set_aside_jobs(root), [])

    def test_removing_a_job_set_aside_decides_the_jobs_that_depend_on_it(self):
        poisoned = self.service.queueJob(integrity_jobs.takes_fragile, self.portal, integrity_jobs.Fragile())
        strict = self.service.queueJob(sample_jobs.add, self.portal, 1, depends_on=poisoned)
        cleanup = self.service.queueJob(sample_jobs.add, self.portal, 2, depends_on=poisoned,
                                        run_on_failure=True)
        transaction.commit()
        poisoned_id = poisoned.id
        root, key = self.set_aside_once_its_class_changed(poisoned_id)
        # Set aside, it has not finished: the jobs that depend on it wait for it.
        self.assertEqual((strict.status, cleanup.status), ("pending-status", "pending-status"))
        self.assertEqual(waiting_for(strict), [poisoned_id])
        # Removed, it never will: one fails and says why, the one queued to run anyway runs.
        admin.remove_set_aside(root, key)
        transaction.commit()
        result = wait_for_result(strict)
        self.assertIsInstance(result, Failure)
        self.assertIn("job %s, which it depends on, could not be loaded and was removed" % poisoned_id,
                      str(result))
        self.assertEqual(wait_for_result(cleanup), 2)
        self.assertEqual(list(root.blocked.keys()), [])

    def test_the_stop_request_of_a_job_set_aside_goes_when_the_job_does(self):
        # Asked to stop, then set aside: its request stays while an administrator may retry
        # it, and the upkeep that drops stale requests does not fail on it (it read the job's
        # state: the retention failed in every pass); removed, the job takes its request along.
        poisoned = self.service.queueJob(integrity_jobs.takes_fragile, self.portal, integrity_jobs.Fragile())
        transaction.commit()
        poisoned_id = poisoned.id
        request_cancel(poisoned, "admin")  # (as admin.cancel writes it for a running job)
        transaction.commit()
        root, key = self.set_aside_once_its_class_changed(poisoned_id)
        self.assertEqual(drop_stale_requests(root, utcnow()), 0)
        self.assertIsNotNone(cancel_request(root, poisoned_id))
        self.assertEqual(drop_stale_requests(root, utcnow() + timedelta(days=2)), 1)  # as unknown ones
        transaction.abort()
        admin.remove_set_aside(root, key)
        transaction.commit()
        self.assertIsNone(cancel_request(root, poisoned_id))

    def test_a_retried_job_that_cannot_be_loaded_is_set_aside_under_its_id(self):
        # Queued again, a job comes under an inbox key that is not its id: set aside under
        # that key, it would stay listed (and its dependents would wait for ever).
        self.start_worker()
        job = self.service.queueJob(integrity_jobs.fails_with_fragile, self.portal, integrity_jobs.Fragile())
        self.assertIsInstance(wait_for_result(job), Failure)
        job_id = job.id
        admin.retry(job)
        integrity_jobs.Fragile.broken = True
        transaction.commit()
        root = get_queue_root(self.portal._p_jar)
        wait_until(lambda: set_aside_jobs(root), "the job to be set aside")
        [(key, aside_id, error, _when, _where)] = set_aside_jobs(root)
        self.assertEqual(aside_id, job_id)
        self.assertEqual(stored_id(job), job_id)
        self.assertIsNone(root.queues[""].get(job_id))
        admin.remove_set_aside(root, key)
        transaction.commit()
        self.assertEqual([row for row in root.queues[""].by_user.values() if len(row)], [])

    def test_a_finished_job_that_cannot_be_loaded_is_listed_with_its_error(self):
        # A new release changed a class that a finished job's arguments hold: the lists of
        # finished jobs still show, with that job as one that cannot be loaded.
        self.start_worker()
        job = self.service.queueJob(integrity_jobs.takes_fragile, self.portal, integrity_jobs.Fragile())
        self.assertEqual(wait_for_result(job), "ran")
        job_id = job.id
        queue = self.service.getQueues()[""]
        wait_until(lambda: queue.completed_count() == 1, "the job filed")
        self.worker.stop()  # (its connections hold the job loaded)
        integrity_jobs.Fragile.broken = True
        transaction.commit()
        self.layer["zodbDB"].cacheMinimize()
        transaction.begin()
        request = self.portal.REQUEST
        request.form.update({"queue": "", "state": "completed"})
        html = self.portal.restrictedTraverse("@@zasync-controlpanel")()
        self.assertIn("job-%s" % job_id, html)
        self.assertIn("Cannot be loaded: TypeError: Fragile has changed", html)
        root = get_queue_root(self.portal._p_jar)
        [summary] = [reading.job_summary(entry) for entry in root.queues[""].completed.values()]
        self.assertEqual((summary["id"], summary["state"]), (job_id, "unloadable"))
        detail = reading.job_detail(root.queues[""].get(job_id))
        self.assertEqual((detail["id"], detail["actions"]), (job_id, []))
        # A site cannot tell it is its own: its job page does not reach it; the Zope root's does.
        self.assertIsNone(admin.find_job(root.queues, job_id, "/plone"))
        self.assertIsNotNone(admin.find_job(root.queues, job_id))
        # Removing all completed jobs removes it too.
        self.assertEqual(admin.remove_finished(root.queues[""]), 1)

    def test_a_job_whose_finished_dependency_no_longer_loads_fails_saying_so(self):
        # Queued before a release changed a class its finished dependency holds, filed after:
        # filing fails the job, with what to do, and the queue goes on (it did not: every pass
        # failed on that dependency).
        self.start_worker()
        dependency = self.service.queueJob(integrity_jobs.takes_fragile, self.portal, integrity_jobs.Fragile())
        self.assertEqual(wait_for_result(dependency), "ran")
        wait_until(lambda: self.service.getQueues()[""].completed_count() == 1, "it filed")
        dependency_id = dependency.id
        self.worker.stop()
        dependent = self.service.queueJob(sample_jobs.add, self.portal, 1, 2, depends_on=dependency)
        transaction.commit()
        integrity_jobs.Fragile.broken = True
        self.layer["zodbDB"].cacheMinimize()
        self.start_worker()
        result = wait_for_result(dependent)
        self.assertIsInstance(result, Failure)
        self.assertIn("job %s, which it depends on, can no longer be loaded (TypeError: Fragile has "
                      "changed" % dependency_id, str(result))
        plain = self.service.queueJob(sample_jobs.add, self.portal, 40, 2)
        self.assertEqual(wait_for_result(plain), 42)

    def test_a_transient_error_of_the_job_fails_it_at_once(self):
        self.start_worker()
        job = self.service.queueJob(integrity_jobs.raise_transient, self.portal)
        wait_for_result(job)
        self.assertTrue(job.failed)
        self.assertEqual(job.attempts, 1)
        self.assertIn("the job's own transient error", str(job.result))
