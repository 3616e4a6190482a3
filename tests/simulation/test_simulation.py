"""The delivery simulation (tests/simulation/world.py) in CI: as many random seeds as fit in a fixed
budget (SIM_BUDGET_SECONDS, default 90), every invariant after every step; a failing seed is
printed with the command that replays it. And the simulation shows it can fail: each deliberate
defect of tests/simulation/defects.py put into the code is caught."""

import os
import random
import time

import pytest

from tests.simulation.defects import DEFECTS, applied
from tests.simulation.world import Violation, run

BUDGET_SECONDS = float(os.environ.get("SIM_BUDGET_SECONDS", "90"))
MIN_RUNS = 600  # fewer in the budget means a machine too loaded for the run to say much
DEFECT_SEEDS = 3000  # each defect must be caught within these (it is, far sooner: docs/delivery-guarantees.md)


def test_every_invariant_holds_for_as_many_seeds_as_the_budget_allows():
    base = int(os.environ.get("SIM_SEED_BASE") or random.SystemRandom().randrange(10**9))
    started, runs = time.monotonic(), 0
    while time.monotonic() - started < BUDGET_SECONDS:
        seed = base + runs
        runs += 1
        try:
            run(seed)
        except Violation as violation:
            pytest.fail(f"seed {seed} broke an invariant: {violation}\nreplay: make simulate SEED={seed}")
    print(f"simulation: {runs} seeds from {base} in {time.monotonic() - started:.1f} s, every invariant held")
    assert runs >= MIN_RUNS, f"only {runs} runs in {BUDGET_SECONDS:g} s"


def test_a_seed_replays_exactly():
    first, second = run(4242, trace=True), run(4242, trace=True)
    assert first.lines == second.lines and len(first.lines) > 50
    assert first.invocations > 3 and first.accepted


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_the_simulation_catches_the_deliberate_defect(defect):
    with applied(defect):
        for seed in range(DEFECT_SEEDS):
            try:
                run(seed)
            except Violation as violation:
                print(f"{defect}: caught by seed {seed} ({seed + 1} runs): {violation.invariant}")
                return
    pytest.fail(f"{defect} went unnoticed through {DEFECT_SEEDS} seeds")


def test_without_a_defect_those_seeds_keep_every_invariant():
    """The seeds that catch the defects catch them because of the defects."""
    for seed in range(200):
        run(seed)
