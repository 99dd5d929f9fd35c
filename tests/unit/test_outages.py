"""What the runner takes for the database being unreachable (a job runs again once it is
back), and what for the job's own error (it fails, or its retry policy applies)."""

from collective.zasync.worker.attempt import is_outage
from relstorage.adapters.sqlite.adapter import Sqlite3Adapter
from relstorage.options import Options
from relstorage.storage import RelStorage
from transaction.interfaces import TransientError
from ZEO.Exceptions import ClientDisconnected
from ZODB.DB import DB

import shutil
import sqlite3
import tempfile
import unittest


class TestOutages(unittest.TestCase):

    def test_the_storage_drivers_disconnection_is_an_outage(self):
        home = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, home)
        options = Options(keep_history=False)
        db = DB(RelStorage(Sqlite3Adapter(data_dir=home, pragmas={}, options=options), options=options))
        self.addCleanup(db.close)
        # RelStorage's driver says so of a lost server (PostgreSQL restarting: psycopg2's
        # OperationalError, raised while a job loads an object); once, the job failed of it.
        self.assertTrue(is_outage(sqlite3.OperationalError("server closed the connection"), db))
        self.assertTrue(is_outage(ClientDisconnected("ZEO"), db))
        self.assertFalse(is_outage(TransientError("the job's own"), db))
        self.assertFalse(is_outage(ValueError("the job's own"), db))
