"""Through the web: ZCML-registered job functions, the content rule action, zasync.xml."""

from collective.zasync.plone.contentrule import RunInBackgroundAction
from collective.zasync.interfaces import IJobFunction
from collective.zasync.plone.jobfunctions import get_job_function
from collective.zasync.core.queue import Queue
from collective.zasync.plone.setupxml import export_zasync
from collective.zasync.plone.setupxml import import_zasync
from collective.zasync.plone.setupxml import SetupError
from collective.zasync.testing import wait_for_result
from plone import api
from plone.app.contentrules.api import assign_rule
from plone.app.contentrules.handlers import close
from plone.app.contentrules.rule import Rule
from plone.app.testing import login
from plone.app.testing import SITE_OWNER_NAME
from plone.contentrules.engine.interfaces import IRuleStorage
from Products.GenericSetup.context import TarballExportContext
from Products.GenericSetup.context import TarballImportContext
from tests.support import content_jobs
from tests.support.base import WorkerTestCase
from zope.component import getGlobalSiteManager
from zope.component import getUtilitiesFor
from zope.component import getUtility
from zope.configuration import xmlconfig
from zope.configuration.exceptions import ConfigurationError
from zope.event import notify
from zope.lifecycleevent import ObjectModifiedEvent
from zope.lifecycleevent.interfaces import IObjectModifiedEvent
from zope.schema.interfaces import IVocabularyFactory

import io
import tarfile
import transaction


ZCML = """\
<configure xmlns="http://namespaces.zope.org/zope" xmlns:zasync="http://namespaces.plone.org/zasync">
  %s
</configure>
"""

FUNCTIONS = """
  <zasync:jobFunction name="tests.mark" function="tests.support.content_jobs.mark" title="Mark the item" />
  <zasync:jobFunction name="tests.manage" function="tests.support.content_jobs.manage_only"
      title="Manage it" permission="cmf.ManagePortal" />
"""


class ThroughTheWebTestCase(WorkerTestCase):
    """Job functions registered for the test (unregistered at its end)."""

    def setUp(self):
        super().setUp()
        self.load_zcml(FUNCTIONS)
        self.folder = api.content.create(container=self.portal, type="Folder", id="f", title="F")
        self.doc = api.content.create(container=self.folder, type="Document", id="doc", title="Doc")
        api.user.create(email="e@example.org", username="editor", password="secret123", roles=("Member",))
        api.user.create(email="r@example.org", username="reader", password="secret123", roles=("Member",))
        api.user.grant_roles(username="editor", obj=self.folder, roles=["Editor"])
        transaction.commit()

    def tearDown(self):
        registry = getGlobalSiteManager()
        for name, _function in list(getUtilitiesFor(IJobFunction)):
            registry.unregisterUtility(provided=IJobFunction, name=name)
        super().tearDown()

    def load_zcml(self, text):
        xmlconfig.string(ZCML % text, context=self.layer["configurationContext"])

    def vocabulary(self, context):
        factory = getUtility(IVocabularyFactory, name="collective.zasync.JobFunctions")
        return [(term.value, term.title) for term in factory(context)]


class TestJobFunctions(ThroughTheWebTestCase):
    def test_the_vocabulary_lists_what_the_user_may_run(self):
        self.assertEqual(self.vocabulary(self.doc), [("tests.manage", "Manage it"), ("tests.mark", "Mark the item")])
        login(self.portal, "editor")
        self.assertEqual(self.vocabulary(self.doc), [("tests.mark", "Mark the item")])
        login(self.portal, "reader")
        self.assertEqual(self.vocabulary(self.doc), [])

    def test_what_a_worker_could_not_find_is_refused_at_startup(self):
        for function, message in (("tests.support.content_jobs.StepFailed", "not a type"),
                                  ("tests.support.content_jobs.no_such", "no_such")):
            with self.assertRaises(ConfigurationError) as raised:
                self.load_zcml('<zasync:jobFunction name="bad" function="%s" title="Bad" />' % function)
            self.assertIn(message, str(raised.exception))
        with self.assertRaises(LookupError) as raised:
            get_job_function("tests.unknown")
        self.assertIn("registered: tests.manage, tests.mark", str(raised.exception))


class TestContentRuleAction(ThroughTheWebTestCase):
    def setUp(self):
        super().setUp()
        storage = getUtility(IRuleStorage)
        rule = Rule()
        rule.title = "Mark modified items in the background"
        rule.event = IObjectModifiedEvent
        action = RunInBackgroundAction()
        action.function, action.queue = "tests.mark", "rules"
        rule.actions.append(action)
        storage["zasync-rule"] = rule
        assign_rule(self.portal, "zasync-rule")
        self.service.createQueue("rules")
        transaction.commit()
        close(None)  # a new request: the rule may run again

    def fire(self, user):
        login(self.portal, user)
        self.doc.setTitle("Changed by %s" % user)
        notify(ObjectModifiedEvent(self.doc))
        close(None)
        return list(self.service.getQueues()["rules"].pending())

    def test_the_rule_queues_the_job_as_the_user_who_fired_it(self):
        self.assertIn("Run Mark the item in the background", api.portal.translate(
            getUtility(IRuleStorage)["zasync-rule"].actions[0].summary))
        [job] = self.fire("editor")
        self.assertEqual((job.user_id, job.context_path, job.queue_name), ("editor", "/plone/f/doc", "rules"))
        self.assertEqual(wait_for_result(job), "marked")
        self.assertEqual(self.doc.Description(), "marked")

    def test_a_user_without_the_permission_queues_nothing(self):
        action = getUtility(IRuleStorage)["zasync-rule"].actions[0]
        action.function = "tests.manage"
        with self.assertLogs("collective.zasync", level="WARNING") as logs:
            self.assertEqual(self.fire("editor"), [])
        self.assertIn("may not run tests.manage on /plone/f/doc", logs.output[0])

    def test_the_add_form_offers_the_registered_functions(self):
        adding = self.portal.restrictedTraverse("++rule++zasync-rule/+action")
        view = adding.restrictedTraverse("collective.zasync.RunInBackground")
        html = view()
        self.assertIn("Mark the item", html)
        self.assertIn("Manage it", html)


XML = """<?xml version="1.0"?>
<zasync>
  <queue name="images" concurrency="2">
    <quota name="heavy" size="1"/>
  </queue>
  <queue name="">
    <quota name="mail" size="3"/>
  </queue>
  <recurring name="nightly" function="%s" schedule="%s" queue="images" path="f/doc"/>
</zasync>
"""


def tarball(text):
    """A GenericSetup archive holding ``zasync.xml``."""
    data = text.encode("utf-8")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        info = tarfile.TarInfo("zasync.xml")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


class TestSetupStep(ThroughTheWebTestCase):
    def import_xml(self, text):
        import_zasync(TarballImportContext(self.portal.portal_setup, tarball(text)))

    def runs_named(self, name):
        """The pending runs of the profile's recurring job ``name``."""
        return [job for queue in self.service.getQueues().values() for job in queue.pending()
                if job.recurrence is not None and job.recurrence.name == name
                and job.status == "pending-status"]  # (a cancelled one may still be in its inbox)

    def test_import_twice_creates_everything_once(self):
        steps = self.portal.portal_setup.getSortedImportSteps()
        self.assertIn("collective.zasync", steps)
        for _ in range(2):
            self.import_xml(XML % ("tests.mark", "0 3 * * *"))
            transaction.commit()
        queues = self.service.getQueues()
        self.assertEqual(queues["images"].concurrency, 2)
        self.assertEqual(dict(queues["images"].quotas), {"heavy": 1})
        self.assertEqual(dict(queues[""].quotas), {"mail": 3})
        [run] = self.runs_named("nightly")
        self.assertEqual((run.func_name, run.context_path, run.queue_name),
                         ("tests.support.content_jobs:mark", "/plone/f/doc", "images"))
        self.assertEqual(run.recurrence.schedule, "0 3 * * *")

        # changed: the old series stops, a new one replaces it; removed: it stops
        self.import_xml(XML % ("tests.manage", "3600"))
        transaction.commit()
        [new] = self.runs_named("nightly")
        self.assertTrue(run.recurrence.cancelled)
        self.assertEqual((new.func_name, new.recurrence.schedule), ("tests.support.content_jobs:manage_only", 3600.0))
        self.import_xml('<zasync><recurring name="nightly" remove="true"/></zasync>')
        self.assertEqual(self.runs_named("nightly"), [])
        self.assertTrue(new.recurrence.cancelled)

    def test_export_gives_what_import_takes(self):
        self.import_xml(XML % ("tests.mark", "0 3 * * *"))
        context = TarballExportContext(self.portal.portal_setup)
        export_zasync(context)
        with tarfile.open(fileobj=io.BytesIO(context.getArchive()), mode="r:gz") as archive:
            exported = archive.extractfile("zasync.xml").read().decode("utf-8")
        self.assertIn('<queue name="images" concurrency="2">', exported)
        self.assertIn('<quota name="heavy" size="1"/>', exported)
        # (by its registered name; in the site's time zone, named: UTC in the test site)
        self.assertIn('<recurring name="nightly" function="tests.mark" schedule="TZ=UTC 0 3 * * *" '
                      'queue="images" path="f/doc"/>', exported)
        self.import_xml(exported)  # the same: nothing changes
        self.assertEqual(len(self.runs_named("nightly")), 1)

    def test_mistakes_name_the_element(self):
        for text, message in (
            ('<zasync><queue name="q" concurrency="many"/></zasync>', '<queue name="q"> concurrency'),
            ('<zasync><queue name="" concurrency="2"/></zasync>', "default_queue_concurrency"),
            ('<zasync><queue name="q"><quota name="a" size="0"/></queue></zasync>', '<quota name="a"> size'),
            ('<zasync><recurring name="r" function="no.such.thing" schedule="60"/></zasync>', "no.such.thing"),
            ('<zasync><recurring name="r" function="tests.mark" schedule="often"/></zasync>', "often"),
            ('<zasync><recurring name="r" function="tests.mark" schedule="60" queue="nope"/></zasync>',
             "queue 'nope' does not exist"),
            ('<zasync><queues/></zasync>', "unknown element <queues>"),
        ):
            with self.assertRaises(SetupError) as raised:
                self.import_xml(text)
            self.assertIn(message, str(raised.exception))
            transaction.abort()

    def test_rate_limits(self):
        text = '<zasync><queue name="api"><rate-limit name="calls" count="10" per="60"/></queue></zasync>'
        if not hasattr(Queue, "set_rate_limit"):  # (rate limits come with another branch)
            with self.assertRaises(SetupError) as raised:
                self.import_xml(text)
            self.assertIn('<rate-limit name="calls"> in <queue name="api">: this version', str(raised.exception))
            return
        self.import_xml(text)
        self.assertIn("calls", self.service.getQueues()["api"].rate_limits)


class TestSetupStepChecks(ThroughTheWebTestCase):
    """zasync.xml runs registered job functions (with their permission) on paths inside the site;
    any other function only where an administrator wrote unrestricted="true"."""

    import_xml = TestSetupStep.import_xml

    def recurring(self, function, path="f/doc", extra=""):
        return ('<zasync><recurring name="r" function="%s" schedule="60" path="%s" %s/></zasync>'
                % (function, path, extra))

    def test_only_registered_functions_or_unrestricted(self):
        with self.assertRaisesRegex(SetupError, 'unrestricted="true"'):
            self.import_xml(self.recurring("tests.support.content_jobs.paths"))
        transaction.abort()
        self.import_xml(self.recurring("tests.support.content_jobs.paths", extra='unrestricted="true"'))
        transaction.commit()
        context = TarballExportContext(self.portal.portal_setup)
        export_zasync(context)
        with tarfile.open(fileobj=io.BytesIO(context.getArchive()), mode="r:gz") as archive:
            exported = archive.extractfile("zasync.xml").read().decode("utf-8")
        self.assertIn('function="tests.support.content_jobs.paths" schedule="60" queue="" unrestricted="true"',
                      exported)  # what the administrator wrote
        self.import_xml(self.recurring("tests.mark"))

    def test_a_registered_functions_permission(self):
        login(self.portal, "editor")  # (Editor of f: not Manage portal)
        with self.assertRaisesRegex(SetupError, "may not run tests.manage"):
            self.import_xml(self.recurring("tests.manage"))
        transaction.abort()

    def test_paths_outside_the_site_are_refused(self):
        for path in ("../acl_users", "f/../../acl_users", "Control_Panel"):
            with self.assertRaisesRegex(SetupError, "inside the site"):
                self.import_xml(self.recurring("tests.mark", path=path))
            transaction.abort()

    def test_changing_a_shared_queues_limits_needs_the_zope_roots_manager(self):
        self.import_xml('<zasync><queue name="images" concurrency="2"><quota name="heavy" size="1"/>'
                        '</queue></zasync>')  # new: any Manager
        self.import_xml('<zasync><queue name="images" concurrency="2"/></zasync>')  # unchanged
        for text in ('<zasync><queue name="images" concurrency="5"/></zasync>',
                     '<zasync><queue name="images"><quota name="heavy" size="9"/></queue></zasync>'):
            with self.assertRaisesRegex(SetupError, "Zope root"):
                self.import_xml(text)
        login(self.layer["app"], SITE_OWNER_NAME)
        self.import_xml('<zasync><queue name="images" concurrency="5"/></zasync>')
        self.assertEqual(self.service.getQueues()["images"].concurrency, 5)
