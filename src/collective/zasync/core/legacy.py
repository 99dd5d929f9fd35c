"""Classes that databases of collective.zasync 1.0.0a1 name, kept so that they load. Not for add-ons.

migration.py moves what they hold into the current structures and drops them; the
module paths old databases name are mapped to the current ones in moved.py.
"""

from persistent import Persistent


class JobList(Persistent):
    """1.0.0a1's inbox and done lists: a list of jobs (merged on the ZEO server)."""

    def __init__(self):
        self._items = []

    def __setstate__(self, state):
        # The first development versions kept a tuple.
        super().__setstate__(dict(state, _items=list(state.get("_items", ()))))

    def append(self, job):
        self._items.append(job)
        self._p_changed = True

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)
