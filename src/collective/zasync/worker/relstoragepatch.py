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
    """Patch RelStorage's ``StorageCache.load`` and ``prefetch`` (idempotent) to serve only
    the cached states that the connection's index of changes names.

    RelStorage 4's local cache is shared by the threads of a process. It finds an object's
    state for a connection by the transaction that last changed it, as the connection's
    index of recent changes names it; for an object the index does not name, it serves a
    "frozen" state, the last it knew, if that is not newer than the connection's snapshot.
    With several processes committing often, each with a few threads (workers), some of
    those frozen states were older than the snapshot: the object had changed since, and
    neither the index nor the frozen entry knew. Measured by comparing every state the
    cache served with the snapshot's (tests/support/relstorage_readers.py): every stale
    state was a frozen one; which step of RelStorage's bookkeeping loses the change is not
    pinned down. A connection then reads stale and current states together: a BTree whose
    buckets disagree ("RuntimeError: the bucket being iterated changed size", or BTrees
    aborting the process). So for an object its index does not name, a connection reads
    its snapshot (``load``, ``prefetch``), and names what it read in the index.
    """
    try:
        from relstorage.cache.storage_cache import StorageCache
    except ImportError:  # no RelStorage, no problem
        return

    def consistent_load(original):
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
            remember(self, oid_int, state, tid)
            return state, tid
        return load

    def consistent_prefetch(original):
        # What load() will not take from the cache, prefetch() reads: else it would take a
        # frozen state for cached and leave each of those objects to a query of its own.
        def prefetch(self, cursor, oid_ints):
            index = self.object_index
            if not index or (self.cache is self.local_client and not self.cache.limit):
                return original(self, cursor, oid_ints)
            missing = set()
            for oid_int in oid_ints:
                indexed_tid = index[oid_int]
                if indexed_tid is None or (oid_int, indexed_tid) not in self.cache:
                    missing.add(oid_int)
            if not missing:
                return
            for oid_int, state, tid in self.adapter.mover.load_currents(cursor, missing):
                self._check_tid_after_load(oid_int, tid, cursor=cursor)
                remember(self, oid_int, state, tid)
        return prefetch

    patched = patch_once(StorageCache, "load", consistent_load)
    patched = patch_once(StorageCache, "prefetch", consistent_prefetch) or patched
    if patched:
        log.debug("RelStorage patched: its local cache serves only the states its index names.")


def remember(storage_cache, oid_int, state, tid):
    """Cache a state read from the snapshot, and name it in the index (so that load() serves it)."""
    storage_cache.object_index[oid_int] = tid
    storage_cache.cache[(oid_int, tid)] = (state, tid)
