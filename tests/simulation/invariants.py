"""What must hold after every step of a schedule, and once it has settled (DESIGN.md, "Invariants").

Read through a connection of the test's own, at the last commit:

- every queued job is in exactly one place: an inbox, a waiting tree,
  kept aside for its dependencies or to run alone, running as a batch,
  claimed by a worker, a done log, or finished (a finished job may since have
  been removed, by retention or an administrator);
- once faults stop, every job completes, exactly once, and nothing is left
  behind: no claim, no unread entry, no entry for a job that is gone;
- a completed job's writes are all in the database, a failed job's none of
  them (checkpoints aside), and a job queued in a request that aborted never ran.
"""

from collective.zasync import interfaces
from collective.zasync.core.priority import waiting_trees
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.places import is_filed_finished
from collective.zasync.core.keys import waits
from collective.zasync.core.setaside import load_error

import collections


def unloadable(job):
    """True if ``job`` cannot be loaded (an argument's class changed: world.Fragile)."""
    return load_error(job) is not None


def waits_for_set_aside(job, aside_oids):
    """A job blocked only by jobs set aside waits for an administrator (who retries or removes
    them): settled, as far as the workers go."""
    if job.status != interfaces.PENDING or not job.depends_on:
        return False
    pending = [dep for dep in job.depends_on if dep._p_oid in aside_oids or unloadable(dep)
               or dep.status != interfaces.COMPLETED]
    return bool(pending) and all(dep._p_oid in aside_oids for dep in pending)


def loads(job):
    return load_error(job) is None


RUNNING_OR_WAITING = (interfaces.PENDING, interfaces.ACTIVE, interfaces.CALLBACKS)


class Observer:
    """Reads the database as it is after the last commit."""

    def __init__(self, world):
        import transaction

        self.world = world
        self.manager = transaction.TransactionManager()
        self.conn = world.db.open(transaction_manager=self.manager)
        self.known = {}  # job oid -> job (queued ones and those derived from them)
        self.seen_finished = set()  # oids of jobs seen filed as finished
        self.last_tid = None
        self.history = collections.defaultdict(list)  # job oid -> [(step, places, status, worker)]

    def close(self):
        self.manager.abort()
        self.conn.close()

    def refresh(self):
        """Begin a new transaction if something was committed since the last one; True if so."""
        tid = self.world.storage.lastTransaction()
        if tid == self.last_tid:
            return False
        self.last_tid = tid
        self.manager.begin()
        return True

    def root(self):
        return get_queue_root(self.conn, create=False)

    def jobs(self):
        """The jobs to account for: the queued ones and what derives from them (runs, sub-jobs)."""
        for oid in self.world.queued:
            if oid not in self.known:
                self.known[oid] = self.conn.get(oid)
        for job in list(self.known.values()):
            if unloadable(job):
                continue
            derived = list(job.subjobs)
            if job.recurrence is not None and job.recurrence.current is not None:
                derived.append(job.recurrence.current)
            for other in derived:
                if other._p_oid is not None and other._p_oid not in self.known:
                    self.known[other._p_oid] = other
        return list(self.known.values())

    # -- where each job is ---------------------------------------------------------------

    def places(self, root):
        """job oid -> the places it is in now (a list)."""
        found = collections.defaultdict(list)
        aside = getattr(root, "set_aside", None) or {}

        def put(job, place, condition=lambda job: True):
            if place != "set aside" and job._p_oid in aside:
                return  # (its other entries are passed over by their readers)
            try:
                if not condition(job):
                    return
            except Exception:  # a job that cannot be loaded is where its entry is
                if not unloadable(job):
                    raise
            if place not in found[job._p_oid]:
                found[job._p_oid].append(place)

        for queue in root.queues.values():
            for inbox in queue.inboxes.values():
                for _key, job in inbox.unread():
                    put(job, "inbox", lambda job: job.status == interfaces.PENDING)
            for _priority, tree in waiting_trees(queue):
                for key, job in tree.items():
                    put(job, "waiting", lambda job: waits(key, job))
            for tree in (queue.completed, queue.failed):
                for job in tree.values():
                    put(job, "finished")
                    self.seen_finished.add(job._p_oid)
            for batch in queue.batches.values():
                if batch.status == interfaces.ACTIVE:
                    put(batch, "running batch")
                    for subjob in batch.subjobs:
                        put(subjob, "in its batch", lambda job: job.status == interfaces.NEW)
        aside = getattr(root, "set_aside", None) or {}
        for job, _text, _when, _where, _id in aside.values():
            put(job, "set aside")
        for job in (getattr(root, "blocked", None) or {}).values():
            put(job, "blocked", lambda job: job.status == interfaces.PENDING)
        gate = getattr(root, "alone_gate", None)
        if gate is not None:
            for job in gate.waiting.values():
                put(job, "waiting to run alone",
                    lambda job: job.status == interfaces.PENDING and job.worker_uuid is None)
        claimed = {job._p_oid for uuid, record in root.workers.items()
                   for job in record.claimed.values() if loads(job) and job.worker_uuid == uuid}
        for uuid, record in root.workers.items():
            for job in record.claimed.values():
                put(job, "claimed by %s" % uuid, lambda job: job.worker_uuid == uuid)
            if record.done is not None:
                for _key, job in record.done.unread():
                    # A job retried since it was put there is passed over (filing.file_done);
                    # one claimed again too: its end is filed once (queue.is_filed_finished).
                    put(job, "done log of %s" % uuid,
                        lambda job: job.status == interfaces.COMPLETED and job._p_oid not in claimed)
        return found

    def check_places(self):
        """Every job in exactly one place (a finished one maybe removed since)."""
        root = self.root()
        found = self.places(root)
        problems = []
        for job in self.jobs():
            where = found.get(job._p_oid, [])
            if job._p_oid in self.world.removed:
                continue  # set aside, then removed by an administrator
            if unloadable(job):
                history = self.history[job._p_oid]
                if not history or history[-1][1:] != (where, "unloadable", None, None):
                    history.append((self.world.sim.steps, where, "unloadable", None, None))
                continue  # (its entries cannot be told live or stale here; once settled, it is set aside)
            if job.callback_kind is not None:
                continue  # a callback runs as part of its job
            if job.status == interfaces.NEW:
                if len(where) > 1 or (where and where != ["in its batch"]):
                    problems.append("job %s is new and %s" % (job.id, where))
                continue
            recurrence = job.recurrence
            if (recurrence is not None and not recurrence.cancelled and recurrence.current is job
                    and "finished" in where):
                problems.append("recurring job %s stopped: its run %s was filed finished and no next run "
                                "is due, although it was not stopped" % (recurrence.id, job.id))
            if job.status == interfaces.COMPLETED and not where and job._p_oid in self.seen_finished:
                continue  # removed after it was filed: retention, an administrator
            seen = (where, job.status, job.worker_uuid, job.claim_token)
            history = self.history[job._p_oid]
            if not history or history[-1][1:] != seen:
                history.append((self.world.sim.steps,) + seen)
            if len(where) != 1:
                problems.append("job %s (%s, %s) is in %s; before: %s" % (
                    job.id, job.describe(), job.status, where or "no place: lost",
                    " / ".join("step %d: %s %s %s#%s" % entry for entry in history[-6:-1])))
        return problems

    # -- once it settled ---------------------------------------------------------------------

    def unsettled(self):
        """What is left to do (empty once the schedule has settled)."""
        root = self.root()
        left = []
        found = self.places(root)
        aside_oids = set(getattr(root, "set_aside", None) or ())
        for job in self.jobs():
            if found.get(job._p_oid) == ["set aside"] or job._p_oid in self.world.removed:
                continue  # (loaded in this connection before its class changed, maybe)
            if found.get(job._p_oid) == ["finished"] and unloadable(job):
                continue  # its class changed after it finished: the retention removes it
            if not found.get(job._p_oid) and job._p_oid in self.seen_finished:
                continue  # filed finished, then removed (retention, an administrator)
            if unloadable(job):
                left.append("job %r cannot be loaded and is in %s; before: %s" % (
                    job._p_oid, found.get(job._p_oid), self.history[job._p_oid][-4:]))
            elif job.status != interfaces.COMPLETED and not waits_for_set_aside(job, aside_oids):
                left.append("job %s is %s" % (job.id, job.status))
        for queue in root.queues.values():
            for inbox in queue.inboxes.values():
                if inbox.unread_count():
                    left.append("inbox %s has %d unread" % (inbox.writer, inbox.unread_count()))
            for _priority, tree in waiting_trees(queue):
                if len(tree):
                    left.append("queue %r has %d waiting entries" % (queue.name, len(tree)))
        requests = getattr(root, "cancel_requests", None) or {}
        for job_id, request in requests.items():
            if not unloadable(request[2]) and request[2].status == interfaces.COMPLETED:
                left.append("the cancel request of job %s (finished) is still kept" % job_id)
        for uuid, record in root.workers.items():
            if len(record.claimed):
                left.append("worker %s claims %s" % (uuid, list(record.claimed.keys())))
            if record.done is not None and record.done.unread_count():
                left.append("done log of %s has %d unread" % (uuid, record.done.unread_count()))
        return left

    def check_settled(self):
        """Once settled: nothing kept for jobs that are gone, counts right, effects exactly once."""
        root = self.root()
        problems = []
        aside = set(getattr(root, "set_aside", None) or ())
        for queue in root.queues.values():
            name = queue.name
            waiting = sum(len(tree) for _p, tree in waiting_trees(queue))
            if queue.waiting_count() != waiting:
                problems.append("queue %r counts %d waiting, has %d" % (name, queue.waiting_count(), waiting))
            for tree, length in ((queue.completed, queue.completed_count), (queue.failed, queue.failed_count)):
                if length() != len(tree):
                    problems.append("queue %r counts %d finished, has %d" % (name, length(), len(tree)))
            if len(queue.batches):
                problems.append("queue %r keeps running batches %s" % (name, list(queue.batches.keys())))
            if len(queue.unique):
                problems.append("queue %r keeps unique keys %s" % (name, list(queue.unique.keys())))
            ended = getattr(queue, "ended_unfiled", None)
            if ended:
                problems.append("queue %r keeps ended_unfiled %s (its inboxes are read)" % (name, list(ended)))
            live_recurrences = [r for r in queue.recurring.values() if not r.cancelled]
            if len(queue.recurring) != len(live_recurrences):
                problems.append("queue %r keeps cancelled recurrences" % name)
            filed = {key.split(".", 1)[1] for tree in (queue.completed, queue.failed) for key in tree.keys()}
            for job_id, job in queue.jobs.items():
                if unloadable(job):
                    if job_id not in filed:
                        problems.append("queue %r lists job %s, which cannot be loaded" % (name, job_id))
                    continue
                if waits_for_set_aside(job, aside):
                    continue  # (for an administrator)
                if job.status != interfaces.COMPLETED or (job_id not in filed and not is_filed_finished(queue, job)):
                    problems.append("queue %r lists job %s (%s) that is not filed finished" % (name, job_id, job.status))
            for index in ("by_user", "by_item", "by_site"):
                for key, jobs in (getattr(queue, index, None) or {}).items():
                    if not len(jobs):
                        problems.append("queue %r keeps an empty %s entry for %r" % (name, index, key))
                    for job in jobs.values():
                        if unloadable(job) or job._p_oid in aside:
                            continue  # set aside: listed until it is removed from there
                        if queue.jobs.get(job.id) is not job:
                            problems.append("queue %r's %s lists job %s, which is gone" % (name, index, job.id))
        kept = [key for key, job in (getattr(root, "blocked", None) or {}).items()
                if not waits_for_set_aside(job, aside)]
        if kept:
            problems.append("blocked keeps %s" % kept)
        # A job asked to stop while it ran, then set aside, keeps its request until an
        # administrator retries or removes it (both drop it: client/admin.py).
        requests = getattr(root, "cancel_requests", None) or {}
        kept = [job_id for job_id, request in requests.items() if request[2]._p_oid not in aside]
        if kept:
            problems.append("cancel_requests keeps %s" % kept)
        gate = getattr(root, "alone_gate", None)
        if gate is not None and len(gate.waiting):
            problems.append("the alone gate keeps %s" % list(gate.waiting.keys()))
        return problems + self.check_effects()

    def count(self, stats):
        """Add to ``stats`` what the jobs of the schedule did (for the coverage report)."""
        for job in self.jobs():
            if unloadable(job):
                stats["jobs set aside"] += 1
                continue
            kind = ("batch" if job.batch_kind else "recurring" if job.recurrence is not None
                    else "dependent" if job.depends_on else "job")
            stats["%s %s" % (kind, "failed" if job.failed else "completed")] += 1
            if job.attempts > 1:
                stats["jobs started more than once"] += 1
            if job.result is not None and "Cancelled" in str(job.result):
                stats["jobs cancelled"] += 1

    def check_effects(self):
        """What the jobs wrote: once for each that succeeded, never for one that failed or was aborted."""
        world = self.world
        site = self.conn.root()["Application"]._getOb("site")
        expected = collections.defaultdict(lambda: collections.Counter())
        self.about = collections.defaultdict(list)
        hot = hot_maybe = 0
        root = self.root()
        aside = set(getattr(root, "set_aside", None) or ())
        for job in self.jobs():
            # Set aside (then maybe removed): its class changed, though this connection may
            # have it loaded from before. It may have run before: once at most.
            if unloadable(job) or job._p_oid in aside or job._p_oid in world.removed:
                name = world.targets.get(job._p_oid)
                if name is None:
                    continue  # (not one a request queued: a run or sub-job of one)
                expected[name]["jobs"] += 1
                expected[name]["unloadable"] += 1
                expected[name]["unloadable writes"] += world.plans[job._p_oid].count("write")
                expected[name]["partial steps"] += 1  # (it may have run some before its class changed)
                hot_maybe += world.plans[job._p_oid].count("hot")  # (likewise: once at most)
                continue
            if job.func_name != "tests.simulation.world:work" or job.callback_kind is not None:
                continue
            name = job.context_path.rsplit("/", 1)[-1]
            plan = job.args[0]
            succeeded = job.status == interfaces.COMPLETED and not job.failed
            counts = expected[name]
            counts["jobs"] += 1
            self.about[name].append("%s %s %s%s" % (job.id, "+".join(plan), job.status.split("-")[0],
                                                    " failed" if job.failed else ""))
            if succeeded:
                counts["writes"] += plan.count("write")
                counts["notified"] += 1 if world.subscriber else 0
                hot += plan.count("hot")
                for step in plan:
                    if step.startswith("steps-"):
                        for number in range(int(step[6:])):
                            counts["step %d" % number] += 1
            elif any(step.startswith("steps-") for step in plan):
                counts["partial steps"] += 1
        problems = []
        for name, counts in expected.items():
            target = site._getOb(name)
            steps = list(target.steps)
            got = collections.Counter(writes=target.writes, notified=target.notified)
            for number, count in enumerate(steps):
                got["step %d" % number] = count
            for what in ("writes", "notified"):
                if counts["unloadable"] and got[what] in (0, counts["unloadable writes"] if what == "writes" else 1):
                    continue  # it may have run before its class changed: once at most
                if got[what] != counts[what]:
                    problems.append("item %s: %d %s, expected %d (jobs: %s)" % (
                        name, got[what], what, counts[what], "; ".join(self.about[name])))
            for number in range(len(steps)):
                step = "step %d" % number
                if not counts[step] <= got[step] <= counts[step] + counts["partial steps"]:
                    problems.append("item %s: %s done %d times, expected %d" % (name, step, got[step], counts[step]))
        if not hot <= site._getOb("hot").counter <= hot + hot_maybe:
            problems.append("the hot item has %d writes, expected %d (%d more from jobs that cannot be "
                            "loaded)" % (site._getOb("hot").counter, hot, hot_maybe))
        for name in world.aborted:
            if name in expected:
                continue  # (an item is given to one job; a later job cannot have it)
            target = site._getOb(name)
            if target.writes or target.notified or target.steps:
                problems.append("item %s was written by a job queued in a request that aborted" % name)
        return problems
