"""Registered job functions: the job functions add-ons offer through the web, registered in ZCML.
Add-ons use the directive (meta.zcml) and ``get_job_function`` (documented as
``collective.zasync.jobfunctions.get_job_function``).

::

    <configure xmlns:zasync="http://namespaces.plone.org/zasync">
      <include package="collective.zasync" file="meta.zcml" />
      <zasync:jobFunction
          name="my.addon.make_pdf"
          function="my.addon.jobs.make_pdf"
          title="Make a PDF of the item"
          permission="cmf.ModifyPortalContent"
          />
    </configure>

The function is called as ``function(context)``. The vocabulary
``collective.zasync.JobFunctions`` lists those the current user may run
(the permission, on the context, or the site); the content rule action
"Run in the background" and the GenericSetup step ``zasync.xml`` use them.
"""

from AccessControl import getSecurityManager
from Acquisition import aq_chain
from collective.zasync import interfaces
from collective.zasync.core.calls import describe_callable
from zope import schema
from zope.component import getUtilitiesFor
from zope.component import queryUtility
from zope.component.hooks import getSite
from zope.component.zcml import utility
from zope.configuration.exceptions import ConfigurationError
from zope.configuration.fields import GlobalObject
from zope.interface import implementer
from zope.interface import Interface
from zope.interface import provider
from zope.schema.interfaces import IVocabularyFactory
from zope.schema.vocabulary import SimpleTerm
from zope.schema.vocabulary import SimpleVocabulary
from zope.security.interfaces import IPermission
from zope.security.zcml import Permission


@implementer(interfaces.IJobFunction)
class JobFunction:
    """A registered job function: a named utility providing IJobFunction."""

    def __init__(self, name, function, title, permission, description=""):
        self.name = name
        self.function = function
        self.title = title
        self.permission = permission
        self.description = description

    def __repr__(self):
        return "<JobFunction %s: %s>" % (self.name, self.title)

    def allowed(self, context):
        """True if the current user has this function's permission on ``context``."""
        permission = queryUtility(IPermission, name=self.permission)
        title = permission.title if permission is not None else self.permission
        return bool(getSecurityManager().checkPermission(title, context))


def get_job_function(name):
    """The JobFunction registered as ``name``; LookupError naming the registered ones if none."""
    found = queryUtility(interfaces.IJobFunction, name=name)
    if found is None:
        names = sorted(n for n, _ in getUtilitiesFor(interfaces.IJobFunction))
        raise LookupError(
            "No job function is registered as %r (registered: %s). Register it with "
            "<zasync:jobFunction name=%r function=... title=... /> in your add-on's ZCML."
            % (name, ", ".join(names) or "none", name)
        )
    return found


def registered_name(func_name):
    """The name a function is registered under as a job function (by its "module:qualname"), or None."""
    for name, registered in sorted(getUtilitiesFor(interfaces.IJobFunction)):
        if describe_callable(registered.function)[0] == func_name:
            return name
    return None


# -- the ZCML directive ----------------------------------------------------------------------


class IJobFunctionDirective(Interface):
    """<zasync:jobFunction name function title permission description />"""

    name = schema.TextLine(title="Name", description="Unique, dotted: my.addon.make_pdf.")
    function = GlobalObject(title="Function", description="A module-level function(context).")
    title = schema.TextLine(title="Title", description="What people choose in the web.")
    permission = Permission(
        title="Permission", required=False,
        description="Needed on the context to run it; cmf.ModifyPortalContent if not given.",
    )
    description = schema.TextLine(title="Description", required=False, default="")


def job_function_directive(_context, name, function, title, permission=None, description=""):
    """Register ``function`` as the job function ``name`` (checked now, not when queued)."""
    try:
        func_name, _obj, _attr = describe_callable(function)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError("zasync:jobFunction %r: %s" % (name, exc)) from None
    if func_name is None:
        raise ConfigurationError(
            "zasync:jobFunction %r: %r is a method; register a module-level function." % (name, function)
        )
    permission = permission or "cmf.ModifyPortalContent"
    component = JobFunction(name, function, title, permission, description)
    utility(_context, provides=interfaces.IJobFunction, component=component, name=name)


# -- the vocabulary -----------------------------------------------------------------------------


def permission_context(context):
    """Where the permission is checked: ``context`` if it is in a site, else the site."""
    if context is not None and len(aq_chain(context)) > 1:
        return context
    return getSite()


@provider(IVocabularyFactory)
def job_functions_vocabulary(context):
    """Registered job functions the current user may run, by title."""
    where = permission_context(context)
    terms = [
        SimpleTerm(value=name, token=name, title=function.title)
        for name, function in sorted(getUtilitiesFor(interfaces.IJobFunction))
        if where is not None and function.allowed(where)
    ]
    return SimpleVocabulary(sorted(terms, key=lambda term: term.title))
