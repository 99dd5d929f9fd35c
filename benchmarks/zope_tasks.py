"""The benchmark's work inside a Zope client instance (the queuing side).

Run as ``zconsole run etc/zope.conf zope_tasks.py COMMAND [ARGS]`` (``app``
is bound by zconsole), in the configuration of the cluster's ``client``
instance, like a request would run. Prints one JSON object on its last line.

Commands:

- ``docs N``: create documents bench/doc-0 .. doc-(N-1) (as admin);
- ``queue FUNCTION COUNT PER_TX [DOCS]``: queue COUNT jobs of
  ``tests.support.sample_jobs.FUNCTION`` as admin, PER_TX per transaction
  (``set_title`` jobs go to the DOCS documents in turn); prints the ids;
- ``enqueue_cost SAMPLES``: time ``queueJob`` + ``transaction.commit()`` of
  one no-op job, SAMPLES times (one job per transaction, as a request does);
- ``latency SAMPLES``: queue one no-op job, commit, note the time, wait until
  a worker has started it; job.started minus that time is one sample;
- ``fill COUNT PER_TX``: queue COUNT no-op jobs as ``queue`` does, without
  printing their ids (the million phase queues a million);
- ``finish_waiting PER_TX``: complete every waiting job of the default queue
  the way a worker records a completion, PER_TX jobs per transaction
  (benchmarks/million.py: finished jobs without running them one by one).
"""

from AccessControl.SecurityManagement import newSecurityManager
from collective.zasync import interfaces
from tests.support import sample_jobs
from collective.zasync.interfaces import IAsyncService
from collective.zasync.core.queue import get_queue_root
from Testing.makerequest import makerequest
from zope.component import getUtility
from zope.component.hooks import setSite

import itertools
import json
import random
import sys
import time
import transaction


SITE_ID = "Plone"
USER_ID = "admin"
FOLDER_ID = "bench"


def login(app):
    app = makerequest(app)
    site = app[SITE_ID]
    setSite(site)
    user = app.acl_users.getUserById(USER_ID)
    newSecurityManager(None, user.__of__(app.acl_users))
    return app, site


def make_docs(app, count):
    app, site = login(app)
    if FOLDER_ID not in site.objectIds():
        site.invokeFactory("Folder", FOLDER_ID, title="Benchmark documents")
    folder = site[FOLDER_ID]
    existing = set(folder.objectIds())
    made = 0
    for number in range(int(count)):
        doc_id = "doc-%d" % number
        if doc_id not in existing:
            folder.invokeFactory("Document", doc_id, title="Document %d" % number)
            made += 1
            if made % 100 == 0:
                transaction.commit()
    transaction.commit()
    return {"documents": int(count), "created": made}


def queue(app, function, count, per_tx, docs=0):
    app, site = login(app)
    service = getUtility(IAsyncService)
    func = getattr(sample_jobs, function)
    count, per_tx, docs = int(count), int(per_tx), int(docs)
    folder = site[FOLDER_ID] if docs else None
    ids = []
    started = time.time()
    for number in range(count):
        if function == "set_title":
            context = folder["doc-%d" % (number % docs)]
            job = service.queueJob(func, context, "Title %d" % number)
        else:
            job = service.queueJob(func, site)
        ids.append(job.id)
        if len(ids) % per_tx == 0:
            transaction.commit()
    transaction.commit()
    return {"ids": ids, "seconds": time.time() - started}


def enqueue_cost(app, samples):
    app, site = login(app)
    service = getUtility(IAsyncService)
    queue = service.getQueues()[""]
    transaction.begin()
    before = {"inbox": sum(inbox.unread_count() for inbox in queue.inboxes.values()), "filed": queue.waiting_count()}
    queue_ms, total_ms = [], []
    for _ in range(int(samples)):
        transaction.begin()
        start = time.perf_counter()
        service.queueJob(sample_jobs.noop, site)
        queued = time.perf_counter()
        transaction.commit()
        end = time.perf_counter()
        queue_ms.append((queued - start) * 1000)
        total_ms.append((end - start) * 1000)
        time.sleep(0.002)
    return {"before": before, "queue_ms": queue_ms, "total_ms": total_ms}


def latency(app, samples):
    app, site = login(app)
    service = getUtility(IAsyncService)
    values = []
    for _ in range(int(samples)):
        transaction.begin()
        job = service.queueJob(sample_jobs.noop, site)
        transaction.commit()
        committed = time.time()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            transaction.begin()  # see the other processes' commits
            if job.started is not None and job.status == interfaces.COMPLETED:
                break
            time.sleep(0.002)
        else:
            raise RuntimeError("Job %s did not start within 30 s" % job.id)
        values.append((job.started.timestamp() - committed) * 1000)
        time.sleep(random.uniform(0.05, 0.15))  # an idle queue between samples
    return {"latency_ms": values}


def fill(app, count, per_tx):
    out = queue(app, "noop", count, per_tx)
    return {"queued": len(out["ids"]), "seconds": out["seconds"]}


def finish_waiting(app, per_tx):
    """Complete the waiting jobs of the default queue with the worker's own steps, in big transactions.

    For each job, what a worker does to it over its run: the claim (``Job.claim``),
    the outcome (``Job.finish``, ``Job.complete``: a no-op job's result, None) and the
    finisher's filing (``lifecycle.file_done``: the completed tree, the indexes, its
    dependents); the waiting entry goes as the finisher deletes it (``drop_taken``).
    Only the function call, the Plone environment and the one-commit-per-pass rhythm
    are left out: the trees end as a worker leaves them.
    """
    from collective.zasync.core.job import utcnow
    from collective.zasync.core.keys import waits
    from collective.zasync.core.lifecycle import file_done

    root = get_queue_root(app._p_jar)
    per_tx, done, started = int(per_tx), 0, time.time()
    while True:
        transaction.begin()
        queue = root.queues[""]
        pairs = list(itertools.islice(queue.waiting.items(), per_tx))
        if not pairs:
            break
        app._p_jar.prefetch([job for _key, job in pairs if job._p_changed is None])
        now = utcnow()
        for key, job in pairs:
            del queue.waiting[key]
            queue.waiting_count.change(-1)
            if waits(key, job):  # (else an entry a claim left behind: dropped, as drop_taken does)
                job.claim("benchmark-finisher", now)
                job.finish(None)
                job.complete()
                file_done(root, job)
                done += 1
        transaction.commit()
        app._p_jar.cacheMinimize()
    return {"finished": done, "seconds": time.time() - started}


def queue_state(app):
    transaction.begin()
    queue = get_queue_root(app._p_jar).queues[""]
    return {"inbox": sum(inbox.unread_count() for inbox in queue.inboxes.values()), "filed": queue.waiting_count()}


COMMANDS = {"docs": make_docs, "queue": queue, "enqueue_cost": enqueue_cost, "latency": latency,
            "state": queue_state, "fill": fill, "finish_waiting": finish_waiting}


if __name__ == "__main__":
    command, *arguments = sys.argv[sys.argv.index("run") + 3 :]
    print(json.dumps(COMMANDS[command](app, *arguments)))  # noqa: F821 (bound by zconsole)
