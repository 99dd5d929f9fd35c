"""The README and docs/ hold together: fences, markers, links, and the blocks no layer needs.

Each fenced block carries the markers written above it (tests/support/docexamples.py): a ```python
block is an example (run by tests/inprocess/test_doc_examples.py), a module's code, or says why it
is not run; configuration blocks say what reads them and are checked here (zeo.conf, the
systemd unit, JSON, YAML) or in tests/unit/test_doc_config_blocks.py (zope.conf),
tests/inprocess/test_doc_examples.py (ZCML, zasync.xml) and tests/cluster/test_doc_buildout.py (buildout).
"""

from collective.zasync.defaults import STOP_MARGIN
from collective.zasync.worker.settings import WorkerSettings
from tests.support import docexamples as documents
from tests.unit.test_doc_config_blocks import read_zope_conf

import ast
import configparser
import json
import os
import re
import tempfile
import unittest
import yaml


README_LIMIT = 16 * 1024
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")


def prose(document):
    """The text of ``document`` without its fenced blocks and inline code."""
    text = (documents.ROOT / document).read_text()
    text = re.sub(r"^(\s*)(```+|~~~+).*?^\1\2\s*$", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading):
    """GitHub's anchor of a heading (MyST's, with myst_heading_anchors, is the same)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(document):
    """The anchors of the headings of ``document`` (outside fenced blocks)."""
    return {slug(match.group(2)) for line in prose_lines(document)
            for match in [HEADING.match(line)] if match}


def prose_lines(document):
    text = (documents.ROOT / document).read_text()
    text = re.sub(r"^(\s*)(```+|~~~+).*?^\1\2\s*$", "", text, flags=re.S | re.M)
    return text.split("\n")


def all_blocks(kind=None):
    return [block for document in documents.DOCUMENTS for block in documents.blocks(document, kind)]


def zeo_options(text, folders=()):
    """ZEO's own reading of a zeo.conf (runzeo's options); ``folders`` made first."""
    from ZEO.runzeo import ZEOOptions

    folder = tempfile.mkdtemp()
    for name in folders:
        os.makedirs(os.path.join(folder, name))
    path = os.path.join(folder, "zeo.conf")
    with open(path, "w") as f:
        f.write(documents.relocate(text, folder))
    options = ZEOOptions()
    options.realize(["-C", path])
    return options


class TestDocumentShape(unittest.TestCase):

    def test_the_readme_is_two_screens(self):
        size = len((documents.ROOT / "README.md").read_bytes())
        self.assertLessEqual(size, README_LIMIT, "README.md is %d bytes" % size)

    def test_every_fence_is_closed(self):
        for document in documents.DOCUMENTS + ["benchmarks/README.md"]:
            with self.subTest(document=document):
                documents.blocks(document)  # raises for a fence never closed

    def test_every_python_block_runs_or_says_why(self):
        for block in all_blocks():
            if not block.lang.startswith("python"):
                continue
            with self.subTest(block=block):
                # deploy: run by the production-path test (scripts/dist_deploy.py)
                kinds = [name for name in ("example", "module", "not run", "deploy")
                         if block.marker(name) is not None]
                self.assertEqual(len(kinds), 1, "%r needs one marker: example, module, deploy or "
                                 "not run" % block)
                if block.marker("not run") is not None:
                    self.assertGreater(len(block.marker("not run")), 10, "say why it is not run")
                if block.lang == "python":  # python2: another package's code, for comparison
                    compile(block.text, repr(block), "exec")

    def test_module_blocks_are_the_module_code(self):
        blocks = all_blocks("module")
        self.assertGreaterEqual(len(blocks), 5)
        for block in blocks:
            code = (documents.ROOT / block.marker("module")).read_text()
            module = ast.parse(code)
            shown = {node.name: ast.get_source_segment(block.text, node)
                     for node in ast.parse(block.text).body if hasattr(node, "name")}
            defined = {node.name: ast.get_source_segment(code, node)
                       for node in module.body if hasattr(node, "name")}
            for name, source in shown.items():
                with self.subTest(block=block, name=name):
                    self.assertEqual(source, defined.get(name), "%r shows %s unlike %s"
                                     % (block, name, block.marker("module")))

    def test_configuration_blocks_say_what_reads_them(self):
        readers = ("zope.conf", "zeo.conf", "zcml", "buildout", "systemd", "zasync.xml", "yaml",
                   "deploy", "not checked")
        for block in all_blocks():
            looks_like = (
                re.search(r"<(product-config|zodb_db|zeo>|filestorage)", block.text)
                or "<configure" in block.text
                or re.search(r"^recipe\s*=", block.text, re.M)
                or "[Service]" in block.text
                or block.lang == "yaml"
            )
            if looks_like and block.lang != "json":
                with self.subTest(block=block):
                    self.assertTrue(any(block.marker(name) is not None for name in readers),
                                    "%r is configuration: mark what reads it" % block)

    def test_links_and_anchors_resolve(self):
        for document in documents.DOCUMENTS + ["benchmarks/README.md"]:
            folder = (documents.ROOT / document).parent
            for target in LINK.findall(prose(document)):
                if re.match(r"^[a-z]+:", target):
                    continue  # https:, mailto:
                with self.subTest(document=document, link=target):
                    path, _, anchor = target.partition("#")
                    linked = (folder / path).resolve() if path else documents.ROOT / document
                    self.assertTrue(linked.exists(), "%s links to %s, which does not exist" % (document, target))
                    if anchor and linked.suffix == ".md":
                        name = str(linked.relative_to(documents.ROOT))
                        self.assertIn(anchor, anchors(name), "no heading of %s has the anchor #%s" % (name, anchor))

    def test_json_and_yaml_blocks_parse(self):
        for block in all_blocks():
            with self.subTest(block=block):
                if block.lang == "json":
                    json.loads(block.text)
                elif block.lang == "yaml":
                    yaml.safe_load(block.text)


class TestZeoConfiguration(unittest.TestCase):

    def test_every_zeo_conf_block_is_read_by_zeo_with_client_conflict_resolution(self):
        blocks = all_blocks("zeo.conf")
        self.assertGreaterEqual(len(blocks), 3)
        for block in blocks:
            with self.subTest(block=block):
                options = zeo_options(block.text)
                self.assertTrue(options.client_conflict_resolution, "%r" % block)

    def test_the_compose_file_zeo_conf_too(self):
        environ = {"ZEO_PORT": "8100", "ZEO_READ_ONLY": "false",  # what plone-zeo's start sets
                   "ZEO_INVALIDATION_QUEUE_SIZE": "100", "ZEO_PACK_KEEP_OLD": "true"}
        old = {name: os.environ.get(name) for name in environ}
        os.environ.update(environ)
        try:
            options = zeo_options((documents.ROOT / "docs" / "zeo.conf").read_text(),
                                  folders=("app/var", "data/filestorage", "data/blobstorage"))
        finally:
            for name, value in old.items():
                os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)
        self.assertTrue(options.client_conflict_resolution)
        self.assertEqual(options.address[1], 8100)


class TestSystemdUnit(unittest.TestCase):

    def unit(self):
        [block] = all_blocks("systemd")
        parser = configparser.ConfigParser(strict=True, interpolation=None)
        parser.optionxform = str
        parser.read_string(block.text)
        return parser

    def test_the_worker_gets_the_time_to_stop(self):
        service = self.unit()["Service"]
        [conf] = [block for block in all_blocks("zope.conf")
                  if (block.marker("deploy") or "").endswith("/instance/etc/zope.conf")]
        config = read_zope_conf(conf.text).product_config["collective.zasync"]
        settings = WorkerSettings.from_product_config(config, environ={})
        self.assertGreaterEqual(int(service["TimeoutStopSec"].rstrip("s")),
                                settings.stop_timeout + STOP_MARGIN)
        self.assertEqual(service["KillSignal"], "SIGTERM")

    def test_it_runs_zasync_worker_with_an_identity(self):
        service = self.unit()["Service"]
        self.assertIn("/bin/zasync-worker -C ", service["ExecStart"])
        self.assertTrue(service["Environment"].startswith("ZASYNC_UUID="))
        self.assertEqual(WorkerSettings().stop_timeout, 30.0)  # the comment's figure
