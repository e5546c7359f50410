"""Shrinking a failing run to a shorter one that fails the same way.

A run is a function of its options alone (seed, number of steps, steps left out), and each
step draws its action from its own generator, so a shorter prefix or a step left out
changes nothing else about the choices. Shrinking therefore only re-runs:

1. the shortest prefix of steps that still breaks the same invariant (a failure found
   right after step k needs k + 1 steps; one found at the end is bisected);
2. then each fault, and then each other step, is left out in turn (newest first) and
   stays out if the run still fails the same way (a greedy one-at-a-time delta
   debugging), within a budget of runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from .world import SimOptions, SimResult, run

MAX_RUNS = 150
MAX_SECONDS = 60.0


def shrink(
    result: SimResult,
    runner: Callable[[SimOptions], SimResult] = run,
    max_runs: int = MAX_RUNS,
    max_seconds: float = MAX_SECONDS,
) -> SimResult:
    """The smallest failing run found from `result` (a failing one)."""
    assert result.failure is not None
    invariant = result.failure.invariant
    best = result
    runs = 0
    started = time.monotonic()

    def attempt(opts: SimOptions) -> SimResult | None:
        nonlocal runs
        if runs >= max_runs or time.monotonic() - started > max_seconds:
            return None
        runs += 1
        r = runner(opts)
        return r if r.failure is not None and r.failure.invariant == invariant else None

    opts = best.options
    # 1. the prefix
    if best.step is not None and best.step + 1 < opts.steps:
        r = attempt(replace(opts, steps=best.step + 1))
        if r is not None:
            best = r
    else:
        lo, hi = 0, opts.steps  # hi fails; look for the smallest failing count
        while hi - lo > 1:
            mid = (lo + hi) // 2
            r = attempt(replace(best.options, steps=mid))
            if r is None:
                lo = mid
            else:
                best, hi = r, mid
                if r.step is not None and r.step + 1 < mid:
                    r2 = attempt(replace(r.options, steps=r.step + 1))
                    if r2 is not None:
                        best, hi = r2, r.step + 1
    # 2. leave steps out: the faults first, then the rest
    for faults_only in (True, False):
        candidates = (
            best.faults
            if faults_only
            else [
                s
                for s in range(best.options.steps)
                if s not in best.faults and s not in best.options.skip
            ]
        )
        for step in sorted(candidates, reverse=True):
            if step in best.options.skip or step >= best.options.steps:
                continue
            r = attempt(replace(best.options, skip=best.options.skip | {step}))
            if r is not None:
                best = r
    return best


def replay_command(opts: SimOptions) -> str:
    parts = ["python -m liaotian.sim", f"--seed {opts.seed}", f"--steps {opts.steps}"]
    if opts.skip:
        parts.append("--skip " + ",".join(str(s) for s in sorted(opts.skip)))
    if opts.users:
        parts.append(f"--users {opts.users}")
    if not opts.faults:
        parts.append("--no-faults")
    if opts.mutation:
        parts.append(f"--mutation {opts.mutation}")
    return " ".join(parts)
