"""A worker process tuned for jobs once Zope has started (collective.zasync.worker.tuning):
each class found once per database, the start-up's objects out of garbage collections."""

from collective.zasync.worker.tuning import remember_classes
from persistent.mapping import PersistentMapping
from ZODB.broken import Broken
from ZODB.broken import find_global
from ZODB.DB import DB
from ZODB.MappingStorage import MappingStorage

import subprocess
import sys
import transaction
import unittest


class Counting:
    """A class factory that counts what it is asked; modules named "gone.*" are missing."""

    def __init__(self):
        self.asked = []

    def __call__(self, connection, module, name):
        self.asked.append((module, name))
        if module.startswith("gone."):
            return type(name, (Broken,), {"__module__": module})
        return find_global(module, name)


class RememberClassesTests(unittest.TestCase):

    def setUp(self):
        # (a pooled connection, made with the database, is the one the tests open)
        self.counting = Counting()
        self.db = DB(MappingStorage(), class_factory=self.counting)
        self.addCleanup(self.db.close)
        conn = self.db.open()
        root = conn.root()
        root["items"] = PersistentMapping({n: PersistentMapping({"n": n}) for n in range(20)})
        transaction.commit()
        conn.close()

    def load_all(self):
        """Load every item in a new connection (from the storage, not a cache); the classes asked."""
        self.counting.asked.clear()
        conn = self.db.open()
        conn.cacheMinimize()
        try:
            items = conn.root()["items"]
            self.assertEqual(sorted(item["n"] for item in items.values()), list(range(20)))
        finally:
            conn.close()
        return list(self.counting.asked)

    def test_each_class_is_asked_for_once(self):
        self.assertGreater(len(self.load_all()), 20)  # without: once per record
        remember_classes(self.db)
        self.assertEqual(self.load_all().count(("persistent.mapping", "PersistentMapping")), 1)
        self.assertEqual(self.load_all(), [])  # the next connections: never

    def test_a_second_call_wraps_nothing_more(self):
        remember_classes(self.db)
        factory = self.db.classFactory
        remember_classes(self.db)
        self.assertIs(self.db.classFactory, factory)

    def test_a_class_that_cannot_be_imported_is_asked_for_again(self):
        remember_classes(self.db)
        conn = self.db.open()
        self.addCleanup(conn.close)
        first = self.db.classFactory(conn, "gone.module", "Thing")
        self.assertTrue(issubclass(first, Broken))
        self.db.classFactory(conn, "gone.module", "Thing")
        self.assertEqual(self.counting.asked.count(("gone.module", "Thing")), 2)


class FreezeTests(unittest.TestCase):

    def test_the_start_up_objects_are_frozen(self):
        # In a process of its own: what is frozen stays for the process's life.
        code = ("import gc; from collective.zasync.worker.tuning import freeze_startup_objects; "
                "before = gc.get_freeze_count(); freeze_startup_objects(); "
                "print(before, gc.get_freeze_count() > 10000)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout.split(), ["0", "True"])
