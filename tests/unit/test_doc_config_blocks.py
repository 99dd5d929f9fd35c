"""Every zope.conf of the README and docs/ is one Zope and a worker accept.

Each ``<product-config collective.zasync>`` block is written into a zope.conf,
parsed with Zope's own schema (as ``runwsgi`` and ``zconsole`` parse it) and
read by the worker's settings, as a worker does when it starts. Each block
marked ``<!-- zope.conf -->`` is read so too, whole: a fragment is completed
with what it lacks (an instance home, a main database), and its paths are
moved into a temporary directory.
"""

from collective.zasync.worker.settings import WorkerSettings
from tests.support import docexamples as documents
from Zope2.Startup.options import ZopeWSGIOptions

import glob
import os
import re
import tempfile
import unittest


HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BLOCK = re.compile(r"^([ \t]*)<product-config collective\.zasync>.*?</product-config>", re.S | re.M)


def documented_blocks():
    """(file name, block) of every product-config block of the README and docs/*.md, dedented."""
    names = [os.path.join(HERE, "README.md")] + sorted(glob.glob(os.path.join(HERE, "docs", "*.md")))
    for name in names:
        with open(name, encoding="utf-8") as f:
            for match in BLOCK.finditer(f.read()):
                indent = match.group(1)
                lines = match.group(0).splitlines()
                yield os.path.relpath(name, HERE), "\n".join(
                    line[len(indent):] if line.startswith(indent) else line for line in lines)


def worker_settings(block):
    """The WorkerSettings a worker reads from a zope.conf holding ``block``."""
    home = tempfile.mkdtemp()
    conf = os.path.join(home, "zope.conf")
    with open(conf, "w") as f:
        f.write("%%define INSTANCE %s\ninstancehome $INSTANCE\n%s\n"
                "<zodb_db main>\n  <mappingstorage/>\n  mount-point /\n</zodb_db>\n" % (home, block))
    options = ZopeWSGIOptions(configfile=conf)()
    return WorkerSettings.from_product_config(
        options.configroot.product_config["collective.zasync"], environ={})


def read_zope_conf(text):
    """Zope's configuration root of the zope.conf (or fragment) ``text``."""
    home = tempfile.mkdtemp()
    text = documents.relocate(text, home)
    if "instancehome" not in text:
        text = "%%define INSTANCE %s\ninstancehome $INSTANCE\n%s" % (home, text)
    if "<zodb_db main>" not in text:
        text += "\n<zodb_db main>\n  <mappingstorage/>\n  mount-point /\n</zodb_db>\n"
    conf = os.path.join(home, "zope.conf")
    with open(conf, "w") as f:
        f.write(text)
    return ZopeWSGIOptions(configfile=conf)().configroot


class TestDocumentedZopeConf(unittest.TestCase):

    def test_every_zope_conf_block_is_read_by_zope_and_the_worker(self):
        blocks = [block for document in documents.DOCUMENTS
                  for block in documents.blocks(document, "zope.conf")]
        self.assertGreaterEqual(len(blocks), 5)
        for block in blocks:
            with self.subTest(block=block):
                root = read_zope_conf(block.text)
                config = (root.product_config or {}).get("collective.zasync")
                if config is not None:
                    WorkerSettings.from_product_config(config, environ={})


class TestDocumentedWorkerSettings(unittest.TestCase):

    def test_every_block_is_accepted(self):
        blocks = list(documented_blocks())
        self.assertGreaterEqual(len(blocks), 3)  # deploy.md's and storages.md's at least
        for name, block in blocks:
            with self.subTest(name=name, block=block[:60]):
                worker_settings(block)

    def test_the_documented_defaults_are_the_defaults(self):
        reference = [block for name, block in documented_blocks() if name == "docs/deploy.md"]
        self.assertEqual(worker_settings(reference[0]), WorkerSettings())

    def test_a_comment_after_a_value_is_refused_saying_why(self):
        with self.assertRaisesRegex(ValueError, "threads is '2  # jobs'.*line of its own"):
            WorkerSettings.from_product_config({"threads": "2  # jobs"}, environ={})
