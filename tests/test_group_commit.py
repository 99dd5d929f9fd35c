"""Group commit: a job that wrote nothing has its completion committed by its dispatcher."""

from collective.zasync.interfaces import COMPLETED
from collective.zasync.testing import wait_until
from collective.zasync.workersettings import WorkerSettings
from tests import sample_jobs
from tests.base import OwnWorkerTestCase

import threading
import transaction


hooks_run = []
started = threading.Event()


def with_after_commit_hook(context):
    """Write nothing, but ask to be told of the commit (as a mail queue or an index might)."""
    transaction.get().addAfterCommitHook(lambda ok: hooks_run.append(ok))
    return "hooked"


def wait_a_moment(context):
    started.set()
    import time

    time.sleep(0.5)
    return "done while stopping"


class TestGroupCommit(OwnWorkerTestCase):

    def run_jobs(self, *calls, **settings):
        """Queue ``(func, args)`` calls, run them with a fresh worker, return (jobs, its stats)."""
        jobs = [self.service.queueJob(func, self.portal, *args) for func, args in calls]
        transaction.commit()
        worker = self.start_worker(**settings)
        wait_until(lambda: transaction.begin() and all(job.status == COMPLETED for job in jobs),
                   "the jobs to complete")
        worker.stop()
        transaction.begin()
        return jobs, worker.stats

    def test_jobs_that_wrote_nothing_are_committed_by_the_dispatcher(self):
        jobs, stats = self.run_jobs(*[(sample_jobs.add, (n, 1)) for n in range(6)])
        self.assertEqual([job.result for job in jobs], [1, 2, 3, 4, 5, 6])
        self.assertEqual(stats["group-committed"], 6)
        for job in jobs:
            self.assertEqual((job.attempts, job.retries, job.events_fired), (1, 0, True))
            self.assertLessEqual(job.started, job.ended)
            self.assertIn(job, list(self.service.getQueues()[""].completed.values()))

    def test_jobs_with_effects_commit_them_with_their_completion(self):
        jobs, stats = self.run_jobs(
            (sample_jobs.create_document, ("made-by-a-job",)),  # writes the site
            (sample_jobs.return_context, ()),  # its result refers to a persistent object
            (with_after_commit_hook, ()),  # a commit hook: its transaction must commit
        )
        self.assertEqual(stats["group-committed"], 0)
        self.assertIn("made-by-a-job", self.portal.objectIds())
        self.assertIs(jobs[1].result, self.portal.aq_base)
        self.assertEqual((jobs[2].result, hooks_run), ("hooked", [True]))

    def test_off_every_job_commits_itself(self):
        jobs, stats = self.run_jobs((sample_jobs.add, (1, 1)), group_commit=False)
        self.assertEqual((jobs[0].result, stats["group-committed"]), (2, 0))

    def test_a_job_ending_while_its_worker_stops_is_recorded_once(self):
        started.clear()
        job = self.service.queueJob(wait_a_moment, self.portal)
        transaction.commit()
        worker = self.start_worker()
        self.assertTrue(started.wait(30))
        worker.stop()  # (its loop ends first: the job's outcome is written as it unregisters)
        transaction.begin()
        self.assertEqual((job.status, job.result, job.attempts), (COMPLETED, "done while stopping", 1))
        self.assertEqual(worker.stats["group-committed"], 1)

    def test_the_setting_is_on_or_off(self):
        self.assertFalse(WorkerSettings.from_product_config({"group-commit": "off"}, {}).group_commit)
        self.assertTrue(WorkerSettings.from_product_config({}, {"ZASYNC_GROUP_COMMIT": "on"}).group_commit)
        with self.assertRaisesRegex(ValueError, "group-commit must be on or off, not 'maybe'"):
            WorkerSettings.from_product_config({"group-commit": "maybe"}, {})
