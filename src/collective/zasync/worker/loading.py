"""Loading a job's call back in the worker: its function, context and arguments. Not for add-ons.

Persistent objects were stored by reference (core/calls.py): the worker traverses
their path in its own connection, so they come back acquisition-wrapped, as in a
request, and follows a moved or renamed one by its UID.
"""

from Acquisition import aq_base
from collective.zasync.core.calls import ObjectRef
from collective.zasync.core.calls import resolve_dotted
from collective.zasync.core.calls import uid_of


class ContextGone(LookupError):
    """The object a job was queued for is not there any more."""


def find_by_uid(app, uid):
    """The object with ``uid`` in the job's site (by its catalog), or None."""
    from plone.app.uuid.utils import uuidToPhysicalPath

    path = uuidToPhysicalPath(uid) if uid else None
    obj = app.unrestrictedTraverse(path.lstrip("/"), None) if path else None
    if obj is None or uid_of(obj) != uid:  # the catalog lags behind: trust the path
        return None
    return obj


def load_object(app, ref):
    """Find an ObjectRef in the worker, at its path or by its UID; raise ContextGone if missing."""
    if not isinstance(ref, ObjectRef):
        return ref
    obj = app.unrestrictedTraverse(ref.path.lstrip("/"), None)
    if obj is None or not _still_at(obj, ref):
        # Moved or renamed since it was queued (or replaced): it runs where it is now.
        # (Asking the catalog costs a query: only when the path does not do.)
        obj = find_by_uid(app, ref.uid) or obj
    if obj is None:
        raise ContextGone("The object at %s no longer exists." % ref.path)
    if ref.oid is not None and getattr(aq_base(obj), "_p_oid", ref.oid) != ref.oid:
        raise ContextGone(
            "The object at %s was replaced by another one since the job was queued." % ref.path
        )
    return obj


def _still_at(obj, ref):
    """True if ``obj``, found at ``ref.path``, is the object queued (not acquired, not replaced)."""
    path = getattr(aq_base(obj), "getPhysicalPath", None) and "/".join(obj.getPhysicalPath())
    return ref.oid is not None and getattr(aq_base(obj), "_p_oid", None) == ref.oid and path == ref.path


def load_callable(app, job):
    """The callable of ``job``, ready to call in the worker."""
    if job.func_name:
        try:
            return resolve_dotted(job.func_name)
        except (ImportError, AttributeError) as exc:
            raise ImportError(
                "Cannot import the job function %s (was its module renamed or "
                "removed since the job was queued?): %s" % (job.func_name.replace(":", "."), exc)
            ) from exc
    owner = load_object(app, job.func_obj)
    return getattr(owner, job.func_attr)


def load_arguments(app, job):
    """The job's args and kwargs with ObjectRefs traversed back to objects."""
    args = tuple(load_object(app, value) for value in job.args)
    kwargs = {key: load_object(app, value) for key, value in job.kwargs.items()}
    return args, kwargs
