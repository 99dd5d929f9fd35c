"""collective.zasync benchmarks: throughput, latency and enqueue cost, with references.

    python benchmarks/run.py [--quick] [options]

Starts a real cluster in a temporary directory (runzeo, a Zope client instance
and worker instances started with runwsgi, via collective.zasync.cluster), a
Redis server (Debian's redis-server) and Celery workers; measures; prints one
table; writes docs/benchmarks.json and docs/benchmarks.png. See
benchmarks/README.md for what each figure means. Nothing here asserts: a
missed target is printed as MISS.
"""

from collective.zasync import interfaces
from collective.zasync.dev.cluster import BIN
from collective.zasync.dev.cluster import Cluster
from collective.zasync.dev.cluster import end_process
from collective.zasync.dev.templates import DEFAULT_WORKER_CONFIG
from collective.zasync.dev.cluster import free_port
from collective.zasync.dev.cluster import wait_for_port
from pathlib import Path

import argparse
import ast
import collections
import collective.zasync.dev
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import transaction


HERE = Path(__file__).absolute().parent
REPO = HERE.parent
PY = sys.executable
SCRIPTS = Path(list(collective.zasync.dev.__path__)[0])

# Worker settings as shipped (WorkerSettings' defaults), threads set per run.
WORKER_SETTINGS = {"poll-interval": "0", "ping-interval": "10", "death-interval": "60"}

QUICK = dict(
    noop_jobs=1000, noop_configs="1x2,2x2,4x2", relstorage_configs="1x2,2x2,4x2",
    doc_jobs=300, docs=60, doc_configs="1x2", doc_rounds=1,
    celery_concurrency="1,2", latency_samples=30, enqueue_samples=100, claim_samples=30,
    depths="100,10000", inbox_depths="100,2000", ceiling_seconds=3.0, ceiling_clients="1,2,4",
    drain_check=0, million=20000, lifetime_jobs=2000, page_samples=10, million_run_seconds=5.0,
)
FULL = dict(
    noop_jobs=5000, noop_configs="1x2,1x4,2x2,2x4,4x2", relstorage_configs="1x2,2x2,4x2",
    doc_jobs=5000, docs=200, doc_configs="1x1,1x2,2x1,2x2,4x2", doc_rounds=3,
    celery_concurrency="1,2,4", latency_samples=60, enqueue_samples=200, claim_samples=50,
    depths="100,10000,100000", inbox_depths="100,10000,100000", ceiling_seconds=5.0,
    ceiling_clients="1,2,4", drain_check=1, million=1000000, lifetime_jobs=10000, page_samples=20,
    million_run_seconds=10.0,
)


def source_digest():
    """A digest of the collective.zasync code being measured (it may change under us)."""
    import hashlib

    package = Path(list(collective.zasync.dev.__path__)[0]).parent
    digest = hashlib.sha1()
    for path in sorted(package.rglob("*.py")) + sorted(package.rglob("*.zcml")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def log(message, *args):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), message % args), file=sys.stderr, flush=True)


def percentile(values, q):
    values = sorted(values)
    if not values:
        return None
    index = min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))
    return values[index]


def summary(values):
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "mean": statistics.fmean(values) if values else None,
        "max": max(values) if values else None,
    }


def parse_configs(text):
    """'1x2,2x4' -> [(1, 2), (2, 4)]: worker processes x threads each."""
    return [tuple(int(n) for n in item.split("x")) for item in text.split(",") if item]


def relstorage_run(root, args):
    """Pick-up latency and no-op throughput on RelStorage (PostgreSQL), as on ZEO."""
    bench = Bench(root, args, storage="relstorage")
    try:
        bench.start()
        bench.zasync_latency()
        bench.zasync_noop(args.relstorage_configs)
    finally:
        bench.stop()
    return {"latency_ms": bench.results["zasync_latency_ms"], "noop": bench.results["zasync_noop"]}


def process_cpu(pid, children=False):
    """CPU seconds (user + system) process ``pid`` used so far; with its reaped children's."""
    try:
        fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime + cstime: children that exited
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid):
    """CPU seconds of process ``pid``, its live children and those that exited
    (a PostgreSQL server and its backends, a Celery worker and its pool)."""
    total = process_cpu(pid, children=True)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            total += process_cpu(int(stat.parent.name))
    return total


def ints(text):
    return [int(n) for n in text.split(",") if n]


# -- the cluster and what runs on it ------------------------------------------------------


class Bench:
    def __init__(self, root, args, storage="zeo"):
        self.root = Path(root)
        self.args = args
        self.storage = storage
        self.cluster = Cluster(self.root / "cluster", worker_config=dict(WORKER_SETTINGS, threads="0"),
                               storage=storage)
        self.cluster.write(workers=0)
        self.workers_made = 0
        self.db = None
        self.redis = None
        self.celery_workers = []
        self.results = {}

    def start(self):
        log("Starting %s and creating the Plone site ...", self.storage)
        self.cluster.start_storage()
        # Throughput is measured with the default queue's limit off (0): jobs in parallel, as
        # Celery's; the default (1) runs them one at a time, in order, as plone.app.async did.
        self.cluster.run_script("client", SCRIPTS / "create_site.py", "Plone", "admin:admin", "0")
        self.db = self.cluster.open_db()
        self.conn = self.db.open()

    def stop(self):
        for name in [n for n in self.cluster.processes if n.startswith("w")]:
            self.cluster.stop(name)
        if self.db is not None:
            transaction.abort()
            self.conn.close()
            self.db.close()
            self.db = None
        self.cluster.stop_all()
        for worker in self.celery_workers:
            if worker.poll() is None:
                self.stop_celery(worker)
        self.celery_workers = []
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait(30)

    # -- helpers -------------------------------------------------------------------------

    def zope(self, command, *args):
        """Run benchmarks/zope_tasks.py COMMAND in the client instance; its JSON."""
        out = self.cluster.run_script("client", HERE / "zope_tasks.py", command, *args, timeout=3600)
        return json.loads(out.strip().splitlines()[-1])

    def data_fs_size(self):
        """Bytes of the ZEO server's main FileStorage (what commits have written so far)."""
        return (self.cluster.zeo_var / "Data.fs").stat().st_size

    def queue(self):
        transaction.begin()
        return self.conn.root()[interfaces.KEY].queues[""]

    def finished_count(self):
        queue = self.queue()
        return queue.completed_count() + queue.failed_count()

    def start_workers(self, count, threads, **settings):
        names = []
        for _ in range(count):
            self.workers_made += 1
            name = "w%d" % self.workers_made
            self.cluster.worker_config = dict(
                DEFAULT_WORKER_CONFIG, **WORKER_SETTINGS, threads=str(threads), **settings
            )
            self.cluster.write_instance(name, free_port(), worker=True)
            self.cluster.start_instance(name, wait=False)
            names.append(name)
        for name in names:
            self.cluster.wait_for(name)
        return names

    def cpu_seconds(self, names):
        """CPU seconds used so far by the worker processes ``names`` (together) and the database server."""
        processes = self.cluster.processes
        each = {name: process_cpu(processes[name].pid) for name in names if name in processes}
        used = {"workers": sum(each.values()), **each}
        if "zeo" in processes:
            used["zeo"] = process_cpu(processes["zeo"].pid)
        if self.cluster.postgres is not None and self.cluster.postgres.pid():
            used["postgres"] = tree_cpu(self.cluster.postgres.pid())
        return used

    def stop_workers(self, names):
        """SIGTERM the workers; return the stats each dispatcher logged on stop."""
        stats = []
        for name in names:
            self.cluster.stop(name)
        for name in names:
            text = (self.cluster.root / name / "var" / "instance.log").read_text()
            found = re.findall(r"Worker \S+ stopped \((\{.*?\})\)", text)
            stats.append(ast.literal_eval(found[-1]) if found else None)
        return stats

    def conflicts_by_structure(self, names, start, end):
        """Conflicts of the workers ``names``, by queue structure (conflict_map.py)."""
        from persistent.TimeStamp import TimeStamp

        sys.path.insert(0, str(HERE))
        import conflict_map

        counts = {}
        for name in names:
            text = (self.cluster.root / name / "var" / "instance.log").read_text()
            for oid, count in conflict_map.conflicted_oids(text).items():
                counts[oid] = counts.get(oid, 0) + count
        if not counts:
            return {}
        transaction.begin()
        known = conflict_map.structure_names(self.conn)
        # Buckets emptied by claims are gone at the end: name them as the tree was during the run.
        for step in range(1, 9):
            moment = time.gmtime(start + (end - start) * step / 9)
            tid = TimeStamp(*moment[:5], moment[5] + (start + (end - start) * step / 9) % 1).raw()
            try:
                past = self.db.open(before=tid)
            except ValueError as exc:  # that moment is after the database's last commit
                log("  (no structure names at step %d: %r)", step, exc)
                continue
            try:
                conflict_map.structure_names(past, known)
            except Exception as exc:  # not there yet at that moment
                log("  (no structure names at step %d: %r)", step, exc)
            finally:
                past.close()
        by_name = collections.Counter()
        for oid, count in counts.items():
            by_name[conflict_map.name_of(self.conn, oid, known)] += count
        return dict(by_name.most_common())

    def wait_until(self, condition, seconds, what):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.1)
        raise RuntimeError("Timed out after %s s waiting for %s" % (seconds, what))

    def commits_between(self, start, end):
        """How many transactions the ZEO server committed between two wall-clock times."""
        from persistent.TimeStamp import TimeStamp

        if self.storage != "zeo":
            return None  # a history-free RelStorage keeps no transaction log to count
        count = 0
        moment = time.gmtime(start - 1)
        first = TimeStamp(*moment[:5], moment[5] + (start - 1) % 1).raw()
        for txn in self.db.storage.iterator(first):
            when = TimeStamp(txn.tid).timeTime()
            if start <= when <= end:
                count += 1
        return count

    # -- 1. the commit ceiling -----------------------------------------------------------

    def ceiling(self):
        from persistent.mapping import PersistentMapping

        clients = ints(self.args.ceiling_clients)
        transaction.begin()
        root = self.conn.root()
        for number in range(max(clients)):
            root["bench-ceiling-%d" % number] = PersistentMapping(n=0)
        transaction.commit()
        results = {}
        for count in clients:
            processes = [
                subprocess.Popen(
                    [PY, str(HERE / "ceiling_client.py"), str(self.cluster.zeo_port),
                     "bench-ceiling-%d" % number, repr(self.args.ceiling_seconds)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                )
                for number in range(count)
            ]
            for process in processes:  # every client connected: all start at the same moment
                process.stdout.readline()
            start_at = repr(time.time() + 0.2)
            for process in processes:
                process.stdin.write(start_at + "\n")
                process.stdin.flush()
            outs = [json.loads(p.communicate(timeout=120)[0]) for p in processes]
            rate = sum(o["commits"] for o in outs) / self.args.ceiling_seconds
            results[str(count)] = {"commits_per_s": rate, "clients": outs}
            log("Ceiling, %d client(s): %.0f commits/s", count, rate)
        self.results["ceiling"] = results

    # -- 2./3. zasync throughput -----------------------------------------------------------

    def zasync_run(self, function, count, workers, threads, docs=0):
        out = self.zope("queue", function, count, 100, docs)
        ids = out["ids"]
        log("Queued %d %s jobs in %.1f s; starting %d worker(s) x %d thread(s)",
            len(ids), function, out["seconds"], workers, threads)
        base = self.finished_count() - 0
        # (the jobs were queued after any earlier run had finished)
        names = self.start_workers(workers, threads)
        # CPU from here (the workers have started: Zope's start-up is not counted) to the end.
        done_before, cpu_before = self.finished_count(), self.cpu_seconds(names)
        window_start = time.monotonic()
        self.wait_until(lambda: self.finished_count() >= base + count, 1800, "%d jobs" % count)
        cpu_after = self.cpu_seconds(names)
        window = time.monotonic() - window_start
        cpu = {who: cpu_after[who] - cpu_before.get(who, 0.0) for who in cpu_after}
        server = cpu.get("zeo", cpu.get("postgres"))
        done = base + count - done_before
        stats = self.stop_workers(names)
        from persistent.TimeStamp import TimeStamp

        queue = self.queue()
        jobs = [queue.jobs[job_id] for job_id in ids]
        start = min(job.started.timestamp() for job in jobs)
        end = max(TimeStamp(job._p_serial).timeTime() for job in jobs)
        failed = sum(1 for job in jobs if job.failed)
        failures = collections.Counter(str(job.result)[:200] for job in jobs if job.failed)
        retries = sum(job.retries for job in jobs)
        commits = self.commits_between(start, end)
        conflicts = sum((s or {}).get("conflicts", 0) for s in stats)
        # Objects the job threads loaded from the storage, per job (each thread's connection
        # loads again what the other threads' commits changed): docs/benchmarks.md.
        loads = sum((s or {}).get("objects loaded by jobs", 0) for s in stats)
        structures = self.conflicts_by_structure(names, start, end)
        result = {
            "function": function, "jobs": count, "workers": workers, "threads": threads,
            "seconds": end - start, "jobs_per_s": count / (end - start),
            "commits": commits, "commits_per_job": commits / count if commits is not None else None,
            "commits_per_s": commits / (end - start) if commits is not None else None,
            "failed": failed, "failures": dict(failures), "job_conflict_retries": retries,
            "dispatcher_stats": stats, "objects_loaded_per_job": loads / count,
            "dispatcher_conflicts_per_1000_jobs": 1000 * conflicts / count,
            "dispatcher_conflicts_by_structure": structures,
            "cpu_seconds": cpu, "cpu_jobs": done, "cpu_window_s": window,
            "jobs_per_worker_cpu_s": done / cpu["workers"] if cpu["workers"] else None,
            "jobs_per_zeo_cpu_s": done / cpu["zeo"] if cpu.get("zeo") else None,
            # CPUs kept busy in that window (1.0 = one core all the time)
            "worker_cpus_busy": cpu["workers"] / window if window else None,
            "server_cpus_busy": server / window if window and server is not None else None,
        }
        log("zasync %s %dx%d: %.1f jobs/s, %s commits/job, %s jobs per worker CPU-second, "
            "%.1f objects loaded per job, %d failed, dispatcher conflicts %s", function, workers,
            threads, result["jobs_per_s"], fmt(result["commits_per_job"], "", 2),
            fmt(result["jobs_per_worker_cpu_s"], "", 0), loads / count, failed, stats)
        if workers > 1:  # (how the work and its cost spread over the processes)
            log("  CPU seconds of each worker process: %s", ", ".join(
                "%s %.1f" % (name, cpu[name]) for name in names if name in cpu))
        if structures:
            log("  conflicts per 1,000 jobs: %.1f; by structure: %s", 1000 * conflicts / count, structures)
        for failure, number in failures.most_common(3):
            log("  %d failed with: %s", number, failure)
        return result

    def zasync_noop(self, configs=None):
        runs = {}
        for workers, threads in parse_configs(configs or self.args.noop_configs):
            runs["%dx%d" % (workers, threads)] = self.zasync_run("noop", self.args.noop_jobs, workers, threads)
        self.results["zasync_noop"] = runs

    def make_docs(self):
        log("Creating %d documents ...", self.args.docs)
        self.zope("docs", self.args.docs)

    def zasync_docs(self):
        for workers, threads in parse_configs(self.args.doc_configs):
            config = "%dx%d" % (workers, threads)
            run = self.between_speeds("zasync " + config, self.zasync_run, "set_title", self.args.doc_jobs,
                                      workers, threads, docs=self.args.docs)
            keep_best(self.results.setdefault("zasync_docs", {}), config, run, "jobs_per_s")

    def between_speeds(self, name, func, *args, **kwargs):
        """Run ``func``, a document run, with the machine's speed noted before and after it (in
        the run's ``machine_speed``, and in ``machine_speed_docs``)."""
        before = self.note_speed("before " + name)
        run = func(*args, **kwargs)
        run["machine_speed"] = [before, self.note_speed("after " + name)]
        return run

    def note_speed(self, when):
        speed = machine_speed()
        self.results.setdefault("machine_speed_docs", []).append({"when": when, "speed": speed})
        log("The machine's speed %s: %.1f M steps/s", when, speed)
        return speed

    # -- 5. pick-up latency, zasync --------------------------------------------------------

    def zasync_latency(self):
        names = self.start_workers(1, 2)
        time.sleep(1.0)
        out = self.zope("latency", self.args.latency_samples)
        self.stop_workers(names)
        self.results["zasync_latency_ms"] = summary(out["latency_ms"])
        self.results["zasync_latency_ms"]["samples"] = out["latency_ms"]
        log("zasync pick-up latency: %s", {k: v for k, v in summary(out["latency_ms"]).items()})

    # -- 6./7. enqueue and claim cost at depth ----------------------------------------------

    def depth(self):
        queue = self.queue()
        return sum(inbox.unread_count() for inbox in queue.inboxes.values()), queue.waiting_count()

    def fill(self, target, per_tx):
        inbox, filed = self.depth()
        missing = target - inbox - filed
        if missing > 0:
            started = time.monotonic()
            self.zope("queue", "noop", missing, per_tx)
            log("Queued %d jobs (to %d) in %.1f s", missing, target, time.monotonic() - started)

    def claim_cost(self):
        out = subprocess.run(
            [PY, str(HERE / "claim_cost.py"), str(self.cluster.zeo_port), str(self.args.claim_samples)],
            capture_output=True, text=True, timeout=600,
        )
        if out.returncode:
            raise RuntimeError(out.stderr)
        return json.loads(out.stdout.strip().splitlines()[-1])

    def scale(self):
        """Filed pending jobs (a worker with 0 threads files the inbox, claims nothing)."""
        filer = self.start_workers(1, 0)
        results = {}
        for target in ints(self.args.depths):
            self.fill(target, 1000)
            self.wait_until(lambda: self.depth()[0] == 0, 1800, "the inbox to be filed")
            enqueue = self.zope("enqueue_cost", self.args.enqueue_samples)
            self.wait_until(lambda: self.depth()[0] == 0, 600, "the inbox to be filed")
            claim = self.claim_cost()
            results[str(target)] = {
                "depth": enqueue["before"],
                "enqueue_commit_ms": summary(enqueue["total_ms"]),
                "queuejob_ms": summary(enqueue["queue_ms"]),
                "claim_ms": summary(claim["claim_ms"]),
                "claimed": claim["claimed"],
            }
            log("Depth %s: enqueue+commit p50 %.2f ms p99 %.2f ms; claim p50 %.2f ms p99 %.2f ms",
                enqueue["before"], results[str(target)]["enqueue_commit_ms"]["p50"],
                results[str(target)]["enqueue_commit_ms"]["p99"],
                results[str(target)]["claim_ms"]["p50"], results[str(target)]["claim_ms"]["p99"])
        self.stop_workers(filer)
        self.results["scale_filed"] = results

    def inbox_growth(self):
        """No worker at all: every queued job stays in the inbox."""
        results = {}
        base_inbox, filed = self.depth()
        for target in ints(self.args.inbox_depths):
            inbox, _ = self.depth()
            if target - inbox > 0:
                started = time.monotonic()
                self.zope("queue", "noop", target - inbox, 5000)
                log("Inbox grown by %d jobs (to %d) in %.1f s", target - inbox, target,
                    time.monotonic() - started)
            samples = self.args.enqueue_samples if target <= 10000 else max(20, self.args.enqueue_samples // 10)
            # What the ZEO server's FileStorage grows by is what the commits wrote.
            size_before = self.data_fs_size()
            enqueue = self.zope("enqueue_cost", samples)
            written = (self.data_fs_size() - size_before) / samples
            results[str(target)] = {
                "depth": enqueue["before"],
                "enqueue_commit_ms": summary(enqueue["total_ms"]),
                "queuejob_ms": summary(enqueue["queue_ms"]),
                "bytes_per_commit": round(written),
            }
            log("Inbox %s (no worker): enqueue+commit p50 %.2f ms p99 %.2f ms, %d bytes per commit",
                enqueue["before"], results[str(target)]["enqueue_commit_ms"]["p50"],
                results[str(target)]["enqueue_commit_ms"]["p99"], written)
        self.results["scale_inbox_no_worker"] = results
        if self.args.drain_check:
            inbox, filed = self.depth()
            completed = self.queue().completed_count()
            log("Starting a worker (2 threads) at a backlog of %d jobs ...", inbox)
            started = time.monotonic()
            worker = self.start_workers(1, 2)
            up = time.monotonic()
            self.wait_until(lambda: self.queue().completed_count() > completed, 600, "a first job")
            first = time.monotonic()
            self.wait_until(lambda: self.depth()[0] == 0, 1800, "the backlog to be filed")
            done = time.monotonic()
            self.stop_workers(worker)
            self.results["inbox_drain"] = {"inbox": inbox, "worker_start_s": up - started,
                                           "first_job_after_start_s": first - up,
                                           "filed_after_start_s": done - up}
            log("A first job of the backlog done %.2f s, all %d filed %.1f s after the worker was up",
                first - up, inbox, done - up)

    def million(self):
        """A million waiting jobs, then a million finished (benchmarks/million.py)."""
        sys.path.insert(0, str(HERE))
        import million

        million.Million(self, summary).run()

    # -- 4. Celery + Redis ----------------------------------------------------------------------

    def start_redis(self):
        port = free_port()
        directory = self.root / "redis"
        directory.mkdir()
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.redis = subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
             "--save", "", "--appendonly", "no", "--protected-mode", "no"],
            stdout=open(directory / "redis.log", "wb"), stderr=subprocess.STDOUT,
        )
        wait_for_port(port, 30, self.redis)
        os.environ["BENCH_REDIS_URL"] = "redis://127.0.0.1:%d/0" % port
        sys.path.insert(0, str(HERE))
        import celery_app
        import redis

        self.celery = celery_app
        self.r = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])

    def celery_worker(self, concurrency, zope=False):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
        if zope:
            env["BENCH_ZOPE_CONF"] = str(self.cluster.root / "client" / "etc" / "zope.conf")
        logfile = open(self.root / ("celery-%d.log" % free_port()), "ab")
        process = subprocess.Popen(
            [str(BIN / "celery"), "-A", "celery_app", "worker", "-P", "prefork", "-c", str(concurrency),
             "-Q", "bench", "--without-heartbeat", "--without-mingle", "--without-gossip",
             "-l", "WARNING"],
            cwd=str(HERE), env=env, stdout=logfile, stderr=subprocess.STDOUT,
        )
        logfile.close()
        self.celery_workers.append(process)
        return process

    def stop_celery(self, process):
        end_process(process)

    def celery_run(self, what, count, concurrency):
        self.r.flushdb()
        started = time.monotonic()
        if what == "noop":
            for _ in range(count):
                self.celery.noop.apply_async()
        else:
            for number in range(count):
                self.celery.set_title.apply_async(
                    ("bench/doc-%d" % (number % self.args.docs), "Celery title %d" % number)
                )
        published = time.monotonic() - started
        worker = self.celery_worker(concurrency, zope=(what != "noop"))

        def finished(number):
            if worker.poll() is not None:
                raise RuntimeError("The celery worker exited with %s" % worker.returncode)
            return int(self.r.get("bench:done") or 0) >= number

        # CPU from the first task's end (the pool has loaded Zope by then) to the last's,
        # as for the zasync workers.
        self.wait_until(lambda: finished(1), 600, "the first celery task")
        done_before, cpu_before = int(self.r.get("bench:done")), tree_cpu(worker.pid)
        self.wait_until(lambda: finished(count), 1800, "%d celery tasks" % count)
        cpu = tree_cpu(worker.pid) - cpu_before
        self.stop_celery(worker)
        first, last = float(self.r.get("bench:first")), float(self.r.get("bench:last"))
        failed = int(self.r.get("bench:failed") or 0)
        # A task that failed did not do the work: it is not counted (zasync loses no job).
        result = {"tasks": count, "concurrency": concurrency, "publish_s": published, "failed": failed,
                  "seconds": last - first, "tasks_per_s": (count - failed) / (last - first),
                  "tasks_per_worker_cpu_s": (count - done_before) / cpu if cpu else None}
        log("Celery %s c=%d: %.1f tasks/s (published in %.1f s), %d failed, %s tasks per worker CPU-second",
            what, concurrency, result["tasks_per_s"], published, failed,
            fmt(result["tasks_per_worker_cpu_s"], "", 0))
        return result

    def celery_noop(self):
        runs = {}
        for concurrency in ints(self.args.celery_concurrency):
            runs[str(concurrency)] = self.celery_run("noop", self.args.noop_jobs, concurrency)
        self.results["celery_noop"] = runs

    def celery_docs(self):
        for concurrency in ints(self.args.celery_concurrency):
            run = self.between_speeds("Celery c=%d" % concurrency, self.celery_run, "set_title",
                                      self.args.doc_jobs, concurrency)
            keep_best(self.results.setdefault("celery_docs", {}), str(concurrency), run, "tasks_per_s")

    def celery_latency(self):
        # pick-up latency: one idle worker process, one task at a time
        import random

        self.r.flushdb()
        worker = self.celery_worker(1)
        self.celery.latency.apply_async((time.time(),))
        self.wait_until(lambda: self.r.llen("bench:latency") >= 1, 120, "the celery worker")
        self.r.delete("bench:latency")
        for number in range(self.args.latency_samples):
            self.celery.latency.apply_async((time.time(),))
            self.wait_until(lambda: self.r.llen("bench:latency") > number, 30, "a celery task")
            time.sleep(random.uniform(0.05, 0.15))
        values = [float(v) for v in self.r.lrange("bench:latency", 0, -1)]
        self.stop_celery(worker)
        self.results["celery_latency_ms"] = dict(summary(values), samples=values)
        log("Celery pick-up latency: %s", summary(values))


# -- report ----------------------------------------------------------------------------------


def machine_speed(seconds=0.3):
    """How fast this machine runs Python now: millions of steps of a fixed loop per second of
    wall time, in this process, with no worker running. Shared CPUs drift by tens of percent
    over minutes (other machines' load on the same host); the document runs note it before
    and after each run, so that the report says how far apart the rounds' machines were."""
    steps, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        total = 0
        for number in range(100_000):
            total += number
        steps += 100_000
    return steps / (time.perf_counter() - began) / 1e6


def keep_best(runs, config, run, measure):
    """Keep the run of ``config`` with the highest ``measure``; note every round's figure."""
    rounds = runs.get(config, {}).get("rounds", []) + [round(run[measure], 1)]
    if config not in runs or run[measure] > runs[config][measure]:
        runs[config] = run
    runs[config]["rounds"] = rounds


def concurrency_target(docs, rows, targets):
    """Issue 32's first target: with 2 threads or 2 processes, document jobs at least as fast as
    1x1, and at least 0.9 of its jobs per worker CPU-second (each configuration's best round)."""
    single = docs.get("1x1")
    if not single or not single.get("jobs_per_worker_cpu_s"):
        return
    ratios = {config: {"speed": run["jobs_per_s"] / single["jobs_per_s"],
                       "cpu": run["jobs_per_worker_cpu_s"] / single["jobs_per_worker_cpu_s"]}
              for config, run in docs.items() if config in ("1x2", "2x1", "2x2") and run.get("jobs_per_worker_cpu_s")}
    if ratios:
        ok = all(ratio["speed"] >= 1.0 and ratio["cpu"] >= 0.9 for ratio in ratios.values())
        targets["doc_concurrency"] = {"status": verdict(ok), "configs": ratios}
        figures = ["%s x%.2f / x%.2f" % (config, ratio["speed"], ratio["cpu"]) for config, ratio in ratios.items()]
        rows.append(("TARGET 2 threads or 2 processes: document jobs/s >= 1x1's, jobs per worker CPU-s "
                     ">= 0.9 x 1x1's", "; ".join(figures), "1x1 %s, %s jobs/worker CPU-s" % (
                         fmt(single["jobs_per_s"], " jobs/s"), fmt(single["jobs_per_worker_cpu_s"], "", 0)),
                     "", verdict(ok)))


def fmt(value, unit="", digits=1):
    if value is None:
        return "-"
    return ("%%.%df%%s" % digits) % (value, unit)


def verdict(ok):
    return "PASS" if ok else "MISS"


def report(results):
    """The table (a list of rows) and the targets."""
    rows = []
    targets = {}
    ceiling = results.get("ceiling", {})
    c1 = ceiling.get("1", {}).get("commits_per_s")
    for clients, value in ceiling.items():
        rows.append(("ZODB+ZEO commit ceiling, %s client process(es)" % clients, "",
                     fmt(value["commits_per_s"], " commits/s", 0), "", ""))
    best_noop = None
    for config, run in results.get("zasync_noop", {}).items():
        ratio = run["jobs_per_s"] / c1 if c1 else None
        best_noop = max(best_noop or 0, run["jobs_per_s"])
        rows.append((
            "no-op jobs, %s worker(s) x %s thread(s)" % (run["workers"], run["threads"]),
            "%s (%.2f commits/job, %.0f commits/s, %s jobs/worker CPU-s)" % (
                fmt(run["jobs_per_s"], " jobs/s"), run["commits_per_job"], run["commits_per_s"],
                fmt(run.get("jobs_per_worker_cpu_s"), "", 0)),
            "1-client ceiling %s" % fmt(c1, "/s", 0),
            "x%.2f of ceiling" % ratio if ratio else "", "",
        ))
    celery_noop = results.get("celery_noop", {})
    for concurrency, run in celery_noop.items():
        rows.append(("no-op tasks, Celery+Redis, %s processes" % concurrency, "",
                     fmt(run["tasks_per_s"], " tasks/s"), "", ""))
    if best_noop is not None and c1:
        ok = best_noop >= c1  # (group commit: one commit serves 10 to 25 jobs)
        targets["noop_throughput"] = {"value": best_noop, "target": c1, "status": verdict(ok)}
        rows.append(("TARGET no-op throughput >= the single-client commit ceiling", fmt(best_noop, " jobs/s"),
                     ">= %s" % fmt(c1, " jobs/s"), "x%.2f" % (best_noop / c1), verdict(ok)))
    best_docs = None
    for config, run in results.get("zasync_docs", {}).items():
        if not run["failed"]:  # (the target counts configurations that failed no job)
            best_docs = max(best_docs or 0, run["jobs_per_s"])
        rows.append((
            "document jobs (set_title), %s worker(s) x %s thread(s)" % (run["workers"], run["threads"]),
            "%s (%.2f commits/job, %d conflict retries, %d failed, %s jobs/worker CPU-s)" % (
                fmt(run["jobs_per_s"], " jobs/s"), run["commits_per_job"], run["job_conflict_retries"], run["failed"],
                fmt(run.get("jobs_per_worker_cpu_s"), "", 0)),
            "", "", "",
        ))
    best_celery_docs = None
    for concurrency, run in results.get("celery_docs", {}).items():
        best_celery_docs = max(best_celery_docs or 0, run["tasks_per_s"])
        rows.append(("document tasks, Celery+Redis+ZEO, %s processes" % concurrency, "",
                     "%s (%d failed, %s tasks/worker CPU-s)" % (
                         fmt(run["tasks_per_s"], " tasks/s"), run.get("failed", 0),
                         fmt(run.get("tasks_per_worker_cpu_s"), "", 0)), "", ""))
    concurrency_target(results.get("zasync_docs", {}), rows, targets)
    speeds = [entry["speed"] for entry in results.get("machine_speed_docs", [])]
    if speeds:
        rows.append(("the machine's speed before and after each document run (a fixed Python loop, %d times)"
                     % len(speeds),
                     "%.1f to %.1f M steps/s (the slowest x%.2f of the fastest)" % (
                         min(speeds), max(speeds), min(speeds) / max(speeds)), "", "", ""))
    if best_docs is not None and best_celery_docs:
        ok = best_docs >= 1.5 * best_celery_docs
        targets["doc_throughput"] = {"value": best_docs, "target": 1.5 * best_celery_docs, "status": verdict(ok)}
        rows.append(("TARGET document throughput >= 1.5 x Celery's (best with 0 failed vs best)",
                     fmt(best_docs, " jobs/s"), fmt(best_celery_docs, " tasks/s"),
                     "x%.2f" % (best_docs / best_celery_docs), verdict(ok)))
    zl, cl = results.get("zasync_latency_ms"), results.get("celery_latency_ms")
    if zl:
        ok = zl["p50"] < 100
        targets["pickup_p50"] = {"value": zl["p50"], "target": 100, "status": verdict(ok)}
        rows.append(("pick-up latency p50 / p99 (idle queue, %d samples)" % zl["n"],
                     "%s / %s" % (fmt(zl["p50"], " ms"), fmt(zl["p99"], " ms")),
                     "Celery %s / %s" % (fmt(cl["p50"], " ms"), fmt(cl["p99"], " ms")) if cl else "",
                     "", "p50 < 100 ms: %s" % verdict(ok)))
    rel = results.get("relstorage")
    if rel:
        rl = rel["latency_ms"]
        ok = rl["p50"] < 100
        targets["relstorage_pickup_p50"] = {"value": rl["p50"], "target": 100, "status": verdict(ok)}
        rows.append(("RelStorage (PostgreSQL): pick-up latency p50 / p99 (woken by PostgreSQL notifications)",
                     "%s / %s" % (fmt(rl["p50"], " ms"), fmt(rl["p99"], " ms")),
                     "ZEO %s / %s" % (fmt(zl["p50"], " ms"), fmt(zl["p99"], " ms")) if zl else "",
                     "", "p50 < 100 ms: %s" % verdict(ok)))
        for config, run in rel["noop"].items():
            on_zeo = results.get("zasync_noop", {}).get(config)
            rows.append(("RelStorage: no-op jobs, %s worker(s) x %s thread(s)" % (run["workers"], run["threads"]),
                         fmt(run["jobs_per_s"], " jobs/s"),
                         "ZEO %s" % fmt(on_zeo["jobs_per_s"], " jobs/s") if on_zeo else "", "", ""))
    filed = results.get("scale_filed", {})
    for depth, run in filed.items():
        rows.append(("enqueue+commit at %s filed pending jobs (p50/p99)" % depth,
                     "%s / %s" % (fmt(run["enqueue_commit_ms"]["p50"], " ms", 2), fmt(run["enqueue_commit_ms"]["p99"], " ms", 2)),
                     "queueJob alone %s" % fmt(run["queuejob_ms"]["p50"], " ms", 2), "", ""))
    for depth, run in filed.items():
        rows.append(("claim transaction at %s pending jobs (p50/p99)" % depth,
                     "%s / %s" % (fmt(run["claim_ms"]["p50"], " ms", 2), fmt(run["claim_ms"]["p99"], " ms", 2)),
                     "", "", ""))
    if filed:
        deepest = max(filed, key=int)
        value = filed[deepest]["enqueue_commit_ms"]["p50"]
        ok = int(deepest) >= 100000 and value < 5
        targets["enqueue_at_100k"] = {"depth": int(deepest), "value": value, "target": 5, "status": verdict(ok)}
        rows.append(("TARGET enqueue+commit < 5 ms at 100,000 pending (filed)",
                     fmt(value, " ms", 2), "< 5 ms at depth %s" % deepest, "", verdict(ok)))
    no_worker = results.get("scale_inbox_no_worker", {})
    for depth, run in no_worker.items():
        rows.append(("enqueue+commit, NO worker, %s jobs waiting (p50/p99; bytes written)" % depth,
                     "%s / %s; %s B" % (fmt(run["enqueue_commit_ms"]["p50"], " ms", 2),
                                       fmt(run["enqueue_commit_ms"]["p99"], " ms", 2), run.get("bytes_per_commit", "?")),
                     "", "", ""))
    if no_worker:
        deepest, shallowest = max(no_worker, key=int), min(no_worker, key=int)
        value = no_worker[deepest]["enqueue_commit_ms"]["p50"]
        ok = int(deepest) >= 100000 and value < 5
        targets["enqueue_no_worker_at_100k"] = {"depth": int(deepest), "value": value, "target": 5,
                                                "status": verdict(ok)}
        rows.append(("TARGET enqueue+commit < 5 ms with 100,000 waiting and NO worker",
                     fmt(value, " ms", 2), "%s ms at %s" % (fmt(no_worker[shallowest]["enqueue_commit_ms"]["p50"], "", 2),
                                                             shallowest), "", verdict(ok)))
    drain = results.get("inbox_drain")
    if drain:
        ok = drain["first_job_after_start_s"] < 1 and drain["filed_after_start_s"] < 30
        targets["backlog_pickup"] = {"first_job_s": drain["first_job_after_start_s"],
                                     "filed_s": drain["filed_after_start_s"], "status": verdict(ok)}
        rows.append(("TARGET worker arriving at %d waiting jobs: first job < 1 s, all filed < 30 s" % drain["inbox"],
                     "%s, %s" % (fmt(drain["first_job_after_start_s"], " s", 2), fmt(drain["filed_after_start_s"], " s")),
                     "", "", verdict(ok)))
    for run in results.get("zasync_noop", {}).values():
        if run["workers"] > 1:
            rows.append(("dispatcher conflicts per 1,000 jobs, %d workers x %d threads" % (run["workers"], run["threads"]),
                         fmt(run["dispatcher_conflicts_per_1000_jobs"]), "", "", ""))
    sys.path.insert(0, str(HERE))
    import million

    million.report(results, rows, targets, fmt, verdict)
    return rows, targets, scale_out(results)


SCALE_CONFIGS = ("1x2", "2x2", "4x2")
SCALE_HEADER = ("processes x threads", "ZEO ceiling, as many clients", "ZEO no-op jobs/s", "x ceiling",
                "jobs/worker CPU-s", "CPUs busy: workers + ZEO", "RelStorage jobs/s", "jobs/worker CPU-s",
                "CPUs busy: workers + PostgreSQL")


def scale_out(results):
    """No-op throughput with 1, 2 and 4 worker processes (2 threads each), ZEO and RelStorage.

    Beside each, the ZEO commit ceiling with as many client processes, the jobs per worker
    CPU-second and the CPUs the workers and the database server kept busy: where it flattens,
    and why.
    """
    ceiling = results.get("ceiling", {})
    zeo = results.get("zasync_noop", {})
    rel = results.get("relstorage", {}).get("noop", {})
    table = []
    for config in SCALE_CONFIGS:
        if config not in zeo and config not in rel:
            continue
        processes = int(config.split("x")[0])
        row = {"config": config, "processes": processes,
               "zeo_ceiling_commits_per_s": ceiling.get(str(processes), {}).get("commits_per_s")}
        for name, run, server in (("zeo", zeo.get(config), "zeo"), ("relstorage", rel.get(config), "postgres")):
            if run is None:
                continue
            row[name] = {
                "jobs_per_s": run["jobs_per_s"],
                "jobs_per_worker_cpu_s": run.get("jobs_per_worker_cpu_s"),
                "worker_cpus_busy": run.get("worker_cpus_busy"),
                "server_cpus_busy": run.get("server_cpus_busy"),
                "server_cpu_s_per_1000_jobs": (1000 * run["cpu_seconds"][server] / run["cpu_jobs"]
                                               if run.get("cpu_seconds", {}).get(server) is not None
                                               and run.get("cpu_jobs") else None),
            }
        table.append(row)
    return table


def scale_out_rows(table):
    """The scale-out table as printed rows."""
    rows = []
    for row in table:
        zeo, rel, ceiling = row.get("zeo", {}), row.get("relstorage", {}), row["zeo_ceiling_commits_per_s"]
        rows.append((
            row["config"], fmt(ceiling, " commits/s", 0), fmt(zeo.get("jobs_per_s")),
            fmt(zeo["jobs_per_s"] / ceiling if zeo and ceiling else None, "", 2),
            fmt(zeo.get("jobs_per_worker_cpu_s"), "", 0),
            "%s + %s" % (fmt(zeo.get("worker_cpus_busy"), "", 2), fmt(zeo.get("server_cpus_busy"), "", 2)),
            fmt(rel.get("jobs_per_s")), fmt(rel.get("jobs_per_worker_cpu_s"), "", 0),
            "%s + %s" % (fmt(rel.get("worker_cpus_busy"), "", 2), fmt(rel.get("server_cpus_busy"), "", 2)),
        ))
    return rows


def print_table(rows, header=("measure", "collective.zasync", "reference", "ratio", "target")):
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    print(line)
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " |")
    print(line)
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
    print(line)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 5.5))
    labels, values, colors = [], [], []
    for clients, value in results.get("ceiling", {}).items():
        labels.append("ZEO ceiling\n%s client(s)" % clients)
        values.append(value["commits_per_s"])
        colors.append("#999999")
    for config, run in results.get("zasync_noop", {}).items():
        labels.append("zasync no-op\n%s" % config)
        values.append(run["jobs_per_s"])
        colors.append("#1f77b4")
    for concurrency, run in results.get("celery_noop", {}).items():
        labels.append("Celery no-op\nc=%s" % concurrency)
        values.append(run["tasks_per_s"])
        colors.append("#d62728")
    for config, run in results.get("zasync_docs", {}).items():
        labels.append("zasync docs\n%s" % config)
        values.append(run["jobs_per_s"])
        colors.append("#aec7e8")
    for concurrency, run in results.get("celery_docs", {}).items():
        labels.append("Celery docs\nc=%s" % concurrency)
        values.append(run["tasks_per_s"])
        colors.append("#ff9896")
    axes[0].bar(range(len(values)), values, color=colors)
    axes[0].set_xticks(range(len(values)), labels, rotation=60, ha="right", fontsize=7)
    axes[0].set_ylabel("per second (commits, jobs or tasks)")
    axes[0].set_title("Throughput (workers x threads)")

    lat = [("zasync", results.get("zasync_latency_ms")), ("Celery", results.get("celery_latency_ms"))]
    lat = [(name, value) for name, value in lat if value]
    for offset, key in ((-0.2, "p50"), (0.2, "p99")):
        axes[1].bar([i + offset for i in range(len(lat))], [v[key] for _, v in lat], width=0.4, label=key)
    axes[1].set_xticks(range(len(lat)), [name for name, _ in lat])
    axes[1].axhline(100, color="grey", linestyle="--", linewidth=0.8)
    axes[1].set_ylabel("ms from commit (publish) to job start")
    axes[1].set_title("Pick-up latency, idle queue")
    if lat:
        axes[1].legend()

    filed = results.get("scale_filed", {})
    inbox = results.get("scale_inbox_no_worker", {})
    depths = [int(d) for d in filed]
    if depths:
        axes[2].plot(depths, [filed[str(d)]["enqueue_commit_ms"]["p50"] for d in depths], "o-", label="enqueue+commit (filed)")
        axes[2].plot(depths, [filed[str(d)]["claim_ms"]["p50"] for d in depths], "s-", label="claim transaction")
    if inbox:
        idepths = [int(d) for d in inbox]
        axes[2].plot(idepths, [inbox[str(d)]["enqueue_commit_ms"]["p50"] for d in idepths], "^--", label="enqueue+commit, no worker (inbox)")
    if depths or inbox:
        axes[2].set_xscale("log")
        axes[2].set_yscale("log")
        axes[2].legend(fontsize=8)
    axes[2].axhline(5, color="grey", linestyle="--", linewidth=0.8)
    axes[2].set_xlabel("pending jobs")
    axes[2].set_ylabel("ms (p50)")
    axes[2].set_title("Cost at queue depth")
    fig.suptitle("collective.zasync benchmarks (%s CPUs, %s)" % (os.cpu_count(), results.get("meta", {}).get("date", "")))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- main ------------------------------------------------------------------------------------


PHASES = ["ceiling", "latency", "noop", "docs", "celery", "scale", "inbox", "million", "relstorage"]


def run_phases(bench, phases, rounds):
    """Run the ZEO phases asked for, in order (the RelStorage phase is main's)."""

    def each(*steps):
        for name, step in steps:
            if name in phases:
                step()

    each(("ceiling", bench.ceiling), ("latency", bench.zasync_latency), ("noop", bench.zasync_noop))
    if "docs" in phases or "celery" in phases:
        bench.make_docs()
    each(("celery", bench.start_redis), ("celery", bench.celery_noop))
    # Document jobs and Celery's document tasks in turns, each side's best round counted:
    # the machine's speed drifts over minutes (shared CPUs), for both sides alike.
    for _round in range(rounds):
        each(("docs", bench.zasync_docs), ("celery", bench.celery_docs))
    each(("celery", bench.celery_latency), ("scale", bench.scale), ("inbox", bench.inbox_growth),
         ("million", bench.million))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: about 5 minutes")
    parser.add_argument("--only", default=",".join(PHASES), help="phases to run (%s)" % ",".join(PHASES))
    parser.add_argument("--noop-jobs", type=int)
    parser.add_argument("--noop-configs", help="worker processes x threads, e.g. 1x2,2x2")
    parser.add_argument("--relstorage-configs", help="worker processes x threads on RelStorage")
    parser.add_argument("--doc-jobs", type=int)
    parser.add_argument("--docs", type=int, help="documents the set_title jobs go round")
    parser.add_argument("--doc-configs")
    parser.add_argument("--doc-rounds", type=int, help="rounds of document jobs and tasks, in turns")
    parser.add_argument("--celery-concurrency", help="Celery pool sizes, e.g. 2,4")
    parser.add_argument("--latency-samples", type=int)
    parser.add_argument("--enqueue-samples", type=int)
    parser.add_argument("--claim-samples", type=int)
    parser.add_argument("--depths", help="filed pending depths, e.g. 100,10000,100000")
    parser.add_argument("--inbox-depths", help="inbox depths with no worker")
    parser.add_argument("--drain-check", type=int, choices=(0, 1),
                        help="1: after the inbox phase, time a worker filing the whole inbox")
    parser.add_argument("--million", type=int, help="waiting, then finished, jobs of the million phase")
    parser.add_argument("--lifetime-jobs", type=int, help="jobs whose whole life is measured in bytes")
    parser.add_argument("--page-samples", type=int, help="requests per job list page timed")
    parser.add_argument("--million-run-seconds", type=float,
                        help="seconds the arriving worker runs jobs once all are filed (its RSS)")
    parser.add_argument("--ceiling-seconds", type=float)
    parser.add_argument("--ceiling-clients")
    parser.add_argument("--output", default=str(REPO / "docs"), help="where benchmarks.json/.png go")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = parser.parse_args(argv)
    # Every process started here imports the test suite's job functions (tests.sample_jobs).
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    phases = args.only.split(",")

    started = time.monotonic()
    root = tempfile.mkdtemp(prefix="zasync-bench-")
    bench = Bench(root, args)
    bench.results["meta"] = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
        "quick": args.quick, "settings": {k: v for k, v in vars(args).items() if k not in ("output",)},
        "worker_settings": WORKER_SETTINGS,
        "loadavg_at_start": os.getloadavg(),
        "source_digest_at_start": source_digest(),
    }
    try:
        bench.start()
        run_phases(bench, phases, args.doc_rounds)
        if "relstorage" in phases:
            bench.stop()
            try:
                bench.results["relstorage"] = relstorage_run(Path(root) / "relstorage", args)
            except Exception as exc:  # the ZEO figures are kept
                log("RelStorage phase failed: %r", exc)
                bench.results["relstorage_error"] = repr(exc)
    finally:
        bench.stop()
        if args.keep:
            log("Kept %s", root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    results = bench.results
    results["meta"]["seconds"] = time.monotonic() - started
    results["meta"]["loadavg_at_end"] = os.getloadavg()
    results["meta"]["source_digest_at_end"] = source_digest()
    if results["meta"]["source_digest_at_end"] != results["meta"]["source_digest_at_start"]:
        log("WARNING: the collective.zasync code changed during the run; figures mix versions.")
    rows, targets, scale = report(results)
    results["targets"] = targets
    results["scale_out"] = scale
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "benchmarks.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    plot(results, output / "benchmarks.png")
    print_table(rows)
    if scale:
        print("Scale-out: no-op jobs with 1, 2 and 4 worker processes (%s CPUs)" % os.cpu_count())
        print_table(scale_out_rows(scale), SCALE_HEADER)
    print("Took %.0f s. Wrote %s and %s." % (results["meta"]["seconds"], output / "benchmarks.json", output / "benchmarks.png"))


if __name__ == "__main__":
    main()
