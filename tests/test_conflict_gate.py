"""ConflictGate: a job attempt that keeps conflicting runs alone among its process's jobs."""

from collective.zasync.gate import ConflictGate

import threading
import unittest


class TestConflictGate(unittest.TestCase):
    def test_alone_waits_for_shared_attempts_and_holds_new_ones(self):
        gate = ConflictGate(wait=30)
        order = []
        release_first = threading.Event()
        first_in = threading.Event()

        def first():
            with gate.shared():
                first_in.set()
                release_first.wait(10)
                order.append("first done")

        def alone():
            with gate.alone():
                order.append("alone")
                second.start()  # asks for the gate while we hold it alone
                second.join(0.3)
                order.append("alone done")

        def later():
            with gate.shared():
                order.append("later")

        second = threading.Thread(target=later)
        threads = [threading.Thread(target=first), threading.Thread(target=alone)]
        threads[0].start()
        first_in.wait(10)
        threads[1].start()
        threads[1].join(0.3)
        self.assertEqual(order, [])  # alone waits for first
        release_first.set()
        for thread in threads + [second]:
            thread.join(10)
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
