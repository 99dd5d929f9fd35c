"""The integrity simulation: thousands of seeded schedules of several workers, with faults.

Each schedule (one seed) runs the package's real dispatchers, job threads,
requests and administrator actions on one database, their steps interleaved
in the seed's order, with workers killed, paused past their death interval,
stopped and restarted, commits conflicting and the database unreachable; after
every commit it checks that each job is in exactly one place, and once
faults stop, that every job completes exactly once with all its writes
(invariants.py). ``make test`` runs ZASYNC_SIMULATION_SCHEDULES schedules
(2,000); ``make simulate`` runs more (scripts/simulate.py); the harness is in tests/simulation/.
"""

from tests.simulation.run import quiet_logs
from tests.simulation.run import run_schedule

import os
import sys
import time
import unittest


# Seeds that found a defect (each fixed since): they run first, every time.
REGRESSIONS = {
    25: "a job's own TransientError was taken for a database outage: run again every second",
    50: "a job that wrote, then took a savepoint (or had an IJobSuccess subscriber), completed "
        "under group commit without its writes",
    90: "a finished job's cancel request was kept forever",
    210: "a retried batch cancelled before it ran left its sub-job new forever",
    252: "a worker declared dead while its dispatcher claimed a job: the job in no place",
    456: "a job given back by a worker that is not the finisher, while the finisher deleted "
         "its old waiting entry: the job in no place (the lost job of issue 28)",
    21: "a job that depended on a job set aside, which an administrator removed: blocked forever",
    21068: "a retried job that could no longer be loaded was set aside under its inbox key, not "
           "its id: still listed in its queue once removed",
    25690: "a batch retried after a job of it that succeeded was removed listed that job again, for ever",
    22268: "a running job asked to stop, then set aside and removed: its stop request kept for ever",
    246: "a job whose class changed after it was queued, filed from its card and claimed in one "
         "pass: every pass failed on it",
    1064: "a job set aside, removed, then cancelled by an administrator who still held it: noted "
          "as ended before it was filed, though in no inbox, and kept so for ever",
}
FOUND_WITH_NEWSLETTERS = {21}  # (the others were found before schedules queued newsletters)


class TestSimulation(unittest.TestCase):

    schedules = int(os.environ.get("ZASYNC_SIMULATION_SCHEDULES", "2000"))

    def setUp(self):
        self.addCleanup(quiet_logs())

    def test_seeds_that_found_defects(self):
        for seed, found in sorted(REGRESSIONS.items()):
            with self.subTest(seed=seed, found=found):
                result = run_schedule(seed, newsletters=seed in FOUND_WITH_NEWSLETTERS)  # (as found)
                self.assertTrue(result.ok, result.report())

    def test_schedules(self):
        started = time.monotonic()
        failures, steps, jobs = [], 0, 0
        for seed in range(self.schedules):
            result = run_schedule(seed)
            steps += result.steps
            jobs += result.jobs
            if not result.ok:
                failures.append(result.report())
                if len(failures) >= 3:
                    break
        print("\n  simulation: %d schedules (seeds 0 to %d), %d steps, %d jobs, %d failed, in %.0f s"
              % (seed + 1, seed, steps, jobs, len(failures), time.monotonic() - started), file=sys.stderr)
        self.assertEqual(failures, [], "\n".join(failures))
