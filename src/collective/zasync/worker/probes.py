"""The worker command's HTTP listener: ``/metrics`` (Prometheus) and ``/healthz`` (liveness).

Opt-in (``zasync-worker --metrics-port``), on 127.0.0.1 unless told
otherwise: it has no authentication, put it where only the scraper and the
orchestrator reach it. ``/metrics`` shows the queue database (the same
numbers as the site's ``@@zasync-metrics``); ``/healthz`` answers 200 while
this process's dispatcher loop runs, 503 once it has stopped. Not for add-ons.
"""

from collective.zasync.client import metrics
from collective.zasync.core.queue import get_queue_root
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import json
import logging
import threading
import transaction


log = logging.getLogger("collective.zasync")


def read_metrics(db):
    """The metrics of the queue database of ``db``, read in a connection of its own."""
    tm = transaction.TransactionManager()
    conn = db.open(transaction_manager=tm)
    try:
        tm.begin()
        return metrics.render(get_queue_root(conn, create=False))
    finally:
        tm.abort()
        conn.close()


def liveness(dispatcher):
    """(alive, report) of this process's dispatcher (None: no dispatcher)."""
    thread = getattr(dispatcher, "_loop_thread", None)
    alive = bool(thread is not None and thread.is_alive() and not dispatcher.stopping.is_set())
    report = {"status": "ok" if alive else "failing"}
    if dispatcher is not None:
        report.update(worker=dispatcher.uuid, busy_threads=dispatcher.busy,
                      database="failing" if dispatcher.loop_state.failing else "ok")
    return alive, report


def make_handler(db, get_dispatcher):
    """A request handler class serving /metrics and /healthz for ``db``."""

    class ProbeHandler(BaseHTTPRequestHandler):
        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self.reply(200, metrics.CONTENT_TYPE, read_metrics(db))
            elif path == "/healthz":
                alive, report = liveness(get_dispatcher())
                self.reply(200 if alive else 503, "application/json", json.dumps(report).encode())
            else:
                self.reply(404, "text/plain", b"/metrics or /healthz\n")

        def reply(self, status, content_type, body):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # scrapes every few seconds: not in the log
            pass

    return ProbeHandler


def start_probe_server(db, get_dispatcher, host="127.0.0.1", port=0):
    """Serve /metrics and /healthz in a daemon thread; return the server (``server_port``)."""
    server = ThreadingHTTPServer((host, port), make_handler(db, get_dispatcher))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="zasync-probes", daemon=True).start()
    log.info("Worker metrics on http://%s:%d/metrics, liveness on /healthz.", host, server.server_port)
    return server
