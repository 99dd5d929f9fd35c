"""The GenericSetup step ``zasync.xml``: named queues, quotas, rate limits and recurring jobs.

::

    <zasync>
      <queue name="images" concurrency="2">
        <quota name="heavy" size="1"/>
        <rate-limit name="thumbnails" count="10" per="60"/>
      </queue>
      <recurring name="nightly-report" function="my.addon.report"
                 schedule="0 3 * * *" queue="images" path="reports"/>
      <recurring name="weekly" function="my.addon.digest" schedule="TZ=Europe/Brussels @weekly"/>
      <recurring name="old-report" remove="true"/>
    </zasync>

Importing it again changes nothing: queues and quotas are set to the
values given, a recurring job is identified by its ``name`` (per site) and
only replaced when its function, schedule, queue or path changed. A cron
schedule is read in the site's time zone unless it names one (core/recurring.py).

What it may run: a job function registered with ``<zasync:jobFunction>``
(by its name; the importing user needs its permission on the job's item),
or any importable function where the file says ``unrestricted="true"``
(an administrator's word that it may run unchecked). ``path`` is an item
inside the site (no ``..``, nothing acquired from outside). Queues are
shared by the sites of the queue database: creating one, or a quota, is any
Manager's; changing the limits of an existing one needs the Zope root's
Manager (client/permissions.py's may_change_database). Not for add-ons (the file is).
"""

from collective.zasync.client.lookup import get_service
from collective.zasync.client.permissions import may_change_database
from collective.zasync.client.service import site_timezone
from collective.zasync.core.calls import path_of
from collective.zasync.core.calls import resolve_dotted
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.recurring import check_schedule
from collective.zasync.core.recurring import schedule_text
from collective.zasync.core.trees import made
from collective.zasync.plone.jobfunctions import get_job_function
from collective.zasync.plone.jobfunctions import registered_name
from xml.dom import minidom
from xml.etree import ElementTree

import logging


log = logging.getLogger("collective.zasync")

FILENAME = "zasync.xml"


class SetupError(ValueError):
    """zasync.xml says something that cannot be done; the message names the element."""


def describe(element):
    """'<quota name="heavy">', to name an element in a message."""
    attrs = " ".join('%s="%s"' % item for item in element.attrib.items() if item[0] == "name")
    return "<%s%s>" % (element.tag, " " + attrs if attrs else "")


def whole_number(element, attribute, minimum=0):
    """The attribute as an int of at least ``minimum``; SetupError naming the element if not."""
    text = element.get(attribute)
    try:
        value = int(text)
    except (TypeError, ValueError):
        value = None
    if value is None or value < minimum:
        raise SetupError("%s: %s %s must be a whole number of at least %d, not %r."
                         % (FILENAME, describe(element), attribute, minimum, text))
    return value


# -- import ---------------------------------------------------------------------------------------


def import_zasync(context):
    """Import step: apply the profile's zasync.xml, if it has one."""
    data = context.readDataFile(FILENAME)
    if data is None:
        return
    site = context.getSite()
    try:
        tree = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise SetupError("%s is not well-formed XML: %s" % (FILENAME, exc)) from None
    apply_xml(site, tree)
    context.getLogger("collective.zasync").info("Queues and recurring jobs imported.")


def apply_xml(site, tree):
    """Create or change what ``tree`` (the <zasync> element) describes."""
    root = get_queue_root(site._p_jar)
    for element in tree:
        if element.tag == "queue":
            import_queue(root, element, site)
        elif element.tag == "recurring":
            import_recurring(site, root, element)
        elif isinstance(element.tag, str):
            raise SetupError("%s: unknown element %s (expected <queue> or <recurring>)."
                             % (FILENAME, describe(element)))


def check_change(site, element, old, new):
    """SetupError unless the current user may change ``old`` to ``new`` in a queue every site shares."""
    if old is not None and old != new and not may_change_database(site):
        raise SetupError(
            "%s: %s changes a queue that every site of the queue database shares (%r to %r): only a "
            "Manager of the Zope root changes it (log in as one to import this)."
            % (FILENAME, describe(element), old, new))


def import_queue(root, element, site):
    """<queue name concurrency>: the queue, its quotas and its rate limits."""
    name = element.get("name", "")
    concurrency = None
    if element.get("concurrency") not in (None, ""):
        if name == "":
            raise SetupError(
                '%s: <queue name=""> concurrency: the default queue\'s is a site setting; set the '
                "record collective.zasync.default_queue_concurrency in registry.xml." % FILENAME)
        concurrency = whole_number(element, "concurrency", minimum=1)
    existed = name in root.queues
    queue = root.create_queue(name)
    if concurrency is not None and queue.concurrency != concurrency:  # unchanged: not written
        if existed:
            check_change(site, element, queue.concurrency, concurrency)
        queue.concurrency = concurrency
    for child in element:
        if child.tag == "quota":
            quota = child.get("name")
            if not quota:
                raise SetupError("%s: a <quota> of %s has no name." % (FILENAME, describe(element)))
            size = whole_number(child, "size", minimum=1)
            if queue.quotas.get(quota) != size:
                check_change(site, child, queue.quotas.get(quota), size)
                queue.quotas[quota] = size
        elif child.tag == "rate-limit":
            import_rate_limit(queue, element, child, site)
        elif isinstance(child.tag, str):
            raise SetupError("%s: unknown element %s in %s (expected <quota> or <rate-limit>)."
                             % (FILENAME, describe(child), describe(element)))


def import_rate_limit(queue, parent, element, site):
    """<rate-limit name count per>: at most ``count`` jobs per ``per`` seconds."""
    set_rate_limit = getattr(queue, "set_rate_limit", None)
    if set_rate_limit is None:
        raise SetupError("%s: %s in %s: this version of collective.zasync has no rate limits "
                         "(Queue.set_rate_limit); remove the element." % (FILENAME, describe(element), describe(parent)))
    name = element.get("name")
    if not name:
        raise SetupError("%s: a <rate-limit> of %s has no name." % (FILENAME, describe(parent)))
    try:
        per = float(element.get("per"))
    except (TypeError, ValueError):
        raise SetupError("%s: %s per must be a number of seconds, not %r."
                         % (FILENAME, describe(element), element.get("per"))) from None
    count = whole_number(element, "count", minimum=1)
    old = next((limit for limit_name, limit in rate_limits(queue) if limit_name == name), None)
    if old is not None:
        old = (old[0], old[1].total_seconds() if hasattr(old[1], "total_seconds") else old[1])
        check_change(site, element, old, (count, per))
    set_rate_limit(name, count, per)


def is_true(element, attribute):
    return element.get(attribute, "").lower() in ("true", "1", "yes")


def job_function(element, context):
    """The function named by ``function``: a registered job function the current user may run on
    ``context``, or, with ``unrestricted="true"``, any importable dotted name."""
    name = element.get("function")
    if not name:
        raise SetupError("%s: %s has no function." % (FILENAME, describe(element)))
    try:
        registered = get_job_function(name)
    except LookupError:
        registered = None
    if registered is not None:
        if not registered.allowed(context):
            raise SetupError("%s: %s: you may not run %s on %s (it needs the permission %s there)."
                             % (FILENAME, describe(element), name, path_of(context), registered.permission))
        return registered.function
    if not is_true(element, "unrestricted"):
        raise SetupError(
            '%s: %s function %r is not a registered job function: register it with <zasync:jobFunction> '
            '(then name it by its name), or, for a function trusted to run unchecked, add '
            'unrestricted="true".' % (FILENAME, describe(element), name))
    dotted = name if ":" in name else ":".join(name.rsplit(".", 1))
    try:
        return resolve_dotted(dotted)
    except (ImportError, AttributeError, ValueError):
        raise SetupError("%s: %s function %r is neither a registered job function nor an "
                         "importable dotted name." % (FILENAME, describe(element), name)) from None


def item_of(site, element):
    """The item at ``path`` in ``site`` (the site without one); SetupError for anything outside it."""
    path = element.get("path", "").strip("/")
    if not path:
        return site
    found = site.unrestrictedTraverse(path, None) if ".." not in path.split("/") else None
    # An object acquired from above the site has a path outside it, one acquired within it another path.
    if found is None or path_of(found) != "%s/%s" % (path_of(site), path):
        raise SetupError("%s: %s path %r is not an item inside the site (paths are relative to the "
                         "site, without ..)." % (FILENAME, describe(element), element.get("path")))
    return found


def registered_recurring(root):
    """The recurring jobs that profiles created: 'site path name' -> Recurrence."""
    return made(root, "profile_recurring")


def import_recurring(site, root, element):
    """<recurring name function schedule queue path remove>: one recurring job, by its name."""
    name = element.get("name")
    if not name:
        raise SetupError("%s: a <recurring> element has no name (it identifies the job on re-import)."
                         % FILENAME)
    known = registered_recurring(root)
    key = "%s %s" % (path_of(site), name)
    existing = known.get(key)
    service = get_service()
    if is_true(element, "remove"):
        if existing is not None:
            service.cancelRecurringJob(existing)
            del known[key]
        return
    context = item_of(site, element)
    function = job_function(element, context)
    schedule = element.get("schedule", "")
    try:
        checked = check_schedule(
            float(schedule) if schedule.replace(".", "", 1).isdigit() else schedule, site_timezone(site))
    except (TypeError, ValueError) as exc:
        raise SetupError("%s: %s schedule: %s" % (FILENAME, describe(element), exc)) from None
    schedule = checked[0] if isinstance(checked[0], float) else schedule_text(*checked)  # (its zone named)
    queue = element.get("queue", "")
    wanted = ("%s:%s" % (function.__module__, function.__qualname__), schedule_text(*checked), queue,
              path_of(context))
    if existing is not None and not existing.cancelled and same_recurring(existing) == wanted:
        return  # re-imported unchanged
    if existing is not None and not existing.cancelled:
        service.cancelRecurringJob(existing)
    if queue not in root.queues:
        raise SetupError("%s: %s queue %r does not exist: add a <queue name=%r> before it."
                         % (FILENAME, describe(element), queue, queue))
    job = service.queueRecurringJob(function, context, schedule, queue=queue)
    job.recurrence.name = name
    known[key] = job.recurrence
    log.info("zasync.xml: recurring job %r (%s, %s).", name, job.describe(), job.recurrence.describe())


def same_recurring(recurrence):
    """(function, schedule with its time zone, queue, context path) of a recurrence's current run."""
    job = recurrence.current
    if job is None:
        return None
    return (job.func_name, schedule_text(recurrence.schedule, recurrence.timezone), job.queue_name,
            job.context_path)


# -- export ---------------------------------------------------------------------------------------


def export_zasync(context):
    """Export step: the queues, quotas, rate limits and this site's recurring jobs as zasync.xml."""
    site = context.getSite()
    context.writeDataFile(FILENAME, export_xml(site), "text/xml")


def export_xml(site):
    """zasync.xml for ``site`` (a string)."""
    root = get_queue_root(site._p_jar, create=False)
    tree = ElementTree.Element("zasync")
    if root is None:
        return pretty(tree)
    for name, queue in root.queues.items():
        element = ElementTree.SubElement(tree, "queue", name=name)
        if name and queue.concurrency is not None:
            element.set("concurrency", str(queue.concurrency))
        for quota, size in queue.quotas.items():
            ElementTree.SubElement(element, "quota", name=quota, size=str(size))
        for limit, (count, per) in rate_limits(queue):
            ElementTree.SubElement(element, "rate-limit", name=limit, count=str(count), per="%g" % per)
    prefix = path_of(site) + " "
    for key, recurrence in (root.profile_recurring or {}).items():
        if not key.startswith(prefix) or recurrence.cancelled or recurrence.current is None:
            continue
        job = recurrence.current
        function = registered_name(job.func_name)
        attrs = dict(name=key[len(prefix):], function=function or job.func_name.replace(":", "."),
                     schedule=schedule_text(recurrence.schedule, recurrence.timezone),
                     queue=job.queue_name)
        if function is None:
            attrs["unrestricted"] = "true"
        path = job.context_path[len(path_of(site)):].strip("/")
        if path:
            attrs["path"] = path
        ElementTree.SubElement(tree, "recurring", **attrs)
    return pretty(tree)


def rate_limits(queue):
    """(name, (count, per)) pairs of a queue's rate limits, if this version has them."""
    limits = getattr(queue, "rate_limits", None) or {}
    for name, limit in limits.items():
        if isinstance(limit, tuple) and len(limit) == 2:
            yield name, limit
        elif hasattr(limit, "count") and hasattr(limit, "per"):
            yield name, (limit.count, limit.per)


def pretty(tree):
    return minidom.parseString(ElementTree.tostring(tree)).toprettyxml(indent="  ", encoding="utf-8")
