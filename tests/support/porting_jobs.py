"""The job functions of docs/porting.md: in your add-on, a module such as my/addon/jobs.py.

A worker imports a job function by its dotted name, so job functions live at
module level in a module of the add-on (a function defined in a block of the
guide, which tests/inprocess/test_porting.py runs with exec, could not be imported and
is refused by queueJob). tests/inprocess/test_porting.py checks that every function the
guide shows under ``<!-- module: tests/support/porting_jobs.py -->`` is this module's.
"""

from collective.zasync import task
from plone import api
from Products.CMFCore.utils import getToolByName

import time


# -- plone.app.async's documentation, ported (the functions themselves do not change) --


def addNumbers(context, x1, x2):
    return x1 + x2


def createDocument(context, id, title, description, body):
    context.invokeFactory("Document", id, title=title, description=description, text=body)
    return context[id].id


def submitObject(context, id):
    obj = context[id]
    wt = getToolByName(context, "portal_workflow")
    wt.doActionFor(obj, "submit")


def failingJob(context):
    raise RuntimeError("FooBared")


def job_success_callback(result):
    return "Success: %s" % result


def job_failure_callback(failure):
    return "Failure: %s" % failure


# -- arguments, quotas ------------------------------------------------------------------


def retitle(context, title):
    context.title = title
    context.reindexObject(idxs=["Title"])
    return title


def copy_title(context, source):
    context.title = source.title
    context.reindexObject(idxs=["Title"])
    return source.absolute_url()


def render_pdf(context, name, seconds=0.5):
    time.sleep(seconds)  # stands in for slow work
    return name + ".pdf"


# -- collective.taskqueue, collective.celery, ported ------------------------------------------


def rebuild_report(context, year):
    news = api.content.find(context=context, portal_type="News Item")
    titles = sorted(brain.Title for brain in news)
    report_id = "report-%d" % year
    if report_id not in context:
        api.content.create(context, "Document", id=report_id, title="Report %d" % year)
    context[report_id].description = "%d news items: %s" % (len(titles), ", ".join(titles))
    return report_id


def add_subject(context, subject):
    context.setSubject(context.Subject() + (subject,))
    context.reindexObject(idxs=["Subject"])
    return context.Subject()


def publish(context):
    with api.env.adopt_roles(["Manager"]):  # what @task.as_admin() did, said where it happens
        api.content.transition(obj=context, transition="publish")
    return api.content.get_state(context)


@task
def archive(context, subject):
    context.setSubject(context.Subject() + (subject,))
    context.reindexObject(idxs=["Subject"])
    return context.Subject()
