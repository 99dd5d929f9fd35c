"""Servers that end with the process that started them (the tests' clusters). Not for add-ons.

A ZEO server, a worker or a PostgreSQL server that a test run starts must not
outlive the run, however it ends: a failure, a SIGKILL, faulthandler's exit
after a hang. ``tied()`` is a ``preexec_fn`` for subprocess that has Linux send
the child SIGKILL when its parent ends (prctl PR_SET_PDEATHSIG); a server that
detaches itself (pg_ctl starts PostgreSQL so) gets a watcher instead
(``Watcher``): a small process that runs a command to stop it once the pipe from
its parent is closed, that is, once the parent has ended. A process whose children
must end too runs in a process group of its own, which a watcher kills (``popen_group``).

``zasync-cluster start`` ties nothing: its servers run on after it exits.
"""

import ctypes
import os
import signal
import subprocess
import sys


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _prctl():
    """libc's prctl, or None where there is none (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()  # looked up here, not in the forked child


def tied():
    """A ``preexec_fn`` that kills the child when this process ends (None where Linux cannot).

    The kernel ties the child to the thread that starts it: start servers from
    a thread that lives as long as they should (a test run's main thread).
    """
    if _PRCTL is None:
        return None
    parent = os.getpid()

    def die_with_parent():
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if os.getppid() != parent:  # it ended before the line above
            os.kill(os.getpid(), signal.SIGKILL)

    return die_with_parent


def popen_group(command, **kwargs):
    """Popen ``command`` in a process group of its own that ends with this process, the
    children it starts included (a supervisor's workers, which would wait for a server that
    is gone too): the returned process's ``watcher`` kills the group then."""
    process = subprocess.Popen(command, start_new_session=True, preexec_fn=tied(), **kwargs)
    process.watcher = Watcher(["kill", "-s", "KILL", "--", "-%d" % process.pid])
    return process


class Watcher:
    """Runs ``command`` once this process has ended, unless cancelled first."""

    # cat reads the pipe until its end: when this process has ended, however it ended.
    SCRIPT = 'cat > /dev/null; exec "$@" > /dev/null 2>&1'

    def __init__(self, command):
        # A session of its own: a Ctrl-C in the terminal stops the test run, not its watcher.
        self.process = subprocess.Popen(
            ["sh", "-c", self.SCRIPT, "zasync-watcher", *map(str, command)],
            stdin=subprocess.PIPE, start_new_session=True,
        )

    def cancel(self):
        """This process stops the server itself: the watcher ends without running anything."""
        os.killpg(self.process.pid, signal.SIGKILL)  # sh and its cat
        self.process.wait()
        self.process.stdin.close()
