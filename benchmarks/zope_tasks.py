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
  a worker has started it; job.started minus that time is one sample.
"""

from AccessControl.SecurityManagement import newSecurityManager
from collective.zasync import interfaces
from tests.support import sample_jobs
from collective.zasync.interfaces import IAsyncService
from collective.zasync.core.queue import get_queue_root
from Testing.makerequest import makerequest
from zope.component import getUtility
from zope.component.hooks import setSite

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


def queue_state(app):
    transaction.begin()
    queue = get_queue_root(app._p_jar).queues[""]
    return {"inbox": sum(inbox.unread_count() for inbox in queue.inboxes.values()), "filed": queue.waiting_count()}


COMMANDS = {"docs": make_docs, "queue": queue, "enqueue_cost": enqueue_cost, "latency": latency,
            "state": queue_state}


if __name__ == "__main__":
    command, *arguments = sys.argv[sys.argv.index("run") + 3 :]
    print(json.dumps(COMMANDS[command](app, *arguments)))  # noqa: F821 (bound by zconsole)
