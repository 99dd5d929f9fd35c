"""Module paths of earlier releases, and where what they named is now. Not for add-ons.

Two kinds of names outlive a move:

- stored ones: a pickle in the queue database names a class by its module (a Job
  as ``collective.zasync.job.Job``), plone.registry its settings' interface,
  plone.browserlayer the browser layer, plone.app.contentrules the rule action;
  they must load for as long as a database holds them;
- documented ones: the paths the documentation gives add-ons.

``install()`` (run by the package's ``__init__``, before anything is unpickled)
puts a module under each old path, in ``sys.modules``: it holds nothing and finds
each name in the new module when it is first asked for (PEP 562), so nothing is
imported before it is needed. An old path that is a package now
(``collective.zasync.worker``) finds its old names through its own ``__getattr__``.
The package's own code never imports an old path (tests/unit/test_layers.py).
"""

import importlib
import sys
import types


# old module -> (new module, the names found there; None: every name of the new module)
MOVED = {
    # stored in queue databases (tests/support/databases: written before the move)
    "collective.zasync.job": ("collective.zasync.core.job", ("Job",)),
    "collective.zasync.callables": ("collective.zasync.core.calls", ("ObjectRef",)),
    "collective.zasync.joblog": ("collective.zasync.core.joblog", ("JobLog", "ReadMark")),
    "collective.zasync.queue": ("collective.zasync.core.queue", ("Queue", "QueueRoot", "LimitMark")),
    "collective.zasync.records": ("collective.zasync.core.records", ("WorkerRecord", "Ping", "Progress")),
    "collective.zasync.recurring": ("collective.zasync.core.recurring", ("Recurrence",)),
    "collective.zasync.ratelimits": ("collective.zasync.core.ratelimits", ("RateLimits", "RateWindow")),
    "collective.zasync.gate": ("collective.zasync.core.alonegate", ("AloneGate",)),
    "collective.zasync.totals": ("collective.zasync.core.totals", ("Totals",)),
    "collective.zasync.legacy": ("collective.zasync.core.legacy", ("JobList",)),
    # stored in a site's database: the registry's interfaceName, the browser layer, rule actions
    "collective.zasync.settings": ("collective.zasync.plone.settings", ("ISettings",)),
    "collective.zasync.browser.interfaces": ("collective.zasync.interfaces", ("ICollectiveZasyncLayer",)),
    "collective.zasync.contentrule": ("collective.zasync.plone.contentrule",
                                      ("RunInBackgroundAction", "IRunInBackgroundAction")),
    # documented for add-ons (README, docs/)
    "collective.zasync.failure": ("collective.zasync.core.failure", None),
    "collective.zasync.service": ("collective.zasync.client.service", None),
    "collective.zasync.transactional": ("collective.zasync.client.transactional", None),
    "collective.zasync.actions": ("collective.zasync.client.admin", None),
    "collective.zasync.jobfunctions": ("collective.zasync.plone.jobfunctions", None),
    "collective.zasync.examples": ("collective.zasync.dev.examples", None),
}
# Names that a module of 1.0.0a1 held and that old pickles name with it (beside the above).
STORED_ALSO = {
    ("collective.zasync.job", "ObjectRef"): "collective.zasync.core.calls",
    ("collective.zasync.queue", "JobList"): "collective.zasync.core.legacy",
    ("collective.zasync.worker", "WorkerRecord"): "collective.zasync.core.records",
    ("collective.zasync.worker", "Ping"): "collective.zasync.core.records",
    ("collective.zasync.worker", "Progress"): "collective.zasync.core.records",
}


def find(old_module, name):
    """What ``old_module.name`` is now; AttributeError if it never was there."""
    new_module, names = MOVED.get(old_module, (None, ()))
    if (old_module, name) in STORED_ALSO:
        new_module = STORED_ALSO[(old_module, name)]
    elif new_module is None or (names is not None and name not in names):
        raise AttributeError("module %r has no attribute %r" % (old_module, name))
    return getattr(importlib.import_module(new_module), name)


def old_module(name):
    """A module at the old path ``name`` that finds its names where they are now."""
    module = types.ModuleType(name, "Moved: see collective.zasync.moved (now %s)." % MOVED[name][0])
    module.__getattr__ = lambda attribute: find(name, attribute)
    return module


def install():
    """Put a module under every old path (once); a package's attribute too, unless it has one."""
    for name in MOVED:
        if name in sys.modules:
            continue
        module = sys.modules[name] = old_module(name)
        parent, _, last = name.rpartition(".")
        package = importlib.import_module(parent)
        if not hasattr(package, last):  # (collective.zasync.transactional: the decorator)
            setattr(package, last, module)
