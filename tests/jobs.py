"""Job functions of the in-process tests (a worker thread of the test process imports them)."""

import threading
import time


# Names of the jobs that ran, in the order they ran (same process only).
ran = []
ran_lock = threading.Lock()


def record(context, name, seconds=0.0):
    """Sleep ``seconds``, then note ``name`` in ``ran``."""
    time.sleep(seconds)
    with ran_lock:
        ran.append(name)
    return name


# -- plone.app.async's documentation, as written there (tests/test_plone_app_async.py) --

results = []


def addNumbers(context, x1, x2):
    return x1 + x2


def createDocument(context, id, title, description, body):
    context.invokeFactory("Document", id, title=title, description=description, text=body)
    return context[id].id


def submitObject(context, id):
    from Products.CMFCore.utils import getToolByName

    obj = context[id]
    wt = getToolByName(context, "portal_workflow")
    wt.doActionFor(obj, "submit")


def failingJob(context):
    raise RuntimeError("FooBared")


def job_success_callback(result):
    results.append("Success: %s" % result)


def job_failure_callback(result):
    results.append(result)
