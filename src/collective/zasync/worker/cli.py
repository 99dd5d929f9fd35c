"""zasync-worker: run jobs in worker processes that serve no HTTP.

    zasync-worker -C etc/zope.conf [--processes N] [--threads M] [--metrics-port PORT]

Each worker process loads the instance's zope.conf and ZCML as ``zconsole``
does and starts its dispatcher (the worker ZCML need not be included; if it
is, the dispatcher it starts is the one used). With more than one process
(default: one per CPU) a supervisor starts them and restarts any that dies.
Worker process N takes its UUID from the instance's UUID file (ZASYNC_UUID or
uuid-file) with ``.N`` appended: each is a distinct worker, and keeps its
identity when restarted. SIGTERM or SIGINT stops them: running jobs get
stop-timeout seconds, the others go back to the queue. The worker logs as the
instance does, but to files of its own (``zasync-worker-`` before each name).
The console script ``zasync-worker`` (setup.py); not for add-ons.
"""

from collective.zasync.defaults import MAX_RESTART_DELAY
from collective.zasync.defaults import STEADY
from collective.zasync.defaults import STOP_MARGIN
from collective.zasync.worker.settings import WorkerSettings

import argparse
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time


log = logging.getLogger("collective.zasync.worker.cli")


class UsageError(Exception):
    """A bad command line or configuration: exit code 2 and this message."""


def available_cpus(cgroup_root="/sys/fs/cgroup"):
    """The CPUs this process may use: its CPU affinity, capped by a container's CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def cgroup_cpu_quota(cgroup_root="/sys/fs/cgroup"):
    """CPUs allowed by the cgroup's quota (cgroup v2 cpu.max, or v1 cfs), or None: no quota."""
    try:
        with open(os.path.join(cgroup_root, "cpu.max")) as f:
            quota, _, period = f.read().strip().partition(" ")
    except OSError:
        try:
            with open(os.path.join(cgroup_root, "cpu", "cpu.cfs_quota_us")) as f:
                quota = f.read().strip()
            with open(os.path.join(cgroup_root, "cpu", "cpu.cfs_period_us")) as f:
                period = f.read().strip()
        except OSError:
            return None
    if quota in ("max", "-1") or not period:
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="zasync-worker", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-C", "--config", required=True, metavar="ZOPE_CONF", help="the instance's zope.conf"
    )
    parser.add_argument(
        "--processes", type=int, default=available_cpus(), metavar="N",
        help="worker processes (default: one per CPU this process may use, with its CPU "
             "affinity and a container's CPU quota: %(default)s here)",
    )
    parser.add_argument(
        "--threads", type=int, metavar="M",
        help="jobs each process runs at once (default: threads in zope.conf)",
    )
    parser.add_argument(
        "--metrics-port", type=int, metavar="PORT",
        help="serve /metrics (Prometheus) and /healthz (liveness) on this port; with several "
             "processes, process N on PORT+N-1 (default: no listener)",
    )
    parser.add_argument(
        "--metrics-host", default="127.0.0.1", metavar="ADDRESS",
        help="the address of the --metrics-port listener (default: %(default)s)",
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # set by the supervisor
    args = parser.parse_args(argv)
    if args.metrics_port is not None and not 0 < args.metrics_port < 65536:
        parser.error("--metrics-port must be a port number, 1 to 65535")
    for name in ("processes", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error("--%s must be 1 or more" % name)  # exits 2
    args.config = os.path.abspath(args.config)
    return args


def read_config(path):
    """Check zope.conf (no database is opened); return the worker settings."""
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise UsageError("cannot read the Zope configuration %s (-C)" % path)
    from Zope2.Startup.options import ZopeWSGIOptions

    import ZConfig

    try:
        root = ZopeWSGIOptions(configfile=path)().configroot
    except ZConfig.ConfigurationError as error:
        raise UsageError("%s: %s" % (path, error)) from None
    environ = dict(os.environ, **(root.environment or {}))  # zope.conf's <environment> wins
    config = (root.product_config or {}).get("collective.zasync", {})
    if environ.get("ZASYNC_DISABLE"):
        raise UsageError("ZASYNC_DISABLE is set: the worker would run no jobs; unset it")
    if not (environ.get("ZASYNC_UUID") or config.get("uuid-file")):
        raise UsageError(
            "%s gives the worker no identity: set the environment variable ZASYNC_UUID (or "
            "uuid-file in <product-config collective.zasync>) to a file path, e.g. "
            "var/worker-uuid.txt; it is created on first start (with several processes, one "
            "per process: FILE.1, FILE.2, ...)" % path
        )
    try:
        return WorkerSettings.from_product_config(config)
    except ValueError as error:
        raise UsageError(str(error)) from None


LOG_PREFIX = "zasync-worker-"  # the worker's log files beside the instance's: never the same


def setup_logging(config, label=None):
    """Log as the instance does: with the logging sections of the zope.ini (mkwsgiinstance) or
    wsgi.ini (buildout) beside zope.conf, as runwsgi reads them, but each log file with
    LOG_PREFIX before its name; without such a file, to stderr."""
    from Zope2.Startup.serve import setup_logging as from_ini

    for name in ("zope.ini", "wsgi.ini"):
        ini = os.path.join(os.path.dirname(config), name)
        if os.path.isfile(ini):
            from_ini(ini)
            files = log_files_of_our_own()
            if files and not label:  # said once, by the supervisor or the single process
                log.info("zasync-worker logs to %s (the logging of %s)", ", ".join(files), ini)
            break
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s [%(name)s] %(message)s"
        )
    if label:  # the worker processes share the log: each of its lines says which one wrote it
        make_record = logging.getLogRecordFactory()

        def labelled(*args, **kwargs):
            record = make_record(*args, **kwargs)
            record.msg = "[%s] %s" % (label, record.msg)
            return record

        logging.setLogRecordFactory(labelled)


def log_files_of_our_own():
    """Point every file handler of the logging configuration at a file of the worker's own.

    The instance's .ini names the instance's files: an instance and a worker started on one
    configuration must not write (and rotate) one file from two processes.
    """
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    moved = {}
    for logger in loggers:
        for handler in logger.handlers:
            path = getattr(handler, "baseFilename", None)
            if path is None or handler in moved:
                continue
            folder, name = os.path.split(path)
            if name.startswith(LOG_PREFIX):
                continue
            handler.acquire()
            try:
                handler.close()
                handler.baseFilename = os.path.join(folder, LOG_PREFIX + name)
            finally:
                handler.release()
            moved[handler] = handler.baseFilename
    return sorted(set(moved.values()))


def run_worker(args):
    """This process is a worker: load Zope, run jobs until SIGTERM or SIGINT."""
    stopping = threading.Event()
    started = False
    parent = os.getppid()

    def on_signal(signum, frame):
        stopping.set()
        if not started:  # still loading Zope: nothing to finish or hand back yet
            raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # Imported here, not by the supervisor: it needs no Plone code.
    from collective.zasync.worker import process as worker
    from Zope2.Startup.run import make_wsgi_app

    import Zope2

    suffix = ".%d" % args.child if args.child else ""
    worker.process_options.update(uuid_suffix=suffix, threads=args.threads)
    make_wsgi_app({}, args.config)  # ZCML, databases, IProcessStarting; serves nothing
    # If the instance's ZCML includes the worker ZCML, its subscriber has started the dispatcher.
    dispatcher = worker.get_dispatcher() or worker.start_worker()
    started = True
    if args.metrics_port:
        from collective.zasync.worker.probes import start_probe_server

        start_probe_server(Zope2.DB, worker.get_dispatcher, host=args.metrics_host,
                           port=args.metrics_port + (args.child or 1) - 1)
    # Ours again (start_worker wraps them): a signal only asks; the main thread stops, once.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("Worker process %s (pid %d) runs jobs as worker %s, %d threads.",
             args.child or 1, os.getpid(), dispatcher.uuid, dispatcher.settings.threads)
    while not stopping.wait(1.0):
        if args.child and os.getppid() != parent:
            log.warning("The zasync-worker supervisor is gone: stopping.")
            break
    worker.stop_worker()
    for db in Zope2.DB.databases.values():
        db.close()
    return 0


class Child:
    """Worker process ``index`` of the supervisor."""

    def __init__(self, index, command):
        self.index = index
        self.command = command + ["--child", str(index)]
        self.process = None
        self.started = self.restart_at = 0.0
        self.deaths = 0  # in a row, each soon after its start

    def start(self):
        self.process = subprocess.Popen(self.command)
        self.started = time.monotonic()
        log.info("Started worker process %d (pid %d).", self.index, self.process.pid)

    def describe(self):
        code = self.process.returncode
        if code < 0:
            return "was killed by signal %s" % signal.Signals(-code).name
        return "exited with code %d" % code


def supervise(args, settings):
    """Start the worker processes, restart any that dies, stop them all on SIGTERM or SIGINT."""
    # The workers are spawned (a new interpreter runs this command with --child N), not
    # forked: each loads Zope and opens its database connections itself, inherits no
    # threads, sockets, signal handlers or log files from the supervisor (which never
    # starts Zope), and runs the very code of --processes 1.
    stop = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    signal.signal(signal.SIGINT, lambda signum, frame: stop.append(signum))
    command = [sys.executable, "-m", "collective.zasync.worker.cli", "-C", args.config]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if args.metrics_port:
        command += ["--metrics-port", str(args.metrics_port), "--metrics-host", args.metrics_host]
    children = [Child(index, command) for index in range(1, args.processes + 1)]
    log.info("zasync-worker (pid %d): starting %d worker processes.", os.getpid(), args.processes)
    status = 0
    while not stop:
        now = time.monotonic()
        for child in children:
            if child.process is None:
                if now >= child.restart_at:
                    child.start()
                continue
            if child.process.poll() is None:
                continue
            if child.process.returncode == 2:  # refused its configuration: would again
                log.error("Worker process %d cannot start (exit code 2): stopping.", child.index)
                stop.append(None)
                status = 2
                break
            lived = now - child.started
            child.deaths = 1 if lived >= STEADY else child.deaths + 1
            delay = min(2.0 ** (child.deaths - 1), MAX_RESTART_DELAY)  # 1, 2, 4, ... s
            log.warning("Worker process %d (pid %d) %s after %.0f s; starting it again in %g s.",
                        child.index, child.process.pid, child.describe(), lived, delay)
            child.process, child.restart_at = None, now + delay
        time.sleep(0.2)
    running = [child for child in children if child.process is not None]
    log.info("zasync-worker: stopping %d worker processes.", len(running))
    for child in running:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + settings.stop_timeout + STOP_MARGIN
    for child in running:
        try:
            child.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("Worker process %d (pid %d) did not stop in time: SIGKILL.",
                        child.index, child.process.pid)
            child.process.kill()
            child.process.wait()
        log.info("Worker process %d (pid %d) %s.", child.index, child.process.pid, child.describe())
    return status


def main(argv=None):
    args = parse_args(argv)
    try:
        settings = read_config(args.config)
        setup_logging(args.config, label=args.child and "zasync-worker %d" % args.child)
        if args.child is None and args.processes > 1:
            return supervise(args, settings)
        return run_worker(args)
    except UsageError as error:
        print("zasync-worker: error: %s" % error, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
