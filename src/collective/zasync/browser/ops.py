"""``@@zasync-metrics`` and ``@@zasync-health`` on the site, for monitoring and orchestrators.
Not for add-ons.

The metrics are for "Manage portal", who sees the jobs of the site, or for
a scraper sending the token of the environment variable ZASYNC_METRICS_TOKEN
(``Authorization: Bearer TOKEN``), an operator's secret, who sees the whole
queue database (as the worker's metrics port shows it). The health check is
public and says nothing about jobs (it is the database's). Both only
read: they never create the queue database's structures (a GET that wrote
would be refused by plone.protect). The ops views, registered beside the front ends.
"""

from AccessControl import getSecurityManager
from collective.zasync.client import health
from collective.zasync.client import metrics
from collective.zasync.client import reading
from Products.Five.browser import BrowserView

import hmac
import json
import os


TOKEN_VARIABLE = "ZASYNC_METRICS_TOKEN"


def bearer_token_matches(request):
    """True if the request carries ``Authorization: Bearer <ZASYNC_METRICS_TOKEN>``."""
    token = os.environ.get(TOKEN_VARIABLE, "")
    # ZPublisher moves the Authorization header out of the environment into ``_auth``.
    header = getattr(request, "_auth", None) or request.getHeader("Authorization", "") or ""
    scheme, _, value = header.partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode(), token.encode())


class MetricsView(BrowserView):
    """The Prometheus text format (public view: access is checked here, token or permission)."""

    def __call__(self):
        response = self.request.response
        response.setHeader("Cache-Control", "no-store")
        operator = bearer_token_matches(self.request)
        if not (operator or getSecurityManager().checkPermission("Manage portal", self.context)):
            response.setStatus(401)
            response.setHeader("WWW-Authenticate", 'Bearer realm="zasync-metrics"')
            response.setHeader("Content-Type", "text/plain; charset=utf-8")
            return ("Log in with the permission Manage portal, or send the token of %s as "
                    "'Authorization: Bearer TOKEN'.\n" % TOKEN_VARIABLE)
        response.setHeader("Content-Type", metrics.CONTENT_TYPE)
        site_path = None if operator else "/".join(self.context.getPhysicalPath())
        return metrics.render(reading.queue_root(self.context, create=False), site_path)


class HealthView(BrowserView):
    """200 with {"status": "ok", ...} or 503 with the problems; no authentication."""

    def __call__(self):
        healthy, report = health.check(reading.queue_root(self.context, create=False), health.max_wait_of(self.context))
        response = self.request.response
        response.setStatus(200 if healthy else 503)
        response.setHeader("Content-Type", "application/json")
        response.setHeader("Cache-Control", "no-store")
        return json.dumps(report)
