"""End to end through HTTP: jobs queued by a logged-in user on the client run on the workers.

Starts the pip-only cluster (collective.zasync.cluster, the same configuration as
``make cluster-start``) in a temporary directory on free ports: a ZEO server (or, with
``--storage relstorage``, a PostgreSQL server for RelStorage), a client that only queues
and two workers. Creates the site through the client (zconsole), then
queues jobs by POSTing to the client's ``@@zasync-demo`` as admin, with the plone.protect
token from the page, exactly as a browser would. Then opens the database as one more client
and checks that every job completed, ran on a worker (its ``worker_uuid`` is one
read from a worker's ZASYNC_UUID file), never on the client, and that both workers ran
some.

    .venv/bin/python scripts/test-cluster.py [--multi-db] [--storage relstorage] [--jobs 20] [--keep]

``--multi-db``: the queue lives in the separate ``async`` database. Exits 1 on FAIL,
keeping the cluster's directory (logs in each instance's var/) to read.
"""

from collective.zasync import interfaces
from collective.zasync.dev.cluster import Cluster
from collective.zasync.dev.cluster import STORAGES
from pathlib import Path
from urllib.parse import urlencode

import argparse
import base64
import collective.zasync.dev
import http.client
import logging
import re
import shutil
import sys
import tempfile
import time
import transaction


log = logging.getLogger("test-cluster")
SCRIPTS = Path(collective.zasync.dev.__file__).parent
AUTH = "Basic " + base64.b64encode(b"admin:admin").decode()
JOB = "collective.zasync.dev.examples:count_content"  # what the demo's "count" button queues


def request(port, method, path, form=None):
    """(status, body) of one request to the instance on ``port``, as admin."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": AUTH}
    body = None
    if form is not None:
        body = urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def queue_jobs(port, count):
    """Press the demo's "count" button ``count`` times, as admin on the client."""
    status, page = request(port, "GET", "/Plone/@@zasync-demo")
    if status != 200:
        raise AssertionError("GET @@zasync-demo answered %s" % status)
    # plone.protect refuses a POST that writes without the token of the form.
    match = re.search(r'name="_authenticator"\s+value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"\s+name="_authenticator"', page
    )
    if match is None:
        raise AssertionError("No _authenticator in the @@zasync-demo page")
    for number in range(count):
        form = {"example": "count", "_authenticator": match.group(1)}
        status, _ = request(port, "POST", "/Plone/@@zasync-demo", form)
        if status != 302:  # the view redirects to itself after queueing
            raise AssertionError("POST %d to @@zasync-demo answered %s" % (number + 1, status))


def all_jobs(queue):
    return list(queue.jobs.values()) + [job for inbox in queue.inboxes.values() for _key, job in inbox.unread()]


def wait_for_jobs(conn, multi_db, count, seconds):
    """Wait until ``count`` jobs are completed; return the queue root."""
    deadline = time.monotonic() + seconds
    while True:
        transaction.begin()  # a fresh view of the database
        queue_conn = conn.get_connection("async") if multi_db else conn
        root = queue_conn.root().get(interfaces.KEY)
        jobs = all_jobs(root.queues[""]) if root is not None else []
        done = [job for job in jobs if job.status == interfaces.COMPLETED]
        if len(jobs) >= count and len(done) == len(jobs):
            return root
        if time.monotonic() > deadline:
            raise AssertionError("After %s s: %d jobs, %d completed" % (seconds, len(jobs), len(done)))
        time.sleep(0.5)


def check(cluster, conn, multi_db, count, workers):
    """Every reason to FAIL, as a list of sentences (empty: PASS)."""
    problems = []
    root = wait_for_jobs(conn, multi_db, count, seconds=60 + count * 5)
    jobs = all_jobs(root.queues[""])
    uuids = {
        (cluster.root / name / "var" / "worker-uuid.txt").read_text().strip(): name for name in workers
    }
    if (cluster.root / "client" / "var" / "worker-uuid.txt").exists():
        problems.append("the client made itself a worker identity")
    if set(root.workers) != set(uuids):
        problems.append("registered workers %s, expected %s" % (sorted(root.workers), sorted(uuids)))
    if len(jobs) != count:
        problems.append("%d jobs in the queue, %d queued" % (len(jobs), count))
    for job in jobs:
        if job.func_name != JOB or job.user_id != "admin":
            problems.append("%r queued by %r: not the demo's job" % (job, job.user_id))
        if job.failed:
            problems.append("%r failed: %s" % (job, job.result))
        if job.worker_uuid not in uuids:
            problems.append("%r ran on %r, not on a worker" % (job, job.worker_uuid))
    per_worker = {name: 0 for name in workers}
    for job in jobs:
        if job.worker_uuid in uuids:
            per_worker[uuids[job.worker_uuid]] += 1
    log.info("Jobs per worker: %s", per_worker)
    idle = [name for name, ran in per_worker.items() if not ran]
    if idle:
        problems.append("%s ran no job" % ", ".join(idle))
    if multi_db and interfaces.KEY in conn.root():
        problems.append("a queue in the main database, with --multi-db")
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--multi-db", action="store_true", help="the queue in the 'async' database")
    parser.add_argument("--storage", choices=STORAGES, default="zeo")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the cluster's directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for chatty in ("ZEO", "relstorage", "ZODB.blob"):  # their connection chatter
        logging.getLogger(chatty).setLevel(logging.WARNING)
    variant = "%s %s" % (args.storage, "multi-db" if args.multi_db else "single-db")
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="zasync-test-cluster-")
    workers = ["worker1", "worker2"]
    # tied: its servers end with this script, even when it is killed (make test's time limits)
    cluster = Cluster(tmp, multi_db=args.multi_db, storage=args.storage, tied=True)
    cluster.write(workers=len(workers))  # free ports for the storage server and each instance
    problems = []
    db = None
    try:
        log.info("%s cluster in %s", variant, tmp)
        cluster.start_storage()
        # jobs of the default queue in parallel (1, the default, runs them one at a time)
        cluster.run_script("client", SCRIPTS / "create_site.py", "Plone", "admin:admin", "4")
        for name in ["client"] + workers:
            cluster.start_instance(name, wait=False)  # they start side by side
        for name in ["client"] + workers:
            cluster.wait_for(name)
        log.info("Up after %.0f s; queueing %d jobs through http://127.0.0.1:%s/Plone/@@zasync-demo",
                 time.monotonic() - started, args.jobs, cluster.http_port("client"))
        queue_jobs(cluster.http_port("client"), args.jobs)
        db = cluster.open_db()
        conn = db.open()
        problems = check(cluster, conn, args.multi_db, args.jobs, workers)
        transaction.abort()
        conn.close()
    except Exception as error:  # a failure to report, not a crash
        log.exception("Stopped by an error")
        problems.append("%s: %s" % (type(error).__name__, error))
    finally:
        if db is not None:
            db.close()
        cluster.stop_all()
    seconds = time.monotonic() - started
    if problems:
        print("FAIL test-cluster %s in %.0f s:" % (variant, seconds))
        for problem in problems:
            print("  - %s" % problem)
        print("  logs: %s/*/var/instance.log, %s/zeo/zeo.log or %s/postgres/postgres.log" % (tmp, tmp, tmp))
        return 1
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS test-cluster %s in %.0f s: %d jobs queued through the client's HTTP, all run on "
          "the workers, both used" % (variant, seconds, args.jobs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
