"""The Plone site a context is in, and its path: whose jobs a request queues and sees. Not for add-ons."""

from Acquisition import aq_base
from Acquisition import aq_chain
from Acquisition import aq_inner
from collective.zasync.core.calls import path_of
from persistent import Persistent
from Products.CMFCore.interfaces import ISiteRoot


def find_site(context):
    """The Plone site that ``context`` is in; ValueError if it is in none."""
    if not isinstance(aq_base(context), Persistent) or not hasattr(
        aq_base(context), "getPhysicalPath"
    ):
        raise ValueError(
            "Cannot queue a job for %r: the context must be a persistent "
            "object inside a Plone site (content, a folder, the site)." % (context,)
        )
    for obj in aq_chain(aq_inner(context)):
        if ISiteRoot.providedBy(obj):
            return obj
    raise ValueError(
        "Cannot queue a job for %r: it is not inside a Plone site (or it is "
        "not acquisition-wrapped; get it by traversal from the site)." % (context,)
    )


def site_path_of(context):
    """The path of the Plone site of ``context``: whose jobs a view on it shows."""
    return path_of(find_site(context))
