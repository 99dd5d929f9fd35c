"""Group commit: the completion of a job that wrote nothing is committed by its dispatcher.
Not for add-ons.

A job's function, its result and its new state are committed in one
transaction (worker/runner.py). When the function wrote nothing to the database
(no object changed, no data manager such as the mail queue joined, no
commit hook), that transaction would write the job alone: one commit per
job, which is most of what a short job costs. Instead, the job thread
hands the job's new state to its dispatcher, which writes it with the
other jobs it files in its next pass (a few milliseconds later), in one
commit for many jobs.

Nothing is weakened: a job with effects in the database still commits
them with its completion, once. A job without such effects that ran while
its worker died before the dispatcher's commit runs again elsewhere, as a
job does that was interrupted before its own commit (at least once).

The worker setting ``group-commit off`` turns this off.
"""

from collective.zasync import interfaces
from persistent import Persistent

import io
import logging
import pickle
import transaction


log = logging.getLogger("collective.zasync")

# What storing a job's outcome changes (Job.finish, Job.complete, the runner).
OUTCOME = frozenset({"_result", "retries", "ended", "started", "status", "events_fired"})


def snapshot(job):
    """The job's attributes now: compared with outcome_of() after the function ran."""
    return dict(job.__getstate__())


def outcome_of(job, before):
    """The job's new attributes, if its transaction writes nothing else; else None.

    ``before``: snapshot(job) when the attempt began. "Nothing else" counts
    what a savepoint moved out of sight (the connection's savepoint storage
    holds it, ``_registered_objects`` no longer does), new objects, other
    databases or data managers joined, and commit or abort hooks (aborting
    the transaction would fire the abort hooks of a job that completed).
    """
    txn = transaction.get()
    jar = job._p_jar
    if job.status != interfaces.COMPLETED or txn._resources != [jar]:
        return None  # callbacks to run, or another database or data manager joined
    if written_oids(jar) != {job._p_oid} or jar._added:
        return None
    if _any(txn.getBeforeCommitHooks()) or _any(txn.getAfterCommitHooks()) or _any(txn.getAfterAbortHooks()):
        return None
    after = job.__getstate__()
    changed = {name: value for name, value in after.items()
               if name not in before or before[name] is not value}
    if set(before) - set(after) or not set(changed) <= OUTCOME or not _plain(changed.get("_result")):
        return None
    return changed


def written_oids(jar):
    """The oids that committing ``jar`` now would write: changed objects, and those a savepoint holds."""
    oids = {obj._p_oid for obj in jar._registered_objects}
    held = jar._savepoint_storage  # (savepoints move changed objects there)
    if held is not None:
        oids.update(held.index)
    return oids


def _any(hooks):
    return next(iter(hooks), None) is not None


def _plain(value):
    """True if ``value`` refers to no persistent object (it can be stored by another connection)."""
    if value is None or isinstance(value, (str, bytes, int, float, bool)):
        return True
    pickler = _PersistentFinder(io.BytesIO(), protocol=3)
    pickler.dump(value)
    return not pickler.found


class _PersistentFinder(pickle.Pickler):
    found = False

    def persistent_id(self, obj):
        if isinstance(obj, Persistent):
            self.found = True
            return "persistent"
        return None


def record_outcomes(root, record, outcomes):
    """Write the outcomes handed over by job threads: ``(oid, claim token, attributes)``.

    A job that was taken from this worker meanwhile (declared dead, time
    limit, stopped) keeps its state: it runs again where it went.
    """
    jar = root._p_jar
    for oid, token, changed in outcomes:
        job = jar.get(oid)
        if job.worker_uuid != record.uuid or job.claim_token != token or job.status != interfaces.ACTIVE:
            log.info("Job %s was taken from worker %s before its completion was recorded; "
                     "it runs again.", job.id, record.uuid)
            continue
        for name, value in changed.items():
            setattr(job, name, value)
