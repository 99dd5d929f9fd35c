"""``@collective.zasync.task``: a job function that knows how it is queued.

In the style of Celery's ``@app.task`` and Django 6's ``@task``::

    @task(queue="reports", retry_on=URLError, max_attempts=5)
    def make_report(context, year):
        ...

    make_report.enqueue(context, 2026)  # queued in the current transaction; returns the job
    make_report(context, 2026)  # runs it here and now, as a plain call

``enqueue`` calls IAsyncService.queueJobInQueueWithDelay: same transaction
rules, same user, same checks of the input. Add-ons use it as ``collective.zasync.task``.
"""

from collective.zasync.client.lookup import get_service
from collective.zasync.client.service import UNIQUE_SCOPES
from collective.zasync.core.calls import path_of
from collective.zasync.core.job import utcnow
from collective.zasync.core.retrying import check_policy
from datetime import timedelta

import functools
import hashlib
import inspect


def task(func=None, *, queue="", priority=None, retry_on=None, max_attempts=None,
         retry_backoff=None, retry_backoff_max=None, unique=None, quota_names=(), delay=None,
         unique_scope="user"):
    """Make a module-level function a Task; usable bare (``@task``) or with options.

    ``queue``: the name of an existing queue; ``priority``: passed to the
    service only when given; ``retry_on``, ``max_attempts``,
    ``retry_backoff``, ``retry_backoff_max``: the retry policy (core/retrying.py);
    ``unique``: True (one pending job per function, context and arguments)
    or a callable ``(context, *args, **kwargs) -> str`` that returns the
    unique key, per user and site (``unique_scope="site"``: per site, see
    IAsyncService.queueJob); ``quota_names``: quotas of the queue; ``delay``:
    seconds or a timedelta before each job may start.
    """
    options = dict(queue=queue, priority=priority, retry_on=retry_on, max_attempts=max_attempts,
                   retry_backoff=retry_backoff, retry_backoff_max=retry_backoff_max,
                   unique=unique, quota_names=quota_names, delay=delay, unique_scope=unique_scope)
    if func is not None:
        return Task(func, **options)
    return functools.partial(Task, **options)


class Task:
    """A job function with its queueing options; calling it runs the function inline."""

    def __init__(self, func, queue="", priority=None, retry_on=None, max_attempts=None,
                 retry_backoff=None, retry_backoff_max=None, unique=None, quota_names=(),
                 delay=None, unique_scope="user"):
        check_module_level(func)
        policy = dict(retry_on=retry_on, max_attempts=max_attempts, retry_backoff=retry_backoff,
                      retry_backoff_max=retry_backoff_max)
        check_policy(**policy)  # bad input fails at import time, not at the first enqueue
        self.policy = {key: value for key, value in policy.items() if value is not None}
        if not isinstance(queue, str):
            raise TypeError("queue is the name of a queue (a str), not %r." % (queue,))
        if unique not in (None, True, False) and not callable(unique):
            raise TypeError("unique is True or a callable returning the key, not %r." % (unique,))
        if unique_scope not in UNIQUE_SCOPES:
            raise ValueError("unique_scope is %s, not %r." % (" or ".join(map(repr, UNIQUE_SCOPES)), unique_scope))
        self.unique_scope = unique_scope
        self.func = self.__zasync_function__ = func  # what IAsyncService queues
        # So that the job stores "module:name" and the worker, importing that
        # name, finds this Task (callables.imports_back compares __func__).
        self.__func__ = func
        self.queue = queue
        self.priority = priority
        self.unique = unique
        self.quota_names = tuple(quota_names)
        self.delay = delay_of(delay, "delay") if delay is not None else None
        functools.update_wrapper(self, func)

    def __repr__(self):
        return "<Task %s.%s>" % (self.func.__module__, self.func.__qualname__)

    def __call__(self, *args, **kwargs):
        """Run the function here and now."""
        return self.func(*args, **kwargs)

    def enqueue(self, context, *args, **kwargs):
        """Queue ``func(context, *args, **kwargs)`` in the current transaction; return the job."""
        begin_after = utcnow() + self.delay if self.delay is not None else None
        return self._queue(begin_after, context, args, kwargs)

    def enqueue_in(self, delay, context, *args, **kwargs):
        """Like enqueue, starting not before ``delay`` (seconds or a timedelta) from now."""
        return self._queue(utcnow() + delay_of(delay, "enqueue_in's delay"), context, args, kwargs)

    def enqueue_at(self, when, context, *args, **kwargs):
        """Like enqueue, starting not before ``when`` (an aware datetime)."""
        return self._queue(when, context, args, kwargs)

    def _queue(self, begin_after, context, args, kwargs):
        options = dict(self.policy)
        if self.priority is not None:
            options["priority"] = self.priority
        if self.unique:
            options["unique_key"] = self.unique_key(context, args, kwargs)
            options["unique_scope"] = self.unique_scope
        options.update(kwargs)  # a keyword the service takes, given here, wins
        queue = options.pop("queue", self.queue)
        quota_names = options.pop("quota_names", self.quota_names)
        return get_service().queueJobInQueueWithDelay(
            None, begin_after, queue, quota_names, self.func, context, *args, **options
        )

    def unique_key(self, context, args, kwargs):
        """The unique key of a job for these arguments (see ``unique``)."""
        if self.unique is True:
            arguments = repr((args, sorted(kwargs.items()))).encode("utf-8")
            return "%s:%s %s %s" % (self.func.__module__, self.func.__qualname__, path_of(context),
                                    hashlib.sha256(arguments).hexdigest()[:16])
        key = self.unique(context, *args, **kwargs)
        if not isinstance(key, str):
            raise TypeError("The unique callable of %r returned %r: return a str." % (self, key))
        return key


def check_module_level(func):
    """Raise unless ``func`` is a function defined at the top level of an importable module."""
    if not inspect.isfunction(func):
        raise TypeError("@task decorates a module-level function, not %r." % (func,))
    qualname = func.__qualname__
    where = None
    if func.__name__ == "<lambda>":
        where = "a lambda"
    elif "<locals>" in qualname:
        where = "defined inside another function"
    elif "." in qualname:
        where = "a method (of %s)" % qualname.rsplit(".", 1)[0]
    elif func.__module__ in (None, "__main__", "builtins"):
        where = "not in an importable module"
    if where is not None:
        raise ValueError(
            "@task cannot decorate %s: it is %s, so a worker could not find it again. "
            "Decorate a function defined at the top level of a module of your add-on "
            "(for a method of a persistent object, use IAsyncService.queueJob)." % (qualname, where)
        )


def delay_of(value, label):
    """``value`` (seconds or a timedelta) as a timedelta; raise if it is neither."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("%s is a number of seconds or a timedelta, not %r." % (label, value))
    return timedelta(seconds=value)
