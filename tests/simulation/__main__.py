"""Run the delivery simulation (tests/simulation/world.py).

    python -m tests.simulation --seed 1234              # one run, its trace printed (make simulate SEED=1234)
    python -m tests.simulation --seeds 0:2000           # many runs; the first failing seed is printed
    python -m tests.simulation --budget 60              # random seeds for 60 s
    python -m tests.simulation --defect 504_not_processed --seeds 0:500   # show a deliberate defect is caught

Exit status 0: every run kept every invariant; 1: a run broke one (its seed and invariant printed).
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from tests.simulation.defects import DEFECTS, applied
from tests.simulation.world import Violation, run


def search(seeds: range | None, budget: float | None, steps: int) -> tuple[int, int | None, Violation | None, float]:
    """Run seeds (a range, or random ones until ``budget`` seconds passed); stop at the first
    violation. Returns (runs, failing seed, its violation, seconds)."""
    started = time.monotonic()
    base = random.SystemRandom().randrange(10**9) if seeds is None else 0
    count = 0
    candidates = iter(seeds) if seeds is not None else (base + n for n in range(10**9))
    for seed in candidates:
        if budget is not None and time.monotonic() - started > budget:
            break
        count += 1
        try:
            run(seed, steps=steps)
        except Violation as violation:
            return count, seed, violation, time.monotonic() - started
    return count, None, None, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.simulation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, help="replay one run and print its trace")
    parser.add_argument("--seeds", help="a range of seeds, FIRST:END")
    parser.add_argument("--budget", type=float, help="run random seeds for this many seconds")
    parser.add_argument("--steps", type=int, default=40, help="steps per run (default 40)")
    parser.add_argument("--defect", choices=sorted(DEFECTS), help="run with this deliberate defect in the code")
    args = parser.parse_args(argv)
    with applied(args.defect):
        if args.seed is not None:
            try:
                world = run(args.seed, steps=args.steps, trace=True)
            except Violation as violation:
                print("\n".join(violation.world.lines))  # type: ignore[attr-defined]
                print(f"seed {args.seed}: VIOLATED {violation}")
                return 1
            print("\n".join(world.lines))
            print(f"seed {args.seed}: every invariant held ({world.invocations} sender invocations, "
                  f"{len(world.accepted)} accepted events)")
            return 0
        seeds = range(*map(int, args.seeds.split(":"))) if args.seeds else None
        if seeds is None and args.budget is None:
            parser.error("give --seed, --seeds or --budget")
        count, seed, violation, took = search(seeds, args.budget, args.steps)
    if violation is not None:
        print(f"{count} run(s) in {took:.1f} s; seed {seed} VIOLATED {violation}\n"
              f"replay: make simulate SEED={seed}" + (f" DEFECT={args.defect}" if args.defect else ""))
        return 1
    print(f"{count} run(s) in {took:.1f} s: every invariant held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
