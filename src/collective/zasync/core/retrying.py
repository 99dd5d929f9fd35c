"""Retry policies: more attempts for a job whose function raised a given error.

``queueJob(..., retry_on=(URLError, TimeoutError), max_attempts=5,
retry_backoff=10, retry_backoff_max=3600)``: when an attempt raises an
instance of ``retry_on``, its transaction is aborted (none of its effects
remain) and the job waits in its queue again until its next try, at

    now + min(retry_backoff_max, retry_backoff * 2 ** (n - 1)) * uniform(0.5, 1)

after its n-th failed attempt (exponential, capped, with jitter so that jobs
failing together do not come back together). The worker thread does not
wait: it takes other jobs meanwhile. After ``max_attempts`` starts the job
fails with the last error, as a job without a policy fails at once.

Words: an *attempt* is one start of the job's function; *conflict retries*
(``job.retries``, ``max_retries``) are the re-runs of one attempt after a
ConflictError, which happen whatever the policy. Not for add-ons (``retry_on=`` is the service's).
"""

from collective.zasync.core.calls import resolve_dotted
from collective.zasync.defaults import DEFAULT_BACKOFF
from collective.zasync.defaults import DEFAULT_BACKOFF_MAX
from collective.zasync.defaults import DEFAULT_MAX_ATTEMPTS
from datetime import timedelta

import random


POLICY_KEYS = ("retry_on", "max_attempts", "retry_backoff", "retry_backoff_max")


def check_policy(retry_on=None, max_attempts=None, retry_backoff=None, retry_backoff_max=None):
    """The job attributes of a retry policy (empty without one); raise on bad input."""
    if retry_on is None or retry_on == ():
        if max_attempts is not None or retry_backoff is not None or retry_backoff_max is not None:
            raise ValueError(
                "max_attempts and retry_backoff apply to the errors named in retry_on: pass "
                "retry_on=(URLError, TimeoutError) (exception classes) as well."
            )
        return {}
    if max_attempts is None:
        max_attempts = DEFAULT_MAX_ATTEMPTS
    if not isinstance(max_attempts, int) or isinstance(max_attempts, bool) or max_attempts < 1:
        raise ValueError("max_attempts is a whole number of at least 1 (starts of the job's "
                         "function in all), not %r." % (max_attempts,))
    base = seconds(retry_backoff, "retry_backoff", DEFAULT_BACKOFF)
    cap = seconds(retry_backoff_max, "retry_backoff_max", DEFAULT_BACKOFF_MAX)
    return {
        "retry_on": exception_names(retry_on),
        "max_attempts": max_attempts,
        "retry_backoff": base,
        "retry_backoff_max": max(cap, base),
    }


def seconds(value, label, default):
    """``value`` (seconds or a timedelta, None: ``default``) as seconds; raise if it is not one."""
    if value is None:
        return default
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError("%s is a number of seconds or a timedelta, not %r." % (label, value))
    return float(value)


def exception_names(retry_on):
    """The dotted names of the exception classes in ``retry_on`` (a class or a tuple of them)."""
    classes = retry_on if isinstance(retry_on, (tuple, list)) else (retry_on,)
    names = []
    for cls in classes:
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            raise TypeError(
                "retry_on takes exception classes (a class or a tuple of classes, subclasses "
                "of Exception), not %r: write retry_on=(URLError, TimeoutError)." % (cls,)
            )
        names.append(dotted_name(cls))
    return tuple(names)


def dotted_name(cls):
    """'module:qualname' of ``cls``, if it imports back to it; else raise."""
    name = "%s:%s" % (cls.__module__, cls.__qualname__)
    try:
        found = resolve_dotted(name)
    except (ImportError, AttributeError):
        found = None
    if found is not cls:
        raise ValueError(
            "retry_on cannot name %s: a worker could not import it back (it is defined in a "
            "function, a script or exec'd code). Define the exception class at module level "
            "in your add-on." % name
        )
    return name


def exception_classes(names):
    """The classes named by ``names``; one that cannot be imported any more is left out."""
    classes = []
    for name in names:
        try:
            classes.append(resolve_dotted(name))
        except (ImportError, AttributeError):
            continue  # renamed or removed since queued: its errors end the job, as without a policy
    return tuple(cls for cls in classes if isinstance(cls, type))


def wants_another_attempt(job, exc):
    """True if ``exc`` is an error of the job's retry_on and it has attempts left."""
    if not job.retry_on or not isinstance(exc, Exception):
        return False
    if job.attempts - job.earlier_attempts >= (job.max_attempts or DEFAULT_MAX_ATTEMPTS):
        return False
    return isinstance(exc, exception_classes(job.retry_on))


def pause(job, failed):
    """Seconds to wait after the ``failed``-th failed attempt (see the module's formula)."""
    ceiling = min(job.retry_backoff_max, job.retry_backoff * 2 ** (failed - 1))
    return ceiling * random.uniform(0.5, 1.0)
