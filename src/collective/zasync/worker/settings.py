"""A worker's settings: zope.conf's <product-config collective.zasync>, then the environment.

Every setting has a ``ZASYNC_<SETTING>`` environment variable (``ZASYNC_THREADS=4``), which
wins over zope.conf: so a container configures its worker with variables alone, and
``ZASYNC_WORKER=1`` makes any instance a worker (``worker_requested``, worker/process.py).
The numbers below these settings are in collective/zasync/defaults.py. Not for add-ons.
"""

from dataclasses import dataclass

import os


TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


@dataclass
class WorkerSettings:
    """Worker settings; zope.conf's <product-config collective.zasync> overrides them."""

    threads: int = 2  # jobs run at once by this process (each one a ZODB connection and its cache)
    poll_interval: float = 0.0  # seconds between checks when nothing wakes us; 0: by storage
    ping_interval: float = 10.0  # seconds between pings
    death_interval: float = 60.0  # a worker silent this long is dead (six missed pings: not a hiccup)
    retention_days: float = 7.0  # finished jobs are removed after this
    max_retries: int = 5  # ConflictError retries of a job (the site's setting wins: stored on each job)
    stop_timeout: float = 30.0  # seconds running jobs get to finish on shutdown
    time_limit: float = 0.0  # seconds a job may run before it is failed (0: no limit)
    group_commit: bool = True  # the dispatcher commits the completions of jobs that wrote nothing

    @classmethod
    def from_product_config(cls, config=None, environ=None):
        """Settings from a product-config dict (of strings), overridden by ZASYNC_<SETTING>
        environment variables (ZASYNC_THREADS=4: containers); bad values raise."""
        if config is None:
            config = product_config()
        config = dict(config or {}, **from_environment(os.environ if environ is None else environ))
        settings = cls()
        for name, value in config.items():
            key = name.replace("-", "_")
            if key == "uuid_file":  # read by worker_uuid()
                continue
            if key not in cls.__dataclass_fields__:
                known = sorted(n.replace("_", "-") for n in cls.__dataclass_fields__)
                raise ValueError(
                    "product-config collective.zasync: unknown setting %r; the settings are "
                    "%s and uuid-file." % (name, ", ".join(known))
                )
            if "#" in str(value):
                raise ValueError(
                    "product-config collective.zasync: %s is %r: ZConfig keeps a comment after a "
                    "value as part of it; put the comment on a line of its own." % (name, value)
                )
            kind = type(getattr(settings, key))
            if kind is bool:
                setattr(settings, key, on_or_off(name, value))
                continue
            try:
                setattr(settings, key, kind(value))
            except ValueError:
                raise ValueError(
                    "product-config collective.zasync: %s must be %s, not %r."
                    % (name, "a whole number" if kind is int else "a number", value)
                ) from None
        return settings


def on_or_off(name, value):
    """True for on/true/yes/1, False for off/false/no/0; else a ValueError naming the setting."""
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError("product-config collective.zasync: %s must be on or off, not %r." % (name, value))


def from_environment(environ):
    """{product-config name: value} of the ZASYNC_<SETTING> variables set in ``environ``."""
    found = {}
    for key in WorkerSettings.__dataclass_fields__:
        value = environ.get("ZASYNC_" + key.upper())
        if value:
            found[key.replace("_", "-")] = value
    return found


def product_config():
    """zope.conf's <product-config collective.zasync> as a dict (maybe empty)."""
    try:
        from App.config import getConfiguration

        return (getattr(getConfiguration(), "product_config", None) or {}).get(
            "collective.zasync", {}
        )
    except ImportError:
        return {}


def worker_requested(environ=None):
    """True if ZASYNC_WORKER asks this instance to run jobs (containers: no worker ZCML needed)."""
    return (os.environ if environ is None else environ).get("ZASYNC_WORKER", "").lower() in TRUE
