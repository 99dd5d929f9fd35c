"""``@transactional``: run a function in a transaction of its own, retrying conflicts.
Add-ons use it as ``collective.zasync.transactional``.

For scripts and jobs that do several independent units of work::

    from collective.zasync import transactional

    @transactional(retries=5)
    def reindex(brain):
        brain.getObject().reindexObject()

Each call begins a transaction, commits it if the function returns and
aborts it if the function raises. A ConflictError is retried after a random,
growing pause, ``retries`` times at most, then raised. A call made while
another @transactional call is running in the same thread just calls the
function: the outer call owns the transaction.

Beginning a transaction throws away the uncommitted changes of the one
before, so a call with uncommitted changes pending raises an error instead:
commit (or abort) them first. Inside a job, this means: call @transactional
functions before the job writes anything itself. What they committed stays
committed if the job later fails or is run again (their effects are
at-least-once, like mail sent from a job), unlike the job's own writes.
"""

from ZEO.Exceptions import ServerException
from ZODB.POSException import ConflictError

import functools
import random
import threading
import time
import transaction


_state = threading.local()


def transactional(func=None, *, retries=3, delay=0.05, max_delay=5.0, manager=None):
    """Decorator: run the function in its own transaction, retrying ConflictError."""
    if func is None:
        return functools.partial(
            transactional, retries=retries, delay=delay, max_delay=max_delay, manager=manager
        )
    if not isinstance(retries, int) or retries < 0:
        raise ValueError("retries must be a whole number >= 0, not %r." % (retries,))

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if getattr(_state, "depth", 0):
            return func(*args, **kwargs)
        tm = manager or transaction.manager
        if has_uncommitted_changes(tm):
            raise RuntimeError(
                "%s is @transactional: it begins its own transaction, which would throw "
                "away the uncommitted changes of the current one. Commit or abort them "
                "first (transaction.commit())." % getattr(func, "__qualname__", func)
            )
        attempt = 0
        _state.depth = 1
        try:
            while True:
                tm.begin()
                try:
                    result = func(*args, **kwargs)
                    commit(tm)
                    return result
                except ConflictError:
                    tm.abort()
                    attempt += 1
                    if attempt > retries:
                        raise
                    time.sleep(random.uniform(0, min(max_delay, delay * 2**attempt)))
                except BaseException:
                    tm.abort()
                    raise
        finally:
            _state.depth = 0

    return wrapper


def has_uncommitted_changes(tm):
    """True if the current transaction of ``tm`` has modified objects joined to it."""
    tm = getattr(tm, "manager", tm)  # transaction.manager wraps this thread's manager
    txn = getattr(tm, "_txn", None)  # None: no transaction begun, nothing pending
    # A ZODB connection joins the transaction when an object is first modified;
    # ``_resources`` is how the transaction package keeps them (no public accessor).
    return bool(txn is not None and getattr(txn, "_resources", None))


def commit(tm=transaction.manager):
    """Commit ``tm``'s transaction; ZEO giving up on a conflict raises ConflictError.

    With ``client-conflict-resolution`` (docs/deploy.md) ZEO's client resolves
    conflicts in rounds of votes. After 9 rounds that each met a new conflict
    (a bucket that every commit writes) ZEO 6 stops without raising and
    finishes a transaction that the server has just aborted; the server
    answers "finished called wo lock". Nothing was committed and the client
    reconnects: it is a conflict, and is retried as one.
    """
    try:
        tm.commit()
    except ServerException as exc:
        if "finished called wo lock" not in repr(exc.args):
            raise
        raise ConflictError("ZEO gave up resolving a conflict; nothing was committed (%s)." % (exc,)) from exc
