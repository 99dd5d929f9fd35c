"""Rate limits: at most N starts per time window of jobs naming a quota, over all workers.

``queue.rate_limits["smtp"] = (60, timedelta(minutes=1))`` (or
``queue.set_rate_limit("smtp", 60, 60)``): jobs queued with
``quota_names=("smtp",)`` start at most 60 times in any minute. A rate limit
works beside a concurrency quota of the same name (``queue.quotas``), or
alone.

A start is a claim: the dispatcher that takes the job records the time in
the limit's RateWindow (the job's ``started`` until it finishes). Every claim
a limit applies to writes that window, so two workers claiming at once
conflict and the one that retries counts the other's starts (as LimitMark
does for quotas). A job over the limit stays waiting (it is not failed); the
dispatcher sleeps until the window reopens (``reopens``). The times are the
claiming workers' clocks: keep them in sync (NTP).

Removing a limit keeps its window with no count: jobs already queued with
that name then start without a limit instead of failing as an unknown quota.
Add-ons use ``IQueue.rate_limits``.
"""

from BTrees.OOBTree import OOBTree
from datetime import timedelta
from persistent import Persistent

import bisect


MAX_COUNT = 10_000  # starts per window at most: the window stores one time per start
MAX_PER = 7 * 86400  # seconds


def check_rate_limit(name, value):
    """``(count, per_seconds)`` from ``(count, per)``; raise with what to do if bad."""
    if not isinstance(name, str) or not name:
        raise TypeError("A rate limit is set for a quota name (a non-empty string), not %r." % (name,))
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise TypeError("A rate limit is (count, per), e.g. queue.rate_limits[%r] = "
                        "(60, timedelta(minutes=1)), not %r." % (name, value))
    count, per = value
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_COUNT:
        raise ValueError("The count of rate limit %r is a whole number from 1 to %d (starts per "
                         "window), not %r; queue.set_rate_limit(%r, None) removes it."
                         % (name, MAX_COUNT, count, name))
    if isinstance(per, timedelta):
        per = per.total_seconds()
    if not isinstance(per, (int, float)) or isinstance(per, bool) or not 0 < per <= MAX_PER:
        raise ValueError("The window of rate limit %r is a timedelta or seconds, more than 0 and "
                         "at most 7 days, not %r." % (name, value[1]))
    return count, float(per)


class RateWindow(Persistent):
    """One rate limit and the start times within its window (written by every claim it applies to)."""

    def __init__(self, count, per):
        self.count = count  # None: the limit was removed
        self.per = per  # seconds
        self.starts = ()  # sorted times (seconds since 1970), the last ``per`` seconds' at least

    def recent(self, now):
        """Start times that count at ``now`` (another worker's clock may be ahead: those count too)."""
        return self.starts[bisect.bisect_right(self.starts, now - self.per):]

    def is_full(self, now):
        if self.count is None:
            return False
        return len(self.starts) - bisect.bisect_right(self.starts, now - self.per) >= self.count

    def reopens(self, now):
        """When a start is allowed again (seconds since 1970), if the window is full now."""
        if not self.is_full(now):
            return None
        recent = self.recent(now)
        return recent[len(recent) - self.count] + self.per

    def record(self, now):
        """A job it applies to starts at ``now``: write it (claims under it conflict)."""
        starts = list(self.recent(now))
        bisect.insort(starts, now)  # another worker's clock may have been ahead
        self.starts = tuple(starts)


class RateLimits(Persistent):
    """A queue's rate limits: quota name -> (count, timedelta), checked when set."""

    def __init__(self, owner=None):
        self.windows = OOBTree()  # name -> RateWindow
        self._v_owner = owner  # the queue to store this on when a first limit is set

    def window(self, name):
        """The RateWindow of ``name`` (a removed limit's too), or None."""
        return self.windows.get(name)

    def __setitem__(self, name, value):
        count, per = check_rate_limit(name, value)
        window = self.windows.get(name)
        if window is None:
            self.windows[name] = RateWindow(count, per)
        else:
            window.count, window.per = count, per
        owner = getattr(self, "_v_owner", None)
        if owner is not None and owner._rate_limits is None:
            owner._rate_limits = self

    def __getitem__(self, name):
        window = self.windows.get(name)
        if window is None or window.count is None:
            raise KeyError(name)
        return (window.count, timedelta(seconds=window.per))

    def __delitem__(self, name):
        self[name]  # KeyError if there is no such limit
        self.windows[name].count = None

    def pop(self, name, default=None):
        value = self.get(name, default)
        if name in self:
            del self[name]
        return value

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default

    def keys(self):
        return [name for name, window in self.windows.items() if window.count is not None]

    def items(self):
        return [(name, self[name]) for name in self.keys()]

    def __iter__(self):
        return iter(self.keys())

    def __contains__(self, name):
        return self.get(name) is not None

    def __len__(self):
        return len(self.keys())

    def __repr__(self):
        return "<RateLimits %r>" % dict(self.items())


def windows_of(queue, names):
    """The limiting RateWindows among ``names`` of ``queue``."""
    limits = queue._rate_limits
    if limits is None:
        return []
    windows = (limits.window(name) for name in names)
    return [window for window in windows if window is not None and window.count is not None]


def is_known(queue, name):
    """True if ``name`` has a rate limit in ``queue``, or had one."""
    return queue._rate_limits is not None and queue._rate_limits.window(name) is not None


def next_reopening(queues, now):
    """When the first full window of any queue reopens (seconds since 1970), or None."""
    times = [window.reopens(now) for queue in queues if queue._rate_limits is not None
             for window in queue._rate_limits.windows.values()]
    return min((when for when in times if when is not None), default=None)
