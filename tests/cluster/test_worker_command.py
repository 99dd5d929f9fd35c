"""The worker command, real processes: ``zasync-worker -C zope.conf --processes 2 --threads 2``.

A ZEO server and a client instance whose ZCML does not include the worker
ZCML; the command runs jobs with that zope.conf, in two worker processes under
a supervisor. Jobs are queued by ``zconsole run`` processes (test_zeo's helpers).
"""

from collective.zasync import interfaces
from collective.zasync.dev.cli import pid_alive
from collective.zasync.dev.cluster import BIN
from collective.zasync.dev.cluster import free_port
from collective.zasync.dev.cluster import wait_for_port
from collective.zasync.dev.cluster import write_instance_files
from collective.zasync.dev.lifeline import tied
from pathlib import Path
from prometheus_client.parser import text_string_to_metric_families
from tests.support.clusters import ClusterTestCase
from tests.support.clusters import COMMAND
from tests.support.clusters import read_log
from tests.support.clusters import STOP_TIMEOUT
from tests.support.clusters import WORKER_COMMAND

import json
import os
import requests
import signal
import subprocess
import tempfile
import transaction
import unittest


class TestWorkerCommand(ClusterTestCase):
    layer = WORKER_COMMAND

    def uuid_file(self, index):
        return Path(self.tmp) / "client" / "var" / ("worker-uuid.txt.%d" % index)

    def uuid(self, index):
        return self.uuid_file(index).read_text().strip()

    def record(self, index):
        return self.root().workers.get(self.uuid(index))

    def test_1_both_processes_run_jobs_once(self):
        ids = self.queue("sleep_and_mark", 20, "spread", "0.2")
        jobs = self.wait_completed(ids)
        self.assertEqual([str(job.result) for job in jobs if job.failed], [])
        self.assertEqual({job.attempts for job in jobs}, {1})
        self.assertEqual(self.marks("spread-"), {"spread-%d" % n: 1 for n in range(20)})
        self.assertNotEqual(self.uuid(1), self.uuid(2))
        self.assertEqual({job.worker_uuid for job in jobs}, {self.uuid(1), self.uuid(2)})
        self.assertEqual(set(self.root().workers), {self.uuid(1), self.uuid(2)})
        self.assertEqual({self.record(n).threads for n in (1, 2)}, {2})  # --threads
        self.assertFalse((Path(self.tmp) / "client" / "var" / "worker-uuid.txt").exists())
        log = read_log(self.cluster)
        for n in (1, 2):  # each process's lines say which one it is
            line = "[zasync-worker %d] Worker %s started with 2 threads." % (n, self.uuid(n))
            self.assertIn(line, log)

    def test_1b_metrics_port_and_liveness_probe(self):
        # test_1's jobs are done: once filed, the numbers stand still
        self.wait_until(lambda: not any(record.claimed for record in self.root().workers.values()),
                        60, "the finished jobs to be filed")
        queue = self.root().queues[""]
        for n in (1, 2):  # process N listens on the port + N - 1, on 127.0.0.1
            base = "http://127.0.0.1:%d" % (self.cluster.metrics_port + n - 1)
            response = requests.get(base + "/healthz", timeout=10)
            self.assertEqual(response.status_code, 200)
            self.assertEqual(response.json()["worker"], self.uuid(n))
            metrics = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                       for family in text_string_to_metric_families(
                           requests.get(base + "/metrics", timeout=10).text)
                       for sample in family.samples}
            self.assertEqual(metrics[("zasync_workers", (("state", "alive"),))], 2)
            self.assertEqual(metrics[("zasync_jobs_completed_total", (("queue", ""),))],
                             queue.completed_count())
            self.assertEqual(metrics[("zasync_jobs", (("queue", ""), ("state", "pending")))], 0)
            self.assertEqual(requests.get(base + "/other", timeout=10).status_code, 404)

    def test_2_killed_process_restarts_with_its_uuid(self):
        ids = self.queue("sleep_and_mark", 8, "killed", "2")
        victim = self.uuid(1)

        def running_on_victim():
            return [job for job in self.jobs(ids) if job and job.status == interfaces.ACTIVE
                    and job.worker_uuid == victim]

        self.wait_until(running_on_victim, 60, "a job running in process 1")
        old_pid = self.record(1).pid
        os.kill(old_pid, signal.SIGKILL)
        # (one read: the record may go between two, as the killed process's is replaced)
        self.wait_until(lambda: getattr(self.record(1), "pid", old_pid) != old_pid, 90,
                        "process 1 to run again")
        self.assertEqual(self.uuid(1), victim)
        self.assertFalse(pid_alive(old_pid))
        jobs = self.wait_completed(ids)
        self.assertEqual([str(job.result) for job in jobs if job.failed], [])
        self.assertEqual(self.marks("killed-"), {"killed-%d" % n: 1 for n in range(8)})
        line = "Worker process 1 (pid %d) was killed by signal SIGKILL" % old_pid
        self.assertIn(line, read_log(self.cluster))
        after = self.queue("mark", 10, "after-kill")
        self.wait_completed(after)
        self.assertEqual(self.marks("after-kill-"), {"after-kill-%d" % n: 1 for n in range(10)})

    def test_3_sigterm_stops_supervisor_and_processes(self):
        ids = self.queue("sleep_and_mark", 8, "terminated", "2")

        def running():
            return [job.id for job in self.jobs(ids) if job and job.status == interfaces.ACTIVE]

        self.wait_until(running, 60, "a job to start")
        interrupted = running()
        pids = [self.record(n).pid for n in (1, 2)]
        supervisor = self.cluster.processes["zasync-worker"]
        supervisor.send_signal(signal.SIGTERM)
        self.assertEqual(supervisor.wait(STOP_TIMEOUT + 15), 0)
        self.assertEqual([pid for pid in pids if pid_alive(pid)], [])
        log = read_log(self.cluster)
        for n, pid in enumerate(pids, 1):
            self.assertIn("Worker process %d (pid %d) exited with code 0." % (n, pid), log)
        self.assertEqual(list(self.root().workers), [])  # unregistered
        jobs = self.jobs(ids)
        # the running jobs finished; the others went back to the queue, none is left claimed
        # (a job claimed ahead of its thread counts as active too: it never started, it went back)
        statuses = {job.id: job.status for job in jobs}
        self.assertLessEqual({statuses[job_id] for job_id in interrupted}, {interfaces.COMPLETED, interfaces.PENDING})
        self.assertIn(interfaces.COMPLETED, {statuses[job_id] for job_id in interrupted})
        self.assertLessEqual(set(statuses.values()), {interfaces.COMPLETED, interfaces.PENDING})
        completed = [job for job in jobs if job.status == interfaces.COMPLETED]
        self.assertEqual({job.attempts for job in completed}, {1})
        self.assertEqual(sorted(self.marks("terminated-").values()), [1] * len(completed))


class TestWithoutTheCommand(ClusterTestCase):
    """The same cluster with zasync-worker stopped (test_3 stops it; each test here makes sure)."""

    layer = WORKER_COMMAND
    needs_workers = False

    def test_4_an_instance_configured_by_environment_variables_only(self):
        """As a plone/plone-backend container: no worker ZCML, no product-config, no
        <environment>; ZASYNC_WORKER=1, ZASYNC_UUID (a UUID), ZASYNC_THREADS, ZASYNC_PING_INTERVAL."""
        home = write_instance_files(Path(self.tmp) / "envworker", free_port(), "single_db_instance.zcml",
                                    self.cluster.databases(), {})
        conf = home / "etc" / "zope.conf"
        conf.write_text(conf.read_text().replace("  ZASYNC_UUID $INSTANCE/var/worker-uuid.txt\n", ""))
        self.assertNotIn("ZASYNC", conf.read_text())
        uuid = "6f1c1d2e-5a7b-4c3d-9e8f-0123456789ab"
        env = {name: value for name, value in os.environ.items() if not name.startswith("ZASYNC_")}
        env.update(ZASYNC_WORKER="1", ZASYNC_UUID=uuid, ZASYNC_THREADS="3", ZASYNC_PING_INTERVAL="1")
        with open(home / "var" / "stdout.log", "ab") as out:
            self.cluster.processes["envworker"] = process = subprocess.Popen(
                [str(BIN / "runwsgi"), str(home / "etc" / "zope.ini")], stdout=out,
                stderr=subprocess.STDOUT, env=env, preexec_fn=tied())
        self.addCleanup(self.cluster.stop, "envworker")  # (if the test stops before it does)
        port = int((home / "http_port").read_text())
        wait_for_port(port, 180, process)
        record = self.root().workers[uuid]
        self.assertEqual((record.threads, record.pid), (3, process.pid))
        ids = self.queue("mark", 6, "from-env")
        jobs = self.wait_completed(ids)
        self.assertEqual({job.worker_uuid for job in jobs}, {uuid})
        self.assertEqual(self.marks("from-env-"), {"from-env-%d" % n: 1 for n in range(6)})
        health = requests.get("http://127.0.0.1:%d/Plone/@@zasync-health" % port, timeout=30)
        self.assertEqual((health.status_code, health.json()["workers_alive"]), (200, 1), health.text)
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(STOP_TIMEOUT + 15), 0)
        self.assertNotIn(uuid, self.root().workers)  # unregistered


    def test_5_the_zasync_command_line(self):
        """``zasync`` as a subprocess with the client's zope.conf (ZEO; no worker runs now)."""
        from collective.zasync.client import reading
        from collective.zasync.core.job import Job

        root = self.root()
        job = Job("tests.support.sample_jobs:add", args=(1, 2))  # pending: nothing runs it
        job.site_path = "/Plone"  # (what build_job stores: a path string)
        root.queues[""].put(job)
        transaction.commit()
        conf = str(Path(self.tmp) / "client" / "etc" / "zope.conf")

        def zasync(*args, answer=None):
            env = {name: value for name, value in os.environ.items() if not name.startswith("ZASYNC_")}
            return subprocess.run([str(BIN / "zasync"), *args, "-C", conf], input=answer, env=env,
                                  capture_output=True, text=True, timeout=300)

        status = zasync("status", "--json")
        self.assertEqual(status.returncode, 0, status.stderr)
        data = json.loads(status.stdout)
        root = self.root()
        self.assertEqual(data["queues"], {name: reading.queue_counts(root, queue)
                                          for name, queue in root.queues.items()})
        self.assertEqual(data["queues"][""]["pending"], 1)
        self.assertEqual(data["workers"], [])  # all stopped and unregistered

        declined = zasync("cancel", job.id, answer="n\n")
        self.assertEqual(declined.returncode, 1)
        self.assertIn("Cancel 1 job(s): tests.support.sample_jobs.add? [y/N]", declined.stderr)
        self.assertIn("Nothing done", declined.stderr)
        self.assertEqual(self.root().queues[""].get(job.id).status, interfaces.PENDING)

        wrong = zasync("list", "--site", "Nope")
        self.assertEqual((wrong.returncode, wrong.stdout), (1, ""))
        self.assertEqual(wrong.stderr.strip().splitlines()[-1],
                         "zasync: error: no Plone site at /Nope (--site); the sites of %s: Plone" % conf)


NO_IDENTITY_CONF = """\
instancehome %s
<zodb_db main>
  <mappingstorage/>
  mount-point /
</zodb_db>
"""


class TestBadInput(unittest.TestCase):
    """Mistakes on the command line or in zope.conf: exit code 2 and a message, no traceback."""

    def run_command(self, *args, env=None):
        env = dict(os.environ if env is None else env)
        env.pop("ZASYNC_DISABLE", None)
        result = subprocess.run(
            [COMMAND, *args], capture_output=True, text=True, env=env, timeout=60
        )
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        return result.stderr

    def test_bad_command_lines(self):
        with tempfile.TemporaryDirectory() as tmp:
            conf = Path(tmp, "zope.conf")
            conf.write_text(NO_IDENTITY_CONF % tmp)
            missing = str(Path(tmp, "missing.conf"))
            self.assertIn("cannot read the Zope configuration %s" % missing,
                          self.run_command("-C", missing))
            self.assertIn("--processes must be 1 or more",
                          self.run_command("-C", str(conf), "--processes", "0"))
            self.assertIn("--threads must be 1 or more",
                          self.run_command("-C", str(conf), "--threads", "0"))
            self.assertIn("required: -C", self.run_command("--processes", "2"))
            env = {name: value for name, value in os.environ.items() if name != "ZASYNC_UUID"}
            self.assertIn("gives the worker no identity: set the environment variable ZASYNC_UUID",
                          self.run_command("-C", str(conf), env=env))
