"""The runnable examples of the Markdown documents (README.md, docs/porting.md).

A runnable example is a ```python block right after a line ``<!-- example: NAME -->``;
other blocks are left alone. The tests run each example with ``run_example``
and then check what the document promises about it.
"""

from pathlib import Path

import os
import re


ROOT = Path(__file__).parent.parent.parent
EXAMPLE = re.compile(r"<!-- example: (\w+) -->\n```python\n(.*?)```", re.S)


def examples(document):
    """{name: source} of the runnable examples of ``document`` (a path in the repository)."""
    found = EXAMPLE.findall((ROOT / document).read_text())
    names = [name for name, _source in found]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise AssertionError(
            "%s has more than one example named %s" % (document, ", ".join(duplicated))
        )
    return dict(found)


def run_example(document, name, namespace):
    """Run the example ``name`` of ``document`` in ``namespace`` (a dict) and return it."""
    source = examples(document).get(name)
    if source is None:
        raise AssertionError("%s has no example %r" % (document, name))
    exec(compile(source, "%s example %s" % (document, name), "exec"), namespace)
    return namespace


# -- every fenced block of a document, with the markers written above it -------------------

DOCUMENTS = ["README.md"] + sorted(
    str(path.relative_to(ROOT)) for path in (ROOT / "docs").glob("*.md")
)
MARKER = re.compile(r"^<!-- (.*?) -->$")


class Block:
    """A fenced block: its language, text, first line number and the markers above it."""

    def __init__(self, document, line, fence, lang, text, markers):
        self.document, self.line, self.fence = document, line, fence
        self.lang, self.text, self.markers = lang, text, markers

    def marker(self, name):
        """The value of the marker ``name`` ("" for a bare one), or None without it."""
        for marker in self.markers:
            key, _, value = marker.partition(":")
            if key.strip() == name:
                return value.strip()
        return None

    def __repr__(self):
        return "%s line %d (%s)" % (self.document, self.line, self.lang or "no language")


def blocks(document, kind=None):
    """The fenced blocks of ``document``, those with the marker ``kind`` if given.

    Raises AssertionError for a fence that is never closed (everything after it would
    show as code).
    """
    lines = (ROOT / document).read_text().split("\n")
    found, number = [], 0
    while number < len(lines):
        match = re.match(r"^(\s*)(```+|~~~+)\s*(\S*)", lines[number])
        if not match:
            number += 1
            continue
        indent, fence, lang = match.groups()
        markers, back = [], number - 1
        while back >= 0 and MARKER.match(lines[back].strip()):
            markers.insert(0, MARKER.match(lines[back].strip()).group(1))
            back -= 1
        end = number + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        if end == len(lines):
            raise AssertionError("%s line %d: the %s fence is never closed" % (document, number + 1, fence))
        text = "\n".join(line[len(indent):] for line in lines[number + 1:end]) + "\n"
        found.append(Block(document, number + 1, fence, lang, text, markers))
        number = end + 1
    return [block for block in found if kind is None or block.marker(kind) is not None]


def relocate(text, root, prefixes=("/srv", "/app", "/data")):
    """``text`` with the absolute paths under ``prefixes`` moved under ``root``, whose
    directories (and the parents of files) are created: a documented configuration can then
    be read by what checks that its directories exist."""
    def move(match):
        path = root + match.group(0)
        last = os.path.basename(path)
        os.makedirs(path if "." not in last else os.path.dirname(path), exist_ok=True)
        return path

    pattern = r"(?<![\w/])(%s)(/[\w.\-]+)*" % "|".join(re.escape(prefix) for prefix in prefixes)
    return re.sub(pattern, move, text)
