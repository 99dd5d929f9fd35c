"""A job's call as it is stored: its function (by dotted name, or a persistent object and the
name of its method) and its arguments (persistent objects by reference). Not for add-ons.

The words: a *job function* is whatever a job calls; a *registered job function* is one
offered through the web (plone/jobfunctions.py); a *task* is a job function decorated with
``@task`` (client/task.py). Everything that could only go wrong later, in the worker, is
refused when the call is stored, in the request, with an error that says what to do
instead; the worker loads the call back (worker/loading.py).
"""

from Acquisition import aq_base
from persistent import Persistent

import importlib
import inspect
import io
import pickle
import sys


def resolve_dotted(name):
    """Import 'package.module:qualname' and return the object it names."""
    module_name, _, qualname = name.partition(":")
    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


class ObjectRef:
    """A persistent object passed to a job, kept by UID (when it has one), path and oid.

    The worker traverses its path, in its own connection, so the object
    comes back acquisition-wrapped, as it would be in a request; if that
    finds another object or none, it looks the UID up (so a moved or
    renamed object is found where it is now).
    """

    uid = None  # references stored before UIDs were kept have none

    def __init__(self, path, oid=None, uid=None):
        self.path = path
        self.oid = oid
        self.uid = uid

    def __repr__(self):
        return "<ObjectRef %s>" % self.path


def describe_callable(func):
    """Return (func_name, func_obj, func_attr) for ``func``, or raise.

    A module-level function is kept by its dotted name; a method of a
    persistent object by that object (by path when it has one) and the
    method's name.
    """
    func = getattr(func, "__zasync_function__", func)  # a @collective.zasync.task: its function
    if inspect.ismethod(func) and not isinstance(func.__self__, type):
        owner = func.__self__
        if not isinstance(aq_base(owner), Persistent):
            raise TypeError(
                "Cannot queue %r: it is a method of a %s, which is not a "
                "persistent object. Queue a module-level function, or a "
                "method of a persistent object (content, the site, a tool)."
                % (func, type(owner).__name__)
            )
        return None, object_reference(owner, "the object of method %r" % func.__name__), func.__name__
    if not (inspect.isfunction(func) or inspect.isbuiltin(func) or inspect.ismethod(func)):
        raise TypeError(
            "Cannot queue %r: a job calls a module-level function or a method "
            "of a persistent object, not a %s." % (func, type(func).__name__)
        )
    name = getattr(func, "__name__", "")
    qualname = getattr(func, "__qualname__", name)
    module = getattr(func, "__module__", None) or "builtins"
    dotted = "%s:%s" % (module, qualname)
    # What imports back to the very same object is safe to queue, whatever it
    # is made of (a decorator's functools.wraps wrapper has a __closure__).
    if imports_back(dotted, func):
        return dotted, None, None
    if name == "<lambda>":
        raise ValueError(
            "Cannot queue a lambda: the worker could not find it again. "
            "Define a module-level function and queue that."
        )
    if "<locals>" in qualname:
        raise ValueError(
            "Cannot queue %s: it is defined inside another function. "
            "Move it to module level." % qualname
        )
    if getattr(func, "__closure__", None):
        raise ValueError(
            "Cannot queue %s: it is a closure over local variables. Pass "
            "those as arguments to a module-level function instead." % qualname
        )
    if module in ("builtins", "__main__") or module not in sys.modules:
        # exec'd code, a doctest, a script run as __main__: no module a worker can import
        raise ValueError(
            "Cannot queue %s: it is not defined in an importable module (it comes from %s), "
            "so a worker cannot find it. Define it in a module of your add-on and import it "
            "from there." % (qualname, "a script run directly" if module == "__main__" else
                             "code run with exec, e.g. a doctest")
        )
    raise ValueError(
        "Cannot queue %s: %s does not import back to it. Queue a "
        "function that its module defines at top level." % (qualname, dotted)
    )


def imports_back(dotted, func):
    """True if 'module:qualname' names ``func`` itself (or the function of a classmethod)."""
    try:
        found = resolve_dotted(dotted)
    except (ImportError, AttributeError):
        return False
    return found is func or getattr(found, "__func__", found) is getattr(func, "__func__", func)


def object_reference(obj, what="an argument"):
    """An ObjectRef (by path) for a persistent object, or the object itself."""
    base = aq_base(obj)
    if getattr(obj, "getPhysicalPath", None) is not None and len(getattr(obj, "aq_chain", ())) > 1:
        return ObjectRef(path_of(obj), getattr(base, "_p_oid", None), uid_of(obj))
    if getattr(base, "_p_jar", None) is None:
        raise ValueError(
            "Cannot queue %s (%r): it is a persistent object that is not in "
            "the database yet. Add it to a container (or commit) first." % (what, obj)
        )
    return base


def path_of(obj):
    """The physical path of ``obj``, as a string."""
    return "/".join(obj.getPhysicalPath())


def uid_of(obj):
    """The UID of ``obj`` (content, the site), or None for objects without one."""
    from plone.uuid.interfaces import IUUID

    return IUUID(obj, None)


def prepare_arguments(args, kwargs):
    """Check and convert job arguments; persistent objects become references."""
    for key in kwargs:
        if not isinstance(key, str):
            raise TypeError("Keyword argument names must be strings, not %r." % (key,))
    args = tuple(_convert(value, "argument %d" % i) for i, value in enumerate(args))
    kwargs = {key: _convert(value, "argument %r" % key) for key, value in kwargs.items()}
    for label, value in list(enumerate(args)) + list(kwargs.items()):
        check_picklable(value, "argument %r" % (label,))
    return args, kwargs


def _convert(value, label):
    if isinstance(aq_base(value), Persistent):
        return object_reference(value, label)
    return value


class _ZODBLikePickler(pickle.Pickler):
    # Persistent objects are stored by reference in the ZODB, so only
    # unsaved ones are a problem; everything else must pickle as usual.
    def persistent_id(self, obj):
        if isinstance(obj, Persistent):
            if obj._p_jar is None:
                raise ValueError(
                    "%r is a persistent object that is not in the database yet" % (obj,)
                )
            return obj._p_oid
        return None


def check_picklable(value, label):
    """Raise TypeError if ``value`` cannot be stored in the ZODB."""
    try:
        _ZODBLikePickler(io.BytesIO(), protocol=3).dump(value)
    except ValueError as exc:
        raise ValueError("Cannot queue %s: %s." % (label, exc)) from None
    except Exception as exc:
        raise TypeError(
            "Cannot queue %s (%r): it cannot be pickled (%s). Pass plain data "
            "(str, numbers, lists, dicts) or persistent objects." % (label, value, exc)
        ) from None
