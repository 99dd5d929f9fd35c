"""Profile version 1004: jobs indexed by site, and by item with its database. Not for add-ons."""

from collective.zasync.plone.upgrades import index_jobs


def upgrade(context):
    """GenericSetup upgrade step: jobs indexed by site (sites sharing a queue database see their
    own only), and by item with its database (oids repeat across databases)."""
    index_jobs("by site and by item (database and oid)")
