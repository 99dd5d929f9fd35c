"""The core: what the queue database stores, and the rules it keeps. Not for add-ons.

No threads, no request: every function works on stored objects in the caller's
transaction. The schema is core/queue.py (a table of every tree, who writes it,
when it is emptied). Nothing here imports from the layers above it (client, worker,
browser, restapi, plone, dev): tests/unit/test_layers.py checks it.
"""
