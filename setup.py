from setuptools import find_namespace_packages
from setuptools import setup


RELSTORAGE = ["RelStorage", "psycopg2-binary"]
# make docs: Sphinx with MyST, as Plone's own documentation.
DOCS = ["furo", "myst-parser", "sphinx"]


setup(
    name="collective.zasync",
    version="1.0.0a1",
    description="Durable background jobs for Plone 6, queued in the ZODB, run as the queuing user.",
    long_description=open("README.md").read() + "\n\n" + open("CHANGES.rst").read(),
    long_description_content_type="text/markdown",
    classifiers=[
        "Environment :: Web Environment",
        "Framework :: Plone",
        "Framework :: Plone :: 6.2",
        "Framework :: Plone :: Addon",
        "Framework :: Zope :: 5",
        "License :: OSI Approved :: GNU General Public License v2 (GPLv2)",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
    ],
    keywords="Plone ZODB ZEO async background jobs queue",
    license="GPL version 2",
    package_dir={"": "src"},
    # collective is a PEP 420 namespace (no __init__.py): find_packages would find nothing.
    # Data folders (templates, profiles, locales) count as packages here, so their files ship.
    packages=find_namespace_packages(
        "src", include=["collective.zasync", "collective.zasync.*"], exclude=["*.__pycache__"]
    ),
    include_package_data=True,
    zip_safe=False,
    python_requires=">=3.11",
    install_requires=[
        "BTrees",
        # cron schedules of recurring jobs, in a time zone, across daylight-saving changes
        "cronsim",
        "persistent",
        "plone.api",
        "plone.app.registry",
        "plone.restapi",
        "prometheus_client",
        "Products.CMFPlone>=6.2",
        "setuptools",
        "transaction",
        "ZEO",
        "ZODB",
        "zope.component",
        "zope.interface",
        "zope.processlifetime",
        # (all of them come with Plone: named for the content rule action, UIDs, zasync.xml)
        "plone.app.contentrules",
        "plone.app.uuid",
        "plone.uuid",
        "Products.GenericSetup",
    ],
    extras_require={
        # RelStorage on PostgreSQL instead of ZEO (psycopg2-binary: no compiler, no libpq-dev).
        "relstorage": RELSTORAGE,
        "docs": DOCS,
        "test": RELSTORAGE + DOCS + [
            "i18ndude",
            "plone.app.contenttypes[test]",
            "plone.app.robotframework",
            "plone.app.testing",
            # tests/test_doc_buildout.py: the recipes' own code writes the documented configurations
            "plone.recipe.zeoserver",
            "plone.recipe.zope2instance",
            "plone.testing",
            "playwright",
            "towncrier",
            "zc.buildout",
            "zope.testrunner",
        ],
    },
    entry_points={
        "plone.autoinclude.plugin": ["target = plone"],
        "console_scripts": [
            "zasync-cluster = collective.zasync.dev.cli:main",
            "zasync-worker = collective.zasync.worker.cli:main",
            "zasync = collective.zasync.client.cli:main",
        ],
    },
)
