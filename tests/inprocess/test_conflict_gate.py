"""ConflictGate: a job attempt that keeps conflicting runs alone among its process's jobs;
jobs of a kind that conflicted run one at a time for a while."""

from collective.zasync.worker import claiming
from collective.zasync.worker import filing
from collective.zasync.core import alonegate
from collective.zasync.worker.conflictgate import ConflictGate
from collective.zasync.interfaces import COMPLETED
from collective.zasync.core.job import utcnow
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.places import unfile_waiting
from collective.zasync.core.records import WorkerRecord
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from tests.support import sample_jobs
from tests.support.base import OwnWorkerTestCase

from datetime import timedelta
from unittest import mock
from ZODB.POSException import ConflictError

import collections
import sys
import threading
import time
import transaction
import unittest


# The code of the gate's three ways in, to see a thread waiting in one of them.
SHARED, ALONE, ONE_AT_A_TIME = (method.__wrapped__.__code__ for method in (
    ConflictGate.shared, ConflictGate.alone, ConflictGate.one_at_a_time))


def inside(ident, code, kind=None):
    """True if thread ``ident`` runs ``code`` now (for ``kind``): waits there, its stack says."""
    frame = sys._current_frames().get(ident)
    while frame is not None:
        if frame.f_code is code and (kind is None or frame.f_locals.get("kind") == kind):
            return True
        frame = frame.f_back
    return False


def seen_waiting(ident, code, kind=None, seconds=20, done=lambda: False):
    """Wait until thread ``ident`` is seen in ``code`` three times in a row, 10 ms apart (it
    waits there: passing through takes microseconds); False if ``done()`` or time is up first."""
    deadline = time.monotonic() + seconds
    sightings = 0
    while time.monotonic() < deadline and not done():
        sightings = sightings + 1 if inside(ident, code, kind) else 0
        if sightings == 3:
            return True
        time.sleep(0.01)
    return False


class TestConflictGate(unittest.TestCase):
    def test_alone_waits_for_shared_attempts_and_holds_new_ones(self):
        gate = ConflictGate(wait=30)
        order = []
        release_first = threading.Event()
        first_in = threading.Event()
        held = []

        def first():
            with gate.shared():
                first_in.set()
                release_first.wait(10)
                order.append("first done")

        def alone():
            with gate.alone():
                order.append("alone")
                second.start()  # asks for the gate while we hold it alone
                held.append(seen_waiting(second.ident, SHARED))
                order.append("alone done")

        def later():
            with gate.shared():
                order.append("later")

        second = threading.Thread(target=later)
        threads = [threading.Thread(target=first), threading.Thread(target=alone)]
        threads[0].start()
        self.assertTrue(first_in.wait(10))
        threads[1].start()
        self.assertTrue(seen_waiting(threads[1].ident, ALONE), "alone never waited for the first")
        self.assertEqual(order, [])
        release_first.set()
        for thread in threads + [second]:
            thread.join(10)
        self.assertEqual(held, [True], "the later attempt never waited for the one alone")
        self.assertEqual(order, ["first done", "alone", "alone done", "later"])

    def test_alone_goes_ahead_after_waiting_for_a_long_attempt(self):
        gate = ConflictGate(wait=0.1)
        release = threading.Event()
        entered = threading.Event()

        def long_attempt():
            with gate.shared():
                entered.set()
                release.wait(10)

        thread = threading.Thread(target=long_attempt)
        thread.start()
        entered.wait(10)
        with gate.alone():  # does not wait for the long attempt to end
            self.assertTrue(thread.is_alive())
        release.set()
        thread.join(10)

    def test_only_short_attempts_run_alone(self):
        gate = ConflictGate()
        self.assertFalse(gate.should_run_alone(conflicts=1, last_seconds=0.01))
        self.assertTrue(gate.should_run_alone(conflicts=2, last_seconds=0.01))
        self.assertFalse(gate.should_run_alone(conflicts=4, last_seconds=gate.max_seconds + 1))

    def overlaps(self, gate, first_kind, second_kind):
        """While an attempt of ``first_kind`` runs, one of ``second_kind`` either enters (True)
        or is seen waiting for its kind's turn (False); it runs in the end either way."""
        holding, release, entered = threading.Event(), threading.Event(), threading.Event()

        def first():
            with gate.one_at_a_time(first_kind), gate.shared():
                holding.set()
                release.wait(10)

        def second():
            with gate.one_at_a_time(second_kind), gate.shared():
                entered.set()

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        threads[0].start()
        self.assertTrue(holding.wait(10))
        threads[1].start()
        waits = seen_waiting(threads[1].ident, ONE_AT_A_TIME, done=entered.is_set)
        self.assertTrue(waits or entered.is_set(), "the second attempt neither entered nor waited")
        release.set()
        for thread in threads:
            thread.join(10)
        self.assertTrue(entered.is_set())  # it ran, after the first if not before
        return not waits

    def test_jobs_of_a_kind_that_conflicted_run_one_at_a_time_for_a_while(self):
        gate = ConflictGate(serial_for=30)
        self.assertTrue(self.overlaps(gate, "reindex", "reindex"))  # no conflict yet: in parallel
        gate.conflicted("reindex", last_seconds=0.01)
        self.assertFalse(self.overlaps(gate, "reindex", "reindex"))  # one after the other
        self.assertTrue(self.overlaps(gate, "reindex", "export"))  # other kinds go on beside them
        gate.conflicted("export", last_seconds=gate.max_seconds + 1)  # a long attempt: not serialized
        self.assertTrue(self.overlaps(gate, "export", "export"))
        gate.conflicted(None, last_seconds=0.01)  # a callback: never
        self.assertTrue(self.overlaps(gate, None, None))

    def test_after_a_while_without_conflict_they_run_in_parallel_again(self):
        gate = ConflictGate(serial_for=0.05)
        gate.conflicted("reindex", last_seconds=0.01)
        wait_until(lambda: self.overlaps(gate, "reindex", "reindex"), "the window to end")


# -- jobs that say when they run (the in-process worker's threads call them) ----------------

visits = {}  # phase -> {"inside": n, "entered": n, "most": n, "left": [why each left]}
visits_lock = threading.Lock()
visit_conflicts = collections.Counter()  # phase -> ConflictErrors raised


def visit(context, phase, expected, conflicts=0):
    """Enter, stay until another job of this kind is inside too, is seen waiting for its
    turn, or none of the ``expected`` of ``phase`` is left to come; then leave.

    The first ``conflicts`` calls of ``phase`` raise ConflictError instead.
    """
    if visit_conflicts[phase] < conflicts:
        visit_conflicts[phase] += 1
        raise ConflictError("conflict %d of %s" % (visit_conflicts[phase], phase))
    entry = object()  # this visit (the thread's ident is looked for at the gate, below)
    with visits_lock:
        state = visits.setdefault(phase, {"inside": 0, "entered": 0, "most": 0, "left": [],
                                          "insiders": set(), "met": set()})
        state["inside"] += 1
        state["entered"] += 1
        state["most"] = max(state["most"], state["inside"])
        state["insiders"].add(entry)
        if len(state["insiders"]) > 1:  # (seen here: the other may leave before this one looks)
            state["met"].update(state["insiders"])
    me = threading.get_ident()

    def why():
        with visits_lock:
            if entry in state["met"]:
                return "together"
            if state["entered"] == expected:
                return "last"
        # (only threads in the gate now are watched for a moment)
        at_gate = [ident for ident in sys._current_frames() if ident != me and inside(ident, ONE_AT_A_TIME, KIND)]
        if any(seen_waiting(ident, ONE_AT_A_TIME, KIND, seconds=1) for ident in at_gate):
            return "waited for"
        return None

    deadline = time.monotonic() + 20
    reason = None
    while reason is None and time.monotonic() < deadline:
        reason = why()
        time.sleep(0.01)
    with visits_lock:
        state["inside"] -= 1
        state["insiders"].discard(entry)
        state["left"].append(reason or "timed out")
    return reason


KIND = "tests.inprocess.test_conflict_gate:visit"


class TestOneAtATimeInTheWorker(OwnWorkerTestCase):
    """What the jobs see: before a conflict two of a kind run at once, after it one at a time."""

    def setUp(self):
        super().setUp()
        visits.clear()
        visit_conflicts.clear()
        self.service.createQueue("parallel")  # (the default queue runs one job at a time)

    def start_worker(self, **settings):
        worker = super().start_worker(**settings)
        worker.gate.serial_for = 120  # (5 s: the window might end before the test looks)
        return worker

    def run_phase(self, phase, count, conflicts=0):
        jobs = [self.service.queueJobInQueue("parallel", (), visit, self.portal, phase, count, conflicts)
                for _ in range(count)]
        for job in jobs:
            wait_for_result(job, seconds=60)
        self.assertEqual([job.func_name for job in jobs], [KIND] * count)
        return visits[phase]

    def test_a_conflict_makes_the_jobs_of_its_kind_run_one_at_a_time_in_the_worker(self):
        self.start_worker(threads=2)
        before = self.run_phase("before", 2)
        self.assertEqual((before["most"], sorted(before["left"])), (2, ["together", "together"]))
        self.assertEqual(self.run_phase("conflicting", 1, conflicts=1)["left"], ["last"])
        after = self.run_phase("after", 3)
        self.assertEqual(after["most"], 1, after)  # never two at once
        # each left only once the next one was waiting for its turn: they would have overlapped
        self.assertEqual(after["left"], ["waited for", "waited for", "last"])


class TestAloneInTheCluster(OwnWorkerTestCase):
    """A job out of conflict retries runs once more, alone in the cluster, before it fails."""

    def queue(self, key, times):
        job = self.service.queueJob(sample_jobs.conflicts_first, self.portal, key, times)
        transaction.commit()
        return job

    def test_a_job_out_of_conflict_retries_succeeds_alone(self):
        self.start_worker(threads=2)
        allowed = self.queue("probe", 0).max_retries or 3  # the site's "Conflict retries"
        job = self.queue("once-too-often", allowed + 1)  # every attempt of its first start conflicts
        self.assertEqual(wait_for_result(job), allowed + 2)
        self.assertIsNotNone(job.alone_since)  # it waited to run alone ...
        self.assertFalse(job.alone)  # ... and ran: a later claim of it stops no other claim
        self.assertEqual(job.attempts, 2)  # its first start, then the one alone

    def test_a_job_that_conflicts_alone_too_fails(self):
        self.start_worker()
        job = self.queue("always", 1000)
        wait_until(lambda: transaction.begin() is not None and job.status == COMPLETED, "the job fails")
        self.assertTrue(job.failed)
        self.assertIn("ConflictError", str(job.result))
        self.assertEqual(job.attempts, 2)

    def cluster(self, concurrency=None, jobs=3):
        """(root, queue, jobs filed, worker records "other" (1 thread) and "mine" (4))."""
        root = get_queue_root(self.portal._p_jar)
        queue = root.queues[""]
        queue.concurrency = concurrency  # None: jobs in parallel, only the gate holds them back
        queued = [self.service.queueJob(sample_jobs.noop, self.portal) for _ in range(jobs)]
        filing.file_inboxes(queue)
        other, mine = WorkerRecord("other", 1), WorkerRecord("mine", 4)
        root.workers["other"], root.workers["mine"] = other, mine
        self.addCleanup(transaction.abort)
        # Any worker takes any due job at once (test_claiming.py tests which takes which first).
        self.enterContext(mock.patch.object(claiming, "STEAL_AFTER", 0.0))
        return root, queue, queued, other, mine

    def go_alone(self, root, queue, job, now):
        """``job`` ran out of conflict retries (claimed or not): it waits to run alone."""
        if job.worker_uuid is None:
            unfile_waiting(queue, job)
        alonegate.wait_alone(root, job, now)

    def test_nothing_is_claimed_while_it_waits_for_the_cluster_or_runs(self):
        root, queue, jobs, other, mine = self.cluster()
        now = utcnow()
        [running] = claiming.claim(root, other, 1, now)
        alone = [job for job in jobs if job is not running][0]
        self.go_alone(root, queue, alone, now)
        self.assertEqual(claiming.claim(root, mine, 4, now), [])  # another job runs: the cluster drains
        running.status = COMPLETED
        self.assertEqual(claiming.claim(root, mine, 4, now), [alone])  # alone, though 4 threads are free
        self.assertEqual(claiming.claim(root, other, 1, now), [])  # and nothing else while it runs
        self.assertEqual(len(list(queue.pending())), 1)
        alone.status = COMPLETED
        self.assertEqual(len(claiming.claim(root, other, 1, now)), 1)  # it has run: claims go on

    def test_claims_of_a_dead_worker_do_not_hold_the_cluster(self):
        root, queue, jobs, other, mine = self.cluster()
        now = utcnow()
        [running] = claiming.claim(root, other, 1, now)
        other.ping.time = now - timedelta(seconds=other.death_interval + 1)  # killed: not reaped yet
        alone = [job for job in jobs if job is not running][0]
        self.go_alone(root, queue, alone, now)
        self.assertEqual(claiming.claim(root, mine, 4, now), [alone])  # no wait for the dead worker's job

    def test_a_job_running_alone_holds_nobody_once_its_worker_is_dead(self):
        root, queue, jobs, other, mine = self.cluster()
        now = utcnow()
        self.go_alone(root, queue, jobs[0], now)
        self.assertEqual(claiming.claim(root, other, 1, now), [jobs[0]])
        self.assertEqual(claiming.claim(root, mine, 4, now), [])
        other.ping.time = now - timedelta(seconds=other.death_interval + 1)  # killed while it runs
        self.assertEqual(len(claiming.claim(root, mine, 4, now)), 2)

    def test_both_waits_are_bounded_and_claims_go_on_after_a_wait(self):
        root, queue, jobs, other, mine = self.cluster(jobs=6)
        now = utcnow()
        [long_running] = claiming.claim(root, other, 1, now)  # a long job: the cluster never drains
        first, second, third = [job for job in jobs if job is not long_running][:3]
        self.go_alone(root, queue, first, now)
        self.go_alone(root, queue, second, now)
        self.assertEqual(claiming.claim(root, mine, 4, now), [])
        drained = now + timedelta(seconds=alonegate.ALONE_DRAIN)
        # Claimed anyway; both to one worker (one drain for both), whose process gate
        # runs them one at a time.
        self.assertEqual(claiming.claim(root, mine, 4, drained), [first, second])
        self.assertEqual(claiming.claim(root, other, 4, drained), [])  # held while they run
        held = drained + timedelta(seconds=alonegate.ALONE_HOLD)
        self.go_alone(root, queue, third, held)
        # Held no longer; the third one waits, but claims go on first for as long as the
        # last ones stopped them (the drain, then at most ALONE_HOLD while they ran).
        self.assertEqual(len(claiming.claim(root, mine, 1, held)), 1)
        reopened = drained + timedelta(seconds=alonegate.ALONE_DRAIN + 2 * alonegate.ALONE_HOLD)
        self.assertEqual(len(claiming.claim(root, mine, 1, reopened - timedelta(seconds=1))), 1)
        self.assertEqual(claiming.claim(root, mine, 4, reopened), [])  # the third one's wait
        self.assertEqual(claiming.claim(root, mine, 4, reopened + timedelta(seconds=alonegate.ALONE_DRAIN)), [third])

    def test_a_job_alone_keeps_its_queue_concurrency(self):
        root, queue, jobs, other, mine = self.cluster(concurrency=1)
        now = utcnow()
        [running] = claiming.claim(root, other, 1, now)
        self.go_alone(root, queue, jobs[1], now)
        later = now + timedelta(seconds=alonegate.ALONE_DRAIN)
        self.assertEqual(claiming.claim(root, mine, 4, later), [])  # its queue runs one job at a time
        running.status = COMPLETED
        self.assertEqual(claiming.claim(root, mine, 4, later), [jobs[1]])

    def test_no_gate_until_a_job_runs_out_of_conflict_retries(self):
        root, queue, jobs, other, mine = self.cluster()
        self.assertEqual(len(claiming.claim(root, mine, 4, utcnow())), 3)
        self.assertIsNone(getattr(root, "alone_gate", None))  # claims cost one attribute lookup more
