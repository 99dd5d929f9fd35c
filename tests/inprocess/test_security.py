"""A job never runs with more rights than the user who queued it.

For each kind of user (Member, Editor by local role, by group or globally,
Site Administrator, Manager, Anonymous, a Zope root user), jobs try what the
user tries in a request, and must get the same answer: allowed where the
request is allowed, Unauthorized where it is not; the roles and permissions
seen inside the job are those of the same user in a request. Nothing from
the request (cookies, Authorization header, password) is stored in the ZODB.
"""

from AccessControl import getSecurityManager
from AccessControl import Unauthorized as ACUnauthorized
from collective.zasync.client import admin
from tests.support import sample_jobs
from collective.zasync.core.failure import Failure
from collective.zasync.interfaces import IAsyncService
from collective.zasync.interfaces import KEY
from collective.zasync.client.service import makeJob
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import ZASYNC_FUNCTIONAL_TESTING
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from plone import api
from plone.app.testing import login
from plone.app.testing import logout
from plone.app.testing import setRoles
from plone.app.testing import TEST_USER_ID
from plone.app.testing import TEST_USER_NAME
from ZODB.serialize import referencesf
from ZODB.utils import get_pickle_metadata
from zope.component import getUtility

import base64
import transaction
import unittest
import zExceptions


# Zope raises either (zExceptions' from the publisher and Dexterity, AccessControl's from guarded code)
Unauthorized = (ACUnauthorized, zExceptions.Unauthorized)


PASSWORD = "pw-Sekr1t-%s"  # each user's password; never in a job

# name -> (where the user lives, global roles, local roles on /plone/folder, groups)
USERS = {
    "member": ("site", ["Member"], [], []),
    "local-editor": ("site", ["Member"], ["Editor"], []),
    "group-editor": ("site", ["Member"], [], ["folder-editors"]),
    "editor": ("site", ["Member", "Editor"], [], []),
    "contributor": ("site", ["Member"], ["Contributor"], []),
    "group-contributor": ("site", ["Member"], [], ["folder-contributors"]),
    "siteadmin": ("site", ["Member", "Site Administrator"], [], []),
    "manager": ("site", ["Member", "Manager"], [], []),
    "root-manager": ("root", ["Manager"], [], []),
    "root-nobody": ("root", [], [], []),
}
ANONYMOUS = "anonymous"
EVERYONE = sorted(USERS) + [ANONYMOUS]


class SecurityTestCase(unittest.TestCase):
    layer = ZASYNC_FUNCTIONAL_TESTING

    def setUp(self):
        self.app = self.layer["app"]
        self.portal = self.layer["portal"]
        self.service = getUtility(IAsyncService)
        setRoles(self.portal, TEST_USER_ID, ["Manager"])
        login(self.portal, TEST_USER_NAME)
        api.group.create(groupname="folder-editors")
        api.group.create(groupname="folder-contributors")
        folder = api.content.create(self.portal, "Folder", id="folder", title="Folder")
        api.content.create(folder, "Document", id="private-doc", title="Private doc")
        api.content.create(self.portal, "Document", id="root-doc", title="Root doc")
        # private (the default workflow state) in both places
        folder.manage_setLocalRoles("folder-editors", ["Editor"])
        folder.manage_setLocalRoles("folder-contributors", ["Contributor"])
        for name, (where, roles, local_roles, groups) in USERS.items():
            if where == "site":
                api.user.create(email="%s@example.org" % name, username=name,
                                password=PASSWORD % name, roles=roles)
            else:
                self.app.acl_users._doAddUser(name, PASSWORD % name, roles, [])
            if local_roles:
                folder.manage_setLocalRoles(name, local_roles)
            for group in groups:
                api.group.add_user(groupname=group, username=name)
        folder.reindexObjectSecurity()
        transaction.commit()

    # -- who -----------------------------------------------------------------------

    def login_as(self, name):
        if name == ANONYMOUS:
            logout()
        elif USERS[name][0] == "root":
            login(self.app, name)
        else:
            login(self.portal, name)

    def in_request(self, name, func, *args):
        """What ``func(*args)`` gives ``name`` in a request: ("ok", value) or
        ("Unauthorized", None). Its writes are aborted."""
        self.login_as(name)
        try:
            try:
                outcome = ("ok", func(*args))
            except Unauthorized:
                outcome = ("Unauthorized", None)
        finally:
            transaction.abort()
            login(self.portal, TEST_USER_NAME)
        return outcome

    def in_job(self, name, func, *args):
        """What a job of ``func`` queued by ``name`` gives: same shape."""
        self.login_as(name)
        try:
            job = self.service.queueJob(func, *args)
        finally:
            login(self.portal, TEST_USER_NAME)
        result = wait_for_result(job, seconds=30)
        if isinstance(result, Failure):
            if result.check(*Unauthorized):
                return ("Unauthorized", None), job
            self.fail("job of %s failed otherwise: %s\n%s" % (name, result, result.getTraceback()))
        return ("ok", result), job


class TestSameRightsAsInARequest(SecurityTestCase):
    def check_same(self, func, container_path, *args, expect=None):
        """For every user: the job's outcome is the request's outcome."""
        outcomes = {}
        for number, name in enumerate(EVERYONE):
            with self.subTest(user=name):
                transaction.begin()
                container = self.portal.unrestrictedTraverse(container_path)
                call_args = [arg % number if isinstance(arg, str) and "%d" in arg else arg for arg in args]
                expected = self.in_request(name, func, container, *call_args)
                got, job = self.in_job(name, func, container, *call_args)
                self.assertEqual(got, expected)
                outcomes[name] = got[0]
        if expect is not None:
            self.assertEqual({name: outcome for name, outcome in outcomes.items()}, expect)
        return outcomes

    def test_create_document_in_the_portal_root(self):
        # (Plone's Editor role may edit, not add: Contributor adds)
        allowed = {"siteadmin", "manager", "root-manager"}
        self.check_same(
            sample_jobs.create_document, "/plone", "job-doc-%d",
            expect={name: "ok" if name in allowed else "Unauthorized" for name in EVERYONE},
        )
        transaction.begin()
        created = {self.portal[i].Creator() for i in self.portal.objectIds() if i.startswith("job-doc-")}
        self.assertEqual(created, allowed, "each document was made by its user, once")

    def test_create_document_in_a_folder_with_local_roles(self):
        allowed = {"contributor", "group-contributor", "siteadmin", "manager", "root-manager"}
        self.check_same(
            sample_jobs.create_document, "/plone/folder", "job-doc-%d",
            expect={name: "ok" if name in allowed else "Unauthorized" for name in EVERYONE},
        )
        transaction.begin()
        folder = self.portal["folder"]
        created = {folder[i].Creator() for i in folder.objectIds() if i.startswith("job-doc-")}
        self.assertEqual(created, allowed)

    def test_read_a_private_document(self):
        can_view = {"local-editor", "group-editor", "editor", "siteadmin", "manager",
                    "root-manager", "contributor", "group-contributor"}
        outcomes = self.check_same(sample_jobs.read_title, "/plone/folder", "private-doc")
        self.assertEqual({name for name, outcome in outcomes.items() if outcome == "ok"}, can_view)

    def test_delete_a_document(self):
        # each user tries on a fresh copy (a successful job really deletes it)
        for name in EVERYONE:
            with self.subTest(user=name):
                transaction.begin()
                folder = self.portal["folder"]
                if "victim" not in folder:
                    login(self.portal, TEST_USER_NAME)
                    api.content.create(folder, "Document", id="victim", title="Victim")
                    transaction.commit()
                expected = self.in_request(name, sample_jobs.delete_object, folder, "victim")
                got, _ = self.in_job(name, sample_jobs.delete_object, folder, "victim")
                self.assertEqual(got, expected)
                transaction.begin()
                self.assertEqual("victim" in self.portal["folder"], got[0] == "Unauthorized")

    def test_roles_and_permissions_inside_the_job(self):
        reports = {}
        for name in EVERYONE:
            for path in ("/plone", "/plone/folder", "/plone/folder/private-doc"):
                with self.subTest(user=name, context=path):
                    transaction.begin()
                    context = self.portal.unrestrictedTraverse(path)
                    expected = self.in_request(name, sample_jobs.security_report, context)
                    got, job = self.in_job(name, sample_jobs.security_report, context)
                    self.assertEqual(got, expected)
                    reports[name, path] = got[1]
                    if name == ANONYMOUS:
                        self.assertEqual(got[1]["user"], "Anonymous User")
                        self.assertIsNone(job.user_id)
                    else:
                        self.assertEqual(got[1]["id"], name)

        # the reports tell the users apart (the comparison above is not vacuous)
        def may(name, permission, path="/plone/folder"):
            return reports[name, path]["permissions"][permission]

        self.assertFalse(may("member", "Modify portal content"))
        self.assertTrue(may("local-editor", "Modify portal content"))
        self.assertTrue(may("group-editor", "Modify portal content"))
        self.assertFalse(may("local-editor", "Modify portal content", "/plone"))
        self.assertFalse(may("anonymous", "View", "/plone/folder/private-doc"))
        self.assertTrue(may("siteadmin", "Plone Site Setup: Overview", "/plone"))
        self.assertTrue(may("manager", "Manage portal", "/plone"))
        self.assertFalse(may("root-nobody", "View", "/plone/folder/private-doc"))
        self.assertTrue(may("root-manager", "Manage portal", "/plone"))
        self.assertIn("Editor", reports["local-editor", "/plone/folder"]["roles"])
        self.assertNotIn("Editor", reports["local-editor", "/plone"]["roles"])
        self.assertIn("Editor", reports["group-editor", "/plone/folder/private-doc"]["roles"])

    def test_manager_never_lends_rights_to_a_member_job(self):
        # the Manager queues nothing here: the member's job, looked at and
        # retried by a Manager, still runs as the member
        got, job = self.in_job("member", sample_jobs.create_document, self.portal, "by-member")
        self.assertEqual(got, ("Unauthorized", None))
        login(self.portal, "manager")
        admin.retry(job)
        login(self.portal, TEST_USER_NAME)
        result = wait_for_result(job, seconds=30)
        self.assertIsInstance(result, Failure)
        self.assertTrue(result.check(*Unauthorized), result)
        transaction.begin()
        self.assertNotIn("by-member", self.portal.objectIds())

    def test_rights_are_those_at_run_time_not_at_queue_time(self):
        # queued as an Editor of the folder, who loses the role before the job runs
        self.login_as("local-editor")
        job = self.service.queueJob(sample_jobs.create_document, self.portal["folder"], "too-late")
        login(self.portal, TEST_USER_NAME)
        self.portal["folder"].manage_delLocalRoles(["local-editor"])
        result = wait_for_result(job, seconds=30)
        self.assertIsInstance(result, Failure)
        self.assertTrue(result.check(*Unauthorized), result)
        transaction.begin()
        self.assertNotIn("too-late", self.portal["folder"].objectIds())

    def test_same_id_in_site_and_root_user_folders_is_never_mixed_up(self):
        # "twin" is a Manager in the Zope root and a plain Member in the site
        api.user.create(email="twin@example.org", username="twin", password=PASSWORD % "twin",
                        roles=["Member"])
        self.app.acl_users._doAddUser("twin", PASSWORD % "root-twin", ["Manager"], [])
        transaction.commit()
        login(self.portal, "twin")
        as_member = self.service.queueJob(sample_jobs.create_document, self.portal, "twin-site")
        login(self.app, "twin")
        as_root = self.service.queueJob(sample_jobs.create_document, self.portal, "twin-root")
        login(self.portal, TEST_USER_NAME)
        self.assertEqual(as_member.userfolder_path, "/plone/acl_users")
        self.assertEqual(as_root.userfolder_path, "/acl_users")
        member_result = wait_for_result(as_member, seconds=30)
        self.assertIsInstance(member_result, Failure)
        self.assertTrue(member_result.check(*Unauthorized), member_result)
        self.assertEqual(wait_for_result(as_root, seconds=30), "twin-root")
        transaction.begin()
        self.assertNotIn("twin-site", self.portal.objectIds())
        self.assertIn("twin-root", self.portal.objectIds())

    def test_callbacks_and_batch_jobs_run_as_the_queuing_user(self):
        self.login_as("member")
        job = self.service.queueJob(sample_jobs.whoami, self.portal)
        callback = job.addCallback(sample_jobs.record_callback)
        batch = self.service.queueSerialJobs(
            makeJob(sample_jobs.whoami, self.portal),
            makeJob(sample_jobs.create_document, self.portal, "batch-doc"),
        )
        login(self.portal, TEST_USER_NAME)
        self.assertEqual(wait_for_result(job, seconds=30)["user"], "member")
        self.assertEqual(callback.user_id, "member")
        result = wait_for_result(batch, seconds=30)
        self.assertEqual(batch.subjobs[0].result["user"], "member")
        self.assertIsInstance(result, Failure)
        self.assertTrue(result.check(*Unauthorized), result)


class TestNothingFromTheRequestIsStored(SecurityTestCase):
    SECRETS = {
        "cookie": "Cookie-S3cret-Value",
        "authorization": "Basic " + base64.b64encode(b"member:" + (PASSWORD % "member").encode()).decode(),
        "password": PASSWORD % "member",
        "form password": "Form-Passw0rd-Value",
        "session": "Session-S3cret-Id",
        "api key": "X-Api-Key-S3cret",
    }

    def secret_needles(self):
        needles = {}
        for label, value in self.SECRETS.items():
            needles[label] = value.encode()
            needles[label + " (base64)"] = base64.b64encode(value.encode())
        needles["auth credentials"] = b"member:" + (PASSWORD % "member").encode()
        needles["auth credentials (base64)"] = base64.b64encode(needles["auth credentials"])
        return needles

    def fill_request(self):
        request = self.layer["request"]
        request.environ["HTTP_AUTHORIZATION"] = self.SECRETS["authorization"]
        request._auth = self.SECRETS["authorization"]
        request.environ["HTTP_COOKIE"] = "__ac=%s; _ZopeId=%s" % (self.SECRETS["cookie"], self.SECRETS["session"])
        request.cookies["__ac"] = self.SECRETS["cookie"]
        request.cookies["_ZopeId"] = self.SECRETS["session"]
        request.environ["HTTP_X_API_KEY"] = self.SECRETS["api key"]
        request.form["__ac_password"] = self.SECRETS["form password"]
        request.form["password"] = self.SECRETS["password"]
        request.other["__ac_password"] = self.SECRETS["form password"]
        return request

    def raw_records(self):
        """{oid: (module.class, raw pickle)} of every record reachable from the
        queue container (queues, jobs, their callbacks, results, workers),
        as committed; not following into content or user folders."""
        storage = self.layer["zodbDB"].storage
        transaction.begin()
        start = self.portal._p_jar.root()[KEY]._p_oid
        seen, todo, records = set(), [start], {}
        while todo:
            oid = todo.pop()
            if oid in seen:
                continue
            seen.add(oid)
            data, _serial = storage.load(oid, "")
            module, klass = get_pickle_metadata(data)
            records[oid] = ("%s.%s" % (module, klass), data)
            if module.startswith(("collective.zasync", "persistent", "BTrees")):
                todo.extend(ref if isinstance(ref, bytes) else ref[0] for ref in referencesf(data))
        return records

    def assert_no_secret(self, records):
        needles = self.secret_needles()
        for oid, (klass, data) in records.items():
            for label, needle in needles.items():
                self.assertNotIn(needle, data, "%s (%s) in the record of a %s" % (label, needle, klass))
                self.assertNotIn(needle.decode().encode("utf-16-le"), data, label)

    def test_raw_pickles_of_jobs_hold_no_request_secret(self):
        # every kind of job, queued by a user authenticated with all of these
        login(self.portal, "manager")
        self.fill_request()
        folder = self.portal["folder"]
        queued = [
            self.service.queueJob(sample_jobs.add, self.portal, 1, b=2),
            self.service.queueJob(sample_jobs.set_title, folder["private-doc"], "Job title"),
            self.service.queueJob(sample_jobs.read_title, folder, "private-doc"),
            self.service.queueJob(folder.getId, folder),  # a method of a persistent object
            self.service.queueJobWithDelay(timedelta(hours=1), datetime.now(timezone.utc),
                                           sample_jobs.whoami, self.portal),
            self.service.queueSerialJobs(makeJob(sample_jobs.whoami, folder), makeJob(sample_jobs.add, folder, 2)),
            self.service.queueParallelJobs(makeJob(sample_jobs.whoami, folder), makeJob(sample_jobs.add, folder, 3)),
            self.service.queueJob(sample_jobs.whoami, self.portal, unique_key="unique-%s" % id(self)),
            self.service.queueJob(sample_jobs.fail, self.portal, "no secret here"),
        ]
        queued[0].addCallback(sample_jobs.record_callback)
        queued[-1].addCallbacks(success=sample_jobs.record_callback, failure=sample_jobs.record_failure)
        queued[0].annotations["note"] = "plain"
        recurring = self.service.queueRecurringJob(sample_jobs.noop, self.portal, 3600)
        login(self.portal, TEST_USER_NAME)
        transaction.commit()

        # as committed by the request
        records = self.raw_records()
        kinds = {klass for klass, _ in records.values()}
        self.assertIn("collective.zasync.core.job.Job", kinds)
        job_records = [oid for oid, (klass, _) in records.items() if klass == "collective.zasync.core.job.Job"]
        self.assertGreaterEqual(len(job_records), len(queued) + 4 + 3 + 1)  # + sub-jobs, callbacks, recurring
        for job in queued:
            self.assertIn(job._p_oid, records, "the scan reaches every job")
        self.assert_no_secret(records)
        # the scan would see a secret if one were there
        with self.assertRaises(AssertionError):
            self.assert_no_secret({b"x": ("probe", b"..." + self.SECRETS["cookie"].encode() + b"...")})

        # ... and after the worker ran them (results, failures, worker records)
        with self.assertLogs("collective.zasync", level="ERROR"):
            for job in queued:
                wait_for_result(job, seconds=30)
        self.service.cancelRecurringJob(recurring)
        transaction.commit()
        self.assert_no_secret(self.raw_records())

    def test_the_stored_user_is_an_id_and_a_path_only(self):
        login(self.portal, "member")
        self.fill_request()
        job = self.service.queueJob(sample_jobs.whoami, self.portal)
        login(self.portal, TEST_USER_NAME)
        transaction.commit()
        state = job.__getstate__()
        self.assertEqual((state["user_id"], state["userfolder_path"]), ("member", "/plone/acl_users"))
        for key, value in state.items():
            self.assertNotIsInstance(value, type(getSecurityManager().getUser()), key)
        self.assertEqual(wait_for_result(job, seconds=30)["user"], "member")
