"""The servers a test run starts end with it, however it ends (collective.zasync.dev.lifeline).

A process starts a tied cluster's ZEO server and PostgreSQL server (which pg_ctl
detaches), or a supervisor whose child would outlive it, and is then killed with
SIGKILL, as faulthandler's exit after a hang or an out-of-memory kill would end a
test run: they all end too.
"""

from collective.zasync.dev.cli import pid_alive
from collective.zasync.testing import wait_until

import shutil
import signal
import subprocess
import sys
import tempfile
import unittest


STARTER = """
import sys, time
from collective.zasync.dev.cluster import Cluster

zeo = Cluster(sys.argv[1] + "/zeo", tied=True)
zeo.write_zeo()
zeo.start_zeo()
postgres = Cluster(sys.argv[1] + "/pg", storage="relstorage", tied=True).postgres
postgres.start()
print(zeo.processes["zeo"].pid, postgres.pid(), flush=True)
time.sleep(600)
"""


GROUP_STARTER = """
import subprocess, sys, time
from collective.zasync.dev.lifeline import popen_group

supervisor = popen_group(["sh", "-c", "sleep 600 & echo $!; wait"], stdout=subprocess.PIPE, text=True)
print(supervisor.pid, supervisor.stdout.readline().strip(), flush=True)
time.sleep(600)
"""


class TestServersEndWithTheTestRun(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="zasync-lifeline-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def test_a_killed_starter_takes_its_zeo_and_postgresql_servers_along(self):
        starter = subprocess.Popen([sys.executable, "-c", STARTER, self.tmp], stdout=subprocess.PIPE, text=True)
        self.addCleanup(starter.stdout.close)
        self.addCleanup(starter.kill)
        zeo, postgres = map(int, starter.stdout.readline().split())
        self.assertTrue(pid_alive(zeo) and pid_alive(postgres), "both servers run")
        starter.send_signal(signal.SIGKILL)
        starter.wait()
        wait_until(lambda: not pid_alive(zeo), "the ZEO server to end", seconds=30)
        wait_until(lambda: not pid_alive(postgres), "the PostgreSQL server to end", seconds=60)

    def test_a_killed_starter_takes_a_supervisor_and_its_child_along(self):
        starter = subprocess.Popen([sys.executable, "-c", GROUP_STARTER], stdout=subprocess.PIPE, text=True)
        self.addCleanup(starter.stdout.close)
        self.addCleanup(starter.kill)
        supervisor, child = map(int, starter.stdout.readline().split())
        self.assertTrue(pid_alive(supervisor) and pid_alive(child), "both run")
        starter.send_signal(signal.SIGKILL)
        starter.wait()
        wait_until(lambda: not pid_alive(supervisor), "the supervisor to end", seconds=30)
        wait_until(lambda: not pid_alive(child), "its child to end", seconds=30)
