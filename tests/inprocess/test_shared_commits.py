"""Shared commits (worker/grouping.py): short jobs of one kind, site and user commit together.

Each test queues jobs that modify Plone documents, runs them with a worker whose jobs take
turns (as short jobs that compute do), and reads from the storage which transaction
completed each job and which wrote each document: a job's effects and its completion are in
the same transaction, always.
"""

from collective.zasync.interfaces import COMPLETED
from collective.zasync.testing import wait_until
from collective.zasync.worker import grouping
from collective.zasync.worker.dispatcher import Dispatcher
from collective.zasync.worker.settings import WorkerSettings
from collective.zasync.worker.turns import Turns
from tests.support.base import OwnWorkerTestCase
from ZODB.POSException import ConflictError
from ZODB.utils import p64
from ZODB.utils import u64

import transaction


calls = []  # (document id, title) of every call of the job functions below


def retitle(context, title):
    """Modify a document and reindex it, as the benchmark's document jobs do."""
    calls.append((context.getId(), title))
    context.setTitle(title)
    context.reindexObject(idxs=["Title"])
    if title == "fail":
        raise ValueError("this one fails")
    if title == "commit":
        transaction.commit()  # (as checkpoint() does)
    if title == "hook":
        transaction.get().addAfterCommitHook(lambda ok, doc=context.getId(): calls.append((doc, "hook %s" % ok)))
    return title


class TestSharedCommits(OwnWorkerTestCase):

    def setUp(self):
        super().setUp()
        calls.clear()
        # A group lasts 60 ms at most: long enough for several document jobs on a quiet machine,
        # not on a busy one. Here, time never decides which jobs share a commit.
        seconds, grouping.GROUP_SECONDS = grouping.GROUP_SECONDS, 600.0
        self.addCleanup(setattr, grouping, "GROUP_SECONDS", seconds)
        self.service.createQueue("parallel")
        for number in range(12):
            self.portal.invokeFactory("Document", "doc-%d" % number, title="Before")
        transaction.commit()

    def run_titles(self, titles, **settings):
        """Queue one retitle job per title (document n gets titles[n]); run them with a worker
        whose jobs take turns; return (jobs, worker stats, {job: tid that completed it},
        {document id: tids that wrote it})."""
        jobs = [self.service.queueJobInQueue("parallel", (), retitle, self.portal["doc-%d" % number], title)
                for number, title in enumerate(titles)]
        transaction.commit()
        since = p64(u64(self.layer["zodbDB"].storage.lastTransaction()) + 1)
        defaults = dict(threads=1, poll_interval=0.2, ping_interval=1.0, death_interval=30.0,
                        max_retries=3, stop_timeout=10.0)
        worker = self.worker = Dispatcher(self.layer["zodbDB"], self.layer.worker_uuid,
                                          WorkerSettings(**dict(defaults, **settings)))
        worker.holdings.average_run = 0.001  # short jobs: claimed several at a time
        worker.turns = Turns(busy=0.0, short=60.0)  # they take turns, however long a test's job takes
        worker.turns.seconds = 0.0
        worker.start()
        wait_until(lambda: transaction.begin() and all(job.status == COMPLETED for job in jobs),
                   "the jobs to end")
        worker.stop()
        transaction.begin()
        return jobs, worker.stats, *self.history(jobs, since)

    def history(self, jobs, since):
        db = self.layer["zodbDB"]
        completed, wrote = {}, {}
        documents = {self.portal["doc-%d" % number]._p_oid: "doc-%d" % number for number in range(12)}
        for txn in db.storage.iterator(start=since):
            written = {record.oid for record in txn}
            for oid in written & set(documents):
                wrote.setdefault(documents[oid], []).append(txn.tid)
            conn = db.open(at=txn.tid)
            try:
                for job in jobs:
                    if job not in completed and job._p_oid in written and conn.get(job._p_oid).status == COMPLETED:
                        completed[job] = txn.tid
            finally:
                conn.close()
        return completed, wrote

    def assert_effects_with_completion(self, jobs, completed, wrote):
        for number, job in enumerate(jobs):
            if not job.failed:
                self.assertEqual(wrote["doc-%d" % number], [completed[job]],
                                 "job %d's document was written once, by the commit that completed it" % number)

    def test_jobs_of_one_kind_share_commits(self):
        titles = ["Title %d" % number for number in range(12)]
        jobs, stats, completed, wrote = self.run_titles(titles)
        self.assertEqual([job.result for job in jobs], titles)
        self.assertEqual([self.portal["doc-%d" % n].Title() for n in range(12)], titles)
        self.assertEqual(len(self.portal.portal_catalog(Title="Title 7")), 1)
        self.assert_effects_with_completion(jobs, completed, wrote)
        self.assertLess(len(set(completed.values())), len(jobs), "no commit completed several jobs")
        self.assertGreater(stats["jobs in shared commits"], stats["shared commits"])
        self.assertEqual(sorted(calls), sorted(("doc-%d" % n, t) for n, t in enumerate(titles)),
                         "every job ran once")

    def test_a_failing_job_fails_alone(self):
        titles = ["a", "b", "c", "fail", "e", "f"]
        jobs, stats, completed, wrote = self.run_titles(titles)
        failing = jobs[3]
        self.assertTrue(failing.failed)
        self.assertIn("this one fails", str(failing.result))
        self.assertEqual(self.portal["doc-3"].Title(), "Before")  # aborted, both times
        self.assertEqual(len(self.portal.portal_catalog(Title="fail")), 0)
        others = [job for job in jobs if job is not failing]
        self.assertEqual([job.failed for job in others], [False] * 5)
        self.assertEqual([self.portal["doc-%d" % n].Title() for n in (0, 1, 2, 4, 5)], ["a", "b", "c", "e", "f"])
        self.assert_effects_with_completion(jobs, completed, wrote)
        self.assertNotIn("doc-3", wrote)
        # It ran in the group, then alone; the members before it too (their writes were
        # aborted with its own); those after it once.
        self.assertEqual([calls.count(("doc-%d" % n, t)) for n, t in enumerate(titles)], [2, 2, 2, 2, 1, 1])
        self.assertEqual([job.retries for job in jobs], [1, 1, 1, 0, 0, 0])  # (they say they ran again)

    def test_a_group_whose_commit_conflicts_runs_its_members_again_alone(self):
        real_commit, refused = grouping.commit, []

        def commit_refused_once():
            if not refused:
                refused.append(True)
                raise ConflictError("a conflict at the group's commit")
            real_commit()

        grouping.commit = commit_refused_once
        self.addCleanup(setattr, grouping, "commit", real_commit)
        titles = ["Title %d" % number for number in range(6)]
        jobs, stats, completed, wrote = self.run_titles(titles)
        self.assertEqual(refused, [True])
        self.assertEqual([job.status for job in jobs], [COMPLETED] * 6)
        self.assertEqual([self.portal["doc-%d" % n].Title() for n in range(6)], titles)
        self.assert_effects_with_completion(jobs, completed, wrote)
        # Those whose effects were lost ran again; none ran more than twice.
        again = [doc for doc, _title in set(calls) if calls.count((doc, _title)) == 2]
        self.assertTrue(again)
        self.assertEqual(len(calls), 6 + len(again))
        # Each says it ran again (a conflict retry), the others do not.
        self.assertEqual(sorted("doc-%d" % n for n, job in enumerate(jobs) if job.retries == 1), sorted(again))
        self.assertEqual([job.attempts for job in jobs], [1] * 6)

    def test_a_job_that_commits_by_itself_takes_its_group_with_it(self):
        titles = ["a", "b", "commit", "d", "e"]
        jobs, stats, completed, wrote = self.run_titles(titles)
        self.assertEqual([job.status for job in jobs], [COMPLETED] * 5)
        self.assertEqual([self.portal["doc-%d" % n].Title() for n in range(5)], titles)
        # The members before it committed with its first commit, their completions with them.
        self.assertEqual(completed[jobs[0]], wrote["doc-2"][0])
        self.assertEqual(completed[jobs[1]], wrote["doc-2"][0])
        for number in (0, 1, 3, 4):
            self.assertEqual(wrote["doc-%d" % number], [completed[jobs[number]]])
        self.assertEqual(len(calls), 5)

    def test_a_job_with_a_commit_hook_commits_in_its_environment(self):
        titles = ["a", "b", "hook", "d"]
        jobs, stats, completed, wrote = self.run_titles(titles)
        self.assertEqual([job.status for job in jobs], [COMPLETED] * 4)
        self.assertIn(("doc-2", "hook True"), calls)
        self.assert_effects_with_completion(jobs, completed, wrote)
        self.assertEqual(completed[jobs[0]], completed[jobs[2]])  # (the members before it, with it)

    def test_off_with_group_commit_off(self):
        titles = ["Title %d" % number for number in range(4)]
        jobs, stats, completed, wrote = self.run_titles(titles, group_commit=False)
        self.assertEqual(len(set(completed.values())), 4)
        self.assertEqual(stats["shared commits"], 0)
        self.assert_effects_with_completion(jobs, completed, wrote)
