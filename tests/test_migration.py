"""A site that ran 1.0.0a1 keeps its jobs: pending, delayed, running and finished ones.

The test writes the 1.0.0a1 structures (JobList inbox and done lists, the
pending BTree keyed by begin_after or 0, a worker record with JobList
``active`` and ``done``), then lets a worker of this release start on them.
"""

from BTrees.Length import Length
from BTrees.OOBTree import OOBTree
from tests import sample_jobs
from collective.zasync.interfaces import ACTIVE
from collective.zasync.interfaces import COMPLETED
from collective.zasync.interfaces import PENDING
from collective.zasync.legacy import JobList
from collective.zasync.migration import migrate
from collective.zasync.queue import get_queue_root
from collective.zasync.queue import LAYOUT
from collective.zasync.records import WorkerRecord
from collective.zasync.service import build_job
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from datetime import timedelta
from collective.zasync.job import utcnow
from tests.base import OwnWorkerTestCase

import transaction


def layout1_key(job):
    when = job.begin_after.timestamp() if job.begin_after is not None else 0
    return "%016d.%s" % (int(when * 1_000_000), job.id)


class TestLayout1(OwnWorkerTestCase):
    def job(self, *args, status=PENDING, **attributes):
        job = build_job(sample_jobs.add, self.portal, args, {})
        job.status = status
        for name, value in attributes.items():
            setattr(job, name, value)
        return job

    def write_layout1(self):
        """The default queue and a worker as 1.0.0a1 left them; return the jobs by place."""
        root = get_queue_root(self.portal._p_jar)
        queue = root.queues[""]
        jobs = {
            "inbox": self.job(1),
            "pending": self.job(2),
            "delayed": self.job(3, begin_after=utcnow() + timedelta(seconds=2)),
            "running": self.job(4, status=ACTIVE, worker_uuid="old-worker", claim_token=1),
            "done": self.job(5),
        }
        jobs["done"].finish(5)
        jobs["done"].complete()
        for name in ("inboxes", "inbox_count", "waiting", "waiting_count"):
            delattr(queue, name)
        queue.inbox = JobList()
        queue.inbox.append(jobs["inbox"])
        queue.pending_jobs = OOBTree()
        for name in ("pending", "delayed"):
            queue.pending_jobs[layout1_key(jobs[name])] = jobs[name]
            queue.jobs[jobs[name].id] = jobs[name]
        queue.pending_count = Length(2)
        queue.done = JobList()
        record = WorkerRecord("old-worker", 1)
        del record.claimed  # (records of layout 1 had neither claimed jobs nor logs of finished ones)
        record.active = JobList()
        record.active.append(jobs["running"])
        record.done = JobList()
        record.done.append(jobs["done"])
        root.workers["old-worker"] = record
        root.layout = 1
        transaction.commit()
        return jobs

    def test_a_worker_of_this_release_runs_every_job_of_layout1(self):
        jobs = self.write_layout1()
        self.start_worker(threads=2)
        results = {name: wait_for_result(job, seconds=30) for name, job in jobs.items()}
        self.assertEqual(results, {"inbox": 1, "pending": 2, "delayed": 3, "running": 4, "done": 5})
        root = get_queue_root(self.portal._p_jar)
        queue = root.queues[""]
        self.assertEqual(root.layout, LAYOUT)
        self.assertNotIn("old-worker", root.workers)
        wait_until(lambda: queue.completed_count() == 5, "the five jobs to be filed as completed")
        self.assertEqual({job.status for job in queue.completed.values()}, {COMPLETED})
        for name in ("inbox", "pending_jobs", "pending_count", "done"):
            self.assertNotIn(name, queue.__dict__)

    def test_the_first_queued_job_migrates_when_no_worker_has_yet(self):
        jobs = self.write_layout1()
        new = self.service.queueJob(sample_jobs.add, self.portal, 6)
        transaction.commit()
        root = get_queue_root(self.portal._p_jar)
        self.assertEqual(root.layout, LAYOUT)
        self.assertFalse(migrate(root), "nothing left to do")
        pending = {job.id for job in root.queues[""].pending()}
        self.assertEqual(pending, {jobs[name].id for name in ("inbox", "pending", "delayed", "running")} | {new.id})
        self.start_worker()
        self.assertEqual(wait_for_result(new), 6)

    def test_upgrade_step(self):
        self.write_layout1()
        setup = self.portal.portal_setup
        setup.setLastVersionForProfile("collective.zasync:default", "1000")
        upgrades = setup.listUpgrades("collective.zasync:default")
        titles = [step["title"] for step in upgrades]
        self.assertEqual(titles[0], "collective.zasync 1.0: settings and queue layout")
        self.assertIn("collective.zasync: My jobs and the jobs of a content item", titles)
        self.assertIn("collective.zasync 1.0: the health check setting", titles)
        self.assertEqual(titles[-1], "collective.zasync: each site's jobs, items by database and oid")
        setup.upgradeProfile("collective.zasync:default")
        self.assertEqual(get_queue_root(self.portal._p_jar).layout, LAYOUT)
        self.assertEqual(setup.getLastVersionForProfile("collective.zasync:default"),
                         (setup.getVersionForProfile("collective.zasync:default"),))
