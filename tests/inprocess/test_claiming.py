"""Which worker claims which job: each takes its own first, the others' only when they wait."""

from collective.zasync.worker import claiming
from collective.zasync.worker import filing
from collective.zasync.interfaces import ACTIVE
from collective.zasync.core.job import utcnow
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.keys import due_time
from collective.zasync.core.keys import waiting_key
from datetime import timedelta
from tests.support import sample_jobs
from tests.support.base import TwoWorkersPlayedTestCase

import transaction


class TestClaimsOfSeveralWorkers(TwoWorkersPlayedTestCase):

    def setUp(self):
        super().setUp()
        root = get_queue_root(self.portal._p_jar)
        self.queue = root.queues[""]
        self.queue.concurrency = None  # jobs in parallel (this test's database only)
        self.jobs, self.of_a, self.of_b = [], [], []
        # Job ids are random, and so is their share: queue until each worker has 5 at least.
        while len(self.jobs) < 20 or min(len(self.of_a), len(self.of_b)) < 5:
            self.jobs.append(self.service.queueJob(sample_jobs.noop, self.portal))
            self.now = max(job.queued for job in self.jobs) + timedelta(milliseconds=1)
            share = claiming.shares(root, "a", self.now)
            self.of_a = [job for job in self.jobs if share.mine(waiting_key(job), job)]
            self.of_b = [job for job in self.jobs if not share.mine(waiting_key(job), job)]
        transaction.commit()
        filing.file_inboxes(self.queue)
        transaction.commit()

    def claim(self, root, uuid, free, now=None):
        return [job.id for job in claiming.claim(root, root.workers[uuid], free, now or self.now)]

    def test_two_workers_claiming_at_once_take_their_own_jobs_without_conflict(self):
        tm_a, root_a = self.connection()
        tm_b, root_b = self.connection()
        self.assertEqual(self.claim(root_a, "a", 2), [job.id for job in self.of_a[:2]])  # oldest first
        self.assertEqual(self.claim(root_b, "b", 2), [job.id for job in self.of_b[:2]])
        tm_a.commit()
        tm_b.commit()  # no ConflictError: they wrote different jobs, and b no tree
        transaction.begin()
        self.assertEqual([job.status for job in self.of_a[:2] + self.of_b[:2]], [ACTIVE] * 4)

    def test_the_jobs_of_a_worker_with_idle_threads_wait_for_it(self):
        root = get_queue_root(self.portal._p_jar)
        # a takes its own and leaves b's: b has idle threads and will take them itself
        self.assertEqual(self.claim(root, "a", len(self.jobs)), [job.id for job in self.of_a])
        self.assertEqual(self.claim(root, "a", len(self.jobs)), [])
        # ... unless they waited longer than STEAL_AFTER: a looks again then, and takes the newest first
        self.assertEqual(claiming.next_due(root, self.now, "a"),
                         due_time(waiting_key(self.of_b[0])) + claiming.STEAL_AFTER)
        late = self.now + timedelta(seconds=claiming.STEAL_AFTER + 0.01)
        self.assertEqual(self.claim(root, "a", 2, late), [job.id for job in self.of_b[::-1][:2]])

    def test_the_jobs_of_a_busy_worker_are_taken_from_the_other_end(self):
        root = get_queue_root(self.portal._p_jar)
        self.assertEqual(self.claim(root, "a", len(self.of_a)), [job.id for job in self.of_a])
        self.assertEqual(self.claim(root, "b", 2), [job.id for job in self.of_b[:2]])  # b is busy now
        # a's own have run out: it takes b's, newest first, while b takes its oldest
        self.assertEqual(self.claim(root, "a", 2), [job.id for job in self.of_b[::-1][:2]])
        self.assertEqual(self.claim(root, "b", 1), [self.of_b[2].id])

    def test_one_worker_takes_every_job(self):
        root = get_queue_root(self.portal._p_jar)
        root.workers["b"].ping.time = self.now - timedelta(seconds=root.workers["b"].death_interval + 1)
        self.assertIsNone(claiming.shares(root, "a", self.now))  # b is silent: a is alone
        self.assertEqual(self.claim(root, "a", len(self.jobs)), [job.id for job in self.jobs])

    def test_only_the_finisher_files_inboxes(self):
        root = get_queue_root(self.portal._p_jar)
        job = self.service.queueJob(sample_jobs.noop, self.portal)
        transaction.commit()
        filing.tidy(root, "b")  # b files only inboxes the finisher neglects (see test_joblog)
        self.assertNotIn(job.id, self.queue.jobs)
        filing.tidy(root, "a")
        self.assertIn(job.id, self.queue.jobs)


class TestLimitedSlotsGoRound(TwoWorkersPlayedTestCase):
    """Jobs that take a slot of a limit are claimed for idle threads only, while other workers live."""

    def setUp(self):
        super().setUp()
        self.root = get_queue_root(self.portal._p_jar)
        self.queue = self.root.queues[""]

    def queue_jobs(self, count, **options):
        jobs = [self.service.queueJob(sample_jobs.noop, self.portal, **options) for _ in range(count)]
        transaction.commit()
        filing.file_inboxes(self.queue)
        transaction.commit()
        self.now = max(job.queued for job in jobs) + timedelta(milliseconds=1)
        return jobs

    def claim(self, uuid, free, idle):
        return claiming.claim(self.root, self.root.workers[uuid], free, self.now, idle=idle)

    def share_of(self, job):
        """The worker whose share ``job`` is in."""
        return "a" if claiming.shares(self.root, "a", self.now).mine(waiting_key(job), job) else "b"

    def test_a_worker_claiming_ahead_leaves_the_slots_of_a_queue_it_cannot_run_now(self):
        self.queue.concurrency = 6
        jobs = self.queue_jobs(10)
        # a holds 2 threads, and may claim 16 ahead of them: it takes 2 slots, not 6
        self.assertEqual([job.id for job in self.claim("a", 16, idle=2)], [job.id for job in jobs[:2]])
        self.assertEqual(self.claim("a", 14, idle=0), [])
        # so b's idle threads get slots, and 2 are left for whoever has a thread free first
        self.assertEqual([job.id for job in self.claim("b", 16, idle=2)], [job.id for job in jobs[2:4]])
        self.assertEqual([job.id for job in self.claim("b", 14, idle=1)], [jobs[4].id])

    def test_alone_it_claims_ahead_as_far_as_the_limit(self):
        self.queue.concurrency = 6
        jobs = self.queue_jobs(10)
        self.root.workers["b"].ping.time = self.now - timedelta(seconds=self.root.workers["b"].death_interval + 1)
        self.assertEqual([job.id for job in self.claim("a", 16, idle=2)], [job.id for job in jobs[:6]])

    def test_only_the_jobs_under_a_quota_wait_for_an_idle_thread(self):
        self.queue.concurrency = None
        self.queue.quotas["pdf"] = 4
        # Job ids are random, and so is their share: queue until each worker has one at least
        # (a worker's idle thread takes an under-quota job of its own share only).
        under_quota = []
        while len(under_quota) < 6 or len({self.share_of(job) for job in under_quota}) < 2:
            under_quota += self.queue_jobs(1, quota_names=("pdf",))
        free = self.queue_jobs(4)
        claimed = self.claim("a", 16, idle=1) + self.claim("b", 16, idle=1)
        self.assertEqual(sum(job in under_quota for job in claimed), 2)  # one per idle thread
        self.assertEqual(sum(job in free for job in claimed), 4)  # the others as far as shares go
