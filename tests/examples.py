"""The runnable examples of the Markdown documents (README.md, docs/porting.md).

A runnable example is a ```python block right after a line ``<!-- example: NAME -->``;
other blocks are left alone. The tests run each example with ``run_example``
and then check what the document promises about it.
"""

from pathlib import Path

import re


ROOT = Path(__file__).parent.parent
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
