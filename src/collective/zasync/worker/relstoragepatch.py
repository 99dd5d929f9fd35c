"""Two fixes for RelStorage, applied when the package is imported (every Zope instance and
worker with collective.zasync installed), each explained where it is made. Not for add-ons.

- ``remove_superseded_states``: RelStorage's local cache drops an object's states that a
  later change superseded, so that no connection reads one.
- ``empty_staging_tables_in_commit``: on PostgreSQL, a commit does not truncate RelStorage's
  staging tables, and a commit of a few objects does not read all of ``object_state`` to
  lock them.
"""

from collective.zasync.worker.patching import patch_once

import logging
import weakref


log = logging.getLogger("collective.zasync")

# RelStorage's staging tables on PostgreSQL (relstorage/adapters/postgresql/mover.py).
STAGING_TABLES = ("temp_store", "temp_store_replacements", "temp_blob_chunk")

# Rows a store connection's staging tables may have staged since they were last truncated:
# a deleted row stays in the table's file, dead (no autovacuum for temporary tables).
TRUNCATE_AFTER_ROWS = 10000

# Deletes a commit's staged rows; the number of rows it staged.
DELETE_STAGED = """
WITH staged AS (DELETE FROM temp_store RETURNING zoid),
     replaced AS (DELETE FROM temp_store_replacements)
SELECT count(*) FROM staged"""


def remove_superseded_states():
    """Patch RelStorage's ``LocalClient.delitems`` (idempotent) to remove what it promises:
    every cached state of each object that is not newer than the given transaction.

    RelStorage 4's local cache, shared by a process's connections, "freezes" an object's
    last known state when its index of recent changes forgets the object, and serves that
    state to any connection whose index does not name the object. When a vacuum of that
    index finds an object changed twice (a state at T2, then T3), it asks the cache to drop
    the object's states up to T2 (``delitems``). The cache does so when it holds several
    states of the object; when it holds one, it compares the wrong way round
    (``SVCacheEntry::discarding_tids_before``): it drops that state if it is T2's or newer,
    and keeps it if older. So a frozen state from before T2 (one this process read, while
    other processes wrote T2 and T3) survived, and a connection whose view lies between T2
    and T3 was served it: a state older than its snapshot, read beside current ones. A
    BTree read that way has buckets that disagree ("RuntimeError: the bucket being iterated
    changed size", or BTrees aborting the process). Reproduced with real processes by
    tests/support/relstorage_readers.py, and step by step in
    tests/cluster/test_relstoragepatch.py.

    After RelStorage's own ``delitems``, any object still cached with no state newer than
    its given transaction has only states that should have gone: it is removed.
    """
    try:
        from relstorage.cache.local_client import LocalClient
    except ImportError:  # no RelStorage, no problem
        return

    def removing_superseded(original):
        def delitems(self, oids_tids):
            original(self, oids_tids)
            cache = self._cache
            left = [oid for oid, tid in oids_tids.items()
                    if cache.contains_oid_with_newer_tid(oid, tid) is None]
            if left:
                cache.del_oids(left)  # (an object not cached is skipped)
        return delitems

    if patch_once(LocalClient, "delitems", removing_superseded):
        log.debug("RelStorage patched: its local cache drops an object's superseded state.")


def empty_staging_tables_in_commit():
    """Patch RelStorage's PostgreSQL connection manager and adapter (idempotent): the staging
    tables keep their rows at a commit, the commit that moves them into place deletes them,
    and the planner knows that they are small.

    RelStorage stages a commit's objects (and blobs) in three temporary tables created
    ``ON COMMIT DELETE ROWS``. PostgreSQL honours that by truncating all three at the end
    of every transaction that touched any temporary table, as each commit does: a new
    empty file for each table and index, 1.1 ms of a 3 ms commit of a few objects here,
    for the claim of a job as for the request that queued it (benchmarks/README.md,
    phase 9). Deleting the rows costs a few hundredths of that.

    So each store connection, as it opens, remakes the tables RelStorage made (``LIKE``:
    the same columns, keys and triggers) without ``ON COMMIT DELETE ROWS``; and the commit
    that moves the staged rows into ``object_state`` deletes them, in the same
    transaction, just before it commits: what the next commit finds staged is its own,
    as before. A rolled-back transaction takes its staged rows with it, as before. The
    tables are truncated instead, in the same place, after a commit with blobs
    (``temp_blob_chunk``'s trigger would delete the blobs a DELETE sees, now owned by
    ``blob_chunk``) and once ``TRUNCATE_AFTER_ROWS`` rows were deleted, lest the dead ones
    pile up.

    The planner: RelStorage locks a commit's objects with two queries that join
    ``temp_store`` with ``object_state``. A temporary table is never analyzed
    (autovacuum cannot see it); PostgreSQL sizes it by its file, at about 40 rows a page,
    or at ten pages if it was never analyzed, and against a few hundred rows it prefers
    hashing all of ``object_state`` to probing its index as long as ``object_state``
    holds fewer than some 100,000 rows (a queue database, a small site): each commit
    read the whole table, twice, 3 ms of a 9 ms commit at 10,000 objects here. So
    ``temp_store`` is analyzed holding one dead row (``reset``): its pages hold no row,
    however many pages the dead rows take, and a commit of a few objects probes the
    index for them, as RelStorage expects (its comment in
    lock_objects_and_detect_conflicts.sql).
    """
    try:
        from relstorage.adapters.postgresql.adapter import PostgreSQLAdapter
        from relstorage.adapters.postgresql.connmanager import Psycopg2ConnectionManager
    except ImportError:  # no RelStorage, no problem
        return

    staged = weakref.WeakKeyDictionary()  # a store connection: rows staged since a truncation

    def keeping_rows(original):
        def open_for_store(self, **open_args):
            conn, cursor = original(self, **open_args)
            try:
                for table in STAGING_TABLES:
                    remake_keeping_rows(cursor, table)
                reset(cursor)
                conn.commit()
            except Exception as exc:
                # RelStorage's own tables, as they were: commits truncate them (and our
                # commits delete what they moved first); only slower.
                conn.rollback()
                log.warning("Could not remake RelStorage's staging tables (%s); commits "
                            "truncate them.", exc)
            return conn, cursor
        return open_for_store

    def emptying(original):
        def lock_database_and_move(self, store_connection, load_connection, transaction_has_blobs,
                                   ude, commit=True, **options):
            tid_int, prepared_txn = original(self, store_connection, load_connection,
                                             transaction_has_blobs, ude, commit=False, **options)
            connection, cursor = store_connection.connection, store_connection.cursor
            rows = staged.get(connection, 0)
            if not transaction_has_blobs:
                cursor.execute(DELETE_STAGED)
                rows += cursor.fetchone()[0]
            if transaction_has_blobs or rows >= TRUNCATE_AFTER_ROWS:
                reset(cursor)
                rows = 0
            staged[connection] = rows
            if commit:
                self.txncontrol.commit_phase2(store_connection, prepared_txn, load_connection)
            return tid_int, prepared_txn
        return lock_database_and_move

    # Both, in this order: a commit that deletes what it moved is right whatever the tables;
    # tables that keep their rows need it.
    patched = patch_once(PostgreSQLAdapter, "lock_database_and_move", emptying)
    if patch_once(Psycopg2ConnectionManager, "open_for_store", keeping_rows) or patched:
        log.debug("RelStorage patched: a commit on PostgreSQL deletes its staged rows, not truncates.")


def remake_keeping_rows(cursor, table):
    """Replace the temporary ``table`` by a copy (columns, keys, triggers) that keeps its rows at a commit."""
    cursor.execute("SELECT pg_get_triggerdef(oid) FROM pg_trigger "
                   "WHERE tgrelid = %s::regclass AND NOT tgisinternal", (table,))
    triggers = [row[0] for row in cursor.fetchall()]
    cursor.execute("CREATE TEMPORARY TABLE zasync_{0} (LIKE {0} INCLUDING ALL)".format(table))
    cursor.execute("DROP TABLE {0}".format(table))
    cursor.execute("ALTER TABLE zasync_{0} RENAME TO {0}".format(table))
    for trigger in triggers:
        cursor.execute(trigger)


def reset(cursor):
    """Empty the staging tables; analyze ``temp_store`` as a page of no live row."""
    cursor.execute("TRUNCATE %s" % ", ".join(STAGING_TABLES))
    cursor.execute("INSERT INTO temp_store (zoid, prev_tid) VALUES (0, 0)")
    cursor.execute("DELETE FROM temp_store")
    cursor.execute("ANALYZE temp_store")
