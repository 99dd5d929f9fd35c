"""A worker's settings (zope.conf's product-config, then ZASYNC_<SETTING> variables): a typo stops it, saying why."""

import unittest


class TestWorkerSettings(unittest.TestCase):
    """zope.conf's <product-config collective.zasync>: a typo stops the worker, saying why."""

    def test_values_are_converted(self):
        from collective.zasync.worker.settings import WorkerSettings

        settings = WorkerSettings.from_product_config({"threads": "4", "poll-interval": "0.5", "uuid-file": "x"})
        self.assertEqual((settings.threads, settings.poll_interval), (4, 0.5))

    def test_unknown_setting(self):
        from collective.zasync.worker.settings import WorkerSettings

        with self.assertRaises(ValueError) as raised:
            WorkerSettings.from_product_config({"thread": "4"})
        self.assertIn("unknown setting 'thread'", str(raised.exception))
        self.assertIn("threads", str(raised.exception))

    def test_bad_value(self):
        from collective.zasync.worker.settings import WorkerSettings

        with self.assertRaises(ValueError) as raised:
            WorkerSettings.from_product_config({"threads": "two"})
        self.assertIn("threads must be a whole number, not 'two'", str(raised.exception))
