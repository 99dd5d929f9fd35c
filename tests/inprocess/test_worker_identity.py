"""A worker's identity: a second live process with it refuses to start; a restarted one takes it back."""

from collective.zasync.testing import wait_until
from collective.zasync.worker.dispatcher import Dispatcher
from collective.zasync.worker.registration import WorkerIdentityInUse
from collective.zasync.worker.settings import WorkerSettings
from tests.support.plaindatabase import PlainDatabase

import os
import socket
import subprocess
import sys


class TestIdentity(PlainDatabase):

    queued = 0  # (no site here to run them in)

    def start(self, uuid="w"):
        dispatcher = Dispatcher(self.db, uuid, WorkerSettings(threads=1, poll_interval=0.2, stop_timeout=1.0))
        dispatcher.start()
        self.addCleanup(dispatcher.stop)
        return dispatcher

    def record(self, uuid="w", **changes):
        tm, root = self.connection()
        for name, value in changes.items():
            setattr(root.workers[uuid], name, value)
        tm.commit()

    def test_a_second_process_with_the_identity_of_a_live_one_refuses_to_start(self):
        first = self.start()
        self.record(pid=os.getppid())  # as if it ran in another process of this host, alive
        with self.assertRaisesRegex(WorkerIdentityInUse, r"Worker w is running already: on %s, pid %d"
                                    % (socket.gethostname(), os.getppid())):
            Dispatcher(self.db, "w").start()
        self.record(host="elsewhere")  # ... or on another host
        with self.assertRaisesRegex(WorkerIdentityInUse, "on elsewhere"):
            Dispatcher(self.db, "w").start()
        first.stop()

    def test_a_restarted_worker_takes_its_identity_back(self):
        first = self.start()
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout.strip()
        self.record(pid=int(gone))  # its process is gone (killed, the machine restarted)
        second = self.start()
        wait_until(lambda: first.stopping.is_set(), "the first one to find out and stop")
        _tm, root = self.connection()
        self.assertEqual(root.workers["w"].incarnation, second.incarnation)
        first.stop()  # the record is the second one's: not unregistered
        _tm, root = self.connection()
        self.assertEqual(root.workers["w"].incarnation, second.incarnation)
