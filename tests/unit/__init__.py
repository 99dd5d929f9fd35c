"""Tests that need neither a Plone site nor a server: the package's shape, its pure logic, the docs."""
