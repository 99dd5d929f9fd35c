"""One client of the commit-ceiling measurement: plain ZODB + ZEO, no Zope.

Usage: python ceiling_client.py ZEO_PORT KEY SECONDS

Connects, prints "ready", reads the wall-clock time to start at from stdin (the
parent sends it once every client is ready, so that slow start-ups on a busy
machine do not shorten the window), then commits tiny transactions (one small
persistent object of its own, ``root[KEY]``, made beforehand by the parent) as
fast as it can for SECONDS; prints the number of commits as JSON.
"""

from ZEO.ClientStorage import ClientStorage
from ZODB import DB

import json
import sys
import time
import transaction


def main(port, key, seconds):
    storage = ClientStorage(("127.0.0.1", int(port)), storage="1", wait=True)
    db = DB(storage, pool_size=1)
    conn = db.open()
    obj = conn.root()[key]
    obj["n"]  # load it before the clock starts
    transaction.abort()
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    end_at = start_at + float(seconds)
    while time.time() < start_at:
        time.sleep(0.001)
    commits = 0
    start = time.perf_counter()
    while time.time() < end_at:
        obj["n"] = obj["n"] + 1
        transaction.commit()
        commits += 1
    elapsed = time.perf_counter() - start
    conn.close()
    db.close()
    print(json.dumps({"commits": commits, "seconds": elapsed}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
