"""What the RelStorage cache fix (worker/relstoragepatch.py, remove_superseded_states) costs a
process: a connection with an empty object cache loads N objects that another connection of
the same process loaded a while ago, with RelStorage 4.3 as it comes and with the fix, side by
side, on a private PostgreSQL server.

    PYTHONPATH=. .venv/bin/python benchmarks/relstorage_cache.py [--objects 20000] [--rounds 3]

Not part of `make bench` (it measures the fix's price, not a job's). Each side runs in a process
of its own (``--side stock`` or ``--side fix``: the fix is applied by importing
collective.zasync). In each: a first connection loads the objects (RelStorage's local cache
keeps their states), another connection commits 1,100 small transactions (past the 1,000 that
RelStorage's index of recent changes keeps for an idle connection, so that it freezes the states
the index no longer names), then a fresh connection loads the N objects again, timed. Both
sides serve them from the frozen states: the fix changes which states the cache drops, not how
it serves the others.
"""

from pathlib import Path

import argparse
import json
import subprocess
import sys
import tempfile
import time


def side(dsn, fixed, objects, rounds):
    """One side's figures: seconds to load ``objects`` objects in a fresh connection, per round."""
    if fixed:
        import collective.zasync  # noqa: F401 (applies the fix)
    from relstorage.adapters.postgresql import PostgreSQLAdapter
    from relstorage.options import Options
    from relstorage.storage import RelStorage
    from ZODB.DB import DB

    import transaction

    options = Options(keep_history=False, cache_local_mb=100)
    db = DB(RelStorage(PostgreSQLAdapter(dsn=dsn, options=options), options=options), pool_size=20)
    seconds = []
    for _round in range(rounds):
        warm_tm = transaction.TransactionManager()
        warm = db.open(transaction_manager=warm_tm)
        warm_tm.begin()
        items = warm.root()["items"]
        for item in items.values():
            item["n"]  # (loads it)
        warm_tm.abort()
        writer_tm = transaction.TransactionManager()
        writer = db.open(transaction_manager=writer_tm)
        for number in range(1100):
            writer_tm.begin()
            writer.root()["counter"] = number
            writer_tm.commit()
        cold_tm = transaction.TransactionManager()
        cold = db.open(transaction_manager=cold_tm)
        cold.cacheMinimize()
        cold_tm.begin()
        started = time.perf_counter()
        for item in cold.root()["items"].values():
            item["n"]
        seconds.append(time.perf_counter() - started)
        cold_tm.abort()
        for conn in (warm, writer, cold):
            conn.cacheMinimize()
            conn.close()
    db.close()
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--side", choices=["stock", "fix"])
    parser.add_argument("--dsn")
    args = parser.parse_args()
    if args.side:
        print(json.dumps(side(args.dsn, args.side == "fix", args.objects, args.rounds)))
        return

    from collective.zasync.dev.cluster import free_port
    from collective.zasync.dev.postgres import PostgresServer
    from persistent.mapping import PersistentMapping
    from relstorage.adapters.postgresql import PostgreSQLAdapter
    from relstorage.options import Options
    from relstorage.storage import RelStorage
    from ZODB.DB import DB

    import BTrees.OOBTree

    home = tempfile.mkdtemp(prefix="zasync-rscache-")
    server = PostgresServer(home + "/postgres", port=free_port(), tied=True)
    server.start()
    try:
        server.create_database("bench")
        dsn = server.dsn("bench")
        options = Options(keep_history=False)
        db = DB(RelStorage(PostgreSQLAdapter(dsn=dsn, options=options), options=options))
        with db.transaction() as conn:
            conn.root()["items"] = items = BTrees.OOBTree.OOBTree()
            for number in range(args.objects):
                items[number] = PersistentMapping(n=number)
        db.close()
        figures = {}
        for name in ("stock", "fix"):
            output = subprocess.run(
                [sys.executable, str(Path(__file__)), "--side", name, "--dsn", dsn,
                 "--objects", str(args.objects), "--rounds", str(args.rounds)],
                check=True, capture_output=True, text=True).stdout
            figures[name] = json.loads(output.strip().splitlines()[-1])
        print("A fresh connection loads %d objects another connection of its process loaded "
              "(best of %d rounds):" % (args.objects, args.rounds))
        for name, label in (("stock", "RelStorage 4.3 as it comes"), ("fix", "with the fix")):
            best = min(figures[name])
            print("  %-28s %7.0f ms  (%.1f us per object; rounds: %s)" % (
                label, best * 1000, best / args.objects * 1e6,
                ", ".join("%.0f" % (value * 1000) for value in figures[name])))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
