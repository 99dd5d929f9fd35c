"""RelStorage's staging tables on PostgreSQL (worker/relstoragepatch.py,
``empty_staging_tables_in_commit``). Real parts: a private PostgreSQL server, RelStorage, ZODB.

- A commit deletes what it staged, in its own transaction, instead of PostgreSQL truncating
  three tables at every commit: a later commit moves only its own objects and blobs.
- The planner knows that the staging table is small, however many dead rows its file holds:
  a commit of a few objects locks them through object_state's index instead of reading the
  whole table.
"""

from collective.zasync.worker import relstoragepatch
from persistent.mapping import PersistentMapping
from relstorage.adapters.postgresql import PostgreSQLAdapter
from relstorage.options import Options
from relstorage.storage import RelStorage
from tests.cluster.test_relstoragepatch import start_postgres
from ZODB.blob import Blob
from ZODB.DB import DB
from ZODB.POSException import ConflictError

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


class TestStagedRowsDeletedByTheirCommit(unittest.TestCase):

    keep_history = False  # as Plone's images run RelStorage

    def setUp(self):
        self.dsn = start_postgres(self)

    def open_db(self):
        """A database as a process of its own opens it: a cache and a blob cache of its own."""
        blobs = tempfile.mkdtemp(prefix="zasync-blobs-")
        self.addCleanup(shutil.rmtree, blobs, True)
        options = Options(keep_history=self.keep_history, blob_dir=blobs, shared_blob_dir=False)
        db = DB(RelStorage(PostgreSQLAdapter(dsn=self.dsn, options=options), options=options))
        self.addCleanup(db.close)
        return db

    def open(self, db):
        tm = transaction.TransactionManager()
        conn = db.open(transaction_manager=tm)
        self.addCleanup(conn.close)
        return tm, conn.root()

    def read(self, name, key="value"):
        """What a fresh process reads of ``root[name][key]``."""
        tm, root = self.open(self.open_db())
        value = root[name][key]
        if isinstance(value, Blob):
            with value.open() as blob:
                value = blob.read()
        tm.abort()
        return value

    def query(self, sql):
        with psycopg2.connect(self.dsn) as connection, connection.cursor() as cursor:
            cursor.execute(sql)
            rows = cursor.fetchall()
        connection.close()
        return rows

    def staging_files(self):
        """The file of each store connection's temp_store: a new one after each truncation."""
        return {row[0] for row in self.query(
            "SELECT relfilenode FROM pg_class WHERE relname = 'temp_store' AND relpersistence = 't'")}

    def test_a_store_connection_s_tables_keep_their_rows_at_a_commit(self):
        self.open_db()  # (RelStorage makes its schema)
        adapter = PostgreSQLAdapter(dsn=self.dsn, options=Options(keep_history=self.keep_history))
        conn, cursor = adapter.connmanager.open_for_store()
        self.addCleanup(adapter.connmanager.close, conn, cursor)
        cursor.execute("INSERT INTO temp_store (zoid, prev_tid) VALUES (1, 0)")
        conn.commit()
        cursor.execute("SELECT count(*) FROM temp_store")
        self.assertEqual(cursor.fetchone()[0], 1)  # RelStorage alone: 0, the table truncated
        cursor.execute("SELECT tgname FROM pg_trigger "
                       "WHERE tgrelid = 'temp_blob_chunk'::regclass AND NOT tgisinternal")
        self.assertEqual(cursor.fetchall(), [("temp_blob_chunk_delete",)])  # remade with it
        conn.rollback()

    def test_a_commit_moves_only_its_own_objects(self):
        tm, root = self.open(self.open_db())
        root["a"] = PersistentMapping(value=1)
        root["b"] = PersistentMapping(value=1)
        tm.commit()
        other_tm, other_root = self.open(self.open_db())
        other_root["a"]["value"] = 2
        other_tm.commit()
        tm.begin()
        root["b"]["value"] = 2  # on the store connection that staged "a" before
        tm.commit()
        self.assertEqual(self.read("a"), 2)  # staged again, it would be 1
        self.assertEqual(self.read("b"), 2)

    def test_a_conflict_leaves_nothing_staged(self):
        tm, root = self.open(self.open_db())
        root["c"] = PersistentMapping(value=0)
        root["d"] = PersistentMapping(value=0)
        tm.commit()
        other_tm, other_root = self.open(self.open_db())
        tm.begin()
        other_tm.begin()
        root["c"]["value"] = "mine"
        other_root["c"]["value"] = "theirs"
        other_tm.commit()
        with self.assertRaises(ConflictError):
            tm.commit()
        tm.abort()
        tm.begin()
        root["d"]["value"] = 1
        tm.commit()
        self.assertEqual(self.read("c"), "theirs")
        self.assertEqual(self.read("d"), 1)

    def test_blobs_committed_stay_after_later_commits(self):
        tm, root = self.open(self.open_db())
        root["e"] = PersistentMapping(value=0, blob=Blob(b"one"))
        tm.commit()
        files = self.staging_files()
        tm.begin()
        root["e"]["value"] = 1
        tm.commit()
        self.assertEqual(self.staging_files(), files)  # a commit without blobs deletes
        tm.begin()
        with root["e"]["blob"].open("w") as blob:
            blob.write(b"two")
        tm.commit()
        self.assertEqual(len(self.staging_files() - files), 1)  # one with blobs truncates
        tm.begin()
        root["e"]["value"] = 2  # (a chunk still staged would be moved again, and fail)
        tm.commit()
        self.assertEqual(self.read("e", "blob"), b"two")
        self.assertEqual(self.read("e"), 2)
        versions = 2 if self.keep_history else 1  # (a chunk each)
        self.assertEqual(self.query("SELECT count(*) FROM blob_chunk"), [(versions,)])

    def test_the_tables_are_truncated_once_enough_rows_were_staged(self):
        tm, root = self.open(self.open_db())
        root["f"] = PersistentMapping(value=0)
        tm.commit()  # the rows staged so far: fewer than 19
        self.addCleanup(setattr, relstoragepatch, "TRUNCATE_AFTER_ROWS", relstoragepatch.TRUNCATE_AFTER_ROWS)
        relstoragepatch.TRUNCATE_AFTER_ROWS = 20
        files, truncated = self.staging_files(), 0
        for value in range(1, 41):  # a row each: 40 rows, two truncations
            tm.begin()
            root["f"]["value"] = value
            tm.commit()
            truncated += self.staging_files() != files
            files = self.staging_files()
        self.assertEqual(truncated, 2)  # the other 38 commits deleted their row
        self.assertEqual(self.read("f"), 40)


class TestStagedRowsDeletedByTheirCommitKeepingHistory(TestStagedRowsDeletedByTheirCommit):

    keep_history = True  # RelStorage's default: Undo, the History views


class TestStagingTablePlanned(unittest.TestCase):

    def setUp(self):
        dsn = start_postgres(self)
        options = Options(keep_history=False)
        self.adapter = PostgreSQLAdapter(dsn=dsn, options=options)
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
        with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
            cursor.execute("ANALYZE object_state")  # (as autovacuum would, in time)
        connection.close()

    def open_for_store(self):
        conn, cursor = self.adapter.connmanager.open_for_store()
        self.addCleanup(self.adapter.connmanager.close, conn, cursor)
        return conn, cursor

    def lock_plan(self, conn, cursor, table="temp_store"):
        """How RelStorage's lock would read 3 objects staged in ``table``."""
        cursor.execute("INSERT INTO %s (zoid, prev_tid) SELECT zoid, tid FROM object_state LIMIT 3" % table)
        cursor.execute(LOCK_QUERY.replace("temp_store", table))
        plan = "\n".join(row[0] for row in cursor.fetchall())
        conn.rollback()
        return plan

    def assertLocksThroughTheIndex(self, plan):
        self.assertIn("object_state_pkey", plan)
        self.assertNotIn("Seq Scan on object_state", plan)

    def test_a_store_connection_s_temp_store_has_no_live_row(self):
        _conn, cursor = self.open_for_store()
        cursor.execute("SELECT reltuples, relpages FROM pg_class WHERE oid = 'temp_store'::regclass")
        self.assertEqual(cursor.fetchone(), (0, 1))  # never analyzed: (-1, 0)

    def test_a_small_commit_locks_its_objects_through_the_index(self):
        self.assertLocksThroughTheIndex(self.lock_plan(*self.open_for_store()))

    def test_so_it_does_after_many_rows_were_deleted(self):
        # Dead rows fill the table's file; PostgreSQL sizes a table by its file.
        conn, cursor = self.open_for_store()
        cursor.execute("INSERT INTO temp_store (zoid, prev_tid) SELECT g, 1 FROM generate_series(1, 5000) g")
        cursor.execute("DELETE FROM temp_store")
        conn.commit()
        self.assertLocksThroughTheIndex(self.lock_plan(conn, cursor))

    def test_without_it_the_same_commit_reads_the_whole_table(self):
        # What the patch is for: a connection whose temp_store was never analyzed.
        conn, cursor = self.open_for_store()
        cursor.execute("CREATE TEMPORARY TABLE temp_store_never_analyzed (LIKE temp_store) ON COMMIT DELETE ROWS")
        self.assertIn("Seq Scan on object_state", self.lock_plan(conn, cursor, "temp_store_never_analyzed"))
