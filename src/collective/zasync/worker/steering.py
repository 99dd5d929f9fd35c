"""Steering: the jobs of a kind that conflicts run in one worker process. Not for add-ons.

Within a process, jobs of one kind (their function) that conflict with each other run one
at a time (worker/conflictgate.py). Across processes nothing serializes them: two workers
reindexing one catalog conflict over and over, each conflict costing an attempt (a group
of jobs that shared a commit, all of them), while one process alone runs them without a
conflict, and as fast: the catalog's commit is the bottleneck either way.

So a dispatcher writes on its worker record the kinds whose jobs conflicted in its process
lately (``note``), and for STEER_FOR seconds after the last such conflict, in any process,
the jobs of those kinds belong to one live worker, the finisher (the first by uuid, which
files for all: filing.finisher), instead of to the worker their key hashes to
(claiming.Share). So one process claims them and files what they did in one pass, as a
single worker does, and kinds that conflict with each other (two functions reindexing one
catalog) are in that process together, where its threads take turns (worker/turns.py).
Another worker takes them only when the finisher claimed nothing for STEAL_AFTER seconds:
it is stopping, hung, or busy with long jobs. Jobs of other kinds are shared as before, so
the other processes run those meanwhile. Nothing here decides whether a job runs, only
where: a steered job waits at most STEAL_AFTER seconds longer than its owner takes to get
to it.
"""

from collective.zasync.core.job import kind_of
from collective.zasync.defaults import STEAL_AFTER
from collective.zasync.defaults import STEER_FOR
from collective.zasync.worker.filing import live_uuids

import logging


log = logging.getLogger("collective.zasync")

# A conflict newer by less than this than the one on the record is not written: the record
# is written by a pass that claims anyway, and a steady stream of conflicts needs no more.
NOTE_EVERY = 5.0


def note(record, conflicts, now):
    """Write on worker ``record`` the kinds that conflicted in its process (``conflicts``: kind ->
    when, seconds since 1970) if they are new or newer by NOTE_EVERY; forget the ones past
    STEER_FOR. ``now``: seconds since 1970."""
    noted = dict(record.conflicting or {})
    fresh = {kind: when for kind, when in noted.items() if when > now - STEER_FOR}
    for kind, when in conflicts.items():
        if when > fresh.get(kind, 0.0) + NOTE_EVERY and when > now - STEER_FOR:
            if kind not in fresh:
                log.info("Jobs of %s conflicted in worker %s: while they do (and %d s after), they "
                         "run in one worker process, the finisher.", kind, record.uuid, STEER_FOR)
            fresh[kind] = when
    if fresh != noted:
        record.conflicting = fresh  # (a new dict: the record is written)


def owners(root, live, now):
    """Kind -> the uuid of the live worker its jobs belong to (the finisher: the first of
    ``live``, their uuids sorted), for each kind that conflicted within STEER_FOR seconds in a
    live worker."""
    kinds = set()
    for uuid in live:
        noted = root.workers[uuid].conflicting or {}
        kinds.update(kind for kind, when in noted.items() if when > now - STEER_FOR)
    return dict.fromkeys(kinds, live[0])


def elsewhere(root, uuid, now):
    """True if jobs of some kind belong to a live worker other than ``uuid`` now."""
    live = live_uuids(root)
    return len(live) > 1 and live[0] != uuid and bool(owners(root, live, now))


def takeable_after(record):
    """When (seconds since 1970) another worker may take the steered jobs of worker ``record``:
    STEAL_AFTER seconds after its last claim."""
    return (record.last_claim or 0.0) + STEAL_AFTER


def steered_owner(owners, job):
    """The uuid of the worker ``job`` belongs to by its kind, or None (by its key)."""
    return owners.get(kind_of(job) or "") if owners else None
