"""buildout.cfg and every buildout block of the docs are what the recipes turn into a working site.

Each block marked ``<!-- buildout -->`` (and the repository's buildout.cfg) is read by
zc.buildout itself (extends, ``<=`` macros, ``${...}`` substitutions), then each part is given
to its recipe's own code, as ``bin/buildout`` would: plone.recipe.zope2instance writes the
part's zope.conf, plone.recipe.zeoserver the server's zeo.conf. Those are read by Zope's and
ZEO's schemas and by the worker's settings; the ZCML files they include must exist. Nothing is
installed: the eggs are this virtualenv's, pinned as versions.cfg pins them.
"""

from collective.zasync.worker.settings import WorkerSettings
from tests.support import docexamples as documents
from tests.unit.test_docs import zeo_options
from Zope2.Startup.options import ZopeWSGIOptions

import importlib.util
import io
import os
import re
import sys
import tempfile
import unittest


ZOPE2INSTANCE = "plone.recipe.zope2instance"
ZEOSERVER = "plone.recipe.zeoserver"


def buildout_of(text):
    """zc.buildout's reading of ``text`` (a block, or a whole configuration) in a new directory."""
    stdin = sys.stdin
    if not hasattr(stdin, "isatty"):  # (zope-testrunner -j's stand-in, which zc.buildout asks)
        sys.stdin = io.StringIO()
    try:
        from zc.buildout.buildout import Buildout
    finally:
        sys.stdin = stdin

    folder = tempfile.mkdtemp()
    sections = re.findall(r"^\[([\w.-]+)\]", text, re.M)
    referred = set(re.findall(r"^<=\s*([\w.-]+)", text, re.M)) | set(re.findall(r"\$\{([\w.-]+):", text))
    root = str(documents.ROOT)
    if "buildout" in sections:
        text = re.sub(r"^extends\s*=\s*(\S+)", lambda m: "extends = %s/%s" % (root, m.group(1)), text, flags=re.M)
    elif referred - set(sections) - {"buildout"}:  # a change of the repository's buildout.cfg
        text = "[buildout]\nextends = %s/buildout.cfg\n%s" % (root, text)
    else:  # parts of their own
        text = "[buildout]\nextends = %s/versions.cfg\nparts = %s\n%s" % (root, " ".join(sections), text)
    path = os.path.join(folder, "buildout.cfg")
    with open(path, "w") as f:
        f.write(text)
    options = [("buildout", "directory", folder), ("buildout", "offline", "true"),
               ("buildout", "develop", "")]
    return Buildout(path, options), sections


def parts(buildout, recipe, extra=()):
    names = buildout["buildout"]["parts"].split() + [name for name in extra if name in buildout]
    return [name for name in dict.fromkeys(names) if buildout[name].get("recipe", "").split(":")[0] == recipe]


def zope_conf_of(buildout, name):
    """The zope.conf plone.recipe.zope2instance writes for the part ``name``: Zope's reading."""
    from plone.recipe.zope2instance.recipe import Recipe

    options = buildout[name]
    # The recipe looks Products.CMFPlone up among the part's eggs only to choose this default.
    options["zodb-temporary-storage"] = "off"
    os.makedirs(os.path.join(options["location"], "etc"), exist_ok=True)
    Recipe(buildout, name, options).build_zope_conf()
    return ZopeWSGIOptions(configfile=os.path.join(options["location"], "etc", "zope.conf"))()


def zeo_conf_of(buildout, name):
    """The zeo.conf plone.recipe.zeoserver writes for the part ``name``: ZEO's reading."""
    from plone.recipe.zeoserver.recipe import Recipe

    options = buildout[name]
    os.makedirs(os.path.join(options["location"], "etc"), exist_ok=True)
    Recipe(buildout, name, options).build_zeo_conf()
    with open(os.path.join(options["location"], "etc", "zeo.conf")) as f:
        return zeo_options(f.read())


def included_zcml(text):
    """(package, file) of each <include> of a zcml-additional."""
    return re.findall(r'<include\s+package="([\w.]+)"\s+file="([\w.]+)"', text)


class TestBuildouts(unittest.TestCase):

    def configurations(self):
        yield "buildout.cfg", (documents.ROOT / "buildout.cfg").read_text()
        for document in documents.DOCUMENTS:
            for block in documents.blocks(document, "buildout"):
                yield repr(block), block.text

    def test_every_buildout_makes_a_site_the_workers_and_zope_accept(self):
        checked = 0
        for name, text in self.configurations():
            with self.subTest(configuration=name):
                buildout, sections = buildout_of(text)
                servers = parts(buildout, ZEOSERVER, sections)
                for server in servers:
                    self.assertTrue(zeo_conf_of(buildout, server).client_conflict_resolution,
                                    "%s: [%s] lacks client-conflict-resolution" % (name, server))
                for part in parts(buildout, ZOPE2INSTANCE, sections):
                    options = buildout[part]
                    if servers:  # else two processes would open one Data.fs: the second fails
                        self.assertIn(options.get("zeo-client", "").lower(), ("on", "true", "yes"),
                                      "%s: [%s] is no ZEO client of [%s]" % (name, part, servers[0]))
                    conf = zope_conf_of(buildout, part).configroot
                    config = (conf.product_config or {}).get("collective.zasync")
                    if config is not None:
                        WorkerSettings.from_product_config(config, environ={})
                    for package, filename in included_zcml(options.get("zcml-additional", "")):
                        where = os.path.dirname(importlib.util.find_spec(package).origin)
                        self.assertTrue(os.path.isfile(os.path.join(where, filename)), filename)
                    checked += 1
        self.assertGreaterEqual(checked, 8)

    def test_the_shipped_buildout_has_workers_with_identities(self):
        buildout, _sections = buildout_of((documents.ROOT / "buildout.cfg").read_text())
        uuids = set()
        for part in parts(buildout, ZOPE2INSTANCE):
            environment = buildout[part].get("environment-vars", "")
            if "single_db_worker.zcml" in buildout[part].get("zcml-additional", ""):
                self.assertIn("ZASYNC_UUID", environment, part)
                uuids.add(environment.split("ZASYNC_UUID", 1)[1].split()[0])
        self.assertEqual(len(uuids), 2, "two workers, two UUID files")
