"""Turns (worker/turns.py): short jobs that keep the process's CPU busy take turns; jobs that
wait never do; a turn is waited for a bounded time. Real threads; the measurements that decide
are given (this machine's CPU is shared: its own figures would decide by its load)."""

from collective.zasync.worker.turns import Turns

import threading
import time
import unittest


class TestTurns(unittest.TestCase):

    def overlap(self, turns, job):
        """Run ``job`` in two threads at once, each in a turn; True if they overlapped."""
        inside, most, lock = [0], [0], threading.Lock()
        started = threading.Barrier(2)

        def run():
            started.wait()
            with turns.turn():
                with lock:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                job()
                with lock:
                    inside[0] -= 1

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        return most[0] > 1

    def test_short_busy_jobs_take_turns(self):
        turns = Turns(wait=30.0)
        for _ in range(20):
            turns.ran(0.008, 0.008)  # 8 ms each, the process's CPU busy all along
        self.assertTrue(turns.taken())
        self.assertFalse(self.overlap(turns, lambda: time.sleep(0.2)))
        # (the worker's stop line says them: a run that waited out its turn overlapped another)
        self.assertEqual(turns.counts, {"in turn": 2, "turn waited out": 0, "no turn": 0})

    def test_jobs_that_wait_run_beside_each_other(self):
        turns = Turns(wait=30.0)
        for _ in range(20):
            turns.ran(0.008, 0.0005)  # a web request, a mail server: the CPU idles meanwhile
        self.assertFalse(turns.taken())
        self.assertTrue(self.overlap(turns, lambda: time.sleep(0.2)))
        self.assertEqual(turns.counts, {"in turn": 0, "turn waited out": 0, "no turn": 2})

    def test_long_jobs_do_not_take_turns(self):
        turns = Turns()
        for _ in range(20):
            turns.ran(0.5, 0.5)
        self.assertFalse(turns.taken())

    def test_the_averages_follow_what_jobs_do_now(self):
        turns = Turns()
        for _ in range(20):
            turns.ran(0.008, 0.008)
        for _ in range(30):
            turns.ran(0.008, 0.0005)  # the jobs of another kind now
        self.assertFalse(turns.taken())

    def test_each_job_is_measured(self):
        turns, measured = Turns(), []
        ran = turns.ran
        turns.ran = lambda seconds, cpu: (measured.append(seconds), ran(seconds, cpu))
        with turns.turn():  # (a turn may run several jobs: each is measured on its own)
            for _ in range(2):
                with turns.measured():
                    time.sleep(0.02)
        self.assertEqual(len(measured), 2)
        self.assertGreaterEqual(min(measured), 0.02)

    def test_a_turn_is_waited_for_a_bounded_time(self):
        turns = Turns(wait=0.05)
        turns.ran(0.005, 0.005)
        self.assertTrue(turns.taken())
        holding, release = threading.Event(), threading.Event()

        def long_job():
            with turns.turn():
                holding.set()
                release.wait(30)

        thread = threading.Thread(target=long_job)
        thread.start()
        try:
            self.assertTrue(holding.wait(30))
            with turns.turn():  # the long job holds the turn: this one goes once the wait is over
                self.assertTrue(thread.is_alive())
                self.assertFalse(release.is_set())
        finally:
            release.set()
            thread.join(30)
        self.assertEqual(turns.counts, {"in turn": 1, "turn waited out": 1, "no turn": 0})
