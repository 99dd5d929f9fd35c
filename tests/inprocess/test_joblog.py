"""Job logs: one writer appends, dispatchers read and keep their place; no commit writes what another writes.

Each test commits from two connections of the same database at once: a
ConflictError would mean an object written by both, which a stock ZEO server
could not resolve (JobLog and ReadMark have no conflict resolution).
"""

from tests.support import sample_jobs
from collective.zasync.worker import claiming
from collective.zasync.worker import filing
from collective.zasync.core.job import utcnow
from collective.zasync.client.reading import jobs_in_state
from collective.zasync.client.reading import page
from collective.zasync.client.reading import queue_counts
from collective.zasync.interfaces import PENDING
from collective.zasync.core.joblog import JobLog
from collective.zasync.defaults import PAGE_SIZE
from collective.zasync.defaults import PRUNE_EVERY
from collective.zasync.defaults import PRUNE_LIMIT
from collective.zasync.defaults import UNFILED_LOOKED_AT
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.retention import retire_idle_inboxes
from collective.zasync.core.queue import writer_id
from collective.zasync.testing import wait_for_result
from collective.zasync.core import lifecycle
from datetime import timedelta
from tests.support.base import OwnWorkerTestCase
from tests.support.base import TwoWorkersPlayedTestCase
from ZODB.POSException import ConflictError
from unittest import mock

import time
import transaction
import unittest


class TestJobLog(unittest.TestCase):
    def test_read_in_order_mark_and_prune(self):
        log = JobLog("writer")
        for n in range(5):
            log.append("k%d" % n, "job %d" % n)
        self.assertEqual(log.unread(2), [("k0", "job 0"), ("k1", "job 1")])
        log.mark_read(log.unread(2))
        self.assertEqual((log.unread_count(), log.get_unread("k1"), log.get_unread("k2")), (3, None, "job 2"))
        for n in range(5, PRUNE_EVERY):
            log.append("k%d" % n, "job %d" % n)  # between prunings, the writer reads no mark
        self.assertEqual(len(log.entries), PRUNE_EVERY)
        log.append("k%d" % PRUNE_EVERY, "last")  # then drops what was read
        self.assertEqual(list(log.entries.keys())[:2], ["k2", "k3"])
        self.assertEqual(len(log.unread()), PRUNE_EVERY - 1)

    def test_keys_must_increase(self):
        log = JobLog("writer")
        log.append("b", 1)
        with self.assertRaises(ValueError):
            log.append("a", 2)

    def test_pruning_is_bounded(self):
        log = JobLog("writer")
        appended = 2 * PRUNE_LIMIT
        for n in range(appended):
            log.append("k%04d" % n, n)
        log.mark_read(log.unread())
        while log.count % PRUNE_EVERY:
            log.append("k%04d" % log.count, log.count)
            appended += 1
        log.append("k%04d" % log.count, log.count)
        self.assertEqual(len(log.entries), appended - PRUNE_LIMIT + 1)

    def test_only_a_log_nobody_reads_counts_as_neglected(self):
        log = JobLog("writer")
        old = time.time() - 10 * filing.NEGLECTED
        for n in range(3):  # a backlog queued long ago (a job id starts with hex microseconds)
            log.append("%014x%d" % (int(old * 1_000_000), n), "job %d" % n)
        self.assertTrue(filing._neglected(log))  # never read: any dispatcher files it
        log.mark_read(log.unread(1))  # its owner files it, a batch per pass ...
        self.assertFalse(filing._neglected(log))  # ... so the others leave it to the owner
        log.mark.read_at = old  # until the owner stops reading it
        self.assertTrue(filing._neglected(log))


class TestInboxesNeverConflict(OwnWorkerTestCase):
    """No worker runs: the test plays the dispatcher's part with a second connection."""

    def other_connection(self):
        tm = transaction.TransactionManager()
        conn = self.layer["zodbDB"].open(transaction_manager=tm)
        self.addCleanup(conn.close)
        self.addCleanup(tm.abort)
        return tm, get_queue_root(conn).queues[""]

    def test_each_connection_appends_to_its_own_inbox(self):
        transaction.commit()
        tm, other = self.other_connection()
        mine = self.service.queueJob(sample_jobs.add, self.portal, 1)
        theirs = other.put(mine.derive())  # another request, at the same time
        tm.commit()
        transaction.commit()  # no ConflictError
        queue = self.service.getQueues()[""]
        self.assertEqual(len(queue.inboxes), 2)
        self.assertEqual({job.id for job in queue.pending()}, {mine.id, theirs.id})

    def test_reading_an_inbox_while_its_writer_appends(self):
        first = self.service.queueJob(sample_jobs.add, self.portal, 1)
        transaction.commit()
        second = self.service.queueJob(sample_jobs.add, self.portal, 2)  # not committed yet
        tm, queue = self.other_connection()
        [inbox] = queue.inboxes.values()
        pairs = inbox.unread()
        self.assertEqual([job.id for _key, job in pairs], [first.id])
        inbox.mark_read(pairs)  # what a dispatcher does after filing them
        tm.commit()
        transaction.commit()  # the writer's append: no ConflictError
        transaction.begin()
        [inbox] = self.service.getQueues()[""].inboxes.values()
        self.assertEqual([job.id for _key, job in inbox.unread()], [second.id])
        self.assertEqual(second.status, PENDING)

    def test_a_retired_inbox_never_loses_a_job(self):
        self.service.queueJob(sample_jobs.add, self.portal, 1)
        transaction.commit()
        tm, queue = self.other_connection()
        [inbox] = queue.inboxes.values()
        inbox.mark_read(inbox.unread())  # read to the end ...
        inbox.written -= timedelta(days=1)  # ... and idle
        tm.commit()
        # The writer appends while a dispatcher retires its inbox: one of the
        # two commits fails, and the job is never left in a dropped inbox.
        late = self.service.queueJob(sample_jobs.add, self.portal, 41, b=1)
        tm.begin()
        self.assertEqual(retire_idle_inboxes(queue, inbox.written + timedelta(days=2)), 1)
        tm.commit()
        with self.assertRaises(ConflictError):
            transaction.commit()
        transaction.abort()
        # the request is retried (as the publisher does): a new inbox takes it
        late = self.service.queueJob(sample_jobs.add, self.portal, 41, b=1)
        transaction.commit()
        queue = self.service.getQueues()[""]
        self.assertEqual(list(queue.inboxes), [writer_id(queue._p_jar)])
        self.start_worker()
        self.assertEqual(wait_for_result(late), 42)


class TestDoneLogs(TwoWorkersPlayedTestCase):
    """Finished jobs: each worker moves its own to its done log, one dispatcher files them all."""

    def setUp(self):
        super().setUp()
        self.jobs = [self.service.queueJob(sample_jobs.add, self.portal, n) for n in range(3)]
        self.late = self.service.queueJob(sample_jobs.add, self.portal, 41)
        transaction.commit()
        root = get_queue_root(self.portal._p_jar)
        filing.file_inboxes(root.queues[""])
        for job in self.jobs + [self.late]:  # b runs them (one at a time: the default queue's concurrency)
            self.assertEqual(claiming.claim(root, root.workers["b"], 1, utcnow()), [job])
            if job is not self.late:
                job.finish(job.args[0] + 1)  # ... and its threads complete them
                job.complete()
        transaction.commit()

    def test_one_finisher_files_what_every_worker_completed_without_conflicts(self):
        root = get_queue_root(self.portal._p_jar)
        self.assertEqual((filing.finisher(root, "a"), filing.finisher(root, "b")), (True, False))
        filing.file_completed(root, root.workers["b"])  # b's pass: out of its claimed jobs ...
        self.assertFalse(filing.file_done_logs(root, filing.finisher(root, "b")))  # ... not filed by b
        transaction.commit()
        queue = root.queues[""]
        self.assertEqual((list(root.workers["b"].claimed), queue.completed_count()), ([self.late.id], 0))
        # the control panel lists them as completed all the same
        self.assertEqual({job.id for job in jobs_in_state(root, queue, "completed")},
                         {job.id for job in self.jobs})
        tm, other = self.connection()  # a's pass files them ...
        filing.file_done_logs(other, filing.finisher(other, "a"))
        # ... while b moves a job it completed meanwhile to its done log
        late = self.late
        late.finish(42)
        late.complete()
        filing.file_completed(root, root.workers["b"])
        tm.commit()
        transaction.commit()  # no ConflictError: a wrote the read mark, b the log
        transaction.begin()
        self.assertEqual([job.id for job in queue.finished()], [job.id for job in reversed(self.jobs)])
        self.assertEqual([job.id for _key, job in root.workers["b"].done.unread()], [late.id])
        filing.file_done_logs(root, True)
        self.assertEqual(queue.completed_count(), 4)
        self.assertEqual(next(queue.finished()), late)

    def test_a_worker_taken_back_has_its_done_log_filed(self):
        root = get_queue_root(self.portal._p_jar)
        filing.file_completed(root, root.workers["b"])
        filing.take_back(root, root.workers["b"])  # stopped, or declared dead
        queue = root.queues[""]
        self.assertEqual((queue.completed_count(), root.workers["b"].done.unread_count()), (3, 0))
        lifecycle.file_done(root, self.jobs[0])  # once more (retried, finished again meanwhile)
        self.assertEqual((queue.completed_count(), len(queue.completed)), (3, 3))

    def test_claims_leave_waiting_to_the_finisher(self):
        root = get_queue_root(self.portal._p_jar)
        queue = root.queues[""]
        filing.take_back(root, root.workers["b"])  # b stops: the job it was running waits again
        filing.tidy(root, "a")  # the finisher deletes the entries that b claimed
        self.assertEqual((list(queue.waiting.values()), queue.waiting_count()), ([self.late], 1))
        second = self.service.queueJob(sample_jobs.add, self.portal, 1)
        transaction.commit()
        filing.file_inboxes(queue)
        queue.concurrency = None  # jobs in parallel (this test's database only)
        self.enterContext(mock.patch.object(claiming, "STEAL_AFTER", 0.0))  # any worker takes any job
        # (claimed before the second job was due: of two due jobs, b would take first
        # whichever hashes to it, and job ids are random)
        before_second = second.queued - timedelta(microseconds=1)
        self.assertEqual(claiming.claim(root, root.workers["b"], 1, before_second), [self.late])
        # b leaves its entry in waiting; it is passed over, and not listed as pending
        self.assertEqual((len(queue.waiting), queue.waiting_count()), (2, 2))
        self.assertEqual(list(queue.pending()), [second])
        self.assertEqual(claiming.claim(root, root.workers["a"], 2, utcnow()), [second])
        self.assertEqual((len(queue.waiting), queue.waiting_count()), (1, 1))  # a deletes its own
        filing.tidy(root, "a")
        self.assertEqual((len(queue.waiting), queue.waiting_count()), (0, 0))
        transaction.commit()


class TestListingUnfiledJobs(OwnWorkerTestCase):
    """No worker runs: queued jobs stay in their inbox, as many as requests queue."""

    def test_delayed_jobs_are_looked_for_where_they_are_counted(self):
        # A million jobs in an inbox: listing the delayed ones must not read them all. The
        # listing looks where the counts look (the first UNFILED_LOOKED_AT); the rest count as pending.
        first = self.service.queueJobWithDelay(None, utcnow() + timedelta(hours=1), sample_jobs.add, self.portal, 1)
        for n in range(UNFILED_LOOKED_AT):
            self.service.queueJob(sample_jobs.add, self.portal, n)
        self.service.queueJobWithDelay(None, utcnow() + timedelta(hours=1), sample_jobs.add, self.portal, 2)
        transaction.commit()
        root = get_queue_root(self.portal._p_jar)
        queue = root.queues[""]
        counts = queue_counts(root, queue)
        self.assertEqual((counts["delayed"], counts["pending"]), (1, UNFILED_LOOKED_AT + 1))
        self.assertEqual(list(jobs_in_state(root, queue, "delayed")), [first])
        jobs, more = page(jobs_in_state(root, queue, "pending"))
        self.assertEqual((len(jobs), more), (PAGE_SIZE, True))
