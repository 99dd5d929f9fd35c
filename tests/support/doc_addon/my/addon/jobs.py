from plone import api

import logging


logger = logging.getLogger("my.addon")


def report(context):
    """Count the items below ``context`` that the user who asked may see."""
    user = api.user.get_current()
    items = api.content.find(context=context)
    return {"user": user.getId(), "items": len(items)}


def log_retry(event):
    logger.info("%s failed (%s); next try at %s", event.job.id, event.error, event.next_try)


def refuse_at_night(event):
    """Veto jobs started between midnight and 6 (server time): they fail with this error."""
    from datetime import datetime

    if datetime.now().hour < 6:
        raise RuntimeError("No jobs at night")
