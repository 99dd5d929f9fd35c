"""Job functions of the content-life, through-the-web and checkpoint tests.

Worker processes import them by their dotted names (``tests.content_jobs:...``).
"""

from BTrees.IOBTree import IOBTree
from collective.zasync import api

import os


ran = []  # (function, context path) of each call, in the in-process worker


def paths(context, *objects):
    """Where the context and the objects passed by reference are now."""
    ran.append(("paths", "/".join(context.getPhysicalPath())))
    return ["/".join(obj.getPhysicalPath()) for obj in (context, *objects)]


def mark(context, text="marked"):
    """Record the call and set the context's description (a ZODB effect)."""
    ran.append(("mark", "/".join(context.getPhysicalPath())))
    context.setDescription(text)
    return text
