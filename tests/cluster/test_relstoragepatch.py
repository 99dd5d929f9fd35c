"""RelStorage's store connections on PostgreSQL know that their temp_store is empty
(worker/relstoragepatch.py), so that a commit of a few objects locks them through
object_state's index instead of reading the whole table. Real parts: a private PostgreSQL
server, RelStorage, a ZODB with 10,000 objects."""

from collective.zasync.dev.cluster import free_port
from collective.zasync.dev.postgres import PostgresServer
from persistent.mapping import PersistentMapping
from relstorage.adapters.postgresql import PostgreSQLAdapter
from relstorage.options import Options
from relstorage.storage import RelStorage
from ZODB.DB import DB

import collective.zasync  # noqa: F401 (importing the package applies the patch)
import psycopg2
import shutil
import tempfile
import transaction
import unittest


# RelStorage's query that locks the objects a commit writes (lock_objects_and_detect_conflicts).
LOCK_QUERY = """
EXPLAIN SELECT pg_advisory_xact_lock(object_state.zoid)
FROM object_state INNER JOIN temp_store USING(zoid)
WHERE temp_store.prev_tid <> 0 ORDER BY object_state.zoid"""


class TestTempStoreAnalyzed(unittest.TestCase):

    def setUp(self):
        home = tempfile.mkdtemp(prefix="zasync-rspatch-")
        self.addCleanup(shutil.rmtree, home, True)
        server = PostgresServer(home + "/postgres", port=free_port(), tied=True)
        server.start()
        self.addCleanup(server.stop)
        server.create_database("zasync")
        options = Options(keep_history=False)
        self.adapter = PostgreSQLAdapter(dsn=server.dsn("zasync"), options=options)
        self.db = DB(RelStorage(self.adapter, options=options))
        self.addCleanup(self.db.close)
        # A small database, as a queue database is: 10,000 objects.
        tm = transaction.TransactionManager()
        conn = self.db.open(transaction_manager=tm)
        root = conn.root()
        for number in range(10000):
            root[number] = PersistentMapping(number=number)
        tm.commit()
        conn.close()
        with psycopg2.connect(server.dsn("zasync")) as connection, connection.cursor() as cursor:
            cursor.execute("ANALYZE object_state")  # (as autovacuum would, in time)
        connection.close()

    def open_for_store(self):
        conn, cursor = self.adapter.connmanager.open_for_store()
        self.addCleanup(self.adapter.connmanager.close, conn, cursor)
        return conn, cursor

    def test_a_store_connection_knows_its_temp_store_is_empty(self):
        _conn, cursor = self.open_for_store()
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'temp_store'::regclass")
        self.assertEqual(cursor.fetchone()[0], 0)  # analyzed; never analyzed: -1

    def test_a_small_commit_locks_its_objects_through_the_index(self):
        conn, cursor = self.open_for_store()
        cursor.execute("INSERT INTO temp_store (zoid, prev_tid) SELECT zoid, tid FROM object_state LIMIT 3")
        cursor.execute(LOCK_QUERY)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        conn.rollback()
        self.assertIn("object_state_pkey", plan)
        self.assertNotIn("Seq Scan on object_state", plan)

    def test_without_it_the_same_commit_reads_the_whole_table(self):
        # What the patch is for: a connection whose temp_store was never analyzed.
        conn, cursor = self.open_for_store()
        cursor.execute("CREATE TEMPORARY TABLE temp_store_never_analyzed (LIKE temp_store) ON COMMIT DELETE ROWS")
        cursor.execute("INSERT INTO temp_store_never_analyzed (zoid, prev_tid) "
                       "SELECT zoid, tid FROM object_state LIMIT 3")
        cursor.execute(LOCK_QUERY.replace("temp_store", "temp_store_never_analyzed"))
        plan = "\n".join(row[0] for row in cursor.fetchall())
        conn.rollback()
        self.assertIn("Seq Scan on object_state", plan)
