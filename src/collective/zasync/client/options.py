"""The keyword arguments the service takes, never passed on to a job's function. Not for add-ons.

``queueJob(func, context, *args, **kwargs)`` passes ``kwargs`` to ``func``, except
the names of SERVICE_KEYWORDS: the service takes those (IAsyncService.queueJob). A
job function with a parameter of one of these names could never receive it, so it is
refused at queue time (``check_parameters``) instead of missing its argument silently.
"""

import inspect


# Every name the service takes, in one list (interfaces.IAsyncService.queueJob says what each does).
SERVICE_KEYWORDS = (
    "queue",  # the queue's name (the queueJobInQueue... variants take it as their first argument)
    "quota_names",  # quotas (and rate limits) of the queue that the job counts against
    "priority",  # -10 to 10: among due jobs of a queue, a higher one starts first
    "about",  # the content item the job is listed on, if not its context
    "unique_key",  # one unfinished job per key, user and site
    "unique_scope",  # "site": one per key and site
    "depends_on",  # jobs that must have finished first
    "run_on_failure",  # start even if one of depends_on failed
    "retry_on",  # a retry policy: the errors after which another attempt follows ...
    "max_attempts",  # ... how many attempts at most ...
    "retry_backoff",  # ... the pause after the first failed attempt ...
    "retry_backoff_max",  # ... and its cap
)
# What only a single job can have: not a batch's jobs, not a recurring job.
SINGLE_JOB_ONLY = ("unique_key", "unique_scope", "depends_on", "run_on_failure")


def take_options(kwargs):
    """Pop the service's keyword arguments from ``kwargs``; return them as a dict."""
    return {name: kwargs.pop(name) for name in SERVICE_KEYWORDS if name in kwargs}


def refuse_options(options, names, what, reason="only single jobs (queueJob and its variants) take one"):
    """Raise if ``options`` has one of ``names``, which ``what`` (e.g. "a recurring job") cannot have."""
    for name in names:
        if name in options:
            raise ValueError("Cannot queue %s with a %s argument: %s. Remove it." % (what, name, reason))


def check_parameters(func):
    """Raise if the job function ``func`` has a parameter named like one of SERVICE_KEYWORDS."""
    func = getattr(func, "__zasync_function__", func)  # a @task: its function
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return  # a builtin without a signature: it has no such parameter to lose
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    taken = [p.name for p in parameters if p.kind in named and p.name in SERVICE_KEYWORDS]
    if taken:
        raise ValueError(
            "Cannot queue %s: its parameter %s has the name of a keyword argument that the service "
            "takes (%s), so it would never be passed to the function. Rename the parameter."
            % (getattr(func, "__qualname__", func), ", ".join(map(repr, taken)),
               ", ".join(SERVICE_KEYWORDS)))
