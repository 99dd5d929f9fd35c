"""The package's shape, read from its source: layers that import only downwards, no import cycle,
no module over 400 lines, at most 15 modules at the top, each saying whether add-ons may import it.

docs/design.md draws the layers. What each may import:

- core (what is stored) imports nothing above it;
- client (what a request, a script, the command line does) builds on core;
- worker (one worker process) on client and core;
- the front ends, browser and restapi, on client only, never on each other, never on the worker;
- plone (Plone glue) on client and core;
- dev (the cluster, the demo, the examples) on anything but the tests.

Any of them may import the leaves at the top: interfaces, defaults, i18n, moved. Nothing
imports api, testing or the package's __init__ but dev (as an add-on would) and the top.
"""

from pathlib import Path

import ast
import collective.zasync
import unittest


PACKAGE = Path(collective.zasync.__file__).parent
NAME = "collective.zasync"
LEAVES = {"interfaces", "defaults", "i18n", "moved"}
LAYERS = {
    "core": {"core"},
    "client": {"client", "core"},
    "worker": {"worker", "client", "core"},
    "browser": {"browser", "client"},
    "restapi": {"restapi", "client"},
    "plone": {"plone", "client", "core"},
    "dev": {"dev", "plone", "worker", "client", "core", "api", "__init__"},
}
MAX_LINES = 400
MAX_TOP_LEVEL = 15


def modules():
    """{dotted name: path} of every module of the package (a package: its __init__.py)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join((NAME,) + parts)] = path
    return found


def imports(path):
    """(line, dotted name) of every name imported by the module at ``path``, at any depth
    (a function's own imports count: they run too), of this package only."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(NAME):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(NAME):
            for alias in node.names:
                yield node.lineno, "%s.%s" % (node.module, alias.name)


def imported_module(name, known):
    """The module that importing ``name`` loads: itself, or the module it is a name of."""
    while name not in known:
        name = name.rpartition(".")[0]
    return name


def layer_of(module):
    """'core', 'client', ...; or the top-level module's own name ('api', '__init__', ...)."""
    parts = module.split(".")[2:]
    return parts[0] if parts else "__init__"


class TestImports(unittest.TestCase):
    def setUp(self):
        self.modules = modules()
        self.graph = {}
        for module, path in self.modules.items():
            self.graph[module] = {
                imported_module(name, self.modules) for _line, name in imports(path)
            } - {module}

    def test_every_import_names_a_module_that_exists(self):
        """Old paths (moved.py) are for stored objects and add-ons, never for the package's own code."""
        missing = []
        for module, path in self.modules.items():
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom):
                    names = [node.module] if node.module else []
                elif isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                else:
                    continue
                missing.extend("%s:%d imports %s" % (path.relative_to(PACKAGE), node.lineno, name)
                               for name in names if name.startswith(NAME) and name not in self.modules)
        self.assertEqual(missing, [])

    def test_no_import_cycle(self):
        # A package's __init__ is imported by its modules anyway: not an edge back.
        graph = {module: {dep for dep in deps if not module.startswith(dep + ".")}
                 for module, deps in self.graph.items()}
        self.assertEqual(cycles(graph), [])

    def test_each_layer_imports_only_the_layers_below_it(self):
        wrong = []
        for module, deps in sorted(self.graph.items()):
            layer = layer_of(module)
            if layer not in LAYERS:
                continue  # the top: api, testing, __init__ and the leaves
            allowed = LAYERS[layer] | LEAVES
            for dep in sorted(deps):
                if layer_of(dep) not in allowed:
                    wrong.append("%s imports %s" % (module, dep))
        self.assertEqual(wrong, [])

    def test_the_leaves_import_nothing_of_the_package(self):
        for leaf in LEAVES:
            self.assertEqual(self.graph["%s.%s" % (NAME, leaf)], set(), leaf)

    def test_cycles_and_layer_violations_are_seen(self):
        """The checks above find what they look for (a made-up graph)."""
        self.assertEqual(cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}), [["a", "b", "c"]])
        self.assertEqual(layer_of(NAME + ".core.queue"), "core")
        self.assertNotIn(layer_of(NAME + ".worker.dispatcher"), LAYERS["core"] | LEAVES)
        self.assertNotIn(layer_of(NAME + ".browser.myjobs"), LAYERS["restapi"] | LEAVES)


class TestModules(unittest.TestCase):
    def test_no_module_over_400_lines(self):
        long = {str(path.relative_to(PACKAGE)): length for path in PACKAGE.rglob("*.py")
                if (length := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
        self.assertEqual(long, {})

    def test_at_most_15_modules_at_the_top(self):
        top = sorted(path.name for path in PACKAGE.glob("*.py"))
        self.assertLessEqual(len(top), MAX_TOP_LEVEL, top)

    def test_every_module_says_whether_add_ons_may_import_it(self):
        silent = []
        for module, path in modules().items():
            docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            if "add-on" not in docstring.lower():
                silent.append(module)
        self.assertEqual(silent, [])


def cycles(graph):
    """The strongly connected components of more than one module in ``graph`` (Tarjan's)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in graph.get(node, ()):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)
