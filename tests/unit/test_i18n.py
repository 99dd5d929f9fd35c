"""Translations are ready: every user-facing text has a message id, and the .pot is current."""

from pathlib import Path

import re
import subprocess
import sys
import tempfile
import unittest


PACKAGE = Path(__file__).parent.parent.parent / "src" / "collective" / "zasync"
POT = PACKAGE / "locales" / "collective.zasync.pot"
I18NDUDE = Path(sys.executable).parent / "i18ndude"


def msgids(pot_text):
    return set(re.findall(r'^msgid "(.+)"$', pot_text, re.M))


class TestTranslations(unittest.TestCase):
    def test_templates_declare_the_domain(self):
        for template in sorted(PACKAGE.rglob("*.pt")):
            with self.subTest(template=template.name):
                self.assertIn('i18n:domain="collective.zasync"', template.read_text())

    def test_pot_holds_every_message_id(self):
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / "fresh.pot"
            subprocess.run(
                [str(I18NDUDE), "rebuild-pot", "--pot", str(fresh), "--create", "collective.zasync", str(PACKAGE)],
                check=True,
                capture_output=True,
            )
            expected = msgids(fresh.read_text())
        self.assertIn("Background jobs", expected)  # the configlet's title, from controlpanel.xml
        self.assertIn("Retry", expected)
        missing = expected - msgids(POT.read_text())
        self.assertFalse(missing, "locales/collective.zasync.pot is out of date: run 'make i18n'")

    def test_no_untranslated_text_in_templates(self):
        templates = [str(t) for t in sorted(PACKAGE.rglob("*.pt"))]
        result = subprocess.run(
            [str(I18NDUDE), "find-untranslated", "-s", *templates], capture_output=True, text=True
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
