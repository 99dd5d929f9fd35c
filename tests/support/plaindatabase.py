"""A FileStorage database of its own, with a connection per process played by hand (the races)."""

from collective.zasync.core.job import Job
from collective.zasync.core.job import utcnow
from collective.zasync.core.keys import waits
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.records import WorkerRecord
from collective.zasync.worker import claiming
from collective.zasync.worker import filing
from datetime import timedelta
from ZODB.DB import DB
from ZODB.FileStorage import FileStorage

import os
import shutil
import tempfile
import transaction
import unittest


class PlainDatabase(unittest.TestCase):
    """One queue database, no site: what the dispatchers' transactions do, played by hand."""

    queued = 5  # jobs waiting when a test begins

    def setUp(self):
        # A FileStorage, as a ZEO server has: conflicts on BTrees are resolved as there.
        home = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, home)
        self.db = DB(FileStorage(os.path.join(home, "Data.fs")))
        self.addCleanup(self.db.close)
        tm, root = self.connection()
        tm.commit()  # (the queues are stored: requests can queue)
        root.queues[""].concurrency = None  # (in parallel: claims need no limit mark)
        for uuid in ("a", "b"):  # a is the finisher (first by uuid)
            root.workers[uuid] = WorkerRecord(uuid, threads=2)
        # Five: the entries share a bucket that no commit below empties (that would conflict).
        self.jobs = [root.queues[""].put(Job("tests.support.sample_jobs:noop")) for _ in range(self.queued)]
        filing.file_inboxes(root.queues[""])
        tm.commit()
        self.late = utcnow() + timedelta(seconds=claiming.STEAL_AFTER + 5)  # b may take a's share

    def connection(self):
        tm = transaction.TransactionManager()
        conn = self.db.open(transaction_manager=tm)
        self.addCleanup(conn.close)
        self.addCleanup(tm.abort)
        tm.begin()
        return tm, get_queue_root(conn)

    def where(self, job_id):
        """(waiting keys that wait, claims) of job ``job_id``, as committed."""
        _tm, root = self.connection()
        queue = root.queues[""]
        entries = [key for key, job in queue.waiting.items() if job.id == job_id and waits(key, job)]
        claims = [uuid for uuid, record in root.workers.items() if job_id in record.claimed]
        return entries, claims
