"""For development, tests and demos, not for sites: the pip-only cluster (``zasync-cluster``),
a private PostgreSQL server, servers tied to the test run, the demo pages, the example jobs and
the script that creates a demo site. Add-ons may import the examples (dev/examples.py) to try things.
"""
