"""The pip-only cluster end to end, as ``make test-cluster`` runs it, in ``make test`` too.

scripts/test-cluster.py starts a ZEO server, a client and two workers, creates the site
through the client, queues jobs with HTTP POSTs as a logged-in user and checks that they
ran on the workers (see docs/deploy.md); here it runs for both layouts on ZEO, and on
RelStorage (PostgreSQL).
"""

from collective.zasync.dev.lifeline import tied
from pathlib import Path

import subprocess
import sys
import unittest


SCRIPT = Path(__file__).parent.parent.parent / "scripts" / "test-cluster.py"


class TestCluster(unittest.TestCase):
    time_limit = 15 * 60  # seconds (tests/support/timelimit.py); the script's own limit is 10 minutes
    def run_script(self, *flags):
        result = subprocess.run(
            [sys.executable, str(SCRIPT), *flags], capture_output=True, text=True, timeout=600,
            preexec_fn=tied(),  # its cluster's processes end with it
        )
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, output[-4000:])
        self.assertIn("PASS", output)

    def test_single_db(self):
        self.run_script()

    def test_multi_db(self):
        self.run_script("--multi-db")

    def test_relstorage(self):
        self.run_script("--storage", "relstorage")
