"""Tests over real HTTP and in a real browser: the pages, the REST API, the ops views."""
