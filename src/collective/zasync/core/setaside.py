"""Jobs that can no longer be loaded are set aside, so that the queue goes on without them.

A job stores its arguments, its result and its checkpoint state, pickled. If
the class of one of them changes incompatibly after the job was queued (a
new release of an add-on), loading the job raises; and a dispatcher's pass
loads every job it files or looks at: one such job would make every pass of
every worker fail, and no job would run any more.

So filing sets aside a job it cannot load as it reads an inbox or a done
log (a job filed from its card, cards.py, is not loaded: the claim that
meets it sets it aside), and when a pass fails with an error that is not a conflict, the
dispatcher looks at the other jobs the pass loads, those waiting and those
claimed (``set_aside_unloadable``): what cannot be loaded is moved out of the
way, into ``QueueRoot.set_aside``: oid -> (job, error, when, where it was,
its id if known). The next pass goes on. They are listed in the control panel
with their error; an administrator files one again once its code is fixed,
or removes it (actions.retry_set_aside, actions.remove_set_aside). Loading a
job that is loaded already costs nothing: none of this slows the queue down.
"""

from collective.zasync.core.job import utcnow
from collective.zasync.core.priority import waiting_trees
from collective.zasync.core.trees import made
from collective.zasync.defaults import SET_ASIDE_LOOKED_AT
from transaction.interfaces import TransientError
from ZODB.POSException import ConflictError

import io
import itertools
import logging
import pickle


log = logging.getLogger("collective.zasync")


def error_text(error):
    """What to show of a load error: its cause (ZODB's StateLoadError says nothing: its cause does)."""
    cause = error.__cause__ or error
    return "%s: %s" % (type(cause).__name__, cause)


def load_error(job):
    """The error that loading ``job`` raises, or None if it loads."""
    try:
        job._p_activate()
    except (ConflictError, TransientError):
        raise  # (not the job's: the database)
    except Exception as exc:
        return exc
    return None


class _Stub:
    """Stands for every class while a record is read without its classes (``stored_id``)."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


class _WithoutClasses(pickle.Unpickler):
    def find_class(self, module, name):
        return _Stub

    def persistent_load(self, reference):
        return None


def stored_id(job):
    """The id stored in the record of ``job``, read without the classes it refers to (one of them
    may be why the job does not load); None if that cannot be read either.

    Filing reads a job under its inbox key, which is not its id when the job was retried or
    the clock went back: setting the job aside under the wrong id would leave it listed, and
    the jobs that depend on it waiting for ever.
    """
    return stored_text(job, "id")


def stored_text(job, name):
    """The text attribute ``name`` stored in the record of ``job``, read as stored_id reads its id; or None."""
    try:
        data, _serial = job._p_jar._storage.load(job._p_oid)
        unpickler = _WithoutClasses(io.BytesIO(data))
        unpickler.load()  # (the class)
        state = unpickler.load()
    except (ConflictError, TransientError):
        raise
    except Exception:
        return None
    state = state[0] if isinstance(state, tuple) else state
    value = state.get(name) if isinstance(state, dict) else None
    return value if isinstance(value, str) else None


def set_aside_unloadable(root):
    """Set aside the jobs that a dispatcher's pass would fail to load; return how many entries
    it took out of the way (waiting, claimed)."""
    count = 0
    # (Inboxes and done logs: filing sets aside what it cannot load as it reads them.)
    for queue in root.queues.values():
        for _priority, tree in waiting_trees(queue):
            for key, job in list(itertools.islice(tree.items(), SET_ASIDE_LOOKED_AT)):
                error = load_error(job)
                if error is not None:
                    set_aside_waiting(root, queue, tree, key, job, error)
                    count += 1
    for record in root.workers.values():
        for job_id, job in list(record.claimed.items()):
            error = load_error(job)
            if error is not None:
                del record.claimed[job_id]
                set_aside(root, job, error, "claimed by worker %s" % record.uuid, job_id)
                count += 1
    return count


def set_aside_waiting(root, queue, tree, key, job, error):
    """Set aside ``job``, which cannot be loaded, from its entry ``key`` in ``tree`` of ``queue``'s waiting jobs."""
    del tree[key]
    queue.waiting_count.change(-1)
    set_aside(root, job, error, "waiting in queue %r" % queue.name, key.split(".")[1])


def set_aside(root, job, error, where, job_id=None):
    """Keep ``job`` (which cannot be loaded) in ``root.set_aside``; 1 if it was not there yet.

    Its entry where it was found is the caller's to remove (or read past);
    other entries it may still have (a waiting entry its claim left) are
    passed over by their readers, as they find it here.
    """
    if job._p_oid in made(root, "set_aside"):
        return 0
    for queue in root.queues.values():
        if job_id is not None and queue.jobs.get(job_id) is job:
            del queue.jobs[job_id]  # (its page would fail to load it)
    text = error_text(error)
    root.set_aside[job._p_oid] = (job, text, utcnow(), where, job_id)
    log.error("Job %s (%s) cannot be loaded and is set aside, so that the queue goes on: %s. "
              "Fix the code it needs, then retry it from the control panel.", job_id or "?", where, text)
    return 1


def is_set_aside(root, job):
    return root.set_aside is not None and job._p_oid in root.set_aside


def set_aside_jobs(root):
    """(key, job id, error, when, where) of the jobs set aside, oldest first; key: the hex oid."""
    entries = root.set_aside or {}
    rows = [(oid.hex(), job_id, text, when, where)
            for oid, (_job, text, when, where, job_id) in entries.items()]
    return sorted(rows, key=lambda row: row[3])
