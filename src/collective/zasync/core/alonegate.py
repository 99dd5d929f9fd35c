"""The alone gate: a job out of conflict retries runs once more alone in the cluster. Not for add-ons.

The conflict gate of each worker process (worker/conflictgate.py) keeps a job from
conflicting with the jobs of its own process. A job that still runs out of conflict
retries (it conflicts with jobs of other workers) is not failed at once: it waits in
the queue root's AloneGate until the jobs that live workers hold have finished, then
runs with nothing else claimed anywhere. Only if it conflicts that often again (with
requests, say) does it fail.

It must never stop the cluster for long: claims of workers that stopped pinging do
not count (a killed worker's jobs wait for the reaper, a full death interval after an
outage); both waits are bounded (ALONE_DRAIN, ALONE_HOLD); and after a job ran
alone, claims go on for at least as long as it stopped them, so that jobs going
alone one after another stop claims at most half of the time.
"""

from BTrees.OOBTree import OOBTree
from collective.zasync import interfaces
from collective.zasync.core.places import unfile_waiting
from collective.zasync.core.trees import made
from collective.zasync.defaults import ALONE_DRAIN
from collective.zasync.defaults import ALONE_HOLD
from collective.zasync.defaults import ALONE_LOOK
from datetime import datetime
from datetime import timezone
from persistent import Persistent

import logging


log = logging.getLogger("collective.zasync")
STOP = True  # claim_alone: claim nothing now


class AloneGate(Persistent):
    """The jobs waiting to run alone in the cluster; ``root.alone_gate``, made on first use."""

    last = None  # the last job claimed to run alone
    last_claimed = 0.0  # when (seconds since 1970)
    last_wait = 0.0  # how long claims were stopped before that (seconds)

    def __init__(self):
        self.waiting = OOBTree()  # job id -> job


def wait_alone(root, job, now):
    """Take ``job`` from its worker: it runs again, alone in the cluster (claim_alone)."""
    record = root.workers.get(job.worker_uuid)
    if record is not None:
        record.claimed.pop(job.id, None)
    job.release()
    # Claimed by a worker other than the finisher, its waiting entry may still be there
    # (filing.drop_taken): released, it would be claimed from there, not alone.
    unfile_waiting(root.queues[job.queue_name], job)
    job.alone = True
    job.alone_since = now
    made(root, "alone_gate", AloneGate).waiting[job.id] = job


def claim_alone(root, claimed_now, now, free, may_start):
    """The jobs to claim now, if some wait to run alone (or None); STOP: claim nothing.

    ``claimed_now``: the unfinished jobs claimed by every worker;
    ``may_start(job)``: whether its queue's concurrency and quotas let it
    start (it is then counted as running). The jobs waiting then all go to one worker (up to ``free``), whose
    process gate runs those that conflict with each other one at a time: one
    drain serves them all. Costs one attribute lookup in a database where no
    job ever ran out of conflict retries.
    """
    state = root.alone_gate
    if state is None or not (state.waiting or any(job.alone for job in claimed_now)):
        return None
    live = live_claims(root)
    if any(job.alone and job.status == interfaces.ACTIVE and _seconds(now, job.started) < ALONE_HOLD
           for job in live):
        return STOP  # they run alone: nothing else starts meanwhile
    waiting = _waiting(state)
    if not waiting:
        return None
    first = waiting[0]
    stop_from = max(first.alone_since or now, datetime.fromtimestamp(_reopens(state, now), timezone.utc))
    if now < stop_from:
        return None  # claims go on for as long as the last jobs alone stopped them
    waited = _seconds(now, stop_from)
    if live and waited < ALONE_DRAIN:
        return STOP  # let the running jobs finish first
    jobs = []
    for job in waiting:
        if len(jobs) < free and may_start(job):
            jobs.append(job)
    if not jobs:
        return None  # a job of their queue runs on: they wait for that, claims go on
    for job in jobs:
        del state.waiting[job.id]
    state.last, state.last_claimed, state.last_wait = jobs[-1], now.timestamp(), waited
    log.info("%d job(s) run alone in the cluster now: %s (claims stopped %.2f s; %d claimed jobs left running).",
             len(jobs), " ".join(job.id for job in jobs), waited, len(live))
    return jobs


def next_look(root, now):
    """When dispatchers should look again while the gate is in use (seconds since 1970), or None."""
    state = root.alone_gate
    if state is None or not (state.waiting or now.timestamp() < state.last_claimed + ALONE_HOLD):
        return None
    return now.timestamp() + ALONE_LOOK


def live_claims(root):
    """The unfinished jobs claimed by workers that still ping."""
    return [job for record in root.workers.values() if record.is_alive()
            for job in record.claimed.values() if job.status != interfaces.COMPLETED]


def _waiting(state):
    """The jobs still waiting to run alone, oldest first; forget those cancelled meanwhile."""
    jobs = []
    for job_id, job in list(state.waiting.items()):
        if job.status == interfaces.PENDING and job.worker_uuid is None:
            jobs.append(job)
        else:
            del state.waiting[job_id]  # cancelled, or its content deleted meanwhile
    return sorted(jobs, key=lambda job: job.alone_since)


def _reopens(state, now):
    """When claims have gone on as long as the last job alone stopped them (seconds since 1970).

    It stopped them while the cluster drained, then while it ran (at most
    ALONE_HOLD); no new wait begins before as long again has passed.
    """
    if state.last is None:
        return 0.0
    ended = state.last.ended.timestamp() if state.last.ended is not None else now.timestamp()
    held = min(max(ended - state.last_claimed, 0.0), ALONE_HOLD)
    return state.last_claimed + held + state.last_wait + held


def _seconds(now, since):
    return (now - since).total_seconds() if since is not None else float("inf")
