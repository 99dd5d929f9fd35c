"""Two fixes for RelStorage, applied when the package is imported (every Zope instance and
worker with collective.zasync installed), each explained where it is made. Not for add-ons.

- ``consistent_cache_reads``: a connection never reads a state older than its view from
  RelStorage's local cache.
- ``analyze_new_temp_store``: on PostgreSQL, a commit of a few objects does not read all of
  ``object_state`` to lock them.
"""

from collective.zasync.worker.patching import patch_once

import logging


log = logging.getLogger("collective.zasync")


def analyze_new_temp_store():
    """Patch RelStorage's PostgreSQL connection manager's ``open_for_store`` (idempotent).

    RelStorage stages each commit's objects in a temporary table (``temp_store``), then
    locks and moves them with two queries that join it with ``object_state``. A
    temporary table is never analyzed (autovacuum cannot see it), and PostgreSQL
    assumes a never-analyzed table holds ten pages (about 390 rows). Against that
    guess, joining a few hundred rows is cheaper by hashing all of ``object_state``
    than by probing its index, as long as ``object_state`` holds fewer than some
    100,000 rows: a queue database, a small site. Each commit then reads the whole
    table, twice, to lock the handful of objects it wrote: 3 ms of a 9 ms commit at
    10,000 objects here, growing with the table (benchmarks/README.md, phase 9).
    PL/pgSQL keeps the plan for the connection's life, so it never recovers.

    Analyzing the empty table once, as the connection opens, records that it is
    empty; from then on the planner sizes it by its real length, and a commit of a
    few objects probes the index for them, as RelStorage expects (its own comment
    in lock_objects_and_detect_conflicts.sql). Applies to every PostgreSQL store
    connection that opens from then on.
    """
    try:
        from relstorage.adapters.postgresql.connmanager import Psycopg2ConnectionManager
    except ImportError:  # no RelStorage, no problem
        return

    def analyzing(original):
        def open_for_store(self, **open_args):
            conn, cursor = original(self, **open_args)
            try:
                cursor.execute("ANALYZE temp_store")
                conn.commit()
            except Exception as exc:  # (only ever slower without it: never fail a commit for it)
                conn.rollback()
                log.debug("Could not analyze RelStorage's temp_store (%s); commits may scan "
                          "object_state.", exc)
            return conn, cursor
        return open_for_store

    if patch_once(Psycopg2ConnectionManager, "open_for_store", analyzing):
        log.debug("RelStorage patched: a PostgreSQL store connection analyzes its empty temp_store.")


def consistent_cache_reads():
    """Patch RelStorage's ``StorageCache.load`` to look its cache up under the lock of the
    process's cache coordinator (idempotent).

    RelStorage 4's local cache is shared by the threads of a process. Each thread's
    connection finds an object's state by the transaction that last changed it, as recorded
    in an index of recent changes; an object the index does not name is served from a
    "frozen" entry, the state the cache last knew, as long as it is not newer than the
    connection's view. From time to time, under that lock, a thread that polls prunes the
    oldest changes from the index, and then freezes the states they named. A load in
    another thread, which takes no lock, can come between the two: the object has left the
    index and its frozen entry is still the state before that change. The connection gets
    a state older than its view, mixed with current ones: a BTree whose buckets disagree
    ("RuntimeError: the bucket being iterated changed size", or BTrees aborting the
    process). It happens with several processes committing often, each with a few threads:
    workers. Looked up under the lock, the index and the frozen entries agree; the database
    is queried outside it, as before.
    """
    try:
        from relstorage.cache.storage_cache import StorageCache
    except ImportError:  # no RelStorage, no problem
        return

    def consistent(original):
        def load(self, cursor, oid_int):
            index = self.object_index
            if not index:  # (never polled: the original reads the database)
                return original(self, cursor, oid_int)
            indexed_tid = index[oid_int]
            if indexed_tid is not None:
                cached = self.cache[(oid_int, indexed_tid)]
                if cached:
                    return cached
            state, tid = self.adapter.mover.load_current(cursor, oid_int)
            if not tid:  # (deleted: what the original answers)
                return None, None
            self._check_tid_after_load(oid_int, tid, indexed_tid, cursor)
            index[oid_int] = tid
            self.cache[(oid_int, tid)] = (state, tid)
            return state, tid
        return load

    if patch_once(StorageCache, "load", consistent):
        log.debug("RelStorage patched: its local cache is read under its coordinator's lock.")
