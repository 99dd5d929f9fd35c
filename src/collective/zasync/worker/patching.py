"""Replacing a method of a library's class, once per process: worker/zeopatch.py and
worker/relstoragepatch.py. Not for add-ons."""


def patch_once(cls, name, make_replacement):
    """Replace ``cls.<name>`` by ``make_replacement(original)`` unless done already; True if now."""
    original = getattr(cls, name)
    if getattr(original, "zasync_patched", False):
        return False
    replacement = make_replacement(original)
    replacement.zasync_patched = True
    replacement.__doc__ = original.__doc__
    setattr(cls, name, replacement)
    return True
