"""What a queueing commit writes does not grow with the jobs already waiting.

No worker runs. After a backlog has built up, one more queueJob writes the
same objects, of about the same size, as with an empty queue: its own inbox
(the JobLog and the last bucket of its entries, each a job and its filing card) and the new job. The ZEO
server stores exactly these pickles, so their size is the commit's size.
"""

from tests.support import sample_jobs
from collective.zasync.core.queue import get_queue_root
from tests.support.base import OwnWorkerTestCase
from ZODB.serialize import ObjectWriter

import transaction


class TestQueueingCost(OwnWorkerTestCase):
    def queue_many(self, count, per_commit=500):
        for start in range(0, count, per_commit):
            for _ in range(min(per_commit, count - start)):
                self.service.queueJob(sample_jobs.noop, self.portal)
            transaction.commit()

    def one_queueing(self):
        """(class names, bytes) of the existing objects one queueJob changes, and of the job."""
        conn = get_queue_root(self.portal._p_jar)._p_jar
        job = self.service.queueJob(sample_jobs.noop, self.portal)
        changed = list(conn._registered_objects)
        transaction.commit()
        written = changed + [job]
        # the inbox's entries: a small BTree holds its one bucket itself
        # and its index of UIDs (uidindex.py), the same way
        names = ["entries" if type(obj).__name__ in ("OOBTree", "OOBucket") else
                 "uids" if type(obj).__name__ in ("OOTreeSet", "OOSet") else type(obj).__name__
                 for obj in written]
        return sorted(names), sum(
            len(ObjectWriter(obj).serialize(obj)) for obj in written)

    def test_the_same_commit_with_20_or_2000_jobs_waiting(self):
        self.queue_many(20)
        # (an inbox's second commit gives its entries' one bucket a record of its own, once:
        # core/trees.settle)
        self.queue_many(1)
        small_classes, small_bytes = self.one_queueing()
        self.queue_many(2000)
        large_classes, large_bytes = self.one_queueing()
        self.assertEqual(len(self.service.getQueues()[""]), 2023)
        self.assertEqual(small_classes, large_classes)
        self.assertIn("JobLog", large_classes)
        self.assertNotIn("Queue", large_classes, "the queue itself is not written")
        # the last bucket of the inbox holds at most 30 entries, each a job and its filing card
        # (core/cards.py, about 100 bytes): a few KB, whatever the backlog
        self.assertLess(large_bytes, 8000, (large_classes, large_bytes))
        print("\n  [cost] one queueing with 20 / 2,000 jobs waiting: %d / %d bytes (%s)"
              % (small_bytes, large_bytes, ", ".join(large_classes)))
