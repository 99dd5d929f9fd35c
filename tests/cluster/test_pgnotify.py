"""Wake-ups pushed by PostgreSQL (core/notifications.py, worker/listener.py): a worker on RelStorage idles without asking
the database anything, and a queued job wakes it at once; after a PostgreSQL restart it
listens again. Real parts: a private PostgreSQL server, RelStorage, the package's Dispatcher
(with no job thread: filing the inbox shows that it woke up)."""

from collective.zasync.core.job import Job
from collective.zasync.core.notifications import CHANNEL
from collective.zasync.core.queue import get_queue_root
from collective.zasync.dev.cluster import free_port
from collective.zasync.dev.postgres import PostgresServer
from collective.zasync.worker.dispatcher import Dispatcher
from collective.zasync.worker.settings import WorkerSettings
from relstorage.adapters.postgresql import PostgreSQLAdapter
from relstorage.options import Options
from relstorage.storage import RelStorage
from ZODB.DB import DB

import psycopg2
import select
import shutil
import tempfile
import time
import transaction
import unittest


def wait_until(condition, what, seconds=20.0):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("Timed out after %g s waiting for %s." % (seconds, what))
        time.sleep(0.02)


class TestPushedWakeUps(unittest.TestCase):

    def setUp(self):
        home = tempfile.mkdtemp(prefix="zasync-pgnotify-")
        self.addCleanup(shutil.rmtree, home, True)
        self.server = PostgresServer(home + "/postgres", port=free_port(), tied=True)
        self.server.start()
        self.addCleanup(self.server.stop)
        self.server.create_database("zasync")
        options = Options(keep_history=False)
        adapter = PostgreSQLAdapter(dsn=self.server.dsn("zasync"), options=options)
        self.db = DB(RelStorage(adapter, options=options))
        self.addCleanup(self.db.close)
        self.tm = transaction.TransactionManager()
        self.conn = self.db.open(transaction_manager=self.tm)
        self.addCleanup(self.conn.close)
        self.tm.begin()
        get_queue_root(self.conn)
        self.tm.commit()
        # Neither a poll nor a ping wakes it within the minute: only a notification can.
        settings = WorkerSettings(threads=0, poll_interval=60.0, ping_interval=60.0, death_interval=180.0)
        self.worker = Dispatcher(self.db, "pushed", settings)
        self.worker.start()
        self.addCleanup(self.worker.stop)
        self.assertTrue(self.worker.listener.listening)

    def queue_job(self):
        """Queue a job as a request does; wait until the idle worker filed it (its inbox read)."""
        self.tm.begin()
        queue = get_queue_root(self.conn).queues[""]
        job = queue.put(Job("tests.support.sample_jobs:noop"))
        self.tm.commit()
        started = time.monotonic()

        def filed():
            self.tm.begin()
            return job.id in get_queue_root(self.conn).queues[""].jobs

        wait_until(filed, "the worker to file the job")
        return time.monotonic() - started

    def test_a_queued_job_wakes_an_idle_worker(self):
        worker = self.worker
        wait_until(lambda: worker.stats["passes"] and not worker.wakeup.is_set(),
                   "the loop to sleep, nothing left to do")
        passes = worker.stats["passes"]
        time.sleep(1.0)
        self.assertEqual(worker.stats["passes"], passes)  # idle: no pass, no poll (once: 20 a second)
        self.queue_job()  # (before: filed at the next poll, 50 ms to a minute later)

    def test_it_listens_again_after_a_postgresql_restart(self):
        self.queue_job()
        self.server.stop()
        wait_until(lambda: not self.worker.listener.listening, "the listener to see the server gone")
        self.server.start()
        wait_until(lambda: self.worker.listener.listening, "the listener to listen again", seconds=30)
        self.queue_job()

    def test_a_pass_tells_the_other_workers_after_its_commit(self):
        # What another worker hears: LISTEN on a connection of its own.
        listening = psycopg2.connect(self.server.dsn("zasync"))
        self.addCleanup(listening.close)
        listening.autocommit = True
        listening.cursor().execute("LISTEN %s" % CHANNEL)
        self.tm.begin()
        job = get_queue_root(self.conn).queues[""].put(Job("tests.support.sample_jobs:noop"))
        self.tm.commit()
        heard = []
        deadline = time.monotonic() + 20
        while "waiting:pushed" not in heard and time.monotonic() < deadline:
            select.select([listening], [], [], 1.0)
            listening.poll()
            heard += [notice.payload for notice in listening.notifies]
            del listening.notifies[:]
        self.assertIn("waiting:pushed", heard)  # its pass filed the job: the waiting jobs changed
        # Sent once that pass had committed: what the notice announces is there to see.
        self.tm.begin()
        self.assertIn(job.id, get_queue_root(self.conn).queues[""].jobs)
