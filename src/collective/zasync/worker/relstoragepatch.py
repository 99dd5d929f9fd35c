"""A fix for RelStorage on PostgreSQL: tell the planner that a store connection's temp_store is empty.

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
in lock_objects_and_detect_conflicts.sql). Applied once, when the package is
imported (every Zope instance and worker with collective.zasync installed), to
every PostgreSQL store connection that opens from then on. Not for add-ons.
"""

from collective.zasync.worker.patching import patch_once

import logging


log = logging.getLogger("collective.zasync")


def analyze_new_temp_store():
    """Patch RelStorage's PostgreSQL connection manager's ``open_for_store`` (idempotent)."""
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
