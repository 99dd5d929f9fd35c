"""Shared commits: short jobs of one kind, site and user commit their effects together.
Not for add-ons.

A job's function, its result and its new state commit in one transaction (runner.py). For
short jobs that compute (they take turns: worker/turns.py), that commit is a large part of
what a job costs: a round trip to the database server, and the catalog's buckets written
once per job. So a job thread that holds several claimed jobs runs those of one kind (their
function), for one site and one user, one after the other in ONE transaction, and commits
once: a group.

What a job is promised does not change:

- Its effects and its completion are written in the same transaction: the group's commit
  writes both, for every member, or neither. A member counts as running here until that
  commit is done; then the group looks at each member again (``end``): one whose completion
  is not in the database (the commit failed: a conflict, the database away) runs again,
  alone; its effects were lost with it, so they happen once.
- A job that raises (or conflicts) in a group aborts the group's transaction: it, and each
  member before it, runs again alone, where its error is handled as if there had been no
  group. One failing job fails alone, and nothing of it or of the members is committed twice.
  (A savepoint before each job would spare the members their second run, at a price paid by
  every job: it writes each changed object once more. Measured with document jobs: 150 jobs/s
  with savepoints, 220 without; a job's error is the rare case.)
- A job that must commit in its own environment (it registered commit hooks, or joined a
  data manager other than ZODB's connections and the catalog's indexing queue: mail, say)
  does not stay in the group: it commits at once, with the members before it, as it would
  alone. So does one that committed by itself (a checkpoint): that commit took the members
  with it, with their completions.

The catalog's indexing queue is processed at the end of each member, in its environment (its
processors may need the site). For a while after a group of a kind
conflicted at its commit, jobs of that kind do not group (the conflict gate). The worker setting ``group-commit off`` turns this off
with the dispatcher's group commit (worker/groupcommit.py).
"""

from collective.zasync.core.job import kind_of
from collective.zasync import interfaces
from collective.zasync.client.transactional import commit
from collective.zasync.core.queue import get_queue_root
from collective.zasync.defaults import GROUP_SECONDS
from collective.zasync.defaults import GROUP_SIZE
from Products.CMFCore.indexing import processQueue
from Products.CMFCore.indexing import QueueTM
from ZODB.Connection import Connection

import logging
import time
import transaction


log = logging.getLogger("collective.zasync")


def key_of(job):
    """What the members of a group share: the function, the site, the user."""
    return (kind_of(job), job.site_path, job.userfolder_path, job.user_id)


def commits_alone(txn):
    """True if ``txn`` holds more than ZODB's connections and the catalog's indexing queue."""
    for resource in txn._resources:
        if not isinstance(resource, (Connection, QueueTM)):
            return True
    for hook, _args, _kws in txn.getBeforeCommitHooks():
        if not isinstance(getattr(hook, "__self__", None), QueueTM):
            return True
    return any(True for _ in txn.getAfterCommitHooks()) or any(True for _ in txn.getAfterAbortHooks())


class Group:
    """The jobs of one job thread's run that share a transaction; ``members`` wait for its commit."""

    def __init__(self, runner, conn, size=None, seconds=None):
        self.runner, self.conn = runner, conn
        self.size = size or GROUP_SIZE
        self.seconds = seconds or GROUP_SECONDS
        self.began = time.monotonic()
        self.jobs = 0  # jobs this run took in all (members or not)
        self.members = []  # (oid, claim token) of the jobs whose effects the transaction holds
        self.key = self.txn = None
        self.rerun = []  # (oid, claim token) of members whose effects were lost: each runs again alone

    def wants_more(self):
        """True while the run may take another job."""
        return self.jobs < self.size and time.monotonic() - self.began < self.seconds

    def has(self, oid):
        return any(member == oid for member, _token in self.members)

    def fits(self, oid, token):
        """True if the claimed job ``oid`` may run in the group's transaction: it is ours there
        (claimed before the transaction began), not done yet, and of the group's key."""
        job = get_queue_root(self.conn, create=False)._p_jar.get(oid)
        return (job.worker_uuid == self.runner.worker_uuid and job.claim_token == token
                and job.status == interfaces.ACTIVE and not job.alone and key_of(job) == self.key)

    def keep(self, job, oid, token, retries):
        """The job ran and its outcome is stored (in its environment): True if it stays in the
        group, its commit to come; False if the caller commits now (with the members before it)."""
        txn = transaction.get()
        if self.members and txn is not self.txn:
            return False  # it committed (or aborted) by itself: end() sees what became of the members
        if (retries or job.status != interfaces.COMPLETED or job.alone
                or not self.runner.gate.may_group(key_of(job)[0])):
            return False
        if len(self.members) + 1 >= self.size or time.monotonic() - self.began >= self.seconds:
            return False  # the last one: it commits the group in its environment
        processQueue()  # (what it reindexes is indexed now, in its environment)
        if commits_alone(txn):
            return False
        if not self.members:
            self.key, self.txn = key_of(job), txn
        self.members.append((oid, token))
        return True

    def set_aside(self):
        """The job that follows the members failed: abort; each member whose completion is not
        in the database (unless that job's own commit took them along) runs again alone."""
        self.end(ended=True)

    def end(self, ended=False):
        """Commit the members (``ended``: their transaction ended already, committed or not);
        then each one whose completion is in the database is settled, the others run again."""
        members, kind = self.members, self.key[0] if self.key else None
        self.members, self.key, self.txn = [], None, None
        if not members:
            return
        if ended:
            transaction.abort()
        else:
            self._commit(members, kind)
        lost = self._lost(members)
        for oid, token in members:
            if (oid, token) not in lost:
                self.runner.done.settled(oid, token)
        self.rerun.extend(member for member in members if member in lost)
        if len(lost) < len(members):
            self.runner.shared_commits += 1
            self.runner.jobs_in_shared_commits += len(members) - len(lost)

    def _commit(self, members, kind):
        try:
            commit()
        except Exception as exc:  # a conflict, the database away: each member runs again alone
            transaction.abort()
            log.info("%d jobs that shared a commit did not commit (%s); each runs again alone.",
                     len(members), exc)
            self.runner.gate.group_conflicted(kind)

    def _lost(self, members):
        """The members whose completion is not in the database, and still ours: to run again."""
        try:
            transaction.begin()
            jar = get_queue_root(self.conn, create=False)._p_jar
            lost = set()
            for oid, token in members:
                job = jar.get(oid)
                if (job.status == interfaces.ACTIVE and job.worker_uuid == self.runner.worker_uuid
                        and job.claim_token == token):
                    lost.add((oid, token))
            return lost
        except Exception as exc:  # (the database away: each runs again, and waits for it if need be)
            log.info("Could not look at %d jobs that shared a commit (%r); each runs again.", len(members), exc)
            return set(members)
        finally:
            transaction.abort()
