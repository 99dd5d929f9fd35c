#!/usr/bin/env python
"""Run the integrity simulation for longer than `make test` does, or replay one seed.

    python scripts/simulate.py --schedules 1000000        # stops at the first failing seed
    python scripts/simulate.py --minutes 60 --first 5000  # seeds from 5000 on, for an hour
    python scripts/simulate.py --seed 1234 --log           # one seed, with the package's log

A failing seed prints what went wrong and the last steps; add it to
tests/unit/test_simulation.py's REGRESSIONS once fixed.
"""

import argparse
import logging
import os
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, help="replay this seed only")
    parser.add_argument("--first", type=int, default=10_000, help="first seed (default 10000: "
                        "make test runs from 0)")
    parser.add_argument("--schedules", type=int, default=1_000_000)
    parser.add_argument("--minutes", type=float, default=None, help="stop after this long")
    parser.add_argument("--log", action="store_true", help="print the package's log")
    parser.add_argument("--keep-going", action="store_true", help="do not stop at the first failure")
    args = parser.parse_args()
    if os.environ.get("PYTHONHASHSEED") != "0":  # sets of strings iterate in one order: replays are exact
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable] + sys.argv)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import Zope2  # noqa: F401 (Zope's configuration, as in the tests)
    from tests.simulation.run import quiet_logs
    from tests.simulation.run import run_schedule

    if args.log:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s %(message)s")
    else:
        quiet_logs()
    if args.seed is not None:
        result = run_schedule(args.seed)
        print("seed %d: %s (%d steps, %d jobs)" % (args.seed, "ok" if result.ok else "FAILED",
                                                   result.steps, result.jobs))
        if not result.ok:
            print(result.report())
        return 0 if result.ok else 1
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else None
    started = time.monotonic()
    failed = ran = 0
    for seed in range(args.first, args.first + args.schedules):
        if deadline is not None and time.monotonic() > deadline:
            break
        result = run_schedule(seed)
        ran += 1
        if not result.ok:
            failed += 1
            print(result.report(), flush=True)
            if not args.keep_going:
                break
        if ran % 1000 == 0:
            print("%d schedules, %d failed, %.0f s" % (ran, failed, time.monotonic() - started), flush=True)
    print("%d schedules from seed %d, %d failed, in %.0f s" % (ran, args.first, failed, time.monotonic() - started))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
