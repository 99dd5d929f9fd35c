"""What the service takes at queue time: decorated functions, quota names, a job's identity."""

from collective.zasync import interfaces
from collective.zasync.job import Job
from tests.base import WorkerTestCase

import transaction


class TestCallbackStatus(WorkerTestCase):
    def test_constant_is_zc_async_s(self):
        self.assertEqual(interfaces.CALLBACKS, "callback-status")

    def test_a_job_stored_with_the_old_value_loads_as_callbacks(self):
        job = self.portal._zasync_old_job = Job()
        job.status = "callbacks-status"  # what versions before issue 14 wrote
        transaction.commit()
        tm = transaction.TransactionManager()
        conn = self.layer["zodbDB"].open(transaction_manager=tm)
        try:
            loaded = conn.root()["Application"]["plone"]._zasync_old_job
            self.assertEqual(loaded.status, interfaces.CALLBACKS)
        finally:
            tm.abort()
            conn.close()
