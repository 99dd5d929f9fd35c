"""collective.zasync test suite (run with make test)."""
