"""The deterministic simulation of several workers sharing one queue database.

scheduler.py lets the package's real threads take turns in a seeded order, on a
simulated clock; world.py builds the database, the processes and the faults;
invariants.py says what must hold after every step. tests/unit/test_simulation.py runs
thousands of schedules in ``make test``; scripts/simulate.py runs more, or
replays one seed with its log.
"""
