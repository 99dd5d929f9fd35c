"""@transactional: a function in a transaction of its own, conflicts retried, nesting, refusals."""

from collective.zasync.client.transactional import transactional
from tests.support.base import WorkerTestCase
from ZODB.POSException import ConflictError

import transaction


class TestTransactional(WorkerTestCase):
    def test_commits_retries_conflicts_and_nests(self):
        transaction.commit()  # setUp's role change
        calls = []

        @transactional(retries=2, delay=0.001)
        def flaky():
            calls.append(1)
            self.portal._zasync_test_value = len(calls)
            if len(calls) < 3:
                raise ConflictError("simulated")
            inner()
            return "ok"

        @transactional
        def inner():
            calls.append("inner")

        self.assertEqual(flaky(), "ok")
        transaction.abort()
        self.assertEqual(self.portal._zasync_test_value, 3)

        @transactional(retries=1, delay=0.001)
        def always():
            raise ConflictError("again")

        with self.assertRaises(ConflictError):
            always()

        @transactional
        def broken():
            self.portal._zasync_test_value = "never"
            raise KeyError("x")

        with self.assertRaises(KeyError):
            broken()
        self.assertEqual(self.portal._zasync_test_value, 3)
        with self.assertRaises(ValueError):
            transactional(retries=-1)(lambda: None)

    def test_refuses_to_throw_away_uncommitted_changes(self):
        @transactional
        def touch():
            self.portal._zasync_test_value = "touched"

        transaction.commit()
        self.portal._zasync_test_value = "pending"
        with self.assertRaises(RuntimeError) as raised:
            touch()
        self.assertIn("Commit or abort them first", str(raised.exception))
        self.assertEqual(self.portal._zasync_test_value, "pending")  # nothing lost
        transaction.commit()
        touch()
        transaction.abort()
        self.assertEqual(self.portal._zasync_test_value, "touched")

    def test_the_package_attribute_is_the_decorator(self):
        import collective.zasync

        self.assertIs(collective.zasync.transactional, transactional)
