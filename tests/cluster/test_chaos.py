"""Soak with faults: 5,000 jobs from 4 queueing processes, 2 workers, kills and a storage restart.

Real processes, as in tests/cluster/test_workers.py: a ZEO server, 4 concurrent ``zconsole
run`` clients queueing jobs (10 per transaction), and two worker instances.
Each job (``sample_jobs.mark_outside_too``) first appends its entry to a file,
an outside effect as a mail is, then counts the entry in the site's marks
BTree, in its transaction. While the jobs are queued and run, the storage
server is restarted once and worker1 is killed with SIGKILL three times (and
started again after a short pause), each time while jobs run there: a file
makes the jobs that start wait inside their function until the fault has
happened, and they say which they are (after a kill, until worker1 is up again, so that
worker2 alone does not run what is left for the next fault). At the end:

- every queued job completed, none failed, nothing is left pending;
- each entry's mark is 1: a job's ZODB effects happen once;
- each entry is in the effects files at least once: a job's outside effects
  happen at least once;
- each kill interrupted running jobs, and each of them ran again (attempts > 1),
  its mark still 1;
- a job whose outside effect happened more than once had its run interrupted:
  it was claimed by a killed worker, held while the storage restarted, retried
  after a ConflictError, or run alone after too many of them.

The same on RelStorage, shorter: 1,000 jobs, worker1 killed twice, the
PostgreSQL server restarted once.
"""

from collections import Counter
from collective.zasync import interfaces
from collective.zasync.dev.cluster import BIN
from collective.zasync.dev.lifeline import tied
from collective.zasync.core.keys import finished_key
from pathlib import Path
from tests.support.clusters import ClusterLayer
from tests.support.clusters import held_entries
from tests.support.clusters import TESTS

import contextlib
import os
import signal
import subprocess
import time
import transaction
import unittest


HERE = Path(__file__).parent.parent / "support"  # the scripts the instances run
CLIENTS = 4
PER_TRANSACTION = 10


class ChaosClusterLayer(ClusterLayer):
    """The storage server, a client configuration and two workers, for the soak alone."""

    def __init__(self, name, storage, jobs, kills):
        super().__init__(False, name, storage)
        self.jobs_per_client = jobs // CLIENTS
        self.total = CLIENTS * self.jobs_per_client
        self.kills = kills

    def prepare_site(self, cluster):
        # the marks BTree, created once before the racing clients
        cluster.run_script("client", TESTS / "queue_jobs.py", "Plone", "admin", "mark", 0)


CHAOS_CLUSTER = ChaosClusterLayer(
    "collective.zasync:ChaosCluster", "zeo", int(os.environ.get("ZASYNC_CHAOS_JOBS", "5000")), kills=3
)
RELSTORAGE_CHAOS_CLUSTER = ChaosClusterLayer("collective.zasync:RelStorageChaosCluster", "relstorage", 1000, kills=2)


class TestChaos(unittest.TestCase):
    layer = CHAOS_CLUSTER
    time_limit = 30 * 60  # seconds (tests/support/timelimit.py)

    @property
    def cluster(self):
        return self.layer["cluster"]

    def setUp(self):
        self.tmp = Path(self.layer.tmp)
        self.effects = self.tmp / "effects"  # the jobs' outside effects, and the hold file
        self.effects.mkdir()
        self.addCleanup(self.clear_effects)
        self.events = []
        self.sample_errors = set()
        self.t0 = time.monotonic()
        self.total = self.layer.total
        self.clients = []
        self.interrupted = []  # per fault: (what, entries of the jobs held in their function then)
        self.may_run_again = set()  # entries of jobs claimed by a killed worker, or held during a fault

    def clear_effects(self):
        for path in self.effects.iterdir():
            path.unlink()
        self.effects.rmdir()

    def note(self, what):
        self.events.append("%6.1fs %s" % (time.monotonic() - self.t0, what))
        print("\n  [chaos] %s" % self.events[-1], flush=True)

    # -- looking at the database, tolerating a storage restart -----------------------

    def root(self):
        transaction.begin()
        return self.layer["conn"].root()[interfaces.KEY]

    def sample(self):
        """(finished, pending) now, or None if the storage is away."""
        try:
            queue = self.root().queues[""]
            return queue.completed_count() + queue.failed_count(), len(queue)
        except Exception as exc:
            transaction.abort()
            if repr(exc) not in self.sample_errors:
                self.note("sample failed: %r" % exc)
            self.sample_errors.add(repr(exc))
            return None

    def wait_until(self, condition, seconds, what):
        """Wait until ``condition(finished, pending)``; fail at once if a client failed."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check_clients()
            state = self.sample()
            if state is not None and condition(*state):
                return state
            time.sleep(0.2)
        self.fail("Timed out after %s s waiting for %s (state: %s; events: %s)"
                  % (seconds, what, self.sample(), self.events))

    def worker_uuid(self, name):
        return (self.tmp / name / "var" / "worker-uuid.txt").read_text().strip()

    def claimed_entries(self, names):
        """The entries of the jobs claimed by workers ``names`` (their records, alive or not)."""
        root = self.root()
        entries = set()
        for name in names:
            record = root.workers.get(self.worker_uuid(name))
            entries.update(job.args[0] for job in (record.claimed.values() if record is not None else ()))
        transaction.abort()
        return entries

    def describe_workers(self):
        """The queue and each worker record as the dispatchers see them (for a failure message)."""
        try:
            root = self.root()
            queue = root.queues[""]
            now = time.time()
            lines = ["finished %d, pending %d, waiting %d" % (
                queue.completed_count() + queue.failed_count(), len(queue), len(queue.waiting))]
            names = {self.worker_uuid(name): name for name in ("worker1", "worker2")}
            for uuid, record in root.workers.items():
                lines.append("%s (%s): alive %s, pid %s, %d claimed, last claim %s s ago, kinds that "
                             "conflicted (s ago) %s" % (
                    names.get(uuid, "?"), uuid[:8], record.is_alive(), record.pid, len(record.claimed),
                    None if record.last_claim is None else round(now - record.last_claim, 1),
                    {kind: round(now - when, 1) for kind, when in (record.conflicting or {}).items()}))
            transaction.abort()
            return "; ".join(lines)
        except Exception as exc:
            transaction.abort()
            return "workers unknown: %r" % exc

    def locate_unfinished(self, ids):
        """Where each queued job that is not filed as finished is (for a failure message)."""
        root = self.root()
        queue = root.queues[""]
        places = {}
        unfiled = [job for inbox in queue.inboxes.values() for _key, job in inbox.unread()]
        for name, jobs in [("inbox", unfiled), ("waiting", queue.waiting.values())]:
            for job in jobs:
                places.setdefault(job.id, []).append(name)
        for uuid, record in root.workers.items():
            for job in record.claimed.values():
                places.setdefault(job.id, []).append("worker %s claimed" % uuid[:8])
            for _key, job in record.done.unread() if record.done is not None else ():
                places.setdefault(job.id, []).append("worker %s done log" % uuid[:8])
        lines = []
        for job_id in ids:
            job = queue.jobs.get(job_id)
            filed = job is not None and finished_key(job) in (queue.failed if job.failed else queue.completed)
            if not filed or places.get(job_id):
                lines.append("%s: %s in %s" % (
                    job_id,
                    "not in queue.jobs" if job is None else "%s worker %s attempts %s token %s" % (
                        job.status, (job.worker_uuid or "")[:8], job.attempts, job.claim_token),
                    places.get(job_id, "no list"),
                ))
        transaction.abort()
        return lines[:40]

    # -- faults, each while jobs run -------------------------------------------------

    @contextlib.contextmanager
    def holding(self, names, what):
        """Hold the jobs that start in workers ``names`` inside their function; yield once one is.

        Afterwards ``self.interrupted`` has the entries of the jobs held in those
        workers: they were running when the fault in the block happened.
        """
        pids = [self.cluster.processes[name].pid for name in names]
        hold = self.effects / "hold"
        hold.touch()
        try:
            deadline = time.monotonic() + 120
            while not held_entries(self.effects, pids):
                self.check_clients()
                if time.monotonic() > deadline:
                    self.fail("No job started in %s in 120 s (events: %s; %s)"
                              % (", ".join(names), self.events, self.describe_workers()))
                time.sleep(0.05)
            yield
            self.interrupted.append((what, held_entries(self.effects, pids)))
        finally:
            hold.unlink()
            for held in self.effects.glob("held-*"):  # a later fault counts the jobs it holds only
                held.unlink(missing_ok=True)

    def kill_worker1(self, number):
        what = "SIGKILL %d of worker1" % number
        with self.holding(["worker1"], what):
            self.cluster.stop("worker1", signal.SIGKILL)
            # What it had claimed runs again: running or claimed ahead, its record says which.
            claimed = self.claimed_entries(["worker1"])
            time.sleep(1.0)  # down for a moment
            # Started again while the jobs that start in worker2 wait too: alone, worker2
            # would run what is left for the next fault in the 10 s worker1 takes to start
            # (RelStorage's 1,000 jobs).
            self.cluster.start_instance("worker1")
        self.may_run_again |= claimed | self.interrupted[-1][1]
        self.note("%s while %d jobs ran there (%d claimed); started again"
                  % (what, len(self.interrupted[-1][1]), len(claimed)))

    def restart_storage(self):
        what = "%s restart" % self.cluster.storage
        workers = ["worker1", "worker2"]
        with self.holding(workers, what):
            claimed = self.claimed_entries(workers)
            self.cluster.stop_storage()
            self.note("%s stopped" % self.cluster.storage)
            time.sleep(1.0)  # down for a moment
            self.cluster.start_storage()
        self.may_run_again |= claimed | self.interrupted[-1][1]
        self.note("%s started again; %d jobs ran then" % (self.cluster.storage, len(self.interrupted[-1][1])))

    # -- the queueing clients ------------------------------------------------------------

    def start_clients(self):
        env = dict(os.environ, ZASYNC_DISABLE="1")
        conf = self.tmp / "client" / "etc" / "zope.conf"
        for number in range(CLIENTS):
            with open(self.client_file(number, "out"), "w") as out, open(self.client_file(number, "err"), "w") as err:
                self.clients.append(subprocess.Popen(
                    [str(BIN / "zconsole"), "run", str(conf), str(HERE / "chaos_queue.py"), "Plone", "admin",
                     "chaos%d" % number, str(self.layer.jobs_per_client), str(PER_TRANSACTION), str(self.effects)],
                    stdout=out, stderr=err, env=env, preexec_fn=tied(),
                ))
        self.addCleanup(self.stop_clients)

    def stop_clients(self):
        for client in self.clients:
            if client.poll() is None:
                client.kill()
                client.wait()

    def client_file(self, number, kind):
        return self.tmp / ("queue-%d.%s" % (number, kind))

    def queued_by(self, number):
        """The ids of the jobs client ``number`` has queued so far (lines "queued <id>": other
        output, such as the database driver's notice of a PostgreSQL restart, is not theirs)."""
        return [line.split()[1] for line in self.client_file(number, "out").read_text().splitlines()
                if line.startswith("queued ")]

    def check_clients(self):
        """Fail at once, with its error output, if a client exited with an error."""
        for number, client in enumerate(self.clients):
            if client.poll() not in (None, 0):
                self.fail("queueing client %d exited with %s:\n%s"
                          % (number, client.returncode, self.client_file(number, "err").read_text()[-5000:]))

    def wait_clients(self, seconds=300):
        ids = []
        for number, client in enumerate(self.clients):
            client.wait(seconds)
            self.check_clients()
            ids.extend(self.queued_by(number))
        return ids

    # -- the soak ------------------------------------------------------------------------

    def test_soak_with_kills_and_storage_restart(self):
        self.start_clients()
        self.note("%d clients queueing %d jobs each, %d per transaction"
                  % (CLIENTS, self.layer.jobs_per_client, PER_TRANSACTION))
        # While every client queues (a Zope starting while its database restarts fails to
        # start: no client would do better), and the workers run the first jobs.
        self.wait_until(lambda f, p: f + p >= self.total * 0.2 and all(map(self.queued_by, range(CLIENTS))),
                        180, "a fifth of the jobs to be queued, by every client")
        self.restart_storage()
        for number, fraction in enumerate((0.15, 0.35, 0.55)[:self.layer.kills], 1):
            self.wait_until(lambda f, p: f >= self.total * fraction, 240, "%d%% finished" % (fraction * 100))
            self.kill_worker1(number)
        ids = self.wait_clients()
        self.note("clients done: %d job ids printed" % len(ids))

        try:
            self.wait_until(lambda f, p: f >= self.total and p == 0, 300, "every job to finish")
        except AssertionError:
            print("\n  [chaos] unfinished jobs:\n    " + "\n    ".join(self.locate_unfinished(ids)), flush=True)
            raise
        # a last job might still be between its commit and the bookkeeping
        self.wait_until(lambda f, p: all(len(w.claimed) == 0 for w in self.root().workers.values()),
                        60, "the workers to be idle")
        self.note("all finished")
        self.check_outcome(ids)

    def check_outcome(self, ids):
        root = self.root()
        queue = root.queues[""]
        jobs = list(queue.jobs.values())
        self.assertEqual(sorted(ids), sorted(queue.jobs.keys()), "the queue holds exactly the queued jobs")
        self.assertEqual(len(jobs), self.total)
        self.assertEqual([(job.id, str(job.result)) for job in jobs if job.failed][:5], [])
        self.assertEqual({job.status for job in jobs}, {interfaces.COMPLETED})
        self.assertEqual(queue.completed_count(), self.total)
        self.assertEqual(len(queue), 0, "nothing pending")
        self.assertEqual(len(queue.waiting), 0)

        expected = {"chaos%d-%d" % (c, n) for c in range(CLIENTS) for n in range(self.layer.jobs_per_client)}
        by_entry = {job.args[0]: job for job in jobs}
        self.assertEqual(set(by_entry), expected)
        marks = root._p_jar.root()["Application"]["Plone"]._zasync_test_marks
        entries = {key: count for key, count in marks.items() if key.startswith("chaos")}
        self.assertEqual(set(entries), expected)
        self.assertEqual({key: count for key, count in entries.items() if count != 1}, {},
                         "entries whose job's ZODB effects were committed more than once")
        effects = Counter(line for path in self.effects.glob("effects-*.log") for line in path.read_text().split())
        self.assertEqual(expected - set(effects), set(), "jobs whose outside effect never happened")

        for what, held in self.interrupted:
            self.assertTrue(held, "%s: no job was running" % what)
            if what.startswith("SIGKILL"):
                again = {entry: (by_entry[entry].attempts, effects[entry]) for entry in held}
                self.assertTrue(all(attempts > 1 for attempts, _ in again.values()),
                                "%s: jobs running in the killed worker did not run again: %s" % (what, again))
        explained = self.may_run_again | {entry for entry, job in by_entry.items() if job.retries or job.alone_since is not None}
        unexplained = {entry: (by_entry[entry].attempts, by_entry[entry].retries, effects[entry])
                       for entry, count in effects.items() if count > 1 and entry not in explained}
        self.assertEqual(unexplained, {}, "jobs run again (attempts, retries, runs) whose run nothing interrupted")

        print("\n  [chaos] events:\n    " + "\n    ".join(self.events))
        print("  [chaos] counts: %s" % {
            "queued": len(jobs),
            "started again (attempts > 1)": sum(1 for job in jobs if job.attempts > 1),
            "outside effects twice or more": sum(1 for count in effects.values() if count > 1),
            "conflicts retried (sum of retries)": sum(job.retries for job in jobs),
            "ran alone": sum(1 for job in jobs if job.alone_since is not None),
            "seconds": round(time.monotonic() - self.t0, 1),
        }, flush=True)


class TestChaosRelStorage(TestChaos):
    layer = RELSTORAGE_CHAOS_CLUSTER
