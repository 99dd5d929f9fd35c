"""What a worker process does once Zope has started, so that its CPU goes to jobs. Not for add-ons.

A dispatcher filing a backlog loads hundreds of jobs a pass (a million in a few minutes:
benchmarks/README.md); two costs of Python and of the ZODB that do not depend on the
jobs were an eighth of its CPU there, and both are paid once here instead:

- the garbage collector's full collections went through everything Zope's start-up
  made (modules, classes, the component registry: most of the process's objects),
  170 ms each, though none of it ever becomes garbage: ``freeze_startup_objects``;
- unpickling a record asks the database's class factory for each class it names, and
  Zope's imports the module again each time: ``remember_classes``.
"""

from ZODB.broken import Broken

import gc
import logging


log = logging.getLogger("collective.zasync")


def freeze_startup_objects():
    """Leave what exists now out of the garbage collector's later collections (gc.freeze).

    Only for a process that has finished starting: what is frozen is never collected.
    """
    gc.collect()
    gc.freeze()
    log.debug("%d objects of the start-up left out of garbage collections.", gc.get_freeze_count())


def remember_classes(db):
    """Make each database of ``db`` (its multi-database) find each class once."""
    for database in {id(d): d for d in list(getattr(db, "databases", {}).values()) + [db]}.values():
        if isinstance(database.classFactory, RememberingClassFactory):
            continue
        factory = database.classFactory = RememberingClassFactory(database.classFactory)
        # A connection takes the factory when it is made: the ones Zope's start-up made
        # wait in the pool, and the dispatcher's may be one of them.
        database._connectionMap(lambda connection: setattr(connection._reader, "_factory", factory))


class RememberingClassFactory:
    """A database's class factory that asks the one it wraps once per class.

    A class that cannot be imported (the factory returns a broken stand-in) is asked
    for again next time: the add-on that has it may be installed meanwhile.
    """

    def __init__(self, factory):
        self.factory = factory
        self.found = {}

    def __call__(self, connection, module, name):
        try:
            return self.found[module, name]
        except KeyError:
            pass
        found = self.factory(connection, module, name)
        if not (isinstance(found, type) and issubclass(found, Broken)):
            self.found[module, name] = found
        return found
