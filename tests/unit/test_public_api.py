"""Every name the README and docs/ give add-ons imports from the path they give it.

The list below is the public API; a name documented anywhere else (a ``from ... import``
line, or a dotted name in backquotes) must import too, so that the documentation never
names a path that moved. The old paths that stored objects name (moved.py) keep loading
what they named.
"""

from pathlib import Path
from ZODB.broken import find_global

import collective.zasync
import importlib
import re
import unittest


ROOT = Path(__file__).parent.parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

PUBLIC = {
    "collective.zasync": [
        "task", "transactional", "IAsyncService", "get_service", "makeJob", "get_job", "get_progress",
        "set_progress", "check_cancelled", "JobCancelled", "checkpoint", "get_checkpoint", "Failure",
        "api", "interfaces"],
    "collective.zasync.api": [
        "get_service", "makeJob", "get_job", "get_progress", "Failure", "set_progress",
        "check_cancelled", "JobCancelled", "checkpoint", "get_checkpoint"],
    "collective.zasync.interfaces": [
        "IAsyncService", "IJob", "IQueue", "IWorker", "IJobEvent", "IJobSuccess", "IJobFailure",
        "IJobStarted", "IJobRetrying", "IQueueDatabase", "IJobFunction", "ICollectiveZasyncLayer",
        "NEW", "PENDING", "ASSIGNED", "ACTIVE", "CALLBACKS", "COMPLETED", "KEY"],
    "collective.zasync.testing": [
        "ZASYNC_FIXTURE", "ZASYNC_INTEGRATION_TESTING", "ZASYNC_FUNCTIONAL_TESTING",
        "ZASYNC_ACCEPTANCE_TESTING", "WorkerFunctionalTesting", "wait_for_result", "wait_until"],
    # plone.app.async's path of makeJob
    "collective.zasync.service": ["makeJob", "AsyncService"],
    "collective.zasync.transactional": ["transactional"],
    "collective.zasync.failure": ["Failure"],
    "collective.zasync.actions": ["retry", "cancel", "remove", "ActionError", "Cancelled"],
    "collective.zasync.jobfunctions": ["get_job_function"],
    "collective.zasync.examples": ["publish_later", "publish_all", "count_content", "fail_once",
                                   "tag_all", "summarize"],
}
# Dotted names in the documentation that are not Python: registry records, a vocabulary,
# a rule element, the translations' template.
NOT_PYTHON = {"retention_days", "max_retries", "default_queue_concurrency", "health_max_wait",
              "JobFunctions", "RunInBackground", "pot"}
# What old queue databases name (tests/support/databases), and where it is now.
STORED = {
    "collective.zasync.job.Job": "collective.zasync.core.job.Job",
    "collective.zasync.job.ObjectRef": "collective.zasync.core.calls.ObjectRef",
    "collective.zasync.callables.ObjectRef": "collective.zasync.core.calls.ObjectRef",
    "collective.zasync.failure.Failure": "collective.zasync.core.failure.Failure",
    "collective.zasync.joblog.JobLog": "collective.zasync.core.joblog.JobLog",
    "collective.zasync.joblog.ReadMark": "collective.zasync.core.joblog.ReadMark",
    "collective.zasync.queue.Queue": "collective.zasync.core.queue.Queue",
    "collective.zasync.queue.QueueRoot": "collective.zasync.core.queue.QueueRoot",
    "collective.zasync.queue.LimitMark": "collective.zasync.core.queue.LimitMark",
    "collective.zasync.queue.JobList": "collective.zasync.core.legacy.JobList",
    "collective.zasync.records.WorkerRecord": "collective.zasync.core.records.WorkerRecord",
    "collective.zasync.worker.WorkerRecord": "collective.zasync.core.records.WorkerRecord",
    "collective.zasync.worker.Ping": "collective.zasync.core.records.Ping",
    "collective.zasync.worker.Progress": "collective.zasync.core.records.Progress",
    "collective.zasync.recurring.Recurrence": "collective.zasync.core.recurring.Recurrence",
    "collective.zasync.ratelimits.RateLimits": "collective.zasync.core.ratelimits.RateLimits",
    "collective.zasync.ratelimits.RateWindow": "collective.zasync.core.ratelimits.RateWindow",
    "collective.zasync.gate.AloneGate": "collective.zasync.core.alonegate.AloneGate",
    "collective.zasync.totals.Totals": "collective.zasync.core.totals.Totals",
    "collective.zasync.settings.ISettings": "collective.zasync.plone.settings.ISettings",
    "collective.zasync.browser.interfaces.ICollectiveZasyncLayer":
        "collective.zasync.interfaces.ICollectiveZasyncLayer",
    "collective.zasync.contentrule.RunInBackgroundAction":
        "collective.zasync.plone.contentrule.RunInBackgroundAction",
}


def resolve(dotted):
    """The object at ``dotted``: its longest importable module, then attributes (as ZCML finds it)."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        for name in parts[end:]:
            found = getattr(found, name)
        return found
    raise ImportError(dotted)


def documented():
    """(document, dotted name) of every Python name the documentation gives."""
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for module, names in re.findall(r"from (collective\.zasync[\w.]*) import ([\w, ]+)", text):
            for name in names.split(","):
                yield document.name, "%s.%s" % (module, name.strip())
        for dotted in re.findall(r"`(collective\.zasync(?:\.\w+)+)", text):
            if dotted.rsplit(".", 1)[1] not in NOT_PYTHON:
                yield document.name, dotted


class TestPublicAPI(unittest.TestCase):
    def test_every_public_name_imports_from_its_documented_path(self):
        missing = []
        for module, names in PUBLIC.items():
            imported = importlib.import_module(module)
            missing.extend("%s.%s" % (module, name) for name in names if not hasattr(imported, name))
        self.assertEqual(missing, [])

    def test_the_package_exports_its_public_names(self):
        self.assertEqual(sorted(collective.zasync.__all__), sorted(PUBLIC["collective.zasync"]))
        self.assertIs(collective.zasync.transactional,
                      resolve("collective.zasync.client.transactional.transactional"))

    def test_every_name_the_documentation_gives_imports(self):
        broken = []
        for document, dotted in documented():
            try:
                resolve(dotted)
            except (ImportError, AttributeError) as error:
                broken.append("%s: %s (%s)" % (document, dotted, error))
        self.assertEqual(broken, [])
        self.assertGreater(len(list(documented())), 50)

    def test_old_paths_of_stored_objects_load_what_they_named(self):
        """As ZODB finds a pickle's class (ZODB.broken.find_global: Broken if it cannot)."""
        for old, new in STORED.items():
            module, _, name = old.rpartition(".")
            self.assertIs(find_global(module, name), resolve(new), old)

    def test_an_old_path_finds_no_name_it_never_had(self):
        with self.assertRaises(AttributeError):
            resolve("collective.zasync.job.utcnow")
        with self.assertRaises(AttributeError):
            resolve("collective.zasync.worker.Dispatcher")
