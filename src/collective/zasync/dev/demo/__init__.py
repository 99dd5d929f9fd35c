"""make run's demo pages: not loaded by the add-on's configure.zcml (see dev/demo/configure.zcml)."""
