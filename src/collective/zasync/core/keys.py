"""The keys of the trees jobs wait and end in (core/queue.py's table). Not for add-ons.

Waiting jobs are keyed by when they are due, so that a claim reads the front of
a tree; finished jobs newest first, so that a page of them is read from the front.
"""

from collective.zasync import interfaces


FAR_FUTURE_US = 10**17  # finished keys count down from here: newest first


def waiting_key(job):
    """The ``waiting`` key: when the job is due (microseconds since 1970), its id, its claim token.

    A job is due at its begin_after, or when it was queued: so a delayed job
    that has become due is not passed by the jobs queued after that moment.
    A job given back after a claim (its claim token changed) is filed under a
    new key: the entry its claim left (filing.drop_taken) is never taken for
    it, and deleting that old entry cannot undo the filing (two commits that
    wrote different keys: both count).
    """
    return waiting_key_at(due_us(job), job.id, job.claim_token)


def due_us(job):
    """When ``job`` is due (its ``waiting`` key's time), in microseconds since 1970."""
    when = job.queued if job.begin_after is None else max(job.begin_after, job.queued)
    return int(when.timestamp() * 1_000_000)


def waiting_key_at(when_us, job_id, claim_token=None):
    """The ``waiting`` key of job ``job_id`` due at ``when_us`` (see waiting_key)."""
    key = "%016d.%s" % (when_us, job_id)
    return key if not claim_token else "%s.%d" % (key, claim_token)


def due_key(timestamp):
    """A key above every ``waiting`` key due at ``timestamp`` (seconds since 1970)."""
    return "%016d/" % int(timestamp * 1_000_000)


def due_time(key):
    """The time (seconds since 1970) a ``waiting`` key is due."""
    return int(key.split(".", 1)[0]) / 1_000_000


def finished_key(job):
    """The completed/failed key: newest first, then id."""
    return finished_key_at(job.ended.timestamp(), job.id)


def finished_key_at(timestamp, job_id=""):
    return "%017d.%s" % (FAR_FUTURE_US - int(timestamp * 1_000_000), job_id)


def waits(key, job):
    """True if the ``waiting`` entry ``key`` -> ``job`` is a job to claim.

    Only one dispatcher deletes claimed entries (filing.drop_taken): the
    others' claims leave theirs for it, which they pass over meanwhile.
    """
    return (job.worker_uuid is None and job.status in (interfaces.PENDING, interfaces.CALLBACKS)
            and key == waiting_key(job))
