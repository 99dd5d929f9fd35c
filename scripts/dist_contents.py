"""Check the contents of the sdist and the wheel (scripts/check-dist.sh runs it).

Both must hold every file of src/collective/zasync (modules, ZCML, templates, profiles,
locales), no tests or benchmarks; the sdist also what setup.py reads; the wheel the entry
points. Usage: dist_contents.py SOURCE_COPY SDIST WHEEL
"""

from pathlib import Path

import sys
import tarfile
import zipfile


PACKAGE = "src/collective/zasync"
# Named so that the message says plainly what is missing; every file of PACKAGE is checked too.
REQUIRED = [
    "__init__.py",
    "configure.zcml",
    "interfaces.py",
    "testing.py",
    "dev/demo/configure.zcml",
    "browser/configure.zcml",
    "browser/templates/controlpanel.pt",
    "restapi/configure.zcml",
    "profiles/default/metadata.xml",
    "profiles/default/registry/main.xml",
    "profiles/uninstall/registry.xml",
    "locales/collective.zasync.pot",
    "worker.zcml",
    "single_db_instance.zcml",
    "single_db_worker.zcml",
    "multi_db_instance.zcml",
    "multi_db_worker.zcml",
    "meta.zcml",
    "plone/configure.zcml",
]
SDIST_ONLY = ["README.md", "CHANGES.rst", "setup.py", "pyproject.toml", "MANIFEST.in"]
FORBIDDEN = {"tests", "benchmarks"}
ENTRY_POINTS = [
    "[plone.autoinclude.plugin]",
    "target = plone",
    "zasync-cluster = collective.zasync.dev.cli:main",
    "zasync-worker = collective.zasync.worker.cli:main",
    "zasync = collective.zasync.client.cli:main",
]


def package_files(source):
    """The files of the package in the source copy, relative to src/collective/zasync."""
    base = Path(source, PACKAGE)
    return sorted(
        str(path.relative_to(base))
        for path in base.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def problems(kind, names, prefix, expected):
    """What is wrong with one archive whose package files are under ``prefix``."""
    found = set(names)
    missing = [name for name in expected if prefix + name not in found]
    named = [name for name in REQUIRED if name in missing]
    stray = sorted(name for name in names if FORBIDDEN & set(name.split("/")))
    out = []
    if missing:
        out.append(
            "the %s lacks %d of the package's %d files, among them %s"
            % (kind, len(missing), len(expected), ", ".join((named or missing)[:8]))
        )
    if stray:
        out.append("the %s holds tests or benchmarks: %s" % (kind, ", ".join(stray[:8])))
    return out


def main(source, sdist, wheel):
    expected = sorted(set(package_files(source)) | set(REQUIRED))
    with zipfile.ZipFile(wheel) as zf:
        wheel_names = zf.namelist()
        entry_points = "".join(
            zf.read(name).decode()
            for name in wheel_names
            if name.endswith(".dist-info/entry_points.txt")
        )
    with tarfile.open(sdist) as tf:
        # "collective_zasync-1.0.0a1/src/..." -> "src/..."
        sdist_names = [name.partition("/")[2] for name in tf.getnames()]

    errors = problems("wheel", wheel_names, "collective/zasync/", expected)
    errors += problems("sdist", sdist_names, PACKAGE + "/", expected)
    errors += ["the sdist lacks %s" % name for name in SDIST_ONLY if name not in sdist_names]
    errors += [
        "the wheel's entry points lack %r" % line
        for line in ENTRY_POINTS
        if line not in entry_points
    ]
    for error in errors:
        print("dist check: " + error, file=sys.stderr)
    if errors and not any(name.startswith("collective/") for name in wheel_names):
        print("dist check: the wheel holds no package at all: does setup.py's packages= find "
              "collective.zasync (a PEP 420 namespace: find_namespace_packages)?", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
