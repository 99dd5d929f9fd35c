"""A checkpointed import of 10,000 items, its worker process SIGKILLed halfway: each item imported once."""

from tests.support.clusters import ClusterTestCase
from tests.support.clusters import TESTS
from tests.support.clusters import WORKER_COMMAND

import os
import signal
import transaction


class TestCheckpointedImportKilledHalfway(ClusterTestCase):
    """10,000 items, a checkpoint every 500, the worker process SIGKILLed halfway
    (zasync-worker --processes 2: test_worker_command's layer, no server of its own)."""

    layer = WORKER_COMMAND

    def test_each_item_is_imported_once(self):
        # (zasync-worker runs: ClusterTestCase.setUp started it again if a test had stopped it)
        out = self.cluster.run_script("client", TESTS / "queue_import.py", "Plone", "admin",
                                      "10000", "500", "5250")
        job_id = out.split()[-1]

        def holding():
            job = self.root().queues[""].get(job_id)
            return job is not None and job.checkpoint_state == 5000

        self.wait_until(holding, 60, "the import to hold at item 5,250, after checkpoint 5,000")
        job = self.root().queues[""].get(job_id)
        victim = [record for record in self.root().workers.values() if record.uuid == job.worker_uuid][0]
        os.kill(victim.pid, signal.SIGKILL)  # items 5,000 to 5,249 are imported, not committed
        job = self.wait_completed([job_id], 90)[0]
        self.assertEqual(job.result, {"imported": 10000, "resumed_from": 5000})
        self.assertEqual(job.attempts, 2)
        self.assertEqual(job.checkpoint_state, 10000)
        self.assertEqual(job.checkpoints, 20)  # 10 before the kill, 10 after: none twice
        transaction.begin()
        imported = self.conn.root()["Application"]["Plone"]._zasync_test_imported
        self.assertEqual(len(imported), 10000)
        self.assertEqual(set(imported.values()), {1})
