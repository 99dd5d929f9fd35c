"""Job functions for the test suite and the benchmarks.

Worker processes import them by their dotted names (``tests.support.sample_jobs:add``):
the test runner and the benchmarks put the repository on PYTHONPATH. They are
not part of the package: a site never needs them.
"""

from AccessControl import getSecurityManager
from persistent.list import PersistentList
from plone import api
from ZODB.POSException import ConflictError
from zope.globalrequest import getRequest

import collections
import os
import threading
import time
import transaction


def noop(context):
    """Do nothing: for throughput figures."""


def whoami(context):
    """The name of the user the job runs as, the site and whether a request is set."""
    return {
        "user": getSecurityManager().getUser().getUserName(),
        "site": api.portal.get().getId(),
        "request": getRequest() is not None,
        "context": "/".join(context.getPhysicalPath()),
    }


def add(context, a, b=0):
    return a + b


def create_document(container, doc_id, title="Made by a job"):
    """Create a document with the rights of the job's user (Unauthorized if none)."""
    container.invokeFactory("Document", doc_id, title=title)
    return doc_id


def set_title(context, title):
    """Modify a document as the queuing user (the 'real work' of the benchmarks)."""
    context.setTitle(title)
    context.reindexObject(idxs=["Title"])
    return title


def fail(context, message="boom"):
    raise ValueError(message)


def fail_first_attempt(context):
    """Fail when first run; succeed when retried (from the control panel)."""
    from collective.zasync.worker.current import current

    if current.job.attempts < 2:
        raise ValueError("The first attempt fails on purpose.")
    return "succeeded on attempt %d" % current.job.attempts


def raise_base(context, kind="SystemExit"):
    raise {"SystemExit": SystemExit, "KeyboardInterrupt": KeyboardInterrupt}[kind]()


def log_id(context, entry):
    """Append ``entry`` to the site's test log, in the job's transaction."""
    site = api.portal.get()
    log = getattr(site, "_zasync_test_log", None)
    if log is None:
        log = site._zasync_test_log = PersistentList()
    log.append(entry)
    return entry


def conflict_then_log(context, entry, conflicts=2):
    """Log ``entry``, but raise ConflictError the first ``conflicts`` times.

    Counts attempts on a module-level dict (outside the ZODB, so aborts do
    not undo it): the log must still hold ``entry`` once.
    """
    attempts = _attempts.setdefault(entry, 0) + 1
    _attempts[entry] = attempts
    log_id(context, entry)
    if attempts <= conflicts:
        raise ConflictError("simulated conflict %d of %s" % (attempts, entry))
    return attempts


_attempts = {}


def zeo_gives_up_once(context, entry):
    """Log ``entry``; the first attempt's commit fails as ZEO's does when it gives up on a conflict.

    ZEO 6 with client-conflict-resolution, after 9 rounds of votes that each
    met a new conflict, finishes a transaction that its server has aborted
    (transactional.commit). That takes nine conflicting commits in a row to
    happen for real: a data manager that finishes first fails the same way,
    so that the job's own connection commits nothing.
    """
    log_id(context, entry)
    if entry not in _attempts:
        _attempts[entry] = 1
        transaction.get().join(_GivesUpAtFinish())
    return entry


class _GivesUpAtFinish:
    transaction_manager = None

    def sortKey(self):
        return "0"  # before the database's connection, in every phase

    def tpc_finish(self, txn):
        from ZEO.Exceptions import ServerException

        raise ServerException("builtins.AssertionError", ("finished called wo lock",))

    def abort(self, txn):
        pass

    tpc_begin = commit = tpc_vote = tpc_abort = abort


def increment(context, seconds=0.02):
    """Add 1 to a counter on the site itself: two at once always conflict."""
    site = api.portal.get()
    count = getattr(site, "_zasync_test_count", 0)
    time.sleep(float(seconds))
    site._zasync_test_count = count + 1
    return count + 1


def always_conflict(context):
    raise ConflictError("always")


def unpicklable_result(context):
    return lambda: None


def record_callback(result):
    """A callback: remember the result in the test log of the current site."""
    log_id(None, ("callback", result))
    return "called back with %r" % (result,)


def record_failure(failure):
    log_id(None, ("failure", str(failure)))
    return "failure seen"


def sleep(context, seconds=1.0):
    time.sleep(seconds)
    return seconds


def marks(portal):
    """What ``mark`` recorded on the site: entry -> how many times."""
    return dict(getattr(portal, "_zasync_test_marks", {}))


def mark(context, entry):
    """Count ``entry`` in the site's marks, in the job's transaction.

    A BTree keyed by entry: jobs marking different entries at once do not
    conflict (their inserts are merged), and a job whose effects were applied
    twice would show a count of 2.
    """
    from BTrees.OOBTree import OOBTree

    site = api.portal.get()
    marks = getattr(site, "_zasync_test_marks", None)
    if marks is None:
        marks = site._zasync_test_marks = OOBTree()
    marks[entry] = marks.get(entry, 0) + 1
    return entry


def sleep_and_mark(context, entry, seconds="1.0"):
    """Sleep, then mark ``entry``: a job that can be killed half-way."""
    time.sleep(float(seconds))
    return mark(context, entry)


# Opened by a test to let report_progress finish (same process only).
gate = __import__("threading").Event()


def report_progress(context):
    """Report 50 %, then wait for the test to open the gate."""
    from collective.zasync.api import set_progress

    set_progress(50, {"step": "half"})
    gate.wait(20)
    return "done"


# -- reliability and security suite (tests/inprocess/test_poison.py, tests/inprocess/test_security.py) --

# Permissions a security report checks on its context.
REPORTED_PERMISSIONS = (
    "View",
    "Access contents information",
    "List folder contents",
    "Modify portal content",
    "Add portal content",
    "plone.app.contenttypes: Add Document",
    "Delete objects",
    "Review portal content",
    "Manage portal",
    "Plone Site Setup: Overview",
)


def security_report(context):
    """Who the job runs as and what it may do on ``context``, as plain data."""
    user = getSecurityManager().getUser()
    checker = getSecurityManager().checkPermission
    return {
        "user": user.getUserName(),
        "id": user.getId(),
        "roles": sorted(api.user.get_roles(obj=context)),
        "roles_in_context": sorted(user.getRolesInContext(context)),
        "permissions": {name: bool(checker(name, context)) for name in REPORTED_PERMISSIONS},
    }


def read_title(context, path):
    """The title of the object at ``path``, traversed with security checks."""
    return context.restrictedTraverse(path).Title()


def delete_object(container, object_id):
    """Delete ``container[object_id]`` the way a request would (permission checked)."""
    container.manage_delObjects([object_id])
    return object_id


def return_context(context):
    """Return the (acquisition-wrapped) context itself as the job's result."""
    return context


def raise_unpicklable_error(context):
    """Raise an exception whose value cannot be pickled."""
    import threading

    raise ValueError(threading.Lock())


def new_persistent_result(context):
    """Return a new persistent object, not in the database yet."""
    from persistent.mapping import PersistentMapping

    return PersistentMapping(made="by a job")


# -- in-process tests: what ran, in which order --



# Names of the jobs that ran, in the order they ran (same process only).
ran = []
ran_lock = threading.Lock()


def record(context, name, seconds=0.0):
    """Sleep ``seconds``, then note ``name`` in ``ran``."""
    time.sleep(seconds)
    with ran_lock:
        ran.append(name)
    return name


# -- plone.app.async's documentation: its callbacks, as written there (its job functions
# are those of the porting guide, tests/support/porting_jobs.py) --

results = []


def job_success_callback(result):
    results.append("Success: %s" % result)


def job_failure_callback(result):
    results.append(result)


calls = collections.Counter()  # key -> calls of conflicts_first (this process)


def conflicts_first(context, key, times):
    """Raise ConflictError on the first ``times`` calls for ``key``; then return the number of calls."""
    from ZODB.POSException import ConflictError

    calls[key] += 1
    if calls[key] <= times:
        raise ConflictError("conflict %d of %s" % (calls[key], key))
    return calls[key]


def hot_write(context, entry, seconds="0.3"):
    """Read the site's one hot counter, wait, write it: jobs running at once conflict every time.

    A PersistentMapping has no conflict resolution, so two such jobs of two
    worker processes cannot both commit; ``entry`` is recorded in the same
    transaction (a job whose effects were committed twice would show twice).
    """
    hot = api.portal.get()._zasync_test_hot
    count = hot.get("count", 0)
    time.sleep(float(seconds))
    hot["count"] = count + 1
    hot[entry] = hot.get(entry, 0) + 1
    return os.getpid()


# -- the soak with faults (tests/cluster/test_chaos.py) --


def mark_outside_too(context, entry, directory):
    """Write ``entry`` to a file (an outside effect, as a mail is), then ``mark`` it.

    The line goes to ``effects-<pid>.log`` in ``directory`` first, outside any
    transaction: a run interrupted after it leaves the line and no mark. While a
    file ``hold`` exists in ``directory`` the job then waits (a minute at most),
    having added ``entry`` to ``held-<pid>``: the soak kills a worker, or
    restarts the storage, knowing which jobs were running then.
    """
    pid = os.getpid()
    with open(os.path.join(directory, "effects-%d.log" % pid), "a") as effects:
        effects.write(entry + "\n")
    hold = os.path.join(directory, "hold")
    if os.path.exists(hold):
        with open(os.path.join(directory, "held-%d" % pid), "a") as held:
            held.write(entry + "\n")
        deadline = time.monotonic() + 60
        while os.path.exists(hold) and time.monotonic() < deadline:
            time.sleep(0.05)
    return mark(context, entry)


def reset():
    """Forget what earlier tests' jobs left in this module (tests/support/base.py calls it before each test)."""
    _attempts.clear()
    calls.clear()
    with ran_lock:
        del ran[:]
    del results[:]
    gate.clear()
