"""The ``million`` phase of benchmarks/run.py: a million waiting jobs, then a million finished.

On the benchmark's cluster (a stock ZEO server, Zope instances, real worker processes), in
this order (benchmarks/README.md says what each figure means):

1. ``--million`` no-op jobs queued with no worker running: enqueue + commit at that depth,
   and bytes per queueing commit;
2. a worker (2 threads) arrives: seconds to its first job and until all are filed, its
   peak RSS (VmHWM) and its RSS sampled while filing and while running; enqueue + commit
   while it runs jobs flat out;
3. a worker with no thread files (as in the ``scale`` phase): enqueue + commit at a million
   filed jobs, and the claim transaction at that depth (claim_cost.py);
4. the jobs still waiting are completed with the worker's own steps in big transactions
   (zope_tasks.py ``finish_waiting``: running a million no-op jobs would take 20 minutes);
5. the control panel's job list and ``@zasync-jobs`` over HTTP from the client instance
   (runwsgi), first page of the completed jobs;
6. the database's size before and after a pack (``db.pack()`` through a ZEO client), per
   1,000 finished jobs;
7. the retention removes them all while two workers live: their pings' age, and whether a
   live worker was declared dead;
8. a job's whole life in bytes: ``--lifetime-jobs`` jobs queued one per transaction (as
   requests do), run by a worker, removed by the retention; what the FileStorage grew by
   at each step, per job.

Every step prints its progress; the figures go to ``results["million"]``.
"""

from collective.zasync import interfaces
from pathlib import Path

import base64
import threading
import time
import transaction
import urllib.request


def log(message, *args):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), message % args), file=__import__("sys").stderr, flush=True)


class RSS:
    """The resident memory of process ``pid``: sampled every ``every`` seconds, and its peak."""

    def __init__(self, pid, every=0.5):
        self.pid, self.every = pid, every
        self.samples = []  # (seconds since start, MB)
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def status(self, field):
        try:
            for line in Path("/proc/%d/status" % self.pid).read_text().splitlines():
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # kB -> MB
        except OSError:
            return None
        return None

    def _run(self):
        while not self._stop.wait(self.every):
            value = self.status("VmRSS")
            if value is not None:
                self.samples.append((time.monotonic() - self._started, value))

    def max_between(self, start, end):
        values = [mb for when, mb in self.samples if start <= when <= end]
        return max(values) if values else None

    def now(self):
        return time.monotonic() - self._started

    def stop(self):
        peak = self.status("VmHWM")
        self._stop.set()
        self._thread.join()
        return peak


def http_get(url, json=False):
    """(milliseconds, body, status) of one GET as admin."""
    headers = {"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode()}
    if json:
        headers["Accept"] = "application/json"
    started = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=120) as response:
        body = response.read()
        status = response.status
    return (time.perf_counter() - started) * 1000, body, status


def jobs_listed(body, json):
    """How many jobs a page lists: the REST reply's items, the panel's links to a job (its rows)."""
    if json:
        import json as json_module

        return len(json_module.loads(body)["items"])
    return body.count(b"zasync-job-link")


class Million:
    def __init__(self, bench, summary):
        self.bench, self.summary = bench, summary
        self.args = bench.args
        self.results = bench.results.setdefault("million", {"size": self.args.million})

    def size(self):
        return self.bench.data_fs_size()

    def queue(self):
        return self.bench.queue()

    def root(self):
        transaction.begin()
        return self.bench.conn.root()[interfaces.KEY]

    def set_retention(self, days):
        root = self.root()
        root.retention_days = days
        transaction.commit()

    def finished(self):
        queue = self.queue()
        return queue.completed_count() + queue.failed_count()

    def run(self):
        self.queued_without_worker()
        self.worker_arrives()
        self.make_finished()
        self.pages()
        self.sizes()
        self.retention()
        self.packed_empty()
        self.lifetime()  # on the emptied queue: what one job's life writes

    # -- 8. a job's life in bytes ------------------------------------------------------

    def lifetime(self):
        bench, count = self.bench, self.args.lifetime_jobs
        self.set_retention(None)
        finished_before = self.finished()
        start = self.size()
        bench.zope("fill", count, 1)  # one job per transaction, as requests queue
        queued = self.size()
        names = bench.start_workers(1, 2)
        bench.wait_until(lambda: self.finished() >= finished_before + count, 1800, "%d jobs" % count)
        bench.stop_workers(names)
        ran = self.size()
        removed_before = self.finished()
        self.set_retention(0)
        names = bench.start_workers(1, 1)
        bench.wait_until(lambda: self.finished() == 0, 1800, "the retention")
        bench.stop_workers(names)
        self.set_retention(None)
        end = self.size()
        result = {
            "jobs": count,
            "queued_bytes_per_job": (queued - start) / count,
            "filed_claimed_run_filed_bytes_per_job": (ran - queued) / count,
            "removed_bytes_per_job": (end - ran) / max(removed_before, 1),
            "removed": removed_before,
        }
        result["bytes_per_job"] = (result["queued_bytes_per_job"] + result["filed_claimed_run_filed_bytes_per_job"]
                                   + result["removed_bytes_per_job"])
        self.results["lifetime"] = result
        log("A job's life, %d jobs: %.0f bytes queued, %.0f filed+claimed+run+filed, %.0f removed: %.0f bytes per job",
            count, result["queued_bytes_per_job"], result["filed_claimed_run_filed_bytes_per_job"],
            result["removed_bytes_per_job"], result["bytes_per_job"])

    def retire_inboxes(self):
        """Retire the inboxes read to their end, as the retention does an hour after their last job.

        The processes that queued the million are gone: their inboxes keep the entries they
        read (a writer drops read entries as it appends), so the jobs too, until then. A pack
        within that hour would count them once more.
        """
        from collective.zasync.core.job import utcnow
        from collective.zasync.core.retention import retire_all_idle_inboxes
        from collective.zasync.defaults import IDLE_INBOX
        from datetime import timedelta

        root = self.root()
        retire_all_idle_inboxes(root, utcnow() + timedelta(seconds=IDLE_INBOX + 1))
        transaction.commit()

    def packed_empty(self):
        """Pack once the retention removed them: what the finished jobs took is the difference."""
        self.retire_inboxes()
        started = time.monotonic()
        self.bench.db.pack()
        sizes = self.results["sizes"]
        sizes["packed_empty_bytes"] = self.size()
        sizes["packed_per_1000_bytes"] = 1000 * (sizes["packed_bytes"] - self.size()) / sizes["finished_jobs"]
        log("Packed once they were removed: %.0f MB (%.0f s): %.0f KB per 1,000 finished jobs packed",
            self.size() / 1e6, time.monotonic() - started, sizes["packed_per_1000_bytes"] / 1e3)

    # -- 1. a million waiting, no worker ------------------------------------------------

    def queued_without_worker(self):
        bench = self.bench
        inbox, filed = bench.depth()
        # A million in the inbox, whatever earlier phases left filed: the arriving worker files them all.
        missing = self.args.million - inbox
        self.results["unpacked_start_bytes"] = self.size()
        if missing > 0:
            started = time.monotonic()
            out = bench.zope("fill", missing, 10000)
            log("Queued %d jobs (to %d) in %.0f s", out["queued"], self.args.million, time.monotonic() - started)
        samples = self.args.enqueue_samples
        before = self.size()
        enqueue = bench.zope("enqueue_cost", samples)
        self.results["no_worker"] = {
            "depth": enqueue["before"],
            "enqueue_commit_ms": self.summary(enqueue["total_ms"]),
            "queuejob_ms": self.summary(enqueue["queue_ms"]),
            "bytes_per_commit": round((self.size() - before) / samples),
        }
        log("%s waiting, no worker: enqueue+commit p50 %.2f ms p99 %.2f ms, %d bytes per commit",
            enqueue["before"], self.results["no_worker"]["enqueue_commit_ms"]["p50"],
            self.results["no_worker"]["enqueue_commit_ms"]["p99"], self.results["no_worker"]["bytes_per_commit"])

    # -- 2., 3. a worker arrives; a million filed ----------------------------------------

    def worker_arrives(self):
        bench = self.bench
        inbox, filed = bench.depth()
        completed = self.queue().completed_count()
        log("Starting a worker (2 threads) at %d waiting jobs (%d in inboxes) ...", inbox + filed, inbox)
        started = time.monotonic()
        name, = bench.start_workers(1, 2)
        up = time.monotonic()
        rss = RSS(bench.cluster.processes[name].pid)
        bench.wait_until(lambda: self.queue().completed_count() > completed, 600, "a first job")
        first = time.monotonic()
        last_log = [first]

        def filed_all():
            left = bench.depth()[0]
            if time.monotonic() - last_log[0] > 30:
                last_log[0] = time.monotonic()
                log("  %d jobs left to file, %.0f s after the worker was up", left, time.monotonic() - up)
            return left == 0

        bench.wait_until(filed_all, 3600, "the backlog to be filed")
        done = time.monotonic()
        filing_end = rss.now()
        samples = self.args.enqueue_samples
        enqueue = bench.zope("enqueue_cost", samples)
        time.sleep(self.args.million_run_seconds)  # RSS while it runs jobs of a million waiting
        running_end = rss.now()
        ran = self.queue().completed_count() - completed
        peak = rss.stop()
        bench.stop_workers([name])
        self.results["worker"] = {
            "waiting": inbox + filed, "inbox": inbox, "worker_start_s": up - started,
            "first_job_after_start_s": first - up, "filed_after_start_s": done - up,
            "filed_per_s": inbox / (done - up) if done > up else None,
            "rss_peak_mb": peak, "rss_max_filing_mb": rss.max_between(0, filing_end),
            "rss_max_running_mb": rss.max_between(filing_end, running_end),
            "rss_samples_mb": [(round(when, 1), round(mb)) for when, mb in rss.samples],
            "jobs_run": ran,
        }
        # Queueing while that worker runs jobs as fast as it can: it and the ZEO server keep
        # most of this machine's 2 CPUs busy, the queueing process waits for one.
        self.results["worker_busy"] = {
            "depth": enqueue["before"],
            "enqueue_commit_ms": self.summary(enqueue["total_ms"]),
            "queuejob_ms": self.summary(enqueue["queue_ms"]),
        }
        result = self.results["worker"]
        log("A first job %.2f s, all %d filed %.0f s after the worker was up (%.0f jobs/s); RSS peak %.0f MB "
            "(filing %.0f MB, running %.0f MB); enqueue+commit while it runs jobs p50 %.2f ms p99 %.2f ms",
            result["first_job_after_start_s"], inbox, result["filed_after_start_s"], result["filed_per_s"] or 0,
            peak or 0, result["rss_max_filing_mb"] or 0, result["rss_max_running_mb"] or 0,
            self.results["worker_busy"]["enqueue_commit_ms"]["p50"],
            self.results["worker_busy"]["enqueue_commit_ms"]["p99"])
        self.filed_costs()

    def filed_costs(self):
        """Queueing and claiming at a million filed jobs, as the ``scale`` phase measures them at
        100 .. 100,000: a worker with no thread files what comes in and claims nothing."""
        bench = self.bench
        filer = bench.start_workers(1, 0)
        enqueue = bench.zope("enqueue_cost", self.args.enqueue_samples)
        bench.wait_until(lambda: bench.depth()[0] == 0, 600, "the inbox to be filed")
        claim = bench.claim_cost()
        bench.stop_workers(filer)
        self.results["worker_running"] = {
            "depth": enqueue["before"],
            "enqueue_commit_ms": self.summary(enqueue["total_ms"]),
            "queuejob_ms": self.summary(enqueue["queue_ms"]),
        }
        self.results["claim"] = {"depth": claim["depth"], "claim_ms": self.summary(claim["claim_ms"]),
                                 "claimed": claim["claimed"]}
        log("%s filed, a worker filing: enqueue+commit p50 %.2f ms p99 %.2f ms; claim p50 %.2f ms p99 %.2f ms",
            enqueue["before"], self.results["worker_running"]["enqueue_commit_ms"]["p50"],
            self.results["worker_running"]["enqueue_commit_ms"]["p99"],
            self.results["claim"]["claim_ms"]["p50"], self.results["claim"]["claim_ms"]["p99"])

    # -- 4. a million finished ------------------------------------------------------------

    def make_finished(self):
        started = time.monotonic()
        out = self.bench.zope("finish_waiting", 10000)
        self.results["made_finished"] = {"jobs": out["finished"], "seconds": time.monotonic() - started}
        log("Completed %d waiting jobs with the worker's steps in %.0f s; %d finished jobs",
            out["finished"], time.monotonic() - started, self.finished())

    # -- 5., 6. pages and sizes at a million finished -------------------------------------

    def pages(self):
        cluster = self.bench.cluster
        cluster.start_instance("client")
        try:
            # localhost: Plone themes the page there (not on 127.0.0.1), as a browser sees it
            site = "http://localhost:%d/Plone" % cluster.http_port("client")
            urls = {"panel": (site + "/@@zasync-controlpanel?queue=&state=completed", False),
                    "rest": (site + "/@zasync-jobs?queue=&state=completed", True)}
            finished = self.finished()
            for name, (url, json) in urls.items():
                cold = http_get(url, json)
                warm = [http_get(url, json) for _ in range(self.args.page_samples)]
                self.results["%s_page" % name] = {
                    "finished_jobs": finished, "cold_ms": cold[0], "bytes": len(cold[1]),
                    "jobs_listed": jobs_listed(cold[1], json),
                    "ms": self.summary([ms for ms, _body, _status in warm]),
                }
                log("%s page at %d finished jobs: first %.0f ms, then p50 %.1f ms p99 %.1f ms (%d bytes, %d jobs)",
                    name, finished, cold[0], self.results["%s_page" % name]["ms"]["p50"],
                    self.results["%s_page" % name]["ms"]["p99"], len(cold[1]),
                    self.results["%s_page" % name]["jobs_listed"])
        finally:
            cluster.stop("client")

    def sizes(self):
        finished = self.finished()
        unpacked = self.size()
        self.retire_inboxes()
        started = time.monotonic()
        self.bench.db.pack()
        packed = self.size()
        # Before the pack: what the phase wrote to get there (every job's queueing, filing,
        # claim and completion, with their history); after: what the finished jobs take.
        self.results["sizes"] = {
            "finished_jobs": finished, "unpacked_bytes": unpacked, "packed_bytes": packed,
            "pack_s": time.monotonic() - started,
            "unpacked_per_1000_bytes": 1000 * (unpacked - self.results["unpacked_start_bytes"]) / finished,
        }
        log("Database at %d finished jobs: %.0f MB, %.0f MB packed (%.0f s): %.0f KB per 1,000 written",
            finished, unpacked / 1e6, packed / 1e6, time.monotonic() - started,
            self.results["sizes"]["unpacked_per_1000_bytes"] / 1e3)

    # -- 7. retention with live workers ---------------------------------------------------

    def retention(self):
        bench = self.bench
        finished = self.finished()
        self.set_retention(0)
        names = bench.start_workers(2, 1)
        started = time.monotonic()
        lag, seen, vanished, last_log = 0.0, set(), set(), started
        while self.finished() > 0 and time.monotonic() - started < 3600:
            root = self.root()
            now = time.time()
            uuids = set(root.workers.keys())
            for uuid, record in root.workers.items():
                lag = max(lag, now - record.last_ping.timestamp())
            vanished |= seen - uuids
            seen |= uuids
            if time.monotonic() - last_log > 30:
                last_log = time.monotonic()
                log("  %d finished jobs left; oldest ping so far %.1f s", self.finished(), lag)
            time.sleep(0.25)
        seconds = time.monotonic() - started
        left = self.finished()
        bench.stop_workers(names)
        self.set_retention(None)
        # A live worker declared dead by the other: its log says so (registration.reap).
        dead = sum((bench.cluster.root / name / "var" / "instance.log").read_text().count("declared dead")
                   for name in names)
        self.results["retention"] = {
            "finished_jobs": finished, "left": left, "seconds": seconds,
            "removed_per_s": (finished - left) / seconds,
            "max_ping_age_s": lag, "ping_interval_s": float(bench.cluster.worker_config["ping-interval"]),
            "declared_dead": dead, "vanished": len(vanished),
        }
        log("Retention removed %d finished jobs in %.0f s (%.0f jobs/s) with 2 workers; a ping at most %.1f s "
            "old (interval %g s); %d declared dead", finished - left, seconds,
            self.results["retention"]["removed_per_s"], lag, self.results["retention"]["ping_interval_s"], dead)


# -- the report: rows beside their references, and the targets ------------------------------


def report(results, rows, targets, fmt, verdict):
    """Add the million phase's rows (and TARGET rows) to ``rows``, its targets to ``targets``."""
    m = results.get("million")
    if not m or "no_worker" not in m:
        return
    n = m["size"]
    label = "{:,}".format(n)

    def target(key, title, shown, reference, ok, value, **extra):
        """A TARGET row (``shown``: its figures as printed); ``value``: the figure judged, in the JSON."""
        targets[key] = dict(extra, value=value, status=verdict(ok))
        rows.append(("TARGET " + title, shown, reference, "", verdict(ok)))

    def ms(run):
        return "%s / %s" % (fmt(run["p50"], " ms", 2), fmt(run["p99"], " ms", 2))

    inbox = results.get("scale_inbox_no_worker", {})
    filed = results.get("scale_filed", {})
    nw = m["no_worker"]
    reference = ("%s at %s" % (fmt(inbox[max(inbox, key=int)]["enqueue_commit_ms"]["p50"], " ms", 2),
                               max(inbox, key=int)) if inbox else "")
    target("million_enqueue_no_worker", "enqueue+commit < 5 ms at %s waiting, NO worker (p50 / p99; bytes)" % label,
           "%s; %d B" % (ms(nw["enqueue_commit_ms"]), nw["bytes_per_commit"]), reference,
           nw["enqueue_commit_ms"]["p50"] < 5, nw["enqueue_commit_ms"]["p50"], target=5, depth=nw["depth"])
    wr = m.get("worker_running")
    if wr:
        reference = ("%s at %s" % (fmt(filed[max(filed, key=int)]["enqueue_commit_ms"]["p50"], " ms", 2),
                                   max(filed, key=int)) if filed else "")
        target("million_enqueue_worker", "enqueue+commit < 5 ms at %s waiting, a worker filing (p50 / p99)" % label,
               ms(wr["enqueue_commit_ms"]), reference, wr["enqueue_commit_ms"]["p50"] < 5, wr["enqueue_commit_ms"]["p50"],
               target=5, depth=wr["depth"])
    busy = m.get("worker_busy")
    if busy:
        rows.append(("enqueue+commit at %s waiting while a worker runs jobs flat out, 2 CPUs (p50 / p99)" % label,
                     ms(busy["enqueue_commit_ms"]), "", "", ""))
    claim = m.get("claim")
    if claim:
        # O(log n): from the smallest depth the scale phase measured, the claim may cost at most
        # log(n) / log(that depth) times as much (3x from 100 to 1,000,000).
        import math

        p50 = claim["claim_ms"]["p50"]
        if filed:
            smallest = min(filed, key=int)
            bound = filed[smallest]["claim_ms"]["p50"] * math.log(claim["depth"]) / math.log(int(smallest))
            reference = ", ".join("%s: %s" % (depth, fmt(run["claim_ms"]["p50"], " ms", 2)) for depth, run in filed.items())
            target("million_claim", "claim at %s waiting within O(log n) of the scale phase's (p50 / p99)" % label,
                   ms(claim["claim_ms"]), reference + " (bound %s)" % fmt(bound, " ms", 2), p50 <= bound, p50,
                   target=bound, depth=claim["depth"])
        else:
            rows.append(("claim transaction at %s waiting (p50 / p99)" % label, ms(claim["claim_ms"]), "", "", ""))
    worker = m.get("worker")
    if worker:
        drain = results.get("inbox_drain")
        reference = ("%s, %s at %d" % (fmt(drain["first_job_after_start_s"], " s", 2), fmt(drain["filed_after_start_s"], " s"),
                                       drain["inbox"]) if drain else "")
        target("million_worker_arrives", "worker arriving at %s waiting: first job < 1 s, all filed < 300 s" % label,
               "%s, %s (%s jobs filed/s)" % (fmt(worker["first_job_after_start_s"], " s", 2),
                                             fmt(worker["filed_after_start_s"], " s"), fmt(worker["filed_per_s"], "", 0)),
               reference, worker["first_job_after_start_s"] < 1 and worker["filed_after_start_s"] < 300,
               worker["filed_after_start_s"], first_job_s=worker["first_job_after_start_s"], target="1 s, 300 s")
        peak = worker["rss_peak_mb"]
        target("million_worker_rss", "the worker's peak RSS < 1 GB (VmHWM; max while filing / while running)",
               "%s (%s / %s)" % (fmt(peak, " MB", 0), fmt(worker["rss_max_filing_mb"], " MB", 0),
                                 fmt(worker["rss_max_running_mb"], " MB", 0)), "", peak is not None and peak < 1024,
               peak, target=1024)
    for name, title in (("panel", "the control panel's job list"), ("rest", "@zasync-jobs")):
        page = m.get("%s_page" % name)
        if page:
            target("million_%s_page" % name, "%s, a page at %s finished jobs < 200 ms over HTTP (p50 / p99)"
                   % (title, "{:,}".format(page["finished_jobs"])),
                   "%s (%s jobs listed)" % (ms(page["ms"]), page.get("jobs_listed", "?")),
                   "first request %s" % fmt(page["cold_ms"], " ms", 0), page["ms"]["p50"] < 200, page["ms"]["p50"],
                   target=200)
    retention = m.get("retention")
    if retention:
        target("million_retention", "retention removing %s finished jobs declares no live worker dead"
               % "{:,}".format(retention["finished_jobs"]),
               "%d declared dead; pings at most %s old (every %s); %s, %s jobs/s" % (
                   retention["declared_dead"], fmt(retention["max_ping_age_s"], " s"),
                   fmt(retention["ping_interval_s"], " s", 0), fmt(retention["seconds"], " s", 0),
                   fmt(retention["removed_per_s"], "", 0)),
               "death interval 60 s", retention["declared_dead"] == 0 and retention["left"] == 0,
               retention["declared_dead"], max_ping_age_s=retention["max_ping_age_s"], target=0)
    lifetime = m.get("lifetime")
    if lifetime:
        rows.append(("bytes written per job over its life: queued + filed/claimed/run/filed + removed (%d jobs)"
                     % lifetime["jobs"], "%s B (%s + %s + %s)" % (
                         fmt(lifetime["bytes_per_job"], "", 0), fmt(lifetime["queued_bytes_per_job"], "", 0),
                         fmt(lifetime["filed_claimed_run_filed_bytes_per_job"], "", 0),
                         fmt(lifetime["removed_bytes_per_job"], "", 0)), "", "", ""))
    sizes = m.get("sizes")
    if sizes and "packed_per_1000_bytes" in sizes:
        rows.append(("queue database per 1,000 finished jobs, before / after a pack (%s finished)"
                     % "{:,}".format(sizes["finished_jobs"]),
                     "%s / %s" % (fmt(sizes["unpacked_per_1000_bytes"] / 1e3, " KB", 0),
                                  fmt(sizes["packed_per_1000_bytes"] / 1e3, " KB", 0)),
                     "%s MB unpacked, %s MB packed" % (fmt(sizes["unpacked_bytes"] / 1e6, "", 0),
                                                       fmt(sizes["packed_bytes"] / 1e6, "", 0)), "", ""))
