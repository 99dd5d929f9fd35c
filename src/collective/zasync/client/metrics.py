"""The queues, jobs and workers in the Prometheus text format.

``QueueCollector`` is a prometheus_client collector that reads the queue
database when it is scraped: nothing is counted in the process, so every
instance (the site's ``@@zasync-metrics``, a worker command's metrics port)
shows the same numbers, those of the database. Reading is bounded: counts
come from the queues' counters (``reading.queue_counts``), the histograms
from the newest RECENT finished jobs of each queue.

A site's view (``site_path``) shows that site's jobs; in a queue that other
sites share, the totals that never go down (they count every site's jobs)
are left out: the worker's port, or the scraper's token, shows them. Not for add-ons
(@@zasync-metrics and the worker's --metrics-port serve it).
"""

from collective.zasync import interfaces
from collective.zasync.client import reading
from collective.zasync.core.indexes import holds_other_sites
from collective.zasync.core.job import state_name
from collective.zasync.core.job import utcnow
from collective.zasync.core.keys import due_key
from collective.zasync.core.keys import due_time
from collective.zasync.core.keys import waits
from collective.zasync.core.priority import waiting_trees
from collective.zasync.core.totals import left_and_retried
from collective.zasync.defaults import METRICS_RECENT as RECENT
from collective.zasync.defaults import OLDEST_INBOX_LOOKED_AT
from collective.zasync.defaults import OLDEST_LOOKED_AT
from prometheus_client import CollectorRegistry
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString

import bisect
import itertools


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RUNNING = (interfaces.ACTIVE, interfaces.CALLBACKS)  # claimed, not finished
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


def due_at(job):
    """When a job became due: its begin_after, or when it was queued."""
    return job.queued if job.begin_after is None else max(job.begin_after, job.queued)


def oldest_due(queue, now, site_path=None):
    """The time (seconds since 1970) the longest-waiting due job of ``queue`` became due, or None."""
    if site_path is not None and holds_other_sites(queue, site_path):
        times = [due_at(job).timestamp() for job in reading.site_jobs(queue, site_path)
                 if state_name(job, now) == "pending"]
        return min(times) if times else None
    due = due_key(now.timestamp())
    times = []
    for _priority, tree in waiting_trees(queue):  # every priority, not the default's only
        # (entries a claim left for the finisher to delete are passed over: keys.waits)
        first = next((key for key, job in itertools.islice(tree.items(max=due), OLDEST_LOOKED_AT)
                      if waits(key, job)), None)
        if first is not None:
            times.append(due_time(first))
    for inbox in queue.inboxes.values():  # queued, not filed yet by a worker
        for _key, job in inbox.unread(OLDEST_INBOX_LOOKED_AT):
            if job.status == interfaces.PENDING and due_at(job) <= now:
                times.append(due_at(job).timestamp())
    return min(times) if times else None


def oldest_due_age(root, now=None, site_path=None):
    """Seconds the longest-waiting due job of any queue (of the site ``site_path``) has waited (0.0 if none)."""
    now = now or utcnow()
    times = [t for t in (oldest_due(queue, now, site_path) for queue in root.queues.values()) if t is not None]
    return max(0.0, now.timestamp() - min(times)) if times else 0.0


def alive_workers(root):
    """The worker records that pinged within their death interval."""
    return [worker for worker in root.workers.values() if worker.is_alive()]


def recent_finished(queue, site_path=None):
    """The newest RECENT completed and RECENT failed jobs of ``queue`` (of the site ``site_path``)."""
    if site_path is not None and holds_other_sites(queue, site_path):
        finished = (job for job in reading.site_jobs(queue, site_path) if job.status == interfaces.COMPLETED)
        return itertools.islice(finished, 2 * RECENT)
    return itertools.chain(itertools.islice(queue.completed.values(), RECENT),
                           itertools.islice(queue.failed.values(), RECENT))


def histogram(name, documentation, buckets, samples_by_queue):
    """A HistogramMetricFamily by queue from lists of seconds."""
    family = HistogramMetricFamily(name, documentation, labels=["queue"])
    for queue_name, samples in samples_by_queue.items():
        counts = [0] * (len(buckets) + 1)
        for value in samples:
            counts[bisect.bisect_left(buckets, value)] += 1
        cumulative = list(itertools.accumulate(counts))
        family.add_metric(
            [queue_name],
            [(floatToGoString(le), count) for le, count in zip(buckets, cumulative)]
            + [("+Inf", cumulative[-1])],
            sum_value=sum(samples))
    return family


class QueueCollector:
    """Collects the metrics of a queue database (a QueueRoot, or None: nothing queued yet),
    or of the jobs of one site in it (``site_path``)."""

    def __init__(self, root, site_path=None):
        self.root = root
        self.site_path = site_path

    def describe(self):
        return []  # read at scrape time only (the registry must not collect at register)

    def collect(self):
        root, now = self.root, utcnow()
        queues = dict(root.queues.items()) if root is not None else {}
        workers = list(root.workers.values()) if root is not None else []
        jobs = GaugeMetricFamily("zasync_jobs", "Jobs by queue and state.", labels=["queue", "state"])
        finished = {name: CounterMetricFamily("zasync_jobs_%s" % name, doc, labels=["queue"])
                    for name, doc in (("completed", "Jobs that completed."),
                                      ("failed", "Jobs that failed (cancelled ones included)."),
                                      ("retried", "Failed jobs queued again by an administrator."))}
        oldest = GaugeMetricFamily("zasync_oldest_pending_job_age_seconds",
                                   "How long the longest-waiting due job of a queue has waited.",
                                   labels=["queue"])
        durations, latencies = {}, {}
        for name, queue in queues.items():
            counts = reading.queue_counts(root, queue, now, self.site_path)
            for state in reading.STATES:
                jobs.add_metric([name, state], counts[state])
            if self.site_path is None or not holds_other_sites(queue, self.site_path):
                left = left_and_retried(queue)
                finished["completed"].add_metric([name], counts["completed"] + left["completed"])
                finished["failed"].add_metric([name], counts["failed"] + left["failed"])
                finished["retried"].add_metric([name], left["retried"])
            since = oldest_due(queue, now, self.site_path)
            oldest.add_metric([name], max(0.0, now.timestamp() - since) if since else 0.0)
            durations[name], latencies[name] = [], []
            for job in recent_finished(queue, self.site_path):
                if job.started is not None and job.ended is not None and not job.batch_kind:
                    durations[name].append((job.ended - job.started).total_seconds())
                    latencies[name].append(max(0.0, (job.started - due_at(job)).total_seconds()))
        yield jobs
        yield from finished.values()
        yield oldest
        yield histogram("zasync_job_duration_seconds",
                        "Run time of the newest %d completed and failed jobs of a queue." % RECENT,
                        DURATION_BUCKETS, durations)
        yield histogram("zasync_job_pickup_latency_seconds",
                        "From due to started, for the newest %d finished jobs of a queue." % RECENT,
                        LATENCY_BUCKETS, latencies)
        yield from self.collect_workers(workers)

    def collect_workers(self, workers):
        alive = [worker.is_alive() for worker in workers]
        count = GaugeMetricFamily("zasync_workers", "Registered workers, alive or dead.", labels=["state"])
        count.add_metric(["alive"], alive.count(True))
        count.add_metric(["dead"], alive.count(False))
        yield count
        labels = ["worker", "host", "pid"]
        threads = GaugeMetricFamily("zasync_worker_threads", "Job threads of a worker.", labels=labels)
        busy = GaugeMetricFamily("zasync_worker_busy_threads", "Jobs a worker runs now.", labels=labels)
        up = GaugeMetricFamily("zasync_worker_alive", "1 if the worker pinged in time, else 0.",
                               labels=labels)
        for worker, is_alive in zip(workers, alive):
            key = [worker.uuid, worker.host, str(worker.pid)]
            running = sum(1 for job in worker.claimed.values() if job.status in RUNNING)
            threads.add_metric(key, worker.threads)
            busy.add_metric(key, min(running, worker.threads))  # claimed ahead: not yet running
            up.add_metric(key, 1 if is_alive else 0)
        yield from (threads, busy, up)


def render(root, site_path=None):
    """The metrics of the queue database ``root`` (a QueueRoot or None), as Prometheus text;
    of the jobs of the site ``site_path`` only, if given."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(root, site_path))
    return generate_latest(registry)
