"""Time the dispatcher's claim transaction at the current queue depth.

Usage: python claim_cost.py ZEO_PORT SAMPLES

Builds a real ``collective.zasync.dispatcher.Dispatcher`` on its own ZEO
connection (one thread, not started: no job runs), and times SAMPLES calls of
``dispatch()``: one transaction that files the inbox and the done list and
claims one pending job, with its commit. Then unregisters, which puts the
claimed jobs back among the pending ones. Prints JSON.

Usage: python claim_cost.py --priorities DEPTHS SAMPLES

Priorities (issue 19): a ZEO server of its own (in this process, on a
temporary FileStorage) and a queue filled directly with DEPTHS (e.g.
100,10000,100000) pending jobs of mixed priorities (70 % priority 0, 15 % 1,
10 % 5, 1 % -5, and 4 % priority 10 delayed by an hour), then SAMPLES claims
timed as above at each depth; the same at the deepest depth with every job at
priority 0, for comparison. Each claim must take the highest due priority.
"""

from collective.zasync.worker import registration
from collective.zasync.worker.dispatcher import Dispatcher
from collective.zasync.core.job import Job
from collective.zasync.core.job import utcnow
from collective.zasync.core.places import file_waiting
from collective.zasync.core.queue import get_queue_root
from datetime import timedelta
from collective.zasync.worker.settings import WorkerSettings
from ZEO.ClientStorage import ClientStorage
from ZODB import DB

import json
import statistics
import sys
import tempfile
import time
import transaction
import uuid


def main(port, samples):
    db = DB(ClientStorage(("127.0.0.1", int(port)), storage="1", wait=True))
    dispatcher = Dispatcher(db, "bench-" + str(uuid.uuid4()), WorkerSettings(threads=1))
    dispatcher.connect()
    dispatcher.in_transaction(registration.register, dispatcher.me)
    depth = dispatcher.in_transaction(lambda root: root.queues[""].waiting_count())
    times, claimed = [], 0
    for _ in range(int(samples)):
        dispatcher.holdings.busy = 0  # its jobs are never run: pretend the thread is free
        start = time.perf_counter()
        claimed += dispatcher.dispatch()
        times.append((time.perf_counter() - start) * 1000)
    dispatcher.in_transaction(dispatcher.unregister)
    dispatcher.conn.close()
    db.close()
    print(json.dumps({"depth": depth, "claimed": claimed, "claim_ms": times,
                      "conflicts": dispatcher.stats["conflicts"]}))


MIX = [0] * 70 + [1] * 15 + [5] * 10 + [-5] + [10] * 4  # 10: delayed by an hour


def fill(db, target, mixed):
    """Put pending jobs straight into the default queue's waiting trees, up to ``target``."""
    tm = transaction.TransactionManager()
    conn = db.open(transaction_manager=tm)
    tm.begin()
    queue = get_queue_root(conn).queues[""]
    queue.concurrency = None  # parallel, as the benchmarks run it
    count = queue.waiting_count()
    while count < target:
        for _ in range(min(10_000, target - count)):
            job = Job("tests.support.sample_jobs:noop")
            job.status, job.site_path = "pending-status", "/Plone"
            job.priority = MIX[count % len(MIX)] if mixed else 0
            if job.priority == 10:
                job.begin_after = utcnow() + timedelta(hours=1)
            file_waiting(queue, job)
            count += 1
        tm.commit()
    conn.close()


def claims(db, samples):
    """Time ``samples`` claim transactions; the priorities of the jobs claimed."""
    dispatcher = Dispatcher(db, "bench-" + str(uuid.uuid4()), WorkerSettings(threads=1))
    dispatcher.connect()
    dispatcher.in_transaction(registration.register, dispatcher.me)
    times, cpu, taken = [], [], []
    dispatcher.conn.getTransferCounts(True)
    for _ in range(samples):
        dispatcher.holdings.busy = 0
        start, start_cpu = time.perf_counter(), time.thread_time()
        if not dispatcher.dispatch():
            break  # every due job claimed
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.thread_time() - start_cpu) * 1000)
        oid, _token = dispatcher.holdings.work.get_nowait()
        taken.append(dispatcher.conn.get(oid).priority)
    loads, stores = dispatcher.conn.getTransferCounts(True)
    dispatcher.in_transaction(dispatcher.unregister)
    dispatcher.conn.close()
    return times, cpu, taken, (loads / max(len(times), 1), stores / max(len(times), 1))


def figures(times, cpu, transfers):
    """p50/p99 wall time, p50 CPU time of the claiming thread, objects loaded/stored per claim."""
    return {"p50_ms": round(statistics.median(times), 2), "p99_ms": round(sorted(times)[int(len(times) * 0.99)], 2),
            "cpu_p50_ms": round(statistics.median(cpu), 2), "loads_per_claim": round(transfers[0], 1),
            "stores_per_claim": round(transfers[1], 1), "claims": len(times)}


def priorities(depths, samples):
    import ZEO

    with tempfile.TemporaryDirectory() as tmp:
        address, stop = ZEO.server(path=tmp + "/Data.fs")
        db = DB(ClientStorage(address, wait=True))
        results = {}
        for depth in (int(d) for d in depths.split(",")):
            fill(db, depth, mixed=True)
            times, cpu, taken, transfers = claims(db, int(samples))
            results["mixed %d" % depth] = dict(figures(times, cpu, transfers),
                                               priorities_claimed=sorted(set(taken), reverse=True),
                                               highest_first=taken == sorted(taken, reverse=True))
        db.close()
        stop()
        address, stop = ZEO.server(path=tmp + "/Uniform.fs")
        db = DB(ClientStorage(address, wait=True))
        fill(db, depth, mixed=False)
        times, cpu, _taken, transfers = claims(db, int(samples))
        results["priority 0 only %d" % depth] = figures(times, cpu, transfers)
        db.close()
        stop()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    if sys.argv[1] == "--priorities":
        priorities(*sys.argv[2:4])
    else:
        main(*sys.argv[1:3])
