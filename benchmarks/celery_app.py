"""The Celery+Redis reference: the same work as the zasync jobs, done by Celery tasks.

Configured by the environment (set by run.py):

- ``BENCH_REDIS_URL``: broker (no result backend: results are not stored);
- ``BENCH_ZOPE_CONF``: if set, every pool process loads Zope from this
  zope.conf when it starts (ZEO ClientStorage + ZODB.DB in that process), as
  collective.celery does, so that ``set_title`` can modify Plone documents.

Each task notes, in Redis, when the first one started, when the last one
ended and how many ran: one pipelined round trip per task.
"""

from celery import Celery
from celery.signals import worker_process_init

import os
import random
import time


REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

app = Celery("zasync_bench", broker=REDIS_URL)
app.conf.update(
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    task_default_queue="bench",
)

_redis = None


def redis():
    global _redis
    if _redis is None:
        import redis as redis_client

        _redis = redis_client.Redis.from_url(REDIS_URL)
    return _redis


def record(started, failed=False):
    pipe = redis().pipeline(transaction=False)
    if failed:
        pipe.incr("bench:failed")
    pipe.setnx("bench:first", repr(started))
    pipe.set("bench:last", repr(time.time()))
    pipe.incr("bench:done")
    pipe.execute()


# -- Zope in the worker process (the collective.celery way) -------------------------

_zope_loaded = False


@worker_process_init.connect
def load_zope(**kwargs):
    """Configure Zope from zope.conf and open its databases, once per pool process."""
    global _zope_loaded
    zope_conf = os.environ.get("BENCH_ZOPE_CONF")
    if not zope_conf or _zope_loaded:
        return
    os.environ["ZASYNC_DISABLE"] = "1"  # this process is no zasync worker
    from Zope2.Startup.run import configure_wsgi

    configure_wsgi(zope_conf)
    import Zope2

    Zope2.startup_wsgi()
    _zope_loaded = True


def zope_app():
    from Testing.makerequest import makerequest

    import Zope2

    return makerequest(Zope2.app())


# -- tasks ----------------------------------------------------------------------------


@app.task(name="bench.noop")
def noop():
    record(time.time())


@app.task(name="bench.set_title")
def set_title(path, title, user_id="admin", site_id="Plone"):
    """Modify a Plone document as ``user_id``: sample_jobs.set_title, from Celery."""
    from AccessControl.SecurityManagement import newSecurityManager
    from AccessControl.SecurityManagement import noSecurityManager
    from tests.support import sample_jobs
    from ZODB.POSException import ConflictError
    from zope.component.hooks import setSite

    import transaction

    started = time.time()
    for attempt in range(6):
        app = zope_app()
        try:
            transaction.begin()
            site = app[site_id]
            setSite(site)
            user = app.acl_users.getUserById(user_id)
            newSecurityManager(None, user.__of__(app.acl_users))
            doc = site.unrestrictedTraverse(path)
            sample_jobs.set_title(doc, title)
            transaction.commit()
            break
        except ConflictError:
            transaction.abort()
            time.sleep(random.uniform(0, 0.05 * 2**attempt))
        finally:
            noSecurityManager()
            setSite(None)
            app._p_jar.close()
    else:
        record(started, failed=True)  # counted, so that the benchmark does not wait for it
        raise RuntimeError("set_title %s: ConflictError after 5 retries" % path)
    record(started)


@app.task(name="bench.latency")
def latency(published):
    """Note how long after its publication (by the same machine's clock) it started."""
    started = time.time()
    redis().rpush("bench:latency", repr((started - published) * 1000))
