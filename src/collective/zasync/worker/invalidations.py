"""Waking workers up when a commit touches a queue, instead of polling. Not for add-ons.

ZODB tells each connection which objects changed through the database's
MVCC adapter (for ZEO, pushed by the server right after another process
commits); we listen there.
"""

import logging
import threading


log = logging.getLogger("collective.zasync")

_watchers_lock = threading.Lock()


def watch_invalidations(db, callback):
    """Call ``callback(oids, committer)`` whenever a commit (of any process) reaches ``db``.

    ``committer``: the storage instance of the connection in this process
    that committed (``connection._storage``), or None for another process.

    ZODB tells each connection which objects changed through its MVCC
    adapter; we listen there. A storage that does not push invalidations
    (RelStorage polls) just leaves the dispatcher to its poll interval.
    """
    adapter = getattr(db, "_mvcc_storage", None)
    if adapter is None or not hasattr(adapter, "_invalidate_finish"):
        return False
    with _watchers_lock:
        callbacks = getattr(adapter, "_zasync_callbacks", None)
        if callbacks is None:
            callbacks = adapter._zasync_callbacks = []
            _wrap(adapter, "invalidate", callbacks)
            _wrap(adapter, "_invalidate_finish", callbacks)
        callbacks.append(callback)
    return True


def unwatch_invalidations(db, callback):
    with _watchers_lock:
        callbacks = getattr(getattr(db, "_mvcc_storage", None), "_zasync_callbacks", [])
        if callback in callbacks:
            callbacks.remove(callback)


def _wrap(adapter, name, callbacks):
    original = getattr(adapter, name)

    def wrapper(tid, oids, *rest):
        result = original(tid, oids, *rest)
        committer = rest[0] if rest else None  # _invalidate_finish(tid, oids, committing_instance)
        for callback in list(callbacks):
            try:
                callback(oids, committer)
            except Exception:
                log.exception("Invalidation callback failed.")
        return result

    setattr(adapter, name, wrapper)
