"""What a failed job leaves in ``job.result``: a Failure. Add-ons import it as
``collective.zasync.api.Failure`` (or, as documented since 1.0, ``collective.zasync.failure.Failure``).
"""

import pickle
import traceback


class Failure:
    """An exception caught in a job: its type, value and traceback.

    Plain (not persistent) and always picklable: the exception value is kept
    only if it pickles, otherwise its text is kept.
    """

    def __init__(self, exc, tb_text=None):
        self.type = type(exc)
        try:
            pickle.loads(pickle.dumps(exc))
            self.value = exc
        except Exception:
            self.value = RuntimeError(str(exc))
        try:
            pickle.dumps(self.type)
        except Exception:
            # A class that cannot be imported back (a local class, say).
            self.type = RuntimeError
        self.type_name = "%s.%s" % (type(exc).__module__, type(exc).__qualname__)
        self.message = str(exc)
        if tb_text is None:
            tb_text = "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__)
            )
        self.traceback = tb_text

    def getTraceback(self):
        """The formatted traceback, as a string."""
        return self.traceback

    def getErrorMessage(self):
        """The exception's message (twisted's Failure had this too)."""
        return self.message

    def check(self, *exc_types):
        """The first of ``exc_types`` that this failure is an instance of, or None."""
        for exc_type in exc_types:
            if issubclass(self.type, exc_type):
                return exc_type
        return None

    def __str__(self):
        name = self.type_name.rsplit(".", 1)[-1]
        return "%s: %s" % (name, self.message) if self.message else name

    def __repr__(self):
        return "<Failure %s>" % self
