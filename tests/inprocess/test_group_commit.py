"""Group commit: a job that wrote nothing has its completion committed by its dispatcher.

Which transaction completed which job is read from the storage itself: its
iterator over the transactions committed since the jobs were queued, each
looked at through a historical connection.
"""

from collective.zasync.interfaces import COMPLETED
from collective.zasync.interfaces import IJobSuccess
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from collective.zasync.worker.settings import WorkerSettings
from tests.support import integrity_jobs
from tests.support import sample_jobs
from tests.support.base import OwnWorkerTestCase
from tests.support.base import WorkerTestCase
from ZODB.utils import p64
from ZODB.utils import u64
from zope.component import getGlobalSiteManager

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
    def setUp(self):
        super().setUp()
        hooks_run.clear()

    def run_jobs(self, *calls, **settings):
        """Queue ``(func, args)`` calls, run them with a fresh worker (that claims several
        jobs ahead of its thread), return (jobs, its stats, the transactions that completed
        them: {job: (tid, description)}). In a queue without a limit: the default queue
        runs one job at a time, claimed one per pass."""
        self.service.createQueue("parallel")
        jobs = [self.service.queueJobInQueue("parallel", (), func, self.portal, *args) for func, args in calls]
        transaction.commit()
        since = p64(u64(self.layer["zodbDB"].storage.lastTransaction()) + 1)
        worker = self.start_worker(average_run=0.001, **settings)
        wait_until(lambda: transaction.begin() and all(job.status == COMPLETED for job in jobs),
                   "the jobs to complete")
        worker.stop()
        transaction.begin()
        return jobs, worker.stats, self.completed_by(jobs, since)

    def completed_by(self, jobs, since):
        """{job: (tid, description) of the transaction in which it became COMPLETED}."""
        db = self.layer["zodbDB"]
        found = {}
        for txn in db.storage.iterator(start=since):
            written = {record.oid for record in txn}
            conn = db.open(at=txn.tid)  # the database as this transaction left it
            try:
                for job in jobs:
                    if job not in found and job._p_oid in written and conn.get(job._p_oid).status == COMPLETED:
                        found[job] = (txn.tid, txn.description.decode())
            finally:
                conn.close()
        return found

    def test_jobs_that_wrote_nothing_are_committed_by_the_dispatcher(self):
        jobs, stats, completed_by = self.run_jobs(*[(sample_jobs.add, (n, 1)) for n in range(6)])
        self.assertEqual([job.result for job in jobs], [1, 2, 3, 4, 5, 6])
        self.assertEqual(stats["group-committed"], 6)
        self.assertEqual(set(completed_by), set(jobs))
        commits = dict(completed_by.values())  # tid -> description
        self.assertTrue(all(text.startswith("collective.zasync worker ") for text in commits.values()), commits)
        self.assertLess(len(commits), len(jobs), "no commit completed several jobs: %s" % commits)
        for job in jobs:
            self.assertEqual((job.attempts, job.retries, job.events_fired), (1, 0, True))
            self.assertLessEqual(job.started, job.ended)
            self.assertIn(job, list(self.service.getQueues()["parallel"].completed.values()))

    def test_jobs_with_effects_commit_them_with_their_completion(self):
        jobs, stats, completed_by = self.run_jobs(
            (sample_jobs.create_document, ("made-by-a-job",)),  # writes the site
            (sample_jobs.return_context, ()),  # its result refers to a persistent object
            (with_after_commit_hook, ()),  # a commit hook: its transaction must commit
        )
        self.assertEqual(stats["group-committed"], 0)
        self.assert_each_committed_itself(jobs, completed_by)
        self.assertIn("made-by-a-job", self.portal.objectIds())
        self.assertIs(jobs[1].result, self.portal.aq_base)
        self.assertEqual((jobs[2].result, hooks_run), ("hooked", [True]))

    def test_off_every_job_commits_itself(self):
        jobs, stats, completed_by = self.run_jobs(*[(sample_jobs.add, (n, 1)) for n in range(3)],
                                                  group_commit=False)
        self.assertEqual(([job.result for job in jobs], stats["group-committed"]), ([1, 2, 3], 0))
        self.assert_each_committed_itself(jobs, completed_by)

    def assert_each_committed_itself(self, jobs, completed_by):
        """Each job became COMPLETED in a transaction of its own, named after it (history.py)."""
        self.assertEqual(set(completed_by), set(jobs))
        self.assertEqual(len({tid for tid, _ in completed_by.values()}), len(jobs))
        for job, (_tid, text) in completed_by.items():
            self.assertTrue(text.startswith("collective.zasync job %s: " % job.id), text)

    def test_a_job_ending_while_its_worker_stops_is_recorded_once(self):
        started.clear()
        job = self.service.queueJob(wait_a_moment, self.portal)
        transaction.commit()
        since = p64(u64(self.layer["zodbDB"].storage.lastTransaction()) + 1)
        worker = self.start_worker()
        self.assertTrue(started.wait(30))
        worker.stop()  # (its loop ends first: the job's outcome is written as it unregisters)
        transaction.begin()
        self.assertEqual((job.status, job.result, job.attempts), (COMPLETED, "done while stopping", 1))
        self.assertEqual(worker.stats["group-committed"], 1)
        [(_tid, text)] = self.completed_by([job], since).values()
        self.assertEqual(text, "collective.zasync worker %s: unregister" % self.layer.worker_uuid)

    def test_the_setting_is_on_or_off(self):
        self.assertFalse(WorkerSettings.from_product_config({"group-commit": "off"}, {}).group_commit)
        self.assertTrue(WorkerSettings.from_product_config({}, {"ZASYNC_GROUP_COMMIT": "on"}).group_commit)
        with self.assertRaisesRegex(ValueError, "group-commit must be on or off, not 'maybe'"):
            WorkerSettings.from_product_config({"group-commit": "maybe"}, {})


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
