"""Job functions for test_queue_input and test_batch_retry.

Module level, so that the worker finds them again by their dotted names
(``tests`` is importable: the runner puts the checkout on PYTHONPATH).
"""

from tests.support import sample_jobs
from collective.zasync.client.transactional import transactional
from plone import api

import functools


def logged(func):
    """A decorator as add-ons write them: functools.wraps keeps the name."""

    @functools.wraps(func)
    def wrapper(context, *args, **kwargs):
        return ("logged", func(context, *args, **kwargs))

    return wrapper


@logged
def double(context, number):
    return number * 2


@transactional
def retitle(context, title):
    """Set the site's title in a transaction of its own."""
    api.portal.get().title = title
    return title


def keywords(context, **kwargs):
    """The names of the keyword arguments the job was called with."""
    return sorted(kwargs)


MARKER = "_zasync_retry_marker"


def log_when_marked(context, entry):
    """Log ``entry`` if the site has MARKER (set by a test before retrying); fail before."""
    if not getattr(api.portal.get(), MARKER, False):
        raise ValueError("%s: the site is not marked yet." % entry)
    return sample_jobs.log_id(context, entry)


def without_wraps(func):
    """A decorator that forgets functools.wraps: its wrapper has no importable name."""

    def wrapper(context, *args, **kwargs):
        return func(context, *args, **kwargs)

    return wrapper


@without_wraps
def unfindable(context):
    return None


def prioritized(context, priority=0):
    """A job function with a parameter that has the name of a keyword the service takes: refused."""
    return priority


def about_it(context, *, about):
    """Likewise, with a keyword-only parameter."""
    return about
