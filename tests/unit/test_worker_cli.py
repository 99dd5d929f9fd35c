"""zasync-worker's defaults: as many processes as CPUs it may use, and log files of its own."""

from collective.zasync.worker.cli import available_cpus
from collective.zasync.worker.cli import cgroup_cpu_quota

import os
import subprocess
import sys
import tempfile
import unittest


BIN = os.path.dirname(sys.executable)


def cgroup(files):
    """A directory laid out as /sys/fs/cgroup with ``files`` ({relative path: text})."""
    root = tempfile.mkdtemp()
    for name, text in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    return root


class TestProcesses(unittest.TestCase):

    def test_a_container_quota_caps_the_cpus(self):
        affinity = len(os.sched_getaffinity(0))
        self.assertEqual(cgroup_cpu_quota(cgroup({"cpu.max": "150000 100000\n"})), 1.5)
        self.assertEqual(available_cpus(cgroup({"cpu.max": "150000 100000\n"})), min(2, affinity))
        self.assertEqual(available_cpus(cgroup({"cpu.max": "50000 100000\n"})), 1)
        self.assertEqual(available_cpus(cgroup({"cpu.max": "max 100000\n"})), affinity)
        v1 = {"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}
        self.assertEqual(available_cpus(cgroup(v1)), 1)
        self.assertEqual(available_cpus(cgroup({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"})),
                         affinity)
        self.assertEqual(available_cpus(cgroup({})), affinity)

    def test_the_default_follows_the_cpu_affinity_not_the_host(self):
        one_cpu = min(os.sched_getaffinity(0))
        help_text = subprocess.run(
            [os.path.join(BIN, "zasync-worker"), "--help"], capture_output=True, text=True, check=True,
            preexec_fn=lambda: os.sched_setaffinity(0, {one_cpu}),
        ).stdout
        self.assertIn("quota: 1 here", " ".join(help_text.split()))


MKWSGIINSTANCE_LOG = "event.log"


class TestLogs(unittest.TestCase):

    def test_a_worker_on_an_instance_configuration_writes_a_log_of_its_own(self):
        home = tempfile.mkdtemp()
        subprocess.run([os.path.join(BIN, "mkwsgiinstance"), "-d", home, "-u", "admin:admin"],
                       check=True, capture_output=True)
        script = ("import logging, sys\n"
                  "from collective.zasync.worker.cli import setup_logging\n"
                  "setup_logging(sys.argv[1])\n"
                  "logging.getLogger('collective.zasync').warning('a line of the worker')\n")
        subprocess.run([sys.executable, "-c", script, os.path.join(home, "etc", "zope.conf")],
                       check=True, capture_output=True)
        logs = os.path.join(home, "var", "log")
        with open(os.path.join(logs, "zasync-worker-" + MKWSGIINSTANCE_LOG)) as f:
            own = f.read()
        self.assertIn("a line of the worker", own)
        self.assertIn("zasync-worker logs to", own)
        instance_log = os.path.join(logs, MKWSGIINSTANCE_LOG)
        if os.path.exists(instance_log):
            with open(instance_log) as f:
                self.assertNotIn("a line of the worker", f.read())
