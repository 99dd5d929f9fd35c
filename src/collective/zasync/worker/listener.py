"""A worker's listener for PostgreSQL's notifications (RelStorage): what wakes an idle worker
there, as ZEO's invalidations do (worker/invalidations.py). What sends them, and why:
core/notifications.py. Not for add-ons.
"""

from collective.zasync.core.notifications import CHANNEL
from collective.zasync.defaults import RECONNECT_AFTER

import logging
import select
import threading
import time


log = logging.getLogger("collective.zasync")


class Listener:
    """A thread that LISTENs on the channel and calls ``callback(payload)`` for each notification."""

    def __init__(self, dsn, callback, name="zasync-listener"):
        self.dsn = dsn
        self.callback = callback
        self.listening = False  # True while notifications arrive (else the worker polls fast)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self, wait=2.0):
        """Start listening; True if it listens (within ``wait`` seconds)."""
        self._thread.start()
        deadline = time.monotonic() + wait
        while not self.listening and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.01)
        return self.listening

    def stop(self):
        self._stopping.set()
        self._thread.join(5.0)

    def _run(self):
        import psycopg2

        while not self._stopping.is_set():
            conn = None
            try:
                conn = psycopg2.connect(self.dsn)
                conn.autocommit = True
                with conn.cursor() as cursor:
                    cursor.execute("LISTEN %s" % CHANNEL)
                self.listening = True
                self.callback(None)  # (what was notified while it was not listening: look once)
                while not self._stopping.is_set():
                    if select.select([conn], [], [], 1.0) == ([], [], []):
                        continue
                    conn.poll()
                    while conn.notifies:
                        self.callback(conn.notifies.pop(0).payload)
            except Exception as exc:
                if self.listening:
                    log.warning("Lost the PostgreSQL notifications (%s); looking for new jobs "
                                "often until they are back.", exc)
                self.listening = False
                self._stopping.wait(RECONNECT_AFTER)
            finally:
                self.listening = False
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass
