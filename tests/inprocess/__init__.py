"""Tests with a Plone site and a worker in the test process (plone.app.testing layers)."""
