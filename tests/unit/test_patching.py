"""Replacing a library's method once per process (collective.zasync.worker.patching), as the
ZEO and RelStorage fixes do (worker/zeopatch.py, worker/relstoragepatch.py)."""

from collective.zasync.worker.patching import patch_once

import unittest


class Library:

    def greet(self, name):
        """Say hello."""
        return "hello " + name


class PatchOnceTests(unittest.TestCase):

    def setUp(self):
        original = Library.greet
        self.addCleanup(setattr, Library, "greet", original)

    def louder(self, original):
        def greet(self, name):
            return original(self, name) + "!"
        return greet

    def test_replaces_the_method_around_the_original(self):
        self.assertTrue(patch_once(Library, "greet", self.louder))
        self.assertEqual(Library().greet("plone"), "hello plone!")
        self.assertEqual(Library.greet.__doc__, "Say hello.")

    def test_a_second_patch_changes_nothing(self):
        patch_once(Library, "greet", self.louder)
        self.assertFalse(patch_once(Library, "greet", self.louder))
        self.assertEqual(Library().greet("plone"), "hello plone!")  # wrapped once, not twice
        self.assertTrue(Library.greet.zasync_patched)
