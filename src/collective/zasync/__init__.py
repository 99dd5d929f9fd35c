"""collective.zasync: durable background jobs for Plone, queued in the ZODB.

Start with ``interfaces.py``: it is the contract of the package.
"""
