"""A private PostgreSQL server for RelStorage (``zasync-cluster --storage relstorage``, the tests).
Not for add-ons.

Debian's PostgreSQL programs (the newest ``/usr/lib/postgresql/<version>/bin``, or the
directory in ``ZASYNC_PG_BIN``) run on a data directory of their own, listening on 127.0.0.1
only: never the system's service. PostgreSQL refuses to run as root, so as root the server
runs as the ``postgres`` system user (made by Debian's package), who owns the directory.
"""

from collective.zasync.dev.lifeline import Watcher
from pathlib import Path

import os
import shlex
import shutil
import subprocess
import tempfile


USER = "zasync"  # the superuser initdb creates; connections from 127.0.0.1 are trusted


def pg_bin():
    """The directory of PostgreSQL's programs."""
    if os.environ.get("ZASYNC_PG_BIN"):
        return Path(os.environ["ZASYNC_PG_BIN"])
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: [int(n) for n in path.parts[-3].split(".") if n.isdigit()],
    )
    if found:
        return found[-1].parent
    if shutil.which("initdb"):
        return Path(shutil.which("initdb")).parent
    raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (or set ZASYNC_PG_BIN)")


def traversed_parents(directory):
    """The parents of ``directory`` that postgres must traverse and we may open."""
    temp = Path(tempfile.gettempdir()).resolve()
    directory = Path(directory).resolve()
    if temp not in directory.parents:
        return [directory.parent]
    return [parent for parent in directory.parents if temp in parent.parents]


class PostgresServer:
    """A PostgreSQL server whose data, socket and log are in ``directory``.

    ``tied``: the server is stopped when this process ends, however it ends (lifeline.py).
    """

    def __init__(self, directory, port=None, tied=False):
        self.directory = Path(directory).absolute()
        self.data = self.directory / "data"
        self.port = port
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.tied = tied
        self.watcher = None

    def command(self, program, *args):
        """The command line of one of PostgreSQL's programs, as the user who owns the server."""
        return [*self.as_postgres, str(pg_bin() / program), *map(str, args)]

    def run(self, program, *args):
        command = self.command(program, *args)
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError("%s failed:\n%s%s" % (" ".join(command), result.stdout, result.stderr))

    def start(self):
        """Start the server, after initdb on first use; True if the data directory is new."""
        new = not (self.data / "PG_VERSION").exists()
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
            # postgres must get through the parents (a 0700 temporary directory in the tests
            # and the benchmarks, maybe a few levels up): others may traverse them, not list
            # them. Outside the temporary directory, only the immediate parent is opened.
            for parent in traversed_parents(self.directory):
                parent.chmod(parent.stat().st_mode | 0o001)
        if new:
            self.run("initdb", "-D", self.data, "-U", USER, "--auth=trust", "--no-locale", "-E", "UTF8")
        # -o: the server's options, through a shell
        options = "-p %d -k %s -c listen_addresses=127.0.0.1" % (self.port, shlex.quote(str(self.directory)))
        log = self.directory / "postgres.log"
        self.run("pg_ctl", "start", "-w", "-t", "60", "-D", self.data, "-l", log, "-o", options)
        if self.tied:
            self.watcher = Watcher(self.command("pg_ctl", "stop", "-m", "immediate", "-D", self.data))
        return new

    def create_database(self, name):
        self.run("createdb", "-h", "127.0.0.1", "-p", self.port, "-U", USER, name)

    def dsn(self, name):
        return "dbname=%s user=%s host=127.0.0.1 port=%d" % (name, USER, self.port)

    def pid(self):
        """The server's process id, None when it does not run."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self):
        """Stop the server: sessions are ended, transactions in progress rolled back."""
        if self.watcher is not None:
            self.watcher.cancel()
            self.watcher = None
        if self.pid() is not None:
            self.run("pg_ctl", "stop", "-w", "-m", "fast", "-D", self.data)
