"""Two fixes for RelStorage, applied when the package is imported (every Zope instance and
worker with collective.zasync installed), each explained where it is made. Not for add-ons.

- ``remove_superseded_states``: RelStorage's local cache drops an object's states that a
  later change superseded, so that no connection reads one.
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
