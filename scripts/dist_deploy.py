"""The production path of docs/deploy.md, followed as written, with the built wheel.

scripts/check-dist.sh runs it after the smoke test, with the fresh virtualenv that holds the
wheel. Every block of docs/deploy.md marked ``<!-- deploy: ... -->`` is used, in order:
``file PATH`` is written, ``run`` is run line by line, ``background`` is started and kept
running, ``service`` (the systemd unit) is started as systemd would start it (its
Environment= and ExecStart=). What differs from a real machine, and nothing else:

- /srv is a temporary directory, and the ports are free ones (8100 in the blocks, and the
  port mkwsgiinstance writes into zope.ini);
- ``python3 -m venv /srv/plone/venv`` and its ``pip install ... collective.zasync`` are the
  virtualenv that check-dist.sh made and installed the wheel into (no package index);
- ``pip install ZEO`` is uv's, with the pins of constraints.txt (no package index), into a
  virtualenv made without pip;
- the worker's unit runs with one CPU (its processes default to the CPUs it may use).

Then, as an integrator's add-on would, the add-on that docs/getting-started.md writes
(tests/support/doc_addon/my/addon) is put on the instance's and the worker's path, a Member logs in
over HTTP, presses its button (a POST with Plone's CSRF token), and the job must complete,
run by the worker as that Member, as My jobs and ``zasync show`` tell.
Usage: dist_deploy.py SOURCE_ROOT VENV UV WORKDIR
"""

from pathlib import Path

import base64
import configparser
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request


MEMBER, PASSWORD = "member", "member-Pw-1"


def fail(message):
    sys.exit("deploy: FAILED: %s" % message)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, what, seconds=300, process=None):
    deadline = time.monotonic() + seconds
    while not condition():
        if process is not None and process.poll() is not None:
            fail("%s: the process exited with %s first" % (what, process.returncode))
        if time.monotonic() > deadline:
            fail("timed out after %d s waiting for %s" % (seconds, what))
        time.sleep(0.5)


def listening(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Deployment:

    def __init__(self, root, venv, uv, work):
        self.root, self.venv, self.uv, self.work = Path(root), Path(venv), uv, Path(work)
        self.srv = self.work / "srv"
        self.zeo_port, self.http_port = free_port(), free_port()
        self.processes = []
        self.logs = self.work / "logs"
        self.logs.mkdir(parents=True)
        self.env = {name: value for name, value in os.environ.items()
                    if not name.startswith(("ZASYNC_", "PYTHON"))}

    def here(self, text):
        """A documented path or address made this deployment's."""
        text = re.sub(r"(?<![\w/])/srv(?=/)", str(self.srv), text)
        return text.replace("127.0.0.1:8100", "127.0.0.1:%d" % self.zeo_port)

    # -- the blocks ---------------------------------------------------------------------

    def follow(self, blocks):
        for block in blocks:
            kind = block.marker("deploy")
            if kind.startswith("file "):
                path = Path(self.here(kind[len("file "):]))
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(self.here(block.text))
            elif kind == "run":
                for line in block.text.splitlines():
                    if line.strip():
                        self.run_line(line.strip())
            elif kind == "background":
                self.start_line(block.text.strip())
            elif kind == "service":
                self.start_unit(block.text)
            else:
                fail("%r: unknown deploy marker %r" % (block, kind))

    def run_line(self, line):
        plone_venv = str(self.srv / "plone" / "venv")
        if line == "python3 -m venv /srv/plone/venv":
            (self.srv / "plone").mkdir(parents=True, exist_ok=True)
            os.symlink(self.venv, plone_venv)  # the wheel's virtualenv
            return
        if line.startswith("/srv/plone/venv/bin/pip install ") and "collective.zasync" in line:
            return  # installed from the wheel already
        if line == "python3 -m venv /srv/zeo":
            line = "python3 -m venv --without-pip /srv/zeo"
        if line == "/srv/zeo/bin/pip install ZEO":
            command = [self.uv, "pip", "install", "-q", "-p", self.here("/srv/zeo/bin/python"),
                       "-c", str(self.root / "constraints.txt"), "ZEO"]
        else:
            command = shlex.split(self.here(line))
        print("deploy: %s" % line, flush=True)
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            fail("%s exited with %d:\n%s%s" % (line, done.returncode, done.stdout, done.stderr))
        if "mkwsgiinstance" in line:
            self.set_http_port()
        return done

    def set_http_port(self):
        ini = self.srv / "plone" / "instance" / "etc" / "zope.ini"
        text, count = re.subn(r"(?m)^port = 8080$", "port = %d" % self.http_port, ini.read_text())
        if count != 1:
            fail("mkwsgiinstance's zope.ini has no 'port = 8080' line")
        ini.write_text(text)

    def start_line(self, line, **options):
        print("deploy: %s &" % line, flush=True)
        command = shlex.split(self.here(line))
        name = Path(command[0]).name
        out = open(self.logs / ("%s.log" % name), "ab")
        options.setdefault("env", self.env)
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, **options)
        self.processes.append(process)
        if name == "runzeo":
            wait_for(lambda: listening(self.zeo_port), "the ZEO server", 60, process)
        elif name == "runwsgi":
            wait_for(lambda: listening(self.http_port), "the instance", 300, process)
        return process

    def start_unit(self, text):
        unit = configparser.ConfigParser(interpolation=None)
        unit.optionxform = str
        unit.read_string(text)
        service = unit["Service"]
        name, _, value = service["Environment"].partition("=")
        one_cpu = min(os.sched_getaffinity(0))
        self.env_for_worker = dict(self.addon_env(), **{name: self.here(value)})
        self.worker = self.start_line(service["ExecStart"], env=self.env_for_worker,
                                      preexec_fn=lambda: os.sched_setaffinity(0, {one_cpu}))
        self.stop_seconds = int(service["TimeoutStopSec"])
        log = self.srv / "plone" / "instance" / "var" / "log" / "zasync-worker-event.log"
        wait_for(lambda: log.exists() and "runs jobs as worker" in log.read_text(),
                 "the worker's start in its own log, %s" % log, 300, self.worker)

    # -- the add-on of docs/getting-started.md, and a Member over HTTP -------------------------

    def addon_env(self):
        return dict(self.env, PYTHONPATH=str(self.root / "tests" / "support" / "doc_addon"))

    def install_addon(self):
        """As pip install of an add-on would: importable by every process from now on."""
        self.env = self.addon_env()
        includes = self.srv / "plone" / "instance" / "etc" / "package-includes"
        includes.mkdir(exist_ok=True)
        (includes / "my.addon-configure.zcml").write_text(
            '<include xmlns="http://namespaces.zope.org/zope" package="my.addon" />\n')

    def add_member(self):
        script = self.work / "add_member.py"
        script.write_text(
            "from AccessControl.SecurityManagement import newSecurityManager\n"
            "from plone import api\nfrom zope.component.hooks import setSite\nimport transaction\n"
            "newSecurityManager(None, app.acl_users.getUserById('admin').__of__(app.acl_users))\n"
            "setSite(app.Plone)\n"
            "api.user.create(email='member@example.org', username=%r, password=%r)\n"
            "transaction.commit()\n" % (MEMBER, PASSWORD))
        conf = self.srv / "plone" / "instance" / "etc" / "zope.conf"
        done = subprocess.run([str(self.venv / "bin" / "zconsole"), "run", str(conf), str(script)],
                              env=dict(self.addon_env(), ZASYNC_DISABLE="1"), capture_output=True, text=True)
        if done.returncode != 0:
            fail("adding a Member: %s" % (done.stdout + done.stderr)[-3000:])

    def request(self, path, data=None, json_api=False):
        url = "http://127.0.0.1:%d/Plone/%s" % (self.http_port, path)
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(url, data=body)
        token = base64.b64encode(("%s:%s" % (MEMBER, PASSWORD)).encode()).decode()
        request.add_header("Authorization", "Basic " + token)
        if json_api:
            request.add_header("Accept", "application/json")
        with urllib.request.urlopen(request, timeout=120) as answer:
            text = answer.read().decode()
        return json.loads(text) if json_api else text

    def member_queues_a_job(self):
        page = self.request("@@personal-information")
        token = re.search(r'name="_authenticator"\s+value="([^"]+)"', page)
        if token is None:
            fail("no _authenticator token on the Member's personal information page")
        self.request("@@start-report", {"_authenticator": token.group(1)})  # then My jobs
        jobs = {}

        def completed():
            jobs.update(self.request("@zasync-my-jobs", json_api=True))
            return jobs["items"] and jobs["items"][0]["state"] in ("completed", "failed")

        wait_for(completed, "the Member's job to complete (My jobs)", 180, self.worker)
        item = jobs["items"][0]
        if item["state"] != "completed" or "'user': '%s'" % MEMBER not in (item["result"] or ""):
            fail("the Member's job: %s" % item)
        return item["id"]

    def show(self, job_id):
        conf = self.srv / "plone" / "instance" / "etc" / "zope.conf"
        done = subprocess.run([str(self.venv / "bin" / "zasync"), "show", "-C", str(conf), job_id, "--json"],
                              env=self.env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            fail("zasync show: %s" % done.stderr)
        return json.loads(done.stdout)

    def stop(self):
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(120)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def main(root, venv, uv, work):
    sys.path.insert(0, root)
    from tests.support import docexamples as examples

    blocks = examples.blocks("docs/deploy.md", "deploy")
    deployment = Deployment(root, venv, uv, work)
    try:
        steps = iter(blocks)
        before_instance = []
        for block in steps:  # up to the instance's start: the ZEO server, Plone, the site
            if block.marker("deploy") == "background" and "runwsgi" in block.text:
                break
            before_instance.append(block)
        deployment.follow(before_instance)
        deployment.install_addon()
        deployment.add_member()
        deployment.start_line(deployment.here(block.text.strip()), env=deployment.addon_env())
        deployment.follow(list(steps))  # the worker's unit, zasync smoke
        job_id = deployment.member_queues_a_job()
        shown = deployment.show(job_id)
        uuid_file = Path(deployment.env_for_worker["ZASYNC_UUID"])  # one CPU: one process, no .N
        uuid = uuid_file.read_text().strip()
        if shown["user"] != MEMBER or shown["worker_uuid"] != uuid:
            fail("zasync show: the job ran as %r on %r, not as %r on the worker %s"
                 % (shown["user"], shown["worker_uuid"], MEMBER, uuid))
        deployment.worker.send_signal(signal.SIGTERM)  # systemctl stop
        code = deployment.worker.wait(deployment.stop_seconds)
        if code != 0:
            fail("the worker exited with %d on SIGTERM" % code)
    finally:
        deployment.stop()
    print("deploy: docs/deploy.md followed: ZEO alone with client-conflict-resolution, an instance "
          "and a worker from the wheel; a Member's job queued over HTTP ran on worker %s as %r"
          % (uuid, MEMBER))


if __name__ == "__main__":
    main(*sys.argv[1:])
