"""One process of the RelStorage stress test (tests/cluster/test_relstoragepatch.py): a queue's
shape of work on one RelStorage database, with every state RelStorage's local cache serves
checked against the connection's own snapshot.

    python relstorage_readers.py DSN setup
    python relstorage_readers.py DSN run INDEX PROCESSES SECONDS

``setup`` files 20,000 entries in ``waiting``. ``run`` starts a dispatcher thread (reads every
worker's ``claimed`` tree, moves its share of ``waiting`` into its own) and two job threads
(empty their worker's ``claimed`` into ``done``), for SECONDS, then prints a JSON line: how
many entries moved, how many states came from the cache older than the snapshot (``stale``),
and the errors met while reading (``errors``). Each process imports collective.zasync first,
as every Zope process with it installed does (its RelStorage fixes).
"""

from BTrees.OOBTree import OOBTree
from persistent.mapping import PersistentMapping
from relstorage.adapters.postgresql import PostgreSQLAdapter
from relstorage.options import Options
from relstorage.storage import RelStorage
from ZODB.DB import DB
from ZODB.POSException import ConflictError

import collections
import collective.zasync  # noqa: F401 (its RelStorage fixes)
import json
import sys
import threading
import time
import transaction


ENTRIES = 20000
counts = collections.Counter()
counts_lock = threading.Lock()


def count(name, number=1):
    with counts_lock:
        counts[name] += number


def checking_loads():
    """Wrap RelStorage's cache lookup: count each served state that the snapshot contradicts."""
    from relstorage.cache.storage_cache import StorageCache

    load = StorageCache.load

    def checked(self, cursor, oid_int):
        state, tid = load(self, cursor, oid_int)
        if tid is not None and self.object_index:
            _state, snapshot_tid = self.adapter.mover.load_current(cursor, oid_int)
            if snapshot_tid != tid:
                count("stale")
        return state, tid

    StorageCache.load = checked


def open_db(dsn):
    options = Options(keep_history=False, cache_local_mb=10)
    return DB(RelStorage(PostgreSQLAdapter(dsn=dsn, options=options), options=options))


def setup(dsn):
    db = open_db(dsn)
    with db.transaction() as conn:
        root = conn.root()
        root["waiting"] = waiting = OOBTree()
        for number in range(ENTRIES):
            waiting[number] = PersistentMapping(number=number)
        root["workers"] = OOBTree()
        root["done"] = OOBTree()
    db.close()


def repeat(db, work, stopping):
    """Run ``work(root)`` in transactions until ``stopping`` is set."""
    tm = transaction.TransactionManager()
    conn = db.open(transaction_manager=tm)
    while not stopping.is_set():
        tm.begin()
        try:
            moved = work(conn.root())
            tm.commit()
            count("moved", moved)
        except ConflictError:
            tm.abort()
        except Exception as exc:
            tm.abort()
            count("errors")
            count("%s: %s" % (type(exc).__name__, exc))
        time.sleep(0.001)
    conn.close()


def run(dsn, index, processes, seconds):
    checking_loads()
    db = open_db(dsn)
    me = "worker-%d" % index
    with db.transaction() as conn:
        conn.root()["workers"][me] = PersistentMapping(claimed=OOBTree())

    def dispatch(root):
        # Every worker's claimed jobs (as a claim reads them), then this worker's share.
        sum(1 for worker in root["workers"].values() for _job in worker["claimed"].values())
        mine = []
        for number in root["waiting"].keys():
            if number % processes == index:
                mine.append(number)
                if len(mine) == 20:
                    break
        claimed = root["workers"][me]["claimed"]
        for number in mine:
            claimed[number] = root["waiting"].pop(number)
        return 0

    def run_jobs(root):
        claimed = root["workers"][me]["claimed"]
        numbers = list(claimed.keys())[:5]
        for number in numbers:
            root["done"][number] = claimed.pop(number)
        return len(numbers)

    stopping = threading.Event()
    threads = [threading.Thread(target=repeat, args=(db, work, stopping))
               for work in (dispatch, run_jobs, run_jobs)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stopping.set()
    for thread in threads:
        thread.join()
    db.close()
    print(json.dumps(counts))


if __name__ == "__main__":
    if sys.argv[2] == "setup":
        setup(sys.argv[1])
    else:
        run(sys.argv[1], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
