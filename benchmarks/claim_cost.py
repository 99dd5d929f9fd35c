"""Time the dispatcher's claim transaction at the current queue depth.

Usage: python claim_cost.py ZEO_PORT SAMPLES

Builds a real ``collective.zasync.dispatcher.Dispatcher`` on its own ZEO
connection (one thread, not started: no job runs), and times SAMPLES calls of
``dispatch()``: one transaction that files the inbox and the done list and
claims one pending job, with its commit. Then unregisters, which puts the
claimed jobs back among the pending ones. Prints JSON.
"""

from collective.zasync.dispatcher import Dispatcher
from collective.zasync.worker import WorkerSettings
from ZEO.ClientStorage import ClientStorage
from ZODB import DB

import json
import sys
import time
import transaction
import uuid


def main(port, samples):
    db = DB(ClientStorage(("127.0.0.1", int(port)), storage="1", wait=True))
    dispatcher = Dispatcher(db, "bench-" + str(uuid.uuid4()), WorkerSettings(threads=1))
    dispatcher.tm = transaction.TransactionManager()
    dispatcher.conn = db.open(transaction_manager=dispatcher.tm)
    dispatcher._in_transaction(dispatcher._register)
    depth = dispatcher._in_transaction(lambda root: root.queues[""].waiting_count())
    times, claimed = [], 0
    for _ in range(int(samples)):
        dispatcher._busy = 0  # its jobs are never run: pretend the thread is free
        start = time.perf_counter()
        claimed += dispatcher.dispatch()
        times.append((time.perf_counter() - start) * 1000)
    dispatcher._in_transaction(dispatcher._unregister)
    dispatcher.conn.close()
    db.close()
    print(json.dumps({"depth": depth, "claimed": claimed, "claim_ms": times,
                      "conflicts": dispatcher.stats["conflicts"]}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
