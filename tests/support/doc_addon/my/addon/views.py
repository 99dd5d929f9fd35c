from collective.zasync.api import get_service
from my.addon.jobs import report
from plone import api
from plone.protect import CheckAuthenticator
from Products.Five.browser import BrowserView
from zExceptions import BadRequest


class StartReport(BrowserView):
    """POST (with Plone's CSRF token): queue the report of this folder, show My jobs."""

    def __call__(self):
        if self.request.method != "POST":
            raise BadRequest("Send a POST with the _authenticator token.")
        CheckAuthenticator(self.request)
        get_service().queueJob(report, self.context)
        portal_url = api.portal.get().absolute_url()
        self.request.response.redirect(portal_url + "/@@zasync-my-jobs")
