"""Run one schedule (one seed): the steps with faults, then the settling, checking after each commit."""

from tests.simulation.invariants import Observer
from tests.simulation.world import patch_writer_ids
from tests.simulation.world import subscriber
from tests.simulation.world import World

import dataclasses
import logging


@dataclasses.dataclass
class Result:
    seed: int
    problems: list
    phase: str = ""
    steps: int = 0
    jobs: int = 0
    stats: dict = dataclasses.field(default_factory=dict)
    trace: list = dataclasses.field(default_factory=list)

    @property
    def ok(self):
        return not self.problems

    def report(self):
        lines = ["seed %d failed %s (after %d steps, %d jobs):" % (self.seed, self.phase, self.steps, self.jobs)]
        lines += ["  - %s" % problem for problem in self.problems[:20]]
        lines.append("  last steps: %s" % ", ".join("%s:%s@%s" % step for step in self.trace[-25:]))
        lines.append("  replay: python scripts/simulate.py --seed %d --log" % self.seed)
        return "\n".join(lines)


def run_schedule(seed, fault_steps=180, settle_steps=6000, faults=True, newsletters=None):
    """Run the schedule of ``seed``; return a Result (``.ok``, ``.problems``).

    ``newsletters``: a request also queues several jobs of one user at once (they share
    commits); by default in odd schedules (the even ones are as they were before it).
    """
    newsletters = seed % 2 == 1 if newsletters is None else newsletters
    world = World(seed, faults=faults, steps=fault_steps, newsletters=newsletters)
    World.current = world
    world.subscriber = world.rng.random() < 0.3
    restore_writer_ids = patch_writer_ids(world)
    if world.subscriber:
        subscriber(True)
    observer = None
    result = Result(seed, [])
    try:
        with world.sim.patched():
            world.setup()
            observer = Observer(world)
            result.problems, result.phase = run_phase(world, observer, fault_steps, faults), "with faults"
            if not result.problems:
                world.calm_down()
                result.problems, result.phase = settle(world, observer, settle_steps), "settling"
            if not result.problems:
                result.problems, result.phase = observer.check_settled(), "once settled"
            result.problems += ["thread %s crashed: %s" % (name, text.strip().splitlines()[-1])
                                for name, _exc, text in world.sim.crashes]
            result.jobs = len(observer.known)
            observer.count(world.stats)
    finally:
        result.steps = world.sim.steps
        result.trace = list(world.sim.trace)
        result.stats = dict(world.stats)
        if observer is not None:
            observer.close()
        world.close()
        restore_writer_ids()
        if world.subscriber:
            subscriber(False)
        World.current = None
    return result


def run_phase(world, observer, steps, faults):
    """Steps with requests, actions and faults; the places are checked after every commit."""
    for _ in range(steps):
        if faults:
            world.inject_fault()
        if not world.sim.step():
            break
        problems = checked(world, observer)
        if problems:
            return problems
    return []


def settle(world, observer, steps):
    """Steps without faults until nothing is left to do, or ``steps`` ran out."""
    for number in range(steps):
        if number % 25 == 0:
            world.supervise()
        if not world.sim.step() and not (world.supervise() and world.sim.step()):
            break
        problems = checked(world, observer)
        if problems:
            return problems
        if number % 25 == 0 and not observer.unsettled():
            return []
    left = observer.unsettled()
    return ["not settled after %d more steps: %s" % (steps, "; ".join(left[:8]))] if left else []


def checked(world, observer):
    problems = list(world.findings)
    if observer.refresh():
        problems += observer.check_places()
    return problems


def quiet_logs():
    """The package logs every job and fault (and ZODB each job that cannot be loaded): a run of
    thousands of schedules keeps them quiet. Returns what undoes it."""
    loggers = [logging.getLogger(name) for name in ("collective.zasync", "ZODB", "txn")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)

    def undo():
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)

    return undo
