"""docs/docker-compose.yml works with Plone's images, checked without Docker.

No Docker engine runs here, so each container is played on this machine: its volumes are
directories (a named volume is the directory of the first container that mounts it, and a symbolic link in the others), its root is a
temporary directory standing for ``/``, and its entrypoint is ``Entrypoint`` below, a
re-implementation of what plone/plone-backend's docker-entrypoint.sh does before it runs a
command. It follows plone-backend's branch 6.0.x at commit 416e517 (2024-02-28): the
configuration file is chosen by RELSTORAGE_DSN, then ZEO_ADDRESS; the variables those files
read get their defaults; a site is created only by the ``start`` command, when SITE is set at
all (``[[ -v SITE ]]``); any other command is run as it is. The configuration files the image
ships are re-implemented by ``image_conf`` (the same keys, read from the same variables).

The test starts a stock ZEO server (ZEO alone) on the compose file's own zeo.conf, creates the
site as the backend would, starts the worker's command on the configuration its entrypoint
chose, in a process allowed one CPU (a container's quota), and checks with ``zasync smoke``
that it runs a job, and that its health check answers.
"""

from collective.zasync.dev.cluster import end_process
from collective.zasync.dev.cluster import free_port
from collective.zasync.dev.cluster import STOCK_RUNZEO
from collective.zasync.dev.cluster import wait_for_port
from pathlib import Path
from tests.support import docexamples as documents

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest
import urllib.request
import yaml


BIN = Path(sys.executable).parent
COMPOSE = documents.ROOT / "docs" / "docker-compose.yml"

# What the image's entrypoint exports when unset, by the configuration it chose.
COMMON_DEFAULTS = {
    "SECURITY_POLICY_IMPLEMENTATION": "C", "VERBOSE_SECURITY": "off",
    "DEFAULT_ZPUBLISHER_ENCODING": "utf-8", "COMPILE_MO_FILES": "true", "DEBUG_MODE": "off",
    "ZOPE_FORM_MEMORY_LIMIT": "4MB", "ZODB_CACHE_SIZE": "50000",
}
ZEO_DEFAULTS = {
    "ZEO_SHARED_BLOB_DIR": "off", "ZEO_READ_ONLY": "false", "ZEO_CLIENT_READ_ONLY_FALLBACK": "false",
    "ZEO_STORAGE": "1", "ZEO_CLIENT_CACHE_SIZE": "128MB", "ZEO_DROP_CACHE_RATHER_VERIFY": "false",
}
# What plone-zeo's start script exports when unset.
ZEO_SERVER_DEFAULTS = {"ZEO_READ_ONLY": "false", "ZEO_INVALIDATION_QUEUE_SIZE": "100",
                       "ZEO_PACK_KEEP_OLD": "true", "ZEO_PORT": "8100"}
# The <zeoclient> keys of the image's zeo.conf, and the variable each is read from.
ZEOCLIENT_KEYS = [
    ("read-only", "ZEO_READ_ONLY"), ("read-only-fallback", "ZEO_CLIENT_READ_ONLY_FALLBACK"),
    ("shared-blob-dir", "ZEO_SHARED_BLOB_DIR"), ("server", "ZEO_ADDRESS"), ("storage", "ZEO_STORAGE"),
    ("cache-size", "ZEO_CLIENT_CACHE_SIZE"), ("drop-cache-rather-verify", "ZEO_DROP_CACHE_RATHER_VERIFY"),
]


def image_conf(name):
    """The image's /app/etc/NAME (zeo.conf: a ZEO client; variables read by ZConfig's $(...))."""
    if name != "zeo.conf":
        raise AssertionError("the compose file's services are ZEO clients, not %s" % name)
    zeoclient = "\n".join("      %s $(%s)" % pair for pair in ZEOCLIENT_KEYS)
    return "\n".join([
        "%define INSTANCE /app", "instancehome $INSTANCE",
        "%define CLIENTHOME $(CLIENT_HOME)", "clienthome $CLIENTHOME",
        "debug-mode $(DEBUG_MODE)", "security-policy-implementation $(SECURITY_POLICY_IMPLEMENTATION)",
        "verbose-security $(VERBOSE_SECURITY)", "default-zpublisher-encoding $(DEFAULT_ZPUBLISHER_ENCODING)",
        "<environment>", "    CHAMELEON_CACHE $INSTANCE/var/cache", "</environment>",
        "<dos_protection>", "  form-memory-limit $(ZOPE_FORM_MEMORY_LIMIT)", "</dos_protection>",
        "<zodb_db main>", "    cache-size $(ZODB_CACHE_SIZE)", "    <zeoclient>",
        "      name zeostorage", "      var $INSTANCE/var", "      blob-dir $INSTANCE/var/blobstorage",
        zeoclient, "    </zeoclient>", "    mount-point /", "</zodb_db>", "",
    ])


def services():
    with open(COMPOSE) as f:
        return yaml.safe_load(f)["services"]


class Container:
    """One service of the compose file, played in a directory standing for its ``/``."""

    def __init__(self, test, name, service, volumes, hosts):
        self.name, self.service, self.hosts = name, service, hosts
        self.root = Path(tempfile.mkdtemp(prefix="container-%s-" % name))
        test.addCleanup(shutil.rmtree, self.root, True)
        for mount in sorted(service.get("volumes", []), key=lambda text: len(text.split(":")[1])):
            source, target = mount.split(":")[:2]
            here = self.root / target.lstrip("/")
            here.parent.mkdir(parents=True, exist_ok=True)
            if source.startswith("./"):  # a file beside the compose file
                shutil.copy(COMPOSE.parent / source, here)
            elif source in volumes:  # a volume another container holds already
                here.symlink_to(volumes[source])
            else:  # the first container holds it (ZODB refuses a blob directory that is a link)
                here.mkdir(exist_ok=True)
                volumes[source] = here

    def path(self, text):
        """``text`` with the container's absolute paths (/app, /data) made paths of this machine."""
        return documents.relocate(str(text), str(self.root), prefixes=("/app", "/data"))

    def environment(self):
        """The variables of the service, with the hosts of other services made this machine's."""
        env = {name: str(value) for name, value in (self.service.get("environment") or {}).items()}
        for host, address in self.hosts.items():
            env = {name: value.replace(host, address) for name, value in env.items()}
        return env


class Entrypoint:
    """plone-backend's docker-entrypoint.sh, up to the command it runs (see the module)."""

    def __init__(self, container):
        self.container = container
        env = dict(container.environment(), CLIENT_HOME="/data/%s/hostid" % container.name)
        if "RELSTORAGE_DSN" in env:
            self.conf = "relstorage.conf"
        elif "ZEO_ADDRESS" in env:
            self.conf = "zeo.conf"
            env = dict(ZEO_DEFAULTS, **env)
        else:
            self.conf = "zope.conf"
        self.env = dict(COMMON_DEFAULTS, **env)
        root = container.root
        (root / "app" / "etc").mkdir(parents=True, exist_ok=True)
        (root / "data").mkdir(exist_ok=True)
        if not (root / "app" / "var").exists():
            (root / "app" / "var").symlink_to(root / "data")  # the image's /app/var -> /data
        for name in ("filestorage", "blobstorage", "cache", "log"):
            (root / "data" / name).mkdir(exist_ok=True)
        Path(container.path(self.env["CLIENT_HOME"])).mkdir(parents=True, exist_ok=True)
        (root / "app" / "etc" / self.conf).write_text(container.path(image_conf(self.conf)))

    def creates_site(self, command):
        return command == ["start"] and "SITE" in self.env  # [[ -v SITE ]]: set, even empty

    def process_env(self):
        env = {name: value for name, value in os.environ.items() if not name.startswith("ZASYNC_")}
        env.update({name: self.container.path(value) for name, value in self.env.items()})
        return env


class TestComposeFile(unittest.TestCase):

    def test_the_services(self):
        found = services()
        self.assertEqual(set(found), {"zeo", "backend", "worker"})
        self.assertIn("./zeo.conf:/app/etc/zeo.conf:ro", found["zeo"]["volumes"])
        self.assertNotIn("SITE", found["worker"]["environment"])  # only the backend creates it
        self.assertIn("SITE", found["backend"]["environment"])
        self.assertNotIn("healthcheck", found["backend"])  # the queue's health is for alerts
        self.assertIn("/healthz", " ".join(found["worker"]["healthcheck"]["test"]))
        self.assertEqual(len({found[name]["image"] for name in ("backend", "worker")}), 1)

    def test_the_worker_reads_the_configuration_the_entrypoint_chose(self):
        worker = services()["worker"]
        entrypoint = Entrypoint(Container(self, "worker", worker, {}, {"zeo": "127.0.0.1"}))
        self.assertEqual(entrypoint.conf, "zeo.conf")
        self.assertEqual(worker["command"][:3], ["/app/bin/zasync-worker", "-C", "/app/etc/zeo.conf"])
        self.assertFalse(entrypoint.creates_site(worker["command"]))
        backend = services()["backend"]
        self.assertTrue(Entrypoint(Container(self, "backend", backend, {}, {})).creates_site(["start"]))


@unittest.skipUnless(STOCK_RUNZEO.exists(), "make zeo-venv builds the stock ZEO server")
class TestComposeCluster(unittest.TestCase):
    """The zeo service, the backend's site creation and the worker's command, played."""

    def setUp(self):
        self.processes = []
        self.volumes = {}
        found = services()
        self.zeo_port = free_port()
        self.zeo = Container(self, "zeo", found["zeo"], self.volumes, {})
        hosts = {"zeo:8100": "127.0.0.1:%d" % self.zeo_port}
        self.backend = Entrypoint(Container(self, "backend", found["backend"], self.volumes, hosts))
        self.worker = Entrypoint(Container(self, "worker", found["worker"], self.volumes, hosts))

    def tearDown(self):
        for process in reversed(self.processes):
            end_process(process, timeout=90)

    def start(self, argv, env, cwd, **options):
        log = open(Path(cwd) / "process.log", "ab")
        self.addCleanup(log.close)
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, **options)
        self.processes.append(process)
        return process

    def start_zeo(self):
        """plone-zeo's start: its directories, its variables, runzeo on the mounted zeo.conf."""
        root = self.zeo.root
        for name in ("data/filestorage", "data/blobstorage", "data/cache", "data/log", "app/var"):
            (root / name).mkdir(parents=True, exist_ok=True)
        conf = root / "app" / "etc" / "zeo.conf"
        conf.write_text(self.zeo.path(conf.read_text()))
        env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
        env.update(ZEO_SERVER_DEFAULTS, ZEO_PORT=str(self.zeo_port))
        process = self.start([str(STOCK_RUNZEO), "-C", "etc/zeo.conf"], env, root / "app")
        wait_for_port(self.zeo_port, 60, process)

    def run_as_backend(self, argv, timeout=600):
        return subprocess.run(argv, env=self.backend.process_env(), cwd=self.backend.container.root / "app",
                              capture_output=True, text=True, timeout=timeout)

    def test_the_worker_runs_jobs_and_answers_its_health_check(self):
        self.start_zeo()
        conf = str(self.backend.container.root / "app" / "etc" / self.backend.conf)
        created = self.run_as_backend([str(BIN / "zconsole"), "run", conf,
                                       str(documents.ROOT / "src/collective/zasync/dev/create_site.py"),
                                       self.backend.env["SITE"], "admin:admin"])
        self.assertEqual(created.returncode, 0, created.stdout + created.stderr)

        command = list(services()["worker"]["command"])
        metrics = free_port()
        command[command.index("--metrics-port") + 1] = str(metrics)
        command = [str(BIN / "zasync-worker") if arg == "/app/bin/zasync-worker"
                   else self.worker.container.path(arg) for arg in command]
        one_cpu = min(os.sched_getaffinity(0))  # a container with one CPU: one worker process
        worker = self.start(command, self.worker.process_env(), self.worker.container.root / "app",
                            preexec_fn=lambda: os.sched_setaffinity(0, {one_cpu}))
        wait_for_port(metrics, 240, worker)

        smoke = self.run_as_backend([str(BIN / "zasync"), "smoke", "-C", conf, "--user", "admin",
                                     "--timeout", "120"])
        self.assertEqual(smoke.returncode, 0, smoke.stdout + smoke.stderr)
        uuid = self.worker.container.path(self.worker.env["ZASYNC_UUID"])
        self.assertIn(Path(uuid).read_text().strip(), smoke.stdout)  # run by that worker

        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % metrics, timeout=30) as answer:
            self.assertEqual(answer.status, 200)
        worker.send_signal(signal.SIGTERM)
        self.assertEqual(worker.wait(120), 0)
