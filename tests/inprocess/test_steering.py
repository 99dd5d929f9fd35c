"""Steering: after jobs of one function conflicted, they run in one worker process (the
finisher); jobs of other functions are shared as before (worker/steering.py)."""

from collective.zasync.core.job import kind_of
from collective.zasync.core.keys import waiting_key
from collective.zasync.core.queue import get_queue_root
from collective.zasync.defaults import STEAL_AFTER
from collective.zasync.defaults import STEER_FOR
from collective.zasync.worker import claiming
from collective.zasync.worker import filing
from collective.zasync.worker import steering
from collective.zasync.worker.conflictgate import ConflictGate
from datetime import timedelta
from tests.support import sample_jobs
from tests.support.base import TwoWorkersPlayedTestCase

import transaction


class TestSteering(TwoWorkersPlayedTestCase):
    """Workers "a" (the finisher) and "b"; "b" saw jobs of ``set_title`` conflict."""

    def setUp(self):
        super().setUp()
        root = self.root = get_queue_root(self.portal._p_jar)
        self.queue = root.queues[""]
        self.queue.concurrency = None  # jobs in parallel (this test's database only)
        self.titles = [self.service.queueJob(sample_jobs.set_title, self.portal, "T%d" % n) for n in range(12)]
        self.noops = [self.service.queueJob(sample_jobs.noop, self.portal) for _n in range(12)]
        self.now = max(job.queued for job in self.titles + self.noops) + timedelta(milliseconds=1)
        transaction.commit()
        filing.file_inboxes(self.queue)
        transaction.commit()
        self.kind = kind_of(self.titles[0])

    def stamp(self, seconds=0.0):
        return (self.now + timedelta(seconds=seconds)).timestamp()

    def conflict_in_b(self, seconds_ago=0.0):
        """b's conflict gate saw a short attempt of set_title conflict; b's pass writes it."""
        gate = ConflictGate()
        gate.conflicted(self.kind, 0.01)
        conflicts = {kind: self.stamp(-seconds_ago) for kind in gate.recent_conflicts()}
        steering.note(self.root.workers["b"], conflicts, self.stamp())

    def claim(self, uuid, free, seconds=0.0):
        now = self.now + timedelta(seconds=seconds)
        return claiming.claim(self.root, self.root.workers[uuid], free, now)

    def test_without_a_conflict_jobs_are_shared_by_their_key(self):
        self.assertEqual(steering.owners(self.root, ["a", "b"], self.stamp()), {})
        share = claiming.shares(self.root, "b", self.now)
        kinds_of_b = {kind_of(job) for job in self.titles + self.noops
                      if share.mine(waiting_key(job), job)}
        self.assertIn(self.kind, kinds_of_b)  # (12 keys: some hash to b; crc32 is fixed)

    def test_after_a_conflict_the_finisher_takes_them_all(self):
        self.conflict_in_b()
        self.root.workers["a"].last_claim = self.stamp()  # a claims
        self.assertEqual(steering.owners(self.root, ["a", "b"], self.stamp()), {self.kind: "a"})
        taken_by_b = self.claim("b", len(self.titles) + len(self.noops))
        # b takes only the no-op jobs that hash to it, and leaves the set_title jobs to a
        self.assertEqual({kind_of(job) for job in taken_by_b}, {kind_of(self.noops[0])})
        taken_by_a = self.claim("a", len(self.titles) + len(self.noops))
        self.assertEqual({job.id for job in self.titles}, {job.id for job in taken_by_a} & {job.id for job in self.titles})
        self.assertEqual(len(taken_by_b) + len(taken_by_a), len(self.titles) + len(self.noops))

    def test_another_worker_takes_them_when_their_owner_claims_nothing(self):
        self.conflict_in_b()
        self.root.workers["a"].last_claim = self.stamp()
        share = claiming.shares(self.root, "b", self.now)
        job = self.titles[0]
        self.assertFalse(share.mine(waiting_key(job), job))
        self.assertFalse(share.may_take(waiting_key(job), job))  # a claims: its own
        # b's dispatcher looks again when a will have been silent for STEAL_AFTER seconds
        self.assertEqual(share.steal_time(waiting_key(job), job), self.stamp() + STEAL_AFTER)
        later = claiming.shares(self.root, "b", self.now + timedelta(seconds=STEAL_AFTER + 0.01))
        self.assertTrue(later.may_take(waiting_key(job), job))
        taken = self.claim("b", len(self.titles) + len(self.noops), seconds=STEAL_AFTER + 0.01)
        self.assertEqual({job.id for job in taken} & {job.id for job in self.titles},
                         {job.id for job in self.titles})
        self.assertTrue(steering.elsewhere(self.root, "b", self.stamp()))
        self.assertFalse(steering.elsewhere(self.root, "a", self.stamp()))

    def test_steering_ends_STEER_FOR_seconds_after_the_last_conflict(self):
        self.conflict_in_b(seconds_ago=STEER_FOR - 1)
        self.assertEqual(steering.owners(self.root, ["a", "b"], self.stamp()), {self.kind: "a"})
        self.assertEqual(steering.owners(self.root, ["a", "b"], self.stamp(2)), {})
        # b's next pass forgets it: the record no longer names the kind
        steering.note(self.root.workers["b"], {}, self.stamp(2))
        self.assertEqual(self.root.workers["b"].conflicting, {})

    def test_a_dead_workers_conflicts_steer_nothing(self):
        self.conflict_in_b()
        record = self.root.workers["b"]
        record.ping.time = self.now - timedelta(seconds=record.death_interval + 1)
        self.assertIsNone(claiming.shares(self.root, "a", self.now))  # a is alone: it takes all
        self.assertEqual(len(self.claim("a", 100)), len(self.titles) + len(self.noops))

    def test_the_record_is_written_for_new_conflicts_only(self):
        record = self.root.workers["b"]
        steering.note(record, {self.kind: self.stamp()}, self.stamp())
        transaction.commit()
        steering.note(record, {self.kind: self.stamp(1)}, self.stamp(1))  # one more, a second later
        self.assertFalse(record._p_changed)  # (a pass that claims nothing writes nothing for it)
        steering.note(record, {self.kind: self.stamp(steering.NOTE_EVERY + 1)}, self.stamp(steering.NOTE_EVERY + 1))
        self.assertTrue(record._p_changed)
        self.assertEqual(record.conflicting, {self.kind: self.stamp(steering.NOTE_EVERY + 1)})

    def test_a_backlog_steered_elsewhere_is_looked_at_one_chunk_deep(self):
        backlog = [self.service.queueJob(sample_jobs.set_title, self.portal, "B%d" % n) for n in range(60)]
        transaction.commit()
        filing.file_inboxes(self.queue)
        self.conflict_in_b()
        self.root.workers["a"].last_claim = self.stamp()
        transaction.commit()
        _tm, root = self.connection()  # (its jobs are ghosts until a claim loads them)
        now = max(job.queued for job in backlog) + timedelta(milliseconds=1)
        free = 2
        self.assertEqual(claiming.claim(root, root.workers["b"], free, now), [])
        jobs = root.queues[""].jobs
        loaded = [job_id for job_id in jobs.keys() if jobs[job_id]._p_changed is not None]
        # b's pass read the first chunk (4 per free slot: the set_title jobs queued first), saw
        # only jobs of a, and stopped there: the rest of a's backlog was not loaded for nothing.
        # (The no-op jobs behind that chunk that hash to b run in their turn, as with one worker.)
        self.assertEqual(len(loaded), 4 * free)
        taken_by_a = {job.id for job in claiming.claim(self.root, self.root.workers["a"], 100, now)}
        self.assertLessEqual({job.id for job in self.titles + backlog}, taken_by_a)
