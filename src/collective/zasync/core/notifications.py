"""Notifications sent by PostgreSQL after a commit that other processes act on (RelStorage).
Not for add-ons.

RelStorage pushes no invalidations: a process sees another process's commit
only when it begins a transaction. Without help, an idle worker would begin
one every 50 ms to notice new jobs (20 queries a second per worker). But
PostgreSQL can push: after a commit that other workers must act on, the
committing process sends a notification on the channel ``zasync`` (a request
that queued a job: "queued"; a dispatcher whose pass put finished jobs in its
done log: "done", or changed the waiting jobs: "waiting"). Each worker listens
on a connection of its own (worker/listener.py) and runs a pass when one
concerns it, as it does on ZEO when the server pushes an invalidation
(worker/filing.py, wake_oids).

The notification is sent right after the commit (a dispatcher's, once its
threads have the jobs the pass claimed), on a connection of the process kept
for that (one round trip, well under a millisecond next to the commit). One
lost (PostgreSQL restarting, the listener reconnecting) costs only time: the
worker still looks every few seconds (defaults.PUSHED_POLL).
Nothing here runs on ZEO or FileStorage. (In core: ``Queue.put`` sends one;
no thread runs here.)
"""

import logging
import threading


log = logging.getLogger("collective.zasync")

CHANNEL = "zasync"  # (PostgreSQL scopes channels to one database: one per queue database)


def postgres_dsn(db):
    """The DSN of ``db``'s storage if it is RelStorage on PostgreSQL (with psycopg2), else None."""
    adapter = getattr(db.storage, "_adapter", None)
    if adapter is None or "postgresql" not in type(adapter).__module__:
        return None
    try:
        import psycopg2  # noqa: F401 (the driver the notifications go through)
    except ImportError:
        return None
    return getattr(adapter, "_dsn", None)


class Notifier:
    """This process's connection for sending notifications to one database."""

    def __init__(self, dsn):
        self.dsn = dsn
        self.conn = None
        self.lock = threading.Lock()  # (threads of a process share it)

    def notify(self, payload):
        """Send ``payload`` on the channel; a failure is logged, never raised (see the module)."""
        import psycopg2

        with self.lock:
            for _attempt in range(2):  # (a connection the server closed since: once more, anew)
                try:
                    if self.conn is None or self.conn.closed:
                        self.conn = psycopg2.connect(self.dsn)
                        self.conn.autocommit = True
                    with self.conn.cursor() as cursor:
                        cursor.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                    return
                except psycopg2.Error as exc:
                    self.close()
                    error = exc
            log.debug("Could not notify the workers (%s): they find the jobs when they look.", error)

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None


_notifiers = {}  # dsn -> Notifier of this process
_notifiers_lock = threading.Lock()


def notifier(dsn):
    with _notifiers_lock:
        if dsn not in _notifiers:
            _notifiers[dsn] = Notifier(dsn)
        return _notifiers[dsn]


def notify(db, payload):
    """Send ``payload`` now, if the storage of ``db`` is RelStorage on PostgreSQL; nothing
    otherwise (for a commit that has ended: see notify_after_commit)."""
    dsn = postgres_dsn(db)
    if dsn is not None:
        notifier(dsn).notify(payload)


def notify_after_commit(txn, db, payload):
    """Send ``payload`` once ``txn`` has committed (once per transaction and payload), if the
    storage of ``db`` is RelStorage on PostgreSQL; nothing otherwise."""
    dsn = postgres_dsn(db)
    if dsn is None:
        return
    sent = _planned(txn)
    if payload in sent:
        return
    sent.add(payload)
    txn.addAfterCommitHook(_send, (dsn, payload))


def _planned(txn):
    """The payloads ``txn`` sends after its commit (kept on the transaction object)."""
    planned = getattr(txn, "_zasync_notifications", None)
    if planned is None:
        planned = txn._zasync_notifications = set()
    return planned


def _send(committed, dsn, payload):
    if committed:
        notifier(dsn).notify(payload)
