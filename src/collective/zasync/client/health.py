"""Is the site's job queue healthy? For orchestrators' readiness probes and monitoring.

Healthy: at least one worker is alive and no due job has waited longer than
the site's ``health_max_wait`` setting. The answer names no job, user or
content: it is public. Not for add-ons (@@zasync-health serves it).
"""

from collective.zasync.client.metrics import alive_workers
from collective.zasync.client.metrics import oldest_due_age
from collective.zasync.defaults import HEALTH_MAX_WAIT as DEFAULT_MAX_WAIT


MAX_WAIT_RECORD = "collective.zasync.health_max_wait"


def check(root, max_wait=DEFAULT_MAX_WAIT, now=None):
    """(healthy, report): report is a small dict, safe to show to anyone."""
    alive = len(alive_workers(root)) if root is not None else 0
    waited = oldest_due_age(root, now) if root is not None else 0.0
    problems = []
    if not alive:
        problems.append("no worker is alive")
    if waited >= max_wait:
        problems.append("a due job has waited %d s (at most %d s allowed)" % (waited, max_wait))
    report = {
        "status": "failing" if problems else "ok",
        "workers_alive": alive,
        "oldest_due_job_waited_seconds": round(waited, 1),
        "max_wait_seconds": max_wait,
        "problems": problems,
    }
    return not problems, report


def max_wait_of(site):
    """The site's ``health_max_wait`` setting (DEFAULT_MAX_WAIT if it has none)."""
    registry = getattr(site, "portal_registry", None)
    value = registry.get(MAX_WAIT_RECORD) if registry is not None else None
    return value if value is not None else DEFAULT_MAX_WAIT
