"""The item a job belongs to, noted at queue time: its context, or the item given as ``about=``.
Not for add-ons (``about=`` is the service's).

The finisher lists the job on that item by its database and oid (core/indexes.py). An
item not stored yet (a content rule on "object added") gets its oid when the queueing
transaction commits (``note_item``).
"""

from Acquisition import aq_base
from Acquisition import aq_chain
from Acquisition import aq_inner
from Acquisition import aq_parent
from collective.zasync.client.sites import find_site
from collective.zasync.core.calls import path_of
from plone.uuid.interfaces import IUUID

import transaction


def in_its_container(obj):
    """True if the container ``obj`` was acquired from holds it (it was added to it)."""
    container = aq_parent(aq_inner(obj))
    found = container._getOb(obj.getId(), None) if hasattr(aq_base(container), "_getOb") else None
    return found is not None and aq_base(found) is aq_base(obj)


def note_item(job, obj, about=False):
    """Record on ``job`` the oid and database of ``obj`` (its context, or ``about=``).

    An object not stored yet gets its oid when the transaction commits: it is
    added to the connection of its container then, and the job takes it.
    """
    prefix = "about_" if about else "context_"
    jar = getattr(aq_base(obj), "_p_jar", None)
    if jar is not None and obj._p_oid is not None:
        setattr(job, prefix + "oid", obj._p_oid)
        setattr(job, prefix + "database", jar.db().database_name)
        return
    transaction.get().addBeforeCommitHook(_note_stored, (job, obj, prefix))


def _note_stored(job, obj, prefix):
    """Before commit: store ``obj`` in its container's connection, if it is still in it; note its oid."""
    if obj._p_jar is None:
        chain = aq_chain(aq_parent(aq_inner(obj)))
        jar = next((item._p_jar for item in chain if getattr(item, "_p_jar", None) is not None), None)
        if jar is None or not in_its_container(obj):
            return  # removed again in this transaction: nothing to list it on
        jar.add(aq_base(obj))
    setattr(job, prefix + "oid", obj._p_oid)
    setattr(job, prefix + "database", obj._p_jar.db().database_name)


def belongs_to(job, item, site):
    """Mark ``job`` as belonging to content ``item`` (queueJob's ``about=``); raise on bad input."""
    if aq_base(find_site(item)) is not aq_base(site):
        raise ValueError(
            "about=%r is not in the site of the job's context (%s): pass a content item "
            "of the same site, traversed from it." % (item, path_of(site)))
    if getattr(aq_base(item), "_p_oid", None) is None and not in_its_container(item):
        raise ValueError(
            "about=%r is not stored in the database yet, nor in a container: add it to its "
            "container before queueing (it is stored when the transaction commits)." % (item,))
    job.about_path = path_of(item)
    job.about_uid = IUUID(item, None)
    note_item(job, item, about=True)
