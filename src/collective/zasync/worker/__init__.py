"""One worker process: its settings, its dispatcher (filing, claiming) and the job threads that
run what it claims. Not for add-ons, except what a running job calls (through ``collective.zasync.api``).
"""


def __getattr__(name):
    """Ping, Progress and WorkerRecord: records stored by 1.0.0a1 name them here (moved.py)."""
    from collective.zasync.moved import find

    return find(__name__, name)
