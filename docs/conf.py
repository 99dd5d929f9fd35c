"""Sphinx configuration of collective.zasync's documentation (``make docs``).

Markdown pages read by MyST, as Plone's own documentation is; warnings are errors
(the Makefile passes -W), so a broken link, a missing page or an unknown anchor
stops the build.
"""

project = "collective.zasync"
author = "collective.zasync contributors"
copyright = "the collective.zasync contributors"

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Links such as [settings](deploy.md#worker-settings) resolve to the headings' slugs
# (GitHub's, so the same links work when the pages are read on GitHub).
myst_heading_anchors = 4
myst_enable_extensions = ["deflist"]

html_theme = "furo"
html_title = "collective.zasync"
html_static_path = []
