"""``@transactional``: run a function in a transaction of its own, retrying conflicts.

For scripts and jobs that do several independent units of work::

    from collective.zasync.transactional import transactional

    @transactional(retries=5)
    def reindex(brain):
        brain.getObject().reindexObject()

Each call begins a transaction, commits it if the function returns and
aborts it if the function raises. A ConflictError is retried after a random,
growing pause, ``retries`` times at most, then raised. A call made while
another @transactional call is running in the same thread just calls the
function: the outer call owns the transaction.

Inside a job, remember that the job's own work is committed at its end: a
@transactional call there commits what the job did so far, which then stays
done even if the job is retried.
"""

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
        attempt = 0
        _state.depth = 1
        try:
            while True:
                tm.begin()
                try:
                    result = func(*args, **kwargs)
                    tm.commit()
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
