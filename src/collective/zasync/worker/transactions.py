"""The dispatcher's own transactions on the queue database: one connection, used by its loop
thread only (and by ``stop()`` once the loop has ended). Not for add-ons.

A ConflictError in them only means another worker got there first: it is retried at
once, a bounded number of times.
"""

from collections import Counter
from collective.zasync.client.transactional import commit
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.setaside import set_aside_unloadable
from collective.zasync.core.trees import settle_changed
from collective.zasync.defaults import PASS_CONFLICT_PAUSE
from collective.zasync.defaults import PASS_CONFLICT_PAUSE_MAX
from collective.zasync.defaults import PASS_CONFLICTS
from collective.zasync.worker.attempt import backoff
from ZODB.POSException import ConflictError

import logging
import time
import transaction


log = logging.getLogger("collective.zasync")


class Superseded(RuntimeError):
    """This worker was declared dead while alive (frozen, cut off), and another process
    started with its identity since: this one must not touch that one's record or jobs."""


class Transactions:
    """Runs ``func(root, *args)`` in transactions of worker ``uuid`` on ``db``; counts conflicts
    in ``stats`` (the dispatcher's) and by object in ``conflict_oids``."""

    def __init__(self, db, uuid, stats):
        self.uuid = uuid
        self.stats = stats
        self.conflict_oids = Counter()  # oid (hex) -> conflicts on that object
        self.tm = transaction.TransactionManager()
        self.conn = db.open(transaction_manager=self.tm)

    def run(self, func, *args):
        """Run ``func(root, *args)`` in a transaction; retry on ConflictError."""
        for attempt in range(PASS_CONFLICTS):
            txn = self.tm.begin()
            # Named in the storage's history, as a job's commit is (history.py): what
            # a dispatcher wrote can be told from what jobs and requests wrote.
            txn.note("collective.zasync worker %s: %s" % (self.uuid, func.__name__.strip("_")))
            try:
                result = func(get_queue_root(self.conn), *args)
                settle_changed(self.conn)  # (its passes take from one end and add at the other)
                commit(self.tm)
                return result
            except ConflictError as exc:
                self.abort()
                self.stats["conflicts"] += 1
                self.stats["conflicts on %s" % (exc.class_name or "unknown")] += 1
                if exc.oid is not None:  # which object: see benchmarks/run.py, conflicts by structure
                    self.conflict_oids["0x%x" % int.from_bytes(exc.oid, "big")] += 1
                # Another worker got there first; its commit is already
                # visible, so try again almost at once (a long pause here
                # would let one worker take all the jobs).
                time.sleep(backoff(attempt, base=PASS_CONFLICT_PAUSE, cap=PASS_CONFLICT_PAUSE_MAX))
            except BaseException:
                self.abort()
                raise
        raise RuntimeError("Worker %s: gave up after %d conflicts." % (self.uuid, PASS_CONFLICTS))

    def run_past_unloadable(self, func, *args):
        """``run``; on an error, set aside the jobs that cannot be loaded, and try again.

        A job whose pickle no longer loads (core/setaside.py) would fail every pass of
        every worker: it is set aside, and the queue goes on without it.
        """
        try:
            return self.run(func, *args)
        except Superseded:
            raise
        except Exception:
            if not self.run(set_aside_unloadable):
                raise
        return self.run(func, *args)

    def abort(self):
        """Abort our transaction; with the storage gone (a database restart) that can fail too."""
        try:
            self.tm.abort()
        except Exception as exc:
            log.debug("Worker %s: abort failed: %r", self.uuid, exc)

    def close(self):
        self.conn.close()
